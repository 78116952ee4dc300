/**
 * @file obs.h
 * @brief sluice observability: a Prometheus metrics registry, the HTTP
 *        endpoints that serve it (/metrics, /healthz, /readyz) on
 *        libmicrohttpd, and the standard sluice metric set.
 *
 * Registry. A registry holds metric families (counter, gauge, histogram),
 * each with a fixed list of label names. A family has one series ("child")
 * per distinct tuple of label values, created on first use and never freed
 * before the registry: resolve a child once (sl_obs_counter_child()) and
 * keep the pointer, so that the hot path is a single relaxed atomic add with
 * no lookup and no lock. A family without labels has exactly one child,
 * created with the family.
 *
 * Exposition: Prometheus text format 0.0.4 (the "Exposition formats"
 * page of the Prometheus documentation): `# HELP` (backslash and newline
 * escaped), `# TYPE`, one line per series with label values escaped
 * (backslash, double quote, newline); histograms as cumulative
 * `_bucket{le="..."}` lines ending with `le="+Inf"`, then `_sum` and
 * `_count`. Families are written in creation order, series in creation
 * order; a labelled family with no series yet is omitted. Floats use the
 * shortest text that reads back to the same double ("0.001", "2.5",
 * "1e+06"), with "+Inf", "-Inf" and "NaN".
 *
 * Threads: every function may be called from any thread. Updates through a
 * child handle are lock-free (C11 atomics, relaxed order); child lookup and
 * creation take the family's mutex; rendering takes the registry's and each
 * family's mutex, so a scrape never blocks an update through a handle.
 * A histogram's _count is the sum of its buckets read at render time, so
 * `+Inf` bucket and `_count` always agree; `_sum` may trail them by an
 * observation that is in progress.
 */
#ifndef SL_OBS_H
#define SL_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

/** @brief Most label names a family may have. */
#define SL_OBS_LABELS_MAX 8

/** @brief Most bucket bounds a histogram may have (the implicit +Inf not counted). */
#define SL_OBS_BUCKETS_MAX 64

/** @brief Metric type, as written on the `# TYPE` line. */
typedef enum {
        SL_OBS_COUNTER,   /**< "counter": non-negative integer that only goes up */
        SL_OBS_GAUGE,     /**< "gauge": a double that is set or added to */
        SL_OBS_HISTOGRAM, /**< "histogram": observations counted into fixed buckets */
} sl_obs_type_t;

typedef struct sl_obs_registry_s sl_obs_registry_t;
typedef struct sl_obs_family_s sl_obs_family_t;
typedef struct sl_obs_counter_s sl_obs_counter_t;     /**< one counter series */
typedef struct sl_obs_gauge_s sl_obs_gauge_t;         /**< one gauge series */
typedef struct sl_obs_histogram_s sl_obs_histogram_t; /**< one histogram series */

/** @brief New empty registry, or NULL when out of memory. */
sl_obs_registry_t *sl_obs_registry_new(void);

/**
 * @brief Free the registry with all its families and children. Accepts NULL.
 * @remark Every handle obtained from it becomes invalid; stop the HTTP server
 *         serving it first.
 */
void sl_obs_registry_destroy(sl_obs_registry_t *reg);

/**
 * @brief Add a metric family to \p reg.
 *
 * \p name must match `[a-zA-Z_:][a-zA-Z0-9_:]*` and be unique in \p reg.
 * \p help is free text (may be NULL: no HELP line). \p labels lists the label
 * names separated by commas ("model,version"; NULL or "" for none), each
 * matching `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with "__", not repeated,
 * and not "le" in a histogram; at most SL_OBS_LABELS_MAX.
 * \p buckets (histogram only, else NULL/0) are the upper bounds, finite and
 * strictly increasing, at most SL_OBS_BUCKETS_MAX; the +Inf bucket is
 * implicit (a trailing +Inf in \p buckets is accepted and ignored).
 * @returns SL_OK; SL_ERR_INVALID_ARG with errstr naming the metric and the
 *          fault; SL_ERR_NOMEM.
 * @remark The family is owned by \p reg; \p name, \p help, \p labels and
 *         \p buckets are copied.
 */
