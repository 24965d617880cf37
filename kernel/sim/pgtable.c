// SPDX-License-Identifier: MIT
/*
 * The sim IOMMU's page table: 4 levels of 512 64-bit entries over a 48-bit
 * IOVA, leaves of 4 KiB (level 0), 2 MiB (level 1, PS) and 1 GiB (level 2,
 * PS), as an x86 IOMMU's second-level table.  A table entry holds the
 * child's address and READ|WRITE; a leaf holds the "physical" address
 * (the sim uses the mapping's user_va), READ and/or WRITE, PS above level
 * 0, and the dirty bit.
 *
 * The dirty bit is the only record of a DMA write (as VT-d SSADS and AMD
 * HD keep it): there is no side index, so a harvest costs a walk over
 * every leaf of the range.  The walk below is the hot path:
 *
 *   - it descends once per table and scans leaf tables linearly;
 *   - absent subtrees are skipped by their span;
 *   - leaf PTEs are tested with plain (relaxed atomic) loads, 8 at a time
 *     ORed together, and only a dirty PTE costs an atomic fetch-and;
 *   - with 4 KiB bitmap pages, a group of 64 PTEs becomes one 64-bit
 *     mask ORed into the bitmap with a shift.
 *
 * Concurrency: map and unmap change the tree under the IOAS's iova_lock
 * for write.  Walks, DMA and lookups run under it for read; they only
 * change dirty bits, DMA with an atomic OR and a harvest with an atomic
 * AND, so a bit that DMA sets while a harvest clears is either reported
 * by that harvest or left set for the next one, never lost.
 */
#include <errno.h>
#include <string.h>

#include "kernel/sim/sim_private.h"
#include "kernel/uapi/iommufd.h"

#define PT_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static inline bool pte_present(uint64_t e)
{
	return e & SIM_PTE_PRESENT;
}

static inline uint64_t *pte_table(uint64_t e)
{
	return (uint64_t *)(uintptr_t)(e & SIM_PTE_ADDR_MASK);
}

static inline uint64_t pte_mk_table(uint64_t *table)
{
	return (uint64_t)(uintptr_t)table | SIM_PTE_READ | SIM_PTE_WRITE;
}

static inline bool pte_is_leaf(uint64_t e, unsigned int lvl)
{
	return lvl == 0 || (e & SIM_PTE_LEAF);
}

static inline void pt_leaves_add(struct sim_pgtable *pt, unsigned int lvl,
				 int64_t delta)
{
	/* leaves live at levels 0..2 only (the root holds no 512 GiB leaf);
	 * said so that -O3's bounds analysis sees it too */
	if (lvl >= sizeof(pt->leaves) / sizeof(pt->leaves[0]))
		return;
	__atomic_store_n(&pt->leaves[lvl], pt->leaves[lvl] + delta,
			 __ATOMIC_RELAXED);
}

int sim_pgtable_init(struct sim_pgtable *pt)
{
	return sim_pgtable_init_in(pt, NULL);
}

int sim_pgtable_init_in(struct sim_pgtable *pt, struct sim_region *region)
{
	*pt = (struct sim_pgtable){};
	sim_arena_init(&pt->arena, region);
	pt->root = sim_arena_alloc_table(&pt->arena);
	if (!pt->root) {
		sim_arena_destroy(&pt->arena);
		return -ENOMEM;
	}
	return 0;
}

void sim_pgtable_destroy(struct sim_pgtable *pt)
{
	/* Every table lives in the arena: no walk needed. */
	sim_arena_destroy(&pt->arena);
	pt->root = NULL;
}

uint64_t sim_pgtable_leaf_size(uint64_t iova, uint64_t paddr, uint64_t length,
			       uint64_t max_leaf)
{
	static const uint64_t sizes[] = { SIM_PAGE_SIZE_1G, SIM_PAGE_SIZE_2M };
	unsigned int i;

	/* iommu_pgsize(): IOVA and physical address aligned, length fits. */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t s = sizes[i];

		if (s <= max_leaf && !((iova | paddr) & (s - 1)) &&
		    length >= s)
			return s;
	}
	return SIM_PAGE_SIZE_4K;
}

/* ---------------------------------------------------------------- unmap */

