/*
 * Shape plumbing: Reshape (0, -1, allowzero), Flatten, Shape, Size, Squeeze,
 * Unsqueeze (axes as attribute before opset 13, as input from 13), Identity,
 * Dropout (inference; training mode in random.c), Constant, ConstantOfShape, Expand, Range.
 * These operators copy bytes and work on every element type.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

int sl_read_ints(const sl_tensor_t *t, int64_t *out, int max)
{
        int64_t n = sl_tensor_numel(t);
        if (t->dtype != SL_DT_INT64 && t->dtype != SL_DT_INT32)
                return -1;
        if (n > max)
                return -1;
        for (int64_t i = 0; i < n; i++)
                out[i] = sl_tensor_get_i64(t, i);
        return (int)n;
}

static sl_err_t copy_as(sl_opctx_t *c, const sl_tensor_t *x, int ndim, const int64_t *dims)
{
        sl_tensor_t *y;
        if (sl_dims_numel(ndim, dims) != sl_tensor_numel(x))
                return sl_op_fail(c, SL_ERR_SHAPE, "element count changes (%lld)",
                                  (long long)sl_tensor_numel(x));
        if (!(y = sl_op_output(c, 0, x->dtype, ndim, dims)))
                return SL_ERR_NOMEM;
        if (x->nbytes)
                memcpy(y->data, x->data, x->nbytes);
        return SL_OK;
}

sl_err_t sl_op_identity(sl_opctx_t *c)
{
        if (!c->in[0])
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        return copy_as(c, c->in[0], c->in[0]->ndim, c->in[0]->dims);
}

sl_err_t sl_op_dropout(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *r = sl_op_in(c, 1), *tm = sl_op_in(c, 2);
        sl_err_t err;
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (tm && sl_tensor_numel(tm) == 1 && sl_tensor_get_i64(tm, 0))
                return sl_dropout_train(
                    c, x, r && sl_tensor_numel(r) == 1 ? sl_tensor_get_f64(r, 0) : 0.5);
        if ((err = copy_as(c, x, x->ndim, x->dims)))
                return err;
        if (sl_op_has_output(c, 1)) {
                sl_tensor_t *mask = sl_op_output_like(c, 1, SL_DT_BOOL, x);
                if (!mask)
                        return SL_ERR_NOMEM;
                memset(mask->data, 1, mask->nbytes);
        }
        return SL_OK;
}

sl_err_t sl_op_reshape(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *s = sl_op_in(c, 1);
        int64_t dims[SL_MAX_DIMS], known = 1, n;
        const int64_t *ad = NULL;
        int nd, infer = -1;
        bool allowzero = sl_attr_int(c->node, "allowzero", 0) != 0;

        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (s) {
                if ((nd = sl_read_ints(s, dims, SL_MAX_DIMS)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "shape must be int64 of rank <= %d",
                                          SL_MAX_DIMS);
        } else {
                if ((nd = sl_attr_ints(c->node, "shape", &ad)) < 0 || nd > SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_MODEL, "shape required");
                memcpy(dims, ad, sizeof(int64_t) * (size_t)nd);
        }
        for (int i = 0; i < nd; i++) {
                if (dims[i] == 0 && !allowzero) {
                        if (i >= x->ndim)
                                return sl_op_fail(c, SL_ERR_SHAPE, "0 at axis %d beyond rank", i);
                        dims[i] = x->dims[i];
                }
                if (dims[i] == -1) {
                        if (infer >= 0)
                                return sl_op_fail(c, SL_ERR_SHAPE, "more than one -1");
                        infer = i;
                        continue;
                }
                if (dims[i] < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "negative dimension");
                known *= dims[i];
        }
        n = sl_tensor_numel(x);
        if (infer >= 0) {
                if (!known || n % known)
                        return sl_op_fail(c, SL_ERR_SHAPE, "cannot infer -1 from %lld elements",
                                          (long long)n);
                dims[infer] = n / known;
        }
        return copy_as(c, x, nd, dims);
}

sl_err_t sl_op_flatten(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int ax = x ? sl_axis(sl_attr_int(c->node, "axis", 1), x->ndim, true) : -1;
        int64_t dims[2] = {1, 1};
        if (ax < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        for (int i = 0; i < x->ndim; i++)
                dims[i < ax ? 0 : 1] *= x->dims[i];
        return copy_as(c, x, 2, dims);
}

sl_err_t sl_op_shape(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t start = sl_attr_int(c->node, "start", 0), end, n;
        sl_tensor_t *y;
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        end = sl_attr_int(c->node, "end", x->ndim);
        if (start < 0)
                start += x->ndim;
        if (end < 0)
                end += x->ndim;
        start = start < 0 ? 0 : (start > x->ndim ? x->ndim : start);
        end = end < 0 ? 0 : (end > x->ndim ? x->ndim : end);
        n = end > start ? end - start : 0;
        if (!(y = sl_op_output(c, 0, SL_DT_INT64, 1, &n)))
                return SL_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++)
                ((int64_t *)y->data)[i] = x->dims[start + i];
        return SL_OK;
}

sl_err_t sl_op_size(sl_opctx_t *c)
{
        sl_tensor_t *y;
        if (!c->in[0])
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (!(y = sl_op_output(c, 0, SL_DT_INT64, 0, NULL)))
                return SL_ERR_NOMEM;
        *(int64_t *)y->data = sl_tensor_numel(c->in[0]);
        return SL_OK;
}

/* Axes from the attribute (opset < 13) or input 1 (opset >= 13); -1 when absent. */
static int get_axes(sl_opctx_t *c, int64_t *axes)
{
        const int64_t *a;
        int n;
        if (sl_op_in(c, 1))
                return sl_read_ints(c->in[1], axes, SL_MAX_DIMS);
        if ((n = sl_attr_ints(c->node, "axes", &a)) < 0)
                return -2;
        if (n > SL_MAX_DIMS)
                return -1;
        memcpy(axes, a, sizeof(int64_t) * (size_t)n);
        return n;
}

