// SPDX-License-Identifier: MIT
/* The harvest engine against the simulated host: plans, both worker counts
 * and the async mode, several domains at once, batch boundaries, huge
 * leaves, NO_CLEAR; the backend's capabilities and its async read. */
#include <criterion/criterion.h>
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_rng.h"
#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"
#include "kernel/sim/sim.h"

#define PG 4096ULL

static struct backend *open_sim(uint64_t backing, unsigned int ndev)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = { .n_devices = ndev, .backing_page_size = backing },
	};
	struct backend *b;

	for (unsigned int i = 0; i < ndev; i++) {
		snprintf(cfg.sim.devices[i].name, BACKEND_NAME_MAX, "dev%u", i);
		cfg.sim.devices[i].dirty_tracking = true;
	}
	cr_assert_eq(backend_open(&cfg, &b), 0);
	return b;
}

struct dom_setup {
	uint32_t dev, ioas, hwpt;
};

static void setup_domain(struct backend *b, const char *dev,
			 const struct harvest_range *r, size_t n,
			 struct dom_setup *s)
{
	cr_assert_eq(backend_device_bind(b, dev, &s->dev), 0);
	cr_assert_eq(backend_ioas_alloc(b, &s->ioas), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t iova = r[i].iova;

		cr_assert_eq(backend_ioas_map(b, s->ioas,
					      IOMMU_IOAS_MAP_FIXED_IOVA |
					      IOMMU_IOAS_MAP_READABLE |
					      IOMMU_IOAS_MAP_WRITEABLE,
					      (void *)(uintptr_t)(1ULL << 40),
					      r[i].length, &iova), 0);
	}
	cr_assert_eq(backend_hwpt_alloc(b, s->dev, s->ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&s->hwpt), 0);
	cr_assert_eq(backend_device_attach(b, s->dev, s->hwpt), 0);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(b, s->hwpt, true), 0);
}

static uint64_t huge_leaves_seen;

/* Dirty @count random pages of the plan's ranges, recording in @expect
 * (laid out like the plan's bitmap) every page of the leaf each write hit,
 * as the sim's page table says. */
static void dirty_random(struct backend *b, const struct dom_setup *s,
			 const struct harvest_domain *d, uint64_t count,
			 uint64_t *expect)
{
	for (uint64_t i = 0; i < count; i++) {
		const struct harvest_range *r = &d->ranges[rng() % d->nranges];
		uint64_t page = rng() % (r->length / PG);
		struct sim_leaf leaf;

		cr_assert_eq(backend_dma_write(b, s->dev, r->iova + page * PG, 8),
			     0);
		cr_assert_eq(sim_hwpt_lookup(b, s->hwpt, r->iova + page * PG,
					     &leaf), 0);
		cr_assert(leaf.dirty);
		huge_leaves_seen += leaf.size > PG;
		for (uint64_t p = (leaf.iova - r->iova) / PG;
		     p < (leaf.iova + leaf.size - r->iova) / PG; p++)
			expect[(r->bit + p) / 64] |= 1ULL << ((r->bit + p) % 64);
	}
}

/* Scribble over everything the engine owns: it must zero before reading. */
static void scribble(struct harvest_domain *d)
{
	for (size_t i = 0; i < d->nbatches; i++)
		memset(d->batches[i].bitmap, 0xa5, d->batches[i].nwords * 8);
}

static void assert_bitmap_eq(const uint64_t *got, const uint64_t *want,
			     uint64_t nwords)
{
	for (uint64_t w = 0; w < nwords; w++)
		cr_assert_eq(got[w], want[w],
			     "word %lu: got %016lx want %016lx",
			     (unsigned long)w, (unsigned long)got[w],
			     (unsigned long)want[w]);
}

