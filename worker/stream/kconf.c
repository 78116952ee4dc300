/* librdkafka consumer and producer built from the sluice config. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stream_int.h"

void sl_stream_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque);

/* librdkafka's log lines go through SL_LOG (same one-line format). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        if (level > SL_LOG_DEBUG)
                level = SL_LOG_DEBUG;
        /* The kafka group goes to both clients: each ignoring the other's properties is
         * expected, not a warning. */
        if (!strcmp(fac, "CONFWARN") && strstr(buf, "will be ignored by this"))
                level = SL_LOG_DEBUG;
        SL_LOG(level, fac, "rdkafka: %s", buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        sl_worker_t *w = opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[512];
                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                SL_LOG(SL_LOG_ERR, "KAFKA", "fatal error: %s", fatal);
                w->fatal = 1;
                w->stop = 1;
                return;
        }
        /* Transient: librdkafka retries by itself (broker down, timeouts). */
        SL_LOG(SL_LOG_WARNING, "KAFKA", "%s: %s", rd_kafka_err2name(err), reason);
}

/* Every offset commit, automatic or explicit (consumer's poll, worker thread). */
static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
        sl_worker_t *w = opaque;
        (void)rk;
        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        if (err) {
                SL_LOG(SL_LOG_WARNING, "COMMIT", "offset commit failed: %s", rd_kafka_err2str(err));
                return;
        }
        w->commits++;
        sl_obs_counter_inc(w->obs->commits);
        SL_LOG(SL_LOG_DEBUG, "COMMIT", "committed offsets of %d partition(s)", offsets->cnt);
}

