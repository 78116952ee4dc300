/*
 * Decoders of the records sluice writes (InferenceResponse, DeadLetter,
 * WorkerMetrics), for tools and tests. They use avro-c's generic reader on
 * bytes that sl_codec_read_generic() has first walked with the
 * bounds-checked reader, so hostile input cannot make avro-c allocate
 * declared lengths; speed does not matter here.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
        do {                                                                                       \
                if ((expr) != 0)                                                                   \
                        goto fail;                                                                 \
        } while (0)

static int get(avro_value_t *rec, const char *name, avro_value_t *out)
{
        return avro_value_get_by_name(rec, name, out, NULL);
}

/* A string field (or the string branch of an optional one) as a malloc'd
 * copy; *out is NULL for a null branch. */
static int get_str(avro_value_t *rec, const char *name, char **out)
{
        avro_value_t f, b;
        const char *s = NULL;
        size_t n = 0;

        *out = NULL;
        if (get(rec, name, &f))
                return -1;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                if (avro_value_get_current_branch(&f, &b))
                        return -1;
                if (avro_value_get_type(&b) == AVRO_NULL)
                        return 0;
                f = b;
        }
        if (avro_value_get_string(&f, &s, &n))
                return -1;
        *out = strdup(s ? s : "");
        return *out ? 0 : -1;
}

static int get_long(avro_value_t *rec, const char *name, int64_t *out)
{
        avro_value_t f;

        return get(rec, name, &f) || avro_value_get_long(&f, out);
}

static int get_int(avro_value_t *rec, const char *name, int32_t *out)
{
        avro_value_t f;

        return get(rec, name, &f) || avro_value_get_int(&f, out);
}

static int get_tensor(avro_value_t *el, sl_named_tensor_t *t)
{
        avro_value_t f, d;
        char *datatype = NULL;
        const void *p = NULL;
        size_t n = 0, ndim = 0;
        int rc = -1;

        TRY(get_str(el, "name", &t->name));
        TRY(get_str(el, "datatype", &datatype));
        t->tensor.dtype = sl_codec_dtype_from_v2(datatype);
        TRY(get(el, "shape", &f));
        TRY(avro_value_get_size(&f, &ndim));
        if (ndim > SL_MAX_DIMS)
                goto fail;
        t->tensor.ndim = (int)ndim;
        for (size_t i = 0; i < ndim; i++) {
                TRY(avro_value_get_by_index(&f, i, &d, NULL));
                TRY(avro_value_get_long(&d, &t->tensor.dims[i]));
        }
        TRY(get(el, "data", &f));
        TRY(avro_value_get_bytes(&f, &p, &n));
        t->tensor.data = malloc(n ? n : 1);
        if (!t->tensor.data)
                goto fail;
        if (n)
                memcpy(t->tensor.data, p, n);
        t->tensor.nbytes = n;
        rc = 0;
fail:
        free(datatype);
        return rc;
}

static int get_result(avro_value_t *v, sl_response_decoded_t *r)
{
        avro_value_t res, b, f, el, x;
        size_t n;

        if (get(v, "result", &res) || avro_value_get_current_branch(&res, &b))
                return -1;
        if (strcmp(avro_schema_type_name(avro_value_get_schema(&b)), "InferenceResult")) {
                if (get_str(&b, "code", &r->error_code) ||
                    get_str(&b, "message", &r->error_message))
                        return -1;
                return 0;
        }
        if (get(&b, "outputs", &f) || avro_value_get_size(&f, &n))
                return -1;
        r->outputs = calloc(n ? n : 1, sizeof(*r->outputs));
        if (!r->outputs)
                return -1;
        for (size_t i = 0; i < n; i++, r->n_outputs++)
                if (avro_value_get_by_index(&f, i, &el, NULL) || get_tensor(&el, &r->outputs[i])) {
                        r->n_outputs++; /* partly filled: freed by destroy */
                        return -1;
                }
        if (get(&b, "classes", &f) || avro_value_get_size(&f, &n))
                return -1;
        r->class_index = calloc(n ? n : 1, sizeof(*r->class_index));
        r->class_label = calloc(n ? n : 1, sizeof(*r->class_label));
        r->class_probability = calloc(n ? n : 1, sizeof(*r->class_probability));
        if (!r->class_index || !r->class_label || !r->class_probability)
                return -1;
        for (size_t i = 0; i < n; i++, r->n_classes++)
                if (avro_value_get_by_index(&f, i, &el, NULL) ||
                    get_int(&el, "index", &r->class_index[i]) ||
                    get_str(&el, "label", &r->class_label[i]) || get(&el, "probability", &x) ||
                    avro_value_get_float(&x, &r->class_probability[i])) {
                        r->n_classes++;
                        return -1;
                }
        return 0;
}

