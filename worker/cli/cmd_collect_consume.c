/* `sluice collect`, reading: consume the responses topic (and optionally the
 * dead-letter topic) and decode each record into a collect_t: one entry per
 * unique response id (first appearance wins), duplicates, undecodable
 * records, and counts by error code. The report is in cmd_collect.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "args.h"
#include "collect.h"

#define COLLECT_ERRORS_SHOWN 5

/* ---- bookkeeping ---- */

static uint64_t hash_str(const char *s)
{
        uint64_t h = 14695981039346656037ull; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

/* Index of \p id in c->entries, or -1. */
static ssize_t find_entry(const collect_t *c, const char *id)
{
        if (!c->n_slots)
                return -1;
        for (size_t s = hash_str(id) & (c->n_slots - 1);; s = (s + 1) & (c->n_slots - 1)) {
                if (!c->slots[s])
                        return -1;
                if (!strcmp(c->entries[c->slots[s] - 1].id, id))
                        return (ssize_t)(c->slots[s] - 1);
        }
}

/* Keeps the table at most half full, so a probe always ends. */
static int rehash(collect_t *c)
{
        size_t n_slots = c->n_slots ? c->n_slots * 2 : 1024;
        size_t *slots = calloc(n_slots, sizeof(*slots));

        if (!slots)
                return -1;
        for (size_t i = 0; i < c->n; i++) {
                size_t s = hash_str(c->entries[i].id) & (n_slots - 1);

                while (slots[s])
                        s = (s + 1) & (n_slots - 1);
                slots[s] = i + 1;
        }
        free(c->slots);
        c->slots = slots;
        c->n_slots = n_slots;
        return 0;
}

/* Appends \p e (taking ownership of its strings only on success). */
static int add_entry(collect_t *c, const collect_entry_t *e)
{
        size_t s;

        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 1024;
                collect_entry_t *v = realloc(c->entries, cap * sizeof(*v));

                if (!v)
                        return -1;
                c->entries = v;
                c->cap = cap;
        }
        if ((c->n + 1) * 2 > c->n_slots && rehash(c))
                return -1;
        c->entries[c->n] = *e;
        s = hash_str(e->id) & (c->n_slots - 1);
        while (c->slots[s])
                s = (s + 1) & (c->n_slots - 1);
        c->slots[s] = ++c->n;
        return 0;
}

static int count_code(code_counts_t *cc, const char *code)
{
        code_count_t *v;

        cc->total++;
        for (size_t i = 0; i < cc->n; i++) {
                if (!strcmp(cc->v[i].code, code)) {
                        cc->v[i].n++;
                        return 0;
                }
        }
        v = realloc(cc->v, (cc->n + 1) * sizeof(*v));
        if (!v)
                return -1;
        cc->v = v;
        v[cc->n].code = strdup(code);
        if (!v[cc->n].code)
                return -1;
        v[cc->n++].n = 1;
        return 0;
}

static void code_counts_cleanup(code_counts_t *cc)
{
        for (size_t i = 0; i < cc->n; i++)
                free(cc->v[i].code);
        free(cc->v);
        memset(cc, 0, sizeof(*cc));
}

void sl_collect_cleanup(collect_t *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->entries[i].id);
                free(c->entries[i].error_code);
                free(c->entries[i].class_label);
        }
        free(c->entries);
        free(c->slots);
        code_counts_cleanup(&c->errors);
        code_counts_cleanup(&c->dead_letters);
        memset(c, 0, sizeof(*c));
}

/* Top-1 of a response: its first ClassScore, else the argmax of a float32
 * first output (a model served without top-k). */
static void top1(const sl_response_decoded_t *r, collect_entry_t *e)
{
        const sl_tensor_t *t;
        int64_t n;

        e->predicted = -1;
        if (r->n_classes > 0) {
                e->predicted = r->class_index[0];
                e->probability = r->class_probability[0];
                return;
        }
        if (r->n_outputs < 1 || r->outputs[0].tensor.dtype != SL_DT_FLOAT)
                return;
        t = &r->outputs[0].tensor;
        n = sl_tensor_numel(t);
        if (n < 1 || (size_t)n * sizeof(float) > t->nbytes)
                return;
        for (int64_t i = 0; i < n; i++) {
                float v = ((const float *)t->data)[i];

                if (e->predicted < 0 || v > e->probability) {
                        e->predicted = (int32_t)i;
                        e->probability = v;
                }
        }
}

