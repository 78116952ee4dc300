/*
 * Model loading: protobuf-c parse of the ModelProto, initializers, graph
 * inputs/outputs, name resolution, validation and topological sort.
 *
 * Every error names the file, and for graph errors the node (name or index)
 * and op_type, so that a person can find the fault in Netron.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* Name -> value id, open addressing (names live in the ModelProto). */
typedef struct {
        size_t cap, count;
        const char **keys;
        int *ids;
} namemap_t;

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static int namemap_init(namemap_t *m, size_t n)
{
        m->cap = 16;
        m->count = 0;
        while (m->cap < 2 * n + 1)
                m->cap *= 2;
        m->keys = calloc(m->cap, sizeof(*m->keys));
        m->ids = calloc(m->cap, sizeof(*m->ids));
        return m->keys && m->ids ? 0 : -1;
}

static void namemap_cleanup(namemap_t *m)
{
        free(m->keys);
        free(m->ids);
}

static int namemap_get(const namemap_t *m, const char *k)
{
        for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                if (!m->keys[i])
                        return -1;
                if (!strcmp(m->keys[i], k))
                        return m->ids[i];
        }
}

static void namemap_insert(namemap_t *m, const char *k, int id)
{
        size_t i;
        for (i = hash_str(k) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
                ;
        m->keys[i] = k;
        m->ids[i] = id;
        m->count++;
}

/* Doubles the table (outer-scope names are added after it was sized). */
static int namemap_grow(namemap_t *m)
{
        namemap_t n = {0};
        n.cap = m->cap * 2;
        if (!(n.keys = calloc(n.cap, sizeof(*n.keys))) || !(n.ids = calloc(n.cap, sizeof(int)))) {
                namemap_cleanup(&n);
                return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
                if (m->keys[i])
                        namemap_insert(&n, m->keys[i], m->ids[i]);
        namemap_cleanup(m);
        *m = n;
        return 0;
}

/* Inserts k -> id; returns the existing id when k is already present, -2 on
 * allocation failure, -1 when inserted. */
static int namemap_put(namemap_t *m, const char *k, int id)
{
        int old = namemap_get(m, k);
        if (old >= 0)
                return old;
        if (2 * (m->count + 1) >= m->cap && namemap_grow(m))
                return -2;
        namemap_insert(m, k, id);
        return -1;
}

/* A graph being built, and the graphs enclosing it (outer-scope names). */
typedef struct scope_s {
        sl_model_t *m;
        namemap_t *map;
        struct scope_s *parent;
} scope_t;

/* Subgraphs nest at most this deep (a hostile file could nest thousands). */
#define SUBGRAPH_DEPTH_MAX 16

/* "node 'conv1' (#3, Conv)" or "node #3 (Conv)" */
static const char *node_label(const Onnx__NodeProto *np, size_t idx, char *buf, size_t size)
{
        const char *op = np->op_type ? np->op_type : "?";
        if (np->name && *np->name)
                return sl_strfmt(buf, size, "node '%s' (#%zu, %s)", np->name, idx, op);
        return sl_strfmt(buf, size, "node #%zu (%s)", idx, op);
}

static bool default_domain(const char *d)
{
        return !d || !*d || !strcmp(d, "ai.onnx");
}

static sl_err_t value_info(const Onnx__ValueInfoProto *vi, sl_value_info_t *out, const char *path,
                           char *errstr, size_t errstr_size)
{
        const Onnx__TypeProto *tp = vi->type;
        const Onnx__TensorShapeProto *sh;

        out->name = vi->name ? vi->name : "";
        out->dtype = SL_DT_UNDEFINED;
        out->ndim = -1;
        if (!tp)
                return SL_OK;
        if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
                sl_strfmt(errstr, errstr_size,
                          "%s: graph value '%s' is not a tensor (sequence/map/optional types are "
                          "not supported)",
                          path, out->name);
                return SL_ERR_UNSUPPORTED;
        }
        out->dtype = (sl_dtype_t)tp->tensor_type->elem_type;
        if (tp->tensor_type->has_elem_type && !sl_dtype_size(out->dtype)) {
                sl_strfmt(errstr, errstr_size, "%s: graph value '%s' has data type %s (%d)", path,
                          out->name, sl_dtype_name(out->dtype), (int)out->dtype);
                return SL_ERR_UNSUPPORTED;
        }
        if (!(sh = tp->tensor_type->shape))
                return SL_OK;
        if (sh->n_dim > SL_MAX_DIMS) {
                sl_strfmt(errstr, errstr_size, "%s: graph value '%s' has rank %zu > %d", path,
                          out->name, sh->n_dim, SL_MAX_DIMS);
                return SL_ERR_UNSUPPORTED;
        }
        out->ndim = (int)sh->n_dim;
        for (size_t i = 0; i < sh->n_dim; i++) {
                const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
                if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                        if (d->dim_value < 0) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: graph value '%s' has negative dimension %lld", path,
                                          out->name, (long long)d->dim_value);
                                return SL_ERR_MODEL;
                        }
                        out->dims[i] = d->dim_value;
                } else {
                        out->dims[i] = -1; /* dim_param ("batch") or unknown */
                }
        }
        return SL_OK;
}

