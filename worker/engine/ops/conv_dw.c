/*
 * Depthwise 2-D Conv (group = input channels = output channels, MobileNet's
 * 3x3 blocks): each channel is a small 2-D correlation with its own kernel.
 * im2col + sgemm would run one sgemm of a single output row per channel;
 * here each tap is a multiply-add of an input row segment into an output
 * row, which the compiler vectorises along the row (stride 1).
 * @sa ONNX operator spec, section "Conv" (group).
 */
#include <string.h>

#include "../engine_int.h"
#include "conv_dw.h"

static int64_t floor_div(int64_t a, int64_t b)
{
        return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Outputs ow in [*lo, *hi) read inside [0, n) at ow * s + off. */
static void ow_range(int64_t n, int64_t OW, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
        *lo = off >= 0 ? 0 : floor_div(-off + s - 1, s);
        *hi = n - 1 - off < 0 ? 0 : floor_div(n - 1 - off, s) + 1;
        if (*hi > OW)
                *hi = OW;
        if (*lo > *hi)
                *lo = *hi;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
dw_plane(const float *xp, float *yp, const float *wk, float b, const sl_geom_t *g, sl_act_t act,
         float lo_v, float hi_v)
{
        int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
        int64_t KH = g->k[1], KW = g->k[2], sh = g->s[1], sw = g->s[2];
        for (int64_t oh = 0; oh < OH; oh++) {
                float *row = yp + oh * OW;
                for (int64_t ow = 0; ow < OW; ow++)
                        row[ow] = b;
                for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh * sh - g->pb[1] + kh * g->d[1];
                        const float *xr;
                        if (ih < 0 || ih >= H)
                                continue;
                        xr = xp + ih * W;
                        for (int64_t kw = 0; kw < KW; kw++) {
                                float wv = wk[kh * KW + kw];
                                int64_t off = kw * g->d[2] - g->pb[2], lo, hi;
                                ow_range(W, OW, sw, off, &lo, &hi);
                                if (sw == 1) {
                                        const float *xs = xr + off;
                                        for (int64_t ow = lo; ow < hi; ow++)
                                                row[ow] += wv * xs[ow];
                                } else {
                                        for (int64_t ow = lo; ow < hi; ow++)
                                                row[ow] += wv * xr[ow * sw + off];
                                }
                        }
                }
                if (act == SL_ACT_RELU)
                        for (int64_t ow = 0; ow < OW; ow++)
                                row[ow] = row[ow] > 0.0f ? row[ow] : 0.0f;
                else if (act == SL_ACT_CLIP)
                        for (int64_t ow = 0; ow < OW; ow++)
                                row[ow] = row[ow] < lo_v ? lo_v : row[ow] > hi_v ? hi_v : row[ow];
        }
}

sl_err_t sl_conv_depthwise(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                           const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y)
{
        const sl_node_t *nd = c->node;
        int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0];
        int64_t IN = g->in[1] * g->in[2], O = g->out[1] * g->out[2], KK = g->k[1] * g->k[2];
        if (x->ndim != 4 || g->r != 2 || group != C || M != C || w->dims[1] != 1 || nd->pool[0] ||
            (nd->act != SL_ACT_NONE && nd->act != SL_ACT_RELU && nd->act != SL_ACT_CLIP))
                return SL_ERR_UNSUPPORTED;
        for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++)
                        dw_plane((const float *)x->data + (n * C + ch) * IN,
                                 (float *)y->data + (n * C + ch) * O,
                                 (const float *)w->data + ch * KK, bias ? bias[ch] : 0.0f, g,
                                 nd->act, nd->act_min, nd->act_max);
        return SL_OK;
}
