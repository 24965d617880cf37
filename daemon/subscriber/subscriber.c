// SPDX-License-Identifier: MIT
/*
 * The subscriber set: one subscription's dirty pages, pending and in
 * flight (subscriber.h).
 *
 * Owns: nothing is cleared before it is acknowledged.  The rule: a page
 * a round folded in stays in the set until the subscriber acknowledges a
 * generation that was sent to it whole.  So a page leaves pending only
 * into a generation (take), and a generation leaves the set only
 *  - acknowledged, once delivered (ack);
 *  - put back into pending, every page of it (giveback, requeue, trim,
 *    and, while the set is frozen, at the thaw), or, should that fail,
 *    every page of the set marked pending;
 *  - detached to the stream still sending it when its subscription goes
 *    away (detach; the stream frees it, subscriber_gen_free());
 *  - released with the set.
 * Moving the set to a new layout (relayout, snap_move, thaw) keeps every
 * pending and flight bit at its page, or refuses (-ERANGE) and changes
 * nothing; in-flight generations are page-addressed and stay as they are.
 * A durable set also keeps every page in flight in its flight bitmap
 * until no generation is in flight.  Every writer of pending here keeps
 * the set's count and summary (subscriber.h) with it: an OR adds what it
 * made new and marks its blocks, the take subtracts what it took; adopt
 * and the moves (snap_move) rebuild both, skipping holes.  So the count is
 * O(1), and the fold, the take and the clear of flight touch the blocks
 * that hold pages, not the whole bitmap.  This file is the only one that
 * links, unlinks or frees a generation, or writes a set's bitmaps
 * (folding a round in, fold, is the set's too); the rest of the daemon
 * calls its API, mostly through the subscription (subscription.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/harvest/harvest.h"
#include "daemon/util/log.h"
#include "daemon/subscriber/subscriber.h"
#include "protocol/chunk.h"
#include "protocol/extent.h"

#define CHUNK_WORDS (CHUNK_MAX_PAGES / 64)
#define BW SUBSCRIBER_BLOCK_WORDS

/*
 * The set bits of one word.  Without -mpopcnt __builtin_popcountll() is a
 * call to libgcc's __popcountdi2; whole runs of words are counted with
 * extent_count_bits() (POPCNT picked at run time), single words here, a
 * handful of instructions inline (no call: checked in the object code).
 */
