/*
 * Broker faults injected with librdkafka's mock cluster (rdkafka_mock.h), against the real
 * worker (sl_worker_new / sl_worker_run in a thread / sl_worker_stop):
 *
 *  a) produce errors: retriable errors on Produce that say nothing was written
 *     (NOT_LEADER_FOR_PARTITION a.k.a. NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS) and a slow
 *     broker (acknowledgements 3 s late): every request answered, in partition order.
 *  b) commit errors on OffsetCommit (the periodic and the shutdown commit): nothing lost after
 *     a restart (a failed commit may only cause duplicates).
 *  c) the group coordinator moving to another broker, and a broker going down and up, while
 *     streaming: every request answered by the same worker, no restart.
 *  d) ordering (README "Ordering"): a delivery timeout or a producer without idempotence is
 *     refused at start (it could write a response after later ones of its partition); with
 *     acknowledgements 3 s late every response keeps its request's partition order.
 *
 * Not injected here: a leader of the responses topic moving while the worker publishes, and
 * outcomes where a record may or may not have been written (a Produce request timing out,
 * REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND). In both the idempotent producer can see
 * a later batch of a partition accepted while an earlier one is unanswered or failed, and then
 * acknowledges the earlier one implicitly (offset -1001): a real broker accepts a sequence only
 * after the ones before it, so they were written; the mock checks no sequence of a
 * non-transactional producer and writes nothing for a failed request, so the records are lost
 * by the mock itself (librdkafka 2.0.2, measured: 6 to 64 responses per run acknowledged at
 * offset -1001 and absent from the log, about one run in ten). A real broker stopped and
 * restarted mid-stream is tests/integration/test_faults.py.
 *  e) a delivery that fails for good (a non-retriable Produce error) stops the worker with the
 *     message uncommitted; the restarted worker answers it: nothing lost.
 *  f) backpressure in bytes: with worker.max_in_flight_kbytes = 1 and acknowledgements late,
 *     the worker pauses its partitions on the bytes of unacknowledged outputs (far below the
 *     message bound), resumes as they are acknowledged, and answers every request in order.
 *
 * Each case produces requests with the codec's encoder to the mock cluster, then reads the
 * responses topic from the beginning and checks that every request id has a response (the
 * duplicates are printed). Prints "N passed, N failed" (cmocka's summary too).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "codec/codec.h"
#include "conf/conf.h"
#include "repo/repo.h"
#include "stream/stream.h"
#include "util/util.h"

#ifndef SL_SOURCE_DIR
#define SL_SOURCE_DIR "."
#endif

/* Kafka protocol ApiKeys */
#define API_PRODUCE       0
#define API_OFFSET_COMMIT 8

#define N_BROKERS 3

static const char *src_dir;
static rd_kafka_t *mock_rk; /* owns the mock cluster */
static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstraps;
static sl_codec_t *codec;
static sl_repo_t *repo;
static int case_no;
static int n_passed; /* cases that reached their end */

typedef struct topics_s {
        char requests[64], responses[64], dead_letters[64], metrics[64], group[64];
} topics_t;

static void make_topics(topics_t *t)
{
        case_no++;
        snprintf(t->requests, sizeof(t->requests), "mock%d.requests", case_no);
        snprintf(t->responses, sizeof(t->responses), "mock%d.responses", case_no);
        snprintf(t->dead_letters, sizeof(t->dead_letters), "mock%d.dead-letters", case_no);
        snprintf(t->metrics, sizeof(t->metrics), "mock%d.metrics", case_no);
        snprintf(t->group, sizeof(t->group), "mock%d", case_no);
        assert_int_equal(rd_kafka_mock_topic_create(mcluster, t->requests, 4, 3), 0);
        assert_int_equal(rd_kafka_mock_topic_create(mcluster, t->responses, 4, 3), 0);
        assert_int_equal(rd_kafka_mock_topic_create(mcluster, t->dead_letters, 1, 3), 0);
        assert_int_equal(rd_kafka_mock_topic_create(mcluster, t->metrics, 1, 3), 0);
}

