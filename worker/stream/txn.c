/*
 * Exactly-once (delivery.guarantee = exactly_once): outputs and the consumed
 * input positions commit in one Kafka transaction (KIP-98, KIP-447), so a
 * read_committed reader sees each request's outputs exactly once whatever
 * crashes. The transaction is committed every delivery.transaction_interval_ms,
 * on revoke and at shutdown; an abortable error aborts it and rewinds the
 * consumer to the last committed positions, so the work is done again.
 * @locality worker thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

#define TXN_TIMEOUT_MS 30000

static void log_error(const char *what, rd_kafka_error_t *error)
{
        SL_LOG(SL_LOG_WARNING, "TXN", "%s: %s (%s%s%s)", what, rd_kafka_error_string(error),
               rd_kafka_error_name(error),
               rd_kafka_error_txn_requires_abort(error) ? ", abortable" : "",
               rd_kafka_error_is_fatal(error) ? ", fatal" : "");
}

sl_err_t sl_stream_txn_init(sl_worker_t *w, char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *error;

        /* Fences any older producer with the same transactional.id (a zombie replica)
         * and aborts what it left open. */
        if ((error = rd_kafka_init_transactions(w->producer, TXN_TIMEOUT_MS))) {
                sl_strfmt(errstr, errstr_size, "init_transactions (transactional.id %s): %s",
                          w->txn_id, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return SL_ERR_KAFKA;
        }
        if ((error = rd_kafka_begin_transaction(w->producer))) {
                sl_strfmt(errstr, errstr_size, "begin_transaction: %s",
                          rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return SL_ERR_KAFKA;
        }
        w->txn_open = 1;
        SL_LOG(SL_LOG_NOTICE, "TXN", "exactly-once: transactional.id=%s", w->txn_id);
        return SL_OK;
}

/* Positions (next offset to consume) of the assigned partitions that consumed something. */
static rd_kafka_topic_partition_list_t *positions(sl_worker_t *w)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)w->n_parts);
        rd_kafka_topic_partition_list_t *out;
        for (size_t i = 0; i < w->n_parts; i++)
                if (w->parts[i]->assigned)
                        rd_kafka_topic_partition_list_add(l, w->parts[i]->topic,
                                                          w->parts[i]->partition);
        rd_kafka_position(w->consumer, l);
        out = rd_kafka_topic_partition_list_new(l->cnt);
        for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].offset >= 0)
                        rd_kafka_topic_partition_list_add(out, l->elems[i].topic,
                                                          l->elems[i].partition)
                            ->offset = l->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return out;
}

/* After an abort: serve the purged deliveries, then consume again from the last commit. */
static void rewind_to_committed(sl_worker_t *w)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)w->n_parts);
        rd_kafka_error_t *error;

        while (rd_kafka_outq_len(w->producer) > 0)
                rd_kafka_poll(w->producer, 10);
        for (size_t i = 0; i < w->n_parts; i++)
                if (w->parts[i]->assigned)
                        rd_kafka_topic_partition_list_add(l, w->parts[i]->topic,
                                                          w->parts[i]->partition);
        if (l->cnt && !rd_kafka_committed(w->consumer, l, TXN_TIMEOUT_MS)) {
                for (int i = 0; i < l->cnt; i++)
                        if (l->elems[i].offset < 0)
                                l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
                if ((error = rd_kafka_seek_partitions(w->consumer, l, TXN_TIMEOUT_MS))) {
                        log_error("rewind", error);
                        rd_kafka_error_destroy(error);
                }
                SL_LOG(SL_LOG_NOTICE, "TXN", "rewound %d partition(s) to their committed offsets",
                       l->cnt);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

/* Abort the open transaction and rewind; the aborted outputs are never seen. */
static void txn_abort(sl_worker_t *w)
{
        rd_kafka_error_t *error = rd_kafka_abort_transaction(w->producer, TXN_TIMEOUT_MS);
        if (error) {
                log_error("abort_transaction", error);
                if (rd_kafka_error_is_fatal(error)) {
                        w->fatal = 1;
                        w->stop = 1;
                }
                rd_kafka_error_destroy(error);
        }
        w->txn_open = 0;
        w->txn_aborts++;
        rewind_to_committed(w);
}

sl_err_t sl_stream_txn_commit(sl_worker_t *w, int begin_next, int lost)
{
        rd_kafka_topic_partition_list_t *offsets = NULL;
        rd_kafka_error_t *error = NULL;
        sl_err_t err = SL_OK;

        if (!w->txn_open)
                goto begin;
        sl_stream_flush_due(w, 0, 1); /* every consumed request has its outputs queued */
        if (lost || w->txn_failed || w->fatal) {
                /* Partitions already gone, or an output failed or could not be queued, or
                 * the worker is stopping on an error: none of it may count. */
                txn_abort(w);
                w->txn_failed = 0;
                goto begin;
        }
        offsets = positions(w);
        if (offsets->cnt) {
                rd_kafka_consumer_group_metadata_t *gmd =
                    rd_kafka_consumer_group_metadata(w->consumer);
                error =
                    rd_kafka_send_offsets_to_transaction(w->producer, offsets, gmd, TXN_TIMEOUT_MS);
                rd_kafka_consumer_group_metadata_destroy(gmd);
        }
        for (int tries = 0; !error; tries++) {
                error = rd_kafka_commit_transaction(w->producer, TXN_TIMEOUT_MS);
                if (!error || !rd_kafka_error_is_retriable(error) || tries == 2)
                        break;
                log_error("commit_transaction (retrying)", error);
                rd_kafka_error_destroy(error);
                error = NULL;
        }
        if (!error) {
                w->txn_open = 0;
                w->txn_commits++;
                w->commits++;
                sl_obs_counter_inc(w->obs->commits);
        } else if (rd_kafka_error_txn_requires_abort(error)) {
                log_error("commit_transaction", error);
                txn_abort(w);
        } else {
                log_error("commit_transaction", error);
                w->fatal = 1;
                w->stop = 1;
                err = SL_ERR_KAFKA;
        }
        if (error)
                rd_kafka_error_destroy(error);
        rd_kafka_topic_partition_list_destroy(offsets);
begin:
        if (begin_next && !w->fatal && !w->txn_open) {
                if ((error = rd_kafka_begin_transaction(w->producer))) {
                        log_error("begin_transaction", error);
                        rd_kafka_error_destroy(error);
                        w->fatal = 1;
                        w->stop = 1;
                        return SL_ERR_KAFKA;
                }
                w->txn_open = 1;
        }
        w->next_txn_us = sl_now_us() + (int64_t)w->conf->delivery_transaction_interval_ms * 1000;
        return err;
}
