// SPDX-License-Identifier: MIT
/*
 * e2e_bench - the path users run, end to end (issue 15): the real daemon
 * in process (tests/inproc: every daemon/ source but main.c, its event
 * loop on a thread of its own, durable subscriber sets in the bitmap memfd
 * as under systemd) on the simulated IOMMU, one domain (a 1 TiB guest at
 * 4 KiB pages by default, tracking on), N libdirty clients (1, 16, 256),
 * each on a thread and a connection of its own, subscribed CLEAN.  bench/
 * run.sh runs it; bench/README.md says what every row measures.
 *
 *   e2e_bench [-g GIB,...] [-n N,...] [-r REPS] [-p PATTERNS] [-M GIB]
 *             [-j JSON] [-q] [-c]
 *
 * -g guest sizes in GiB (1024,64: a domain each); -n subscriber counts
 * (1,16,256); -r timed repetitions (3, medians; one more, untimed, checks
 * every page exactly, with up to 16 subscribers); -p patterns by index
 * (0..5, default all); -M memory budget in GiB for the subscribers'
 * bitmaps (8: a case past it is skipped and says so); -j where to write
 * the JSON; -q quick (64 GiB only); -c check only (the smoke test: 1
 * repetition, checks, no table of times).
 *
 * Per pattern (a 4 KiB-page bitmap), written before every measurement by
 * DMA (backend_dma_write() on the domain's context, two threads, not
 * timed), in one process:
 *   plain    a plain read of the pattern's bitmap (caches evicted)
 *   harvest  dirtyd's harvest engine (its default config) reading the
 *            domain's HWPT, nothing else: the harvest alone
 *   vmm      the VMM's way on one thread (e2e_baselines.c): memset + ONE
 *            GET_DIRTY_BITMAP of the whole guest, QEMU's fold, sync, and
 *            its find-and-clear of the pages to send
 *   ch       Cloud Hypervisor's from_dirty_bitmap() over the bitmap,
 *            Vec fresh and reused; ch-e2e: the one-thread read + the scan
 *   e2e N    every client SYNCs (harvest, fold into N sets, SYNC count),
 *            then GET_RANGES with its libdirty callback (take, encode,
 *            send, decode), then ACK.
 * Every result is checked (aborts on a mismatch): bitmaps equal the
 * pattern, every client's SYNC pending count equals its pages, every
 * client's ranges are exactly its runs (a digest of every maximal run;
 * bit by bit in the untimed check repetition).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "baselines.h"
#include "daemon/domain/domain.h"
#include "daemon/harvest/harvest.h"
#include "daemon/state/state.h"
#include "daemon/subscriber/bitmem.h"
#include "daemon/util/log.h"
#include "kernel/backend.h"
#include "tests/inproc/inproc.h"

#define PG 4096ULL
#define GIB (1ULL << 30)
#define MAP_CHUNK (64 * GIB)	/* bytes per MAP */
#define EVICT_BYTES (96u << 20)
#define MAX_N 8
#define MAX_REPS 64

