/* Unit tests of worker/codec: hostile request bytes (truncation at every
 * offset, hostile lengths and union branches, bad tensors) decode to an
 * error that names the fault, never a crash or a leak. */
#include "codec_fixtures.h"

/* ---- hostile requests ----------------------------------------------------- */

static void test_truncation_everywhere(void **state)
{
        sl_request_t in = {.id = "req-7",
                           .model_name = "mnist",
                           .model_version = "1",
                           .n_inputs = 4,
                           .inputs = tensors,
                           .has_label = 1,
                           .label = 3};
        sl_request_t *out;
        char errstr[256], *id;
        void *buf;
        size_t len;

        (void)state;
        for (int typed = 0; typed < 2; typed++) {
                assert_int_equal(sl_codec_encode_request(codecs[0], &in, typed, &buf, &len), SL_OK);
                /* Every strict prefix fails cleanly; past the id, the id is returned. */
                for (size_t n = 0; n < len; n++) {
                        sl_err_t err = sl_codec_decode_request(codecs[0], buf, n, &out, &id, errstr,
                                                               sizeof(errstr));
                        assert_int_equal(err, n ? SL_ERR_DECODE : SL_ERR_FRAMING);
                        assert_null(out);
                        if (n >= 6)
                                assert_string_equal(id, "req-7");
                        else
                                assert_null(id);
                        free(id);
                }
                /* Trailing bytes. */
                uint8_t *longer = malloc(len + 1);
                memcpy(longer, buf, len);
                longer[len] = 0;
                assert_int_equal(sl_codec_decode_request(codecs[0], longer, len + 1, &out, &id,
                                                         errstr, sizeof(errstr)),
                                 SL_ERR_DECODE);
                ASSERT_CONTAINS(errstr, "1 trailing bytes");
                assert_string_equal(id, "req-7");
                free(id);
                free(longer);
                free(buf);
        }
}

static void test_hostile_lengths(void **state)
{
        wb_t w;

        (void)state;
        /* Declared string length far beyond the value. */
        w.n = 0;
        w_long(&w, 1000000000000);
        w_raw(&w, "abc", 3);
        expect(&w, SL_ERR_DECODE, "id: length 1000000000000 exceeds remaining 3 bytes", NULL);
        /* Negative string length. */
        w.n = 0;
        w_long(&w, -5);
        expect(&w, SL_ERR_DECODE, "id: negative length -5", NULL);
        /* Over-long varint. */
        w.n = 0;
        w_raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
        expect(&w, SL_ERR_DECODE, "id: varint", NULL);
        /* Shape block count 1e12. */
        req_head(&w);
        w_str(&w, "FP32");
        w_long(&w, 1000000000000);
        w_raw(&w, "\x02\x02", 2);
        expect(&w, SL_ERR_DECODE, "inputs[0].shape: block count 1000000000000 exceeds remaining 2",
               "req-1");
        /* Negative block count with an oversized block size. */
        req_head(&w);
        w_str(&w, "FP32");
        w_long(&w, -1);
        w_long(&w, 1000);
        w_long(&w, 2);
        expect(&w, SL_ERR_DECODE, "inputs[0].shape: block size 1000 exceeds remaining", "req-1");
        /* Inputs block count 1e9 of tensors. */
        w.n = 0;
        w_str(&w, "req-1");
        w_str(&w, "mnist");
        w_long(&w, 0);
        w_long(&w, 1000000000);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        expect(&w, SL_ERR_DECODE, "inputs: block count 1000000000 exceeds remaining 8", "req-1");
        /* fp32_contents block count larger than the bytes can hold. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 1);
        w_long(&w, 3);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        expect(&w, SL_ERR_DECODE, "inputs[0].data.fp32_contents: block count 3 exceeds remaining",
               "req-1");
        /* Raw data length beyond the message. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 1 << 30);
        expect(&w, SL_ERR_DECODE, "inputs[0].data: length 1073741824 exceeds remaining 0", "req-1");
        /* Parameters map block count. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 4);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 5000);
        w_raw(&w, "\0\0", 2);
        expect(&w, SL_ERR_DECODE, "parameters: block count 5000 exceeds remaining 2", "req-1");
}

static void test_hostile_unions(void **state)
{
        wb_t w;

        (void)state;
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, 2);
        expect(&w, SL_ERR_DECODE, "model_version: union branch index 2 out of range", "r");
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, -1);
        expect(&w, SL_ERR_DECODE, "model_version: union branch index -1", "r");
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 6);
        expect(&w, SL_ERR_DECODE, "inputs[0].data: union branch index 6 out of range", "req-1");
        /* label = 7 then a stray byte. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_long(&w, 4);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 1);
        w_long(&w, 7);
        w_long(&w, 0);
        expect(&w, SL_ERR_DECODE, "1 trailing bytes", "req-1");
        /* Invalid boolean byte. */
        req_head(&w);
        w_str(&w, "BOOL");
        w_shape(&w, 0, NULL);
        w_long(&w, 5);
        w_long(&w, 1);
        w_raw(&w, "\x02", 1);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_DECODE, "inputs[0].data.bool_contents: boolean byte 0x02", "req-1");
        /* Strings: NUL and invalid UTF-8. */
        w.n = 0;
        w_long(&w, 3);
        w_raw(&w, "a\0b", 3);
        expect(&w, SL_ERR_DECODE, "id: string contains a NUL byte", NULL);
        w.n = 0;
        w_str(&w, "r");
        w_long(&w, 2);
        w_raw(&w, "\xc0\xaf", 2);
        expect(&w, SL_ERR_DECODE, "model_name: string is not valid UTF-8", "r");
}

