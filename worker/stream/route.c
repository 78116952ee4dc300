/*
 * Routing: which loaded model version serves a request (explicit version,
 * canary split, shadow copy). @locality worker thread.
 */
#define XXH_INLINE_ALL
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "stream_int.h"

/*
 * Which version serves \p req: the one it names; else the model's canary for
 * canary_fraction of the ids (XXH3 of the id, so a retry goes the same way)
 * and otherwise the highest version that is neither canary nor shadow.
 * *shadowp: the version that runs a copy, unanswered (NULL for none).
 */
const sl_repo_model_t *sl_stream_route(sl_worker_t *w, const sl_request_t *req,
                                       const sl_repo_model_t **shadowp)
{
        const sl_repo_model_t *m = sl_repo_find(w->repo, req->model_name, req->model_version);
        char v[32];

        *shadowp = NULL;
        if (!m)
                return NULL;
        if ((!req->model_version || !*req->model_version) &&
            (m->canary_version || m->shadow_version)) {
                const sl_repo_model_t *primary = NULL, *canary = NULL;
                for (size_t i = 0; i < sl_repo_count(w->repo); i++) {
                        const sl_repo_model_t *x = sl_repo_get(w->repo, i);
                        int64_t xv = 0;
                        if (strcmp(x->name, m->name) || sl_parse_i64(x->version, &xv))
                                continue;
                        if (xv == m->canary_version)
                                canary = x;
                        else if (xv != m->shadow_version)
                                primary = x; /* ascending: the last is the highest */
                }
                if (canary && m->canary_fraction > 0) {
                        uint64_t h = XXH3_64bits(req->id, strlen(req->id));
                        /* top 53 bits as a uniform double in [0, 1) */
                        if ((double)(h >> 11) * 0x1.0p-53 < m->canary_fraction || !primary)
                                primary = canary;
                }
                m = primary ? primary : m;
        }
        if (m->shadow_version) {
                sl_strfmt(v, sizeof(v), "%lld", (long long)m->shadow_version);
                *shadowp = sl_repo_find(w->repo, m->name, v);
                if (*shadowp == m)
                        *shadowp = NULL;
        }
        return m;
}

/* Is version \p version of \p name loaded? */
static int loaded(sl_worker_t *w, const char *name, int64_t version)
{
        char v[32];
        sl_strfmt(v, sizeof(v), "%lld", (long long)version);
        return sl_repo_find(w->repo, name, v) != NULL;
}

void sl_stream_route_check(sl_worker_t *w)
{
        for (size_t i = 0; i < sl_repo_count(w->repo); i++) {
                const sl_repo_model_t *x = sl_repo_get(w->repo, i);
                const sl_repo_model_t *m = sl_repo_find(w->repo, x->name, NULL);
                if (m != x) /* once per model: its highest version's settings */
                        continue;
                if (m->canary_version && !loaded(w, m->name, m->canary_version))
                        SL_LOG(SL_LOG_WARNING, "MODEL",
                               "%s: canary_version %lld is not loaded (see version_policy): no "
                               "canary traffic",
                               m->name, (long long)m->canary_version);
                if (m->shadow_version && !loaded(w, m->name, m->shadow_version))
                        SL_LOG(SL_LOG_WARNING, "MODEL",
                               "%s: shadow_version %lld is not loaded (see version_policy): no "
                               "shadow runs",
                               m->name, (long long)m->shadow_version);
        }
}

sl_request_t *sl_stream_request_copy(const sl_request_t *req)
{
        sl_request_t *c = calloc(1, sizeof(*c));
        if (!c || !(c->id = strdup(req->id)) || !(c->model_name = strdup(req->model_name)) ||
            !(c->inputs = calloc(req->n_inputs, sizeof(*c->inputs))))
                goto fail;
        c->n_inputs = req->n_inputs;
        c->has_label = req->has_label;
        c->label = req->label;
        for (size_t i = 0; i < req->n_inputs; i++) {
                const sl_named_tensor_t *t = &req->inputs[i];
                c->inputs[i] = *t;
                c->inputs[i].name = NULL;
                c->inputs[i].tensor.data = NULL;
                if (!(c->inputs[i].name = strdup(t->name)) ||
                    !(c->inputs[i].tensor.data = malloc(t->tensor.nbytes ? t->tensor.nbytes : 1)))
                        goto fail;
                memcpy(c->inputs[i].tensor.data, t->tensor.data, t->tensor.nbytes);
        }
        return c;
fail:
        sl_request_destroy(c);
        return NULL;
}
