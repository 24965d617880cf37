// SPDX-License-Identifier: MIT
/*
 * Changes of a domain's mappings, off the event loop.
 *
 * Owns: one change at a time per domain, and its subscriber sets frozen
 * while it runs (subscriber.h); what the worker makes is put in place on
 * the loop, all at once.
 *
 * A MAP, an UNMAP, or a retire (dropping retired ranges nobody holds any
 * more) changes the kernel's page tables (IOMMU_IOAS_MAP pins and maps
 * every page: about a second per 256 GiB on the sim, as long on a real
 * IOMMU), lays the plan out again and moves every subscriber's bits to
 * the new layout: O(everything mapped) a subscriber.  On the event loop
 * that stalled every client of every domain for as long: seconds at a
 * terabyte with a few subscribers.  So a change runs in three steps:
 *
 *  - on the loop (domain_map.c, then domain_change_run()): the checks, the
 *    intent (committed: a restart undoes a MAP, finishes an UNMAP), and
 *    every subscriber set of the domain frozen (subscriber.h): from here
 *    the loop only reads their bitmaps, and what it would write waits;
 *  - on a thread of the change's own (the backend is thread-safe, and so
 *    is bitmem): the kernel call, the new mappings and plan, and each
 *    set's bits moved into new bitmaps (or, where the layout did not
 *    change, new pages marked in place).  It reads the domain's mappings
 *    and plan, which nothing else changes meanwhile, and the snapshots;
 *  - back on the loop (the change's eventfd): the sets take their new
 *    bitmaps and are thawed, the domain its mappings and plan, the journal
 *    owes the commit that ends the intent (made before the answer leaves
 *    and before the next round), the requester is answered, then the domain's
 *    waiters run (domain_idle_again()).
 *
 * While it runs the domain is not idle (d->change): no round starts, the
 * requests that change the domain wait (domain_when_idle()), SYNC's round
 * starts after it, GET_RANGES, ACK and SUBSCRIBE of the domain wait
 * (requests.c), and every other domain and session is served.  A thread a
 * change: one domain's change never waits for another's.  The new bitmaps
 * are allocated but named by no commit until the end: a kill in between
 * leaves the committed version (old mappings, old bitmaps, the intent) to
 * the next start, which punches what the change allocated.  At a stop the
 * changes are waited for (domain_changes_wait()); nothing a worker uses is
 * freed before it is done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/domain/domain_private.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/state/state.h"

struct domain_change *domain_change_new(struct domain *d,
					enum change_kind kind)
{
	struct domain_change *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->d = d;
	c->kind = kind;
	c->efd = -1;
	c->t0 = domain_now_ns();
	list_init(&c->waiters);
	return c;
}

static void change_free(struct domain_change *c)
{
	if (c->ev)
		event_free(c->ev);
	if (c->efd >= 0)
		close(c->efd);
	free(c->maps);
	free(c->retired);
	free(c->subs);
	free(c);
}

/* Thaw the sets frozen so far; those the change moved take their new
 * bitmaps (a failed change moved none). */
static void change_thaw(struct domain_change *c)
{
	for (size_t i = 0; i < c->nsubs; i++) {
		struct change_sub *cs = &c->subs[i];
		struct subscription *sub = cs->sub;

		if (!sub) {
			/* dropped meanwhile: its set goes now */
			subscriber_set_thaw(&cs->gone, &cs->snap, NULL, NULL);
			subscriber_set_release(&cs->gone);
			subscriber_set_release(&cs->moved);
			continue;
		}
		if (cs->drop) {
			/* no place in the new plan: thawed as it is, then
			 * dropped (change_tell_lost(), which releases it
			 * after its stream took what it sends) */
			subscription_thaw(sub, &cs->snap, NULL, NULL);
			continue;
		}
		subscription_thaw(sub, &cs->snap, c->moved ? &cs->moved : NULL,
				  c->plan);
	}
}

