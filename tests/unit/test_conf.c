/* Unit tests of worker/conf: defaults, file, errors with file:line, environment, kafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/conf_int.h"

#define ASSERT_CONTAINS(hay, needle)                                                               \
        do {                                                                                       \
                const char *h_ = (hay), *n_ = (needle);                                            \
                if (!strstr(h_, n_)) {                                                             \
                        print_error("expected \"%s\" in \"%s\"\n", n_, h_);                        \
                        fail();                                                                    \
                }                                                                                  \
        } while (0)

/* A temp directory holding one config file per test. */
typedef struct {
        char dir[64];
        char path[128];
} fixture_t;

static int fixture_setup(void **state)
{
        fixture_t *fx = calloc(1, sizeof(*fx));
        if (!fx)
                return -1;
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_test_conf.XXXXXX");
        if (!mkdtemp(fx->dir)) {
                free(fx);
                return -1;
        }
        snprintf(fx->path, sizeof(fx->path), "%s/sluice.cfg", fx->dir);
        *state = fx;
        return 0;
}

static int fixture_teardown(void **state)
{
        fixture_t *fx = *state;
        char env[128];
        unlink(fx->path);
        rmdir(fx->dir);
        free(fx);
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                sl_conf_env_name(sl_conf_settings[i].path, env, sizeof(env));
                unsetenv(env);
        }
        unsetenv("SLUICE_KAFKA_SASL_PASSWORD");
        unsetenv("SLUICE_KAFKA_BOOTSTRAP_SERVERS");
        unsetenv("SLUICE_KAFKA_SERVICE_HOST");
        unsetenv("SLUICE_KAFKA_PORT_9092_TCP");
        return 0;
}

static const char *write_cfg(fixture_t *fx, const char *text)
{
        FILE *fp = fopen(fx->path, "w");
        assert_non_null(fp);
        assert_int_equal(fputs(text, fp) >= 0, 1);
        assert_int_equal(fclose(fp), 0);
        return fx->path;
}

static const sl_conf_kafka_prop_t *prop(const sl_conf_t *conf, const char *name)
{
        for (size_t i = 0; i < conf->n_kafka_props; i++)
                if (!strcmp(conf->kafka_props[i].name, name))
                        return &conf->kafka_props[i];
        return NULL;
}

