/* eval: classification and regression metrics against scikit-learn's
 * definitions on small fixed examples, windows, invalid input, and the join
 * store of predictions and late/early labels.
 *
 * Expected values were computed by hand and checked with scikit-learn 1.9.1
 * (sklearn.metrics: confusion_matrix, accuracy_score,
 * precision_recall_fscore_support(labels=range(C), zero_division=0),
 * log_loss, mean_absolute_error, root_mean_squared_error); the calls are
 * quoted next to each number. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eval/eval.h"

/* |a - b| <= atol + rtol * |b|, printing both values on failure. */
#define ASSERT_NEAR(a, b)                                                                          \
        do {                                                                                       \
                double a_ = (a), b_ = (b);                                                         \
                if (!(fabs(a_ - b_) <= 1e-12 + 1e-9 * fabs(b_)))                                   \
                        fail_msg("%s = %.17g, expected %s = %.17g", #a, a_, #b, b_);               \
        } while (0)

/*
 * The 3-class example:
 *   y_true = [0, 0, 1, 1, 2, 2, 2, 0]
 *   y_pred = [0, 1, 1, 1, 2, 0, 2, 0]   (argmax of P below)
 *   P      = the rows of probs3 (float32, as a model emits them)
 */
static const int64_t yt3[8] = {0, 0, 1, 1, 2, 2, 2, 0};
static const int64_t yp3[8] = {0, 1, 1, 1, 2, 0, 2, 0};
static const float probs3[8][3] = {{0.7f, 0.2f, 0.1f}, {0.3f, 0.6f, 0.1f},  {0.1f, 0.8f, 0.1f},
                                   {0.2f, 0.5f, 0.3f}, {0.1f, 0.1f, 0.8f},  {0.5f, 0.2f, 0.3f},
                                   {0.2f, 0.2f, 0.6f}, {0.9f, 0.05f, 0.05f}};

static void add3(sl_eval_t *ev, int with_probs)
{
        for (int i = 0; i < 8; i++)
                assert_int_equal(
                    sl_eval_add_class(ev, yp3[i], yt3[i], with_probs ? probs3[i] : NULL), SL_OK);
}

/* Everything the 3-class example must give, for one span. */
static void check3(const sl_eval_stats_t *s)
{
        /* confusion_matrix(y_true, y_pred) = [[2 1 0] [0 2 0] [1 0 2]] */
        static const int64_t cm[9] = {2, 1, 0, 0, 2, 0, 1, 0, 2};
        /* precision_recall_fscore_support(..., labels=[0,1,2], zero_division=0):
         *   precision [2/3, 2/3, 1], recall [2/3, 1, 2/3], f1 [2/3, 0.8, 0.8],
         *   support [3, 2, 3] */
        static const double p[3] = {2.0 / 3, 2.0 / 3, 1.0}, r[3] = {2.0 / 3, 1.0, 2.0 / 3};
        static const double f[3] = {2.0 / 3, 0.8, 0.8};
        static const int64_t sup[3] = {3, 2, 3};
        double ll;

        assert_int_equal(s->count, 8);
        assert_int_equal(s->correct, 6);
        assert_int_equal(s->n_classes, 3);
        assert_non_null(s->confusion);
        for (int i = 0; i < 9; i++)
                assert_int_equal(s->confusion[i], cm[i]);
        ASSERT_NEAR(s->accuracy, 0.75); /* accuracy_score = 0.75 */
        for (int k = 0; k < 3; k++) {
                assert_int_equal(s->per_class[k].index, k);
                ASSERT_NEAR(s->per_class[k].precision, p[k]);
                ASSERT_NEAR(s->per_class[k].recall, r[k]);
                ASSERT_NEAR(s->per_class[k].f1, f[k]);
                assert_int_equal(s->per_class[k].support, sup[k]);
        }
        /* average='macro': precision 0.7777777777777777, recall 0.7777777777777777,
         * f1 0.7555555555555555 (mean of the per-class f1, not f1 of the means) */
        ASSERT_NEAR(s->macro_precision, 7.0 / 9);
        ASSERT_NEAR(s->macro_recall, 7.0 / 9);
        ASSERT_NEAR(s->macro_f1, (2.0 / 3 + 0.8 + 0.8) / 3);
        ASSERT_NEAR(s->macro_f1, 0.7555555555555555);
        /* log_loss(y_true, P) over the float32 values = 0.5650301087140036;
         * by hand: -(ln .7 + ln .3 + ln .8 + ln .5 + ln .8 + ln .3 + ln .6 + ln .9) / 8 */
        assert_int_equal(s->log_loss_count, 8);
        ll = 0;
        for (int i = 0; i < 8; i++)
                ll -= log((double)probs3[i][yt3[i]]);
        ASSERT_NEAR(s->log_loss, ll / 8);
        ASSERT_NEAR(s->log_loss, 0.5650301087140036);
}

static void test_classification_matches_sklearn(void **state)
{
        static const char *const names[3] = {"cat", "dog", "bird"};
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 3, names);
        const sl_eval_report_t *r;
        (void)state;

        assert_non_null(ev);
        assert_int_equal(sl_eval_kind(ev), SL_EVAL_CLASSIFICATION);
        assert_int_equal(sl_eval_n_classes(ev), 3);
        add3(ev, 1);
        r = sl_eval_snapshot(ev, 0);
        assert_int_equal(r->kind, SL_EVAL_CLASSIFICATION);
        check3(&r->window);
        check3(&r->total);
        assert_int_equal(r->total.invalid, 0);
        assert_string_equal(r->total.per_class[2].label, "bird");
        assert_string_equal(r->window.per_class[0].label, "cat");
        /* regression fields stay 0 */
        ASSERT_NEAR(r->total.mae, 0);
        ASSERT_NEAR(r->total.rmse, 0);
        sl_eval_destroy(ev);
}

