// SPDX-License-Identifier: MIT
/*
 * Planning a domain's harvest: the bitmap layout and the batches.
 *
 * Owns: the harvest layout.  Where each mapped page's bit lives, the
 * heads and their bounce words, are decided here and read only through
 * the harvest_layout_*() functions (harvest.h); the engine (harvest.c)
 * runs the batches this file cuts, bounce words included.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/harvest/harvest.h"

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/*
 * Layout.  Two facts of the real kernel shape it:
 *  - a read that ends inside a dirty huge leaf records the whole leaf,
 *    past the end of the read (intel/amd/mock read_and_clear_dirty), and a
 *    clearing read clears the whole leaf: so no read may end inside a leaf.
 *    Leaves are aligned to their size (at most 1 GiB) and never cross a
 *    mapping's end, so reads end only at range ends or at multiples of
 *    the batch size, which is at least 1 GiB;
 *  - bit 0 of a read is its first page: a slice must start on a whole
 *    byte of the bitmap, and on a page of it to pin whole windows.
 * So each range's bits are placed so that page p of IOVA sits at a bit
 * congruent to p modulo RANGE_ALIGN_BITS (one 4 KiB page of bitmap): every
 * cut at a multiple of the batch size then starts a page of the bitmap.
 * The first pages of a range up to a 64-page boundary (the "head": only
 * small leaves fit there) are read into the batch's own word and shifted
 * into place.  Ranges never share a word.
 */
#define RANGE_ALIGN_BITS (4096ULL * 8)
#define MAX_LEAF (1ULL << 30)

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

uint64_t harvest_batch_min_bytes(uint64_t page_size)
{
	uint64_t min = page_size * RANGE_ALIGN_BITS;

	return min > MAX_LEAF ? min : MAX_LEAF;
}

uint64_t harvest_batch_bytes(uint64_t total, uint64_t page_size,
			     unsigned int workers)
{
	uint64_t bytes = page_size * HARVEST_WINDOW_BITS;
	uint64_t floor = harvest_batch_min_bytes(page_size);
	uint64_t want = (uint64_t)(workers ? workers : 1) * 4;

	while (bytes > floor && total / bytes < want)
		bytes /= 2;
	return bytes;
}

