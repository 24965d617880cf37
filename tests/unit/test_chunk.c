// SPDX-License-Identifier: MIT
/* Dirty-range chunks: exact round trips, the size bound, strict decoding. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "test_rng.h"
#include "protocol/chunk.h"

#define WORDS (CHUNK_MAX_PAGES / 64)

struct rebuild {
	uint64_t base;
	uint64_t bits[WORDS];
	uint64_t last_end;
	bool ordered;
};

static int rebuild_run(void *ctx, uint64_t first, uint64_t count)
{
	struct rebuild *r = ctx;

	if (first < r->last_end)
		r->ordered = false;
	r->last_end = first + count;
	for (uint64_t p = first - r->base; p < first - r->base + count; p++)
		r->bits[p / 64] |= 1ULL << (p % 64);
	return 0;
}

static void fill(uint64_t *bits, uint32_t span, unsigned int pct,
		 unsigned int mean)
{
	memset(bits, 0, WORDS * 8);
	for (uint32_t i = 0; i < span;) {
		uint32_t run = (uint32_t)(rng() % (2 * mean)) + 1;
		bool set = rng() % 1000 < pct;

		for (uint32_t j = i; j < i + run && j < span; j++)
			if (set)
				bits[j / 64] |= 1ULL << (j % 64);
		i += run;
	}
}

static void round_trip(const uint64_t *bits, uint32_t span, uint64_t first)
{
	static uint8_t buf[CHUNK_MAX_SIZE];
	static struct rebuild rb;
	int n = chunk_encode(first, span, bits, buf);
	bool any = false;

	for (uint32_t i = 0; i < span; i++)
		any |= bits[i / 64] >> (i % 64) & 1;
	if (!any) {
		cr_assert_eq(n, 0);
		return;
	}
	cr_assert_gt(n, 0);
	/* never more than the header over the raw bitmap of the span */
	cr_assert_leq((uint32_t)n, CHUNK_HEADER_SIZE + (span + 7) / 8);
	memset(&rb, 0, sizeof(rb));
	rb.base = first;
	rb.ordered = true;
	cr_assert_eq(chunk_decode(buf, n, rebuild_run, &rb), n);
	cr_assert(rb.ordered);
	for (uint32_t i = 0; i < span; i++)
		cr_assert_eq(rb.bits[i / 64] >> (i % 64) & 1,
			     bits[i / 64] >> (i % 64) & 1, "page %u", i);
	/* any truncation is rejected */
	cr_assert_eq(chunk_decode(buf, n - 1, rebuild_run, &rb), -EBADMSG);
}

Test(chunk, round_trips_random_patterns)
{
	static uint64_t bits[WORDS];
	const unsigned int pct[] = { 0, 1, 10, 100, 500, 900, 1000 };
	const unsigned int mean[] = { 1, 2, 16, 300 };

	rng_seed(7);
	for (unsigned int a = 0; a < 7; a++)
		for (unsigned int m = 0; m < 4; m++)
			for (int rep = 0; rep < 3; rep++) {
				uint32_t span = rep ? CHUNK_MAX_PAGES -
					(uint32_t)(rng() % 100) : CHUNK_MAX_PAGES;

				fill(bits, span, pct[a], mean[m]);
				/* garbage past span must be ignored */
				if (span % 64)
					bits[span / 64] |= ~0ULL << (span % 64);
				round_trip(bits, span, rng() >> 20);
			}
}

Test(chunk, sparse_and_clustered_are_far_smaller_than_raw)
{
	static uint64_t bits[WORDS];
	uint8_t buf[CHUNK_MAX_SIZE];

	memset(bits, 0, sizeof(bits));
	bits[100] = 1;			/* one page */
	cr_assert_leq(chunk_encode(0, CHUNK_MAX_PAGES, bits, buf),
		      (int)CHUNK_HEADER_SIZE + 4);
	cr_assert_eq(buf[12], CHUNK_RUNS);
	memset(bits, 0xff, sizeof(bits));	/* all dirty: one run */
	cr_assert_eq(chunk_encode(0, CHUNK_MAX_PAGES, bits, buf),
		     CHUNK_HEADER_SIZE + 1 + 3);
	memset(bits, 0x55, sizeof(bits));	/* alternating: raw wins */
	cr_assert_eq(chunk_encode(0, CHUNK_MAX_PAGES, bits, buf),
		     CHUNK_HEADER_SIZE + CHUNK_MAX_PAGES / 8);
	cr_assert_eq(buf[12], CHUNK_RAW);
}

