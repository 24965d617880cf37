// SPDX-License-Identifier: MIT
#include "protocol/extent.h"

void extent_scan_init(struct extent_scan *s, extent_fn fn, void *ctx)
{
	*s = (struct extent_scan){ .fn = fn, .ctx = ctx };
}

#define EXTENT_INLINE static inline __attribute__((always_inline))

/* Add the run [first, first + count): extend the open run or replace it. */
EXTENT_INLINE int extent_add(struct extent_scan *s, uint64_t first,
			     uint64_t count)
{
	struct extent done;
	int r;

	if (s->has_open && s->open.first + s->open.count == first) {
		s->open.count += count;
		return 0;
	}
	if (s->has_open) {
		done = s->open;
		r = s->fn(s->ctx, &done);
		if (r)
			return r;
	}
	s->open = (struct extent){ .first = first, .count = count };
	s->has_open = true;
	return 0;
}

/*
 * The runs of a non-zero word whose bit 0 is page @base.  Adding the
 * lowest set bit to the word carries through its lowest run: the sum has
 * that run cleared and the bit just past it set (or none, when the run
 * reaches bit 63), so one add, one and and two ctz find each run.
 */
EXTENT_INLINE int extent_scan_word(struct extent_scan *s, uint64_t word,
				   uint64_t base)
{
	int r;

	if (word == ~0ULL)
		return extent_add(s, base, 64);
	do {
		uint64_t carry = word + (word & -word);
		unsigned int start = __builtin_ctzll(word);
		unsigned int end = carry ? (unsigned int)__builtin_ctzll(carry) :
					   64;

		r = extent_add(s, base + start, end - start);
		if (r)
			return r;
		word &= carry;
	} while (word);
	return 0;
}

/*
 * The bitmap is taken in blocks of 64 words.  A block's mask of non-zero
 * words drives the scan, so zero words cost no branch of their own; the
 * search for the next block with any bit set (the whole scan at low dirty
 * densities) is vectorised where the CPU can (chosen at run time), and
 * returns to plain code before any run is reported.
 */

/* The mask of the block at @p: bit i set when word i is not zero. */
typedef uint64_t (*block_mask_fn)(const uint64_t *p);

static uint64_t block_mask_portable(const uint64_t *p)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < EXTENT_BLOCK; i++)
		m |= (uint64_t)(p[i] != 0) << i;
	return m;
}

/* The mask of the first block from *@b on with a bit set (*@b is moved to
 * it), or 0 when none is left. */
EXTENT_INLINE uint64_t next_block_with(const uint64_t *bitmap, uint64_t *b,
				       uint64_t nblocks, block_mask_fn mask)
{
	for (; *b < nblocks; (*b)++) {
		uint64_t m = mask(bitmap + *b * EXTENT_BLOCK);

		if (m)
			return m;
	}
	return 0;
}

typedef uint64_t (*next_block_fn)(const uint64_t *bitmap, uint64_t *b,
				  uint64_t nblocks);

static uint64_t next_block_portable(const uint64_t *bitmap, uint64_t *b,
				    uint64_t nblocks)
{
	return next_block_with(bitmap, b, nblocks, block_mask_portable);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* 4 bits, one per word of @v that is not zero. */
__attribute__((target("avx2"))) EXTENT_INLINE uint64_t
nonzero4_avx2(__m256i v)
{
	__m256i z = _mm256_cmpeq_epi64(v, _mm256_setzero_si256());

	return ~(unsigned int)_mm256_movemask_pd(_mm256_castsi256_pd(z)) & 15;
}

/* 16 words tested at once, so that a zero stretch costs one test. */
__attribute__((target("avx2"))) EXTENT_INLINE uint64_t
block_mask_avx2_inline(const uint64_t *p)
{
	const __m256i *v = (const __m256i *)p;
	uint64_t m = 0;

	for (unsigned int i = 0; i < EXTENT_BLOCK / 4; i += 4) {
		__m256i w0 = _mm256_loadu_si256(v + i);
		__m256i w1 = _mm256_loadu_si256(v + i + 1);
		__m256i w2 = _mm256_loadu_si256(v + i + 2);
		__m256i w3 = _mm256_loadu_si256(v + i + 3);
		__m256i o = _mm256_or_si256(_mm256_or_si256(w0, w1),
					    _mm256_or_si256(w2, w3));

		if (_mm256_testz_si256(o, o))
			continue;
		m |= (nonzero4_avx2(w0) | nonzero4_avx2(w1) << 4 |
		      nonzero4_avx2(w2) << 8 | nonzero4_avx2(w3) << 12)
		     << (4 * i);
	}
	return m;
}

__attribute__((target("avx2")))
static uint64_t block_mask_avx2(const uint64_t *p)
{
	return block_mask_avx2_inline(p);
}

__attribute__((target("avx2")))
static uint64_t next_block_avx2(const uint64_t *bitmap, uint64_t *b,
				uint64_t nblocks)
{
	return next_block_with(bitmap, b, nblocks, block_mask_avx2_inline);
}
#endif

static next_block_fn next_block_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return next_block_avx2;
#endif
	return next_block_portable;
}

