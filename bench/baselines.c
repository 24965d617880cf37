// SPDX-License-Identifier: MIT
/*
 * The benchmarks' baselines and patterns (baselines.h).
 *
 * Owns: the plain read, the port of Cloud Hypervisor's scan, the
 * patterns every program in bench/ measures on, and their median.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "baselines.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* ---------------------------------------------------------- plain read */

/* Sum of the words: the plain read, 4 independent accumulators. */
static uint64_t read_portable(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	size_t n = len / 8, i;

	for (i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b += w[i + 1];
		c += w[i + 2];
		d += w[i + 3];
	}
	for (; i < n; i++)
		a += w[i];
	return a + b + c + d;
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static uint64_t read_avx2(const void *p, size_t len)
{
	const __m256i *v = p;
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
	size_t n = len / 32, i;
	uint64_t out[4];

	for (i = 0; i + 4 <= n; i += 4) {
		a = _mm256_add_epi64(a, _mm256_load_si256(v + i));
		b = _mm256_add_epi64(b, _mm256_load_si256(v + i + 1));
		c = _mm256_add_epi64(c, _mm256_load_si256(v + i + 2));
		d = _mm256_add_epi64(d, _mm256_load_si256(v + i + 3));
	}
	for (; i < n; i++)
		a = _mm256_add_epi64(a, _mm256_load_si256(v + i));
	a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
	_mm256_storeu_si256((__m256i *)out, a);
	return out[0] + out[1] + out[2] + out[3] +
	       read_portable((const char *)p + n * 32, len % 32);
}
#endif

bench_read_fn bench_read_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return read_avx2;
#endif
	return read_portable;
}

const char *bench_read_impl(bench_read_fn fn)
{
	return fn == read_portable ? "portable" : "avx2";
}

/* ------------------------------------------------- Cloud Hypervisor's scan */

static inline void range_push(struct range_vec *rv, uint64_t gpa,
			      uint64_t length)
{
	if (rv->n == rv->cap) {
		/* RawVec: 4 elements first, then doubling */
		size_t cap = rv->cap ? 2 * rv->cap : 4;
		struct mem_range *v = realloc(rv->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "bench: out of memory\n");
			exit(1);
		}
		rv->v = v;
		rv->cap = cap;
	}
	rv->v[rv->n++] = (struct mem_range){ .gpa = gpa, .length = length };
}

/*
 * Cloud Hypervisor's MemoryRangeTable::from_dirty_bitmap() since PR #7468
 * ("Speed up dirty_log() (a lot)", vm-migration/src/protocol.rs
 * dirty_ranges_iter() and vm-migration/src/bitpos_iterator.rs), in C:
 *
 *   bitmap.into_iter().bit_positions()       BitposIterator: a zero word
 *                                            is skipped with one test; in
 *                                            a non-zero word each set bit
 *                                            is found by trailing_zeros()
 *                                            of the word shifted past the
 *                                            last one, one item per bit
 *     .map(|b| b..(b + 1))
 *     .coalesce(|prev, curr| prev.end == curr.start -> merge)
 *     .map(|r| MemoryRange { gpa: start + r.start * page_size,
 *                             length: (r.end - r.start) * page_size })
 *     .collect()                             a new Vec each call
 *
 * With @rv empty this is the merged code (a fresh Vec, grown by doubling);
 * with @rv's capacity kept from an earlier call it is the reuse that their
 * issue #7474 proposes.
 */
void ch_from_dirty_bitmap(const uint64_t *bm, uint64_t nwords,
			  uint64_t start_addr, uint64_t page_size,
			  struct range_vec *rv)
{
	uint64_t start = 0, end = 0;
	bool have = false;

	rv->n = 0;
	for (uint64_t word_pos = 0; word_pos < nwords; word_pos++) {
		uint64_t word = bm[word_pos];
		unsigned int word_bit = 0;

		while (word != 0 && word_bit < 64) {
			uint64_t shifted = word >> word_bit;
			unsigned int zeroes;
			uint64_t b;

			if (!shifted)
				break;
			zeroes = __builtin_ctzll(shifted);
			b = word_pos * 64 + word_bit + zeroes;
			word_bit = zeroes + word_bit + 1;
			if (have && end == b) {
				end = b + 1;
				continue;
			}
			if (have)
				range_push(rv, start_addr + start * page_size,
					   (end - start) * page_size);
			start = b;
			end = b + 1;
			have = true;
		}
	}
	if (have)
		range_push(rv, start_addr + start * page_size,
			   (end - start) * page_size);
}

/* ------------------------------------------------------------ patterns */

/* splitmix64 */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double rng_unit(uint64_t *s)
{
	return ((rng_next(s) >> 11) + 1) * 0x1.0p-53;
}

