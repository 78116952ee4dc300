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
 * multiply itself.
 *
 * A tile adds the bias, applies the fused activation and stores its vectors
 * whole into a channels-last buffer, buf[o][Mpad], one chunk of positions at
 * a time. The output pass then takes the max over each window of a fused
 * MaxPool (positions are enumerated window by window, so a window is KK
 * consecutive rows of buf) and moves the chunk to NCHW with 16x16 in-register
 * transposes. Scattering each vector straight to NCHW, as this kernel first
 * did, cost a fifth of its time.
 */
#include <stdlib.h>
#include <string.h>

#include "../engine_int.h"
#include "conv_direct.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512        __attribute__((target("avx512f")))
#define INLINE_AVX512 __attribute__((target("avx512f"), always_inline)) static inline

/* Channels-last chunk of at most this many bytes (then moved to NCHW): large
 * enough for a whole feature map of the small CNNs we serve, bounded for
 * large images. */
#define CHUNK_BYTES ((int64_t)128 << 10)

/* Passes over K: the first starts from zero, later ones from the partial
 * sums in the buffer; the last adds the bias and applies the activation. */
enum { PASS_FIRST = 1, PASS_LAST = 2 };

/* Taps per pass: the weights of one pass (KB * Mpad floats) stay in L1 while
 * every tile of the chunk reads them. */
#define PASS_WEIGHT_BYTES ((int64_t)16 << 10)

/* NP positions from po x NV vectors of 16 output channels over taps [0, K)
 * of this pass; results go to out[p * Mpad + 16 * v], aligned. */
#define TILE(NP, NV)                                                                               \
        INLINE_AVX512 void tile_##NP##x##NV(const float *xp, const float *wp, int64_t Mpad,        \
                                            const int64_t *kofs, int64_t K, const int64_t *po,     \
                                            const float *bias, int pass, bool relu, float *out)    \
        {                                                                                          \
                __m512 acc[NP][NV];                                                                \
                for (int p = 0; p < NP; p++)                                                       \
                        for (int v = 0; v < NV; v++)                                               \
                                acc[p][v] = pass & PASS_FIRST                                      \
                                                ? _mm512_setzero_ps()                              \
                                                : _mm512_load_ps(out + p * Mpad + 16 * v);         \
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
                        __m512 bv = _mm512_load_ps(bias + 16 * v);                                 \
                        for (int p = 0; p < NP; p++) {                                             \
                                __m512 r = acc[p][v];                                              \
                                if (pass & PASS_LAST)                                              \
                                        r = _mm512_add_ps(r, bv);                                  \
                                if ((pass & PASS_LAST) && relu)                                    \
                                        r = _mm512_max_ps(r, _mm512_setzero_ps());                 \
                                _mm512_store_ps(out + p * Mpad + 16 * v, r);                       \
                        }                                                                          \
                }                                                                                  \
        }

TILE(6, 4)
TILE(12, 2)
TILE(12, 1)

/* Positions [0, no) of a chunk (po = its slice of pofs, readable up to no
 * rounded up to 12) x all channels of a group, into buf[o][Mpad]: passes of
 * KB taps, each over every tile of the chunk. */
AVX512 static void conv_chunk(const float *xp, const float *wp, int64_t Mpad, const int64_t *kofs,
                              int64_t K, int64_t KB, const int64_t *po, int64_t no,
                              const float *bias, bool relu, float *buf)
{
        int64_t nvec = Mpad / 16;
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
                int64_t kn = K - k0 < KB ? K - k0 : KB, m0 = 0;
                int pass = (k0 == 0 ? PASS_FIRST : 0) | (k0 + kn == K ? PASS_LAST : 0);
                const float *wk = wp + k0 * Mpad;
                const int64_t *ko = kofs + k0;
                while (nvec - m0 / 16 >= 4) {
                        for (int64_t o = 0; o < no; o += 6)
                                tile_6x4(xp, wk + m0, Mpad, ko, kn, po + o, bias + m0, pass, relu,
                                         buf + o * Mpad + m0);
                        m0 += 64;
                }
                if (nvec - m0 / 16 >= 2) {
                        for (int64_t o = 0; o < no; o += 12)
                                tile_12x2(xp, wk + m0, Mpad, ko, kn, po + o, bias + m0, pass, relu,
                                          buf + o * Mpad + m0);
                        m0 += 32;
                }
                if (nvec - m0 / 16 >= 1)
                        for (int64_t o = 0; o < no; o += 12)
                                tile_12x1(xp, wk + m0, Mpad, ko, kn, po + o, bias + m0, pass, relu,
                                          buf + o * Mpad + m0);
        }
}

