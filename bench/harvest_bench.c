// SPDX-License-Identifier: MIT
/*
 * harvest_bench - dirtyd's harvest engine against the way a VMM reads an
 * IOMMU dirty bitmap today and against the memory-bandwidth floor, on sim
 * guests (issue 3, section 5).  bench/run.sh builds and runs it; see
 * bench/README.md for the columns.
 *
 *   harvest_bench [-g GIB,...] [-r REPS] [-j JSON] [-s SVG]
 *
 * -g  guest sizes in GiB (default 16,256,1024); -r repetitions per
 * measurement (default 9 for guests up to 16 GiB, 7 above; at
 * least 3); -j / -s where to write the JSON and the SVG plot.
 *
 * Each guest (size, leaf size) is one sim host: one device, a dirty
 * tracking HWPT, the whole guest mapped once at IOVA 0.  A density and a
 * pattern make a 4 KiB-page bitmap (the "pattern"); before every timed
 * read the pattern is written again by DMA (backend_dma_write(), one call
 * per run of pages, or per dirty leaf with huge leaves, on two threads),
 * since every read below clears the dirty bits.  Dirtying is not timed.
 * Per case, in one process, the median of REPS of:
 *
 *   harvest   (a) the engine (default config: on the sim, async mode, the
 *             sim's reader threads, one per CPU; with -W the worker pool,
 *             one worker per CPU) reads the domain planned with
 *             harvest_batch_bytes();
 *   h+ext     (a) the same plus extents: extent_scan_bitmap() over the
 *             domain's bitmap after the round, on the calling thread (the
 *             engine has no per-batch hook: dirtyd folds after the round);
 *   vmm       (b) QEMU's iommufd path: one GET_DIRTY_BITMAP over the whole
 *             guest into a zeroed bitmap on one thread, then the fast path
 *             of physical_memory_set_dirty_lebitmap() (see vmm_fold());
 *   floor     (c) one streaming read of every page-table page of the HWPT
 *             (sim_hwpt_for_each_table()) plus the domain bitmap, on both
 *             CPUs, or on one when that is faster (tiny tables, where
 *             handing half to the second CPU costs more than it saves).
 *
 * Every result is checked: the engine's and the VMM's bitmaps against the
 * pattern (expanded to whole leaves for 2 MiB leaves), the round's extents
 * against a serial scan of the pattern's bits.
 *
 * Then, on a 32 MiB bitmap (1 TiB at 4 KiB) per density and pattern, the
 * extents alone, one thread, caches evicted before each run: a plain read
 * (sum of the words), extent_scan_bitmap() into a vector, and Cloud
 * Hypervisor's from_dirty_bitmap() (ch_from_dirty_bitmap(); it, the plain
 * read and the patterns are in baselines.c).  Then how the engine scales
 * from one worker to two, and the memory a tracked domain and a subscriber
 * hold.  Times are medians; the JSON has the fastest
 * repetition too.  The machine is probed first (two threads of pure
 * compute against one, and the load average): on a shared host the
 * numbers are only as quiet as the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baselines.h"
#include "protocol/extent.h"
#include "daemon/harvest/harvest.h"
#include "daemon/subscriber/subscriber.h"
#include "kernel/backend.h"
#include "kernel/sim/sim.h"

#define GIB (1ULL << 30)
#define PG 4096ULL
#define NDENS 6
#define NPAT 2
#define NLEAF 2
#define MAX_GUESTS 8
#define MAX_REPS 64
#define EXT_REPS 5
#define EXT_GIB 1024ULL		/* the extents' bitmap: 1 TiB at 4 KiB */
#define EVICT_BYTES (96ULL << 20)
/*
 * Where guest RAM is mapped: IOVA = guest physical address, from 0, as QEMU
 * maps RAM.  Any multiple of 32768 pages keeps bit k of the domain bitmap
 * on page k of the guest.
 */
#define GUEST_IOVA 0ULL
#define GUEST_PAGE (GUEST_IOVA / PG)

static const double densities[NDENS] = { 0, 0.0001, 0.001, 0.01, 0.1, 1 };
static const char *const density_names[NDENS] = {
	"0", "0.01%", "0.1%", "1%", "10%", "100%",
};
static const char *const pattern_names[NPAT] = { "uniform", "clustered" };
static const uint64_t leaves[NLEAF] = { SIM_PAGE_SIZE_4K, SIM_PAGE_SIZE_2M };
static const char *const leaf_names[NLEAF] = { "4k", "2m" };

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *bench_alloc(size_t n)
{
	void *p = aligned_alloc(4096, (n + 4095) & ~4095UL);

	if (!p) {
		fprintf(stderr, "harvest_bench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* ------------------------------------------------------------ patterns */

/* What a harvest reports for @pat with leaves of @leaf_words words (a
 * dirty leaf reports all its pages); 0 means 4 KiB leaves: @pat itself. */
static void pattern_expect(uint64_t *dst, const uint64_t *pat, uint64_t nwords,
			   unsigned int leaf_words)
{
	if (!leaf_words) {
		memcpy(dst, pat, nwords * 8);
		return;
	}
	for (uint64_t w = 0; w < nwords; w += leaf_words) {
		uint64_t any = 0;

		for (unsigned int k = 0; k < leaf_words; k++)
			any |= pat[w + k];
		for (unsigned int k = 0; k < leaf_words; k++)
			dst[w + k] = any ? ~0ULL : 0;
	}
}

static uint64_t bm_popcount(const uint64_t *bm, uint64_t nwords)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < nwords; w++)
		n += __builtin_popcountll(bm[w]);
	return n;
}

/* --------------------------------------------------------------- guests */

struct bench_guest {
	uint64_t gib;
	uint64_t size;
	uint64_t leaf;
	uint64_t npages;
	uint64_t nwords;
	struct backend *b;
	uint32_t dev, ioas, hwpt;
	struct harvest_domain dom;
	uint64_t batch_bytes;
	struct sim_pgtable_stats pt;
	double t_map;
};

static int guest_open(struct bench_guest *g, uint64_t gib, uint64_t leaf,
		      unsigned int workers)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 1,
			.devices = {
				{ .name = "sim0", .dirty_tracking = true },
			},
			.backing_page_size = leaf,
		},
	};
	struct harvest_range range;
	uint64_t iova = GUEST_IOVA;
	double t0;
	int r;

	*g = (struct bench_guest){
		.gib = gib,
		.size = gib * GIB,
		.leaf = leaf,
		.npages = gib * GIB / PG,
		.nwords = gib * GIB / PG / 64,
	};
	r = backend_open(&cfg, &g->b);
	if (r)
		return r;
	r = backend_device_bind(g->b, "sim0", &g->dev);
	r = r ?: backend_ioas_alloc(g->b, &g->ioas);
	r = r ?: backend_hwpt_alloc(g->b, g->dev, g->ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &g->hwpt);
	r = r ?: backend_device_attach(g->b, g->dev, g->hwpt);
	if (r)
		return r;
	t0 = now();
	r = backend_ioas_map(g->b, g->ioas,
			     IOMMU_IOAS_MAP_FIXED_IOVA |
			     IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
			     (void *)(uintptr_t)(1ULL << 40), g->size, &iova);
	g->t_map = now() - t0;
	r = r ?: backend_hwpt_set_dirty_tracking(g->b, g->hwpt, true);
	r = r ?: sim_hwpt_stats(g->b, g->hwpt, &g->pt);
	if (r)
		return r;
	range = (struct harvest_range){ .iova = GUEST_IOVA, .length = g->size };
	if (!workers)
		workers = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	g->batch_bytes = harvest_batch_bytes(g->size, PG, workers);
	r = harvest_domain_plan(&g->dom, g->hwpt, PG, &range, 1,
				g->batch_bytes);
	if (r)
		return r;
	/* one range: bit k of the domain bitmap is page k of the guest */
	if (g->dom.ranges[0].bit != 0 || g->dom.nwords != g->nwords)
		return -EINVAL;
	return 0;
}

