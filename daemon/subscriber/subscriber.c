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
 * until no generation is in flight.  This file is the only one that
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
	if (!s->pending || (mem && !s->flight)) {
		bitmem_release(mem, s->pending, s->nwords);
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

void subscriber_set_adopt(struct subscriber_set *s,
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
}

/*
 * Nothing in flight any more: flight may forget everything.  Only the
 * words written since it was last zeroed are cleared: a store for a few
 * words, a hole punched (pages given back) only for a big span.  Every
 * acknowledgement of a client that keeps up ends here: punching each time
 * cost a TLB shootdown per ACK and halved the soak's rounds per second.
 */
#define FLIGHT_MEMSET_MAX (256 * 1024 / 8)	/* words */

static void flight_settle(struct subscriber_set *s)
{
	uint64_t n = s->flight_hi - s->flight_lo;

	/* frozen: generations given back are not in pending yet */
	if (!s->flight || s->inflight || s->frozen || !n)
		return;
	if (n <= FLIGHT_MEMSET_MAX)
		memset(s->flight + s->flight_lo, 0, n * 8);
	else
		bitmem_zero(s->mem, s->flight + s->flight_lo, n);
	s->flight_lo = s->flight_hi = 0;
}

static void flight_touch(struct subscriber_set *s, uint64_t w0, uint64_t nw)
{
	if (s->flight_hi == s->flight_lo) {
		s->flight_lo = w0;
		s->flight_hi = w0 + nw;
		return;
	}
	if (w0 < s->flight_lo)
		s->flight_lo = w0;
	if (w0 + nw > s->flight_hi)
		s->flight_hi = w0 + nw;
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
	*s = (struct subscriber_set){ 0 };
}

void subscriber_set_fold(struct subscriber_set *s, uint64_t at,
			 const uint64_t *src, uint64_t n)
{
	uint64_t *dst = s->pending + at;

	for (uint64_t i = 0; i < n; i++)
		if (src[i])
			__atomic_fetch_or(&dst[i], src[i], __ATOMIC_RELAXED);
}

/* Set bits [@bit, @bit + @n) of @words, atomically (whole words are
 * stored: all ones whatever was there). */
static void words_set_bits(uint64_t *words, uint64_t bit, uint64_t n)
{
	for (uint64_t b = bit; b < bit + n;) {
		uint64_t off = b % 64;
		uint64_t k = 64 - off < bit + n - b ? 64 - off : bit + n - b;
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;

		if (k == 64)
			__atomic_store_n(&words[b / 64], mask,
					 __ATOMIC_RELAXED);
		else
			__atomic_fetch_or(&words[b / 64], mask,
					  __ATOMIC_RELAXED);
		b += k;
	}
}

static void pending_set_bits(struct subscriber_set *s, uint64_t bit,
			     uint64_t n)
{
	words_set_bits(s->pending, bit, n);
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

static int gen_append(struct subscriber_gen *g, const uint8_t *chunk,
		      size_t len)
{
	if (g->len + len > g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4096;
		uint8_t *p;

		while (cap < g->len + len)
			cap *= 2;
		p = realloc(g->chunks, cap);
		if (!p)
			return -ENOMEM;
		g->chunks = p;
		g->cap = cap;
	}
	memcpy(g->chunks + g->len, chunk, len);
	g->len += len;
	return 0;
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

/*
 * Move the bits of pages [@page, @page + @span) of range @rg out of pending
 * into @out (bit 0 = @page), one atomic exchange per word.  Chunks start at
 * multiples of CHUNK_MAX_PAGES pages, which the layout puts on word
 * boundaries, except a range's first chunk: its words hold nothing else
 * (ranges never share a word), so they are taken whole and shifted down.
 */
static uint64_t take_span(struct subscriber_set *s,
			  const struct harvest_range *rg, uint64_t page,
			  uint32_t span, uint64_t *raw, uint64_t *out)
{
	const struct harvest_domain *d = s->layout;
	uint64_t bit = rg->bit + (page - rg->iova / d->page_size);
	uint64_t w0 = bit / 64, nw = (bit % 64 + span + 63) / 64;
	unsigned int sh = bit % 64;
	uint64_t any = 0;

	for (uint64_t w = 0; w < nw; w++) {
		uint64_t *src = &s->pending[w0 + w];
		uint64_t v = __atomic_load_n(src, __ATOMIC_RELAXED);

		/* durable: into flight before out of pending; bits a
		 * concurrent fold adds meanwhile stay pending */
		if (v && s->flight) {
			__atomic_fetch_or(&s->flight[w0 + w], v,
					  __ATOMIC_RELAXED);
			__atomic_fetch_and(src, ~v, __ATOMIC_RELEASE);
		} else if (v) {
			v = __atomic_exchange_n(src, 0, __ATOMIC_RELAXED);
		}
		raw[w] = v;
		any |= raw[w];
	}
	if (!any)
		return 0;
	if (s->flight)
		flight_touch(s, w0, nw);
	for (uint64_t w = 0; w < (span + 63) / 64; w++)
		out[w] = sh ? raw[w] >> sh |
			      (w + 1 < nw ? raw[w + 1] << (64 - sh) : 0) :
			      raw[w];
	return nw;
}

int subscriber_set_take(struct subscriber_set *s, uint64_t gen,
			struct subscriber_gen **out)
{
	const struct harvest_domain *d = s->layout;
	struct subscriber_gen *g, **tail;
	uint64_t raw[CHUNK_WORDS + 1], words[CHUNK_WORDS];
	uint8_t chunk[CHUNK_MAX_SIZE];
	int r;

	if (s->frozen)
		return -EBUSY;
	if (gen_find(s, gen, NULL))
		return -EEXIST;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->gen = gen;

	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *rg = &d->ranges[i];
		uint64_t page = rg->iova / d->page_size;
		uint64_t end = page + rg->length / d->page_size;

		while (page < end) {
			uint64_t cut = (page / CHUNK_MAX_PAGES + 1) *
				       CHUNK_MAX_PAGES;
			uint32_t span = (uint32_t)((cut < end ? cut : end) - page);
			uint64_t nw = take_span(s, rg, page, span, raw, words);

			if (nw) {
				r = chunk_encode(page, span, words, chunk);
				if (r > 0)
					r = gen_append(g, chunk, r);
				if (r < 0) {
					/* give back this span, and the rest */
					uint64_t bit = rg->bit + (page -
						rg->iova / d->page_size);

					subscriber_set_fold(s, bit / 64, raw, nw);
					gen_requeue(s, g);
					gen_free(g);
					return r;
				}
				g->pages += extent_count_bits(words,
							      (span + 63) / 64u);
			}
			page += span;
		}
	}
	/* kept until acknowledged: give back what doubling left spare */
	if (g->len < g->cap) {
		uint8_t *p = realloc(g->chunks, g->len ? g->len : 1);

		if (p) {
			g->chunks = p;
			g->cap = g->len;
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
	int r;

	if (!link)
		return;
	r = gen_requeue(s, g);
	if (r < 0) {
		log_warning_errno(r, "giving back generation %" PRIu64
				  " failed; its subscriber gets every page",
				  g->gen);
		subscriber_set_mark_all(s);
	}
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
	gen_free(g);
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
	return extent_count_bits(s->pending, s->nwords);
}

size_t subscriber_set_memory(const struct subscriber_set *s)
{
	size_t n = s->nwords * 8 * (s->flight ? 2 : 1);

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
	/* nothing in flight: the new flight stays zero (a hole) */
	if (n.flight && !snap->flight_idle) {
		/* pages of flight without a place are in no generation
		 * (those keep their ranges retired): they may go */
		relayout_copy(old, snap->flight, layout, n.flight);
		/* anything of the new flight may be set */
		n.flight_hi = n.nwords;
	}
	relayout_copy(old, snap->pending, layout, n.pending);
	*out = n;
	return 0;
}

/* Pages [@iova, @iova + @length) of the range of @d holding them pending
 * in @words. */
static void words_mark_range(const struct harvest_domain *d, uint64_t *words,
			     uint64_t iova, uint64_t length)
{
	uint64_t bit, left;

	if (!harvest_layout_bit(d, iova / d->page_size, &bit, &left))
		words_set_bits(words, bit, length / d->page_size < left ?
			       length / d->page_size : left);
}

void subscriber_snap_mark(struct subscriber_snap *snap, uint64_t iova,
			  uint64_t length)
{
	words_mark_range(snap->layout, snap->pending, iova, length);
}

void subscriber_set_mark_range(struct subscriber_set *s, uint64_t iova,
			       uint64_t length)
{
	words_mark_range(s->layout, s->pending, iova, length);
}

/* @s takes the bitmaps and layout of @moved (subscriber_snap_move()'s,
 * emptied); its own are released. */
static void set_take_bitmaps(struct subscriber_set *s,
			     struct subscriber_set *moved)
{
	bitmem_release(s->mem, s->pending, s->nwords);
	bitmem_release(s->mem, s->flight, s->nwords);
	s->pending = moved->pending;
	s->flight = moved->flight;
	s->nwords = moved->nwords;
	s->layout = moved->layout;
	s->flight_lo = moved->flight_lo;
	s->flight_hi = moved->flight_hi;
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
		int r;

		list = g->next;
		r = gen_requeue(s, g);
		if (r < 0) {
			log_warning_errno(r, "giving back generation %" PRIu64
					  " failed; its subscriber gets every "
					  "page", g->gen);
			all = true;
		}
		gen_free(g);
	}
	if (all)
		subscriber_set_mark_all(s);
	flight_settle(s);
}