sl_err_t sl_obs_family_new(sl_obs_registry_t *reg, sl_obs_type_t type, const char *name,
                           const char *help, const char *labels, const double *buckets,
                           size_t n_buckets, sl_obs_family_t **famp, char *errstr,
                           size_t errstr_size);

/** @brief Number of label names of \p fam. */
size_t sl_obs_family_label_cnt(const sl_obs_family_t *fam);

/**
 * @brief The counter series of \p fam for the given label values.
 *
 * Pass exactly sl_obs_family_label_cnt(fam) `const char *` values, in the
 * order of the family's label names (none for an unlabelled family); NULL
 * counts as "". The series is created on first use with value 0, and made
 * visible again if sl_obs_family_remove() had hidden it.
 * @returns the child, or NULL when out of memory (or \p fam is NULL).
 * @remark The child is owned by the family and valid until the registry is
 *         destroyed. Aborts (SL_ASSERT) if \p fam is not a counter.
 * @locks the family's mutex (not for the hot path: keep the pointer).
 */
sl_obs_counter_t *sl_obs_counter_child(sl_obs_family_t *fam, ...);

/** @brief As sl_obs_counter_child() for a gauge family. */
sl_obs_gauge_t *sl_obs_gauge_child(sl_obs_family_t *fam, ...);

/** @brief As sl_obs_counter_child() for a histogram family. */
sl_obs_histogram_t *sl_obs_histogram_child(sl_obs_family_t *fam, ...);

/**
 * @brief Hide the series of \p fam with the given label values (same
 *        arguments as sl_obs_counter_child()) from the exposition, e.g. the
 *        lag of a partition this replica no longer owns. Its memory and value
 *        are kept so that handles held elsewhere stay valid (updates through
 *        them are kept but not shown); the next *_child() lookup of the same
 *        values shows it again. No-op for an unknown series.
 */
void sl_obs_family_remove(sl_obs_family_t *fam, ...);

/**
 * @brief Info-style gauge: set the series with the given label values to 1
 *        and hide every other series of the gauge family \p fam, so that it
 *        shows exactly one series (e.g. sluice_openblas_core_info{core}).
 * @returns SL_OK or SL_ERR_NOMEM.
 */
sl_err_t sl_obs_info_set(sl_obs_family_t *fam, ...);

/** @brief Add 1. \p c may be NULL (no-op). @locality any thread, lock-free. */
void sl_obs_counter_inc(sl_obs_counter_t *c);

/** @brief Add \p n. \p c may be NULL (no-op). @locality any thread, lock-free. */
void sl_obs_counter_add(sl_obs_counter_t *c, uint64_t n);

/** @brief Current value (0 for NULL). */
uint64_t sl_obs_counter_get(const sl_obs_counter_t *c);

/** @brief Set to \p v. \p g may be NULL (no-op). @locality any thread, lock-free. */
void sl_obs_gauge_set(sl_obs_gauge_t *g, double v);

/** @brief Add \p d (negative to subtract). \p g may be NULL. @locality any thread, lock-free (CAS
 * loop). */
void sl_obs_gauge_add(sl_obs_gauge_t *g, double d);

/** @brief Current value (0 for NULL). */
double sl_obs_gauge_get(const sl_obs_gauge_t *g);

/**
 * @brief Count \p v into the first bucket whose upper bound is >= \p v
 *        (Prometheus' `le`), and add it to the sum. NaN is ignored.
 *        \p h may be NULL (no-op). @locality any thread, lock-free.
 */
void sl_obs_histogram_observe(sl_obs_histogram_t *h, double v);

/** @brief Number of observations so far (0 for NULL). */
uint64_t sl_obs_histogram_count(const sl_obs_histogram_t *h);

/**
 * @brief Render every family of \p reg in text format 0.0.4.
 * @returns SL_OK with *textp a malloc'd NUL-terminated string the caller
 *          frees, and *lenp its length (may be NULL); SL_ERR_NOMEM.
 * @locks the registry's mutex, then each family's in turn.
 */
sl_err_t sl_obs_registry_render(sl_obs_registry_t *reg, char **textp, size_t *lenp);

