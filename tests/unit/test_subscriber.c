// SPDX-License-Identifier: MIT
/*
 * Subscriber sets against the sim's oracle: rounds fold into every
 * subscriber; a subscriber loses bits only by acknowledging them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_rng.h"
#include "daemon/harvest/harvest.h"
#include "daemon/subscriber/subscriber.h"
#include "kernel/backend.h"
#include "kernel/dma_load.h"
#include "protocol/chunk.h"

#define PG 4096ULL
#define NSUB 3

struct world {
	struct backend *b;
	struct harvest_engine *e;
	struct harvest_domain d;
	struct subscriber_set subs[NSUB];
	uint32_t dev, ioas, hwpt;
	struct dma_load *load;
	uint64_t iova, length;
};

/* Two ranges with a hole between them (the plan skips it). */
static const struct harvest_range ranges[] = {
	{ .iova = (1ULL << 30) + 3 * PG, .length = 256ULL << 20 },
	{ .iova = 4ULL << 30, .length = (1536ULL << 20) + 12 * PG },
};

static void world_up(struct world *w, unsigned int writers)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = { .n_devices = 1,
			 .devices = { { .name = "d", .dirty_tracking = true } } },
	};

	memset(w, 0, sizeof(*w));
	cr_assert_eq(backend_open(&cfg, &w->b), 0);
	cr_assert_eq(backend_device_bind(w->b, "d", &w->dev), 0);
	cr_assert_eq(backend_ioas_alloc(w->b, &w->ioas), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t iova = ranges[i].iova;

		cr_assert_eq(backend_ioas_map(w->b, w->ioas,
				IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				IOMMU_IOAS_MAP_WRITEABLE,
				(void *)(uintptr_t)(1ULL << 40), ranges[i].length,
				&iova), 0);
	}
	cr_assert_eq(backend_hwpt_alloc(w->b, w->dev, w->ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &w->hwpt), 0);
	cr_assert_eq(backend_device_attach(w->b, w->dev, w->hwpt), 0);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(w->b, w->hwpt, true), 0);
	cr_assert_eq(harvest_engine_new(w->b, &(struct harvest_engine_config){
		.workers = 2, .force_workers = true }, &w->e), 0);
	/* small batches: reads on both workers at once */
	cr_assert_eq(harvest_domain_plan(&w->d, w->hwpt, PG, ranges, 2,
					 1ULL << 30), 0);
	for (int i = 0; i < NSUB; i++)
		cr_assert_eq(subscriber_set_init(&w->subs[i], &w->d), 0);
	/* the load covers both ranges and the hole: writes into the hole
	 * fault and are not recorded */
	w->iova = ranges[0].iova;
	w->length = ranges[1].iova + ranges[1].length - ranges[0].iova;
	cr_assert_eq(dma_load_start(w->b, &(struct dma_load_config){
		.dev_id = w->dev, .iova = w->iova, .length = w->length,
		.pattern = DMA_PATTERN_CLUSTERED, .threads = writers,
		.seed = 5, .cluster_pages = 37, .pages_per_sec = 0,
	}, &w->load), 0);
}

static void world_down(struct world *w)
{
	dma_load_stop(w->load);
	for (int i = 0; i < NSUB; i++)
		subscriber_set_release(&w->subs[i]);
	harvest_domain_release(&w->d);
	harvest_engine_free(w->e);
	backend_close(w->b);
}

/* One round, then its bits folded into every subscriber, as dirtyd does
 * (domain_round.c). */
static void round_(struct world *w)
{
	cr_assert_eq(harvest_engine_start(w->e, &w->d, 0, NULL, NULL), 0);
	cr_assert_eq(harvest_engine_wait(w->e), 1);
	cr_assert_eq(w->d.result, 0);
	for (int i = 0; i < NSUB; i++)
		subscriber_set_fold(&w->subs[i], 0, w->d.bitmap, w->d.nwords);
}

/* Page bitmaps over the load's range (bit k = w->iova + k * PG). */
struct pages {
	uint64_t *bits;
	uint64_t n;
	struct world *w;
};

static int pages_add(void *ctx, uint64_t first, uint64_t count)
{
	struct pages *p = ctx;

	for (uint64_t pg = first; pg < first + count; pg++) {
		uint64_t k = pg - p->w->iova / PG;

		cr_assert_lt(k, p->n);
		p->bits[k / 64] |= 1ULL << (k % 64);
	}
	return 0;
}

