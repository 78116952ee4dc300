/*
 * `sluice conformance`: run ONNX backend tests (model.onnx +
 * test_data_set_N/{input_K.pb,output_K.pb}) and compare with the tolerances
 * of ONNX's backend runner (numpy assert_allclose, rtol=1e-3, atol=1e-7) by
 * default; --rtol / --atol change them (the differential test against ONNX
 * Runtime uses rtol 1e-4, atol 1e-6: both engines reorder float sums).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "engine/engine.h"

#define RTOL 1e-3
#define ATOL 1e-7

typedef struct {
        bool verbose;
        double rtol, atol;
        int passed, failed, skipped;
        char **passed_names;
        size_t n_passed_names, cap_passed_names;
} run_t;

static bool is_file(const char *path)
{
        struct stat st;
        return !stat(path, &st) && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
        struct stat st;
        return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static int remember_pass(run_t *r, const char *name)
{
        if (r->n_passed_names == r->cap_passed_names) {
                size_t nc = r->cap_passed_names ? 2 * r->cap_passed_names : 256;
                char **nn = realloc(r->passed_names, nc * sizeof(*nn));
                if (!nn)
                        return -1;
                r->passed_names = nn;
                r->cap_passed_names = nc;
        }
        if (!(r->passed_names[r->n_passed_names] = strdup(name)))
                return -1;
        r->n_passed_names++;
        return 0;
}

static double get_f64(const sl_tensor_t *t, int64_t i)
{
        switch (t->dtype) {
        case SL_DT_FLOAT:
                return ((const float *)t->data)[i];
        case SL_DT_DOUBLE:
                return ((const double *)t->data)[i];
        case SL_DT_UINT8:
        case SL_DT_BOOL:
                return ((const uint8_t *)t->data)[i];
        case SL_DT_INT8:
                return ((const int8_t *)t->data)[i];
        case SL_DT_UINT16:
                return ((const uint16_t *)t->data)[i];
        case SL_DT_INT16:
                return ((const int16_t *)t->data)[i];
        case SL_DT_INT32:
                return ((const int32_t *)t->data)[i];
        case SL_DT_UINT32:
                return ((const uint32_t *)t->data)[i];
        case SL_DT_INT64:
                return (double)((const int64_t *)t->data)[i];
        case SL_DT_UINT64:
                return (double)((const uint64_t *)t->data)[i];
        case SL_DT_FLOAT16:
                return sl_float16_to_double(((const uint16_t *)t->data)[i]);
        case SL_DT_BFLOAT16:
                return sl_bfloat16_to_double(((const uint16_t *)t->data)[i]);
        default:
                return NAN;
        }
}

static void shape_str(const sl_tensor_t *t, char *buf, size_t size)
{
        size_t o = 0;
        o += (size_t)snprintf(buf, size, "[");
        for (int i = 0; i < t->ndim && o < size; i++)
                o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? "," : "",
                                      (long long)t->dims[i]);
        if (o < size)
                snprintf(buf + o, size - o, "]");
}

/* 0 when \p got matches \p want; else a reason with the worst element. */
static int compare(const run_t *r, const sl_tensor_t *got, const sl_tensor_t *want, char *why,
                   size_t why_size)
{
        char a[128], b[128];
        int64_t n, worst = -1;
        double worst_excess = 0;
        bool fl = want->dtype == SL_DT_FLOAT || want->dtype == SL_DT_DOUBLE ||
                  want->dtype == SL_DT_FLOAT16 || want->dtype == SL_DT_BFLOAT16;

        if (got->dtype != want->dtype) {
                sl_strfmt(why, why_size, "type %s, expected %s", sl_dtype_name(got->dtype),
                          sl_dtype_name(want->dtype));
                return -1;
        }
        if (got->ndim != want->ndim ||
            memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)want->ndim)) {
                shape_str(got, a, sizeof(a));
                shape_str(want, b, sizeof(b));
                sl_strfmt(why, why_size, "shape %s, expected %s", a, b);
                return -1;
        }
        n = sl_tensor_numel(want);
        if (want->dtype == SL_DT_STRING) {
                const char *const *g = got->data, *const *w = want->data;
                for (int64_t i = 0; i < n; i++)
                        if (strcmp(g[i], w[i])) {
                                sl_strfmt(why, why_size,
                                          "element #%lld: got \"%.40s\", expected \"%.40s\"",
                                          (long long)i, g[i], w[i]);
                                return -1;
                        }
                return 0;
        }
        for (int64_t i = 0; i < n; i++) {
                double g = get_f64(got, i), w = get_f64(want, i), excess;
                if (fl) {
                        if (isnan(g) && isnan(w))
                                continue;
                        if (isinf(w) && g == w)
                                continue;
                        excess = fabs(g - w) - (r->atol + r->rtol * fabs(w));
                        if (isnan(excess))
                                excess = INFINITY;
                } else {
                        excess = g == w ? -1 : fabs(g - w);
                }
                if (excess > 0 && (worst < 0 || excess > worst_excess)) {
                        worst = i;
                        worst_excess = excess;
                }
        }
        if (worst < 0)
                return 0;
        sl_strfmt(why, why_size,
                  "worst element #%lld: got %.9g, expected %.9g (|diff| %.3g, tolerance %.3g)",
                  (long long)worst, get_f64(got, worst), get_f64(want, worst),
                  fabs(get_f64(got, worst) - get_f64(want, worst)),
                  fl ? r->atol + r->rtol * fabs(get_f64(want, worst)) : 0.0);
        return -1;
}

