/*
 * Unit tests of the engine: operators against hand-computed values on tiny
 * models built in memory (protobuf-c ModelProto packed to a temp file), and
 * the loader's error messages on broken and hostile files.
 */
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

static void *b_alloc(size_t size)
{
        void *p = calloc(1, size);
        assert_non_null(p);
        assert_true(n_allocs < sizeof(allocs) / sizeof(allocs[0]));
        allocs[n_allocs++] = p;
        return p;
}

static void b_reset(void)
{
        while (n_allocs)
                free(allocs[--n_allocs]);
}

static char *b_str(const char *s)
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

static void b_init(builder_t *b, int64_t opset)
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
static Onnx__ValueInfoProto *b_value(const char *name, int dtype, int ndim, const int64_t *dims)
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

static void b_input(builder_t *b, const char *name, int ndim, const int64_t *dims)
{
        b->inputs[b->graph.n_input++] = b_value(name, 1, ndim, dims);
}

static void b_output(builder_t *b, const char *name)
{
        b->outputs[b->graph.n_output++] = b_value(name, 1, -1, NULL);
}

static Onnx__TensorProto *b_tensor(const char *name, int ndim, const int64_t *dims,
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

static void b_init_f(builder_t *b, const char *name, int ndim, const int64_t *dims,
                     const float *vals, size_t n)
{
        b->inits[b->graph.n_initializer++] = b_tensor(name, ndim, dims, vals, n);
}

static void b_init_i64(builder_t *b, const char *name, const int64_t *vals, size_t n)
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
static Onnx__NodeProto *b_node(builder_t *b, const char *op, const char *name, const char *ins,
                               const char *outs)
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

static Onnx__AttributeProto *attr_new(Onnx__NodeProto *n, const char *name)
{
        Onnx__AttributeProto *a = b_alloc(sizeof(*a));
        onnx__attribute_proto__init(a);
        a->name = b_str(name);
        a->has_type = 1;
        n->attribute[n->n_attribute++] = a;
        return a;
}

static void attr_i(Onnx__NodeProto *n, const char *name, int64_t v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = v;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t cnt)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->n_ints = cnt;
        a->ints = b_alloc(sizeof(int64_t) * (cnt + 1));
        memcpy(a->ints, v, sizeof(int64_t) * cnt);
}

static void attr_s(Onnx__NodeProto *n, const char *name, const char *v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        a->has_s = 1;
        a->s.data = (uint8_t *)b_str(v);
        a->s.len = strlen(v);
}

static void attr_f(Onnx__NodeProto *n, const char *name, float v)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = v;
}

static char tmp_path[64];

/* Packs the model to a temp file; returns its path. */
static const char *b_write(builder_t *b)
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

static sl_model_t *b_load(builder_t *b)
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
static void run_check(builder_t *b, const float *x, int ndim, const int64_t *dims,
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

/* ---- operators ---- */

static void test_dtype(void **state)
{
        (void)state;
        assert_int_equal(sl_dtype_size(SL_DT_FLOAT), 4);
        assert_int_equal(sl_dtype_size(SL_DT_INT64), 8);
        assert_int_equal(sl_dtype_size(SL_DT_BOOL), 1);
        assert_int_equal(sl_dtype_size(SL_DT_STRING), sizeof(char *));
        assert_string_equal(sl_dtype_name(SL_DT_INT32), "int32");
        assert_non_null(sl_engine_blas_core());
}

static void test_conv_bias_pads_strides(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 1, 3, 3}, wd[] = {1, 1, 2, 2}, bd[] = {1};
        static const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[] = {1, 1, 1, 1}, bias[] = {0.5f};
        /* pads 1 all round, stride 2: windows start at -1 and 1 in each dimension. */
        static const float want[] = {1.5f, 5.5f, 11.5f, 28.5f};
        static const int64_t od[] = {1, 1, 2, 2}, pads[] = {1, 1, 1, 1}, st[] = {2, 2};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_init_f(&b, "w", 4, wd, w, 4);
        b_init_f(&b, "b", 1, bd, bias, 1);
        n = b_node(&b, "Conv", "conv", "x,w,b", "y");
        attr_ints(n, "pads", pads, 4);
        attr_ints(n, "strides", st, 2);
        b_output(&b, "y");
        run_check(&b, x, 4, xd, want, 4, od);
}

static void test_conv_groups_same_upper(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 2, 2, 2}, wd[] = {2, 1, 2, 2};
        static const float x[] = {1, 2, 3, 4, 10, 20, 30, 40};
        static const float w[] = {1, 0, 0, 0, 0, 0, 0, 1};
        /* SAME_UPPER with k=2: pad 0 before, 1 after. Group 0 picks the top-left
         * tap, group 1 the bottom-right tap (zero beyond the input). */
        static const float want[] = {1, 2, 3, 4, 40, 0, 0, 0};
        static const int64_t od[] = {1, 2, 2, 2};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_init_f(&b, "w", 4, wd, w, 8);
        n = b_node(&b, "Conv", "dw", "x,w", "y");
        attr_i(n, "group", 2);
        attr_s(n, "auto_pad", "SAME_UPPER");
        b_output(&b, "y");
        run_check(&b, x, 4, xd, want, 4, od);
}

static void test_maxpool_ceil_mode(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 1, 4, 4}, k[] = {3, 3}, st[] = {2, 2};
        float x[16];
        static const float want[] = {11, 12, 15, 16};
        static const int64_t od[] = {1, 1, 2, 2};
        Onnx__NodeProto *n;
        (void)state;
        for (int i = 0; i < 16; i++)
                x[i] = (float)(i + 1);
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        n = b_node(&b, "MaxPool", "pool", "x", "y");
        attr_ints(n, "kernel_shape", k, 2);
        attr_ints(n, "strides", st, 2);
        attr_i(n, "ceil_mode", 1);
        b_output(&b, "y");
        run_check(&b, x, 4, xd, want, 4, od);
}

static void test_avgpool_count_include_pad(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 1, 2, 2}, k[] = {2, 2}, pads[] = {1, 1, 0, 0};
        static const float x[] = {1, 2, 3, 4};
        /* windows at -1: {pad,pad,pad,1}/4, {pad,pad,1,2}/4, ... */
        static const float want[] = {0.25f, 0.75f, 1.0f, 2.5f};
        static const int64_t od[] = {1, 1, 2, 2};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        n = b_node(&b, "AveragePool", "pool", "x", "y");
        attr_ints(n, "kernel_shape", k, 2);
        attr_ints(n, "pads", pads, 4);
        attr_i(n, "count_include_pad", 1);
        b_output(&b, "y");
        run_check(&b, x, 4, xd, want, 4, od);
}

static void test_gemm_transb_broadcast_c(void **state)
{
        builder_t b;
        static const int64_t ad[] = {2, 3}, bd[] = {2, 3}, cd[] = {2};
        static const float a[] = {1, 2, 3, 4, 5, 6}, bm[] = {1, 0, 1, 0, 1, 0}, c[] = {10, 20};
        /* Y = 2 * A * B^T + 0.5 * C: rows (1+3, 2) and (4+6, 5) */
        static const float want[] = {13, 14, 25, 20};
        static const int64_t od[] = {2, 2};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "a", 2, ad);
        b_init_f(&b, "b", 2, bd, bm, 6);
        b_init_f(&b, "c", 1, cd, c, 2);
        n = b_node(&b, "Gemm", "fc", "a,b,c", "y");
        attr_i(n, "transB", 1);
        attr_f(n, "alpha", 2.0f);
        attr_f(n, "beta", 0.5f);
        b_output(&b, "y");
        run_check(&b, a, 2, ad, want, 2, od);
}

static void test_matmul_batched_broadcast(void **state)
{
        builder_t b;
        static const int64_t ad[] = {2, 1, 2}, bd[] = {2, 2};
        static const float a[] = {1, 2, 3, 4}, bm[] = {1, 1, 0, 1};
        static const float want[] = {1, 3, 3, 7};
        static const int64_t od[] = {2, 1, 2};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "a", 3, ad);
        b_init_f(&b, "b", 2, bd, bm, 4);
        b_node(&b, "MatMul", "mm", "a,b", "y");
        b_output(&b, "y");
        run_check(&b, a, 3, ad, want, 3, od);
}

