/*
 * Cast and CastLike between every element type the engine stores: the
 * numeric types, float16 (rounded once, to nearest even; tensor.c), bfloat16
 * (see below) and string (parsed and printed as the spec's Cast section says).
 *
 * Numbers to bfloat16 truncate: the result is the bfloat16 nearest to the
 * value towards zero, i.e. from float32 the upper 16 bits of its encoding.
 * Cast-13 does not say how to round to bfloat16 (onnx/onnx issue #3876); the
 * reference data of ONNX 1.12 (onnx/backend/test/case/node/cast.py and
 * castlike.py, test_cast[like]_FLOAT_to_BFLOAT16) takes the upper 16 bits,
 * so we do too. A NaN stays a NaN: one whose upper mantissa bits are all
 * zero would truncate to infinity, so every NaN gets the quiet bit (0x0040),
 * keeping its sign and upper payload bits. A finite double beyond the
 * bfloat16 range becomes the largest finite bfloat16 of its sign, as
 * truncation does. Strings to bfloat16 are parsed and rounded to nearest (as
 * strtof reads a float), so that bfloat16 -> string -> bfloat16 gives back
 * the value. Arithmetic producing bfloat16 elsewhere keeps tensor.c's one
 * rounding to nearest even: that is the IEEE result of the operation, and
 * only Cast's reference data asks for truncation.
 * @sa ONNX docs/Operators.md, "Cast" (opsets 1, 6, 9, 13) and "CastLike" (15).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../engine_int.h"
#include "ops.h"

/* Longest string a number prints as here, NUL included ("-1.7976931348623157e+308"
 * is 25 bytes; a positional double below 1e16 with 17 digits, 24). */
#define NUM_STR_MAX 32

/*
 * String to number. The spec reserves "+INF"/"INF", "-INF" and "NaN",
 * matched case-insensitively; everything else is a plain or scientific
 * numeral. An integral numeral is read exactly (int64 beyond 2^53); any
 * other text that is not a number is undefined behaviour in the spec and
 * reads as NaN (0 for integer targets) here.
 */
static void parse_number(const char *s, double *d, int64_t *i, bool *exact_int)
{
        char *end;
        long long ll;

        *exact_int = false;
        if (!strcasecmp(s, "nan")) {
                *d = NAN;
        } else if (!strcasecmp(s, "inf") || !strcasecmp(s, "+inf")) {
                *d = INFINITY;
        } else if (!strcasecmp(s, "-inf")) {
                *d = -INFINITY;
        } else {
                errno = 0;
                ll = strtoll(s, &end, 10);
                if (end != s && !*end && !errno) {
                        *i = ll;
                        *d = (double)ll;
                        *exact_int = true;
                        return;
                }
                *d = strtod(s, &end);
                if (end == s)
                        *d = NAN;
        }
        *i = isfinite(*d) && fabs(*d) < 9.2e18 ? (int64_t)*d : 0;
}

/* True when numeral \p s reads back as \p v in type \p dt. */
static bool round_trips(const char *s, double v, sl_dtype_t dt)
{
        switch (dt) {
        case SL_DT_FLOAT:
                return strtof(s, NULL) == (float)v;
        case SL_DT_FLOAT16:
                return sl_float16_from_double(strtod(s, NULL)) == sl_float16_from_double(v);
        case SL_DT_BFLOAT16:
                return sl_bfloat16_from_double(strtod(s, NULL)) == sl_bfloat16_from_double(v);
        default:
                return strtod(s, NULL) == v;
        }
}

/*
 * The shortest decimal that reads back as \p v in type \p dt, laid out as
 * numpy prints a float scalar (the reference the ONNX test data was made
 * with): positional for 1e-4 <= |v| < 1e16 with at least one fractional
 * digit ("0.5", "100.0"), scientific otherwise ("1e-05", "1.5e+16").
 * NaN and infinities print as the spec's literals "NaN", "INF", "-INF".
 */
