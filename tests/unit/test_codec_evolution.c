/* Unit tests of worker/codec: schema evolution (Avro spec, "Schema
 * Resolution"): writer -> reader resolution of older and newer requests,
 * promotions and aliases, incompatible writers, and the compatible addition
 * of ModelMetrics.evaluation. */
#include "codec_fixtures.h"

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
        const char *src = getenv("SL_SOURCE_DIR");
        char path[1024], errstr[256], *new_text = NULL, *old_text, *json = NULL;
        size_t new_len;
        avro_schema_t new_s = NULL, old_s = NULL;
        json_t *new_json, *old_json;
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
        new_json = json_loadb(new_text, new_len, JSON_DECODE_ANY, NULL);
        old_json = json_loadb(old_text, strlen(old_text), JSON_DECODE_ANY, NULL);
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
        json_decref(new_json);
        json_decref(old_json);
        avro_schema_decref(new_s);
        avro_schema_decref(old_s);
        free(old_text);
        free(new_text);
        sl_eval_destroy(cls);
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

/* ---- reader defaults and aliases (Avro spec, "Schema Resolution") --------- */

/* A writer that has only "a" (int), "old_c" (long) and "e2" (enum E2 [X, Z]);
 * every other field of the reader takes its default, encoded as the spec
 * says: bytes/fixed as ISO-8859-1 strings, a union's default for its first
 * branch, longs exactly (beyond 2^53). */
static const char defaults_writer[] =
    "{\"type\":\"record\",\"name\":\"old.R\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"old_c\",\"type\":\"long\"},"
    "{\"name\":\"e2\",\"type\":{\"type\":\"enum\",\"name\":\"E2\",\"symbols\":[\"X\",\"Z\"]}}]}";

static const char defaults_reader[] =
    "{\"type\":\"record\",\"name\":\"R2\",\"namespace\":\"new\",\"aliases\":[\"old.R\"],"
    "\"fields\":["
    "{\"name\":\"a\",\"type\":\"int\"},"
    "{\"name\":\"c\",\"type\":\"long\",\"aliases\":[\"old_c\"]},"
    "{\"name\":\"e2\",\"type\":{\"type\":\"enum\",\"name\":\"E2\",\"symbols\":[\"X\",\"Y\"],"
    "\"default\":\"Y\"}},"
    "{\"name\":\"by\",\"type\":\"bytes\",\"default\":\"\\u00ffA\\u0080\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F2\",\"size\":2},"
    "\"default\":\"\\u00e9z\"},"
    "{\"name\":\"big\",\"type\":\"long\",\"default\":9007199254740993},"
    "{\"name\":\"max\",\"type\":\"long\",\"default\":9223372036854775807},"
    "{\"name\":\"min\",\"type\":\"long\",\"default\":-9223372036854775808},"
    "{\"name\":\"i\",\"type\":\"int\",\"default\":-2147483648},"
    "{\"name\":\"fl\",\"type\":\"float\",\"default\":1},"
    "{\"name\":\"db\",\"type\":\"double\",\"default\":0.1},"
    "{\"name\":\"db2\",\"type\":\"double\",\"default\":-9007199254740993},"
    "{\"name\":\"s\",\"type\":\"string\",\"default\":\"h\\u00e9\\\"\"},"
    "{\"name\":\"b\",\"type\":\"boolean\",\"default\":true},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"u2\",\"type\":[\"long\",\"null\"],\"default\":9007199254740993},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"P\",\"Q\"]},"
    "\"default\":\"Q\"},"
    "{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":\"long\"},\"default\":[1,-2]},"
    "{\"name\":\"none\",\"type\":{\"type\":\"array\",\"items\":\"long\"},\"default\":[]},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"},"
    "\"default\":{\"k\":3,\"j\":4}},"
    "{\"name\":\"rec\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
    "{\"name\":\"x\",\"type\":\"int\",\"default\":5},{\"name\":\"y\",\"type\":\"string\"}]},"
    "\"default\":{\"y\":\"z\"}}]}";

