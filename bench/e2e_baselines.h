/* SPDX-License-Identifier: MIT */
/*
 * What e2e_bench compares dirtyd with (Owns: nothing of dirtyd; the
 * baselines' code only): a plain read, QEMU's fold and sync, Cloud
 * Hypervisor's from_dirty_bitmap().  Copied from bench/harvest_bench.c,
 * to merge with bench/baselines.c.
 */
#ifndef DIRTYD_BENCH_E2E_BASELINES_H
#define DIRTYD_BENCH_E2E_BASELINES_H

#include <stddef.h>
#include <stdint.h>

/** A plain read: the sum of the words (AVX2 where the CPU has it). */
typedef uint64_t (*e2e_read_fn)(const void *p, size_t len);
e2e_read_fn e2e_read_pick(void);

/** QEMU's physical_memory_set_dirty_lebitmap() fast path: for each
 *  non-zero word of @bm a popcount and a seq-cst fetch-or into @ram.
 *  Returns the pages counted. */
uint64_t vmm_fold(const uint64_t *bm, uint64_t *ram, uint64_t nwords);
/** QEMU's physical_memory_sync_dirty_bitmap() fast path (aligned
 *  ramblock): each non-zero word of @ram exchanged with 0 and its new
 *  bits ORed into the migration bitmap @dest.  Returns the new pages. */
uint64_t vmm_sync(uint64_t *ram, uint64_t *dest, uint64_t nwords);

/** Called with each maximal run of set bits, in order. */
typedef void (*e2e_run_fn)(void *ctx, uint64_t first, uint64_t n);
/** The VMM finding the pages to send in @dest, as QEMU's
 *  migration_bitmap_find_dirty() (find_next_bit) and
 *  migration_bitmap_clear_dirty() do: each dirty page found and cleared;
 *  pages reported to @fn in maximal runs (for the check). */
void vmm_find(uint64_t *dest, uint64_t nwords, e2e_run_fn fn, void *ctx);

/** vm-migration's MemoryRange, and a Vec of them. */
struct mem_range {
	uint64_t gpa;
	uint64_t length;
};

struct range_vec {
	struct mem_range *v;
	size_t n, cap;
};

/** Cloud Hypervisor's MemoryRangeTable::from_dirty_bitmap(): with @rv
 *  empty (cap 0) a fresh Vec as merged, with its capacity kept the reuse
 *  of their issue #7474. */
void ch_from_dirty_bitmap(const uint64_t *bm, uint64_t nwords,
			  uint64_t start_addr, uint64_t page_size,
			  struct range_vec *rv);

#endif
