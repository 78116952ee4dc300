/* Shared by the engine unit tests (test_engine*.c): a tiny ModelProto builder
 * (protobuf-c, packed to a temp file; every allocation is freed by b_reset())
 * and run_check(), which runs a one-input model against expected values.
 * Each test file is its own program and includes this once. */
#ifndef SL_TEST_ENGINE_FIXTURES_H
#define SL_TEST_ENGINE_FIXTURES_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "onnx.pb-c.h"

/* ---- a tiny ModelProto builder; every allocation is freed by b_reset() ---- */

static void *allocs[4096];
static size_t n_allocs;

static inline void *b_alloc(size_t size)
{
        void *p = calloc(1, size);
        assert_non_null(p);
        assert_true(n_allocs < sizeof(allocs) / sizeof(allocs[0]));
        allocs[n_allocs++] = p;
        return p;
}

static inline void b_reset(void)
{
        while (n_allocs)
                free(allocs[--n_allocs]);
}

static inline char *b_str(const char *s)
{
        char *p = b_alloc(strlen(s) + 1);
        memcpy(p, s, strlen(s) + 1);
        return p;
}

typedef struct {
        Onnx__ModelProto model;
        Onnx__GraphProto graph;
        Onnx__OperatorSetIdProto opset;
        Onnx__OperatorSetIdProto *opsets[1];
        Onnx__NodeProto *nodes[16];
        Onnx__TensorProto *inits[16];
        Onnx__ValueInfoProto *inputs[8], *outputs[8];
} builder_t;

static inline void b_init(builder_t *b, int64_t opset)
{
        memset(b, 0, sizeof(*b));
        onnx__model_proto__init(&b->model);
        onnx__graph_proto__init(&b->graph);
        onnx__operator_set_id_proto__init(&b->opset);
        b->opset.domain = b_str("");
        b->opset.has_version = 1;
        b->opset.version = opset;
        b->opsets[0] = &b->opset;
        b->model.has_ir_version = 1;
        b->model.ir_version = 8;
        b->model.n_opset_import = 1;
        b->model.opset_import = b->opsets;
        b->model.producer_name = b_str("test_engine");
        b->model.graph = &b->graph;
        b->graph.name = b_str("g");
        b->graph.node = b->nodes;
        b->graph.initializer = b->inits;
        b->graph.input = b->inputs;
        b->graph.output = b->outputs;
}

/* A value info; ndim -1 = no shape; dims[i] == -1 becomes dim_param "N". */
static inline Onnx__ValueInfoProto *b_value(const char *name, int dtype, int ndim,
                                            const int64_t *dims)
{
        Onnx__ValueInfoProto *vi = b_alloc(sizeof(*vi));
        Onnx__TypeProto *tp = b_alloc(sizeof(*tp));
        Onnx__TypeProto__Tensor *tt = b_alloc(sizeof(*tt));
        onnx__value_info_proto__init(vi);
        onnx__type_proto__init(tp);
        onnx__type_proto__tensor__init(tt);
        vi->name = b_str(name);
        vi->type = tp;
        tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp->tensor_type = tt;
        tt->has_elem_type = 1;
        tt->elem_type = dtype;
        if (ndim >= 0) {
                Onnx__TensorShapeProto *sh = b_alloc(sizeof(*sh));
                onnx__tensor_shape_proto__init(sh);
                sh->n_dim = (size_t)ndim;
                sh->dim = b_alloc(sizeof(*sh->dim) * (size_t)(ndim + 1));
                for (int i = 0; i < ndim; i++) {
                        Onnx__TensorShapeProto__Dimension *d = b_alloc(sizeof(*d));
                        onnx__tensor_shape_proto__dimension__init(d);
                        if (dims[i] < 0) {
                                d->value_case =
                                    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                                d->dim_param = b_str("N");
                        } else {
                                d->value_case =
                                    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                                d->dim_value = dims[i];
                        }
                        sh->dim[i] = d;
                }
                tt->shape = sh;
        }
        return vi;
}

static inline void b_input(builder_t *b, const char *name, int ndim, const int64_t *dims)
{
        b->inputs[b->graph.n_input++] = b_value(name, 1, ndim, dims);
}

static inline void b_output(builder_t *b, const char *name)
{
        b->outputs[b->graph.n_output++] = b_value(name, 1, -1, NULL);
}

static inline Onnx__TensorProto *b_tensor(const char *name, int ndim, const int64_t *dims,
                                          const float *vals, size_t n)
{
        Onnx__TensorProto *t = b_alloc(sizeof(*t));
        onnx__tensor_proto__init(t);
        t->name = b_str(name);
        t->has_data_type = 1;
        t->data_type = 1;
        t->n_dims = (size_t)ndim;
        t->dims = b_alloc(sizeof(int64_t) * (size_t)(ndim + 1));
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
        t->n_float_data = n;
        t->float_data = b_alloc(sizeof(float) * (n + 1));
        memcpy(t->float_data, vals, sizeof(float) * n);
        return t;
}

static inline void b_init_f(builder_t *b, const char *name, int ndim, const int64_t *dims,
                            const float *vals, size_t n)
{
        b->inits[b->graph.n_initializer++] = b_tensor(name, ndim, dims, vals, n);
}

