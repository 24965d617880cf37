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

/* ------------------------------------------------------------ sources
 * (domain_source.c) */

/**
 * domain_device_place() - decide how @dev (bound, its capability @caps
 * read) is tracked in @d (@d->create_flags, dirtyd.conf's dirty_source)
 * and attach it: to a tracking HWPT of @d's that takes it, else a new one
 * (a device behind another IOMMU), or to a plain HWPT; a DMA logging
 * device becomes a source (started now if tracking is on).  -EOPNOTSUPP
 * with the reason for a device a tracking domain cannot track (without
 * PROTO_CREATE_ALL_DIRTY); the kernel's errno otherwise.  Nothing changed
 * on failure but HWPTs allocated for it (destroyed).
 */
int domain_device_place(struct domain *d, struct domain_device *dev,
			uint64_t caps, struct error *e);
/** domain_device_unplace() - undo domain_device_place() (the device is
 *  detached or about to be): its log stopped, its source and a HWPT it
 *  alone held gone (never the domain's first HWPT, d->hwpt_id). */
void domain_device_unplace(struct domain *d, struct domain_device *dev);
/** domain_sources_restored() - a restored domain's sources: its one HWPT
 *  (the state keeps no more), every device behind it. */
int domain_sources_restored(struct domain *d);
/** domain_sources_free() - forget them (the objects go with the context). */
void domain_sources_free(struct domain *d);
/** domain_sources_track() - TRACK_START/STOP of every source: dirty
 *  tracking of each tracking HWPT, START (over the mapped ranges) or STOP
 *  of each log; all or nothing. */
int domain_sources_track(struct domain *d, bool enable, struct error *e);
/** domain_sources_apply() - the sources @d reads into @plan (its
 *  harvest sources); -ENOMEM. */
int domain_sources_apply(struct domain *d, struct harvest_domain *plan);
/** domain_sources_round() - a round of @d's plan ended (@result): count
 *  it per source. */
void domain_sources_round(struct domain *d, int result);
/**
 * domain_sources_read() - the worker's read of [@iova, @iova + @length),
 * a mapped range about to be unmapped, from every source (HWPTs with
 * NO_CLEAR, logs with a REPORT), each page found dirty marked pending in
 * every set of @c; -errno (the change marks the range instead).
 */
int domain_sources_read(struct domain_change *c, uint64_t iova,
			uint64_t length);
/**
 * domain_sources_mapped() - the worker's: after the kernel's MAP of
 * [@iova, @iova + @length), each log whose started ranges miss it is
 * STOPped and STARTed again over @c's mappings; what it covered before is
 * marked pending in every set of @c (its writes between its last report
 * and the STOP are not known).  -errno (the round after fails the same).
 */
int domain_sources_mapped(struct domain_change *c, uint64_t iova,
			  uint64_t length);
/**
 * domain_log_ranges() - @n ranges (by IOVA, apart) merged into at most
 * @max (>= 1), joining the smallest gaps first, into @out (room for @n);
 * returns the count.  Any thread.
 */
size_t domain_log_ranges(const struct backend_dma_log_range *in, size_t n,
			 size_t max, struct backend_dma_log_range *out);

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
