/* http_parse.c: the socket-free HTTP/1.1 connection: llhttp callbacks,
 * limits, one-request-at-a-time pipelining, response framing, CORS and the
 * JSON error shape. No I/O: it talks to its transport through vt__http_io. */
#include "http_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "base/alloc.h"
#include "base/buf.h"

#define DEF_MAX_HEADER_BYTES (16u << 10)
#define DEF_MAX_BODY_BYTES (32u << 20)
#define DEF_MAX_HEADERS 100u
#define DEF_IDLE_MS 60000u
#define DEF_READ_MS 30000u
#define DEF_MAX_CONNS 1024u
/* Pipelined bytes held while a request is with the handler. Reading stops
 * meanwhile, so this only ever holds what one read returned. */
#define MAX_PENDING (1u << 20)

enum state {
	ST_IDLE,    /* between requests: idle timer */
	ST_READING, /* a request has begun: read deadline */
	ST_HANDLER, /* the request is with the handler */
	ST_WRITING, /* response queued, waiting for the write to finish */
};

struct req {
	vt_http_req pub; /* first: the handler's pointer is ours */
	vt__http_conn *c;
	vt_buf head;   /* url\0 name\0value\0 ... \0 */
	vt_buf body;
	uint32_t *hoff; /* pairs: name offset, value offset */
	unsigned nhdr, hcap;
	int in_field;  /* a header name is being received */
	int url_done;
	int head_done; /* trailers after this are ignored */
	int head_only; /* HEAD: no body in the response */
	int preflight;
};

struct vt__http_conn {
	llhttp_t p;
	const vt__http_cfg *cfg;
	const vt__http_io *io;
	void *io_ud;
	vt_buf pending; /* unparsed input, from pend_off */
	size_t pend_off;
	struct req *cur; /* being parsed, or with the handler */
	enum state state;
	unsigned writes;  /* io->write calls not yet done */
	int closing;      /* io->close called */
	int released;     /* transport gone */
	int eof;
	int drain;        /* server shutdown: close after this response */
	int want_close;   /* close after this response (upgrade, CONNECT) */
	int in_pump;
	int reading;      /* io->set_reading(1) is in effect */
	int err_status;   /* set by a callback that failed on a limit */
	const char *err_code;
	char err_msg[160];
};

static llhttp_settings_t g_settings;
static int g_settings_ready;

/* ---- options -------------------------------------------------------- */

void vt__http_opts_fill(vt_http_opts *o)
{
	if (!o->max_header_bytes)
		o->max_header_bytes = DEF_MAX_HEADER_BYTES;
	if (!o->max_body_bytes)
		o->max_body_bytes = DEF_MAX_BODY_BYTES;
	if (!o->max_headers)
		o->max_headers = DEF_MAX_HEADERS;
	if (!o->idle_timeout_ms)
		o->idle_timeout_ms = DEF_IDLE_MS;
	if (!o->read_timeout_ms)
		o->read_timeout_ms = DEF_READ_MS;
	if (!o->max_connections)
		o->max_connections = DEF_MAX_CONNS;
	if (!o->cors_origin)
		o->cors_origin = "*";
}

/* ---- error shape ---------------------------------------------------- */

static size_t json_escape(char *dst, size_t cap, size_t at, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char tmp[7];
		size_t n = 0;
		switch (*p) {
		case '"': tmp[n++] = '\\'; tmp[n++] = '"'; break;
		case '\\': tmp[n++] = '\\'; tmp[n++] = '\\'; break;
		case '\n': tmp[n++] = '\\'; tmp[n++] = 'n'; break;
		case '\r': tmp[n++] = '\\'; tmp[n++] = 'r'; break;
		case '\t': tmp[n++] = '\\'; tmp[n++] = 't'; break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				memcpy(tmp, "\\u00", 4);
				tmp[4] = hex[*p >> 4];
				tmp[5] = hex[*p & 15];
				n = 6;
			} else {
				tmp[n++] = (char)*p;
			}
		}
		for (size_t i = 0; i < n; i++, at++)
			if (at + 1 < cap)
				dst[at] = tmp[i];
	}
	return at;
}

