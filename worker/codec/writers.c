/*
 * Writer schemas of requests: which schema wrote a message, and the plan
 * that resolves it against the reader schema (schemas/inference_request.avsc).
 *
 *  - Confluent framing: the schema id of each message names its writer
 *    schema (codec.writer_schemas, "ID=PATH" entries). The request schema id
 *    always names the reader schema itself unless an entry maps it. A writer
 *    schema that cannot be resolved does not stop the worker: it is kept
 *    with its reason, and its messages become SCHEMA dead letters, so that
 *    one producer's bad schema does not take down the service of others.
 *  - Raw framing: one writer schema for every message
 *    (codec.request_writer_schema, default the reader schema). Here an
 *    unresolvable writer schema fails start-up: no message could be served.
 *
 * A writer schema file that cannot be read or parsed fails start-up either
 * way: that is a configuration error, not schema evolution.
 */
#include "codec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static sl_err_t parse_entry(const char *entry, int32_t *id, const char **path, char *errstr,
                            size_t errstr_size)
{
        const char *eq = strchr(entry, '=');
        char num[16], *end;
        long v;

        if (!eq || eq == entry || (size_t)(eq - entry) >= sizeof(num) || !eq[1])
                goto bad;
        sl_strfmt(num, sizeof(num), "%.*s", (int)(eq - entry), entry);
        errno = 0;
        v = strtol(num, &end, 10);
        if (*end || errno || v < 0 || v > INT32_MAX)
                goto bad;
        *id = (int32_t)v;
        *path = eq + 1;
        return SL_OK;
bad:
        sl_strfmt(errstr, errstr_size,
                  "codec.writer_schemas: \"%s\" is not \"ID=PATH\" (ID 0..2147483647)", entry);
        return SL_ERR_CONFIG;
}

static sl_writer_t *find_writer(const sl_codec_t *codec, int32_t id)
{
        for (size_t i = 0; i < codec->n_writers; i++)
                if (codec->writers[i].id == id)
                        return &codec->writers[i];
        return NULL;
}

/* Append a writer; \p path NULL means the reader schema itself. */
static sl_err_t add_writer(sl_codec_t *codec, int32_t id, const char *path, char *errstr,
                           size_t errstr_size)
{
        avro_schema_t reader = codec->schema[SL_REC_REQUEST];
        sl_writer_t *w, *ws;
        char *json = NULL, ferr[512];
        size_t len = 0;
        sl_err_t err;

        if (!(ws = realloc(codec->writers, (codec->n_writers + 1) * sizeof(*ws))))
                return SL_ERR_NOMEM;
        codec->writers = ws;
        w = &codec->writers[codec->n_writers++];
        memset(w, 0, sizeof(*w));
        w->id = id;
        if (!(w->path = strdup(path ? path : "")))
                return SL_ERR_NOMEM;
        if (!path) {
                w->schema = avro_schema_incref(reader);
                return SL_OK;
        }
        if ((err = sl_file_read(path, &json, &len, ferr, sizeof(ferr)))) {
                sl_strfmt(errstr, errstr_size, "writer schema %s", ferr); /* ferr names path */
                goto done;
        }
        if (avro_schema_from_json_length(json, len, &w->schema)) {
                w->schema = NULL;
                sl_strfmt(errstr, errstr_size, "writer schema %s: avro-c: %s", path,
                          avro_strerror());
                err = SL_ERR_CONFIG;
                goto done;
        }
        if (avro_schema_equal(w->schema, reader))
                goto done;
        if ((err = sl_rplan_new(w->schema, reader, codec->rq_json, &w->plan)))
                goto done;
        if (w->plan->root->kind == RP_ERROR && !(w->incompatible = strdup(w->plan->root->msg)))
                err = SL_ERR_NOMEM;
done:
        if (err == SL_ERR_NOMEM)
                sl_strfmt(errstr, errstr_size, "writer schema %s: out of memory", path);
        free(json);
        return err;
}

static void log_writer(const sl_codec_t *codec, const sl_writer_t *w)
{
        char id[24];

        if (codec->framing == SL_FRAMING_CONFLUENT)
                sl_strfmt(id, sizeof(id), "id %d", (int)w->id);
        else
                sl_strfmt(id, sizeof(id), "(raw framing)");
        if (w->incompatible)
                SL_LOG(SL_LOG_WARNING, "CODEC",
                       "writer schema %s %s cannot be resolved against the reader schema: %s; "
                       "its requests become dead letters (SCHEMA)",
                       id, w->path, w->incompatible);
        else
                SL_LOG(*w->path ? SL_LOG_INFO : SL_LOG_DEBUG, "CODEC", "writer schema %s %s: %s",
                       id, *w->path ? w->path : "(the reader schema)",
                       w->plan ? "resolved against the reader schema" : "same as the reader");
}

