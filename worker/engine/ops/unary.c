/*
 * Unary elementwise operators: math (Abs Neg Sqrt Exp Log ... Erf), the
 * activations (Relu LeakyRelu Elu Selu Celu Sigmoid HardSigmoid HardSwish
 * Softplus Softsign ThresholdedRelu Shrink Gelu Mish), Clip, Not, IsNaN,
 * IsInf. Float32 inputs are computed in double and rounded once. (Cast and
 * CastLike: cast.c.)
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

typedef struct {
        double alpha, beta, gamma;
        int flag;
} uparams_t;

typedef double (*ufn_t)(double x, const uparams_t *p);

static void apply(const sl_tensor_t *x, sl_tensor_t *y, ufn_t fn, const uparams_t *p)
{
        int64_t n = sl_tensor_numel(x);
        if (x->dtype == SL_DT_FLOAT && y->dtype == SL_DT_FLOAT) {
                const float *a = x->data;
                float *o = y->data;
                for (int64_t i = 0; i < n; i++)
                        o[i] = (float)fn(a[i], p);
                return;
        }
        for (int64_t i = 0; i < n; i++)
                sl_tensor_set_f64(y, i, fn(sl_tensor_get_f64(x, i), p));
}

static sl_err_t unary(sl_opctx_t *c, ufn_t fn, const uparams_t *p, bool float_only)
{
        const sl_tensor_t *x = c->in[0];
        sl_tensor_t *y;
        if (c->n_in < 1 || !x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (float_only
                ? !sl_dtype_is_float(x->dtype)
                : (!sl_dtype_size(x->dtype) || x->dtype == SL_DT_BOOL || x->dtype == SL_DT_STRING))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "type %s not supported",
                                  sl_dtype_name(x->dtype));
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        apply(x, y, fn, p);
        return SL_OK;
}

#define UFN(name, expr)                                                                            \
        static double name(double x, const uparams_t *p)                                           \
        {                                                                                          \
                (void)p;                                                                           \
                return (expr);                                                                     \
        }

UFN(f_abs, fabs(x))
UFN(f_neg, -x)
UFN(f_sqrt, sqrt(x))
UFN(f_exp, exp(x))
UFN(f_log, log(x))
UFN(f_recip, 1.0 / x)
UFN(f_floor, floor(x))
UFN(f_ceil, ceil(x))
UFN(f_round, nearbyint(x)) /* round half to even, as the spec */
UFN(f_sign, x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0))
UFN(f_sin, sin(x))
UFN(f_cos, cos(x))
UFN(f_tan, tan(x))
UFN(f_asin, asin(x))
UFN(f_acos, acos(x))
UFN(f_atan, atan(x))
UFN(f_sinh, sinh(x))
UFN(f_cosh, cosh(x))
UFN(f_asinh, asinh(x))
UFN(f_acosh, acosh(x))
UFN(f_atanh, atanh(x))
UFN(f_erf, erf(x))
UFN(f_relu, x > 0 ? x : 0)
UFN(f_sigmoid, x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)))
UFN(f_tanh, tanh(x))
UFN(f_softplus, x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))
UFN(f_softsign, x / (1.0 + fabs(x)))
UFN(f_leaky, x >= 0 ? x : p->alpha * x)
UFN(f_elu, x >= 0 ? x : p->alpha * (exp(x) - 1.0))
UFN(f_selu, p->gamma *(x > 0 ? x : p->alpha * (exp(x) - 1.0)))
UFN(f_celu, (x > 0 ? x : 0) + fmin(0.0, p->alpha *(exp(x / p->alpha) - 1.0)))
UFN(f_hsigmoid, fmax(0.0, fmin(1.0, p->alpha *x + p->beta)))
UFN(f_hswish, x *fmax(0.0, fmin(1.0, x / 6.0 + 0.5)))
UFN(f_thresh, x > p->alpha ? x : 0)
UFN(f_shrink, x < -p->alpha ? x + p->beta : (x > p->alpha ? x - p->beta : 0))
UFN(f_gelu, 0.5 * x * (1.0 + erf(x / sqrt(2.0))))
UFN(f_gelu_tanh, 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))))
UFN(f_mish, x *tanh(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))))
UFN(f_clip, x < p->alpha ? p->alpha : (x > p->beta ? p->beta : x))

static const uparams_t none = {0, 0, 0, 0};

#define UNARY(fn, f, float_only)                                                                   \
        sl_err_t fn(sl_opctx_t *c)                                                                 \
        {                                                                                          \
                return unary(c, f, &none, float_only);                                             \
        }