static const struct pattern {
	const char *name;
	enum bench_pattern kind;
	double density;
	const char *dens;
} patterns[] = {
	{ "uniform", PAT_UNIFORM, 0, "0" },
	{ "clustered", PAT_CLUSTERED, 0.001, "0.1%" },
	{ "uniform", PAT_UNIFORM, 0.001, "0.1%" },
	{ "uniform", PAT_UNIFORM, 0.01, "1%" },
	{ "clustered", PAT_CLUSTERED, 0.1, "10%" },
	{ "uniform", PAT_UNIFORM, 0.1, "10%" },
};
#define NPAT (sizeof(patterns) / sizeof(patterns[0]))

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "e2e_bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double clock_secs(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @v, left in its order (baselines.c's median() sorts it). */
static double median_of(const double *v, unsigned int n)
{
	double s[MAX_REPS];

	if (!n)
		return NAN;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void *bench_alloc(size_t n)
{
	void *p = aligned_alloc(4096, (n + 4095) & ~4095UL);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* kB of /proc/self/status's @key (RssAnon:, RssShmem:). */
static uint64_t status_kb(const char *key)
{
	char line[256];
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

/* ------------------------------------------------------------ patterns */

/* pattern_fill() and the patterns' kinds: bench/baselines.h */

/* Set bits in pages [a, b) of @bm. */
static uint64_t bm_count(const uint64_t *bm, uint64_t a, uint64_t b)
{
	uint64_t n = 0;

	while (a < b && a % 64) {
		n += bm[a / 64] >> (a % 64) & 1;
		a++;
	}
	for (; a + 64 <= b; a += 64)
		n += (uint64_t)__builtin_popcountll(bm[a / 64]);
	for (; a < b; a++)
		n += bm[a / 64] >> (a % 64) & 1;
	return n;
}

/* ------------------------------------------------------------- digests */

/*
 * What a reader got: its runs merged into maximal ones (libdirty may cut
 * a run at a chunk's end), each counted and hashed.  Two equal digests
 * mean the same runs, so the same pages (a 64-bit hash of every run).
 */
struct digest {
	uint64_t runs, pages, hash;
	uint64_t cur_first, cur_n, last_end;
	bool bad;		/* out of order, overlapping or empty */
	/* the exact check: every range against the pattern */
	const uint64_t *exact;
	uint64_t npages;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static void digest_init(struct digest *d, const uint64_t *exact,
			uint64_t npages)
{
	*d = (struct digest){ .exact = exact, .npages = npages };
}

static void digest_flush(struct digest *d)
{
	if (!d->cur_n)
		return;
	d->runs++;
	d->pages += d->cur_n;
	d->hash += mix(d->cur_first * 0x9e3779b97f4a7c15ULL ^ mix(d->cur_n));
	d->cur_n = 0;
}

static void digest_add(struct digest *d, uint64_t first, uint64_t n)
{
	if (!n || first < d->last_end || first + n > d->npages) {
		d->bad = true;
		return;
	}
	if (d->exact && (bm_count(d->exact, d->last_end, first) ||
			 bm_count(d->exact, first, first + n) != n))
		d->bad = true;
	if (d->cur_n && d->cur_first + d->cur_n == first) {
		d->cur_n += n;
	} else {
		digest_flush(d);
		d->cur_first = first;
		d->cur_n = n;
	}
	d->last_end = first + n;
}

static void digest_end(struct digest *d)
{
	digest_flush(d);
	if (d->exact && bm_count(d->exact, d->last_end, d->npages))
		d->bad = true;
}

static bool digest_same(const struct digest *a, const struct digest *b)
{
	return !a->bad && !b->bad && a->runs == b->runs &&
	       a->pages == b->pages && a->hash == b->hash;
}

static void digest_run(void *ctx, uint64_t first, uint64_t n)
{
	digest_add(ctx, first, n);
}

/*
 * The runs of set bits in words [@w0, @w1) of @bm, to @fn in order; a run
 * across a word boundary comes in pieces, one per word (the readers merge
 * them).  Stops at, and returns, @fn's first non-zero return.
 */
static int bm_runs(const uint64_t *bm, uint64_t w0, uint64_t w1,
		   int (*fn)(void *ctx, uint64_t first, uint64_t n), void *ctx)
{
	for (uint64_t w = w0; w < w1; w++) {
		uint64_t x = bm[w];

		while (x) {
			unsigned int start = (unsigned int)__builtin_ctzll(x);
			uint64_t ones = ~(x >> start);
			unsigned int len = ones ?
				(unsigned int)__builtin_ctzll(ones) :
				64 - start;
			int r = fn(ctx, w * 64 + start, len);

			if (r)
				return r;
			if (start + len >= 64)
				break;
			x &= ~0ULL << (start + len);
		}
	}
	return 0;
}

static int digest_piece(void *ctx, uint64_t first, uint64_t n)
{
	digest_add(ctx, first, n);
	return 0;
}

/* The runs of a bitmap of @nwords words. */
static void digest_bitmap(struct digest *d, const uint64_t *bm,
			  uint64_t nwords)
{
	digest_init(d, NULL, nwords * 64);
	bm_runs(bm, 0, nwords, digest_piece, d);
	digest_end(d);
}

/* ------------------------------------------------------------- the host */

#define MAX_G 4

/* One guest: a domain of its own in the one daemon. */
struct guest {
	uint64_t gib, size, npages, nwords;
	uint32_t dom;
	struct backend *kctx;		/* the domain's context */
	uint32_t dev_id, hwpt_id;
	struct harvest_domain h_dom;	/* the harvest alone's plan */
};

static struct guest guests[MAX_G];
static struct harvest_engine *h_engine;
static unsigned int nguests;
static struct guest *G;			/* the one measured */

static struct bench {
	struct dirty *ctl;
	pthread_t loop_th;
	clockid_t loop_clock;
	atomic_bool loop_stop;
	char dir[64], sock[96];
	bench_read_fn plain_read;
	char *evict;
	uint64_t *pat;			/* the pattern */
	struct digest want;		/* its runs */
	uint64_t want_pages;
	bool check_only;
	double t_start;
} B;

static volatile uint64_t read_sink;

static void evict(void)
{
	read_sink += B.plain_read(B.evict, EVICT_BYTES);
}

static void *loop_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&B.loop_stop))
		inproc_pump(true, 20);
	return NULL;
}

static double loop_cpu(void)
{
	return clock_secs(B.loop_clock);
}

/* Write the pattern by DMA: words [w0, w1), one write per run. */
struct dma_job {
	uint64_t w0, w1;
	uint64_t first, count;		/* the run being merged */
	int result;
};

static int dma_run(uint64_t first, uint64_t count)
{
	return count ? backend_dma_write(G->kctx, G->dev_id, first * PG,
					 count * PG) : 0;
}

static int dma_piece(void *ctx, uint64_t first, uint64_t n)
{
	struct dma_job *j = ctx;
	int r;

	if (j->count && j->first + j->count == first) {
		j->count += n;
		return 0;
	}
	r = dma_run(j->first, j->count);
	j->first = first;
	j->count = n;
	return r;
}

static void *dma_thread(void *arg)
{
	struct dma_job *j = arg;

	j->result = bm_runs(B.pat, j->w0, j->w1, dma_piece, j);
	if (!j->result)
		j->result = dma_run(j->first, j->count);
	return NULL;
}

static void dma_pattern(void)
{
	struct dma_job jobs[2] = {
		{ .w0 = 0, .w1 = G->nwords / 2 },
		{ .w0 = G->nwords / 2, .w1 = G->nwords },
	};
	pthread_t th;

	if (pthread_create(&th, NULL, dma_thread, &jobs[1]))
		die("pthread_create");
	dma_thread(&jobs[0]);
	pthread_join(th, NULL);
	if (jobs[0].result || jobs[1].result)
		die("DMA write: %s",
		    strerror(-(jobs[0].result ?: jobs[1].result)));
}

static void host_start(void)
{
	char buf[96];
	struct rlimit rl;
	int r;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(B.dir, sizeof(B.dir), "/tmp/e2e_bench.XXXXXX");
	if (!mkdtemp(B.dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(B.sock, sizeof(B.sock), "%s/dirtyd.sock", B.dir);
	snprintf(buf, sizeof(buf), "%s/notify", B.dir);
	/* a store as under systemd, so that sets are durable (memfd); no
	 * one listens there: handing it the memfds fails, logged once */
	setenv("NOTIFY_SOCKET", buf, 1);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	log_setup("e2e_bench", LOG_ERR);
	inproc_config();
	inproc_set("daemon", "socket", B.sock);
	inproc_set("daemon", "max_clients", "4096");
	inproc_set("sim", "backing_page_size", "4k");
	inproc_set("sim", "devices",
		   "sim0:dirty, sim1:dirty, sim2:dirty, sim3:dirty");
	inproc_durable();
	inproc_start();
	inproc_listen();
	if (!state_bits(&inproc_srv))
		die("no bitmap memfd: the sets would not be durable");
	if (pthread_create(&B.loop_th, NULL, loop_main, NULL) ||
	    pthread_getcpuclockid(B.loop_th, &B.loop_clock))
		die("starting the event loop's thread");
	r = dirty_connect(B.sock, DIRTY_CONNECT_NO_RESUME |
			  DIRTY_CONNECT_NO_EVENTS, &B.ctl);
	if (r)
		die("connect %s: %s", B.sock, strerror(-r));
	r = harvest_engine_new(inproc_srv.backend,
			       &(struct harvest_engine_config){
		.workers = inproc_cfg.workers,
	}, &h_engine);
	if (r)
		die("harvest_engine_new: %s", strerror(-r));
}

/* Guest @g: a domain on device sim<@idx>, @g->size mapped at IOVA 0 in
 * MAPs of 64 GiB, tracking on; and the harvest alone's plan of it. */
static void guest_open(struct guest *g, unsigned int idx)
{
	struct harvest_range range = { .iova = 0, .length = g->size };
	struct domain *d;
	char dev[16];
	int r;

	G = g;
	snprintf(dev, sizeof(dev), "sim%u", idx);
	r = dirty_domain_create(B.ctl, dev, DIRTY_CREATE_TRACKING |
				DIRTY_CREATE_NO_HUGE_PAGES, &G->dom, NULL);
	if (r)
		die("DOMAIN_CREATE: %s", strerror(-r));
	for (uint64_t iova = 0; iova < G->size; iova += MAP_CHUNK) {
		uint64_t len = G->size - iova < MAP_CHUNK ? G->size - iova :
							   MAP_CHUNK;

		r = dirty_map(B.ctl, G->dom, iova, len, 0);
		if (r)
			die("MAP: %s (%s)", strerror(-r),
			    dirty_last_error_text(B.ctl) ?: "");
	}
	r = dirty_track_start(B.ctl, G->dom);
	if (r)
		die("TRACK_START: %s", strerror(-r));
	/* one round, so that the domain's own round bitmap is in memory
	 * before the subscribers' memory is counted */
	r = dirty_subscribe(B.ctl, G->dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	r = r ?: dirty_sync(B.ctl, G->dom, NULL, NULL);
	r = r ?: dirty_unsubscribe(B.ctl, G->dom);
	if (r)
		die("the first round: %s", strerror(-r));
	/* the domain's context and ids, for the backend's API (DMA, the
	 * baselines' reads); read once, the loop idle since the answer */
	d = domain_find(&inproc_srv, G->dom);
	if (!d || !domain_first_device(d))
		die("domain %u not found", G->dom);
	G->kctx = d->kctx;
	G->hwpt_id = d->hwpt_id;
	G->dev_id = domain_first_device(d)->dev_id;
	/* the harvest alone: dirtyd's engine (its default config) on a
	 * plan of the whole guest, through the domain's context */
	G->h_dom.b = G->kctx;
	r = harvest_domain_plan(&G->h_dom, G->hwpt_id, PG, &range, 1,
				harvest_batch_bytes(G->size, PG,
					harvest_engine_workers(h_engine)));
	if (r || G->h_dom.ranges[0].bit || G->h_dom.nwords != G->nwords)
		die("harvest_domain_plan: %s", strerror(-r));
}

static void host_stop(void)
{
	char buf[96];

	for (unsigned int i = 0; i < nguests; i++) {
		harvest_domain_release(&guests[i].h_dom);
		dirty_domain_destroy(B.ctl, guests[i].dom);
	}
	harvest_engine_free(h_engine);
	dirty_close(B.ctl);
	atomic_store(&B.loop_stop, true);
	pthread_join(B.loop_th, NULL);
	inproc_stop();
	snprintf(buf, sizeof(buf), "%s/notify", B.dir);
	unlink(buf);
	rmdir(B.dir);
}

/* Bytes the bitmap memfd holds (its allocated blocks). */
static uint64_t memfd_bytes(void)
{
	struct stat st;
	struct bitmem *m = state_bits(&inproc_srv);

	if (!m || fstat(bitmem_fd(m), &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* ------------------------------------------------------------ baselines */

/* Wall times; *_cpu: CPU time (the thread's; the harvest: the process',
 * its reader threads, everything else idle). */
struct base_result {
	double plain, harvest, vmm_read, vmm_fold, vmm_sync, vmm_find, vmm,
	       ch_fresh, ch_reuse, ch_e2e;
	double plain_cpu, harvest_cpu, vmm_cpu, ch_cpu;
};


static void check_digest(const struct digest *got, const char *who)
{
	if (!digest_same(got, &B.want))
		die("%s: wrong pages (%" PRIu64 " runs, %" PRIu64
		    " pages; want %" PRIu64 ", %" PRIu64 "%s)", who,
		    got->runs, got->pages, B.want.runs, B.want.pages,
		    got->bad ? "; out of order or not the pattern's" : "");
}

static void check_ranges(const struct range_vec *rv, const char *who)
{
	struct digest d;

	digest_init(&d, NULL, G->npages);
	for (size_t i = 0; i < rv->n; i++)
		digest_add(&d, rv->v[i].gpa / PG, rv->v[i].length / PG);
	digest_end(&d);
	check_digest(&d, who);
}

static void run_baselines(unsigned int reps, struct base_result *out)
{
	double v[14][MAX_REPS], c0;
	uint64_t *bm = bench_alloc(G->nwords * 8);
	uint64_t *ram = bench_alloc(G->nwords * 8);
	uint64_t *dest = bench_alloc(G->nwords * 8);
	struct range_vec keep = { 0 };
	double t0, t1, t2, t3, t4;
	struct digest d;
	int r;

	memset(ram, 0, G->nwords * 8);
	memset(dest, 0, G->nwords * 8);
	for (unsigned int i = 0; i < reps; i++) {
		struct range_vec fresh = { 0 };

		/* plain: one read of the bitmap, cold */
		evict();
		c0 = clock_secs(CLOCK_THREAD_CPUTIME_ID);
		t0 = now();
		read_sink += B.plain_read(B.pat, G->nwords * 8);
		v[0][i] = now() - t0;
		v[10][i] = clock_secs(CLOCK_THREAD_CPUTIME_ID) - c0;

		/* harvest alone */
		dma_pattern();
		evict();
		c0 = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
		t0 = now();
		r = harvest_engine_start(h_engine, &G->h_dom, 0, NULL, NULL);
		if (!r)
			r = harvest_engine_wait(h_engine);
		v[1][i] = now() - t0;
		v[11][i] = clock_secs(CLOCK_PROCESS_CPUTIME_ID) - c0;
		if (r < 0 || G->h_dom.result)
			die("harvest: %s", strerror(-(r < 0 ? r : G->h_dom.result)));
		if (memcmp(G->h_dom.bitmap, B.pat, G->nwords * 8))
			die("harvest: the bitmap is not the pattern");

		/* the VMM's way, one thread */
		dma_pattern();
		evict();
		c0 = clock_secs(CLOCK_THREAD_CPUTIME_ID);
		t0 = now();
		memset(bm, 0, G->nwords * 8);
		r = backend_hwpt_get_dirty_bitmap(G->kctx, G->hwpt_id, 0, G->size,
						  PG, bm, 0);
		t1 = now();
		if (r)
			die("GET_DIRTY_BITMAP: %s", strerror(-r));
		if (vmm_fold(bm, ram, G->nwords) != B.want_pages)
			die("vmm: fold counted the wrong pages");
		t2 = now();
		if (vmm_sync(ram, dest, G->nwords) != B.want_pages)
			die("vmm: sync counted the wrong pages");
		t3 = now();
		digest_init(&d, NULL, G->npages);
		vmm_find(dest, G->nwords, digest_run, &d);
		t4 = now();
		v[12][i] = clock_secs(CLOCK_THREAD_CPUTIME_ID) - c0;
		digest_end(&d);
		check_digest(&d, "vmm");
		v[2][i] = t1 - t0;
		v[3][i] = t2 - t1;
		v[4][i] = t3 - t2;
		v[5][i] = t4 - t3;
		v[6][i] = t4 - t0;

		/* Cloud Hypervisor's scan of the read bitmap */
		evict();
		c0 = clock_secs(CLOCK_THREAD_CPUTIME_ID);
		t0 = now();
		ch_from_dirty_bitmap(bm, G->nwords, 0, PG, &fresh);
		v[7][i] = now() - t0;
		v[13][i] = clock_secs(CLOCK_THREAD_CPUTIME_ID) - c0;
		check_ranges(&fresh, "ch");
		free(fresh.v);
		evict();
		t0 = now();
		ch_from_dirty_bitmap(bm, G->nwords, 0, PG, &keep);
		v[8][i] = now() - t0;
		check_ranges(&keep, "ch-reuse");

		/* CH end to end: the one-thread read, then the scan */
		dma_pattern();
		evict();
		fresh = (struct range_vec){ 0 };
		t0 = now();
		memset(bm, 0, G->nwords * 8);
		r = backend_hwpt_get_dirty_bitmap(G->kctx, G->hwpt_id, 0, G->size,
						  PG, bm, 0);
		ch_from_dirty_bitmap(bm, G->nwords, 0, PG, &fresh);
		v[9][i] = now() - t0;
		if (r)
			die("GET_DIRTY_BITMAP: %s", strerror(-r));
		check_ranges(&fresh, "ch-e2e");
		free(fresh.v);
	}
	out->plain = median_of(v[0], reps);
	out->harvest = median_of(v[1], reps);
	out->vmm_read = median_of(v[2], reps);
	out->vmm_fold = median_of(v[3], reps);
	out->vmm_sync = median_of(v[4], reps);
	out->vmm_find = median_of(v[5], reps);
	out->vmm = median_of(v[6], reps);
	out->ch_fresh = median_of(v[7], reps);
	out->ch_reuse = median_of(v[8], reps);
	out->ch_e2e = median_of(v[9], reps);
	out->plain_cpu = median_of(v[10], reps);
	out->harvest_cpu = median_of(v[11], reps);
	out->vmm_cpu = median_of(v[12], reps);
	out->ch_cpu = median_of(v[13], reps);
	free(keep.v);
	free(bm);
	free(ram);
	free(dest);
}

/* ------------------------------------------------------ the clients */

enum { CMD_ROUND, CMD_QUIT };

struct client {
	pthread_t th;
	unsigned int idx;
	struct dirty *d;
	uint64_t sync_gen, sync_pending;
	double t_synced, t_decoded, t_acked, cpu_decode;
	struct digest got;
	int err;
	const char *what;
};

static struct {
	pthread_barrier_t bar;
	int cmd;
	bool exact;
	unsigned int n;
	struct client *c;
} C;

static int on_range(void *ctx, uint64_t first, uint64_t npages)
{
	digest_add(ctx, first, npages);
	return 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	uint64_t gen;
	double c0;
	int r;

	for (;;) {
		pthread_barrier_wait(&C.bar);		/* A: go */
		if (C.cmd == CMD_QUIT)
			break;
		r = dirty_sync(c->d, G->dom, &c->sync_gen, &c->sync_pending);
		c->t_synced = now();
		if (r && !c->err) {
			c->err = r;
			c->what = "SYNC";
		}
		pthread_barrier_wait(&C.bar);		/* B: synced */
		pthread_barrier_wait(&C.bar);		/* C: ranges */
		digest_init(&c->got, C.exact ? B.pat : NULL, G->npages);
		c0 = clock_secs(CLOCK_THREAD_CPUTIME_ID);
		r = dirty_ranges(c->d, G->dom, 0, on_range, &c->got, &gen);
		c->t_decoded = now();
		c->cpu_decode = clock_secs(CLOCK_THREAD_CPUTIME_ID) - c0;
		if (r && !c->err) {
			c->err = r;
			c->what = "GET_RANGES";
		}
		pthread_barrier_wait(&C.bar);		/* D: decoded */
		pthread_barrier_wait(&C.bar);		/* E: ack */
		r = dirty_ack(c->d, G->dom, gen);
		c->t_acked = now();
		if (r && !c->err) {
			c->err = r;
			c->what = "ACK";
		}
		pthread_barrier_wait(&C.bar);		/* F: acked */
	}
	return NULL;
}

static void clients_start(unsigned int n)
{
	C.n = n;
	C.c = calloc(n, sizeof(*C.c));
	if (!C.c || pthread_barrier_init(&C.bar, NULL, n + 1))
		die("out of memory");
	for (unsigned int i = 0; i < n; i++) {
		struct client *c = &C.c[i];
		int r;

		c->idx = i;
		r = dirty_connect(B.sock, DIRTY_CONNECT_NO_RESUME |
				  DIRTY_CONNECT_NO_EVENTS, &c->d);
		if (r)
			die("client %u: connect: %s", i, strerror(-r));
		r = dirty_subscribe(c->d, G->dom, 0, DIRTY_SUBSCRIBE_CLEAN,
				    NULL);
		if (r)
			die("client %u: SUBSCRIBE: %s (%s)", i, strerror(-r),
			    dirty_last_error_text(c->d) ?: "");
		if (pthread_create(&c->th, NULL, client_main, c))
			die("pthread_create");
	}
}

/*
 * The memfd's regions of ended subscriptions are punched after the next
 * journal pass, by bitmem's reaper thread: wait until its size holds
 * still for half a second (10 s at most), so that the next case's memory
 * starts from what is really in use.
 */
static void memfd_settle(void)
{
	uint64_t prev = memfd_bytes(), cur;
	unsigned int still = 0;

	for (unsigned int i = 0; i < 200 && still < 10; i++) {
		usleep(50000);
		cur = memfd_bytes();
		still = cur == prev ? still + 1 : 0;
		prev = cur;
	}
}

/* Subscribers of the domain, as LIST_DOMAINS says. */
static uint32_t domain_subscribers(void)
{
	struct dirty_domain **list;
	uint32_t n = 0;
	size_t k;
	int r;

	r = dirty_list_domains(B.ctl, &list, &k);
	if (r)
		die("LIST_DOMAINS: %s", strerror(-r));
	for (size_t i = 0; i < k; i++)
		if (list[i]->domain_id == G->dom)
			n = list[i]->subscribers;
	free(list);
	return n;
}

static void clients_stop(void)
{
	C.cmd = CMD_QUIT;
	pthread_barrier_wait(&C.bar);
	for (unsigned int i = 0; i < C.n; i++) {
		pthread_join(C.c[i].th, NULL);
		dirty_close(C.c[i].d);
	}
	/* the daemon ends the subscriptions when it sees the hang-ups:
	 * wait for it, so that the next case's memory starts clean */
	while (domain_subscribers())
		usleep(1000);
	memfd_settle();
	pthread_barrier_destroy(&C.bar);
	free(C.c);
	C.c = NULL;
	C.n = 0;
}

struct e2e_result {
	unsigned int n;
	bool skipped;
	double sync, ranges, ack, total;	/* wall, s */
	double loop_sync, loop_ranges;		/* loop thread CPU, s */
	double proc;				/* process CPU, s */
	double proc_dec;	/* process CPU, SYNC to decoded (no ACK) */
	double decode_cpu;			/* client thread CPU, mean */
	double rounds;				/* harvest rounds per SYNC */
	int64_t memfd_flight, memfd_idle;	/* per subscriber */
	int64_t anon_flight;			/* per subscriber */
};

/* One round: every client SYNCs, takes its ranges, ACKs.  Times in *v. */
static void e2e_round(double *v, uint64_t *last_gen, bool mem,
		      struct e2e_result *res, uint64_t base_memfd,
		      uint64_t base_anon)
{
	double t0, t1, t2, l0, l1, l2, p0, p1, pd, sync_end = 0, dec_end = 0;
	double ack_end = 0, dec_cpu = 0;
	uint64_t gmax = 0;

	dma_pattern();
	evict();
	C.cmd = CMD_ROUND;
	l0 = loop_cpu();
	p0 = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now();
	pthread_barrier_wait(&C.bar);	/* A */
	pthread_barrier_wait(&C.bar);	/* B */
	l1 = loop_cpu();
	t1 = now();
	pthread_barrier_wait(&C.bar);	/* C */
	pthread_barrier_wait(&C.bar);	/* D */
	pd = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
	if (mem) {
		res->memfd_flight = ((int64_t)memfd_bytes() -
				     (int64_t)base_memfd) / C.n;
		res->anon_flight = ((int64_t)status_kb("RssAnon:") -
				    (int64_t)base_anon) * 1024 / C.n;
	}
	t2 = now();
	pthread_barrier_wait(&C.bar);	/* E */
	pthread_barrier_wait(&C.bar);	/* F */
	l2 = loop_cpu();
	p1 = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
	if (mem)
		res->memfd_idle = ((int64_t)memfd_bytes() -
				   (int64_t)base_memfd) / C.n;
	for (unsigned int i = 0; i < C.n; i++) {
		struct client *c = &C.c[i];
		char who[32];

		if (c->err)
			die("client %u: %s: %s", i, c->what,
			    strerror(-c->err));
		if (c->sync_pending != B.want_pages)
			die("client %u: SYNC says %" PRIu64 " pages pending, "
			    "the pattern has %" PRIu64, i, c->sync_pending,
			    B.want_pages);
		digest_end(&c->got);
		snprintf(who, sizeof(who), "client %u", i);
		check_digest(&c->got, who);
		if (c->t_synced > sync_end)
			sync_end = c->t_synced;
		if (c->t_decoded > dec_end)
			dec_end = c->t_decoded;
		if (c->t_acked > ack_end)
			ack_end = c->t_acked;
		if (c->sync_gen > gmax)
			gmax = c->sync_gen;
		dec_cpu += c->cpu_decode;
	}
	v[0] = sync_end - t0;
	v[1] = dec_end - t1;
	v[2] = ack_end - t2;
	v[3] = v[0] + v[1];
	v[4] = l1 - l0;
	v[5] = l2 - l1;
	v[6] = p1 - p0;
	v[7] = dec_cpu / C.n;
	v[8] = (double)(gmax - *last_gen);
	v[9] = pd - p0;
	*last_gen = gmax;
}

/* The bitmap pages a pattern touches: what a set of it faults in. */
static uint64_t touched_bytes(void)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < G->nwords; w += 512) {
		uint64_t any = 0;

		for (uint64_t k = w; k < w + 512 && k < G->nwords; k++)
			any |= B.pat[k];
		n += any ? 4096 : 0;
	}
	return n;
}

static void run_e2e(unsigned int n, unsigned int reps, uint64_t budget,
		    struct e2e_result *res)
{
	double v[10][MAX_REPS], tmp[10];
	uint64_t last_gen = 0, base_memfd, base_anon;

	*res = (struct e2e_result){ .n = n };
	/* pending and flight (today every page of both is faulted in) and
	 * the chunks in flight (at most the touched pages, raw) */
	if ((uint64_t)n * (2 * G->nwords * 8 + touched_bytes()) > budget) {
		res->skipped = true;
		return;
	}
	base_memfd = memfd_bytes();
	base_anon = status_kb("RssAnon:");
	clients_start(n);
	/* untimed: every range checked against the pattern, bit by bit
	 * (up to 16 subscribers; beyond, by the digest alone) */
	C.exact = n <= 16;
	e2e_round(tmp, &last_gen, false, res, 0, 0);
	C.exact = false;
	for (unsigned int i = 0; i < reps; i++) {
		e2e_round(tmp, &last_gen, i == reps - 1, res, base_memfd,
			  base_anon);
		for (unsigned int k = 0; k < 10; k++)
			v[k][i] = tmp[k];
	}
	clients_stop();
	fprintf(stderr, "# %" PRIu64 " GiB, %u subscribers: done, %.0f s in "
		"all, load average %.2f\n", G->gib, n, now() - B.t_start,
		bench_loadavg());
	res->sync = median_of(v[0], reps);
	res->ranges = median_of(v[1], reps);
	res->ack = median_of(v[2], reps);
	res->total = median_of(v[3], reps);
	res->loop_sync = median_of(v[4], reps);
	res->loop_ranges = median_of(v[5], reps);
	res->proc = median_of(v[6], reps);
	res->decode_cpu = median_of(v[7], reps);
	res->rounds = median_of(v[8], reps);
	res->proc_dec = median_of(v[9], reps);
}

/* ------------------------------------------------------------ reporting */

struct case_result {
	const struct guest *g;
	const struct pattern *p;
	uint64_t pages, runs;
	struct base_result base;
	struct e2e_result e2e[MAX_N];
	unsigned int nn;
};

static struct case_result cases[MAX_G * NPAT];
static unsigned int ncases;

static double ms(double s)
{
	return s * 1e3;
}

static void print_base_header(void)
{
	printf("%5s %-9s %5s %10s | %7s %8s | %8s %7s %7s %7s %8s | %7s %8s "
	       "%8s | %6s %8s %8s %7s\n", "guest", "pattern", "dens", "pages",
	       "plain", "harvest", "vmm-read", "fold", "sync", "find", "vmm",
	       "ch", "ch-reuse", "ch-e2e", "plainC", "harvestC", "vmmC",
	       "chC");
}

static void print_base(const struct case_result *c)
{
	const struct base_result *b = &c->base;

	printf("%4" PRIu64 "G %-9s %5s %10" PRIu64 " | %7.2f %8.2f | %8.2f "
	       "%7.2f %7.2f %7.2f %8.2f | %7.2f %8.2f %8.2f | %6.2f %8.2f "
	       "%8.2f %7.2f\n", c->g->gib, c->p->name, c->p->dens, c->pages, ms(b->plain), ms(b->harvest),
	       ms(b->vmm_read), ms(b->vmm_fold), ms(b->vmm_sync),
	       ms(b->vmm_find), ms(b->vmm), ms(b->ch_fresh), ms(b->ch_reuse),
	       ms(b->ch_e2e), ms(b->plain_cpu), ms(b->harvest_cpu),
	       ms(b->vmm_cpu), ms(b->ch_cpu));
}

static void print_e2e_header(void)
{
	printf("%5s %-9s %5s %4s | %8s %8s %7s %9s | %7s %7s %8s %8s %6s %4s | "
	       "%6s %5s %5s %5s %5s | %7s %7s %7s\n", "guest", "pattern",
	       "dens", "N",
	       "sync", "ranges", "ack", "SYNC>dec", "loop-s", "loop-r",
	       "procC", "procC>d", "decode", "rnds", "/plain", "/harv",
	       "/harC", "vmm/", "vmmC/", "memfd", "idle", "anon");
}

static void print_e2e(const struct case_result *c, const struct e2e_result *e)
{
	if (e->skipped) {
		printf("%4" PRIu64 "G %-9s %5s %4u | skipped: the subscribers' "
		       "bitmaps would pass the memory budget (-M)\n",
		       c->g->gib, c->p->name, c->p->dens, e->n);
		return;
	}
	printf("%4" PRIu64 "G %-9s %5s %4u | %8.2f %8.2f %7.2f %9.2f | %7.2f "
	       "%7.2f %8.2f %8.2f %6.2f %4.1f | %6.1f %5.2f %5.2f %5.2f %5.2f | "
	       "%6.2fM %6.2fM %6.2fM\n", c->g->gib,
	       c->p->name, c->p->dens, e->n, ms(e->sync), ms(e->ranges),
	       ms(e->ack), ms(e->total), ms(e->loop_sync),
	       ms(e->loop_ranges), ms(e->proc), ms(e->proc_dec),
	       ms(e->decode_cpu), e->rounds, e->total / c->base.plain,
	       e->total / c->base.harvest,
	       e->proc_dec / c->base.harvest_cpu, c->base.vmm / e->total,
	       c->base.vmm_cpu / e->proc_dec, e->memfd_flight / 1048576.0,
	       e->memfd_idle / 1048576.0, e->anon_flight / 1048576.0);
}

static const struct e2e_result *find_e2e(const struct case_result *c,
					 unsigned int n)
{
	for (unsigned int i = 0; i < c->nn; i++)
		if (c->e2e[i].n == n && !c->e2e[i].skipped)
			return &c->e2e[i];
	return NULL;
}

static void print_targets(const struct guest *g)
{
	const struct case_result *t = NULL;
	const struct e2e_result *one, *sixteen;

	for (unsigned int i = 0; i < ncases; i++)
		if (cases[i].g == g && cases[i].p->kind == PAT_CLUSTERED &&
		    cases[i].p->density == 0.001)
			t = &cases[i];
	if (!t)
		return;
	one = find_e2e(t, 1);
	sixteen = find_e2e(t, 16);
	printf("# targets (%" PRIu64 " GiB, 4 KiB, 0.1%% clustered):\n",
	       g->gib);
	if (one) {
		double a = one->total / t->base.harvest;
		double b = t->base.vmm / one->total;

		double ac = one->proc_dec / t->base.harvest_cpu;
		double bc = t->base.vmm_cpu / one->proc_dec;

		printf("#   SYNC to ranges decoded / harvest alone, 1 "
		       "subscriber (target <= 1.3): wall %.2f (%s), CPU %.2f "
		       "(%s)\n", a, a <= 1.3 ? "met" : "missed", ac,
		       ac <= 1.3 ? "met" : "missed");
		printf("#   VMM's way / SYNC to ranges decoded, 1 subscriber "
		       "(target >= 1.6): wall %.2f (%s), CPU %.2f (%s)\n", b,
		       b >= 1.6 ? "met" : "missed", bc,
		       bc >= 1.6 ? "met" : "missed");
	}
	if (one && sixteen) {
		double c = (sixteen->loop_sync + sixteen->loop_ranges) /
			   (one->loop_sync + one->loop_ranges);

		printf("#   event-loop CPU, 16 subscribers / 1: %.2f (target "
		       "<= 2: %s)\n", c, c <= 2 ? "met" : "missed");
	}
}

static void json_num(FILE *f, const char *k, double v, bool comma)
{
	if (isnan(v))
		fprintf(f, "\"%s\": null%s", k, comma ? ", " : "");
	else
		fprintf(f, "\"%s\": %.6g%s", k, v, comma ? ", " : "");
}

static void write_json(const char *path, unsigned int reps, double l0,
		       double l1)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "{\n  \"bench\": \"e2e_bench\", "
		"\"page_size\": 4096, \"reps\": %u, \"cpus\": %ld, "
		"\"load_start\": %.2f, \"load_end\": %.2f,\n"
		"  \"units\": \"seconds (medians); memory in bytes per "
		"subscriber\",\n  \"cases\": [\n", reps,
		sysconf(_SC_NPROCESSORS_ONLN), l0, l1);
	for (unsigned int i = 0; i < ncases; i++) {
		const struct case_result *c = &cases[i];
		const struct base_result *b = &c->base;

		fprintf(f, "    { \"guest_gib\": %" PRIu64 ", \"pattern\": "
			"\"%s\", \"density\": %g, \"pages\": %" PRIu64
			", \"runs\": %" PRIu64 ",\n      ", c->g->gib,
			c->p->name, c->p->density, c->pages, c->runs);
		json_num(f, "plain", b->plain, true);
		json_num(f, "harvest", b->harvest, true);
		json_num(f, "vmm_read", b->vmm_read, true);
		json_num(f, "vmm_fold", b->vmm_fold, true);
		json_num(f, "vmm_sync", b->vmm_sync, true);
		json_num(f, "vmm_find", b->vmm_find, true);
		json_num(f, "vmm", b->vmm, true);
		json_num(f, "ch", b->ch_fresh, true);
		json_num(f, "ch_reuse", b->ch_reuse, true);
		json_num(f, "ch_e2e", b->ch_e2e, true);
		json_num(f, "plain_cpu", b->plain_cpu, true);
		json_num(f, "harvest_cpu", b->harvest_cpu, true);
		json_num(f, "vmm_cpu", b->vmm_cpu, true);
		json_num(f, "ch_cpu", b->ch_cpu, true);
		fprintf(f, "\n      \"e2e\": [");
		for (unsigned int k = 0; k < c->nn; k++) {
			const struct e2e_result *e = &c->e2e[k];

			fprintf(f, "%s\n        { \"subscribers\": %u, ",
				k ? "," : "", e->n);
			if (e->skipped) {
				fprintf(f, "\"skipped\": \"memory budget\" }");
				continue;
			}
			json_num(f, "sync", e->sync, true);
			json_num(f, "ranges", e->ranges, true);
			json_num(f, "ack", e->ack, true);
			json_num(f, "sync_to_decoded", e->total, true);
			json_num(f, "loop_cpu_sync", e->loop_sync, true);
			json_num(f, "loop_cpu_ranges_ack", e->loop_ranges,
				 true);
			json_num(f, "process_cpu", e->proc, true);
			json_num(f, "process_cpu_sync_to_decoded", e->proc_dec,
				 true);
			json_num(f, "client_decode_cpu", e->decode_cpu, true);
			json_num(f, "rounds_per_sync_phase", e->rounds, true);
			json_num(f, "memfd_in_flight", (double)e->memfd_flight,
				 true);
			json_num(f, "memfd_after_ack", (double)e->memfd_idle,
				 true);
			json_num(f, "rss_anon_in_flight",
				 (double)e->anon_flight, false);
			fprintf(f, " }");
		}
		fprintf(f, "\n      ] }%s\n", i + 1 < ncases ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	fclose(f);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: e2e_bench [-g GIB] [-n N,...] [-r REPS] "
		"[-p PAT,...] [-M GIB] [-j JSON] [-q] [-c]\n");
	exit(2);
}

static unsigned int parse_list(const char *s, unsigned int *out,
			       unsigned int max)
{
	unsigned int n = 0;
	char *end;

	while (*s && n < max) {
		out[n++] = (unsigned int)strtoul(s, &end, 10);
		if (end == s)
			usage();
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	unsigned int ns[MAX_N] = { 1, 16, 256 }, nn = 3, reps = 3;
	unsigned int gibs[MAX_G] = { 1024, 64 }, ng = 2;
	unsigned int pats[NPAT], npats = NPAT;
	uint64_t budget = 8 * GIB, maxwords = 0;
	const char *json = NULL;
	double l0, l1;
	int opt;

	B.t_start = now();
	for (unsigned int i = 0; i < NPAT; i++)
		pats[i] = i;
	while ((opt = getopt(argc, argv, "g:n:r:p:M:j:qc")) != -1) {
		switch (opt) {
		case 'g':
			ng = parse_list(optarg, gibs, MAX_G);
			break;
		case 'n':
			nn = parse_list(optarg, ns, MAX_N);
			break;
		case 'r':
			reps = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			npats = parse_list(optarg, pats, NPAT);
			break;
		case 'M':
			budget = strtoull(optarg, NULL, 10) * GIB;
			break;
		case 'j':
			json = optarg;
			break;
		case 'q':
			gibs[0] = 64;
			ng = 1;
			break;
		case 'c':
			B.check_only = true;
			break;
		default:
			usage();
		}
	}
	if (B.check_only)
		reps = 1;
	if (!ng || reps < 1 || reps > MAX_REPS || !nn)
		usage();
	for (unsigned int i = 0; i < npats; i++)
		if (pats[i] >= NPAT)
			usage();
	for (unsigned int i = 0; i < ng; i++) {
		struct guest *g = &guests[i];

		if (!gibs[i] || gibs[i] > 4096)
			usage();
		g->gib = gibs[i];
		g->size = g->gib * GIB;
		g->npages = g->size / PG;
		g->nwords = g->npages / 64;
		if (g->nwords > maxwords)
			maxwords = g->nwords;
	}
	B.plain_read = bench_read_pick();
	B.evict = bench_alloc(EVICT_BYTES);
	memset(B.evict, 1, EVICT_BYTES);
	B.pat = bench_alloc(maxwords * 8);

	l0 = bench_loadavg();
	host_start();
	for (nguests = 0; nguests < ng; nguests++)
		guest_open(&guests[nguests], nguests);
	printf("# e2e_bench: %ld CPUs, load average %.2f, harvest by %s, "
	       "durable sets (memfd), %u reps (+1 checked bit by bit), "
	       "medians; guests:", sysconf(_SC_NPROCESSORS_ONLN), l0,
	       harvest_engine_mode(h_engine), reps);
	for (unsigned int i = 0; i < ng; i++)
		printf(" %" PRIu64 " GiB (%" PRIu64 " KiB bitmap)",
		       guests[i].gib, guests[i].nwords * 8 >> 10);
	printf("\n");
	fflush(stdout);
	for (unsigned int gi = 0; gi < ng; gi++) {
		G = &guests[gi];
		for (unsigned int pi = 0; pi < npats; pi++) {
			struct case_result *c = &cases[ncases++];

			c->g = G;
			c->p = &patterns[pats[pi]];
			pattern_fill(B.pat, G->npages, c->p->density, c->p->kind,
				     0x5eed + pats[pi]);
			digest_bitmap(&B.want, B.pat, G->nwords);
			B.want_pages = B.want.pages;
			c->pages = B.want.pages;
			c->runs = B.want.runs;
			run_baselines(B.check_only ? 1 : reps, &c->base);
			for (unsigned int k = 0; k < nn; k++)
				run_e2e(ns[k], reps, budget,
					&c->e2e[c->nn++]);
			if (B.check_only) {
				printf("%" PRIu64 " GiB %s %s: baselines and "
				       "%u subscriber counts checked, %"
				       PRIu64 " pages\n", G->gib, c->p->name,
				       c->p->dens, nn, c->pages);
				fflush(stdout);
			}
		}
	}
	l1 = bench_loadavg();
	if (!B.check_only) {
		printf("# baselines, ms (plain: one read of the bitmap; "
		       "harvest: dirtyd's engine alone; vmm = read + fold + "
		       "sync + find, one thread; ch: Cloud Hypervisor's scan, "
		       "Vec fresh / reused; ch-e2e: read + scan; *C: CPU "
		       "time)\n");
		print_base_header();
		for (unsigned int i = 0; i < ncases; i++)
			print_base(&cases[i]);
		printf("# end to end through the daemon, ms: sync = every "
		       "SYNC answered, ranges = every client's ranges "
		       "decoded, SYNC>dec = sync + ranges (wall); loop-s / "
		       "loop-r: event-loop CPU in sync / ranges+ack; procC: "
		       "process CPU of the round, procC>d: up to decoded (no "
		       "ACK); decode: a client's CPU in dirty_ranges(); rnds: "
		       "harvest rounds the SYNCs took; /plain, /harv: SYNC>dec "
		       "over plain, harvest (wall); /harC: procC>d over the "
		       "harvest's CPU; vmm/, vmmC/: the VMM's way over "
		       "SYNC>dec (wall), over procC>d (CPU); per subscriber: "
		       "bitmap memfd with a generation in flight, after ACK, "
		       "RSS anon in flight (MiB)\n");
		print_e2e_header();
		for (unsigned int i = 0; i < ncases; i++)
			for (unsigned int k = 0; k < cases[i].nn; k++)
				print_e2e(&cases[i], &cases[i].e2e[k]);
		for (unsigned int i = 0; i < ng; i++)
			print_targets(&guests[i]);
		printf("# load average %.2f at the start, %.2f at the end; "
		       "%.0f s\n", l0, l1, now() - B.t_start);
	}
	if (json)
		write_json(json, reps, l0, l1);
	host_stop();
	free(B.pat);
	free(B.evict);
	return 0;
}