static inline uint64_t pop64(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ULL;
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

/*
 * The summary and the count, against a concurrent fold and take (both run
 * on the event loop today; the fold may move onto the harvest workers).
 * A writer of pending ORs its words in (relaxed), then sets the blocks'
 * summary bits with a release RMW, then adds what its ORs made new to the
 * count.  The take clears a summary word with an acquire exchange, then
 * takes the words of the blocks it named, one atomic RMW each.  For a
 * block of a fold: if the fold's summary OR comes after the take's
 * exchange (in the summary word's modification order), the bit stays set
 * and the next take visits the block: nothing is lost; if it comes
 * before, the take's acquire synchronises with the fold's release, so the
 * take's RMWs on the words come after the fold's ORs and take their bits.
 * Either way every non-empty block has its bit after both are done.  The
 * count: each OR says what it made new, each take's exchange what it took,
 * so their sum is exact once both are done (in between the take may have
 * subtracted first: it may wrap below 0 for a moment; readers clamp).
 */
static void sum_mark(uint64_t *sum, uint64_t j, uint64_t bits)
{
	if (bits && sum)
		__atomic_fetch_or(&sum[j], bits, __ATOMIC_RELEASE);
}

/* Mark the blocks of words [@w0, @w1) in @sum (NULL: none). */
static void sum_mark_words(uint64_t *sum, uint64_t w0, uint64_t w1)
{
	uint64_t b1;

	if (!sum || w0 >= w1)
		return;
	b1 = (w1 - 1) / BW;
	for (uint64_t b = w0 / BW; b <= b1;) {
		uint64_t j = b / 64, hi = b1 / 64 == j ? b1 % 64 : 63;
		uint64_t m = (hi == 63 ? ~0ULL : (2ULL << hi) - 1) &
			     ~0ULL << (b % 64);

		sum_mark(sum, j, m);
		b = (j + 1) * 64;
	}
}

static void count_add(uint64_t *count, uint64_t n)
{
	if (n && count)
		__atomic_fetch_add(count, n, __ATOMIC_RELAXED);
}

/*
 * Every block of @words holding a bit marked in @sum (zeroed here), their
 * bits counted into @count: a whole rewrite (adopt, relayout).  The holes
 * of a memfd region (@mem) are skipped, not read.
 */
static void sum_rebuild(struct bitmem *mem, const uint64_t *words,
			uint64_t nwords, uint64_t *sum, uint64_t *count)
{
	uint64_t n = 0;

	memset(sum, 0, subscriber_blocks_words(nwords) * 8);
	for (uint64_t w = 0, end; w < nwords; w = end) {
		end = bitmem_data(mem, words, nwords, &w);
		for (uint64_t b = w / BW * BW; b < end; b += BW) {
			uint64_t lo = b > w ? b : w;
			uint64_t hi = b + BW < end ? b + BW : end, any = 0;

			for (uint64_t k = lo; k < hi; k++)
				any |= __atomic_load_n(&words[k],
						       __ATOMIC_RELAXED);
			if (!any)
				continue;
			sum[b / BW / 64] |= 1ULL << (b / BW % 64);
			n += extent_count_bits(words + lo, hi - lo);
		}
	}
	__atomic_store_n(count, n, __ATOMIC_RELAXED);
}

static int set_alloc_sums(struct subscriber_set *s)
{
	uint64_t n = subscriber_blocks_words(s->nwords);

	s->sum = calloc(n ? n : 1, 8);
	if (s->sum && s->flight)
		s->fsum = calloc(n ? n : 1, 8);
	if (!s->sum || (s->flight && !s->fsum)) {
		free(s->sum);
		s->sum = NULL;
		return -ENOMEM;
	}
	return 0;
}

int subscriber_set_init_mem(struct subscriber_set *s,
			    const struct harvest_domain *layout,
			    struct bitmem *mem)
{
	*s = (struct subscriber_set){
		.layout = layout,
		.mem = mem,
		.nwords = layout->nwords,
	};
	s->pending = bitmem_alloc(mem, s->nwords);
	if (mem && s->pending)
		s->flight = bitmem_alloc(mem, s->nwords);
	if (!s->pending || (mem && !s->flight) || set_alloc_sums(s) < 0) {
		bitmem_release(mem, s->pending, s->nwords);
		bitmem_release(mem, s->flight, s->nwords);
		*s = (struct subscriber_set){ 0 };
		return -ENOMEM;
	}
	return 0;
}

int subscriber_set_init(struct subscriber_set *s,
			const struct harvest_domain *layout)
{
	return subscriber_set_init_mem(s, layout, NULL);
}

int subscriber_set_adopt(struct subscriber_set *s,
			 const struct harvest_domain *layout,
			 struct bitmem *mem, uint64_t *pending,
			 uint64_t *flight)
{
	*s = (struct subscriber_set){
		.layout = layout,
		.mem = mem,
		.nwords = layout->nwords,
		.pending = pending,
		.flight = flight,
	};
	/* OR first, zero after: a crash in between only repeats this;
	 * the holes of flight are skipped, not read */
	for (uint64_t w = 0, end; w < s->nwords; w = end) {
		end = bitmem_data(mem, flight, s->nwords, &w);
		for (; w < end; w++)
			if (flight[w])
				__atomic_fetch_or(&pending[w], flight[w],
						  __ATOMIC_RELAXED);
	}
	bitmem_zero(mem, flight, s->nwords);
	/* the summary and the count are RAM's: rebuilt from pending */
	if (set_alloc_sums(s) < 0) {
		*s = (struct subscriber_set){ 0 };
		return -ENOMEM;
	}
	sum_rebuild(mem, pending, s->nwords, s->sum, &s->npending);
	return 0;
}

/*
 * Nothing in flight any more: flight may forget everything.  Only the
 * blocks written since it was last cleared (fsum) are, with stores: its
 * pages stay allocated (two bitmaps a durable set, as sized), so the next
 * take writes them without a fault.  Punching them here cost a TLB
 * shootdown per ACK and a page fault (~11 us) per page at the next take
 * (110 ms against 14 ms on the heap at 0.01 % uniform, 1 TiB).
 */
static void flight_settle(struct subscriber_set *s)
{
	uint64_t nsum = subscriber_blocks_words(s->nwords);

	/* frozen: generations given back are not in pending yet */
	if (!s->flight || s->inflight || s->frozen)
		return;
	for (uint64_t j = 0; j < nsum; j++) {
		uint64_t m = s->fsum[j];

		s->fsum[j] = 0;
		while (m) {
			/* a run of blocks at a time */
			unsigned int lo = __builtin_ctzll(m);
			uint64_t run = m >> lo;
			unsigned int k = ~run ? (unsigned int)__builtin_ctzll(~run) :
						 64 - lo;
			uint64_t w0 = (j * 64 + lo) * BW;
			uint64_t w1 = w0 + (uint64_t)k * BW;

			if (w1 > s->nwords)
				w1 = s->nwords;
			memset(s->flight + w0, 0, (w1 - w0) * 8);
			m &= lo + k < 64 ? ~0ULL << (lo + k) : 0;
		}
	}
}

static void gen_free(struct subscriber_gen *g)
{
	if (!g)
		return;
	if (g->pins) {
		/* a snapshot reads it: freed when the last pin goes */
		g->orphan = true;
		g->next = NULL;
		return;
	}
	free(g->chunks);
	free(g);
}

/* @g, unlinked, went back into pending (gen_requeue()): free it; or, the
 * set frozen, keep it for the thaw, which puts its pages back. */
static void gen_retire(struct subscriber_set *s, struct subscriber_gen *g)
{
	if (!s->frozen)
		return gen_free(g);
	g->next = s->deferred;
	s->deferred = g;
}

void subscriber_gen_free(struct subscriber_gen *g)
{
	gen_free(g);
}

void subscriber_set_release(struct subscriber_set *s)
{
	struct subscriber_gen **lists[] = { &s->inflight, &s->deferred };

	for (size_t i = 0; i < 2; i++)
		while (*lists[i]) {
			struct subscriber_gen *g = *lists[i];

			*lists[i] = g->next;
			gen_free(g);
		}
	bitmem_release(s->mem, s->pending, s->nwords);
	bitmem_release(s->mem, s->flight, s->nwords);
	free(s->sum);
	free(s->fsum);
	free(s->spare);
	*s = (struct subscriber_set){ 0 };
}

/* OR @v into *@p; the bits it made new. */
static inline uint64_t or_new(uint64_t *p, uint64_t v)
{
	return pop64(v & ~__atomic_fetch_or(p, v, __ATOMIC_RELAXED));
}

void subscriber_set_fold(struct subscriber_set *s, uint64_t at,
			 const uint64_t *src, uint64_t n)
{
	uint64_t *dst = s->pending + at, added = 0;
	uint64_t j = UINT64_MAX, marks = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = (at + i) / BW;

		if (!src[i])
			continue;
		added += or_new(&dst[i], src[i]);
		if (b / 64 != j) {
			sum_mark(s->sum, j, marks);
			j = b / 64;
			marks = 0;
		}
		marks |= 1ULL << b % 64;
	}
	sum_mark(s->sum, j, marks);
	count_add(&s->npending, added);
}

