// SPDX-License-Identifier: MIT
/*
 * The subscriber set against a model of it: random folds, takes, acks,
 * givebacks, requeues, trims, mark_all, relayouts, freezes and thaws (with
 * and without a move, a range marked meanwhile), adopts, on the heap and
 * in a memfd.  After every step: pending holds exactly the model's pending
 * pages and every generation exactly its own; the kept count is a full
 * recount; every non-empty block of pending has its summary bit; flight
 * holds exactly what the takes since it was last cleared wrote, and every
 * block of it written is noted for the clear.  And an ACK leaves flight's
 * pages in memory (no page faulted back in by the next take).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_rng.h"
#include "daemon/harvest/harvest.h"
#include "daemon/subscriber/bitmem.h"
#include "daemon/subscriber/subscriber.h"
#include "protocol/chunk.h"
#include "protocol/extent.h"

#define PG 4096ULL
#define BW SUBSCRIBER_BLOCK_WORDS

/* The universe of pages: every range of every layout, back to back in
 * the model's bitmaps (first page, pages, model index). */
static const struct {
	uint64_t first, n, u;
} uni[] = {
	{ 0, 1000, 0 },				/* X: layout B only */
	{ (1ULL << 18) + 3, 70000, 1000 },	/* R0: three chunks, unaligned */
	{ (1ULL << 19) + 100, 40, 71000 },	/* R1: retired in layout C */
	{ 1ULL << 20, 33000, 71040 },		/* R2: two chunks */
};
#define NU 104040
#define UW ((NU + 63) / 64)

static uint64_t u_of(uint64_t page)
{
	for (size_t i = 0; i < sizeof(uni) / sizeof(uni[0]); i++)
		if (page >= uni[i].first && page < uni[i].first + uni[i].n)
			return uni[i].u + page - uni[i].first;
	cr_assert_fail("page %llu is in no range", (unsigned long long)page);
	return 0;
}

typedef uint64_t ubits[UW];

struct mgen {
	uint64_t gen;
	bool delivered, deferred;
	ubits pages;
};

struct model {
	struct harvest_domain lay[3];	/* A, B, C */
	int cur;
	struct bitmem *mem;
	struct subscriber_set s;
	struct subscriber_snap snap;
	bool frozen;
	ubits pending, flight;
	struct mgen gens[8];
	size_t ngens;
	uint64_t next_gen;
};

static void u_set(uint64_t *b, uint64_t u)
{
	b[u / 64] |= 1ULL << (u % 64);
}

static bool u_test(const uint64_t *b, uint64_t u)
{
	return b[u / 64] >> (u % 64) & 1;
}

static uint64_t u_count(const uint64_t *b)
{
	uint64_t n = 0;

	for (size_t i = 0; i < UW; i++)
		n += (uint64_t)__builtin_popcountll(b[i]);
	return n;
}

/* A layout's words as model pages. */
static void words_to_u(const struct harvest_domain *d, const uint64_t *words,
		       uint64_t *out)
{
	memset(out, 0, sizeof(ubits));
	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t n = r->length / PG;

		for (uint64_t k = 0; k < n; k++) {
			uint64_t bit = r->bit + k;

			if (words[bit / 64] >> (bit % 64) & 1)
				u_set(out, u_of(r->iova / PG + k));
		}
	}
}

static int gen_run(void *ctx, uint64_t first, uint64_t count)
{
	for (uint64_t p = first; p < first + count; p++)
		u_set(ctx, u_of(p));
	return 0;
}

static void gen_to_u(const struct subscriber_gen *g, uint64_t *out)
{
	memset(out, 0, sizeof(ubits));
	for (size_t off = 0; off < g->len;) {
		int r = chunk_decode(g->chunks + off, g->len - off, gen_run,
				     out);

		cr_assert_gt(r, 0);
		off += (size_t)r;
	}
}

static struct mgen *mgen_find(struct model *m, uint64_t gen)
{
	for (size_t i = 0; i < m->ngens; i++)
		if (m->gens[i].gen == gen)
			return &m->gens[i];
	return NULL;
}