static int count_runs(void *ctx, uint64_t first, uint64_t count)
{
	(void)first;
	(void)count;
	(*(int *)ctx)++;
	return 0;
}

/* chunk_batch_fn: the runs into a rebuild, counted, each batch checked
 * against the cap. */
struct batches {
	struct rebuild *rb;
	size_t cap, calls;
	uint64_t runs;
};

static int batch_add(void *ctx, const struct extent *runs, size_t n)
{
	struct batches *b = ctx;

	cr_assert(n >= 1 && n <= b->cap, "a batch of %zu runs", n);
	b->calls++;
	for (size_t i = 0; i < n; i++) {
		rebuild_run(b->rb, runs[i].first, runs[i].count);
		b->runs++;
	}
	return 0;
}

Test(chunk, rejects_malformed)
{
	uint8_t c[64] = { 0 };
	int runs = 0;

	/* header: first=0, span=64, RUNS, len=2: gap 0 run 3 */
	c[8] = 64; c[12] = CHUNK_RUNS; c[14] = 2; c[16] = 0; c[17] = 3;
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), 18);
	cr_assert_eq(runs, 1);

	runs = 0;
	c[17] = 0;	/* zero-length run */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[17] = 65;	/* past span */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[17] = 3;
	c[13] = 1;	/* reserved */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[13] = 0;
	c[12] = 9;	/* kind */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[12] = CHUNK_RUNS;
	c[14] = 40;	/* payload longer than the buffer */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[14] = 2;
	c[8] = 0;	/* span 0 */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[8] = 0; c[10] = 1;	/* span 65536 > max */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[10] = 0; c[8] = 64;
	/* adjacent runs must be merged: gap 0 after a run */
	c[14] = 4; c[16] = 0; c[17] = 1; c[18] = 0; c[19] = 1;
	cr_assert_eq(chunk_decode(c, 20, count_runs, &runs), -EBADMSG);
	/* unterminated ULEB128 */
	c[14] = 2; c[16] = 0x80; c[17] = 0x80;
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	/* RAW: trailing zero byte, bit past span, longer than span */
	memset(c, 0, sizeof(c));
	c[8] = 12; c[12] = CHUNK_RAW; c[14] = 2; c[16] = 1; c[17] = 0;
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[17] = 0x10;	/* page 12: past span 12 */
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	c[17] = 0x08;	/* page 11: fine */
	runs = 0;
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), 18);
	cr_assert_eq(runs, 2);
	c[14] = 3;
	cr_assert_eq(chunk_decode(c, 19, count_runs, &runs), -EBADMSG);
	/* first + span wraps */
	memset(c, 0xff, 8);
	c[8] = 12; c[9] = 0; c[14] = 2;
	cr_assert_eq(chunk_decode(c, 18, count_runs, &runs), -EBADMSG);
	cr_assert_eq(chunk_decode(c, 3, count_runs, &runs), -EBADMSG);
}

Test(chunk, random_bytes_never_crash_and_decode_consistently)
{
	static struct extent batch[CHUNK_MAX_PAIRS];
	static struct rebuild rb;
	uint8_t buf[256];
	int runs;

	rng_seed(99);
	for (int i = 0; i < 200000; i++) {
		size_t len = rng() % sizeof(buf);
		/* small batches: a RUNS payload validated first; large: read
		 * once */
		struct batches b = {
			.rb = &rb, .cap = i % 2 ? CHUNK_MAX_PAIRS : 1 + rng() % 4,
		};

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rng();
		/* bias toward plausible headers */
		if (len > 16) {
			buf[9] = buf[10] = buf[11] = 0;
			buf[13] = 0;
			buf[12] &= 1;
			buf[15] = 0;
			buf[14] %= (uint8_t)(len - 15);
		}
		runs = 0;
		int n = chunk_decode(buf, len, count_runs, &runs);

		cr_assert(n == -EBADMSG || (n >= (int)CHUNK_HEADER_SIZE &&
					    (size_t)n <= len));
		if (n < 0)
			cr_assert_eq(runs, 0, "runs reported before rejection");
		/* the batch decoder: the same answer, the same runs */
		memset(&rb, 0, sizeof(rb));
		if (n > 0)
			chunk_peek(buf, &rb.base, &(uint32_t){ 0 });
		cr_assert_eq(chunk_decode_batch(buf, len, batch, b.cap,
						batch_add, &b), n);
		cr_assert_eq(b.runs, (uint64_t)runs);
		if (n < 0)
			cr_assert_eq(b.calls, 0, "runs reported before "
				     "rejection");
	}
}

