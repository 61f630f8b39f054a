/* fuzz_http.c: arbitrary bytes, split into several reads, through the
 * socket-free HTTP connection core (rpc/http_int.h). Writes land in a fake
 * transport; some requests are answered at once, some later, some after
 * the connection has gone. Must never crash, and must free everything.
 *
 * Input: byte 0 chooses options and the answering policy, byte 1 the read
 * size pattern; the rest is the stream the peer sends. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "fuzz.h"
#include "rpc/http_int.h"

/* assert() vanishes under NDEBUG; fuzz checks must not */
#define CHECK(x) ((x) ? (void)0 : abort())

struct fake {
	vt__http_conn *c;
	unsigned writes;   /* queued, not yet reported done */
	int closing, destroyed, reading;
	uint64_t timer;
	vt_http_req *held; /* a request answered later */
	unsigned policy;
	size_t out_bytes;
};

static void f_write(void *ud, uint8_t *buf, size_t len)
{
	struct fake *f = ud;
	/* every response starts with a status line */
	CHECK(len >= 12 && !memcmp(buf, "HTTP/1.1 ", 9));
	f->out_bytes += len;
	f->writes++;
	vt_free(buf);
}
static void f_set_reading(void *ud, int on) { ((struct fake *)ud)->reading = on; }
static void f_set_timer(void *ud, uint64_t ms) { ((struct fake *)ud)->timer = ms; }
static void f_close(void *ud)
{
	struct fake *f = ud;
	CHECK(!f->closing);
	f->closing = 1;
}
static void f_destroy(void *ud)
{
	struct fake *f = ud;
	CHECK(!f->destroyed);
	f->destroyed = 1;
}

static const vt__http_io g_io = {f_write, f_set_reading, f_set_timer,
				 f_close, f_destroy};

static void handler(void *ud, vt_http_req *req)
{
	struct fake *f = ud;
	/* touch everything the handler may read */
	size_t n = strlen(req->method) + strlen(req->path) + strlen(req->query);
	for (unsigned i = 0; i < vt_http_req_header_count(req); i++) {
		const char *k, *v;
		vt_http_req_header_at(req, i, &k, &v);
		n += strlen(k) + strlen(v);
	}
	(void)vt_http_req_header(req, "content-type");
	if (req->body_len)
		n += req->body[req->body_len - 1];
	switch ((f->policy + n) % 4) {
	case 0:
		vt_http_respond(req, 200, "text/plain", req->body,
				req->body_len);
		break;
	case 1:
		vt_http_respond_error(req, 404, "NOT_FOUND", "no %s",
				      req->path);
		break;
	default:
		f->held = req; /* later, or never if the connection goes */
	}
}

static void settle(struct fake *f)
{
	/* finish writes and pending answers until the core stops asking */
	for (int guard = 0; guard < 64 && !f->destroyed; guard++) {
		if (f->held) {
			vt_http_req *r = f->held;
			f->held = NULL;
			vt_http_respond(r, 201, NULL, "x", 1);
		} else if (f->writes) {
			f->writes--;
			vt__http_conn_write_done(f->c, 0);
		} else {
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 2)
		return 0;
	int64_t base = vt_alloc_bytes();
	uint8_t mode = data[0], split = data[1];
	data += 2;
	len -= 2;
	vt__http_cfg cfg = {0};
	cfg.opts.max_header_bytes = mode & 1 ? 256 : 0;
	cfg.opts.max_body_bytes = mode & 2 ? 64 : 0;
	cfg.opts.max_headers = mode & 4 ? 3 : 0;
	cfg.opts.cors_origin = mode & 8 ? "" : NULL;
	vt__http_opts_fill(&cfg.opts);
	cfg.fn = handler;
	struct fake f = {0};
	f.policy = mode >> 4;
	cfg.ud = &f;
	f.c = vt__http_conn_create(&cfg, &g_io, &f);
	if (!f.c)
		return 0;
	size_t off = 0, step = (size_t)(split % 32) + 1;
	while (off < len && !f.closing) {
		size_t n = len - off < step ? len - off : step;
		vt__http_conn_feed(f.c, data + off, n);
		off += n;
		if (split & 0x80)
			settle(&f);
		step = step * 3 % 97 + 1;
	}
	if (mode & 0x40 && !f.closing)
		vt__http_conn_timeout(f.c);
	if (!f.closing)
		vt__http_conn_eof(f.c);
	if (!(mode & 0x20))
		settle(&f);
	if (!f.closing)
		vt__http_conn_drain(f.c);
	if (!f.closing)
		vt__http_conn_abort(f.c);
	/* the transport goes away: report outstanding writes, then release */
	while (f.writes) {
		f.writes--;
		vt__http_conn_write_done(f.c, -1);
	}
	vt__http_conn_release(f.c);
	if (f.held) {
		/* the connection is gone: respond must still be safe */
		vt_http_req *r = f.held;
		f.held = NULL;
		int rc = vt_http_respond(r, 200, NULL, NULL, 0);
		CHECK(rc == VT_ECANCELED);
	}
	CHECK(f.destroyed);
	CHECK(vt_alloc_bytes() == base);
	return 0;
}

int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud)
{
	static const char *seeds[] = {
		"\x00\x05GET /info?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"\x10\x85POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
		"GET / HTTP/1.1\r\n\r\n",
		"\x20\x03POST /e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\nT: x\r\n\r\n",
		"\x30\x9fOPTIONS /v1 HTTP/1.1\r\nAccess-Control-Request-Headers: a\r\n\r\n",
		"\x03\x01POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
		"\x04\x07GET / HTTP/1.0\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n",
		"\x40\x02GET / HTTP/1.1\r\nHost:",
		"\x00\x88GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\nxx",
		"\x00\x00GARBAGE\r\n\r\n",
		"\x90\x81HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		size_t n = 2 + strlen(seeds[i] + 2);
		if (emit(ud, (const uint8_t *)seeds[i], n))
			return -1;
	}
	return 0;
}
