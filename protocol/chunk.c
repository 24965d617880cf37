// SPDX-License-Identifier: MIT
/*
 * Dirty-range chunks (chunk.h, PROTOCOL.md 9.2).
 *
 * Owns: the chunk wire format.  Every byte of a chunk is written and read
 * here: encoding, decoding, validation, the RUNS parts of a RAW chunk for a
 * RUNS-only reader, and the walk over a generation's chunks
 * (chunk_reader); the fuzzer (tests/fuzz/fuzz_proto.c) covers it.
 *
 * One walk over a bitmap a word at a time (walk_word(): each run found
 * with one add and two ctz, runs crossing words merged) serves both ways.
 * The encoder reads a span's words once: RUNS written as the runs come
 * while they stay shorter than the span's bitmap, the raw length taken
 * from the last run, RAW copied from the words when it is not larger.
 * The decoder reads a RAW payload once, a little-endian word at a time
 * (its validity is its header and last byte), and a RUNS payload once
 * when the caller's batch holds all its runs (chunk_decode_batch()).
 * Measured in bench/codec_bench.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "protocol/chunk.h"
#include "protocol/extent.h"
#include "protocol/wire.h"

/* The ULEB128s of a chunk: values <= CHUNK_MAX_PAGES < 2^21, 3 bytes at
 * most; most are one byte, which costs no loop. */
static inline size_t uleb_size(uint32_t v)
{
	return 1 + (v >= 1u << 7) + (v >= 1u << 14);
}

