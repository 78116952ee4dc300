/* Model repository: <root>/<name>/{config.cfg,labels.txt,<version>/model.onnx}. */
#include "repo_int.h"

#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int repo_is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int repo_is_file(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A version folder is a positive integer, as in Triton and TF Serving. */
int repo_version_number(const char *s, int64_t *out)
{
        if (!*s || *s == '0' || strspn(s, "0123456789") != strlen(s))
                return -1;
        return sl_parse_i64(s, out);
}

int repo_file_stat(const char *path, int64_t *mtime_ns, int64_t *size)
{
        struct stat st;
        if (stat(path, &st))
                return -1;
        *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        *size = (int64_t)st.st_size;
        return 0;
}

void repo_settings_cleanup(model_settings_t *ms)
{
        sl_prep_destroy(ms->prep);
        ms->prep = NULL;
}

void repo_model_free(sl_repo_model_t *m)
{
        if (!m)
                return;
        sl_prep_destroy(m->prep);
        sl_model_destroy(m->model);
        for (size_t i = 0; i < m->n_labels; i++)
                free(m->labels[i]);
        free(m->labels);
        free(m->name);
        free(m->version);
        free(m->dir);
        free(m);
}

/* One class name per line; line i names class i, so empty lines count too. */
static sl_err_t labels_load(sl_repo_model_t *m, const char *path, char *errstr, size_t errstr_size)
{
        char *buf = NULL, *line, *end;
        size_t len;
        sl_err_t err;

        if ((err = sl_file_read(path, &buf, &len, errstr, errstr_size)))
                return err;
        for (line = buf; line < buf + len; line = end + 1) {
                char **tmp;
                size_t n;
                if (!(end = strchr(line, '\n')))
                        end = buf + len;
                n = (size_t)(end - line);
                if (n && line[n - 1] == '\r')
                        n--;
                if (!(tmp = realloc(m->labels, (m->n_labels + 1) * sizeof(*tmp)))) {
                        err = SL_ERR_NOMEM;
                        break;
                }
                m->labels = tmp;
                if (!(tmp[m->n_labels] = strndup(line, n))) {
                        err = SL_ERR_NOMEM;
                        break;
                }
                m->n_labels++;
        }
        free(buf);
        return err;
}

static int expect_type(const config_setting_t *s, int type, const char *what, const char *path,
                       char *errstr, size_t errstr_size)
{
        if (config_setting_type(s) == type)
                return 0;
        sl_strfmt(errstr, errstr_size, "%s:%d: %s: expected %s", path,
                  (int)config_setting_source_line(s), config_setting_name(s), what);
        return -1;
}

