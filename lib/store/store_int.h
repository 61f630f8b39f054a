/* store_int.h: internals of lib/store shared with its tests and fuzz
 * target: the point record codec. Not part of the public API. */
#ifndef VT_STORE_STORE_INT_H
#define VT_STORE_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Point record (value in the "points" DB), little-endian:
 *   u8 version (1) | u8 flags (0) | u16 reserved (0) | u32 dim |
 *   u32 id_len | u32 payload_len | dim x f32 | payload | id
 * The header is 16 bytes so the floats start 16-byte aligned whenever the
 * value does (LMDB overflow pages). */
#define VT__STORE_REC_VERSION 1u
#define VT__STORE_REC_HDR 16u

/* Size of the record for these lengths. */
static inline size_t vt__store_rec_size(uint32_t dim, size_t id_len,
					size_t payload_len)
{
	return VT__STORE_REC_HDR + (size_t)dim * 4 + payload_len + id_len;
}

/* Writes the record into `dst` (vt__store_rec_size bytes). */
VT_API void vt__store_rec_encode(void *dst, const float *vec, uint32_t dim,
				 const void *id, size_t id_len,
				 const void *payload, size_t payload_len);

/* Checks and decodes `n` bytes at `p`: version, flags, dim (must equal
 * `dim` unless it is 0), id length 1..VT_STORE_MAX_ID, lengths adding up to
 * exactly `n`. On success fills *out with pointers into `p` (vec may be
 * unaligned: the caller copies it) and returns 0; otherwise VT_ECORRUPT or
 * VT_EVERSION with a message naming `label`. */
VT_API int vt__store_rec_decode(const void *p, size_t n, uint32_t dim,
				uint64_t label, vt_store_point *out,
				vt_errmsg *err);

#endif