static void guest_close(struct bench_guest *g)
{
	harvest_domain_release(&g->dom);
	backend_close(g->b);
	g->b = NULL;
}

/* Write the pattern by DMA: words [w0, w1) of it. */
struct dirty_job {
	const struct bench_guest *g;
	const uint64_t *pat;
	uint64_t w0, w1;
	int result;
};

static int dirty_run(const struct bench_guest *g, uint64_t first,
		     uint64_t count)
{
	return count ? backend_dma_write(g->b, g->dev,
					 GUEST_IOVA + first * PG,
					 count * PG) : 0;
}

static int dirty_small_leaves(struct dirty_job *j)
{
	uint64_t first = 0, count = 0;
	int r;

	for (uint64_t w = j->w0; w < j->w1; w++) {
		uint64_t x = j->pat[w];

		while (x) {
			unsigned int start = __builtin_ctzll(x);
			uint64_t ones = ~(x >> start);
			unsigned int len = ones ?
				(unsigned int)__builtin_ctzll(ones) :
				64 - start;
			uint64_t page = w * 64 + start;

			if (count && first + count == page) {
				count += len;
			} else {
				r = dirty_run(j->g, first, count);
				if (r)
					return r;
				first = page;
				count = len;
			}
			if (start + len >= 64)
				break;
			x &= ~0ULL << (start + len);
		}
	}
	return dirty_run(j->g, first, count);
}

/* A huge leaf has one dirty bit: one write per leaf the pattern touches. */
static int dirty_huge_leaves(struct dirty_job *j, unsigned int leaf_words)
{
	for (uint64_t w = j->w0; w < j->w1; w += leaf_words) {
		uint64_t any = 0;
		int r;

		for (unsigned int k = 0; k < leaf_words; k++)
			any |= j->pat[w + k];
		if (!any)
			continue;
		r = backend_dma_write(j->g->b, j->g->dev,
				      GUEST_IOVA + w * 64 * PG, PG);
		if (r)
			return r;
	}
	return 0;
}

static void *dirty_thread(void *arg)
{
	struct dirty_job *j = arg;
	unsigned int leaf_words = j->g->leaf / PG / 64;

	j->result = leaf_words ? dirty_huge_leaves(j, leaf_words) :
				 dirty_small_leaves(j);
	return NULL;
}

/* Dirty the pattern on two threads (this one and a helper). */
static int guest_dirty(const struct bench_guest *g, const uint64_t *pat)
{
	unsigned int leaf_words = g->leaf / PG / 64;
	uint64_t half = g->nwords / 2;
	struct dirty_job jobs[2];
	pthread_t th;
	int r;

	if (leaf_words)
		half -= half % leaf_words;
	jobs[0] = (struct dirty_job){ .g = g, .pat = pat, .w0 = 0, .w1 = half };
	jobs[1] = (struct dirty_job){ .g = g, .pat = pat, .w0 = half,
				      .w1 = g->nwords };
	r = -pthread_create(&th, NULL, dirty_thread, &jobs[1]);
	if (r)
		return r;
	dirty_thread(&jobs[0]);
	pthread_join(th, NULL);
	return jobs[0].result ?: jobs[1].result;
}

/* -------------------------------------------------- (a) engine + extents */

struct ext_total {
	uint64_t n;
	uint64_t pages;
	uint64_t sum;		/* of the first pages: a checksum */
};

static void ext_total_add(struct ext_total *t, const struct extent *e)
{
	t->n++;
	t->pages += e->count;
	t->sum += e->first;
}

static int ext_total_sink(void *ctx, const struct extent *e)
{
	ext_total_add(ctx, e);
	return 0;
}

/*
 * Round end: the extents of the domain's bitmap, range by range in one scan,
 * on this thread (the bits a round leaves for its reader).  A range's bits
 * start at bit (range bit % 64) of its first word: the bits before are
 * padding, zero.
 */
static void ext_scan_domain(const struct harvest_domain *d,
			    struct ext_total *t)
{
	struct extent_scan s;

	*t = (struct ext_total){ 0 };
	extent_scan_init(&s, ext_total_sink, t);
	for (size_t i = 0; i < d->nranges; i++) {
		const struct harvest_range *r = &d->ranges[i];
		uint64_t pad = r->bit % 64;

		extent_scan_bitmap(&s, d->bitmap + r->bit / 64,
				   r->iova / d->page_size - pad,
				   pad + r->length / d->page_size);
	}
	extent_scan_finish(&s);
}

/* One clearing round; with @t, its extents too.  Returns 0 or -errno. */
static int engine_round(struct harvest_engine *e, struct harvest_domain *d,
			struct ext_total *t, double *secs)
{
	double t0 = now();
	int r;

	r = harvest_engine_start(e, d, 0, NULL, NULL);
	if (!r)
		r = harvest_engine_wait(e);
	if (r >= 0 && t)
		ext_scan_domain(d, t);
	*secs = now() - t0;
	return r < 0 ? r : d->result;
}

/* ------------------------------------------------------- (b) VMM today */

/*
 * QEMU's fold of a dirty bitmap into its RAM dirty bitmaps, the fast path
 * of physical_memory_set_dirty_lebitmap() (system/physmem.c; it was
 * cpu_physical_memory_set_dirty_lebitmap() in include/exec/ram_addr.h):
 * for a start on a word and host page == target page, each non-zero word
 * is counted (ctpopl) and ORed with qatomic_or() (__atomic_fetch_or, seq
 * cst) into ram_list.dirty_memory[DIRTY_MEMORY_VGA], and, while migrating
 * (global_dirty_tracking), DIRTY_MEMORY_MIGRATION too (CODE under TCG).
 * Modelled with one OR into one RAM bitmap: QEMU does at least two, so
 * this is a lower bound on its cost: vmm_fold() (baselines.c).
 */

/*
 * QEMU with the iommufd backend: vfio_get_dirty_bitmap() (hw/vfio) takes a
 * zeroed bitmap for the whole RAM section (vfio_bitmap_alloc(), which is
 * g_try_malloc0() every call: here a memset of a warm buffer, cheaper),
 * iommufd_cdev_query_dirty_bitmap() -> iommufd_backend_get_dirty_bitmap()
 * (backends/iommufd.c) issues ONE IOMMU_HWPT_GET_DIRTY_BITMAP for it on the
 * migration thread, then the bitmap is folded as above.
 */
static int vmm_round(const struct bench_guest *g, uint64_t *bm, uint64_t *ram,
		     uint64_t *num_dirty, double *secs)
{
	double t0 = now();
	int r;

	memset(bm, 0, g->nwords * 8);
	r = backend_hwpt_get_dirty_bitmap(g->b, g->hwpt, GUEST_IOVA, g->size,
					  PG, bm, 0);
	if (!r)
		*num_dirty = vmm_fold(bm, ram, g->nwords);
	*secs = now() - t0;
	return r;
}

/* ------------------------------------------------------------ (c) floor */

