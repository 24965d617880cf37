// SPDX-License-Identifier: MIT
/*
 * vm_guest_bench - one harvest round of many small batches over several
 * domains, three ways, on the real iommufd in the VM (bench/vm.sh):
 *
 *   uring_cmd  the harvest engine with IOMMU_HWPT_GET_DIRTY_BITMAP as
 *              io_uring commands on its own ring (the patched kernel)
 *   workers    the harvest engine forced onto its worker pool (a thread
 *              per CPU, batches handed over with IORING_OP_MSG_RING)
 *   ioctl      the same batches as plain ioctls, one after the other, in
 *              one thread
 *
 *   vm_guest_bench [-d DOMAINS] [-r RANGES] [-k KIB] [-n ROUNDS] [-w WARMUP]
 *                  [-p PASSES] [-c COUNTED_ROUNDS]
 *
 * Every domain is a mock device ("mock0") on its own IOAS with RANGES
 * mappings of KIB KiB each (a multiple of 4), 64-page aligned and apart
 * (so one batch per mapping, no head words), tracking on.  The defaults:
 * 4 domains x 64 mappings of 64 KiB, 256 batches a round.  Before each round a few pages of every domain
 * are dirtied through the mock (IOMMU_TEST_OP_DIRTY); the round's bitmaps
 * must hold exactly those pages, or the run fails.
 *
 * Each way runs in child processes of its own:
 *  - timed, PASSES times (default 3), the ways interleaved and their order
 *    rotated from pass to pass (the host's load drifts), WARMUP (2) rounds
 *    then ROUNDS (11) measured ones each time: per round the wall time
 *    (CLOCK_MONOTONIC) and, from
 *    getrusage(RUSAGE_SELF), which sums every thread of the process (the
 *    engine's workers and io_uring's io-wq workers included), the context
 *    switches and the CPU time;
 *    The medians are over every measured round of every pass.
 *  - counted, once: 1 + COUNTED_ROUNDS (3) rounds under ptrace
 *    (PTRACE_O_TRACECLONE, so every
 *    thread the process has or starts), counting system call entries.
 *    The process marks a round with getppid(BENCH_MAGIC, begin|end); the
 *    main thread's calls count between the marks (the dirtying between
 *    rounds does not), every other thread's calls count whenever they
 *    happen after the first mark: those threads act only for batches.  The
 *    marks themselves are not counted.  io-wq workers are kernel threads
 *    that issue no system calls (and cannot be traced).
 *    The count per round is the total over all the counted run's rounds
 *    divided by their number.  Tracing slows that run down; its times are
 *    not used.
 *
 * Output: "bench: ..." lines, one per way and run, which bench/vm.sh turns
 * into the table of bench/README.md, and "ok"/"not ok" lines for the
 * checks (the bits, the engine modes).  The uring_cmd way runs only where
 * the probe finds uring commands; DIRTYD_VM_ENGINE (run.sh) says whether
 * it must.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"
#include "tests/vm/guest_check.h"

#define PG 4096ULL
#define BENCH_MAGIC 0xd1d7bbULL
#define MARK_BEGIN 1
#define MARK_END 2
#define MARK_DONE 3
#define MAX_ROUNDS 64
#define MAX_PASSES 8
#define MAP_RW (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | \
		IOMMU_IOAS_MAP_WRITEABLE)

enum way { WAY_URING, WAY_WORKERS, WAY_IOCTL, WAY_N };
static const char *const way_name[WAY_N] = { "uring_cmd", "workers",
					     "ioctl" };

static unsigned int n_dom = 4, n_ranges = 64, range_kib = 64;
static unsigned int n_rounds = 11, n_warmup = 2, n_passes = 3;
static unsigned int n_counted = 3;

struct bdom {
	uint32_t dev, ioas, hwpt;
	struct harvest_domain hd;
	uint64_t *want;		/* this round's pages, laid out as hd.bitmap */
};

/* What a child reports per round, through a pipe. */
struct round_stat {
	uint64_t ns;
	uint64_t ctxsw;		/* voluntary + involuntary, all threads */
	uint64_t cpu_us;	/* user + system, all threads */
	uint64_t pages;		/* bits the round found */
	int bad;		/* bits differ from the writes */
	int result;		/* the round's result */
};