/* Macro averages run over all C classes, as labels=range(C) does. */
static void test_macro_over_all_classes(void **state)
{
        /* C = 4, y_true = [0, 1, 1, 0], y_pred = [0, 1, 2, 1]: class 2 is predicted
         * but never true, class 3 appears nowhere.
         * precision_recall_fscore_support(labels=[0,1,2,3], zero_division=0):
         *   precision [1, 0.5, 0, 0], recall [0.5, 0.5, 0, 0], f1 [2/3, 0.5, 0, 0],
         *   support [2, 2, 0, 0]; average='macro': 0.375, 0.25, 0.29166666666666663.
         * (Without labels=, scikit-learn averages over the 3 classes seen instead:
         *  0.5, 0.333..., 0.388...) */
        static const int64_t yt[4] = {0, 1, 1, 0}, yp[4] = {0, 1, 2, 1};
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 4, NULL);
        const sl_eval_stats_t *s;
        (void)state;

        for (int i = 0; i < 4; i++)
                assert_int_equal(sl_eval_add_class(ev, yp[i], yt[i], NULL), SL_OK);
        s = &sl_eval_snapshot(ev, 1)->window;
        assert_int_equal(s->count, 4);
        ASSERT_NEAR(s->accuracy, 0.5);
        ASSERT_NEAR(s->per_class[0].precision, 1.0);
        ASSERT_NEAR(s->per_class[1].precision, 0.5);
        ASSERT_NEAR(s->per_class[2].precision, 0.0); /* TP 0 of 1 predicted */
        ASSERT_NEAR(s->per_class[3].precision, 0.0); /* 0/0 -> 0 */
        ASSERT_NEAR(s->per_class[0].recall, 0.5);
        ASSERT_NEAR(s->per_class[2].recall, 0.0); /* 0/0 -> 0 */
        ASSERT_NEAR(s->per_class[0].f1, 2.0 / 3);
        ASSERT_NEAR(s->per_class[1].f1, 0.5);
        ASSERT_NEAR(s->per_class[2].f1, 0.0);
        ASSERT_NEAR(s->per_class[3].f1, 0.0);
        assert_int_equal(s->per_class[2].support, 0);
        assert_null(s->per_class[0].label);
        ASSERT_NEAR(s->macro_precision, 0.375);
        ASSERT_NEAR(s->macro_recall, 0.25);
        ASSERT_NEAR(s->macro_f1, 0.29166666666666663);
        /* no probabilities were given */
        assert_int_equal(s->log_loss_count, 0);
        ASSERT_NEAR(s->log_loss, 0);
        sl_eval_destroy(ev);
}

static void test_empty_report(void **state)
{
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 2, NULL);
        const sl_eval_report_t *r;
        (void)state;

        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.count, 0);
        assert_int_equal(r->total.count, 0);
        ASSERT_NEAR(r->total.accuracy, 0);
        ASSERT_NEAR(r->total.macro_f1, 0);
        assert_int_equal(r->total.confusion[0] + r->total.confusion[3], 0);
        sl_eval_destroy(ev);
}

