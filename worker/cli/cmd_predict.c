/* `sluice predict`: run a model of the repository on IDX images without
 * Kafka; prints accuracy and throughput and can write the predictions as
 * CSV in the same id scheme as `sluice produce` (to diff against collect). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "engine/engine.h"
#include "idx.h"
#include "repo/repo.h"

typedef struct predict_opts_s {
        const char *models;
        const char *model;
        const char *model_version;
        const char *images;
        const char *labels;
        const char *out;
        const char *id_prefix;
        int64_t count; /* 0 = every image */
        int64_t batch_size;
        int64_t show;
} predict_opts_t;

/* Top-1 of every image. */
typedef struct predict_result_s {
        int32_t *index;
        float *prob;
        size_t n;
} predict_result_t;

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice predict [OPTIONS]\n"
                "Run a model on IDX images without Kafka.\n\n"
                "      --models DIR       model repository (default models)\n"
                "  -m, --model NAME       model name (default fashion_cnn)\n"
                "      --model-version V  version (default: latest)\n"
                "      --images FILE      IDX3 images (default %s)\n"
                "      --labels FILE      IDX1 labels, \"\" for none (default %s)\n"
                "  -n, --count N          images to run (default: all)\n"
                "      --batch-size B     images per engine run (default 64)\n"
                "      --out FILE         CSV id,predicted_index,probability\n"
                "      --id-prefix STR    id = STR + image index (default img-)\n"
                "      --show N           predictions to print (default 5)\n"
                "  -h, --help             this help\n",
                SL_IDX_DEFAULT_IMAGES, SL_IDX_DEFAULT_LABELS);
}

/* Returns 0 on success, 1 after --help, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, predict_opts_t *o)
{
        enum {
                OPT_MODELS = 256,
                OPT_VERSION,
                OPT_IMAGES,
                OPT_LABELS,
                OPT_BATCH,
                OPT_OUT,
                OPT_ID_PREFIX,
                OPT_SHOW
        };
        static const struct option longopts[] = {
            {"models", required_argument, NULL, OPT_MODELS},
            {"model", required_argument, NULL, 'm'},
            {"model-version", required_argument, NULL, OPT_VERSION},
            {"images", required_argument, NULL, OPT_IMAGES},
            {"labels", required_argument, NULL, OPT_LABELS},
            {"count", required_argument, NULL, 'n'},
            {"batch-size", required_argument, NULL, OPT_BATCH},
            {"out", required_argument, NULL, OPT_OUT},
            {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
            {"show", required_argument, NULL, OPT_SHOW},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int c;

        o->models = "models";
        o->model = "fashion_cnn";
        o->images = SL_IDX_DEFAULT_IMAGES;
        o->labels = SL_IDX_DEFAULT_LABELS;
        o->id_prefix = "img-";
        o->batch_size = 64;
        o->show = 5;

        optind = 1;
        while ((c = getopt_long(argc, argv, "m:n:h", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_MODELS:
                        o->models = optarg;
                        break;
                case 'm':
                        o->model = optarg;
                        break;
                case OPT_VERSION:
                        o->model_version = optarg;
                        break;
                case OPT_IMAGES:
                        o->images = optarg;
                        break;
                case OPT_LABELS:
                        o->labels = optarg;
                        break;
                case 'n':
                        if (sl_cli_int("predict", "--count", optarg, 1, INT32_MAX, &o->count))
                                return 2;
                        break;
                case OPT_BATCH:
                        if (sl_cli_int("predict", "--batch-size", optarg, 1, INT32_MAX,
                                       &o->batch_size))
                                return 2;
                        break;
                case OPT_OUT:
                        o->out = optarg;
                        break;
                case OPT_ID_PREFIX:
                        o->id_prefix = optarg;
                        break;
                case OPT_SHOW:
                        if (sl_cli_int("predict", "--show", optarg, 0, INT32_MAX, &o->show))
                                return 2;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "predict: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        return 0;
}

/* Shape of a batch of \p b images for the model's first input: NCHW
 * [b,1,rows,cols] for a rank-4 input, [b,rows,cols] for rank 3 and
 * [b,rows*cols] for rank 2. A fixed batch dimension overrides \p b. */