static int name_filter(const struct dirent *d)
{
        return d->d_name[0] != '.';
}

/* Runs one data set; returns 0 pass, 1 fail, 2 unsupported (reason in why). */
static int run_data_set(const run_t *r, sl_model_t *model, sl_session_t *sess, const char *dir,
                        char *why, size_t why_size)
{
        size_t nin = sl_model_input_count(model), nout = sl_model_output_count(model);
        sl_tensor_t *in = calloc(nin + 1, sizeof(*in)), *out = calloc(nout + 1, sizeof(*out));
        sl_tensor_t want = {0};
        char path[4096], err[1024];
        size_t k;
        int ret = 1;
        sl_err_t e;

        if (!in || !out) {
                sl_strfmt(why, why_size, "out of memory");
                goto done;
        }
        for (k = 0;; k++) {
                sl_strfmt(path, sizeof(path), "%s/input_%zu.pb", dir, k);
                if (!is_file(path))
                        break;
                if (k >= nin) {
                        sl_strfmt(why, why_size, "data set has more inputs than the model (%zu)",
                                  nin);
                        goto done;
                }
                if ((e = sl_tensor_load(path, &in[k], err, sizeof(err)))) {
                        sl_strfmt(why, why_size, "%s", err);
                        ret = e == SL_ERR_UNSUPPORTED ? 2 : 1;
                        goto done;
                }
                /* numpy has no bfloat16: ONNX <= 1.13 wrote such test data as uint16 */
                if (in[k].dtype == SL_DT_UINT16 &&
                    sl_model_input(model, k)->dtype == SL_DT_BFLOAT16)
                        in[k].dtype = SL_DT_BFLOAT16;
        }
        if (k != nin) {
                sl_strfmt(why, why_size, "data set has %zu inputs, model takes %zu", k, nin);
                goto done;
        }
        if ((e = sl_session_run(sess, in, nin, out, nout, err, sizeof(err)))) {
                sl_strfmt(why, why_size, "run: %s", err);
                ret = e == SL_ERR_UNSUPPORTED ? 2 : 1;
                goto done;
        }
        for (k = 0; k < nout; k++) {
                sl_strfmt(path, sizeof(path), "%s/output_%zu.pb", dir, k);
                if (!is_file(path))
                        break;
                if ((e = sl_tensor_load(path, &want, err, sizeof(err)))) {
                        sl_strfmt(why, why_size, "%s", err);
                        ret = e == SL_ERR_UNSUPPORTED ? 2 : 1;
                        goto done;
                }
                if (want.dtype == SL_DT_UINT16 && out[k].dtype == SL_DT_BFLOAT16)
                        want.dtype = SL_DT_BFLOAT16;
                if (compare(r, &out[k], &want, err, sizeof(err))) {
                        sl_strfmt(why, why_size, "output #%zu '%s': %s", k,
                                  sl_model_output(model, k)->name, err);
                        goto done;
                }
                sl_tensor_free(&want);
        }
        ret = 0;
done:
        sl_tensor_free(&want);
        for (k = 0; in && k < nin; k++)
                sl_tensor_free(&in[k]);
        free(in);
        free(out);
        return ret;
}

static void run_test(run_t *r, const char *dir)
{
        const char *name = strrchr(dir, '/');
        char path[4096], why[2048] = "";
        sl_model_t *model = NULL;
        sl_session_t *sess = NULL;
        struct dirent **sets = NULL;
        int nsets = 0, status = 1, ran = 0;
        sl_err_t e;

        name = name && name[1] ? name + 1 : dir;
        sl_strfmt(path, sizeof(path), "%s/model.onnx", dir);
        if ((e = sl_model_load(path, &model, why, sizeof(why)))) {
                status = e == SL_ERR_UNSUPPORTED ? 2 : 1;
                goto done;
        }
        if (sl_session_new(model, &sess)) {
                sl_strfmt(why, sizeof(why), "out of memory");
                goto done;
        }
        if ((nsets = scandir(dir, &sets, name_filter, alphasort)) < 0) {
                sl_strfmt(why, sizeof(why), "cannot list %s", dir);
                goto done;
        }
        status = 0;
        for (int i = 0; i < nsets && status == 0; i++) {
                if (strncmp(sets[i]->d_name, "test_data_set_", 14))
                        continue;
                sl_strfmt(path, sizeof(path), "%s/%s", dir, sets[i]->d_name);
                if (!is_dir(path))
                        continue;
                status = run_data_set(r, model, sess, path, why, sizeof(why));
                ran++;
        }
        if (status == 0 && !ran) {
                sl_strfmt(why, sizeof(why), "no test_data_set_* folder");
                status = 1;
        }
done:
        if (status == 0) {
                r->passed++;
                printf("PASS %s\n", name);
                if (remember_pass(r, name))
                        fprintf(stderr, "sluice conformance: out of memory\n");
        } else if (status == 2) {
                r->skipped++;
                printf("UNSUPPORTED %s: %s\n", name, why);
        } else {
                r->failed++;
                printf("FAIL %s: %s\n", name, why);
        }
        if (r->verbose && model)
                printf("  opset %lld, %zu nodes, %d data set(s)\n",
                       (long long)sl_model_opset(model), sl_model_node_count(model), ran);
        fflush(stdout);
        for (int i = 0; i < nsets; i++)
                free(sets[i]);
        free(sets);
        sl_session_destroy(sess);
        sl_model_destroy(model);
}

