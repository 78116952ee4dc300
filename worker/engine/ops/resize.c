/*
 * Resize (10, 11, 13) and Upsample (7, 9): nearest, linear and cubic
 * interpolation of every axis, with the coordinate transformations,
 * nearest-rounding modes, cubic_coeff_a, exclude_outside and
 * tf_crop_and_resize's roi and extrapolation_value.
 *
 * The interpolation is separable: each axis is resized in turn, through
 * two float buffers, from taps (input index, weight) computed once per axis.
 * That is exact for these kernels, whose weights sum to 1 (so a line of
 * extrapolation values stays one along the later axes).
 * @sa ONNX docs/Operators.md, "Resize" and "Upsample"; the reference
 *     interpolation of onnx/backend/test/case/node/resize.py (a cubic or
 *     linear tap outside the input takes the edge value unless
 *     exclude_outside drops it and renormalises).
 */
#include <math.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

enum { M_NEAREST, M_LINEAR, M_CUBIC };
enum {
        CT_HALF_PIXEL,
        CT_PYTORCH_HALF_PIXEL,
        CT_ALIGN_CORNERS,
        CT_ASYMMETRIC,
        CT_TF_HALF_PIXEL_FOR_NN,
        CT_TF_CROP_AND_RESIZE
};
enum { NR_ROUND_PREFER_FLOOR, NR_ROUND_PREFER_CEIL, NR_FLOOR, NR_CEIL };

#define TAPS 4

typedef struct {
        int mode, ct, nr;
        double a;      /* cubic_coeff_a */
        bool exclude;  /* exclude_outside */
        double extrap; /* extrapolation_value */
} resize_t;

static int lookup(const char *s, const char *const *names, int n)
{
        for (int i = 0; i < n; i++)
                if (!strcmp(s, names[i]))
                        return i;
        return -1;
}

