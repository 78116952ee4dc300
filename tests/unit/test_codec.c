/* Unit tests of worker/codec: round trips of every schema in both framings,
 * hostile request bytes, framing errors. Leaks are caught by running the
 * test under ASan/LSan (SL_SANITIZE=ON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/codec_int.h"
#include "eval/eval.h"

#define ASSERT_CONTAINS(hay, needle)                                                               \
        do {                                                                                       \
                const char *h_ = (hay), *n_ = (needle);                                            \
                if (!h_ || !strstr(h_, n_)) {                                                      \
                        print_error("expected \"%s\" in \"%s\"\n", n_, h_ ? h_ : "(null)");        \
                        fail();                                                                    \
                }                                                                                  \
        } while (0)

static sl_codec_t *codecs[2]; /* [SL_FRAMING_RAW], [SL_FRAMING_CONFLUENT] */

static int setup(void **state)
{
        char dir[1024], errstr[512];
        const char *src = getenv("SL_SOURCE_DIR");
        sl_codec_params_t p;

        (void)state;
        snprintf(dir, sizeof(dir), "%s/schemas", src ? src : SL_SOURCE_DIR);
        for (int f = 0; f < 2; f++) {
                sl_codec_params_init(&p);
                p.schema_dir = dir;
                p.framing = (sl_framing_t)f;
                p.request_schema_id = 11;
                p.response_schema_id = 12;
                p.dead_letter_schema_id = 13;
                p.metrics_schema_id = 14;
                if (sl_codec_new(&p, &codecs[f], errstr, sizeof(errstr))) {
                        fprintf(stderr, "sl_codec_new: %s\n", errstr);
                        return -1;
                }
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sl_codec_destroy(codecs[0]);
        sl_codec_destroy(codecs[1]);
        return 0;
}

/* ---- a tiny Avro writer for hand-made (hostile) requests ------------------ */

typedef struct {
        uint8_t b[8192];
        size_t n;
} wb_t;

static void w_long(wb_t *w, int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

        while (u >= 0x80) {
                w->b[w->n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        w->b[w->n++] = (uint8_t)u;
}

static void w_raw(wb_t *w, const void *p, size_t n)
{
        memcpy(w->b + w->n, p, n);
        w->n += n;
}

static void w_str(wb_t *w, const char *s)
{
        w_long(w, (int64_t)strlen(s));
        w_raw(w, s, strlen(s));
}

/* id, model_name, model_version=null, inputs block of one tensor named "x". */
static void req_head(wb_t *w)
{
        w->n = 0;
        w_str(w, "req-1");
        w_str(w, "mnist");
        w_long(w, 0);
        w_long(w, 1);
        w_str(w, "x");
}

/* end of inputs, outputs=null, parameters={}, label=null. */
static void req_tail(wb_t *w)
{
        w_long(w, 0);
        w_long(w, 0);
        w_long(w, 0);
        w_long(w, 0);
}

static void w_shape(wb_t *w, int n, const int64_t *dims)
{
        if (n) {
                w_long(w, n);
                for (int i = 0; i < n; i++)
                        w_long(w, dims[i]);
        }
        w_long(w, 0);
}

/* Decode \p w with the raw codec and expect \p want; check errstr and id. */
static void expect(const wb_t *w, sl_err_t want, const char *msg, const char *want_id)
{
        sl_request_t *req = NULL;
        char errstr[512] = "", *id = NULL;
        sl_err_t err;

        err = sl_codec_decode_request(codecs[SL_FRAMING_RAW], w->b, w->n, &req, &id, errstr,
                                      sizeof(errstr));
        if (err != want)
                print_error("got %s (%s), want %s\n", sl_err_name(err), errstr, sl_err_name(want));
        assert_int_equal(err, want);
        if (want == SL_OK) {
                assert_non_null(req);
        } else {
                assert_null(req);
                ASSERT_CONTAINS(errstr, msg);
        }
        if (want_id) {
                assert_non_null(id);
                assert_string_equal(id, want_id);
        } else if (want != SL_OK) {
                assert_null(id);
        }
        free(id);
        sl_request_destroy(req);
}

/* ---- round trips ------------------------------------------------------- */

static void test_dtypes(void **state)
{
        static const char *names[] = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                                      "INT16", "INT32", "INT64",  "FP16",   "FP32",   "FP64"};
        (void)state;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                sl_dtype_t dt = sl_codec_dtype_from_v2(names[i]);

                assert_int_not_equal(dt, SL_DT_UNDEFINED);
                assert_string_equal(sl_codec_dtype_to_v2(dt), names[i]);
        }
        assert_int_equal(sl_codec_dtype_from_v2("FLOAT"), SL_DT_UNDEFINED);
        assert_int_equal(sl_codec_dtype_from_v2("fp32"), SL_DT_UNDEFINED);
        assert_int_equal(sl_codec_dtype_from_v2(NULL), SL_DT_UNDEFINED);
        assert_null(sl_codec_dtype_to_v2(SL_DT_STRING));
        assert_int_equal(sl_codec_dtype_from_v2("FP32"), SL_DT_FLOAT);
        assert_int_equal(sl_codec_dtype_from_v2("FP64"), SL_DT_DOUBLE);
        assert_int_equal(sl_codec_dtype_from_v2("FP16"), SL_DT_FLOAT16);
}

static float f32[6] = {0.5f, -1.25f, 3.0f, 1e-7f, -0.0f, 42.0f};
static double f64[3] = {1.0 / 3, -2.5e100, 0.0};
static int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
static int32_t i32[4] = {INT32_MIN, 0, 7, INT32_MAX};
static int16_t i16[2] = {-32768, 32767};
static uint16_t u16[2] = {0, 65535};
static int8_t i8[3] = {-128, 0, 127};
static uint8_t u8[2] = {0, 255};
static uint8_t bools[3] = {1, 0, 1};
static uint16_t f16[2] = {0x3c00, 0xc000};
static uint32_t u32[1] = {4000000000u};
static uint64_t u64[1] = {UINT64_MAX};

#define T(nm, dt, nd, d0, d1, arr)                                                                 \
        {                                                                                          \
                (char *)nm,                                                                        \
                {                                                                                  \
                        dt, nd, {d0, d1}, (void *)arr, sizeof(arr)                                 \
                }                                                                                  \
        }

static sl_named_tensor_t tensors[] = {
    T("fp32", SL_DT_FLOAT, 2, 2, 3, f32),    T("fp64", SL_DT_DOUBLE, 1, 3, 0, f64),
    T("int64", SL_DT_INT64, 1, 3, 0, i64),   T("int32", SL_DT_INT32, 2, 2, 2, i32),
    T("int16", SL_DT_INT16, 1, 2, 0, i16),   T("uint16", SL_DT_UINT16, 1, 2, 0, u16),
    T("int8", SL_DT_INT8, 1, 3, 0, i8),      T("uint8", SL_DT_UINT8, 2, 1, 2, u8),
    T("bool", SL_DT_BOOL, 1, 3, 0, bools),   T("fp16", SL_DT_FLOAT16, 1, 2, 0, f16),
    T("uint32", SL_DT_UINT32, 0, 0, 0, u32), T("uint64", SL_DT_UINT64, 1, 1, 0, u64),
};
#define N_TENSORS (sizeof(tensors) / sizeof(tensors[0]))

static void check_request_round_trip(sl_codec_t *codec, int typed)
{
        char *keys[] = {"temperature", "k"}, *vals[] = {"0.5", ""}, *outs[] = {"probs"};
        sl_request_t in = {.id = "req-42",
                           .model_name = "mnist",
                           .model_version = "3",
                           .n_inputs = N_TENSORS,
                           .inputs = tensors,
                           .n_outputs = 1,
                           .outputs = outs,
                           .n_parameters = 2,
                           .param_keys = keys,
                           .param_values = vals,
                           .has_label = 1,
                           .label = 7};
        sl_request_t *out = NULL;
        char errstr[256] = "", *id = NULL;
        void *buf = NULL;
        size_t len = 0;

        assert_int_equal(sl_codec_encode_request(codec, &in, typed, &buf, &len), SL_OK);
        if (codec == codecs[SL_FRAMING_CONFLUENT]) {
                static const uint8_t hdr[5] = {0, 0, 0, 0, 11};
                assert_memory_equal(buf, hdr, 5);
        }
        assert_int_equal(
            sl_codec_decode_request(codec, buf, len, &out, &id, errstr, sizeof(errstr)), SL_OK);
        assert_null(id);
        assert_string_equal(out->id, "req-42");
        assert_string_equal(out->model_name, "mnist");
        assert_string_equal(out->model_version, "3");
        assert_int_equal(out->n_inputs, N_TENSORS);
        for (size_t i = 0; i < N_TENSORS; i++) {
                const sl_tensor_t *a = &tensors[i].tensor, *b = &out->inputs[i].tensor;

                assert_string_equal(out->inputs[i].name, tensors[i].name);
                assert_int_equal(b->dtype, a->dtype);
                assert_int_equal(b->ndim, a->ndim);
                for (int d = 0; d < a->ndim; d++)
                        assert_int_equal(b->dims[d], a->dims[d]);
                assert_int_equal(b->nbytes, a->nbytes);
                assert_memory_equal(b->data, a->data, a->nbytes);
        }
        assert_int_equal(out->n_outputs, 1);
        assert_string_equal(out->outputs[0], "probs");
        assert_int_equal(out->n_parameters, 2);
        assert_string_equal(out->param_keys[0], "temperature");
        assert_string_equal(out->param_values[0], "0.5");
        assert_string_equal(out->param_values[1], "");
        assert_true(out->has_label);
        assert_int_equal(out->label, 7);
        sl_request_destroy(out);
        free(buf);
}

static void test_request_round_trip(void **state)
{
        (void)state;
        for (int f = 0; f < 2; f++) {
                check_request_round_trip(codecs[f], 0);
                check_request_round_trip(codecs[f], 1);
        }
}

static void test_request_minimal_and_empty_tensor(void **state)
{
        sl_named_tensor_t t = {"e", {SL_DT_FLOAT, 2, {0, 3}, NULL, 0}};
        sl_request_t in = {.id = "", .model_name = "m", .n_inputs = 1, .inputs = &t};
        sl_request_t *out = NULL;
        char errstr[256];
        void *buf;
        size_t len;

        (void)state;
        for (int typed = 0; typed < 2; typed++) {
                assert_int_equal(sl_codec_encode_request(codecs[0], &in, typed, &buf, &len), SL_OK);
                assert_int_equal(sl_codec_decode_request(codecs[0], buf, len, &out, NULL, errstr,
                                                         sizeof(errstr)),
                                 SL_OK);
                assert_null(out->model_version);
                assert_int_equal(out->n_outputs, 0);
                assert_int_equal(out->n_parameters, 0);
                assert_false(out->has_label);
                assert_int_equal(out->inputs[0].tensor.nbytes, 0);
                assert_non_null(out->inputs[0].tensor.data);
                sl_request_destroy(out);
                free(buf);
        }
        /* Tensors whose nbytes does not match their shape are refused. */
        t.tensor.nbytes = 4;
        assert_int_equal(sl_codec_encode_request(codecs[0], &in, 0, &buf, &len),
                         SL_ERR_INVALID_ARG);
}

static void test_response_round_trip(void **state)
{
        sl_class_score_t classes[] = {{7, "seven", 0.75f}, {1, NULL, 0.125f}};
        sl_response_t in = {.id = "req-42",
                            .model_name = "mnist",
                            .model_version = "3",
                            .worker_id = "w-0",
                            .n_outputs = 2,
                            .outputs = tensors,
                            .n_classes = 2,
                            .classes = classes,
                            .error_code = SL_OK,
                            .has_label = 1,
                            .label = 7,
                            .timings = {1700000000000, 150, 2300, 8}};
        sl_response_decoded_t *out = NULL;
        char errstr[256];
        void *buf;
        size_t len;

        (void)state;
        for (int f = 0; f < 2; f++) {
                assert_int_equal(sl_codec_encode_response(codecs[f], &in, &buf, &len), SL_OK);
                assert_int_equal(f ? ((uint8_t *)buf)[4] : 0, f ? 12 : 0);
                assert_int_equal(
                    sl_codec_decode_response(codecs[f], buf, len, &out, errstr, sizeof(errstr)),
                    SL_OK);
                assert_string_equal(out->id, "req-42");
                assert_string_equal(out->model_version, "3");
                assert_string_equal(out->worker_id, "w-0");
                assert_null(out->error_code);
                assert_int_equal(out->n_outputs, 2);
                assert_string_equal(out->outputs[1].name, "fp64");
                assert_int_equal(out->outputs[0].tensor.dtype, SL_DT_FLOAT);
                assert_int_equal(out->outputs[0].tensor.dims[1], 3);
                assert_memory_equal(out->outputs[0].tensor.data, f32, sizeof(f32));
                assert_int_equal(out->n_classes, 2);
                assert_int_equal(out->class_index[0], 7);
                assert_string_equal(out->class_label[0], "seven");
                assert_null(out->class_label[1]);
                assert_true(out->class_probability[1] == 0.125f);
                assert_true(out->has_label);
                assert_int_equal(out->label, 7);
                assert_int_equal(out->timings.request_timestamp_ms, 1700000000000);
                assert_int_equal(out->timings.inference_us, 2300);
                assert_int_equal(out->timings.batch_size, 8);
                sl_response_decoded_destroy(out);
                free(buf);
        }
}

static void test_response_error(void **state)
{
        sl_response_t in = {.id = "r",
                            .model_name = "nope",
                            .model_version = "",
                            .worker_id = "w",
                            .n_outputs = 1,
                            .outputs = tensors, /* ignored on the error branch */
                            .error_code = SL_ERR_UNKNOWN_MODEL,
                            .error_message = "model \"nope\" is not served"};
        sl_response_decoded_t *out = NULL;
        char errstr[256];
        void *buf;
        size_t len;

        (void)state;
        for (int f = 0; f < 2; f++) {
                assert_int_equal(sl_codec_encode_response(codecs[f], &in, &buf, &len), SL_OK);
                assert_int_equal(
                    sl_codec_decode_response(codecs[f], buf, len, &out, errstr, sizeof(errstr)),
                    SL_OK);
                assert_string_equal(out->error_code, "UNKNOWN_MODEL");
                assert_string_equal(out->error_message, "model \"nope\" is not served");
                assert_int_equal(out->n_outputs, 0);
                assert_false(out->has_label);
                sl_response_decoded_destroy(out);
                /* A response is not a request: the framing or the record says so. */
                sl_request_t *req = NULL;
                sl_err_t err = sl_codec_decode_request(codecs[f], buf, len, &req, NULL, errstr,
                                                       sizeof(errstr));
                assert_int_not_equal(err, SL_OK);
                free(buf);
        }
}

static void test_dead_letter_round_trip(void **state)
{
        static const uint8_t value[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
        sl_header_t headers[] = {{"traceparent", "00-abc-01", 9}, {"empty", NULL, 0}};
        sl_dead_letter_t dl = {.key = NULL,
                               .value = value,
                               .value_len = sizeof(value),
                               .n_headers = 2,
                               .headers = headers,
                               .topic = "requests",
                               .partition = 3,
                               .offset = 123456789012,
                               .timestamp_ms = 1700000000000,
                               .error_code = SL_ERR_DECODE,
                               .error_message = "id: truncated varint",
                               .request_id = NULL,
                               .worker_id = "w-1",
                               .time_ms = 1700000000500};
        char errstr[256], *code, *msg, *rid;
        int64_t offset;
        void *buf;
        size_t len;

        (void)state;
        for (int f = 0; f < 2; f++) {
                dl.key = f ? "k" : NULL;
                dl.key_len = f ? 1 : 0;
                dl.request_id = f ? "req-9" : NULL;
                assert_int_equal(sl_codec_encode_dead_letter(codecs[f], &dl, &buf, &len), SL_OK);
                assert_int_equal(sl_codec_decode_dead_letter(codecs[f], buf, len, &code, &msg, &rid,
                                                             &offset, errstr, sizeof(errstr)),
                                 SL_OK);
                assert_string_equal(code, "DECODE");
                assert_string_equal(msg, "id: truncated varint");
                if (f)
                        assert_string_equal(rid, "req-9");
                else
                        assert_null(rid);
                assert_int_equal(offset, 123456789012);
                free(code);
                free(msg);
                free(rid);
                free(buf);
        }
}

static void test_metrics_json(void **state)
{
        sl_model_metrics_t mm[2] = {
            {.model_name = "mnist",
             .model_version = "3",
             .requests = 10,
             .responses = 9,
             .errors = 1,
             .batches = 2,
             .latency = {100, 200, 300, 400},
             .batch_size_mean = 4.5,
             .batch_size_max = 8,
             .labelled = 4,
             .correct = 3,
             .requests_total = 100,
             .labelled_total = 0},
            {.model_name = "other", .model_version = "1"},
        };
        sl_worker_metrics_t m = {.worker_id = "w-2",
                                 .window_start_ms = 1000,
                                 .window_end_ms = 2000,
                                 .dead_letters = 1,
                                 .dead_letters_total = 5,
                                 .consumer_lag = -1,
                                 .n_models = 2,
                                 .models = mm};
        char errstr[256], *json;
        void *buf;
        size_t len;

        (void)state;
        for (int f = 0; f < 2; f++) {
                assert_int_equal(sl_codec_encode_metrics(codecs[f], &m, &buf, &len), SL_OK);
                assert_int_equal(
                    sl_codec_metrics_to_json(codecs[f], buf, len, &json, errstr, sizeof(errstr)),
                    SL_OK);
                ASSERT_CONTAINS(json, "\"worker_id\": \"w-2\"");
                ASSERT_CONTAINS(json, "\"consumer_lag\": -1");
                ASSERT_CONTAINS(json, "\"accuracy\": {\"double\": 0.75}");
                ASSERT_CONTAINS(json, "\"accuracy_total\": null");
                ASSERT_CONTAINS(json, "\"p99_us\": 300");
                ASSERT_CONTAINS(json, "\"model_name\": \"other\"");
                free(json);
                free(buf);
        }
}

/* ModelMetrics.evaluation from real evaluators: a 2-class classifier
 * (y_true = [0, 1, 1], y_pred = [0, 1, 0], P(true) = 0.5 for each: accuracy
 * 2/3, precision [0.5, 1], recall [1, 0.5], f1 [2/3, 2/3], log loss ln 2,
 * confusion [[1, 0], [1, 1]]) and a regressor (errors 1 and 3: MAE 2, RMSE
 * sqrt(5)), window = total. */
static void test_metrics_evaluation_json(void **state)
{
        static const char *const names[2] = {"no", "yes"};
        static const float half[2] = {0.5f, 0.5f};
        sl_eval_t *cls = sl_eval_new(SL_EVAL_CLASSIFICATION, 2, names);
        sl_eval_t *reg = sl_eval_new(SL_EVAL_REGRESSION, 0, NULL);
        sl_model_metrics_t mm[3] = {{.model_name = "a", .model_version = "1"},
                                    {.model_name = "r", .model_version = "2"},
                                    {.model_name = "none", .model_version = "1"}};
        sl_worker_metrics_t m = {.worker_id = "w", .consumer_lag = 0, .n_models = 3, .models = mm};
        char errstr[256], *json;
        void *buf;
        size_t len;

        (void)state;
        assert_int_equal(sl_eval_add_class(cls, 0, 0, half), SL_OK);
        assert_int_equal(sl_eval_add_class(cls, 1, 1, half), SL_OK);
        assert_int_equal(sl_eval_add_class(cls, 0, 1, half), SL_OK);
        assert_int_equal(sl_eval_add_class(cls, 0, 5, NULL), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_value(reg, 1.0, 2.0), SL_OK);
        assert_int_equal(sl_eval_add_value(reg, 3.0, 0.0), SL_OK);
        mm[0].evaluation = sl_eval_snapshot(cls, 1);
        mm[1].evaluation = sl_eval_snapshot(reg, 1);
        for (int f = 0; f < 2; f++) {
                assert_int_equal(sl_codec_encode_metrics(codecs[f], &m, &buf, &len), SL_OK);
                assert_int_equal(
                    sl_codec_metrics_to_json(codecs[f], buf, len, &json, errstr, sizeof(errstr)),
                    SL_OK);
                if (getenv("SL_TEST_VERBOSE"))
                        printf("%s\n", json);
                ASSERT_CONTAINS(json, "\"evaluation\": {\"Evaluation\": {\"window\": "
                                      "{\"count\": 3, \"accuracy\": 0.66666666666666663, "
                                      "\"macro_precision\": 0.75, \"macro_recall\": 0.75, "
                                      "\"macro_f1\": 0.66666666666666663, \"log_loss\": "
                                      "{\"double\": 0.69314718055994529}, \"per_class\": "
                                      "[{\"index\": 0, \"label\": {\"string\": \"no\"}, "
                                      "\"precision\": 0.5, \"recall\": 1.0, \"f1\": "
                                      "0.66666666666666663, \"support\": 1}, {\"index\": 1, "
                                      "\"label\": {\"string\": \"yes\"}, \"precision\": 1.0, "
                                      "\"recall\": 0.5, \"f1\": 0.66666666666666663, "
                                      "\"support\": 2}], \"confusion\": [[1, 0], [1, 1]], "
                                      "\"mae\": null, \"rmse\": null, \"invalid\": 1}, "
                                      "\"total\": {\"count\": 3,");
                ASSERT_CONTAINS(json, "{\"count\": 2, \"accuracy\": 0.0, \"macro_precision\": "
                                      "0.0, \"macro_recall\": 0.0, \"macro_f1\": 0.0, "
                                      "\"log_loss\": null, \"per_class\": [], \"confusion\": [], "
                                      "\"mae\": {\"double\": 2.0}, \"rmse\": {\"double\": "
                                      "2.2360679774997898}, \"invalid\": 0}");
                ASSERT_CONTAINS(json, "\"accuracy_total\": null, \"evaluation\": null}");
                free(json);
                free(buf);
        }
        sl_eval_destroy(cls);
        sl_eval_destroy(reg);
}

/* The metrics schema as it was before ModelMetrics.evaluation (the field is
 * the last one of ModelMetrics, which closes the file with "\n    ]}}}"). */
static char *schema_without_evaluation(const char *text)
{
        const char *a = strstr(text, ",\n      {\"name\": \"evaluation\"");
        const char *b = strstr(text, "\n    ]}}}");
        size_t n;
        char *out;

        assert_non_null(a);
        assert_non_null(b);
        assert_true(a < b);
        n = (size_t)(a - text) + strlen(b);
        out = malloc(n + 1);
        assert_non_null(out);
        memcpy(out, text, (size_t)(a - text));
        memcpy(out + (a - text), b, strlen(b) + 1);
        return out;
}

/* Adding ModelMetrics.evaluation is a compatible change both ways (Avro spec,
 * "Schema Resolution"): a reader with the old schema skips it, a reader with
 * the new schema reads old records with the default null. Checked with the
 * codec's own writer->reader plans. */
static void test_metrics_evaluation_compatible(void **state)
{
        static const char *const names[2] = {"no", "yes"};
        sl_eval_t *cls = sl_eval_new(SL_EVAL_CLASSIFICATION, 2, names);
        sl_model_metrics_t mm = {.model_name = "a", .model_version = "1", .labelled = 2};
        sl_worker_metrics_t m = {.worker_id = "w", .n_models = 1, .models = &mm};
        const char *src = getenv("SL_SOURCE_DIR"), *jerr = NULL;
        char path[1024], errstr[256], *new_text = NULL, *old_text, *json = NULL;
        size_t new_len;
        avro_schema_t new_s = NULL, old_s = NULL;
        sl_json_t *new_json, *old_json;
        sl_rplan_t *to_old = NULL, *to_new = NULL;
        void *with = NULL, *without = NULL;
        size_t with_len, without_len, old_len, back_len;
        uint8_t *old = NULL, *back = NULL;
        avro_value_iface_t *iface;
        avro_value_t v;
        avro_reader_t r;

        (void)state;
        snprintf(path, sizeof(path), "%s/schemas/worker_metrics.avsc", src ? src : SL_SOURCE_DIR);
        assert_int_equal(sl_file_read(path, &new_text, &new_len, errstr, sizeof(errstr)), SL_OK);
        old_text = schema_without_evaluation(new_text);
        assert_null(strstr(old_text, "Evaluation"));
        assert_int_equal(avro_schema_from_json_length(new_text, new_len, &new_s), 0);
        assert_int_equal(avro_schema_from_json_length(old_text, strlen(old_text), &old_s), 0);
        new_json = sl_json_parse(new_text, new_len, &jerr);
        old_json = sl_json_parse(old_text, strlen(old_text), &jerr);
        assert_non_null(new_json);
        assert_non_null(old_json);
        assert_int_equal(sl_rplan_new(new_s, old_s, old_json, &to_old), SL_OK);
        assert_int_equal(sl_rplan_new(old_s, new_s, new_json, &to_new), SL_OK);
        assert_int_not_equal(to_old->root->kind, RP_ERROR);
        assert_int_not_equal(to_new->root->kind, RP_ERROR);
        assert_int_equal(sl_codec_header_size(codecs[SL_FRAMING_RAW]), 0);

        /* new writer, old reader: the evaluation is skipped */
        assert_int_equal(sl_eval_add_class(cls, 1, 1, NULL), SL_OK);
        mm.evaluation = sl_eval_snapshot(cls, 1);
        assert_int_equal(sl_codec_encode_metrics(codecs[SL_FRAMING_RAW], &m, &with, &with_len),
                         SL_OK);
        assert_int_equal(
            sl_rplan_transcode(to_old, with, with_len, &old, &old_len, errstr, sizeof(errstr)),
            SL_OK);
        iface = avro_generic_class_from_schema(old_s);
        assert_non_null(iface);
        assert_int_equal(avro_generic_value_new(iface, &v), 0);
        r = avro_reader_memory((const char *)old, (int64_t)old_len);
        assert_int_equal(avro_value_read(r, &v), 0);
        assert_int_equal(avro_value_to_json(&v, 1, &json), 0);
        ASSERT_CONTAINS(json, "\"labelled\": 2");
        ASSERT_CONTAINS(json, "\"accuracy_total\": null}]}");
        assert_null(strstr(json, "evaluation"));
        free(json);
        avro_reader_free(r);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);

        /* old writer, new reader: evaluation takes its default, null; the bytes
         * are those of the new encoder given no evaluation */
        assert_int_equal(
            sl_rplan_transcode(to_new, old, old_len, &back, &back_len, errstr, sizeof(errstr)),
            SL_OK);
        mm.evaluation = NULL;
        assert_int_equal(
            sl_codec_encode_metrics(codecs[SL_FRAMING_RAW], &m, &without, &without_len), SL_OK);
        assert_int_equal(back_len, without_len);
        assert_memory_equal(back, without, without_len);
        assert_int_equal(sl_codec_metrics_to_json(codecs[SL_FRAMING_RAW], back, back_len, &json,
                                                  errstr, sizeof(errstr)),
                         SL_OK);
        ASSERT_CONTAINS(json, "\"evaluation\": null");
        free(json);

        free(with);
        free(without);
        free(old);
        free(back);
        sl_rplan_destroy(to_old);
        sl_rplan_destroy(to_new);
        sl_json_free(new_json);
        sl_json_free(old_json);
        avro_schema_decref(new_s);
        avro_schema_decref(old_s);
        free(old_text);
        free(new_text);
        sl_eval_destroy(cls);
}

/* ---- framing -------------------------------------------------------------- */

static void test_framing_errors(void **state)
{
        sl_codec_t *c = codecs[SL_FRAMING_CONFLUENT];
        sl_request_t *req = NULL;
        char errstr[256], *id = NULL;
        uint8_t msg[64];
        wb_t w;

        (void)state;
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 4);
        w_raw(&w, "\0\0\x80?", 4);
        req_tail(&w);
        memcpy(msg + 5, w.b, w.n);
        memcpy(msg, "\x00\x00\x00\x00\x0b", 5);
        assert_int_equal(
            sl_codec_decode_request(c, msg, w.n + 5, &req, &id, errstr, sizeof(errstr)), SL_OK);
        assert_true(*(float *)req->inputs[0].tensor.data == 1.0f);
        sl_request_destroy(req);

        assert_int_equal(sl_codec_decode_request(c, msg, 0, &req, &id, errstr, sizeof(errstr)),
                         SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr, "empty value");
        assert_int_equal(sl_codec_decode_request(c, NULL, 0, &req, &id, errstr, sizeof(errstr)),
                         SL_ERR_FRAMING);
        assert_int_equal(sl_codec_decode_request(c, msg, 3, &req, &id, errstr, sizeof(errstr)),
                         SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr, "shorter than the 5-byte Confluent header");
        msg[4] = 12;
        assert_int_equal(
            sl_codec_decode_request(c, msg, w.n + 5, &req, &id, errstr, sizeof(errstr)),
            SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr, "unknown schema id 12");
        msg[4] = 11;
        msg[0] = 0x01;
        assert_int_equal(
            sl_codec_decode_request(c, msg, w.n + 5, &req, &id, errstr, sizeof(errstr)),
            SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr, "magic byte 0x01");
        assert_null(req);
        assert_null(id);
        /* Raw Avro read as Confluent: the id length byte is not magic 0. */
        assert_int_equal(sl_codec_decode_request(c, w.b, w.n, &req, &id, errstr, sizeof(errstr)),
                         SL_ERR_FRAMING);
        /* Raw framing: only an empty value is a framing error. */
        assert_int_equal(
            sl_codec_decode_request(codecs[0], w.b, 0, &req, &id, errstr, sizeof(errstr)),
            SL_ERR_FRAMING);
        /* Confluent framing on the other decoders too. */
        sl_response_decoded_t *resp = NULL;
        msg[0] = 0;
        assert_int_equal(sl_codec_decode_response(c, msg, w.n + 5, &resp, errstr, sizeof(errstr)),
                         SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr, "unknown schema id 11");
}

