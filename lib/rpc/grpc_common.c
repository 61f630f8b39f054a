/* grpc_common.c: the parts of gRPC both ends need: status names and the
 * VT_E* mapping, message framing, grpc-timeout, grpc-message encoding, and
 * moving a connection's bytes between nghttp2 and libuv. Not HTTP/2: that
 * is nghttp2's, driven from grpc_server.c/grpc_client.c. */
#include <stdio.h>
#include <string.h>

#include "base/text.h"
#include "base/alloc.h"
#include "rpc/grpc_int.h"

static void *pb_alloc(void *ud, size_t n)
{
	(void)ud;
	return vt_malloc(n ? n : 1);
}

static void pb_free(void *ud, void *p)
{
	(void)ud;
	vt_free(p);
}

ProtobufCAllocator vt__grpc_pb_alloc = { pb_alloc, pb_free, NULL };

void vt_grpc_msg_free(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, &vt__grpc_pb_alloc);
}

ProtobufCMessage *vt_grpc_msg_unpack(const ProtobufCMessageDescriptor *desc,
				     const uint8_t *data, size_t len)
{
	return protobuf_c_message_unpack(desc, &vt__grpc_pb_alloc, len, data);
}

int vt_grpc_status_from_err(int e)
{
	/* One table for every transport: lib/base/error.c. */
	return vt_err_status_of(e).grpc;
}

int vt_grpc_err_from_status(int s)
{
	switch (s) {
	case VT_GRPC_OK:
		return 0;
	case VT_GRPC_INVALID_ARGUMENT:
		return VT_EINVAL;
	case VT_GRPC_OUT_OF_RANGE:
		return VT_ERANGE;
	case VT_GRPC_NOT_FOUND:
		return VT_ENOENT;
	case VT_GRPC_ALREADY_EXISTS:
		return VT_EEXIST;
	case VT_GRPC_RESOURCE_EXHAUSTED:
		return VT_EOVERLOAD;
	case VT_GRPC_CANCELLED:
		return VT_ECANCELED;
	case VT_GRPC_UNIMPLEMENTED:
		return VT_ENOTSUP;
	case VT_GRPC_UNAVAILABLE:
		return VT_EBUSY;
	case VT_GRPC_FAILED_PRECONDITION:
		return VT_EREADONLY;
	case VT_GRPC_DEADLINE_EXCEEDED:
		return VT_ETIMEDOUT;
	case VT_GRPC_DATA_LOSS:
		return VT_ECORRUPT;
	}
	return VT_EIO;
}

const char *vt_grpc_status_name(int s)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
		"PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	if (s < 0 || s >= (int)(sizeof names / sizeof names[0]))
		return "UNKNOWN";
	return names[s];
}

int vt__grpc_frame(vt_buf *out, const ProtobufCMessage *msg, const void *raw,
		   size_t len, size_t max)
{
	if (msg)
		len = protobuf_c_message_get_packed_size(msg);
	if (len > max || len > UINT32_MAX)
		return VT_ELIMIT;
	int rc = vt_buf_reserve(out, 5 + len);
	if (rc)
		return rc;
	uint8_t *p = out->data + out->len;
	p[0] = 0;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
	if (msg)
		protobuf_c_message_pack(msg, p + 5);
	else if (len)
		memcpy(p + 5, raw, len);
	out->len += 5 + len;
	return 0;
}

int vt__grpc_deframe(const uint8_t *p, size_t n, size_t max, int *flags,
		     const uint8_t **msg, size_t *msg_len)
{
	if (n < 5)
		return 0;
	size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 |
		     (size_t)p[3] << 8 | p[4];
	*msg_len = len;
	if (len > max)
		return VT_ELIMIT;
	if (n - 5 < len)
		return 0;
	*flags = p[0];
	*msg = p + 5;
	return 1;
}

int vt__grpc_timeout_parse(const char *s, size_t n, uint64_t *ns_out)
{
	if (n < 2 || n > 9)
		return VT_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return VT_EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	uint64_t mul;
	switch (s[n - 1]) {
	case 'H': mul = 3600000000000ull; break;
	case 'M': mul = 60000000000ull; break;
	case 'S': mul = 1000000000ull; break;
	case 'm': mul = 1000000ull; break;
	case 'u': mul = 1000ull; break;
	case 'n': mul = 1ull; break;
	default: return VT_EINVAL;
	}
	*ns_out = v > UINT64_MAX / mul ? UINT64_MAX : v * mul;
	return 0;
}

