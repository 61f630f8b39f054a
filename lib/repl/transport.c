/* transport.c: the multiplexing raft_uv transport: one listener, shared TCP
 * connections, one socketpair per Raft stream. Not a raft_io and not TLS. */
#include "repl/transport.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/alloc.h"
#include "base/log.h"

#define MOD "repl"

/* Wire format, little-endian (docs/repl-transport.md):
 * u32 magic "VTRM", u8 version, u8 type, u16 reserved (0), u32 channel,
 * u64 group, u32 payload length, then the payload. */
#define HDR_SIZE 24
#define WIRE_MAGIC 0x4d525456u
#define WIRE_VERSION 1
#define ADDR_MAX 255
#define DATA_MAX 65536
/* Per connection and direction: above HIGH the producer stops, below LOW it
 * resumes. */
#define HIGH_WATER (4u << 20)
#define LOW_WATER (1u << 20)

enum { F_HELLO = 1, F_OPEN = 2, F_DATA = 3, F_CLOSE = 4 };
enum { C_CONNECTING, C_HELLO_WAIT, C_READY, C_CLOSING };

struct conn;
struct group;

/* One Raft stream: our end of a socketpair whose other end raft_uv owns. */
struct chan {
	uv_pipe_t pipe;
	struct chan *next;
	struct conn *c; /* NULL once closing */
	struct group *g;
	uint64_t gid;
	uint32_t id;
	int closing;
	size_t in_bytes; /* written towards raft, not yet completed */
};

struct conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	vt_repl_mux *m;
	struct conn *next;
	int dialed;
	int state;
	char peer[ADDR_MAX + 1];
	uint8_t hdr[HDR_SIZE];
	size_t hdr_have;
	uint8_t type;
	uint32_t fchan;
	uint64_t fgroup;
	uint32_t flen;
	size_t pay_have;
	uint8_t *payload; /* DATA_MAX */
	uint8_t *rbuf;    /* DATA_MAX */
	int rbuf_busy;
	size_t out_bytes; /* queued on tcp */
	size_t in_bytes;  /* queued towards raft on this conn's channels */
	int out_paused, in_paused;
	struct chan *chans;
	uint32_t next_chan;
};

struct group {
	struct raft_uv_transport t;
	vt_repl_mux *m; /* NULL once the mux is gone */
	struct group *next;
	uint64_t id;
	raft_id self;
	char addr[ADDR_MAX + 1];
	raft_uv_accept_cb accept_cb;
	int closed;
};

struct pend {
	struct pend *next;
	struct group *g;
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	raft_id id;
	struct conn *c; /* NULL: fail with status */
	int status;
};

struct drop {
	struct drop *next;
	char addr[ADDR_MAX + 1];
};

struct vt_repl_mux {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_timer_t kick;
	char addr[ADDR_MAX + 1];
	struct group *groups;
	struct conn *conns;
	struct pend *pend;
	struct drop *drops;
	vt_repl_mux_stats st;
	int handles;
	int closing;
	void (*close_cb)(void *);
	void *close_arg;
};

struct wreq {
	uv_write_t w;
	struct chan *ch; /* towards raft: the channel; towards tcp: NULL */
	struct conn *c;
	size_t n;
	uint8_t data[];
};

/* ---- helpers ---------------------------------------------------------- */

static void put_hdr(uint8_t *p, int type, uint32_t chan, uint64_t group,
		    uint32_t len)
{
	vt_le_put32(p, WIRE_MAGIC);
	p[4] = WIRE_VERSION;
	p[5] = (uint8_t)type;
	p[6] = p[7] = 0;
	vt_le_put32(p + 8, chan);
	vt_le_put64(p + 12, group);
	vt_le_put32(p + 20, len);
}

static int parse_addr(const char *a, struct sockaddr_in *sa)
{
	const char *colon = a ? strrchr(a, ':') : NULL;
	char host[64];
	if (!colon || (size_t)(colon - a) >= sizeof host)
		return VT_EINVAL;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || end == colon + 1)
		return VT_EINVAL;
	memcpy(host, a, (size_t)(colon - a));
	host[colon - a] = '\0';
	return uv_ip4_addr(host, (int)port, sa) ? VT_EINVAL : 0;
}

