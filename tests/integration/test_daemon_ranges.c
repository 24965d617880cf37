// SPDX-License-Identifier: MIT
/*
 * Dirty ranges end to end through the real dirtyd: the pages a client is
 * sent are exactly the pages the test made the device write (the oracle is
 * the test's own record of its DMA_WRITEs), with 4 KiB leaves and with huge
 * leaves, across acknowledgements, resends, unmaps, multi-packet streams,
 * clients with and without CHUNK_RAW, and periodic rounds with events.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "../unit/test_rng.h"

#define PG 4096ULL
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define LEAF (2 * MIB)

static struct harness dd;

static void start(void)
{
	itest_start(&dd, "[sim]\nbacking_page_size = 2m\n"
		    "devices = sim0:dirty, sim1:dirty, sim2:dirty, "
		    "sim3:dirty\n");
}

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

static void client(struct itest_client *c, uint64_t features)
{
	cr_assert_eq(itest_connect(&dd, c), 0);
	itest_hello(c, features, 0, NULL);
}

/* A tracking domain of @device with @n mappings; tracking on. */
static uint32_t domain(struct itest_client *c, const char *device,
		       uint32_t flags, const uint64_t (*maps)[2], size_t n)
{
	struct proto_create_domain_reply a;

	cr_assert_eq(itest_create(c, device, PROTO_CREATE_TRACKING | flags,
				  &a), 0, "%s", c->text);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(itest_map(c, PROTO_MAP, a.domain_id, maps[i][0],
				       maps[i][1]), 0, "%s", c->text);
	cr_assert_eq(itest_domain_op(c, PROTO_TRACK_START, a.domain_id), 0);
	return a.domain_id;
}

/* The test's record of what the device wrote, in 4 KiB pages. */
struct record {
	uint64_t *pages;
	size_t n, cap;
};

static void record_add(struct record *w, uint64_t page)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 1024;
		w->pages = realloc(w->pages, w->cap * sizeof(*w->pages));
		cr_assert_not_null(w->pages);
	}
	w->pages[w->n++] = page;
}

/* DMA_WRITE [iova, iova + pages * 4K) and record it. */
static void write_pages(struct itest_client *c, uint32_t dom, uint64_t iova,
			uint64_t pages, struct record *w)
{
	cr_assert_eq(itest_map(c, PROTO_DMA_WRITE, dom, iova, pages * PG), 0,
		     "DMA_WRITE 0x%llx: %s", (unsigned long long)iova, c->text);
	for (uint64_t i = 0; i < pages; i++)
		record_add(w, iova / PG + i);
}

/* A random pattern over the mappings: single pages and short bursts. */
static void write_random(struct itest_client *c, uint32_t dom,
			 const uint64_t (*maps)[2], size_t n, unsigned int k,
			 struct record *w)
{
	for (unsigned int i = 0; i < k; i++) {
		const uint64_t *m = maps[rng() % n];
		uint64_t npages = m[1] / PG;
		uint64_t len = rng() % 4 ? 1 : 1 + rng() % 40;
		uint64_t at = rng() % npages;

		if (at + len > npages)
			len = npages - at;
		write_pages(c, dom, m[0] + at * PG, len, w);
	}
}

/* Expected report: the leaf of each written page, within its mapping. */
static void expect(struct itest_runs *want, struct record *w,
		   uint64_t max_leaf, const uint64_t (*maps)[2], size_t n)
{
	struct record all = { 0 };

	itest_runs_free(want);
	for (size_t i = 0; i < w->n; i++) {
		uint64_t iova = w->pages[i] * PG;
		uint64_t leaf = iova & ~(max_leaf - 1);
		bool whole = false;

		for (size_t k = 0; k < n; k++)
			whole |= leaf >= maps[k][0] &&
				 leaf + max_leaf <= maps[k][0] + maps[k][1];
		if (!whole) {
			record_add(&all, w->pages[i]);
			continue;
		}
		for (uint64_t p = 0; p < max_leaf / PG; p++)
			record_add(&all, leaf / PG + p);
	}
	itest_runs_from_pages(want, all.pages, all.n);
	free(all.pages);
	w->n = 0;
}

