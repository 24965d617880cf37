// SPDX-License-Identifier: MIT
/*
 * serve_bench: what the subscriber sets cost the event loop per round and
 * per GET_RANGES (daemon/subscriber/subscriber.c), each stage against the
 * least-traffic kernel for it: a plain read of the words it must touch.
 *
 * A guest of -g GiB (default 1024) at 4 KiB pages, one range at IOVA 0: a
 * 32 MiB bitmap at 1 TiB.  For each pattern (0; 0.01 % uniform; 0.1 %
 * clustered: runs of 64 pages at random unaligned starts; 1 % and 10 %
 * uniform: each page on its own) a round's bitmap is filled (not timed),
 * then, -r times (default 9), interleaved, each stage is timed in the
 * thread's CPU time (the host is shared: time others take does not count)
 * after the caches are evicted (a 96 MiB read); medians in ms.  Two kinds
 * of set: on the heap (one), and in a memfd as the daemon keeps them
 * (bitmem_new(): pending and flight, durable; SUBS of them, one bitmem).
 *
 *   fold1     the daemon's fold of the round into 1 set (domain_fold():
 *             the round's count, and what it ORs into each subscriber)
 *   fold16    the same into 16 sets (memfd only)
 *   count     subscriber_set_pending_pages(): what SYNC's reply, STATS
 *             and a stream ask
 *   take      subscriber_set_take() of the first set: GET_RANGES
 *   ack       subscriber_set_delivered() and _ack() of it (a durable
 *             set clears its flight bitmap there)
 *   encode    chunk_encode() alone over every span that has a dirty page,
 *             from a plain bitmap: the encoder's share of take
 *   plain     a plain read of the whole bitmap (sum of its words)
 *   touch     a plain read of the 64-byte lines of the bitmap that hold a
 *             dirty page, and only those (found before, not timed): the
 *             least traffic a stage that works per dirty line can have
 *
 * Ratios: fold1 / (plain + touch) (the round read once, the pending lines
 * once), fold16 / fold1, take / touch, take / (touch + encode).  The
 * fold is that of the tree it is built in: with SUBSCRIBER_BLOCK_WORDS
 * (subscriber.h) the round is scanned once into a map of its non-empty
 * blocks which each set folds (subscriber_round_scan(),
 * subscriber_set_fold_blocks()); before it, the round was counted, then
 * folded whole into every set (subscriber_set_fold()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baselines.h"
#include "protocol/extent.h"
#include "daemon/harvest/harvest.h"
#include "daemon/subscriber/bitmem.h"
#include "daemon/subscriber/subscriber.h"
#include "protocol/chunk.h"

#define SPAN_WORDS (CHUNK_MAX_PAGES / 64)
#define EVICT_MIB 96
#define SUBS 16

static volatile uint64_t sink;

static double ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* the medians: median() of bench/baselines.h */

static uint64_t sum_words(const uint64_t *w, uint64_t n)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < n; i++)
		s += w[i];
	return s;
}

static uint64_t *evict_words;

static void evict(void)
{
	sink += sum_words(evict_words, (EVICT_MIB << 20) / 8);
}

/* the patterns: pattern_fill() of bench/baselines.h, as every program
 * in bench/ draws them */

/* ----------------------------------------------------------- floors */

static uint8_t chunk_buf[CHUNK_MAX_SIZE];

static uint64_t encode_all(const uint64_t *bits, uint64_t nwords)
{
	uint64_t bytes = 0;

	for (uint64_t w = 0; w < nwords; w += SPAN_WORDS) {
		uint64_t any = 0;

		for (uint64_t k = w; k < w + SPAN_WORDS; k++)
			any |= bits[k];
		if (any)
			bytes += (uint64_t)chunk_encode(w * 64,
							CHUNK_MAX_PAGES,
							bits + w, chunk_buf);
	}
	return bytes;
}

/* The 64-byte lines of @bits that hold a set bit, into @lines. */
static uint64_t lines_of(const uint64_t *bits, uint64_t nwords,
			 uint64_t *lines)
{
	uint64_t n = 0;

	for (uint64_t l = 0; l < nwords / 8; l++)
		if (bits[l * 8] | bits[l * 8 + 1] | bits[l * 8 + 2] |
		    bits[l * 8 + 3] | bits[l * 8 + 4] | bits[l * 8 + 5] |
		    bits[l * 8 + 6] | bits[l * 8 + 7])
			lines[n++] = l;
	return n;
}