static int dropped(vt_repl_mux *m, const char *addr)
{
	for (struct drop *d = m->drops; d; d = d->next)
		if (!strcmp(d->addr, addr))
			return 1;
	return 0;
}

static void maybe_finish(vt_repl_mux *m)
{
	if (!m->closing || m->handles > 0)
		return;
	void (*cb)(void *) = m->close_cb;
	void *arg = m->close_arg;
	vt_free(m);
	if (cb)
		cb(arg);
}

static void kick_cb(uv_timer_t *h);

static void kick(vt_repl_mux *m)
{
	if (!m->closing)
		uv_timer_start(&m->kick, kick_cb, 0, 0);
}

/* ---- writing frames to a connection ----------------------------------- */

static void out_resume(struct conn *c);

static void tcp_write_cb(uv_write_t *w, int status)
{
	struct wreq *r = (struct wreq *)w;
	struct conn *c = r->c;
	c->out_bytes -= r->n;
	vt_free(r);
	if (c->out_paused && c->out_bytes < LOW_WATER && c->state == C_READY)
		out_resume(c);
	(void)status; /* a failed write shows up as a read error and closes */
}

/* Queues `r` (whose data already holds header + payload of r->n bytes). */
static void send_wreq(struct conn *c, struct wreq *r);

static void close_conn(struct conn *c, const char *why);

static void send_frame(struct conn *c, int type, uint32_t chan, uint64_t group,
		       const void *p1, size_t n1, const void *p2, size_t n2)
{
	struct wreq *r = vt_malloc(sizeof *r + HDR_SIZE + n1 + n2);
	if (!r) {
		close_conn(c, "out of memory");
		return;
	}
	r->ch = NULL;
	r->c = c;
	r->n = HDR_SIZE + n1 + n2;
	put_hdr(r->data, type, chan, group, (uint32_t)(n1 + n2));
	if (n1)
		memcpy(r->data + HDR_SIZE, p1, n1);
	if (n2)
		memcpy(r->data + HDR_SIZE + n1, p2, n2);
	send_wreq(c, r);
}

/* ---- channels ------------------------------------------------------- */

static void chan_closed(uv_handle_t *h)
{
	vt_repl_mux *m = h->data;
	vt_free(h);
	m->handles--;
	maybe_finish(m);
}

static void in_resume(struct conn *c);

/* Closes our end (raft sees EOF on its end). `tell` sends CLOSE to the peer. */
static void close_chan(struct chan *ch, int tell)
{
	if (ch->closing)
		return;
	ch->closing = 1;
	struct conn *c = ch->c;
	if (c) {
		for (struct chan **pp = &c->chans; *pp; pp = &(*pp)->next)
			if (*pp == ch) {
				*pp = ch->next;
				break;
			}
		if (tell && c->state == C_READY)
			send_frame(c, F_CLOSE, ch->id, ch->gid, NULL, 0, NULL,
				   0);
		c->in_bytes -= ch->in_bytes;
		ch->in_bytes = 0;
		ch->c = NULL;
		if (c->in_paused && c->in_bytes < LOW_WATER &&
		    c->state == C_READY)
			in_resume(c);
	}
	uv_close((uv_handle_t *)&ch->pipe, chan_closed);
}

static void chan_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct wreq *r = vt_malloc(sizeof *r + HDR_SIZE + DATA_MAX);
	buf->base = r ? (char *)r->data + HDR_SIZE : NULL;
	buf->len = r ? DATA_MAX : 0;
	(void)h;
	(void)hint;
}

/* Raft wrote on its end: frame it onto the connection. */
static void chan_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct chan *ch = (struct chan *)s;
	struct wreq *r = buf->base ? (struct wreq *)(void *)(buf->base -
							     HDR_SIZE -
							     offsetof(struct wreq,
								      data))
				   : NULL;
	if (nread > 0 && ch->c && ch->c->state == C_READY) {
		struct conn *c = ch->c;
		r->ch = NULL;
		r->c = c;
		r->n = HDR_SIZE + (size_t)nread;
		put_hdr(r->data, F_DATA, ch->id, ch->gid, (uint32_t)nread);
		send_wreq(c, r);
		return;
	}
	vt_free(r);
	if (nread < 0 || (nread > 0 && !ch->c))
		close_chan(ch, 1);
}