/* New value \p name; returns its id, -1 when the name is already defined in
 * this graph, -2 on allocation failure. Slot n_values stays free (the sink). */
static int add_value(sl_model_t *m, namemap_t *map, const char *name, sl_value_kind_t kind,
                     int producer)
{
        int id = (int)m->n_values, r;
        if (m->n_values + 2 > m->values_cap) {
                size_t cap = m->values_cap ? 2 * m->values_cap : 16;
                sl_value_t *nv = realloc(m->values, cap * sizeof(*nv));
                if (!nv)
                        return -2;
                memset(nv + m->values_cap, 0, (cap - m->values_cap) * sizeof(*nv));
                m->values = nv;
                m->values_cap = cap;
        }
        if ((r = namemap_put(map, name, id)) != -1)
                return r == -2 ? -2 : -1;
        m->values[id].name = name;
        m->values[id].kind = kind;
        m->values[id].producer = producer;
        m->values[id].outer = -1;
        m->n_values++;
        return id;
}

/*
 * Value id of \p name as seen from graph \p sc: a value of the graph itself,
 * else a value of an enclosing graph, which becomes an SL_VALUE_OUTER value of
 * this graph (and of every graph in between). -1 when no graph defines the
 * name, -2 on allocation failure.
 */
static int resolve(scope_t *sc, const char *name)
{
        int id = namemap_get(sc->map, name), pid;
        if (id >= 0 || !sc->parent)
                return id;
        if ((pid = resolve(sc->parent, name)) < 0)
                return pid;
        if ((id = add_value(sc->m, sc->map, name, SL_VALUE_OUTER, -1)) >= 0)
                sc->m->values[id].outer = pid;
        return id;
}

/* Kahn's algorithm over node indices; fills order[] or returns the first node left in a cycle. */
static int toposort(const sl_model_t *m, sl_node_t *nodes, size_t n, size_t *order)
{
        int *indeg = calloc(n ? n : 1, sizeof(int));
        size_t *cstart = calloc(m->n_values + 2, sizeof(size_t));
        size_t *clist = NULL, *fill = NULL, total = 0, head = 0, tail = 0;
        int ret = -2;

        if (!indeg || !cstart)
                goto done;
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < nodes[i].n_in; k++) {
                        int v = nodes[i].in[k];
                        if (v >= 0 && m->values[v].kind == SL_VALUE_NODE) {
                                indeg[i]++;
                                cstart[v + 1]++;
                                total++;
                        }
                }
        for (size_t v = 0; v < m->n_values; v++)
                cstart[v + 1] += cstart[v];
        if (!(clist = malloc((total ? total : 1) * sizeof(size_t))) ||
            !(fill = malloc((m->n_values + 1) * sizeof(size_t))))
                goto done;
        memcpy(fill, cstart, (m->n_values + 1) * sizeof(size_t));
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < nodes[i].n_in; k++) {
                        int v = nodes[i].in[k];
                        if (v >= 0 && m->values[v].kind == SL_VALUE_NODE)
                                clist[fill[v]++] = i;
                }
        for (size_t i = 0; i < n; i++)
                if (!indeg[i])
                        order[tail++] = i;
        while (head < tail) {
                const sl_node_t *nd = &nodes[order[head++]];
                for (int k = 0; k < nd->n_out; k++) {
                        int v = nd->out[k];
                        if (v < 0 || (size_t)v >= m->n_values)
                                continue;
                        for (size_t c = cstart[v]; c < cstart[v + 1]; c++)
                                if (--indeg[clist[c]] == 0)
                                        order[tail++] = clist[c];
                }
        }
        ret = -1;
        if (tail < n)
                for (size_t i = 0; i < n; i++)
                        if (indeg[i]) {
                                ret = (int)i;
                                break;
                        }
