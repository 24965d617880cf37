/* SPDX-License-Identifier: MIT */
/*
 * dirtyd domains: one IOAS and one HWPT (allocated with or without dirty
 * tracking), the devices attached to it, the mappings dirtyd made, the
 * harvest plan over them, and the subscribers that receive its rounds.
 *
 * Rounds.  A round is one harvest of every mapped range (harvest.h).  It
 * runs while tracking is on, when the periodic timer fires (the smallest
 * interval among the domain's periodic subscribers) or when a waiter needs
 * one.  Its completion, on the event loop, folds the round's bits into
 * every subscriber, then answers waiters.
 *
 * Changes.  A MAP, an UNMAP, and dropping retired ranges nobody holds any
 * more (a "retire") run off the event loop (domain_change.c): while one
 * runs (d->change) the domain is not idle, no round starts, and its
 * subscriber sets are frozen (subscriber.h); every other domain is served.
 *
 * Waiters.  Operations that change the plan (map, unmap, tracking, device
 * changes, destruction) must not run while a round reads it or a change
 * rewrites it: they wait for the domain to be idle (domain_when_idle()).  Operations that need every
 * page written before they arrived to be folded into the subscribers (SYNC,
 * UNMAP and TRACK_STOP with tracking on) wait for a round that begins after
 * they were queued (domain_after_round()).  A waiter's callback runs on the
 * event loop with the domain idle; result 0, or the harvest's error, or
 * -ENOENT when the domain was destroyed first, or -EINVAL when it needed a
 * round and tracking was turned off first.
 *
 * Unmapped ranges that subscribers still hold pages of stay in the plan as
 * retired ranges (HARVEST_RANGE_RETIRED) until nobody holds them.
 */
#ifndef DIRTYD_DOMAIN_H
#define DIRTYD_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/harvest/harvest.h"
#include "daemon/util/error.h"
#include "daemon/util/list.h"
#include "daemon/domain/rate.h"
#include "daemon/state/state.h"
#include "daemon/subscriber/subscriber.h"
#include "kernel/backend.h"

struct dma_load;
struct domain;
struct domain_change;
struct event;
struct park;
struct server;
struct session;
struct subscription;

/* How a device's DMA writes reach a tracking domain's rounds. */
enum domain_dev_source {
	DOMAIN_DEV_UNTRACKED = 0,	/* the domain does not track */
	DOMAIN_DEV_IOMMU = 1,		/* its HWPT's dirty bits */
	DOMAIN_DEV_DMA_LOG = 2,		/* its own DMA log */
	DOMAIN_DEV_ALL_DIRTY = 3,	/* neither: every page dirty */
};

struct domain_device {
	struct list_head link;
	char name[BACKEND_NAME_MAX];
	uint32_t dev_id;
	enum domain_dev_source how;
	uint32_t pt_id;			/* the HWPT (or IOAS) it is attached
					 * to; 0: not known (restored) */
	bool dma_logging;		/* the device logs (probed) */
};

/*
 * A source of a domain's dirty bits, or a HWPT it reads nothing from
 * (domain_source.c).  Every HWPT the domain allocated is one: those with
 * tracking are read (several per IOAS when devices sit behind different
 * IOMMUs), plain ones only hold devices that track another way or not at
 * all; each device with DMA logging is one.
 */
enum domain_source_kind {
	DOMAIN_SRC_HWPT = 0,		/* a tracking HWPT: read */
	DOMAIN_SRC_DMA_LOG = 1,		/* a device's DMA log: read */
	DOMAIN_SRC_PLAIN = 2,		/* a HWPT without tracking */
};

struct domain_source {
	enum domain_source_kind kind;
	uint32_t id;			/* HWPT id, or the device's dev_id */
	char device[BACKEND_NAME_MAX];	/* the device (DMA_LOG), or the
					 * HWPT's first */
	unsigned int ndevices;		/* HWPTs: devices attached */
	/* DMA_LOG: what START took (nranges 0: not started) */
	uint64_t page_size;		/* the device's, from START */
	uint32_t nranges;
	uint32_t max_ranges;		/* the most one START took before a
					 * smaller one was needed; 0: none
					 * refused */
	struct backend_dma_log_range *ranges;
	/* since this process made or restored it (LIST_SOURCES, METRICS) */
	uint64_t rounds;		/* rounds that read it */
	uint64_t errors;		/* reads that failed */
	uint64_t restarts;		/* DMA_LOG: re-STARTed by a MAP */
};

