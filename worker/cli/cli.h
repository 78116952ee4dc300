/**
 * @file cli.h
 * @brief Sub-commands of the `sluice` binary. Each takes the arguments after
 *        its own name (argv[0] is the sub-command name, for getopt_long) and
 *        returns the process exit code (0 ok, 1 failure, 2 usage error).
 */
#ifndef SL_CLI_H
#define SL_CLI_H

int sl_cmd_worker(int argc, char **argv);      /* cmd_worker.c */
int sl_cmd_produce(int argc, char **argv);     /* cmd_produce.c */
int sl_cmd_collect(int argc, char **argv);     /* cmd_collect.c */
int sl_cmd_predict(int argc, char **argv);     /* cmd_predict.c */
int sl_cmd_inspect(int argc, char **argv);     /* cmd_inspect.c */
int sl_cmd_conformance(int argc, char **argv); /* cmd_conformance.c */
int sl_cmd_config(int argc, char **argv);      /* cmd_config.c */
int sl_cmd_bench(int argc, char **argv);       /* cmd_bench.c */

struct sl_conf_s;
struct sl_codec_params_s;

/**
 * @brief Fill \p cp (already sl_codec_params_init'ed) from the codec.* settings
 *        of \p conf, as the worker starts its codec; `config --check` builds
 *        the same codec. \p cp borrows \p conf's strings. (cmd_worker.c)
 */
void sl_cli_codec_params(const struct sl_conf_s *conf, struct sl_codec_params_s *cp);

#endif /* SL_CLI_H */
