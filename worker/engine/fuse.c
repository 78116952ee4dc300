/*
 * Load-time graph fusion (DESIGN.md, "Engine"): an activation that is the only
 * consumer of a Conv or Gemm output is folded into that node, which applies it
 * in its own output pass. This saves one pass over the largest tensors of a
 * CNN and the memory of the intermediate value.
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

sl_err_t sl_model_fuse(sl_model_t *m)
{
        for (size_t i = 0; i < m->n_nodes; i++) {
                sl_node_t *a = &m->nodes[i], *b;
                size_t j = 0;
                int v;
                if (!(is_op(a, "Conv") || is_op(a, "Gemm")) || a->act != SL_ACT_NONE ||
                    a->n_out != 1)
                        continue;
                v = a->out[0];
                if (v < 0 || (size_t)v >= m->n_values || is_graph_output(m, v) ||
                    consumers(m, v, &j) != 1)
                        continue;
                b = &m->nodes[j];
                if (!is_op(b, "Relu") || b->n_in != 1 || b->n_out != 1 || b->out[0] < 0 ||
                    (size_t)b->out[0] >= m->n_values)
                        continue;
                /* a takes over b's output; b's consumers all come after a. */
                a->out[0] = b->out[0];
                a->act = SL_ACT_RELU;
                m->values[b->out[0]].producer = (int)a->index;
                free(b->in);
                free(b->out);
                memmove(b, b + 1, (m->n_nodes - j - 1) * sizeof(*b));
                m->n_nodes--;
        }
        return SL_OK;
}
