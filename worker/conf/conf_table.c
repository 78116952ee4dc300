/*
 * The settings table and everything driven by it: defaults, validation of
 * one value (shared by the file and the environment), cleanup, the Markdown
 * reference and the effective-settings listing.
 */
#include "conf_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};
static const char *const framings[] = {"raw", "confluent", NULL};
static const char *const guarantees[] = {"at_least_once", "exactly_once", NULL};

#define OFF(field) offsetof(sl_conf_t, field)
#define ROW_INT(p, field, d, lo, hi, text)                                                         \
        {                                                                                          \
                .path = (p), .type = SL_CONF_T_INT, .def = (d), .min = (lo), .max = (hi),          \
                .offset = OFF(field), .desc = (text)                                               \
        }
#define ROW_STR(p, field, d, text)                                                                 \
        {                                                                                          \
                .path = (p), .type = SL_CONF_T_STR, .def = (d), .offset = OFF(field),              \
                .desc = (text)                                                                     \
        }
#define ROW_ENUM(p, field, d, values, text)                                                        \
        {                                                                                          \
                .path = (p), .type = SL_CONF_T_STR, .def = (d), .allowed = (values),               \
                .offset = OFF(field), .desc = (text)                                               \
        }
#define SCHEMA_ID_MAX 2147483647

