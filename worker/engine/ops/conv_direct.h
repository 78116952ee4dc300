/**
 * @file conv_direct.h
 * @brief Direct (implicit-im2col) Conv kernel for AVX-512 CPUs, used by
 *        ops/conv.c in place of im2col + sgemm when it applies.
 */
#ifndef SL_CONV_DIRECT_H
#define SL_CONV_DIRECT_H

#include "ops.h"

/**
 * @brief Run Conv on \p x with weights \p w (float, NCHW / MCkk) into \p y
 *        (already shaped), bias \p bias (M floats or NULL) and the node's fused
 *        activation.
 *
 * Output channels sit in the vector lanes (16 per AVX-512 register), a tile of
 * output positions in the broadcast operand; the input is read in place (a
 * zero-padded copy of one image when the Conv pads), so no im2col matrix is
 * built. Weights are packed once per session when they are an initializer.
 *
 * @returns SL_OK; SL_ERR_UNSUPPORTED when the kernel does not apply (no
 *          AVX-512, SLUICE_CONV_DIRECT=0, or a shape it does not serve well:
 *          fewer than 8 output channels per group or 16 taps) — the caller then falls back
 *          to im2col + sgemm; SL_ERR_NOMEM.
 */
sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y);

#endif /* SL_CONV_DIRECT_H */
