/*
 * Pre-processing of config.cfg's `input:` group (and the `output:` group):
 * parse errors name file and line; identity; uint8 scaling; per-channel
 * mean/std; NHWC -> NCHW element by element; several rows; wire shapes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prep/prep.h"

#define CFG "models/m/config.cfg"

/* Parse \p text (a whole config.cfg) and build the prep of its `input` group. */
static sl_err_t prep_from(const char *text, sl_prep_t **prepp, char *errstr, size_t errstr_size)
{
        config_t cfg;
        const config_setting_t *g;
        sl_err_t err;

        config_init(&cfg);
        if (!config_read_string(&cfg, text))
                fail_msg("libconfig: line %d: %s", config_error_line(&cfg),
                         config_error_text(&cfg));
        g = config_lookup(&cfg, "input");
        assert_non_null(g);
        err = sl_prep_new(g, CFG, prepp, errstr, errstr_size);
        config_destroy(&cfg);
        return err;
}

static sl_prep_t *prep_ok(const char *text)
{
        char errstr[512] = "";
        sl_prep_t *prep = NULL;
        sl_err_t err = prep_from(text, &prep, errstr, sizeof(errstr));
        if (err)
                fail_msg("%s: %s", sl_err2str(err), errstr);
        return prep;
}

static sl_value_info_t input4(sl_dtype_t dt, int64_t c, int64_t h, int64_t w)
{
        sl_value_info_t vi = {.name = "x", .dtype = dt, .ndim = 4, .dims = {-1, c, h, w}};
        return vi;
}

static sl_tensor_t tensor(sl_dtype_t dt, int ndim, const int64_t *dims, void *data)
{
        sl_tensor_t t = {.dtype = dt, .ndim = ndim, .data = data};
        memcpy(t.dims, dims, (size_t)ndim * sizeof(*dims));
        t.nbytes = (size_t)sl_tensor_numel(&t) * sl_dtype_size(dt);
        return t;
}

/* |got - want| <= atol + rtol * |want| everywhere; prints the worst element otherwise. */
static void assert_close(const float *got, const double *want, size_t n)
{
        const double atol = 1e-6, rtol = 1e-6;
        double worst = 0.0;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
                double excess = fabs((double)got[i] - want[i]) - (atol + rtol * fabs(want[i]));
                if (excess > worst || isnan(got[i])) {
                        worst = isnan(got[i]) ? INFINITY : excess;
                        at = i;
                }
        }
        if (worst > 0.0)
                fail_msg("element %zu: got %.9g, want %.9g (atol %g, rtol %g)", at, (double)got[at],
                         want[at], atol, rtol);
}

/* ---- parsing ---- */

static void test_parse_errors_name_file_and_line(void **state)
{
        static const struct {
                const char *text, *want;
        } cases[] = {
            {"input = 5;", CFG ":1: input: expected a group"},
            {"input: {\n  datatype = \"INT8\";\n};",
             CFG ":2: input.datatype: \"INT8\" is not one of \"UINT8\", \"FP32\""},
            {"input: {\n\n  datatype = 8;\n};", CFG ":3: input.datatype: expected a string"},
            {"input: {\n  layout = \"NWHC\";\n};",
             CFG ":2: input.layout: \"NWHC\" is not one of \"NCHW\", \"NHWC\""},
            {"input: {\n  scale = 0;\n};", CFG ":2: input.scale: must be a finite float32"},
            {"input: {\n  scale = 1e39;\n};", CFG ":2: input.scale: must be a finite float32"},
            {"input: {\n  scale = \"1/255\";\n};", CFG ":2: input.scale: expected a number"},
            {"input: {\n  mean = \"0.5\";\n};",
             CFG ":2: input.mean: expected a number or a list of numbers"},
            {"input: {\n  mean = [];\n};", CFG ":2: input.mean: 0 values: expected 1 to"},
            {"input: {\n  mean = (0.5, \"x\");\n};", CFG ":2: input.mean: value 2 is not a number"},
            {"input: {\n  std = [0.2,\n         0.0,\n         0.3];\n};",
             CFG ":3: input.std: value 2 is 0 (std divides)"},
            {"input: {\n  std = 0;\n};", CFG ":2: input.std: is 0 (std divides)"},
            {"input: {\n  mean = [0.1, 0.2, 0.3];\n  std = [0.2, 0.3];\n};",
             CFG ":3: input.std: 2 values, but input.mean has 3"},
            {"input: {\n  scale = 1e30;\n  std = 1e-30;\n};",
             CFG ":3: input: channel 0: scale / std or mean / std overflows float32"},
            {"input: {\n  datatype = \"UINT8\";\n  scal = 0.5;\n};",
             CFG ":3: input: unknown setting 'scal' (known: datatype, layout, scale, mean, std)"},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char errstr[512] = "";
                sl_prep_t *prep = (sl_prep_t *)1;
                assert_int_equal(prep_from(cases[i].text, &prep, errstr, sizeof(errstr)),
                                 SL_ERR_CONFIG);
                assert_null(prep);
                if (strncmp(errstr, cases[i].want, strlen(cases[i].want)))
                        fail_msg("case %zu:\n got  \"%s\"\n want \"%s...\"", i, errstr,
                                 cases[i].want);
        }
}