/* The one table (README's config reference is generated from it: `sluice config --reference`). */
const sl_conf_setting_t sl_conf_settings[] = {
    {.path = "worker.id",
     .type = SL_CONF_T_STR,
     .def = NULL,
     .def_doc = "host name",
     .offset = OFF(worker_id),
     .desc = "Worker identity stamped on responses, dead letters and metrics. Defaults to the "
             "host name (the pod name in Kubernetes)."},
    ROW_ENUM("worker.log_level", log_level, "info", log_levels,
             "Threshold of the log lines written to stderr."),
    ROW_STR("worker.models_dir", models_dir, "models",
            "Model repository root (`<name>/config.cfg`, `<name>/<version>/model.onnx`). A "
            "relative path resolves against the working directory."),
    ROW_INT("worker.top_k", top_k, "3", 0, 100,
            "Classes (label + probability) in each response when the model has a labels file; "
            "0 = none."),
    ROW_INT("worker.metrics_interval_ms", metrics_interval_ms, "10000", 100, 3600000,
            "Period of the WorkerMetrics records sent to the metrics topic (ms)."),
    ROW_INT("worker.shutdown_timeout_ms", shutdown_timeout_ms, "20000", 0, 120000,
            "Drain budget on SIGTERM: in-flight batches finish, are flushed and committed "
            "within it (ms). Keep it below Kubernetes' grace period (30 s by default)."),
    ROW_INT("worker.reload_interval_ms", reload_interval_ms, "5000", 0, 3600000,
            "How often the model repository is checked for new and removed version folders "
            "(ms); 0 = only on SIGHUP. New versions are loaded, warmed up and swapped in; "
            "removed ones are drained and freed."),
    ROW_INT("worker.model_memory_budget_mb", model_memory_budget_mb, "0", 0, 1048576,
            "Budget for loaded model files (MiB); 0 = none. A reload that would exceed it "
            "frees the replaced version before loading the new one (drain-then-load) instead "
            "of holding both (load-then-swap)."),
    ROW_INT("worker.max_in_flight_messages", max_in_flight_messages, "10000", 1, 10000000,
            "Backpressure: when this many consumed messages wait for their outputs to be "
            "acknowledged, every assigned partition is paused until half of them are."),
    ROW_INT("worker.max_in_flight_kbytes", max_in_flight_kbytes, "65536", 1, 2097151,
            "Backpressure: when the outputs produced and not yet acknowledged (key + value) "
            "reach this many KiB, every assigned partition is paused until half of them are "
            "acknowledged. Below librdkafka's own `queue.buffering.max.kbytes` (1 GiB)."),
    ROW_INT("batch.max_size", batch_max_size, "32", 1, 4096,
            "Most requests run through a model in one micro-batch."),
    ROW_INT("batch.max_wait_ms", batch_max_wait_ms, "5", 0, 10000,
            "Longest time the first request of a batch waits for more (ms); 0 = run what is "
            "already there."),
    {.path = "topics.requests",
     .type = SL_CONF_T_STRLIST,
     .def = "sluice.requests",
     .offset = OFF(request_topics),
     .count_offset = OFF(n_request_topics),
     .min = 1,
     .desc = "Topics the consumer group reads InferenceRequest records from (environment: "
             "comma-separated)."},
    {.path = "worker.pass_headers",
     .type = SL_CONF_T_STRLIST,
     .def = "traceparent,tracestate",
     .offset = OFF(pass_headers),
     .count_offset = OFF(n_pass_headers),
     .min = 0,
     .desc = "Request headers copied onto the response (W3C trace context by default; `[]` = "
             "none). `model-name` and `model-version` are always stamped."},
    {.path = "topics.default_models",
     .type = SL_CONF_T_STRLIST,
     .def = NULL,
     .def_doc = "none",
     .offset = OFF(default_models),
     .count_offset = OFF(n_default_models),
     .min = 0,
     .desc = "`\"TOPIC=MODEL\"` entries: the model for requests on TOPIC whose `model_name` is "
             "empty (latest version unless `model_version` names one)."},
    {.path = "topics.labels",
     .type = SL_CONF_T_STRLIST,
     .def = NULL,
     .def_doc = "none",
     .offset = OFF(label_topics),
     .count_offset = OFF(n_label_topics),
     .min = 0,
     .desc = "Topics of InferenceLabel records (ground truth arriving after the request), "
             "joined with predictions by request id for online evaluation."},
    ROW_INT("worker.label_join_max", label_join_max, "100000", 1, 16777216,
            "Most predictions (and early labels) waiting for their match in the labels join; "
            "the oldest is evicted beyond it."),
    ROW_INT("worker.label_join_max_age_ms", label_join_max_age_ms, "600000", 1000, 86400000,
            "How long a prediction waits for its label (and a label for its prediction) (ms)."),
    ROW_STR("topics.responses", response_topic, "sluice.responses",
            "Topic of the InferenceResponse records."),
    ROW_STR("topics.dead_letters", dead_letter_topic, "sluice.dead-letters",
            "Topic of the DeadLetter records (input that could not be decoded or served)."),
    ROW_STR("topics.metrics", metrics_topic, "sluice.metrics",
            "Topic of the WorkerMetrics records."),
    ROW_ENUM("codec.framing", framing, "raw", framings,
             "Wire framing: `raw` = Avro binary with the configured schemas, `confluent` = "
             "Schema Registry framing (magic byte 0 + 4-byte big-endian schema id)."),
    ROW_STR("codec.schema_dir", schema_dir, "schemas",
            "Directory of the Avro schemas (`.avsc`). A relative path resolves against the "
            "working directory."),
    ROW_INT("codec.request_schema_id", request_schema_id, "1", 0, SCHEMA_ID_MAX,
            "Schema id of InferenceRequest."),
    ROW_INT("codec.response_schema_id", response_schema_id, "2", 0, SCHEMA_ID_MAX,
            "Schema id of InferenceResponse."),
    ROW_INT("codec.dead_letter_schema_id", dead_letter_schema_id, "3", 0, SCHEMA_ID_MAX,
            "Schema id of DeadLetter."),
    ROW_INT("codec.metrics_schema_id", metrics_schema_id, "4", 0, SCHEMA_ID_MAX,
            "Schema id of WorkerMetrics."),
    ROW_INT("codec.label_schema_id", label_schema_id, "5", 0, SCHEMA_ID_MAX,
            "Schema id of InferenceLabel."),
    {.path = "codec.writer_schemas",
     .type = SL_CONF_T_STRLIST,
     .def = NULL,
     .def_doc = "`request_schema_id` = the reader schema",
     .offset = OFF(writer_schemas),
     .count_offset = OFF(n_writer_schemas),
     .min = 0,
     .desc = "Confluent framing: the writer schemas of requests as `\"ID=PATH\"` (schema id = "
             "`.avsc` file), each resolved against the reader schema `inference_request.avsc` "
             "at start-up (Avro schema resolution). `request_schema_id` names the reader "
             "schema unless listed here. A schema that cannot be resolved is logged and its "
             "requests become dead letters with code `SCHEMA`. Relative paths resolve against "
             "the working directory."},
    {.path = "codec.request_writer_schema",
     .type = SL_CONF_T_STR,
     .def = NULL,
     .def_doc = "the reader schema",
     .offset = OFF(request_writer_schema),
     .desc = "Raw framing: the `.avsc` file every request is written with, resolved against "
             "the reader schema at start-up; one that cannot be resolved stops start-up."},
    ROW_ENUM("delivery.guarantee", delivery_guarantee, "at_least_once", guarantees,
             "`at_least_once`: an input offset is committed only after its outputs are "
             "acknowledged (a crash can repeat outputs). `exactly_once`: outputs and input "
             "offsets commit in one Kafka transaction (readers use "
             "`isolation.level=read_committed`)."),
    ROW_STR("delivery.transactional_id", delivery_transactional_id, "auto",
            "`exactly_once` only: the producer's `transactional.id`; it must be stable for a "
            "replica and unique across replicas (zombie fencing). `auto` = \"sluice-\" + "
            "`worker.id`."),
    ROW_INT("delivery.transaction_interval_ms", delivery_transaction_interval_ms, "100", 1, 60000,
            "`exactly_once` only: how often the open transaction is committed (ms); outputs "
            "become visible to read_committed readers at that pace."),
    ROW_INT("http.port", http_port, "0", 0, 65535,
            "Port of the HTTP endpoints `/metrics` (Prometheus), `/healthz` and `/readyz`; 0 = "
            "no HTTP server. The Kubernetes manifests set 9100."),
    ROW_STR("http.bind_address", http_bind_address, "0.0.0.0",
            "Address the HTTP endpoints listen on (`127.0.0.1` to keep them local)."),
    ROW_INT("http.liveness_timeout_ms", http_liveness_timeout_ms, "30000", 1000, 3600000,
            "`/healthz` fails when the worker has work (assigned partitions with messages to "
            "fetch, or messages in flight) but made no progress for this long (ms)."),
};

