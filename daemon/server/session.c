// SPDX-License-Identifier: MIT
/*
 * One client: input with credentials, the output slot, events, resume.
 *
 * Owns: what a client makes dirtyd hold.  One request is served at a
 * time, one packet waits in the output slot, and nothing is read while
 * it does: a client that does not read cannot make dirtyd hold more than
 * that slot, its request's reply, one event per subscription and the
 * stream being produced (session.h).
 */
#define _GNU_SOURCE		/* struct ucred, POLLRDHUP */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/config/config.h"
#include "daemon/server/adopt.h"
#include "daemon/server/fdpass.h"
#include "daemon/util/log.h"
#include "daemon/server/requests.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/state/state.h"
#include "protocol/wire.h"

/* Every packet is read here: the loop serves one packet at a time. */
static uint8_t rx_buf[PROTO_MAX_MSG];

static void session_destroy(struct session *s, bool may_park);

/* ------------------------------------------------------------ output */

static void session_update_events(struct session *s)
{
	bool want_read = !s->busy && !s->streaming && !s->reply_pending &&
			 !s->out_len && list_empty(&s->async_done) &&
			 s->nasync < SESSION_MAX_ASYNC;
	bool want_write = s->out_len > 0;

	if (want_read != s->reading) {
		if (want_read)
			event_add(s->ev_read, NULL);
		else
			event_del(s->ev_read);
		s->reading = want_read;
	}
	if (want_write != s->writing) {
		if (want_write)
			event_add(s->ev_write, NULL);
		else
			event_del(s->ev_write);
		s->writing = want_write;
	}
}

void session_kick(struct session *s)
{
	if (!s->writing) {
		event_add(s->ev_write, NULL);
		s->writing = true;
	}
}

static void session_encode(struct session *s, const struct proto_msg *m)
{
	int n = proto_encode(m, s->out, PROTO_MAX_MSG);

	if (n < 0) {
		/* our own message: cannot happen; say so rather than hang */
		struct proto_msg e = {
			.type = PROTO_ERROR,
			.id = m->id,
			.error = { .err = EPROTO, .text = "internal encoding "
				   "error", .text_len = 23 },
		};

		log_error_errno(n, "encoding %s failed",
				proto_type_name(m->type) ?: "a message");
		n = proto_encode(&e, s->out, PROTO_MAX_MSG);
	}
	s->out_len = n > 0 ? (size_t)n : 0;
}

static void session_close_out_fds(struct session *s)
{
	for (unsigned int i = 0; i < s->out_nfds; i++)
		close(s->out_fds[i]);
	s->out_nfds = 0;
}

void session_stream_end(struct session *s, bool whole)
{
	void (*end)(struct session *, bool) = s->stream.end;

	if (!s->streaming)
		return;
	s->streaming = false;
	s->stream.end = NULL;
	if (end)
		end(s, whole);
}

/* Fill the free slot: the stream, the deferred reply, answered SYNCs, then
 * events. */
static bool session_fill(struct session *s)
{
	struct subscription *sub;

	if (s->streaming && !s->stream.done) {
		bool last = false;
		int n = s->stream.next(s, s->out, PROTO_MAX_MSG, &last);

		if (n < 0) {
			log_warning_errno(n, "client pid %d: a reply stream "
					  "failed after it began",
					  (int)s->pid);
			session_stream_end(s, false);
			snprintf(s->reply_text, sizeof(s->reply_text),
				 "producing the reply failed: %s",
				 strerror(-n));
			session_encode(s, &(struct proto_msg){
				.type = PROTO_ERROR,
				.id = s->stream.id,
				.error = { .err = -n, .text = s->reply_text,
					   .text_len = strlen(s->reply_text) },
			});
			return true;
		}
		s->out_len = n;
		s->stream.done = last;	/* ends when it is sent */
		return true;
	}
	if (s->reply_pending) {
		s->reply_pending = false;
		session_encode(s, &s->reply);
		return true;
	}
	if (!list_empty(&s->async_done)) {
		struct session_async *a = list_first_entry(&s->async_done,
							   struct session_async,
							   link);

		session_encode(s, &a->reply);
		list_del_init(&a->link);
		free(a);
		return true;
	}
	list_for_each_entry(sub, &s->subs, owner_link) {
		struct proto_msg ev;

		if (subscription_event(sub, &ev)) {
			session_encode(s, &ev);
			return true;
		}
	}
	return false;
}