static bench_read_fn plain_read;
static volatile uint64_t read_sink;

/* The memory of the floor: page-table pages (merged where adjacent) and
 * the bitmap, all 32-byte aligned. */
struct floor_span {
	const char *p;
	size_t len;
};

struct floor_set {
	struct floor_span *v;
	size_t n, cap;
	uint64_t bytes;
	uint64_t tables;
};

static void floor_add(struct floor_set *f, const void *p, size_t len)
{
	if (f->n && f->v[f->n - 1].p + f->v[f->n - 1].len == (const char *)p) {
		f->v[f->n - 1].len += len;
	} else {
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 256;
			f->v = realloc(f->v, f->cap * sizeof(*f->v));
			if (!f->v) {
				fprintf(stderr, "harvest_bench: out of memory\n");
				exit(1);
			}
		}
		f->v[f->n++] = (struct floor_span){ .p = p, .len = len };
	}
	f->bytes += len;
}

static int floor_add_table(void *ctx, const uint64_t *table,
			   unsigned int level)
{
	struct floor_set *f = ctx;

	f->tables++;
	floor_add(f, table, 4096);
	return 0;
}

/* Read bytes [@from, @to) of the set. */
static uint64_t floor_read(const struct floor_set *f, uint64_t from,
			   uint64_t to)
{
	uint64_t pos = 0, sum = 0;

	for (size_t i = 0; i < f->n && pos < to; i++) {
		uint64_t s = pos, e = pos + f->v[i].len;

		pos = e;
		if (e <= from)
			continue;
		if (s < from)
			s = from;
		if (e > to)
			e = to;
		/* split points fall on 32 bytes: spans are 4 KiB multiples */
		sum += plain_read(f->v[i].p + (s - (pos - f->v[i].len)), e - s);
	}
	return sum;
}

/* A helper thread for the two-CPU read, handed work by barriers. */
struct floor_pool {
	pthread_t thread;
	pthread_barrier_t start, done;
	const struct floor_set *set;
	uint64_t from, to;
	bool stop;
};

static void *floor_helper(void *arg)
{
	struct floor_pool *fp = arg;

	for (;;) {
		pthread_barrier_wait(&fp->start);
		if (fp->stop)
			break;
		read_sink += floor_read(fp->set, fp->from, fp->to);
		pthread_barrier_wait(&fp->done);
	}
	return NULL;
}

static int floor_pool_start(struct floor_pool *fp)
{
	*fp = (struct floor_pool){ 0 };
	pthread_barrier_init(&fp->start, NULL, 2);
	pthread_barrier_init(&fp->done, NULL, 2);
	return -pthread_create(&fp->thread, NULL, floor_helper, fp);
}

static void floor_pool_stop(struct floor_pool *fp)
{
	fp->stop = true;
	pthread_barrier_wait(&fp->start);
	pthread_join(fp->thread, NULL);
	pthread_barrier_destroy(&fp->start);
	pthread_barrier_destroy(&fp->done);
}

static double floor_two(struct floor_pool *fp, const struct floor_set *f)
{
	uint64_t half = (f->bytes / 2) & ~4095ULL;
	double t0 = now();

	fp->set = f;
	fp->from = half;
	fp->to = f->bytes;
	pthread_barrier_wait(&fp->start);
	read_sink += floor_read(f, 0, half);
	pthread_barrier_wait(&fp->done);
	return now() - t0;
}

static double floor_one(const struct floor_set *f)
{
	double t0 = now();

	read_sink += floor_read(f, 0, f->bytes);
	return now() - t0;
}

/* ---------------------------------------------- (d) extents of a bitmap */

static char *evict_buf;

/* Push the bitmap out of the caches (L3 is 32 MiB here). */
static void bench_evict(void)
{
	read_sink += plain_read(evict_buf, EVICT_BYTES);
}

struct ext_vec {
	struct extent *v;
	size_t n, cap;
};

static int ext_vec_sink(void *ctx, const struct extent *e)
{
	struct ext_vec *ev = ctx;

	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? 2 * ev->cap : 4096;
		struct extent *v = realloc(ev->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ev->v = v;
		ev->cap = cap;
	}
	ev->v[ev->n++] = *e;
	return 0;
}

/* dirtyd: extent_scan_bitmap() into a vector reused from call to call. */
static int dirtyd_extents(const uint64_t *bm, uint64_t nwords,
			  struct ext_vec *out)
{
	struct extent_scan s;
	int r;

	out->n = 0;
	extent_scan_init(&s, ext_vec_sink, out);
	r = extent_scan_bitmap(&s, bm, 0, nwords * 64);
	return r ?: extent_scan_finish(&s);
}

/* -------------------------------------------------------------- machine */

/*
 * How much two threads get out of this machine: a dependent multiply chain
 * (pure compute) run on one thread, then on two at once; throughput gain
 * = 2 * t1 / t2 (2.0 for two real cores).  Memory: the floor's one- and
 * two-CPU reads, below.
 */
/* Not inlined, and seeded from memory: the chain cannot move across the
 * clock reads around the call. */