static uint64_t touch(const uint64_t *bits, const uint64_t *lines, uint64_t n)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < n; i++)
		s += sum_words(bits + lines[i] * 8, 8);
	return s;
}

/* ------------------------------------------------------------- fold */

#ifdef SUBSCRIBER_BLOCK_WORDS
static uint64_t *blocks;
#endif

/* What domain_fold() does with one range at word 0. */
static uint64_t daemon_fold(struct subscriber_set *sets, unsigned int n,
			    const uint64_t *bits, uint64_t nwords)
{
	uint64_t pages;

#ifdef SUBSCRIBER_BLOCK_WORDS
	memset(blocks, 0, subscriber_blocks_words(nwords) * 8);
	pages = subscriber_round_scan(bits, 0, nwords, blocks);
	if (pages)
		for (unsigned int i = 0; i < n; i++)
			subscriber_set_fold_blocks(&sets[i], bits, blocks, 0,
						   nwords);
#else
	pages = extent_count_bits(bits, nwords);
	if (pages)
		for (unsigned int i = 0; i < n; i++)
			subscriber_set_fold(&sets[i], 0, bits, nwords);
#endif
	return pages;
}

/* ------------------------------------------------------------- main */

enum { V_FOLD1, V_FOLD16, V_COUNT, V_TAKE, V_ACK, V_ENCODE, V_PLAIN, V_TOUCH,
       NV };

static int fail(const char *what, int r)
{
	fprintf(stderr, "serve_bench: %s: %s\n", what, strerror(-r));
	return 1;
}

/* Take, deliver and acknowledge @s's generation @gen; its take and ack
 * timed into @t_take, @t_ack unless NULL.  Returns the chunks' bytes. */
static int take_ack(struct subscriber_set *s, uint64_t gen, double *t_take,
		    double *t_ack, size_t *bytes)
{
	struct subscriber_gen *g;
	double t0;
	int r;

	if (t_take)
		evict();
	t0 = ms_now();
	r = subscriber_set_take(s, gen, &g);
	if (t_take)
		*t_take = ms_now() - t0;
	if (r < 0)
		return r;
	*bytes = g->len;
	if (t_ack)
		evict();
	t0 = ms_now();
	subscriber_set_delivered(s, g);
	r = subscriber_set_ack(s, gen);
	if (t_ack)
		*t_ack = ms_now() - t0;
	return r;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		unsigned int pct_x100;
		enum bench_pattern pat;
	} cases[] = {
		{ "uniform", 0, PAT_UNIFORM },
		{ "uniform", 1, PAT_UNIFORM },
		{ "clustered", 10, PAT_CLUSTERED },
		{ "uniform", 100, PAT_UNIFORM },
		{ "uniform", 1000, PAT_UNIFORM },
	};
	unsigned int reps = 9, gib = 1024, only = 0;
	struct harvest_domain d = { 0 };
	struct harvest_range range = { 0 };
	struct subscriber_set heap, sets[SUBS];
	struct bitmem *mem;
	uint64_t *bits, *lines, nwords, npages, gen = 1;
	int opt, r;

	while ((opt = getopt(argc, argv, "r:g:c:")) != -1) {
		if (opt == 'r')
			reps = (unsigned int)atoi(optarg);
		else if (opt == 'g')
			gib = (unsigned int)atoi(optarg);
		else if (opt == 'c')
			only = (unsigned int)atoi(optarg);
		else
			return fprintf(stderr, "usage: serve_bench [-r reps] "
				       "[-g GiB] [-c pattern: 1..5, one "
				       "row]\n"), 2;
	}
	if (reps < 1 || reps > 64 || gib < 1)
		return fprintf(stderr, "serve_bench: 1 <= reps <= 64\n"), 2;

	range.length = (uint64_t)gib << 30;
	r = harvest_domain_plan(&d, 1, 4096, &range, 1, 0);
	if (r < 0)
		return fail("harvest_domain_plan", r);
	r = subscriber_set_init(&heap, &d);
	if (r < 0)
		return fail("subscriber_set_init", r);
	r = bitmem_new("serve_bench", &mem);
	if (r < 0)
		return fail("bitmem_new", r);
	for (int i = 0; i < SUBS; i++) {
		r = subscriber_set_init_mem(&sets[i], &d, mem);
		if (r < 0)
			return fail("subscriber_set_init_mem", r);
	}
	nwords = heap.nwords;
	npages = range.length / 4096;
	bits = aligned_alloc(64, nwords * 8);
	lines = malloc(nwords / 8 * sizeof(*lines));
	evict_words = aligned_alloc(64, (size_t)EVICT_MIB << 20);
