/*
 * Unit tests of the engine's load-time folding and fusion (fold.c, fuse.c):
 * folded and unfolded (SLUICE_FOLD=0) models give the same outputs with fewer
 * nodes.
 */
#include "engine_fixtures.h"

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
            cmocka_unit_test(test_fold_mlp_shape_plumbing),
            cmocka_unit_test(test_fold_conv_bn_pad_pool),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
