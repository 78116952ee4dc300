/*
 * Which versions a repository serves: open (load what the version policy
 * selects), and plan live reloads by comparing the folders with what is
 * loaded. Loading, inserting and freeing are the caller's steps, so that a
 * worker swaps versions between batches.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo_int.h"

/*
 * Is \p dir a model folder? One with a config.cfg or a <version>/model.onnx
 * (Triton needs no config either); other folders, e.g. of scripts, are not.
 */
static int is_model_dir(const char *dir)
{
        char path[4400];
        DIR *d;
        struct dirent *e;
        int found = 0;
        int64_t ver;

        sl_strfmt(path, sizeof(path), "%s/config.cfg", dir);
        if (repo_is_file(path))
                return 1;
        if (!(d = opendir(dir)))
                return 0;
        while (!found && (e = readdir(d))) {
                if (repo_version_number(e->d_name, &ver))
                        continue;
                sl_strfmt(path, sizeof(path), "%s/%s/model.onnx", dir, e->d_name);
                found = repo_is_file(path);
        }
        closedir(d);
        return found;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

static int failed_find(const sl_repo_t *repo, const char *name, int64_t version, int64_t mtime,
                       int64_t size)
{
        for (size_t i = 0; i < repo->n_failed; i++) {
                const failed_t *f = &repo->failed[i];
                if (f->version == version && !strcmp(f->name, name))
                        return f->mtime_ns == mtime && f->size == size;
        }
        return 0;
}

/*
 * Versions of <root>/<name> the policy selects, ascending, leaving out the
 * ones that failed before (and have not changed since).
 */
static sl_err_t wanted_versions(const sl_repo_t *repo, const char *name, const model_settings_t *ms,
                                int64_t **versp, size_t *np, char *errstr, size_t errstr_size)
{
        char dir[4096], path[4400];
        int64_t *v = NULL, ver, mtime, size;
        size_t n = 0, cap = 0, keep;
        DIR *d;
        struct dirent *e;

        sl_strfmt(dir, sizeof(dir), "%s/%s", repo->root, name);
        if (!(d = opendir(dir))) {
                sl_strfmt(errstr, errstr_size, "%s: %s", dir, strerror(errno));
                return SL_ERR_IO;
        }
        while ((e = readdir(d))) {
                if (repo_version_number(e->d_name, &ver))
                        continue;
                sl_strfmt(path, sizeof(path), "%s/%s/model.onnx", dir, e->d_name);
                if (repo_file_stat(path, &mtime, &size) || !repo_is_file(path) ||
                    failed_find(repo, name, ver, mtime, size))
                        continue;
                if (ms->policy == POLICY_SPECIFIC) {
                        size_t k;
                        for (k = 0; k < ms->n_specific && ms->specific[k] != ver; k++)
                                ;
                        if (k == ms->n_specific)
                                continue;
                }
                if (n == cap) {
                        int64_t *tmp = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
                        if (!tmp) {
                                free(v);
                                closedir(d);
                                return SL_ERR_NOMEM;
                        }
                        v = tmp;
                }
                v[n++] = ver;
        }
        closedir(d);
        qsort(v, n, sizeof(*v), cmp_i64);
        keep = ms->policy == POLICY_LATEST && n > (size_t)ms->num_versions
                   ? (size_t)ms->num_versions
                   : n;
        if (keep < n)
                memmove(v, v + (n - keep), keep * sizeof(*v));
        *versp = v;
        *np = keep;
        return SL_OK;
}

sl_err_t sl_repo_insert(sl_repo_t *repo, sl_repo_model_t *m)
{
        size_t pos;
        int64_t vm = 0;
        if (repo->cnt == repo->size) {
                size_t size = repo->size ? repo->size * 2 : 8;
                sl_repo_model_t **tmp = realloc(repo->models, size * sizeof(*tmp));
                if (!tmp)
                        return SL_ERR_NOMEM;
                repo->models = tmp;
                repo->size = size;
        }
        /* Keep the order by name, then version number: sl_repo_find() relies on it. */
        sl_parse_i64(m->version, &vm);
        for (pos = 0; pos < repo->cnt; pos++) {
                int64_t vx = 0;
                int c = strcmp(repo->models[pos]->name, m->name);
                sl_parse_i64(repo->models[pos]->version, &vx);
                if (c > 0 || (c == 0 && vx > vm))
                        break;
        }
        memmove(repo->models + pos + 1, repo->models + pos,
                (repo->cnt - pos) * sizeof(*repo->models));
        repo->models[pos] = m;
        repo->cnt++;
        return SL_OK;
}

void sl_repo_detach(sl_repo_t *repo, const sl_repo_model_t *m)
{
        for (size_t i = 0; i < repo->cnt; i++) {
                if (repo->models[i] != m)
                        continue;
                memmove(repo->models + i, repo->models + i + 1,
                        (repo->cnt - i - 1) * sizeof(*repo->models));
                repo->cnt--;
                return;
        }
}

void sl_repo_model_destroy(sl_repo_model_t *m)
{
        repo_model_free(m);
}

static void failed_add(sl_repo_t *repo, const char *name, int64_t version, const char *path)
{
        int64_t mtime = 0, size = 0;
        failed_t *f = NULL;
        repo_file_stat(path, &mtime, &size);
        for (size_t i = 0; i < repo->n_failed && !f; i++)
                if (repo->failed[i].version == version && !strcmp(repo->failed[i].name, name))
                        f = &repo->failed[i];
        if (!f) {
                char *copy;
                if (repo->n_failed == repo->size_failed) {
                        size_t size = repo->size_failed ? repo->size_failed * 2 : 4;
                        failed_t *tmp = realloc(repo->failed, size * sizeof(*tmp));
                        if (!tmp)
                                return;
                        repo->failed = tmp;
                        repo->size_failed = size;
                }
                if (!(copy = strdup(name)))
                        return;
                f = &repo->failed[repo->n_failed++];
                f->name = copy;
                f->version = version;
        }
        f->mtime_ns = mtime;
        f->size = size;
}

sl_err_t sl_repo_load(sl_repo_t *repo, const char *name, int64_t version, sl_repo_model_t **mp,
                      char *errstr, size_t errstr_size)
{
        char dir[4096], path[4400];
        model_settings_t ms;
        sl_err_t err;

        sl_strfmt(dir, sizeof(dir), "%s/%s", repo->root, name);
        if (!(err = repo_settings_read(dir, &ms, errstr, errstr_size))) {
                err = repo_version_load(repo->root, name, version, &ms, mp, errstr, errstr_size);
                repo_settings_cleanup(&ms);
        }
        if (err && err != SL_ERR_NOMEM) {
                sl_strfmt(path, sizeof(path), "%s/%lld/model.onnx", dir, (long long)version);
                failed_add(repo, name, version, path);
        }
        return err;
}

static int is_loaded(const sl_repo_t *repo, const char *name, int64_t version)
{
        char ver[32];
        sl_strfmt(ver, sizeof(ver), "%lld", (long long)version);
        for (size_t i = 0; i < repo->cnt; i++)
                if (!strcmp(repo->models[i]->name, name) && !strcmp(repo->models[i]->version, ver))
                        return 1;
        return 0;
}

static int is_wanted(const int64_t *v, size_t n, const char *version)
{
        int64_t ver = 0;
        sl_parse_i64(version, &ver);
        for (size_t i = 0; i < n; i++)
                if (v[i] == ver)
                        return 1;
        return 0;
}

/* Plan one model folder: versions to add, loaded versions to remove. */
static sl_err_t plan_model(sl_repo_t *repo, const char *name, sl_repo_plan_t *plan, int gone,
                           char *errstr, size_t errstr_size)
{
        char dir[4096], path[4400];
        model_settings_t ms;
        int64_t *v = NULL, mtime, size;
        size_t n = 0;
        sl_err_t err = SL_OK;

        sl_strfmt(dir, sizeof(dir), "%s/%s", repo->root, name);
        if (!gone && (err = repo_settings_read(dir, &ms, errstr, errstr_size)))
                return err == SL_ERR_NOMEM ? err : SL_OK; /* bad config: leave it as it is */
        if (!gone) {
                err = wanted_versions(repo, name, &ms, &v, &n, errstr, errstr_size);
                repo_settings_cleanup(&ms);
                if (err)
                        return err == SL_ERR_NOMEM ? err : SL_OK;
        }
        for (size_t i = 0; i < n; i++) {
                sl_repo_version_t *tmp;
                if (is_loaded(repo, name, v[i]))
                        continue;
                if (!(tmp = realloc(plan->add, (plan->n_add + 1) * sizeof(*tmp)))) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
                plan->add = tmp;
                sl_strfmt(path, sizeof(path), "%s/%lld/model.onnx", dir, (long long)v[i]);
                size = 0;
                repo_file_stat(path, &mtime, &size);
                if (!(tmp[plan->n_add].name = strdup(name))) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
                tmp[plan->n_add].version = v[i];
                tmp[plan->n_add++].bytes = size;
        }
        for (size_t i = 0; i < repo->cnt; i++) {
                const sl_repo_model_t *m = repo->models[i], **tmp;
                if (strcmp(m->name, name) || (!gone && is_wanted(v, n, m->version)))
                        continue;
                if (!(tmp = realloc(plan->remove, (plan->n_remove + 1) * sizeof(*tmp)))) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
                plan->remove = tmp;
                tmp[plan->n_remove++] = m;
        }
done:
        free(v);
        return err;
}

sl_err_t sl_repo_plan(sl_repo_t *repo, sl_repo_plan_t *plan, char *errstr, size_t errstr_size)
{
        struct dirent **ents = NULL;
        int n = 0;
        sl_err_t err = SL_OK;

        memset(plan, 0, sizeof(*plan));
        if (errstr && errstr_size)
                errstr[0] = '\0';
        if (repo->only) {
                char dir[4096];
                sl_strfmt(dir, sizeof(dir), "%s/%s", repo->root, repo->only);
                return plan_model(repo, repo->only, plan, !repo_is_dir(dir), errstr, errstr_size);
        }
        if ((n = scandir(repo->root, &ents, NULL, alphasort)) < 0)
                return SL_OK; /* root unreadable for now: keep serving what is loaded */
        for (int i = 0; i < n && !err; i++) {
                char dir[4096];
                if (ents[i]->d_name[0] == '.')
                        continue;
                sl_strfmt(dir, sizeof(dir), "%s/%s", repo->root, ents[i]->d_name);
                if (repo_is_dir(dir) && is_model_dir(dir))
                        err = plan_model(repo, ents[i]->d_name, plan, 0, errstr, errstr_size);
        }
        /* Models whose folder is gone: every version goes. */
        for (size_t k = 0; k < repo->cnt && !err; k++) {
                const char *name = repo->models[k]->name;
                int present = 0, planned = 0;
                for (int i = 0; i < n && !present; i++)
                        present = !strcmp(ents[i]->d_name, name);
                for (size_t j = 0; j < plan->n_remove && !planned; j++)
                        planned = !strcmp(plan->remove[j]->name, name);
                if (!present && !planned)
                        err = plan_model(repo, name, plan, 1, errstr, errstr_size);
        }
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);
        if (err)
                sl_repo_plan_cleanup(plan);
        return err;
}

