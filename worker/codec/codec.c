/*
 * The codec object: schema loading, the request layout the decoder follows,
 * datatypes, framing, and avro-c reads of pre-validated values. Writer
 * schemas of requests and their resolution are in writers.c / resolve.c.
 *
 * Threads: everything in sl_codec_t is written in sl_codec_new() and only
 * read afterwards. avro-c's schemas and generic value classes are shared
 * read-only; their reference counts are atomic (avro/refcount.h, GCC
 * intrinsics), and each encode/decode call creates its own values, readers
 * and writers. avro_strerror() is only read in sl_codec_new() and in the
 * tool-side decoders, where a wrong message is the worst outcome.
 */
#include "codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *rec_file[SL_REC__CNT] = {
    [SL_REC_REQUEST] = "inference_request.avsc", [SL_REC_RESPONSE] = "inference_response.avsc",
    [SL_REC_DEAD_LETTER] = "dead_letter.avsc",   [SL_REC_METRICS] = "worker_metrics.avsc",
    [SL_REC_LABEL] = "inference_label.avsc",
};

static const char *rec_name[SL_REC__CNT] = {
    [SL_REC_REQUEST] = "InferenceRequest", [SL_REC_RESPONSE] = "InferenceResponse",
    [SL_REC_DEAD_LETTER] = "DeadLetter",   [SL_REC_METRICS] = "WorkerMetrics",
    [SL_REC_LABEL] = "InferenceLabel",
};

static const struct {
        const char *v2;
        sl_dtype_t dt;
        size_t size;
} dtypes[] = {
    {"BOOL", SL_DT_BOOL, 1},     {"UINT8", SL_DT_UINT8, 1},   {"UINT16", SL_DT_UINT16, 2},
    {"UINT32", SL_DT_UINT32, 4}, {"UINT64", SL_DT_UINT64, 8}, {"INT8", SL_DT_INT8, 1},
    {"INT16", SL_DT_INT16, 2},   {"INT32", SL_DT_INT32, 4},   {"INT64", SL_DT_INT64, 8},
    {"FP16", SL_DT_FLOAT16, 2},  {"FP32", SL_DT_FLOAT, 4},    {"FP64", SL_DT_DOUBLE, 8},
};

#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

sl_dtype_t sl_codec_dtype_from_v2(const char *name)
{
        if (!name)
                return SL_DT_UNDEFINED;
        for (size_t i = 0; i < N_DTYPES; i++)
                if (!strcmp(dtypes[i].v2, name))
                        return dtypes[i].dt;
        return SL_DT_UNDEFINED;
}

const char *sl_codec_dtype_to_v2(sl_dtype_t dt)
{
        for (size_t i = 0; i < N_DTYPES; i++)
                if (dtypes[i].dt == dt)
                        return dtypes[i].v2;
        return NULL;
}

size_t sl_codec_dtype_size(sl_dtype_t dt)
{
        for (size_t i = 0; i < N_DTYPES; i++)
                if (dtypes[i].dt == dt)
                        return dtypes[i].size;
        return 0;
}

int sl_codec_shape_bytes(const int64_t *dims, int ndim, sl_dtype_t dt, int64_t *numelp,
                         size_t *nbytesp)
{
        size_t esize = sl_codec_dtype_size(dt);
        int64_t numel = 1;
        int zero = 0;

        for (int i = 0; i < ndim; i++) {
                if (dims[i] < 0)
                        return -1;
                if (dims[i] == 0)
                        zero = 1;
        }
        /* A zero dimension makes the tensor empty whatever the others say. */
        if (zero) {
                *numelp = 0;
                *nbytesp = 0;
                return 0;
        }
        for (int i = 0; i < ndim; i++) {
                if (numel > INT64_MAX / dims[i])
                        return -1;
                numel *= dims[i];
        }
        if (esize && (uint64_t)numel > SIZE_MAX / esize)
                return -1;
        *numelp = numel;
        *nbytesp = (size_t)numel * esize;
        return 0;
}

