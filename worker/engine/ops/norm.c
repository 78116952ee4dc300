/*
 * Normalizations: BatchNormalization (inference), InstanceNormalization,
 * LayerNormalization, LpNormalization, MeanVarianceNormalization.
 * @sa ONNX operator spec, sections of the same names.
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

static bool all_float(const sl_opctx_t *c, int n)
{
        for (int i = 0; i < n; i++)
                if (!c->in[i] || c->in[i]->dtype != SL_DT_FLOAT)
                        return false;
        return true;
}

/*
 * training_mode=1 (opset 14+): normalise with the batch's own mean and
 * (population) variance over every axis but 1; outputs 1 and 2, when present,
 * are the updated running statistics input * momentum + batch * (1 - momentum).
 * @sa ONNX docs/Operators.md, "BatchNormalization" (14, 15).
 */
static sl_err_t batch_norm_training(sl_opctx_t *c, float eps)
{
        const sl_tensor_t *x = c->in[0];
        float mom = sl_attr_float(c->node, "momentum", 0.9f);
        int64_t N = x->dims[0], C = x->dims[1], I = 1;
        const float *xd = x->data, *sc = c->in[1]->data, *bi = c->in[2]->data;
        const float *rm = c->in[3]->data, *rv = c->in[4]->data;
        double *stat = sl_op_scratch(c, sizeof(double) * 2 * (size_t)(C ? C : 1));
        sl_tensor_t *y, *om = NULL, *ov = NULL;

        for (int d = 2; d < x->ndim; d++)
                I *= x->dims[d];
        if (!stat || !(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)) ||
            (sl_op_has_output(c, 1) && !(om = sl_op_output_like(c, 1, SL_DT_FLOAT, c->in[3]))) ||
            (sl_op_has_output(c, 2) && !(ov = sl_op_output_like(c, 2, SL_DT_FLOAT, c->in[4]))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        for (int64_t ch = 0; ch < C; ch++) {
                double sum = 0, sq = 0, cnt = (double)(N * I), mean, var;
                for (int64_t n = 0; n < N; n++) {
                        const float *xp = xd + (n * C + ch) * I;
                        for (int64_t i = 0; i < I; i++)
                                sum += xp[i];
                }
                mean = cnt > 0 ? sum / cnt : 0;
                for (int64_t n = 0; n < N; n++) {
                        const float *xp = xd + (n * C + ch) * I;
                        for (int64_t i = 0; i < I; i++)
                                sq += (xp[i] - mean) * (xp[i] - mean);
                }
                var = cnt > 0 ? sq / cnt : 0;
                stat[2 * ch] = mean;
                stat[2 * ch + 1] = var;
        }
        for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++) {
                        double a = sc[ch] / sqrt(stat[2 * ch + 1] + eps);
                        const float *xp = xd + (n * C + ch) * I;
                        float *yp = (float *)y->data + (n * C + ch) * I;
                        for (int64_t i = 0; i < I; i++)
                                yp[i] = (float)((xp[i] - stat[2 * ch]) * a + bi[ch]);
                }
        for (int64_t ch = 0; ch < C; ch++) {
                if (om)
                        ((float *)om->data)[ch] =
                            (float)(rm[ch] * mom + stat[2 * ch] * (1.0 - mom));
                if (ov)
                        ((float *)ov->data)[ch] =
                            (float)(rv[ch] * mom + stat[2 * ch + 1] * (1.0 - mom));
        }
        return SL_OK;
}

sl_err_t sl_op_batch_norm(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        float eps = sl_attr_float(c->node, "epsilon", 1e-5f);
        int64_t N, C, I;
        const float *sc, *bi, *mu, *var, *xd;
        float *yd;
        sl_tensor_t *y;

        if (c->n_in < 5 || !all_float(c, 5))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "five float inputs required");
        if (x->ndim < 2)
                return sl_op_fail(c, SL_ERR_SHAPE, "input rank %d < 2", x->ndim);
        N = x->dims[0];
        C = x->dims[1];
        for (int i = 1; i < 5; i++)
                if (sl_tensor_numel(c->in[i]) != C)
                        return sl_op_fail(c, SL_ERR_SHAPE, "input #%d does not have %lld values", i,
                                          (long long)C);
        if (sl_attr_int(c->node, "training_mode", 0))
                return batch_norm_training(c, eps);
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        I = N * C != 0 ? sl_tensor_numel(x) / (N * C) : 0;
        sc = c->in[1]->data;
        bi = c->in[2]->data;
        mu = c->in[3]->data;
        var = c->in[4]->data;
        xd = x->data;
        yd = y->data;
        for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++) {
                        float a = sc[ch] / sqrtf(var[ch] + eps);
                        float b = bi[ch] - mu[ch] * a;
                        const float *xp = xd + (n * C + ch) * I;
                        float *yp = yd + (n * C + ch) * I;
                        for (int64_t i = 0; i < I; i++)
                                yp[i] = xp[i] * a + b;
                }
        /* Opset < 9 may declare running mean/var outputs: pass the inputs through. */
        for (int k = 1; k < c->n_out && k < 3; k++) {
                const sl_tensor_t *src = c->in[k + 2];
                sl_tensor_t *o;
                if (!sl_op_has_output(c, k))
                        continue;
                if (!(o = sl_op_output_like(c, k, SL_DT_FLOAT, src)))
                        return SL_ERR_NOMEM;
                memcpy(o->data, src->data, src->nbytes);
        }
        return SL_OK;
}