int harvest_domain_set_sources(struct harvest_domain *dom,
			       const struct harvest_source *src, size_t n)
{
	struct harvest_source *s;

	if (n > HARVEST_MAX_SOURCES || (n && !src))
		return -EINVAL;
	if (dom->pending)
		return -EBUSY;
	s = calloc(n ? n : 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		s[i] = (struct harvest_source){ .kind = src[i].kind,
						.id = src[i].id };
	free(dom->sources);
	dom->sources = s;
	dom->nsources = n;
	return 0;
}

void harvest_domain_release(struct harvest_domain *dom)
{
	struct bitmem *mem = dom->mem;

	free(dom->sources);
	free(dom->ranges);
	free(dom->batches);
	struct backend *b = dom->b;

	bitmem_release(mem, dom->bitmap, harvest_layout_words(dom));
	*dom = (struct harvest_domain){ .mem = mem, .b = b };
}

uint64_t harvest_layout_words(const struct harvest_domain *dom)
{
	return dom->nwords + dom->nheads;
}

int harvest_layout_bit(const struct harvest_domain *dom, uint64_t page,
		       uint64_t *bit, uint64_t *left)
{
	size_t lo = 0, hi = dom->nranges;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct harvest_range *r = &dom->ranges[mid];
		uint64_t first = r->iova / dom->page_size;
		uint64_t end = first + r->length / dom->page_size;

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

bool harvest_layout_same(const struct harvest_domain *a,
			 const struct harvest_domain *b)
{
	if (a->nranges != b->nranges || a->nwords != b->nwords)
		return false;
	for (size_t i = 0; i < a->nranges; i++)
		if (a->ranges[i].iova != b->ranges[i].iova ||
		    a->ranges[i].length != b->ranges[i].length ||
		    a->ranges[i].bit != b->ranges[i].bit)
			return false;
	return true;
}

void harvest_range_clip(struct harvest_domain *dom,
			const struct harvest_range *rg, uint64_t *w0,
			uint64_t *w1)
{
	uint64_t n = rg->length / dom->page_size;
	unsigned int tail = (rg->bit + n) % 64;

	*w0 = rg->bit / 64;
	*w1 = (rg->bit + n + 63) / 64;
	dom->bitmap[*w0] &= ~0ULL << (rg->bit % 64);
	if (tail)
		dom->bitmap[*w1 - 1] &= (1ULL << tail) - 1;
}

void harvest_layout_restore(struct harvest_domain *dom, const uint64_t *old)
{
	uint64_t n = harvest_layout_words(dom);
	size_t h = 0;

	/* the old region's holes are zero: copy only what it holds */
	for (uint64_t w = 0, end; w < n; w = end) {
		end = bitmem_data(dom->mem, old, n, &w);
		memcpy(dom->bitmap + w, old + w, (end - w) * 8);
	}
	/* then each head's bounce word (its read, maybe not yet placed)
	 * shifted into place */
	for (size_t i = 0; i < dom->nbatches; i++) {
		struct harvest_batch *b = &dom->batches[i];

		if (b->shift)
			*b->bitmap |= old[dom->nwords + h++] << b->shift;
	}
}

/*
 * Place @d's @n ranges (checked: aligned, sorted, apart) in the layout,
 * counting their heads (d->nheads) and batches (*@nb).
 */
static int layout_ranges(struct harvest_domain *d,
			 const struct harvest_range *ranges, size_t n,
			 uint64_t batch_bytes, size_t *nb)
{
	uint64_t page_size = d->page_size, head_bytes = page_size * 64;
	uint64_t end_bit = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t first = ranges[i].iova, len = ranges[i].length;
		uint64_t last, start, bit, x;

		if (!len || (first | len) & (page_size - 1) ||
		    __builtin_add_overflow(first, len, &last) ||
		    (i && first <= ranges[i - 1].iova + ranges[i - 1].length - 1))
			return -EINVAL;
		start = align_up(end_bit, 64);
		bit = (start & ~(RANGE_ALIGN_BITS - 1)) +
		      (first / page_size) % RANGE_ALIGN_BITS;
		if (bit < start)
			bit += RANGE_ALIGN_BITS;
		d->ranges[i] = (struct harvest_range){
			.iova = first, .length = len, .bit = bit,
			.flags = ranges[i].flags & HARVEST_RANGE_SKIP,
		};
		last = first + len - 1;
		end_bit = bit + len / page_size;
		/* batches: the head, then cuts at multiples of batch_bytes */
		if (d->ranges[i].flags & HARVEST_RANGE_SKIP)
			continue;
		x = first;
		if (x % head_bytes) {
			(*nb)++;
			d->nheads++;
			x = align_up(x, head_bytes);
		}
		if (x >= first && x <= last)	/* x < first: wrapped */
			*nb += last / batch_bytes - x / batch_bytes + 1;
	}
	d->nbits = align_up(end_bit, 64);
	d->nwords = d->nbits / 64;
	return 0;
}

/* Cut @d's laid out ranges into batches: a head's into its bounce word,
 * the rest at multiples of @batch_bytes. */
static void cut_batches(struct harvest_domain *d, uint64_t batch_bytes)
{
	uint64_t page_size = d->page_size, head_bytes = page_size * 64;
	size_t k = 0, h = 0;

	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t x = r->iova, end = r->iova + r->length;

		if (r->flags & HARVEST_RANGE_SKIP)
			continue;
		while (x != end) {
			uint64_t bit = r->bit + (x - r->iova) / page_size;
			uint64_t stop, cut;

			if (x % head_bytes) {
				cut = align_up(x, head_bytes);
				stop = (cut && cut < end) ? cut : end;
				d->batches[k++] = (struct harvest_batch){
					.iova = x,
					.length = stop - x,
					.bitmap = d->bitmap + bit / 64,
					.nwords = 1,
					.shift = bit % 64,
					.bounce = d->bitmap + d->nwords + h++,
				};
			} else {
				cut = (x | (batch_bytes - 1)) + 1;
				stop = (cut && cut < end) ? cut : end;
				d->batches[k++] = (struct harvest_batch){
					.iova = x,
					.length = stop - x,
					.bitmap = d->bitmap + bit / 64,
					.nwords = ((stop - x) / page_size + 63) / 64,
				};
			}
			x = stop;
		}
	}
	d->nbatches = k;
}

int harvest_domain_plan(struct harvest_domain *dom, uint32_t hwpt_id,
			uint64_t page_size, const struct harvest_range *ranges,
			size_t n, uint64_t batch_bytes)
{
	struct harvest_domain d = {
		.hwpt_id = hwpt_id,
		.page_size = page_size,
		.nranges = n,
		.mem = dom->mem,
		.b = dom->b,
		.sources = dom->sources,
		.nsources = dom->nsources,
	};
	size_t nb = 0;
	int r;

	if (!is_pow2(page_size) || (n && !ranges))
		return -EINVAL;
	if (!batch_bytes)
		batch_bytes = page_size * HARVEST_WINDOW_BITS;
	if (!is_pow2(batch_bytes) ||
	    batch_bytes < harvest_batch_min_bytes(page_size) ||
	    batch_bytes > page_size * HARVEST_WINDOW_BITS)
		return -EINVAL;

	d.ranges = calloc(n ? n : 1, sizeof(*d.ranges));
	if (!d.ranges)
		return -ENOMEM;
	r = layout_ranges(&d, ranges, n, batch_bytes, &nb);
	if (r < 0) {
		free(d.ranges);
		return r;
	}
	d.batches = calloc(nb ? nb : 1, sizeof(*d.batches));
	/* the layout, then one bounce word per head: zeroed */
	d.bitmap = bitmem_alloc(d.mem, harvest_layout_words(&d));
	if (!d.batches || !d.bitmap) {
		d.sources = NULL;	/* still @dom's */
		harvest_domain_release(&d);
		return -ENOMEM;
	}
	cut_batches(&d, batch_bytes);

	dom->sources = NULL;	/* @d's now */
	harvest_domain_release(dom);
	*dom = d;
	for (size_t i = 0; i < dom->nbatches; i++)
		dom->batches[i].dom = dom;
	return 0;
}
