/*
 * libFuzzer target: sl_model_load() on arbitrary bytes (the ONNX ModelProto
 * a model repository hands the worker). The bytes are written to a memfd and
 * loaded through /proc/self/fd/N, the loader's only entry point. A model that
 * loads must describe itself consistently (inputs, outputs, nodes) and must
 * take a session; a failure must explain itself in errstr.
 *
 * Run: see tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/engine.h"

static void check_info(const sl_value_info_t *vi)
{
        if (!vi || !vi->name || vi->ndim < -1 || vi->ndim > SL_MAX_DIMS)
                abort();
        for (int d = 0; d < vi->ndim; d++)
                if (vi->dims[d] < -1)
                        abort();
}

static void check_model(sl_model_t *m)
{
        sl_session_t *s = NULL;

        for (size_t i = 0; i < sl_model_input_count(m); i++)
                check_info(sl_model_input(m, i));
        for (size_t i = 0; i < sl_model_output_count(m); i++)
                check_info(sl_model_output(m, i));
        for (size_t i = 0; i < sl_model_node_count(m); i++)
                if (!sl_model_node_op_type(m, i))
                        abort();
        if (!sl_model_producer(m))
                abort();
        if (sl_session_new(m, &s) == SL_OK)
                sl_session_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64], errstr[512] = "";
        sl_model_t *m = NULL;
        size_t off = 0;
        sl_err_t err;
        int fd;

        if ((fd = memfd_create("fuzz_model", 0)) < 0)
                abort();
        while (off < size) {
                ssize_t n = write(fd, data + off, size - off);
                if (n <= 0)
                        abort();
                off += (size_t)n;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        err = sl_model_load(path, &m, errstr, sizeof(errstr));
        if (err == SL_OK) {
                if (!m)
                        abort();
                check_model(m);
                sl_model_destroy(m);
        } else if (m || !errstr[0]) {
                abort();
        }
        close(fd);
        return 0;
}
