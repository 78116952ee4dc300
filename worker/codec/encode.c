/*
 * Encoders of the four records with avro-c's generic values
 * (avro_generic_value_new / avro_value_t), sized with avro_value_sizeof and
 * written with avro_writer_memory into one buffer that starts with the
 * framing header.
 *
 * Tensor data is handed to avro-c as wrapped buffers without a free
 * function (avro_wrapped_buffer_new): it is written straight from the
 * caller's memory, not copied into the value first.
 *
 * Each call builds and frees its own value tree, so encoders may run on any
 * thread with a shared codec.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

/* avro-c calls return 0 or an errno; any failure ends the encode. */
#define TRY(expr)                                                                                  \
        do {                                                                                       \
                if ((expr) != 0)                                                                   \
                        goto fail;                                                                 \
        } while (0)

static int field(avro_value_t *rec, const char *name, avro_value_t *out)
{
        return avro_value_get_by_name(rec, name, out, NULL);
}

static int set_str(avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f;

        if (field(rec, name, &f))
                return -1;
        return avro_value_set_string(&f, s ? s : "");
}

static int set_long(avro_value_t *rec, const char *name, int64_t v)
{
        avro_value_t f;

        if (field(rec, name, &f))
                return -1;
        return avro_value_set_long(&f, v);
}

static int set_int(avro_value_t *rec, const char *name, int32_t v)
{
        avro_value_t f;

        if (field(rec, name, &f))
                return -1;
        return avro_value_set_int(&f, v);
}

/* Bytes written from the caller's memory without a copy. */
static int set_bytes_ref(avro_value_t *v, const void *p, size_t n)
{
        avro_wrapped_buffer_t wb;

        if (!n)
                return avro_value_set_bytes(v, (void *)"", 0);
        if (avro_wrapped_buffer_new(&wb, p, n))
                return -1;
        return avro_value_give_bytes(v, &wb);
}

/* Select the union branch whose type name is \p name ("null", "string",
 * "InferenceResult"), whatever its position in the schema. */
static int branch(avro_value_t *u, const char *name, avro_value_t *out)
{
        avro_schema_t s = avro_value_get_schema(u);

        if (!s || avro_typeof(s) != AVRO_UNION)
                return -1;
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
                avro_schema_t b = avro_schema_union_branch(s, (int)i);

                if (avro_typeof(b) == AVRO_LINK)
                        b = avro_schema_link_target(b);
                if (!strcmp(avro_schema_type_name(b), name))
                        return avro_value_set_branch(u, (int)i, out);
        }
        return -1;
}

static int set_opt_null(avro_value_t *rec, const char *name)
{
        avro_value_t f, b;

        if (field(rec, name, &f) || branch(&f, "null", &b))
                return -1;
        return avro_value_set_null(&b);
}

static int set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f, b;

        if (!s)
                return set_opt_null(rec, name);
        if (field(rec, name, &f) || branch(&f, "string", &b))
                return -1;
        return avro_value_set_string(&b, s);
}

static int set_opt_long(avro_value_t *rec, const char *name, int has, int64_t v)
{
        avro_value_t f, b;

        if (!has)
                return set_opt_null(rec, name);
        if (field(rec, name, &f) || branch(&f, "long", &b))
                return -1;
        return avro_value_set_long(&b, v);
}

static int set_opt_bytes(avro_value_t *rec, const char *name, const void *p, size_t n)
{
        avro_value_t f, b;

        if (!p)
                return set_opt_null(rec, name);
        if (field(rec, name, &f) || branch(&f, "bytes", &b))
                return -1;
        return set_bytes_ref(&b, p, n);
}

static int set_opt_double(avro_value_t *rec, const char *name, int has, double v)
{
        avro_value_t f, b;

        if (!has)
                return set_opt_null(rec, name);
        if (field(rec, name, &f) || branch(&f, "double", &b))
                return -1;
        return avro_value_set_double(&b, v);
}

/* Serialise \p v with the framing header of \p rec into a malloc'd buffer. */
static sl_err_t write_value(const sl_codec_t *codec, sl_rec_t rec, avro_value_t *v, void **bufp,
                            size_t *lenp)
{
        size_t hdr = sl_codec_header_size(codec), size = 0;
        avro_writer_t w = NULL;
        uint8_t *buf = NULL;
        sl_err_t err = SL_ERR_INTERNAL;

        if (avro_value_sizeof(v, &size))
                goto done;
        buf = malloc(hdr + size + 1);
        if (!buf) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        sl_codec_write_header(codec, rec, buf);
        w = avro_writer_memory((const char *)buf + hdr, (int64_t)size);
        if (!w) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        if (avro_value_write(w, v))
                goto done;
        *bufp = buf;
        *lenp = hdr + size;
        buf = NULL;
        err = SL_OK;
done:
        if (w)
                avro_writer_free(w);
        free(buf);
        return err;
}

