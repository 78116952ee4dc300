/*
 * Writer -> reader schema resolution (Avro spec 1.11, "Schema Resolution"),
 * done once per writer schema when the codec starts: the result is a plan
 * (sl_rplan_t) that transcode.c follows for every message.
 *
 * Rules implemented, as the spec states them:
 *  - records: same unqualified name, or the writer's name is one of the
 *    reader's aliases; fields matched by name or by a reader field alias;
 *    writer fields the reader lacks are skipped; reader fields the writer
 *    lacks take their default (no default: incompatible);
 *  - promotions int -> long, float, double; long -> float, double;
 *    float -> double; string <-> bytes;
 *  - enums by symbol (a symbol the reader lacks takes the reader's enum
 *    default, else it is an error when a message holds it); fixed by name
 *    and size; arrays and maps recursively;
 *  - writer union: each branch resolved on its own; a branch that cannot be
 *    resolved is an error only when a message selects it;
 *  - reader union, writer not: the first reader branch that matches (same
 *    type or name first, then a promotion, as the Java reader does).
 *
 * avro-c parses neither defaults nor aliases into its schema objects, so
 * they are read from the reader schema's JSON text (parsed with jansson in
 * codec.c), looked up by the full name of the named type. Defaults are
 * encoded to Avro binary here, once, so that applying one costs a memcpy.
 *
 * Plans can be cyclic (recursive schemas): a (writer, reader) pair being
 * built is found again by the memo and reused; every node is owned by the
 * plan's flat node list.
 */
#include "codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RP_PATH 256

typedef struct named_s {
        char *full;
        const json_t *obj;
} named_t;

typedef struct rctx_s {
        sl_rplan_t *plan;
        named_t *named;
        size_t n_named;
        int nomem;
} rctx_t;

static avro_schema_t deref(avro_schema_t s)
{
        while (s && avro_typeof(s) == AVRO_LINK)
                s = avro_schema_link_target(s);
        return s;
}

static int is_named(avro_type_t t)
{
        return t == AVRO_RECORD || t == AVRO_ENUM || t == AVRO_FIXED;
}

/* ---- named types of the reader's JSON (defaults, aliases) ---------------- */

/* String member \p key of object \p obj, or NULL (also when obj is NULL). */
static const char *str_member(const json_t *obj, const char *key)
{
        return json_string_value(json_object_get(obj, key));
}

static void add_named(rctx_t *c, const char *ns, const char *name, const json_t *obj)
{
        named_t *n = realloc(c->named, (c->n_named + 1) * sizeof(*n));
        size_t len;
        char *full;

        if (!n) {
                c->nomem = 1;
                return;
        }
        c->named = n;
        len = (ns ? strlen(ns) + 1 : 0) + strlen(name) + 1;
        if (!(full = malloc(len))) {
                c->nomem = 1;
                return;
        }
        if (ns && *ns)
                sl_strfmt(full, len, "%s.%s", ns, name);
        else
                sl_strfmt(full, len, "%s", name);
        c->named[c->n_named].full = full;
        c->named[c->n_named++].obj = obj;
}

/* Walk a schema's JSON, recording named types under their full names with
 * the namespace rules of the spec ("Names"). */
