/*
 * Prometheus metrics and the HTTP endpoints of a worker: /metrics, /healthz
 * (the serving loop turns and, when messages are owed, acknowledgements keep
 * coming) and /readyz (models loaded and partitions assigned).
 */
#include <stdio.h>
#include <string.h>

#include "stream_int.h"

/* @locality HTTP thread: reads atomics only. */
static int live_cb(void *opaque, char *reason, size_t reason_size)
{
        sl_worker_t *w = opaque;
        int64_t now = sl_now_us(), limit = (int64_t)w->conf->http_liveness_timeout_ms * 1000;
        int64_t loop = atomic_load(&w->loop_us), progress = atomic_load(&w->progress_us);

        if (now - loop > limit) {
                sl_strfmt(reason, reason_size, "serving loop stalled for %lld ms",
                          (long long)((now - loop) / 1000));
                return 0;
        }
        if (now - progress > limit) {
                sl_strfmt(reason, reason_size,
                          "no acknowledgement from the broker for %lld ms with messages in "
                          "flight",
                          (long long)((now - progress) / 1000));
                return 0;
        }
        return 1;
}

/* @locality HTTP thread: reads atomics only. */
static int ready_cb(void *opaque, char *reason, size_t reason_size)
{
        sl_worker_t *w = opaque;
        if (atomic_load(&w->draining)) {
                sl_strfmt(reason, reason_size, "draining for shutdown");
                return 0;
        }
        if (atomic_load(&w->n_assigned) <= 0) {
                sl_strfmt(reason, reason_size, "no partitions assigned");
                return 0;
        }
        return 1;
}

sl_err_t sl_stream_obs_init(sl_worker_t *w, char *errstr, size_t errstr_size)
{
        sl_obs_http_params_t hp;
        int64_t now = sl_now_us();

        if (!(w->obs = sl_obs_metrics_new()))
                return SL_ERR_NOMEM;
        sl_obs_info_set(w->obs->openblas_core_info, sl_engine_blas_core());
        atomic_store(&w->loop_us, now);
        atomic_store(&w->progress_us, now);
        if (!w->conf->http_port)
                return SL_OK;
        memset(&hp, 0, sizeof(hp));
        hp.bind_address = w->conf->http_bind_address;
        hp.port = w->conf->http_port;
        hp.reg = w->obs->reg;
        hp.live_cb = live_cb;
        hp.ready_cb = ready_cb;
        hp.opaque = w;
        if (sl_obs_http_start(&hp, &w->http, errstr, errstr_size))
                return SL_ERR_CONFIG;
        SL_LOG(SL_LOG_NOTICE, "HTTP", "serving /metrics /healthz /readyz on %s:%d", hp.bind_address,
               sl_obs_http_port(w->http));
        return SL_OK;
}

void sl_stream_obs_destroy(sl_worker_t *w)
{
        sl_obs_http_stop(w->http); /* first: its thread reads the worker */
        w->http = NULL;
        sl_obs_metrics_destroy(w->obs);
        w->obs = NULL;
}