/* ---- hostile requests ----------------------------------------------------- */

static void test_truncation_everywhere(void **state)
{
        sl_request_t in = {.id = "req-7",
                           .model_name = "mnist",
                           .model_version = "1",
                           .n_inputs = 4,
                           .inputs = tensors,
                           .has_label = 1,
                           .label = 3};
        sl_request_t *out;
        char errstr[256], *id;
        void *buf;
        size_t len;

        (void)state;
        for (int typed = 0; typed < 2; typed++) {
                assert_int_equal(sl_codec_encode_request(codecs[0], &in, typed, &buf, &len), SL_OK);
                /* Every strict prefix fails cleanly; past the id, the id is returned. */
                for (size_t n = 0; n < len; n++) {
                        sl_err_t err = sl_codec_decode_request(codecs[0], buf, n, &out, &id, errstr,
                                                               sizeof(errstr));
                        assert_int_equal(err, n ? SL_ERR_DECODE : SL_ERR_FRAMING);
                        assert_null(out);
                        if (n >= 6)
                                assert_string_equal(id, "req-7");
                        else
                                assert_null(id);
                        free(id);
                }
                /* Trailing bytes. */
                uint8_t *longer = malloc(len + 1);
                memcpy(longer, buf, len);
                longer[len] = 0;
                assert_int_equal(sl_codec_decode_request(codecs[0], longer, len + 1, &out, &id,
                                                         errstr, sizeof(errstr)),
                                 SL_ERR_DECODE);
                ASSERT_CONTAINS(errstr, "1 trailing bytes");
                assert_string_equal(id, "req-7");
                free(id);
                free(longer);
                free(buf);
        }
}

