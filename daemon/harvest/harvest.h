/* SPDX-License-Identifier: MIT */
/*
 * The harvest engine: reads the dirty bitmaps of many domains in parallel
 * batches, with one io_uring carrying submissions and completions.
 *
 * Planning (harvest_domain_plan()): a domain's mapped IOVA ranges, and only
 * those (the kernel silently skips holes), are laid out back to back in one
 * page-aligned bitmap, and cut into batches at multiples of the batch size:
 * at most the kernel's bitmap window (2 MiB of bitmap: 64 GiB of IOVA at
 * 4 KiB), halved down to keep every worker busy on small domains, but never
 * below 1 GiB so that no read ends inside a huge leaf (see harvest_plan.c).
 * Each batch's slice starts a page of the bitmap and pins whole windows.  The bitmap is
 * allocated once and reused every round; each batch zeroes its slice right
 * before its read.
 *
 * Sources (struct harvest_source): each batch reads every source of its
 * plan, one after the other, into its slice: HWPTs (several per IOAS: their
 * bits ORed, as QEMU's iommufd_query_dirty_bitmap() does) and devices' DMA
 * logs.
 *
 * Execution (harvest_engine_*): one io_uring, the engine ring, carries
 * every batch's submission and completion, in one of two modes chosen at
 * start.  Async: where the backend reads dirty bits asynchronously
 * (backend_caps()' dirty_read_async), the backend prepares each batch's
 * read as an SQE of the engine ring (backend_dirty_read_prep()) and there
 * are no worker threads.  On iommufd that is IOMMU_HWPT_GET_DIRTY_BITMAP as
 * an IORING_OP_URING_CMD (128-byte SQEs, the ioctl's struct in the command
 * area), where the kernel runs it (probed when the backend opens: no stock
 * kernel does; one with kernel/patches/ applied does): the kernel finds
 * the read would block, io_uring runs it on its own io-wq workers, and the
 * CQE carries the final result, the ioctl's 0 or -errno.  On the sim, its
 * reader threads perform the read and post the CQE.  Workers: otherwise
 * (or with force_workers) a pool of worker threads, each with a small ring
 * of its own, receives batches as IORING_OP_MSG_RING messages from the
 * engine ring, performs the ioctl through the backend, and posts the
 * completion back to the engine ring with IORING_OP_MSG_RING
 * (kernel/ring_worker.h).  One completion path either way.  The engine
 * ring's eventfd wakes the daemon's event loop; a blocking caller uses
 * harvest_engine_wait().
 */
#ifndef DIRTYD_HARVEST_H
#define DIRTYD_HARVEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/backend.h"

struct bitmem;
struct harvest_domain;
struct harvest_engine;

/* 2 MiB of bitmap: the kernel pins a user bitmap 512 pages at a time. */
#define HARVEST_WINDOW_BITS (1ULL << 24)

/**
 * A mapped IOVA range and where its bits start in the domain bitmap.  A
 * retired range (unmapped while subscribers still hold its bits) keeps its
 * place in the layout but is never read.
 */
struct harvest_range {
	uint64_t iova;
	uint64_t length;
	uint64_t bit;		/* first bit; = iova / page size mod 32768 */
	uint32_t flags;		/* HARVEST_RANGE_* */
};
#define HARVEST_RANGE_RETIRED (1u << 0)
/* A mapped range no source is read for (a read-only mapping: DMA cannot
 * dirty it): in the layout, never read, never folded. */
#define HARVEST_RANGE_UNREAD (1u << 1)
#define HARVEST_RANGE_SKIP (HARVEST_RANGE_RETIRED | HARVEST_RANGE_UNREAD)

/** One GET_DIRTY_BITMAP call. */
struct harvest_batch {
	struct harvest_domain *dom;
	uint64_t iova;
	uint64_t length;
	uint64_t *bitmap;	/* slice of dom->bitmap */
	uint64_t nwords;
	/* A range's head (its pages before the first 64-page boundary) is
	 * read into *@bounce and lands in *bitmap shifted by @shift (!= 0).
	 * The bounce words follow the layout's nwords in the plan's bitmap
	 * allocation, so they live wherever the bitmap does (bitmem.h). */
	unsigned int shift;
	uint64_t *bounce;
	int result;		/* 0 or -errno of the last round */
	unsigned int src;	/* the engine's: the source being read */
	struct backend_dirty_read rd;	/* the engine's: the read in flight */
};

