/*
 * Recurrent layers RNN, GRU and LSTM: forward, reverse and bidirectional;
 * layout 0 ([seq, batch, ...]) and 1 ([batch, seq, ...], opset 14);
 * sequence_lens; initial_h / initial_c; LSTM peepholes and input_forget;
 * clip; the activations attribute with activation_alpha / activation_beta;
 * GRU linear_before_reset 0 and 1.
 *
 * Speed: per direction, the input projection X·W^T of every time step is one
 * cblas_sgemm ([seq*batch, input] x [input, G*hidden]); only the recurrence
 * H·R^T runs per step, one sgemm over the whole batch (two for GRU with
 * linear_before_reset=0, whose hidden gate multiplies R by r ⊙ H).
 *
 * Semantics follow ONNX Runtime where the spec is silent: clip bounds every
 * gate's pre-activation; with sequence_lens, Y is zero past a sequence's end,
 * Y_h / Y_c hold the state after its last valid step, and the reverse
 * direction starts at step sequence_lens[b] - 1.
 *
 * @sa ONNX operator spec, sections "RNN", "GRU", "LSTM" (opsets 7, 14).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

#include "../engine_int.h"
#include "ops.h"

typedef enum {
        ACT_RELU,
        ACT_TANH,
        ACT_SIGMOID,
        ACT_AFFINE,
        ACT_LEAKY_RELU,
        ACT_THRESHOLDED_RELU,
        ACT_SCALED_TANH,
        ACT_HARD_SIGMOID,
        ACT_ELU,
        ACT_SOFTSIGN,
        ACT_SOFTPLUS,
} act_kind_t;

typedef struct {
        act_kind_t kind;
        float alpha, beta;
} act_t;

/* The activation functions the spec lists for recurrent layers, how many of
 * activation_alpha / activation_beta each consumes, and the defaults of the
 * matching ONNX operators when those lists run short. */
static const struct {
        const char *name;
        act_kind_t kind;
        int uses_alpha, uses_beta;
        float alpha, beta;
} act_table[] = {
    {"Relu", ACT_RELU, 0, 0, 0.0f, 0.0f},
    {"Tanh", ACT_TANH, 0, 0, 0.0f, 0.0f},
    {"Sigmoid", ACT_SIGMOID, 0, 0, 0.0f, 0.0f},
    {"Affine", ACT_AFFINE, 1, 1, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKY_RELU, 1, 0, 0.01f, 0.0f},
    {"ThresholdedRelu", ACT_THRESHOLDED_RELU, 1, 0, 1.0f, 0.0f},
    {"ScaledTanh", ACT_SCALED_TANH, 1, 1, 1.0f, 1.0f},
    {"HardSigmoid", ACT_HARD_SIGMOID, 1, 1, 0.2f, 0.5f},
    {"Elu", ACT_ELU, 1, 0, 1.0f, 0.0f},
    {"Softsign", ACT_SOFTSIGN, 0, 0, 0.0f, 0.0f},
    {"Softplus", ACT_SOFTPLUS, 0, 0, 0.0f, 0.0f},
};

#define N_ACT_TABLE (sizeof(act_table) / sizeof(act_table[0]))

typedef enum { CELL_RNN, CELL_GRU, CELL_LSTM } cell_t;

/* Everything one run needs, read from the node and its inputs. */
typedef struct {
        cell_t cell;
        int ngates, nact, ndir, layout;
        bool reverse, input_forget, lbr;
        int64_t seq, batch, in, hid;
        float clip;
        act_t act[2][3];
        const float *x, *w, *r, *b, *p, *h0, *c0;
        const sl_tensor_t *lens; /* NULL: every sequence is seq long */
        float *y, *yh, *yc;      /* NULL when the output is not wanted */
} rnn_t;

static int cell_nact(cell_t cell)
{
        return cell == CELL_LSTM ? 3 : cell == CELL_GRU ? 2 : 1;
}

static cell_t cell_of(const char *op_type)
{
        return !strcmp(op_type, "LSTM") ? CELL_LSTM : !strcmp(op_type, "GRU") ? CELL_GRU : CELL_RNN;
}

/* Default activations per cell: f, g, h. */
static act_kind_t act_default(cell_t cell, int k)
{
        if (cell == CELL_RNN)
                return ACT_TANH;
        return k == 0 ? ACT_SIGMOID : ACT_TANH;
}

static int act_lookup(const ProtobufCBinaryData *s)
{
        for (size_t i = 0; i < N_ACT_TABLE; i++)
                if (strlen(act_table[i].name) == s->len &&
                    !strncasecmp(act_table[i].name, (const char *)s->data, s->len))
                        return (int)i;
        return -1;
}