size_t vt_http_error_json(char *buf, size_t cap, int status, const char *code,
			  const char *message)
{
	size_t at = 0;
	char tail[48];
#define PUT(s)                                                                 \
	do {                                                                   \
		for (const char *q_ = (s); *q_; q_++, at++)                    \
			if (at + 1 < cap)                                      \
				buf[at] = *q_;                                 \
	} while (0)
	PUT("{\"error\":{\"code\":\"");
	at = json_escape(buf, cap, at, code ? code : "INTERNAL");
	PUT("\",\"message\":\"");
	at = json_escape(buf, cap, at, message ? message : "");
	snprintf(tail, sizeof tail, "\"},\"status\":%d}", status);
	PUT(tail);
#undef PUT
	if (cap)
		buf[at < cap ? at : cap - 1] = '\0';
	return at;
}

int vt_http_status_from_err(int e, const char **code_out)
{
	/* One table for every transport: lib/base/error.c. */
	vt_err_status st = vt_err_status_of(e);
	if (code_out)
		*code_out = st.name;
	return st.http;
}

static const char *reason(int st)
{
	switch (st) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Status";
	}
}

/* ---- connection state ------------------------------------------------ */

static void set_reading(vt__http_conn *c, int on)
{
	if (c->reading == on)
		return;
	c->reading = on;
	c->io->set_reading(c->io_ud, on);
}

static void set_state(vt__http_conn *c, enum state st)
{
	if (c->state == st)
		return;
	c->state = st;
	if (c->closing)
		return;
	switch (st) {
	case ST_IDLE:
		set_reading(c, 1);
		c->io->set_timer(c->io_ud, c->cfg->opts.idle_timeout_ms);
		break;
	case ST_READING:
		c->io->set_timer(c->io_ud, c->cfg->opts.read_timeout_ms);
		break;
	case ST_HANDLER:
		/* Reading goes on: input that arrives before the answer
		 * (pipelining) is held, and only then is reading stopped
		 * (vt__http_conn_feed). Stopping it here for every request
		 * cost two epoll_ctl calls per request on the loop. */
		c->io->set_timer(c->io_ud, 0);
		break;
	case ST_WRITING:
		/* a peer that never reads must not hold the connection */
		c->io->set_timer(c->io_ud, c->cfg->opts.read_timeout_ms);
		break;
	}
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	vt_buf_free(&r->head);
	vt_buf_free(&r->body);
	vt_free(r->hoff);
	vt_free(r);
}

static void conn_close(vt__http_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->io->set_timer(c->io_ud, 0);
	c->io->close(c->io_ud);
}

static void maybe_free(vt__http_conn *c)
{
	if (!c->released || c->cur || c->in_pump)
		return;
	vt_buf_free(&c->pending);
	const vt__http_io *io = c->io;
	void *ud = c->io_ud;
	vt_free(c);
	io->destroy(ud);
}

/* Builds a whole response in one allocation and queues it. */
static int send_response(vt__http_conn *c, int status, const char *ctype,
			 const char *extra, const void *body, size_t len,
			 int head_only, int close)
{
	const char *cors = c->cfg->opts.cors_origin;
	int no_body = status == 204 || status == 304 || status < 200;
	char fixed[512];
	int n = snprintf(fixed, sizeof fixed, "HTTP/1.1 %d %s\r\n", status,
			 reason(status));
	if (ctype && *ctype)
		n += snprintf(fixed + n, sizeof fixed - (size_t)n,
			      "Content-Type: %.200s\r\n", ctype);
	if (!no_body)
		n += snprintf(fixed + n, sizeof fixed - (size_t)n,
			      "Content-Length: %zu\r\n", len);
	if (close)
		n += snprintf(fixed + n, sizeof fixed - (size_t)n,
			      "Connection: close\r\n");
	if ((size_t)n >= sizeof fixed)
		return VT_EINVAL;
	vt_buf b;
	vt_buf_init(&b, SIZE_MAX);
	size_t total = (size_t)n + 64 + strlen(cors) + (extra ? strlen(extra) : 0) +
		       (no_body || head_only ? 0 : len);
	int rc = vt_buf_reserve(&b, total);
	rc = rc ? rc : vt_buf_append(&b, fixed, (size_t)n);
	if (!rc && *cors) {
		rc = vt_buf_append(&b, "Access-Control-Allow-Origin: ", 29);
		rc = rc ? rc : vt_buf_append(&b, cors, strlen(cors));
		rc = rc ? rc : vt_buf_append(&b, "\r\n", 2);
	}
	if (!rc && extra)
		rc = vt_buf_append(&b, extra, strlen(extra));
	rc = rc ? rc : vt_buf_append(&b, "\r\n", 2);
	if (!rc && !no_body && !head_only && len)
		rc = vt_buf_append(&b, body, len);
	if (rc) {
		vt_buf_free(&b);
		return rc;
	}
	size_t out_len;
	uint8_t *out = vt_buf_steal(&b, &out_len);
	c->writes++;
	c->io->write(c->io_ud, out, out_len);
	return 0;
}

