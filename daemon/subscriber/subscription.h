/* SPDX-License-Identifier: MIT */
/*
 * A client's subscription to a domain, and its life.
 *
 * Owns: a subscription's life.  A subscription is made, handed from
 * owner to owner, given its set's new bitmaps and dropped here and
 * nowhere else; the rest of the daemon calls these:
 *
 *   create   SUBSCRIBE: a set over the domain's plan, every mapped page
 *            pending unless CLEAN; listed in the domain, attached to the
 *            session, committed (kept if the session has a token).
 *   park     its session closed with a resume token: every generation in
 *            flight back into pending, events forgotten, held by the park.
 *   resume   HELLO with the token: from the park to the new session.
 *   restore  a restart: rebuilt from its kept record and bitmaps, parked.
 *   replace  a change of its domain (domain_change.c): its set frozen,
 *            then thawed with the new plan's bitmaps; told STATE_LOST if
 *            its pages could not move.
 *   drop     UNSUBSCRIBE, its session closed for good, its park expired,
 *            its domain destroyed, no memory to move it: unlinked from
 *            domain and owner, its set released (or left to the change
 *            reading it), committed.
 *
 * Its dirty pages are its set's (subscriber.h), which owns the promise
 * that nothing is cleared before it is acknowledged: the subscription
 * says when a generation is taken (GET_RANGES), acknowledged (ACK), and
 * what becomes of one after its stream (subscription_sent()).
 */
#ifndef DIRTYD_SUBSCRIPTION_H
#define DIRTYD_SUBSCRIPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/subscriber/subscriber.h"
#include "daemon/util/error.h"
#include "daemon/util/list.h"

struct domain;
struct harvest_domain;
struct park;
struct proto_msg;
struct session;

/** A client's subscription to a domain. */
struct subscription {
	struct domain *dom;
	struct session *session;	/* NULL while parked */
	struct park *park;		/* non-NULL while parked */
	struct list_head dom_link;
	struct list_head owner_link;	/* session's or park's list */
	struct subscriber_set set;
	uint32_t interval_ms;		/* 0: on demand */
	bool clean;
	uint64_t pages_sent;
	/* events waiting for the session's output slot */
	/* EV_ROUND never queues (PROTOCOL.md 6.16): one is sent only while
	 * ev_sent is false, which GET_RANGES and SYNC of the domain reset
	 * (their replies cover the rounds before them); rounds add up in
	 * ev_round_pages until an EV_ROUND carries them */
	bool ev_round;			/* rounds since the last one sent */
	bool ev_sent;			/* sent; the client has not asked since */
	uint64_t ev_generation;
	uint64_t ev_round_pages;
	bool ev_lost;
};

/**
 * subscription_create() - a subscription of @s to @d (all mapped pages
 * pending unless @clean), attached to @s.  -ENOMEM, the reason in @e.
 */
int subscription_create(struct domain *d, struct session *s,
			uint32_t interval_ms, bool clean,
			struct subscription **out, struct error *e);
/**
 * subscription_restore() - a subscription to @d kept by a previous
 * process (state.c), parked in @p: its set adopts @pending and @flight
 * (claimed in the state's bitmap memory, laid out as @d's plan).
 * -ENOMEM.
 */
int subscription_restore(struct domain *d, struct park *p,
			 uint32_t interval_ms, bool clean, uint64_t pages_sent,
			 uint64_t *pending, uint64_t *flight);
/** subscription_park() - its session closed: held by @p (session.c lists
 *  the park), every generation in flight pending again. */
void subscription_park(struct subscription *sub, struct park *p);
/** subscription_resume() - from its park to @s. */
void subscription_resume(struct subscription *sub, struct session *s);
/** subscription_drop() - unlink from domain and owner, free. */
void subscription_drop(struct subscription *sub);

/** subscription_freeze() - a change of its domain begins: its set
 *  frozen into @snap (subscriber_set_freeze()); -ENOMEM. */
int subscription_freeze(struct subscription *sub, struct subscriber_snap *snap);
/** subscription_thaw() - the change ends: its set thawed, with @moved's
 *  bitmaps (the new plan's) or laid out as @plan (subscriber_set_thaw()). */
void subscription_thaw(struct subscription *sub, struct subscriber_snap *snap,
		       struct subscriber_set *moved,
		       const struct harvest_domain *plan);
/** subscription_lost() - its pages could not follow, or a round failed:
 *  EV_STATE_LOST (its session is kicked, if it has one). */
void subscription_lost(struct subscription *sub);

/**
 * subscription_take() - GET_RANGES: with @resend every generation in
 * flight pending again; the domain's current generation, if taken
 * already, pending again; at most max_inflight in flight with the new
 * one; then the new one taken (subscriber_set_take()), to be ended by
 * subscription_sent().  -errno, the reason in @e.
 */
int subscription_take(struct subscription *sub, bool resend,
		      struct subscriber_gen **out, struct error *e);
/**
 * subscription_sent() - the stream of @gen is over: sent @whole, it is in
 * flight until acknowledged (its pages count in pages_sent); else every
 * page of it is pending again.  @sub NULL: the subscription went away
 * while it was sent (subscription_drop() left it to the stream): freed.
 */
void subscription_sent(struct subscription *sub, struct subscriber_gen *gen,
		       bool whole);
/** subscription_ack() - ACK of generation @gen; -ENOENT if not in flight. */
int subscription_ack(struct subscription *sub, uint64_t gen);

/*
 * Events wait in the subscription for its session's output slot:
 * EV_STATE_LOST, and EV_ROUND, which never queues (see struct
 * subscription).
 */
/** subscription_round() - a periodic round of its domain, generation
 *  @generation, found @pages: an EV_ROUND for a session that asked for
 *  events, if there are pages. */
void subscription_round(struct subscription *sub, uint64_t generation,
			uint64_t pages);
/** subscription_events_rearm() - the client asked (GET_RANGES, SYNC): the
 *  next round with pages sends the next EV_ROUND. */
void subscription_events_rearm(struct subscription *sub);
/** subscription_event() - the next event waiting, into @m (taken); false
 *  if none. */
bool subscription_event(struct subscription *sub, struct proto_msg *m);

#endif
