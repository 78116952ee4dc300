/* Per-model counters and latency samples, published as WorkerMetrics records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

/* Upper bound of samples kept per window; past it a window's percentiles use the first ones. */
#define SAMPLES_MAX (1 << 20)

void sl_stream_samples_add(samples_t *s, int64_t v)
{
        if (s->cnt == s->size) {
                size_t size = s->size ? s->size * 2 : 1024;
                int64_t *tmp;
                if (size > SAMPLES_MAX || !(tmp = realloc(s->v, size * sizeof(*tmp))))
                        return;
                s->v = tmp;
                s->size = size;
        }
        s->v[s->cnt++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Nearest-rank percentiles; sorts the samples in place (the window ends). */
static sl_percentiles_t percentiles(samples_t *s)
{
        sl_percentiles_t p = {0, 0, 0, 0};
        if (!s->cnt)
                return p;
        qsort(s->v, s->cnt, sizeof(*s->v), cmp_i64);
#define RANK(q) s->v[(size_t)((q) * (double)(s->cnt - 1) + 0.5)]
        p.p50_us = RANK(0.50);
        p.p90_us = RANK(0.90);
        p.p99_us = RANK(0.99);
        p.max_us = s->v[s->cnt - 1];
#undef RANK
        return p;
}

static int64_t consumer_lag(sl_worker_t *w)
{
        int64_t lag = 0;
        int known = 0;
        for (size_t i = 0; i < w->n_parts; i++) {
                part_t *p = w->parts[i];
                int64_t lo, hi;
                rd_kafka_topic_partition_list_t *l;
                if (!p->assigned)
                        continue;
                if (rd_kafka_get_watermark_offsets(w->consumer, p->topic, p->partition, &lo, &hi) ||
                    hi < 0)
                        continue;
                l = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
                int64_t plag = -1;
                char pstr[16];
                if (!rd_kafka_position(w->consumer, l) && l->elems[0].offset >= 0)
                        plag = hi > l->elems[0].offset ? hi - l->elems[0].offset : 0;
                else if (hi > lo)
                        plag = hi - lo; /* nothing consumed yet: all of it */
                if (plag >= 0) {
                        lag += plag;
                        known = 1;
                        sl_strfmt(pstr, sizeof(pstr), "%d", (int)p->partition);
                        sl_obs_gauge_set(sl_obs_gauge_child(w->obs->consumer_lag, p->topic, pstr),
                                         (double)plag);
                }
                rd_kafka_topic_partition_list_destroy(l);
        }
        return known ? lag : -1;
}

/* The since-start evaluation as Prometheus gauges (once per metrics interval). */
static void eval_gauges(sl_worker_t *w, const model_stats_t *s, const sl_eval_report_t *ev)
{
        const sl_eval_stats_t *t = &ev->total;
        struct {
                const char *name;
                double v;
                int ok;
        } g[] = {
            {"accuracy", t->accuracy, ev->kind == SL_EVAL_CLASSIFICATION},
            {"macro_precision", t->macro_precision, ev->kind == SL_EVAL_CLASSIFICATION},
            {"macro_recall", t->macro_recall, ev->kind == SL_EVAL_CLASSIFICATION},
            {"macro_f1", t->macro_f1, ev->kind == SL_EVAL_CLASSIFICATION},
            {"log_loss", t->log_loss, ev->kind == SL_EVAL_CLASSIFICATION && t->log_loss_count},
            {"mae", t->mae, ev->kind == SL_EVAL_REGRESSION},
            {"rmse", t->rmse, ev->kind == SL_EVAL_REGRESSION},
        };
        for (size_t i = 0; i < sizeof(g) / sizeof(*g); i++)
                if (g[i].ok)
                        sl_obs_gauge_set(
                            sl_obs_gauge_child(w->obs->evaluation, s->name, s->version, g[i].name),
                            g[i].v);
}

void sl_stream_metrics_publish(sl_worker_t *w)
{
        sl_model_metrics_t *mm = calloc(w->n_stats ? w->n_stats : 1, sizeof(*mm));
        size_t n_mm = 0;
        sl_worker_metrics_t rec = {0};
        int64_t now_ms = sl_wall_ms();
        void *buf = NULL;
        size_t len = 0;

        if (!mm)
                return;
        for (size_t i = 0; i < w->n_stats; i++) {
                model_stats_t *s = w->stats[i];
                sl_model_metrics_t *m;
                /* An unloaded version is reported while its last messages still count. */
                if (!s->loaded && !s->requests && !s->responses && !s->latency.cnt)
                        continue;
                m = &mm[n_mm++];
                m->model_name = s->name;
                m->model_version = s->version;
                m->requests = s->requests;
                m->responses = s->responses;
                m->errors = s->errors;
                m->batches = s->batches;
                m->latency = percentiles(&s->latency);
                m->inference = percentiles(&s->inference);
                m->batch_size_mean = s->batches ? (double)s->batch_rows / (double)s->batches : 0;
                m->batch_size_max = s->batch_size_max;
                m->labelled = s->labelled;
                m->correct = s->correct;
                m->requests_total = s->requests_total;
                m->responses_total = s->responses_total;
                m->errors_total = s->errors_total;
                m->labelled_total = s->labelled_total;
                m->correct_total = s->correct_total;
                m->evaluation = s->eval ? sl_eval_snapshot(s->eval, 1) : NULL;
                if (m->evaluation && m->evaluation->total.count)
                        eval_gauges(w, s, m->evaluation);
                if (s->requests || s->responses)
                        SL_LOG(SL_LOG_INFO, "METRICS",
                               "model=%s/%s requests=%lld responses=%lld errors=%lld "
                               "batches=%lld batch_mean=%.1f latency_p50_us=%lld "
                               "latency_p99_us=%lld accuracy_total=%.4f",
                               m->model_name, m->model_version, (long long)m->requests,
                               (long long)m->responses, (long long)m->errors, (long long)m->batches,
                               m->batch_size_mean, (long long)m->latency.p50_us,
                               (long long)m->latency.p99_us,
                               m->labelled_total
                                   ? (double)m->correct_total / (double)m->labelled_total
                                   : 0.0);
        }
        rec.worker_id = w->conf->worker_id;
        rec.window_start_ms = w->window_start_ms;
        rec.window_end_ms = now_ms;
        rec.dead_letters = w->dead_letters;
        rec.dead_letters_total = w->dead_letters_total;
        rec.consumer_lag = consumer_lag(w);
        if (w->join)
                sl_eval_join_expire(w->join, sl_now_us() / 1000, w->conf->label_join_max_age_ms);
        /* Seconds to drain the backlog at this window's acknowledged rate. */
        if (rec.consumer_lag >= 0) {
                double secs = (double)(now_ms - w->window_start_ms) / 1000.0;
                double rate = secs > 0 ? (double)w->window_answered / secs : 0;
                sl_obs_gauge_set(w->obs->backlog_drain_seconds,
                                 rec.consumer_lag == 0 ? 0.0
                                 : rate > 0            ? (double)rec.consumer_lag / rate
                                                       : INFINITY);
        }
        rec.n_models = n_mm;
        rec.commits_total = w->commits;
        rec.rebalances_total = w->rebalances;
        rec.pauses_total = w->pauses;
        rec.transactions_aborted_total = w->txn_aborts;
        rec.dead_letters_by_code = w->dead_letters_by_code;
        rec.models = mm;
        if (!sl_codec_encode_metrics(w->codec, &rec, &buf, &len))
                sl_stream_produce(w, w->conf->metrics_topic, w->conf->worker_id,
                                  strlen(w->conf->worker_id), buf, len, NULL, NULL);
        else
                SL_LOG(SL_LOG_ERR, "METRICS", "cannot encode the metrics record");
        free(mm);

        /* A new window starts. */
        for (size_t i = 0; i < w->n_stats; i++) {
                model_stats_t *s = w->stats[i];
                s->requests = s->responses = s->errors = s->batches = 0;
                s->labelled = s->correct = s->batch_rows = 0;
                s->batch_size_max = 0;
                s->latency.cnt = s->inference.cnt = 0;
        }
        w->dead_letters = 0;
        w->window_answered = 0;
        w->window_start_ms = now_ms;
}

void sl_stream_stats_cleanup(sl_worker_t *w)
{
        for (size_t i = 0; i < w->n_stats; i++) {
                sl_eval_destroy(w->stats[i]->eval);
                for (size_t k = 0; k < w->stats[i]->n_labels; k++)
                        free(w->stats[i]->labels[k]);
                free(w->stats[i]->labels);
                free(w->stats[i]->latency.v);
                free(w->stats[i]->inference.v);
                free(w->stats[i]->name);
                free(w->stats[i]->version);
                free(w->stats[i]);
        }
        free(w->stats);
        w->stats = NULL;
        w->n_stats = 0;
}
