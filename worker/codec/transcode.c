/*
 * Follow a resolution plan (resolve.c): read one value in the writer's
 * schema with the bounds-checked reader (avro_read.c) and write the value
 * the reader's schema resolves it to, in the reader's binary encoding. The
 * request decoder then reads that as it reads any reader-schema request, so
 * there is one decoder of tensors, and every check it makes still applies.
 *
 * Why rewrite rather than decode straight from writer bytes: fields may come
 * in another order, promotions change widths, and defaults are pre-encoded;
 * rewriting keeps resolution generic (any schema pair the spec allows) and
 * out of the tensor code. Sub-values whose schemas are equal (tensor data,
 * in practice) are validated and copied in one memcpy. Writers equal to the
 * reader skip this step entirely.
 *
 * Bounds: every length and block count is checked against the remaining
 * input before anything is written (sl_rd_block), array and map items are
 * budgeted against the input size (so zero-size items cannot loop), and the
 * output is capped at a small multiple of the input (promotions widen int
 * to double at most 8x; defaults add a bounded amount per record).
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

#define TC_MAX_DEPTH 64

typedef struct seg_s {
        size_t off, len;
} seg_t;

typedef struct tc_s {
        sl_rd_t rd;
        sl_obuf_t out;
        uint8_t *scratch; /* reordering records */
        size_t scratch_cap;
        seg_t *segs; /* a stack: one frame of n_rfields per reordered record */
        size_t n_segs, cap_segs;
        size_t items_left;
        int schema_err;
        int nomem;
} tc_t;

int sl_obuf_put(sl_obuf_t *o, const void *p, size_t n)
{
        if (n > o->max - o->n)
                return -1;
        if (o->n + n > o->cap) {
                size_t cap = o->cap ? o->cap : 256;
                uint8_t *b;

                while (cap < o->n + n)
                        cap *= 2;
                if (cap > o->max)
                        cap = o->max;
                if (!(b = realloc(o->b, cap)))
                        return -1;
                o->b = b;
                o->cap = cap;
        }
        if (n)
                memcpy(o->b + o->n, p, n);
        o->n += n;
        return 0;
}

