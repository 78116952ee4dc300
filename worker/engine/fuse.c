/*
 * Load-time graph fusion (DESIGN.md, "Engine"): an activation that is the only
 * consumer of a Conv or Gemm output is folded into that node, which applies it
 * in its own output pass, and so is a non-overlapping MaxPool after a 2-D Conv.
 * This saves passes over the largest tensors of a CNN and the memory of the
 * intermediate values.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static bool is_op(const sl_node_t *nd, const char *op_type)
{
        return nd->op && !strcmp(nd->op->op_type, op_type);
}

const char *sl_node_label(const sl_node_t *node)
{
        if (node->pool[0])
                return node->act == SL_ACT_RELU ? "Conv+Relu+MaxPool" : "Conv+MaxPool";
        if (node->act == SL_ACT_RELU) {
                if (is_op(node, "Conv"))
                        return "Conv+Relu";
                if (is_op(node, "Gemm"))
                        return "Gemm+Relu";
                return "?+Relu";
        }
        return node->op ? node->op->op_type : "?";
}

void sl_act_apply(sl_act_t act, float *x, size_t n)
{
        if (act == SL_ACT_RELU)
                for (size_t i = 0; i < n; i++)
                        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* Number of node inputs that read value \p v, and the last node reading it. */
static int consumers(const sl_model_t *m, int v, size_t *last)
{
        int n = 0;
        for (size_t i = 0; i < m->n_nodes; i++)
                for (int k = 0; k < m->nodes[i].n_in; k++)
                        if (m->nodes[i].in[k] == v) {
                                n++;
                                *last = i;
                        }
        return n;
}

static bool is_graph_output(const sl_model_t *m, int v)
{
        for (size_t i = 0; i < m->n_outputs; i++)
                if (m->output_ids[i] == v)
                        return true;
        return false;
}

/* True when every one of the \p n values is \p v (an absent list counts as all v). */
static bool ints_all(const int64_t *vals, int n, int64_t v)
{
        for (int i = 0; i < n; i++)
                if (vals[i] != v)
                        return false;
        return true;
}

/* A Conv whose spatial rank is known to be 2 (kernel_shape or W's rank). */
static bool conv_is_2d(const sl_model_t *m, const sl_node_t *nd)
{
        const int64_t *ks;
        int v = nd->n_in > 1 ? nd->in[1] : -1;
        if (sl_attr_find(nd, "kernel_shape"))
                return sl_attr_ints(nd, "kernel_shape", &ks) == 2;
        return v >= 0 && (size_t)v < m->n_values && m->values[v].kind == SL_VALUE_INITIALIZER &&
               m->values[v].init.ndim == 4;
}

/*
 * The MaxPool \p b that a 2-D Conv can apply in its output pass: windows
 * that tile the input (kernel_shape = strides), no padding, dilations 1,
 * floor mode, no Indices output. Sets \p pool to the kernel.
 */
static bool pool_fusable(const sl_model_t *m, const sl_node_t *b, int64_t pool[2])
{
        const int64_t *ks, *st, *pd, *dl;
        char buf[32];
        const char *ap = sl_attr_string(b, "auto_pad", "NOTSET", buf, sizeof(buf));
        int np, nd;
        if (!is_op(b, "MaxPool") || b->n_in != 1 ||
            (b->n_out == 2 && (size_t)b->out[1] < m->n_values) || b->n_out > 2)
                return false;
        if (sl_attr_ints(b, "kernel_shape", &ks) != 2 || sl_attr_ints(b, "strides", &st) != 2 ||
            ks[0] < 1 || ks[1] < 1 || st[0] != ks[0] || st[1] != ks[1])
                return false;
        np = sl_attr_ints(b, "pads", &pd);
        nd = sl_attr_ints(b, "dilations", &dl);
        if ((np >= 0 && (np != 4 || !ints_all(pd, 4, 0))) ||
            (nd >= 0 && (nd != 2 || !ints_all(dl, 2, 1))) || sl_attr_int(b, "ceil_mode", 0) ||
            sl_attr_int(b, "storage_order", 0) || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")))
                return false;
        pool[0] = ks[0];
        pool[1] = ks[1];
        return true;
}

/*
 * Fold the only consumer of \p a's output into \p a when \p a can apply it:
 * a Relu (Conv, Gemm), or a MaxPool (2-D Conv; Relu and MaxPool commute, so
 * either order folds). Returns true when it did.
 */
static bool fuse_consumer(sl_model_t *m, sl_node_t *a)
{
        sl_node_t *b;
        size_t j = 0;
        int64_t pool[2];
        int v = a->out[0];
        if (v < 0 || (size_t)v >= m->n_values || is_graph_output(m, v) || consumers(m, v, &j) != 1)
                return false;
        b = &m->nodes[j];
        if (b->n_out < 1 || b->out[0] < 0 || (size_t)b->out[0] >= m->n_values)
                return false;
        if (is_op(b, "Relu") && b->n_in == 1 && b->n_out == 1 && a->act == SL_ACT_NONE) {
                a->act = SL_ACT_RELU;
        } else if (is_op(a, "Conv") && !a->pool[0] && pool_fusable(m, b, pool) &&
                   conv_is_2d(m, a)) {
                a->pool[0] = pool[0];
                a->pool[1] = pool[1];
        } else {
                return false;
        }
        /* a takes over b's output; b's consumers all come after a. */
        a->out[0] = b->out[0];
        m->values[b->out[0]].producer = (int)a->index;
        free(b->in);
        free(b->out);
        memmove(b, b + 1, (m->n_nodes - j - 1) * sizeof(*b));
        m->n_nodes--;
        return true;
}

sl_err_t sl_model_fuse(sl_model_t *m)
{
        for (size_t i = 0; i < m->n_nodes; i++) {
                sl_node_t *a = &m->nodes[i];
                if (!(is_op(a, "Conv") || is_op(a, "Gemm")) || a->n_out != 1)
                        continue;
                while (fuse_consumer(m, a))
                        ;
        }
        return SL_OK;
}
