// SPDX-License-Identifier: MIT
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bitmem.h"
#include "daemon/harvest.h"
#include "daemon/log.h"
#include "daemon/subscriber.h"
#include "protocol/chunk.h"

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

	if (!s->flight || s->inflight || !n)
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
	if (g) {
		free(g->chunks);
		free(g);
	}
}

void subscriber_gen_free(struct subscriber_gen *g)
{
	gen_free(g);
}

void subscriber_set_release(struct subscriber_set *s)
{
	while (s->inflight) {
		struct subscriber_gen *g = s->inflight;

		s->inflight = g->next;
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

void subscriber_set_fold_batch(void *ctx, const struct harvest_batch *batch)
{
	struct subscriber_set *s = ctx;

	subscriber_set_fold(s, (uint64_t)(batch->bitmap -
					  batch->dom->bitmap),
			    batch->bitmap, batch->nwords);
}

/* Set bits [@bit, @bit + @n) of pending, atomically. */
static void pending_set_bits(struct subscriber_set *s, uint64_t bit,
			     uint64_t n)
{
	for (uint64_t b = bit; b < bit + n;) {
		uint64_t off = b % 64;
		uint64_t k = 64 - off < bit + n - b ? 64 - off : bit + n - b;
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;

		__atomic_fetch_or(&s->pending[b / 64], mask, __ATOMIC_RELAXED);
		b += k;
	}
}

void subscriber_set_mark_all(struct subscriber_set *s)
{
	const struct harvest_domain *d = s->layout;

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
 * Where does page @page (IOVA / page size) live in pending?  *@left: the
 * pages from it to the end of its range (NULL if not wanted).
 */
static int page_to_bit(const struct harvest_domain *d, uint64_t page,
		       uint64_t *bit, uint64_t *left)
{
	size_t lo = 0, hi = d->nranges;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct harvest_range *r = &d->ranges[mid];
		uint64_t first = r->iova / d->page_size;
		uint64_t end = first + r->length / d->page_size;

		if (page < first)
			hi = mid;
		else if (page >= end)
			lo = mid + 1;
		else {
			*bit = r->bit + (page - first);
			if (left)
				*left = end - page;
			return 0;
		}
	}
	return -ERANGE;
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

		if (page_to_bit(s->layout, first, &bit, &left))
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
				for (uint64_t w = 0; w < (span + 63) / 64u; w++)
					g->pages += __builtin_popcountll(words[w]);
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
	gen_free(g);
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
			gen_free(g);
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
	gen_free(g);
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
		gen_free(g);
		n--;
		back++;
	}
	flight_settle(s);
	return (int)back;
}

uint64_t subscriber_set_pending_pages(const struct subscriber_set *s)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < s->nwords; w++)
		n += __builtin_popcountll(__atomic_load_n(&s->pending[w],
							  __ATOMIC_RELAXED));
	return n;
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

bool subscriber_set_holds(const struct subscriber_set *s, uint64_t iova,
			  uint64_t length)
{
	const struct harvest_domain *d = s->layout;
	struct holds_ctx h = {
		.first = iova / d->page_size,
		.end = (iova + length) / d->page_size,
	};

	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t lo = r->iova > iova ? r->iova : iova;
		uint64_t hi = r->iova + r->length < iova + length ?
			      r->iova + r->length : iova + length;

		if (lo < hi && bits_any(s->pending, r->bit +
					(lo - r->iova) / d->page_size,
					(hi - lo) / d->page_size))
			return true;
	}
	for (const struct subscriber_gen *g = s->inflight; g && !h.found;
	     g = g->next)
		for (size_t off = 0; off < g->len && !h.found;) {
			int n = chunk_decode(g->chunks + off, g->len - off,
					     holds_run, &h);

			if (n <= 0)
				break;
			off += n;
		}
	return h.found;
}

/* Copy every set bit of @from (laid out by @old) that has a place in
 * @layout to that place in @to. */
/* 64 bits of @src from bit @bit on (bits past the caller's end may be
 * anything: the caller masks them). */
static uint64_t bits_get64(const uint64_t *src, uint64_t bit, uint64_t nw)
{
	uint64_t w = bit / 64, sh = bit % 64;
	uint64_t v = __atomic_load_n(&src[w], __ATOMIC_RELAXED) >> sh;

	if (sh && w + 1 < nw)
		v |= __atomic_load_n(&src[w + 1], __ATOMIC_RELAXED) <<
		     (64 - sh);
	return v;
}

