/* buf.h: a growable byte buffer with a hard cap, for anything input can
 * grow (requests, encoded commands, files being written). Not a string
 * library: it holds bytes, and a cap is always enforced. */
#ifndef VT_BASE_BUF_H
#define VT_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

/* Caller-allocated. `data` is owned by the buffer (vt_malloc'd) and stays
 * valid until the next call that may grow it, or vt_buf_free. */
typedef struct vt_buf {
	uint8_t *data; /* read-only for users */
	size_t len;    /* read-only for users */
	size_t cap;    /* private: bytes allocated */
	size_t max;    /* private: the cap on len */
} vt_buf;

/* Prepares an empty buffer that never grows past `max` bytes. No
 * allocation happens until the first write. */
static inline void vt_buf_init(vt_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Makes room for `extra` more bytes. VT_ELIMIT if that would pass the cap,
 * VT_ENOMEM if allocation fails; the contents are unchanged on error. */
VT_API int vt_buf_reserve(vt_buf *b, size_t extra);

/* Appends `n` bytes. Errors as vt_buf_reserve. */
VT_API int vt_buf_append(vt_buf *b, const void *p, size_t n);

/* Appends little-endian integers. */
VT_API int vt_buf_put_u8(vt_buf *b, uint8_t v);
VT_API int vt_buf_put_u32(vt_buf *b, uint32_t v);
VT_API int vt_buf_put_u64(vt_buf *b, uint64_t v);

/* Little-endian integers at a byte address (any alignment), for fixed
 * headers built or read in place. */
static inline void vt_le_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vt_le_put64(uint8_t *p, uint64_t v)
{
	vt_le_put32(p, (uint32_t)v);
	vt_le_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t vt_le_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t vt_le_get64(const uint8_t *p)
{
	return vt_le_get32(p) | (uint64_t)vt_le_get32(p + 4) << 32;
}

/* Empties the buffer but keeps its memory. */
static inline void vt_buf_reset(vt_buf *b)
{
	b->len = 0;
}

/* Releases the memory; the buffer is empty and reusable afterwards. */
VT_API void vt_buf_free(vt_buf *b);

/* Hands the bytes to the caller (who vt_frees them) and empties `b`. */
VT_API uint8_t *vt_buf_steal(vt_buf *b, size_t *len_out);

/* A bounds-checked reader over bytes it does not own. Every getter returns
 * VT_ECORRUPT (and leaves the reader where it was) if the bytes run out,
 * so decoders never read past the end. */
typedef struct vt_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
} vt_reader;

static inline void vt_reader_init(vt_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

static inline size_t vt_reader_left(const vt_reader *r)
{
	return r->len - r->off;
}

VT_API int vt_reader_get(vt_reader *r, void *out, size_t n);
VT_API int vt_reader_u8(vt_reader *r, uint8_t *out);
VT_API int vt_reader_u32(vt_reader *r, uint32_t *out);
VT_API int vt_reader_u64(vt_reader *r, uint64_t *out);
/* Points *out at the next `n` bytes without copying and skips them. */
VT_API int vt_reader_ptr(vt_reader *r, const void **out, size_t n);

#endif