/*
 * A session without PROTO_FEAT_RANGES_RAW gets RUNS only: a span whose runs
 * take more than CHUNK_MAX_PAYLOAD bytes is cut between runs into parts,
 * each a valid RUNS chunk within the limit, contiguous, covering the span,
 * together exactly its pages (PROTOCOL.md 9.3, 9.4).
 */
static unsigned int parts_of(const uint64_t *bits, uint32_t span,
			     uint64_t first)
{
	static uint8_t raw[CHUNK_MAX_SIZE], part[CHUNK_MAX_SIZE];
	static struct rebuild rb;
	uint64_t from = first, at = first;
	unsigned int nparts = 0;
	int n = chunk_encode(first, span, bits, raw);

	cr_assert_geq(n, 0);
	if (!n)
		return 0;
	memset(&rb, 0, sizeof(rb));
	rb.base = first;
	rb.ordered = true;
	for (;;) {
		uint64_t pfirst;
		uint32_t pspan;
		static uint8_t small[CHUNK_MAX_SIZE];
		uint64_t sfrom = from;
		size_t cap = (size_t)(rng() % CHUNK_MAX_SIZE);
		int m = chunk_runs_part(raw, (size_t)n, &from, part,
					sizeof(part));
		int k = chunk_runs_part(raw, (size_t)n, &sfrom, small, cap);

		cr_assert_geq(m, 0);
		/* less room cuts nowhere else: the same part, or -ENOSPC */
		if (k == -ENOSPC) {
			cr_assert_gt((size_t)m, cap);
		} else {
			cr_assert_eq(k, m);
			cr_assert_eq(sfrom, from);
			cr_assert_eq(memcmp(small, part, (size_t)m), 0);
		}
		if (!m)
			break;
		nparts++;
		cr_assert_leq((unsigned int)m, CHUNK_MAX_SIZE);
		cr_assert_eq(part[12], CHUNK_RUNS);
		chunk_peek(part, &pfirst, &pspan);
		cr_assert_eq(pfirst, at, "part %u starts at %lu, not %lu",
			     nparts, (unsigned long)pfirst,
			     (unsigned long)at);
		at = pfirst + pspan;
		cr_assert_eq(from, at);
		cr_assert_eq(chunk_decode(part, (size_t)m, rebuild_run, &rb), m);
		cr_assert_eq(chunk_size(part, (size_t)m), m);
	}
	cr_assert(rb.ordered);
	cr_assert_eq(at, first + span, "the parts end at the span's end");
	cr_assert_eq(from, first + span);
	for (uint32_t i = 0; i < span; i++)
		cr_assert_eq(rb.bits[i / 64] >> (i % 64) & 1,
			     bits[i / 64] >> (i % 64) & 1, "page %u", i);
	return nparts;
}

Test(chunk, runs_parts_cut_a_span_within_the_limit)
{
	static uint64_t bits[WORDS];
	const unsigned int pct[] = { 1, 100, 500, 900 };
	const unsigned int mean[] = { 1, 2, 16 };

	/* the worst case: every other page, 16384 runs of 2 bytes */
	for (unsigned int w = 0; w < WORDS; w++)
		bits[w] = 0x5555555555555555ULL;
	cr_assert_eq(parts_of(bits, CHUNK_MAX_PAGES, 7ULL << 15), 8);
	/* 2049 single pages: one pair over the limit */
	memset(bits, 0, sizeof(bits));
	for (unsigned int p = 0; p <= 4096; p += 2)
		bits[p / 64] |= 1ULL << (p % 64);
	cr_assert_eq(parts_of(bits, CHUNK_MAX_PAGES, 0), 2);
	/* everything dirty: one run, one part */
	memset(bits, 0xff, sizeof(bits));
	cr_assert_eq(parts_of(bits, CHUNK_MAX_PAGES, 1ULL << 40), 1);
	rng_seed(11);
	for (unsigned int a = 0; a < 4; a++)
		for (unsigned int b = 0; b < 3; b++) {
			fill(bits, CHUNK_MAX_PAGES - 100 * b, pct[a], mean[b]);
			parts_of(bits, CHUNK_MAX_PAGES - 100 * b, 32768ULL * a);
		}
}

