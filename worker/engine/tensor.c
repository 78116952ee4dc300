/* Tensors: element types, TensorProto conversion, broadcasting helpers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

size_t sl_dtype_size(sl_dtype_t dt)
{
        switch (dt) {
        case SL_DT_FLOAT:
        case SL_DT_INT32:
        case SL_DT_UINT32:
                return 4;
        case SL_DT_UINT8:
        case SL_DT_INT8:
        case SL_DT_BOOL:
                return 1;
        case SL_DT_UINT16:
        case SL_DT_INT16:
        case SL_DT_FLOAT16:
        case SL_DT_BFLOAT16:
                return 2;
        case SL_DT_INT64:
        case SL_DT_DOUBLE:
        case SL_DT_UINT64:
                return 8;
        case SL_DT_STRING:
                return sizeof(char *);
        default:
                return 0;
        }
}

const char *sl_dtype_name(sl_dtype_t dt)
{
        static const char *names[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                      "int16",      "int32",   "int64",  "string", "bool",
                                      "float16",    "double",  "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
        if ((unsigned)dt < sizeof(names) / sizeof(names[0]))
                return names[dt];
        return "unknown";
}

bool sl_dtype_is_float(sl_dtype_t dt)
{
        return dt == SL_DT_FLOAT || dt == SL_DT_DOUBLE || dt == SL_DT_FLOAT16 ||
               dt == SL_DT_BFLOAT16;
}

/*
 * IEEE-style binary formats with \p ebits exponent and \p mbits mantissa
 * bits in a uint16_t (float16: 5/10, bfloat16: 8/7). Encoding from double
 * rounds once (rint: to nearest, ties to even, the default mode we never
 * change); going through float first could round twice.
 */
static uint16_t small_float_encode(double v, int ebits, int mbits)
{
        const int bias = (1 << (ebits - 1)) - 1, emin = 1 - bias;
        const uint32_t inf = ((1u << ebits) - 1) << mbits;
        uint32_t sign = signbit(v) ? 1u << (ebits + mbits) : 0, bits;
        double a = fabs(v), q;
        int e;

        if (isnan(v))
                return (uint16_t)(sign | inf | (1u << (mbits - 1)));
        if (isinf(v))
                return (uint16_t)(sign | inf);
        if (a == 0)
                return (uint16_t)sign;
        (void)frexp(a, &e);
        e -= 1; /* a = 1.f * 2^e */
        if (e < emin) {
                /* subnormal: units of 2^(emin - mbits); rounding up to 2^mbits
                 * lands exactly on the smallest normal's encoding */
                q = rint(ldexp(a, mbits - emin));
                return (uint16_t)(sign | (uint32_t)q);
        }
        if (e > bias)
                return (uint16_t)(sign | inf);
        q = rint(ldexp(a, mbits - e)); /* in [2^mbits, 2^(mbits+1)] */
        /* q == 2^(mbits+1) carries into the exponent, as it should */
        bits = ((uint32_t)(e + bias) << mbits) + (uint32_t)q - (1u << mbits);
        if (bits >= inf)
                bits = inf;
        return (uint16_t)(sign | bits);
}

static double small_float_decode(uint16_t h, int ebits, int mbits)
{
        const int bias = (1 << (ebits - 1)) - 1;
        uint32_t e = ((uint32_t)h >> mbits) & ((1u << ebits) - 1), m = h & ((1u << mbits) - 1);
        double v;
        if (e == (1u << ebits) - 1)
                v = m ? NAN : INFINITY;
        else if (e == 0)
                v = ldexp((double)m, 1 - bias - mbits);
        else
                v = ldexp((double)(m | (1u << mbits)), (int)e - bias - mbits);
        return (h >> (ebits + mbits)) ? -v : v;
}

uint16_t sl_float16_from_double(double v)
{
        return small_float_encode(v, 5, 10);
}

double sl_float16_to_double(uint16_t h)
{
        return small_float_decode(h, 5, 10);
}

uint16_t sl_bfloat16_from_double(double v)
{
        return small_float_encode(v, 8, 7);
}

double sl_bfloat16_to_double(uint16_t h)
{
        return small_float_decode(h, 8, 7);
}

int64_t sl_dims_numel(int ndim, const int64_t *dims)
{
        int64_t n = 1;
        for (int i = 0; i < ndim; i++) {
                if (dims[i] < 0)
                        return -1;
                if (dims[i] && n > INT64_MAX / dims[i])
                        return -1;
                n *= dims[i];
        }
        return n;
}

int64_t sl_tensor_numel(const sl_tensor_t *t)
{
        return sl_dims_numel(t->ndim, t->dims);
}

void sl_strides(int ndim, const int64_t *dims, int64_t *strides)
{
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
                strides[i] = s;
                s *= dims[i];
        }
}