static const char *const mode_names[] = {"nearest", "linear", "cubic"};
static const char *const ct_names[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
static const char *const nr_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* Attributes as the node's opset reads them; -1 fields when invalid. */
static void read_attrs(const sl_node_t *node, int64_t opset, bool upsample, resize_t *r)
{
        char b1[32], b2[32], b3[32];
        const char *mode = sl_attr_string(node, "mode", "nearest", b1, sizeof(b1));
        r->mode = lookup(mode, mode_names, 3);
        if (r->mode < 0 && !strcmp(mode, "bilinear")) /* Upsample-7 spelling */
                r->mode = M_LINEAR;
        if (upsample || opset < 11) {
                /* Upsample and Resize-10: output index / scale, floor for nearest. */
                r->ct = CT_ASYMMETRIC;
                r->nr = NR_FLOOR;
                if (r->mode == M_CUBIC)
                        r->mode = -1;
        } else {
                r->ct = lookup(sl_attr_string(node, "coordinate_transformation_mode", "half_pixel",
                                              b2, sizeof(b2)),
                               ct_names, 6);
                r->nr = lookup(
                    sl_attr_string(node, "nearest_mode", "round_prefer_floor", b3, sizeof(b3)),
                    nr_names, 4);
        }
        r->a = sl_attr_float(node, "cubic_coeff_a", -0.75f);
        r->exclude = sl_attr_int(node, "exclude_outside", 0) != 0;
        r->extrap = sl_attr_float(node, "extrapolation_value", 0.0f);
}

static sl_err_t check(const sl_node_t *node, int64_t opset, bool upsample, char *errstr,
                      size_t errstr_size)
{
        resize_t r;
        read_attrs(node, opset, upsample, &r);
        if (r.mode < 0 || r.ct < 0 || r.nr < 0) {
                sl_strfmt(errstr, errstr_size,
                          "unsupported mode, coordinate_transformation_mode or nearest_mode");
                return SL_ERR_UNSUPPORTED;
        }
        if (sl_attr_int(node, "antialias", 0) || sl_attr_find(node, "axes") ||
            sl_attr_find(node, "keep_aspect_ratio_policy")) {
                sl_strfmt(errstr, errstr_size,
                          "antialias, axes and keep_aspect_ratio_policy are not supported");
                return SL_ERR_UNSUPPORTED;
        }
        return SL_OK;
}

sl_err_t sl_check_resize(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        return check(node, opset, false, errstr, errstr_size);
}

sl_err_t sl_check_upsample(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        return check(node, opset, true, errstr, errstr_size);
}

static void cubic_coeffs(double r, double A, double *c)
{
        double s = r + 1, t = 1 - r, u = 2 - r;
        c[0] = ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
        c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        c[2] = ((A + 2) * t - (A + 3)) * t * t + 1;
        c[3] = ((A * u - 5 * A) * u + 8 * A) * u - 4 * A;
}

/* Input coordinate of output index \p x (scale = out/in as the model gives it). */
static double source_coord(const resize_t *r, int64_t x, double scale, int64_t in, double out_len,
                           double r0, double r1)
{
        switch (r->ct) {
        case CT_PYTORCH_HALF_PIXEL:
                return out_len > 1 ? ((double)x + 0.5) / scale - 0.5 : 0.0;
        case CT_ALIGN_CORNERS:
                return out_len == 1 ? 0.0 : (double)x * (double)(in - 1) / (out_len - 1);
        case CT_ASYMMETRIC:
                return (double)x / scale;
        case CT_TF_HALF_PIXEL_FOR_NN:
                return ((double)x + 0.5) / scale;
        case CT_TF_CROP_AND_RESIZE:
                if (out_len == 1)
                        return (r1 - r0) * (double)(in - 1) / 2 + r0 * (double)(in - 1);
                return (double)x * (r1 - r0) * (double)(in - 1) / (out_len - 1) +
                       r0 * (double)(in - 1);
        default:
                return ((double)x + 0.5) / scale - 0.5;
        }
}

static int64_t nearest(const resize_t *r, double x)
{
        double f = floor(x);
        switch (r->nr) {
        case NR_FLOOR:
                return (int64_t)f;
        case NR_CEIL:
                return (int64_t)ceil(x);
        case NR_ROUND_PREFER_CEIL:
                return (int64_t)(x - f >= 0.5 ? f + 1 : f);
        default:
                return (int64_t)(x - f > 0.5 ? f + 1 : f);
        }
}

static int64_t clamp(int64_t i, int64_t n)
{
        return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/*
 * Taps of one axis: for output index o, idx[o*TAPS + t] and w[o*TAPS + t];
 * ext[o] set when o maps outside the input (tf_crop_and_resize). Returns
 * true when the axis is the identity (nothing to do).
 */
static bool axis_taps(const resize_t *r, int64_t in, int64_t out, double scale, double out_len,
                      double r0, double r1, int64_t *idx, float *w, uint8_t *ext)
{
        bool ident = in == out;
        for (int64_t o = 0; o < out; o++) {
                double x = source_coord(r, o, scale, in, out_len, r0, r1), c[TAPS] = {0};
                double f = floor(x), ratio = x - f, sum = 0;
                int64_t x0 = (int64_t)f, *ip = idx + o * TAPS;
                float *wp = w + o * TAPS;
                ext[o] = r->ct == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1));
                for (int t = 0; t < TAPS; t++)
                        ip[t] = x0 - 1 + t;
                if (r->mode == M_NEAREST) {
                        ip[1] = nearest(r, x);
                        c[1] = 1;
                } else if (r->mode == M_LINEAR) {
                        c[1] = 1 - ratio;
                        c[2] = ratio;
                } else {
                        cubic_coeffs(ratio, r->a, c);
                }
                for (int t = 0; t < TAPS; t++) {
                        if (r->exclude && (ip[t] < 0 || ip[t] >= in))
                                c[t] = 0;
                        sum += c[t];
                        ip[t] = clamp(ip[t], in);
                }
                for (int t = 0; t < TAPS; t++)
                        wp[t] = (float)(r->exclude && sum != 0 ? c[t] / sum : c[t]);
                ident = ident && !ext[o] && wp[1] == 1 && ip[1] == o && !wp[0] && !wp[2] && !wp[3];
        }
        return ident;
}

/* One axis: [outer, in, inner] -> [outer, out, inner]. */
static void axis_apply(const float *x, float *y, int64_t outer, int64_t in, int64_t out,
                       int64_t inner, const int64_t *idx, const float *w, const uint8_t *ext,
                       float extrap)
{
        for (int64_t p = 0; p < outer; p++)
                for (int64_t o = 0; o < out; o++) {
                        float *yp = y + (p * out + o) * inner;
                        const int64_t *ip = idx + o * TAPS;
                        const float *wp = w + o * TAPS;
                        if (ext[o]) {
                                for (int64_t k = 0; k < inner; k++)
                                        yp[k] = extrap;
                                continue;
                        }
                        for (int64_t k = 0; k < inner; k++)
                                yp[k] = 0;
                        for (int t = 0; t < TAPS; t++) {
                                const float *xp = x + (p * in + ip[t]) * inner;
                                if (wp[t] == 0)
                                        continue;
                                for (int64_t k = 0; k < inner; k++)
                                        yp[k] += wp[t] * xp[k];
                        }
                }
}

