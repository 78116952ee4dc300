/**
 * @file engine_int.h
 * @brief Private declarations shared by the engine's own files: the loaded
 *        graph, the session's value slots and the operator kernel interface.
 *
 * Not to be included outside worker/engine/.
 */
#ifndef SL_ENGINE_INT_H
#define SL_ENGINE_INT_H

#include <stdbool.h>

#include "engine.h"
#include "onnx.pb-c.h"

/** @brief Maximum number of inputs/outputs of one node (Concat, Sum, ...). */
#define SL_NODE_IO_MAX 64

/** @brief Upper bound of one tensor's size in bytes, against hostile files. */
#define SL_TENSOR_BYTES_MAX ((size_t)1 << 40)

struct sl_opctx_s;
struct sl_node_s;

/** @brief One operator implementation (an entry of the registry, ops/registry.c). */
typedef struct sl_op_s {
        const char *op_type;
        /** Load-time check of attributes (may be NULL); errstr gets the reason. */
        sl_err_t (*check)(const struct sl_node_s *node, int64_t opset, char *errstr,
                          size_t errstr_size);
        sl_err_t (*run)(struct sl_opctx_s *c);
} sl_op_t;

/** @brief Find the kernel for \p op_type (default domain), NULL when unsupported. */
const sl_op_t *sl_op_find(const char *op_type);

/**
 * @brief Activation fused into the node that produces its input (load-time
 *        fusion, fuse.c): the kernel applies it to its output in place of a
 *        separate node.
 */
typedef enum {
        SL_ACT_NONE = 0,
        SL_ACT_RELU,
        SL_ACT_CLIP, /**< min(max(x, act_min), act_max) (Clip, ReLU6) */
        SL_ACT_GELU, /**< x * (1 + erf(x / sqrt 2)) / 2, the exporters' Erf form */
} sl_act_t;

/** @brief A node of the graph, in execution (topological) order. */
typedef struct sl_node_s {
        const Onnx__NodeProto *proto; /**< owned by the model's ModelProto */
        const char *name;             /**< node name, "" when absent */
        size_t index;                 /**< index in the file's node list */
        const sl_op_t *op;
        int n_in, n_out;
        /** Value ids; -1 for an omitted optional input. The last n_implicit
         * entries are outer-scope values read by the node's subgraphs (Loop,
         * If, Scan bodies): they order the graph and count as consumers, but
         * kernels do not see them (c->n_in excludes them). */
        int *in;
        int n_implicit;
        int *out;     /**< value ids; the sink slot for an omitted optional output */
        sl_act_t act; /**< fused activation applied to output 0 (Conv, Gemm) */
        /** Conv only: a fused 2-D MaxPool (fuse.c) with kernel_shape = strides =
         * pool, no pads, applied after act; {0, 0} when none. */
        int64_t pool[2];
        float act_min, act_max; /**< bounds of SL_ACT_CLIP */
        /** AveragePool only: a constant-zero Pad folded in (fuse.c), spatial
         * {top, left, bottom, right}; the pads count as input elements. */
        int64_t prepad[4];
        /** Subgraphs of GRAPH attributes (Loop/Scan "body", If branches):
         * sub[i] belongs to proto->attribute[i], NULL for other attributes. */
        struct sl_model_s **sub;
        int n_sub;
} sl_node_t;

/** @brief "Conv", or "Conv+Relu" for a node with a fused activation (static string). */
const char *sl_node_label(const sl_node_t *node);

/**
 * @brief Load-time graph rewrites on a built, sorted graph: fold a Relu into
 *        the Conv or Gemm that is its only producer (when the Conv/Gemm output
 *        feeds nothing else and is not a graph output).
 * @returns SL_OK (never fails today; the model stays valid either way).
 */
sl_err_t sl_model_fuse(sl_model_t *m);

/**
 * @brief Load-time constant folding (fold.c), run before sl_model_fuse():
 *        every node whose inputs are all initializers (or values folded
 *        before it) runs once and its outputs become initializers; Shape of a
 *        value whose dimensions are statically known, and Gather of the known
 *        entries of a partly known shape, become constants too (the shape
 *        plumbing exporters emit around Reshape). Top-level graph only.
 *        SLUICE_FOLD=0 in the environment turns this and the fusions that
 *        rewrite weights (BatchNormalization into Conv/Gemm, bias and GELU
 *        into MatMul/Gemm) off, to compare.
 * @returns SL_OK, SL_ERR_NOMEM; a node that fails to run is left in the graph
 *          (it will fail, with its error, at run time).
 */