static void mgen_drop(struct model *m, struct mgen *g)
{
	*g = m->gens[--m->ngens];
}

/* Into the model's pending (a generation given back). */
static void mgen_back(struct model *m, struct mgen *g)
{
	for (size_t k = 0; k < UW; k++)
		m->pending[k] |= g->pages[k];
	mgen_drop(m, g);
}

/* What the set does after an op that may empty what is in flight. */
static void model_settle(struct model *m)
{
	size_t live = 0;

	for (size_t i = 0; i < m->ngens; i++)
		live += !m->gens[i].deferred;
	if (!live && !m->frozen)
		memset(m->flight, 0, sizeof(ubits));
}

static void check(struct model *m, const char *step)
{
	struct subscriber_set *s = &m->s;
	const struct harvest_domain *d = &m->lay[m->cur];
	static ubits got;
	uint64_t nsum = subscriber_blocks_words(s->nwords);
	size_t n = 0;

	cr_assert_eq(s->layout, d, "%s: layout", step);
	words_to_u(d, s->pending, got);
	cr_assert(!memcmp(got, m->pending, sizeof(ubits)),
		  "%s: pending has %llu pages, the model %llu", step,
		  (unsigned long long)u_count(got),
		  (unsigned long long)u_count(m->pending));
	cr_assert_eq(subscriber_set_pending_pages(s),
		     extent_count_bits(s->pending, s->nwords),
		     "%s: count %llu, recount %llu", step,
		     (unsigned long long)subscriber_set_pending_pages(s),
		     (unsigned long long)extent_count_bits(s->pending,
							   s->nwords));
	for (uint64_t w = 0; w < s->nwords; w++) {
		uint64_t b = w / BW;

		if (s->pending[w])
			cr_assert(s->sum[b / 64] >> (b % 64) & 1,
				  "%s: block %llu has pages, no summary bit",
				  step, (unsigned long long)b);
		if (s->flight && s->flight[w])
			cr_assert(s->fsum[b / 64] >> (b % 64) & 1,
				  "%s: flight block %llu written, not noted",
				  step, (unsigned long long)b);
	}
	cr_assert_leq(nsum * 64 * BW, s->nwords + 64 * BW);
	if (s->flight) {
		words_to_u(d, s->flight, got);
		cr_assert(!memcmp(got, m->flight, sizeof(ubits)),
			  "%s: flight has %llu pages, the model %llu", step,
			  (unsigned long long)u_count(got),
			  (unsigned long long)u_count(m->flight));
	}
	/* every generation, in flight or given back while frozen */
	for (int list = 0; list < 2; list++)
		for (const struct subscriber_gen *g = list ? s->deferred :
						      s->inflight;
		     g; g = g->next, n++) {
			struct mgen *mg = mgen_find(m, g->gen);

			cr_assert(mg, "%s: generation %llu not in the model",
				  step, (unsigned long long)g->gen);
			cr_assert_eq(mg->deferred, list == 1, "%s", step);
			gen_to_u(g, got);
			cr_assert(!memcmp(got, mg->pages, sizeof(ubits)),
				  "%s: generation %llu differs", step,
				  (unsigned long long)g->gen);
			cr_assert_eq(g->pages, u_count(got), "%s", step);
		}
	cr_assert_eq(n, m->ngens, "%s: %zu generations, the model %zu", step,
		     n, m->ngens);
}

/* Pages of @d's ranges (not retired unless @retired too) into @out. */
static void layout_pages(const struct harvest_domain *d, bool retired,
			 uint64_t *out)
{
	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];

		if ((r->flags & HARVEST_RANGE_RETIRED) && !retired)
			continue;
		for (uint64_t k = 0; k < r->length / PG; k++)
			u_set(out, u_of(r->iova / PG + k));
	}
}

/* A round: random pages of the live ranges, folded as domain_fold() does
 * (scan once, each set its blocks), or word by word (subscriber_set_fold). */