/* 0 forward, 1 reverse, 2 bidirectional, -1 unknown. */
static int direction_of(const sl_node_t *node)
{
        char buf[32];
        const char *d = sl_attr_string(node, "direction", "forward", buf, sizeof(buf));
        if (!strcmp(d, "forward"))
                return 0;
        if (!strcmp(d, "reverse"))
                return 1;
        if (!strcmp(d, "bidirectional"))
                return 2;
        return -1;
}

/*
 * Fill act[dir][k] from the activations / activation_alpha / activation_beta
 * attributes. Returns 0, or -1 with errstr set.
 */
static int parse_acts(const sl_node_t *node, cell_t cell, int ndir, act_t act[2][3], char *errstr,
                      size_t errstr_size)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, "activations");
        const float *alpha = NULL, *beta = NULL;
        int na = sl_attr_floats(node, "activation_alpha", &alpha);
        int nb = sl_attr_floats(node, "activation_beta", &beta);
        int nact = cell_nact(cell), ia = 0, ib = 0;
        size_t n = a ? a->n_strings : 0;

        for (int d = 0; d < 2; d++)
                for (int k = 0; k < 3; k++) {
                        act[d][k].kind = act_default(cell, k);
                        act[d][k].alpha = act[d][k].beta = 0.0f;
                }
        if (!n)
                return 0;
        /* One direction's list given for a bidirectional layer: both use it. */
        if (n != (size_t)(nact * ndir) && !(ndir == 2 && n == (size_t)nact)) {
                sl_strfmt(errstr, errstr_size, "activations has %zu entries, expected %d", n,
                          nact * ndir);
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
                int e = act_lookup(&a->strings[i]);
                act_t *t = &act[i / (size_t)nact][i % (size_t)nact];
                if (e < 0) {
                        sl_strfmt(errstr, errstr_size, "activation '%.*s' is not supported",
                                  (int)(a->strings[i].len < 64 ? a->strings[i].len : 64),
                                  (const char *)a->strings[i].data);
                        return -1;
                }
                t->kind = act_table[e].kind;
                t->alpha = act_table[e].alpha;
                t->beta = act_table[e].beta;
                if (act_table[e].uses_alpha && ia < na)
                        t->alpha = alpha[ia++];
                if (act_table[e].uses_beta && ib < nb)
                        t->beta = beta[ib++];
        }
        if (n == (size_t)nact && ndir == 2)
                for (int k = 0; k < nact; k++)
                        act[1][k] = act[0][k];
        return 0;
}

sl_err_t sl_check_rnn(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        cell_t cell = cell_of(node->proto->op_type);
        int dir = direction_of(node);
        act_t act[2][3];
        int64_t layout = sl_attr_int(node, "layout", 0);

        if (dir < 0) {
                sl_strfmt(errstr, errstr_size,
                          "direction must be forward, reverse or "
                          "bidirectional");
                return SL_ERR_MODEL;
        }
        if (layout != 0 && (layout != 1 || opset < 14)) {
                sl_strfmt(errstr, errstr_size, "layout=%lld is not valid at opset %lld",
                          (long long)layout, (long long)opset);
                return SL_ERR_MODEL;
        }
        if (sl_attr_find(node, "hidden_size") && sl_attr_int(node, "hidden_size", 0) <= 0) {
                sl_strfmt(errstr, errstr_size, "hidden_size must be positive");
                return SL_ERR_MODEL;
        }
        if (parse_acts(node, cell, dir == 2 ? 2 : 1, act, errstr, errstr_size))
                return SL_ERR_UNSUPPORTED;
        return SL_OK;
}

/* Apply activation \p a to \p n floats in place (one switch per slice so
 * that each loop vectorises). */
static void act_apply(const act_t *a, float *v, int64_t n)
{
        float al = a->alpha, be = a->beta;
        switch (a->kind) {
        case ACT_RELU:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] > 0.0f ? v[i] : 0.0f;
                break;
        case ACT_TANH:
                sl_vtanh(v, v, n);
                break;
        case ACT_SIGMOID:
                sl_vsigmoid(v, v, n);
                break;
        case ACT_AFFINE:
                for (int64_t i = 0; i < n; i++)
                        v[i] = al * v[i] + be;
                break;
        case ACT_LEAKY_RELU:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] >= 0.0f ? v[i] : al * v[i];
                break;
        case ACT_THRESHOLDED_RELU:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] > al ? v[i] : 0.0f;
                break;
        case ACT_SCALED_TANH:
                for (int64_t i = 0; i < n; i++)
                        v[i] = al * tanhf(be * v[i]);
                break;
        case ACT_HARD_SIGMOID:
                for (int64_t i = 0; i < n; i++)
                        v[i] = fmaxf(0.0f, fminf(1.0f, al * v[i] + be));
                break;
        case ACT_ELU:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] >= 0.0f ? v[i] : al * (expf(v[i]) - 1.0f);
                break;
        case ACT_SOFTSIGN:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] / (1.0f + fabsf(v[i]));
                break;
        case ACT_SOFTPLUS:
                for (int64_t i = 0; i < n; i++)
                        v[i] = v[i] > 20.0f ? v[i] : log1pf(expf(v[i]));
                break;
        }
}

