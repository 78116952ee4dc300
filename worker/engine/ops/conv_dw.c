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

/*
 * Stride-1 plane on a zero-padded copy \p xpad of the input, Wp columns wide
 * (the output row pitch as well): every tap is one multiply-add over the
 * whole output plane, y'[i] += w * xpad[i + kh * dh * Wp + kw * dw], long
 * enough to vectorise even for 8x8 planes; columns OW..Wp of y' are junk
 * and dropped by the copy-out.
 */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
dw_plane_s1(const float *xpad, float *acc, float *yp, const float *wk, float b, const sl_geom_t *g,
            int64_t Wp, sl_act_t act, float lo_v, float hi_v)
{
        int64_t OH = g->out[1], OW = g->out[2], KH = g->k[1], KW = g->k[2];
        int64_t L = (OH - 1) * Wp + OW;
        for (int64_t i = 0; i < L; i++)
                acc[i] = b;
        for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                        const float *xs = xpad + kh * g->d[1] * Wp + kw * g->d[2];
                        float wv = wk[kh * KW + kw];
                        for (int64_t i = 0; i < L; i++)
                                acc[i] += wv * xs[i];
                }
        for (int64_t oh = 0; oh < OH; oh++) {
                const float *ar = acc + oh * Wp;
                float *row = yp + oh * OW;
                if (act == SL_ACT_RELU)
                        for (int64_t ow = 0; ow < OW; ow++)
                                row[ow] = ar[ow] > 0.0f ? ar[ow] : 0.0f;
                else if (act == SL_ACT_CLIP)
                        for (int64_t ow = 0; ow < OW; ow++)
                                row[ow] = ar[ow] < lo_v ? lo_v : ar[ow] > hi_v ? hi_v : ar[ow];
                else
                        memcpy(row, ar, sizeof(float) * (size_t)OW);
        }
}

/* Zero-padded copy of one H x W plane into Hp x Wp at (top, left). */
static void pad_plane(const float *x, float *p, int64_t H, int64_t W, int64_t Hp, int64_t Wp,
                      int64_t top, int64_t left)
{
        memset(p, 0, sizeof(float) * (size_t)(Hp * Wp));
        for (int64_t h = 0; h < H; h++)
                memcpy(p + (h + top) * Wp + left, x + h * W, sizeof(float) * (size_t)W);
}

sl_err_t sl_conv_depthwise(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                           const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y)
{
        const sl_node_t *nd = c->node;
        int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0];
        int64_t IN = g->in[1] * g->in[2], O = g->out[1] * g->out[2], KK = g->k[1] * g->k[2];
        int64_t Hp, Wp;
        float *pad = NULL, *acc = NULL;
        if (x->ndim != 4 || g->r != 2 || group != C || M != C || w->dims[1] != 1 || nd->pool[0] ||
            (nd->act != SL_ACT_NONE && nd->act != SL_ACT_RELU && nd->act != SL_ACT_CLIP))
                return SL_ERR_UNSUPPORTED;
        /* The padded plane covers every tap of every output (stride 1). */
        Hp = g->out[1] + (g->k[1] - 1) * g->d[1];
        Wp = g->out[2] + (g->k[2] - 1) * g->d[2];
        if (g->s[1] == 1 && g->s[2] == 1 && Hp >= g->pb[1] + g->in[1] &&
            Wp >= g->pb[2] + g->in[2]) {
                float *scr = sl_op_scratch(c, sizeof(float) * (size_t)(2 * Hp * Wp));
                if (!scr)
                        return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
                pad = scr;
                acc = scr + Hp * Wp;
        }
        for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++) {
                        const float *xp = (const float *)x->data + (n * C + ch) * IN;
                        float *yp = (float *)y->data + (n * C + ch) * O;
                        const float *wk = (const float *)w->data + ch * KK;
                        float bv = bias ? bias[ch] : 0.0f;
                        if (pad) {
                                pad_plane(xp, pad, g->in[1], g->in[2], Hp, Wp, g->pb[1], g->pb[2]);
                                dw_plane_s1(pad, acc, yp, wk, bv, g, Wp, nd->act, nd->act_min,
                                            nd->act_max);
                        } else {
                                dw_plane(xp, yp, wk, bv, g, nd->act, nd->act_min, nd->act_max);
                        }
                }
        return SL_OK;
}