static void op_fold(struct model *m)
{
	const struct harvest_domain *d = &m->lay[m->cur];
	uint64_t *bits = calloc(d->nwords + 1, 8);
	uint64_t *blocks = calloc(subscriber_blocks_words(d->nwords), 8);
	unsigned int shape = rng() % 4, n = shape == 3 ? 3 : 1 + rng() % 300;
	bool by_blocks = rng() % 4;

	cr_assert(bits && blocks);
	for (unsigned int i = 0; i < n; i++) {
		const struct harvest_range *r = &d->ranges[rng() % d->nranges];
		uint64_t len = r->length / PG, k = rng() % len;
		uint64_t run = shape == 3 ? 1 + rng() % 5000 :
			       shape == 2 ? 1 + rng() % 200 : 1;

		if (r->flags & HARVEST_RANGE_RETIRED)
			continue;
		for (uint64_t p = k; p < k + run && p < len; p++) {
			uint64_t bit = r->bit + p;

			bits[bit / 64] |= 1ULL << (bit % 64);
		}
	}
	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t w0 = r->bit / 64;
		uint64_t w1 = (r->bit + r->length / PG + 63) / 64, c = 0;

		if (r->flags & HARVEST_RANGE_RETIRED)
			continue;
		for (uint64_t k = 0; k < r->length / PG; k++) {
			uint64_t bit = r->bit + k;

			if (bits[bit / 64] >> (bit % 64) & 1) {
				u_set(m->pending, u_of(r->iova / PG + k));
				c++;
			}
		}
		if (by_blocks) {
			cr_assert_eq(subscriber_round_scan(bits, w0, w1,
							   blocks), c);
			subscriber_set_fold_blocks(&m->s, bits, blocks, w0,
						   w1);
		} else {
			subscriber_set_fold(&m->s, w0, bits + w0, w1 - w0);
		}
	}
	free(bits);
	free(blocks);
}

static void op_take(struct model *m)
{
	struct subscriber_gen *g;
	struct mgen *mg;

	if (m->frozen) {
		cr_assert_eq(subscriber_set_take(&m->s, m->next_gen, &g),
			     -EBUSY);
		return;
	}
	if (m->ngens == sizeof(m->gens) / sizeof(m->gens[0]))
		return;
	cr_assert_eq(subscriber_set_take(&m->s, m->next_gen, &g), 0);
	mg = &m->gens[m->ngens++];
	*mg = (struct mgen){ .gen = m->next_gen++ };
	memcpy(mg->pages, m->pending, sizeof(ubits));
	for (size_t k = 0; k < UW; k++)
		m->flight[k] |= m->pending[k];
	memset(m->pending, 0, sizeof(ubits));
	if (!m->s.flight)
		memset(m->flight, 0, sizeof(ubits));
	if (rng() % 4) {
		subscriber_set_delivered(&m->s, g);
		mg->delivered = true;
	}
}

static struct mgen *pick_gen(struct model *m, bool deferred_too)
{
	struct mgen *c[8];
	size_t n = 0;

	for (size_t i = 0; i < m->ngens; i++)
		if (deferred_too || !m->gens[i].deferred)
			c[n++] = &m->gens[i];
	return n ? c[rng() % n] : NULL;
}

static struct subscriber_gen *set_gen(struct model *m, uint64_t gen)
{
	for (struct subscriber_gen *g = m->s.inflight; g; g = g->next)
		if (g->gen == gen)
			return g;
	return NULL;
}

/* A generation given back (its stream failed), or requeued. */
static void op_back(struct model *m, bool giveback)
{
	struct mgen *mg = pick_gen(m, false);

	if (!mg)
		return;
	if (giveback)
		subscriber_set_giveback(&m->s, set_gen(m, mg->gen));
	else
		cr_assert_eq(subscriber_set_requeue(&m->s, mg->gen), 0);
	if (m->frozen)
		mg->deferred = true;
	else
		mgen_back(m, mg);
	model_settle(m);
}

