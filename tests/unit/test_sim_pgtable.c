// SPDX-License-Identifier: MIT
/*
 * The sim backend's internals: the radix page table (leaf selection, huge
 * leaves, table accounting), the unmap rules, the dirty walk's kernel
 * quirks, DMA faults, and that DMA racing with clearing harvests (and
 * with map/unmap) never loses a dirty bit.  The port of the kernel's
 * selftest lives in test_sim_dirty_tracking.c.
 *
 * A harvest through a host expects what the release the host emulates
 * answers (test_sim_expect.h's kernel_has(); run with $DIRTYD_SIM_KERNEL
 * set to each release of the matrix); a walk of a bare page table says
 * which record rule it wants (struct sim_dirty_bitmap's bounds) and is
 * tested with both.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/backend.h"
#include "kernel/backend_impl.h"
#include "kernel/sim/sim.h"
#include "kernel/sim/sim_private.h"
#include "test_sim_expect.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
/* A fake user_va, aligned to 1 GiB. */
#define UVA(off) ((void *)(uintptr_t)((1ULL << 40) + (off)))

struct host {
	struct backend *b;
	uint32_t dev;		/* "dirty0", attached to hwpt */
	uint32_t ioas;
	uint32_t hwpt;		/* allocated with DIRTY_TRACKING */
};

static struct backend *open_sim(uint64_t backing)
{
	struct sim_config cfg = {
		.n_devices = 2,
		.devices = {
			{ .name = "dirty0", .dirty_tracking = true },
			{ .name = "plain0", .dirty_tracking = false },
		},
		.backing_page_size = backing,
	};
	struct backend *b = NULL;

	cr_assert_eq(sim_backend_open(&cfg, &b), 0);
	return b;
}

/* dirty0 bound and attached to a tracking HWPT of a new IOAS. */
static void host_setup(struct host *h, uint64_t backing, bool enable)
{
	h->b = open_sim(backing);
	cr_assert_eq(backend_device_bind(h->b, "dirty0", &h->dev), 0);
	cr_assert_eq(backend_ioas_alloc(h->b, &h->ioas), 0);
	cr_assert_eq(backend_hwpt_alloc(h->b, h->dev, h->ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&h->hwpt), 0);
	cr_assert_eq(backend_device_attach(h->b, h->dev, h->hwpt), 0);
	if (enable)
		cr_assert_eq(backend_hwpt_set_dirty_tracking(h->b, h->hwpt,
							     true), 0);
}

static int map_at(struct host *h, uint64_t iova, uint64_t uva_off,
		  uint64_t len)
{
	return backend_ioas_map(h->b, h->ioas, FIXED, UVA(uva_off), len,
				&iova);
}

static uint64_t leaf_size(struct host *h, uint64_t iova)
{
	struct sim_leaf leaf;

	cr_assert_eq(sim_hwpt_lookup(h->b, h->hwpt, iova, &leaf), 0,
		     "no leaf at %#llx", (unsigned long long)iova);
	return leaf.size;
}

static bool bit(const void *bm, uint64_t k)
{
	return ((const uint8_t *)bm)[k / 8] >> (k % 8) & 1;
}

static uint64_t count_bits(const void *bm, uint64_t nbits)
{
	uint64_t k, n = 0;

	for (k = 0; k < nbits; k++)
		n += bit(bm, k);
	return n;
}

/* ------------------------------------------------------------ leaves */

Test(sim_pgtable, leaf_size_rules)
{
	/* IOVA and "physical" address aligned, length fits, cap. */
	cr_assert_eq(sim_pgtable_leaf_size(0, 0, GiB, GiB), GiB);
	cr_assert_eq(sim_pgtable_leaf_size(0, 0, GiB, 2 * MiB), 2 * MiB);
	cr_assert_eq(sim_pgtable_leaf_size(0, 0, GiB - 4 * KiB, GiB), 2 * MiB);
	cr_assert_eq(sim_pgtable_leaf_size(0, 4 * KiB, GiB, GiB), 4 * KiB);
	cr_assert_eq(sim_pgtable_leaf_size(2 * MiB, 2 * MiB, GiB, GiB),
		     2 * MiB);
	cr_assert_eq(sim_pgtable_leaf_size(GiB, 3 * GiB, GiB, GiB), GiB);
	cr_assert_eq(sim_pgtable_leaf_size(0, 0, 2 * MiB - 4 * KiB, GiB),
		     4 * KiB);
	cr_assert_eq(sim_pgtable_leaf_size(0, 0, GiB, 4 * KiB), 4 * KiB);
}

