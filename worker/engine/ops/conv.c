/*
 * Conv and ConvTranspose (1-D, 2-D, 3-D; groups, dilations, strides, pads,
 * auto_pad) via im2col/col2im and cblas_sgemm, and the window geometry
 * shared with the pooling operators.
 *
 * Spatial dimensions are handled as 3-D: a 1-D or 2-D problem gets leading
 * spatial dimensions of size 1 (kernel 1, stride 1, no padding), so one
 * im2col serves every rank.
 * @sa ONNX operator spec, sections "Conv", "ConvTranspose" (auto_pad formulas).
 */
#include <string.h>

#include <cblas.h>

#include "../engine_int.h"
#include "conv_direct.h"
#include "conv_dw.h"
#include "ops.h"

sl_err_t sl_geom_check(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        char buf[32];
        const char *ap = sl_attr_string(node, "auto_pad", "NOTSET", buf, sizeof(buf));
        (void)opset;
        if (strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") &&
            strcmp(ap, "VALID")) {
                sl_strfmt(errstr, errstr_size, "auto_pad '%s' is not supported", ap);
                return SL_ERR_UNSUPPORTED;
        }
        if (sl_attr_find(node, "storage_order") && sl_attr_int(node, "storage_order", 0)) {
                sl_strfmt(errstr, errstr_size, "storage_order=1 is not supported");
                return SL_ERR_UNSUPPORTED;
        }
        return SL_OK;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
        return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

sl_err_t sl_geom_init(sl_opctx_t *c, const sl_tensor_t *x, const int64_t *kernel, int nk,
                      bool ceil_mode, sl_geom_t *g)
{
        const int64_t *st = NULL, *dl = NULL, *pd = NULL;
        int r = x->ndim - 2, ns, nd, np, off;
        char buf[32];
        const char *ap = sl_attr_string(c->node, "auto_pad", "NOTSET", buf, sizeof(buf));

        if (r < 1 || r > 3 || nk != r)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED,
                                  "%d spatial dimensions (kernel rank %d) not supported", r, nk);
        ns = sl_attr_ints(c->node, "strides", &st);
        nd = sl_attr_ints(c->node, "dilations", &dl);
        np = sl_attr_ints(c->node, "pads", &pd);
        if ((ns >= 0 && ns != r) || (nd >= 0 && nd != r) || (np >= 0 && np != 2 * r))
                return sl_op_fail(c, SL_ERR_SHAPE, "strides/dilations/pads do not match rank %d",
                                  r);
        off = 3 - r;
        g->r = r;
        for (int i = 0; i < 3; i++) {
                g->in[i] = g->k[i] = g->s[i] = g->d[i] = g->out[i] = 1;
                g->pb[i] = g->pe[i] = 0;
        }
        for (int i = 0; i < r; i++) {
                int j = i + off;
                int64_t ek;
                g->in[j] = x->dims[2 + i];
                g->k[j] = kernel[i];
                g->s[j] = ns >= 0 ? st[i] : 1;
                g->d[j] = nd >= 0 ? dl[i] : 1;
                if (g->k[j] < 1 || g->s[j] < 1 || g->d[j] < 1)
                        return sl_op_fail(c, SL_ERR_SHAPE,
                                          "kernel, strides, dilations must be >= 1");
                ek = (g->k[j] - 1) * g->d[j] + 1;
                if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
                        int64_t o = ceil_div(g->in[j], g->s[j]);
                        int64_t tot = (o - 1) * g->s[j] + ek - g->in[j];
                        if (tot < 0)
                                tot = 0;
                        g->pb[j] = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
                        g->pe[j] = tot - g->pb[j];
                        g->out[j] = o;
                        continue;
                }
                if (!strcmp(ap, "NOTSET") && np >= 0) {
                        g->pb[j] = pd[i];
                        g->pe[j] = pd[i + r];
                }
                if (g->pb[j] < 0 || g->pe[j] < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "negative pads");
                {
                        int64_t span = g->in[j] + g->pb[j] + g->pe[j] - ek;
                        if (span < 0)
                                return sl_op_fail(c, SL_ERR_SHAPE,
                                                  "kernel larger than padded input");
                        g->out[j] = (ceil_mode ? ceil_div(span, g->s[j]) : span / g->s[j]) + 1;
                        /* The last window must start inside the input or left padding. */
                        if (ceil_mode && (g->out[j] - 1) * g->s[j] >= g->in[j] + g->pb[j])
                                g->out[j]--;
                }
        }
        return SL_OK;
}