/**
 * One source of a plan's dirty bits: an IOMMU HWPT
 * (IOMMU_HWPT_GET_DIRTY_BITMAP) or a device's DMA log
 * (DMA_LOGGING_REPORT).  A batch reads every source of its plan in turn
 * into its one slice (serialized per batch: the kernel sets a bitmap's
 * bits without atomics, so two reads never write the same words at once);
 * the bits are ORed, as the kernel only sets them.  A read that fails
 * ends the batch with its error (the round fails: its caller puts every
 * page back, see domain_round.c).
 * @kind: BACKEND_READ_HWPT or BACKEND_READ_DMA_LOG
 * @id: the HWPT id, or the device's dev_id
 * @errors: reads of it that failed (atomic: counted on any thread)
 */
struct harvest_source {
	uint32_t kind;
	uint32_t id;
	uint64_t errors;
};
#define HARVEST_MAX_SOURCES 64

/** Called on the engine thread when every batch of a round is done. */
typedef void (*harvest_done_fn)(void *ctx, struct harvest_domain *dom,
				int result);

struct harvest_domain {
	struct backend *b;	/* the context of hwpt_id: set before planning
				 * (NULL: the engine's); plans keep it */
	uint32_t hwpt_id;
	uint64_t page_size;
	size_t nranges;
	struct harvest_range *ranges;
	uint64_t nbits;		/* bits in use, ranges padded to words */
	uint64_t nwords;
	uint64_t *bitmap;	/* this round's bits; valid after done */
	uint64_t nheads;	/* bounce words after bitmap[nwords - 1] */
	struct bitmem *mem;	/* where bitmap lives: set before planning
				 * (NULL: the heap); plans keep it */
	size_t nbatches;
	struct harvest_batch *batches;
	/*
	 * What each batch reads (harvest_domain_set_sources(); a new plan
	 * of the struct keeps them, its release frees them).  Without (@sources NULL) one source: HWPT @hwpt_id.  With
	 * @nsources 0 a round reads nothing and completes with its slices
	 * zeroed.
	 */
	struct harvest_source *sources;
	size_t nsources;

	/* round state, owned by the engine */
	uint32_t flags;		/* IOMMU_HWPT_GET_DIRTY_BITMAP_* */
	size_t next;		/* next batch to submit */
	size_t pending;		/* batches not yet completed */
	struct harvest_domain *qnext;	/* submission queue link */
	struct harvest_source one;	/* without @sources: HWPT hwpt_id */
	struct backend *reader;	/* b, or the engine's */
	int result;
	harvest_done_fn on_done;
	void *ctx;
	uint64_t round;		/* rounds completed */
};

/**
 * harvest_domain_plan() - lay out @n ranges (iova, length and flags set,
 * bit ignored; sorted, not overlapping, aligned to @page_size) of HWPT
 * @hwpt_id and cut them into batches of at most @batch_bytes (0: the
 * kernel's window; otherwise a power of two, at least
 * harvest_batch_min_bytes()).
 * Replaces any earlier plan: @dom must be zeroed or planned before.
 * Returns 0 or -EINVAL / -ENOMEM.
 */
int harvest_domain_plan(struct harvest_domain *dom, uint32_t hwpt_id,
			uint64_t page_size, const struct harvest_range *ranges,
			size_t n, uint64_t batch_bytes);
/**
 * harvest_domain_set_sources() - what @dom's batches read from now on:
 * @n sources (copied; at most HARVEST_MAX_SOURCES), kept by later plans
 * of @dom and freed by its release; none if @n is 0.  Not while a round runs (-EBUSY);
 * -EINVAL, -ENOMEM.
 */
int harvest_domain_set_sources(struct harvest_domain *dom,
			       const struct harvest_source *src, size_t n);
/** harvest_domain_release() - free the plan; the struct may be reused. */
void harvest_domain_release(struct harvest_domain *dom);

