/* SPDX-License-Identifier: MIT */
/*
 * A subscriber's dirty state for one domain.
 *
 * pending: a bitmap laid out like the domain's harvest bitmap (struct
 * harvest_domain): at the end of every round the event loop ORs the round's
 * bits in, range by range, one subscriber after another
 * (daemon/domain/domain_round.c), so its memory is bounded by the domain's
 * size however slowly the subscriber reads.
 *
 * in flight: when the subscriber is sent a generation, the pending bits are
 * moved (atomic exchange, word by word) into that generation's encoded
 * chunks (protocol/chunk.h), which are kept until the subscriber
 * acknowledges the generation.  Bits a round sets meanwhile stay pending for
 * the next generation.  If the subscriber goes away, or asks for a resend,
 * an unacknowledged generation's chunks are decoded back into pending:
 * nothing is cleared except what the subscriber acknowledged.  The chunks
 * are never larger than the raw bitmap plus a header per 32768 pages.
 *
 * Durable sets (subscriber_set_init_mem() with a bitmem): pending and a
 * second bitmap, flight, live in the memfd that outlives the process.
 * flight holds at least every page of every generation in flight: a take
 * ORs a word into flight before it clears it from pending, so a page is in
 * durable memory at every instant until it is acknowledged.  When no
 * generation remains in flight, flight is cleared where takes wrote it
 * (the blocks fsum names, a memset each: never a hole punched, so the
 * next take faults nothing back in); while some do, it may hold more than
 * they do (pages of acknowledged ones).  A restarted daemon puts flight
 * back into pending (subscriber_set_adopt()): everything not acknowledged
 * is pending again, as after a resume.
 *
 * Work proportional to what is dirty.  A set keeps, in RAM (never in the
 * memfd: rebuilt at adopt), its pending page count (npending: every writer
 * adds what its OR made new, the take subtracts what it took) and a
 * summary (sum): one bit per block of SUBSCRIBER_BLOCK_WORDS words of
 * pending, set for every block that may hold a bit (every non-empty block
 * has its bit; an empty one may keep it until the next take).  A round is
 * scanned once into a map of its non-empty blocks
 * (subscriber_round_scan()), which every set folds
 * (subscriber_set_fold_blocks()): with N subscribers the round's bitmap is
 * read once, and each set touches only its blocks.  The take visits only
 * the summary's blocks; the count is O(1).
 *
 * Frozen sets.  While a change of its domain runs (daemon/domain/domain_change.c)
 * a set is frozen: another thread reads its bitmaps and in-flight
 * generations through a snapshot (struct subscriber_snap) and builds the
 * set's bitmaps for the new plan, while the event loop only reads them.
 * Nothing the loop does to a frozen set writes its bitmaps or frees what
 * the snapshot names: generations given back (subscriber_set_giveback(),
 * _requeue(), _trim()) wait in the set and go back into pending at the
 * thaw, into whatever layout the set has then; flight is settled then; a
 * subscriber_set_mark_all() is remembered and done then; generations freed
 * meanwhile (acknowledged, or detached and ended, or the set released)
 * stay allocated until the thaw.  subscriber_set_take() and _ack() refuse
 * with -EBUSY: the requests that need them wait for the change.
 */
#ifndef DIRTYD_SUBSCRIBER_H
#define DIRTYD_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bitmem;
struct harvest_domain;

/**
 * One generation taken out of pending: being sent (until
 * subscriber_set_delivered() or subscriber_set_giveback()), then in flight
 * until acknowledged.  Its fields are the set's: outside subscriber.c
 * they are only read (the RANGES stream reads gen, chunks, len, pages).
 */
struct subscriber_gen {
	uint64_t gen;
	uint8_t *chunks;	/* back-to-back encoded chunks */
	size_t len;
	size_t cap;
	uint64_t pages;		/* dirty pages in it */
	bool delivered;		/* sent whole: it may be acknowledged */
	struct subscriber_gen *next;
	unsigned int pins;	/* snapshots naming it: freed at the last
				 * unpin if it was freed meanwhile */
	bool orphan;
};

/*
 * Pending is summarised in blocks of this many words: 8 (64 bytes, a cache
 * line; 512 pages at 4 KiB).  Measured (bench/serve_bench.c, bench/README.md)
 * against 64 and 512: at 0.01 % uniform a block of 512 words holds a page
 * in 96 % of cases, of 64 in 34 %, of 8 in 5 %, and the fold into 16 sets
 * and the take were fastest at 8 (the same at 1 %); the summary itself is
 * 1/512 of pending (64 KiB at 1 TiB), walked in microseconds.
 */
#ifndef SUBSCRIBER_BLOCK_WORDS
#define SUBSCRIBER_BLOCK_WORDS 8
#endif

/** subscriber_blocks_words() - words of a map of the blocks of a bitmap of
 *  @nwords words (a set's summary, a round's map of non-empty blocks). */
