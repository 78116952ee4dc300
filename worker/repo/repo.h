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
 *  - version_policy ("latest" | "all" | "specific", default "latest"),
 *    num_versions (int, default 1) for "latest", versions (list of ints)
 *    for "specific": which version folders are served (Triton's policy).
 *  - canary_version (int) and canary_fraction (float 0..1): that fraction of
 *    the requests naming no version go to the canary version (chosen by a
 *    hash of the request id, so a retried request goes the same way).
 *  - shadow_version (int): every request served by another version of this
 *    model also runs on the shadow version; its result is counted in the
 *    shadow version's metrics and never published.
 *  - input: { datatype, layout, scale, mean, std } and output: {
 *    return_tensors, argmax_only }: pre- and post-processing (prep.h).
 *  - allow_non_finite (bool, default false): with false a request whose
 *    float input holds NaN or Inf is refused (BAD_REQUEST) rather than
 *    answered with a meaningless prediction.
 *
 * The versions the policy selects are loaded (and warmed up) at open;
 * requests route by name and optional version (NULL = the highest version
 * loaded). sl_repo_plan() compares the folders with what is loaded, for live
 * reloads: the caller loads and inserts new versions and detaches and frees
 * old ones itself, so it decides when (after their in-flight batches).
 *
 * @locality one thread changes a repository (sl_repo_insert/detach); lookups
 *           from that thread only, or from any thread when nothing changes it.
 */
#ifndef SL_REPO_H
#define SL_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../prep/prep.h"
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
        int allow_non_finite;    /**< accept NaN / Inf in float inputs (default 0) */
        int64_t bytes;           /**< size of model.onnx: the memory its weights take */
        int64_t canary_version;  /**< 0 = none: version taking canary_fraction of requests */
        double canary_fraction;  /**< 0..1 of the requests that name no version */
        int64_t shadow_version;  /**< 0 = none: version that also runs every request, unanswered */
        sl_prep_t *prep;         /**< input: conversion of request tensors (NULL = none) */
        sl_prep_output_t output; /**< output: return_tensors, argmax_only */
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

/** @brief One version to load (owned by its plan). */
typedef struct sl_repo_version_s {
        char *name;
        int64_t version;
        int64_t bytes; /**< size of its model.onnx */
} sl_repo_version_t;

/** @brief What a reload would change (sl_repo_plan()). */
typedef struct sl_repo_plan_s {
        size_t n_add;
        sl_repo_version_t *add; /**< wanted by the policy, not loaded, not failed */
        size_t n_remove;
        const sl_repo_model_t **remove; /**< loaded, no longer wanted (or folder gone) */
} sl_repo_plan_t;

/**
 * @brief Compare the repository folders with what is loaded.
 *
 * Versions that failed to load before (sl_repo_load()) are left out until
 * their model.onnx changes. A model whose config.cfg has become invalid is
 * left as it is (reported in errstr, the rest still planned).
 * @returns SL_OK (the plan may be empty), or SL_ERR_NOMEM. Free the plan
 *          with sl_repo_plan_cleanup().
 */
sl_err_t sl_repo_plan(sl_repo_t *repo, sl_repo_plan_t *plan, char *errstr, size_t errstr_size);
void sl_repo_plan_cleanup(sl_repo_plan_t *plan);

/**
 * @brief Load, label and warm up one version with its model's current
 *        config.cfg. On failure the version is remembered as failed (until
 *        its model.onnx changes) and errstr names the file and node.
 * @remark On success the caller owns *mp until sl_repo_insert().
 */
sl_err_t sl_repo_load(sl_repo_t *repo, const char *name, int64_t version, sl_repo_model_t **mp,
                      char *errstr, size_t errstr_size);

/** @brief Route requests to \p m from now on. @remark The repository owns \p m. */
sl_err_t sl_repo_insert(sl_repo_t *repo, sl_repo_model_t *m);

/** @brief Stop routing to \p m. @remark The caller owns \p m again (sl_repo_model_destroy()). */
void sl_repo_detach(sl_repo_t *repo, const sl_repo_model_t *m);

/** @brief Free a model version that is not in a repository. Accepts NULL. */
void sl_repo_model_destroy(sl_repo_model_t *m);

/** @brief Total bytes of the loaded versions' model files. */
int64_t sl_repo_bytes(const sl_repo_t *repo);

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