static void gen_pages(struct world *w, const struct subscriber_gen *g,
		      uint64_t *bits, uint64_t n)
{
	struct pages p = { .bits = bits, .n = n, .w = w };

	for (size_t off = 0; off < g->len;) {
		int r = chunk_decode(g->chunks + off, g->len - off, pages_add, &p);

		cr_assert_gt(r, 0);
		off += r;
	}
}

/* An acknowledged generation taken in round @taken settles the pages it
 * holds that were last written in that round or before. */
static void settle(uint64_t *owed, const uint64_t *gen_pages, uint64_t nw,
		   const int *last_write, int taken)
{
	for (uint64_t k = 0; k < nw; k++)
		for (uint64_t b = gen_pages[k]; b; b &= b - 1) {
			uint64_t pg = k * 64 + __builtin_ctzll(b);

			if (last_write[pg] <= taken)
				owed[k] &= ~(1ULL << (pg % 64));
		}
}

/*
 * Deterministic: writes between rounds, random subscriber behaviour
 * (take and ack, take and lose the connection, do nothing, ack out of
 * order), and an exact account of what each subscriber is owed.
 */
Test(subscriber, owes_exactly_what_was_written_until_acknowledged)
{
	struct world w;
	uint64_t n, nw;
	uint64_t *owed[NSUB], *written, *ever, *gp;
	uint64_t gen = 1;	/* generation g is taken in round g - 1 */
	int *last_write;

	world_up(&w, 0);
	n = w.length / PG;
	nw = (n + 63) / 64;
	written = calloc(nw, 8);
	ever = calloc(nw, 8);
	last_write = calloc(n, sizeof(*last_write));
	gp = calloc(nw, 8);
	for (int i = 0; i < NSUB; i++)
		owed[i] = calloc(nw, 8);
	rng_seed(11);

	for (int round = 0; round < 60; round++) {
		uint64_t oracle_pages;

		/* some DMA: through the load so the oracle records it */
		memset(written, 0, nw * 8);
		for (int k = 0; k < 200; k++) {
			const struct harvest_range *r = &ranges[rng() % 2];
			uint64_t pages = r->length / PG;
			uint64_t pg = rng() % pages, len = 1 + rng() % 40;

			if (pg + len > pages)
				len = pages - pg;
			cr_assert_eq(dma_load_write(w.load, r->iova + pg * PG,
						    len * PG), 0);
		}
		cr_assert_eq(dma_load_oracle_take(w.load, w.iova, w.length, PG,
						  written), 0);
		oracle_pages = 0;
		for (uint64_t k = 0; k < nw; k++) {
			oracle_pages += __builtin_popcountll(written[k]);
			ever[k] |= written[k];
			for (uint64_t b = written[k]; b; b &= b - 1)
				last_write[k * 64 + __builtin_ctzll(b)] = round;
			for (int i = 0; i < NSUB; i++)
				owed[i][k] |= written[k];
		}
		cr_assert_gt(oracle_pages, 0);
		round_(&w);

		for (int i = 0; i < NSUB; i++) {
			struct subscriber_gen *g;
			unsigned int act = rng() % 5;

			if (act == 0)
				continue;	/* a slow client */
			cr_assert_eq(subscriber_set_take(&w.subs[i], gen, &g), 0);
			memset(gp, 0, nw * 8);
			gen_pages(&w, g, gp, n);
			/* never reports a page nobody wrote (it may repeat
			 * one: a generation left unacknowledged comes back) */
			for (uint64_t k = 0; k < nw; k++)
				cr_assert_eq(gp[k] & ~ever[k], 0,
					     "sub %d word %lu spurious", i,
					     (unsigned long)k);
			if (act == 4) {
				/* the stream failed (encoding, a limit, a
				 * send): never in flight, every page back */
				uint64_t before = subscriber_set_pending_pages(
					&w.subs[i]);

				subscriber_set_giveback(&w.subs[i], g);
				cr_assert_geq(subscriber_set_pending_pages(
					&w.subs[i]), before);
				cr_assert_eq(subscriber_set_ack(&w.subs[i], gen),
					     -ENOENT);
				continue;
			}
			/* sent whole */
			subscriber_set_delivered(&w.subs[i], g);
			if (act == 1) {
				cr_assert_eq(subscriber_set_ack(&w.subs[i], gen), 0);
				settle(owed[i], gp, nw, last_write, round);
			} else if (act == 2) {
				/* connection lost: everything unacked returns */
				cr_assert_eq(subscriber_set_requeue(&w.subs[i],
								    UINT64_MAX), 0);
			}
			/* act 3: left in flight, acked (or not) later */
		}
		/* out-of-order acks of generations left in flight */
		for (int i = 0; i < NSUB; i++) {
			struct subscriber_gen *g = w.subs[i].inflight;

			if (g && g->next && rng() % 2) {
				uint64_t late = g->next->gen;

				memset(gp, 0, nw * 8);
				gen_pages(&w, g->next, gp, n);
				cr_assert_eq(subscriber_set_ack(&w.subs[i], late), 0);
				settle(owed[i], gp, nw, last_write, (int)late - 1);
			}
		}
		gen++;
	}
	/* drain: requeue what is in flight, take everything, ack it */
	for (int i = 0; i < NSUB; i++) {
		struct subscriber_gen *g;

		cr_assert_eq(subscriber_set_requeue(&w.subs[i], UINT64_MAX), 0);
		cr_assert_eq(subscriber_set_take(&w.subs[i], gen, &g), 0);
		subscriber_set_delivered(&w.subs[i], g);
		memset(gp, 0, nw * 8);
		gen_pages(&w, g, gp, n);
		for (uint64_t k = 0; k < nw; k++)
			cr_assert_eq(owed[i][k] & ~gp[k], 0,
				     "sub %d lost pages in word %lu: %016lx", i,
				     (unsigned long)k,
				     (unsigned long)(owed[i][k] & ~gp[k]));
		cr_assert_eq(subscriber_set_ack(&w.subs[i], gen), 0);
		cr_assert_eq(subscriber_set_ack(&w.subs[i], gen), -ENOENT);
		cr_assert_eq(subscriber_set_pending_pages(&w.subs[i]), 0);
	}
	for (int i = 0; i < NSUB; i++)
		free(owed[i]);
	free(written);
	free(ever);
	free(last_write);
	free(gp);
	world_down(&w);
}

