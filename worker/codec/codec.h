/**
 * @file codec.h
 * @brief Avro wire contract of sluice (the .avsc files in schemas/): request decode into
 *        tensors, response / dead-letter / metrics encode, and framing.
 *
 * Framings (per topic, set in config):
 *  - SL_FRAMING_RAW: the value is the Avro binary encoding of one record
 *    written with the configured schema (Avro spec, "Binary Encoding").
 *  - SL_FRAMING_CONFLUENT: magic byte 0x00, 4-byte big-endian schema id,
 *    then the Avro binary record (Confluent Schema Registry wire format).
 *    Schema ids are set in config for now (no registry lookups).
 *
 * Tensors follow the Open Inference Protocol (KServe v2): name, datatype
 * ("FP32", "INT64", ...), shape, and data either as raw little-endian bytes
 * or as a typed array record (Fp32Contents, Int64Contents, ...).
 *
 * Depends on util, on engine.h for tensor types only and on eval.h for the
 * evaluation report type only (nothing of eval is linked).
 */
#ifndef SL_CODEC_H
#define SL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../eval/eval.h"
#include "../util/util.h"

typedef enum {
        SL_FRAMING_RAW = 0,
        SL_FRAMING_CONFLUENT = 1,
} sl_framing_t;

/** @brief Map a KServe v2 datatype name ("FP32") to a dtype; SL_DT_UNDEFINED if unknown. */
sl_dtype_t sl_codec_dtype_from_v2(const char *name);
/** @brief KServe v2 datatype name of \p dt ("FP32"); NULL for types v2 lacks. */
const char *sl_codec_dtype_to_v2(sl_dtype_t dt);

/** @brief A named tensor as carried on the wire. */
typedef struct sl_named_tensor_s {
        char *name;
        sl_tensor_t tensor; /**< data is owned by the enclosing request/response */
} sl_named_tensor_t;

/**
 * @brief A decoded InferenceRequest (schemas/inference_request.avsc).
 * All strings and tensor data are owned by the request (sl_request_destroy()).
 * Tensor data is converted to the dtype named by `datatype`, little-endian,
 * dense row-major, with nbytes checked against shape.
 */
typedef struct sl_request_s {
        char *id;
        char *model_name;
        char *model_version; /**< NULL when absent (latest) */
        size_t n_inputs;
        sl_named_tensor_t *inputs;
        size_t n_outputs; /**< requested output names; 0 = all */
        char **outputs;
        size_t n_parameters;
        char **param_keys;
        char **param_values;
        int has_label;
        int64_t label; /**< ground-truth class index, valid if has_label */
} sl_request_t;

/** @brief Free a request and everything it owns. Accepts NULL. */
void sl_request_destroy(sl_request_t *req);

/** @brief One class of a top-k result. */
typedef struct sl_class_score_s {
        int32_t index;
        const char *label; /**< borrowed; NULL when the model has no labels file */
        float probability;
} sl_class_score_t;

/** @brief Timings of one response, all in microseconds except where named. */
typedef struct sl_timings_s {
        int64_t request_timestamp_ms; /**< Kafka timestamp of the request (epoch ms) */
        int64_t queue_us;             /**< consumed -> batch start */
        int64_t inference_us;         /**< engine run time of its batch */
        int32_t batch_size;           /**< requests in its batch */
} sl_timings_t;

/**
 * @brief Everything needed to encode one InferenceResponse. All pointers are
 *        borrowed for the duration of the encode call.
 *
 * Exactly one of (outputs, error): when \p error_code is SL_OK the result
 * branch InferenceResult is written with \p outputs and \p classes; otherwise
 * the InferenceError branch with sl_err_name(error_code) and error_message.
 */
typedef struct sl_response_s {
        const char *id;
        const char *model_name;
        const char *model_version; /**< version served ("" if none) */
        const char *worker_id;
        size_t n_outputs;
        const sl_named_tensor_t *outputs; /**< written as raw bytes */
        size_t n_classes;
        const sl_class_score_t *classes;
        sl_err_t error_code;
        const char *error_message;
        int has_label;
        int64_t label; /**< echoed ground truth */
        sl_timings_t timings;
} sl_response_t;

/** @brief One Kafka header (borrowed). */
typedef struct sl_header_s {
        const char *key;
        const void *value; /**< may be NULL */
        size_t value_len;
} sl_header_t;