/* Read @n chunks back to back, as a RAW reader and as a RUNS-only one, into
 * outputs of @cap bytes at most: the same pages, in order, in RUNS chunks
 * only for the second. */
static void read_back(const uint8_t *seq, size_t len, const uint64_t *bits,
		      uint32_t span, bool runs_only, size_t cap)
{
	static uint8_t out[CHUNK_MAX_SIZE];
	static struct rebuild rb;
	struct chunk_reader cr = {
		.buf = seq, .len = len, .runs_only = runs_only,
	};
	int n;

	memset(&rb, 0, sizeof(rb));
	rb.ordered = true;
	while ((n = chunk_reader_next(&cr, out, cap)) != 0) {
		if (n == -ENOSPC) {	/* nothing moved: again with room */
			n = chunk_reader_next(&cr, out, sizeof(out));
			cr_assert_gt((size_t)n, cap);
		}
		cr_assert_gt(n, 0);
		if (runs_only)
			cr_assert_eq(chunk_kind(out), CHUNK_RUNS);
		cr_assert_eq(chunk_decode(out, (size_t)n, rebuild_run, &rb), n);
	}
	cr_assert(chunk_reader_done(&cr));
	cr_assert(rb.ordered);
	for (uint32_t i = 0; i < 2 * span; i++)
		cr_assert_eq(rb.bits[i / 64] >> (i % 64) & 1,
			     bits[i % span / 64] >> (i % span % 64) & 1,
			     "page %u", i);
}

Test(chunk, a_reader_gives_every_page_raw_or_in_runs)
{
	static uint64_t bits[WORDS];
	static uint8_t seq[2 * CHUNK_MAX_SIZE];
	static uint8_t out[CHUNK_MAX_SIZE];
	const uint32_t span = CHUNK_MAX_PAGES / 2;
	struct chunk_reader empty = { 0 }, bad;

	cr_assert_eq(chunk_reader_next(&empty, seq, sizeof(seq)), 0);
	cr_assert(chunk_reader_done(&empty));
	rng_seed(5);
	for (unsigned int pct = 1; pct <= 1000; pct *= 3) {
		/* the same span twice, back to back: pages [0, 2 * span) */
		size_t len = 0;
		int n;

		fill(bits, span, pct, 1);
		bits[0] |= 1;
		n = chunk_encode(0, span, bits, seq);
		cr_assert_gt(n, 0);
		len = (size_t)n;
		n = chunk_encode(span, span, bits, seq + len);
		cr_assert_gt(n, 0);
		len += (size_t)n;
		for (unsigned int runs_only = 0; runs_only < 2; runs_only++) {
			read_back(seq, len, bits, span, runs_only, CHUNK_MAX_SIZE);
			read_back(seq, len, bits, span, runs_only, 600);
		}
		/* a malformed sequence is refused */
		bad = (struct chunk_reader){ .buf = seq, .len = len - 1 };
		while ((n = chunk_reader_next(&bad, out, sizeof(out))) > 0)
			;
		cr_assert_eq(n, -EBADMSG);
	}
}

