// SPDX-License-Identifier: MIT
/* Extents from bitmaps, checked against a bit-by-bit reference. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "test_rng.h"
#include "protocol/extent.h"

#define MAXE 200000

struct sink {
	struct extent e[MAXE];
	size_t n;
};

static int sink_add(void *ctx, const struct extent *e)
{
	struct sink *s = ctx;

	cr_assert_lt(s->n, MAXE);
	s->e[s->n++] = *e;
	return 0;
}

/* Reference: runs of set bits, one bit at a time, over concatenated maps. */
static size_t reference(const uint64_t *bm, uint64_t nbits, struct extent *out)
{
	size_t n = 0;

	for (uint64_t i = 0; i < nbits;) {
		if (!(bm[i / 64] >> (i % 64) & 1)) {
			i++;
			continue;
		}
		uint64_t j = i;

		while (j < nbits && (bm[j / 64] >> (j % 64) & 1))
			j++;
		out[n++] = (struct extent){ .first = i, .count = j - i };
		i = j;
	}
	return n;
}

/* Fill with runs whose lengths and gaps are drawn around @mean. */
static void fill(uint64_t *bm, uint64_t nbits, unsigned int density_pct,
		 unsigned int mean)
{
	memset(bm, 0, (nbits + 63) / 64 * 8);
	for (uint64_t i = 0; i < nbits;) {
		uint64_t run = rng() % (2 * mean) + 1;
		bool set = rng() % 100 < density_pct;

		for (uint64_t j = i; j < i + run && j < nbits; j++)
			if (set)
				bm[j / 64] |= 1ULL << (j % 64);
		i += run;
	}
}

static struct sink got;
static struct extent want[MAXE];

static void check_split(const uint64_t *bm, uint64_t nbits, uint64_t split)
{
	struct extent_scan s;
	size_t n = reference(bm, nbits, want);

	got.n = 0;
	extent_scan_init(&s, sink_add, &got);
	/* Feed as two batches: [0, split) and [split, nbits); split is a
	 * multiple of 64, as batch boundaries are. */
	cr_assert_eq(extent_scan_bitmap(&s, bm, 0, split), 0);
	cr_assert_eq(extent_scan_bitmap(&s, bm + split / 64, split,
					nbits - split), 0);
	cr_assert_eq(extent_scan_finish(&s), 0);
	cr_assert_eq(got.n, n, "extents: got %zu want %zu (split %lu)",
		     got.n, n, (unsigned long)split);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(got.e[i].first, want[i].first, "extent %zu", i);
		cr_assert_eq(got.e[i].count, want[i].count, "extent %zu", i);
	}
}

Test(extent, empty_and_full)
{
	static uint64_t bm[1024];
	struct extent_scan s;

	memset(bm, 0, sizeof(bm));
	got.n = 0;
	extent_scan_init(&s, sink_add, &got);
	extent_scan_bitmap(&s, bm, 0, 1024 * 64);
	extent_scan_finish(&s);
	cr_assert_eq(got.n, 0);

	memset(bm, 0xff, sizeof(bm));
	got.n = 0;
	extent_scan_init(&s, sink_add, &got);
	extent_scan_bitmap(&s, bm, 0, 512 * 64);
	extent_scan_bitmap(&s, bm + 512, 512 * 64, 512 * 64);
	extent_scan_finish(&s);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.e[0].first, 0);
	cr_assert_eq(got.e[0].count, 1024 * 64);
}

Test(extent, last_partial_word_ignores_bits_past_end)
{
	uint64_t bm[2] = { 0, ~0ULL };
	struct extent_scan s;

	got.n = 0;
	extent_scan_init(&s, sink_add, &got);
	extent_scan_bitmap(&s, bm, 100, 64 + 5);	/* 5 bits of word 1 */
	extent_scan_finish(&s);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.e[0].first, 164);
	cr_assert_eq(got.e[0].count, 5);
}

Test(extent, runs_merge_across_batches)
{
	uint64_t a[1] = { 1ULL << 63 }, b[1] = { 0x7 };
	struct extent_scan s;

	got.n = 0;
	extent_scan_init(&s, sink_add, &got);
	extent_scan_bitmap(&s, a, 0, 64);
	extent_scan_bitmap(&s, b, 64, 64);
	extent_scan_finish(&s);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.e[0].first, 63);
	cr_assert_eq(got.e[0].count, 4);
}

Test(extent, random_patterns_against_reference)
{
	static uint64_t bm[4096];
	const unsigned int density[] = { 0, 1, 10, 50, 90, 100 };
	const unsigned int mean[] = { 1, 3, 40, 700 };

	rng_seed(42);
	for (unsigned int d = 0; d < 6; d++)
		for (unsigned int m = 0; m < 4; m++)
			for (unsigned int rep = 0; rep < 4; rep++) {
				uint64_t nbits = 4096 * 64 - rng() % 64;
				uint64_t split = (rng() % 4096) * 64;

				fill(bm, nbits, density[d], mean[m]);
				check_split(bm, nbits, split);
			}
}

/* extent_count_bits(), whichever implementation the CPU gets, against a
 * bit-by-bit count: lengths 0 .. 300 words, random and extreme words. */
Test(extent, count_bits_against_reference)
{
	static uint64_t words[300];
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	cr_log_info("extent_count_bits: %s", extent_count_impl());
	for (unsigned int n = 0; n <= 300; n++) {
		uint64_t expect = 0;

		for (unsigned int i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			words[i] = i % 7 == 0 ? ~0ULL : i % 5 == 0 ? 0 :
				   x & (x >> 3);
			for (unsigned int b = 0; b < 64; b++)
				expect += words[i] >> b & 1;
		}
		cr_assert_eq(extent_count_bits(words, n), expect, "%u words", n);
	}
}
