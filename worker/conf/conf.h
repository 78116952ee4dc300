/**
 * @file conf.h
 * @brief sluice configuration: one libconfig file, validated against one
 *        table of settings (name, type, default, bounds, description) that
 *        also generates the README's config reference.
 *
 * Layout of the file (every group optional; defaults from the table):
 * @code
 * worker:  { id = "w1"; log_level = "info"; models_dir = "models"; ... }
 * batch:   { max_size = 32; max_wait_ms = 5; }
 * topics:  { requests = ["sluice.requests"]; responses = "sluice.responses"; ... }
 * codec:   { framing = "raw"; schema_dir = "schemas"; request_schema_id = 1; ... }
 * kafka:   { bootstrap_servers = "127.0.0.1:9092"; group_id = "sluice"; }
 * kafka_properties = [ "ssl_key=..." ];
 * @endcode
 * `kafka` passes every setting to librdkafka with '_' replaced by '.'
 * (libconfig names cannot contain dots); `kafka_properties` passes
 * "name=value" strings verbatim. Those are validated by the stream module
 * against librdkafka, with the file:line kept here.
 *
 * Errors (unknown setting, wrong type, out of bounds, syntax) stop startup
 * with "FILE:LINE: message".
 *
 * Precedence: table default < file < environment. Every table setting has an
 * environment override named SLUICE_ + its path upper-cased with '.' -> '_'
 * (batch.max_size -> SLUICE_BATCH_MAX_SIZE; topics.requests takes a
 * comma-separated list). It is validated like the file, with
 * "environment SLUICE_BATCH_MAX_SIZE: ..." as the place in errors.
 * librdkafka properties come from SLUICE_KAFKA_<NAME>: the rest of the
 * variable name lower-cased with '_' -> '.' (SLUICE_KAFKA_BOOTSTRAP_SERVERS
 * -> bootstrap.servers); they replace a property of the same name from the
 * file. SLUICE_KAFKA_SERVICE_* and SLUICE_KAFKA_PORT* are ignored: those are
 * the service-link variables Kubernetes injects for a Service named
 * "sluice-kafka", and no librdkafka property is named service.* or port*.
 * An unknown SLUICE_{WORKER,BATCH,TOPICS,CODEC}_* variable (a typo) is logged
 * as a warning with the closest name, not an error, for the same reason.
 *
 * Relative paths (worker.models_dir, codec.schema_dir, codec.writer_schemas,
 * codec.request_writer_schema) are kept as written
 * and so resolve against the worker's working directory, not the config
 * file's directory (the container's WORKDIR; absolute paths avoid surprises).
 * `@include "x.cfg"` resolves against the directory of the config file.
 *
 * Integers: libconfig 1.5 truncates decimal literals wider than 32 bits
 * unless they carry the `L` suffix; sluice re-reads such literals so that
 * e.g. `top_k = 5000000000;` is reported as out of range, not wrapped.
 */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../util/util.h"

#define SL_CONF_MAX_TOPICS 16

/** @brief One librdkafka property with the place it was set. */
typedef struct sl_conf_kafka_prop_s {
        char *name; /**< librdkafka property name ("bootstrap.servers") */
        char *value;
        char *file; /**< config file it came from, or "environment SLUICE_KAFKA_X" */
        int line;   /**< line in that file; 0 when set from the environment */
} sl_conf_kafka_prop_t;