/* Free @table (a level @lvl table) and everything under it. */
static void pt_free_subtree(struct sim_pgtable *pt, uint64_t *table,
			    unsigned int lvl)
{
	unsigned int i, n = 0;

	for (i = 0; i < SIM_PT_ENTRIES; i++) {
		uint64_t e = table[i];

		if (!pte_present(e))
			continue;
		if (pte_is_leaf(e, lvl))
			n++;
		else
			pt_free_subtree(pt, pte_table(e), lvl - 1);
	}
	if (n)
		pt_leaves_add(pt, lvl, -(int64_t)n);
	sim_arena_free_table(&pt->arena, table);
}

static bool pt_table_empty(const uint64_t *table)
{
	unsigned int i;

	for (i = 0; i < SIM_PT_ENTRIES; i++)
		if (table[i])
			return false;
	return true;
}

/*
 * Clear [@start, @last], which lies inside the span of @table (level
 * @lvl).  Leaves never straddle the range: the sim maps an area with
 * leaves inside it and unmaps whole areas, as iommufd does.
 */
static void pt_unmap_range(struct sim_pgtable *pt, uint64_t *table,
			   unsigned int lvl, uint64_t start, uint64_t last)
{
	uint64_t esize = SIM_LVL_SIZE(lvl);
	uint64_t base = start & ~(esize * SIM_PT_ENTRIES - 1);
	unsigned int i = SIM_LVL_IDX(start, lvl);
	unsigned int iend = SIM_LVL_IDX(last, lvl);
	unsigned int n = 0;

	for (; i <= iend; i++) {
		uint64_t ebase = base + i * esize;
		uint64_t elast = ebase + esize - 1;
		uint64_t e = table[i];
		uint64_t *child;

		if (!pte_present(e))
			continue;
		if (pte_is_leaf(e, lvl)) {
			table[i] = 0;
			n++;
			continue;
		}
		child = pte_table(e);
		if (start <= ebase && elast <= last) {
			table[i] = 0;
			pt_free_subtree(pt, child, lvl - 1);
			continue;
		}
		pt_unmap_range(pt, child, lvl - 1,
			       start > ebase ? start : ebase,
			       last < elast ? last : elast);
		if (pt_table_empty(child)) {
			table[i] = 0;
			sim_arena_free_table(&pt->arena, child);
		}
	}
	if (n)
		pt_leaves_add(pt, lvl, -(int64_t)n);
}

void sim_pgtable_unmap(struct sim_pgtable *pt, uint64_t iova,
		       uint64_t length)
{
	uint64_t last = iova + length - 1;

	if (!length || iova >= SIM_IOVA_LIMIT)
		return;
	if (last >= SIM_IOVA_LIMIT || last < iova)
		last = SIM_IOVA_LIMIT - 1;
	pt_unmap_range(pt, pt->root, SIM_PT_LEVELS - 1, iova, last);
}

/* ------------------------------------------------------------------ map */

/* The level @lvl table covering @iova, created on the way down. */
static int pt_walk_alloc(struct sim_pgtable *pt, uint64_t iova,
			 unsigned int lvl, uint64_t **out)
{
	uint64_t *table = pt->root;
	unsigned int l;

	for (l = SIM_PT_LEVELS - 1; l > lvl; l--) {
		uint64_t *ep = &table[SIM_LVL_IDX(iova, l)];

		if (!pte_present(*ep)) {
			uint64_t *child = sim_arena_alloc_table(&pt->arena);

			if (!child)
				return -ENOMEM;
			*ep = pte_mk_table(child);
		} else if (*ep & SIM_PTE_LEAF) {
			return -EEXIST;
		}
		table = pte_table(*ep);
	}
	*out = table;
	return 0;
}

/*
 * Map [@iova, @iova + @length) to [@paddr, ...) with the largest leaves
 * that alignment, length and @max_leaf allow (__iommu_map() with the
 * pgsize_bitmap 4K|2M|1G).  On failure nothing stays mapped.
 */