/* Zig-zag varint (Avro spec, "Binary Encoding"); returns its length. */
static size_t varint(uint8_t b[10], int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        size_t n = 0;

        while (u >= 0x80) {
                b[n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        b[n++] = (uint8_t)u;
        return n;
}

int sl_obuf_long(sl_obuf_t *o, int64_t v)
{
        uint8_t b[10];

        return sl_obuf_put(o, b, varint(b, v));
}

static int put(tc_t *t, const void *p, size_t n)
{
        if (!sl_obuf_put(&t->out, p, n))
                return 0;
        if (n > t->out.max - t->out.n)
                return sl_rd_fail(&t->rd, "the resolved request would exceed %zu bytes",
                                  t->out.max);
        t->nomem = 1;
        return sl_rd_fail(&t->rd, "out of memory");
}

static int put_long(tc_t *t, int64_t v)
{
        uint8_t b[10];

        return put(t, b, varint(b, v));
}

static int value(tc_t *t, const sl_rp_t *p);

/* A promoted primitive (resolve.c's promotable()). */
static int prim(tc_t *t, const sl_rp_t *p)
{
        const uint8_t *b;
        int64_t l = 0;
        int32_t i = 0;
        float f = 0;
        double d;
        size_t n;

        switch (p->wt) {
        case AVRO_INT32:
                if (sl_rd_int(&t->rd, &i))
                        return -1;
                l = i;
                break;
        case AVRO_INT64:
                if (sl_rd_long(&t->rd, &l))
                        return -1;
                break;
        case AVRO_FLOAT:
                if (sl_rd_float(&t->rd, &f))
                        return -1;
                d = f;
                return put(t, &d, 8);
        default: /* string <-> bytes: the same encoding */
                if (sl_rd_bytes(&t->rd, &b, &n))
                        return -1;
                return put_long(t, (int64_t)n) || put(t, b, n);
        }
        switch (p->rt) {
        case AVRO_INT64:
                return put_long(t, l);
        case AVRO_FLOAT:
                f = (float)l;
                return put(t, &f, 4);
        default:
                d = (double)l;
                return put(t, &d, 8);
        }
}

static int blocks(tc_t *t, const sl_rp_t *p)
{
        int map = p->kind == RP_MAP;
        int64_t count, idx = 0;
        const uint8_t *k;
        size_t n;

        for (;;) {
                if (sl_rd_block(&t->rd, p->w_item_min, &count))
                        return -1;
                if (count == 0)
                        return put_long(t, 0);
                if ((uint64_t)count > t->items_left)
                        return sl_rd_fail(&t->rd, "more array/map items than input bytes");
                t->items_left -= (size_t)count;
                if (put_long(t, count))
                        return -1;
                for (int64_t i = 0; i < count; i++, idx++) {
                        size_t old = sl_rd_push(&t->rd, "[%lld]", (long long)idx);

                        if (map && (sl_rd_bytes(&t->rd, &k, &n) || put_long(t, (int64_t)n) ||
                                    put(t, k, n)))
                                return -1;
                        if (value(t, p->items))
                                return -1;
                        sl_rd_pop(&t->rd, old);
                }
        }
}

static int field(tc_t *t, const sl_rp_t *p, size_t j)
{
        size_t old = sl_rd_push(&t->rd, "%s%s", t->rd.path_len ? "." : "", p->wf[j].name);

        if (p->wf[j].plan ? value(t, p->wf[j].plan) : sl_rd_skip(&t->rd, p->wf[j].w))
                return -1;
        sl_rd_pop(&t->rd, old);
        return 0;
}

/* Writer fields in reader order: defaults go into the gaps as they come. */
static int record_in_order(tc_t *t, const sl_rp_t *p)
{
        size_t next = 0;

        for (size_t j = 0; j < p->n_wfields; j++) {
                int ri = p->wf[j].plan ? p->wf[j].rfield : -1;

                for (; ri >= 0 && next < (size_t)ri; next++)
                        if (put(t, p->rf[next].def, p->rf[next].def_len))
                                return -1;
                if (field(t, p, j))
                        return -1;
                if (ri >= 0)
                        next = (size_t)ri + 1;
        }
        for (; next < p->n_rfields; next++)
                if (put(t, p->rf[next].def, p->rf[next].def_len))
                        return -1;
        return 0;
}

/* Writer fields in another order: written as they come, then put in
 * reader order through the scratch buffer. */
static int record_reorder(tc_t *t, const sl_rp_t *p)
{
        size_t base = t->out.n, frame = t->n_segs, len;
        seg_t *segs;

        if (t->n_segs + p->n_rfields > t->cap_segs) {
                size_t cap = 2 * (t->n_segs + p->n_rfields);
                seg_t *s = realloc(t->segs, cap * sizeof(*s));

                if (!s) {
                        t->nomem = 1;
                        return sl_rd_fail(&t->rd, "out of memory");
                }
                t->segs = s;
                t->cap_segs = cap;
        }
        t->n_segs += p->n_rfields;
        for (size_t j = 0; j < p->n_wfields; j++) {
                size_t start = t->out.n;

                if (field(t, p, j))
                        return -1;
                if (p->wf[j].plan)
                        t->segs[frame + (size_t)p->wf[j].rfield] =
                            (seg_t){start - base, t->out.n - start};
        }
        for (size_t i = 0; i < p->n_rfields; i++) {
                if (p->rf[i].wfield >= 0)
                        continue;
                t->segs[frame + i] = (seg_t){t->out.n - base, p->rf[i].def_len};
                if (put(t, p->rf[i].def, p->rf[i].def_len))
                        return -1;
        }
        len = t->out.n - base;
        if (len > t->scratch_cap) {
                uint8_t *s = realloc(t->scratch, len);

                if (!s) {
                        t->nomem = 1;
                        return sl_rd_fail(&t->rd, "out of memory");
                }
                t->scratch = s;
                t->scratch_cap = len;
        }
        memcpy(t->scratch, t->out.b + base, len);
        segs = t->segs + frame;
        for (size_t i = 0, off = base; i < p->n_rfields; off += segs[i].len, i++)
                memcpy(t->out.b + off, t->scratch + segs[i].off, segs[i].len);
        t->n_segs = frame;
        return 0;
}

static int value(tc_t *t, const sl_rp_t *p)
{
        const uint8_t *start = t->rd.p;
        int64_t idx;
        int rc = 0;

        if (++t->rd.depth > TC_MAX_DEPTH) {
                t->rd.depth--;
                return sl_rd_fail(&t->rd, "values nested deeper than %d", TC_MAX_DEPTH);
        }
        switch (p->kind) {
        case RP_COPY:
                /* sl_rd_skip counts its own depth from here. */
                t->rd.depth--;
                rc = sl_rd_skip(&t->rd, p->w) || put(t, start, (size_t)(t->rd.p - start));
                t->rd.depth++;
                break;
        case RP_PRIM:
                rc = prim(t, p);
                break;
        case RP_ENUM:
                if ((rc = sl_rd_long(&t->rd, &idx)))
                        break;
                if (idx < 0 || (uint64_t)idx >= p->n_enum)
                        rc = sl_rd_fail(&t->rd, "enum index %lld out of range", (long long)idx);
                else if (p->enum_map[idx] < 0 && (t->schema_err = 1))
                        rc = sl_rd_fail(&t->rd,
                                        "enum symbol %s is not in the reader's enum %s, "
                                        "which has no default",
                                        avro_schema_enum_get(p->w, (int)idx),
                                        avro_schema_name(p->r));
                else
                        rc = put_long(t, p->enum_map[idx]);
                break;
        case RP_ARRAY:
        case RP_MAP:
                rc = blocks(t, p);
                break;
        case RP_RECORD:
                rc = p->in_order ? record_in_order(t, p) : record_reorder(t, p);
                break;
        case RP_WUNION:
                if ((rc = sl_rd_union(&t->rd, p->n_branches, &idx)))
                        break;
                if (p->branch[idx]->kind == RP_ERROR && (t->schema_err = 1))
                        rc = sl_rd_fail(&t->rd, "writer union branch %lld (%s): %s", (long long)idx,
                                        avro_schema_type_name(p->branch[idx]->w),
                                        p->branch[idx]->msg + p->branch[idx]->reason);
                else
                        rc = value(t, p->branch[idx]);
                break;
        case RP_RUNION:
                rc = put_long(t, p->rbranch) || value(t, p->items);
                break;
        default:
                t->schema_err = 1;
                rc = sl_rd_fail(&t->rd, "%s", p->msg + p->reason);
                break;
        }
        t->rd.depth--;
        return rc ? -1 : 0;
}

sl_err_t sl_rplan_transcode(const sl_rplan_t *plan, const uint8_t *buf, size_t len, uint8_t **outp,
                            size_t *outlenp, char *errstr, size_t errstr_size)
{
        tc_t t;
        sl_err_t err = SL_OK;

        memset(&t, 0, sizeof(t));
        sl_rd_init(&t.rd, buf, len, errstr, errstr_size);
        t.items_left = len;
        t.out.max = len <= SIZE_MAX / 16 - (1u << 20) ? 16 * len + (1u << 20) : SIZE_MAX;
        *outp = NULL;
        *outlenp = 0;
        if (value(&t, plan->root)) {
                err = t.nomem ? SL_ERR_NOMEM : t.schema_err ? SL_ERR_SCHEMA : SL_ERR_DECODE;
        } else if (sl_rd_left(&t.rd)) {
                sl_strfmt(errstr, errstr_size, "%zu trailing bytes after the writer's record",
                          sl_rd_left(&t.rd));
                err = SL_ERR_DECODE;
        }
        free(t.scratch);
        free(t.segs);
        if (err) {
                free(t.out.b);
                return err;
        }
        /* An empty record resolves to zero bytes: still hand out a buffer. */
        *outp = t.out.b ? t.out.b : malloc(1);
        *outlenp = t.out.n;
        return *outp ? SL_OK : SL_ERR_NOMEM;
}