static void chan_write_cb(uv_write_t *w, int status)
{
	struct wreq *r = (struct wreq *)w;
	struct chan *ch = r->ch;
	struct conn *c = ch->c;
	if (c) {
		ch->in_bytes -= r->n;
		c->in_bytes -= r->n;
		if (c->in_paused && c->in_bytes < LOW_WATER &&
		    c->state == C_READY)
			in_resume(c);
	}
	vt_free(r);
	if (status < 0 && status != UV_ECANCELED)
		close_chan(ch, 1); /* raft closed its end */
}

/* Makes a channel on `c` and the stream for raft in *stream_out. */
static int make_chan(struct conn *c, struct group *g, uint64_t gid,
		     uint32_t id, uv_stream_t **stream_out)
{
	vt_repl_mux *m = c->m;
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return VT_EIO;
	struct chan *ch = vt_calloc(1, sizeof *ch);
	uv_pipe_t *rp = raft_malloc(sizeof *rp);
	if (!ch || !rp) {
		vt_free(ch);
		raft_free(rp);
		close(fds[0]);
		close(fds[1]);
		return VT_ENOMEM;
	}
	uv_pipe_init(m->loop, &ch->pipe, 0);
	uv_pipe_init(m->loop, rp, 0);
	ch->pipe.data = m;
	m->handles++;
	/* uv_pipe_open only fails on a bad fd; it cannot here. */
	uv_pipe_open(&ch->pipe, fds[0]);
	uv_pipe_open(rp, fds[1]);
	ch->c = c;
	ch->g = g;
	ch->gid = gid;
	ch->id = id;
	ch->next = c->chans;
	c->chans = ch;
	if (!c->out_paused)
		uv_read_start((uv_stream_t *)&ch->pipe, chan_alloc, chan_read);
	*stream_out = (uv_stream_t *)rp;
	return 0;
}