int sl_axis(int64_t axis, int rank, bool incl)
{
        int64_t hi = incl ? rank + 1 : rank;
        if (axis < 0)
                axis += rank;
        if (axis < 0 || axis >= hi)
                return -1;
        return (int)axis;
}

int sl_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out)
{
        int n = na > nb ? na : nb;
        for (int i = 0; i < n; i++) {
                int64_t da = i - (n - na) >= 0 ? a[i - (n - na)] : 1;
                int64_t db = i - (n - nb) >= 0 ? b[i - (n - nb)] : 1;
                if (da == db || db == 1)
                        out[i] = da;
                else if (da == 1)
                        out[i] = db;
                else
                        return -1;
        }
        *nout = n;
        return 0;
}

void sl_broadcast_strides(const sl_tensor_t *t, int ndim, const int64_t *dims, int64_t *strides)
{
        int64_t own[SL_MAX_DIMS];
        int off = ndim - t->ndim;
        sl_strides(t->ndim, t->dims, own);
        for (int i = 0; i < ndim; i++) {
                int j = i - off;
                strides[i] = (j >= 0 && t->dims[j] == dims[i] && dims[i] != 1) ? own[j] : 0;
        }
}

double sl_tensor_get_f64(const sl_tensor_t *t, int64_t i)
{
        switch (t->dtype) {
        case SL_DT_FLOAT:
                return ((const float *)t->data)[i];
        case SL_DT_DOUBLE:
                return ((const double *)t->data)[i];
        case SL_DT_UINT64:
                return (double)((const uint64_t *)t->data)[i];
        case SL_DT_FLOAT16:
                return sl_float16_to_double(((const uint16_t *)t->data)[i]);
        case SL_DT_BFLOAT16:
                return sl_bfloat16_to_double(((const uint16_t *)t->data)[i]);
        default:
                return (double)sl_tensor_get_i64(t, i);
        }
}

int64_t sl_tensor_get_i64(const sl_tensor_t *t, int64_t i)
{
        switch (t->dtype) {
        case SL_DT_FLOAT:
                return (int64_t)((const float *)t->data)[i];
        case SL_DT_DOUBLE:
                return (int64_t)((const double *)t->data)[i];
        case SL_DT_FLOAT16:
        case SL_DT_BFLOAT16:
                return (int64_t)sl_tensor_get_f64(t, i);
        case SL_DT_UINT8:
        case SL_DT_BOOL:
                return ((const uint8_t *)t->data)[i];
        case SL_DT_INT8:
                return ((const int8_t *)t->data)[i];
        case SL_DT_UINT16:
                return ((const uint16_t *)t->data)[i];
        case SL_DT_INT16:
                return ((const int16_t *)t->data)[i];
        case SL_DT_INT32:
                return ((const int32_t *)t->data)[i];
        case SL_DT_UINT32:
                return ((const uint32_t *)t->data)[i];
        case SL_DT_INT64:
                return ((const int64_t *)t->data)[i];
        case SL_DT_UINT64:
                return (int64_t)((const uint64_t *)t->data)[i];
        default:
                return 0;
        }
}

void sl_tensor_set_f64(sl_tensor_t *t, int64_t i, double v)
{
        switch (t->dtype) {
        case SL_DT_FLOAT:
                ((float *)t->data)[i] = (float)v;
                break;
        case SL_DT_DOUBLE:
                ((double *)t->data)[i] = v;
                break;
        case SL_DT_BOOL:
                ((uint8_t *)t->data)[i] = v != 0;
                break;
        case SL_DT_UINT64:
                ((uint64_t *)t->data)[i] = (uint64_t)v;
                break;
        case SL_DT_FLOAT16:
                ((uint16_t *)t->data)[i] = sl_float16_from_double(v);
                break;
        case SL_DT_BFLOAT16:
                ((uint16_t *)t->data)[i] = sl_bfloat16_from_double(v);
                break;
        default:
                sl_tensor_set_i64(t, i, (int64_t)v);
        }
}

void sl_tensor_set_i64(sl_tensor_t *t, int64_t i, int64_t v)
{
        switch (t->dtype) {
        case SL_DT_FLOAT:
                ((float *)t->data)[i] = (float)v;
                break;
        case SL_DT_DOUBLE:
                ((double *)t->data)[i] = (double)v;
                break;
        case SL_DT_FLOAT16:
        case SL_DT_BFLOAT16:
                sl_tensor_set_f64(t, i, (double)v);
                break;
        case SL_DT_UINT8:
                ((uint8_t *)t->data)[i] = (uint8_t)v;
                break;
        case SL_DT_BOOL:
                ((uint8_t *)t->data)[i] = v != 0;
                break;
        case SL_DT_INT8:
                ((int8_t *)t->data)[i] = (int8_t)v;
                break;
        case SL_DT_UINT16:
                ((uint16_t *)t->data)[i] = (uint16_t)v;
                break;
        case SL_DT_INT16:
                ((int16_t *)t->data)[i] = (int16_t)v;
                break;
        case SL_DT_INT32:
                ((int32_t *)t->data)[i] = (int32_t)v;
                break;
        case SL_DT_UINT32:
                ((uint32_t *)t->data)[i] = (uint32_t)v;
                break;
        case SL_DT_INT64:
                ((int64_t *)t->data)[i] = v;
                break;
        case SL_DT_UINT64:
                ((uint64_t *)t->data)[i] = (uint64_t)v;
                break;
        default:
                break;
        }
}