Test(sim_pgtable, mixed_leaves_and_accounting)
{
	struct sim_pgtable pt;
	struct sim_pgtable_stats st;
	struct sim_leaf leaf;
	/* 1 MiB in front of a 1 GiB boundary, through 1 GiB + 2 MiB + 8K */
	uint64_t iova = GiB - MiB, len = MiB + GiB + 2 * MiB + 8 * KiB;

	cr_assert_eq(sim_pgtable_init(&pt), 0);
	cr_assert_eq(sim_pgtable_map(&pt, iova, iova, len,
				     SIM_PTE_READ | SIM_PTE_WRITE, GiB), 0);
	sim_pgtable_stats(&pt, &st);
	cr_assert_eq(st.leaves_4k, 256 + 2);
	cr_assert_eq(st.leaves_2m, 1);
	cr_assert_eq(st.leaves_1g, 1);
	/* root, L2 for [0,512G), L1 + L0 for the head, L1 + L0 tail */
	cr_assert_eq(st.tables, 6);
	cr_assert_eq(st.table_bytes, 6 * 4096);

	cr_assert_eq(sim_pgtable_lookup(&pt, GiB + 5, &leaf), 0);
	cr_assert_eq(leaf.size, GiB);
	cr_assert_eq(leaf.iova, GiB);
	cr_assert_eq(leaf.paddr, GiB);
	cr_assert(leaf.writable);
	cr_assert_eq(sim_pgtable_lookup(&pt, 2 * GiB + MiB, &leaf), 0);
	cr_assert_eq(leaf.size, 2 * MiB);
	cr_assert_eq(sim_pgtable_lookup(&pt, 2 * GiB + 2 * MiB + 4 * KiB,
					&leaf), 0);
	cr_assert_eq(leaf.size, 4 * KiB);
	cr_assert_eq(sim_pgtable_lookup(&pt, 2 * GiB + 2 * MiB + 8 * KiB,
					&leaf), -ENXIO);
	cr_assert_eq(sim_pgtable_lookup(&pt, iova - 4 * KiB, &leaf), -ENXIO);

	/* A second mapping on top is refused and leaves nothing behind. */
	cr_assert_eq(sim_pgtable_map(&pt, GiB - 2 * MiB, 0, 4 * MiB,
				     SIM_PTE_READ, GiB), -EEXIST);
	cr_assert_eq(sim_pgtable_lookup(&pt, GiB - 2 * MiB, &leaf), -ENXIO);

	/* Unmapping everything frees every table but the root. */
	sim_pgtable_unmap(&pt, iova, len);
	sim_pgtable_stats(&pt, &st);
	cr_assert_eq(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	cr_assert_eq(st.tables, 1);

	/* Freed tables are reused, zeroed. */
	cr_assert_eq(sim_pgtable_map(&pt, 0, 0, 8 * MiB, SIM_PTE_READ,
				     4 * KiB), 0);
	sim_pgtable_stats(&pt, &st);
	cr_assert_eq(st.leaves_4k, 2048);
	cr_assert_eq(st.tables, 1 + 1 + 1 + 4);
	cr_assert_eq(sim_pgtable_lookup(&pt, 8 * MiB, &leaf), -ENXIO);
	sim_pgtable_destroy(&pt);
}

/* ------------------------------------------------- records, bare table */

/* Whether the leaf at @iova of @pt is dirty. */
static bool pt_leaf_dirty(struct sim_pgtable *pt, uint64_t iova)
{
	struct sim_leaf leaf;

	cr_assert_eq(sim_pgtable_lookup(pt, iova, &leaf), 0);
	return leaf.dirty;
}

/* The driver's walk of [@iova, @iova + @len) into @bm at 4 KiB pages. */
static struct sim_dirty_bitmap pt_walk(struct sim_pgtable *pt, uint64_t iova,
				       uint64_t len, unsigned int flags,
				       bool bounds, uint8_t *bm)
{
	struct sim_dirty_bitmap d = {
		.data = bm,
		.iova = iova,
		.last = iova + len - 1,
		.pgshift = 12,
		.bounds = bounds,
	};

	sim_pgtable_read_and_clear_dirty(pt, iova, len, flags, &d);
	return d;
}

/*
 * A dirty huge leaf is recorded from the walk's cursor for the leaf's size.
 * When that record does not fit in the bitmap's range: with .bounds
 * (record_bounds, 6.12.118) it is refused, dirty.err = -EPROTO, no bit
 * set; without, it is clipped to the range.  The leaf's dirty bit is
 * cleared either way (kept with NO_CLEAR), and the records before it in
 * the same walk stand.
 */
static void walk_record_bounds(bool bounds)
{
	const unsigned int nc = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
	struct sim_pgtable pt;
	struct sim_dirty_bitmap d;
	uint8_t buf[1 + 128 + 16];
	uint8_t *bm = buf + 1;		/* unaligned, a guard before */
	uint64_t k;

	cr_assert_eq(sim_pgtable_init(&pt), 0);
	cr_assert_eq(sim_pgtable_map(&pt, 0, 0, 8 * MiB,
				     SIM_PTE_READ | SIM_PTE_WRITE, 2 * MiB), 0);
	cr_assert_eq(sim_pgtable_dma_write(&pt, 4 * KiB, 4 * KiB, true), 0);
	cr_assert(pt_leaf_dirty(&pt, 0));

	/* [0, 8K) ends inside the dirty leaf [0, 2M): NO_CLEAR, then not */
	memset(buf, 0, sizeof(buf));
	d = pt_walk(&pt, 0, 8 * KiB, nc, bounds, bm);
	cr_assert_eq(d.overruns, 1);
	cr_assert_eq(d.err, bounds ? -EPROTO : 0);
	cr_assert_eq(bm[0], bounds ? 0 : 0x3, "bm[0] %#x", bm[0]);
	cr_assert(pt_leaf_dirty(&pt, 0), "NO_CLEAR cleared the leaf");
	memset(buf, 0, sizeof(buf));
	d = pt_walk(&pt, 0, 8 * KiB, 0, bounds, bm);
	cr_assert_eq(d.overruns, 1);
	cr_assert_eq(d.err, bounds ? -EPROTO : 0);
	cr_assert_eq(bm[0], bounds ? 0 : 0x3, "bm[0] %#x", bm[0]);
	cr_assert_not(pt_leaf_dirty(&pt, 0), "a refused record kept the bit");
	for (k = 0; k < sizeof(buf); k++)
		cr_assert_eq(buf[k], k == 1 && !bounds ? 0x3 : 0,
			     "byte %llu", (unsigned long long)k);

	/*
	 * [1M, 3M) starts inside the dirty leaf [0, 2M): the record [1M, 3M)
	 * fits exactly, both ways, running into the clean leaf [2M, 4M).
	 */
	cr_assert_eq(sim_pgtable_dma_write(&pt, 0, 0, true), 0);
	memset(buf, 0, sizeof(buf));
	d = pt_walk(&pt, MiB, 2 * MiB, 0, bounds, bm);
	cr_assert_eq(d.overruns, 0);
	cr_assert_eq(d.err, 0);
	cr_assert_eq(count_bits(bm, 512), 512);
	cr_assert_not(pt_leaf_dirty(&pt, 0));

	/*
	 * [1M, 4M) with [0, 2M) and [2M, 4M) dirty: [1M, 3M) fits, then the
	 * cursor at 3M records [3M, 5M), past the end: refused (the bits of
	 * the first record stay) or clipped to [3M, 4M).
	 */
	cr_assert_eq(sim_pgtable_dma_write(&pt, 0, 0, true), 0);
	cr_assert_eq(sim_pgtable_dma_write(&pt, 2 * MiB, 2 * MiB, true), 0);
	memset(buf, 0, sizeof(buf));
	d = pt_walk(&pt, MiB, 3 * MiB, 0, bounds, bm);
	cr_assert_eq(d.overruns, 1);
	cr_assert_eq(d.err, bounds ? -EPROTO : 0);
	for (k = 0; k < 768; k++)
		cr_assert_eq(bit(bm, k), k < 512 || !bounds, "bit %llu",
			     (unsigned long long)k);
	for (k = 1 + 768 / 8; k < sizeof(buf); k++)
		cr_assert_eq(buf[k], 0, "byte %llu past the bitmap",
			     (unsigned long long)k);
	cr_assert_eq(buf[0], 0);
	cr_assert_not(pt_leaf_dirty(&pt, 0));
	cr_assert_not(pt_leaf_dirty(&pt, 2 * MiB));

	/* Exactly the leaves: nothing overruns, both ways */
	cr_assert_eq(sim_pgtable_dma_write(&pt, 6 * MiB, 6 * MiB, true), 0);
	memset(buf, 0, sizeof(buf));
	d = pt_walk(&pt, 4 * MiB, 4 * MiB, 0, bounds, bm);
	cr_assert_eq(d.overruns, 0);
	cr_assert_eq(d.err, 0);
	cr_assert_eq(count_bits(bm, 1024), 512);
	cr_assert(bit(bm, 512) && bit(bm, 1023));
	sim_pgtable_destroy(&pt);
}

Test(sim_pgtable, dirty_walk_record_clipped)
{
	walk_record_bounds(false);
}

Test(sim_pgtable, dirty_walk_record_refused)
{
	walk_record_bounds(true);
}

/*
 * sim_dirty_record() alone, on a bitmap of [2M, 4M) at 4 KiB: records
 * inside are set whatever .bounds; records reaching outside (before, after,
 * across either end, wrapping) are refused with -EPROTO (the first refusal
 * kept) or clipped.
 */
Test(sim_pgtable, dirty_record_edges)
{
	int pass;

	for (pass = 0; pass < 2; pass++) {
		const bool bounds = pass;
		uint8_t bm[64 + 8];
		struct sim_dirty_bitmap d = {
			.data = bm,
			.iova = 2 * MiB,
			.last = 4 * MiB - 1,
			.pgshift = 12,
			.bounds = bounds,
		};
		uint64_t k;

		memset(bm, 0, sizeof(bm));
		/* inside: first page, last page, the whole range */
		sim_dirty_record(&d, 2 * MiB, 4 * KiB);
		sim_dirty_record(&d, 4 * MiB - 4 * KiB, 4 * KiB);
		cr_assert_eq(d.err, 0);
		cr_assert_eq(d.overruns, 0);
		cr_assert_eq(count_bits(bm, 8 * sizeof(bm)), 2);
		cr_assert(bit(bm, 0) && bit(bm, 511));
		sim_dirty_record(&d, 2 * MiB, 2 * MiB);
		cr_assert_eq(d.err, 0);
		cr_assert_eq(count_bits(bm, 8 * sizeof(bm)), 512);

		/* outside or across an end */
		memset(bm, 0, sizeof(bm));
		sim_dirty_record(&d, MiB, 2 * MiB);	/* [1M, 3M) */
		cr_assert_eq(d.overruns, 1);
		cr_assert_eq(d.err, bounds ? -EPROTO : 0);
		cr_assert_eq(count_bits(bm, 8 * sizeof(bm)), bounds ? 0 : 256);
		sim_dirty_record(&d, 3 * MiB, 2 * MiB);	/* [3M, 5M) */
		sim_dirty_record(&d, 4 * MiB, 4 * KiB);	/* after */
		sim_dirty_record(&d, MiB, 4 * KiB);	/* before */
		sim_dirty_record(&d, MiB, 4 * MiB);	/* over all */
		sim_dirty_record(&d, UINT64_MAX - 4 * KiB + 1, 8 * KiB);
		cr_assert_eq(d.overruns, 6);
		cr_assert_eq(d.err, bounds ? -EPROTO : 0);
		for (k = 0; k < 512; k++)
			cr_assert_eq(bit(bm, k), !bounds, "bounds %d: bit %llu",
				     bounds, (unsigned long long)k);
		for (k = 64; k < sizeof(bm); k++)
			cr_assert_eq(bm[k], 0, "byte %llu past the bitmap",
				     (unsigned long long)k);
	}
}

Test(sim_backend, leaves_follow_backing_and_alignment)
{
	struct host h;
	struct sim_pgtable_stats st;

	host_setup(&h, SIM_PAGE_SIZE_2M, false);
	/* 2 MiB-aligned IOVA and user_va: 2 MiB leaves, 4K tail. */
	cr_assert_eq(map_at(&h, 0, 0, 4 * MiB + 8 * KiB), 0);
	cr_assert_eq(leaf_size(&h, 0), 2 * MiB);
	cr_assert_eq(leaf_size(&h, 2 * MiB), 2 * MiB);
	cr_assert_eq(leaf_size(&h, 4 * MiB), 4 * KiB);
	/* Same IOVA alignment, user_va off by 4K: no physical alignment. */
	cr_assert_eq(map_at(&h, 8 * MiB, 4 * KiB, 4 * MiB), 0);
	cr_assert_eq(leaf_size(&h, 8 * MiB), 4 * KiB);
	cr_assert_eq(leaf_size(&h, 10 * MiB), 4 * KiB);
	/* IOVA and user_va congruent but starting mid 2 MiB. */
	cr_assert_eq(map_at(&h, 16 * MiB + MiB, MiB, 5 * MiB), 0);
	cr_assert_eq(leaf_size(&h, 17 * MiB), 4 * KiB);
	cr_assert_eq(leaf_size(&h, 18 * MiB), 2 * MiB);
	cr_assert_eq(leaf_size(&h, 20 * MiB), 2 * MiB);
	/* backing_page_size caps the leaf: 1 GiB aligned still 2 MiB. */
	cr_assert_eq(map_at(&h, GiB, 0, GiB), 0);
	cr_assert_eq(leaf_size(&h, GiB), 2 * MiB);
	cr_assert_eq(sim_hwpt_stats(h.b, h.hwpt, &st), 0);
	cr_assert_eq(st.leaves_1g, 0);
	cr_assert_eq(st.leaves_2m, 2 + 2 + 512);
	backend_close(h.b);

	host_setup(&h, SIM_PAGE_SIZE_1G, false);
	cr_assert_eq(map_at(&h, GiB, 0, GiB + 2 * MiB + 4 * KiB), 0);
	cr_assert_eq(leaf_size(&h, GiB), GiB);
	cr_assert_eq(leaf_size(&h, 2 * GiB), 2 * MiB);
	cr_assert_eq(leaf_size(&h, 2 * GiB + 2 * MiB), 4 * KiB);
	backend_close(h.b);
}

Test(sim_backend, huge_pages_option)
{
	struct host h = { .b = open_sim(SIM_PAGE_SIZE_1G) };
	uint32_t hwpt2;
	uint64_t iova = 0;

	cr_assert_eq(backend_device_bind(h.b, "dirty0", &h.dev), 0);
	cr_assert_eq(backend_ioas_alloc(h.b, &h.ioas), 0);

	/* Mappings but no HWPT: disabling is allowed (iopt_disable_...). */
	cr_assert_eq(map_at(&h, 0, 0, GiB), 0);
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, h.ioas, false), 0);
	/* The HWPT filled now gets 4 KiB leaves only. */
	cr_assert_eq(backend_hwpt_alloc(h.b, h.dev, h.ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&h.hwpt), 0);
	cr_assert_eq(leaf_size(&h, 0), 4 * KiB);
	cr_assert_eq(leaf_size(&h, GiB - 4 * KiB), 4 * KiB);
	/* A HWPT and a mapping: refused. Disabling twice is fine. */
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, h.ioas, false), 0);
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, h.ioas, true), 0);
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, h.ioas, false),
		     -EINVAL);
	/* Enabled again: new maps get huge leaves, old ones stay. */
	cr_assert_eq(map_at(&h, GiB, 0, GiB), 0);
	cr_assert_eq(leaf_size(&h, GiB), GiB);
	cr_assert_eq(leaf_size(&h, 0), 4 * KiB);
	/* A HWPT added now is filled with huge leaves everywhere. */
	cr_assert_eq(backend_hwpt_alloc(h.b, h.dev, h.ioas, 0, &hwpt2), 0);
	h.hwpt = hwpt2;
	cr_assert_eq(leaf_size(&h, 0), GiB);
	/* Unmapped everything: disabling allowed again. */
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, UINT64_MAX, NULL), 0);
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, h.ioas, false), 0);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(0), GiB, &iova),
		     0);
	cr_assert_eq(leaf_size(&h, iova), 4 * KiB);
	cr_assert_eq(backend_ioas_set_huge_pages(h.b, 9999, false), -ENOENT);
	backend_close(h.b);
}