/** @brief The whole validated configuration (plain struct, strings owned). */
typedef struct sl_conf_s {
        /* worker */
        char *worker_id;  /**< default: hostname */
        char *log_level;  /**< err, warning, notice, info, debug */
        char *models_dir; /**< model repository root */
        int top_k;        /**< classes in each response (0 = none) */
        int metrics_interval_ms;
        int shutdown_timeout_ms;    /**< SIGTERM drain budget */
        int reload_interval_ms;     /**< model repository checks; 0 = SIGHUP only */
        int model_memory_budget_mb; /**< 0 = no budget */
        int max_in_flight_messages; /**< consumed, outputs not acknowledged: pause above */
        int max_in_flight_kbytes;   /**< output bytes produced, not acknowledged: pause above */
        size_t n_pass_headers;
        char *pass_headers[SL_CONF_MAX_TOPICS]; /**< request headers copied to responses */
        /* batch */
        int batch_max_size;
        int batch_max_wait_ms;
        /* topics */
        size_t n_request_topics;
        char *request_topics[SL_CONF_MAX_TOPICS];
        size_t n_default_models;
        char *default_models[SL_CONF_MAX_TOPICS]; /**< "TOPIC=MODEL" */
        size_t n_label_topics;
        char *label_topics[SL_CONF_MAX_TOPICS];
        int label_join_max;
        int label_join_max_age_ms;
        char *response_topic;
        char *dead_letter_topic;
        char *metrics_topic;
        /* codec */
        char *framing; /**< "raw" or "confluent" */
        char *schema_dir;
        int request_schema_id;
        int response_schema_id;
        int dead_letter_schema_id;
        int metrics_schema_id;
        int label_schema_id;
        size_t n_writer_schemas;
        char *writer_schemas[SL_CONF_MAX_TOPICS]; /**< "ID=PATH": request writer schemas */
        char *request_writer_schema;              /**< raw framing; NULL = the reader schema */
        /* delivery */
        char *delivery_guarantee; /**< "at_least_once" or "exactly_once" */
        char *delivery_transactional_id;
        int delivery_transaction_interval_ms;
        /* http */
        int http_port; /**< 0 = no HTTP server */
        char *http_bind_address;
        int http_liveness_timeout_ms;
        /* kafka pass-through, in file order */
        size_t n_kafka_props;
        sl_conf_kafka_prop_t *kafka_props;
        char *path; /**< the file loaded ("" for defaults only) */
} sl_conf_t;

/**
 * @brief Fill \p conf with the table's defaults (no file, no environment).
 * @returns SL_OK or SL_ERR_NOMEM (\p conf is then cleaned up).
 * @remark \p conf is overwritten, not freed first.
 */
sl_err_t sl_conf_init_defaults(sl_conf_t *conf);

/**
 * @brief Load and validate \p path over the defaults, then apply the
 *        environment overrides.
 *
 * \p path NULL loads the defaults and the environment only.
 * @returns SL_OK; SL_ERR_IO (unreadable file, errstr "PATH: reason");
 *          SL_ERR_CONFIG with errstr "PATH:LINE: ..." naming the setting at
 *          fault, or "environment SLUICE_X: ..." for an override;
 *          SL_ERR_NOMEM.
 * @remark \p conf is overwritten, not freed first. On success the caller owns
 *         the strings in \p conf (sl_conf_cleanup()). On failure \p conf is
 *         cleaned up.
 * @remark Thread: reads the environment; call before starting threads.
 */
sl_err_t sl_conf_load(sl_conf_t *conf, const char *path, char *errstr, size_t errstr_size);

/** @brief Free what \p conf owns and zero it (a zeroed \p conf is accepted). */
void sl_conf_cleanup(sl_conf_t *conf);

/**
 * @brief Write the settings table as a Markdown table (README's config
 *        reference): setting, type, default, range or allowed values,
 *        environment variable, description; the `kafka` pass-through last.
 */
void sl_conf_write_reference(FILE *fp);

/**
 * @brief Write the effective settings of \p conf, one "name = value" line
 *        each in table order, then the librdkafka properties with the place
 *        they were set. Secret values (sl_conf_kafka_prop_is_secret()) are
 *        written as "***".
 */
void sl_conf_write_effective(const sl_conf_t *conf, FILE *fp);

/**
 * @brief 1 when the value of librdkafka property \p name must not be shown:
 *        its name contains "password", "secret" or "key" (any case).
 */
int sl_conf_kafka_prop_is_secret(const char *name);

/**
 * @brief Place of \p prop for error messages: "FILE:LINE", or
 *        "environment SLUICE_KAFKA_X" when it came from the environment.
 * @returns \p buf.
 */
const char *sl_conf_kafka_prop_where(const sl_conf_kafka_prop_t *prop, char *buf, size_t size);

#endif /* SL_CONF_H */
