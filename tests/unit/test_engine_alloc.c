/*
 * Unit tests of the engine's arenas (session.c, plan.c): after the first run
 * of a batch-size bucket, runs of that bucket allocate nothing and give
 * bitwise the results of the first run. Models: the shipped Fashion-MNIST
 * CNN, and built here an MLP, a two-layer LSTM+GRU, a transformer encoder
 * block (attention, LayerNormalization, a ConstantOfShape mask) and a Loop.
 *
 * Allocations are counted by alloc_count.h.
 */
#include "engine_fixtures.h"

#include "alloc_count.h"

static uint32_t rng_state = 1;

static float frand(void)
{
        rng_state = rng_state * 1664525u + 1013904223u;
        return (float)(rng_state >> 8) / 16777216.0f - 0.5f;
}

static void b_rand_init(builder_t *b, const char *name, int ndim, const int64_t *dims)
{
        float v[4096];
        size_t n = 1;
        for (int i = 0; i < ndim; i++)
                n *= (size_t)dims[i];
        assert_true(n <= sizeof(v) / sizeof(v[0]));
        for (size_t i = 0; i < n; i++)
                v[i] = frand();
        b_init_f(b, name, ndim, dims, v, n);
}

/* ---- warm runs: counted, compared bitwise with the bucket's first run ---- */

#define MAX_IO 4

typedef struct {
        int64_t batch;
        sl_tensor_t in[MAX_IO];
        sl_tensor_t ref[MAX_IO]; /* the first run's outputs (copies) */
} bucket_run_t;

/* Inputs of \p m at batch \p batch: symbolic dimensions become \p batch;
 * values pseudo-random, the same for the same batch. */
static void make_inputs(const sl_model_t *m, bucket_run_t *r)
{
        assert_true(sl_model_input_count(m) <= MAX_IO);
        rng_state = 7u + (uint32_t)r->batch;
        for (size_t i = 0; i < sl_model_input_count(m); i++) {
                const sl_value_info_t *vi = sl_model_input(m, i);
                sl_tensor_t *t = &r->in[i];
                int64_t n = 1;
                assert_int_equal(vi->dtype, SL_DT_FLOAT);
                assert_true(vi->ndim >= 0);
                t->dtype = vi->dtype;
                t->ndim = vi->ndim;
                for (int d = 0; d < vi->ndim; d++) {
                        t->dims[d] = vi->dims[d] < 0 ? r->batch : vi->dims[d];
                        n *= t->dims[d];
                }
                t->nbytes = (size_t)n * sizeof(float);
                t->data = malloc(t->nbytes);
                assert_non_null(t->data);
                for (int64_t k = 0; k < n; k++)
                        ((float *)t->data)[k] = frand();
        }
}

static long run_counted(sl_session_t *s, const sl_model_t *m, bucket_run_t *r, sl_tensor_t *out)
{
        char err[512] = "";
        sl_err_t e;
        long got;
        alloc_count = 0;
        alloc_armed = 1;
        e = sl_session_run(s, r->in, sl_model_input_count(m), out, sl_model_output_count(m), err,
                           sizeof(err));
        alloc_armed = 0;
        got = alloc_count;
        if (e)
                fail_msg("batch %lld: run failed: %s", (long long)r->batch, err);
        return got;
}

static void expect_same(const char *what, const bucket_run_t *r, const sl_tensor_t *out,
                        size_t n_out, int pass)
{
        for (size_t o = 0; o < n_out; o++) {
                const sl_tensor_t *a = &r->ref[o], *b = &out[o];
                if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes ||
                    memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
                        fail_msg("%s batch %lld pass %d: output %zu changed shape", what,
                                 (long long)r->batch, pass, o);
                if (a->nbytes && memcmp(a->data, b->data, a->nbytes))
                        fail_msg("%s batch %lld pass %d: output %zu differs from the first run",
                                 what, (long long)r->batch, pass, o);
        }
}

/*
 * Runs \p m at each of \p batches once (the bucket's warm-up, which must
 * allocate: the counter works), keeps its outputs, then three more passes
 * over all the batches, interleaved: every one allocates nothing and
 * reproduces the first run bitwise.
 */
