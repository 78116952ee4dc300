/*
 * Binary and variadic elementwise operators with numpy broadcasting:
 * arithmetic (Add Sub Mul Div Pow Mod Min Max Sum Mean PRelu BitShift),
 * comparisons (Equal Less Greater LessOrEqual GreaterOrEqual), logic
 * (And Or Xor) and Where.
 * @sa ONNX docs/Broadcasting.md ("multidirectional broadcasting").
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

enum {
        OP_ADD,
        OP_SUB,
        OP_MUL,
        OP_DIV,
        OP_POW,
        OP_MOD,
        OP_FMOD,
        OP_MIN,
        OP_MAX,
        OP_PRELU,
        OP_EQ,
        OP_LT,
        OP_GT,
        OP_LE,
        OP_GE,
        OP_AND,
        OP_OR,
        OP_XOR,
        OP_SHL,
        OP_SHR
};

/* Iterates the output of a broadcast in rows of the innermost dimension. */
typedef struct {
        int ndim;
        int64_t dims[SL_MAX_DIMS];
        int64_t st[3][SL_MAX_DIMS];
        int n;
} bcast_t;

/*
 * Adjacent dimensions that every operand walks as one (stride of the outer
 * = stride of the inner * its size, e.g. both broadcast or both contiguous)
 * are merged, so that rows are as long as possible: x / scalar is one row,
 * not one per last-axis run.
 */
static void bcast_init(bcast_t *b, int ndim, const int64_t *dims, const sl_tensor_t **ts, int n)
{
        int64_t st[3][SL_MAX_DIMS];
        int nd = 0;

        b->n = n;
        for (int k = 0; k < n; k++)
                sl_broadcast_strides(ts[k], ndim, dims, st[k]);
        for (int d = 0; d < ndim; d++) {
                bool merge = nd > 0;
                for (int k = 0; k < n && merge; k++)
                        merge = b->st[k][nd - 1] == st[k][d] * dims[d];
                if (merge) {
                        b->dims[nd - 1] *= dims[d];
                        for (int k = 0; k < n; k++)
                                b->st[k][nd - 1] = st[k][d];
                        continue;
                }
                b->dims[nd] = dims[d];
                for (int k = 0; k < n; k++)
                        b->st[k][nd] = st[k][d];
                nd++;
        }
        b->ndim = nd;
}

typedef void (*row_fn)(void *ctx, const int64_t *off, const int64_t *inner, int64_t out_off,
                       int64_t n);

static void bcast_rows(const bcast_t *b, row_fn fn, void *ctx)
{
        int64_t idx[SL_MAX_DIMS] = {0}, off[3] = {0}, inner[3] = {0}, rows = 1, len, out = 0;
        int nd = b->ndim;

        if (nd == 0) {
                fn(ctx, off, inner, 0, 1);
                return;
        }
        len = b->dims[nd - 1];
        for (int d = 0; d < nd - 1; d++)
                rows *= b->dims[d];
        if (len == 0 || rows == 0)
                return;
        for (int k = 0; k < b->n; k++)
                inner[k] = b->st[k][nd - 1];
        for (int64_t r = 0; r < rows; r++) {
                for (int k = 0; k < b->n; k++) {
                        off[k] = 0;
                        for (int d = 0; d < nd - 1; d++)
                                off[k] += idx[d] * b->st[k][d];
                }
                fn(ctx, off, inner, out, len);
                out += len;
                for (int d = nd - 2; d >= 0; d--) {
                        if (++idx[d] < b->dims[d])
                                break;
                        idx[d] = 0;
                }
        }
}

typedef struct {
        int op;
        const sl_tensor_t *a, *b;
        sl_tensor_t *o;
} binctx_t;

static double f64_op(int op, double x, double y)
{
        switch (op) {
        case OP_ADD:
                return x + y;
        case OP_SUB:
                return x - y;
        case OP_MUL:
                return x * y;
        case OP_DIV:
                return x / y;
        case OP_POW:
                return pow(x, y);
        case OP_FMOD:
                return fmod(x, y);
        case OP_MOD: {
                double r = fmod(x, y);
                return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
        }
        case OP_MIN:
                return isnan(x) || isnan(y) ? NAN : (x < y ? x : y);
        case OP_MAX:
                return isnan(x) || isnan(y) ? NAN : (x > y ? x : y);
        case OP_PRELU:
                return x < 0 ? x * y : x;
        case OP_EQ:
                return x == y;
        case OP_LT:
                return x < y;
        case OP_GT:
                return x > y;
        case OP_LE:
                return x <= y;
        case OP_GE:
                return x >= y;
        default:
                return 0;
        }
}