/* Bit mask of blocks [@lo, @hi] within one summary word. */
static inline uint64_t block_mask(unsigned int lo, unsigned int hi)
{
	return (hi == 63 ? ~0ULL : (2ULL << hi) - 1) & ~0ULL << lo;
}

/*
 * Ask for the lines of @m's blocks (of summary word @j) of @words before
 * the atomic RMWs on them: a locked instruction waits for the one before
 * it, so RMWs on lines not in cache would miss one after the other (a
 * sparse fold or take spends its time there); prefetches are not held up.
 */
static inline void prefetch_blocks(const uint64_t *words, uint64_t j,
				   uint64_t m)
{
	for (; m; m &= m - 1)
		for (unsigned int i = 0; i < BW; i += 8)
			__builtin_prefetch(&words[(j * 64 +
				(uint64_t)__builtin_ctzll(m)) * BW + i], 1);
}

/* Bit i set for each non-zero word i of @words[0, @n) (@n <= 64): no
 * branch per word (at 1 % uniform, half of them are zero, at random). */
static inline uint64_t nonzero_words(const uint64_t *words, uint64_t n)
{
	uint64_t nz = 0;

	for (uint64_t i = 0; i < n; i++)
		nz |= (uint64_t)(words[i] != 0) << i;
	return nz;
}

/* The words of @m's blocks (bits of summary word @j) within [@lo, @hi),
 * counted a run of blocks at a time. */
static uint64_t count_blocks(const uint64_t *bits, uint64_t j, uint64_t m,
			     uint64_t lo, uint64_t hi)
{
	uint64_t pages = 0;

	while (m) {
		unsigned int a = (unsigned int)__builtin_ctzll(m);
		uint64_t run = ~(m >> a);
		unsigned int k = run ? (unsigned int)__builtin_ctzll(run) :
				 64 - a;
		uint64_t r0 = (j * 64 + a) * BW, r1 = r0 + (uint64_t)k * BW;

		if (r0 < lo)
			r0 = lo;
		if (r1 > hi)
			r1 = hi;
		pages += extent_count_bits(bits + r0, r1 - r0);
		m &= a + k < 64 ? ~0ULL << (a + k) : 0;
	}
	return pages;
}

uint64_t subscriber_round_scan(const uint64_t *bits, uint64_t w0, uint64_t w1,
			       uint64_t *blocks)
{
	uint64_t pages = 0;

	/* a summary word (64 blocks) at a time: its blocks found without a
	 * branch each, then counted while they are in cache */
	for (uint64_t j = w0 / BW / 64; j * 64 * BW < w1; j++) {
		uint64_t jw = j * 64 * BW, m = 0;
		uint64_t lo = jw > w0 ? jw : w0;
		uint64_t hi = jw + 64 * BW < w1 ? jw + 64 * BW : w1;

		if (lo == jw && hi == jw + 64 * BW) {
			for (unsigned int k = 0; k < 64; k++) {
				uint64_t any = 0;

				for (unsigned int i = 0; i < BW; i++)
					any |= bits[jw + k * BW + i];
				m |= (uint64_t)(any != 0) << k;
			}
		} else {
			for (uint64_t w = lo; w < hi; w++)
				m |= (uint64_t)(bits[w] != 0) << (w - jw) / BW;
		}
		if (!m)
			continue;
		sum_mark(blocks, j, m);
		pages += count_blocks(bits, j, m, lo, hi);
	}
	return pages;
}

void subscriber_set_fold_blocks(struct subscriber_set *s, const uint64_t *bits,
				const uint64_t *blocks, uint64_t w0,
				uint64_t w1)
{
	uint64_t added = 0, b1;

	if (w0 >= w1)
		return;
	b1 = (w1 - 1) / BW;
	for (uint64_t b = w0 / BW; b <= b1;) {
		uint64_t j = b / 64, marks = 0;
		uint64_t m = __atomic_load_n(&blocks[j], __ATOMIC_RELAXED) &
			     block_mask(b % 64, b1 / 64 == j ? b1 % 64 : 63);

		prefetch_blocks(s->pending, j, m);
		while (m) {
			uint64_t k = j * 64 + (uint64_t)__builtin_ctzll(m);
			uint64_t lo = k * BW > w0 ? k * BW : w0;
			uint64_t hi = k * BW + BW < w1 ? k * BW + BW : w1;

			m &= m - 1;
			/* 64 words at a time (a block may be longer) */
			for (uint64_t g = lo; g < hi; g += 64) {
				uint64_t nz = nonzero_words(bits + g,
					hi - g < 64 ? hi - g : 64);

				if (nz)
					marks |= 1ULL << k % 64;
				for (; nz; nz &= nz - 1) {
					uint64_t w = g + (uint64_t)
						__builtin_ctzll(nz);

					added += or_new(&s->pending[w],
							bits[w]);
				}
			}
		}
		/* after the words: see "The summary and the count" */
		sum_mark(s->sum, j, marks);
		b = (j + 1) * 64;
	}
	count_add(&s->npending, added);
}

/* Where bits are set: a bitmap, and its summary and count if it has them
 * (NULL: none). */
struct bits_to {
	uint64_t *words;
	uint64_t *sum;
	uint64_t *count;
};