void vt__grpc_timeout_format(uint64_t ms, char *out)
{
	/* At most 8 digits: switch to a coarser unit when needed. */
	if (ms <= 99999999ull)
		snprintf(out, 16, "%llum", (unsigned long long)ms);
	else if (ms / 1000 <= 99999999ull)
		snprintf(out, 16, "%lluS", (unsigned long long)(ms / 1000));
	else
		snprintf(out, 16, "%lluH",
			 (unsigned long long)(ms / 3600000 > 99999999ull
						      ? 99999999ull
						      : ms / 3600000));
}

char *vt__grpc_pct_encode(const char *s)
{
	size_t n = strlen(s);
	char *o = vt_malloc(3 * n + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
			*q++ = (char)ch;
		} else {
			static const char hex[] = "0123456789ABCDEF";
			*q++ = '%';
			*q++ = hex[ch >> 4];
			*q++ = hex[ch & 15];
		}
	}
	*q = 0;
	return o;
}

char *vt__grpc_pct_decode(const char *s, size_t n)
{
	char *o = vt_malloc(n + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		/* Bad escapes are kept as they are (the spec says so). */
		if (s[i] == '%' && i + 2 < n &&
		    (h = vt_hexval(s[i + 1])) >= 0 && (l = vt_hexval(s[i + 2])) >= 0) {
			*q++ = (char)(h << 4 | l);
			i += 2;
		} else {
			*q++ = s[i];
		}
	}
	*q = 0;
	return o;
}

/* ---- a connection's bytes ---- */

struct wreq {
	uv_write_t req;
	struct vt__grpc_io *io;
	vt_buf b;
};

static void on_written(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct vt__grpc_io *io = w->io;
	io->inflight -= w->b.len;
	vt_buf_free(&w->b);
	vt_free(w);
	if (status < 0)
		io->dead = 1;
	if (!io->closing)
		io->flush(io);
}

/* Takes up to VT__GRPC_CHUNK bytes of what nghttp2 has to send and writes
 * them. 1 if it wrote, 0 if nghttp2 had nothing to send or something failed
 * (then `dead` is set; what nghttp2 gave is dropped). */
static int io_write(struct vt__grpc_io *io)
{
	struct wreq *w = vt_malloc(sizeof *w);
	if (!w) {
		io->dead = 1;
		return 0;
	}
	vt_buf_init(&w->b, SIZE_MAX);
	while (w->b.len < VT__GRPC_CHUNK) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(io->ng, &p);
		if (n < 0) {
			io->dead = 1;
			break;
		}
		if (n == 0)
			break;
		/* nghttp2 has let go of these bytes: losing them would break
		 * the HTTP/2 stream, so the connection dies instead. */
		if (vt_buf_append(&w->b, p, (size_t)n)) {
			io->dead = 1;
			break;
		}
	}
	if (w->b.len == 0 || io->dead) {
		vt_buf_free(&w->b);
		vt_free(w);
		return 0;
	}
	if (io->sink) {
		io->sink(io->sink_ud, w->b.data, w->b.len);
		vt_buf_free(&w->b);
		vt_free(w);
		return 1;
	}
	w->io = io;
	uv_buf_t ub = uv_buf_init((char *)w->b.data, (unsigned)w->b.len);
	if (uv_write(&w->req, (uv_stream_t *)&io->tcp, &ub, 1, on_written)) {
		vt_buf_free(&w->b);
		vt_free(w);
		io->dead = 1;
		return 0;
	}
	io->inflight += w->b.len;
	return 1;
}

int vt__grpc_io_send(struct vt__grpc_io *io, size_t max, int stop_when_dead)
{
	if (io->busy) {
		io->again = 1;
		return 0;
	}
	io->busy++;
	do {
		io->again = 0;
		while (io->inflight < max && !io->closing &&
		       !(stop_when_dead && io->dead) && io_write(io))
			;
	} while (io->again && !io->dead && !io->closing && io->inflight < max);
	io->busy--;
	return 1;
}

void vt__grpc_io_pace(struct vt__grpc_io *io, size_t max, uv_alloc_cb on_alloc,
		      uv_read_cb on_read)
{
	int want = !io->dead && io->inflight < max;
	if (want && !io->reading) {
		io->reading = !uv_read_start((uv_stream_t *)&io->tcp, on_alloc,
					     on_read);
	} else if (!want && io->reading) {
		uv_read_stop((uv_stream_t *)&io->tcp);
		io->reading = 0;
	}
}

int vt__grpc_io_idle(const struct vt__grpc_io *io)
{
	return io->inflight == 0 &&
	       (io->dead || (!nghttp2_session_want_read(io->ng) &&
			     !nghttp2_session_want_write(io->ng)));
}
