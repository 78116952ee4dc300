/* `sluice collect`: read the responses topic (and optionally the dead-letter
 * topic) from the beginning and summarise: unique responses and duplicates,
 * errors by code, accuracy on labelled requests, end-to-end latency
 * percentiles and the message rate. This file: options, the summary and its
 * text, JSON and CSV output; reading the topics is in cmd_collect_consume.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "collect.h"
#include "idx.h"

#define COLLECT_DEFAULT_LABELS "models/fashion_cnn/labels.txt"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice collect [OPTIONS]\n"
                "Read responses from the beginning and report accuracy, latency and rate.\n\n"
                "  -b, --bootstrap-servers LIST  brokers (default 127.0.0.1:39092)\n"
                "  -t, --topic NAME              responses topic (default sluice.responses)\n"
                "      --dead-letter-topic NAME  also read and count dead letters\n"
                "  -g, --group ID                consumer group (default: a new one per run;\n"
                "                                offsets are never committed)\n"
                "      --assign                  assign every partition from the beginning\n"
                "                                instead of joining a group\n"
                "      --expect N                stop after N unique responses; exit 1 if\n"
                "                                fewer arrive\n"
                "      --timeout-ms MS           stop after MS without a message (default 30000)\n"
                "      --framing raw|confluent   wire framing (default raw)\n"
                "      --schema-id N             Confluent schema id of responses (default 2)\n"
                "      --dead-letter-schema-id N Confluent schema id of dead letters (default 3)\n"
                "      --schema-dir DIR          folder of the .avsc files (default schemas)\n"
                "      --labels-file FILE        class names, one per line\n"
                "                                (default " COLLECT_DEFAULT_LABELS " if present)\n"
                "      --show N                  predictions to print (default 5)\n"
                "      --out FILE                CSV per unique id:\n"
                "                                id,predicted_index,probability,label,error_code\n"
                "      --json                    print the summary as one JSON line\n"
                "      --id-prefix STR           count only responses whose request id\n"
                "                                starts with STR (others are skipped)\n"
                "  -X NAME=VALUE                 librdkafka consumer property (repeatable)\n"
                "  -h, --help                    this help\n");
}

/* Returns 0 on success, 1 after --help, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, collect_opts_t *o)
{
        enum {
                OPT_DLQ = 256,
                OPT_ASSIGN,
                OPT_EXPECT,
                OPT_TIMEOUT,
                OPT_FRAMING,
                OPT_SCHEMA_ID,
                OPT_DLQ_SCHEMA_ID,
                OPT_SCHEMA_DIR,
                OPT_LABELS_FILE,
                OPT_SHOW,
                OPT_OUT,
                OPT_JSON,
                OPT_ID_PREFIX
        };
        static const struct option longopts[] = {
            {"bootstrap-servers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"dead-letter-topic", required_argument, NULL, OPT_DLQ},
            {"group", required_argument, NULL, 'g'},
            {"assign", no_argument, NULL, OPT_ASSIGN},
            {"expect", required_argument, NULL, OPT_EXPECT},
            {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
            {"framing", required_argument, NULL, OPT_FRAMING},
            {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
            {"dead-letter-schema-id", required_argument, NULL, OPT_DLQ_SCHEMA_ID},
            {"schema-dir", required_argument, NULL, OPT_SCHEMA_DIR},
            {"labels-file", required_argument, NULL, OPT_LABELS_FILE},
            {"show", required_argument, NULL, OPT_SHOW},
            {"out", required_argument, NULL, OPT_OUT},
            {"json", no_argument, NULL, OPT_JSON},
            {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int64_t v;
        int c;

        o->bootstrap_servers = "127.0.0.1:39092";
        o->topic = "sluice.responses";
        o->schema_dir = "schemas";
        o->labels_file = COLLECT_DEFAULT_LABELS;
        o->timeout_ms = 30000;
        o->show = 5;
        o->framing = SL_FRAMING_RAW;
        o->schema_id = -1;
        o->dead_letter_schema_id = -1;

        optind = 1;
        while ((c = getopt_long(argc, argv, "b:t:g:X:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        o->bootstrap_servers = optarg;
                        break;
                case 't':
                        o->topic = optarg;
                        break;
                case OPT_DLQ:
                        o->dead_letter_topic = optarg;
                        break;
                case 'g':
                        o->group = optarg;
                        break;
                case OPT_ASSIGN:
                        o->assign = 1;
                        break;
                case OPT_EXPECT:
                        if (sl_cli_int("collect", "--expect", optarg, 0, INT64_MAX, &o->expect))
                                return 2;
                        break;
                case OPT_TIMEOUT:
                        if (sl_cli_int("collect", "--timeout-ms", optarg, 0, INT32_MAX,
                                       &o->timeout_ms))
                                return 2;
                        break;
                case OPT_FRAMING:
                        if (!strcmp(optarg, "raw")) {
                                o->framing = SL_FRAMING_RAW;
                        } else if (!strcmp(optarg, "confluent")) {
                                o->framing = SL_FRAMING_CONFLUENT;
                        } else {
                                fprintf(stderr,
                                        "collect: --framing: '%s' is not raw or confluent\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_SCHEMA_ID:
                        if (sl_cli_int("collect", "--schema-id", optarg, 0, INT32_MAX, &v))
                                return 2;
                        o->schema_id = (int32_t)v;
                        break;
                case OPT_DLQ_SCHEMA_ID:
                        if (sl_cli_int("collect", "--dead-letter-schema-id", optarg, 0, INT32_MAX,
                                       &v))
                                return 2;
                        o->dead_letter_schema_id = (int32_t)v;
                        break;
                case OPT_SCHEMA_DIR:
                        o->schema_dir = optarg;
                        break;
                case OPT_LABELS_FILE:
                        o->labels_file = optarg;
                        o->labels_file_given = 1;
                        break;
                case OPT_SHOW:
                        if (sl_cli_int("collect", "--show", optarg, 0, INT32_MAX, &o->show))
                                return 2;
                        break;
                case OPT_OUT:
                        o->out = optarg;
                        break;
                case OPT_JSON:
                        o->json = 1;
                        break;
                case OPT_ID_PREFIX:
                        o->id_prefix = optarg;
                        break;
                case 'X':
                        if (!strchr(optarg, '=') || optarg[0] == '=') {
                                fprintf(stderr, "collect: -X: expected NAME=VALUE, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        o->props[o->n_props++] = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "collect: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        return 0;
}

/* ---- report ---- */

