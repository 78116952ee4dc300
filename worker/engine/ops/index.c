/*
 * Index and selection operators: Trilu, CumSum, OneHot, TopK, NonZero,
 * ScatterElements (and Scatter), GatherND, DepthToSpace, SpaceToDepth, EyeLike.
 * @sa ONNX operator spec, sections of the same names.
 */
#include <stdlib.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

#define EL(t, i)  ((char *)(t)->data + (size_t)(i)*esz)
#define CEL(t, i) ((const char *)(t)->data + (size_t)(i)*esz)

static bool scalar_int(const sl_tensor_t *t, int64_t *v)
{
        if (!t || sl_tensor_numel(t) != 1 || (t->dtype != SL_DT_INT64 && t->dtype != SL_DT_INT32))
                return false;
        *v = sl_tensor_get_i64(t, 0);
        return true;
}

sl_err_t sl_op_trilu(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t k = 0, rows, cols, mats;
        bool upper = sl_attr_int(c->node, "upper", 1) != 0;
        size_t esz;
        sl_tensor_t *y;

        if (!x || x->ndim < 2)
                return sl_op_fail(c, SL_ERR_SHAPE, "input of rank >= 2 required");
        if (sl_op_in(c, 1) && !scalar_int(c->in[1], &k))
                return sl_op_fail(c, SL_ERR_SHAPE, "k must be an int64 scalar");
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        rows = x->dims[x->ndim - 2];
        cols = x->dims[x->ndim - 1];
        mats = rows * cols != 0 ? sl_tensor_numel(x) / (rows * cols) : 0;
        for (int64_t m = 0; m < mats; m++)
                for (int64_t i = 0; i < rows; i++)
                        for (int64_t j = 0; j < cols; j++) {
                                int64_t o = (m * rows + i) * cols + j;
                                bool keep = upper ? j - i >= k : j - i <= k;
                                if (keep)
                                        memcpy(EL(y, o), CEL(x, o), esz);
                                else
                                        memset(EL(y, o), 0, esz);
                        }
        return SL_OK;
}

