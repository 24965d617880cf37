/* SPDX-License-Identifier: MIT */
/* What the files of the domain module share; nothing outside it uses this. */
#ifndef DIRTYD_DOMAIN_PRIVATE_H
#define DIRTYD_DOMAIN_PRIVATE_H

#include <pthread.h>

#include "daemon/domain/domain.h"
#include "protocol/proto.h"

/** domain_free() - release the backend objects and memory of @d, now:
 *  idle, destroyed (or never finalised), nobody refers to it. */
void domain_free(struct domain *d);
/** domain_round_init() - the domain's timers (its periodic rounds, and
 *  rounds with nothing to read); -ENOMEM. */
int domain_round_init(struct domain *d);
/** domain_round_release() - free them; safe if never made. */
void domain_round_release(struct domain *d);
/** domain_plan_build() - a plan over @d's mappings and retired ranges,
 *  in the state's bitmap memory; -errno. */
int domain_plan_build(struct domain *d, struct harvest_domain **out);
/** domain_plan_ranges() - the same over @maps and @retired (both by IOVA)
 *  with @mapped bytes mapped; any thread. */
int domain_plan_ranges(struct domain *d, const struct domain_mapping *maps,
		       size_t nmaps, const struct harvest_range *retired,
		       size_t nretired, uint64_t mapped,
		       struct harvest_domain **out);
/** domain_idle_again() - a change ended: run the waiters for idleness,
 *  start the round next waiters need. */
void domain_idle_again(struct domain *d);

/* ------------------------------------------------------------ changes */

/* One subscription's set during a change. */
struct change_sub {
	struct subscription *sub;	/* NULL: dropped meanwhile */
	struct subscriber_set gone;	/* then its set, until the end */
	struct subscriber_snap snap;	/* the frozen set, as the worker
					 * reads it */
	bool clean;
	/* the worker's: the set in the new plan (moved), or every page
	 * pending there because it could not move (lost), or not even that
	 * (drop: out of memory) */
	struct subscriber_set moved;
	bool lost;
	bool drop;
};

enum change_kind {
	CHANGE_MAP,
	CHANGE_UNMAP,
	CHANGE_RETIRE,		/* drop retired ranges nobody holds */
};

/*
 * A change of a domain (domain_change.c).  The worker reads the domain's
 * mappings, retired ranges and plan (nothing changes them while the
 * change runs) and the sets' snapshots, and fills in what the change
 * makes; the loop's end of the change puts it in place.
 */
struct domain_change {
	struct domain *d;
	enum change_kind kind;
	uint64_t iova, length;
	uint32_t flags;			/* PROTO_MAP_* */
	size_t nsubs;
	struct change_sub *subs;
	/* made by the worker */
	int (*work)(struct domain_change *c);
	int result;
	struct error err;		/* why it failed */
	struct domain_mapping *maps;	/* new mappings, or NULL: the same */
	size_t nmaps;
	uint64_t mapped_bytes;
	struct harvest_range *retired;	/* new retired ranges, or NULL */
	size_t nretired;
	struct harvest_domain *plan;	/* the new plan, or NULL */
	bool moved;			/* the sets have new bitmaps */
	/* who waits for it, on the loop */
	struct list_head waiters;
	/* how long each part took (domain_now_ns()): the loop's start, the
	 * work, the loop's end */
	uint64_t t0, t_started, t_worked;
	/* the thread */
	pthread_t thread;
	int efd;
	struct event *ev;
};

/**
 * domain_change_run() - run @c (its work set) on @c->d, which must be idle:
 * freeze the sets, then, @async, the work on a thread of its own and the
 * end from the loop, where @fn answers @w (if any; returns 0, or -errno if
 * it could not start, @c freed, @e says why); else everything now
 * (returns the result, @e says why; @fn answers @w all the same).
 */
int domain_change_run(struct domain_change *c, bool async,
		      struct error *e, struct domain_waiter *w,
		      void (*fn)(struct domain_waiter *w, int result));
/** domain_change_new() - a zeroed change of @d; NULL. */
struct domain_change *domain_change_new(struct domain *d,
					enum change_kind kind);
/** domain_change_wait() - wait for @d's change and end it now, without
 *  running waiters or rounds after it. */
void domain_change_wait(struct domain *d);

/* Mappings per domain: one harvest range each. */
#define DOMAIN_MAX_MAPS 65536

#endif
