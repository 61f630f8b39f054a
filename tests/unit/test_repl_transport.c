/* test_repl_transport.c: the multiplexing raft_uv transport over 127.0.0.1:
 * routing of several groups over one port per node, unknown groups, bad
 * bytes, peer restart, the drop hook, and real raft_uv groups electing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "repl/transport.h"

#define NODES 3
#define GROUPS 3

/* ---- fixture: NODES muxes x GROUPS transports on one loop ------------- */

struct node;

struct rx {
	struct node *n;
	int g;
	uv_stream_t *s;
	char buf[256];
	size_t len;
	raft_id peer;
	char peer_addr[64];
	int eof;
};

struct node {
	vt_repl_mux *mux;
	struct raft_uv_transport *t[GROUPS];
	struct rx rx[16];
	int nrx;
};

static uv_loop_t loop;
static struct node nodes[NODES];
static int closed_count;
static int hold_reads;

/* An outgoing stream as the test (playing raft_uv) sees it. */
struct tx {
	struct raft_uv_connect req;
	uv_stream_t *s;
	int status;
	int done;
	int eof;
	char buf[256];
	size_t len;
};

static int node_of(struct raft_uv_transport *t, int *g)
{
	for (int i = 0; i < NODES; i++)
		for (int j = 0; j < GROUPS; j++)
			if (nodes[i].t[j] == t) {
				*g = j;
				return i;
			}
	return -1;
}

static void rx_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char scratch[65536];
	b->base = scratch;
	b->len = sizeof scratch;
	(void)h;
	(void)hint;
}

static void rx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct rx *r = s->data;
	if (n < 0) {
		r->eof = 1;
		uv_read_stop(s);
		return;
	}
	size_t k = (size_t)n;
	if (k > sizeof r->buf - 1 - r->len)
		k = sizeof r->buf - 1 - r->len;
	memcpy(r->buf + r->len, b->base, k);
	r->len += k;
	r->buf[r->len] = '\0';
}

static void on_accept(struct raft_uv_transport *t, raft_id id,
		      const char *addr, uv_stream_t *s)
{
	int g = -1;
	int ni = node_of(t, &g);
	assert_true(ni >= 0);
	struct node *n = &nodes[ni];
	assert_true(n->nrx < 16);
	struct rx *r = &n->rx[n->nrx++];
	memset(r, 0, sizeof *r);
	r->n = n;
	r->g = g;
	r->s = s;
	r->peer = id;
	snprintf(r->peer_addr, sizeof r->peer_addr, "%s", addr);
	s->data = r;
	if (!hold_reads)
		uv_read_start(s, rx_alloc, rx_read);
}

static void free_raft_stream(uv_handle_t *h)
{
	raft_free(h);
}

static void tx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct tx *x = s->data;
	if (n < 0) {
		x->eof = 1;
		uv_read_stop(s);
		return;
	}
	size_t k = (size_t)n;
	if (k > sizeof x->buf - 1 - x->len)
		k = sizeof x->buf - 1 - x->len;
	memcpy(x->buf + x->len, b->base, k);
	x->len += k;
	x->buf[x->len] = '\0';
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *s, int status)
{
	struct tx *x = req->data;
	x->s = s;
	x->status = status;
	x->done = 1;
	if (s) {
		s->data = x;
		uv_read_start(s, rx_alloc, tx_read);
	}
}

struct wr {
	uv_write_t w;
	char data[64];
};

static void wr_done(uv_write_t *w, int status)
{
	free(w);
	(void)status;
}

static void write_str(uv_stream_t *s, const char *str)
{
	struct wr *w = malloc(sizeof *w);
	snprintf(w->data, sizeof w->data, "%s", str);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)strlen(w->data));
	assert_int_equal(uv_write(&w->w, s, &b, 1, wr_done), 0);
}