/* Send what waits, refill, repeat until the socket is full or nothing is
 * left; false when the session was closed (and freed). */
static bool session_pump(struct session *s)
{
	for (;;) {
		if (s->out_len) {
			int r;

			/* never an answer a restart would undo */
			journal_flush(s->srv);
			r = fdpass_send(s->fd, s->out, s->out_len, s->out_fds,
					s->out_nfds);

			if (r == -EAGAIN)
				break;
			session_close_out_fds(s);
			if (r < 0) {
				log_debug("client pid %d: sending failed "
					  "(%s); closing", (int)s->pid,
					  strerror(-r));
				session_destroy(s, true);
				return false;
			}
			s->out_len = 0;
			if (s->streaming && s->stream.done)
				session_stream_end(s, true);
		}
		if (!session_fill(s))
			break;
	}
	session_update_events(s);
	return true;
}

static void session_on_write(evutil_socket_t fd, short what, void *arg)
{
	session_pump(arg);
}

void session_reply(struct session *s, const struct proto_msg *m)
{
	s->busy = false;
	if (!s->out_len && !s->streaming) {
		session_encode(s, m);
	} else {
		s->reply = *m;
		if (m->type == PROTO_ERROR && m->error.text != s->reply_text) {
			size_t n = m->error.text_len < PROTO_ERROR_TEXT_MAX ?
				   m->error.text_len : PROTO_ERROR_TEXT_MAX;

			memcpy(s->reply_text, m->error.text, n);
			s->reply_text[n] = '\0';
			s->reply.error.text = s->reply_text;
			s->reply.error.text_len = n;
		}
		s->reply_pending = true;
	}
	session_kick(s);
}

void session_reply_ok(struct session *s, uint64_t id)
{
	session_reply(s, &(struct proto_msg){ .type = PROTO_OK, .id = id });
}

void session_reply_error(struct session *s, uint64_t id, int err,
			 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reply_text, sizeof(s->reply_text), fmt, ap);
	va_end(ap);
	log_debug("client pid %d uid %u: request %llu refused: %s (%s)",
		  (int)s->pid, (unsigned)s->uid, (unsigned long long)id,
		  s->reply_text, strerror(-err));
	session_reply(s, &(struct proto_msg){
		.type = PROTO_ERROR,
		.id = id,
		.error = { .err = (uint32_t)-err, .text = s->reply_text,
			   .text_len = strlen(s->reply_text) },
	});
}

void session_reply_packet(struct session *s, size_t len, const int *fds,
			  unsigned int nfds)
{
	s->busy = false;
	s->out_len = len;
	memcpy(s->out_fds, fds, nfds * sizeof(*fds));
	s->out_nfds = nfds;
	session_kick(s);
}

void session_start_stream(struct session *s)
{
	s->busy = false;
	s->streaming = true;
	session_kick(s);
}

struct session_async *session_async_new(struct session *s)
{
	struct session_async *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->s = s;
	a->req = s->req;
	list_init(&a->waiter.link);
	list_add_tail(&a->link, &s->asyncs);
	s->nasync++;
	s->busy = false;
	return a;
}

void session_async_reply(struct session_async *a, const struct proto_msg *m)
{
	struct session *s = a->s;

	a->reply = *m;
	if (m->type == PROTO_ERROR && m->error.text != a->text) {
		size_t n = m->error.text_len < PROTO_ERROR_TEXT_MAX ?
			   m->error.text_len : PROTO_ERROR_TEXT_MAX;

		memcpy(a->text, m->error.text, n);
		a->text[n] = '\0';
		a->reply.error.text = a->text;
		a->reply.error.text_len = n;
	}
	list_del_init(&a->link);
	list_add_tail(&a->link, &s->async_done);
	s->nasync--;
	session_kick(s);
}

