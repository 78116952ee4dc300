/*
 * Serving: decode a request, route it to its model version, add it to that
 * version's micro-batch, run full or due batches, and publish one response
 * per request (or an error response and a dead letter).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

#define TOPK_MAX 100

static int64_t row_elems(const sl_tensor_t *t)
{
        int64_t n = 1;
        for (int d = 1; d < t->ndim; d++)
                n *= t->dims[d];
        return n;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *dims)
{
        size_t off = 0;
        off += (size_t)snprintf(buf, size, "[");
        for (int d = 0; d < ndim && off < size; d++)
                off += dims[d] < 0 ? (size_t)snprintf(buf + off, size - off, "%sN", d ? "," : "")
                                   : (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "",
                                                      (long long)dims[d]);
        if (off < size)
                snprintf(buf + off, size - off, "]");
}

/*
 * Start serving a loaded model version: its batch (session, buffers) and its
 * counters. Counters outlive the version (messages in flight still point at
 * them), so they are kept until the worker goes.
 */
sl_err_t sl_stream_model_add(sl_worker_t *w, const sl_repo_model_t *m, char *errstr,
                             size_t errstr_size)
{
        const sl_value_info_t *in0 = sl_model_input(m->model, 0);
        size_t n_in = sl_model_input_count(m->model), n_out = sl_model_output_count(m->model);
        batch_t *b = calloc(1, sizeof(*b)), **bt;
        model_stats_t *st = calloc(1, sizeof(*st)), **stt;

        if (!b || !st || !(st->name = strdup(m->name)) || !(st->version = strdup(m->version)) ||
            sl_obs_metrics_model(w->obs, m->name, m->version, &st->obs) ||
            sl_session_new(m->model, &b->session) ||
            !(b->inputs = calloc(n_in + 1, sizeof(*b->inputs))) ||
            !(b->input_cap = calloc(n_in + 1, sizeof(*b->input_cap))) ||
            !(b->outputs = calloc(n_out + 1, sizeof(*b->outputs))) ||
            !(bt = realloc(w->batches, (w->n_batches + 1) * sizeof(*bt))) ||
            (w->batches = bt, !(stt = realloc(w->stats, (w->n_stats + 1) * sizeof(*stt))))) {
                sl_strfmt(errstr, errstr_size, "%s/%s: out of memory", m->name, m->version);
                if (b) {
                        sl_session_destroy(b->session);
                        free(b->inputs);
                        free(b->input_cap);
                        free(b->outputs);
                }
                if (st) {
                        free(st->name);
                        free(st->version);
                }
                free(b);
                free(st);
                return SL_ERR_NOMEM;
        }
        w->stats = stt;
        b->model = m;
        b->stats = st;
        st->model = m;
        st->loaded = 1;
        sl_obs_gauge_set(st->obs.loaded, 1.0);
        b->max_rows = w->conf->batch_max_size < m->max_batch_size ? w->conf->batch_max_size
                                                                  : m->max_batch_size;
        /* A model with a fixed first dimension runs one request at a time. */
        if (in0 && in0->ndim > 0 && in0->dims[0] > 0)
                b->max_rows = in0->dims[0];
        /* Online evaluation: [N, C] float scores are a classifier, [N, 1] a regression. */
        if (n_out && sl_model_output(m->model, 0)->dtype == SL_DT_FLOAT &&
            sl_model_output(m->model, 0)->ndim == 2 && sl_model_output(m->model, 0)->dims[1] > 0) {
                st->n_classes = (int32_t)sl_model_output(m->model, 0)->dims[1];
                /* The evaluator borrows class names: copies, as it outlives the model. */
                if ((size_t)st->n_classes == m->n_labels &&
                    (st->labels = calloc(m->n_labels, sizeof(*st->labels)))) {
                        st->n_labels = m->n_labels;
                        for (size_t i = 0; i < m->n_labels; i++)
                                st->labels[i] = strdup(m->labels[i] ? m->labels[i] : "");
                }
                if (st->n_classes == 1)
                        st->eval = sl_eval_new(SL_EVAL_REGRESSION, 0, NULL);
                else
                        st->eval = sl_eval_new(SL_EVAL_CLASSIFICATION, st->n_classes,
                                               st->labels ? (const char *const *)st->labels : NULL);
        }
        w->batches[w->n_batches++] = b;
        w->stats[w->n_stats++] = st;
        return SL_OK;
}