struct child_report {
	char mode[16];
	unsigned int workers;
	size_t nbatches;
	int setup;		/* 0 or -errno */
	struct round_stat r[MAX_ROUNDS];
};

static void mark(unsigned long what)
{
	syscall(SYS_getppid, BENCH_MAGIC, what);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int dom_setup(struct backend *b, struct bdom *d, uint8_t *mem)
{
	uint64_t len = (uint64_t)range_kib * 1024;
	uint64_t stride = ((len + 64 * PG - 1) & ~(64 * PG - 1)) + 64 * PG;
	struct harvest_range *rs = calloc(n_ranges, sizeof(*rs));
	int rc;

	if (!rs)
		return -ENOMEM;
	rc = backend_device_bind(b, "mock0", &d->dev);
	if (!rc)
		rc = backend_ioas_alloc(b, &d->ioas);
	/* 64-page aligned, a 64-page gap after each: ranges never touch */
	for (unsigned int k = 0; !rc && k < n_ranges; k++) {
		uint64_t iova = 16 * MIB + k * stride;

		rs[k] = (struct harvest_range){ .iova = iova, .length = len };
		rc = backend_ioas_map(b, d->ioas, MAP_RW, mem + k * len, len,
				      &iova);
	}
	if (!rc)
		rc = backend_hwpt_alloc(b, d->dev, d->ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&d->hwpt);
	if (!rc)
		rc = backend_device_attach(b, d->dev, d->hwpt);
	if (!rc)
		rc = backend_hwpt_set_dirty_tracking(b, d->hwpt, true);
	if (!rc)
		rc = harvest_domain_plan(&d->hd, d->hwpt, PG, rs, n_ranges,
					 1ULL << 30);
	free(rs);
	if (rc)
		return rc;
	for (size_t i = 0; i < d->hd.nbatches; i++)
		if (d->hd.batches[i].shift)
			return -EINVAL;	/* the ioctl way reads no heads */
	d->want = calloc(d->hd.nwords, 8);
	return d->want ? 0 : -ENOMEM;
}

/* Dirty a few pages of every range (outside the measured window). */
static void dom_dirty(struct backend *b, struct bdom *d)
{
	memset(d->want, 0, d->hd.nwords * 8);
	for (size_t i = 0; i < d->hd.nranges; i++) {
		const struct harvest_range *r = &d->hd.ranges[i];

		for (int k = 0; k < 2; k++) {
			uint64_t p = rnd() % (r->length / PG);
			uint64_t bit = r->bit + p;

			backend_dma_write(b, d->dev, r->iova + p * PG, 8);
			d->want[bit / 64] |= 1ULL << (bit % 64);
		}
	}
}

static void on_done(void *ctx, struct harvest_domain *dom, int result)
{
	int *res = ctx;

	(void)dom;
	if (result && !*res)
		*res = result;
}

static int round_ioctl(struct backend *b, struct bdom *doms)
{
	for (unsigned int i = 0; i < n_dom; i++) {
		struct harvest_domain *hd = &doms[i].hd;

		for (size_t k = 0; k < hd->nbatches; k++) {
			struct harvest_batch *bt = &hd->batches[k];
			int rc;

			memset(bt->bitmap, 0, bt->nwords * 8);
			rc = backend_hwpt_get_dirty_bitmap(b, hd->hwpt_id,
							   bt->iova,
							   bt->length,
							   hd->page_size,
							   bt->bitmap, 0);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int round_engine(struct harvest_engine *e, struct bdom *doms)
{
	int res = 0, rc;

	for (unsigned int i = 0; i < n_dom; i++) {
		rc = harvest_engine_start(e, &doms[i].hd, 0, on_done,
					  &res);
		if (rc)
			return rc;
	}
	rc = harvest_engine_wait(e);
	if (rc < 0)
		return rc;
	return rc == (int)n_dom ? res : -EPROTO;
}

static uint64_t tv_us(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

/* The child: set up, run @warmup + @rounds rounds, report to @fd. */
static int child_main(enum way way, unsigned int warmup, unsigned int rounds,
		      int fd)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.device_provider = "mock",
	};
	struct child_report rep = { .setup = 0 };
	struct harvest_engine *e = NULL;
	struct bdom *doms = calloc(n_dom, sizeof(*doms));
	struct backend *b = NULL;
	uint8_t *mem;
	int rc;

	mem = mem_alloc((uint64_t)n_ranges * range_kib * 1024, false, true);
	rc = doms && mem ? backend_open(&cfg, &b) : -ENOMEM;
	for (unsigned int i = 0; !rc && i < n_dom; i++)
		rc = dom_setup(b, &doms[i], mem);
	if (!rc && way != WAY_IOCTL) {
		struct harvest_engine_config ec = {
			.force_workers = way == WAY_WORKERS,
		};

		rc = harvest_engine_new(b, &ec, &e);
	}
	snprintf(rep.mode, sizeof(rep.mode), "%s",
		 e ? harvest_engine_mode(e) : "ioctl");
	rep.workers = e ? harvest_engine_workers(e) : 0;
	for (unsigned int i = 0; !rc && i < n_dom; i++)
		rep.nbatches += doms[i].hd.nbatches;
	rep.setup = rc;

	for (unsigned int r = 0; !rc && r < warmup + rounds; r++) {
		struct round_stat *st = &rep.r[r < warmup ? 0 : r - warmup];
		struct rusage u0, u1;
		uint64_t t0, t1, pages = 0;

		for (unsigned int i = 0; i < n_dom; i++)
			dom_dirty(b, &doms[i]);
		getrusage(RUSAGE_SELF, &u0);
		t0 = now_ns();
		mark(MARK_BEGIN);
		st->result = e ? round_engine(e, doms) : round_ioctl(b, doms);
		mark(MARK_END);
		t1 = now_ns();
		getrusage(RUSAGE_SELF, &u1);
		st->ns = t1 - t0;
		st->ctxsw = (uint64_t)(u1.ru_nvcsw - u0.ru_nvcsw) +
			    (uint64_t)(u1.ru_nivcsw - u0.ru_nivcsw);
		st->cpu_us = tv_us(u1.ru_utime) - tv_us(u0.ru_utime) +
			     tv_us(u1.ru_stime) - tv_us(u0.ru_stime);
		st->bad = 0;
		for (unsigned int i = 0; i < n_dom; i++) {
			const struct harvest_domain *hd = &doms[i].hd;

			for (uint64_t w = 0; w < hd->nwords; w++) {
				pages += __builtin_popcountll(hd->bitmap[w]);
				st->bad += hd->bitmap[w] != doms[i].want[w];
			}
		}
		st->pages = pages;
	}
	/* let the workers settle into their wait before the last mark */
	usleep(200 * 1000);
	mark(MARK_DONE);
	if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		return 1;
	harvest_engine_free(e);
	for (unsigned int i = 0; doms && i < n_dom; i++)
		harvest_domain_release(&doms[i].hd);
	backend_close(b);
	return 0;
}

/* ------------------------------------------------------------ tracer */

struct counts {
	uint64_t main_calls;	/* main thread, inside the rounds */
	uint64_t other_calls;	/* other threads, after the first mark */
	uint64_t by_nr[4];	/* ioctl, io_uring_enter, read, other */
	unsigned int threads;	/* threads seen */
	unsigned int marks;
};

static void count_call(struct counts *c, uint64_t nr, bool main_thread)
{
	if (main_thread)
		c->main_calls++;
	else
		c->other_calls++;
	c->by_nr[nr == SYS_ioctl ? 0 : nr == SYS_io_uring_enter ? 1 :
		 nr == SYS_read ? 2 : 3]++;
}

/*
 * Follow every thread of @pid (stopped at its first SIGSTOP) until it
 * exits, counting system call entries as the header says.
 */
static int trace_child(pid_t pid, struct counts *c)
{
	bool in_round = false, started = false;
	int st;

	if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD |
		   PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL) < 0)
		return -errno;
	c->threads = 1;
	ptrace(PTRACE_SYSCALL, pid, 0, 0);
	for (;;) {
		pid_t t = waitpid(-1, &st, __WALL);
		int sig = 0;

		if (t < 0)
			return errno == ECHILD ? 0 : -errno;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (t == pid)
				return WIFEXITED(st) && !WEXITSTATUS(st) ?
				       0 : -ECHILD;
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			struct __ptrace_syscall_info si;

			if (ptrace(PTRACE_GET_SYSCALL_INFO, t, sizeof(si),
				   &si) > 0 &&
			    si.op == PTRACE_SYSCALL_INFO_ENTRY) {
				uint64_t nr = si.entry.nr;

				if (nr == SYS_getppid &&
				    si.entry.args[0] == BENCH_MAGIC) {
					c->marks++;
					started = true;
					in_round = si.entry.args[1] ==
						   MARK_BEGIN;
					if (si.entry.args[1] == MARK_DONE)
						started = false;
				} else if (t == pid ? in_round : started) {
					count_call(c, nr, t == pid);
				}
			}
		} else if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_CLONE << 8))) {
			c->threads++;
		} else if (WSTOPSIG(st) != SIGSTOP && WSTOPSIG(st) != SIGTRAP) {
			sig = WSTOPSIG(st);
		}
		ptrace(PTRACE_SYSCALL, t, 0, sig);
	}
}

