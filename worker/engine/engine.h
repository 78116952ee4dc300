/**
 * @file engine.h
 * @brief The sluice ONNX model engine: load an ONNX model once, run it many
 *        times on batches of float32 (and int/bool) tensors on OpenBLAS.
 *
 * Layout convention (written once, here): tensors are dense, row-major
 * (C order); image tensors are NCHW as ONNX specifies for Conv/Pool.
 * The first dimension of a model input may be symbolic (a dim_param such as
 * "batch" or "N"), reported as -1; any batch size >= 1 may then be run.
 *
 * This module knows nothing about Kafka or Avro (see DESIGN.md).
 *
 * Memory: a session keeps one arena per batch-size bucket (the input shapes
 * with symbolic dimensions rounded up to a power of two; at most 8 buckets,
 * the least recently used goes). The first run of a bucket allocates and
 * plans; later runs of it allocate nothing. They allocate again, for one run
 * after which the bucket is planned anew, when a value outgrows the size
 * planned for it: data-dependent output shapes (NonZero, Unique, TopK with a
 * computed k, Loop trip counts) or a batch larger than the one planned within
 * its bucket. Loop/If/Scan bodies keep one buffer per value, allocating only
 * when their shapes grow. SLUICE_ARENA=0 in the environment turns planning
 * off (every node output keeps a buffer of its own).
 *
 * Threads: a loaded sl_model_t is immutable and may be shared by any number
 * of threads; a sl_session_t runs one batch at a time.
 */
#ifndef SL_ENGINE_H
#define SL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

/** @brief Maximum tensor rank supported. */
#define SL_MAX_DIMS 8

/**
 * @brief Element types. Values are ONNX's TensorProto.DataType numbers
 *        (onnx.proto), so they convert without a table.
 */
typedef enum {
        SL_DT_UNDEFINED = 0,
        SL_DT_FLOAT = 1,
        SL_DT_UINT8 = 2,
        SL_DT_INT8 = 3,
        SL_DT_UINT16 = 4,
        SL_DT_INT16 = 5,
        SL_DT_INT32 = 6,
        SL_DT_INT64 = 7,
        SL_DT_STRING = 8,
        SL_DT_BOOL = 9,
        SL_DT_FLOAT16 = 10,
        SL_DT_DOUBLE = 11,
        SL_DT_UINT32 = 12,
        SL_DT_UINT64 = 13,
        SL_DT_BFLOAT16 = 16,
} sl_dtype_t;

/*
 * Storage of the less common types:
 *  - SL_DT_FLOAT16: IEEE 754 binary16 bits in a uint16_t;
 *  - SL_DT_BFLOAT16: the upper 16 bits of an IEEE 754 binary32 in a uint16_t;
 *  - SL_DT_STRING: one `char *` per element, each a NUL-terminated byte
 *    string (ONNX strings are UTF-8; an embedded NUL ends the string here).
 *    nbytes counts the pointer array only. A tensor made by sl_tensor_load()
 *    keeps the pointers and the bytes in its one data block (freed by
 *    sl_tensor_free()); a session output's strings belong to the session,
 *    valid until its next run; a string tensor passed to sl_session_run()
 *    stays the caller's and must outlive any output read from it (Identity
 *    passes the caller's pointers through).
 */

/** @brief Size in bytes of one element of \p dt (0 for UNDEFINED and
 *         unsupported types; sizeof(char *) for STRING). */
size_t sl_dtype_size(sl_dtype_t dt);

/** @brief ONNX name of \p dt ("float", "int64", ...). */
const char *sl_dtype_name(sl_dtype_t dt);

/**
 * @brief A dense tensor (a view: it does not own \p data unless its
 *        creator says so).
 *
 * \p nbytes == product(dims) * sl_dtype_size(dtype). A scalar has ndim 0.
 */
typedef struct sl_tensor_s {
        sl_dtype_t dtype;
        int ndim;
        int64_t dims[SL_MAX_DIMS];
        void *data;
        size_t nbytes;
} sl_tensor_t;

/** @brief Number of elements (product of dims; 1 for a scalar). */
int64_t sl_tensor_numel(const sl_tensor_t *t);

/**
 * @brief Convert between double and the 16-bit float types.
 *
 * To float16/bfloat16: one rounding, to nearest with ties to even, overflow
 * to +-inf, gradual underflow to subnormals, NaN stays a (quiet) NaN with its
 * sign. From them: exact. Arithmetic ops that produce these types round with
 * them, as round to nearest even is the IEEE 754 result of an operation.
 * Cast and CastLike from a number to bfloat16 do not: they truncate, as
 * ONNX 1.12's reference data does (see the header comment of ops/cast.c).
 * @sa IEEE 754-2008, section 4.3 (rounding) and binary16; bfloat16 is
 *     binary32's upper 16 bits.
 * @remark Thread: any (pure functions).
 */
uint16_t sl_float16_from_double(double v);
double sl_float16_to_double(uint16_t h);
uint16_t sl_bfloat16_from_double(double v);
double sl_bfloat16_to_double(uint16_t h);

/**
 * @brief Load one serialized ONNX TensorProto file (the backend test data's
 *        input_K.pb / output_K.pb) into \p t.
 * Every type of sl_dtype_t loads, from raw_data or from the typed field
 * onnx.proto names (float16/bfloat16 bits in int32_data, strings in
 * string_data).
 * @returns SL_OK; SL_ERR_IO; SL_ERR_MODEL (not a TensorProto, sizes
 *          inconsistent: errstr names the file); SL_ERR_UNSUPPORTED (data
 *          type or external data); SL_ERR_NOMEM.
 * @remark On success \p t owns its data: release it with sl_tensor_free().
 */
