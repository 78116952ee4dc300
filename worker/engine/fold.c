/*
 * Load-time constant folding (DESIGN.md, "Engine": "fold constants and shape
 * sub-graphs"). Exporters emit nodes whose results never change between runs:
 * Constant nodes, arithmetic on initializers, and the shape plumbing around
 * Reshape (Shape -> Gather -> Unsqueeze -> Concat) whose inputs are dimensions
 * fixed by the model. Each costs a kernel call per run, which at batch 1 is a
 * good part of a small model's time. Here they run once, on a temporary
 * session, and their outputs become initializers.
 *
 * Shapes are inferred statically (rank and dimensions, -1 where a dimension
 * depends on the batch or is unknown) for the operators such plumbing passes
 * through; an operator not listed leaves its output unknown, which only means
 * less folding.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* Outputs of a folded node larger than this stay computed at run time. */
#define FOLD_BYTES_MAX ((size_t)64 << 20)

/* Statically known shape: rank -1 when unknown, dims -1 when unknown. */
typedef struct {
        int rank;
        int64_t d[SL_MAX_DIMS];
} sshape_t;

bool sl_fold_enabled(void)
{
        const char *e = getenv("SLUICE_FOLD");
        return !(e && !strcmp(e, "0"));
}

static bool is_op(const sl_node_t *nd, const char *op_type)
{
        return nd->op && !strcmp(nd->op->op_type, op_type);
}

int sl_model_add_const(sl_model_t *m, const char *name, const sl_tensor_t *t)
{
        int id = (int)m->n_values;
        if (m->n_values + 2 > m->values_cap) {
                size_t cap = m->values_cap ? 2 * m->values_cap : 16;
                sl_value_t *nv = realloc(m->values, cap * sizeof(*nv));
                if (!nv)
                        return -1;
                memset(nv + m->values_cap, 0, (cap - m->values_cap) * sizeof(*nv));
                m->values = nv;
                m->values_cap = cap;
        }
        memset(&m->values[id], 0, sizeof(m->values[id]));
        m->values[id].name = name;
        m->values[id].kind = SL_VALUE_INITIALIZER;
        m->values[id].producer = -1;
        m->values[id].outer = -1;
        m->values[id].init = *t;
        m->n_values++;
        /* The sink was slot id (n_values before): it moves one up. */
        for (size_t i = 0; i < m->n_nodes; i++)
                for (int k = 0; k < m->nodes[i].n_out; k++)
                        if (m->nodes[i].out[k] == id)
                                m->nodes[i].out[k] = id + 1;
        return id;
}

void sl_model_drop_nodes(sl_model_t *m, const bool *dead)
{
        size_t j = 0;
        for (size_t i = 0; i < m->n_nodes; i++) {
                if (dead[i]) {
                        free(m->nodes[i].in);
                        free(m->nodes[i].out);
                        continue;
                }
                m->nodes[j++] = m->nodes[i];
        }
        m->n_nodes = j;
}

/* ---- static shapes ---- */

static bool const_value(const sl_model_t *m, int v)
{
        return v >= 0 && (size_t)v < m->n_values && m->values[v].kind == SL_VALUE_INITIALIZER;
}

static const sl_tensor_t *const_of(const sl_model_t *m, const sl_node_t *nd, int k)
{
        return k < nd->n_in && const_value(m, nd->in[k]) ? &m->values[nd->in[k]].init : NULL;
}

/* Integer list of constant input \p k (or attribute \p attr when the input
 * is absent); returns its length, -1 when unknown. */