static void collect(rctx_t *c, const json_t *j, const char *ns, int depth)
{
        const char *type, *name, *dot;
        const json_t *fields;
        char nsbuf[RP_PATH];

        if (!j || depth > 64)
                return;
        if (json_is_array(j)) {
                for (size_t i = 0; i < json_array_size(j); i++)
                        collect(c, json_array_get(j, i), ns, depth + 1);
                return;
        }
        if (!json_is_object(j))
                return;
        type = str_member(j, "type");
        if (!type) {
                collect(c, json_object_get(j, "type"), ns, depth + 1);
                return;
        }
        if (!strcmp(type, "array")) {
                collect(c, json_object_get(j, "items"), ns, depth + 1);
                return;
        }
        if (!strcmp(type, "map")) {
                collect(c, json_object_get(j, "values"), ns, depth + 1);
                return;
        }
        name = str_member(j, "name");
        if (!name || (strcmp(type, "record") && strcmp(type, "error") && strcmp(type, "enum") &&
                      strcmp(type, "fixed")))
                return;
        if ((dot = strrchr(name, '.'))) {
                sl_strfmt(nsbuf, sizeof(nsbuf), "%.*s", (int)(dot - name), name);
                name = dot + 1;
                ns = nsbuf;
        } else if (str_member(j, "namespace")) {
                ns = str_member(j, "namespace");
        }
        add_named(c, ns, name, j);
        fields = json_object_get(j, "fields");
        for (size_t i = 0; i < json_array_size(fields); i++)
                collect(c, json_object_get(json_array_get(fields, i), "type"), ns, depth + 1);
}

/* The JSON object of reader named type \p s, or NULL. */
static const json_t *find_named(const rctx_t *c, avro_schema_t s)
{
        const char *ns = avro_schema_namespace(s), *name = avro_schema_name(s);
        char full[RP_PATH];

        if (ns && *ns)
                sl_strfmt(full, sizeof(full), "%s.%s", ns, name);
        else
                sl_strfmt(full, sizeof(full), "%s", name);
        for (size_t i = 0; i < c->n_named; i++)
                if (!strcmp(c->named[i].full, full))
                        return c->named[i].obj;
        return NULL;
}

static const char *unqualified(const char *name)
{
        const char *dot = strrchr(name, '.');

        return dot ? dot + 1 : name;
}

/* \p name equals one of the "aliases" of \p obj (full or unqualified). */
static int has_alias(const json_t *obj, const char *ns, const char *name)
{
        const json_t *aliases = json_object_get(obj, "aliases");
        char full[RP_PATH];

        sl_strfmt(full, sizeof(full), "%s%s%s", ns ? ns : "", ns && *ns ? "." : "", name);
        for (size_t i = 0; i < json_array_size(aliases); i++) {
                const char *alias = json_string_value(json_array_get(aliases, i));

                if (alias && (!strcmp(alias, full) || !strcmp(unqualified(alias), name)))
                        return 1;
        }
        return 0;
}

/* Named types match by unqualified name or a reader alias. */
static int names_match(const rctx_t *c, avro_schema_t w, avro_schema_t r)
{
        const json_t *obj;

        if (!strcmp(avro_schema_name(w), avro_schema_name(r)))
                return 1;
        obj = find_named(c, r);
        return obj && has_alias(obj, avro_schema_namespace(w), avro_schema_name(w));
}

/* The field object named \p name in a record's JSON "fields", or NULL. */
static const json_t *field_json(const json_t *fields, const char *name)
{
        for (size_t k = 0; k < json_array_size(fields); k++) {
                const json_t *f = json_array_get(fields, k);
                const char *fname = str_member(f, "name");

                if (fname && !strcmp(fname, name))
                        return f;
        }
        return NULL;
}

/* ---- defaults: JSON -> Avro binary ---------------------------------------- */

static int put_default(const rctx_t *c, sl_obuf_t *o, const json_t *v, avro_schema_t s, int depth);

static int put_bytes_default(sl_obuf_t *o, const json_t *v, int64_t fixed)
{
        /* Spec: bytes and fixed defaults are strings whose code points 0-255
         * are the byte values. jansson hands out UTF-8 (with U+0000 kept,
         * JSON_ALLOW_NUL), so each is one or two bytes here. */
        size_t len = json_string_length(v);
        const uint8_t *p = (const uint8_t *)json_string_value(v), *end = p + len;
        uint8_t *tmp = malloc(len + 1);
        size_t n = 0;
        int rc = -1;

        if (!tmp)
                return -1;
        while (p < end) {
                if (*p < 0x80) {
                        tmp[n++] = *p++;
                } else if ((*p & 0xe0) == 0xc0 && p + 1 < end) {
                        uint32_t cp = (uint32_t)(*p & 0x1f) << 6 | (p[1] & 0x3f);

                        if (cp > 0xff)
                                goto done;
                        tmp[n++] = (uint8_t)cp;
                        p += 2;
                } else {
                        goto done;
                }
        }
        if (fixed >= 0 && (int64_t)n != fixed)
                goto done;
        rc = (fixed < 0 && sl_obuf_long(o, (int64_t)n)) || sl_obuf_put(o, tmp, n) ? -1 : 0;
done:
        free(tmp);
        return rc;
}