static void batch_free(batch_t *b)
{
        size_t n_in = sl_model_input_count(b->model->model);
        for (size_t j = 0; j < b->cnt; j++) {
                sl_request_destroy(b->reqs[j].req);
                rd_kafka_message_destroy(b->reqs[j].msg);
        }
        free(b->reqs);
        for (size_t j = 0; j < n_in; j++)
                free(b->inputs[j].data);
        free(b->inputs);
        free(b->input_cap);
        free(b->outputs);
        sl_session_destroy(b->session);
        free(b);
}

sl_err_t sl_stream_batches_init(sl_worker_t *w, char *errstr, size_t errstr_size)
{
        sl_err_t err;
        for (size_t i = 0; i < sl_repo_count(w->repo); i++)
                if ((err = sl_stream_model_add(w, sl_repo_get(w->repo, i), errstr, errstr_size)))
                        return err;
        return SL_OK;
}

void sl_stream_batches_destroy(sl_worker_t *w)
{
        for (size_t i = 0; i < w->n_batches; i++)
                batch_free(w->batches[i]);
        free(w->batches);
        w->batches = NULL;
        w->n_batches = 0;
}

static batch_t *batch_find(sl_worker_t *w, const sl_repo_model_t *m)
{
        for (size_t i = 0; i < w->n_batches; i++)
                if (w->batches[i]->model == m)
                        return w->batches[i];
        return NULL;
}

static void batch_run(sl_worker_t *w, batch_t *b);
static int same_row_shape(const batch_t *b, const sl_request_t *req);

/*
 * Stop serving a model version: its open batch runs first (its requests are
 * answered by the version they were routed to), then it is freed.
 * @remark The caller detaches \p m from the repository and frees it after.
 */
void sl_stream_model_remove(sl_worker_t *w, const sl_repo_model_t *m)
{
        for (size_t i = 0; i < w->n_batches; i++) {
                batch_t *b = w->batches[i];
                if (b->model != m)
                        continue;
                batch_run(w, b);
                b->stats->loaded = 0;
                b->stats->model = NULL;
                sl_obs_gauge_set(b->stats->obs.loaded, 0.0);
                batch_free(b);
                memmove(w->batches + i, w->batches + i + 1,
                        (w->n_batches - i - 1) * sizeof(*w->batches));
                w->n_batches--;
                return;
        }
}

/* Copy the allowed request headers (worker.pass_headers) and stamp the model. */
static rd_kafka_headers_t *response_headers(const sl_conf_t *conf, const rd_kafka_message_t *msg,
                                            const char *model, const char *version)
{
        rd_kafka_headers_t *in = NULL, *out = rd_kafka_headers_new(4);

        if (!rd_kafka_message_headers(msg, &in)) {
                for (size_t i = 0; i < conf->n_pass_headers; i++) {
                        const char *name = conf->pass_headers[i];
                        const void *v;
                        size_t len;
                        if (!rd_kafka_header_get_last(in, name, &v, &len))
                                rd_kafka_header_add(out, name, -1, v, (ssize_t)len);
                }
        }
        if (model)
                rd_kafka_header_add(out, "model-name", -1, model, -1);
        if (version)
                rd_kafka_header_add(out, "model-version", -1, version, -1);
        return out;
}

static void answer_error(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                         sl_response_t *e, const char *model, const char *version, sl_err_t code,
                         const char *message);

static void publish_response(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                             const sl_response_t *resp)
{
        void *buf = NULL;
        size_t len = 0;
        sl_err_t err = sl_codec_encode_response(w->codec, resp, &buf, &len);
        if (err) {
                /* Our own record failed to encode: a bug; keep the message as a dead letter. */
                char why[256];
                sl_strfmt(why, sizeof(why), "response encode failed: %s", sl_err2str(err));
                sl_stream_dead_letter(w, msg, inf, SL_ERR_INTERNAL, why, resp->id);
                return;
        }
        if (sl_stream_produce(w, w->conf->response_topic, msg->key, msg->key_len, buf, len,
                              response_headers(w->conf, msg, resp->model_name, resp->model_version),
                              inf) != SL_STREAM_TOO_LARGE)
                return;
        if (!resp->error_code) {
                /* The answer cannot be published: say so instead, as for any request that
                 * cannot be served. The response's model and version are the repository's. */
                sl_response_t e = *resp;
                char why[256];
                sl_strfmt(why, sizeof(why),
                          "the response (%zu bytes) is larger than the producer's "
                          "message.max.bytes",
                          len + msg->key_len);
                answer_error(w, msg, inf, &e, resp->model_name, resp->model_version,
                             SL_ERR_BAD_REQUEST, why);
        }
        /* An error response too large (a huge id): its dead letter says why already. */
}

