/* Unit tests of worker/obs: exposition text, escaping, concurrency, HTTP endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "obs/obs.h"

#define ASSERT_CONTAINS(hay, needle)                                                               \
        do {                                                                                       \
                const char *h_ = (hay), *n_ = (needle);                                            \
                if (!strstr(h_, n_)) {                                                             \
                        print_error("expected \"%s\" in \"%s\"\n", n_, h_);                        \
                        fail();                                                                    \
                }                                                                                  \
        } while (0)

static sl_obs_family_t *family(sl_obs_registry_t *reg, sl_obs_type_t type, const char *name,
                               const char *help, const char *labels, const double *buckets,
                               size_t n_buckets)
{
        sl_obs_family_t *fam = NULL;
        char errstr[256] = "";
        sl_err_t err = sl_obs_family_new(reg, type, name, help, labels, buckets, n_buckets, &fam,
                                         errstr, sizeof(errstr));
        if (err)
                print_error("%s\n", errstr);
        assert_int_equal(err, SL_OK);
        assert_non_null(fam);
        return fam;
}

/* Renders \p reg and compares with \p want exactly. */
static void assert_render(sl_obs_registry_t *reg, const char *want)
{
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(sl_obs_registry_render(reg, &text, &len), SL_OK);
        assert_non_null(text);
        assert_int_equal(len, strlen(text));
        assert_string_equal(text, want);
        free(text);
}

static void test_counter_text(void **state)
{
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *plain, *req;
        (void)state;
        plain =
            family(reg, SL_OBS_COUNTER, "sluice_commits_total", "Offset commits.", NULL, NULL, 0);
        req = family(reg, SL_OBS_COUNTER, "sluice_requests_total", "Requests decoded.",
                     "model,version", NULL, 0);
        sl_obs_counter_t *a = sl_obs_counter_child(req, "fashion_cnn", "1");
        sl_obs_counter_t *b = sl_obs_counter_child(req, "mnist", "3");
        assert_ptr_equal(sl_obs_counter_child(req, "fashion_cnn", "1"), a);
        sl_obs_counter_add(a, 41);
        sl_obs_counter_inc(a);
        sl_obs_counter_inc(b);
        sl_obs_counter_add(sl_obs_counter_child(plain), 7);
        sl_obs_counter_inc(NULL); /* accepted */
        assert_int_equal(sl_obs_counter_get(a), 42);
        assert_render(reg, "# HELP sluice_commits_total Offset commits.\n"
                           "# TYPE sluice_commits_total counter\n"
                           "sluice_commits_total 7\n"
                           "# HELP sluice_requests_total Requests decoded.\n"
                           "# TYPE sluice_requests_total counter\n"
                           "sluice_requests_total{model=\"fashion_cnn\",version=\"1\"} 42\n"
                           "sluice_requests_total{model=\"mnist\",version=\"3\"} 1\n");
        sl_obs_registry_destroy(reg);
}