/* --------------------------------------------------------- map, unmap */

Test(sim_backend, map_errors)
{
	struct host h;
	uint64_t iova;

	host_setup(&h, 0, false);
	iova = 0;
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, FIXED | 8, UVA(0),
				      4 * KiB, &iova), -EOPNOTSUPP);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, IOMMU_IOAS_MAP_FIXED_IOVA,
				      UVA(0), 4 * KiB, &iova), -EINVAL);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, FIXED, UVA(0), UINT64_MAX,
				      &iova), -EOVERFLOW);
	cr_assert_eq(backend_ioas_map(h.b, 999, FIXED, UVA(0), 4 * KiB,
				      &iova), -ENOENT);
	cr_assert_eq(map_at(&h, 0, 0, 0), -EINVAL);
	cr_assert_eq(map_at(&h, 0, 0, 6 * KiB), -EINVAL);
	cr_assert_eq(map_at(&h, 2 * KiB, 0, 4 * KiB), -EINVAL);
	cr_assert_eq(map_at(&h, 0, 2 * KiB, 4 * KiB), -EINVAL);
	cr_assert_eq(map_at(&h, (1ULL << 48) - 4 * KiB, 0, 8 * KiB),
		     -EINVAL);
	cr_assert_eq(map_at(&h, UINT64_MAX - 4 * KiB + 1, 0, 8 * KiB),
		     -EOVERFLOW);
	cr_assert_eq(map_at(&h, 64 * KiB, 0, 64 * KiB), 0);
	cr_assert_eq(map_at(&h, 64 * KiB, 0, 4 * KiB), -EEXIST);
	cr_assert_eq(map_at(&h, 60 * KiB, 0, 8 * KiB), -EEXIST);
	cr_assert_eq(map_at(&h, 124 * KiB, 0, 8 * KiB), -EEXIST);
	/* EEXIST is found before the user_va alignment is looked at. */
	cr_assert_eq(map_at(&h, 64 * KiB, 1, 4 * KiB), -EEXIST);

	/* Allocated IOVA: never 0, aligned to min(len, uva) up to 2 MiB. */
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(0), 4 * KiB,
				      &iova), 0);
	cr_assert_eq(iova, 4 * KiB);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(0), 16 * KiB,
				      &iova), 0);
	cr_assert_eq(iova, 16 * KiB);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(0), 8 * MiB,
				      &iova), 0);
	cr_assert_eq(iova, 2 * MiB);
	/* 4 KiB-aligned user_va: the first 8 MiB hole, at any 4 KiB. */
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(4 * KiB), 8 * MiB,
				      &iova), 0);
	cr_assert_eq(iova, 10 * MiB);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas, RW, UVA(2 * KiB), 8 * KiB,
				      &iova), -EINVAL);
	backend_close(h.b);
}

