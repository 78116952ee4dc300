/* Evaluators: classification and regression accumulators, window and total. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

/* Counts of one span. The per-class vectors are what precision, recall and
 * F1 need; the full matrix is kept only while it stays small. */
typedef struct acc_s {
        int64_t count, invalid, correct, ll_count;
        double ll_sum, abs_sum, sq_sum;
        int64_t *tp;        /* [C] true positives */
        int64_t *predicted; /* [C] column sums */
        int64_t *support;   /* [C] row sums */
        int64_t *confusion; /* [C*C] or NULL */
} acc_t;

struct sl_eval_s {
        sl_eval_kind_t kind;
        int32_t n_classes;
        const char *const *labels;
        acc_t total;
        acc_t window;   /* being filled */
        acc_t reported; /* the window last reported, swapped with window on reset */
        sl_eval_class_t *cls_window, *cls_total;
        sl_eval_report_t report;
};

static void acc_cleanup(acc_t *a)
{
        free(a->tp);
        free(a->confusion);
        memset(a, 0, sizeof(*a));
}

/* One allocation for the three vectors (tp, predicted, support). */
static int acc_init(acc_t *a, int32_t c)
{
        memset(a, 0, sizeof(*a));
        if (!c)
                return 0;
        if (!(a->tp = calloc((size_t)c * 3, sizeof(int64_t))))
                return -1;
        a->predicted = a->tp + c;
        a->support = a->tp + 2 * (size_t)c;
        if (c <= SL_EVAL_CONFUSION_CLASSES_MAX &&
            !(a->confusion = calloc((size_t)c * (size_t)c, sizeof(int64_t)))) {
                acc_cleanup(a);
                return -1;
        }
        return 0;
}

static void acc_zero(acc_t *a, int32_t c)
{
        a->count = a->invalid = a->correct = a->ll_count = 0;
        a->ll_sum = a->abs_sum = a->sq_sum = 0;
        if (a->tp)
                memset(a->tp, 0, (size_t)c * 3 * sizeof(int64_t));
        if (a->confusion)
                memset(a->confusion, 0, (size_t)c * (size_t)c * sizeof(int64_t));
}

static void acc_copy(acc_t *dst, const acc_t *src, int32_t c)
{
        dst->count = src->count;
        dst->invalid = src->invalid;
        dst->correct = src->correct;
        dst->ll_count = src->ll_count;
        dst->ll_sum = src->ll_sum;
        dst->abs_sum = src->abs_sum;
        dst->sq_sum = src->sq_sum;
        if (src->tp)
                memcpy(dst->tp, src->tp, (size_t)c * 3 * sizeof(int64_t));
        if (src->confusion)
                memcpy(dst->confusion, src->confusion, (size_t)c * (size_t)c * sizeof(int64_t));
}

sl_eval_t *sl_eval_new(sl_eval_kind_t kind, int32_t n_classes, const char *const *labels)
{
        sl_eval_t *ev;
        int32_t c;

        if (kind == SL_EVAL_CLASSIFICATION) {
                if (n_classes < 1 || n_classes > SL_EVAL_CLASSES_MAX)
                        return NULL;
                c = n_classes;
        } else if (kind == SL_EVAL_REGRESSION) {
                c = 0;
        } else {
                return NULL;
        }
        if (!(ev = calloc(1, sizeof(*ev))))
                return NULL;
        ev->kind = kind;
        ev->n_classes = c;
        ev->labels = c ? labels : NULL;
        if (acc_init(&ev->total, c) || acc_init(&ev->window, c) || acc_init(&ev->reported, c))
                goto fail;
        if (c && (!(ev->cls_window = calloc((size_t)c, sizeof(*ev->cls_window))) ||
                  !(ev->cls_total = calloc((size_t)c, sizeof(*ev->cls_total)))))
                goto fail;
        return ev;
fail:
        sl_eval_destroy(ev);
        return NULL;
}

void sl_eval_destroy(sl_eval_t *ev)
{
        if (!ev)
                return;
        acc_cleanup(&ev->total);
        acc_cleanup(&ev->window);
        acc_cleanup(&ev->reported);
        free(ev->cls_window);
        free(ev->cls_total);
        free(ev);
}

sl_eval_kind_t sl_eval_kind(const sl_eval_t *ev)
{
        return ev->kind;
}

int32_t sl_eval_n_classes(const sl_eval_t *ev)
{
        return ev->n_classes;
}

static void acc_add_class(acc_t *a, int32_t c, int64_t pred, int64_t label, double nll)
{
        a->count++;
        a->correct += pred == label;
        a->tp[label] += pred == label;
        a->predicted[pred]++;
        a->support[label]++;
        if (a->confusion)
                a->confusion[label * c + pred]++;
        if (nll >= 0) {
                a->ll_count++;
                a->ll_sum += nll;
        }
}

