/**
 * @file codec_int.h
 * @brief Private to worker/codec: the codec object, the bounds-checked Avro
 *        binary reader shared by the request decoder and the pre-validation
 *        of avro-c reads, and the framing helpers.
 */
#ifndef SL_CODEC_INT_H
#define SL_CODEC_INT_H

#include <avro.h>
#include <jansson.h>
#include <stdarg.h>

#include "codec.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Tensor data on the wire and in sl_tensor_t is little-endian; the codec
 * copies it without byte swapping. */
#error "worker/codec assumes a little-endian host"
#endif

/** @brief The four records of the wire contract (schemas/). */
typedef enum {
        SL_REC_REQUEST = 0,
        SL_REC_RESPONSE,
        SL_REC_DEAD_LETTER,
        SL_REC_METRICS,
        SL_REC_LABEL,
        SL_REC__CNT
} sl_rec_t;

/* What the request decoder does with each field of InferenceRequest, in the
 * order the schema file lists them (Avro binary follows field order). */
typedef enum {
        RQ_SKIP = 0, /* a field this worker does not know: skipped, bounds-checked */
        RQ_ID,
        RQ_MODEL_NAME,
        RQ_MODEL_VERSION,
        RQ_INPUTS,
        RQ_OUTPUTS,
        RQ_PARAMETERS,
        RQ_LABEL,
} rq_field_t;

/* ... and with each field of InferTensor. */
typedef enum {
        TF_SKIP = 0,
        TF_NAME,
        TF_DATATYPE,
        TF_SHAPE,
        TF_DATA,
} tf_field_t;

/* Branches of InferTensor.data. */
typedef enum {
        DB_UNKNOWN = 0, /* a branch added by a newer schema: skipped, BAD_REQUEST */
        DB_RAW,
        DB_FP32,
        DB_FP64,
        DB_INT64,
        DB_INT,
        DB_BOOL,
} data_branch_t;

#define SL_CODEC_MAX_FIELDS   32
#define SL_CODEC_MAX_BRANCHES 16

/** @brief Layout of the request schema, resolved once in sl_codec_new(). */
typedef struct sl_request_layout_s {
        avro_schema_t record_schema; /* InferenceRequest */
        size_t n_fields;
        rq_field_t field[SL_CODEC_MAX_FIELDS];
        avro_schema_t field_schema[SL_CODEC_MAX_FIELDS];
        int null_branch[SL_CODEC_MAX_FIELDS]; /* optional fields: index of "null" */
        avro_schema_t tensor_schema;          /* InferTensor */
        size_t n_tensor_fields;
        tf_field_t tensor_field[SL_CODEC_MAX_FIELDS];
        avro_schema_t tensor_field_schema[SL_CODEC_MAX_FIELDS];
        size_t n_data_branches;
        data_branch_t data_branch[SL_CODEC_MAX_BRANCHES];
        avro_schema_t data_branch_schema[SL_CODEC_MAX_BRANCHES];
        size_t tensor_min_size; /* minimum encoded size of one InferTensor */
} sl_request_layout_t;

/* ---- writer -> reader schema resolution (resolve.c, transcode.c) ---------- */

/** A growable output buffer with a size limit. */
typedef struct sl_obuf_s {
        uint8_t *b;
        size_t n, cap, max;
} sl_obuf_t;

int sl_obuf_put(sl_obuf_t *o, const void *p, size_t n);
int sl_obuf_long(sl_obuf_t *o, int64_t v);

typedef enum {
        RP_COPY,   /* writer and reader schemas are equal: validate and copy */
        RP_PRIM,   /* a primitive promoted (Avro spec: int->long/float/double, ...) */
        RP_ENUM,   /* symbols mapped by name */
        RP_ARRAY,  /* items resolved */
        RP_MAP,    /* values resolved */
        RP_RECORD, /* fields matched by name (or reader alias) */
        RP_WUNION, /* writer union: one plan per writer branch */
        RP_RUNION, /* writer non-union into a reader union: branch chosen once */
        RP_ERROR,  /* cannot be resolved; an error when the data holds it */
} rp_kind_t;

typedef struct sl_rp_s sl_rp_t;

typedef struct rp_wfield_s {
        const char *name;    /* writer field name */
        avro_schema_t w;     /* writer field schema (to skip it) */
        const sl_rp_t *plan; /* NULL: not in the reader, skipped */
        int rfield;          /* reader field index, -1 when skipped */
} rp_wfield_t;