/* In place: row q of buf becomes the max of rows q*KK .. q*KK+KK-1 (row q is
 * written only after rows up to q*KK+KK-1 >= q were read). The comparison
 * keeps the running max unless a later value is greater, as MaxPool's
 * generic loop does. */
AVX512 static void pool_rows(float *buf, int64_t Mpad, int64_t nq, int64_t KK)
{
        for (int64_t q = 0; q < nq; q++)
                for (int64_t v = 0; v < Mpad; v += 16) {
                        const float *src = buf + q * KK * Mpad + v;
                        __m512 acc = _mm512_load_ps(src);
                        for (int64_t t = 1; t < KK; t++) /* max_ps(a, b) is a > b ? a : b */
                                acc = _mm512_max_ps(_mm512_load_ps(src + t * Mpad), acc);
                        _mm512_store_ps(buf + q * Mpad + v, acc);
                }
}

#define PD(v) _mm512_castps_pd(v)
#define PS(v) _mm512_castpd_ps(v)

/* r[i] (row i) becomes column i of the 16x16 block. */
INLINE_AVX512 void transpose16(__m512 r[16])
{
        __m512 t[16];
        for (int i = 0; i < 16; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) {
                r[i] = PS(_mm512_unpacklo_pd(PD(t[i]), PD(t[i + 2])));
                r[i + 1] = PS(_mm512_unpackhi_pd(PD(t[i]), PD(t[i + 2])));
                r[i + 2] = PS(_mm512_unpacklo_pd(PD(t[i + 1]), PD(t[i + 3])));
                r[i + 3] = PS(_mm512_unpackhi_pd(PD(t[i + 1]), PD(t[i + 3])));
        }
        for (int i = 0; i < 16; i += 8)
                for (int j = 0; j < 4; j++) {
                        t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
                        t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
                }
        for (int j = 0; j < 8; j++) {
                r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
                r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
        }
}

/* One 16x16 block: rows q < nr of buf (stride Mpad) to columns of y (stride
 * ldy), channels j < nc. */
INLINE_AVX512 void block_to_nchw(const float *buf, int64_t Mpad, int64_t nr, int64_t nc, float *y,
                                 int64_t ldy)
{
        __m512 r[16];
        if (nr == 16) {
                for (int i = 0; i < 16; i++)
                        r[i] = _mm512_load_ps(buf + i * Mpad);
        } else {
                for (int i = 0; i < 16; i++)
                        r[i] = i < nr ? _mm512_load_ps(buf + i * Mpad) : _mm512_setzero_ps();
        }
        transpose16(r);
        if (nr == 16 && nc == 16) {
                for (int j = 0; j < 16; j++)
                        _mm512_storeu_ps(y + j * ldy, r[j]);
        } else {
                __mmask16 mk = (__mmask16)((1u << nr) - 1);
                for (int j = 0; j < nc; j++)
                        _mm512_mask_storeu_ps(y + j * ldy, mk, r[j]);
        }
}

/* y[m * ldy + q] = buf[q * Mpad + m] for q < nq, m < Mg (NCHW from channels-last). */
AVX512 static void to_nchw(const float *buf, int64_t Mpad, int64_t nq, int64_t Mg, float *y,
                           int64_t ldy)
{
        for (int64_t m0 = 0; m0 < Mg; m0 += 16) {
                int64_t nc = Mg - m0 < 16 ? Mg - m0 : 16;
                for (int64_t q0 = 0; q0 < nq; q0 += 16)
                        block_to_nchw(buf + q0 * Mpad + m0, Mpad, nq - q0 < 16 ? nq - q0 : 16, nc,
                                      y + m0 * ldy + q0, ldy);
        }
}