void sl_codec_params_init(sl_codec_params_t *params)
{
        memset(params, 0, sizeof(*params));
        params->framing = SL_FRAMING_RAW;
        params->schema_dir = "schemas";
        /* Same defaults as the worker's codec.*_schema_id settings (conf table). */
        params->request_schema_id = 1;
        params->response_schema_id = 2;
        params->dead_letter_schema_id = 3;
        params->metrics_schema_id = 4;
        params->label_schema_id = 5;
}

size_t sl_codec_header_size(const sl_codec_t *codec)
{
        return codec->framing == SL_FRAMING_CONFLUENT ? 5 : 0;
}

void sl_codec_write_header(const sl_codec_t *codec, sl_rec_t rec, uint8_t *dst)
{
        uint32_t id = (uint32_t)codec->schema_id[rec];

        if (codec->framing != SL_FRAMING_CONFLUENT)
                return;
        dst[0] = 0x00;
        dst[1] = (uint8_t)(id >> 24);
        dst[2] = (uint8_t)(id >> 16);
        dst[3] = (uint8_t)(id >> 8);
        dst[4] = (uint8_t)id;
}

sl_err_t sl_codec_unframe_id(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                             const uint8_t **payloadp, size_t *plenp, int32_t *idp, char *errstr,
                             size_t errstr_size)
{
        const uint8_t *b = buf;

        *idp = -1;
        if (!buf || len == 0) {
                sl_strfmt(errstr, errstr_size, "empty value (no %s record)", rec_name[rec]);
                return SL_ERR_FRAMING;
        }
        if (codec->framing != SL_FRAMING_CONFLUENT) {
                *payloadp = b;
                *plenp = len;
                return SL_OK;
        }
        if (b[0] != 0x00) {
                sl_strfmt(errstr, errstr_size,
                          "magic byte 0x%02x, expected 0x00 (Confluent framing)", b[0]);
                return SL_ERR_FRAMING;
        }
        if (len < 5) {
                sl_strfmt(errstr, errstr_size,
                          "value of %zu bytes is shorter than the 5-byte Confluent header", len);
                return SL_ERR_FRAMING;
        }
        *idp = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) |
                         (uint32_t)b[4]);
        *payloadp = b + 5;
        *plenp = len - 5;
        return SL_OK;
}

sl_err_t sl_codec_unframe(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                          const uint8_t **payloadp, size_t *plenp, char *errstr, size_t errstr_size)
{
        int32_t id;
        sl_err_t err;

        err = sl_codec_unframe_id(codec, rec, buf, len, payloadp, plenp, &id, errstr, errstr_size);
        if (err || codec->framing != SL_FRAMING_CONFLUENT || id == codec->schema_id[rec])
                return err;
        sl_strfmt(errstr, errstr_size, "unknown schema id %d (%s expects id %d)", (int)id,
                  rec_name[rec], (int)codec->schema_id[rec]);
        return SL_ERR_FRAMING;
}

sl_err_t sl_codec_read_generic(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                               avro_value_t *value, char *errstr, size_t errstr_size)
{
        avro_reader_t reader = NULL;
        const uint8_t *payload;
        size_t plen;
        sl_rd_t rd;
        sl_err_t err;

        value->iface = NULL;
        err = sl_codec_unframe(codec, rec, buf, len, &payload, &plen, errstr, errstr_size);
        if (err)
                goto done;
        sl_rd_init(&rd, payload, plen, errstr, errstr_size);
        if (sl_rd_skip(&rd, codec->schema[rec])) {
                err = SL_ERR_DECODE;
                goto done;
        }
        if (sl_rd_left(&rd)) {
                sl_strfmt(errstr, errstr_size, "%zu trailing bytes after the %s record",
                          sl_rd_left(&rd), rec_name[rec]);
                err = SL_ERR_DECODE;
                goto done;
        }
        if (avro_generic_value_new(codec->iface[rec], value)) {
                value->iface = NULL;
                err = SL_ERR_NOMEM;
                goto done;
        }
        reader = avro_reader_memory((const char *)payload, (int64_t)plen);
        if (!reader) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        if (avro_value_read(reader, value)) {
                sl_strfmt(errstr, errstr_size, "%s: avro-c: %s", rec_name[rec], avro_strerror());
                err = SL_ERR_DECODE;
        }
done:
        if (reader)
                avro_reader_free(reader);
        if (err && value->iface) {
                avro_value_decref(value);
                value->iface = NULL;
        }
        return err;
}