int sim_pgtable_map(struct sim_pgtable *pt, uint64_t iova, uint64_t paddr,
		    uint64_t length, uint64_t pte_prot, uint64_t max_leaf)
{
	uint64_t done = 0;
	int rc = 0;

	if ((iova | paddr | length) & (SIM_PAGE_SIZE_4K - 1) || !length ||
	    iova >= SIM_IOVA_LIMIT || SIM_IOVA_LIMIT - iova < length)
		return -EINVAL;
	pte_prot &= SIM_PTE_PRESENT;

	while (done < length) {
		uint64_t cur = iova + done, pa = paddr + done;
		uint64_t left = length - done;
		uint64_t size = sim_pgtable_leaf_size(cur, pa, left, max_leaf);
		unsigned int lvl = size == SIM_PAGE_SIZE_1G ? 2 :
				   size == SIM_PAGE_SIZE_2M ? 1 : 0;
		uint64_t *table;
		unsigned int i, n, k;

		rc = pt_walk_alloc(pt, cur, lvl, &table);
		if (rc)
			goto out_undo;

		i = SIM_LVL_IDX(cur, lvl);
		if (lvl) {
			if (table[i]) {
				rc = -EEXIST;
				goto out_undo;
			}
			table[i] = (pa & SIM_PTE_ADDR_MASK) | pte_prot |
				   SIM_PTE_LEAF;
			pt_leaves_add(pt, lvl, 1);
			done += size;
			continue;
		}

		/* A run of 4 KiB leaves up to the end of this leaf table. */
		n = SIM_PT_ENTRIES - i;
		if ((left >> 12) < n)
			n = left >> 12;
		for (k = 0; k < n; k++) {
			if (table[i + k]) {
				rc = -EEXIST;
				goto out_undo;
			}
		}
		for (k = 0; k < n; k++)
			table[i + k] = ((pa + ((uint64_t)k << 12)) &
					SIM_PTE_ADDR_MASK) | pte_prot;
		pt_leaves_add(pt, 0, n);
		done += (uint64_t)n << 12;
	}
	return 0;

out_undo:
	if (done)
		sim_pgtable_unmap(pt, iova, done);
	return rc;
}

/* --------------------------------------------------------------- lookup */

int sim_pgtable_lookup(struct sim_pgtable *pt, uint64_t iova,
		       struct sim_leaf *leaf)
{
	uint64_t *table = pt->root;
	unsigned int lvl;

	if (iova >= SIM_IOVA_LIMIT)
		return -ENXIO;
	for (lvl = SIM_PT_LEVELS - 1;; lvl--) {
		uint64_t e = PT_LOAD(&table[SIM_LVL_IDX(iova, lvl)]);

		if (!pte_present(e))
			return -ENXIO;
		if (pte_is_leaf(e, lvl)) {
			uint64_t size = SIM_LVL_SIZE(lvl);

			*leaf = (struct sim_leaf){
				.size = size,
				.iova = iova & ~(size - 1),
				.paddr = e & SIM_PTE_ADDR_MASK,
				.writable = e & SIM_PTE_WRITE,
				.dirty = e & SIM_PTE_DIRTY,
			};
			return 0;
		}
		table = pte_table(e);
	}
}

/* ---------------------------------------------------------------- dirty */

/* Set bits [@first, @last] of a byte-addressed bitmap, touching only the
 * bytes that hold them (the caller's buffer may be unaligned and sized to
 * the byte). */
static void bm_set_range(uint8_t *map, uint64_t first, uint64_t last)
{
	uint64_t b0 = first >> 3, b1 = last >> 3;
	uint8_t m0 = (uint8_t)(0xff << (first & 7));
	uint8_t m1 = (uint8_t)(0xff >> (7 - (last & 7)));

	if (b0 == b1) {
		map[b0] |= m0 & m1;
		return;
	}
	map[b0] |= m0;
	if (b1 - b0 > 1)
		memset(map + b0 + 1, 0xff, b1 - b0 - 1);
	map[b1] |= m1;
}

/* OR @mask into the bitmap so that its bit 0 lands on bit @pos. */
static void bm_or64(uint8_t *map, uint64_t pos, uint64_t mask)
{
	uint8_t *p = map + (pos >> 3);
	unsigned int s = pos & 7;
	uint64_t lo = mask << s;
	uint8_t hi = s ? (uint8_t)(mask >> (64 - s)) : 0;
	unsigned int k;

	for (k = 0; k < 8; k++) {
		uint8_t byte = (uint8_t)(lo >> (8 * k));

		if (byte)
			p[k] |= byte;
	}
	if (hi)
		p[8] |= hi;
}

