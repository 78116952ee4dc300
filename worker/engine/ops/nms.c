/*
 * NonMaxSuppression (10, 11): per batch and class, boxes above
 * score_threshold in descending score order (ties: lower index first), each
 * kept unless its IoU with a kept box exceeds iou_threshold, at most
 * max_output_boxes_per_class; output rows [batch, class, box].
 * @sa ONNX docs/Operators.md, "NonMaxSuppression" (center_point_box 0:
 *     [y1, x1, y2, x2] with either corner order; 1: [x_center, y_center,
 *     width, height]).
 */
#include <stdlib.h>
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

/* Box as [y1, x1, y2, x2] with y1 <= y2, x1 <= x2. */
static void corners(const float *b, bool center, double *o)
{
        if (center) {
                o[0] = b[1] - b[3] / 2.0;
                o[1] = b[0] - b[2] / 2.0;
                o[2] = b[1] + b[3] / 2.0;
                o[3] = b[0] + b[2] / 2.0;
                return;
        }
        o[0] = b[0] < b[2] ? b[0] : b[2];
        o[2] = b[0] < b[2] ? b[2] : b[0];
        o[1] = b[1] < b[3] ? b[1] : b[3];
        o[3] = b[1] < b[3] ? b[3] : b[1];
}

static double iou(const float *a, const float *b, bool center)
{
        double p[4], q[4], ih, iw, inter, ua;
        corners(a, center, p);
        corners(b, center, q);
        ih = (p[2] < q[2] ? p[2] : q[2]) - (p[0] > q[0] ? p[0] : q[0]);
        iw = (p[3] < q[3] ? p[3] : q[3]) - (p[1] > q[1] ? p[1] : q[1]);
        if (ih <= 0 || iw <= 0)
                return 0;
        inter = ih * iw;
        ua = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter;
        return ua > 0 ? inter / ua : 0;
}

typedef struct {
        float score;
        int64_t idx;
} cand_t;

static int by_score(const void *a, const void *b)
{
        const cand_t *x = a, *y = b;
        if (x->score != y->score)
                return x->score > y->score ? -1 : 1;
        return x->idx < y->idx ? -1 : x->idx > y->idx;
}

sl_err_t sl_op_nms(sl_opctx_t *c)
{
        const sl_tensor_t *boxes = c->in[0], *scores = sl_op_in(c, 1);
        const sl_tensor_t *mo = sl_op_in(c, 2), *it = sl_op_in(c, 3), *st = sl_op_in(c, 4);
        bool center = sl_attr_int(c->node, "center_point_box", 0) != 0;
        int64_t B, C, S, maxo = 0, nsel = 0, dims[2];
        double iou_t = it && sl_tensor_numel(it) ? sl_tensor_get_f64(it, 0) : 0;
        bool has_st = st && sl_tensor_numel(st);
        float score_t = has_st ? (float)sl_tensor_get_f64(st, 0) : 0;
        cand_t *cand;
        int64_t *sel, *kept;
        sl_tensor_t *y;

        if (!boxes || !scores || boxes->dtype != SL_DT_FLOAT || scores->dtype != SL_DT_FLOAT ||
            boxes->ndim != 3 || boxes->dims[2] != 4 || scores->ndim != 3 ||
            scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
                return sl_op_fail(c, SL_ERR_SHAPE,
                                  "boxes [B, S, 4] and scores [B, C, S] (float) required");
        B = boxes->dims[0];
        C = scores->dims[1];
        S = boxes->dims[1];
        if (mo && sl_tensor_numel(mo))
                maxo = sl_tensor_get_i64(mo, 0);
        if (maxo > S)
                maxo = S;
        if (maxo < 0)
                maxo = 0;
        cand = sl_op_scratch(c, sizeof(cand_t) * (size_t)(S + 1) +
                                    sizeof(int64_t) * (size_t)(3 * B * C * maxo + S + 1));
        if (!cand)
                return sl_op_fail(c, SL_ERR_NOMEM, "out of memory");
        kept = (int64_t *)(cand + S + 1);
        sel = kept + S + 1;
        for (int64_t b = 0; b < B; b++)
                for (int64_t k = 0; k < C; k++) {
                        const float *sc = (const float *)scores->data + (b * C + k) * S;
                        const float *bx = (const float *)boxes->data + b * S * 4;
                        int64_t n = 0, nk = 0;
                        for (int64_t i = 0; i < S && maxo > 0; i++)
                                if (!has_st || sc[i] > score_t)
                                        cand[n++] = (cand_t){sc[i], i};
                        qsort(cand, (size_t)n, sizeof(*cand), by_score);
                        for (int64_t i = 0; i < n && nk < maxo; i++) {
                                bool keep = true;
                                for (int64_t j = 0; j < nk && keep; j++)
                                        keep = iou(bx + cand[i].idx * 4, bx + kept[j] * 4,
                                                   center) <= iou_t;
                                if (!keep)
                                        continue;
                                kept[nk++] = cand[i].idx;
                                sel[3 * nsel] = b;
                                sel[3 * nsel + 1] = k;
                                sel[3 * nsel + 2] = cand[i].idx;
                                nsel++;
                        }
                }
        dims[0] = nsel;
        dims[1] = 3;
        if (!(y = sl_op_output(c, 0, SL_DT_INT64, 2, dims)))
                return SL_ERR_NOMEM;
        if (nsel)
                memcpy(y->data, sel, sizeof(int64_t) * 3 * (size_t)nsel);
        return SL_OK;
}