static int on_response(collect_t *c, const rd_kafka_message_t *msg, const sl_codec_t *codec)
{
        sl_response_decoded_t *r = NULL;
        rd_kafka_timestamp_type_t tstype;
        char errstr[512];
        collect_entry_t e;
        sl_err_t err;
        int ret = 0;

        memset(&e, 0, sizeof(e));
        err = sl_codec_decode_response(codec, msg->payload, msg->len, &r, errstr, sizeof(errstr));
        if (err) {
                if (c->undecodable++ < COLLECT_ERRORS_SHOWN)
                        fprintf(stderr, "collect: %s [%d] offset %lld: %s\n",
                                rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                                (long long)msg->offset, errstr);
                goto done;
        }
        if (c->id_prefix && strncmp(r->id, c->id_prefix, strlen(c->id_prefix))) {
                c->other_ids++;
                goto done;
        }
        c->responses++;
        if (find_entry(c, r->id) >= 0) {
                c->duplicates++;
                goto done;
        }
        top1(r, &e);
        e.has_label = r->has_label;
        e.label = r->label;
        e.request_ts_ms = r->timings.request_timestamp_ms;
        e.response_ts_ms = rd_kafka_message_timestamp(msg, &tstype);
        e.id = strdup(r->id);
        if (r->error_code)
                e.error_code = strdup(r->error_code);
        if (r->n_classes > 0 && r->class_label && r->class_label[0])
                e.class_label = strdup(r->class_label[0]);
        if (!e.id || (r->error_code && !e.error_code) ||
            (r->n_classes > 0 && r->class_label && r->class_label[0] && !e.class_label) ||
            (r->error_code && count_code(&c->errors, r->error_code)) || add_entry(c, &e)) {
                ret = -1;
                goto done;
        }
        memset(&e, 0, sizeof(e)); /* owned by c now */
done:
        free(e.id);
        free(e.error_code);
        free(e.class_label);
        sl_response_decoded_destroy(r);
        return ret;
}

static int on_dead_letter(collect_t *c, const rd_kafka_message_t *msg, const sl_codec_t *codec)
{
        char *code = NULL, *message = NULL, *request_id = NULL;
        char errstr[512];
        int64_t offset = -1;
        int ret;

        if (sl_codec_decode_dead_letter(codec, msg->payload, msg->len, &code, &message, &request_id,
                                        &offset, errstr, sizeof(errstr))) {
                fprintf(stderr, "collect: %s [%d] offset %lld: %s\n", rd_kafka_topic_name(msg->rkt),
                        (int)msg->partition, (long long)msg->offset, errstr);
                ret = count_code(&c->dead_letters, "(undecodable)");
                goto done;
        }
        ret = count_code(&c->dead_letters, code ? code : "(none)");
done:
        free(code);
        free(message);
        free(request_id);
        return ret;
}

/* ---- Kafka ---- */