static void test_window_reset(void **state)
{
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 3, NULL);
        const sl_eval_report_t *r;
        const int64_t *cm;
        (void)state;

        add3(ev, 1);
        r = sl_eval_snapshot(ev, 1);
        check3(&r->window);
        check3(&r->total);
        cm = r->window.confusion;
        /* The finished window's report does not move under later updates. */
        assert_int_equal(sl_eval_add_class(ev, 1, 0, NULL), SL_OK);
        assert_int_equal(cm[1], 1);
        check3(&r->window);

        assert_int_equal(sl_eval_add_class(ev, 2, 2, probs3[4]), SL_OK);
        /* Without reset: the window holds the 2 new examples, and stays. */
        r = sl_eval_snapshot(ev, 0);
        assert_int_equal(r->window.count, 2);
        assert_int_equal(r->window.correct, 1);
        assert_int_equal(r->window.confusion[0 * 3 + 1], 1);
        assert_int_equal(r->window.confusion[2 * 3 + 2], 1);
        assert_int_equal(r->window.log_loss_count, 1);
        ASSERT_NEAR(r->window.log_loss, -log((double)0.8f));
        assert_int_equal(r->total.count, 10);
        assert_int_equal(r->total.correct, 7);
        assert_int_equal(r->total.confusion[0 * 3 + 1], 2);
        assert_int_equal(r->total.log_loss_count, 9);
        /* a report without reset is a copy too */
        cm = r->window.confusion;
        assert_int_equal(sl_eval_add_class(ev, 0, 0, NULL), SL_OK);
        assert_int_equal(cm[0], 0);

        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.count, 3);
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.count, 0);
        assert_int_equal(r->window.confusion[0], 0);
        assert_int_equal(r->total.count, 11);
        assert_int_equal(r->total.confusion[0], 3);

        assert_int_equal(sl_eval_add_class(ev, 0, 0, NULL), SL_OK);
        sl_eval_reset_window(ev);
        r = sl_eval_snapshot(ev, 0);
        assert_int_equal(r->window.count, 0);
        assert_int_equal(r->total.count, 12);
        sl_eval_destroy(ev);
}

static void test_invalid_labels(void **state)
{
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 3, NULL);
        const sl_eval_report_t *r;
        (void)state;

        assert_int_equal(sl_eval_add_class(ev, 0, -1, NULL), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_class(ev, 0, 3, probs3[0]), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_class(ev, 3, 0, NULL), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_class(ev, -7, 1, NULL), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_class(ev, 0, INT64_MAX, NULL), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_value(ev, 1.0, 1.0), SL_ERR_INVALID_ARG);
        add3(ev, 1);
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.invalid, 5);
        assert_int_equal(r->total.invalid, 5);
        check3(&r->window); /* the invalid ones changed nothing else */
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.invalid, 0);
        assert_int_equal(r->total.invalid, 5);
        sl_eval_destroy(ev);

        /* bad arguments at creation */
        assert_null(sl_eval_new(SL_EVAL_CLASSIFICATION, 0, NULL));
        assert_null(sl_eval_new(SL_EVAL_CLASSIFICATION, -2, NULL));
        assert_null(sl_eval_new(SL_EVAL_CLASSIFICATION, SL_EVAL_CLASSES_MAX + 1, NULL));
        assert_null(sl_eval_new((sl_eval_kind_t)7, 3, NULL));
        sl_eval_destroy(NULL);
}

static void test_log_loss_clipping(void **state)
{
        /* -ln(1e-15) = 34.538776394910684: the most one example can add. */
        static const float zero_one[2] = {1.0f, 0.0f};
        static const float one_zero[2] = {0.0f, 1.0f};
        static const float over[2] = {0.0f, 1.5f};
        float nan2[2] = {0.5f, NAN};
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 2, NULL);
        const sl_eval_stats_t *s;
        (void)state;

        /* true 1, p[1] = 0: clipped to 1e-15 (log_loss(eps=1e-15) of scikit-learn
         * before 1.5: log_loss([1], [[1, 0]], eps=1e-15, labels=[0, 1]) = 34.538776394910684) */
        assert_int_equal(sl_eval_add_class(ev, 0, 1, zero_one), SL_OK);
        s = &sl_eval_snapshot(ev, 0)->total;
        ASSERT_NEAR(s->log_loss, 34.538776394910684);
        assert_true(isfinite(s->log_loss));
        /* true 1, p[1] = 1: adds 0; mean of the two is 17.269388197455342 */
        assert_int_equal(sl_eval_add_class(ev, 1, 1, one_zero), SL_OK);
        s = &sl_eval_snapshot(ev, 0)->total;
        ASSERT_NEAR(s->log_loss, 17.269388197455342);
        /* p > 1 is clipped to 1 (no negative loss); NaN counts as 1e-15 */
        assert_int_equal(sl_eval_add_class(ev, 1, 1, over), SL_OK);
        assert_int_equal(sl_eval_add_class(ev, 0, 1, nan2), SL_OK);
        /* an example without probabilities does not enter the mean */
        assert_int_equal(sl_eval_add_class(ev, 0, 0, NULL), SL_OK);
        s = &sl_eval_snapshot(ev, 0)->total;
        assert_int_equal(s->count, 5);
        assert_int_equal(s->log_loss_count, 4);
        ASSERT_NEAR(s->log_loss, 2 * 34.538776394910684 / 4);
        sl_eval_destroy(ev);
}

