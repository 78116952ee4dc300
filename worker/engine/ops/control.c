/*
 * Control flow with subgraphs: If, Loop and Scan. The subgraphs are loaded
 * with the model (loader.c: GRAPH attributes, outer-scope references) and
 * run through sl_op_subgraph_run(), which copies the inputs it is given, so
 * a loop-carried value may be fed straight from the previous iteration's
 * output view.
 * @sa ONNX docs/Operators.md, sections "If" (1, 11, 13, 16), "Loop" (1, 11,
 *     13, 16) and "Scan" (8, 9, 11, 16).
 */
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

static sl_err_t check_graphs(const sl_node_t *node, const char *a, const char *b, char *errstr,
                             size_t errstr_size)
{
        const Onnx__AttributeProto *ga = sl_attr_find(node, a);
        const Onnx__AttributeProto *gb = b ? sl_attr_find(node, b) : NULL;
        if (!ga || !ga->g || (b && (!gb || !gb->g))) {
                sl_strfmt(errstr, errstr_size, "graph attribute%s '%s'%s%s%s missing", b ? "s" : "",
                          a, b ? " and '" : "", b ? b : "", b ? "' are" : " is");
                return SL_ERR_MODEL;
        }
        return SL_OK;
}

sl_err_t sl_check_if(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        (void)opset;
        return check_graphs(node, "then_branch", "else_branch", errstr, errstr_size);
}

sl_err_t sl_check_loop(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        sl_err_t err = check_graphs(node, "body", NULL, errstr, errstr_size);
        const Onnx__GraphProto *g;
        (void)opset;
        if (err)
                return err;
        g = sl_attr_find(node, "body")->g;
        if (node->proto->n_input < 2 || g->n_input != node->proto->n_input || g->n_output < 1 ||
            g->n_output - 1 < node->proto->n_input - 2 ||
            node->proto->n_output != g->n_output - 1) {
                sl_strfmt(errstr, errstr_size,
                          "Loop with %zu inputs and %zu outputs does not match its body (%zu "
                          "inputs, %zu outputs)",
                          node->proto->n_input, node->proto->n_output, g->n_input, g->n_output);
                return SL_ERR_MODEL;
        }
        return SL_OK;
}

sl_err_t sl_check_scan(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        sl_err_t err = check_graphs(node, "body", NULL, errstr, errstr_size);
        const Onnx__GraphProto *g;
        int64_t m = sl_attr_int(node, "num_scan_inputs", -1);
        size_t n_in = node->proto->n_input - (opset < 9 ? 1 : 0);
        if (err)
                return err;
        g = sl_attr_find(node, "body")->g;
        if (opset < 9 && node->proto->n_input < 1)
                n_in = 0;
        if (m < 1 || (size_t)m > n_in || g->n_input != n_in ||
            g->n_output != node->proto->n_output || g->n_output < n_in - (size_t)m) {
                sl_strfmt(errstr, errstr_size,
                          "Scan (num_scan_inputs %lld, %zu inputs, %zu outputs) does not match "
                          "its body (%zu inputs, %zu outputs)",
                          (long long)m, node->proto->n_input, node->proto->n_output, g->n_input,
                          g->n_output);
                return SL_ERR_MODEL;
        }
        return SL_OK;
}

/* Output \p i = copy of \p t. */
static sl_err_t copy_out(sl_opctx_t *c, int i, const sl_tensor_t *t)
{
        sl_tensor_t *o;
        if (!sl_op_has_output(c, i))
                return SL_OK;
        if (!(o = sl_op_output_like(c, i, t->dtype, t)))
                return SL_ERR_NOMEM;
        if (t->nbytes && o->data != t->data)
                memmove(o->data, t->data, t->nbytes);
        return SL_OK;
}

static bool truth(const sl_tensor_t *t)
{
        return t && sl_tensor_numel(t) >= 1 && sl_tensor_get_f64(t, 0) != 0;
}

sl_err_t sl_op_if(sl_opctx_t *c)
{
        const sl_tensor_t *cond = c->in[0], *outs[SL_NODE_IO_MAX];
        const char *branch;
        sl_err_t err;

        if (!cond || sl_tensor_numel(cond) != 1)
                return sl_op_fail(c, SL_ERR_SHAPE, "cond must hold one element");
        branch = truth(cond) ? "then_branch" : "else_branch";
        if ((err = sl_op_subgraph_run(c, branch, NULL, 0, outs, (size_t)c->n_out)))
                return err;
        for (int i = 0; i < c->n_out; i++)
                if ((err = copy_out(c, i, outs[i])))
                        return err;
        return SL_OK;
}

