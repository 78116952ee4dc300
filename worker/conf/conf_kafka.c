/*
 * librdkafka pass-through: the `kafka` group, the `kafka_properties` list and
 * SLUICE_KAFKA_* environment variables become name/value strings with the
 * place they were set. Names and values are not checked here (this module
 * does not link librdkafka); the stream module hands them to
 * rd_kafka_conf_set() and reports its errors with that place.
 */
#include "conf_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static sl_err_t nomem(const char *where, char *errstr, size_t errstr_size)
{
        sl_strfmt(errstr, errstr_size, "%s: out of memory", where);
        return SL_ERR_NOMEM;
}

/*
 * Add (or, with \p replace, overwrite) property \p name. The file may set a
 * property only once (the `kafka` group and `kafka_properties` together), so
 * that two conflicting values are reported rather than resolved by order.
 */
static sl_err_t add_prop(sl_conf_t *conf, const char *name, const char *value, const char *file,
                         int line, int replace, char *errstr, size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE], prev[SL_CONF_WHERE_SIZE];
        sl_conf_kafka_prop_t p = {NULL, NULL, NULL, line};
        sl_conf_kafka_prop_t *props;
        sl_err_t err = SL_ERR_NOMEM;
        size_t i;

        if (line)
                sl_strfmt(where, sizeof(where), "%s:%d", file, line);
        else
                sl_strfmt(where, sizeof(where), "%s", file);
        for (i = 0; i < conf->n_kafka_props; i++)
                if (!strcmp(conf->kafka_props[i].name, name))
                        break;
        if (i < conf->n_kafka_props && !replace) {
                sl_strfmt(errstr, errstr_size, "%s: kafka property '%s' is already set at %s",
                          where, name,
                          sl_conf_kafka_prop_where(&conf->kafka_props[i], prev, sizeof(prev)));
                return SL_ERR_CONFIG;
        }
        if (!(p.name = strdup(name)) || !(p.value = strdup(value)) || !(p.file = strdup(file)))
                goto done;
        if (i < conf->n_kafka_props) {
                sl_conf_kafka_prop_t old = conf->kafka_props[i];
                conf->kafka_props[i] = p;
                p = old;
        } else {
                props = realloc(conf->kafka_props, (conf->n_kafka_props + 1) * sizeof(*props));
                if (!props)
                        goto done;
                conf->kafka_props = props;
                conf->kafka_props[conf->n_kafka_props++] = p;
                memset(&p, 0, sizeof(p));
        }
        err = SL_OK;
done:
        /* p holds what was not stored: the new strings on failure, the replaced ones on success */
        free(p.name);
        free(p.value);
        free(p.file);
        return err ? nomem(where, errstr, errstr_size) : SL_OK;
}

/* Join a libconfig array/list of strings with ',' (librdkafka's list syntax). */
static sl_err_t join_strings(const config_setting_t *s, const char *path, const char *full,
                             char **out, char *errstr, size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE];
        size_t len = 1, off = 0;
        int n = config_setting_length(s);
        char *buf;

        sl_conf_where(s, path, where, sizeof(where));
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                        sl_strfmt(errstr, errstr_size, "%s: %s[%d]: expected string, got %s",
                                  sl_conf_where(e, path, where, sizeof(where)), full, i,
                                  sl_conf_type_name(config_setting_type(e)));
                        return SL_ERR_CONFIG;
                }
                len += strlen(config_setting_get_string(e)) + 1;
        }
        if (!(buf = malloc(len)))
                return nomem(where, errstr, errstr_size);
        buf[0] = '\0';
        for (int i = 0; i < n; i++) {
                const char *v = config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
                int w = snprintf(buf + off, len - off, "%s%s", i ? "," : "", v);
                off += w > 0 ? (size_t)w : 0;
        }
        *out = buf;
        return SL_OK;
}

/* Text of one `kafka` group value; *heap is set when the text was allocated. */
static sl_err_t scalar_text(const config_setting_t *s, const char *path, const char *full,
                            char *buf, size_t size, const char **text, char **heap, char *errstr,
                            size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE];

        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                *text = sl_strfmt(buf, size, "%lld", (long long)sl_conf_int_value(s, path));
                return SL_OK;
        case CONFIG_TYPE_FLOAT:
                *text = sl_strfmt(buf, size, "%.17g", config_setting_get_float(s));
                return SL_OK;
        case CONFIG_TYPE_BOOL:
                *text = config_setting_get_bool(s) ? "true" : "false";
                return SL_OK;
        case CONFIG_TYPE_STRING:
                *text = config_setting_get_string(s);
                return SL_OK;
        case CONFIG_TYPE_ARRAY:
        case CONFIG_TYPE_LIST: {
                sl_err_t err = join_strings(s, path, full, heap, errstr, errstr_size);
                *text = *heap;
                return err;
        }
        default:
                sl_strfmt(errstr, errstr_size,
                          "%s: %s: expected string, integer, float, boolean or list of strings, "
                          "got %s",
                          sl_conf_where(s, path, where, sizeof(where)), full,
                          sl_conf_type_name(config_setting_type(s)));
                return SL_ERR_CONFIG;
        }
}

