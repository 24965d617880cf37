// SPDX-License-Identifier: MIT
/*
 * libdirty: one blocking request/answer exchange per call over a
 * SOCK_SEQPACKET socket, with the codec of protocol/.
 *
 * Every call sends one request with a fresh id and reads packets until the
 * answer with that id is complete.  On the way:
 *  - events (id 0) are queued for dirty_next_event(), at most one
 *    DIRTY_EVENT_ROUND per domain (the latest) and one STATE_LOST;
 *  - packets with another id are answers to calls that gave up (timeout,
 *    or a malformed stream left early) and are discarded, descriptors
 *    closed, so a handle survives them.
 * Anything that breaks the framing itself (EOF, an oversized packet) is
 * returned to the caller; dirty_reconnect() starts afresh.
 *
 * A RANGES packet's bytes are read once after the receive: its chunks are
 * checked as they are decoded (proto_ranges_decode()), into batches of
 * runs that dirty_ranges() merges and hands to the caller (or
 * dirty_ranges_lebitmap() sets in the caller's bitmap).
 *
 * Owns: the ABI's growth rule (dirty.h): every struct begins with its
 * size; what the library fills is bounded by it (out_fill()), what it
 * returns carries its own (list_finish(), dirty_get_fds()).
 */
#define _GNU_SOURCE		/* secure_getenv, struct ucred */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dirty.h"
#include "dirty_private.h"
#include "protocol/chunk.h"
#include "protocol/packet_io.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

/* The public constants are the wire's. */
#define SAME(a, b) ((long long)(a) == (long long)(b))
_Static_assert(DIRTY_NAME_MAX == PROTO_NAME_MAX, "name size");
_Static_assert(SAME(DIRTY_FEAT_RANGES_RAW, PROTO_FEAT_RANGES_RAW) &&
	       SAME(DIRTY_FEAT_RESUME, PROTO_FEAT_RESUME) &&
	       SAME(DIRTY_FEAT_FD_PASSING, PROTO_FEAT_FD_PASSING) &&
	       SAME(DIRTY_FEAT_EVENTS, PROTO_FEAT_EVENTS), "features");
_Static_assert(SAME(DIRTY_SESSION_RESUMED, PROTO_SESSION_RESUMED) &&
	       SAME(DIRTY_SESSION_STATE_LOST, PROTO_SESSION_STATE_LOST),
	       "session flags");
_Static_assert(SAME(DIRTY_DEVICE_DIRTY_CAPABLE, PROTO_DEVICE_DIRTY_CAPABLE) &&
	       SAME(DIRTY_DEVICE_BOUND, PROTO_DEVICE_BOUND) &&
	       SAME(DIRTY_DEVICE_ATTACHED, PROTO_DEVICE_ATTACHED),
	       "device flags");
_Static_assert(SAME(DIRTY_DOMAIN_ENABLED, PROTO_DOMAIN_ENABLED) &&
	       SAME(DIRTY_DOMAIN_SUPPORTED, PROTO_DOMAIN_SUPPORTED) &&
	       SAME(DIRTY_DOMAIN_UNSUPPORTED, PROTO_DOMAIN_UNSUPPORTED),
	       "domain status");
_Static_assert(SAME(DIRTY_CREATE_TRACKING, PROTO_CREATE_TRACKING) &&
	       SAME(DIRTY_CREATE_NO_HUGE_PAGES, PROTO_CREATE_NO_HUGE_PAGES),
	       "create flags");
_Static_assert(SAME(DIRTY_MAP_READABLE, PROTO_MAP_READABLE) &&
	       SAME(DIRTY_MAP_WRITEABLE, PROTO_MAP_WRITEABLE) &&
	       SAME(DIRTY_MAP_EXTERNAL, PROTO_MAP_EXTERNAL), "map flags");
_Static_assert(SAME(DIRTY_SUBSCRIBE_CLEAN, PROTO_SUBSCRIBE_CLEAN),
	       "subscribe flags");
_Static_assert(SAME(DIRTY_RANGES_RESEND, PROTO_RANGES_RESEND),
	       "ranges flags");
#undef SAME

/* dirty_version_string(): the header's version (CMake reads it too). */
#define STR_(x) #x
#define STR(x) STR_(x)
#define DIRTY_VERSION_TEXT STR(DIRTY_VERSION_MAJOR) "." \
	STR(DIRTY_VERSION_MINOR) "." STR(DIRTY_VERSION_PATCH)

/*
 * The bytes of a struct's 1.0 layout: up to the end of its last 1.0
 * field.  A caller's size below it is refused; fields added later go
 * after it.
 */
#define SIZE_1_0(type, last) \
	(offsetof(struct type, last) + sizeof(((struct type *)0)->last))
#define SESSION_SIZE_1_0 SIZE_1_0(dirty_session, flags)
#define SUBSCRIPTION_INFO_SIZE_1_0 SIZE_1_0(dirty_subscription_info, generation)
#define EVENT_SIZE_1_0 SIZE_1_0(dirty_event, pending_pages)

#define DIRTY_EVENTS_MAX 64u
#define DIRTY_CONNECT_FLAGS (DIRTY_CONNECT_NO_RESUME | DIRTY_CONNECT_NO_EVENTS)
#define DIRTY_RANGES_FLAGS (DIRTY_RANGES_RESEND | DIRTY_RANGES_ACK)

/* A subscription this handle made, to restore after a lost session. */
struct dirty_sub {
	uint32_t domain_id;
	uint32_t interval_ms;
	uint32_t flags;
	bool lost;
	uint64_t page_size;	/* the domain's, from SUBSCRIBE_REPLY */
};

struct dirty {
	int fd;
	struct sockaddr_un addr;
	uint64_t connect_flags;
	uint64_t next_id;
	int timeout_ms;
	struct dirty_session session;

	uint8_t *buf;			/* PROTO_MAX_MSG bytes */
	struct extent *runs;		/* CHUNK_MAX_PAIRS: a chunk's runs */
	bool has_error_text;
	char error_text[PROTO_ERROR_TEXT_MAX + 1];

	struct dirty_event events[DIRTY_EVENTS_MAX];
	unsigned int ev_head;
	unsigned int ev_count;

	struct dirty_sub *subs;
	size_t n_subs;
	size_t cap_subs;
};


static void close_fds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- subscriptions kept by the handle ---- */

static struct dirty_sub *sub_find(struct dirty *d, uint32_t domain_id)
{
	for (size_t i = 0; i < d->n_subs; i++)
		if (d->subs[i].domain_id == domain_id)
			return &d->subs[i];
	return NULL;
}

/* Room for one more, so that sub_add() after a successful SUBSCRIBE
 * cannot fail. */
