/*
 * Gemm and MatMul on OpenBLAS cblas_sgemm (row-major).
 * @sa ONNX operator spec, sections "Gemm" and "MatMul" (numpy matmul semantics).
 */
#include <string.h>

#include <cblas.h>

#include "../engine_int.h"
#include "ops.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/*
 * y[j] = alpha * dot(W[j], a) + (add_y ? y[j] : 0) for j < n, W row-major
 * [n][k] (Gemm with transB = 1 and one row of A). Four rows per pass, two
 * accumulators each, so that the pass streams W at the cache's speed: at
 * batch 1 a Gemm is bound by reading its weights (fc1 of the shipped CNN:
 * 1.6 MB), and OpenBLAS's sgemv reached about half of it.
 */
AVX512 static void gemv_rows(const float *w, const float *a, float *y, int64_t n, int64_t k,
                             float alpha, bool add_y)
{
        int64_t j = 0;
        for (; j < n; j += 4) {
                int nr = n - j < 4 ? (int)(n - j) : 4;
                const float *wr[4];
                __m512 s[4], t[4];
                int64_t i = 0;
                for (int r = 0; r < 4; r++) {
                        wr[r] = w + (j + (r < nr ? r : 0)) * k;
                        s[r] = t[r] = _mm512_setzero_ps();
                }
                for (; i + 32 <= k; i += 32) {
                        __m512 a0 = _mm512_loadu_ps(a + i), a1 = _mm512_loadu_ps(a + i + 16);
                        for (int r = 0; r < 4; r++) {
                                s[r] = _mm512_fmadd_ps(_mm512_loadu_ps(wr[r] + i), a0, s[r]);
                                t[r] = _mm512_fmadd_ps(_mm512_loadu_ps(wr[r] + i + 16), a1, t[r]);
                        }
                }
                for (; i < k; i += 16) {
                        __mmask16 mk = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);
                        __m512 a0 = _mm512_maskz_loadu_ps(mk, a + i);
                        for (int r = 0; r < 4; r++)
                                s[r] =
                                    _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wr[r] + i), a0, s[r]);
                }
                for (int r = 0; r < nr; r++) {
                        float v = alpha * _mm512_reduce_add_ps(_mm512_add_ps(s[r], t[r]));
                        y[j + r] = add_y ? y[j + r] + v : v;
                }
        }
}

static bool gemv_ok(void)
{
        return sl_cpu_avx512f();
}
#else
static void gemv_rows(const float *w, const float *a, float *y, int64_t n, int64_t k, float alpha,
                      bool add_y)
{
        (void)w, (void)a, (void)y, (void)n, (void)k, (void)alpha, (void)add_y;
}

static bool gemv_ok(void)
{
        return false;
}
#endif

bool sl_gemv_rows(const float *w, const float *a, float *y, int64_t n, int64_t k)
{
        if (!n || !k || !gemv_ok())
                return false;
        gemv_rows(w, a, y, n, k, 1.0f, false);
        return true;
}

/*
 * One row times constant B [K][N] (MatMul at batch 1): B transposed once per
 * session into the node's cache, then the dot-product kernel above.
 */
static void gemv_cols(sl_opctx_t *c, const sl_tensor_t *b, const float *a, float *y, int64_t n,
                      int64_t k, bool add_y)
{
        bool fresh;
        float *bt = sl_op_node_cache(c, sizeof(float) * (size_t)(n * k), &fresh);
        if (!bt) {
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)n, 1.0f, b->data, (int)n, a, 1,
                            add_y ? 1.0f : 0.0f, y, 1);
                return;
        }
        if (fresh) {
                const float *bd = b->data;
                for (int64_t i = 0; i < k; i++)
                        for (int64_t j = 0; j < n; j++)
                                bt[j * k + i] = bd[i * n + j];
        }
        gemv_rows(bt, a, y, n, k, 1.0f, add_y);
}

