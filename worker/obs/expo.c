/* Prometheus text exposition format 0.0.4. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_int.h"

/* Growable output; on allocation failure `failed` is set and later writes are dropped. */
typedef struct {
        char *p;
        size_t len, size;
        int failed;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra)
{
        size_t size;
        char *tmp;
        if (b->failed)
                return -1;
        if (b->len + extra + 1 <= b->size)
                return 0;
        size = b->size ? b->size : 4096;
        while (size < b->len + extra + 1)
                size *= 2;
        if (!(tmp = realloc(b->p, size))) {
                b->failed = 1;
                return -1;
        }
        b->p = tmp;
        b->size = size;
        return 0;
}

static void buf_put(buf_t *b, const char *s, size_t n)
{
        if (buf_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void buf_puts(buf_t *b, const char *s)
{
        buf_put(b, s, strlen(s));
}

/* Escapes backslash and newline, and double quote when \p quote (label values). */
static void buf_escaped(buf_t *b, const char *s, int quote)
{
        const char *run = s;
        for (; *s; s++) {
                const char *esc = NULL;
                if (*s == '\\')
                        esc = "\\\\";
                else if (*s == '\n')
                        esc = "\\n";
                else if (quote && *s == '"')
                        esc = "\\\"";
                if (!esc)
                        continue;
                buf_put(b, run, (size_t)(s - run));
                buf_puts(b, esc);
                run = s + 1;
        }
        buf_put(b, run, (size_t)(s - run));
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), as Prometheus' own clients
 * write values: the fewest digits that read back as the same double, in
 * exponent form when the decimal exponent is < -4 or >= 6 ("0.001", "2.5",
 * "400000", "1e+06", "1.5e-07"); special values are +Inf, -Inf and NaN. */
static void fmt_double(char *dst, size_t size, double v)
{
        int prec, exp;
        if (isnan(v)) {
                snprintf(dst, size, "NaN");
                return;
        }
        if (isinf(v)) {
                snprintf(dst, size, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        for (prec = 1; prec < 17; prec++) {
                snprintf(dst, size, "%.*e", prec - 1, v);
                if (strtod(dst, NULL) == v)
                        break;
        }
        snprintf(dst, size, "%.*e", prec - 1, v);
        exp = (int)strtol(strchr(dst, 'e') + 1, NULL, 10);
        if (exp < -4 || exp >= 6)
                return;
        snprintf(dst, size, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
}

static void buf_double(buf_t *b, double v)
{
        char tmp[40];
        fmt_double(tmp, sizeof(tmp), v);
        buf_puts(b, tmp);
}

static void buf_u64(buf_t *b, uint64_t v)
{
        char tmp[24];
        snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
        buf_puts(b, tmp);
}

/* `name{a="x",b="y",le="0.5"}` — \p suffix appended to the name, \p le may be NULL. */
static void write_series(buf_t *b, const sl_obs_family_t *fam, const child_t *c, const char *suffix,
                         const char *le)
{
        buf_puts(b, fam->name);
        if (suffix)
                buf_puts(b, suffix);
        if (!fam->n_labels && !le) {
                buf_put(b, " ", 1);
                return;
        }
        buf_put(b, "{", 1);
        for (size_t i = 0; i < fam->n_labels; i++) {
                if (i)
                        buf_put(b, ",", 1);
                buf_puts(b, fam->labels[i]);
                buf_put(b, "=\"", 2);
                buf_escaped(b, c->values[i], 1);
                buf_put(b, "\"", 1);
        }
        if (le) {
                if (fam->n_labels)
                        buf_put(b, ",", 1);
                buf_puts(b, "le=\"");
                buf_puts(b, le);
                buf_put(b, "\"", 1);
        }
        buf_put(b, "} ", 2);
}

static void write_histogram(buf_t *b, const sl_obs_family_t *fam, const child_t *c)
{
        const struct sl_obs_histogram_s *h = &c->hist;
        uint64_t cum = 0;
        char le[40];
        for (size_t i = 0; i <= h->n_bounds; i++) {
                cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
                if (i < h->n_bounds)
                        fmt_double(le, sizeof(le), h->bounds[i]);
                else
                        snprintf(le, sizeof(le), "+Inf");
                write_series(b, fam, c, "_bucket", le);
                buf_u64(b, cum);
                buf_put(b, "\n", 1);
        }
        write_series(b, fam, c, "_sum", NULL);
        buf_double(b, bits2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
        buf_put(b, "\n", 1);
        write_series(b, fam, c, "_count", NULL);
        buf_u64(b, cum);
        buf_put(b, "\n", 1);
}

static const char *type_name(sl_obs_type_t t)
{
        switch (t) {
        case SL_OBS_COUNTER:
                return "counter";
        case SL_OBS_GAUGE:
                return "gauge";
        case SL_OBS_HISTOGRAM:
                return "histogram";
        }
        return "untyped";
}

/* @locks fam->lock */
static void write_family(buf_t *b, sl_obs_family_t *fam)
{
        int header = 0;
        pthread_mutex_lock(&fam->lock);
        for (const child_t *c = fam->children; c; c = c->next) {
                if (!atomic_load_explicit(&c->visible, memory_order_relaxed))
                        continue;
                if (!header) {
                        if (fam->help) {
                                buf_puts(b, "# HELP ");
                                buf_puts(b, fam->name);
                                buf_put(b, " ", 1);
                                buf_escaped(b, fam->help, 0);
                                buf_put(b, "\n", 1);
                        }
                        buf_puts(b, "# TYPE ");
                        buf_puts(b, fam->name);
                        buf_put(b, " ", 1);
                        buf_puts(b, type_name(fam->type));
                        buf_put(b, "\n", 1);
                        header = 1;
                }
                switch (fam->type) {
                case SL_OBS_COUNTER:
                        write_series(b, fam, c, NULL, NULL);
                        buf_u64(b, atomic_load_explicit(&c->counter.v, memory_order_relaxed));
                        buf_put(b, "\n", 1);
                        break;
                case SL_OBS_GAUGE:
                        write_series(b, fam, c, NULL, NULL);
                        buf_double(
                            b, bits2d(atomic_load_explicit(&c->gauge.bits, memory_order_relaxed)));
                        buf_put(b, "\n", 1);
                        break;
                case SL_OBS_HISTOGRAM:
                        write_histogram(b, fam, c);
                        break;
                }
        }
        pthread_mutex_unlock(&fam->lock);
}

sl_err_t sl_obs_registry_render(sl_obs_registry_t *reg, char **textp, size_t *lenp)
{
        buf_t b = {NULL, 0, 0, 0};
        *textp = NULL;
        if (lenp)
                *lenp = 0;
        if (!reg)
                return SL_ERR_INVALID_ARG;
        if (!buf_reserve(&b, 0))
                b.p[0] = '\0';
        pthread_mutex_lock(&reg->lock);
        for (sl_obs_family_t *fam = reg->families; fam; fam = fam->next)
                write_family(&b, fam);
        pthread_mutex_unlock(&reg->lock);
        if (b.failed) {
                free(b.p);
                return SL_ERR_NOMEM;
        }
        *textp = b.p;
        if (lenp)
                *lenp = b.len;
        return SL_OK;
}