static int64_t i64_op(int op, int64_t x, int64_t y)
{
        switch (op) {
        case OP_ADD:
                return (int64_t)((uint64_t)x + (uint64_t)y);
        case OP_SUB:
                return (int64_t)((uint64_t)x - (uint64_t)y);
        case OP_MUL:
                return (int64_t)((uint64_t)x * (uint64_t)y);
        case OP_DIV:
                return y == 0 || (y == -1 && x == INT64_MIN) ? 0 : x / y;
        case OP_POW: {
                int64_t r = 1;
                if (y < 0)
                        return x == 1 ? 1 : 0;
                while (y-- > 0)
                        r = (int64_t)((uint64_t)r * (uint64_t)x);
                return r;
        }
        case OP_FMOD:
                return y == 0 || y == -1 ? 0 : x % y;
        case OP_MOD: {
                int64_t r;
                if (y == 0 || y == -1)
                        return 0;
                r = x % y;
                return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
        }
        case OP_MIN:
                return x < y ? x : y;
        case OP_MAX:
                return x > y ? x : y;
        case OP_PRELU:
                return x < 0 ? x * y : x;
        case OP_EQ:
                return x == y;
        case OP_LT:
                return x < y;
        case OP_GT:
                return x > y;
        case OP_LE:
                return x <= y;
        case OP_GE:
                return x >= y;
        case OP_AND:
                return x && y;
        case OP_OR:
                return x || y;
        case OP_XOR:
                return !x != !y;
        case OP_SHL:
                return y >= 64 || y < 0 ? 0 : (int64_t)((uint64_t)x << y);
        case OP_SHR:
                return y >= 64 || y < 0 ? 0 : (int64_t)((uint64_t)x >> y);
        default:
                return 0;
        }
}

/* o[i] = a[i * sa] OP b[i * sb], with the unit-stride and scalar cases
 * spelled out so that they vectorise (strides are only known at run time). */
#define BIN_LOOP(OP)                                                                               \
        do {                                                                                       \
                if (sa == 1 && sb == 1) {                                                          \
                        for (int64_t i = 0; i < n; i++)                                            \
                                o[i] = a[i] OP b[i];                                               \
                } else if (sa == 1 && sb == 0) {                                                   \
                        float bv = b[0];                                                           \
                        for (int64_t i = 0; i < n; i++)                                            \
                                o[i] = a[i] OP bv;                                                 \
                } else if (sa == 0 && sb == 1) {                                                   \
                        float av = a[0];                                                           \
                        for (int64_t i = 0; i < n; i++)                                            \
                                o[i] = av OP b[i];                                                 \
                } else {                                                                           \
                        for (int64_t i = 0; i < n; i++)                                            \
                                o[i] = a[i * sa] OP b[i * sb];                                     \
                }                                                                                  \
        } while (0)

static void row_f32(void *vctx, const int64_t *off, const int64_t *inner, int64_t oo, int64_t n)
{
        const binctx_t *c = vctx;
        const float *a = (const float *)c->a->data + off[0],
                    *b = (const float *)c->b->data + off[1];
        float *o = (float *)c->o->data + oo;
        int64_t sa = inner[0], sb = inner[1];

        switch (c->op) {
        case OP_ADD:
                BIN_LOOP(+);
                break;
        case OP_SUB:
                BIN_LOOP(-);
                break;
        case OP_MUL:
                BIN_LOOP(*);
                break;
        case OP_DIV:
                BIN_LOOP(/);
                break;
        case OP_POW:
                /* x^2 (LayerNorm's variance as exporters write it): the
                 * float product is pow() in double rounded once, exactly. */
                if (sb == 0 && b[0] == 2.0f) {
                        for (int64_t i = 0; i < n; i++)
                                o[i] = a[i * sa] * a[i * sa];
                        break;
                }
                for (int64_t i = 0; i < n; i++)
                        o[i] = (float)f64_op(c->op, a[i * sa], b[i * sb]);
                break;
        default:
                for (int64_t i = 0; i < n; i++)
                        o[i] = (float)f64_op(c->op, a[i * sa], b[i * sb]);
        }
}

static void row_any(void *vctx, const int64_t *off, const int64_t *inner, int64_t oo, int64_t n)
{
        const binctx_t *c = vctx;
        /* Pow may mix types (float base, int exponent): compute it in double. */
        bool fl = sl_dtype_is_float(c->a->dtype) || sl_dtype_is_float(c->b->dtype);
        for (int64_t i = 0; i < n; i++) {
                int64_t ia = off[0] + i * inner[0], ib = off[1] + i * inner[1];
                if (fl)
                        sl_tensor_set_f64(c->o, oo + i,
                                          f64_op(c->op, sl_tensor_get_f64(c->a, ia),
                                                 sl_tensor_get_f64(c->b, ib)));
                else if (c->a->dtype == SL_DT_UINT64 && c->op >= OP_EQ && c->op <= OP_GE)
                        sl_tensor_set_i64(c->o, oo + i,
                                          (int64_t)f64_op(c->op, sl_tensor_get_f64(c->a, ia),
                                                          sl_tensor_get_f64(c->b, ib)));
                else
                        sl_tensor_set_i64(c->o, oo + i,
                                          i64_op(c->op, sl_tensor_get_i64(c->a, ia),
                                                 sl_tensor_get_i64(c->b, ib)));
        }
}