/* ---- worker in a thread; its log lines go to a file while it runs ---- */

typedef struct run_s {
        sl_conf_t conf;
        sl_worker_t *w;
        pthread_t thread;
        sl_err_t result;
        volatile int done; /* sl_worker_run() returned */
        char log[256];
        int saved_stderr;
} run_t;

static void *worker_main(void *arg)
{
        run_t *r = arg;
        r->result = sl_worker_run(r->w);
        r->done = 1;
        return NULL;
}

static const char *worker_extra = ""; /* more worker.* settings for the next worker_start */

static void write_conf(const char *path, const topics_t *t, const char *kafka_extra)
{
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fprintf(fp,
                "worker: { id = \"mock-worker\"; models_dir = \"%s/models\"; "
                "metrics_interval_ms = 1000; shutdown_timeout_ms = 20000; %s };\n"
                "batch: { max_size = 32; max_wait_ms = 5; };\n"
                "topics: { requests = [\"%s\"]; responses = \"%s\"; dead_letters = \"%s\"; "
                "metrics = \"%s\"; };\n"
                "codec: { schema_dir = \"%s/schemas\"; };\n"
                "kafka: { bootstrap_servers = \"%s\"; group_id = \"%s\"; "
                "session_timeout_ms = 6000; heartbeat_interval_ms = 500; "
                "topic_metadata_refresh_interval_ms = 1000; %s };\n",
                src_dir, worker_extra, t->requests, t->responses, t->dead_letters, t->metrics,
                src_dir, bootstraps, t->group, kafka_extra ? kafka_extra : "");
        fclose(fp);
}

static void worker_start(run_t *r, const topics_t *t, const char *kafka_extra, const char *name)
{
        char path[256], errstr[1024];
        memset(r, 0, sizeof(*r));
        snprintf(path, sizeof(path), "/tmp/sl_mock_%d_%s.cfg", (int)getpid(), name);
        write_conf(path, t, kafka_extra);
        assert_int_equal(sl_conf_load(&r->conf, path, errstr, sizeof(errstr)), SL_OK);
        unlink(path);
        snprintf(r->log, sizeof(r->log), "/tmp/sl_mock_%d_%s.log", (int)getpid(), name);
        fflush(stderr);
        r->saved_stderr = dup(2);
        {
                FILE *fp = fopen(r->log, "w");
                assert_non_null(fp);
                dup2(fileno(fp), 2);
                fclose(fp);
        }
        sl_err_t err = sl_worker_new(&r->conf, repo, codec, &r->w, errstr, sizeof(errstr));
        if (err) {
                dup2(r->saved_stderr, 2);
                fprintf(stderr, "sl_worker_new: %s\n", errstr);
        }
        assert_int_equal(err, SL_OK);
        assert_int_equal(pthread_create(&r->thread, NULL, worker_main, r), 0);
}

static char *read_text(const char *path)
{
        FILE *fp = fopen(path, "r");
        long n;
        char *buf;
        if (!fp)
                return strdup("");
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = calloc(1, (size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n)
                buf[0] = '\0';
        fclose(fp);
        return buf;
}

static size_t count_of(const char *text, const char *needle)
{
        size_t n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Stop and join the worker; returns its log (caller frees) and restores stderr. */
static char *worker_stop(run_t *r, sl_err_t *resultp)
{
        char *log;
        sl_worker_stop(r->w);
        pthread_join(r->thread, NULL);
        sl_worker_destroy(r->w);
        sl_conf_cleanup(&r->conf);
        fflush(stderr);
        dup2(r->saved_stderr, 2);
        close(r->saved_stderr);
        log = read_text(r->log);
        if (!getenv("SL_FAULT_KEEP_LOGS")) /* =1 keeps /tmp/sl_mock_<pid>_<case>.log */
                unlink(r->log);
        *resultp = r->result;
        return log;
}

static void print_tail(const char *log, size_t bytes)
{
        size_t n = strlen(log);
        fprintf(stderr, "--- worker log (last %zu bytes) ---\n%s\n---\n", bytes,
                n > bytes ? log + n - bytes : log);
}

/* ---- requests and responses ---- */

static int undelivered_requests; /* requests the test's producer failed to deliver */

static void request_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                undelivered_requests++;
                printf("request %.*s not delivered: %s\n", (int)m->key_len, (const char *)m->key,
                       rd_kafka_err2str(m->err));
        }
}