const size_t sl_conf_settings_cnt = sizeof(sl_conf_settings) / sizeof(sl_conf_settings[0]);

const sl_conf_setting_t *sl_conf_setting_find(const char *path)
{
        for (size_t i = 0; i < sl_conf_settings_cnt; i++)
                if (!strcmp(sl_conf_settings[i].path, path))
                        return &sl_conf_settings[i];
        return NULL;
}

int sl_conf_is_group(const char *name)
{
        size_t len = strlen(name);
        for (size_t i = 0; i < sl_conf_settings_cnt; i++)
                if (!strncmp(sl_conf_settings[i].path, name, len) &&
                    sl_conf_settings[i].path[len] == '.')
                        return 1;
        return 0;
}

void sl_conf_env_name(const char *path, char *buf, size_t size)
{
        size_t plen = strlen(SL_CONF_ENV_PREFIX);
        size_t i;

        if (!size)
                return;
        sl_strfmt(buf, size, "%s", SL_CONF_ENV_PREFIX);
        for (i = 0; path[i] && plen + i + 1 < size; i++)
                buf[plen + i] = path[i] == '.' ? '_' : (char)toupper((unsigned char)path[i]);
        if (plen + i < size)
                buf[plen + i] = '\0';
}

static void *field(sl_conf_t *conf, size_t offset)
{
        return (char *)conf + offset;
}

static const void *cfield(const sl_conf_t *conf, size_t offset)
{
        return (const char *)conf + offset;
}

sl_err_t sl_conf_set_int(sl_conf_t *conf, const sl_conf_setting_t *row, int64_t v,
                         const char *where, char *errstr, size_t errstr_size)
{
        SL_ASSERT(row->type == SL_CONF_T_INT);
        if (v < row->min || v > row->max) {
                sl_strfmt(errstr, errstr_size, "%s: %s: %lld is out of range (%lld..%lld)", where,
                          row->path, (long long)v, (long long)row->min, (long long)row->max);
                return SL_ERR_CONFIG;
        }
        *(int *)field(conf, row->offset) = (int)v;
        return SL_OK;
}

