/*
 * Live model reload (issue: new versions without a restart or a lost
 * message). Every worker.reload_interval_ms, and on SIGHUP, the repository
 * folders are compared with what is served: a new version is loaded and
 * warmed up, then takes over at once (routing is by this thread, between
 * two messages, so the swap is atomic for requests); a version no longer
 * wanted has its open batch run and is freed. A version that fails to load
 * is reported and the serving one stays.
 *
 * Memory: with worker.model_memory_budget_mb set, a load that would take the
 * loaded model files over the budget first drains and frees the versions of
 * the same model that it replaces (drain-then-load; the worker serves nothing
 * meanwhile, so no request sees the gap). Otherwise load-then-swap, which
 * briefly holds both versions.
 * @locality worker thread only.
 */
#include <malloc.h>
#include <string.h>

#include "stream_int.h"

/* Drain and free one version. */
static void unload(sl_worker_t *w, const sl_repo_model_t *m)
{
        sl_repo_model_t *own = (sl_repo_model_t *)m; /* detached: ours to free */
        SL_LOG(SL_LOG_NOTICE, "MODEL", "unloading %s version %s", m->name, m->version);
        sl_stream_model_remove(w, m);
        sl_repo_detach(w->repo, m);
        sl_repo_model_destroy(own);
}

/* Drain-then-load: free the versions of \p name that the plan removes. */
static void unload_replaced(sl_worker_t *w, sl_repo_plan_t *plan, const char *name)
{
        for (size_t i = 0; i < plan->n_remove; i++) {
                if (!plan->remove[i] || strcmp(plan->remove[i]->name, name))
                        continue;
                unload(w, plan->remove[i]);
                plan->remove[i] = NULL;
        }
}

/* One round of the plan; returns 1 when a load failed (the plan must be made again). */
static int apply_plan(sl_worker_t *w, sl_repo_plan_t *plan)
{
        int64_t budget = (int64_t)w->conf->model_memory_budget_mb * 1024 * 1024;
        char errstr[1024];
        int failed = 0;

        for (size_t i = 0; i < plan->n_add; i++) {
                const sl_repo_version_t *v = &plan->add[i];
                sl_repo_model_t *m = NULL;
                int64_t t0 = sl_now_us();
                if (budget && sl_repo_bytes(w->repo) + v->bytes > budget) {
                        SL_LOG(SL_LOG_NOTICE, "MODEL",
                               "%s version %lld: %lld + %lld bytes exceed the budget of %lld: "
                               "drain-then-load",
                               v->name, (long long)v->version, (long long)sl_repo_bytes(w->repo),
                               (long long)v->bytes, (long long)budget);
                        unload_replaced(w, plan, v->name);
                }
                if (sl_repo_load(w->repo, v->name, v->version, &m, errstr, sizeof(errstr))) {
                        const sl_repo_model_t *cur = sl_repo_find(w->repo, v->name, NULL);
                        SL_LOG(SL_LOG_ERR, "MODEL", "%s version %lld failed to load (%s): %s",
                               v->name, (long long)v->version,
                               cur ? "the serving version stays" : "not served", errstr);
                        failed = 1;
                        continue;
                }
                if (sl_repo_insert(w->repo, m) ||
                    sl_stream_model_add(w, m, errstr, sizeof(errstr))) {
                        SL_LOG(SL_LOG_ERR, "MODEL", "%s version %lld: %s", v->name,
                               (long long)v->version, "out of memory swapping it in");
                        sl_repo_detach(w->repo, m);
                        sl_repo_model_destroy(m);
                        failed = 1;
                        continue;
                }
                SL_LOG(SL_LOG_NOTICE, "MODEL",
                       "loaded %s version %s (%lld bytes, warm-up done) in %lld ms: now serving",
                       m->name, m->version, (long long)m->bytes,
                       (long long)((sl_now_us() - t0) / 1000));
        }
        /* Removals only once their replacements are in (a failed load re-plans first). */
        for (size_t i = 0; i < plan->n_remove && !failed; i++)
                if (plan->remove[i])
                        unload(w, plan->remove[i]);
        /* Give the freed weights and buffers back to the system, so memory returns to its
         * level (glibc keeps freed heap otherwise). */
        malloc_trim(0);
        return failed;
}

void sl_stream_reload(sl_worker_t *w)
{
        char errstr[1024];

        /* A failed load changes the next plan (that version is left out): a few rounds settle. */
        for (int round = 0; round < 4; round++) {
                sl_repo_plan_t plan;
                int failed;
                if (sl_repo_plan(w->repo, &plan, errstr, sizeof(errstr))) {
                        SL_LOG(SL_LOG_ERR, "MODEL", "reload: out of memory planning");
                        return;
                }
                if (*errstr)
                        SL_LOG(SL_LOG_WARNING, "MODEL", "reload: %s (that model is left as it is)",
                               errstr);
                if (!plan.n_add && !plan.n_remove) {
                        sl_repo_plan_cleanup(&plan);
                        return;
                }
                failed = apply_plan(w, &plan);
                sl_repo_plan_cleanup(&plan);
                if (!failed)
                        break;
        }
        sl_stream_route_check(w); /* the plan changed what is loaded */
}
