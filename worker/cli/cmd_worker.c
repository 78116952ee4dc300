/* `sluice worker -c FILE`: serve inference requests from Kafka. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec/codec.h"
#include "conf/conf.h"
#include "repo/repo.h"
#include "stream/stream.h"

static sl_worker_t *the_worker;

static void on_signal(int sig)
{
        if (!the_worker)
                return;
        if (sig == SIGHUP)
                sl_worker_reload(the_worker);
        else
                sl_worker_stop(the_worker);
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice worker -c FILE [--log-level LEVEL]\n"
                "  -c, --config FILE   libconfig file (see `sluice config --reference`)\n"
                "      --log-level L   err, warning, notice, info, debug (overrides the "
                "config)\n"
                "SIGTERM or SIGINT drains in-flight work, commits and exits; SIGHUP reloads the\n"
                "model repository (new and removed version folders) at once.\n");
}

void sl_cli_codec_params(const sl_conf_t *conf, sl_codec_params_t *cp)
{
        cp->framing = !strcmp(conf->framing, "confluent") ? SL_FRAMING_CONFLUENT : SL_FRAMING_RAW;
        cp->schema_dir = conf->schema_dir;
        cp->request_schema_id = conf->request_schema_id;
        cp->response_schema_id = conf->response_schema_id;
        cp->dead_letter_schema_id = conf->dead_letter_schema_id;
        cp->metrics_schema_id = conf->metrics_schema_id;
        cp->label_schema_id = conf->label_schema_id;
        cp->writer_schemas = (const char *const *)conf->writer_schemas;
        cp->n_writer_schemas = conf->n_writer_schemas;
        cp->request_writer_schema = conf->request_writer_schema;
}

int sl_cmd_worker(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *path = NULL, *level = NULL;
        sl_conf_t conf;
        sl_codec_params_t cp;
        sl_codec_t *codec = NULL;
        sl_repo_t *repo = NULL;
        sl_worker_t *w = NULL;
        char errstr[1024];
        struct sigaction sa;
        int c, rc = 1, conf_loaded = 0;
        sl_err_t err;

        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'l':
                        level = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!path || optind != argc) {
                if (!path)
                        fprintf(stderr, "sluice worker: a config file is required (-c FILE)\n\n");
                else
                        fprintf(stderr, "sluice worker: unexpected argument '%s'\n\n",
                                argv[optind]);
                usage(stderr);
                return 2;
        }
        if ((err = sl_conf_load(&conf, path, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sluice: %s\n", errstr);
                return 1;
        }
        conf_loaded = 1;
        if (sl_log_set_level_name(level ? level : conf.log_level)) {
                fprintf(stderr, "sluice: unknown log level '%s'\n", level);
                goto done;
        }
        {
                const char *detected = getenv("SLUICE_BLAS_DETECTED");
                SL_LOG(SL_LOG_NOTICE, "WORKER",
                       "sluice %s starting: config=%s OpenBLAS core=%s%s%s%s", SL_VERSION, path,
                       sl_engine_blas_core(), detected ? " (selected by sluice; detected " : "",
                       detected ? detected : "", detected ? ")" : "");
        }

        sl_codec_params_init(&cp);
        sl_cli_codec_params(&conf, &cp);
        if ((err = sl_codec_new(&cp, &codec, errstr, sizeof(errstr))) ||
            (err = sl_repo_open(conf.models_dir, &repo, errstr, sizeof(errstr)))) {
                SL_LOG(SL_LOG_ERR, "WORKER", "startup failed: %s", errstr);
                goto done;
        }
        for (size_t i = 0; i < sl_repo_count(repo); i++) {
                const sl_repo_model_t *m = sl_repo_get(repo, i);
                SL_LOG(SL_LOG_NOTICE, "MODEL", "loaded %s version %s: %zu nodes, opset %lld",
                       m->name, m->version, sl_model_node_count(m->model),
                       (long long)sl_model_opset(m->model));
        }
        if ((err = sl_worker_new(&conf, repo, codec, &w, errstr, sizeof(errstr)))) {
                SL_LOG(SL_LOG_ERR, "WORKER", "startup failed: %s", errstr);
                goto done;
        }
        the_worker = w;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        err = sl_worker_run(w);
        rc = err ? 1 : 0;
done:
        the_worker = NULL;
        sl_worker_destroy(w);
        sl_repo_destroy(repo);
        sl_codec_destroy(codec);
        if (conf_loaded)
                sl_conf_cleanup(&conf);
        return rc;
}