/* An error the server answers itself (the request never reached the
 * handler); the connection closes after it. */
static void fail(vt__http_conn *c, int status, const char *code,
		 const char *msg)
{
	if (c->closing)
		return;
	char body[512];
	size_t n = vt_http_error_json(body, sizeof body, status, code, msg);
	if (n >= sizeof body)
		n = sizeof body - 1;
	if (c->cur && c->state != ST_HANDLER) {
		req_free(c->cur);
		c->cur = NULL;
	}
	send_response(c, status, "application/json", NULL, body, n, 0, 1);
	conn_close(c);
}

/* ---- llhttp callbacks ------------------------------------------------ */

static int limit(vt__http_conn *c, int rc, int status, const char *what)
{
	if (rc == VT_ENOMEM) {
		c->err_status = 503;
		c->err_code = "RESOURCE_EXHAUSTED";
		snprintf(c->err_msg, sizeof c->err_msg,
			 "server out of memory, retry later");
	} else if (status == 413) {
		c->err_status = 413;
		c->err_code = "RESOURCE_EXHAUSTED";
		snprintf(c->err_msg, sizeof c->err_msg,
			 "request body exceeds %zu bytes (max_body_bytes)",
			 c->cfg->opts.max_body_bytes);
	} else {
		c->err_status = 431;
		c->err_code = "RESOURCE_EXHAUSTED";
		snprintf(c->err_msg, sizeof c->err_msg,
			 "request %s exceed the limit (%zu bytes, %u fields)",
			 what, c->cfg->opts.max_header_bytes,
			 c->cfg->opts.max_headers);
	}
	return -1;
}

static int head_add(vt__http_conn *c, const char *at, size_t n)
{
	int rc = vt_buf_append(&c->cur->head, at, n);
	return rc ? limit(c, rc, 431, "headers") : 0;
}

static int on_message_begin(llhttp_t *p)
{
	vt__http_conn *c = p->data;
	req_free(c->cur);
	c->cur = vt_calloc(1, sizeof *c->cur);
	if (!c->cur)
		return limit(c, VT_ENOMEM, 0, NULL);
	c->cur->c = c;
	vt_buf_init(&c->cur->head, c->cfg->opts.max_header_bytes);
	vt_buf_init(&c->cur->body, c->cfg->opts.max_body_bytes);
	set_state(c, ST_READING);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	return head_add(p->data, at, n);
}

static int on_url_complete(llhttp_t *p)
{
	vt__http_conn *c = p->data;
	if (c->cur->url_done)
		return 0;
	c->cur->url_done = 1;
	return head_add(c, "", 1);
}

static int start_field(vt__http_conn *c)
{
	struct req *r = c->cur;
	int rc;
	if (!r->url_done && (rc = on_url_complete(&c->p)))
		return rc;
	r->in_field = 1;
	if (r->nhdr >= c->cfg->opts.max_headers)
		return limit(c, VT_ELIMIT, 431, "header fields");
	if (r->nhdr == r->hcap) {
		unsigned cap = r->hcap ? r->hcap * 2 : 16;
		uint32_t *h = vt_realloc(r->hoff, (size_t)cap * 2 * sizeof *h);
		if (!h)
			return limit(c, VT_ENOMEM, 0, NULL);
		r->hoff = h;
		r->hcap = cap;
	}
	r->hoff[2 * r->nhdr] = (uint32_t)r->head.len;
	r->hoff[2 * r->nhdr + 1] = (uint32_t)r->head.len;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	vt__http_conn *c = p->data;
	int rc;
	if (c->cur->head_done)
		return 0;
	if (!c->cur->in_field && (rc = start_field(c)))
		return rc;
	return head_add(c, at, n);
}