typedef struct rp_rfield_s {
        int wfield;   /* writer field index, -1: the reader's default */
        uint8_t *def; /* the default, Avro binary of the reader field's schema */
        size_t def_len;
} rp_rfield_t;

/** One node of a resolution plan (Avro spec, "Schema Resolution"). */
struct sl_rp_s {
        rp_kind_t kind;
        int building;
        avro_schema_t w, r;
        avro_type_t wt, rt;   /* RP_PRIM */
        const sl_rp_t *items; /* RP_ARRAY, RP_MAP; RP_RUNION: the branch plan */
        size_t w_item_min;    /* RP_ARRAY, RP_MAP: minimum encoded writer item */
        size_t n_wfields, n_rfields;
        rp_wfield_t *wf;
        rp_rfield_t *rf;
        int in_order;           /* RP_RECORD: reader order = writer order */
        size_t n_branches;      /* RP_WUNION */
        const sl_rp_t **branch; /* RP_WUNION */
        int64_t rbranch;        /* RP_RUNION: reader branch index */
        int64_t *enum_map;      /* RP_ENUM: writer symbol -> reader symbol, -1 none */
        size_t n_enum;
        char *msg;     /* RP_ERROR: why, "path: reason" */
        size_t reason; /* RP_ERROR: offset of the reason in msg */
};

/** A resolution plan: every node, owned here (plans may be cyclic). */
typedef struct sl_rplan_s {
        const sl_rp_t *root;
        sl_rp_t **nodes;
        size_t n_nodes, cap_nodes;
} sl_rplan_t;

/**
 * @brief Resolve \p writer against \p reader (whose file text, parsed by
 *        jansson, is \p reader_json, for defaults and aliases).
 * @returns SL_OK with *planp (caller destroys); when the schemas cannot be
 *          resolved, also SL_OK with (*planp)->root->kind == RP_ERROR and
 *          its msg naming the field; SL_ERR_NOMEM.
 * @remark \p reader_json is borrowed for the call only.
 */
sl_err_t sl_rplan_new(avro_schema_t writer, avro_schema_t reader, const json_t *reader_json,
                      sl_rplan_t **planp);
void sl_rplan_destroy(sl_rplan_t *plan);

/**
 * @brief Rewrite one writer-schema value as the reader-schema value that
 *        \p plan resolves it to (Avro binary in, Avro binary out).
 * Bounds-checked like sl_rd_*; the output is limited to a small multiple of
 * \p len. @returns SL_OK with a malloc'd *outp; SL_ERR_DECODE (bytes
 * invalid for the writer schema), SL_ERR_SCHEMA (the data holds a union
 * branch or enum symbol the reader cannot resolve), SL_ERR_NOMEM.
 */
sl_err_t sl_rplan_transcode(const sl_rplan_t *plan, const uint8_t *buf, size_t len, uint8_t **outp,
                            size_t *outlenp, char *errstr, size_t errstr_size);

/** One writer schema of requests (codec.writer_schemas / request_writer_schema). */
typedef struct sl_writer_s {
        int32_t id; /* Confluent schema id (raw framing: unused) */
        char *path; /* the .avsc file, "" for the reader schema itself */
        avro_schema_t schema;
        sl_rplan_t *plan;   /* NULL: writer = reader, bytes decoded as they are */
        char *incompatible; /* why it cannot be resolved, NULL when it can */
} sl_writer_t;

struct sl_codec_s {
        sl_framing_t framing;
        int32_t schema_id[SL_REC__CNT];
        avro_schema_t schema[SL_REC__CNT];
        avro_value_iface_t *iface[SL_REC__CNT];
        sl_request_layout_t rq;
        json_t *rq_json; /* the reader schema's text, while writers are resolved */
        size_t n_writers;
        sl_writer_t *writers;
};

/* ---- writers.c ------------------------------------------------------------ */

/** @brief Load and resolve the writer schemas named in \p params. */
sl_err_t sl_codec_writers_load(sl_codec_t *codec, const sl_codec_params_t *params, char *errstr,
                               size_t errstr_size);
void sl_codec_writers_destroy(sl_codec_t *codec);

/**
 * @brief Unframe a request and resolve it to the reader schema.
 * @returns SL_OK with the reader-schema payload in *payloadp and *plenp (a view
 *          into \p buf, or *ownedp which the caller frees); SL_ERR_FRAMING,
 *          SL_ERR_SCHEMA, SL_ERR_DECODE, SL_ERR_NOMEM.
 */