static void tx_connect(struct tx *x, int from, int g, int to)
{
	memset(x, 0, sizeof *x);
	x->req.data = x;
	struct raft_uv_transport *t = nodes[from].t[g];
	assert_int_equal(t->connect(t, &x->req, (raft_id)(to + 1),
				    vt_repl_mux_address(nodes[to].mux),
				    on_connect),
			 0);
}

/* Runs the loop until `pred` or ~5 s pass. */
static int run_until(int (*pred)(void *), void *arg)
{
	uint64_t end = uv_now(&loop) + 5000;
	while (!pred(arg)) {
		if (uv_now(&loop) > end)
			return 0;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(&loop);
	}
	return 1;
}

static int tx_done(void *a)
{
	return ((struct tx *)a)->done;
}
static int tx_eof(void *a)
{
	return ((struct tx *)a)->eof;
}
static int tx_has3(void *a)
{
	return ((struct tx *)a)->len >= 3;
}
static int rx_eof(void *a)
{
	return ((struct rx *)a)->eof;
}
static int rx_has(void *a)
{
	struct rx *r = a;
	return r->len > 0;
}

struct want {
	int node, count;
};
static int nrx_is(void *a)
{
	struct want *w = a;
	return nodes[w->node].nrx >= w->count;
}

static void close_cb(struct raft_uv_transport *t)
{
	(void)t;
}

static void mux_closed(void *arg)
{
	(void)arg;
	closed_count++;
}

static void open_node(int i, const char *bind)
{
	vt_errmsg e;
	memset(&nodes[i], 0, sizeof nodes[i]);
	assert_int_equal(vt_repl_mux_open(&loop, bind, &nodes[i].mux, &e), 0);
	for (int g = 0; g < GROUPS; g++) {
		struct raft_uv_transport *t;
		assert_int_equal(vt_repl_transport_for_group(
					 nodes[i].mux, (uint64_t)(g + 1) << 40,
					 &t),
				 0);
		nodes[i].t[g] = t;
		assert_int_equal(t->init(t, (raft_id)(i + 1),
					 vt_repl_mux_address(nodes[i].mux)),
				 0);
		assert_int_equal(t->listen(t, on_accept), 0);
	}
}

static void close_node(int i)
{
	struct node *n = &nodes[i];
	for (int k = 0; k < n->nrx; k++)
		if (n->rx[k].s && !uv_is_closing((uv_handle_t *)n->rx[k].s))
			uv_close((uv_handle_t *)n->rx[k].s, free_raft_stream);
	for (int g = 0; g < GROUPS; g++)
		if (n->t[g])
			n->t[g]->close(n->t[g], close_cb);
	int before = closed_count;
	vt_repl_mux_close(n->mux, mux_closed, NULL);
	while (closed_count == before)
		uv_run(&loop, UV_RUN_ONCE);
	for (int g = 0; g < GROUPS; g++)
		vt_repl_transport_release(n->t[g]);
	n->mux = NULL;
}

static void close_tx(struct tx *x)
{
	if (x->s && !uv_is_closing((uv_handle_t *)x->s))
		uv_close((uv_handle_t *)x->s, free_raft_stream);
	x->s = NULL;
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i < NODES; i++)
		open_node(i, "127.0.0.1:0");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NODES; i++)
		if (nodes[i].mux)
			close_node(i);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

static int count_rx(int node, int g)
{
	int k = 0;
	for (int j = 0; j < nodes[node].nrx; j++)
		k += nodes[node].rx[j].g == g;
	return k;
}

/* ---- tests ------------------------------------------------------------ */

/* Every (from, group, to) pair gets its own stream; bytes arrive only at
 * that group's accept callback on that node, both ways. */