/*
 * Concurrent: two writer threads and two harvest workers reading (each
 * round folded after it, as dirtyd does), takes and acks between rounds.
 * After the writers pause, one more round and a final
 * take: every page the oracle saw was delivered at least once after the
 * start, and pending memory stayed one bitmap.
 */
Test(subscriber, concurrent_writers_and_folds_lose_nothing)
{
	struct world w;
	uint64_t n, nw, *seen, *delivered, *gp, gen = 1;
	size_t max_mem = 0;

	world_up(&w, 2);
	n = w.length / PG;
	nw = (n + 63) / 64;
	seen = calloc(nw, 8);
	delivered = calloc(nw, 8);
	gp = calloc(nw, 8);
	rng_seed(3);
	for (int round = 0; round < 40; round++) {
		cr_assert_eq(dma_load_oracle_take(w.load, w.iova, w.length, PG,
						  seen), 0);
		round_(&w);
		for (int i = 0; i < 1; i++) {
			struct subscriber_gen *g;

			cr_assert_eq(subscriber_set_take(&w.subs[i], gen, &g), 0);
			unsigned int act = rng() % 4;

			if (act >= 2) {
				/* only what is acknowledged was delivered */
				subscriber_set_delivered(&w.subs[i], g);
				gen_pages(&w, g, delivered, n);
				cr_assert_eq(subscriber_set_ack(&w.subs[i], gen), 0);
			} else if (act == 1) {
				cr_assert_eq(subscriber_set_requeue(&w.subs[i], gen), 0);
			} else {
				/* the stream failed before its end */
				subscriber_set_giveback(&w.subs[i], g);
			}
			if (subscriber_set_memory(&w.subs[i]) > max_mem)
				max_mem = subscriber_set_memory(&w.subs[i]);
		}
		gen++;
	}
	cr_assert_eq(dma_load_pause(w.load), 0);
	cr_assert_eq(dma_load_oracle_take(w.load, w.iova, w.length, PG, seen), 0);
	round_(&w);
	for (int i = 0; i < NSUB; i++) {
		struct subscriber_gen *g;

		memset(gp, 0, nw * 8);
		if (i == 0)
			memcpy(gp, delivered, nw * 8);
		cr_assert_eq(subscriber_set_take(&w.subs[i], gen, &g), 0);
		gen_pages(&w, g, gp, n);
		/* subscribers 1 and 2 never read: they hold every page */
		for (uint64_t k = 0; k < nw; k++)
			cr_assert_eq(seen[k] & ~gp[k], 0,
				     "sub %d lost pages in word %lu", i,
				     (unsigned long)k);
	}
	/* bounded by the domain: a bitmap plus at most one generation */
	cr_assert_leq(max_mem, w.d.nwords * 8 * 2 + 4096 * 4);
	free(seen);
	free(delivered);
	free(gp);
	world_down(&w);
}