/** One MAP: one harvest range. */
struct domain_mapping {
	uint64_t iova;
	uint64_t length;
	void *mem;		/* our anonymous memory (iommufd), or NULL */
	bool external;		/* PROTO_MAP_EXTERNAL: the client mapped it */
	bool readonly;		/* no PROTO_MAP_WRITEABLE: DMA cannot dirty
				 * it, never read (not kept across a restart:
				 * a restored one is read, finding nothing) */
};

struct domain_waiter {
	struct list_head link;
	struct domain *dom;
	bool needs_tracking;
	void (*fn)(struct domain_waiter *w, int result);
	/* why the waiter's operation failed, when fn gets a result < 0 from
	 * an operation that gives one (a change's MAP or UNMAP) */
	struct error err;
};

/**
 * struct domain_lease - a VMM's hold on an adopted domain (ADOPT, READOPT;
 * daemon/server/adopt.c owns it, the journal keeps id, token, pid, uid
 * and deadline).  While @id is not 0 the domain is adopted: DESTROY_DOMAIN
 * and DETACH_DEVICE answer EBUSY.
 */
struct domain_lease {
	uint64_t id;			/* 0: not adopted */
	uint64_t token;			/* the adopter's resume token, or 0 */
	pid_t pid;			/* the adopter's (SO_PEERCRED) */
	uid_t uid;
	struct session *session;	/* the adopter, while connected */
	/* CLOCK_MONOTONIC ns after which a lease without its session is
	 * cleaned up (if its pid is gone too); 0 while connected */
	uint64_t deadline_ns;
	int pidfd;			/* the adopter's, or -1 */
	struct event *timer;		/* the orphan check */
	struct domain_waiter waiter;	/* the cleanup's */
	bool cleaning;
};

/** domain_now_ns() - CLOCK_MONOTONIC, the clock of the statistics. */
uint64_t domain_now_ns(void);

struct domain {
	struct server *srv;
	struct list_head link;
	uint32_t id;
	uid_t owner;
	/*
	 * The domain's own kernel context: one /dev/iommu file (on the sim,
	 * one simulated host) per domain, holding only its devices, IOAS and
	 * HWPT.  iommufd object ids belong to the file, so what GET_FDS hands
	 * out reaches this domain's objects and no other's, and a context
	 * torn by a death mid-change costs only this domain.
	 */
	struct backend *kctx;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	bool tracking_capable;		/* HWPT allocated with tracking */
	bool enabled;			/* tracking is on */
	bool huge_pages;
	uint64_t page_size;		/* the IOAS's IOVA alignment */
	uint64_t max_leaf;

	struct list_head devices;	/* struct domain_device */
	unsigned int ndevices;
	struct domain_source *sources;	/* domain_source.c */
	size_t nsources;
	unsigned int all_dirty;		/* devices accepted ALL_DIRTY */
	uint32_t create_flags;		/* PROTO_CREATE_*: its attaches too */
	struct domain_mapping *maps;	/* by IOVA */
	size_t nmaps;
	uint64_t mapped_bytes;
	struct harvest_range *retired;	/* by IOVA, outside maps */
	size_t nretired;
	struct harvest_domain *plan;

	struct list_head subs;		/* struct subscription */
	unsigned int nsubs;

	uint64_t generation;		/* rounds completed */
	bool running;
	bool round_periodic;		/* the running round: the timer's */
	bool dying;
	bool settling;			/* in a round's completion */
	struct list_head round_waiters;	/* for the running round */
	struct list_head next_waiters;	/* need a round not yet begun */
	struct list_head idle_waiters;
	struct event *timer;
	uint32_t interval_ms;
	struct event *ev_empty_round;	/* ends rounds of no batch */

