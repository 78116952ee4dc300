/* Private to worker/prep: the parsed `input:` group, shared by prep.c and apply.c. */
#ifndef SL_PREP_INT_H
#define SL_PREP_INT_H

#include "prep.h"

struct sl_prep_s {
        char *path;          /* config.cfg, for sl_prep_check()'s "FILE:LINE:" */
        char group_name[32]; /* the group's setting name ("input"), for errors */
        sl_dtype_t datatype; /* SL_DT_UNDEFINED = the model's */
        sl_prep_layout_t layout;
        double scale;
        size_t n_mean, n_std; /* 0 = not set; 1 = every channel; C = per channel */
        int line_datatype, line_layout, line_mean, line_std;
        /*
         * y = (x * scale - mean[c]) / std[c] folded into y = x * a[c] + b[c]
         * (computed in double, rounded once to float): n_coef = max(n_mean,
         * n_std, 1) entries, or 1 entry used for every channel.
         */
        size_t n_coef;
        float *a, *b;
        int identity;        /* nothing set that changes a tensor: memcpy */
        int values_identity; /* scale 1, mean 0, std 1: no arithmetic needed */
};

#endif /* SL_PREP_INT_H */
