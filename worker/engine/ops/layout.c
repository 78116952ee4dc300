/*
 * Data movement: Concat, Split, Slice, Gather, GatherElements, Transpose,
 * Tile, Pad (constant/reflect/edge/wrap). Element-type agnostic (bytes).
 */
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

#define EL(t, i)  ((char *)(t)->data + (size_t)(i)*esz)
#define CEL(t, i) ((const char *)(t)->data + (size_t)(i)*esz)

sl_err_t sl_op_concat(sl_opctx_t *c)
{
        const sl_tensor_t *x0 = c->in[0];
        int64_t dims[SL_MAX_DIMS], outer = 1, inner = 1, off = 0;
        int ax;
        size_t esz;
        sl_tensor_t *y;

        if (!x0)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if ((ax = sl_axis(sl_attr_int(c->node, "axis", 0), x0->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        memcpy(dims, x0->dims, sizeof(dims));
        dims[ax] = 0;
        for (int k = 0; k < c->n_in; k++) {
                const sl_tensor_t *x = c->in[k];
                if (!x || x->ndim != x0->ndim || x->dtype != x0->dtype)
                        return sl_op_fail(c, SL_ERR_SHAPE, "input #%d rank or type differs", k);
                for (int i = 0; i < x->ndim; i++)
                        if (i != ax && x->dims[i] != x0->dims[i])
                                return sl_op_fail(c, SL_ERR_SHAPE, "input #%d shape differs", k);
                dims[ax] += x->dims[ax];
        }
        if (!(y = sl_op_output(c, 0, x0->dtype, x0->ndim, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x0->dtype);
        for (int i = 0; i < ax; i++)
                outer *= dims[i];
        for (int i = ax + 1; i < x0->ndim; i++)
                inner *= dims[i];
        for (int k = 0; k < c->n_in; k++) {
                const sl_tensor_t *x = c->in[k];
                int64_t row = x->dims[ax] * inner;
                for (int64_t o = 0; o < outer; o++)
                        memcpy(EL(y, o * dims[ax] * inner + off), CEL(x, o * row),
                               (size_t)row * esz);
                off += row;
        }
        return SL_OK;
}

sl_err_t sl_op_split(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t sizes[SL_NODE_IO_MAX], outer = 1, inner = 1, off = 0, total = 0;
        const int64_t *sa;
        int ax, ns;
        size_t esz;

        if (!x || (ax = sl_axis(sl_attr_int(c->node, "axis", 0), x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "input with valid axis required");
        if (sl_op_in(c, 1)) {
                if ((ns = sl_read_ints(c->in[1], sizes, SL_NODE_IO_MAX)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad split input");
        } else if ((ns = sl_attr_ints(c->node, "split", &sa)) >= 0) {
                if (ns > SL_NODE_IO_MAX)
                        return sl_op_fail(c, SL_ERR_SHAPE, "too many splits");
                memcpy(sizes, sa, sizeof(int64_t) * (size_t)ns);
        } else {
                int64_t d = x->dims[ax], k = c->n_out, chunk = (d + k - 1) / k;
                ns = c->n_out;
                for (int i = 0; i < ns; i++) {
                        sizes[i] = d - i * chunk < chunk ? d - i * chunk : chunk;
                        if (sizes[i] < 0)
                                sizes[i] = 0;
                }
        }
        if (ns != c->n_out)
                return sl_op_fail(c, SL_ERR_SHAPE, "%d split sizes for %d outputs", ns, c->n_out);
        for (int i = 0; i < ns; i++)
                total += sizes[i];
        if (total != x->dims[ax])
                return sl_op_fail(c, SL_ERR_SHAPE, "split sizes sum to %lld, axis is %lld",
                                  (long long)total, (long long)x->dims[ax]);
        esz = sl_dtype_size(x->dtype);
        for (int i = 0; i < ax; i++)
                outer *= x->dims[i];
        for (int i = ax + 1; i < x->ndim; i++)
                inner *= x->dims[i];
        for (int k = 0; k < ns; k++) {
                int64_t dims[SL_MAX_DIMS], row = sizes[k] * inner;
                sl_tensor_t *y;
                memcpy(dims, x->dims, sizeof(dims));
                dims[ax] = sizes[k];
                if (!(y = sl_op_output(c, k, x->dtype, x->ndim, dims)))
                        return SL_ERR_NOMEM;
                for (int64_t o = 0; o < outer; o++)
                        memcpy(EL(y, o * row), CEL(x, o * x->dims[ax] * inner + off),
                               (size_t)row * esz);
                off += row;
        }
        return SL_OK;
}

/*
 * Slice whose last axis has step 1: the trailing axes taken whole, plus the
 * step-1 axis before them, are one contiguous block of x; copy those blocks
 * with memcpy instead of element by element.
 */
static void slice_blocks(const sl_tensor_t *x, sl_tensor_t *y, const int64_t *start,
                         const int64_t *step, const int64_t *dims, const int64_t *xs, size_t esz)
{
        int k = x->ndim - 1;
        int64_t blk, nblk = 1;

        while (k > 0 && dims[k] == x->dims[k] && start[k] == 0 && step[k - 1] == 1)
                k--;
        blk = dims[k] * xs[k];
        for (int d = 0; d < k; d++)
                nblk *= dims[d];
        for (int64_t i = 0; i < nblk; i++) {
                int64_t rem = i, off = start[k] * xs[k];
                for (int d = k - 1; d >= 0; d--) {
                        off += (start[d] + (rem % dims[d]) * step[d]) * xs[d];
                        rem /= dims[d];
                }
                memcpy(EL(y, i * blk), CEL(x, off), (size_t)blk * esz);
        }
}

sl_err_t sl_op_slice(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t st[SL_MAX_DIMS], en[SL_MAX_DIMS], ax[SL_MAX_DIMS], sp[SL_MAX_DIMS];
        int64_t start[SL_MAX_DIMS], step[SL_MAX_DIMS], dims[SL_MAX_DIMS], xs[SL_MAX_DIMS], n;
        int ns, ne, na = -1, nsp = -1;
        size_t esz;
        sl_tensor_t *y;

        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (c->opset < 10) {
                const int64_t *a;
                if ((ns = sl_attr_ints(c->node, "starts", &a)) < 0 || ns > SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_MODEL, "starts required");
                memcpy(st, a, sizeof(int64_t) * (size_t)ns);
                if ((ne = sl_attr_ints(c->node, "ends", &a)) != ns)
                        return sl_op_fail(c, SL_ERR_MODEL, "ends must match starts");
                memcpy(en, a, sizeof(int64_t) * (size_t)ne);
                if ((na = sl_attr_ints(c->node, "axes", &a)) > SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_MODEL, "too many axes");
                if (na > 0)
                        memcpy(ax, a, sizeof(int64_t) * (size_t)na);
        } else {
                if (!sl_op_in(c, 1) || !sl_op_in(c, 2) ||
                    (ns = sl_read_ints(c->in[1], st, SL_MAX_DIMS)) < 0 ||
                    (ne = sl_read_ints(c->in[2], en, SL_MAX_DIMS)) != ns)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad starts/ends");
                if (sl_op_in(c, 3) && (na = sl_read_ints(c->in[3], ax, SL_MAX_DIMS)) != ns)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axes");
                if (sl_op_in(c, 4) && (nsp = sl_read_ints(c->in[4], sp, SL_MAX_DIMS)) != ns)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad steps");
        }
        for (int i = 0; i < x->ndim; i++) {
                start[i] = 0;
                step[i] = 1;
                dims[i] = x->dims[i];
        }
        for (int i = 0; i < ns; i++) {
                int a = sl_axis(na >= 0 ? ax[i] : i, x->ndim, false);
                int64_t d, s = nsp >= 0 ? sp[i] : 1, b = st[i], e = en[i];
                if (a < 0 || s == 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axis or zero step");
                d = x->dims[a];
                if (b < 0)
                        b += d;
                if (e < 0)
                        e += d;
                if (s > 0) {
                        b = b < 0 ? 0 : (b > d ? d : b);
                        e = e < 0 ? 0 : (e > d ? d : e);
                        dims[a] = e > b ? (e - b + s - 1) / s : 0;
                } else {
                        b = b < 0 ? 0 : (b > d - 1 ? d - 1 : b);
                        e = e < -1 ? -1 : (e > d - 1 ? d - 1 : e);
                        dims[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
                }
                start[a] = b;
                step[a] = s;
        }
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        n = sl_tensor_numel(y);
        if (n && x->ndim > 0 && x->dtype != SL_DT_STRING && step[x->ndim - 1] == 1) {
                slice_blocks(x, y, start, step, dims, xs, esz);
                return SL_OK;
        }
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0;
                for (int d = x->ndim - 1; d >= 0; d--) {
                        off += (start[d] + (rem % dims[d]) * step[d]) * xs[d];
                        rem /= dims[d];
                }
                memcpy(EL(y, i), CEL(x, off), esz);
        }
        return SL_OK;
}

sl_err_t sl_op_gather(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *idx = sl_op_in(c, 1);
        int64_t dims[SL_MAX_DIMS], outer = 1, inner = 1, ni, d;
        int ax, nd = 0;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !idx || (idx->dtype != SL_DT_INT64 && idx->dtype != SL_DT_INT32))
                return sl_op_fail(c, SL_ERR_DATATYPE, "data and int32/int64 indices required");
        if ((ax = sl_axis(sl_attr_int(c->node, "axis", 0), x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        if (x->ndim - 1 + idx->ndim > SL_MAX_DIMS)
                return sl_op_fail(c, SL_ERR_SHAPE, "output rank too large");
        for (int i = 0; i < ax; i++)
                dims[nd++] = x->dims[i];
        for (int i = 0; i < idx->ndim; i++)
                dims[nd++] = idx->dims[i];
        for (int i = ax + 1; i < x->ndim; i++)
                dims[nd++] = x->dims[i];
        if (!(y = sl_op_output(c, 0, x->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        for (int i = 0; i < ax; i++)
                outer *= x->dims[i];
        for (int i = ax + 1; i < x->ndim; i++)
                inner *= x->dims[i];
        ni = sl_tensor_numel(idx);
        d = x->dims[ax];
        for (int64_t j = 0; j < ni; j++) {
                int64_t k = sl_tensor_get_i64(idx, j);
                if (k < 0)
                        k += d;
                if (k < 0 || k >= d)
                        return sl_op_fail(c, SL_ERR_SHAPE, "index %lld out of range [0, %lld)",
                                          (long long)sl_tensor_get_i64(idx, j), (long long)d);
        }
        for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < ni; j++) {
                        int64_t k = sl_tensor_get_i64(idx, j);
                        if (k < 0)
                                k += d;
                        memcpy(EL(y, (o * ni + j) * inner), CEL(x, (o * d + k) * inner),
                               (size_t)inner * esz);
                }
        return SL_OK;
}

sl_err_t sl_op_gather_elements(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *idx = sl_op_in(c, 1);
        int64_t xs[SL_MAX_DIMS], n;
        int ax;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !idx || idx->ndim != x->ndim ||
            (idx->dtype != SL_DT_INT64 && idx->dtype != SL_DT_INT32))
                return sl_op_fail(c, SL_ERR_SHAPE, "data and same-rank int indices required");
        if ((ax = sl_axis(sl_attr_int(c->node, "axis", 0), x->ndim, false)) < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "axis out of range");
        if (!(y = sl_op_output_like(c, 0, x->dtype, idx)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        n = sl_tensor_numel(idx);
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0, k = sl_tensor_get_i64(idx, i);
                if (k < 0)
                        k += x->dims[ax];
                if (k < 0 || k >= x->dims[ax])
                        return sl_op_fail(c, SL_ERR_SHAPE, "index out of range");
                for (int d = x->ndim - 1; d >= 0; d--) {
                        int64_t id = rem % idx->dims[d];
                        rem /= idx->dims[d];
                        off += (d == ax ? k : id) * xs[d];
                }
                memcpy(EL(y, i), CEL(x, off), esz);
        }
        return SL_OK;
}

sl_err_t sl_op_transpose(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t perm[SL_MAX_DIMS], dims[SL_MAX_DIMS], xs[SL_MAX_DIMS], ps[SL_MAX_DIMS], n;
        const int64_t *pa;
        bool seen[SL_MAX_DIMS] = {false};
        int np;
        size_t esz;
        sl_tensor_t *y;

        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if ((np = sl_attr_ints(c->node, "perm", &pa)) < 0) {
                for (int i = 0; i < x->ndim; i++)
                        perm[i] = x->ndim - 1 - i;
        } else {
                if (np != x->ndim)
                        return sl_op_fail(c, SL_ERR_SHAPE, "perm length %d for rank %d", np,
                                          x->ndim);
                for (int i = 0; i < np; i++) {
                        int a = sl_axis(pa[i], x->ndim, false);
                        if (a < 0 || seen[a])
                                return sl_op_fail(c, SL_ERR_SHAPE, "perm is not a permutation");
                        seen[a] = true;
                        perm[i] = a;
                }
        }
        sl_strides(x->ndim, x->dims, xs);
        for (int i = 0; i < x->ndim; i++) {
                dims[i] = x->dims[perm[i]];
                ps[i] = xs[perm[i]];
        }
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        n = sl_tensor_numel(y);
        if (esz == 4) {
                const uint32_t *xd = x->data;
                uint32_t *yd = y->data;
                int64_t idx[SL_MAX_DIMS] = {0}, off = 0, last, sl;
                if (!n)
                        return SL_OK;
                if (x->ndim == 0) {
                        yd[0] = xd[0];
                        return SL_OK;
                }
                /* Runs along the output's last axis (contiguous in x when the
                 * permutation keeps the last axis), odometer over the rest. */
                last = dims[x->ndim - 1];
                sl = ps[x->ndim - 1];
                for (int64_t i = 0; i < n; i += last) {
                        if (sl == 1)
                                memcpy(yd + i, xd + off, sizeof(uint32_t) * (size_t)last);
                        else
                                for (int64_t j = 0; j < last; j++)
                                        yd[i + j] = xd[off + j * sl];
                        for (int d = x->ndim - 2; d >= 0; d--) {
                                off += ps[d];
                                if (++idx[d] < dims[d])
                                        break;
                                off -= ps[d] * dims[d];
                                idx[d] = 0;
                        }
                }
                return SL_OK;
        }
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0;
                for (int d = x->ndim - 1; d >= 0; d--) {
                        off += (rem % dims[d]) * ps[d];
                        rem /= dims[d];
                }
                memcpy(EL(y, i), CEL(x, off), esz);
        }
        return SL_OK;
}

sl_err_t sl_op_tile(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        int64_t rep[SL_MAX_DIMS], dims[SL_MAX_DIMS], xs[SL_MAX_DIMS], n;
        size_t esz;
        sl_tensor_t *y;

        if (!x || !sl_op_in(c, 1) || sl_read_ints(c->in[1], rep, SL_MAX_DIMS) != x->ndim)
                return sl_op_fail(c, SL_ERR_SHAPE, "repeats must have one value per axis");
        for (int i = 0; i < x->ndim; i++) {
                if (rep[i] < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "negative repeat");
                dims[i] = x->dims[i] * rep[i];
        }
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        n = sl_tensor_numel(y);
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0;
                for (int d = x->ndim - 1; d >= 0; d--) {
                        off += ((rem % dims[d]) % x->dims[d]) * xs[d];
                        rem /= dims[d];
                }
                memcpy(EL(y, i), CEL(x, off), esz);
        }
        return SL_OK;
}

sl_err_t sl_op_pad(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0], *cv = sl_op_in(c, 2);
        int64_t pads[2 * SL_MAX_DIMS], pb[SL_MAX_DIMS], dims[SL_MAX_DIMS], xs[SL_MAX_DIMS];
        int64_t axes[SL_MAX_DIMS], n;
        char buf[16];
        const char *mode = sl_attr_string(c->node, "mode", "constant", buf, sizeof(buf));
        double value = sl_attr_float(c->node, "value", 0.0f);
        int np, na = -1;
        size_t esz;
        sl_tensor_t *y;

        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (c->opset < 11) {
                const int64_t *a;
                if ((np = sl_attr_ints(c->node, "pads", &a)) < 0 || np > 2 * SL_MAX_DIMS)
                        return sl_op_fail(c, SL_ERR_MODEL, "pads required");
                memcpy(pads, a, sizeof(int64_t) * (size_t)np);
        } else {
                if (!sl_op_in(c, 1) || (np = sl_read_ints(c->in[1], pads, 2 * SL_MAX_DIMS)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "int64 pads required");
                if (cv && sl_tensor_numel(cv) >= 1)
                        value = sl_tensor_get_f64(cv, 0);
                if (sl_op_in(c, 3) && (na = sl_read_ints(c->in[3], axes, SL_MAX_DIMS)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axes");
        }
        if (na < 0) {
                na = x->ndim;
                for (int i = 0; i < na; i++)
                        axes[i] = i;
        }
        if (np != 2 * na)
                return sl_op_fail(c, SL_ERR_SHAPE, "%d pads for %d axes", np, na);
        for (int i = 0; i < x->ndim; i++) {
                pb[i] = 0;
                dims[i] = x->dims[i];
        }
        for (int i = 0; i < na; i++) {
                int a = sl_axis(axes[i], x->ndim, false);
                if (a < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "bad axis");
                pb[a] = pads[i];
                dims[a] = x->dims[a] + pads[i] + pads[i + na];
                if (dims[a] < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "negative output size");
        }
        if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") &&
            strcmp(mode, "wrap"))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "mode '%s'", mode);
        if (!(y = sl_op_output(c, 0, x->dtype, x->ndim, dims)))
                return SL_ERR_NOMEM;
        esz = sl_dtype_size(x->dtype);
        sl_strides(x->ndim, x->dims, xs);
        n = sl_tensor_numel(y);
        for (int64_t i = 0; i < n; i++) {
                int64_t rem = i, off = 0;
                bool outside = false;
                for (int d = x->ndim - 1; d >= 0; d--) {
                        int64_t k = rem % dims[d] - pb[d], D = x->dims[d];
                        rem /= dims[d];
                        if (k < 0 || k >= D) {
                                if (mode[0] == 'c' || D == 0) {
                                        outside = true;
                                        continue;
                                }
                                if (mode[0] == 'e') {
                                        k = k < 0 ? 0 : D - 1;
                                } else if (mode[0] == 'w') {
                                        k = ((k % D) + D) % D;
                                } else if (D == 1) {
                                        k = 0;
                                } else {
                                        int64_t per = 2 * (D - 1);
                                        k = ((k % per) + per) % per;
                                        if (k >= D)
                                                k = per - k;
                                }
                        }
                        off += k * xs[d];
                }
                if (outside)
                        sl_tensor_set_f64(y, i, value);
                else
                        memcpy(EL(y, i), CEL(x, off), esz);
        }
        return SL_OK;
}