/* A single tensor with \p datatype, \p shape and raw \p nbytes of zeros. */
static void raw_tensor(wb_t *w, const char *datatype, int ndim, const int64_t *dims, size_t nbytes)
{
        static const uint8_t zeros[256];

        req_head(w);
        w_str(w, datatype);
        w_shape(w, ndim, dims);
        w_long(w, 0);
        w_long(w, (int64_t)nbytes);
        w_raw(w, zeros, nbytes);
        req_tail(w);
}

static void test_bad_tensors(void **state)
{
        static const int64_t d23[] = {2, 3}, dneg[] = {2, -3}, dbig[] = {1LL << 40, 1LL << 40};
        static const int64_t d9[] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, d0[] = {0, 1LL << 62, 4};
        wb_t w;

        (void)state;
        raw_tensor(&w, "FP32", 2, d23, 24);
        expect(&w, SL_OK, NULL, NULL);
        raw_tensor(&w, "FP32", 3, d0, 0); /* empty: a zero dimension wins */
        expect(&w, SL_OK, NULL, NULL);
        raw_tensor(&w, "FLOAT32", 2, d23, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].datatype: unknown datatype \"FLOAT32\"", "req-1");
        raw_tensor(&w, "FP32", 2, dneg, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].shape: [2,-3] has a negative dimension", "req-1");
        raw_tensor(&w, "FP32", 2, dbig, 0);
        expect(&w, SL_ERR_BAD_REQUEST, "overflows", "req-1");
        raw_tensor(&w, "FP32", 9, d9, 4);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].shape: rank 9 exceeds 8", "req-1");
        raw_tensor(&w, "FP32", 2, d23, 23);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].data: 23 bytes, but shape [2,3] of FP32 needs 24",
               "req-1");
        raw_tensor(&w, "INT64", 2, d23, 24);
        expect(&w, SL_ERR_BAD_REQUEST, "needs 48", "req-1");
        req_head(&w);
        w_str(&w, "BOOL");
        w_shape(&w, 0, NULL);
        w_long(&w, 0);
        w_str(&w, "\x25");
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs[0].data: BOOL element 0 is byte 0x25, not 0 or 1",
               "req-1");

        /* Typed arrays: count mismatch, wrong branch, range checks. */
        req_head(&w);
        w_str(&w, "FP32");
        w_shape(&w, 2, d23);
        w_long(&w, 1);
        w_long(&w, 2);
        w_raw(&w, "\0\0\0\0\0\0\0\0", 8);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "fp32_contents has 2 values, but shape [2,3] needs 6",
               "req-1");
        req_head(&w);
        w_str(&w, "INT64");
        w_shape(&w, 0, NULL);
        w_long(&w, 1);
        w_long(&w, 1);
        w_raw(&w, "\0\0\0\0", 4);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "typed array fp32_contents does not match datatype INT64",
               "req-1");
        req_head(&w);
        w_str(&w, "UINT8");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, 1);
        w_long(&w, 256);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents[0] = 256 out of range for UINT8", "req-1");
        req_head(&w);
        w_str(&w, "INT16");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, -1); /* negative block count: one item, then the block size */
        w_long(&w, 3);
        w_long(&w, -32769);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents[0] = -32769 out of range for INT16", "req-1");
        req_head(&w);
        w_str(&w, "UINT32");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, 1);
        w_long(&w, 5);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_ERR_BAD_REQUEST, "int_contents does not match datatype UINT32", "req-1");
        /* A valid negative-count block decodes. */
        req_head(&w);
        w_str(&w, "INT16");
        w_shape(&w, 0, NULL);
        w_long(&w, 4);
        w_long(&w, -1);
        w_long(&w, 3);
        w_long(&w, -32768);
        w_long(&w, 0);
        req_tail(&w);
        expect(&w, SL_OK, NULL, NULL);
        /* Duplicate parameter keys: the last value wins, order kept. */
        raw_tensor(&w, "FP32", 0, NULL, 4);
        w.n -= 2; /* parameters and label */
        w_long(&w, 3);
        w_str(&w, "a");
        w_str(&w, "1");
        w_str(&w, "b");
        w_str(&w, "2");
        w_str(&w, "a");
        w_str(&w, "3");
        w_long(&w, 0);
        w_long(&w, 0);
        {
                sl_request_t *req = NULL;
                char errstr[256];

                assert_int_equal(sl_codec_decode_request(codecs[0], w.b, w.n, &req, NULL, errstr,
                                                         sizeof(errstr)),
                                 SL_OK);
                assert_int_equal(req->n_parameters, 2);
                assert_string_equal(req->param_keys[0], "b");
                assert_string_equal(req->param_values[0], "2");
                assert_string_equal(req->param_keys[1], "a");
                assert_string_equal(req->param_values[1], "3");
                sl_request_destroy(req);
        }
        /* No inputs at all. */
        w.n = 0;
        w_str(&w, "r");
        w_str(&w, "m");
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        w_long(&w, 0);
        expect(&w, SL_ERR_BAD_REQUEST, "inputs: no input tensors", "r");
        /* A semantic error followed by undecodable bytes is a DECODE error. */
        raw_tensor(&w, "FLOAT32", 2, d23, 24);
        w.n -= 2;
        expect(&w, SL_ERR_DECODE, "truncated", "req-1");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_truncation_everywhere),
            cmocka_unit_test(test_hostile_lengths),
            cmocka_unit_test(test_hostile_unions),
            cmocka_unit_test(test_bad_tensors),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
