/**
 * @file repo.h
 * @brief The model repository (Triton / TF-Serving layout):
 *
 * @code
 * <root>/<name>/config.cfg          libconfig, see below
 * <root>/<name>/labels.txt          optional, one class name per line
 * <root>/<name>/<version>/model.onnx  version = a positive integer folder
 * @endcode
 *
 * config.cfg settings (all optional):
 *  - max_batch_size (int, default 64): largest batch the engine runs.
 *  - labels_file (string, default "labels.txt" if present).
 *  - top_k (int, 0 = none; default: the worker's worker.top_k): classes
 *    reported per response.
 *  - output_kind ("probabilities" | "logits", default "probabilities"):
 *    with "logits" a softmax is applied before the top-k is taken.
 *  - allow_non_finite (bool, default false): with false a request whose
 *    float input holds NaN or Inf is refused (BAD_REQUEST) rather than
 *    answered with a meaningless prediction.
 *
 * Every model is loaded at open; requests route by name and optional
 * version (NULL = the highest version number).
 *
 * @locality sl_repo_t is read-only after sl_repo_open() and may be shared.
 */
#ifndef SL_REPO_H
#define SL_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../util/util.h"

typedef enum {
        SL_OUTPUT_PROBABILITIES = 0,
        SL_OUTPUT_LOGITS = 1,
} sl_output_kind_t;

/** @brief One loaded version of one model (owned by the repository). */
typedef struct sl_repo_model_s {
        char *name;
        char *version; /**< version folder name ("1") */
        char *dir;     /**< <root>/<name> */
        sl_model_t *model;
        size_t n_labels;
        char **labels; /**< n_labels class names, or NULL */
        int max_batch_size;
        int top_k; /**< -1 = not set in config.cfg (use the worker's) */
        sl_output_kind_t output_kind;
        int allow_non_finite; /**< accept NaN / Inf in float inputs (default 0) */
} sl_repo_model_t;

typedef struct sl_repo_s sl_repo_t;

/**
 * @brief Load every model of the repository at \p root.
 * @returns SL_OK; SL_ERR_IO (no such folder); SL_ERR_CONFIG (config.cfg
 *          error: "FILE:LINE: ..."); SL_ERR_MODEL / SL_ERR_UNSUPPORTED (a
 *          model.onnx failed to load: errstr names the file and node).
 * @remark Caller owns *repop (sl_repo_destroy()).
 */
sl_err_t sl_repo_open(const char *root, sl_repo_t **repop, char *errstr, size_t errstr_size);

/**
 * @brief Load only \p name from \p root (all its versions), as sl_repo_open().
 * Used by tools (`sluice predict`) that need one model.
 */
sl_err_t sl_repo_open_one(const char *root, const char *name, sl_repo_t **repop, char *errstr,
                          size_t errstr_size);

void sl_repo_destroy(sl_repo_t *repo);

/** @brief Find a model; \p version NULL or "" = latest. @returns NULL if not served. */
const sl_repo_model_t *sl_repo_find(const sl_repo_t *repo, const char *name, const char *version);

/** @brief Number of loaded model versions and the i-th (for listing). */
size_t sl_repo_count(const sl_repo_t *repo);
const sl_repo_model_t *sl_repo_get(const sl_repo_t *repo, size_t i);

/**
 * @brief Top-k classes of one row of class scores.
 *
 * Applies softmax first when the model's output_kind is logits
 * (numerically stable: subtract the max). Ties keep the lower index first.
 * @param scores    \p n_classes float32 scores of one example.
 * @param k         classes wanted; at most min(k, n_classes) are written.
 * @param index     out: class indices, best first.
 * @param prob      out: their probabilities.
 * @returns the number of classes written.
 */
size_t sl_repo_top_k(const sl_repo_model_t *m, const float *scores, size_t n_classes, size_t k,
                     int32_t *index, float *prob);

#endif /* SL_REPO_H */