static void test_hostile_lengths(void **state)
{
        wb_t w;

        (void)state;
        /* Declared string length far beyond the value. */
        w.n = 0;
        w_long(&w, 1000000000000);
        w_raw(&w, "abc", 3);
        expect(&w, SL_ERR_DECODE, "id: length 1000000000000 exceeds remaining 3 bytes", NULL);
        /* Negative string length. */
        w.n = 0;
        w_long(&w, -5);
        expect(&w, SL_ERR_DECODE, "id: negative length -5", NULL);
        /* Over-long varint. */
        w.n = 0;
        w_raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
        expect(&w, SL_ERR_DECODE, "id: varint", NULL);
        /* Shape block count 1e12. */
        req_head(&w);
        w_str(&w, "FP32");
        w_long(&w, 1000000000000);
        w_raw(&w, "\x02\x02", 2);
        expect(&w, SL_ERR_DECODE, "inputs[0].shape: block count 1000000000000 exceeds remaining 2",
               "req-1");
        /* Negative block count with an oversized block size. */
        req_head(&w);
        w_str(&w, "FP32");
        w_long(&w, -1);
        w_long(&w, 1000);
        w_long(&w, 2);
        expect(&w, SL_ERR_DECODE, "inputs[0].shape: block size 1000 exceeds remaining", "req-1");
        /* Inputs block count 1e9 of tensors. */
        w.n = 0;
        w_str(&w, "req-1");
        w_str(&w, "mnist");
        w_long(&w, 0);
        w_long(&w, 1000000000);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        expect(&w, SL_ERR_DECODE, "inputs: block count 1000000000 exceeds remaining 8", "req-1");
        /* fp32_contents block count larger than the bytes can hold. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 1);
        w_long(&w, 3);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        expect(&w, SL_ERR_DECODE, "inputs[0].data.fp32_contents: block count 3 exceeds remaining",
               "req-1");
        /* Raw data length beyond the message. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 1 << 30);
        expect(&w, SL_ERR_DECODE, "inputs[0].data: length 1073741824 exceeds remaining 0", "req-1");
        /* Parameters map block count. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 4);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 5000);
        w_raw(&w, "\0\0", 2);
        expect(&w, SL_ERR_DECODE, "parameters: block count 5000 exceeds remaining 2", "req-1");
}

static void test_hostile_unions(void **state)
{
        wb_t w;

        (void)state;
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, 2);
        expect(&w, SL_ERR_DECODE, "model_version: union branch index 2 out of range", "r");
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, -1);
        expect(&w, SL_ERR_DECODE, "model_version: union branch index -1", "r");
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 6);
        expect(&w, SL_ERR_DECODE, "inputs[0].data: union branch index 6 out of range", "req-1");
        /* label = 7 then a stray byte. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 4);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 1);
        w_long(&w, 7);
        w_long(&w, 0);
        expect(&w, SL_ERR_DECODE, "1 trailing bytes", "req-1");
        /* Invalid boolean byte. */
        req_head(&w);
        w_str(&w, "BOOL");
        w_shape(&w, 0, NULL);
        w_long(&w, 5);
        w_long(&w, 1);
        w_raw(&w, "\x02", 1);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_DECODE, "inputs[0].data.bool_contents: boolean byte 0x02", "req-1");
        /* Strings: NUL and invalid UTF-8. */
        w.n = 0;
        w_long(&w, 3);
        w_raw(&w, "a\0b", 3);
        expect(&w, SL_ERR_DECODE, "id: string contains a NUL byte", NULL);
        w.n = 0;
        w_str(&w, "r");
        w_long(&w, 2);
        w_raw(&w, "\xc0\xaf", 2);
        expect(&w, SL_ERR_DECODE, "model_name: string is not valid UTF-8", "r");
}