/*
 * Output positions [*lo, *hi) of one axis whose input index o*s + off
 * (off = k*d - pb) lies inside [0, in).
 */
static void valid_range(int64_t in, int64_t out, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
        int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
        int64_t h = in - off <= 0 ? 0 : (in - off + s - 1) / s;
        if (l > out)
                l = out;
        if (h > out)
                h = out;
        if (h < l)
                h = l;
        *lo = l;
        *hi = h;
}

/* Rows of a CNN are short (7..56 floats): an inline loop beats a memcpy call,
 * so keep GCC from turning it back into one. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
copy_row(float *restrict dst, const float *restrict src, int64_t n)
{
        for (int64_t i = 0; i < n; i++)
                dst[i] = src[i];
}

/*
 * col[(c*K + k) * ldc + o] = x[c, o*s - pb + k*d], or 0 in the padding.
 * Rows of col are \p ldc apart so that the columns of several images can sit
 * side by side (one sgemm for a block of images). Each output row is a zero
 * head, a strided (for s = 1: contiguous) copy and a zero tail.
 */
static void im2col(const float *x, int64_t C, const sl_geom_t *g, float *col, int64_t ldc)
{
        int64_t IN = g->in[0] * g->in[1] * g->in[2];
        int64_t O12 = g->out[1] * g->out[2];
        for (int64_t ch = 0; ch < C; ch++) {
                const float *xc = x + ch * IN;
                for (int64_t k0 = 0; k0 < g->k[0]; k0++)
                        for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                                for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                                        int64_t off0 = k0 * g->d[0] - g->pb[0];
                                        int64_t off1 = k1 * g->d[1] - g->pb[1];
                                        int64_t off2 = k2 * g->d[2] - g->pb[2];
                                        int64_t lo0, hi0, lo1, hi1, lo2, hi2;
                                        float *dst = col;
                                        col += ldc;
                                        valid_range(g->in[0], g->out[0], g->s[0], off0, &lo0, &hi0);
                                        valid_range(g->in[1], g->out[1], g->s[1], off1, &lo1, &hi1);
                                        valid_range(g->in[2], g->out[2], g->s[2], off2, &lo2, &hi2);
                                        if (lo0)
                                                memset(dst, 0, sizeof(float) * (size_t)(lo0 * O12));
                                        dst += lo0 * O12;
                                        for (int64_t o0 = lo0; o0 < hi0; o0++) {
                                                const float *plane = xc + (o0 * g->s[0] + off0) *
                                                                              g->in[1] * g->in[2];
                                                if (lo1)
                                                        memset(dst, 0,
                                                               sizeof(float) *
                                                                   (size_t)(lo1 * g->out[2]));
                                                dst += lo1 * g->out[2];
                                                for (int64_t o1 = lo1; o1 < hi1; o1++) {
                                                        const float *row =
                                                            plane +
                                                            (o1 * g->s[1] + off1) * g->in[2];
                                                        for (int64_t o2 = 0; o2 < lo2; o2++)
                                                                dst[o2] = 0.0f;
                                                        if (g->s[2] == 1)
                                                                copy_row(dst + lo2,
                                                                         row + lo2 + off2,
                                                                         hi2 - lo2);
                                                        else
                                                                for (int64_t o2 = lo2; o2 < hi2;
                                                                     o2++)
                                                                        dst[o2] = row[o2 * g->s[2] +
                                                                                      off2];
                                                        for (int64_t o2 = hi2; o2 < g->out[2]; o2++)
                                                                dst[o2] = 0.0f;
                                                        dst += g->out[2];
                                                }
                                                if (hi1 < g->out[1])
                                                        memset(dst, 0,
                                                               sizeof(float) *
                                                                   (size_t)((g->out[1] - hi1) *
                                                                            g->out[2]));
                                                dst += (g->out[1] - hi1) * g->out[2];
                                        }
                                        if (hi0 < g->out[0])
                                                memset(dst, 0,
                                                       sizeof(float) *
                                                           (size_t)((g->out[0] - hi0) * O12));
                                }
        }
}