static void join_allowed(const char *const *allowed, const char *sep, char *buf, size_t size)
{
        size_t off = 0;
        buf[0] = '\0';
        for (size_t i = 0; allowed[i] && off < size; i++) {
                int n = snprintf(buf + off, size - off, "%s%s", i ? sep : "", allowed[i]);
                if (n < 0)
                        break;
                off += (size_t)n;
        }
}

sl_err_t sl_conf_set_str(sl_conf_t *conf, const sl_conf_setting_t *row, const char *s,
                         const char *where, char *errstr, size_t errstr_size)
{
        char **dst = field(conf, row->offset);
        char *copy;

        SL_ASSERT(row->type == SL_CONF_T_STR);
        if (!*s) {
                sl_strfmt(errstr, errstr_size, "%s: %s: must not be empty", where, row->path);
                return SL_ERR_CONFIG;
        }
        if (row->allowed) {
                size_t i;
                char list[128];
                for (i = 0; row->allowed[i] && strcmp(row->allowed[i], s); i++)
                        ;
                if (!row->allowed[i]) {
                        join_allowed(row->allowed, ", ", list, sizeof(list));
                        sl_strfmt(errstr, errstr_size, "%s: %s: '%s' is not one of: %s", where,
                                  row->path, s, list);
                        return SL_ERR_CONFIG;
                }
        }
        if (!(copy = strdup(s))) {
                sl_strfmt(errstr, errstr_size, "%s: %s: out of memory", where, row->path);
                return SL_ERR_NOMEM;
        }
        free(*dst);
        *dst = copy;
        return SL_OK;
}

/* codec.writer_schemas entries are "ID=PATH" with distinct ids (checked here
 * so that the error names the file and line; the codec reads the files). */
static sl_err_t check_writer_schemas(const sl_conf_setting_t *row, const char *const *items,
                                     size_t n, const char *where, char *errstr, size_t errstr_size)
{
        int64_t ids[SL_CONF_MAX_TOPICS];

        if (row->offset != OFF(writer_schemas))
                return SL_OK;
        for (size_t i = 0; i < n && i < SL_CONF_MAX_TOPICS; i++) {
                const char *eq = strchr(items[i], '=');
                char num[16];

                if (!eq || eq == items[i] || !eq[1] || (size_t)(eq - items[i]) >= sizeof(num) ||
                    !sl_strfmt(num, sizeof(num), "%.*s", (int)(eq - items[i]), items[i]) ||
                    sl_parse_i64(num, &ids[i]) || ids[i] < 0 || ids[i] > SCHEMA_ID_MAX) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: %s: entry %zu \"%s\" is not \"ID=PATH\" (ID 0..%d)", where,
                                  row->path, i + 1, items[i], SCHEMA_ID_MAX);
                        return SL_ERR_CONFIG;
                }
                for (size_t j = 0; j < i; j++) {
                        if (ids[j] == ids[i]) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: schema id %lld is listed twice", where,
                                          row->path, (long long)ids[i]);
                                return SL_ERR_CONFIG;
                        }
                }
        }
        return SL_OK;
}

/* topics.default_models entries are "TOPIC=MODEL", one per topic. */
static sl_err_t check_default_models(const sl_conf_setting_t *row, const char *const *items,
                                     size_t n, const char *where, char *errstr, size_t errstr_size)
{
        if (row->offset != OFF(default_models))
                return SL_OK;
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(items[i], '=');
                if (!eq || eq == items[i] || !eq[1]) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: %s: entry %zu \"%s\" is not \"TOPIC=MODEL\"", where,
                                  row->path, i + 1, items[i]);
                        return SL_ERR_CONFIG;
                }
                for (size_t j = 0; j < i; j++) {
                        if (!strncmp(items[j], items[i], (size_t)(eq - items[i]) + 1)) {
                                sl_strfmt(errstr, errstr_size, "%s: %s: topic %.*s is listed twice",
                                          where, row->path, (int)(eq - items[i]), items[i]);
                                return SL_ERR_CONFIG;
                        }
                }
        }
        return SL_OK;
}