static struct bits_to pending_of(struct subscriber_set *s)
{
	return (struct bits_to){ s->pending, s->sum, &s->npending };
}

/* Set bits [@bit, @bit + @n) of @t, atomically (whole words are stored:
 * all ones whatever was there, the old value counted). */
static void words_set_bits(const struct bits_to *t, uint64_t bit, uint64_t n)
{
	uint64_t *words = t->words, added = 0;

	for (uint64_t b = bit; b < bit + n;) {
		uint64_t off = b % 64;
		uint64_t k = 64 - off < bit + n - b ? 64 - off : bit + n - b;
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;

		if (k == 64)
			added += 64 - pop64(__atomic_exchange_n(
				&words[b / 64], mask, __ATOMIC_RELAXED));
		else
			added += or_new(&words[b / 64], mask);
		b += k;
	}
	if (n)
		sum_mark_words(t->sum, bit / 64, (bit + n + 63) / 64);
	count_add(t->count, added);
}

static void pending_set_bits(struct subscriber_set *s, uint64_t bit,
			     uint64_t n)
{
	struct bits_to t = pending_of(s);

	words_set_bits(&t, bit, n);
}

void subscriber_set_mark_all(struct subscriber_set *s)
{
	const struct harvest_domain *d = s->layout;

	if (s->frozen) {
		s->frozen_mark_all = true;	/* at the thaw */
		return;
	}
	for (size_t i = 0; i < d->nranges; i++)
		pending_set_bits(s, d->ranges[i].bit,
				 d->ranges[i].length / d->page_size);
}

/* Room in @g's buffer for one more chunk of any size: the encoder writes
 * straight into it. */
static int gen_room(struct subscriber_gen *g)
{
	size_t cap = g->cap ? g->cap : 4096;
	uint8_t *p;

	if (g->len + CHUNK_MAX_SIZE <= g->cap)
		return 0;
	while (cap < g->len + CHUNK_MAX_SIZE)
		cap *= 2;
	p = realloc(g->chunks, cap);
	if (!p)
		return -ENOMEM;
	g->chunks = p;
	g->cap = cap;
	return 0;
}

/*
 * @g was acknowledged: its buffer becomes the set's spare, which the next
 * take fills (a client that keeps up reuses one buffer, never allocating
 * or faulting).  The larger of it and the spare is kept; one far larger
 * than what it held (a burst past) shrinks, so the spare stays near what
 * the subscriber's generations need.
 */
#define SPARE_SHRINK_MIN (1u << 20)

static void gen_recycle(struct subscriber_set *s, struct subscriber_gen *g)
{
	if (g->pins || g->cap <= s->spare_cap)
		return gen_free(g);
	if (g->cap >= SPARE_SHRINK_MIN && g->len < g->cap / 4) {
		size_t cap = g->len * 2 > 65536 ? g->len * 2 : 65536;
		uint8_t *p = realloc(g->chunks, cap);

		if (p) {
			g->chunks = p;
			g->cap = cap;
		}
	}
	free(s->spare);
	s->spare = g->chunks;
	s->spare_cap = g->cap;
	g->chunks = NULL;
	gen_free(g);
}

static struct subscriber_gen *gen_find(struct subscriber_set *s, uint64_t gen,
				       struct subscriber_gen ***link)
{
	struct subscriber_gen **pp = &s->inflight;

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->gen == gen) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

/*
 * A run of a generation's chunks back into pending.  A chunk was encoded
 * within one range, but the layout may have changed since (an unmapped
 * range kept as retired, then partly mapped again, is split in several):
 * the run is set range by range.
 */
static int requeue_run(void *ctx, uint64_t first, uint64_t count)
{
	struct subscriber_set *s = ctx;

	while (count) {
		uint64_t bit, left;

		if (harvest_layout_bit(s->layout, first, &bit, &left))
			return -ERANGE;
		if (left > count)
			left = count;
		pending_set_bits(s, bit, left);
		first += left;
		count -= left;
	}
	return 0;
}

static int gen_requeue(struct subscriber_set *s, struct subscriber_gen *g)
{
	if (s->frozen)
		return 0;	/* at the thaw: gen_retire() keeps it */
	for (size_t off = 0; off < g->len;) {
		int n = chunk_decode(g->chunks + off, g->len - off,
				     requeue_run, s);

		if (n < 0)
			return n;	/* our own encoding: cannot happen */
		off += n;
	}
	return 0;
}

/* @g back into pending, every page of it; should that fail (it cannot:
 * our own encoding), every page of the set, said in the log. */
static void gen_putback(struct subscriber_set *s, struct subscriber_gen *g)
{
	int r = gen_requeue(s, g);

	if (r < 0) {
		log_warning_errno(r, "giving back generation %" PRIu64
				  " failed; its subscriber gets every page",
				  g->gen);
		subscriber_set_mark_all(s);
	}
}

/* The take's cursor on the summary: the word it cleared last and what it
 * held.  The take walks pending in word order, so each summary word is
 * exchanged once, before any word of its blocks is taken (see "The
 * summary and the count"); a block two spans share is named to both. */
struct take_sum {
	uint64_t j;
	uint64_t bits;
};

static uint64_t take_sum_word(struct subscriber_set *s, struct take_sum *ts,
			      uint64_t j)
{
	if (ts->j != j) {
		ts->j = j;
		ts->bits = __atomic_load_n(&s->sum[j], __ATOMIC_RELAXED) ?
			   __atomic_exchange_n(&s->sum[j], 0,
					       __ATOMIC_ACQUIRE) : 0;
	}
	return ts->bits;
}

