/* `sluice bench MODEL.onnx`: time the engine alone on one model at one batch
 * size and print every run's wall and thread-CPU time as one JSON object
 * (read by tests/bench/bench_engine.py, which times ONNX Runtime alongside). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "engine/engine.h"

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice bench [OPTIONS] MODEL.onnx\n"
                    "Run one model on random inputs and print per-run times (ms) as JSON.\n\n"
                    "  -b, --batch-size B   size of symbolic first dimensions (default 1)\n"
                    "  -w, --warmup N       untimed runs first (default 10)\n"
                    "  -r, --runs N         timed runs (default 100)\n"
                    "  -h, --help           this help\n"
                    "Other symbolic dimensions are 1. Float inputs are uniform in [0, 1),\n"
                    "integer inputs 0, from a fixed seed.\n");
}

static double clock_ms(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_count(const char *opt, const char *s, int64_t min, int64_t *out)
{
        if (sl_parse_i64(s, out) || *out < min || *out > 100000000) {
                fprintf(stderr, "bench: %s: '%s' is not an integer >= %lld\n", opt, s,
                        (long long)min);
                return -1;
        }
        return 0;
}

/* Random inputs for every model input; symbolic dims 0 -> batch, others -> 1. */
static int make_inputs(const sl_model_t *m, int64_t batch, sl_tensor_t *in, size_t n)
{
        uint32_t seed = 12345;
        for (size_t i = 0; i < n; i++) {
                const sl_value_info_t *vi = sl_model_input(m, i);
                size_t esz;
                int64_t cnt = 1;
                memset(&in[i], 0, sizeof(in[i]));
                in[i].dtype = vi->dtype == SL_DT_UNDEFINED ? SL_DT_FLOAT : vi->dtype;
                if (vi->ndim < 0) {
                        fprintf(stderr, "bench: input '%s' has no declared shape\n", vi->name);
                        return -1;
                }
                in[i].ndim = vi->ndim;
                for (int k = 0; k < vi->ndim; k++) {
                        in[i].dims[k] = vi->dims[k] >= 0 ? vi->dims[k] : (k == 0 ? batch : 1);
                        cnt *= in[i].dims[k];
                }
                esz = sl_dtype_size(in[i].dtype);
                in[i].nbytes = (size_t)cnt * esz;
                if (!(in[i].data = calloc(1, in[i].nbytes ? in[i].nbytes : 1)))
                        return -1;
                if (in[i].dtype == SL_DT_FLOAT)
                        for (int64_t e = 0; e < cnt; e++) {
                                seed = seed * 1664525u + 1013904223u;
                                ((float *)in[i].data)[e] = (float)(seed >> 8) / 16777216.0f;
                        }
        }
        return 0;
}

int sl_cmd_bench(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"batch-size", required_argument, NULL, 'b'},
            {"warmup", required_argument, NULL, 'w'},
            {"runs", required_argument, NULL, 'r'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int64_t batch = 1, warmup = 10, runs = 100;
        sl_model_t *m = NULL;
        sl_session_t *s = NULL;
        sl_tensor_t *in = NULL, *out = NULL;
        double *wall = NULL, *cpu = NULL;
        size_t n_in = 0, n_out = 0;
        char errstr[512];
        sl_err_t err;
        int c, rc = 1;

        optind = 1;
        while ((c = getopt_long(argc, argv, "b:w:r:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (parse_count("--batch-size", optarg, 1, &batch))
                                return 2;
                        break;
                case 'w':
                        if (parse_count("--warmup", optarg, 0, &warmup))
                                return 2;
                        break;
                case 'r':
                        if (parse_count("--runs", optarg, 1, &runs))
                                return 2;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        if ((err = sl_model_load(argv[optind], &m, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench: %s\n", errstr);
                return 1;
        }
        n_in = sl_model_input_count(m);
        n_out = sl_model_output_count(m);
        if (!(in = calloc(n_in + 1, sizeof(*in))) || !(out = calloc(n_out + 1, sizeof(*out))) ||
            !(wall = calloc((size_t)runs, sizeof(double))) ||
            !(cpu = calloc((size_t)runs, sizeof(double))) || make_inputs(m, batch, in, n_in) ||
            sl_session_new(m, &s)) {
                fprintf(stderr, "bench: out of memory or bad input shape\n");
                goto done;
        }
        for (int64_t r = 0; r < warmup + runs; r++) {
                double w0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
                if ((err = sl_session_run(s, in, n_in, out, n_out, errstr, sizeof(errstr)))) {
                        fprintf(stderr, "bench: run failed: %s\n", errstr);
                        goto done;
                }
                if (r >= warmup) {
                        wall[r - warmup] = clock_ms(CLOCK_MONOTONIC) - w0;
                        cpu[r - warmup] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
                }
        }
        printf("{\"engine\": \"sluice\", \"blas_core\": \"%s\", \"batch\": %lld, \"wall_ms\": [",
               sl_engine_blas_core(), (long long)batch);
        for (int64_t r = 0; r < runs; r++)
                printf("%s%.4f", r ? ", " : "", wall[r]);
        printf("], \"cpu_ms\": [");
        for (int64_t r = 0; r < runs; r++)
                printf("%s%.4f", r ? ", " : "", cpu[r]);
        printf("]}\n");
        rc = 0;
done:
        sl_session_destroy(s);
        for (size_t i = 0; in && i < n_in; i++)
                free(in[i].data);
        free(in);
        free(out);
        free(wall);
        free(cpu);
        sl_model_destroy(m);
        return rc;
}