Test(harvest_plan, batches_are_page_aligned_slices_within_a_window)
{
	const struct harvest_range r[] = {
		{ .iova = 0x10000, .length = 70ULL << 30 },	/* head + 2 */
		{ .iova = 1ULL << 40, .length = 8 * PG },	/* tiny */
		{ .iova = (1ULL << 40) + (1ULL << 30) + 5 * PG,	/* head only */
		  .length = 20 * PG },
		{ .iova = 1ULL << 41, .length = 1ULL << 30 },
	};
	struct harvest_domain d = { 0 };
	uint64_t prev_end = 0;

	cr_assert_eq(harvest_domain_plan(&d, 7, PG, r, 4, 0), 0);
	cr_assert_eq(d.nranges, 4);
	cr_assert_eq(d.nbatches, 6);
	cr_assert_eq((uintptr_t)d.bitmap % 4096, 0);
	for (size_t i = 0; i < d.nranges; i++) {
		/* page p of IOVA at a bit congruent to p mod 32768; ranges
		 * never share a word */
		cr_assert_eq(d.ranges[i].bit % 32768, (r[i].iova / PG) % 32768);
		cr_assert_geq(d.ranges[i].bit / 64, (prev_end + 63) / 64);
		prev_end = d.ranges[i].bit + r[i].length / PG;
	}
	cr_assert_leq(prev_end, d.nbits);
	for (size_t i = 0; i < d.nbatches; i++) {
		const struct harvest_batch *bt = &d.batches[i];

		cr_assert_leq(bt->length / PG, HARVEST_WINDOW_BITS);
		if (bt->shift) {
			/* a head: below the first 64-page boundary */
			cr_assert_neq(bt->iova % (64 * PG), 0);
			cr_assert_leq(bt->length / PG, 64 - bt->shift);
			cr_assert_eq(bt->nwords, 1);
			continue;
		}
		cr_assert_eq(bt->iova % (64 * PG), 0, "batch %zu", i);
		cr_assert_eq(((uintptr_t)bt->bitmap - (uintptr_t)d.bitmap) % 8,
			     0, "batch %zu", i);
		cr_assert_eq(bt->nwords, (bt->length / PG + 63) / 64);
		/* no read ends inside a 1 GiB leaf unless the range ends */
		cr_assert((bt->iova + bt->length) % (1ULL << 30) == 0 ||
			  i + 1 == d.nbatches || d.batches[i + 1].dom == NULL ||
			  d.batches[i + 1].iova != bt->iova + bt->length,
			  "batch %zu ends mid-leaf", i);
	}
	cr_assert_eq(d.batches[0].iova, 0x10000);
	cr_assert_eq(d.batches[0].length, 0x40000 - 0x10000);
	cr_assert_eq(d.batches[1].iova, 0x40000);
	cr_assert_eq(d.batches[1].length, (64ULL << 30) - 0x40000);
	cr_assert_eq(d.batches[2].iova, 64ULL << 30);
	/* a whole window is page aligned in the bitmap */
	cr_assert_eq(((uintptr_t)d.batches[2].bitmap - (uintptr_t)d.bitmap) %
		     4096, 0);
	harvest_domain_release(&d);
}

Test(harvest_plan, a_range_at_iova_zero_gets_every_batch)
{
	const struct harvest_range r[] = { { .iova = 0, .length = 3ULL << 30 } };
	struct harvest_domain d = { 0 };

	cr_assert_eq(harvest_domain_plan(&d, 1, PG, r, 1, 1ULL << 30), 0);
	cr_assert_eq(d.nbatches, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(d.batches[i].iova, i << 30);
		cr_assert_eq(d.batches[i].length, 1ULL << 30);
	}
	harvest_domain_release(&d);
}

Test(harvest_plan, rejects_bad_input)
{
	struct harvest_domain d = { 0 };
	const struct harvest_range overlap[] = {
		{ .iova = 0, .length = 1ULL << 20 },
		{ .iova = 1ULL << 19, .length = 1ULL << 20 },
	};
	const struct harvest_range unaligned[] = { { .iova = 100, .length = PG } };
	const struct harvest_range empty[] = { { .iova = 0, .length = 0 } };
	const struct harvest_range wrap[] = { { .iova = ~0ULL - PG + 1, .length = 2 * PG } };

	cr_assert_eq(harvest_domain_plan(&d, 1, PG, overlap, 2, 0), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, unaligned, 1, 0), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, empty, 1, 0), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, wrap, 1, 0), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, 3000, overlap, 1, 0), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, overlap, 1, 12345), -EINVAL);
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, overlap, 1, PG * 64), -EINVAL);
	/* below 1 GiB a read could end inside a huge leaf */
	cr_assert_eq(harvest_domain_plan(&d, 1, PG, overlap, 1, 1ULL << 29), -EINVAL);
	cr_assert_null(d.bitmap);
}

