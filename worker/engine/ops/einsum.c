/*
 * Einsum (12): any equation of lower/upper-case labels with "..." and an
 * explicit or implicit output, evaluated by one loop over every label
 * combination (each operand reads through per-label strides; a label
 * repeated in one operand sums its strides, which walks the diagonal).
 * Simple and general rather than fast: the cost is the product of all label
 * sizes, as a naive contraction.
 * @sa ONNX docs/Operators.md, "Einsum"; numpy.einsum for the implicit output
 *     (ellipsis dims first, then the labels used once, in alphabetical order).
 */
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

#define LABELS 64 /* 52 letters + up to SL_MAX_DIMS ellipsis dims */

static int label_of(char ch)
{
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a';
        if (ch >= 'A' && ch <= 'Z')
                return 26 + ch - 'A';
        return -1;
}

typedef struct {
        int n; /* labels of the term, ellipsis expanded */
        int lab[SL_MAX_DIMS];
} term_t;

/* Parses one term ("ij", "...ii", "b...") with \p erank ellipsis dims of which
 * this operand has \p own (right-aligned). Returns 0 or -1. */
static int parse_term(const char *s, size_t len, int erank, int own, term_t *t)
{
        t->n = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == ' ')
                        continue;
                if (s[i] == '.') {
                        if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                                return -1;
                        for (int e = erank - own; e < erank; e++) {
                                if (t->n >= SL_MAX_DIMS)
                                        return -1;
                                t->lab[t->n++] = 52 + e;
                        }
                        i += 2;
                        continue;
                }
                if (label_of(s[i]) < 0 || t->n >= SL_MAX_DIMS)
                        return -1;
                t->lab[t->n++] = label_of(s[i]);
        }
        return 0;
}

/* Letters of a term (not counting "..."), or -1 when it has two ellipses. */
static int letters(const char *s, size_t len, bool *ell)
{
        int n = 0;
        *ell = false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '.') {
                        if (*ell)
                                return -1;
                        *ell = true;
                        i += 2;
                } else if (s[i] != ' ') {
                        n++;
                }
        }
        return n;
}