static block_mask_fn block_mask_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return block_mask_avx2;
#endif
	return block_mask_portable;
}

uint64_t extent_block_mask(const uint64_t *words)
{
	static block_mask_fn picked;
	block_mask_fn mask = __atomic_load_n(&picked, __ATOMIC_RELAXED);

	if (!mask) {
		mask = block_mask_pick();
		__atomic_store_n(&picked, mask, __ATOMIC_RELAXED);
	}
	return mask(words);
}

const char *extent_scan_impl(void)
{
#if defined(__x86_64__)
	if (next_block_pick() == next_block_avx2)
		return "avx2";
#endif
	return "portable";
}

/* Counting set bits: without -mpopcnt, __builtin_popcountll() is a call
 * to libgcc's __popcountdi2 (19 % of the loop's samples at 16
 * subscribers); the same loop compiled for POPCNT is one instruction a
 * word. */
typedef uint64_t (*count_fn)(const uint64_t *words, uint64_t n);

#define COUNT_BODY							\
	uint64_t c = 0;							\
									\
	for (uint64_t i = 0; i < n; i++)				\
		c += (uint64_t)__builtin_popcountll(			\
			__atomic_load_n(&words[i], __ATOMIC_RELAXED));	\
	return c

static uint64_t count_portable(const uint64_t *words, uint64_t n)
{
	COUNT_BODY;
}

#if defined(__x86_64__)
__attribute__((target("popcnt")))
static uint64_t count_popcnt(const uint64_t *words, uint64_t n)
{
	COUNT_BODY;
}
#endif

static count_fn count_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("popcnt"))
		return count_popcnt;
#endif
	return count_portable;
}

uint64_t extent_count_bits(const uint64_t *words, uint64_t n)
{
	static count_fn picked;
	count_fn count = __atomic_load_n(&picked, __ATOMIC_RELAXED);

	if (!count) {
		count = count_pick();
		__atomic_store_n(&picked, count, __ATOMIC_RELAXED);
	}
	return count(words, n);
}

const char *extent_count_impl(void)
{
#if defined(__x86_64__)
	if (count_pick() == count_popcnt)
		return "popcnt";
#endif
	return "portable";
}

int extent_scan_bitmap(struct extent_scan *s, const uint64_t *bitmap,
		       uint64_t base, uint64_t nbits)
{
	/* picked once; any thread (the chunk encoder runs on several) */
	static next_block_fn picked;
	next_block_fn next_block = __atomic_load_n(&picked, __ATOMIC_RELAXED);
	uint64_t nwords = nbits / 64, nblocks = nwords / EXTENT_BLOCK, b = 0;
	struct extent_scan l = *s;	/* in registers while scanning */
	int r = 0;

	if (!next_block) {
		next_block = next_block_pick();
		__atomic_store_n(&picked, next_block, __ATOMIC_RELAXED);
	}
	for (uint64_t m; !r && (m = next_block(bitmap, &b, nblocks)); b++) {
		for (; !r && m; m &= m - 1) {
			uint64_t k = b * EXTENT_BLOCK + __builtin_ctzll(m);

			r = extent_scan_word(&l, bitmap[k], base + k * 64);
		}
	}
	for (uint64_t k = nblocks * EXTENT_BLOCK; !r && k < nwords; k++)
		if (bitmap[k])
			r = extent_scan_word(&l, bitmap[k], base + k * 64);
	if (!r && nbits & 63) {
		uint64_t w = bitmap[nwords] & ((1ULL << (nbits & 63)) - 1);

		if (w)
			r = extent_scan_word(&l, w, base + nwords * 64);
	}
	*s = l;
	return r;
}

int extent_scan_finish(struct extent_scan *s)
{
	int r = 0;

	if (s->has_open)
		r = s->fn(s->ctx, &s->open);
	s->has_open = false;
	return r;
}