typedef struct summary_s {
        int64_t labelled, correct;
        int64_t n_latency;
        int64_t p50, p90, p99, max; /* ms */
        double rate;                /* msgs/s, < 0 unknown */
} summary_t;

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted \p v (Hyndman & Fan definition 1). */
static int64_t percentile(const int64_t *v, int64_t n, double p)
{
        int64_t rank = (int64_t)(p / 100.0 * (double)n + 0.999999999);

        if (rank < 1)
                rank = 1;
        return v[(rank > n ? n : rank) - 1];
}

static int summarise(const collect_t *c, summary_t *s)
{
        int64_t *lat = malloc((c->n ? c->n : 1) * sizeof(*lat));
        int64_t first_req = INT64_MAX, last_resp = INT64_MIN;

        if (!lat)
                return -1;
        memset(s, 0, sizeof(*s));
        s->rate = -1;
        for (size_t i = 0; i < c->n; i++) {
                const collect_entry_t *e = &c->entries[i];

                if (!e->error_code && e->has_label) {
                        s->labelled++;
                        s->correct += e->predicted == e->label;
                }
                if (e->request_ts_ms <= 0 || e->response_ts_ms < 0)
                        continue;
                lat[s->n_latency++] = e->response_ts_ms - e->request_ts_ms;
                if (e->request_ts_ms < first_req)
                        first_req = e->request_ts_ms;
                if (e->response_ts_ms > last_resp)
                        last_resp = e->response_ts_ms;
        }
        if (s->n_latency) {
                qsort(lat, (size_t)s->n_latency, sizeof(*lat), cmp_i64);
                s->p50 = percentile(lat, s->n_latency, 50);
                s->p90 = percentile(lat, s->n_latency, 90);
                s->p99 = percentile(lat, s->n_latency, 99);
                s->max = lat[s->n_latency - 1];
                if (last_resp > first_req)
                        s->rate = (double)c->n * 1000.0 / (double)(last_resp - first_req);
        }
        free(lat);
        return 0;
}

static void json_string(FILE *fp, const char *s)
{
        fputc('"', fp);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;

                if (ch == '"' || ch == '\\')
                        fprintf(fp, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(fp, "\\u%04x", ch);
                else
                        fputc(ch, fp);
        }
        fputc('"', fp);
}

static void json_counts(FILE *fp, const code_counts_t *cc)
{
        fputc('{', fp);
        for (size_t i = 0; i < cc->n; i++) {
                if (i)
                        fputc(',', fp);
                json_string(fp, cc->v[i].code);
                fprintf(fp, ":%lld", (long long)cc->v[i].n);
        }
        fputc('}', fp);
}