static void test_routing(void **state)
{
	(void)state;
	static struct tx xs[NODES][GROUPS];
	for (int i = 0; i < NODES; i++)
		for (int g = 0; g < GROUPS; g++) {
			int to = (i + 1) % NODES;
			tx_connect(&xs[i][g], i, g, to);
		}
	for (int i = 0; i < NODES; i++)
		for (int g = 0; g < GROUPS; g++) {
			struct tx *x = &xs[i][g];
			assert_true(run_until(tx_done, x));
			assert_int_equal(x->status, 0);
			char msg[64];
			snprintf(msg, sizeof msg, "n%d g%d", i, g);
			write_str(x->s, msg);
		}
	for (int i = 0; i < NODES; i++) {
		struct want w = {i, GROUPS};
		assert_true(run_until(nrx_is, &w));
	}
	for (int i = 0; i < NODES; i++) {
		int from = (i + NODES - 1) % NODES;
		assert_int_equal(nodes[i].nrx, GROUPS);
		for (int g = 0; g < GROUPS; g++)
			assert_int_equal(count_rx(i, g), 1);
		for (int k = 0; k < nodes[i].nrx; k++) {
			struct rx *r = &nodes[i].rx[k];
			assert_true(run_until(rx_has, r));
			char msg[64];
			snprintf(msg, sizeof msg, "n%d g%d", from, r->g);
			assert_string_equal(r->buf, msg);
			assert_int_equal(r->peer, (raft_id)(from + 1));
			assert_string_equal(r->peer_addr,
					    vt_repl_mux_address(nodes[from].mux));
			write_str(r->s, "ack");
		}
	}
	for (int i = 0; i < NODES; i++)
		for (int g = 0; g < GROUPS; g++) {
			struct tx *x = &xs[i][g];
			assert_true(run_until(tx_has3, x));
			assert_string_equal(x->buf, "ack");
		}
	/* All of it went over one connection per ordered pair of nodes. */
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(nodes[0].mux, &st);
	assert_int_equal(st.conns_dialed, 1);
	assert_int_equal(st.conns_accepted, 1);
	assert_int_equal(st.unknown_group, 0);
	assert_int_equal(st.protocol_errors, 0);
	/* A group closing its stream: the peer sees EOF. */
	close_tx(&xs[0][1]);
	struct rx *r1 = NULL;
	for (int k = 0; k < nodes[1].nrx; k++)
		if (nodes[1].rx[k].g == 1)
			r1 = &nodes[1].rx[k];
	assert_non_null(r1);
	assert_true(run_until(rx_eof, r1));
	for (int i = 0; i < NODES; i++)
		for (int g = 0; g < GROUPS; g++)
			close_tx(&xs[i][g]);
}

/* A group id nobody listens for: the stream opens (as with TCP, the dialer
 * cannot know), then closes; the receiver counts it. A removed group: its
 * streams end and later opens count as unknown. */
static void test_unknown_and_removed_group(void **state)
{
	(void)state;
	struct raft_uv_transport *t;
	assert_int_equal(vt_repl_transport_for_group(nodes[0].mux, 999, &t), 0);
	assert_int_equal(t->init(t, 1, vt_repl_mux_address(nodes[0].mux)), 0);
	static struct tx x;
	memset(&x, 0, sizeof x);
	x.req.data = &x;
	assert_int_equal(t->connect(t, &x.req, 2,
				    vt_repl_mux_address(nodes[1].mux),
				    on_connect),
			 0);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, 0);
	write_str(x.s, "to nobody");
	assert_true(run_until(tx_eof, &x));
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(nodes[1].mux, &st);
	assert_int_equal(st.unknown_group, 1);
	assert_int_equal(nodes[1].nrx, 0);
	close_tx(&x);
	t->close(t, close_cb);
	vt_repl_transport_release(t);

	/* Group 3 (index 2) on node 1 is removed while a stream is open. */
	static struct tx y;
	tx_connect(&y, 0, 2, 1);
	assert_true(run_until(tx_done, &y));
	assert_int_equal(y.status, 0);
	write_str(y.s, "hello");
	struct want w = {1, 1};
	assert_true(run_until(nrx_is, &w));
	struct rx *r = &nodes[1].rx[0];
	assert_true(run_until(rx_has, r));
	nodes[1].t[2]->close(nodes[1].t[2], close_cb);
	vt_repl_transport_release(nodes[1].t[2]);
	nodes[1].t[2] = NULL;
	assert_true(run_until(tx_eof, &y));
	assert_true(run_until(rx_eof, r));
	close_tx(&y);
	tx_connect(&y, 0, 2, 1);
	assert_true(run_until(tx_done, &y));
	assert_true(run_until(tx_eof, &y));
	vt_repl_mux_stats_get(nodes[1].mux, &st);
	assert_int_equal(st.unknown_group, 2);
	assert_int_equal(nodes[1].nrx, 1);
	close_tx(&y);
	/* The other groups still work. */
	tx_connect(&y, 0, 1, 1);
	assert_true(run_until(tx_done, &y));
	assert_int_equal(y.status, 0);
	write_str(y.s, "g1");
	w.count = 2;
	assert_true(run_until(nrx_is, &w));
	assert_int_equal(nodes[1].rx[1].g, 1);
	close_tx(&y);
}

