// SPDX-License-Identifier: MIT
/*
 * A client's subscription to a domain, from SUBSCRIBE to its drop
 * (subscription.h).  Owns: a subscription's life.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/state/state.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/util/log.h"
#include "protocol/proto.h"

/* A new subscription to @d, listed there; its owner is the caller's. */
static struct subscription *sub_new(struct domain *d, uint32_t interval_ms,
				    bool clean)
{
	struct subscription *sub = calloc(1, sizeof(*sub));

	if (!sub)
		return NULL;
	sub->dom = d;
	sub->interval_ms = interval_ms;
	sub->clean = clean;
	list_init(&sub->owner_link);
	list_add_tail(&sub->dom_link, &d->subs);
	d->nsubs++;
	return sub;
}

int subscription_create(struct domain *d, struct session *s,
			uint32_t interval_ms, bool clean,
			struct subscription **out, struct error *e)
{
	struct subscriber_set set;
	struct subscription *sub;
	int r;

	r = subscriber_set_init_mem(&set, d->plan, state_bits(d->srv));
	if (r < 0)
		return error_set(e, r, "out of memory");
	sub = sub_new(d, interval_ms, clean);
	if (!sub) {
		subscriber_set_release(&set);
		return error_set(e, -ENOMEM, "out of memory");
	}
	sub->set = set;
	if (!clean)
		subscriber_set_mark_all(&sub->set);
	sub->session = s;
	session_sub_add(s, sub);
	domain_timer_update(d);
	/* kept from now on if the session has a resume token */
	journal_note(d->srv);
	*out = sub;
	return 0;
}

int subscription_restore(struct domain *d, struct park *p,
			 uint32_t interval_ms, bool clean, uint64_t pages_sent,
			 uint64_t *pending, uint64_t *flight)
{
	struct subscription *sub = sub_new(d, interval_ms, clean);
	int r;

	if (!sub)
		return -ENOMEM;
	sub->pages_sent = pages_sent;
	r = subscriber_set_adopt(&sub->set, d->plan, state_bits(d->srv),
				 pending, flight);
	if (r < 0) {
		list_del_init(&sub->dom_link);
		d->nsubs--;
		free(sub);
		return r;
	}
	sub->park = p;
	list_add_tail(&sub->owner_link, &p->subs);
	return 0;
}

void subscription_events_rearm(struct subscription *sub)
{
	sub->ev_sent = false;
	sub->ev_round = false;
	sub->ev_round_pages = 0;
}

void subscription_park(struct subscription *sub, struct park *p)
{
	int r = subscriber_set_requeue(&sub->set, UINT64_MAX);

	if (r < 0) {
		log_warning_errno(r, "requeueing a parked subscriber "
				  "failed; it gets every page");
		subscriber_set_mark_all(&sub->set);
	}
	sub->session = NULL;
	sub->park = p;
	/* a resumed session asks again */
	subscription_events_rearm(sub);
	sub->ev_lost = false;
	list_del_init(&sub->owner_link);
	list_add_tail(&sub->owner_link, &p->subs);
}

void subscription_resume(struct subscription *sub, struct session *s)
{
	list_del_init(&sub->owner_link);
	sub->park = NULL;
	sub->session = s;
	session_sub_add(s, sub);
}

void subscription_drop(struct subscription *sub)
{
	struct domain *d = sub->dom;
	struct subscriber_set *gone;

	if (sub->session) {
		/* a stream, once begun, completes: the generation it sends
		 * leaves the set, and the stream frees it at its end */
		struct subscriber_gen *g = session_sub_dropped(sub->session,
							       sub);

		if (g)
			subscriber_set_detach(&sub->set, g);
	} else if (sub->park) {
		list_del_init(&sub->owner_link);
	}
	list_del_init(&sub->dom_link);
	d->nsubs--;
	/* a change reading the set keeps it until its end */
	gone = domain_change_sub_dropped(sub);
	if (gone)
		*gone = sub->set;
	else
		subscriber_set_release(&sub->set);
	free(sub);
	/* its bitmaps are reclaimed once a version without it is in */
	journal_note(d->srv);
}