static void assert_empty(struct itest_client *c, uint32_t dom)
{
	struct itest_runs got = { 0 };
	struct itest_ranges info;

	cr_assert_eq(itest_sync(c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(c, dom, 0, &got, &info), 0);
	cr_assert_eq(info.total_pages, 0);
	cr_assert_eq(info.packets, 1);
	cr_assert_eq(info.chunks, 0);
	cr_assert_eq(itest_ack(c, dom, info.generation), 0);
	itest_runs_free(&got);
}

/* 4 KiB leaves: what was written, exactly; ACK empties; a repeat or a
 * RESEND without ACK sends it again. */
Test(ranges, exact_pages_ack_resend, .fini = stop)
{
	static const uint64_t maps[][2] = {
		{ GIB, 64 * MIB },
		{ 2 * GIB + 3 * PG, 8 * MIB + 5 * PG },
	};
	struct itest_runs got = { 0 }, want = { 0 }, s = { 0 }, st = { 0 };
	struct record w = { 0 };
	struct proto_subscribe_reply sr;
	struct itest_ranges info, info2;
	struct itest_client c;
	uint64_t gen;
	uint32_t dom;

	start();
	rng_seed(41);
	client(&c, PROTO_FEATURES_ALL);
	dom = domain(&c, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 2);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, &sr),
		     0);
	cr_assert_eq(sr.page_size, PG);
	cr_assert_eq(sr.max_leaf, PG);

	for (int round = 0; round < 3; round++) {
		write_random(&c, dom, maps, 2, 300, &w);
		expect(&want, &w, PG, maps, 2);
		cr_assert_eq(itest_sync(&c, dom, &gen), 0);
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		cr_assert_eq(info.generation, gen);
		itest_runs_assert_eq(&got, &want, "a round of random writes");
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
		cr_assert_eq(itest_ack(&c, dom, info.generation), -ENOENT);
		assert_empty(&c, dom);
	}

	/* S, sent and not acknowledged: a repeat sends S again */
	write_random(&c, dom, maps, 2, 100, &w);
	expect(&s, &w, PG, maps, 2);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &s, "S");
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info2), 0);
	itest_runs_assert_eq(&got, &s, "S, repeated");
	cr_assert_eq(info2.generation, info.generation);
	/* T after a round: the next generation holds T only */
	write_random(&c, dom, maps, 2, 100, &w);
	{
		struct record both = { 0 };

		for (size_t i = 0; i < w.n; i++)
			record_add(&both, w.pages[i]);
		for (size_t i = 0; i < s.n; i++)
			for (uint64_t p = 0; p < s.count[i]; p++)
				record_add(&both, s.first[i] + p);
		expect(&want, &w, PG, maps, 2);
		expect(&st, &both, PG, maps, 2);
		free(both.pages);
	}
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info2), 0);
	cr_assert_gt(info2.generation, info.generation);
	itest_runs_assert_eq(&got, &want, "T");
	/* RESEND: every unacknowledged generation again, as one */
	cr_assert_eq(itest_get_ranges(&c, dom, PROTO_RANGES_RESEND, &got,
				      &info2), 0);
	itest_runs_assert_eq(&got, &st, "S and T, resent");
	cr_assert_eq(itest_ack(&c, dom, info.generation), -ENOENT);
	cr_assert_eq(itest_ack(&c, dom, info2.generation), 0);
	assert_empty(&c, dom);

	itest_close(&c);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_runs_free(&s);
	itest_runs_free(&st);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* A CLEAN subscription made while tracking runs starts empty: the pages
 * written before it arrived go to the subscribers that were there, not to
 * it; what is written after it, to both. */