rd_kafka_t *sl_collect_consumer_new(const collect_opts_t *o, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = NULL;
        char group[128];
        const struct {
                const char *name, *value;
        } defaults[] = {
            {"bootstrap.servers", o->bootstrap_servers}, {"group.id", group},
            {"auto.offset.reset", "earliest"},           {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
        };

        if (o->group)
                snprintf(group, sizeof(group), "%s", o->group);
        else
                snprintf(group, sizeof(group), "sluice-collect-%ld-%lld", (long)getpid(),
                         (long long)sl_wall_ms());
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (rd_kafka_conf_set(conf, defaults[i].name, defaults[i].value, errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        goto done;
        if (sl_cli_kafka_props(conf, o->props, o->n_props, errstr, errstr_size))
                goto done;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (rk) {
                conf = NULL; /* owned by rk */
                rd_kafka_poll_set_consumer(rk);
        }
done:
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rk;
}

/* Every partition of each topic from its beginning, without a group. */
static sl_err_t assign_all(rd_kafka_t *rk, const char **topics, int n_topics, char *errstr,
                           size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
        sl_err_t err = SL_OK;

        for (int i = 0; i < n_topics; i++) {
                const struct rd_kafka_metadata *md = NULL;
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[i], NULL);
                rd_kafka_resp_err_t kerr;

                kerr = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : rd_kafka_last_error();
                if (!kerr && (md->topic_cnt != 1 || md->topics[0].err))
                        kerr = md->topic_cnt == 1 ? md->topics[0].err
                                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                if (kerr) {
                        sl_strfmt(errstr, errstr_size, "metadata of topic %s: %s", topics[i],
                                  rd_kafka_err2str(kerr));
                        err = SL_ERR_KAFKA;
                } else {
                        for (int p = 0; p < md->topics[0].partition_cnt; p++)
                                rd_kafka_topic_partition_list_add(parts, topics[i],
                                                                  md->topics[0].partitions[p].id)
                                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
                }
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (rkt)
                        rd_kafka_topic_destroy(rkt);
                if (err)
                        goto done;
        }
        if (rd_kafka_assign(rk, parts)) {
                sl_strfmt(errstr, errstr_size, "assigning partitions failed");
                err = SL_ERR_KAFKA;
        }
done:
        rd_kafka_topic_partition_list_destroy(parts);
        return err;
}

sl_err_t sl_collect_start(rd_kafka_t *rk, const collect_opts_t *o, char *errstr, size_t errstr_size)
{
        const char *topics[2] = {o->topic, o->dead_letter_topic};
        int n = o->dead_letter_topic ? 2 : 1;
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_resp_err_t kerr;

        if (o->assign)
                return assign_all(rk, topics, n, errstr, errstr_size);
        sub = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++)
                rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
        kerr = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (kerr) {
                sl_strfmt(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(kerr));
                return SL_ERR_KAFKA;
        }
        return SL_OK;
}

/* Until --expect unique responses, --timeout-ms of silence, or a signal. */
int sl_collect_consume(rd_kafka_t *rk, const collect_opts_t *o, const sl_codec_t *codec,
                       const volatile sig_atomic_t *stop, collect_t *c)
{
        int64_t last_us = sl_now_us();
        rd_kafka_resp_err_t last_err = RD_KAFKA_RESP_ERR_NO_ERROR;

        while (!*stop && !(o->expect && (int64_t)c->n >= o->expect)) {
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
                int rc = 0;

                if (!msg) {
                        if (sl_now_us() - last_us > o->timeout_ms * 1000)
                                break;
                        continue;
                }
                if (msg->err) {
                        /* A topic that does not exist yet is reported until it
                         * does; say so once per error. */
                        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && msg->err != last_err)
                                fprintf(stderr, "collect: %s\n", rd_kafka_message_errstr(msg));
                        last_err = msg->err;
                } else if (o->dead_letter_topic &&
                           !strcmp(rd_kafka_topic_name(msg->rkt), o->dead_letter_topic)) {
                        last_us = sl_now_us();
                        rc = on_dead_letter(c, msg, codec);
                } else {
                        last_us = sl_now_us();
                        rc = on_response(c, msg, codec);
                }
                rd_kafka_message_destroy(msg);
                if (rc) {
                        fprintf(stderr, "collect: out of memory\n");
                        return -1;
                }
        }
        return 0;
}

int sl_collect_why_empty(rd_kafka_t *rk, const char *topic, char *why, size_t why_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int ret = 0;

        if (!rkt) {
                sl_strfmt(why, why_size, "topic %s: %s", topic,
                          rd_kafka_err2str(rd_kafka_last_error()));
                return 1;
        }
        err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err) {
                sl_strfmt(why, why_size, "no metadata from the brokers: %s", rd_kafka_err2str(err));
                ret = 1;
        } else if (md->topic_cnt < 1 || md->topics[0].err) {
                sl_strfmt(why, why_size, "topic %s: %s", topic,
                          rd_kafka_err2str(md->topic_cnt < 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                                             : md->topics[0].err));
                ret = 1;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return ret;
}
