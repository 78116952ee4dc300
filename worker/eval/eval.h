/**
 * @file eval.h
 * @brief Online evaluation: how well a model version predicts, from the labels
 *        that reach the worker (on the request, or later on a labels topic).
 *
 * Two parts:
 *  - An evaluator (sl_eval_t) per model version accumulates classification
 *    counts (a C x C confusion matrix, log loss) or regression errors (MAE,
 *    RMSE) twice: since creation ("total") and since the last snapshot
 *    ("window", one WorkerMetrics interval). sl_eval_snapshot() turns both
 *    into plain numbers (sl_eval_report_t) that codec.h carries as they are.
 *  - A join store (sl_eval_join_t) keeps predictions waiting for their label
 *    and labels waiting for their prediction, keyed by request id, bounded in
 *    age and in entries, so that a label can arrive before or after its
 *    prediction.
 *
 * The join in both orders (what test_eval's test_join_both_orders does):
 *  - a prediction without an inline label: if sl_eval_join_take_label()
 *    finds its label, evaluate now; otherwise sl_eval_join_put_prediction();
 *  - a label from the labels topic: evaluate every prediction that
 *    sl_eval_join_take_prediction() returns for its id (one per model version:
 *    primary, canary, shadow); if there was none, sl_eval_join_put_label();
 *  - every so often, sl_eval_join_expire(); on unloading a model version,
 *    sl_eval_join_drop_model().
 * A label that arrives first is taken by the first prediction for its id, so
 * a shadow prediction made later for the same id finds no label.
 *
 * Metric definitions follow scikit-learn (sklearn.metrics, 1.x) so that
 * numbers computed offline from the same responses agree:
 *  - accuracy = correct / count (accuracy_score);
 *  - per class k: precision = TP / predicted_k, recall = TP / support_k,
 *    F1 = 2 TP / (2 TP + FP + FN), each 0 when its denominator is 0
 *    (precision_recall_fscore_support, zero_division=0);
 *  - macro P/R/F1 = unweighted mean of the per-class values over all C
 *    classes (labels=range(C), average='macro'); classes absent from both
 *    truth and predictions therefore count as 0;
 *  - log loss = mean of -ln(clip(p[true], 1e-15, 1)) over the updates that
 *    carried probabilities (log_loss with eps=1e-15; rows are not
 *    renormalised);
 *  - MAE = mean |y - y_hat|, RMSE = sqrt(mean (y - y_hat)^2)
 *    (mean_absolute_error, root of mean_squared_error).
 *
 * Depends on util only (no Kafka, no Avro).
 */
#ifndef SL_EVAL_H
#define SL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

/** @brief What an evaluator measures. */
typedef enum {
        SL_EVAL_CLASSIFICATION = 0, /**< class index in 0..C-1 */
        SL_EVAL_REGRESSION = 1      /**< one real value */
} sl_eval_kind_t;

/** @brief Largest C for which the confusion matrix is kept (C x C int64 twice). */
#define SL_EVAL_CONFUSION_CLASSES_MAX 256

/** @brief Largest C accepted by sl_eval_new() and stored by the join. */
#define SL_EVAL_CLASSES_MAX 100000

/** @brief Log loss clipping (scikit-learn's historical eps). */
#define SL_EVAL_LOG_LOSS_EPS 1e-15

/** @brief One class in a report. */
typedef struct sl_eval_class_s {
        int32_t index;
        const char *label; /**< class name from the model's labels, NULL when unnamed */
        double precision, recall, f1;
        int64_t support; /**< updates whose true label is this class */
} sl_eval_class_t;

/** @brief Evaluation numbers over one span (window or total). */
typedef struct sl_eval_stats_s {
        int64_t count;   /**< valid updates */
        int64_t invalid; /**< updates refused: label or prediction out of range, non-finite */
        /* classification */
        int64_t correct;
        double accuracy; /**< correct / count, 0 when count is 0 */
        double macro_precision, macro_recall, macro_f1;
        int64_t log_loss_count; /**< updates that carried probabilities */
        double log_loss;        /**< mean; valid when log_loss_count > 0 */
        int32_t n_classes;
        const sl_eval_class_t *per_class; /**< n_classes entries, NULL for regression */
        /** n_classes x n_classes row-major, row = true class, column = predicted;
         *  NULL for regression and when n_classes > SL_EVAL_CONFUSION_CLASSES_MAX */
        const int64_t *confusion;
        /* regression (valid when kind is SL_EVAL_REGRESSION and count > 0) */
        double mae, rmse;
} sl_eval_stats_t;