static rd_kafka_t *client_new(rd_kafka_type_t type, const char *group)
{
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;
        rd_kafka_conf_set(kc, "bootstrap.servers", bootstraps, NULL, 0);
        if (type == RD_KAFKA_CONSUMER) {
                rd_kafka_conf_set(kc, "group.id", group, NULL, 0);
                rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
                rd_kafka_conf_set(kc, "enable.partition.eof", "false", NULL, 0);
        } else {
                rd_kafka_conf_set(kc, "linger.ms", "5", NULL, 0);
                rd_kafka_conf_set(kc, "enable.idempotence", "true", NULL, 0);
                rd_kafka_conf_set_dr_msg_cb(kc, request_dr_cb);
        }
        rd_kafka_conf_set(kc, "log_level", "2", NULL, 0); /* the mock is chatty */
        rk = rd_kafka_new(type, kc, errstr, sizeof(errstr));
        assert_non_null(rk);
        return rk;
}

/* Produce requests [from, to) with ids "req-<i>", the image filled from i. */
static void produce_requests(const char *topic, int from, int to)
{
        rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, NULL);
        float pixels[28 * 28];
        char id[32];
        sl_named_tensor_t input;
        sl_request_t req;

        memset(&req, 0, sizeof(req));
        memset(&input, 0, sizeof(input));
        input.name = (char *)"image";
        input.tensor.dtype = SL_DT_FLOAT;
        input.tensor.ndim = 4;
        input.tensor.dims[0] = 1;
        input.tensor.dims[1] = 1;
        input.tensor.dims[2] = 28;
        input.tensor.dims[3] = 28;
        input.tensor.data = pixels;
        input.tensor.nbytes = sizeof(pixels);
        req.id = id;
        req.model_name = (char *)"fashion_cnn";
        req.n_inputs = 1;
        req.inputs = &input;
        for (int i = from; i < to; i++) {
                void *buf = NULL;
                size_t len = 0;
                rd_kafka_resp_err_t err;
                for (int k = 0; k < 28 * 28; k++)
                        pixels[k] = (float)((i * 31 + k * 7) % 256) / 255.0f;
                snprintf(id, sizeof(id), "req-%d", i);
                assert_int_equal(sl_codec_encode_request(codec, &req, 0, &buf, &len), SL_OK);
                while ((err = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(id, strlen(id)),
                            RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                            RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 10);
                assert_int_equal(err, 0);
        }
        assert_int_equal(rd_kafka_flush(rk, 60000), 0);
        rd_kafka_destroy(rk);
        assert_int_equal(undelivered_requests, 0); /* else the test, not the worker, lost them */
}

typedef struct tally_s {
        int n;
        unsigned char *seen; /* responses per id, saturating */
        int unique, duplicates, errors, foreign;
        int out_of_order; /* first responses of a partition whose request came before the
                             previous first response's request (requests of one partition
                             are produced in increasing index order) */
        int max_first[4];
} tally_t;

/* Read the responses topic from the beginning until every id of [0, n) has a response or
 * timeout_ms passes; counts unique ids and duplicates. */