/* The adjoint of im2col: y[c, o*s - pb + k*d] += col[(c*K + k) * O + o]. */
static void col2im(const float *col, int64_t C, const sl_geom_t *g, float *y)
{
        int64_t IN = g->in[0] * g->in[1] * g->in[2];
        for (int64_t ch = 0; ch < C; ch++) {
                float *yc = y + ch * IN;
                for (int64_t k0 = 0; k0 < g->k[0]; k0++)
                        for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                                for (int64_t k2 = 0; k2 < g->k[2]; k2++)
                                        for (int64_t o0 = 0; o0 < g->out[0]; o0++) {
                                                int64_t i0 = o0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                                                for (int64_t o1 = 0; o1 < g->out[1]; o1++) {
                                                        int64_t i1 =
                                                            o1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                                                        bool ok = i0 >= 0 && i0 < g->in[0] &&
                                                                  i1 >= 0 && i1 < g->in[1];
                                                        for (int64_t o2 = 0; o2 < g->out[2];
                                                             o2++, col++) {
                                                                int64_t i2 = o2 * g->s[2] -
                                                                             g->pb[2] +
                                                                             k2 * g->d[2];
                                                                if (ok && i2 >= 0 && i2 < g->in[2])
                                                                        yc[(i0 * g->in[1] + i1) *
                                                                               g->in[2] +
                                                                           i2] += *col;
                                                        }
                                                }
                                        }
        }
}

static bool is_pointwise(const sl_geom_t *g)
{
        for (int i = 0; i < 3; i++)
                if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] || g->pe[i])
                        return false;
        return true;
}

/*
 * Images per sgemm. One image per sgemm measured fastest once an image has a
 * few hundred output positions (OpenBLAS 0.3.21, SkylakeX: 32x784x9 and
 * 64x196x288 run at 90-117 GFLOP/s per image; blocking 64 images dropped to
 * 82 and the NCHW scatter after it cost more). Small feature maps are
 * blocked up to CONV_COLS_MIN columns, within CONV_COL_BYTES of im2col.
 */
#define CONV_COLS_MIN  256
#define CONV_COL_BYTES ((int64_t)1 << 20)

/*
 * Output pass of a block of \p nn images for channels [m0, m0 + Mg): bias,
 * fused activation, and the move from the sgemm layout src[m][i*O + o]
 * (row stride \p lds) to NCHW dst[i][m0 + m][o] (dst points at image 0,
 * channel m0). In place when src == dst (one image).
 */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
epilogue(const float *src, float *dst, const float *bias, sl_act_t act, int64_t nn, int64_t M,
         int64_t O, int64_t m0, int64_t Mg, int64_t lds, float lo, float hi)
{
        for (int64_t m = 0; m < Mg; m++)
                for (int64_t i = 0; i < nn; i++) {
                        const float *sp = src + m * lds + i * O;
                        float *dp = dst + (i * M + m) * O;
                        float bv = bias ? bias[m0 + m] : 0.0f;
                        if (act == SL_ACT_RELU)
                                for (int64_t o = 0; o < O; o++) {
                                        float v = sp[o] + bv;
                                        dp[o] = v > 0.0f ? v : 0.0f;
                                }
                        else if (act == SL_ACT_CLIP)
                                for (int64_t o = 0; o < O; o++) {
                                        float v = sp[o] + bv;
                                        dp[o] = v < lo ? lo : v > hi ? hi : v;
                                }
                        else
                                for (int64_t o = 0; o < O; o++)
                                        dp[o] = sp[o] + bv;
                }
}

/*
 * The fused MaxPool of the im2col path: y[nc][qh][qw] = max of the window
 * x[nc][qh*ph .. +ph)[qw*pw .. +pw) (stride = kernel, no padding), keeping
 * the first value unless a later one is greater, as pool.c does.
 */
static void max_pool_windows(const float *x, float *y, int64_t NC, int64_t H, int64_t W, int64_t ph,
                             int64_t pw)
{
        int64_t QH = H / ph, QW = W / pw;
        for (int64_t nc = 0; nc < NC; nc++)
                for (int64_t qh = 0; qh < QH; qh++)
                        for (int64_t qw = 0; qw < QW; qw++) {
                                const float *xw = x + (nc * H + qh * ph) * W + qw * pw;
                                float acc = xw[0];
                                for (int64_t i = 0; i < ph; i++)
                                        for (int64_t j = 0; j < pw; j++)
                                                if (xw[i * W + j] > acc)
                                                        acc = xw[i * W + j];
                                *y++ = acc;
                        }
}

/*
 * Conv by im2col + sgemm (every geometry): into \p y, or with a fused
 * MaxPool into a scratch copy of the unpooled output first.
 */
