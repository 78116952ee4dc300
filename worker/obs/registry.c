/* Prometheus metrics registry: families, their children, lock-free updates. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "obs_int.h"

sl_obs_registry_t *sl_obs_registry_new(void)
{
        sl_obs_registry_t *reg = calloc(1, sizeof(*reg));
        if (!reg)
                return NULL;
        if (pthread_mutex_init(&reg->lock, NULL)) {
                free(reg);
                return NULL;
        }
        return reg;
}

static void child_free(child_t *c, size_t n_labels)
{
        if (!c)
                return;
        if (c->values)
                for (size_t i = 0; i < n_labels; i++)
                        free(c->values[i]);
        free(c->values);
        free(c->hist.counts);
        free(c);
}

static void family_free(sl_obs_family_t *fam)
{
        child_t *c, *next;
        if (!fam)
                return;
        for (c = fam->children; c; c = next) {
                next = c->next;
                child_free(c, fam->n_labels);
        }
        for (size_t i = 0; i < fam->n_labels; i++)
                free(fam->labels[i]);
        free(fam->name);
        free(fam->help);
        free(fam->bounds);
        pthread_mutex_destroy(&fam->lock);
        free(fam);
}

void sl_obs_registry_destroy(sl_obs_registry_t *reg)
{
        sl_obs_family_t *fam, *next;
        if (!reg)
                return;
        for (fam = reg->families; fam; fam = next) {
                next = fam->next;
                family_free(fam);
        }
        pthread_mutex_destroy(&reg->lock);
        free(reg);
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: the same without ':'. */
static int valid_name(const char *s, size_t len, int colon)
{
        if (!len)
                return 0;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];
                int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                         (colon && ch == ':') || (i > 0 && ch >= '0' && ch <= '9');
                if (!ok)
                        return 0;
        }
        return 1;
}

static sl_obs_family_t *find_family(sl_obs_registry_t *reg, const char *name)
{
        for (sl_obs_family_t *f = reg->families; f; f = f->next)
                if (!strcmp(f->name, name))
                        return f;
        return NULL;
}

/* Split "a,b" into fam->labels, checking each name. */
static sl_err_t parse_labels(sl_obs_family_t *fam, const char *labels, char *errstr,
                             size_t errstr_size)
{
        const char *p = labels;
        if (!labels || !*labels)
                return SL_OK;
        for (;;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                if (fam->n_labels == SL_OBS_LABELS_MAX) {
                        sl_strfmt(errstr, errstr_size, "metric %s: more than %d labels", fam->name,
                                  SL_OBS_LABELS_MAX);
                        return SL_ERR_INVALID_ARG;
                }
                if (!valid_name(p, len, 0) || (len >= 2 && p[0] == '_' && p[1] == '_') ||
                    (fam->type == SL_OBS_HISTOGRAM && len == 2 && !strncmp(p, "le", 2))) {
                        sl_strfmt(errstr, errstr_size, "metric %s: invalid label name \"%.*s\"",
                                  fam->name, (int)len, p);
                        return SL_ERR_INVALID_ARG;
                }
                for (size_t i = 0; i < fam->n_labels; i++)
                        if (strlen(fam->labels[i]) == len && !strncmp(fam->labels[i], p, len)) {
                                sl_strfmt(errstr, errstr_size, "metric %s: label \"%.*s\" repeated",
                                          fam->name, (int)len, p);
                                return SL_ERR_INVALID_ARG;
                        }
                if (!(fam->labels[fam->n_labels] = strndup(p, len)))
                        return SL_ERR_NOMEM;
                fam->n_labels++;
                if (!end)
                        return SL_OK;
                p = end + 1;
        }
}

static sl_err_t copy_buckets(sl_obs_family_t *fam, const double *buckets, size_t n, char *errstr,
                             size_t errstr_size)
{
        if (fam->type != SL_OBS_HISTOGRAM) {
                if (n) {
                        sl_strfmt(errstr, errstr_size, "metric %s: buckets given for a %s",
                                  fam->name, fam->type == SL_OBS_COUNTER ? "counter" : "gauge");
                        return SL_ERR_INVALID_ARG;
                }
                return SL_OK;
        }
        if (n && isinf(buckets[n - 1]) && buckets[n - 1] > 0)
                n--;
        if (!n || n > SL_OBS_BUCKETS_MAX) {
                sl_strfmt(errstr, errstr_size, "metric %s: %zu buckets (1..%d)", fam->name, n,
                          SL_OBS_BUCKETS_MAX);
                return SL_ERR_INVALID_ARG;
        }
        for (size_t i = 0; i < n; i++)
                if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1])) {
                        sl_strfmt(errstr, errstr_size,
                                  "metric %s: bucket %zu (%g) is not finite and above the "
                                  "previous one",
                                  fam->name, i, buckets[i]);
                        return SL_ERR_INVALID_ARG;
                }
        if (!(fam->bounds = malloc(n * sizeof(*fam->bounds))))
                return SL_ERR_NOMEM;
        memcpy(fam->bounds, buckets, n * sizeof(*fam->bounds));
        fam->n_bounds = n;
        return SL_OK;
}