static void test_defaults(void **state)
{
        sl_conf_t conf;
        char host[256] = "";
        (void)state;

        assert_int_equal(sl_conf_init_defaults(&conf), SL_OK);
        gethostname(host, sizeof(host) - 1);
        assert_string_equal(conf.worker_id, host[0] ? host : "sluice");
        assert_string_equal(conf.log_level, "info");
        assert_string_equal(conf.models_dir, "models");
        assert_int_equal(conf.top_k, 3);
        assert_int_equal(conf.metrics_interval_ms, 10000);
        assert_int_equal(conf.shutdown_timeout_ms, 20000);
        assert_int_equal(conf.batch_max_size, 32);
        assert_int_equal(conf.batch_max_wait_ms, 5);
        assert_int_equal(conf.n_request_topics, 1);
        assert_string_equal(conf.request_topics[0], "sluice.requests");
        assert_string_equal(conf.response_topic, "sluice.responses");
        assert_string_equal(conf.dead_letter_topic, "sluice.dead-letters");
        assert_string_equal(conf.metrics_topic, "sluice.metrics");
        assert_string_equal(conf.framing, "raw");
        assert_string_equal(conf.schema_dir, "schemas");
        assert_int_equal(conf.request_schema_id, 1);
        assert_int_equal(conf.response_schema_id, 2);
        assert_int_equal(conf.dead_letter_schema_id, 3);
        assert_int_equal(conf.metrics_schema_id, 4);
        assert_int_equal(conf.n_kafka_props, 0);
        assert_string_equal(conf.path, "");
        sl_conf_cleanup(&conf);
        sl_conf_cleanup(&conf); /* zeroed: accepted */

        /* No file: defaults + environment. */
        char errstr[256];
        assert_int_equal(sl_conf_load(&conf, NULL, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(conf.batch_max_size, 32);
        sl_conf_cleanup(&conf);
}

static void test_valid_file(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[256] = "";
        const char *path = write_cfg(fx, "# sluice\n"
                                         "worker: { id = \"w1\"; log_level = \"debug\";\n"
                                         "  models_dir = \"/srv/models\"; top_k = 0;\n"
                                         "  metrics_interval_ms = 100; shutdown_timeout_ms = 0; }\n"
                                         "batch: { max_size = 4096; max_wait_ms = 10000; }\n"
                                         "topics: { requests = [\"a\", \"b\"];\n"
                                         "  responses = \"r\"; dead_letters = \"d\";\n"
                                         "  metrics = \"m\"; }\n"
                                         "codec: { framing = \"confluent\"; schema_dir = \"s\";\n"
                                         "  request_schema_id = 2147483647;\n"
                                         "  response_schema_id = 0L; }\n");

        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        assert_string_equal(conf.path, path);
        assert_string_equal(conf.worker_id, "w1");
        assert_string_equal(conf.log_level, "debug");
        assert_string_equal(conf.models_dir, "/srv/models");
        assert_int_equal(conf.top_k, 0);
        assert_int_equal(conf.metrics_interval_ms, 100);
        assert_int_equal(conf.shutdown_timeout_ms, 0);
        assert_int_equal(conf.batch_max_size, 4096);
        assert_int_equal(conf.batch_max_wait_ms, 10000);
        assert_int_equal(conf.n_request_topics, 2);
        assert_string_equal(conf.request_topics[0], "a");
        assert_string_equal(conf.request_topics[1], "b");
        assert_string_equal(conf.response_topic, "r");
        assert_string_equal(conf.dead_letter_topic, "d");
        assert_string_equal(conf.metrics_topic, "m");
        assert_string_equal(conf.framing, "confluent");
        assert_string_equal(conf.schema_dir, "s");
        assert_int_equal(conf.request_schema_id, 2147483647);
        assert_int_equal(conf.response_schema_id, 0);
        assert_int_equal(conf.dead_letter_schema_id, 3); /* default kept */
        sl_conf_cleanup(&conf);

        /* A single string is a one-topic list. */
        path = write_cfg(fx, "topics: { requests = \"only\"; }\n");
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(conf.n_request_topics, 1);
        assert_string_equal(conf.request_topics[0], "only");
        sl_conf_cleanup(&conf);
}

/* Each error class: the file's text, and what errstr must contain after "PATH:". */
static const struct {
        const char *text;
        const char *expect; /* after "PATH:" */
} error_cases[] = {
    {"batch: {\n  max_size = ;\n}\n", "2: syntax error"},
    {"a = 1;\na = 2;\n", "2: syntax error: duplicate setting name"},
    {"batch: {\n  max_wait_ms = 1;\n  max_sise = 8;\n}\n",
     "3: unknown setting 'batch.max_sise' (did you mean 'batch.max_size'?)"},
    {"\nbtach: { max_size = 8; }\n", "2: unknown setting 'btach' (did you mean 'batch'?)"},
    {"zzz = 1;\n", "1: unknown setting 'zzz'"},
    {"worker: { nested: { a = 1; }; }\n", "1: unknown setting 'worker.nested'"},
    {"worker = 5;\n", "1: worker: expected group, got integer"},
    {"batch: {\n  max_size = \"32\";\n}\n", "2: batch.max_size: expected integer, got string"},
    {"batch: {\n\n  max_size = 1.5;\n}\n", "3: batch.max_size: expected integer, got float"},
    {"worker: { id = 7; }\n", "1: worker.id: expected string, got integer"},
    {"batch: {\n  max_size = 5000;\n}\n", "2: batch.max_size: 5000 is out of range (1..4096)"},
    {"batch: { max_size = 0; }\n", "1: batch.max_size: 0 is out of range (1..4096)"},
    {"worker: {\n  top_k = 5000000000;\n}\n",
     "2: worker.top_k: 5000000000 is out of range (0..100)"},
    {"batch: { max_size = 4294967328; }\n", "1: batch.max_size: 4294967328 is out of range"},
    {"codec: { request_schema_id = -1; }\n", "1: codec.request_schema_id: -1 is out of range"},
    {"codec: {\n  framing = \"avro\";\n}\n",
     "2: codec.framing: 'avro' is not one of: raw, confluent"},
    {"worker: { log_level = \"verbose\"; }\n",
     "1: worker.log_level: 'verbose' is not one of: err, warning, notice, info, debug"},
    {"topics: { responses = \"\"; }\n", "1: topics.responses: must not be empty"},
    {"topics: { requests = []; }\n", "1: topics.requests: 0 entries, expected 1..16"},
    {"topics: {\n  requests = (\"a\",\n  1);\n}\n",
     "3: topics.requests[1]: expected string, got integer"},
    {"kafka_properties = [\n  \"a=b\",\n  \"oops\" ];\n",
     "3: kafka_properties[1]: expected \"name=value\", got \"oops\""},
    {"kafka_properties = [ \"=x\" ];\n", "1: kafka_properties[0]: expected \"name=value\""},
    {"kafka_properties = \"a=b\";\n", "1: kafka_properties: expected list of strings, got string"},
    {"kafka: {\n  sub: { a = 1; };\n}\n", "2: kafka.sub: expected string, integer, float"},
    {"kafka = 1;\n", "1: kafka: expected group, got integer"},
    {"kafka: { client_id = \"a\"; }\nkafka_properties = [\n \"client.id=b\" ];\n",
     "3: kafka property 'client.id' is already set at "},
    /* settings valid one by one, not together (no line: they may come from two places) */
    {"topics: { requests = [\"a\", \"b\"]; dead_letters = \"b\"; };\n",
     " topics.dead_letters = \"b\" is also in topics.requests"},
    {"topics: { requests = [\"a\"]; responses = \"a\"; };\n",
     " topics.responses = \"a\" is also in topics.requests"},
    {"topics: { requests = [\"a\", \"^rx\\\\..*\"]; };\n",
     " topics.requests \"^rx\\..*\": topic patterns (regular expressions) are not supported"},
    {"topics: { labels = [\"l\"]; metrics = \"l\"; };\n",
     " topics.metrics = \"l\" is also in topics.labels"},
    {"topics: { requests = [\"a\"]; labels = [\"a\"]; };\n",
     " topics.labels \"a\" is also in topics.requests"},
    {"topics: { requests = [\"a\"]; default_models = [\"a=m\", \"b=m\"]; };\n",
     " topics.default_models \"b=m\": topic b is not in topics.requests"},
    {"codec: { writer_schemas = [\"7=x.avsc\"]; };\n",
     " codec.writer_schemas applies to codec.framing = \"confluent\""},
    {"codec: { framing = \"confluent\"; request_writer_schema = \"x.avsc\"; };\n",
     " codec.request_writer_schema applies to codec.framing = \"raw\""},
};

static void test_errors(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512], expect[512];

        for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
                const char *path = write_cfg(fx, error_cases[i].text);
                errstr[0] = '\0';
                assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_ERR_CONFIG);
                snprintf(expect, sizeof(expect), "%s:%s", path, error_cases[i].expect);
                ASSERT_CONTAINS(errstr, expect);
                /* failure cleans up */
                assert_null(conf.path);
                assert_null(conf.worker_id);
        }
}

