/* SPDX-License-Identifier: MIT */
/*
 * What the benchmarks measure dirtyd against, and the bitmaps they measure
 * it on (bench/README.md):
 *
 *   bench_plain_read()    a plain read of a buffer (the sum of its words,
 *                         AVX2 where the CPU has it): the floor of anything
 *                         that reads every word once;
 *   ch_from_dirty_bitmap()  Cloud Hypervisor's scan of a dirty bitmap into
 *                         a vector of ranges;
 *   vmm_fold(), vmm_sync(), vmm_find()  QEMU's way from a harvested
 *                         bitmap to the pages it sends;
 *   pattern_fill()        the dirty pages of a density and a pattern
 *                         (uniform or clustered);
 *   median()              how every program reduces its repetitions;
 *   bench_loadavg()       the load it measured under.
 *
 * Owns: these definitions, shared by every program in bench/ so that each
 * measures against the same baseline.
 */
#ifndef DIRTYD_BENCH_BASELINES_H
#define DIRTYD_BENCH_BASELINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** median() - the median of the @n values at @v (sorted in place). */
double median(double *v, unsigned int n);
/** bench_loadavg() - the 1-minute load average, printed next to every
 *  measurement; -1 where /proc/loadavg cannot be read. */
double bench_loadavg(void);

/* ---------------------------------------------------------- plain read */

typedef uint64_t (*bench_read_fn)(const void *p, size_t len);

/**
 * bench_read_pick() - the plain read: the sum of the words of @len bytes
 * at @p (32-byte aligned for the AVX2 one), 4 independent accumulators;
 * AVX2 loads where the CPU has them (chosen at run time), else portable.
 */
bench_read_fn bench_read_pick(void);
/** bench_read_impl() - "avx2" or "portable": what @fn is. */
const char *bench_read_impl(bench_read_fn fn);

/* ------------------------------------------------- Cloud Hypervisor's scan */

/* vm-migration's MemoryRange, and a Vec of them. */
struct mem_range {
	uint64_t gpa;
	uint64_t length;
};

struct range_vec {
	struct mem_range *v;
	size_t n, cap;
};

/**
 * ch_from_dirty_bitmap() - Cloud Hypervisor's
 * MemoryRangeTable::from_dirty_bitmap() over @nwords words of @bm, ported
 * step for step (see baselines.c): the ranges go into @rv (emptied first;
 * a fresh Vec when @rv is empty, its capacity reused otherwise).
 */
void ch_from_dirty_bitmap(const uint64_t *bm, uint64_t nwords,
			  uint64_t start_addr, uint64_t page_size,
			  struct range_vec *rv);

/* ------------------------------------------------------- QEMU's way */

/** QEMU's physical_memory_set_dirty_lebitmap() fast path: for each
 *  non-zero word of @bm a popcount and a seq-cst fetch-or into @ram.
 *  Returns the pages counted. */
uint64_t vmm_fold(const uint64_t *bm, uint64_t *ram, uint64_t nwords);
/** QEMU's physical_memory_sync_dirty_bitmap() fast path (aligned
 *  ramblock): each non-zero word of @ram exchanged with 0 and its new
 *  bits ORed into the migration bitmap @dest.  Returns the new pages. */
uint64_t vmm_sync(uint64_t *ram, uint64_t *dest, uint64_t nwords);

/** Called with each maximal run of set bits, in order. */
typedef void (*bench_run_fn)(void *ctx, uint64_t first, uint64_t n);
/** The VMM finding the pages to send in @dest, as QEMU's
 *  migration_bitmap_find_dirty() (find_next_bit) and
 *  migration_bitmap_clear_dirty() do: each dirty page found and cleared;
 *  pages reported to @fn in maximal runs (for the check). */
void vmm_find(uint64_t *dest, uint64_t nwords, bench_run_fn fn, void *ctx);

/* ------------------------------------------------------------ patterns */

#define CLUSTER_PAGES 64	/* clustered pattern: runs of 256 KiB */

enum bench_pattern { PAT_UNIFORM, PAT_CLUSTERED };

/**
 * pattern_fill() - the pattern: bit p of @bm set when 4 KiB page p is
 * written, @npages pages.  Uniform: each page on its own with probability
 * @density (geometric gaps).  Clustered: runs of CLUSTER_PAGES pages at
 * random, unaligned starts, exponential gaps with the mean that covers
 * @density of the pages.  The same @seed draws the same pattern.
 */
void pattern_fill(uint64_t *bm, uint64_t npages, double density,
		  enum bench_pattern pat, uint64_t seed);

#endif
