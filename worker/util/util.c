/* sluice utilities: errors, logging, clocks, small string helpers. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_log_level = SL_LOG_INFO;

static const struct {
        const char *name;
        const char *desc;
} err_table[SL_ERR__CNT] = {
    [SL_OK] = {"OK", "success"},
    [SL_ERR_NOMEM] = {"NOMEM", "out of memory"},
    [SL_ERR_INVALID_ARG] = {"INVALID_ARG", "invalid argument"},
    [SL_ERR_IO] = {"IO", "I/O error"},
    [SL_ERR_CONFIG] = {"CONFIG", "invalid configuration"},
    [SL_ERR_MODEL] = {"MODEL", "invalid model"},
    [SL_ERR_UNSUPPORTED] = {"UNSUPPORTED", "unsupported model feature"},
    [SL_ERR_SHAPE] = {"SHAPE", "tensor shape mismatch"},
    [SL_ERR_DATATYPE] = {"DATATYPE", "tensor datatype mismatch"},
    [SL_ERR_FRAMING] = {"FRAMING", "bad wire framing"},
    [SL_ERR_DECODE] = {"DECODE", "undecodable Avro record"},
    [SL_ERR_UNKNOWN_MODEL] = {"UNKNOWN_MODEL", "unknown model or version"},
    [SL_ERR_BAD_REQUEST] = {"BAD_REQUEST", "invalid request"},
    [SL_ERR_KAFKA] = {"KAFKA", "Kafka error"},
    [SL_ERR_TIMEOUT] = {"TIMEOUT", "timed out"},
    [SL_ERR_INTERNAL] = {"INTERNAL", "internal error"},
    [SL_ERR_SCHEMA] = {"SCHEMA", "incompatible writer schema"},
};

const char *sl_err2str(sl_err_t err)
{
        if ((unsigned)err >= SL_ERR__CNT)
                return "unknown error";
        return err_table[err].desc;
}

const char *sl_err_name(sl_err_t err)
{
        if ((unsigned)err >= SL_ERR__CNT)
                return "UNKNOWN";
        return err_table[err].name;
}

static const char *level_names[] = {"emerg",   "alert",  "crit", "err",
                                    "warning", "notice", "info", "debug"};

int sl_log_set_level_name(const char *name)
{
        for (int i = 0; i < 8; i++) {
                if (!strcmp(name, level_names[i])) {
                        sl_log_level = i;
                        return 0;
                }
        }
        return -1;
}

/*
 * Append \p src to \p dst as the inside of a logfmt double-quoted value:
 * backslash, double quote and control characters are escaped, so text from
 * requests or libraries can never end the value or forge a line.
 */
static size_t escape_into(char *dst, size_t off, size_t size, const char *src)
{
        static const char hex[] = "0123456789abcdef";
        for (; *src && off + 5 < size; src++) {
                unsigned char c = (unsigned char)*src;
                if (c == '"' || c == '\\') {
                        dst[off++] = '\\';
                        dst[off++] = (char)c;
                } else if (c == '\n') {
                        dst[off++] = '\\';
                        dst[off++] = 'n';
                } else if (c < 0x20 || c == 0x7f) {
                        dst[off++] = '\\';
                        dst[off++] = 'x';
                        dst[off++] = hex[c >> 4];
                        dst[off++] = hex[c & 15];
                } else {
                        dst[off++] = (char)c;
                }
        }
        return off;
}

void sl_log_write(int level, const char *fac, const char *fmt, ...)
{
        char line[4096], msg[2048];
        struct timespec ts;
        struct tm tm;
        size_t off;
        va_list ap;
        int n;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        off = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line + off, sizeof(line) - off, ".%03ldZ level=%s fac=%s msg=\"",
                     ts.tv_nsec / 1000000, level_names[level < 0 || level > 7 ? 7 : level], fac);
        off += (size_t)n;
        off = escape_into(line, off, sizeof(line) - 2, msg);
        line[off++] = '"';
        line[off++] = '\n';
        /* One write per line so concurrent threads never interleave within a line. */
        if (write(STDERR_FILENO, line, off) < 0) {
                /* nothing sensible to do */
        }
}

void sl_assert_fail(const char *expr, const char *file, int line)
{
        fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
        abort();
}

int64_t sl_now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sl_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *sl_strfmt(char *dst, size_t dst_size, const char *fmt, ...)
{
        va_list ap;
        if (!dst || !dst_size)
                return dst;
        va_start(ap, fmt);
        vsnprintf(dst, dst_size, fmt, ap);
        va_end(ap);
        return dst;
}

int sl_parse_i64(const char *s, int64_t *out)
{
        char *end;
        long long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
                return -1;
        *out = v;
        return 0;
}

sl_err_t sl_file_read(const char *path, char **bufp, size_t *lenp, char *errstr, size_t errstr_size)
{
        FILE *fp = NULL;
        char *buf = NULL;
        struct stat st;
        long len;
        sl_err_t err = SL_ERR_IO;

        if (!(fp = fopen(path, "rb"))) {
                sl_strfmt(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto done;
        }
        /* fopen succeeds on a directory, where ftell then says LONG_MAX */
        if (fstat(fileno(fp), &st)) {
                sl_strfmt(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto done;
        }
        if (!S_ISREG(st.st_mode)) {
                sl_strfmt(errstr, errstr_size, "%s: %s", path,
                          S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
                goto done;
        }
        if (fseek(fp, 0, SEEK_END) || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET)) {
                sl_strfmt(errstr, errstr_size, "%s: cannot determine size: %s", path,
                          strerror(errno));
                goto done;
        }
        if (!(buf = malloc((size_t)len + 1))) {
                err = SL_ERR_NOMEM;
                sl_strfmt(errstr, errstr_size, "%s: out of memory (%ld bytes)", path, len);
                goto done;
        }
        if (len && fread(buf, 1, (size_t)len, fp) != (size_t)len) {
                sl_strfmt(errstr, errstr_size, "%s: short read", path);
                goto done;
        }
        buf[len] = '\0';
        *bufp = buf;
        *lenp = (size_t)len;
        buf = NULL;
        err = SL_OK;
done:
        free(buf);
        if (fp)
                fclose(fp);
        return err;
}
