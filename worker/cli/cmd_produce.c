/* `sluice produce`: send IDX images (Fashion-MNIST by default) to a Kafka
 * topic as InferenceRequest records, paced by a token bucket, and check that
 * every message was delivered. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "args.h"
#include "cli.h"
#include "codec/codec.h"
#include "idx.h"

#define PRODUCE_FAILURES_SHOWN 5

typedef struct produce_opts_s {
        const char *bootstrap_servers;
        const char *topic;
        const char *images;
        const char *labels;
        const char *model;
        const char *model_version;
        const char *schema_dir;
        const char *id_prefix;
        int64_t count; /* 0 = every image */
        double rate;   /* messages per second, 0 = unpaced */
        sl_framing_t framing;
        int32_t schema_id;
        int typed_arrays;
        size_t n_props;
        char **props; /* "name=value" strings from -X (borrowed from argv) */
} produce_opts_t;

/* Delivery reports arrive on the thread that calls rd_kafka_poll/flush,
 * which is the main thread here, so plain counters suffice. */
typedef struct produce_stats_s {
        int64_t delivered;
        int64_t failed;
} produce_stats_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
        (void)sig;
        stop_requested++;
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice produce [OPTIONS]\n"
                "Send IDX images as InferenceRequest records to a Kafka topic.\n\n"
                "  -b, --bootstrap-servers LIST  brokers (default 127.0.0.1:39092)\n"
                "  -t, --topic NAME              requests topic (default sluice.requests)\n"
                "      --images FILE             IDX3 images, gzip'd or plain\n"
                "                                (default %s)\n"
                "      --labels FILE             IDX1 labels, \"\" for none\n"
                "                                (default %s)\n"
                "  -m, --model NAME              model name (default fashion_cnn)\n"
                "      --model-version V         model version (default: latest)\n"
                "  -n, --count N                 messages to send (default: every image;\n"
                "                                more than the file holds reuses images)\n"
                "      --rate MSGS_PER_SEC       pace sending (default 0 = unpaced)\n"
                "      --framing raw|confluent   wire framing (default raw)\n"
                "      --schema-id N             Confluent schema id (default 1)\n"
                "      --schema-dir DIR          folder of the .avsc files (default schemas)\n"
                "      --typed-arrays            send fp32_contents instead of raw bytes\n"
                "      --id-prefix STR           request id = STR + message index\n"
                "                                (default img-); Kafka key = the id\n"
                "  -X NAME=VALUE                 librdkafka producer property (repeatable)\n"
                "  -h, --help                    this help\n",
                SL_IDX_DEFAULT_IMAGES, SL_IDX_DEFAULT_LABELS);
}

static int parse_framing(const char *s, sl_framing_t *out)
{
        if (!strcmp(s, "raw"))
                *out = SL_FRAMING_RAW;
        else if (!strcmp(s, "confluent"))
                *out = SL_FRAMING_CONFLUENT;
        else
                return -1;
        return 0;
}

