/* `sluice inspect MODEL...`: a model's producer, opset, inputs, outputs and operators. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/engine.h"
#include "onnx.pb-c.h"

static void print_value(const char *kind, const sl_value_info_t *vi)
{
        printf("  %s %s: %s [", kind, vi->name, sl_dtype_name(vi->dtype));
        if (vi->ndim < 0)
                printf("?");
        for (int i = 0; i < vi->ndim; i++) {
                if (vi->dims[i] < 0)
                        printf("%s?", i ? "," : "");
                else
                        printf("%s%lld", i ? "," : "", (long long)vi->dims[i]);
        }
        printf("]\n");
}

/* Print "label (N nodes): Op×k ..." for \p n op types in first-seen order. */
static void print_histogram(const char *label, size_t n, const char *(*op_at)(const void *, size_t),
                            const void *ctx)
{
        size_t nu = 0;
        const char **names = calloc(n + 1, sizeof(*names));
        size_t *counts = calloc(n + 1, sizeof(*counts));

        if (!names || !counts) {
                printf("  operators: (out of memory)\n");
                goto done;
        }
        for (size_t i = 0; i < n; i++) {
                const char *op = op_at(ctx, i);
                size_t k;
                for (k = 0; k < nu && strcmp(names[k], op); k++)
                        ;
                if (k == nu)
                        names[nu++] = op;
                counts[k]++;
        }
        printf("  %s (%zu nodes):", label, n);
        for (size_t k = 0; k < nu; k++)
                printf(" %s×%zu", names[k], counts[k]);
        printf("\n");
done:
        free(names);
        free(counts);
}

static const char *model_op_at(const void *m, size_t i)
{
        return sl_model_node_op_type(m, i);
}

static const char *graph_op_at(const void *g, size_t i)
{
        return ((const Onnx__GraphProto *)g)->node[i]->op_type;
}

/* The main graph's operators as the file has them (the loaded model folds and fuses). */
static void print_file_ops(const char *path)
{
        FILE *fp = fopen(path, "rb");
        long len = -1;
        uint8_t *buf = NULL;
        Onnx__ModelProto *mp = NULL;

        if (fp && !fseek(fp, 0, SEEK_END) && (len = ftell(fp)) >= 0 && !fseek(fp, 0, SEEK_SET) &&
            (buf = malloc((size_t)len + 1)) && fread(buf, 1, (size_t)len, fp) == (size_t)len)
                mp = onnx__model_proto__unpack(NULL, (size_t)len, buf);
        if (mp && mp->graph)
                print_histogram("operators in the file", mp->graph->n_node, graph_op_at, mp->graph);
        if (mp)
                onnx__model_proto__free_unpacked(mp, NULL);
        free(buf);
        if (fp)
                fclose(fp);
}

int sl_cmd_inspect(int argc, char **argv)
{
        static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
        char errstr[1024];
        int opt, rc = 0;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                FILE *fp = opt == 'h' ? stdout : stderr;
                fprintf(fp, "usage: sluice inspect MODEL.onnx...\n"
                            "  show producer, opset, inputs, outputs and operators\n");
                return opt == 'h' ? 0 : 2;
        }
        if (optind >= argc) {
                fprintf(stderr, "usage: sluice inspect MODEL.onnx...\n");
                return 2;
        }
        printf("OpenBLAS core: %s\n", sl_engine_blas_core());
        for (int a = optind; a < argc; a++) {
                sl_model_t *m = NULL;
                sl_err_t err = sl_model_load(argv[a], &m, errstr, sizeof(errstr));
                if (err) {
                        fprintf(stderr, "sluice inspect: %s (%s)\n", errstr, sl_err_name(err));
                        rc = 1;
                        continue;
                }
                printf("%s\n  producer: %s\n  opset: %lld\n", argv[a],
                       *sl_model_producer(m) ? sl_model_producer(m) : "(none)",
                       (long long)sl_model_opset(m));
                for (size_t i = 0; i < sl_model_input_count(m); i++)
                        print_value("input", sl_model_input(m, i));
                for (size_t i = 0; i < sl_model_output_count(m); i++)
                        print_value("output", sl_model_output(m, i));
                print_file_ops(argv[a]);
                print_histogram("operators after load-time folding and fusion",
                                sl_model_node_count(m), model_op_at, m);
                sl_model_destroy(m);
        }
        return rc;
}
