/*
 * The `input:` and `output:` groups of a model's config.cfg: parsing (errors
 * name file and line), the check against one model input, and the shapes on
 * either side of the conversion. The conversion loops are in apply.c.
 */
#include "prep_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The settings of each group, for the "known: ..." list of errors (prep.h documents them). */
static const char *const input_settings[] = {"datatype", "layout", "scale", "mean", "std", NULL};
static const char *const output_settings[] = {"return_tensors", "argmax_only", NULL};

/* "FILE:LINE: GROUP.NAME: " followed by the message. */
static sl_err_t config_error(char *errstr, size_t errstr_size, const char *path,
                             const config_setting_t *s, const char *group, const char *msg)
{
        const char *name = config_setting_name(s);
        sl_strfmt(errstr, errstr_size, "%s:%d: %s%s%s: %s", path,
                  (int)config_setting_source_line(s), group, name ? "." : "", name ? name : "",
                  msg);
        return SL_ERR_CONFIG;
}

static sl_err_t unknown_setting(char *errstr, size_t errstr_size, const char *path,
                                const config_setting_t *s, const char *group,
                                const char *const *known)
{
        char list[256];
        size_t off = 0;
        list[0] = '\0';
        for (const char *const *k = known; *k && off < sizeof(list); k++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
                                        k == known ? "" : ", ", *k);
        sl_strfmt(errstr, errstr_size, "%s:%d: %s: unknown setting '%s' (known: %s)", path,
                  (int)config_setting_source_line(s), group, config_setting_name(s), list);
        return SL_ERR_CONFIG;
}

static sl_err_t expect_group(const config_setting_t *group, const char *path, const char **name,
                             char *errstr, size_t errstr_size)
{
        *name = config_setting_name(group) ? config_setting_name(group) : "group";
        if (config_setting_type(group) == CONFIG_TYPE_GROUP)
                return SL_OK;
        sl_strfmt(errstr, errstr_size, "%s:%d: %s: expected a group { ... }", path,
                  (int)config_setting_source_line(group), *name);
        return SL_ERR_CONFIG;
}

/* A number of any libconfig type (libconfig converts int to float only on request). */
static int number_get(const config_setting_t *s, double *v)
{
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT:
                *v = config_setting_get_int(s);
                return 0;
        case CONFIG_TYPE_INT64:
                *v = (double)config_setting_get_int64(s);
                return 0;
        case CONFIG_TYPE_FLOAT:
                *v = config_setting_get_float(s);
                return 0;
        default:
                return -1;
        }
}

#define VALUES_MAX 65536 /* mean/std lists: one per channel (or feature) */

/* mean or std: a number, or a non-empty list / array of numbers. *valsp is malloc'd. */
static sl_err_t values_read(const config_setting_t *s, const char *path, const char *group,
                            int is_std, double **valsp, size_t *np, char *errstr,
                            size_t errstr_size)
{
        int type = config_setting_type(s), len;
        double *vals;
        char msg[128];

        len = type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST ? config_setting_length(s) : 1;
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_INT &&
            type != CONFIG_TYPE_INT64 && type != CONFIG_TYPE_FLOAT)
                return config_error(errstr, errstr_size, path, s, group,
                                    "expected a number or a list of numbers, one per channel");
        if (len < 1 || len > VALUES_MAX) {
                sl_strfmt(msg, sizeof(msg), "%d values: expected 1 to %d", len, VALUES_MAX);
                return config_error(errstr, errstr_size, path, s, group, msg);
        }
        if (!(vals = malloc((size_t)len * sizeof(*vals))))
                return SL_ERR_NOMEM;
        for (int i = 0; i < len; i++) {
                const config_setting_t *e = type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST
                                                ? config_setting_get_elem(s, (unsigned)i)
                                                : s;
                const char *bad = NULL;
                if (number_get(e, &vals[i]))
                        bad = "is not a number";
                else if (!isfinite(vals[i]) || !isfinite((float)vals[i]))
                        bad = "is not a finite float32";
                else if (is_std && vals[i] == 0.0)
                        bad = "is 0 (std divides)";
                if (bad) {
                        if (e != s)
                                sl_strfmt(msg, sizeof(msg), "value %d %s", i + 1, bad);
                        else
                                sl_strfmt(msg, sizeof(msg), "%s", bad);
                        free(vals);
                        /* the element's own line: lists may span lines */
                        sl_strfmt(errstr, errstr_size, "%s:%d: %s.%s: %s", path,
                                  (int)config_setting_source_line(e), group, config_setting_name(s),
                                  msg);
                        return SL_ERR_CONFIG;
                }
        }
        *valsp = vals;
        *np = (size_t)len;
        return SL_OK;
}