/** @brief Window and total of one evaluator, as sl_eval_snapshot() returns them. */
typedef struct sl_eval_report_s {
        sl_eval_kind_t kind;
        sl_eval_stats_t window; /**< since the previous snapshot that reset the window */
        sl_eval_stats_t total;  /**< since the evaluator was created */
} sl_eval_report_t;

typedef struct sl_eval_s sl_eval_t;

/**
 * @brief Create an evaluator.
 *
 * \p n_classes is C for SL_EVAL_CLASSIFICATION (1..SL_EVAL_CLASSES_MAX) and
 * ignored for SL_EVAL_REGRESSION. \p labels, when not NULL, holds C class
 * names that reports point to.
 * @returns the evaluator, or NULL on a bad argument or out of memory.
 * @remark \p labels is borrowed and must outlive the evaluator (the model's labels).
 */
sl_eval_t *sl_eval_new(sl_eval_kind_t kind, int32_t n_classes, const char *const *labels);

/** @brief Free an evaluator (NULL accepted). */
void sl_eval_destroy(sl_eval_t *ev);

/** @brief Kind of \p ev. */
sl_eval_kind_t sl_eval_kind(const sl_eval_t *ev);

/** @brief C of a classification evaluator (0 for regression). */
int32_t sl_eval_n_classes(const sl_eval_t *ev);

/**
 * @brief Count one classified example in the window and the total.
 *
 * \p probs, when not NULL, holds the C class probabilities the model gave
 * (softmax output); it adds -ln(clip(probs[label], 1e-15, 1)) to the log loss.
 * NaN probabilities count as 1e-15.
 * @returns SL_OK, or SL_ERR_BAD_REQUEST when \p label or \p predicted is
 *          outside 0..C-1 (counted as invalid, nothing else changes), or
 *          SL_ERR_INVALID_ARG on a regression evaluator.
 * @remark Thread: one caller at a time per evaluator. Allocates nothing.
 */
sl_err_t sl_eval_add_class(sl_eval_t *ev, int64_t predicted, int64_t label, const float *probs);

/**
 * @brief Count one regression example (\p prediction against \p truth).
 * @returns SL_OK, or SL_ERR_BAD_REQUEST when either value is NaN or infinite
 *          (counted as invalid), or SL_ERR_INVALID_ARG on a classification evaluator.
 * @remark Thread: one caller at a time per evaluator. Allocates nothing.
 */
sl_err_t sl_eval_add_value(sl_eval_t *ev, double prediction, double truth);

/**
 * @brief Compute the window and total numbers; with \p reset_window, start a new window.
 * @returns a report owned by \p ev, valid until the next sl_eval_snapshot() or
 *          sl_eval_destroy() on it. Never NULL for a valid \p ev.
 * @remark Thread: one caller at a time per evaluator. Allocates nothing
 *         (buffers are sized at creation).
 */
const sl_eval_report_t *sl_eval_snapshot(sl_eval_t *ev, int reset_window);

/** @brief Start a new window without a report. */
void sl_eval_reset_window(sl_eval_t *ev);

/*
 * Join of predictions and late (or early) labels.
 */

/** @brief A prediction waiting for its label. */
typedef struct sl_eval_pred_s {
        void *model;        /**< opaque handle of the model version (e.g. its evaluator) */
        int64_t predicted;  /**< class index (classification) */
        double value;       /**< predicted value (regression) */
        const float *probs; /**< n_probs class probabilities, or NULL */
        int32_t n_probs;
        int64_t time_ms; /**< when it was stored (monotonic ms) */
} sl_eval_pred_t;

/** @brief A label waiting for its prediction. */
typedef struct sl_eval_label_s {
        int64_t label;   /**< true class index (classification) */
        double value;    /**< true value (regression) */
        int64_t time_ms; /**< when it was stored (monotonic ms) */
} sl_eval_label_t;

