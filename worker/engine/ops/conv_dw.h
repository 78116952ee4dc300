/**
 * @file conv_dw.h
 * @brief Depthwise 2-D Conv kernel (ops/conv_dw.c), used by ops/conv.c.
 */
#ifndef SL_CONV_DW_H
#define SL_CONV_DW_H

#include "ops.h"

/**
 * @brief Depthwise Conv (group = C = M, W [C, 1, kh, kw]) of float NCHW \p x
 *        into \p y (already shaped), bias \p bias (C floats or NULL) and the
 *        node's fused activation (none, Relu or Clip).
 * @returns SL_OK; SL_ERR_UNSUPPORTED when the Conv is not depthwise 2-D or
 *          has a fused MaxPool (the caller then uses its general paths).
 */
sl_err_t sl_conv_depthwise(sl_opctx_t *c, const sl_tensor_t *x, const sl_tensor_t *w,
                           const float *bias, const sl_geom_t *g, int64_t group, sl_tensor_t *y);

#endif /* SL_CONV_DW_H */