static int check_tensor(const sl_tensor_t *t)
{
        int64_t numel;
        size_t nbytes;

        if (t->ndim < 0 || t->ndim > SL_MAX_DIMS || !sl_codec_dtype_to_v2(t->dtype))
                return -1;
        if (sl_codec_shape_bytes(t->dims, t->ndim, t->dtype, &numel, &nbytes))
                return -1;
        return nbytes == t->nbytes && (nbytes == 0 || t->data) ? 0 : -1;
}

static int set_shape(avro_value_t *rec, const sl_tensor_t *t)
{
        avro_value_t f, el;

        if (field(rec, "shape", &f))
                return -1;
        for (int i = 0; i < t->ndim; i++)
                if (avro_value_append(&f, &el, NULL) || avro_value_set_long(&el, t->dims[i]))
                        return -1;
        return 0;
}

/* The typed-array branch of a tensor's data (friendly path); types without
 * a typed array in the schema (FP16, UINT32, UINT64) go as raw bytes. */
static int set_typed(avro_value_t *data, const sl_tensor_t *t)
{
        const char *rec, *arr;
        size_t es = sl_codec_dtype_size(t->dtype), n = es ? t->nbytes / es : 0;
        const uint8_t *p = t->data;
        avro_value_t b, a, el;

        switch (t->dtype) {
        case SL_DT_FLOAT:
                rec = "Fp32Contents", arr = "fp32_contents";
                break;
        case SL_DT_DOUBLE:
                rec = "Fp64Contents", arr = "fp64_contents";
                break;
        case SL_DT_INT64:
                rec = "Int64Contents", arr = "int64_contents";
                break;
        case SL_DT_BOOL:
                rec = "BoolContents", arr = "bool_contents";
                break;
        case SL_DT_INT8:
        case SL_DT_UINT8:
        case SL_DT_INT16:
        case SL_DT_UINT16:
        case SL_DT_INT32:
                rec = "IntContents", arr = "int_contents";
                break;
        default:
                if (branch(data, "bytes", &b))
                        return -1;
                return set_bytes_ref(&b, t->data, t->nbytes);
        }
        if (branch(data, rec, &b) || field(&b, arr, &a))
                return -1;
        for (size_t i = 0; i < n; i++, p += es) {
                union {
                        float f;
                        double d;
                        int64_t i64;
                        int32_t i32;
                        int16_t i16;
                        uint16_t u16;
                        int8_t i8;
                        uint8_t u8;
                } u;
                int rc;

                memcpy(&u, p, es);
                if (avro_value_append(&a, &el, NULL))
                        return -1;
                switch (t->dtype) {
                case SL_DT_FLOAT:
                        rc = avro_value_set_float(&el, u.f);
                        break;
                case SL_DT_DOUBLE:
                        rc = avro_value_set_double(&el, u.d);
                        break;
                case SL_DT_INT64:
                        rc = avro_value_set_long(&el, u.i64);
                        break;
                case SL_DT_BOOL:
                        rc = avro_value_set_boolean(&el, u.u8 != 0);
                        break;
                case SL_DT_INT8:
                        rc = avro_value_set_int(&el, u.i8);
                        break;
                case SL_DT_UINT8:
                        rc = avro_value_set_int(&el, u.u8);
                        break;
                case SL_DT_INT16:
                        rc = avro_value_set_int(&el, u.i16);
                        break;
                case SL_DT_UINT16:
                        rc = avro_value_set_int(&el, u.u16);
                        break;
                default:
                        rc = avro_value_set_int(&el, u.i32);
                        break;
                }
                if (rc)
                        return -1;
        }
        return 0;
}