static void check_warm_runs(const char *what, sl_model_t *m, const int64_t *batches, size_t nb)
{
        bucket_run_t runs[8];
        sl_tensor_t out[MAX_IO];
        size_t n_out = sl_model_output_count(m);
        sl_session_t *s = NULL;
        long warm_total = 0;

        assert_true(nb <= 8 && n_out <= MAX_IO);
        /* As the worker runs it: OpenBLAS's threaded sgemm mallocs a buffer per
         * call, its 1-thread path does not (test_engine_fusion.c). */
        sl_engine_blas_set_threads(1);
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        memset(runs, 0, sizeof(runs));
        for (size_t k = 0; k < nb; k++) {
                long first;
                runs[k].batch = batches[k];
                make_inputs(m, &runs[k]);
                first = run_counted(s, m, &runs[k], out);
                if (k == 0 && first == 0)
                        fail_msg("%s: the counting allocator saw no allocation in the first run",
                                 what);
                warm_total += first;
                for (size_t o = 0; o < n_out; o++) {
                        runs[k].ref[o] = out[o];
                        runs[k].ref[o].data = malloc(out[o].nbytes ? out[o].nbytes : 1);
                        assert_non_null(runs[k].ref[o].data);
                        memcpy(runs[k].ref[o].data, out[o].data, out[o].nbytes);
                }
        }
        for (int pass = 1; pass <= 3; pass++)
                for (size_t k = 0; k < nb; k++) {
                        long got = run_counted(s, m, &runs[k], out);
                        if (got)
                                fail_msg("%s: batch %lld, warm run %d allocated %ld times", what,
                                         (long long)runs[k].batch, pass, got);
                        expect_same(what, &runs[k], out, n_out, pass);
                }
        print_message("%s: first runs of %zu buckets allocated %ld times, warm runs 0\n", what, nb,
                      warm_total);
        for (size_t k = 0; k < nb; k++)
                for (size_t i = 0; i < MAX_IO; i++) {
                        free(runs[k].in[i].data);
                        free(runs[k].ref[i].data);
                }
        sl_session_destroy(s);
}

/* ---- the models ---- */

static void test_shipped_cnn(void **state)
{
        static const int64_t batches[] = {1, 64, 3, 17};
        char path[1024], err[512] = "";
        const char *root = getenv("SL_SOURCE_DIR");
        sl_model_t *m = NULL;
        (void)state;
        snprintf(path, sizeof(path), "%s/models/fashion_cnn/1/model.onnx",
                 root ? root : SL_SOURCE_DIR);
        if (sl_model_load(path, &m, err, sizeof(err)))
                fail_msg("load: %s", err);
        check_warm_runs("fashion_cnn", m, batches, 4);
        sl_model_destroy(m);
}

/* X [N,16] -> Gemm(32)+Relu -> Gemm(10) -> Softmax. */
static void test_mlp(void **state)
{
        static const int64_t batches[] = {1, 64, 5};
        const int64_t x[] = {-1, 16}, w1[] = {16, 32}, b1[] = {32}, w2[] = {32, 10}, b2[] = {10};
        builder_t b;
        sl_model_t *m;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "X", 2, x);
        b_rand_init(&b, "W1", 2, w1);
        b_rand_init(&b, "B1", 1, b1);
        b_rand_init(&b, "W2", 2, w2);
        b_rand_init(&b, "B2", 1, b2);
        b_node(&b, "Gemm", "fc1", "X,W1,B1", "H");
        b_node(&b, "Relu", "act", "H", "A");
        b_node(&b, "Gemm", "fc2", "A,W2,B2", "L");
        b_node(&b, "Softmax", "sm", "L", "Y");
        b_output(&b, "Y");
        m = b_load(&b);
        check_warm_runs("mlp", m, batches, 3);
        sl_model_destroy(m);
        b_reset();
}

/* X [T=5,N,8] -> LSTM(6) -> Y [5,1,N,6] -> Squeeze(1) -> GRU(4) -> Y2, and
 * the LSTM's last hidden state Y_h. */
static void test_lstm_gru(void **state)
{
        static const int64_t batches[] = {1, 64, 3};
        const int64_t x[] = {5, -1, 8}, w[] = {1, 24, 8}, r[] = {1, 24, 6}, bb[] = {1, 48};
        const int64_t gw[] = {1, 12, 6}, gr[] = {1, 12, 4}, gb[] = {1, 24}, ax[] = {1};
        Onnx__NodeProto *n;
        builder_t b;
        sl_model_t *m;
        (void)state;
        b_init(&b, 13);
        b_input(&b, "X", 3, x);
        b_rand_init(&b, "W", 3, w);
        b_rand_init(&b, "R", 3, r);
        b_rand_init(&b, "B", 2, bb);
        b_rand_init(&b, "GW", 3, gw);
        b_rand_init(&b, "GR", 3, gr);
        b_rand_init(&b, "GB", 2, gb);
        b_init_i64(&b, "axes", ax, 1);
        n = b_node(&b, "LSTM", "lstm", "X,W,R,B", "Y,Y_h");
        attr_i(n, "hidden_size", 6);
        b_node(&b, "Squeeze", "sq", "Y,axes", "S");
        n = b_node(&b, "GRU", "gru", "S,GW,GR,GB", "Y2");
        attr_i(n, "hidden_size", 4);
        attr_i(n, "linear_before_reset", 1);
        b_output(&b, "Y2");
        b_output(&b, "Y_h");
        m = b_load(&b);
        check_warm_runs("lstm_gru", m, batches, 3);
        sl_model_destroy(m);
        b_reset();
}

/* An encoder block on X [N,T=6,D=8]: single-head attention with a mask made
 * by ConstantOfShape(Shape(scores)) (not folded: the batch is symbolic),
 * residual, LayerNormalization and a Relu feed-forward. */