void sl_stream_dead_letter(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                           sl_err_t code, const char *message, const char *request_id)
{
        sl_header_t *hdrs = NULL;
        rd_kafka_headers_t *in = NULL;
        sl_dead_letter_t dl = {0};
        void *buf = NULL;
        size_t len = 0;
        sl_err_t err;

        if (!rd_kafka_message_headers(msg, &in) && rd_kafka_header_cnt(in) > 0) {
                const char *name;
                const void *v;
                size_t vlen, n = rd_kafka_header_cnt(in);
                if (!(hdrs = malloc(n * sizeof(*hdrs)))) {
                        SL_LOG(SL_LOG_ERR, "DEADLETTER", "out of memory for %zu headers", n);
                        w->fatal = 1; /* losing it silently is not an option */
                        w->stop = 1;
                        return;
                }
                for (size_t i = 0;
                     dl.n_headers < n && !rd_kafka_header_get_all(in, i, &name, &v, &vlen); i++)
                        hdrs[dl.n_headers++] = (sl_header_t){name, v, vlen};
        }
        dl.headers = hdrs;
        dl.key = msg->key;
        dl.key_len = msg->key_len;
        dl.value = msg->payload;
        dl.value_len = msg->len;
        dl.topic = rd_kafka_topic_name(msg->rkt);
        dl.partition = msg->partition;
        dl.offset = msg->offset;
        dl.timestamp_ms = rd_kafka_message_timestamp(msg, NULL);
        dl.error_code = code;
        dl.error_message = message;
        dl.request_id = request_id;
        dl.worker_id = w->conf->worker_id;
        dl.time_ms = sl_wall_ms();
        w->dead_letters++;
        w->dead_letters_total++;
        if ((unsigned)code < SL_ERR__CNT)
                w->dead_letters_by_code[code]++;
        sl_obs_counter_inc(sl_obs_counter_child(w->obs->dead_letters, sl_err_name(code)));
        SL_LOG(SL_LOG_NOTICE, "DEADLETTER", "%s[%d]@%lld id=%.256s %s: %.1024s", dl.topic,
               dl.partition, (long long)dl.offset, request_id ? request_id : "-", sl_err_name(code),
               message);
        /* Whole first; when that is larger than message.max.bytes, without the original
         * value and headers (the message says so); then without key and id too. */
        for (int attempt = 0;; attempt++) {
                char note[1024];
                if (attempt == 1) {
                        sl_strfmt(note, sizeof(note),
                                  "%.600s [original value (%zu bytes) and %zu header(s) not kept: "
                                  "the dead letter would exceed message.max.bytes]",
                                  message, msg->len, dl.n_headers);
                        dl.error_message = note;
                        dl.value = NULL;
                        dl.value_len = 0;
                        dl.n_headers = 0;
                } else if (attempt == 2) {
                        sl_strfmt(note, sizeof(note),
                                  "%.600s [original key (%zu bytes), value (%zu bytes), headers "
                                  "and request id not kept: too large for message.max.bytes]",
                                  message, msg->key_len, msg->len);
                        dl.error_message = note;
                        dl.key = NULL;
                        dl.key_len = 0;
                        dl.request_id = NULL;
                }
                if ((err = sl_codec_encode_dead_letter(w->codec, &dl, &buf, &len))) {
                        SL_LOG(SL_LOG_ERR, "DEADLETTER", "cannot encode dead letter: %s",
                               sl_err2str(err));
                        w->fatal = 1; /* losing it silently is not an option */
                        w->stop = 1;
                        if (inf) /* owed for good: its offset never moves */
                                inf->pending++;
                        goto done;
                }
                err = sl_stream_produce(w, w->conf->dead_letter_topic, dl.key, dl.key_len, buf, len,
                                        NULL, inf);
                if (err != SL_STREAM_TOO_LARGE)
                        goto done;
                if (attempt == 2) {
                        SL_LOG(SL_LOG_ERR, "DEADLETTER",
                               "%s[%d]@%lld: even a bare dead letter "
                               "exceeds message.max.bytes: stopping",
                               dl.topic, dl.partition, (long long)dl.offset);
                        w->fatal = 1;
                        w->stop = 1;
                        if (w->eos)
                                w->txn_failed = 1;
                        if (inf) /* owed for good: its offset never moves */
                                inf->pending++;
                        goto done;
                }
        }
done:
        free(hdrs);
}

/*
 * Answer with an error instead of a result: \p e (id, model, label, timings
 * filled) gets \p code and \p message, is counted under the Prometheus labels
 * \p model / \p version (from the repository, never from the request: bounded
 * series), published, and the message becomes a dead letter too.
 */