/* Appends \p t as slice \p it of the stacked scan output \p i ([it+1, ...]);
 * \p first holds the first slice's shape, which every slice must have. */
static sl_err_t stack_out(sl_opctx_t *c, int i, int64_t it, const sl_tensor_t *t,
                          sl_tensor_t *first)
{
        int64_t dims[SL_MAX_DIMS];
        sl_tensor_t *o;
        if (it == 0)
                *first = *t;
        else if (t->dtype != first->dtype || t->ndim != first->ndim ||
                 memcmp(t->dims, first->dims, sizeof(int64_t) * (size_t)t->ndim))
                return sl_op_fail(c, SL_ERR_SHAPE,
                                  "scan output #%d changes shape at iteration %lld", i,
                                  (long long)it);
        if (!sl_op_has_output(c, i))
                return SL_OK;
        if (t->ndim + 1 > SL_MAX_DIMS)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "scan output #%d: rank too large", i);
        dims[0] = it + 1;
        memcpy(dims + 1, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        /* The slot's buffer grows with realloc, which keeps the earlier slices. */
        if (!(o = sl_op_output(c, i, t->dtype, t->ndim + 1, dims)))
                return SL_ERR_NOMEM;
        if (t->nbytes)
                memcpy((char *)o->data + (size_t)it * t->nbytes, t->data, t->nbytes);
        return SL_OK;
}

/* A scan output of a loop that ran no iteration: [0, declared dims...]. */
static sl_err_t empty_out(sl_opctx_t *c, int i, const sl_value_info_t *vi)
{
        int64_t dims[SL_MAX_DIMS] = {0};
        int nd = 1;
        sl_dtype_t dt = vi->dtype != SL_DT_UNDEFINED ? vi->dtype : SL_DT_FLOAT;
        bool known = vi->ndim >= 0 && vi->ndim + 1 <= SL_MAX_DIMS;
        for (int k = 0; known && k < vi->ndim; k++)
                known = vi->dims[k] >= 0;
        if (known) {
                memcpy(dims + 1, vi->dims, sizeof(int64_t) * (size_t)vi->ndim);
                nd = vi->ndim + 1;
        }
        if (!sl_op_has_output(c, i))
                return SL_OK;
        return sl_op_output(c, i, dt, nd, dims) ? SL_OK : SL_ERR_NOMEM;
}

sl_err_t sl_op_loop(sl_opctx_t *c)
{
        const sl_model_t *body = sl_op_subgraph(c, "body");
        const sl_tensor_t *in[SL_NODE_IO_MAX + 2], *out[SL_NODE_IO_MAX + 1];
        const sl_tensor_t *max_t = sl_op_in(c, 0), *cond_t = sl_op_in(c, 1);
        sl_tensor_t iter_t = {0}, cnd = {0}, first[SL_NODE_IO_MAX];
        int64_t iter = 0, max = INT64_MAX;
        uint8_t go = 1;
        int n = c->n_in - 2, k = c->n_out - n;
        sl_err_t err;

        if (!body || n < 0 || k < 0 || body->n_inputs != (size_t)(n + 2) ||
            body->n_outputs != (size_t)(1 + n + k))
                return sl_op_fail(c, SL_ERR_MODEL, "body does not match the node's inputs/outputs");
        if (max_t) {
                if (sl_tensor_numel(max_t) != 1)
                        return sl_op_fail(c, SL_ERR_SHAPE, "M must hold one element");
                max = sl_tensor_get_i64(max_t, 0);
        }
        if (cond_t) {
                if (sl_tensor_numel(cond_t) != 1)
                        return sl_op_fail(c, SL_ERR_SHAPE, "cond must hold one element");
                go = truth(cond_t);
        }
        iter_t.dtype = SL_DT_INT64;
        iter_t.data = &iter;
        iter_t.nbytes = sizeof(iter);
        cnd.dtype = SL_DT_BOOL;
        cnd.data = &go;
        cnd.nbytes = 1;
        in[0] = &iter_t;
        in[1] = &cnd;
        for (int i = 0; i < n; i++) {
                if (!c->in[2 + i])
                        return sl_op_fail(c, SL_ERR_MODEL, "loop-carried input #%d missing", i);
                in[2 + i] = c->in[2 + i];
        }
        for (; iter < max && go; iter++) {
                if ((err = sl_op_subgraph_run(c, "body", in, (size_t)(n + 2), out,
                                              (size_t)(1 + n + k))))
                        return err;
                if (sl_tensor_numel(out[0]) != 1)
                        return sl_op_fail(c, SL_ERR_SHAPE, "body condition must hold one element");
                go = truth(out[0]);
                /* Views of this run's outputs: the next run copies them first. */
                for (int i = 0; i < n; i++)
                        in[2 + i] = out[1 + i];
                for (int i = 0; i < k; i++)
                        if ((err = stack_out(c, n + i, iter, out[1 + n + i], &first[i])))
                                return err;
        }
        for (int i = 0; i < n; i++)
                if ((err = copy_out(c, i, in[2 + i])))
                        return err;
        for (int i = 0; iter == 0 && i < k; i++)
                if ((err = empty_out(c, n + i, &body->outputs[1 + n + i])))
                        return err;
        return SL_OK;
}

