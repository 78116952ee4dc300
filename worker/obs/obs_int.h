/* Private to worker/obs: the registry's data structures, shared by
 * registry.c (families, children, updates) and expo.c (text format). */
#ifndef SL_OBS_INT_H
#define SL_OBS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "obs.h"

/* Values are bare atomics inside typed wrappers so that a handle of one type
 * cannot be passed where another is expected. Doubles are stored as their
 * IEEE-754 bits in a uint64_t: C11 has no atomic add on floating types. */
struct sl_obs_counter_s {
        _Atomic uint64_t v;
};

struct sl_obs_gauge_s {
        _Atomic uint64_t bits;
};

struct sl_obs_histogram_s {
        const double *bounds; /* the family's upper bounds (+Inf implicit) */
        size_t n_bounds;
        _Atomic uint64_t sum_bits; /* double */
        _Atomic uint64_t *counts;  /* n_bounds + 1, per bucket (not cumulative) */
};

/* One series. Never freed before the registry, so handles stay valid. */
typedef struct child_s {
        struct child_s *next;
        atomic_int visible;
        char **values; /* one per label name */
        struct sl_obs_counter_s counter;
        struct sl_obs_gauge_s gauge;
        struct sl_obs_histogram_s hist;
} child_t;

struct sl_obs_family_s {
        struct sl_obs_family_s *next;
        sl_obs_type_t type;
        char *name;
        char *help; /* NULL: no HELP line */
        size_t n_labels;
        char *labels[SL_OBS_LABELS_MAX];
        size_t n_bounds;
        double *bounds;
        pthread_mutex_t lock; /* children list */
        child_t *children, *children_tail;
};

struct sl_obs_registry_s {
        pthread_mutex_t lock; /* family list */
        sl_obs_family_t *families, *families_tail;
};

static inline double bits2d(uint64_t u)
{
        union {
                uint64_t u;
                double d;
        } x = {.u = u};
        return x.d;
}

static inline uint64_t d2bits(double d)
{
        union {
                uint64_t u;
                double d;
        } x = {.d = d};
        return x.u;
}

#endif /* SL_OBS_INT_H */
