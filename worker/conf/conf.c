/*
 * sl_conf_load(): read the libconfig file, walk every setting it contains
 * against the table (so a misspelt name is an error, not a silently ignored
 * setting), then apply the environment overrides.
 */
#include "conf_int.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

const char *sl_conf_file_name(const char *file, const char *path, char *buf, size_t size)
{
        const char *slash = strrchr(path, '/');

        /* libconfig 1.5 records an @include'd file as written in the directive. */
        if (!file)
                return path;
        if (!strcmp(file, path) || file[0] == '/' || !slash)
                return file;
        return sl_strfmt(buf, size, "%.*s/%s", (int)(slash - path), path, file);
}

const char *sl_conf_where(const config_setting_t *s, const char *path, char *buf, size_t size)
{
        char fbuf[SL_CONF_WHERE_SIZE];
        const char *file =
            sl_conf_file_name(config_setting_source_file(s), path, fbuf, sizeof(fbuf));
        return sl_strfmt(buf, size, "%s:%u", file, (unsigned)config_setting_source_line(s));
}

/* Pointer to the start of line \p line (1-based) in \p buf, or NULL. */
static const char *find_line(const char *buf, unsigned line)
{
        for (unsigned l = 1; l < line; l++) {
                if (!(buf = strchr(buf, '\n')))
                        return NULL;
                buf++;
        }
        return buf;
}

/* Parse the integer literal assigned to \p name on the line at \p p. */
static int literal_on_line(const char *p, const char *name, int64_t *out)
{
        size_t nlen = strlen(name);
        const char *start = p, *eol = strchr(p, '\n');
        long long v;
        char *end;

        if (!eol)
                eol = p + strlen(p);
        for (; p < eol; p++) {
                const char *q = p + nlen;
                if (strncmp(p, name, nlen) || q > eol)
                        continue;
                /* whole word only: "max_size" must not match inside "xmax_size" */
                if (p > start && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
                        continue;
                while (q < eol && (*q == ' ' || *q == '\t'))
                        q++;
                if (q >= eol || (*q != '=' && *q != ':'))
                        continue;
                q++;
                while (q < eol && (*q == ' ' || *q == '\t'))
                        q++;
                errno = 0;
                if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
                        v = (long long)strtoull(q, &end, 16);
                else
                        v = strtoll(q, &end, 10);
                /* ERANGE keeps the saturated value: out of range for every setting. */
                if (end == q || (errno && errno != ERANGE))
                        return -1;
                *out = v;
                return 0;
        }
        return -1;
}

int64_t sl_conf_int_value(const config_setting_t *s, const char *path)
{
        int64_t v = config_setting_get_int64(s), literal;
        const char *file = config_setting_source_file(s);
        const char *name = config_setting_name(s);
        const char *line;
        char *buf = NULL;
        size_t len;
        char errstr[64], fbuf[SL_CONF_WHERE_SIZE];

        /* INT64 (the `L` suffix) is parsed correctly; only plain INT truncates. */
        if (config_setting_type(s) != CONFIG_TYPE_INT || !name)
                goto done;
        file = sl_conf_file_name(file, path, fbuf, sizeof(fbuf));
        if (sl_file_read(file, &buf, &len, errstr, sizeof(errstr)))
                goto done;
        /* Only ever undo a truncation: the literal must wrap to what libconfig read. */
        if ((line = find_line(buf, config_setting_source_line(s))) &&
            !literal_on_line(line, name, &literal) &&
            (int32_t)(uint32_t)(uint64_t)literal == (int32_t)v)
                v = literal;
done:
        free(buf);
        return v;
}

static sl_err_t unknown(const config_setting_t *s, const char *path, const char *full, char *errstr,
                        size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE];
        const char *hint = sl_conf_suggest(full);

        sl_conf_where(s, path, where, sizeof(where));
        if (hint)
                sl_strfmt(errstr, errstr_size, "%s: unknown setting '%s' (did you mean '%s'?)",
                          where, full, hint);
        else
                sl_strfmt(errstr, errstr_size, "%s: unknown setting '%s'", where, full);
        return SL_ERR_CONFIG;
}

static sl_err_t wrong_type(const config_setting_t *s, const char *path, const char *full,
                           const char *expected, char *errstr, size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE];
        sl_strfmt(errstr, errstr_size, "%s: %s: expected %s, got %s",
                  sl_conf_where(s, path, where, sizeof(where)), full, expected,
                  sl_conf_type_name(config_setting_type(s)));
        return SL_ERR_CONFIG;
}