sl_err_t sl_op_gemm(sl_opctx_t *c)
{
        const sl_tensor_t *a = c->in[0], *b = sl_op_in(c, 1), *cc = sl_op_in(c, 2);
        int ta = (int)sl_attr_int(c->node, "transA", 0),
            tb = (int)sl_attr_int(c->node, "transB", 0);
        float alpha = sl_attr_float(c->node, "alpha", 1.0f);
        float beta = sl_attr_float(c->node, "beta", 1.0f);
        int64_t m, k, n, kb, dims[2];
        sl_tensor_t *y;
        float *yd;

        if (!a || !b)
                return sl_op_fail(c, SL_ERR_MODEL, "A and B required");
        if (a->dtype != SL_DT_FLOAT || b->dtype != SL_DT_FLOAT || (cc && cc->dtype != SL_DT_FLOAT))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "Gemm supports float only (got %s)",
                                  sl_dtype_name(a->dtype));
        if (a->ndim != 2 || b->ndim != 2)
                return sl_op_fail(c, SL_ERR_SHAPE, "A and B must be 2-D (ranks %d, %d)", a->ndim,
                                  b->ndim);
        m = ta ? a->dims[1] : a->dims[0];
        k = ta ? a->dims[0] : a->dims[1];
        kb = tb ? b->dims[1] : b->dims[0];
        n = tb ? b->dims[0] : b->dims[1];
        if (k != kb)
                return sl_op_fail(c, SL_ERR_SHAPE, "inner dimensions differ: %lld vs %lld",
                                  (long long)k, (long long)kb);
        dims[0] = m;
        dims[1] = n;
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, 2, dims)))
                return SL_ERR_NOMEM;
        yd = y->data;
        if (cc && beta != 0.0f) {
                int64_t st[2];
                const float *cd = cc->data;
                if (cc->ndim > 2 ||
                    (cc->ndim == 2 && ((cc->dims[0] != m && cc->dims[0] != 1) ||
                                       (cc->dims[1] != n && cc->dims[1] != 1))) ||
                    (cc->ndim == 1 && cc->dims[0] != n && cc->dims[0] != 1))
                        return sl_op_fail(c, SL_ERR_SHAPE, "C is not broadcastable to [M, N]");
                sl_broadcast_strides(cc, 2, dims, st);
                if (st[1] == 1 && beta == 1.0f) {
                        /* The common bias row (or full C): row copies. */
                        for (int64_t i = 0; i < m; i++)
                                memcpy(yd + i * n, cd + i * st[0], sizeof(float) * (size_t)n);
                } else {
                        for (int64_t i = 0; i < m; i++)
                                for (int64_t j = 0; j < n; j++)
                                        yd[i * n + j] = beta * cd[i * st[0] + j * st[1]];
                }
        } else {
                beta = 0.0f;
                if (!(m && n && k))
                        memset(yd, 0, y->nbytes);
        }
        if (m == 1 && n && k && tb && gemv_ok())
                gemv_rows(b->data, a->data, yd, n, k, alpha, cc && beta != 0.0f);
        else if (m == 1 && n && k)
                /* One row (batch 1): y = op(B)^T a is a matrix-vector product,
                 * which OpenBLAS runs about twice as fast as a 1-row sgemm. */
                cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)b->dims[0],
                            (int)b->dims[1], alpha, b->data, (int)b->dims[1], a->data, 1,
                            cc && beta != 0.0f ? 1.0f : 0.0f, yd, 1);
        else if (m && n && k)
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a->data,
                            (int)a->dims[1], b->data, (int)b->dims[1],
                            cc && beta != 0.0f ? 1.0f : 0.0f, yd, (int)n);
        sl_act_apply_node(c->node, yd, (size_t)(m * n));
        return SL_OK;
}

/* y[r][:] = bias for \p rows rows of \p n (the fused bias of MatMul + Add). */
static void fill_rows(float *y, const float *bias, int64_t rows, int64_t n)
{
        for (int64_t r = 0; r < rows; r++)
                memcpy(y + r * n, bias, sizeof(float) * (size_t)n);
}

/*
 * MatMul; a third input is a bias row fused from a following Add (fuse.c:
 * constant 2-D B, bias of shape [N]), and the node's fused activation is
 * applied last.
 */