/* Resolve \p writer against \p reader (both schema texts). */
static sl_rplan_t *plan_of(const char *writer, const char *reader, avro_schema_t *ws,
                           avro_schema_t *rs)
{
        json_error_t jerr;
        json_t *json = json_loadb(reader, strlen(reader), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        sl_rplan_t *plan = NULL;

        if (!json)
                print_error("%d:%d: %s\n", jerr.line, jerr.column, jerr.text);
        assert_non_null(json);
        assert_int_equal(avro_schema_from_json_length(writer, strlen(writer), ws), 0);
        assert_int_equal(avro_schema_from_json_length(reader, strlen(reader), rs), 0);
        assert_int_equal(sl_rplan_new(*ws, *rs, json, &plan), SL_OK);
        json_decref(json);
        return plan;
}

static void test_evolution_defaults(void **state)
{
        static const float fl = 1.0f;
        static const double db = 0.1, db2 = -9007199254740992.0;
        avro_schema_t ws = NULL, rs = NULL;
        sl_rplan_t *plan = plan_of(defaults_writer, defaults_reader, &ws, &rs);
        char errstr[256] = "";
        uint8_t *out = NULL;
        size_t out_len = 0;
        wb_t in = {.n = 0}, want = {.n = 0};

        (void)state;
        if (plan->root->kind == RP_ERROR)
                print_error("%s\n", plan->root->msg);
        assert_int_not_equal(plan->root->kind, RP_ERROR);
        w_long(&in, 7);  /* a */
        w_long(&in, -9); /* old_c */
        w_long(&in, 1);  /* e2: Z */
        assert_int_equal(
            sl_rplan_transcode(plan, in.b, in.n, &out, &out_len, errstr, sizeof(errstr)), SL_OK);

        w_long(&want, 7);
        w_long(&want, -9);
        w_long(&want, 1); /* Z is not a reader symbol: the enum's default Y */
        w_long(&want, 3);
        w_raw(&want,
              "\xff"
              "A\x80",
              3);
        w_raw(&want, "\xe9z", 2);
        w_long(&want, INT64_C(9007199254740993));
        w_long(&want, INT64_MAX);
        w_long(&want, INT64_MIN);
        w_long(&want, INT32_MIN);
        w_raw(&want, &fl, 4);
        w_raw(&want, &db, 8);
        w_raw(&want, &db2, 8);
        w_str(&want, "h\xc3\xa9\"");
        w_raw(&want, "\x01", 1);
        w_long(&want, 0); /* u: branch 0, null */
        w_long(&want, 0); /* u2: branch 0, long */
        w_long(&want, INT64_C(9007199254740993));
        w_long(&want, 1); /* e: Q */
        w_long(&want, 2); /* arr */
        w_long(&want, 1);
        w_long(&want, -2);
        w_long(&want, 0);
        w_long(&want, 0); /* none */
        w_long(&want, 2); /* m, in the order of the text */
        w_str(&want, "k");
        w_long(&want, 3);
        w_str(&want, "j");
        w_long(&want, 4);
        w_long(&want, 0);
        w_long(&want, 5); /* rec.x from Inner's own field default */
        w_str(&want, "z");
        assert_int_equal(out_len, want.n);
        assert_memory_equal(out, want.b, want.n);
        free(out);
        sl_rplan_destroy(plan);
        avro_schema_decref(ws);
        avro_schema_decref(rs);
}

/* A bytes default holding U+0000 (the spec allows it; avro-c 1.11 refuses
 * such a file, so the reader schema is parsed here without the default). */
static void test_evolution_nul_default(void **state)
{
        static const char writer[] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}";
        static const char reader[] =
            "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"b\","
            "\"type\":\"bytes\"}]}";
        static const char reader_text[] =
            "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"b\","
            "\"type\":\"bytes\",\"default\":\"\\u0000\\u00ff\\u0000\"}]}";
        avro_schema_t ws = NULL, rs = NULL;
        json_t *json = json_loadb(reader_text, strlen(reader_text), JSON_ALLOW_NUL, NULL);
        sl_rplan_t *plan = NULL;
        char errstr[256] = "";
        uint8_t *out = NULL;
        size_t out_len = 0;

        (void)state;
        assert_non_null(json);
        assert_int_equal(avro_schema_from_json_length(writer, strlen(writer), &ws), 0);
        assert_int_equal(avro_schema_from_json_length(reader, strlen(reader), &rs), 0);
        assert_int_equal(sl_rplan_new(ws, rs, json, &plan), SL_OK);
        assert_int_not_equal(plan->root->kind, RP_ERROR);
        assert_int_equal(sl_rplan_transcode(plan, (const uint8_t *)"", 0, &out, &out_len, errstr,
                                            sizeof(errstr)),
                         SL_OK);
        assert_int_equal(out_len, 4);
        assert_memory_equal(out, "\x06\x00\xff\x00", 4);
        free(out);
        sl_rplan_destroy(plan);
        json_decref(json);
        avro_schema_decref(ws);
        avro_schema_decref(rs);
}

/* Defaults that do not fit the reader field's type make the writer
 * incompatible, naming the field. */
static void test_evolution_bad_defaults(void **state)
{
        static const char *const bad[][2] = {
            {"\"int\"", "2147483648"},
            {"\"int\"", "1.0"},
            {"\"long\"", "1e3"},
            {"\"long\"", "\"1\""},
            {"\"bytes\"", "\"\\u0100\""},
            {"{\"type\":\"fixed\",\"name\":\"F3\",\"size\":3}", "\"ab\""},
            {"[\"null\",\"long\"]", "\"x\""},
            {"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"P\"]}", "\"Q\""},
            {"{\"type\":\"map\",\"values\":\"int\"}", "[1]"},
            {"\"boolean\"", "0"},
        };
        static const char writer[] =
            "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}";

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char reader[512];
                avro_schema_t ws = NULL, rs = NULL;
                sl_rplan_t *plan;

                snprintf(reader, sizeof(reader),
                         "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                         "\"type\":\"int\"},{\"name\":\"d\",\"type\":%s,\"default\":%s}]}",
                         bad[i][0], bad[i][1]);
                plan = plan_of(writer, reader, &ws, &rs);
                if (plan->root->kind != RP_ERROR)
                        print_error("%s default %s resolved\n", bad[i][0], bad[i][1]);
                assert_int_equal(plan->root->kind, RP_ERROR);
                ASSERT_CONTAINS(plan->root->msg, "d: the reader's default does not fit its type");
                sl_rplan_destroy(plan);
                avro_schema_decref(ws);
                avro_schema_decref(rs);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_metrics_evaluation_compatible),
            cmocka_unit_test(test_evolution_examples),
            cmocka_unit_test(test_evolution_promotions),
            cmocka_unit_test(test_evolution_incompatible),
            cmocka_unit_test(test_evolution_defaults),
            cmocka_unit_test(test_evolution_nul_default),
            cmocka_unit_test(test_evolution_bad_defaults),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