static void test_check_against_model_input(void **state)
{
        static const struct {
                const char *text;
                sl_value_info_t vi;
                const char *want; /* NULL: accepted */
        } cases[] = {
            {"input: {\n  layout = \"NHWC\";\n};",
             {.name = "x", .dtype = SL_DT_FLOAT, .ndim = 2, .dims = {-1, 784}},
             CFG ":2: input.layout: \"NHWC\" needs a rank-4 [N,C,H,W] input, but input 'x' of "
                 "m/1/model.onnx has shape [-1,784]"},
            {"input: {\n  mean = [0.5, 0.5, 0.5];\n};",
             {.name = "x", .dtype = SL_DT_FLOAT, .ndim = 4, .dims = {-1, 1, 28, 28}},
             CFG ":2: input.mean: 3 values, but input 'x' of m/1/model.onnx has 1 channel "
                 "(dimension 1 of [-1,1,28,28])"},
            {"input: {\n  mean = 0.5;\n  std = [0.2, 0.3];\n};",
             {.name = "x", .dtype = SL_DT_FLOAT, .ndim = 4, .dims = {-1, -1, 8, 8}},
             CFG ":3: input.std: 2 values, but input 'x' of m/1/model.onnx has an undeclared "
                 "number of channels"},
            {"input: {\n  scale = 2.0;\n};",
             {.name = "ids", .dtype = SL_DT_INT64, .ndim = 2, .dims = {-1, 16}},
             CFG ": input: input 'ids' of m/1/model.onnx takes int64; the input group converts "
                 "to float32 only"},
            {"input: {\n  datatype = \"UINT8\";\n};",
             {.name = "x", .dtype = SL_DT_UINT8, .ndim = 2, .dims = {-1, 16}},
             CFG ": input: input 'x' of m/1/model.onnx takes uint8"},
            /* accepted */
            {"input: {};",
             {.name = "ids", .dtype = SL_DT_INT64, .ndim = 2, .dims = {-1, 16}},
             NULL},
            {"input: {\n  mean = [1.0, 2.0];\n  std = [3.0, 4.0];\n};",
             {.name = "x", .dtype = SL_DT_FLOAT, .ndim = 2, .dims = {-1, 2}},
             NULL}, /* per-feature on [N, F] */
            {"input: {\n  datatype = \"UINT8\";\n  layout = \"NHWC\";\n  mean = [1, 2, 3];\n};",
             {.name = "x", .dtype = SL_DT_FLOAT, .ndim = 4, .dims = {-1, 3, -1, -1}},
             NULL},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char errstr[512] = "";
                sl_prep_t *prep = prep_ok(cases[i].text);
                sl_err_t err =
                    sl_prep_check(prep, &cases[i].vi, "m/1/model.onnx", errstr, sizeof(errstr));
                if (!cases[i].want) {
                        if (err)
                                fail_msg("case %zu: %s", i, errstr);
                } else {
                        assert_int_equal(err, SL_ERR_CONFIG);
                        if (strncmp(errstr, cases[i].want, strlen(cases[i].want)))
                                fail_msg("case %zu:\n got  \"%s\"\n want \"%s...\"", i, errstr,
                                         cases[i].want);
                }
                sl_prep_destroy(prep);
        }
        /* NULL is the identity and fits any input */
        assert_int_equal(sl_prep_check(NULL, &cases[3].vi, NULL, NULL, 0), SL_OK);
}