static int set(rd_kafka_conf_t *kc, const char *name, const char *value, const char *where,
               char *errstr, size_t errstr_size)
{
        char kerr[512];
        if (rd_kafka_conf_set(kc, name, value, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
                sl_strfmt(errstr, errstr_size, "%s: kafka property %s: %s", where, name, kerr);
                return -1;
        }
        return 0;
}

static int user_has(const sl_conf_t *conf, const char *name)
{
        for (size_t i = 0; i < conf->n_kafka_props; i++)
                if (!strcmp(conf->kafka_props[i].name, name))
                        return 1;
        return 0;
}

static int is_false(const char *v)
{
        return !strcasecmp(v, "false") || !strcasecmp(v, "f") || !strcmp(v, "0");
}

/*
 * Why the producer may not take the user's property \p p (NULL: it may): the
 * settings the delivery guarantee depends on.
 */
static const char *producer_prop_refused(const sl_worker_t *w, const sl_conf_kafka_prop_t *p)
{
        /* Acknowledged must mean written by every in-sync replica (idempotence needs it). */
        if ((!strcmp(p->name, "acks") || !strcmp(p->name, "request.required.acks")) &&
            strcmp(p->value, "all") && strcmp(p->value, "-1"))
                return "an acknowledgement must mean written; the idempotent producer sluice uses "
                       "needs acks = all (-1, the default)";
        if (!strcmp(p->name, "transactional.id"))
                return "set delivery.guarantee = \"exactly_once\" (and delivery.transactional_id) "
                       "instead";
        if (w->eos) /* transactions abort on a failed delivery: order is not at stake */
                return NULL;
        /* A delivery that may time out leaves a gap that later responses of its partition
         * fill first; a producer without idempotence may reorder its retries. */
        if ((!strcmp(p->name, "message.timeout.ms") || !strcmp(p->name, "delivery.timeout.ms")) &&
            strcmp(p->value, "0"))
                return "could let a response be written after later ones of its partition; "
                       "sluice keeps partition order with 0 (the default)";
        if (!strcmp(p->name, "enable.idempotence") && is_false(p->value))
                return "could let a response be written after later ones of its partition; "
                       "sluice keeps partition order with true (the default)";
        return NULL;
}

/*
 * Why the consumer may not take the user's property \p p (NULL: it may): the
 * offset handling the delivery guarantee depends on.
 */
static const char *consumer_prop_refused(const sl_worker_t *w, const sl_conf_kafka_prop_t *p)
{
        if (!strcmp(p->name, "group.id") && !*p->value)
                return "the worker joins a consumer group; give it a name (default \"sluice\")";
        if (!strcmp(p->name, "enable.auto.offset.store") && !is_false(p->value))
                return "sluice stores each offset itself, once the outputs of the requests up to "
                       "it are acknowledged; librdkafka storing it on consume would commit "
                       "requests not yet answered";
        if (!strcmp(p->name, "enable.auto.commit")) {
                if (w->eos && !is_false(p->value))
                        return "with delivery.guarantee = \"exactly_once\" the offsets are "
                               "committed in each transaction, never by librdkafka";
                if (!w->eos && is_false(p->value))
                        return "with delivery.guarantee = \"at_least_once\" the stored offsets "
                               "are committed by librdkafka's auto-commit "
                               "(auto.commit.interval.ms); without it nothing would be "
                               "committed until shutdown and a crash would replay everything";
        }
        return NULL;
}

/* The config file's name for messages ("(defaults)" without one). */
static const char *conf_name(const sl_conf_t *conf)
{
        return conf->path && *conf->path ? conf->path : "(defaults)";
}

/*
 * Defaults first (each only if the user did not set it), then the user's
 * properties in file order, then the settings the delivery guarantee
 * depends on, which the user cannot turn off.
 */
static rd_kafka_conf_t *conf_build(sl_worker_t *w, int consumer, char *errstr, size_t errstr_size)
{
        static const char *consumer_defaults[][2] = {
            {"bootstrap.servers", "localhost:9092"},
            {"group.id", "sluice"},
            {"auto.offset.reset", "earliest"},
            {"partition.assignment.strategy", "cooperative-sticky"},
            {"enable.auto.commit", "true"},
            {"auto.commit.interval.ms", "1000"},
            {"client.id", "sluice-consumer"},
        };
        static const char *producer_defaults[][2] = {
            {"bootstrap.servers", "localhost:9092"},
            {"enable.idempotence", "true"},
            /* Never time a delivery out: the idempotent producer then retries in order,
             * so responses keep their partition order and nothing is re-produced out of
             * turn. A broker that stays away shows as unhealthy on /healthz instead. */
            {"message.timeout.ms", "0"},
            {"linger.ms", "5"},
            {"compression.type", "lz4"},
            {"client.id", "sluice-producer"},
        };
        const sl_conf_t *conf = w->conf;
        const char *(*defaults)[2] = consumer ? consumer_defaults : producer_defaults;
        size_t n_defaults = consumer ? sizeof(consumer_defaults) / sizeof(*consumer_defaults)
                                     : sizeof(producer_defaults) / sizeof(*producer_defaults);
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char where[512];

        for (size_t i = 0; i < n_defaults; i++)
                if (!user_has(conf, defaults[i][0]) &&
                    /* transactions bound it by transaction.timeout.ms themselves */
                    !(w->eos && !strcmp(defaults[i][0], "message.timeout.ms")) &&
                    set(kc, defaults[i][0], defaults[i][1], "default", errstr, errstr_size))
                        goto fail;
        for (size_t i = 0; i < conf->n_kafka_props; i++) {
                const sl_conf_kafka_prop_t *p = &conf->kafka_props[i];
                const char *why =
                    consumer ? consumer_prop_refused(w, p) : producer_prop_refused(w, p);
                if (why) {
                        sl_strfmt(errstr, errstr_size, "%s: kafka property %s = %s: %s",
                                  sl_conf_kafka_prop_where(p, where, sizeof(where)), p->name,
                                  p->value, why);
                        goto fail;
                }
                if (set(kc, p->name, p->value, sl_conf_kafka_prop_where(p, where, sizeof(where)),
                        errstr, errstr_size))
                        goto fail;
        }
        if (consumer && w->eos) {
                /* Offsets travel in the transaction; requests from transactional
                 * producers are read once committed. */
                if ((!user_has(conf, "isolation.level") &&
                     set(kc, "isolation.level", "read_committed", "default", errstr,
                         errstr_size)) ||
                    set(kc, "enable.auto.commit", "false", "exactly_once", errstr, errstr_size))
                        goto fail;
        } else if (!consumer && w->eos) {
                if (set(kc, "transactional.id", w->txn_id, "delivery.transactional_id", errstr,
                        errstr_size))
                        goto fail;
        }
        if (consumer) {
                if (set(kc, "enable.auto.offset.store", "false", "sluice", errstr, errstr_size))
                        goto fail;
                rd_kafka_conf_set_rebalance_cb(kc, sl_stream_rebalance_cb);
                rd_kafka_conf_set_offset_commit_cb(kc, offset_commit_cb);
        } else {
                rd_kafka_conf_set_dr_msg_cb(kc, sl_stream_dr_cb);
        }
        rd_kafka_conf_set_log_cb(kc, log_cb);
        rd_kafka_conf_set_error_cb(kc, error_cb);
        rd_kafka_conf_set_opaque(kc, w);
        return kc;
fail:
        rd_kafka_conf_destroy(kc);
        return NULL;
}

void sl_stream_delivery_init(sl_worker_t *w)
{
        const sl_conf_t *conf = w->conf;
        w->eos = !strcmp(conf->delivery_guarantee, "exactly_once");
        if (!strcmp(conf->delivery_transactional_id, "auto"))
                sl_strfmt(w->txn_id, sizeof(w->txn_id), "sluice-%s", conf->worker_id);
        else
                sl_strfmt(w->txn_id, sizeof(w->txn_id), "%s", conf->delivery_transactional_id);
}

sl_err_t sl_worker_conf_check(const sl_conf_t *conf, char *errstr, size_t errstr_size)
{
        sl_worker_t w = {.conf = conf};
        rd_kafka_conf_t *kc;
        rd_kafka_t *rk;
        char kerr[512];

        sl_stream_delivery_init(&w);
        for (int consumer = 0; consumer < 2; consumer++) {
                if (!(kc = conf_build(&w, consumer, errstr, errstr_size)))
                        return SL_ERR_CONFIG;
                /* librdkafka checks the properties against each other only when a client is
                 * made (e.g. max.in.flight with idempotence); the client is destroyed at once,
                 * before it has sent anything that matters (and quietly: its connection
                 * attempts are not the check's business). */
                rd_kafka_conf_set(kc, "log_level", "0", NULL, 0);
                if (!(rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, kc, kerr,
                                        sizeof(kerr)))) {
                        rd_kafka_conf_destroy(kc);
                        sl_strfmt(errstr, errstr_size, "%s: kafka properties (%s): %s",
                                  conf_name(conf), consumer ? "consumer" : "producer", kerr);
                        return SL_ERR_CONFIG;
                }
                rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        return SL_OK;
}

sl_err_t sl_stream_clients_new(sl_worker_t *w, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *cc = NULL, *pc = NULL;
        char kerr[512];

        if (!(cc = conf_build(w, 1, errstr, errstr_size)) ||
            !(pc = conf_build(w, 0, errstr, errstr_size)))
                goto fail;
        if (!(w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof(kerr)))) {
                sl_strfmt(errstr, errstr_size, "%s: kafka properties (producer): %s",
                          conf_name(w->conf), kerr);
                goto fail;
        }
        pc = NULL; /* owned by the producer now */
        {
                /* Known to the producer from the start: their metadata is fetched now, not
                 * when the first response, dead letter or metrics record waits for it (that
                 * held the first second of acknowledgements). */
                const char *outs[3] = {w->conf->response_topic, w->conf->dead_letter_topic,
                                       w->conf->metrics_topic};
                for (int i = 0; i < 3; i++)
                        if (outs[i] && *outs[i])
                                w->out_topics[i] = rd_kafka_topic_new(w->producer, outs[i], NULL);
        }
        if (!(w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof(kerr)))) {
                sl_strfmt(errstr, errstr_size, "%s: kafka properties (consumer): %s",
                          conf_name(w->conf), kerr);
                goto fail;
        }
        rd_kafka_poll_set_consumer(w->consumer);
        return SL_OK;
fail:
        if (cc)
                rd_kafka_conf_destroy(cc);
        if (pc)
                rd_kafka_conf_destroy(pc);
        return SL_ERR_CONFIG;
}