static void clip_apply(float clip, float *v, int64_t n)
{
        if (clip <= 0.0f)
                return;
        for (int64_t i = 0; i < n; i++)
                v[i] = fminf(clip, fmaxf(-clip, v[i]));
}

/* Row of X (and of the projection) holding time step t of batch entry b. */
static int64_t x_row(const rnn_t *s, int64_t t, int64_t b)
{
        return s->layout ? b * s->seq + t : t * s->batch + b;
}

/* Offset of [t, d, b, 0] in Y (layout 0: [seq, ndir, batch, hid]; layout 1:
 * [batch, seq, ndir, hid]). */
static int64_t y_off(const rnn_t *s, int64_t t, int d, int64_t b)
{
        if (s->layout)
                return ((b * s->seq + t) * s->ndir + d) * s->hid;
        return ((t * s->ndir + d) * s->batch + b) * s->hid;
}

/* Offset of [d, b, 0] in Y_h / Y_c / initial_h / initial_c (layout 1 swaps
 * the first two axes). */
static int64_t state_off(const rnn_t *s, int d, int64_t b)
{
        if (s->layout)
                return (b * s->ndir + d) * s->hid;
        return (d * s->batch + b) * s->hid;
}

static int64_t seq_len(const rnn_t *s, int64_t b)
{
        return s->lens ? sl_tensor_get_i64(s->lens, b) : s->seq;
}

/* Scratch of one direction, carved out of the session's scratch buffer. */
typedef struct {
        float *xp;  /* [seq*batch, G*hid]: X·W^T, rows as x_row() */
        float *hr;  /* [batch, G*hid]: H·R^T of the current step */
        float *h;   /* [batch, hid] */
        float *c;   /* [batch, hid] (LSTM) */
        float *rh;  /* [batch, hid] (GRU lbr=0): r ⊙ H */
        float *hrh; /* [batch, hid] (GRU lbr=0): (r ⊙ H)·Rh^T */
        float *bx;  /* [G*hid]: biases added to the pre-activations */
        float *bh;  /* [hid] (GRU lbr=1): Rbh, added inside r ⊙ (...) */
} work_t;

static void lstm_row(const rnn_t *s, int d, const float *xr, float *g, float *h, float *c,
                     const float *bx)
{
        int64_t hid = s->hid;
        float *gi = g, *go = g + hid, *gf = g + 2 * hid, *gc = g + 3 * hid;
        const float *p = s->p ? s->p + (int64_t)d * 3 * hid : NULL;
        const act_t *af = &s->act[d][0], *ag = &s->act[d][1], *ah = &s->act[d][2];

        for (int64_t j = 0; j < 4 * hid; j++)
                g[j] += xr[j] + bx[j];
        if (p)
                for (int64_t j = 0; j < hid; j++) {
                        gi[j] += p[j] * c[j];
                        gf[j] += p[2 * hid + j] * c[j];
                }
        clip_apply(s->clip, gi, hid);
        act_apply(af, gi, hid);
        if (s->input_forget) {
                for (int64_t j = 0; j < hid; j++)
                        gf[j] = 1.0f - gi[j];
        } else {
                clip_apply(s->clip, gf, hid);
                act_apply(af, gf, hid);
        }
        clip_apply(s->clip, gc, hid);
        act_apply(ag, gc, hid);
        for (int64_t j = 0; j < hid; j++)
                c[j] = gf[j] * c[j] + gi[j] * gc[j];
        if (p)
                for (int64_t j = 0; j < hid; j++)
                        go[j] += p[hid + j] * c[j];
        clip_apply(s->clip, go, hid);
        act_apply(af, go, hid);
        memcpy(gc, c, sizeof(float) * (size_t)hid);
        act_apply(ah, gc, hid);
        for (int64_t j = 0; j < hid; j++)
                h[j] = go[j] * gc[j];
}

/* LSTM with the default activations (sigmoid, tanh, tanh), no clip, no
 * peepholes and no input_forget: the case steps_lstm_plain() runs. */