static void format_float(char *out, size_t size, double v, sl_dtype_t dt)
{
        char sci[40], digits[24], tmp[48];
        int nd = 0, x, o = 0;
        const char *p;
        double a = fabs(v);

        if (isnan(v)) {
                snprintf(out, size, "NaN");
                return;
        }
        if (isinf(v)) {
                snprintf(out, size, "%s", v > 0 ? "INF" : "-INF");
                return;
        }
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(sci, sizeof(sci), "%.*e", prec - 1, a);
                if (round_trips(sci, a, dt))
                        break;
        }
        /* sci is "d[.ddd]e[+-]XX": collect digits and the decimal exponent */
        for (p = sci; *p && *p != 'e'; p++)
                if (*p != '.')
                        digits[nd++] = *p;
        while (nd > 1 && digits[nd - 1] == '0')
                nd--;
        digits[nd] = '\0';
        x = (int)strtol(p + 1, NULL, 10);
        if (signbit(v))
                tmp[o++] = '-';
        if (a != 0 && (a < 1e-4 || a >= 1e16)) {
                snprintf(tmp + o, sizeof(tmp) - (size_t)o, "%c%s%se%c%02d", digits[0],
                         nd > 1 ? "." : "", digits + 1, x < 0 ? '-' : '+', abs(x));
        } else {
                int ipart = x < 0 ? 1 : x + 1; /* digits before the point */
                for (int k = 0; k < ipart; k++)
                        tmp[o++] = x >= 0 && k < nd ? digits[k] : '0';
                tmp[o++] = '.';
                for (int k = x + 1; k < 0; k++) /* zeros after the point */
                        tmp[o++] = '0';
                for (int k = x < 0 ? 0 : ipart; k < nd; k++)
                        tmp[o++] = digits[k];
                if (x >= 0 && nd <= ipart)
                        tmp[o++] = '0';
                tmp[o] = '\0';
        }
        snprintf(out, size, "%s", tmp);
}

/* Element \p i of numeric tensor \p x as a string (NUM_STR_MAX bytes). */
static void format_element(char *out, const sl_tensor_t *x, int64_t i)
{
        if (sl_dtype_is_float(x->dtype))
                format_float(out, NUM_STR_MAX, sl_tensor_get_f64(x, i), x->dtype);
        else if (x->dtype == SL_DT_UINT64)
                snprintf(out, NUM_STR_MAX, "%llu",
                         (unsigned long long)((const uint64_t *)x->data)[i]);
        else
                snprintf(out, NUM_STR_MAX, "%lld", (long long)sl_tensor_get_i64(x, i));
}

/* To string: the bytes live in the node's session cache, valid until the next run. */
static sl_err_t cast_to_string(sl_opctx_t *c, const sl_tensor_t *x, sl_tensor_t *y, int64_t n)
{
        char **dst = y->data, *buf;
        const char *const *src = x->data;
        size_t bytes = 0;
        bool fresh;

        if (x->dtype == SL_DT_STRING) {
                for (int64_t i = 0; i < n; i++)
                        bytes += strlen(src[i]) + 1;
        } else {
                bytes = (size_t)n * NUM_STR_MAX;
        }
        if (!(buf = sl_op_node_cache(c, bytes ? bytes : 1, &fresh)))
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory (%zu bytes of strings)", bytes);
        for (int64_t i = 0; i < n; i++) {
                dst[i] = buf;
                if (x->dtype == SL_DT_STRING) {
                        size_t len = strlen(src[i]) + 1;
                        memcpy(buf, src[i], len);
                        buf += len;
                } else {
                        format_element(buf, x, i);
                        buf += NUM_STR_MAX;
                }
        }
        return SL_OK;
}

static void cast_from_string(const sl_tensor_t *x, sl_tensor_t *y, int64_t n)
{
        const char *const *src = x->data;
        for (int64_t i = 0; i < n; i++) {
                double d;
                int64_t v;
                bool exact;
                parse_number(src[i], &d, &v, &exact);
                if (sl_dtype_is_float(y->dtype) || y->dtype == SL_DT_BOOL)
                        sl_tensor_set_f64(y, i, d);
                else
                        sl_tensor_set_i64(y, i, v);
        }
}

/* bfloat16 from float32 bits by truncation, NaN kept a (quiet) NaN. */
static uint16_t bfloat16_truncate_bits(uint32_t bits)
{
        if ((bits & 0x7fffffffu) > 0x7f800000u)
                return (uint16_t)((bits >> 16) | 0x7fc0u);
        return (uint16_t)(bits >> 16);
}

/* bfloat16 from a double by truncation: float32 towards zero first, then
 * its upper bits (truncating twice truncates once). */
static uint16_t bfloat16_truncate(double v)
{
        float f;
        uint32_t bits;
        if (isfinite(v) && fabs(v) > FLT_MAX) {
                f = v > 0 ? FLT_MAX : -FLT_MAX;
        } else {
                f = (float)v;
                if (!isnan(v) && fabs((double)f) > fabs(v))
                        f = nextafterf(f, 0.0f); /* it rounded away from zero */
        }
        memcpy(&bits, &f, sizeof(bits));
        return bfloat16_truncate_bits(bits);
}

/* bfloat16 from an integer of magnitude \p a: its 8 leading significant bits
 * are the result, exact in a double (converting first could round up). */