sl_err_t sl_conf_kafka_group(sl_conf_t *conf, const config_setting_t *grp, const char *path,
                             char *errstr, size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE], fbuf[SL_CONF_WHERE_SIZE], num[64], full[256], name[256];
        char *heap = NULL;
        const char *file, *text = NULL;
        sl_err_t err = SL_OK;

        if (config_setting_type(grp) != CONFIG_TYPE_GROUP) {
                sl_strfmt(errstr, errstr_size, "%s: kafka: expected group, got %s",
                          sl_conf_where(grp, path, where, sizeof(where)),
                          sl_conf_type_name(config_setting_type(grp)));
                return SL_ERR_CONFIG;
        }
        for (int i = 0; i < config_setting_length(grp) && !err; i++) {
                const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
                size_t j;
                /* libconfig names cannot contain '.', librdkafka's always do. */
                sl_strfmt(name, sizeof(name), "%s", config_setting_name(s));
                for (j = 0; name[j]; j++)
                        if (name[j] == '_')
                                name[j] = '.';
                sl_strfmt(full, sizeof(full), "kafka.%s", config_setting_name(s));
                err =
                    scalar_text(s, path, full, num, sizeof(num), &text, &heap, errstr, errstr_size);
                file = sl_conf_file_name(config_setting_source_file(s), path, fbuf, sizeof(fbuf));
                if (!err)
                        err = add_prop(conf, name, text, file, (int)config_setting_source_line(s),
                                       0, errstr, errstr_size);
                free(heap);
                heap = NULL;
        }
        return err;
}

sl_err_t sl_conf_kafka_properties(sl_conf_t *conf, const config_setting_t *list, const char *path,
                                  char *errstr, size_t errstr_size)
{
        char where[SL_CONF_WHERE_SIZE], fbuf[SL_CONF_WHERE_SIZE], name[256];
        int type = config_setting_type(list);
        sl_err_t err = SL_OK;

        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
                sl_strfmt(errstr, errstr_size,
                          "%s: kafka_properties: expected list of strings, "
                          "got %s",
                          sl_conf_where(list, path, where, sizeof(where)), sl_conf_type_name(type));
                return SL_ERR_CONFIG;
        }
        for (int i = 0; i < config_setting_length(list) && !err; i++) {
                const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
                const char *file =
                    sl_conf_file_name(config_setting_source_file(e), path, fbuf, sizeof(fbuf));
                unsigned line = config_setting_source_line(e);
                const char *s, *eq;

                /* libconfig 1.5 records element lines; fall back to the list's own. */
                if (!line)
                        line = config_setting_source_line(list);
                sl_strfmt(where, sizeof(where), "%s:%u", file, line);
                if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: kafka_properties[%d]: expected string, got %s", where, i,
                                  sl_conf_type_name(config_setting_type(e)));
                        return SL_ERR_CONFIG;
                }
                s = config_setting_get_string(e);
                if (!(eq = strchr(s, '=')) || eq == s || (size_t)(eq - s) >= sizeof(name)) {
                        sl_strfmt(errstr, errstr_size,
                                  "%s: kafka_properties[%d]: expected \"name=value\", got \"%s\"",
                                  where, i, s);
                        return SL_ERR_CONFIG;
                }
                sl_strfmt(name, sizeof(name), "%.*s", (int)(eq - s), s);
                err = add_prop(conf, name, eq + 1, file, (int)line, 0, errstr, errstr_size);
        }
        return err;
}

/*
 * Kubernetes injects <SERVICE>_SERVICE_HOST, <SERVICE>_PORT... for every
 * Service of the namespace; a Service named "sluice-kafka" would otherwise
 * turn into the properties service.host and port.*.
 */
static int is_service_link(const char *name)
{
        return !strncmp(name, "service.", 8) || !strcmp(name, "port") || !strncmp(name, "port.", 5);
}

sl_err_t sl_conf_kafka_env(sl_conf_t *conf, char *errstr, size_t errstr_size)
{
        size_t plen = strlen(SL_CONF_ENV_KAFKA_PREFIX);
        char name[256], where[SL_CONF_WHERE_SIZE];
        sl_err_t err;

        for (char **ep = environ; ep && *ep; ep++) {
                const char *var = *ep, *eq = strchr(var, '=');
                size_t nlen, j;
                if (!eq || strncmp(var, SL_CONF_ENV_KAFKA_PREFIX, plen))
                        continue;
                nlen = (size_t)(eq - var) - plen;
                if (!nlen || nlen >= sizeof(name))
                        continue;
                for (j = 0; j < nlen; j++) {
                        char c = var[plen + j];
                        name[j] = c == '_' ? '.' : (char)tolower((unsigned char)c);
                }
                name[nlen] = '\0';
                if (is_service_link(name))
                        continue;
                sl_strfmt(where, sizeof(where), "environment %.*s", (int)(eq - var), var);
                if ((err = add_prop(conf, name, eq + 1, where, 0, 1, errstr, errstr_size)))
                        return err;
        }
        return SL_OK;
}

void sl_conf_kafka_cleanup(sl_conf_t *conf)
{
        for (size_t i = 0; i < conf->n_kafka_props; i++) {
                free(conf->kafka_props[i].name);
                free(conf->kafka_props[i].value);
                free(conf->kafka_props[i].file);
        }
        free(conf->kafka_props);
        conf->kafka_props = NULL;
        conf->n_kafka_props = 0;
}

int sl_conf_kafka_prop_is_secret(const char *name)
{
        static const char *const words[] = {"password", "secret", "key"};
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strcasestr(name, words[i]))
                        return 1;
        return 0;
}

const char *sl_conf_kafka_prop_where(const sl_conf_kafka_prop_t *prop, char *buf, size_t size)
{
        if (prop->line)
                return sl_strfmt(buf, size, "%s:%d", prop->file, prop->line);
        return sl_strfmt(buf, size, "%s", prop->file);
}