static sl_err_t conv_gemm(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                          const float *bias, const sl_geom_t *g, int64_t group, const int64_t *pool,
                          sl_tensor_t *y)
{
        int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = C / group, Mg = M / group;
        int64_t K = Cg * g->k[0] * g->k[1] * g->k[2], O = g->out[0] * g->out[1] * g->out[2];
        int64_t IN = g->in[0] * g->in[1] * g->in[2], nb, ncol = 0, ntmp = 0;
        float *col = NULL, *tmp = NULL, *yd = y->data;

        /* Images per sgemm: as many as keep the im2col block near CONV_COL_BYTES. */
        nb = is_pointwise(g) || O >= CONV_COLS_MIN
                 ? 1
                 : CONV_COL_BYTES / (int64_t)sizeof(float) / (K * O);
        if (nb * O > CONV_COLS_MIN)
                nb = (CONV_COLS_MIN + O - 1) / O;
        if (nb < 1)
                nb = 1;
        if (nb > N)
                nb = N;
        if (!is_pointwise(g) || nb > 1) {
                ncol = K * nb * O;
                ntmp = nb > 1 ? Mg * nb * O : 0;
        }
        if (ncol || pool) {
                float *scr;
                size_t need = sizeof(float) * (size_t)(ncol + ntmp + (pool ? N * M * O : 0));
                if (!(scr = sl_op_scratch(c, need)))
                        return sl_op_fail(c, SL_ERR_NOMEM, "im2col buffer: out of memory");
                col = ncol ? scr : NULL;
                tmp = ntmp ? scr + ncol : NULL;
                if (pool)
                        yd = scr + ncol + ntmp;
        }
        for (int64_t n0 = 0; n0 < N; n0 += nb) {
                int64_t nn = N - n0 < nb ? N - n0 : nb;
                for (int64_t gi = 0; gi < group; gi++) {
                        const float *src = (const float *)x->data + (n0 * C + gi * Cg) * IN;
                        float *dst = yd + (n0 * M + gi * Mg) * O;
                        if (col) {
                                for (int64_t i = 0; i < nn; i++)
                                        im2col((const float *)x->data +
                                                   ((n0 + i) * C + gi * Cg) * IN,
                                               Cg, g, col + i * O, nn * O);
                                src = col;
                        }
                        /* One image: straight into Y; a block: into tmp, [Mg][nn*O]. */
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg,
                                    (int)(nn * O), (int)K, 1.0f,
                                    (const float *)w->data + gi * Mg * K, (int)K, src,
                                    (int)(nn * O), 0.0f, nn > 1 ? tmp : dst, (int)(nn * O));
                        epilogue(nn > 1 ? tmp : dst, dst, bias, c->node->act, nn, M, O, gi * Mg, Mg,
                                 nn * O, c->node->act_min, c->node->act_max);
                }
        }
        if (pool)
                max_pool_windows(yd, y->data, N * M, g->out[1], g->out[2], pool[0], pool[1]);
        return SL_OK;
}

