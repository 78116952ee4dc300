/* The worker's life: create clients, subscribe, serve, rebalance, drain. */
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

/* Bounds before partitions are paused (backpressure), when the conf has none:
 * the defaults of worker.max_in_flight_messages / _kbytes. */
#define INFLIGHT_MAX_DEFAULT 10000
#define OUTQ_KBYTES_DEFAULT  65536

sl_err_t sl_worker_new(const sl_conf_t *conf, sl_repo_t *repo, const sl_codec_t *codec,
                       sl_worker_t **workerp, char *errstr, size_t errstr_size)
{
        sl_worker_t *w = calloc(1, sizeof(*w));
        sl_err_t err;

        if (!w)
                return SL_ERR_NOMEM;
        w->conf = conf;
        w->repo = repo;
        w->codec = codec;
        w->inflight_max = conf->max_in_flight_messages > 0 ? (size_t)conf->max_in_flight_messages
                                                           : INFLIGHT_MAX_DEFAULT;
        w->outq_bytes_max =
            1024 * (conf->max_in_flight_kbytes > 0 ? (size_t)conf->max_in_flight_kbytes
                                                   : OUTQ_KBYTES_DEFAULT);
        if (conf->n_label_topics && !(w->join = sl_eval_join_new((size_t)conf->label_join_max))) {
                free(w);
                return SL_ERR_NOMEM;
        }
        sl_stream_delivery_init(w);
        if ((err = sl_stream_obs_init(w, errstr, errstr_size)) ||
            (err = sl_stream_batches_init(w, errstr, errstr_size)) ||
            (err = sl_stream_clients_new(w, errstr, errstr_size)) ||
            (w->eos && (err = sl_stream_txn_init(w, errstr, errstr_size)))) {
                sl_worker_destroy(w);
                return err;
        }
        sl_stream_route_check(w);
        *workerp = w;
        return SL_OK;
}

void sl_worker_stop(sl_worker_t *w)
{
        w->stop = 1;
}

void sl_worker_reload(sl_worker_t *w)
{
        w->reload_now = 1;
}

/* Drain what the revoked partitions have in flight, then commit, before they go. */
static void drain_revoked(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts, int lost)
{
        if (w->eos) {
                /* Their outputs and positions commit together now (or abort if lost). */
                sl_stream_txn_commit(w, !w->stop, lost);
        } else {
                sl_stream_flush_due(w, 0, 1);
                rd_kafka_flush(w->producer, w->conf->shutdown_timeout_ms);
                if (!lost)
                        sl_stream_commit(w, 1);
        }
        for (int i = 0; i < parts->cnt; i++) {
                part_t *p =
                    sl_stream_part_get(w, parts->elems[i].topic, parts->elems[i].partition, 0);
                if (!p)
                        continue;
                if (p->cnt)
                        SL_LOG(SL_LOG_WARNING, "REBALANCE",
                               "%s[%d]: %zu messages still in flight at revoke: left "
                               "uncommitted (redelivered to the next owner)",
                               p->topic, p->partition, p->cnt);
                p->assigned = 0;
                {
                        char pstr[16];
                        sl_strfmt(pstr, sizeof(pstr), "%d", (int)p->partition);
                        /* this replica no longer owns it: stop reporting its lag */
                        sl_obs_family_remove(w->obs->consumer_lag, p->topic, pstr);
                }
        }
}

void sl_stream_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        sl_worker_t *w = opaque;
        const char *proto = rd_kafka_rebalance_protocol(rk);
        int coop = proto && !strcmp(proto, "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

        sl_obs_counter_inc(w->obs->rebalances);
        w->rebalances++;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                atomic_fetch_add(&w->n_assigned, parts->cnt);
                for (int i = 0; i < parts->cnt; i++) {
                        part_t *p = sl_stream_part_get(w, parts->elems[i].topic,
                                                       parts->elems[i].partition, 1);
                        if (p)
                                p->assigned = 1;
                }
                SL_LOG(SL_LOG_INFO, "REBALANCE", "assigned %d partition(s) (%s)", parts->cnt,
                       proto ? proto : "");
                if (coop)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, parts);
                if (w->paused)
                        rd_kafka_pause_partitions(rk, parts);
        } else {
                int lost =
                    err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
                SL_LOG(SL_LOG_INFO, "REBALANCE", "%s %d partition(s)", lost ? "lost" : "revoked",
                       parts->cnt);
                drain_revoked(w, parts, lost);
                atomic_fetch_sub(&w->n_assigned, parts->cnt);
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                SL_LOG(SL_LOG_ERR, "REBALANCE", "incremental (un)assign failed: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (aerr) {
                SL_LOG(SL_LOG_ERR, "REBALANCE", "assign failed: %s", rd_kafka_err2str(aerr));
        }
}