/*
 * The layout (harvest_plan.c owns it): where each mapped page's bit lives
 * in every bitmap of the domain (the round's, and each subscriber's), and
 * how a head's bounce word reaches its place.  Nothing else computes a
 * bit from an IOVA, or knows of heads and bounce words.
 */
/** harvest_layout_words() - the words of the plan's bitmap allocation:
 *  the layout's (nwords), then one bounce word per head. */
uint64_t harvest_layout_words(const struct harvest_domain *dom);
/** harvest_layout_bit() - where page @page (IOVA / page size) lives:
 *  *@bit, and *@left the pages from it to its range's end (@left may be
 *  NULL); -ERANGE if no range holds it. */
int harvest_layout_bit(const struct harvest_domain *dom, uint64_t page,
		       uint64_t *bit, uint64_t *left);
/** harvest_layout_same() - do @a and @b put every range's bits at the
 *  same place? */
bool harvest_layout_same(const struct harvest_domain *a,
			 const struct harvest_domain *b);
/** harvest_range_clip() - the words [*@w0, *@w1) of @rg in the round's
 *  bitmap, with its bits outside the range cleared: a kernel may record a
 *  huge leaf past a range's end. */
void harvest_range_clip(struct harvest_domain *dom,
			const struct harvest_range *rg, uint64_t *w0,
			uint64_t *w1);
/** harvest_layout_restore() - a round's bitmap region @old, laid out as
 *  @dom (harvest_layout_words() of it: its bounce words maybe read and not
 *  yet placed), into @dom's bitmap, every head in place. */
void harvest_layout_restore(struct harvest_domain *dom, const uint64_t *old);
/** harvest_batch_min_bytes() - the smallest batch: 1 GiB (the largest
 *  leaf) or 32768 pages, whichever is more. */
uint64_t harvest_batch_min_bytes(uint64_t page_size);
/** harvest_batch_bytes() - a batch size that gives @workers workers at
 *  least four batches each over @total bytes, within the kernel window. */
uint64_t harvest_batch_bytes(uint64_t total, uint64_t page_size,
			     unsigned int workers);

struct harvest_engine_config {
	unsigned int workers;		/* 0: one per online CPU */
	bool force_workers;		/* workers even where the backend
					 * reads asynchronously */
	unsigned int max_inflight;	/* batches in flight; 0: 4 per
					 * worker, 64 in async mode */
};

/**
 * harvest_engine_new() - the engine; @b is the context whose capabilities
 * choose the mode and that it reads through for plans that name none
 * (harvest_domain.b).  Contexts of one backend share the kernel: what one
 * can do, all can.
 */
int harvest_engine_new(struct backend *b,
		       const struct harvest_engine_config *cfg,
		       struct harvest_engine **out);
/** harvest_engine_free() - stop the workers; no round may be running. */
void harvest_engine_free(struct harvest_engine *e);
/** harvest_engine_eventfd() - readable when completions wait. */
int harvest_engine_eventfd(const struct harvest_engine *e);
/** harvest_engine_mode() - "workers", or in async mode the backend's
 *  dirty_read_async: "uring_cmd" (iommufd) or "sim". */
const char *harvest_engine_mode(const struct harvest_engine *e);
unsigned int harvest_engine_workers(const struct harvest_engine *e);

/**
 * harvest_engine_start() - queue one round of @dom; -EBUSY while its last
 * round runs.  @flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR or 0 (for
 * HWPT sources; a DMA log has no NO_CLEAR: its reads always clear).
 */
int harvest_engine_start(struct harvest_engine *e, struct harvest_domain *dom,
			 uint32_t flags, harvest_done_fn on_done, void *ctx);
/** harvest_engine_process() - reap completions without blocking, submit
 *  queued batches; returns the number of rounds finished or -errno. */
int harvest_engine_process(struct harvest_engine *e);
/** harvest_engine_wait() - process until no round is running. */
int harvest_engine_wait(struct harvest_engine *e);
/** harvest_engine_busy() - rounds still running. */
size_t harvest_engine_busy(const struct harvest_engine *e);

#endif