static int ints_of(const sl_model_t *m, const sl_node_t *nd, int k, const char *attr, int64_t *out)
{
        const sl_tensor_t *t = const_of(m, nd, k);
        const int64_t *a;
        int n;
        if (t) {
                int64_t cnt = sl_tensor_numel(t);
                if (cnt > SL_MAX_DIMS || (t->dtype != SL_DT_INT64 && t->dtype != SL_DT_INT32))
                        return -1;
                for (int64_t i = 0; i < cnt; i++)
                        out[i] = sl_tensor_get_i64(t, i);
                return (int)cnt;
        }
        if (k < nd->n_in && nd->in[k] >= 0)
                return -1; /* a run-time input */
        if (!attr || (n = sl_attr_ints(nd, attr, &a)) < 0 || n > SL_MAX_DIMS)
                return -1;
        memcpy(out, a, sizeof(int64_t) * (size_t)n);
        return n;
}

static void shape_broadcast(const sshape_t *a, const sshape_t *b, sshape_t *o)
{
        o->rank = a->rank > b->rank ? a->rank : b->rank;
        for (int i = 0; i < o->rank; i++) {
                int ia = i - (o->rank - a->rank), ib = i - (o->rank - b->rank);
                int64_t x = ia >= 0 ? a->d[ia] : 1, y = ib >= 0 ? b->d[ib] : 1;
                if (x == 1)
                        o->d[i] = y;
                else if (y == 1)
                        o->d[i] = x;
                else
                        o->d[i] = x >= 0 ? x : y;
        }
}

static const char *const SAME_SHAPE[] = {"Relu",
                                         "Erf",
                                         "Sqrt",
                                         "Exp",
                                         "Log",
                                         "Tanh",
                                         "Sigmoid",
                                         "Neg",
                                         "Abs",
                                         "Reciprocal",
                                         "Floor",
                                         "Ceil",
                                         "Round",
                                         "Cast",
                                         "Identity",
                                         "Dropout",
                                         "Softmax",
                                         "LogSoftmax",
                                         "Clip",
                                         "LeakyRelu",
                                         "Gelu",
                                         "Not",
                                         "Elu",
                                         "Selu",
                                         "HardSigmoid",
                                         "HardSwish",
                                         "Softplus",
                                         "Softsign",
                                         "BatchNormalization",
                                         "LayerNormalization",
                                         "InstanceNormalization",
                                         "PRelu",
                                         "Sign",
                                         "IsNaN",
                                         "IsInf",
                                         "CastLike"};