Test(harvest_plan, batch_bytes_keeps_workers_busy)
{
	cr_assert_eq(harvest_batch_bytes(1ULL << 40, PG, 2), 64ULL << 30);
	cr_assert_eq(harvest_batch_bytes(16ULL << 30, PG, 2), 2ULL << 30);
	/* never below 1 GiB, the largest leaf */
	cr_assert_eq(harvest_batch_bytes(1ULL << 20, PG, 2), 1ULL << 30);
	cr_assert_eq(harvest_batch_min_bytes(PG), 1ULL << 30);
	cr_assert_eq(harvest_batch_min_bytes(1ULL << 20), (1ULL << 20) * 32768);
}

static int done_count;

static void on_done(void *ctx, struct harvest_domain *dom, int result)
{
	(void)dom;
	cr_assert_eq(result, 0);
	(*(int *)ctx)++;
	done_count++;
}

static void engine_rounds(unsigned int workers, uint64_t backing)
{
	/* unaligned starts: heads, and 2 MiB leaves only past them */
	const struct harvest_range r0[] = {
		{ .iova = (1ULL << 30) + 5 * PG, .length = 3ULL << 30 },
		{ .iova = 8ULL << 30, .length = (2ULL << 30) + 7 * PG },
	};
	const struct harvest_range r1[] = {
		{ .iova = 0, .length = 1ULL << 30 },
	};
	const struct harvest_range r2[] = {
		{ .iova = (64ULL << 30) - (3ULL << 20), .length = 6ULL << 30 },
	};
	const struct harvest_range *rs[] = { r0, r1, r2 };
	const size_t ns[] = { 2, 1, 1 };
	/* workers 0: the engine's async mode, the sim's reader threads */
	struct harvest_engine_config cfg = { .workers = workers,
					     .force_workers = workers > 0 };
	struct backend *b = open_sim(backing, 3);
	struct harvest_engine *e;
	struct harvest_domain d[3] = { 0 };
	struct dom_setup s[3];
	uint64_t *expect[3];
	int ndone = 0;

	rng_seed(workers * 1000 + backing);
	cr_assert_eq(harvest_engine_new(b, &cfg, &e), 0);
	cr_assert_str_eq(harvest_engine_mode(e), workers ? "workers" : "sim");
	cr_assert_eq(harvest_engine_workers(e), workers);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "dev%d", i);
		setup_domain(b, name, rs[i], ns[i], &s[i]);
		/* small batches: many batch boundaries */
		cr_assert_eq(harvest_domain_plan(&d[i], s[i].hwpt, PG, rs[i],
						 ns[i], 1ULL << 30), 0);
		expect[i] = calloc(d[i].nwords, 8);
	}
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++) {
			memset(expect[i], 0, d[i].nwords * 8);
			dirty_random(b, &s[i], &d[i], 500 + round * 300,
				     expect[i]);
		}
		/* pre-fill the slices: the engine must zero them */
		for (int i = 0; i < 3; i++)
			scribble(&d[i]);
		ndone = 0;
		for (int i = 0; i < 3; i++)
			cr_assert_eq(harvest_engine_start(e, &d[i], 0,
							  on_done, &ndone), 0);
		cr_assert_eq(harvest_engine_start(e, &d[0], 0, on_done,
						  &ndone), -EBUSY);
		cr_assert_eq(harvest_engine_wait(e), 3);
		cr_assert_eq(ndone, 3);
		for (int i = 0; i < 3; i++) {
			assert_bitmap_eq(d[i].bitmap, expect[i], d[i].nwords);
			cr_assert_eq(d[i].round, (uint64_t)round + 1);
		}
	}
	/* the clearing reads left nothing behind */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(harvest_engine_start(e, &d[i],
						  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
						  on_done, &ndone), 0);
	cr_assert_eq(harvest_engine_wait(e), 3);
	for (int i = 0; i < 3; i++) {
		for (uint64_t w = 0; w < d[i].nwords; w++)
			cr_assert_eq(d[i].bitmap[w], 0);
		harvest_domain_release(&d[i]);
		free(expect[i]);
	}
	harvest_engine_free(e);
	backend_close(b);
}