static void run_dir(run_t *r, const char *dir)
{
        char path[4096];
        struct dirent **ents = NULL;
        int n;

        sl_strfmt(path, sizeof(path), "%s/model.onnx", dir);
        if (is_file(path)) {
                run_test(r, dir);
                return;
        }
        if ((n = scandir(dir, &ents, name_filter, alphasort)) < 0) {
                printf("FAIL %s: not a test or a folder of tests\n", dir);
                r->failed++;
                return;
        }
        for (int i = 0; i < n; i++) {
                sl_strfmt(path, sizeof(path), "%s/%s/model.onnx", dir, ents[i]->d_name);
                if (is_file(path)) {
                        sl_strfmt(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
                        run_test(r, path);
                }
                free(ents[i]);
        }
        free(ents);
}

static bool has_passed(const run_t *r, const char *name)
{
        for (size_t i = 0; i < r->n_passed_names; i++)
                if (!strcmp(r->passed_names[i], name))
                        return true;
        return false;
}

/* Returns the number of listed tests that did not pass, or -1 if unreadable. */
static int check_expect(const run_t *r, const char *file)
{
        FILE *fp = fopen(file, "r");
        char line[1024];
        int missing = 0;

        if (!fp) {
                fprintf(stderr, "sluice conformance: cannot open %s\n", file);
                return -1;
        }
        while (fgets(line, sizeof(line), fp)) {
                char *s = line, *e;
                while (*s == ' ' || *s == '\t')
                        s++;
                e = s + strlen(s);
                while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
                        *--e = '\0';
                if (!*s || *s == '#')
                        continue;
                if (!has_passed(r, s)) {
                        printf("EXPECTED PASS %s: did not pass\n", s);
                        missing++;
                }
        }
        fclose(fp);
        return missing;
}

/* A finite, non-negative number; 0 or -1. */
static int parse_tol(const char *s, double *out)
{
        char *end;
        double v;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v) || v < 0)
                return -1;
        *out = v;
        return 0;
}

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice conformance [--verbose] [--expect FILE] [--rtol R] [--atol A] "
                    "DIR...\n"
                    "  DIR is one ONNX backend test (model.onnx + test_data_set_N/) or a\n"
                    "  folder of tests. Tolerance: |got - expected| <= A + R*|expected|.\n"
                    "  --expect FILE  exit non-zero iff a test listed in FILE does not pass\n"
                    "  --rtol R       relative tolerance (default 1e-3, as ONNX's backend runner)\n"
                    "  --atol A       absolute tolerance (default 1e-7, as ONNX's backend runner)\n"
                    "  --verbose      print model details per test\n");
}

int sl_cmd_conformance(int argc, char **argv)
{
        static const struct option opts[] = {
            {"verbose", no_argument, NULL, 'v'},    {"expect", required_argument, NULL, 'e'},
            {"rtol", required_argument, NULL, 'r'}, {"atol", required_argument, NULL, 'a'},
            {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
        const char *expect = NULL;
        run_t r = {.rtol = RTOL, .atol = ATOL};
        int opt, rc;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "ve:r:a:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'v':
                        r.verbose = true;
                        break;
                case 'e':
                        expect = optarg;
                        break;
                case 'r':
                case 'a':
                        if (parse_tol(optarg, opt == 'r' ? &r.rtol : &r.atol)) {
                                fprintf(stderr,
                                        "sluice conformance: --%s: '%s' is not a "
                                        "tolerance >= 0\n",
                                        opt == 'r' ? "rtol" : "atol", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        for (int i = optind; i < argc; i++)
                run_dir(&r, argv[i]);
        /* Expectation misses are listed before the summary, which stays the last line. */
        if (expect)
                rc = check_expect(&r, expect) == 0 ? 0 : 1;
        else
                rc = r.failed ? 1 : 0;
        if (!r.passed && !r.failed && !r.skipped) {
                /* A directory of test directories, not the data root above them. */
                fprintf(stderr, "sluice conformance: no tests found (a test is a directory holding "
                                "model.onnx and test_data_set_*/; pass e.g. .../data/node)\n");
                rc = 1;
        }
        if (r.skipped)
                printf("%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped);
        else
                printf("%d passed, %d failed\n", r.passed, r.failed);
        for (size_t i = 0; i < r.n_passed_names; i++)
                free(r.passed_names[i]);
        free(r.passed_names);
        return rc;
}
