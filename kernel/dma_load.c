// SPDX-License-Identifier: MIT
/*
 * Simulated device DMA load: writer threads over backend_dma_write(), a
 * shared token bucket, and the oracle bitmap (see dma_load.h for the
 * ordering it guarantees).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "kernel/dma_load.h"

#define NSEC_PER_SEC 1000000000ULL
/* The longest a rate-limited writer sleeps before it looks at stop. */
#define DMA_LOAD_SLEEP_SLICE_NS 1000000ULL
/* Credit a rate-limited load may bank while it runs behind: 10 ms. */
#define DMA_LOAD_BURST_NS 10000000ULL

struct dma_load_thread {
	struct dma_load *l;
	pthread_t tid;
	uint64_t rng[4];	/* xoshiro256** */
};

struct dma_load {
	struct backend *b;
	struct dma_load_config cfg;
	uint64_t n_pages;	/* cfg.length / DMA_LOAD_PAGE_SIZE */

	uint64_t *oracle;	/* bit g: page cfg.iova + g * 4 KiB written */
	uint64_t oracle_words;
	uint64_t *hot;		/* DMA_PATTERN_HOTSET: page indices */
	uint64_t seq_cursor;	/* DMA_PATTERN_SEQUENTIAL: atomic */

	/* Pause protocol: see dma_load_enter() and dma_load_pause(). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;		/* atomic */
	int paused;		/* atomic */
	unsigned int inflight;	/* atomic: writers between enter and exit */

	/* Token bucket as a virtual schedule (GCRA), under rate_lock. */
	pthread_mutex_t rate_lock;
	uint64_t rate_next_ns;	/* when the next page may be written */

	/* Stats, atomic (relaxed). */
	uint64_t n_writes;
	uint64_t n_pages_written;
	uint64_t n_faults;
	uint64_t n_errors;
	int last_error;

	unsigned int n_threads;	/* started */
	struct dma_load_thread threads[];
};

/* ------------------------------------------------------------- PRNG */

static uint64_t dma_load_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void dma_load_rng_seed(uint64_t s[4], uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	int i;

	for (i = 0; i < 4; i++)
		s[i] = dma_load_splitmix64(&x);
}

static inline uint64_t dma_load_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t dma_load_rng_next(uint64_t s[4])
{
	uint64_t result = dma_load_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = dma_load_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64). */
static uint64_t dma_load_rng_below(uint64_t s[4], uint64_t n)
{
	return (uint64_t)(((unsigned __int128)dma_load_rng_next(s) * n) >> 64);
}

/* ------------------------------------------------------------- oracle */

static void dma_load_oracle_mark(struct dma_load *l, uint64_t first,
				 uint64_t count)
{
	uint64_t g = first, end = first + count;

	while (g < end) {
		uint64_t bit = g % 64;
		uint64_t n = end - g < 64 - bit ? end - g : 64 - bit;
		uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << bit;

		__atomic_fetch_or(&l->oracle[g / 64], mask, __ATOMIC_RELEASE);
		g += n;
	}
}

/* Set bits [first, last] of @bitmap. */
static void dma_load_bitmap_set(uint64_t *bitmap, uint64_t first,
				uint64_t last)
{
	uint64_t k;

	for (k = first; k <= last; k++)
		bitmap[k / 64] |= 1ULL << (k % 64);
}