/* ---- request layout ------------------------------------------------------ */

static avro_schema_t deref(avro_schema_t s)
{
        while (s && avro_typeof(s) == AVRO_LINK)
                s = avro_schema_link_target(s);
        return s;
}

/* ["null", T] in either order; *null_branch gets the index of "null". */
static int optional_of(avro_schema_t u, avro_type_t t, int *null_branch)
{
        if (avro_typeof(u) != AVRO_UNION || avro_schema_union_size(u) != 2)
                return -1;
        for (int i = 0; i < 2; i++) {
                avro_schema_t a = deref(avro_schema_union_branch(u, i));
                avro_schema_t b = deref(avro_schema_union_branch(u, 1 - i));

                if (avro_typeof(a) == AVRO_NULL && avro_typeof(b) == t) {
                        *null_branch = i;
                        return 0;
                }
        }
        return -1;
}

static int array_of(avro_schema_t s, avro_type_t t)
{
        return avro_typeof(s) == AVRO_ARRAY && avro_typeof(deref(avro_schema_array_items(s))) == t;
}

/* Typed-array branches: a record with one field "<kind>_contents". */
static data_branch_t data_branch_of(avro_schema_t b)
{
        static const struct {
                const char *field;
                avro_type_t items;
                data_branch_t kind;
        } typed[] = {
            {"fp32_contents", AVRO_FLOAT, DB_FP32},   {"fp64_contents", AVRO_DOUBLE, DB_FP64},
            {"int64_contents", AVRO_INT64, DB_INT64}, {"int_contents", AVRO_INT32, DB_INT},
            {"bool_contents", AVRO_BOOLEAN, DB_BOOL},
        };

        if (avro_typeof(b) == AVRO_BYTES)
                return DB_RAW;
        if (avro_typeof(b) != AVRO_RECORD || avro_schema_record_size(b) != 1)
                return DB_UNKNOWN;
        for (size_t i = 0; i < sizeof(typed) / sizeof(typed[0]); i++)
                if (!strcmp(avro_schema_record_field_name(b, 0), typed[i].field) &&
                    array_of(avro_schema_record_field_get_by_index(b, 0), typed[i].items))
                        return typed[i].kind;
        return DB_UNKNOWN;
}