sl_err_t sl_codec_encode_request(const sl_codec_t *codec, const sl_request_t *req, int typed_arrays,
                                 void **bufp, size_t *lenp)
{
        avro_value_t v = {NULL, NULL}, f, el, b;
        sl_err_t err = SL_ERR_INTERNAL;

        *bufp = NULL;
        *lenp = 0;
        for (size_t i = 0; i < req->n_inputs; i++)
                if (check_tensor(&req->inputs[i].tensor))
                        return SL_ERR_INVALID_ARG;
        if (avro_generic_value_new(codec->iface[SL_REC_REQUEST], &v))
                return SL_ERR_NOMEM;
        TRY(set_str(&v, "id", req->id));
        TRY(set_str(&v, "model_name", req->model_name));
        TRY(set_opt_str(&v, "model_version", req->model_version));
        TRY(field(&v, "inputs", &f));
        for (size_t i = 0; i < req->n_inputs; i++) {
                const sl_tensor_t *t = &req->inputs[i].tensor;
                avro_value_t data;

                TRY(avro_value_append(&f, &el, NULL));
                TRY(set_str(&el, "name", req->inputs[i].name));
                TRY(set_str(&el, "datatype", sl_codec_dtype_to_v2(t->dtype)));
                TRY(set_shape(&el, t));
                TRY(field(&el, "data", &data));
                if (typed_arrays) {
                        TRY(set_typed(&data, t));
                } else {
                        TRY(branch(&data, "bytes", &b));
                        TRY(set_bytes_ref(&b, t->data, t->nbytes));
                }
        }
        if (req->n_outputs) {
                TRY(field(&v, "outputs", &f));
                TRY(branch(&f, "array", &b));
                for (size_t i = 0; i < req->n_outputs; i++) {
                        TRY(avro_value_append(&b, &el, NULL));
                        TRY(avro_value_set_string(&el, req->outputs[i] ? req->outputs[i] : ""));
                }
        } else {
                TRY(set_opt_null(&v, "outputs"));
        }
        TRY(field(&v, "parameters", &f));
        for (size_t i = 0; i < req->n_parameters; i++) {
                TRY(avro_value_add(&f, req->param_keys[i] ? req->param_keys[i] : "", &el, NULL,
                                   NULL));
                TRY(avro_value_set_string(&el, req->param_values[i] ? req->param_values[i] : ""));
        }
        TRY(set_opt_long(&v, "label", req->has_label, req->label));
        err = write_value(codec, SL_REC_REQUEST, &v, bufp, lenp);
fail:
        avro_value_decref(&v);
        return err;
}

static int set_result(avro_value_t *v, const sl_response_t *r)
{
        avro_value_t res, b, f, el, x;

        if (field(v, "result", &res))
                return -1;
        if (r->error_code != SL_OK) {
                if (branch(&res, "InferenceError", &b) ||
                    set_str(&b, "code", sl_err_name(r->error_code)) ||
                    set_str(&b, "message", r->error_message))
                        return -1;
                return 0;
        }
        if (branch(&res, "InferenceResult", &b) || field(&b, "outputs", &f))
                return -1;
        for (size_t i = 0; i < r->n_outputs; i++) {
                const sl_tensor_t *t = &r->outputs[i].tensor;

                if (check_tensor(t) || avro_value_append(&f, &el, NULL) ||
                    set_str(&el, "name", r->outputs[i].name) ||
                    set_str(&el, "datatype", sl_codec_dtype_to_v2(t->dtype)) || set_shape(&el, t) ||
                    field(&el, "data", &x) || set_bytes_ref(&x, t->data, t->nbytes))
                        return -1;
        }
        if (field(&b, "classes", &f))
                return -1;
        for (size_t i = 0; i < r->n_classes; i++) {
                const sl_class_score_t *c = &r->classes[i];

                if (avro_value_append(&f, &el, NULL) || set_int(&el, "index", c->index) ||
                    set_opt_str(&el, "label", c->label) || field(&el, "probability", &x) ||
                    avro_value_set_float(&x, c->probability))
                        return -1;
        }
        return 0;
}

sl_err_t sl_codec_encode_response(const sl_codec_t *codec, const sl_response_t *resp, void **bufp,
                                  size_t *lenp)
{
        avro_value_t v = {NULL, NULL}, t;
        sl_err_t err = SL_ERR_INTERNAL;

        *bufp = NULL;
        *lenp = 0;
        if (avro_generic_value_new(codec->iface[SL_REC_RESPONSE], &v))
                return SL_ERR_NOMEM;
        TRY(set_str(&v, "id", resp->id));
        TRY(set_str(&v, "model_name", resp->model_name));
        TRY(set_str(&v, "model_version", resp->model_version));
        TRY(set_str(&v, "worker_id", resp->worker_id));
        TRY(set_result(&v, resp));
        TRY(set_opt_long(&v, "label", resp->has_label, resp->label));
        TRY(field(&v, "timings", &t));
        TRY(set_long(&t, "request_timestamp_ms", resp->timings.request_timestamp_ms));
        TRY(set_long(&t, "queue_us", resp->timings.queue_us));
        TRY(set_long(&t, "inference_us", resp->timings.inference_us));
        TRY(set_int(&t, "batch_size", resp->timings.batch_size));
        err = write_value(codec, SL_REC_RESPONSE, &v, bufp, lenp);
fail:
        avro_value_decref(&v);
        return err;
}