__attribute__((noinline))
static void *probe_spin(void *arg)
{
	uint64_t x = *(volatile uint64_t *)arg;

	for (uint64_t i = 0; i < 100000000ULL; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	*(volatile uint64_t *)arg = x;
	return NULL;
}

static double probe_compute_scaling(void)
{
	double t1[3], t2[3];
	uint64_t a = 1, b = 2;
	pthread_t th;

	for (unsigned int i = 0; i < 3; i++) {
		double t0 = now();

		probe_spin(&a);
		t1[i] = now() - t0;
		t0 = now();
		if (pthread_create(&th, NULL, probe_spin, &b))
			return 0;
		probe_spin(&a);
		pthread_join(th, NULL);
		t2[i] = now() - t0;
	}
	return 2 * median(t1, 3) / median(t2, 3);
}

static void loadavg(double *l1)
{
	FILE *f = fopen("/proc/loadavg", "r");

	*l1 = -1;
	if (f) {
		if (fscanf(f, "%lf", l1) != 1)
			*l1 = -1;
		fclose(f);
	}
}

static double machine_compute_x, machine_load_start, machine_load_end;

/* ------------------------------------------------------------- results */

struct case_result {
	uint64_t gib;
	unsigned int leaf;	/* index in leaves[] */
	unsigned int pat;
	unsigned int dens;	/* index in densities[] */
	double pattern_density;	/* 4 KiB pages written / pages */
	double bitmap_density;	/* bits a harvest reports / pages */
	double t_harvest, t_hext, t_vmm, t_floor, t_floor1, t_floor2;
	double min_harvest, min_hext, min_vmm;	/* fastest repetition */
	uint64_t extents;
	uint64_t floor_bytes;
	bool ok;
};

struct ext_result {
	unsigned int pat, dens;
	double t_plain, t_dirtyd, t_ch, t_ch_reuse;
	uint64_t extents;
	bool ok;
};

struct guest_result {
	uint64_t gib;
	unsigned int leaf;
	double t_map;
	uint64_t table_bytes, tables, floor_bytes;
	uint64_t batch_bytes;
	size_t nbatches;
	unsigned int reps;
};

struct mem_result {
	uint64_t gib;
	uint64_t bitmap_bytes;	/* nwords * 8 */
	uint64_t domain_bytes;	/* bitmap + batches + ranges + struct */
	uint64_t sub_idle;	/* a subscriber set, nothing in flight */
	uint64_t sub_inflight[NDENS];	/* uniform, one generation taken */
	bool have_inflight[NDENS];
};

struct scale_result {
	unsigned int pat, dens;
	double t1_harvest, t2_harvest, t1_hext, t2_hext;
};

static struct case_result cases[MAX_GUESTS * NLEAF * NPAT * NDENS];
static unsigned int ncases;
static struct ext_result ext_results[NPAT * NDENS];
static unsigned int next_results;
static struct guest_result guest_results[MAX_GUESTS * NLEAF];
static unsigned int nguest_results;
static struct mem_result mem_results[MAX_GUESTS];
static unsigned int nmem_results;
static struct scale_result scale_results[4];
static unsigned int nscale_results;

static uint64_t pattern_seed(unsigned int pat, unsigned int dens)
{
	return 0x5eed0000ULL + pat * 16 + dens;
}

/* ------------------------------------------------------------ per guest */

struct bench_bufs {
	uint64_t *pat, *expect, *vmm_bm, *ram;
};

static void bench_fail(const char *what, int r)
{
	fprintf(stderr, "harvest_bench: %s: %s\n", what, strerror(-r));
	exit(1);
}

static void measure_memory(const struct bench_guest *g, unsigned int dens,
			   const uint64_t *bits)
{
	struct mem_result *m = NULL;
	struct subscriber_set s;
	struct subscriber_gen *gen;
	int r;

	for (unsigned int i = 0; i < nmem_results; i++)
		if (mem_results[i].gib == g->gib)
			m = &mem_results[i];
	if (!m) {
		m = &mem_results[nmem_results++];
		const struct harvest_domain *d = &g->dom;

		*m = (struct mem_result){
			.gib = g->gib,
			.bitmap_bytes = d->nwords * 8,
			/* what harvest_domain_plan() allocates */
			.domain_bytes = ((d->nwords * 8 + 4095) & ~4095ULL) +
				d->nbatches * sizeof(struct harvest_batch) +
				d->nranges * sizeof(struct harvest_range) +
				sizeof(*d),
		};
	}
	r = subscriber_set_init(&s, &g->dom);
	if (r)
		bench_fail("subscriber_set_init", r);
	m->sub_idle = subscriber_set_memory(&s);
	subscriber_set_fold(&s, 0, bits, g->dom.nwords);
	r = subscriber_set_take(&s, 1, &gen);
	if (r)
		bench_fail("subscriber_set_take", r);
	m->sub_inflight[dens] = subscriber_set_memory(&s);
	m->have_inflight[dens] = true;
	subscriber_set_release(&s);
}

static void run_case(struct bench_guest *g, unsigned int leaf_idx,
		     unsigned int pat, unsigned int dens,
		     struct harvest_engine *e, struct floor_pool *fp,
		     const struct floor_set *fl, struct bench_bufs *bb,
		     unsigned int reps)
{
	struct case_result *c = &cases[ncases++];
	double th[MAX_REPS], tx[MAX_REPS], tv[MAX_REPS], t1[MAX_REPS],
	       t2[MAX_REPS];
	unsigned int leaf_words = g->leaf / PG / 64;
	struct ext_total ref = { 0 }, got;
	struct extent_scan s;
	uint64_t bits, num_dirty = 0;
	bool ok = true;
	int r;

	pattern_fill(bb->pat, g->npages, densities[dens], pat,
		     pattern_seed(pat, dens));
	pattern_expect(bb->expect, bb->pat, g->nwords, leaf_words);
	bits = bm_popcount(bb->expect, g->nwords);
	extent_scan_init(&s, ext_total_sink, &ref);
	extent_scan_bitmap(&s, bb->expect, GUEST_PAGE, g->npages);
	extent_scan_finish(&s);

	for (unsigned int i = 0; i < reps; i++) {
		r = guest_dirty(g, bb->pat);
		r = r ?: engine_round(e, &g->dom, NULL, &th[i]);
		if (r)
			bench_fail("engine round", r);
		if (memcmp(g->dom.bitmap, bb->expect, g->nwords * 8))
			ok = false;

		r = guest_dirty(g, bb->pat);
		r = r ?: engine_round(e, &g->dom, &got, &tx[i]);
		if (r)
			bench_fail("engine round with extents", r);
		if (got.n != ref.n || got.pages != ref.pages ||
		    got.sum != ref.sum)
			ok = false;

		r = guest_dirty(g, bb->pat);
		r = r ?: vmm_round(g, bb->vmm_bm, bb->ram, &num_dirty, &tv[i]);
		if (r)
			bench_fail("vmm round", r);
		if (num_dirty != bits ||
		    memcmp(bb->vmm_bm, bb->expect, g->nwords * 8))
			ok = false;

		t1[i] = floor_one(fl);
		t2[i] = floor_two(fp, fl);
	}
	*c = (struct case_result){
		.gib = g->gib,
		.leaf = leaf_idx,
		.pat = pat,
		.dens = dens,
		.pattern_density = (double)bm_popcount(bb->pat, g->nwords) /
				   g->npages,
		.bitmap_density = (double)bits / g->npages,
		.t_harvest = median(th, reps),
		.t_hext = median(tx, reps),
		.t_vmm = median(tv, reps),
		.t_floor1 = median(t1, reps),
		.t_floor2 = median(t2, reps),
		.extents = ref.n,
		.floor_bytes = fl->bytes,
		.ok = ok,
	};
	c->t_floor = c->t_floor1 < c->t_floor2 ? c->t_floor1 : c->t_floor2;
	/* median() sorted them */
	c->min_harvest = th[0];
	c->min_hext = tx[0];
	c->min_vmm = tv[0];

	if (leaf_idx == 0 && pat == PAT_UNIFORM && densities[dens] > 0)
		measure_memory(g, dens, bb->expect);
}

static void print_case_header(void)
{
	printf("%-6s %-4s %-9s %6s %8s | %9s %9s %9s %9s | %6s %6s %6s | %5s | %9s %s\n",
	       "guest", "leaf", "pattern", "dens", "bits%", "harvest", "h+ext",
	       "vmm(b)", "floor(c)", "a/c", "b/a", "b/h", "c1/c2", "extents",
	       "check");
}

static void print_case(const struct case_result *c)
{
	printf("%4" PRIu64 "G  %-4s %-9s %6s %8.4f | %9.3f %9.3f %9.3f %9.3f | %6.2f %6.2f %6.2f | %5.2f | %9" PRIu64 " %s\n",
	       c->gib, leaf_names[c->leaf], pattern_names[c->pat],
	       density_names[c->dens], 100 * c->bitmap_density,
	       1e3 * c->t_harvest, 1e3 * c->t_hext, 1e3 * c->t_vmm,
	       1e3 * c->t_floor, c->t_hext / c->t_floor,
	       c->t_vmm / c->t_hext, c->t_vmm / c->t_harvest,
	       c->t_floor1 / c->t_floor2, c->extents,
	       c->ok ? "ok" : "FAILED");
	fflush(stdout);
}

static void run_scaling(struct bench_guest *g, struct harvest_engine *e1,
			struct harvest_engine *e2, struct bench_bufs *bb,
			unsigned int pat, unsigned int dens, unsigned int reps)
{
	struct scale_result *sr = &scale_results[nscale_results++];
	double a1[MAX_REPS], a2[MAX_REPS], x1[MAX_REPS], x2[MAX_REPS];
	struct ext_total got;
	int r = 0;

	pattern_fill(bb->pat, g->npages, densities[dens], pat,
		     pattern_seed(pat, dens));
	for (unsigned int i = 0; i < reps; i++) {
		r = r ?: guest_dirty(g, bb->pat);
		r = r ?: engine_round(e1, &g->dom, NULL, &a1[i]);
		r = r ?: guest_dirty(g, bb->pat);
		r = r ?: engine_round(e2, &g->dom, NULL, &a2[i]);
		r = r ?: guest_dirty(g, bb->pat);
		r = r ?: engine_round(e1, &g->dom, &got, &x1[i]);
		r = r ?: guest_dirty(g, bb->pat);
		r = r ?: engine_round(e2, &g->dom, &got, &x2[i]);
	}
	if (r)
		bench_fail("scaling round", r);
	*sr = (struct scale_result){
		.pat = pat,
		.dens = dens,
		.t1_harvest = median(a1, reps),
		.t2_harvest = median(a2, reps),
		.t1_hext = median(x1, reps),
		.t2_hext = median(x2, reps),
	};
}

/* -W: the engine's worker pool instead of the backend's async reads. */
static bool force_workers;

static void run_guest(uint64_t gib, unsigned int leaf_idx,
		      struct floor_pool *fp, unsigned int reps)
{
	struct guest_result *gr = &guest_results[nguest_results++];
	struct harvest_engine_config one = { .workers = 1,
					     .force_workers = true };
	struct harvest_engine *e, *e1 = NULL;
	struct floor_set fl = { 0 };
	struct bench_guest g;
	struct bench_bufs bb;
	bool scale = gib == EXT_GIB && leaf_idx == 0;
	int r;

	/* an engine serves one backend: each guest is a sim host of its own */
	r = guest_open(&g, gib, leaves[leaf_idx], 0);
	r = r ?: harvest_engine_new(g.b, &(struct harvest_engine_config){
					.force_workers = force_workers }, &e);
	if (!r && scale)
		r = harvest_engine_new(g.b, &one, &e1);
	if (r)
		bench_fail("guest setup", r);
	if (!strcmp(harvest_engine_mode(e), "workers") ?
	    harvest_engine_workers(e) != sysconf(_SC_NPROCESSORS_ONLN) :
	    force_workers || harvest_engine_workers(e)) {
		fprintf(stderr, "harvest_bench: engine runs %s with %u workers\n",
			harvest_engine_mode(e), harvest_engine_workers(e));
		exit(1);
	}
	r = sim_hwpt_for_each_table(g.b, g.hwpt, floor_add_table, &fl);
	if (r)
		bench_fail("sim_hwpt_for_each_table", r);
	if (fl.tables != g.pt.tables) {
		fprintf(stderr, "harvest_bench: %" PRIu64 " tables walked, %"
			PRIu64 " in the stats\n", fl.tables, g.pt.tables);
		exit(1);
	}
	floor_add(&fl, g.dom.bitmap, g.dom.nwords * 8);

	bb = (struct bench_bufs){
		.pat = bench_alloc(g.nwords * 8),
		.expect = bench_alloc(g.nwords * 8),
		.vmm_bm = bench_alloc(g.nwords * 8),
		.ram = bench_alloc(g.nwords * 8),
	};
	memset(bb.ram, 0, g.nwords * 8);
	*gr = (struct guest_result){
		.gib = gib,
		.leaf = leaf_idx,
		.t_map = g.t_map,
		.table_bytes = g.pt.table_bytes,
		.tables = g.pt.tables,
		.floor_bytes = fl.bytes,
		.batch_bytes = g.batch_bytes,
		.nbatches = g.dom.nbatches,
		.reps = reps,
	};
	printf("# guest %" PRIu64 " GiB, %s leaves: %.2f s to map, %.1f MiB of page tables, %zu batches of %" PRIu64 " GiB, %u reps\n",
	       gib, leaf_names[leaf_idx], g.t_map,
	       g.pt.table_bytes / 1048576.0, g.dom.nbatches,
	       (uint64_t)(g.batch_bytes / GIB), reps);
	fflush(stdout);

	for (unsigned int pat = 0; pat < NPAT; pat++)
		for (unsigned int d = 0; d < NDENS; d++) {
			run_case(&g, leaf_idx, pat, d, e, fp, &fl, &bb, reps);
			print_case(&cases[ncases - 1]);
		}

	if (scale) {
		/* 0.1 % clustered is the target's case */
		run_scaling(&g, e1, e, &bb, PAT_CLUSTERED, 2, reps);
		run_scaling(&g, e1, e, &bb, PAT_UNIFORM, 3, reps);
		run_scaling(&g, e1, e, &bb, PAT_UNIFORM, 5, reps);
	}

	free(bb.pat);
	free(bb.expect);
	free(bb.vmm_bm);
	free(bb.ram);
	free(fl.v);
	harvest_engine_free(e1);
	harvest_engine_free(e);
	guest_close(&g);
}

/* ---------------------------------------------------- extents, 32 MiB */

static void run_extents(void)
{
	uint64_t npages = EXT_GIB * GIB / PG, nwords = npages / 64;
	uint64_t *bm = bench_alloc(nwords * 8);
	struct ext_vec ev = { 0 };
	struct range_vec reuse = { 0 };

	for (unsigned int pat = 0; pat < NPAT; pat++)
		for (unsigned int d = 0; d < NDENS; d++) {
			struct ext_result *er = &ext_results[next_results++];
			double tp[EXT_REPS], td[EXT_REPS], tc[EXT_REPS],
			       tr[EXT_REPS];
			bool ok = true;

			pattern_fill(bm, npages, densities[d], pat,
				     pattern_seed(pat, d));
			for (unsigned int i = 0; i < EXT_REPS; i++) {
				struct range_vec fresh = { 0 };
				double t0;

				bench_evict();
				t0 = now();
				read_sink += plain_read(bm, nwords * 8);
				tp[i] = now() - t0;

				bench_evict();
				t0 = now();
				if (dirtyd_extents(bm, nwords, &ev))
					ok = false;
				td[i] = now() - t0;

				bench_evict();
				t0 = now();
				ch_from_dirty_bitmap(bm, nwords, 0, PG, &fresh);
				tc[i] = now() - t0;

				bench_evict();
				t0 = now();
				ch_from_dirty_bitmap(bm, nwords, 0, PG, &reuse);
				tr[i] = now() - t0;

				if (fresh.n != ev.n || reuse.n != ev.n)
					ok = false;
				for (size_t k = 0; ok && k < ev.n; k++) {
					const struct extent *x = &ev.v[k];

					ok = fresh.v[k].gpa == x->first * PG &&
					     fresh.v[k].length == x->count * PG;
				}
				free(fresh.v);
			}
			*er = (struct ext_result){
				.pat = pat,
				.dens = d,
				.t_plain = median(tp, EXT_REPS),
				.t_dirtyd = median(td, EXT_REPS),
				.t_ch = median(tc, EXT_REPS),
				.t_ch_reuse = median(tr, EXT_REPS),
				.extents = ev.n,
				.ok = ok,
			};
			printf("%-9s %6s | %8.3f %8.3f %8.3f %8.3f | %7.2f %7.2f %7.2f | %9" PRIu64 " %s\n",
			       pattern_names[pat], density_names[d],
			       1e3 * er->t_plain, 1e3 * er->t_dirtyd,
			       1e3 * er->t_ch, 1e3 * er->t_ch_reuse,
			       er->t_dirtyd / er->t_plain,
			       er->t_ch / er->t_dirtyd,
			       er->t_ch_reuse / er->t_dirtyd, er->extents,
			       ok ? "ok" : "FAILED");
			fflush(stdout);
		}
	free(ev.v);
	free(reuse.v);
	free(bm);
}

/* ------------------------------------------------------------- reports */

static const struct case_result *find_case(uint64_t gib, unsigned int leaf,
					   unsigned int pat, unsigned int dens)
{
	for (unsigned int i = 0; i < ncases; i++)
		if (cases[i].gib == gib && cases[i].leaf == leaf &&
		    cases[i].pat == pat && cases[i].dens == dens)
			return &cases[i];
	return NULL;
}

static const struct ext_result *find_ext(unsigned int pat, unsigned int dens)
{
	for (unsigned int i = 0; i < next_results; i++)
		if (ext_results[i].pat == pat && ext_results[i].dens == dens)
			return &ext_results[i];
	return NULL;
}

struct target {
	const char *name;
	double value;
	double limit;
	bool at_most;		/* value <= limit passes; else >= */
	bool have;
};

static struct target targets[8];
static unsigned int ntargets;

static void target_add(const char *name, double value, double limit,
		       bool at_most, bool have)
{
	targets[ntargets++] = (struct target){
		.name = name, .value = value, .limit = limit,
		.at_most = at_most, .have = have,
	};
}

static bool target_met(const struct target *t)
{
	return t->have && (t->at_most ? t->value <= t->limit :
					t->value >= t->limit);
}

static void compute_targets(void)
{
	const struct case_result *c = find_case(EXT_GIB, 0, PAT_CLUSTERED, 2);
	const struct ext_result *e0 = find_ext(PAT_UNIFORM, 0);
	const struct ext_result *e1 = find_ext(PAT_UNIFORM, 3);
	const struct mem_result *m = NULL;
	double worst = 0;

	for (unsigned int i = 0; i < nmem_results; i++)
		if (!m || mem_results[i].gib > m->gib)
			m = &mem_results[i];
	target_add("1 TiB 4k 0.1% clustered: engine (h+ext) / floor <= 1.5",
		   c ? c->t_hext / c->t_floor : 0, 1.5, true, c);
	target_add("1 TiB 4k 0.1% clustered: vmm (b) / engine (h+ext) >= 1.6",
		   c ? c->t_vmm / c->t_hext : 0, 1.6, false, c);
	target_add("32 MiB bitmap, 0%: extents / plain read <= 1.2",
		   e0 ? e0->t_dirtyd / e0->t_plain : 0, 1.2, true, e0);
	target_add("32 MiB bitmap, 1% uniform: CH / extents >= 3",
		   e1 ? e1->t_ch / e1->t_dirtyd : 0, 3, false, e1);
	/* budget: 2 bitmaps for the domain, plus one per subscriber */
	target_add("domain + 1 idle subscriber, in bitmaps <= 3",
		   m ? (double)(m->domain_bytes + m->sub_idle) /
		       m->bitmap_bytes : 0, 3, true, m);
	for (unsigned int d = 0; m && d < NDENS; d++)
		if (m->have_inflight[d] &&
		    (double)(m->domain_bytes + m->sub_inflight[d]) /
		    m->bitmap_bytes > worst)
			worst = (double)(m->domain_bytes + m->sub_inflight[d]) /
				m->bitmap_bytes;
	target_add("domain + 1 subscriber, 1 generation in flight <= 3",
		   worst, 3, true, m);
}

static void print_reports(void)
{
	printf("\n# engine scaling, 1 TiB at 4 KiB leaves (ms; median)\n");
	printf("%-9s %6s | %9s %9s %7s | %9s %9s %7s\n", "pattern", "dens",
	       "harv 1w", "harv 2w", "x", "h+ext 1w", "h+ext 2w", "x");
	for (unsigned int i = 0; i < nscale_results; i++) {
		const struct scale_result *s = &scale_results[i];

		printf("%-9s %6s | %9.3f %9.3f %7.2f | %9.3f %9.3f %7.2f\n",
		       pattern_names[s->pat], density_names[s->dens],
		       1e3 * s->t1_harvest, 1e3 * s->t2_harvest,
		       s->t1_harvest / s->t2_harvest, 1e3 * s->t1_hext,
		       1e3 * s->t2_hext, s->t1_hext / s->t2_hext);
	}

	printf("\n# daemon memory per tracked domain, in bitmaps (bitmap: 1 bit per 4 KiB page)\n");
	printf("%6s | %10s | %7s %7s %7s | %s\n", "guest", "bitmap B",
	       "domain", "sub", "total", "total with one generation in flight, by density (uniform)");
	for (unsigned int i = 0; i < nmem_results; i++) {
		const struct mem_result *m = &mem_results[i];
		double bm = m->bitmap_bytes;

		printf("%4" PRIu64 "G  | %10" PRIu64 " | %7.3f %7.3f %7.3f |",
		       m->gib, m->bitmap_bytes, m->domain_bytes / bm,
		       m->sub_idle / bm, (m->domain_bytes + m->sub_idle) / bm);
		for (unsigned int d = 0; d < NDENS; d++)
			if (m->have_inflight[d])
				printf(" %s:%.3f", density_names[d],
				       (m->domain_bytes + m->sub_inflight[d]) /
				       bm);
		printf("\n");
	}

	printf("\n# machine: 2 threads of compute give x%.2f the throughput of one (2.00 = two free cores); load average %.2f at start, %.2f at end\n",
	       machine_compute_x, machine_load_start, machine_load_end);
	for (unsigned int i = 0; i < nguest_results; i++) {
		const struct guest_result *g = &guest_results[i];
		double f1[NPAT * NDENS], f2[NPAT * NDENS];
		unsigned int n = 0;

		if (g->leaf != 0)
			continue;
		for (unsigned int k = 0; k < ncases; k++)
			if (cases[k].gib == g->gib && cases[k].leaf == 0) {
				f1[n] = cases[k].t_floor1;
				f2[n++] = cases[k].t_floor2;
			}
		if (n)
			printf("# stream read of %" PRIu64 " GiB 4k tables + bitmap (%.0f MiB): 1 CPU %.1f GB/s, 2 CPUs %.1f GB/s\n",
			       g->gib, g->floor_bytes / 1048576.0,
			       g->floor_bytes / median(f1, n) / 1e9,
			       g->floor_bytes / median(f2, n) / 1e9);
	}

	printf("\n# targets\n");
	for (unsigned int i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];

		if (!t->have)
			printf("%-60s %8s  not measured\n", t->name, "-");
		else
			printf("%-60s %8.3f  %s\n", t->name, t->value,
			       target_met(t) ? "met" : "MISSED");
	}
}