/* A single tensor with \p datatype, \p shape and raw \p nbytes of zeros. */
static void raw_tensor(wb_t *w, const char *datatype, int ndim, const int64_t *dims, size_t nbytes)
{
        static const uint8_t zeros[256];

        req_head(w);
        w_str(w, datatype);
        w_shape(w, ndim, dims);
        w_long(w, 0);
        w_long(w, (int64_t)nbytes);
        w_raw(w, zeros, nbytes);
        req_tail(w);
}

static void test_bad_tensors(void **state)
{
        static const int64_t d23[] = {2, 3}, dneg[] = {2, -3}, dbig[] = {1LL << 40, 1LL << 40};
        static const int64_t d9[] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, d0[] = {0, 1LL << 62, 4};
        wb_t w;

        (void)state;
        raw_tensor(&w, "FP32", 2, d23, 24);
        expect(&w, SL_OK, NULL, NULL);
        raw_tensor(&w, "FP32", 3, d0, 0); /* empty: a zero dimension wins */
        expect(&w, SL_OK, NULL, NULL);
        raw_tensor(&w, "FLOAT32", 2, d23, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].datatype: unknown datatype \"FLOAT32\"", "req-1");
        raw_tensor(&w, "FP32", 2, dneg, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].shape: [2,-3] has a negative dimension", "req-1");
        raw_tensor(&w, "FP32", 2, dbig, 0);
        expect(&w, SL_ERR_BAD_REQUEST, "overflows", "req-1");
        raw_tensor(&w, "FP32", 9, d9, 4);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].shape: rank 9 exceeds 8", "req-1");
        raw_tensor(&w, "FP32", 2, d23, 23);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].data: 23 bytes, but shape [2,3] of FP32 needs 24",
               "req-1");
        raw_tensor(&w, "INT64", 2, d23, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "needs 48", "req-1");
        req_head(&w);
        w_str(&w, "BOOL");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_str(&w, "\x25");
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].data: BOOL element 0 is byte 0x25, not 0 or 1",
               "req-1");

        /* Typed arrays: count mismatch, wrong branch, range checks. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 2, d23);
        w_long(&w, 1);
        w_long(&w, 2);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "fp32_contents has 2 values, but shape [2,3] needs 6",
               "req-1");
        req_head(&w);
        w_str(&w, "INT64");
        w_shape(&w, 0, NULL);
        w_long(&w, 1);
        w_long(&w, 1);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "typed array fp32_contents does not match datatype INT64",
               "req-1");
        req_head(&w);
        w_str(&w, "UINT8");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, 1);
        w_long(&w, 256);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents[0] = 256 out of range for UINT8", "req-1");
        req_head(&w);
        w_str(&w, "INT16");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, -1); /* negative block count: one item, then the block size */
        w_long(&w, 3);
        w_long(&w, -32769);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents[0] = -32769 out of range for INT16", "req-1");
        req_head(&w);
        w_str(&w, "UINT32");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, 1);
        w_long(&w, 5);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents does not match datatype UINT32", "req-1");
        /* A valid negative-count block decodes. */
        req_head(&w);
        w_str(&w, "INT16");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, -1);
        w_long(&w, 3);
        w_long(&w, -32768);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_OK, NULL, NULL);
        /* Duplicate parameter keys: the last value wins, order kept. */
        raw_tensor(&w, "FP32", 0, NULL, 4);
        w.n -= 2; /* parameters and label */
        w_long(&w, 3);
        w_str(&w, "a");
        w_str(&w, "1");
        w_str(&w, "b");
        w_str(&w, "2");
        w_str(&w, "a");
        w_str(&w, "3");
        w_long(&w, 0);
        w_long(&w, 0);
        {
                sl_request_t *req = NULL;
                char errstr[256];

                assert_int_equal(sl_codec_decode_request(codecs[0], w.b, w.n, &req, NULL, errstr,
                                                         sizeof(errstr)),
                                 SL_OK);
                assert_int_equal(req->n_parameters, 2);
                assert_string_equal(req->param_keys[0], "b");
                assert_string_equal(req->param_values[0], "2");
                assert_string_equal(req->param_keys[1], "a");
                assert_string_equal(req->param_values[1], "3");
                sl_request_destroy(req);
        }
        /* No inputs at all. */
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs: no input tensors", "r");
        /* A semantic error followed by undecodable bytes is a DECODE error. */
        raw_tensor(&w, "FLOAT32", 2, d23, 24);
        w.n -= 2;
        expect(&w, SL_ERR_DECODE, "truncated", "req-1");
}