static sl_err_t layout_tensor(sl_request_layout_t *l, avro_schema_t t, const char *file,
                              char *errstr, size_t errstr_size)
{
        unsigned seen = 0;

        l->tensor_schema = t;
        l->n_tensor_fields = avro_schema_record_size(t);
        if (l->n_tensor_fields > SL_CODEC_MAX_FIELDS)
                goto bad;
        for (size_t i = 0; i < l->n_tensor_fields; i++) {
                const char *name = avro_schema_record_field_name(t, (int)i);
                avro_schema_t fs = avro_schema_record_field_get_by_index(t, (int)i);
                tf_field_t k = TF_SKIP;

                l->tensor_field_schema[i] = fs;
                if (!strcmp(name, "name") && avro_typeof(fs) == AVRO_STRING)
                        k = TF_NAME;
                else if (!strcmp(name, "datatype") && avro_typeof(fs) == AVRO_STRING)
                        k = TF_DATATYPE;
                else if (!strcmp(name, "shape") && array_of(fs, AVRO_INT64))
                        k = TF_SHAPE;
                else if (!strcmp(name, "data") && avro_typeof(fs) == AVRO_UNION &&
                         avro_schema_union_size(fs) <= SL_CODEC_MAX_BRANCHES)
                        k = TF_DATA;
                l->tensor_field[i] = k;
                seen |= 1u << k;
                if (k != TF_DATA)
                        continue;
                l->n_data_branches = avro_schema_union_size(fs);
                for (size_t b = 0; b < l->n_data_branches; b++) {
                        avro_schema_t bs = deref(avro_schema_union_branch(fs, (int)b));

                        l->data_branch_schema[b] = bs;
                        l->data_branch[b] = data_branch_of(bs);
                }
        }
        if (seen & (1u << TF_NAME) && seen & (1u << TF_DATATYPE) && seen & (1u << TF_SHAPE) &&
            seen & (1u << TF_DATA)) {
                l->tensor_min_size = sl_avro_min_size(t);
                return SL_OK;
        }
bad:
        sl_strfmt(errstr, errstr_size,
                  "%s: InferTensor needs fields name (string), datatype (string), "
                  "shape (array of long) and data (union)",
                  file);
        return SL_ERR_CONFIG;
}

static sl_err_t layout_request(sl_request_layout_t *l, avro_schema_t r, const char *file,
                               char *errstr, size_t errstr_size)
{
        unsigned seen = 0;

        l->record_schema = r;
        l->n_fields = avro_schema_record_size(r);
        if (l->n_fields > SL_CODEC_MAX_FIELDS) {
                sl_strfmt(errstr, errstr_size, "%s: too many fields", file);
                return SL_ERR_CONFIG;
        }
        for (size_t i = 0; i < l->n_fields; i++) {
                const char *name = avro_schema_record_field_name(r, (int)i);
                avro_schema_t fs = avro_schema_record_field_get_by_index(r, (int)i);
                rq_field_t k = RQ_SKIP;
                int nb = -1, ok = 1;

                if (!strcmp(name, "id"))
                        k = RQ_ID, ok = avro_typeof(fs) == AVRO_STRING;
                else if (!strcmp(name, "model_name"))
                        k = RQ_MODEL_NAME, ok = avro_typeof(fs) == AVRO_STRING;
                else if (!strcmp(name, "model_version"))
                        k = RQ_MODEL_VERSION, ok = !optional_of(fs, AVRO_STRING, &nb);
                else if (!strcmp(name, "inputs"))
                        k = RQ_INPUTS, ok = array_of(fs, AVRO_RECORD);
                else if (!strcmp(name, "outputs"))
                        k = RQ_OUTPUTS,
                        ok = !optional_of(fs, AVRO_ARRAY, &nb) &&
                             array_of(deref(avro_schema_union_branch(fs, 1 - nb)), AVRO_STRING);
                else if (!strcmp(name, "parameters"))
                        k = RQ_PARAMETERS,
                        ok = avro_typeof(fs) == AVRO_MAP &&
                             avro_typeof(avro_schema_map_values(fs)) == AVRO_STRING;
                else if (!strcmp(name, "label"))
                        k = RQ_LABEL, ok = !optional_of(fs, AVRO_INT64, &nb);
                if (!ok) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: InferenceRequest field \"%s\" has a type the "
                                  "decoder does not know",
                                  file, name);
                        return SL_ERR_CONFIG;
                }
                l->field[i] = k;
                l->field_schema[i] = fs;
                l->null_branch[i] = nb;
                seen |= 1u << k;
                if (k == RQ_INPUTS) {
                        sl_err_t err = layout_tensor(l, deref(avro_schema_array_items(fs)), file,
                                                     errstr, errstr_size);
                        if (err)
                                return err;
                }
        }
        if (!(seen & (1u << RQ_ID)) || !(seen & (1u << RQ_MODEL_NAME)) ||
            !(seen & (1u << RQ_INPUTS))) {
                sl_strfmt(errstr, errstr_size,
                          "%s: InferenceRequest needs fields id, model_name and inputs", file);
                return SL_ERR_CONFIG;
        }
        return SL_OK;
}