static void test_gauge_text(void **state)
{
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *lag, *drain, *nohelp;
        (void)state;
        lag = family(reg, SL_OBS_GAUGE, "sluice_consumer_lag", "Lag.", "topic,partition", NULL, 0);
        drain = family(reg, SL_OBS_GAUGE, "drain_seconds", "Drain.", "", NULL, 0);
        nohelp = family(reg, SL_OBS_GAUGE, "x:y", NULL, "k", NULL, 0);
        sl_obs_gauge_set(sl_obs_gauge_child(lag, "req", "0"), 12345);
        sl_obs_gauge_t *p1 = sl_obs_gauge_child(lag, "req", "1");
        sl_obs_gauge_set(p1, 3);
        sl_obs_gauge_add(p1, -0.5);
        sl_obs_gauge_set(sl_obs_gauge_child(lag, "req", "2"), 1e6);
        sl_obs_gauge_set(sl_obs_gauge_child(drain), 0.1);
        sl_obs_gauge_set(sl_obs_gauge_child(nohelp, "inf"), INFINITY);
        sl_obs_gauge_set(sl_obs_gauge_child(nohelp, "-inf"), -INFINITY);
        sl_obs_gauge_set(sl_obs_gauge_child(nohelp, "nan"), NAN);
        sl_obs_gauge_set(sl_obs_gauge_child(nohelp, "small"), 1.5e-7);
        sl_obs_gauge_set(sl_obs_gauge_child(nohelp, "third"), 1.0 / 3);
        assert_true(sl_obs_gauge_get(p1) == 2.5);
        assert_render(reg, "# HELP sluice_consumer_lag Lag.\n"
                           "# TYPE sluice_consumer_lag gauge\n"
                           "sluice_consumer_lag{topic=\"req\",partition=\"0\"} 12345\n"
                           "sluice_consumer_lag{topic=\"req\",partition=\"1\"} 2.5\n"
                           "sluice_consumer_lag{topic=\"req\",partition=\"2\"} 1e+06\n"
                           "# HELP drain_seconds Drain.\n"
                           "# TYPE drain_seconds gauge\n"
                           "drain_seconds 0.1\n"
                           "# TYPE x:y gauge\n"
                           "x:y{k=\"inf\"} +Inf\n"
                           "x:y{k=\"-inf\"} -Inf\n"
                           "x:y{k=\"nan\"} NaN\n"
                           "x:y{k=\"small\"} 1.5e-07\n"
                           "x:y{k=\"third\"} 0.3333333333333333\n");

        /* A removed series disappears; its handle stays valid; lookup revives it. */
        sl_obs_family_remove(lag, "req", "0");
        sl_obs_family_remove(lag, "req", "2");
        sl_obs_family_remove(lag, "nosuch", "9");
        sl_obs_gauge_set(p1, 4);
        sl_obs_family_remove(nohelp, "inf");
        sl_obs_family_remove(nohelp, "-inf");
        sl_obs_family_remove(nohelp, "nan");
        sl_obs_family_remove(nohelp, "small");
        sl_obs_family_remove(nohelp, "third");
        assert_render(reg, "# HELP sluice_consumer_lag Lag.\n"
                           "# TYPE sluice_consumer_lag gauge\n"
                           "sluice_consumer_lag{topic=\"req\",partition=\"1\"} 4\n"
                           "# HELP drain_seconds Drain.\n"
                           "# TYPE drain_seconds gauge\n"
                           "drain_seconds 0.1\n");
        sl_obs_gauge_set(sl_obs_gauge_child(lag, "req", "0"), 5);
        sl_obs_family_remove(lag, "req", "1");
        assert_render(reg, "# HELP sluice_consumer_lag Lag.\n"
                           "# TYPE sluice_consumer_lag gauge\n"
                           "sluice_consumer_lag{topic=\"req\",partition=\"0\"} 5\n"
                           "# HELP drain_seconds Drain.\n"
                           "# TYPE drain_seconds gauge\n"
                           "drain_seconds 0.1\n");
        sl_obs_registry_destroy(reg);
}