static int write_json(const char *path, double total_secs)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"bench\": \"harvest_bench\",\n");
	fprintf(f, "  \"cpus\": %ld,\n  \"extent_scan_impl\": \"%s\",\n",
		sysconf(_SC_NPROCESSORS_ONLN), extent_scan_impl());
	fprintf(f, "  \"cluster_pages\": %d,\n  \"seconds\": %.1f,\n",
		CLUSTER_PAGES, total_secs);
	fprintf(f, "  \"compute_scaling_2_threads\": %.3f,\n  \"loadavg_start\": %.2f,\n  \"loadavg_end\": %.2f,\n",
		machine_compute_x, machine_load_start, machine_load_end);
	fprintf(f, "  \"units\": \"seconds, medians\",\n  \"guests\": [\n");
	for (unsigned int i = 0; i < nguest_results; i++) {
		const struct guest_result *g = &guest_results[i];

		fprintf(f, "    {\"gib\": %" PRIu64 ", \"leaf\": \"%s\", \"map_s\": %.4f, \"table_bytes\": %" PRIu64 ", \"tables\": %" PRIu64 ", \"floor_bytes\": %" PRIu64 ", \"batch_bytes\": %" PRIu64 ", \"batches\": %zu, \"reps\": %u}%s\n",
			g->gib, leaf_names[g->leaf], g->t_map, g->table_bytes,
			g->tables, g->floor_bytes, g->batch_bytes, g->nbatches,
			g->reps, i + 1 < nguest_results ? "," : "");
	}
	fprintf(f, "  ],\n  \"cases\": [\n");
	for (unsigned int i = 0; i < ncases; i++) {
		const struct case_result *c = &cases[i];

		fprintf(f, "    {\"gib\": %" PRIu64 ", \"leaf\": \"%s\", \"pattern\": \"%s\", \"density\": %g, \"pattern_density\": %.6g, \"bitmap_density\": %.6g, \"harvest\": %.6g, \"harvest_extents\": %.6g, \"vmm\": %.6g, \"floor\": %.6g, \"floor_1cpu\": %.6g, \"floor_2cpu\": %.6g, \"min_harvest\": %.6g, \"min_harvest_extents\": %.6g, \"min_vmm\": %.6g, \"floor_bytes\": %" PRIu64 ", \"extents\": %" PRIu64 ", \"engine_over_floor\": %.4g, \"vmm_over_engine\": %.4g, \"ok\": %s}%s\n",
			c->gib, leaf_names[c->leaf], pattern_names[c->pat],
			densities[c->dens], c->pattern_density,
			c->bitmap_density, c->t_harvest, c->t_hext, c->t_vmm,
			c->t_floor, c->t_floor1, c->t_floor2, c->min_harvest,
			c->min_hext, c->min_vmm, c->floor_bytes,
			c->extents, c->t_hext / c->t_floor,
			c->t_vmm / c->t_hext, c->ok ? "true" : "false",
			i + 1 < ncases ? "," : "");
	}
	fprintf(f, "  ],\n  \"extents_32mib\": [\n");
	for (unsigned int i = 0; i < next_results; i++) {
		const struct ext_result *e = &ext_results[i];

		fprintf(f, "    {\"pattern\": \"%s\", \"density\": %g, \"plain_read\": %.6g, \"dirtyd\": %.6g, \"cloud_hypervisor\": %.6g, \"cloud_hypervisor_reused_vec\": %.6g, \"extents\": %" PRIu64 ", \"dirtyd_over_plain\": %.4g, \"ch_over_dirtyd\": %.4g, \"ok\": %s}%s\n",
			pattern_names[e->pat], densities[e->dens], e->t_plain,
			e->t_dirtyd, e->t_ch, e->t_ch_reuse, e->extents,
			e->t_dirtyd / e->t_plain, e->t_ch / e->t_dirtyd,
			e->ok ? "true" : "false",
			i + 1 < next_results ? "," : "");
	}
	fprintf(f, "  ],\n  \"scaling\": [\n");
	for (unsigned int i = 0; i < nscale_results; i++) {
		const struct scale_result *s = &scale_results[i];

		fprintf(f, "    {\"gib\": %llu, \"leaf\": \"4k\", \"pattern\": \"%s\", \"density\": %g, \"harvest_1w\": %.6g, \"harvest_2w\": %.6g, \"harvest_extents_1w\": %.6g, \"harvest_extents_2w\": %.6g}%s\n",
			EXT_GIB, pattern_names[s->pat], densities[s->dens],
			s->t1_harvest, s->t2_harvest, s->t1_hext, s->t2_hext,
			i + 1 < nscale_results ? "," : "");
	}
	fprintf(f, "  ],\n  \"memory\": [\n");
	for (unsigned int i = 0; i < nmem_results; i++) {
		const struct mem_result *m = &mem_results[i];
		bool first = true;

		fprintf(f, "    {\"gib\": %" PRIu64 ", \"bitmap_bytes\": %" PRIu64 ", \"domain_bytes\": %" PRIu64 ", \"subscriber_idle_bytes\": %" PRIu64 ", \"subscriber_inflight_bytes\": {",
			m->gib, m->bitmap_bytes, m->domain_bytes, m->sub_idle);
		for (unsigned int d = 0; d < NDENS; d++) {
			if (!m->have_inflight[d])
				continue;
			fprintf(f, "%s\"%g\": %" PRIu64, first ? "" : ", ",
				densities[d], m->sub_inflight[d]);
			first = false;
		}
		fprintf(f, "}}%s\n", i + 1 < nmem_results ? "," : "");
	}
	fprintf(f, "  ],\n  \"targets\": [\n");
	for (unsigned int i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];

		fprintf(f, "    {\"name\": \"%s\", \"value\": %.4g, \"limit\": %g, \"met\": %s}%s\n",
			t->name, t->value, t->limit,
			target_met(t) ? "true" : "false",
			i + 1 < ntargets ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	return fclose(f) ? -errno : 0;
}

