/* Private to worker/stream: the worker's state, shared by its files. */
#ifndef SL_STREAM_INT_H
#define SL_STREAM_INT_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>

#include "../eval/eval.h"
#include "../obs/obs.h"

#include "stream.h"

typedef struct part_s part_t;
typedef struct model_stats_s model_stats_t;

/**
 * One consumed message, from consume until all of its outputs are
 * acknowledged. Lives in its partition's FIFO (offset order).
 */
typedef struct inflight_s {
        struct inflight_s *next; /* partition FIFO, or free list */
        part_t *part;
        int64_t offset;
        int pending;          /* outputs produced and not yet acknowledged */
        int finished;         /* all outputs are queued (pending may still be > 0) */
        int answered;         /* its output is a successful response */
        int64_t consumed_us;  /* sl_now_us() at consume */
        model_stats_t *stats; /* model it counts for, NULL for dead letters */
} inflight_t;

/** One assigned partition and its in-flight messages, oldest first. */
struct part_s {
        char *topic;
        int32_t partition;
        int assigned;
        int paused;
        inflight_t *head, *tail;
        size_t cnt;
        int64_t stored; /* last offset stored (next to consume), -1 none */
};

/** Latency samples of one window (microseconds). */
typedef struct samples_s {
        int64_t *v;
        size_t cnt, size;
} samples_t;

/** Counters of one model version (window and since start). */
struct model_stats_s {
        const sl_repo_model_t *model; /* NULL once unloaded */
        char *name, *version;         /* copies: they outlive the model */
        char **labels;                /* copies of the class names (the evaluator's) */
        size_t n_labels;
        int loaded;
        int64_t requests, responses, errors, batches, labelled, correct;
        int64_t batch_rows;
        int32_t batch_size_max;
        int64_t requests_total, responses_total, errors_total, labelled_total, correct_total;
        samples_t latency, inference;
        sl_obs_model_metrics_t obs; /* Prometheus children of this model version */
        sl_eval_t *eval;            /* online evaluation of a classifier, else NULL */
        int32_t n_classes;
};

/** A request waiting in a batch. */
typedef struct pending_req_s {
        sl_request_t *req;
        inflight_t *inf;         /* NULL for a shadow run */
        rd_kafka_message_t *msg; /* kept for key, headers, timestamp; NULL for a shadow run */
        int64_t rows;            /* batch rows this request contributes */
        int64_t consumed_us;
        int64_t timestamp_ms; /* Kafka timestamp of the request */
} pending_req_t;

/** The open micro-batch of one model version. */
typedef struct batch_s {
        const sl_repo_model_t *model;
        sl_session_t *session;
        model_stats_t *stats;
        pending_req_t *reqs;
        size_t cnt, size;
        int64_t rows, max_rows;
        int64_t opened_us;    /* first request added, 0 when empty */
        sl_tensor_t *inputs;  /* one per model input, data = concatenated rows */
        size_t *input_cap;    /* allocated bytes of each inputs[i].data */
        sl_tensor_t *outputs; /* one per model output */
} batch_t;

struct sl_worker_s {
        const sl_conf_t *conf;
        sl_repo_t *repo;
        const sl_codec_t *codec;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        volatile sig_atomic_t stop;
        int fatal;

        part_t **parts;
        size_t n_parts, size_parts;
        inflight_t *free_inflight;
        size_t inflight_cnt;             /* messages consumed and not yet done */
        size_t inflight_max;             /* pause partitions above this */
        rd_kafka_topic_t *out_topics[3]; /* responses, dead letters, metrics: held from start */
        size_t outq_bytes;     /* output key + value bytes produced, not yet acknowledged */
        size_t outq_bytes_max; /* pause partitions above this too */
        int paused;

        batch_t **batches; /* one per model version being served */
        size_t n_batches;
        model_stats_t **stats; /* one per model version ever served */
        size_t n_stats;
        volatile sig_atomic_t reload_now; /* SIGHUP */
        int64_t next_reload_us;

        int64_t dead_letters, dead_letters_total;
        int64_t dead_letters_by_code[SL_ERR__CNT]; /* since start */
        int64_t commits, rebalances, pauses;       /* since start */
        int64_t window_start_ms, next_metrics_us;
        int64_t delivery_failures;