static void read_responses(const char *topic, int n, int timeout_ms, tally_t *t)
{
        rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, "verify");
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
        int64_t deadline = sl_now_us() + (int64_t)timeout_ms * 1000, extra_until = 0;

        memset(t, 0, sizeof(*t));
        t->n = n;
        t->seen = calloc((size_t)n, 1);
        assert_non_null(t->seen);
        for (int p = 0; p < 4; p++)
                t->max_first[p] = -1;
        for (int p = 0; p < 4; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        while (sl_now_us() < deadline && (!extra_until || sl_now_us() < extra_until)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                sl_response_decoded_t *resp = NULL;
                char errstr[256];
                int i;
                if (!m)
                        continue;
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (sl_codec_decode_response(codec, m->payload, m->len, &resp, errstr,
                                             sizeof(errstr)) ||
                    sscanf(resp->id, "req-%d", &i) != 1 || i < 0 || i >= n) {
                        t->foreign++;
                } else {
                        if (resp->error_code)
                                t->errors++;
                        if (!t->seen[i]) {
                                t->unique++;
                                if (m->partition >= 0 && m->partition < 4) {
                                        if (i < t->max_first[m->partition])
                                                t->out_of_order++;
                                        else
                                                t->max_first[m->partition] = i;
                                }
                        } else
                                t->duplicates++;
                        if (t->seen[i] < 255)
                                t->seen[i]++;
                        if (t->unique == n && !extra_until) /* a little longer: duplicates */
                                extra_until = sl_now_us() + 500000;
                }
                sl_response_decoded_destroy(resp);
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

/* Sum over the 4 partitions of \p topic of the offsets committed by \p group (-1 none). */
static int64_t committed_sum(const char *topic, const char *group)
{
        rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, group);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
        int64_t sum = 0;
        for (int p = 0; p < 4; p++)
                rd_kafka_topic_partition_list_add(l, topic, p);
        if (rd_kafka_committed(rk, l, 10000))
                sum = -1;
        for (int p = 0; p < 4 && sum >= 0; p++)
                if (l->elems[p].offset >= 0)
                        sum += l->elems[p].offset;
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return sum;
}

/* Messages in the topic's 4 partitions (sum of high watermarks), -1 on error. */
static int64_t topic_size(const char *topic)
{
        rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, "size");
        int64_t sum = 0, lo, hi;
        for (int p = 0; p < 4 && sum >= 0; p++)
                if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
                        sum = -1;
                else
                        sum += hi - lo;
        rd_kafka_destroy(rk);
        return sum;
}

static void tally_check(const char *name, tally_t *t)
{
        int first_missing = -1, shown = 0;
        for (int i = 0; i < t->n; i++)
                if (!t->seen[i]) {
                        if (first_missing < 0) {
                                first_missing = i;
                                printf("[%s] no response:", name);
                        }
                        if (shown++ < 40)
                                printf(" req-%d", i);
                }
        if (first_missing >= 0)
                printf("\n");
        printf("[%s] %d unique of %d, %d duplicates, %d error responses, %d undecodable, "
               "%d first responses out of request order\n",
               name, t->unique, t->n, t->duplicates, t->errors, t->foreign, t->out_of_order);
        fflush(stdout);
        free(t->seen);
        t->seen = NULL;
        if (first_missing >= 0)
                fail_msg("%s: req-%d has no response (%d of %d answered)", name, first_missing,
                         t->unique, t->n);
        assert_int_equal(t->errors, 0);
        assert_int_equal(t->foreign, 0);
}

static void sleep_ms(int ms)
{
        usleep((useconds_t)ms * 1000);
}

/* Wait until the worker's log says it has partitions (or fail after 30 s). */
static void wait_assigned(run_t *r)
{
        for (int i = 0; i < 300; i++) {
                char *log = read_text(r->log);
                int ok = strstr(log, "assigned") != NULL;
                free(log);
                if (ok)
                        return;
                sleep_ms(100);
        }
        fail_msg("worker got no partitions in 30 s");
}

/* ---- cases ---- */

/* a) Produce errors: retriable errors, retried by the idempotent producer in order, and a
 *    slow broker. */