/*
 * iommu_dirty_bitmap_record() + iova_bitmap_set(): set the bits of
 * [@iova, @iova + @length).  A record that is not inside the bitmap's
 * range is refused with -EPROTO in @dirty->err when @dirty->bounds
 * (SIM_KB_RECORD_BOUNDS, 6.12.118), else clipped to it.  A NULL bitmap
 * records nothing (the kernel's fate when the user bitmap cannot be
 * pinned: the bits are cleared in the PTEs all the same).
 */
void sim_dirty_record(struct sim_dirty_bitmap *dirty, uint64_t iova,
		      uint64_t length)
{
	uint64_t end;

	if (!dirty || !length)
		return;
	/* iova_bitmap_set() checks the bounds before it pins anything */
	if (iova < dirty->iova || length - 1 > dirty->last - dirty->iova ||
	    iova - dirty->iova > dirty->last - dirty->iova - (length - 1)) {
		dirty->overruns++;
		if (dirty->bounds) {
			if (!dirty->err)
				dirty->err = -EPROTO;
			return;
		}
	}
	if (!dirty->data || iova > dirty->last)
		return;
	end = iova + length - 1;
	if (end > dirty->last || end < iova)
		end = dirty->last;
	if (iova < dirty->iova) {
		if (end < dirty->iova)
			return;
		iova = dirty->iova;
	}
	bm_set_range(dirty->data, (iova - dirty->iova) >> dirty->pgshift,
		     (end - dirty->iova) >> dirty->pgshift);
}

/* dma_sl_pte_test_and_clear_dirty(): test, and clear unless NO_CLEAR. */
static inline bool pte_test_and_clear_dirty(uint64_t *p, unsigned int flags)
{
	if (!(PT_LOAD(p) & SIM_PTE_DIRTY))
		return false;
	if (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)
		return true;
	return __atomic_fetch_and(p, ~SIM_PTE_DIRTY, __ATOMIC_RELAXED) &
	       SIM_PTE_DIRTY;
}

/* Entries [@i0, @i1] of the 4 KiB leaf table @t that maps from @base. */
static void pt_scan_leaf_table(uint64_t *t, uint64_t base, unsigned int i0,
			       unsigned int i1, unsigned int flags,
			       struct sim_dirty_bitmap *dirty)
{
	bool record = dirty && dirty->data;
	bool word_path = record && dirty->pgshift == 12;
	unsigned int g, g0 = i0 >> 6, g1 = i1 >> 6;

	for (g = g0; g <= g1; g++) {
		unsigned int lo = g == g0 ? i0 : g << 6;
		unsigned int hi = g == g1 ? i1 : (g << 6) + 63;
		uint64_t mask = 0;
		unsigned int j;

		if (lo == g << 6 && hi == (g << 6) + 63) {
			unsigned int b;

			for (b = 0; b < 8; b++) {
				uint64_t *p = &t[(g << 6) + (b << 3)];
				uint64_t acc;
				unsigned int k;

				acc = PT_LOAD(&p[0]) | PT_LOAD(&p[1]) |
				      PT_LOAD(&p[2]) | PT_LOAD(&p[3]) |
				      PT_LOAD(&p[4]) | PT_LOAD(&p[5]) |
				      PT_LOAD(&p[6]) | PT_LOAD(&p[7]);
				if (!(acc & SIM_PTE_DIRTY))
					continue;
				for (k = 0; k < 8; k++)
					if (pte_test_and_clear_dirty(&p[k],
								     flags))
						mask |= 1ULL << ((b << 3) + k);
			}
		} else {
			for (j = lo; j <= hi; j++)
				if (pte_test_and_clear_dirty(&t[j], flags))
					mask |= 1ULL << (j & 63);
		}
		if (!mask || !record)
			continue;

		if (word_path) {
			uint64_t pos = (base + ((uint64_t)lo << 12) -
					dirty->iova) >> 12;

			bm_or64(dirty->data, pos, mask >> (lo & 63));
			continue;
		}
		while (mask) {
			uint64_t idx = (g << 6) + __builtin_ctzll(mask);

			mask &= mask - 1;
			sim_dirty_record(dirty, base + (idx << 12),
					 SIM_PAGE_SIZE_4K);
		}
	}
}

