// SPDX-License-Identifier: MIT
/*
 * The soak's clients: one non-blocking connection each, one request in
 * flight at a time, everything through the codec (protocol/proto.h) and
 * the chunk decoder.  Every packet is checked: it decodes, it answers the
 * request in flight (or is an event), a RANGES stream has its seq from 0
 * without a gap, the same generation and total in every packet, and its
 * chunks add up to that total.  Anything else is a violation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol/chunk.h"
#include "tests/soak/soak.h"

#define SLOW_TICK_NS (50 * 1000000ULL)	/* a slow reader wakes this often */
#define SLOW_PACKETS 4			/* and reads at most this many */
#define FAST_PACKETS 64			/* per readiness, for fairness */
#define MAX_NOTES 40

enum soak_state {
	C_DOWN,		/* no connection; reconnect at next_ns */
	C_HELLO,
	C_SUBSCRIBE,	/* SUBSCRIBE of domain sub_next + 1 in flight */
	C_IDLE,
	C_RANGES,	/* GET_RANGES in flight, its stream arriving */
	C_ACK,
	C_LIST,		/* monitor: LIST_DOMAINS in flight */
	C_MUTE,		/* never reads nor sends again */
};

struct soak_client {
	struct soak *s;
	unsigned int idx;
	enum soak_kind kind;
	enum soak_state state;
	int fd;
	uint32_t events;	/* registered epoll mask; 0: not registered */
	bool resumable;		/* negotiates PROTO_FEAT_RESUME */
	uint64_t token;
	uint64_t next_id;
	uint64_t req_id;
	uint16_t req_type;
	uint32_t req_dom;
	/* the RANGES stream arriving */
	uint32_t seq;
	uint64_t st_gen, st_total, st_pages;
	unsigned int sub_next;
	uint64_t ready;		/* bit d-1: domain d has something to read */
	uint64_t resend;	/* bit d-1: next GET_RANGES of d resends */
	unsigned int rr;
	uint64_t next_ns;	/* C_DOWN: reconnect; slow: next wake-up */
	uint64_t leave_ns;	/* resume, churn: when to hang up */
	unsigned int budget;	/* slow: packets it may still read */
	uint8_t out[256];	/* a request waiting for EPOLLOUT */
	size_t out_len;
	uint32_t rng;
};

static uint8_t rx_buf[PROTO_MAX_MSG];
static unsigned int notes;

uint64_t soak_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void soak_note(struct soak *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!s->first_error[0])
		snprintf(s->first_error, sizeof(s->first_error), "%s", buf);
	if (notes++ < MAX_NOTES)
		fprintf(stderr, "soak: %s\n", buf);
	else if (notes == MAX_NOTES + 1)
		fprintf(stderr, "soak: (further problems not printed)\n");
}

const char *soak_kind_name(enum soak_kind k)
{
	static const char *const names[SOAK_NKINDS] = {
		[SOAK_FAST] = "fast", [SOAK_SLOW] = "slow",
		[SOAK_MUTE] = "mute", [SOAK_RESUME] = "resume",
		[SOAK_CHURN] = "churn", [SOAK_MONITOR] = "monitor",
	};

	return k < SOAK_NKINDS ? names[k] : "?";
}

unsigned int soak_kind_count(const struct soak *s, enum soak_kind k)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < s->nclients; i++)
		n += s->clients[i].kind == k;
	return n;
}

static uint32_t rnd(struct soak_client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

/* Uniform in [lo, hi) milliseconds, as nanoseconds. */
static uint64_t rnd_ms(struct soak_client *c, unsigned int lo,
		       unsigned int hi)
{
	return (lo + rnd(c) % (hi - lo)) * 1000000ULL;
}

/* The domains @c subscribes to, as bits d - 1. */
static uint64_t all_domains(const struct soak_client *c)
{
	uint64_t mask = 0;

	for (unsigned int j = 0; j < c->s->o.subs_per_client; j++)
		mask |= 1ULL << ((c->idx + j) % c->s->o.domains);
	return mask;
}

/* ------------------------------------------------------------ epoll */

static void client_want(struct soak_client *c)
{
	struct soak *s = c->s;
	uint32_t want = 0;
	struct epoll_event ev = { .data.ptr = c };

	if (c->fd >= 0 && c->state != C_MUTE) {
		if (c->kind != SOAK_SLOW || c->budget)
			want |= EPOLLIN;
		if (c->out_len)
			want |= EPOLLOUT;
	}
	if (want == c->events)
		return;
	ev.events = want;
	if (!want)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	else if (!c->events)
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev);
	else
		epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = want;
}