/* ---------------------------------------------------------------- plot */

struct svg_series {
	const char *name;
	const char *color;
	double y[NDENS];	/* seconds; <= 0: no point */
};

/* A panel's plot area: densities across, decades of ms up. */
struct svg_axes {
	double left, right, top, bottom;
	int dlo, dhi;
};

static double svg_x(const struct svg_axes *a, int d)
{
	return a->left + (a->right - a->left) * (d + 0.5) / NDENS;
}

static double svg_y(const struct svg_axes *a, double secs)
{
	return a->bottom - (a->bottom - a->top) *
			   (log10(secs * 1e3) - a->dlo) / (a->dhi - a->dlo);
}

static void svg_panel(FILE *f, double x, double y, double w, double h,
		      const char *title, const struct svg_series *s, int ns)
{
	struct svg_axes a = {
		.left = x + 60, .right = x + w - 10,
		.top = y + 30, .bottom = y + h - 40,
	};
	double lo = 1e9, hi = 0;

	for (int i = 0; i < ns; i++)
		for (int d = 0; d < NDENS; d++)
			if (s[i].y[d] > 0) {
				lo = fmin(lo, s[i].y[d] * 1e3);
				hi = fmax(hi, s[i].y[d] * 1e3);
			}
	if (hi <= 0)
		return;
	a.dlo = (int)floor(log10(lo));
	a.dhi = (int)ceil(log10(hi));
	if (a.dhi == a.dlo)
		a.dhi++;
	fprintf(f, "<text x='%.0f' y='%.0f' font-size='14' font-weight='bold'>%s</text>\n",
		x + 10, y + 18, title);
	fprintf(f, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#888'/>\n",
		a.left, a.top, a.right - a.left, a.bottom - a.top);
	for (int k = a.dlo; k <= a.dhi; k++) {
		double yy = svg_y(&a, pow(10, k) / 1e3);

		fprintf(f, "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/>\n",
			a.left, yy, a.right, yy);
		fprintf(f, "<text x='%.0f' y='%.1f' font-size='11' text-anchor='end'>%g ms</text>\n",
			a.left - 4, yy + 4, pow(10, k));
	}
	for (int d = 0; d < NDENS; d++)
		fprintf(f, "<text x='%.1f' y='%.0f' font-size='11' text-anchor='middle'>%s</text>\n",
			svg_x(&a, d), a.bottom + 15, density_names[d]);
	fprintf(f, "<text x='%.1f' y='%.0f' font-size='11' text-anchor='middle'>dirty density</text>\n",
		(a.left + a.right) / 2, a.bottom + 32);
	for (int i = 0; i < ns; i++) {
		fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='",
			s[i].color);
		for (int d = 0; d < NDENS; d++)
			if (s[i].y[d] > 0)
				fprintf(f, "%.1f,%.1f ", svg_x(&a, d),
					svg_y(&a, s[i].y[d]));
		fprintf(f, "'/>\n");
		for (int d = 0; d < NDENS; d++)
			if (s[i].y[d] > 0)
				fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
					svg_x(&a, d), svg_y(&a, s[i].y[d]),
					s[i].color);
		fprintf(f, "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/>\n",
			a.left + 8, a.top + 8 + 15 * i, s[i].color);
		fprintf(f, "<text x='%.0f' y='%.0f' font-size='11'>%s</text>\n",
			a.left + 22, a.top + 17 + 15 * i, s[i].name);
	}
}

