/**
 * @file conf_int.h
 * @brief Private to worker/conf: the settings table and the helpers shared
 *        by the file walker (conf.c), the table code (conf_table.c) and the
 *        Kafka pass-through (conf_kafka.c).
 *
 * Every error helper here writes "WHERE: path: message" into errstr, where
 * WHERE is "FILE:LINE" for a file setting or "environment SLUICE_X" for an
 * environment override.
 */
#ifndef SL_CONF_INT_H
#define SL_CONF_INT_H

#include <libconfig.h>

#include "conf.h"

/** Prefix of every environment override. */
#define SL_CONF_ENV_PREFIX       "SLUICE_"
#define SL_CONF_ENV_KAFKA_PREFIX "SLUICE_KAFKA_"

/** Largest "FILE:LINE" / "environment NAME" place string we format. */
#define SL_CONF_WHERE_SIZE 512

typedef enum {
        SL_CONF_T_INT,    /**< int field, bounds min..max */
        SL_CONF_T_STR,    /**< char * field, non-empty; enum when allowed != NULL */
        SL_CONF_T_STRLIST /**< char *[SL_CONF_MAX_TOPICS] + size_t count */
} sl_conf_type_t;

/** One row of the settings table (Redis's static_configs[], librdkafka's rd_kafka_properties[]). */
typedef struct sl_conf_setting_s {
        const char *path; /**< "group.name" as in the file */
        sl_conf_type_t type;
        const char *def;            /**< default as text ("32", "info", "a,b"); NULL: computed */
        const char *def_doc;        /**< default as shown in the reference when def is NULL */
        int64_t min, max;           /**< SL_CONF_T_INT bounds (inclusive) */
        const char *const *allowed; /**< SL_CONF_T_STR enum values, NULL-terminated, or NULL */
        size_t offset;              /**< offsetof(sl_conf_t, field) */
        size_t count_offset;        /**< SL_CONF_T_STRLIST: offsetof the size_t count */
        const char *desc;
} sl_conf_setting_t;

extern const sl_conf_setting_t sl_conf_settings[];
extern const size_t sl_conf_settings_cnt;

/** @returns the row for \p path ("batch.max_size") or NULL. */
const sl_conf_setting_t *sl_conf_setting_find(const char *path);

/** @returns 1 when \p name is the group part of some row ("batch"). */
int sl_conf_is_group(const char *name);

/** @brief "batch.max_size" -> "SLUICE_BATCH_MAX_SIZE" (truncated to \p size). */
void sl_conf_env_name(const char *path, char *buf, size_t size);

/** @brief Validate and store an integer (bounds from the row). */
sl_err_t sl_conf_set_int(sl_conf_t *conf, const sl_conf_setting_t *row, int64_t v,
                         const char *where, char *errstr, size_t errstr_size);

/** @brief Validate (non-empty, enum) and store a copy of \p s. */
sl_err_t sl_conf_set_str(sl_conf_t *conf, const sl_conf_setting_t *row, const char *s,
                         const char *where, char *errstr, size_t errstr_size);

/** @brief Validate (1..SL_CONF_MAX_TOPICS non-empty items) and store copies. */
sl_err_t sl_conf_set_strlist(sl_conf_t *conf, const sl_conf_setting_t *row,
                             const char *const *items, size_t n, const char *where, char *errstr,
                             size_t errstr_size);

/**
 * @brief Set a row from text, as written in a default or an environment
 *        variable: integers in base 10, lists comma-separated.
 */
sl_err_t sl_conf_set_text(sl_conf_t *conf, const sl_conf_setting_t *row, const char *text,
                          const char *where, char *errstr, size_t errstr_size);

/**
 * @brief Name of a file libconfig recorded (\p file, may be NULL) as a path
 *        usable from the working directory: \p path itself, or an @include'd
 *        file placed in \p path's directory. @returns \p file, \p path or \p buf.
 */
const char *sl_conf_file_name(const char *file, const char *path, char *buf, size_t size);

/** @brief "FILE:LINE" of \p s (\p path when libconfig did not record the file). */
const char *sl_conf_where(const config_setting_t *s, const char *path, char *buf, size_t size);

/** @brief Name of a libconfig type for messages ("integer", "list"). */
const char *sl_conf_type_name(int config_type);

/**
 * @brief Integer value of \p s as written in the file.
 *
 * libconfig 1.5 silently truncates a decimal literal that does not fit in
 * 32 bits unless it carries the `L` suffix (5000000000 reads as 705032704),
 * which would let an out-of-range value pass the bounds check. The literal
 * is therefore re-read from the source line; when that fails the value
 * libconfig parsed is returned.
 */
int64_t sl_conf_int_value(const config_setting_t *s, const char *path);

/**
 * @brief Closest known setting to \p name (full path, "batch.max_sise"), or
 *        NULL when nothing is within a small edit distance.
 */
const char *sl_conf_suggest(const char *name);

/**
 * @brief Row whose environment variable is closest to \p var (an exact match
 *        included), or NULL when none is within a small edit distance.
 */
const sl_conf_setting_t *sl_conf_suggest_env(const char *var);

/* conf_kafka.c */

/** @brief Add the settings of the `kafka` group (names '_' -> '.'). */
sl_err_t sl_conf_kafka_group(sl_conf_t *conf, const config_setting_t *grp, const char *path,
                             char *errstr, size_t errstr_size);

/** @brief Add the "name=value" strings of the `kafka_properties` list. */
sl_err_t sl_conf_kafka_properties(sl_conf_t *conf, const config_setting_t *list, const char *path,
                                  char *errstr, size_t errstr_size);

/** @brief Apply SLUICE_KAFKA_* environment variables over the file's properties. */
sl_err_t sl_conf_kafka_env(sl_conf_t *conf, char *errstr, size_t errstr_size);

/** @brief Free the Kafka properties of \p conf. */
void sl_conf_kafka_cleanup(sl_conf_t *conf);

#endif /* SL_CONF_INT_H */