sl_err_t sl_codec_request_payload(const sl_codec_t *codec, const void *buf, size_t len,
                                  const uint8_t **payloadp, size_t *plenp, uint8_t **ownedp,
                                  char *errstr, size_t errstr_size);

/* ---- bounds-checked Avro binary reader (avro_read.c) ------------------- */

/**
 * A cursor over one Avro binary value. Every read checks the remaining
 * bytes first; failures write "path: what" into errstr and return -1.
 * \p path is the field path being read ("inputs[0].shape").
 */
typedef struct sl_rd_s {
        const uint8_t *p, *end;
        char path[192];
        size_t path_len;
        int depth;
        char *errstr;
        size_t errstr_size;
} sl_rd_t;

void sl_rd_init(sl_rd_t *rd, const void *buf, size_t len, char *errstr, size_t errstr_size);
static inline size_t sl_rd_left(const sl_rd_t *rd)
{
        return (size_t)(rd->end - rd->p);
}
/** @brief Append to the path; returns the old length for sl_rd_pop(). */
size_t sl_rd_push(sl_rd_t *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_rd_pop(sl_rd_t *rd, size_t len);
/** @brief Write "path: message" to errstr; returns -1. */
int sl_rd_fail(sl_rd_t *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int sl_rd_long(sl_rd_t *rd, int64_t *v);
int sl_rd_int(sl_rd_t *rd, int32_t *v);
int sl_rd_float(sl_rd_t *rd, float *v);
int sl_rd_double(sl_rd_t *rd, double *v);
int sl_rd_bool(sl_rd_t *rd, uint8_t *v);
/** @brief A bytes value as a view into the buffer (length checked). */
int sl_rd_bytes(sl_rd_t *rd, const uint8_t **p, size_t *n);
/** @brief A string, malloc'd and NUL-terminated; must be UTF-8 without NUL. */
int sl_rd_string(sl_rd_t *rd, char **s);
/** @brief A union branch index, checked against \p n_branches. */
int sl_rd_union(sl_rd_t *rd, size_t n_branches, int64_t *idx);
/**
 * @brief Read an array/map block header into *count (0 = end of blocks).
 * Rejects counts whose items (each at least \p min_item bytes) cannot fit in
 * the remaining bytes, so callers may allocate count items afterwards.
 */
int sl_rd_block(sl_rd_t *rd, size_t min_item, int64_t *count);
/** @brief Skip (and validate) one value of \p schema. */
int sl_rd_skip(sl_rd_t *rd, avro_schema_t schema);
/** @brief Minimum encoded size in bytes of a value of \p schema. */
size_t sl_avro_min_size(avro_schema_t schema);

/* ---- codec.c ----------------------------------------------------------- */

/**
 * @brief Strip the framing of a value read for record \p rec.
 * @returns SL_OK with the Avro payload in *payloadp and *plenp, or SL_ERR_FRAMING.
 */
sl_err_t sl_codec_unframe(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                          const uint8_t **payloadp, size_t *plenp, char *errstr,
                          size_t errstr_size);
/**
 * @brief Like sl_codec_unframe() but any Confluent schema id is accepted and
 *        returned in *idp (raw framing: *idp = -1).
 */
sl_err_t sl_codec_unframe_id(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                             const uint8_t **payloadp, size_t *plenp, int32_t *idp, char *errstr,
                             size_t errstr_size);
/** @brief Bytes of framing before the Avro payload (0 or 5). */
size_t sl_codec_header_size(const sl_codec_t *codec);
/** @brief Write the framing header of record \p rec into \p dst. */
void sl_codec_write_header(const sl_codec_t *codec, sl_rec_t rec, uint8_t *dst);
/** @brief Element size of \p dt; 0 for UNDEFINED/STRING (engine-independent). */
size_t sl_codec_dtype_size(sl_dtype_t dt);
/**
 * @brief numel of a shape and its size in bytes for \p dt, with overflow
 *        checks. @returns 0, or -1 (negative dim or overflow).
 */
int sl_codec_shape_bytes(const int64_t *dims, int ndim, sl_dtype_t dt, int64_t *numelp,
                         size_t *nbytesp);

/**
 * @brief Validate \p buf (one framed record \p rec) with sl_rd_skip, then
 *        read it with avro-c into a new generic value (caller decrefs).
 * avro-c's reader trusts declared lengths; validating first keeps hostile
 * bytes away from it.
 */
sl_err_t sl_codec_read_generic(const sl_codec_t *codec, sl_rec_t rec, const void *buf, size_t len,
                               avro_value_t *value, char *errstr, size_t errstr_size);

#endif /* SL_CODEC_INT_H */