static uint16_t bfloat16_truncate_int(uint64_t a, bool negative)
{
        int top = 63;
        double v;
        while (top > 7 && !(a >> top))
                top--;
        if (top > 7)
                a &= ~((UINT64_C(1) << (top - 7)) - 1);
        v = (double)a;
        return bfloat16_truncate(negative ? -v : v);
}

static void cast_to_bfloat16(const sl_tensor_t *x, sl_tensor_t *y, int64_t n)
{
        uint16_t *dst = y->data;
        if (x->dtype == SL_DT_FLOAT) {
                const uint32_t *src = x->data; /* bits: no FPU, so DAZ spares subnormals */
                for (int64_t i = 0; i < n; i++)
                        dst[i] = bfloat16_truncate_bits(src[i]);
        } else if (sl_dtype_is_float(x->dtype)) {
                for (int64_t i = 0; i < n; i++)
                        dst[i] = bfloat16_truncate(sl_tensor_get_f64(x, i));
        } else if (x->dtype == SL_DT_UINT64) {
                for (int64_t i = 0; i < n; i++)
                        dst[i] = bfloat16_truncate_int(((const uint64_t *)x->data)[i], false);
        } else {
                for (int64_t i = 0; i < n; i++) {
                        int64_t v = sl_tensor_get_i64(x, i);
                        uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
                        dst[i] = bfloat16_truncate_int(a, v < 0);
                }
        }
}

static sl_err_t cast_to(sl_opctx_t *c, sl_dtype_t to)
{
        const sl_tensor_t *x = c->in[0];
        sl_tensor_t *y;
        int64_t n;
        if (!x)
                return sl_op_fail(c, SL_ERR_MODEL, "input required");
        if (!sl_dtype_size(to) || !sl_dtype_size(x->dtype))
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "cast %s to %s not supported",
                                  sl_dtype_name(x->dtype), sl_dtype_name(to));
        if (!(y = sl_op_output_like(c, 0, to, x)))
                return SL_ERR_NOMEM;
        n = sl_tensor_numel(x);
        if (to == SL_DT_STRING)
                return cast_to_string(c, x, y, n);
        if (x->dtype == SL_DT_STRING) {
                cast_from_string(x, y, n);
        } else if (x->dtype == to) {
                memcpy(y->data, x->data, x->nbytes);
        } else if (to == SL_DT_BFLOAT16) {
                cast_to_bfloat16(x, y, n);
        } else if (sl_dtype_is_float(x->dtype) || sl_dtype_is_float(to)) {
                for (int64_t i = 0; i < n; i++)
                        sl_tensor_set_f64(y, i, sl_tensor_get_f64(x, i));
        } else {
                for (int64_t i = 0; i < n; i++)
                        sl_tensor_set_i64(y, i, sl_tensor_get_i64(x, i));
        }
        return SL_OK;
}

/* Cast-1 names the target type as a string: TensorProto.DataType's enum names. */
static sl_dtype_t dtype_from_name(const char *name)
{
        static const char *names[] = {"UNDEFINED",  "FLOAT",   "UINT8",  "INT8",   "UINT16",
                                      "INT16",      "INT32",   "INT64",  "STRING", "BOOL",
                                      "FLOAT16",    "DOUBLE",  "UINT32", "UINT64", "COMPLEX64",
                                      "COMPLEX128", "BFLOAT16"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (!strcasecmp(name, names[i]))
                        return (sl_dtype_t)i;
        return SL_DT_UNDEFINED;
}

sl_err_t sl_op_cast(sl_opctx_t *c)
{
        char buf[16];
        int64_t to = sl_attr_int(c->node, "to", -1);
        if (to < 0)
                return cast_to(
                    c, dtype_from_name(sl_attr_string(c->node, "to", "", buf, sizeof(buf))));
        return cast_to(c, (sl_dtype_t)to);
}

sl_err_t sl_op_cast_like(sl_opctx_t *c)
{
        if (!sl_op_in(c, 1))
                return sl_op_fail(c, SL_ERR_MODEL, "target_type input required");
        return cast_to(c, c->in[1]->dtype);
}

sl_err_t sl_op_check_strings(sl_opctx_t *c)
{
        const char *op = c->node->op->op_type;
        if (!strcmp(op, "Cast") || !strcmp(op, "CastLike") || !strcmp(op, "Identity"))
                return SL_OK;
        for (int k = 0; k < c->n_in; k++)
                if (c->in[k] && c->in[k]->dtype == SL_DT_STRING)
                        return sl_op_fail(c, SL_ERR_UNSUPPORTED,
                                          "input #%d is a string tensor: only Cast, CastLike and "
                                          "Identity take strings",
                                          k);
        return SL_OK;
}