static void answer_error(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                         sl_response_t *e, const char *model, const char *version, sl_err_t code,
                         const char *message)
{
        e->error_code = code;
        e->error_message = message;
        e->n_outputs = 0;
        e->outputs = NULL;
        e->n_classes = 0;
        e->classes = NULL;
        sl_obs_counter_inc(sl_obs_counter_child(w->obs->errors, model, version, sl_err_name(code)));
        publish_response(w, msg, inf, e);
        sl_stream_dead_letter(w, msg, inf, code, message, e->id);
}

/* A decodable request that cannot be served: error response + dead letter. */
static void reject(sl_worker_t *w, const rd_kafka_message_t *msg, inflight_t *inf,
                   const sl_request_t *req, const sl_repo_model_t *m, sl_err_t code,
                   const char *message)
{
        sl_response_t resp = {0};
        resp.id = req->id;
        resp.model_name = req->model_name;
        resp.model_version = m ? m->version : (req->model_version ? req->model_version : "");
        resp.worker_id = w->conf->worker_id;
        resp.has_label = req->has_label;
        resp.label = req->label;
        resp.timings.request_timestamp_ms = rd_kafka_message_timestamp(msg, NULL);
        answer_error(w, msg, inf, &resp, m ? m->name : "", m ? m->version : "", code, message);
}

/* Check a request against its model; fills errstr and returns the error class. */
static sl_err_t request_check(const batch_t *b, const sl_request_t *req, int64_t *rowsp,
                              char *errstr, size_t errstr_size)
{
        const sl_model_t *model = b->model->model;
        size_t n_in = sl_model_input_count(model);
        int64_t rows = -1;

        if (req->n_inputs != n_in) {
                sl_strfmt(errstr, errstr_size, "model %s/%s takes %zu input(s), request has %zu",
                          b->model->name, b->model->version, n_in, req->n_inputs);
                return SL_ERR_BAD_REQUEST;
        }
        for (size_t i = 0; i < n_in; i++) {
                const sl_value_info_t *vi = sl_model_input(model, i);
                sl_value_info_t wire;
                const sl_tensor_t *t = NULL;
                char want[128], got[128];
                if (i == 0 && b->model->prep) {
                        /* What the producer sends (input: datatype, layout), not the model's. */
                        sl_prep_wire_shape(b->model->prep, vi, &wire);
                        vi = &wire;
                }
                for (size_t j = 0; j < req->n_inputs && !t; j++)
                        if (!strcmp(req->inputs[j].name, vi->name))
                                t = &req->inputs[j].tensor;
                if (!t) {
                        sl_strfmt(errstr, errstr_size, "input '%s' of model %s/%s is missing",
                                  vi->name, b->model->name, b->model->version);
                        return SL_ERR_BAD_REQUEST;
                }
                if (t->dtype != vi->dtype) {
                        sl_strfmt(errstr, errstr_size, "input '%s': datatype %s, model expects %s",
                                  vi->name,
                                  sl_codec_dtype_to_v2(t->dtype) ? sl_codec_dtype_to_v2(t->dtype)
                                                                 : sl_dtype_name(t->dtype),
                                  sl_codec_dtype_to_v2(vi->dtype) ? sl_codec_dtype_to_v2(vi->dtype)
                                                                  : sl_dtype_name(vi->dtype));
                        return SL_ERR_DATATYPE;
                }
                shape_str(want, sizeof(want), vi->ndim, vi->dims);
                shape_str(got, sizeof(got), t->ndim, t->dims);
                int ok = vi->ndim < 0 || (t->ndim == vi->ndim && t->ndim > 0);
                for (int d = 0; ok && vi->ndim > 0 && d < t->ndim; d++)
                        ok = vi->dims[d] < 0 ? t->dims[d] >= 1 : t->dims[d] == vi->dims[d];
                if (ok && t->ndim > 0 && rows >= 0 && t->dims[0] != rows)
                        ok = 0;
                if (!ok || t->ndim < 1) {
                        sl_strfmt(errstr, errstr_size, "input '%s': shape %s, model expects %s",
                                  vi->name, got, want);
                        return SL_ERR_SHAPE;
                }
                rows = t->dims[0];
                if (t->dtype == SL_DT_FLOAT && !b->model->allow_non_finite) {
                        const float *f = t->data;
                        int64_t n = (int64_t)(t->nbytes / sizeof(float));
                        for (int64_t k = 0; k < n; k++)
                                if (!isfinite(f[k])) {
                                        sl_strfmt(errstr, errstr_size,
                                                  "input '%s': element %lld is %s (the model's "
                                                  "allow_non_finite is false)",
                                                  vi->name, (long long)k,
                                                  isnan(f[k]) ? "NaN" : "infinite");
                                        return SL_ERR_BAD_REQUEST;
                                }
                }
        }
        if (rows > b->max_rows) {
                sl_strfmt(errstr, errstr_size, "%lld rows exceed the batch limit of %lld",
                          (long long)rows, (long long)b->max_rows);
                return SL_ERR_SHAPE;
        }
        for (size_t k = 0; k < req->n_outputs; k++) {
                size_t j, n_out = sl_model_output_count(model);
                for (j = 0; j < n_out; j++)
                        if (!strcmp(sl_model_output(model, j)->name, req->outputs[k]))
                                break;
                if (j == n_out) {
                        sl_strfmt(errstr, errstr_size, "requested output '%s' does not exist",
                                  req->outputs[k]);
                        return SL_ERR_BAD_REQUEST;
                }
        }
        *rowsp = rows;
        return SL_OK;
}