static int sub_reserve(struct dirty *d)
{
	size_t cap = d->cap_subs ? d->cap_subs * 2 : 8;
	struct dirty_sub *n;

	if (d->n_subs < d->cap_subs)
		return 0;
	n = reallocarray(d->subs, cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->subs = n;
	d->cap_subs = cap;
	return 0;
}

static void sub_add(struct dirty *d, uint32_t domain_id, uint32_t interval_ms,
		    uint32_t flags, uint64_t page_size)
{
	struct dirty_sub *s = sub_find(d, domain_id);

	if (!s)
		s = &d->subs[d->n_subs++];
	*s = (struct dirty_sub){
		.domain_id = domain_id,
		.interval_ms = interval_ms,
		.flags = flags,
		.page_size = page_size,
	};
}

/* ---- the growth rule ---- */

/* The size a caller set in the struct at @p (its first member). */
static uint32_t size_of(const void *p)
{
	uint32_t size;

	memcpy(&size, p, sizeof(size));
	return size;
}

/* A caller's struct at @out may take the library's at @full only if its
 * size reaches the 1.0 layout (@min). */
static int out_check(const void *out, size_t min)
{
	return size_of(out) < min ? -EINVAL : 0;
}

/*
 * Copy the library's struct @full (@full_size bytes, its own size field
 * ignored) into the caller's @out, whose size out_check() accepted: the
 * bytes that fit in both; then @out's size says how many that was.
 */
static void out_fill(void *out, const void *full, size_t full_size)
{
	uint32_t size = size_of(out);

	if (size > full_size)
		size = (uint32_t)full_size;
	memcpy((uint8_t *)out + sizeof(size), (const uint8_t *)full +
	       sizeof(size), size - sizeof(size));
	memcpy(out, &size, sizeof(size));
}

static void sub_remove(struct dirty *d, uint32_t domain_id)
{
	struct dirty_sub *s = sub_find(d, domain_id);

	if (s)
		*s = d->subs[--d->n_subs];
}

/* ---- events ---- */

static void event_queue(struct dirty *d, const struct dirty_event *ev)
{
	unsigned int i;

	/* the latest round per domain; one STATE_LOST per domain */
	for (i = 0; i < d->ev_count; i++) {
		struct dirty_event *q =
			&d->events[(d->ev_head + i) % DIRTY_EVENTS_MAX];

		if (q->domain_id == ev->domain_id && q->type == ev->type) {
			*q = *ev;
			return;
		}
	}
	if (d->ev_count == DIRTY_EVENTS_MAX) {
		/* Full: forget the oldest round notification; a STATE_LOST
		 * is never dropped (dirty_ranges() acts on it anyway). */
		for (i = 0; i < d->ev_count; i++) {
			unsigned int at = (d->ev_head + i) % DIRTY_EVENTS_MAX;

			if (d->events[at].type == DIRTY_EVENT_ROUND)
				break;
		}
		if (i == d->ev_count)
			return;
		for (; i + 1 < d->ev_count; i++)
			d->events[(d->ev_head + i) % DIRTY_EVENTS_MAX] =
				d->events[(d->ev_head + i + 1) %
					  DIRTY_EVENTS_MAX];
		d->ev_count--;
	}
	d->events[(d->ev_head + d->ev_count) % DIRTY_EVENTS_MAX] = *ev;
	d->ev_count++;
}

/* An event packet (id 0) arrived. */
static void event_received(struct dirty *d, const struct proto_msg *m)
{
	struct dirty_event ev = { 0 };

	if (m->type == PROTO_EV_ROUND) {
		ev = (struct dirty_event){
			.size = sizeof(ev),
			.type = DIRTY_EVENT_ROUND,
			.domain_id = m->ev_round.domain_id,
			.generation = m->ev_round.generation,
			.round_pages = m->ev_round.round_pages,
			.pending_pages = m->ev_round.pending_pages,
		};
	} else {
		/* dirtyd marked every page of the domain pending for us: the
		 * next ranges report them; nothing to do here but tell. */
		ev = (struct dirty_event){
			.size = sizeof(ev),
			.type = DIRTY_EVENT_STATE_LOST,
			.domain_id = m->domain_op.domain_id,
		};
	}
	event_queue(d, &ev);
}

/* ---- the socket ---- */

static int dirty_send(struct dirty *d, struct proto_msg *m)
{
	uint8_t buf[256];
	ssize_t n;
	int len;

	m->id = ++d->next_id;
	len = proto_encode(m, buf, sizeof(buf));
	if (len < 0)
		return len;
	n = send(d->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	if (n != len)
		return -EIO;
	return 0;
}

/*
 * Wait for the socket to be readable until @deadline (ms, CLOCK_MONOTONIC;
 * 0: forever).
 */
static int dirty_wait(struct dirty *d, uint64_t deadline)
{
	struct pollfd pfd = { .fd = d->fd, .events = POLLIN };

	for (;;) {
		int timeout = -1, r;

		if (deadline) {
			uint64_t now = now_ms();

			if (now >= deadline)
				return -ETIMEDOUT;
			timeout = (int)(deadline - now);
		}
		r = poll(&pfd, 1, timeout);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* One packet into d->buf, with its descriptors.  Returns 0, -EAGAIN when
 * @block is false and nothing waits, or a negative errno. */
static int dirty_recv(struct dirty *d, struct dirty_packet *p, bool block,
		      uint64_t deadline)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * DIRTY_FDS_MAX) +
			    CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = { .iov_base = d->buf, .iov_len = PROTO_MAX_MSG };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;
	int r;

	p->len = 0;
	p->nfds = 0;
	for (;;) {
		if (block) {
			r = dirty_wait(d, deadline);
			if (r < 0)
				return r;
		}
		n = recvmsg(d->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0)
			break;
		if (errno == EINTR || (block && errno == EAGAIN))
			continue;
		return -errno;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (p->nfds < DIRTY_FDS_MAX)
				p->fds[p->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0) {
		close_fds(p->fds, p->nfds);
		return -ECONNRESET;	/* dirtyd closed the connection */
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(p->fds, p->nfds);
		return -EMSGSIZE;
	}
	p->len = (size_t)n;
	return 0;
}

static uint64_t packet_id(const struct dirty *d, const struct dirty_packet *p)
{
	if (p->len < PROTO_HEADER_SIZE)
		return 0;
	return wire_get_le64(d->buf + 8);
}

/*
 * Record an ERROR reply and turn it into the negative errno to return.
 * An errno outside 1..4095 is dirtyd's bug: -EPROTO.
 */
static int dirty_error(struct dirty *d, const struct proto_msg *m)
{
	size_t n = m->error.text_len;

	if (n > PROTO_ERROR_TEXT_MAX)
		n = PROTO_ERROR_TEXT_MAX;
	memcpy(d->error_text, m->error.text, n);
	d->error_text[n] = '\0';
	d->has_error_text = true;
	if (!m->error.err || m->error.err > 4095)
		return -EPROTO;
	return -(int)m->error.err;
}

/*
 * Read until a packet of request @id arrives and decode it into @m (its
 * variable parts point into d->buf: valid until the next receive).
 * Events are queued and stale answers dropped (undecoded) on the way.  An
 * ERROR with id 0 (dirtyd could not tell which request it answers) ends
 * the wait too.  A RANGES packet's chunks are left to dirty_ranges(),
 * which checks them as it reads them (proto_decode_lazy()): they are read
 * once.  @fds: where the packet's descriptors go, NULL to close them.
 */
static int dirty_recv_answer(struct dirty *d, uint64_t id, struct proto_msg *m,
			     struct dirty_packet *fds)
{
	uint64_t deadline = d->timeout_ms ? now_ms() + d->timeout_ms : 0;
	struct dirty_packet local;
	struct dirty_packet *p = fds ? fds : &local;
	int r;

	for (;;) {
		uint64_t pid;

		r = dirty_recv(d, p, true, deadline);
		if (r < 0)
			return r;
		pid = packet_id(d, p);
		if (pid != id && pid != 0) {
			close_fds(p->fds, p->nfds);
			continue;	/* an answer to a call that gave up */
		}
		r = proto_decode_lazy(d->buf, p->len, m);
		if (r < 0) {
			close_fds(p->fds, p->nfds);
			if (pid == id)
				return r;
			continue;	/* an undecodable event: ignore it */
		}
		if (pid == 0 && m->type != PROTO_ERROR) {
			close_fds(p->fds, p->nfds);
			if (m->type == PROTO_EV_ROUND ||
			    m->type == PROTO_EV_STATE_LOST)
				event_received(d, m);
			continue;
		}
		if (p == &local)
			close_fds(p->fds, p->nfds);
		return 0;
	}
}

/* Start a call: forget the last error text and send @req. */
static int dirty_start(struct dirty *d, struct proto_msg *req)
{
	d->has_error_text = false;
	if (d->fd < 0)
		return -ENOTCONN;
	return dirty_send(d, req);
}

/*
 * Send @req and read its single-packet answer into @m: @reply_type or
 * PROTO_ERROR (returned as its errno).
 */
static int dirty_call(struct dirty *d, struct proto_msg *req,
		      uint16_t reply_type, struct proto_msg *m)
{
	int r;

	r = dirty_start(d, req);
	if (r < 0)
		return r;
	r = dirty_recv_answer(d, req->id, m, NULL);
	if (r < 0)
		return r;
	if (m->type == PROTO_ERROR)
		return dirty_error(d, m);
	if (m->type != reply_type || (m->flags & PROTO_F_MORE))
		return -EPROTO;
	return 0;
}

/* A call whose answer is PROTO_OK. */
static int dirty_call_ok(struct dirty *d, struct proto_msg *req)
{
	struct proto_msg m;

	return dirty_call(d, req, PROTO_OK, &m);
}

/* ---- the library ---- */

unsigned int dirty_version(void)
{
	return DIRTY_VERSION_NUMBER;
}

const char *dirty_version_string(void)
{
	return DIRTY_VERSION_TEXT;
}

/* ---- connections ---- */

static int dirty_socket_path(const char *path, struct sockaddr_un *addr)
{
	size_t n;

	if (!path) {
		path = secure_getenv(DIRTY_SOCKET_ENV);
		if (!path || !*path)
			path = DIRTY_SOCKET_DEFAULT;
	}
	n = strlen(path);
	if (!n)
		return -EINVAL;
	if (n >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	*addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	memcpy(addr->sun_path, path, n + 1);
	return 0;
}

/* Open d->addr and shake hands with @token; sets d->fd and d->session. */
static int dirty_open(struct dirty *d, uint64_t token)
{
	uint64_t features = PROTO_FEATURES_ALL;
	struct proto_msg m, req = {
		.type = PROTO_HELLO,
	};
	int fd, r;

	if (d->connect_flags & DIRTY_CONNECT_NO_RESUME)
		features &= ~(uint64_t)PROTO_FEAT_RESUME;
	if (d->connect_flags & DIRTY_CONNECT_NO_EVENTS)
		features &= ~(uint64_t)PROTO_FEAT_EVENTS;
	req.hello = (struct proto_hello){
		.major = PROTO_VERSION_MAJOR,
		.minor = PROTO_VERSION_MINOR,
		.features = features,
		.resume_token = token,
	};

	/* The old connection goes first, so that dirtyd has parked its
	 * subscriptions by the time the token comes back. */
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* dirtyd checks the sender of every request (SCM_CREDENTIALS).
	 * The kernel attaches credentials to a message only if the sender
	 * or the receiver has SO_PASSCRED when it is sent: set it here, so
	 * that a request sent before dirtyd set it on its end carries them
	 * too. */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 },
		       sizeof(int)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (connect(fd, (const struct sockaddr *)&d->addr,
		    sizeof(d->addr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	d->fd = fd;
	r = dirty_call(d, &req, PROTO_HELLO_REPLY, &m);
	if (r < 0)
		goto fail;
	if (m.hello_reply.major != PROTO_VERSION_MAJOR) {
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	d->session = (struct dirty_session){
		.size = sizeof(d->session),
		.version_major = m.hello_reply.major,
		.version_minor = m.hello_reply.minor,
		.max_msg = m.hello_reply.max_msg,
		.features = m.hello_reply.features & features,
		.token = m.hello_reply.session_token,
		.uid = m.hello_reply.uid,
		.gid = m.hello_reply.gid,
		.flags = m.hello_reply.session_flags,
	};
	return 0;

fail:
	close(d->fd);
	d->fd = -1;
	return r;
}

static int dirty_new(const char *path, uint64_t flags, uint64_t token,
		     struct dirty **out)
{
	struct dirty *d;
	int r;

	if (!out || (flags & ~(uint64_t)DIRTY_CONNECT_FLAGS))
		return -EINVAL;
	if (token && (flags & DIRTY_CONNECT_NO_RESUME))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = -1;
	d->connect_flags = flags;
	d->buf = malloc(PROTO_MAX_MSG);
	d->runs = malloc(CHUNK_MAX_PAIRS * sizeof(*d->runs));
	if (!d->buf || !d->runs) {
		r = -ENOMEM;
		goto fail;
	}
	r = dirty_socket_path(path, &d->addr);
	if (r < 0)
		goto fail;
	r = dirty_open(d, token);
	if (r < 0)
		goto fail;
	*out = d;
	return 0;

fail:
	dirty_close(d);
	return r;
}

int dirty_connect(const char *path, uint64_t flags, struct dirty **out)
{
	return dirty_new(path, flags, 0, out);
}

int dirty_connect_resume(const char *path, uint64_t token, uint64_t flags,
			 struct dirty **out)
{
	if (!token)
		return -EINVAL;
	return dirty_new(path, flags, token, out);
}

int dirty_reconnect(struct dirty *d)
{
	uint64_t token;
	int r;

	if (!d)
		return -EINVAL;
	token = d->session.token;
	r = dirty_open(d, token);
	if (r < 0)
		return r;
	/* Without the old session every subscription is gone, and with it
	 * what was pending: the next ranges subscribe again. */
	if (!(d->session.flags & DIRTY_SESSION_RESUMED))
		for (size_t i = 0; i < d->n_subs; i++)
			d->subs[i].lost = true;
	return 0;
}

void dirty_close(struct dirty *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d->subs);
	free(d->buf);
	free(d->runs);
	free(d);
}

int dirty_fd(const struct dirty *d)
{
	return d ? d->fd : -EINVAL;
}

int dirty_session(const struct dirty *d, struct dirty_session *out)
{
	if (!d || !out || out_check(out, SESSION_SIZE_1_0) < 0)
		return -EINVAL;
	out_fill(out, &d->session, sizeof(d->session));
	return 0;
}

uint64_t dirty_session_token(const struct dirty *d)
{
	return d ? d->session.token : 0;
}

int dirty_set_timeout(struct dirty *d, int timeout_ms)
{
	if (!d || timeout_ms < 0)
		return -EINVAL;
	d->timeout_ms = timeout_ms;
	return 0;
}

const char *dirty_last_error_text(const struct dirty *d)
{
	return d && d->has_error_text ? d->error_text : NULL;
}

/* ---- lists ---- */

/*
 * Send @req and gather the entries of its (possibly multi-packet) list
 * answer of @reply_type; @add appends entry i of a packet to @vec.
 */
struct dirty_vec {
	void *items;
	size_t n;
	size_t cap;
	size_t size;
};

static int vec_reserve(struct dirty_vec *v, size_t more)
{
	size_t cap = v->cap;
	void *n;

	if (v->n + more <= v->cap)
		return 0;
	while (cap < v->n + more)
		cap = cap ? cap * 2 : 16;
	n = reallocarray(v->items, cap, v->size);
	if (!n)
		return -ENOMEM;
	v->items = n;
	v->cap = cap;
	return 0;
}


static int dirty_call_list(struct dirty *d, struct proto_msg *req,
			   uint16_t reply_type, dirty_list_add_fn add,
			   struct dirty_vec *v)
{
	struct proto_msg m;
	int r;

	r = dirty_start(d, req);
	if (r < 0)
		return r;
	for (bool first = true;; first = false) {
		r = dirty_recv_answer(d, req->id, &m, NULL);
		if (r < 0)
			return r;
		if (m.type == PROTO_ERROR && first)
			return dirty_error(d, &m);
		if (m.type != reply_type)
			return -EPROTO;
		r = vec_reserve(v, m.list.count);
		if (r < 0)
			return r;
		for (uint32_t i = 0; i < m.list.count; i++)
			add(&m, i, (uint8_t *)v->items + v->n++ * v->size);
		if (!(m.flags & PROTO_F_MORE))
			return 0;
	}
}

static void add_device(const struct proto_msg *m, uint32_t i, void *item)
{
	struct dirty_device *dev = item;
	struct proto_device pd;

	proto_device_at(m, i, &pd);
	*dev = (struct dirty_device){
		.size = sizeof(*dev),
		.capabilities = pd.capabilities,
		.flags = pd.flags,
		.domain_id = pd.domain_id,
		.dev_id = pd.dev_id,
	};
	memcpy(dev->name, pd.name, sizeof(dev->name));
	dev->name[sizeof(dev->name) - 1] = '\0';
}

static void add_domain(const struct proto_msg *m, uint32_t i, void *item)
{
	struct dirty_domain *dom = item;
	struct proto_domain pd;

	proto_domain_at(m, i, &pd);
	*dom = (struct dirty_domain){
		.size = sizeof(*dom),
		.domain_id = pd.domain_id,
		.status = pd.status,
		.owner_uid = pd.owner_uid,
		.devices = pd.devices,
		.mapped_bytes = pd.mapped_bytes,
		.page_size = pd.page_size,
		.generation = pd.generation,
		.subscribers = pd.subscribers,
	};
}

static void add_stats(const struct proto_msg *m, uint32_t i, void *item)
{
	struct dirty_stats *st = item;
	struct proto_stats ps;

	proto_stats_at(m, i, &ps);
	*st = (struct dirty_stats){
		.size = sizeof(*st),
		.domain_id = ps.domain_id,
		.status = ps.status,
		.generation = ps.generation,
		.last_round_ns = ps.last_round_ns,
		.last_round_pages = ps.last_round_pages,
		.dirty_rate = ps.dirty_rate,
		.mapped_bytes = ps.mapped_bytes,
		.pending_pages = ps.pending_pages,
		.pages_sent = ps.pages_sent,
	};
}

static size_t align_up(size_t n)
{
	return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

/*
 * A list as the caller gets it, in one zeroed allocation (returned, NULL
 * for -ENOMEM): @prefix bytes (a struct holding the list, or none), @n + 1
 * pointers (the last NULL) set at *@ptrs, then @n items of @size bytes
 * each (a stride only the library knows) at *@items; free() of the
 * allocation releases everything.
 */
static void *list_block(size_t prefix, size_t n, size_t size, void ***ptrs,
			void **items)
{
	size_t head = align_up(prefix), at;
	uint8_t *block;

	if (n > SIZE_MAX / 2 / (sizeof(void *) + size))
		return NULL;
	at = head + align_up((n + 1) * sizeof(void *));
	block = calloc(1, at + n * size);
	if (!block)
		return NULL;
	*ptrs = (void **)(block + head);
	*items = block + at;
	for (size_t i = 0; i < n; i++)
		(*ptrs)[i] = block + at + i * size;
	(*ptrs)[n] = NULL;
	return block;
}

/* The gathered items of @v, as the list the caller gets. */
static int list_finish(struct dirty_vec *v, void ***list, size_t *n)
{
	void **ptrs;
	void *items;

	if (!list_block(0, v->n, v->size, &ptrs, &items))
		return -ENOMEM;
	if (v->n)
		memcpy(items, v->items, v->n * v->size);
	*list = ptrs;
	*n = v->n;
	return 0;
}

int dirty_list(struct dirty *d, uint16_t type, uint32_t domain_id,
		      uint16_t reply_type, dirty_list_add_fn add, size_t size,
		      void ***list, size_t *n)
{
	struct proto_msg req = { .type = type };
	struct dirty_vec v = { .size = size };
	int r;

	if (!d || !list || !n)
		return -EINVAL;
	if (type == PROTO_STATS || type == PROTO_LIST_SOURCES)
		req.domain_op.domain_id = domain_id;
	r = dirty_call_list(d, &req, reply_type, add, &v);
	if (r == 0)
		r = list_finish(&v, list, n);
	free(v.items);
	return r;
}

int dirty_list_devices(struct dirty *d, struct dirty_device ***list,
		       size_t *n)
{
	return dirty_list(d, PROTO_LIST_DEVICES, 0, PROTO_LIST_DEVICES_REPLY,
			  add_device, sizeof(***list), (void ***)list, n);
}

int dirty_list_domains(struct dirty *d, struct dirty_domain ***list,
		       size_t *n)
{
	return dirty_list(d, PROTO_LIST_DOMAINS, 0, PROTO_LIST_DOMAINS_REPLY,
			  add_domain, sizeof(***list), (void ***)list, n);
}

int dirty_stats(struct dirty *d, uint32_t domain_id,
		struct dirty_stats ***list, size_t *n)
{
	return dirty_list(d, PROTO_STATS, domain_id, PROTO_STATS_REPLY,
			  add_stats, sizeof(***list), (void ***)list, n);
}

/* ---- domains ---- */

static int device_name_check(const char *device)
{
	size_t n;

	if (!device)
		return -EINVAL;
	n = strnlen(device, DIRTY_NAME_MAX);
	if (!n)
		return -EINVAL;
	if (n == DIRTY_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int dirty_domain_create(struct dirty *d, const char *device, uint32_t flags,
			uint32_t *domain_id, uint32_t *dev_id)
{
	struct proto_msg m, req = {
		.type = PROTO_CREATE_DOMAIN,
		.create_domain.flags = flags,
	};
	int r;

	if (!d || !domain_id ||
	    (flags & ~(uint32_t)(DIRTY_CREATE_TRACKING |
				 DIRTY_CREATE_NO_HUGE_PAGES |
				 DIRTY_CREATE_SOURCE_IOMMU |
				 DIRTY_CREATE_SOURCE_DEVICE |
				 DIRTY_CREATE_ALL_DIRTY)))
		return -EINVAL;
	r = device_name_check(device);
	if (r < 0)
		return r;
	strcpy(req.create_domain.device, device);
	r = dirty_call(d, &req, PROTO_CREATE_DOMAIN_REPLY, &m);
	if (r < 0)
		return r;
	*domain_id = m.create_domain_reply.domain_id;
	if (dev_id)
		*dev_id = m.create_domain_reply.dev_id;
	return 0;
}

static int dirty_device_op(struct dirty *d, uint16_t type, uint32_t domain_id,
			   const char *device, struct proto_msg *m)
{
	struct proto_msg req = {
		.type = type,
		.device_op.domain_id = domain_id,
	};
	int r;

	if (!d)
		return -EINVAL;
	r = device_name_check(device);
	if (r < 0)
		return r;
	strcpy(req.device_op.device, device);
	return dirty_call(d, &req, type == PROTO_ATTACH_DEVICE ?
			  PROTO_ATTACH_DEVICE_REPLY : PROTO_OK, m);
}

int dirty_domain_attach(struct dirty *d, uint32_t domain_id,
			const char *device, uint32_t *dev_id)
{
	struct proto_msg m;
	int r;

	r = dirty_device_op(d, PROTO_ATTACH_DEVICE, domain_id, device, &m);
	if (r < 0)
		return r;
	if (dev_id)
		*dev_id = m.attach_device_reply.dev_id;
	return 0;
}

int dirty_domain_detach(struct dirty *d, uint32_t domain_id,
			const char *device)
{
	struct proto_msg m;

	return dirty_device_op(d, PROTO_DETACH_DEVICE, domain_id, device, &m);
}

static int dirty_domain_op(struct dirty *d, uint16_t type, uint32_t domain_id)
{
	struct proto_msg req = {
		.type = type,
		.domain_op.domain_id = domain_id,
	};

	if (!d)
		return -EINVAL;
	return dirty_call_ok(d, &req);
}

int dirty_domain_destroy(struct dirty *d, uint32_t domain_id)
{
	int r = dirty_domain_op(d, PROTO_DESTROY_DOMAIN, domain_id);

	if (r == 0)
		sub_remove(d, domain_id);
	return r;
}

static int dirty_range_op(struct dirty *d, uint16_t type, uint32_t domain_id,
			  uint32_t flags, uint64_t iova, uint64_t length)
{
	struct proto_msg req = {
		.type = type,
		.map = {
			.domain_id = domain_id,
			.flags = flags,
			.iova = iova,
			.length = length,
		},
	};

	if (!d || !length || iova + length < iova)
		return -EINVAL;
	return dirty_call_ok(d, &req);
}

int dirty_map(struct dirty *d, uint32_t domain_id, uint64_t iova,
	      uint64_t length, uint32_t flags)
{
	if (flags & ~(uint32_t)(DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE |
				DIRTY_MAP_EXTERNAL))
		return -EINVAL;
	if (!(flags & (DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE)))
		flags |= DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE;
	return dirty_range_op(d, PROTO_MAP, domain_id, flags, iova, length);
}

int dirty_unmap(struct dirty *d, uint32_t domain_id, uint64_t iova,
		uint64_t length)
{
	return dirty_range_op(d, PROTO_UNMAP, domain_id, 0, iova, length);
}

int dirty_unmap_flags(struct dirty *d, uint32_t domain_id, uint64_t iova,
		      uint64_t length, uint32_t flags)
{
	if (flags & ~(uint32_t)DIRTY_MAP_EXTERNAL)
		return -EINVAL;
	return dirty_range_op(d, PROTO_UNMAP, domain_id, flags, iova, length);
}

int dirty_dma_write(struct dirty *d, uint32_t domain_id, uint64_t iova,
		    uint64_t length)
{
	return dirty_range_op(d, PROTO_DMA_WRITE, domain_id, 0, iova, length);
}

int dirty_track_start(struct dirty *d, uint32_t domain_id)
{
	return dirty_domain_op(d, PROTO_TRACK_START, domain_id);
}

int dirty_track_stop(struct dirty *d, uint32_t domain_id)
{
	return dirty_domain_op(d, PROTO_TRACK_STOP, domain_id);
}

/* ---- subscriptions ---- */

/* SUBSCRIBE; @info (checked by the caller) and @page_size may be NULL. */
static int dirty_subscribe_call(struct dirty *d, uint32_t domain_id,
				uint32_t interval_ms, uint32_t flags,
				struct dirty_subscription_info *info,
				uint64_t *page_size)
{
	struct proto_msg m, req = {
		.type = PROTO_SUBSCRIBE,
		.subscribe = {
			.domain_id = domain_id,
			.interval_ms = interval_ms,
			.flags = flags,
		},
	};
	int r;

	r = dirty_call(d, &req, PROTO_SUBSCRIBE_REPLY, &m);
	if (r < 0)
		return r;
	if (info) {
		struct dirty_subscription_info full = {
			.size = sizeof(full),
			.domain_id = m.subscribe_reply.domain_id,
			.page_size = m.subscribe_reply.page_size,
			.max_leaf = m.subscribe_reply.max_leaf,
			.generation = m.subscribe_reply.generation,
		};

		out_fill(info, &full, sizeof(full));
	}
	if (page_size)
		*page_size = m.subscribe_reply.page_size;
	return 0;
}

int dirty_subscribe(struct dirty *d, uint32_t domain_id, uint32_t interval_ms,
		    uint32_t flags, struct dirty_subscription_info *info)
{
	int r;

	uint64_t page_size = 0;

	if (!d || (flags & ~(uint32_t)DIRTY_SUBSCRIBE_CLEAN) ||
	    (info && out_check(info, SUBSCRIPTION_INFO_SIZE_1_0) < 0))
		return -EINVAL;
	/* room first: a subscription dirtyd holds must be remembered */
	r = sub_reserve(d);
	if (r < 0)
		return r;
	r = dirty_subscribe_call(d, domain_id, interval_ms, flags, info,
				 &page_size);
	if (r == 0 || (r == -EEXIST && !sub_find(d, domain_id)))
		sub_add(d, domain_id, interval_ms, flags, page_size);
	return r;
}

int dirty_unsubscribe(struct dirty *d, uint32_t domain_id)
{
	int r = dirty_domain_op(d, PROTO_UNSUBSCRIBE, domain_id);

	if (r == 0 || r == -ENOENT)
		sub_remove(d, domain_id);
	return r;
}

/*
 * The session was lost: subscribe again without DIRTY_SUBSCRIBE_CLEAN, so
 * that every mapped page is pending (dirtyd knows the mappings).
 */
static int dirty_resubscribe(struct dirty *d, struct dirty_sub *s)
{
	uint32_t domain_id = s->domain_id;
	struct proto_msg req = {
		.type = PROTO_UNSUBSCRIBE,
		.domain_op.domain_id = domain_id,
	};
	int r;

	r = dirty_call_ok(d, &req);
	if (r < 0 && r != -ENOENT)
		return r;
	r = dirty_subscribe_call(d, domain_id, s->interval_ms,
				 s->flags & ~(uint32_t)DIRTY_SUBSCRIBE_CLEAN,
				 NULL, &s->page_size);
	if (r < 0)
		return r;
	s->lost = false;
	return 0;
}

/* Before a call about @domain_id: a subscription the session lost is made
 * again. */
static int sub_restore(struct dirty *d, uint32_t domain_id)
{
	struct dirty_sub *s = sub_find(d, domain_id);

	return s && s->lost ? dirty_resubscribe(d, s) : 0;
}

int dirty_sync(struct dirty *d, uint32_t domain_id, uint64_t *generation,
	       uint64_t *pending_pages)
{
	struct proto_msg m, req = {
		.type = PROTO_SYNC,
		.domain_op.domain_id = domain_id,
	};
	int r;

	if (!d)
		return -EINVAL;
	r = sub_restore(d, domain_id);
	if (r < 0)
		return r;
	r = dirty_call(d, &req, PROTO_SYNC_REPLY, &m);
	if (r < 0)
		return r;
	if (generation)
		*generation = m.sync_reply.generation;
	if (pending_pages)
		*pending_pages = m.sync_reply.pending_pages;
	return 0;
}

int dirty_ack(struct dirty *d, uint32_t domain_id, uint64_t generation)
{
	struct proto_msg req = {
		.type = PROTO_ACK,
		.ack = {
			.domain_id = domain_id,
			.generation = generation,
		},
	};

	if (!d)
		return -EINVAL;
	return dirty_call_ok(d, &req);
}

/* ---- ranges ---- */

struct ranges_state {
	dirty_range_fn fn;
	void *ctx;
	int fn_ret;		/* what fn returned, once non-zero */
	uint64_t next;		/* pages below this were reported */
	bool started;
	uint64_t run_first;	/* a run waiting to be merged or reported */
	uint64_t run_count;
	uint64_t pages;
};

/* Report a run. */
static int ranges_report(struct ranges_state *st, uint64_t first,
			 uint64_t count)
{
	st->fn_ret = st->fn(st->ctx, first, count);
	return st->fn_ret ? -ECANCELED : 0;
}

/* Report the held run. */
static int ranges_flush(struct ranges_state *st)
{
	uint64_t count = st->run_count;

	if (!count || st->fn_ret)
		return 0;
	st->run_count = 0;
	return ranges_report(st, st->run_first, count);
}

/*
 * chunk_batch_fn: check the order, merge adjacent runs, report.  Within a
 * chunk the runs come in order, none touching the next (chunk.h): only a
 * batch's first run can merge with the run held from the chunk (or the
 * packet) before, or be out of order; its last is held in turn.
 */
static int ranges_batch(void *ctx, const struct extent *runs, size_t n)
{
	struct ranges_state *st = ctx;
	size_t i = 0;

	if (st->started && runs[0].first < st->next)
		return -EBADMSG;	/* out of order or overlapping */
	st->started = true;
	st->next = runs[n - 1].first + runs[n - 1].count;
	if (st->run_count && st->run_first + st->run_count == runs[0].first) {
		st->run_count += runs[0].count;
		st->pages += runs[0].count;
		if (n == 1)
			return 0;
		i = 1;
	}
	if (ranges_flush(st) < 0)
		return -ECANCELED;
	for (; i + 1 < n; i++) {
		st->pages += runs[i].count;
		if (ranges_report(st, runs[i].first, runs[i].count) < 0)
			return -ECANCELED;
	}
	st->pages += runs[n - 1].count;
	st->run_first = runs[n - 1].first;
	st->run_count = runs[n - 1].count;
	return 0;
}

int dirty_ranges(struct dirty *d, uint32_t domain_id, uint32_t flags,
		 dirty_range_fn fn, void *ctx, uint64_t *generation)
{
	struct ranges_state st = { .fn = fn, .ctx = ctx };
	struct proto_msg m, req = {
		.type = PROTO_GET_RANGES,
		.get_ranges = {
			.domain_id = domain_id,
			.flags = flags & DIRTY_RANGES_RESEND,
		},
	};
	uint64_t gen = 0, total = 0;
	int r, err = 0;

	if (!d || !fn || (flags & ~(uint32_t)DIRTY_RANGES_FLAGS))
		return -EINVAL;
	r = sub_restore(d, domain_id);
	if (r < 0)
		return r;
	r = dirty_start(d, &req);
	if (r < 0)
		return r;
	/* Read the whole stream even after an error: its packets must not
	 * be taken for the answer of a later call (they would be dropped
	 * as stale anyway, but reading them keeps the socket drained). */
	for (uint32_t seq = 0;; seq++) {
		r = dirty_recv_answer(d, req.id, &m, NULL);
		if (r < 0)
			return r;
		if (m.type == PROTO_ERROR)
			return err ? err : dirty_error(d, &m);
		if (m.type != PROTO_RANGES)
			return -EPROTO;
		if (seq == 0) {
			gen = m.ranges.generation;
			total = m.ranges.total_pages;
		}
		if (!err && (m.ranges.seq != seq || m.ranges.domain_id !=
			     domain_id || m.ranges.generation != gen ||
			     m.ranges.total_pages != total))
			err = -EBADMSG;
		if (!err && !st.fn_ret) {
			/* the packet's one pass: checked as it is read */
			r = proto_ranges_decode(&m.ranges, d->runs,
						CHUNK_MAX_PAIRS, ranges_batch,
						&st);
			if (r < 0 && r != -ECANCELED)
				err = r;
		}
		if (!(m.flags & PROTO_F_MORE))
			break;
	}
	if (err)
		return err;
	if (!st.fn_ret && st.pages != total)
		return -EBADMSG;
	ranges_flush(&st);
	if (st.fn_ret)
		return st.fn_ret;
	if (generation)
		*generation = gen;
	if (flags & DIRTY_RANGES_ACK)
		return dirty_ack(d, domain_id, gen);
	return 0;
}

/* ---- ranges into a little-endian bitmap ---- */

#define ULONG_BITS (sizeof(unsigned long) * 8)

struct lebitmap_state {
	unsigned long *map;
	uint64_t iova;		/* the window [iova, end) */
	uint64_t end;
	uint64_t page_size;	/* bytes per bit */
	uint64_t domain_page;	/* bytes per page of a run */
	bool outside;		/* a run reached beyond the window */
};

/* @v, a native word, stored as the bitmap's little-endian word. */
static unsigned long ulong_le(unsigned long v)
{
	if (sizeof(v) == sizeof(uint64_t))
		return (unsigned long)htole64((uint64_t)v);
	return (unsigned long)htole32((uint32_t)v);
}

/* OR bits [a, b) into the little-endian bitmap @map. */
static void lebitmap_set(unsigned long *map, uint64_t a, uint64_t b)
{
	while (a < b) {
		uint64_t w = a / ULONG_BITS;
		unsigned int lo = (unsigned int)(a % ULONG_BITS);
		uint64_t n = b - a;
		unsigned long mask;

		if (n >= ULONG_BITS - lo) {
			n = ULONG_BITS - lo;
			mask = ~0UL << lo;
		} else {
			mask = ((1UL << n) - 1) << lo;
		}
		map[w] |= ulong_le(mask);
		a += n;
	}
}

/* dirty_range_fn: the run's bytes, clipped to the window, rounded out to
 * whole bits. */
static int lebitmap_run(void *ctx, uint64_t first, uint64_t npages)
{
	struct lebitmap_state *st = ctx;
	uint64_t a, b, lo, hi;

	if (__builtin_mul_overflow(first, st->domain_page, &a))
		a = UINT64_MAX;
	if (__builtin_mul_overflow(first + npages, st->domain_page, &b) ||
	    first + npages < first)
		b = UINT64_MAX;
	if (a < st->iova || b > st->end)
		st->outside = true;
	lo = a > st->iova ? a : st->iova;
	hi = b < st->end ? b : st->end;
	if (lo < hi)
		lebitmap_set(st->map, (lo - st->iova) / st->page_size,
			     (hi - st->iova - 1) / st->page_size + 1);
	return 0;
}

/* The domain's page size: its subscription's, else LIST_DOMAINS's (a
 * resumed session's subscriptions came back without it). */
static int domain_page_size(struct dirty *d, uint32_t domain_id,
			    uint64_t *page_size)
{
	struct dirty_sub *s = sub_find(d, domain_id);
	struct dirty_domain **list;
	size_t n;
	int r;

	if (s && s->page_size) {
		*page_size = s->page_size;
		return 0;
	}
	r = dirty_list_domains(d, &list, &n);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (list[i]->domain_id == domain_id) {
			*page_size = list[i]->page_size;
			r = *page_size ? 0 : -EPROTO;
			break;
		}
	free(list);
	return r;
}

int dirty_ranges_lebitmap(struct dirty *d, uint32_t domain_id, uint32_t flags,
			  uint64_t iova, uint64_t length, uint64_t page_size,
			  unsigned long *bitmap, uint64_t *generation)
{
	struct lebitmap_state st = {
		.map = bitmap,
		.iova = iova,
		.end = iova + length,
		.page_size = page_size,
	};
	uint64_t gen = 0;
	int r;

	if (!d || !bitmap || (flags & ~(uint32_t)DIRTY_RANGES_FLAGS) ||
	    !page_size || (page_size & (page_size - 1)) ||
	    iova % page_size || !length || length % page_size ||
	    st.end < iova || !st.end)
		return -EINVAL;
	r = domain_page_size(d, domain_id, &st.domain_page);
	if (r < 0)
		return r;
	r = dirty_ranges(d, domain_id, flags & ~(uint32_t)DIRTY_RANGES_ACK,
			 lebitmap_run, &st, &gen);
	if (r < 0)
		return r;
	if (generation)
		*generation = gen;
	if (st.outside)
		return -ERANGE;
	if (flags & DIRTY_RANGES_ACK)
		return dirty_ack(d, domain_id, gen);
	return 0;
}

/* ---- events ---- */

int dirty_next_event(struct dirty *d, struct dirty_event *ev)
{
	struct dirty_packet p;
	struct proto_msg m;
	int r;

	if (!d || !ev || out_check(ev, EVENT_SIZE_1_0) < 0)
		return -EINVAL;
	d->has_error_text = false;
	while (!d->ev_count) {
		if (d->fd < 0)
			return -ENOTCONN;
		r = dirty_recv(d, &p, false, 0);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return r;
		close_fds(p.fds, p.nfds);
		r = proto_decode(d->buf, p.len, &m);
		if (r < 0 || m.id != 0)
			continue;	/* undecodable, or a stale answer */
		if (m.type == PROTO_ERROR)
			return dirty_error(d, &m);
		if (m.type == PROTO_EV_ROUND || m.type == PROTO_EV_STATE_LOST)
			event_received(d, &m);
	}
	out_fill(ev, &d->events[d->ev_head], sizeof(*ev));
	d->ev_head = (d->ev_head + 1) % DIRTY_EVENTS_MAX;
	d->ev_count--;
	return 1;
}

/* ---- descriptors ---- */

/*
 * One allocation, as dirty_fds_free() releases it (list_block()): the
 * struct, the pointers to the devices, the devices, every descriptor -1.
 */
static struct dirty_fds *fds_alloc(size_t n)
{
	struct dirty_fds *fds;
	void **ptrs;
	void *items;

	fds = list_block(sizeof(*fds), n, sizeof(struct dirty_fd_device),
			 &ptrs, &items);
	if (!fds)
		return NULL;
	*fds = (struct dirty_fds){
		.size = sizeof(*fds),
		.iommufd = -1,
		.n_devices = n,
		.devices = (struct dirty_fd_device **)ptrs,
	};
	for (size_t i = 0; i < n; i++)
		*fds->devices[i] = (struct dirty_fd_device){
			.size = sizeof(struct dirty_fd_device),
			.fd = -1,
		};
	return fds;
}

int dirty_get_fds(struct dirty *d, uint32_t domain_id, struct dirty_fds **out)
{
	struct proto_msg m, req = {
		.type = PROTO_GET_FDS,
		.domain_op.domain_id = domain_id,
	};
	struct dirty_packet *p;
	struct dirty_fds *fds = NULL;
	int r;

	if (!d || !out)
		return -EINVAL;
	d->has_error_text = false;
	if (d->fd < 0)
		return -ENOTCONN;
	if (!(d->session.features & PROTO_FEAT_FD_PASSING))
		return -EOPNOTSUPP;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	r = dirty_send(d, &req);
	if (r < 0)
		goto out;
	r = dirty_recv_answer(d, req.id, &m, p);
	if (r < 0)
		goto out;
	if (m.type == PROTO_ERROR) {
		r = dirty_error(d, &m);
		goto out;
	}
	if (m.type != PROTO_GET_FDS_REPLY || (m.flags & PROTO_F_MORE) ||
	    p->nfds != m.list.count + 1) {
		r = -EPROTO;
		goto out;
	}
	fds = fds_alloc(m.list.count);
	if (!fds) {
		r = -ENOMEM;
		goto out;
	}
	fds->iommufd = p->fds[0];
	p->fds[0] = -1;
	fds->ioas_id = m.list.ioas_id;
	fds->hwpt_id = m.list.hwpt_id;
	for (uint32_t i = 0; i < m.list.count; i++) {
		struct dirty_fd_device *dev = fds->devices[i];
		struct proto_fd_device pd;

		proto_fd_device_at(&m, i, &pd);
		if (pd.fd_index == 0 || pd.fd_index >= p->nfds ||
		    p->fds[pd.fd_index] < 0) {
			r = -EPROTO;
			goto out;
		}
		memcpy(dev->name, pd.name, sizeof(dev->name));
		dev->name[sizeof(dev->name) - 1] = '\0';
		dev->dev_id = pd.dev_id;
		dev->fd = p->fds[pd.fd_index];
		p->fds[pd.fd_index] = -1;
	}
	*out = fds;
	fds = NULL;
	r = 0;
out:
	dirty_fds_free(fds);
	close_fds(p->fds, p->nfds);
	free(p);
	return r;
}

void dirty_fds_free(struct dirty_fds *fds)
{
	if (!fds)
		return;
	if (fds->iommufd >= 0)
		close(fds->iommufd);
	for (size_t i = 0; i < fds->n_devices; i++)
		if (fds->devices[i]->fd >= 0)
			close(fds->devices[i]->fd);
	free(fds);
}

/* ---- metrics ---- */

int dirty_metrics(struct dirty *d, uint32_t domain_id, char **text,
		  size_t *len)
{
	struct proto_msg m, req = {
		.type = PROTO_METRICS,
		.domain_op.domain_id = domain_id,
	};
	char *buf = NULL, *nb;
	size_t n = 0;
	int r;

	if (!d || !text)
		return -EINVAL;
	r = dirty_start(d, &req);
	if (r < 0)
		return r;
	for (uint32_t seq = 0;; seq++) {
		r = dirty_recv_answer(d, req.id, &m, NULL);
		if (r < 0)
			goto fail;
		if (m.type == PROTO_ERROR && !seq) {
			r = dirty_error(d, &m);
			goto fail;
		}
		if (m.type != PROTO_METRICS_REPLY || m.metrics.seq != seq) {
			r = -EPROTO;
			goto fail;
		}
		nb = realloc(buf, n + m.metrics.text_len + 1);
		if (!nb) {
			r = -ENOMEM;
			goto fail;
		}
		buf = nb;
		memcpy(buf + n, m.metrics.text, m.metrics.text_len);
		n += m.metrics.text_len;
		buf[n] = '\0';
		if (!(m.flags & PROTO_F_MORE))
			break;
	}
	*text = buf;
	if (len)
		*len = n;
	return 0;
fail:
	free(buf);
	return r;
}

/* ---- for adopt.c (dirty_private.h) ---- */

uint64_t libdirty_features(const struct dirty *d)
{
	return d->session.features;
}

int libdirty_call_packet(struct dirty *d, uint8_t *pkt, size_t len,
			 const int *fds, unsigned int nfds, uint16_t reply_type,
			 struct proto_msg *m, struct dirty_packet *p)
{
	uint64_t id;
	int r;

	d->has_error_text = false;
	p->nfds = 0;
	if (d->fd < 0)
		return -ENOTCONN;
	if (nfds > DIRTY_FDS_MAX || len < PROTO_HEADER_SIZE)
		return -EINVAL;
	id = ++d->next_id;
	wire_put_le64(pkt + 8, id);
	r = proto_send_fds(d->fd, pkt, len, fds, nfds, 0);
	if (r < 0)
		return r == -EMSGSIZE ? -EIO : r;
	r = dirty_recv_answer(d, id, m, p);
	if (r < 0) {
		p->nfds = 0;	/* closed on the way, if any */
		return r;
	}
	if (m->type == PROTO_ERROR) {
		close_fds(p->fds, p->nfds);
		p->nfds = 0;
		return dirty_error(d, m);
	}
	if (m->type != reply_type || (m->flags & PROTO_F_MORE)) {
		close_fds(p->fds, p->nfds);
		p->nfds = 0;
		return -EPROTO;
	}
	return 0;
}
