// SPDX-License-Identifier: MIT
/*
 * serve_bench: what serving one generation costs, and whether the extent
 * scan (protocol/extent.c: the block zero-skip, AVX2 picked at run
 * time) would pay on that path.
 *
 * One subscriber set laid out for a guest of -g GiB (default 1024) at
 * 4 KiB pages, one range at IOVA 0: a 32 MiB pending bitmap at 1 TiB.  For
 * each pattern (0.1 % clustered: runs of 64 pages at random unaligned
 * starts; 1 % uniform: each page on its own; and 0 %, 10 % uniform for
 * context) the pending bitmap is filled (subscriber_set_fold(), not timed),
 * the caches are evicted (a 96 MiB read) and one of these is timed in the
 * thread's CPU time (the host is shared: time others take does not count);
 * the median of -r runs (default 9), interleaved:
 *
 *   take      subscriber_set_take(): what GET_RANGES runs now (each span of
 *             32768 pages read word by word with atomics, its words
 *             encoded by chunk_encode()).
 *   encode    chunk_encode() alone over every span that has a dirty page,
 *             from a plain bitmap: the encoder's share of take.
 *   scan      extent_scan_bitmap() over the whole bitmap, counting runs:
 *             what the extent scan costs to find them.
 *   ext-take  the take driven by the extent scan: the block scan finds the
 *             spans with dirty pages; only their words are taken (the same
 *             atomics) and encoded.  Its chunks are checked equal to take's
 *             byte for byte.  It leaves flight out (a heap set has none,
 *             like take here).
 *   plain     a plain read of the bitmap (sum of its words): the floor.
 *   fold      subscriber_set_fold() of a round's whole bitmap into the set
 *             (pending empty): what the event loop does per subscriber at
 *             a round's end, and what a parallel fold on the harvest
 *             workers could at best take off it.
 *
 * It prints the medians (ms) and take / ext-take: above 1 the extent scan
 * would pay by that factor on this path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocol/extent.h"
#include "daemon/harvest/harvest.h"
#include "daemon/subscriber/subscriber.h"
#include "protocol/chunk.h"

#define SPAN_WORDS (CHUNK_MAX_PAGES / 64)
#define EVICT_MIB 96

static volatile uint64_t sink;

static double ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double mid(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* @pct_x100 hundredths of a percent of @npages dirty: in runs of @run
 * pages at random starts (clustered), or each page on its own (run 1). */
static void pattern(uint64_t *bits, uint64_t npages, unsigned int pct_x100,
		    unsigned int run)
{
	uint64_t want = npages / 10000 * pct_x100, set = 0;

	memset(bits, 0, npages / 8);
	while (set < want) {
		uint64_t p = rnd() % (npages - run);

		for (uint64_t i = p; i < p + run; i++) {
			if (!(bits[i / 64] >> (i % 64) & 1))
				set++;
			bits[i / 64] |= 1ULL << (i % 64);
		}
	}
}

/* ----------------------------------------------------------- encode */

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

/* ------------------------------------------------------------- scan */

static int count_run(void *ctx, const struct extent *e)
{
	(void)e;
	++*(uint64_t *)ctx;
	return 0;
}

static uint64_t scan_all(const uint64_t *bits, uint64_t nwords)
{
	struct extent_scan s;
	uint64_t n = 0;

	extent_scan_init(&s, count_run, &n);
	extent_scan_bitmap(&s, bits, 0, nwords * 64);
	extent_scan_finish(&s);
	return n;
}

/* --------------------------------------------------------- ext-take */

struct spans {
	uint64_t *v;		/* span numbers with a dirty page, in order */
	uint64_t n;
};

static int span_of_run(void *ctx, const struct extent *e)
{
	struct spans *sp = ctx;
	uint64_t a = e->first / CHUNK_MAX_PAGES;
	uint64_t b = (e->first + e->count - 1) / CHUNK_MAX_PAGES;

	if (sp->n && sp->v[sp->n - 1] >= a)
		a = sp->v[sp->n - 1] + 1;
	for (; a <= b; a++)
		sp->v[sp->n++] = a;
	return 0;
}

/* The spans the extent scan names, taken (atomic exchange of each word
 * with bits, as the take does) and encoded into @out; returns its bytes. */
static size_t ext_take(uint64_t *pending, uint64_t nwords, struct spans *sp,
		       uint8_t *out)
{
	struct extent_scan s;
	size_t len = 0;

	sp->n = 0;
	extent_scan_init(&s, span_of_run, sp);
	extent_scan_bitmap(&s, pending, 0, nwords * 64);
	extent_scan_finish(&s);
	for (uint64_t i = 0; i < sp->n; i++) {
		uint64_t words[SPAN_WORDS], *src = pending + sp->v[i] * SPAN_WORDS;
		int r;

		for (unsigned int k = 0; k < SPAN_WORDS; k++)
			words[k] = src[k] ? __atomic_exchange_n(&src[k], 0,
							__ATOMIC_RELAXED) : 0;
		r = chunk_encode(sp->v[i] * CHUNK_MAX_PAGES, CHUNK_MAX_PAGES,
				 words, out + len);
		if (r > 0)
			len += (size_t)r;
	}
	return len;
}