static void test_regression(void **state)
{
        /* mean_absolute_error([3, -0.5, 2, 7], [2.5, 0, 2, 8]) = 0.5,
         * root_mean_squared_error(...) = sqrt(1.5 / 4) = 0.6123724356957945 */
        static const double yt[4] = {3.0, -0.5, 2.0, 7.0}, yp[4] = {2.5, 0.0, 2.0, 8.0};
        sl_eval_t *ev = sl_eval_new(SL_EVAL_REGRESSION, 99, NULL);
        const sl_eval_report_t *r;
        (void)state;

        assert_non_null(ev);
        assert_int_equal(sl_eval_kind(ev), SL_EVAL_REGRESSION);
        assert_int_equal(sl_eval_n_classes(ev), 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(sl_eval_add_value(ev, yp[i], yt[i]), SL_OK);
        assert_int_equal(sl_eval_add_value(ev, NAN, 1.0), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_value(ev, 1.0, INFINITY), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_add_value(ev, 1e308, -1e308), SL_ERR_BAD_REQUEST); /* overflows */
        assert_int_equal(sl_eval_add_class(ev, 0, 0, NULL), SL_ERR_INVALID_ARG);
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->kind, SL_EVAL_REGRESSION);
        assert_int_equal(r->window.count, 4);
        assert_int_equal(r->window.invalid, 3);
        ASSERT_NEAR(r->window.mae, 0.5);
        ASSERT_NEAR(r->window.rmse, 0.6123724356957945);
        ASSERT_NEAR(r->total.rmse, 0.6123724356957945);
        assert_null(r->total.per_class);
        assert_null(r->total.confusion);
        assert_int_equal(r->total.n_classes, 0);

        /* next window: one example off by 2 -> MAE 2, RMSE 2; total over 5:
         * MAE (2 + 2) / 5 = 0.8, RMSE sqrt((1.5 + 4) / 5) */
        assert_int_equal(sl_eval_add_value(ev, 1.0, 3.0), SL_OK);
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.count, 1);
        ASSERT_NEAR(r->window.mae, 2.0);
        ASSERT_NEAR(r->window.rmse, 2.0);
        ASSERT_NEAR(r->total.mae, 0.8);
        ASSERT_NEAR(r->total.rmse, sqrt(5.5 / 5));
        r = sl_eval_snapshot(ev, 1);
        assert_int_equal(r->window.count, 0);
        ASSERT_NEAR(r->window.mae, 0);
        sl_eval_destroy(ev);
}

/* Above SL_EVAL_CONFUSION_CLASSES_MAX the matrix is not kept; the rest is. */
static void test_many_classes(void **state)
{
        int32_t c = SL_EVAL_CONFUSION_CLASSES_MAX + 1;
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, c, NULL);
        const sl_eval_stats_t *s;
        (void)state;

        assert_int_equal(sl_eval_add_class(ev, c - 1, c - 1, NULL), SL_OK);
        assert_int_equal(sl_eval_add_class(ev, 0, c - 1, NULL), SL_OK);
        s = &sl_eval_snapshot(ev, 1)->window;
        assert_null(s->confusion);
        assert_int_equal(s->n_classes, c);
        ASSERT_NEAR(s->per_class[c - 1].recall, 0.5);
        ASSERT_NEAR(s->per_class[c - 1].precision, 1.0);
        ASSERT_NEAR(s->per_class[0].precision, 0.0);
        /* class c-1: f1 2/3, every other class 0 */
        ASSERT_NEAR(s->macro_f1, (2.0 / 3) / c);
        sl_eval_destroy(ev);
}