static void test_io_error(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512], missing[160];

        snprintf(missing, sizeof(missing), "%s/missing.cfg", fx->dir);
        assert_int_equal(sl_conf_load(&conf, missing, errstr, sizeof(errstr)), SL_ERR_IO);
        ASSERT_CONTAINS(errstr, missing);
        ASSERT_CONTAINS(errstr, "No such file");
        /* a folder given for the file */
        assert_int_equal(sl_conf_load(&conf, fx->dir, errstr, sizeof(errstr)), SL_ERR_IO);
        ASSERT_CONTAINS(errstr, "Is a directory");
}

static void test_include(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512], inc[160], expect[256];
        FILE *fp;

        /* @include resolves against the config file's directory; errors name the included file. */
        snprintf(inc, sizeof(inc), "%s/inc.cfg", fx->dir);
        fp = fopen(inc, "w");
        assert_non_null(fp);
        fputs("# included\nbatch: { max_size = 9999; }\n", fp);
        fclose(fp);
        write_cfg(fx, "worker: { top_k = 1; }\n@include \"inc.cfg\"\n");
        assert_int_equal(sl_conf_load(&conf, fx->path, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        snprintf(expect, sizeof(expect), "inc.cfg:2: batch.max_size: 9999 is out of range");
        ASSERT_CONTAINS(errstr, expect);
        ASSERT_CONTAINS(errstr, fx->dir);

        /* The 32-bit truncation check re-reads the included file, not the main one. */
        fp = fopen(inc, "w");
        assert_non_null(fp);
        fputs("worker: {\n  top_k = 4294967297; }\n", fp); /* 2^32 + 1 wraps to 1 */
        fclose(fp);
        write_cfg(fx, "@include \"inc.cfg\"\n");
        assert_int_equal(sl_conf_load(&conf, fx->path, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr, "inc.cfg:2: worker.top_k: 4294967297 is out of range (0..100)");
        unlink(inc);
}

static void test_env(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512];
        const char *path =
            write_cfg(fx, "batch: { max_size = 16; }\nworker: { log_level = \"err\"; }\n");

        /* The environment wins over the file and the defaults. */
        setenv("SLUICE_BATCH_MAX_SIZE", "64", 1);
        setenv("SLUICE_WORKER_LOG_LEVEL", "debug", 1);
        setenv("SLUICE_TOPICS_REQUESTS", "a, b ,c", 1);
        setenv("SLUICE_CODEC_FRAMING", "confluent", 1);
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(conf.batch_max_size, 64);
        assert_string_equal(conf.log_level, "debug");
        assert_int_equal(conf.n_request_topics, 3);
        assert_string_equal(conf.request_topics[0], "a");
        assert_string_equal(conf.request_topics[1], "b");
        assert_string_equal(conf.request_topics[2], "c");
        assert_string_equal(conf.framing, "confluent");
        sl_conf_cleanup(&conf);

        /* ... and is validated the same way, with the variable as the place. */
        setenv("SLUICE_BATCH_MAX_SIZE", "64x", 1);
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr,
                        "environment SLUICE_BATCH_MAX_SIZE: batch.max_size: expected integer");
        setenv("SLUICE_BATCH_MAX_SIZE", "5000", 1);
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr, "environment SLUICE_BATCH_MAX_SIZE: batch.max_size: 5000 is out "
                                "of range (1..4096)");
        unsetenv("SLUICE_BATCH_MAX_SIZE");
        setenv("SLUICE_CODEC_FRAMING", "avro", 1);
        assert_int_equal(sl_conf_load(&conf, NULL, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr, "environment SLUICE_CODEC_FRAMING: codec.framing: 'avro'");
        unsetenv("SLUICE_CODEC_FRAMING");
        setenv("SLUICE_TOPICS_REQUESTS", "a,,b", 1);
        assert_int_equal(sl_conf_load(&conf, NULL, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr, "environment SLUICE_TOPICS_REQUESTS: topics.requests: entry 2");
        unsetenv("SLUICE_TOPICS_REQUESTS");

        /* Every row of the table has its variable. */
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                char env[128];
                sl_conf_env_name(sl_conf_settings[i].path, env, sizeof(env));
                setenv(env, "", 1);
                assert_int_equal(sl_conf_load(&conf, NULL, errstr, sizeof(errstr)), SL_ERR_CONFIG);
                ASSERT_CONTAINS(errstr, env);
                ASSERT_CONTAINS(errstr, sl_conf_settings[i].path);
                unsetenv(env);
        }
        sl_conf_env_name("batch.max_size", errstr, sizeof(errstr));
        assert_string_equal(errstr, "SLUICE_BATCH_MAX_SIZE");
}

