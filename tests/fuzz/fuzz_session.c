// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a whole client session of the real daemon code
 * (every daemon/ source but main.c, on the simulated backend), in process.
 *
 * One server lives as long as the process: a sim host with four devices
 * (sim0, sim1, sim2 can track; sim-legacy0 cannot), small limits, and a
 * victim client (uid VICTIM_UID) connected before any input, whose domain
 * (on sim0) holds a subscription with pages pending and a generation in
 * flight.  Each input is a sequence of packets, sent on a fresh connection
 * of uid FUZZ_UID (neither root nor an admin) made with session_new() on
 * one end of a SOCK_SEQPACKET socketpair, exactly as an accepted client.
 *
 * Input format (all integers little-endian), records back to back:
 *
 *   u8   ctl    what to do around the packet, bits below
 *   le16 len    bytes of the packet that follow (fewer if the input ends)
 *   len  bytes  the packet
 *
 *   0x01 AS_OTHER    send it as root: the credentials the kernel attaches
 *                    are not the connection's; the daemon must refuse it
 *                    with EPERM
 *   0x02 WITH_FD     attach a descriptor (SCM_RIGHTS); the daemon must
 *                    close it
 *   0x04 NO_DRAIN    read no reply before sending the next packet
 *   0x08 SETTLE      before the next packet, wait until every request
 *                    sent so far is answered
 *   0x10 RAW_LENGTH  keep the header's length field (else it is set to
 *                    the packet's size, so that mutations reach the body)
 *   0x20 OVERSIZE    pad the packet with zeros to PROTO_MAX_MSG + 64 bytes
 *   0x40 RAW_IDS     no translation (else a domain_id 1..15 in a request
 *                    means the Nth domain this input created, and a HELLO
 *                    resume_token 1 the last session token it was given)
 *   0x80 RECONNECT   first close the connection (answers pending or not)
 *                    and open another one
 *
 * MAP, UNMAP and DMA_WRITE lengths are taken modulo 256 MiB (see
 * cap_length()).
 *
 * After each input: every request was answered exactly once (by its reply
 * type, its stream, or an ERROR with a non-empty text and a documented
 * errno; the expected errno when the packet itself is at fault); every
 * packet the daemon sent decodes; the daemon never hung up.  Then the
 * connection is closed, the input's domains destroyed and its parked
 * subscriptions expired, and: sessions, domains, parks and open
 * descriptors are back to the baseline, and the victim's domain,
 * subscription (pending bitmap, generations in flight, counters) and
 * socket are exactly as they were: nothing was sent to it.  Leaks are
 * LeakSanitizer's (per input, and at exit after a full teardown).
 *
 * FUZZ_LOG=debug (or info, ...) shows the daemon's log.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/harvest/harvest.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/guest/simhost.h"
#include "kernel/backend.h"
#include "protocol/proto.h"
#include "protocol/wire.h"
#include "tests/fuzz/fuzz.h"
#include "tests/inproc/inproc.h"

#define FUZZ_UID 4242
#define VICTIM_UID 4343
#define MAX_PACKETS 64		/* per input: bounds an input's time */
#define MAX_OUT 256		/* requests awaiting an answer */
#define MAX_DOMS 16
#define DEADLINE_MS 10000	/* for an answer, a close, a round */

enum {
	CTL_AS_OTHER = 0x01,
	CTL_WITH_FD = 0x02,
	CTL_NO_DRAIN = 0x04,
	CTL_SETTLE = 0x08,
	CTL_RAW_LENGTH = 0x10,
	CTL_OVERSIZE = 0x20,
	CTL_RAW_IDS = 0x40,
	CTL_RECONNECT = 0x80,
};

#define srv inproc_srv
#define cfg inproc_cfg
static int devnull = -1;
static bool trace;		/* FUZZ_TRACE: print every packet */

/* ------------------------------------------------------------ helpers */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

#define become inproc_become

/* Run the daemon's loop: what is ready now, or (@block) wait for
 * something to happen (a harvest completion, a timer), 100 ms at most. */
static void pump(bool block)
{
	inproc_pump(block, 100);
}

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	FUZZ_CHECK(d, "opendir /proc/self/fd: %m");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Connect as @uid: the daemon's end becomes a session. */
static int connect_as(uid_t uid)
{
	return inproc_connect(uid, 0);
}

