/*
 * Small operators without a family of their own: MaxPool's Indices in
 * column-major order (storage_order = 1, built on pool.c's kernel),
 * Compress, ReverseSequence, LRN, Det and the window functions
 * (HannWindow, HammingWindow, BlackmanWindow).
 * @sa ONNX docs/Operators.md, the section of each operator.
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

/* sl_geom_check() without its storage_order restriction (handled here). */
sl_err_t sl_check_max_pool(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        sl_node_t copy = *node;
        Onnx__NodeProto np = *node->proto;
        Onnx__AttributeProto *attrs[64];
        int64_t so = sl_attr_int(node, "storage_order", 0);

        if (so != 0 && so != 1) {
                sl_strfmt(errstr, errstr_size, "storage_order=%lld is not 0 or 1", (long long)so);
                return SL_ERR_MODEL;
        }
        if (np.n_attribute > sizeof(attrs) / sizeof(attrs[0])) {
                sl_strfmt(errstr, errstr_size, "too many attributes");
                return SL_ERR_UNSUPPORTED;
        }
        /* The shared check, shown the node without storage_order. */
        np.attribute = attrs;
        np.n_attribute = 0;
        for (size_t i = 0; i < node->proto->n_attribute; i++) {
                Onnx__AttributeProto *a = node->proto->attribute[i];
                if (!a->name || strcmp(a->name, "storage_order"))
                        attrs[np.n_attribute++] = a;
        }
        copy.proto = &np;
        return sl_geom_check(&copy, opset, errstr, errstr_size);
}

/*
 * MaxPool; with storage_order = 1 the Indices output (flat indices into X,
 * row-major over N, C and the spatial axes) is rewritten so that the spatial
 * part is column-major: for 2-D, (n*C + c)*H*W + h + w*H instead of
 * (n*C + c)*H*W + h*W + w (ONNX Runtime's and the reference's convention).
 * @sa ONNX docs/Operators.md, "MaxPool" (8, 10, 11, 12): storage_order.
 */
sl_err_t sl_op_max_pool_indexed(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        sl_err_t err = sl_op_max_pool(c);
        int64_t sp = 1, n, sdims[SL_MAX_DIMS];
        int r;
        sl_tensor_t *ind;

        if (err || sl_attr_int(c->node, "storage_order", 0) != 1 || !sl_op_has_output(c, 1))
                return err;
        ind = sl_op_output_current(c, 1);
        r = x->ndim - 2;
        for (int d = 0; d < r; d++) {
                sdims[d] = x->dims[2 + d];
                sp *= sdims[d];
        }
        n = sl_tensor_numel(ind);
        for (int64_t i = 0; i < n; i++) {
                int64_t v = ((int64_t *)ind->data)[i], rem, cm = 0, mul = 1;
                int64_t coords[SL_MAX_DIMS];
                if (sp <= 0 || v < 0)
                        continue;
                /* Row-major spatial coordinates, recombined first-axis-fastest. */
                rem = v % sp;
                for (int d = r - 1; d >= 0; d--) {
                        coords[d] = rem % sdims[d];
                        rem /= sdims[d];
                }
                for (int d = 0; d < r; d++) {
                        cm += coords[d] * mul;
                        mul *= sdims[d];
                }
                ((int64_t *)ind->data)[i] = v - v % sp + cm;
        }
        return SL_OK;
}

/* Compress (9, 11): the slices along axis (or elements of the flattened
 * input) where condition is true; condition may be shorter than the axis. */