/* A huge leaf: one dirty bit for the whole leaf. */
static inline void pt_huge_leaf(uint64_t *p, uint64_t cur, uint64_t size,
				unsigned int flags,
				struct sim_dirty_bitmap *dirty)
{
	/*
	 * As intel_iommu_read_and_clear_dirty() and the mock: the record
	 * starts at the walk's cursor, not at the leaf's first IOVA, for the
	 * leaf's full size.  Only a range that starts inside a huge leaf
	 * sees the difference.
	 */
	if (pte_test_and_clear_dirty(p, flags))
		sim_dirty_record(dirty, cur, size);
}

/*
 * The driver's read_and_clear_dirty() for [@iova, @iova + @length): test
 * (and unless NO_CLEAR clear) the dirty bit of every leaf and record the
 * dirty ones.  The cursor advances by each leaf's size from where it is,
 * as the VT-d and AMD walkers do.
 */
void sim_pgtable_read_and_clear_dirty(struct sim_pgtable *pt, uint64_t iova,
				      uint64_t length, unsigned int flags,
				      struct sim_dirty_bitmap *dirty)
{
	const uint64_t s3 = SIM_LVL_SIZE(3), s2 = SIM_LVL_SIZE(2);
	const uint64_t s1 = SIM_LVL_SIZE(1);
	uint64_t cur = iova, last = iova + length - 1;

	if (!length || iova >= SIM_IOVA_LIMIT)
		return;
	if (last >= SIM_IOVA_LIMIT || last < iova)
		last = SIM_IOVA_LIMIT - 1;

	while (cur <= last) {
		uint64_t span3 = cur & ~(s3 - 1);
		uint64_t e3 = PT_LOAD(&pt->root[SIM_LVL_IDX(cur, 3)]);
		uint64_t *t2;

		if (!pte_present(e3)) {
			cur = span3 + s3;
			continue;
		}
		t2 = pte_table(e3);
		while (cur <= last && (cur & ~(s3 - 1)) == span3) {
			uint64_t span2 = cur & ~(s2 - 1);
			uint64_t *p2 = &t2[SIM_LVL_IDX(cur, 2)];
			uint64_t e2 = PT_LOAD(p2);
			uint64_t *t1;

			if (!pte_present(e2)) {
				cur = span2 + s2;
				continue;
			}
			if (e2 & SIM_PTE_LEAF) {
				pt_huge_leaf(p2, cur, s2, flags, dirty);
				cur += s2;
				continue;
			}
			t1 = pte_table(e2);
			while (cur <= last && (cur & ~(s2 - 1)) == span2) {
				uint64_t span1 = cur & ~(s1 - 1);
				uint64_t *p1 = &t1[SIM_LVL_IDX(cur, 1)];
				uint64_t e1 = PT_LOAD(p1);
				unsigned int i0, i1;

				if (!pte_present(e1)) {
					cur = span1 + s1;
					continue;
				}
				if (e1 & SIM_PTE_LEAF) {
					pt_huge_leaf(p1, cur, s1, flags, dirty);
					cur += s1;
					continue;
				}
				i0 = SIM_LVL_IDX(cur, 0);
				i1 = last - span1 >= s1 ? SIM_PT_ENTRIES - 1 :
							  SIM_LVL_IDX(last, 0);
				pt_scan_leaf_table(pte_table(e1), span1, i0, i1,
						   flags, dirty);
				cur = span1 + ((uint64_t)(i1 + 1) << 12);
			}
		}
	}
}

/* ------------------------------------------------------------------ DMA */

