/* Unit tests of worker/codec: round trips of every schema in both framings,
 * framing errors, and one codec shared by several threads. Hostile request
 * bytes are in test_codec_hostile.c, schema evolution in
 * test_codec_evolution.c. Leaks are caught by running the tests under
 * ASan/LSan (SL_SANITIZE=ON). */
#include <pthread.h>

#include "codec_fixtures.h"

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
            cmocka_unit_test(test_framing_errors),
            cmocka_unit_test(test_shared_codec_threads),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
