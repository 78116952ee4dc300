/* Join store: predictions and labels waiting for each other, keyed by request id.
 *
 * A fixed pool of max_entries entries, an open-addressing table of entry
 * indices (linear probing, load <= 1/2, backward-shift deletion so there are
 * no tombstones) and a doubly linked list in insertion order for expiry and
 * eviction of the oldest. Entries keep their id and probability buffers when
 * freed, so a store in steady state allocates nothing. Hash: XXH3_64bits of
 * the id (xxHash, Debian libxxhash-dev), inlined so nothing extra is linked. */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "eval.h"

#define NONE             UINT32_MAX
#define JOIN_ENTRIES_MAX ((size_t)1 << 24)

enum { FREE = 0, PRED = 1, LABEL = 2 };

typedef struct entry_s {
        uint64_t hash;
        uint32_t prev, next; /* insertion-order list, or free list (next) */
        int kind;
        int64_t time_ms;
        char *id;
        size_t id_len, id_cap;
        void *model;
        int64_t cls;
        double value;
        float *probs; /* NULL when the prediction carried none */
        int32_t n_probs;
        size_t probs_cap; /* floats allocated at probs_buf */
        float *probs_buf;
} entry_t;

struct sl_eval_join_s {
        entry_t *e;
        size_t max, n;
        uint32_t *table; /* entry index + 1, 0 = empty */
        size_t mask;
        uint32_t head, tail, free_list;
        size_t heap_bytes; /* id and probability buffers */
        sl_eval_join_stats_t st;
};

sl_eval_join_t *sl_eval_join_new(size_t max_entries)
{
        sl_eval_join_t *j;
        size_t cap = 16;

        if (max_entries < 1 || max_entries > JOIN_ENTRIES_MAX)
                return NULL;
        while (cap < 2 * max_entries)
                cap *= 2;
        if (!(j = calloc(1, sizeof(*j))))
                return NULL;
        j->e = calloc(max_entries, sizeof(*j->e));
        j->table = calloc(cap, sizeof(*j->table));
        if (!j->e || !j->table) {
                sl_eval_join_destroy(j);
                return NULL;
        }
        j->max = max_entries;
        j->mask = cap - 1;
        j->head = j->tail = NONE;
        for (size_t i = 0; i < max_entries; i++)
                j->e[i].next = i + 1 < max_entries ? (uint32_t)(i + 1) : NONE;
        j->free_list = 0;
        return j;
}

void sl_eval_join_destroy(sl_eval_join_t *j)
{
        if (!j)
                return;
        if (j->e) {
                for (size_t i = 0; i < j->max; i++) {
                        free(j->e[i].id);
                        free(j->e[i].probs_buf);
                }
        }
        free(j->e);
        free(j->table);
        free(j);
}

static int entry_is(const entry_t *en, uint64_t h, const char *id, size_t len, int kind,
                    const void *model, int any_model)
{
        return en->hash == h && en->kind == kind && en->id_len == len &&
               (any_model || en->model == model) && !memcmp(en->id, id, len);
}

/* Table slot of the first entry matching, or NONE. */
static size_t find(const sl_eval_join_t *j, uint64_t h, const char *id, size_t len, int kind,
                   const void *model, int any_model)
{
        for (size_t s = h & j->mask; j->table[s]; s = (s + 1) & j->mask)
                if (entry_is(&j->e[j->table[s] - 1], h, id, len, kind, model, any_model))
                        return s;
        return NONE;
}

/* Table slot holding entry \p idx. */
static size_t slot_of(const sl_eval_join_t *j, uint32_t idx)
{
        size_t s = j->e[idx].hash & j->mask;
        while (j->table[s] != idx + 1) {
                SL_ASSERT(j->table[s]);
                s = (s + 1) & j->mask;
        }
        return s;
}

/* Empty slot s and shift later members of its cluster back (Knuth 6.4, Algorithm R). */
static void table_delete(sl_eval_join_t *j, size_t s)
{
        size_t t = s;

        for (;;) {
                j->table[s] = 0;
                for (;;) {
                        size_t home;
                        t = (t + 1) & j->mask;
                        if (!j->table[t])
                                return;
                        home = j->e[j->table[t] - 1].hash & j->mask;
                        /* Stays when its home lies cyclically in (s, t]. */
                        if (s <= t ? (s < home && home <= t) : (s < home || home <= t))
                                continue;
                        break;
                }
                j->table[s] = j->table[t];
                s = t;
        }
}

static void list_unlink(sl_eval_join_t *j, uint32_t idx)
{
        entry_t *en = &j->e[idx];
        if (en->prev != NONE)
                j->e[en->prev].next = en->next;
        else
                j->head = en->next;
        if (en->next != NONE)
                j->e[en->next].prev = en->prev;
        else
                j->tail = en->prev;
}