sl_err_t sl_op_cumsum(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        bool excl = sl_attr_int(c->node, "exclusive", 0) != 0;
        bool rev = sl_attr_int(c->node, "reverse", 0) != 0;
        int64_t axis, outer = 1, len, inner = 1;
        sl_tensor_t *y;
        int ax;

        if (!x || !scalar_int(sl_op_in(c, 1), &axis) || (ax = sl_axis(axis, x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "input and a valid scalar axis required");
        if (!sl_dtype_size(x->dtype) || x->dtype == SL_DT_BOOL || x->dtype == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "type %s", sl_dtype_name(x->dtype));
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        for (int i = 0; i < x->ndim; i++)
                if (i < ax)
                        outer *= x->dims[i];
                else if (i > ax)
                        inner *= x->dims[i];
        len = x->dims[ax];
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        double acc = 0;
                        int64_t iacc = 0;
                        for (int64_t s = 0; s < len; s++) {
                                int64_t i = rev ? len - 1 - s : s;
                                int64_t idx = (o * len + i) * inner + in;
                                if (sl_dtype_is_float(x->dtype)) {
                                        double v = sl_tensor_get_f64(x, idx);
                                        sl_tensor_set_f64(y, idx, excl ? acc : acc + v);
                                        acc += v;
                                } else {
                                        int64_t v = sl_tensor_get_i64(x, idx);
                                        sl_tensor_set_i64(y, idx, excl ? iacc : iacc + v);
                                        iacc += v;
                                }
                        }
                }
        return SL_OK;
}

sl_err_t sl_op_one_hot(sl_opctx_t *c)
{
        const sl_tensor_t *ind = c->in[0], *dep = sl_op_in(c, 1), *val = sl_op_in(c, 2);
        int64_t dims[SL_MAX_DIMS], depth, outer = 1, inner = 1, n;
        int ax, nd;
        size_t esz;
        sl_tensor_t *y;

        if (!ind || !dep || !val || sl_tensor_numel(dep) != 1 || sl_tensor_numel(val) != 2 ||
            ind->ndim + 1 > SL_MAX_DIMS)
                return sl_op_fail(c, SL_ERR_SHAPE, "indices, scalar depth, 2 values required");
        depth = (int64_t)sl_tensor_get_f64(dep, 0);
        nd = ind->ndim + 1;
        if (depth < 0 || (ax = sl_axis(sl_attr_int(c->node, "axis", -1), nd, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "bad depth or axis");
        for (int i = 0, j = 0; i < nd; i++)
                dims[i] = i == ax ? depth : ind->dims[j++];
        if (!(y = sl_op_output(c, 0, val->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(val->dtype);
        for (int i = 0; i < ind->ndim; i++)
                if (i < ax)
                        outer *= ind->dims[i];
                else
                        inner *= ind->dims[i];
        n = sl_tensor_numel(y);
        for (int64_t i = 0; i < n; i++)
                memcpy(EL(y, i), CEL(val, 0), esz);
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        int64_t k = (int64_t)sl_tensor_get_f64(ind, o * inner + in);
                        if (k < 0)
                                k += depth;
                        if (k >= 0 && k < depth)
                                memcpy(EL(y, (o * depth + k) * inner + in), CEL(val, 1), esz);
                }
        return SL_OK;
}

typedef struct {
        const sl_tensor_t *x;
        int64_t base, stride;
        bool largest;
} topk_ctx_t;

static int topk_cmp(const void *pa, const void *pb, void *vctx)
{
        const topk_ctx_t *t = vctx;
        int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
        double va = sl_tensor_get_f64(t->x, t->base + a * t->stride);
        double vb = sl_tensor_get_f64(t->x, t->base + b * t->stride);
        if (va != vb)
                return (t->largest ? va > vb : va < vb) ? -1 : 1;
        return a < b ? -1 : (a > b);
}

sl_err_t sl_op_topk(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t k, dims[SL_MAX_DIMS], outer = 1, len, inner = 1, *idx;
        int ax;
        size_t esz;
        sl_tensor_t *vals, *inds;
        topk_ctx_t t;

        if (!x || !sl_op_in(c, 1) || sl_tensor_numel(c->in[1]) != 1 ||
            (ax = sl_axis(sl_attr_int(c->node, "axis", -1), x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "input, K and a valid axis required");
        k = sl_tensor_get_i64(c->in[1], 0);
        len = x->dims[ax];
        if (k < 0 || k > len)
                return sl_op_fail(c, SL_ERR_SHAPE, "K=%lld out of range", (long long)k);
        memcpy(dims, x->dims, sizeof(dims));
        dims[ax] = k;
        if (!(vals = sl_op_output(c, 0, x->dtype, x->ndim, dims)) ||
            !(inds = sl_op_output(c, 1, SL_DT_INT64, x->ndim, dims)))
                return SL_ERR_NOMEM;
        if (!(idx = sl_op_scratch(c, sizeof(int64_t) * (size_t)(len ? len : 1))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        for (int i = 0; i < x->ndim; i++)
                if (i < ax)
                        outer *= x->dims[i];
                else if (i > ax)
                        inner *= x->dims[i];
        esz = sl_dtype_size(x->dtype);
        t.x = x;
        t.stride = inner;
        t.largest = sl_attr_int(c->node, "largest", 1) != 0;
        for (int64_t o = 0; o < outer; o++)
                for (int64_t in = 0; in < inner; in++) {
                        t.base = o * len * inner + in;
                        for (int64_t i = 0; i < len; i++)
                                idx[i] = i;
                        qsort_r(idx, (size_t)len, sizeof(int64_t), topk_cmp, &t);
                        for (int64_t i = 0; i < k; i++) {
                                int64_t oi = (o * k + i) * inner + in;
                                memcpy(EL(vals, oi), CEL(x, t.base + idx[i] * inner), esz);
                                ((int64_t *)inds->data)[oi] = idx[i];
                        }
                }
        return SL_OK;
}

sl_err_t sl_op_nonzero(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t n, nnz = 0, dims[2], j = 0;
        sl_tensor_t *y;

        if (!x || !sl_dtype_size(x->dtype) || x->dtype == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "numeric input required");
        n = sl_tensor_numel(x);
        for (int64_t i = 0; i < n; i++)
                nnz += sl_tensor_get_f64(x, i) != 0;
        dims[0] = x->ndim;
        dims[1] = nnz;
        if (!(y = sl_op_output(c, 0, SL_DT_INT64, 2, dims)))
                return SL_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i;
                if (sl_tensor_get_f64(x, i) == 0)
                        continue;
                for (int d = x->ndim - 1; d >= 0; d--) {
                        ((int64_t *)y->data)[d * nnz + j] = rem % x->dims[d];
                        rem /= x->dims[d];
                }
                j++;
        }
        return SL_OK;
}

sl_err_t sl_op_scatter_elements(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *ind = sl_op_in(c, 1), *upd = sl_op_in(c, 2);
        char buf[16];
        const char *red = sl_attr_string(c->node, "reduction", "none", buf, sizeof(buf));
        int64_t xs[SL_MAX_DIMS], n;
        int ax;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !ind || !upd || ind->ndim != x->ndim || upd->ndim != x->ndim ||
            upd->dtype != x->dtype || sl_tensor_numel(ind) != sl_tensor_numel(upd))
                return sl_op_fail(c, SL_ERR_SHAPE, "data, indices, updates of equal rank");
        if ((ax = sl_axis(sl_attr_int(c->node, "axis", 0), x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        memcpy(y->data, x->data, x->nbytes);
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        n = sl_tensor_numel(ind);
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0, k = sl_tensor_get_i64(ind, i);
                if (k < 0)
                        k += x->dims[ax];
                if (k < 0 || k >= x->dims[ax])
                        return sl_op_fail(c, SL_ERR_SHAPE, "index out of range");
                for (int d = x->ndim - 1; d >= 0; d--) {
                        int64_t id = rem % ind->dims[d];
                        rem /= ind->dims[d];
                        off += (d == ax ? k : id) * xs[d];
                }
                if (!strcmp(red, "none")) {
                        memcpy(EL(y, off), CEL(upd, i), esz);
                } else {
                        double a = sl_tensor_get_f64(y, off), b = sl_tensor_get_f64(upd, i);
                        double r = !strcmp(red, "add")   ? a + b
                                   : !strcmp(red, "mul") ? a * b
                                   : !strcmp(red, "max") ? (a > b ? a : b)
                                                         : (a < b ? a : b);
                        sl_tensor_set_f64(y, off, r);
                }
        }
        return SL_OK;
}

sl_err_t sl_op_gather_nd(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *ind = sl_op_in(c, 1);
        int64_t b = sl_attr_int(c->node, "batch_dims", 0), dims[SL_MAX_DIMS], k, nb = 1, ni = 1;
        int64_t slice = 1, xs[SL_MAX_DIMS];
        int nd = 0;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !ind || ind->ndim < 1 || b < 0 || b >= ind->ndim || b >= x->ndim)
                return sl_op_fail(c, SL_ERR_SHAPE, "data and indices of rank >= 1 required");
        k = ind->dims[ind->ndim - 1];
        if (k < 1 || b + k > x->ndim)
                return sl_op_fail(c, SL_ERR_SHAPE, "index tuple length %lld too large",
                                  (long long)k);
        for (int i = 0; i < b; i++) {
                if (ind->dims[i] != x->dims[i])
                        return sl_op_fail(c, SL_ERR_SHAPE, "batch dimensions differ");
                dims[nd++] = x->dims[i];
                nb *= x->dims[i];
        }
        for (int i = (int)b; i < ind->ndim - 1; i++) {
                dims[nd++] = ind->dims[i];
                ni *= ind->dims[i];
        }
        for (int i = (int)(b + k); i < x->ndim; i++) {
                if (nd >= SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_SHAPE, "output rank too large");
                dims[nd++] = x->dims[i];
                slice *= x->dims[i];
        }
        if (!(y = sl_op_output(c, 0, x->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        for (int64_t bi = 0; bi < nb; bi++)
                for (int64_t j = 0; j < ni; j++) {
                        int64_t off = bi * (b ? xs[b - 1] : 0);
                        for (int64_t t = 0; t < k; t++) {
                                int64_t v = sl_tensor_get_i64(ind, (bi * ni + j) * k + t);
                                int64_t d = x->dims[b + t];
                                if (v < 0)
                                        v += d;
                                if (v < 0 || v >= d)
                                        return sl_op_fail(c, SL_ERR_SHAPE, "index out of range");
                                off += v * xs[b + t];
                        }
                        memcpy(EL(y, (bi * ni + j) * slice), CEL(x, off), (size_t)slice * esz);
                }
        return SL_OK;
}

static sl_err_t depth_space(sl_opctx_t *c, bool to_space)
{
        const sl_tensor_t *x = c->in[0];
        int64_t bs = sl_attr_int(c->node, "blocksize", 0), N, C, H, W, dims[4];
        char buf[8];
        bool crd = !strcmp(sl_attr_string(c->node, "mode", "DCR", buf, sizeof(buf)), "CRD");
        size_t esz;
        sl_tensor_t *y;

        if (!x || x->ndim != 4 || bs < 1)
                return sl_op_fail(c, SL_ERR_SHAPE, "4-D input and blocksize >= 1 required");
        N = x->dims[0];
        C = x->dims[1];
        H = x->dims[2];
        W = x->dims[3];
        if (to_space ? C % (bs * bs) : (H % bs || W % bs))
                return sl_op_fail(c, SL_ERR_SHAPE, "dimensions not divisible by blocksize");
        dims[0] = N;
        dims[1] = to_space ? C / (bs * bs) : C * bs * bs;
        dims[2] = to_space ? H * bs : H / bs;
        dims[3] = to_space ? W * bs : W / bs;
        if (!(y = sl_op_output(c, 0, x->dtype, 4, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        /* Iterate the space side (small C, large H W) and map to the depth side. */
        {
                int64_t Cs = to_space ? dims[1] : C, Hs = to_space ? dims[2] : H;
                int64_t Ws = to_space ? dims[3] : W, Cd = Cs * bs * bs, Hd = Hs / bs, Wd = Ws / bs;
                for (int64_t n = 0; n < N; n++)
                        for (int64_t ch = 0; ch < Cs; ch++)
                                for (int64_t h = 0; h < Hs; h++)
                                        for (int64_t w = 0; w < Ws; w++) {
                                                int64_t i = h % bs, j = w % bs;
                                                int64_t cd = crd ? ch * bs * bs + i * bs + j
                                                                 : (i * bs + j) * Cs + ch;
                                                int64_t so = ((n * Cs + ch) * Hs + h) * Ws + w;
                                                int64_t dof =
                                                    ((n * Cd + cd) * Hd + h / bs) * Wd + w / bs;
                                                if (to_space)
                                                        memcpy(EL(y, so), CEL(x, dof), esz);
                                                else
                                                        memcpy(EL(y, dof), CEL(x, so), esz);
                                        }
        }
        return SL_OK;
}

sl_err_t sl_op_depth_to_space(sl_opctx_t *c)
{
        return depth_space(c, true);
}

sl_err_t sl_op_space_to_depth(sl_opctx_t *c)
{
        return depth_space(c, false);
}

sl_err_t sl_op_eye_like(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        sl_dtype_t dt = x ? (sl_dtype_t)sl_attr_int(c->node, "dtype", x->dtype) : SL_DT_FLOAT;
        int64_t k = sl_attr_int(c->node, "k", 0);
        sl_tensor_t *y;

        if (!x || x->ndim != 2 || !sl_dtype_size(dt) || dt == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_SHAPE, "2-D input and a supported dtype required");
        if (!(y = sl_op_output_like(c, 0, dt, x)))
                return SL_ERR_NOMEM;
        memset(y->data, 0, y->nbytes);
        for (int64_t i = 0; i < x->dims[0]; i++)
                if (i + k >= 0 && i + k < x->dims[1])
                        sl_tensor_set_i64(y, i * x->dims[1] + i + k, 1);
        return SL_OK;
}

sl_err_t sl_op_scatter_nd(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *ind = sl_op_in(c, 1), *upd = sl_op_in(c, 2);
        char buf[16];
        const char *red = sl_attr_string(c->node, "reduction", "none", buf, sizeof(buf));
        int64_t k, ni, slice = 1, xs[SL_MAX_DIMS];
        size_t esz;
        sl_tensor_t *y;

        if (!x || !ind || !upd || ind->ndim < 1 || upd->dtype != x->dtype)
                return sl_op_fail(c, SL_ERR_SHAPE, "data, indices, updates required");
        k = ind->dims[ind->ndim - 1];
        if (k < 1 || k > x->ndim)
                return sl_op_fail(c, SL_ERR_SHAPE, "bad index tuple length");
        ni = sl_tensor_numel(ind) / k;
        for (int i = (int)k; i < x->ndim; i++)
                slice *= x->dims[i];
        if (sl_tensor_numel(upd) != ni * slice)
                return sl_op_fail(c, SL_ERR_SHAPE, "updates shape does not match");
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)))
                return SL_ERR_NOMEM;
        memcpy(y->data, x->data, x->nbytes);
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        for (int64_t j = 0; j < ni; j++) {
                int64_t off = 0;
                for (int64_t t = 0; t < k; t++) {
                        int64_t v = sl_tensor_get_i64(ind, j * k + t), d = x->dims[t];
                        if (v < 0)
                                v += d;
                        if (v < 0 || v >= d)
                                return sl_op_fail(c, SL_ERR_SHAPE, "index out of range");
                        off += v * xs[t];
                }
                if (!strcmp(red, "none")) {
                        memcpy(EL(y, off), CEL(upd, j * slice), (size_t)slice * esz);
                        continue;
                }
                for (int64_t s = 0; s < slice; s++) {
                        double a = sl_tensor_get_f64(y, off + s);
                        double b = sl_tensor_get_f64(upd, j * slice + s);
                        double r = !strcmp(red, "add")   ? a + b
                                   : !strcmp(red, "mul") ? a * b
                                   : !strcmp(red, "max") ? (a > b ? a : b)
                                                         : (a < b ? a : b);
                        sl_tensor_set_f64(y, off + s, r);
                }
        }
        return SL_OK;
}