#define SPAN_BLOCKS ((CHUNK_WORDS + 1) / BW + 2)

/* Take word @w of pending, which held @v: durable, into flight before out
 * of pending (bits a concurrent fold adds meanwhile stay pending); on the
 * heap, exchanged.  Returns what was taken. */
static inline uint64_t take_word(struct subscriber_set *s, uint64_t w,
				 uint64_t v)
{
	if (!s->flight)
		return __atomic_exchange_n(&s->pending[w], 0,
					   __ATOMIC_RELAXED);
	__atomic_fetch_or(&s->flight[w], v, __ATOMIC_RELAXED);
	__atomic_fetch_and(&s->pending[w], ~v, __ATOMIC_RELEASE);
	return v;
}

/*
 * Move the words [@w0, @w0 + @nw) of pending that lie in blocks the
 * summary names into @raw (zero on entry; @raw[i] is word @w0 + i), one
 * atomic RMW each; the blocks written are listed in @done (*@ndone of
 * them), so that @raw can be zeroed again.  Durable: each word into flight
 * before out of pending, its block noted in fsum; bits a concurrent fold
 * adds meanwhile stay pending.  Returns the pages taken.
 */
static uint64_t take_words(struct subscriber_set *s, struct take_sum *ts,
			   uint64_t w0, uint64_t nw, uint64_t *raw,
			   uint64_t *done, unsigned int *ndone)
{
	uint64_t pages = 0, b1 = (w0 + nw - 1) / BW;

	for (uint64_t b = w0 / BW; b <= b1;) {
		uint64_t j = b / 64, written = 0;
		uint64_t m = take_sum_word(s, ts, j) &
			     block_mask(b % 64, b1 / 64 == j ? b1 % 64 : 63);

		prefetch_blocks(s->pending, j, m);
		if (s->flight)
			prefetch_blocks(s->flight, j, m);

		while (m) {
			uint64_t k = j * 64 + (uint64_t)__builtin_ctzll(m);
			uint64_t lo = k * BW > w0 ? k * BW : w0;
			uint64_t hi = k * BW + BW < w0 + nw ? k * BW + BW :
				      w0 + nw;
			uint64_t any = 0, nz;

			m &= m - 1;
			/* the loads first, then the RMWs of non-zero words:
			 * no branch per word */
			for (uint64_t w = lo; w < hi; w++)
				raw[w - w0] = __atomic_load_n(&s->pending[w],
							      __ATOMIC_RELAXED);
			for (uint64_t g = lo; g < hi; g += 64) {
				nz = nonzero_words(raw + (g - w0), hi - g < 64 ?
						   hi - g : 64);
				for (; nz; nz &= nz - 1) {
					uint64_t w = g + (uint64_t)
						__builtin_ctzll(nz);
					uint64_t v = take_word(s, w,
							       raw[w - w0]);

					raw[w - w0] = v;
					pages += pop64(v);
					any |= v;
				}
			}
			if (any) {
				done[(*ndone)++] = k;
				written |= 1ULL << k % 64;
			}
		}
		if (s->fsum)
			s->fsum[j] |= written;
		b = (j + 1) * 64;
	}
	return pages;
}

/*
 * Every page pending into a new generation: range by range, span by span
 * of CHUNK_MAX_PAGES pages, each span's words from the blocks the summary
 * names (take_words()), encoded straight into the generation's buffer
 * (the spare of the last acknowledged one, grown before each chunk so that
 * any chunk fits).  Chunks start at multiples of CHUNK_MAX_PAGES pages,
 * which the layout puts on word boundaries, except a range's first chunk:
 * its words hold nothing else (ranges never share a word), so they are
 * taken whole and shifted down.
 */
int subscriber_set_take(struct subscriber_set *s, uint64_t gen,
			struct subscriber_gen **out)
{
	const struct harvest_domain *d = s->layout;
	struct subscriber_gen *g, **tail;
	uint64_t raw[CHUNK_WORDS + 1] = { 0 }, words[CHUNK_WORDS];
	uint64_t done[SPAN_BLOCKS];
	struct take_sum ts = { .j = UINT64_MAX };
	int r;

	if (s->frozen)
		return -EBUSY;
	if (gen_find(s, gen, NULL))
		return -EEXIST;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->gen = gen;
	g->chunks = s->spare;
	g->cap = s->spare_cap;
	s->spare = NULL;
	s->spare_cap = 0;

	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *rg = &d->ranges[i];
		uint64_t page = rg->iova / d->page_size;
		uint64_t end = page + rg->length / d->page_size;

		for (uint32_t span; page < end; page += span) {
			uint64_t cut = (page / CHUNK_MAX_PAGES + 1) *
				       CHUNK_MAX_PAGES;
			uint64_t bit = rg->bit + (page - rg->iova /
						  d->page_size);
			uint64_t w0 = bit / 64, nw, taken;
			unsigned int sh = bit % 64, ndone = 0;
			const uint64_t *bits = raw;

			span = (uint32_t)((cut < end ? cut : end) - page);
			nw = (sh + span + 63) / 64;
			taken = take_words(s, &ts, w0, nw, raw, done, &ndone);
			if (!ndone)
				continue;
			__atomic_fetch_sub(&s->npending, taken,
					   __ATOMIC_RELAXED);
			if (sh) {
				for (uint64_t w = 0; w < (span + 63) / 64; w++)
					words[w] = raw[w] >> sh |
						(w + 1 < nw ?
						 raw[w + 1] << (64 - sh) : 0);
				bits = words;
			}
			r = gen_room(g);
			if (!r)
				r = chunk_encode(page, span, bits,
						 g->chunks + g->len);
			if (r < 0) {
				/* give back this span, and the rest */
				subscriber_set_fold(s, w0, raw, nw);
				gen_putback(s, g);
				gen_free(g);
				return r;
			}
			g->len += (size_t)r;
			g->pages += taken;
			for (unsigned int k = 0; k < ndone; k++) {
				uint64_t lo = done[k] * BW > w0 ?
					      done[k] * BW : w0;
				uint64_t hi = done[k] * BW + BW < w0 + nw ?
					      done[k] * BW + BW : w0 + nw;

				memset(raw + (lo - w0), 0, (hi - lo) * 8);
			}
		}
	}
	for (tail = &s->inflight; *tail; tail = &(*tail)->next)
		;
	*tail = g;
	*out = g;
	return 0;
}

