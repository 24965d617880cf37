// SPDX-License-Identifier: MIT
/* A client's subscription to a domain. */
#include <errno.h>
#include <stdlib.h>

#include "daemon/domain/domain.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/state/state.h"
#include "daemon/subscriber/subscription.h"

int domain_subscribe(struct domain *d, struct session *s,
		     uint32_t interval_ms, bool clean,
		     struct subscription **out)
{
	struct subscription *sub;
	int r;

	sub = calloc(1, sizeof(*sub));
	if (!sub)
		return server_why(d->srv, -ENOMEM, "out of memory");
	r = subscriber_set_init_mem(&sub->set, d->plan, state_bits(d->srv));
	if (r < 0) {
		free(sub);
		return server_why(d->srv, r, "out of memory");
	}
	if (!clean)
		subscriber_set_mark_all(&sub->set);
	sub->dom = d;
	sub->session = s;
	sub->interval_ms = interval_ms;
	sub->clean = clean;
	list_init(&sub->owner_link);
	list_add_tail(&sub->dom_link, &d->subs);
	d->nsubs++;
	domain_timer_update(d);
	/* kept from now on if the session has a resume token */
	state_commit(d->srv);
	*out = sub;
	return 0;
}

void subscription_drop(struct subscription *sub)
{
	struct domain *d = sub->dom;

	if (sub->session)
		session_sub_dropped(sub->session, sub);
	else if (sub->park)
		park_sub_dropped(sub->park, sub);
	list_del_init(&sub->dom_link);
	d->nsubs--;
	/* a change reading the set keeps it until its end */
	if (!domain_change_sub_dropped(sub))
		subscriber_set_release(&sub->set);
	free(sub);
	/* its bitmaps are reclaimed once a version without it is in */
	state_commit(d->srv);
}