Test(sim_backend, unmap_rules)
{
	struct host h;
	struct sim_leaf leaf;
	uint64_t unmapped = 7;

	host_setup(&h, 0, false);
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, UINT64_MAX,
					&unmapped), 0);
	cr_assert_eq(unmapped, 0);
	cr_assert_eq(map_at(&h, 0, 0, MiB), 0);		/* A */
	cr_assert_eq(map_at(&h, MiB, 0, MiB), 0);	/* B, adjacent */
	cr_assert_eq(map_at(&h, 4 * MiB, 0, MiB), 0);	/* C */

	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, 0, NULL), -EINVAL);
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 8, UINT64_MAX, NULL),
		     -EOVERFLOW);
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, UINT64_MAX - 4095,
					8192, NULL), -EOVERFLOW);
	cr_assert_eq(backend_ioas_unmap(h.b, 999, 0, MiB, NULL), -ENOENT);
	/* Nothing there. */
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 2 * MiB, 2 * MiB, NULL),
		     -ENOENT);
	/* Splitting an area: -ENOENT, nothing unmapped. */
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, 512 * KiB, NULL),
		     -ENOENT);
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 4 * KiB, MiB, NULL),
		     -ENOENT);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 0, &leaf), 0);
	/* A whole, B cut: A goes, B stays, -ENOENT (no rollback). */
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, MiB + 4 * KiB, NULL),
		     -ENOENT);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 0, &leaf), -ENXIO);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, MiB, &leaf), 0);
	/* No alignment needed if whole areas are covered. */
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, MiB - 1, MiB + 3,
					&unmapped), 0);
	cr_assert_eq(unmapped, MiB);
	cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, 0, UINT64_MAX,
					&unmapped), 0);
	cr_assert_eq(unmapped, MiB);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 4 * MiB, &leaf), -ENXIO);
	backend_close(h.b);
}