static int put_record_default(const rctx_t *c, sl_obuf_t *o, const json_t *v, avro_schema_t s,
                              int depth)
{
        const json_t *obj = find_named(c, s), *fields = json_object_get(obj, "fields");

        if (!json_is_object(v))
                return -1;
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                const char *name = avro_schema_record_field_name(s, (int)i);
                const json_t *fv = json_object_get(v, name);

                if (!fv)
                        fv = json_object_get(field_json(fields, name), "default");
                if (!fv || put_default(c, o, fv, avro_schema_record_field_get_by_index(s, (int)i),
                                       depth + 1))
                        return -1;
        }
        return 0;
}

/* An array default: one block of the items, then the end of blocks. */
static int put_array_default(const rctx_t *c, sl_obuf_t *o, const json_t *v, avro_schema_t s,
                             int depth)
{
        size_t n = json_array_size(v);

        if (!json_is_array(v) || (n && sl_obuf_long(o, (int64_t)n)))
                return -1;
        for (size_t i = 0; i < n; i++)
                if (put_default(c, o, json_array_get(v, i), avro_schema_array_items(s), depth + 1))
                        return -1;
        return sl_obuf_long(o, 0);
}

/* A map default: one block of the members in the order of the text (jansson
 * keeps insertion order; a key given twice counts once, its last value, as
 * avro-c's view of the same text has it). */
static int put_map_default(const rctx_t *c, sl_obuf_t *o, const json_t *v, avro_schema_t s,
                           int depth)
{
        json_t *obj = (json_t *)v; /* jansson's iterator takes non-const; only read */
        size_t n = json_object_size(v);

        if (!json_is_object(v) || (n && sl_obuf_long(o, (int64_t)n)))
                return -1;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
                const char *key = json_object_iter_key(it);

                if (sl_obuf_long(o, (int64_t)strlen(key)) || sl_obuf_put(o, key, strlen(key)) ||
                    put_default(c, o, json_object_iter_value(it), avro_schema_map_values(s),
                                depth + 1))
                        return -1;
        }
        return sl_obuf_long(o, 0);
}

