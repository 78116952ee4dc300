/* sluice: entry point; dispatches to the sub-commands of cli.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine/engine.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} commands[] = {
    {"worker", sl_cmd_worker, "join the consumer group and serve inference requests"},
    {"produce", sl_cmd_produce, "send Fashion-MNIST IDX images as requests"},
    {"collect", sl_cmd_collect, "read responses and summarise accuracy, rate, latency"},
    {"predict", sl_cmd_predict, "run a model on IDX images without Kafka"},
    {"inspect", sl_cmd_inspect, "show a model's inputs, outputs, opset and operators"},
    {"conformance", sl_cmd_conformance, "run ONNX backend tests (model.onnx + test_data_set_*)"},
    {"config", sl_cmd_config, "print the configuration reference or check a config file"},
    {"bench", sl_cmd_bench, "time the engine on one model and batch size (JSON)"},
};

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice COMMAND [OPTIONS]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(fp, "  %-12s %s\n", commands[i].name, commands[i].help);
        fprintf(fp, "\n`sluice COMMAND --help` for a command's options; `sluice --version` for the "
                    "version and the OpenBLAS core.\n");
}

/*
 * When OpenBLAS fell back to generic kernels on a CPU with AVX2 / AVX-512,
 * run again with OPENBLAS_CORETYPE set: OpenBLAS reads it only when it
 * initialises, before main (DESIGN.md, "CPU kernels"). Done once; a user's
 * own OPENBLAS_CORETYPE is never overridden. SLUICE_BLAS_DETECTED keeps the
 * detected core for the start-up log.
 */
static void blas_core_select(char **argv)
{
        const char *want = sl_engine_blas_core_preferred();
        if (!want || getenv("SLUICE_BLAS_DETECTED"))
                return;
        setenv("SLUICE_BLAS_DETECTED", sl_engine_blas_core(), 1);
        setenv("OPENBLAS_CORETYPE", want, 1);
        execv("/proc/self/exe", argv);
        /* exec failed: carry on with the generic kernels (slower, same results) */
        unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv)
{
        blas_core_select(argv);
        sl_engine_blas_set_threads(1);
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (!strcmp(argv[1], "--version")) {
                const char *detected = getenv("SLUICE_BLAS_DETECTED");
                printf("sluice %s (OpenBLAS core %s%s%s)\n", SL_VERSION, sl_engine_blas_core(),
                       detected ? ", selected by sluice; detected " : "", detected ? detected : "");
                return 0;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
}
