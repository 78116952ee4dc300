/*
 * Unit tests of sl_worker_conf_check() (worker/stream/kconf.c): the librdkafka properties the
 * delivery guarantee depends on are refused naming the file and line, per delivery mode, and
 * librdkafka's own consistency checks run too (what `sluice config --check` reports).
 */
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
#include "stream/stream.h"

/* Check a config made of \p text; returns the result, the error in \p errstr. */
static sl_err_t check(const char *text, char *errstr, size_t errstr_size, char *path,
                      size_t path_size)
{
        sl_conf_t conf;
        sl_err_t err;
        FILE *fp;

        snprintf(path, path_size, "/tmp/sl_test_stream_conf_%d.cfg", (int)getpid());
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        errstr[0] = '\0';
        assert_int_equal(sl_conf_load(&conf, path, errstr, errstr_size), SL_OK);
        err = sl_worker_conf_check(&conf, errstr, errstr_size);
        sl_conf_cleanup(&conf);
        unlink(path);
        return err;
}

static void expect_refused(const char *text, const char *needle, int line)
{
        char errstr[1024], path[128], where[160];
        assert_int_equal(check(text, errstr, sizeof(errstr), path, sizeof(path)), SL_ERR_CONFIG);
        if (line)
                snprintf(where, sizeof(where), "%s:%d:", path, line);
        else
                snprintf(where, sizeof(where), "%s:", path);
        if (!strstr(errstr, needle) || !strstr(errstr, where)) {
                print_error("expected \"%s\" and \"%s\" in \"%s\"\n", needle, where, errstr);
                fail();
        }
}

static void expect_valid(const char *text)
{
        char errstr[1024], path[128];
        sl_err_t err = check(text, errstr, sizeof(errstr), path, sizeof(path));
        if (err != SL_OK) {
                print_error("expected valid, got: %s\n", errstr);
                fail();
        }
}

#define KAFKA "kafka: { bootstrap_servers = \"127.0.0.1:1\"; "
#define EOS   "delivery: { guarantee = \"exactly_once\"; };\n"

static void test_defaults_valid(void **state)
{
        (void)state;
        expect_valid(KAFKA "};\n");
        expect_valid(KAFKA "acks = \"all\"; message_timeout_ms = 0; };\n");
        expect_valid(EOS KAFKA "};\n");
}

static void test_at_least_once_refusals(void **state)
{
        (void)state;
        expect_refused(KAFKA "message_timeout_ms = 1500; };\n", "message.timeout.ms = 1500", 1);
        expect_refused(KAFKA "delivery_timeout_ms = 30000; };\n", "delivery.timeout.ms", 1);
        expect_refused(KAFKA "\n enable_idempotence = false; };\n", "enable.idempotence = false",
                       2);
        expect_refused(KAFKA "acks = 1; };\n", "acks = 1", 1);
        expect_refused(KAFKA "acks = 0; };\n", "acks = 0", 1);
        expect_refused(KAFKA "transactional_id = \"x\"; };\n", "exactly_once", 1);
}

static void test_exactly_once_allows_a_timeout(void **state)
{
        (void)state;
        /* Transactions bound deliveries; a failed one aborts the transaction. */
        expect_valid(EOS KAFKA "message_timeout_ms = 30000; transaction_timeout_ms = 60000; };\n");
        /* librdkafka's own rule, seen only when a client is made. */
        expect_refused(EOS KAFKA "message_timeout_ms = 90000; };\n",
                       "must be set <= `transaction.timeout.ms`", 0);
}

static void test_consumer_refusals(void **state)
{
        (void)state;
        /* Offsets: stored by sluice after acks, committed by auto-commit (at-least-once)
         * or in the transaction (exactly-once). */
        expect_refused(KAFKA "\n enable_auto_commit = false; };\n", "auto-commit", 2);
        expect_refused(EOS KAFKA "enable_auto_commit = true; };\n", "in each transaction", 2);
        expect_valid(EOS KAFKA "enable_auto_commit = false; };\n");
        expect_valid(KAFKA "enable_auto_commit = true; auto_commit_interval_ms = 200; };\n");
        expect_refused(KAFKA "enable_auto_offset_store = true; };\n", "stores each offset", 1);
        expect_valid(KAFKA "enable_auto_offset_store = false; };\n");
        expect_refused(KAFKA "group_id = \"\"; };\n", "consumer group", 1);
}

static void test_librdkafka_consistency(void **state)
{
        (void)state;
        expect_refused(KAFKA "max_in_flight = 10; };\n", "max.in.flight", 0);
        expect_refused(KAFKA "retries = 0; };\n", "retries", 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults_valid),
            cmocka_unit_test(test_at_least_once_refusals),
            cmocka_unit_test(test_exactly_once_allows_a_timeout),
            cmocka_unit_test(test_consumer_refusals),
            cmocka_unit_test(test_librdkafka_consistency),
        };
        return cmocka_run_group_tests_name("stream_conf", tests, NULL, NULL);
}
