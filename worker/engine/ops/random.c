/*
 * Random numbers for the operators that draw them (Dropout in training
 * mode): MT19937 seeded as numpy's legacy RandomState.seed(int) seeds it, and
 * doubles in [0, 1) made as its random_sample() makes them, so that a node's
 * `seed` attribute gives the masks of ONNX's reference implementation.
 * @sa M. Matsumoto, T. Nishimura, "Mersenne Twister" (1998), mt19937ar.c;
 *     ONNX docs/Operators.md, "Dropout" (12, 13).
 */
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

#define MT_N 624
#define MT_M 397

typedef struct {
        uint32_t mt[MT_N];
        int i;
} mt_t;

static void mt_seed(mt_t *s, uint32_t seed)
{
        s->mt[0] = seed;
        for (int i = 1; i < MT_N; i++)
                s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
        s->i = MT_N;
}

static uint32_t mt_next(mt_t *s)
{
        uint32_t y;
        if (s->i >= MT_N) {
                for (int k = 0; k < MT_N; k++) {
                        y = (s->mt[k] & 0x80000000u) | (s->mt[(k + 1) % MT_N] & 0x7fffffffu);
                        s->mt[k] = s->mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
                }
                s->i = 0;
        }
        y = s->mt[s->i++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
}

/* A double in [0, 1) with 53 random bits (numpy's random_sample). */
static double mt_double(mt_t *s)
{
        uint32_t a = mt_next(s) >> 5, b = mt_next(s) >> 6;
        return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/*
 * Dropout with training_mode true: mask = u >= ratio with u uniform in
 * [0, 1), y = x * mask / (1 - ratio). The generator restarts from `seed`
 * (0 when the attribute is absent) at every run, so runs are reproducible.
 */
sl_err_t sl_dropout_train(sl_opctx_t *c, const sl_tensor_t *x, double ratio)
{
        int64_t n = sl_tensor_numel(x);
        int64_t seed = sl_attr_int(c->node, "seed", 0);
        double scale;
        sl_tensor_t *y, *mask = NULL;
        mt_t *rng;

        if (!sl_dtype_is_float(x->dtype) || x->dtype == SL_DT_FLOAT16)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "training_mode: %s input not supported",
                                  sl_dtype_name(x->dtype));
        if (!(ratio >= 0 && ratio < 1))
                return sl_op_fail(c, SL_ERR_MODEL, "ratio %g is outside [0, 1)", ratio);
        if (!(y = sl_op_output_like(c, 0, x->dtype, x)) ||
            (sl_op_has_output(c, 1) && !(mask = sl_op_output_like(c, 1, SL_DT_BOOL, x))) ||
            !(rng = sl_op_scratch(c, sizeof(*rng))))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        if (ratio == 0) { /* the spec's identity case: no numbers are drawn */
                memcpy(y->data, x->data, x->nbytes);
                if (mask)
                        memset(mask->data, 1, mask->nbytes);
                return SL_OK;
        }
        mt_seed(rng, (uint32_t)seed);
        scale = 1.0 / (1.0 - ratio);
        for (int64_t i = 0; i < n; i++) {
                bool keep = mt_double(rng) >= ratio;
                sl_tensor_set_f64(y, i, keep ? sl_tensor_get_f64(x, i) * scale : 0.0);
                if (mask)
                        ((uint8_t *)mask->data)[i] = keep;
        }
        return SL_OK;
}