        /* Prometheus metrics and health, read by the HTTP thread (atomics only). */
        sl_obs_metrics_t *obs;
        sl_obs_http_t *http;
        _Atomic int64_t loop_us;     /* last turn of the serving loop */
        _Atomic int64_t progress_us; /* last acknowledgement, or idle with nothing owed */
        _Atomic int n_assigned;      /* partitions assigned now */
        _Atomic int draining;
        int64_t window_answered; /* responses acknowledged in this metrics window */

        sl_eval_join_t *join; /* labels topic join (topics.labels), else NULL */

        /* exactly_once (txn.c) */
        int eos;
        char txn_id[512];
        int txn_open, txn_failed;
        int64_t next_txn_us, txn_commits, txn_aborts;
};

/* kconf.c: librdkafka clients from the config */
/* w->eos and w->txn_id from the config's delivery group (kconf.c). */
void sl_stream_delivery_init(sl_worker_t *w);
sl_err_t sl_stream_clients_new(sl_worker_t *w, char *errstr, size_t errstr_size);

/* txn.c: exactly-once */
sl_err_t sl_stream_txn_init(sl_worker_t *w, char *errstr, size_t errstr_size);
sl_err_t sl_stream_txn_commit(sl_worker_t *w, int begin_next, int lost);

/* track.c: partitions, in-flight messages, offsets, delivery */
part_t *sl_stream_part_get(sl_worker_t *w, const char *topic, int32_t partition, int create);
inflight_t *sl_stream_inflight_new(sl_worker_t *w, const rd_kafka_message_t *msg);
void sl_stream_inflight_finish(sl_worker_t *w, inflight_t *inf);
/* sl_stream_produce()'s result for a record larger than the producer's message.max.bytes:
 * nothing queued, nothing owed, the worker carries on (the caller sends something smaller). */
#define SL_STREAM_TOO_LARGE SL_ERR_INVALID_ARG
sl_err_t sl_stream_produce(sl_worker_t *w, const char *topic, const void *key, size_t key_len,
                           void *value, size_t value_len, rd_kafka_headers_t *hdrs,
                           inflight_t *inf);
void sl_stream_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
void sl_stream_parts_advance(sl_worker_t *w, part_t *p);
void sl_stream_backpressure(sl_worker_t *w);
sl_err_t sl_stream_commit(sl_worker_t *w, int sync);

/* serve.c: decode, route, batch, run, respond */
sl_err_t sl_stream_batches_init(sl_worker_t *w, char *errstr, size_t errstr_size);
void sl_stream_batches_destroy(sl_worker_t *w);
sl_err_t sl_stream_model_add(sl_worker_t *w, const sl_repo_model_t *m, char *errstr,
                             size_t errstr_size);
void sl_stream_model_remove(sl_worker_t *w, const sl_repo_model_t *m);

/* labels.c: online evaluation and the labels-topic join */
void sl_stream_eval_prediction(sl_worker_t *w, model_stats_t *st, const sl_request_t *req,
                               int32_t predicted, const float *probs);
int sl_stream_is_label_topic(const sl_worker_t *w, const char *topic);
void sl_stream_handle_label(sl_worker_t *w, rd_kafka_message_t *msg, inflight_t *inf);

/* route.c: version routing (canary, shadow) */
const sl_repo_model_t *sl_stream_route(sl_worker_t *w, const sl_request_t *req,
                                       const sl_repo_model_t **shadowp);
sl_request_t *sl_stream_request_copy(const sl_request_t *req);
/* Warn about a canary or shadow version that is configured but not loaded (start, reload). */
void sl_stream_route_check(sl_worker_t *w);

/* reload.c: live model reload */
void sl_stream_reload(sl_worker_t *w);
void sl_stream_handle(sl_worker_t *w, rd_kafka_message_t *msg);
void sl_stream_flush_due(sl_worker_t *w, int64_t now_us, int force);
int64_t sl_stream_next_deadline_us(sl_worker_t *w);
void sl_stream_dead_letter(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                           sl_err_t code, const char *message, const char *request_id);

/* metrics.c */
sl_err_t sl_stream_obs_init(sl_worker_t *w, char *errstr, size_t errstr_size);
void sl_stream_obs_destroy(sl_worker_t *w);
void sl_stream_samples_add(samples_t *s, int64_t v);
void sl_stream_metrics_publish(sl_worker_t *w);
void sl_stream_stats_cleanup(sl_worker_t *w);

#endif /* SL_STREAM_INT_H */