/* Scan's per-call geometry: the scan axis and direction of each input and output. */
typedef struct {
        int n, m, k;  /* state variables, scan inputs, scan outputs */
        bool batched; /* Scan-8: a batch axis 0 on every input and output */
        int64_t T, B; /* sequence length, batch size (1 when not batched) */
        int in_axis[SL_NODE_IO_MAX], in_rev[SL_NODE_IO_MAX];
        int out_axis[SL_NODE_IO_MAX], out_rev[SL_NODE_IO_MAX];
        bool out_ready[SL_NODE_IO_MAX]; /* scan output allocated (shape known) */
        const sl_tensor_t *state[SL_NODE_IO_MAX], *x[SL_NODE_IO_MAX];
} scan_t;

/* Axis/direction attribute \p name: \p cnt values (default 0), axes
 * normalised against the ranks in \p rank. */
static sl_err_t scan_attr(sl_opctx_t *c, const char *name, int cnt, const int *rank, bool axis,
                          int *out)
{
        const int64_t *v = NULL;
        int nv = sl_attr_ints(c->node, name, &v);
        for (int i = 0; i < cnt; i++) {
                int64_t a = nv > i ? v[i] : 0;
                if (axis && (out[i] = sl_axis(a, rank[i], false)) < 0)
                        return sl_op_fail(c, SL_ERR_SHAPE, "%s[%d] = %lld out of range", name, i,
                                          (long long)a);
                if (!axis) {
                        if (a != 0 && a != 1)
                                return sl_op_fail(c, SL_ERR_MODEL, "%s[%d] must be 0 or 1", name,
                                                  i);
                        out[i] = (int)a;
                }
        }
        if (nv > cnt)
                return sl_op_fail(c, SL_ERR_MODEL, "%s has %d values, %d expected", name, nv, cnt);
        return SL_OK;
}

/* View of batch element \p b of \p t (batched Scan-8), else \p t itself. */
static const sl_tensor_t *batch_view(const scan_t *s, const sl_tensor_t *t, int64_t b,
                                     sl_tensor_t *view)
{
        size_t per;
        if (!s->batched)
                return t;
        *view = *t;
        view->ndim = t->ndim - 1;
        memmove(view->dims, t->dims + 1, sizeof(int64_t) * (size_t)view->ndim);
        per = t->dims[0] ? t->nbytes / (size_t)t->dims[0] : 0;
        view->data = (char *)t->data + (size_t)b * per;
        view->nbytes = per;
        return view;
}

/* Copies step \p t of \p x (scan axis \p axis, length T) into \p dst. */
static void slice_copy(const sl_tensor_t *x, int axis, int64_t T, int64_t t, void *dst)
{
        size_t esz = sl_dtype_size(x->dtype), inner = esz;
        int64_t outer = 1;
        for (int d = 0; d < axis; d++)
                outer *= x->dims[d];
        for (int d = axis + 1; d < x->ndim; d++)
                inner *= (size_t)x->dims[d];
        for (int64_t o = 0; o < outer; o++)
                memcpy((char *)dst + (size_t)o * inner,
                       (const char *)x->data + ((size_t)(o * T + t)) * inner, inner);
}

/* Writes slice \p y as step \p t along \p axis of the output \p o (per-batch part at \p base). */
static void slice_put(const sl_tensor_t *y, int axis, int64_t T, int64_t t, char *base)
{
        size_t inner = sl_dtype_size(y->dtype);
        int64_t outer = 1;
        for (int d = 0; d < axis; d++)
                outer *= y->dims[d];
        for (int d = axis; d < y->ndim; d++)
                inner *= (size_t)y->dims[d];
        for (int64_t o = 0; o < outer; o++)
                memcpy(base + ((size_t)(o * T + t)) * inner,
                       (const char *)y->data + (size_t)o * inner, inner);
}

/* Allocates scan output \p j from its first slice \p y: the slice's shape
 * with T inserted at the output axis (and B in front when batched). */