static void test_histogram_text(void **state)
{
        static const double bounds[] = {0.005, 0.5, 1, 2.5, INFINITY};
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *lat, *plain;
        sl_obs_histogram_t *h;
        (void)state;
        lat = family(reg, SL_OBS_HISTOGRAM, "lat_seconds", "Latency.", "model", bounds, 5);
        plain = family(reg, SL_OBS_HISTOGRAM, "batch", "Batch.", NULL, bounds, 4);
        h = sl_obs_histogram_child(lat, "m");
        sl_obs_histogram_observe(h, 0.005); /* le is inclusive */
        sl_obs_histogram_observe(h, 0.25);
        sl_obs_histogram_observe(h, 1);
        sl_obs_histogram_observe(h, 3);
        sl_obs_histogram_observe(h, NAN); /* ignored */
        sl_obs_histogram_observe(sl_obs_histogram_child(plain), 0.75);
        assert_int_equal(sl_obs_histogram_count(h), 4);
        assert_render(reg, "# HELP lat_seconds Latency.\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{model=\"m\",le=\"0.005\"} 1\n"
                           "lat_seconds_bucket{model=\"m\",le=\"0.5\"} 2\n"
                           "lat_seconds_bucket{model=\"m\",le=\"1\"} 3\n"
                           "lat_seconds_bucket{model=\"m\",le=\"2.5\"} 3\n"
                           "lat_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
                           "lat_seconds_sum{model=\"m\"} 4.255\n"
                           "lat_seconds_count{model=\"m\"} 4\n"
                           "# HELP batch Batch.\n"
                           "# TYPE batch histogram\n"
                           "batch_bucket{le=\"0.005\"} 0\n"
                           "batch_bucket{le=\"0.5\"} 0\n"
                           "batch_bucket{le=\"1\"} 1\n"
                           "batch_bucket{le=\"2.5\"} 1\n"
                           "batch_bucket{le=\"+Inf\"} 1\n"
                           "batch_sum 0.75\n"
                           "batch_count 1\n");
        sl_obs_registry_destroy(reg);
}

static void test_escaping(void **state)
{
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *f;
        (void)state;
        f = family(reg, SL_OBS_COUNTER, "esc_total", "Help with \\ and\nnewline and \"quotes\".",
                   "a,b", NULL, 0);
        sl_obs_counter_inc(sl_obs_counter_child(f, "back\\slash \"q\"\nnl", NULL));
        assert_render(reg, "# HELP esc_total Help with \\\\ and\\nnewline and \"quotes\".\n"
                           "# TYPE esc_total counter\n"
                           "esc_total{a=\"back\\\\slash \\\"q\\\"\\nnl\",b=\"\"} 1\n");
        sl_obs_registry_destroy(reg);
}

static void test_info(void **state)
{
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *f;
        (void)state;
        f = family(reg, SL_OBS_GAUGE, "sluice_openblas_core_info", "Core.", "core", NULL, 0);
        assert_int_equal(sl_obs_info_set(f, "Prescott"), SL_OK);
        assert_int_equal(sl_obs_info_set(f, "SkylakeX"), SL_OK);
        assert_render(reg, "# HELP sluice_openblas_core_info Core.\n"
                           "# TYPE sluice_openblas_core_info gauge\n"
                           "sluice_openblas_core_info{core=\"SkylakeX\"} 1\n");
        sl_obs_registry_destroy(reg);
}

static void expect_invalid(sl_obs_registry_t *reg, sl_obs_type_t type, const char *name,
                           const char *labels, const double *b, size_t nb, const char *msg)
{
        sl_obs_family_t *fam = (sl_obs_family_t *)1;
        char errstr[256] = "";
        assert_int_equal(
            sl_obs_family_new(reg, type, name, "h", labels, b, nb, &fam, errstr, sizeof(errstr)),
            SL_ERR_INVALID_ARG);
        assert_null(fam);
        ASSERT_CONTAINS(errstr, msg);
}