Test(sim_backend, hwpt_fill_and_tables_freed)
{
	struct host h;
	struct sim_pgtable_stats st;
	struct sim_stats hs;
	uint32_t hwpt2;
	int i;

	host_setup(&h, SIM_PAGE_SIZE_2M, false);
	for (i = 0; i < 8; i++)
		cr_assert_eq(map_at(&h, i * 4 * MiB, 0, 2 * MiB + 4 * KiB), 0);
	/* A HWPT allocated later is filled from the IOAS's areas. */
	cr_assert_eq(backend_hwpt_alloc(h.b, h.dev, h.ioas, 0, &hwpt2), 0);
	cr_assert_eq(sim_hwpt_stats(h.b, hwpt2, &st), 0);
	cr_assert_eq(st.leaves_2m, 8);
	cr_assert_eq(st.leaves_4k, 8);
	cr_assert_eq(sim_backend_stats(h.b, &hs), 0);
	cr_assert_eq(hs.n_hwpt, 2);
	cr_assert_eq(hs.pt.leaves_2m, 16);

	for (i = 0; i < 8; i++)
		cr_assert_eq(backend_ioas_unmap(h.b, h.ioas, i * 4 * MiB,
						2 * MiB + 4 * KiB, NULL), 0);
	cr_assert_eq(sim_hwpt_stats(h.b, hwpt2, &st), 0);
	cr_assert_eq(st.leaves_2m + st.leaves_4k, 0);
	cr_assert_eq(st.tables, 1);
	cr_assert_eq(sim_hwpt_stats(h.b, h.hwpt, &st), 0);
	cr_assert_eq(st.tables, 1);
	cr_assert_eq(backend_destroy(h.b, hwpt2), 0);
	cr_assert_eq(sim_hwpt_stats(h.b, hwpt2, &st), -ENOENT);
	backend_close(h.b);
}

/* ------------------------------------------------------------- dirty */

static void dirty(struct host *h, uint64_t iova, uint64_t len)
{
	cr_assert_eq(backend_dma_write(h->b, h->dev, iova, len), 0);
}

static int harvest(struct host *h, uint64_t iova, uint64_t len,
		   uint64_t page_size, void *bm, uint32_t flags)
{
	return backend_hwpt_get_dirty_bitmap(h->b, h->hwpt, iova, len,
					     page_size, bm, flags);
}