/* Fold scale, mean and std into a[c], b[c] (double, rounded once). */
static sl_err_t coef_fold(sl_prep_t *p, const double *mean, const double *std, int line,
                          char *errstr, size_t errstr_size)
{
        size_t n = p->n_mean > p->n_std ? p->n_mean : p->n_std;
        if (n < 1)
                n = 1;
        p->n_coef = n;
        if (!(p->a = malloc(n * sizeof(*p->a))) || !(p->b = malloc(n * sizeof(*p->b))))
                return SL_ERR_NOMEM;
        for (size_t c = 0; c < n; c++) {
                double m = p->n_mean ? mean[p->n_mean > 1 ? c : 0] : 0.0;
                double s = p->n_std ? std[p->n_std > 1 ? c : 0] : 1.0;
                double a = p->scale / s, b = -m / s;
                if (!isfinite((float)a) || !isfinite((float)b)) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s:%d: %s: channel %zu: scale / std or mean / std overflows "
                                  "float32",
                                  p->path, line, p->group_name, c);
                        return SL_ERR_CONFIG;
                }
                p->a[c] = (float)a;
                p->b[c] = (float)b;
        }
        p->values_identity = n == 1 && p->a[0] == 1.0f && p->b[0] == 0.0f;
        return SL_OK;
}

static sl_err_t input_setting(sl_prep_t *p, const config_setting_t *s, double **mean, double **std,
                              char *errstr, size_t errstr_size)
{
        const char *name = config_setting_name(s), *v;
        const char *g = p->group_name;
        int line = (int)config_setting_source_line(s);

        if (!strcmp(name, "datatype") || !strcmp(name, "layout")) {
                int dt = !strcmp(name, "datatype");
                if (config_setting_type(s) != CONFIG_TYPE_STRING)
                        return config_error(errstr, errstr_size, p->path, s, g,
                                            dt ? "expected a string: \"UINT8\" or \"FP32\""
                                               : "expected a string: \"NCHW\" or \"NHWC\"");
                v = config_setting_get_string(s);
                if (dt && !strcmp(v, "UINT8"))
                        p->datatype = SL_DT_UINT8;
                else if (dt && !strcmp(v, "FP32"))
                        p->datatype = SL_DT_FLOAT;
                else if (!dt && !strcmp(v, "NCHW"))
                        p->layout = SL_PREP_LAYOUT_NCHW;
                else if (!dt && !strcmp(v, "NHWC"))
                        p->layout = SL_PREP_LAYOUT_NHWC;
                else {
                        char msg[160];
                        sl_strfmt(msg, sizeof(msg), "\"%.64s\" is not one of %s", v,
                                  dt ? "\"UINT8\", \"FP32\"" : "\"NCHW\", \"NHWC\"");
                        return config_error(errstr, errstr_size, p->path, s, g, msg);
                }
                *(dt ? &p->line_datatype : &p->line_layout) = line;
        } else if (!strcmp(name, "scale")) {
                if (number_get(s, &p->scale))
                        return config_error(errstr, errstr_size, p->path, s, g,
                                            "expected a number");
                if (!isfinite(p->scale) || !isfinite((float)p->scale) || p->scale == 0.0)
                        return config_error(errstr, errstr_size, p->path, s, g,
                                            "must be a finite float32 other than 0");
        } else if (!strcmp(name, "mean") || !strcmp(name, "std")) {
                int is_std = !strcmp(name, "std");
                sl_err_t err = values_read(s, p->path, g, is_std, is_std ? std : mean,
                                           is_std ? &p->n_std : &p->n_mean, errstr, errstr_size);
                if (err)
                        return err;
                *(is_std ? &p->line_std : &p->line_mean) = line;
        } else {
                return unknown_setting(errstr, errstr_size, p->path, s, g, input_settings);
        }
        return SL_OK;
}