/* ---- raw sockets on the port ---------------------------------------- */

static int raw_connect(int node)
{
	struct sockaddr_in sa;
	const char *a = vt_repl_mux_address(nodes[node].mux);
	const char *colon = strrchr(a, ':');
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static int fd_eof(void *a)
{
	char b[16];
	ssize_t n = recv(*(int *)a, b, sizeof b, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void hdr(uint8_t *p, int type, uint32_t chan, uint64_t group,
		uint32_t len)
{
	static const uint8_t magic[4] = {'V', 'T', 'R', 'M'};
	memcpy(p, magic, 4);
	p[4] = 1;
	p[5] = (uint8_t)type;
	p[6] = p[7] = 0;
	for (int i = 0; i < 4; i++)
		p[8 + i] = (uint8_t)(chan >> (8 * i));
	for (int i = 0; i < 8; i++)
		p[12 + i] = (uint8_t)(group >> (8 * i));
	for (int i = 0; i < 4; i++)
		p[20 + i] = (uint8_t)(len >> (8 * i));
}

static uint64_t perrs(int node)
{
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(nodes[node].mux, &st);
	return st.protocol_errors;
}

static void test_garbage_and_partial_frames(void **state)
{
	(void)state;
	/* Garbage: closed, counted. */
	int fd = raw_connect(1);
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(write(fd, junk, sizeof junk - 1), sizeof junk - 1);
	assert_true(run_until(fd_eof, &fd));
	close(fd);
	assert_int_equal(perrs(1), 1);

	/* A frame before the HELLO. */
	uint8_t f[24 + 64];
	fd = raw_connect(1);
	hdr(f, 3, 1, 1, 0);
	assert_int_equal(write(fd, f, 24), 24);
	assert_true(run_until(fd_eof, &fd));
	close(fd);
	assert_int_equal(perrs(1), 2);

	/* A HELLO, then a header claiming 1 GiB. */
	fd = raw_connect(1);
	hdr(f, 1, 0, 0, 9);
	memcpy(f + 24, "x.y.z:123", 9);
	assert_int_equal(write(fd, f, 33), 33);
	hdr(f, 3, 1, (uint64_t)1 << 40, 1u << 30);
	assert_int_equal(write(fd, f, 24), 24);
	assert_true(run_until(fd_eof, &fd));
	close(fd);
	assert_int_equal(perrs(1), 3);

	/* A HELLO, half a header, then the sender goes away: no error, the
	 * connection is just gone. */
	fd = raw_connect(1);
	hdr(f, 1, 0, 0, 9);
	memcpy(f + 24, "x.y.z:123", 9);
	assert_int_equal(write(fd, f, 33), 33);
	hdr(f, 2, 1, (uint64_t)1 << 40, 20);
	assert_int_equal(write(fd, f, 10), 10);
	close(fd);
	/* A DATA frame for a channel never opened: dropped, counted. */
	fd = raw_connect(1);
	hdr(f, 1, 0, 0, 9);
	memcpy(f + 24, "x.y.z:123", 9);
	assert_int_equal(write(fd, f, 33), 33);
	hdr(f, 3, 7, (uint64_t)1 << 40, 4);
	memcpy(f + 24, "abcd", 4);
	assert_int_equal(write(fd, f, 28), 28);
	for (int i = 0; i < 50; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(nodes[1].mux, &st);
	assert_int_equal(st.stale_frames, 1);
	assert_int_equal(st.protocol_errors, 3);
	close(fd);

	/* The node still serves real traffic. */
	static struct tx x;
	tx_connect(&x, 0, 0, 1);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, 0);
	write_str(x.s, "still here");
	struct want w = {1, 1};
	assert_true(run_until(nrx_is, &w));
	assert_true(run_until(rx_has, &nodes[1].rx[0]));
	assert_string_equal(nodes[1].rx[0].buf, "still here");
	close_tx(&x);
}

/* A peer goes away and comes back on the same port: the stream ends,
 * connects fail while it is down, and succeed once it is back. */
static void test_peer_restart(void **state)
{
	(void)state;
	static struct tx x;
	tx_connect(&x, 0, 0, 1);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, 0);
	char addr[64];
	snprintf(addr, sizeof addr, "%s", vt_repl_mux_address(nodes[1].mux));
	close_node(1);
	assert_true(run_until(tx_eof, &x));
	close_tx(&x);
	struct raft_uv_transport *t = nodes[0].t[0];
	memset(&x, 0, sizeof x);
	x.req.data = &x;
	assert_int_equal(t->connect(t, &x.req, 2, addr, on_connect), 0);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, RAFT_NOCONNECTION);
	assert_null(x.s);

	open_node(1, addr);
	assert_string_equal(vt_repl_mux_address(nodes[1].mux), addr);
	tx_connect(&x, 0, 0, 1);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, 0);
	write_str(x.s, "again");
	struct want w = {1, 1};
	assert_true(run_until(nrx_is, &w));
	assert_true(run_until(rx_has, &nodes[1].rx[0]));
	assert_string_equal(nodes[1].rx[0].buf, "again");
	close_tx(&x);
}