static int on_header_field_complete(llhttp_t *p)
{
	vt__http_conn *c = p->data;
	struct req *r = c->cur;
	int rc;
	if (r->head_done)
		return 0;
	if (!r->in_field && (rc = start_field(c)))
		return rc;
	if ((rc = head_add(c, "", 1)))
		return rc;
	r->hoff[2 * r->nhdr + 1] = (uint32_t)r->head.len;
	r->nhdr++;
	r->in_field = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	vt__http_conn *c = p->data;
	if (c->cur->head_done || !c->cur->nhdr)
		return 0;
	return head_add(c, at, n);
}

static int on_header_value_complete(llhttp_t *p)
{
	vt__http_conn *c = p->data;
	if (c->cur->head_done || !c->cur->nhdr)
		return 0;
	return head_add(c, "", 1);
}

static int on_headers_complete(llhttp_t *p)
{
	vt__http_conn *c = p->data;
	struct req *r = c->cur;
	int rc;
	if (!r->url_done && (rc = on_url_complete(p)))
		return rc;
	/* a final NUL: every offset now ends inside the buffer */
	if ((rc = head_add(c, "", 1)))
		return rc;
	r->head_done = 1;
	char *url = (char *)r->head.data;
	char *q = strchr(url, '?');
	r->pub.path = url;
	r->pub.query = "";
	if (q) {
		*q = '\0';
		r->pub.query = q + 1;
	}
	uint8_t method = llhttp_get_method(p);
	r->pub.method = llhttp_method_name((llhttp_method_t)method);
	r->pub.http_minor = llhttp_get_http_minor(p);
	if (llhttp_get_http_major(p) != 1) {
		c->err_status = 505;
		c->err_code = "INVALID_ARGUMENT";
		snprintf(c->err_msg, sizeof c->err_msg,
			 "only HTTP/1.0 and HTTP/1.1 are served");
		return -1;
	}
	r->head_only = method == HTTP_HEAD;
	r->preflight = method == HTTP_OPTIONS && *c->cfg->opts.cors_origin;
	if (llhttp_get_upgrade(p) || method == HTTP_CONNECT)
		c->want_close = 1;
	r->pub.keep_alive = llhttp_should_keep_alive(p) &&
			    r->pub.http_minor >= 1 && !c->want_close &&
			    !c->drain;
	int has_body = (p->flags & F_CHUNKED) ||
		       ((p->flags & F_CONTENT_LENGTH) && p->content_length);
	if ((p->flags & F_CONTENT_LENGTH) &&
	    p->content_length > c->cfg->opts.max_body_bytes)
		return limit(c, VT_ELIMIT, 413, NULL);
	const char *expect = vt_http_req_header(&r->pub, "expect");
	if (has_body && expect && !strcasecmp(expect, "100-continue") &&
	    r->pub.http_minor >= 1) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		uint8_t *b = vt_malloc(sizeof cont - 1);
		if (!b)
			return limit(c, VT_ENOMEM, 0, NULL);
		memcpy(b, cont, sizeof cont - 1);
		c->writes++;
		c->io->write(c->io_ud, b, sizeof cont - 1);
	}
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length) {
		/* pre-size, but not beyond 1 MiB on the client's word alone */
		size_t want = p->content_length < (1u << 20) ?
				      (size_t)p->content_length :
				      (1u << 20);
		if ((rc = vt_buf_reserve(&r->body, want)))
			return limit(c, rc, 413, NULL);
	}
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	vt__http_conn *c = p->data;
	int rc = vt_buf_append(&c->cur->body, at, n);
	return rc ? limit(c, rc, 413, NULL) : 0;
}

static int on_message_complete(llhttp_t *p)
{
	(void)p;
	/* one request at a time: stop here, the rest waits in `pending` */
	return HPE_PAUSED;
}

static const llhttp_settings_t *settings(void)
{
	/* a constant table; racing initialisations write the same bytes */
	if (!g_settings_ready) {
		llhttp_settings_t s;
		llhttp_settings_init(&s);
		s.on_message_begin = on_message_begin;
		s.on_url = on_url;
		s.on_url_complete = on_url_complete;
		s.on_header_field = on_header_field;
		s.on_header_field_complete = on_header_field_complete;
		s.on_header_value = on_header_value;
		s.on_header_value_complete = on_header_value_complete;
		s.on_headers_complete = on_headers_complete;
		s.on_body = on_body;
		s.on_message_complete = on_message_complete;
		g_settings = s;
		__atomic_store_n(&g_settings_ready, 1, __ATOMIC_RELEASE);
	}
	return &g_settings;
}