sl_err_t sl_op_compress(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *cond = sl_op_in(c, 1);
        const Onnx__AttributeProto *ax = sl_attr_find(c->node, "axis");
        int64_t dims[SL_MAX_DIMS], outer = 1, len, inner = 1, kept = 0, nc;
        size_t esz;
        int axis = 0, nd;
        sl_tensor_t *y;
        char *dst;

        if (!x || !cond || cond->dtype != SL_DT_BOOL || cond->ndim != 1)
                return sl_op_fail(c, SL_ERR_MODEL, "input and a 1-D bool condition required");
        esz = sl_dtype_size(x->dtype);
        if (ax) {
                if ((axis = sl_axis(ax->i, x->ndim, false)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
                nd = x->ndim;
                memcpy(dims, x->dims, sizeof(dims));
                for (int d = 0; d < axis; d++)
                        outer *= x->dims[d];
                for (int d = axis + 1; d < x->ndim; d++)
                        inner *= x->dims[d];
                len = x->dims[axis];
        } else {
                nd = 1;
                len = sl_tensor_numel(x);
        }
        nc = sl_tensor_numel(cond) < len ? sl_tensor_numel(cond) : len;
        for (int64_t i = 0; i < nc; i++)
                kept += ((const uint8_t *)cond->data)[i] != 0;
        dims[ax ? axis : 0] = kept;
        if (!(y = sl_op_output(c, 0, x->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        dst = y->data;
        for (int64_t o = 0; o < outer; o++)
                for (int64_t i = 0; i < nc; i++) {
                        if (!((const uint8_t *)cond->data)[i])
                                continue;
                        memcpy(dst, (const char *)x->data + (size_t)((o * len + i) * inner) * esz,
                               (size_t)inner * esz);
                        dst += (size_t)inner * esz;
                }
        return SL_OK;
}

/* ReverseSequence (10): reverse the first sequence_lens[b] steps along time_axis. */
sl_err_t sl_op_reverse_sequence(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *lens = sl_op_in(c, 1);
        int ba = (int)sl_attr_int(c->node, "batch_axis", 1);
        int ta = (int)sl_attr_int(c->node, "time_axis", 0);
        int64_t st[SL_MAX_DIMS], n, T, B;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !lens || x->ndim < 2 || (ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
                return sl_op_fail(c, SL_ERR_MODEL, "input of rank >= 2, batch/time axes 0 and 1");
        B = x->dims[ba];
        T = x->dims[ta];
        if (sl_tensor_numel(lens) != B)
                return sl_op_fail(c, SL_ERR_SHAPE, "sequence_lens must have %lld values",
                                  (long long)B);
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, st);
        n = st[1]; /* elements per (axis 0, axis 1) pair */
        for (int64_t b = 0; b < B; b++) {
                int64_t L = sl_tensor_get_i64(lens, b);
                if (L < 0 || L > T)
                        return sl_op_fail(c, SL_ERR_SHAPE, "sequence_lens[%lld] = %lld",
                                          (long long)b, (long long)L);
                for (int64_t t = 0; t < T; t++) {
                        int64_t src = t < L ? L - 1 - t : t;
                        int64_t so = ta == 0 ? src * st[0] + b * st[1] : b * st[0] + src * st[1];
                        int64_t dof = ta == 0 ? t * st[0] + b * st[1] : b * st[0] + t * st[1];
                        memcpy((char *)y->data + (size_t)dof * esz,
                               (const char *)x->data + (size_t)so * esz, (size_t)n * esz);
                }
        }
        return SL_OK;
}

/* LRN (1, 13): y = x / (bias + alpha / size * sum of x^2 over nearby channels)^beta. */
sl_err_t sl_op_lrn(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        double alpha = sl_attr_float(c->node, "alpha", 1e-4f);
        double beta = sl_attr_float(c->node, "beta", 0.75f);
        double bias = sl_attr_float(c->node, "bias", 1.0f);
        int64_t size = sl_attr_int(c->node, "size", 0), N, C, I = 1, lo, hi;
        const float *xd;
        sl_tensor_t *y;

        if (!x || x->dtype != SL_DT_FLOAT || x->ndim < 2 || size < 1)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input of rank >= 2 and size >= 1");
        if (!(y = sl_op_output_like(c, 0, SL_DT_FLOAT, x)))
                return SL_ERR_NOMEM;
        N = x->dims[0];
        C = x->dims[1];
        for (int d = 2; d < x->ndim; d++)
                I *= x->dims[d];
        lo = (size - 1) / 2;     /* floor((size - 1) / 2) channels before */
        hi = (size - 1 + 1) / 2; /* ceil((size - 1) / 2) channels after */
        xd = x->data;
        for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++)
                        for (int64_t i = 0; i < I; i++) {
                                double sq = 0, v = xd[(n * C + ch) * I + i];
                                for (int64_t k = ch - lo; k <= ch + hi; k++)
                                        if (k >= 0 && k < C) {
                                                double u = xd[(n * C + k) * I + i];
                                                sq += u * u;
                                        }
                                ((float *)y->data)[(n * C + ch) * I + i] =
                                    (float)(v / pow(bias + alpha / (double)size * sq, beta));
                        }
        return SL_OK;
}

/* Det (11): determinants of the trailing [M, M] matrices, by LU with partial pivoting. */
sl_err_t sl_op_det(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t M, batch;
        double *a;
        sl_tensor_t *y;

        if (!x || !sl_dtype_is_float(x->dtype) || x->dtype == SL_DT_FLOAT16 || x->ndim < 2 ||
            x->dims[x->ndim - 1] != x->dims[x->ndim - 2])
                return sl_op_fail(c, SL_ERR_SHAPE, "float input of shape [*, M, M] required");
        M = x->dims[x->ndim - 1];
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim - 2, x->dims)))
                return SL_ERR_NOMEM;
        batch = sl_tensor_numel(y);
        if (!(a = sl_op_scratch(c, sizeof(double) * (size_t)(M * M + 1))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        for (int64_t b = 0; b < batch; b++) {
                double det = 1;
                for (int64_t i = 0; i < M * M; i++)
                        a[i] = sl_tensor_get_f64(x, b * M * M + i);
                for (int64_t k = 0; k < M && det != 0; k++) {
                        int64_t p = k;
                        for (int64_t i = k + 1; i < M; i++)
                                if (fabs(a[i * M + k]) > fabs(a[p * M + k]))
                                        p = i;
                        if (a[p * M + k] == 0) {
                                det = 0;
                                break;
                        }
                        if (p != k) {
                                for (int64_t j = 0; j < M; j++) {
                                        double t = a[k * M + j];
                                        a[k * M + j] = a[p * M + j];
                                        a[p * M + j] = t;
                                }
                                det = -det;
                        }
                        det *= a[k * M + k];
                        for (int64_t i = k + 1; i < M; i++) {
                                double f = a[i * M + k] / a[k * M + k];
                                for (int64_t j = k; j < M; j++)
                                        a[i * M + j] -= f * a[k * M + j];
                        }
                }
                sl_tensor_set_f64(y, b, det);
        }
        return SL_OK;
}

/* Window functions (17): w[n] = sum_k coef[k] cos(2 pi k n / D), D = size when
 * periodic (the default), size - 1 when symmetric. */
static sl_err_t window(sl_opctx_t *c, const double *coef, int ncoef)
{
        const sl_tensor_t *sz = c->in[0];
        sl_dtype_t dt = (sl_dtype_t)sl_attr_int(c->node, "output_datatype", SL_DT_FLOAT);
        bool periodic = sl_attr_int(c->node, "periodic", 1) != 0;
        int64_t n;
        double den;
        sl_tensor_t *y;

        if (!sz || sl_tensor_numel(sz) != 1 || sl_dtype_is_float(sz->dtype))
                return sl_op_fail(c, SL_ERR_MODEL, "size must be one integer");
        n = sl_tensor_get_i64(sz, 0);
        if (n < 0 || !sl_dtype_size(dt) || dt == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "size %lld or output_datatype %d",
                                  (long long)n, (int)dt);
        if (!(y = sl_op_output(c, 0, dt, 1, &n)))
                return SL_ERR_NOMEM;
        den = periodic ? (double)n : (double)(n - 1);
        for (int64_t i = 0; i < n; i++) {
                double v = 0;
                for (int k = 0; k < ncoef; k++)
                        v += coef[k] * (den > 0 ? cos(2 * M_PI * k * (double)i / den) : 1.0);
                sl_tensor_set_f64(y, i, v);
        }
        return SL_OK;
}

sl_err_t sl_op_hann_window(sl_opctx_t *c)
{
        static const double k[] = {0.5, -0.5};
        return window(c, k, 2);
}

sl_err_t sl_op_hamming_window(sl_opctx_t *c)
{
        static const double k[] = {25.0 / 46.0, -21.0 / 46.0};
        return window(c, k, 2);
}

sl_err_t sl_op_blackman_window(sl_opctx_t *c)
{
        static const double k[] = {0.42, -0.5, 0.08};
        return window(c, k, 3);
}