static int output_wanted(const sl_request_t *req, const char *name)
{
        if (!req->n_outputs)
                return 1;
        for (size_t k = 0; k < req->n_outputs; k++)
                if (!strcmp(req->outputs[k], name))
                        return 1;
        return 0;
}

/* Answer every request of a batch that ran: slice outputs per request. */
static void batch_respond(sl_worker_t *w, batch_t *b, int64_t start_us, int64_t infer_us)
{
        const sl_repo_model_t *m = b->model;
        size_t n_out = sl_model_output_count(m->model);
        sl_named_tensor_t outs[16];
        int64_t row = 0;
        size_t k = (size_t)(m->top_k >= 0 ? m->top_k : w->conf->top_k);

        if (m->output.argmax_only)
                k = 1;

        if (n_out > 16)
                n_out = 16;
        if (k > TOPK_MAX)
                k = TOPK_MAX;
        for (size_t r = 0; r < b->cnt; r++) {
                pending_req_t *pr = &b->reqs[r];
                sl_response_t resp = {0};
                sl_class_score_t classes[TOPK_MAX];
                int32_t idx[TOPK_MAX];
                float prob[TOPK_MAX];
                size_t n = 0;

                for (size_t o = 0; o < n_out; o++) {
                        const sl_tensor_t *t = &b->outputs[o];
                        int64_t re = row_elems(t);
                        size_t esz = sl_dtype_size(t->dtype);
                        if (!m->output.return_tensors ||
                            !output_wanted(pr->req, sl_model_output(m->model, o)->name))
                                continue;
                        outs[n].name = (char *)sl_model_output(m->model, o)->name;
                        outs[n].tensor = *t;
                        if (t->ndim > 0 && t->dims[0] == b->rows) {
                                outs[n].tensor.dims[0] = pr->rows;
                                outs[n].tensor.data = (char *)t->data + (size_t)(row * re) * esz;
                                outs[n].tensor.nbytes = (size_t)(pr->rows * re) * esz;
                        } /* else: no batch dimension, every request gets it whole */
                        n++;
                }
                resp.n_outputs = n;
                resp.outputs = outs;
                /* Top-k of a one-row request whose first output is [1, C] scores. */
                if (k && pr->rows == 1 && n_out && b->outputs[0].dtype == SL_DT_FLOAT &&
                    b->outputs[0].ndim == 2 && b->outputs[0].dims[0] == b->rows) {
                        const sl_tensor_t *t = &b->outputs[0];
                        size_t c = (size_t)t->dims[1];
                        const float *scores = (const float *)t->data + (size_t)row * c;
                        resp.n_classes = sl_repo_top_k(m, scores, c, k, idx, prob);
                        for (size_t i = 0; i < resp.n_classes; i++)
                                classes[i] = (sl_class_score_t){
                                    idx[i], (size_t)idx[i] < m->n_labels ? m->labels[idx[i]] : NULL,
                                    prob[i]};
                        resp.classes = classes;
                }
                resp.id = pr->req->id;
                resp.model_name = m->name;
                resp.model_version = m->version;
                resp.worker_id = w->conf->worker_id;
                resp.error_code = SL_OK;
                resp.has_label = pr->req->has_label;
                resp.label = pr->req->label;
                resp.timings.request_timestamp_ms = pr->timestamp_ms;
                resp.timings.queue_us = start_us - pr->consumed_us;
                resp.timings.inference_us = infer_us;
                resp.timings.batch_size = (int32_t)b->cnt;
                if (pr->inf) { /* a shadow copy (no inf) is never published */
                        b->stats->responses++;
                        b->stats->responses_total++;
                        pr->inf->answered = 1;
                }
                sl_obs_histogram_observe(b->stats->obs.queue_time,
                                         (double)resp.timings.queue_us / 1e6);
                /* Online evaluation from the scores of a one-row classifier request. */
                if (pr->rows == 1 && n_out && b->outputs[0].dtype == SL_DT_FLOAT &&
                    b->outputs[0].ndim == 2 && b->outputs[0].dims[0] == b->rows &&
                    b->outputs[0].dims[1] == b->stats->n_classes) {
                        size_t c = (size_t)b->outputs[0].dims[1], best = 0;
                        const float *sc = (const float *)b->outputs[0].data + (size_t)row * c;
                        for (size_t i = 1; i < c; i++)
                                if (sc[i] > sc[best])
                                        best = i;
                        sl_stream_eval_prediction(w, b->stats, pr->req, (int32_t)best, sc);
                }
                /* A label outside the model's classes is no evidence either way: the
                 * evaluator counts it as invalid (WorkerMetrics evaluation.invalid). */
                if (pr->req->has_label && resp.n_classes &&
                    (b->stats->n_classes <= 0 ||
                     (pr->req->label >= 0 && pr->req->label < b->stats->n_classes))) {
                        int hit = resp.classes[0].index == pr->req->label;
                        sl_obs_model_metrics_label(&b->stats->obs, hit);
                        b->stats->labelled++;
                        b->stats->labelled_total++;
                        b->stats->correct += hit;
                        b->stats->correct_total += hit;
                }
                if (pr->msg) /* a shadow run is counted, never published */
                        publish_response(w, pr->msg, pr->inf, &resp);
                row += pr->rows;
        }
}