static void bm_set_run(uint64_t *bm, uint64_t first, uint64_t n)
{
	while (n) {
		unsigned int off = first % 64;
		uint64_t k = 64 - off < n ? 64 - off : n;

		bm[first / 64] |= (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << off;
		first += k;
		n -= k;
	}
}

void pattern_fill(uint64_t *bm, uint64_t npages, double density,
		  enum bench_pattern pat, uint64_t seed)
{
	uint64_t s = seed, pos;

	memset(bm, 0, (npages + 63) / 64 * 8);
	if (density <= 0)
		return;
	if (density >= 1) {
		bm_set_run(bm, 0, npages);
		return;
	}
	if (pat == PAT_UNIFORM) {
		double l = log1p(-density);

		pos = (uint64_t)(log(rng_unit(&s)) / l);
		while (pos < npages) {
			bm[pos / 64] |= 1ULL << (pos % 64);
			pos += 1 + (uint64_t)(log(rng_unit(&s)) / l);
		}
		return;
	}
	double gap = CLUSTER_PAGES * (1 - density) / density;

	pos = (uint64_t)(-log(rng_unit(&s)) * gap);
	while (pos < npages) {
		uint64_t n = npages - pos < CLUSTER_PAGES ? npages - pos :
							    CLUSTER_PAGES;

		bm_set_run(bm, pos, n);
		pos += CLUSTER_PAGES + (uint64_t)(-log(rng_unit(&s)) * gap);
	}
}

/* ------------------------------------------------- QEMU's way */

/*
 * QEMU's fold of a dirty bitmap into its RAM dirty bitmaps, the fast path
 * of physical_memory_set_dirty_lebitmap() (system/physmem.c): for a start
 * on a word and host page == target page, each non-zero word is counted
 * (ctpopl) and ORed with qatomic_or() (seq cst) into
 * ram_list.dirty_memory[DIRTY_MEMORY_VGA] and, while migrating,
 * DIRTY_MEMORY_MIGRATION.  Modelled with one OR into one RAM bitmap: a
 * lower bound on QEMU's cost.
 */
uint64_t vmm_fold(const uint64_t *bm, uint64_t *ram, uint64_t nwords)
{
	uint64_t num_dirty = 0;

	for (uint64_t k = 0; k < nwords; k++) {
		if (bm[k]) {
			uint64_t temp = bm[k];

			num_dirty += __builtin_popcountll(temp);
			__atomic_fetch_or(&ram[k], temp, __ATOMIC_SEQ_CST);
		}
	}
	return num_dirty;
}

/*
 * migration_bitmap_sync() -> ramblock_sync_dirty_bitmap() ->
 * physical_memory_sync_dirty_bitmap(), its fast path for a ramblock on a
 * word boundary: every word of DIRTY_MEMORY_MIGRATION read, a non-zero one
 * exchanged with 0 (qatomic_xchg) and its bits not yet in the block's
 * migration bitmap (rb->bmap) ORed in and counted.
 */
uint64_t vmm_sync(uint64_t *ram, uint64_t *dest, uint64_t nwords)
{
	uint64_t num_dirty = 0;

	for (uint64_t k = 0; k < nwords; k++) {
		if (ram[k]) {
			uint64_t bits = __atomic_exchange_n(&ram[k], 0,
							    __ATOMIC_SEQ_CST);
			uint64_t fresh = bits & ~dest[k];

			if (fresh) {
				__atomic_fetch_or(&dest[k], fresh,
						  __ATOMIC_SEQ_CST);
				num_dirty += __builtin_popcountll(fresh);
			}
		}
	}
	return num_dirty;
}

/*
 * ram_find_and_save_block(): migration_bitmap_find_dirty() is
 * find_next_bit() over rb->bmap from the last page sent, and each page
 * found is cleared (migration_bitmap_clear_dirty(): test_and_clear_bit)
 * before it is sent.  The runs go to @fn only for the check.
 */
void vmm_find(uint64_t *dest, uint64_t nwords, bench_run_fn fn, void *ctx)
{
	uint64_t npages = nwords * 64, page = 0, first = 0, n = 0;

	for (;;) {
		uint64_t w = page / 64, x;

		if (w >= nwords)
			break;
		/* find_next_bit() */
		x = dest[w] & (~0ULL << (page % 64));
		while (!x && ++w < nwords)
			x = dest[w];
		if (!x)
			break;
		page = w * 64 + (uint64_t)__builtin_ctzll(x);
		/* test_and_clear_bit() */
		__atomic_fetch_and(&dest[w], ~(1ULL << (page % 64)),
				   __ATOMIC_SEQ_CST);
		if (n && first + n == page) {
			n++;
		} else {
			if (n)
				fn(ctx, first, n);
			first = page;
			n = 1;
		}
		if (++page >= npages)
			break;
	}
	if (n)
		fn(ctx, first, n);
}