/* Returns 0 on success, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, produce_opts_t *o)
{
        enum {
                OPT_IMAGES = 256,
                OPT_LABELS,
                OPT_VERSION,
                OPT_RATE,
                OPT_FRAMING,
                OPT_SCHEMA_ID,
                OPT_SCHEMA_DIR,
                OPT_TYPED,
                OPT_ID_PREFIX
        };
        static const struct option longopts[] = {
            {"bootstrap-servers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"images", required_argument, NULL, OPT_IMAGES},
            {"labels", required_argument, NULL, OPT_LABELS},
            {"model", required_argument, NULL, 'm'},
            {"model-version", required_argument, NULL, OPT_VERSION},
            {"count", required_argument, NULL, 'n'},
            {"rate", required_argument, NULL, OPT_RATE},
            {"framing", required_argument, NULL, OPT_FRAMING},
            {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
            {"schema-dir", required_argument, NULL, OPT_SCHEMA_DIR},
            {"typed-arrays", no_argument, NULL, OPT_TYPED},
            {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int64_t v;
        int c;

        o->bootstrap_servers = "127.0.0.1:39092";
        o->topic = "sluice.requests";
        o->images = SL_IDX_DEFAULT_IMAGES;
        o->labels = SL_IDX_DEFAULT_LABELS;
        o->model = "fashion_cnn";
        o->schema_dir = "schemas";
        o->id_prefix = "img-";
        o->framing = SL_FRAMING_RAW;
        o->schema_id = 1;

        optind = 1;
        while ((c = getopt_long(argc, argv, "b:t:m:n:X:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        o->bootstrap_servers = optarg;
                        break;
                case 't':
                        o->topic = optarg;
                        break;
                case OPT_IMAGES:
                        o->images = optarg;
                        break;
                case OPT_LABELS:
                        o->labels = optarg;
                        break;
                case 'm':
                        o->model = optarg;
                        break;
                case OPT_VERSION:
                        o->model_version = optarg;
                        break;
                case 'n':
                        if (sl_parse_i64(optarg, &v) || v < 1) {
                                fprintf(stderr,
                                        "produce: --count: '%s' is not a positive integer\n",
                                        optarg);
                                return 2;
                        }
                        o->count = v;
                        break;
                case OPT_RATE: {
                        char *end = NULL;
                        double r = strtod(optarg, &end);

                        if (end == optarg || *end || !(r >= 0) || r > 1e9) {
                                fprintf(stderr, "produce: --rate: '%s' is not a rate in 0..1e9\n",
                                        optarg);
                                return 2;
                        }
                        o->rate = r;
                        break;
                }
                case OPT_FRAMING:
                        if (parse_framing(optarg, &o->framing)) {
                                fprintf(stderr,
                                        "produce: --framing: '%s' is not raw or confluent\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_SCHEMA_ID:
                        if (sl_parse_i64(optarg, &v) || v < 0 || v > INT32_MAX) {
                                fprintf(stderr, "produce: --schema-id: '%s' is not in 0..%d\n",
                                        optarg, INT32_MAX);
                                return 2;
                        }
                        o->schema_id = (int32_t)v;
                        break;
                case OPT_SCHEMA_DIR:
                        o->schema_dir = optarg;
                        break;
                case OPT_TYPED:
                        o->typed_arrays = 1;
                        break;
                case OPT_ID_PREFIX:
                        o->id_prefix = optarg;
                        break;
                case 'X':
                        if (!strchr(optarg, '=') || optarg[0] == '=') {
                                fprintf(stderr, "produce: -X: expected NAME=VALUE, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        o->props[o->n_props++] = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 1; /* caller exits 0 */
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "produce: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        return 0;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        produce_stats_t *stats = opaque;

        (void)rk;
        if (!msg->err) {
                stats->delivered++;
                return;
        }
        if (stats->failed++ < PRODUCE_FAILURES_SHOWN)
                fprintf(stderr, "produce: delivery failed for key %.*s: %s\n",
                        msg->key ? (int)msg->key_len : 6,
                        msg->key ? (const char *)msg->key : "(none)", rd_kafka_err2str(msg->err));
}

/* Producer with the user's -X properties applied after the defaults. */
static rd_kafka_t *producer_new(const produce_opts_t *o, produce_stats_t *stats, char *errstr,
                                size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = NULL;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap_servers, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK)
                goto done;
        if (sl_cli_kafka_props(conf, o->props, o->n_props, errstr, errstr_size))
                goto done;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_opaque(conf, stats);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (rk)
                conf = NULL; /* now owned by rk */
done:
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rk;
}

static void sleep_us(int64_t us)
{
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

        nanosleep(&ts, NULL);
}

/* Token bucket: \p rate tokens per second, at most \p burst saved up; one
 * token per message. Delivery reports are served while waiting. */
typedef struct bucket_s {
        double rate, burst, tokens;
        int64_t last_us;
} bucket_t;