/** @brief Counters of a join store (since creation, except the gauges). */
typedef struct sl_eval_join_stats_s {
        size_t predictions; /**< gauge: predictions waiting */
        size_t labels;      /**< gauge: labels waiting */
        size_t bytes;       /**< gauge: memory held (table, entries, ids, probabilities) */
        int64_t joined;     /**< label and prediction met (either order) */
        int64_t expired;    /**< removed by sl_eval_join_expire() */
        int64_t evicted;    /**< removed to make room (oldest first) */
        int64_t replaced;   /**< same key stored again (redelivery): the newer one kept */
        int64_t dropped;    /**< removed by sl_eval_join_drop_model() */
        int64_t refused;    /**< inserts refused (id too long, too many probabilities) */
} sl_eval_join_stats_t;

typedef struct sl_eval_join_s sl_eval_join_t;

/** @brief Largest request id the join stores, bytes. */
#define SL_EVAL_JOIN_ID_MAX 1024

/**
 * @brief Create a join store holding at most \p max_entries predictions and
 *        labels together (1..2^24).
 *
 * When full, an insert evicts the oldest entry (insertion order). Memory is
 * bounded by max_entries x (id + probabilities) and reused: in steady state
 * neither insert nor take allocates.
 * @returns the store, or NULL on a bad argument or out of memory.
 */
sl_eval_join_t *sl_eval_join_new(size_t max_entries);

/** @brief Free a join store (NULL accepted). */
void sl_eval_join_destroy(sl_eval_join_t *j);

/**
 * @brief Store a prediction for request \p id.
 *
 * Key is (id, pred->model): a second prediction of the same model for the
 * same id (a redelivered request) replaces the first; predictions of other
 * models for the same id (canary, shadow) are kept side by side.
 * pred->probs is copied; pred->time_ms is the insert time.
 * @returns SL_OK, SL_ERR_BAD_REQUEST when id is empty or longer than
 *          SL_EVAL_JOIN_ID_MAX or n_probs > SL_EVAL_CLASSES_MAX (counted
 *          as refused), or SL_ERR_NOMEM.
 * @remark Thread: one caller at a time per store.
 */
sl_err_t sl_eval_join_put_prediction(sl_eval_join_t *j, const char *id, const sl_eval_pred_t *pred);

/**
 * @brief Store a label for request \p id that has no prediction yet.
 *
 * Key is id: a second label for the same id replaces the first.
 * @returns as sl_eval_join_put_prediction().
 */
sl_err_t sl_eval_join_put_label(sl_eval_join_t *j, const char *id, const sl_eval_label_t *label);

/**
 * @brief Remove and return one prediction stored for \p id (any model; call
 *        again for the others).
 * @returns 1 and fills \p out, or 0 when none waits.
 * @remark out->probs points into the store and stays valid until the next
 *         call that modifies \p j.
 */
int sl_eval_join_take_prediction(sl_eval_join_t *j, const char *id, sl_eval_pred_t *out);

/** @brief Remove and return the label stored for \p id. @returns 1 and fills \p out, or 0. */
int sl_eval_join_take_label(sl_eval_join_t *j, const char *id, sl_eval_label_t *out);

/**
 * @brief Remove every entry stored before now_ms - max_age_ms (inclusive
 *        bound: an entry exactly max_age_ms old stays).
 *
 * Entries leave in insertion order, so store times should not go backwards
 * (use a monotonic clock).
 * @returns the number removed (also added to stats.expired).
 */
size_t sl_eval_join_expire(sl_eval_join_t *j, int64_t now_ms, int64_t max_age_ms);

/**
 * @brief Remove every prediction whose model is \p model (a version being
 *        unloaded, so that no stale handle is ever returned).
 * @returns the number removed (also added to stats.dropped).
 */
size_t sl_eval_join_drop_model(sl_eval_join_t *j, const void *model);

/** @brief Counters and gauges of \p j. */
void sl_eval_join_stats(const sl_eval_join_t *j, sl_eval_join_stats_t *out);

#endif /* SL_EVAL_H */