done:
        free(indeg);
        free(cstart);
        free(clist);
        free(fill);
        return ret;
}

static sl_err_t build_graph(scope_t *parent, sl_model_t *m, char *errstr, size_t errstr_size);

/* Loads GRAPH attribute \p a of node \p nd (label \p label) as a subgraph of
 * scope \p sc, and records the outer-scope values it reads as implicit
 * inputs of the node. */
static sl_err_t build_subgraph(scope_t *sc, sl_node_t *nd, int k, const char *label, char *errstr,
                               size_t errstr_size)
{
        const Onnx__AttributeProto *a = nd->proto->attribute[k];
        sl_model_t *m = sc->m, *sub;
        size_t plen;
        sl_err_t err;
        int *in;

        if (m->depth + 1 > SUBGRAPH_DEPTH_MAX) {
                sl_strfmt(errstr, errstr_size, "%s: %s: subgraphs nest deeper than %d", m->path,
                          label, SUBGRAPH_DEPTH_MAX);
                return SL_ERR_UNSUPPORTED;
        }
        plen = strlen(m->path) + strlen(label) + strlen(a->name ? a->name : "") + 32;
        if (!(sub = calloc(1, sizeof(*sub))) || !(sub->path = malloc(plen))) {
                free(sub);
                return SL_ERR_NOMEM;
        }
        nd->sub[k] = sub;
        sl_strfmt(sub->path, plen, "%s: %s, graph '%s'", m->path, label, a->name ? a->name : "");
        sub->graph = a->g;
        sub->parent = m;
        sub->depth = m->depth + 1;
        sub->opset = m->opset;
        if ((err = build_graph(sc, sub, errstr, errstr_size)))
                return err;
        if (!(in = realloc(nd->in, (size_t)(nd->n_in + (int)sub->n_outer + 1) * sizeof(int))))
                return SL_ERR_NOMEM;
        nd->in = in;
        for (size_t i = 0; i < sub->n_outer; i++) {
                int v = sub->values[sub->outer_ids[i]].outer, dup = 0;
                for (int j = nd->n_in - nd->n_implicit; j < nd->n_in; j++)
                        dup |= nd->in[j] == v;
                if (!dup) {
                        nd->in[nd->n_in++] = v;
                        nd->n_implicit++;
                }
        }
        return SL_OK;
}

/* Nodes of sc->m->graph in file order: operators, outputs, inputs, subgraphs.
 * Omitted outputs are left as -2 (the sink, assigned once all values exist). */