sl_err_t sl_model_fold(sl_model_t *m);

/** @brief False when SLUICE_FOLD=0 (fold.c). */
bool sl_fold_enabled(void);

/** @brief Whether this CPU runs AVX-512F code (cpuid, asked once; cpu.c). */
bool sl_cpu_avx512f(void);

/**
 * @brief Append initializer \p t (ownership moves to the model, on success
 *        only) named \p name (borrowed, must outlive the model) as a new value.
 *        Node outputs that pointed at the sink are moved to the new sink.
 * @returns the value id, or -1 on allocation failure.
 */
int sl_model_add_const(sl_model_t *m, const char *name, const sl_tensor_t *t);

/**
 * @brief Remove the nodes with \p dead[i] set (execution order) and free
 *        their lists; the order of the others is kept.
 */
void sl_model_drop_nodes(sl_model_t *m, const bool *dead);

/** @brief sl_session_new() without SLUICE_PROFILE output (load-time folding). */
sl_err_t sl_session_new_quiet(sl_model_t *model, sl_session_t **sessionp);

/** @brief Run node \p i of the session's model alone (load-time folding). */
sl_err_t sl_session_run_node(sl_session_t *session, size_t i, char *errstr, size_t errstr_size);

/** @brief The session's current tensor of value \p v (borrowed). */
const sl_tensor_t *sl_session_value(const sl_session_t *session, int v);

/** @brief Bind value \p v of the session to \p t (a view; load-time folding). */
void sl_session_set_value(sl_session_t *session, int v, const sl_tensor_t *t);

/** @brief Apply the fused activation of \p node to \p n floats in place. */
void sl_act_apply_node(const sl_node_t *node, float *x, size_t n);

/** @brief Apply \p act (not SL_ACT_CLIP, which needs its bounds) in place. */
void sl_act_apply(sl_act_t act, float *x, size_t n);

/**
 * @brief 2-D MaxPool / AveragePool on float NCHW (ops/conv_pool.c) that fuse.c
 *        puts in place of the generic kernels (other types and ranks fall
 *        back to them); the AveragePool one also applies node->prepad.
 */
extern const sl_op_t sl_op_pool2d_max, sl_op_pool2d_avg;

/** @brief Where a value of the graph comes from. */
typedef enum {
        SL_VALUE_INPUT,
        SL_VALUE_INITIALIZER,
        SL_VALUE_NODE,
        SL_VALUE_OUTER, /**< a subgraph's reference to a value of an enclosing graph */
} sl_value_kind_t;

typedef struct sl_value_s {
        const char *name;
        sl_value_kind_t kind;
        int producer;     /**< node index (original) for SL_VALUE_NODE, else -1 */
        int outer;        /**< SL_VALUE_OUTER: the value's id in the parent graph */
        sl_tensor_t init; /**< SL_VALUE_INITIALIZER: data owned by the model */
} sl_value_t;

/**
 * @brief A loaded graph: the model's main graph, or a subgraph (a GRAPH
 *        attribute of a Loop/If/Scan node, with \p parent set, \p proto NULL,
 *        \p path naming the node and attribute for error messages).
 */
struct sl_model_s {
        char *path;
        Onnx__ModelProto *proto; /**< NULL for a subgraph (owned by the top model) */
        const Onnx__GraphProto *graph;
        struct sl_model_s *parent;
        int depth; /**< subgraph nesting depth (0 at top) */
        int64_t opset;
        char *producer;
        size_t n_values; /**< value slots; slot n_values is the sink */
        size_t values_cap;
        sl_value_t *values;
        size_t n_outer; /**< values of kind SL_VALUE_OUTER (bound before each run) */
        int *outer_ids;
        size_t n_nodes;
        sl_node_t *nodes;
        size_t n_inputs, n_outputs;
        sl_value_info_t *inputs, *outputs;
        int *input_ids, *output_ids;
};

/* Memory planning (plan.c; used by session.c). */

/** @brief Alignment of every value in an arena (bytes; one cache line, AVX-512). */
#define SL_PLAN_ALIGN 64
/** @brief "No offset" / "not planned" (SIZE_MAX). */
#define SL_PLAN_NONE ((size_t)-1)