static sl_err_t input_shape(const sl_value_info_t *in, const sl_idx_images_t *img, int64_t *b,
                            sl_tensor_t *t, char *errstr, size_t errstr_size)
{
        int ndim = in->ndim < 0 ? 4 : in->ndim;

        if (in->dtype != SL_DT_FLOAT) {
                sl_strfmt(errstr, errstr_size, "model input %s is %s, expected float", in->name,
                          sl_dtype_name(in->dtype));
                return SL_ERR_DATATYPE;
        }
        if (ndim < 2 || ndim > 4) {
                sl_strfmt(errstr, errstr_size,
                          "model input %s has rank %d; images need rank 2, 3 or 4", in->name, ndim);
                return SL_ERR_SHAPE;
        }
        if (in->ndim > 0 && in->dims[0] > 0 && in->dims[0] != *b) {
                fprintf(stderr, "predict: model input %s has a fixed batch size %lld; using it\n",
                        in->name, (long long)in->dims[0]);
                *b = in->dims[0];
        }
        memset(t, 0, sizeof(*t));
        t->dtype = SL_DT_FLOAT;
        t->ndim = ndim;
        t->dims[0] = *b;
        if (ndim == 2) {
                t->dims[1] = (int64_t)(img->rows * img->cols);
        } else {
                t->dims[ndim - 2] = (int64_t)img->rows;
                t->dims[ndim - 1] = (int64_t)img->cols;
                if (ndim == 4)
                        t->dims[1] = 1;
        }
        t->nbytes = (size_t)*b * img->rows * img->cols * sizeof(float);
        return SL_OK;
}

/* Runs every image in batches of \p b (the last one padded with zeros when
 * the batch size is fixed) and keeps the top-1 of each. */
static sl_err_t run_all(const sl_repo_model_t *m, const sl_idx_images_t *img, int64_t *bp,
                        predict_result_t *res, double *secsp, char *errstr, size_t errstr_size)
{
        const sl_value_info_t *in = sl_model_input(m->model, 0);
        size_t npix = img->rows * img->cols, n_out = sl_model_output_count(m->model);
        sl_session_t *session = NULL;
        sl_tensor_t *outs = NULL;
        sl_tensor_t input;
        int fixed = in->ndim > 0 && in->dims[0] > 0;
        int64_t t0, b = *bp;
        sl_err_t err;

        err = input_shape(in, img, &b, &input, errstr, errstr_size);
        *bp = b;
        if (err)
                goto done;
        input.data = calloc((size_t)b * npix, sizeof(float));
        outs = calloc(n_out ? n_out : 1, sizeof(*outs));
        res->index = calloc(img->count, sizeof(*res->index));
        res->prob = calloc(img->count, sizeof(*res->prob));
        if (!input.data || !outs || !res->index || !res->prob) {
                sl_strfmt(errstr, errstr_size, "out of memory");
                err = SL_ERR_NOMEM;
                goto done;
        }
        err = sl_session_new(m->model, &session);
        if (err) {
                sl_strfmt(errstr, errstr_size, "creating a session: %s", sl_err2str(err));
                goto done;
        }
        t0 = sl_now_us();
        for (size_t start = 0; start < img->count; start += (size_t)b) {
                size_t nb = img->count - start < (size_t)b ? img->count - start : (size_t)b;
                size_t n_classes;
                const float *probs;

                for (size_t i = 0; i < nb; i++)
                        sl_idx_image_to_f32(img, start + i, (float *)input.data + i * npix);
                if (fixed)
                        memset((float *)input.data + nb * npix, 0,
                               ((size_t)b - nb) * npix * sizeof(float));
                input.dims[0] = fixed ? b : (int64_t)nb;
                input.nbytes = (size_t)input.dims[0] * npix * sizeof(float);
                err = sl_session_run(session, &input, 1, outs, n_out, errstr, errstr_size);
                if (err)
                        goto done;
                if (n_out < 1 || outs[0].dtype != SL_DT_FLOAT || outs[0].ndim < 1 ||
                    outs[0].dims[0] != input.dims[0]) {
                        sl_strfmt(errstr, errstr_size,
                                  "output 0 of %s is not a float32 [N, classes] tensor", m->name);
                        err = SL_ERR_SHAPE;
                        goto done;
                }
                n_classes = (size_t)(sl_tensor_numel(&outs[0]) / input.dims[0]);
                probs = outs[0].data;
                for (size_t i = 0; i < nb; i++)
                        if (!sl_repo_top_k(m, probs + i * n_classes, n_classes, 1,
                                           &res->index[start + i], &res->prob[start + i]))
                                res->index[start + i] = -1;
        }
        *secsp = (double)(sl_now_us() - t0) / 1e6;
        res->n = img->count;
done:
        sl_session_destroy(session);
        free(outs);
        free(input.data);
        return err;
}