static bool lstm_plain(const rnn_t *s, int d)
{
        return s->cell == CELL_LSTM && !s->p && s->clip <= 0.0f && !s->input_forget &&
               s->act[d][0].kind == ACT_SIGMOID && s->act[d][1].kind == ACT_TANH &&
               s->act[d][2].kind == ACT_TANH;
}

/*
 * One step of a plain LSTM (lstm_plain()) over the rows of the batch still
 * inside their sequence: the gates i, o, f of a row are contiguous, so one
 * sigmoid call covers them, and tanh(c) runs once over the whole batch
 * (into \p tc, batch * hid floats) instead of once per row.
 */
static void lstm_step_plain(const rnn_t *s, int d, work_t *w, int64_t step, bool rev, float *tc)
{
        int64_t hid = s->hid, gh = 4 * hid, nb = s->batch;

        for (int64_t b = 0; b < nb; b++) {
                int64_t l = seq_len(s, b), t = rev ? l - 1 - step : step;
                float *g = w->hr + b * gh, *c = w->c + b * hid;
                const float *xr, *gi = g, *gf = g + 2 * hid, *gc = g + 3 * hid;
                if (step >= l)
                        continue;
                xr = w->xp + x_row(s, t, b) * gh;
                for (int64_t j = 0; j < gh; j++)
                        g[j] += xr[j] + w->bx[j];
                sl_vsigmoid(g, g, 3 * hid);
                sl_vtanh(g + 3 * hid, g + 3 * hid, hid);
                for (int64_t j = 0; j < hid; j++)
                        c[j] = gf[j] * c[j] + gi[j] * gc[j];
        }
        sl_vtanh(tc, w->c, nb * hid);
        for (int64_t b = 0; b < nb; b++) {
                int64_t l = seq_len(s, b), t = rev ? l - 1 - step : step;
                const float *go = w->hr + b * gh + hid, *tb = tc + b * hid;
                float *h = w->h + b * hid;
                if (step >= l)
                        continue;
                for (int64_t j = 0; j < hid; j++)
                        h[j] = go[j] * tb[j];
                if (s->y)
                        memcpy(s->y + y_off(s, t, d, b), h, sizeof(float) * (size_t)hid);
        }
}

/*
 * A plain LSTM (lstm_plain()) direction without sequence_lens, layout 0,
 * batch > 1, gate-major: the pre-activations are kept transposed, [G*hid,
 * batch], and H and C as [hid, batch], so that each gate of the whole batch
 * is one contiguous run: per step one sgemm R · H^T, one sigmoid call over
 * i, o, f, one tanh over the cell input and one over C, and loops that
 * vectorise, instead of short per-row calls. Same arithmetic as
 * lstm_step_plain() per element.
 */
static void lstm_gate_major(const rnn_t *s, int d, work_t *w, const float *wd, const float *rd,
                            bool rev)
{
        int64_t hid = s->hid, gh = 4 * hid, nb = s->batch, sn = s->seq * nb, hn = hid * nb;
        float *xt = w->xp, *g = w->hr, *ht = w->h, *ct = w->c, *tc = w->rh;

        for (int64_t b = 0; b < nb; b++)
                for (int64_t j = 0; j < hid; j++) {
                        int64_t o = state_off(s, d, b) + j;
                        ht[j * nb + b] = s->h0 ? s->h0[o] : 0.0f;
                        ct[j * nb + b] = s->c0 ? s->c0[o] : 0.0f;
                }
        /* xt = W · X^T: [G*hid, seq*batch], column t*batch + b. */
        if (s->in)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)gh, (int)sn, (int)s->in,
                            1.0f, wd, (int)s->in, s->x, (int)s->in, 0.0f, xt, (int)sn);
        else
                memset(xt, 0, sizeof(float) * (size_t)(gh * sn));
        for (int64_t step = 0; step < s->seq; step++) {
                int64_t t = rev ? s->seq - 1 - step : step;
                const float *gi = g, *go = g + hn, *gf = g + 2 * hn, *gc = g + 3 * hn;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)gh, (int)nb, (int)hid,
                            1.0f, rd, (int)hid, ht, (int)nb, 0.0f, g, (int)nb);
                for (int64_t r = 0; r < gh; r++) {
                        const float *xr = xt + r * sn + t * nb;
                        float *gr = g + r * nb, bb = w->bx[r];
                        for (int64_t b = 0; b < nb; b++)
                                gr[b] += xr[b] + bb;
                }
                sl_vsigmoid(g, g, 3 * hn);
                sl_vtanh(g + 3 * hn, g + 3 * hn, hn);
                for (int64_t k = 0; k < hn; k++)
                        ct[k] = gf[k] * ct[k] + gi[k] * gc[k];
                sl_vtanh(tc, ct, hn);
                for (int64_t k = 0; k < hn; k++)
                        ht[k] = go[k] * tc[k];
                if (s->y)
                        for (int64_t b = 0; b < nb; b++) {
                                float *yb = s->y + y_off(s, t, d, b);
                                for (int64_t j = 0; j < hid; j++)
                                        yb[j] = ht[j * nb + b];
                        }
        }
        for (int64_t b = 0; b < nb; b++)
                for (int64_t j = 0; j < hid; j++) {
                        if (s->yh)
                                s->yh[state_off(s, d, b) + j] = ht[j * nb + b];
                        if (s->yc)
                                s->yc[state_off(s, d, b) + j] = ct[j * nb + b];
                }
}