static sl_err_t build_nodes(scope_t *sc, char *errstr, size_t errstr_size)
{
        sl_model_t *m = sc->m;
        const Onnx__GraphProto *g = m->graph;
        size_t n = g->n_node;
        char label[256], why[512];
        sl_err_t err;

        if (!(m->nodes = calloc(n ? n : 1, sizeof(*m->nodes))))
                return SL_ERR_NOMEM;
        m->n_nodes = n;
        /* Pass 1: operators, attributes and outputs. */
        for (size_t i = 0; i < n; i++) {
                const Onnx__NodeProto *np = g->node[i];
                sl_node_t *nd = &m->nodes[i];
                node_label(np, i, label, sizeof(label));
                nd->proto = np;
                nd->name = np->name ? np->name : "";
                nd->index = i;
                if (!np->op_type || !*np->op_type) {
                        sl_strfmt(errstr, errstr_size, "%s: %s has no op_type", m->path, label);
                        return SL_ERR_MODEL;
                }
                if (!default_domain(np->domain) || !(nd->op = sl_op_find(np->op_type))) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: operator %s%s%s is not supported",
                                  m->path, label, default_domain(np->domain) ? "" : np->domain,
                                  default_domain(np->domain) ? "" : ".", np->op_type);
                        return SL_ERR_UNSUPPORTED;
                }
                if (np->n_input > SL_NODE_IO_MAX || np->n_output > SL_NODE_IO_MAX) {
                        sl_strfmt(errstr, errstr_size, "%s: %s has more than %d inputs/outputs",
                                  m->path, label, SL_NODE_IO_MAX);
                        return SL_ERR_UNSUPPORTED;
                }
                if (nd->op->check && (err = nd->op->check(nd, m->opset, why, sizeof(why)))) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: %s", m->path, label, why);
                        return err;
                }
                nd->n_in = (int)np->n_input;
                nd->n_out = (int)np->n_output;
                if (!(nd->in = calloc(np->n_input + 1, sizeof(int))) ||
                    !(nd->out = calloc(np->n_output + 1, sizeof(int))))
                        return SL_ERR_NOMEM;
                for (size_t k = 0; k < np->n_output; k++) {
                        const char *on = np->output[k];
                        if (!on || !*on) {
                                nd->out[k] = -2; /* resolved to the sink later */
                                continue;
                        }
                        if ((nd->out[k] = add_value(m, sc->map, on, SL_VALUE_NODE, (int)i)) < 0) {
                                if (nd->out[k] == -2)
                                        return SL_ERR_NOMEM;
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: output '%s' is already defined", m->path, label,
                                          on);
                                return SL_ERR_MODEL;
                        }
                }
        }
        /* Pass 2: resolve inputs (here or in enclosing graphs); load subgraphs. */
        for (size_t i = 0; i < n; i++) {
                const Onnx__NodeProto *np = g->node[i];
                sl_node_t *nd = &m->nodes[i];
                node_label(np, i, label, sizeof(label));
                for (size_t k = 0; k < np->n_input; k++) {
                        const char *in = np->input[k];
                        if (!in || !*in) {
                                nd->in[k] = -1;
                                continue;
                        }
                        if ((nd->in[k] = resolve(sc, in)) == -2)
                                return SL_ERR_NOMEM;
                        if (nd->in[k] < 0) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: input '%s' is not produced by any node, "
                                          "initializer or graph input",
                                          m->path, label, in);
                                return SL_ERR_MODEL;
                        }
                }
                for (size_t k = 0; k < np->n_attribute; k++) {
                        const Onnx__AttributeProto *a = np->attribute[k];
                        if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH &&
                            !(a->g && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED))
                                continue;
                        if (!a->g) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: graph attribute '%s' has no graph", m->path,
                                          label, a->name ? a->name : "");
                                return SL_ERR_MODEL;
                        }
                        if (!nd->sub && !(nd->sub = calloc(np->n_attribute, sizeof(*nd->sub))))
                                return SL_ERR_NOMEM;
                        nd->n_sub = (int)np->n_attribute;
                        if ((err = build_subgraph(sc, nd, (int)k, label, errstr, errstr_size)))
                                return err;
                }
        }
        return SL_OK;
}

/* Topological order of m->nodes (in place); omitted outputs get the sink. */
static sl_err_t sort_nodes(sl_model_t *m, char *errstr, size_t errstr_size)
{
        size_t n = m->n_nodes, *order = malloc((n ? n : 1) * sizeof(size_t));
        sl_node_t *tmp = malloc((n ? n : 1) * sizeof(*tmp));
        char label[256];
        sl_err_t err = SL_ERR_NOMEM;
        int bad;

        if (!order || !tmp)
                goto done;
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < m->nodes[i].n_out; k++)
                        if (m->nodes[i].out[k] == -2)
                                m->nodes[i].out[k] = (int)m->n_values; /* sink */
        if ((bad = toposort(m, m->nodes, n, order)) == -2)
                goto done;
        if (bad >= 0) {
                sl_strfmt(errstr, errstr_size, "%s: %s is part of a cycle", m->path,
                          node_label(m->nodes[bad].proto, (size_t)bad, label, sizeof(label)));
                err = SL_ERR_MODEL;
                goto done;
        }
        for (size_t i = 0; i < n; i++)
                tmp[i] = m->nodes[order[i]];
        memcpy(m->nodes, tmp, n * sizeof(*tmp));
        err = SL_OK;