/* Rows of a feature map are short (7..56 floats): masked vector moves beat a
 * memcpy call per row, which cost 4% of a small CNN's run. */
AVX512 static void pad_image(const float *x, int64_t C, const sl_geom_t *g, const int64_t P[3],
                             float *xpad)
{
        int64_t W = g->in[2], Pimg = P[0] * P[1] * P[2];
        __mmask16 tail = (__mmask16)((1u << (W % 16)) - 1);
        for (int64_t ch = 0; ch < C; ch++)
                for (int64_t i0 = 0; i0 < g->in[0]; i0++)
                        for (int64_t i1 = 0; i1 < g->in[1]; i1++) {
                                const float *src = x + ((ch * g->in[0] + i0) * g->in[1] + i1) * W;
                                float *dst = xpad + ch * Pimg +
                                             ((i0 + g->pb[0]) * P[1] + i1 + g->pb[1]) * P[2] +
                                             g->pb[2];
                                int64_t j = 0;
                                for (; j + 16 <= W; j += 16)
                                        _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
                                if (tail)
                                        _mm512_mask_storeu_ps(dst + j, tail,
                                                              _mm512_maskz_loadu_ps(tail, src + j));
                        }
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

static int64_t gcd(int64_t a, int64_t b)
{
        while (b) {
                int64_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

/* Weights packed [group][k][Mpad], then the bias [group][Mpad]; zero in the
 * padding channels. Packed once per session when W (and B) are initializers. */
static float *pack_weights(sl_opctx_t *c, const sl_tensor_t *w, const float *bias, int64_t group,
                           int64_t Mg, int64_t K, int64_t Mpad)
{
        size_t wbytes = sizeof(float) * (size_t)(group * (K + 1) * Mpad);
        bool fresh;
        float *wp, *bp;
        if (!(wp = sl_op_node_cache(c, wbytes, &fresh)))
                return NULL;
        if (fresh || !sl_op_in_const(c, 1)) {
                const float *wd = w->data;
                memset(wp, 0, sizeof(float) * (size_t)(group * K * Mpad));
                for (int64_t gi = 0; gi < group; gi++)
                        for (int64_t m = 0; m < Mg; m++)
                                for (int64_t k = 0; k < K; k++)
                                        wp[(gi * K + k) * Mpad + m] = wd[(gi * Mg + m) * K + k];
        }
        bp = wp + group * K * Mpad;
        if (fresh || !sl_op_in_const(c, 2))
                for (int64_t gi = 0; gi < group; gi++)
                        for (int64_t m = 0; m < Mpad; m++)
                                bp[gi * Mpad + m] = bias && m < Mg ? bias[gi * Mg + m] : 0.0f;
        return wp;
}

sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, const int64_t *pool,
                        sl_tensor_t *y)
{
        int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = C / group, Mg = M / group;
        int64_t P[3], Pimg, K, KB, IN, Mpad, ph = 1, pw = 1, KK, Qh, Qw, Q, OE, Opad, unit, QC;
        bool padded = false, relu = c->node->act == SL_ACT_RELU;
        size_t need;
        float *wp, *bp, *xpad, *buf;
        int64_t *kofs, *pofs;
        char *scr;

        if (!cpu_ok() || Mg < 8)
                return SL_ERR_UNSUPPORTED;
        if (pool) {
                if (g->out[0] != 1 || pool[0] < 1 || pool[1] < 1)
                        return SL_ERR_UNSUPPORTED;
                ph = pool[0];
                pw = pool[1];
        }
        for (int i = 0; i < 3; i++) {
                P[i] = g->in[i] + g->pb[i] + g->pe[i];
                padded |= g->pb[i] || g->pe[i];
        }
        Pimg = P[0] * P[1] * P[2];
        IN = g->in[0] * g->in[1] * g->in[2];
        K = Cg * g->k[0] * g->k[1] * g->k[2];
        Mpad = (Mg + 15) / 16 * 16;
        KK = ph * pw;
        /* Pooled positions (without a pool: every output position, KK = 1). */
        Qh = pool ? g->out[1] / ph : g->out[0] * g->out[1];
        Qw = g->out[2] / pw;
        Q = Qh * Qw;
        OE = Q * KK; /* conv positions computed: those some window reads */
        if (!OE || !K)
                return SL_ERR_UNSUPPORTED;
        Opad = (OE + 11) / 12 * 12;
        /* Chunks of QC pooled positions: QC * KK a multiple of 12 (whole tiles),
         * about CHUNK_BYTES of buffer. */
        unit = 12 / gcd(12, KK);
        QC = CHUNK_BYTES / (int64_t)sizeof(float) / Mpad / KK / unit * unit;
        if (QC < unit)
                QC = unit;
        if (QC > (Q + unit - 1) / unit * unit)
                QC = (Q + unit - 1) / unit * unit;

        KB = PASS_WEIGHT_BYTES / (int64_t)sizeof(float) / Mpad;
        if (KB < 1)
                KB = 1;
        if (!(wp = pack_weights(c, w, bias, group, Mg, K, Mpad)))
                return sl_op_fail(c, SL_ERR_NOMEM, "packed weights: out of memory");
        bp = wp + group * K * Mpad;

        need = sizeof(int64_t) * (size_t)(K + Opad) +
               sizeof(float) * (size_t)((padded ? C * Pimg : 0) + QC * KK * Mpad) + 64;
        if (!(scr = sl_op_scratch(c, need)))
                return sl_op_fail(c, SL_ERR_NOMEM, "conv buffers: out of memory");
        buf = (float *)(((uintptr_t)scr + 63) & ~(uintptr_t)63);
        kofs = (int64_t *)(buf + QC * KK * Mpad);
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
                if (!pool) {
                        for (int64_t o0 = 0; o0 < g->out[0]; o0++)
                                for (int64_t o1 = 0; o1 < g->out[1]; o1++)
                                        for (int64_t o2 = 0; o2 < g->out[2]; o2++)
                                                pofs[o++] =
                                                    (o0 * g->s[0] * P[1] + o1 * g->s[1]) * P[2] +
                                                    o2 * g->s[2];
                } else {
                        /* Window by window: the KK positions of pooled (qh, qw) in a row. */
                        for (int64_t qh = 0; qh < Qh; qh++)
                                for (int64_t qw = 0; qw < Qw; qw++)
                                        for (int64_t i = 0; i < ph; i++)
                                                for (int64_t j = 0; j < pw; j++)
                                                        pofs[o++] = (qh * ph + i) * g->s[1] * P[2] +
                                                                    (qw * pw + j) * g->s[2];
                }
                for (; o < Opad; o++)
                        pofs[o] = pofs[OE - 1]; /* tail tiles recompute the last position */
        }
        if (padded)
                memset(xpad, 0, sizeof(float) * (size_t)(C * Pimg));
        for (int64_t n = 0; n < N; n++) {
                const float *xn = (const float *)x->data + n * C * IN, *src = xn;
                if (padded) {
                        pad_image(xn, C, g, P, xpad);
                        src = xpad;
                }
                for (int64_t gi = 0; gi < group; gi++) {
                        float *yg = (float *)y->data + (n * M + gi * Mg) * Q;
                        for (int64_t q0 = 0; q0 < Q; q0 += QC) {
                                int64_t nq = Q - q0 < QC ? Q - q0 : QC;
                                conv_chunk(src + gi * Cg * Pimg, wp + gi * K * Mpad, Mpad, kofs, K,
                                           KB, pofs + q0 * KK, nq * KK, bp + gi * Mpad, relu, buf);
                                if (KK > 1)
                                        pool_rows(buf, Mpad, nq, KK);
                                to_nchw(buf, Mpad, nq, Mg, yg + q0, Q);
                        }
                }
        }
        return SL_OK;
}

#else

sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, const int64_t *pool,
                        sl_tensor_t *y)
{
        (void)c, (void)x, (void)w, (void)bias, (void)g, (void)group, (void)pool, (void)y;
        return SL_ERR_UNSUPPORTED;
}

#endif