/* Run @way in a child, timed or traced (counted).  Returns 0 and fills
 * @rep (and @c). */
static int run_way(enum way way, bool traced, struct child_report *rep,
		   struct counts *c)
{
	unsigned int warmup = traced ? 1 : n_warmup;
	unsigned int rounds = traced ? n_counted : n_rounds;
	int p[2], ws, rc = 0;
	pid_t pid;
	ssize_t n;

	if (pipe(p))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		close(p[0]);
		if (traced) {
			ptrace(PTRACE_TRACEME, 0, 0, 0);
			raise(SIGSTOP);
		}
		_exit(child_main(way, warmup, rounds, p[1]));
	}
	close(p[1]);
	if (traced) {
		if (waitpid(pid, &ws, __WALL) != pid || !WIFSTOPPED(ws)) {
			close(p[0]);
			return -ECHILD;
		}
		rc = trace_child(pid, c);
	}
	n = read(p[0], rep, sizeof(*rep));
	close(p[0]);
	if (!traced && (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) ||
			WEXITSTATUS(ws)))
		rc = rc ? rc : -ECHILD;
	if (n != (ssize_t)sizeof(*rep))
		rc = rc ? rc : -EIO;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(const struct round_stat *r, unsigned int n,
		       size_t off)
{
	uint64_t v[MAX_ROUNDS * MAX_PASSES];

	for (unsigned int i = 0; i < n; i++)
		v[i] = *(const uint64_t *)((const char *)&r[i] + off);
	qsort(v, n, sizeof(v[0]), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: vm_guest_bench [-d DOMAINS] [-r RANGES] "
		"[-k KIB] [-n ROUNDS] [-w WARMUP] [-p PASSES] "
		"[-c COUNTED_ROUNDS]\n");
	exit(2);
}