done:
        free(order);
        free(tmp);
        return err;
}

/* Loads m->graph: initializers, inputs, nodes, outputs; \p parent is the
 * enclosing graph's scope for a subgraph, NULL at top level. */
static sl_err_t build_graph(scope_t *parent, sl_model_t *m, char *errstr, size_t errstr_size)
{
        const Onnx__GraphProto *g = m->graph;
        namemap_t map = {0};
        scope_t sc = {m, &map, parent};
        size_t nvals = g->n_initializer + g->n_input;
        char why[512];
        sl_err_t err = SL_ERR_NOMEM;

        for (size_t i = 0; i < g->n_node; i++)
                nvals += g->node[i]->n_output;
        if (namemap_init(&map, nvals) || !(m->values = calloc(nvals + 2, sizeof(*m->values))) ||
            !(m->inputs = calloc(g->n_input + 1, sizeof(*m->inputs))) ||
            !(m->input_ids = calloc(g->n_input + 1, sizeof(int))) ||
            !(m->outputs = calloc(g->n_output + 1, sizeof(*m->outputs))) ||
            !(m->output_ids = calloc(g->n_output + 1, sizeof(int))))
                goto done;
        m->values_cap = nvals + 2;
        for (size_t i = 0; i < g->n_initializer; i++) {
                const Onnx__TensorProto *tp = g->initializer[i];
                int id = -1;
                if (!tp->name || !*tp->name ||
                    (id = add_value(m, &map, tp->name, SL_VALUE_INITIALIZER, -1)) < 0) {
                        if (id == -2)
                                goto done;
                        sl_strfmt(errstr, errstr_size,
                                  "%s: initializer #%zu '%s' is unnamed or defined twice", m->path,
                                  i, tp->name ? tp->name : "");
                        err = SL_ERR_MODEL;
                        goto done;
                }
                if ((err = sl_tensor_from_proto(tp, &m->values[id].init, why, sizeof(why)))) {
                        sl_strfmt(errstr, errstr_size, "%s: initializer: %s", m->path, why);
                        goto done;
                }
        }
        for (size_t i = 0; i < g->n_input; i++) {
                const Onnx__ValueInfoProto *vi = g->input[i];
                int id;
                if (!vi->name || !*vi->name) {
                        sl_strfmt(errstr, errstr_size, "%s: graph input #%zu has no name", m->path,
                                  i);
                        err = SL_ERR_MODEL;
                        goto done;
                }
                if (namemap_get(&map, vi->name) >= 0)
                        continue; /* an initializer also listed as input (IR < 4) */
                if ((id = add_value(m, &map, vi->name, SL_VALUE_INPUT, -1)) < 0) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
                if ((err = value_info(vi, &m->inputs[m->n_inputs], m->path, errstr, errstr_size)))
                        goto done;
                m->input_ids[m->n_inputs++] = id;
        }
        if ((err = build_nodes(&sc, errstr, errstr_size)))
                goto done;
        for (size_t i = 0; i < g->n_output; i++) {
                const Onnx__ValueInfoProto *vi = g->output[i];
                if ((err = value_info(vi, &m->outputs[i], m->path, errstr, errstr_size)))
                        goto done;
                if ((m->output_ids[i] = resolve(&sc, m->outputs[i].name)) < 0) {
                        err = SL_ERR_NOMEM;
                        if (m->output_ids[i] == -2)
                                goto done;
                        sl_strfmt(errstr, errstr_size,
                                  "%s: graph output '%s' is not produced by the graph", m->path,
                                  m->outputs[i].name);
                        err = SL_ERR_MODEL;
                        goto done;
                }
                m->n_outputs++;
        }
        err = SL_ERR_NOMEM;
        if (!(m->outer_ids = calloc(m->n_values + 1, sizeof(int))))
                goto done;
        for (size_t v = 0; v < m->n_values; v++)
                if (m->values[v].kind == SL_VALUE_OUTER)
                        m->outer_ids[m->n_outer++] = (int)v;
        if ((err = sort_nodes(m, errstr, errstr_size)))
                goto done;
        /* Subgraphs read outer values bound per run: only the top graph folds. */
        if (!m->parent && sl_fold_enabled() && (err = sl_model_fold(m)))
                goto done;
        err = sl_model_fuse(m);
done:
        namemap_cleanup(&map);
        return err;
}