	/* the change running off the loop (domain_change.c), or NULL */
	struct domain_change *change;
	uint64_t change_bytes;		/* its MAP's length: max_mapped */
	bool retire_wanted;		/* a retire was put off: busy */

	/* statistics */
	uint64_t round_start_ns;
	uint64_t last_round_ns;
	uint64_t last_round_pages;
	struct domain_rate rate;
	/* since this process made or restored the domain (METRICS) */
	uint64_t rounds_ns;		/* time in completed rounds */
	uint64_t rounds_pages;		/* pages they found dirty */
	uint64_t round_errors;		/* rounds that failed */

	struct dma_load *load;		/* a configured guest's DMA */
	char guest[BACKEND_NAME_MAX];	/* the configured guest's name, or "" */

	struct domain_lease lease;	/* adopted by a VMM: lease.id */
	bool holes_refused;		/* the kernel said so (atomic) */
	/* readopted: the IOMMU holds bits written while no dirtyd ran; the
	 * subscriptions of the first round that has any get them, CLEAN ones
	 * too (no round before a CLEAN SUBSCRIBE takes them) */
	bool backlog;

	/* surviving a restart (state.h) */
	struct state_intent intent;	/* the kernel change in progress */
	bool unkept;			/* its context cannot be kept: told */
	bool leaving;			/* freed at a stop: kernel untouched */
	uint64_t *counters;		/* durable: [0] = generation */
};

/* Words of a domain's durable counters (one page). */
#define DOMAIN_COUNTERS_WORDS 512

/** domain_find() - a live domain by id, or NULL. */
struct domain *domain_find(struct server *srv, uint32_t id);
/** domain_of_device() - the domain holding device @name, or NULL. */
struct domain *domain_of_device(struct server *srv, const char *name,
				struct domain_device **dev);
/** domain_count_owned() - live domains of @uid. */
unsigned int domain_count_owned(struct server *srv, uid_t uid);
/** domain_mapped_owned() - bytes mapped by every live domain of @uid,
 *  with the unmapped ranges they still hold (max_mapped). */
uint64_t domain_mapped_owned(struct server *srv, uid_t uid);
/** domain_status() - PROTO_DOMAIN_* bits. */
uint32_t domain_status(const struct domain *d);
/* The most sources a domain has (its HWPTs and its devices' logs): what
 * one round reads, and one LIST_SOURCES packet lists. */
#define DOMAIN_MAX_SOURCES HARVEST_MAX_SOURCES
/** domain_sources_list() - @d's sources as LIST_SOURCES lists them, up to
 *  @max (DOMAIN_MAX_SOURCES is enough) into @out; returns the count. */
struct proto_source;
size_t domain_sources_list(const struct domain *d, struct proto_source *out,
			   size_t max);
/** domain_sources_keepable() - whether what the state records of @d (its
 *  first HWPT, every device behind it) is all its sources: else a restart
 *  cannot restore it whole (it is dropped, its clients told). */
bool domain_sources_keepable(const struct domain *d);
/** domain_adopted() - a VMM holds a lease on @d (ADOPT, READOPT). */
bool domain_adopted(const struct domain *d);
/** domain_lease_release() - forget @d's lease: its timer, its pidfd
 *  (domain_free() does; daemon/server/adopt.c when it ends one). */
void domain_lease_release(struct domain *d);
/** domain_first_device() - the device DMA_WRITE uses, or NULL. */
struct domain_device *domain_first_device(struct domain *d);

/**
 * domain_create() - bind @device, allocate the IOAS and HWPT
 * (PROTO_CREATE_* @flags), attach, and add the domain.  Fails with
 * the reason in @e: -ENOENT no such device, -EBUSY in a domain,
 * -EOPNOTSUPP tracking asked of a device that cannot, -EDQUOT.
 */
int domain_create(struct server *srv, uid_t owner, const char *device,
		  uint32_t flags, struct domain **out, struct error *e);
/**
 * struct domain_given - what READOPT says of a domain whose kernel objects
 * a client held on to: the PROTO_CREATE_* flags it was made with, its
 * IOAS and HWPT, its devices (names canonical, claim checked) and the
 * ranges the client mapped itself.
 */