static sl_err_t scan_alloc_out(sl_opctx_t *c, scan_t *s, int j, const sl_tensor_t *y)
{
        int64_t dims[SL_MAX_DIMS];
        int nd = 0, axis;
        const int64_t *v = NULL;
        int nv = sl_attr_ints(c->node, "scan_output_axes", &v);
        sl_tensor_t *o;

        if (y->ndim + 1 + (s->batched ? 1 : 0) > SL_MAX_DIMS)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "scan output #%d: rank too large", j);
        axis = s->batched ? 0 : sl_axis(nv > j ? v[j] : 0, y->ndim + 1, false);
        if (axis < 0)
                return sl_op_fail(c, SL_ERR_SHAPE, "scan_output_axes[%d] out of range", j);
        if (s->batched)
                dims[nd++] = s->B;
        for (int d = 0; d <= y->ndim; d++)
                dims[nd++] = d == axis ? s->T : y->dims[d < axis ? d : d - 1];
        if (!(o = sl_op_output(c, s->n + j, y->dtype, nd, dims)))
                return SL_ERR_NOMEM;
        memset(o->data, 0, o->nbytes); /* Scan-8: steps past sequence_lens stay 0 */
        s->out_axis[j] = axis;
        s->out_ready[j] = true;
        return SL_OK;
}

/* One sequence (one batch element \p b) through the body. */
static sl_err_t scan_seq(sl_opctx_t *c, scan_t *s, int64_t b, int64_t len, char *scratch,
                         const size_t *soff)
{
        const sl_tensor_t *in[SL_NODE_IO_MAX], *out[SL_NODE_IO_MAX];
        sl_tensor_t sl[SL_NODE_IO_MAX], sv[SL_NODE_IO_MAX], xv[SL_NODE_IO_MAX];
        sl_err_t err;

        for (int i = 0; i < s->n; i++)
                in[i] = batch_view(s, s->state[i], b, &sv[i]);
        for (int i = 0; i < s->m; i++) {
                const sl_tensor_t *x = batch_view(s, s->x[i], b, &xv[i]);
                xv[i] = *x;
                sl[i] = *x;
                sl[i].ndim = x->ndim - 1;
                for (int d = 0, e = 0; d < x->ndim; d++)
                        if (d != s->in_axis[i])
                                sl[i].dims[e++] = x->dims[d];
                sl[i].data = scratch + soff[i];
                sl[i].nbytes = s->T ? x->nbytes / (size_t)s->T : 0;
                in[s->n + i] = &sl[i];
        }
        for (int64_t t = 0; t < len; t++) {
                for (int i = 0; i < s->m; i++)
                        slice_copy(&xv[i], s->in_axis[i], s->T, s->in_rev[i] ? len - 1 - t : t,
                                   sl[i].data);
                if ((err = sl_op_subgraph_run(c, "body", in, (size_t)(s->n + s->m), out,
                                              (size_t)(s->n + s->k))))
                        return err;
                for (int i = 0; i < s->n; i++)
                        in[i] = out[i];
                for (int j = 0; j < s->k; j++) {
                        const sl_tensor_t *y = out[s->n + j];
                        sl_tensor_t *o;
                        if (!sl_op_has_output(c, s->n + j))
                                continue;
                        if (!s->out_ready[j] && (err = scan_alloc_out(c, s, j, y)))
                                return err;
                        o = sl_op_output_current(c, s->n + j);
                        {
                                int axis = s->out_axis[j];
                                size_t per = s->B ? o->nbytes / (size_t)s->B : 0;
                                if (y->nbytes * (size_t)s->T != per || y->dtype != o->dtype)
                                        return sl_op_fail(c, SL_ERR_SHAPE,
                                                          "scan output #%d changes shape", j);
                                slice_put(y, axis, s->T, s->out_rev[j] ? len - 1 - t : t,
                                          (char *)o->data + (size_t)b * per);
                        }
                }
        }
        /* Final state of this sequence into output i (batch part b). */
        for (int i = 0; i < s->n; i++) {
                const sl_tensor_t *y = in[i];
                sl_tensor_t *o;
                if (!sl_op_has_output(c, i))
                        continue;
                if (b == 0) {
                        int64_t dims[SL_MAX_DIMS];
                        int nd = 0;
                        if (s->batched)
                                dims[nd++] = s->B;
                        for (int d = 0; d < y->ndim && nd < SL_MAX_DIMS; d++)
                                dims[nd++] = y->dims[d];
                        if (!(o = sl_op_output(c, i, y->dtype, nd, dims)))
                                return SL_ERR_NOMEM;
                } else {
                        o = sl_op_output_current(c, i);
                }
                if (o->nbytes != y->nbytes * (size_t)s->B)
                        return sl_op_fail(c, SL_ERR_SHAPE, "state #%d changes shape", i);
                if (y->nbytes)
                        memmove((char *)o->data + (size_t)b * y->nbytes, y->data, y->nbytes);
        }
        return SL_OK;
}