/* @g's link in the in-flight list; NULL if not there. */
static struct subscriber_gen **gen_link(struct subscriber_set *s,
					const struct subscriber_gen *g)
{
	struct subscriber_gen **pp = &s->inflight;

	while (*pp && *pp != g)
		pp = &(*pp)->next;
	return *pp ? pp : NULL;
}

uint64_t subscriber_set_delivered(struct subscriber_set *s,
				  struct subscriber_gen *g)
{
	(void)s;
	g->delivered = true;
	return g->pages;
}

void subscriber_set_giveback(struct subscriber_set *s,
			     struct subscriber_gen *g)
{
	struct subscriber_gen **link = gen_link(s, g);

	if (!link)
		return;
	gen_putback(s, g);
	*link = g->next;
	gen_retire(s, g);
	flight_settle(s);
}

void subscriber_set_detach(struct subscriber_set *s, struct subscriber_gen *g)
{
	struct subscriber_gen **link = gen_link(s, g);

	if (link)
		*link = g->next;
	g->next = NULL;
	flight_settle(s);
}

int subscriber_set_ack(struct subscriber_set *s, uint64_t gen)
{
	struct subscriber_gen **link, *g = gen_find(s, gen, &link);

	if (s->frozen)
		return -EBUSY;
	if (!g || !g->delivered)
		return -ENOENT;
	*link = g->next;
	gen_recycle(s, g);
	flight_settle(s);
	return 0;
}

int subscriber_set_requeue(struct subscriber_set *s, uint64_t gen)
{
	struct subscriber_gen **link, *g;
	int r;

	if (gen == UINT64_MAX) {
		while (s->inflight) {
			g = s->inflight;
			r = gen_requeue(s, g);
			if (r < 0)
				return r;
			s->inflight = g->next;
			gen_retire(s, g);
		}
		flight_settle(s);
		return 0;
	}
	g = gen_find(s, gen, &link);
	if (!g)
		return -ENOENT;
	r = gen_requeue(s, g);
	if (r < 0)
		return r;
	*link = g->next;
	gen_retire(s, g);
	flight_settle(s);
	return 0;
}

int subscriber_set_trim(struct subscriber_set *s, unsigned int keep)
{
	unsigned int n = 0, back = 0;
	int r;

	for (const struct subscriber_gen *g = s->inflight; g; g = g->next)
		n++;
	while (n > keep) {
		struct subscriber_gen *g = s->inflight;

		r = gen_requeue(s, g);
		if (r < 0)
			return r;
		s->inflight = g->next;
		gen_retire(s, g);
		n--;
		back++;
	}
	flight_settle(s);
	return (int)back;
}

uint64_t subscriber_set_pending_pages(const struct subscriber_set *s)
{
	int64_t n = (int64_t)__atomic_load_n(&s->npending, __ATOMIC_RELAXED);

	return n < 0 ? 0 : (uint64_t)n;	/* a take ahead of a fold */
}

size_t subscriber_set_memory(const struct subscriber_set *s)
{
	size_t n = s->nwords * 8 * (s->flight ? 2 : 1) + s->spare_cap +
		   subscriber_blocks_words(s->nwords) * 8 * (s->fsum ? 2 : 1);

	for (const struct subscriber_gen *g = s->inflight; g; g = g->next)
		n += sizeof(*g) + g->cap;
	return n;
}

/* Is any bit of [@bit, @bit + @n) set in @words? */
static bool bits_any(const uint64_t *words, uint64_t bit, uint64_t n)
{
	for (uint64_t b = bit; b < bit + n;) {
		uint64_t off = b % 64;
		uint64_t k = 64 - off < bit + n - b ? 64 - off : bit + n - b;
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;

		if (__atomic_load_n(&words[b / 64], __ATOMIC_RELAXED) & mask)
			return true;
		b += k;
	}
	return false;
}

struct holds_ctx {
	uint64_t first, end;	/* pages */
	bool found;
};

static int holds_run(void *ctx, uint64_t first, uint64_t count)
{
	struct holds_ctx *h = ctx;

	if (first < h->end && first + count > h->first) {
		h->found = true;
		return 1;	/* stop */
	}
	return 0;
}

/* Does @pending (laid out by @d) hold a page of [@iova, @iova + @length)? */
static bool pending_holds(const struct harvest_domain *d,
			  const uint64_t *pending, uint64_t iova,
			  uint64_t length)
{
	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t lo = r->iova > iova ? r->iova : iova;
		uint64_t hi = r->iova + r->length < iova + length ?
			      r->iova + r->length : iova + length;

		if (lo < hi && bits_any(pending, r->bit +
					(lo - r->iova) / d->page_size,
					(hi - lo) / d->page_size))
			return true;
	}
	return false;
}

