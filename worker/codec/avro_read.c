/*
 * Bounds-checked reader of the Avro binary encoding (Avro spec, "Binary
 * Encoding"). Every length and block count is compared with the bytes that
 * remain before anything is allocated, so a reader built on it allocates at
 * most a small multiple of the input size whatever the input says.
 */
#include "codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Recursive (linked) schemas could otherwise recurse as deep as the input. */
#define MAX_DEPTH 64

void sl_rd_init(sl_rd_t *rd, const void *buf, size_t len, char *errstr, size_t errstr_size)
{
        rd->p = buf;
        rd->end = rd->p + len;
        rd->path[0] = '\0';
        rd->path_len = 0;
        rd->depth = 0;
        rd->errstr = errstr;
        rd->errstr_size = errstr_size;
}

size_t sl_rd_push(sl_rd_t *rd, const char *fmt, ...)
{
        size_t old = rd->path_len;
        va_list ap;
        int n;

        if (old >= sizeof(rd->path) - 1)
                return old;
        va_start(ap, fmt);
        n = vsnprintf(rd->path + old, sizeof(rd->path) - old, fmt, ap);
        va_end(ap);
        if (n < 0)
                rd->path[old] = '\0';
        else if ((size_t)n >= sizeof(rd->path) - old)
                rd->path_len = sizeof(rd->path) - 1;
        else
                rd->path_len = old + (size_t)n;
        return old;
}

void sl_rd_pop(sl_rd_t *rd, size_t len)
{
        rd->path_len = len;
        rd->path[len] = '\0';
}

int sl_rd_fail(sl_rd_t *rd, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (!rd->errstr || !rd->errstr_size)
                return -1;
        n = snprintf(rd->errstr, rd->errstr_size, "%s: ", rd->path_len ? rd->path : "record");
        if (n < 0 || (size_t)n >= rd->errstr_size)
                return -1;
        va_start(ap, fmt);
        vsnprintf(rd->errstr + n, rd->errstr_size - (size_t)n, fmt, ap);
        va_end(ap);
        return -1;
}

/* Zig-zag varint of at most 10 bytes (Avro spec: int and long). */
int sl_rd_long(sl_rd_t *rd, int64_t *v)
{
        uint64_t u = 0;

        for (int i = 0; i < 10; i++) {
                uint8_t b;

                if (rd->p >= rd->end)
                        return sl_rd_fail(rd, "truncated varint");
                b = *rd->p++;
                if (i == 9 && b > 1)
                        return sl_rd_fail(rd, "varint overflows 64 bits");
                u |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
        }
        return sl_rd_fail(rd, "varint longer than 10 bytes");
}

int sl_rd_int(sl_rd_t *rd, int32_t *v)
{
        int64_t l = 0;

        if (sl_rd_long(rd, &l))
                return -1;
        if (l < INT32_MIN || l > INT32_MAX)
                return sl_rd_fail(rd, "int value %lld out of 32-bit range", (long long)l);
        *v = (int32_t)l;
        return 0;
}

int sl_rd_float(sl_rd_t *rd, float *v)
{
        if (sl_rd_left(rd) < 4)
                return sl_rd_fail(rd, "truncated float");
        memcpy(v, rd->p, 4); /* little-endian host (codec_int.h) */
        rd->p += 4;
        return 0;
}

int sl_rd_double(sl_rd_t *rd, double *v)
{
        if (sl_rd_left(rd) < 8)
                return sl_rd_fail(rd, "truncated double");
        memcpy(v, rd->p, 8);
        rd->p += 8;
        return 0;
}

int sl_rd_bool(sl_rd_t *rd, uint8_t *v)
{
        if (rd->p >= rd->end)
                return sl_rd_fail(rd, "truncated boolean");
        if (*rd->p > 1)
                return sl_rd_fail(rd, "boolean byte 0x%02x is neither 0 nor 1", *rd->p);
        *v = *rd->p++;
        return 0;
}