static void bucket_take(bucket_t *b, rd_kafka_t *rk)
{
        for (;;) {
                int64_t now = sl_now_us();

                b->tokens += (double)(now - b->last_us) * b->rate / 1e6;
                if (b->tokens > b->burst)
                        b->tokens = b->burst;
                b->last_us = now;
                if (b->tokens >= 1.0) {
                        b->tokens -= 1.0;
                        return;
                }
                rd_kafka_poll(rk, 0);
                sleep_us((int64_t)((1.0 - b->tokens) * 1e6 / b->rate) + 1);
        }
}

/* Produce one value; on a full local queue serve delivery reports and retry,
 * so no message is ever dropped. Takes ownership of \p value (freed by
 * librdkafka after delivery, or here on error). */
static sl_err_t produce_one(rd_kafka_t *rk, const char *topic, const char *key, void *value,
                            size_t len, char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t kerr;

        for (;;) {
                kerr =
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
                if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(rk, 100);
        }
        if (kerr) {
                free(value);
                sl_strfmt(errstr, errstr_size, "producing %s to %s: %s", key, topic,
                          rd_kafka_err2str(kerr));
                return SL_ERR_KAFKA;
        }
        rd_kafka_poll(rk, 0);
        return SL_OK;
}

/* Encode and send o->count requests (or every image). Returns the number
 * sent in *sentp even on error. */
static sl_err_t send_all(const produce_opts_t *o, const sl_idx_images_t *img,
                         const sl_idx_labels_t *lab, const sl_codec_t *codec, rd_kafka_t *rk,
                         int64_t *sentp, char *errstr, size_t errstr_size)
{
        size_t npix = img->rows * img->cols;
        int64_t count = o->count ? o->count : (int64_t)img->count;
        float *pixels = NULL;
        char id[256];
        sl_named_tensor_t input;
        sl_request_t req;
        bucket_t bucket;
        sl_err_t err = SL_OK;

        pixels = malloc(npix * sizeof(*pixels));
        if (!pixels) {
                sl_strfmt(errstr, errstr_size, "out of memory");
                err = SL_ERR_NOMEM;
                goto done;
        }
        /* The encoder only reads the request: borrowed strings are cast. */
        memset(&req, 0, sizeof(req));
        memset(&input, 0, sizeof(input));
        input.name = (char *)"image";
        input.tensor.dtype = SL_DT_FLOAT;
        input.tensor.ndim = 4;
        input.tensor.dims[0] = 1;
        input.tensor.dims[1] = 1;
        input.tensor.dims[2] = (int64_t)img->rows;
        input.tensor.dims[3] = (int64_t)img->cols;
        input.tensor.data = pixels;
        input.tensor.nbytes = npix * sizeof(*pixels);
        req.id = id;
        req.model_name = (char *)o->model;
        req.model_version = (char *)o->model_version;
        req.n_inputs = 1;
        req.inputs = &input;

        bucket.rate = o->rate;
        bucket.burst = o->rate / 100.0 > 1.0 ? o->rate / 100.0 : 1.0;
        bucket.tokens = 1.0;
        bucket.last_us = sl_now_us();

        for (int64_t i = 0; i < count && !stop_requested; i++) {
                size_t k = (size_t)(i % (int64_t)img->count);
                void *buf = NULL;
                size_t len = 0;

                snprintf(id, sizeof(id), "%s%lld", o->id_prefix, (long long)i);
                sl_idx_image_to_f32(img, k, pixels);
                req.has_label = lab->labels != NULL;
                req.label = lab->labels ? lab->labels[k] : 0;
                err = sl_codec_encode_request(codec, &req, o->typed_arrays, &buf, &len);
                if (err) {
                        sl_strfmt(errstr, errstr_size, "encoding request %s: %s", id,
                                  sl_err2str(err));
                        goto done;
                }
                if (o->rate > 0)
                        bucket_take(&bucket, rk);
                err = produce_one(rk, o->topic, id, buf, len, errstr, errstr_size);
                if (err)
                        goto done;
                (*sentp)++;
        }
done:
        free(pixels);
        return err;
}