sl_err_t sl_conf_set_strlist(sl_conf_t *conf, const sl_conf_setting_t *row,
                             const char *const *items, size_t n, const char *where, char *errstr,
                             size_t errstr_size)
{
        char **dst = field(conf, row->offset);
        size_t *cnt = field(conf, row->count_offset);
        char *copies[SL_CONF_MAX_TOPICS] = {NULL};
        sl_err_t err = SL_ERR_CONFIG;
        size_t i;

        SL_ASSERT(row->type == SL_CONF_T_STRLIST);
        if (n < (size_t)row->min || n > SL_CONF_MAX_TOPICS) {
                sl_strfmt(errstr, errstr_size, "%s: %s: %zu entries, expected %lld..%d", where,
                          row->path, n, (long long)row->min, SL_CONF_MAX_TOPICS);
                goto done;
        }
        if (check_writer_schemas(row, items, n, where, errstr, errstr_size) ||
            check_default_models(row, items, n, where, errstr, errstr_size))
                goto done;
        for (i = 0; i < n; i++) {
                if (!*items[i]) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: entry %zu is empty", where,
                                  row->path, i + 1);
                        goto done;
                }
                if (!(copies[i] = strdup(items[i]))) {
                        err = SL_ERR_NOMEM;
                        sl_strfmt(errstr, errstr_size, "%s: %s: out of memory", where, row->path);
                        goto done;
                }
        }
        for (i = 0; i < *cnt; i++)
                free(dst[i]);
        for (i = 0; i < SL_CONF_MAX_TOPICS; i++) {
                dst[i] = copies[i];
                copies[i] = NULL;
        }
        *cnt = n;
        err = SL_OK;
done:
        for (i = 0; i < SL_CONF_MAX_TOPICS; i++)
                free(copies[i]);
        return err;
}

/* Split a comma-separated list in place, trimming blanks around each item. */
static size_t split_list(char *s, char **items, size_t max)
{
        size_t n = 0;
        for (;;) {
                char *end = strchr(s, ',');
                char *last;
                if (end)
                        *end = '\0';
                while (isspace((unsigned char)*s))
                        s++;
                last = s + strlen(s);
                while (last > s && isspace((unsigned char)last[-1]))
                        *--last = '\0';
                if (n < max)
                        items[n] = s;
                n++;
                if (!end)
                        return n;
                s = end + 1;
        }
}

sl_err_t sl_conf_set_text(sl_conf_t *conf, const sl_conf_setting_t *row, const char *text,
                          const char *where, char *errstr, size_t errstr_size)
{
        char *copy = NULL;
        char *items[SL_CONF_MAX_TOPICS];
        sl_err_t err = SL_ERR_CONFIG;
        int64_t v;
        size_t n;

        switch (row->type) {
        case SL_CONF_T_INT:
                if (sl_parse_i64(text, &v)) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: expected integer, got '%s'", where,
                                  row->path, text);
                        goto done;
                }
                err = sl_conf_set_int(conf, row, v, where, errstr, errstr_size);
                break;
        case SL_CONF_T_STR:
                err = sl_conf_set_str(conf, row, text, where, errstr, errstr_size);
                break;
        case SL_CONF_T_STRLIST:
                if (!(copy = strdup(text))) {
                        err = SL_ERR_NOMEM;
                        sl_strfmt(errstr, errstr_size, "%s: %s: out of memory", where, row->path);
                        goto done;
                }
                n = split_list(copy, items, SL_CONF_MAX_TOPICS);
                err = sl_conf_set_strlist(conf, row, (const char *const *)items, n, where, errstr,
                                          errstr_size);
                break;
        }
done:
        free(copy);
        return err;
}