/* ---- threads: one codec shared by several encoders/decoders -------------- */

static void *codec_worker(void *arg)
{
        sl_codec_t *codec = codecs[(uintptr_t)arg & 1];
        sl_request_t in = {.id = "t", .model_name = "m", .n_inputs = N_TENSORS, .inputs = tensors};
        sl_response_t resp = {.id = "t", .n_outputs = 3, .outputs = tensors};
        uintptr_t failures = 0;

        for (int i = 0; i < 200; i++) {
                sl_response_decoded_t *rd = NULL;
                sl_request_t *out = NULL;
                char errstr[256];
                void *buf = NULL;
                size_t len;

                if (sl_codec_encode_request(codec, &in, i & 1, &buf, &len) ||
                    sl_codec_decode_request(codec, buf, len, &out, NULL, errstr, sizeof(errstr)) ||
                    out->n_inputs != N_TENSORS ||
                    memcmp(out->inputs[0].tensor.data, f32, sizeof(f32)))
                        failures++;
                sl_request_destroy(out);
                free(buf);
                buf = NULL;
                if (sl_codec_encode_response(codec, &resp, &buf, &len) ||
                    sl_codec_decode_response(codec, buf, len, &rd, errstr, sizeof(errstr)) ||
                    rd->n_outputs != 3)
                        failures++;
                sl_response_decoded_destroy(rd);
                free(buf);
        }
        return (void *)failures;
}

