/*
 * 2-D MaxPool and AveragePool on float NCHW tensors, put in place of the
 * generic kernels of pool.c by fuse.c (which reach every rank and type
 * through per-element index arithmetic). The window geometry is the one of
 * sl_geom_init() (conv.c), so output shapes, ceil_mode and auto_pad agree
 * with pool.c; other types and ranks go to pool.c's kernels.
 *
 * AveragePool also reads node->prepad: a constant-zero Pad folded into it at
 * load (torch exports AvgPool2d(padding, ceil_mode) as Pad + AveragePool).
 * The pool then works on the virtually padded input, whose pad elements are
 * zeros that count as input, without materialising it.
 * @sa ONNX operator spec, sections "MaxPool", "AveragePool", "Pad".
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

/* Window of output position o along one axis, in input coordinates:
 * [lo, hi) clipped to the real input [0, n), taps every d (counts below). */
typedef struct {
        int64_t first;  /**< first real input index read (lo rounded up to the tap grid) */
        int64_t taps;   /**< real input elements read */
        int64_t valid;  /**< taps inside the (virtually) padded input: count_include_pad = 0 */
        int64_t padded; /**< taps inside input + pool pads: count_include_pad = 1 */
} span_t;

/* Span along one axis: virtual input of \p vin elements (pre-pads \p pre and
 * \p post around the \p n real ones), pool pads \p pb/\p pe, kernel \p k,
 * stride \p s, dilation \p d. */
static void span(int64_t o, int64_t n, int64_t pre, int64_t vin, int64_t pb, int64_t pe, int64_t k,
                 int64_t s, int64_t d, span_t *sp)
{
        int64_t b = o * s - pb; /* first tap, virtual coordinates */
        sp->first = -1;
        sp->taps = sp->valid = sp->padded = 0;
        for (int64_t t = 0; t < k; t++) {
                int64_t v = b + t * d, r = v - pre;
                if (v < -pb || v >= vin + pe)
                        continue;
                sp->padded++;
                if (v < 0 || v >= vin)
                        continue;
                sp->valid++;
                if (r < 0 || r >= n)
                        continue;
                if (sp->first < 0)
                        sp->first = r;
                sp->taps++;
        }
}

/* MaxPool 2x2 stride 2 (floor or ceil mode, no pads, dilation 1): pairwise
 * maxima that vectorise, partial windows at the right and bottom edges. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
max_2x2(const float *x, float *y, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW)
{
        int64_t fw = W / 2;
        for (int64_t nc = 0; nc < NC; nc++) {
                const float *xp = x + nc * H * W;
                float *yp = y + nc * OH * OW;
                for (int64_t oh = 0; oh < OH; oh++) {
                        const float *r0 = xp + 2 * oh * W;
                        const float *r1 = 2 * oh + 1 < H ? r0 + W : r0;
                        float *yr = yp + oh * OW;
                        for (int64_t ow = 0; ow < fw && ow < OW; ow++) {
                                float a = r0[2 * ow], b = r0[2 * ow + 1];
                                float cc = r1[2 * ow], dd = r1[2 * ow + 1];
                                float m = b > a ? b : a;
                                m = cc > m ? cc : m;
                                yr[ow] = dd > m ? dd : m;
                        }
                        if (OW > fw && 2 * fw < W) {
                                float a = r0[2 * fw], cc = r1[2 * fw];
                                yr[fw] = cc > a ? cc : a;
                        }
                }
        }
}

/*
 * AveragePool of one plane, separably: \p p is the plane zero-padded to cover
 * every tap (Hp x Wp, tap grid origin at 0), \p hs the horizontal sums
 * (Hp x OW), \p inv the per-output 1 / count.
 */
