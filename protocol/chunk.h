/* SPDX-License-Identifier: MIT */
/*
 * Dirty-range chunks: the compact form in which a set of dirty pages
 * travels (to a client, and in the daemon's record of what it sent).
 *
 * A chunk covers at most CHUNK_MAX_PAGES pages starting at page @first (page
 * numbers are IOVA / page size).  Its payload is one of:
 *
 *   CHUNK_RUNS  (gap, run) pairs of ULEB128 integers: starting from @first,
 *               skip gap pages, then run (>= 1) dirty pages; repeated.
 *   CHUNK_RAW   a bitmap: bit i of byte i/8 is page @first + i; trailing
 *               zero bytes are left out.
 *
 * The encoder picks whichever is smaller (RUNS when strictly smaller), so
 * a chunk is never more than its header (CHUNK_HEADER_SIZE) larger than
 * the raw bitmap of its span.
 * Layout (little-endian):
 *
 *   0  le64 first     first page of the span
 *   8  le32 span      pages covered, 1 .. CHUNK_MAX_PAGES
 *  12  u8   kind      CHUNK_RUNS or CHUNK_RAW
 *  13  u8   reserved  0
 *  14  le16 len       payload bytes that follow
 */
#ifndef DIRTYD_PROTOCOL_CHUNK_H
#define DIRTYD_PROTOCOL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/extent.h"

#define CHUNK_MAX_PAGES 32768u
#define CHUNK_HEADER_SIZE 16u
/* The one size limit of a chunk (PROTOCOL.md 9.2): a RAW payload of a whole
 * span fits it exactly; a RUNS payload longer than it is cut (see
 * chunk_runs_part()). */
#define CHUNK_MAX_PAYLOAD (CHUNK_MAX_PAGES / 8)
#define CHUNK_MAX_SIZE (CHUNK_HEADER_SIZE + CHUNK_MAX_PAYLOAD)

enum chunk_kind {
	CHUNK_RUNS = 0,
	CHUNK_RAW = 1,
};

/**
 * chunk_encode() - encode pages [@first, @first + @span) whose bits are
 * @bits (bit i of word i/64 is page @first + i) into @out, which must hold
 * CHUNK_MAX_SIZE bytes.  Returns the chunk's size, 0 when no page of the span
 * is dirty (nothing is written), or -EINVAL.
 */
int chunk_encode(uint64_t first, uint32_t span, const uint64_t *bits,
		 uint8_t *out);

/* Called for every run of a decoded chunk, in order. */
typedef int (*chunk_run_fn)(void *ctx, uint64_t first, uint64_t count);

/**
 * chunk_decode() - validate the chunk at @buf (@len bytes available) and
 * report its runs to @fn (with @fn NULL only validate).  Returns the
 * chunk's size, or -EBADMSG for a malformed chunk (nothing is reported
 * then), or whatever non-zero @fn returned.  The runs of a chunk are
 * maximal: in increasing order, none touching the next.
 */
int chunk_decode(const uint8_t *buf, size_t len, chunk_run_fn fn, void *ctx);

/* Called with @n >= 1 runs of a decoded chunk, in order (the batches of
 * one chunk in order too). */
typedef int (*chunk_batch_fn)(void *ctx, const struct extent *runs, size_t n);

/* The most (gap, run) pairs a RUNS payload holds. */
#define CHUNK_MAX_PAIRS (CHUNK_MAX_PAYLOAD / 2)

/**
 * chunk_decode_batch() - chunk_decode() handing the runs over in batches
 * of at most @cap, written to @runs: as chunk_decode(), but one call of
 * @fn per batch instead of one per run (-EINVAL without @runs, @cap or
 * @fn).  Nothing is reported for a malformed chunk.  A RAW payload is
 * read once, a word at a time (its validity is its header and its last
 * byte); a RUNS payload once when @cap >= CHUNK_MAX_PAIRS (or its length
 * / 2), else validated first.
 */
int chunk_decode_batch(const uint8_t *buf, size_t len, struct extent *runs,
		       size_t cap, chunk_batch_fn fn, void *ctx);

/** chunk_peek() - first page and span of a chunk already validated. */
void chunk_peek(const uint8_t *buf, uint64_t *first, uint32_t *span);

/**
 * chunk_size() - the size of the chunk whose header is at @buf (@len bytes
 * available), checking only its header: -EBADMSG unless the header is
 * well formed and its payload (1 .. CHUNK_MAX_PAYLOAD bytes) is within
 * @len.  The one place the size limit is enforced.
 */
int chunk_size(const uint8_t *buf, size_t len);

/** chunk_kind() - CHUNK_RUNS or CHUNK_RAW: the kind of a valid chunk. */
enum chunk_kind chunk_kind(const uint8_t *buf);

/**
 * chunk_runs_part() - the dirty pages of the valid chunk @buf (@len bytes)
 * at or after page *@from, as one CHUNK_RUNS chunk written to @out (@cap
 * bytes), for a reader that takes RUNS only.  A span whose runs take more
 * than CHUNK_MAX_PAYLOAD bytes is cut between runs: the part covers from
 * *@from to the end of the last run that fits, or to the end of @buf's span
 * when the rest fits; *@from moves to its end.  Where the part is cut does
 * not depend on @cap: a part larger than @cap is -ENOSPC (*@from and the
 * bytes of @out past @cap unchanged), so a caller may offer what room it has
 * and try again with CHUNK_MAX_SIZE.  *@from starts at @buf's first page and
 * must only take the values this function gives it.  Returns the part's
 * size, 0 when no dirty page is left (*@from is then the span's end),
 * -ENOSPC, or -EBADMSG for a malformed @buf.
 */
int chunk_runs_part(const uint8_t *buf, size_t len, uint64_t *from,
		    uint8_t *out, size_t cap);

/**
 * struct chunk_reader - a sequence of valid chunks back to back (a
 * generation's record, subscriber.h), read one chunk at a time as one client
 * takes them: each as it is stored, except that a reader that takes RUNS
 * only (@runs_only) gets a CHUNK_RAW chunk as the RUNS parts of its span
 * (chunk_runs_part()).  Set @buf, @len and @runs_only, the rest zero.
 */
struct chunk_reader {
	const uint8_t *buf;
	size_t len;
	bool runs_only;
	size_t off;		/* of the chunk being read */
	bool in_part;		/* runs_only: a part of it was taken ... */
	uint64_t from;		/* ... and the next one starts here */
};

/**
 * chunk_reader_next() - write the next chunk into @out (@cap bytes) and
 * move past it.  Returns its size, 0 at the end, -ENOSPC when it does not
 * fit @cap (nothing moves: the same chunk comes next), or -EBADMSG for a
 * malformed sequence.
 */
int chunk_reader_next(struct chunk_reader *cr, uint8_t *out, size_t cap);
/** chunk_reader_done() - every chunk has been read. */
bool chunk_reader_done(const struct chunk_reader *cr);

#endif