Test(subscriber, mark_all_covers_every_mapped_page_and_nothing_else)
{
	struct world w;
	struct subscriber_gen *g;
	uint64_t expect = 0;

	world_up(&w, 0);
	subscriber_set_mark_all(&w.subs[0]);
	for (int i = 0; i < 2; i++)
		expect += ranges[i].length / PG;
	cr_assert_eq(subscriber_set_pending_pages(&w.subs[0]), expect);
	cr_assert_eq(subscriber_set_take(&w.subs[0], 1, &g), 0);
	cr_assert_eq(g->pages, expect);
	/* all-dirty encodes as one run per chunk: tiny */
	cr_assert_lt(g->len, expect / 8 / 100);
	cr_assert_eq(subscriber_set_take(&w.subs[0], 1, &g), -EEXIST);
	cr_assert_eq(subscriber_set_ack(&w.subs[0], 2), -ENOENT);
	cr_assert_eq(subscriber_set_requeue(&w.subs[0], 2), -ENOENT);
	world_down(&w);
}

static int collect_pages(void *ctx, uint64_t first, uint64_t count)
{
	uint64_t *n = ctx;

	(void)first;
	*n += count;
	return 0;
}

Test(subscriber, relayout_keeps_pages_and_refuses_to_drop_them)
{
	const struct harvest_range a[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
		{ .iova = 2ULL << 30, .length = 64 * PG },
	};
	/* range 1 unmapped but retired; a new range 2 mapped */
	const struct harvest_range b[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
		{ .iova = 2ULL << 30, .length = 64 * PG,
		  .flags = HARVEST_RANGE_RETIRED },
		{ .iova = 3ULL << 30, .length = 32 * PG },
	};
	/* range 1 dropped */
	const struct harvest_range c[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
		{ .iova = 3ULL << 30, .length = 32 * PG },
	};
	struct harvest_domain da = { 0 }, db = { 0 }, dc = { 0 };
	struct subscriber_set s;
	struct subscriber_gen *g;
	uint64_t src[2] = { 0x5, 0 }, pages = 0;

	cr_assert_eq(harvest_domain_plan(&da, 1, PG, a, 2, 0), 0);
	cr_assert_eq(harvest_domain_plan(&db, 1, PG, b, 3, 0), 0);
	cr_assert_eq(harvest_domain_plan(&dc, 1, PG, c, 2, 0), 0);
	/* a retired range is laid out but never read */
	cr_assert_eq(db.nbatches, 2);
	cr_assert_eq(subscriber_set_init(&s, &da), 0);
	subscriber_set_fold(&s, da.ranges[0].bit / 64, src, 1);	/* 2 pages */
	subscriber_set_fold(&s, da.ranges[1].bit / 64, src, 1);	/* 2 pages */
	cr_assert(subscriber_set_holds(&s, 2ULL << 30, 64 * PG));
	cr_assert_not(subscriber_set_holds(&s, (2ULL << 30) + 3 * PG, 61 * PG));
	cr_assert_eq(subscriber_set_relayout(&s, &dc), -ERANGE);
	cr_assert_eq(s.layout, &da);
	cr_assert_eq(subscriber_set_relayout(&s, &db), 0);
	cr_assert_eq(subscriber_set_pending_pages(&s), 4);
	/* once the retired range's pages are delivered it can go */
	cr_assert_eq(subscriber_set_take(&s, 1, &g), 0);
	for (size_t off = 0; off < g->len;)
		off += chunk_decode(g->chunks + off, g->len - off,
				    collect_pages, &pages);
	cr_assert_eq(pages, 4);
	subscriber_set_delivered(&s, g);
	cr_assert(subscriber_set_holds(&s, 2ULL << 30, 64 * PG));
	cr_assert_eq(subscriber_set_ack(&s, 1), 0);
	cr_assert_not(subscriber_set_holds(&s, 2ULL << 30, 64 * PG));
	cr_assert_eq(subscriber_set_relayout(&s, &dc), 0);
	subscriber_set_release(&s);
	harvest_domain_release(&da);
	harvest_domain_release(&db);
	harvest_domain_release(&dc);
}