static void test_drop_hook(void **state)
{
	(void)state;
	static struct tx in, out, back;
	/* A stream 1 -> 0 exists before the rule. */
	tx_connect(&in, 1, 1, 0);
	assert_true(run_until(tx_done, &in));
	assert_int_equal(in.status, 0);
	const char *a1 = vt_repl_mux_address(nodes[1].mux);
	assert_int_equal(vt_repl_mux_drop_peer(nodes[0].mux, a1, 1), 0);
	/* It is cut. */
	assert_true(run_until(tx_eof, &in));
	close_tx(&in);
	/* 0 does not dial 1. */
	tx_connect(&out, 0, 0, 1);
	assert_true(run_until(tx_done, &out));
	assert_int_equal(out.status, RAFT_NOCONNECTION);
	/* 1 dials 0: 0 hangs up after the HELLO; nothing is accepted. */
	int before = nodes[0].nrx;
	tx_connect(&back, 1, 0, 0);
	assert_true(run_until(tx_done, &back));
	if (back.status == 0) {
		write_str(back.s, "blocked");
		assert_true(run_until(tx_eof, &back));
	}
	close_tx(&back);
	assert_int_equal(nodes[0].nrx, before);
	/* Node 2 is unaffected. */
	tx_connect(&out, 0, 0, 2);
	assert_true(run_until(tx_done, &out));
	assert_int_equal(out.status, 0);
	close_tx(&out);
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(nodes[0].mux, &st);
	assert_true(st.hook_drops >= 2);
	/* Rule off: traffic flows again. */
	assert_int_equal(vt_repl_mux_drop_peer(nodes[0].mux, a1, 0), 0);
	tx_connect(&back, 1, 0, 0);
	assert_true(run_until(tx_done, &back));
	assert_int_equal(back.status, 0);
	write_str(back.s, "open");
	struct want w = {0, before + 1};
	assert_true(run_until(nrx_is, &w));
	assert_true(run_until(rx_has, &nodes[0].rx[before]));
	assert_string_equal(nodes[0].rx[before].buf, "open");
	close_tx(&back);
}


