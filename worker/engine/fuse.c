/*
 * Load-time graph fusion (DESIGN.md, "Engine"): an activation that is the only
 * consumer of a Conv or Gemm output is folded into that node, which applies it
 * in its own output pass, and so is a non-overlapping MaxPool after a 2-D Conv.
 * This saves passes over the largest tensors of a CNN and the memory of the
 * intermediate values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static bool is_op(const sl_node_t *nd, const char *op_type)
{
        return nd->op && !strcmp(nd->op->op_type, op_type);
}

const char *sl_node_label(const sl_node_t *node)
{
        static const char *const acts[][4] = {
            /* none, Relu, Clip, Gelu */
            {"Conv", "Conv+Relu", "Conv+Clip", "Conv+Gelu"},
            {"Conv+MaxPool", "Conv+Relu+MaxPool", "Conv+Clip+MaxPool", "Conv+Gelu+MaxPool"},
            {"Gemm", "Gemm+Relu", "Gemm+Clip", "Gemm+Gelu"},
            {"MatMul", "MatMul+Relu", "MatMul+Clip", "MatMul+Gelu"},
            {"MatMul+Add", "MatMul+Add+Relu", "MatMul+Add+Clip", "MatMul+Add+Gelu"},
        };
        int a = (int)node->act;
        if (a < 0 || a > 3)
                a = 0;
        if (is_op(node, "Conv"))
                return acts[node->pool[0] ? 1 : 0][a];
        if (is_op(node, "Gemm"))
                return acts[2][a];
        if (is_op(node, "MatMul"))
                return acts[node->n_in - node->n_implicit > 2 ? 4 : 3][a];
        if (is_op(node, "AveragePool") &&
            (node->prepad[0] || node->prepad[1] || node->prepad[2] || node->prepad[3]))
                return "Pad+AveragePool";
        return node->op ? node->op->op_type : "?";
}

/*
 * erf for GELU, vectorisable: the rational approximation of Eigen's
 * generic_fast_erf_float (odd numerator of degree 13 over an even
 * denominator of degree 8, on x clamped to [-4, 4], where erf is 1 within
 * float precision). Measured against double erf(): absolute error below
 * 3e-7 over [-6, 6].
 */
