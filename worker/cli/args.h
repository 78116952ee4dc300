/* Small helpers shared by the sub-commands' option parsing (cli only). */
#ifndef SL_CLI_ARGS_H
#define SL_CLI_ARGS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/**
 * @brief Parse option \p opt's value \p s as an integer in [min, max].
 * @returns 0, or -1 after printing "CMD: OPT: 'S' is not an integer in MIN..MAX".
 */
int sl_cli_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
               int64_t *out);

/**
 * @brief Apply "name=value" librdkafka properties (-X options) to \p conf.
 * @returns 0, or -1 with librdkafka's message (or "-X ...: property name too long") in errstr.
 * @remark Every entry must hold a '=' (checked when the option was parsed).
 */
int sl_cli_kafka_props(rd_kafka_conf_t *conf, char *const *props, size_t n, char *errstr,
                       size_t errstr_size);

#endif /* SL_CLI_ARGS_H */