sl_err_t sl_codec_encode_dead_letter(const sl_codec_t *codec, const sl_dead_letter_t *dl,
                                     void **bufp, size_t *lenp)
{
        avro_value_t v = {NULL, NULL}, f, el;
        sl_err_t err = SL_ERR_INTERNAL;

        *bufp = NULL;
        *lenp = 0;
        if (avro_generic_value_new(codec->iface[SL_REC_DEAD_LETTER], &v))
                return SL_ERR_NOMEM;
        TRY(set_opt_bytes(&v, "key", dl->key, dl->key_len));
        TRY(set_opt_bytes(&v, "value", dl->value, dl->value_len));
        TRY(field(&v, "headers", &f));
        for (size_t i = 0; i < dl->n_headers; i++) {
                TRY(avro_value_append(&f, &el, NULL));
                TRY(set_str(&el, "key", dl->headers[i].key));
                TRY(set_opt_bytes(&el, "value", dl->headers[i].value, dl->headers[i].value_len));
        }
        TRY(set_str(&v, "topic", dl->topic));
        TRY(set_int(&v, "partition", dl->partition));
        TRY(set_long(&v, "offset", dl->offset));
        TRY(set_long(&v, "timestamp_ms", dl->timestamp_ms));
        TRY(set_str(&v, "error_code", sl_err_name(dl->error_code)));
        TRY(set_str(&v, "error_message", dl->error_message));
        TRY(set_opt_str(&v, "request_id", dl->request_id));
        TRY(set_str(&v, "worker_id", dl->worker_id));
        TRY(set_long(&v, "time_ms", dl->time_ms));
        err = write_value(codec, SL_REC_DEAD_LETTER, &v, bufp, lenp);
fail:
        avro_value_decref(&v);
        return err;
}

static int set_percentiles(avro_value_t *rec, const char *name, const sl_percentiles_t *p)
{
        avro_value_t f;

        if (field(rec, name, &f))
                return -1;
        return set_long(&f, "p50_us", p->p50_us) || set_long(&f, "p90_us", p->p90_us) ||
               set_long(&f, "p99_us", p->p99_us) || set_long(&f, "max_us", p->max_us);
}

static int set_double(avro_value_t *rec, const char *name, double v)
{
        avro_value_t f;

        if (field(rec, name, &f))
                return -1;
        return avro_value_set_double(&f, v);
}

static int set_class_stats(avro_value_t *el, const sl_eval_class_t *c)
{
        return set_int(el, "index", c->index) || set_opt_str(el, "label", c->label) ||
               set_double(el, "precision", c->precision) || set_double(el, "recall", c->recall) ||
               set_double(el, "f1", c->f1) || set_long(el, "support", c->support);
}

/* confusion[true][predicted] as an array of C rows of C longs. */
static int set_confusion(avro_value_t *rec, const sl_eval_stats_t *s)
{
        avro_value_t f, row, cell;
        size_t c = s->n_classes > 0 ? (size_t)s->n_classes : 0;

        if (field(rec, "confusion", &f))
                return -1;
        if (!s->confusion)
                return 0;
        for (size_t i = 0; i < c; i++) {
                if (avro_value_append(&f, &row, NULL))
                        return -1;
                for (size_t j = 0; j < c; j++)
                        if (avro_value_append(&row, &cell, NULL) ||
                            avro_value_set_long(&cell, s->confusion[i * c + j]))
                                return -1;
        }
        return 0;
}

/* One EvalStats record; the regression fields are null for classification and
 * the classification ones empty (or 0) for regression. */
static int set_eval_stats(avro_value_t *parent, const char *name, sl_eval_kind_t kind,
                          const sl_eval_stats_t *s)
{
        avro_value_t rec, f, el;
        int regression = kind == SL_EVAL_REGRESSION;

        if (field(parent, name, &rec) || set_long(&rec, "count", s->count) ||
            set_double(&rec, "accuracy", s->accuracy) ||
            set_double(&rec, "macro_precision", s->macro_precision) ||
            set_double(&rec, "macro_recall", s->macro_recall) ||
            set_double(&rec, "macro_f1", s->macro_f1) ||
            set_opt_double(&rec, "log_loss", !regression && s->log_loss_count > 0, s->log_loss) ||
            field(&rec, "per_class", &f))
                return -1;
        for (int32_t k = 0; !regression && s->per_class && k < s->n_classes; k++)
                if (avro_value_append(&f, &el, NULL) || set_class_stats(&el, &s->per_class[k]))
                        return -1;
        return (regression ? field(&rec, "confusion", &f) : set_confusion(&rec, s)) ||
               set_opt_double(&rec, "mae", regression && s->count > 0, s->mae) ||
               set_opt_double(&rec, "rmse", regression && s->count > 0, s->rmse) ||
               set_long(&rec, "invalid", s->invalid);
}