static sl_err_t apply_list(sl_conf_t *conf, const sl_conf_setting_t *row, const config_setting_t *s,
                           const char *path, char *errstr, size_t errstr_size)
{
        const char *items[SL_CONF_MAX_TOPICS];
        char where[SL_CONF_WHERE_SIZE], elem[160];
        int n = config_setting_length(s);

        for (int i = 0; i < n && i < SL_CONF_MAX_TOPICS; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                        sl_strfmt(elem, sizeof(elem), "%s[%d]", row->path, i);
                        return wrong_type(e, path, elem, "string", errstr, errstr_size);
                }
                items[i] = config_setting_get_string(e);
        }
        return sl_conf_set_strlist(conf, row, items, (size_t)n,
                                   sl_conf_where(s, path, where, sizeof(where)), errstr,
                                   errstr_size);
}

/* Validate and store one table setting read from the file. */
static sl_err_t apply_setting(sl_conf_t *conf, const sl_conf_setting_t *row,
                              const config_setting_t *s, const char *path, char *errstr,
                              size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE];
        int type = config_setting_type(s);

        sl_conf_where(s, path, where, sizeof(where));
        switch (row->type) {
        case SL_CONF_T_INT:
                if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
                        return wrong_type(s, path, row->path, "integer", errstr, errstr_size);
                return sl_conf_set_int(conf, row, sl_conf_int_value(s, path), where, errstr,
                                       errstr_size);
        case SL_CONF_T_STR:
                if (type != CONFIG_TYPE_STRING)
                        return wrong_type(s, path, row->path, "string", errstr, errstr_size);
                return sl_conf_set_str(conf, row, config_setting_get_string(s), where, errstr,
                                       errstr_size);
        case SL_CONF_T_STRLIST:
                /* A single string is accepted as a one-topic list. */
                if (type == CONFIG_TYPE_STRING) {
                        const char *one = config_setting_get_string(s);
                        return sl_conf_set_strlist(conf, row, &one, 1, where, errstr, errstr_size);
                }
                if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
                        return wrong_type(s, path, row->path, "list of strings", errstr,
                                          errstr_size);
                return apply_list(conf, row, s, path, errstr, errstr_size);
        }
        return SL_ERR_INTERNAL;
}

static sl_err_t walk_group(sl_conf_t *conf, const config_setting_t *grp, const char *path,
                           char *errstr, size_t errstr_size)
{
        const char *gname = config_setting_name(grp);
        char full[256];
        sl_err_t err;

        if (config_setting_type(grp) != CONFIG_TYPE_GROUP)
                return wrong_type(grp, path, gname, "group", errstr, errstr_size);
        for (int i = 0; i < config_setting_length(grp); i++) {
                const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
                const sl_conf_setting_t *row;
                sl_strfmt(full, sizeof(full), "%s.%s", gname, config_setting_name(s));
                if (!(row = sl_conf_setting_find(full)))
                        return unknown(s, path, full, errstr, errstr_size);
                if ((err = apply_setting(conf, row, s, path, errstr, errstr_size)))
                        return err;
        }
        return SL_OK;
}

static sl_err_t walk_root(sl_conf_t *conf, const config_setting_t *root, const char *path,
                          char *errstr, size_t errstr_size)
{
        sl_err_t err = SL_OK;

        for (int i = 0; i < config_setting_length(root) && !err; i++) {
                const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
                const char *name = config_setting_name(s);
                if (!strcmp(name, "kafka"))
                        err = sl_conf_kafka_group(conf, s, path, errstr, errstr_size);
                else if (!strcmp(name, "kafka_properties"))
                        err = sl_conf_kafka_properties(conf, s, path, errstr, errstr_size);
                else if (sl_conf_is_group(name))
                        err = walk_group(conf, s, path, errstr, errstr_size);
                else
                        err = unknown(s, path, name, errstr, errstr_size);
        }
        return err;
}

/*
 * A misspelt override (SLUICE_BATCH_MAX_SISE) would otherwise be ignored
 * silently. Only a warning: Kubernetes injects SLUICE_WORKER_SERVICE_HOST and
 * the like for a Service named "sluice-worker", which must not stop startup.
 */
