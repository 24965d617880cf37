/* SPDX-License-Identifier: MIT */
/*
 * Dirty bitmaps into extents: runs of consecutive dirty pages.
 *
 * A scan walks a bitmap a word at a time, skips zero words, finds run edges
 * with ctz, and holds the last run open so that a run crossing into the next
 * bitmap (the next batch of the same range) merges with it.
 */
#ifndef DIRTYD_PROTOCOL_EXTENT_H
#define DIRTYD_PROTOCOL_EXTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One run of dirty pages, in units of the bitmap's page size. */
struct extent {
	uint64_t first;
	uint64_t count;
};

/* Called for every completed extent; a non-zero return stops the scan and is
 * returned by extent_scan()/extent_scan_finish(). */
typedef int (*extent_fn)(void *ctx, const struct extent *e);

struct extent_scan {
	extent_fn fn;
	void *ctx;
	struct extent open;	/* run that may still grow */
	bool has_open;
};

/** extent_scan_init() - start a scan that reports to @fn. */
void extent_scan_init(struct extent_scan *s, extent_fn fn, void *ctx);
/**
 * extent_scan_bitmap() - feed @nbits bits of @bitmap, whose bit 0 is page
 * @base.  Calls must come in increasing @base order; a run reaching the last
 * bit is held open until a later call or extent_scan_finish().
 */
int extent_scan_bitmap(struct extent_scan *s, const uint64_t *bitmap,
		       uint64_t base, uint64_t nbits);
/** extent_scan_impl() - "avx2" or "portable": the zero-skip in use. */

/* The words of one block of the zero-skip. */
#define EXTENT_BLOCK 64
/**
 * extent_block_mask() - bit i set when @words[i] is not zero, for the
 * EXTENT_BLOCK words at @words: the zero-skip's own test (AVX2 where the
 * CPU has it, 16 zero words at a time), for a walk that visits non-zero
 * words only without a branch per word.
 */
uint64_t extent_block_mask(const uint64_t *words);
const char *extent_scan_impl(void);

/**
 * extent_count_bits() - the set bits of @n words, each read once with a
 * relaxed atomic load (the words may be a subscriber's pending bitmap);
 * with the CPU's POPCNT where it has one (picked at the first call, like
 * the block scan's AVX2), else the portable count.
 */
uint64_t extent_count_bits(const uint64_t *words, uint64_t n);
/** extent_count_impl() - "popcnt" or "portable": what the count uses. */
const char *extent_count_impl(void);
/** extent_scan_finish() - report the run still open, if any. */
int extent_scan_finish(struct extent_scan *s);

#endif