/* OR bits [@sbit, @sbit + @n) of @src (@snw words) into @dst from bit
 * @dbit on, a word at a time. */
static void bits_or_run(uint64_t *dst, uint64_t dbit, const uint64_t *src,
			uint64_t snw, uint64_t sbit, uint64_t n)
{
	while (n) {
		uint64_t off = dbit % 64;
		uint64_t k = 64 - off < n ? 64 - off : n;
		uint64_t v = bits_get64(src, sbit, snw);

		if (k < 64)
			v &= (1ULL << k) - 1;
		if (v)
			dst[dbit / 64] |= v << off;
		dbit += k;
		sbit += k;
		n -= k;
	}
}

/* Copy every set bit of @from (laid out by @old) that has a place in
 * @layout to that place in @to: for each old range, the runs it shares
 * with new ranges, word by word (a bit at a time took seconds of the event
 * loop for a terabyte). */
static void relayout_copy(const struct harvest_domain *old,
			  const uint64_t *from,
			  const struct harvest_domain *layout, uint64_t *to)
{
	uint64_t ps = old->page_size;

	for (size_t i = 0; i < old->nranges; i++) {
		const struct harvest_range *r = &old->ranges[i];
		uint64_t first = r->iova / ps, end = first + r->length / ps;

		for (size_t k = 0; k < layout->nranges; k++) {
			const struct harvest_range *nr = &layout->ranges[k];
			uint64_t nfirst = nr->iova / ps;
			uint64_t nend = nfirst + nr->length / ps;
			uint64_t lo = first > nfirst ? first : nfirst;
			uint64_t hi = end < nend ? end : nend;

			if (nfirst >= end)
				break;	/* ranges are sorted by IOVA */
			if (lo >= hi)
				continue;
			bits_or_run(to, nr->bit + (lo - nfirst), from,
				    old->nwords, r->bit + (lo - first),
				    hi - lo);
		}
	}
}

int subscriber_set_relayout(struct subscriber_set *s,
			    const struct harvest_domain *layout)
{
	const struct harvest_domain *old = s->layout;
	uint64_t *bits, *flight = NULL;

	if (old->page_size != layout->page_size)
		return -EINVAL;
	/* every pending page must have a place in the new layout */
	for (size_t i = 0; i < old->nranges; i++) {
		const struct harvest_range *r = &old->ranges[i];
		uint64_t pages = r->length / old->page_size;
		uint64_t bit;

		for (uint64_t p = 0; p < pages;) {
			uint64_t page = r->iova / old->page_size + p;
			uint64_t n = pages - p;

			if (!page_to_bit(layout, page, &bit, NULL)) {
				/* mapped in both: skip to the end of the new
				 * range holding it */
				for (size_t k = 0; k < layout->nranges; k++) {
					const struct harvest_range *nr =
						&layout->ranges[k];
					uint64_t nfirst = nr->iova /
							  layout->page_size;
					uint64_t nend = nfirst + nr->length /
							layout->page_size;

					if (page >= nfirst && page < nend &&
					    nend - page < n)
						n = nend - page;
				}
			} else {
				/* no place: up to the next new range, or the
				 * end of this one */
				for (size_t k = 0; k < layout->nranges; k++) {
					uint64_t nfirst = layout->ranges[k].iova /
							  layout->page_size;

					if (nfirst > page && nfirst - page < n)
						n = nfirst - page;
				}
				if (bits_any(s->pending, r->bit + p, n))
					return -ERANGE;
			}
			p += n;
		}
	}
	bits = bitmem_alloc(s->mem, layout->nwords);
	if (!bits)
		return -ENOMEM;
	if (s->flight) {
		flight = bitmem_alloc(s->mem, layout->nwords);
		if (!flight) {
			bitmem_release(s->mem, bits, layout->nwords);
			return -ENOMEM;
		}
		/* pages of flight without a place are in no generation
		 * (those keep their ranges retired): they may go */
		relayout_copy(old, s->flight, layout, flight);
	}
	relayout_copy(old, s->pending, layout, bits);
	bitmem_release(s->mem, s->pending, s->nwords);
	bitmem_release(s->mem, s->flight, s->nwords);
	s->pending = bits;
	s->flight = flight;
	s->nwords = layout->nwords;
	s->layout = layout;
	/* anything of the new flight may be set */
	s->flight_lo = 0;
	s->flight_hi = flight ? s->nwords : 0;
	return 0;
}
