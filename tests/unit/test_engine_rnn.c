/* Fast paths of the recurrent kernels (worker/engine/ops/rnn.c) against the
 * general per-row path on odd sizes: a plain LSTM without sequence_lens runs
 * gate-major, the same LSTM with sequence_lens = seq for every entry runs row
 * by row; Y, Y_h and Y_c must agree. */
#include <stdbool.h>

#include "engine_fixtures.h"

#define SEQ   4
#define BATCH 5
#define IN    3
#define HID   7

static float frand_state(uint32_t *s)
{
        *s = *s * 1664525u + 1013904223u;
        return (float)(*s >> 8) / (float)(1u << 24) - 0.5f;
}

static void init_rand(builder_t *b, const char *name, int ndim, const int64_t *dims, uint32_t *s)
{
        float v[2 * 4 * HID * HID + 64];
        size_t n = 1;
        for (int i = 0; i < ndim; i++)
                n *= (size_t)dims[i];
        assert_true(n <= sizeof(v) / sizeof(v[0]));
        for (size_t i = 0; i < n; i++)
                v[i] = 1.5f * frand_state(s);
        b_init_f(b, name, ndim, dims, v, n);
}

/* Runs LSTM(direction) on x; with_lens adds sequence_lens = SEQ for all. */
static void run_lstm(const char *direction, bool with_lens, const float *x, float *out[3],
                     size_t nout[3])
{
        int nd = strcmp(direction, "bidirectional") ? 1 : 2;
        const int64_t xd[] = {SEQ, BATCH, IN}, wd[] = {nd, 4 * HID, IN}, rd[] = {nd, 4 * HID, HID};
        const int64_t bd[] = {nd, 8 * HID}, hd[] = {nd, BATCH, HID};
        int64_t lens[BATCH];
        uint32_t seed = 12345;
        builder_t b;
        Onnx__NodeProto *n;
        sl_model_t *m;
        sl_session_t *s = NULL;
        sl_tensor_t in = {0}, o[3];
        char err[512] = "";

        for (int i = 0; i < BATCH; i++)
                lens[i] = SEQ;
        b_init(&b, 14);
        b_input(&b, "X", 3, xd);
        init_rand(&b, "W", 3, wd, &seed);
        init_rand(&b, "R", 3, rd, &seed);
        init_rand(&b, "B", 2, bd, &seed);
        init_rand(&b, "H0", 3, hd, &seed);
        init_rand(&b, "C0", 3, hd, &seed);
        b_init_i64(&b, "L", lens, BATCH);
        n = b_node(&b, "LSTM", "lstm", with_lens ? "X,W,R,B,L,H0,C0" : "X,W,R,B,,H0,C0",
                   "Y,Y_h,Y_c");
        attr_i(n, "hidden_size", HID);
        attr_s(n, "direction", direction);
        b_output(&b, "Y");
        b_output(&b, "Y_h");
        b_output(&b, "Y_c");
        m = b_load(&b);
        in.dtype = SL_DT_FLOAT;
        in.ndim = 3;
        memcpy(in.dims, xd, sizeof(xd));
        in.data = (void *)x;
        in.nbytes = sizeof(float) * SEQ * BATCH * IN;
        memset(o, 0, sizeof(o));
        assert_int_equal(sl_session_new(m, &s), SL_OK);
        if (sl_session_run(s, &in, 1, o, 3, err, sizeof(err)))
                fail_msg("run failed: %s", err);
        for (int k = 0; k < 3; k++) {
                nout[k] = (size_t)sl_tensor_numel(&o[k]);
                out[k] = malloc(sizeof(float) * nout[k]);
                assert_non_null(out[k]);
                memcpy(out[k], o[k].data, sizeof(float) * nout[k]);
        }
        sl_session_destroy(s);
        sl_model_destroy(m);
        b_reset();
}

static void check_direction(const char *direction)
{
        float x[SEQ * BATCH * IN], *a[3], *r[3];
        size_t na[3], nr[3];
        uint32_t seed = 777;
        for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
                x[i] = 2.0f * frand_state(&seed);
        run_lstm(direction, false, x, a, na);
        run_lstm(direction, true, x, r, nr);
        for (int k = 0; k < 3; k++) {
                assert_int_equal(na[k], nr[k]);
                for (size_t i = 0; i < na[k]; i++)
                        if (fabsf(a[k][i] - r[k][i]) > 1e-6f + 1e-5f * fabsf(r[k][i]))
                                fail_msg("%s output %d element %zu: gate-major %.9g, per-row %.9g",
                                         direction, k, i, a[k][i], r[k][i]);
                free(a[k]);
                free(r[k]);
        }
}

static void test_lstm_gate_major(void **state)
{
        (void)state;
        check_direction("forward");
        check_direction("reverse");
        check_direction("bidirectional");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lstm_gate_major),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