const char *sl_conf_type_name(int config_type)
{
        switch (config_type) {
        case CONFIG_TYPE_GROUP:
                return "group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "integer";
        case CONFIG_TYPE_FLOAT:
                return "float";
        case CONFIG_TYPE_STRING:
                return "string";
        case CONFIG_TYPE_BOOL:
                return "boolean";
        case CONFIG_TYPE_ARRAY:
                return "array";
        case CONFIG_TYPE_LIST:
                return "list";
        default:
                return "nothing";
        }
}

sl_err_t sl_conf_init_defaults(sl_conf_t *conf)
{
        char errstr[256];
        char host[256];
        sl_err_t err = SL_OK;

        memset(conf, 0, sizeof(*conf));
        if (!(conf->path = strdup(""))) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                const sl_conf_setting_t *row = &sl_conf_settings[i];
                const char *def = row->def;
                /* Rows without a default other than worker.id start unset (NULL or an
                 * empty list); their def_doc says what that means. */
                if (!def && row->offset != OFF(worker_id))
                        continue;
                if (!def) {
                        /* Only worker.id is computed: the host name is the pod name under
                         * Kubernetes, unique per replica, which is what the id is for. */
                        if (gethostname(host, sizeof(host)) || !host[0])
                                sl_strfmt(host, sizeof(host), "sluice");
                        host[sizeof(host) - 1] = '\0';
                        def = host;
                }
                if ((err = sl_conf_set_text(conf, row, def, "default", errstr, sizeof(errstr)))) {
                        /* A bad default is a bug in the table, not bad input. */
                        SL_ASSERT(err == SL_ERR_NOMEM);
                        goto done;
                }
        }
done:
        if (err)
                sl_conf_cleanup(conf);
        return err;
}

void sl_conf_cleanup(sl_conf_t *conf)
{
        if (!conf)
                return;
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                const sl_conf_setting_t *row = &sl_conf_settings[i];
                if (row->type == SL_CONF_T_STR) {
                        free(*(char **)field(conf, row->offset));
                } else if (row->type == SL_CONF_T_STRLIST) {
                        char **items = field(conf, row->offset);
                        for (size_t j = 0; j < SL_CONF_MAX_TOPICS; j++)
                                free(items[j]);
                }
        }
        sl_conf_kafka_cleanup(conf);
        free(conf->path);
        memset(conf, 0, sizeof(*conf));
}

/* Levenshtein distance, capped at 64 characters (longer names get no suggestion). */
static int edit_distance(const char *a, const char *b)
{
        int prev[65], cur[65];
        size_t la = strlen(a), lb = strlen(b);

        if (la > 64 || lb > 64)
                return 1000;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = (int)j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = (int)i;
                for (size_t j = 1; j <= lb; j++) {
                        int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        int del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                }
                memcpy(prev, cur, sizeof(int) * (lb + 1));
        }
        return prev[lb];
}

static void consider(const char *name, const char *cand, const char **best, int *best_d)
{
        int d = edit_distance(name, cand);
        if (d < *best_d) {
                *best_d = d;
                *best = cand;
        }
}

const char *sl_conf_suggest(const char *name)
{
        static const char *const roots[] = {"worker", "batch",    "topics", "codec",
                                            "http",   "delivery", "kafka",  "kafka_properties"};
        const char *best = NULL;
        int best_d = 1000;
        int limit = strlen(name) >= 12 ? 3 : 2;

        for (size_t i = 0; i < sl_conf_settings_cnt; i++)
                consider(name, sl_conf_settings[i].path, &best, &best_d);
        for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
                consider(name, roots[i], &best, &best_d);
        return best_d <= limit ? best : NULL;
}

const sl_conf_setting_t *sl_conf_suggest_env(const char *var)
{
        const sl_conf_setting_t *best = NULL;
        char env[128];
        int best_d = 1000, d;

        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                sl_conf_env_name(sl_conf_settings[i].path, env, sizeof(env));
                if ((d = edit_distance(var, env)) < best_d) {
                        best_d = d;
                        best = &sl_conf_settings[i];
                }
        }
        return best_d <= 3 ? best : NULL;
}