/**
 * @brief Lifetimes of the values of \p m over its execution order: value v is
 *        written by node first[v] and last read by node last[v] (n_nodes for
 *        a graph output); first[v] = -1 for values no node writes (inputs,
 *        initializers, outer-scope values). Implicit inputs count as reads.
 * @param first, last  arrays of m->n_values entries, filled.
 */
void sl_plan_lifetimes(const sl_model_t *m, int *first, int *last);

/**
 * @brief Place the values with first[v] >= 0 and size[v] != SL_PLAN_NONE
 *        (bytes) in one arena so that values whose lifetimes [first, last]
 *        overlap never share bytes: greedy by size, best fit, offsets aligned
 *        to SL_PLAN_ALIGN.
 * @param off  filled: offset of each value, SL_PLAN_NONE for the others.
 * @returns the arena size in bytes, or SL_PLAN_NONE on allocation failure.
 * @sa Pisarchyk & Lee, "Efficient Memory Management for Deep Neural Net
 *     Inference" (2020), "greedy by size" (TFLite's arena planner).
 */
size_t sl_plan_layout(size_t n_values, const size_t *size, const int *first, const int *last,
                      size_t *off);

/** @brief Kernel context of one node execution. */
typedef struct sl_opctx_s {
        sl_session_t *session;
        const sl_node_t *node;
        int64_t opset;
        int n_in, n_out;
        const sl_tensor_t *in[SL_NODE_IO_MAX]; /**< NULL for omitted optional inputs */
        char *errstr;
        size_t errstr_size;
} sl_opctx_t;

/**
 * @brief Shape (and allocate if needed) output \p i of the running node.
 * @returns the tensor, or NULL on allocation failure / bad shape (errstr set).
 * @remark The buffer belongs to the session: after the first run of a
 *         batch-size bucket it is the value's region of that bucket's arena
 *         (session.c), shared with values not live at the same time. Its
 *         contents do not survive to the next run; within a run, shaping
 *         the same output again keeps the bytes already written (Loop's
 *         stacked outputs grow this way).
 */
sl_tensor_t *sl_op_output(sl_opctx_t *c, int i, sl_dtype_t dt, int ndim, const int64_t *dims);

/**
 * @brief Output \p i of the running node as last shaped by sl_op_output() in
 *        this run (kernels that fill an output in several steps: Scan).
 */
sl_tensor_t *sl_op_output_current(sl_opctx_t *c, int i);

/** @brief Same as sl_op_output() with the shape of \p like. */
sl_tensor_t *sl_op_output_like(sl_opctx_t *c, int i, sl_dtype_t dt, const sl_tensor_t *like);

/**
 * @brief Scratch memory of at least \p bytes for the running kernel (im2col
 *        buffers). Valid until the kernel returns; NULL on allocation failure.
 */
void *sl_op_scratch(sl_opctx_t *c, size_t bytes);

/**
 * @brief Memory the session keeps for the running node across runs (packed
 *        weights), at least \p bytes, 64-byte aligned. *\p fresh is set when
 *        the memory was just (re)allocated and its contents must be rebuilt.
 * @returns NULL on allocation failure.
 */
void *sl_op_node_cache(sl_opctx_t *c, size_t bytes, bool *fresh);

/** @brief True when input \p i is an initializer (constant for the model's life). */
bool sl_op_in_const(const sl_opctx_t *c, int i);

/** @brief Input \p i or NULL when absent. */
static inline const sl_tensor_t *sl_op_in(const sl_opctx_t *c, int i)
{
        return i < c->n_in ? c->in[i] : NULL;
}

/**
 * @brief Refuse string inputs to kernels that do not take them: only Cast,
 *        CastLike and Identity read string tensors (engine.h, "Storage").
 * @returns SL_OK, or SL_ERR_UNSUPPORTED with the input named in c->errstr.
 * @remark Called by the session before each kernel runs (ops/cast.c).
 */
sl_err_t sl_op_check_strings(sl_opctx_t *c);

/** @brief True when output \p i has a name (is consumed or is a graph output). */
bool sl_op_has_output(const sl_opctx_t *c, int i);

/**
 * @brief The subgraph of GRAPH attribute \p attr of the running node, NULL
 *        when the node has none of that name.
 */
const sl_model_t *sl_op_subgraph(const sl_opctx_t *c, const char *attr);