static void op_ack(struct model *m)
{
	struct mgen *mg = pick_gen(m, false);

	if (!mg)
		return;
	if (m->frozen) {
		cr_assert_eq(subscriber_set_ack(&m->s, mg->gen), -EBUSY);
		return;
	}
	if (!mg->delivered) {
		cr_assert_eq(subscriber_set_ack(&m->s, mg->gen), -ENOENT);
		subscriber_set_delivered(&m->s, set_gen(m, mg->gen));
		mg->delivered = true;
		return;
	}
	cr_assert_eq(subscriber_set_ack(&m->s, mg->gen), 0);
	mgen_drop(m, mg);
	model_settle(m);
}

/* Oldest first: the set's list order is the take order. */
static void op_trim(struct model *m)
{
	unsigned int keep = rng() % 3, live = 0;
	int back = 0;

	for (size_t i = 0; i < m->ngens; i++)
		live += !m->gens[i].deferred;
	while (live > keep) {
		struct mgen *old = NULL;

		for (size_t i = 0; i < m->ngens; i++)
			if (!m->gens[i].deferred &&
			    (!old || m->gens[i].gen < old->gen))
				old = &m->gens[i];
		if (m->frozen)
			old->deferred = true;
		else
			mgen_back(m, old);
		live--;
		back++;
	}
	cr_assert_eq(subscriber_set_trim(&m->s, keep), back);
	model_settle(m);
}

static void op_requeue_all(struct model *m)
{
	cr_assert_eq(subscriber_set_requeue(&m->s, UINT64_MAX), 0);
	for (size_t i = m->ngens; i-- > 0;)
		if (m->frozen)
			m->gens[i].deferred = true;
		else
			mgen_back(m, &m->gens[i]);
	model_settle(m);
}

static bool mark_all_deferred;

static void op_mark_all(struct model *m)
{
	subscriber_set_mark_all(&m->s);
	if (m->frozen)
		mark_all_deferred = true;
	else
		layout_pages(&m->lay[m->cur], true, m->pending);
}

/* Does the model hold a page of X (layout B's own range) anywhere? */
static bool holds_x(struct model *m)
{
	for (uint64_t u = 0; u < 1000; u++) {
		if (u_test(m->pending, u) || u_test(m->flight, u))
			return true;
		for (size_t i = 0; i < m->ngens; i++)
			if (u_test(m->gens[i].pages, u))
				return true;
	}
	return false;
}

/* The layout to move to: A <-> B (X below R0 moves every bit), A <-> C
 * (R1 retired: the same places). */
static int next_layout(struct model *m)
{
	if (m->cur == 1)
		return holds_x(m) ? -1 : 0;
	if (m->cur == 2)
		return 0;
	return 1 + (int)(rng() % 2);
}

static void op_relayout(struct model *m)
{
	int to = next_layout(m);

	if (m->frozen || to < 0)
		return;
	cr_assert_eq(subscriber_set_relayout(&m->s, &m->lay[to]), 0);
	m->cur = to;
}

static void op_freeze(struct model *m)
{
	cr_assert_eq(subscriber_set_freeze(&m->s, &m->snap), 0);
	m->frozen = true;
	mark_all_deferred = false;
}

/* The change's thread marks a range it mapped (into the snapshot). */
static void op_snap_mark(struct model *m)
{
	const struct harvest_domain *d = &m->lay[m->cur];
	const struct harvest_range *r = &d->ranges[rng() % d->nranges];
	uint64_t len = r->length / PG, k = rng() % len, n = 1 + rng() % 300;

	if (n > len - k)
		n = len - k;
	subscriber_snap_mark(&m->snap, r->iova + k * PG, n * PG);
	for (uint64_t p = k; p < k + n; p++)
		u_set(m->pending, u_of(r->iova / PG + p));
}

