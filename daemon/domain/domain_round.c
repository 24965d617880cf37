// SPDX-License-Identifier: MIT
/*
 * Rounds of a domain: the periodic timer, starting a round on the harvest
 * engine, folding its bitmap into the subscribers when it completes, the
 * statistics and events, and the waiters (domain.h) that rounds answer.
 *
 * Owns: a domain's plan is read by one round at a time and never while a
 * change rewrites it; an operation that needs the domain idle, or a round
 * begun after it, waits here (domain_when_idle(), domain_after_round()).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/domain/domain_private.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "protocol/extent.h"
#include "protocol/proto.h"

uint64_t domain_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return domain_now_ns();
}

/* ------------------------------------------------------------ timers */

static void domain_round_start(struct domain *d, bool periodic);

void domain_timer_update(struct domain *d)
{
	struct subscription *sub;
	uint32_t interval = 0;

	list_for_each_entry(sub, &d->subs, dom_link)
		if (sub->interval_ms &&
		    (!interval || sub->interval_ms < interval))
			interval = sub->interval_ms;
	if (!d->enabled || d->dying)
		interval = 0;
	if (interval == d->interval_ms)
		return;
	d->interval_ms = interval;
	event_del(d->timer);
	if (interval) {
		struct timeval tv = {
			.tv_sec = interval / 1000,
			.tv_usec = (interval % 1000) * 1000,
		};

		event_add(d->timer, &tv);
	}
}

static void domain_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct domain *d = arg;

	if (!d->running && !d->settling && !d->change && d->enabled &&
	    !d->dying)
		domain_round_start(d, true);
}

/* ------------------------------------------------------------ rounds */

/*
 * The round's map of non-empty blocks (subscriber_round_scan()): the event
 * loop's, one for every domain, grown to the largest plan (1/512 of its
 * bitmap: 64 KiB at 1 TiB) and kept.
 */
static struct {
	uint64_t *words;
	uint64_t n;
} fold_blocks;

static uint64_t *fold_blocks_get(uint64_t nwords)
{
	uint64_t n = subscriber_blocks_words(nwords);

	if (n > fold_blocks.n) {
		uint64_t *p = realloc(fold_blocks.words, n * 8);

		if (!p)
			return NULL;
		fold_blocks.words = p;
		fold_blocks.n = n;
	}
	if (n)	/* a plan with nothing mapped: no map (never allocated) */
		memset(fold_blocks.words, 0, n * 8);
	return fold_blocks.words;
}

/*
 * OR this round's bits into every subscriber; returns the pages.  Each
 * range's words are read once, counted and their non-empty blocks marked
 * in one pass; every subscriber then ORs only those blocks: with N
 * subscribers the round's bitmap is read once, not N times.  (Without the
 * map, out of memory: each range whole into each subscriber.)
 */
static uint64_t domain_fold(struct domain *d)
{
	struct harvest_domain *p = d->plan;
	uint64_t *blocks = fold_blocks_get(p->nwords);
	struct subscription *sub;
	uint64_t pages = 0;

	for (size_t i = 0; i < p->nranges; i++) {
		const struct harvest_range *rg = &p->ranges[i];
		uint64_t w0, w1, here;

		if (rg->flags & HARVEST_RANGE_SKIP)
			continue;
		/* a device that can track neither way (ALL_DIRTY): every
		 * page of every range it can write */
		if (d->all_dirty)
			memset(p->bitmap + rg->bit / 64, 0xff,
			       ((rg->bit + rg->length / p->page_size + 63) / 64 -
				rg->bit / 64) * 8);
		harvest_range_clip(p, rg, &w0, &w1);
		here = blocks ? subscriber_round_scan(p->bitmap, w0, w1,
						      blocks) :
				extent_count_bits(p->bitmap + w0, w1 - w0);
		if (!here)
			continue;
		pages += here;
		list_for_each_entry(sub, &d->subs, dom_link)
			if (blocks)
				subscriber_set_fold_blocks(&sub->set,
							   p->bitmap, blocks,
							   w0, w1);
			else
				subscriber_set_fold(&sub->set, w0,
						    p->bitmap + w0, w1 - w0);
	}
	return pages;
}

void domain_refold(struct domain *d, const uint64_t *old)
{
	harvest_layout_restore(d->plan, old);
	domain_fold(d);
}

static void domain_note_stats(struct domain *d, uint64_t pages)
{
	uint64_t now = now_ns();

	d->last_round_ns = now - d->round_start_ns;
	d->last_round_pages = pages;
	d->rounds_ns += d->last_round_ns;
	d->rounds_pages += pages;
	d->srv->rounds_pages += pages;
	domain_rate_note(&d->rate, now, d->round_start_ns, pages);
}

static void domain_notify(struct domain *d, uint64_t pages, bool lost)
{
	struct subscription *sub;

	list_for_each_entry(sub, &d->subs, dom_link) {
		/* EV_STATE_LOST goes to every session (not to a park) */
		if (!lost)
			subscription_round(sub, d->generation, pages);
		else if (sub->session)
			subscription_lost(sub);
	}
}

/* Run waiters queued for an idle domain while it stays idle (a waiter
 * may start a round or a change). */
static void domain_run_idle(struct domain *d)
{
	while (!d->running && !d->change && !list_empty(&d->idle_waiters)) {
		struct domain_waiter *w = list_first_entry(&d->idle_waiters,
							   struct domain_waiter,
							   link);

		list_del_init(&w->link);
		w->fn(w, d->dying ? -ENOENT : 0);
	}
}

