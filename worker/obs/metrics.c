/* The standard sluice metric set (names are a contract with the dashboard). */
#include <stdlib.h>

#include "obs_int.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Seconds from consume to the response's acknowledgement, and waiting for a batch. */
static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
/* Seconds of one engine run over a batch: small models take well under a millisecond. */
static const double inference_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                           1,      2.5,     5,      10};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

typedef struct {
        size_t off; /* offsetof(sl_obs_metrics_t, family pointer) */
        sl_obs_type_t type;
        const char *name, *labels, *help;
        const double *buckets;
        size_t n_buckets;
} def_t;

#define FAM(field, type, name, labels, help)                                                       \
        {                                                                                          \
                offsetof(sl_obs_metrics_t, field), type, name, labels, help, NULL, 0               \
        }
#define HIST(field, name, labels, buckets, help)                                                   \
        {                                                                                          \
                offsetof(sl_obs_metrics_t, field), SL_OBS_HISTOGRAM, name, labels, help, buckets,  \
                    N(buckets)                                                                     \
        }

static const def_t defs[] = {
    FAM(requests, SL_OBS_COUNTER, "sluice_requests_total", "model,version",
        "Inference requests decoded, by model and version."),
    FAM(responses, SL_OBS_COUNTER, "sluice_responses_total", "model,version",
        "Responses acknowledged by the broker, by model and version."),
    FAM(errors, SL_OBS_COUNTER, "sluice_errors_total", "model,version,code",
        "Error responses, by model, version and error code."),
    FAM(dead_letters, SL_OBS_COUNTER, "sluice_dead_letters_total", "code",
        "Dead letters produced, by error code."),
    HIST(request_latency, "sluice_request_latency_seconds", "model,version", latency_buckets,
         "Seconds from consuming a request to the broker acknowledging its response."),
    HIST(queue_time, "sluice_queue_seconds", "model,version", latency_buckets,
         "Seconds a request waited between consume and the start of its batch."),
    HIST(inference_time, "sluice_inference_seconds", "model,version", inference_buckets,
         "Seconds of one engine run, per batch."),
    HIST(batch_size, "sluice_batch_size", "model,version", batch_buckets,
         "Requests per batch run by the engine."),
    FAM(consumer_lag, SL_OBS_GAUGE, "sluice_consumer_lag", "topic,partition",
        "Messages between the consumer position and the high watermark, per assigned "
        "partition."),
    FAM(model_loaded, SL_OBS_GAUGE, "sluice_model_loaded", "model,version",
        "1 while the model version is loaded and served, 0 after it is unloaded."),
    FAM(openblas_core_info, SL_OBS_GAUGE, "sluice_openblas_core_info", "core",
        "OpenBLAS kernel core in use (value 1)."),
    FAM(accuracy, SL_OBS_GAUGE, "sluice_accuracy", "model,version",
        "Top-1 accuracy over labelled requests since the worker started (0..1)."),
    FAM(labelled, SL_OBS_COUNTER, "sluice_labelled_total", "model,version",
        "Responses to requests that carried a ground-truth label."),
    FAM(correct, SL_OBS_COUNTER, "sluice_correct_total", "model,version",
        "Labelled responses whose top-1 class equals the label."),
    FAM(evaluation, SL_OBS_GAUGE, "sluice_evaluation", "model,version,metric",
        "Online evaluation since the worker started, per metric: accuracy, macro_precision, "
        "macro_recall, macro_f1, log_loss (classifiers), mae, rmse (regression)."),
};

/* The unlabelled metrics, kept as their one child. */
typedef struct {
        sl_obs_type_t type;
        const char *name, *help;
} plain_t;

static const plain_t plains[] = {
    {SL_OBS_COUNTER, "sluice_commits_total", "Offset commits that succeeded."},
    {SL_OBS_COUNTER, "sluice_rebalances_total", "Consumer group rebalances (assign or revoke)."},
    {SL_OBS_GAUGE, "sluice_partitions_paused", "Assigned partitions paused for backpressure."},
    {SL_OBS_GAUGE, "sluice_in_flight_messages",
     "Messages consumed whose outputs are not yet acknowledged."},
    {SL_OBS_GAUGE, "sluice_backlog_drain_seconds",
     "Seconds to drain the consumer lag at the recent throughput."},
    {SL_OBS_GAUGE, "sluice_in_flight_bytes",
     "Bytes (key + value) of outputs produced and not yet acknowledged."},
};