static int set_evaluation(avro_value_t *el, const sl_eval_report_t *r)
{
        avro_value_t f, b;

        if (!r)
                return set_opt_null(el, "evaluation");
        return field(el, "evaluation", &f) || branch(&f, "Evaluation", &b) ||
               set_eval_stats(&b, "window", r->kind, &r->window) ||
               set_eval_stats(&b, "total", r->kind, &r->total);
}

static int set_model_metrics(avro_value_t *el, const sl_model_metrics_t *m)
{
        avro_value_t f;

        if (set_str(el, "model_name", m->model_name) ||
            set_str(el, "model_version", m->model_version) ||
            set_long(el, "requests", m->requests) || set_long(el, "responses", m->responses) ||
            set_long(el, "errors", m->errors) || set_long(el, "batches", m->batches) ||
            set_percentiles(el, "latency", &m->latency) ||
            set_percentiles(el, "inference", &m->inference) || field(el, "batch_size_mean", &f) ||
            avro_value_set_double(&f, m->batch_size_mean) ||
            set_int(el, "batch_size_max", m->batch_size_max) ||
            set_long(el, "labelled", m->labelled) || set_long(el, "correct", m->correct) ||
            set_opt_double(el, "accuracy", m->labelled > 0,
                           m->labelled > 0 ? (double)m->correct / (double)m->labelled : 0) ||
            set_long(el, "requests_total", m->requests_total) ||
            set_long(el, "responses_total", m->responses_total) ||
            set_long(el, "errors_total", m->errors_total) ||
            set_long(el, "labelled_total", m->labelled_total) ||
            set_long(el, "correct_total", m->correct_total) ||
            set_opt_double(
                el, "accuracy_total", m->labelled_total > 0,
                m->labelled_total > 0 ? (double)m->correct_total / (double)m->labelled_total : 0) ||
            set_evaluation(el, m->evaluation))
                return -1;
        return 0;
}

sl_err_t sl_codec_encode_metrics(const sl_codec_t *codec, const sl_worker_metrics_t *m, void **bufp,
                                 size_t *lenp)
{
        avro_value_t v = {NULL, NULL}, f, el;
        sl_err_t err = SL_ERR_INTERNAL;

        *bufp = NULL;
        *lenp = 0;
        if (avro_generic_value_new(codec->iface[SL_REC_METRICS], &v))
                return SL_ERR_NOMEM;
        TRY(set_str(&v, "worker_id", m->worker_id));
        TRY(set_long(&v, "window_start_ms", m->window_start_ms));
        TRY(set_long(&v, "window_end_ms", m->window_end_ms));
        TRY(set_long(&v, "dead_letters", m->dead_letters));
        TRY(set_long(&v, "dead_letters_total", m->dead_letters_total));
        TRY(set_long(&v, "consumer_lag", m->consumer_lag));
        TRY(set_long(&v, "commits_total", m->commits_total));
        TRY(set_long(&v, "rebalances_total", m->rebalances_total));
        TRY(set_long(&v, "pauses_total", m->pauses_total));
        TRY(set_long(&v, "transactions_aborted_total", m->transactions_aborted_total));
        TRY(field(&v, "dead_letters_by_code", &f));
        for (int e = 0; m->dead_letters_by_code && e < SL_ERR__CNT; e++) {
                if (!m->dead_letters_by_code[e])
                        continue;
                TRY(avro_value_add(&f, sl_err_name((sl_err_t)e), &el, NULL, NULL));
                TRY(avro_value_set_long(&el, m->dead_letters_by_code[e]));
        }
        TRY(field(&v, "models", &f));
        for (size_t i = 0; i < m->n_models; i++) {
                TRY(avro_value_append(&f, &el, NULL));
                TRY(set_model_metrics(&el, &m->models[i]));
        }
        err = write_value(codec, SL_REC_METRICS, &v, bufp, lenp);
fail:
        avro_value_decref(&v);
        return err;
}