static child_t *child_new(sl_obs_family_t *fam, const char *const *values);

sl_err_t sl_obs_family_new(sl_obs_registry_t *reg, sl_obs_type_t type, const char *name,
                           const char *help, const char *labels, const double *buckets,
                           size_t n_buckets, sl_obs_family_t **famp, char *errstr,
                           size_t errstr_size)
{
        sl_obs_family_t *fam = NULL;
        sl_err_t err = SL_ERR_NOMEM;

        *famp = NULL;
        if (!reg || !name || (unsigned)type > SL_OBS_HISTOGRAM) {
                sl_strfmt(errstr, errstr_size, "metric: invalid arguments");
                return SL_ERR_INVALID_ARG;
        }
        if (!valid_name(name, strlen(name), 1)) {
                sl_strfmt(errstr, errstr_size, "invalid metric name \"%s\"", name);
                return SL_ERR_INVALID_ARG;
        }
        if (!(fam = calloc(1, sizeof(*fam))))
                goto done;
        if (pthread_mutex_init(&fam->lock, NULL)) {
                free(fam);
                fam = NULL;
                goto done;
        }
        fam->type = type;
        if (!(fam->name = strdup(name)) || (help && !(fam->help = strdup(help))))
                goto done;
        if ((err = parse_labels(fam, labels, errstr, errstr_size)) ||
            (err = copy_buckets(fam, buckets, n_buckets, errstr, errstr_size)))
                goto done;
        /* An unlabelled family has its one series from the start. */
        err = SL_ERR_NOMEM;
        if (!fam->n_labels && !child_new(fam, NULL))
                goto done;

        pthread_mutex_lock(&reg->lock);
        if (find_family(reg, name)) {
                pthread_mutex_unlock(&reg->lock);
                sl_strfmt(errstr, errstr_size, "metric %s: already registered", name);
                err = SL_ERR_INVALID_ARG;
                goto done;
        }
        if (reg->families_tail)
                reg->families_tail->next = fam;
        else
                reg->families = fam;
        reg->families_tail = fam;
        pthread_mutex_unlock(&reg->lock);
        *famp = fam;
        fam = NULL;
        err = SL_OK;
done:
        if (err == SL_ERR_NOMEM)
                sl_strfmt(errstr, errstr_size, "metric %s: out of memory", name);
        family_free(fam);
        return err;
}

size_t sl_obs_family_label_cnt(const sl_obs_family_t *fam)
{
        return fam ? fam->n_labels : 0;
}

/* Append a new visible child with a copy of \p values. @locks fam->lock held (or unshared). */
static child_t *child_new(sl_obs_family_t *fam, const char *const *values)
{
        child_t *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        if (fam->n_labels && !(c->values = calloc(fam->n_labels, sizeof(*c->values))))
                goto fail;
        for (size_t i = 0; i < fam->n_labels; i++)
                if (!(c->values[i] = strdup(values[i])))
                        goto fail;
        if (fam->type == SL_OBS_HISTOGRAM) {
                c->hist.bounds = fam->bounds;
                c->hist.n_bounds = fam->n_bounds;
                if (!(c->hist.counts = calloc(fam->n_bounds + 1, sizeof(*c->hist.counts))))
                        goto fail;
        }
        atomic_init(&c->visible, 1);
        if (fam->children_tail)
                fam->children_tail->next = c;
        else
                fam->children = c;
        fam->children_tail = c;
        return c;
fail:
        child_free(c, fam->n_labels);
        return NULL;
}

static child_t *child_find(sl_obs_family_t *fam, const char *const *values)
{
        for (child_t *c = fam->children; c; c = c->next) {
                size_t i;
                for (i = 0; i < fam->n_labels; i++)
                        if (strcmp(c->values[i], values[i]))
                                break;
                if (i == fam->n_labels)
                        return c;
        }
        return NULL;
}

/* Reads the family's label values from \p ap; NULL becomes "". */
static void read_values(const sl_obs_family_t *fam, va_list ap,
                        const char *values[SL_OBS_LABELS_MAX])
{
        for (size_t i = 0; i < fam->n_labels; i++) {
                const char *v = va_arg(ap, const char *);
                values[i] = v ? v : "";
        }
}