static inline float erf_fast(float x)
{
        float x2, p, q;
        x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
        x2 = x * x;
        p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
        p = p * x2 + -2.10102402082508e-06f;
        p = p * x2 + -5.69250639462346e-05f;
        p = p * x2 + -7.34990630326855e-04f;
        p = p * x2 + -2.95459980854025e-03f;
        p = p * x2 + -1.60960333262415e-02f;
        p = p * x;
        q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
        q = q * x2 + -1.68282697438203e-03f;
        q = q * x2 + -7.37332916720468e-03f;
        q = q * x2 + -1.42647390514189e-02f;
        return p / q;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void gelu(float *x, size_t n)
{
        for (size_t i = 0; i < n; i++)
                x[i] = 0.5f * x[i] * (1.0f + erf_fast(x[i] * 0.70710678118654752f));
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void clip(float *x, size_t n,
                                                                              float lo, float hi)
{
        for (size_t i = 0; i < n; i++)
                x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

void sl_act_apply(sl_act_t act, float *x, size_t n)
{
        if (act == SL_ACT_RELU)
                for (size_t i = 0; i < n; i++)
                        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        else if (act == SL_ACT_GELU)
                gelu(x, n);
}

void sl_act_apply_node(const sl_node_t *node, float *x, size_t n)
{
        if (node->act == SL_ACT_CLIP)
                clip(x, n, node->act_min, node->act_max);
        else
                sl_act_apply(node->act, x, n);
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

/* Node \p j goes; the nodes after it move up one. */
static void remove_node(sl_model_t *m, size_t j)
{
        sl_node_t *b = &m->nodes[j];
        free(b->in);
        free(b->out);
        memmove(b, b + 1, (m->n_nodes - j - 1) * sizeof(*b));
        m->n_nodes--;
}

/* \p a takes over the output of node \p j (whose consumers all come after
 * \p a), and node \p j goes. */
static void take_output(sl_model_t *m, sl_node_t *a, size_t j)
{
        a->out[0] = m->nodes[j].out[0];
        m->values[a->out[0]].producer = (int)a->index;
        remove_node(m, j);
}

/* Float initializer \p v, NULL when \p v is anything else. */
static const sl_tensor_t *fconst(const sl_model_t *m, int v)
{
        if (v < 0 || (size_t)v >= m->n_values || m->values[v].kind != SL_VALUE_INITIALIZER ||
            m->values[v].init.dtype != SL_DT_FLOAT)
                return NULL;
        return &m->values[v].init;
}

/* The one value of a float initializer of one element, or NAN. */
static float fscalar(const sl_model_t *m, int v)
{
        const sl_tensor_t *t = fconst(m, v);
        return t && sl_tensor_numel(t) == 1 ? *(const float *)t->data : NAN;
}

/* Bounds of a Clip whose bounds are constants (attributes before opset 11). */
static bool clip_bounds(const sl_model_t *m, const sl_node_t *b, float *lo, float *hi)
{
        if (m->opset < 11) {
                *lo = sl_attr_float(b, "min", -INFINITY);
                *hi = sl_attr_float(b, "max", INFINITY);
                return b->n_in == 1;
        }
        *lo = b->n_in > 1 && b->in[1] >= 0 ? fscalar(m, b->in[1]) : -INFINITY;
        *hi = b->n_in > 2 && b->in[2] >= 0 ? fscalar(m, b->in[2]) : INFINITY;
        return b->n_in <= 3 && !isnan(*lo) && !isnan(*hi) && *lo <= *hi;
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
        float lo, hi;
        int v = a->out[0];
        if (v < 0 || (size_t)v >= m->n_values || is_graph_output(m, v) || consumers(m, v, &j) != 1)
                return false;
        b = &m->nodes[j];
        if (b->n_out < 1 || b->out[0] < 0 || (size_t)b->out[0] >= m->n_values)
                return false;
        if (is_op(b, "Relu") && b->n_in == 1 && b->n_out == 1 && a->act == SL_ACT_NONE) {
                a->act = SL_ACT_RELU;
        } else if (is_op(a, "Conv") && is_op(b, "Clip") && a->act == SL_ACT_NONE && !a->pool[0] &&
                   b->n_out == 1 && sl_fold_enabled() && clip_bounds(m, b, &lo, &hi)) {
                /* Monotonic, so a MaxPool fused later may still follow it. */
                a->act = SL_ACT_CLIP;
                a->act_min = lo;
                a->act_max = hi;
        } else if (is_op(a, "Conv") && !a->pool[0] && pool_fusable(m, b, pool) &&
                   conv_is_2d(m, a)) {
                a->pool[0] = pool[0];
                a->pool[1] = pool[1];
        } else {
                return false;
        }
        take_output(m, a, j);
        return true;
}

/* The only consumer of \p a's output 0 (an index after \p a), or 0 when
 * there are several or the output is a graph output. */
static size_t only_consumer(const sl_model_t *m, const sl_node_t *a)
{
        size_t j = 0;
        int v = a->n_out >= 1 ? a->out[0] : -1;
        if (v < 0 || (size_t)v >= m->n_values || is_graph_output(m, v) || consumers(m, v, &j) != 1)
                return 0;
        return j;
}

/* True when outputs 1.. of \p b are omitted (BatchNormalization, Dropout). */
static bool extra_outputs_unused(const sl_model_t *m, const sl_node_t *b)
{
        for (int k = 1; k < b->n_out; k++)
                if (b->out[k] >= 0 && (size_t)b->out[k] < m->n_values)
                        return false;
        return b->n_out >= 1 && b->out[0] >= 0 && (size_t)b->out[0] < m->n_values;
}

/* Sets input \p k of \p a (growing the list by one when k == n_in). */
static bool set_input(sl_node_t *a, int k, int v)
{
        if (k == a->n_in) {
                int *in = realloc(a->in, (size_t)(a->n_in + 2) * sizeof(int));
                if (!in)
                        return false;
                a->in = in;
                a->n_in++;
        }
        a->in[k] = v;
        return true;
}

static sl_tensor_t tensor_copy(const sl_tensor_t *t)
{
        sl_tensor_t c = *t;
        if ((c.data = malloc(t->nbytes ? t->nbytes : 1)) && t->nbytes)
                memcpy(c.data, t->data, t->nbytes);
        return c;
}

/*
 * BatchNormalization (inference) after a Conv or a Gemm with constant
 * weights, its only consumer: y = s * (x - mean) + beta with s = gamma /
 * sqrt(var + epsilon) per channel becomes new weights W * s (per output
 * channel) and bias (b - mean) * s + beta. The original initializers stay
 * (others may read them); the node reads new ones.
 * @sa ONNX operator spec, "BatchNormalization" (channel = dimension 1).
 */
static bool fold_batch_norm(sl_model_t *m, sl_node_t *a)
{
        size_t j = only_consumer(m, a);
        sl_node_t *b = j ? &m->nodes[j] : NULL;
        const sl_tensor_t *w, *bias, *p[4];
        sl_tensor_t nw = {0}, nb = {0};
        bool gemm = is_op(a, "Gemm"), tb = gemm && sl_attr_int(a, "transB", 0);
        int64_t C, inner, wid, bid;
        float eps;

        if (!b || !is_op(b, "BatchNormalization") || b->n_in != 5 || b->in[0] != a->out[0] ||
            !extra_outputs_unused(m, b) || sl_attr_int(b, "training_mode", 0) ||
            a->act != SL_ACT_NONE || a->pool[0] || !(w = fconst(m, a->in[1])))
                return false;
        if (gemm && (w->ndim != 2 || sl_attr_float(a, "alpha", 1.0f) != 1.0f ||
                     sl_attr_float(a, "beta", 1.0f) != 1.0f))
                return false;
        if (!gemm && w->ndim < 3)
                return false;
        C = gemm ? (tb ? w->dims[0] : w->dims[1]) : w->dims[0];
        for (int k = 0; k < 4; k++)
                if (!(p[k] = fconst(m, b->in[1 + k])) || sl_tensor_numel(p[k]) != C)
                        return false;
        bias = a->n_in > 2 && a->in[2] >= 0 ? fconst(m, a->in[2]) : NULL;
        if (a->n_in > 2 && a->in[2] >= 0 &&
            (!bias || sl_tensor_numel(bias) != C || (bias->ndim == 2 && bias->dims[0] != 1)))
                return false;
        eps = sl_attr_float(b, "epsilon", 1e-5f);
        nw = tensor_copy(w);
        nb.dtype = SL_DT_FLOAT;
        nb.ndim = 1;
        nb.dims[0] = C;
        nb.nbytes = sizeof(float) * (size_t)C;
        nb.data = malloc(nb.nbytes ? nb.nbytes : 1);
        if (!nw.data || !nb.data)
                goto fail;
        inner = sl_tensor_numel(w) / (C ? C : 1);
        for (int64_t c = 0; c < C; c++) {
                const float *g = p[0]->data, *be = p[1]->data, *mu = p[2]->data, *va = p[3]->data;
                double sc = (double)g[c] / sqrt((double)va[c] + (double)eps);
                double b0 = bias ? (double)((const float *)bias->data)[c] : 0.0;
                float *wd = nw.data;
                ((float *)nb.data)[c] = (float)((b0 - (double)mu[c]) * sc + (double)be[c]);
                if (gemm && !tb) /* B is [K][N]: column c */
                        for (int64_t k = 0; k < w->dims[0]; k++)
                                wd[k * C + c] = (float)((double)wd[k * C + c] * sc);
                else /* row c of [C][inner] */
                        for (int64_t k = 0; k < inner; k++)
                                wd[c * inner + k] = (float)((double)wd[c * inner + k] * sc);
        }
        if ((wid = sl_model_add_const(m, m->values[a->in[1]].name, &nw)) < 0)
                goto fail;
        nw.data = NULL;
        if ((bid = sl_model_add_const(m, m->values[b->out[0]].name, &nb)) < 0)
                goto fail;
        nb.data = NULL;
        a->in[1] = (int)wid;
        if (!set_input(a, 2, (int)bid))
                return false; /* the node is unchanged but for W: cannot happen before */
        take_output(m, a, j);
        return true;
fail:
        free(nw.data);
        free(nb.data);
        return false;
}

/*
 * Add of a constant bias row after a MatMul with constant 2-D weights
 * (Linear layers exported as MatMul + Add): the MatMul reads the bias as a
 * third input and starts its output from it.
 */
static bool fuse_matmul_bias(sl_model_t *m, sl_node_t *a)
{
        size_t j = only_consumer(m, a);
        sl_node_t *b = j ? &m->nodes[j] : NULL;
        const sl_tensor_t *w, *bias;
        int other;
        if (!b || !is_op(b, "Add") || b->n_in != 2 || b->n_out != 1 || a->n_in != 2 ||
            a->act != SL_ACT_NONE || !(w = fconst(m, a->in[1])) || w->ndim != 2)
                return false;
        other = b->in[0] == a->out[0] ? b->in[1] : b->in[0];
        if (other == a->out[0] || !(bias = fconst(m, other)) || bias->ndim != 1 ||
            bias->dims[0] != w->dims[1])
                return false;
        if (!set_input(a, 2, other))
                return false;
        take_output(m, a, j);
        return true;
}

/* Node \p j is \p op_type reading \p v and a float constant equal to \p c
 * (either order when \p commutes); its one consumer goes to *next. */
static bool chain_step(const sl_model_t *m, size_t j, const char *op_type, int v, float c,
                       bool commutes)
{
        const sl_node_t *b = &m->nodes[j];
        float k;
        if (!is_op(b, op_type) || b->n_in != 2 || b->n_out != 1)
                return false;
        if (b->in[0] == v)
                k = fscalar(m, b->in[1]);
        else if (commutes && b->in[1] == v)
                k = fscalar(m, b->in[0]);
        else
                return false;
        return fabsf(k - c) <= 1e-6f * fabsf(c);
}

/*
 * GELU as exporters write it, x * (1 + erf(x / sqrt 2)) * 0.5 (Div, Erf,
 * Add, Mul, Mul; torch.nn.GELU), after a Gemm or MatMul: the activation
 * moves into the producer's output pass.
 */
static bool fuse_gelu(sl_model_t *m, sl_node_t *a)
{
        int v = a->out[0];
        size_t jd = 0, je, ja, jm, jh, n = 0;
        sl_node_t tmp;
        if (a->act != SL_ACT_NONE || v < 0 || (size_t)v >= m->n_values || is_graph_output(m, v))
                return false;
        for (size_t i = 0; i < m->n_nodes; i++)
                for (int k = 0; k < m->nodes[i].n_in; k++)
                        if (m->nodes[i].in[k] == v) {
                                n++;
                                if (is_op(&m->nodes[i], "Div"))
                                        jd = i;
                        }
        if (n != 2 || !jd || !chain_step(m, jd, "Div", v, 1.41421356f, false))
                return false;
        tmp = m->nodes[jd];
        if (!(je = only_consumer(m, &tmp)) || !is_op(&m->nodes[je], "Erf") ||
            m->nodes[je].n_in != 1)
                return false;
        tmp = m->nodes[je];
        if (!(ja = only_consumer(m, &tmp)) ||
            !chain_step(m, ja, "Add", m->nodes[je].out[0], 1.0f, true))
                return false;
        tmp = m->nodes[ja];
        if (!(jm = only_consumer(m, &tmp)) || !is_op(&m->nodes[jm], "Mul") ||
            m->nodes[jm].n_in != 2 || m->nodes[jm].n_out != 1 ||
            !((m->nodes[jm].in[0] == v && m->nodes[jm].in[1] == m->nodes[ja].out[0]) ||
              (m->nodes[jm].in[1] == v && m->nodes[jm].in[0] == m->nodes[ja].out[0])))
                return false;
        tmp = m->nodes[jm];
        if (!(jh = only_consumer(m, &tmp)) ||
            !chain_step(m, jh, "Mul", m->nodes[jm].out[0], 0.5f, true))
                return false;
        a->act = SL_ACT_GELU;
        a->out[0] = m->nodes[jh].out[0];
        m->values[a->out[0]].producer = (int)a->index;
        {
                size_t del[5] = {jd, je, ja, jm, jh};
                /* Remove from the highest index down: lower ones keep theirs. */
                for (int x = 0; x < 5; x++)
                        for (int y = x + 1; y < 5; y++)
                                if (del[y] > del[x]) {
                                        size_t t = del[x];
                                        del[x] = del[y];
                                        del[y] = t;
                                }
                for (int x = 0; x < 5; x++)
                        remove_node(m, del[x]);
        }
        return true;
}

/*
 * A constant-zero Pad of the spatial dimensions before a 2-D AveragePool (the
 * export of torch's AvgPool2d with padding and ceil_mode): the pool reads
 * the pads as zeros that count as input elements, without the padded copy.
 */
static bool fuse_pad_avgpool(sl_model_t *m, size_t i)
{
        sl_node_t *a = &m->nodes[i], *b;
        const int64_t *ks, *ap;
        int64_t pads[8];
        size_t j = only_consumer(m, a);
        char buf[16];
        int np = -1;

        if (!j || !is_op(a, "Pad") || a->n_out != 1 || a->n_in < 1 || a->n_in > 3)
                return false;
        b = &m->nodes[j];
        if (!is_op(b, "AveragePool") || b->n_in != 1 || b->in[0] != a->out[0] ||
            sl_attr_ints(b, "kernel_shape", &ks) != 2 ||
            strcmp(sl_attr_string(a, "mode", "constant", buf, sizeof(buf)), "constant"))
                return false;
        if (m->opset < 11) {
                if (sl_attr_float(a, "value", 0.0f) != 0.0f ||
                    (np = sl_attr_ints(a, "pads", &ap)) != 8)
                        return false;
                memcpy(pads, ap, sizeof(pads));
        } else {
                int v = a->n_in > 1 ? a->in[1] : -1;
                const sl_tensor_t *t;
                if (v < 0 || (size_t)v >= m->n_values || m->values[v].kind != SL_VALUE_INITIALIZER)
                        return false;
                t = &m->values[v].init;
                if (t->dtype != SL_DT_INT64 || sl_tensor_numel(t) != 8)
                        return false;
                memcpy(pads, t->data, sizeof(pads));
                if (a->n_in > 2 && a->in[2] >= 0 && fscalar(m, a->in[2]) != 0.0f)
                        return false;
        }
        if (pads[0] || pads[1] || pads[4] || pads[5] || pads[2] < 0 || pads[3] < 0 || pads[6] < 0 ||
            pads[7] < 0)
                return false;
        b->prepad[0] = pads[2];
        b->prepad[1] = pads[3];
        b->prepad[2] = pads[6];
        b->prepad[3] = pads[7];
        b->op = &sl_op_pool2d_avg;
        b->in[0] = a->in[0];
        remove_node(m, i);
        return true;
}

/* 2-D MaxPool without Indices and AveragePool: the float NCHW kernels. */
static void use_pool2d(sl_model_t *m, sl_node_t *a)
{
        const int64_t *ks;
        if (sl_attr_ints(a, "kernel_shape", &ks) != 2 || a->n_in != 1)
                return;
        if (is_op(a, "MaxPool") && extra_outputs_unused(m, a) && a->op != &sl_op_pool2d_max)
                a->op = &sl_op_pool2d_max;
        else if (is_op(a, "AveragePool") && a->n_out == 1)
                a->op = &sl_op_pool2d_avg;
}

sl_err_t sl_model_fuse(sl_model_t *m)
{
        bool rewrite = sl_fold_enabled();
        for (size_t i = 0; rewrite && i < m->n_nodes; i++) {
                sl_node_t *a = &m->nodes[i];
                if ((is_op(a, "Conv") || is_op(a, "Gemm")) && a->n_out == 1 && !a->n_implicit)
                        while (fold_batch_norm(m, a))
                                ;
                if (is_op(a, "MatMul") && a->n_out == 1 && !a->n_implicit)
                        fuse_matmul_bias(m, a);
                if ((is_op(a, "MatMul") || is_op(a, "Gemm")) && a->n_out == 1)
                        fuse_gelu(m, a);
        }
        for (size_t i = 0; rewrite && i < m->n_nodes; i++)
                if (fuse_pad_avgpool(m, i))
                        i--;
        for (size_t i = 0; i < m->n_nodes; i++) {
                sl_node_t *a = &m->nodes[i];
                if (!(is_op(a, "Conv") || is_op(a, "Gemm")) || a->n_out != 1)
                        continue;
                while (fuse_consumer(m, a))
                        ;
        }
        for (size_t i = 0; rewrite && i < m->n_nodes; i++)
                use_pool2d(m, &m->nodes[i]);
        return SL_OK;
}
