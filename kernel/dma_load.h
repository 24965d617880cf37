/* SPDX-License-Identifier: MIT */
/*
 * Simulated device DMA load, and the oracle that says what it wrote.
 *
 * A dma_load drives backend_dma_write() on one device from writer threads,
 * in one of a few access patterns, optionally at a fixed page rate, so that
 * a dirty tracker can be tested and measured on the sim (and on the
 * kernel's mock IOMMU) without a guest.  Every page it writes is also
 * recorded in the oracle: a bitmap at 4 KiB granularity over the load's
 * range [iova, iova + length) (1 TiB of range costs 32 MiB).
 *
 * The ordering that makes the oracle useful to a checker:
 *
 *   A writer calls backend_dma_write() FIRST and only when it has returned
 *   0 sets the oracle bits (atomic OR, release); dma_load_oracle_take()
 *   reads and clears them with acquire.  So an oracle bit that a take
 *   returns means the page's dirty bit was already set in the IOMMU page
 *   table when the take ran.  Hence, for a tracker that harvests (reads
 *   and clears) the whole range in rounds:
 *
 *     every page returned by a take that finished before harvest round R
 *     started is reported by round R or was reported by an earlier round.
 *
 *   A checker that alternates take and harvest may thus require, after
 *   each round R: the union of the takes made before R started is a
 *   subset of the union of rounds 0..R.  The converse does not hold while writers run
 *   (a page can be dirty in the IOMMU before its oracle bit is set).
 *   Exact equality needs quiescence on both ends: when the previous take
 *   and harvest were both made while paused (or never made), a take and a
 *   harvest made under dma_load_pause() report the same pages.  A take and
 *   harvest made while writers ran break that: a write caught between them
 *   lands in the next take but not in the next harvest, or the reverse.
 *
 * A write that faults (-ENOENT: the range is not mapped, e.g. it was
 * unmapped under the load) is counted in the stats and recorded nowhere in
 * the oracle; note that a multi-page write may have dirtied the pages
 * before the hole, so a harvest can report pages the oracle does not hold.
 *
 * Everything here returns 0 or a negative errno, never logs, and is safe to
 * call from any thread, except that dma_load_stop() must not race with
 * other calls on the same load.
 */
#ifndef DIRTYD_KERNEL_DMA_LOAD_H
#define DIRTYD_KERNEL_DMA_LOAD_H

#include <stdint.h>

#include "kernel/backend.h"

/* The oracle's granule, and the unit of every write the load makes. */
#define DMA_LOAD_PAGE_SIZE 4096ULL
#define DMA_LOAD_MAX_THREADS 64

/** enum dma_pattern - where the writer threads write. */
enum dma_pattern {
	/* One page at a time, uniformly at random over the range. */
	DMA_PATTERN_UNIFORM,
	/* Bursts of cluster_pages consecutive pages (one backend write
	 * each), at uniformly random starts that keep the burst inside the
	 * range. */
	DMA_PATTERN_CLUSTERED,
	/* One page at a time, in IOVA order, wrapping around at the end;
	 * the threads share one cursor. */
	DMA_PATTERN_SEQUENTIAL,
	/* One page at a time, uniformly among hot_pages distinct pages drawn
	 * (from seed) when the load starts. */
	DMA_PATTERN_HOTSET,
};

/**
 * struct dma_load_config - what dma_load_start() runs.
 * @dev_id: device whose DMA is simulated (bound and attached)
 * @iova: start of the range written; a multiple of DMA_LOAD_PAGE_SIZE
 * @length: bytes of the range; a non-zero multiple of DMA_LOAD_PAGE_SIZE
 * @pattern: enum dma_pattern
 * @pages_per_sec: pages written per second by all threads together;
 *                 0 = as fast as possible
 * @threads: writer threads, at most DMA_LOAD_MAX_THREADS; 0 starts none
 *           (the load is then driven by dma_load_write() alone)
 * @seed: seeds every thread's PRNG (thread i from seed and i) and the hot
 *        set: the same seed gives the same sequence per thread
 * @cluster_pages: DMA_PATTERN_CLUSTERED: pages per burst, 1..range pages
 * @hot_pages: DMA_PATTERN_HOTSET: size of the hot set, 1..range pages
 */
struct dma_load_config {
	uint32_t dev_id;
	uint64_t iova;
	uint64_t length;
	enum dma_pattern pattern;
	uint64_t pages_per_sec;
	unsigned int threads;
	uint64_t seed;
	uint32_t cluster_pages;
	uint64_t hot_pages;
};

/**
 * struct dma_load_stats - what the load did so far.
 * @writes: backend_dma_write() calls that succeeded
 * @pages: pages those calls wrote (each recorded in the oracle)
 * @faults: calls that returned -ENOENT (IO page fault; nothing recorded)
 * @errors: calls that failed otherwise
 * @last_error: the negative errno of the latest such failure, or 0
 */
struct dma_load_stats {
	uint64_t writes;
	uint64_t pages;
	uint64_t faults;
	uint64_t errors;
	int last_error;
};

struct dma_load;

/**
 * dma_load_start() - allocate the oracle, draw the hot set, start the
 * writer threads.  -EINVAL for a bad config, -ENOMEM, or the error of
 * pthread_create(); nothing is left running on failure.
 */
int dma_load_start(struct backend *b, const struct dma_load_config *cfg,
		   struct dma_load **out);
/** dma_load_stop() - stop and join the writers, free the load; NULL ok. */
void dma_load_stop(struct dma_load *l);

/**
 * dma_load_pause() - stop the writers and return once none of them has a
 * write in flight: every write they made so far is in the oracle and in
 * the IOMMU.  Writes made with dma_load_write() by other threads are the
 * caller's business.  -EALREADY if already paused.
 */
int dma_load_pause(struct dma_load *l);
/** dma_load_resume() - let the writers go on; -EALREADY if not paused. */
int dma_load_resume(struct dma_load *l);

/**
 * dma_load_write() - one synchronous write of [@iova, @iova + @length)
 * through the backend, recorded in the oracle if it succeeds, counted in
 * the stats either way; neither paused nor rate-limited.  The range must
 * lie in the load's range and be DMA_LOAD_PAGE_SIZE-aligned (-EINVAL).
 * Returns backend_dma_write()'s result (-ENOENT for a fault).
 */
int dma_load_write(struct dma_load *l, uint64_t iova, uint64_t length);

/**
 * dma_load_oracle_take() - OR into @bitmap every page written in
 * [@iova, @iova + @length) since the previous take, and forget those pages.
 * Bit k of @bitmap stands for the page at @iova + k * @page_size, as in
 * IOMMU_HWPT_GET_DIRTY_BITMAP: a 4 KiB oracle page sets every bit it
 * overlaps (two with 2 KiB pages, the bit of its huge page with 2 MiB).
 * @page_size is a power of two; @iova and @length are multiples of it and
 * of DMA_LOAD_PAGE_SIZE (-EINVAL); -EOVERFLOW if the range wraps.  The
 * part of the range outside the load's range reports nothing.  Safe while
 * writers run: each oracle word is cleared with one atomic operation, so
 * a page written concurrently is either taken now or left for the next
 * take, never lost.
 */
int dma_load_oracle_take(struct dma_load *l, uint64_t iova, uint64_t length,
			 uint64_t page_size, uint64_t *bitmap);

/** dma_load_get_stats() - a snapshot of the counters. */
void dma_load_get_stats(const struct dma_load *l,
			struct dma_load_stats *out);

#endif /* DIRTYD_KERNEL_DMA_LOAD_H */