/*
 * Join store.
 */

static sl_eval_pred_t pred(void *model, int64_t cls, const float *probs, int32_t n, int64_t t)
{
        sl_eval_pred_t p = {
            .model = model, .predicted = cls, .probs = probs, .n_probs = n, .time_ms = t};
        return p;
}

static void test_join_put_take(void **state)
{
        sl_eval_join_t *j = sl_eval_join_new(8);
        sl_eval_join_stats_t st;
        sl_eval_pred_t p, out;
        sl_eval_label_t l = {.label = 2, .time_ms = 5}, lout;
        float probs[3] = {0.1f, 0.2f, 0.7f};
        int model;
        (void)state;

        assert_non_null(j);
        p = pred(&model, 2, probs, 3, 10);
        p.value = 1.25;
        assert_int_equal(sl_eval_join_put_prediction(j, "req-1", &p), SL_OK);
        probs[2] = 0; /* the store holds a copy */
        assert_int_equal(sl_eval_join_take_label(j, "req-1", &lout), 0);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-2", &out), 0);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-", &out), 0);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-1", &out), 1);
        assert_ptr_equal(out.model, &model);
        assert_int_equal(out.predicted, 2);
        ASSERT_NEAR(out.value, 1.25);
        assert_int_equal(out.n_probs, 3);
        assert_true(out.probs[2] == 0.7f);
        assert_int_equal(out.time_ms, 10);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-1", &out), 0);

        /* no probabilities */
        p = pred(&model, 1, NULL, 0, 11);
        assert_int_equal(sl_eval_join_put_prediction(j, "req-3", &p), SL_OK);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-3", &out), 1);
        assert_null(out.probs);
        assert_int_equal(out.n_probs, 0);

        /* a label, and a label is not a prediction */
        assert_int_equal(sl_eval_join_put_label(j, "req-4", &l), SL_OK);
        assert_int_equal(sl_eval_join_take_prediction(j, "req-4", &out), 0);
        assert_int_equal(sl_eval_join_take_label(j, "req-4", &lout), 1);
        assert_int_equal(lout.label, 2);
        assert_int_equal(lout.time_ms, 5);

        /* refused ids and probability counts */
        assert_int_equal(sl_eval_join_put_prediction(j, "", &p), SL_ERR_BAD_REQUEST);
        assert_int_equal(sl_eval_join_put_label(j, NULL, &l), SL_ERR_BAD_REQUEST);
        {
                char big[SL_EVAL_JOIN_ID_MAX + 2];
                memset(big, 'x', sizeof(big) - 1);
                big[sizeof(big) - 1] = '\0';
                assert_int_equal(sl_eval_join_put_label(j, big, &l), SL_ERR_BAD_REQUEST);
                assert_int_equal(sl_eval_join_take_label(j, big, &lout), 0);
                big[SL_EVAL_JOIN_ID_MAX] = '\0'; /* exactly the maximum is fine */
                assert_int_equal(sl_eval_join_put_label(j, big, &l), SL_OK);
                assert_int_equal(sl_eval_join_take_label(j, big, &lout), 1);
        }
        p = pred(&model, 1, probs, -1, 12);
        assert_int_equal(sl_eval_join_put_prediction(j, "req-5", &p), SL_ERR_BAD_REQUEST);

        sl_eval_join_stats(j, &st);
        assert_int_equal(st.predictions, 0);
        assert_int_equal(st.labels, 0);
        assert_int_equal(st.joined, 4);
        assert_int_equal(st.refused, 4);
        assert_int_equal(st.expired + st.evicted + st.replaced + st.dropped, 0);
        assert_true(st.bytes > 8 * sizeof(sl_eval_pred_t));

        assert_null(sl_eval_join_new(0));
        sl_eval_join_destroy(j);
        sl_eval_join_destroy(NULL);
}

