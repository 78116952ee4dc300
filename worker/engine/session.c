/*
 * Sessions: the interpreter of engine v0. Each value of the graph has a slot.
 *
 * Memory: one arena per batch-size bucket (DESIGN.md, "Engine"). A bucket is
 * the run's input shapes with every symbolic dimension (the batch) rounded up
 * to a power of two. The first run of a bucket gives each node output a
 * buffer of its own and records its size; after it, plan.c places the
 * outputs in one arena (a value's bytes are reused once its last reader has
 * run) and the graph outputs move there. Later runs of the bucket write into
 * the arena and allocate nothing. A value that outgrows its region (a
 * data-dependent shape: NonZero, a Loop running more iterations, a batch
 * larger than the one planned within its bucket) gets a buffer of its own
 * for that run and the bucket is planned again after it. Subgraph sessions
 * (Loop/If/Scan bodies) keep one buffer per value, grown when needed and
 * kept: they allocate nothing either once their shapes repeat. Kernel
 * scratch (sl_op_scratch) and per-node caches (packed weights) belong to the
 * session and only grow. SLUICE_ARENA=0 in the environment turns planning
 * off (every value keeps a buffer of its own), to compare.
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
        void *buf; /**< owned buffer (node outputs outside an arena) */
        size_t cap;
        uint64_t run; /**< session run that last shaped the value */
} slot_t;

/** @brief Buckets kept per session; the least recently used goes first. */
#define PLANS_MAX 8

/** @brief The arena of one batch-size bucket. */
typedef struct {
        int64_t *key; /**< the bucket (see bucket_key()); NULL: unused entry */
        size_t key_len;
        size_t *need; /**< per value: most bytes it took in a run of the bucket */
        size_t *cap;  /**< per value: bytes reserved in the arena */
        size_t *off;  /**< per value: offset in the arena, SL_PLAN_NONE if not placed */
        char *arena;  /**< NULL until planned */
        size_t arena_size, values_size; /**< arena bytes; sum of the values' bytes */
        uint64_t used;                  /**< session run that last used it (LRU) */
        bool stale;                     /**< a value outgrew its region: plan again */
} plan_t;

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
        int *first, *last; /**< value lifetimes (plan.c); NULL: no arena planning */
        plan_t plans[PLANS_MAX];
        plan_t *plan;      /**< the running bucket's, NULL when not planning */
        int64_t *key;      /**< the running batch's bucket key (scratch) */
        uint64_t runs;     /**< sl_session_run() calls so far */
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
        for (int k = 0; k < PLANS_MAX; k++)
                if (s->plans[k].arena)
                        fprintf(stderr,
                                "profile: arena of bucket [%lld...]: %zu bytes for %zu bytes of "
                                "values\n",
                                (long long)(s->plans[k].key_len > 2 ? s->plans[k].key[2] : 0),
                                s->plans[k].arena_size, s->plans[k].values_size);
}

static void plan_cleanup(plan_t *p)
{
        free(p->key);
        free(p->need);
        free(p->cap);
        free(p->off);
        free(p->arena);
        memset(p, 0, sizeof(*p));
}

/* A session for \p model; subgraphs get sessions of their own, made here so
 * that runs allocate nothing new after warm-up. \p top: a session of the
 * caller's (sl_session_new()), which plans arenas and may profile; folding's
 * and subgraphs' sessions do neither. */