/* Settings of config.cfg; anything else is an error naming file and line. */
static sl_err_t model_config_read(const char *path, model_settings_t *ms, char *errstr,
                                  size_t errstr_size)
{
        config_t cfg;
        config_setting_t *root;
        sl_err_t err = SL_ERR_CONFIG;

        config_init(&cfg);
        if (!config_read_file(&cfg, path)) {
                if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
                        err = SL_ERR_IO;
                        sl_strfmt(errstr, errstr_size, "%s: cannot read: %s", path,
                                  strerror(errno));
                } else {
                        /* libconfig's own text is often just "syntax error" */
                        const char *text = config_error_text(&cfg);
                        sl_strfmt(errstr, errstr_size, "%s:%d: %s%s%s", path,
                                  config_error_line(&cfg),
                                  text && strstr(text, "syntax") ? "" : "syntax error: ",
                                  text ? text : "syntax error", "");
                }
                goto done;
        }
        root = config_root_setting(&cfg);
        for (int i = 0; i < config_setting_length(root); i++) {
                config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
                const char *name = config_setting_name(s), *v;
                int line = (int)config_setting_source_line(s);

                if (!strcmp(name, "max_batch_size") || !strcmp(name, "top_k")) {
                        int n, lo = !strcmp(name, "top_k") ? 0 : 1;
                        if (expect_type(s, CONFIG_TYPE_INT, "integer", path, errstr, errstr_size))
                                goto done;
                        n = config_setting_get_int(s);
                        if (n < lo || n > 4096) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: %s: %d is out of range [%d, 4096]", path, line,
                                          name, n, lo);
                                goto done;
                        }
                        *(lo ? &ms->max_batch_size : &ms->top_k) = n;
                } else if (!strcmp(name, "version_policy")) {
                        if (expect_type(s, CONFIG_TYPE_STRING, "string", path, errstr, errstr_size))
                                goto done;
                        v = config_setting_get_string(s);
                        if (!strcmp(v, "latest")) {
                                ms->policy = POLICY_LATEST;
                        } else if (!strcmp(v, "all")) {
                                ms->policy = POLICY_ALL;
                        } else if (!strcmp(v, "specific")) {
                                ms->policy = POLICY_SPECIFIC;
                        } else {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: version_policy: \"%s\" is not one of "
                                          "\"latest\", \"all\", \"specific\"",
                                          path, line, v);
                                goto done;
                        }
                } else if (!strcmp(name, "num_versions")) {
                        if (expect_type(s, CONFIG_TYPE_INT, "integer", path, errstr, errstr_size))
                                goto done;
                        ms->num_versions = config_setting_get_int(s);
                        if (ms->num_versions < 1 || ms->num_versions > 100) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: num_versions: %d is out of range [1, 100]", path,
                                          line, ms->num_versions);
                                goto done;
                        }
                } else if (!strcmp(name, "versions")) {
                        int cnt = config_setting_length(s);
                        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
                            config_setting_type(s) != CONFIG_TYPE_LIST) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: versions: expected a list of version numbers",
                                          path, line);
                                goto done;
                        }
                        if (cnt > SPECIFIC_MAX) {
                                sl_strfmt(errstr, errstr_size, "%s:%d: versions: more than %d",
                                          path, line, SPECIFIC_MAX);
                                goto done;
                        }
                        ms->n_specific = 0;
                        for (int k = 0; k < cnt; k++) {
                                config_setting_t *e = config_setting_get_elem(s, (unsigned)k);
                                if (config_setting_type(e) != CONFIG_TYPE_INT ||
                                    config_setting_get_int(e) < 1) {
                                        sl_strfmt(errstr, errstr_size,
                                                  "%s:%d: versions: entry %d is not a positive "
                                                  "integer",
                                                  path, line, k + 1);
                                        goto done;
                                }
                                ms->specific[ms->n_specific++] = config_setting_get_int(e);
                        }
                } else if (!strcmp(name, "input")) {
                        sl_prep_destroy(ms->prep);
                        ms->prep = NULL;
                        if ((err = sl_prep_new(s, path, &ms->prep, errstr, errstr_size)))
                                goto done;
                        err = SL_ERR_CONFIG;
                } else if (!strcmp(name, "output")) {
                        if ((err = sl_prep_output_parse(s, path, &ms->output, errstr, errstr_size)))
                                goto done;
                        err = SL_ERR_CONFIG;
                } else if (!strcmp(name, "canary_version") || !strcmp(name, "shadow_version")) {
                        int n;
                        if (expect_type(s, CONFIG_TYPE_INT, "integer", path, errstr, errstr_size))
                                goto done;
                        if ((n = config_setting_get_int(s)) < 1) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: %s: %d is not a version number", path, line, name,
                                          n);
                                goto done;
                        }
                        *(name[0] == 'c' ? &ms->canary_version : &ms->shadow_version) = n;
                } else if (!strcmp(name, "canary_fraction")) {
                        double f = config_setting_type(s) == CONFIG_TYPE_INT
                                       ? (double)config_setting_get_int(s)
                                       : config_setting_get_float(s);
                        if ((config_setting_type(s) != CONFIG_TYPE_FLOAT &&
                             config_setting_type(s) != CONFIG_TYPE_INT) ||
                            !(f >= 0.0 && f <= 1.0)) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: canary_fraction: expected a number in [0, 1]",
                                          path, line);
                                goto done;
                        }
                        ms->canary_fraction = f;
                } else if (!strcmp(name, "allow_non_finite")) {
                        if (expect_type(s, CONFIG_TYPE_BOOL, "true or false", path, errstr,
                                        errstr_size))
                                goto done;
                        ms->allow_non_finite = config_setting_get_bool(s);
                } else if (!strcmp(name, "labels_file")) {
                        if (expect_type(s, CONFIG_TYPE_STRING, "string", path, errstr, errstr_size))
                                goto done;
                        v = config_setting_get_string(s);
                        if (!*v || strchr(v, '/')) {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: labels_file: \"%s\" must be a file name "
                                          "inside the model folder",
                                          path, line, v);
                                goto done;
                        }
                        sl_strfmt(ms->labels_file, sizeof(ms->labels_file), "%s", v);
                } else if (!strcmp(name, "output_kind")) {
                        if (expect_type(s, CONFIG_TYPE_STRING, "string", path, errstr, errstr_size))
                                goto done;
                        v = config_setting_get_string(s);
                        if (!strcmp(v, "probabilities")) {
                                ms->kind = SL_OUTPUT_PROBABILITIES;
                        } else if (!strcmp(v, "logits")) {
                                ms->kind = SL_OUTPUT_LOGITS;
                        } else {
                                sl_strfmt(errstr, errstr_size,
                                          "%s:%d: output_kind: \"%s\" is not one of "
                                          "\"probabilities\", \"logits\"",
                                          path, line, v);
                                goto done;
                        }
                } else {
                        sl_strfmt(
                            errstr, errstr_size,
                            "%s:%d: unknown setting '%s' (known: max_batch_size, "
                            "labels_file, top_k, output_kind, allow_non_finite, version_policy, "
                            "num_versions, versions, canary_version, canary_fraction, "
                            "shadow_version, input, output)",
                            path, line, name);
                        goto done;
                }
        }
        err = SL_OK;