/*
 * A generation sent before its range was split (unmapped, kept retired,
 * then partly mapped again) goes back into pending whole: its runs now
 * cross range boundaries (fault_inject found this: seed 1, round 102).
 */
Test(subscriber, requeue_after_a_split_keeps_every_page)
{
	const struct harvest_range a[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
	};
	const struct harvest_range b[] = {
		{ .iova = 1ULL << 30, .length = 16 * PG,
		  .flags = HARVEST_RANGE_RETIRED },
		{ .iova = (1ULL << 30) + 16 * PG, .length = 8 * PG },
		{ .iova = (1ULL << 30) + 24 * PG, .length = 40 * PG,
		  .flags = HARVEST_RANGE_RETIRED },
	};
	struct harvest_domain da = { 0 }, db = { 0 };
	struct subscriber_set s;
	struct subscriber_gen *g;
	uint64_t all = UINT64_MAX, pages = 0;

	cr_assert_eq(harvest_domain_plan(&da, 1, PG, a, 1, 0), 0);
	cr_assert_eq(harvest_domain_plan(&db, 1, PG, b, 3, 0), 0);
	cr_assert_eq(subscriber_set_init(&s, &da), 0);
	subscriber_set_fold(&s, da.ranges[0].bit / 64, &all, 1);
	cr_assert_eq(subscriber_set_pending_pages(&s), 64);
	cr_assert_eq(subscriber_set_take(&s, 1, &g), 0);
	cr_assert_eq(subscriber_set_pending_pages(&s), 0);
	cr_assert_eq(subscriber_set_relayout(&s, &db), 0);
	cr_assert_eq(subscriber_set_requeue(&s, 1), 0);
	cr_assert_eq(subscriber_set_pending_pages(&s), 64);
	for (size_t i = 0; i < 3; i++)
		cr_assert(subscriber_set_holds(&s, b[i].iova, b[i].length),
			  "range %zu", i);
	cr_assert_eq(subscriber_set_take(&s, 2, &g), 0);
	for (size_t off = 0; off < g->len;)
		off += chunk_decode(g->chunks + off, g->len - off,
				    collect_pages, &pages);
	cr_assert_eq(pages, 64);
	subscriber_set_release(&s);
	harvest_domain_release(&da);
	harvest_domain_release(&db);
}

/* A page sink: every page of a generation, in order. */
struct page_list {
	uint64_t first[64], count[64];
	size_t n;
};

static int list_run(void *ctx, uint64_t first, uint64_t count)
{
	struct page_list *l = ctx;

	cr_assert_lt(l->n, 64);
	l->first[l->n] = first;
	l->count[l->n++] = count;
	return 0;
}

static void gen_runs(const struct subscriber_gen *g, struct page_list *l)
{
	l->n = 0;
	for (size_t off = 0; off < g->len;)
		off += chunk_decode(g->chunks + off, g->len - off, list_run,
				    l);
}

/*
 * A frozen set (a change of its domain runs off the event loop): the loop
 * only reads it; generations given back wait for the thaw and land in the
 * layout the set has then; a generation freed meanwhile outlives the
 * snapshot that reads it; take and ack wait.
 */