static sl_err_t session_create(sl_model_t *model, bool top, sl_session_t **sessionp)
{
        sl_session_t *s = calloc(1, sizeof(*s));
        const char *prof = top ? getenv("SLUICE_PROFILE") : NULL;
        const char *arena = getenv("SLUICE_ARENA");
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
        if (top && !model->parent && !(arena && !strcmp(arena, "0"))) {
                if (!(s->first = calloc(model->n_values + 1, sizeof(int))) ||
                    !(s->last = calloc(model->n_values + 1, sizeof(int))) ||
                    !(s->key = calloc(model->n_inputs * (2 + SL_MAX_DIMS) + 1, sizeof(int64_t))))
                        goto fail;
                sl_plan_lifetimes(model, s->first, s->last);
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
        for (int k = 0; k < PLANS_MAX; k++)
                plan_cleanup(&session->plans[k]);
        free(session->first);
        free(session->last);
        free(session->key);
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
        sl_session_t *sess = c->session;
        plan_t *p = sess->plan;
        slot_t *s;
        void *data;
        int64_t n;
        int v;
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
        v = c->node->out[i];
        s = &sess->slots[v];
        need = (size_t)n * esz;
        if (p && (size_t)v < sess->model->n_values) {
                if (need > p->need[v])
                        p->need[v] = need;
                /* Once moved to a buffer of its own in this run, a value stays
                 * there until the run ends (its bytes are kept). */
                if (p->arena && p->off[v] != SL_PLAN_NONE && need <= p->cap[v] &&
                    !(s->run == sess->runs && s->buf && s->t.data == s->buf)) {
                        data = p->arena + p->off[v];
                        goto shape;
                }
                if (p->arena)
                        p->stale = true;
        }
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
        /* Shaped before in this run inside the arena and outgrowing it now:
         * keep what the kernel wrote (realloc keeps it for owned buffers). */
        if (p && p->arena && s->run == sess->runs && (char *)s->t.data >= p->arena &&
            (char *)s->t.data < p->arena + p->arena_size && s->t.nbytes)
                memcpy(s->buf, s->t.data, s->t.nbytes < need ? s->t.nbytes : need);
        data = s->buf;
shape:
        s->run = sess->runs;
        s->t.dtype = dt;
        s->t.ndim = ndim;
        for (int k = 0; k < ndim; k++)
                s->t.dims[k] = dims[k];
        s->t.data = data;
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

/* Smallest power of two >= \p d (d itself when 0 or too large). */
static int64_t round_pow2(int64_t d)
{
        int64_t r = 1;
        if (d <= 1 || d > ((int64_t)1 << 61))
                return d;
        while (r < d)
                r <<= 1;
        return r;
}

/* The bucket of a run: every input's type, rank and dimensions, with the
 * symbolic dimensions (the batch) rounded up to a power of two; into s->key. */
static size_t bucket_key(sl_session_t *s, const sl_tensor_t *inputs)
{
        const sl_model_t *m = s->model;
        size_t n = 0;
        for (size_t i = 0; i < m->n_inputs; i++) {
                const sl_value_info_t *vi = &m->inputs[i];
                s->key[n++] = inputs[i].dtype;
                s->key[n++] = inputs[i].ndim;
                for (int d = 0; d < inputs[i].ndim; d++) {
                        bool sym = vi->ndim < 0 || d >= vi->ndim || vi->dims[d] < 0;
                        s->key[n++] = sym ? round_pow2(inputs[i].dims[d]) : inputs[i].dims[d];
                }
        }
        return n;
}

/* The plan of the bucket in s->key, made (unplanned) when new; the least
 * recently used one makes room. NULL on allocation failure (the run then
 * goes without an arena). */
static plan_t *plan_find(sl_session_t *s, size_t key_len)
{
        size_t n = s->model->n_values + 1;
        plan_t *p = NULL;
        for (int k = 0; k < PLANS_MAX; k++) {
                plan_t *q = &s->plans[k];
                if (q->key && q->key_len == key_len &&
                    !memcmp(q->key, s->key, sizeof(int64_t) * key_len))
                        return q;
                if (!p || !q->key || (p->key && q->used < p->used))
                        p = q;
        }
        plan_cleanup(p);
        if (!(p->key = malloc(sizeof(int64_t) * (key_len + 1))) ||
            !(p->need = calloc(n, sizeof(size_t))) || !(p->cap = calloc(n, sizeof(size_t))) ||
            !(p->off = malloc(sizeof(size_t) * n))) {
                plan_cleanup(p);
                return NULL;
        }
        memcpy(p->key, s->key, sizeof(int64_t) * key_len);
        p->key_len = key_len;
        for (size_t v = 0; v < n; v++)
                p->off[v] = SL_PLAN_NONE;
        return p;
}

/*
 * After a run of bucket \p p that had no arena or outgrew it: place every
 * value at its largest size seen, move the graph outputs into the new arena
 * and free the values' own buffers. On allocation failure nothing changes
 * (the next run of the bucket tries again).
 */
static void plan_build(sl_session_t *s, plan_t *p)
{
        const sl_model_t *m = s->model;
        size_t n = m->n_values, total, *off = malloc(sizeof(size_t) * (n + 1));
        void *arena = NULL;

        if (!off || (total = sl_plan_layout(n, p->need, s->first, s->last, off)) == SL_PLAN_NONE ||
            posix_memalign(&arena, SL_PLAN_ALIGN, total ? total : SL_PLAN_ALIGN)) {
                free(off);
                return;
        }
        for (size_t o = 0; o < m->n_outputs; o++) {
                int v = m->output_ids[o];
                slot_t *sl;
                char *dst;
                if (v < 0 || (size_t)v >= n || off[v] == SL_PLAN_NONE)
                        continue;
                sl = &s->slots[v];
                dst = (char *)arena + off[v];
                if (sl->run == s->runs && sl->t.data && sl->t.data != dst && sl->t.nbytes)
                        memcpy(dst, sl->t.data, sl->t.nbytes);
                sl->t.data = dst;
        }
        p->values_size = 0;
        for (size_t v = 0; v < n; v++) {
                slot_t *sl = &s->slots[v];
                bool is_output = false;
                if (off[v] == SL_PLAN_NONE)
                        continue;
                for (size_t o = 0; o < m->n_outputs && !is_output; o++)
                        is_output = m->output_ids[o] == (int)v;
                if (!is_output)
                        sl->t.data = NULL; /* stale until a node shapes it again */
                free(sl->buf);
                sl->buf = NULL;
                sl->cap = 0;
                p->cap[v] = p->need[v];
                p->values_size += p->need[v];
        }
        free(p->off);
        free(p->arena);
        p->off = off;
        p->arena = arena;
        p->arena_size = total;
        p->stale = false;
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
        session->runs++;
        session->plan = session->first ? plan_find(session, bucket_key(session, inputs)) : NULL;
        if (session->plan)
                session->plan->used = session->runs;
        csr = fpu_enter();
        err = run_nodes(session, errstr, errstr_size);
        fpu_leave(csr);
        if (!err && session->plan && (!session->plan->arena || session->plan->stale))
                plan_build(session, session->plan);
        session->plan = NULL;
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