static inline void b_init_i64(builder_t *b, const char *name, const int64_t *vals, size_t n)
{
        Onnx__TensorProto *t = b_alloc(sizeof(*t));
        onnx__tensor_proto__init(t);
        t->name = b_str(name);
        t->has_data_type = 1;
        t->data_type = 7;
        t->n_dims = 1;
        t->dims = b_alloc(sizeof(int64_t));
        t->dims[0] = (int64_t)n;
        t->n_int64_data = n;
        t->int64_data = b_alloc(sizeof(int64_t) * (n + 1));
        memcpy(t->int64_data, vals, sizeof(int64_t) * n);
        b->inits[b->graph.n_initializer++] = t;
}

/* Node with inputs/outputs as comma-separated lists ("" entries allowed). */
static inline Onnx__NodeProto *b_node(builder_t *b, const char *op, const char *name,
                                      const char *ins, const char *outs)
{
        Onnx__NodeProto *n = b_alloc(sizeof(*n));
        const char *lists[2] = {ins, outs};
        onnx__node_proto__init(n);
        n->op_type = b_str(op);
        n->name = b_str(name);
        n->attribute = b_alloc(sizeof(*n->attribute) * 8);
        for (int l = 0; l < 2; l++) {
                char **arr = b_alloc(sizeof(char *) * 16);
                size_t cnt = 0;
                const char *s = lists[l];
                while (*s) {
                        const char *e = strchr(s, ',');
                        size_t len = e ? (size_t)(e - s) : strlen(s);
                        char *v = b_alloc(len + 1);
                        memcpy(v, s, len);
                        arr[cnt++] = v;
                        if (!e)
                                break;
                        s = e + 1;
                }
                if (l == 0) {
                        n->input = arr;
                        n->n_input = cnt;
                } else {
                        n->output = arr;
                        n->n_output = cnt;
                }
        }
        b->nodes[b->graph.n_node++] = n;
        return n;
}

static inline Onnx__AttributeProto *attr_new(Onnx__NodeProto *n, const char *name)
{
        Onnx__AttributeProto *a = b_alloc(sizeof(*a));
        onnx__attribute_proto__init(a);
        a->name = b_str(name);
        a->has_type = 1;
        n->attribute[n->n_attribute++] = a;
        return a;
}

static inline void attr_i(Onnx__NodeProto *n, const char *name, int64_t v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = v;
}

static inline void attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t cnt)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->n_ints = cnt;
        a->ints = b_alloc(sizeof(int64_t) * (cnt + 1));
        memcpy(a->ints, v, sizeof(int64_t) * cnt);
}

static inline void attr_s(Onnx__NodeProto *n, const char *name, const char *v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        a->has_s = 1;
        a->s.data = (uint8_t *)b_str(v);
        a->s.len = strlen(v);
}

static inline void attr_f(Onnx__NodeProto *n, const char *name, float v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = v;
}

static char tmp_path[64];

/* Packs the model to a temp file; returns its path. */
static inline const char *b_write(builder_t *b)
{
        size_t len = onnx__model_proto__get_packed_size(&b->model);
        uint8_t *buf = malloc(len + 1);
        int fd;
        assert_non_null(buf);
        onnx__model_proto__pack(&b->model, buf);
        snprintf(tmp_path, sizeof(tmp_path), "/tmp/sl_test_engine_XXXXXX");
        fd = mkstemp(tmp_path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, len), (ssize_t)len);
        close(fd);
        free(buf);
        return tmp_path;
}

static inline sl_model_t *b_load(builder_t *b)
{
        char err[512] = "";
        sl_model_t *m = NULL;
        sl_err_t e = sl_model_load(b_write(b), &m, err, sizeof(err));
        unlink(tmp_path);
        if (e)
                fail_msg("load failed: %s", err);
        return m;
}

/* Runs a one-input, one-output model; compares with expected (abs tol 1e-5). */
static inline void run_check(builder_t *b, const float *x, int ndim, const int64_t *dims,
                             const float *want, int want_ndim, const int64_t *want_dims)
{
        sl_model_t *m = b_load(b);
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out = {0};
        char err[512] = "";
        int64_t n = 1;

        in.dtype = SL_DT_FLOAT;
        in.ndim = ndim;
        for (int i = 0; i < ndim; i++) {
                in.dims[i] = dims[i];
                n *= dims[i];
        }
        in.data = (void *)x;
        in.nbytes = (size_t)n * sizeof(float);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        if (sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)))
                fail_msg("run failed: %s", err);
        assert_int_equal(out.ndim, want_ndim);
        for (int i = 0; i < want_ndim; i++)
                assert_int_equal(out.dims[i], want_dims[i]);
        for (int64_t i = 0; i < sl_tensor_numel(&out); i++) {
                float g = ((const float *)out.data)[i];
                if (fabsf(g - want[i]) > 1e-5f + 1e-4f * fabsf(want[i]))
                        fail_msg("element %lld: got %.7g, expected %.7g", (long long)i, g, want[i]);
        }
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

/* GRAPH attribute \p name of node \p n holding sub-builder \p sub's graph. */
static inline void attr_g(Onnx__NodeProto *n, const char *name, builder_t *sub)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        a->g = &sub->graph;
}

#endif /* SL_TEST_ENGINE_FIXTURES_H */
