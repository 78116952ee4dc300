/* Private to `sluice collect` (cmd_collect.c: options, summary and report;
 * cmd_collect_consume.c: reading and decoding the topics into a collect_t). */
#ifndef SL_CLI_COLLECT_H
#define SL_CLI_COLLECT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "codec/codec.h"

typedef struct collect_opts_s {
        const char *bootstrap_servers;
        const char *topic;
        const char *dead_letter_topic; /* NULL = not read */
        const char *group;             /* NULL = a fresh group per run */
        const char *schema_dir;
        const char *labels_file;
        const char *out;
        const char *id_prefix; /* NULL = every response counts */
        int labels_file_given;
        int assign;     /* assign partitions instead of joining a group */
        int64_t expect; /* 0 = not given */
        int64_t timeout_ms;
        int64_t show;
        int json;
        sl_framing_t framing;
        int32_t schema_id;             /* -1 = codec default */
        int32_t dead_letter_schema_id; /* -1 = codec default */
        size_t n_props;
        char **props;
} collect_opts_t;

/* One unique response id (first appearance wins). */
typedef struct collect_entry_s {
        char *id;
        char *error_code;  /* NULL when the response carries a result */
        char *class_label; /* ClassScore.label of the top class, or NULL */
        int32_t predicted; /* -1 when there is no result */
        float probability;
        int has_label;
        int64_t label;
        int64_t request_ts_ms;  /* timings.request_timestamp_ms, <= 0 unknown */
        int64_t response_ts_ms; /* Kafka timestamp of the response, -1 unknown */
} collect_entry_t;

/* A count per error code string. */
typedef struct code_count_s {
        char *code;
        int64_t n;
} code_count_t;

typedef struct code_counts_s {
        code_count_t *v;
        size_t n;
        int64_t total;
} code_counts_t;

typedef struct collect_s {
        collect_entry_t *entries; /* in order of first appearance */
        size_t n, cap;
        size_t *slots; /* open addressing: entry index + 1, 0 = empty */
        size_t n_slots;
        int64_t responses, duplicates; /* decoded responses, repeated ids */
        int64_t undecodable;           /* messages that are not a response */
        int64_t other_ids;             /* responses whose id lacks --id-prefix */
        const char *id_prefix;         /* NULL = every response counts */
        code_counts_t errors;          /* over unique ids */
        code_counts_t dead_letters;    /* over dead-letter records */
} collect_t;

/**
 * @brief A consumer for \p o: a fresh group per run unless --group, offsets
 *        from the earliest and never committed, then the -X properties.
 * @returns the handle, or NULL with the reason in \p errstr.
 */
rd_kafka_t *sl_collect_consumer_new(const collect_opts_t *o, char *errstr, size_t errstr_size);

/**
 * @brief Subscribe to the responses (and dead-letter) topic, or with --assign
 *        assign every partition from its beginning.
 * @returns SL_OK or SL_ERR_KAFKA (errstr names the topic).
 */
sl_err_t sl_collect_start(rd_kafka_t *rk, const collect_opts_t *o, char *errstr,
                          size_t errstr_size);

/**
 * @brief Consume into \p c until --expect unique responses, --timeout-ms of
 *        silence, or \p *stop is set (by a signal handler).
 * @returns 0, or -1 when out of memory (message printed).
 */
int sl_collect_consume(rd_kafka_t *rk, const collect_opts_t *o, const sl_codec_t *codec,
                       const volatile sig_atomic_t *stop, collect_t *c);

/** @brief Frees what \p c holds and zeroes it. */
void sl_collect_cleanup(collect_t *c);

/**
 * @brief Why nothing was read from \p topic: its metadata could not be had (no
 *        broker reachable) or the broker says it does not exist.
 * @returns 1 with the reason in \p why, 0 when the topic exists (it was
 *          simply empty or silent).
 */
int sl_collect_why_empty(rd_kafka_t *rk, const char *topic, char *why, size_t why_size);

#endif /* SL_CLI_COLLECT_H */