static void print_json(FILE *fp, const collect_t *c, const summary_t *s, const collect_opts_t *o)
{
        fprintf(fp,
                "{\"responses\":%lld,\"unique\":%zu,\"duplicates\":%lld,\"undecodable\":%lld,"
                "\"skipped\":%lld,\"errors\":%lld,\"errors_by_code\":",
                (long long)c->responses, c->n, (long long)c->duplicates, (long long)c->undecodable,
                (long long)c->other_ids, (long long)c->errors.total);
        json_counts(fp, &c->errors);
        fprintf(fp, ",\"dead_letters\":%lld,\"dead_letters_by_code\":",
                (long long)c->dead_letters.total);
        json_counts(fp, &c->dead_letters);
        fprintf(fp, ",\"labelled\":%lld,\"correct\":%lld,\"accuracy\":", (long long)s->labelled,
                (long long)s->correct);
        if (s->labelled)
                fprintf(fp, "%.6f", (double)s->correct / (double)s->labelled);
        else
                fputs("null", fp);
        if (s->n_latency)
                fprintf(fp, ",\"latency_ms\":{\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"max\":%lld}",
                        (long long)s->p50, (long long)s->p90, (long long)s->p99, (long long)s->max);
        else
                fputs(",\"latency_ms\":null", fp);
        if (s->rate >= 0)
                fprintf(fp, ",\"rate_msgs_per_s\":%.3f", s->rate);
        else
                fputs(",\"rate_msgs_per_s\":null", fp);
        fprintf(fp, ",\"expected\":%lld,\"complete\":%s}\n", (long long)o->expect,
                !o->expect || (int64_t)c->n >= o->expect ? "true" : "false");
}

static const char *class_name(char **names, size_t n_names, int64_t idx, const char *fallback,
                              char *buf, size_t buf_size)
{
        if (idx >= 0 && (size_t)idx < n_names && *names[idx])
                return names[idx];
        if (fallback)
                return fallback;
        snprintf(buf, buf_size, "%lld", (long long)idx);
        return buf;
}

static void print_text(FILE *fp, const collect_t *c, const summary_t *s, const collect_opts_t *o,
                       char **names, size_t n_names)
{
        fprintf(fp, "responses %lld: unique %zu, duplicates %lld, undecodable %lld",
                (long long)c->responses, c->n, (long long)c->duplicates, (long long)c->undecodable);
        if (o->id_prefix)
                fprintf(fp, ", skipped %lld (id not starting with '%s')", (long long)c->other_ids,
                        o->id_prefix);
        fputc('\n', fp);
        fprintf(fp, "errors %lld", (long long)c->errors.total);
        for (size_t i = 0; i < c->errors.n; i++)
                fprintf(fp, "%s%s=%lld", i ? " " : ": ", c->errors.v[i].code,
                        (long long)c->errors.v[i].n);
        fputc('\n', fp);
        if (o->dead_letter_topic) {
                fprintf(fp, "dead letters %lld", (long long)c->dead_letters.total);
                for (size_t i = 0; i < c->dead_letters.n; i++)
                        fprintf(fp, "%s%s=%lld", i ? " " : ": ", c->dead_letters.v[i].code,
                                (long long)c->dead_letters.v[i].n);
                fputc('\n', fp);
        }
        if (s->labelled)
                fprintf(fp, "accuracy %.4f (%lld of %lld labelled)\n",
                        (double)s->correct / (double)s->labelled, (long long)s->correct,
                        (long long)s->labelled);
        else
                fprintf(fp, "accuracy n/a (no labelled results)\n");
        if (s->n_latency)
                fprintf(fp,
                        "latency ms (response timestamp - request timestamp): p50 %lld "
                        "p90 %lld p99 %lld max %lld\n",
                        (long long)s->p50, (long long)s->p90, (long long)s->p99, (long long)s->max);
        if (s->rate >= 0)
                fprintf(fp,
                        "rate %.1f msg/s (unique responses / first request to last "
                        "response)\n",
                        s->rate);
        if (o->expect)
                fprintf(fp, "expected %lld: %s\n", (long long)o->expect,
                        (int64_t)c->n >= o->expect ? "reached" : "NOT reached");
        for (size_t i = 0; i < c->n && (int64_t)i < o->show; i++) {
                const collect_entry_t *e = &c->entries[i];
                char b1[32], b2[32];

                if (e->error_code) {
                        fprintf(fp, "  %-12s error %s\n", e->id, e->error_code);
                        continue;
                }
                fprintf(fp, "  %-12s label %-12s predicted %-12s p=%.4f\n", e->id,
                        e->has_label ? class_name(names, n_names, e->label, NULL, b1, sizeof(b1))
                                     : "-",
                        class_name(names, n_names, e->predicted, e->class_label, b2, sizeof(b2)),
                        (double)e->probability);
        }
}

