/**
 * @file prep.h
 * @brief Pre- and post-processing declared in a model's config.cfg, so that
 *        producers can send what they have (uint8 images, NHWC pixels) and
 *        the model still receives what it was trained on (float32 NCHW,
 *        scaled and normalised).
 *
 * The `input:` group of config.cfg (every setting optional):
 * @code
 * input: {
 *   datatype = "UINT8";               // wire datatype: "UINT8" | "FP32" (default: the model's)
 *   layout   = "NHWC";                // "NCHW" (default) | "NHWC" (rank-4 inputs only)
 *   scale    = 0.00392156862745098;   // 1/255 (default 1.0)
 *   mean     = [0.485, 0.456, 0.406]; // one per channel, or a single value (default 0)
 *   std      = [0.229, 0.224, 0.225]; // one per channel, or a single value (default 1)
 * };
 * @endcode
 * Each element becomes y = (x * scale - mean[c]) / std[c], c its channel:
 * dimension 1 of the model input (ONNX's channel axis, as BatchNormalization
 * defines it), so a rank-2 [N, F] input is normalised per feature.
 * The converted tensor is the model's: dense, row-major, NCHW (engine.h).
 *
 * The `output:` group (sl_prep_output_t): return_tensors, argmax_only.
 *
 * A parsed sl_prep_t does not depend on one model file: it is parsed once per
 * config.cfg and checked against each version's input (sl_prep_check()).
 * A NULL sl_prep_t * is the identity everywhere (no `input:` group).
 *
 * @locality sl_prep_t is immutable after sl_prep_new(): any thread may use
 *           it, concurrently.
 */
#ifndef SL_PREP_H
#define SL_PREP_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#include "../engine/engine.h"
#include "../util/util.h"

/** @brief Element order of a rank-4 image input on the wire. */
typedef enum {
        SL_PREP_LAYOUT_NCHW = 0, /**< as the model takes it (default) */
        SL_PREP_LAYOUT_NHWC = 1, /**< channels last: the request sends [N, H, W, C] */
} sl_prep_layout_t;

typedef struct sl_prep_s sl_prep_t;

/**
 * @brief Parse the `input: { ... }` group of a config.cfg.
 *
 * Checks what needs no model: known setting names and their types, datatype
 * "UINT8" or "FP32", layout "NCHW" or "NHWC", scale finite and non-zero,
 * mean and std finite numbers (a number or a non-empty list), std never 0.
 * Checks against a model input are sl_prep_check()'s.
 *
 * @param group  the `input` setting (any type: a non-group is an error).
 * @param path   config.cfg's path, for errors.
 * @returns SL_OK; SL_ERR_CONFIG ("FILE:LINE: input.mean: ..." in errstr,
 *          LINE that of the faulty setting or list element); SL_ERR_NOMEM.
 * @remark On success the caller owns *prepp (sl_prep_destroy()). An empty
 *         group gives a prep that is the identity for any model input.
 */
sl_err_t sl_prep_new(const config_setting_t *group, const char *path, sl_prep_t **prepp,
                     char *errstr, size_t errstr_size);

/**
 * @brief Copy \p prep (e.g. one per loaded model version, each freed with its
 *        version, while the settings parsed at a scan are freed after it).
 * @returns SL_OK (*dstp = NULL for a NULL \p prep) or SL_ERR_NOMEM.
 * @remark On success the caller owns *dstp.
 */
sl_err_t sl_prep_dup(const sl_prep_t *prep, sl_prep_t **dstp);

/** @brief Free a prep. Accepts NULL. */
void sl_prep_destroy(sl_prep_t *prep);

/**
 * @brief Check that \p prep can feed \p input, one input of one model version
 *        (call once per loaded version, at load).
 *
 * Anything beyond the identity (another wire datatype, NHWC, scale, mean,
 * std) needs a float32 input; layout NHWC needs a rank-4 input; mean and std
 * lists of more than one value need dimension 1 of the input (its channels)
 * to be known and equal to their length.
 *
 * @param model_path  the model file named in errors (may be NULL).
 * @returns SL_OK (always for a NULL \p prep) or SL_ERR_CONFIG
 *          ("FILE:LINE: input.mean: 3 values, but input 'x' of MODEL has 1
 *          channel (dimension 1 of [-1,1,28,28])").
 */
