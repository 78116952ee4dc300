/*
 * Reductions: ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1
 * ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare, ArgMax, ArgMin.
 * Axes come from the attribute, or from input 1 (ReduceSum from opset 13,
 * the others from opset 18); noop_with_empty_axes as the spec says.
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

/* Output index of input element i, dropping (or zeroing) the reduced axes. */
static int64_t out_index(int64_t i, const sl_tensor_t *x, const bool *red)
{
        int64_t rem = i, o = 0, mul = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
                int64_t k = rem % x->dims[d];
                rem /= x->dims[d];
                if (!red[d]) {
                        o += k * mul;
                        mul *= x->dims[d];
                }
        }
        return o;
}

/*
 * Sum of float x over one contiguous run of reduced axes [a0, a1), as
 * outer x len x inner, into acc (zeroed, outer * inner doubles), in the same
 * element order as the general loop. Returns false when the reduced axes
 * are not one contiguous run (the general loop handles those).
 */
static bool reduce_rows(const sl_tensor_t *x, const bool *red, double *acc)
{
        int a0 = -1, a1 = -1;
        int64_t outer = 1, len = 1, inner = 1;
        const float *xd = x->data;

        for (int d = 0; d < x->ndim; d++) {
                if (!red[d])
                        continue;
                if (a0 < 0)
                        a0 = d;
                else if (a1 != d)
                        return false;
                a1 = d + 1;
        }
        if (a0 < 0)
                return false;
        for (int d = 0; d < x->ndim; d++) {
                if (d < a0)
                        outer *= x->dims[d];
                else if (d < a1)
                        len *= x->dims[d];
                else
                        inner *= x->dims[d];
        }
        for (int64_t o = 0; o < outer; o++) {
                const float *xo = xd + o * len * inner;
                double *ao = acc + o * inner;
                if (inner == 1) {
                        double s = 0;
                        for (int64_t i = 0; i < len; i++)
                                s += xo[i];
                        ao[0] = s;
                        continue;
                }
                for (int64_t i = 0; i < len; i++)
                        for (int64_t j = 0; j < inner; j++)
                                ao[j] += xo[i * inner + j];
        }
        return true;
}