sl_err_t sl_op_instance_norm(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        float eps = sl_attr_float(c->node, "epsilon", 1e-5f);
        int64_t N, C, I;
        sl_tensor_t *y;

        if (c->n_in < 3 || !all_float(c, 3) || x->ndim < 2)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "three float inputs, rank >= 2");
        N = x->dims[0];
        C = x->dims[1];
        if (sl_tensor_numel(c->in[1]) != C || sl_tensor_numel(c->in[2]) != C)
                return sl_op_fail(c, SL_ERR_SHAPE, "scale/B do not match channels");
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        I = N * C != 0 ? sl_tensor_numel(x) / (N * C) : 0;
        for (int64_t nc = 0; nc < N * C; nc++) {
                const float *xp = (const float *)x->data + nc * I;
                float *yp = (float *)y->data + nc * I;
                float s = ((const float *)c->in[1]->data)[nc % C];
                float b = ((const float *)c->in[2]->data)[nc % C];
                double mean = 0, var = 0;
                for (int64_t i = 0; i < I; i++)
                        mean += xp[i];
                mean /= (double)(I ? I : 1);
                for (int64_t i = 0; i < I; i++)
                        var += (xp[i] - mean) * (xp[i] - mean);
                var /= (double)(I ? I : 1);
                for (int64_t i = 0; i < I; i++)
                        yp[i] = (float)((xp[i] - mean) / sqrt(var + eps) * s + b);
        }
        return SL_OK;
}

