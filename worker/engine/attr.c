/* Node attributes (AttributeProto) looked up by name, with spec defaults. */
#include <string.h>

#include "engine_int.h"

const Onnx__AttributeProto *sl_attr_find(const sl_node_t *node, const char *name)
{
        const Onnx__NodeProto *np = node->proto;
        for (size_t i = 0; i < np->n_attribute; i++)
                if (np->attribute[i]->name && !strcmp(np->attribute[i]->name, name))
                        return np->attribute[i];
        return NULL;
}

int64_t sl_attr_int(const sl_node_t *node, const char *name, int64_t def)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, name);
        return a && a->has_i ? a->i : def;
}

float sl_attr_float(const sl_node_t *node, const char *name, float def)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, name);
        if (!a)
                return def;
        if (a->has_f)
                return a->f;
        if (a->has_i) /* some exporters write integral values as ints */
                return (float)a->i;
        return def;
}

const char *sl_attr_string(const sl_node_t *node, const char *name, const char *def, char *buf,
                           size_t buf_size)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, name);
        size_t n;
        if (!a || !a->has_s || !buf_size)
                return def;
        n = a->s.len < buf_size - 1 ? a->s.len : buf_size - 1;
        if (n)
                memcpy(buf, a->s.data, n);
        buf[n] = '\0';
        return buf;
}

int sl_attr_ints(const sl_node_t *node, const char *name, const int64_t **vals)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, name);
        if (!a)
                return -1;
        *vals = a->ints;
        return (int)a->n_ints;
}

int sl_attr_floats(const sl_node_t *node, const char *name, const float **vals)
{
        const Onnx__AttributeProto *a = sl_attr_find(node, name);
        if (!a)
                return -1;
        *vals = a->floats;
        return (int)a->n_floats;
}