/* ------------------------------------------------------------- main */

enum { V_TAKE, V_ENCODE, V_SCAN, V_EXT, V_PLAIN, V_FOLD, NV };

static int fail(const char *what, int r)
{
	fprintf(stderr, "serve_bench: %s: %s\n", what, strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; unsigned int pct_x100, run; }
	cases[] = {
		{ "uniform", 0, 1 },
		{ "clustered", 10, 64 },
		{ "uniform", 100, 1 },
		{ "uniform", 1000, 1 },
	};
	unsigned int reps = 9, gib = 1024;
	struct harvest_domain d = { 0 };
	struct harvest_range range = { 0 };
	struct subscriber_set set;
	struct spans sp;
	uint64_t *bits, nwords, npages, gen = 1;
	uint8_t *ext_out;
	int opt, r;

	while ((opt = getopt(argc, argv, "r:g:")) != -1) {
		if (opt == 'r')
			reps = (unsigned int)atoi(optarg);
		else if (opt == 'g')
			gib = (unsigned int)atoi(optarg);
		else
			return fprintf(stderr, "usage: serve_bench [-r reps] "
				       "[-g GiB]\n"), 2;
	}
	if (reps < 1 || reps > 64 || gib < 1)
		return fprintf(stderr, "serve_bench: 1 <= reps <= 64\n"), 2;

	range.length = (uint64_t)gib << 30;
	r = harvest_domain_plan(&d, 1, 4096, &range, 1, 0);
	if (r < 0)
		return fail("harvest_domain_plan", r);
	r = subscriber_set_init(&set, &d);
	if (r < 0)
		return fail("subscriber_set_init", r);
	nwords = set.nwords;
	npages = range.length / 4096;
	bits = aligned_alloc(64, nwords * 8);
	evict_words = aligned_alloc(64, (size_t)EVICT_MIB << 20);
	ext_out = malloc(nwords * 8 + nwords / SPAN_WORDS * CHUNK_HEADER_SIZE);
	sp.v = malloc((nwords / SPAN_WORDS + 1) * sizeof(*sp.v));
	if (!bits || !evict_words || !ext_out || !sp.v)
		return fail("allocating", -ENOMEM);
	memset(evict_words, 1, (size_t)EVICT_MIB << 20);

	printf("# serve_bench: %u GiB at 4 KiB (%" PRIu64 " MiB bitmap), "
	       "extent zero-skip %s, caches evicted, CPU time, median of %u (ms)\n",
	       gib, nwords * 8 >> 20, extent_scan_impl(), reps);
	printf("%-9s %6s | %8s %8s %8s %8s %8s %8s | %9s %9s | %10s %s\n",
	       "pattern", "dens", "take", "encode", "scan", "ext-take",
	       "plain", "fold", "take/ext", "enc/take", "bytes", "check");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		static double t[NV][64], m[NV];
		const char *check = "ok";
		size_t take_len = 0;

		pattern(bits, npages, cases[c].pct_x100, cases[c].run);
		for (unsigned int i = 0; i < reps; i++) {
			struct subscriber_gen *g;
			size_t ext_len;
			double t0;

			evict();
			t0 = ms_now();
			subscriber_set_fold(&set, 0, bits, nwords);
			t[V_FOLD][i] = ms_now() - t0;
			evict();
			t0 = ms_now();
			r = subscriber_set_take(&set, gen, &g);
			t[V_TAKE][i] = ms_now() - t0;
			if (r < 0)
				return fail("subscriber_set_take", r);

			subscriber_set_fold(&set, 0, bits, nwords);
			evict();
			t0 = ms_now();
			ext_len = ext_take(set.pending, nwords, &sp, ext_out);
			t[V_EXT][i] = ms_now() - t0;
			if (ext_len != g->len ||
			    memcmp(ext_out, g->chunks, ext_len))
				check = "DIFFERENT";
			take_len = g->len;
			subscriber_set_delivered(&set, g);
			subscriber_set_ack(&set, gen++);

			evict();
			t0 = ms_now();
			sink += encode_all(bits, nwords);
			t[V_ENCODE][i] = ms_now() - t0;

			evict();
			t0 = ms_now();
			sink += scan_all(bits, nwords);
			t[V_SCAN][i] = ms_now() - t0;

			evict();
			t0 = ms_now();
			sink += sum_words(bits, nwords);
			t[V_PLAIN][i] = ms_now() - t0;
		}
		for (int k = 0; k < NV; k++)
			m[k] = mid(t[k], reps);
		printf("%-9s %5.2f%% | %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f | "
		       "%9.2f %9.2f | %10zu %s\n",
		       cases[c].name, cases[c].pct_x100 / 100.0,
		       m[V_TAKE], m[V_ENCODE], m[V_SCAN],
		       m[V_EXT], m[V_PLAIN], m[V_FOLD],
		       m[V_TAKE] / m[V_EXT],
		       m[V_ENCODE] / m[V_TAKE], take_len, check);
		fflush(stdout);
	}
	subscriber_set_release(&set);
	harvest_domain_release(&d);
	return 0;
}