static const char *const BROADCAST[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or",  "Xor", "Max", "Min", "Where", "Mod",  "Sum"};

static bool op_in(const sl_node_t *nd, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (is_op(nd, list[i]))
                        return true;
        return false;
}

/* Static shape of output 0 of \p nd from its inputs' shapes \p s. */
static void infer(const sl_model_t *m, const sl_node_t *nd, const sshape_t *s, sshape_t *o)
{
        const sshape_t *x = nd->n_in > 0 && nd->in[0] >= 0 ? &s[nd->in[0]] : NULL;
        int64_t v[SL_MAX_DIMS];
        int n;

        o->rank = -1;
        if (!x)
                return;
        if (op_in(nd, SAME_SHAPE, sizeof(SAME_SHAPE) / sizeof(*SAME_SHAPE))) {
                *o = *x;
        } else if (op_in(nd, BROADCAST, sizeof(BROADCAST) / sizeof(*BROADCAST))) {
                *o = *x;
                for (int k = 1; k < nd->n_in - nd->n_implicit && o->rank >= 0; k++) {
                        sshape_t t = *o;
                        if (nd->in[k] < 0 || s[nd->in[k]].rank < 0)
                                o->rank = -1;
                        else
                                shape_broadcast(&t, &s[nd->in[k]], o);
                }
        } else if (is_op(nd, "Transpose") && x->rank >= 0) {
                n = ints_of(m, nd, 99, "perm", v);
                o->rank = x->rank;
                for (int i = 0; i < x->rank; i++) {
                        int64_t p = n == x->rank ? v[i] : x->rank - 1 - i;
                        if (p < 0 || p >= x->rank) {
                                o->rank = -1;
                                return;
                        }
                        o->d[i] = x->d[p];
                }
        } else if (is_op(nd, "MatMul") && nd->n_in == 2 && nd->in[1] >= 0) {
                const sshape_t *b = &s[nd->in[1]];
                sshape_t ba = *x, bb = *b;
                if (x->rank < 2 || b->rank < 2)
                        return;
                ba.rank -= 2;
                bb.rank -= 2;
                shape_broadcast(&ba, &bb, o);
                o->d[o->rank++] = x->d[x->rank - 2];
                o->d[o->rank++] = b->d[b->rank - 1];
        } else if (is_op(nd, "Gemm") && nd->n_in >= 2 && nd->in[1] >= 0 && x->rank == 2 &&
                   s[nd->in[1]].rank == 2) {
                o->rank = 2;
                o->d[0] = x->d[sl_attr_int(nd, "transA", 0) ? 1 : 0];
                o->d[1] = s[nd->in[1]].d[sl_attr_int(nd, "transB", 0) ? 0 : 1];
        } else if ((is_op(nd, "Unsqueeze") || is_op(nd, "Squeeze")) && x->rank >= 0) {
                bool unsq = is_op(nd, "Unsqueeze");
                int r = x->rank;
                n = ints_of(m, nd, 1, "axes", v);
                if (n < 0 || (!unsq && n == 0))
                        return;
                o->rank = unsq ? r + n : r - n;
                if (o->rank < 0 || o->rank > SL_MAX_DIMS) {
                        o->rank = -1;
                        return;
                }
                for (int i = 0, j = 0, k; i < (unsq ? o->rank : r); i++) {
                        bool hit = false;
                        for (k = 0; k < n; k++)
                                hit |= sl_axis(v[k], unsq ? o->rank : r, false) == i;
                        if (unsq)
                                o->d[i] = hit ? 1 : x->d[j++];
                        else if (!hit)
                                o->d[j++] = x->d[i];
                }
        } else if (is_op(nd, "Reshape") && (n = ints_of(m, nd, 1, NULL, v)) >= 0 &&
                   !sl_attr_int(nd, "allowzero", 0)) {
                int64_t known = 1, total = 1;
                int neg = -1;
                o->rank = n;
                for (int i = 0; i < x->rank; i++)
                        total = x->d[i] >= 0 && total >= 0 ? total * x->d[i] : -1;
                if (x->rank < 0)
                        total = -1;
                for (int i = 0; i < n; i++) {
                        o->d[i] = v[i] == 0 ? (i < x->rank ? x->d[i] : -1) : v[i];
                        if (v[i] == -1)
                                neg = i;
                        else
                                known = o->d[i] >= 0 && known >= 0 ? known * o->d[i] : -1;
                }
                if (neg >= 0)
                        o->d[neg] = total >= 0 && known > 0 ? total / known : -1;
        } else if (is_op(nd, "Concat") && x->rank >= 0) {
                int ax = sl_axis(sl_attr_int(nd, "axis", 0), x->rank, false);
                if (ax < 0)
                        return;
                *o = *x;
                for (int k = 1; k < nd->n_in - nd->n_implicit; k++) {
                        const sshape_t *t = nd->in[k] >= 0 ? &s[nd->in[k]] : NULL;
                        if (!t || t->rank != x->rank) {
                                o->rank = -1;
                                return;
                        }
                        o->d[ax] = o->d[ax] >= 0 && t->d[ax] >= 0 ? o->d[ax] + t->d[ax] : -1;
                }
        } else if (is_op(nd, "Gather") && nd->n_in == 2 && nd->in[1] >= 0 && x->rank >= 1 &&
                   s[nd->in[1]].rank >= 0) {
                const sshape_t *ix = &s[nd->in[1]];
                int ax = sl_axis(sl_attr_int(nd, "axis", 0), x->rank, false);
                if (ax < 0 || x->rank - 1 + ix->rank > SL_MAX_DIMS)
                        return;
                o->rank = 0;
                for (int i = 0; i < ax; i++)
                        o->d[o->rank++] = x->d[i];
                for (int i = 0; i < ix->rank; i++)
                        o->d[o->rank++] = ix->d[i];
                for (int i = ax + 1; i < x->rank; i++)
                        o->d[o->rank++] = x->d[i];
        } else if (is_op(nd, "Flatten") && x->rank >= 0) {
                int ax = sl_axis(sl_attr_int(nd, "axis", 1), x->rank, true);
                int64_t a = 1, b = 1;
                if (ax < 0)
                        return;
                for (int i = 0; i < x->rank; i++) {
                        int64_t *p = i < ax ? &a : &b;
                        *p = *p >= 0 && x->d[i] >= 0 ? *p * x->d[i] : -1;
                }
                o->rank = 2;
                o->d[0] = a;
                o->d[1] = b;
        } else if (is_op(nd, "Slice") && x->rank >= 0 && nd->n_in >= 3) {
                int64_t st[SL_MAX_DIMS], en[SL_MAX_DIMS], ax[SL_MAX_DIMS], sp[SL_MAX_DIMS];
                int ns = ints_of(m, nd, 1, NULL, st), ne = ints_of(m, nd, 2, NULL, en);
                int na = nd->n_in > 3 && nd->in[3] >= 0 ? ints_of(m, nd, 3, NULL, ax) : ns;
                int np = nd->n_in > 4 && nd->in[4] >= 0 ? ints_of(m, nd, 4, NULL, sp) : ns;
                if (ns < 0 || ne != ns || na != ns || np != ns)
                        return;
                *o = *x;
                for (int i = 0; i < ns; i++) {
                        int a = sl_axis(nd->n_in > 3 && nd->in[3] >= 0 ? ax[i] : i, x->rank, false);
                        int64_t dim, b, e, step = nd->n_in > 4 && nd->in[4] >= 0 ? sp[i] : 1;
                        if (a < 0 || step == 0) {
                                o->rank = -1;
                                return;
                        }
                        if ((dim = x->d[a]) < 0) {
                                o->d[a] = -1;
                                continue;
                        }
                        b = st[i] < 0 ? st[i] + dim : st[i];
                        e = en[i] < 0 ? en[i] + dim : en[i];
                        if (step > 0) {
                                b = b < 0 ? 0 : b > dim ? dim : b;
                                e = e < 0 ? 0 : e > dim ? dim : e;
                                o->d[a] = e > b ? (e - b + step - 1) / step : 0;
                        } else {
                                b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
                                e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
                                o->d[a] = b > e ? (b - e - step - 1) / -step : 0;
                        }
                }
        }
}

/* ---- folding ---- */

static bool never_fold(const sl_node_t *nd)
{
        static const char *const RANDOM[] = {"RandomNormal",     "RandomUniform",
                                             "RandomNormalLike", "RandomUniformLike",
                                             "Multinomial",      "Bernoulli"};
        return nd->n_sub || op_in(nd, RANDOM, sizeof(RANDOM) / sizeof(*RANDOM));
}

/* True when every input of \p nd is constant and it may run at load. */
static bool foldable(const sl_model_t *m, const sl_node_t *nd)
{
        if (never_fold(nd) || (nd->n_in == 0 && !is_op(nd, "Constant")))
                return false;
        for (int k = 0; k < nd->n_in; k++)
                if (nd->in[k] >= 0 && !const_value(m, nd->in[k]))
                        return false;
        return true;
}

/* Output \p k of \p nd as an int64 constant of \p n values \p vals. */
static sl_err_t set_ints(sl_model_t *m, const sl_node_t *nd, int k, const int64_t *vals, int n,
                         bool scalar)
{
        int v = nd->out[k];
        sl_tensor_t t = {0};
        t.dtype = SL_DT_INT64;
        t.ndim = scalar ? 0 : 1;
        t.dims[0] = n;
        t.nbytes = sizeof(int64_t) * (size_t)n;
        if (!(t.data = malloc(t.nbytes ? t.nbytes : 1)))
                return SL_ERR_NOMEM;
        memcpy(t.data, vals, t.nbytes);
        m->values[v].kind = SL_VALUE_INITIALIZER;
        m->values[v].producer = -1;
        m->values[v].init = t;
        return SL_OK;
}

/*
 * Shape (and Gather on a shape) from static shapes: \p known[v] holds the
 * entries of shape values, -1 where unknown (n_known[v] entries, -1 when v is
 * not such a value). Returns true when output 0 of \p nd became a constant.
 */
static bool fold_shape(sl_model_t *m, const sl_node_t *nd, const sshape_t *s, sshape_t *known,
                       sl_err_t *err)
{
        int64_t vals[SL_MAX_DIMS];
        int v = nd->out[0], n = 0;
        bool all = true;

        *err = SL_OK;
        if (nd->n_out != 1 || v < 0 || (size_t)v >= m->n_values || nd->in[0] < 0)
                return false;
        if (is_op(nd, "Shape") && s[nd->in[0]].rank >= 0) {
                const sshape_t *x = &s[nd->in[0]];
                int64_t b = sl_attr_int(nd, "start", 0), e = sl_attr_int(nd, "end", x->rank);
                b = b < 0 ? b + x->rank : b;
                e = e < 0 ? e + x->rank : e;
                b = b < 0 ? 0 : b > x->rank ? x->rank : b;
                e = e < 0 ? 0 : e > x->rank ? x->rank : e;
                for (int64_t i = b; i < e; i++) {
                        vals[n++] = x->d[i];
                        all &= x->d[i] >= 0;
                }
                known[v].rank = n;
                memcpy(known[v].d, vals, sizeof(int64_t) * (size_t)n);
                if (!all)
                        return false;
                *err = set_ints(m, nd, 0, vals, n, false);
                return true;
        }
        if (is_op(nd, "Gather") && nd->n_in == 2 && known[nd->in[0]].rank >= 0 &&
            const_of(m, nd, 1) && sl_attr_int(nd, "axis", 0) == 0) {
                const sshape_t *sh = &known[nd->in[0]];
                const sl_tensor_t *ix = const_of(m, nd, 1);
                int64_t cnt = sl_tensor_numel(ix);
                if (ix->ndim > 1 || cnt > SL_MAX_DIMS ||
                    (ix->dtype != SL_DT_INT64 && ix->dtype != SL_DT_INT32))
                        return false;
                for (int64_t i = 0; i < cnt; i++) {
                        int64_t j = sl_tensor_get_i64(ix, i);
                        j = j < 0 ? j + sh->rank : j;
                        if (j < 0 || j >= sh->rank || sh->d[j] < 0)
                                return false;
                        vals[n++] = sh->d[j];
                }
                *err = set_ints(m, nd, 0, vals, n, ix->ndim == 0);
                return true;
        }
        return false;
}

/* Outputs of node \p i, just run on \p s, become initializers (copies). */
static sl_err_t take_outputs(sl_model_t *m, sl_session_t *s, const sl_node_t *nd)
{
        for (int k = 0; k < nd->n_out; k++) {
                int v = nd->out[k];
                const sl_tensor_t *t;
                sl_tensor_t c;
                if (v < 0 || (size_t)v >= m->n_values)
                        continue;
                t = sl_session_value(s, v);
                c = *t;
                if (!(c.data = malloc(t->nbytes ? t->nbytes : 1)))
                        return SL_ERR_NOMEM;
                if (t->nbytes)
                        memcpy(c.data, t->data, t->nbytes);
                m->values[v].kind = SL_VALUE_INITIALIZER;
                m->values[v].producer = -1;
                m->values[v].init = c;
        }
        return SL_OK;
}

static bool outputs_ok(const sl_model_t *m, sl_session_t *s, const sl_node_t *nd)
{
        for (int k = 0; k < nd->n_out; k++) {
                int v = nd->out[k];
                const sl_tensor_t *t;
                if (v < 0 || (size_t)v >= m->n_values)
                        continue;
                t = sl_session_value(s, v);
                if (t->dtype == SL_DT_STRING || t->nbytes > FOLD_BYTES_MAX ||
                    (!t->data && t->nbytes))
                        return false;
        }
        return true;
}

static void seed_shapes(const sl_model_t *m, sshape_t *s)
{
        for (size_t v = 0; v < m->n_values; v++) {
                s[v].rank = -1;
                if (m->values[v].kind == SL_VALUE_INITIALIZER) {
                        s[v].rank = m->values[v].init.ndim;
                        memcpy(s[v].d, m->values[v].init.dims, sizeof(s[v].d));
                }
        }
        for (size_t i = 0; i < m->n_inputs; i++) {
                const sl_value_info_t *vi = &m->inputs[i];
                sshape_t *x = &s[m->input_ids[i]];
                x->rank = vi->ndim;
                for (int k = 0; k < vi->ndim; k++)
                        x->d[k] = vi->dims[k] >= 0 ? vi->dims[k] : -1;
        }
}

/* Marks nodes none of whose outputs is read (by a live node) or is a graph
 * output: what folding left behind (a Shape whose Gathers all folded). */
static sl_err_t mark_unused(const sl_model_t *m, bool *dead)
{
        bool *used = calloc(m->n_values + 1, sizeof(bool));
        if (!used)
                return SL_ERR_NOMEM;
        for (size_t i = 0; i < m->n_outputs; i++)
                used[m->output_ids[i]] = true;
        for (size_t i = m->n_nodes; i-- > 0;) {
                const sl_node_t *nd = &m->nodes[i];
                bool live = false;
                if (dead[i])
                        continue;
                for (int k = 0; k < nd->n_out; k++)
                        live |=
                            nd->out[k] >= 0 && (size_t)nd->out[k] < m->n_values && used[nd->out[k]];
                if (!live) {
                        dead[i] = true;
                        continue;
                }
                for (int k = 0; k < nd->n_in; k++)
                        if (nd->in[k] >= 0)
                                used[nd->in[k]] = true;
        }
        free(used);
        return SL_OK;
}

sl_err_t sl_model_fold(sl_model_t *m)
{
        size_t nv = m->n_values + 1;
        sshape_t *s = malloc(nv * sizeof(*s)), *known = malloc(nv * sizeof(*known));
        bool *dead = calloc(m->n_nodes + 1, sizeof(bool));
        sl_session_t *sess = NULL;
        char why[256];
        sl_err_t err = SL_ERR_NOMEM;

        if (!s || !known || !dead || (err = sl_session_new_quiet(m, &sess)))
                goto done;
        seed_shapes(m, s);
        for (size_t v = 0; v < nv; v++)
                known[v].rank = -1;
        for (size_t i = 0; i < m->n_nodes; i++) {
                const sl_node_t *nd = &m->nodes[i];
                if (foldable(m, nd)) {
                        if (!sl_session_run_node(sess, i, why, sizeof(why)) &&
                            outputs_ok(m, sess, nd)) {
                                if ((err = take_outputs(m, sess, nd)))
                                        goto done;
                                dead[i] = true;
                        }
                } else if (nd->n_in >= 1 && fold_shape(m, nd, s, known, &err)) {
                        if (err)
                                goto done;
                        sl_session_set_value(sess, nd->out[0], &m->values[nd->out[0]].init);
                        dead[i] = true;
                }
                for (int k = 0; k < nd->n_out; k++) {
                        int v = nd->out[k];
                        if (v < 0 || (size_t)v >= m->n_values)
                                continue;
                        if (m->values[v].kind == SL_VALUE_INITIALIZER) {
                                s[v].rank = m->values[v].init.ndim;
                                memcpy(s[v].d, m->values[v].init.dims, sizeof(s[v].d));
                        } else if (k == 0) {
                                infer(m, nd, s, &s[v]);
                        }
                }
        }
        err = mark_unused(m, dead);
done:
        sl_session_destroy(sess);
        if (!err)
                sl_model_drop_nodes(m, dead);
        free(s);
        free(known);
        free(dead);
        return err;
}