sl_err_t sl_codec_decode_response(const sl_codec_t *codec, const void *buf, size_t len,
                                  sl_response_decoded_t **respp, char *errstr, size_t errstr_size)
{
        sl_response_decoded_t *r = NULL;
        avro_value_t v, f, b, t;
        sl_err_t err;

        *respp = NULL;
        err = sl_codec_read_generic(codec, SL_REC_RESPONSE, buf, len, &v, errstr, errstr_size);
        if (err)
                return err;
        err = SL_ERR_DECODE;
        r = calloc(1, sizeof(*r));
        if (!r)
                goto fail;
        TRY(get_str(&v, "id", &r->id));
        TRY(get_str(&v, "model_name", &r->model_name));
        TRY(get_str(&v, "model_version", &r->model_version));
        TRY(get_str(&v, "worker_id", &r->worker_id));
        TRY(get_result(&v, r));
        TRY(get(&v, "label", &f));
        TRY(avro_value_get_current_branch(&f, &b));
        if (avro_value_get_type(&b) == AVRO_INT64) {
                r->has_label = 1;
                TRY(avro_value_get_long(&b, &r->label));
        }
        TRY(get(&v, "timings", &t));
        TRY(get_long(&t, "request_timestamp_ms", &r->timings.request_timestamp_ms));
        TRY(get_long(&t, "queue_us", &r->timings.queue_us));
        TRY(get_long(&t, "inference_us", &r->timings.inference_us));
        TRY(get_int(&t, "batch_size", &r->timings.batch_size));
        *respp = r;
        r = NULL;
        err = SL_OK;
fail:
        if (err)
                sl_strfmt(errstr, errstr_size,
                          "InferenceResponse: record does not have the expected fields");
        sl_response_decoded_destroy(r);
        avro_value_decref(&v);
        return err;
}

void sl_response_decoded_destroy(sl_response_decoded_t *r)
{
        if (!r)
                return;
        free(r->id);
        free(r->model_name);
        free(r->model_version);
        free(r->worker_id);
        for (size_t i = 0; r->outputs && i < r->n_outputs; i++) {
                free(r->outputs[i].name);
                free(r->outputs[i].tensor.data);
        }
        free(r->outputs);
        for (size_t i = 0; r->class_label && i < r->n_classes; i++)
                free(r->class_label[i]);
        free(r->class_index);
        free(r->class_label);
        free(r->class_probability);
        free(r->error_code);
        free(r->error_message);
        free(r);
}

sl_err_t sl_codec_decode_dead_letter(const sl_codec_t *codec, const void *buf, size_t len,
                                     char **error_codep, char **error_messagep, char **request_idp,
                                     int64_t *offsetp, char *errstr, size_t errstr_size)
{
        char *code = NULL, *msg = NULL, *rid = NULL;
        int64_t offset = 0;
        avro_value_t v;
        sl_err_t err;

        err = sl_codec_read_generic(codec, SL_REC_DEAD_LETTER, buf, len, &v, errstr, errstr_size);
        if (err)
                return err;
        err = SL_ERR_DECODE;
        TRY(get_str(&v, "error_code", &code));
        TRY(get_str(&v, "error_message", &msg));
        TRY(get_str(&v, "request_id", &rid));
        TRY(get_long(&v, "offset", &offset));
        err = SL_OK;
fail:
        avro_value_decref(&v);
        if (err) {
                sl_strfmt(errstr, errstr_size,
                          "DeadLetter: record does not have the expected fields");
                free(code);
                free(msg);
                free(rid);
                return err;
        }
        if (error_codep)
                *error_codep = code;
        else
                free(code);
        if (error_messagep)
                *error_messagep = msg;
        else
                free(msg);
        if (request_idp)
                *request_idp = rid;
        else
                free(rid);
        if (offsetp)
                *offsetp = offset;
        return SL_OK;
}

sl_err_t sl_codec_metrics_to_json(const sl_codec_t *codec, const void *buf, size_t len,
                                  char **jsonp, char *errstr, size_t errstr_size)
{
        avro_value_t v;
        char *json = NULL;
        sl_err_t err;

        *jsonp = NULL;
        err = sl_codec_read_generic(codec, SL_REC_METRICS, buf, len, &v, errstr, errstr_size);
        if (err)
                return err;
        if (avro_value_to_json(&v, 1, &json)) {
                sl_strfmt(errstr, errstr_size, "WorkerMetrics: avro-c: %s", avro_strerror());
                err = SL_ERR_INTERNAL;
        } else {
                *jsonp = json; /* malloc'd by avro-c's jansson: caller frees */
        }
        avro_value_decref(&v);
        return err;
}

sl_err_t sl_codec_decode_label(const sl_codec_t *codec, const void *buf, size_t len, char **idp,
                               int *has_labelp, int64_t *labelp, int *has_valuep, double *valuep,
                               char *errstr, size_t errstr_size)
{
        avro_value_t v, f, b;
        const char *s = NULL;
        size_t slen = 0;
        int disc = 0;
        sl_err_t err;

        *idp = NULL;
        *has_labelp = *has_valuep = 0;
        err = sl_codec_read_generic(codec, SL_REC_LABEL, buf, len, &v, errstr, errstr_size);
        if (err)
                return err;
        if (avro_value_get_by_name(&v, "id", &f, NULL) || avro_value_get_string(&f, &s, &slen) ||
            !(*idp = strndup(s, slen ? slen - 1 : 0))) {
                sl_strfmt(errstr, errstr_size, "InferenceLabel: no id");
                err = SL_ERR_DECODE;
                goto done;
        }
        if (!avro_value_get_by_name(&v, "label", &f, NULL) &&
            !avro_value_get_discriminant(&f, &disc) && disc == 1 &&
            !avro_value_get_current_branch(&f, &b) && !avro_value_get_long(&b, labelp))
                *has_labelp = 1;
        if (!avro_value_get_by_name(&v, "value", &f, NULL) &&
            !avro_value_get_discriminant(&f, &disc) && disc == 1 &&
            !avro_value_get_current_branch(&f, &b) && !avro_value_get_double(&b, valuep))
                *has_valuep = 1;
done:
        avro_value_decref(&v);
        return err;
}