static inline int pte_dma_write(uint64_t *p, uint64_t e, bool track)
{
	if (!(e & SIM_PTE_WRITE))
		return -EACCES;
	/* Like the hardware, write the D bit only when it is clear. */
	if (track && !(e & SIM_PTE_DIRTY))
		__atomic_fetch_or(p, SIM_PTE_DIRTY, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Translate every 4 KiB page of [@iova, @last] for a write and, when
 * @track, set the dirty bit of its leaf.  Stops at the first page that is
 * not mapped (-ENOENT) or not writable (-EACCES); the pages before it are
 * written.
 */
int sim_pgtable_dma_write(struct sim_pgtable *pt, uint64_t iova,
			  uint64_t last, bool track)
{
	uint64_t done;

	return sim_pgtable_dma_write_done(pt, iova, last, track, &done);
}

/* Each return with a fault leaves *@done at the page that faulted. */
#define DMA_FAIL(rc_) do { *done = cur; return (rc_); } while (0)

int sim_pgtable_dma_write_done(struct sim_pgtable *pt, uint64_t iova,
			       uint64_t last, bool track, uint64_t *done)
{
	uint64_t cur = iova & ~(SIM_PAGE_SIZE_4K - 1);
	int rc;

	while (cur <= last) {
		uint64_t e3, e2, e1, *p2, *p1, *t0;
		unsigned int i;

		if (cur >= SIM_IOVA_LIMIT)
			DMA_FAIL(-ENOENT);
		e3 = PT_LOAD(&pt->root[SIM_LVL_IDX(cur, 3)]);
		if (!pte_present(e3))
			DMA_FAIL(-ENOENT);
		p2 = &pte_table(e3)[SIM_LVL_IDX(cur, 2)];
		e2 = PT_LOAD(p2);
		if (!pte_present(e2))
			DMA_FAIL(-ENOENT);
		if (e2 & SIM_PTE_LEAF) {
			rc = pte_dma_write(p2, e2, track);
			if (rc)
				DMA_FAIL(rc);
			cur = (cur | (SIM_LVL_SIZE(2) - 1)) + 1;
			continue;
		}
		p1 = &pte_table(e2)[SIM_LVL_IDX(cur, 1)];
		e1 = PT_LOAD(p1);
		if (!pte_present(e1))
			DMA_FAIL(-ENOENT);
		if (e1 & SIM_PTE_LEAF) {
			rc = pte_dma_write(p1, e1, track);
			if (rc)
				DMA_FAIL(rc);
			cur = (cur | (SIM_LVL_SIZE(1) - 1)) + 1;
			continue;
		}
		t0 = pte_table(e1);
		for (i = SIM_LVL_IDX(cur, 0); i < SIM_PT_ENTRIES && cur <= last;
		     i++, cur += SIM_PAGE_SIZE_4K) {
			uint64_t e0 = PT_LOAD(&t0[i]);

			if (!pte_present(e0))
				DMA_FAIL(-ENOENT);
			rc = pte_dma_write(&t0[i], e0, track);
			if (rc)
				DMA_FAIL(rc);
		}
	}
	*done = last + 1;
	return 0;
}
#undef DMA_FAIL

/* ---------------------------------------------------------------- stats */

void sim_pgtable_stats(struct sim_pgtable *pt, struct sim_pgtable_stats *st)
{
	uint64_t tables = __atomic_load_n(&pt->arena.tables, __ATOMIC_RELAXED);

	*st = (struct sim_pgtable_stats){
		.tables = tables,
		.table_bytes = tables * 4096,
		.arena_bytes = __atomic_load_n(&pt->arena.reserved,
					       __ATOMIC_RELAXED),
		.leaves_4k = __atomic_load_n(&pt->leaves[0], __ATOMIC_RELAXED),
		.leaves_2m = __atomic_load_n(&pt->leaves[1], __ATOMIC_RELAXED),
		.leaves_1g = __atomic_load_n(&pt->leaves[2], __ATOMIC_RELAXED),
	};
}

/* --------------------------------------------------------------- tables */

static int pt_for_each_table(const uint64_t *table, unsigned int lvl,
			     sim_table_fn fn, void *ctx)
{
	unsigned int i;
	int rc = fn(ctx, table, lvl);

	if (rc || lvl == 0)
		return rc;
	for (i = 0; i < SIM_PT_ENTRIES; i++) {
		uint64_t e = PT_LOAD(&table[i]);

		if (!pte_present(e) || pte_is_leaf(e, lvl))
			continue;
		rc = pt_for_each_table(pte_table(e), lvl - 1, fn, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

/* Every table of @pt, root first, in IOVA order (sim_hwpt_for_each_table()). */
int sim_pgtable_for_each_table(struct sim_pgtable *pt, sim_table_fn fn,
			       void *ctx)
{
	return pt_for_each_table(pt->root, SIM_PT_LEVELS - 1, fn, ctx);
}
