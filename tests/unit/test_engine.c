/*
 * Unit tests of the engine: data types, and the loader's error messages on
 * broken and hostile files (models built in memory by engine_fixtures.h).
 * Operator values are in test_engine_ops.c, fused and direct kernels and
 * allocation-free runs in test_engine_fusion.c, load-time folding in
 * test_engine_fold.c.
 */
#include "engine_fixtures.h"

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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dtype),
            cmocka_unit_test(test_load_unknown_input),
            cmocka_unit_test(test_load_cycle),
            cmocka_unit_test(test_load_unsupported_op_and_attr),
            cmocka_unit_test(test_load_hostile_initializers),
            cmocka_unit_test(test_load_truncated),
            cmocka_unit_test(test_model_info_and_input_check),
            cmocka_unit_test(test_load_subgraph_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