/* ---- dispatch and parsing -------------------------------------------- */

static void dispatch(vt__http_conn *c)
{
	struct req *r = c->cur;
	r->pub.body = r->body.len ? r->body.data : NULL;
	r->pub.body_len = r->body.len;
	set_state(c, ST_HANDLER);
	if (r->preflight) {
		char extra[1024];
		const char *h = vt_http_req_header(&r->pub,
			"access-control-request-headers");
		snprintf(extra, sizeof extra,
			 "Access-Control-Allow-Methods: GET, POST, PUT, PATCH, "
			 "DELETE, HEAD, OPTIONS\r\n"
			 "Access-Control-Allow-Headers: %.700s\r\n"
			 "Access-Control-Max-Age: 86400\r\n",
			 h && *h ? h : "Content-Type, Authorization");
		vt_http_respond_hdrs(&r->pub, 204, NULL, extra, NULL, 0);
		return;
	}
	c->cfg->fn(c->cfg->ud, &r->pub);
}

/* Parses data (which may live in c->pending) until it is used up or a
 * request completes; returns the bytes consumed. */
static size_t parse(vt__http_conn *c, const uint8_t *data, size_t len)
{
	llhttp_errno_t e = llhttp_execute(&c->p, (const char *)data, len);
	size_t used = len;
	if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		used = (size_t)(llhttp_get_error_pos(&c->p) -
				(const char *)data);
		llhttp_resume(&c->p);
		if (e == HPE_PAUSED_UPGRADE) {
			/* the rest speaks another protocol: never parse it */
			c->want_close = 1;
			used = len;
		}
		dispatch(c);
		return used;
	}
	if (e == HPE_OK)
		return used;
	if (c->err_status) {
		fail(c, c->err_status, c->err_code, c->err_msg);
	} else {
		char msg[200];
		snprintf(msg, sizeof msg, "malformed HTTP request: %s",
			 llhttp_get_error_reason(&c->p) ?
				 llhttp_get_error_reason(&c->p) :
				 llhttp_errno_name(e));
		fail(c, 400, "INVALID_ARGUMENT", msg);
	}
	return len;
}

static int can_parse(const vt__http_conn *c)
{
	return !c->closing && (c->state == ST_IDLE || c->state == ST_READING);
}

/* Parses held input while the connection may take a request. */
static void pump(vt__http_conn *c)
{
	if (c->in_pump)
		return;
	c->in_pump = 1;
	while (can_parse(c) && c->pend_off < c->pending.len) {
		size_t used = parse(c, c->pending.data + c->pend_off,
				    c->pending.len - c->pend_off);
		c->pend_off += used;
	}
	if (c->pend_off >= c->pending.len) {
		c->pending.len = 0;
		c->pend_off = 0;
	}
	if (can_parse(c) && c->eof && !c->pending.len)
		conn_close(c);
	c->in_pump = 0;
	maybe_free(c);
}

static void hold(vt__http_conn *c, const uint8_t *data, size_t len)
{
	if (c->pend_off && c->pend_off == c->pending.len) {
		c->pending.len = 0;
		c->pend_off = 0;
	}
	if (vt_buf_append(&c->pending, data, len)) {
		fail(c, 431, "RESOURCE_EXHAUSTED", "too much pipelined input");
	}
}

/* ---- the core's API ------------------------------------------------- */

vt__http_conn *vt__http_conn_create(const vt__http_cfg *cfg,
				    const vt__http_io *io, void *io_ud)
{
	vt__http_conn *c = vt_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->cfg = cfg;
	c->io = io;
	c->io_ud = io_ud;
	llhttp_init(&c->p, HTTP_REQUEST, settings());
	c->p.data = c;
	vt_buf_init(&c->pending, MAX_PENDING);
	c->state = ST_WRITING; /* so that set_state arms the idle timer */
	set_state(c, ST_IDLE);
	return c;
}

void vt__http_conn_feed(vt__http_conn *c, const uint8_t *data, size_t len)
{
	if (c->closing || c->eof || !len)
		return; /* a closing connection discards what still arrives */
	if (!can_parse(c) || c->pending.len > c->pend_off || c->in_pump) {
		hold(c, data, len);
		if (!can_parse(c) && !c->closing)
			set_reading(c, 0); /* back-pressure until ST_IDLE */
		pump(c);
		return;
	}
	c->in_pump = 1;
	size_t off = 0;
	while (off < len && can_parse(c))
		off += parse(c, data + off, len - off);
	if (off < len && !c->closing) {
		hold(c, data + off, len - off);
		if (!can_parse(c) && !c->closing)
			set_reading(c, 0);
	}
	c->in_pump = 0;
	maybe_free(c);
	if (!c->released)
		pump(c);
}