#ifdef SUBSCRIBER_BLOCK_WORDS
	blocks = calloc(subscriber_blocks_words(nwords), 8);
	if (!blocks)
		return fail("allocating", -ENOMEM);
#endif
	if (!bits || !lines || !evict_words)
		return fail("allocating", -ENOMEM);
	memset(evict_words, 1, (size_t)EVICT_MIB << 20);

	printf("# serve_bench: %u GiB at 4 KiB (%" PRIu64 " MiB bitmap), "
	       "count %s, caches evicted, thread CPU time, median of %u (ms)\n",
	       gib, nwords * 8 >> 20, extent_count_impl(), reps);
#ifdef SUBSCRIBER_BLOCK_WORDS
	printf("# fold: round scanned once into a map of %u-word blocks, "
	       "each set folds those\n", SUBSCRIBER_BLOCK_WORDS);
#else
	printf("# fold: round counted, then folded whole into each set\n");
#endif
	printf("%-5s %-9s %6s | %8s %8s %7s %8s %7s | %7s %7s %7s | "
	       "%9s %6s %7s %8s | %9s\n",
	       "set", "pattern", "dens", "fold1", "fold16", "count", "take",
	       "ack", "encode", "plain", "touch", "f1/(p+t)", "f16/f1",
	       "take/t", "take/t+e", "bytes");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		if (only && c + 1 != only)
			continue;
		pattern_fill(bits, npages, cases[c].pct_x100 / 10000.0,
			     cases[c].pat, 0x5eed + c);
		uint64_t nl = lines_of(bits, nwords, lines);

		for (int memfd = 0; memfd < 2; memfd++) {
			static double t[NV][64], m[NV];
			struct subscriber_set *s = memfd ? sets : &heap;
			size_t bytes = 0;

			for (unsigned int i = 0; i < reps; i++) {
				double t0;

				evict();
				t0 = ms_now();
				sink += daemon_fold(s, 1, bits, nwords);
				t[V_FOLD1][i] = ms_now() - t0;
				evict();
				t0 = ms_now();
				sink += subscriber_set_pending_pages(s);
				t[V_COUNT][i] = ms_now() - t0;
				r = take_ack(s, gen, &t[V_TAKE][i],
					     &t[V_ACK][i], &bytes);
				if (r < 0)
					return fail("take", r);
				if (memfd) {
					evict();
					t0 = ms_now();
					sink += daemon_fold(s, SUBS, bits,
							    nwords);
					t[V_FOLD16][i] = ms_now() - t0;
					for (int k = 0; k < SUBS; k++) {
						size_t b;

						r = take_ack(&s[k], gen, NULL,
							     NULL, &b);
						if (r < 0)
							return fail("take", r);
					}
				} else {
					t[V_FOLD16][i] = 0;
				}
				gen++;

				evict();
				t0 = ms_now();
				sink += encode_all(bits, nwords);
				t[V_ENCODE][i] = ms_now() - t0;

				evict();
				t0 = ms_now();
				sink += sum_words(bits, nwords);
				t[V_PLAIN][i] = ms_now() - t0;

				evict();
				t0 = ms_now();
				sink += touch(bits, lines, nl);
				t[V_TOUCH][i] = ms_now() - t0;
			}
			for (int k = 0; k < NV; k++)
				m[k] = median(t[k], reps);
			printf("%-5s %-9s %5.2f%% | %8.3f %8.3f %7.3f %8.3f "
			       "%7.3f | %7.3f %7.3f %7.3f | %9.2f %6.2f %7.2f "
			       "%8.2f | %9zu\n",
			       memfd ? "memfd" : "heap", cases[c].name,
			       cases[c].pct_x100 / 100.0, m[V_FOLD1],
			       m[V_FOLD16], m[V_COUNT], m[V_TAKE], m[V_ACK],
			       m[V_ENCODE], m[V_PLAIN], m[V_TOUCH],
			       m[V_FOLD1] / (m[V_PLAIN] + m[V_TOUCH]),
			       memfd ? m[V_FOLD16] / m[V_FOLD1] : 0,
			       m[V_TAKE] / m[V_TOUCH],
			       m[V_TAKE] / (m[V_TOUCH] + m[V_ENCODE]), bytes);
			fflush(stdout);
		}
	}
	for (int i = 0; i < SUBS; i++)
		subscriber_set_release(&sets[i]);
	subscriber_set_release(&heap);
	bitmem_free(mem);
	harvest_domain_release(&d);
	return 0;
}