static void avg_plane(const float *p, float *hs, const float *inv, float *y, const sl_geom_t *g,
                      int64_t Hp, int64_t Wp)
{
        int64_t OH = g->out[1], OW = g->out[2], KH = g->k[1], KW = g->k[2];
        int64_t sh = g->s[1], sw = g->s[2], dh = g->d[1], dw = g->d[2];
        for (int64_t r = 0; r < Hp; r++) {
                const float *pr = p + r * Wp;
                float *hr = hs + r * OW;
                if (KW == 3 && dw == 1) /* the common 3-wide window, unrolled */
                        for (int64_t ow = 0; ow < OW; ow++)
                                hr[ow] = pr[ow * sw] + pr[ow * sw + 1] + pr[ow * sw + 2];
                else if (KW == 2 && dw == 1)
                        for (int64_t ow = 0; ow < OW; ow++)
                                hr[ow] = pr[ow * sw] + pr[ow * sw + 1];
                else
                        for (int64_t ow = 0; ow < OW; ow++) {
                                float a = 0.0f;
                                for (int64_t kw = 0; kw < KW; kw++)
                                        a += pr[ow * sw + kw * dw];
                                hr[ow] = a;
                        }
        }
        for (int64_t oh = 0; oh < OH; oh++) {
                float *yr = y + oh * OW;
                const float *ir = inv + oh * OW;
                for (int64_t ow = 0; ow < OW; ow++)
                        yr[ow] = 0.0f;
                for (int64_t kh = 0; kh < KH; kh++) {
                        const float *hr = hs + (oh * sh + kh * dh) * OW;
                        for (int64_t ow = 0; ow < OW; ow++)
                                yr[ow] += hr[ow];
                }
                for (int64_t ow = 0; ow < OW; ow++)
                        yr[ow] *= ir[ow];
        }
}

/* AveragePool (float NCHW) through avg_plane(). */
static sl_err_t avg_pool(sl_opctx_t *c, const sl_tensor_t *x, const sl_geom_t *g, const int64_t *pp,
                         bool incl, sl_tensor_t *y)
{
        int64_t H = x->dims[2], W = x->dims[3], OH = g->out[1], OW = g->out[2];
        int64_t VH = g->in[1], VW = g->in[2], NC = x->dims[0] * x->dims[1];
        int64_t Hp = (OH - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
        int64_t Wp = (OW - 1) * g->s[2] + (g->k[2] - 1) * g->d[2] + 1;
        int64_t top = g->pb[1] + pp[0], left = g->pb[2] + pp[1], h0, h1, w0, w1;
        float *p, *hs, *inv;
        span_t *rs, *cs;
        /* The spans follow the floats, rounded up to their own alignment. */
        size_t nf = (size_t)(Hp * Wp + Hp * OW + OH * OW);
        size_t span_off = (sizeof(float) * nf + _Alignof(span_t) - 1) & ~(_Alignof(span_t) - 1);
        size_t need = span_off + sizeof(span_t) * (size_t)(OH + OW);

        if (!(p = sl_op_scratch(c, need)))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        hs = p + Hp * Wp;
        inv = hs + Hp * OW;
        rs = (span_t *)((char *)p + span_off);
        cs = rs + OH;
        for (int64_t oh = 0; oh < OH; oh++)
                span(oh, H, pp[0], VH, g->pb[1], g->pe[1], g->k[1], g->s[1], g->d[1], &rs[oh]);
        for (int64_t ow = 0; ow < OW; ow++)
                span(ow, W, pp[1], VW, g->pb[2], g->pe[2], g->k[2], g->s[2], g->d[2], &cs[ow]);
        for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                        int64_t n =
                            incl ? rs[oh].padded * cs[ow].padded : rs[oh].valid * cs[ow].valid;
                        inv[oh * OW + ow] = 1.0f / (float)(n ? n : 1);
                }
        /* Real rows/columns [h0, h1) x [w0, w1) that land inside the plane. */
        h0 = top < 0 ? -top : 0;
        h1 = Hp - top < H ? Hp - top : H;
        w0 = left < 0 ? -left : 0;
        w1 = Wp - left < W ? Wp - left : W;
        memset(p, 0, sizeof(float) * (size_t)(Hp * Wp));
        for (int64_t nc = 0; nc < NC; nc++) {
                const float *xp = (const float *)x->data + nc * H * W;
                for (int64_t h = h0; h < h1; h++) {
                        float *pr = p + (h + top) * Wp + left;
                        const float *xr = xp + h * W;
                        for (int64_t w = w0; w < w1; w++)
                                pr[w] = xr[w];
                }
                avg_plane(p, hs, inv, (float *)y->data + nc * OH * OW, g, Hp, Wp);
        }
        return SL_OK;
}

