/* SPDX-License-Identifier: MIT */
/*
 * The sim backend's own API: what tests and benchmarks may ask a simulated
 * host beyond struct backend_ops.  Nothing in the daemon uses it; it exists
 * so that a test can see the page tables the sim builds (leaf sizes, table
 * memory, IO page faults) without a debugger.
 *
 * Every function returns 0 or a negative errno; -EINVAL when @b is not a
 * sim backend, -ENOENT for an unknown object id.
 */
#ifndef DIRTYD_KERNEL_SIM_SIM_H
#define DIRTYD_KERNEL_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/backend.h"

/** The sim IOMMU's page sizes: 4 KiB, 2 MiB and 1 GiB leaves. */
#define SIM_PAGE_SIZE_4K (1ULL << 12)
#define SIM_PAGE_SIZE_2M (1ULL << 21)
#define SIM_PAGE_SIZE_1G (1ULL << 30)
/** IOVAs the sim page tables translate: [0, 2^48). */
#define SIM_IOVA_BITS 48

/**
 * struct sim_pgtable_stats - one IO page table, or the sum of several.
 * @tables: 4 KiB table pages in use, root included
 * @table_bytes: @tables * 4096
 * @arena_bytes: address space reserved for tables (MAP_NORESERVE: only
 *               the touched part costs memory)
 * @leaves_4k: leaf PTEs mapping 4 KiB
 * @leaves_2m: leaf PTEs mapping 2 MiB
 * @leaves_1g: leaf PTEs mapping 1 GiB
 */
struct sim_pgtable_stats {
	uint64_t tables;
	uint64_t table_bytes;
	uint64_t arena_bytes;
	uint64_t leaves_4k;
	uint64_t leaves_2m;
	uint64_t leaves_1g;
};

/**
 * struct sim_stats - the whole simulated host.
 * @pt: page tables of every HWPT, summed
 * @io_page_faults: dma_write() calls that hit an unmapped or read-only
 *                  page (since open)
 * @n_ioas: live IOAS objects
 * @n_hwpt: live HWPT objects (auto domains included)
 * @n_bound: bound devices
 * @version_dependent_reads: GET_DIRTY_BITMAP calls whose answer differs
 *                           between the kernels of the matrix (a zero
 *                           length, a hole, tracking off, a record past the
 *                           range: kernel/sim/kernel.h); dirtyd makes none
 * @kernel: the release the host emulates, "6.12.N"
 */
struct sim_stats {
	struct sim_pgtable_stats pt;
	uint64_t io_page_faults;
	uint64_t version_dependent_reads;
	char kernel[16];
	uint32_t n_ioas;
	uint32_t n_hwpt;
	uint32_t n_bound;
};

/**
 * struct sim_leaf - what one IOVA translates to in a HWPT.
 * @size: leaf size (SIM_PAGE_SIZE_4K/2M/1G)
 * @iova: first IOVA of the leaf
 * @paddr: the "physical" address it maps (the sim uses the user_va)
 * @writable: the PTE allows DMA writes
 * @dirty: the PTE's dirty bit
 */
struct sim_leaf {
	uint64_t size;
	uint64_t iova;
	uint64_t paddr;
	bool writable;
	bool dirty;
};

/** sim_backend_is() - true when @b is a sim backend. */
bool sim_backend_is(const struct backend *b);
/** sim_backend_stats() - counters of the whole host. */
int sim_backend_stats(struct backend *b, struct sim_stats *st);
/** sim_hwpt_stats() - counters of one HWPT's page table. */
int sim_hwpt_stats(struct backend *b, uint32_t hwpt_id,
		   struct sim_pgtable_stats *st);
/**
 * sim_hwpt_lookup() - walk @hwpt_id's page table for @iova as the IOMMU
 * would; -ENXIO when nothing maps it.  Reads the dirty bit, never clears.
 */
int sim_hwpt_lookup(struct backend *b, uint32_t hwpt_id, uint64_t iova,
		    struct sim_leaf *leaf);
/**
 * sim_device_hwpt() - the HWPT @dev_id is attached to (the auto domain's
 * id after an attach to an IOAS); -ENODEV when detached.
 */
int sim_device_hwpt(struct backend *b, uint32_t dev_id, uint32_t *hwpt_id);
/** sim_hwpt_tracking() - whether dirty tracking is on in @hwpt_id. */
int sim_hwpt_tracking(struct backend *b, uint32_t hwpt_id, bool *enabled);

/**
 * sim_table_fn - called by sim_hwpt_for_each_table() for one table page.
 * @table: the 512 PTEs of the table (4 KiB, 4 KiB-aligned)
 * @level: 0 for a table of 4 KiB leaves, 1 for 2 MiB entries, 2 for 1 GiB
 *         entries, 3 for the root
 * A non-zero return stops the walk and is returned.
 */
typedef int (*sim_table_fn)(void *ctx, const uint64_t *table,
			    unsigned int level);

/**
 * sim_hwpt_for_each_table() - call @fn for every table page of @hwpt_id's
 * IO page table, in IOVA order, a table before the tables under it: the
 * memory a harvest of the whole table walks (for benchmarks that measure a
 * floor against it).  Runs under the IOAS's IOVA lock for read, so @fn must
 * not map or unmap in that IOAS; the pointers stay valid until the next
 * unmap of the IOAS or the HWPT's destruction.  Reads only; DMA and
 * harvests may run meanwhile.
 */
int sim_hwpt_for_each_table(struct backend *b, uint32_t hwpt_id,
			    sim_table_fn fn, void *ctx);

#endif /* DIRTYD_KERNEL_SIM_SIM_H */