Test(subscriber, frozen_set_defers_what_the_loop_would_write)
{
	const struct harvest_range a[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
	};
	/* a new range below moves the old one's bits */
	const struct harvest_range b[] = {
		{ .iova = 0, .length = 32768 * PG },
		{ .iova = 1ULL << 30, .length = 64 * PG },
	};
	struct harvest_domain da = { 0 }, db = { 0 };
	struct subscriber_set s, moved;
	struct subscriber_snap snap;
	struct subscriber_gen *g1, *g2, *g;
	struct page_list l;
	uint64_t bits = 0x0f0, more = 0x100000;

	cr_assert_eq(harvest_domain_plan(&da, 1, PG, a, 1, 0), 0);
	cr_assert_eq(harvest_domain_plan(&db, 1, PG, b, 2, 0), 0);
	cr_assert_neq(da.ranges[0].bit, db.ranges[1].bit);
	cr_assert_eq(subscriber_set_init(&s, &da), 0);
	/* g1: pages 4..7 of the range, in flight; g2: page 20, being sent */
	subscriber_set_fold(&s, da.ranges[0].bit / 64, &bits, 1);
	cr_assert_eq(subscriber_set_take(&s, 1, &g1), 0);
	subscriber_set_delivered(&s, g1);
	subscriber_set_fold(&s, da.ranges[0].bit / 64, &more, 1);
	cr_assert_eq(subscriber_set_take(&s, 2, &g2), 0);
	cr_assert_eq(subscriber_set_pending_pages(&s), 0);

	cr_assert_eq(subscriber_set_freeze(&s, &snap), 0);
	cr_assert_eq(snap.ngens, 2);
	/* held: by the generations, though nothing is pending */
	cr_assert(subscriber_snap_holds(&snap, (1ULL << 30) + 20 * PG, PG));
	cr_assert_not(subscriber_snap_holds(&snap, (1ULL << 30) + 30 * PG,
					    PG));
	/* the loop: the stream of g2 fails, the session parks (g1 back),
	 * a round fails (mark_all): nothing is written yet */
	subscriber_set_giveback(&s, g2);
	cr_assert_eq(subscriber_set_requeue(&s, UINT64_MAX), 0);
	cr_assert_eq(subscriber_set_pending_pages(&s), 0);
	cr_assert_eq(subscriber_set_take(&s, 3, &g), -EBUSY);
	cr_assert_eq(subscriber_set_ack(&s, 1), -EBUSY);
	/* the worker: the set in the new layout, the new range marked */
	cr_assert_eq(subscriber_snap_move(&snap, &db, &moved), 0);
	subscriber_set_mark_range(&moved, 0, 32768 * PG);
	subscriber_set_thaw(&s, &snap, &moved, NULL);
	cr_assert_eq(s.layout, &db);
	cr_assert_not(s.frozen);
	/* every page given back is pending again, at its new place */
	cr_assert_eq(subscriber_set_pending_pages(&s), 32768 + 5);
	cr_assert_eq(subscriber_set_take(&s, 4, &g), 0);
	gen_runs(g, &l);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.first[0], 0);
	cr_assert_eq(l.count[0], 32768);
	cr_assert_eq(l.first[1], (1ULL << 30) / PG + 4);
	cr_assert_eq(l.count[1], 4);
	cr_assert_eq(l.first[2], (1ULL << 30) / PG + 20);
	cr_assert_eq(l.count[2], 1);
	subscriber_set_release(&s);
	harvest_domain_release(&da);
	harvest_domain_release(&db);
}

/* A generation detached and freed while a snapshot reads it is freed at
 * the thaw, not before (ASan would see a use after free). */
Test(subscriber, pinned_generation_outlives_its_free)
{
	const struct harvest_range a[] = {
		{ .iova = 1ULL << 30, .length = 64 * PG },
	};
	struct harvest_domain da = { 0 };
	struct subscriber_set s;
	struct subscriber_snap snap;
	struct subscriber_gen *g;
	uint64_t bits = 0x3;

	cr_assert_eq(harvest_domain_plan(&da, 1, PG, a, 1, 0), 0);
	cr_assert_eq(subscriber_set_init(&s, &da), 0);
	subscriber_set_fold(&s, da.ranges[0].bit / 64, &bits, 1);
	cr_assert_eq(subscriber_set_take(&s, 1, &g), 0);
	cr_assert_eq(subscriber_set_freeze(&s, &snap), 0);
	subscriber_set_mark_all(&s);	/* waits for the thaw */
	cr_assert_eq(subscriber_set_pending_pages(&s), 0);
	/* the subscription goes while its stream sends g */
	subscriber_set_detach(&s, g);
	subscriber_gen_free(g);
	cr_assert(subscriber_snap_holds(&snap, 1ULL << 30, PG));
	subscriber_set_thaw(&s, &snap, NULL, &da);
	cr_assert_eq(subscriber_set_pending_pages(&s), 64);
	subscriber_set_release(&s);
	harvest_domain_release(&da);
}