static struct chan *find_chan(struct conn *c, uint32_t id)
{
	for (struct chan *ch = c->chans; ch; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

/* ---- back-pressure -------------------------------------------------- */

static void out_resume(struct conn *c)
{
	c->out_paused = 0;
	for (struct chan *ch = c->chans; ch; ch = ch->next)
		uv_read_start((uv_stream_t *)&ch->pipe, chan_alloc, chan_read);
}

static void send_wreq(struct conn *c, struct wreq *r)
{
	uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)r->n);
	c->m->st.frames_out++;
	if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, tcp_write_cb) < 0) {
		vt_free(r);
		close_conn(c, "write failed");
		return;
	}
	c->out_bytes += r->n;
	if (!c->out_paused && c->out_bytes > HIGH_WATER) {
		c->out_paused = 1;
		c->m->st.paused++;
		for (struct chan *ch = c->chans; ch; ch = ch->next)
			uv_read_stop((uv_stream_t *)&ch->pipe);
	}
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void in_resume(struct conn *c)
{
	c->in_paused = 0;
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

/* ---- connections ---------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	vt_repl_mux *m = c->m;
	vt_free(c->payload);
	vt_free(c->rbuf);
	vt_free(c);
	m->handles--;
	maybe_finish(m);
}

static void close_conn(struct conn *c, const char *why)
{
	if (c->state == C_CLOSING)
		return;
	vt_repl_mux *m = c->m;
	if (why)
		VT_LOG(VT_LOG_INFO, MOD, "%s: connection %s %s closed: %s",
		       m->addr, c->dialed ? "to" : "from",
		       c->peer[0] ? c->peer : "?", why);
	c->state = C_CLOSING;
	while (c->chans)
		close_chan(c->chans, 0);
	for (struct pend *p = m->pend; p; p = p->next)
		if (p->c == c) {
			p->c = NULL;
			p->status = RAFT_NOCONNECTION;
			kick(m);
		}
	for (struct conn **pp = &m->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static struct conn *new_conn(vt_repl_mux *m)
{
	struct conn *c = vt_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->payload = vt_malloc(DATA_MAX);
	c->rbuf = vt_malloc(DATA_MAX);
	if (!c->payload || !c->rbuf) {
		vt_free(c->payload);
		vt_free(c->rbuf);
		vt_free(c);
		return NULL;
	}
	c->m = m;
	c->next_chan = 1;
	uv_tcp_init(m->loop, &c->tcp);
	c->tcp.data = c;
	m->handles++;
	c->next = m->conns;
	m->conns = c;
	return c;
}

static void protocol_error(struct conn *c, const char *what)
{
	c->m->st.protocol_errors++;
	VT_LOG(VT_LOG_WARN, MOD, "%s: bad bytes from %s: %s; closing", c->m->addr,
	       c->peer[0] ? c->peer : "an unidentified peer", what);
	close_conn(c, NULL);
}

static struct group *find_group(vt_repl_mux *m, uint64_t id)
{
	for (struct group *g = m->groups; g; g = g->next)
		if (g->id == id && g->accept_cb && !g->closed)
			return g;
	return NULL;
}

static void on_open(struct conn *c)
{
	vt_repl_mux *m = c->m;
	if (c->flen < 8 || c->flen > 8 + ADDR_MAX) {
		protocol_error(c, "OPEN frame with a bad length");
		return;
	}
	if (find_chan(c, c->fchan)) {
		protocol_error(c, "OPEN for a channel already open");
		return;
	}
	raft_id id = vt_le_get64(c->payload);
	char addr[ADDR_MAX + 1];
	memcpy(addr, c->payload + 8, c->flen - 8);
	addr[c->flen - 8] = '\0';
	struct group *g = find_group(m, c->fgroup);
	if (!g) {
		m->st.unknown_group++;
		VT_LOG(VT_LOG_WARN, MOD,
		       "%s: stream from %s (raft id %llu) for group %llu, which "
		       "has no replica here; dropped",
		       m->addr, addr, (unsigned long long)id,
		       (unsigned long long)c->fgroup);
		send_frame(c, F_CLOSE, c->fchan, c->fgroup, NULL, 0, NULL, 0);
		return;
	}
	uv_stream_t *s;
	if (make_chan(c, g, g->id, c->fchan, &s) < 0) {
		send_frame(c, F_CLOSE, c->fchan, c->fgroup, NULL, 0, NULL, 0);
		return;
	}
	g->accept_cb(&g->t, id, addr, s);
}

static void on_data(struct conn *c)
{
	struct chan *ch = find_chan(c, c->fchan);
	if (!ch || ch->gid != c->fgroup) {
		c->m->st.stale_frames++;
		return;
	}
	struct wreq *r = vt_malloc(sizeof *r + c->flen);
	if (!r) {
		close_chan(ch, 1);
		return;
	}
	r->ch = ch;
	r->c = c;
	r->n = c->flen;
	memcpy(r->data, c->payload, c->flen);
	uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)r->n);
	if (uv_write(&r->w, (uv_stream_t *)&ch->pipe, &b, 1, chan_write_cb) <
	    0) {
		vt_free(r);
		close_chan(ch, 1);
		return;
	}
	ch->in_bytes += r->n;
	c->in_bytes += r->n;
	if (!c->in_paused && c->in_bytes > HIGH_WATER) {
		c->in_paused = 1;
		c->m->st.paused++;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
}

static void dispatch(struct conn *c)
{
	vt_repl_mux *m = c->m;
	m->st.frames_in++;
	if (c->state == C_HELLO_WAIT) {
		if (c->type != F_HELLO || c->flen == 0 || c->flen > ADDR_MAX) {
			protocol_error(c, "first frame is not a HELLO");
			return;
		}
		memcpy(c->peer, c->payload, c->flen);
		c->peer[c->flen] = '\0';
		if (dropped(m, c->peer)) {
			m->st.hook_drops++;
			close_conn(c, "drop rule");
			return;
		}
		c->state = C_READY;
		return;
	}
	switch (c->type) {
	case F_OPEN:
		if (c->dialed)
			protocol_error(c, "OPEN on a dialed connection");
		else
			on_open(c);
		return;
	case F_DATA:
		on_data(c);
		return;
	case F_CLOSE: {
		struct chan *ch = find_chan(c, c->fchan);
		if (ch && ch->gid == c->fgroup)
			close_chan(ch, 0);
		else
			m->st.stale_frames++;
		return;
	}
	default:
		protocol_error(c, "HELLO after the handshake");
	}
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;
	buf->base = (char *)c->rbuf;
	buf->len = DATA_MAX;
	(void)hint;
}

static int check_hdr(struct conn *c)
{
	const uint8_t *h = c->hdr;
	if (vt_le_get32(h) != WIRE_MAGIC)
		return protocol_error(c, "bad magic"), -1;
	if (h[4] != WIRE_VERSION)
		return protocol_error(c, "unsupported wire version"), -1;
	c->type = h[5];
	c->fchan = vt_le_get32(h + 8);
	c->fgroup = vt_le_get64(h + 12);
	c->flen = vt_le_get32(h + 20);
	if (c->type < F_HELLO || c->type > F_CLOSE || h[6] || h[7])
		return protocol_error(c, "bad frame type"), -1;
	if (c->flen > DATA_MAX || (c->type == F_CLOSE && c->flen))
		return protocol_error(c, "frame too long"), -1;
	return 0;
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (nread < 0) {
		close_conn(c, nread == UV_EOF ? "peer closed"
					      : uv_strerror((int)nread));
		return;
	}
	const uint8_t *p = (const uint8_t *)buf->base;
	size_t n = (size_t)nread;
	while (n > 0 && c->state != C_CLOSING) {
		if (c->hdr_have < HDR_SIZE) {
			size_t k = HDR_SIZE - c->hdr_have;
			k = k < n ? k : n;
			memcpy(c->hdr + c->hdr_have, p, k);
			c->hdr_have += k;
			p += k;
			n -= k;
			if (c->hdr_have < HDR_SIZE)
				break;
			if (check_hdr(c) < 0)
				return;
			c->pay_have = 0;
		} else {
			size_t k = c->flen - c->pay_have;
			k = k < n ? k : n;
			memcpy(c->payload + c->pay_have, p, k);
			c->pay_have += k;
			p += k;
			n -= k;
		}
		if (c->pay_have == c->flen) {
			c->hdr_have = 0;
			dispatch(c);
		}
	}
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (c->state == C_CLOSING)
		return;
	if (status < 0) {
		close_conn(c, uv_strerror(status));
		return;
	}
	c->m->st.conns_dialed++;
	c->state = C_READY;
	send_frame(c, F_HELLO, 0, 0, c->m->addr, strlen(c->m->addr), NULL, 0);
	if (c->state != C_READY)
		return;
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	kick(c->m);
}

static struct conn *dial(vt_repl_mux *m, const char *addr)
{
	for (struct conn *c = m->conns; c; c = c->next)
		if (c->dialed && !strcmp(c->peer, addr))
			return c;
	struct sockaddr_in sa;
	if (parse_addr(addr, &sa) < 0 || strlen(addr) > ADDR_MAX)
		return NULL;
	struct conn *c = new_conn(m);
	if (!c)
		return NULL;
	c->dialed = 1;
	c->state = C_CONNECTING;
	strcpy(c->peer, addr);
	c->creq.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	int rc = uv_tcp_connect(&c->creq, &c->tcp,
				(const struct sockaddr *)&sa, connect_cb);
	if (rc < 0) {
		close_conn(c, uv_strerror(rc));
		return NULL;
	}
	return c;
}

static void accept_cb(uv_stream_t *server, int status)
{
	vt_repl_mux *m = server->data;
	if (status < 0 || m->closing)
		return;
	struct conn *c = new_conn(m);
	if (!c)
		return;
	c->state = C_HELLO_WAIT;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		close_conn(c, "accept failed");
		return;
	}
	m->st.conns_accepted++;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

/* ---- pending connects ----------------------------------------------- */

/* Completes the connects whose connection is ready or failed. Runs from a
 * zero timer so raft never sees its callback inside its own connect(). */
static void kick_cb(uv_timer_t *h)
{
	vt_repl_mux *m = h->data;
	struct pend *list = m->pend, *keep = NULL;
	m->pend = NULL;
	while (list) {
		struct pend *p = list;
		list = p->next;
		if (p->c && p->c->state != C_READY) {
			p->next = keep;
			keep = p;
			continue;
		}
		uv_stream_t *s = NULL;
		int status = p->status;
		if (p->c) {
			struct conn *c = p->c;
			struct group *g = p->g;
			uint8_t idb[8];
			uint32_t id = c->next_chan++;
			status = make_chan(c, g, g->id, id, &s) < 0
					 ? RAFT_NOCONNECTION
					 : 0;
			if (status == 0) {
				vt_le_put64(idb, g->self);
				send_frame(c, F_OPEN, id, g->id, idb, 8, g->addr,
					   strlen(g->addr));
			}
		}
		p->cb(p->req, status == 0 ? s : NULL, status);
		vt_free(p);
	}
	/* Callbacks may have added more; keep both. */
	while (keep) {
		struct pend *p = keep;
		keep = p->next;
		p->next = m->pend;
		m->pend = p;
	}
}

/* ---- the raft_uv_transport methods ---------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *addr)
{
	struct group *g = t->impl;
	if (strlen(addr) > ADDR_MAX) {
		snprintf(t->errmsg, sizeof t->errmsg, "address too long");
		return RAFT_INVALID;
	}
	g->self = id;
	strcpy(g->addr, addr);
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct group *g = t->impl;
	if (!g->m) {
		snprintf(t->errmsg, sizeof t->errmsg, "mux closed");
		return RAFT_IOERR;
	}
	if (find_group(g->m, g->id)) {
		snprintf(t->errmsg, sizeof t->errmsg,
			 "group %llu already listening on this mux",
			 (unsigned long long)g->id);
		return RAFT_DUPLICATEID;
	}
	g->accept_cb = cb;
	return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		     raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct group *g = t->impl;
	vt_repl_mux *m = g->m;
	if (!m || m->closing || g->closed)
		return RAFT_NOCONNECTION;
	struct pend *p = vt_calloc(1, sizeof *p);
	if (!p)
		return RAFT_NOMEM;
	p->g = g;
	p->req = req;
	p->cb = cb;
	p->id = id;
	p->status = RAFT_NOCONNECTION;
	if (dropped(m, address))
		m->st.hook_drops++;
	else
		p->c = dial(m, address);
	p->next = m->pend;
	m->pend = p;
	kick(m);
	return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct group *g = t->impl;
	vt_repl_mux *m = g->m;
	g->closed = 1;
	g->accept_cb = NULL;
	if (m) {
		struct pend **pp = &m->pend;
		while (*pp) {
			struct pend *p = *pp;
			if (p->g != g) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			p->cb(p->req, NULL, RAFT_CANCELED);
			vt_free(p);
			pp = &m->pend; /* the callback may have changed it */
		}
		for (struct conn *c = m->conns; c; c = c->next) {
			struct chan *ch = c->chans;
			while (ch) {
				struct chan *nx = ch->next;
				if (ch->g == g)
					close_chan(ch, 1);
				ch = nx;
			}
		}
	}
	if (cb)
		cb(t);
}