Test(sim_dirty, huge_leaf_reports_every_page)
{
	struct host h;
	uint64_t bm[16] = { 0 };
	uint64_t k;

	host_setup(&h, SIM_PAGE_SIZE_2M, true);
	cr_assert_eq(map_at(&h, 0, 0, 4 * MiB), 0);
	dirty(&h, 8 * KiB, 1);
	cr_assert_eq(harvest(&h, 0, 4 * MiB, 4 * KiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
	for (k = 0; k < 1024; k++)
		cr_assert_eq(bit(bm, k), k < 512, "bit %llu",
			     (unsigned long long)k);
	/* The same leaf at 1 MiB bitmap pages: two bits. */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(harvest(&h, 0, 4 * MiB, MiB, bm, 0), 0);
	cr_assert_eq(bm[0], 0x3);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(harvest(&h, 0, 4 * MiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(count_bits(bm, 1024), 0);
	backend_close(h.b);
}

Test(sim_dirty, bitmap_page_sizes)
{
	struct host h;
	uint64_t bm[8] = { 0 };

	host_setup(&h, 0, true);
	cr_assert_eq(map_at(&h, 0, 0, 4 * MiB), 0);
	/* A 4 KiB leaf inside a 2 MiB bitmap page sets that page's bit. */
	dirty(&h, 2 * MiB + 8 * KiB, 4 * KiB);
	cr_assert_eq(harvest(&h, 0, 4 * MiB, 2 * MiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
	cr_assert_eq(bm[0], 0x2);
	/* 2 KiB pages (smaller than the IOAS alignment): two bits. */
	bm[0] = 0;
	cr_assert_eq(harvest(&h, 2 * MiB, 16 * KiB, 2 * KiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
	cr_assert_eq(bm[0], 0x30);
	/*
	 * 12 KiB is no power of two: the mask test (0x2fff) passes for
	 * 16 KiB at 0 and each bit is 1 << __ffs(12K) = 4 KiB.
	 */
	bm[0] = 0;
	cr_assert_eq(harvest(&h, 2 * MiB, 16 * KiB, 12 * KiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
	cr_assert_eq(bm[0], 0x4);
	bm[0] = 0;
	/* ... and only the mask: 0x201000 & 0x2fff == 0 passes, 0x202000
	 * does not. */
	cr_assert_eq(harvest(&h, 2 * MiB + 4 * KiB, 16 * KiB, 12 * KiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
	cr_assert_eq(bm[0], 0x2);
	cr_assert_eq(harvest(&h, 2 * MiB + 8 * KiB, 16 * KiB, 12 * KiB, bm,
			     0), -EINVAL);
	/* Bits are only ever set. */
	bm[0] = 0xf0000;
	cr_assert_eq(harvest(&h, 2 * MiB, 64 * KiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(bm[0], 0xf0004);
	backend_close(h.b);
}

Test(sim_dirty, range_inside_huge_leaf_and_clipping)
{
	struct host h;
	uint8_t buf[160];
	uint8_t *bm = buf + 1;		/* unaligned on purpose */
	uint64_t k;
	struct sim_leaf leaf;
	bool bounds;

	host_setup(&h, SIM_PAGE_SIZE_2M, true);
	bounds = kernel_has(h.b, SIM_KB_RECORD_BOUNDS);
	cr_assert_eq(map_at(&h, 0, 0, 4 * MiB), 0);
	dirty(&h, 0, 4 * KiB);		/* leaf [0, 2M) */

	/*
	 * From 1 MiB: the VT-d walk records [1M, 3M), running into the
	 * clean leaf [2M, 4M), and clears leaf 0 entirely.
	 */
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(harvest(&h, MiB, 3 * MiB, 4 * KiB, bm, 0), 0);
	for (k = 0; k < 768; k++)
		cr_assert_eq(bit(bm, k), k < 512, "bit %llu",
			     (unsigned long long)k);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 0, &leaf), 0);
	cr_assert_not(leaf.dirty);

	/*
	 * Ending inside a dirty huge leaf: clipped to the range and 0 up to
	 * 6.12.117; with record_bounds (6.12.118) refused, no bit, -EPROTO.
	 * The leaf is cleared either way, unless NO_CLEAR.
	 */
	dirty(&h, 2 * MiB, 4 * KiB);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(harvest(&h, 2 * MiB, MiB, 4 * KiB, bm,
			     IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR),
		     kernel_rc_bounds(h.b));
	cr_assert_eq(count_bits(bm, 256), bounds ? 0 : 256);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 2 * MiB, &leaf), 0);
	cr_assert(leaf.dirty);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(harvest(&h, 2 * MiB, MiB, 4 * KiB, bm, 0),
		     kernel_rc_bounds(h.b));
	cr_assert_eq(count_bits(bm, 256), bounds ? 0 : 256);
	for (k = 32; k < sizeof(buf) - 1; k++)
		cr_assert_eq(bm[k], 0, "byte %llu past the bitmap",
			     (unsigned long long)k);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 2 * MiB, &leaf), 0);
	cr_assert_not(leaf.dirty);
	backend_close(h.b);
}

Test(sim_dirty, hole_stops_the_walk)
{
	struct host h;
	uint64_t bm[16] = { 0 };

	host_setup(&h, 0, true);
	cr_assert_eq(map_at(&h, 0, 0, MiB), 0);			/* A */
	cr_assert_eq(map_at(&h, MiB, 0, MiB), 0);		/* B */
	cr_assert_eq(map_at(&h, 3 * MiB, 0, MiB), 0);		/* C */
	dirty(&h, 4 * KiB, 4 * KiB);
	dirty(&h, MiB + 4 * KiB, 4 * KiB);
	dirty(&h, 3 * MiB + 4 * KiB, 4 * KiB);

	/*
	 * A and B are contiguous; the hole at 2M stops it: C unseen.  The
	 * read returns the walk's -EINVAL from 6.12.118 (walk_errors), 0
	 * before; A's and B's bits are reported either way.
	 */
	cr_assert_eq(harvest(&h, 0, 4 * MiB, 4 * KiB, bm, 0),
		     kernel_rc_walk(h.b));
	cr_assert_eq(count_bits(bm, 1024), 2);
	cr_assert(bit(bm, 1));
	cr_assert(bit(bm, 257));
	/* Starting in the hole: nothing at all, C still dirty. */
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(harvest(&h, 2 * MiB, 2 * MiB, 4 * KiB, bm, 0),
		     kernel_rc_walk(h.b));
	cr_assert_eq(count_bits(bm, 512), 0);
	cr_assert_eq(harvest(&h, 3 * MiB, MiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(count_bits(bm, 256), 1);
	cr_assert(bit(bm, 1));
	backend_close(h.b);
}

Test(sim_dirty, disabled_null_bitmap_and_errors)
{
	struct host h;
	uint64_t bm[4] = { 0 };
	uint32_t plain, auto_hwpt;
	struct sim_leaf leaf;

	host_setup(&h, 0, false);
	cr_assert_eq(map_at(&h, 0, 0, MiB), 0);
	/* Not tracking: DMA leaves no mark. */
	dirty(&h, 0, 16 * KiB);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 0, &leaf), 0);
	cr_assert_not(leaf.dirty);

	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, true), 0);
	dirty(&h, 0, 16 * KiB);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, false), 0);
	/*
	 * Disabled: a read sets nothing, clears nothing, and returns the
	 * driver's -EINVAL from 6.12.118 (walk_errors), 0 before.
	 */
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, bm, 0), kernel_rc_walk(h.b));
	cr_assert_eq(count_bits(bm, 256), 0);
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, 0, &leaf), 0);
	cr_assert(leaf.dirty);
	/* Re-enabling clears every bit first. */
	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, true), 0);
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(count_bits(bm, 256), 0);
	/* Enabling while enabled clears too. */
	dirty(&h, 0, 4 * KiB);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, true), 0);
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(count_bits(bm, 256), 0);
	/* A NULL bitmap reports nothing but clears (unpinnable bitmap). */
	dirty(&h, 0, 4 * KiB);
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, NULL, 0), 0);
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, bm, 0), 0);
	cr_assert_eq(count_bits(bm, 256), 0);

	/* Errors, in the kernel's order. */
	cr_assert_eq(harvest(&h, 0, MiB, 4 * KiB, bm, 2), -EOPNOTSUPP);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(h.b, 999, 0, MiB, 4 * KiB,
						   bm, 2), -EOPNOTSUPP);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(h.b, 999, 0, MiB, 4 * KiB,
						   bm, 0), -ENOENT);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(h.b, h.ioas, 0, MiB,
						   4 * KiB, bm, 0), -ENOENT);
	/*
	 * Length 0: -EINVAL from 6.12.117; before, -EOVERFLOW, but at iova 0
	 * (no wrap) the sim answers -EINVAL too (kernel/sim/dirty.c, 8).
	 */
	cr_assert_eq(harvest(&h, 0, 0, 4 * KiB, bm, 0), -EINVAL);
	cr_assert_eq(harvest(&h, 4 * KiB, 0, 4 * KiB, bm, 0),
		     kernel_rc_zero_length(h.b, 4 * KiB));
	cr_assert_eq(harvest(&h, UINT64_MAX - 4095, 8192, 4 * KiB, bm, 0),
		     -EOVERFLOW);
	cr_assert_eq(harvest(&h, 2 * KiB, 4 * KiB, 2 * KiB, bm, 0), -EINVAL);
	cr_assert_eq(harvest(&h, 0, 6 * KiB, 2 * KiB, bm, 0), -EINVAL);
	cr_assert_eq(harvest(&h, 0, MiB, 0, bm, 0), -EINVAL);
	cr_assert_eq(harvest(&h, 4 * KiB, MiB, 8 * KiB, bm, 0), -EINVAL);

	/* A HWPT without DIRTY_TRACKING, an auto domain: no dirty ops. */
	cr_assert_eq(backend_hwpt_alloc(h.b, h.dev, h.ioas, 0, &plain), 0);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, plain, true),
		     -EOPNOTSUPP);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(h.b, plain, 0, MiB,
						   4 * KiB, bm, 0),
		     -EOPNOTSUPP);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(h.b, plain, 0, 0,
						   4 * KiB, bm, 0), -EINVAL);
	cr_assert_eq(backend_device_attach(h.b, h.dev, h.ioas), 0);
	cr_assert_eq(sim_device_hwpt(h.b, h.dev, &auto_hwpt), 0);
	cr_assert_neq(auto_hwpt, h.hwpt);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(h.b, auto_hwpt, true),
		     -EOPNOTSUPP);
	backend_close(h.b);
}

/* ---------------------------------------------------------- devices */