/* What the subscriptions that could not move get: every page, and a
 * word of it; or, out of memory, nothing. */
static void change_tell_lost(struct domain_change *c)
{
	for (size_t i = 0; i < c->nsubs; i++) {
		struct change_sub *cs = &c->subs[i];
		struct subscription *sub = cs->sub;

		if (!sub)
			continue;
		if (cs->drop) {
			log_error("out of memory re-planning domain %u: a "
				  "subscription is dropped", c->d->id);
			subscription_drop(sub);
		} else if (cs->lost) {
			subscription_lost(sub);
		}
	}
}

static const char *const change_names[] = {
	[CHANGE_MAP] = "MAP",
	[CHANGE_UNMAP] = "UNMAP",
	[CHANGE_RETIRE] = "retire",
};

/* What @c cost, for whoever measures how long the loop was held. */
static void change_log(const struct domain_change *c, uint64_t t_end)
{
	char range[64] = "";

	if (c->kind != CHANGE_RETIRE)
		snprintf(range, sizeof(range), " [0x%" PRIx64 ", 0x%" PRIx64
			 ")", c->iova, c->iova + c->length);
	log_debug("domain %u: %s%s %s: %.3f ms off the event loop, %.3f ms "
		  "on it (%.3f at the start, %.3f at the end), %zu "
		  "subscribers%s",
		  c->d->id, change_names[c->kind], range,
		  c->result < 0 ? "failed" : "done",
		  (c->t_worked - c->t_started) / 1e6,
		  (c->t_started - c->t0 + t_end - c->t_worked) / 1e6,
		  (c->t_started - c->t0) / 1e6, (t_end - c->t_worked) / 1e6,
		  c->nsubs, c->moved ? " moved" : "");
}

/* The loop's end of @c: everything in place, answered; @follow: then the
 * domain's waiters and rounds. */
static void change_end(struct domain_change *c, bool follow)
{
	struct domain *d = c->d;
	struct server *srv = d->srv;
	struct harvest_domain *old = NULL;

	if (c->plan) {
		old = d->plan;
		d->plan = c->plan;
	}
	change_thaw(c);
	if (old) {
		harvest_domain_release(old);
		free(old);
	}
	if (c->maps) {
		free(d->maps);
		d->maps = c->maps;
		d->nmaps = c->nmaps;
		d->mapped_bytes = c->mapped_bytes;
		c->maps = NULL;
	}
	if (c->retired) {
		free(d->retired);
		d->retired = c->retired;
		d->nretired = c->nretired;
		c->retired = NULL;
	}
	d->change = NULL;
	d->change_bytes = 0;
	change_tell_lost(c);
	/* one commit, owed: the new mappings and bitmaps, the intent ended;
	 * the old bitmaps, released by the thaw, are reclaimed after it */
	if (c->kind != CHANGE_RETIRE)
		journal_change_end(d);
	else if (c->plan)
		journal_note(srv);
	change_log(c, domain_now_ns());
	while (!list_empty(&c->waiters)) {
		struct domain_waiter *w = list_first_entry(&c->waiters,
							   struct domain_waiter,
							   link);

		list_del_init(&w->link);
		w->err = c->err;
		w->fn(w, c->result);
	}
	change_free(c);
	if (follow)
		domain_idle_again(d);
}

/*
 * How much lower than the loop a change's thread runs (nice, this thread
 * only).  On a machine with few CPUs the worker, busy for seconds, would
 * otherwise take the loop's CPU share: perf sched showed the loop thread
 * preempted (runnable, not running) for up to 145 ms while a worker moved
 * a gigabyte of bitmaps on two CPUs.  The loop's work is short, so it
 * wins whenever it has some; the worker gets the rest.
 */
#define CHANGE_NICE 10