static void list_append(sl_eval_join_t *j, uint32_t idx)
{
        entry_t *en = &j->e[idx];
        en->prev = j->tail;
        en->next = NONE;
        if (j->tail != NONE)
                j->e[j->tail].next = idx;
        else
                j->head = idx;
        j->tail = idx;
}

/* Remove entry idx (table, list, counters); its buffers stay for reuse. */
static void entry_remove(sl_eval_join_t *j, uint32_t idx, size_t slot)
{
        entry_t *en = &j->e[idx];
        table_delete(j, slot);
        list_unlink(j, idx);
        if (en->kind == PRED)
                j->st.predictions--;
        else
                j->st.labels--;
        en->kind = FREE;
        en->model = NULL;
        en->next = j->free_list;
        j->free_list = idx;
        j->n--;
}

/* Copy id and probabilities into entry buffers, growing them if needed. */
static sl_err_t entry_set(sl_eval_join_t *j, entry_t *en, const char *id, size_t len,
                          const float *probs, int32_t n_probs)
{
        if (len + 1 > en->id_cap) {
                char *p = realloc(en->id, len + 1);
                if (!p)
                        return SL_ERR_NOMEM;
                j->heap_bytes += len + 1 - en->id_cap;
                en->id = p;
                en->id_cap = len + 1;
        }
        if (probs && (size_t)n_probs > en->probs_cap) {
                float *p = realloc(en->probs_buf, (size_t)n_probs * sizeof(float));
                if (!p)
                        return SL_ERR_NOMEM;
                j->heap_bytes += ((size_t)n_probs - en->probs_cap) * sizeof(float);
                en->probs_buf = p;
                en->probs_cap = (size_t)n_probs;
        }
        memcpy(en->id, id, len);
        en->id[len] = '\0';
        en->id_len = len;
        if (probs && n_probs > 0) {
                memcpy(en->probs_buf, probs, (size_t)n_probs * sizeof(float));
                en->probs = en->probs_buf;
                en->n_probs = n_probs;
        } else {
                en->probs = NULL;
                en->n_probs = 0;
        }
        return SL_OK;
}

/* Existing entry for the key (replaced in place) or a new one (the oldest is
 * evicted when full). Returns the entry index, or NONE. */
static uint32_t claim(sl_eval_join_t *j, uint64_t h, const char *id, size_t len, int kind,
                      const void *model, int *is_new)
{
        size_t s = find(j, h, id, len, kind, model, 0);
        uint32_t idx;

        if (s != NONE) {
                idx = j->table[s] - 1;
                list_unlink(j, idx);
                list_append(j, idx); /* now the newest */
                j->st.replaced++;
                *is_new = 0;
                return idx;
        }
        if (j->n == j->max) {
                SL_ASSERT(j->head != NONE);
                entry_remove(j, j->head, slot_of(j, j->head));
                j->st.evicted++;
        }
        idx = j->free_list;
        SL_ASSERT(idx != NONE);
        j->free_list = j->e[idx].next;
        *is_new = 1;
        return idx;
}

/* Link a freshly claimed entry into the table and the list. */
static void commit_new(sl_eval_join_t *j, uint32_t idx, uint64_t h, int kind)
{
        size_t s = h & j->mask;
        entry_t *en = &j->e[idx];

        while (j->table[s])
                s = (s + 1) & j->mask;
        j->table[s] = idx + 1;
        en->hash = h;
        en->kind = kind;
        list_append(j, idx);
        j->n++;
        if (kind == PRED)
                j->st.predictions++;
        else
                j->st.labels++;
}

/* An entry claimed but not committed goes back to the free list. */
static void unclaim(sl_eval_join_t *j, uint32_t idx)
{
        j->e[idx].next = j->free_list;
        j->free_list = idx;
}

static int id_ok(sl_eval_join_t *j, const char *id, size_t *lenp)
{
        size_t len = id ? strnlen(id, SL_EVAL_JOIN_ID_MAX + 1) : 0;
        if (!len || len > SL_EVAL_JOIN_ID_MAX) {
                j->st.refused++;
                return 0;
        }
        *lenp = len;
        return 1;
}