static void rnn_row(const rnn_t *s, int d, const float *xr, float *g, float *h, const float *bx)
{
        for (int64_t j = 0; j < s->hid; j++)
                g[j] += xr[j] + bx[j];
        clip_apply(s->clip, g, s->hid);
        act_apply(&s->act[d][0], g, s->hid);
        memcpy(h, g, sizeof(float) * (size_t)s->hid);
}

/* GRU update and reset gates (first 2*hid of g), in place. */
static void gru_zr(const rnn_t *s, int d, const float *xr, float *g, const float *bx)
{
        for (int64_t j = 0; j < 2 * s->hid; j++)
                g[j] += xr[j] + bx[j];
        clip_apply(s->clip, g, 2 * s->hid);
        act_apply(&s->act[d][0], g, 2 * s->hid);
}

/* GRU hidden gate and new H. \p hh is the recurrent term of the hidden gate:
 * (r ⊙ H)·Rh^T (lbr=0, r already applied) or H·Rh^T (lbr=1, r applied here,
 * with Rbh from \p bh). \p ht is hid floats of scratch. */
static void gru_h(const rnn_t *s, int d, const float *xr, const float *g, const float *hh, float *h,
                  const float *bx, const float *bh, float *ht)
{
        int64_t hid = s->hid;
        const float *z = g, *r = g + hid, *xh = xr + 2 * hid, *bxh = bx + 2 * hid;

        if (s->lbr)
                for (int64_t j = 0; j < hid; j++)
                        ht[j] = xh[j] + bxh[j] + r[j] * (hh[j] + bh[j]);
        else
                for (int64_t j = 0; j < hid; j++)
                        ht[j] = xh[j] + bxh[j] + hh[j];
        clip_apply(s->clip, ht, hid);
        act_apply(&s->act[d][1], ht, hid);
        for (int64_t j = 0; j < hid; j++)
                h[j] = (1.0f - z[j]) * ht[j] + z[j] * h[j];
}

/* Biases: bx = Wb + Rb per gate, except GRU's hidden gate with
 * linear_before_reset, whose Rbh goes inside r ⊙ (H·Rh^T + Rbh). */
static void setup_bias(const rnn_t *s, int d, work_t *w)
{
        int64_t gh = s->ngates * s->hid;
        const float *wb = s->b ? s->b + (int64_t)d * 2 * gh : NULL, *rb = wb ? wb + gh : NULL;

        for (int64_t j = 0; j < gh; j++)
                w->bx[j] = wb ? wb[j] + rb[j] : 0.0f;
        if (s->cell == CELL_GRU && s->lbr)
                for (int64_t j = 0; j < s->hid; j++) {
                        w->bh[j] = rb ? rb[2 * s->hid + j] : 0.0f;
                        w->bx[2 * s->hid + j] = wb ? wb[2 * s->hid + j] : 0.0f;
                }
}