UNARY(sl_op_abs, f_abs, false)
UNARY(sl_op_neg, f_neg, false)
UNARY(sl_op_sign, f_sign, false)
UNARY(sl_op_sqrt, f_sqrt, true)
UNARY(sl_op_exp, f_exp, true)
UNARY(sl_op_log, f_log, true)
UNARY(sl_op_reciprocal, f_recip, true)
UNARY(sl_op_floor, f_floor, true)
UNARY(sl_op_ceil, f_ceil, true)
UNARY(sl_op_round, f_round, true)
UNARY(sl_op_sin, f_sin, true)
UNARY(sl_op_cos, f_cos, true)
UNARY(sl_op_tan, f_tan, true)
UNARY(sl_op_asin, f_asin, true)
UNARY(sl_op_acos, f_acos, true)
UNARY(sl_op_atan, f_atan, true)
UNARY(sl_op_sinh, f_sinh, true)
UNARY(sl_op_cosh, f_cosh, true)
UNARY(sl_op_asinh, f_asinh, true)
UNARY(sl_op_acosh, f_acosh, true)
UNARY(sl_op_atanh, f_atanh, true)
UNARY(sl_op_erf, f_erf, true)
UNARY(sl_op_sigmoid, f_sigmoid, true)
UNARY(sl_op_tanh, f_tanh, true)
UNARY(sl_op_softplus, f_softplus, true)
UNARY(sl_op_softsign, f_softsign, true)
UNARY(sl_op_hard_swish, f_hswish, true)
UNARY(sl_op_mish, f_mish, true)

sl_err_t sl_op_relu(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        if (x && x->dtype == SL_DT_FLOAT) {
                sl_tensor_t *y = sl_op_output_like(c, 0, x->dtype, x);
                int64_t n = sl_tensor_numel(x);
                const float *a = x->data;
                float *o;
                if (!y)
                        return SL_ERR_NOMEM;
                o = y->data;
                for (int64_t i = 0; i < n; i++)
                        o[i] = a[i] > 0 ? a[i] : 0.0f;
                return SL_OK;
        }
        return unary(c, f_relu, &none, false);
}

sl_err_t sl_op_leaky_relu(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 0.01f), 0, 0, 0};
        return unary(c, f_leaky, &p, true);
}

sl_err_t sl_op_elu(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
        return unary(c, f_elu, &p, true);
}

sl_err_t sl_op_selu(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 1.67326319217681884765625f), 0,
                       sl_attr_float(c->node, "gamma", 1.05070102214813232421875f), 0};
        return unary(c, f_selu, &p, true);
}

sl_err_t sl_op_celu(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
        return unary(c, f_celu, &p, true);
}

sl_err_t sl_op_hard_sigmoid(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 0.2f), sl_attr_float(c->node, "beta", 0.5f),
                       0, 0};
        return unary(c, f_hsigmoid, &p, true);
}

sl_err_t sl_op_thresholded_relu(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
        return unary(c, f_thresh, &p, true);
}

sl_err_t sl_op_shrink(sl_opctx_t *c)
{
        uparams_t p = {sl_attr_float(c->node, "lambd", 0.5f), sl_attr_float(c->node, "bias", 0.0f),
                       0, 0};
        return unary(c, f_shrink, &p, false);
}

sl_err_t sl_op_gelu(sl_opctx_t *c)
{
        char buf[16];
        const char *approx = sl_attr_string(c->node, "approximate", "none", buf, sizeof(buf));
        return unary(c, !strcmp(approx, "tanh") ? f_gelu_tanh : f_gelu, &none, true);
}

sl_err_t sl_op_clip(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *lo = sl_op_in(c, 1), *hi = sl_op_in(c, 2);
        uparams_t p = {-INFINITY, INFINITY, 0, 0};
        if (c->opset < 11) {
                p.alpha = sl_attr_float(c->node, "min", -INFINITY);
                p.beta = sl_attr_float(c->node, "max", INFINITY);
        } else {
                if (lo && sl_tensor_numel(lo) >= 1)
                        p.alpha = sl_tensor_get_f64(lo, 0);
                if (hi && sl_tensor_numel(hi) >= 1)
                        p.beta = sl_tensor_get_f64(hi, 0);
        }
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        return unary(c, f_clip, &p, false);
}

sl_err_t sl_op_not(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        sl_tensor_t *y;
        int64_t n;
        if (!x || x->dtype != SL_DT_BOOL)
                return sl_op_fail(c, SL_ERR_DATATYPE, "Not needs a bool input");
        if (!(y = sl_op_output_like(c, 0, SL_DT_BOOL, x)))
                return SL_ERR_NOMEM;
        n = sl_tensor_numel(x);
        for (int64_t i = 0; i < n; i++)
                ((uint8_t *)y->data)[i] = !((const uint8_t *)x->data)[i];
        return SL_OK;
}

static sl_err_t classify(sl_opctx_t *c, bool inf)
{
        const sl_tensor_t *x = c->in[0];
        sl_tensor_t *y;
        int64_t n;
        int pos = (int)sl_attr_int(c->node, "detect_positive", 1);
        int neg = (int)sl_attr_int(c->node, "detect_negative", 1);
        if (!x || !sl_dtype_is_float(x->dtype))
                return sl_op_fail(c, SL_ERR_DATATYPE, "float input required");
        if (!(y = sl_op_output_like(c, 0, SL_DT_BOOL, x)))
                return SL_ERR_NOMEM;
        n = sl_tensor_numel(x);
        for (int64_t i = 0; i < n; i++) {
                double v = sl_tensor_get_f64(x, i);
                bool r = inf ? (isinf(v) && ((v > 0 && pos) || (v < 0 && neg))) : isnan(v);
                ((uint8_t *)y->data)[i] = r;
        }
        return SL_OK;
}

sl_err_t sl_op_isnan(sl_opctx_t *c)
{
        return classify(c, false);
}

sl_err_t sl_op_isinf(sl_opctx_t *c)
{
        return classify(c, true);
}