/* Show or hide a gauge's series through its handle (the handle is a member of its child). */
static void gauge_show(sl_obs_gauge_t *g, int visible)
{
        child_t *c = (child_t *)((char *)g - offsetof(child_t, gauge));
        atomic_store_explicit(&c->visible, visible, memory_order_relaxed);
}

sl_obs_metrics_t *sl_obs_metrics_new(void)
{
        sl_obs_family_t *fam, *plain_fams[N(plains)];
        sl_obs_metrics_t *m = calloc(1, sizeof(*m));
        char errstr[256];

        if (!m || !(m->reg = sl_obs_registry_new()))
                goto fail;
        for (size_t i = 0; i < N(defs); i++) {
                const def_t *d = &defs[i];
                if (sl_obs_family_new(m->reg, d->type, d->name, d->help, d->labels, d->buckets,
                                      d->n_buckets, &fam, errstr, sizeof(errstr)))
                        goto fail;
                *(sl_obs_family_t **)((char *)m + d->off) = fam;
        }
        for (size_t i = 0; i < N(plains); i++)
                if (sl_obs_family_new(m->reg, plains[i].type, plains[i].name, plains[i].help, NULL,
                                      NULL, 0, &plain_fams[i], errstr, sizeof(errstr)))
                        goto fail;
        m->commits = sl_obs_counter_child(plain_fams[0]);
        m->rebalances = sl_obs_counter_child(plain_fams[1]);
        m->partitions_paused = sl_obs_gauge_child(plain_fams[2]);
        m->in_flight = sl_obs_gauge_child(plain_fams[3]);
        m->backlog_drain_seconds = sl_obs_gauge_child(plain_fams[4]);
        m->in_flight_bytes = sl_obs_gauge_child(plain_fams[5]);
        return m;
fail:
        sl_obs_metrics_destroy(m);
        return NULL;
}

void sl_obs_metrics_destroy(sl_obs_metrics_t *m)
{
        if (!m)
                return;
        sl_obs_registry_destroy(m->reg);
        free(m);
}

sl_err_t sl_obs_metrics_model(sl_obs_metrics_t *m, const char *model, const char *version,
                              sl_obs_model_metrics_t *mm)
{
        mm->requests = sl_obs_counter_child(m->requests, model, version);
        mm->responses = sl_obs_counter_child(m->responses, model, version);
        mm->request_latency = sl_obs_histogram_child(m->request_latency, model, version);
        mm->queue_time = sl_obs_histogram_child(m->queue_time, model, version);
        mm->inference_time = sl_obs_histogram_child(m->inference_time, model, version);
        mm->batch_size = sl_obs_histogram_child(m->batch_size, model, version);
        mm->loaded = sl_obs_gauge_child(m->model_loaded, model, version);
        mm->accuracy = sl_obs_gauge_child(m->accuracy, model, version);
        mm->labelled = sl_obs_counter_child(m->labelled, model, version);
        mm->correct = sl_obs_counter_child(m->correct, model, version);
        if (!mm->requests || !mm->responses || !mm->request_latency || !mm->queue_time ||
            !mm->inference_time || !mm->batch_size || !mm->loaded || !mm->accuracy ||
            !mm->labelled || !mm->correct)
                return SL_ERR_NOMEM;
        /* No accuracy until a labelled request arrives: a 0 would read as "all wrong". */
        if (!sl_obs_counter_get(mm->labelled))
                gauge_show(mm->accuracy, 0);
        return SL_OK;
}

void sl_obs_model_metrics_label(const sl_obs_model_metrics_t *mm, int correct)
{
        uint64_t n, k;
        sl_obs_counter_inc(mm->labelled);
        if (correct)
                sl_obs_counter_inc(mm->correct);
        n = sl_obs_counter_get(mm->labelled);
        k = sl_obs_counter_get(mm->correct);
        if (!n)
                return;
        sl_obs_gauge_set(mm->accuracy, (double)k / (double)n);
        gauge_show(mm->accuracy, 1);
}