static sl_err_t reduce(sl_opctx_t *c, int kind)
{
        const sl_tensor_t *x = c->in[0];
        bool keep = sl_attr_int(c->node, "keepdims", 1) != 0;
        bool noop = sl_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
        bool red[SL_MAX_DIMS] = {false};
        int64_t axes[SL_MAX_DIMS], dims[SL_MAX_DIMS], n, on, cnt = 1;
        const int64_t *aa;
        int na, nd = 0;
        double *acc;
        sl_tensor_t *y;

        if (!x || !sl_dtype_size(x->dtype) || x->dtype == SL_DT_FLOAT16 || x->dtype == SL_DT_BOOL)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "numeric input required");
        if (sl_op_in(c, 1)) {
                if ((na = sl_read_ints(c->in[1], axes, SL_MAX_DIMS)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axes input");
        } else if ((na = sl_attr_ints(c->node, "axes", &aa)) >= 0) {
                if (na > SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_SHAPE, "too many axes");
                memcpy(axes, aa, sizeof(int64_t) * (size_t)na);
        } else {
                na = 0;
        }
        if (na == 0 && noop)
                return sl_op_identity(c);
        for (int i = 0; i < na; i++) {
                int a = sl_axis(axes[i], x->ndim, false);
                if (a < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "axis %lld out of range",
                                          (long long)axes[i]);
                red[a] = true;
        }
        for (int i = 0; i < x->ndim; i++) {
                if (na == 0)
                        red[i] = true;
                if (red[i])
                        cnt *= x->dims[i];
                if (!red[i])
                        dims[nd++] = x->dims[i];
                else if (keep)
                        dims[nd++] = 1;
        }
        if (!(y = sl_op_output(c, 0, x->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        on = sl_tensor_numel(y);
        if (!(acc = sl_op_scratch(c, sizeof(double) * (size_t)(on ? on : 1))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        for (int64_t o = 0; o < on; o++)
                acc[o] = kind == R_MAX    ? -INFINITY
                         : kind == R_MIN  ? INFINITY
                         : kind == R_PROD ? 1.0
                                          : 0.0;
        if (x->dtype == SL_DT_FLOAT && (kind == R_SUM || kind == R_MEAN) &&
            reduce_rows(x, red, acc)) {
                n = 0; /* done */
        } else {
                n = sl_tensor_numel(x);
        }
        for (int64_t i = 0; i < n; i++) {
                double v = sl_tensor_get_f64(x, i);
                int64_t o = out_index(i, x, red);
                switch (kind) {
                case R_MAX:
                        acc[o] = v > acc[o] || isnan(v) ? v : acc[o];
                        break;
                case R_MIN:
                        acc[o] = v < acc[o] || isnan(v) ? v : acc[o];
                        break;
                case R_PROD:
                        acc[o] *= v;
                        break;
                case R_L1:
                        acc[o] += fabs(v);
                        break;
                case R_L2:
                case R_SUMSQ:
                        acc[o] += v * v;
                        break;
                case R_LOGSUMEXP:
                        acc[o] += exp(v);
                        break;
                default:
                        acc[o] += v;
                }
        }
        for (int64_t o = 0; o < on; o++) {
                double v = acc[o];
                if (kind == R_MEAN)
                        v /= (double)(cnt ? cnt : 1);
                else if (kind == R_L2)
                        v = sqrt(v);
                else if (kind == R_LOGSUM || kind == R_LOGSUMEXP)
                        v = log(v);
                sl_tensor_set_f64(y, o, v);
        }
        return SL_OK;
}

#define REDUCE(fn, kind)                                                                           \
        sl_err_t fn(sl_opctx_t *c)                                                                 \
        {                                                                                          \
                return reduce(c, kind);                                                            \
        }
REDUCE(sl_op_reduce_sum, R_SUM)
REDUCE(sl_op_reduce_mean, R_MEAN)
REDUCE(sl_op_reduce_max, R_MAX)
REDUCE(sl_op_reduce_min, R_MIN)
REDUCE(sl_op_reduce_prod, R_PROD)
REDUCE(sl_op_reduce_l1, R_L1)
REDUCE(sl_op_reduce_l2, R_L2)
REDUCE(sl_op_reduce_log_sum, R_LOGSUM)
REDUCE(sl_op_reduce_log_sum_exp, R_LOGSUMEXP)
REDUCE(sl_op_reduce_sum_square, R_SUMSQ)

static sl_err_t arg(sl_opctx_t *c, bool max)
{
        const sl_tensor_t *x = c->in[0];
        bool keep = sl_attr_int(c->node, "keepdims", 1) != 0;
        bool last = sl_attr_int(c->node, "select_last_index", 0) != 0;
        int ax = x ? sl_axis(sl_attr_int(c->node, "axis", 0), x->ndim, false) : -1;
        int64_t dims[SL_MAX_DIMS], outer = 1, inner = 1, len;
        int nd = 0;
        sl_tensor_t *y;

        if (ax < 0 || !sl_dtype_size(x->dtype) || x->dtype == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_SHAPE, "numeric input and valid axis required");
        for (int i = 0; i < x->ndim; i++) {
                if (i < ax)
                        outer *= x->dims[i];
                else if (i > ax)
                        inner *= x->dims[i];
                if (i != ax)
                        dims[nd++] = x->dims[i];
                else if (keep)
                        dims[nd++] = 1;
        }
        len = x->dims[ax];
        if (!(y = sl_op_output(c, 0, SL_DT_INT64, nd, dims)))
                return SL_ERR_NOMEM;
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        int64_t best = 0;
                        double bv = 0;
                        for (int64_t i = 0; i < len; i++) {
                                double v = sl_tensor_get_f64(x, (o * len + i) * inner + in);
                                bool better = i == 0 || (max ? (last ? v >= bv : v > bv)
                                                             : (last ? v <= bv : v < bv));
                                if (better) {
                                        best = i;
                                        bv = v;
                                }
                        }
                        ((int64_t *)y->data)[o * inner + in] = best;
                }
        return SL_OK;
}

sl_err_t sl_op_argmax(sl_opctx_t *c)
{
        return arg(c, true);
}

sl_err_t sl_op_argmin(sl_opctx_t *c)
{
        return arg(c, false);
}
