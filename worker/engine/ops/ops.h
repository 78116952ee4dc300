/**
 * @file ops.h
 * @brief Operator kernels of the engine (one family per file) and the
 *        helpers they share. Private to worker/engine/.
 */
#ifndef SL_OPS_H
#define SL_OPS_H

#include "../engine_int.h"

/**
 * @brief Window geometry of Conv/Pool, always 3-D: 1-D and 2-D problems get
 *        leading spatial dimensions of size 1.
 */
typedef struct {
        int r; /**< real spatial rank (1..3) */
        int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} sl_geom_t;

/** @brief Compute geometry from the node's strides, dilations, pads, auto_pad. */
sl_err_t sl_geom_init(sl_opctx_t *c, const sl_tensor_t *x, const int64_t *kernel, int nk,
                      bool ceil_mode, sl_geom_t *g);

/** @brief Load-time check of auto_pad / storage_order (Conv, pools). */
sl_err_t sl_geom_check(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);

/** @brief Read an int64/int32 tensor into \p out; returns the count or -1. */
int sl_read_ints(const sl_tensor_t *t, int64_t *out, int max);
sl_err_t sl_op_abs(sl_opctx_t *c);
sl_err_t sl_op_acos(sl_opctx_t *c);
sl_err_t sl_op_acosh(sl_opctx_t *c);
sl_err_t sl_op_add(sl_opctx_t *c);
sl_err_t sl_op_and(sl_opctx_t *c);
sl_err_t sl_op_argmax(sl_opctx_t *c);
sl_err_t sl_op_argmin(sl_opctx_t *c);
sl_err_t sl_op_asin(sl_opctx_t *c);
sl_err_t sl_op_asinh(sl_opctx_t *c);
sl_err_t sl_op_atan(sl_opctx_t *c);
sl_err_t sl_op_atanh(sl_opctx_t *c);
sl_err_t sl_op_average_pool(sl_opctx_t *c);
sl_err_t sl_op_batch_norm(sl_opctx_t *c);
sl_err_t sl_op_bitshift(sl_opctx_t *c);
sl_err_t sl_op_cast(sl_opctx_t *c);
sl_err_t sl_op_ceil(sl_opctx_t *c);
sl_err_t sl_op_celu(sl_opctx_t *c);
sl_err_t sl_op_clip(sl_opctx_t *c);
sl_err_t sl_op_concat(sl_opctx_t *c);
sl_err_t sl_op_constant(sl_opctx_t *c);
sl_err_t sl_op_constant_of_shape(sl_opctx_t *c);
sl_err_t sl_op_conv(sl_opctx_t *c);
sl_err_t sl_op_conv_transpose(sl_opctx_t *c);
sl_err_t sl_op_cos(sl_opctx_t *c);
sl_err_t sl_op_cosh(sl_opctx_t *c);
sl_err_t sl_op_div(sl_opctx_t *c);
sl_err_t sl_op_dropout(sl_opctx_t *c);
sl_err_t sl_op_elu(sl_opctx_t *c);
sl_err_t sl_op_equal(sl_opctx_t *c);
sl_err_t sl_op_erf(sl_opctx_t *c);
sl_err_t sl_op_exp(sl_opctx_t *c);
sl_err_t sl_op_expand(sl_opctx_t *c);
sl_err_t sl_op_flatten(sl_opctx_t *c);
sl_err_t sl_op_floor(sl_opctx_t *c);
sl_err_t sl_op_gather(sl_opctx_t *c);
sl_err_t sl_op_gather_elements(sl_opctx_t *c);
sl_err_t sl_op_gelu(sl_opctx_t *c);
sl_err_t sl_op_gemm(sl_opctx_t *c);
sl_err_t sl_op_global_average_pool(sl_opctx_t *c);
sl_err_t sl_op_global_lp_pool(sl_opctx_t *c);
sl_err_t sl_op_global_max_pool(sl_opctx_t *c);
sl_err_t sl_op_greater(sl_opctx_t *c);
sl_err_t sl_op_greater_or_equal(sl_opctx_t *c);
sl_err_t sl_op_hard_sigmoid(sl_opctx_t *c);
sl_err_t sl_op_hard_swish(sl_opctx_t *c);
sl_err_t sl_op_hardmax(sl_opctx_t *c);
sl_err_t sl_op_identity(sl_opctx_t *c);
sl_err_t sl_op_instance_norm(sl_opctx_t *c);
sl_err_t sl_op_isinf(sl_opctx_t *c);
sl_err_t sl_op_isnan(sl_opctx_t *c);
sl_err_t sl_op_layer_norm(sl_opctx_t *c);
sl_err_t sl_op_leaky_relu(sl_opctx_t *c);
sl_err_t sl_op_less(sl_opctx_t *c);
sl_err_t sl_op_less_or_equal(sl_opctx_t *c);
sl_err_t sl_op_log(sl_opctx_t *c);
sl_err_t sl_op_log_softmax(sl_opctx_t *c);
sl_err_t sl_op_lp_norm(sl_opctx_t *c);
sl_err_t sl_op_lp_pool(sl_opctx_t *c);
sl_err_t sl_op_matmul(sl_opctx_t *c);
sl_err_t sl_op_max(sl_opctx_t *c);
sl_err_t sl_op_max_pool(sl_opctx_t *c);
sl_err_t sl_op_mean(sl_opctx_t *c);
sl_err_t sl_op_min(sl_opctx_t *c);
sl_err_t sl_op_mish(sl_opctx_t *c);
sl_err_t sl_op_mod(sl_opctx_t *c);
sl_err_t sl_op_mul(sl_opctx_t *c);
sl_err_t sl_op_neg(sl_opctx_t *c);
sl_err_t sl_op_not(sl_opctx_t *c);
sl_err_t sl_op_or(sl_opctx_t *c);
sl_err_t sl_op_pad(sl_opctx_t *c);
sl_err_t sl_op_pow(sl_opctx_t *c);
sl_err_t sl_op_prelu(sl_opctx_t *c);
sl_err_t sl_op_range(sl_opctx_t *c);
sl_err_t sl_op_reciprocal(sl_opctx_t *c);
sl_err_t sl_op_reduce_l1(sl_opctx_t *c);
sl_err_t sl_op_reduce_l2(sl_opctx_t *c);
sl_err_t sl_op_reduce_log_sum(sl_opctx_t *c);
sl_err_t sl_op_reduce_log_sum_exp(sl_opctx_t *c);
sl_err_t sl_op_reduce_max(sl_opctx_t *c);
sl_err_t sl_op_reduce_mean(sl_opctx_t *c);
sl_err_t sl_op_reduce_min(sl_opctx_t *c);
sl_err_t sl_op_reduce_prod(sl_opctx_t *c);
sl_err_t sl_op_reduce_sum(sl_opctx_t *c);
sl_err_t sl_op_reduce_sum_square(sl_opctx_t *c);
sl_err_t sl_op_relu(sl_opctx_t *c);
sl_err_t sl_op_reshape(sl_opctx_t *c);
sl_err_t sl_op_round(sl_opctx_t *c);
sl_err_t sl_op_selu(sl_opctx_t *c);
sl_err_t sl_op_shape(sl_opctx_t *c);
sl_err_t sl_op_shrink(sl_opctx_t *c);
sl_err_t sl_op_sigmoid(sl_opctx_t *c);
sl_err_t sl_op_sign(sl_opctx_t *c);
sl_err_t sl_op_sin(sl_opctx_t *c);
sl_err_t sl_op_sinh(sl_opctx_t *c);
sl_err_t sl_op_size(sl_opctx_t *c);
sl_err_t sl_op_slice(sl_opctx_t *c);
sl_err_t sl_op_softmax(sl_opctx_t *c);
sl_err_t sl_op_softplus(sl_opctx_t *c);
sl_err_t sl_op_softsign(sl_opctx_t *c);
sl_err_t sl_op_split(sl_opctx_t *c);
sl_err_t sl_op_sqrt(sl_opctx_t *c);
sl_err_t sl_op_squeeze(sl_opctx_t *c);
sl_err_t sl_op_sub(sl_opctx_t *c);
sl_err_t sl_op_sum(sl_opctx_t *c);
sl_err_t sl_op_tan(sl_opctx_t *c);
sl_err_t sl_op_tanh(sl_opctx_t *c);
sl_err_t sl_op_thresholded_relu(sl_opctx_t *c);
sl_err_t sl_op_tile(sl_opctx_t *c);
sl_err_t sl_op_transpose(sl_opctx_t *c);
sl_err_t sl_op_unsqueeze(sl_opctx_t *c);
sl_err_t sl_op_where(sl_opctx_t *c);
sl_err_t sl_op_xor(sl_opctx_t *c);
sl_err_t sl_op_trilu(sl_opctx_t *c);
sl_err_t sl_op_cumsum(sl_opctx_t *c);
sl_err_t sl_op_one_hot(sl_opctx_t *c);
sl_err_t sl_op_topk(sl_opctx_t *c);
sl_err_t sl_op_nonzero(sl_opctx_t *c);
sl_err_t sl_op_scatter_elements(sl_opctx_t *c);
sl_err_t sl_op_gather_nd(sl_opctx_t *c);
sl_err_t sl_op_depth_to_space(sl_opctx_t *c);
sl_err_t sl_op_space_to_depth(sl_opctx_t *c);
sl_err_t sl_op_eye_like(sl_opctx_t *c);
sl_err_t sl_op_mvn(sl_opctx_t *c);
sl_err_t sl_op_cast_like(sl_opctx_t *c);
sl_err_t sl_op_scatter_nd(sl_opctx_t *c);

