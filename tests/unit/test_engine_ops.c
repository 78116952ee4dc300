/*
 * Unit tests of the engine: operators against hand-computed values on tiny
 * models built in memory, control flow (Loop, If, Scan and their subgraphs),
 * and float16, bfloat16 and string tensors.
 */
#include "engine_fixtures.h"

/* ---- operators ---- */

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

/* ---- control flow: subgraphs, outer-scope values, loop-carried values ---- */

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

/* Constant with a string tensor value -> Identity: the output's pointers
 * point at bytes the session keeps (they were freed in the kernel once:
 * ASan's heap-use-after-free on the comparison below). */
static void test_constant_string(void **state)
{
        builder_t b;
        static const int64_t d[] = {3};
        static const char *const want[] = {"ab", "", "cde"};
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t out[1];
        Onnx__TensorProto *t;
        Onnx__AttributeProto *a;
        Onnx__NodeProto *n;
        char err[512] = "";
        (void)state;

        b_init(&b, 13);
        t = b_alloc(sizeof(*t));
        onnx__tensor_proto__init(t);
        t->name = b_str("v");
        t->has_data_type = 1;
        t->data_type = SL_DT_STRING;
        t->n_dims = 1;
        t->dims = b_alloc(sizeof(int64_t));
        t->dims[0] = 3;
        t->n_string_data = 3;
        t->string_data = b_alloc(sizeof(ProtobufCBinaryData) * 3);
        for (int i = 0; i < 3; i++) {
                t->string_data[i].len = strlen(want[i]);
                t->string_data[i].data = (uint8_t *)b_str(want[i]);
        }
        n = b_node(&b, "Constant", "k", "", "c");
        a = attr_new(n, "value");
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        a->t = t;
        b_node(&b, "Identity", "id", "c", "y");
        b.outputs[b.graph.n_output++] = b_value("y", SL_DT_STRING, 1, d);
        m = b_load(&b);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        for (int r = 0; r < 2; r++) { /* decoded in the first run, kept for the second */
                if (sl_session_run(s, NULL, 0, out, 1, err, sizeof(err)))
                        fail_msg("run %d failed: %s", r, err);
                assert_int_equal(out[0].dtype, SL_DT_STRING);
                assert_int_equal(out[0].ndim, 1);
                assert_int_equal(out[0].dims[0], 3);
                for (int i = 0; i < 3; i++)
                        assert_string_equal(((char *const *)out[0].data)[i], want[i]);
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

/* Cast and CastLike to bfloat16 truncate (ONNX 1.12's reference data), NaN
 * kept a NaN; CastLike's target_type is not held to its declared dims. */
static void test_cast_bfloat16_truncates(void **state)
{
        builder_t b;
        static const int64_t d[] = {6}, dl[] = {3, 4};
        static const uint32_t xbits[] = {0x3f51b0e2u, 0x7f800001u, 0xff800001u,
                                         0xbf80ffffu, 0x7f800000u, 0x00010001u};
        static const uint16_t want_x[] = {0x3f51, 0x7fc0, 0xffc0, 0xbf80, 0x7f80, 0x0001};
        static const double v[] = {1e39, -1e39, 0.99999999999, NAN, 0x1p-140, -3.0};
        static const uint16_t want_v[] = {0x7f7f, 0xff7f, 0x3f7f, 0x7fc0, 0x0000, 0xc040};
        static const int64_t iv[] = {257, 511, -511, INT64_MAX - 1, 0, 1};
        static const uint16_t want_i[] = {0x4380, 0x43ff, 0xc3ff, 0x5eff, 0x0000, 0x3f80};
        static const uint16_t like[] = {0x3f80};
        float x[6];
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in[4] = {{0}}, out[4];
        char err[512] = "";
        (void)state;

        memcpy(x, xbits, sizeof(x));
        b_init(&b, 15);
        b_input(&b, "x", 1, d);
        b.inputs[b.graph.n_input++] = b_value("v", SL_DT_DOUBLE, 1, d);
        b.inputs[b.graph.n_input++] = b_value("iv", SL_DT_INT64, 1, d);
        b.inputs[b.graph.n_input++] = b_value("like", SL_DT_BFLOAT16, 2, dl);
        attr_i(b_node(&b, "Cast", "c1", "x", "y"), "to", SL_DT_BFLOAT16);
        b_node(&b, "CastLike", "c2", "x,like", "z");
        attr_i(b_node(&b, "Cast", "c3", "v", "w"), "to", SL_DT_BFLOAT16);
        b_node(&b, "CastLike", "c4", "iv,like", "u");
        b.outputs[b.graph.n_output++] = b_value("y", SL_DT_BFLOAT16, 1, d);
        b.outputs[b.graph.n_output++] = b_value("z", SL_DT_BFLOAT16, 1, d);
        b.outputs[b.graph.n_output++] = b_value("w", SL_DT_BFLOAT16, 1, d);
        b.outputs[b.graph.n_output++] = b_value("u", SL_DT_BFLOAT16, 1, d);
        m = b_load(&b);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        in[0] = (sl_tensor_t){
            .dtype = SL_DT_FLOAT, .ndim = 1, .dims = {6}, .data = x, .nbytes = sizeof(x)};
        in[1] = (sl_tensor_t){
            .dtype = SL_DT_DOUBLE, .ndim = 1, .dims = {6}, .data = (void *)v, .nbytes = sizeof(v)};
        in[2] = (sl_tensor_t){
            .dtype = SL_DT_INT64, .ndim = 1, .dims = {6}, .data = (void *)iv, .nbytes = sizeof(iv)};
        /* declared [3,4], given [1]: only its element type is read */
        in[3] = (sl_tensor_t){.dtype = SL_DT_BFLOAT16,
                              .ndim = 1,
                              .dims = {1},
                              .data = (void *)like,
                              .nbytes = sizeof(like)};
        if (sl_session_run(s, in, 4, out, 4, err, sizeof(err)))
                fail_msg("run failed: %s", err);
        for (int i = 0; i < 6; i++) {
                uint16_t y = ((const uint16_t *)out[0].data)[i];
                uint16_t z = ((const uint16_t *)out[1].data)[i];
                uint16_t w = ((const uint16_t *)out[2].data)[i];
                uint16_t u = ((const uint16_t *)out[3].data)[i];
                if (y != want_x[i] || z != want_x[i] || w != want_v[i] || u != want_i[i])
                        fail_msg("element %d: Cast 0x%04x, CastLike 0x%04x (want 0x%04x); "
                                 "double 0x%04x (want 0x%04x); int64 0x%04x (want 0x%04x)",
                                 i, y, z, want_x[i], w, want_v[i], u, want_i[i]);
        }
        /* an input read for its values is still held to its declared dims */
        in[0].dims[0] = 3;
        in[0].nbytes = 3 * sizeof(float);
        assert_int_equal(sl_session_run(s, in, 4, out, 4, err, sizeof(err)), SL_ERR_SHAPE);
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
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
            cmocka_unit_test(test_loop_if_outer_scope),
            cmocka_unit_test(test_scan_axes_directions),
            cmocka_unit_test(test_float16_bfloat16_rounding),
            cmocka_unit_test(test_cast_string_float16),
            cmocka_unit_test(test_cast_from_string),
            cmocka_unit_test(test_constant_string),
            cmocka_unit_test(test_cast_bfloat16_truncates),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