int dma_load_oracle_take(struct dma_load *l, uint64_t iova, uint64_t length,
			 uint64_t page_size, uint64_t *bitmap)
{
	uint64_t lo, hi, g0, g1, w;

	if (!l || !bitmap || !page_size || (page_size & (page_size - 1)))
		return -EINVAL;
	if (iova % page_size || length % page_size ||
	    iova % DMA_LOAD_PAGE_SIZE || length % DMA_LOAD_PAGE_SIZE)
		return -EINVAL;
	if (iova + length < iova)
		return -EOVERFLOW;

	lo = iova > l->cfg.iova ? iova : l->cfg.iova;
	hi = iova + length < l->cfg.iova + l->cfg.length ?
		iova + length : l->cfg.iova + l->cfg.length;
	if (lo >= hi)
		return 0;
	g0 = (lo - l->cfg.iova) / DMA_LOAD_PAGE_SIZE;
	g1 = (hi - l->cfg.iova) / DMA_LOAD_PAGE_SIZE;

	for (w = g0 / 64; w <= (g1 - 1) / 64; w++) {
		uint64_t mask = ~0ULL, got;

		if (w == g0 / 64)
			mask &= ~0ULL << (g0 % 64);
		if (w == (g1 - 1) / 64 && g1 % 64)
			mask &= ~0ULL >> (64 - g1 % 64);
		/* Most words are clean: look before writing. */
		if (!(__atomic_load_n(&l->oracle[w], __ATOMIC_RELAXED) & mask))
			continue;
		got = __atomic_fetch_and(&l->oracle[w], ~mask,
					 __ATOMIC_ACQUIRE) & mask;
		while (got) {
			uint64_t g = w * 64 + __builtin_ctzll(got);
			uint64_t addr = l->cfg.iova + g * DMA_LOAD_PAGE_SIZE;

			got &= got - 1;
			dma_load_bitmap_set(bitmap, (addr - iova) / page_size,
					    (addr + DMA_LOAD_PAGE_SIZE - 1 -
					     iova) / page_size);
		}
	}
	return 0;
}

/* ------------------------------------------------------------- writes */

static int dma_load_do_write(struct dma_load *l, uint64_t first_page,
			     uint64_t count)
{
	int ret = backend_dma_write(l->b, l->cfg.dev_id,
				    l->cfg.iova +
				    first_page * DMA_LOAD_PAGE_SIZE,
				    count * DMA_LOAD_PAGE_SIZE);

	if (!ret) {
		/* The IOMMU's dirty bits first, then the oracle. */
		dma_load_oracle_mark(l, first_page, count);
		__atomic_fetch_add(&l->n_writes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&l->n_pages_written, count,
				   __ATOMIC_RELAXED);
	} else if (ret == -ENOENT) {
		__atomic_fetch_add(&l->n_faults, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&l->n_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&l->last_error, ret, __ATOMIC_RELAXED);
	}
	return ret;
}

int dma_load_write(struct dma_load *l, uint64_t iova, uint64_t length)
{
	if (!l || !length || iova % DMA_LOAD_PAGE_SIZE ||
	    length % DMA_LOAD_PAGE_SIZE || iova < l->cfg.iova ||
	    iova - l->cfg.iova > l->cfg.length ||
	    length > l->cfg.length - (iova - l->cfg.iova))
		return -EINVAL;
	return dma_load_do_write(l, (iova - l->cfg.iova) / DMA_LOAD_PAGE_SIZE,
				 length / DMA_LOAD_PAGE_SIZE);
}

/* The next write of a thread: @count pages from page index @first. */
static void dma_load_pick(struct dma_load_thread *t, uint64_t *first,
			  uint64_t *count)
{
	struct dma_load *l = t->l;

	*first = 0;
	*count = 1;
	switch (l->cfg.pattern) {
	case DMA_PATTERN_UNIFORM:
		*first = dma_load_rng_below(t->rng, l->n_pages);
		break;
	case DMA_PATTERN_CLUSTERED:
		*count = l->cfg.cluster_pages;
		*first = dma_load_rng_below(t->rng,
					    l->n_pages - *count + 1);
		break;
	case DMA_PATTERN_SEQUENTIAL:
		*first = __atomic_fetch_add(&l->seq_cursor, 1,
					    __ATOMIC_RELAXED) % l->n_pages;
		break;
	case DMA_PATTERN_HOTSET:
		*first = l->hot[dma_load_rng_below(t->rng,
						   l->cfg.hot_pages)];
		break;
	}
}

static uint64_t dma_load_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static bool dma_load_stopping(struct dma_load *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE);
}

