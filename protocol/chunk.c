// SPDX-License-Identifier: MIT
/*
 * Dirty-range chunks (chunk.h, PROTOCOL.md 9.2).
 *
 * Owns: the chunk wire format.  Every byte of a chunk is written and read
 * here: encoding, decoding, validation, the RUNS parts of a RAW chunk for a
 * RUNS-only reader, and the walk over a generation's chunks
 * (chunk_reader); the fuzzer (tests/fuzz/fuzz_proto.c) covers it.
 *
 * The encoder finds a span's runs with the extent scan (extent.h: zero
 * words skipped in blocks, AVX2 where the CPU has it, each run found with
 * one add and two ctz), writing RUNS as it goes and falling back to RAW as
 * soon as they would not be shorter: one pass (bench/serve_bench.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "protocol/chunk.h"
#include "protocol/extent.h"
#include "protocol/wire.h"

static size_t uleb_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *uleb_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Read a ULEB128 of at most 3 bytes (values < 2^21 > CHUNK_MAX_PAGES). */
static int uleb_get(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
	uint32_t val = 0;

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

/* The RUNS payload being written, while it stays shorter than @limit. */
struct runs_out {
	uint8_t *p;
	size_t n;
	size_t limit;
	uint64_t cursor;	/* end of the last run, from the span's start */
};

static int runs_out_add(void *ctx, const struct extent *e)
{
	struct runs_out *o = ctx;
	uint64_t gap = e->first - o->cursor;
	size_t need = uleb_size(gap) + uleb_size(e->count);

	if (o->n + need >= o->limit)
		return 1;	/* no shorter than the raw bitmap */
	uleb_put(uleb_put(o->p + o->n, gap), e->count);
	o->n += need;
	o->cursor = e->first + e->count;
	return 0;
}

int chunk_encode(uint64_t first, uint32_t span, const uint64_t *bits,
		 uint8_t *out)
{
	struct runs_out o = { .p = out + CHUNK_HEADER_SIZE };
	struct extent_scan scan;
	uint32_t raw_len;
	uint8_t *p = out + CHUNK_HEADER_SIZE;
	int r;

	if (!span || span > CHUNK_MAX_PAGES || !bits || !out)
		return -EINVAL;
	raw_len = raw_size(bits, span);
	if (!raw_len)
		return 0;
	/* RUNS, written as the extent scan finds them, unless they reach
	 * the raw bitmap's size */
	o.limit = raw_len;
	extent_scan_init(&scan, runs_out_add, &o);
	r = extent_scan_bitmap(&scan, bits, 0, span);
	if (!r)
		r = extent_scan_finish(&scan);

	wire_put_le64(out, first);
	wire_put_le32(out + 8, span);
	out[13] = 0;
	if (!r) {
		out[12] = CHUNK_RUNS;
		p += o.n;
	} else {
		out[12] = CHUNK_RAW;
		for (uint32_t i = 0; i < raw_len; i++)
			p[i] = (uint8_t)(bits[i / 8] >> (i % 8 * 8));
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

/* Walk the payload; with @fn NULL only validate. */
static int chunk_walk(const uint8_t *buf, uint64_t first, uint32_t span,
		      uint8_t kind, uint16_t len, chunk_run_fn fn, void *ctx)
{
	const uint8_t *p = buf, *end = buf + len;
	int r;

	if (kind == CHUNK_RUNS) {
		uint64_t cursor = 0;

		if (!len)
			return -EBADMSG;
		while (p < end) {
			uint32_t gap, run;

			if (uleb_get(&p, end, &gap) || uleb_get(&p, end, &run) ||
			    !run || cursor + gap + run > span ||
			    (cursor && !gap))
				return -EBADMSG;
			cursor += gap;
			if (fn && (r = fn(ctx, first + cursor, run)))
				return r;
			cursor += run;
		}
		return 0;
	}
	/* CHUNK_RAW */
	if (!len || len > (span + 7) / 8 || !buf[len - 1] ||
	    (len * 8u > span && buf[len - 1] >> (span % 8)))
		return -EBADMSG;
	for (uint32_t i = 0; i < len * 8u;) {
		uint32_t j;

		if (!(buf[i / 8] >> (i % 8) & 1)) {
			i++;
			continue;
		}
		for (j = i; j < len * 8u && (buf[j / 8] >> (j % 8) & 1); j++)
			;
		if (fn && (r = fn(ctx, first + i, j - i)))
			return r;
		i = j;
	}
	return 0;
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

int chunk_decode(const uint8_t *buf, size_t len, chunk_run_fn fn, void *ctx)
{
	uint64_t first;
	uint32_t span;
	uint16_t plen;
	uint8_t kind;
	int r;

	r = chunk_size(buf, len);
	if (r < 0)
		return r;
	first = wire_get_le64(buf);
	span = wire_get_le32(buf + 8);
	kind = buf[12];
	plen = wire_get_le16(buf + 14);
	r = chunk_walk(buf + CHUNK_HEADER_SIZE, first, span, kind, plen, NULL,
		       NULL);
	if (r)
		return r;
	r = chunk_walk(buf + CHUNK_HEADER_SIZE, first, span, kind, plen, fn,
		       ctx);
	return r ? r : (int)(CHUNK_HEADER_SIZE + plen);
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
	gap = first - o->cursor;
	need = uleb_size(gap) + uleb_size(count);
	if (o->n + need > CHUNK_MAX_PAYLOAD)
		return 1;	/* full: the part ends before this run */
	at = CHUNK_HEADER_SIZE + o->n;
	if (at + need <= o->cap)
		uleb_put(uleb_put(o->out + at, gap), count);
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