static void run_direction(const rnn_t *s, int d, work_t *w)
{
        int64_t hid = s->hid, gh = s->ngates * hid, nb = s->batch, maxlen = 0;
        const float *wd = s->w + (int64_t)d * gh * s->in, *rd = s->r + (int64_t)d * gh * hid;
        bool rev = s->reverse || d == 1;
        /* GRU without linear_before_reset: the per-step sgemm covers z and r
         * only; the hidden gate's recurrence needs r first. */
        int64_t ngemm = s->cell == CELL_GRU && !s->lbr ? 2 * hid : gh;
        bool plain = lstm_plain(s, d);

        setup_bias(s, d, w);
        if (plain && !s->lens && !s->layout && nb > 1) {
                lstm_gate_major(s, d, w, wd, rd, rev);
                return;
        }
        for (int64_t b = 0; b < nb; b++) {
                int64_t l = seq_len(s, b);
                if (l > maxlen)
                        maxlen = l;
                if (s->h0)
                        memcpy(w->h + b * hid, s->h0 + state_off(s, d, b), sizeof(float) * hid);
                else
                        memset(w->h + b * hid, 0, sizeof(float) * hid);
                if (s->cell != CELL_LSTM)
                        continue;
                if (s->c0)
                        memcpy(w->c + b * hid, s->c0 + state_off(s, d, b), sizeof(float) * hid);
                else
                        memset(w->c + b * hid, 0, sizeof(float) * hid);
        }
        /* All time steps at once: xp = X · W^T (input_size 0 is legal and
         * gives zeros; BLAS rejects a leading dimension of 0). */
        if (s->in)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(s->seq * nb), (int)gh,
                            (int)s->in, 1.0f, s->x, (int)s->in, wd, (int)s->in, 0.0f, w->xp,
                            (int)gh);
        else
                memset(w->xp, 0, sizeof(float) * (size_t)(s->seq * nb * gh));

        for (int64_t step = 0; step < maxlen; step++) {
                /* One sequence (batch 1): a matrix-vector product, without
                 * sgemm's per-call packing. */
                if (nb > 1 || !sl_gemv_rows(rd, w->h, w->hr, ngemm, hid))
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)ngemm,
                                    (int)hid, 1.0f, w->h, (int)hid, rd, (int)hid, 0.0f, w->hr,
                                    (int)gh);
                if (plain) {
                        lstm_step_plain(s, d, w, step, rev, w->rh);
                        continue;
                }
                if (s->cell == CELL_GRU && !s->lbr) {
                        for (int64_t b = 0; b < nb; b++) {
                                int64_t l = seq_len(s, b), t = rev ? l - 1 - step : step;
                                float *g = w->hr + b * gh, *rh = w->rh + b * hid;
                                const float *hb = w->h + b * hid;
                                if (step >= l) {
                                        memset(rh, 0, sizeof(float) * hid);
                                        continue;
                                }
                                gru_zr(s, d, w->xp + x_row(s, t, b) * gh, g, w->bx);
                                for (int64_t j = 0; j < hid; j++)
                                        rh[j] = g[hid + j] * hb[j];
                        }
                        if (nb > 1 || !sl_gemv_rows(rd + 2 * hid * hid, w->rh, w->hrh, hid, hid))
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb,
                                            (int)hid, (int)hid, 1.0f, w->rh, (int)hid,
                                            rd + 2 * hid * hid, (int)hid, 0.0f, w->hrh, (int)hid);
                }
                for (int64_t b = 0; b < nb; b++) {
                        int64_t l = seq_len(s, b), t = rev ? l - 1 - step : step;
                        float *g = w->hr + b * gh, *h = w->h + b * hid;
                        const float *xr;
                        if (step >= l)
                                continue;
                        xr = w->xp + x_row(s, t, b) * gh;
                        switch (s->cell) {
                        case CELL_RNN:
                                rnn_row(s, d, xr, g, h, w->bx);
                                break;
                        case CELL_LSTM:
                                lstm_row(s, d, xr, g, h, w->c + b * hid, w->bx);
                                break;
                        case CELL_GRU:
                                if (s->lbr) {
                                        gru_zr(s, d, xr, g, w->bx);
                                        gru_h(s, d, xr, g, g + 2 * hid, h, w->bx, w->bh,
                                              w->rh + b * hid);
                                } else {
                                        gru_h(s, d, xr, g, w->hrh + b * hid, h, w->bx, NULL,
                                              w->rh + b * hid);
                                }
                                break;
                        }
                        if (s->y)
                                memcpy(s->y + y_off(s, t, d, b), h, sizeof(float) * hid);
                }
        }
        for (int64_t b = 0; b < nb; b++) {
                if (s->yh)
                        memcpy(s->yh + state_off(s, d, b), w->h + b * hid, sizeof(float) * hid);
                if (s->yc)
                        memcpy(s->yc + state_off(s, d, b), w->c + b * hid, sizeof(float) * hid);
        }
}

/* Check that \p t is a float tensor of rank 3 / 2 / 1 with the given dims
 * (-1 matches any). */
static bool shape_is(const sl_tensor_t *t, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
        int64_t want[3] = {d0, d1, d2};
        if (t->dtype != SL_DT_FLOAT || t->ndim != ndim)
                return false;
        for (int k = 0; k < ndim; k++)
                if (want[k] >= 0 && t->dims[k] != want[k])
                        return false;
        return true;
}