/* ---- new / destroy -------------------------------------------------------- */

static sl_err_t load_schema(sl_codec_t *codec, const char *dir, sl_rec_t rec, char *errstr,
                            size_t errstr_size)
{
        char path[1024], ferr[512];
        json_error_t jerr;
        char *json = NULL;
        size_t len = 0;
        sl_err_t err;

        sl_strfmt(path, sizeof(path), "%s/%s", dir, rec_file[rec]);
        err = sl_file_read(path, &json, &len, ferr, sizeof(ferr));
        if (err) {
                sl_strfmt(errstr, errstr_size, "%s", ferr); /* ferr names path */
                goto done;
        }
        if (avro_schema_from_json_length(json, len, &codec->schema[rec])) {
                codec->schema[rec] = NULL;
                sl_strfmt(errstr, errstr_size, "%s: avro-c: %s", path, avro_strerror());
                err = SL_ERR_CONFIG;
                goto done;
        }
        if (avro_typeof(codec->schema[rec]) != AVRO_RECORD ||
            strcmp(avro_schema_name(codec->schema[rec]), rec_name[rec])) {
                sl_strfmt(errstr, errstr_size, "%s: expected the record %s", path, rec_name[rec]);
                err = SL_ERR_CONFIG;
                goto done;
        }
        codec->iface[rec] = avro_generic_class_from_schema(codec->schema[rec]);
        if (!codec->iface[rec]) {
                sl_strfmt(errstr, errstr_size, "%s: avro-c: %s", path, avro_strerror());
                err = SL_ERR_CONFIG;
                goto done;
        }
        if (rec != SL_REC_REQUEST)
                goto done;
        err = layout_request(&codec->rq, codec->schema[rec], path, errstr, errstr_size);
        /* Defaults and aliases for resolving writer schemas (resolve.c),
         * which avro-c does not keep. avro-c has just read the same text with
         * the same jansson, so this fails only on low memory. Bounded: jansson
         * limits nesting itself (JSON_PARSER_MAX_DEPTH, 2048). JSON_DECODE_ANY
         * as avro-c; JSON_ALLOW_NUL because a bytes default may spell byte 0
         * "\u0000" (avro-c 1.11 refuses such files earlier, later ones may not). */
        if (!err &&
            !(codec->rq_json = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr))) {
                sl_strfmt(errstr, errstr_size, "%s: line %d, column %d: %s", path, jerr.line,
                          jerr.column, jerr.text);
                err = SL_ERR_CONFIG;
        }
done:
        free(json);
        return err;
}

/* Encode one empty record of each kind so that a schema the encoders do not
 * fit fails at startup rather than on the first message. */