static sl_err_t resize(sl_opctx_t *c, bool upsample)
{
        const sl_tensor_t *x = c->in[0], *roi = NULL, *scales = NULL, *sizes = NULL;
        int64_t odims[SL_MAX_DIMS], cur[SL_MAX_DIMS], maxlen = 1, big;
        double sc[SL_MAX_DIMS], outlen[SL_MAX_DIMS], r0[SL_MAX_DIMS], r1[SL_MAX_DIMS];
        const float *fs = NULL;
        int nd, nfs = -1;
        resize_t r;
        sl_tensor_t *y;
        char *mem;
        float *buf[2], *w;
        int64_t *idx;
        uint8_t *ext;
        const float *src;
        int which = 0, last = -1;

        if (!x || x->dtype != SL_DT_FLOAT)
                return sl_op_fail(c, SL_ERR_UNSUPPORTED, "float input required");
        nd = x->ndim;
        read_attrs(c->node, c->opset, upsample, &r);
        if (upsample && c->opset < 9) {
                nfs = sl_attr_floats(c->node, "scales", &fs);
        } else if (upsample || c->opset < 11) {
                scales = sl_op_in(c, 1);
        } else {
                roi = sl_op_in(c, 1);
                scales = sl_op_in(c, 2);
                sizes = sl_op_in(c, 3);
        }
        if (scales && sl_tensor_numel(scales) == 0)
                scales = NULL;
        if (sizes && sl_tensor_numel(sizes) == 0)
                sizes = NULL;
        if (!!sizes == (!!scales || nfs >= 0))
                return sl_op_fail(c, SL_ERR_MODEL, "exactly one of scales and sizes is needed");
        if ((scales && (sl_tensor_numel(scales) != nd || !sl_dtype_is_float(scales->dtype))) ||
            (nfs >= 0 && nfs != nd) || (sizes && sl_tensor_numel(sizes) != nd))
                return sl_op_fail(c, SL_ERR_SHAPE, "scales/sizes must have %d values", nd);
        for (int d = 0; d < nd; d++) {
                int64_t in = x->dims[d];
                if (sizes) {
                        odims[d] = sl_tensor_get_i64(sizes, d);
                        sc[d] = in ? (double)odims[d] / (double)in : 1.0;
                        outlen[d] = (double)odims[d];
                } else {
                        sc[d] = fs ? fs[d] : sl_tensor_get_f64(scales, d);
                        odims[d] = (int64_t)floor((double)in * sc[d]);
                        outlen[d] = (double)in * sc[d];
                }
                if (odims[d] < 0 || !(sc[d] > 0))
                        return sl_op_fail(c, SL_ERR_SHAPE, "axis %d: invalid scale or size", d);
                r0[d] = 0, r1[d] = 1;
                if (r.ct == CT_TF_CROP_AND_RESIZE) {
                        if (!roi || sl_tensor_numel(roi) != 2 * nd)
                                return sl_op_fail(c, SL_ERR_SHAPE, "roi must have %d values",
                                                  2 * nd);
                        r0[d] = sl_tensor_get_f64(roi, d);
                        r1[d] = sl_tensor_get_f64(roi, nd + d);
                }
                maxlen = odims[d] > maxlen ? odims[d] : maxlen;
        }
        if (!(y = sl_op_output(c, 0, SL_DT_FLOAT, nd, odims)))
                return SL_ERR_NOMEM;
        if (!sl_tensor_numel(y))
                return SL_OK;
        /* The largest intermediate: every prefix of axes resized. */
        memcpy(cur, x->dims, sizeof(int64_t) * (size_t)nd);
        big = sl_tensor_numel(x);
        for (int d = 0; d < nd; d++) {
                int64_t n;
                cur[d] = odims[d];
                n = sl_dims_numel(nd, cur);
                big = n > big ? n : big;
        }
        mem = sl_op_scratch(c, (size_t)big * 2 * sizeof(float) +
                                   (size_t)maxlen * TAPS * (sizeof(int64_t) + sizeof(float)) +
                                   (size_t)maxlen + 64);
        if (!mem)
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        idx = (int64_t *)mem;
        w = (float *)(idx + maxlen * TAPS);
        buf[0] = w + maxlen * TAPS;
        buf[1] = buf[0] + big;
        ext = (uint8_t *)(buf[1] + big);
        /* Axes that change, then apply them in order, the last into Y. */
        for (int d = 0; d < nd; d++)
                if (!axis_taps(&r, x->dims[d], odims[d], sc[d], outlen[d], r0[d], r1[d], idx, w,
                               ext))
                        last = d;
        src = x->data;
        memcpy(cur, x->dims, sizeof(int64_t) * (size_t)nd);
        for (int d = 0; d <= last; d++) {
                int64_t outer = 1, inner = 1;
                float *dst;
                if (axis_taps(&r, x->dims[d], odims[d], sc[d], outlen[d], r0[d], r1[d], idx, w,
                              ext))
                        continue;
                for (int k = 0; k < d; k++)
                        outer *= cur[k];
                for (int k = d + 1; k < nd; k++)
                        inner *= cur[k];
                dst = d == last ? (float *)y->data : buf[which];
                axis_apply(src, dst, outer, x->dims[d], odims[d], inner, idx, w, ext,
                           (float)r.extrap);
                cur[d] = odims[d];
                src = dst;
                which ^= 1;
        }
        if (last < 0)
                memcpy(y->data, x->data, x->nbytes);
        return SL_OK;
}

sl_err_t sl_op_resize(sl_opctx_t *c)
{
        return resize(c, false);
}

sl_err_t sl_op_upsample(sl_opctx_t *c)
{
        return resize(c, true);
}