Test(sim_device, dma_faults_and_attachment)
{
	struct host h;
	struct sim_stats st;
	uint32_t plain, auto_hwpt, auto2;
	uint64_t iova = 0;

	host_setup(&h, 0, true);
	cr_assert_eq(map_at(&h, 0, 0, MiB), 0);
	cr_assert_eq(backend_ioas_map(h.b, h.ioas,
				      IOMMU_IOAS_MAP_FIXED_IOVA |
				      IOMMU_IOAS_MAP_READABLE,
				      UVA(0), MiB, &(uint64_t){ 2 * MiB }),
		     0);
	cr_assert_eq(backend_dma_write(h.b, h.dev, MiB - 4 * KiB, 8 * KiB),
		     -ENOENT);
	cr_assert_eq(backend_dma_write(h.b, h.dev, 2 * MiB, 1), -EACCES);
	cr_assert_eq(backend_dma_write(h.b, h.dev, 1ULL << 48, 1), -ENOENT);
	cr_assert_eq(backend_dma_write(h.b, h.dev, 0, 0), -EINVAL);
	cr_assert_eq(backend_dma_write(h.b, h.dev, UINT64_MAX, 2),
		     -EOVERFLOW);
	cr_assert_eq(backend_dma_write(h.b, 999, 0, 1), -ENOENT);
	cr_assert_eq(sim_backend_stats(h.b, &st), 0);
	cr_assert_eq(st.io_page_faults, 3);
	/* The pages before the fault were written. */
	cr_assert_eq(sim_hwpt_lookup(h.b, h.hwpt, MiB - 4 * KiB,
				     &(struct sim_leaf){}), 0);

	cr_assert_eq(backend_device_detach(h.b, h.dev), 0);
	cr_assert_eq(backend_device_detach(h.b, h.dev), 0);
	cr_assert_eq(backend_dma_write(h.b, h.dev, 0, 1), -ENODEV);

	/* A device without the capability: no dirty HWPT, no attach. */
	cr_assert_eq(backend_device_bind(h.b, "plain0", &plain), 0);
	cr_assert_eq(backend_device_bind(h.b, "plain0", &plain), -EINVAL);
	cr_assert_eq(backend_hwpt_alloc(h.b, plain, h.ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&(uint32_t){ 0 }), -EOPNOTSUPP);
	cr_assert_eq(backend_device_attach(h.b, plain, h.hwpt), -EINVAL);

	/* Both on the IOAS share one auto domain, gone with the last. */
	cr_assert_eq(backend_device_attach(h.b, plain, h.ioas), 0);
	cr_assert_eq(backend_device_attach(h.b, h.dev, h.ioas), 0);
	cr_assert_eq(sim_device_hwpt(h.b, plain, &auto_hwpt), 0);
	cr_assert_eq(sim_device_hwpt(h.b, h.dev, &auto2), 0);
	cr_assert_eq(auto_hwpt, auto2);
	cr_assert_eq(backend_destroy(h.b, auto_hwpt), -EBUSY);
	cr_assert_eq(backend_destroy(h.b, h.ioas), -EBUSY);
	cr_assert_eq(backend_destroy(h.b, plain), -EBUSY);
	/* Replace onto the dirty HWPT; the auto domain keeps plain0. */
	cr_assert_eq(backend_device_attach(h.b, h.dev, h.hwpt), 0);
	cr_assert_eq(backend_device_attach(h.b, plain, h.hwpt), -EINVAL);
	cr_assert_eq(sim_device_hwpt(h.b, plain, &auto2), 0);
	cr_assert_eq(auto2, auto_hwpt);
	cr_assert_eq(sim_backend_stats(h.b, &st), 0);
	cr_assert_eq(st.n_hwpt, 2);
	cr_assert_eq(backend_device_unbind(h.b, plain), 0);
	cr_assert_eq(sim_backend_stats(h.b, &st), 0);
	cr_assert_eq(st.n_hwpt, 1);
	cr_assert_eq(backend_device_unbind(h.b, plain), -ENOENT);
	/* The dirty HWPT is busy while dirty0 is on it. */
	cr_assert_eq(backend_destroy(h.b, h.hwpt), -EBUSY);
	cr_assert_eq(backend_device_unbind(h.b, h.dev), 0);
	cr_assert_eq(backend_destroy(h.b, h.ioas), -EBUSY);
	cr_assert_eq(backend_destroy(h.b, h.hwpt), 0);
	cr_assert_eq(backend_destroy(h.b, h.ioas), 0);
	cr_assert_eq(backend_destroy(h.b, h.ioas), -ENOENT);
	(void)iova;
	backend_close(h.b);
}

Test(sim_device, config_enumerate_bind_hw_info)
{
	struct sim_config cfg = { .n_devices = 1,
				  .devices = { { .name = "a" } } };
	struct backend_device_name names[4];
	struct backend_hw_info info;
	struct backend *b;
	char longname[BACKEND_NAME_MAX + 1];
	uint32_t id, id2;

	cfg.backing_page_size = 8192;
	cr_assert_eq(sim_backend_open(&cfg, &b), -EINVAL);
	cfg.backing_page_size = 0;
	cfg.n_devices = 2;
	cfg.devices[1] = cfg.devices[0];
	cr_assert_eq(sim_backend_open(&cfg, &b), -EINVAL);
	cfg.devices[1].name[0] = '\0';
	cr_assert_eq(sim_backend_open(&cfg, &b), -EINVAL);
	cfg.n_devices = SIM_MAX_DEVICES + 1;
	cr_assert_eq(sim_backend_open(&cfg, &b), -EINVAL);

	b = open_sim(0);
	cr_assert(sim_backend_is(b));
	cr_assert_str_eq(backend_name(b), "sim");
	cr_assert_eq(backend_device_enumerate(b, names, 4), 2);
	cr_assert_str_eq(names[0].name, "dirty0");
	cr_assert_str_eq(names[1].name, "plain0");
	cr_assert_eq(backend_device_enumerate(b, names, 1), 1);
	cr_assert_eq(backend_device_enumerate(b, NULL, 1), -EINVAL);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(backend_device_bind(b, longname, &id), -ENAMETOOLONG);
	cr_assert_eq(backend_device_bind(b, "nope", &id), -ENOENT);
	cr_assert_eq(backend_device_bind(b, "dirty0", &id), 0);
	cr_assert_eq(backend_device_bind(b, "plain0", &id2), 0);
	cr_assert_neq(id, id2);
	cr_assert_eq(backend_device_get_hw_info(b, id, &info), 0);
	cr_assert_eq(info.capabilities, IOMMU_HW_CAP_DIRTY_TRACKING);
	cr_assert_eq(info.data_type, IOMMU_HW_INFO_TYPE_NONE);
	cr_assert_eq(backend_device_get_hw_info(b, id2, &info), 0);
	cr_assert_eq(info.capabilities, 0);
	cr_assert_eq(backend_device_get_hw_info(b, id + 100, &info), -ENOENT);
	cr_assert_eq(backend_device_fd(b, id), -EOPNOTSUPP);
	cr_assert_eq(backend_iommufd(b), -EOPNOTSUPP);
	/* Ids are the lowest free ones, reused after unbind. */
	cr_assert_eq(backend_device_unbind(b, id), 0);
	cr_assert_eq(backend_device_get_hw_info(b, id, &info), -ENOENT);
	cr_assert_eq(backend_device_bind(b, "dirty0", &id2), 0);
	cr_assert_eq(id2, id);
	backend_close(b);
}

