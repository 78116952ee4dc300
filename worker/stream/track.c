/*
 * Offset tracking for at-least-once: each consumed message is an inflight_t
 * in its partition's FIFO; its offset may be stored only when it and every
 * message before it in the partition has all outputs acknowledged.
 */
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

part_t *sl_stream_part_get(sl_worker_t *w, const char *topic, int32_t partition, int create)
{
        part_t *p;
        /* Few partitions per worker: a linear scan beats hashing here. */
        for (size_t i = 0; i < w->n_parts; i++) {
                p = w->parts[i];
                if (p->partition == partition && !strcmp(p->topic, topic))
                        return p;
        }
        if (!create)
                return NULL;
        if (w->n_parts == w->size_parts) {
                size_t size = w->size_parts ? w->size_parts * 2 : 16;
                part_t **tmp = realloc(w->parts, size * sizeof(*tmp));
                if (!tmp)
                        return NULL;
                w->parts = tmp;
                w->size_parts = size;
        }
        if (!(p = calloc(1, sizeof(*p))) || !(p->topic = strdup(topic))) {
                free(p);
                return NULL;
        }
        p->partition = partition;
        p->stored = -1;
        w->parts[w->n_parts++] = p;
        return p;
}

inflight_t *sl_stream_inflight_new(sl_worker_t *w, const rd_kafka_message_t *msg)
{
        part_t *p = sl_stream_part_get(w, rd_kafka_topic_name(msg->rkt), msg->partition, 1);
        inflight_t *inf;

        if (!p)
                return NULL;
        if ((inf = w->free_inflight))
                w->free_inflight = inf->next;
        else if (!(inf = malloc(sizeof(*inf))))
                return NULL;
        memset(inf, 0, sizeof(*inf));
        inf->part = p;
        inf->offset = msg->offset;
        inf->consumed_us = sl_now_us();
        if (p->tail)
                p->tail->next = inf;
        else
                p->head = inf;
        p->tail = inf;
        p->cnt++;
        w->inflight_cnt++;
        return inf;
}

/* Every output of \p inf is acknowledged: count its latency, move the offset. */
static void inflight_done(sl_worker_t *w, inflight_t *inf)
{
        int64_t now = sl_now_us();
        atomic_store(&w->progress_us, now);
        if (inf->stats) {
                sl_stream_samples_add(&inf->stats->latency, now - inf->consumed_us);
                if (inf->answered) {
                        sl_obs_counter_inc(inf->stats->obs.responses);
                        sl_obs_histogram_observe(inf->stats->obs.request_latency,
                                                 (double)(now - inf->consumed_us) / 1e6);
                        w->window_answered++;
                }
        }
        sl_stream_parts_advance(w, inf->part);
}

/* All outputs of \p inf are queued: it is done once they are acknowledged. */
void sl_stream_inflight_finish(sl_worker_t *w, inflight_t *inf)
{
        inf->finished = 1;
        if (!inf->pending)
                inflight_done(w, inf);
}