/* out = a op b, where out may alias a when a already has the output shape. */
static sl_err_t binary_into(sl_opctx_t *c, int op, const sl_tensor_t *a, const sl_tensor_t *b,
                            int out_idx, sl_tensor_t **outp)
{
        int64_t dims[SL_MAX_DIMS];
        int nd;
        bcast_t bc;
        const sl_tensor_t *ts[2] = {a, b};
        binctx_t ctx = {op, a, b, NULL};
        sl_dtype_t odt = a->dtype;

        if (op != OP_POW && op != OP_PRELU && op != OP_SHL && op != OP_SHR && a->dtype != b->dtype)
                return sl_op_fail(c, SL_ERR_DATATYPE, "input types differ: %s and %s",
                                  sl_dtype_name(a->dtype), sl_dtype_name(b->dtype));
        /* float16/bfloat16 go through row_any: computed in double, rounded once */
        if (!sl_dtype_size(a->dtype) || !sl_dtype_size(b->dtype) || a->dtype == SL_DT_STRING ||
            b->dtype == SL_DT_STRING)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "type %s not supported",
                                  sl_dtype_name(a->dtype == SL_DT_STRING ? a->dtype : b->dtype));
        if (sl_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &nd, dims))
                return sl_op_fail(c, SL_ERR_SHAPE, "shapes are not broadcastable");
        if (op >= OP_EQ && op <= OP_XOR)
                odt = SL_DT_BOOL;
        if (!*outp && !(*outp = sl_op_output(c, out_idx, odt, nd, dims)))
                return SL_ERR_NOMEM;
        ctx.o = *outp;
        bcast_init(&bc, nd, dims, ts, 2);
        if (a->dtype == SL_DT_FLOAT && b->dtype == SL_DT_FLOAT && odt == SL_DT_FLOAT)
                bcast_rows(&bc, row_f32, &ctx);
        else
                bcast_rows(&bc, row_any, &ctx);
        return SL_OK;
}

static sl_err_t binary(sl_opctx_t *c, int op)
{
        sl_tensor_t *out = NULL;
        if (c->n_in < 2 || !c->in[0] || !c->in[1])
                return sl_op_fail(c, SL_ERR_MODEL, "two inputs required");
        return binary_into(c, op, c->in[0], c->in[1], 0, &out);
}

#define BINARY(fn, op)                                                                             \
        sl_err_t fn(sl_opctx_t *c)                                                                 \
        {                                                                                          \
                return binary(c, op);                                                              \
        }
BINARY(sl_op_add, OP_ADD)
BINARY(sl_op_sub, OP_SUB)
BINARY(sl_op_mul, OP_MUL)
BINARY(sl_op_div, OP_DIV)
BINARY(sl_op_equal, OP_EQ)
BINARY(sl_op_less, OP_LT)
BINARY(sl_op_greater, OP_GT)
BINARY(sl_op_less_or_equal, OP_LE)
BINARY(sl_op_greater_or_equal, OP_GE)
BINARY(sl_op_and, OP_AND)
BINARY(sl_op_or, OP_OR)
BINARY(sl_op_xor, OP_XOR)

sl_err_t sl_op_prelu(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *slope = sl_op_in(c, 1);
        sl_tensor_t *out = NULL, view;
        if (!x || !slope)
                return sl_op_fail(c, SL_ERR_MODEL, "two inputs required");
        /* PRelu-6 and older: a 1-D slope of size C applies per channel (axis 1). */
        if (c->opset < 7 && slope->ndim == 1 && x->ndim >= 2 && slope->dims[0] == x->dims[1] &&
            slope->dims[0] != 1) {
                view = *slope;
                view.ndim = x->ndim - 1;
                for (int i = 1; i < view.ndim; i++)
                        view.dims[i] = 1;
                slope = &view;
        }
        return binary_into(c, OP_PRELU, x, slope, 0, &out);
}

sl_err_t sl_op_pow(sl_opctx_t *c)
{
        return binary(c, OP_POW);
}

sl_err_t sl_op_mod(sl_opctx_t *c)
{
        return binary(c, sl_attr_int(c->node, "fmod", 0) ? OP_FMOD : OP_MOD);
}