static void warn_unknown_env(void)
{
        static const char *const groups[] = {"WORKER_", "BATCH_",    "TOPICS_",
                                             "CODEC_",  "DELIVERY_", "HTTP_"};
        size_t plen = strlen(SL_CONF_ENV_PREFIX), g;
        char name[128], env[128];

        for (char **ep = environ; ep && *ep; ep++) {
                const char *var = *ep, *eq = strchr(var, '=');
                const sl_conf_setting_t *row;
                if (!eq || (size_t)(eq - var) >= sizeof(name) ||
                    strncmp(var, SL_CONF_ENV_PREFIX, plen))
                        continue;
                sl_strfmt(name, sizeof(name), "%.*s", (int)(eq - var), var);
                for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
                        if (!strncmp(name + plen, groups[g], strlen(groups[g])))
                                break;
                if (g == sizeof(groups) / sizeof(groups[0]) || strstr(name, "_SERVICE_") ||
                    strstr(name, "_PORT"))
                        continue;
                row = sl_conf_suggest_env(name);
                if (row)
                        sl_conf_env_name(row->path, env, sizeof(env));
                if (row && !strcmp(env, name))
                        continue;
                if (row)
                        SL_LOG(SL_LOG_WARNING, "CONF",
                               "environment %s: unknown setting, ignored (did you mean %s?)", name,
                               env);
                else
                        SL_LOG(SL_LOG_WARNING, "CONF", "environment %s: unknown setting, ignored",
                               name);
        }
}

static sl_err_t apply_env(sl_conf_t *conf, char *errstr, size_t errstr_size)
{
        char env[128], where[SL_CONF_WHERE_SIZE];
        sl_err_t err;

        for (size_t i = 0; i < sl_conf_settings_cnt; i++) {
                const sl_conf_setting_t *row = &sl_conf_settings[i];
                const char *val;
                sl_conf_env_name(row->path, env, sizeof(env));
                if (!(val = getenv(env)))
                        continue;
                sl_strfmt(where, sizeof(where), "environment %s", env);
                if ((err = sl_conf_set_text(conf, row, val, where, errstr, errstr_size)))
                        return err;
        }
        warn_unknown_env();
        return sl_conf_kafka_env(conf, errstr, errstr_size);
}

static sl_err_t read_file(sl_conf_t *conf, const char *path, char *errstr, size_t errstr_size)
{
        config_t cfg;
        char *dir = NULL, *slash;
        sl_err_t err = SL_ERR_NOMEM;

        config_init(&cfg);
        /* @include resolves against the config file's directory, not the cwd. */
        if (!(dir = strdup(path)))
                goto done;
        if ((slash = strrchr(dir, '/'))) {
                slash[slash == dir] = '\0';
                config_set_include_dir(&cfg, dir);
        }
        errno = 0;
        if (!config_read_file(&cfg, path)) {
                char fbuf[SL_CONF_WHERE_SIZE];
                const char *file =
                    sl_conf_file_name(config_error_file(&cfg), path, fbuf, sizeof(fbuf));
                const char *text = config_error_text(&cfg);
                if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
                        struct stat st;
                        err = SL_ERR_IO;
                        /* libconfig opens a directory and then fails to read it, errno 0 */
                        if (!errno && !stat(path, &st) && S_ISDIR(st.st_mode))
                                errno = EISDIR;
                        sl_strfmt(errstr, errstr_size, "%s: cannot read: %s", path,
                                  errno ? strerror(errno) : text);
                        goto done;
                }
                err = SL_ERR_CONFIG;
                if (!text || !strcmp(text, "syntax error"))
                        sl_strfmt(errstr, errstr_size, "%s:%d: syntax error", file,
                                  config_error_line(&cfg));
                else
                        sl_strfmt(errstr, errstr_size, "%s:%d: syntax error: %s", file,
                                  config_error_line(&cfg), text);
                goto done;
        }
        free(conf->path);
        if (!(conf->path = strdup(path)))
                goto done;
        err = walk_root(conf, config_root_setting(&cfg), path, errstr, errstr_size);
done:
        if (err == SL_ERR_NOMEM)
                sl_strfmt(errstr, errstr_size, "%s: out of memory", path);
        config_destroy(&cfg);
        free(dir);
        return err;
}

/* \p topic among \p list? */
static int topic_in(const char *topic, char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (topic && list[i] && !strcmp(topic, list[i]))
                        return 1;
        return 0;
}