/* Same model twice = redelivery (replace); other models = canary/shadow (kept). */
static void test_join_keys(void **state)
{
        sl_eval_join_t *j = sl_eval_join_new(8);
        sl_eval_join_stats_t st;
        sl_eval_pred_t p, out;
        sl_eval_label_t l = {.label = 1, .time_ms = 1}, lout;
        int a, b;
        int seen_a = 0, seen_b = 0;
        (void)state;

        p = pred(&a, 1, NULL, 0, 1);
        assert_int_equal(sl_eval_join_put_prediction(j, "id", &p), SL_OK);
        p = pred(&a, 2, NULL, 0, 2);
        assert_int_equal(sl_eval_join_put_prediction(j, "id", &p), SL_OK);
        p = pred(&b, 0, NULL, 0, 3);
        assert_int_equal(sl_eval_join_put_prediction(j, "id", &p), SL_OK);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.predictions, 2);
        assert_int_equal(st.replaced, 1);
        while (sl_eval_join_take_prediction(j, "id", &out)) {
                if (out.model == &a) {
                        assert_int_equal(out.predicted, 2); /* the newer one */
                        seen_a++;
                } else {
                        assert_ptr_equal(out.model, &b);
                        seen_b++;
                }
        }
        assert_int_equal(seen_a, 1);
        assert_int_equal(seen_b, 1);

        assert_int_equal(sl_eval_join_put_label(j, "id", &l), SL_OK);
        l.label = 0;
        assert_int_equal(sl_eval_join_put_label(j, "id", &l), SL_OK);
        assert_int_equal(sl_eval_join_take_label(j, "id", &lout), 1);
        assert_int_equal(lout.label, 0);
        assert_int_equal(sl_eval_join_take_label(j, "id", &lout), 0);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.replaced, 2);
        assert_int_equal(st.labels, 0);
        sl_eval_join_destroy(j);
}

static void test_join_expire_evict_drop(void **state)
{
        sl_eval_join_t *j = sl_eval_join_new(4);
        sl_eval_join_stats_t st;
        sl_eval_pred_t p, out;
        sl_eval_label_t l = {.label = 0}, lout;
        char id[16];
        int a, b;
        (void)state;

        /* ids 0..3 at t = 100, 200, 300, 400 */
        for (int i = 0; i < 4; i++) {
                snprintf(id, sizeof(id), "r%d", i);
                p = pred(i % 2 ? &b : &a, i, NULL, 0, 100 * (i + 1));
                assert_int_equal(sl_eval_join_put_prediction(j, id, &p), SL_OK);
        }
        /* full: r4 evicts the oldest, r0 */
        p = pred(&a, 4, NULL, 0, 500);
        assert_int_equal(sl_eval_join_put_prediction(j, "r4", &p), SL_OK);
        assert_int_equal(sl_eval_join_take_prediction(j, "r0", &out), 0);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.evicted, 1);
        assert_int_equal(st.predictions, 4);
        /* replacing r1 makes it the newest: the next eviction takes r2 */
        p = pred(&b, 1, NULL, 0, 550);
        assert_int_equal(sl_eval_join_put_prediction(j, "r1", &p), SL_OK);
        l.time_ms = 600;
        assert_int_equal(sl_eval_join_put_label(j, "L", &l), SL_OK);
        assert_int_equal(sl_eval_join_take_prediction(j, "r2", &out), 0);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.evicted, 2);
        /* left: r3@400, r4@500, r1@550, L@600. Age limit 100 at now 600 drops
         * r3 and r4 (older than 500 is r3 only: 500 stays at exactly 100 old) */
        assert_int_equal(sl_eval_join_expire(j, 600, 100), 1);
        assert_int_equal(sl_eval_join_take_prediction(j, "r3", &out), 0);
        assert_int_equal(sl_eval_join_expire(j, 601, 100), 1);
        assert_int_equal(sl_eval_join_take_prediction(j, "r4", &out), 0);
        /* dropping model b removes r1 and never labels */
        assert_int_equal(sl_eval_join_drop_model(j, &b), 1);
        assert_int_equal(sl_eval_join_take_prediction(j, "r1", &out), 0);
        assert_int_equal(sl_eval_join_drop_model(j, &a), 0);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.expired, 2);
        assert_int_equal(st.dropped, 1);
        assert_int_equal(st.predictions, 0);
        assert_int_equal(st.labels, 1);
        /* a huge age never overflows */
        assert_int_equal(sl_eval_join_expire(j, INT64_MIN + 5, INT64_MAX), 0);
        assert_int_equal(sl_eval_join_expire(j, 10000, 0), 1);
        assert_int_equal(sl_eval_join_take_label(j, "L", &lout), 0);
        sl_eval_join_destroy(j);
}

/* Random puts, takes, expiries and evictions against a plain reference list;
 * a small table with many collisions exercises backward-shift deletion. */
#define REF_MAX 32
typedef struct ref_s {
        char id[16];
        int kind; /* 1 prediction, 2 label */
        uintptr_t model;
        int64_t cls, t;
} ref_t;