void vt__http_conn_eof(vt__http_conn *c)
{
	/* a request cut short by EOF is dropped, not answered; one that is
	 * with the handler is still answered, then the connection closes */
	c->eof = 1;
	pump(c);
}

void vt__http_conn_write_done(vt__http_conn *c, int status)
{
	assert(c->writes > 0);
	c->writes--;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->writes || c->state != ST_WRITING || c->closing)
		return;
	set_state(c, ST_IDLE);
	if (c->drain)
		conn_close(c);
	else
		pump(c);
}

void vt__http_conn_timeout(vt__http_conn *c)
{
	if (c->closing)
		return;
	if (c->state == ST_READING)
		fail(c, 408, "DEADLINE_EXCEEDED",
		     "request not received in time (read_timeout_ms)");
	else if (c->state != ST_HANDLER)
		conn_close(c);
}

void vt__http_conn_drain(vt__http_conn *c)
{
	c->drain = 1;
	if (c->state == ST_IDLE && !c->writes &&
	    c->pend_off >= c->pending.len)
		conn_close(c);
}

void vt__http_conn_abort(vt__http_conn *c)
{
	conn_close(c);
}

void vt__http_conn_release(vt__http_conn *c)
{
	assert(!c->released);
	c->released = 1;
	c->closing = 1;
	if (c->cur && c->state != ST_HANDLER) {
		req_free(c->cur);
		c->cur = NULL;
	}
	maybe_free(c);
}

/* ---- requests and responses ------------------------------------------ */

unsigned vt_http_req_header_count(const vt_http_req *req)
{
	return ((const struct req *)req)->nhdr;
}

void vt_http_req_header_at(const vt_http_req *req, unsigned i,
			   const char **name, const char **value)
{
	const struct req *r = (const struct req *)req;
	assert(i < r->nhdr);
	*name = (const char *)r->head.data + r->hoff[2 * i];
	*value = (const char *)r->head.data + r->hoff[2 * i + 1];
}

const char *vt_http_req_header(const vt_http_req *req, const char *name)
{
	const struct req *r = (const struct req *)req;
	for (unsigned i = 0; i < r->nhdr; i++)
		if (!strcasecmp((const char *)r->head.data + r->hoff[2 * i],
				name))
			return (const char *)r->head.data + r->hoff[2 * i + 1];
	return NULL;
}

int vt_http_respond_hdrs(vt_http_req *req, int status,
			 const char *content_type, const char *extra_headers,
			 const void *body, size_t len)
{
	struct req *r = (struct req *)req;
	vt__http_conn *c = r->c;
	assert(c->cur == r && c->state == ST_HANDLER);
	if (c->closing) {
		c->cur = NULL;
		req_free(r);
		maybe_free(c);
		return VT_ECANCELED;
	}
	int close = !r->pub.keep_alive || c->drain || c->want_close;
	/* the arguments may point into the request: free it after copying */
	int rc = send_response(c, status, content_type, extra_headers, body,
			       len, r->head_only, close);
	c->cur = NULL;
	req_free(r);
	if (rc) {
		conn_close(c);
		return rc;
	}
	set_state(c, ST_WRITING);
	if (close)
		conn_close(c);
	return 0;
}

int vt_http_respond(vt_http_req *req, int status, const char *content_type,
		    const void *body, size_t len)
{
	return vt_http_respond_hdrs(req, status, content_type, NULL, body,
				    len);
}

int vt_http_respond_error(vt_http_req *req, int status, const char *code,
			  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char small[2048];
	size_t n = vt_http_error_json(small, sizeof small, status, code, msg);
	if (n < sizeof small)
		return vt_http_respond(req, status, "application/json", small,
				       n);
	char *big = vt_malloc(n + 1);
	if (!big)
		return vt_http_respond(req, status, "application/json", small,
				       strlen(small));
	vt_http_error_json(big, n + 1, status, code, msg);
	int rc = vt_http_respond(req, status, "application/json", big, n);
	vt_free(big);
	return rc;
}