static int write_svg(const char *path)
{
	const double pw = 520, ph = 330;
	uint64_t gib = 0;
	FILE *f;

	for (unsigned int i = 0; i < ncases; i++)
		if (cases[i].leaf == 0 && cases[i].gib > gib)
			gib = cases[i].gib;
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' font-family='sans-serif'>\n",
		2 * pw, 2 * ph);
	fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
	for (unsigned int pat = 0; pat < NPAT; pat++) {
		struct svg_series s[4] = {
			{ .name = "dirtyd engine: harvest + extents (a)",
			  .color = "#d62728" },
			{ .name = "dirtyd engine: harvest only (a)",
			  .color = "#ff9896" },
			{ .name = "VMM today: one read + fold (b)",
			  .color = "#1f77b4" },
			{ .name = "floor: stream tables + bitmap (c)",
			  .color = "#2ca02c" },
		};
		char title[128];

		for (unsigned int d = 0; d < NDENS; d++) {
			const struct case_result *c = find_case(gib, 0, pat, d);

			if (!c)
				continue;
			s[0].y[d] = c->t_hext;
			s[1].y[d] = c->t_harvest;
			s[2].y[d] = c->t_vmm;
			s[3].y[d] = c->t_floor;
		}
		snprintf(title, sizeof(title),
			 "%" PRIu64 " GiB guest, 4 KiB leaves, %s", gib,
			 pattern_names[pat]);
		svg_panel(f, pat * pw, 0, pw, ph, title, s, 4);
	}
	for (unsigned int pat = 0; pat < NPAT; pat++) {
		struct svg_series s[3] = {
			{ .name = "dirtyd extent_scan_bitmap()",
			  .color = "#d62728" },
			{ .name = "Cloud Hypervisor from_dirty_bitmap() (d)",
			  .color = "#9467bd" },
			{ .name = "plain read (sum of words)",
			  .color = "#2ca02c" },
		};
		char title[128];

		for (unsigned int d = 0; d < NDENS; d++) {
			const struct ext_result *e = find_ext(pat, d);

			if (!e)
				continue;
			s[0].y[d] = e->t_dirtyd;
			s[1].y[d] = e->t_ch;
			s[2].y[d] = e->t_plain;
		}
		snprintf(title, sizeof(title),
			 "extents from a 32 MiB bitmap, %s, 1 thread",
			 pattern_names[pat]);
		svg_panel(f, pat * pw, ph, pw, ph, title, s, 3);
	}
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}