int subscription_freeze(struct subscription *sub, struct subscriber_snap *snap)
{
	return subscriber_set_freeze(&sub->set, snap);
}

void subscription_thaw(struct subscription *sub, struct subscriber_snap *snap,
		       struct subscriber_set *moved,
		       const struct harvest_domain *plan)
{
	subscriber_set_thaw(&sub->set, snap, moved, plan);
}

void subscription_lost(struct subscription *sub)
{
	sub->ev_lost = true;
	if (sub->session)
		session_kick(sub->session);
}

int subscription_take(struct subscription *sub, bool resend,
		      struct subscriber_gen **out, struct error *e)
{
	struct domain *d = sub->dom;
	struct server *srv = d->srv;
	int r;

	if (resend) {
		r = subscriber_set_requeue(&sub->set, UINT64_MAX);
		if (r < 0)
			return error_set(e, r, "requeueing failed: %s",
					  strerror(-r));
	}
	/* no round since the last GET_RANGES: send that generation again,
	 * with whatever is pending besides */
	r = subscriber_set_requeue(&sub->set, d->generation);
	if (r < 0 && r != -ENOENT)
		return error_set(e, r, "requeueing failed: %s",
				  strerror(-r));
	/* max_inflight with the new one: the oldest go back to pending */
	r = subscriber_set_trim(&sub->set, srv->cfg->max_inflight - 1);
	if (r < 0)
		return error_set(e, r, "requeueing failed: %s",
				  strerror(-r));
	if (r)
		log_debug("client pid %d: %d unacknowledged generations of "
			  "domain %u back to pending (max_inflight %u)",
			  (int)sub->session->pid, r, d->id,
			  srv->cfg->max_inflight);
	r = subscriber_set_take(&sub->set, d->generation, out);
	if (r < 0)
		return error_set(e, r, "collecting the ranges failed: %s",
				  strerror(-r));
	return 0;
}

void subscription_sent(struct subscription *sub, struct subscriber_gen *gen,
		       bool whole)
{
	if (!sub)
		subscriber_gen_free(gen);
	else if (whole)
		sub->pages_sent += subscriber_set_delivered(&sub->set, gen);
	else
		subscriber_set_giveback(&sub->set, gen);
}

int subscription_ack(struct subscription *sub, uint64_t gen)
{
	return subscriber_set_ack(&sub->set, gen);
}

void subscription_round(struct subscription *sub, uint64_t generation,
			uint64_t pages)
{
	/* EV_ROUND only to those that asked for events */
	if (!sub->session || !(sub->session->features & PROTO_FEAT_EVENTS) ||
	    !pages)
		return;
	sub->ev_round = true;
	sub->ev_generation = generation;
	sub->ev_round_pages += pages;
	if (!sub->ev_sent)	/* else it is told when it asks */
		session_kick(sub->session);
}

bool subscription_event(struct subscription *sub, struct proto_msg *m)
{
	uint64_t pages = sub->ev_round_pages;

	if (sub->ev_lost) {
		sub->ev_lost = false;
		sub->ev_round = false;
		sub->ev_round_pages = 0;
		*m = (struct proto_msg){
			.type = PROTO_EV_STATE_LOST,
			.domain_op = { .domain_id = sub->dom->id },
		};
		return true;
	}
	if (!sub->ev_round || sub->ev_sent)
		return false;
	sub->ev_round = false;
	sub->ev_sent = true;
	sub->ev_round_pages = 0;
	*m = (struct proto_msg){
		.type = PROTO_EV_ROUND,
		.ev_round = {
			.domain_id = sub->dom->id,
			.generation = sub->ev_generation,
			.round_pages = pages,
			.pending_pages = subscriber_set_pending_pages(&sub->set),
		},
	};
	return true;
}
