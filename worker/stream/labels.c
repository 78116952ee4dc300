/*
 * Online evaluation (issue: "measure how well they predict"): a request that
 * carries its label is scored at once; otherwise its prediction waits in a
 * bounded join (worker.label_join_max, worker.label_join_max_age_ms) for an
 * InferenceLabel on a labels topic, or the label waits for the prediction.
 * Scores go to each model version's evaluator (eval.h), reported per window
 * and since start in WorkerMetrics.
 * @locality worker thread.
 */
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

static void score(model_stats_t *st, int64_t predicted, int64_t label, const float *probs,
                  int32_t n_probs)
{
        int hit = predicted == label;
        if (sl_eval_kind(st->eval) == SL_EVAL_REGRESSION)
                return;
        if (sl_eval_add_class(st->eval, predicted, label, n_probs == st->n_classes ? probs : NULL))
                return; /* a label out of range: counted as invalid by the evaluator */
        sl_obs_model_metrics_label(&st->obs, hit);
}

/*
 * A regression output ([N, 1]): the truth is the request's label, or the
 * InferenceLabel's value (else its label) when it arrives later.
 */
static void eval_value(sl_worker_t *w, model_stats_t *st, const sl_request_t *req, double v)
{
        sl_eval_label_t l;
        if (req->has_label) {
                sl_eval_add_value(st->eval, v, (double)req->label);
                return;
        }
        if (!w->join)
                return;
        if (sl_eval_join_take_label(w->join, req->id, &l)) {
                sl_eval_add_value(st->eval, v, l.value);
                return;
        }
        sl_eval_pred_t pred = {.model = st, .value = v, .time_ms = sl_now_us() / 1000};
        sl_eval_join_put_prediction(w->join, req->id, &pred);
}

void sl_stream_eval_prediction(sl_worker_t *w, model_stats_t *st, const sl_request_t *req,
                               int32_t predicted, const float *probs)
{
        sl_eval_label_t l;
        /* Logits are not probabilities: log loss only from a probabilities output. */
        const float *p =
            st->model && st->model->output_kind == SL_OUTPUT_PROBABILITIES ? probs : NULL;
        if (!st->eval)
                return;
        if (sl_eval_kind(st->eval) == SL_EVAL_REGRESSION) {
                eval_value(w, st, req, probs[0]); /* the one output value of the row */
                return;
        }
        if (req->has_label) {
                sl_eval_add_class(st->eval, predicted, req->label, p);
                return;
        }
        if (!w->join)
                return;
        if (sl_eval_join_take_label(w->join, req->id, &l)) {
                score(st, predicted, l.label, p, p ? st->n_classes : 0);
                return;
        }
        sl_eval_pred_t pred = {.model = st,
                               .predicted = predicted,
                               .probs = p,
                               .n_probs = p ? st->n_classes : 0,
                               .time_ms = sl_now_us() / 1000};
        sl_eval_join_put_prediction(w->join, req->id, &pred);
}

int sl_stream_is_label_topic(const sl_worker_t *w, const char *topic)
{
        for (size_t i = 0; i < w->conf->n_label_topics; i++)
                if (!strcmp(w->conf->label_topics[i], topic))
                        return 1;
        return 0;
}

/* An InferenceLabel: score every prediction waiting for it, or wait for them. */
void sl_stream_handle_label(sl_worker_t *w, rd_kafka_message_t *msg, inflight_t *inf)
{
        char errstr[512], *id = NULL;
        int has_label, has_value, joined = 0;
        int64_t label = 0;
        double value = 0;
        sl_eval_pred_t p;
        sl_err_t err;

        err = sl_codec_decode_label(w->codec, msg->payload, msg->len, &id, &has_label, &label,
                                    &has_value, &value, errstr, sizeof(errstr));
        if (err) {
                sl_stream_dead_letter(w, msg, inf, err, errstr, id);
                goto done;
        }
        if (!has_label && !has_value) {
                sl_stream_dead_letter(w, msg, inf, SL_ERR_BAD_REQUEST,
                                      "InferenceLabel with neither label nor value", id);
                goto done;
        }
        if (!has_value)
                value = (double)label;
        /* Canary and shadow predictions of one id are all scored. */
        while (sl_eval_join_take_prediction(w->join, id, &p)) {
                model_stats_t *st = p.model;
                if (sl_eval_kind(st->eval) == SL_EVAL_REGRESSION)
                        sl_eval_add_value(st->eval, p.value, value);
                else if (has_label)
                        score(st, p.predicted, label, p.probs, p.n_probs);
                joined = 1;
        }
        if (!joined) {
                sl_eval_label_t l = {.label = label, .value = value, .time_ms = sl_now_us() / 1000};
                sl_eval_join_put_label(w->join, id, &l);
        }
done:
        free(id);
        sl_stream_inflight_finish(w, inf);
        rd_kafka_message_destroy(msg);
}