static void test_invalid(void **state)
{
        static const double good[] = {1, 2}, bad[] = {2, 1}, nan[] = {NAN};
        sl_obs_registry_t *reg = sl_obs_registry_new();
        (void)state;
        family(reg, SL_OBS_COUNTER, "dup_total", "h", NULL, NULL, 0);
        expect_invalid(reg, SL_OBS_COUNTER, "dup_total", NULL, NULL, 0,
                       "metric dup_total: already registered");
        expect_invalid(reg, SL_OBS_COUNTER, "9x", NULL, NULL, 0, "invalid metric name \"9x\"");
        expect_invalid(reg, SL_OBS_COUNTER, "a-b", NULL, NULL, 0, "invalid metric name");
        expect_invalid(reg, SL_OBS_COUNTER, "c", "model,", NULL, 0, "invalid label name \"\"");
        expect_invalid(reg, SL_OBS_COUNTER, "c", "a:b", NULL, 0, "invalid label name \"a:b\"");
        expect_invalid(reg, SL_OBS_COUNTER, "c", "__x", NULL, 0, "invalid label name \"__x\"");
        expect_invalid(reg, SL_OBS_COUNTER, "c", "m,v,m", NULL, 0, "label \"m\" repeated");
        expect_invalid(reg, SL_OBS_COUNTER, "c", "a,b,c,d,e,f,g,h,i", NULL, 0,
                       "more than 8 labels");
        expect_invalid(reg, SL_OBS_HISTOGRAM, "h", "le", good, 2, "invalid label name \"le\"");
        expect_invalid(reg, SL_OBS_HISTOGRAM, "h", NULL, bad, 2, "metric h: bucket 1 (1)");
        expect_invalid(reg, SL_OBS_HISTOGRAM, "h", NULL, nan, 1, "bucket 0");
        expect_invalid(reg, SL_OBS_HISTOGRAM, "h", NULL, NULL, 0, "metric h: 0 buckets");
        expect_invalid(reg, SL_OBS_GAUGE, "g", NULL, good, 2, "buckets given for a gauge");
        /* "le" is fine outside histograms; nothing invalid was registered. */
        family(reg, SL_OBS_GAUGE, "g", "h", "le", NULL, 0);
        assert_render(reg, "# HELP dup_total h\n# TYPE dup_total counter\ndup_total 0\n");
        sl_obs_registry_destroy(reg);
        sl_obs_registry_destroy(NULL);
}

/* ---- concurrency ---- */

#define ROUNDS 200000

typedef struct {
        sl_obs_registry_t *reg;
        sl_obs_family_t *cf, *gf, *hf;
        atomic_int go;
} race_t;

static void *racer(void *arg)
{
        race_t *r = arg;
        /* Each thread resolves its own handles: lookup races creation too. */
        sl_obs_counter_t *c = sl_obs_counter_child(r->cf, "m", "1");
        sl_obs_gauge_t *g = sl_obs_gauge_child(r->gf);
        sl_obs_histogram_t *h = sl_obs_histogram_child(r->hf, "m");
        while (!atomic_load(&r->go))
                ;
        for (int i = 0; i < ROUNDS; i++) {
                sl_obs_counter_inc(c);
                sl_obs_gauge_add(g, 1);
                sl_obs_histogram_observe(h, (i & 1) ? 0.5 : 2);
        }
        return NULL;
}

static void *scraper(void *arg)
{
        race_t *r = arg;
        while (!atomic_load(&r->go))
                ;
        for (int i = 0; i < 50; i++) {
                char *text = NULL;
                assert_int_equal(sl_obs_registry_render(r->reg, &text, NULL), SL_OK);
                free(text);
        }
        return NULL;
}

static void test_concurrent(void **state)
{
        static const double b[] = {1};
        race_t r;
        pthread_t t[3];
        (void)state;
        memset(&r, 0, sizeof(r));
        r.reg = sl_obs_registry_new();
        r.cf = family(r.reg, SL_OBS_COUNTER, "c_total", "c", "model,version", NULL, 0);
        r.gf = family(r.reg, SL_OBS_GAUGE, "g", "g", NULL, NULL, 0);
        r.hf = family(r.reg, SL_OBS_HISTOGRAM, "h", "h", "model", b, 1);
        assert_int_equal(pthread_create(&t[0], NULL, racer, &r), 0);
        assert_int_equal(pthread_create(&t[1], NULL, racer, &r), 0);
        assert_int_equal(pthread_create(&t[2], NULL, scraper, &r), 0);
        atomic_store(&r.go, 1);
        for (int i = 0; i < 3; i++)
                pthread_join(t[i], NULL);
        assert_int_equal(sl_obs_counter_get(sl_obs_counter_child(r.cf, "m", "1")), 2 * ROUNDS);
        assert_true(sl_obs_gauge_get(sl_obs_gauge_child(r.gf)) == 2.0 * ROUNDS);
        assert_int_equal(sl_obs_histogram_count(sl_obs_histogram_child(r.hf, "m")), 2 * ROUNDS);
        assert_render(r.reg, "# HELP c_total c\n# TYPE c_total counter\n"
                             "c_total{model=\"m\",version=\"1\"} 400000\n"
                             "# HELP g g\n# TYPE g gauge\ng 400000\n"
                             "# HELP h h\n# TYPE h histogram\n"
                             "h_bucket{model=\"m\",le=\"1\"} 200000\n"
                             "h_bucket{model=\"m\",le=\"+Inf\"} 400000\n"
                             "h_sum{model=\"m\"} 500000\n"
                             "h_count{model=\"m\"} 400000\n");
        sl_obs_registry_destroy(r.reg);
}