Test(chunk, the_payload_limit_is_enforced_in_one_place)
{
	static uint8_t buf[CHUNK_HEADER_SIZE + CHUNK_MAX_PAYLOAD + 2];

	/* a RUNS payload of 4097 bytes: (0,1) then (1,1) pairs and a pad */
	memset(buf, 0, sizeof(buf));
	buf[8] = 0;
	buf[9] = 0x80;		/* span 32768 */
	buf[12] = CHUNK_RUNS;
	buf[14] = (CHUNK_MAX_PAYLOAD + 2) & 0xff;
	buf[15] = (CHUNK_MAX_PAYLOAD + 2) >> 8;
	buf[16] = 0;
	buf[17] = 1;
	for (unsigned int i = 18; i < sizeof(buf); i++)
		buf[i] = 1;
	cr_assert_eq(chunk_size(buf, sizeof(buf)), -EBADMSG);
	cr_assert_eq(chunk_decode(buf, sizeof(buf), NULL, NULL), -EBADMSG);
	/* the same pairs within the limit decode */
	buf[14] = CHUNK_MAX_PAYLOAD & 0xff;
	buf[15] = CHUNK_MAX_PAYLOAD >> 8;
	cr_assert_eq(chunk_size(buf, CHUNK_MAX_SIZE), (int)CHUNK_MAX_SIZE);
	cr_assert_eq(chunk_decode(buf, CHUNK_MAX_SIZE, NULL, NULL),
		     (int)CHUNK_MAX_SIZE);
}

/*
 * The encoder against a straightforward one: the span read bit by bit,
 * every run as a (gap, run) pair of ULEB128s, the raw bitmap up to the
 * last dirty page byte by byte, RUNS when strictly shorter.  The same
 * bytes, for every pattern.
 */