done:
        config_destroy(&cfg);
        return err;
}

sl_err_t repo_settings_read(const char *dir, model_settings_t *ms, char *errstr, size_t errstr_size)
{
        char path[4200];
        sl_err_t err;

        memset(ms, 0, sizeof(*ms));
        ms->max_batch_size = 64;
        ms->top_k = -1;
        ms->kind = SL_OUTPUT_PROBABILITIES;
        ms->policy = POLICY_LATEST;
        ms->num_versions = 1;
        sl_prep_output_init(&ms->output);
        sl_strfmt(path, sizeof(path), "%s/config.cfg", dir);
        if (repo_is_file(path) && (err = model_config_read(path, ms, errstr, errstr_size))) {
                repo_settings_cleanup(ms);
                return err;
        }
        if (ms->policy == POLICY_SPECIFIC && !ms->n_specific) {
                sl_strfmt(errstr, errstr_size,
                          "%s: version_policy \"specific\" needs versions = [...]", path);
                return SL_ERR_CONFIG;
        }
        if (!*ms->labels_file) {
                sl_strfmt(path, sizeof(path), "%s/labels.txt", dir);
                if (repo_is_file(path))
                        sl_strfmt(ms->labels_file, sizeof(ms->labels_file), "labels.txt");
        }
        return SL_OK;
}

/*
 * Warm-up: run one all-zero batch of one row, so that a model that loads but
 * cannot run (a node whose shapes do not fit) fails at start-up naming the
 * node, not on every request. Skipped when an input has unknown inner dims.
 * Also checks the labels file against the class count of output 0.
 */
static sl_err_t model_warm_up(sl_repo_model_t *m, const char *path, const char *labels_path,
                              char *errstr, size_t errstr_size)
{
        size_t n_in = sl_model_input_count(m->model), n_out = sl_model_output_count(m->model);
        sl_tensor_t *in = calloc(n_in + 1, sizeof(*in)), *out = calloc(n_out + 1, sizeof(*out));
        sl_session_t *sess = NULL;
        char why[512];
        sl_err_t err = SL_OK;

        if (!in || !out) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        for (size_t i = 0; i < n_in; i++) {
                const sl_value_info_t *vi = sl_model_input(m->model, i);
                int64_t numel = 1;
                if (vi->ndim < 0)
                        goto done; /* shape unknown: nothing to try */
                in[i].dtype = vi->dtype;
                in[i].ndim = vi->ndim;
                for (int d = 0; d < vi->ndim; d++) {
                        in[i].dims[d] = vi->dims[d] < 0 && d == 0 ? 1 : vi->dims[d];
                        if (in[i].dims[d] < 0)
                                goto done;
                        numel *= in[i].dims[d];
                }
                in[i].nbytes = (size_t)numel * sl_dtype_size(vi->dtype);
                if (!(in[i].data = calloc(1, in[i].nbytes ? in[i].nbytes : 1))) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
        }
        if ((err = sl_session_new(m->model, &sess)))
                goto done;
        if ((err = sl_session_run(sess, in, n_in, out, n_out, why, sizeof(why)))) {
                sl_strfmt(errstr, errstr_size, "%s: warm-up run with one all-zero row failed: %s",
                          path, why);
                err = SL_ERR_MODEL;
                goto done;
        }
        if (m->n_labels && n_out && out[0].ndim == 2 && out[0].dims[1] != (int64_t)m->n_labels) {
                sl_strfmt(errstr, errstr_size,
                          "%s: %zu labels, but output '%s' of %s has %lld classes", labels_path,
                          m->n_labels, sl_model_output(m->model, 0)->name, path,
                          (long long)out[0].dims[1]);
                err = SL_ERR_CONFIG;
        }
done:
        sl_session_destroy(sess);
        for (size_t i = 0; in && i < n_in; i++)
                free(in[i].data);
        free(in);
        free(out);
        return err;
}

