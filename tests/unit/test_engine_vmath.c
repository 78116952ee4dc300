/* Vector math of the engine (worker/engine/ops/vmath.c): the AVX-512 loops
 * against the scalar reference of the same algorithm and against libm, on
 * odd sizes (masked tails) and across the clamp range. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/ops/ops.h"

#define N_MAX 67

typedef void (*vfn_t)(float *y, const float *x, int64_t n);

/* |a - b| <= atol + rtol * |b|, printing the worst element on failure. */
static void check_close(const char *what, const float *x, const float *a, const float *b, int64_t n,
                        double atol, double rtol)
{
        int64_t worst = -1;
        double wex = 0;
        for (int64_t i = 0; i < n; i++) {
                double ex = fabs((double)a[i] - b[i]) - (atol + rtol * fabs(b[i]));
                if (ex > wex || (isnan(a[i]) != isnan(b[i]))) {
                        wex = isnan(a[i]) != isnan(b[i]) ? INFINITY : ex;
                        worst = i;
                }
        }
        if (worst >= 0)
                fail_msg("%s: x[%lld] = %.9g gives %.9g, expected %.9g", what, (long long)worst,
                         x[worst], a[worst], b[worst]);
}

static void fill(float *x, int64_t n, float lo, float hi)
{
        for (int64_t i = 0; i < n; i++)
                x[i] = lo + (hi - lo) * (float)i / (float)(n > 1 ? n - 1 : 1);
}

static void check_fn(const char *what, vfn_t fast, vfn_t ref, double (*libm)(double), float lo,
                     float hi, double atol)
{
        float x[N_MAX], a[N_MAX + 1], b[N_MAX], c[N_MAX];
        static const int64_t sizes[] = {1, 3, 15, 16, 17, 31, 33, 67};
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                int64_t n = sizes[s];
                fill(x, n, lo, hi);
                a[n] = 12345.0f; /* the masked tail must not write past n */
                fast(a, x, n);
                ref(b, x, n);
                for (int64_t i = 0; i < n; i++)
                        c[i] = (float)libm(x[i]);
                check_close(what, x, a, b, n, 0, 4e-7);
                check_close(what, x, a, c, n, atol, 1e-6);
                assert_true(a[n] == 12345.0f);
        }
        /* in place */
        fill(x, 17, lo, hi);
        ref(b, x, 17);
        fast(x, x, 17);
        check_close(what, b, x, b, 17, 0, 4e-7);
}

static double sigmoid_d(double v)
{
        return 1.0 / (1.0 + exp(-v));
}

static void test_vexp(void **state)
{
        (void)state;
        check_fn("exp", sl_vexp, sl_vexp_ref, exp, -20.0f, 20.0f, 0);
        check_fn("exp small", sl_vexp, sl_vexp_ref, exp, -1e-3f, 1e-3f, 0);
        check_fn("exp range", sl_vexp, sl_vexp_ref, exp, -86.0f, 87.9f, 1e-37);
}

static void test_vtanh(void **state)
{
        (void)state;
        check_fn("tanh", sl_vtanh, sl_vtanh_ref, tanh, -9.0f, 9.0f, 0);
        check_fn("tanh small", sl_vtanh, sl_vtanh_ref, tanh, -0.7f, 0.7f, 1e-9);
        check_fn("tanh large", sl_vtanh, sl_vtanh_ref, tanh, -300.0f, 300.0f, 0);
}

static void test_vsigmoid(void **state)
{
        (void)state;
        check_fn("sigmoid", sl_vsigmoid, sl_vsigmoid_ref, sigmoid_d, -30.0f, 30.0f, 1e-12);
        check_fn("sigmoid large", sl_vsigmoid, sl_vsigmoid_ref, sigmoid_d, -200.0f, 200.0f, 1e-30);
}

static void test_nan_inf(void **state)
{
        float x[5] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f}, y[5];
        (void)state;
        sl_vexp(y, x, 5);
        assert_true(isnan(y[0]));
        assert_true(y[1] > 1e38f && y[2] < 1e-37f && y[3] == 1.0f && y[4] == 1.0f);
        sl_vtanh(y, x, 5);
        assert_true(isnan(y[0]));
        assert_true(y[1] == 1.0f && y[2] == -1.0f && y[3] == 0.0f);
        sl_vsigmoid(y, x, 5);
        assert_true(isnan(y[0]));
        assert_true(y[1] == 1.0f && y[2] < 1e-37f && y[3] == 0.5f);
}

/* The batch-1 recurrence of LSTM/GRU: sl_gemv_rows against a plain dot
 * product on odd n (rows in fours) and k (masked tail). */
static void test_gemv_rows(void **state)
{
        static const int64_t ns[] = {1, 5, 60, 96}, ks[] = {1, 17, 20, 24, 67};
        float w[96 * 67], a[67], y[97], r[96];
        (void)state;
        for (int64_t i = 0; i < 96 * 67; i++)
                w[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        for (int64_t i = 0; i < 67; i++)
                a[i] = (float)((i * 13) % 29) / 14.0f - 1.0f;
        for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++)
                for (size_t ik = 0; ik < sizeof(ks) / sizeof(ks[0]); ik++) {
                        int64_t n = ns[in], k = ks[ik];
                        y[n] = 12345.0f;
                        if (!sl_gemv_rows(w, a, y, n, k))
                                skip();
                        for (int64_t j = 0; j < n; j++) {
                                double d = 0;
                                for (int64_t i = 0; i < k; i++)
                                        d += (double)w[j * k + i] * a[i];
                                r[j] = (float)d;
                        }
                        check_close("gemv", r, y, r, n, 1e-5, 1e-5);
                        assert_true(y[n] == 12345.0f);
                }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_vexp),      cmocka_unit_test(test_vtanh),
            cmocka_unit_test(test_vsigmoid),  cmocka_unit_test(test_nan_inf),
            cmocka_unit_test(test_gemv_rows),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