Test(harvest_engine, one_worker_three_domains)
{
	engine_rounds(1, PG);
}

Test(harvest_engine, two_workers_three_domains)
{
	engine_rounds(2, PG);
}

Test(harvest_engine, async_three_domains)
{
	engine_rounds(0, PG);
}

Test(harvest_engine, huge_leaves_report_every_covered_page)
{
	huge_leaves_seen = 0;
	engine_rounds(2, 2ULL << 20);
	cr_assert_gt(huge_leaves_seen, 1000);
}

Test(harvest_engine, huge_leaves_report_every_covered_page_async)
{
	huge_leaves_seen = 0;
	engine_rounds(0, 2ULL << 20);
	cr_assert_gt(huge_leaves_seen, 1000);
}

Test(harvest_engine, no_clear_keeps_bits_for_the_next_round)
{
	const struct harvest_range r[] = { { .iova = 0, .length = 1ULL << 30 } };
	struct backend *b = open_sim(PG, 1);
	struct harvest_engine *e;
	struct harvest_domain d = { 0 };
	struct dom_setup s;
	uint64_t *expect;
	int n = 0;

	cr_assert_eq(harvest_engine_new(b, &(struct harvest_engine_config){
					 .force_workers = true }, &e), 0);
	setup_domain(b, "dev0", r, 1, &s);
	cr_assert_eq(harvest_domain_plan(&d, s.hwpt, PG, r, 1, 0), 0);
	expect = calloc(d.nwords, 8);
	rng_seed(9);
	dirty_random(b, &s, &d, 1000, expect);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(harvest_engine_start(e, &d,
				IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
				on_done, &n), 0);
		cr_assert_eq(harvest_engine_wait(e), 1);
		assert_bitmap_eq(d.bitmap, expect, d.nwords);
	}
	cr_assert_eq(harvest_engine_start(e, &d, 0, on_done, &n), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	assert_bitmap_eq(d.bitmap, expect, d.nwords);
	cr_assert_eq(harvest_engine_start(e, &d, 0, on_done, &n), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	memset(expect, 0, d.nwords * 8);
	assert_bitmap_eq(d.bitmap, expect, d.nwords);
	free(expect);
	harvest_domain_release(&d);
	harvest_engine_free(e);
	backend_close(b);
}

Test(harvest_engine, the_sim_reads_asynchronously)
{
	struct backend *b = open_sim(PG, 1);
	struct harvest_engine *e;
	struct backend_caps caps;

	/* no uring commands (no /dev/iommu), but reader threads of its own */
	backend_caps(b, &caps);
	cr_assert_str_eq(caps.dirty_read_async, "sim");
	cr_assert_eq(caps.dirty_read_sqe128, false);
	cr_assert_eq(harvest_engine_new(b, NULL, &e), 0);
	cr_assert_str_eq(harvest_engine_mode(e), "sim");
	cr_assert_eq(harvest_engine_workers(e), 0);
	harvest_engine_free(e);
	cr_assert_eq(harvest_engine_new(b, &(struct harvest_engine_config){
					 .force_workers = true }, &e), 0);
	cr_assert_str_eq(harvest_engine_mode(e), "workers");
	cr_assert_geq(harvest_engine_workers(e), 1);
	harvest_engine_free(e);
	backend_close(b);
}

static void errors_reach_on_done(unsigned int workers)
{
	const struct harvest_range r[] = { { .iova = 0, .length = 1ULL << 30 } };
	struct backend *b = open_sim(PG, 1);
	struct harvest_engine *e;
	struct harvest_domain d = { 0 };

	cr_assert_eq(harvest_engine_new(b, &(struct harvest_engine_config){
					 .workers = workers,
					 .force_workers = workers > 0 }, &e), 0);
	/* HWPT 4242 does not exist */
	cr_assert_eq(harvest_domain_plan(&d, 4242, PG, r, 1, 1ULL << 30), 0);
	cr_assert_eq(harvest_engine_start(e, &d, 0, NULL, NULL), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	cr_assert_eq(d.result, -ENOENT);
	for (size_t i = 0; i < d.nbatches; i++)
		cr_assert_eq(d.batches[i].result, -ENOENT);
	harvest_domain_release(&d);
	harvest_engine_free(e);
	backend_close(b);
}

Test(harvest_engine, errors_reach_on_done)
{
	errors_reach_on_done(2);
}

Test(harvest_engine, errors_reach_on_done_async)
{
	errors_reach_on_done(0);
}

Test(backend, caps_of_each_kind)
{
	struct backend_caps caps;

	cr_assert_eq(backend_kind_caps(BACKEND_IOMMUFD, &caps), 0);
	cr_assert(caps.iommufd && !caps.config_devices && !caps.map_va_base);
	/* whether the kernel has uring commands takes a probe */
	cr_assert_null(caps.dirty_read_async);
	cr_assert(caps.dirty_read_sqe128);
	cr_assert_eq(caps.max_leaf, 1ULL << 30);
	cr_assert_eq(backend_kind_caps(BACKEND_SIM, &caps), 0);
	cr_assert(!caps.iommufd && caps.config_devices && caps.map_va_base);
	cr_assert_str_eq(caps.dirty_read_async, "sim");
	cr_assert_eq(backend_kind_caps((enum backend_kind)7, &caps), -EINVAL);
	cr_assert_str_eq(backend_kind_name(BACKEND_SIM), "sim");
	cr_assert_str_eq(backend_kind_name(BACKEND_IOMMUFD), "iommufd");
}

/* backend_dirty_read_prep() on its own: one CQE per read, on the
 * caller's ring, with the caller's user_data and the read's result. */
Test(backend, the_sims_async_read_completes_on_the_callers_ring)
{
	const struct harvest_range r[] = { { .iova = 0, .length = 1ULL << 30 } };
	struct backend *b = open_sim(2ULL << 20, 1);
	uint64_t nwords = (1ULL << 30) / PG / 64;
	uint64_t *bits = calloc(nwords, 8), *none = calloc(nwords, 8);
	struct backend_dirty_read rd[2];
	struct backend_caps caps;
	struct io_uring ring;
	struct dom_setup s;
	int seen = 0;

	backend_caps(b, &caps);
	cr_assert_eq(caps.max_leaf, 2ULL << 20);
	setup_domain(b, "dev0", r, 1, &s);
	cr_assert_eq(backend_dma_write(b, s.dev, 5 * PG, PG), 0);
	cr_assert_eq(io_uring_queue_init(4, &ring, 0), 0);
	rd[0] = (struct backend_dirty_read){
		.hwpt_id = s.hwpt, .iova = 0, .length = 1ULL << 30,
		.page_size = PG, .bitmap = bits,
	};
	rd[1] = rd[0];
	rd[1].hwpt_id = 4242;
	rd[1].bitmap = none;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(backend_dirty_read_prep(b, io_uring_get_sqe(&ring),
						     ring.ring_fd, &rd[i],
						     100 + i), 0);
	cr_assert_eq(io_uring_submit(&ring), 2);
	while (seen != 3) {
		struct io_uring_cqe *cqe;

		cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
		cr_assert(cqe->user_data == 100 || cqe->user_data == 101);
		cr_assert_eq(cqe->res, cqe->user_data == 100 ? 0 : -ENOENT);
		cr_assert_eq(seen & (1 << (cqe->user_data - 100)), 0);
		seen |= 1 << (cqe->user_data - 100);
		io_uring_cqe_seen(&ring, cqe);
	}
	/* a dirty 2 MiB leaf reports its 512 pages */
	for (uint64_t w = 0; w < nwords; w++)
		cr_assert_eq(bits[w], w < 8 ? ~0ULL : 0, "word %llu",
			     (unsigned long long)w);
	io_uring_queue_exit(&ring);
	free(bits);
	free(none);
	backend_close(b);
}

/*
 * Sources: one plan read from two HWPTs of one IOAS (devices behind two
 * IOMMUs, QEMU's iommufd_cdev_autodomains_get()), every batch reading
 * both into its slice in turn: the round has the union of their bits,
 * heads included, and the next round only what was written since.
 */
static void two_hwpts(unsigned int workers)
{
	const struct harvest_range r[] = {
		{ .iova = 0x5000, .length = 100 * PG },	/* a head, then more */
		{ .iova = 1ULL << 32, .length = 3ULL << 30 },
	};
	struct backend *b = open_sim(PG, 2);
	struct harvest_engine *e;
	struct harvest_domain d = { 0 };
	uint32_t dev[2], ioas, hwpt[2];
	struct harvest_source src[2];
	/* (device, iova) written: one page by both, the rest by one */
	const struct { unsigned int dev; uint64_t iova; } w[] = {
		{ 0, 0x5000 }, { 1, 0x6000 }, { 0, 0x5000 + 99 * PG },
		{ 1, 1ULL << 32 }, { 0, (1ULL << 32) + (2ULL << 30) + PG },
		{ 1, (1ULL << 32) + (2ULL << 30) + PG },
		{ 1, (1ULL << 32) + (3ULL << 30) - PG },
	};
	uint64_t *expect, bit;
	int n = 0;

	cr_assert_eq(harvest_engine_new(b, &(struct harvest_engine_config){
					 .workers = workers,
					 .force_workers = workers > 0 }, &e), 0);
	cr_assert_eq(backend_ioas_alloc(b, &ioas), 0);
	for (size_t i = 0; i < 2; i++) {
		uint64_t iova = r[i].iova;

		cr_assert_eq(backend_ioas_map(b, ioas,
					      IOMMU_IOAS_MAP_FIXED_IOVA |
					      IOMMU_IOAS_MAP_READABLE |
					      IOMMU_IOAS_MAP_WRITEABLE,
					      (void *)(uintptr_t)(1ULL << 40),
					      r[i].length, &iova), 0);
	}
	for (unsigned int i = 0; i < 2; i++) {
		char name[8];

		snprintf(name, sizeof(name), "dev%u", i);
		cr_assert_eq(backend_device_bind(b, name, &dev[i]), 0);
		cr_assert_eq(backend_hwpt_alloc(b, dev[i], ioas,
						IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
						&hwpt[i]), 0);
		cr_assert_eq(backend_device_attach(b, dev[i], hwpt[i]), 0);
		cr_assert_eq(backend_hwpt_set_dirty_tracking(b, hwpt[i], true),
			     0);
		src[i] = (struct harvest_source){ .kind = BACKEND_READ_HWPT,
						  .id = hwpt[i] };
	}
	cr_assert_neq(hwpt[0], hwpt[1]);
	cr_assert_eq(harvest_domain_set_sources(&d, src, 2), 0);
	cr_assert_eq(harvest_domain_plan(&d, 0, PG, r, 2, 1ULL << 30), 0);
	cr_assert_eq(d.nsources, 2);	/* kept by the plan */
	expect = calloc(d.nwords, 8);
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		cr_assert_eq(backend_dma_write(b, dev[w[i].dev], w[i].iova, 8),
			     0);
		cr_assert_eq(harvest_layout_bit(&d, w[i].iova / PG, &bit, NULL),
			     0);
		expect[bit / 64] |= 1ULL << (bit % 64);
	}
	scribble(&d);
	cr_assert_eq(harvest_engine_start(e, &d, 0, on_done, &n), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	cr_assert_eq(d.result, 0);
	for (size_t i = 0; i < d.nranges; i++) {
		uint64_t w0, w1;

		harvest_range_clip(&d, &d.ranges[i], &w0, &w1);
	}
	assert_bitmap_eq(d.bitmap, expect, d.nwords);
	/* cleared by the reads: the next round finds only a new write */
	memset(expect, 0, d.nwords * 8);
	cr_assert_eq(backend_dma_write(b, dev[1], 0x7000, 8), 0);
	cr_assert_eq(harvest_layout_bit(&d, 0x7000 / PG, &bit, NULL), 0);
	expect[bit / 64] |= 1ULL << (bit % 64);
	cr_assert_eq(harvest_engine_start(e, &d, 0, on_done, &n), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	assert_bitmap_eq(d.bitmap, expect, d.nwords);
	cr_assert_eq(d.sources[0].errors + d.sources[1].errors, 0);
	free(expect);
	harvest_domain_release(&d);
	harvest_engine_free(e);
	backend_close(b);
}

Test(harvest_sources, two_hwpts_ored_workers)
{
	two_hwpts(2);
}

Test(harvest_sources, two_hwpts_ored_async)
{
	two_hwpts(0);
}

/* A source that fails fails its batches and the round, and is counted;
 * with no source at all a round reads nothing and finds nothing. */
static void failing_source(unsigned int workers)
{
	const struct harvest_range r[] = { { .iova = 0, .length = 2ULL << 30 } };
	struct backend *b = open_sim(PG, 1);
	struct harvest_engine *e;
	struct harvest_domain d = { 0 };
	struct harvest_source src[2];
	struct dom_setup s;
	int n = 0;

	cr_assert_eq(harvest_engine_new(b, &(struct harvest_engine_config){
					 .workers = workers,
					 .force_workers = workers > 0 }, &e), 0);
	setup_domain(b, "dev0", r, 1, &s);
	src[0] = (struct harvest_source){ .kind = BACKEND_READ_HWPT,
					  .id = s.hwpt };
	src[1] = (struct harvest_source){ .kind = BACKEND_READ_HWPT,
					  .id = 4242 };
	cr_assert_eq(harvest_domain_set_sources(&d, src, 2), 0);
	cr_assert_eq(harvest_domain_plan(&d, 0, PG, r, 1, 1ULL << 30), 0);
	cr_assert_eq(d.nbatches, 2);
	cr_assert_eq(harvest_engine_start(e, &d, 0, NULL, NULL), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	cr_assert_eq(d.result, -ENOENT);
	cr_assert_eq(d.sources[0].errors, 0);
	cr_assert_eq(d.sources[1].errors, 2);
	/* none */
	cr_assert_eq(backend_dma_write(b, s.dev, PG, 8), 0);
	cr_assert_eq(harvest_domain_set_sources(&d, NULL, 0), 0);
	scribble(&d);
	cr_assert_eq(harvest_engine_start(e, &d, 0, on_done, &n), 0);
	cr_assert_eq(harvest_engine_wait(e), 1);
	cr_assert_eq(d.result, 0);
	for (uint64_t i = 0; i < d.nwords; i++)
		cr_assert_eq(d.bitmap[i], 0);
	harvest_domain_release(&d);
	harvest_engine_free(e);
	backend_close(b);
}

Test(harvest_sources, a_failing_source_fails_the_round_workers)
{
	failing_source(1);
}

Test(harvest_sources, a_failing_source_fails_the_round_async)
{
	failing_source(0);
}

/* A range no source is read for (a read-only mapping) keeps its place in
 * the layout, and no batch reads it. */
Test(harvest_plan, unread_ranges_are_laid_out_and_never_read)
{
	const struct harvest_range r[] = {
		{ .iova = 0, .length = 2ULL << 30 },
		{ .iova = 4ULL << 30, .length = 1ULL << 30,
		  .flags = HARVEST_RANGE_UNREAD },
		{ .iova = 8ULL << 30, .length = 1ULL << 30 },
	};
	struct harvest_domain d = { 0 };
	uint64_t bit;

	cr_assert_eq(harvest_domain_plan(&d, 1, PG, r, 3, 1ULL << 30), 0);
	cr_assert_eq(d.nbatches, 3);
	for (size_t i = 0; i < d.nbatches; i++)
		cr_assert(d.batches[i].iova + d.batches[i].length <= 4ULL << 30 ||
			  d.batches[i].iova >= 8ULL << 30);
	cr_assert_eq(d.ranges[1].flags, HARVEST_RANGE_UNREAD);
	cr_assert_eq(harvest_layout_bit(&d, (4ULL << 30) / PG, &bit, NULL), 0);
	harvest_domain_release(&d);
}