struct domain_given {
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	const char (*names)[BACKEND_NAME_MAX];
	const uint32_t *dev_ids;
	size_t ndevices;
	const uint64_t (*ranges)[2];	/* iova, length; increasing */
	size_t nranges;
};

/**
 * domain_readopt() - a new domain of @owner around @kctx
 * (backend_open_given(), taken: left, never closed, on failure): the
 * IOAS's alignment is its page size, the HWPT must exist, and each range
 * passes domain_external_probe(), which also shows that tracking is on;
 * with no range, tracking is taken as off (nothing mapped: no bit to
 * lose).  Nothing of the kernel's is changed.  Fails with the reason in
 * @e: -EDQUOT, -EBUSY a device already in a domain, -ENOENT an id the
 * context does not have, -EINVAL a range.
 */
int domain_readopt(struct server *srv, uid_t owner, struct backend *kctx,
		   const struct domain_given *g, struct domain **out,
		   struct error *e);

/**
 * domain_destroy() - drop subscriptions (sending nothing), fail waiters
 * with -ENOENT, detach and unbind devices, free.  Must be idle.
 */
void domain_destroy(struct domain *d);

/* The operations below must run while the domain is idle (from a waiter's
 * callback, or after domain_when_idle() ran it at once); each gives the
 * reason of a failure in @e. */
/** domain_check_range() - -EINVAL (@e says why) unless [@iova, @iova +
 *  @length) is non-empty, page aligned and does not wrap: MAP, UNMAP and
 *  DMA_WRITE alike.  Any time. */
int domain_check_range(struct domain *d, uint64_t iova, uint64_t length,
		       struct error *e);
int domain_attach(struct domain *d, const char *device, uint32_t *dev_id,
		  struct error *e);
int domain_detach(struct domain *d, const char *device, struct error *e);
/**
 * domain_map() - map [@iova, @iova + @length) (PROTO_MAP_* @proto_flags).
 * With @w, the checks run now (-errno, @e says why, @fn never called, if
 * one fails), the rest off the event loop (domain_change.c), and @fn
 * answers on the loop when it is done: result 0, or -errno with the
 * reason in @w->err; returns 0.  Without @w (at start, at a restore) it
 * all runs on the calling thread and the result is returned, the reason
 * in @e.
 */
int domain_map(struct domain *d, uint64_t iova, uint64_t length,
	       uint32_t proto_flags, struct error *e, struct domain_waiter *w,
	       void (*fn)(struct domain_waiter *w, int result));
/** domain_unmap() - whole mappings in [iova, iova + length); with
 *  tracking on, run it after a round (domain_after_round()).  @proto_flags
 *  is 0 or PROTO_MAP_EXTERNAL (drop client mappings from the plan only).
 *  @w and @fn as for domain_map(). */
int domain_unmap(struct domain *d, uint64_t iova, uint64_t length,
		 uint32_t proto_flags, struct error *e, struct domain_waiter *w,
		 void (*fn)(struct domain_waiter *w, int result));
/**
 * domain_external_probe() - whether [@iova, @iova + @length), declared
 * EXTERNAL, is wholly mapped in @d's IOAS: IOMMU_HWPT_GET_DIRTY_BITMAP
 * with NO_CLEAR over it (nothing is cleared; the bits are dropped), on
 * the real kernel with tracking on (a HWPT that does not track refuses
 * every read; the sim has no EXTERNAL).  Linux 6.12.118 answers EINVAL
 * across a hole: then -EINVAL, @e naming the range; earlier 6.12.y read
 * holes as clean, so there it passes.  0 where it cannot probe.  Any
 * thread; one page-table walk of the range.
 */
int domain_external_probe(struct domain *d, uint64_t iova, uint64_t length,
			  struct error *e);
/**
 * domain_verifies_external() - whether domain_external_probe() can catch
 * a hole here: the real kernel, a tracking HWPT, and a kernel that
 * refuses a read across one (asked once with a NO_CLEAR read of one page
 * no mapping of @d covers; a refusal is remembered).  Any thread.
 */