int sl_rd_bytes(sl_rd_t *rd, const uint8_t **p, size_t *n)
{
        int64_t len;

        if (sl_rd_long(rd, &len))
                return -1;
        if (len < 0)
                return sl_rd_fail(rd, "negative length %lld", (long long)len);
        if ((uint64_t)len > sl_rd_left(rd))
                return sl_rd_fail(rd, "length %lld exceeds remaining %zu bytes", (long long)len,
                                  sl_rd_left(rd));
        *p = rd->p;
        *n = (size_t)len;
        rd->p += len;
        return 0;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n, size_t *bad)
{
        size_t i = 0;

        while (i < n) {
                uint8_t c = s[i];
                size_t k;
                uint32_t cp, min;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        k = 1, cp = c & 0x1f, min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        k = 2, cp = c & 0x0f, min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        k = 3, cp = c & 0x07, min = 0x10000;
                } else {
                        *bad = i;
                        return 0;
                }
                if (n - i <= k) {
                        *bad = i;
                        return 0;
                }
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80) {
                                *bad = i;
                                return 0;
                        }
                        cp = (cp << 6) | (s[i + j] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                        *bad = i;
                        return 0;
                }
                i += k + 1;
        }
        return 1;
}

int sl_rd_string(sl_rd_t *rd, char **s)
{
        const uint8_t *p = NULL;
        size_t n = 0, bad = 0;
        char *out;

        if (sl_rd_bytes(rd, &p, &n))
                return -1;
        /* Strings become C strings and are echoed into responses: an embedded
         * NUL would silently truncate them, invalid UTF-8 would break other
         * Avro readers downstream. */
        if (memchr(p, 0, n))
                return sl_rd_fail(rd, "string contains a NUL byte");
        if (!utf8_valid(p, n, &bad))
                return sl_rd_fail(rd, "string is not valid UTF-8 (byte %zu)", bad);
        out = malloc(n + 1);
        if (!out)
                return sl_rd_fail(rd, "out of memory");
        memcpy(out, p, n);
        out[n] = '\0';
        *s = out;
        return 0;
}

int sl_rd_union(sl_rd_t *rd, size_t n_branches, int64_t *idx)
{
        if (sl_rd_long(rd, idx))
                return -1;
        if (*idx < 0 || (uint64_t)*idx >= n_branches)
                return sl_rd_fail(rd, "union branch index %lld out of range (%zu branches)",
                                  (long long)*idx, n_branches);
        return 0;
}

int sl_rd_block(sl_rd_t *rd, size_t min_item, int64_t *count)
{
        int64_t c = 0, size = 0;
        size_t left;

        if (sl_rd_long(rd, &c))
                return -1;
        if (c < 0) {
                /* Negative count: |count| items preceded by the block's size
                 * in bytes (Avro spec, "Arrays"). */
                if (c == INT64_MIN)
                        return sl_rd_fail(rd, "invalid block count %lld", (long long)c);
                c = -c;
                if (sl_rd_long(rd, &size))
                        return -1;
                if (size < 0 || (uint64_t)size > sl_rd_left(rd))
                        return sl_rd_fail(rd, "block size %lld exceeds remaining %zu bytes",
                                          (long long)size, sl_rd_left(rd));
        }
        /* Zero-size items (null, empty records) are counted as one byte: the
         * codec's schemas have none, and this keeps every block bounded. */
        if (min_item == 0)
                min_item = 1;
        left = sl_rd_left(rd);
        if ((uint64_t)c > left / min_item) {
                if (min_item == 1)
                        return sl_rd_fail(rd, "block count %lld exceeds remaining %zu bytes",
                                          (long long)c, left);
                return sl_rd_fail(rd,
                                  "block count %lld exceeds remaining %zu bytes "
                                  "(items take at least %zu bytes)",
                                  (long long)c, left, min_item);
        }
        *count = c;
        return 0;
}

