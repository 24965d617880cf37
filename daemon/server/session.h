/* SPDX-License-Identifier: MIT */
/*
 * One client connection.
 *
 * Input: one packet per recvmsg(), with the sender's SCM_CREDENTIALS,
 * decoded and dispatched (requests.c) one request at a time.
 *
 * Output: one slot.  At most one packet (up to PROTO_MAX_MSG, plus the
 * descriptors it carries) waits to be sent; while anything waits, or a
 * request is being served, the session does not read.  So a client that
 * does not read its replies cannot make dirtyd hold more than the slot,
 * the reply of its request, one event per subscription and the stream
 * being produced; a stream (LIST_*, STATS, RANGES, METRICS) is encoded
 * packet by packet as the socket drains (METRICS: its text, made whole
 * when the request came, is what the stream holds).  When the slot frees
 * it is filled, in this order, from: the stream, the deferred reply,
 * pending events.
 *
 * Resume: a session that negotiated PROTO_FEAT_RESUME has a token; when it
 * closes, its subscriptions are parked (in-flight generations go back to
 * pending) for resume_grace seconds, for a HELLO with that token.
 */
#ifndef DIRTYD_SESSION_H
#define DIRTYD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/domain/domain.h"
#include "daemon/server/fdpass.h"
#include "daemon/util/list.h"
#include "protocol/chunk.h"
#include "protocol/proto.h"

struct event;
struct server;
struct session;


/*
 * SYNC is answered later without holding the session: other requests are
 * served while it waits for its round (at most SESSION_MAX_ASYNC at once;
 * beyond that the session stops reading until one is answered).
 */
#define SESSION_MAX_ASYNC 16

struct session_async {
	struct domain_waiter waiter;
	struct session *s;
	struct list_head link;		/* asyncs, then async_done */
	struct proto_msg req;
	struct proto_msg reply;
	char text[PROTO_ERROR_TEXT_MAX + 1];
};

/** A stream of packets answering one request. */
struct session_stream {
	/* Write the next packet into @buf; *last when it ends the stream.
	 * Returns its length, or -errno (the stream then ends with ERROR). */
	int (*next)(struct session *s, uint8_t *buf, size_t cap, bool *last);
	/* The stream is over, @whole: its last packet was sent (else it
	 * failed, or the session closed first).  NULL: nothing to do. */
	void (*end)(struct session *s, bool whole);
	bool done;		/* the last packet is in the output slot */
	uint64_t id;
	uint32_t seq;
	uint64_t cursor;
	uint32_t domain_id;
	/* RANGES: the generation is the subscription's until it goes away
	 * mid-stream (sub NULL); then the stream owns it and frees it at its
	 * end */
	struct subscription *sub;
	struct subscriber_gen *gen;
	struct chunk_reader chunks;	/* of gen, as the session takes them */
	/* METRICS: the whole text (metrics.c), sent from cursor on */
	char *text;
	size_t text_len;
};

struct session {
	struct server *srv;
	struct list_head link;
	int fd;
	struct event *ev_read;
	struct event *ev_write;
	struct event *hello_timer;	/* until HELLO (hello_timeout) */
	bool reading, writing;		/* events currently added */

	/* the peer, at connect time (SO_PEERCRED, SO_PEERGROUPS) */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t *groups;			/* supplementary */
	size_t ngroups;
	bool admin;			/* access_is_admin() */

	bool hello;
	uint64_t features;
	uint64_t token;			/* 0: not resumable */

	/* the descriptors of the packet being dispatched (READOPT takes
	 * them: in_nfds 0; the dispatch closes the rest) */
	int *in_fds;
	unsigned int in_nfds;

	/* the request being served */
	bool busy;
	struct proto_msg req;		/* fixed fields only */
	struct domain_waiter waiter;

	/* output */
	uint8_t *out;			/* the slot: PROTO_MAX_MSG bytes */
	size_t out_len;
	int out_fds[FDPASS_MAX_FDS];
	unsigned int out_nfds;
	bool reply_pending;
	struct proto_msg reply;
	char reply_text[PROTO_ERROR_TEXT_MAX + 1];
	bool streaming;
	struct session_stream stream;

	struct list_head asyncs;	/* struct session_async, waiting */
	struct list_head async_done;	/* answered, to be sent */
	unsigned int nasync;

	struct list_head subs;		/* struct subscription */
	unsigned int nsubs;
};

/** A closed session's subscriptions, waiting for a resume. */
struct park {
	struct list_head link;
	struct server *srv;
	uint64_t token;
	uid_t uid;
	struct list_head subs;
	struct event *timer;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC: when it expires */
};

/** session_new() - serve the accepted connection @fd (taken over). */
int session_new(struct server *srv, int fd);
/** session_free() - close; park or drop its subscriptions. */
void session_free(struct session *s);

/** session_reply() - answer the request being served with @m. */
void session_reply(struct session *s, const struct proto_msg *m);
/** session_reply_ok() - PROTO_OK for request @id. */
void session_reply_ok(struct session *s, uint64_t id);
/** session_reply_error() - PROTO_ERROR (@err negative) for request @id. */
void session_reply_error(struct session *s, uint64_t id, int err,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/** session_reply_packet() - answer with the encoded packet @len bytes
 *  already in s->out, carrying @nfds descriptors (taken over). */
void session_reply_packet(struct session *s, size_t len, const int *fds,
			  unsigned int nfds);
/** session_start_stream() - answer with a stream; s->stream is set. */
void session_start_stream(struct session *s);
/** session_async_new() - serve the request being served later, without
 *  holding the session; NULL when out of memory. */
struct session_async *session_async_new(struct session *s);
/** session_async_reply() - the answer of @a: sent when the slot frees. */
void session_async_reply(struct session_async *a, const struct proto_msg *m);
void session_async_error(struct session_async *a, int err, const char *fmt,
			 ...) __attribute__((format(printf, 3, 4)));
/**
 * session_admit() - may the client just accepted on @fd connect?  0, or
 * -EUSERS with the reason in @why: max_clients, the root_clients kept for
 * root, max_clients_per_uid (root is exempt from the last two).
 */
int session_admit(struct server *srv, int fd, char *why, size_t len);
/** session_hello_done() - HELLO was accepted: hello_timeout is off. */
void session_hello_done(struct session *s);
/** session_stream_end() - the stream is over, @whole or not: its end
 *  hook runs once. */
void session_stream_end(struct session *s, bool whole);
/** session_kick() - output may be waiting: run the pump from the loop. */
void session_kick(struct session *s);

/** session_sub_of() - the session's subscription to @d, or NULL. */
struct subscription *session_sub_of(struct session *s, struct domain *d);
/** session_sub_add() - a new subscription of the session. */
void session_sub_add(struct session *s, struct subscription *sub);
/**
 * session_sub_dropped() - @sub is going away: unlink it.  A stream
 * sending one of its generations completes: that generation, returned,
 * is the stream's from now on (the caller detaches it from the set);
 * else NULL.
 */
struct subscriber_gen *session_sub_dropped(struct session *s,
					   struct subscription *sub);

/** session_resume() - take over the subscriptions parked under @token;
 *  false if none (or another uid's). */
bool session_resume(struct session *s, uint64_t token);

/** park_restore() - an empty park for @token of @uid, expiring @left_ns
 *  from now (state/restore.c fills it); NULL: no memory. */
struct park *park_restore(struct server *srv, uint64_t token, uid_t uid,
			  uint64_t left_ns);

/** session_free_all() - at exit: every session and park, nothing kept. */
void session_free_all(struct server *srv);

#endif