sl_err_t sl_op_squeeze(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t axes[SL_MAX_DIMS], dims[SL_MAX_DIMS];
        bool drop[SL_MAX_DIMS] = {false};
        int na, nd = 0;
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if ((na = get_axes(c, axes)) == -1)
                return sl_op_fail(c, SL_ERR_SHAPE, "bad axes");
        for (int i = 0; i < x->ndim; i++)
                drop[i] = na == -2 && x->dims[i] == 1;
        for (int i = 0; i < na; i++) {
                int a = sl_axis(axes[i], x->ndim, false);
                if (a < 0 || x->dims[a] != 1)
                        return sl_op_fail(c, SL_ERR_SHAPE, "cannot squeeze axis %lld",
                                          (long long)axes[i]);
                drop[a] = true;
        }
        for (int i = 0; i < x->ndim; i++)
                if (!drop[i])
                        dims[nd++] = x->dims[i];
        return copy_as(c, x, nd, dims);
}

sl_err_t sl_op_unsqueeze(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t axes[SL_MAX_DIMS], dims[SL_MAX_DIMS];
        bool ins[SL_MAX_DIMS] = {false};
        int na, nd, j = 0;
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if ((na = get_axes(c, axes)) < 0 || x->ndim + na > SL_MAX_DIMS)
                return sl_op_fail(c, SL_ERR_SHAPE, "bad or missing axes");
        nd = x->ndim + na;
        for (int i = 0; i < na; i++) {
                int a = sl_axis(axes[i], nd, false);
                if (a < 0 || ins[a])
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axis %lld", (long long)axes[i]);
                ins[a] = true;
        }
        for (int i = 0; i < nd; i++)
                dims[i] = ins[i] ? 1 : x->dims[j++];
        return copy_as(c, x, nd, dims);
}