/* Every measured round of a way, over the passes. */
struct way_stats {
	bool ran, skipped;
	char mode[16];
	unsigned int workers;
	size_t nbatches;
	unsigned int n;
	struct round_stat r[MAX_ROUNDS * MAX_PASSES];
};

static void timed_pass(enum way w, unsigned int pass, const char *want,
		       struct way_stats *ws)
{
	static struct child_report rep;
	struct counts c = { 0 };
	uint64_t pages = 0;
	int rc, bad = 0, res = 0;

	if (ws->skipped)
		return;
	rc = run_way(w, false, &rep, &c);
	if (!check(!rc && !rep.setup, "%s: timed run, pass %u (%d, setup %d)",
		   way_name[w], pass, rc, rep.setup)) {
		ws->skipped = true;
		return;
	}
	if (w == WAY_URING && !pass) {
		check(want && !strcmp(rep.mode, want),
		      "uring_cmd: the engine's probe finds %s, as the harness "
		      "expects (%s)", rep.mode, want ? want : "(unset)");
		if (strcmp(rep.mode, "uring_cmd")) {
			info("uring_cmd: not on this kernel, skipped");
			ws->skipped = true;
			return;
		}
	}
	if (w == WAY_WORKERS && !pass)
		check(!strcmp(rep.mode, "workers"), "workers: engine mode %s",
		      rep.mode);
	for (unsigned int i = 0; i < n_rounds; i++) {
		bad += rep.r[i].bad;
		res = res ? res : rep.r[i].result;
		pages += rep.r[i].pages;
		ws->r[ws->n++] = rep.r[i];
		printf("bench: way=%s pass=%u round=%u wall_us=%" PRIu64
		       " ctxsw=%" PRIu64 " cpu_us=%" PRIu64 "\n", way_name[w],
		       pass, i, rep.r[i].ns / 1000, rep.r[i].ctxsw,
		       rep.r[i].cpu_us);
	}
	printf("bench: way=%s pass=%u pass_wall_us=%" PRIu64 "\n", way_name[w],
	       pass, median(rep.r, n_rounds,
			    offsetof(struct round_stat, ns)) / 1000);
	check(!res && !bad, "%s: pass %u: %u rounds of %zu batches found "
	      "exactly the dirtied pages (%" PRIu64 " pages, result %d, %d "
	      "words differ)", way_name[w], pass, n_rounds, rep.nbatches,
	      pages, res, bad);
	ws->ran = true;
	snprintf(ws->mode, sizeof(ws->mode), "%s", rep.mode);
	ws->workers = rep.workers;
	ws->nbatches = rep.nbatches;
}