sl_err_t sl_codec_writers_load(sl_codec_t *codec, const sl_codec_params_t *params, char *errstr,
                               size_t errstr_size)
{
        int32_t rid = params->request_schema_id, id;
        sl_err_t err = SL_OK;
        const char *path;

        if (codec->framing == SL_FRAMING_RAW) {
                err = add_writer(codec, -1, params->request_writer_schema, errstr, errstr_size);
                if (!err && codec->writers[0].incompatible) {
                        sl_strfmt(errstr, errstr_size,
                                  "codec.request_writer_schema %s cannot be resolved against "
                                  "the reader schema: %s",
                                  params->request_writer_schema, codec->writers[0].incompatible);
                        err = SL_ERR_CONFIG;
                }
                if (!err)
                        log_writer(codec, &codec->writers[0]);
                return err;
        }
        for (size_t i = 0; i < params->n_writer_schemas && !err; i++) {
                if ((err = parse_entry(params->writer_schemas[i], &id, &path, errstr, errstr_size)))
                        break;
                if (find_writer(codec, id)) {
                        sl_strfmt(errstr, errstr_size,
                                  "codec.writer_schemas: schema id %d is listed twice", (int)id);
                        err = SL_ERR_CONFIG;
                        break;
                }
                if (!(err = add_writer(codec, id, path, errstr, errstr_size)))
                        log_writer(codec, &codec->writers[codec->n_writers - 1]);
        }
        if (!err && !find_writer(codec, rid) &&
            !(err = add_writer(codec, rid, NULL, errstr, errstr_size)))
                log_writer(codec, &codec->writers[codec->n_writers - 1]);
        return err;
}

void sl_codec_writers_destroy(sl_codec_t *codec)
{
        for (size_t i = 0; i < codec->n_writers; i++) {
                sl_writer_t *w = &codec->writers[i];

                free(w->path);
                if (w->schema)
                        avro_schema_decref(w->schema);
                sl_rplan_destroy(w->plan);
                free(w->incompatible);
        }
        free(codec->writers);
        codec->writers = NULL;
        codec->n_writers = 0;
}

/* "1, 7, 9" for error messages. */
static void list_ids(const sl_codec_t *codec, char *buf, size_t size)
{
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < codec->n_writers && off < size; i++) {
                sl_strfmt(buf + off, size - off, "%s%d", i ? ", " : "", (int)codec->writers[i].id);
                off += strlen(buf + off);
        }
}

sl_err_t sl_codec_request_payload(const sl_codec_t *codec, const void *buf, size_t len,
                                  const uint8_t **payloadp, size_t *plenp, uint8_t **ownedp,
                                  char *errstr, size_t errstr_size)
{
        const sl_writer_t *w;
        char ids[128], sub[512];
        int32_t id = -1;
        sl_err_t err;

        *ownedp = NULL;
        err = sl_codec_unframe_id(codec, SL_REC_REQUEST, buf, len, payloadp, plenp, &id, errstr,
                                  errstr_size);
        if (err)
                return err;
        w = codec->framing == SL_FRAMING_CONFLUENT ? find_writer(codec, id) : &codec->writers[0];
        if (!w) {
                list_ids(codec, ids, sizeof(ids));
                sl_strfmt(errstr, errstr_size,
                          "unknown schema id %d (InferenceRequest writer schema ids: %s)", (int)id,
                          ids);
                return SL_ERR_FRAMING;
        }
        if (w->incompatible) {
                sl_strfmt(errstr, errstr_size,
                          "writer schema id %d (%s) cannot be resolved against the reader "
                          "schema: %s",
                          (int)id, w->path, w->incompatible);
                return SL_ERR_SCHEMA;
        }
        if (!w->plan)
                return SL_OK;
        err = sl_rplan_transcode(w->plan, *payloadp, *plenp, ownedp, plenp, sub, sizeof(sub));
        if (err == SL_ERR_NOMEM)
                return err;
        if (err) {
                sl_strfmt(errstr, errstr_size, "writer schema %s: %s",
                          *w->path ? w->path : "(reader)", sub);
                return err;
        }
        *payloadp = *ownedp;
        return SL_OK;
}