/* One packet, as @uid, with a descriptor if @with_fd: 0 or -errno. */
static int send_as(int fd, uid_t uid, const uint8_t *buf, size_t len,
		   bool with_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (with_fd) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &devnull, sizeof(int));
	}
	become(uid);
	n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	become(0);
	return n < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ the client */

/* A packet sent, waiting for its answer. */
struct pending {
	uint64_t id;
	uint16_t reply;		/* a success's reply type; 0: none */
	int err;		/* the ERROR it must get (negative); 0: any */
};

struct client {
	int fd;
	bool hello;		/* a HELLO was accepted (as predicted) */
	uint64_t features;	/* negotiated */
	uint64_t token;		/* the last session token given */
	uint32_t doms[MAX_DOMS];	/* domains this input created */
	unsigned int ndoms;
	struct pending out[MAX_OUT];	/* every packet sent, in order */
	unsigned int nout;
	struct pending ans[MAX_OUT];	/* every final answer received */
	unsigned int nans;
	unsigned int sent;
};

static uint8_t rxbuf[PROTO_MAX_MSG + 1];

static uint16_t reply_type(uint16_t req)
{
	switch (req) {
	case PROTO_DETACH_DEVICE:
	case PROTO_DESTROY_DOMAIN:
	case PROTO_MAP:
	case PROTO_UNMAP:
	case PROTO_TRACK_START:
	case PROTO_TRACK_STOP:
	case PROTO_UNSUBSCRIBE:
	case PROTO_ACK:
	case PROTO_DMA_WRITE:
	case PROTO_UNADOPT:
		return PROTO_OK;
	case PROTO_GET_RANGES:
		return PROTO_RANGES;
	default:
		return PROTO_REPLY | req;
	}
}

/* PROTOCOL.md section 7, and what it says the kernel may add. */
static bool documented_errno(uint32_t e)
{
	switch (e) {
	case EPERM: case ENOENT: case EIO: case ENOMEM: case EACCES:
	case EBUSY:
	case EEXIST: case EINVAL: case EPROTO: case EBADMSG: case EUSERS:
	case EMSGSIZE: case EPROTONOSUPPORT: case EOPNOTSUPP: case EDQUOT:
	case ENODEV: case ENOSPC:
		return true;
	default:
		return false;
	}
}

/*
 * Every packet sent has had exactly one answer: pair them.  Replies of one
 * session may come out of order (a SYNC waits for its round) and ids may
 * repeat, so the pairing is made once every answer is in: a reply goes to
 * a request of its id and reply type; an ERROR to a packet of its id that
 * must get that errno, else to one that may get any.
 */
static void match_answers(struct client *c)
{
	bool used[MAX_OUT] = { false }, paired[MAX_OUT] = { false };

	FUZZ_CHECK(c->nans == c->nout, "%u answers to %u packets", c->nans,
		   c->nout);
	/* replies, then ERRORs that a packet must get, then the others */
	for (int pass = 0; pass < 3; pass++) {
		for (unsigned int a = 0; a < c->nans; a++) {
			const struct pending *ans = &c->ans[a];
			bool error = ans->reply == PROTO_ERROR;

			if (paired[a] || (pass == 0) == error)
				continue;
			for (unsigned int i = 0; i < c->nout; i++) {
				const struct pending *p = &c->out[i];

				if (used[i] || p->id != ans->id ||
				    (pass == 0 && (p->err ||
						   p->reply != ans->reply)) ||
				    (pass == 1 && (!p->err ||
						   p->err != ans->err)) ||
				    (pass == 2 && p->err))
					continue;
				used[i] = paired[a] = true;
				break;
			}
			FUZZ_CHECK(paired[a] || pass == 1, "%s id %llu (errno "
				   "%d) answers nothing that was sent",
				   proto_type_name(ans->reply),
				   (unsigned long long)ans->id, -ans->err);
		}
	}
	c->nout = 0;
	c->nans = 0;
}

/* A stream packet (PROTO_F_MORE): it must belong to a request sent. */
static void streaming(struct client *c, const struct proto_msg *m)
{
	for (unsigned int i = 0; i < c->nout; i++)
		if (c->out[i].id == m->id && !c->out[i].err &&
		    c->out[i].reply == m->type)
			return;
	FUZZ_CHECK(0, "stream packet %s id %llu answers nothing sent",
		   proto_type_name(m->type), (unsigned long long)m->id);
}