/* ---- back-pressure --------------------------------------------------- */

#define BP_CHUNK (1u << 20)
#define BP_CHUNKS 32

static uint8_t *bp_src;
static size_t bp_got;
static int bp_bad;
static int bp_writes_done;

static void bp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char big[65536];
	b->base = big;
	b->len = sizeof big;
	(void)h;
	(void)hint;
}

static void bp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	if (n <= 0)
		return;
	for (ssize_t i = 0; i < n; i++)
		if ((uint8_t)b->base[i] != (uint8_t)((bp_got + (size_t)i) % 251))
			bp_bad = 1;
	bp_got += (size_t)n;
	(void)s;
}

static void bp_write_done(uv_write_t *w, int status)
{
	assert_int_equal(status, 0);
	bp_writes_done++;
	free(w);
}

static int bp_all(void *a)
{
	(void)a;
	return bp_got == (size_t)BP_CHUNK * BP_CHUNKS &&
	       bp_writes_done == BP_CHUNKS;
}

/* A receiver that stops reading: the mux's own buffers stop at their caps
 * (the sender's queue is its own), and everything arrives in order once
 * the receiver reads again. */
static void test_back_pressure(void **state)
{
	(void)state;
	bp_src = malloc((size_t)BP_CHUNK * BP_CHUNKS);
	for (size_t i = 0; i < (size_t)BP_CHUNK * BP_CHUNKS; i++)
		bp_src[i] = (uint8_t)(i % 251);
	bp_got = 0;
	bp_bad = 0;
	bp_writes_done = 0;
	hold_reads = 1;
	static struct tx x;
	tx_connect(&x, 0, 0, 1);
	assert_true(run_until(tx_done, &x));
	assert_int_equal(x.status, 0);
	int64_t base = vt_alloc_bytes();
	for (int i = 0; i < BP_CHUNKS; i++) {
		uv_write_t *w = malloc(sizeof *w);
		uv_buf_t b = uv_buf_init((char *)bp_src + (size_t)i * BP_CHUNK,
					 BP_CHUNK);
		assert_int_equal(uv_write(w, x.s, &b, 1, bp_write_done), 0);
	}
	int64_t peak = 0;
	for (int i = 0; i < 500; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		int64_t now = vt_alloc_bytes() - base;
		peak = now > peak ? now : peak;
		usleep(1000);
	}
	vt_repl_mux_stats st0, st1;
	vt_repl_mux_stats_get(nodes[0].mux, &st0);
	vt_repl_mux_stats_get(nodes[1].mux, &st1);
	assert_true(st1.paused >= 1);
	assert_true(peak < 12 * (1 << 20));
	assert_true(bp_writes_done < BP_CHUNKS);
	assert_int_equal(nodes[1].nrx, 1);
	uv_read_start(nodes[1].rx[0].s, bp_alloc, bp_read);
	uint64_t end = uv_now(&loop) + 20000;
	while (!bp_all(NULL) && uv_now(&loop) < end) {
		uv_run(&loop, UV_RUN_ONCE);
		int64_t now = vt_alloc_bytes() - base;
		peak = now > peak ? now : peak;
	}
	assert_true(bp_all(NULL));
	assert_false(bp_bad);
	assert_true(peak < 12 * (1 << 20));
	hold_reads = 0;
	close_tx(&x);
	free(bp_src);
}