/*
 * Wait for the token bucket to allow @count pages.  Returns false if the
 * load is stopping.  The schedule is shared: each caller books the next
 * free slot (never earlier than DMA_LOAD_BURST_NS ago, so a load that ran
 * behind catches up by at most that much) and sleeps until it, in slices.
 */
static bool dma_load_throttle(struct dma_load *l, uint64_t count)
{
	uint64_t rate = l->cfg.pages_per_sec, now, slot, cost;

	if (!rate)
		return !dma_load_stopping(l);
	cost = (uint64_t)((unsigned __int128)count * NSEC_PER_SEC / rate);

	now = dma_load_now_ns();
	pthread_mutex_lock(&l->rate_lock);
	slot = l->rate_next_ns;
	if (slot + DMA_LOAD_BURST_NS < now)
		slot = now - DMA_LOAD_BURST_NS;
	l->rate_next_ns = slot + cost;
	pthread_mutex_unlock(&l->rate_lock);

	while (now < slot) {
		uint64_t until = slot - now > DMA_LOAD_SLEEP_SLICE_NS ?
			now + DMA_LOAD_SLEEP_SLICE_NS : slot;
		struct timespec ts = {
			.tv_sec = until / NSEC_PER_SEC,
			.tv_nsec = until % NSEC_PER_SEC,
		};

		if (dma_load_stopping(l))
			return false;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		now = dma_load_now_ns();
	}
	return !dma_load_stopping(l);
}

/* Wake dma_load_pause() if it waits for the last writer to leave. */
static void dma_load_exit(struct dma_load *l)
{
	if (!__atomic_sub_fetch(&l->inflight, 1, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&l->paused, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&l->lock);
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
	}
}

/*
 * Announce a write; if the load is paused, step back, wait for resume (or
 * stop) and return false.  The increment of inflight and the load of
 * paused are both sequentially consistent, as are the store of paused and
 * the load of inflight in dma_load_pause(): either the writer sees the
 * pause, or the pauser sees the writer and waits for its exit.
 */
static bool dma_load_enter(struct dma_load *l)
{
	__atomic_add_fetch(&l->inflight, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&l->paused, __ATOMIC_SEQ_CST))
		return true;
	dma_load_exit(l);
	pthread_mutex_lock(&l->lock);
	while (__atomic_load_n(&l->paused, __ATOMIC_SEQ_CST) &&
	       !dma_load_stopping(l))
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return false;
}

static void *dma_load_thread_main(void *arg)
{
	struct dma_load_thread *t = arg;
	struct dma_load *l = t->l;
	uint64_t first, count;

	prctl(PR_SET_NAME, "dirtyd-dma");	/* the sim's DMA, by name */
	while (!dma_load_stopping(l)) {
		dma_load_pick(t, &first, &count);
		if (!dma_load_throttle(l, count))
			break;
		while (!dma_load_enter(l))
			if (dma_load_stopping(l))
				return NULL;
		dma_load_do_write(l, first, count);
		dma_load_exit(l);
	}
	return NULL;
}

int dma_load_pause(struct dma_load *l)
{
	if (!l)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	if (__atomic_load_n(&l->paused, __ATOMIC_SEQ_CST)) {
		pthread_mutex_unlock(&l->lock);
		return -EALREADY;
	}
	__atomic_store_n(&l->paused, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&l->inflight, __ATOMIC_SEQ_CST))
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