/* Typed TensorProto fields: which repeated field holds dtype's values. */
static sl_err_t copy_typed(const Onnx__TensorProto *tp, sl_tensor_t *t, int64_t n, char *errstr,
                           size_t errstr_size)
{
        size_t have;
        switch (t->dtype) {
        case SL_DT_FLOAT:
                have = tp->n_float_data;
                break;
        case SL_DT_DOUBLE:
                have = tp->n_double_data;
                break;
        case SL_DT_INT64:
                have = tp->n_int64_data;
                break;
        case SL_DT_UINT32:
        case SL_DT_UINT64:
                have = tp->n_uint64_data;
                break;
        default: /* int32, int16, int8, uint16, uint8, bool, float16, bfloat16 */
                have = tp->n_int32_data;
                break;
        }
        if ((int64_t)have != n) {
                sl_strfmt(errstr, errstr_size,
                          "tensor '%s': %zu values for %lld elements of type %s",
                          tp->name ? tp->name : "", have, (long long)n, sl_dtype_name(t->dtype));
                return SL_ERR_MODEL;
        }
        for (int64_t i = 0; i < n; i++) {
                switch (t->dtype) {
                case SL_DT_FLOAT:
                        ((float *)t->data)[i] = tp->float_data[i];
                        break;
                case SL_DT_DOUBLE:
                        ((double *)t->data)[i] = tp->double_data[i];
                        break;
                case SL_DT_INT64:
                        ((int64_t *)t->data)[i] = tp->int64_data[i];
                        break;
                case SL_DT_UINT32:
                        ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
                        break;
                case SL_DT_UINT64:
                        ((uint64_t *)t->data)[i] = tp->uint64_data[i];
                        break;
                case SL_DT_FLOAT16:
                case SL_DT_BFLOAT16:
                        /* onnx.proto: the 16 bits, zero-extended into an int32 */
                        ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i];
                        break;
                default:
                        sl_tensor_set_i64(t, i, tp->int32_data[i]);
                        break;
                }
        }
        return SL_OK;
}

/* string_data into one block: the n pointers, then the NUL-terminated bytes. */
static sl_err_t load_strings(const Onnx__TensorProto *tp, sl_tensor_t *t, int64_t n, char *errstr,
                             size_t errstr_size)
{
        const char *name = tp->name ? tp->name : "";
        size_t total = t->nbytes;
        char **ptrs, *bytes;

        if ((int64_t)tp->n_string_data != n || tp->has_raw_data) {
                sl_strfmt(errstr, errstr_size,
                          "tensor '%s': %zu strings in string_data for %lld elements%s", name,
                          tp->n_string_data, (long long)n,
                          tp->has_raw_data ? " (raw_data is not allowed for strings)" : "");
                return SL_ERR_MODEL;
        }
        for (int64_t i = 0; i < n; i++) {
                size_t len = tp->string_data[i].len;
                if (len >= SL_TENSOR_BYTES_MAX - total) {
                        sl_strfmt(errstr, errstr_size, "tensor '%s': strings too large", name);
                        return SL_ERR_MODEL;
                }
                total += len + 1;
        }
        if (!(t->data = malloc(total ? total : 1))) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': out of memory", name);
                return SL_ERR_NOMEM;
        }
        ptrs = t->data;
        bytes = (char *)t->data + t->nbytes;
        for (int64_t i = 0; i < n; i++) {
                size_t len = tp->string_data[i].len;
                if (len)
                        memcpy(bytes, tp->string_data[i].data, len);
                bytes[len] = '\0';
                ptrs[i] = bytes;
                bytes += len + 1;
        }
        return SL_OK;
}

size_t sl_tensor_block_size(const sl_tensor_t *t)
{
        const char *const *src = t->data;
        size_t total = t->nbytes;
        if (t->dtype != SL_DT_STRING)
                return total;
        for (int64_t i = 0, n = sl_tensor_numel(t); i < n; i++) {
                size_t len = strlen(src[i]);
                if (len >= SL_TENSOR_BYTES_MAX - total)
                        return SIZE_MAX;
                total += len + 1;
        }
        return total;
}