static void test_join_random_against_reference(void **state)
{
        sl_eval_join_t *j = sl_eval_join_new(REF_MAX);
        ref_t ref[REF_MAX + 1];
        size_t n = 0;
        uint64_t rng = 42;
        int64_t now = 0;
        sl_eval_join_stats_t st;
        size_t bytes_warm = 0;
        (void)state;

        for (int step = 0; step < 200000; step++) {
                char id[16];
                unsigned r;
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                r = (unsigned)(rng >> 33);
                snprintf(id, sizeof(id), "id%u", (r >> 4) % 48);
                now += r % 3;
                switch (r % 7) {
                case 0:
                case 1:
                case 2: { /* put prediction */
                        uintptr_t model = 1 + (r >> 10) % 2;
                        float probs[2] = {(float)step, 1};
                        sl_eval_pred_t p = pred((void *)model, step, probs, 2, now);
                        size_t k;
                        assert_int_equal(sl_eval_join_put_prediction(j, id, &p), SL_OK);
                        for (k = 0; k < n; k++)
                                if (ref[k].kind == 1 && ref[k].model == model &&
                                    !strcmp(ref[k].id, id))
                                        break;
                        if (k < n) { /* replaced: moves to the end */
                                memmove(&ref[k], &ref[k + 1], (n - k - 1) * sizeof(*ref));
                                n--;
                        } else if (n == REF_MAX) { /* evict the oldest */
                                memmove(&ref[0], &ref[1], (n - 1) * sizeof(*ref));
                                n--;
                        }
                        snprintf(ref[n].id, sizeof(ref[n].id), "%s", id);
                        ref[n].kind = 1;
                        ref[n].model = model;
                        ref[n].cls = step;
                        ref[n].t = now;
                        n++;
                        break;
                }
                case 3: { /* put label */
                        sl_eval_label_t l = {.label = step, .time_ms = now};
                        size_t k;
                        assert_int_equal(sl_eval_join_put_label(j, id, &l), SL_OK);
                        for (k = 0; k < n; k++)
                                if (ref[k].kind == 2 && !strcmp(ref[k].id, id))
                                        break;
                        if (k < n) {
                                memmove(&ref[k], &ref[k + 1], (n - k - 1) * sizeof(*ref));
                                n--;
                        } else if (n == REF_MAX) {
                                memmove(&ref[0], &ref[1], (n - 1) * sizeof(*ref));
                                n--;
                        }
                        snprintf(ref[n].id, sizeof(ref[n].id), "%s", id);
                        ref[n].kind = 2;
                        ref[n].model = 0;
                        ref[n].cls = step;
                        ref[n].t = now;
                        n++;
                        break;
                }
                case 4: { /* take prediction: any of the id's */
                        sl_eval_pred_t out;
                        size_t k;
                        int got = sl_eval_join_take_prediction(j, id, &out);
                        for (k = 0; k < n; k++)
                                if (ref[k].kind == 1 && !strcmp(ref[k].id, id) &&
                                    (!got || ref[k].model == (uintptr_t)out.model))
                                        break;
                        assert_int_equal(got, k < n);
                        if (got) {
                                assert_int_equal(out.predicted, ref[k].cls);
                                assert_int_equal(out.time_ms, ref[k].t);
                                assert_true(out.probs[0] == (float)ref[k].cls);
                                memmove(&ref[k], &ref[k + 1], (n - k - 1) * sizeof(*ref));
                                n--;
                        }
                        break;
                }
                case 5: { /* take label */
                        sl_eval_label_t out;
                        size_t k;
                        int got = sl_eval_join_take_label(j, id, &out);
                        for (k = 0; k < n; k++)
                                if (ref[k].kind == 2 && !strcmp(ref[k].id, id))
                                        break;
                        assert_int_equal(got, k < n);
                        if (got) {
                                assert_int_equal(out.label, ref[k].cls);
                                memmove(&ref[k], &ref[k + 1], (n - k - 1) * sizeof(*ref));
                                n--;
                        }
                        break;
                }
                default: { /* expire older than 40 ms */
                        size_t k = 0, removed;
                        while (k < n && ref[k].t < now - 40)
                                k++;
                        removed = sl_eval_join_expire(j, now, 40);
                        assert_int_equal(removed, k);
                        memmove(&ref[0], &ref[k], (n - k) * sizeof(*ref));
                        n -= k;
                        break;
                }
                }
                sl_eval_join_stats(j, &st);
                assert_int_equal(st.predictions + st.labels, n);
                if (step == 1000)
                        bytes_warm = st.bytes;
        }
        /* buffers are reused: no growth once every entry has held an id */
        assert_int_equal(st.bytes, bytes_warm);
        assert_true(st.evicted > 0 && st.expired > 0 && st.joined > 0 && st.replaced > 0);
        sl_eval_join_destroy(j);
}