/*
 * The tensor of attribute \p tp, decoded in the first run into the node's
 * session cache (the tensor, then its data block) so that later runs neither
 * decode nor allocate. A string tensor's bytes go into the block too
 * (sl_tensor_copy_block()): outputs copy its pointers, so the bytes must
 * live as long as the session, not only as long as the kernel. \p t is a
 * view of the cache.
 */
static sl_err_t attr_tensor(sl_opctx_t *c, const Onnx__TensorProto *tp, sl_tensor_t *t)
{
        const size_t hdr = (sizeof(sl_tensor_t) + 63) & ~(size_t)63;
        sl_tensor_t *ct, tmp;
        size_t size;
        bool fresh;
        sl_err_t err = SL_OK;

        /* The first run grows the cache once it knows the size; later runs
         * ask for the header only and get the decoded block back as it is. */
        if (!(ct = sl_op_node_cache(c, hdr, &fresh)))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        if (fresh)
                ct->dtype = SL_DT_UNDEFINED; /* not decoded yet */
        if (ct->dtype != SL_DT_UNDEFINED) {
                *t = *ct;
                return SL_OK;
        }
        if ((err = sl_tensor_from_proto(tp, &tmp, c->errstr, c->errstr_size)))
                return err;
        if ((size = sl_tensor_block_size(&tmp)) > SL_TENSOR_BYTES_MAX - hdr)
                err = sl_op_fail(c, SL_ERR_MODEL, "tensor attribute: too large");
        else if (!(ct = sl_op_node_cache(c, hdr + size, &fresh)))
                err = sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        else
                sl_tensor_copy_block(ct, &tmp, (char *)ct + hdr);
        free(tmp.data);
        if (!err)
                *t = *ct;
        return err;
}

sl_err_t sl_op_constant(sl_opctx_t *c)
{
        const Onnx__AttributeProto *a;
        sl_tensor_t *y, tmp;
        sl_err_t err;

        if ((a = sl_attr_find(c->node, "value")) && a->t) {
                if ((err = attr_tensor(c, a->t, &tmp)))
                        return err;
                if (!(y = sl_op_output_like(c, 0, tmp.dtype, &tmp)))
                        return SL_ERR_NOMEM;
                if (tmp.nbytes) /* string pointers point into the node's cache */
                        memcpy(y->data, tmp.data, tmp.nbytes);
                return SL_OK;
        }
        if ((a = sl_attr_find(c->node, "value_float")) ||
            (a = sl_attr_find(c->node, "value_int"))) {
                bool f = a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
                if (!(y = sl_op_output(c, 0, f ? SL_DT_FLOAT : SL_DT_INT64, 0, NULL)))
                        return SL_ERR_NOMEM;
                if (f)
                        *(float *)y->data = a->f;
                else
                        *(int64_t *)y->data = a->i;
                return SL_OK;
        }
        if ((a = sl_attr_find(c->node, "value_floats")) ||
            (a = sl_attr_find(c->node, "value_ints"))) {
                bool f = a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
                int64_t n = f ? (int64_t)a->n_floats : (int64_t)a->n_ints;
                if (!(y = sl_op_output(c, 0, f ? SL_DT_FLOAT : SL_DT_INT64, 1, &n)))
                        return SL_ERR_NOMEM;
                if (n)
                        memcpy(y->data, f ? (void *)a->floats : (void *)a->ints, y->nbytes);
                return SL_OK;
        }
        return sl_op_fail(c, SL_ERR_UNSUPPORTED, "Constant without a supported value attribute");
}