sl_err_t repo_version_load(const char *root, const char *name, int64_t version,
                           const model_settings_t *ms, sl_repo_model_t **mp, char *errstr,
                           size_t errstr_size)
{
        char dir[4096], path[4200], lpath[4400], ver[32];
        sl_repo_model_t *m;
        int64_t mtime;
        sl_err_t err;

        sl_strfmt(ver, sizeof(ver), "%lld", (long long)version);
        sl_strfmt(dir, sizeof(dir), "%s/%s", root, name);
        sl_strfmt(path, sizeof(path), "%s/%s/model.onnx", dir, ver);
        if (!(m = calloc(1, sizeof(*m))) || !(m->name = strdup(name)) ||
            !(m->version = strdup(ver)) || !(m->dir = strdup(dir))) {
                repo_model_free(m);
                return SL_ERR_NOMEM;
        }
        m->max_batch_size = ms->max_batch_size;
        m->top_k = ms->top_k;
        m->output_kind = ms->kind;
        m->allow_non_finite = ms->allow_non_finite;
        m->canary_version = ms->canary_version;
        m->canary_fraction = ms->canary_fraction;
        m->shadow_version = ms->shadow_version;
        m->output = ms->output;
        if (!repo_file_stat(path, &mtime, &m->bytes) && m->bytes < 0)
                m->bytes = 0;
        sl_strfmt(lpath, sizeof(lpath), "%s/%s", dir, ms->labels_file);
        if (!(err = sl_model_load(path, &m->model, errstr, errstr_size)) && *ms->labels_file)
                err = labels_load(m, lpath, errstr, errstr_size);
        if (!err && ms->prep && sl_model_input_count(m->model) != 1) {
                sl_strfmt(errstr, errstr_size,
                          "%s/config.cfg: an input: group needs a model with one input; %s has "
                          "%zu",
                          dir, path, sl_model_input_count(m->model));
                err = SL_ERR_CONFIG;
        }
        if (!err && ms->prep &&
            !(err =
                  sl_prep_check(ms->prep, sl_model_input(m->model, 0), path, errstr, errstr_size)))
                err = sl_prep_dup(ms->prep, &m->prep);
        if (!err)
                err = model_warm_up(m, path, lpath, errstr, errstr_size);
        if (err) {
                repo_model_free(m);
                return err;
        }
        *mp = m;
        return SL_OK;
}

const sl_repo_model_t *sl_repo_find(const sl_repo_t *repo, const char *name, const char *version)
{
        const sl_repo_model_t *latest = NULL;
        for (size_t i = 0; i < repo->cnt; i++) {
                const sl_repo_model_t *m = repo->models[i];
                if (strcmp(m->name, name))
                        continue;
                if (version && *version) {
                        if (!strcmp(m->version, version))
                                return m;
                } else {
                        latest = m; /* sorted by version: the last match is the latest */
                }
        }
        return latest;
}

size_t sl_repo_count(const sl_repo_t *repo)
{
        return repo->cnt;
}

const sl_repo_model_t *sl_repo_get(const sl_repo_t *repo, size_t i)
{
        return i < repo->cnt ? repo->models[i] : NULL;
}

size_t sl_repo_top_k(const sl_repo_model_t *m, const float *scores, size_t n_classes, size_t k,
                     int32_t *index, float *prob)
{
        float maxv = -INFINITY, sum = 0.0f;
        size_t cnt = 0;

        if (k > n_classes)
                k = n_classes;
        if (m->output_kind == SL_OUTPUT_LOGITS) {
                for (size_t i = 0; i < n_classes; i++)
                        if (scores[i] > maxv)
                                maxv = scores[i];
                for (size_t i = 0; i < n_classes; i++)
                        sum += expf(scores[i] - maxv);
        }
        /* Insertion into a k-long sorted list: k is small (<= a few dozen). */
        for (size_t i = 0; i < n_classes; i++) {
                float p =
                    m->output_kind == SL_OUTPUT_LOGITS ? expf(scores[i] - maxv) / sum : scores[i];
                size_t pos = cnt;
                while (pos > 0 && (prob[pos - 1] < p || isnan(prob[pos - 1])))
                        pos--;
                if (pos >= k)
                        continue;
                if (cnt < k)
                        cnt++;
                for (size_t j = cnt - 1; j > pos; j--) {
                        prob[j] = prob[j - 1];
                        index[j] = index[j - 1];
                }
                prob[pos] = p;
                index[pos] = (int32_t)i;
        }
        return cnt;
}