static sl_err_t probe_encoders(const sl_codec_t *codec, char *errstr, size_t errstr_size)
{
        static const sl_named_tensor_t t = {
            .name = "t", .tensor = {.dtype = SL_DT_FLOAT, .ndim = 1, .dims = {0}}};
        sl_request_t rq = {
            .id = "", .model_name = "", .n_inputs = 1, .inputs = (sl_named_tensor_t *)&t};
        sl_response_t rs = {.error_code = SL_OK};
        sl_dead_letter_t dl = {.error_code = SL_ERR_DECODE};
        /* One class and a one-cell confusion matrix reach every Evaluation field. */
        static const sl_eval_class_t cls = {.index = 0, .label = "c"};
        static const int64_t cm = 0;
        static const sl_eval_report_t ev = {
            .kind = SL_EVAL_CLASSIFICATION,
            .window = {.n_classes = 1, .per_class = &cls, .confusion = &cm, .log_loss_count = 1},
            .total = {.n_classes = 1, .per_class = &cls, .confusion = &cm}};
        static const sl_eval_report_t reg = {.kind = SL_EVAL_REGRESSION, .window = {.count = 1}};
        sl_model_metrics_t mm[3] = {{.labelled = 0}, {.evaluation = &ev}, {.evaluation = &reg}};
        sl_worker_metrics_t wm = {.n_models = 3, .models = mm};
        const char *what = NULL;
        void *buf = NULL;
        size_t len;

        if (sl_codec_encode_request(codec, &rq, 0, &buf, &len))
                what = "inference_request.avsc";
        free(buf);
        buf = NULL;
        if (!what && sl_codec_encode_request(codec, &rq, 1, &buf, &len))
                what = "inference_request.avsc (typed arrays)";
        free(buf);
        buf = NULL;
        if (!what && sl_codec_encode_response(codec, &rs, &buf, &len))
                what = "inference_response.avsc";
        free(buf);
        buf = NULL;
        rs.error_code = SL_ERR_MODEL;
        if (!what && sl_codec_encode_response(codec, &rs, &buf, &len))
                what = "inference_response.avsc (error branch)";
        free(buf);
        buf = NULL;
        if (!what && sl_codec_encode_dead_letter(codec, &dl, &buf, &len))
                what = "dead_letter.avsc";
        free(buf);
        buf = NULL;
        if (!what && sl_codec_encode_metrics(codec, &wm, &buf, &len))
                what = "worker_metrics.avsc";
        free(buf);
        if (!what)
                return SL_OK;
        sl_strfmt(errstr, errstr_size, "%s: schema does not fit the encoder (fields renamed?)",
                  what);
        return SL_ERR_CONFIG;
}

sl_err_t sl_codec_new(const sl_codec_params_t *params, sl_codec_t **codecp, char *errstr,
                      size_t errstr_size)
{
        sl_codec_t *codec = NULL;
        sl_err_t err = SL_OK;

        *codecp = NULL;
        if (!params || !params->schema_dir ||
            (params->framing != SL_FRAMING_RAW && params->framing != SL_FRAMING_CONFLUENT)) {
                sl_strfmt(errstr, errstr_size, "codec: invalid parameters");
                return SL_ERR_INVALID_ARG;
        }
        codec = calloc(1, sizeof(*codec));
        if (!codec)
                return SL_ERR_NOMEM;
        codec->framing = params->framing;
        codec->schema_id[SL_REC_REQUEST] = params->request_schema_id;
        codec->schema_id[SL_REC_RESPONSE] = params->response_schema_id;
        codec->schema_id[SL_REC_DEAD_LETTER] = params->dead_letter_schema_id;
        codec->schema_id[SL_REC_METRICS] = params->metrics_schema_id;
        codec->schema_id[SL_REC_LABEL] = params->label_schema_id;
        for (int r = 0; r < SL_REC__CNT && !err; r++)
                err = load_schema(codec, params->schema_dir, (sl_rec_t)r, errstr, errstr_size);
        if (!err)
                err = probe_encoders(codec, errstr, errstr_size);
        if (!err)
                err = sl_codec_writers_load(codec, params, errstr, errstr_size);
        json_decref(codec->rq_json);
        codec->rq_json = NULL;
        if (err) {
                sl_codec_destroy(codec);
                return err;
        }
        *codecp = codec;
        return SL_OK;
}

void sl_codec_destroy(sl_codec_t *codec)
{
        if (!codec)
                return;
        sl_codec_writers_destroy(codec);
        json_decref(codec->rq_json);
        for (int r = 0; r < SL_REC__CNT; r++) {
                if (codec->iface[r])
                        avro_value_iface_decref(codec->iface[r]);
                if (codec->schema[r])
                        avro_schema_decref(codec->schema[r]);
        }
        free(codec);
}
