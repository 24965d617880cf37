// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the wire codec (protocol/proto.c) and the chunk codec
 * (protocol/chunk.c).  Every input is used twice:
 *
 *   as a packet   proto_decode() must give exactly what an independent
 *                 reading of protocol/PROTOCOL.md (the table below and
 *                 ref_chunk()) says: 0, or the one documented error
 *                 (-EBADMSG, -EMSGSIZE, -EPROTO), and so must libdirty's
 *                 way (proto_decode_lazy(), proto_ranges_decode() and the
 *                 pages against total_pages); a packet that decodes
 *                 re-encodes to the same bytes (the codec is canonical),
 *                 and does not fit in one byte less;
 *   as a chunk    chunk_decode() must accept exactly what ref_chunk()
 *                 accepts, report the same runs (chunk_decode_batch() in
 *                 batches of any size too), and the runs re-encoded
 *                 by chunk_encode() decode to the same runs again, in no
 *                 more bytes than the input; read by a RUNS-only reader
 *                 (chunk_reader) it gives RUNS parts the spec accepts
 *                 that tile its span and hold the same runs.
 *
 * Any disagreement aborts (a crash libFuzzer keeps as a reproducer), as
 * do ASan and UBSan findings.  Seeds: corpus/proto/ (gen_seeds.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "tests/fuzz/fuzz.h"

/* ------------------------------------------------------------ the spec */

/* Little-endian reads, written again here: nothing from the codec. */
static uint64_t le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

enum dir { REQ, REP, EV };
/* OPAQUE: a body whose layout this model does not hold yet (ADOPT_REPLY,
 * READOPT and its reply: fixed parts with counts not at offset 0 and lists
 * of two kinds); only the header and the fixed part's least size are the
 * model's, the rest is the decoder's word (and the re-encoding's). */
enum shape { FIXED, LIST, ERRTEXT, RANGES, TEXT, OPAQUE };

struct span {
	uint8_t off, len;
};

/* One row of PROTOCOL.md sections 4 and 6. */
struct spec {
	uint16_t type;
	uint8_t dir;
	uint8_t shape;
	uint16_t size;		/* FIXED: the body; else its fixed part */
	uint16_t entry;		/* LIST: bytes per entry */
	bool more;		/* PROTO_F_MORE allowed */
	struct span rsv[2];	/* reserved fields of the fixed part */
	int name;		/* offset of a str64, or -1 */
	int flags;		/* offset of a le32 flag field, or -1 */
	uint32_t mask;		/* its defined bits */
	uint32_t need;		/* one of these bits must be set (MAP) */
	struct span ersv;	/* LIST: a reserved field of each entry */
	int ename;		/* LIST: a str64 in each entry, or -1 */
};

#define R(o, l) { .off = (o), .len = (l) }
#define NOFLAGS .flags = -1
#define NONAME .name = -1, .ename = -1

static const struct spec specs[] = {
	{ 0x0001, REQ, FIXED, 24, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0002, REQ, FIXED, 0, NONAME, NOFLAGS },
	{ 0x0003, REQ, FIXED, 0, NONAME, NOFLAGS },
	{ 0x0004, REQ, FIXED, 72, .rsv = { R(4, 4) }, .name = 8,
	  .ename = -1, .flags = 0, .mask = 0x1f },
	{ 0x0005, REQ, FIXED, 72, .rsv = { R(4, 4) }, .name = 8,
	  .ename = -1, NOFLAGS },
	{ 0x0006, REQ, FIXED, 72, .rsv = { R(4, 4) }, .name = 8,
	  .ename = -1, NOFLAGS },
	{ 0x0007, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0008, REQ, FIXED, 24, NONAME, .flags = 4, .mask = 0x7,
	  .need = 0x3 },
	{ 0x0009, REQ, FIXED, 24, NONAME, .flags = 4, .mask = 0x4 },
	{ 0x000a, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x000b, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x000c, REQ, FIXED, 16, .rsv = { R(12, 4) }, NONAME, .flags = 8,
	  .mask = 0x1 },
	{ 0x000d, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x000e, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x000f, REQ, FIXED, 16, .rsv = { R(8, 8) }, NONAME, .flags = 4,
	  .mask = 0x1 },
	{ 0x0010, REQ, FIXED, 16, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0011, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0012, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0013, REQ, FIXED, 24, NONAME, .flags = 4, .mask = 0 },
	{ 0x0014, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0015, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0016, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x0017, REQ, OPAQUE, 32, NONAME, NOFLAGS },
	{ 0x0018, REQ, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },

	{ 0x8001, REP, FIXED, 40, .rsv = { R(36, 4) }, NONAME, NOFLAGS },
	{ 0x8002, REP, LIST, 8, 88, true, .rsv = { R(4, 4) }, .name = -1,
	  .ersv = R(84, 4), .ename = 0, NOFLAGS },
	{ 0x8003, REP, LIST, 8, 48, true, .rsv = { R(4, 4) }, .name = -1,
	  .ersv = R(44, 4), .ename = -1, NOFLAGS },
	{ 0x8004, REP, FIXED, 16, .rsv = { R(12, 4) }, NONAME, NOFLAGS },
	{ 0x8005, REP, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x80ff, REP, FIXED, 0, NONAME, NOFLAGS },
	{ 0x800c, REP, FIXED, 32, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x800e, REP, FIXED, 16, NONAME, NOFLAGS },
	{ 0x800f, REP, RANGES, 32, .more = true, .rsv = { R(28, 4) },
	  NONAME, NOFLAGS },
	{ 0x8011, REP, LIST, 8, 64, true, .rsv = { R(4, 4) }, NONAME,
	  NOFLAGS },
	{ 0x8012, REP, LIST, 16, 72, false, .rsv = { R(12, 4) },
	  .name = -1, .ename = 0, NOFLAGS },
	{ 0x8014, REP, TEXT, 8, .more = true, .rsv = { R(4, 4) }, NONAME,
	  NOFLAGS },
	{ 0x8015, REP, OPAQUE, 48, NONAME, NOFLAGS },
	{ 0x8017, REP, OPAQUE, 16, NONAME, NOFLAGS },
	{ 0x8018, REP, LIST, 8, 120, true, .rsv = { R(4, 4) }, .name = -1,
	  .ename = 16, NOFLAGS },
	{ 0xffff, REP, ERRTEXT, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x4001, EV, FIXED, 32, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
	{ 0x4002, EV, FIXED, 8, .rsv = { R(4, 4) }, NONAME, NOFLAGS },
};

static const struct spec *spec_of(uint16_t type)
{
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (specs[i].type == type)
			return &specs[i];
	return NULL;
}

static bool zero(const uint8_t *p, struct span s)
{
	for (unsigned int i = 0; i < s.len; i++)
		if (p[s.off + i])
			return false;
	return true;
}

/*
 * Text (section 2): UTF-8 as RFC 3629 has it (the table of well-formed
 * byte sequences, its section 4), without C0 controls or DEL.
 */
static bool text_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t more;

		if (b < 0x20 || b == 0x7f)
			return false;
		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			more = 1;
		else if (b >= 0xe0 && b <= 0xef)
			more = 2;
		else if (b >= 0xf0 && b <= 0xf4)
			more = 3;
		else
			return false;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (n - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += more + 1;
	}
	return true;
}

/* str64: 1 .. 63 bytes of text, then only NULs. */
static bool str64_ok(const uint8_t *p)
{
	unsigned int n = 0;

	while (n < 64 && p[n])
		n++;
	if (!n || n == 64 || !text_ok(p, n))
		return false;
	for (unsigned int i = n; i < 64; i++)
		if (p[i])
			return false;
	return true;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ------------------------------------------------------------ chunks */

#define MAX_RUNS (CHUNK_MAX_PAGES / 2 + 1)

struct runs {
	uint64_t first[MAX_RUNS], count[MAX_RUNS];
	size_t n;
	bool overflow;
};

static void runs_add(struct runs *r, uint64_t first, uint64_t count)
{
	if (r->n == MAX_RUNS) {
		r->overflow = true;
		return;
	}
	r->first[r->n] = first;
	r->count[r->n++] = count;
}

/* ULEB128 of at most 3 bytes; false when malformed. */
static bool ref_uleb(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (unsigned int i = 0; i < 3; i++) {
		if (*pos == len)
			return false;
		*v |= (uint64_t)(p[*pos] & 0x7f) << (7 * i);
		if (!(p[(*pos)++] & 0x80))
			return true;
	}
	return false;
}

/*
 * PROTOCOL.md 9.2 and 9.3, read independently of chunk.c: the size of the
 * chunk at @p (@avail bytes there) and its runs into @out, or 0 when the
 * chunk is malformed.
 */
static size_t ref_chunk(const uint8_t *p, size_t avail, struct runs *out)
{
	uint64_t first, span, kind, len, cursor = 0;
	const uint8_t *pl;
	size_t pos = 0;

	out->n = 0;
	if (avail < 16)
		return 0;
	first = le(p, 8);
	span = le(p + 8, 4);
	kind = p[12];
	len = le(p + 14, 2);
	if (span < 1 || span > 32768 || kind > 1 || p[13] || len < 1 ||
	    len > 4096 || 16 + len > avail || first > UINT64_MAX - span)
		return 0;
	pl = p + 16;
	if (kind == 0) {
		for (unsigned int pair = 0; pos < len; pair++) {
			uint64_t gap, run;

			if (!ref_uleb(pl, len, &pos, &gap) ||
			    !ref_uleb(pl, len, &pos, &run) || run < 1 ||
			    (pair && gap < 1) || cursor + gap + run > span)
				return 0;
			runs_add(out, first + cursor + gap, run);
			cursor += gap + run;
		}
		return 16 + len;
	}
	if (len > (span + 7) / 8 || !pl[len - 1])
		return 0;
	for (uint64_t i = span; i < len * 8; i++)
		if (pl[i / 8] >> (i % 8) & 1)
			return 0;
	for (uint64_t i = 0; i < len * 8;) {
		uint64_t j = i;

		while (j < len * 8 && (pl[j / 8] >> (j % 8) & 1))
			j++;
		if (j > i)
			runs_add(out, first + i, j - i);
		i = j > i ? j : i + 1;
	}
	return 16 + len;
}

static int collect(void *ctx, uint64_t first, uint64_t count)
{
	runs_add(ctx, first, count);
	return 0;
}

static bool runs_eq(const struct runs *a, const struct runs *b)
{
	return a->n == b->n && !a->overflow && !b->overflow &&
	       !memcmp(a->first, b->first, a->n * sizeof(a->first[0])) &&
	       !memcmp(a->count, b->count, a->n * sizeof(a->count[0]));
}

static struct runs ref_runs, got_runs, again_runs, part_runs, batch_runs;

/* chunk_batch_fn: the runs into @ctx (struct runs), each batch within the
 * cap (batch_cap). */
static size_t batch_cap;

static int collect_batch(void *ctx, const struct extent *runs, size_t n)
{
	FUZZ_CHECK(n >= 1 && n <= batch_cap, "a batch of %zu runs (cap %zu)",
		   n, batch_cap);
	for (size_t i = 0; i < n; i++)
		runs_add(ctx, runs[i].first, runs[i].count);
	return 0;
}

/* chunk_decode_batch() gives what chunk_decode() gave (@r, got_runs), in
 * batches of a size the input picks: small ones (a RUNS payload validated
 * first) or large (read once). */
static void check_batches(const uint8_t *data, size_t size, int r)
{
	static struct extent batch[CHUNK_MAX_PAIRS];
	int b;

	batch_cap = size && data[size - 1] & 1 ? CHUNK_MAX_PAIRS :
		    1 + (size ? (size_t)data[size - 1] % 7 : 0);
	batch_runs.n = 0;
	batch_runs.overflow = false;
	b = chunk_decode_batch(data, size, batch, batch_cap, collect_batch,
			       &batch_runs);
	FUZZ_CHECK(b == r, "chunk_decode_batch returned %d, chunk_decode %d",
		   b, r);
	FUZZ_CHECK(r > 0 ? runs_eq(&got_runs, &batch_runs) : !batch_runs.n,
		   "chunk_decode_batch reported other runs than chunk_decode");
}

/*
 * The valid chunk @data (@want bytes) as a client without RANGES_RAW takes
 * it (chunk_reader): a RUNS chunk as it is; a RAW one as RUNS parts the
 * spec accepts, each starting where the last ended, ending at the span's
 * end, holding the same runs.  The room offered varies with the input; a
 * part larger than the room moves nothing.
 */
static void check_reader(const uint8_t *data, size_t want, uint64_t first,
			 uint32_t span)
{
	static uint8_t out[CHUNK_MAX_SIZE];
	struct chunk_reader cr = { .buf = data, .len = want, .runs_only = true };
	size_t room = 18 + (data[16] | data[want - 1] << 8) %
		      (CHUNK_MAX_PAYLOAD - 2);
	uint64_t at = first;
	int n;

	again_runs.n = 0;
	again_runs.overflow = false;
	while ((n = chunk_reader_next(&cr, out, room)) != 0) {
		size_t got;

		if (n == -ENOSPC) {
			n = chunk_reader_next(&cr, out, sizeof(out));
			FUZZ_CHECK(n > 0 && (size_t)n > room, "the reader "
				   "refused %d bytes for a room of %zu", n, room);
		}
		FUZZ_CHECK(n > 0, "the reader failed on a valid chunk: %d", n);
		if (data[12] == 0) {
			FUZZ_CHECK((size_t)n == want && !memcmp(out, data, want),
				   "a RUNS chunk was not read as it is");
			FUZZ_CHECK(chunk_reader_next(&cr, out, sizeof(out)) == 0,
				   "more than one RUNS chunk was read");
			return;
		}
		part_runs.n = 0;
		part_runs.overflow = false;
		got = ref_chunk(out, (size_t)n, &part_runs);
		FUZZ_CHECK(got == (size_t)n && out[12] == 0, "a part is not a "
			   "RUNS chunk the spec accepts");
		FUZZ_CHECK(le(out, 8) == at, "a part starts at %llu, not %llu",
			   (unsigned long long)le(out, 8),
			   (unsigned long long)at);
		at += le(out + 8, 4);
		for (size_t i = 0; i < part_runs.n; i++)
			runs_add(&again_runs, part_runs.first[i],
				 part_runs.count[i]);
	}
	FUZZ_CHECK(chunk_reader_done(&cr) && at == first + span,
		   "the parts end at %llu, not at the span's end",
		   (unsigned long long)at);
	FUZZ_CHECK(runs_eq(&got_runs, &again_runs), "the parts hold other "
		   "pages than the chunk");
}

/* The input as one chunk. */
static void check_chunk(const uint8_t *data, size_t size)
{
	static uint64_t bits[CHUNK_MAX_PAGES / 64];
	static uint8_t out[CHUNK_MAX_SIZE];
	size_t want = ref_chunk(data, size, &ref_runs);
	uint64_t first, end;
	uint32_t span;
	int r, n;

	got_runs.n = 0;
	got_runs.overflow = false;
	r = chunk_decode(data, size, collect, &got_runs);
	check_batches(data, size, r);
	if (!want) {
		FUZZ_CHECK(r == -EBADMSG, "chunk_decode accepted a chunk the "
			   "spec calls malformed (returned %d)", r);
		FUZZ_CHECK(got_runs.n == 0, "chunk_decode reported runs of a "
			   "malformed chunk");
		return;
	}
	FUZZ_CHECK(r > 0 && (size_t)r == want, "chunk_decode returned %d, "
		   "the spec says a valid chunk of %zu bytes", r, want);
	FUZZ_CHECK(runs_eq(&ref_runs, &got_runs), "chunk_decode reported "
		   "%zu runs, the spec %zu, or different ones", got_runs.n,
		   ref_runs.n);

	/* the runs: inside the span, increasing, never touching */
	chunk_peek(data, &first, &span);
	end = first;
	for (size_t i = 0; i < got_runs.n; i++) {
		FUZZ_CHECK(got_runs.count[i] >= 1 &&
			   got_runs.first[i] >= end &&
			   (i == 0 || got_runs.first[i] > end) &&
			   got_runs.first[i] + got_runs.count[i] <=
			   first + span, "run %zu out of order or span", i);
		end = got_runs.first[i] + got_runs.count[i];
	}

	/* re-encoded: the same pages, in no more bytes */
	memset(bits, 0, sizeof(bits));
	for (size_t i = 0; i < got_runs.n; i++)
		for (uint64_t pg = got_runs.first[i] - first;
		     pg < got_runs.first[i] - first + got_runs.count[i]; pg++)
			bits[pg / 64] |= 1ULL << (pg % 64);
	n = chunk_encode(first, span, bits, out);
	FUZZ_CHECK(n > 0 && n <= r, "chunk_encode gave %d bytes for a chunk "
		   "of %d", n, r);
	again_runs.n = 0;
	again_runs.overflow = false;
	FUZZ_CHECK(chunk_decode(out, (size_t)n, collect, &again_runs) == n,
		   "chunk_encode's chunk does not decode");
	FUZZ_CHECK(runs_eq(&got_runs, &again_runs), "re-encoded chunk holds "
		   "other pages");
	check_reader(data, want, first, span);
}

/* ------------------------------------------------------------ packets */

/* RANGES chunks (section 6.11 and 9.4); 0 or -EBADMSG. */
static int ref_ranges(const uint8_t *body, size_t blen)
{
	uint64_t total = le(body + 16, 8), pages = 0, next = 0;
	uint64_t nchunks = le(body + 24, 4);
	size_t off = 32;

	for (uint64_t i = 0; i < nchunks; i++) {
		size_t n = ref_chunk(body + off, blen - off, &ref_runs);
		uint64_t first = n ? le(body + off, 8) : 0;

		if (!n || (i && first < next))
			return -EBADMSG;
		next = first + le(body + off + 8, 4);
		for (size_t k = 0; k < ref_runs.n; k++)
			pages += ref_runs.count[k];
		off += n;
	}
	return off == blen && pages <= total ? 0 : -EBADMSG;
}

/* LIST bodies (sections 6.2, 6.3, 6.13, 6.14); 0 or -EBADMSG. */
static int ref_list(const struct spec *sp, const uint8_t *body, size_t blen)
{
	/* GET_FDS_REPLY (6.14): ioas_id, hwpt_id, then ndevices */
	uint64_t count = le(body + (sp->type == 0x8012 ? 8 : 0), 4);
	uint8_t seen[PROTO_MAX_MSG / 72 + 2] = { 0 };

	if (count * sp->entry != blen - sp->size)
		return -EBADMSG;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *e = body + sp->size + i * sp->entry;

		if ((sp->ersv.len && !zero(e, sp->ersv)) ||
		    (sp->ename >= 0 && !str64_ok(e + sp->ename)))
			return -EBADMSG;
		if (sp->type == 0x8012) {
			/* fd_index: 1 .. count, each once */
			uint64_t fi = le(e + 68, 4);

			if (!fi || fi > count || seen[fi])
				return -EBADMSG;
			seen[fi] = 1;
		}
	}
	return 0;
}

/* What proto_decode() must return for this packet, by the spec alone. */
static int ref_decode(const uint8_t *p, size_t len)
{
	const struct spec *sp;
	const uint8_t *body = p + 16;
	uint64_t flags, id;
	size_t blen;

	if (len < 16)
		return -EBADMSG;
	if (len > PROTO_MAX_MSG || le(p + 4, 4) != len)
		return -EMSGSIZE;
	sp = spec_of((uint16_t)le(p, 2));
	if (!sp)
		return -EPROTO;
	flags = le(p + 2, 2);
	id = le(p + 8, 8);
	blen = len - 16;
	if (flags & ~(uint64_t)(sp->more ? 1 : 0) ||
	    (sp->dir == REQ && !id) || (sp->dir == EV && id) ||
	    (sp->shape == FIXED ? blen != sp->size : blen < sp->size))
		return -EBADMSG;
	if (sp->shape == OPAQUE)
		return 1;	/* the body: not modelled (check_packet()) */
	for (unsigned int i = 0; i < 2; i++)
		if (sp->rsv[i].len && !zero(body, sp->rsv[i]))
			return -EBADMSG;
	if (sp->name >= 0 && !str64_ok(body + sp->name))
		return -EBADMSG;
	if (sp->flags >= 0) {
		uint64_t f = le(body + sp->flags, 4);

		if (f & ~(uint64_t)sp->mask || (sp->need && !(f & sp->need)))
			return -EBADMSG;
	}
	switch (sp->shape) {
	case LIST:
		return ref_list(sp, body, blen);
	case RANGES:
		return ref_ranges(body, blen);
	case ERRTEXT:
		/* errno 1 .. 4095; text up to 1024 bytes, no NUL */
		if (!le(body, 4) || le(body, 4) > 4095 || blen - 8 > 1024 ||
		    !text_ok(body + 8, blen - 8))
			return -EBADMSG;
		return 0;
	case TEXT:
		/* METRICS_REPLY (6.17): lines of text, each ending in '\n' */
		for (size_t i = 8, j; i < blen; i = j + 1) {
			for (j = i; j < blen && body[j] != '\n'; j++)
				;
			if (j == blen || !text_ok(body + i, j - i))
				return -EBADMSG;
		}
		return 0;
	default:
		break;
	}
	if (sp->type == 0x800c) {
		/* a client divides by page_size and max_leaf */
		uint64_t ps = le(body + 8, 8), leaf = le(body + 16, 8);

		if (!pow2(ps) || !pow2(leaf) || leaf < ps)
			return -EBADMSG;
	}
	return 0;
}

static uint8_t enc[PROTO_MAX_MSG];

/* chunk_batch_fn: count the pages */
static int count_batch(void *ctx, const struct extent *runs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*(uint64_t *)ctx += runs[i].count;
	return 0;
}

/*
 * The lazy way (libdirty's): proto_decode_lazy(), then a RANGES packet's
 * chunks read once by proto_ranges_decode() and its pages counted
 * against total_pages, refuses exactly what proto_decode() refuses (@r).
 */
static void check_lazy(const uint8_t *data, size_t size, int r)
{
	static struct extent runs[CHUNK_MAX_PAIRS];
	struct proto_msg m;
	uint64_t pages = 0;
	int lazy = proto_decode_lazy(data, size, &m);

	if (lazy || m.type != PROTO_RANGES) {
		FUZZ_CHECK(lazy == r, "proto_decode_lazy returned %d, "
			   "proto_decode %d", lazy, r);
		return;
	}
	batch_cap = size % 2 ? CHUNK_MAX_PAIRS : 1 + size % 5;
	lazy = proto_ranges_decode(&m.ranges, runs, batch_cap, count_batch,
				   &pages);
	FUZZ_CHECK(lazy == 0 || lazy == -EBADMSG, "proto_ranges_decode "
		   "returned %d", lazy);
	if (!lazy && pages > m.ranges.total_pages)
		lazy = -EBADMSG;
	FUZZ_CHECK(lazy == r, "RANGES read lazily: %d, proto_decode %d", lazy,
		   r);
}

static void check_packet(const uint8_t *data, size_t size)
{
	struct proto_msg m;
	int want = ref_decode(data, size);
	int r = proto_decode(data, size, &m), n;

	/* an OPAQUE body: the header was right, the decoder judges the rest */
	if (want == 1)
		want = r == -EBADMSG ? r : 0;

	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO,
		   "proto_decode returned %d, not a documented error", r);
	FUZZ_CHECK(r == want, "proto_decode returned %d, the spec says %d "
		   "(type 0x%04x, %zu bytes)", r, want,
		   size >= 2 ? (unsigned int)le(data, 2) : 0u, size);
	check_lazy(data, size, r);
	if (r)
		return;
	FUZZ_CHECK(proto_type_name(m.type) != NULL, "decoded type 0x%04x has "
		   "no name", m.type);
	n = proto_encode(&m, enc, sizeof(enc));
	FUZZ_CHECK(n >= 0 && (size_t)n == size && !memcmp(enc, data, size),
		   "%s: decode then encode gave %d bytes, not the %zu in",
		   proto_type_name(m.type), n, size);
	n = proto_encode(&m, enc, size - 1);
	FUZZ_CHECK(n == -EMSGSIZE, "%s: encoding into %zu bytes returned %d",
		   proto_type_name(m.type), size - 1, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy: ASan then sees any read past the end */
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		abort();
	memcpy(copy, data, size);
	check_packet(copy, size);
	check_chunk(copy, size);
	free(copy);
	return 0;
}