/* Pop the done prefix of the partition and store the offset after it. */
void sl_stream_parts_advance(sl_worker_t *w, part_t *p)
{
        int64_t last = -1;
        inflight_t *inf;

        while ((inf = p->head) && inf->finished && !inf->pending) {
                last = inf->offset;
                p->head = inf->next;
                if (!p->head)
                        p->tail = NULL;
                p->cnt--;
                w->inflight_cnt--;
                inf->next = w->free_inflight;
                w->free_inflight = inf;
        }
        /* exactly_once: positions go in the transaction instead (txn.c). */
        if (last < 0 || !p->assigned || w->eos)
                return;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = last + 1;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
        if (err)
                SL_LOG(SL_LOG_WARNING, "OFFSET", "store %s[%d]@%lld: %s", p->topic, p->partition,
                       (long long)(last + 1), rd_kafka_err2str(err));
        else
                p->stored = last + 1;
        rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Produce one output. \p value is malloc'd and owned by librdkafka on
 * success (freed on failure too: the caller never frees it). Queue full is
 * waited out by serving delivery reports, never dropped. A record larger than
 * message.max.bytes returns SL_STREAM_TOO_LARGE with nothing queued or owed;
 * any other failure to queue stops the worker (SL_ERR_KAFKA).
 */
sl_err_t sl_stream_produce(sl_worker_t *w, const char *topic, const void *key, size_t key_len,
                           void *value, size_t value_len, rd_kafka_headers_t *hdrs, inflight_t *inf)
{
        rd_kafka_resp_err_t err;

        if (inf)
                inf->pending++;
        for (;;) {
                err = rd_kafka_producev(
                    w->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                    RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(inf), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(w->producer, 10);
        }
        if (!err) {
                w->outq_bytes += key_len + value_len; /* until its delivery report */
                return SL_OK;
        }
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
                SL_LOG(SL_LOG_WARNING, "PRODUCE",
                       "record of %zu bytes for %s is larger than message.max.bytes: not sent",
                       key_len + value_len, topic);
                free(value);
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                if (inf)
                        inf->pending--;
                return SL_STREAM_TOO_LARGE;
        }
        /* Not queued (unknown topic, authorization, ...): the offset must not move. The
         * first one says why; the rest of the batch fails the same way. */
        if (!w->fatal)
                SL_LOG(SL_LOG_ERR, "PRODUCE",
                       "cannot produce to %s: %s: stopping; the unanswered offsets stay "
                       "uncommitted and are served again after a restart",
                       topic, rd_kafka_err2str(err));
        free(value);
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        w->delivery_failures++;
        w->fatal = 1;
        w->stop = 1;
        if (w->eos) /* the open transaction must not commit the positions past it */
                w->txn_failed = 1;
        return SL_ERR_KAFKA;
}

/*
 * Delivery report (producer's poll, worker thread). Deliveries never time
 * out (message.timeout.ms = 0, kconf.c) and the idempotent producer retries
 * retriable errors in order, so a failed delivery is one librdkafka will not
 * retry (authorization, a record the broker refuses, a fatal producer error).
 * Producing it again at the tail would write it after later responses of its
 * partition, so the worker stops instead: the message it answers stays in
 * flight, its offset is never stored, and a restarted worker serves it again
 * from the committed offset.
 */
void sl_stream_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        sl_worker_t *w = opaque;
        inflight_t *inf = msg->_private;
        size_t bytes = msg->key_len + msg->len;
        (void)rk;

        w->outq_bytes -= bytes < w->outq_bytes ? bytes : w->outq_bytes;
        if (msg->err && w->eos) {
                /* Part of a transaction: producing again would not make it count. The
                 * transaction aborts at its commit and the inputs are consumed again. */
                SL_LOG(SL_LOG_WARNING, "PRODUCE", "delivery to %s failed in a transaction: %s",
                       rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
                w->txn_failed = 1;
                if (inf && --inf->pending == 0 && inf->finished)
                        sl_stream_parts_advance(w, inf->part);
                return;
        }
        if (msg->err) {
                w->delivery_failures++;
                if (!inf)
                        return; /* a metrics record answers no message: nothing owed */
                if (!w->fatal)  /* the first one; the others share its cause */
                        SL_LOG(SL_LOG_ERR, "PRODUCE",
                               "delivery to %s[%d] failed for good (%s): stopping; offset %lld of "
                               "%s[%d] stays uncommitted and is served again after a restart",
                               rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                               rd_kafka_err2str(msg->err), (long long)inf->offset, inf->part->topic,
                               (int)inf->part->partition);
                w->fatal = 1;
                w->stop = 1;
                return;
        }
        if (!inf)
                return; /* metrics records answer no message */
        if (--inf->pending == 0 && inf->finished)
                inflight_done(w, inf);
}

/*
 * Pause every assigned partition while too much is in flight (messages
 * awaiting their outputs' acknowledgements, or bytes of those outputs);
 * resume once both are at half.
 */
void sl_stream_backpressure(sl_worker_t *w)
{
        int want =
            w->paused
                ? w->inflight_cnt > w->inflight_max / 2 || w->outq_bytes > w->outq_bytes_max / 2
                : w->inflight_cnt >= w->inflight_max || w->outq_bytes >= w->outq_bytes_max;
        rd_kafka_topic_partition_list_t *l;

        if (want == w->paused)
                return;
        l = rd_kafka_topic_partition_list_new((int)w->n_parts);
        for (size_t i = 0; i < w->n_parts; i++)
                if (w->parts[i]->assigned)
                        rd_kafka_topic_partition_list_add(l, w->parts[i]->topic,
                                                          w->parts[i]->partition);
        if (want)
                rd_kafka_pause_partitions(w->consumer, l);
        else
                rd_kafka_resume_partitions(w->consumer, l);
        sl_obs_gauge_set(w->obs->partitions_paused, want ? (double)l->cnt : 0.0);
        w->pauses += want;
        SL_LOG(SL_LOG_INFO, "FLOW",
               "%s %d partitions: %zu messages in flight, %zu KiB of outputs "
               "unacknowledged",
               want ? "paused" : "resumed", l->cnt, w->inflight_cnt, w->outq_bytes / 1024);
        rd_kafka_topic_partition_list_destroy(l);
        w->paused = want;
}

/* Commit the stored offsets now (sync on revoke and shutdown). */
sl_err_t sl_stream_commit(sl_worker_t *w, int sync)
{
        rd_kafka_resp_err_t err = rd_kafka_commit(w->consumer, NULL, !sync);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                SL_LOG(SL_LOG_WARNING, "COMMIT", "commit failed: %s", rd_kafka_err2str(err));
                return SL_ERR_KAFKA;
        }

        return SL_OK;
}
