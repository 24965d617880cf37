// SPDX-License-Identifier: MIT
/*
 * Failure atomicity of RANGES (PROTOCOL.md 6.11, 8.3): a page leaves a
 * subscription's pending set only into a generation that is delivered
 * whole or put back.  The real daemon code runs in process (every daemon/
 * source but main.c, on the simulated backend, as tests/fuzz's session
 * target does), so that a failure can be forced at each point after a
 * take:
 *
 *   encoding   the stream's packet k cannot be produced (stream.h's
 *              stream_ranges_fault hook: ENOMEM, as an encoder out of
 *              memory)
 *   limit      the same with EINVAL, as a chunk over the size limit was
 *   send       the client shuts down its reading side mid-stream: the
 *              daemon's send fails (EPIPE) and it closes the session
 *   disconnect the client closes mid-stream
 *   resend     the client got the stream and asks again with RESEND
 *
 * with and without a resume token, RUNS-only and RAW clients.  The oracle
 * is the set of pages the test wrote (DMA_WRITE, 4 KiB pages, NO_HUGE_PAGES
 * so a page reported is a page written): after each failure the client
 * must get every one of them, STATS must count them pending again and not
 * as sent, and the failed generation must not be ackable.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/util/log.h"
#include "daemon/server/stream.h"
#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "tests/inproc/inproc.h"

#define PG 4096ULL
#define BASE (1ULL << 30)
#define SPANS 17
#define NPAGES (SPANS * CHUNK_MAX_PAGES)

/* ------------------------------------------------------------ the server */

static void pump(bool block)
{
	inproc_pump(block, 20);
}

static void server_up(void)
{
	log_setup("test_stream_faults", LOG_CRIT);
	log_set_max_level(LOG_CRIT);
	inproc_config();
	inproc_set("daemon", "workers", "1");
	inproc_set("daemon", "resume_grace", "30");
	inproc_set("sim", "devices", "sim0:dirty");
	inproc_set("sim", "backing_page_size", "4k");
	inproc_start();
}

static void server_down(void)
{
	stream_ranges_fault = NULL;
	inproc_stop();
}

/* ------------------------------------------------------------ a client */

struct client {
	int fd;
	uint64_t id;
	uint64_t token;
	uint64_t features;
	uint32_t session_flags;
};

static uint8_t rx[PROTO_MAX_MSG + 1];

static void c_connect(struct client *c)
{
	/* room for one packet in flight (the kernel doubles it): a stream's
	 * last packet waits in dirtyd until the client reads */
	c->fd = inproc_connect(0, PROTO_MAX_MSG / 2 + 64);
}

static void c_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	pump(false);
}