static inline uint64_t subscriber_blocks_words(uint64_t nwords)
{
	uint64_t nblocks = (nwords + SUBSCRIBER_BLOCK_WORDS - 1) /
			   SUBSCRIBER_BLOCK_WORDS;

	return (nblocks + 63) / 64;
}

struct subscriber_set {
	const struct harvest_domain *layout;
	struct bitmem *mem;	/* NULL: heap, no flight */
	uint64_t nwords;
	uint64_t *pending;	/* accessed with __atomic builtins */
	uint64_t *flight;	/* durable sets only: see above */
	/* RAM only (see above), accessed with __atomic builtins: */
	uint64_t npending;	/* pages pending; a concurrent take may make
				 * it wrap below 0 for a moment */
	uint64_t *sum;		/* blocks of pending that may hold a bit */
	uint64_t *fsum;		/* durable: blocks of flight written since it
				 * was last cleared (the loop's only) */
	/* the chunk buffer of the last acknowledged generation, for the
	 * next take (counted in subscriber_set_memory()) */
	uint8_t *spare;
	size_t spare_cap;
	struct subscriber_gen *inflight;	/* oldest first */
	/* frozen (see above): generations given back meanwhile, and a
	 * mark_all asked for meanwhile, both done at the thaw */
	bool frozen;
	bool frozen_mark_all;
	struct subscriber_gen *deferred;
};

/** What another thread may read of a frozen set, until the thaw. */
struct subscriber_snap {
	const struct harvest_domain *layout;
	struct bitmem *mem;
	uint64_t nwords;
	uint64_t *pending;	/* no writer but the snapshot's owner */
	uint64_t *sum;		/* pending's summary and count, kept by */
	uint64_t *npending;	/* subscriber_snap_mark() */
	const uint64_t *flight;
	bool flight_idle;	/* no generation in flight: flight holds
				 * nothing anybody needs */
	size_t ngens;
	struct subscriber_gen **gens;	/* in flight at the freeze, pinned */
};

/** subscriber_set_init() - an empty set shaped like @layout's bitmap. */
int subscriber_set_init(struct subscriber_set *s,
			const struct harvest_domain *layout);
/** subscriber_set_init_mem() - the same in @mem (durable unless NULL). */
int subscriber_set_init_mem(struct subscriber_set *s,
			    const struct harvest_domain *layout,
			    struct bitmem *mem);
/**
 * subscriber_set_adopt() - a durable set a previous process left at
 * @pending and @flight (claimed in @mem, @layout's size): flight is put
 * back into pending and zeroed, the summary and count rebuilt.  -ENOMEM
 * (for those; @pending and @flight stay the caller's).
 */
int subscriber_set_adopt(struct subscriber_set *s,
			  const struct harvest_domain *layout,
			  struct bitmem *mem, uint64_t *pending,
			  uint64_t *flight);
void subscriber_set_release(struct subscriber_set *s);

/** subscriber_set_fold() - OR @n words of @src into pending at word @at.
 *  Safe against concurrent folds and takes. */
void subscriber_set_fold(struct subscriber_set *s, uint64_t at,
			 const uint64_t *src, uint64_t n);
/**
 * subscriber_round_scan() - count the set bits of words [@w0, @w1) of
 * @bits (a round's bitmap) and mark in @blocks (subscriber_blocks_words()
 * of the bitmap, zeroed by the caller for the round) every block of them
 * that holds one; one pass.  Marks with atomic ORs: several threads (the
 * harvest's batches) may scan slices of one round into one map.
 */
uint64_t subscriber_round_scan(const uint64_t *bits, uint64_t w0, uint64_t w1,
			       uint64_t *blocks);
/**
 * subscriber_set_fold_blocks() - subscriber_set_fold() of words [@w0, @w1)
 * of @bits (laid out like pending) in the blocks @blocks marks
 * (subscriber_round_scan()), and only those: the words of unmarked blocks
 * are not read.  Any thread; safe against concurrent folds and takes.
 */
void subscriber_set_fold_blocks(struct subscriber_set *s, const uint64_t *bits,
				const uint64_t *blocks, uint64_t w0,
				uint64_t w1);
/** subscriber_set_mark_all() - every page of every range is dirty (state
 *  was lost: tell the client and mark everything). */
void subscriber_set_mark_all(struct subscriber_set *s);

/**
 * subscriber_set_take() - move everything pending into a new in-flight
 * generation @gen, encoded as chunks in page order; *out points at it (its
 * chunks may be empty).  -EEXIST if @gen is already in flight, -ENOMEM.
 */
int subscriber_set_take(struct subscriber_set *s, uint64_t gen,
			struct subscriber_gen **out);