static const char *type_doc(const sl_conf_setting_t *row)
{
        switch (row->type) {
        case SL_CONF_T_INT:
                return "integer";
        case SL_CONF_T_STRLIST:
                return "string list";
        default:
                return row->allowed ? "enum" : "string";
        }
}

void sl_conf_write_reference(FILE *fp)
{
        char env[128], range[128];

        fprintf(fp, "| Setting | Type | Default | Range / allowed | Environment | Description |\n");
        fprintf(fp, "|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                const sl_conf_setting_t *row = &sl_conf_settings[i];
                sl_conf_env_name(row->path, env, sizeof(env));
                range[0] = '\0';
                if (row->type == SL_CONF_T_INT)
                        sl_strfmt(range, sizeof(range), "%lld .. %lld", (long long)row->min,
                                  (long long)row->max);
                else if (row->allowed)
                        join_allowed(row->allowed, ", ", range, sizeof(range));
                else if (row->type == SL_CONF_T_STRLIST)
                        sl_strfmt(range, sizeof(range), "%lld .. %d entries", (long long)row->min,
                                  SL_CONF_MAX_TOPICS);
                else
                        sl_strfmt(range, sizeof(range), "non-empty");
                fprintf(fp, "| `%s` | %s | ", row->path, type_doc(row));
                if (!row->def)
                        fprintf(fp, "(%s)", row->def_doc);
                else if (row->type == SL_CONF_T_INT)
                        fprintf(fp, "`%s`", row->def);
                else if (row->type == SL_CONF_T_STRLIST) {
                        /* "a,b" -> ["a", "b"] */
                        fputs("`[\"", fp);
                        for (const char *c = row->def; *c; c++)
                                if (*c == ',')
                                        fputs("\", \"", fp);
                                else
                                        fputc(*c, fp);
                        fputs("\"]`", fp);
                } else
                        fprintf(fp, "`\"%s\"`", row->def);
                fprintf(fp, " | %s | `%s` | %s |\n", range, env, row->desc);
        }
        fprintf(fp,
                "| `kafka.<name>` | scalar or string list | | librdkafka property | `%s<NAME>` | "
                "librdkafka property `<name>` with `_` read as `.` (`bootstrap_servers` -> "
                "`bootstrap.servers`); booleans and numbers are passed as text. Environment: "
                "the rest of the variable name lower-cased, `_` -> `.`. |\n",
                SL_CONF_ENV_KAFKA_PREFIX);
        fprintf(fp, "| `kafka_properties` | string list | `[]` | `\"name=value\"` | | "
                    "librdkafka properties passed verbatim (for names `kafka.<name>` cannot "
                    "spell). |\n");
}

void sl_conf_write_effective(const sl_conf_t *conf, FILE *fp)
{
        char where[SL_CONF_WHERE_SIZE];

        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                const sl_conf_setting_t *row = &sl_conf_settings[i];
                fprintf(fp, "%s = ", row->path);
                if (row->type == SL_CONF_T_INT) {
                        fprintf(fp, "%d\n", *(const int *)cfield(conf, row->offset));
                } else if (row->type == SL_CONF_T_STR) {
                        const char *s = *(char *const *)cfield(conf, row->offset);
                        if (s)
                                fprintf(fp, "\"%s\"\n", s);
                        else /* not the empty string, which the setting may refuse */
                                fprintf(fp, "(not set: %s)\n", row->def_doc ? row->def_doc : "");
                } else {
                        char *const *items = cfield(conf, row->offset);
                        size_t n = *(const size_t *)cfield(conf, row->count_offset);
                        fprintf(fp, "[");
                        for (size_t j = 0; j < n; j++)
                                fprintf(fp, "%s\"%s\"", j ? ", " : "", items[j]);
                        fprintf(fp, "]\n");
                }
        }
        for (size_t i = 0; i < conf->n_kafka_props; i++) {
                const sl_conf_kafka_prop_t *p = &conf->kafka_props[i];
                fprintf(fp, "kafka: %s = \"%s\"  # %s\n", p->name,
                        sl_conf_kafka_prop_is_secret(p->name) ? "***" : p->value,
                        sl_conf_kafka_prop_where(p, where, sizeof(where)));
        }
}