sl_err_t sl_eval_join_put_prediction(sl_eval_join_t *j, const char *id, const sl_eval_pred_t *pred)
{
        size_t len;
        uint64_t h;
        uint32_t idx;
        int is_new;
        entry_t *en;
        sl_err_t err;

        if (!id_ok(j, id, &len))
                return SL_ERR_BAD_REQUEST;
        if (pred->probs && (pred->n_probs < 0 || pred->n_probs > SL_EVAL_CLASSES_MAX)) {
                j->st.refused++;
                return SL_ERR_BAD_REQUEST;
        }
        h = XXH3_64bits(id, len);
        idx = claim(j, h, id, len, PRED, pred->model, &is_new);
        en = &j->e[idx];
        if ((err = entry_set(j, en, id, len, pred->probs, pred->n_probs))) {
                if (is_new)
                        unclaim(j, idx);
                else
                        entry_remove(j, idx, slot_of(j, idx));
                return err;
        }
        en->model = pred->model;
        en->cls = pred->predicted;
        en->value = pred->value;
        en->time_ms = pred->time_ms;
        if (is_new)
                commit_new(j, idx, h, PRED);
        return SL_OK;
}

sl_err_t sl_eval_join_put_label(sl_eval_join_t *j, const char *id, const sl_eval_label_t *label)
{
        size_t len;
        uint64_t h;
        uint32_t idx;
        int is_new;
        entry_t *en;
        sl_err_t err;

        if (!id_ok(j, id, &len))
                return SL_ERR_BAD_REQUEST;
        h = XXH3_64bits(id, len);
        idx = claim(j, h, id, len, LABEL, NULL, &is_new);
        en = &j->e[idx];
        if ((err = entry_set(j, en, id, len, NULL, 0))) {
                if (is_new)
                        unclaim(j, idx);
                else
                        entry_remove(j, idx, slot_of(j, idx));
                return err;
        }
        en->model = NULL;
        en->cls = label->label;
        en->value = label->value;
        en->time_ms = label->time_ms;
        if (is_new)
                commit_new(j, idx, h, LABEL);
        return SL_OK;
}

/* The entry of \p kind for \p id, or NULL; the caller copies it, then take_done(). */
static entry_t *take_find(sl_eval_join_t *j, const char *id, int kind, size_t *slotp)
{
        size_t len = id ? strnlen(id, SL_EVAL_JOIN_ID_MAX + 1) : 0;

        if (!len || len > SL_EVAL_JOIN_ID_MAX)
                return NULL;
        if ((*slotp = find(j, XXH3_64bits(id, len), id, len, kind, NULL, 1)) == NONE)
                return NULL;
        return &j->e[j->table[*slotp] - 1];
}

static void take_done(sl_eval_join_t *j, size_t slot)
{
        entry_remove(j, j->table[slot] - 1, slot);
        j->st.joined++;
}

int sl_eval_join_take_prediction(sl_eval_join_t *j, const char *id, sl_eval_pred_t *out)
{
        size_t s;
        entry_t *en = take_find(j, id, PRED, &s);

        if (!en)
                return 0;
        out->model = en->model;
        out->predicted = en->cls;
        out->value = en->value;
        out->probs = en->probs;
        out->n_probs = en->n_probs;
        out->time_ms = en->time_ms;
        take_done(j, s);
        return 1;
}

int sl_eval_join_take_label(sl_eval_join_t *j, const char *id, sl_eval_label_t *out)
{
        size_t s;
        entry_t *en = take_find(j, id, LABEL, &s);

        if (!en)
                return 0;
        out->label = en->cls;
        out->value = en->value;
        out->time_ms = en->time_ms;
        take_done(j, s);
        return 1;
}

size_t sl_eval_join_expire(sl_eval_join_t *j, int64_t now_ms, int64_t max_age_ms)
{
        size_t n = 0;
        int64_t cutoff;

        if (max_age_ms < 0)
                max_age_ms = 0;
        cutoff = now_ms >= INT64_MIN + max_age_ms ? now_ms - max_age_ms : INT64_MIN;
        while (j->head != NONE && j->e[j->head].time_ms < cutoff) {
                entry_remove(j, j->head, slot_of(j, j->head));
                n++;
        }
        j->st.expired += (int64_t)n;
        return n;
}

size_t sl_eval_join_drop_model(sl_eval_join_t *j, const void *model)
{
        size_t n = 0;
        uint32_t idx = j->head;

        while (idx != NONE) {
                uint32_t next = j->e[idx].next;
                if (j->e[idx].kind == PRED && j->e[idx].model == model) {
                        entry_remove(j, idx, slot_of(j, idx));
                        n++;
                }
                idx = next;
        }
        j->st.dropped += (int64_t)n;
        return n;
}

void sl_eval_join_stats(const sl_eval_join_t *j, sl_eval_join_stats_t *out)
{
        *out = j->st;
        out->bytes =
            sizeof(*j) + j->max * sizeof(*j->e) + (j->mask + 1) * sizeof(*j->table) + j->heap_bytes;
}