static void test_shared_codec_threads(void **state)
{
        pthread_t th[4];

        (void)state;
        for (uintptr_t i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, codec_worker, (void *)i), 0);
        for (int i = 0; i < 4; i++) {
                void *failures = NULL;

                assert_int_equal(pthread_join(th[i], &failures), 0);
                assert_int_equal((uintptr_t)failures, 0);
        }
}

/* ---- schema evolution: writer -> reader resolution ------------------------ */

static sl_codec_t *evo_codec(sl_framing_t framing, const char *const *writers, size_t n,
                             const char *raw_writer, sl_err_t *errp, char *errstr, size_t size)
{
        const char *src = getenv("SL_SOURCE_DIR");
        char dir[1024], own[512] = "";
        sl_codec_params_t p;
        sl_codec_t *codec = NULL;
        sl_err_t err;

        if (!errstr) {
                errstr = own;
                size = sizeof(own);
        }

        snprintf(dir, sizeof(dir), "%s/schemas", src ? src : SL_SOURCE_DIR);
        sl_codec_params_init(&p);
        p.schema_dir = dir;
        p.framing = framing;
        p.request_schema_id = 11;
        p.writer_schemas = writers;
        p.n_writer_schemas = n;
        p.request_writer_schema = raw_writer;
        err = sl_codec_new(&p, &codec, errstr, size);
        if (errp)
                *errp = err;
        else if (err)
                print_error("sl_codec_new: %s\n", errstr);
        return codec;
}