/* Read and check everything the daemon sent. */
static void drain(struct client *c)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = rxbuf,
				     .iov_len = sizeof(rxbuf) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		struct proto_msg m;
		ssize_t n;
		int r;

		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_TRUNC |
			    MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EAGAIN)
			return;
		FUZZ_CHECK(n > 0, "the daemon hung up on the client (%zd, %m)",
			   n);
		FUZZ_CHECK(!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
			   n <= (ssize_t)PROTO_MAX_MSG, "the daemon sent a "
			   "packet of %zd bytes", n);
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h;
		     h = CMSG_NXTHDR(&mh, h)) {
			FUZZ_CHECK(0, "descriptors sent on the sim backend "
				   "(cmsg type %d)", h->cmsg_type);
		}
		r = proto_decode(rxbuf, (size_t)n, &m);
		FUZZ_CHECK(r == 0, "the daemon sent a packet that does not "
			   "decode: %s", strerror(-r));
		if (trace)
			fprintf(stderr, "  <- %s id %llu%s %.*s\n",
				proto_type_name(m.type),
				(unsigned long long)m.id,
				m.flags & PROTO_F_MORE ? " (more)" : "",
				m.type == PROTO_ERROR ?
				(int)m.error.text_len : 0,
				m.type == PROTO_ERROR ? m.error.text : "");
		FUZZ_CHECK(m.type & (PROTO_REPLY | 0x4000), "the daemon sent "
			   "a request, %s", proto_type_name(m.type));
		if (m.type == PROTO_EV_ROUND) {
			FUZZ_CHECK(c->features & PROTO_FEAT_EVENTS, "EV_ROUND "
				   "without PROTO_FEAT_EVENTS");
			continue;
		}
		if (m.type == PROTO_EV_STATE_LOST)
			continue;
		if (m.type == PROTO_ERROR) {
			FUZZ_CHECK(m.error.text_len > 0, "ERROR %u id %llu "
				   "without a text", m.error.err,
				   (unsigned long long)m.id);
			FUZZ_CHECK(documented_errno(m.error.err), "ERROR with "
				   "undocumented errno %u (%s): %.*s",
				   m.error.err, strerror((int)m.error.err),
				   (int)m.error.text_len, m.error.text);
		}
		if (m.flags & PROTO_F_MORE) {
			streaming(c, &m);
			continue;
		}
		if (m.type == PROTO_HELLO_REPLY) {
			c->features = m.hello_reply.features;
			c->token = m.hello_reply.session_token;
		}
		if (m.type == PROTO_CREATE_DOMAIN_REPLY &&
		    c->ndoms < MAX_DOMS)
			c->doms[c->ndoms++] = m.create_domain_reply.domain_id;
		FUZZ_CHECK(c->nans < c->nout, "%s id %llu: more answers than "
			   "packets sent", proto_type_name(m.type),
			   (unsigned long long)m.id);
		c->ans[c->nans++] = (struct pending){
			.id = m.id, .reply = m.type,
			.err = m.type == PROTO_ERROR ? -(int)m.error.err : 0,
		};
	}
}

/* Until every request sent is answered. */
static void settle(struct client *c)
{
	uint64_t end = now_ms() + DEADLINE_MS;

	for (;;) {
		pump(false);
		drain(c);
		if (c->nans == c->nout) {
			match_answers(c);
			return;
		}
		FUZZ_CHECK(now_ms() < end, "%u of %u packets unanswered after "
			   "%d ms", c->nout - c->nans, c->nout, DEADLINE_MS);
		pump(true);
	}
}

/* Close the client's end; wait until the daemon has let the session go. */
static void disconnect(struct client *c)
{
	unsigned int want = srv.nsessions - 1;
	uint64_t end = now_ms() + DEADLINE_MS;

	close(c->fd);
	c->fd = -1;
	c->nout = 0;
	c->nans = 0;
	c->hello = false;
	c->features = 0;
	if (trace)
		fprintf(stderr, "-- disconnect\n");
	while (srv.nsessions != want) {
		FUZZ_CHECK(now_ms() < end, "the daemon kept a closed "
			   "session for %d ms", DEADLINE_MS);
		pump(true);
	}
}

