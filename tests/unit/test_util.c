/* util: log lines stay one logfmt line whatever the message holds; errors; parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"

/* Capture what sl_log_write() writes to stderr. */
static char *capture_log(const char *fac, const char *text)
{
        char path[] = "/tmp/sl_log_XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        char *buf = NULL;
        size_t len = 0;
        assert_true(fd >= 0);
        dup2(fd, STDERR_FILENO);
        sl_log_write(SL_LOG_NOTICE, fac, "id=%s done", text);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        assert_int_equal(sl_file_read(path, &buf, &len, NULL, 0), SL_OK);
        unlink(path);
        return buf;
}

static void test_file_read_errors(void **state)
{
        char errstr[256], *buf = NULL;
        size_t len = 0;
        (void)state;
        /* fopen() takes a folder; its ftell() used to claim LONG_MAX bytes ("out of memory") */
        assert_int_equal(sl_file_read("/tmp", &buf, &len, errstr, sizeof(errstr)), SL_ERR_IO);
        assert_string_equal(errstr, "/tmp: Is a directory");
        assert_int_equal(sl_file_read("/dev/null", &buf, &len, errstr, sizeof(errstr)), SL_ERR_IO);
        assert_string_equal(errstr, "/dev/null: not a regular file");
        assert_int_equal(sl_file_read("/nonexistent/x", &buf, &len, errstr, sizeof(errstr)),
                         SL_ERR_IO);
        assert_string_equal(errstr, "/nonexistent/x: No such file or directory");
        assert_null(buf);
}

static void test_log_escapes_injection(void **state)
{
        char *line;
        (void)state;
        line = capture_log("DEADLETTER", "x\" level=err msg=\"injected\nts=fake level=crit\\");
        /* exactly one line, the quote and newline escaped, the value closed once */
        assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
        assert_non_null(strstr(line, "level=notice fac=DEADLETTER msg=\"id=x\\\" level=err "
                                     "msg=\\\"injected\\nts=fake level=crit\\\\ done\"\n"));
        free(line);
        line = capture_log("X", "tab\there\x01");
        assert_non_null(strstr(line, "msg=\"id=tab\\x09here\\x01 done\""));
        free(line);
}

static void test_err_names_are_stable(void **state)
{
        (void)state;
        /* These strings are on the wire (InferenceError.code, DeadLetter.error_code). */
        assert_string_equal(sl_err_name(SL_ERR_FRAMING), "FRAMING");
        assert_string_equal(sl_err_name(SL_ERR_DECODE), "DECODE");
        assert_string_equal(sl_err_name(SL_ERR_UNKNOWN_MODEL), "UNKNOWN_MODEL");
        assert_string_equal(sl_err_name(SL_ERR_BAD_REQUEST), "BAD_REQUEST");
        assert_string_equal(sl_err_name((sl_err_t)999), "UNKNOWN");
        assert_string_equal(sl_err2str(SL_OK), "success");
}

static void test_parse_i64(void **state)
{
        int64_t v = 0;
        (void)state;
        assert_int_equal(sl_parse_i64("-42", &v), 0);
        assert_int_equal(v, -42);
        assert_int_equal(sl_parse_i64("9223372036854775808", &v), -1);
        assert_int_equal(sl_parse_i64("12x", &v), -1);
        assert_int_equal(sl_parse_i64("", &v), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_file_read_errors),
            cmocka_unit_test(test_log_escapes_injection),
            cmocka_unit_test(test_err_names_are_stable),
            cmocka_unit_test(test_parse_i64),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