void session_async_error(struct session_async *a, int err, const char *fmt,
			 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
	session_async_reply(a, &(struct proto_msg){
		.type = PROTO_ERROR,
		.id = a->req.id,
		.error = { .err = (uint32_t)-err, .text = a->text,
			   .text_len = strlen(a->text) },
	});
}

static void session_async_free_all(struct session *s)
{
	struct session_async *a, *tmp;

	list_for_each_entry_safe(a, tmp, &s->asyncs, link) {
		domain_waiter_cancel(&a->waiter);
		list_del_init(&a->link);
		free(a);
	}
	list_for_each_entry_safe(a, tmp, &s->async_done, link) {
		list_del_init(&a->link);
		free(a);
	}
	s->nasync = 0;
}

/* ------------------------------------------------------------ input */

static void session_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = rx_buf, .iov_len = sizeof(rx_buf) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct ucred cred;
	bool have_cred = false;
	int in_fds[FDPASS_MAX_FDS];
	unsigned int in_nfds = 0;
	uint64_t id;
	ssize_t n;

	n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_debug("client pid %d: receiving failed (%s); closing",
			  (int)s->pid, strerror(errno));
		session_destroy(s, true);
		return;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(cred))) {
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			have_cred = true;
		} else if (c->cmsg_type == SCM_RIGHTS) {
			/* for READOPT only; the dispatch closes the rest */
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)CMSG_DATA(c);

			for (size_t i = 0; i < k; i++) {
				int one;

				memcpy(&one, &fds[i], sizeof(one));
				if (in_nfds < FDPASS_MAX_FDS)
					in_fds[in_nfds++] = one;
				else
					close(one);
			}
		}
	}
	if (n == 0 && !have_cred) {
		while (in_nfds)
			close(in_fds[--in_nfds]);
		log_debug("client pid %d uid %u disconnected", (int)s->pid,
			  (unsigned)s->uid);
		session_destroy(s, true);
		return;
	}
	id = n >= PROTO_HEADER_SIZE ? wire_get_le64(rx_buf + 8) : 0;
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    n > (ssize_t)PROTO_MAX_MSG || !have_cred || cred.pid != s->pid ||
	    cred.uid != s->uid || cred.gid != s->gid)
		while (in_nfds)
			close(in_fds[--in_nfds]);
	if ((mh.msg_flags & MSG_TRUNC) || n > (ssize_t)PROTO_MAX_MSG)
		session_reply_error(s, id, -EMSGSIZE, "packet of %zd bytes is "
				    "larger than the protocol's maximum of %u",
				    n, PROTO_MAX_MSG);
	else if (!have_cred || cred.pid != s->pid || cred.uid != s->uid ||
		 cred.gid != s->gid)
		session_reply_error(s, id, -EPERM, "this connection belongs to "
				    "pid %d (uid %u), the packet came from pid "
				    "%d (uid %u): a descriptor passed to "
				    "another process; it must connect itself",
				    (int)s->pid, (unsigned)s->uid,
				    have_cred ? (int)cred.pid : 0,
				    have_cred ? (unsigned)cred.uid : 0);
	else
		requests_dispatch(s, rx_buf, (size_t)n, in_fds, in_nfds);
	session_pump(s);
}

/* ------------------------------------------------------------ life */