static void test_add_broadcast_relu(void **state)
{
        builder_t b;
        static const int64_t xd[] = {2, 3}, cd[] = {3};
        static const float x[] = {-1, 0, 1, 2, -3, 4}, c[] = {0.5f, -1, 1};
        static const float want[] = {0, 0, 2, 2.5f, 0, 5};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 2, xd);
        b_init_f(&b, "c", 1, cd, c, 3);
        b_node(&b, "Add", "add", "x,c", "s");
        b_node(&b, "Relu", "relu", "s", "y");
        b_output(&b, "y");
        run_check(&b, x, 2, xd, want, 2, xd);
}

static void test_reshape_zero_minus_one(void **state)
{
        builder_t b;
        static const int64_t xd[] = {2, 3, 2}, shape[] = {0, -1}, od[] = {2, 6};
        static const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 3, xd);
        b_init_i64(&b, "shape", shape, 2);
        b_node(&b, "Reshape", "r", "x,shape", "y");
        b_output(&b, "y");
        run_check(&b, x, 3, xd, x, 2, od);
}

/* Softmax on [1,2,2]: opset 11 coerces to [1,4] (axis 1), opset 13 uses axis -1. */
static void test_softmax_opset_semantics(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 2, 2};
        static const float x[] = {0, 0, 0, 0};
        static const float want11[] = {0.25f, 0.25f, 0.25f, 0.25f};
        static const float want13[] = {0.5f, 0.5f, 0.5f, 0.5f};
        (void)state;
        b_init(&b, 11);
        b_input(&b, "x", 3, xd);
        b_node(&b, "Softmax", "sm", "x", "y");
        b_output(&b, "y");
        run_check(&b, x, 3, xd, want11, 3, xd);
        b_init(&b, 13);
        b_input(&b, "x", 3, xd);
        b_node(&b, "Softmax", "sm", "x", "y");
        b_output(&b, "y");
        run_check(&b, x, 3, xd, want13, 3, xd);
}

static void test_batchnorm_flatten(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 2, 1, 1}, cd[] = {2}, od[] = {1, 2};
        static const float x[] = {3, 5}, sc[] = {2, 1}, bi[] = {1, 0}, mu[] = {1, 5},
                           var[] = {4, 1};
        /* (3-1)/2*2+1 = 3, (5-5)/1*1+0 = 0 (epsilon 0) */
        static const float want[] = {3, 0};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_init_f(&b, "sc", 1, cd, sc, 2);
        b_init_f(&b, "bi", 1, cd, bi, 2);
        b_init_f(&b, "mu", 1, cd, mu, 2);
        b_init_f(&b, "var", 1, cd, var, 2);
        n = b_node(&b, "BatchNormalization", "bn", "x,sc,bi,mu,var", "t");
        attr_f(n, "epsilon", 0.0f);
        b_node(&b, "Flatten", "flat", "t", "y");
        b_output(&b, "y");
        run_check(&b, x, 4, xd, want, 2, od);
}

/* ---- loader ---- */

static void expect_load_error(builder_t *b, sl_err_t want, const char *const *needles)
{
        char err[512] = "";
        sl_model_t *m = NULL;
        const char *path = b_write(b);
        sl_err_t e = sl_model_load(path, &m, err, sizeof(err));
        unlink(tmp_path);
        assert_null(m);
        if (e != want)
                fail_msg("error %s (%s), expected %s", sl_err_name(e), err, sl_err_name(want));
        assert_non_null(strstr(err, tmp_path)); /* names the file */
        for (; *needles; needles++)
                if (!strstr(err, *needles))
                        fail_msg("'%s' not in error: %s", *needles, err);
        b_reset();
}

static void test_load_unknown_input(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1};
        static const char *const needles[] = {"relu7", "Relu", "'nope'", NULL};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        b_node(&b, "Relu", "relu7", "nope", "y");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_MODEL, needles);
}

static void test_load_cycle(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1};
        static const char *const needles[] = {"cycle", "Add", NULL};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        b_node(&b, "Add", "a", "x,q", "p");
        b_node(&b, "Add", "b", "x,p", "q");
        b_output(&b, "q");
        expect_load_error(&b, SL_ERR_MODEL, needles);
}

static void test_load_unsupported_op_and_attr(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 1, 2, 2}, k[] = {2, 2};
        static const char *const needles[] = {"#0", "FancyOp", "not supported", NULL};
        static const char *const needles2[] = {"'p1'", "MaxPool", "auto_pad", NULL};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_node(&b, "FancyOp", "", "x", "y");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_UNSUPPORTED, needles);
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        n = b_node(&b, "MaxPool", "p1", "x", "y");
        attr_ints(n, "kernel_shape", k, 2);
        attr_s(n, "auto_pad", "SOMETIMES");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_UNSUPPORTED, needles2);
}

static void test_load_hostile_initializers(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1}, neg[] = {-4}, huge[] = {INT64_MAX / 2, 4};
        static const float v[] = {1, 2, 3, 4};
        static const char *const needles[] = {"'w'", "negative", NULL};
        static const char *const needles2[] = {"'w'", NULL};
        static const char *const needles3[] = {"'w'", "external", NULL};
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        b_init_f(&b, "w", 1, neg, v, 4);
        b_node(&b, "Add", "a", "x,w", "y");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_MODEL, needles);

        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        b_init_f(&b, "w", 2, huge, v, 4);
        b_node(&b, "Add", "a", "x,w", "y");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_MODEL, needles2);

        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        b_init_f(&b, "w", 1, xd, v, 1);
        b.inits[0]->has_data_location = 1;
        b.inits[0]->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        b_node(&b, "Add", "a", "x,w", "y");
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_UNSUPPORTED, needles3);
}

static void test_load_truncated(void **state)
{
        builder_t b;
        static const int64_t xd[] = {1, 3};
        char err[512] = "";
        sl_model_t *m = NULL;
        size_t len;
        uint8_t *buf;
        FILE *fp;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "x", 2, xd);
        b_node(&b, "Relu", "r", "x", "y");
        b_output(&b, "y");
        len = onnx__model_proto__get_packed_size(&b.model);
        buf = malloc(len);
        assert_non_null(buf);
        onnx__model_proto__pack(&b.model, buf);
        /* Every truncation either loads a smaller valid model or fails cleanly. */
        for (size_t cut = 1; cut < len; cut++) {
                snprintf(tmp_path, sizeof(tmp_path), "/tmp/sl_test_engine_trunc.onnx");
                fp = fopen(tmp_path, "wb");
                assert_non_null(fp);
                assert_int_equal(fwrite(buf, 1, cut, fp), cut);
                fclose(fp);
                if (sl_model_load(tmp_path, &m, err, sizeof(err)) == SL_OK) {
                        sl_model_destroy(m);
                        m = NULL;
                } else {
                        assert_non_null(strstr(err, tmp_path));
                }
        }
        unlink(tmp_path);
        free(buf);
        assert_int_equal(sl_model_load("/nonexistent/model.onnx", &m, err, sizeof(err)), SL_ERR_IO);
        assert_non_null(strstr(err, "/nonexistent/model.onnx"));
        b_reset();
}

static void test_model_info_and_input_check(void **state)
{
        builder_t b;
        static const int64_t xd[] = {-1, 3};
        sl_model_t *m;
        sl_session_t *s = NULL;
        const sl_value_info_t *vi;
        float data[4] = {0};
        sl_tensor_t in = {0}, out = {0};
        char err[256] = "";
        (void)state;
        b_init(&b, 13);
        b_input(&b, "images", 2, xd);
        b_node(&b, "Relu", "r", "images", "y");
        b_output(&b, "y");
        m = b_load(&b);
        assert_int_equal(sl_model_opset(m), 13);
        assert_string_equal(sl_model_producer(m), "test_engine");
        assert_int_equal(sl_model_input_count(m), 1);
        vi = sl_model_input(m, 0);
        assert_string_equal(vi->name, "images");
        assert_int_equal(vi->ndim, 2);
        assert_int_equal(vi->dims[0], -1);
        assert_int_equal(vi->dims[1], 3);
        assert_int_equal(sl_model_node_count(m), 1);
        assert_string_equal(sl_model_node_op_type(m, 0), "Relu");
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        in.dtype = SL_DT_FLOAT;
        in.ndim = 2;
        in.dims[0] = 1;
        in.dims[1] = 4;
        in.data = data;
        in.nbytes = sizeof(data);
        assert_int_equal(sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)), SL_ERR_SHAPE);
        assert_non_null(strstr(err, "images"));
        in.dims[0] = 4;
        in.dims[1] = 1;
        in.dtype = SL_DT_INT32;
        assert_int_equal(sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)), SL_ERR_DATATYPE);
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

/* ---- speed paths: direct Conv against a reference, allocation-free runs ---- */

