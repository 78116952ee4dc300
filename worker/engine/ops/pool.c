/*
 * Pooling: MaxPool (with Indices), AveragePool (count_include_pad), LpPool,
 * GlobalAveragePool, GlobalMaxPool, GlobalLpPool. 1-D to 3-D through the
 * 3-D window geometry of conv.c.
 * @sa ONNX operator spec, sections "MaxPool", "AveragePool" (ceil_mode, pads).
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

enum { POOL_MAX, POOL_AVG, POOL_LP };

/* MaxPool 2x2, stride 2, no padding or dilation, over [NC][H][W] floats.
 * Cloned for AVX-512/AVX2 so that the pairwise max vectorises on them. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
max_pool_2x2(const float *x, float *y, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW)
{
        for (int64_t nc = 0; nc < NC; nc++) {
                const float *xp = x + nc * H * W;
                float *yp = y + nc * OH * OW;
                for (int64_t oh = 0; oh < OH; oh++) {
                        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
                        for (int64_t ow = 0; ow < OW; ow++) {
                                float a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];
                                float b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];
                                yp[oh * OW + ow] = a > b ? a : b;
                        }
                }
        }
}

/*
 * MaxPool on floats without the Indices output, any geometry: the window is
 * clipped to the input once per output position (padding never wins a max).
 * NaN handling matches the generic path: a NaN is kept only when it comes first.
 */
static void max_pool_f32(const float *x, float *y, int64_t NC, const sl_geom_t *g)
{
        int64_t I = g->in[0] * g->in[1] * g->in[2];
        for (int64_t nc = 0; nc < NC; nc++) {
                const float *xp = x + nc * I;
                for (int64_t o0 = 0; o0 < g->out[0]; o0++)
                        for (int64_t o1 = 0; o1 < g->out[1]; o1++)
                                for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
                                        int64_t b0 = o0 * g->s[0] - g->pb[0];
                                        int64_t b1 = o1 * g->s[1] - g->pb[1];
                                        int64_t b2 = o2 * g->s[2] - g->pb[2];
                                        float acc = -INFINITY;
                                        bool any = false;
                                        for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
                                                int64_t i0 = b0 + k0 * g->d[0];
                                                if (i0 < 0 || i0 >= g->in[0])
                                                        continue;
                                                for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                                                        int64_t i1 = b1 + k1 * g->d[1];
                                                        const float *row;
                                                        if (i1 < 0 || i1 >= g->in[1])
                                                                continue;
                                                        row = xp + (i0 * g->in[1] + i1) * g->in[2];
                                                        for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                                                                int64_t i2 = b2 + k2 * g->d[2];
                                                                if (i2 < 0 || i2 >= g->in[2])
                                                                        continue;
                                                                if (row[i2] > acc || !any)
                                                                        acc = row[i2];
                                                                any = true;
                                                        }
                                                }
                                        }
                                        *y++ = acc;
                                }
        }
}

static bool is_2x2_s2(const sl_geom_t *g)
{
        return g->k[0] == 1 && g->s[0] == 1 && g->pb[0] == 0 && g->pe[0] == 0 && g->k[1] == 2 &&
               g->k[2] == 2 && g->s[1] == 2 && g->s[2] == 2 && g->d[1] == 1 && g->d[2] == 1 &&
               !g->pb[1] && !g->pb[2] && g->out[1] == g->in[1] / 2 && g->out[2] == g->in[2] / 2;
}

