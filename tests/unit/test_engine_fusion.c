/*
 * Unit tests of the engine's speed paths: direct Conv, Conv with a fused
 * MaxPool and the one-row Gemm against plain loops, Conv/Gemm+Relu fusion,
 * and runs that allocate nothing (counted by alloc_count.h).
 */
#include "engine_fixtures.h"

/* ---- speed paths: direct Conv against a reference, allocation-free runs ---- */

#include "alloc_count.h"

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
        count_init();
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
        /* Batch sizes 7, 3 and 7 again: one arena per batch-size bucket (7 is
         * in bucket 8, 3 in bucket 4); after the first run of a bucket, no
         * run of it allocates. */
        for (int r = 0; r < 6; r++) {
                static const int64_t batches[] = {7, 7, 3, 3, 7, 3};
                long got;
                in.dims[0] = batches[r];
                in.nbytes = sizeof(float) * 144 * (size_t)batches[r];
                alloc_count = 0;
                alloc_armed = 1;
                if (sl_session_run(s, &in, 1, &out, 1, err, sizeof(err)))
                        fail_msg("run failed: %s", err);
                alloc_armed = 0;
                got = alloc_count;
                if (r == 0 && got == 0)
                        fail_msg("the counting allocator saw no allocation in the first run");
                if (r != 0 && r != 2 && got != 0)
                        fail_msg("run %d (batch %lld) allocated %ld times", r,
                                 (long long)batches[r], got);
                assert_int_equal(out.dims[0], batches[r]);
                assert_int_equal(out.dims[1], 5);
        }
        free(x);
        sl_session_destroy(s);
        sl_model_destroy(m);
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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_conv_direct_vs_reference),
            cmocka_unit_test(test_fuse_conv_gemm_relu),
            cmocka_unit_test(test_run_allocates_nothing),
            cmocka_unit_test(test_conv_maxpool_fused_vs_reference),
            cmocka_unit_test(test_gemm_one_row_transb_vs_reference),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