/* What the daemon must answer @pkt with, as the protocol says. */
static struct pending expect(struct client *c, const uint8_t *pkt,
			     size_t len, uint8_t ctl)
{
	struct pending p = {
		.id = len >= PROTO_HEADER_SIZE ? wire_get_le64(pkt + 8) : 0,
	};
	struct proto_msg m;
	uint16_t type;
	int r;

	if (ctl & CTL_OVERSIZE) {
		p.err = -EMSGSIZE;
		return p;
	}
	if (ctl & CTL_AS_OTHER) {
		p.err = -EPERM;
		return p;
	}
	/* PROTOCOL.md 3: header, type, the session's state, then form */
	r = proto_peek(pkt, len, &type, NULL);
	if (r < 0) {
		p.err = r;
		return p;
	}
	if (type < PROTO_HELLO || type > PROTO_LIST_SOURCES) {
		p.err = -EPROTO;	/* not a request */
		return p;
	}
	if (type == PROTO_HELLO ? c->hello : !c->hello) {
		p.err = -EPROTO;	/* HELLO first, and once */
		return p;
	}
	r = proto_decode(pkt, len, &m);
	if (r < 0) {
		p.err = r;
		return p;
	}
	if (m.type == PROTO_HELLO) {
		if (m.hello.major != PROTO_VERSION_MAJOR)
			p.err = -EPROTONOSUPPORT;
		else
			c->hello = true;
	}
	p.reply = reply_type(m.type);
	return p;
}

/* Domain ids and resume tokens the input cannot know: see the top. */
static void translate(struct client *c, uint8_t *pkt, size_t len)
{
	uint16_t type;
	uint32_t id;

	if (len < PROTO_HEADER_SIZE + 8)
		return;
	type = wire_get_le16(pkt);
	if (type == PROTO_HELLO && len >= PROTO_HEADER_SIZE + 24) {
		if (wire_get_le64(pkt + PROTO_HEADER_SIZE + 16) == 1)
			wire_put_le64(pkt + PROTO_HEADER_SIZE + 16, c->token);
		return;
	}
	/* every request naming a domain has its id first in the body */
	if (type < PROTO_ATTACH_DEVICE || type > PROTO_LIST_SOURCES)
		return;
	id = wire_get_le32(pkt + PROTO_HEADER_SIZE);
	if (id >= 1 && id < 16)
		wire_put_le32(pkt + PROTO_HEADER_SIZE,
			      id <= c->ndoms ? c->doms[id - 1] : 0);
}

/*
 * The one restriction: MAP, UNMAP and DMA_WRITE lengths are taken modulo
 * MAX_MAP_BYTES.  A MAP of terabytes at 4 KiB leaves on the sim builds its
 * page tables for tens of seconds in the event loop (see README.md here:
 * an open finding), which would turn every run into that timeout.
 */
#define MAX_MAP_BYTES (256ULL << 20)

static void cap_length(uint8_t *pkt, size_t len)
{
	uint16_t type;

	if (len < PROTO_HEADER_SIZE + 24)
		return;
	type = wire_get_le16(pkt);
	if (type == PROTO_MAP || type == PROTO_UNMAP ||
	    type == PROTO_DMA_WRITE)
		wire_put_le64(pkt + PROTO_HEADER_SIZE + 16,
			      wire_get_le64(pkt + PROTO_HEADER_SIZE + 16) %
			      MAX_MAP_BYTES);
}

static uint8_t txbuf[PROTO_MAX_MSG + 64];