/* A schema in a temporary file; \p path receives its name (caller unlinks). */
static void tmp_schema(const char *json, char *path, size_t size)
{
        int fd;

        snprintf(path, size, "/tmp/sl-evo-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
        close(fd);
}

/* Confluent-frame \p w with schema \p id and decode it with \p codec. */
static sl_err_t evo_decode(const sl_codec_t *codec, int32_t id, const wb_t *w, sl_request_t **reqp,
                           char *errstr, size_t size)
{
        static uint8_t msg[sizeof(((wb_t *)0)->b) + 5];
        size_t len = w->n;

        if (id >= 0) {
                msg[0] = 0;
                msg[1] = (uint8_t)(id >> 24);
                msg[2] = (uint8_t)(id >> 16);
                msg[3] = (uint8_t)(id >> 8);
                msg[4] = (uint8_t)id;
                memcpy(msg + 5, w->b, w->n);
                len += 5;
        } else {
                memcpy(msg, w->b, w->n);
        }
        return sl_codec_decode_request(codec, msg, len, reqp, NULL, errstr, size);
}

#define EXAMPLES SL_SOURCE_DIR "/schemas/examples/"

/* v0 (older): id, model_name, inputs; shape as int; data [Fp32Contents, bytes]. */
static void v0_request(wb_t *w, int typed)
{
        static const float f[2] = {1.5f, -2.0f};

        w->n = 0;
        w_str(w, "v0-1");
        w_str(w, "mnist");
        w_long(w, 1);
        w_str(w, "x");
        w_str(w, "FP32");
        w_shape(w, 2, (const int64_t[]){1, 2});
        w_long(w, typed ? 0 : 1);
        if (typed) {
                w_long(w, 2);
                w_raw(w, f, sizeof(f));
                w_long(w, 0);
        } else {
                w_long(w, sizeof(f));
                w_raw(w, f, sizeof(f));
        }
        w_long(w, 0);
}

/* v2 (newer): adds priority (int) and tenant (string). */
static void v2_request(wb_t *w)
{
        static const float f[2] = {0.25f, 4.0f};

        w->n = 0;
        w_str(w, "v2-1");
        w_str(w, "mnist");
        w_long(w, 1);
        w_str(w, "3");
        w_long(w, 5); /* priority */
        w_long(w, 1);
        w_str(w, "x");
        w_str(w, "FP32");
        w_shape(w, 1, (const int64_t[]){2});
        w_long(w, 0);
        w_long(w, sizeof(f));
        w_raw(w, f, sizeof(f));
        w_long(w, 0);
        w_long(w, 1); /* outputs */
        w_long(w, 1);
        w_str(w, "probs");
        w_long(w, 0);
        w_long(w, 1); /* parameters */
        w_str(w, "k");
        w_str(w, "v");
        w_long(w, 0);
        w_long(w, 1); /* label */
        w_long(w, 4);
        w_str(w, "acme"); /* tenant */
}

static void test_evolution_examples(void **state)
{
        const char *writers[] = {"7=" EXAMPLES "inference_request_v0.avsc",
                                 "8=" EXAMPLES "inference_request_v2.avsc",
                                 "9=" EXAMPLES "inference_request_incompatible.avsc"};
        sl_codec_t *codec = evo_codec(SL_FRAMING_CONFLUENT, writers, 3, NULL, NULL, NULL, 0);
        char errstr[512] = "";
        sl_request_t *req = NULL;
        const float *f;
        wb_t w;

        (void)state;
        assert_non_null(codec);
        for (int typed = 0; typed < 2; typed++) {
                v0_request(&w, typed);
                assert_int_equal(evo_decode(codec, 7, &w, &req, errstr, sizeof(errstr)), SL_OK);
                assert_string_equal(req->id, "v0-1");
                assert_null(req->model_version); /* defaults of the reader */
                assert_int_equal(req->n_outputs, 0);
                assert_int_equal(req->n_parameters, 0);
                assert_int_equal(req->has_label, 0);
                assert_int_equal(req->inputs[0].tensor.ndim, 2); /* int -> long */
                assert_int_equal(req->inputs[0].tensor.dims[1], 2);
                f = req->inputs[0].tensor.data;
                assert_true(f[0] == 1.5f && f[1] == -2.0f);
                sl_request_destroy(req);
        }
        v2_request(&w);
        assert_int_equal(evo_decode(codec, 8, &w, &req, errstr, sizeof(errstr)), SL_OK);
        assert_string_equal(req->model_version, "3");
        assert_int_equal(req->n_outputs, 1);
        assert_string_equal(req->outputs[0], "probs");
        assert_int_equal(req->n_parameters, 1);
        assert_string_equal(req->param_values[0], "v");
        assert_true(req->has_label && req->label == 4);
        f = req->inputs[0].tensor.data;
        assert_true(f[0] == 0.25f && f[1] == 4.0f);
        sl_request_destroy(req);
        /* Every truncation of a resolved request is an error, never a crash. */
        for (size_t n = 0; n < w.n; n++) {
                wb_t t = w;

                t.n = n;
                assert_int_equal(evo_decode(codec, 8, &t, &req, errstr, sizeof(errstr)),
                                 SL_ERR_DECODE);
                assert_null(req);
        }
        /* The incompatible writer: kept, its messages are SCHEMA errors. */
        assert_int_equal(evo_decode(codec, 9, &w, &req, errstr, sizeof(errstr)), SL_ERR_SCHEMA);
        ASSERT_CONTAINS(errstr, "inference_request_incompatible.avsc");
        ASSERT_CONTAINS(errstr, "id: writer type int cannot be read as string");
        /* The request schema id still names the reader schema. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 1, (const int64_t[]){0});
        w_long(&w, 0);
        w_long(&w, 0);
        req_tail(&w);
        assert_int_equal(evo_decode(codec, 11, &w, &req, errstr, sizeof(errstr)), SL_OK);
        sl_request_destroy(req);
        assert_int_equal(evo_decode(codec, 12, &w, &req, errstr, sizeof(errstr)), SL_ERR_FRAMING);
        ASSERT_CONTAINS(errstr,
                        "unknown schema id 12 (InferenceRequest writer schema ids: 7, 8, 9, 11)");
        sl_codec_destroy(codec);
}

/* Promotions, reordered fields, aliases, a skipped enum, and a union branch
 * the reader lacks, in one writer schema (raw framing). */
static const char promo_schema[] =
    "{\"type\":\"record\",\"name\":\"other.InferenceRequest\",\"fields\":["
    "{\"name\":\"label\",\"type\":[\"null\",\"int\"]},"
    "{\"name\":\"id\",\"type\":\"bytes\"},"
    "{\"name\":\"model_name\",\"type\":\"string\"},"
    "{\"name\":\"color\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"R\",\"G\"]}}"
    ","
    "{\"name\":\"inputs\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"InferTensor\",\"fields\":["
    "{\"name\":\"shape\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
    "{\"name\":\"datatype\",\"type\":\"string\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"data\",\"type\":["
    "{\"type\":\"record\",\"name\":\"Fp64Contents\",\"fields\":[{\"name\":\"fp64_contents\","
    "\"type\":{\"type\":\"array\",\"items\":\"float\"}}]},"
    "{\"type\":\"record\",\"name\":\"Fp32Contents\",\"fields\":[{\"name\":\"fp32_contents\","
    "\"type\":{\"type\":\"array\",\"items\":\"int\"}}]},"
    "{\"type\":\"record\",\"name\":\"Fp16Contents\",\"fields\":[{\"name\":\"half\","
    "\"type\":\"bytes\"}]}]}]}}},"
    "{\"name\":\"parameters\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"}}]}";