/** @brief Dropout with training_mode true (ops/random.c): numpy-compatible masks. */
sl_err_t sl_dropout_train(sl_opctx_t *c, const sl_tensor_t *x, double ratio);

sl_err_t sl_op_einsum(sl_opctx_t *c);
sl_err_t sl_op_nms(sl_opctx_t *c);

/* Resize and Upsample (ops/resize.c). */
sl_err_t sl_check_resize(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_check_upsample(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_op_resize(sl_opctx_t *c);
sl_err_t sl_op_upsample(sl_opctx_t *c);

/* Losses (ops/loss.c). */
sl_err_t sl_check_loss(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_op_nll_loss(sl_opctx_t *c);
sl_err_t sl_op_softmax_cross_entropy_loss(sl_opctx_t *c);

/* MaxPool with storage_order and small operators (ops/misc.c). */
sl_err_t sl_check_max_pool(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_op_max_pool_indexed(sl_opctx_t *c);
sl_err_t sl_op_compress(sl_opctx_t *c);
sl_err_t sl_op_reverse_sequence(sl_opctx_t *c);
sl_err_t sl_op_lrn(sl_opctx_t *c);
sl_err_t sl_op_det(sl_opctx_t *c);
sl_err_t sl_op_hann_window(sl_opctx_t *c);
sl_err_t sl_op_hamming_window(sl_opctx_t *c);
sl_err_t sl_op_blackman_window(sl_opctx_t *c);

/* Control flow with subgraphs (ops/control.c). */
sl_err_t sl_check_if(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_check_loop(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_check_scan(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_op_if(sl_opctx_t *c);
sl_err_t sl_op_loop(sl_opctx_t *c);
sl_err_t sl_op_scan(sl_opctx_t *c);

/* Recurrent layers (ops/rnn.c). */
sl_err_t sl_check_rnn(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size);
sl_err_t sl_op_rnn(sl_opctx_t *c);
sl_err_t sl_op_gru(sl_opctx_t *c);
sl_err_t sl_op_lstm(sl_opctx_t *c);

/**
 * @brief y[j] = dot(W[j], a) for j < n, W row-major [n][k] (ops/gemm.c):
 *        the AVX-512 matrix-vector kernel of Gemm at batch 1.
 * @returns false (nothing written) when the CPU lacks AVX-512 or n or k is 0;
 *          the caller then uses cblas.
 */
bool sl_gemv_rows(const float *w, const float *a, float *y, int64_t n, int64_t k);

/*
 * Vector math (ops/vmath.c): y[i] = f(x[i]) for i < n, y may equal x.
 * sl_v* use AVX-512 when the CPU has it; sl_v*_ref are the scalar loops of
 * the same algorithm (the fallback, and the unit tests' reference). Within a
 * few ulp of libm; exp clamps its argument to [-87, 88].
 */
void sl_vexp(float *y, const float *x, int64_t n);
void sl_vsigmoid(float *y, const float *x, int64_t n);
void sl_vtanh(float *y, const float *x, int64_t n);
void sl_vexp_ref(float *y, const float *x, int64_t n);
void sl_vsigmoid_ref(float *y, const float *x, int64_t n);
void sl_vtanh_ref(float *y, const float *x, int64_t n);

#endif /* SL_OPS_H */