static uint8_t *ref_uleb(uint8_t *p, uint32_t v)
{
	do {
		*p++ = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return p;
}

static bool bit_of(const uint64_t *bits, uint32_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

/* Returns the chunk's size, 0 for an empty span; *@runs_len: the length
 * of the RUNS payload (the one written or not). */
static int ref_encode(uint64_t first, uint32_t span, const uint64_t *bits,
		      uint8_t *out, uint32_t *runs_len)
{
	static uint8_t runs[6 * CHUNK_MAX_PAGES];
	uint8_t *r = runs;
	uint32_t cursor = 0, raw_len, plen;

	for (uint32_t i = 0; i < span;) {
		uint32_t j = i;

		if (!bit_of(bits, i)) {
			i++;
			continue;
		}
		while (j < span && bit_of(bits, j))
			j++;
		r = ref_uleb(ref_uleb(r, i - cursor), j - i);
		cursor = i = j;
	}
	*runs_len = (uint32_t)(r - runs);
	if (!cursor)
		return 0;
	raw_len = (cursor - 1) / 8 + 1;
	memset(out, 0, CHUNK_HEADER_SIZE);
	for (unsigned int b = 0; b < 8; b++)
		out[b] = (uint8_t)(first >> (8 * b));
	for (unsigned int b = 0; b < 4; b++)
		out[8 + b] = (uint8_t)(span >> (8 * b));
	if ((uint32_t)(r - runs) < raw_len) {
		out[12] = CHUNK_RUNS;
		plen = (uint32_t)(r - runs);
		memcpy(out + CHUNK_HEADER_SIZE, runs, plen);
	} else {
		out[12] = CHUNK_RAW;
		plen = raw_len;
		memset(out + CHUNK_HEADER_SIZE, 0, plen);
		for (uint32_t i = 0; i < raw_len * 8 && i < span; i++)
			if (bit_of(bits, i))
				out[CHUNK_HEADER_SIZE + i / 8] |=
					(uint8_t)(1u << (i % 8));
	}
	out[14] = (uint8_t)plen;
	out[15] = (uint8_t)(plen >> 8);
	return (int)(CHUNK_HEADER_SIZE + plen);
}

/* Encode @bits both ways: the same bytes.  Returns the chunk's kind
 * (CHUNK_RUNS, CHUNK_RAW), or -1 for an empty span. */
static int same_as_ref(const uint64_t *bits, uint32_t span, uint64_t first)
{
	static uint8_t got[CHUNK_MAX_SIZE], want[CHUNK_MAX_SIZE];
	uint32_t runs_len;
	int n, m;

	memset(got, 0xa5, sizeof(got));
	n = chunk_encode(first, span, bits, got);
	m = ref_encode(first, span, bits, want, &runs_len);
	cr_assert_eq(n, m, "span %u: %d bytes, the reference %d", span, n, m);
	if (!n)
		return -1;
	cr_assert_eq(memcmp(got, want, (size_t)n), 0,
		     "span %u: other bytes than the reference (%s)", span,
		     want[12] == CHUNK_RAW ? "RAW" : "RUNS");
	return want[12];
}

/* A run of pages [@first, @first + @n) set. */
static void set_pages(uint64_t *bits, uint32_t first, uint32_t n)
{
	for (uint32_t p = first; p < first + n; p++)
		bits[p / 64] |= 1ULL << (p % 64);
}

Test(chunk, the_encoder_writes_the_references_bytes_at_the_edges)
{
	static uint64_t bits[WORDS];
	const uint32_t spans[] = { 1, 7, 8, 9, 63, 64, 65, 127, 128, 129,
				   1000, 4095, 4096, 32705, 32767, 32768 };

	for (unsigned int s = 0; s < sizeof(spans) / sizeof(spans[0]); s++) {
		uint32_t span = spans[s];
		const uint32_t at[] = { 0, 1, 7, 8, 62, 63, 64, 65, 127, 128,
					span / 2, span - 2, span - 1 };

		/* empty, and garbage past the span only */
		memset(bits, 0, sizeof(bits));
		cr_assert_eq(same_as_ref(bits, span, 0), -1);
		if (span % 64) {
			bits[span / 64] = ~0ULL << (span % 64);
			cr_assert_eq(same_as_ref(bits, span, 0), -1);
		}
		/* full, with and without garbage past it */
		memset(bits, 0xff, sizeof(bits));
		cr_assert_eq(same_as_ref(bits, span, 1ULL << 40),
			     span >= 24 ? CHUNK_RUNS : CHUNK_RAW);
		memset(bits, 0, sizeof(bits));
		set_pages(bits, 0, span);
		same_as_ref(bits, span, 3);
		/* single pages at word and span edges, alone and together */
		for (unsigned int a = 0; a < sizeof(at) / sizeof(at[0]); a++) {
			if (at[a] >= span)
				continue;
			memset(bits, 0, sizeof(bits));
			set_pages(bits, at[a], 1);
			same_as_ref(bits, span, at[a]);
		}
		memset(bits, 0, sizeof(bits));
		for (unsigned int a = 0; a < sizeof(at) / sizeof(at[0]); a++)
			if (at[a] < span)
				set_pages(bits, at[a], 1);
		same_as_ref(bits, span, 0);
		/* runs crossing words, and one ending at the span's end */
		memset(bits, 0, sizeof(bits));
		for (uint32_t p = 60; p + 10 <= span; p += 64)
			set_pages(bits, p, 10);
		same_as_ref(bits, span, 0);
		memset(bits, 0, sizeof(bits));
		set_pages(bits, span > 70 ? span - 70 : 0,
			  span > 70 ? 70 : span);
		same_as_ref(bits, span, 0);
		/* alternating: RAW, and RUNS cut short at the limit */
		memset(bits, 0x55, sizeof(bits));
		same_as_ref(bits, span, 0);
	}
}

Test(chunk, the_encoder_breaks_a_runs_raw_tie_as_the_reference)
{
	static uint64_t bits[WORDS];
	unsigned int ties = 0;

	/* page 8 alone: RUNS (8, 1) is 2 bytes, the raw bitmap 2: RAW */
	memset(bits, 0, sizeof(bits));
	set_pages(bits, 8, 1);
	cr_assert_eq(same_as_ref(bits, 64, 0), CHUNK_RAW);
	/* page 16: RUNS 2 bytes, raw 3: RUNS */
	memset(bits, 0, sizeof(bits));
	set_pages(bits, 16, 1);
	cr_assert_eq(same_as_ref(bits, 64, 0), CHUNK_RUNS);
	/* page 7: RUNS 2 bytes, raw 1: RAW */
	memset(bits, 0, sizeof(bits));
	set_pages(bits, 7, 1);
	cr_assert_eq(same_as_ref(bits, 64, 0), CHUNK_RAW);
	/* small random spans: many ties, each broken the same way */
	rng_seed(17);
	for (int i = 0; i < 20000; i++) {
		static uint8_t out[CHUNK_MAX_SIZE];
		uint32_t span = 1 + (uint32_t)(rng() % 300), runs_len;
		unsigned int pct = (unsigned int)(rng() % 1000);
		int n;

		memset(bits, 0, 8 * 8);
		for (uint32_t p = 0; p < span; p++)
			if (rng() % 1000 < pct)
				set_pages(bits, p, 1);
		bits[span / 64] |= span % 64 ? ~0ULL << (span % 64) : 0;
		n = ref_encode(0, span, bits, out, &runs_len);
		/* a tie: the RUNS payload as long as the raw one */
		ties += n && out[12] == CHUNK_RAW &&
			runs_len == (uint32_t)n - CHUNK_HEADER_SIZE;
		same_as_ref(bits, span, rng() >> 24);
	}
	cr_assert_gt(ties, 100, "only %u ties", ties);
}

Test(chunk, the_encoder_writes_the_references_bytes_for_random_patterns)
{
	static uint64_t bits[WORDS];
	const unsigned int pct[] = { 0, 1, 10, 60, 100, 300, 500, 900, 999 };
	const unsigned int mean[] = { 1, 2, 3, 16, 64, 300 };
	unsigned int kinds[2] = { 0 };

	rng_seed(23);
	for (unsigned int a = 0; a < sizeof(pct) / sizeof(pct[0]); a++)
		for (unsigned int m = 0; m < sizeof(mean) / sizeof(mean[0]); m++)
			for (int rep = 0; rep < 4; rep++) {
				uint32_t span = rep ? 1 + (uint32_t)(rng() %
						CHUNK_MAX_PAGES) :
						CHUNK_MAX_PAGES;
				int k;

				fill(bits, span, pct[a], mean[m]);
				if (span % 64)
					bits[span / 64] |= ~0ULL << (span % 64);
				k = same_as_ref(bits, span, rng() >> 20);
				if (k >= 0)
					kinds[k]++;
			}
	cr_assert(kinds[CHUNK_RUNS] && kinds[CHUNK_RAW]);
}

Test(chunk, the_batch_decoder_gives_the_same_runs_in_any_batches)
{
	static uint64_t bits[WORDS];
	static uint8_t buf[CHUNK_MAX_SIZE];
	static struct extent runs[CHUNK_MAX_PAIRS];
	static struct rebuild one, many;
	const size_t caps[] = { 1, 2, 3, 64, 255, 256, 257, CHUNK_MAX_PAIRS };
	const unsigned int pct[] = { 1, 30, 100, 500, 900 };

	rng_seed(31);
	for (unsigned int a = 0; a < sizeof(pct) / sizeof(pct[0]); a++)
		for (unsigned int m = 1; m <= 16; m *= 4) {
			uint32_t span = CHUNK_MAX_PAGES - (uint32_t)(rng() % 200);
			uint64_t first = rng() >> 24;
			int n, runs_n = 0;

			fill(bits, span, pct[a], m);
			bits[0] |= 1;
			n = chunk_encode(first, span, bits, buf);
			cr_assert_gt(n, 0);
			memset(&one, 0, sizeof(one));
			one.base = first;
			one.ordered = true;
			cr_assert_eq(chunk_decode(buf, (size_t)n, rebuild_run,
						  &one), n);
			cr_assert_eq(chunk_decode(buf, (size_t)n, count_runs,
						  &runs_n), n);
			for (unsigned int c = 0; c < sizeof(caps) /
			     sizeof(caps[0]); c++) {
				struct batches b = { .rb = &many, .cap = caps[c] };

				memset(&many, 0, sizeof(many));
				many.base = first;
				many.ordered = true;
				cr_assert_eq(chunk_decode_batch(buf, (size_t)n,
								runs, caps[c],
								batch_add, &b),
					     n);
				cr_assert(many.ordered);
				cr_assert_eq(b.runs, (uint64_t)runs_n);
				cr_assert_eq(memcmp(many.bits, one.bits,
						    sizeof(one.bits)), 0,
					     "cap %zu: other pages", caps[c]);
			}
		}
	/* bad arguments */
	cr_assert_eq(chunk_decode_batch(buf, CHUNK_MAX_SIZE, NULL, 1,
					batch_add, NULL), -EINVAL);
	cr_assert_eq(chunk_decode_batch(buf, CHUNK_MAX_SIZE, runs, 0,
					batch_add, NULL), -EINVAL);
}