sl_err_t sl_prep_check(const sl_prep_t *prep, const sl_value_info_t *input, const char *model_path,
                       char *errstr, size_t errstr_size);

/**
 * @brief What a request must send for \p input: its wire datatype and shape.
 *
 * \p wire gets \p input's name, the wire datatype (input's when not set) and
 * the shape in wire order: [N, H, W, C] for the model's [N, C, H, W] with
 * layout NHWC, the model's shape otherwise; -1 stays -1 (any size).
 * Check requests against \p wire, so that mismatches are reported in the
 * terms the producer used.
 * @remark \p wire->name borrows \p input->name.
 */
void sl_prep_wire_shape(const sl_prep_t *prep, const sl_value_info_t *input, sl_value_info_t *wire);

/**
 * @brief The tensor the model receives for a request tensor \p wire.
 *
 * Fills \p model's dtype (float32 unless \p prep is the identity), ndim,
 * dims (NHWC wire dims back in NCHW order) and nbytes: the bytes
 * sl_prep_apply() writes. \p model->data is left as it was.
 */
void sl_prep_model_tensor(const sl_prep_t *prep, const sl_tensor_t *wire, sl_tensor_t *model);

/**
 * @brief Convert the rows of one request tensor into the model's layout.
 *
 * Writes sl_prep_model_tensor()'s nbytes at \p dst: wire->dims[0] rows,
 * float32, NCHW, contiguous, so that successive requests concatenate into a
 * batch buffer. The identity (NULL \p prep among others) is a memcpy.
 * Allocates nothing. NaN and Inf in FP32 wire data go through unchanged (the
 * caller's check; note that large finite inputs may overflow to Inf after
 * scaling when |x * scale / std| > FLT_MAX).
 *
 * @param wire  one request tensor already checked against
 *              sl_prep_wire_shape() (datatype and shape).
 * @param dst   at least sl_prep_model_tensor()'s nbytes, float-aligned; must
 *              not overlap wire->data.
 * @returns SL_OK; SL_ERR_DATATYPE (wire datatype neither UINT8 nor FP32 for
 *          a conversion) or SL_ERR_SHAPE (rank or channel count not those of
 *          the prep): defensive only, no errstr on this hot path.
 * @remark Thread: any; \p prep is read-only.
 */
sl_err_t sl_prep_apply(const sl_prep_t *prep, const sl_tensor_t *wire, void *dst);

/** @brief Wire datatype set in the config (SL_DT_UNDEFINED: the model's). */
sl_dtype_t sl_prep_datatype(const sl_prep_t *prep);

/** @brief Wire layout set in the config (NCHW for a NULL prep). */
sl_prep_layout_t sl_prep_layout(const sl_prep_t *prep);

/** @brief 1 when \p prep (or NULL) leaves every tensor as it is. */
int sl_prep_is_identity(const sl_prep_t *prep);

/** @brief The `output:` group of config.cfg (plain value struct). */
typedef struct sl_prep_output_s {
        int return_tensors; /**< responses carry the raw output tensors (default 1) */
        int argmax_only;    /**< classes hold only the top-1 class (default 0) */
} sl_prep_output_t;

/** @brief Defaults: return_tensors = 1, argmax_only = 0. */
void sl_prep_output_init(sl_prep_output_t *out);

/**
 * @brief Parse the `output: { return_tensors = BOOL; argmax_only = BOOL; }`
 *        group into \p out (settings absent keep \p out's values: call
 *        sl_prep_output_init() first).
 * @returns SL_OK or SL_ERR_CONFIG ("FILE:LINE: output.argmax_only: expected
 *          true or false"; unknown settings are errors).
 */
sl_err_t sl_prep_output_parse(const config_setting_t *group, const char *path,
                              sl_prep_output_t *out, char *errstr, size_t errstr_size);

#endif /* SL_PREP_H */