sl_err_t sl_op_bitshift(sl_opctx_t *c)
{
        char buf[16];
        const char *dir = sl_attr_string(c->node, "direction", "", buf, sizeof(buf));
        return binary(c, !strcmp(dir, "LEFT") ? OP_SHL : OP_SHR);
}

/* Variadic Min/Max/Sum/Mean: fold left to right into the broadcast output. */
static sl_err_t variadic(sl_opctx_t *c, int op, bool mean)
{
        int64_t dims[SL_MAX_DIMS];
        int nd = 0;
        sl_tensor_t *out;
        bcast_t bc;
        const sl_tensor_t *first = c->in[0];

        if (c->n_in < 1 || !first)
                return sl_op_fail(c, SL_ERR_MODEL, "at least one input required");
        nd = first->ndim;
        memcpy(dims, first->dims, sizeof(dims));
        for (int k = 1; k < c->n_in; k++)
                if (!c->in[k] ||
                    sl_broadcast_shape(nd, dims, c->in[k]->ndim, c->in[k]->dims, &nd, dims))
                        return sl_op_fail(c, SL_ERR_SHAPE, "input #%d is not broadcastable", k);
        if (!(out = sl_op_output(c, 0, first->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        /* out = broadcast copy of input 0 */
        {
                sl_tensor_t zero = {0};
                const sl_tensor_t *ts[2] = {first, &zero};
                binctx_t ctx = {OP_ADD, first, first, out};
                double z = 0;
                zero.dtype = first->dtype;
                zero.data = &z;
                bcast_init(&bc, nd, dims, ts, 2);
                ctx.b = &zero;
                if (first->dtype == SL_DT_STRING)
                        return sl_op_fail(c, SL_ERR_UNSUPPORTED, "type not supported");
                bcast_rows(&bc, first->dtype == SL_DT_FLOAT ? row_f32 : row_any, &ctx);
        }
        for (int k = 1; k < c->n_in; k++) {
                sl_err_t err = binary_into(c, op, out, c->in[k], 0, &out);
                if (err)
                        return err;
        }
        if (mean) {
                int64_t n = sl_tensor_numel(out);
                for (int64_t i = 0; i < n; i++)
                        sl_tensor_set_f64(out, i, sl_tensor_get_f64(out, i) / c->n_in);
        }
        return SL_OK;
}

sl_err_t sl_op_sum(sl_opctx_t *c)
{
        return variadic(c, OP_ADD, false);
}

sl_err_t sl_op_mean(sl_opctx_t *c)
{
        return variadic(c, OP_ADD, true);
}

sl_err_t sl_op_min(sl_opctx_t *c)
{
        return variadic(c, OP_MIN, false);
}

sl_err_t sl_op_max(sl_opctx_t *c)
{
        return variadic(c, OP_MAX, false);
}

typedef struct {
        const sl_tensor_t *cond, *x, *y;
        sl_tensor_t *o;
} wherectx_t;

static void row_where(void *vctx, const int64_t *off, const int64_t *inner, int64_t oo, int64_t n)
{
        const wherectx_t *w = vctx;
        size_t esz = sl_dtype_size(w->o->dtype);
        const uint8_t *cd = w->cond->data;
        for (int64_t i = 0; i < n; i++) {
                bool t = cd[off[0] + i * inner[0]] != 0;
                const sl_tensor_t *src = t ? w->x : w->y;
                int64_t si = t ? off[1] + i * inner[1] : off[2] + i * inner[2];
                memcpy((char *)w->o->data + (size_t)(oo + i) * esz,
                       (const char *)src->data + (size_t)si * esz, esz);
        }
}

sl_err_t sl_op_where(sl_opctx_t *c)
{
        const sl_tensor_t *ts[3] = {c->in[0], sl_op_in(c, 1), sl_op_in(c, 2)};
        int64_t dims[SL_MAX_DIMS];
        int nd;
        bcast_t bc;
        wherectx_t w;

        if (!ts[0] || !ts[1] || !ts[2] || ts[0]->dtype != SL_DT_BOOL ||
            ts[1]->dtype != ts[2]->dtype)
                return sl_op_fail(c, SL_ERR_DATATYPE, "Where needs bool cond and equal X/Y types");
        if (sl_broadcast_shape(ts[0]->ndim, ts[0]->dims, ts[1]->ndim, ts[1]->dims, &nd, dims) ||
            sl_broadcast_shape(nd, dims, ts[2]->ndim, ts[2]->dims, &nd, dims))
                return sl_op_fail(c, SL_ERR_SHAPE, "shapes are not broadcastable");
        w.cond = ts[0];
        w.x = ts[1];
        w.y = ts[2];
        if (!(w.o = sl_op_output(c, 0, ts[1]->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        bcast_init(&bc, nd, dims, ts, 3);
        bcast_rows(&bc, row_where, &w);
        return SL_OK;
}