/* ------------------------------------------------------------ life */

static void client_hang_up(struct soak_client *c, uint64_t now,
			   uint64_t reconnect_in)
{
	struct soak *s = c->s;

	if (c->fd < 0)
		return;
	if (c->events)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	close(c->fd);
	c->fd = -1;
	c->state = C_DOWN;
	c->out_len = 0;
	c->next_ns = now + reconnect_in;
	s->connected--;
}

static int client_send(struct soak_client *c, struct proto_msg *m)
{
	struct soak *s = c->s;
	int n;

	m->id = c->next_id++;
	n = proto_encode(m, c->out, sizeof(c->out));
	if (n < 0) {
		soak_note(s, "client %u: encoding %s failed: %s", c->idx,
			  proto_type_name(m->type), strerror(-n));
		s->c.violations++;
		return n;
	}
	c->req_id = m->id;
	c->req_type = m->type;
	s->c.requests++;
	if (send(c->fd, c->out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    n) {
		c->out_len = 0;
		return 0;
	}
	if (errno == EAGAIN) {
		c->out_len = (size_t)n;
		s->c.send_blocked++;
		client_want(c);
		return 0;
	}
	soak_note(s, "client %u (%s): sending %s failed: %s", c->idx,
		  soak_kind_name(c->kind), proto_type_name(m->type),
		  strerror(errno));
	s->c.violations++;
	client_hang_up(c, soak_now_ns(), 1000000000ULL);
	return -EPIPE;
}

static void client_connect(struct soak_client *c, uint64_t now)
{
	struct soak *s = c->s;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct proto_msg m = {
		.type = PROTO_HELLO,
		.hello = {
			.major = PROTO_VERSION_MAJOR,
			.minor = PROTO_VERSION_MINOR,
			.features = PROTO_FEAT_RANGES_RAW | PROTO_FEAT_EVENTS,
		},
	};
	int fd;

	strcpy(sa.sun_path, s->sock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		soak_note(s, "client %u: connect: %s", c->idx,
			  strerror(errno));
		s->c.violations++;
		if (fd >= 0)
			close(fd);
		c->next_ns = now + 1000000000ULL;
		return;
	}
	c->fd = fd;
	c->events = 0;
	c->budget = SLOW_PACKETS;
	s->connected++;
	if (s->connected > s->max_connected)
		s->max_connected = s->connected;
	s->c.connects++;
	if (c->kind == SOAK_MONITOR)
		m.hello.features = 0;
	if (c->resumable) {
		m.hello.features |= PROTO_FEAT_RESUME;
		/* only the resume kind comes back for its session */
		if (c->kind == SOAK_RESUME)
			m.hello.resume_token = c->token;
	}
	c->state = C_HELLO;
	c->ready = 0;
	c->resend = 0;
	if (c->kind == SOAK_RESUME)
		c->leave_ns = now + rnd_ms(c, 2000, 6000);
	else if (c->kind == SOAK_CHURN)
		c->leave_ns = now + rnd_ms(c, 1000, 4000);
	client_want(c);
	client_send(c, &m);
}

static void client_subscribe_next(struct soak_client *c)
{
	/* client i takes domains i, i + 1, ... (mod the domains) */
	uint32_t dom = (c->idx + c->sub_next) % c->s->o.domains + 1;
	struct proto_msg m = {
		.type = PROTO_SUBSCRIBE,
		.subscribe = {
			.domain_id = dom,
			.interval_ms = c->s->o.interval_ms,
		},
	};

	c->state = C_SUBSCRIBE;
	c->req_dom = dom;
	client_send(c, &m);
}

/* Idle: read the next domain that has something, round robin. */
static void client_kick(struct soak_client *c)
{
	struct soak *s = c->s;
	struct proto_msg m = { .type = PROTO_GET_RANGES };
	unsigned int n = s->o.domains;

	if (c->state != C_IDLE || !c->ready || c->kind == SOAK_MONITOR)
		return;
	for (unsigned int i = 1; i <= n; i++) {
		unsigned int d = (c->rr + i) % n;

		if (!(c->ready & (1ULL << d)))
			continue;
		c->rr = d;
		c->ready &= ~(1ULL << d);
		m.get_ranges.domain_id = d + 1;
		if (c->resend & (1ULL << d)) {
			m.get_ranges.flags = PROTO_RANGES_RESEND;
			c->resend &= ~(1ULL << d);
		}
		c->req_dom = d + 1;
		c->state = C_RANGES;
		c->seq = 0;
		client_send(c, &m);
		return;
	}
}

/* Every domain subscribed: what each kind does next. */
static void client_subscribed(struct soak_client *c)
{
	struct proto_msg m = {
		.type = PROTO_GET_RANGES,
		.get_ranges = { .domain_id = c->idx % c->s->o.domains + 1 },
	};

	if (c->kind == SOAK_MUTE) {
		/* one stream asked for and never read: dirtyd holds it */
		if (client_send(c, &m) < 0)
			return;
		c->state = C_MUTE;
		client_want(c);
		return;
	}
	/* a new subscription starts with every mapped page pending */
	c->ready = all_domains(c);
	c->state = C_IDLE;
	client_kick(c);
}

/* ------------------------------------------------------------ input */

static int count_run(void *ctx, uint64_t first, uint64_t count)
{
	*(uint64_t *)ctx += count;
	return 0;
}

static void client_ranges(struct soak_client *c, const struct proto_msg *m)
{
	struct soak *s = c->s;
	const struct proto_ranges *r = &m->ranges;
	uint64_t pages = 0;
	size_t off = 0;

	if (c->state != C_RANGES || r->domain_id != c->req_dom ||
	    r->seq != c->seq ||
	    (c->seq && (r->generation != c->st_gen ||
			r->total_pages != c->st_total))) {
		soak_note(s, "client %u: RANGES domain %u seq %u gen %llu "
			  "total %llu out of place (state %d, domain %u, seq "
			  "%u)", c->idx, r->domain_id, r->seq,
			  (unsigned long long)r->generation,
			  (unsigned long long)r->total_pages, c->state,
			  c->req_dom, c->seq);
		s->c.violations++;
		return;
	}
	if (!c->seq) {
		c->st_gen = r->generation;
		c->st_total = r->total_pages;
		c->st_pages = 0;
	}
	c->seq++;
	while (off < r->chunks_len) {
		int n = chunk_decode(r->chunks + off, r->chunks_len - off,
				     count_run, &pages);

		if (n <= 0) {
			soak_note(s, "client %u: a malformed chunk", c->idx);
			s->c.violations++;
			return;
		}
		off += (size_t)n;
	}
	c->st_pages += pages;
	if (m->flags & PROTO_F_MORE)
		return;
	if (c->st_pages != c->st_total) {
		soak_note(s, "client %u: domain %u generation %llu: chunks "
			  "hold %llu pages, total_pages says %llu", c->idx,
			  c->req_dom, (unsigned long long)c->st_gen,
			  (unsigned long long)c->st_pages,
			  (unsigned long long)c->st_total);
		s->c.violations++;
	}
	s->c.streams++;
	s->c.pages += c->st_pages;
	s->c.kind_streams[c->kind]++;
	s->c.kind_pages[c->kind] += c->st_pages;
	{
		struct proto_msg ack = {
			.type = PROTO_ACK,
			.ack = { .domain_id = c->req_dom,
				 .generation = c->st_gen },
		};

		c->state = C_ACK;
		client_send(c, &ack);
	}
}

static void client_hello_reply(struct soak_client *c,
			       const struct proto_hello_reply *h)
{
	struct soak *s = c->s;
	uint64_t had = c->kind == SOAK_RESUME ? c->token : 0;

	c->token = h->session_token;
	if (c->kind == SOAK_MONITOR) {
		c->state = C_IDLE;
		return;
	}
	if (had && (h->session_flags & PROTO_SESSION_RESUMED)) {
		s->c.resumes++;
		/* what was unacknowledged is pending again; resend anyway */
		c->ready = c->resend = all_domains(c);
		c->state = C_IDLE;
		client_kick(c);
		return;
	}
	if (had) {
		s->c.resumes_lost++;
		soak_note(s, "client %u: resuming with its token: STATE_LOST "
			  "(flags %#x)", c->idx, h->session_flags);
	}
	c->sub_next = 0;
	client_subscribe_next(c);
}

static void client_packet(struct soak_client *c, const uint8_t *buf,
			  size_t len, uint64_t now)
{
	struct soak *s = c->s;
	struct proto_msg m;
	int r = proto_decode(buf, len, &m);

	if (r < 0) {
		soak_note(s, "client %u: a packet of %zu bytes does not "
			  "decode: %s", c->idx, len, strerror(-r));
		s->c.violations++;
		return;
	}
	if (m.type == PROTO_EV_ROUND) {
		s->c.ev_rounds++;
		if (m.ev_round.domain_id >= 1 &&
		    m.ev_round.domain_id <= s->o.domains)
			c->ready |= 1ULL << (m.ev_round.domain_id - 1);
		client_kick(c);
		return;
	}
	if (m.type == PROTO_EV_STATE_LOST) {
		s->c.ev_lost++;
		soak_note(s, "client %u: EV_STATE_LOST for domain %u",
			  c->idx, m.ev_round.domain_id);
		if (m.ev_round.domain_id >= 1 &&
		    m.ev_round.domain_id <= s->o.domains)
			c->ready |= 1ULL << (m.ev_round.domain_id - 1);
		client_kick(c);
		return;
	}
	if (m.id != c->req_id) {
		soak_note(s, "client %u: %s for request %llu, %llu in flight",
			  c->idx, proto_type_name(m.type),
			  (unsigned long long)m.id,
			  (unsigned long long)c->req_id);
		s->c.violations++;
		return;
	}
	if (m.type == PROTO_ERROR) {
		s->c.errors++;
		soak_note(s, "client %u (%s): %s of domain %u: ERROR %u: %.*s",
			  c->idx, soak_kind_name(c->kind),
			  proto_type_name(c->req_type), c->req_dom,
			  m.error.err, (int)m.error.text_len, m.error.text);
		if (c->state == C_SUBSCRIBE &&
		    ++c->sub_next < s->o.subs_per_client) {
			client_subscribe_next(c);
			return;
		}
		if (c->state == C_SUBSCRIBE) {
			client_subscribed(c);
			return;
		}
		c->state = C_IDLE;
		client_kick(c);
		return;
	}
	if (m.type != PROTO_RANGES || !(m.flags & PROTO_F_MORE))
		s->c.replies++;
	switch (c->state) {
	case C_HELLO:
		if (m.type != PROTO_HELLO_REPLY)
			break;
		client_hello_reply(c, &m.hello_reply);
		return;
	case C_SUBSCRIBE:
		if (m.type != PROTO_SUBSCRIBE_REPLY ||
		    m.subscribe_reply.domain_id != c->req_dom)
			break;
		if (++c->sub_next < s->o.subs_per_client)
			client_subscribe_next(c);
		else
			client_subscribed(c);
		return;
	case C_RANGES:
		if (m.type != PROTO_RANGES)
			break;
		client_ranges(c, &m);
		return;
	case C_ACK:
		if (m.type != PROTO_OK)
			break;
		s->c.acks++;
		c->state = C_IDLE;
		client_kick(c);
		return;
	case C_LIST:
		if (m.type != PROTO_LIST_DOMAINS_REPLY)
			break;
		for (uint32_t i = 0; i < m.list.count; i++) {
			struct proto_domain d;

			proto_domain_at(&m, i, &d);
			if (d.domain_id >= 1 && d.domain_id <= SOAK_MAX_DOMAINS)
				s->gen[d.domain_id - 1] = d.generation;
			s->gen_subscribers += d.subscribers;
			s->gen_count++;
		}
		if (!(m.flags & PROTO_F_MORE)) {
			s->gen_ns = now;
			s->gen_fresh = true;
			c->state = C_IDLE;
		}
		return;
	default:
		break;
	}
	soak_note(s, "client %u (%s): unexpected %s in state %d", c->idx,
		  soak_kind_name(c->kind), proto_type_name(m.type), c->state);
	s->c.violations++;
}

static void client_read(struct soak_client *c, uint64_t now)
{
	struct soak *s = c->s;
	unsigned int max = c->kind == SOAK_SLOW ? c->budget : FAST_PACKETS;

	for (unsigned int i = 0; i < max && c->fd >= 0 &&
	     c->state != C_MUTE; i++) {
		ssize_t n = recv(c->fd, rx_buf, sizeof(rx_buf),
				 MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			if (!s->stopping) {
				soak_note(s, "client %u (%s): dirtyd closed "
					  "the connection (%s)", c->idx,
					  soak_kind_name(c->kind),
					  n ? strerror(errno) : "EOF");
				s->c.violations++;
			}
			client_hang_up(c, now, 1000000000ULL);
			return;
		}
		if ((size_t)n > sizeof(rx_buf)) {
			soak_note(s, "client %u: a %zd-byte packet", c->idx,
				  n);
			s->c.violations++;
			continue;
		}
		if (c->kind == SOAK_SLOW)
			c->budget--;
		client_packet(c, rx_buf, (size_t)n, now);
	}
	client_want(c);
}

void soak_client_event(struct soak *s, void *ptr, uint32_t events)
{
	struct soak_client *c = ptr;
	uint64_t now = soak_now_ns();

	if ((events & EPOLLOUT) && c->out_len && c->fd >= 0) {
		if (send(c->fd, c->out, c->out_len,
			 MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)c->out_len)
			c->out_len = 0;
		else if (errno != EAGAIN)
			soak_note(s, "client %u: send: %s", c->idx,
				  strerror(errno));
		client_want(c);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c, now);
}

/* ------------------------------------------------------------ time */

void soak_clients_tick(struct soak *s, uint64_t now)
{
	for (unsigned int i = 0; i < s->nclients; i++) {
		struct soak_client *c = &s->clients[i];

		if (c->state == C_DOWN) {
			if (now >= c->next_ns)
				client_connect(c, now);
			continue;
		}
		/* a resumer leaves only once subscribed everywhere (its
		 * session resumes to what it had) */
		if ((c->kind == SOAK_RESUME || c->kind == SOAK_CHURN) &&
		    now >= c->leave_ns && c->state != C_HELLO &&
		    (c->kind == SOAK_CHURN || c->state >= C_IDLE)) {
			/* mid-stream or not: that is the point */
			s->c.disconnects++;
			client_hang_up(c, now, c->kind == SOAK_RESUME ?
				       rnd_ms(c, 100, 300) :
				       rnd_ms(c, 50, 500));
			continue;
		}
		if (c->kind == SOAK_SLOW && now >= c->next_ns) {
			c->next_ns = now + SLOW_TICK_NS;
			c->budget = SLOW_PACKETS;
			client_want(c);
		}
	}
}

bool soak_monitor_poll(struct soak *s)
{
	struct soak_client *c = s->monitor;
	struct proto_msg m = { .type = PROTO_LIST_DOMAINS };

	if (c->state != C_IDLE)
		return false;
	s->gen_count = 0;
	s->gen_subscribers = 0;
	s->gen_fresh = false;
	c->state = C_LIST;
	client_send(c, &m);
	return true;
}

/* ------------------------------------------------------------ setup */

int soak_clients_init(struct soak *s)
{
	unsigned int n = s->o.clients;
	unsigned int counts[SOAK_NKINDS] = {
		[SOAK_FAST] = n / 4,
		[SOAK_SLOW] = n / 4,
		[SOAK_MUTE] = n / 8,
	};
	unsigned int k = 0, left;
	uint64_t now = soak_now_ns();

	left = n - counts[SOAK_FAST] - counts[SOAK_SLOW] - counts[SOAK_MUTE];
	counts[SOAK_RESUME] = left / 2;
	counts[SOAK_CHURN] = left - left / 2;
	s->nclients = n + 1;
	s->clients = calloc(s->nclients, sizeof(*s->clients));
	if (!s->clients)
		return -ENOMEM;
	for (enum soak_kind kind = 0; kind < SOAK_MONITOR; kind++) {
		for (unsigned int i = 0; i < counts[kind]; i++, k++) {
			struct soak_client *c = &s->clients[k];

			c->kind = kind;
			/* half the churners leave a resumable session
			 * behind, kept resume_grace seconds, then expired */
			c->resumable = kind == SOAK_RESUME ||
				       (kind == SOAK_CHURN && (i & 1));
		}
	}
	s->clients[k].kind = SOAK_MONITOR;
	s->monitor = &s->clients[k];
	for (unsigned int i = 0; i < s->nclients; i++) {
		struct soak_client *c = &s->clients[i];

		c->s = s;
		c->idx = i;
		c->fd = -1;
		c->state = C_DOWN;
		c->next_id = 1;
		c->rng = s->o.seed * 2654435761u + i * 40503u + 1;
		/* connect in a burst, all within the first second */
		c->next_ns = now + (c->kind == SOAK_MONITOR ? 0 :
				    rnd_ms(c, 0, 1000));
	}
	return 0;
}

void soak_clients_close(struct soak *s)
{
	uint64_t now = soak_now_ns();

	s->stopping = true;
	for (unsigned int i = 0; i < s->nclients; i++)
		client_hang_up(&s->clients[i], now, ~0ULL >> 1);
}

void soak_clients_free(struct soak *s)
{
	free(s->clients);
	s->clients = NULL;
}
