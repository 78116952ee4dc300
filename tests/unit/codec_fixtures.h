/* Shared by the codec unit tests (test_codec*.c): a raw and a Confluent codec
 * made by the group setup, and a tiny Avro writer for hand-made requests.
 * Each test file is its own program and includes this once. */
#ifndef SL_TEST_CODEC_FIXTURES_H
#define SL_TEST_CODEC_FIXTURES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/codec_int.h"
#include "eval/eval.h"

#define ASSERT_CONTAINS(hay, needle)                                                               \
        do {                                                                                       \
                const char *h_ = (hay), *n_ = (needle);                                            \
                if (!h_ || !strstr(h_, n_)) {                                                      \
                        print_error("expected \"%s\" in \"%s\"\n", n_, h_ ? h_ : "(null)");        \
                        fail();                                                                    \
                }                                                                                  \
        } while (0)

static sl_codec_t *codecs[2]; /* [SL_FRAMING_RAW], [SL_FRAMING_CONFLUENT] */

static inline int setup(void **state)
{
        char dir[1024], errstr[512];
        const char *src = getenv("SL_SOURCE_DIR");
        sl_codec_params_t p;

        (void)state;
        snprintf(dir, sizeof(dir), "%s/schemas", src ? src : SL_SOURCE_DIR);
        for (int f = 0; f < 2; f++) {
                sl_codec_params_init(&p);
                p.schema_dir = dir;
                p.framing = (sl_framing_t)f;
                p.request_schema_id = 11;
                p.response_schema_id = 12;
                p.dead_letter_schema_id = 13;
                p.metrics_schema_id = 14;
                if (sl_codec_new(&p, &codecs[f], errstr, sizeof(errstr))) {
                        fprintf(stderr, "sl_codec_new: %s\n", errstr);
                        return -1;
                }
        }
        return 0;
}

static inline int teardown(void **state)
{
        (void)state;
        sl_codec_destroy(codecs[0]);
        sl_codec_destroy(codecs[1]);
        return 0;
}

/* ---- a tiny Avro writer for hand-made (hostile) requests ------------------ */

typedef struct {
        uint8_t b[8192];
        size_t n;
} wb_t;

static inline void w_long(wb_t *w, int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

        while (u >= 0x80) {
                w->b[w->n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        w->b[w->n++] = (uint8_t)u;
}

static inline void w_raw(wb_t *w, const void *p, size_t n)
{
        memcpy(w->b + w->n, p, n);
        w->n += n;
}

static inline void w_str(wb_t *w, const char *s)
{
        w_long(w, (int64_t)strlen(s));
        w_raw(w, s, strlen(s));
}

/* id, model_name, model_version=null, inputs block of one tensor named "x". */
static inline void req_head(wb_t *w)
{
        w->n = 0;
        w_str(w, "req-1");
        w_str(w, "mnist");
        w_long(w, 0);
        w_long(w, 1);
        w_str(w, "x");
}

/* end of inputs, outputs=null, parameters={}, label=null. */
static inline void req_tail(wb_t *w)
{
        w_long(w, 0);
        w_long(w, 0);
        w_long(w, 0);
        w_long(w, 0);
}

static inline void w_shape(wb_t *w, int n, const int64_t *dims)
{
        if (n) {
                w_long(w, n);
                for (int i = 0; i < n; i++)
                        w_long(w, dims[i]);
        }
        w_long(w, 0);
}

/* Decode \p w with the raw codec and expect \p want; check errstr and id. */
static inline void expect(const wb_t *w, sl_err_t want, const char *msg, const char *want_id)
{
        sl_request_t *req = NULL;
        char errstr[512] = "", *id = NULL;
        sl_err_t err;

        err = sl_codec_decode_request(codecs[SL_FRAMING_RAW], w->b, w->n, &req, &id, errstr,
                                      sizeof(errstr));
        if (err != want)
                print_error("got %s (%s), want %s\n", sl_err_name(err), errstr, sl_err_name(want));
        assert_int_equal(err, want);
        if (want == SL_OK) {
                assert_non_null(req);
        } else {
                assert_null(req);
                ASSERT_CONTAINS(errstr, msg);
        }
        if (want_id) {
                assert_non_null(id);
                assert_string_equal(id, want_id);
        } else if (want != SL_OK) {
                assert_null(id);
        }
        free(id);
        sl_request_destroy(req);
}

/* One tensor of each datatype: the round trips and the truncation of a real
 * request. Unused in some of the test programs. */
static float f32[6] = {0.5f, -1.25f, 3.0f, 1e-7f, -0.0f, 42.0f};
static double f64[3] = {1.0 / 3, -2.5e100, 0.0};
static int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
static int32_t i32[4] = {INT32_MIN, 0, 7, INT32_MAX};
static int16_t i16[2] = {-32768, 32767};
static uint16_t u16[2] = {0, 65535};
static int8_t i8[3] = {-128, 0, 127};
static uint8_t u8[2] = {0, 255};
static uint8_t bools[3] = {1, 0, 1};
static uint16_t f16[2] = {0x3c00, 0xc000};
static uint32_t u32[1] = {4000000000u};
static uint64_t u64[1] = {UINT64_MAX};

#define T(nm, dt, nd, d0, d1, arr)                                                                 \
        {                                                                                          \
                (char *)nm,                                                                        \
                {                                                                                  \
                        dt, nd, {d0, d1}, (void *)arr, sizeof(arr)                                 \
                }                                                                                  \
        }

static sl_named_tensor_t tensors[] __attribute__((unused)) = {
    T("fp32", SL_DT_FLOAT, 2, 2, 3, f32),    T("fp64", SL_DT_DOUBLE, 1, 3, 0, f64),
    T("int64", SL_DT_INT64, 1, 3, 0, i64),   T("int32", SL_DT_INT32, 2, 2, 2, i32),
    T("int16", SL_DT_INT16, 1, 2, 0, i16),   T("uint16", SL_DT_UINT16, 1, 2, 0, u16),
    T("int8", SL_DT_INT8, 1, 3, 0, i8),      T("uint8", SL_DT_UINT8, 2, 1, 2, u8),
    T("bool", SL_DT_BOOL, 1, 3, 0, bools),   T("fp16", SL_DT_FLOAT16, 1, 2, 0, f16),
    T("uint32", SL_DT_UINT32, 0, 0, 0, u32), T("uint64", SL_DT_UINT64, 1, 1, 0, u64),
};
#define N_TENSORS (sizeof(tensors) / sizeof(tensors[0]))

#endif /* SL_TEST_CODEC_FIXTURES_H */