/* Read inputs and attributes into \p s and validate every shape. */
static sl_err_t setup(sl_opctx_t *c, cell_t cell, rnn_t *s)
{
        const sl_tensor_t *x = sl_op_in(c, 0), *w = sl_op_in(c, 1), *r = sl_op_in(c, 2);
        const sl_tensor_t *b = sl_op_in(c, 3), *lens = sl_op_in(c, 4), *h0 = sl_op_in(c, 5);
        const sl_tensor_t *c0 = cell == CELL_LSTM ? sl_op_in(c, 6) : NULL;
        const sl_tensor_t *p = cell == CELL_LSTM ? sl_op_in(c, 7) : NULL;
        int dir = direction_of(c->node);
        int64_t gh, sd0, sd1;

        memset(s, 0, sizeof(*s));
        s->cell = cell;
        s->ngates = cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1;
        s->nact = cell_nact(cell);
        s->ndir = dir == 2 ? 2 : 1;
        s->reverse = dir == 1;
        s->layout = (int)sl_attr_int(c->node, "layout", 0);
        s->clip = sl_attr_find(c->node, "clip") ? sl_attr_float(c->node, "clip", 0.0f) : 0.0f;
        s->input_forget = sl_attr_int(c->node, "input_forget", 0) != 0;
        s->lbr = sl_attr_int(c->node, "linear_before_reset", 0) != 0;
        if (dir < 0 || (s->layout != 0 && s->layout != 1))
                return sl_op_fail(c, SL_ERR_MODEL, "bad direction or layout");
        if (parse_acts(c->node, cell, s->ndir, s->act, c->errstr, c->errstr_size))
                return SL_ERR_UNSUPPORTED;
        if (!x || !w || !r)
                return sl_op_fail(c, SL_ERR_MODEL, "X, W and R are required");
        if (x->dtype != SL_DT_FLOAT || w->dtype != SL_DT_FLOAT || r->dtype != SL_DT_FLOAT)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float tensors only (X is %s)",
                                  sl_dtype_name(x->dtype));
        if (x->ndim != 3 || r->ndim != 3)
                return sl_op_fail(c, SL_ERR_SHAPE, "X and R must be 3-D (ranks %d, %d)", x->ndim,
                                  r->ndim);
        s->seq = x->dims[s->layout ? 1 : 0];
        s->batch = x->dims[s->layout ? 0 : 1];
        s->in = x->dims[2];
        s->hid = r->dims[2];
        gh = s->ngates * s->hid;
        if (sl_attr_find(c->node, "hidden_size") &&
            sl_attr_int(c->node, "hidden_size", 0) != s->hid)
                return sl_op_fail(c, SL_ERR_SHAPE, "hidden_size %lld, R has %lld",
                                  (long long)sl_attr_int(c->node, "hidden_size", 0),
                                  (long long)s->hid);
        if (s->hid <= 0 || !shape_is(r, 3, s->ndir, gh, s->hid) ||
            !shape_is(w, 3, s->ndir, gh, s->in))
                return sl_op_fail(c, SL_ERR_SHAPE,
                                  "W [%lld, %lld, %lld] / R [%lld, %lld, %lld] do not match "
                                  "%d direction(s), %d gate(s), input %lld",
                                  (long long)w->dims[0], (long long)w->dims[1],
                                  (long long)w->dims[2], (long long)r->dims[0],
                                  (long long)r->dims[1], (long long)r->dims[2], s->ndir, s->ngates,
                                  (long long)s->in);
        /* Sizes handed to cblas as int. */
        if (s->seq * s->batch > INT32_MAX || gh > INT32_MAX / 2 || s->in > INT32_MAX)
                return sl_op_fail(c, SL_ERR_SHAPE, "dimensions too large");
        if (b && !shape_is(b, 2, s->ndir, 2 * gh, -1))
                return sl_op_fail(c, SL_ERR_SHAPE, "B must be [%d, %lld]", s->ndir,
                                  (long long)(2 * gh));
        if (p && !shape_is(p, 2, s->ndir, 3 * s->hid, -1))
                return sl_op_fail(c, SL_ERR_SHAPE, "P must be [%d, %lld]", s->ndir,
                                  (long long)(3 * s->hid));
        sd0 = s->layout ? s->batch : s->ndir;
        sd1 = s->layout ? s->ndir : s->batch;
        if ((h0 && !shape_is(h0, 3, sd0, sd1, s->hid)) ||
            (c0 && !shape_is(c0, 3, sd0, sd1, s->hid)))
                return sl_op_fail(c, SL_ERR_SHAPE,
                                  "initial_h / initial_c must be [%lld, %lld, %lld]",
                                  (long long)sd0, (long long)sd1, (long long)s->hid);
        if (lens) {
                if ((lens->dtype != SL_DT_INT32 && lens->dtype != SL_DT_INT64) || lens->ndim != 1 ||
                    lens->dims[0] != s->batch)
                        return sl_op_fail(c, SL_ERR_SHAPE, "sequence_lens must be int32 [%lld]",
                                          (long long)s->batch);
                for (int64_t i = 0; i < s->batch; i++) {
                        int64_t l = sl_tensor_get_i64(lens, i);
                        if (l < 0 || l > s->seq)
                                return sl_op_fail(c, SL_ERR_SHAPE,
                                                  "sequence_lens[%lld] = %lld outside [0, %lld]",
                                                  (long long)i, (long long)l, (long long)s->seq);
                }
        }
        s->x = x->data;
        s->w = w->data;
        s->r = r->data;
        s->b = b ? b->data : NULL;
        s->p = p ? p->data : NULL;
        s->h0 = h0 ? h0->data : NULL;
        s->c0 = c0 ? c0->data : NULL;
        s->lens = lens;
        return SL_OK;
}

