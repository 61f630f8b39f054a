/* cmd.h: the shard's command format: what a write is, as bytes that can sit
 * in a Raft log and be applied on every replica. Version 1, little-endian:
 *
 *   header   u8 version (1), u8 type, u16 flags, u32 count
 *   UPSERT        u32 dim, then count x { u16 id_len, id, dim x f32,
 *                                         u32 payload_len, payload }
 *   DELETE_IDS    count x { u16 id_len, id }
 *   DELETE_FILTER count = 0, u32 filter_len, filter (JSON)
 *   SET_PAYLOAD   count x { u16 id_len, id, u32 payload_len, payload }
 *                 flags bit 0 (VT_CMD_MERGE): merge top-level keys into the
 *                 stored payload instead of replacing it
 *
 * Decoding checks framing and limits only (every length against what is
 * left, counts against caps, no trailing bytes); the shard checks meaning
 * (dimension, finite values, JSON). Not a wire protocol for clients. */
#ifndef VT_SHARD_CMD_H
#define VT_SHARD_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

#define VT_CMD_VERSION 1u

enum vt_cmd_type {
	VT_CMD_UPSERT = 1,
	VT_CMD_DELETE_IDS = 2,
	VT_CMD_DELETE_FILTER = 3,
	VT_CMD_SET_PAYLOAD = 4,
};

#define VT_CMD_MERGE 1u /* SET_PAYLOAD flag */

/* Caps the decoder enforces. Fill with vt_cmd_limits_default. */
typedef struct vt_cmd_limits {
	uint32_t max_points;  /* entries in one command, default 10000 */
	uint32_t max_id;      /* bytes of an id, default 256 */
	uint32_t max_dim;     /* default 65535 */
	uint32_t max_payload; /* bytes of one payload, default 65536 */
	uint32_t max_filter;  /* bytes of a filter, default 1 MiB */
} vt_cmd_limits;

VT_API void vt_cmd_limits_default(vt_cmd_limits *lim);

/* One entry of a decoded command; the pointers borrow the input bytes. */
typedef struct vt_cmd_point {
	const char *id;
	uint32_t id_len;
	const uint8_t *vec;    /* UPSERT: dim little-endian floats, possibly
				  unaligned: read with vt_cmd_vector */
	const char *payload;   /* NULL when payload_len is 0 */
	uint32_t payload_len;
} vt_cmd_point;

/* A decoded command. `points` is owned by the command (vt_cmd_release);
 * every byte pointer borrows the input, which must outlive the command. */
typedef struct vt_cmd {
	int type;          /* enum vt_cmd_type */
	uint32_t flags;
	uint32_t dim;      /* UPSERT only */
	uint32_t n;        /* entries in points */
	vt_cmd_point *points;
	const char *filter; /* DELETE_FILTER only */
	uint32_t filter_len;
} vt_cmd;

/* Decodes `len` bytes (not copied: `cmd` borrows them). `lim` NULL =
 * defaults. Errors: VT_EVERSION (unknown version), VT_EINVAL (unknown type
 * or flag, empty id), VT_ELIMIT (a cap), VT_ECORRUPT (lengths that do not
 * fit the bytes, trailing bytes), VT_ENOMEM; the message names the entry. */
VT_API int vt_cmd_decode(const void *p, size_t len, const vt_cmd_limits *lim,
			 vt_cmd *cmd, vt_errmsg *err);

/* Frees what decode allocated (the bytes are the caller's). */
VT_API void vt_cmd_release(vt_cmd *cmd);

/* Copies entry `i`'s vector into out[dim]. */
VT_API void vt_cmd_vector(const vt_cmd *cmd, uint32_t i, float *out);

/* ---- encoding -------------------------------------------------------------
 * begin, then one add per entry, then end (which writes the count). The
 * buffer's cap bounds the command. Errors: VT_ELIMIT, VT_ENOMEM, VT_EINVAL
 * (an id or payload longer than the format can carry). */
VT_API int vt_cmd_enc_begin(vt_buf *b, int type, uint32_t flags,
			    uint32_t dim);
VT_API int vt_cmd_enc_upsert(vt_buf *b, const void *id, size_t id_len,
			     const float *vec, uint32_t dim,
			     const void *payload, size_t payload_len);
VT_API int vt_cmd_enc_id(vt_buf *b, const void *id, size_t id_len);
VT_API int vt_cmd_enc_payload(vt_buf *b, const void *id, size_t id_len,
			      const void *payload, size_t payload_len);
VT_API int vt_cmd_enc_filter(vt_buf *b, const char *filter, size_t len);
VT_API int vt_cmd_enc_end(vt_buf *b, uint32_t count);

/* "upsert", "delete_ids", "delete_filter", "set_payload", or "?". */
VT_API const char *vt_cmd_type_name(int type);

#endif