/* A string tensor gets load_strings()'s layout: the pointers, then the bytes. */
void sl_tensor_copy_block(sl_tensor_t *dst, const sl_tensor_t *src, void *block)
{
        const char *const *from = src->data;
        char **ptrs = block, *bytes = (char *)block + src->nbytes;

        *dst = *src;
        dst->data = block;
        if (src->dtype != SL_DT_STRING) {
                if (src->nbytes)
                        memcpy(block, src->data, src->nbytes);
                return;
        }
        for (int64_t i = 0, n = sl_tensor_numel(src); i < n; i++) {
                size_t len = strlen(from[i]) + 1;
                memcpy(bytes, from[i], len);
                ptrs[i] = bytes;
                bytes += len;
        }
}

sl_err_t sl_tensor_from_proto(const Onnx__TensorProto *tp, sl_tensor_t *t, char *errstr,
                              size_t errstr_size)
{
        const char *name = tp->name ? tp->name : "";
        sl_err_t err = SL_ERR_MODEL;
        int64_t n;
        size_t esz;

        memset(t, 0, sizeof(*t));
        if (tp->n_dims > SL_MAX_DIMS) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': rank %zu exceeds %d", name, tp->n_dims,
                          SL_MAX_DIMS);
                err = SL_ERR_UNSUPPORTED;
                goto fail;
        }
        t->dtype = (sl_dtype_t)tp->data_type;
        t->ndim = (int)tp->n_dims;
        for (size_t i = 0; i < tp->n_dims; i++)
                t->dims[i] = tp->dims[i];
        if ((n = sl_tensor_numel(t)) < 0) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': negative or overflowing dims", name);
                goto fail;
        }
        esz = sl_dtype_size(t->dtype);
        if (!esz) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': data type %s (%d) not supported", name,
                          sl_dtype_name(t->dtype), (int)tp->data_type);
                err = SL_ERR_UNSUPPORTED;
                goto fail;
        }
        if ((tp->has_data_location &&
             tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
            tp->n_external_data) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': external data is not supported", name);
                err = SL_ERR_UNSUPPORTED;
                goto fail;
        }
        if (tp->segment) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': segmented tensors not supported",
                          name);
                err = SL_ERR_UNSUPPORTED;
                goto fail;
        }
        if ((uint64_t)n > SL_TENSOR_BYTES_MAX / esz) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': %lld elements is too large", name,
                          (long long)n);
                goto fail;
        }
        t->nbytes = (size_t)n * esz;
        if (t->dtype == SL_DT_STRING) {
                if ((err = load_strings(tp, t, n, errstr, errstr_size)))
                        goto fail;
                return SL_OK;
        }
        if (tp->has_raw_data && tp->raw_data.len != t->nbytes) {
                sl_strfmt(errstr, errstr_size,
                          "tensor '%s': raw_data has %zu bytes, shape needs %zu", name,
                          tp->raw_data.len, t->nbytes);
                goto fail;
        }
        if (!(t->data = malloc(t->nbytes ? t->nbytes : 1))) {
                sl_strfmt(errstr, errstr_size, "tensor '%s': out of memory", name);
                err = SL_ERR_NOMEM;
                goto fail;
        }
        if (tp->has_raw_data) {
                /* raw_data is little-endian, as is every host we build for. */
                if (t->nbytes)
                        memcpy(t->data, tp->raw_data.data, t->nbytes);
        } else if ((err = copy_typed(tp, t, n, errstr, errstr_size))) {
                goto fail;
        }
        return SL_OK;
fail:
        free(t->data);
        memset(t, 0, sizeof(*t));
        return err;
}

sl_err_t sl_tensor_load(const char *path, sl_tensor_t *t, char *errstr, size_t errstr_size)
{
        char *buf = NULL;
        size_t len = 0;
        Onnx__TensorProto *tp = NULL;
        char why[256];
        sl_err_t err;

        memset(t, 0, sizeof(*t));
        if ((err = sl_file_read(path, &buf, &len, errstr, errstr_size)))
                goto done;
        if (!(tp = onnx__tensor_proto__unpack(NULL, len, (const uint8_t *)buf))) {
                sl_strfmt(errstr, errstr_size, "%s: not a valid TensorProto", path);
                err = SL_ERR_MODEL;
                goto done;
        }
        if ((err = sl_tensor_from_proto(tp, t, why, sizeof(why))))
                sl_strfmt(errstr, errstr_size, "%s: %s", path, why);
done:
        if (tp)
                onnx__tensor_proto__free_unpacked(tp, NULL);
        free(buf);
        return err;
}

void sl_tensor_free(sl_tensor_t *t)
{
        if (!t)
                return;
        free(t->data);
        memset(t, 0, sizeof(*t));
}
