/* Private to worker/repo: the repository's state, shared by its files. */
#ifndef SL_REPO_INT_H
#define SL_REPO_INT_H

#include <libconfig.h>

#include "../prep/prep.h"
#include "repo.h"

/* Version policy of a model (config.cfg version_policy), as Triton's. */
typedef enum {
        POLICY_LATEST,   /* the num_versions highest version numbers */
        POLICY_ALL,      /* every version folder */
        POLICY_SPECIFIC, /* the versions listed */
} policy_t;

#define SPECIFIC_MAX 64

/* What config.cfg can set (defaults: settings_defaults()). */
typedef struct model_settings_s {
        int max_batch_size;
        int top_k; /* -1 = the worker's */
        int allow_non_finite;
        sl_output_kind_t kind;
        char labels_file[256];
        policy_t policy;
        int num_versions;
        size_t n_specific;
        int64_t specific[SPECIFIC_MAX];
        int64_t canary_version; /* 0 = none */
        double canary_fraction;
        int64_t shadow_version;  /* 0 = none */
        sl_prep_t *prep;         /* input: group, NULL = identity (owned) */
        sl_prep_output_t output; /* output: group */
} model_settings_t;

/* A version that failed to load: not tried again until its model.onnx changes. */
typedef struct failed_s {
        char *name;
        int64_t version;
        int64_t mtime_ns, size;
} failed_t;

struct sl_repo_s {
        char *root;
        char *only; /* sl_repo_open_one(): the one model, else NULL */
        size_t cnt, size;
        sl_repo_model_t **models; /* sorted by name, then version number */
        failed_t *failed;
        size_t n_failed, size_failed;
};

int repo_is_dir(const char *path);
int repo_is_file(const char *path);
int repo_version_number(const char *s, int64_t *out);
int repo_file_stat(const char *path, int64_t *mtime_ns, int64_t *size);
/* <root>/<name>/config.cfg (optional) into ms; "FILE:LINE: ..." errors. */
sl_err_t repo_settings_read(const char *dir, model_settings_t *ms, char *errstr,
                            size_t errstr_size);
/* Load, label and warm up <root>/<name>/<version>/model.onnx with settings ms. */
sl_err_t repo_version_load(const char *root, const char *name, int64_t version,
                           const model_settings_t *ms, sl_repo_model_t **mp, char *errstr,
                           size_t errstr_size);
void repo_model_free(sl_repo_model_t *m);
void repo_settings_cleanup(model_settings_t *ms);

#endif /* SL_REPO_INT_H */