static void test_kafka(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512], where[256];
        const sl_conf_kafka_prop_t *p;
        const char *path = write_cfg(fx, "kafka: {\n"
                                         "  bootstrap_servers = \"127.0.0.1:9092\";\n"
                                         "  enable_auto_commit = false;\n"
                                         "  session_timeout_ms = 45000;\n"
                                         "  queued_max_messages_kbytes = 3000000000;\n"
                                         "  retry_backoff_ms = 100L;\n"
                                         "  x_ratio = 0.5;\n"
                                         "  sasl_mechanisms = [\"PLAIN\", \"SCRAM-SHA-256\"];\n"
                                         "};\n"
                                         "kafka_properties = [\n"
                                         "  \"ssl.key.password=s3cret\",\n"
                                         "  \"client.id=a=b\" ];\n");

        setenv("SLUICE_KAFKA_BOOTSTRAP_SERVERS", "broker:9093", 1);
        setenv("SLUICE_KAFKA_SASL_PASSWORD", "pw", 1);
        setenv("SLUICE_KAFKA_SERVICE_HOST", "10.0.0.1", 1); /* Kubernetes service link */
        setenv("SLUICE_KAFKA_PORT_9092_TCP", "tcp://10.0.0.1:9092", 1);
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(conf.n_kafka_props, 10);

        p = prop(&conf, "bootstrap.servers");
        assert_non_null(p);
        assert_string_equal(p->value, "broker:9093"); /* environment replaced the file */
        assert_string_equal(p->file, "environment SLUICE_KAFKA_BOOTSTRAP_SERVERS");
        assert_int_equal(p->line, 0);
        assert_string_equal(sl_conf_kafka_prop_where(p, where, sizeof(where)),
                            "environment SLUICE_KAFKA_BOOTSTRAP_SERVERS");
        assert_ptr_equal(p, &conf.kafka_props[0]); /* keeps its place */

        p = prop(&conf, "enable.auto.commit");
        assert_non_null(p);
        assert_string_equal(p->value, "false");
        assert_string_equal(p->file, path);
        assert_int_equal(p->line, 3);
        snprintf(errstr, sizeof(errstr), "%s:3", path);
        assert_string_equal(sl_conf_kafka_prop_where(p, where, sizeof(where)), errstr);

        assert_string_equal(prop(&conf, "session.timeout.ms")->value, "45000");
        assert_string_equal(prop(&conf, "queued.max.messages.kbytes")->value, "3000000000");
        assert_string_equal(prop(&conf, "retry.backoff.ms")->value, "100");
        assert_string_equal(prop(&conf, "x.ratio")->value, "0.5");
        assert_string_equal(prop(&conf, "sasl.mechanisms")->value, "PLAIN,SCRAM-SHA-256");

        p = prop(&conf, "ssl.key.password");
        assert_non_null(p);
        assert_string_equal(p->value, "s3cret");
        assert_int_equal(p->line, 11);
        p = prop(&conf, "client.id");
        assert_non_null(p);
        assert_string_equal(p->value, "a=b"); /* split at the first '=' */
        assert_int_equal(p->line, 12);
        p = prop(&conf, "sasl.password");
        assert_non_null(p);
        assert_string_equal(p->value, "pw");
        assert_null(prop(&conf, "service.host"));
        assert_null(prop(&conf, "port.9092.tcp"));

        assert_int_equal(sl_conf_kafka_prop_is_secret("ssl.key.password"), 1);
        assert_int_equal(sl_conf_kafka_prop_is_secret("sasl.oauthbearer.client.SECRET"), 1);
        assert_int_equal(sl_conf_kafka_prop_is_secret("bootstrap.servers"), 0);
        sl_conf_cleanup(&conf);
}