sl_err_t sl_op_matmul(sl_opctx_t *c)
{
        const sl_tensor_t *a = c->in[0], *b = sl_op_in(c, 1), *bias = sl_op_in(c, 2);
        int64_t ad[SL_MAX_DIMS], bd[SL_MAX_DIMS], od[SL_MAX_DIMS], bat[SL_MAX_DIMS];
        int64_t sa[SL_MAX_DIMS], sb[SL_MAX_DIMS], m, k, n, nbatch;
        int an, bn, nb, on = 0;
        sl_tensor_t *y, ta = {0}, tbt = {0};

        if (!a || !b)
                return sl_op_fail(c, SL_ERR_MODEL, "A and B required");
        if (a->dtype != SL_DT_FLOAT || b->dtype != SL_DT_FLOAT)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "MatMul supports float only (got %s)",
                                  sl_dtype_name(a->dtype));
        if (a->ndim < 1 || b->ndim < 1)
                return sl_op_fail(c, SL_ERR_SHAPE, "scalar operands");
        /* 1-D operands: promote to a row (A) / column (B) matrix. */
        an = a->ndim == 1 ? 2 : a->ndim;
        bn = b->ndim == 1 ? 2 : b->ndim;
        if (a->ndim == 1) {
                ad[0] = 1;
                ad[1] = a->dims[0];
        } else {
                memcpy(ad, a->dims, sizeof(int64_t) * (size_t)an);
        }
        if (b->ndim == 1) {
                bd[0] = b->dims[0];
                bd[1] = 1;
        } else {
                memcpy(bd, b->dims, sizeof(int64_t) * (size_t)bn);
        }
        m = ad[an - 2];
        k = ad[an - 1];
        n = bd[bn - 1];
        if (bd[bn - 2] != k)
                return sl_op_fail(c, SL_ERR_SHAPE, "inner dimensions differ: %lld vs %lld",
                                  (long long)k, (long long)bd[bn - 2]);
        if (sl_broadcast_shape(an - 2, ad, bn - 2, bd, &nb, bat))
                return sl_op_fail(c, SL_ERR_SHAPE, "batch dimensions are not broadcastable");
        for (int i = 0; i < nb; i++)
                od[on++] = bat[i];
        if (a->ndim > 1)
                od[on++] = m;
        if (b->ndim > 1)
                od[on++] = n;
        if (bias && (bias->dtype != SL_DT_FLOAT || sl_tensor_numel(bias) != n))
                return sl_op_fail(c, SL_ERR_SHAPE, "fused bias has %lld values for N = %lld",
                                  (long long)sl_tensor_numel(bias), (long long)n);
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, on, od)))
                return SL_ERR_NOMEM;
        if (!sl_tensor_numel(y))
                return SL_OK;
        if (!k) {
                if (bias)
                        fill_rows(y->data, bias->data, sl_tensor_numel(y) / n, n);
                else
                        memset(y->data, 0, y->nbytes);
                sl_act_apply_node(c->node, y->data, (size_t)sl_tensor_numel(y));
                return SL_OK;
        }
        if (bias)
                fill_rows(y->data, bias->data, sl_tensor_numel(y) / n, n);
        /* Batch strides in matrices (0 where broadcast). */
        ta.ndim = an - 2;
        memcpy(ta.dims, ad, sizeof(int64_t) * (size_t)ta.ndim);
        tbt.ndim = bn - 2;
        memcpy(tbt.dims, bd, sizeof(int64_t) * (size_t)tbt.ndim);
        sl_broadcast_strides(&ta, nb, bat, sa);
        sl_broadcast_strides(&tbt, nb, bat, sb);
        nbatch = sl_dims_numel(nb, bat);
        if (nbatch > 0 && sl_dims_numel(bn - 2, bd) == 1 && sl_dims_numel(an - 2, ad) == nbatch) {
                /* B shared by every batch: one sgemm with batch*M rows. */
                int64_t rows = nbatch * m;
                if (rows == 1 && gemv_ok() && sl_op_in_const(c, 1) && n >= 16)
                        gemv_cols(c, b, a->data, y->data, n, k, bias != NULL);
                else
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n,
                                    (int)k, 1.0f, a->data, (int)k, b->data, (int)n,
                                    bias ? 1.0f : 0.0f, y->data, (int)n);
                sl_act_apply_node(c->node, y->data, (size_t)sl_tensor_numel(y));
                return SL_OK;
        }
        for (int64_t bi = 0; bi < nbatch; bi++) {
                int64_t rem = bi, oa = 0, ob = 0;
                for (int d = nb - 1; d >= 0; d--) {
                        int64_t idx = rem % bat[d];
                        rem /= bat[d];
                        oa += idx * sa[d];
                        ob += idx * sb[d];
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                            (const float *)a->data + oa * m * k, (int)k,
                            (const float *)b->data + ob * k * n, (int)n, bias ? 1.0f : 0.0f,
                            (float *)y->data + bi * m * n, (int)n);
        }
        sl_act_apply_node(c->node, y->data, (size_t)sl_tensor_numel(y));
        return SL_OK;
}