static const char *class_name(const sl_repo_model_t *m, int64_t idx, char *buf, size_t size)
{
        if (idx >= 0 && (size_t)idx < m->n_labels && m->labels)
                return m->labels[idx];
        snprintf(buf, size, "%lld", (long long)idx);
        return buf;
}

static int write_csv(const char *path, const char *prefix, const predict_result_t *res)
{
        FILE *fp = fopen(path, "w");

        if (!fp) {
                fprintf(stderr, "predict: %s: cannot open: %s\n", path, strerror(errno));
                return -1;
        }
        for (size_t i = 0; i < res->n; i++)
                fprintf(fp, "%s%zu,%d,%.6f\n", prefix, i, (int)res->index[i], (double)res->prob[i]);
        if (fclose(fp)) {
                fprintf(stderr, "predict: %s: write failed: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static void report(const predict_opts_t *o, const sl_repo_model_t *m, const sl_idx_labels_t *lab,
                   const predict_result_t *res, int64_t b, double secs)
{
        size_t correct = 0;

        printf("model %s version %s: %zu images, batch size %lld, %.3f s (%.1f images/s)\n",
               m->name, m->version, res->n, (long long)b, secs,
               secs > 0 ? (double)res->n / secs : 0.0);
        if (lab->labels) {
                for (size_t i = 0; i < res->n; i++)
                        correct += res->index[i] == (int32_t)lab->labels[i];
                printf("accuracy %.4f (%zu of %zu)\n", (double)correct / (double)res->n, correct,
                       res->n);
        }
        for (size_t i = 0; i < res->n && (int64_t)i < o->show; i++) {
                char id[64], b1[32], b2[32];

                snprintf(id, sizeof(id), "%s%zu", o->id_prefix, i);
                printf("  %-12s label %-12s predicted %-12s p=%.4f\n", id,
                       lab->labels ? class_name(m, lab->labels[i], b1, sizeof(b1)) : "-",
                       class_name(m, res->index[i], b2, sizeof(b2)), (double)res->prob[i]);
        }
}

int sl_cmd_predict(int argc, char **argv)
{
        predict_opts_t o;
        predict_result_t res;
        sl_idx_images_t img;
        sl_idx_labels_t lab;
        sl_repo_t *repo = NULL;
        const sl_repo_model_t *m;
        char errstr[1024];
        double secs = 0;
        sl_err_t err;
        int rc, ret = 1;

        memset(&o, 0, sizeof(o));
        memset(&res, 0, sizeof(res));
        memset(&img, 0, sizeof(img));
        memset(&lab, 0, sizeof(lab));
        rc = parse_args(argc, argv, &o);
        if (rc) {
                ret = rc == 1 ? 0 : 2;
                goto done;
        }
        err = sl_idx_read_pair(o.images, o.labels, (size_t)o.count, &img, &lab, errstr,
                               sizeof(errstr));
        if (err) {
                fprintf(stderr, "predict: %s\n", errstr);
                goto done;
        }
        if (o.count > (int64_t)img.count)
                fprintf(stderr, "predict: --count %lld: %s holds %zu images; running those\n",
                        (long long)o.count, o.images, img.count);
        err = sl_repo_open_one(o.models, o.model, &repo, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "predict: %s\n", errstr);
                goto done;
        }
        m = sl_repo_find(repo, o.model, o.model_version);
        if (!m) {
                fprintf(stderr, "predict: model %s version %s is not in %s\n", o.model,
                        o.model_version ? o.model_version : "(latest)", o.models);
                goto done;
        }
        if (sl_model_input_count(m->model) != 1) {
                fprintf(stderr, "predict: model %s has %zu inputs; predict feeds one image input\n",
                        o.model, sl_model_input_count(m->model));
                goto done;
        }
        err = run_all(m, &img, &o.batch_size, &res, &secs, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "predict: %s: %s\n", m->name, errstr);
                goto done;
        }
        report(&o, m, &lab, &res, o.batch_size, secs);
        if (o.out && write_csv(o.out, o.id_prefix, &res))
                goto done;
        ret = 0;
done:
        free(res.index);
        free(res.prob);
        sl_repo_destroy(repo);
        sl_idx_images_cleanup(&img);
        sl_idx_labels_cleanup(&lab);
        return ret;
}
