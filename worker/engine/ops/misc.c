/*
 * Operator variants built on the kernels of other files without touching
 * them: MaxPool's Indices in column-major order (storage_order = 1).
 */
#include <string.h>

#include "../engine_int.h"
#include "ops.h"

/* sl_geom_check() without its storage_order restriction (handled here). */
sl_err_t sl_check_max_pool(const sl_node_t *node, int64_t opset, char *errstr, size_t errstr_size)
{
        sl_node_t copy = *node;
        Onnx__NodeProto np = *node->proto;
        Onnx__AttributeProto *attrs[64];
        int64_t so = sl_attr_int(node, "storage_order", 0);

        if (so != 0 && so != 1) {
                sl_strfmt(errstr, errstr_size, "storage_order=%lld is not 0 or 1", (long long)so);
                return SL_ERR_MODEL;
        }
        if (np.n_attribute > sizeof(attrs) / sizeof(attrs[0])) {
                sl_strfmt(errstr, errstr_size, "too many attributes");
                return SL_ERR_UNSUPPORTED;
        }
        /* The shared check, shown the node without storage_order. */
        np.attribute = attrs;
        np.n_attribute = 0;
        for (size_t i = 0; i < node->proto->n_attribute; i++) {
                Onnx__AttributeProto *a = node->proto->attribute[i];
                if (!a->name || strcmp(a->name, "storage_order"))
                        attrs[np.n_attribute++] = a;
        }
        copy.proto = &np;
        return sl_geom_check(&copy, opset, errstr, errstr_size);
}

/*
 * MaxPool; with storage_order = 1 the Indices output (flat indices into X,
 * row-major over N, C and the spatial axes) is rewritten so that the spatial
 * part is column-major: for 2-D, (n*C + c)*H*W + h + w*H instead of
 * (n*C + c)*H*W + h*W + w (ONNX Runtime's and the reference's convention).
 * @sa ONNX docs/Operators.md, "MaxPool" (8, 10, 11, 12): storage_order.
 */
sl_err_t sl_op_max_pool_indexed(sl_opctx_t *c)
{
        const sl_tensor_t *x = c->in[0];
        sl_err_t err = sl_op_max_pool(c);
        int64_t sp = 1, n, sdims[SL_MAX_DIMS];
        int r;
        sl_tensor_t *ind;

        if (err || sl_attr_int(c->node, "storage_order", 0) != 1 || !sl_op_has_output(c, 1))
                return err;
        ind = sl_op_output_current(c, 1);
        r = x->ndim - 2;
        for (int d = 0; d < r; d++) {
                sdims[d] = x->dims[2 + d];
                sp *= sdims[d];
        }
        n = sl_tensor_numel(ind);
        for (int64_t i = 0; i < n; i++) {
                int64_t v = ((int64_t *)ind->data)[i], rem, cm = 0, mul = 1;
                int64_t coords[SL_MAX_DIMS];
                if (sp <= 0 || v < 0)
                        continue;
                /* Row-major spatial coordinates, recombined first-axis-fastest. */
                rem = v % sp;
                for (int d = r - 1; d >= 0; d--) {
                        coords[d] = rem % sdims[d];
                        rem /= sdims[d];
                }
                for (int d = 0; d < r; d++) {
                        cm += coords[d] * mul;
                        mul *= sdims[d];
                }
                ((int64_t *)ind->data)[i] = v - v % sp + cm;
        }
        return SL_OK;
}