/* ---- conversion ---- */

static void test_identity(void **state)
{
        sl_prep_t *empty = prep_ok("input: {};");
        sl_prep_t *fp32 = prep_ok("input: { datatype = \"FP32\"; scale = 1; mean = 0; std = 1; };");
        const sl_prep_t *preps[] = {NULL, empty, fp32};
        float x[8] = {0.5f, -1.0f, 3.25f, NAN, INFINITY, -0.0f, 1e-30f, 7.0f}, y[8];
        const int64_t dims[] = {2, 1, 2, 2};
        sl_tensor_t wire = tensor(SL_DT_FLOAT, 4, dims, x), model;
        sl_value_info_t vi = input4(SL_DT_FLOAT, 1, 2, 2), wvi;
        (void)state;

        assert_true(sl_prep_is_identity(NULL));
        assert_true(sl_prep_is_identity(empty));
        assert_false(sl_prep_is_identity(fp32)); /* names a datatype, but converts nothing */
        for (size_t k = 0; k < 3; k++) {
                memset(y, 0xff, sizeof(y));
                assert_int_equal(sl_prep_apply(preps[k], &wire, y), SL_OK);
                assert_memory_equal(x, y, sizeof(x)); /* bit for bit, NaN and -0 too */
                sl_prep_model_tensor(preps[k], &wire, &model);
                assert_int_equal(model.dtype, SL_DT_FLOAT);
                assert_int_equal(model.nbytes, sizeof(x));
                assert_memory_equal(model.dims, dims, sizeof(dims));
                sl_prep_wire_shape(preps[k], &vi, &wvi);
                assert_int_equal(wvi.dtype, SL_DT_FLOAT);
                assert_int_equal(wvi.ndim, 4);
                assert_memory_equal(wvi.dims, vi.dims, 4 * sizeof(int64_t));
        }
        /* identity leaves other datatypes alone too */
        {
                int64_t ids[3] = {1, -2, 3}, out[3];
                const int64_t d2[] = {1, 3};
                sl_tensor_t t = tensor(SL_DT_INT64, 2, d2, ids);
                assert_int_equal(sl_prep_apply(empty, &t, out), SL_OK);
                assert_memory_equal(ids, out, sizeof(ids));
                sl_prep_model_tensor(empty, &t, &model);
                assert_int_equal(model.dtype, SL_DT_INT64);
        }
        sl_prep_destroy(empty);
        sl_prep_destroy(fp32);
}

static void test_uint8_scale(void **state)
{
        sl_prep_t *prep = prep_ok("input: { datatype = \"UINT8\"; scale = 0.00392156862745098; };");
        /* 2 rows of [1, 28, 28]: every byte value, twice over and then some */
        enum { N = 2 * 28 * 28 };
        static uint8_t x[N];
        static float y[N + 1];
        static double want[N];
        const int64_t dims[] = {2, 1, 28, 28};
        sl_tensor_t wire = tensor(SL_DT_UINT8, 4, dims, x), model;
        (void)state;

        for (size_t i = 0; i < N; i++) {
                x[i] = (uint8_t)(i * 7);
                want[i] = x[i] / 255.0;
        }
        y[N] = 42.0f; /* guard */
        assert_int_equal(sl_prep_apply(prep, &wire, y), SL_OK);
        assert_close(y, want, N);
        assert_true(y[N] == 42.0f);
        assert_true(y[0] == 0.0f);
        sl_prep_model_tensor(prep, &wire, &model);
        assert_int_equal(model.dtype, SL_DT_FLOAT);
        assert_int_equal(model.nbytes, N * sizeof(float));
        assert_memory_equal(model.dims, dims, sizeof(dims));
        /* the wire datatype is enforced (defensively: callers check first) */
        {
                float f[N];
                sl_tensor_t bad = tensor(SL_DT_FLOAT, 4, dims, f);
                assert_int_equal(sl_prep_apply(prep, &bad, y), SL_ERR_DATATYPE);
        }
        sl_prep_destroy(prep);
}

