/*
 * sl_prep_apply(): request rows -> the model's float32 NCHW rows, each
 * element y = x * a[c] + b[c] (prep.c folds scale, mean and std into a, b).
 *
 * The loops are written for the auto-vectoriser: restrict pointers, unit
 * stride on the destination, no calls or branches inside; GCC -O3 turns the
 * contiguous ones and the 3-channel NHWC one into SIMD (uint8 widening,
 * interleaved loads). ISO C mode leaves x * a + b uncontracted (no FMA), so
 * the results do not depend on the CPU.
 */
#include "prep_int.h"

#include <string.h>

/* One contiguous run of one channel: NCHW rows, or NHWC with a single channel. */
#define AFFINE(name, T)                                                                            \
        static void name(const T *restrict s, float *restrict d, size_t n, float a, float b)       \
        {                                                                                          \
                for (size_t i = 0; i < n; i++)                                                     \
                        d[i] = (float)s[i] * a + b;                                                \
        }

/*
 * NHWC rows of 3 channels (RGB images): \p P pixels from \p s into three
 * planes \p stride floats apart. Float input only: uint8 is first widened
 * into a small stack buffer (nhwc3_u8), since baseline x86-64 (SSE2) cannot
 * vectorise widening and de-interleaving in one loop, but does each alone.
 */
static void nhwc3_f32(const float *restrict s, float *restrict d, size_t P, size_t stride,
                      const float *ca, const float *cb)
{
        float *restrict d0 = d, *restrict d1 = d + stride, *restrict d2 = d + 2 * stride;
        const float a0 = ca[0], a1 = ca[1], a2 = ca[2];
        const float b0 = cb[0], b1 = cb[1], b2 = cb[2];
        for (size_t p = 0; p < P; p++) {
                d0[p] = s[3 * p] * a0 + b0;
                d1[p] = s[3 * p + 1] * a1 + b1;
                d2[p] = s[3 * p + 2] * a2 + b2;
        }
}

#define WIDEN_PIXELS 512 /* 6 KiB of stack */

static void nhwc3_u8(const uint8_t *restrict s, float *restrict d, size_t P, size_t stride,
                     const float *ca, const float *cb)
{
        float tmp[3 * WIDEN_PIXELS];
        for (size_t p0 = 0; p0 < P; p0 += WIDEN_PIXELS) {
                size_t n = P - p0 < WIDEN_PIXELS ? P - p0 : WIDEN_PIXELS;
                const uint8_t *restrict sp = s + 3 * p0;
                for (size_t i = 0; i < 3 * n; i++)
                        tmp[i] = (float)sp[i];
                nhwc3_f32(tmp, d + p0, n, stride, ca, cb);
        }
}

/* One NHWC row of P pixels and C channels: one plane at a time, strided loads. */
#define NHWC(name, T)                                                                              \
        static void name(const T *restrict s, float *restrict d, size_t P, size_t C,               \
                         const float *ca, const float *cb, int per_channel)                        \
        {                                                                                          \
                for (size_t c = 0; c < C; c++) {                                                   \
                        const float a = ca[per_channel ? c : 0], b = cb[per_channel ? c : 0];      \
                        const T *restrict sc = s + c;                                              \
                        float *restrict dc = d + c * P;                                            \
                        for (size_t p = 0; p < P; p++)                                             \
                                dc[p] = (float)sc[p * C] * a + b;                                  \
                }                                                                                  \
        }

AFFINE(affine_u8, uint8_t)
AFFINE(affine_f32, float)
NHWC(nhwc_u8, uint8_t)
NHWC(nhwc_f32, float)

/* Rows of [rows, C, inner] elements (NCHW) or [rows, inner, C] (NHWC), of type T. */
#define CONVERT(T, sfx)                                                                            \
        do {                                                                                       \
                const T *s = wire->data;                                                           \
                if (!nhwc || C == 1) {                                                             \
                        if (!per_channel) {                                                        \
                                affine_##sfx(s, d, rows *C *inner, prep->a[0], prep->b[0]);        \
                                break;                                                             \
                        }                                                                          \
                        for (size_t r = 0; r < rows; r++)                                          \
                                for (size_t c = 0; c < C; c++) {                                   \
                                        size_t off = (r * C + c) * inner;                          \
                                        affine_##sfx(s + off, d + off, inner, prep->a[c],          \
                                                     prep->b[c]);                                  \
                                }                                                                  \
                } else if (C == 3 && per_channel) {                                                \
                        for (size_t r = 0; r < rows; r++)                                          \
                                nhwc3_##sfx(s + r * 3 * inner, d + r * 3 * inner, inner, inner,    \
                                            prep->a, prep->b);                                     \
                } else {                                                                           \
                        for (size_t r = 0; r < rows; r++)                                          \
                                nhwc_##sfx(s + r * C * inner, d + r * C * inner, inner, C,         \
                                           prep->a, prep->b, per_channel);                         \
                }                                                                                  \
        } while (0)

sl_err_t sl_prep_apply(const sl_prep_t *prep, const sl_tensor_t *wire, void *dst)
{
        sl_dtype_t want;
        size_t rows, C, inner = 1;
        float *d = dst;
        int nhwc, per_channel;

        if (!prep || prep->identity) {
                if (wire->nbytes)
                        memcpy(dst, wire->data, wire->nbytes);
                return SL_OK;
        }
        /* Not the identity: sl_prep_check() made sure the model takes float32. */
        want = prep->datatype != SL_DT_UNDEFINED ? prep->datatype : SL_DT_FLOAT;
        if (wire->dtype != want)
                return SL_ERR_DATATYPE;
        nhwc = prep->layout == SL_PREP_LAYOUT_NHWC;
        if (nhwc && wire->ndim != 4)
                return SL_ERR_SHAPE;
        rows = wire->ndim >= 1 ? (size_t)wire->dims[0] : 1;
        C = nhwc ? (size_t)wire->dims[3] : wire->ndim >= 2 ? (size_t)wire->dims[1] : 1;
        for (int i = nhwc ? 1 : 2; i < (nhwc ? 3 : wire->ndim); i++)
                inner *= (size_t)wire->dims[i];
        per_channel = prep->n_coef > 1;
        if ((per_channel && C != prep->n_coef) ||
            wire->nbytes != rows * C * inner * sl_dtype_size(wire->dtype))
                return SL_ERR_SHAPE;
        if (wire->dtype == SL_DT_FLOAT && prep->values_identity && (!nhwc || C == 1)) {
                if (wire->nbytes)
                        memcpy(dst, wire->data, wire->nbytes);
                return SL_OK;
        }
        if (wire->dtype == SL_DT_UINT8)
                CONVERT(uint8_t, u8);
        else
                CONVERT(float, f32);
        return SL_OK;
}