/* Allocate the outputs that are wanted; with sequence_lens, Y starts zeroed
 * (padding past each sequence's end). */
static sl_err_t outputs(sl_opctx_t *c, rnn_t *s)
{
        int64_t yd[4], sd[3];
        sl_tensor_t *t;

        if (s->layout) {
                yd[0] = s->batch, yd[1] = s->seq, yd[2] = s->ndir;
                sd[0] = s->batch, sd[1] = s->ndir;
        } else {
                yd[0] = s->seq, yd[1] = s->ndir, yd[2] = s->batch;
                sd[0] = s->ndir, sd[1] = s->batch;
        }
        yd[3] = sd[2] = s->hid;
        if (sl_op_has_output(c, 0)) {
                if (!(t = sl_op_output(c, 0, SL_DT_FLOAT, 4, yd)))
                        return SL_ERR_NOMEM;
                /* Without sequence_lens every step writes every row. */
                if (s->lens)
                        memset(t->data, 0, t->nbytes);
                s->y = t->data;
        }
        if (sl_op_has_output(c, 1)) {
                if (!(t = sl_op_output(c, 1, SL_DT_FLOAT, 3, sd)))
                        return SL_ERR_NOMEM;
                s->yh = t->data;
        }
        if (s->cell == CELL_LSTM && sl_op_has_output(c, 2)) {
                if (!(t = sl_op_output(c, 2, SL_DT_FLOAT, 3, sd)))
                        return SL_ERR_NOMEM;
                s->yc = t->data;
        }
        return SL_OK;
}

static sl_err_t run_cell(sl_opctx_t *c, cell_t cell)
{
        rnn_t s;
        work_t w;
        sl_err_t err;
        int64_t gh, nf;
        float *base;

        if ((err = setup(c, cell, &s)) || (err = outputs(c, &s)))
                return err;
        gh = s.ngates * s.hid;
        if (!s.seq || !s.batch) {
                /* No step runs: the final state is the initial one. */
                for (int d = 0; d < s.ndir; d++)
                        for (int64_t b = 0; b < s.batch; b++) {
                                int64_t o = state_off(&s, d, b);
                                for (int64_t j = 0; j < s.hid; j++) {
                                        if (s.yh)
                                                s.yh[o + j] = s.h0 ? s.h0[o + j] : 0.0f;
                                        if (s.yc)
                                                s.yc[o + j] = s.c0 ? s.c0[o + j] : 0.0f;
                                }
                        }
                return SL_OK;
        }
        /* xp + hr + h, c, rh, hrh + bx + bh */
        nf = s.seq * s.batch * gh + s.batch * gh + 4 * s.batch * s.hid + gh + s.hid;
        if (nf > (int64_t)(SL_TENSOR_BYTES_MAX / sizeof(float)) ||
            !(base = sl_op_scratch(c, (size_t)nf * sizeof(float))))
                return sl_op_fail(c, SL_ERR_NOMEM, "scratch of %lld floats", (long long)nf);
        w.xp = base;
        w.hr = w.xp + s.seq * s.batch * gh;
        w.h = w.hr + s.batch * gh;
        w.c = w.h + s.batch * s.hid;
        w.rh = w.c + s.batch * s.hid;
        w.hrh = w.rh + s.batch * s.hid;
        w.bx = w.hrh + s.batch * s.hid;
        w.bh = w.bx + gh;
        for (int d = 0; d < s.ndir; d++)
                run_direction(&s, d, &w);
        return SL_OK;
}

sl_err_t sl_op_rnn(sl_opctx_t *c)
{
        return run_cell(c, CELL_RNN);
}

sl_err_t sl_op_gru(sl_opctx_t *c)
{
        return run_cell(c, CELL_GRU);
}

sl_err_t sl_op_lstm(sl_opctx_t *c)
{
        return run_cell(c, CELL_LSTM);
}