static void *change_main(void *arg)
{
	struct domain_change *c = arg;
	uint64_t one = 1;

	prctl(PR_SET_NAME, "dirtyd-change");
	/* best effort: it only makes the change slower to finish */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), CHANGE_NICE);
	c->result = c->work(c);
	c->t_worked = domain_now_ns();
	/* the loop ends it; the thread is joined there */
	while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return NULL;
}

/* The thread is done or about to be: join it. */
static void change_join(struct domain_change *c)
{
	int r = pthread_join(c->thread, NULL);

	if (r)
		log_error_errno(-r, "joining the change of domain %u failed",
				c->d->id);
}

static void change_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct domain_change *c = arg;

	change_join(c);
	change_end(c, true);
}

/* The change's thread, signalled on its eventfd; -errno. */
static int change_start_thread(struct domain_change *c)
{
	sigset_t all, old;
	int r;

	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0)
		return -errno;
	c->ev = event_new(c->d->srv->base, c->efd, EV_READ, change_on_done,
			  c);
	if (!c->ev || event_add(c->ev, NULL) < 0)
		return -ENOMEM;
	/* signals are the loop's (libevent's handlers) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&c->thread, NULL, change_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* @c could not start (out of memory freezing the sets): undone. */
static int change_never(struct domain_change *c, struct error *e)
{
	struct domain *d = c->d;

	change_thaw(c);
	d->change_bytes = 0;
	if (c->kind != CHANGE_RETIRE)
		journal_change_end(d);
	change_free(c);
	return error_set(e, -ENOMEM, "out of memory");
}

int domain_change_run(struct domain_change *c, bool async,
		      struct error *e, struct domain_waiter *w,
		      void (*fn)(struct domain_waiter *w, int result))
{
	struct domain *d = c->d;
	struct subscription *sub;
	int r;

	c->subs = calloc(d->nsubs + 1, sizeof(*c->subs));
	if (!c->subs)
		return change_never(c, e);
	list_for_each_entry(sub, &d->subs, dom_link) {
		struct change_sub *cs = &c->subs[c->nsubs];

		if (subscription_freeze(sub, &cs->snap) < 0)
			return change_never(c, e);
		cs->sub = sub;
		cs->clean = sub->clean;
		c->nsubs++;
	}
	d->change = c;
	if (w) {
		w->dom = d;
		w->fn = fn;
		w->needs_tracking = false;
		list_add_tail(&w->link, &c->waiters);
	}
	c->t_started = domain_now_ns();
	if (!async) {
		c->result = c->work(c);
		c->t_worked = domain_now_ns();
		r = c->result;
		if (r < 0 && e)
			*e = c->err;
		change_end(c, false);
		return r;
	}
	r = change_start_thread(c);
	if (r < 0) {
		/* it runs all the same, as it did before there were threads */
		log_error_errno(r, "starting a thread for a change of domain "
				"%u failed; it runs on the event loop", d->id);
		if (c->ev)
			event_free(c->ev);
		c->ev = NULL;
		c->result = c->work(c);
		c->t_worked = domain_now_ns();
		change_end(c, false);
	}
	return 0;
}

struct subscriber_set *domain_change_sub_dropped(struct subscription *sub)
{
	struct domain_change *c = sub->dom->change;

	if (!c)
		return NULL;
	for (size_t i = 0; i < c->nsubs; i++)
		if (c->subs[i].sub == sub) {
			c->subs[i].sub = NULL;
			return &c->subs[i].gone;
		}
	return NULL;
}

void domain_change_wait(struct domain *d)
{
	struct domain_change *c = d->change;

	if (!c)
		return;
	if (c->ev) {
		change_join(c);
		event_del(c->ev);
	}
	change_end(c, false);
}

void domain_changes_wait(struct server *srv)
{
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		domain_change_wait(d);
}

void domain_changes_join(struct server *srv)
{
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		if (d->change && d->change->ev) {
			change_join(d->change);
			event_free(d->change->ev);
			d->change->ev = NULL;	/* joined */
		}
}
