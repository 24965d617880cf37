/* SPDX-License-Identifier: MIT */
/*
 * A client's subscription to a domain.
 */
#ifndef DIRTYD_SUBSCRIPTION_H
#define DIRTYD_SUBSCRIPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/subscriber/subscriber.h"
#include "daemon/util/list.h"

struct domain;
struct park;
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
 * domain_subscribe() - a subscription of @s (all mapped pages pending
 * unless @clean); -EEXIST for a second one by the same session.
 */
int domain_subscribe(struct domain *d, struct session *s,
		     uint32_t interval_ms, bool clean,
		     struct subscription **out);
/** subscription_drop() - unlink from domain and owner, free. */
void subscription_drop(struct subscription *sub);

#endif