/* Wait for every delivery report. A second signal gives up waiting and
 * purges what is left (those count as failures). */
static void flush_all(rd_kafka_t *rk)
{
        int hinted = stop_requested > 0; /* the caller said it already */
        int64_t next_note_us = sl_now_us() + 10 * 1000000;

        while (rd_kafka_outq_len(rk) > 0) {
                if (stop_requested > 1) {
                        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                        rd_kafka_flush(rk, 1000);
                        break;
                }
                if (stop_requested && !hinted) {
                        fprintf(stderr,
                                "produce: interrupted; waiting for %d delivery report(s) "
                                "(interrupt again to give up)\n",
                                rd_kafka_outq_len(rk));
                        hinted = 1;
                }
                /* An unreachable broker keeps messages until message.timeout.ms (librdkafka's
                 * default 300 s): say what is being waited for. */
                if (sl_now_us() >= next_note_us) {
                        fprintf(stderr,
                                "produce: still waiting for %d delivery report(s) (until "
                                "message.timeout.ms; interrupt %s to give up)\n",
                                rd_kafka_outq_len(rk), stop_requested ? "again" : "twice");
                        next_note_us = sl_now_us() + 10 * 1000000;
                }
                rd_kafka_flush(rk, 200);
        }
}

int sl_cmd_produce(int argc, char **argv)
{
        produce_opts_t o;
        produce_stats_t stats = {0, 0};
        sl_idx_images_t img;
        sl_idx_labels_t lab;
        sl_codec_params_t cp;
        sl_codec_t *codec = NULL;
        rd_kafka_t *rk = NULL;
        char errstr[512];
        int64_t sent = 0, t0 = 0;
        double secs;
        size_t max_images;
        sl_err_t err = SL_OK;
        int rc, ret = 1;

        memset(&o, 0, sizeof(o));
        memset(&img, 0, sizeof(img));
        memset(&lab, 0, sizeof(lab));
        o.props = calloc((size_t)argc + 1, sizeof(*o.props));
        if (!o.props) {
                fprintf(stderr, "produce: out of memory\n");
                goto done;
        }
        rc = parse_args(argc, argv, &o);
        if (rc) {
                ret = rc == 1 ? 0 : 2;
                goto done;
        }
        max_images = o.count > 0 && (uint64_t)o.count < SIZE_MAX ? (size_t)o.count : 0;
        err = sl_idx_read_pair(o.images, o.labels, max_images, &img, &lab, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "produce: %s\n", errstr);
                goto done;
        }
        sl_codec_params_init(&cp);
        cp.framing = o.framing;
        cp.request_schema_id = o.schema_id;
        cp.schema_dir = o.schema_dir;
        err = sl_codec_new(&cp, &codec, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "produce: %s\n", errstr);
                goto done;
        }
        rk = producer_new(&o, &stats, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "produce: %s\n", errstr);
                goto done;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        t0 = sl_now_us();
        err = send_all(&o, &img, &lab, codec, rk, &sent, errstr, sizeof(errstr));
        if (err)
                fprintf(stderr, "produce: %s\n", errstr);
        if (stop_requested)
                fprintf(stderr, "produce: interrupted; waiting for delivery reports "
                                "(interrupt again to give up)\n");
        flush_all(rk);
        secs = (double)(sl_now_us() - t0) / 1e6;
        /* Messages purged or never reported are failures too. */
        if (stats.delivered + stats.failed < sent)
                stats.failed = sent - stats.delivered;
        printf("sent %lld in %.3f s (%.1f msg/s) to %s, delivered %lld, delivery failures %lld\n",
               (long long)sent, secs, secs > 0 ? (double)sent / secs : 0.0, o.topic,
               (long long)stats.delivered, (long long)stats.failed);
        ret = err || stats.failed || stop_requested ? 1 : 0;
done:
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (rk)
                rd_kafka_destroy(rk);
        sl_codec_destroy(codec);
        sl_idx_images_cleanup(&img);
        sl_idx_labels_cleanup(&lab);
        free(o.props);
        return ret;
}