sl_err_t sl_prep_new(const config_setting_t *group, const char *path, sl_prep_t **prepp,
                     char *errstr, size_t errstr_size)
{
        sl_prep_t *p = NULL;
        double *mean = NULL, *std = NULL;
        const char *gname;
        sl_err_t err;

        *prepp = NULL;
        if ((err = expect_group(group, path, &gname, errstr, errstr_size)))
                return err;
        if (!(p = calloc(1, sizeof(*p))) || !(p->path = strdup(path))) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        sl_strfmt(p->group_name, sizeof(p->group_name), "%s", gname);
        p->scale = 1.0;
        for (int i = 0; i < config_setting_length(group); i++)
                if ((err = input_setting(p, config_setting_get_elem(group, (unsigned)i), &mean,
                                         &std, errstr, errstr_size)))
                        goto done;
        if (p->n_mean > 1 && p->n_std > 1 && p->n_mean != p->n_std) {
                sl_strfmt(errstr, errstr_size, "%s:%d: %s.std: %zu values, but %s.mean has %zu",
                          path, p->line_std, gname, p->n_std, gname, p->n_mean);
                err = SL_ERR_CONFIG;
                goto done;
        }
        if ((err = coef_fold(p, mean, std,
                             p->line_std ? p->line_std : (int)config_setting_source_line(group),
                             errstr, errstr_size)))
                goto done;
        p->identity = p->datatype == SL_DT_UNDEFINED && p->layout == SL_PREP_LAYOUT_NCHW &&
                      p->values_identity;
done:
        free(mean);
        free(std);
        if (err)
                sl_prep_destroy(p);
        else
                *prepp = p;
        return err;
}

sl_err_t sl_prep_dup(const sl_prep_t *prep, sl_prep_t **dstp)
{
        sl_prep_t *p;

        *dstp = NULL;
        if (!prep)
                return SL_OK;
        if (!(p = malloc(sizeof(*p))))
                return SL_ERR_NOMEM;
        *p = *prep;
        p->a = malloc(prep->n_coef * sizeof(*p->a));
        p->b = malloc(prep->n_coef * sizeof(*p->b));
        p->path = strdup(prep->path);
        if (!p->a || !p->b || !p->path) {
                sl_prep_destroy(p);
                return SL_ERR_NOMEM;
        }
        memcpy(p->a, prep->a, prep->n_coef * sizeof(*p->a));
        memcpy(p->b, prep->b, prep->n_coef * sizeof(*p->b));
        *dstp = p;
        return SL_OK;
}

void sl_prep_destroy(sl_prep_t *prep)
{
        if (!prep)
                return;
        free(prep->a);
        free(prep->b);
        free(prep->path);
        free(prep);
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *dims)
{
        size_t off = 0;
        off += (size_t)snprintf(buf, size, "[");
        for (int d = 0; d < ndim && off < size; d++)
                off += (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "",
                                        (long long)dims[d]);
        if (off < size)
                snprintf(buf + off, size - off, "]");
}