int session_admit(struct server *srv, int fd, char *why, size_t len)
{
	const struct config *cfg = srv->cfg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	unsigned int mine = 0;
	struct session *s;

	if (srv->nsessions >= cfg->max_clients) {
		snprintf(why, len, "too many clients (max %u)",
			 cfg->max_clients);
		return -EUSERS;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		return -errno;
	if (!cred.uid)
		return 0;	/* root: the whole pool */
	if (srv->nsessions >= cfg->max_clients - config_root_clients(cfg)) {
		snprintf(why, len, "the last %u of max_clients %u connections "
			 "are kept for root (root_clients)",
			 config_root_clients(cfg), cfg->max_clients);
		return -EUSERS;
	}
	list_for_each_entry(s, &srv->sessions, link)
		mine += s->uid == cred.uid;
	if (mine >= cfg->max_clients_per_uid) {
		snprintf(why, len, "uid %u has %u connections already "
			 "(max_clients_per_uid)", (unsigned int)cred.uid,
			 mine);
		return -EUSERS;
	}
	return 0;
}

void session_hello_done(struct session *s)
{
	s->hello = true;
	if (s->hello_timer)
		event_del(s->hello_timer);
}

/* No HELLO in time: a connection that says nothing holds no slot. */
static void session_on_hello_timeout(evutil_socket_t fd, short what,
				     void *arg)
{
	struct session *s = arg;
	char text[96];
	uint8_t buf[PROTO_HEADER_SIZE + 8 + sizeof(text)];
	int n;

	if (s->hello)
		return;
	snprintf(text, sizeof(text), "no HELLO within %u s (hello_timeout); "
		 "closing", s->srv->cfg->hello_timeout);
	n = proto_encode(&(struct proto_msg){
		.type = PROTO_ERROR,
		.error = { .err = ETIMEDOUT, .text = text,
			   .text_len = strlen(text) },
	}, buf, sizeof(buf));
	if (!s->out_len && n > 0)
		(void)send(s->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	log_debug("client pid %d uid %u: no HELLO within %u s; closed",
		  (int)s->pid, (unsigned int)s->uid,
		  s->srv->cfg->hello_timeout);
	session_destroy(s, false);
}

int session_new(struct server *srv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct session *s;
	int one = 1, n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->srv = srv;
	s->fd = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->gid = cred.gid;
	list_init(&s->subs);
	list_init(&s->asyncs);
	list_init(&s->async_done);
	list_init(&s->waiter.link);
	s->out = malloc(PROTO_MAX_MSG);
	s->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST,
			       session_on_read, s);
	s->ev_write = event_new(srv->base, fd, EV_WRITE | EV_PERSIST,
				session_on_write, s);
	if (!s->out || !s->ev_read || !s->ev_write) {
		if (s->ev_read)
			event_free(s->ev_read);
		if (s->ev_write)
			event_free(s->ev_write);
		free(s->out);
		free(s);
		return -ENOMEM;
	}
	if (srv->cfg->hello_timeout) {
		struct timeval tv = { .tv_sec = srv->cfg->hello_timeout };

		s->hello_timer = event_new(srv->base, -1, 0,
					   session_on_hello_timeout, s);
		if (!s->hello_timer || event_add(s->hello_timer, &tv)) {
			if (s->hello_timer)
				event_free(s->hello_timer);
			event_free(s->ev_read);
			event_free(s->ev_write);
			free(s->out);
			free(s);
			return -ENOMEM;
		}
	}
	n = access_peer_groups(fd, &s->groups);
	if (n < 0)
		/* then only its primary gid counts: fewer rights, not more */
		log_warning_errno(n, "client pid %d uid %u: reading its groups "
				  "(SO_PEERGROUPS) failed", (int)s->pid,
				  (unsigned)s->uid);
	s->ngroups = n < 0 ? 0 : (size_t)n;
	s->admin = access_is_admin(srv, s);
	list_add_tail(&s->link, &srv->sessions);
	srv->nsessions++;
	session_update_events(s);
	log_debug("client pid %d uid %u gid %u connected%s", (int)s->pid,
		  (unsigned)s->uid, (unsigned)s->gid,
		  s->admin ? " (admin)" : "");
	return 0;
}

static void park_free(struct park *p)
{
	event_free(p->timer);
	list_del_init(&p->link);
	free(p);
}

static void park_drop(struct park *p)
{
	struct subscription *sub, *tmp;

	list_for_each_entry_safe(sub, tmp, &p->subs, owner_link) {
		struct domain *d = sub->dom;

		subscription_drop(sub);
		domain_subscriptions_changed(d);
	}
	park_free(p);
}

static void park_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct park *p = arg;

	log_debug("resume token of uid %u expired; its subscriptions are "
		  "dropped", (unsigned)p->uid);
	park_drop(p);
}