/** @brief Everything needed to encode a DeadLetter (all borrowed). */
typedef struct sl_dead_letter_s {
        const void *key;
        size_t key_len; /**< key NULL = no key */
        const void *value;
        size_t value_len; /**< value NULL = no value */
        size_t n_headers;
        const sl_header_t *headers;
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /**< Kafka timestamp of the original message */
        sl_err_t error_code;
        const char *error_message;
        const char *request_id; /**< NULL when it could not be decoded */
        const char *worker_id;
        int64_t time_ms; /**< when the dead letter was made */
} sl_dead_letter_t;

/** @brief Latency percentiles in microseconds. */
typedef struct sl_percentiles_s {
        int64_t p50_us, p90_us, p99_us, max_us;
} sl_percentiles_t;

/** @brief Per-model counters in a WorkerMetrics record. */
typedef struct sl_model_metrics_s {
        const char *model_name;
        const char *model_version;
        /* window */
        int64_t requests, responses, errors, batches;
        sl_percentiles_t latency;   /**< consume -> response acknowledged */
        sl_percentiles_t inference; /**< engine time per batch */
        double batch_size_mean;
        int32_t batch_size_max;
        int64_t labelled, correct;
        /* since the worker started */
        int64_t requests_total, responses_total, errors_total;
        int64_t labelled_total, correct_total;
        /** ModelMetrics.evaluation: window and total as sl_eval_snapshot()
         *  returns them, or NULL (written as null). Borrowed. */
        const sl_eval_report_t *evaluation;
} sl_model_metrics_t;

/** @brief A WorkerMetrics record (all borrowed). */
typedef struct sl_worker_metrics_s {
        const char *worker_id;
        int64_t window_start_ms, window_end_ms;
        int64_t dead_letters, dead_letters_total;
        int64_t consumer_lag; /**< messages, -1 when unknown */
        int64_t commits_total, rebalances_total, pauses_total;
        int64_t transactions_aborted_total;
        /** dead letters since start by error code: count[e] for sl_err_t e (SL_ERR__CNT entries,
         *  zero entries are left out of the record); NULL = none */
        const int64_t *dead_letters_by_code;
        size_t n_models;
        const sl_model_metrics_t *models;
} sl_worker_metrics_t;

typedef struct sl_codec_s sl_codec_t;

/** @brief Codec settings (plain struct, defaults from sl_codec_params_init()). */
typedef struct sl_codec_params_s {
        sl_framing_t framing;
        int32_t request_schema_id;  /**< Confluent id accepted for requests */
        int32_t response_schema_id; /**< Confluent id written on responses */
        int32_t dead_letter_schema_id;
        int32_t metrics_schema_id;
        int32_t label_schema_id; /**< Confluent id accepted for InferenceLabel */
        const char *schema_dir;  /**< folder holding the .avsc files */
        /**
         * Confluent framing: writer schemas of requests, "ID=PATH" entries
         * (codec.writer_schemas). \p request_schema_id names the reader
         * schema unless an entry maps it. Borrowed for sl_codec_new() only.
         */
        const char *const *writer_schemas;
        size_t n_writer_schemas;
        /** Raw framing: the writer schema file of every request; NULL = the reader schema. */
        const char *request_writer_schema;
} sl_codec_params_t;

void sl_codec_params_init(sl_codec_params_t *params);

/**
 * @brief Parse the schemas in params->schema_dir and prepare encoders, then
 *        load the writer schemas of requests and resolve each against the
 *        reader schema (inference_request.avsc; Avro spec, "Schema
 *        Resolution"): fields matched by name or reader alias, writer-only
 *        fields skipped, reader-only fields from their defaults, promotions
 *        int->long/float/double, long->float/double, float->double,
 *        string<->bytes, unions branch by branch, enums by symbol.
 *
 * Confluent framing: a writer schema that cannot be resolved is kept, with
 * its reason, and logged; requests written with it decode as SL_ERR_SCHEMA.
 * Raw framing: it fails here (SL_ERR_CONFIG naming the file and the field).
 *
 * @returns SL_OK, SL_ERR_IO / SL_ERR_CONFIG (errstr names the file and
 *          avro-c's message or the field at fault). The caller owns *codecp.
 */
sl_err_t sl_codec_new(const sl_codec_params_t *params, sl_codec_t **codecp, char *errstr,
                      size_t errstr_size);
void sl_codec_destroy(sl_codec_t *codec);

