/*
 * A small JSON reader (RFC 8259) for the parts of an .avsc file that avro-c
 * parses but does not expose: field defaults, aliases and enum defaults,
 * which writer->reader schema resolution needs (Avro spec, "Schema
 * Resolution"). Schema files come from the operator, not from the wire, but
 * the reader is still bounded: nesting depth is limited and every read
 * checks the end of the text.
 */
#include "codec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 128

typedef struct jp_s {
        const char *p, *end;
        const char *err;
} jp_t;

void sl_json_free(sl_json_t *j)
{
        if (!j)
                return;
        for (size_t i = 0; i < j->n; i++) {
                sl_json_free(j->items[i]);
                if (j->keys)
                        free(j->keys[i]);
        }
        free(j->items);
        free(j->keys);
        free(j->str);
        free(j);
}

static void ws(jp_t *jp)
{
        while (jp->p < jp->end &&
               (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
                jp->p++;
}

static int fail(jp_t *jp, const char *what)
{
        if (!jp->err)
                jp->err = what;
        return -1;
}

static int hex4(jp_t *jp, uint32_t *v)
{
        *v = 0;
        if (jp->end - jp->p < 4)
                return fail(jp, "truncated \\u escape");
        for (int i = 0; i < 4; i++) {
                char c = *jp->p++;
                uint32_t d;

                if (c >= '0' && c <= '9')
                        d = (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (uint32_t)(c - 'A' + 10);
                else
                        return fail(jp, "bad \\u escape");
                *v = *v << 4 | d;
        }
        return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
        if (cp < 0x80) {
                o[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char)(0xc0 | cp >> 6);
                o[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char)(0xe0 | cp >> 12);
                o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                o[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* A string after its opening quote; *out is malloc'd UTF-8 of *lenp bytes. */
static int parse_string(jp_t *jp, char **out, size_t *lenp)
{
        const char *s = jp->p;
        size_t n = 0;
        char *o;

        /* Escapes never expand: the raw length bounds the decoded one. */
        while (s < jp->end && *s != '"')
                s += *s == '\\' && s + 1 < jp->end ? 2 : 1;
        if (s >= jp->end)
                return fail(jp, "unterminated string");
        if (!(o = malloc((size_t)(s - jp->p) + 1)))
                return fail(jp, "out of memory");
        while (*jp->p != '"') {
                uint32_t cp, lo;
                char c = *jp->p++;

                if ((unsigned char)c < 0x20) {
                        free(o);
                        return fail(jp, "control character in string");
                }
                if (c != '\\') {
                        o[n++] = c;
                        continue;
                }
                c = *jp->p++;
                switch (c) {
                case 'b':
                        o[n++] = '\b';
                        break;
                case 'f':
                        o[n++] = '\f';
                        break;
                case 'n':
                        o[n++] = '\n';
                        break;
                case 'r':
                        o[n++] = '\r';
                        break;
                case 't':
                        o[n++] = '\t';
                        break;
                case '"':
                case '\\':
                case '/':
                        o[n++] = c;
                        break;
                case 'u':
                        if (hex4(jp, &cp))
                                break;
                        if (cp >= 0xd800 && cp < 0xdc00 && jp->end - jp->p >= 6 &&
                            jp->p[0] == '\\' && jp->p[1] == 'u') {
                                jp->p += 2;
                                if (hex4(jp, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                                        fail(jp, "bad surrogate pair");
                                        break;
                                }
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        } else if (cp >= 0xd800 && cp <= 0xdfff) {
                                fail(jp, "lone surrogate");
                                break;
                        }
                        n += put_utf8(o + n, cp);
                        break;
                default:
                        fail(jp, "bad escape");
                        break;
                }
                if (jp->err) {
                        free(o);
                        return -1;
                }
        }
        jp->p++;
        o[n] = '\0';
        *out = o;
        *lenp = n;
        return 0;
}

static int parse_value(jp_t *jp, sl_json_t **out, int depth);

static int add_item(jp_t *jp, sl_json_t *j, char *key, sl_json_t *item)
{
        sl_json_t **items = realloc(j->items, (j->n + 1) * sizeof(*items));
        char **keys;

        if (!items)
                goto oom;
        j->items = items;
        if (j->type == SL_JSON_OBJECT) {
                if (!(keys = realloc(j->keys, (j->n + 1) * sizeof(*keys))))
                        goto oom;
                j->keys = keys;
                j->keys[j->n] = key;
        }
        j->items[j->n++] = item;
        return 0;
oom:
        free(key);
        sl_json_free(item);
        return fail(jp, "out of memory");
}

static int parse_container(jp_t *jp, sl_json_t *j, int depth)
{
        char close = j->type == SL_JSON_OBJECT ? '}' : ']';

        ws(jp);
        if (jp->p < jp->end && *jp->p == close) {
                jp->p++;
                return 0;
        }
        for (;;) {
                sl_json_t *item = NULL;
                char *key = NULL;
                size_t klen;

                ws(jp);
                if (j->type == SL_JSON_OBJECT) {
                        if (jp->p >= jp->end || *jp->p != '"')
                                return fail(jp, "expected a member name");
                        jp->p++;
                        if (parse_string(jp, &key, &klen))
                                return -1;
                        ws(jp);
                        if (jp->p >= jp->end || *jp->p != ':') {
                                free(key);
                                return fail(jp, "expected ':'");
                        }
                        jp->p++;
                }
                if (parse_value(jp, &item, depth + 1)) {
                        free(key);
                        return -1;
                }
                if (add_item(jp, j, key, item))
                        return -1;
                ws(jp);
                if (jp->p < jp->end && *jp->p == ',') {
                        jp->p++;
                        continue;
                }
                if (jp->p < jp->end && *jp->p == close) {
                        jp->p++;
                        return 0;
                }
                return fail(jp, "expected ',' or a closing bracket");
        }
}

static int parse_number(jp_t *jp, sl_json_t *j)
{
        const char *s = jp->p;
        char buf[64], *end;
        size_t n;

        while (jp->p < jp->end && strchr("+-0123456789.eE", *jp->p))
                jp->p++;
        n = (size_t)(jp->p - s);
        if (n == 0 || n >= sizeof(buf))
                return fail(jp, "bad number");
        memcpy(buf, s, n);
        buf[n] = '\0';
        errno = 0;
        j->num = strtod(buf, &end);
        if (end != buf + n)
                return fail(jp, "bad number");
        j->is_int = !strpbrk(buf, ".eE");
        if (j->is_int) {
                errno = 0;
                j->i64 = strtoll(buf, &end, 10);
                if (errno == ERANGE)
                        j->is_int = 0;
        }
        return 0;
}

static int literal(jp_t *jp, const char *word)
{
        size_t n = strlen(word);

        if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n))
                return fail(jp, "unexpected character");
        jp->p += n;
        return 0;
}

static int parse_value(jp_t *jp, sl_json_t **out, int depth)
{
        sl_json_t *j;
        int rc = -1;

        if (depth > JSON_MAX_DEPTH)
                return fail(jp, "nested too deeply");
        ws(jp);
        if (jp->p >= jp->end)
                return fail(jp, "unexpected end of text");
        if (!(j = calloc(1, sizeof(*j))))
                return fail(jp, "out of memory");
        switch (*jp->p) {
        case '{':
        case '[':
                j->type = *jp->p++ == '{' ? SL_JSON_OBJECT : SL_JSON_ARRAY;
                rc = parse_container(jp, j, depth);
                break;
        case '"':
                j->type = SL_JSON_STRING;
                jp->p++;
                rc = parse_string(jp, &j->str, &j->len);
                break;
        case 't':
                j->type = SL_JSON_TRUE;
                rc = literal(jp, "true");
                break;
        case 'f':
                j->type = SL_JSON_FALSE;
                rc = literal(jp, "false");
                break;
        case 'n':
                j->type = SL_JSON_NULL;
                rc = literal(jp, "null");
                break;
        default:
                j->type = SL_JSON_NUMBER;
                rc = parse_number(jp, j);
                break;
        }
        if (rc) {
                sl_json_free(j);
                return -1;
        }
        *out = j;
        return 0;
}

sl_json_t *sl_json_parse(const char *text, size_t len, const char **errp)
{
        jp_t jp = {.p = text, .end = text + len, .err = NULL};
        sl_json_t *j = NULL;

        if (parse_value(&jp, &j, 0) == 0) {
                ws(&jp);
                if (jp.p != jp.end) {
                        fail(&jp, "text after the value");
                        sl_json_free(j);
                        j = NULL;
                }
        }
        if (errp)
                *errp = jp.err;
        return j;
}

const sl_json_t *sl_json_get(const sl_json_t *j, const char *key)
{
        if (!j || j->type != SL_JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < j->n; i++)
                if (!strcmp(j->keys[i], key))
                        return j->items[i];
        return NULL;
}

const char *sl_json_str(const sl_json_t *j, const char *key)
{
        const sl_json_t *v = sl_json_get(j, key);

        return v && v->type == SL_JSON_STRING ? v->str : NULL;
}