/* Run one batch through the engine and answer its requests. */
static void batch_run(sl_worker_t *w, batch_t *b)
{
        const sl_model_t *model = b->model->model;
        size_t n_in = sl_model_input_count(model), n_out = sl_model_output_count(model);
        char errstr[512];
        int64_t start_us = sl_now_us(), infer_us;
        sl_err_t err = SL_OK;

        if (!b->cnt)
                return;
        /*
         * Concatenate each input along the batch dimension into the batch's
         * buffers, converted by the model's input: group (prep.h) where it has one.
         */
        for (size_t i = 0; i < n_in && !err; i++) {
                const sl_value_info_t *vi = sl_model_input(model, i);
                const sl_prep_t *prep = i == 0 ? b->model->prep : NULL;
                sl_tensor_t *in = &b->inputs[i], mt;
                size_t off = 0, need = 0;
                const sl_tensor_t *first = NULL;
                for (size_t r = 0; r < b->cnt; r++) {
                        for (size_t j = 0; j < b->reqs[r].req->n_inputs; j++)
                                if (!strcmp(b->reqs[r].req->inputs[j].name, vi->name)) {
                                        sl_prep_model_tensor(
                                            prep, &b->reqs[r].req->inputs[j].tensor, &mt);
                                        need += mt.nbytes;
                                        if (!first)
                                                first = &b->reqs[r].req->inputs[j].tensor;
                                }
                }
                if (need > b->input_cap[i]) { /* grows to the largest batch, then stays */
                        void *tmp = realloc(in->data, need);
                        if (!tmp) {
                                err = SL_ERR_NOMEM;
                                sl_strfmt(errstr, sizeof(errstr), "out of memory");
                                break;
                        }
                        in->data = tmp;
                        b->input_cap[i] = need;
                }
                for (size_t r = 0; r < b->cnt && !err; r++)
                        for (size_t j = 0; j < b->reqs[r].req->n_inputs; j++)
                                if (!strcmp(b->reqs[r].req->inputs[j].name, vi->name)) {
                                        const sl_tensor_t *t = &b->reqs[r].req->inputs[j].tensor;
                                        sl_prep_model_tensor(prep, t, &mt);
                                        if (prep)
                                                err =
                                                    sl_prep_apply(prep, t, (char *)in->data + off);
                                        else
                                                memcpy((char *)in->data + off, t->data, t->nbytes);
                                        if (err)
                                                sl_strfmt(errstr, sizeof(errstr),
                                                          "input conversion failed: %s",
                                                          sl_err2str(err));
                                        off += mt.nbytes;
                                }
                sl_prep_model_tensor(prep, first, &mt);
                in->dtype = mt.dtype;
                in->ndim = mt.ndim;
                memcpy(in->dims, mt.dims, sizeof(in->dims));
                in->dims[0] = b->rows;
                in->nbytes = off;
        }
        if (!err)
                err = sl_session_run(b->session, b->inputs, n_in, b->outputs, n_out, errstr,
                                     sizeof(errstr));
        infer_us = sl_now_us() - start_us;
        sl_stream_samples_add(&b->stats->inference, infer_us);
        sl_obs_histogram_observe(b->stats->obs.inference_time, (double)infer_us / 1e6);
        sl_obs_histogram_observe(b->stats->obs.batch_size, (double)b->cnt);
        b->stats->batches++;
        b->stats->batch_rows += b->rows;
        if (b->rows > b->stats->batch_size_max)
                b->stats->batch_size_max = (int32_t)b->rows;
        if (err) {
                SL_LOG(SL_LOG_ERR, "ENGINE", "%s/%s: batch of %zu failed: %s", b->model->name,
                       b->model->version, b->cnt, errstr);
                for (size_t r = 0; r < b->cnt; r++) {
                        b->stats->errors++;
                        b->stats->errors_total++;
                        if (b->reqs[r].msg)
                                reject(w, b->reqs[r].msg, b->reqs[r].inf, b->reqs[r].req, b->model,
                                       err == SL_ERR_NOMEM ? SL_ERR_INTERNAL : SL_ERR_MODEL,
                                       errstr);
                }
        } else {
                batch_respond(w, b, start_us, infer_us);
        }
        for (size_t r = 0; r < b->cnt; r++) {
                if (b->reqs[r].inf)
                        sl_stream_inflight_finish(w, b->reqs[r].inf);
                sl_request_destroy(b->reqs[r].req);
                if (b->reqs[r].msg)
                        rd_kafka_message_destroy(b->reqs[r].msg);
        }
        b->cnt = 0;
        b->rows = 0;
        b->opened_us = 0;
}