/**
 * @brief Run subgraph \p attr of the running node once (a Loop iteration, an
 *        If branch, a Scan step).
 *
 * \p inputs (one per subgraph input, in order) are copied into the
 * subgraph's own buffers before it runs, so they may point into the previous
 * run's outputs (loop-carried values). Outer-scope values are read from the
 * running session.
 * @param outputs  filled with one view per subgraph output, owned by the
 *                 subgraph's session and valid until its next run.
 * @returns SL_OK; SL_ERR_MODEL (input/output count mismatch, a node failed:
 *          errstr names it), SL_ERR_NOMEM, or a kernel's error.
 */
sl_err_t sl_op_subgraph_run(sl_opctx_t *c, const char *attr, const sl_tensor_t *const *inputs,
                            size_t n_inputs, const sl_tensor_t **outputs, size_t n_outputs);

/** @brief Set the errstr of \p c and return \p err (for kernels). */
sl_err_t sl_op_fail(sl_opctx_t *c, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Attributes (ONNX AttributeProto), looked up by name. */
const Onnx__AttributeProto *sl_attr_find(const sl_node_t *node, const char *name);
int64_t sl_attr_int(const sl_node_t *node, const char *name, int64_t def);
float sl_attr_float(const sl_node_t *node, const char *name, float def);
/** @brief Copy string attribute into \p buf (NUL-terminated); \p def when absent. */
const char *sl_attr_string(const sl_node_t *node, const char *name, const char *def, char *buf,
                           size_t buf_size);
/** @brief Integer list attribute; returns its length, or -1 when absent. */
int sl_attr_ints(const sl_node_t *node, const char *name, const int64_t **vals);
/** @brief Float list attribute; returns its length, or -1 when absent. */
int sl_attr_floats(const sl_node_t *node, const char *name, const float **vals);

/* Tensors. */
/** @brief Product of \p dims with overflow check; -1 on negative or overflow. */
int64_t sl_dims_numel(int ndim, const int64_t *dims);
/**
 * @brief Convert a TensorProto into a tensor that owns its data (malloc).
 * @returns SL_OK, SL_ERR_MODEL (inconsistent sizes, negative dims),
 *          SL_ERR_UNSUPPORTED (data type, external data), SL_ERR_NOMEM.
 */
sl_err_t sl_tensor_from_proto(const Onnx__TensorProto *tp, sl_tensor_t *t, char *errstr,
                              size_t errstr_size);

/**
 * @brief Bytes sl_tensor_copy_block() needs for \p t: nbytes, plus for a
 *        string tensor each string's bytes and NUL.
 * @returns the size, or SIZE_MAX when the strings pass SL_TENSOR_BYTES_MAX.
 */
size_t sl_tensor_block_size(const sl_tensor_t *t);
/**
 * @brief Copy \p src into \p block (sl_tensor_block_size() bytes) and make
 *        \p dst, with src's type and shape, a view of it. A string tensor's
 *        pointers and bytes both go into the block, laid out as
 *        sl_tensor_from_proto() lays them, so \p dst reads nothing of \p src.
 * @remark \p block stays the caller's, and must outlive \p dst and every
 *         tensor its string pointers are copied into.
 */
void sl_tensor_copy_block(sl_tensor_t *dst, const sl_tensor_t *src, void *block);

/** @brief Read element \p i of \p t as double / int64 (any numeric dtype). */
double sl_tensor_get_f64(const sl_tensor_t *t, int64_t i);
int64_t sl_tensor_get_i64(const sl_tensor_t *t, int64_t i);
void sl_tensor_set_f64(sl_tensor_t *t, int64_t i, double v);
void sl_tensor_set_i64(sl_tensor_t *t, int64_t i, int64_t v);

/** @brief True for float/double (and float16) types. */
bool sl_dtype_is_float(sl_dtype_t dt);

/** @brief Row-major strides of \p ndim dims (elements). */
void sl_strides(int ndim, const int64_t *dims, int64_t *strides);

/** @brief Normalise axis \p axis in [-rank, rank) (or [-rank, rank] with \p incl); -1 if bad. */
int sl_axis(int64_t axis, int rank, bool incl);

/**
 * @brief Numpy broadcast of two shapes into \p out (rank = max rank).
 * @returns 0 or -1 when not broadcastable.
 */
int sl_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);

/**
 * @brief Strides of \p t when broadcast to the rank-\p ndim shape \p dims
 *        (0 along broadcast dimensions).
 */
void sl_broadcast_strides(const sl_tensor_t *t, int ndim, const int64_t *dims, int64_t *strides);

#endif /* SL_ENGINE_INT_H */