int dma_load_resume(struct dma_load *l)
{
	int ret = 0;

	if (!l)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	if (__atomic_load_n(&l->paused, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&l->paused, 0, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&l->cond);
	} else {
		ret = -EALREADY;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void dma_load_get_stats(const struct dma_load *l,
			struct dma_load_stats *out)
{
	if (!l || !out)
		return;
	*out = (struct dma_load_stats){
		.writes = __atomic_load_n(&l->n_writes, __ATOMIC_RELAXED),
		.pages = __atomic_load_n(&l->n_pages_written,
					 __ATOMIC_RELAXED),
		.faults = __atomic_load_n(&l->n_faults, __ATOMIC_RELAXED),
		.errors = __atomic_load_n(&l->n_errors, __ATOMIC_RELAXED),
		.last_error = __atomic_load_n(&l->last_error,
					      __ATOMIC_RELAXED),
	};
}

/* ------------------------------------------------------------- life */

/* Draw hot_pages distinct page indices (Floyd's algorithm). */
static int dma_load_draw_hotset(struct dma_load *l)
{
	uint64_t n = l->n_pages, k = l->cfg.hot_pages, j, i = 0, rng[4];
	uint64_t *seen;

	l->hot = calloc(k, sizeof(*l->hot));
	seen = calloc((n + 63) / 64, sizeof(*seen));
	if (!l->hot || !seen) {
		free(seen);
		return -ENOMEM;
	}
	dma_load_rng_seed(rng, l->cfg.seed, ~0ULL);
	for (j = n - k; j < n; j++) {
		uint64_t pick = dma_load_rng_below(rng, j + 1);

		if (seen[pick / 64] & (1ULL << (pick % 64)))
			pick = j;
		seen[pick / 64] |= 1ULL << (pick % 64);
		l->hot[i++] = pick;
	}
	free(seen);
	return 0;
}

static int dma_load_check_config(const struct dma_load_config *cfg)
{
	uint64_t n_pages = cfg->length / DMA_LOAD_PAGE_SIZE;

	if (!cfg->length || cfg->iova % DMA_LOAD_PAGE_SIZE ||
	    cfg->length % DMA_LOAD_PAGE_SIZE)
		return -EINVAL;
	if (cfg->iova + cfg->length < cfg->iova)
		return -EOVERFLOW;
	if (cfg->threads > DMA_LOAD_MAX_THREADS)
		return -EINVAL;
	switch (cfg->pattern) {
	case DMA_PATTERN_UNIFORM:
	case DMA_PATTERN_SEQUENTIAL:
		return 0;
	case DMA_PATTERN_CLUSTERED:
		if (!cfg->cluster_pages || cfg->cluster_pages > n_pages)
			return -EINVAL;
		return 0;
	case DMA_PATTERN_HOTSET:
		if (!cfg->hot_pages || cfg->hot_pages > n_pages)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

void dma_load_stop(struct dma_load *l)
{
	unsigned int i;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	for (i = 0; i < l->n_threads; i++)
		pthread_join(l->threads[i].tid, NULL);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->rate_lock);
	free(l->hot);
	free(l->oracle);
	free(l);
}

int dma_load_start(struct backend *b, const struct dma_load_config *cfg,
		   struct dma_load **out)
{
	struct dma_load *l;
	unsigned int i;
	int ret;

	if (!b || !cfg || !out)
		return -EINVAL;
	*out = NULL;
	ret = dma_load_check_config(cfg);
	if (ret)
		return ret;

	l = calloc(1, sizeof(*l) + cfg->threads * sizeof(l->threads[0]));
	if (!l)
		return -ENOMEM;
	l->b = b;
	l->cfg = *cfg;
	l->n_pages = cfg->length / DMA_LOAD_PAGE_SIZE;
	l->oracle_words = (l->n_pages + 63) / 64;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	pthread_mutex_init(&l->rate_lock, NULL);
	l->rate_next_ns = dma_load_now_ns();

	/* calloc() of a large oracle maps zero pages lazily. */
	l->oracle = calloc(l->oracle_words, sizeof(*l->oracle));
	if (!l->oracle) {
		ret = -ENOMEM;
		goto fail;
	}
	if (cfg->pattern == DMA_PATTERN_HOTSET) {
		ret = dma_load_draw_hotset(l);
		if (ret)
			goto fail;
	}

	for (i = 0; i < cfg->threads; i++) {
		struct dma_load_thread *t = &l->threads[i];

		t->l = l;
		dma_load_rng_seed(t->rng, cfg->seed, i);
		ret = -pthread_create(&t->tid, NULL, dma_load_thread_main, t);
		if (ret)
			goto fail;
		l->n_threads++;
	}
	*out = l;
	return 0;

fail:
	dma_load_stop(l);
	return ret;
}
