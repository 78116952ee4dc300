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
        char *name;  /**< librdkafka property name ("bootstrap.servers") */
        char *value;
        char *file;  /**< config file it came from */
        int line;    /**< line in that file */
} sl_conf_kafka_prop_t;

/** @brief The whole validated configuration (plain struct, strings owned). */
typedef struct sl_conf_s {
        /* worker */
        char *worker_id;        /**< default: hostname */
        char *log_level;        /**< err, warning, notice, info, debug */
        char *models_dir;       /**< model repository root */
        int top_k;              /**< classes in each response (0 = none) */
        int metrics_interval_ms;
        int shutdown_timeout_ms; /**< SIGTERM drain budget */
        /* batch */
        int batch_max_size;
        int batch_max_wait_ms;
        /* topics */
        size_t n_request_topics;
        char *request_topics[SL_CONF_MAX_TOPICS];
        char *response_topic;
        char *dead_letter_topic;
        char *metrics_topic;
        /* codec */
        char *framing;          /**< "raw" or "confluent" */
        char *schema_dir;
        int request_schema_id;
        int response_schema_id;
        int dead_letter_schema_id;
        int metrics_schema_id;
        /* kafka pass-through, in file order */
        size_t n_kafka_props;
        sl_conf_kafka_prop_t *kafka_props;
        char *path;             /**< the file loaded ("" for defaults only) */
} sl_conf_t;

/** @brief Fill \p conf with the table's defaults (no file). */
sl_err_t sl_conf_init_defaults(sl_conf_t *conf);

/**
 * @brief Load and validate \p path over the defaults.
 * @returns SL_OK; SL_ERR_IO (unreadable file); SL_ERR_CONFIG with errstr
 *          "PATH:LINE: ..." naming the setting at fault.
 * @remark On success the caller owns the strings in \p conf (sl_conf_cleanup()).
 *         On failure \p conf is cleaned up.
 */
sl_err_t sl_conf_load(sl_conf_t *conf, const char *path, char *errstr, size_t errstr_size);

/** @brief Free what \p conf owns. */
void sl_conf_cleanup(sl_conf_t *conf);

/** @brief Write the settings table as a Markdown table (README's config reference). */
void sl_conf_write_reference(FILE *fp);

#endif /* SL_CONF_H */