/* Expire @p in @left_ns, and remember when: a restart keeps it. */
static void park_arm(struct park *p, uint64_t left_ns)
{
	struct timespec now;
	struct timeval tv = {
		.tv_sec = (time_t)(left_ns / 1000000000ULL),
		.tv_usec = (suseconds_t)(left_ns % 1000000000ULL / 1000),
	};

	clock_gettime(CLOCK_MONOTONIC, &now);
	p->deadline_ns = (uint64_t)now.tv_sec * 1000000000ULL +
			 (uint64_t)now.tv_nsec + left_ns;
	event_add(p->timer, &tv);
}

struct park *park_restore(struct server *srv, uint64_t token, uid_t uid,
			  uint64_t left_ns)
{
	struct park *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->timer = event_new(srv->base, -1, 0, park_on_timeout, p);
	if (!p->timer) {
		free(p);
		return NULL;
	}
	p->srv = srv;
	p->token = token;
	p->uid = uid;
	list_init(&p->subs);
	list_add_tail(&p->link, &srv->parks);
	park_arm(p, left_ns);
	return p;
}

/* What the subscriptions of a session (or a park) hold. */
static uint64_t subs_bytes(struct list_head *subs)
{
	struct subscription *sub;
	uint64_t n = 0;

	list_for_each_entry(sub, subs, owner_link)
		n += subscriber_set_memory(&sub->set);
	return n;
}

/*
 * Room for one more park of @uid holding @bytes: its oldest parks are
 * dropped until it has fewer than max_parked and they hold at most
 * max_parked_bytes with it.  false if even none would leave room.
 */
static bool park_make_room(struct server *srv, uid_t uid, uint64_t bytes)
{
	const struct config *cfg = srv->cfg;

	if (!cfg->max_parked || bytes > cfg->max_parked_bytes)
		return false;
	for (;;) {
		struct park *p, *oldest = NULL;
		unsigned int n = 0;
		uint64_t held = 0;

		list_for_each_entry(p, &srv->parks, link) {
			if (p->uid != uid)
				continue;
			if (!oldest)
				oldest = p;	/* parks are kept in order */
			n++;
			held += subs_bytes(&p->subs);
		}
		if (n < cfg->max_parked && held + bytes <= cfg->max_parked_bytes)
			return true;
		log_notice("uid %u keeps %u closed sessions holding %" PRIu64
			   " bytes (max_parked %u, max_parked_bytes %" PRIu64
			   "): its oldest is dropped; its token gets "
			   "STATE_LOST", (unsigned int)uid, n, held,
			   cfg->max_parked, cfg->max_parked_bytes);
		park_drop(oldest);
	}
}