static void test_effective(void **state)
{
        fixture_t *fx = *state;
        sl_conf_t conf;
        char errstr[512], buf[8192];
        const char *path = write_cfg(fx, "batch: { max_size = 7; }\n"
                                         "kafka: { sasl_password = \"hunter2\";\n"
                                         "  bootstrap_servers = \"b:9092\"; }\n");
        FILE *fp;
        size_t n;

        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        fp = fmemopen(buf, sizeof(buf) - 1, "w");
        assert_non_null(fp);
        sl_conf_write_effective(&conf, fp);
        n = (size_t)ftell(fp);
        fclose(fp);
        buf[n] = '\0';
        ASSERT_CONTAINS(buf, "batch.max_size = 7\n");
        ASSERT_CONTAINS(buf, "topics.requests = [\"sluice.requests\"]\n");
        ASSERT_CONTAINS(buf, "codec.framing = \"raw\"\n");
        ASSERT_CONTAINS(buf, "kafka: sasl.password = \"***\"");
        ASSERT_CONTAINS(buf, "kafka: bootstrap.servers = \"b:9092\"");
        assert_null(strstr(buf, "hunter2"));
        sl_conf_cleanup(&conf);
}

static void test_reference(void **state)
{
        char buf[16384], env[128], row[256];
        FILE *fp = fmemopen(buf, sizeof(buf) - 1, "w");
        size_t n;
        (void)state;

        assert_non_null(fp);
        sl_conf_write_reference(fp);
        n = (size_t)ftell(fp);
        fclose(fp);
        assert_true(n < sizeof(buf) - 2);
        buf[n] = '\0';
        ASSERT_CONTAINS(buf, "| Setting | Type | Default | Range / allowed | Environment |");
        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                snprintf(row, sizeof(row), "| `%s` |", sl_conf_settings[i].path);
                ASSERT_CONTAINS(buf, row);
                sl_conf_env_name(sl_conf_settings[i].path, env, sizeof(env));
                ASSERT_CONTAINS(buf, env);
                ASSERT_CONTAINS(buf, sl_conf_settings[i].desc);
        }
        ASSERT_CONTAINS(buf, "| `batch.max_size` | integer | `32` | 1 .. 4096 |");
        ASSERT_CONTAINS(buf, "| `codec.framing` | enum | `\"raw\"` | raw, confluent |");
        ASSERT_CONTAINS(buf, "| `kafka.<name>` |");
        ASSERT_CONTAINS(buf, "| `kafka_properties` |");
}

static void test_suggest(void **state)
{
        (void)state;
        assert_string_equal(sl_conf_suggest("batch.max_sise"), "batch.max_size");
        assert_string_equal(sl_conf_suggest("topics.request"), "topics.requests");
        assert_string_equal(sl_conf_suggest("kafka_property"), "kafka_properties");
        assert_null(sl_conf_suggest("completely.different"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test_setup_teardown(test_valid_file, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_errors, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_io_error, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_include, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_env, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_kafka, fixture_setup, fixture_teardown),
            cmocka_unit_test_setup_teardown(test_effective, fixture_setup, fixture_teardown),
            cmocka_unit_test(test_reference),
            cmocka_unit_test(test_suggest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