/* Find or create the child and make it visible. */
static child_t *child_get(sl_obs_family_t *fam, va_list ap)
{
        const char *values[SL_OBS_LABELS_MAX];
        child_t *c;
        read_values(fam, ap, values);
        pthread_mutex_lock(&fam->lock);
        if ((c = child_find(fam, values)))
                atomic_store_explicit(&c->visible, 1, memory_order_relaxed);
        else
                c = child_new(fam, values);
        pthread_mutex_unlock(&fam->lock);
        return c;
}

sl_obs_counter_t *sl_obs_counter_child(sl_obs_family_t *fam, ...)
{
        va_list ap;
        child_t *c;
        if (!fam)
                return NULL;
        SL_ASSERT(fam->type == SL_OBS_COUNTER);
        va_start(ap, fam);
        c = child_get(fam, ap);
        va_end(ap);
        return c ? &c->counter : NULL;
}

sl_obs_gauge_t *sl_obs_gauge_child(sl_obs_family_t *fam, ...)
{
        va_list ap;
        child_t *c;
        if (!fam)
                return NULL;
        SL_ASSERT(fam->type == SL_OBS_GAUGE);
        va_start(ap, fam);
        c = child_get(fam, ap);
        va_end(ap);
        return c ? &c->gauge : NULL;
}

sl_obs_histogram_t *sl_obs_histogram_child(sl_obs_family_t *fam, ...)
{
        va_list ap;
        child_t *c;
        if (!fam)
                return NULL;
        SL_ASSERT(fam->type == SL_OBS_HISTOGRAM);
        va_start(ap, fam);
        c = child_get(fam, ap);
        va_end(ap);
        return c ? &c->hist : NULL;
}

void sl_obs_family_remove(sl_obs_family_t *fam, ...)
{
        const char *values[SL_OBS_LABELS_MAX];
        va_list ap;
        child_t *c;
        if (!fam)
                return;
        va_start(ap, fam);
        read_values(fam, ap, values);
        va_end(ap);
        pthread_mutex_lock(&fam->lock);
        if ((c = child_find(fam, values)))
                atomic_store_explicit(&c->visible, 0, memory_order_relaxed);
        pthread_mutex_unlock(&fam->lock);
}

sl_err_t sl_obs_info_set(sl_obs_family_t *fam, ...)
{
        const char *values[SL_OBS_LABELS_MAX];
        va_list ap;
        child_t *c;
        if (!fam)
                return SL_ERR_INVALID_ARG;
        SL_ASSERT(fam->type == SL_OBS_GAUGE);
        va_start(ap, fam);
        read_values(fam, ap, values);
        va_end(ap);
        pthread_mutex_lock(&fam->lock);
        if (!(c = child_find(fam, values)) && !(c = child_new(fam, values))) {
                pthread_mutex_unlock(&fam->lock);
                return SL_ERR_NOMEM;
        }
        atomic_store_explicit(&c->gauge.bits, d2bits(1.0), memory_order_relaxed);
        for (child_t *o = fam->children; o; o = o->next)
                atomic_store_explicit(&o->visible, o == c, memory_order_relaxed);
        pthread_mutex_unlock(&fam->lock);
        return SL_OK;
}

void sl_obs_counter_inc(sl_obs_counter_t *c)
{
        if (c)
                atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

void sl_obs_counter_add(sl_obs_counter_t *c, uint64_t n)
{
        if (c)
                atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t sl_obs_counter_get(const sl_obs_counter_t *c)
{
        return c ? atomic_load_explicit(&((sl_obs_counter_t *)c)->v, memory_order_relaxed) : 0;
}

void sl_obs_gauge_set(sl_obs_gauge_t *g, double v)
{
        if (g)
                atomic_store_explicit(&g->bits, d2bits(v), memory_order_relaxed);
}

/* Add \p d to the double stored as bits in \p a (compare-and-swap loop). */
static void atomic_add_double(_Atomic uint64_t *a, double d)
{
        uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(a, &old, d2bits(bits2d(old) + d),
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

void sl_obs_gauge_add(sl_obs_gauge_t *g, double d)
{
        if (g)
                atomic_add_double(&g->bits, d);
}

double sl_obs_gauge_get(const sl_obs_gauge_t *g)
{
        return g ? bits2d(atomic_load_explicit(&((sl_obs_gauge_t *)g)->bits, memory_order_relaxed))
                 : 0.0;
}

void sl_obs_histogram_observe(sl_obs_histogram_t *h, double v)
{
        size_t lo = 0, hi;
        if (!h || isnan(v))
                return;
        /* First bound >= v (binary search); n_bounds means the +Inf bucket. */
        hi = h->n_bounds;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (h->bounds[mid] >= v)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
        atomic_add_double(&h->sum_bits, v);
}

uint64_t sl_obs_histogram_count(const sl_obs_histogram_t *h)
{
        uint64_t n = 0;
        if (!h)
                return 0;
        for (size_t i = 0; i <= h->n_bounds; i++)
                n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        return n;
}