sl_err_t sl_op_layer_norm(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *sc = sl_op_in(c, 1), *bi = sl_op_in(c, 2);
        float eps = sl_attr_float(c->node, "epsilon", 1e-5f);
        int ax = x ? sl_axis(sl_attr_int(c->node, "axis", -1), x->ndim, false) : -1;
        int64_t outer = 1, len = 1, sdims[SL_MAX_DIMS], ss[SL_MAX_DIMS], bs[SL_MAX_DIMS];
        int64_t stat_dims[SL_MAX_DIMS];
        sl_tensor_t *y, *mo = NULL, *io = NULL;
        int nn;

        if (!x || !sc || x->dtype != SL_DT_FLOAT || sc->dtype != SL_DT_FLOAT ||
            (bi && bi->dtype != SL_DT_FLOAT))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float X and Scale required");
        if (ax < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        nn = x->ndim - ax;
        for (int i = 0; i < x->ndim; i++) {
                if (i < ax)
                        outer *= x->dims[i];
                else
                        len *= x->dims[i];
                stat_dims[i] = i < ax ? x->dims[i] : 1;
        }
        memcpy(sdims, x->dims + ax, sizeof(int64_t) * (size_t)nn);
        if (sc->ndim > nn || (bi && bi->ndim > nn))
                return sl_op_fail(c, SL_ERR_SHAPE, "Scale/B rank exceeds normalized rank");
        sl_broadcast_strides(sc, nn, sdims, ss);
        if (bi)
                sl_broadcast_strides(bi, nn, sdims, bs);
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        if (sl_op_has_output(c, 1) && !(mo = sl_op_output(c, 1, SL_DT_FLOAT, x->ndim, stat_dims)))
                return SL_ERR_NOMEM;
        if (sl_op_has_output(c, 2) && !(io = sl_op_output(c, 2, SL_DT_FLOAT, x->ndim, stat_dims)))
                return SL_ERR_NOMEM;
        for (int64_t o = 0; o < outer; o++) {
                const float *xp = (const float *)x->data + o * len;
                float *yp = (float *)y->data + o * len;
                double mean = 0, var = 0, inv;
                for (int64_t i = 0; i < len; i++)
                        mean += xp[i];
                mean /= (double)(len ? len : 1);
                for (int64_t i = 0; i < len; i++)
                        var += (xp[i] - mean) * (xp[i] - mean);
                var /= (double)(len ? len : 1);
                inv = 1.0 / sqrt(var + eps);
                for (int64_t i = 0; i < len; i++) {
                        int64_t rem = i, so = 0, bo = 0;
                        for (int d = nn - 1; d >= 0; d--) {
                                int64_t idx = rem % sdims[d];
                                rem /= sdims[d];
                                so += idx * ss[d];
                                if (bi)
                                        bo += idx * bs[d];
                        }
                        yp[i] = (float)((xp[i] - mean) * inv * ((const float *)sc->data)[so] +
                                        (bi ? ((const float *)bi->data)[bo] : 0.0f));
                }
                if (mo)
                        ((float *)mo->data)[o] = (float)mean;
                if (io)
                        ((float *)io->data)[o] = (float)inv;
        }
        return SL_OK;
}

sl_err_t sl_op_lp_norm(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int ax = x ? sl_axis(sl_attr_int(c->node, "axis", -1), x->ndim, false) : -1;
        int64_t p = sl_attr_int(c->node, "p", 2), outer = 1, len, inner = 1;
        sl_tensor_t *y;

        if (!x || x->dtype != SL_DT_FLOAT || ax < 0 || (p != 1 && p != 2))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input, valid axis, p 1 or 2");
        for (int i = 0; i < x->ndim; i++)
                if (i < ax)
                        outer *= x->dims[i];
                else if (i > ax)
                        inner *= x->dims[i];
        len = x->dims[ax];
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        const float *xp = (const float *)x->data + o * len * inner + in;
                        float *yp = (float *)y->data + o * len * inner + in;
                        double n = 0;
                        for (int64_t i = 0; i < len; i++)
                                n += p == 1 ? fabs(xp[i * inner]) : xp[i * inner] * xp[i * inner];
                        if (p == 2)
                                n = sqrt(n);
                        for (int64_t i = 0; i < len; i++)
                                yp[i * inner] = n ? (float)(xp[i * inner] / n) : 0.0f;
                }
        return SL_OK;
}

sl_err_t sl_op_mvn(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        static const int64_t def_axes[] = {0, 2, 3};
        const int64_t *axes = def_axes;
        int na = sl_attr_ints(c->node, "axes", &axes);
        bool red[SL_MAX_DIMS] = {false};
        int64_t n, groups = 1, cnt = 1, st[SL_MAX_DIMS];
        double *sum, *sq;
        sl_tensor_t *y;

        if (na < 0) {
                axes = def_axes;
                na = 3;
        }
        if (!x || x->dtype != SL_DT_FLOAT)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input required");
        for (int i = 0; i < na; i++) {
                int a = sl_axis(axes[i], x->ndim, false);
                if (a < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
                red[a] = true;
        }
        for (int i = 0; i < x->ndim; i++) {
                if (red[i])
                        cnt *= x->dims[i];
                else
                        groups *= x->dims[i];
        }
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        if (!(sum = sl_op_scratch(c, 2 * sizeof(double) * (size_t)(groups ? groups : 1))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        sq = sum + groups;
        memset(sum, 0, 2 * sizeof(double) * (size_t)groups);
        /* Group index of element i: its coordinates along the kept axes. */
        for (int i = x->ndim - 1, m = 1; i >= 0; i--) {
                st[i] = red[i] ? 0 : m;
                if (!red[i])
                        m *= (int)x->dims[i];
        }
        n = sl_tensor_numel(x);
        for (int pass = 0; pass < 2; pass++)
                for (int64_t i = 0; i < n; i++) {
                        int64_t rem = i, gi = 0;
                        double v = ((const float *)x->data)[i], mean, sd;
                        for (int d = x->ndim - 1; d >= 0; d--) {
                                gi += (rem % x->dims[d]) * st[d];
                                rem /= x->dims[d];
                        }
                        if (pass == 0) {
                                sum[gi] += v;
                                sq[gi] += v * v;
                                continue;
                        }
                        mean = sum[gi] / (double)cnt;
                        sd = sqrt(fmax(sq[gi] / (double)cnt - mean * mean, 0.0));
                        ((float *)y->data)[i] = (float)((v - mean) / (sd + 1e-9));
                }
        return SL_OK;
}