/* ---- the standard set ---- */

static void test_standard_metrics(void **state)
{
        sl_obs_metrics_t *m = sl_obs_metrics_new();
        sl_obs_model_metrics_t mm;
        char *text = NULL;
        (void)state;
        assert_non_null(m);
        assert_int_equal(sl_obs_metrics_model(m, "fashion_cnn", "1", &mm), SL_OK);
        sl_obs_counter_inc(mm.requests);
        sl_obs_histogram_observe(mm.batch_size, 3);
        sl_obs_gauge_set(mm.loaded, 1);
        sl_obs_counter_inc(sl_obs_counter_child(m->errors, "fashion_cnn", "1", "SHAPE"));
        sl_obs_counter_inc(sl_obs_counter_child(m->dead_letters, "DECODE"));
        sl_obs_gauge_set(sl_obs_gauge_child(m->consumer_lag, "sluice.requests", "0"), 10);
        sl_obs_info_set(m->openblas_core_info, "Haswell");
        sl_obs_counter_inc(m->commits);
        sl_obs_gauge_set(m->in_flight, 2);

        assert_int_equal(sl_obs_registry_render(m->reg, &text, NULL), SL_OK);
        /* No accuracy before the first labelled response. */
        assert_null(strstr(text, "sluice_accuracy{"));
        ASSERT_CONTAINS(text, "sluice_requests_total{model=\"fashion_cnn\",version=\"1\"} 1\n");
        ASSERT_CONTAINS(text, "sluice_errors_total{model=\"fashion_cnn\",version=\"1\","
                              "code=\"SHAPE\"} 1\n");
        ASSERT_CONTAINS(text, "sluice_dead_letters_total{code=\"DECODE\"} 1\n");
        ASSERT_CONTAINS(text, "sluice_batch_size_bucket{model=\"fashion_cnn\",version=\"1\","
                              "le=\"2\"} 0\n"
                              "sluice_batch_size_bucket{model=\"fashion_cnn\",version=\"1\","
                              "le=\"4\"} 1\n");
        ASSERT_CONTAINS(text, "sluice_request_latency_seconds_bucket{model=\"fashion_cnn\","
                              "version=\"1\",le=\"0.001\"} 0\n");
        ASSERT_CONTAINS(text, "sluice_request_latency_seconds_bucket{model=\"fashion_cnn\","
                              "version=\"1\",le=\"30\"} 0\n");
        ASSERT_CONTAINS(text, "# TYPE sluice_queue_seconds histogram\n");
        ASSERT_CONTAINS(text, "# TYPE sluice_inference_seconds histogram\n");
        ASSERT_CONTAINS(text,
                        "sluice_consumer_lag{topic=\"sluice.requests\",partition=\"0\"} 10\n");
        ASSERT_CONTAINS(text, "sluice_model_loaded{model=\"fashion_cnn\",version=\"1\"} 1\n");
        ASSERT_CONTAINS(text, "sluice_openblas_core_info{core=\"Haswell\"} 1\n");
        ASSERT_CONTAINS(text, "\nsluice_commits_total 1\n");
        ASSERT_CONTAINS(text, "\nsluice_rebalances_total 0\n");
        ASSERT_CONTAINS(text, "\nsluice_partitions_paused 0\n");
        ASSERT_CONTAINS(text, "\nsluice_in_flight_messages 2\n");
        ASSERT_CONTAINS(text, "\nsluice_backlog_drain_seconds 0\n");
        free(text);

        sl_obs_model_metrics_label(&mm, 1);
        sl_obs_model_metrics_label(&mm, 0);
        sl_obs_model_metrics_label(&mm, 1);
        sl_obs_model_metrics_label(&mm, 1);
        assert_int_equal(sl_obs_registry_render(m->reg, &text, NULL), SL_OK);
        ASSERT_CONTAINS(text, "sluice_accuracy{model=\"fashion_cnn\",version=\"1\"} 0.75\n");
        ASSERT_CONTAINS(text, "sluice_labelled_total{model=\"fashion_cnn\",version=\"1\"} 4\n");
        ASSERT_CONTAINS(text, "sluice_correct_total{model=\"fashion_cnn\",version=\"1\"} 3\n");
        free(text);
        sl_obs_metrics_destroy(m);
        sl_obs_metrics_destroy(NULL);
}