sl_err_t sl_op_conv(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *w = sl_op_in(c, 1), *b = sl_op_in(c, 2);
        int64_t group = sl_attr_int(c->node, "group", 1), N, C, M, K, O;
        const int64_t *ks = NULL, *pool = c->node->pool[0] ? c->node->pool : NULL;
        int nks = sl_attr_ints(c->node, "kernel_shape", &ks);
        int64_t odims[SL_MAX_DIMS];
        sl_geom_t g;
        sl_tensor_t *y;
        sl_err_t err;

        if (!x || !w)
                return sl_op_fail(c, SL_ERR_MODEL, "X and W required");
        if (x->dtype != SL_DT_FLOAT || w->dtype != SL_DT_FLOAT || (b && b->dtype != SL_DT_FLOAT))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "Conv supports float only (got %s)",
                                  sl_dtype_name(x->dtype));
        if (x->ndim < 3 || w->ndim != x->ndim)
                return sl_op_fail(c, SL_ERR_SHAPE, "X rank %d and W rank %d", x->ndim, w->ndim);
        if (nks < 0) {
                ks = w->dims + 2;
                nks = w->ndim - 2;
        }
        if ((err = sl_geom_init(c, x, ks, nks, false, &g)))
                return err;
        N = x->dims[0];
        C = x->dims[1];
        M = w->dims[0];
        if (group < 1 || C % group || M % group || w->dims[1] != C / group)
                return sl_op_fail(c, SL_ERR_SHAPE, "channels %lld, W %lldx%lld, group %lld",
                                  (long long)C, (long long)M, (long long)w->dims[1],
                                  (long long)group);
        for (int i = 0; i < nks; i++)
                if (w->dims[2 + i] != ks[i])
                        return sl_op_fail(c, SL_ERR_SHAPE, "kernel_shape does not match W");
        if (b && sl_tensor_numel(b) != M)
                return sl_op_fail(c, SL_ERR_SHAPE, "bias has %lld values for %lld channels",
                                  (long long)sl_tensor_numel(b), (long long)M);
        K = C / group * g.k[0] * g.k[1] * g.k[2];
        odims[0] = N;
        odims[1] = M;
        for (int i = 0; i < g.r; i++)
                odims[2 + i] = g.out[3 - g.r + i];
        if (pool) {
                /* The fused MaxPool's output shape (its own checks, pool.c). */
                if (g.r != 2)
                        return sl_op_fail(c, SL_ERR_UNSUPPORTED, "MaxPool fused into a %d-D Conv",
                                          g.r);
                if (g.out[1] < pool[0] || g.out[2] < pool[1])
                        return sl_op_fail(c, SL_ERR_SHAPE,
                                          "MaxPool: kernel larger than padded input");
                odims[2] = g.out[1] / pool[0];
                odims[3] = g.out[2] / pool[1];
        }
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, x->ndim, odims)))
                return SL_ERR_NOMEM;
        O = sl_tensor_numel(y) / (N && M ? N * M : 1);
        if (!N || !M || !O)
                return SL_OK;
        if (!K) {
                /* Every output is the bias (pooled: the max of equal values). */
                memset(y->data, 0, y->nbytes);
                for (int64_t n = 0; n < N; n++) {
                        float *yn = (float *)y->data + n * M * O;
                        epilogue(yn, yn, b ? b->data : NULL, c->node->act, 1, M, O, 0, M, O,
                                 c->node->act_min, c->node->act_max);
                }
                return SL_OK;
        }
        err = sl_conv_depthwise(c, x, w, b ? b->data : NULL, &g, group, y);
        if (err != SL_ERR_UNSUPPORTED)
                return err;
        err = sl_conv_direct(c, x, w, b ? b->data : NULL, &g, group, pool, y);
        if (err == SL_OK && c->node->act == SL_ACT_CLIP)
                /* The direct kernel applies Relu only; Clip is monotonic, so
                 * after a fused MaxPool it gives the same result. */
                sl_act_apply_node(c->node, y->data, (size_t)sl_tensor_numel(y));
        if (err != SL_ERR_UNSUPPORTED)
                return err;
        return conv_gemm(c, x, w, b ? b->data : NULL, &g, group, pool, y);
}

