/* fuzz_grpc.c: libFuzzer target for the gRPC server's connection handling
 * (lib/rpc/grpc_server.c) without sockets: the input is fed as the bytes a
 * client sent and the server's output is drained. Methods: a Search decoded
 * with the real vectron.v1 descriptor, a streaming one, a raw one, and one
 * that keeps its calls and finishes them after the connection is gone (the
 * late-answer path). Nothing may crash, and every byte allocated through
 * vt_malloc must be freed once the server is closed.
 * Byte 0: bit 0 prepends the client preface and an empty SETTINGS frame,
 * bits 1-3 pick the feed chunk size; the rest is the client's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "base/alloc.h"
#include "rpc/grpc.h"
#include "rpc/grpc_int.h"
#include "vectron/v1/vectron.pb-c.h"
#include "fuzz.h"

static vt_grpc_call *held[64];
static size_t n_held;

static void h_search(vt_grpc_call *c, void *ud)
{
	const Vectron__V1__SearchRequest *rq =
		(const Vectron__V1__SearchRequest *)vt_grpc_call_request(c);
	(void)vt_grpc_call_metadata(c, "authorization", NULL);
	(void)vt_grpc_call_deadline_ns(c);
	if (rq->collection && !strcmp(rq->collection, "fail")) {
		vt_grpc_call_finish(c, VT_GRPC_NOT_FOUND, "no \xff collection");
		return;
	}
	Vectron__V1__SearchResponse r = VECTRON__V1__SEARCH_RESPONSE__INIT;
	vt_grpc_call_reply(c, &r.base);
}

static void h_stream(vt_grpc_call *c, void *ud)
{
	Vectron__V1__SearchResponse r = VECTRON__V1__SEARCH_RESPONSE__INIT;
	for (int i = 0; i < 3; i++)
		vt_grpc_call_send(c, &r.base);
	vt_grpc_call_finish(c, VT_GRPC_OK, NULL);
}

static void h_raw(vt_grpc_call *c, void *ud)
{
	size_t n;
	const uint8_t *p = vt_grpc_call_request_bytes(c, &n);
	vt_grpc_call_reply_bytes(c, p, n);
}

static void h_hold(vt_grpc_call *c, void *ud)
{
	if (n_held == sizeof held / sizeof held[0]) {
		vt_grpc_call_finish(c, VT_GRPC_RESOURCE_EXHAUSTED, "full");
		return;
	}
	held[n_held++] = c;
}

static void sink(void *ud, const uint8_t *p, size_t n)
{
	*(size_t *)ud += n;
}

static void done(void *ud)
{
	*(int *)ud = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	int64_t before = vt_alloc_bytes();
	uv_loop_t loop;
	if (uv_loop_init(&loop))
		abort();
	vt_grpc_server_opts o;
	vt_grpc_server_opts_default(&o);
	o.max_recv_msg = 4096;
	o.max_send_msg = 4096;
	o.max_metadata = 1024;
	o.max_concurrent_streams = 8;
	vt_grpc_server *s;
	if (vt_grpc_server_new(&loop, &o, &s))
		abort();
	vt_grpc_method m[] = {
		{ "/vectron.v1.VectronService/Search", VT_GRPC_UNARY,
		  &vectron__v1__search_request__descriptor, h_search, NULL },
		{ "/vectron.v1.VectronService/SearchStream",
		  VT_GRPC_SERVER_STREAM,
		  &vectron__v1__search_request__descriptor, h_stream, NULL },
		{ "/t.T/Raw", VT_GRPC_UNARY, NULL, h_raw, NULL },
		{ "/t.T/Hold", VT_GRPC_UNARY, NULL, h_hold, NULL },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		vt_grpc_server_add_method(s, &m[i]);
	size_t out = 0;
	struct vt__grpc_sconn *c;
	if (vt__grpc_sconn_new_test(s, sink, &out, &c))
		abort();
	uint8_t mode = data[0];
	data++, len--;
	if (mode & 1) {
		static const uint8_t settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
		vt__grpc_sconn_feed(c, (const uint8_t *)NGHTTP2_CLIENT_MAGIC,
				    NGHTTP2_CLIENT_MAGIC_LEN);
		vt__grpc_sconn_feed(c, settings, sizeof settings);
	}
	size_t chunk = (size_t)1 << (((mode >> 1) & 7) * 2); /* 1 .. 16384 */
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		if (vt__grpc_sconn_feed(c, data + off, n))
			break;
	}
	/* Late answers first while the connection is up for half of them,
	 * the rest after it is gone. */
	size_t half = n_held / 2;
	for (size_t i = 0; i < half; i++)
		vt_grpc_call_reply_bytes(held[i], "late", 4);
	vt__grpc_sconn_release(c);
	for (size_t i = half; i < n_held; i++)
		vt_grpc_call_finish(held[i], VT_GRPC_OK, NULL);
	n_held = 0;
	int closed = 0;
	vt_grpc_server_close(s, 0, done, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!closed || uv_loop_close(&loop))
		abort();
	if (vt_alloc_bytes() != before) {
		fprintf(stderr, "fuzz_grpc: %lld bytes leaked\n",
			(long long)(vt_alloc_bytes() - before));
		abort();
	}
	return 0;
}