static void op_thaw(struct model *m)
{
	struct subscriber_set moved = { 0 };
	int to = next_layout(m);

	if (to >= 0 && rng() % 2) {
		cr_assert_eq(subscriber_snap_move(&m->snap, &m->lay[to],
						  &moved), 0);
		subscriber_set_thaw(&m->s, &m->snap, &moved, NULL);
		m->cur = to;
	} else {
		subscriber_set_thaw(&m->s, &m->snap, NULL, &m->lay[m->cur]);
	}
	m->frozen = false;
	for (size_t i = m->ngens; i-- > 0;)
		if (m->gens[i].deferred)
			mgen_back(m, &m->gens[i]);
	if (mark_all_deferred)
		layout_pages(&m->lay[m->cur], true, m->pending);
	mark_all_deferred = false;
	model_settle(m);
}

/* A restart: the set's bitmaps adopted by a new one; everything not
 * acknowledged (and what flight still held) is pending. */
static void op_adopt(struct model *m)
{
	struct subscriber_set *s = &m->s;
	uint64_t *pending = s->pending, *flight = s->flight;

	if (!s->flight || m->frozen)
		return;
	/* the process dies: its RAM goes, flight stays as it is */
	while (s->inflight) {
		struct subscriber_gen *g = s->inflight;

		s->inflight = g->next;
		subscriber_gen_free(g);
	}
	free(s->sum);
	free(s->fsum);
	free(s->spare);
	cr_assert_eq(subscriber_set_adopt(s, &m->lay[m->cur], m->mem,
					  pending, flight), 0);
	for (size_t k = 0; k < UW; k++)
		m->pending[k] |= m->flight[k];
	for (size_t i = m->ngens; i-- > 0;)
		mgen_back(m, &m->gens[i]);
	memset(m->flight, 0, sizeof(ubits));
}

static void model_run(bool durable, uint64_t seed, unsigned int steps)
{
	static struct model m;
	struct harvest_range a[3], b[4], c[3];

	memset(&m, 0, sizeof(m));
	rng_seed(seed);
	for (int i = 0; i < 4; i++) {
		struct harvest_range r = { .iova = uni[i].first * PG,
					   .length = uni[i].n * PG };

		b[i] = r;
		if (i)
			a[i - 1] = c[i - 1] = r;
	}
	c[1].flags = HARVEST_RANGE_RETIRED;
	cr_assert_eq(harvest_domain_plan(&m.lay[0], 1, PG, a, 3, 0), 0);
	cr_assert_eq(harvest_domain_plan(&m.lay[1], 1, PG, b, 4, 0), 0);
	cr_assert_eq(harvest_domain_plan(&m.lay[2], 1, PG, c, 3, 0), 0);
	if (durable)
		cr_assert_eq(bitmem_new("test_subscriber_model", &m.mem), 0);
	cr_assert_eq(subscriber_set_init_mem(&m.s, &m.lay[0], m.mem), 0);
	m.next_gen = 1;
	for (unsigned int i = 0; i < steps; i++) {
		static const char *names[] = {
			"fold", "take", "ack", "giveback", "requeue", "trim",
			"requeue all", "mark_all", "relayout", "freeze",
			"adopt",
		};
		unsigned int op = rng() % 11;
		char step[64];

		if (m.frozen) {
			/* what the loop and the change's thread do then */
			unsigned int f = rng() % 8;

			snprintf(step, sizeof(step), "step %u frozen op %u",
				 i, f);
			switch (f) {
			case 0: op_thaw(&m); break;
			case 1: op_snap_mark(&m); break;
			case 2: op_back(&m, true); break;
			case 3: op_back(&m, false); break;
			case 4: op_trim(&m); break;
			case 5: op_mark_all(&m); break;
			case 6: op_take(&m); break;
			default: op_ack(&m); break;
			}
			check(&m, step);
			continue;
		}
		snprintf(step, sizeof(step), "step %u %s", i, names[op]);
		switch (op) {
		case 0: op_fold(&m); break;
		case 1: op_take(&m); break;
		case 2: op_ack(&m); break;
		case 3: op_back(&m, true); break;
		case 4: op_back(&m, false); break;
		case 5: op_trim(&m); break;
		case 6: op_requeue_all(&m); break;
		case 7: if (rng() % 4 == 0) op_mark_all(&m); break;
		case 8: op_relayout(&m); break;
		case 9: op_freeze(&m); break;
		default: op_adopt(&m); break;
		}
		check(&m, step);
	}
	if (m.frozen) {
		op_thaw(&m);
		check(&m, "final thaw");
	}
	subscriber_set_release(&m.s);
	bitmem_free(m.mem);
	for (int i = 0; i < 3; i++)
		harvest_domain_release(&m.lay[i]);
}