static uint64_t c_send(struct client *c, struct proto_msg *m)
{
	uint8_t buf[128];
	int n;

	m->id = ++c->id;
	n = proto_encode(m, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_eq(send(c->fd, buf, (size_t)n, MSG_NOSIGNAL), n);
	return m->id;
}

/* The next packet that is not an event; 0, or -ENOTCONN at end of file. */
static int c_recv(struct client *c, struct proto_msg *m)
{
	for (int i = 0; i < 500; i++) {
		ssize_t n;

		pump(false);
		n = recv(c->fd, rx, sizeof(rx), MSG_DONTWAIT);
		if (n == 0)
			return -ENOTCONN;
		if (n < 0) {
			cr_assert(errno == EAGAIN, "recv: %s", strerror(errno));
			pump(true);
			continue;
		}
		cr_assert_eq(proto_decode(rx, (size_t)n, m), 0, "a packet "
			     "the daemon sent does not decode");
		if (m->type != PROTO_EV_ROUND && m->type != PROTO_EV_STATE_LOST)
			return 0;
	}
	cr_assert_fail("no answer within 10 s");
	return -ETIMEDOUT;
}

/* A request answered by one packet: 0 (@r the reply) or -errno. */
static int c_call(struct client *c, struct proto_msg *m, struct proto_msg *r)
{
	uint64_t id = c_send(c, m);

	cr_assert_eq(c_recv(c, r), 0);
	cr_assert_eq(r->id, id);
	return r->type == PROTO_ERROR ? -(int)r->error.err : 0;
}

static void c_hello(struct client *c, uint64_t features, uint64_t token)
{
	struct proto_msg m = { .type = PROTO_HELLO, .hello = {
		.major = PROTO_VERSION_MAJOR, .features = features,
		.resume_token = token } }, r;

	cr_assert_eq(c_call(c, &m, &r), 0);
	c->token = r.hello_reply.session_token;
	c->features = r.hello_reply.features;
	c->session_flags = r.hello_reply.session_flags;
}

static void c_op(struct client *c, uint16_t type, uint32_t dom,
		 uint32_t flags, uint64_t iova, uint64_t length)
{
	struct proto_msg m = { .type = type, .map = {
		.domain_id = dom, .flags = flags, .iova = iova,
		.length = length } }, r;

	cr_assert_eq(c_call(c, &m, &r), 0, "%s: %.*s",
		     proto_type_name(type), (int)r.error.text_len,
		     r.error.text);
}

static void c_domain_op(struct client *c, uint16_t type, uint32_t dom)
{
	struct proto_msg m = { .type = type, .domain_op = { dom } }, r;

	cr_assert_eq(c_call(c, &m, &r), 0, "%s", proto_type_name(type));
}

static struct proto_stats c_stats(struct client *c, uint32_t dom)
{
	struct proto_msg m = { .type = PROTO_STATS, .domain_op = { dom } }, r;
	struct proto_stats st;

	cr_assert_eq(c_call(c, &m, &r), 0);
	cr_assert_eq(r.list.count, 1);
	proto_stats_at(&r, 0, &st);
	return st;
}

static int c_ack(struct client *c, uint32_t dom, uint64_t gen)
{
	struct proto_msg m = { .type = PROTO_ACK, .ack = {
		.domain_id = dom, .generation = gen } }, r;

	return c_call(c, &m, &r);
}

/* ------------------------------------------------------------ ranges */

struct got {
	uint8_t *page;		/* NPAGES flags */
	uint64_t pages, generation;
	unsigned int packets;
	uint32_t max_payload;
};

static int got_run(void *ctx, uint64_t first, uint64_t count)
{
	struct got *g = ctx;

	for (uint64_t p = first; p < first + count; p++) {
		cr_assert(p >= BASE / PG && p < BASE / PG + NPAGES,
			  "page 0x%lx outside the mapping", (unsigned long)p);
		cr_assert_not(g->page[p - BASE / PG], "page 0x%lx twice",
			      (unsigned long)p);
		g->page[p - BASE / PG] = 1;
		g->pages++;
	}
	return 0;
}

/*
 * GET_RANGES and its stream into @g; stop reading after @packets packets
 * (0: all).  Returns 0 when the stream ended, 1 when stopped early, or the
 * -errno of an ERROR (which may end a stream begun).
 */
static int c_ranges(struct client *c, uint32_t dom, uint32_t flags,
		    struct got *g, unsigned int packets)
{
	struct proto_msg m = { .type = PROTO_GET_RANGES, .get_ranges = {
		.domain_id = dom, .flags = flags } }, r;
	uint64_t id = c_send(c, &m);

	memset(g->page, 0, NPAGES);
	g->pages = g->packets = g->max_payload = 0;
	for (;;) {
		const uint8_t *p;
		size_t left;

		cr_assert_eq(c_recv(c, &r), 0);
		cr_assert_eq(r.id, id);
		if (r.type == PROTO_ERROR)
			return -(int)r.error.err;
		cr_assert_eq(r.type, PROTO_RANGES);
		cr_assert_eq(r.ranges.seq, g->packets);
		g->generation = r.ranges.generation;
		p = r.ranges.chunks;
		left = r.ranges.chunks_len;
		for (uint32_t i = 0; i < r.ranges.nchunks; i++) {
			int n = chunk_decode(p, left, got_run, g);

			cr_assert_gt(n, 0);
			if ((uint32_t)n - CHUNK_HEADER_SIZE > g->max_payload)
				g->max_payload = (uint32_t)n - CHUNK_HEADER_SIZE;
			cr_assert(c->features & PROTO_FEAT_RANGES_RAW ||
				  p[12] == CHUNK_RUNS);
			p += n;
			left -= (size_t)n;
		}
		g->packets++;
		if (!(r.flags & PROTO_F_MORE))
			return 0;
		if (packets && g->packets == packets)
			return 1;
	}
}

/* ------------------------------------------------------------ the tests */

static uint8_t written[NPAGES];
static uint64_t nwritten;

/* DMA_WRITE every page of written[], then SYNC: they are pending. */
static void write_all(struct client *c, uint32_t dom)
{
	for (uint64_t p = 0; p < NPAGES; p++)
		if (written[p])
			c_op(c, PROTO_DMA_WRITE, dom, 0, BASE + p * PG, PG);
	c_domain_op(c, PROTO_SYNC, dom);
}

/* A tracking domain mapping NPAGES pages at BASE, a CLEAN subscription of
 * @c, and 2100 single pages written in each span: 4200 bytes of runs, over
 * the limit, so a RUNS-only client gets each span in two chunks and a RAW
 * client one RAW chunk; either way a stream of two packets. */
static uint32_t setup(struct client *c, uint64_t features)
{
	struct proto_msg m = { .type = PROTO_CREATE_DOMAIN, .create_domain = {
		.flags = PROTO_CREATE_TRACKING | PROTO_CREATE_NO_HUGE_PAGES,
		.device = "sim0" } }, r;
	uint32_t dom;

	server_up();
	c_connect(c);
	c_hello(c, features, 0);
	cr_assert_eq(c_call(c, &m, &r), 0);
	dom = r.create_domain_reply.domain_id;
	c_op(c, PROTO_MAP, dom, PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE,
	     BASE, NPAGES * PG);
	c_domain_op(c, PROTO_TRACK_START, dom);
	m = (struct proto_msg){ .type = PROTO_SUBSCRIBE, .subscribe = {
		.domain_id = dom, .flags = PROTO_SUBSCRIBE_CLEAN } };
	cr_assert_eq(c_call(c, &m, &r), 0);
	memset(written, 0, sizeof(written));
	nwritten = 0;
	for (uint64_t p = 0; p < NPAGES; p++)
		if (p % CHUNK_MAX_PAGES < 2100 * 15 && p % 15 == 0) {
			written[p] = 1;
			nwritten++;
		}
	write_all(c, dom);
	return dom;
}

static void assert_all(const struct got *g, const char *what)
{
	cr_assert_eq(g->pages, nwritten, "%s: %lu pages of %lu", what,
		     (unsigned long)g->pages, (unsigned long)nwritten);
	cr_assert_eq(memcmp(g->page, written, NPAGES), 0, "%s", what);
	cr_assert_leq(g->max_payload, CHUNK_MAX_PAYLOAD);
}

/* After a failure: every page pending, none counted sent, the generation
 * not ackable, and the next GET_RANGES delivers every page. */
static void assert_given_back(struct client *c, uint32_t dom, uint64_t gen,
			      uint64_t sent_before, const char *what)
{
	static uint8_t page[NPAGES];
	struct got g = { .page = page };
	struct proto_stats st = c_stats(c, dom);

	cr_assert_eq(st.pending_pages, nwritten, "%s: pending %lu", what,
		     (unsigned long)st.pending_pages);
	cr_assert_eq(st.pages_sent, sent_before, "%s: pages_sent", what);
	if (gen)
		cr_assert_eq(c_ack(c, dom, gen), -ENOENT, "%s", what);
	cr_assert_eq(c_ranges(c, dom, 0, &g, 0), 0);
	assert_all(&g, what);
	cr_assert_geq(g.packets, 2, "%s: %u packets", what, g.packets);
	cr_assert_eq(c_stats(c, dom).pages_sent, sent_before + nwritten);
	cr_assert_eq(c_ack(c, dom, g.generation), 0);
	cr_assert_eq(c_stats(c, dom).pending_pages, 0);
}

static uint32_t fail_seq;
static int fail_err;
static unsigned int fails;

static int fail_packet(uint32_t seq)
{
	if (seq != fail_seq)
		return 0;
	fails++;
	return fail_err;
}

/* encoding and limit: packet k of the stream cannot be produced; k = 0
 * (nothing went out) and k = 1 (the first packet did) */
static void producing_fails(uint64_t features, int err)
{
	static uint8_t page[NPAGES];
	struct got g = { .page = page };
	struct client c;
	uint32_t dom = setup(&c, features);
	const char *what = err == -ENOMEM ? "encoding" : "limit";

	for (fail_seq = 0; fail_seq < 2; fail_seq++) {
		if (fail_seq)
			write_all(&c, dom);
		fail_err = err;
		fails = 0;
		stream_ranges_fault = fail_packet;
		cr_assert_eq(c_ranges(&c, dom, 0, &g, 0), err);
		stream_ranges_fault = NULL;
		cr_assert_eq(fails, 1);
		cr_assert_eq(g.packets, fail_seq, "%s: packets before", what);
		assert_given_back(&c, dom, g.packets ? g.generation : 0,
				  fail_seq * nwritten, what);
	}
	c_close(&c);
	server_down();
}

Test(stream_faults, encoding_runs) { producing_fails(0, -ENOMEM); }
Test(stream_faults, encoding_raw)
{
	producing_fails(PROTO_FEAT_RANGES_RAW, -ENOMEM);
}
Test(stream_faults, limit_runs) { producing_fails(0, -EINVAL); }

/* send and disconnect: the session ends mid-stream.  With a token the
 * resumed session gets every page; without, the subscription is gone. */
static void session_ends(uint64_t features, bool shut_rd)
{
	static uint8_t page[NPAGES];
	struct got g = { .page = page };
	struct client c;
	uint32_t dom = setup(&c, features);
	uint64_t token = c.token;

	cr_assert_eq(c_ranges(&c, dom, 0, &g, 1), 1);
	if (shut_rd) {
		/* the daemon's next send fails (EPIPE): it closes */
		cr_assert_eq(shutdown(c.fd, SHUT_RD), 0);
		for (int i = 0; i < 10; i++)
			pump(true);
	}
	c_close(&c);
	c_connect(&c);
	c_hello(&c, features, token);
	if (!(features & PROTO_FEAT_RESUME)) {
		/* the subscription went with the session */
		struct proto_stats st = c_stats(&c, dom);

		cr_assert_eq(c.session_flags, 0);
		cr_assert_eq(st.pending_pages, 0);
		cr_assert_eq(st.pages_sent, 0);
		cr_assert_eq(c_ranges(&c, dom, 0, &g, 0), -ENOENT);
		c_close(&c);
		server_down();
		return;
	}
	cr_assert_eq(c.session_flags, PROTO_SESSION_RESUMED);
	assert_given_back(&c, dom, 0, 0, shut_rd ? "send" : "disconnect");
	c_close(&c);
	server_down();
}

Test(stream_faults, send_resume_runs)
{
	session_ends(PROTO_FEAT_RESUME, true);
}
Test(stream_faults, send_resume_raw)
{
	session_ends(PROTO_FEAT_RESUME | PROTO_FEAT_RANGES_RAW, true);
}
Test(stream_faults, disconnect_resume_runs)
{
	session_ends(PROTO_FEAT_RESUME, false);
}
Test(stream_faults, disconnect_without_token) { session_ends(0, false); }

/* resend: the stream arrived, the client lost it and asks again */
Test(stream_faults, resend)
{
	static uint8_t page[NPAGES];
	struct got g = { .page = page };
	struct client c;
	uint32_t dom = setup(&c, 0);
	uint64_t first;

	cr_assert_eq(c_ranges(&c, dom, 0, &g, 0), 0);
	assert_all(&g, "first stream");
	first = g.generation;
	cr_assert_eq(c_stats(&c, dom).pages_sent, nwritten);
	cr_assert_eq(c_ranges(&c, dom, PROTO_RANGES_RESEND, &g, 0), 0);
	assert_all(&g, "resend");
	/* the first generation's pages travel in the new one */
	if (g.generation != first)
		cr_assert_eq(c_ack(&c, dom, first), -ENOENT);
	cr_assert_eq(c_stats(&c, dom).pages_sent, 2 * nwritten);
	cr_assert_eq(c_ack(&c, dom, g.generation), 0);
	cr_assert_eq(c_stats(&c, dom).pending_pages, 0);
	c_close(&c);
	server_down();
}

/* A client that closes and at once resumes: dirtyd has not read the old
 * connection's end of file when the HELLO comes, yet it resumes (5.3,
 * 8.6), with every page it had not acknowledged. */
Test(stream_faults, resume_right_after_close)
{
	static uint8_t page[NPAGES];
	struct got g = { .page = page };
	struct client c;
	uint32_t dom = setup(&c, PROTO_FEAT_RESUME);
	uint64_t token = c.token;

	cr_assert_eq(c_ranges(&c, dom, 0, &g, 0), 0);
	assert_all(&g, "before the close");
	/* an UNMAP (it waits for a round, the session reads nothing
	 * meanwhile), then the close: the daemon has not seen it when the
	 * new connection's HELLO comes */
	c_op(&c, PROTO_MAP, dom, PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE,
	     BASE + NPAGES * PG, PG);
	c_send(&c, &(struct proto_msg){ .type = PROTO_UNMAP, .map = {
		.domain_id = dom, .iova = BASE + NPAGES * PG, .length = PG } });
	close(c.fd);
	c_connect(&c);
	c_hello(&c, PROTO_FEAT_RESUME, token);
	cr_assert_eq(c.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(c.token, token);
	assert_given_back(&c, dom, g.generation, nwritten, "resumed at once");
	c_close(&c);
	server_down();
}
