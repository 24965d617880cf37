// SPDX-License-Identifier: MIT
#include "daemon/extent.h"

void extent_scan_init(struct extent_scan *s, extent_fn fn, void *ctx)
{
	*s = (struct extent_scan){ .fn = fn, .ctx = ctx };
}

/* Add the run [first, first + count): extend the open run or replace it. */
static int extent_add(struct extent_scan *s, uint64_t first, uint64_t count)
{
	int r;

	if (s->has_open && s->open.first + s->open.count == first) {
		s->open.count += count;
		return 0;
	}
	if (s->has_open) {
		r = s->fn(s->ctx, &s->open);
		if (r)
			return r;
	}
	s->open = (struct extent){ .first = first, .count = count };
	s->has_open = true;
	return 0;
}

/* Skip zero words: the common case at low dirty densities. */
static const uint64_t *skip_zero_words_portable(const uint64_t *p,
						const uint64_t *end)
{
	while (end - p >= 4 && !(p[0] | p[1] | p[2] | p[3]))
		p += 4;
	while (p < end && !*p)
		p++;
	return p;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static const uint64_t *skip_zero_words_avx2(const uint64_t *p,
					    const uint64_t *end)
{
	while (end - p >= 16) {
		__m256i a = _mm256_loadu_si256((const __m256i *)p);
		__m256i b = _mm256_loadu_si256((const __m256i *)(p + 4));
		__m256i c = _mm256_loadu_si256((const __m256i *)(p + 8));
		__m256i d = _mm256_loadu_si256((const __m256i *)(p + 12));
		__m256i o = _mm256_or_si256(_mm256_or_si256(a, b),
					    _mm256_or_si256(c, d));

		if (!_mm256_testz_si256(o, o))
			break;
		p += 16;
	}
	return skip_zero_words_portable(p, end);
}
#endif

typedef const uint64_t *(*skip_fn)(const uint64_t *, const uint64_t *);

static skip_fn skip_zero_words_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return skip_zero_words_avx2;
#endif
	return skip_zero_words_portable;
}

const char *extent_scan_impl(void)
{
#if defined(__x86_64__)
	if (skip_zero_words_pick() == skip_zero_words_avx2)
		return "avx2";
#endif
	return "portable";
}

/* Report the runs of one word whose bit 0 is page @base. */
static int extent_scan_word(struct extent_scan *s, uint64_t word,
			    uint64_t base)
{
	int r;

	if (word == ~0ULL)
		return extent_add(s, base, 64);
	while (word) {
		unsigned int start = __builtin_ctzll(word);
		uint64_t ones = ~(word >> start);
		unsigned int len = ones ? (unsigned int)__builtin_ctzll(ones) : 64 - start;

		r = extent_add(s, base + start, len);
		if (r)
			return r;
		if (start + len >= 64)
			break;
		word &= ~0ULL << (start + len);
	}
	return 0;
}

int extent_scan_bitmap(struct extent_scan *s, const uint64_t *bitmap,
		       uint64_t base, uint64_t nbits)
{
	static skip_fn skip;
	const uint64_t *p = bitmap, *end = bitmap + nbits / 64;
	int r;

	if (!skip)
		skip = skip_zero_words_pick();
	for (;;) {
		p = skip(p, end);
		if (p == end)
			break;
		r = extent_scan_word(s, *p, base + (uint64_t)(p - bitmap) * 64);
		if (r)
			return r;
		p++;
	}
	if (nbits & 63)
		return extent_scan_word(s, *end & ((1ULL << (nbits & 63)) - 1),
					base + (nbits & ~63ULL));
	return 0;
}

int extent_scan_finish(struct extent_scan *s)
{
	int r = 0;

	if (s->has_open)
		r = s->fn(s->ctx, &s->open);
	s->has_open = false;
	return r;
}