static int put_default(const rctx_t *c, sl_obuf_t *o, const json_t *v, avro_schema_t s, int depth)
{
        float f;
        double d;
        uint8_t b;
        size_t len;
        int idx;

        s = deref(s);
        if (depth > 64)
                return -1;
        /* Numbers: jansson reads a number without fraction or exponent as a
         * json_int_t (long long), exactly, and refuses one beyond its range
         * (as avro-c, reading the same text with the same jansson, already
         * did); anything else is a double. */
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return json_is_null(v) ? 0 : -1;
        case AVRO_BOOLEAN:
                if (!json_is_boolean(v))
                        return -1;
                b = json_is_true(v);
                return sl_obuf_put(o, &b, 1);
        case AVRO_INT32:
                if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
                    json_integer_value(v) > INT32_MAX)
                        return -1;
                return sl_obuf_long(o, (int64_t)json_integer_value(v));
        case AVRO_INT64:
                if (!json_is_integer(v))
                        return -1;
                return sl_obuf_long(o, (int64_t)json_integer_value(v));
        case AVRO_FLOAT:
                if (!json_is_number(v))
                        return -1;
                f = (float)json_number_value(v);
                return sl_obuf_put(o, &f, 4);
        case AVRO_DOUBLE:
                if (!json_is_number(v))
                        return -1;
                d = json_number_value(v);
                return sl_obuf_put(o, &d, 8);
        case AVRO_STRING:
                if (!json_is_string(v))
                        return -1;
                len = json_string_length(v);
                if (sl_obuf_long(o, (int64_t)len))
                        return -1;
                return sl_obuf_put(o, json_string_value(v), len);
        case AVRO_BYTES:
        case AVRO_FIXED:
                if (!json_is_string(v))
                        return -1;
                return put_bytes_default(
                    o, v, avro_typeof(s) == AVRO_FIXED ? avro_schema_fixed_size(s) : -1);
        case AVRO_ENUM:
                if (!json_is_string(v) ||
                    (idx = avro_schema_enum_get_by_name(s, json_string_value(v))) < 0)
                        return -1;
                return sl_obuf_long(o, idx);
        case AVRO_ARRAY:
                return put_array_default(c, o, v, s, depth);
        case AVRO_MAP:
                return put_map_default(c, o, v, s, depth);
        case AVRO_RECORD:
                return put_record_default(c, o, v, s, depth);
        case AVRO_UNION:
                /* The spec ties a union default to the first branch; later
                 * branches are tried too, as lenient readers do. */
                for (size_t i = 0; i < avro_schema_union_size(s); i++) {
                        size_t mark = o->n;

                        if (!sl_obuf_long(o, (int64_t)i) &&
                            !put_default(c, o, v, avro_schema_union_branch(s, (int)i), depth + 1))
                                return 0;
                        o->n = mark;
                }
                return -1;
        default:
                return -1;
        }
}

/* ---- plan nodes ------------------------------------------------------------- */

static sl_rp_t *node_new(rctx_t *c, rp_kind_t kind, avro_schema_t w, avro_schema_t r)
{
        sl_rplan_t *p = c->plan;
        sl_rp_t *n;

        if (p->n_nodes == p->cap_nodes) {
                size_t cap = p->cap_nodes ? 2 * p->cap_nodes : 16;
                sl_rp_t **nodes = realloc(p->nodes, cap * sizeof(*nodes));

                if (!nodes)
                        goto oom;
                p->nodes = nodes;
                p->cap_nodes = cap;
        }
        if (!(n = calloc(1, sizeof(*n))))
                goto oom;
        n->kind = kind;
        n->w = w;
        n->r = r;
        p->nodes[p->n_nodes++] = n;
        return n;
oom:
        c->nomem = 1;
        return NULL;
}

static void node_free(sl_rp_t *n)
{
        for (size_t i = 0; n->rf && i < n->n_rfields; i++)
                free(n->rf[i].def);
        free(n->wf);
        free(n->rf);
        free(n->branch);
        free(n->enum_map);
        free(n->msg);
        free(n);
}