static sl_err_t batch_add(batch_t *b, sl_request_t *req, inflight_t *inf, rd_kafka_message_t *msg,
                          int64_t rows, int64_t consumed_us, int64_t timestamp_ms)
{
        if (b->cnt == b->size) {
                size_t size = b->size ? b->size * 2 : 16;
                pending_req_t *tmp = realloc(b->reqs, size * sizeof(*tmp));
                if (!tmp)
                        return SL_ERR_NOMEM;
                b->reqs = tmp;
                b->size = size;
        }
        b->reqs[b->cnt++] = (pending_req_t){req, inf, msg, rows, consumed_us, timestamp_ms};
        b->rows += rows;
        if (!b->opened_us)
                b->opened_us = consumed_us;
        return SL_OK;
}

/* Shadow mode: run a copy of \p req on \p shadow; counted in its metrics, never answered. */
static void shadow_add(sl_worker_t *w, const sl_repo_model_t *shadow, const sl_request_t *req,
                       int64_t consumed_us, int64_t timestamp_ms)
{
        batch_t *b = batch_find(w, shadow);
        sl_request_t *copy;
        int64_t rows = 0;
        char errstr[256];

        if (!b)
                return;
        sl_obs_counter_inc(b->stats->obs.requests);
        b->stats->requests++;
        b->stats->requests_total++;
        sl_err_t err = request_check(b, req, &rows, errstr, sizeof(errstr));
        if (err || !(copy = sl_stream_request_copy(req))) {
                if (!err) {
                        err = SL_ERR_NOMEM;
                        sl_strfmt(errstr, sizeof(errstr), "out of memory");
                }
                b->stats->errors++;
                b->stats->errors_total++;
                sl_obs_counter_inc(sl_obs_counter_child(w->obs->errors, shadow->name,
                                                        shadow->version, sl_err_name(err)));
                SL_LOG(SL_LOG_DEBUG, "SHADOW", "%s/%s cannot take id=%.256s: %s", shadow->name,
                       shadow->version, req->id, errstr);
                return;
        }
        if (b->rows + rows > b->max_rows || !same_row_shape(b, copy))
                batch_run(w, b);
        if (batch_add(b, copy, NULL, NULL, rows, consumed_us, timestamp_ms)) {
                sl_request_destroy(copy);
                return;
        }
        if (b->rows >= b->max_rows)
                batch_run(w, b);
}

/* Does a request's input 0 have the same non-batch shape as the batch's? */
static int same_row_shape(const batch_t *b, const sl_request_t *req)
{
        const sl_tensor_t *a, *t;
        if (!b->cnt)
                return 1;
        a = &b->reqs[0].req->inputs[0].tensor;
        t = &req->inputs[0].tensor;
        return a->ndim == t->ndim &&
               !memcmp(a->dims + 1, t->dims + 1, sizeof(int64_t) * (size_t)(a->ndim - 1));
}

/*
 * Handle one consumed message. Takes ownership of \p msg. Every path ends
 * with the message's outputs queued and its inflight entry finished (now
 * or when its batch runs).
 */