/* ---- real raft_uv groups over the mux --------------------------------- */

#define RG 2 /* groups */

struct rnode {
	struct raft r;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft_uv_transport *t;
	char dir[64];
	int applied;
	int closed;
};

static struct rnode rn[NODES][RG];
static vt_repl_mux *rmux[NODES];

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	((struct rnode *)fsm->data)->applied++;
	*result = NULL;
	(void)buf;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n)
{
	(void)fsm;
	(void)bufs;
	(void)n;
	return RAFT_NOTFOUND;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	(void)fsm;
	raft_free(buf->base);
	return 0;
}

static int leaders_agree(void *a)
{
	(void)a;
	for (int g = 0; g < RG; g++) {
		raft_id first = 0;
		for (int i = 0; i < NODES; i++) {
			raft_id id;
			const char *addr;
			raft_leader(&rn[i][g].r, &id, &addr);
			if (id == 0 || (i > 0 && id != first))
				return 0;
			first = id;
		}
	}
	return 1;
}

static int iso; /* the node cut off by the drop hook */

/* The two nodes other than `iso` agree on a group-0 leader that is not it. */
static int majority_moved(void *a)
{
	(void)a;
	raft_id first = 0;
	for (int i = 0; i < NODES; i++) {
		if (i == iso)
			continue;
		raft_id id;
		const char *addr;
		raft_leader(&rn[i][0].r, &id, &addr);
		if (id == 0 || id == (raft_id)(iso + 1) ||
		    (first && id != first))
			return 0;
		first = id;
	}
	return 1;
}

static int all_applied(void *a)
{
	(void)a;
	for (int g = 0; g < RG; g++)
		for (int i = 0; i < NODES; i++)
			if (rn[i][g].applied < 1)
				return 0;
	return 1;
}

static void raft_closed(struct raft *r)
{
	((struct rnode *)r->data)->closed = 1;
}

static int all_closed(void *a)
{
	(void)a;
	for (int g = 0; g < RG; g++)
		for (int i = 0; i < NODES; i++)
			if (!rn[i][g].closed)
				return 0;
	return 1;
}

static int applied_ok;
static void apply_done(struct raft_apply *req, int status, void *result)
{
	(void)result;
	if (status == 0)
		applied_ok++;
	free(req);
}

/* Two groups of three replicas, one port per node: both elect a leader that
 * every replica agrees on and commit an entry; a leader cut off by the drop
 * hook is replaced, and after healing every replica agrees again. */