/* ------------------------------------------------------------------------ */
/* HTTP endpoints                                                            */
/* ------------------------------------------------------------------------ */

typedef struct sl_obs_http_s sl_obs_http_t;

/**
 * @brief Health or readiness check.
 * @returns non-zero when healthy/ready; otherwise 0 with a short reason in
 *          \p reason (e.g. "no partitions assigned"), which becomes the body
 *          of the 503 response.
 * @locality the HTTP server's thread, concurrently with the worker: read
 *           only atomics or take your own lock. Must not block.
 */
typedef int(sl_obs_check_cb_t)(void *opaque, char *reason, size_t reason_size);

/** @brief Parameters of sl_obs_http_start() (plain struct; zero = defaults). */
typedef struct sl_obs_http_params_s {
        const char *bind_address;    /**< numeric address or host name; NULL = "0.0.0.0" */
        int port;                    /**< TCP port; 0 = HTTP disabled */
        sl_obs_registry_t *reg;      /**< served on /metrics; NULL = empty body */
        sl_obs_check_cb_t *live_cb;  /**< /healthz; NULL = always live */
        sl_obs_check_cb_t *ready_cb; /**< /readyz; NULL = always ready */
        void *opaque;                /**< passed to both callbacks */
} sl_obs_http_params_t;

/**
 * @brief Listen on bind_address:port and serve, from libmicrohttpd's own
 *        polling thread:
 *        - `GET /metrics`: 200, `text/plain; version=0.0.4; charset=utf-8`;
 *        - `GET /healthz`: 200 "ok\n" while live_cb returns non-zero, else
 *          503 with its reason and "\n";
 *        - `GET /readyz`: the same with ready_cb;
 *        - any other path: 404; a method other than GET or HEAD on a known
 *          path: 405 with `Allow: GET, HEAD`.
 *        A query string is ignored.
 *
 * @returns SL_OK with *httpp the server, or *httpp = NULL when
 *          params->port is 0 (disabled); SL_ERR_INVALID_ARG for a port
 *          outside 0..65535; SL_ERR_IO when the address does not resolve or
 *          cannot be bound, errstr "cannot listen on 127.0.0.1:9100: Address
 *          already in use"; SL_ERR_INTERNAL when libmicrohttpd fails to
 *          start.
 * @remark \p params->reg and \p params->opaque are borrowed and must stay
 *         valid until sl_obs_http_stop() returns.
 */
sl_err_t sl_obs_http_start(const sl_obs_http_params_t *params, sl_obs_http_t **httpp, char *errstr,
                           size_t errstr_size);

/** @brief TCP port the server listens on (0 for NULL). */
int sl_obs_http_port(const sl_obs_http_t *http);

/**
 * @brief Stop serving, close the listening socket and free \p http. Waits for
 *        the server thread, so no callback runs after it returns.
 *        Accepts NULL.
 */
void sl_obs_http_stop(sl_obs_http_t *http);

/* ------------------------------------------------------------------------ */
/* The standard sluice metrics                                               */
/* ------------------------------------------------------------------------ */

/**
 * @brief The metric families of a sluice worker, under fixed names that the
 *        Grafana dashboard relies on (append only, never rename).
 *
 * Times are in seconds, as Prometheus' base unit. Bucket bounds:
 * latency and queue time 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1
 * 2.5 5 10 30; inference 0.0001 0.00025 0.0005 0.001 ... 5 10; batch size
 * 1 2 4 8 16 32 64 128 256.
 * Unlabelled metrics are given directly as children.
 */