int vt_repl_transport_for_group(vt_repl_mux *m, uint64_t group_id,
				struct raft_uv_transport **out)
{
	struct group *g = vt_calloc(1, sizeof *g);
	if (!g)
		return VT_ENOMEM;
	g->m = m;
	g->id = group_id;
	g->t.impl = g;
	g->t.init = t_init;
	g->t.listen = t_listen;
	g->t.connect = t_connect;
	g->t.close = t_close;
	g->next = m->groups;
	m->groups = g;
	*out = &g->t;
	return 0;
}

void vt_repl_transport_release(struct raft_uv_transport *t)
{
	if (!t)
		return;
	struct group *g = t->impl;
	if (g->m) {
		for (struct group **pp = &g->m->groups; *pp; pp = &(*pp)->next)
			if (*pp == g) {
				*pp = g->next;
				break;
			}
		/* A channel still naming this group must not reach it. */
		for (struct conn *c = g->m->conns; c; c = c->next)
			for (struct chan *ch = c->chans; ch; ch = ch->next)
				if (ch->g == g)
					ch->g = NULL;
	}
	vt_free(g);
}

/* ---- the mux -------------------------------------------------------- */

int vt_repl_mux_open(uv_loop_t *loop, const char *bind_address,
		     vt_repl_mux **out, vt_errmsg *e)
{
	struct sockaddr_in sa;
	if (parse_addr(bind_address, &sa) < 0)
		return vt_errmsg_set(e, VT_EINVAL,
				     "repl transport: bad bind address '%s' "
				     "(want a.b.c.d:port)",
				     bind_address ? bind_address : "(null)");
	vt_repl_mux *m = vt_calloc(1, sizeof *m);
	if (!m)
		return vt_errmsg_set(e, VT_ENOMEM, "repl transport: no memory");
	m->loop = loop;
	uv_tcp_init(loop, &m->listener);
	uv_timer_init(loop, &m->kick);
	m->listener.data = m;
	m->kick.data = m;
	m->handles = 2;
	int rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&m->listener, 128, accept_cb);
	struct sockaddr_in got;
	int len = sizeof got;
	if (rc == 0)
		rc = uv_tcp_getsockname(&m->listener, (struct sockaddr *)&got,
					&len);
	if (rc < 0) {
		vt_errmsg_set(e, VT_EIO, "repl transport: listen on %s: %s",
			      bind_address, uv_strerror(rc));
		vt_repl_mux_close(m, NULL, NULL);
		return VT_EIO;
	}
	char host[64];
	uv_ip4_name(&got, host, sizeof host);
	snprintf(m->addr, sizeof m->addr, "%s:%d", host, ntohs(got.sin_port));
	*out = m;
	return 0;
}

