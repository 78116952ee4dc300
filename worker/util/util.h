/**
 * @file util.h
 * @brief sluice utilities shared by every module: the one error enum, logging,
 *        invariants and monotonic/wall clocks.
 *
 * Depends on nothing but libc. Every other module may include it.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/**
 * @brief The one error code of sluice (0 = SL_OK).
 *
 * Library errors (librdkafka, avro-c, libconfig, protobuf-c) are mapped to
 * these at the module edge; the library's own message goes to errstr.
 * The short names from sl_err_name() are the `error_code` strings of
 * InferenceError and DeadLetter records (schemas/), so they are part of the
 * wire contract: append only, never rename.
 */
typedef enum {
        SL_OK = 0,
        SL_ERR_NOMEM,         /**< allocation failed */
        SL_ERR_INVALID_ARG,   /**< API misuse by the caller */
        SL_ERR_IO,            /**< file or socket error */
        SL_ERR_CONFIG,        /**< invalid configuration (file:line in errstr) */
        SL_ERR_MODEL,         /**< malformed or invalid model file (node in errstr) */
        SL_ERR_UNSUPPORTED,   /**< valid ONNX the engine cannot run (op, attribute, dtype) */
        SL_ERR_SHAPE,         /**< tensor shape does not match what is expected */
        SL_ERR_DATATYPE,      /**< tensor datatype does not match what is expected */
        SL_ERR_FRAMING,       /**< wire framing wrong: magic byte, schema id, empty value */
        SL_ERR_DECODE,        /**< bytes are not a valid Avro record of the schema */
        SL_ERR_UNKNOWN_MODEL, /**< request names a model/version not served */
        SL_ERR_BAD_REQUEST,   /**< decodable request that is semantically invalid */
        SL_ERR_KAFKA,         /**< librdkafka error */
        SL_ERR_TIMEOUT,       /**< operation timed out */
        SL_ERR_INTERNAL,      /**< bug or unexpected state */
        SL_ERR_SCHEMA,        /**< writer schema cannot be resolved against the reader schema */
        SL_ERR__CNT
} sl_err_t;

/** @brief Human-readable description of \p err (static string). */
const char *sl_err2str(sl_err_t err);

/**
 * @brief Stable upper-case name of \p err without prefix ("DECODE",
 *        "UNKNOWN_MODEL"), used as the error code on the wire.
 */
const char *sl_err_name(sl_err_t err);

/** @brief Log levels, syslog numbering (as librdkafka's log levels). */
typedef enum {
        SL_LOG_ERR = 3,
        SL_LOG_WARNING = 4,
        SL_LOG_NOTICE = 5,
        SL_LOG_INFO = 6,
        SL_LOG_DEBUG = 7
} sl_log_level_t;

/** @brief Current log threshold (messages above it are not formatted). */
extern int sl_log_level;

/** @brief Set the threshold from a name ("err".."debug"); returns -1 on unknown name. */
int sl_log_set_level_name(const char *name);

/**
 * @brief Write one log line to stderr:
 *        `ts=2026-11-29T18:00:00.123Z level=info fac=FAC msg="..."`.
 * @locality any thread (one write(2) per line).
 */
void sl_log_write(int level, const char *fac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief Log if \p level passes the threshold; arguments are not evaluated otherwise. */
#define SL_LOG(level, fac, ...)                                                                    \
        do {                                                                                       \
                if ((level) <= sl_log_level)                                                       \
                        sl_log_write((level), (fac), __VA_ARGS__);                                 \
        } while (0)

/** @brief Abort with file:line when an internal invariant is broken (never for bad input). */
#define SL_ASSERT(cond)                                                                            \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        sl_assert_fail(#cond, __FILE__, __LINE__);                                 \
        } while (0)

void sl_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/** @brief Monotonic clock in microseconds. */
int64_t sl_now_us(void);

/** @brief Wall clock (Unix epoch) in milliseconds. */
int64_t sl_wall_ms(void);

/**
 * @brief snprintf into \p dst that never overflows and returns \p dst.
 * Convenience for errstr buffers; NULL or zero-sized \p dst is accepted.
 */
char *sl_strfmt(char *dst, size_t dst_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief Parse a whole string as a base-10 int64 (strtoll with full checks). @returns 0 or -1. */
int sl_parse_i64(const char *s, int64_t *out);

/** @brief Read a whole file into a malloc'd buffer (NUL-terminated, *lenp excludes NUL). */
sl_err_t sl_file_read(const char *path, char **bufp, size_t *lenp, char *errstr,
                      size_t errstr_size);

#endif /* SL_UTIL_H */
