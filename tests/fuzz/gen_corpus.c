/*
 * Writes the seed corpus of fuzz_request: valid InferenceRequest encodings
 * (raw bytes and every typed-array branch, raw and Confluent framing).
 * Usage: fuzz_gen_corpus <schema dir> <output dir>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

static int write_file(const char *dir, const char *name, const void *buf, size_t len)
{
        char path[1024];
        FILE *fp;
        int ok;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fp = fopen(path, "wb");
        if (!fp)
                return -1;
        ok = fwrite(buf, 1, len, fp) == len;
        return fclose(fp) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv)
{
        static float f32[6] = {0.5f, -1.0f, 2.0f, 0.0f, 3.5f, 1e-3f};
        static double f64[2] = {1.5, -2.0};
        static int64_t i64[3] = {-1, 0, 1LL << 40};
        static int8_t i8[2] = {-128, 127};
        static uint16_t u16[2] = {0, 65535};
        static uint8_t b[3] = {1, 0, 1};
        static uint16_t f16[1] = {0x3c00};
        sl_named_tensor_t t[] = {
            {"image", {SL_DT_FLOAT, 2, {2, 3}, f32, sizeof(f32)}},
            {"d", {SL_DT_DOUBLE, 1, {2}, f64, sizeof(f64)}},
            {"ids", {SL_DT_INT64, 1, {3}, i64, sizeof(i64)}},
            {"q", {SL_DT_INT8, 2, {1, 2}, i8, sizeof(i8)}},
            {"u", {SL_DT_UINT16, 1, {2}, u16, sizeof(u16)}},
            {"mask", {SL_DT_BOOL, 1, {3}, b, sizeof(b)}},
            {"h", {SL_DT_FLOAT16, 0, {0}, f16, sizeof(f16)}},
        };
        char *keys[] = {"k"}, *vals[] = {"v"}, *outs[] = {"probs"}, errstr[512], name[64];
        sl_request_t reqs[] = {
            {.id = "r1", .model_name = "mnist", .n_inputs = 1, .inputs = t},
            {.id = "r2",
             .model_name = "all",
             .model_version = "2",
             .n_inputs = 7,
             .inputs = t,
             .n_outputs = 1,
             .outputs = outs,
             .n_parameters = 1,
             .param_keys = keys,
             .param_values = vals,
             .has_label = 1,
             .label = 3},
        };
        sl_codec_params_t p;
        int n = 0;

        if (argc != 3) {
                fprintf(stderr, "usage: %s <schema dir> <output dir>\n", argv[0]);
                return 2;
        }
        for (int f = 0; f < 2; f++) {
                sl_codec_t *codec = NULL;

                sl_codec_params_init(&p);
                p.schema_dir = argv[1];
                p.framing = (sl_framing_t)f;
                p.request_schema_id = 1;
                if (sl_codec_new(&p, &codec, errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        return 1;
                }
                for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
                        for (int typed = 0; typed < 2; typed++) {
                                void *buf;
                                size_t len;

                                if (sl_codec_encode_request(codec, &reqs[r], typed, &buf, &len))
                                        return 1;
                                snprintf(name, sizeof(name), "%s-%s-%s.avro",
                                         f ? "confluent" : "raw", reqs[r].id,
                                         typed ? "typed" : "bytes");
                                if (write_file(argv[2], name, buf, len))
                                        return 1;
                                free(buf);
                                n++;
                        }
                }
                sl_codec_destroy(codec);
        }
        printf("wrote %d files to %s\n", n, argv[2]);
        return 0;
}