static sl_err_t subscribe(sl_worker_t *w)
{
        rd_kafka_topic_partition_list_t *topics =
            rd_kafka_topic_partition_list_new((int)w->conf->n_request_topics);
        rd_kafka_resp_err_t err;

        for (size_t i = 0; i < w->conf->n_request_topics; i++)
                rd_kafka_topic_partition_list_add(topics, w->conf->request_topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        for (size_t i = 0; i < w->conf->n_label_topics; i++)
                rd_kafka_topic_partition_list_add(topics, w->conf->label_topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(w->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                SL_LOG(SL_LOG_ERR, "CONSUME", "subscribe failed: %s", rd_kafka_err2str(err));
                return SL_ERR_KAFKA;
        }
        return SL_OK;
}

static void consume_error(rd_kafka_message_t *msg)
{
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                SL_LOG(SL_LOG_WARNING, "CONSUME", "%s%s%s", rd_kafka_message_errstr(msg),
                       msg->rkt ? " topic " : "", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "");
        rd_kafka_message_destroy(msg);
}

sl_err_t sl_worker_run(sl_worker_t *w)
{
        int64_t interval_us = (int64_t)w->conf->metrics_interval_ms * 1000, drain_end;
        sl_err_t err;

        /* Announce the worker with a first (empty) metrics record and wait for it: the
         * producer then has its connections and idempotence PID before the first
         * request, instead of holding the first responses while it gets them. */
        w->window_start_ms = sl_wall_ms();
        if (!w->eos) {
                sl_stream_metrics_publish(w);
                if (rd_kafka_flush(w->producer, 10000))
                        SL_LOG(SL_LOG_WARNING, "WORKER",
                               "first metrics record not acknowledged within 10 s: serving "
                               "anyway");
        }
        if ((err = subscribe(w)))
                return err;
        w->next_reload_us = sl_now_us() + (int64_t)w->conf->reload_interval_ms * 1000;
        w->next_metrics_us = sl_now_us() + interval_us;
        SL_LOG(SL_LOG_NOTICE, "WORKER", "serving: worker_id=%s max_batch=%d max_wait_ms=%d",
               w->conf->worker_id, w->conf->batch_max_size, w->conf->batch_max_wait_ms);

        while (!w->stop) {
                int64_t now = sl_now_us(), deadline = sl_stream_next_deadline_us(w);
                int64_t timeout_ms;
                rd_kafka_message_t *msg;

                if (w->next_metrics_us < deadline)
                        deadline = w->next_metrics_us;
                timeout_ms = deadline > now ? (deadline - now + 999) / 1000 : 0;
                /* Delivery reports come on the producer's queue: poll it often while waiting. */
                if (timeout_ms > (w->inflight_cnt ? 5 : 100))
                        timeout_ms = w->inflight_cnt ? 5 : 100;
                if ((msg = rd_kafka_consumer_poll(w->consumer, (int)timeout_ms))) {
                        if (msg->err)
                                consume_error(msg);
                        else
                                sl_stream_handle(w, msg);
                }
                rd_kafka_poll(w->producer, 0);
                now = sl_now_us();
                atomic_store(&w->loop_us, now);
                if (!w->inflight_cnt)
                        atomic_store(&w->progress_us, now); /* nothing owed: not stuck */
                sl_obs_gauge_set(w->obs->in_flight, (double)w->inflight_cnt);
                sl_obs_gauge_set(w->obs->in_flight_bytes, (double)w->outq_bytes);
                if (w->eos && now >= w->next_txn_us)
                        sl_stream_txn_commit(w, 1, 0);
                if (w->reload_now || (w->conf->reload_interval_ms && now >= w->next_reload_us)) {
                        w->reload_now = 0;
                        sl_stream_reload(w);
                        w->next_reload_us =
                            sl_now_us() + (int64_t)w->conf->reload_interval_ms * 1000;
                }
                sl_stream_flush_due(w, now, 0);
                sl_stream_backpressure(w);
                if (now >= w->next_metrics_us) {
                        sl_stream_metrics_publish(w);
                        w->next_metrics_us = now + interval_us;
                }
        }

        /* Drain: finish the open batches, wait for every acknowledgement, commit. */
        atomic_store(&w->draining, 1);
        SL_LOG(SL_LOG_NOTICE, "WORKER", "draining: %zu message(s) in flight", w->inflight_cnt);
        drain_end = sl_now_us() + (int64_t)w->conf->shutdown_timeout_ms * 1000;
        sl_stream_flush_due(w, 0, 1);
        while (w->inflight_cnt && sl_now_us() < drain_end && !w->fatal)
                rd_kafka_poll(w->producer, 50);
        sl_stream_metrics_publish(w); /* the last window, with every latency acknowledged */
        if (w->eos)
                sl_stream_txn_commit(w, 0, 0);
        rd_kafka_flush(w->producer, 2000);
        err = w->fatal ? SL_ERR_KAFKA : w->inflight_cnt ? SL_ERR_TIMEOUT : SL_OK;
        if (err == SL_ERR_TIMEOUT)
                SL_LOG(SL_LOG_WARNING, "WORKER",
                       "drain timed out with %zu message(s) unacknowledged: left uncommitted",
                       w->inflight_cnt);
        if (!w->eos)
                sl_stream_commit(w, 1);
        rd_kafka_consumer_close(w->consumer);
        SL_LOG(SL_LOG_NOTICE, "WORKER",
               "stopped: dead_letters_total=%lld delivery_failures=%lld transactions=%lld "
               "aborted=%lld",
               (long long)w->dead_letters_total, (long long)w->delivery_failures,
               (long long)w->txn_commits, (long long)w->txn_aborts);
        return err;
}

void sl_worker_destroy(sl_worker_t *w)
{
        if (!w)
                return;
        if (w->consumer)
                rd_kafka_destroy(w->consumer);
        if (w->producer) {
                rd_kafka_flush(w->producer, 1000);
                for (int i = 0; i < 3; i++)
                        if (w->out_topics[i])
                                rd_kafka_topic_destroy(w->out_topics[i]);
                rd_kafka_destroy(w->producer);
        }
        sl_stream_obs_destroy(w);
        sl_eval_join_destroy(w->join);
        sl_stream_stats_cleanup(w);
        sl_stream_batches_destroy(w);
        for (size_t i = 0; i < w->n_parts; i++) {
                inflight_t *inf = w->parts[i]->head, *next;
                for (; inf; inf = next) {
                        next = inf->next;
                        free(inf);
                }
                free(w->parts[i]->topic);
                free(w->parts[i]);
        }
        free(w->parts);
        while (w->free_inflight) {
                inflight_t *next = w->free_inflight->next;
                free(w->free_inflight);
                w->free_inflight = next;
        }
        free(w);
}