sl_err_t sl_op_einsum(sl_opctx_t *c)
{
        char eq[256];
        const char *e = sl_attr_string(c->node, "equation", "", eq, sizeof(eq)), *arrow, *p;
        const char *tb[SL_NODE_IO_MAX];
        size_t tl[SL_NODE_IO_MAX];
        int nt = 0, erank = 0, own[SL_NODE_IO_MAX], all[LABELS], nall = 0, cnt[LABELS] = {0};
        int64_t size[LABELS], st[SL_NODE_IO_MAX][LABELS], ost[LABELS], idx[LABELS] = {0},
                                                                       odims[SL_MAX_DIMS];
        term_t terms[SL_NODE_IO_MAX], out;
        sl_tensor_t *y;
        int64_t total = 1, n_out;

        for (int l = 0; l < LABELS; l++)
                size[l] = -1;
        arrow = strstr(e, "->");
        /* Split the inputs' terms at commas. */
        for (p = e;;) {
                const char *q = p;
                while (*q && *q != ',' && (!arrow || q < arrow))
                        q++;
                if (nt >= SL_NODE_IO_MAX)
                        return sl_op_fail(c, SL_ERR_MODEL, "equation has too many terms");
                tb[nt] = p;
                tl[nt++] = (size_t)(q - p);
                if (*q != ',')
                        break;
                p = q + 1;
        }
        if (nt != c->n_in)
                return sl_op_fail(c, SL_ERR_MODEL, "equation '%s' has %d terms for %d inputs", e,
                                  nt, c->n_in);
        for (int k = 0; k < nt; k++) {
                bool ell;
                int nl = letters(tb[k], tl[k], &ell);
                if (!c->in[k] || nl < 0 || (!ell && nl != c->in[k]->ndim) ||
                    (ell && nl > c->in[k]->ndim))
                        return sl_op_fail(c, SL_ERR_SHAPE,
                                          "term %d of '%s' does not match input rank %d", k, e,
                                          c->in[k] ? c->in[k]->ndim : -1);
                own[k] = ell ? c->in[k]->ndim - nl : 0;
                erank = own[k] > erank ? own[k] : erank;
        }
        for (int k = 0; k < nt; k++) {
                const sl_tensor_t *t = c->in[k];
                int64_t s[SL_MAX_DIMS];
                if (parse_term(tb[k], tl[k], erank, own[k], &terms[k]) || terms[k].n != t->ndim)
                        return sl_op_fail(c, SL_ERR_MODEL, "cannot parse term %d of '%s'", k, e);
                if (t->dtype != c->in[0]->dtype || !sl_dtype_size(t->dtype) ||
                    t->dtype == SL_DT_FLOAT16)
                        return sl_op_fail(c, SL_ERR_DATATYPE, "inputs must share a numeric type");
                sl_strides(t->ndim, t->dims, s);
                for (int l = 0; l < LABELS; l++)
                        st[k][l] = 0;
                for (int d = 0; d < t->ndim; d++) {
                        int l = terms[k].lab[d];
                        int64_t n = t->dims[d];
                        if (l >= 52 && n == 1) /* a broadcast ellipsis dim */
                                continue;
                        if (size[l] >= 0 && size[l] != n && !(l >= 52 && size[l] == 1))
                                return sl_op_fail(c, SL_ERR_SHAPE, "label sizes differ in '%s'", e);
                        size[l] = n;
                        st[k][l] += s[d];
                }
                for (int d = 0; d < t->ndim; d++)
                        cnt[terms[k].lab[d]]++;
        }
        for (int l = 52; l < 52 + erank; l++)
                if (size[l] < 0)
                        size[l] = 1;
        if (arrow) {
                bool ell;
                const char *o = arrow + 2;
                if (letters(o, strlen(o), &ell) < 0 || parse_term(o, strlen(o), erank, erank, &out))
                        return sl_op_fail(c, SL_ERR_MODEL, "cannot parse the output of '%s'", e);
        } else {
                out.n = 0;
                for (int l = 52; l < 52 + erank; l++)
                        out.lab[out.n++] = l;
                for (int l = 0; l < 52; l++)
                        if (cnt[l] == 1) {
                                if (out.n >= SL_MAX_DIMS)
                                        return sl_op_fail(c, SL_ERR_UNSUPPORTED,
                                                          "output rank too large");
                                out.lab[out.n++] = l;
                        }
        }
        for (int d = 0; d < out.n; d++) {
                if (size[out.lab[d]] < 0)
                        return sl_op_fail(c, SL_ERR_MODEL, "output label of '%s' is not an input's",
                                          e);
                odims[d] = size[out.lab[d]];
        }
        if (!(y = sl_op_output(c, 0, c->in[0]->dtype, out.n, odims)))
                return SL_ERR_NOMEM;
        n_out = sl_tensor_numel(y);
        {
                int64_t s[SL_MAX_DIMS];
                sl_strides(out.n, odims, s);
                for (int l = 0; l < LABELS; l++)
                        ost[l] = 0;
                for (int d = 0; d < out.n; d++)
                        ost[out.lab[d]] += s[d];
        }
        for (int l = 0; l < LABELS; l++)
                if (size[l] >= 0) {
                        all[nall++] = l;
                        if (size[l] == 0)
                                total = 0;
                        else if (total > INT64_MAX / size[l])
                                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "equation too large");
                        else
                                total *= size[l];
                }
        for (int64_t i = 0; i < n_out; i++)
                sl_tensor_set_f64(y, i, 0);
        /* Odometer over every label; the last label moves fastest. */
        for (int64_t it = 0; it < total; it++) {
                double prod = 1;
                int64_t oi = 0;
                for (int k = 0; k < nt; k++) {
                        int64_t off = 0;
                        for (int a = 0; a < nall; a++)
                                off += idx[all[a]] * st[k][all[a]];
                        prod *= sl_tensor_get_f64(c->in[k], off);
                }
                for (int a = 0; a < nall; a++)
                        oi += idx[all[a]] * ost[all[a]];
                sl_tensor_set_f64(y, oi, sl_tensor_get_f64(y, oi) + prod);
                for (int a = nall - 1; a >= 0; a--) {
                        if (++idx[all[a]] < size[all[a]])
                                break;
                        idx[all[a]] = 0;
                }
        }
        return SL_OK;
}