static inline uint8_t *uleb_put(uint8_t *p, uint32_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Read a ULEB128 of at most 3 bytes (values < 2^21 > CHUNK_MAX_PAGES). */
static inline int uleb_get(const uint8_t **p, const uint8_t *end,
			   uint32_t *v)
{
	uint32_t val = 0;

	if (*p < end && !(**p & 0x80)) {	/* one byte */
		*v = *(*p)++;
		return 0;
	}

	for (unsigned int shift = 0; shift < 21; shift += 7) {
		uint8_t b;

		if (*p == end)
			return -EBADMSG;
		b = *(*p)++;
		val |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = val;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Bytes of raw bitmap up to the last dirty page below @span; 0 if none. */
static uint32_t raw_size(const uint64_t *bits, uint32_t span)
{
	for (uint32_t w = (span + 63) / 64; w-- > 0;) {
		uint64_t word = bits[w];

		if (w == span / 64)
			word &= (1ULL << (span % 64)) - 1;
		if (word)
			return (w * 64 + 63 - __builtin_clzll(word)) / 8 + 1;
	}
	return 0;
}

#define CHUNK_INLINE static inline __attribute__((always_inline))
#define NO_RUN UINT32_MAX

/*
 * The encoder's one pass: the span's words in order, each run found with
 * one add, one and and two ctz (as the extent scan does), a run reaching a
 * word's last bit held open into the next word, and written as a RUNS
 * pair at once while the RUNS payload stays shorter than the widest raw
 * bitmap the span can have (past that, RAW is smaller whatever follows).
 */
struct runs_out {
	uint8_t *p;		/* the payload */
	uint32_t n;		/* its bytes so far */
	uint32_t limit;		/* RUNS of this many bytes lose to RAW */
	uint32_t cursor;	/* end of the last run, from the span's start */
	uint32_t open;		/* walk_word()'s open run */
};

/*
 * A run of a span's bitmap, pages [@first, @first + @count) from the
 * span's start: 0, or what stops the walk.
 */
typedef int (*span_run_fn)(void *ctx, uint32_t first, uint32_t count);

/*
 * The runs of @word, whose bit 0 is page @base of the span, to @fn (the
 * encoder's and the RAW decoder's one walk).  Adding the lowest set bit
 * to the word carries through its lowest run: the sum has that run
 * cleared and the bit just past it set (or none, when the run reaches bit
 * 63), so one add, one and and two ctz find each run.  A run reaching bit
 * 63 is held open in *@open (NO_RUN: none) and ends in a later word, at
 * its first clear bit; the caller ends one still open at the end.
 */
CHUNK_INLINE int walk_word(uint32_t *open, uint64_t word, uint32_t base,
			   span_run_fn fn, void *ctx)
{
	int r;

	if (*open != NO_RUN) {
		unsigned int end;

		if (word == ~0ULL)
			return 0;	/* the open run goes on */
		end = (unsigned int)__builtin_ctzll(~word);
		r = fn(ctx, *open, base + end - *open);
		if (r)
			return r;
		*open = NO_RUN;
		word &= ~0ULL << end;
	}
	while (word) {
		uint64_t carry = word + (word & -word);
		unsigned int start = (unsigned int)__builtin_ctzll(word);

		if (!carry) {	/* it reaches bit 63 */
			*open = base + start;
			return 0;
		}
		r = fn(ctx, base + start,
		       (unsigned int)__builtin_ctzll(carry) - start);
		if (r)
			return r;
		word &= carry;
	}
	return 0;
}

/* span_run_fn: append the run's pair; 1 once RUNS would reach the limit
 * (nothing is written then). */
CHUNK_INLINE int runs_out_add(void *ctx, uint32_t first, uint32_t count)
{
	struct runs_out *o = ctx;
	uint32_t gap = first - o->cursor;
	size_t need;

	o->cursor = first + count;
	if ((gap | count) < 0x80) {	/* the common pair: two bytes */
		if (o->n + 2 >= o->limit)
			return 1;
		o->p[o->n] = (uint8_t)gap;
		o->p[o->n + 1] = (uint8_t)count;
		o->n += 2;
		return 0;
	}
	need = uleb_size(gap) + uleb_size(count);
	if (o->n + need >= o->limit)
		return 1;
	uleb_put(uleb_put(o->p + o->n, gap), count);
	o->n += (uint32_t)need;
	return 0;
}

/* Word @w (@word, not zero) after the zero words from *@next: a run open
 * ended where they began. */
CHUNK_INLINE int runs_out_at(struct runs_out *o, uint64_t word, uint32_t w,
			     uint32_t *next)
{
	if (o->open != NO_RUN && w != *next) {
		if (runs_out_add(o, o->open, *next * 64 - o->open))
			return 1;
		o->open = NO_RUN;
	}
	*next = w + 1;
	return walk_word(&o->open, word, w * 64, runs_out_add, o);
}

/*
 * RUNS of the span into o->p; false once they reach o->limit.  Only the
 * non-zero words are visited, a block's at a time by its mask (the extent
 * scan's zero-skip): no branch per word, which at 1 % dirty (half the
 * words zero) would be mispredicted every other word.
 */
static bool runs_out_span(struct runs_out *o, const uint64_t *bits,
			  uint32_t span)
{
	uint32_t nfull = span / 64, next = 0, w;

	for (w = 0; w + EXTENT_BLOCK <= nfull; w += EXTENT_BLOCK)
		for (uint64_t m = extent_block_mask(bits + w); m; m &= m - 1) {
			uint32_t k = w + (uint32_t)__builtin_ctzll(m);

			if (runs_out_at(o, bits[k], k, &next))
				return false;
		}
	for (; w < nfull; w++)
		if (bits[w] && runs_out_at(o, bits[w], w, &next))
			return false;
	/* bits at or past the span are not the span's */
	if (span % 64 && bits[nfull] & ((1ULL << (span % 64)) - 1) &&
	    runs_out_at(o, bits[nfull] & ((1ULL << (span % 64)) - 1), nfull,
			&next))
		return false;
	/* a run still open ended after the last word walked */
	return o->open == NO_RUN || !runs_out_add(o, o->open,
						  next * 64 - o->open);
}

int chunk_encode(uint64_t first, uint32_t span, const uint64_t *bits,
		 uint8_t *out)
{
	struct runs_out o = {
		.p = out + CHUNK_HEADER_SIZE,
		.limit = (span + 7) / 8,
		.open = NO_RUN,
	};
	uint8_t *p = out + CHUNK_HEADER_SIZE;
	uint32_t raw_len;
	bool runs;

	if (!span || span > CHUNK_MAX_PAGES || !bits || !out)
		return -EINVAL;
	/* RUNS while they stay shorter than the span's whole bitmap; the
	 * raw length is then where the last run ends, and the smaller wins */
	runs = runs_out_span(&o, bits, span);
	if (runs) {
		if (!o.cursor)
			return 0;	/* no page is dirty */
		raw_len = (o.cursor - 1) / 8 + 1;
		runs = o.n < raw_len;
	} else {
		/* RAW: the last dirty page, from the end (a dense span: at
		 * once) */
		raw_len = raw_size(bits, span);
	}
	wire_put_le64(out, first);
	wire_put_le32(out + 8, span);
	out[13] = 0;
	if (runs) {
		out[12] = CHUNK_RUNS;
		p += o.n;
	} else {
		out[12] = CHUNK_RAW;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(p, bits, raw_len);	/* the words' own bytes */
#else
		for (uint32_t i = 0; i < raw_len; i++)
			p[i] = (uint8_t)(bits[i / 8] >> (i % 8 * 8));
#endif
		/* bits at or past span in the last byte stay clear */
		if (raw_len * 8 > span)
			p[raw_len - 1] &= (uint8_t)((1u << (span % 8)) - 1);
		p += raw_len;
	}
	wire_put_le16(out + 14, (uint16_t)(p - out - CHUNK_HEADER_SIZE));
	return (int)(p - out);
}

void chunk_peek(const uint8_t *buf, uint64_t *first, uint32_t *span)
{
	*first = wire_get_le64(buf);
	*span = wire_get_le32(buf + 8);
}

/* ---- decoding ---- */

/*
 * Runs handed to a chunk_batch_fn in batches of at most @cap.  A RAW
 * payload is cut into batches of at most RAW_BATCH runs (4 KiB: what the
 * caller reads back is still in L1).
 */
#define RAW_BATCH 256

struct runs_sink {
	chunk_run_fn each;	/* chunk_decode(): each run to it, or */
	struct extent *v;	/* chunk_decode_batch(): batches of @cap */
	size_t n, cap;
	chunk_batch_fn fn;
	void *ctx;
	uint64_t first;		/* the chunk's first page */
};

CHUNK_INLINE int sink_add(struct runs_sink *k, uint64_t first, uint64_t count)
{
	if (k->each)
		return k->each(k->ctx, first, count);
	if (k->n == k->cap) {
		int r = k->fn(k->ctx, k->v, k->n);

		k->n = 0;
		if (r)
			return r;
	}
	k->v[k->n++] = (struct extent){ .first = first, .count = count };
	return 0;
}

/* span_run_fn of the RAW decoder */
CHUNK_INLINE int sink_run(void *ctx, uint32_t first, uint32_t count)
{
	struct runs_sink *k = ctx;

	return sink_add(k, k->first + first, count);
}

/* A RUNS payload: validated, and with @k its runs added as they come
 * (with @k NULL only validated). */
static int runs_walk(const uint8_t *p, const uint8_t *end, uint64_t first,
		     uint32_t span, struct runs_sink *k)
{
	uint64_t cursor = 0;
	int r;

	while (p < end) {
		uint32_t gap, run;

		if (end - p >= 2 && !((p[0] | p[1]) & 0x80)) {
			gap = p[0];	/* the common pair: two bytes */
			run = p[1];
			p += 2;
		} else if (uleb_get(&p, end, &gap) ||
			   uleb_get(&p, end, &run)) {
			return -EBADMSG;
		}
		if (!run || cursor + gap + run > span || (cursor && !gap))
			return -EBADMSG;
		cursor += gap;
		if (k && (r = sink_add(k, first + cursor, run)))
			return r;
		cursor += run;
	}
	return 0;
}

/* A RAW payload is valid by its length and its last byte alone: not
 * longer than the span's bitmap, no trailing zero byte, no page past the
 * span. */
static bool raw_valid(const uint8_t *p, uint16_t len, uint32_t span)
{
	return len && len <= (span + 7) / 8 && p[len - 1] &&
	       !(len * 8u > span && p[len - 1] >> (span % 8));
}

/* A valid RAW payload's runs, a little-endian word at a time. */
static int raw_walk(const uint8_t *p, uint16_t len, struct runs_sink *k)
{
	uint32_t nfull = len / 8u, open = NO_RUN;
	uint64_t tail = 0;
	int r;

	for (uint32_t w = 0; w < nfull; w++) {
		uint64_t word = wire_get_le64(p + 8 * w);

		if ((word || open != NO_RUN) &&
		    (r = walk_word(&open, word, w * 64, sink_run, k)))
			return r;
	}
	if (len % 8) {	/* the last word's bytes; the bits past them clear */
		memcpy(&tail, p + 8 * nfull, len % 8);
		r = walk_word(&open, le64toh(tail), nfull * 64, sink_run, k);
		if (r)
			return r;
	}
	/* open only when the payload ends with a whole word of it */
	return open == NO_RUN ? 0 : sink_run(k, open, len * 8u - open);
}

/*
 * Validate the chunk at @buf and, with @k, add its runs.  What the
 * contract allows in one pass is one pass: a RAW payload is validated by
 * its last byte and read once; a RUNS payload is read once when its runs
 * all fit @k's batch (at most plen / 2), else (and run by run) validated
 * first.  Nothing is handed to @k's function for a malformed chunk.
 */
static int decode(const uint8_t *buf, size_t len, struct runs_sink *k)
{
	int size = chunk_size(buf, len), r;
	const uint8_t *pl = buf + CHUNK_HEADER_SIZE;
	uint32_t span;
	uint16_t plen;

	if (size < 0)
		return size;
	span = wire_get_le32(buf + 8);
	plen = wire_get_le16(buf + 14);
	if (chunk_kind(buf) == CHUNK_RUNS) {
		if ((!k || k->each || plen / 2u > k->cap) &&
		    runs_walk(pl, pl + plen, 0, span, NULL))
			return -EBADMSG;
		if (!k)
			return size;
		k->first = wire_get_le64(buf);
		r = runs_walk(pl, pl + plen, k->first, span, k);
	} else {
		if (!raw_valid(pl, plen, span))
			return -EBADMSG;
		if (!k)
			return size;
		k->first = wire_get_le64(buf);
		if (k->cap > RAW_BATCH)
			k->cap = RAW_BATCH;
		r = raw_walk(pl, plen, k);
	}
	if (!r && k->n)	/* the last batch */
		r = k->fn(k->ctx, k->v, k->n);
	return r ? r : size;
}

int chunk_size(const uint8_t *buf, size_t len)
{
	uint64_t first;
	uint32_t span;
	uint16_t plen;
	uint8_t kind;

	if (!buf || len < CHUNK_HEADER_SIZE)
		return -EBADMSG;
	first = wire_get_le64(buf);
	span = wire_get_le32(buf + 8);
	kind = buf[12];
	plen = wire_get_le16(buf + 14);
	if (!span || span > CHUNK_MAX_PAGES || buf[13] ||
	    (kind != CHUNK_RUNS && kind != CHUNK_RAW) || !plen ||
	    plen > CHUNK_MAX_PAYLOAD || plen > len - CHUNK_HEADER_SIZE ||
	    first + span < first)
		return -EBADMSG;
	return (int)(CHUNK_HEADER_SIZE + plen);
}

int chunk_decode_batch(const uint8_t *buf, size_t len, struct extent *runs,
		       size_t cap, chunk_batch_fn fn, void *ctx)
{
	struct runs_sink k = { .v = runs, .cap = cap, .fn = fn, .ctx = ctx };

	if (!runs || !cap || !fn)
		return -EINVAL;
	return decode(buf, len, &k);
}

int chunk_decode(const uint8_t *buf, size_t len, chunk_run_fn fn, void *ctx)
{
	struct runs_sink k = { .each = fn, .ctx = ctx };

	return decode(buf, len, fn ? &k : NULL);
}

enum chunk_kind chunk_kind(const uint8_t *buf)
{
	return (enum chunk_kind)buf[12];
}

struct runs_part {
	uint64_t from;		/* the part's first page */
	uint64_t cursor;	/* end of the last run written */
	uint8_t *out;
	size_t cap;		/* bytes of out: what is past it is counted,
				 * not written */
	size_t n;		/* payload bytes of the part */
};

static int runs_part_add(void *ctx, uint64_t first, uint64_t count)
{
	struct runs_part *o = ctx;
	size_t need, at;
	uint64_t gap;

	if (first + count <= o->from)
		return 0;	/* a run of an earlier part */
	if (first < o->from) {	/* not a place this function cuts at */
		count -= o->from - first;
		first = o->from;
	}
	/* both within the span: below 2^21 */
	gap = first - o->cursor;
	need = uleb_size((uint32_t)gap) + uleb_size((uint32_t)count);
	if (o->n + need > CHUNK_MAX_PAYLOAD)
		return 1;	/* full: the part ends before this run */
	at = CHUNK_HEADER_SIZE + o->n;
	if (at + need <= o->cap)
		uleb_put(uleb_put(o->out + at, (uint32_t)gap),
			 (uint32_t)count);
	o->n += need;
	o->cursor = first + count;
	return 0;
}

int chunk_runs_part(const uint8_t *buf, size_t len, uint64_t *from,
		    uint8_t *out, size_t cap)
{
	struct runs_part o = {
		.from = *from, .cursor = *from, .out = out, .cap = cap,
	};
	uint64_t first, end;
	uint32_t span;
	int r;

	if (chunk_size(buf, len) < 0)
		return -EBADMSG;
	chunk_peek(buf, &first, &span);
	end = first + span;
	if (*from < first || *from > end)
		return -EINVAL;
	r = chunk_decode(buf, len, runs_part_add, &o);
	if (r < 0)
		return r;
	if (!o.n) {
		*from = end;
		return 0;
	}
	if (CHUNK_HEADER_SIZE + o.n > cap)
		return -ENOSPC;
	/* cut (r == 1): the part ends with its last run; else with the span */
	if (r != 1)
		o.cursor = end;
	wire_put_le64(out, o.from);
	wire_put_le32(out + 8, (uint32_t)(o.cursor - o.from));
	out[12] = CHUNK_RUNS;
	out[13] = 0;
	wire_put_le16(out + 14, (uint16_t)o.n);
	*from = o.cursor;
	return (int)(CHUNK_HEADER_SIZE + o.n);
}

int chunk_reader_next(struct chunk_reader *cr, uint8_t *out, size_t cap)
{
	while (cr->off < cr->len) {
		const uint8_t *c = cr->buf + cr->off;
		int len = chunk_size(c, cr->len - cr->off);
		uint64_t first, from;
		uint32_t span;
		int n;

		if (len < 0)
			return len;
		if (!cr->runs_only || chunk_kind(c) != CHUNK_RAW) {
			if ((size_t)len > cap)
				return -ENOSPC;
			memcpy(out, c, (size_t)len);
			cr->off += (size_t)len;
			return len;
		}
		chunk_peek(c, &first, &span);
		from = cr->in_part ? cr->from : first;
		n = chunk_runs_part(c, (size_t)len, &from, out, cap);
		if (n < 0)
			return n;
		if (n && from < first + span) {
			cr->in_part = true;	/* more parts follow */
			cr->from = from;
			return n;
		}
		cr->off += (size_t)len;	/* its last part, or none left */
		cr->in_part = false;
		if (n)
			return n;
	}
	return 0;
}

bool chunk_reader_done(const struct chunk_reader *cr)
{
	return cr->off >= cr->len;
}