Test(subscriber_model, heap_set_matches_the_model)
{
	for (uint64_t seed = 1; seed <= 4; seed++)
		model_run(false, seed, 600);
}

Test(subscriber_model, durable_set_matches_the_model)
{
	for (uint64_t seed = 11; seed <= 14; seed++)
		model_run(true, seed, 600);
}

/* Pages of [@p, @p + @bytes) in memory (the memfd's page cache). */
static size_t resident(const void *p, size_t bytes)
{
	size_t n = bytes / 4096, k = 0;
	unsigned char *v = malloc(n);

	cr_assert(v);
	cr_assert_eq(mincore((void *)p, bytes, v), 0);
	for (size_t i = 0; i < n; i++)
		k += v[i] & 1;
	free(v);
	return k;
}

/*
 * An ACK of a durable set clears flight where the take wrote it, with
 * stores: its pages stay in memory, so the next take faults none back in
 * (a hole punched there cost a fault per page, ~11 us, at every take).
 */
Test(subscriber_model, ack_keeps_flight_in_memory)
{
	const struct harvest_range r = { .iova = 0, .length = 16ULL << 30 };
	struct harvest_domain d = { 0 };
	struct subscriber_set s;
	struct subscriber_gen *g;
	struct bitmem *mem;
	uint64_t *bits;
	size_t pages;

	cr_assert_eq(harvest_domain_plan(&d, 1, PG, &r, 1, 0), 0);
	cr_assert_eq(bitmem_new("test_subscriber_model", &mem), 0);
	cr_assert_eq(subscriber_set_init_mem(&s, &d, mem), 0);
	/* 512 KiB of bitmap: one page dirty in every 4 KiB of it */
	pages = s.nwords * 8 / 4096;
	cr_assert_eq(pages, 128);
	bits = calloc(s.nwords, 8);
	cr_assert(bits);
	for (size_t p = 0; p < pages; p++)
		bits[p * 512 + p % 512] = 1ULL << (p % 64);
	cr_assert_eq(resident(s.flight, pages * 4096), 0);
	for (uint64_t gen = 1; gen <= 3; gen++) {
		subscriber_set_fold(&s, 0, bits, s.nwords);
		cr_assert_eq(subscriber_set_pending_pages(&s), pages);
		cr_assert_eq(subscriber_set_take(&s, gen, &g), 0);
		cr_assert_eq(g->pages, pages);
		cr_assert_eq(resident(s.flight, pages * 4096), pages);
		subscriber_set_delivered(&s, g);
		cr_assert_eq(subscriber_set_ack(&s, gen), 0);
		/* cleared, and still in memory */
		cr_assert_eq(resident(s.flight, pages * 4096), pages,
			     "generation %llu", (unsigned long long)gen);
		cr_assert_eq(resident(s.pending, pages * 4096), pages);
		for (uint64_t w = 0; w < s.nwords; w++)
			cr_assert_eq(s.flight[w], 0);
		cr_assert_eq(subscriber_set_pending_pages(&s), 0);
	}
	/* the buffer of the acknowledged generation is kept for the next */
	cr_assert_neq(s.spare, NULL);
	cr_assert_geq(subscriber_set_memory(&s), 2 * s.nwords * 8 + s.spare_cap);
	free(bits);
	subscriber_set_release(&s);
	bitmem_free(mem);
	harvest_domain_release(&d);
}