const char *vt_repl_mux_address(const vt_repl_mux *m)
{
	return m->addr;
}

static void mux_handle_closed(uv_handle_t *h)
{
	vt_repl_mux *m = h->data;
	m->handles--;
	maybe_finish(m);
}

void vt_repl_mux_close(vt_repl_mux *m, void (*cb)(void *arg), void *arg)
{
	m->closing = 1;
	m->close_cb = cb;
	m->close_arg = arg;
	while (m->pend) {
		struct pend *p = m->pend;
		m->pend = p->next;
		p->cb(p->req, NULL, RAFT_CANCELED);
		vt_free(p);
	}
	while (m->conns)
		close_conn(m->conns, NULL);
	for (struct group *g = m->groups; g; g = g->next)
		g->m = NULL;
	m->groups = NULL;
	while (m->drops) {
		struct drop *d = m->drops;
		m->drops = d->next;
		vt_free(d);
	}
	uv_close((uv_handle_t *)&m->kick, mux_handle_closed);
	uv_close((uv_handle_t *)&m->listener, mux_handle_closed);
}

int vt_repl_mux_drop_peer(vt_repl_mux *m, const char *peer_address, int drop)
{
	if (!peer_address || strlen(peer_address) > ADDR_MAX)
		return VT_EINVAL;
	if (!drop) {
		for (struct drop **pp = &m->drops; *pp; pp = &(*pp)->next)
			if (!strcmp((*pp)->addr, peer_address)) {
				struct drop *d = *pp;
				*pp = d->next;
				vt_free(d);
				break;
			}
		return 0;
	}
	if (!dropped(m, peer_address)) {
		struct drop *d = vt_calloc(1, sizeof *d);
		if (!d)
			return VT_ENOMEM;
		strcpy(d->addr, peer_address);
		d->next = m->drops;
		m->drops = d;
	}
	struct conn *c = m->conns;
	while (c) {
		struct conn *nx = c->next;
		if (!strcmp(c->peer, peer_address)) {
			m->st.hook_drops++;
			close_conn(c, "drop rule");
		}
		c = nx;
	}
	return 0;
}

void vt_repl_mux_stats_get(const vt_repl_mux *m, vt_repl_mux_stats *out)
{
	*out = m->st;
}
