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
 *        (already shaped), bias \p bias (M floats or NULL), the node's fused
 *        activation and, when \p pool is not NULL, a fused MaxPool.
 *
 * Output channels sit in the vector lanes (16 per AVX-512 register), a tile of
 * output positions in the broadcast operand; the input is read in place (a
 * zero-padded copy of one image when the Conv pads), so no im2col matrix is
 * built. Weights are packed once per session when they are an initializer.
 *
 * \p pool = {kh, kw}: a 2-D MaxPool with kernel_shape = strides = {kh, kw},
 * no padding, dilations 1, floor mode, applied after the activation; \p y then
 * has the pooled shape [N, M, OH / kh, OW / kw] and conv positions no window
 * reads are not computed.
 *
 * @returns SL_OK; SL_ERR_UNSUPPORTED when the kernel does not apply (no
 *          AVX-512, SLUICE_CONV_DIRECT=0, fewer than 8 output channels per
 *          group, a pool on a 3-D Conv) — the caller then falls back to im2col
 *          + sgemm; SL_ERR_NOMEM.
 */
sl_err_t sl_conv_direct(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                        const float *bias, const sl_geom_t *g, int64_t group, const int64_t *pool,
                        sl_tensor_t *y);

#endif /* SL_CONV_DIRECT_H */