sl_err_t sl_op_conv_transpose(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *w = sl_op_in(c, 1), *b = sl_op_in(c, 2);
        int64_t group = sl_attr_int(c->node, "group", 1), N, C, M, Cg, Mg, K, O, IN;
        const int64_t *ks = NULL, *st = NULL, *dl = NULL, *pd = NULL, *op = NULL, *os = NULL;
        int nks = sl_attr_ints(c->node, "kernel_shape", &ks);
        int ns = sl_attr_ints(c->node, "strides", &st),
            nd = sl_attr_ints(c->node, "dilations", &dl);
        int np = sl_attr_ints(c->node, "pads", &pd);
        int nop = sl_attr_ints(c->node, "output_padding", &op);
        int nos = sl_attr_ints(c->node, "output_shape", &os);
        char buf[32];
        const char *ap = sl_attr_string(c->node, "auto_pad", "NOTSET", buf, sizeof(buf));
        int64_t odims[SL_MAX_DIMS];
        sl_geom_t g;
        sl_tensor_t *y;
        float *col;
        int r;

        if (!x || !w)
                return sl_op_fail(c, SL_ERR_MODEL, "X and W required");
        if (x->dtype != SL_DT_FLOAT || w->dtype != SL_DT_FLOAT || (b && b->dtype != SL_DT_FLOAT))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "ConvTranspose supports float only");
        r = x->ndim - 2;
        if (r < 1 || r > 3 || w->ndim != x->ndim)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "rank %d not supported", x->ndim);
        if (nks < 0) {
                ks = w->dims + 2;
                nks = r;
        }
        if (nks != r || (ns >= 0 && ns != r) || (nd >= 0 && nd != r) || (np >= 0 && np != 2 * r) ||
            (nop >= 0 && nop != r) || (nos >= 0 && nos < r))
                return sl_op_fail(c, SL_ERR_SHAPE, "attribute lengths do not match rank %d", r);
        N = x->dims[0];
        C = x->dims[1];
        if (group < 1 || C % group || w->dims[0] != C)
                return sl_op_fail(c, SL_ERR_SHAPE, "W does not match input channels/group");
        Cg = C / group;
        Mg = w->dims[1];
        M = Mg * group;
        /* Geometry of the equivalent Conv from Y back to X: g.in = Y, g.out = X. */
        for (int i = 0; i < 3; i++) {
                g.in[i] = g.k[i] = g.s[i] = g.d[i] = g.out[i] = 1;
                g.pb[i] = g.pe[i] = 0;
        }
        g.r = r;
        for (int i = 0; i < r; i++) {
                int j = i + 3 - r;
                int64_t s = ns >= 0 ? st[i] : 1, d = nd >= 0 ? dl[i] : 1;
                int64_t opad = nop >= 0 ? op[i] : 0, ek = (ks[i] - 1) * d + 1, outsz;
                int64_t pb = np >= 0 ? pd[i] : 0, pe = np >= 0 ? pd[i + r] : 0;
                if (s < 1 || d < 1 || ks[i] < 1 || ks[i] != w->dims[2 + i])
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad kernel/strides/dilations");
                g.k[j] = ks[i];
                g.s[j] = s;
                g.d[j] = d;
                g.out[j] = x->dims[2 + i];
                if (nos >= 0 || !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
                        int64_t tot;
                        outsz = nos >= 0 ? os[nos - r + i] : x->dims[2 + i] * s;
                        tot = s * (x->dims[2 + i] - 1) + opad + ek - outsz;
                        if (tot < 0)
                                tot = 0;
                        if (!strcmp(ap, "SAME_LOWER")) {
                                pb = tot - tot / 2;
                                pe = tot / 2;
                        } else {
                                pb = tot / 2;
                                pe = tot - tot / 2;
                        }
                } else {
                        if (!strcmp(ap, "VALID"))
                                pb = pe = 0;
                        outsz = s * (x->dims[2 + i] - 1) + opad + ek - pb - pe;
                }
                if (outsz < 0 || pb < 0 || pe < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "negative output size or pads");
                g.in[j] = outsz;
                g.pb[j] = pb;
                g.pe[j] = pe;
                odims[2 + i] = outsz;
        }
        odims[0] = N;
        odims[1] = M;
        K = Mg * g.k[0] * g.k[1] * g.k[2];
        O = g.out[0] * g.out[1] * g.out[2];
        IN = g.in[0] * g.in[1] * g.in[2];
        if (b && sl_tensor_numel(b) != M)
                return sl_op_fail(c, SL_ERR_SHAPE, "bias does not match output channels");
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, x->ndim, odims)))
                return SL_ERR_NOMEM;
        if (!(col = sl_op_scratch(c, sizeof(float) * (size_t)(K * O))))
                return sl_op_fail(c, SL_ERR_NOMEM, "col2im buffer: out of memory");
        memset(y->data, 0, y->nbytes);
        for (int64_t n = 0; n < N; n++)
                for (int64_t gi = 0; gi < group; gi++) {
                        const float *xg = (const float *)x->data + (n * C + gi * Cg) * O;
                        float *yg = (float *)y->data + (n * M + gi * Mg) * IN;
                        /* col (K x O) = W_g^T (K x Cg) * X_g (Cg x O) */
                        if (K && O && Cg)
                                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)O,
                                            (int)Cg, 1.0f, (const float *)w->data + gi * Cg * K,
                                            (int)K, xg, (int)O, 0.0f, col, (int)O);
                        else
                                memset(col, 0, sizeof(float) * (size_t)(K * O));
                        col2im(col, Mg, &g, yg);
                }
        if (b) {
                const float *bd = b->data;
                float *yd = y->data;
                for (int64_t n = 0; n < N; n++)
                        for (int64_t m = 0; m < M; m++)
                                for (int64_t i = 0; i < IN; i++)
                                        yd[(n * M + m) * IN + i] += bd[m];
        }
        return SL_OK;
}