sl_err_t sl_model_load(const char *path, sl_model_t **modelp, char *errstr, size_t errstr_size)
{
        sl_model_t *m = NULL;
        char *buf = NULL;
        size_t len = 0, plen;
        sl_err_t err;

        *modelp = NULL;
        if ((err = sl_file_read(path, &buf, &len, errstr, errstr_size)))
                goto fail;
        err = SL_ERR_NOMEM;
        if (!(m = calloc(1, sizeof(*m))) || !(m->path = strdup(path)))
                goto fail;
        if (!(m->proto = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf))) {
                sl_strfmt(errstr, errstr_size,
                          "%s: not a valid ONNX ModelProto (truncated or corrupt protobuf)", path);
                err = SL_ERR_MODEL;
                goto fail;
        }
        free(buf);
        buf = NULL;
        if (!m->proto->graph) {
                sl_strfmt(errstr, errstr_size, "%s: ModelProto has no graph", path);
                err = SL_ERR_MODEL;
                goto fail;
        }
        m->graph = m->proto->graph;
        m->opset = 1; /* the spec's default when no opset_import names the domain */
        for (size_t i = 0; i < m->proto->n_opset_import; i++) {
                const Onnx__OperatorSetIdProto *os = m->proto->opset_import[i];
                if (default_domain(os->domain) && os->has_version)
                        m->opset = os->version;
        }
        plen = strlen(m->proto->producer_name ? m->proto->producer_name : "") +
               strlen(m->proto->producer_version ? m->proto->producer_version : "") + 2;
        if (!(m->producer = malloc(plen)))
                goto fail;
        sl_strfmt(m->producer, plen, "%s%s%s",
                  m->proto->producer_name ? m->proto->producer_name : "",
                  m->proto->producer_version && *m->proto->producer_version ? " " : "",
                  m->proto->producer_version ? m->proto->producer_version : "");
        if ((err = build_graph(NULL, m, errstr, errstr_size)))
                goto fail;
        *modelp = m;
        return SL_OK;
fail:
        free(buf);
        sl_model_destroy(m);
        return err;
}

void sl_model_destroy(sl_model_t *model)
{
        if (!model)
                return;
        for (size_t i = 0; i < model->n_nodes; i++) {
                free(model->nodes[i].in);
                free(model->nodes[i].out);
                for (int k = 0; k < model->nodes[i].n_sub; k++)
                        sl_model_destroy(model->nodes[i].sub[k]);
                free(model->nodes[i].sub);
        }
        for (size_t i = 0; i < model->n_values; i++)
                free(model->values[i].init.data);
        free(model->nodes);
        free(model->values);
        free(model->outer_ids);
        free(model->inputs);
        free(model->outputs);
        free(model->input_ids);
        free(model->output_ids);
        free(model->producer);
        if (model->proto)
                onnx__model_proto__free_unpacked(model->proto, NULL);
        free(model->path);
        free(model);
}

size_t sl_model_input_count(const sl_model_t *model)
{
        return model->n_inputs;
}

const sl_value_info_t *sl_model_input(const sl_model_t *model, size_t i)
{
        return i < model->n_inputs ? &model->inputs[i] : NULL;
}

size_t sl_model_output_count(const sl_model_t *model)
{
        return model->n_outputs;
}

const sl_value_info_t *sl_model_output(const sl_model_t *model, size_t i)
{
        return i < model->n_outputs ? &model->outputs[i] : NULL;
}

int64_t sl_model_opset(const sl_model_t *model)
{
        return model->opset;
}

const char *sl_model_producer(const sl_model_t *model)
{
        return model->producer ? model->producer : "";
}

size_t sl_model_node_count(const sl_model_t *model)
{
        return model->n_nodes;
}

const char *sl_model_node_op_type(const sl_model_t *model, size_t i)
{
        return i < model->n_nodes ? model->nodes[i].proto->op_type : NULL;
}
