/*
 * sluice config: print the configuration reference (Markdown, generated from
 * the settings table) or check a config file and print the effective
 * settings (file + environment overrides).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "codec/codec.h"
#include "conf/conf.h"
#include "stream/stream.h"

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice config --reference\n"
                    "       sluice config --check FILE\n\n"
                    "  -r, --reference   print the settings reference as a Markdown table\n"
                    "  -c, --check FILE  validate FILE (with SLUICE_* environment overrides; the\n"
                    "                    schemas are loaded and resolved, models are not) and\n"
                    "                    print the effective settings; secrets are masked\n"
                    "  -h, --help        this help\n\n"
                    "exit status: 0 ok, 1 invalid configuration, 2 usage error\n");
}

static int check(const char *path)
{
        sl_conf_t conf;
        sl_codec_params_t cp;
        sl_codec_t *codec = NULL;
        char errstr[1024];
        sl_err_t err;

        if ((err = sl_conf_load(&conf, path, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sluice config: %s\n", errstr);
                return 1;
        }
        /* librdkafka judges its own properties, as the worker's start-up will. */
        if ((err = sl_worker_conf_check(&conf, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sluice config: %s\n", errstr);
                sl_conf_cleanup(&conf);
                return 1;
        }
        /* The schemas: the folder, the writer schemas and their resolution
         * against the reader schemas, as the worker's codec will load them. */
        sl_codec_params_init(&cp);
        sl_cli_codec_params(&conf, &cp);
        if ((err = sl_codec_new(&cp, &codec, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sluice config: %s: %s\n", path, errstr);
                sl_conf_cleanup(&conf);
                return 1;
        }
        sl_codec_destroy(codec);
        printf("# %s: valid; effective settings (default < file < environment)\n", path);
        sl_conf_write_effective(&conf, stdout);
        sl_conf_cleanup(&conf);
        return 0;
}

int sl_cmd_config(int argc, char **argv)
{
        static const struct option opts[] = {{"reference", no_argument, NULL, 'r'},
                                             {"check", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *check_path = NULL;
        int reference = 0, c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "rc:h", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        reference = 1;
                        break;
                case 'c':
                        check_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc || reference == !!check_path) {
                usage(stderr);
                return 2;
        }
        if (reference) {
                sl_conf_write_reference(stdout);
                return 0;
        }
        return check(check_path);
}
