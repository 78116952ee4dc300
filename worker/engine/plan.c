/*
 * Memory planning: value lifetimes over the execution order and a greedy
 * best-fit placement of the node outputs in one arena (ONNX Runtime's memory
 * pattern, TFLite's "greedy by size" arena planner). The session (session.c)
 * records every value's size in a first run of a batch-size bucket, plans,
 * and runs later batches of that bucket inside the arena.
 */
#include <stdlib.h>

#include "engine_int.h"

void sl_plan_lifetimes(const sl_model_t *m, int *first, int *last)
{
        for (size_t v = 0; v < m->n_values; v++)
                first[v] = last[v] = -1;
        for (size_t i = 0; i < m->n_nodes; i++) {
                const sl_node_t *nd = &m->nodes[i];
                /* Implicit inputs (outer-scope values read by subgraphs) count:
                 * they must live until the Loop/If/Scan that reads them. */
                for (int k = 0; k < nd->n_in; k++)
                        if (nd->in[k] >= 0 && (size_t)nd->in[k] < m->n_values)
                                last[nd->in[k]] = (int)i;
                for (int k = 0; k < nd->n_out; k++) {
                        int v = nd->out[k];
                        if (v < 0 || (size_t)v >= m->n_values)
                                continue; /* the sink is never planned */
                        first[v] = (int)i;
                        if (last[v] < (int)i)
                                last[v] = (int)i;
                }
        }
        /* Graph outputs stay valid after the run (engine.h, sl_session_run). */
        for (size_t o = 0; o < m->n_outputs; o++)
                if (m->output_ids[o] >= 0 && (size_t)m->output_ids[o] < m->n_values)
                        last[m->output_ids[o]] = (int)m->n_nodes;
}

typedef struct {
        size_t size;
        int first, last, v;
} item_t;

/* Largest first; ties by definition order, so that plans are reproducible. */
static int item_cmp(const void *a, const void *b)
{
        const item_t *x = a, *y = b;
        if (x->size != y->size)
                return x->size < y->size ? 1 : -1;
        if (x->first != y->first)
                return x->first < y->first ? -1 : 1;
        return x->v < y->v ? -1 : x->v > y->v;
}

static size_t align_up(size_t n)
{
        return (n + SL_PLAN_ALIGN - 1) & ~(size_t)(SL_PLAN_ALIGN - 1);
}

size_t sl_plan_layout(size_t n_values, const size_t *size, const int *first, const int *last,
                      size_t *off)
{
        item_t *items = NULL;
        size_t *placed = NULL, n_items = 0, n_placed = 0, total = 0;

        for (size_t v = 0; v < n_values; v++) {
                off[v] = SL_PLAN_NONE;
                if (first[v] >= 0 && size[v] != SL_PLAN_NONE)
                        n_items++;
        }
        if (!(items = malloc(sizeof(*items) * (n_items + 1))) ||
            !(placed = malloc(sizeof(*placed) * (n_items + 1)))) {
                total = SL_PLAN_NONE;
                goto done;
        }
        n_items = 0;
        for (size_t v = 0; v < n_values; v++)
                if (first[v] >= 0 && size[v] != SL_PLAN_NONE)
                        items[n_items++] =
                            (item_t){align_up(size[v] ? size[v] : 1), first[v], last[v], (int)v};
        qsort(items, n_items, sizeof(*items), item_cmp);
        /*
         * Each value, largest first, goes into the smallest gap between the
         * already placed values whose lifetimes overlap its own (best fit), or
         * after the last of them. Placed values are kept sorted by offset.
         * Quadratic in the number of values: a few hundred at most here.
         */
        for (size_t i = 0; i < n_items; i++) {
                item_t *it = &items[i];
                size_t at = 0, best = SL_PLAN_NONE, best_gap = SL_PLAN_NONE, pos;
                for (size_t j = 0; j < n_placed; j++) {
                        const item_t *p = &items[placed[j]];
                        size_t poff = off[p->v];
                        if (p->last < it->first || it->last < p->first)
                                continue; /* lifetimes disjoint: may share bytes */
                        if (poff >= at && poff - at >= it->size && poff - at < best_gap) {
                                best = at;
                                best_gap = poff - at;
                        }
                        if (poff + p->size > at)
                                at = poff + p->size;
                }
                if (best == SL_PLAN_NONE)
                        best = at;
                off[it->v] = best;
                if (best + it->size > total)
                        total = best + it->size;
                for (pos = n_placed; pos > 0 && off[items[placed[pos - 1]].v] > best; pos--)
                        placed[pos] = placed[pos - 1];
                placed[pos] = i;
                n_placed++;
        }
done:
        free(items);
        free(placed);
        return total;
}