static void test_per_channel_mean_std(void **state)
{
        /* ImageNet's normalisation, FP32 wire already scaled to [0, 1], NCHW */
        static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
        sl_prep_t *prep = prep_ok("input: {\n"
                                  "  mean = [0.485, 0.456, 0.406];\n"
                                  "  std  = (0.229, 0.224, 0.225);\n"
                                  "};\n");
        enum { H = 5, W = 7, N = 3 * H * W };
        float x[N], y[N];
        double want[N];
        const int64_t dims[] = {1, 3, H, W};
        sl_tensor_t wire = tensor(SL_DT_FLOAT, 4, dims, x);
        sl_value_info_t vi = input4(SL_DT_FLOAT, 3, H, W);
        (void)state;

        assert_int_equal(sl_prep_check(prep, &vi, NULL, NULL, 0), SL_OK);
        for (size_t i = 0; i < N; i++) {
                size_t c = i / (H * W);
                x[i] = (float)i / N;
                want[i] = ((double)x[i] - mean[c]) / std[c];
        }
        assert_int_equal(sl_prep_apply(prep, &wire, y), SL_OK);
        assert_close(y, want, N);
        /* the channel count is enforced (defensively) */
        {
                const int64_t d1[] = {1, 1, H, W};
                sl_tensor_t bad = tensor(SL_DT_FLOAT, 4, d1, x);
                assert_int_equal(sl_prep_apply(prep, &bad, y), SL_ERR_SHAPE);
        }
        sl_prep_destroy(prep);

        /* one value for every channel, with a scale: y = (x * 2 - 1) / 4 */
        prep = prep_ok("input: { scale = 2; mean = 1; std = 4; };");
        for (size_t i = 0; i < N; i++)
                want[i] = ((double)x[i] * 2.0 - 1.0) / 4.0;
        assert_int_equal(sl_prep_apply(prep, &wire, y), SL_OK);
        assert_close(y, want, N);
        sl_prep_destroy(prep);

        /* per feature on a rank-2 [N, F] input (channels = dimension 1) */
        prep = prep_ok("input: { mean = [1.0, 2.0]; std = [0.5, 4.0]; };");
        {
                float f[6] = {1, 2, 3, 4, 5, 6}, g[6];
                double w6[6] = {0, 0, 4, 0.5, 8, 1};
                const int64_t d2[] = {3, 2};
                sl_tensor_t t = tensor(SL_DT_FLOAT, 2, d2, f);
                assert_int_equal(sl_prep_apply(prep, &t, g), SL_OK);
                assert_close(g, w6, 6);
        }
        sl_prep_destroy(prep);
}

/*
 * NHWC -> NCHW on a 2x2 RGB image, element by element: pixel (h, w) channel c
 * is sent at wire[(h * 2 + w) * 3 + c] and must land at model[c * 4 + h * 2 + w].
 */
static void test_nhwc_to_nchw(void **state)
{
        sl_prep_t *prep = prep_ok("input: {\n"
                                  "  datatype = \"UINT8\";\n"
                                  "  layout = \"NHWC\";\n"
                                  "  scale = 0.00392156862745098;\n"
                                  "  mean = [0.5, 0.25, 0.0];\n"
                                  "  std = [0.5, 0.25, 2.0];\n"
                                  "};\n");
        static const double mean[3] = {0.5, 0.25, 0.0}, std[3] = {0.5, 0.25, 2.0};
        uint8_t x[2 * 2 * 3];
        float y[12];
        const int64_t dims[] = {1, 2, 2, 3};
        sl_tensor_t wire = tensor(SL_DT_UINT8, 4, dims, x), model;
        (void)state;

        for (int h = 0; h < 2; h++)
                for (int w = 0; w < 2; w++)
                        for (int c = 0; c < 3; c++)
                                x[(h * 2 + w) * 3 + c] = (uint8_t)(100 * c + 10 * h + w + 1);
        assert_int_equal(sl_prep_apply(prep, &wire, y), SL_OK);
        for (int c = 0; c < 3; c++)
                for (int h = 0; h < 2; h++)
                        for (int w = 0; w < 2; w++) {
                                double v = 100 * c + 10 * h + w + 1;
                                double want = (v / 255.0 - mean[c]) / std[c];
                                float got = y[c * 4 + h * 2 + w];
                                if (fabs(got - want) > 1e-6 + 1e-6 * fabs(want))
                                        fail_msg("c=%d h=%d w=%d: got %.9g, want %.9g", c, h, w,
                                                 (double)got, want);
                        }
        /* a copy converts the same, and outlives the original */
        {
                sl_prep_t *copy = NULL, *none = (sl_prep_t *)1;
                float z[12];
                assert_int_equal(sl_prep_dup(prep, &copy), SL_OK);
                assert_int_equal(sl_prep_dup(NULL, &none), SL_OK);
                assert_null(none);
                sl_prep_destroy(prep);
                assert_int_equal(sl_prep_apply(copy, &wire, z), SL_OK);
                assert_memory_equal(y, z, sizeof(y));
                prep = copy;
        }
        sl_prep_model_tensor(prep, &wire, &model);
        assert_int_equal(model.ndim, 4);
        assert_int_equal(model.dims[0], 1);
        assert_int_equal(model.dims[1], 3);
        assert_int_equal(model.dims[2], 2);
        assert_int_equal(model.dims[3], 2);
        assert_int_equal(model.nbytes, sizeof(y));
        sl_prep_destroy(prep);
}