/*
 * The join in both orders, as the worker does it:
 *  - prediction: if a label waits, evaluate now; else store the prediction;
 *  - label: evaluate every prediction waiting for it; if none, store the label.
 * Whatever the order, the evaluator ends where inline labels would take it.
 */
static void on_prediction(sl_eval_join_t *j, sl_eval_t *ev, const char *id, int64_t cls,
                          const float *probs, int64_t now)
{
        sl_eval_label_t l;
        if (sl_eval_join_take_label(j, id, &l)) {
                assert_int_equal(sl_eval_add_class(ev, cls, l.label, probs), SL_OK);
        } else {
                sl_eval_pred_t p = pred(ev, cls, probs, probs ? sl_eval_n_classes(ev) : 0, now);
                assert_int_equal(sl_eval_join_put_prediction(j, id, &p), SL_OK);
        }
}

static void on_label(sl_eval_join_t *j, const char *id, int64_t label, int64_t now)
{
        sl_eval_pred_t p;
        int n = 0;
        while (sl_eval_join_take_prediction(j, id, &p)) {
                assert_int_equal(sl_eval_add_class(p.model, p.predicted, label, p.probs), SL_OK);
                n++;
        }
        if (!n) {
                sl_eval_label_t l = {.label = label, .time_ms = now};
                assert_int_equal(sl_eval_join_put_label(j, id, &l), SL_OK);
        }
}

static void test_join_both_orders(void **state)
{
        sl_eval_join_t *j = sl_eval_join_new(64);
        sl_eval_t *ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 3, NULL);
        sl_eval_join_stats_t st;
        char id[16];
        (void)state;

        /* even examples: label after the prediction; odd: label first */
        for (int i = 0; i < 8; i++) {
                snprintf(id, sizeof(id), "req-%d", i);
                if (i % 2 == 0) {
                        on_prediction(j, ev, id, yp3[i], probs3[i], i);
                        on_label(j, id, yt3[i], i + 1);
                } else {
                        on_label(j, id, yt3[i], i);
                        on_prediction(j, ev, id, yp3[i], probs3[i], i + 1);
                }
        }
        check3(&sl_eval_snapshot(ev, 1)->total);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.joined, 8);
        assert_int_equal(st.predictions + st.labels, 0);

        /* interleaved: all predictions first, then the labels in reverse */
        sl_eval_destroy(ev);
        ev = sl_eval_new(SL_EVAL_CLASSIFICATION, 3, NULL);
        for (int i = 0; i < 8; i++) {
                snprintf(id, sizeof(id), "b-%d", i);
                on_prediction(j, ev, id, yp3[i], probs3[i], 100);
        }
        for (int i = 7; i >= 0; i--) {
                snprintf(id, sizeof(id), "b-%d", i);
                on_label(j, id, yt3[i], 200);
        }
        check3(&sl_eval_snapshot(ev, 1)->total);
        /* a label nobody predicts expires */
        on_label(j, "orphan", 1, 300);
        assert_int_equal(sl_eval_join_expire(j, 400, 60000), 0);
        assert_int_equal(sl_eval_join_expire(j, 60301, 60000), 1);
        sl_eval_join_stats(j, &st);
        assert_int_equal(st.joined, 16);
        assert_int_equal(st.expired, 1);
        sl_eval_destroy(ev);
        sl_eval_join_destroy(j);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_classification_matches_sklearn),
            cmocka_unit_test(test_macro_over_all_classes),
            cmocka_unit_test(test_empty_report),
            cmocka_unit_test(test_window_reset),
            cmocka_unit_test(test_invalid_labels),
            cmocka_unit_test(test_log_loss_clipping),
            cmocka_unit_test(test_regression),
            cmocka_unit_test(test_many_classes),
            cmocka_unit_test(test_join_put_take),
            cmocka_unit_test(test_join_keys),
            cmocka_unit_test(test_join_expire_evict_drop),
            cmocka_unit_test(test_join_random_against_reference),
            cmocka_unit_test(test_join_both_orders),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