/* ------------------------------------------------------ concurrency */

#define RACE_PAGES 16384ULL		/* 64 MiB at 4 KiB */
#define RACE_WRITES 200000
#define RACE_WRITERS 2
#define RACE_HARVESTERS 2

struct race {
	struct host h;
	uint64_t oracle[RACE_PAGES / 64];	/* atomic */
	uint64_t seen[RACE_PAGES / 64];		/* atomic */
	int writers_left;			/* atomic */
	uint64_t harvests;			/* atomic */
	uint64_t churns;			/* atomic */
	int err;				/* atomic: first failure */
};

/* Criterion asserts belong to the test's thread: record, check later. */
static void race_check(struct race *r, int rc)
{
	int zero = 0;

	if (rc)
		__atomic_compare_exchange_n(&r->err, &zero, rc, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

struct race_thread {
	struct race *r;
	uint64_t seed;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *race_writer(void *arg)
{
	struct race_thread *t = arg;
	struct race *r = t->r;
	uint64_t i;

	/* Go on until the others have raced us a fair number of times. */
	for (i = 0; i < RACE_WRITES ||
		    __atomic_load_n(&r->harvests, __ATOMIC_RELAXED) < 100 ||
		    __atomic_load_n(&r->churns, __ATOMIC_RELAXED) < 100;
	     i++) {
		uint64_t p = xorshift(&t->seed) % RACE_PAGES;
		uint64_t n = (i % 16) ? 1 : 1 + xorshift(&t->seed) % 8;
		uint64_t k;

		if (p + n > RACE_PAGES)
			n = RACE_PAGES - p;
		race_check(r, backend_dma_write(r->h.b, r->h.dev, p * 4096,
						n * 4096));
		/* Only after the write: the PTE is dirty before the bit. */
		for (k = p; k < p + n; k++)
			__atomic_fetch_or(&r->oracle[k / 64], 1ULL << (k % 64),
					  __ATOMIC_RELEASE);
	}
	__atomic_fetch_sub(&r->writers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void race_harvest(struct race *r, uint64_t first, uint64_t pages)
{
	uint64_t bm[RACE_PAGES / 64];
	uint64_t w;

	memset(bm, 0, sizeof(bm));
	race_check(r, backend_hwpt_get_dirty_bitmap(r->h.b, r->h.hwpt,
						    first * 4096, pages * 4096,
						    4096, bm, 0));
	for (w = 0; w < pages / 64; w++)
		if (bm[w])
			__atomic_fetch_or(&r->seen[first / 64 + w], bm[w],
					  __ATOMIC_RELAXED);
}

static void *race_harvester(void *arg)
{
	struct race_thread *t = arg;
	struct race *r = t->r;

	while (__atomic_load_n(&r->writers_left, __ATOMIC_ACQUIRE)) {
		/* Overlapping windows, so harvesters race on the same PTEs. */
		uint64_t first = (xorshift(&t->seed) % 4) * (RACE_PAGES / 8);

		race_harvest(r, first, RACE_PAGES / 2);
		__atomic_fetch_add(&r->harvests, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *race_churner(void *arg)
{
	struct race_thread *t = arg;
	struct race *r = t->r;

	/* Map/unmap another part of the IOAS: takes iova_lock for write. */
	while (__atomic_load_n(&r->writers_left, __ATOMIC_ACQUIRE)) {
		uint64_t iova = GiB;

		race_check(r, backend_ioas_map(r->h.b, r->h.ioas, FIXED,
					       UVA(0), 2 * MiB, &iova));
		race_check(r, backend_dma_write(r->h.b, r->h.dev, GiB, 4096));
		race_check(r, backend_ioas_unmap(r->h.b, r->h.ioas, GiB,
						 2 * MiB, NULL));
		__atomic_fetch_add(&r->churns, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void race_run(uint64_t backing)
{
	struct race *r = calloc(1, sizeof(*r));
	struct race_thread t[RACE_WRITERS + RACE_HARVESTERS + 1];
	pthread_t tid[RACE_WRITERS + RACE_HARVESTERS + 1];
	unsigned int i, n = 0;
	uint64_t w;

	cr_assert_not_null(r);
	host_setup(&r->h, backing, true);
	cr_assert_eq(map_at(&r->h, 0, 0, RACE_PAGES * 4096), 0);
	r->writers_left = RACE_WRITERS;

	for (i = 0; i < RACE_WRITERS; i++, n++) {
		t[n] = (struct race_thread){ .r = r, .seed = 0x9e3779b9 + n };
		cr_assert_eq(pthread_create(&tid[n], NULL, race_writer, &t[n]),
			     0);
	}
	for (i = 0; i < RACE_HARVESTERS; i++, n++) {
		t[n] = (struct race_thread){ .r = r, .seed = 0x51ed27 + n };
		cr_assert_eq(pthread_create(&tid[n], NULL, race_harvester,
					    &t[n]), 0);
	}
	t[n] = (struct race_thread){ .r = r };
	cr_assert_eq(pthread_create(&tid[n], NULL, race_churner, &t[n]), 0);
	n++;
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);

	/* Whatever was left dirty. */
	race_harvest(r, 0, RACE_PAGES);
	cr_assert_eq(r->err, 0, "a thread failed: %d", r->err);
	cr_log_info("%llu harvests, %llu map/unmap rounds",
		    (unsigned long long)r->harvests,
		    (unsigned long long)r->churns);
	cr_assert_gt(r->harvests, 0);
	cr_assert_gt(r->churns, 0);
	if (backing == SIM_PAGE_SIZE_4K) {
		/* Every page written reported, nothing else. */
		for (w = 0; w < RACE_PAGES / 64; w++)
			cr_assert_eq(r->seen[w], r->oracle[w],
				     "word %llu: seen %#llx oracle %#llx",
				     (unsigned long long)w,
				     (unsigned long long)r->seen[w],
				     (unsigned long long)r->oracle[w]);
	} else {
		/* Huge leaves: every page written is within a reported leaf. */
		for (w = 0; w < RACE_PAGES / 64; w++)
			cr_assert_eq(r->seen[w] & r->oracle[w], r->oracle[w],
				     "word %llu", (unsigned long long)w);
	}
	backend_close(r->h.b);
	free(r);
}

Test(sim_race, dma_vs_clearing_harvests_4k, .timeout = 120)
{
	race_run(SIM_PAGE_SIZE_4K);
}

Test(sim_race, dma_vs_clearing_harvests_2m, .timeout = 120)
{
	race_run(SIM_PAGE_SIZE_2M);
}