static void counted_run(enum way w)
{
	static struct child_report rep;
	struct counts c = { 0 };
	unsigned int n = 1 + n_counted;
	int rc;

	rc = run_way(w, true, &rep, &c);
	if (!check(!rc && !rep.setup && c.marks == 2 * n + 1,
		   "%s: counted run (%d, %u marks)", way_name[w], rc, c.marks))
		return;
	printf("bench: way=%s syscalls_per_round=%.1f main=%.1f "
	       "other_threads=%.1f ioctl=%.1f io_uring_enter=%.1f read=%.1f "
	       "other=%.1f threads=%u counted_rounds=%u\n", way_name[w],
	       (double)(c.main_calls + c.other_calls) / n,
	       (double)c.main_calls / n, (double)c.other_calls / n,
	       (double)c.by_nr[0] / n, (double)c.by_nr[1] / n,
	       (double)c.by_nr[2] / n, (double)c.by_nr[3] / n, c.threads, n);
}

int main(int argc, char **argv)
{
	static struct way_stats ws[WAY_N];
	const char *want = getenv("DIRTYD_VM_ENGINE");
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "d:r:k:n:w:p:c:")) != -1) {
		unsigned long v = strtoul(optarg, NULL, 10);

		switch (opt) {
		case 'd': n_dom = v; break;
		case 'r': n_ranges = v; break;
		case 'k': range_kib = v; break;
		case 'n': n_rounds = v; break;
		case 'w': n_warmup = v; break;
		case 'p': n_passes = v; break;
		case 'c': n_counted = v; break;
		default: usage();
		}
	}
	if (optind != argc || !n_dom || n_dom > 8 || !n_ranges ||
	    n_ranges > 1024 || !range_kib || range_kib % 4 ||
	    range_kib > 16384 || !n_rounds || n_rounds > MAX_ROUNDS ||
	    n_warmup > 16 || !n_passes || n_passes > MAX_PASSES ||
	    !n_counted || n_counted >= MAX_ROUNDS ||
	    16 * MIB + (uint64_t)n_ranges * (range_kib * 1024ULL + 512 * 1024)
	    > 2048 * MIB)
		usage();
	check(want && (!strcmp(want, "uring_cmd") || !strcmp(want, "workers")),
	      "the harness says which engine the probe must find "
	      "(DIRTYD_VM_ENGINE=%s)", want ? want : "(unset)");
	info("%u domains x %u mappings of %u KiB: %u passes of %u rounds "
	     "after %u warm-up; %u counted rounds", n_dom, n_ranges,
	     range_kib, n_passes, n_rounds, n_warmup, n_counted);

	for (unsigned int pass = 0; pass < n_passes; pass++)
		for (unsigned int i = 0; i < WAY_N; i++)
			timed_pass((pass + i) % WAY_N, pass, want,
				   &ws[(pass + i) % WAY_N]);
	for (enum way w = 0; w < WAY_N; w++) {
		if (!ws[w].ran)
			continue;
		printf("bench: way=%s mode=%s workers=%u batches=%zu "
		       "rounds=%u wall_us=%" PRIu64 " ctxsw=%" PRIu64
		       " cpu_us=%" PRIu64 "\n", way_name[w], ws[w].mode,
		       ws[w].workers, ws[w].nbatches, ws[w].n,
		       median(ws[w].r, ws[w].n,
			      offsetof(struct round_stat, ns)) / 1000,
		       median(ws[w].r, ws[w].n,
			      offsetof(struct round_stat, ctxsw)),
		       median(ws[w].r, ws[w].n,
			      offsetof(struct round_stat, cpu_us)));
		counted_run(w);
	}
	printf("%u checks, %u failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