/* Other channel counts take the general strided loop; one channel is a plain copy. */
static void test_nhwc_other_channel_counts(void **state)
{
        sl_prep_t *p4 = prep_ok("input: { layout = \"NHWC\"; mean = [0, 1, 2, 3]; };");
        sl_prep_t *p1 = prep_ok("input: { layout = \"NHWC\"; };");
        float x[2 * 3 * 4], y[2 * 3 * 4];
        double want[2 * 3 * 4];
        const int64_t d4[] = {1, 2, 3, 4}, d1[] = {2, 3, 4, 1};
        sl_tensor_t w4 = tensor(SL_DT_FLOAT, 4, d4, x), w1 = tensor(SL_DT_FLOAT, 4, d1, x);
        (void)state;

        for (int i = 0; i < 24; i++)
                x[i] = (float)i;
        /* [1, H=2, W=3, C=4] -> [1, 4, 2, 3] */
        for (int c = 0; c < 4; c++)
                for (int p = 0; p < 6; p++)
                        want[c * 6 + p] = x[p * 4 + c] - c;
        assert_int_equal(sl_prep_apply(p4, &w4, y), SL_OK);
        assert_close(y, want, 24);
        /* [2, 3, 4, 1] -> [2, 1, 3, 4]: same bytes */
        assert_int_equal(sl_prep_apply(p1, &w1, y), SL_OK);
        assert_memory_equal(x, y, sizeof(x));
        sl_prep_destroy(p4);
        sl_prep_destroy(p1);
}

static void test_rows(void **state)
{
        sl_prep_t *prep = prep_ok("input: { datatype = \"UINT8\"; layout = \"NHWC\"; "
                                  "mean = [10, 20, 30]; std = 2; };");
        enum { R = 3, H = 4, W = 5, C = 3, ROW = H * W * C };
        uint8_t x[R * ROW];
        float y[R * ROW];
        double want[R * ROW];
        const int64_t dims[] = {R, H, W, C};
        sl_tensor_t wire = tensor(SL_DT_UINT8, 4, dims, x);
        (void)state;

        for (size_t i = 0; i < sizeof(x); i++)
                x[i] = (uint8_t)(i * 13 + 5);
        for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++)
                        for (int p = 0; p < H * W; p++)
                                want[r * ROW + c * H * W + p] =
                                    (x[r * ROW + p * C + c] - 10.0 * (c + 1)) / 2.0;
        assert_int_equal(sl_prep_apply(prep, &wire, y), SL_OK);
        assert_close(y, want, R * ROW);

        /* two requests concatenated: the second converts right after the first */
        {
                const int64_t d1[] = {1, H, W, C}, d2[] = {2, H, W, C};
                sl_tensor_t a = tensor(SL_DT_UINT8, 4, d1, x);
                sl_tensor_t b = tensor(SL_DT_UINT8, 4, d2, x + ROW), m;
                float z[R * ROW];
                sl_prep_model_tensor(prep, &a, &m);
                assert_int_equal(sl_prep_apply(prep, &a, z), SL_OK);
                assert_int_equal(sl_prep_apply(prep, &b, (char *)z + m.nbytes), SL_OK);
                assert_memory_equal(z, y, sizeof(y));
        }
        sl_prep_destroy(prep);
}