void sl_stream_handle(sl_worker_t *w, rd_kafka_message_t *msg)
{
        inflight_t *inf = sl_stream_inflight_new(w, msg);
        sl_request_t *req = NULL;
        char *id = NULL, errstr[512] = "";
        const sl_repo_model_t *m, *shadow = NULL;
        batch_t *b;
        int64_t rows = 0;
        sl_err_t err;

        if (!inf) {
                SL_LOG(SL_LOG_ERR, "CONSUME", "out of memory tracking a message");
                w->fatal = 1;
                w->stop = 1;
                rd_kafka_message_destroy(msg);
                return;
        }
        if (w->join && sl_stream_is_label_topic(w, rd_kafka_topic_name(msg->rkt))) {
                sl_stream_handle_label(w, msg, inf);
                return;
        }
        err = sl_codec_decode_request(w->codec, msg->payload, msg->len, &req, &id, errstr,
                                      sizeof(errstr));
        if (err) {
                if (id) {
                        /* The id is known: the producer gets an error response too. */
                        sl_request_t partial = {.id = id, .model_name = ""};
                        reject(w, msg, inf, &partial, NULL, err, errstr);
                } else {
                        sl_stream_dead_letter(w, msg, inf, err, errstr, NULL);
                }
                goto finish;
        }
        if (!*req->id) {
                /* An empty id cannot be matched to its response. */
                sl_strfmt(errstr, sizeof(errstr), "id: must not be empty");
                reject(w, msg, inf, req, NULL, SL_ERR_BAD_REQUEST, errstr);
                goto finish;
        }
        if (!*req->model_name) {
                /* topics.default_models: the topic names the model. */
                const char *topic = rd_kafka_topic_name(msg->rkt);
                size_t tl = strlen(topic);
                for (size_t i = 0; i < w->conf->n_default_models; i++) {
                        const char *e = w->conf->default_models[i];
                        if (!strncmp(e, topic, tl) && e[tl] == '=') {
                                char *name = strdup(e + tl + 1);
                                if (name) {
                                        free(req->model_name);
                                        req->model_name = name;
                                }
                                break;
                        }
                }
        }
        if (!(m = sl_stream_route(w, req, &shadow))) {
                sl_strfmt(errstr, sizeof(errstr), "model '%s'%s%s is not served here",
                          req->model_name, req->model_version ? " version " : "",
                          req->model_version ? req->model_version : "");
                reject(w, msg, inf, req, NULL, SL_ERR_UNKNOWN_MODEL, errstr);
                goto finish;
        }
        b = batch_find(w, m);
        sl_obs_counter_inc(b->stats->obs.requests);
        b->stats->requests++;
        b->stats->requests_total++;
        inf->stats = b->stats;
        if ((err = request_check(b, req, &rows, errstr, sizeof(errstr)))) {
                b->stats->errors++;
                b->stats->errors_total++;
                reject(w, msg, inf, req, m, err, errstr);
                goto finish;
        }
        if (b->rows + rows > b->max_rows || !same_row_shape(b, req))
                batch_run(w, b);
        if (shadow)
                shadow_add(w, shadow, req, inf->consumed_us, rd_kafka_message_timestamp(msg, NULL));
        if (batch_add(b, req, inf, msg, rows, inf->consumed_us,
                      rd_kafka_message_timestamp(msg, NULL))) {
                reject(w, msg, inf, req, m, SL_ERR_INTERNAL, "out of memory");
                goto finish;
        }
        if (b->rows >= b->max_rows)
                batch_run(w, b);
        free(id);
        return; /* the batch owns req and msg now */
finish:
        sl_stream_inflight_finish(w, inf);
        sl_request_destroy(req);
        free(id);
        rd_kafka_message_destroy(msg);
}

void sl_stream_flush_due(sl_worker_t *w, int64_t now_us, int force)
{
        int64_t wait_us = (int64_t)w->conf->batch_max_wait_ms * 1000;
        for (size_t i = 0; i < w->n_batches; i++) {
                batch_t *b = w->batches[i];
                if (b->cnt && (force || now_us - b->opened_us >= wait_us))
                        batch_run(w, b);
        }
}

int64_t sl_stream_next_deadline_us(sl_worker_t *w)
{
        int64_t wait_us = (int64_t)w->conf->batch_max_wait_ms * 1000, next = INT64_MAX;
        for (size_t i = 0; i < w->n_batches; i++) {
                const batch_t *b = w->batches[i];
                if (b->cnt && b->opened_us + wait_us < next)
                        next = b->opened_us + wait_us;
        }
        return next;
}