/*
 * Failure atomicity: a page leaves pending only into a generation that is
 * delivered or given back.  Whoever sends a taken generation ends it with
 * exactly one of these two (or detaches it when the set goes away).
 */
/** subscriber_set_delivered() - @g was sent whole: it is in flight until
 *  acknowledged.  Returns its pages. */
uint64_t subscriber_set_delivered(struct subscriber_set *s,
				  struct subscriber_gen *g);
/** subscriber_set_giveback() - @g could not be sent whole: every page of it
 *  is pending again (every page of the set, should that fail), and @g is
 *  freed. */
void subscriber_set_giveback(struct subscriber_set *s,
			     struct subscriber_gen *g);
/** subscriber_set_detach() - the set is going away while @g is being sent:
 *  unlink @g, which the caller now owns (subscriber_gen_free()). */
void subscriber_set_detach(struct subscriber_set *s, struct subscriber_gen *g);
void subscriber_gen_free(struct subscriber_gen *g);

/** subscriber_set_ack() - drop generation @gen; -ENOENT if not in flight
 *  (never delivered, or acknowledged already). */
int subscriber_set_ack(struct subscriber_set *s, uint64_t gen);
/** subscriber_set_requeue() - put generation @gen (or every one, with
 *  @gen == UINT64_MAX) back into pending; -ENOENT if not in flight. */
int subscriber_set_requeue(struct subscriber_set *s, uint64_t gen);

/**
 * subscriber_set_trim() - at most @keep generations in flight: the oldest
 * beyond go back into pending (not acknowledgeable any more), so that a
 * client that never acknowledges holds pending plus @keep generations, not
 * one per GET_RANGES.  Returns how many went back, or -errno.
 */
int subscriber_set_trim(struct subscriber_set *s, unsigned int keep);

/**
 * subscriber_set_relayout() - move pending bits to @layout (a new plan of
 * the same domain): every pending page keeps its bit at the same IOVA.
 * -ERANGE, changing nothing, if a pending page has no place in @layout
 * (keep unmapped ranges as HARVEST_RANGE_RETIRED until nobody holds
 * them); -ENOMEM.  In-flight generations are page-addressed and stay.
 */
int subscriber_set_relayout(struct subscriber_set *s,
			    const struct harvest_domain *layout);
/** subscriber_set_holds() - whether pending or any in-flight generation
 *  holds a page of [@iova, @iova + @length). */
bool subscriber_set_holds(const struct subscriber_set *s, uint64_t iova,
			  uint64_t length);

/**
 * subscriber_set_freeze() - freeze @s (see above) and fill @snap; -ENOMEM
 * (not frozen then).  Event loop.
 */
int subscriber_set_freeze(struct subscriber_set *s,
			  struct subscriber_snap *snap);
/** subscriber_snap_holds() - subscriber_set_holds() of the frozen set;
 *  any thread. */
bool subscriber_snap_holds(const struct subscriber_snap *snap, uint64_t iova,
			   uint64_t length);
/**
 * subscriber_snap_move() - a new set @out laid out as @layout (another plan
 * of the same domain), in the snapshot's memory, holding every pending
 * (and flight) bit of the snapshot at its page's place; the snapshot is
 * not changed.  -ERANGE if a pending page has no place in @layout,
 * -EINVAL for another page size, -ENOMEM.  Any thread.
 */
int subscriber_snap_move(const struct subscriber_snap *snap,
			 const struct harvest_domain *layout,
			 struct subscriber_set *out);
/** subscriber_snap_mark() - every page of [@iova, @iova + @length), a
 *  range of the snapshot's layout, pending in it; any thread (the loop
 *  only reads a frozen set). */
void subscriber_snap_mark(struct subscriber_snap *snap, uint64_t iova,
			  uint64_t length);
/** subscriber_set_mark_range() - the same for a set nobody else uses. */
void subscriber_set_mark_range(struct subscriber_set *s, uint64_t iova,
			       uint64_t length);
/**
 * subscriber_set_thaw() - end the freeze of @s: with @moved (from
 * subscriber_snap_move(), taken over), its bitmaps replace those of @s,
 * which are released; else, with @layout, @s is laid out as @layout (the
 * same places: nothing moves).  Then what waited is done (generations
 * given back, mark_all, flight settled) and the snapshot's pins dropped.
 * Event loop.
 */
void subscriber_set_thaw(struct subscriber_set *s, struct subscriber_snap *snap,
			 struct subscriber_set *moved,
			 const struct harvest_domain *layout);

/** subscriber_set_pending_pages() - dirty pages pending (not in flight):
 *  the kept count, O(1). */
uint64_t subscriber_set_pending_pages(const struct subscriber_set *s);
/** subscriber_set_memory() - bytes held: bitmaps, their summaries, the
 *  in-flight chunks and the spare chunk buffer. */
size_t subscriber_set_memory(const struct subscriber_set *s);

#endif