typedef struct sl_obs_metrics_s {
        sl_obs_registry_t *reg; /**< owns everything below */
        /** counter sluice_requests_total{model,version}: requests decoded */
        sl_obs_family_t *requests;
        /** counter sluice_responses_total{model,version}: responses acknowledged */
        sl_obs_family_t *responses;
        /** counter sluice_errors_total{model,version,code}: error responses (code = sl_err_name())
         */
        sl_obs_family_t *errors;
        /** counter sluice_dead_letters_total{code}: dead letters by error code */
        sl_obs_family_t *dead_letters;
        /** histogram sluice_request_latency_seconds{model,version}: consume -> response ack */
        sl_obs_family_t *request_latency;
        /** histogram sluice_queue_seconds{model,version}: consume -> batch start */
        sl_obs_family_t *queue_time;
        /** histogram sluice_inference_seconds{model,version}: one engine run, per batch */
        sl_obs_family_t *inference_time;
        /** histogram sluice_batch_size{model,version}: requests per batch */
        sl_obs_family_t *batch_size;
        /** gauge sluice_consumer_lag{topic,partition}: high watermark - position (messages) */
        sl_obs_family_t *consumer_lag;
        /** gauge sluice_model_loaded{model,version}: 1 while served, 0 after unload */
        sl_obs_family_t *model_loaded;
        /** gauge sluice_openblas_core_info{core}: info-style, see sl_obs_info_set() */
        sl_obs_family_t *openblas_core_info;
        /** gauge sluice_accuracy{model,version}: correct / labelled since start (0..1);
         *  absent until the first labelled response (sl_obs_model_metrics_label()) */
        sl_obs_family_t *accuracy;
        /** counter sluice_labelled_total{model,version}: responses to requests with a label */
        sl_obs_family_t *labelled;
        /** counter sluice_correct_total{model,version}: of those, top-1 equal to the label */
        sl_obs_family_t *correct;
        /** gauge sluice_evaluation{model,version,metric}: online evaluation since start
         *  (accuracy, macro_precision, macro_recall, macro_f1, log_loss, mae, rmse) */
        sl_obs_family_t *evaluation;
        sl_obs_counter_t *commits;         /**< counter sluice_commits_total */
        sl_obs_counter_t *rebalances;      /**< counter sluice_rebalances_total */
        sl_obs_gauge_t *partitions_paused; /**< gauge sluice_partitions_paused */
        sl_obs_gauge_t *in_flight;         /**< gauge sluice_in_flight_messages */
        sl_obs_gauge_t *in_flight_bytes;   /**< gauge sluice_in_flight_bytes */
        /** gauge sluice_backlog_drain_seconds: total lag / recent throughput (s) */
        sl_obs_gauge_t *backlog_drain_seconds;
} sl_obs_metrics_t;

/**
 * @brief Create a registry holding the standard families.
 * @returns the metrics, or NULL when out of memory.
 * @remark Free with sl_obs_metrics_destroy().
 */
sl_obs_metrics_t *sl_obs_metrics_new(void);

/** @brief Free the metrics and their registry. Accepts NULL. */
void sl_obs_metrics_destroy(sl_obs_metrics_t *m);

/** @brief The children of one model version, resolved once (plain struct). */
typedef struct sl_obs_model_metrics_s {
        sl_obs_counter_t *requests;
        sl_obs_counter_t *responses;
        sl_obs_histogram_t *request_latency; /**< seconds */
        sl_obs_histogram_t *queue_time;      /**< seconds */
        sl_obs_histogram_t *inference_time;  /**< seconds, per batch */
        sl_obs_histogram_t *batch_size;      /**< requests */
        sl_obs_gauge_t *loaded;
        sl_obs_gauge_t *accuracy; /**< update only through sl_obs_model_metrics_label() */
        sl_obs_counter_t *labelled;
        sl_obs_counter_t *correct;
} sl_obs_model_metrics_t;

/**
 * @brief Resolve the {model,version} children of \p m into \p mm, so that the
 *        stream thread updates them without lookups. \p version is the
 *        version number as text ("1").
 * @returns SL_OK or SL_ERR_NOMEM.
 * @locks each family's mutex once: call when a model version is loaded.
 */
sl_err_t sl_obs_metrics_model(sl_obs_metrics_t *m, const char *model, const char *version,
                              sl_obs_model_metrics_t *mm);

/**
 * @brief Count one labelled response (\p correct non-zero when the top-1
 *        class equals the label) and update the accuracy gauge to
 *        correct_total / labelled_total.
 * @locality one thread per model version (the counters are atomic, but the
 *           gauge is a ratio of two separate reads).
 */
void sl_obs_model_metrics_label(const sl_obs_model_metrics_t *mm, int correct);

#endif /* SL_OBS_H */