/*
 * Settings that are valid one by one but not together: a topic the worker
 * writes that it also reads (its own output would come back as input: one
 * dead letter would loop for ever), and codec settings of the other framing,
 * which would be silently ignored.
 */
static sl_err_t check_together(const sl_conf_t *conf, char *errstr, size_t errstr_size)
{
        const char *file = conf->path && *conf->path ? conf->path : "(defaults)";
        const struct {
                const char *name, *topic;
        } outputs[] = {
            {"topics.responses", conf->response_topic},
            {"topics.dead_letters", conf->dead_letter_topic},
            {"topics.metrics", conf->metrics_topic},
        };

        /* librdkafka subscribes to a name starting with '^' as a regular expression: it
         * could match the outputs (and the assignment would change with new topics). */
        for (size_t i = 0; i < conf->n_request_topics + conf->n_label_topics; i++) {
                const char *tn = i < conf->n_request_topics
                                     ? conf->request_topics[i]
                                     : conf->label_topics[i - conf->n_request_topics];
                if (tn[0] == '^') {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: %s \"%s\": topic patterns (regular expressions) are not "
                                  "supported; list the topics",
                                  file,
                                  i < conf->n_request_topics ? "topics.requests" : "topics.labels",
                                  tn);
                        return SL_ERR_CONFIG;
                }
        }
        for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
                const char *in =
                    topic_in(outputs[i].topic, conf->request_topics, conf->n_request_topics)
                        ? "topics.requests"
                    : topic_in(outputs[i].topic, conf->label_topics, conf->n_label_topics)
                        ? "topics.labels"
                        : NULL;
                if (in) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: %s = \"%s\" is also in %s: the worker would read its own "
                                  "output back as input (a dead letter would loop for ever)",
                                  file, outputs[i].name, outputs[i].topic, in);
                        return SL_ERR_CONFIG;
                }
        }
        for (size_t i = 0; i < conf->n_label_topics; i++)
                if (topic_in(conf->label_topics[i], conf->request_topics, conf->n_request_topics)) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: topics.labels \"%s\" is also in topics.requests: a record "
                                  "cannot be both a request and a label",
                                  file, conf->label_topics[i]);
                        return SL_ERR_CONFIG;
                }
        for (size_t i = 0; i < conf->n_default_models; i++) {
                const char *e = conf->default_models[i], *eq = strchr(e, '=');
                size_t n = eq ? (size_t)(eq - e) : strlen(e);
                int found = 0;
                for (size_t j = 0; j < conf->n_request_topics && !found; j++)
                        found = strlen(conf->request_topics[j]) == n &&
                                !strncmp(conf->request_topics[j], e, n);
                if (!found) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: topics.default_models \"%s\": topic %.*s is not in "
                                  "topics.requests",
                                  file, e, (int)n, e);
                        return SL_ERR_CONFIG;
                }
        }
        if (!strcmp(conf->framing, "raw") && conf->n_writer_schemas) {
                sl_strfmt(errstr, errstr_size,
                          "%s: codec.writer_schemas applies to codec.framing = \"confluent\" (a "
                          "message's schema id names its writer schema); with \"raw\" use "
                          "codec.request_writer_schema",
                          file);
                return SL_ERR_CONFIG;
        }
        if (!strcmp(conf->framing, "confluent") && conf->request_writer_schema) {
                sl_strfmt(errstr, errstr_size,
                          "%s: codec.request_writer_schema applies to codec.framing = \"raw\"; "
                          "with \"confluent\" each message's schema id names its writer schema: "
                          "use codec.writer_schemas (\"ID=PATH\")",
                          file);
                return SL_ERR_CONFIG;
        }
        return SL_OK;
}

sl_err_t sl_conf_load(sl_conf_t *conf, const char *path, char *errstr, size_t errstr_size)
{
        sl_err_t err;

        if ((err = sl_conf_init_defaults(conf))) {
                sl_strfmt(errstr, errstr_size, "configuration defaults: out of memory");
                return err;
        }
        if (path && (err = read_file(conf, path, errstr, errstr_size)))
                goto done;
        if (!(err = apply_env(conf, errstr, errstr_size)))
                err = check_together(conf, errstr, errstr_size);
done:
        if (err)
                sl_conf_cleanup(conf);
        return err;
}
