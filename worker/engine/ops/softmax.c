/*
 * Softmax, LogSoftmax and Hardmax.
 *
 * Opset < 13: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
 * (axis default 1) and the operation runs over each row.
 * Opset >= 13: the operation runs along the single axis (default -1).
 * @sa ONNX docs/Changelog.md, "Softmax-11" vs "Softmax-13".
 */
#include <math.h>

#include "../engine_int.h"
#include "ops.h"

enum { SM_SOFTMAX, SM_LOG, SM_HARD };

static void run_rows(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, int kind);

/* Softmax over contiguous rows (inner = 1, the common last-axis case), in
 * float with the vector exp: x - max of every row, one exp over the whole
 * tensor (attention rows are short), then one scale per row by 1 / sum.
 * Rows whose max is infinite or NaN take the double path. */
static void softmax_rows(const float *x, float *y, int64_t outer, int64_t len)
{
        for (int64_t o = 0; o < outer; o++) {
                const float *xp = x + o * len;
                float *yp = y + o * len, mx = -INFINITY;
                for (int64_t i = 0; i < len; i++)
                        mx = xp[i] > mx || isnan(xp[i]) ? xp[i] : mx;
                if (isinf(mx) || isnan(mx))
                        mx = 0.0f; /* redone below */
                for (int64_t i = 0; i < len; i++)
                        yp[i] = xp[i] - mx;
        }
        sl_vexp(y, y, outer * len);
        for (int64_t o = 0; o < outer; o++) {
                const float *xp = x + o * len;
                float *yp = y + o * len, inv;
                double sum = 0;
                bool finite = true;
                for (int64_t i = 0; i < len; i++) {
                        sum += yp[i];
                        finite &= isfinite(xp[i]);
                }
                if (!finite) {
                        run_rows(xp, yp, 1, len, 1, SM_SOFTMAX);
                        continue;
                }
                inv = (float)(1.0 / sum);
                for (int64_t i = 0; i < len; i++)
                        yp[i] *= inv;
        }
}

static void run_rows(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, int kind)
{
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        const float *xp = x + o * len * inner + in;
                        float *yp = y + o * len * inner + in;
                        double mx = -INFINITY, sum = 0;
                        int64_t arg = 0;
                        for (int64_t i = 0; i < len; i++)
                                if (xp[i * inner] > mx) {
                                        mx = xp[i * inner];
                                        arg = i;
                                }
                        if (kind == SM_HARD) {
                                for (int64_t i = 0; i < len; i++)
                                        yp[i * inner] = i == arg ? 1.0f : 0.0f;
                                continue;
                        }
                        for (int64_t i = 0; i < len; i++)
                                sum += exp(xp[i * inner] - mx);
                        for (int64_t i = 0; i < len; i++) {
                                double d = xp[i * inner] - mx;
                                yp[i * inner] =
                                    (float)(kind == SM_LOG ? d - log(sum) : exp(d) / sum);
                        }
                }
}

static sl_err_t softmax(sl_opctx_t *c, int kind)
{
        const sl_tensor_t *x = c->in[0];
        bool coerce = c->opset < 13;
        int64_t axis = sl_attr_int(c->node, "axis", coerce ? 1 : -1), outer = 1, len = 1, inner = 1;
        sl_tensor_t *y;
        int ax;

        if (!x || x->dtype != SL_DT_FLOAT)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input required");
        if ((ax = sl_axis(axis, x->ndim, coerce)) < 0 && x->ndim > 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis %lld out of range for rank %d",
                                  (long long)axis, x->ndim);
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        if (x->ndim == 0) {
                ((float *)y->data)[0] = kind == SM_LOG ? 0.0f : 1.0f;
                return SL_OK;
        }
        for (int i = 0; i < x->ndim; i++) {
                if (i < ax)
                        outer *= x->dims[i];
                else if (i == ax || coerce)
                        len *= x->dims[i];
                else
                        inner *= x->dims[i];
        }
        if (kind == SM_SOFTMAX && inner == 1)
                softmax_rows(x->data, y->data, outer, len);
        else
                run_rows(x->data, y->data, outer, len, inner, kind);
        return SL_OK;
}

sl_err_t sl_op_softmax(sl_opctx_t *c)
{
        return softmax(c, SM_SOFTMAX);
}

sl_err_t sl_op_log_softmax(sl_opctx_t *c)
{
        return softmax(c, SM_LOG);
}

sl_err_t sl_op_hardmax(sl_opctx_t *c)
{
        return softmax(c, SM_HARD);
}
