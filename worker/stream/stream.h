/**
 * @file stream.h
 * @brief The sluice worker: joins the consumer group, decodes requests,
 *        micro-batches them per model version, runs the engine, and publishes
 *        responses, dead letters and WorkerMetrics — at-least-once.
 *
 * Delivery (DESIGN.md, "Delivery semantics"): a consumed offset is stored
 * (enable.auto.offset.store=false) only when every message up to it has all
 * its outputs (response, error response, dead letter) acknowledged by the
 * broker; the stored offsets are committed by librdkafka's auto-commit and
 * synchronously on revoke and shutdown. A failed delivery is produced again;
 * it never lets the offset move past it.
 *
 * Threads: everything runs on the thread that calls sl_worker_run(), which
 * serves both the consumer and the producer queues (librdkafka's own
 * threads do the network I/O). Only sl_worker_stop() may be called from
 * elsewhere (it is async-signal-safe).
 */
#ifndef SL_STREAM_H
#define SL_STREAM_H

#include "../codec/codec.h"
#include "../conf/conf.h"
#include "../repo/repo.h"
#include "../util/util.h"

typedef struct sl_worker_s sl_worker_t;

/**
 * @brief Create the consumer and producer from \p conf.
 *
 * Every librdkafka property of the config is applied to both clients
 * (consumer-only properties are ignored by the producer, as librdkafka does).
 * @returns SL_OK; SL_ERR_CONFIG when librdkafka rejects a property (errstr
 *          "FILE:LINE: kafka.NAME: librdkafka's message"); SL_ERR_KAFKA.
 * @remark \p conf, \p repo and \p codec are borrowed and must outlive the worker;
 *         the worker changes \p repo on live reloads (worker.reload_interval_ms, SIGHUP).
 */
sl_err_t sl_worker_new(const sl_conf_t *conf, sl_repo_t *repo, const sl_codec_t *codec,
                       sl_worker_t **workerp, char *errstr, size_t errstr_size);

/**
 * @brief Check the librdkafka properties of \p conf the way sl_worker_new()
 *        applies them, without creating clients or connecting.
 * @returns SL_OK or SL_ERR_CONFIG ("FILE:LINE: kafka property NAME: librdkafka's message").
 */
sl_err_t sl_worker_conf_check(const sl_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Serve until sl_worker_stop(), then drain: finish the batches in
 *        flight, flush the producer, commit, publish a last metrics record,
 *        and leave the group (all within conf->shutdown_timeout_ms).
 * @returns SL_OK after a clean drain; SL_ERR_KAFKA on a fatal client error;
 *          SL_ERR_TIMEOUT when the drain did not finish in time (offsets
 *          of unfinished messages are then not committed).
 */
sl_err_t sl_worker_run(sl_worker_t *worker);

/** @brief Ask sl_worker_run() to look for new and removed model versions now. Async-signal-safe. */
void sl_worker_reload(sl_worker_t *worker);

/** @brief Ask sl_worker_run() to drain and return. Async-signal-safe. */
void sl_worker_stop(sl_worker_t *worker);

/** @brief Free the worker. Accepts NULL. */
void sl_worker_destroy(sl_worker_t *worker);

#endif /* SL_STREAM_H */