static sl_err_t pool(sl_opctx_t *c, int kind)
{
        const sl_tensor_t *x = c->in[0];
        const int64_t *ks = NULL;
        int nks = sl_attr_ints(c->node, "kernel_shape", &ks);
        bool ceil_mode = sl_attr_int(c->node, "ceil_mode", 0) != 0;
        bool incl = sl_attr_int(c->node, "count_include_pad", 0) != 0;
        double p = (double)sl_attr_int(c->node, "p", 2);
        int64_t odims[SL_MAX_DIMS], NC, I, O;
        sl_tensor_t *y, *ind = NULL;
        sl_geom_t g;
        sl_err_t err;

        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (!sl_dtype_size(x->dtype) || x->dtype == SL_DT_BOOL || x->dtype == SL_DT_FLOAT16 ||
            (kind != POOL_MAX && !sl_dtype_is_float(x->dtype)))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "type %s not supported",
                                  sl_dtype_name(x->dtype));
        if (nks < 0)
                return sl_op_fail(c, SL_ERR_MODEL, "kernel_shape is required");
        if ((err = sl_geom_init(c, x, ks, nks, ceil_mode, &g)))
                return err;
        odims[0] = x->dims[0];
        odims[1] = x->dims[1];
        for (int i = 0; i < g.r; i++)
                odims[2 + i] = g.out[3 - g.r + i];
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, odims)))
                return SL_ERR_NOMEM;
        if (kind == POOL_MAX && sl_op_has_output(c, 1) &&
            !(ind = sl_op_output(c, 1, SL_DT_INT64, x->ndim, odims)))
                return SL_ERR_NOMEM;
        NC = x->dims[0] * x->dims[1];
        I = g.in[0] * g.in[1] * g.in[2];
        O = g.out[0] * g.out[1] * g.out[2];
        if (kind == POOL_MAX && !ind && x->dtype == SL_DT_FLOAT) {
                if (is_2x2_s2(&g))
                        max_pool_2x2(x->data, y->data, NC * g.in[0], g.in[1], g.in[2], g.out[1],
                                     g.out[2]);
                else
                        max_pool_f32(x->data, y->data, NC, &g);
                return SL_OK;
        }
        for (int64_t nc = 0; nc < NC; nc++) {
                int64_t oi = nc * O;
                for (int64_t o0 = 0; o0 < g.out[0]; o0++)
                        for (int64_t o1 = 0; o1 < g.out[1]; o1++)
                                for (int64_t o2 = 0; o2 < g.out[2]; o2++, oi++) {
                                        int64_t b0 = o0 * g.s[0] - g.pb[0];
                                        int64_t b1 = o1 * g.s[1] - g.pb[1];
                                        int64_t b2 = o2 * g.s[2] - g.pb[2];
                                        double acc = kind == POOL_MAX ? -INFINITY : 0.0;
                                        int64_t cnt = 0, padcnt = 0, best = -1;
                                        for (int64_t k0 = 0; k0 < g.k[0]; k0++)
                                                for (int64_t k1 = 0; k1 < g.k[1]; k1++)
                                                        for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
                                                                int64_t i0 = b0 + k0 * g.d[0];
                                                                int64_t i1 = b1 + k1 * g.d[1];
                                                                int64_t i2 = b2 + k2 * g.d[2];
                                                                int64_t ii;
                                                                double v;
                                                                if (i0 < -g.pb[0] ||
                                                                    i0 >= g.in[0] + g.pe[0] ||
                                                                    i1 < -g.pb[1] ||
                                                                    i1 >= g.in[1] + g.pe[1] ||
                                                                    i2 < -g.pb[2] ||
                                                                    i2 >= g.in[2] + g.pe[2])
                                                                        continue;
                                                                padcnt++;
                                                                if (i0 < 0 || i0 >= g.in[0] ||
                                                                    i1 < 0 || i1 >= g.in[1] ||
                                                                    i2 < 0 || i2 >= g.in[2])
                                                                        continue;
                                                                ii = (i0 * g.in[1] + i1) * g.in[2] +
                                                                     i2;
                                                                v = sl_tensor_get_f64(x,
                                                                                      nc * I + ii);
                                                                cnt++;
                                                                if (kind == POOL_MAX) {
                                                                        if (v > acc || best < 0) {
                                                                                acc = v;
                                                                                best = ii;
                                                                        }
                                                                } else if (kind == POOL_AVG) {
                                                                        acc += v;
                                                                } else {
                                                                        acc += pow(fabs(v), p);
                                                                }
                                                        }
                                        if (kind == POOL_AVG)
                                                acc /= (double)(incl ? padcnt : cnt ? cnt : 1);
                                        else if (kind == POOL_LP)
                                                acc = pow(acc, 1.0 / p);
                                        sl_tensor_set_f64(y, oi, acc);
                                        if (ind)
                                                ((int64_t *)ind->data)[oi] =
                                                    best < 0 ? -1 : nc * I + best;
                                }
        }
        return SL_OK;
}

sl_err_t sl_op_max_pool(sl_opctx_t *c)
{
        return pool(c, POOL_MAX);
}

sl_err_t sl_op_average_pool(sl_opctx_t *c)
{
        return pool(c, POOL_AVG);
}

sl_err_t sl_op_lp_pool(sl_opctx_t *c)
{
        return pool(c, POOL_LP);
}

static sl_err_t global_pool(sl_opctx_t *c, int kind)
{
        const sl_tensor_t *x = c->in[0];
        int64_t odims[SL_MAX_DIMS], NC, I;
        double p = (double)sl_attr_int(c->node, "p", 2);
        sl_tensor_t *y;

        if (!x || x->ndim < 2 || !sl_dtype_is_float(x->dtype) || x->dtype == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input of rank >= 2 required");
        odims[0] = x->dims[0];
        odims[1] = x->dims[1];
        for (int i = 2; i < x->ndim; i++)
                odims[i] = 1;
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, odims)))
                return SL_ERR_NOMEM;
        NC = x->dims[0] * x->dims[1];
        I = NC ? sl_tensor_numel(x) / NC : 0;
        for (int64_t nc = 0; nc < NC; nc++) {
                double acc = kind == POOL_MAX ? -INFINITY : 0.0;
                if (x->dtype == SL_DT_FLOAT && kind == POOL_AVG) {
                        const float *xp = (const float *)x->data + nc * I;
                        for (int64_t i = 0; i < I; i++)
                                acc += xp[i];
                } else {
                        for (int64_t i = 0; i < I; i++) {
                                double v = sl_tensor_get_f64(x, nc * I + i);
                                if (kind == POOL_MAX)
                                        acc = v > acc ? v : acc;
                                else if (kind == POOL_AVG)
                                        acc += v;
                                else
                                        acc += pow(fabs(v), p);
                        }
                }
                if (kind == POOL_AVG)
                        acc /= (double)(I ? I : 1);
                else if (kind == POOL_LP)
                        acc = pow(acc, 1.0 / p);
                sl_tensor_set_f64(y, nc, acc);
        }
        return SL_OK;
}

sl_err_t sl_op_global_average_pool(sl_opctx_t *c)
{
        return global_pool(c, POOL_AVG);
}

sl_err_t sl_op_global_max_pool(sl_opctx_t *c)
{
        return global_pool(c, POOL_MAX);
}

sl_err_t sl_op_global_lp_pool(sl_opctx_t *c)
{
        return global_pool(c, POOL_LP);
}