sl_err_t sl_op_scan(sl_opctx_t *c)
{
        const sl_model_t *body = sl_op_subgraph(c, "body");
        const sl_tensor_t *lens = NULL;
        int first = c->opset < 9 ? 1 : 0, rank[SL_NODE_IO_MAX];
        size_t soff[SL_NODE_IO_MAX + 1];
        char *scratch;
        scan_t s;
        sl_err_t err;

        memset(&s, 0, sizeof(s));
        s.batched = c->opset < 9;
        s.m = (int)sl_attr_int(c->node, "num_scan_inputs", 0);
        s.n = c->n_in - first - s.m;
        s.k = c->n_out - s.n;
        if (!body || s.m < 1 || s.n < 0 || s.k < 0)
                return sl_op_fail(c, SL_ERR_MODEL, "body does not match the node's inputs/outputs");
        if (first)
                lens = sl_op_in(c, 0);
        for (int i = 0; i < s.n + s.m; i++) {
                const sl_tensor_t *t = c->in[first + i];
                if (!t || t->ndim < (s.batched ? 1 : 0) + (i >= s.n ? 1 : 0))
                        return sl_op_fail(c, SL_ERR_SHAPE, "input #%d missing or of rank 0",
                                          first + i);
                if (i < s.n)
                        s.state[i] = t;
                else
                        s.x[i - s.n] = t;
        }
        for (int i = 0; i < s.m; i++)
                rank[i] = s.x[i]->ndim - (s.batched ? 1 : 0);
        if (s.batched) {
                if ((err = scan_attr(c, "directions", s.m, rank, false, s.in_rev)))
                        return err;
                s.B = s.x[0]->dims[0];
        } else {
                if ((err = scan_attr(c, "scan_input_axes", s.m, rank, true, s.in_axis)) ||
                    (err = scan_attr(c, "scan_input_directions", s.m, rank, false, s.in_rev)) ||
                    (err = scan_attr(c, "scan_output_directions", s.k, rank, false, s.out_rev)))
                        return err;
                s.B = 1;
        }
        s.T = s.x[0]->dims[(s.batched ? 1 : 0) + s.in_axis[0]];
        soff[0] = 0;
        for (int i = 0; i < s.m; i++) {
                const sl_tensor_t *x = s.x[i];
                int ax = (s.batched ? 1 : 0) + s.in_axis[i];
                if (x->dims[ax] != s.T || (s.batched && x->dims[0] != s.B))
                        return sl_op_fail(c, SL_ERR_SHAPE, "scan inputs differ in length");
                soff[i + 1] = soff[i] + (s.T && s.B ? x->nbytes / (size_t)(s.T * s.B) : 0);
                soff[i + 1] = (soff[i + 1] + 63) & ~(size_t)63;
        }
        for (int i = 0; s.batched && i < s.n; i++)
                if (s.state[i]->dims[0] != s.B)
                        return sl_op_fail(c, SL_ERR_SHAPE, "state #%d: batch differs", i);
        if (lens && (lens->dtype != SL_DT_INT32 && lens->dtype != SL_DT_INT64))
                return sl_op_fail(c, SL_ERR_DATATYPE, "sequence_lens must be int32/int64");
        if (lens && sl_tensor_numel(lens) != s.B)
                return sl_op_fail(c, SL_ERR_SHAPE, "sequence_lens must have %lld values",
                                  (long long)s.B);
        if (!(scratch = sl_op_scratch(c, soff[s.m] + 64)))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        if (s.T == 0 || s.B == 0)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "empty sequences are not supported");
        for (int64_t b = 0; b < s.B; b++) {
                int64_t len = lens ? sl_tensor_get_i64(lens, b) : s.T;
                if (len < 0 || len > s.T)
                        return sl_op_fail(c, SL_ERR_SHAPE, "sequence_lens[%lld] = %lld",
                                          (long long)b, (long long)len);
                if ((err = scan_seq(c, &s, b, len, scratch, soff)))
                        return err;
        }
        for (int j = 0; j < s.k; j++)
                if (!s.out_ready[j] && sl_op_has_output(c, s.n + j))
                        return sl_op_fail(c, SL_ERR_UNSUPPORTED,
                                          "every sequence is empty: scan output shape unknown");
        return SL_OK;
}