static struct holds_ctx holds_of(const struct harvest_domain *d,
				  uint64_t iova, uint64_t length)
{
	return (struct holds_ctx){
		.first = iova / d->page_size,
		.end = (iova + length) / d->page_size,
	};
}

/* Does generation @g hold a page of @h's pages? */
static bool gen_holds(const struct subscriber_gen *g, struct holds_ctx *h)
{
	for (size_t off = 0; off < g->len && !h->found;) {
		int n = chunk_decode(g->chunks + off, g->len - off, holds_run,
				     h);

		if (n <= 0)
			break;
		off += n;
	}
	return h->found;
}

bool subscriber_set_holds(const struct subscriber_set *s, uint64_t iova,
			  uint64_t length)
{
	struct holds_ctx h = holds_of(s->layout, iova, length);
	const struct subscriber_gen *lists[] = { s->inflight, s->deferred };

	if (pending_holds(s->layout, s->pending, iova, length))
		return true;
	for (size_t i = 0; i < 2; i++)
		for (const struct subscriber_gen *g = lists[i]; g; g = g->next)
			if (gen_holds(g, &h))
				return true;
	return false;
}

bool subscriber_snap_holds(const struct subscriber_snap *snap, uint64_t iova,
			   uint64_t length)
{
	struct holds_ctx h = holds_of(snap->layout, iova, length);

	if (pending_holds(snap->layout, snap->pending, iova, length))
		return true;
	for (size_t i = 0; i < snap->ngens; i++)
		if (gen_holds(snap->gens[i], &h))
			return true;
	return false;
}

/* OR bits [@sbit, @sbit + @n) of @src into @dst (nobody else's) from bit
 * @dbit on.  The layout puts a page at a bit congruent to it modulo 32768
 * in every plan, so source and destination share their place in a word:
 * whole words are ORed as they are, and words that are zero are not
 * written (a memfd page written is a page allocated). */
static void bits_or_run(uint64_t *dst, uint64_t dbit, const uint64_t *src,
			uint64_t sbit, uint64_t n)
{
	uint64_t off = dbit % 64;

	if (off != sbit % 64) {
		/* cannot happen (see above); a bit at a time, correct */
		for (uint64_t i = 0; i < n; i++)
			if (__atomic_load_n(&src[(sbit + i) / 64],
					    __ATOMIC_RELAXED) &
			    1ULL << (sbit + i) % 64)
				dst[(dbit + i) / 64] |= 1ULL << (dbit + i) % 64;
		return;
	}
	while (n) {
		uint64_t k = 64 - off < n ? 64 - off : n;
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;
		uint64_t v = __atomic_load_n(&src[sbit / 64],
					     __ATOMIC_RELAXED) & mask;

		if (v)
			dst[dbit / 64] |= v;
		dbit += k;
		sbit += k;
		n -= k;
		off = 0;
	}
}

/* Copy every set bit of @from (laid out by @old) that has a place in
 * @layout to that place in @to: for each old range, the runs it shares
 * with new ranges.  Both are sorted by IOVA: one walk over both. */
static void relayout_copy(const struct harvest_domain *old,
			  const uint64_t *from,
			  const struct harvest_domain *layout, uint64_t *to)
{
	uint64_t ps = old->page_size;
	size_t k0 = 0;

	for (size_t i = 0; i < old->nranges; i++) {
		const struct harvest_range *r = &old->ranges[i];
		uint64_t first = r->iova / ps, end = first + r->length / ps;

		while (k0 < layout->nranges &&
		       (layout->ranges[k0].iova + layout->ranges[k0].length) /
		       ps <= first)
			k0++;
		for (size_t k = k0; k < layout->nranges; k++) {
			const struct harvest_range *nr = &layout->ranges[k];
			uint64_t nfirst = nr->iova / ps;
			uint64_t nend = nfirst + nr->length / ps;
			uint64_t lo = first > nfirst ? first : nfirst;
			uint64_t hi = end < nend ? end : nend;

			if (nfirst >= end)
				break;
			if (lo < hi)
				bits_or_run(to, nr->bit + (lo - nfirst), from,
					    r->bit + (lo - first), hi - lo);
		}
	}
}

/* Has every page pending in @pending (laid out by @old) a place in
 * @layout?  One walk over both. */
static bool relayout_places(const struct harvest_domain *old,
			    const uint64_t *pending,
			    const struct harvest_domain *layout)
{
	uint64_t ps = old->page_size;
	size_t k = 0;

	for (size_t i = 0; i < old->nranges; i++) {
		const struct harvest_range *r = &old->ranges[i];
		uint64_t first = r->iova / ps, end = first + r->length / ps;

		for (uint64_t p = first; p < end;) {
			uint64_t nfirst = UINT64_MAX, nend = UINT64_MAX, hi;

			while (k < layout->nranges &&
			       (layout->ranges[k].iova +
				layout->ranges[k].length) / ps <= p)
				k++;
			if (k < layout->nranges) {
				nfirst = layout->ranges[k].iova / ps;
				nend = nfirst + layout->ranges[k].length / ps;
			}
			if (nfirst <= p) {	/* mapped in both */
				p = nend < end ? nend : end;
				continue;
			}
			/* no place up to the next new range */
			hi = nfirst < end ? nfirst : end;
			if (bits_any(pending, r->bit + (p - first), hi - p))
				return false;
			p = hi;
		}
	}
	return true;
}

/* The live set @s as a snapshot (no generations): its own use. */
static struct subscriber_snap snap_of(struct subscriber_set *s)
{
	return (struct subscriber_snap){
		.layout = s->layout,
		.mem = s->mem,
		.nwords = s->nwords,
		.pending = s->pending,
		.sum = s->sum,
		.npending = &s->npending,
		.flight = s->flight,
		.flight_idle = !s->inflight && !s->deferred,
	};
}

