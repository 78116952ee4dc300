/*
 * libFuzzer target: sl_codec_decode_request() on arbitrary bytes, framing
 * included. Every input is decoded by a raw-framing and a Confluent-framing
 * codec. A request that decodes must be self-consistent (nbytes matches
 * shape and datatype) and must survive an encode/decode round trip in both
 * data encodings; a failure must explain itself in errstr.
 *
 * Run: see tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

static sl_codec_t *codecs[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *src = getenv("SL_SOURCE_DIR");
        char dir[1024], errstr[512];
        sl_codec_params_t p;

        (void)argc;
        (void)argv;
        snprintf(dir, sizeof(dir), "%s/schemas", src ? src : SL_SOURCE_DIR);
        for (int f = 0; f < 2; f++) {
                sl_codec_params_init(&p);
                p.schema_dir = dir;
                p.framing = (sl_framing_t)f;
                p.request_schema_id = 1;
                if (sl_codec_new(&p, &codecs[f], errstr, sizeof(errstr))) {
                        fprintf(stderr, "fuzz_request: %s\n", errstr);
                        abort();
                }
        }
        return 0;
}

static void check_request(const sl_codec_t *codec, const sl_request_t *req)
{
        char errstr[512];

        for (size_t i = 0; i < req->n_inputs; i++) {
                const sl_tensor_t *t = &req->inputs[i].tensor;
                size_t numel = 1, es;
                int zero = 0;

                if (!t->data || t->ndim < 0 || t->ndim > SL_MAX_DIMS ||
                    !sl_codec_dtype_to_v2(t->dtype))
                        abort();
                for (int d = 0; d < t->ndim; d++)
                        zero |= t->dims[d] == 0;
                for (int d = 0; d < t->ndim && !zero; d++)
                        numel *= (size_t)t->dims[d];
                if (zero) {
                        if (t->nbytes)
                                abort();
                        continue;
                }
                es = t->nbytes / numel;
                if (t->nbytes % numel || (es != 1 && es != 2 && es != 4 && es != 8))
                        abort();
        }
        for (int typed = 0; typed < 2; typed++) {
                sl_request_t *again = NULL;
                void *buf = NULL;
                size_t len = 0;

                if (sl_codec_encode_request(codec, req, typed, &buf, &len))
                        abort();
                if (sl_codec_decode_request(codec, buf, len, &again, NULL, errstr,
                                            sizeof(errstr)) != SL_OK)
                        abort();
                if (strcmp(again->id, req->id) || again->n_inputs != req->n_inputs ||
                    again->n_parameters != req->n_parameters)
                        abort();
                for (size_t i = 0; i < req->n_inputs; i++)
                        if (again->inputs[i].tensor.nbytes != req->inputs[i].tensor.nbytes ||
                            memcmp(again->inputs[i].tensor.data, req->inputs[i].tensor.data,
                                   req->inputs[i].tensor.nbytes))
                                abort();
                sl_request_destroy(again);
                free(buf);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        for (int f = 0; f < 2; f++) {
                sl_request_t *req = NULL;
                char errstr[512] = "", *id = NULL;
                sl_err_t err;

                err = sl_codec_decode_request(codecs[f], data, size, &req, &id, errstr,
                                              sizeof(errstr));
                if (err == SL_OK) {
                        if (!req || id)
                                abort();
                        check_request(codecs[f], req);
                } else if (req || !errstr[0]) {
                        abort();
                }
                sl_request_destroy(req);
                free(id);
        }
        return 0;
}
