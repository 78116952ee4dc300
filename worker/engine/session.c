/*
 * Sessions: the interpreter of engine v0. Each value of the graph has a slot;
 * node outputs get a buffer that the session keeps and grows across runs, so
 * that runs at a steady batch size allocate nothing after the first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "engine_int.h"

typedef struct {
        sl_tensor_t t;
        void *buf; /**< owned buffer (node outputs) */
        size_t cap;
} slot_t;

struct sl_session_s {
        sl_model_t *model;
        slot_t *slots; /**< model->n_values + 1 (sink) */
        void *scratch;
        size_t scratch_cap;
        void **cache; /**< per node (execution order): sl_op_node_cache() */
        size_t *cache_cap;
        sl_session_t ***subs; /**< per node (execution order): sessions of node->sub[] */
        void **stage;         /**< per subgraph input: copy buffer (sl_op_subgraph_run) */
        size_t *stage_cap;
        uint64_t *prof_ns; /**< per node, when SLUICE_PROFILE is set; else NULL */
        uint64_t prof_runs;
        bool prof_cpu; /**< SLUICE_PROFILE=cpu: thread CPU time instead of wall time */
};

static uint64_t now_ns(const sl_session_t *s)
{
        struct timespec ts;
        clock_gettime(s->prof_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* SLUICE_PROFILE=1 (wall) or =cpu (thread CPU time, steadier on a busy
 * machine): time of every node summed over the session's runs, printed to
 * stderr when the session is destroyed (one line per node). */
static void profile_print(const sl_session_t *s)
{
        const sl_model_t *m = s->model;
        double runs = s->prof_runs ? (double)s->prof_runs : 1.0;
        uint64_t total = 0;
        for (size_t i = 0; i < m->n_nodes; i++)
                total += s->prof_ns[i];
        fprintf(stderr, "profile: %llu runs, %.3f ms per run (%s time)\n",
                (unsigned long long)s->prof_runs, (double)total / 1e6 / runs,
                s->prof_cpu ? "thread CPU" : "wall");
        for (size_t n = 0; n < m->n_nodes; n++)
                fprintf(stderr, "profile: #%-3zu %-14s %-28s %9.3f ms/run %5.1f%%\n", n,
                        sl_node_label(&m->nodes[n]), m->nodes[n].name,
                        (double)s->prof_ns[n] / 1e6 / runs,
                        total ? 100.0 * (double)s->prof_ns[n] / (double)total : 0.0);
}

/* A session for \p model; subgraphs get sessions of their own, made here so
 * that runs allocate nothing new after warm-up. */
static sl_err_t session_create(sl_model_t *model, bool top, sl_session_t **sessionp)
{
        sl_session_t *s = calloc(1, sizeof(*s));
        const char *prof = top ? getenv("SLUICE_PROFILE") : NULL;
        sl_err_t err = SL_ERR_NOMEM;

        *sessionp = NULL;
        if (!s)
                return SL_ERR_NOMEM;
        s->model = model;
        if (!(s->slots = calloc(model->n_values + 1, sizeof(*s->slots))) ||
            !(s->cache = calloc(model->n_nodes + 1, sizeof(*s->cache))) ||
            !(s->cache_cap = calloc(model->n_nodes + 1, sizeof(*s->cache_cap))) ||
            !(s->subs = calloc(model->n_nodes + 1, sizeof(*s->subs))) ||
            !(s->stage = calloc(model->n_inputs + 1, sizeof(*s->stage))) ||
            !(s->stage_cap = calloc(model->n_inputs + 1, sizeof(*s->stage_cap))))
                goto fail;
        if (prof && strcmp(prof, "") && strcmp(prof, "0")) {
                if (!(s->prof_ns = calloc(model->n_nodes + 1, sizeof(uint64_t))))
                        goto fail;
                s->prof_cpu = !strcmp(prof, "cpu");
        }
        for (size_t i = 0; i < model->n_values; i++)
                if (model->values[i].kind == SL_VALUE_INITIALIZER)
                        s->slots[i].t = model->values[i].init;
        for (size_t i = 0; i < model->n_nodes; i++) {
                const sl_node_t *nd = &model->nodes[i];
                if (!nd->n_sub)
                        continue;
                if (!(s->subs[i] = calloc((size_t)nd->n_sub, sizeof(**s->subs))))
                        goto fail;
                for (int k = 0; k < nd->n_sub; k++)
                        if (nd->sub[k] && (err = session_create(nd->sub[k], false, &s->subs[i][k])))
                                goto fail;
        }
        *sessionp = s;
        return SL_OK;
fail:
        sl_session_destroy(s);
        return err;
}

sl_err_t sl_session_new(sl_model_t *model, sl_session_t **sessionp)
{
        return session_create(model, true, sessionp);
}

void sl_session_destroy(sl_session_t *session)
{
        const sl_model_t *m;
        if (!session)
                return;
        m = session->model;
        if (session->prof_ns) {
                profile_print(session);
                free(session->prof_ns);
        }
        for (size_t i = 0; session->slots && i <= m->n_values; i++)
                free(session->slots[i].buf);
        free(session->slots);
        for (size_t i = 0; session->cache && i < m->n_nodes; i++)
                free(session->cache[i]);
        free(session->cache);
        free(session->cache_cap);
        for (size_t i = 0; session->subs && i < m->n_nodes; i++) {
                for (int k = 0; session->subs[i] && k < m->nodes[i].n_sub; k++)
                        sl_session_destroy(session->subs[i][k]);
                free(session->subs[i]);
        }
        free(session->subs);
        for (size_t i = 0; session->stage && i < m->n_inputs; i++)
                free(session->stage[i]);
        free(session->stage);
        free(session->stage_cap);
        free(session->scratch);
        free(session);
}

sl_err_t sl_op_fail(sl_opctx_t *c, sl_err_t err, const char *fmt, ...)
{
        va_list ap;
        if (c->errstr && c->errstr_size) {
                va_start(ap, fmt);
                vsnprintf(c->errstr, c->errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}

void *sl_op_scratch(sl_opctx_t *c, size_t bytes)
{
        sl_session_t *s = c->session;
        if (bytes > s->scratch_cap || !s->scratch) {
                void *nb;
                if (bytes > SL_TENSOR_BYTES_MAX)
                        return NULL;
                if (!(nb = realloc(s->scratch, bytes ? bytes : 1)))
                        return NULL;
                s->scratch = nb;
                s->scratch_cap = bytes;
        }
        return s->scratch;
}

void *sl_op_node_cache(sl_opctx_t *c, size_t bytes, bool *fresh)
{
        sl_session_t *s = c->session;
        size_t i = (size_t)(c->node - s->model->nodes);
        *fresh = false;
        if (bytes > s->cache_cap[i] || !s->cache[i]) {
                void *nb = NULL;
                size_t size = (bytes + 63) & ~(size_t)63;
                if (bytes > SL_TENSOR_BYTES_MAX || posix_memalign(&nb, 64, size ? size : 64))
                        return NULL;
                free(s->cache[i]);
                s->cache[i] = nb;
                s->cache_cap[i] = bytes;
                *fresh = true;
        }
        return s->cache[i];
}

bool sl_op_in_const(const sl_opctx_t *c, int i)
{
        int v = i < c->n_in ? c->node->in[i] : -1;
        return v >= 0 && (size_t)v < c->session->model->n_values &&
               c->session->model->values[v].kind == SL_VALUE_INITIALIZER;
}

bool sl_op_has_output(const sl_opctx_t *c, int i)
{
        return i < c->n_out && (size_t)c->node->out[i] < c->session->model->n_values;
}

sl_tensor_t *sl_op_output(sl_opctx_t *c, int i, sl_dtype_t dt, int ndim, const int64_t *dims)
{
        slot_t *s;
        int64_t n;
        size_t esz = sl_dtype_size(dt), need;

        if (i >= c->n_out) {
                sl_op_fail(c, SL_ERR_MODEL, "output #%d is not declared", i);
                return NULL;
        }
        if (ndim < 0 || ndim > SL_MAX_DIMS || (n = sl_dims_numel(ndim, dims)) < 0 || !esz ||
            (uint64_t)n > SL_TENSOR_BYTES_MAX / esz) {
                sl_op_fail(c, SL_ERR_SHAPE, "output #%d: invalid shape or type (rank %d, %s)", i,
                           ndim, sl_dtype_name(dt));
                return NULL;
        }
        s = &c->session->slots[c->node->out[i]];
        need = (size_t)n * esz;
        if (need > s->cap || !s->buf) {
                void *nb = realloc(s->buf, need ? need : 1);
                if (!nb) {
                        sl_op_fail(c, SL_ERR_NOMEM, "output #%d: out of memory (%zu bytes)", i,
                                   need);
                        return NULL;
                }
                s->buf = nb;
                s->cap = need;
        }
        s->t.dtype = dt;
        s->t.ndim = ndim;
        for (int k = 0; k < ndim; k++)
                s->t.dims[k] = dims[k];
        s->t.data = s->buf;
        s->t.nbytes = need;
        return &s->t;
}

sl_tensor_t *sl_op_output_current(sl_opctx_t *c, int i)
{
        return &c->session->slots[c->node->out[i]].t;
}

sl_tensor_t *sl_op_output_like(sl_opctx_t *c, int i, sl_dtype_t dt, const sl_tensor_t *like)
{
        return sl_op_output(c, i, dt, like->ndim, like->dims);
}

/*
 * True when graph \p g reads \p name for its element type only: as
 * CastLike's target_type (whose shape is irrelevant: "CastLike" in the spec)
 * or not at all. Scans the file's graph, subgraphs included, not the loaded
 * one: folding may have replaced a Shape of the input by a constant made
 * from the declared dims, and then those dims matter.
 */
static bool reads_type_only(const Onnx__GraphProto *g, const char *name)
{
        for (size_t o = 0; o < g->n_output; o++)
                if (g->output[o]->name && !strcmp(g->output[o]->name, name))
                        return false;
        for (size_t j = 0; j < g->n_node; j++) {
                const Onnx__NodeProto *nd = g->node[j];
                bool castlike = nd->op_type && !strcmp(nd->op_type, "CastLike") &&
                                (!nd->domain || !*nd->domain || !strcmp(nd->domain, "ai.onnx"));
                for (size_t k = 0; k < nd->n_input; k++)
                        if (!strcmp(nd->input[k], name) && !(castlike && k == 1))
                                return false;
                for (size_t k = 0; k < nd->n_attribute; k++) {
                        const Onnx__AttributeProto *at = nd->attribute[k];
                        if (at->g && !reads_type_only(at->g, name))
                                return false;
                        for (size_t l = 0; l < at->n_graphs; l++)
                                if (!reads_type_only(at->graphs[l], name))
                                        return false;
                }
        }
        return true;
}

static sl_err_t bind_inputs(sl_session_t *s, const sl_tensor_t *inputs, size_t n_inputs,
                            char *errstr, size_t errstr_size)
{
        const sl_model_t *m = s->model;

        if (n_inputs != m->n_inputs) {
                sl_strfmt(errstr, errstr_size, "model takes %zu inputs, %zu given", m->n_inputs,
                          n_inputs);
                return SL_ERR_SHAPE;
        }
        for (size_t i = 0; i < n_inputs; i++) {
                const sl_value_info_t *vi = &m->inputs[i];
                const sl_tensor_t *t = &inputs[i];
                int64_t n = sl_tensor_numel(t);
                bool ok = vi->ndim < 0 || vi->ndim == t->ndim;
                if (vi->dtype != SL_DT_UNDEFINED && t->dtype != vi->dtype) {
                        sl_strfmt(errstr, errstr_size, "input '%s': type %s, model expects %s",
                                  vi->name, sl_dtype_name(t->dtype), sl_dtype_name(vi->dtype));
                        return SL_ERR_DATATYPE;
                }
                for (int k = 0; ok && vi->ndim > 0 && k < t->ndim; k++)
                        ok = vi->dims[k] < 0 || vi->dims[k] == t->dims[k];
                /* ONNX 1.12's test_castlike_*BFLOAT16* declare 'like' [3,4], feed [1] */
                if (!ok && vi->name && m->graph)
                        ok = reads_type_only(m->graph, vi->name);
                if (!ok || t->ndim < 0 || t->ndim > SL_MAX_DIMS || n < 0 ||
                    t->nbytes != (size_t)n * sl_dtype_size(t->dtype)) {
                        char want[128] = "", got[128] = "";
                        size_t o = 0;
                        for (int k = 0; k < vi->ndim && o < sizeof(want); k++)
                                o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%lld",
                                                      k ? "," : "", (long long)vi->dims[k]);
                        o = 0;
                        for (int k = 0; k < t->ndim && k < SL_MAX_DIMS && o < sizeof(got); k++)
                                o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%lld",
                                                      k ? "," : "", (long long)t->dims[k]);
                        sl_strfmt(errstr, errstr_size,
                                  "input '%s': shape [%s] (%zu bytes), model expects [%s]",
                                  vi->name, got, t->nbytes, want);
                        return SL_ERR_SHAPE;
                }
                s->slots[m->input_ids[i]].t = *t;
        }
        return SL_OK;
}

/*
 * Denormals flushed to zero (inputs and results) while a run executes: a
 * denormal costs ~100 cycles per operation on x86 and changes no prediction.
 * The caller's MXCSR is restored afterwards. OpenBLAS runs on this thread
 * (one BLAS thread; see sl_engine_blas_set_threads()).
 */
static unsigned fpu_enter(void)
{
#if defined(__x86_64__) || defined(__i386__)
        unsigned old = _mm_getcsr();
        _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
        return old;
#else
        return 0;
#endif
}

static void fpu_leave(unsigned old)
{
#if defined(__x86_64__) || defined(__i386__)
        _mm_setcsr(old);
#else
        (void)old;
#endif
}

static sl_err_t run_nodes(sl_session_t *session, char *errstr, size_t errstr_size)
{
        const sl_model_t *m = session->model;
        char why[512];
        sl_opctx_t c;
        sl_err_t err;

        for (size_t i = 0; i < m->n_nodes; i++) {
                const sl_node_t *nd = &m->nodes[i];
                uint64_t t0 = session->prof_ns ? now_ns(session) : 0;
                memset(&c, 0, sizeof(c));
                c.session = session;
                c.node = nd;
                c.opset = m->opset;
                c.n_in = nd->n_in - nd->n_implicit;
                c.n_out = nd->n_out;
                c.errstr = why;
                c.errstr_size = sizeof(why);
                why[0] = '\0';
                for (int k = 0; k < c.n_in; k++)
                        c.in[k] = nd->in[k] >= 0 ? &session->slots[nd->in[k]].t : NULL;
                if (!(err = sl_op_check_strings(&c)))
                        err = nd->op->run(&c);
                if (session->prof_ns)
                        session->prof_ns[i] += now_ns(session) - t0;
                if (err) {
                        if (nd->name[0])
                                sl_strfmt(errstr, errstr_size, "node '%s' (#%zu, %s): %s", nd->name,
                                          nd->index, nd->proto->op_type, why);
                        else
                                sl_strfmt(errstr, errstr_size, "node #%zu (%s): %s", nd->index,
                                          nd->proto->op_type, why);
                        return err;
                }
        }
        return SL_OK;
}

static int sub_index(const sl_opctx_t *c, const char *attr)
{
        const sl_node_t *nd = c->node;
        for (int k = 0; k < nd->n_sub; k++)
                if (nd->sub[k] && nd->proto->attribute[k]->name &&
                    !strcmp(nd->proto->attribute[k]->name, attr))
                        return k;
        return -1;
}

const sl_model_t *sl_op_subgraph(const sl_opctx_t *c, const char *attr)
{
        int k = sub_index(c, attr);
        return k >= 0 ? c->node->sub[k] : NULL;
}

sl_err_t sl_op_subgraph_run(sl_opctx_t *c, const char *attr, const sl_tensor_t *const *inputs,
                            size_t n_inputs, const sl_tensor_t **outputs, size_t n_outputs)
{
        sl_session_t *p = c->session, *s;
        const sl_model_t *m;
        int k = sub_index(c, attr);
        sl_err_t err;

        if (k < 0)
                return sl_op_fail(c, SL_ERR_MODEL, "no graph attribute '%s'", attr);
        s = p->subs[c->node - p->model->nodes][k];
        m = s->model;
        if (n_inputs != m->n_inputs || n_outputs != m->n_outputs)
                return sl_op_fail(c, SL_ERR_MODEL,
                                  "graph '%s' has %zu inputs and %zu outputs, %zu and %zu expected",
                                  attr, m->n_inputs, m->n_outputs, n_inputs, n_outputs);
        for (size_t i = 0; i < m->n_outer; i++)
                s->slots[m->outer_ids[i]].t = p->slots[m->values[m->outer_ids[i]].outer].t;
        /* Copy every input before any slot changes: an input may be a view of
         * the previous run's output (or of another input's slot). */
        for (size_t i = 0; i < n_inputs; i++) {
                size_t need = inputs[i]->nbytes;
                if (need > s->stage_cap[i] || !s->stage[i]) {
                        void *nb = realloc(s->stage[i], need ? need : 1);
                        if (!nb)
                                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
                        s->stage[i] = nb;
                        s->stage_cap[i] = need ? need : 1;
                }
                if (need)
                        memcpy(s->stage[i], inputs[i]->data, need);
        }
        for (size_t i = 0; i < n_inputs; i++) {
                slot_t *sl = &s->slots[m->input_ids[i]];
                void *b = sl->buf;
                size_t cap = sl->cap;
                sl->buf = s->stage[i];
                sl->cap = s->stage_cap[i];
                s->stage[i] = b;
                s->stage_cap[i] = cap;
                sl->t = *inputs[i];
                sl->t.data = sl->buf;
        }
        if ((err = run_nodes(s, c->errstr, c->errstr_size)))
                return err;
        for (size_t i = 0; i < n_outputs; i++)
                outputs[i] = &s->slots[m->output_ids[i]].t;
        return SL_OK;
}

sl_err_t sl_session_run(sl_session_t *session, const sl_tensor_t *inputs, size_t n_inputs,
                        sl_tensor_t *outputs, size_t n_outputs, char *errstr, size_t errstr_size)
{
        const sl_model_t *m = session->model;
        unsigned csr;
        sl_err_t err;

        if ((err = bind_inputs(session, inputs, n_inputs, errstr, errstr_size)))
                return err;
        if (n_outputs != m->n_outputs) {
                sl_strfmt(errstr, errstr_size, "model has %zu outputs, %zu requested", m->n_outputs,
                          n_outputs);
                return SL_ERR_INVALID_ARG;
        }
        csr = fpu_enter();
        err = run_nodes(session, errstr, errstr_size);
        fpu_leave(csr);
        if (err)
                return err;
        for (size_t i = 0; i < n_outputs; i++)
                outputs[i] = session->slots[m->output_ids[i]].t;
        session->prof_runs++;
        return SL_OK;
}

sl_err_t sl_session_new_quiet(sl_model_t *model, sl_session_t **sessionp)
{
        return session_create(model, false, sessionp);
}

sl_err_t sl_session_run_node(sl_session_t *session, size_t i, char *errstr, size_t errstr_size)
{
        const sl_node_t *nd = &session->model->nodes[i];
        unsigned csr;
        sl_opctx_t c;
        sl_err_t err;

        memset(&c, 0, sizeof(c));
        c.session = session;
        c.node = nd;
        c.opset = session->model->opset;
        c.n_in = nd->n_in - nd->n_implicit;
        c.n_out = nd->n_out;
        c.errstr = errstr;
        c.errstr_size = errstr_size;
        for (int k = 0; k < c.n_in; k++)
                c.in[k] = nd->in[k] >= 0 ? &session->slots[nd->in[k]].t : NULL;
        csr = fpu_enter();
        err = nd->op->run(&c);
        fpu_leave(csr);
        return err;
}

const sl_tensor_t *sl_session_value(const sl_session_t *session, int v)
{
        return &session->slots[v].t;
}

void sl_session_set_value(sl_session_t *session, int v, const sl_tensor_t *t)
{
        session->slots[v].t = *t;
}

const char *sl_engine_blas_core(void)
{
        const char *name = openblas_get_corename();
        return name ? name : "unknown";
}
