/* buf.c: capped growable buffer and bounds-checked reader. */
#include "buf.h"

#include "alloc.h"

int vt_buf_reserve(vt_buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return VT_ELIMIT;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max)
		cap = b->max;
	uint8_t *p = vt_realloc(b->data, cap);
	if (!p)
		return VT_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int vt_buf_append(vt_buf *b, const void *p, size_t n)
{
	int rc = vt_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int vt_buf_put_u8(vt_buf *b, uint8_t v)
{
	return vt_buf_append(b, &v, 1);
}

int vt_buf_put_u32(vt_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	return vt_buf_append(b, x, 4);
}

int vt_buf_put_u64(vt_buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	return vt_buf_append(b, x, 8);
}

void vt_buf_free(vt_buf *b)
{
	vt_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

uint8_t *vt_buf_steal(vt_buf *b, size_t *len_out)
{
	uint8_t *p = b->data;
	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int vt_reader_get(vt_reader *r, void *out, size_t n)
{
	if (n > r->len - r->off)
		return VT_ECORRUPT;
	memcpy(out, r->p + r->off, n);
	r->off += n;
	return 0;
}

int vt_reader_u8(vt_reader *r, uint8_t *out)
{
	return vt_reader_get(r, out, 1);
}

int vt_reader_u32(vt_reader *r, uint32_t *out)
{
	uint8_t x[4];
	int rc = vt_reader_get(r, x, 4);
	if (rc)
		return rc;
	*out = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
	       (uint32_t)x[3] << 24;
	return 0;
}

int vt_reader_u64(vt_reader *r, uint64_t *out)
{
	uint8_t x[8];
	int rc = vt_reader_get(r, x, 8);
	if (rc)
		return rc;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | x[i];
	*out = v;
	return 0;
}

int vt_reader_ptr(vt_reader *r, const void **out, size_t n)
{
	if (n > r->len - r->off)
		return VT_ECORRUPT;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}
