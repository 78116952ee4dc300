/*
 * InferenceRequest decoder.
 *
 * Why a direct decoder rather than avro-c's generic reader: the request is
 * the one record that comes from outside, on the hot path. avro-c's reader
 * mallocs whatever length a string/bytes value declares and does not bound
 * block counts, so it cannot be handed hostile bytes; it also builds a
 * value tree (one allocation per array element) that would then be copied
 * into tensors. This decoder walks the Avro binary once, guided by the
 * field order and union branches of the parsed schema (sl_request_layout_t,
 * resolved in sl_codec_new(), so reordered fields, added fields — skipped
 * with bounds checks — and reordered union branches still decode), checks
 * every length and block count against the remaining bytes before
 * allocating (avro_read.c), writes typed arrays straight into the tensor's
 * dense buffer, and names the field at fault in every error.
 *
 * Schema evolution: a request written with another writer schema is first
 * rewritten into the reader schema's encoding by its resolution plan
 * (writers.c, resolve.c, transcode.c; Avro spec "Schema Resolution"), with
 * the same bounds checks; this decoder then reads reader-schema bytes only.
 * Writers equal to the reader schema skip that step.
 *
 * Errors: bytes that are not a valid record are SL_ERR_DECODE and stop the
 * walk. A valid record with an invalid tensor is SL_ERR_BAD_REQUEST; the
 * first such problem is remembered and the walk continues, so a request
 * that is also undecodable later is reported as DECODE.
 */
#include "codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dec_s {
        sl_rd_t rd;
        const sl_request_layout_t *l;
        int nomem;
        int bad;
        char badmsg[256];
} dec_t;

/* A tensor while it is read; checked and converted once complete. */
typedef struct tensor_acc_s {
        char *name;
        char *datatype;
        int64_t rank; /* may exceed SL_MAX_DIMS: then only counted */
        int64_t dims[SL_MAX_DIMS];
        int has_data;
        data_branch_t branch;
        const uint8_t *raw; /* raw bytes: a view into the input */
        size_t raw_len;
        void *vals; /* typed arrays: int_contents as int32, bool as uint8 */
        size_t n_vals, cap_vals;
} tensor_acc_t;

static void acc_cleanup(tensor_acc_t *t)
{
        free(t->name);
        free(t->datatype);
        free(t->vals);
        memset(t, 0, sizeof(*t));
}

static int oom(dec_t *d)
{
        d->nomem = 1;
        return sl_rd_fail(&d->rd, "out of memory");
}