Test(ranges, clean_subscription_starts_empty, .fini = stop)
{
	static const uint64_t maps[][2] = { { GIB, 64 * MIB } };
	struct itest_runs got = { 0 }, before = { 0 }, after = { 0 };
	struct itest_runs both = { 0 };
	struct record w = { 0 }, all = { 0 };
	struct itest_ranges info;
	struct itest_client a, b;
	uint32_t dom;

	start();
	rng_seed(77);
	client(&a, PROTO_FEATURES_ALL);
	client(&b, PROTO_FEATURES_ALL);
	dom = domain(&a, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 1);
	cr_assert_eq(itest_subscribe(&a, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	/* written before b subscribes, and never harvested before it */
	write_random(&a, dom, maps, 1, 200, &w);
	for (size_t i = 0; i < w.n; i++)
		record_add(&all, w.pages[i]);
	expect(&before, &w, PG, maps, 1);
	cr_assert_eq(itest_subscribe(&b, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	write_random(&a, dom, maps, 1, 200, &w);
	for (size_t i = 0; i < w.n; i++)
		record_add(&all, w.pages[i]);
	expect(&after, &w, PG, maps, 1);
	expect(&both, &all, PG, maps, 1);
	cr_assert_eq(itest_sync(&b, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&b, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &after, "the CLEAN subscriber: only after");
	cr_assert_eq(itest_get_ranges(&a, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &both, "the earlier subscriber: both");
	itest_close(&a);
	itest_close(&b);
	free(w.pages);
	free(all.pages);
	itest_runs_free(&got);
	itest_runs_free(&before);
	itest_runs_free(&after);
	itest_runs_free(&both);
	itest_stop_ok(&dd);
}

/* 2 MiB leaves: a write reports its whole leaf; the tail of a mapping
 * that is not a whole leaf is mapped (and reported) in 4 KiB pages. */
Test(ranges, huge_leaves, .fini = stop)
{
	static const uint64_t maps[][2] = {
		{ 4 * GIB, 16 * MIB + 64 * 1024 },
		{ 6 * GIB + LEAF / 2, 3 * LEAF },
	};
	struct itest_runs got = { 0 }, want = { 0 };
	struct record w = { 0 };
	struct proto_subscribe_reply sr;
	struct itest_ranges info;
	struct itest_client c;
	uint32_t dom;

	start();
	rng_seed(7);
	client(&c, PROTO_FEATURES_ALL);
	dom = domain(&c, "sim1", 0, maps, 2);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, &sr),
		     0);
	cr_assert_eq(sr.page_size, PG);
	cr_assert_eq(sr.max_leaf, LEAF);
	for (int round = 0; round < 3; round++) {
		write_random(&c, dom, maps, 2, 40, &w);
		/* and the last page of the first mapping: a 4 KiB leaf */
		write_pages(&c, dom, maps[0][0] + maps[0][1] - PG, 1, &w);
		expect(&want, &w, LEAF, maps, 2);
		cr_assert_eq(itest_sync(&c, dom, NULL), 0);
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		itest_runs_assert_eq(&got, &want, "huge leaves");
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	}
	assert_empty(&c, dom);
	itest_close(&c);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* UNMAP with tracking on: pages written before it are still delivered. */
Test(ranges, unmap_keeps_written_pages, .fini = stop)
{
	static const uint64_t maps[][2] = {
		{ GIB, 16 * MIB },
		{ 2 * GIB, 16 * MIB },
	};
	struct itest_runs got = { 0 }, want = { 0 };
	struct proto_domain doms[4];
	struct record w = { 0 };
	struct itest_ranges info;
	struct itest_client c, c2;
	uint32_t dom;

	start();
	rng_seed(3);
	client(&c, PROTO_FEATURES_ALL);
	client(&c2, PROTO_FEATURES_ALL);
	dom = domain(&c, "sim2", PROTO_CREATE_NO_HUGE_PAGES, maps, 2);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	cr_assert_eq(itest_subscribe(&c2, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	write_random(&c, dom, maps, 2, 200, &w);
	expect(&want, &w, PG, maps, 2);
	/* no SYNC: the UNMAP's own round collects them */
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, dom, maps[0][0], maps[0][1]),
		     0);
	cr_assert_eq(itest_list_domains(&c, doms, 4), 1);
	cr_assert_eq(doms[0].mapped_bytes, maps[1][1]);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, dom, maps[0][0], PG),
		     -ENOENT);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "pages of an unmapped range");
	cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	/* the other subscriber still has them, through a remap too */
	cr_assert_eq(itest_map(&c, PROTO_MAP, dom, maps[0][0], maps[0][1] / 2),
		     0);
	cr_assert_eq(itest_get_ranges(&c2, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "the second subscriber's");
	cr_assert_eq(itest_ack(&c2, dom, info.generation), 0);
	/* afterwards: only what is written from now on */
	write_random(&c, dom, maps + 1, 1, 50, &w);
	write_pages(&c, dom, maps[0][0], 3, &w);
	expect(&want, &w, PG, maps, 2);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "after the unmap");
	itest_close(&c);
	itest_close(&c2);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* 512 GiB, every page pending: a stream of several packets, RUNS only
 * for a client without PROTO_FEAT_RANGES_RAW. */
Test(ranges, multi_packet_stream, .fini = stop)
{
	static const uint64_t maps[][2] = { { 1ULL << 40, 512 * GIB } };
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	struct itest_client c;
	uint32_t dom;

	start();
	client(&c, PROTO_FEAT_EVENTS);
	dom = domain(&c, "sim3", 0, maps, 1);
	/* not CLEAN: every mapped page starts pending */
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	itest_runs_add(&want, maps[0][0] / PG, maps[0][1] / PG);
	itest_runs_assert_eq(&got, &want, "a whole 512 GiB guest");
	cr_assert_geq(info.packets, 2, "%u packets", info.packets);
	cr_assert_eq(info.chunks, maps[0][1] / PG / 32768);
	cr_assert_eq(info.raw_chunks, 0);
	cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	assert_empty(&c, dom);
	itest_close(&c);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* A stream, once begun, completes: its domain destroyed by another client
 * while a reader that does not read yet holds 2 TiB of ranges. */
Test(ranges, destroy_during_stream, .fini = stop)
{
	static const uint64_t maps[][2] = { { 1ULL << 42, 2048 * GIB } };
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	struct itest_client c, admin;
	struct proto_msg m;
	uint32_t dom;

	start();
	client(&c, 0);
	client(&admin, 0);
	dom = domain(&c, "sim3", 0, maps, 1);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	m = (struct proto_msg){ .type = PROTO_GET_RANGES,
				.get_ranges = { .domain_id = dom } };
	itest_send(&c, &m);
	usleep(100 * 1000);
	cr_assert_eq(itest_domain_op(&admin, PROTO_DESTROY_DOMAIN, dom), 0);
	cr_assert_eq(itest_read_ranges(&c, m.id, dom, &got, &info), 0);
	itest_runs_add(&want, maps[0][0] / PG, maps[0][1] / PG);
	itest_runs_assert_eq(&got, &want, "a stream whose domain went away");
	cr_assert_geq(info.packets, 4, "%u packets", info.packets);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, NULL), -ENOENT);
	itest_close(&c);
	itest_close(&admin);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* Dense dirtying: RAW chunks for a client that takes them, the same pages
 * in RUNS chunks for one that does not. */
Test(ranges, raw_and_runs_clients, .fini = stop)
{
	static const uint64_t maps[][2] = { { GIB, 64 * MIB } };
	struct itest_runs got = { 0 }, want = { 0 };
	struct record w = { 0 };
	struct itest_ranges info;
	struct itest_client raw, runs;
	uint32_t dom;

	start();
	client(&raw, PROTO_FEAT_RANGES_RAW);
	client(&runs, 0);
	dom = domain(&raw, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 1);
	cr_assert_eq(itest_subscribe(&raw, dom, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	cr_assert_eq(itest_subscribe(&runs, dom, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	for (uint64_t p = 0; p < 2048; p += 2)
		write_pages(&raw, dom, GIB + p * PG, 1, &w);
	expect(&want, &w, PG, maps, 1);
	cr_assert_eq(itest_sync(&runs, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&raw, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "RAW client");
	cr_assert_gt(info.raw_chunks, 0);
	cr_assert_eq(itest_get_ranges(&runs, dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "RUNS client");
	cr_assert_eq(info.raw_chunks, 0);
	itest_close(&raw);
	itest_close(&runs);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* The worst case for a RUNS-only client: every other page of a whole
 * span (32 KiB of runs) and more.  It arrives cut into RUNS chunks of at
 * most 16 + 4096 bytes, every page of it, and STATS counts it once. */
Test(ranges, runs_client_gets_dense_spans_cut_within_the_limit, .fini = stop)
{
	static const uint64_t maps[][2] = { { GIB, 192 * MIB } };
	const uint64_t npages = 49152;	/* a span and a half */
	struct itest_runs got = { 0 }, want = { 0 };
	struct record w = { 0 };
	struct itest_ranges info;
	struct itest_client runs;
	struct proto_msg m, r;
	struct proto_stats st;
	uint32_t dom;

	start();
	client(&runs, 0);
	dom = domain(&runs, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 1);
	cr_assert_eq(itest_subscribe(&runs, dom, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	for (uint64_t p = 0; p < npages; p += 2)
		write_pages(&runs, dom, GIB + p * PG, 1, &w);
	expect(&want, &w, PG, maps, 1);
	cr_assert_eq(itest_sync(&runs, dom, NULL), 0);
	m = (struct proto_msg){ .type = PROTO_STATS, .domain_op = { dom } };
	cr_assert_eq(itest_call(&runs, &m, &r), 0);
	proto_stats_at(&r, 0, &st);
	cr_assert_eq(st.pending_pages, npages / 2);
	cr_assert_eq(st.pages_sent, 0);
	cr_assert_eq(itest_get_ranges(&runs, dom, 0, &got, &info), 0, "%s", runs.text);
	itest_runs_assert_eq(&got, &want, "RUNS client, dense spans");
	cr_assert_eq(info.raw_chunks, 0);
	cr_assert_eq(info.total_pages, npages / 2);
	/* 16384 pairs of 2 bytes: 8 chunks, and 4 for the half span */
	cr_assert_eq(info.chunks, 12, "%u chunks", info.chunks);
	m = (struct proto_msg){ .type = PROTO_STATS, .domain_op = { dom } };
	cr_assert_eq(itest_call(&runs, &m, &r), 0);
	proto_stats_at(&r, 0, &st);
	cr_assert_eq(st.pages_sent, npages / 2);
	cr_assert_eq(st.pending_pages, 0);
	cr_assert_eq(itest_ack(&runs, dom, info.generation), 0);
	assert_empty(&runs, dom);
	itest_close(&runs);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* Periodic rounds: EV_ROUND arrives, the pages are pending without a
 * SYNC, STATS counts them. */
Test(ranges, periodic_events_and_stats, .fini = stop)
{
	static const uint64_t maps[][2] = { { GIB, 64 * MIB } };
	struct itest_runs got = { 0 }, want = { 0 };
	struct record w = { 0 };
	struct itest_ranges info;
	struct itest_client c;
	struct proto_msg m, r;
	struct proto_stats st;
	uint32_t dom;
	int e;

	start();
	client(&c, PROTO_FEAT_EVENTS | PROTO_FEAT_RANGES_RAW);
	dom = domain(&c, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 1);
	cr_assert_eq(itest_subscribe(&c, dom, 10, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	for (uint64_t p = 0; p < 5; p++)
		write_pages(&c, dom, GIB + p * 7 * PG, 1, &w);
	expect(&want, &w, PG, maps, 1);
	/* one EV_ROUND (perhaps taken in by a DMA_WRITE's wait), then
	 * GET_RANGES: the next comes after the next round with pages */
	for (uint64_t pages = 0; pages < 5;) {
		if (!c.ev_round) {
			e = itest_recv(&c, &r, 10000);
			cr_assert_eq(e, 0, "no EV_ROUND: %s", strerror(-e));
			cr_assert_eq(r.type, PROTO_EV_ROUND);
			cr_assert_eq(r.id, 0);
			cr_assert_eq(r.ev_round.domain_id, dom);
		}
		c.ev_round = 0;
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
		pages += info.total_pages;
		cr_assert_leq(pages, 5);
	}
	want.pages = 0;
	itest_runs_free(&want);

	m = (struct proto_msg){ .type = PROTO_STATS, .domain_op = { dom } };
	cr_assert_eq(itest_call(&c, &m, &r), 0);
	cr_assert_eq(r.type, PROTO_STATS_REPLY);
	cr_assert_eq(r.list.count, 1);
	proto_stats_at(&r, 0, &st);
	cr_assert_eq(st.domain_id, dom);
	cr_assert_eq(st.status, PROTO_DOMAIN_SUPPORTED | PROTO_DOMAIN_ENABLED);
	cr_assert_geq(st.generation, info.generation);
	cr_assert_eq(st.pages_sent, 5);
	cr_assert_eq(st.mapped_bytes, maps[0][1]);
	/* UNSUBSCRIBE: no more events, no more ranges */
	cr_assert_eq(itest_domain_op(&c, PROTO_UNSUBSCRIBE, dom), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, NULL), -ENOENT);
	itest_close(&c);
	free(w.pages);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* EV_ROUND never queues (PROTOCOL.md 6.16): a client that does not read
 * through 200 rounds with pages finds one EV_ROUND, whose round_pages sum
 * them all; after a GET_RANGES the next one comes. */
Test(ranges, events_never_queue, .fini = stop)
{
	static const uint64_t maps[][2] = { { GIB, 64 * MIB } };
	struct itest_runs got = { 0 };
	struct itest_ranges info;
	struct itest_client c, w;
	struct proto_msg r;
	unsigned int events = 0;
	uint64_t gen0 = 0, gen1 = 0, round_pages = 0;
	uint32_t dom;

	start();
	client(&c, PROTO_FEAT_EVENTS | PROTO_FEAT_RANGES_RAW);
	client(&w, 0);
	dom = domain(&w, "sim0", PROTO_CREATE_NO_HUGE_PAGES, maps, 1);
	cr_assert_eq(itest_subscribe(&c, dom, 1, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	cr_assert_eq(itest_sync(&w, dom, &gen0), 0);
	/* another client writes a page every 2 ms while c's 1 ms periodic
	 * rounds find them (SYNC rounds would send no event), 200 pages */
	for (uint64_t p = 0; p < 200; p++) {
		cr_assert_eq(itest_map(&w, PROTO_DMA_WRITE, dom, GIB + p * PG,
				       PG), 0);
		usleep(2000);
	}
	cr_assert_eq(itest_sync(&w, dom, &gen1), 0);
	/* no count of rounds asserted: how many run is the machine's */
	cr_assert_gt(gen1, gen0);
	usleep(50 * 1000);
	/* everything queued for c is in its socket now */
	while (itest_recv(&c, &r, 200) == 0) {
		cr_assert_eq(r.type, PROTO_EV_ROUND);
		events++;
		round_pages += r.ev_round.round_pages;
	}
	cr_assert_eq(events, 1, "%u EV_ROUND queued", events);
	cr_assert_gt(round_pages, 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	cr_assert_eq(info.total_pages, 200);
	cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	/* asked: the reply covered the rounds before; the next round with
	 * pages sends the next one */
	cr_assert_eq(itest_map(&w, PROTO_DMA_WRITE, dom, GIB + 300 * PG, PG),
		     0);
	cr_assert_eq(itest_recv(&c, &r, 10000), 0);
	cr_assert_eq(r.type, PROTO_EV_ROUND);
	cr_assert_eq(r.ev_round.round_pages, 1);
	cr_assert_eq(r.ev_round.pending_pages, 1);
	itest_close(&c);
	itest_close(&w);
	itest_runs_free(&got);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}