/*
 * Counting allocator: the test binary's malloc family forwards to glibc's and
 * counts calls while `alloc_armed` is set. Not under ASan, which owns malloc.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SL_COUNT_ALLOCS 0
#else
#define SL_COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static volatile int alloc_armed;
static volatile long alloc_count;

void *malloc(size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_realloc(p, n);
}

void free(void *p)
{
        __libc_free(p);
}

int posix_memalign(void **p, size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        *p = __libc_memalign(align, n);
        return *p ? 0 : 12 /* ENOMEM */;
}

void *aligned_alloc(size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
        if (alloc_armed)
                alloc_count++;
        return __libc_memalign(align, n);
}
#endif

static uint32_t rng_state = 1;

static float frand(void)
{
        rng_state = rng_state * 1664525u + 1013904223u;
        return (float)(rng_state >> 8) / 16777216.0f - 0.5f;
}

static float *frand_n(size_t n)
{
        float *p = b_alloc(sizeof(float) * (n + 1));
        for (size_t i = 0; i < n; i++)
                p[i] = frand();
        return p;
}

typedef struct {
        int64_t N, C, M, group, r; /* r: spatial rank 1 or 2 */
        int64_t in[2], k[2], s[2], d[2], pads[4];
        int relu;
} conv_case_t;

/* Plain loops over the ONNX Conv definition (2-D; 1-D as H = 1). */
static void conv_reference(const conv_case_t *cc, const float *x, const float *w, const float *b,
                           float *y, int64_t OH, int64_t OW)
{
        int64_t H = cc->r == 2 ? cc->in[0] : 1, W = cc->r == 2 ? cc->in[1] : cc->in[0];
        int64_t KH = cc->r == 2 ? cc->k[0] : 1, KW = cc->r == 2 ? cc->k[1] : cc->k[0];
        int64_t SH = cc->r == 2 ? cc->s[0] : 1, SW = cc->r == 2 ? cc->s[1] : cc->s[0];
        int64_t DH = cc->r == 2 ? cc->d[0] : 1, DW = cc->r == 2 ? cc->d[1] : cc->d[0];
        int64_t PH = cc->r == 2 ? cc->pads[0] : 0, PW = cc->r == 2 ? cc->pads[1] : cc->pads[0];
        int64_t Cg = cc->C / cc->group, Mg = cc->M / cc->group;
        for (int64_t n = 0; n < cc->N; n++)
                for (int64_t m = 0; m < cc->M; m++)
                        for (int64_t oh = 0; oh < OH; oh++)
                                for (int64_t ow = 0; ow < OW; ow++) {
                                        double acc = b[m];
                                        int64_t g = m / Mg;
                                        for (int64_t c = 0; c < Cg; c++)
                                                for (int64_t kh = 0; kh < KH; kh++)
                                                        for (int64_t kw = 0; kw < KW; kw++) {
                                                                int64_t ih = oh * SH - PH + kh * DH;
                                                                int64_t iw = ow * SW - PW + kw * DW;
                                                                if (ih < 0 || ih >= H || iw < 0 ||
                                                                    iw >= W)
                                                                        continue;
                                                                acc += (double)x[((n * cc->C +
                                                                                   g * Cg + c) *
                                                                                      H +
                                                                                  ih) *
                                                                                     W +
                                                                                 iw] *
                                                                       w[((m * Cg + c) * KH + kh) *
                                                                             KW +
                                                                         kw];
                                                        }
                                        if (cc->relu && acc < 0)
                                                acc = 0;
                                        y[((n * cc->M + m) * OH + oh) * OW + ow] = (float)acc;
                                }
}

static void conv_case_run(const conv_case_t *cc)
{
        builder_t b;
        int64_t xd[4], wd[4], bd[1] = {cc->M}, od[4], OH = 1, OW, nd = 2 + cc->r;
        int64_t Cg = cc->C / cc->group, nx, nw, ny;
        float *x, *w, *bias, *want;
        Onnx__NodeProto *n;

        OW = (cc->in[cc->r - 1] + cc->pads[cc->r - 1] + cc->pads[2 * cc->r - 1] -
              (cc->k[cc->r - 1] - 1) * cc->d[cc->r - 1] - 1) /
                 cc->s[cc->r - 1] +
             1;
        if (cc->r == 2)
                OH = (cc->in[0] + cc->pads[0] + cc->pads[2] - (cc->k[0] - 1) * cc->d[0] - 1) /
                         cc->s[0] +
                     1;
        xd[0] = cc->N, xd[1] = cc->C, wd[0] = cc->M, wd[1] = Cg;
        od[0] = cc->N, od[1] = cc->M;
        nx = cc->N * cc->C, nw = cc->M * Cg, ny = cc->N * cc->M * OH * OW;
        for (int i = 0; i < cc->r; i++) {
                xd[2 + i] = cc->in[i], wd[2 + i] = cc->k[i];
                nx *= cc->in[i], nw *= cc->k[i];
        }
        if (cc->r == 2)
                od[2] = OH, od[3] = OW;
        else
                od[2] = OW;
        b_init(&b, 13);
        x = frand_n((size_t)nx);
        w = frand_n((size_t)nw);
        bias = frand_n((size_t)cc->M);
        want = b_alloc(sizeof(float) * (size_t)ny);
        conv_reference(cc, x, w, bias, want, OH, OW);
        b_input(&b, "x", (int)nd, xd);
        b_output(&b, "y");
        b_init_f(&b, "w", (int)nd, wd, w, (size_t)nw);
        b_init_f(&b, "b", 1, bd, bias, (size_t)cc->M);
        n = b_node(&b, "Conv", "conv", "x,w,b", cc->relu ? "c" : "y");
        attr_ints(n, "strides", cc->s, (size_t)cc->r);
        attr_ints(n, "dilations", cc->d, (size_t)cc->r);
        attr_ints(n, "pads", cc->pads, (size_t)(2 * cc->r));
        attr_i(n, "group", cc->group);
        if (cc->relu)
                b_node(&b, "Relu", "relu", "c", "y");
        run_check(&b, x, (int)nd, xd, want, (int)nd, od);
}