static void test_wire_shape(void **state)
{
        sl_prep_t *prep = prep_ok("input: { datatype = \"UINT8\"; layout = \"NHWC\"; };");
        sl_prep_t *u8 = prep_ok("input: { datatype = \"UINT8\"; scale = 0.00392156862745098; };");
        sl_value_info_t vi = input4(SL_DT_FLOAT, 3, 224, 224), wire;
        sl_value_info_t fm = input4(SL_DT_FLOAT, 1, 28, 28);
        (void)state;

        sl_prep_wire_shape(prep, &vi, &wire);
        assert_string_equal(wire.name, "x");
        assert_int_equal(wire.dtype, SL_DT_UINT8);
        assert_int_equal(wire.ndim, 4);
        assert_int_equal(wire.dims[0], -1);
        assert_int_equal(wire.dims[1], 224);
        assert_int_equal(wire.dims[2], 224);
        assert_int_equal(wire.dims[3], 3);
        assert_int_equal(sl_prep_datatype(prep), SL_DT_UINT8);
        assert_int_equal(sl_prep_layout(prep), SL_PREP_LAYOUT_NHWC);

        /* Fashion-MNIST: uint8 [N, 1, 28, 28] on the wire */
        sl_prep_wire_shape(u8, &fm, &wire);
        assert_int_equal(wire.dtype, SL_DT_UINT8);
        assert_int_equal(wire.dims[1], 1);
        assert_int_equal(wire.dims[2], 28);
        assert_int_equal(wire.dims[3], 28);
        assert_int_equal(sl_prep_layout(u8), SL_PREP_LAYOUT_NCHW);
        assert_int_equal(sl_prep_datatype(NULL), SL_DT_UNDEFINED);

        /* undeclared H, W stay -1 in wire order */
        vi = input4(SL_DT_FLOAT, 3, -1, -1);
        sl_prep_wire_shape(prep, &vi, &wire);
        assert_int_equal(wire.dims[1], -1);
        assert_int_equal(wire.dims[2], -1);
        assert_int_equal(wire.dims[3], 3);
        sl_prep_destroy(prep);
        sl_prep_destroy(u8);
}

/* ---- output: ---- */

static sl_err_t output_from(const char *text, sl_prep_output_t *out, char *errstr, size_t size)
{
        config_t cfg;
        sl_err_t err;
        config_init(&cfg);
        if (!config_read_string(&cfg, text))
                fail_msg("libconfig: %s", config_error_text(&cfg));
        err = sl_prep_output_parse(config_lookup(&cfg, "output"), CFG, out, errstr, size);
        config_destroy(&cfg);
        return err;
}

static void test_output_group(void **state)
{
        sl_prep_output_t out;
        char errstr[512] = "";
        (void)state;

        sl_prep_output_init(&out);
        assert_int_equal(out.return_tensors, 1);
        assert_int_equal(out.argmax_only, 0);
        assert_int_equal(output_from("output: {};", &out, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(out.return_tensors, 1);
        assert_int_equal(out.argmax_only, 0);
        assert_int_equal(output_from("output: { return_tensors = false;\n argmax_only = true; };",
                                     &out, errstr, sizeof(errstr)),
                         SL_OK);
        assert_int_equal(out.return_tensors, 0);
        assert_int_equal(out.argmax_only, 1);

        assert_int_equal(
            output_from("output: {\n  argmax_only = 1;\n};", &out, errstr, sizeof(errstr)),
            SL_ERR_CONFIG);
        assert_string_equal(errstr, CFG ":2: output.argmax_only: expected true or false");
        assert_int_equal(output_from("output: {\n\n  top_k = 1;\n};", &out, errstr, sizeof(errstr)),
                         SL_ERR_CONFIG);
        assert_string_equal(errstr, CFG ":3: output: unknown setting 'top_k' (known: "
                                        "return_tensors, argmax_only)");
        assert_int_equal(output_from("output = true;", &out, errstr, sizeof(errstr)),
                         SL_ERR_CONFIG);
        assert_string_equal(errstr, CFG ":1: output: expected a group { ... }");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_errors_name_file_and_line),
            cmocka_unit_test(test_check_against_model_input),
            cmocka_unit_test(test_identity),
            cmocka_unit_test(test_uint8_scale),
            cmocka_unit_test(test_per_channel_mean_std),
            cmocka_unit_test(test_nhwc_to_nchw),
            cmocka_unit_test(test_nhwc_other_channel_counts),
            cmocka_unit_test(test_rows),
            cmocka_unit_test(test_wire_shape),
            cmocka_unit_test(test_output_group),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
