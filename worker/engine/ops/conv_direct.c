/*
 * Direct Conv for AVX-512 (see conv_direct.h).
 *
 * For one image and one group, Y[m][o] = sum_k Wp[k][m] * X[kofs[k] + pofs[o]]
 * where k runs over (input channel, kernel position), kofs[k] is that tap's
 * offset in the (zero-padded) image and pofs[o] the offset of output position
 * o's window. A micro-tile keeps NP positions x NV*16 channels in registers:
 * per k it loads NV weight vectors and broadcasts NP input values, NP*NV
 * FMAs. This is im2col + sgemm without the im2col matrix and without
 * OpenBLAS's repacking of it, which on the CNNs we serve cost as much as the
 * multiply itself. The tile is written channels-last to a small buffer; the
 * epilogue moves it to NCHW with bias and the fused activation.
 */
#include <stdlib.h>
#include <string.h>

#include "../engine_int.h"
#include "conv_direct.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512        __attribute__((target("avx512f")))
#define INLINE_AVX512 __attribute__((target("avx512f"), always_inline)) static inline

/* Where a tile's results go: y[m][o] of one image and group (NCHW), with the
 * bias (padded to Mpad with zeros) and the fused activation applied in
 * registers on the way. */
typedef struct {
        float *y;
        const float *bias;
        int64_t O, Mg;
        bool relu;
} dst_t;

/* NP positions from o x NV vectors of 16 output channels from m0; the store
 * scatters each vector down a column of y (stride O), masked to the real
 * channels and positions. */
#define TILE(NP, NV)                                                                               \
        INLINE_AVX512 void tile_##NP##x##NV(const float *xp, const float *wp, int64_t Mpad,        \
                                            const int64_t *kofs, int64_t K, const int64_t *po,     \
                                            const dst_t *d, int64_t o, int64_t m0)                 \
        {                                                                                          \
                __m512 acc[NP][NV];                                                                \
                __m512i idx = _mm512_mullo_epi32(                                                  \
                    _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),        \
                    _mm512_set1_epi32((int)d->O));                                                 \
                for (int p = 0; p < NP; p++)                                                       \
                        for (int v = 0; v < NV; v++)                                               \
                                acc[p][v] = _mm512_setzero_ps();                                   \
                for (int64_t k = 0; k < K; k++) {                                                  \
                        const float *xk = xp + kofs[k];                                            \
                        const float *wk = wp + k * Mpad;                                           \
                        __m512 wv[NV];                                                             \
                        for (int v = 0; v < NV; v++)                                               \
                                wv[v] = _mm512_load_ps(wk + 16 * v);                               \
                        for (int p = 0; p < NP; p++) {                                             \
                                __m512 xv = _mm512_set1_ps(xk[po[p]]);                             \
                                for (int v = 0; v < NV; v++)                                       \
                                        acc[p][v] = _mm512_fmadd_ps(xv, wv[v], acc[p][v]);         \
                        }                                                                          \
                }                                                                                  \
                for (int v = 0; v < NV; v++) {                                                     \
                        int64_t left = d->Mg - m0 - 16 * v;                                        \
                        __mmask16 mk =                                                             \
                            left >= 16 ? 0xffff : (__mmask16)((1u << (left > 0 ? left : 0)) - 1);  \
                        __m512 bv = _mm512_load_ps(d->bias + m0 + 16 * v);                         \
                        float *yv = d->y + (m0 + 16 * v) * d->O + o;                               \
                        for (int p = 0; p < NP && o + p < d->O; p++) {                             \
                                __m512 r = _mm512_add_ps(acc[p][v], bv);                           \
                                if (d->relu)                                                       \
                                        r = _mm512_max_ps(r, _mm512_setzero_ps());                 \
                                _mm512_mask_i32scatter_ps(yv + p, mk, idx, r, 4);                  \
                        }                                                                          \
                }                                                                                  \
        }

TILE(6, 4)
TILE(12, 2)
TILE(12, 1)

/* Tiles of positions (po padded to a multiple of 12) x all channels of a group. */
AVX512 static void conv_image(const float *xp, const float *wp, int64_t Mpad, const int64_t *kofs,
                              int64_t K, const int64_t *pofs, const dst_t *d)
{
        int64_t m0 = 0, nvec = Mpad / 16, O = d->O;
        while (nvec - m0 / 16 >= 4) {
                for (int64_t o = 0; o < O; o += 6)
                        tile_6x4(xp, wp + m0, Mpad, kofs, K, pofs + o, d, o, m0);
                m0 += 64;
        }
        if (nvec - m0 / 16 >= 2) {
                for (int64_t o = 0; o < O; o += 12)
                        tile_12x2(xp, wp + m0, Mpad, kofs, K, pofs + o, d, o, m0);
                m0 += 32;
        }
        if (nvec - m0 / 16 >= 1)
                for (int64_t o = 0; o < O; o += 12)
                        tile_12x1(xp, wp + m0, Mpad, kofs, K, pofs + o, d, o, m0);
}

static bool cpu_ok(void)
{
        static int ok = -1;
        if (ok < 0) {
                const char *e = getenv("SLUICE_CONV_DIRECT");
                __builtin_cpu_init();
                ok = __builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "0"));
        }
        return ok;
}

sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y)
{
        int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = C / group, Mg = M / group;
        int64_t P[3], Pimg, K, O, Opad, Mpad, IN;
        bool padded = false, fresh;
        size_t wbytes, need;
        float *wp, *xpad, *bp;
        int64_t *kofs, *pofs;
        char *scr;

        if (!cpu_ok() || Mg < 8)
                return SL_ERR_UNSUPPORTED;
        for (int i = 0; i < 3; i++) {
                P[i] = g->in[i] + g->pb[i] + g->pe[i];
                padded |= g->pb[i] || g->pe[i];
        }
        Pimg = P[0] * P[1] * P[2];
        IN = g->in[0] * g->in[1] * g->in[2];
        K = Cg * g->k[0] * g->k[1] * g->k[2];
        O = g->out[0] * g->out[1] * g->out[2];
        Opad = (O + 11) / 12 * 12;
        Mpad = (Mg + 15) / 16 * 16;
        /* Few taps (a first layer on 1-3 channels): too little work per tile to
         * pay for the scatter; im2col + sgemm is faster there. */
        if (K < 16 || !O || Mpad * O > INT32_MAX)
                return SL_ERR_UNSUPPORTED;

        /* Weights packed [group][k][Mpad], then the bias [group][Mpad]; zero in
         * the padding channels. */
        wbytes = sizeof(float) * (size_t)(group * (K + 1) * Mpad);
        if (!(wp = sl_op_node_cache(c, wbytes, &fresh)))
                return sl_op_fail(c, SL_ERR_NOMEM, "packed weights: out of memory");
        if (fresh || !sl_op_in_const(c, 1)) {
                const float *wd = w->data;
                memset(wp, 0, wbytes);
                for (int64_t gi = 0; gi < group; gi++)
                        for (int64_t m = 0; m < Mg; m++)
                                for (int64_t k = 0; k < K; k++)
                                        wp[(gi * K + k) * Mpad + m] = wd[(gi * Mg + m) * K + k];
        }
        bp = wp + group * K * Mpad;
        if (fresh || !sl_op_in_const(c, 2))
                for (int64_t gi = 0; gi < group; gi++)
                        for (int64_t m = 0; m < Mg; m++)
                                bp[gi * Mpad + m] = bias ? bias[gi * Mg + m] : 0.0f;

        need =
            sizeof(float) * (size_t)(padded ? C * Pimg : 0) + sizeof(int64_t) * (size_t)(K + Opad);
        if (!(scr = sl_op_scratch(c, need)))
                return sl_op_fail(c, SL_ERR_NOMEM, "conv buffers: out of memory");
        kofs = (int64_t *)scr;
        pofs = kofs + K;
        xpad = (float *)(pofs + Opad);
        {
                int64_t k = 0, o = 0;
                for (int64_t ch = 0; ch < Cg; ch++)
                        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
                                for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                                        for (int64_t k2 = 0; k2 < g->k[2]; k2++)
                                                kofs[k++] =
                                                    ch * Pimg +
                                                    (k0 * g->d[0] * P[1] + k1 * g->d[1]) * P[2] +
                                                    k2 * g->d[2];
                for (int64_t o0 = 0; o0 < g->out[0]; o0++)
                        for (int64_t o1 = 0; o1 < g->out[1]; o1++)
                                for (int64_t o2 = 0; o2 < g->out[2]; o2++)
                                        pofs[o++] = (o0 * g->s[0] * P[1] + o1 * g->s[1]) * P[2] +
                                                    o2 * g->s[2];
                for (; o < Opad; o++)
                        pofs[o] = pofs[O - 1]; /* tail tiles recompute the last position */
        }
        if (padded)
                memset(xpad, 0, sizeof(float) * (size_t)(C * Pimg));
        for (int64_t n = 0; n < N; n++) {
                const float *xn = (const float *)x->data + n * C * IN, *src = xn;
                if (padded) {
                        for (int64_t ch = 0; ch < C; ch++)
                                for (int64_t i0 = 0; i0 < g->in[0]; i0++)
                                        for (int64_t i1 = 0; i1 < g->in[1]; i1++)
                                                memcpy(
                                                    xpad + ch * Pimg +
                                                        ((i0 + g->pb[0]) * P[1] + i1 + g->pb[1]) *
                                                            P[2] +
                                                        g->pb[2],
                                                    xn + ch * IN + (i0 * g->in[1] + i1) * g->in[2],
                                                    sizeof(float) * (size_t)g->in[2]);
                        src = xpad;
                }
                for (int64_t gi = 0; gi < group; gi++) {
                        dst_t d = {(float *)y->data + (n * M + gi * Mg) * O, bp + gi * Mpad, O, Mg,
                                   c->node->act == SL_ACT_RELU};
                        conv_image(src + gi * Cg * Pimg, wp + gi * K * Mpad, Mpad, kofs, K, pofs,
                                   &d);
                }
        }
        return SL_OK;
}

#else

sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y)
{
        (void)c, (void)x, (void)w, (void)bias, (void)g, (void)group, (void)y;
        return SL_ERR_UNSUPPORTED;
}

#endif