static void test_produce_errors(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res;
        char *log;
        const int n = 3000;
        (void)state;

        make_topics(&t);
        produce_requests(t.requests, 0, n / 3);
        /* Every broker: the next Produce requests fail with retriable errors that say the
         * records were not written (the worker's producer is the only one producing from
         * now on; see the header on errors that may have written them). */
        rd_kafka_mock_push_request_errors(
            mcluster, API_PRODUCE, 8, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
        /* SL_FAULT_KAFKA_DEBUG='debug = "msg,eos";' shows the producer's side. */
        worker_start(&r, &t, getenv("SL_FAULT_KAFKA_DEBUG"), "produce");
        wait_assigned(&r);
        sleep_ms(1500);
        produce_requests(t.requests, n / 3, 2 * n / 3);
        /* Each broker answers its next Produce requests 3 s late while more are queued. */
        for (int b = 1; b <= N_BROKERS; b++)
                rd_kafka_mock_broker_push_request_error_rtts(mcluster, b, API_PRODUCE, 2, 0, 3000,
                                                             0, 3000);
        produce_requests(t.requests, 2 * n / 3, n);
        read_responses(t.responses, n, 90000, &tally);
        log = worker_stop(&r, &res);
        printf("[produce errors] worker: KAFKA warnings x%zu, result %s; requests topic holds "
               "%lld, responses topic %lld, committed %lld\n",
               count_of(log, "fac=KAFKA"), sl_err_name(res), (long long)topic_size(t.requests),
               (long long)topic_size(t.responses), (long long)committed_sum(t.requests, t.group));
        if (tally.unique != n || res != SL_OK)
                print_tail(log, 4000);
        free(log);
        {
                int out_of_order = tally.out_of_order;
                tally_check("produce errors", &tally);
                assert_int_equal(res, SL_OK);
                assert_int_equal(out_of_order, 0);
        }
        n_passed++;
}

/* b) OffsetCommit errors, then a restart: at-least-once means nothing lost. */
static void test_commit_errors(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res1, res2;
        char *log1, *log2;
        int64_t committed_before = -1, committed_after;
        const int n = 2000;
        (void)state;

        make_topics(&t);
        produce_requests(t.requests, 0, n / 2);
        /* The next OffsetCommit requests fail: retriable, coordinator, and group errors. */
        rd_kafka_mock_push_request_errors(
            mcluster, API_OFFSET_COMMIT, 12, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
        worker_start(&r, &t, "auto_commit_interval_ms = 200;", "commit1");
        wait_assigned(&r);
        sleep_ms(3000);
        /* The retriable errors are ridden out: the first half gets committed. */
        for (int i = 0; i < 100 && (committed_before = committed_sum(t.requests, t.group)) < n / 2;
             i++)
                sleep_ms(100);
        /* From now on every commit fails with a non-retriable error, the shutdown commits
         * included: what the first worker did since its last good commit is redelivered. */
        produce_requests(t.requests, n / 2, 3 * n / 4);
        {
                rd_kafka_resp_err_t errs[64];
                for (size_t i = 0; i < sizeof(errs) / sizeof(*errs); i++)
                        errs[i] = RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
                rd_kafka_mock_push_request_errors_array(mcluster, API_OFFSET_COMMIT,
                                                        sizeof(errs) / sizeof(*errs), errs);
        }
        sleep_ms(2000);
        log1 = worker_stop(&r, &res1);
        committed_after = committed_sum(t.requests, t.group);
        produce_requests(t.requests, 3 * n / 4, n);
        rd_kafka_mock_clear_request_errors(mcluster, API_OFFSET_COMMIT);
        worker_start(&r, &t, "auto_commit_interval_ms = 200;", "commit2");
        read_responses(t.responses, n, 60000, &tally);
        log2 = worker_stop(&r, &res2);
        printf("[commit errors] first worker: 'commit failed' x%zu, COMMITFAIL x%zu, result %s; "
               "after restart: result %s; committed %lld of %d before the non-retriable errors, "
               "%lld at stop (the rest is redelivered: duplicates)\n",
               count_of(log1, "commit failed"), count_of(log1, "COMMITFAIL"), sl_err_name(res1),
               sl_err_name(res2), (long long)committed_before, n / 2, (long long)committed_after);
        if (tally.unique != n || getenv("SL_FAULT_VERBOSE")) {
                print_tail(log1, getenv("SL_FAULT_VERBOSE") ? 1000000 : 3000);
                print_tail(log2, 3000);
        }
        free(log1);
        free(log2);
        tally_check("commit errors + restart", &tally);
        assert_int_equal(res2, SL_OK);
        assert_int_equal(committed_before, n / 2);
        /* The failed commits did not move the offsets: what came after is redelivered. */
        assert_int_equal(committed_after, committed_before);
        assert_true(tally.duplicates > 0 && tally.duplicates <= n / 4);
        n_passed++;
}

/* c) The group coordinator moves, a partition leader moves, a broker goes down and up:
 *    the same worker keeps answering. */
static void test_coordinator_change(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res;
        char *log;
        const int n = 3000;
        (void)state;

        make_topics(&t);
        rd_kafka_mock_coordinator_set(mcluster, "group", t.group, 1);
        worker_start(&r, &t, NULL, "coord");
        wait_assigned(&r);
        produce_requests(t.requests, 0, n / 3);
        sleep_ms(1000);
        rd_kafka_mock_coordinator_set(mcluster, "group", t.group, 2);
        for (int p = 0; p < 4; p++)
                rd_kafka_mock_partition_set_leader(mcluster, t.requests, p, 1 + (p + 2) % 3);
        produce_requests(t.requests, n / 3, 2 * n / 3);
        sleep_ms(1000);
        /* The new coordinator goes down for 3 s, then the coordinator moves back. */
        rd_kafka_mock_broker_set_down(mcluster, 2);
        sleep_ms(3000);
        rd_kafka_mock_coordinator_set(mcluster, "group", t.group, 3);
        rd_kafka_mock_broker_set_up(mcluster, 2);
        produce_requests(t.requests, 2 * n / 3, n);
        read_responses(t.responses, n, 90000, &tally);
        log = worker_stop(&r, &res);
        printf("[coordinator change] worker: assigned x%zu, revoked/lost before stop x%zu, "
               "KAFKA warnings x%zu, result %s\n",
               count_of(log, "msg=\"assigned"),
               count_of(log, "msg=\"lost") + count_of(log, "msg=\"revoked") - 1,
               count_of(log, "fac=KAFKA"), sl_err_name(res));
        if (tally.unique != n || res != SL_OK)
                print_tail(log, 4000);
        free(log);
        tally_check("coordinator change", &tally);
        assert_int_equal(res, SL_OK);
        n_passed++;
}

/* A config the worker refuses: sl_worker_new fails naming the file, line and property. */
static void expect_refused(const topics_t *t, const char *kafka_extra, const char *what)
{
        char path[256], errstr[1024];
        sl_conf_t conf;
        sl_worker_t *w = NULL;

        snprintf(path, sizeof(path), "/tmp/sl_mock_%d_refused.cfg", (int)getpid());
        write_conf(path, t, kafka_extra);
        assert_int_equal(sl_conf_load(&conf, path, errstr, sizeof(errstr)), SL_OK);
        assert_int_not_equal(sl_worker_new(&conf, repo, codec, &w, errstr, sizeof(errstr)), SL_OK);
        assert_null(w);
        printf("[ordering] refused: %s\n", errstr);
        if (!strstr(errstr, what) || !strstr(errstr, path) || !strstr(errstr, "order"))
                fail_msg("expected an error naming %s in %s, got: %s", what, path, errstr);
        sl_conf_cleanup(&conf);
        unlink(path);
}

/* d) Per-partition order of responses (README "Ordering"). A delivery that times out leaves
 *    a gap that later responses of its partition fill first, so a finite delivery timeout
 *    (or a producer without idempotence, whose retries may reorder) is refused at start.
 *    Acknowledgements that come 3 s late, while more responses queue behind them, keep
 *    every response in its request's partition order, and the worker never stops. */
static void test_order_kept_when_acks_are_late(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res = SL_OK;
        char *log;
        const int n = 2000;
        (void)state;

        make_topics(&t);
        expect_refused(&t, "message_timeout_ms = 1500;", "message.timeout.ms = 1500");
        expect_refused(&t, "delivery_timeout_ms = 30000;", "delivery.timeout.ms = 30000");
        expect_refused(&t, "enable_idempotence = false;", "enable.idempotence = false");
        worker_start(&r, &t, NULL, "order");
        wait_assigned(&r);
        produce_requests(t.requests, 0, n / 2);
        sleep_ms(1000);
        /* Each broker answers its next Produce requests late while requests keep coming. */
        for (int b = 1; b <= N_BROKERS; b++)
                rd_kafka_mock_broker_push_request_error_rtts(mcluster, b, API_PRODUCE, 2, 0, 3000,
                                                             0, 3000);
        produce_requests(t.requests, n / 2, n);
        read_responses(t.responses, n, 60000, &tally);
        assert_false(r.done); /* it never stopped by itself */
        log = worker_stop(&r, &res);
        printf("[ordering] worker: KAFKA warnings x%zu, result %s\n", count_of(log, "fac=KAFKA"),
               sl_err_name(res));
        free(log);
        {
                int out_of_order = tally.out_of_order;
                tally_check("ordering", &tally);
                assert_int_equal(res, SL_OK);
                if (out_of_order)
                        fail_msg("%d responses published out of their requests' partition order "
                                 "after late acknowledgements",
                                 out_of_order);
        }
        n_passed++;
}

/* e) A Produce error librdkafka does not retry (TOPIC_AUTHORIZATION_FAILED): the worker stops
 *    with the failed response's request uncommitted; a restarted worker answers it. */
static void test_delivery_failed_for_good(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res1, res2;
        char *log1, *log2;
        const int n = 1000;
        (void)state;

        make_topics(&t);
        produce_requests(t.requests, 0, n);
        /* The responses partitions live on broker 2, the metrics topic on broker 1: the
         * worker's next Produce request to broker 2 (responses only) fails. One error only:
         * a second one left over would stop the restarted worker too. */
        for (int p = 0; p < 4; p++)
                rd_kafka_mock_partition_set_leader(mcluster, t.responses, p, 2);
        rd_kafka_mock_partition_set_leader(mcluster, t.metrics, 0, 1);
        rd_kafka_mock_broker_push_request_error_rtts(
            mcluster, 2, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0);
        worker_start(&r, &t, NULL, "forgood1");
        for (int i = 0; i < 200 && !r.done; i++)
                sleep_ms(100);
        assert_true(r.done); /* stopped by itself */
        log1 = worker_stop(&r, &res1);
        worker_start(&r, &t, NULL, "forgood2");
        read_responses(t.responses, n, 60000, &tally);
        log2 = worker_stop(&r, &res2);
        /* The error reaches the worker as a failed delivery report, or (once librdkafka has
         * marked the topic) as a produce call refused at once: either stops it. */
        printf("[failed for good] first worker: 'failed for good' x%zu, 'cannot produce' x%zu, "
               "result %s; restarted: result %s\n",
               count_of(log1, "failed for good"), count_of(log1, "cannot produce"),
               sl_err_name(res1), sl_err_name(res2));
        if (tally.unique != n || res1 != SL_ERR_KAFKA || res2 != SL_OK) {
                print_tail(log1, 3000);
                print_tail(log2, 3000);
        }
        assert_true(count_of(log1, "failed for good") + count_of(log1, "cannot produce") >= 1);
        assert_true(count_of(log1, "cannot produce") <= 1); /* said once, not per message */
        free(log1);
        free(log2);
        tally_check("failed for good + restart", &tally);
        assert_int_equal(res1, SL_ERR_KAFKA);
        assert_int_equal(res2, SL_OK);
        n_passed++;
}

/* ---- setup ---- */

/* f) Backpressure on the bytes of unacknowledged outputs. */
static void test_backpressure_bytes(void **state)
{
        topics_t t;
        run_t r;
        tally_t tally;
        sl_err_t res = SL_OK;
        char *log, *paused;
        const int n = 3000;
        long in_flight = -1, kib = -1;
        (void)state;

        make_topics(&t);
        /* 1 KiB: a few responses. One batch of 32 (~8 KiB) goes over it until acknowledged,
         * so the pause does not hang on which Produce requests the late acks below hit (the
         * worker's metrics records may take them: a 64 KiB bound then never paused in CI). */
        worker_extra = "max_in_flight_kbytes = 1;";
        worker_start(&r, &t, NULL, "bytes");
        worker_extra = "";
        wait_assigned(&r);
        /* Every broker answers its next Produce requests 3 s late: outputs pile up. */
        for (int b = 1; b <= N_BROKERS; b++)
                rd_kafka_mock_broker_push_request_error_rtts(mcluster, b, API_PRODUCE, 2, 0, 3000,
                                                             0, 3000);
        produce_requests(t.requests, 0, n);
        read_responses(t.responses, n, 60000, &tally);
        assert_false(r.done);
        log = worker_stop(&r, &res);
        paused = strstr(log, "msg=\"paused ");
        if (paused)
                sscanf(strstr(paused, ": ") ? strstr(paused, ": ") + 2 : paused,
                       "%ld messages in flight, %ld KiB", &in_flight, &kib);
        printf("[bytes] worker: paused x%zu, resumed x%zu; first pause at %ld messages, %ld KiB; "
               "result %s\n",
               count_of(log, "msg=\"paused "), count_of(log, "msg=\"resumed "), in_flight, kib,
               sl_err_name(res));
        if (!paused)
                print_tail(log, 3000);
        free(log);
        {
                int out_of_order = tally.out_of_order;
                tally_check("bytes", &tally);
                assert_int_equal(res, SL_OK);
                assert_int_equal(out_of_order, 0);
        }
        /* Paused on the bytes: at 1 KiB or more, with far fewer messages than their bound. */
        assert_non_null(paused);
        assert_true(kib >= 1);
        assert_true(in_flight >= 0 && in_flight < 10000); /* metrics records count too */
        n_passed++;
}

static int setup(void **state)
{
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        sl_codec_params_t cp;
        char errstr[1024], dir[512];
        (void)state;

        src_dir = getenv("SL_SOURCE_DIR") ? getenv("SL_SOURCE_DIR") : SL_SOURCE_DIR;
        rd_kafka_conf_set(kc, "log_level", "2", NULL, 0);
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
        if (!mock_rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", errstr);
                return -1;
        }
        if (!(mcluster = rd_kafka_mock_cluster_new(mock_rk, N_BROKERS))) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                return -1;
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        printf("mock cluster: %d brokers at %s (librdkafka %s)\n", N_BROKERS, bootstraps,
               rd_kafka_version_str());
        sl_codec_params_init(&cp);
        snprintf(dir, sizeof(dir), "%s/schemas", src_dir);
        cp.schema_dir = dir;
        if (sl_codec_new(&cp, &codec, errstr, sizeof(errstr))) {
                fprintf(stderr, "codec: %s\n", errstr);
                return -1;
        }
        snprintf(dir, sizeof(dir), "%s/models", src_dir);
        if (sl_repo_open(dir, &repo, errstr, sizeof(errstr))) {
                fprintf(stderr, "repo: %s\n", errstr);
                return -1;
        }
        sl_log_set_level_name(getenv("SL_LOG_LEVEL") ? getenv("SL_LOG_LEVEL") : "info");
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sl_repo_destroy(repo);
        sl_codec_destroy(codec);
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(mock_rk);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_produce_errors),
            cmocka_unit_test(test_commit_errors),
            cmocka_unit_test(test_coordinator_change),
            cmocka_unit_test(test_order_kept_when_acks_are_late),
            cmocka_unit_test(test_delivery_failed_for_good),
            cmocka_unit_test(test_backpressure_bytes),
        };
        int n = (int)(sizeof(tests) / sizeof(*tests));
        int failed;
        /* SL_FAULT_ONLY=test_name (a glob) runs one case. */
        if (getenv("SL_FAULT_ONLY")) {
                cmocka_set_test_filter(getenv("SL_FAULT_ONLY"));
                n = 1;
        }
        failed = cmocka_run_group_tests_name("fault_mock_cluster", tests, setup, teardown);
        printf("%d passed, %d failed\n", n_passed, n - n_passed);
        return failed || n_passed != n ? 1 : 0;
}