/* ---- seeds: real requests made by an nghttp2 client session ---- */

static vt_buf seed;

static ssize_t body_read(nghttp2_session *s, int32_t sid, uint8_t *buf,
			 size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	vt_buf *b = src->ptr;
	size_t n = b->len < length ? b->len : length;
	memcpy(buf, b->data, n);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (!b->len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void submit(nghttp2_session *cli, const char *path, const char *ct,
		   const char *timeout, const uint8_t *body, size_t n,
		   vt_buf *b)
{
	nghttp2_nv nv[8];
	size_t k = 0;
#define NV(a, b)                                                               \
	nv[k++] = (nghttp2_nv){ (uint8_t *)(a), (uint8_t *)(b), strlen(a),    \
				strlen(b), 0 }
	NV(":method", "POST");
	NV(":scheme", "http");
	NV(":path", path);
	NV(":authority", "fuzz");
	NV("content-type", ct);
	NV("te", "trailers");
	NV("authorization", "Bearer x");
	if (timeout)
		NV("grpc-timeout", timeout);
#undef NV
	vt_buf_init(b, 1 << 20);
	vt__grpc_frame(b, NULL, body, n, 1 << 20);
	nghttp2_data_provider prd = { .source.ptr = b,
				      .read_callback = body_read };
	nghttp2_submit_request(cli, NULL, nv, k, &prd, NULL);
}

static int emit_session(vt_fuzz_emit_fn emit, void *ud, int which)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_session *cli;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_client_new(&cli, cbs, NULL);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0);
	Vectron__V1__SearchRequest rq = VECTRON__V1__SEARCH_REQUEST__INIT;
	float v[4] = { 1, 2, 3, 4 };
	rq.collection = which == 1 ? "fail" : "c";
	rq.vector = v;
	rq.n_vector = 4;
	uint8_t pb[128];
	size_t n = protobuf_c_message_pack(&rq.base, pb);
	vt_buf bodies[4];
	switch (which) {
	case 0:
	case 1:
		submit(cli, "/vectron.v1.VectronService/Search",
		       VT__GRPC_CT, "1S", pb, n, &bodies[0]);
		break;
	case 2:
		submit(cli, "/vectron.v1.VectronService/SearchStream",
		       VT__GRPC_CT "+proto", NULL, pb, n, &bodies[0]);
		submit(cli, "/t.T/Raw", VT__GRPC_CT, NULL, pb, n, &bodies[1]);
		break;
	case 3:
		submit(cli, "/t.T/Hold", VT__GRPC_CT, NULL, pb, 3, &bodies[0]);
		submit(cli, "/t.T/Nope", VT__GRPC_CT, NULL, pb, n, &bodies[1]);
		submit(cli, "/t.T/Raw", "text/plain", NULL, pb, n, &bodies[2]);
		submit(cli, "/vectron.v1.VectronService/Search", VT__GRPC_CT,
		       "5m", (const uint8_t *)"\xff\xff", 2, &bodies[3]);
		break;
	}
	int used = which == 3 ? 4 : which == 2 ? 2 : 1;
	vt_buf_reset(&seed);
	vt_buf_put_u8(&seed, 7 << 1);
	const uint8_t *p;
	ssize_t k;
	while ((k = nghttp2_session_mem_send(cli, &p)) > 0)
		vt_buf_append(&seed, p, (size_t)k);
	nghttp2_session_del(cli);
	for (int i = 0; i < used; i++)
		vt_buf_free(&bodies[i]);
	int rc = emit(ud, seed.data, seed.len);
	/* The same bytes fed one at a time. */
	seed.data[0] = 0;
	if (!rc)
		rc = emit(ud, seed.data, seed.len);
	return rc;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	vt_buf_init(&seed, 1 << 20);
	int rc = 0;
	for (int w = 0; w < 4 && !rc; w++)
		rc = emit_session(emit, ud, w);
	/* Frames without the preface, and garbage. */
	static const uint8_t ping[] = { 0, 0, 8, 6, 0, 0, 0, 0, 0,
					1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t b[1 + sizeof ping];
	b[0] = 1 | (2 << 1);
	memcpy(b + 1, ping, sizeof ping);
	if (!rc)
		rc = emit(ud, b, sizeof b);
	if (!rc)
		rc = emit(ud, (const uint8_t *)"\x00GET / HTTP/1.1\r\n\r\n", 19);
	vt_buf_free(&seed);
	return rc;
}