static void csv_field(FILE *fp, const char *s)
{
        if (!strpbrk(s, ",\"\r\n")) {
                fputs(s, fp);
                return;
        }
        fputc('"', fp);
        for (; *s; s++) {
                if (*s == '"')
                        fputc('"', fp);
                fputc(*s, fp);
        }
        fputc('"', fp);
}

static int write_csv(const char *path, const collect_t *c)
{
        FILE *fp = fopen(path, "w");

        if (!fp) {
                fprintf(stderr, "collect: %s: cannot open: %s\n", path, strerror(errno));
                return -1;
        }
        for (size_t i = 0; i < c->n; i++) {
                const collect_entry_t *e = &c->entries[i];

                csv_field(fp, e->id);
                if (e->predicted >= 0)
                        fprintf(fp, ",%d,%.6f,", (int)e->predicted, (double)e->probability);
                else
                        fputs(",-1,,", fp);
                if (e->has_label)
                        fprintf(fp, "%lld", (long long)e->label);
                fputc(',', fp);
                if (e->error_code)
                        csv_field(fp, e->error_code);
                fputc('\n', fp);
        }
        if (fclose(fp)) {
                fprintf(stderr, "collect: %s: write failed: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

int sl_cmd_collect(int argc, char **argv)
{
        collect_opts_t o;
        collect_t c;
        summary_t s;
        sl_codec_params_t cp;
        sl_codec_t *codec = NULL;
        rd_kafka_t *rk = NULL;
        char **names = NULL;
        size_t n_names = 0;
        char errstr[512];
        int rc, ret = 1;

        memset(&o, 0, sizeof(o));
        memset(&c, 0, sizeof(c));
        o.props = calloc((size_t)argc + 1, sizeof(*o.props));
        if (!o.props) {
                fprintf(stderr, "collect: out of memory\n");
                goto done;
        }
        rc = parse_args(argc, argv, &o);
        if (rc) {
                ret = rc == 1 ? 0 : 2;
                goto done;
        }
        c.id_prefix = o.id_prefix;
        if ((o.labels_file_given || access(o.labels_file, R_OK) == 0) &&
            sl_idx_names_read(o.labels_file, &names, &n_names, errstr, sizeof(errstr))) {
                fprintf(stderr, "collect: %s\n", errstr);
                goto done;
        }
        sl_codec_params_init(&cp);
        cp.framing = o.framing;
        cp.schema_dir = o.schema_dir;
        if (o.schema_id >= 0)
                cp.response_schema_id = o.schema_id;
        if (o.dead_letter_schema_id >= 0)
                cp.dead_letter_schema_id = o.dead_letter_schema_id;
        if (sl_codec_new(&cp, &codec, errstr, sizeof(errstr))) {
                fprintf(stderr, "collect: %s\n", errstr);
                goto done;
        }
        rk = sl_collect_consumer_new(&o, errstr, sizeof(errstr));
        if (!rk || sl_collect_start(rk, &o, errstr, sizeof(errstr))) {
                fprintf(stderr, "collect: %s\n", errstr);
                goto done;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (sl_collect_consume(rk, &o, codec, &stop_requested, &c) || summarise(&c, &s))
                goto done;
        if (o.json)
                print_json(stdout, &c, &s, &o);
        else
                print_text(stdout, &c, &s, &o, names, n_names);
        if (o.out && write_csv(o.out, &c))
                goto done;
        ret = o.expect && (int64_t)c.n < o.expect ? 1 : 0;
        /* Nothing at all read: an empty topic is an answer, a missing one or no broker is not. */
        if (!c.responses && !c.other_ids && !c.undecodable && !c.dead_letters.total &&
            sl_collect_why_empty(rk, o.topic, errstr, sizeof(errstr))) {
                fprintf(stderr, "collect: read nothing: %s\n", errstr);
                ret = 1;
        }
done:
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        sl_codec_destroy(codec);
        sl_idx_names_free(names, n_names);
        sl_collect_cleanup(&c);
        free(o.props);
        return ret;
}