static void send_packet(struct client *c, const uint8_t *data, size_t len,
			uint8_t ctl)
{
	uint64_t end = now_ms() + DEADLINE_MS;
	size_t n = len;
	int r;

	memcpy(txbuf, data, len);
	if (ctl & CTL_OVERSIZE) {
		memset(txbuf + len, 0, sizeof(txbuf) - len);
		n = sizeof(txbuf);
	}
	if (!(ctl & CTL_RAW_LENGTH) && len >= 8)
		wire_put_le32(txbuf + 4, (uint32_t)n);
	if (!(ctl & CTL_RAW_IDS))
		translate(c, txbuf, n);
	cap_length(txbuf, n);
	FUZZ_CHECK(c->nout < MAX_OUT, "too many requests in flight");
	c->out[c->nout++] = expect(c, txbuf, n, ctl);
	if (trace)
		fprintf(stderr, "-> %s id %llu, %zu bytes, ctl 0x%02x, "
			"expect %s\n", n >= 2 ? proto_type_name(
				wire_get_le16(txbuf)) ?: "?" : "?",
			(unsigned long long)c->out[c->nout - 1].id, n, ctl,
			c->out[c->nout - 1].err ?
			strerror(-c->out[c->nout - 1].err) : "any");
	while ((r = send_as(c->fd, ctl & CTL_AS_OTHER ? 0 : FUZZ_UID, txbuf,
			    n, ctl & CTL_WITH_FD)) == -EAGAIN) {
		/* the socket is full: let the daemon read, read its replies */
		FUZZ_CHECK(now_ms() < end, "the daemon reads nothing for %d "
			   "ms", DEADLINE_MS);
		pump(false);
		drain(c);
		pump(true);
	}
	FUZZ_CHECK(r == 0, "send: %s", strerror(-r));
	c->sent++;
	pump(false);
	if (!(ctl & CTL_NO_DRAIN))
		drain(c);
	if (ctl & CTL_SETTLE)
		settle(c);
}

/* ------------------------------------------------------------ the victim */

static struct {
	int fd;
	uint32_t dom;
	struct session *s;
	/* what must not change */
	uint64_t generation, mapped_bytes, pages_sent, *pending, nwords;
	size_t nmaps, ninflight, inflight_bytes;
	uint8_t *inflight;		/* gens: number, pages, chunks */
	const struct harvest_domain *plan;
	unsigned int ndevices, nsubs;
	bool enabled;
	uint32_t interval_ms;
} victim;

/* One synchronous request of the victim; its (final) answer in @reply. */
static void victim_call(struct proto_msg *req, struct proto_msg *reply)
{
	static uint64_t next_id = 1;
	static uint8_t buf[PROTO_MAX_MSG];
	uint64_t end = now_ms() + DEADLINE_MS;
	int n, r;

	req->id = next_id++;
	n = proto_encode(req, buf, sizeof(buf));
	FUZZ_CHECK(n > 0, "encoding the victim's %s",
		   proto_type_name(req->type));
	FUZZ_CHECK(send_as(victim.fd, VICTIM_UID, buf, (size_t)n, false) == 0,
		   "victim send");
	for (;;) {
		ssize_t k;

		pump(false);
		k = recv(victim.fd, rxbuf, sizeof(rxbuf), MSG_DONTWAIT);
		if (k < 0 && errno == EAGAIN) {
			FUZZ_CHECK(now_ms() < end, "the victim's %s is not "
				   "answered", proto_type_name(req->type));
			pump(true);
			continue;
		}
		FUZZ_CHECK(k > 0, "victim recv: %m");
		r = proto_decode(rxbuf, (size_t)k, reply);
		FUZZ_CHECK(r == 0, "victim: bad packet");
		if (reply->id != req->id || (reply->flags & PROTO_F_MORE))
			continue;
		FUZZ_CHECK(reply->type != PROTO_ERROR, "the victim's %s "
			   "failed: %.*s", proto_type_name(req->type),
			   (int)reply->error.text_len, reply->error.text);
		return;
	}
}

static struct subscription *victim_sub(void)
{
	FUZZ_CHECK(victim.s->nsubs == 1, "the victim has %u subscriptions",
		   victim.s->nsubs);
	return list_first_entry(&victim.s->subs, struct subscription,
				owner_link);
}

static size_t victim_inflight(uint8_t *out)
{
	const struct subscriber_gen *g;
	size_t n = 0;

	victim.ninflight = 0;
	for (g = victim_sub()->set.inflight; g; g = g->next) {
		if (out) {
			memcpy(out + n, &g->gen, 8);
			memcpy(out + n + 8, &g->pages, 8);
			memcpy(out + n + 16, g->chunks, g->len);
		}
		n += 16 + g->len;
		victim.ninflight++;
	}
	return n;
}

static void victim_snapshot(void)
{
	struct subscription *sub = victim_sub();
	struct domain *d = sub->dom;

	victim.generation = d->generation;
	victim.mapped_bytes = d->mapped_bytes;
	victim.nmaps = d->nmaps;
	victim.plan = d->plan;
	victim.ndevices = d->ndevices;
	victim.nsubs = d->nsubs;
	victim.enabled = d->enabled;
	victim.pages_sent = sub->pages_sent;
	victim.interval_ms = sub->interval_ms;
	victim.nwords = sub->set.nwords;
	victim.pending = malloc(victim.nwords * 8);
	FUZZ_CHECK(victim.pending, "out of memory");
	memcpy(victim.pending, sub->set.pending, victim.nwords * 8);
	victim.inflight_bytes = victim_inflight(NULL);
	victim.inflight = malloc(victim.inflight_bytes);
	FUZZ_CHECK(victim.inflight, "out of memory");
	victim_inflight(victim.inflight);
}