/* After a round's or a change's end and the waiters it let run: free a
 * domain destroyed meanwhile, else start what was put off. */
static void domain_settled(struct domain *d)
{
	if (d->dying) {
		domain_free(d);
		return;
	}
	if (d->running || d->change)
		return;
	if (!list_empty(&d->next_waiters))
		domain_round_start(d, false);
	else if (d->retire_wanted)
		domain_subscriptions_changed(d);
}

static void domain_round_finish(struct domain *d, int result)
{
	struct subscription *sub;

	d->running = false;
	d->settling = true;
	domain_sources_round(d, result);
	if (result < 0) {
		log_error_errno(result, "harvest of domain %u failed; every "
				"subscriber now has every page pending", d->id);
		d->round_errors++;
		d->srv->round_errors++;
		list_for_each_entry(sub, &d->subs, dom_link)
			subscriber_set_mark_all(&sub->set);
		domain_notify(d, 0, true);
	} else {
		uint64_t pages = domain_fold(d);

		/* a readopted domain's backlog reached its subscribers */
		if (d->nsubs)
			d->backlog = false;
		d->generation++;
		/* durable: a restarted dirtyd goes on counting from here */
		__atomic_store_n(&d->counters[0], d->generation,
				 __ATOMIC_RELEASE);
		d->srv->rounds++;
		domain_note_stats(d, pages);
		/* EV_ROUND: what periodic rounds add; a SYNC has its reply */
		if (d->round_periodic)
			domain_notify(d, pages, false);
	}
	while (!list_empty(&d->round_waiters)) {
		struct domain_waiter *w = list_first_entry(&d->round_waiters,
							   struct domain_waiter,
							   link);

		list_del_init(&w->link);
		w->fn(w, d->dying ? -ENOENT : result);
	}
	domain_run_idle(d);
	d->settling = false;
	domain_settled(d);
}

void domain_idle_again(struct domain *d)
{
	d->settling = true;
	domain_run_idle(d);
	d->settling = false;
	domain_settled(d);
}

static void domain_on_round_done(void *ctx, struct harvest_domain *hd,
				 int result)
{
	domain_round_finish(ctx, result);
}

/* A plan with nothing to read completes from the loop, not inside
 * harvest_engine_start(), so that a round is never finished re-entrantly. */
static void domain_on_empty_round(evutil_socket_t fd, short what, void *arg)
{
	domain_round_finish(arg, 0);
}

static void domain_round_start(struct domain *d, bool periodic)
{
	int r;

	list_splice_tail_init(&d->next_waiters, &d->round_waiters);
	if (!d->enabled) {
		/* no round can run: waiters that only wanted earlier writes
		 * folded have them (tracking stopped after a round) */
		while (!list_empty(&d->round_waiters)) {
			struct domain_waiter *w =
				list_first_entry(&d->round_waiters,
						 struct domain_waiter, link);

			list_del_init(&w->link);
			w->fn(w, w->needs_tracking ? -EINVAL : 0);
		}
		return;
	}
	d->running = true;
	d->round_periodic = periodic;
	d->round_start_ns = now_ns();
	if (!d->plan->nbatches) {
		event_active(d->ev_empty_round, 0, 0);
		return;
	}
	/* the kernel clears what it reads: only into bitmaps a committed
	 * version names */
	journal_flush(d->srv);
	r = harvest_engine_start(d->srv->engine, d->plan, 0, domain_on_round_done,
				 d);
	if (r < 0 && !d->plan->pending) {
		/* never started */
		domain_round_finish(d, r);
	} else if (r < 0) {
		log_warning_errno(r, "submitting the harvest of domain %u "
				  "failed; retrying on the next completion",
				  d->id);
	}
}

void domain_when_idle(struct domain *d, struct domain_waiter *w,
		      void (*fn)(struct domain_waiter *w, int result))
{
	w->dom = d;
	w->fn = fn;
	w->needs_tracking = false;
	if (!d->running && !d->change) {
		fn(w, 0);
		return;
	}
	list_add_tail(&w->link, &d->idle_waiters);
}

void domain_after_round(struct domain *d, struct domain_waiter *w,
			bool needs_tracking,
			void (*fn)(struct domain_waiter *w, int result))
{
	w->dom = d;
	w->fn = fn;
	w->needs_tracking = needs_tracking;
	list_add_tail(&w->link, &d->next_waiters);
	if (!d->running && !d->settling && !d->change)
		domain_round_start(d, false);
}

void domain_waiter_cancel(struct domain_waiter *w)
{
	if (w->link.next && !list_empty(&w->link))
		list_del_init(&w->link);
}

void domain_engine_event(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	int r = harvest_engine_process(srv->engine);

	if (r < 0)
		log_error_errno(r, "processing harvest completions failed");
}

int domain_round_init(struct domain *d)
{
	struct event_base *base = d->srv->base;

	d->timer = event_new(base, -1, EV_PERSIST, domain_on_timer, d);
	d->ev_empty_round = event_new(base, -1, 0, domain_on_empty_round, d);
	if (!d->timer || !d->ev_empty_round) {
		domain_round_release(d);
		return -ENOMEM;
	}
	return 0;
}

void domain_round_release(struct domain *d)
{
	if (d->timer)
		event_free(d->timer);
	if (d->ev_empty_round)
		event_free(d->ev_empty_round);
	d->timer = NULL;
	d->ev_empty_round = NULL;
}