/* Remember the first semantic error as "<path><sub>: message". */
static void bad(dec_t *d, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(dec_t *d, const char *sub, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (d->bad)
                return;
        d->bad = 1;
        n = snprintf(d->badmsg, sizeof(d->badmsg), "%s%s: ", d->rd.path, sub);
        if (n < 0 || (size_t)n >= sizeof(d->badmsg))
                return;
        va_start(ap, fmt);
        vsnprintf(d->badmsg + n, sizeof(d->badmsg) - (size_t)n, fmt, ap);
        va_end(ap);
}

/* Make room for \p add more elements of \p esize in a doubling array. */
static int grow(void **arr, size_t *cap, size_t n, size_t add, size_t esize)
{
        size_t want = n + add, ncap;
        void *p;

        if (want <= *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 4;
        if (ncap < want)
                ncap = want;
        if (ncap > SIZE_MAX / esize)
                return -1;
        p = realloc(*arr, ncap * esize);
        if (!p)
                return -1;
        *arr = p;
        *cap = ncap;
        return 0;
}

static void fmt_shape(const tensor_acc_t *t, char *buf, size_t size)
{
        size_t off = 0;

        buf[0] = '\0';
        for (int64_t i = 0; i < t->rank && i < SL_MAX_DIMS && off < size; i++) {
                int n =
                    snprintf(buf + off, size - off, "%s%lld", i ? "," : "", (long long)t->dims[i]);
                if (n < 0)
                        break;
                off += (size_t)n;
        }
}

static int read_shape(dec_t *d, tensor_acc_t *t)
{
        int64_t count, v;

        t->rank = 0;
        for (;;) {
                if (sl_rd_block(&d->rd, 1, &count))
                        return -1;
                if (count == 0)
                        return 0;
                for (int64_t i = 0; i < count; i++, t->rank++) {
                        if (sl_rd_long(&d->rd, &v))
                                return -1;
                        if (t->rank < SL_MAX_DIMS)
                                t->dims[t->rank] = v;
                }
        }
}

/* One typed-array branch: a record whose single field is an array. */
static int read_typed(dec_t *d, tensor_acc_t *t, data_branch_t kind, avro_schema_t branch)
{
        static const size_t wire_min[] = {
            [DB_FP32] = 4, [DB_FP64] = 8, [DB_INT64] = 1, [DB_INT] = 1, [DB_BOOL] = 1};
        static const size_t native[] = {
            [DB_FP32] = 4, [DB_FP64] = 8, [DB_INT64] = 8, [DB_INT] = 4, [DB_BOOL] = 1};
        size_t es = native[kind], old;
        int64_t count;
        int rc = 0;

        old = sl_rd_push(&d->rd, ".%s", avro_schema_record_field_name(branch, 0));
        for (;;) {
                if ((rc = sl_rd_block(&d->rd, wire_min[kind], &count)) || count == 0)
                        break;
                if (grow(&t->vals, &t->cap_vals, t->n_vals, (size_t)count, es)) {
                        rc = oom(d);
                        break;
                }
                for (int64_t i = 0; i < count && !rc; i++, t->n_vals++) {
                        uint8_t *dst = (uint8_t *)t->vals + t->n_vals * es;

                        switch (kind) {
                        case DB_FP32:
                                rc = sl_rd_float(&d->rd, (float *)(void *)dst);
                                break;
                        case DB_FP64:
                                rc = sl_rd_double(&d->rd, (double *)(void *)dst);
                                break;
                        case DB_INT64:
                                rc = sl_rd_long(&d->rd, (int64_t *)(void *)dst);
                                break;
                        case DB_INT:
                                rc = sl_rd_int(&d->rd, (int32_t *)(void *)dst);
                                break;
                        default:
                                rc = sl_rd_bool(&d->rd, dst);
                                break;
                        }
                }
                if (rc)
                        break;
        }
        if (!rc)
                sl_rd_pop(&d->rd, old);
        return rc;
}

static int read_data(dec_t *d, tensor_acc_t *t)
{
        const sl_request_layout_t *l = d->l;
        int64_t idx;

        if (sl_rd_union(&d->rd, l->n_data_branches, &idx))
                return -1;
        t->has_data = 1;
        t->branch = l->data_branch[idx];
        switch (t->branch) {
        case DB_RAW:
                return sl_rd_bytes(&d->rd, &t->raw, &t->raw_len);
        case DB_UNKNOWN:
                bad(d, "", "union branch %lld is not a data encoding this worker knows",
                    (long long)idx);
                return sl_rd_skip(&d->rd, l->data_branch_schema[idx]);
        default:
                return read_typed(d, t, t->branch, l->data_branch_schema[idx]);
        }
}

static int branch_fits(data_branch_t b, sl_dtype_t dt)
{
        switch (b) {
        case DB_RAW:
                return 1;
        case DB_FP32:
                return dt == SL_DT_FLOAT;
        case DB_FP64:
                return dt == SL_DT_DOUBLE;
        case DB_INT64:
                return dt == SL_DT_INT64;
        case DB_BOOL:
                return dt == SL_DT_BOOL;
        case DB_INT:
                return dt == SL_DT_INT8 || dt == SL_DT_INT16 || dt == SL_DT_INT32 ||
                       dt == SL_DT_UINT8 || dt == SL_DT_UINT16;
        default:
                return 0;
        }
}

static const char *branch_field(data_branch_t b)
{
        static const char *names[] = {[DB_FP32] = "fp32_contents",
                                      [DB_FP64] = "fp64_contents",
                                      [DB_INT64] = "int64_contents",
                                      [DB_INT] = "int_contents",
                                      [DB_BOOL] = "bool_contents"};
        return b >= DB_FP32 && b <= DB_BOOL ? names[b] : "bytes";
}

/* Narrow int_contents (int32) to INT8/16, UINT8/16 in place, range-checked.
 * Writing element i never overwrites a source element j > i (width <= 4). */
static int narrow_ints(dec_t *d, tensor_acc_t *t, sl_dtype_t dt)
{
        const int32_t *src = t->vals;
        int64_t lo = INT32_MIN, hi = INT32_MAX;

        switch (dt) {
        case SL_DT_INT8:
                lo = INT8_MIN, hi = INT8_MAX;
                break;
        case SL_DT_UINT8:
                lo = 0, hi = UINT8_MAX;
                break;
        case SL_DT_INT16:
                lo = INT16_MIN, hi = INT16_MAX;
                break;
        case SL_DT_UINT16:
                lo = 0, hi = UINT16_MAX;
                break;
        default:
                return 0;
        }
        for (size_t i = 0; i < t->n_vals; i++) {
                int32_t v = src[i];

                if (v < lo || v > hi) {
                        bad(d, ".data", "int_contents[%zu] = %d out of range for %s", i, (int)v,
                            t->datatype);
                        return -1;
                }
                switch (dt) {
                case SL_DT_INT8:
                        ((int8_t *)t->vals)[i] = (int8_t)v;
                        break;
                case SL_DT_UINT8:
                        ((uint8_t *)t->vals)[i] = (uint8_t)v;
                        break;
                case SL_DT_INT16:
                        ((int16_t *)t->vals)[i] = (int16_t)v;
                        break;
                default:
                        ((uint16_t *)t->vals)[i] = (uint16_t)v;
                        break;
                }
        }
        return 0;
}

/* Check a complete tensor and move it into \p out. @returns 0 on success,
 * 1 when it is semantically invalid (recorded with bad()), -1 out of memory. */
static int finish_tensor(dec_t *d, tensor_acc_t *t, sl_named_tensor_t *out)
{
        sl_dtype_t dt = sl_codec_dtype_from_v2(t->datatype);
        char shape[160];
        int64_t numel;
        size_t nbytes;
        void *data;

        if (dt == SL_DT_UNDEFINED) {
                bad(d, ".datatype", "unknown datatype \"%s\"", t->datatype ? t->datatype : "");
                return 1;
        }
        if (t->rank > SL_MAX_DIMS) {
                bad(d, ".shape", "rank %lld exceeds %d", (long long)t->rank, SL_MAX_DIMS);
                return 1;
        }
        fmt_shape(t, shape, sizeof(shape));
        if (sl_codec_shape_bytes(t->dims, (int)t->rank, dt, &numel, &nbytes)) {
                bad(d, ".shape", "[%s] has a negative dimension or overflows", shape);
                return 1;
        }
        if (!t->has_data) {
                bad(d, ".data", "missing");
                return 1;
        }
        if (!branch_fits(t->branch, dt)) {
                bad(d, ".data", "typed array %s does not match datatype %s",
                    branch_field(t->branch), t->datatype);
                return 1;
        }
        if (t->branch == DB_RAW) {
                if (t->raw_len != nbytes) {
                        bad(d, ".data", "%zu bytes, but shape [%s] of %s needs %zu", t->raw_len,
                            shape, t->datatype, nbytes);
                        return 1;
                }
                /* ONNX bool is one byte, 0 or 1; kernels may read it as C bool,
                 * for which any other byte is undefined behaviour. */
                for (size_t i = 0; dt == SL_DT_BOOL && i < nbytes; i++) {
                        if (t->raw[i] > 1) {
                                bad(d, ".data", "BOOL element %zu is byte 0x%02x, not 0 or 1", i,
                                    t->raw[i]);
                                return 1;
                        }
                }
                data = malloc(nbytes ? nbytes : 1);
                if (!data)
                        return -1;
                memcpy(data, t->raw, nbytes);
        } else {
                if (t->n_vals != (uint64_t)numel) {
                        bad(d, ".data", "%s has %zu values, but shape [%s] needs %lld",
                            branch_field(t->branch), t->n_vals, shape, (long long)numel);
                        return 1;
                }
                if (t->branch == DB_INT && narrow_ints(d, t, dt))
                        return 1;
                data = t->vals ? t->vals : malloc(1);
                if (!data)
                        return -1;
                t->vals = NULL;
        }
        out->name = t->name;
        t->name = NULL;
        out->tensor.dtype = dt;
        out->tensor.ndim = (int)t->rank;
        memcpy(out->tensor.dims, t->dims, sizeof(out->tensor.dims));
        out->tensor.data = data;
        out->tensor.nbytes = nbytes;
        return 0;
}

static int read_tensor(dec_t *d, tensor_acc_t *t)
{
        const sl_request_layout_t *l = d->l;
        int rc = 0;

        for (size_t f = 0; f < l->n_tensor_fields && !rc; f++) {
                size_t old = sl_rd_push(&d->rd, ".%s",
                                        avro_schema_record_field_name(l->tensor_schema, (int)f));

                switch (l->tensor_field[f]) {
                case TF_NAME:
                        rc = sl_rd_string(&d->rd, &t->name);
                        break;
                case TF_DATATYPE:
                        rc = sl_rd_string(&d->rd, &t->datatype);
                        break;
                case TF_SHAPE:
                        rc = read_shape(d, t);
                        break;
                case TF_DATA:
                        rc = read_data(d, t);
                        break;
                default:
                        rc = sl_rd_skip(&d->rd, l->tensor_field_schema[f]);
                        break;
                }
                if (!rc)
                        sl_rd_pop(&d->rd, old);
        }
        return rc;
}

static int read_inputs(dec_t *d, sl_request_t *req)
{
        size_t cap = 0, idx = 0;
        tensor_acc_t t;
        int64_t count;
        int rc = 0;

        memset(&t, 0, sizeof(t));
        for (;;) {
                if ((rc = sl_rd_block(&d->rd, d->l->tensor_min_size, &count)) || count == 0)
                        break;
                for (int64_t i = 0; i < count && !rc; i++, idx++) {
                        size_t old = sl_rd_push(&d->rd, "[%zu]", idx);

                        rc = read_tensor(d, &t);
                        if (!rc) {
                                if (grow((void **)&req->inputs, &cap, req->n_inputs, 1,
                                         sizeof(*req->inputs)))
                                        rc = oom(d);
                                else
                                        rc = finish_tensor(d, &t, &req->inputs[req->n_inputs]);
                                if (rc == 0)
                                        req->n_inputs++;
                                else if (rc == 1) /* invalid tensor: keep reading */
                                        rc = 0;
                                else if (!d->nomem)
                                        rc = oom(d);
                        }
                        acc_cleanup(&t);
                        if (!rc)
                                sl_rd_pop(&d->rd, old);
                }
                if (rc)
                        break;
        }
        if (!rc && idx == 0)
                bad(d, "", "no input tensors");
        return rc;
}

static int read_outputs(dec_t *d, sl_request_t *req)
{
        size_t cap = 0;
        int64_t count;

        for (;;) {
                if (sl_rd_block(&d->rd, 1, &count))
                        return -1;
                if (count == 0)
                        return 0;
                if (grow((void **)&req->outputs, &cap, req->n_outputs, (size_t)count,
                         sizeof(char *)))
                        return oom(d);
                for (int64_t i = 0; i < count; i++) {
                        size_t old = sl_rd_push(&d->rd, "[%zu]", req->n_outputs);

                        if (sl_rd_string(&d->rd, &req->outputs[req->n_outputs]))
                                return -1;
                        req->n_outputs++;
                        sl_rd_pop(&d->rd, old);
                }
        }
}

static int read_parameters(dec_t *d, sl_request_t *req)
{
        size_t kcap = 0, vcap = 0;
        int64_t count;

        for (;;) {
                if (sl_rd_block(&d->rd, 2, &count))
                        return -1;
                if (count == 0)
                        return 0;
                if (grow((void **)&req->param_keys, &kcap, req->n_parameters, (size_t)count,
                         sizeof(char *)) ||
                    grow((void **)&req->param_values, &vcap, req->n_parameters, (size_t)count,
                         sizeof(char *)))
                        return oom(d);
                for (int64_t i = 0; i < count; i++) {
                        size_t n = req->n_parameters, old;
                        char *key = NULL;

                        if (sl_rd_string(&d->rd, &key))
                                return -1;
                        old = sl_rd_push(&d->rd, "[\"%.40s\"]", key);
                        if (sl_rd_string(&d->rd, &req->param_values[n])) {
                                free(key);
                                return -1;
                        }
                        req->param_keys[n] = key;
                        req->n_parameters++;
                        sl_rd_pop(&d->rd, old);
                }
        }
}

typedef struct param_ref_s {
        const char *key;
        size_t pos;
} param_ref_t;

static int param_cmp(const void *a, const void *b)
{
        const param_ref_t *x = a, *y = b;
        int c = strcmp(x->key, y->key);

        if (c)
                return c;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Avro leaves duplicate map keys undefined; like the Java and Python
 * readers (and avro-c's own map), the last value wins. Sorting keeps this
 * O(n log n) whatever the input. */
static int dedupe_parameters(dec_t *d, sl_request_t *req)
{
        size_t n = req->n_parameters, j = 0;
        param_ref_t *refs;
        uint8_t *drop;

        if (n < 2)
                return 0;
        refs = malloc(n * sizeof(*refs));
        drop = calloc(n, 1);
        if (!refs || !drop) {
                free(refs);
                free(drop);
                return oom(d);
        }
        for (size_t i = 0; i < n; i++)
                refs[i] = (param_ref_t){req->param_keys[i], i};
        qsort(refs, n, sizeof(*refs), param_cmp);
        for (size_t i = 0; i + 1 < n; i++)
                if (!strcmp(refs[i].key, refs[i + 1].key))
                        drop[refs[i].pos] = 1;
        for (size_t i = 0; i < n; i++) {
                if (drop[i]) {
                        free(req->param_keys[i]);
                        free(req->param_values[i]);
                        continue;
                }
                req->param_keys[j] = req->param_keys[i];
                req->param_values[j++] = req->param_values[i];
        }
        req->n_parameters = j;
        free(refs);
        free(drop);
        return 0;
}

/* An optional field ["null", T]: *present says whether T follows. */
static int read_optional(dec_t *d, size_t f, int *present)
{
        int64_t idx;

        if (sl_rd_union(&d->rd, 2, &idx))
                return -1;
        *present = idx != d->l->null_branch[f];
        return 0;
}

static int read_request(dec_t *d, sl_request_t *req)
{
        const sl_request_layout_t *l = d->l;
        int rc = 0, present;

        for (size_t f = 0; f < l->n_fields && !rc; f++) {
                size_t old = sl_rd_push(&d->rd, "%s",
                                        avro_schema_record_field_name(l->record_schema, (int)f));

                switch (l->field[f]) {
                case RQ_ID:
                        rc = sl_rd_string(&d->rd, &req->id);
                        break;
                case RQ_MODEL_NAME:
                        rc = sl_rd_string(&d->rd, &req->model_name);
                        break;
                case RQ_MODEL_VERSION:
                        if (!(rc = read_optional(d, f, &present)) && present)
                                rc = sl_rd_string(&d->rd, &req->model_version);
                        break;
                case RQ_INPUTS:
                        rc = read_inputs(d, req);
                        break;
                case RQ_OUTPUTS:
                        if (!(rc = read_optional(d, f, &present)) && present)
                                rc = read_outputs(d, req);
                        break;
                case RQ_PARAMETERS:
                        if (!(rc = read_parameters(d, req)))
                                rc = dedupe_parameters(d, req);
                        break;
                case RQ_LABEL:
                        if (!(rc = read_optional(d, f, &present)) && present) {
                                rc = sl_rd_long(&d->rd, &req->label);
                                req->has_label = !rc;
                        }
                        break;
                default:
                        rc = sl_rd_skip(&d->rd, l->field_schema[f]);
                        break;
                }
                if (!rc)
                        sl_rd_pop(&d->rd, old);
        }
        return rc;
}

sl_err_t sl_codec_decode_request(const sl_codec_t *codec, const void *buf, size_t len,
                                 sl_request_t **reqp, char **idp, char *errstr, size_t errstr_size)
{
        sl_request_t *req = NULL;
        const uint8_t *payload;
        uint8_t *resolved = NULL;
        size_t plen;
        sl_err_t err;
        dec_t d;

        *reqp = NULL;
        if (idp)
                *idp = NULL;
        err = sl_codec_request_payload(codec, buf, len, &payload, &plen, &resolved, errstr,
                                       errstr_size);
        if (err)
                goto done;
        req = calloc(1, sizeof(*req));
        if (!req) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        memset(&d, 0, sizeof(d));
        d.l = &codec->rq;
        sl_rd_init(&d.rd, payload, plen, errstr, errstr_size);
        if (read_request(&d, req)) {
                err = d.nomem ? SL_ERR_NOMEM : SL_ERR_DECODE;
        } else if (sl_rd_left(&d.rd)) {
                sl_strfmt(errstr, errstr_size, "%zu trailing bytes after the InferenceRequest",
                          sl_rd_left(&d.rd));
                err = SL_ERR_DECODE;
        } else if (d.bad) {
                sl_strfmt(errstr, errstr_size, "%s", d.badmsg);
                err = SL_ERR_BAD_REQUEST;
        }
done:
        free(resolved);
        if (err && req) {
                if (idp) {
                        *idp = req->id; /* ownership moves to the caller */
                        req->id = NULL;
                }
                sl_request_destroy(req);
                req = NULL;
        }
        *reqp = req;
        return err;
}

void sl_request_destroy(sl_request_t *req)
{
        if (!req)
                return;
        free(req->id);
        free(req->model_name);
        free(req->model_version);
        for (size_t i = 0; i < req->n_inputs; i++) {
                free(req->inputs[i].name);
                free(req->inputs[i].tensor.data);
        }
        free(req->inputs);
        for (size_t i = 0; i < req->n_outputs; i++)
                free(req->outputs[i]);
        free(req->outputs);
        for (size_t i = 0; i < req->n_parameters; i++) {
                free(req->param_keys[i]);
                free(req->param_values[i]);
        }
        free(req->param_keys);
        free(req->param_values);
        free(req);
}