static sl_err_t pool2d(sl_opctx_t *c, bool is_max)
{
        const sl_tensor_t *x = c->in[0];
        const sl_node_t *nd = c->node;
        const int64_t *ks = NULL, *pp = nd->prepad;
        bool ceil_mode = sl_attr_int(nd, "ceil_mode", 0) != 0;
        bool incl = !is_max && sl_attr_int(nd, "count_include_pad", 0) != 0;
        bool prepad = pp[0] || pp[1] || pp[2] || pp[3];
        int64_t odims[4], H, W, VH, VW, OH, OW, NC;
        sl_tensor_t xv, *y;
        span_t *cols;
        sl_geom_t g;
        sl_err_t err;

        if (!x || x->dtype != SL_DT_FLOAT || x->ndim != 4 ||
            sl_attr_ints(nd, "kernel_shape", &ks) != 2) {
                if (prepad)
                        return sl_op_fail(c, SL_ERR_UNSUPPORTED,
                                          "Pad + AveragePool: float NCHW input required");
                return is_max ? sl_op_max_pool(c) : sl_op_average_pool(c);
        }
        H = x->dims[2];
        W = x->dims[3];
        xv = *x;
        xv.dims[2] = VH = H + pp[0] + pp[2];
        xv.dims[3] = VW = W + pp[1] + pp[3];
        if ((err = sl_geom_init(c, &xv, ks, 2, ceil_mode, &g)))
                return err;
        odims[0] = x->dims[0];
        odims[1] = x->dims[1];
        odims[2] = OH = g.out[1];
        odims[3] = OW = g.out[2];
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, 4, odims)))
                return SL_ERR_NOMEM;
        NC = x->dims[0] * x->dims[1];
        if (!sl_tensor_numel(y))
                return SL_OK;
        if (is_max && !prepad && g.k[1] == 2 && g.k[2] == 2 && g.s[1] == 2 && g.s[2] == 2 &&
            g.d[1] == 1 && g.d[2] == 1 && !g.pb[1] && !g.pb[2] && !g.pe[1] && !g.pe[2] &&
            2 * (OH - 1) < H && 2 * (OW - 1) < W) {
                max_2x2(x->data, y->data, NC, H, W, OH, OW);
                return SL_OK;
        }
        if (!is_max)
                return avg_pool(c, x, &g, pp, incl, y);
        if (!(cols = sl_op_scratch(c, sizeof(span_t) * (size_t)OW)))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        for (int64_t ow = 0; ow < OW; ow++)
                span(ow, W, pp[1], VW, g.pb[2], g.pe[2], g.k[2], g.s[2], g.d[2], &cols[ow]);
        for (int64_t nc = 0; nc < NC; nc++) {
                const float *xp = (const float *)x->data + nc * H * W;
                float *yp = (float *)y->data + nc * OH * OW;
                for (int64_t oh = 0; oh < OH; oh++) {
                        span_t r;
                        span(oh, H, pp[0], VH, g.pb[1], g.pe[1], g.k[1], g.s[1], g.d[1], &r);
                        for (int64_t ow = 0; ow < OW; ow++) {
                                const span_t *cs = &cols[ow];
                                float acc = is_max ? -INFINITY : 0.0f;
                                bool any = false;
                                for (int64_t i = 0; i < r.taps; i++) {
                                        const float *row =
                                            xp + (r.first + i * g.d[1]) * W + cs->first;
                                        for (int64_t j = 0; j < cs->taps; j++) {
                                                float v = row[j * g.d[2]];
                                                if (!is_max)
                                                        acc += v;
                                                else if (v > acc || !any)
                                                        acc = v;
                                                any = true;
                                        }
                                }
                                if (!is_max) {
                                        int64_t n =
                                            incl ? r.padded * cs->padded : r.valid * cs->valid;
                                        acc /= (float)(n ? n : 1);
                                }
                                yp[oh * OW + ow] = acc;
                        }
                }
        }
        return SL_OK;
}

static sl_err_t run_max(sl_opctx_t *c)
{
        return pool2d(c, true);
}

static sl_err_t run_avg(sl_opctx_t *c)
{
        return pool2d(c, false);
}

const sl_op_t sl_op_pool2d_max = {"MaxPool", sl_check_max_pool, run_max};
const sl_op_t sl_op_pool2d_avg = {"AveragePool", sl_geom_check, run_avg};