static size_t min_size(avro_schema_t s, int depth)
{
        size_t n = 0;

        if (depth > MAX_DEPTH)
                return 1;
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return 0;
        case AVRO_FLOAT:
                return 4;
        case AVRO_DOUBLE:
                return 8;
        case AVRO_FIXED:
                return (size_t)avro_schema_fixed_size(s);
        case AVRO_RECORD:
                for (size_t i = 0; i < avro_schema_record_size(s); i++)
                        n += min_size(avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
                return n;
        default: /* varints, lengths, block counts, union indexes, links */
                return 1;
        }
}

size_t sl_avro_min_size(avro_schema_t schema)
{
        return min_size(schema, 0);
}

static int skip_blocks(sl_rd_t *rd, avro_schema_t items, int is_map)
{
        size_t min = sl_avro_min_size(items) + (is_map ? 1 : 0);
        int64_t count, idx = 0;

        for (;;) {
                if (sl_rd_block(rd, min, &count))
                        return -1;
                if (count == 0)
                        return 0;
                for (int64_t i = 0; i < count; i++, idx++) {
                        size_t old = sl_rd_push(rd, "[%lld]", (long long)idx);
                        const uint8_t *p = NULL;
                        size_t n;

                        if (is_map && sl_rd_bytes(rd, &p, &n))
                                return -1;
                        if (sl_rd_skip(rd, items))
                                return -1;
                        sl_rd_pop(rd, old);
                }
        }
}

int sl_rd_skip(sl_rd_t *rd, avro_schema_t s)
{
        const uint8_t *p = NULL;
        size_t n = 0, old;
        int64_t l = 0;
        int32_t i32;
        float f;
        double d;
        uint8_t b;
        int rc = 0;

        if (++rd->depth > MAX_DEPTH) {
                rd->depth--;
                return sl_rd_fail(rd, "values nested deeper than %d", MAX_DEPTH);
        }
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                break;
        case AVRO_BOOLEAN:
                rc = sl_rd_bool(rd, &b);
                break;
        case AVRO_INT32:
                rc = sl_rd_int(rd, &i32);
                break;
        case AVRO_INT64:
                rc = sl_rd_long(rd, &l);
                break;
        case AVRO_FLOAT:
                rc = sl_rd_float(rd, &f);
                break;
        case AVRO_DOUBLE:
                rc = sl_rd_double(rd, &d);
                break;
        case AVRO_STRING:
        case AVRO_BYTES:
                rc = sl_rd_bytes(rd, &p, &n);
                break;
        case AVRO_FIXED:
                n = (size_t)avro_schema_fixed_size(s);
                if (sl_rd_left(rd) < n)
                        rc = sl_rd_fail(rd, "truncated fixed");
                else
                        rd->p += n;
                break;
        case AVRO_ENUM:
                if (!(rc = sl_rd_long(rd, &l)) &&
                    (l < 0 || l >= avro_schema_enum_number_of_symbols(s)))
                        rc = sl_rd_fail(rd, "enum index %lld out of range", (long long)l);
                break;
        case AVRO_RECORD:
                for (size_t i = 0; !rc && i < avro_schema_record_size(s); i++) {
                        old = sl_rd_push(rd, "%s%s", rd->path_len ? "." : "",
                                         avro_schema_record_field_name(s, (int)i));
                        rc = sl_rd_skip(rd, avro_schema_record_field_get_by_index(s, (int)i));
                        if (!rc)
                                sl_rd_pop(rd, old);
                }
                break;
        case AVRO_ARRAY:
                rc = skip_blocks(rd, avro_schema_array_items(s), 0);
                break;
        case AVRO_MAP:
                rc = skip_blocks(rd, avro_schema_map_values(s), 1);
                break;
        case AVRO_UNION:
                if (!(rc = sl_rd_union(rd, avro_schema_union_size(s), &l)))
                        rc = sl_rd_skip(rd, avro_schema_union_branch(s, (int)l));
                break;
        case AVRO_LINK:
                rc = sl_rd_skip(rd, avro_schema_link_target(s));
                break;
        default:
                rc = sl_rd_fail(rd, "unsupported schema type %d", (int)avro_typeof(s));
                break;
        }
        rd->depth--;
        return rc;
}