/**
 * @brief Decode one Kafka message value into a request.
 *
 * Never crashes and never allocates more than a small multiple of \p len on
 * hostile input: declared lengths and block counts larger than the remaining
 * bytes are rejected before allocation; trailing bytes are an error.
 *
 * The value is first resolved from its writer schema (the Confluent schema
 * id, or the raw framing's writer schema) to the reader schema.
 *
 * @returns SL_OK (*reqp owned by caller); SL_ERR_FRAMING (empty value, wrong
 *          magic byte, unknown schema id); SL_ERR_SCHEMA (the writer schema
 *          cannot be resolved against the reader schema, or the value holds
 *          a union branch or enum symbol the reader cannot resolve; errstr
 *          says which field and why); SL_ERR_DECODE (not a valid
 *          record); SL_ERR_BAD_REQUEST (valid Avro but invalid tensor:
 *          unknown datatype, data length not matching shape); the request id
 *          is then returned in *idp when it could be read (caller frees).
 *          errstr says what is wrong and at which field.
 * @locality any thread; a codec may be shared (it is read-only after new).
 */
sl_err_t sl_codec_decode_request(const sl_codec_t *codec, const void *buf, size_t len,
                                 sl_request_t **reqp, char **idp, char *errstr, size_t errstr_size);

/**
 * @brief Encode a request (used by `sluice produce` and tests).
 * \p typed_arrays selects the typed-array data branch instead of raw bytes.
 * @returns SL_OK with a malloc'd buffer in *bufp (caller frees).
 */
sl_err_t sl_codec_encode_request(const sl_codec_t *codec, const sl_request_t *req, int typed_arrays,
                                 void **bufp, size_t *lenp);

/** @brief Encode an InferenceResponse, framed. Caller frees *bufp. */
sl_err_t sl_codec_encode_response(const sl_codec_t *codec, const sl_response_t *resp, void **bufp,
                                  size_t *lenp);

/**
 * @brief Decoded InferenceResponse, for tools and tests (`sluice collect`).
 * Strings and tensors owned by the struct (sl_response_decoded_destroy()).
 */
typedef struct sl_response_decoded_s {
        char *id, *model_name, *model_version, *worker_id;
        size_t n_outputs;
        sl_named_tensor_t *outputs;
        size_t n_classes;
        int32_t *class_index;
        char **class_label;
        float *class_probability;
        char *error_code; /**< NULL on success */
        char *error_message;
        int has_label;
        int64_t label;
        sl_timings_t timings;
} sl_response_decoded_t;

sl_err_t sl_codec_decode_response(const sl_codec_t *codec, const void *buf, size_t len,
                                  sl_response_decoded_t **respp, char *errstr, size_t errstr_size);
void sl_response_decoded_destroy(sl_response_decoded_t *resp);

/** @brief Encode a DeadLetter, framed. Caller frees *bufp. */
sl_err_t sl_codec_encode_dead_letter(const sl_codec_t *codec, const sl_dead_letter_t *dl,
                                     void **bufp, size_t *lenp);

/** @brief Decode a DeadLetter's error_code, message, source offset (tests/tools). */
sl_err_t sl_codec_decode_dead_letter(const sl_codec_t *codec, const void *buf, size_t len,
                                     char **error_codep, char **error_messagep, char **request_idp,
                                     int64_t *offsetp, char *errstr, size_t errstr_size);

/**
 * @brief Decode an InferenceLabel (schemas/inference_label.avsc), framed.
 * Bounds-checked before avro-c reads it (as every decoder of outside bytes).
 * @param idp        out: the request id (malloc'd, caller frees)
 * @param has_labelp out: 1 when `label` is set (class index in *labelp)
 * @param has_valuep out: 1 when `value` is set (regression truth in *valuep)
 * @returns SL_OK, SL_ERR_FRAMING or SL_ERR_DECODE (errstr says why).
 */
sl_err_t sl_codec_decode_label(const sl_codec_t *codec, const void *buf, size_t len, char **idp,
                               int *has_labelp, int64_t *labelp, int *has_valuep, double *valuep,
                               char *errstr, size_t errstr_size);

/** @brief Encode a WorkerMetrics record, framed. Caller frees *bufp. */
sl_err_t sl_codec_encode_metrics(const sl_codec_t *codec, const sl_worker_metrics_t *m, void **bufp,
                                 size_t *lenp);

/**
 * @brief Decode a WorkerMetrics record into JSON text (avro-c's
 *        avro_value_to_json), for tools and tests. Caller frees *jsonp.
 */
sl_err_t sl_codec_metrics_to_json(const sl_codec_t *codec, const void *buf, size_t len,
                                  char **jsonp, char *errstr, size_t errstr_size);

#endif /* SL_CODEC_H */