static void test_transformer_block(void **state)
{
        static const int64_t batches[] = {1, 64, 2};
        const int64_t x[] = {-1, 6, 8}, dd[] = {8, 8}, w1[] = {8, 16};
        const int64_t w2[] = {16, 8}, d[] = {8}, one[] = {1};
        const float scale = 0.35355339f, zero = 0.0f;
        Onnx__NodeProto *n;
        Onnx__AttributeProto *a;
        builder_t b;
        sl_model_t *m;
        (void)state;
        b_init(&b, 17);
        b_input(&b, "X", 3, x);
        b_rand_init(&b, "Wq", 2, dd);
        b_rand_init(&b, "Wk", 2, dd);
        b_rand_init(&b, "Wv", 2, dd);
        b_rand_init(&b, "W1", 2, w1);
        b_rand_init(&b, "W2", 2, w2);
        b_rand_init(&b, "gamma", 1, d);
        b_rand_init(&b, "beta", 1, d);
        b_init_f(&b, "scale", 0, one, &scale, 1); /* rank 0: dims unread */
        b_node(&b, "MatMul", "q", "X,Wq", "Q");
        b_node(&b, "MatMul", "k", "X,Wk", "K");
        b_node(&b, "MatMul", "v", "X,Wv", "V");
        n = b_node(&b, "Transpose", "kt", "K", "Kt");
        attr_ints(n, "perm", (const int64_t[]){0, 2, 1}, 3);
        b_node(&b, "MatMul", "qk", "Q,Kt", "S0");
        b_node(&b, "Mul", "scaled", "S0,scale", "S1");
        b_node(&b, "Shape", "shape", "S1", "Sshape");
        n = b_node(&b, "ConstantOfShape", "mask", "Sshape", "M");
        a = attr_new(n, "value");
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        a->t = b_tensor("v", 1, one, &zero, 1);
        b_node(&b, "Add", "masked", "S1,M", "S");
        n = b_node(&b, "Softmax", "sm", "S", "P");
        attr_i(n, "axis", -1);
        b_node(&b, "MatMul", "pv", "P,V", "A");
        b_node(&b, "Add", "res1", "A,X", "R");
        n = b_node(&b, "LayerNormalization", "ln", "R,gamma,beta", "L");
        attr_i(n, "axis", -1);
        b_node(&b, "MatMul", "ff1", "L,W1", "F0");
        b_node(&b, "Relu", "ffa", "F0", "F1");
        b_node(&b, "MatMul", "ff2", "F1,W2", "F3"); /* 16 nodes: the builder's most */
        b_output(&b, "F3");
        b_output(&b, "L");
        m = b_load(&b);
        check_warm_runs("transformer", m, batches, 3);
        sl_model_destroy(m);
        b_reset();
}

/* Loop (control flow): X [N,4] doubled 3 times, with the states stacked as a
 * scan output. The loop's subgraph session keeps one buffer per value; with
 * the same trip count warm runs allocate nothing either. */
static void test_loop(void **state)
{
        static const int64_t batches[] = {1, 64, 3};
        const int64_t x[] = {-1, 4}, trip = 3;
        builder_t b, body;
        Onnx__NodeProto *n;
        sl_model_t *m;
        uint8_t t = 1;
        Onnx__TensorProto *cond;
        (void)state;
        b_init(&body, 13);
        body.graph.name = b_str("body");
        body.inputs[body.graph.n_input++] = b_value("i", 7, 0, NULL);
        body.inputs[body.graph.n_input++] = b_value("c", 9, 0, NULL);
        body.inputs[body.graph.n_input++] = b_value("s", 1, -1, NULL);
        b_node(&body, "Identity", "keep", "c", "c_out");
        b_node(&body, "Add", "dbl", "s,s", "s_out");
        b_node(&body, "Relu", "scan", "s_out", "scan_out");
        body.outputs[body.graph.n_output++] = b_value("c_out", 9, 0, NULL);
        body.outputs[body.graph.n_output++] = b_value("s_out", 1, -1, NULL);
        body.outputs[body.graph.n_output++] = b_value("scan_out", 1, -1, NULL);

        b_init(&b, 13);
        b_input(&b, "X", 2, x);
        b_init_i64(&b, "M", &trip, 1);
        b.inits[0]->n_dims = 0; /* scalar */
        cond = b_alloc(sizeof(*cond));
        onnx__tensor_proto__init(cond);
        cond->name = b_str("cond");
        cond->has_data_type = 1;
        cond->data_type = 9;
        cond->has_raw_data = 1;
        cond->raw_data.len = 1;
        cond->raw_data.data = b_alloc(1);
        memcpy(cond->raw_data.data, &t, 1);
        b.inits[b.graph.n_initializer++] = cond;
        n = b_node(&b, "Loop", "loop", "M,cond,X", "Xf,Xs");
        attr_g(n, "body", &body);
        b_output(&b, "Xf");
        b_output(&b, "Xs");
        m = b_load(&b);
        check_warm_runs("loop", m, batches, 3);
        sl_model_destroy(m);
        b_reset();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shipped_cnn), cmocka_unit_test(test_mlp),
            cmocka_unit_test(test_lstm_gru),    cmocka_unit_test(test_transformer_block),
            cmocka_unit_test(test_loop),
        };
        count_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