/* ---- HTTP ---- */

/* A port that was free a moment ago (bind 127.0.0.1:0, read it, close). */
static int free_port(void)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;
        assert_true(fd >= 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

/* One HTTP/1.0 request; returns the status code, the body in \p body and the
 * headers in \p head (both NUL-terminated). */
static int http_req(int port, const char *method, const char *path, char *head, size_t head_size,
                    char *body, size_t body_size)
{
        static char resp[1 << 16];
        struct sockaddr_in sa;
        char req[256];
        size_t len = 0;
        ssize_t n;
        int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
        const char *sep;
        assert_true(fd >= 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        while (len < sizeof(resp) - 1 && (n = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
                len += (size_t)n;
        close(fd);
        resp[len] = '\0';
        assert_int_equal(sscanf(resp, "HTTP/1.%*d %d", &status), 1);
        sep = strstr(resp, "\r\n\r\n");
        assert_non_null(sep);
        snprintf(head, head_size, "%.*s", (int)(sep - resp), resp);
        snprintf(body, body_size, "%s", sep + 4);
        return status;
}

typedef struct {
        atomic_int live, ready;
} probe_state_t;

static int live_cb(void *opaque, char *reason, size_t reason_size)
{
        probe_state_t *s = opaque;
        if (atomic_load(&s->live))
                return 1;
        snprintf(reason, reason_size, "no progress for 31 s");
        return 0;
}

static int ready_cb(void *opaque, char *reason, size_t reason_size)
{
        probe_state_t *s = opaque;
        if (atomic_load(&s->ready))
                return 1;
        snprintf(reason, reason_size, "no partitions assigned");
        return 0;
}

static void test_http(void **state)
{
        sl_obs_registry_t *reg = sl_obs_registry_new();
        sl_obs_family_t *f = family(reg, SL_OBS_COUNTER, "hits_total", "Hits.", "k", NULL, 0);
        probe_state_t ps;
        sl_obs_http_params_t params;
        sl_obs_http_t *http = NULL, *http2 = NULL;
        char head[4096], body[8192], errstr[256] = "", want[128];
        int port = free_port();
        (void)state;

        atomic_init(&ps.live, 1);
        atomic_init(&ps.ready, 0);
        memset(&params, 0, sizeof(params));
        params.bind_address = "127.0.0.1";
        params.port = port;
        params.reg = reg;
        params.live_cb = live_cb;
        params.ready_cb = ready_cb;
        params.opaque = &ps;
        assert_int_equal(sl_obs_http_start(&params, &http, errstr, sizeof(errstr)), SL_OK);
        assert_non_null(http);
        assert_int_equal(sl_obs_http_port(http), port);

        sl_obs_counter_add(sl_obs_counter_child(f, "a\"b"), 3);
        assert_int_equal(http_req(port, "GET", "/metrics", head, sizeof(head), body, sizeof(body)),
                         200);
        ASSERT_CONTAINS(head, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
        assert_string_equal(body, "# HELP hits_total Hits.\n# TYPE hits_total counter\n"
                                  "hits_total{k=\"a\\\"b\"} 3\n");

        assert_int_equal(http_req(port, "GET", "/healthz", head, sizeof(head), body, sizeof(body)),
                         200);
        assert_string_equal(body, "ok\n");
        assert_int_equal(http_req(port, "GET", "/readyz", head, sizeof(head), body, sizeof(body)),
                         503);
        assert_string_equal(body, "no partitions assigned\n");
        atomic_store(&ps.ready, 1);
        assert_int_equal(
            http_req(port, "GET", "/readyz?verbose", head, sizeof(head), body, sizeof(body)), 200);
        assert_string_equal(body, "ok\n");
        atomic_store(&ps.ready, 0);
        assert_int_equal(http_req(port, "GET", "/readyz", head, sizeof(head), body, sizeof(body)),
                         503);
        atomic_store(&ps.live, 0);
        assert_int_equal(http_req(port, "GET", "/healthz", head, sizeof(head), body, sizeof(body)),
                         503);
        assert_string_equal(body, "no progress for 31 s\n");

        assert_int_equal(http_req(port, "GET", "/nope", head, sizeof(head), body, sizeof(body)),
                         404);
        assert_int_equal(http_req(port, "POST", "/metrics", head, sizeof(head), body, sizeof(body)),
                         405);
        ASSERT_CONTAINS(head, "Allow: GET, HEAD");
        assert_int_equal(http_req(port, "HEAD", "/healthz", head, sizeof(head), body, sizeof(body)),
                         503);
        assert_string_equal(body, "");

        /* A second server on the same port names the address and the reason. */
        assert_int_equal(sl_obs_http_start(&params, &http2, errstr, sizeof(errstr)), SL_ERR_IO);
        assert_null(http2);
        snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: Address already in use", port);
        assert_string_equal(errstr, want);

        sl_obs_http_stop(http);
        sl_obs_http_stop(NULL);

        /* Port 0 disables the server; the port is free again after stop. */
        params.port = 0;
        assert_int_equal(sl_obs_http_start(&params, &http2, errstr, sizeof(errstr)), SL_OK);
        assert_null(http2);
        params.port = 70000;
        assert_int_equal(sl_obs_http_start(&params, &http2, errstr, sizeof(errstr)),
                         SL_ERR_INVALID_ARG);
        params.port = port;
        params.bind_address = "no.such.host.invalid";
        assert_int_equal(sl_obs_http_start(&params, &http2, errstr, sizeof(errstr)), SL_ERR_IO);
        ASSERT_CONTAINS(errstr, "cannot listen on no.such.host.invalid:");
        params.bind_address = "127.0.0.1";
        params.reg = NULL;
        params.live_cb = params.ready_cb = NULL;
        assert_int_equal(sl_obs_http_start(&params, &http2, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(http_req(port, "GET", "/metrics", head, sizeof(head), body, sizeof(body)),
                         200);
        assert_string_equal(body, "");
        assert_int_equal(http_req(port, "GET", "/readyz", head, sizeof(head), body, sizeof(body)),
                         200);
        sl_obs_http_stop(http2);
        sl_obs_registry_destroy(reg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_counter_text),   cmocka_unit_test(test_gauge_text),
            cmocka_unit_test(test_histogram_text), cmocka_unit_test(test_escaping),
            cmocka_unit_test(test_info),           cmocka_unit_test(test_invalid),
            cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_standard_metrics),
            cmocka_unit_test(test_http),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