sl_err_t sl_tensor_load(const char *path, sl_tensor_t *t, char *errstr, size_t errstr_size);

/** @brief Free the data of a tensor made by sl_tensor_load() and zero it. Accepts NULL. */
void sl_tensor_free(sl_tensor_t *t);

/** @brief Description of a model input or output (graph input/output ValueInfo). */
typedef struct sl_value_info_s {
        const char *name; /**< owned by the model */
        sl_dtype_t dtype;
        int ndim;                  /**< -1 when the model declares no shape */
        int64_t dims[SL_MAX_DIMS]; /**< -1 for a symbolic or unknown dimension */
} sl_value_info_t;

typedef struct sl_model_s sl_model_t;
typedef struct sl_session_s sl_session_t;

/**
 * @brief Load and validate an ONNX model file (ModelProto, protobuf).
 *
 * Parses with protobuf-c, checks the graph (every node input is produced by
 * an initializer, a graph input or an earlier node; topological order is
 * established), and checks every operator is supported at the model's opset.
 *
 * @returns SL_OK; SL_ERR_IO (file unreadable); SL_ERR_MODEL (not a valid
 *          ModelProto, broken graph: errstr names the file and the node
 *          name/index and op_type at fault); SL_ERR_UNSUPPORTED (operator,
 *          attribute value or data type the engine does not implement:
 *          errstr names file, node and op_type); SL_ERR_NOMEM.
 * @remark On success the caller owns *modelp (sl_model_destroy()).
 */
sl_err_t sl_model_load(const char *path, sl_model_t **modelp, char *errstr, size_t errstr_size);

/** @brief Free a model. Accepts NULL. All its sessions must be destroyed first. */
void sl_model_destroy(sl_model_t *model);

/** @brief Graph inputs that are not initializers (the model's real inputs). */
size_t sl_model_input_count(const sl_model_t *model);
const sl_value_info_t *sl_model_input(const sl_model_t *model, size_t i);

/** @brief Graph outputs. */
size_t sl_model_output_count(const sl_model_t *model);
const sl_value_info_t *sl_model_output(const sl_model_t *model, size_t i);

/** @brief Opset version of the default ("ai.onnx" / "") domain. */
int64_t sl_model_opset(const sl_model_t *model);

/** @brief producer_name and producer_version of the ModelProto ("" when absent). */
const char *sl_model_producer(const sl_model_t *model);

/** @brief Number of nodes, and op_type of node \p i (in execution order). */
size_t sl_model_node_count(const sl_model_t *model);
const char *sl_model_node_op_type(const sl_model_t *model, size_t i);

/**
 * @brief Create a run session (scratch memory) for \p model.
 * @returns SL_OK or SL_ERR_NOMEM. The caller owns *sessionp.
 * @remark \p model must outlive the session.
 */
sl_err_t sl_session_new(sl_model_t *model, sl_session_t **sessionp);

/** @brief Free a session. Accepts NULL. */
void sl_session_destroy(sl_session_t *session);

/**
 * @brief Run the model once.
 *
 * \p inputs holds sl_model_input_count() tensors in model input order
 * (batch dimension first where the model has one). Shapes must match the
 * model's declared input shape except at symbolic dimensions.
 *
 * @param outputs  array of sl_model_output_count() tensors, filled on
 *                 success; their data is owned by \p session and valid
 *                 until the next run or sl_session_destroy().
 * @returns SL_OK; SL_ERR_SHAPE / SL_ERR_DATATYPE when an input does not match
 *          (errstr names the input and both shapes/types); SL_ERR_MODEL when a
 *          node fails at run time (errstr names the node); SL_ERR_NOMEM.
 * @remark After the first run of a batch-size bucket, runs of that bucket
 *         allocate nothing (see "Memory" above for the exceptions).
 * @remark Thread: one run per session at a time.
 */
sl_err_t sl_session_run(sl_session_t *session, const sl_tensor_t *inputs, size_t n_inputs,
                        sl_tensor_t *outputs, size_t n_outputs, char *errstr, size_t errstr_size);

/**
 * @brief Select and report the OpenBLAS CPU core (see DESIGN.md, "CPU kernels").
 *
 * Reads openblas_get_corename(). Informational only in engine v0.
 * @returns a static string such as "Prescott" or "SkylakeX".
 */
const char *sl_engine_blas_core(void);

/**
 * @brief The OpenBLAS core this CPU should run when OpenBLAS fell back to a
 *        generic one (see DESIGN.md, "CPU kernels").
 *
 * @returns "SkylakeX" (AVX-512 F/VL/BW/DQ) or "Haswell" (AVX2 + FMA) when the
 *          active core predates AVX2 on a CPU that has it; NULL when the core
 *          is fine or the user set OPENBLAS_CORETYPE (always respected).
 * @remark OpenBLAS reads OPENBLAS_CORETYPE only at initialisation: the caller
 *         sets it and re-executes the process (worker/cli/main.c does).
 */
const char *sl_engine_blas_core_preferred(void);

/**
 * @brief Threads OpenBLAS may use per call (default here: 1 — parallelism
 *        comes from batches, partitions and replicas; on 2 cores one thread
 *        measured faster than two).
 * @locality call before any session runs.
 */
void sl_engine_blas_set_threads(int n);

#endif /* SL_ENGINE_H */