static void victim_check(void)
{
	static uint8_t now[1 << 16];
	struct subscription *sub;
	struct domain *d;
	size_t ninflight = victim.ninflight;
	ssize_t k;

	d = domain_find(&srv, victim.dom);
	FUZZ_CHECK(d, "the victim's domain %u is gone", victim.dom);
	sub = victim_sub();
	FUZZ_CHECK(sub->dom == d && d->generation == victim.generation &&
		   d->mapped_bytes == victim.mapped_bytes &&
		   d->nmaps == victim.nmaps && d->plan == victim.plan &&
		   d->ndevices == victim.ndevices &&
		   d->nsubs == victim.nsubs && d->enabled == victim.enabled,
		   "the victim's domain changed (generation %llu, %zu maps, "
		   "%u devices, %u subscribers)",
		   (unsigned long long)d->generation, d->nmaps, d->ndevices,
		   d->nsubs);
	FUZZ_CHECK(sub->pages_sent == victim.pages_sent &&
		   sub->interval_ms == victim.interval_ms &&
		   !sub->ev_round && !sub->ev_lost &&
		   sub->set.nwords == victim.nwords &&
		   !memcmp(sub->set.pending, victim.pending,
			   victim.nwords * 8),
		   "the victim's pending pages changed");
	FUZZ_CHECK(victim.inflight_bytes <= sizeof(now) &&
		   victim_inflight(NULL) == victim.inflight_bytes &&
		   victim.ninflight == ninflight, "the victim's generations "
		   "in flight changed");
	victim_inflight(now);
	FUZZ_CHECK(!memcmp(now, victim.inflight, victim.inflight_bytes),
		   "the victim's generations in flight changed");
	k = recv(victim.fd, rxbuf, sizeof(rxbuf), MSG_DONTWAIT);
	FUZZ_CHECK(k < 0 && errno == EAGAIN, "the victim was sent something "
		   "(%zd bytes, type 0x%04x)", k,
		   k >= 2 ? wire_get_le16(rxbuf) : 0);
}

static void victim_setup(void)
{
	struct proto_msg q, a;
	struct session *s;

	victim.fd = connect_as(VICTIM_UID);
	list_for_each_entry(s, &srv.sessions, link)
		victim.s = s;
	q = (struct proto_msg){ .type = PROTO_HELLO,
				.hello = { .major = 1,
					   .features = PROTO_FEATURES_ALL } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_CREATE_DOMAIN,
				.create_domain = {
					.flags = PROTO_CREATE_TRACKING |
						 PROTO_CREATE_NO_HUGE_PAGES,
					.device = "sim0" } };
	victim_call(&q, &a);
	victim.dom = a.create_domain_reply.domain_id;
	q = (struct proto_msg){ .type = PROTO_MAP,
				.map = { .domain_id = victim.dom,
					 .flags = PROTO_MAP_READABLE |
						  PROTO_MAP_WRITEABLE,
					 .iova = 1 << 20, .length = 1 << 20 } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_TRACK_START,
				.domain_op = { .domain_id = victim.dom } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_SUBSCRIBE,
				.subscribe = {
					.domain_id = victim.dom,
					.flags = PROTO_SUBSCRIBE_CLEAN } };
	victim_call(&q, &a);
	/* five pages, harvested and sent: a generation in flight */
	q = (struct proto_msg){ .type = PROTO_DMA_WRITE,
				.map = { .domain_id = victim.dom,
					 .iova = (1 << 20) + 3 * 4096,
					 .length = 5 * 4096 } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_SYNC,
				.domain_op = { .domain_id = victim.dom } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_GET_RANGES,
				.get_ranges = { .domain_id = victim.dom } };
	victim_call(&q, &a);
	FUZZ_CHECK(a.ranges.total_pages == 5, "victim: %llu pages sent",
		   (unsigned long long)a.ranges.total_pages);
	/* two more, harvested: pending */
	q = (struct proto_msg){ .type = PROTO_DMA_WRITE,
				.map = { .domain_id = victim.dom,
					 .iova = (1 << 20) + 100 * 4096,
					 .length = 2 * 4096 } };
	victim_call(&q, &a);
	q = (struct proto_msg){ .type = PROTO_SYNC,
				.domain_op = { .domain_id = victim.dom } };
	victim_call(&q, &a);
	FUZZ_CHECK(a.sync_reply.pending_pages == 2, "victim: %llu pending",
		   (unsigned long long)a.sync_reply.pending_pages);
	victim_snapshot();
	FUZZ_CHECK(victim.ninflight == 1, "victim: %zu generations in flight",
		   victim.ninflight);
}