sl_err_t sl_op_constant_of_shape(sl_opctx_t *c)
{
        const Onnx__AttributeProto *a = sl_attr_find(c->node, "value");
        int64_t dims[SL_MAX_DIMS], n;
        int nd;
        sl_tensor_t val = {0}, *y;
        float zero = 0;
        size_t esz;
        sl_err_t err;

        if (!c->in[0] || (nd = sl_read_ints(c->in[0], dims, SL_MAX_DIMS)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "shape input must be int64, rank <= %d",
                                  SL_MAX_DIMS);
        if (a && a->t) {
                if ((err = attr_tensor(c, a->t, &val)))
                        return err;
                if (sl_tensor_numel(&val) != 1)
                        return sl_op_fail(c, SL_ERR_SHAPE, "value must have one element");
        } else {
                val.dtype = SL_DT_FLOAT;
                val.data = &zero;
        }
        if (!(y = sl_op_output(c, 0, val.dtype, nd, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(val.dtype);
        n = sl_tensor_numel(y);
        if (esz <= 8 && val.dtype != SL_DT_STRING) {
                /* Numbers: a zero value (the usual initial state) is one
                 * memset; anything else doubles the filled prefix. */
                static const char zeros[8];
                size_t done = n ? esz : 0, total = (size_t)n * esz;
                if (!memcmp(val.data, zeros, esz)) {
                        memset(y->data, 0, total);
                        return SL_OK;
                }
                if (n)
                        memcpy(y->data, val.data, esz);
                while (done < total) {
                        size_t k = done < total - done ? done : total - done;
                        memcpy((char *)y->data + done, y->data, k);
                        done += k;
                }
                return SL_OK;
        }
        for (int64_t i = 0; i < n; i++)
                memcpy((char *)y->data + (size_t)i * esz, val.data, esz);
        return SL_OK;
}

sl_err_t sl_op_expand(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t shp[SL_MAX_DIMS], dims[SL_MAX_DIMS], st[SL_MAX_DIMS], n;
        int ns, nd;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !sl_op_in(c, 1) || (ns = sl_read_ints(c->in[1], shp, SL_MAX_DIMS)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "int64 shape input required");
        if (sl_broadcast_shape(x->ndim, x->dims, ns, shp, &nd, dims))
                return sl_op_fail(c, SL_ERR_SHAPE, "shape is not broadcastable");
        if (!(y = sl_op_output(c, 0, x->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        sl_broadcast_strides(x, nd, dims, st);
        esz = sl_dtype_size(x->dtype);
        n = sl_tensor_numel(y);
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0;
                for (int d = nd - 1; d >= 0; d--) {
                        off += (rem % dims[d]) * st[d];
                        rem /= dims[d];
                }
                memcpy((char *)y->data + (size_t)i * esz, (const char *)x->data + (size_t)off * esz,
                       esz);
        }
        return SL_OK;
}

sl_err_t sl_op_range(sl_opctx_t *c)
{
        const sl_tensor_t *s = c->in[0], *l = sl_op_in(c, 1), *d = sl_op_in(c, 2);
        double start, limit, delta;
        int64_t n;
        sl_tensor_t *y;
        if (!s || !l || !d || sl_tensor_numel(s) != 1 || sl_tensor_numel(l) != 1 ||
            sl_tensor_numel(d) != 1)
                return sl_op_fail(c, SL_ERR_SHAPE, "scalar start, limit, delta required");
        start = sl_tensor_get_f64(s, 0);
        limit = sl_tensor_get_f64(l, 0);
        delta = sl_tensor_get_f64(d, 0);
        if (delta == 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "delta is 0");
        n = (int64_t)ceil((limit - start) / delta);
        if (n < 0)
                n = 0;
        if (!(y = sl_op_output(c, 0, s->dtype, 1, &n)))
                return SL_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++) {
                if (sl_dtype_is_float(s->dtype))
                        sl_tensor_set_f64(y, i, start + (double)i * delta);
                else
                        sl_tensor_set_i64(y, i,
                                          sl_tensor_get_i64(s, 0) + i * sl_tensor_get_i64(d, 0));
        }
        return SL_OK;
}
