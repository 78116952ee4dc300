/*
 * Loss operators: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (opsets 12 and 13), with class weights, ignore_index and the three
 * reductions. Computed in double, stored in the input's type (float, double).
 * @sa ONNX docs/Operators.md, "NegativeLogLikelihoodLoss" and
 *     "SoftmaxCrossEntropyLoss"; the reference functions of the ONNX
 *     backend tests (a mean over weights, when weights or ignore_index apply).
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

enum { RED_NONE, RED_SUM, RED_MEAN };

static sl_err_t check_reduction(const sl_node_t *node, char *errstr, size_t errstr_size)
{
        char buf[16];
        const char *r = sl_attr_string(node, "reduction", "mean", buf, sizeof(buf));
        if (strcmp(r, "none") && strcmp(r, "sum") && strcmp(r, "mean")) {
                sl_strfmt(errstr, errstr_size, "reduction '%s' is not none, sum or mean", r);
                return SL_ERR_MODEL;
        }
        return SL_OK;
}

sl_err_t sl_check_loss(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        (void)opset;
        return check_reduction(node, errstr, errstr_size);
}

static int reduction(const sl_node_t *node)
{
        char buf[16];
        const char *r = sl_attr_string(node, "reduction", "mean", buf, sizeof(buf));
        return !strcmp(r, "none") ? RED_NONE : !strcmp(r, "sum") ? RED_SUM : RED_MEAN;
}

/*
 * loss[n, d] = -logp[n, target[n, d], d] * w[target[n, d]] (0 where target is
 * ignore_index), logp of shape [N, C, D] (D = product of the trailing axes).
 * Output 0 is [N, d1, ...] for "none", else a scalar.
 */
static sl_err_t nll(sl_opctx_t *c, const sl_tensor_t *logp, const sl_tensor_t *x,
                    const sl_tensor_t *target, const sl_tensor_t *w)
{
        int64_t N = x->dims[0], C = x->dims[1], D = 1;
        const Onnx__AttributeProto *ii = sl_attr_find(c->node, "ignore_index");
        int64_t ignore = ii && ii->has_i ? ii->i : 0;
        int red = reduction(c->node);
        double sum = 0, wsum = 0;
        sl_tensor_t *y;

        for (int d = 2; d < x->ndim; d++)
                D *= x->dims[d];
        if (target->ndim != x->ndim - 1 || target->dims[0] != N)
                return sl_op_fail(c, SL_ERR_SHAPE, "target must have shape [N, d1, ...]");
        for (int d = 2; d < x->ndim; d++)
                if (target->dims[d - 1] != x->dims[d])
                        return sl_op_fail(c, SL_ERR_SHAPE, "target and input differ at axis %d", d);
        if (w && (w->ndim != 1 || w->dims[0] != C || w->dtype != x->dtype))
                return sl_op_fail(c, SL_ERR_SHAPE, "weight must be [C] of the input's type");
        if (red == RED_NONE)
                y = sl_op_output(c, 0, x->dtype, target->ndim, target->dims);
        else
                y = sl_op_output(c, 0, x->dtype, 0, NULL);
        if (!y)
                return SL_ERR_NOMEM;
        for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++) {
                        int64_t i = n * D + d, t = sl_tensor_get_i64(target, i);
                        double wt = 1, l = 0;
                        if (ii && t == ignore) {
                                wt = 0;
                        } else {
                                if (t < 0 || t >= C)
                                        return sl_op_fail(c, SL_ERR_SHAPE,
                                                          "target %lld outside [0, %lld)",
                                                          (long long)t, (long long)C);
                                if (w)
                                        wt = sl_tensor_get_f64(w, t);
                                l = -sl_tensor_get_f64(logp, (n * C + t) * D + d) * wt;
                        }
                        if (red == RED_NONE)
                                sl_tensor_set_f64(y, i, l);
                        sum += l;
                        wsum += wt;
                }
        if (red == RED_SUM)
                sl_tensor_set_f64(y, 0, sum);
        else if (red == RED_MEAN)
                /* Weighted mean; without weights or ignore_index wsum = N*D. */
                sl_tensor_set_f64(y, 0, sum / wsum);
        return SL_OK;
}

static sl_err_t check_inputs(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *target)
{
        if (!x || !target)
                return sl_op_fail(c, SL_ERR_MODEL, "input and target required");
        if (x->dtype != SL_DT_FLOAT && x->dtype != SL_DT_DOUBLE)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "input type %s not supported",
                                  sl_dtype_name(x->dtype));
        if (target->dtype != SL_DT_INT64 && target->dtype != SL_DT_INT32)
                return sl_op_fail(c, SL_ERR_DATATYPE, "target must be int32 or int64");
        if (x->ndim < 2)
                return sl_op_fail(c, SL_ERR_SHAPE, "input must be [N, C, ...]");
        return SL_OK;
}

sl_err_t sl_op_nll_loss(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *target = sl_op_in(c, 1);
        sl_err_t err = check_inputs(c, x, target);
        return err ? err : nll(c, x, x, target, sl_op_in(c, 2));
}

/* log_prob = LogSoftmax(scores) over axis 1, then the NLL loss of it. */
sl_err_t sl_op_softmax_cross_entropy_loss(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *target = sl_op_in(c, 1);
        sl_err_t err = check_inputs(c, x, target);
        int64_t N, C, D = 1;
        sl_tensor_t *lp, tmp;

        if (err)
                return err;
        N = x->dims[0];
        C = x->dims[1];
        for (int d = 2; d < x->ndim; d++)
                D *= x->dims[d];
        if (sl_op_has_output(c, 1)) {
                if (!(lp = sl_op_output_like(c, 1, x->dtype, x)))
                        return SL_ERR_NOMEM;
        } else {
                tmp = *x;
                if (!(tmp.data = sl_op_scratch(c, x->nbytes)))
                        return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
                lp = &tmp;
        }
        for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++) {
                        double mx = -INFINITY, s = 0, lse;
                        for (int64_t k = 0; k < C; k++) {
                                double v = sl_tensor_get_f64(x, (n * C + k) * D + d);
                                mx = v > mx ? v : mx;
                        }
                        for (int64_t k = 0; k < C; k++)
                                s += exp(sl_tensor_get_f64(x, (n * C + k) * D + d) - mx);
                        lse = mx + log(s);
                        for (int64_t k = 0; k < C; k++) {
                                int64_t i = (n * C + k) * D + d;
                                sl_tensor_set_f64(lp, i, sl_tensor_get_f64(x, i) - lse);
                        }
                }
        return nll(c, lp, x, target, sl_op_in(c, 2));
}