int subscriber_snap_move(const struct subscriber_snap *snap,
			 const struct harvest_domain *layout,
			 struct subscriber_set *out)
{
	const struct harvest_domain *old = snap->layout;
	struct subscriber_set n = {
		.layout = layout,
		.mem = snap->mem,
		.nwords = layout->nwords,
	};

	if (old->page_size != layout->page_size)
		return -EINVAL;
	if (!relayout_places(old, snap->pending, layout))
		return -ERANGE;
	n.pending = bitmem_alloc(n.mem, n.nwords);
	if (!n.pending)
		return -ENOMEM;
	if (snap->flight) {
		n.flight = bitmem_alloc(n.mem, n.nwords);
		if (!n.flight) {
			bitmem_release(n.mem, n.pending, n.nwords);
			return -ENOMEM;
		}
	}
	if (set_alloc_sums(&n) < 0) {
		bitmem_release(n.mem, n.pending, n.nwords);
		bitmem_release(n.mem, n.flight, n.nwords);
		return -ENOMEM;
	}
	/* nothing in flight: the new flight stays zero (a hole) */
	if (n.flight && !snap->flight_idle) {
		uint64_t ignored;

		/* pages of flight without a place are in no generation
		 * (those keep their ranges retired): they may go */
		relayout_copy(old, snap->flight, layout, n.flight);
		/* where the new flight was written, for its settle */
		sum_rebuild(n.mem, n.flight, n.nwords, n.fsum, &ignored);
	}
	relayout_copy(old, snap->pending, layout, n.pending);
	/* a whole rewrite: summary and count from what it wrote */
	sum_rebuild(n.mem, n.pending, n.nwords, n.sum, &n.npending);
	*out = n;
	return 0;
}

/* Pages [@iova, @iova + @length) of the range of @d holding them pending
 * in @t. */
static void words_mark_range(const struct harvest_domain *d,
			     const struct bits_to *t, uint64_t iova,
			     uint64_t length)
{
	uint64_t bit, left;

	if (!harvest_layout_bit(d, iova / d->page_size, &bit, &left))
		words_set_bits(t, bit, length / d->page_size < left ?
			       length / d->page_size : left);
}

void subscriber_snap_mark(struct subscriber_snap *snap, uint64_t iova,
			  uint64_t length)
{
	struct bits_to t = { snap->pending, snap->sum, snap->npending };

	words_mark_range(snap->layout, &t, iova, length);
}

void subscriber_set_mark_range(struct subscriber_set *s, uint64_t iova,
			       uint64_t length)
{
	struct bits_to t = pending_of(s);

	words_mark_range(s->layout, &t, iova, length);
}

/* @s takes the bitmaps and layout of @moved (subscriber_snap_move()'s,
 * emptied); its own are released. */
static void set_take_bitmaps(struct subscriber_set *s,
			     struct subscriber_set *moved)
{
	bitmem_release(s->mem, s->pending, s->nwords);
	bitmem_release(s->mem, s->flight, s->nwords);
	free(s->sum);
	free(s->fsum);
	s->pending = moved->pending;
	s->flight = moved->flight;
	s->nwords = moved->nwords;
	s->layout = moved->layout;
	s->sum = moved->sum;
	s->fsum = moved->fsum;
	s->npending = moved->npending;
	*moved = (struct subscriber_set){ 0 };
}

int subscriber_set_relayout(struct subscriber_set *s,
			    const struct harvest_domain *layout)
{
	struct subscriber_snap snap = snap_of(s);
	struct subscriber_set moved;
	int r;

	if (s->frozen)
		return -EBUSY;
	r = subscriber_snap_move(&snap, layout, &moved);
	if (r < 0)
		return r;
	set_take_bitmaps(s, &moved);
	return 0;
}

int subscriber_set_freeze(struct subscriber_set *s,
			  struct subscriber_snap *snap)
{
	struct subscriber_gen **gens;
	size_t n = 0;

	for (struct subscriber_gen *g = s->inflight; g; g = g->next)
		n++;
	gens = calloc(n ? n : 1, sizeof(*gens));
	if (!gens)
		return -ENOMEM;
	*snap = snap_of(s);
	snap->gens = gens;
	for (struct subscriber_gen *g = s->inflight; g; g = g->next) {
		g->pins++;
		gens[snap->ngens++] = g;
	}
	s->frozen = true;
	return 0;
}

void subscriber_set_thaw(struct subscriber_set *s, struct subscriber_snap *snap,
			 struct subscriber_set *moved,
			 const struct harvest_domain *layout)
{
	struct subscriber_gen *list;
	bool all = s->frozen_mark_all;

	if (moved && moved->pending)
		set_take_bitmaps(s, moved);
	else if (layout)
		s->layout = layout;
	s->frozen = false;
	s->frozen_mark_all = false;
	for (size_t i = 0; i < snap->ngens; i++) {
		struct subscriber_gen *g = snap->gens[i];

		if (!--g->pins && g->orphan)
			gen_free(g);
	}
	free(snap->gens);
	*snap = (struct subscriber_snap){ 0 };
	/* what was given back meanwhile, into the layout the set has now */
	list = s->deferred;
	s->deferred = NULL;
	while (list) {
		struct subscriber_gen *g = list;

		list = g->next;
		gen_putback(s, g);
		gen_free(g);
	}
	if (all)
		subscriber_set_mark_all(s);
	flight_settle(s);
}
