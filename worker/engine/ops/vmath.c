/*
 * Vector exp, sigmoid and tanh for the kernels whose time goes into
 * transcendental functions (recurrent gates, Softmax).
 *
 * One algorithm, two builds: an AVX-512 loop (16 lanes, masked tail) chosen
 * at run time, and a scalar loop with the same steps for other CPUs and as
 * the reference the unit tests compare against. exp is Cephes' expf (range
 * reduction by ln 2 in two parts, degree-5 polynomial, about 1 ulp); tanh is
 * Cephes' tanhf (odd polynomial below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1)
 * above); sigmoid is 1 / (1 + exp(-x)). Inputs are clamped to [-87, 88] before
 * exp so that 2^n stays a normal float: exp(x) for x < -87 returns exp(-87)
 * (1.6e-38) instead of a smaller number or 0, far below any tolerance.
 * NaN stays NaN.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

#define EXP_HI     88.0f
#define EXP_LO     -87.0f
#define LOG2EF     1.44269504088896341f
#define EXP_C1     0.693359375f
#define EXP_C2     -2.12194440e-4f
#define EXP_P0     1.9875691500E-4f
#define EXP_P1     1.3981999507E-3f
#define EXP_P2     8.3334519073E-3f
#define EXP_P3     4.1665795894E-2f
#define EXP_P4     1.6666665459E-1f
#define EXP_P5     5.0000001201E-1f
#define TANH_SMALL 0.625f
#define TANH_P0    -5.70498872745E-3f
#define TANH_P1    2.06390887954E-2f
#define TANH_P2    -5.37397155531E-2f
#define TANH_P3    1.33314422036E-1f
#define TANH_P4    -3.33332819422E-1f

static float exp1(float x)
{
        float fx, z, y, r;
        int32_t e;
        uint32_t bits;

        if (isnan(x))
                return x;
        x = fminf(fmaxf(x, EXP_LO), EXP_HI);
        fx = floorf(x * LOG2EF + 0.5f);
        x = x - fx * EXP_C1 - fx * EXP_C2;
        z = x * x;
        y = ((((EXP_P0 * x + EXP_P1) * x + EXP_P2) * x + EXP_P3) * x + EXP_P4) * x + EXP_P5;
        y = y * z + x + 1.0f;
        e = (int32_t)fx + 127;
        bits = (uint32_t)e << 23;
        memcpy(&r, &bits, sizeof(r));
        return y * r;
}

static float tanh1(float x)
{
        float a = fabsf(x), r;
        if (a < TANH_SMALL) {
                float z = x * x;
                return ((((TANH_P0 * z + TANH_P1) * z + TANH_P2) * z + TANH_P3) * z + TANH_P4) * z *
                           x +
                       x;
        }
        r = 1.0f - 2.0f / (exp1(a + a) + 1.0f);
        return x < 0.0f ? -r : r;
}

void sl_vexp_ref(float *y, const float *x, int64_t n)
{
        for (int64_t i = 0; i < n; i++)
                y[i] = exp1(x[i]);
}

void sl_vsigmoid_ref(float *y, const float *x, int64_t n)
{
        for (int64_t i = 0; i < n; i++)
                y[i] = 1.0f / (1.0f + exp1(-x[i]));
}

void sl_vtanh_ref(float *y, const float *x, int64_t n)
{
        for (int64_t i = 0; i < n; i++)
                y[i] = tanh1(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __m512 exp16(__m512 x)
{
        __m512 fx, z, y, x0 = x;
        __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        __m512i e;

        x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
        fx = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2EF), _mm512_set1_ps(0.5f));
        fx = _mm512_roundscale_ps(fx, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_C1), x);
        x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_C2), x);
        z = _mm512_mul_ps(x, x);
        y = _mm512_fmadd_ps(_mm512_set1_ps(EXP_P0), x, _mm512_set1_ps(EXP_P1));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(EXP_P2));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(EXP_P3));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(EXP_P4));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(EXP_P5));
        y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
        e = _mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127));
        y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
        return _mm512_mask_blend_ps(nan, y, x0);
}

/* 1 / d: the 14-bit estimate and one Newton step (about 1 ulp), cheaper
 * than a division. */
AVX512 static inline __m512 rcp16(__m512 d)
{
        __m512 r = _mm512_rcp14_ps(d);
        return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

AVX512 static inline __m512 tanh16(__m512 x)
{
        __m512 a = _mm512_abs_ps(x), z = _mm512_mul_ps(x, x), p, r;
        __mmask16 small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(TANH_SMALL), _CMP_LT_OQ);
        __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));

        p = _mm512_fmadd_ps(_mm512_set1_ps(TANH_P0), z, _mm512_set1_ps(TANH_P1));
        p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P2));
        p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P3));
        p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P4));
        p = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
        r = exp16(_mm512_add_ps(a, a));
        r = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), rcp16(_mm512_add_ps(r, _mm512_set1_ps(1.0f))),
                             _mm512_set1_ps(1.0f));
        r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign));
        return _mm512_mask_blend_ps(small, r, p);
}

AVX512 static inline __m512 sigmoid16(__m512 x)
{
        __m512 one = _mm512_set1_ps(1.0f);
        return rcp16(_mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

#define VLOOP(name, f)                                                                             \
        AVX512 static void name(float *y, const float *x, int64_t n)                               \
        {                                                                                          \
                int64_t i = 0;                                                                     \
                for (; i + 16 <= n; i += 16)                                                       \
                        _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));                        \
                if (i < n) {                                                                       \
                        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                            \
                        _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));       \
                }                                                                                  \
        }
VLOOP(vexp512, exp16)
VLOOP(vsigmoid512, sigmoid16)
VLOOP(vtanh512, tanh16)

static bool simd_ok(void)
{
        return sl_cpu_avx512f();
}
#else
#define vexp512     sl_vexp_ref
#define vsigmoid512 sl_vsigmoid_ref
#define vtanh512    sl_vtanh_ref

static bool simd_ok(void)
{
        return false;
}
#endif

void sl_vexp(float *y, const float *x, int64_t n)
{
        if (simd_ok())
                vexp512(y, x, n);
        else
                sl_vexp_ref(y, x, n);
}

void sl_vsigmoid(float *y, const float *x, int64_t n)
{
        if (simd_ok())
                vsigmoid512(y, x, n);
        else
                sl_vsigmoid_ref(y, x, n);
}

void sl_vtanh(float *y, const float *x, int64_t n)
{
        if (simd_ok())
                vtanh512(y, x, n);
        else
                sl_vtanh_ref(y, x, n);
}