/* ------------------------------------------------------------ the server */

static void server_teardown(void)
{
	/* at exit: everything freed, so that LeakSanitizer sees any leak */
	close(victim.fd);
	inproc_stop();
	free(victim.pending);
	free(victim.inflight);
	close(devnull);
}

static void set(const char *section, const char *key, const char *value)
{
	inproc_set(section, key, value);
}

static void server_setup(void)
{
	const char *lvl = getenv("FUZZ_LOG");

	log_setup("fuzz_session", LOG_CRIT);
	trace = getenv("FUZZ_TRACE") != NULL;
	inproc_config();
	set("daemon", "workers", "1");
	set("daemon", "max_clients", "4");
	set("daemon", "max_subscriptions", "4");
	set("daemon", "max_domains", "3");
	set("daemon", "resume_grace", "30");
	set("sim", "devices", "sim0:dirty, sim1:dirty, sim2:dirty, "
	    "sim-legacy0:nodirty");
	if (lvl)
		set("daemon", "log_level", lvl);
	inproc_start();
	log_set_max_level(lvl ? cfg.log_level : LOG_CRIT);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(devnull >= 0, "/dev/null: %m");
	victim_setup();
	atexit(server_teardown);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	server_setup();
	return 0;
}

/* ------------------------------------------------------------ cleanup */

/*
 * The input's domains and parked subscriptions: 0 when none is left, 1
 * when one was destroyed or expired now, 2 when one must be waited for (a
 * round it runs; a dying domain is freed at the end of its round).
 */
static int fuzz_leftovers(bool destroy)
{
	struct domain *d;
	struct park *p;

	list_for_each_entry(d, &srv.domains, link) {
		if (d->owner != FUZZ_UID)
			continue;
		/* domain_destroy() wants it idle: no round, no change */
		if (!destroy || d->dying || d->running || d->change)
			return 2;
		domain_destroy(d);
		return 1;	/* the list changed: look again */
	}
	list_for_each_entry(p, &srv.parks, link) {
		if (p->uid != FUZZ_UID)
			continue;
		if (!destroy)
			return 2;
		event_active(p->timer, EV_TIMEOUT, 1);
		return 1;
	}
	return 0;
}

/* Destroy the input's domains, expire its parked subscriptions. */
static void cleanup(void)
{
	uint64_t end = now_ms() + DEADLINE_MS;
	int r;

	while ((r = fuzz_leftovers(true))) {
		FUZZ_CHECK(now_ms() < end, "the input's domains and parks are "
			   "still there after %d ms", DEADLINE_MS);
		pump(r == 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client c = { .fd = -1 };
	unsigned int fds = count_fds(), sessions = srv.nsessions;
	size_t off = 0;

	c.fd = connect_as(FUZZ_UID);
	while (off + 3 <= size && c.sent < MAX_PACKETS) {
		uint8_t ctl = data[off];
		size_t len = data[off + 1] | (size_t)data[off + 2] << 8;

		off += 3;
		if (len > size - off)
			len = size - off;
		if (ctl & CTL_RECONNECT) {
			disconnect(&c);
			c.fd = connect_as(FUZZ_UID);
		}
		send_packet(&c, data + off, len, ctl);
		off += len;
	}
	settle(&c);
	disconnect(&c);
	cleanup();
	FUZZ_CHECK(srv.nsessions == sessions, "%u sessions, %u before",
		   srv.nsessions, sessions);
	FUZZ_CHECK(count_fds() == fds, "%u descriptors open, %u before",
		   count_fds(), fds);
	victim_check();
	return 0;
}
