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
        size_t cap;
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

/* Inserts k -> id; returns the existing id when k is already present. */
static int namemap_put(namemap_t *m, const char *k, int id)
{
        size_t i;
        for (i = hash_str(k) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
                if (!strcmp(m->keys[i], k))
                        return m->ids[i];
        m->keys[i] = k;
        m->ids[i] = id;
        return -1;
}

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
        if (tp->tensor_type->has_elem_type &&
            (!sl_dtype_size(out->dtype) || out->dtype == SL_DT_FLOAT16)) {
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

static int add_value(sl_model_t *m, namemap_t *map, const char *name, sl_value_kind_t kind,
                     int producer)
{
        int id = (int)m->n_values;
        if (namemap_put(map, name, id) >= 0)
                return -1;
        m->values[id].name = name;
        m->values[id].kind = kind;
        m->values[id].producer = producer;
        m->n_values++;
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

static sl_err_t build_nodes(sl_model_t *m, namemap_t *map, char *errstr, size_t errstr_size)
{
        const Onnx__GraphProto *g = m->proto->graph;
        size_t n = g->n_node, *order = NULL;
        sl_node_t *tmp = calloc(n ? n : 1, sizeof(*tmp));
        char label[256], why[512];
        sl_err_t err = SL_ERR_NOMEM;
        int bad;

        if (!tmp || !(order = malloc((n ? n : 1) * sizeof(size_t))))
                goto fail;
        /* Pass 1: operators, attributes and outputs. */
        for (size_t i = 0; i < n; i++) {
                const Onnx__NodeProto *np = g->node[i];
                sl_node_t *nd = &tmp[i];
                node_label(np, i, label, sizeof(label));
                nd->proto = np;
                nd->name = np->name ? np->name : "";
                nd->index = i;
                if (!np->op_type || !*np->op_type) {
                        sl_strfmt(errstr, errstr_size, "%s: %s has no op_type", m->path, label);
                        err = SL_ERR_MODEL;
                        goto fail;
                }
                if (!default_domain(np->domain) || !(nd->op = sl_op_find(np->op_type))) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: operator %s%s%s is not supported",
                                  m->path, label, default_domain(np->domain) ? "" : np->domain,
                                  default_domain(np->domain) ? "" : ".", np->op_type);
                        err = SL_ERR_UNSUPPORTED;
                        goto fail;
                }
                if (np->n_input > SL_NODE_IO_MAX || np->n_output > SL_NODE_IO_MAX) {
                        sl_strfmt(errstr, errstr_size, "%s: %s has more than %d inputs/outputs",
                                  m->path, label, SL_NODE_IO_MAX);
                        err = SL_ERR_UNSUPPORTED;
                        goto fail;
                }
                if (nd->op->check && (err = nd->op->check(nd, m->opset, why, sizeof(why)))) {
                        sl_strfmt(errstr, errstr_size, "%s: %s: %s", m->path, label, why);
                        goto fail;
                }
                nd->n_in = (int)np->n_input;
                nd->n_out = (int)np->n_output;
                if (!(nd->in = calloc(np->n_input + 1, sizeof(int))) ||
                    !(nd->out = calloc(np->n_output + 1, sizeof(int)))) {
                        err = SL_ERR_NOMEM;
                        goto fail;
                }
                for (size_t k = 0; k < np->n_output; k++) {
                        const char *on = np->output[k];
                        if (!on || !*on) {
                                nd->out[k] = -2; /* resolved to the sink below */
                                continue;
                        }
                        if ((nd->out[k] = add_value(m, map, on, SL_VALUE_NODE, (int)i)) < 0) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: output '%s' is already defined", m->path, label,
                                          on);
                                err = SL_ERR_MODEL;
                                goto fail;
                        }
                }
        }
        /* Pass 2: resolve inputs. */
        for (size_t i = 0; i < n; i++) {
                const Onnx__NodeProto *np = g->node[i];
                for (size_t k = 0; k < np->n_input; k++) {
                        const char *in = np->input[k];
                        if (!in || !*in) {
                                tmp[i].in[k] = -1;
                                continue;
                        }
                        if ((tmp[i].in[k] = namemap_get(map, in)) < 0) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s: %s: input '%s' is not produced by any node, "
                                          "initializer or graph input",
                                          m->path, node_label(np, i, label, sizeof(label)), in);
                                err = SL_ERR_MODEL;
                                goto fail;
                        }
                }
                for (size_t k = 0; k < np->n_output; k++)
                        if (tmp[i].out[k] == -2)
                                tmp[i].out[k] = (int)m->n_values; /* sink */
        }
        if ((bad = toposort(m, tmp, n, order)) == -2) {
                err = SL_ERR_NOMEM;
                goto fail;
        }
        if (bad >= 0) {
                sl_strfmt(errstr, errstr_size, "%s: %s is part of a cycle", m->path,
                          node_label(g->node[bad], (size_t)bad, label, sizeof(label)));
                err = SL_ERR_MODEL;
                goto fail;
        }
        if (!(m->nodes = calloc(n ? n : 1, sizeof(*m->nodes)))) {
                err = SL_ERR_NOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n; i++)
                m->nodes[i] = tmp[order[i]];
        m->n_nodes = n;
        free(tmp);
        free(order);
        return SL_OK;