static void promo_request(wb_t *w, int fp16)
{
        static const float d[2] = {0.5f, 2.0f};

        w->n = 0;
        w_long(w, 1); /* label: int 7 */
        w_long(w, 7);
        w_str(w, "p-1"); /* id as bytes */
        w_str(w, "m");
        w_long(w, 1); /* color G */
        w_long(w, 2);
        w_shape(w, 1, (const int64_t[]){2}); /* tensor a: FP64 from floats */
        w_str(w, "FP64");
        w_str(w, "a");
        w_long(w, fp16 ? 2 : 0);
        if (fp16) {
                w_str(w, "xx");
        } else {
                w_long(w, 2);
                w_raw(w, d, sizeof(d));
                w_long(w, 0);
        }
        w_shape(w, 1, (const int64_t[]){3}); /* tensor b: FP32 from ints */
        w_str(w, "FP32");
        w_str(w, "b");
        w_long(w, 1);
        w_long(w, 3);
        w_long(w, 1);
        w_long(w, -2);
        w_long(w, 3);
        w_long(w, 0);
        w_long(w, 0);
        w_long(w, 1); /* parameters, values as bytes */
        w_str(w, "k");
        w_str(w, "v");
        w_long(w, 0);
}

static void test_evolution_promotions(void **state)
{
        char path[64], errstr[512] = "";
        sl_request_t *req = NULL;
        sl_codec_t *codec;
        const double *d;
        const float *f;
        wb_t w;

        (void)state;
        tmp_schema(promo_schema, path, sizeof(path));
        codec = evo_codec(SL_FRAMING_RAW, NULL, 0, path, NULL, NULL, 0);
        unlink(path);
        assert_non_null(codec);
        promo_request(&w, 0);
        assert_int_equal(evo_decode(codec, -1, &w, &req, errstr, sizeof(errstr)), SL_OK);
        assert_string_equal(req->id, "p-1");
        assert_true(req->has_label && req->label == 7);
        assert_int_equal(req->n_inputs, 2);
        assert_string_equal(req->inputs[0].name, "a");
        assert_int_equal(req->inputs[0].tensor.dtype, SL_DT_DOUBLE);
        d = req->inputs[0].tensor.data;
        assert_true(d[0] == 0.5 && d[1] == 2.0);
        f = req->inputs[1].tensor.data;
        assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 3.0f);
        assert_string_equal(req->param_keys[0], "k");
        assert_string_equal(req->param_values[0], "v");
        sl_request_destroy(req);
        /* A writer union branch with no reader counterpart fails only when used. */
        promo_request(&w, 1);
        assert_int_equal(evo_decode(codec, -1, &w, &req, errstr, sizeof(errstr)), SL_ERR_SCHEMA);
        ASSERT_CONTAINS(errstr, "inputs[0].data: writer union branch 2 (Fp16Contents)");
        ASSERT_CONTAINS(errstr, "matches no branch of the reader's union");
        sl_codec_destroy(codec);
}

static void test_evolution_incompatible(void **state)
{
        static const char no_inputs[] =
            "{\"type\":\"record\",\"name\":\"InferenceRequest\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"model_name\",\"type\":\"string\"}]}";
        char path[64], entry[80], errstr[512] = "";
        const char *writers[1] = {entry};
        sl_request_t *req = NULL;
        sl_codec_t *codec;
        sl_err_t err;
        wb_t w;

        (void)state;
        tmp_schema(no_inputs, path, sizeof(path));
        /* Raw framing: every request would fail, so start-up does. */
        codec = evo_codec(SL_FRAMING_RAW, NULL, 0, path, &err, errstr, sizeof(errstr));
        assert_null(codec);
        assert_int_equal(err, SL_ERR_CONFIG);
        ASSERT_CONTAINS(errstr, path);
        ASSERT_CONTAINS(errstr, "inputs: the writer schema has no such field and the reader's "
                                "field has no default");
        /* Confluent framing: kept, with its reason, for the dead letters. */
        snprintf(entry, sizeof(entry), "5=%s", path);
        codec = evo_codec(SL_FRAMING_CONFLUENT, writers, 1, NULL, &err, errstr, sizeof(errstr));
        assert_non_null(codec);
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        assert_int_equal(evo_decode(codec, 5, &w, &req, errstr, sizeof(errstr)), SL_ERR_SCHEMA);
        ASSERT_CONTAINS(errstr, "inputs: the writer schema has no such field");
        sl_codec_destroy(codec);
        /* Unreadable files and bad entries stop start-up. */
        snprintf(entry, sizeof(entry), "x5=%s", path);
        assert_null(
            evo_codec(SL_FRAMING_CONFLUENT, writers, 1, NULL, &err, errstr, sizeof(errstr)));
        ASSERT_CONTAINS(errstr, "is not \"ID=PATH\"");
        unlink(path);
        snprintf(entry, sizeof(entry), "5=%s", path);
        assert_null(
            evo_codec(SL_FRAMING_CONFLUENT, writers, 1, NULL, &err, errstr, sizeof(errstr)));
        ASSERT_CONTAINS(errstr, path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dtypes),
            cmocka_unit_test(test_request_round_trip),
            cmocka_unit_test(test_request_minimal_and_empty_tensor),
            cmocka_unit_test(test_response_round_trip),
            cmocka_unit_test(test_response_error),
            cmocka_unit_test(test_dead_letter_round_trip),
            cmocka_unit_test(test_metrics_json),
            cmocka_unit_test(test_metrics_evaluation_json),
            cmocka_unit_test(test_metrics_evaluation_compatible),
            cmocka_unit_test(test_framing_errors),
            cmocka_unit_test(test_truncation_everywhere),
            cmocka_unit_test(test_hostile_lengths),
            cmocka_unit_test(test_hostile_unions),
            cmocka_unit_test(test_bad_tensors),
            cmocka_unit_test(test_shared_codec_threads),
            cmocka_unit_test(test_evolution_examples),
            cmocka_unit_test(test_evolution_promotions),
            cmocka_unit_test(test_evolution_incompatible),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