/* Turn \p n into an RP_ERROR node "path: reason". Returns \p n. */
static sl_rp_t *set_error(rctx_t *c, sl_rp_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static sl_rp_t *set_error(rctx_t *c, sl_rp_t *n, const char *path, const char *fmt, ...)
{
        char reason[RP_PATH], msg[2 * RP_PATH];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        sl_strfmt(msg, sizeof(msg), "%s%s%s", path, *path ? ": " : "", reason);
        free(n->msg);
        n->reason = 0;
        if (!(n->msg = strdup(msg)))
                c->nomem = 1;
        else
                n->reason = strlen(msg) >= strlen(reason) ? strlen(msg) - strlen(reason) : 0;
        n->kind = RP_ERROR;
        n->building = 0;
        return n;
}

/* Same message as \p child, on \p n. */
static sl_rp_t *copy_error(rctx_t *c, sl_rp_t *n, const sl_rp_t *child)
{
        free(n->msg);
        n->reason = child->msg ? child->reason : 0;
        if (!(n->msg = strdup(child->msg ? child->msg : "cannot be resolved")))
                c->nomem = 1;
        n->kind = RP_ERROR;
        n->building = 0;
        return n;
}

static const char *type_name(avro_schema_t s)
{
        return avro_schema_type_name(s);
}

static int promotable(avro_type_t w, avro_type_t r)
{
        switch (w) {
        case AVRO_INT32:
                return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
        case AVRO_INT64:
                return r == AVRO_FLOAT || r == AVRO_DOUBLE;
        case AVRO_FLOAT:
                return r == AVRO_DOUBLE;
        case AVRO_STRING:
                return r == AVRO_BYTES;
        case AVRO_BYTES:
                return r == AVRO_STRING;
        default:
                return 0;
        }
}

/* Shallow match used to pick a reader union branch (pass 0: same type or
 * name, pass 1: a promotion). */
static int branch_matches(const rctx_t *c, avro_schema_t w, avro_schema_t r, int pass)
{
        avro_type_t wt = avro_typeof(w), rt = avro_typeof(r);

        if (pass == 1)
                return promotable(wt, rt);
        if (wt != rt)
                return 0;
        return !is_named(wt) || names_match(c, w, r);
}

static const sl_rp_t *build(rctx_t *c, avro_schema_t w, avro_schema_t r, const char *path,
                            int depth);

static const sl_rp_t *build_record(rctx_t *c, sl_rp_t *n, const char *path, int depth)
{
        avro_schema_t w = n->w, r = n->r;
        const json_t *obj = find_named(c, r), *fields = json_object_get(obj, "fields");
        char sub[RP_PATH];
        int last = -1;

        n->n_wfields = avro_schema_record_size(w);
        n->n_rfields = avro_schema_record_size(r);
        n->wf = calloc(n->n_wfields ? n->n_wfields : 1, sizeof(*n->wf));
        n->rf = calloc(n->n_rfields ? n->n_rfields : 1, sizeof(*n->rf));
        if (!n->wf || !n->rf) {
                c->nomem = 1;
                return n;
        }
        n->in_order = 1;
        for (size_t i = 0; i < n->n_rfields; i++)
                n->rf[i].wfield = -1;
        for (size_t j = 0; j < n->n_wfields; j++) {
                n->wf[j].name = avro_schema_record_field_name(w, (int)j);
                n->wf[j].w = avro_schema_record_field_get_by_index(w, (int)j);
                n->wf[j].rfield = avro_schema_record_field_get_index(r, n->wf[j].name);
        }
        /* Reader fields the writer lacks under their own name may be there
         * under one of the reader field's aliases. */
        for (size_t k = 0; k < json_array_size(fields); k++) {
                const json_t *f = json_array_get(fields, k);
                const char *rname = str_member(f, "name");
                int ri = rname ? avro_schema_record_field_get_index(r, rname) : -1;

                if (ri < 0 || avro_schema_record_field_get_index(w, rname) >= 0)
                        continue;
                for (size_t j = 0; j < n->n_wfields; j++)
                        if (n->wf[j].rfield < 0 && has_alias(f, NULL, n->wf[j].name))
                                n->wf[j].rfield = ri;
        }
        for (size_t j = 0; j < n->n_wfields; j++) {
                int ri = n->wf[j].rfield;
                const sl_rp_t *child;

                if (ri < 0)
                        continue;
                if (n->rf[ri].wfield >= 0) {
                        n->wf[j].rfield = -1; /* two writer fields for one reader field */
                        continue;
                }
                sl_strfmt(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
                          avro_schema_record_field_name(r, ri));
                child = build(c, n->wf[j].w, avro_schema_record_field_get_by_index(r, ri), sub,
                              depth + 1);
                if (!child)
                        return n;
                if (child->kind == RP_ERROR)
                        return copy_error(c, n, child);
                n->wf[j].plan = child;
                n->rf[ri].wfield = (int)j;
                if (ri < last)
                        n->in_order = 0;
                last = ri;
        }
        for (size_t i = 0; i < n->n_rfields; i++) {
                const char *rname = avro_schema_record_field_name(r, (int)i);
                const json_t *def = json_object_get(field_json(fields, rname), "default");
                sl_obuf_t o = {.max = 1u << 20};

                if (n->rf[i].wfield >= 0)
                        continue;
                sl_strfmt(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", rname);
                if (!def)
                        return set_error(c, n, sub,
                                         "the writer schema has no such field and the reader's "
                                         "field has no default");
                if (put_default(c, &o, def, avro_schema_record_field_get_by_index(r, (int)i), 0)) {
                        free(o.b);
                        return set_error(c, n, sub, "the reader's default does not fit its type");
                }
                n->rf[i].def = o.b;
                n->rf[i].def_len = o.n;
        }
        return n;
}

static const sl_rp_t *build_enum(rctx_t *c, sl_rp_t *n)
{
        const char *def = str_member(find_named(c, n->r), "default");
        int def_idx = def ? avro_schema_enum_get_by_name(n->r, def) : -1;

        n->n_enum = (size_t)avro_schema_enum_number_of_symbols(n->w);
        if (!(n->enum_map = calloc(n->n_enum ? n->n_enum : 1, sizeof(*n->enum_map)))) {
                c->nomem = 1;
                return n;
        }
        for (size_t i = 0; i < n->n_enum; i++) {
                int ri = avro_schema_enum_get_by_name(n->r, avro_schema_enum_get(n->w, (int)i));

                n->enum_map[i] = ri >= 0 ? ri : def_idx;
        }
        return n;
}

static const sl_rp_t *build_wunion(rctx_t *c, sl_rp_t *n, const char *path, int depth)
{
        n->n_branches = avro_schema_union_size(n->w);
        if (!(n->branch = calloc(n->n_branches ? n->n_branches : 1, sizeof(*n->branch)))) {
                c->nomem = 1;
                return n;
        }
        for (size_t i = 0; i < n->n_branches; i++) {
                avro_schema_t wb = deref(avro_schema_union_branch(n->w, (int)i));

                /* An unresolvable branch stays an RP_ERROR node: it only
                 * fails the messages that select it. */
                if (!(n->branch[i] = build(c, wb, n->r, path, depth + 1)))
                        return n;
        }
        return n;
}

static const sl_rp_t *build_runion(rctx_t *c, sl_rp_t *n, const char *path, int depth)
{
        size_t nb = avro_schema_union_size(n->r);

        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < nb; i++) {
                        avro_schema_t rb = deref(avro_schema_union_branch(n->r, (int)i));
                        const sl_rp_t *child;

                        if (!branch_matches(c, n->w, rb, pass))
                                continue;
                        if (!(child = build(c, n->w, rb, path, depth + 1)))
                                return n;
                        if (child->kind == RP_ERROR)
                                return copy_error(c, n, child);
                        n->items = child;
                        n->rbranch = (int64_t)i;
                        return n;
                }
        }
        return set_error(c, n, path, "writer type %s matches no branch of the reader's union",
                         type_name(n->w));
}