sl_err_t sl_prep_check(const sl_prep_t *prep, const sl_value_info_t *input, const char *model_path,
                       char *errstr, size_t errstr_size)
{
        char shape[160], of[320];
        const char *g;
        int64_t c;

        if (!prep || prep->identity)
                return SL_OK;
        g = prep->group_name;
        shape_str(shape, sizeof(shape), input->ndim, input->dims);
        sl_strfmt(of, sizeof(of), "input '%s'%s%s", input->name ? input->name : "",
                  model_path ? " of " : "", model_path ? model_path : "");
        if (input->dtype != SL_DT_FLOAT) {
                sl_strfmt(errstr, errstr_size,
                          "%s: %s: %s takes %s; the %s group converts to float32 only "
                          "(remove it to pass requests through as they are)",
                          prep->path, g, of, sl_dtype_name(input->dtype), g);
                return SL_ERR_CONFIG;
        }
        if (prep->layout == SL_PREP_LAYOUT_NHWC && input->ndim != 4) {
                sl_strfmt(errstr, errstr_size,
                          "%s:%d: %s.layout: \"NHWC\" needs a rank-4 [N,C,H,W] input, but %s "
                          "has shape %s",
                          prep->path, prep->line_layout, g, of,
                          input->ndim < 0 ? "(undeclared)" : shape);
                return SL_ERR_CONFIG;
        }
        if (prep->n_coef <= 1)
                return SL_OK;
        /* Per-channel values: channels are dimension 1 (ONNX's channel axis). */
        c = input->ndim >= 2 ? input->dims[1] : input->ndim < 0 ? -1 : 1;
        if (c != (int64_t)prep->n_coef) {
                int mean_wrong = prep->n_mean == prep->n_coef;
                char chans[64];
                if (c < 0)
                        sl_strfmt(chans, sizeof(chans), "an undeclared number of channels");
                else
                        sl_strfmt(chans, sizeof(chans), "%lld channel%s", (long long)c,
                                  c == 1 ? "" : "s");
                sl_strfmt(errstr, errstr_size,
                          "%s:%d: %s.%s: %zu values, but %s has %s (dimension 1 of %s)", prep->path,
                          mean_wrong ? prep->line_mean : prep->line_std, g,
                          mean_wrong ? "mean" : "std", prep->n_coef, of, chans,
                          input->ndim < 0 ? "an undeclared shape" : shape);
                return SL_ERR_CONFIG;
        }
        return SL_OK;
}

void sl_prep_wire_shape(const sl_prep_t *prep, const sl_value_info_t *input, sl_value_info_t *wire)
{
        *wire = *input;
        if (!prep)
                return;
        if (prep->datatype != SL_DT_UNDEFINED)
                wire->dtype = prep->datatype;
        if (prep->layout == SL_PREP_LAYOUT_NHWC && input->ndim == 4) {
                wire->dims[1] = input->dims[2];
                wire->dims[2] = input->dims[3];
                wire->dims[3] = input->dims[1];
        }
}

void sl_prep_model_tensor(const sl_prep_t *prep, const sl_tensor_t *wire, sl_tensor_t *model)
{
        int64_t numel = sl_tensor_numel(wire);
        model->ndim = wire->ndim;
        memcpy(model->dims, wire->dims, sizeof(model->dims));
        if (!prep || prep->identity) {
                model->dtype = wire->dtype;
                model->nbytes = wire->nbytes;
                return;
        }
        model->dtype = SL_DT_FLOAT;
        model->nbytes = (size_t)numel * sizeof(float);
        if (prep->layout == SL_PREP_LAYOUT_NHWC && wire->ndim == 4) {
                model->dims[1] = wire->dims[3];
                model->dims[2] = wire->dims[1];
                model->dims[3] = wire->dims[2];
        }
}

sl_dtype_t sl_prep_datatype(const sl_prep_t *prep)
{
        return prep ? prep->datatype : SL_DT_UNDEFINED;
}

sl_prep_layout_t sl_prep_layout(const sl_prep_t *prep)
{
        return prep ? prep->layout : SL_PREP_LAYOUT_NCHW;
}

int sl_prep_is_identity(const sl_prep_t *prep)
{
        return !prep || prep->identity;
}

void sl_prep_output_init(sl_prep_output_t *out)
{
        out->return_tensors = 1;
        out->argmax_only = 0;
}

sl_err_t sl_prep_output_parse(const config_setting_t *group, const char *path,
                              sl_prep_output_t *out, char *errstr, size_t errstr_size)
{
        const char *g;
        sl_err_t err;

        if ((err = expect_group(group, path, &g, errstr, errstr_size)))
                return err;
        for (int i = 0; i < config_setting_length(group); i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
                const char *name = config_setting_name(s);
                int *field = !strcmp(name, "return_tensors") ? &out->return_tensors
                             : !strcmp(name, "argmax_only")  ? &out->argmax_only
                                                             : NULL;
                if (!field)
                        return unknown_setting(errstr, errstr_size, path, s, g, output_settings);
                if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                        return config_error(errstr, errstr_size, path, s, g,
                                            "expected true or false");
                *field = config_setting_get_bool(s);
        }
        return SL_OK;
}