static void test_conv_direct_vs_reference(void **state)
{
        /* Shapes that take the direct AVX-512 kernel (>= 8 channels per group,
         * >= 16 taps) through every tile shape, channel and position tails,
         * groups, strides, dilations, asymmetric pads, 1-D, fused Relu; and two
         * that take im2col + sgemm (few taps; few channels). */
        static const conv_case_t cases[] = {
            {3, 8, 20, 1, 2, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
            {2, 32, 64, 1, 2, {7, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
            {2, 6, 72, 2, 2, {9, 8}, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, 0},
            {1, 16, 16, 1, 2, {4, 4}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0},
            {2, 16, 24, 1, 1, {11, 0}, {3, 0}, {2, 0}, {1, 0}, {1, 1, 0, 0}, 1},
            {2, 80, 100, 1, 2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
            {4, 1, 32, 1, 2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
            {2, 12, 12, 12, 2, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                conv_case_run(&cases[i]);
}

/* A small CNN shaped like models/fashion_cnn, batch dimension symbolic. */
static sl_model_t *small_cnn(void)
{
        builder_t b;
        static const int64_t xd[] = {-1, 1, 12, 12}, w1d[] = {8, 1, 3, 3}, b1d[] = {8},
                             w2d[] = {16, 8, 3, 3}, b2d[] = {16}, f1d[] = {20, 144}, fb1d[] = {20},
                             f2d[] = {5, 20}, fb2d[] = {5}, k2[] = {2, 2}, p1[] = {1, 1, 1, 1};
        Onnx__NodeProto *n;
        sl_model_t *m;

        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_output(&b, "p");
        b_init_f(&b, "w1", 4, w1d, frand_n(72), 72);
        b_init_f(&b, "b1", 1, b1d, frand_n(8), 8);
        b_init_f(&b, "w2", 4, w2d, frand_n(1152), 1152);
        b_init_f(&b, "b2", 1, b2d, frand_n(16), 16);
        b_init_f(&b, "f1", 2, f1d, frand_n(2880), 2880);
        b_init_f(&b, "fb1", 1, fb1d, frand_n(20), 20);
        b_init_f(&b, "f2", 2, f2d, frand_n(100), 100);
        b_init_f(&b, "fb2", 1, fb2d, frand_n(5), 5);
        n = b_node(&b, "Conv", "c1", "x,w1,b1", "c1");
        attr_ints(n, "pads", p1, 4);
        b_node(&b, "Relu", "r1", "c1", "r1");
        n = b_node(&b, "MaxPool", "m1", "r1", "m1");
        attr_ints(n, "kernel_shape", k2, 2);
        attr_ints(n, "strides", k2, 2);
        n = b_node(&b, "Conv", "c2", "m1,w2,b2", "c2");
        attr_ints(n, "pads", p1, 4);
        b_node(&b, "Relu", "r2", "c2", "r2");
        n = b_node(&b, "MaxPool", "m2", "r2", "m2");
        attr_ints(n, "kernel_shape", k2, 2);
        attr_ints(n, "strides", k2, 2);
        b_node(&b, "Flatten", "fl", "m2", "fl");
        n = b_node(&b, "Gemm", "g1", "fl,f1,fb1", "g1");
        attr_i(n, "transB", 1);
        b_node(&b, "Relu", "r3", "g1", "r3");
        n = b_node(&b, "Gemm", "g2", "r3,f2,fb2", "g2");
        attr_i(n, "transB", 1);
        b_node(&b, "Softmax", "sm", "g2", "p");
        m = b_load(&b);
        b_reset();
        return m;
}

static void test_fuse_conv_gemm_relu(void **state)
{
        sl_model_t *m = small_cnn();
        (void)state;
        /* Three Relus folded into their Conv/Gemm and both MaxPools into their
         * Conv: 11 nodes become 6. */
        assert_int_equal(sl_model_node_count(m), 6);
        for (size_t i = 0; i < sl_model_node_count(m); i++)
                assert_string_not_equal(sl_model_node_op_type(m, i), "Relu");
        for (size_t i = 0; i < sl_model_node_count(m); i++)
                assert_string_not_equal(sl_model_node_op_type(m, i), "MaxPool");
        sl_model_destroy(m);
}

static void test_run_allocates_nothing(void **state)
{
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out = {0};
        char err[512] = "";
        float *x;
        (void)state;
        if (!SL_COUNT_ALLOCS)
                skip(); /* before allocating: a skip must not leak (LeakSanitizer) */
        m = small_cnn();
        x = malloc(sizeof(float) * 7 * 144);
        assert_non_null(x);
        /* As the worker runs it: OpenBLAS's threaded sgemm mallocs a buffer per
         * call (checked: 512 KiB from sgemm_thread_nn), its 1-thread path does not. */
        sl_engine_blas_set_threads(1);
        for (int i = 0; i < 7 * 144; i++)
                x[i] = frand();
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        in.dtype = SL_DT_FLOAT;
        in.ndim = 4;
        in.dims[1] = 1, in.dims[2] = 12, in.dims[3] = 12;
        in.data = x;
        /* Batch sizes 7, then 3 (smaller: fits), then 7 again: after the first
         * run of the largest size, no run allocates. */
        for (int r = 0; r < 4; r++) {
                static const int64_t batches[] = {7, 7, 3, 7};
                long got;
                in.dims[0] = batches[r];
                in.nbytes = sizeof(float) * 144 * (size_t)batches[r];
#if SL_COUNT_ALLOCS
                alloc_count = 0;
                alloc_armed = 1;
#endif
                if (sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)))
                        fail_msg("run failed: %s", err);
#if SL_COUNT_ALLOCS
                alloc_armed = 0;
                got = alloc_count;
#else
                got = 0;
#endif
                if (r == 0 && SL_COUNT_ALLOCS && got == 0)
                        fail_msg("the counting allocator saw no allocation in the first run");
                if (r > 0 && got != 0)
                        fail_msg("run %d (batch %lld) allocated %ld times", r,
                                 (long long)batches[r], got);
                assert_int_equal(out.dims[0], batches[r]);
                assert_int_equal(out.dims[1], 5);
        }
        free(x);
        sl_session_destroy(s);
        sl_model_destroy(m);
}

/* ---- control flow: subgraphs, outer-scope values, loop-carried values ---- */

/* GRAPH attribute \p name of node \p n holding sub-builder \p sub's graph. */
static void attr_g(Onnx__NodeProto *n, const char *name, builder_t *sub)
{
        Onnx__AttributeProto *a = attr_new(n, name);
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        a->g = &sub->graph;
}

/*
 * w = Gemm(x, I) is read by Relu and, from the outer scope, by the Loop body
 * (so Gemm+Relu must not fuse). acc starts at x; each of M = 4 iterations adds
 * w, and the body's If (nested subgraph, two levels from w) returns acc_out or
 * -acc_out by the iteration's parity: scan row i = (-1)^i * (x + (i+1) w).
 */
static void test_loop_if_outer_scope(void **state)
{
        builder_t b, body, then_g, else_g;
        static const int64_t xd[] = {1, 3}, idd[] = {3, 3}, one = 1, two = 2;
        static const float eye[] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, x[] = {1, -2, 3};
        Onnx__NodeProto *n;
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out[3];
        char err[512] = "";
        (void)state;

        b_init(&then_g, 13);
        b_node(&then_g, "Identity", "t", "acc_out", "t_out");
        b_output(&then_g, "t_out");
        b_init(&else_g, 13);
        b_node(&else_g, "Neg", "e", "acc_out", "e_out");
        b_output(&else_g, "e_out");

        b_init(&body, 13);
        body.inputs[body.graph.n_input++] = b_value("i", 7, 0, NULL);
        body.inputs[body.graph.n_input++] = b_value("c", 9, 0, NULL);
        b_input(&body, "acc", -1, NULL);
        b_init_i64(&body, "two", &two, 1);
        b_node(&body, "Identity", "c_id", "c", "c_out");
        b_node(&body, "Add", "acc_add", "acc,w", "acc_out");
        b_node(&body, "Mod", "parity", "i,two", "par");
        b_node(&body, "Cast", "to_bool", "par", "odd");
        attr_i(body.nodes[body.graph.n_node - 1], "to", 9);
        n = b_node(&body, "If", "sign", "odd", "row");
        attr_g(n, "then_branch", &else_g);
        attr_g(n, "else_branch", &then_g);
        body.outputs[body.graph.n_output++] = b_value("c_out", 9, -1, NULL);
        b_output(&body, "acc_out");
        b_output(&body, "row");

        b_init(&b, 13);
        b_input(&b, "x", 2, xd);
        b_init_f(&b, "eye", 2, idd, eye, 9);
        b_init_i64(&b, "M", &one, 1);
        b.inits[b.graph.n_initializer - 1]->int64_data[0] = 4;
        b_node(&b, "Gemm", "gemm", "x,eye", "w");
        b_node(&b, "Relu", "relu", "w", "rw");
        n = b_node(&b, "Loop", "loop", "M,,x", "acc_final,rows");
        attr_g(n, "body", &body);
        b_output(&b, "rw");
        b_output(&b, "acc_final");
        b_output(&b, "rows");
        m = b_load(&b);
        b_reset();
        assert_int_equal(sl_model_node_count(m), 3); /* Gemm, Relu, Loop: no fusion */

        in.dtype = SL_DT_FLOAT;
        in.ndim = 2;
        in.dims[0] = 1, in.dims[1] = 3;
        in.data = (void *)x;
        in.nbytes = sizeof(x);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        for (int r = 0; r < 2; r++) { /* twice: the second run reuses every buffer */
                const float *acc, *rows;
                if (sl_session_run(s, &in, 1, out, 3, err, sizeof(err)))
                        fail_msg("run failed: %s", err);
                assert_int_equal(out[1].ndim, 2);
                assert_int_equal(out[2].ndim, 3);
                assert_int_equal(out[2].dims[0], 4);
                assert_int_equal(out[2].dims[1], 1);
                assert_int_equal(out[2].dims[2], 3);
                acc = out[1].data;
                rows = out[2].data;
                for (int k = 0; k < 3; k++) {
                        assert_float_equal(acc[k], 5 * x[k], 1e-6);
                        for (int i = 0; i < 4; i++)
                                assert_float_equal(rows[i * 3 + k],
                                                   (i % 2 ? -1 : 1) * (i + 2) * x[k], 1e-6);
                }
        }
        sl_session_destroy(s);
        sl_model_destroy(m);
}

/* Scan-9 with a reversed scan input along axis 1 and a scan output on axis 1. */
static void test_scan_axes_directions(void **state)
{
        builder_t b, body;
        static const int64_t sd[] = {2}, xd[] = {2, 3};
        static const float x[] = {1, 2, 3, 10, 20, 30};
        static const int64_t in_axes[] = {1}, in_dirs[] = {1}, out_axes[] = {1};
        Onnx__NodeProto *n;
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in[2] = {{0}}, out[2];
        float init[2] = {0, 0};
        char err[512] = "";
        const float *y, *z;
        (void)state;

        b_init(&body, 11);
        b_input(&body, "sum_in", -1, NULL);
        b_input(&body, "next", -1, NULL);
        b_node(&body, "Add", "add", "sum_in,next", "sum_out");
        b_node(&body, "Identity", "id", "sum_out", "scan_out");
        b_output(&body, "sum_out");
        b_output(&body, "scan_out");

        b_init(&b, 11);
        b_input(&b, "init", 1, sd);
        b_input(&b, "x", 2, xd);
        n = b_node(&b, "Scan", "scan", "init,x", "y,z");
        attr_g(n, "body", &body);
        attr_i(n, "num_scan_inputs", 1);
        attr_ints(n, "scan_input_axes", in_axes, 1);
        attr_ints(n, "scan_input_directions", in_dirs, 1);
        attr_ints(n, "scan_output_axes", out_axes, 1);
        b_output(&b, "y");
        b_output(&b, "z");
        m = b_load(&b);
        b_reset();

        in[0].dtype = in[1].dtype = SL_DT_FLOAT;
        in[0].ndim = 1, in[0].dims[0] = 2, in[0].data = init, in[0].nbytes = sizeof(init);
        in[1].ndim = 2, in[1].dims[0] = 2, in[1].dims[1] = 3;
        in[1].data = (void *)x, in[1].nbytes = sizeof(x);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        if (sl_session_run(s, in, 2, out, 2, err, sizeof(err)))
                fail_msg("run failed: %s", err);
        y = out[0].data;
        z = out[1].data;
        /* Steps read columns 2, 1, 0: running sums (3,30), (5,50), (6,60). */
        assert_float_equal(y[0], 6, 0), assert_float_equal(y[1], 60, 0);
        assert_int_equal(out[1].dims[0], 2);
        assert_int_equal(out[1].dims[1], 3);
        static const float want[] = {3, 5, 6, 30, 50, 60};
        for (int i = 0; i < 6; i++)
                assert_float_equal(z[i], want[i], 0);
        sl_session_destroy(s);
        sl_model_destroy(m);
}

/* A body input name that no graph defines fails load naming the subgraph. */
static void test_load_subgraph_errors(void **state)
{
        builder_t b, body;
        static const int64_t xd[] = {1};
        static const char *const needles[] = {"'loop'", "graph 'body'", "'nowhere'", NULL};
        Onnx__NodeProto *n;
        (void)state;
        b_init(&body, 13);
        body.inputs[body.graph.n_input++] = b_value("i", 7, 0, NULL);
        body.inputs[body.graph.n_input++] = b_value("c", 9, 0, NULL);
        b_input(&body, "v", -1, NULL);
        b_node(&body, "Identity", "c_id", "c", "c_out");
        b_node(&body, "Add", "add", "v,nowhere", "v_out");
        body.outputs[body.graph.n_output++] = b_value("c_out", 9, -1, NULL);
        b_output(&body, "v_out");
        b_init(&b, 13);
        b_input(&b, "x", 1, xd);
        n = b_node(&b, "Loop", "loop", ",,x", "y");
        attr_g(n, "body", &body);
        b_output(&b, "y");
        expect_load_error(&b, SL_ERR_MODEL, needles);
}

/* ---- Conv with a fused MaxPool (fuse.c, conv_direct.c) against plain loops ---- */

typedef struct {
        conv_case_t conv;            /* 2-D */
        int64_t pk[2], ps[2], pp[4]; /* MaxPool kernel_shape, strides, pads */
        int relu_after; /* Conv -> MaxPool -> Relu instead of Conv -> Relu -> MaxPool */
        int fused;      /* expected: MaxPool folded into the Conv */
} conv_pool_case_t;

static void conv_pool_case_run(const conv_pool_case_t *pc)
{
        const conv_case_t *cc = &pc->conv;
        builder_t b;
        int64_t xd[4], wd[4], bd[1] = {cc->M}, od[4], OH, OW, PH, PW;
        int64_t Cg = cc->C / cc->group, nx, nw;
        float *x, *w, *bias, *cv, *want;
        Onnx__NodeProto *n;
        conv_case_t ref = *cc;
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out = {0};
        char err[512] = "";

        OH = (cc->in[0] + cc->pads[0] + cc->pads[2] - (cc->k[0] - 1) * cc->d[0] - 1) / cc->s[0] + 1;
        OW = (cc->in[1] + cc->pads[1] + cc->pads[3] - (cc->k[1] - 1) * cc->d[1] - 1) / cc->s[1] + 1;
        PH = (OH + pc->pp[0] + pc->pp[2] - pc->pk[0]) / pc->ps[0] + 1;
        PW = (OW + pc->pp[1] + pc->pp[3] - pc->pk[1]) / pc->ps[1] + 1;
        xd[0] = cc->N, xd[1] = cc->C, xd[2] = cc->in[0], xd[3] = cc->in[1];
        wd[0] = cc->M, wd[1] = Cg, wd[2] = cc->k[0], wd[3] = cc->k[1];
        od[0] = cc->N, od[1] = cc->M, od[2] = PH, od[3] = PW;
        nx = cc->N * cc->C * cc->in[0] * cc->in[1];
        nw = cc->M * Cg * cc->k[0] * cc->k[1];
        b_init(&b, 13);
        x = frand_n((size_t)nx);
        w = frand_n((size_t)nw);
        bias = frand_n((size_t)cc->M);
        cv = b_alloc(sizeof(float) * (size_t)(cc->N * cc->M * OH * OW));
        want = b_alloc(sizeof(float) * (size_t)(cc->N * cc->M * PH * PW));
        ref.relu = cc->relu || pc->relu_after;
        conv_reference(&ref, x, w, bias, cv, OH, OW);
        /* MaxPool by its definition: padding never wins. */
        for (int64_t nm = 0; nm < cc->N * cc->M; nm++)
                for (int64_t ph = 0; ph < PH; ph++)
                        for (int64_t pw = 0; pw < PW; pw++) {
                                float acc = -INFINITY;
                                for (int64_t i = 0; i < pc->pk[0]; i++)
                                        for (int64_t j = 0; j < pc->pk[1]; j++) {
                                                int64_t h = ph * pc->ps[0] - pc->pp[0] + i;
                                                int64_t ww = pw * pc->ps[1] - pc->pp[1] + j;
                                                if (h >= 0 && h < OH && ww >= 0 && ww < OW &&
                                                    cv[(nm * OH + h) * OW + ww] > acc)
                                                        acc = cv[(nm * OH + h) * OW + ww];
                                        }
                                want[(nm * PH + ph) * PW + pw] = acc;
                        }
        b_input(&b, "x", 4, xd);
        b_output(&b, "y");
        b_init_f(&b, "w", 4, wd, w, (size_t)nw);
        b_init_f(&b, "b", 1, bd, bias, (size_t)cc->M);
        n = b_node(&b, "Conv", "conv", "x,w,b", "c");
        attr_ints(n, "strides", cc->s, 2);
        attr_ints(n, "dilations", cc->d, 2);
        attr_ints(n, "pads", cc->pads, 4);
        attr_i(n, "group", cc->group);
        if (cc->relu)
                b_node(&b, "Relu", "relu", "c", "r");
        n = b_node(&b, "MaxPool", "pool", cc->relu ? "r" : "c", pc->relu_after ? "p" : "y");
        attr_ints(n, "kernel_shape", pc->pk, 2);
        attr_ints(n, "strides", pc->ps, 2);
        attr_ints(n, "pads", pc->pp, 4);
        if (pc->relu_after)
                b_node(&b, "Relu", "relu2", "p", "y");
        m = b_load(&b);
        assert_int_equal(sl_model_node_count(m), pc->fused ? 1 : 2 + pc->relu_after);
        in.dtype = SL_DT_FLOAT;
        in.ndim = 4;
        memcpy(in.dims, xd, sizeof(xd));
        in.data = x;
        in.nbytes = sizeof(float) * (size_t)nx;
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        /* Twice: the second run reuses packed weights and buffers. */
        for (int r = 0; r < 2; r++) {
                if (sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)))
                        fail_msg("run failed: %s", err);
                assert_int_equal(out.ndim, 4);
                for (int i = 0; i < 4; i++)
                        assert_int_equal(out.dims[i], od[i]);
                for (int64_t i = 0; i < sl_tensor_numel(&out); i++) {
                        float g = ((const float *)out.data)[i];
                        if (fabsf(g - want[i]) > 1e-5f + 1e-4f * fabsf(want[i]))
                                fail_msg("element %lld: got %.7g, expected %.7g", (long long)i, g,
                                         want[i]);
                }
        }
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

static void test_conv_maxpool_fused_vs_reference(void **state)
{
        /* Fused: 2x2, 3x3 and 2x3 windows, odd maps (floor drops the last row or
         * column), channel tails, groups, strides, dilations, pads, Relu before
         * or after the pool, the shipped model's two layers; channels too few
         * for the direct kernel (im2col + sgemm, then the pool). Not fused:
         * overlapping or padded windows. */
        static const conv_pool_case_t cases[] = {
            {{3, 1, 32, 1, 2, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{2, 32, 64, 1, 2, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{2, 3, 20, 1, 2, {11, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{2, 5, 40, 1, 2, {13, 14}, {3, 2}, {1, 2}, {2, 1}, {1, 0, 2, 1}, 0},
             {3, 3},
             {3, 3},
             {0, 0, 0, 0},
             0,
             1},
            {{1, 8, 72, 2, 2, {12, 15}, {3, 3}, {1, 1}, {1, 1}, {0, 1, 0, 1}, 0},
             {2, 3},
             {2, 3},
             {0, 0, 0, 0},
             1,
             1},
            {{3, 4, 6, 1, 2, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{1, 16, 130, 1, 2, {40, 40}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{2, 3, 16, 1, 2, {5, 32}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {0, 0, 0, 0},
             0,
             1},
            {{2, 8, 16, 1, 2, {10, 10}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {3, 3},
             {2, 2},
             {0, 0, 0, 0},
             0,
             0},
            {{2, 8, 16, 1, 2, {10, 10}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
             {2, 2},
             {2, 2},
             {1, 1, 1, 1},
             0,
             0},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                conv_pool_case_run(&cases[i]);
}

/* One row of A (batch 1) times B^T: the AVX-512 dot-product path of Gemm,
 * over row counts 1..9 (groups of 4 and tails) and lengths with and without
 * a 32-float body and 16-float tail; alpha, beta, a C row or none, Relu. */
static void test_gemm_one_row_transb_vs_reference(void **state)
{
        static const int64_t ns[] = {1, 3, 4, 5, 9, 128}, ks[] = {1, 15, 16, 33, 64, 100, 3136};
        (void)state;
        for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++)
                for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
                        int64_t n = ns[ni], k = ks[ki], ad[2] = {1, k}, bd[2] = {n, k}, cd[1] = {n},
                                od[2] = {1, n};
                        int variant =
                            (int)((ni + ki) % 3); /* 0: C, Relu; 1: no C; 2: alpha, beta */
                        float alpha = variant == 2 ? 0.75f : 1.0f,
                              beta = variant == 2 ? -2.0f : 1.0f;
                        float *a = frand_n((size_t)k), *bm = frand_n((size_t)(n * k)),
                              *c = frand_n((size_t)n), *want = b_alloc(sizeof(float) * (size_t)n);
                        Onnx__NodeProto *nd;
                        builder_t b;
                        for (int64_t j = 0; j < n; j++) {
                                double acc = 0;
                                for (int64_t i = 0; i < k; i++)
                                        acc += (double)a[i] * bm[j * k + i];
                                acc = alpha * acc + (variant == 1 ? 0.0 : beta * c[j]);
                                want[j] = (float)(variant == 0 && acc < 0 ? 0 : acc);
                        }
                        b_init(&b, 13);
                        b_input(&b, "a", 2, ad);
                        b_init_f(&b, "b", 2, bd, bm, (size_t)(n * k));
                        b_init_f(&b, "c", 1, cd, c, (size_t)n);
                        nd = b_node(&b, "Gemm", "fc", variant == 1 ? "a,b" : "a,b,c",
                                    variant == 0 ? "g" : "y");
                        attr_i(nd, "transB", 1);
                        attr_f(nd, "alpha", alpha);
                        attr_f(nd, "beta", beta);
                        if (variant == 0)
                                b_node(&b, "Relu", "relu", "g", "y");
                        b_output(&b, "y");
                        run_check(&b, a, 2, ad, want, 2, od);
                }
}

/* ---- float16, bfloat16 and string tensors ---- */

static void test_float16_bfloat16_rounding(void **state)
{
        /* value, float16 bits, bfloat16 bits: ties to even, overflow to inf,
         * gradual underflow, signed zero, NaN */
        static const struct {
                double v;
                uint16_t h, bf;
        } cases[] = {
            {1.0, 0x3c00, 0x3f80},
            {-2.0, 0xc000, 0xc000},
            {-0.0, 0x8000, 0x8000},
            {65504.0, 0x7bff, 0x4780},
            {65519.99, 0x7bff, 0x4780},
            {65520.0, 0x7c00, 0x4780},               /* f16 tie -> even = inf */
            {1.0 + 1.0 / 2048, 0x3c00, 0x3f80},      /* f16 tie -> even (down) */
            {1.0 + 3.0 / 2048, 0x3c02, 0x3f80},      /* f16 tie -> even (up) */
            {1.0 + 1.0 / 256, 0x3c04, 0x3f80},       /* bf16 tie -> even (down) */
            {1.0 + 3.0 / 256, 0x3c0c, 0x3f82},       /* bf16 tie -> even (up) */
            {0x1p-24, 0x0001, 0x3380},               /* smallest f16 subnormal */
            {0x1p-25, 0x0000, 0x3300},               /* tie with 0 -> 0 */
            {0x3p-25, 0x0002, 0x33c0},               /* 1.5 ulp -> 2 */
            {0x1p-14 - 0x1p-25, 0x0400, 0x3880},     /* rounds up to smallest normal */
            {0x1p-133, 0x0000, 0x0001},              /* smallest bf16 subnormal */
            {3.4028234663852886e38, 0x7c00, 0x7f80}, /* FLT_MAX: bf16 rounds to inf */
            {INFINITY, 0x7c00, 0x7f80},
            {-INFINITY, 0xfc00, 0xff80},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint16_t h = sl_float16_from_double(cases[i].v);
                uint16_t bf = sl_bfloat16_from_double(cases[i].v);
                if (h != cases[i].h || bf != cases[i].bf)
                        fail_msg(
                            "%.17g: float16 0x%04x (want 0x%04x), bfloat16 0x%04x (want 0x%04x)",
                            cases[i].v, h, cases[i].h, bf, cases[i].bf);
        }
        assert_true(isnan(sl_float16_to_double(sl_float16_from_double(NAN))));
        assert_true(isnan(sl_bfloat16_to_double(sl_bfloat16_from_double(NAN))));
        assert_true(sl_float16_to_double(0x0001) == 0x1p-24);
        assert_true(sl_float16_to_double(0x7bff) == 65504.0);
        assert_true(sl_float16_to_double(0xfc00) == -INFINITY);
        assert_true(sl_bfloat16_to_double(0x3ef5) == 0.478515625);
        assert_true(sl_bfloat16_to_double(0x0001) == 0x1p-133);
        /* every finite float16 converts back to itself */
        for (uint32_t b = 0; b < 0x10000; b++)
                if ((b & 0x7c00) != 0x7c00 &&
                    sl_float16_from_double(sl_float16_to_double((uint16_t)b)) != b)
                        fail_msg("float16 0x%04x does not round-trip", b);
}

/* A graph output without a declared type (ValueInfo with no TypeProto). */
static void b_output_untyped(builder_t *b, const char *name)
{
        Onnx__ValueInfoProto *vi = b_alloc(sizeof(*vi));
        onnx__value_info_proto__init(vi);
        vi->name = b_str(name);
        b->outputs[b->graph.n_output++] = vi;
}

/* x (float) -> Cast(string) -> s; s -> Cast(float16) -> h; Max(h, init) -> m. */
static void test_cast_string_float16(void **state)
{
        builder_t b;
        static const int64_t d[] = {6};
        static const float x[] = {0.1f, 100.0f, 1e-5f, -INFINITY, 0.0f, 1234.5f};
        static const char *const want_s[] = {"0.1", "100.0", "1e-05", "-INF", "0.0", "1234.5"};
        static const uint16_t want_h[] = {0x2e66, 0x5640, 0x00a8, 0xfc00, 0x0000, 0x64d2};
        /* Max with a float16 initializer packed in int32_data (onnx.proto) */
        static const uint16_t k[] = {0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00};
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out[3];
        Onnx__TensorProto *t;
        Onnx__NodeProto *n;
        char err[512] = "";
        (void)state;

        b_init(&b, 13);
        b_input(&b, "x", 1, d);
        t = b_tensor("k", 1, d, x, 0);
        t->data_type = SL_DT_FLOAT16;
        t->n_int32_data = 6;
        t->int32_data = b_alloc(sizeof(int32_t) * 6);
        for (int i = 0; i < 6; i++)
                t->int32_data[i] = k[i];
        b.inits[b.graph.n_initializer++] = t;
        attr_i(b_node(&b, "Cast", "c1", "x", "s"), "to", SL_DT_STRING);
        n = b_node(&b, "Cast", "c2", "s", "h");
        attr_i(n, "to", SL_DT_FLOAT16);
        b_node(&b, "Max", "mx", "h,k", "m");
        b.outputs[b.graph.n_output++] = b_value("s", SL_DT_STRING, 1, d);
        b_output_untyped(&b, "h");
        b_output_untyped(&b, "m");
        m = b_load(&b);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        in.dtype = SL_DT_FLOAT;
        in.ndim = 1;
        in.dims[0] = 6;
        in.data = (void *)x;
        in.nbytes = sizeof(x);
        for (int r = 0; r < 2; r++) { /* the strings are rebuilt in place on a second run */
                if (sl_session_run(s, &in, 1, out, 3, err, sizeof(err)))
                        fail_msg("run failed: %s", err);
                assert_int_equal(out[0].dtype, SL_DT_STRING);
                assert_int_equal(out[1].dtype, SL_DT_FLOAT16);
                for (int i = 0; i < 6; i++) {
                        uint16_t h = ((const uint16_t *)out[1].data)[i];
                        uint16_t mx = ((const uint16_t *)out[2].data)[i];
                        assert_string_equal(((char *const *)out[0].data)[i], want_s[i]);
                        if (h != want_h[i])
                                fail_msg("element %d: float16 0x%04x, expected 0x%04x", i, h,
                                         want_h[i]);
                        assert_true(sl_float16_to_double(mx) == fmax(sl_float16_to_double(h), 1.0));
                }
        }
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

/* String input -> Cast to float and int64 (the spec's literals), and a
 * string into any other operator is refused. */
static void test_cast_from_string(void **state)
{
        builder_t b;
        static const int64_t d[] = {7};
        static const char *strs[] = {"3.5", "-INF", "nan", "1E8", "+Inf", "-7", "9007199254740993"};
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out[2];
        char err[512] = "";
        const float *f;
        const int64_t *i64;
        (void)state;

        b_init(&b, 13);
        b.inputs[b.graph.n_input++] = b_value("s", SL_DT_STRING, 1, d);
        attr_i(b_node(&b, "Cast", "c1", "s", "f"), "to", SL_DT_FLOAT);
        attr_i(b_node(&b, "Cast", "c2", "s", "i"), "to", SL_DT_INT64);
        b.outputs[b.graph.n_output++] = b_value("f", SL_DT_FLOAT, 1, d);
        b.outputs[b.graph.n_output++] = b_value("i", SL_DT_INT64, 1, d);
        m = b_load(&b);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        in.dtype = SL_DT_STRING;
        in.ndim = 1;
        in.dims[0] = 7;
        in.data = (void *)strs;
        in.nbytes = sizeof(strs);
        if (sl_session_run(s, &in, 1, out, 2, err, sizeof(err)))
                fail_msg("run failed: %s", err);
        f = out[0].data;
        i64 = out[1].data;
        assert_true(f[0] == 3.5f && f[1] == -INFINITY && isnan(f[2]) && f[3] == 1e8f &&
                    f[4] == INFINITY && f[5] == -7.0f);
        assert_int_equal(i64[0], 3);
        assert_int_equal(i64[5], -7);
        assert_true(i64[6] == 9007199254740993LL); /* exact beyond 2^53 */
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();

        /* Add refuses strings with a message that says so */
        b_init(&b, 13);
        b.inputs[b.graph.n_input++] = b_value("s", SL_DT_STRING, 1, d);
        b_node(&b, "Add", "add", "s,s", "y");
        b.outputs[b.graph.n_output++] = b_value("y", SL_DT_STRING, 1, d);
        m = b_load(&b);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        assert_int_equal(sl_session_run(s, &in, 1, out, 1, err, sizeof(err)), SL_ERR_UNSUPPORTED);
        if (!strstr(err, "string"))
                fail_msg("error does not name the type: %s", err);
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

/* ---- load-time folding and fusion (fold.c, fuse.c) ---- */

/* Loads \p b with SLUICE_FOLD = \p fold, runs it on \p x ([dims]) and
 * copies output 0 into \p y (up to \p cap floats); returns the node count. */
static size_t fold_run(builder_t *b, int fold, const float *x, int ndim, const int64_t *dims,
                       float *y, size_t cap, size_t *n_y)
{
        char err[512] = "";
        sl_model_t *m = NULL;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, out = {0};
        size_t nodes;
        sl_err_t e;

        setenv("SLUICE_FOLD", fold ? "1" : "0", 1);
        e = sl_model_load(b_write(b), &m, err, sizeof(err));
        unsetenv("SLUICE_FOLD");
        unlink(tmp_path);
        if (e)
                fail_msg("load failed: %s", err);
        in.dtype = SL_DT_FLOAT;
        in.ndim = ndim;
        memcpy(in.dims, dims, sizeof(int64_t) * (size_t)ndim);
        in.data = (void *)x;
        in.nbytes = (size_t)sl_tensor_numel(&in) * sizeof(float);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        if (sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)))
                fail_msg("run failed (fold %d): %s", fold, err);
        *n_y = (size_t)sl_tensor_numel(&out);
        assert_true(*n_y <= cap);
        memcpy(y, out.data, *n_y * sizeof(float));
        nodes = sl_model_node_count(m);
        sl_session_destroy(s);
        sl_model_destroy(m);
        return nodes;
}

/* Folded and unfolded runs agree within 1e-5 + 1e-4 |unfolded|; the worst
 * element is printed on failure. */
static void fold_compare(const float *a, const float *b, size_t n)
{
        size_t worst = 0;
        double wd = -1.0;
        for (size_t i = 0; i < n; i++) {
                double d = fabs((double)a[i] - (double)b[i]) - 1e-4 * fabs((double)b[i]);
                if (d > wd) {
                        wd = d;
                        worst = i;
                }
        }
        if (wd > 1e-5)
                fail_msg("element %zu: folded %.7g, unfolded %.7g", worst, a[worst], b[worst]);
}

static float frand_seeded(uint32_t *seed)
{
        *seed = *seed * 1664525u + 1013904223u;
        return (float)(*seed >> 8) / 8388608.0f - 1.0f;
}

/*
 * Gemm -> BatchNormalization -> GELU (Div, Erf, Add, Mul, Mul) -> MatMul ->
 * Add, then Shape -> Gather -> Unsqueeze -> Concat -> Reshape on a shape
 * whose gathered dimension is fixed: 14 nodes fold to Gemm+Gelu,
 * MatMul+Add and the Reshape.
 */
static void test_fold_mlp_shape_plumbing(void **state)
{
        builder_t b;
        static const int64_t xd[] = {-1, 4}, wd[] = {3, 4}, cd[] = {3}, w2d[] = {3, 2}, b2d[] = {2},
                             sd[] = {0}, run_d[] = {5, 4};
        float w[12], bias[3], sc[3], bi[3], mu[3], var[3], w2[6], b2[2], x[20];
        float s2 = 1.41421356f, one = 1.0f, half = 0.5f;
        float y0[32], y1[32];
        size_t n0, n1, nodes0, nodes1;
        uint32_t seed = 7;
        int64_t idx = 1, neg = -1, axes0 = 0;
        Onnx__NodeProto *n;
        (void)state;
        for (int i = 0; i < 12; i++)
                w[i] = frand_seeded(&seed);
        for (int i = 0; i < 3; i++) {
                bias[i] = frand_seeded(&seed);
                sc[i] = 1.0f + 0.5f * frand_seeded(&seed);
                bi[i] = frand_seeded(&seed);
                mu[i] = 0.2f * frand_seeded(&seed);
                var[i] = 1.0f + 0.3f * frand_seeded(&seed);
        }
        for (int i = 0; i < 6; i++)
                w2[i] = frand_seeded(&seed);
        b2[0] = 0.25f;
        b2[1] = -0.5f;
        for (int i = 0; i < 20; i++)
                x[i] = 2.0f * frand_seeded(&seed);
        b_init(&b, 13);
        b_input(&b, "x", 2, xd);
        b_init_f(&b, "w", 2, wd, w, 12);
        b_init_f(&b, "bias", 1, cd, bias, 3);
        b_init_f(&b, "sc", 1, cd, sc, 3);
        b_init_f(&b, "bi", 1, cd, bi, 3);
        b_init_f(&b, "mu", 1, cd, mu, 3);
        b_init_f(&b, "var", 1, cd, var, 3);
        b_init_f(&b, "s2", 0, sd, &s2, 1);
        b_init_f(&b, "one", 0, sd, &one, 1);
        b_init_f(&b, "half", 0, sd, &half, 1);
        b_init_f(&b, "w2", 2, w2d, w2, 6);
        b_init_f(&b, "b2", 1, b2d, b2, 2);
        b_init_i64(&b, "idx", &idx, 1);
        b.inits[b.graph.n_initializer - 1]->n_dims = 0; /* scalar index */
        b_init_i64(&b, "neg", &neg, 1);
        b_init_i64(&b, "axes0", &axes0, 1);
        n = b_node(&b, "Gemm", "fc1", "x,w,bias", "h");
        attr_i(n, "transB", 1);
        b_node(&b, "BatchNormalization", "bn", "h,sc,bi,mu,var", "hb");
        b_node(&b, "Div", "div", "hb,s2", "hd");
        b_node(&b, "Erf", "erf", "hd", "he");
        b_node(&b, "Add", "add1", "he,one", "ha");
        b_node(&b, "Mul", "mul", "hb,ha", "hm");
        b_node(&b, "Mul", "mul_half", "hm,half", "g");
        b_node(&b, "MatMul", "fc2", "g,w2", "z");
        b_node(&b, "Add", "fc2_bias", "b2,z", "z2");
        b_node(&b, "Shape", "shape", "z2", "sh");
        b_node(&b, "Gather", "gather", "sh,idx", "d1");
        b_node(&b, "Unsqueeze", "unsq", "d1,axes0", "d1u");
        b_node(&b, "Concat", "concat", "neg,d1u", "target");
        attr_i(b.nodes[b.graph.n_node - 1], "axis", 0);
        b_node(&b, "Reshape", "reshape", "z2,target", "y");
        b_output(&b, "y");
        nodes1 = fold_run(&b, 1, x, 2, run_d, y1, 32, &n1);
        nodes0 = fold_run(&b, 0, x, 2, run_d, y0, 32, &n0);
        b_reset();
        assert_int_equal(nodes0, 14);
        assert_int_equal(nodes1, 3);
        assert_int_equal(n0, 10);
        assert_int_equal(n1, n0);
        fold_compare(y1, y0, n0);
}

/*
 * Conv -> BatchNormalization -> Clip (ReLU6) -> Pad -> AveragePool (ceil
 * mode) -> depthwise Conv -> MaxPool (ceil mode): BatchNormalization folds
 * into the Conv's weights, Clip into its output pass, the Pad into the
 * AveragePool; 7 nodes become 4, with the same outputs.
 */
static void test_fold_conv_bn_pad_pool(void **state)
{
        builder_t b;
        static const int64_t xd[] = {-1, 2, 7, 7}, wd[] = {2, 2, 3, 3}, cd[] = {2},
                             dwd[] = {2, 1, 3, 3}, run_d[] = {2, 2, 7, 7};
        static const int64_t pads1[] = {1, 1, 1, 1}, k3[] = {3, 3}, s2[] = {2, 2}, k2[] = {2, 2};
        static const int64_t padv[] = {0, 0, 1, 1, 0, 0, 1, 1};
        float w[36], sc[2], bi[2], mu[2], var[2], dw[18], dwb[2], x[196];
        float lo = 0.0f, hi = 0.75f, y0[256], y1[256];
        size_t n0, n1, nodes0, nodes1;
        uint32_t seed = 11;
        Onnx__NodeProto *n;
        (void)state;
        for (int i = 0; i < 36; i++)
                w[i] = 0.5f * frand_seeded(&seed);
        for (int i = 0; i < 2; i++) {
                sc[i] = 1.0f + 0.5f * frand_seeded(&seed);
                bi[i] = 0.3f * frand_seeded(&seed);
                mu[i] = 0.2f * frand_seeded(&seed);
                var[i] = 1.0f + 0.3f * frand_seeded(&seed);
                dwb[i] = 0.1f * frand_seeded(&seed);
        }
        for (int i = 0; i < 18; i++)
                dw[i] = frand_seeded(&seed);
        for (int i = 0; i < 196; i++)
                x[i] = frand_seeded(&seed);
        b_init(&b, 13);
        b_input(&b, "x", 4, xd);
        b_init_f(&b, "w", 4, wd, w, 36);
        b_init_f(&b, "sc", 1, cd, sc, 2);
        b_init_f(&b, "bi", 1, cd, bi, 2);
        b_init_f(&b, "mu", 1, cd, mu, 2);
        b_init_f(&b, "var", 1, cd, var, 2);
        b_init_f(&b, "lo", 0, cd, &lo, 1);
        b_init_f(&b, "hi", 0, cd, &hi, 1);
        b_init_f(&b, "dw", 4, dwd, dw, 18);
        b_init_f(&b, "dwb", 1, cd, dwb, 2);
        b_init_i64(&b, "padv", padv, 8);
        n = b_node(&b, "Conv", "conv", "x,w", "c");
        attr_ints(n, "pads", pads1, 4);
        b_node(&b, "BatchNormalization", "bn", "c,sc,bi,mu,var", "cb");
        b_node(&b, "Clip", "relu6", "cb,lo,hi", "cc");
        b_node(&b, "Pad", "pad", "cc,padv", "cp");
        n = b_node(&b, "AveragePool", "avg", "cp", "ap");
        attr_ints(n, "kernel_shape", k3, 2);
        attr_ints(n, "strides", s2, 2);
        attr_i(n, "ceil_mode", 1);
        n = b_node(&b, "Conv", "dwconv", "ap,dw,dwb", "d");
        attr_ints(n, "pads", pads1, 4);
        attr_i(n, "group", 2);
        n = b_node(&b, "MaxPool", "max", "d", "y");
        attr_ints(n, "kernel_shape", k2, 2);
        attr_ints(n, "strides", k2, 2);
        attr_i(n, "ceil_mode", 1);
        b_output(&b, "y");
        nodes1 = fold_run(&b, 1, x, 4, run_d, y1, 256, &n1);
        nodes0 = fold_run(&b, 0, x, 4, run_d, y0, 256, &n0);
        b_reset();
        assert_int_equal(nodes0, 7);
        assert_int_equal(nodes1, 4);
        /* 7 -> Pad 9 -> ceil((9 - 3) / 2) + 1 = 4 -> dw 4 -> MaxPool ceil 2 */
        assert_int_equal(n0, 2 * 2 * 2 * 2);
        assert_int_equal(n1, n0);
        fold_compare(y1, y0, n0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dtype),
            cmocka_unit_test(test_conv_bias_pads_strides),
            cmocka_unit_test(test_conv_groups_same_upper),
            cmocka_unit_test(test_maxpool_ceil_mode),
            cmocka_unit_test(test_avgpool_count_include_pad),
            cmocka_unit_test(test_gemm_transb_broadcast_c),
            cmocka_unit_test(test_matmul_batched_broadcast),
            cmocka_unit_test(test_add_broadcast_relu),
            cmocka_unit_test(test_reshape_zero_minus_one),
            cmocka_unit_test(test_softmax_opset_semantics),
            cmocka_unit_test(test_batchnorm_flatten),
            cmocka_unit_test(test_load_unknown_input),
            cmocka_unit_test(test_load_cycle),
            cmocka_unit_test(test_load_unsupported_op_and_attr),
            cmocka_unit_test(test_load_hostile_initializers),
            cmocka_unit_test(test_load_truncated),
            cmocka_unit_test(test_model_info_and_input_check),
            cmocka_unit_test(test_conv_direct_vs_reference),
            cmocka_unit_test(test_fuse_conv_gemm_relu),
            cmocka_unit_test(test_run_allocates_nothing),
            cmocka_unit_test(test_loop_if_outer_scope),
            cmocka_unit_test(test_scan_axes_directions),
            cmocka_unit_test(test_load_subgraph_errors),
            cmocka_unit_test(test_conv_maxpool_fused_vs_reference),
            cmocka_unit_test(test_gemm_one_row_transb_vs_reference),
            cmocka_unit_test(test_fold_mlp_shape_plumbing),
            cmocka_unit_test(test_fold_conv_bn_pad_pool),
            cmocka_unit_test(test_float16_bfloat16_rounding),
            cmocka_unit_test(test_cast_string_float16),
            cmocka_unit_test(test_cast_from_string),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