static const sl_rp_t *build(rctx_t *c, avro_schema_t w, avro_schema_t r, const char *path,
                            int depth)
{
        avro_type_t wt, rt;
        char sub[RP_PATH];
        sl_rp_t *n;

        w = deref(w);
        r = deref(r);
        for (size_t i = 0; i < c->plan->n_nodes; i++)
                if (c->plan->nodes[i]->w == w && c->plan->nodes[i]->r == r)
                        return c->plan->nodes[i];
        wt = avro_typeof(w);
        rt = avro_typeof(r);
        if (!(n = node_new(c, RP_COPY, w, r)))
                return NULL;
        if (depth > 64)
                return set_error(c, n, path, "schemas nested too deeply");
        n->building = 1;
        if (wt == AVRO_UNION) {
                n->kind = RP_WUNION;
                build_wunion(c, n, path, depth);
        } else if (rt == AVRO_UNION) {
                n->kind = RP_RUNION;
                build_runion(c, n, path, depth);
        } else if (wt != rt) {
                if (!promotable(wt, rt))
                        return set_error(c, n, path, "writer type %s cannot be read as %s",
                                         type_name(w), type_name(r));
                n->kind = RP_PRIM;
                n->wt = wt;
                n->rt = rt;
        } else if (is_named(wt) && !names_match(c, w, r)) {
                /* avro_schema_type_name() of a named type is its name: say the kind */
                return set_error(c, n, path, "writer %s %s does not match reader %s %s",
                                 wt == AVRO_RECORD ? "record"
                                 : wt == AVRO_ENUM ? "enum"
                                                   : "fixed",
                                 avro_schema_name(w),
                                 rt == AVRO_RECORD ? "record"
                                 : rt == AVRO_ENUM ? "enum"
                                                   : "fixed",
                                 avro_schema_name(r));
        } else if (wt == AVRO_FIXED && avro_schema_fixed_size(w) != avro_schema_fixed_size(r)) {
                return set_error(c, n, path, "fixed size %lld differs from the reader's %lld",
                                 (long long)avro_schema_fixed_size(w),
                                 (long long)avro_schema_fixed_size(r));
        } else if (wt == AVRO_ARRAY || wt == AVRO_MAP) {
                const sl_rp_t *items;

                n->kind = wt == AVRO_ARRAY ? RP_ARRAY : RP_MAP;
                sl_strfmt(sub, sizeof(sub), "%s%s", path, wt == AVRO_ARRAY ? "[]" : "{}");
                items = build(
                    c, wt == AVRO_ARRAY ? avro_schema_array_items(w) : avro_schema_map_values(w),
                    wt == AVRO_ARRAY ? avro_schema_array_items(r) : avro_schema_map_values(r), sub,
                    depth + 1);
                if (items && items->kind == RP_ERROR)
                        return copy_error(c, n, items);
                n->items = items;
                n->w_item_min = sl_avro_min_size(wt == AVRO_ARRAY ? avro_schema_array_items(w)
                                                                  : avro_schema_map_values(w)) +
                                (wt == AVRO_MAP ? 1 : 0);
        } else if (wt == AVRO_RECORD) {
                n->kind = RP_RECORD;
                build_record(c, n, path, depth);
        } else if (wt == AVRO_ENUM) {
                n->kind = RP_ENUM;
                build_enum(c, n);
        }
        /* Equal schemas (the same encoding) are copied whole: the fast path
         * for tensor data. A record is not, if the reader renamed nothing but
         * the plan still reorders or fills fields. */
        if (n->kind != RP_ERROR && avro_schema_equal(w, r) &&
            (n->kind != RP_RECORD || n->n_wfields == n->n_rfields)) {
                int same = 1;

                for (size_t j = 0; n->kind == RP_RECORD && j < n->n_wfields; j++)
                        same &= n->wf[j].rfield == (int)j && n->wf[j].plan &&
                                n->wf[j].plan->kind == RP_COPY;
                if (same)
                        n->kind = RP_COPY;
        }
        n->building = 0;
        return n;
}

sl_err_t sl_rplan_new(avro_schema_t writer, avro_schema_t reader, const json_t *reader_json,
                      sl_rplan_t **planp)
{
        rctx_t c = {0};
        sl_err_t err = SL_OK;

        *planp = NULL;
        if (!(c.plan = calloc(1, sizeof(*c.plan))))
                return SL_ERR_NOMEM;
        collect(&c, reader_json, NULL, 0);
        if (!c.nomem)
                c.plan->root = build(&c, writer, reader, "", 0);
        if (c.nomem || !c.plan->root) {
                err = SL_ERR_NOMEM;
                sl_rplan_destroy(c.plan);
        } else {
                *planp = c.plan;
        }
        for (size_t i = 0; i < c.n_named; i++)
                free(c.named[i].full);
        free(c.named);
        return err;
}

void sl_rplan_destroy(sl_rplan_t *plan)
{
        if (!plan)
                return;
        for (size_t i = 0; i < plan->n_nodes; i++)
                node_free(plan->nodes[i]);
        free(plan->nodes);
        free(plan);
}