bool domain_verifies_external(struct domain *d);
/** domain_unmap_check() - what domain_unmap() would refuse, now. */
int domain_unmap_check(struct domain *d, uint64_t iova, uint64_t length,
		       uint32_t proto_flags, struct error *e);
int domain_set_tracking(struct domain *d, bool enable, struct error *e);

/** domain_when_idle() - call @fn now if idle, else after the round. */
void domain_when_idle(struct domain *d, struct domain_waiter *w,
		      void (*fn)(struct domain_waiter *w, int result));
/** domain_after_round() - call @fn after a round that begins after now
 *  (starting one if none runs). */
void domain_after_round(struct domain *d, struct domain_waiter *w,
			bool needs_tracking,
			void (*fn)(struct domain_waiter *w, int result));
/** domain_waiter_cancel() - forget @w if queued; its fn is not called. */
void domain_waiter_cancel(struct domain_waiter *w);

/** domain_subscriptions_changed() - recompute the timer; drop retired
 *  ranges nobody holds any more. */
void domain_subscriptions_changed(struct domain *d);
/** domain_timer_update() - arm the periodic timer at the smallest
 *  interval of the domain's periodic subscribers, or stop it. */
void domain_timer_update(struct domain *d);
/** domain_change_sub_dropped() - @sub goes away during its domain's
 *  change: where the change keeps its set until its end (the caller
 *  moves it there), or NULL if no change reads it. */
struct subscriber_set *domain_change_sub_dropped(struct subscription *sub);

/** domain_start_guest_load() - run a configured guest's DMA writers. */
struct guest_config;
int domain_start_guest_load(struct domain *d, const struct guest_config *g);

/** domain_destroy_all() - every domain destroyed (detached, unbound,
 *  unmapped, freed in the kernel), rounds and changes finished first:
 *  for an exit with nothing kept (the in-process tests). */
void domain_destroy_all(struct server *srv);
/** domain_leave_all() - at dirtyd's stop: every domain's memory freed and
 *  its kernel context left (backend_leave(): dirtyd's descriptors closed,
 *  nothing destroyed), rounds and changes finished first.  The journal
 *  must commit nothing any more (state_leave()). */
void domain_leave_all(struct server *srv);
/** domain_changes_wait() - wait for every change running off the loop and
 *  finish it (committed; answered if its client is still there); nothing
 *  new starts from it. */
void domain_changes_wait(struct server *srv);
/** domain_changes_join() - at an exit that keeps the state: wait for the
 *  threads of the changes, nothing more (the kernel's part is whole; the
 *  intent lets the successor undo a MAP, finish an UNMAP: no client heard
 *  of either). */
void domain_changes_join(struct server *srv);

/*
 * Restoring what a previous process kept (state/restore.c).
 * domain_alloc(): a domain of @owner's as creation begins one (its lists
 * empty, nothing of the kernel's), NULL without memory; the restore fills
 * it in (kernel context, id, ids, flags, page size, leaf, counters,
 * generation, guest, intent), adds its devices with domain_device_add()
 * and hands it its mappings and retired ranges, domain_mappings_take()
 * (arrays of @nmaps + 1 and @nretired + 1 from the heap: @d owns them).
 * domain_restored(): then it gets its timers and plan and is listed
 * (freed on failure).
 * domain_discard(): one not listed yet, freed without touching its kernel
 * context (left, not closed: the store keeps it).  domain_refold():
 * OR the round bitmap region @old (laid out as @d's plan, bounce words
 * after it) into every subscriber again.  domain_resolve_intent(): undo or
 * finish the kernel change @d was in the middle of.
 */
struct domain *domain_alloc(struct server *srv, uid_t owner);
int domain_device_add(struct domain *d, const char *name, uint32_t dev_id);
void domain_mappings_take(struct domain *d, struct domain_mapping *maps,
			  size_t nmaps, struct harvest_range *retired,
			  size_t nretired);
void domain_discard(struct domain *d);
int domain_restored(struct domain *d);
void domain_refold(struct domain *d, const uint64_t *old);
void domain_resolve_intent(struct domain *d);

/** domain_engine_event() - the engine's eventfd callback (libevent). */
void domain_engine_event(int fd, short what, void *arg);

#endif