/* Keep @s's subscriptions for a resume; false if that cannot be. */
static bool session_park(struct session *s)
{
	struct server *srv = s->srv;
	struct subscription *sub, *tmp;
	struct park *p;
	uint64_t bytes = subs_bytes(&s->subs);

	if (!park_make_room(srv, s->uid, bytes)) {
		log_notice("client pid %d uid %u closed; its subscriptions "
			   "hold %" PRIu64 " bytes, over max_parked_bytes %"
			   PRIu64 " (or max_parked is 0): not kept",
			   (int)s->pid, (unsigned int)s->uid, bytes,
			   srv->cfg->max_parked_bytes);
		return false;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return false;
	p->timer = event_new(srv->base, -1, 0, park_on_timeout, p);
	if (!p->timer) {
		free(p);
		return false;
	}
	p->srv = srv;
	p->token = s->token;
	p->uid = s->uid;
	list_init(&p->subs);
	list_for_each_entry_safe(sub, tmp, &s->subs, owner_link)
		subscription_park(sub, p);
	s->nsubs = 0;
	list_add_tail(&p->link, &srv->parks);
	park_arm(p, (uint64_t)srv->cfg->resume_grace * 1000000000ULL);
	log_debug("client pid %d closed; subscriptions kept %u s for a "
		  "resume", (int)s->pid, srv->cfg->resume_grace);
	/* the park's deadline survives a restart from now on */
	journal_note(srv);
	return true;
}

static void session_destroy(struct session *s, bool may_park)
{
	struct server *srv = s->srv;
	struct subscription *sub, *tmp;

	domain_waiter_cancel(&s->waiter);
	session_async_free_all(s);
	session_stream_end(s, false);
	adopt_session_closed(s);
	if (!(may_park && s->token && srv->cfg->resume_grace &&
	      !list_empty(&s->subs) && session_park(s))) {
		list_for_each_entry_safe(sub, tmp, &s->subs, owner_link) {
			struct domain *d = sub->dom;

			subscription_drop(sub);
			domain_subscriptions_changed(d);
		}
	}
	session_close_out_fds(s);
	if (s->hello_timer)
		event_free(s->hello_timer);
	event_free(s->ev_read);
	event_free(s->ev_write);
	server_hang_up(srv, s->fd);
	list_del_init(&s->link);
	srv->nsessions--;
	free(s->out);
	free(s->groups);
	free(s);
}

void session_free(struct session *s)
{
	session_destroy(s, true);
}

void session_free_all(struct server *srv)
{
	while (!list_empty(&srv->sessions))
		session_destroy(list_first_entry(&srv->sessions,
						 struct session, link), false);
	while (!list_empty(&srv->parks))
		park_drop(list_first_entry(&srv->parks, struct park, link));
}

/* ------------------------------------------------------------ subs */

struct subscription *session_sub_of(struct session *s, struct domain *d)
{
	struct subscription *sub;

	list_for_each_entry(sub, &s->subs, owner_link)
		if (sub->dom == d)
			return sub;
	return NULL;
}

void session_sub_add(struct session *s, struct subscription *sub)
{
	list_add_tail(&sub->owner_link, &s->subs);
	s->nsubs++;
}

struct subscriber_gen *session_sub_dropped(struct session *s,
					   struct subscription *sub)
{
	list_del_init(&sub->owner_link);
	s->nsubs--;
	if (!s->streaming || s->stream.sub != sub)
		return NULL;
	/* a stream, once begun, completes: it takes the generation it is
	 * sending out of the subscription going away */
	s->stream.sub = NULL;
	log_debug("client pid %d: the subscription of a stream went away; "
		  "the stream completes", (int)s->pid);
	return s->stream.gen;
}

/*
 * The connection of @token that its client has closed but whose end of
 * file the loop has not read yet (a client that closes and reconnects at
 * once): closed now, parked, so that the new connection resumes it.
 */
static void session_reap_closed(struct server *srv, uint64_t token, uid_t uid)
{
	struct session *old;

	list_for_each_entry(old, &srv->sessions, link) {
		struct pollfd pfd = { .fd = old->fd, .events = POLLRDHUP };

		if (old->token != token || old->uid != uid)
			continue;
		if (poll(&pfd, 1, 0) == 1 &&
		    pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			log_debug("client pid %d closed; its token is resumed "
				  "at once", (int)old->pid);
			session_destroy(old, true);
		}
		return;
	}
}

bool session_resume(struct session *s, uint64_t token)
{
	struct subscription *sub, *tmp;
	struct park *p;

	session_reap_closed(s->srv, token, s->uid);

	list_for_each_entry(p, &s->srv->parks, link)
		if (p->token == token && p->uid == s->uid)
			goto found;
	return false;
found:
	list_for_each_entry_safe(sub, tmp, &p->subs, owner_link)
		subscription_resume(sub, s);
	s->token = token;
	park_free(p);
	journal_note(s->srv);
	return true;
}