static void test_raft_groups_elect(void **state)
{
	(void)state;
	vt_errmsg e;
	memset(rn, 0, sizeof rn);
	for (int i = 0; i < NODES; i++)
		assert_int_equal(vt_repl_mux_open(&loop, "127.0.0.1:0", &rmux[i],
						  &e),
				 0);
	for (int g = 0; g < RG; g++) {
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		for (int i = 0; i < NODES; i++)
			assert_int_equal(raft_configuration_add(
						 &conf, (raft_id)(i + 1),
						 vt_repl_mux_address(rmux[i]),
						 RAFT_VOTER),
					 0);
		for (int i = 0; i < NODES; i++) {
			struct rnode *n = &rn[i][g];
			snprintf(n->dir, sizeof n->dir, "/tmp/vt-rtr-XXXXXX");
			assert_non_null(mkdtemp(n->dir));
			assert_int_equal(vt_repl_transport_for_group(
						 rmux[i], (uint64_t)(g + 7), &n->t),
					 0);
			assert_int_equal(raft_uv_init(&n->io, &loop, n->dir, n->t),
					 0);
			n->fsm.version = 1;
			n->fsm.data = n;
			n->fsm.apply = fsm_apply;
			n->fsm.snapshot = fsm_snapshot;
			n->fsm.restore = fsm_restore;
			assert_int_equal(raft_init(&n->r, &n->io, &n->fsm,
						   (raft_id)(i + 1),
						   vt_repl_mux_address(rmux[i])),
					 0);
			n->r.data = n;
			raft_set_election_timeout(&n->r, 300);
			raft_set_heartbeat_timeout(&n->r, 50);
			assert_int_equal(raft_bootstrap(&n->r, &conf), 0);
		}
		raft_configuration_close(&conf);
	}
	for (int g = 0; g < RG; g++)
		for (int i = 0; i < NODES; i++)
			assert_int_equal(raft_start(&rn[i][g].r), 0);
	uint64_t end = uv_now(&loop) + 15000;
	while (!leaders_agree(NULL) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(leaders_agree(NULL));
	applied_ok = 0;
	for (int g = 0; g < RG; g++) {
		raft_id id;
		const char *addr;
		raft_leader(&rn[0][g].r, &id, &addr);
		struct rnode *l = &rn[id - 1][g];
		struct raft_buffer b = {raft_malloc(8), 8};
		memset(b.base, 0, 8);
		struct raft_apply *req = malloc(sizeof *req);
		assert_int_equal(raft_apply(&l->r, req, &b, 1, apply_done), 0);
	}
	end = uv_now(&loop) + 15000;
	while (!(all_applied(NULL) && applied_ok == RG) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(all_applied(NULL));
	assert_int_equal(applied_ok, RG);
	/* Only one connection per ordered pair of nodes for both groups. */
	for (int i = 0; i < NODES; i++) {
		vt_repl_mux_stats st;
		vt_repl_mux_stats_get(rmux[i], &st);
		assert_true(st.conns_dialed <= NODES - 1);
		assert_int_equal(st.unknown_group, 0);
		assert_int_equal(st.protocol_errors, 0);
	}
	/* Partition group 0's leader with the drop hook (rules on its node
	 * only): the other two elect another leader; after healing all three
	 * agree again. */
	raft_id id;
	const char *addr;
	raft_leader(&rn[0][0].r, &id, &addr);
	iso = (int)id - 1;
	for (int i = 0; i < NODES; i++)
		if (i != iso)
			assert_int_equal(vt_repl_mux_drop_peer(
						 rmux[iso],
						 vt_repl_mux_address(rmux[i]), 1),
					 0);
	end = uv_now(&loop) + 15000;
	while (!majority_moved(NULL) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(majority_moved(NULL));
	for (int i = 0; i < NODES; i++)
		if (i != iso)
			assert_int_equal(vt_repl_mux_drop_peer(
						 rmux[iso],
						 vt_repl_mux_address(rmux[i]), 0),
					 0);
	end = uv_now(&loop) + 15000;
	while (!leaders_agree(NULL) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(leaders_agree(NULL));
	vt_repl_mux_stats st;
	vt_repl_mux_stats_get(rmux[iso], &st);
	assert_true(st.hook_drops >= 1);
	for (int g = 0; g < RG; g++)
		for (int i = 0; i < NODES; i++)
			raft_close(&rn[i][g].r, raft_closed);
	end = uv_now(&loop) + 15000;
	while (!all_closed(NULL) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(all_closed(NULL));
	for (int g = 0; g < RG; g++)
		for (int i = 0; i < NODES; i++) {
			raft_uv_close(&rn[i][g].io);
			vt_repl_transport_release(rn[i][g].t);
			char cmd[128];
			snprintf(cmd, sizeof cmd, "rm -rf %s", rn[i][g].dir);
			assert_int_equal(system(cmd), 0);
		}
	for (int i = 0; i < NODES; i++) {
		int before = closed_count;
		vt_repl_mux_close(rmux[i], mux_closed, NULL);
		while (closed_count == before)
			uv_run(&loop, UV_RUN_ONCE);
	}
}

static int setup_loop(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return uv_loop_init(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_removed_group,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_and_partial_frames,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_restart, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_drop_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_back_pressure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_raft_groups_elect,
						setup_loop, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