void sl_repo_plan_cleanup(sl_repo_plan_t *plan)
{
        for (size_t i = 0; i < plan->n_add; i++)
                free(plan->add[i].name);
        free(plan->add);
        free(plan->remove);
        memset(plan, 0, sizeof(*plan));
}

int64_t sl_repo_bytes(const sl_repo_t *repo)
{
        int64_t total = 0;
        for (size_t i = 0; i < repo->cnt; i++)
                total += repo->models[i]->bytes;
        return total;
}

/* Open: load what the policy of each model selects now; any failure stops start-up. */
static sl_err_t repo_open(const char *root, const char *only, sl_repo_t **repop, char *errstr,
                          size_t errstr_size)
{
        sl_repo_t *repo = NULL;
        sl_repo_plan_t plan = {0};
        sl_err_t err = SL_OK;

        if (!repo_is_dir(root)) {
                sl_strfmt(errstr, errstr_size, "%s: model repository folder not found", root);
                return SL_ERR_IO;
        }
        if (!(repo = calloc(1, sizeof(*repo))) || !(repo->root = strdup(root)) ||
            (only && !(repo->only = strdup(only)))) {
                err = SL_ERR_NOMEM;
                goto done;
        }
        if (only) {
                char dir[4096];
                sl_strfmt(dir, sizeof(dir), "%s/%s", root, only);
                if (!repo_is_dir(dir)) {
                        sl_strfmt(errstr, errstr_size, "%s: no such model in %s", only, root);
                        err = SL_ERR_UNKNOWN_MODEL;
                        goto done;
                }
        }
        /* Start-up is strict: a bad config.cfg is an error here, not "left as it is". */
        if ((err = sl_repo_plan(repo, &plan, errstr, errstr_size)))
                goto done;
        if (errstr && *errstr) {
                err = SL_ERR_CONFIG;
                goto done;
        }
        for (size_t i = 0; i < plan.n_add && !err; i++) {
                sl_repo_model_t *m = NULL;
                if (!(err = sl_repo_load(repo, plan.add[i].name, plan.add[i].version, &m, errstr,
                                         errstr_size)) &&
                    (err = sl_repo_insert(repo, m)))
                        repo_model_free(m);
        }
        if (!err && !repo->cnt) {
                if (only)
                        sl_strfmt(errstr, errstr_size,
                                  "%s/%s: no version folder with a model.onnx (expected "
                                  "%s/%s/1/model.onnx)",
                                  root, only, root, only);
                else
                        sl_strfmt(errstr, errstr_size,
                                  "%s: no models (expected <name>/config.cfg and "
                                  "<name>/<version>/model.onnx)",
                                  root);
                err = SL_ERR_MODEL;
        }
done:
        sl_repo_plan_cleanup(&plan);
        if (err) {
                sl_repo_destroy(repo);
                return err;
        }
        *repop = repo;
        return SL_OK;
}

sl_err_t sl_repo_open(const char *root, sl_repo_t **repop, char *errstr, size_t errstr_size)
{
        return repo_open(root, NULL, repop, errstr, errstr_size);
}

sl_err_t sl_repo_open_one(const char *root, const char *name, sl_repo_t **repop, char *errstr,
                          size_t errstr_size)
{
        return repo_open(root, name, repop, errstr, errstr_size);
}

void sl_repo_destroy(sl_repo_t *repo)
{
        if (!repo)
                return;
        for (size_t i = 0; i < repo->cnt; i++)
                repo_model_free(repo->models[i]);
        for (size_t i = 0; i < repo->n_failed; i++)
                free(repo->failed[i].name);
        free(repo->failed);
        free(repo->models);
        free(repo->root);
        free(repo->only);
        free(repo);
}