/* ---------------------------------------------------------------- main */

static unsigned int default_reps(uint64_t gib)
{
	return gib <= 16 ? 9 : 7;
}

int main(int argc, char **argv)
{
	uint64_t gibs[MAX_GUESTS] = { 16, 256, 1024 };
	unsigned int ngibs = 3, reps = 0;
	const char *json = "harvest.json", *svg = "harvest.svg";
	struct floor_pool fp;
	double t_start = now();
	int opt, r;

	while ((opt = getopt(argc, argv, "g:r:j:s:W")) != -1) {
		char *p, *end;

		switch (opt) {
		case 'g':
			ngibs = 0;
			for (p = optarg; *p && ngibs < MAX_GUESTS; p = end) {
				gibs[ngibs] = strtoull(p, &end, 0);
				if (end == p || !gibs[ngibs] ||
				    gibs[ngibs] > 4096)
					goto usage;
				ngibs++;
				if (*end == ',')
					end++;
			}
			if (!ngibs)
				goto usage;
			break;
		case 'r':
			reps = strtoul(optarg, NULL, 0);
			if (reps < 3 || reps > MAX_REPS)
				goto usage;
			break;
		case 'j':
			json = optarg;
			break;
		case 's':
			svg = optarg;
			break;
		case 'W':
			force_workers = true;
			break;
		default:
			goto usage;
		}
	}

	loadavg(&machine_load_start);
	machine_compute_x = probe_compute_scaling();
	plain_read = bench_read_pick();
	evict_buf = bench_alloc(EVICT_BYTES);
	memset(evict_buf, 1, EVICT_BYTES);
	r = floor_pool_start(&fp);
	if (r)
		bench_fail("floor thread", r);

	printf("# harvest_bench: %ld CPUs (2 threads of compute: x%.2f), load average %.2f, extent zero-skip %s, floor read %s, clusters of %d pages, engine %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), machine_compute_x,
	       machine_load_start, extent_scan_impl(),
	       bench_read_impl(plain_read),
	       CLUSTER_PAGES, force_workers ? "workers" : "async");
	printf("# times in ms, medians; a = engine harvest+extents, b = vmm, c = floor, h = engine harvest only;\n# c1/c2 = floor read on 1 CPU / on 2 CPUs (2.0: the memory feeds two cores; 1.0: one core takes all the bandwidth there is)\n");
	print_case_header();
	for (unsigned int i = 0; i < ngibs; i++)
		for (unsigned int l = 0; l < NLEAF; l++)
			run_guest(gibs[i], l, &fp,
				  reps ? reps : default_reps(gibs[i]));
	floor_pool_stop(&fp);

	printf("\n# extents from a 32 MiB bitmap (1 TiB at 4 KiB), 1 thread, caches evicted (ms; median of %d)\n",
	       EXT_REPS);
	printf("%-9s %6s | %8s %8s %8s %8s | %7s %7s %7s | %9s %s\n",
	       "pattern", "dens", "plain", "dirtyd", "CH", "CH-reuse",
	       "ext/rd", "CH/ext", "CHr/ext", "extents", "check");
	run_extents();

	loadavg(&machine_load_end);
	compute_targets();
	print_reports();
	r = write_json(json, now() - t_start);
	if (r)
		bench_fail(json, r);
	r = write_svg(svg);
	if (r)
		bench_fail(svg, r);
	printf("\n# wrote %s and %s in %.0f s\n", json, svg, now() - t_start);
	for (unsigned int i = 0; i < ncases; i++)
		if (!cases[i].ok)
			return 1;
	for (unsigned int i = 0; i < next_results; i++)
		if (!ext_results[i].ok)
			return 1;
	return 0;
usage:
	fprintf(stderr, "usage: %s [-g GIB,...] [-r REPS>=3] [-j JSON] [-s SVG] [-W]\n",
		argv[0]);
	return 2;
}