fail:
        for (size_t i = 0; tmp && i < n; i++) {
                free(tmp[i].in);
                free(tmp[i].out);
        }
        free(tmp);
        free(order);
        return err;
}

static sl_err_t build_graph(sl_model_t *m, char *errstr, size_t errstr_size)
{
        const Onnx__GraphProto *g = m->proto->graph;
        namemap_t map = {0};
        size_t nvals = g->n_initializer + g->n_input;
        char why[512];
        sl_err_t err = SL_ERR_NOMEM;

        for (size_t i = 0; i < g->n_node; i++)
                nvals += g->node[i]->n_output;
        if (namemap_init(&map, nvals) || !(m->values = calloc(nvals + 1, sizeof(*m->values))) ||
            !(m->inputs = calloc(g->n_input + 1, sizeof(*m->inputs))) ||
            !(m->input_ids = calloc(g->n_input + 1, sizeof(int))) ||
            !(m->outputs = calloc(g->n_output + 1, sizeof(*m->outputs))) ||
            !(m->output_ids = calloc(g->n_output + 1, sizeof(int))))
                goto done;
        for (size_t i = 0; i < g->n_initializer; i++) {
                const Onnx__TensorProto *tp = g->initializer[i];
                int id;
                if (!tp->name || !*tp->name ||
                    (id = add_value(m, &map, tp->name, SL_VALUE_INITIALIZER, -1)) < 0) {
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
                if ((id = add_value(m, &map, vi->name, SL_VALUE_INPUT, -1)) < 0)
                        continue;
                if ((err = value_info(vi, &m->inputs[m->n_inputs], m->path, errstr, errstr_size)))
                        goto done;
                m->input_ids[m->n_inputs++] = id;
        }
        if ((err = build_nodes(m, &map, errstr, errstr_size)))
                goto done;
        for (size_t i = 0; i < g->n_output; i++) {
                const Onnx__ValueInfoProto *vi = g->output[i];
                if ((err = value_info(vi, &m->outputs[i], m->path, errstr, errstr_size)))
                        goto done;
                if ((m->output_ids[i] = namemap_get(&map, m->outputs[i].name)) < 0) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: graph output '%s' is not produced by the graph", m->path,
                                  m->outputs[i].name);
                        err = SL_ERR_MODEL;
                        goto done;
                }
                m->n_outputs++;
        }
        err = SL_OK;
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
        if ((err = build_graph(m, errstr, errstr_size)))
                goto fail;
        if ((err = sl_model_fuse(m)))
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
        }
        for (size_t i = 0; i < model->n_values; i++)
                free(model->values[i].init.data);
        free(model->nodes);
        free(model->values);
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