sl_err_t sl_eval_add_class(sl_eval_t *ev, int64_t predicted, int64_t label, const float *probs)
{
        int32_t c = ev->n_classes;
        double nll = -1;

        if (ev->kind != SL_EVAL_CLASSIFICATION)
                return SL_ERR_INVALID_ARG;
        if (label < 0 || label >= c || predicted < 0 || predicted >= c) {
                ev->window.invalid++;
                ev->total.invalid++;
                return SL_ERR_BAD_REQUEST;
        }
        if (probs) {
                /* fmax/fmin drop a NaN operand, so NaN clips to eps like 0 does. */
                double p = fmin(fmax((double)probs[label], SL_EVAL_LOG_LOSS_EPS), 1.0);
                nll = -log(p);
        }
        acc_add_class(&ev->window, c, predicted, label, nll);
        acc_add_class(&ev->total, c, predicted, label, nll);
        return SL_OK;
}

static void acc_add_value(acc_t *a, double err)
{
        a->count++;
        a->abs_sum += fabs(err);
        a->sq_sum += err * err;
}

sl_err_t sl_eval_add_value(sl_eval_t *ev, double prediction, double truth)
{
        double err = prediction - truth;

        if (ev->kind != SL_EVAL_REGRESSION)
                return SL_ERR_INVALID_ARG;
        if (!isfinite(prediction) || !isfinite(truth) || !isfinite(err)) {
                ev->window.invalid++;
                ev->total.invalid++;
                return SL_ERR_BAD_REQUEST;
        }
        acc_add_value(&ev->window, err);
        acc_add_value(&ev->total, err);
        return SL_OK;
}

static double ratio(int64_t num, int64_t den)
{
        return den > 0 ? (double)num / (double)den : 0.0;
}

static void stats_fill(const sl_eval_t *ev, const acc_t *a, sl_eval_class_t *cls,
                       sl_eval_stats_t *s)
{
        int32_t c = ev->n_classes;
        double sp = 0, sr = 0, sf = 0;

        memset(s, 0, sizeof(*s));
        s->count = a->count;
        s->invalid = a->invalid;
        if (ev->kind == SL_EVAL_REGRESSION) {
                s->mae = a->count ? a->abs_sum / (double)a->count : 0;
                s->rmse = a->count ? sqrt(a->sq_sum / (double)a->count) : 0;
                return;
        }
        s->correct = a->correct;
        s->accuracy = ratio(a->correct, a->count);
        s->log_loss_count = a->ll_count;
        s->log_loss = a->ll_count ? a->ll_sum / (double)a->ll_count : 0;
        for (int32_t k = 0; k < c; k++) {
                int64_t tp = a->tp[k];
                int64_t fp = a->predicted[k] - tp, fn = a->support[k] - tp;
                cls[k].index = k;
                cls[k].label = ev->labels ? ev->labels[k] : NULL;
                cls[k].precision = ratio(tp, a->predicted[k]);
                cls[k].recall = ratio(tp, a->support[k]);
                /* 2TP / (2TP + FP + FN): equal to 2PR / (P + R) where both are
                 * defined, and 0 where scikit-learn's zero_division=0 gives 0. */
                cls[k].f1 = ratio(2 * tp, 2 * tp + fp + fn);
                cls[k].support = a->support[k];
                sp += cls[k].precision;
                sr += cls[k].recall;
                sf += cls[k].f1;
        }
        s->macro_precision = sp / c;
        s->macro_recall = sr / c;
        s->macro_f1 = sf / c;
        s->n_classes = c;
        s->per_class = cls;
        s->confusion = a->confusion;
}

const sl_eval_report_t *sl_eval_snapshot(sl_eval_t *ev, int reset_window)
{
        ev->report.kind = ev->kind;
        if (reset_window) {
                /* The report keeps pointing at the finished window's matrix
                 * while a zeroed one takes its place. */
                acc_t done = ev->window;
                ev->window = ev->reported;
                ev->reported = done;
                acc_zero(&ev->window, ev->n_classes);
                stats_fill(ev, &ev->reported, ev->cls_window, &ev->report.window);
        } else {
                /* A copy, so that the report does not change under later updates. */
                acc_copy(&ev->reported, &ev->window, ev->n_classes);
                stats_fill(ev, &ev->reported, ev->cls_window, &ev->report.window);
        }
        stats_fill(ev, &ev->total, ev->cls_total, &ev->report.total);
        return &ev->report;
}

void sl_eval_reset_window(sl_eval_t *ev)
{
        acc_zero(&ev->window, ev->n_classes);
}
