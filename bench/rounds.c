// SPDX-License-Identifier: MIT
/*
 * rounds - the real dirtyd's rounds per second and SYNC-to-ranges latency
 * under a migration's load, and which of its threads bounds them.
 *
 *   rounds --dirtyd PATH [--subscribers 1,16] [--duration S] [--warmup S]
 *          [--gib 256] [--dma-rate 200000] [--cluster-pages 64]
 *          [--backing 4k] [--perf PREFIX] [--log-level LEVEL]
 *
 * For each N of --subscribers, a dirtyd of its own (PATH: any binary, so
 * an old and a new one run back to back) started through tests/harness
 * (with $NOTIFY_SOCKET and the descriptor store, as under systemd: the
 * subscriber sets live in the bitmap memfd) on the simulated host: one
 * guest ([guest g0]: --gib GiB mapped at IOVA 0, 4 KiB backing pages, so a
 * reported page is a written page) whose simulated DMA writes --dma-rate
 * pages a second in bursts of --cluster-pages consecutive pages
 * (dma = clustered).  N subscribers, each its own libdirty connection on
 * its own thread, subscribed CLEAN with no period, loop as fast as they
 * can: dirty_sync(), dirty_ranges() (every range decoded and checked),
 * dirty_ack().  After --warmup seconds, --duration seconds are measured:
 *
 *   rounds/s     the domain's generations per second (dirty_stats() of a
 *                monitor connection at both ends of the window): each
 *                SYNC waits for a round that starts after it, so rounds
 *                are shared by SYNCs that wait together
 *   latency      per loop of a subscriber: SYNC sent to dirty_ranges()
 *                returned (the last RANGES packet received and decoded):
 *                median, 99th percentile, maximum over every subscriber's
 *                loops that started and ended in the window; SYNC alone
 *                (to its reply) beside it
 *   pages/s      pages delivered in those loops, every subscriber's
 *   round        the daemon's own last_round_ns (dirty_stats), sampled
 *                every 100 ms: a round from its start to its fold (the
 *                harvest, then the loop's turn to fold)
 *   CPU          dirtyd's threads from /proc/PID/task
 *                (tests/soak/daemon_threads.h: the main thread is the
 *                event loop; ring workers are the harvest; the guest's
 *                DMA writers are the load, not dirtyd's work), each
 *                role's % of one CPU, its CPU seconds per round (robust to
 *                a busy machine, unlike wall-clock figures), this
 *                process's (the clients'), and the machine's busy share;
 *                then the verdict: loop-bound, harvest-bound, CPU-bound
 *                or none saturated, and whether the loop or the harvest
 *                takes more CPU per round (a round's stages are serial)
 *
 * Checks (exit 1 if one fails): no call failed (no ERROR answer, no
 * malformed stream), every stream's ranges increase without overlap and
 * lie inside the guest, each subscriber's SYNC generations and RANGES
 * generations increase, a generation holds at least the pages its SYNC
 * said were pending (exactly those with one subscriber: no other SYNC
 * starts a round in between), and the domain's generation advanced.
 *
 * With --perf PREFIX, after each measured window a second window of the
 * same length runs under `perf record -g -p PID -o PREFIX.N.data` (its
 * figures are not reported: perf costs the daemon CPU); read it with
 * `perf report -i PREFIX.N.data --no-children --sort sym`.
 * Timing only: nothing here is a test.  bench/README.md ("rounds").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "harness.h"
#include "tests/soak/daemon_threads.h"

#define MAX_SUBS 60
#define MAX_NS 8
#define SAMPLE_MS 100
#define CALL_TIMEOUT_MS 120000

struct opts {
	const char *dirtyd;
	unsigned int ns[MAX_NS];
	size_t nns;
	double duration_s, warmup_s;
	uint64_t size;
	unsigned int dma_rate, cluster_pages;
	const char *backing;
	const char *perf;
	const char *log_level;
};

/* One SYNC + GET_RANGES + ACK of a subscriber. */
struct loop {
	uint64_t t0, t_sync, t_end;	/* ns */
	uint64_t pages;
};

struct sub {
	pthread_t thread;
	unsigned int idx;
	const char *sock;
	uint32_t domain;
	uint64_t guest_pages;
	unsigned int nsubs;
	struct loop *loops;
	size_t nloops, cap;
	/* checks */
	uint64_t errors, bad_ranges, gen_regress, short_gens;
	char first_error[256];
	/* the stream being decoded */
	uint64_t next_page, pages;
	bool bad;
};

static volatile int stop;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "rounds: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void sub_error(struct sub *s, struct dirty *d, const char *call,
		      int r)
{
	const char *why = d ? dirty_last_error_text(d) : NULL;

	if (!s->errors++)
		snprintf(s->first_error, sizeof(s->first_error),
			 "subscriber %u: %s: %s%s%s", s->idx, call,
			 strerror(-r), why ? ": " : "", why ? why : "");
}

/* Each range: after the previous one, inside the guest. */
static int on_range(void *ctx, uint64_t first, uint64_t n)
{
	struct sub *s = ctx;

	if (!n || first < s->next_page || first + n > s->guest_pages ||
	    first + n < first)
		s->bad = true;
	s->next_page = first + n;
	s->pages += n;
	return 0;
}

static void loop_add(struct sub *s, const struct loop *l)
{
	if (s->nloops == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		struct loop *p = realloc(s->loops, cap * sizeof(*p));

		if (!p)
			abort();
		s->loops = p;
		s->cap = cap;
	}
	s->loops[s->nloops++] = *l;
}

static void *sub_main(void *arg)
{
	struct sub *s = arg;
	struct dirty *d = NULL;
	uint64_t last_sync = 0, last_gen = 0;
	bool first = true;
	int r;

	r = dirty_connect(s->sock, DIRTY_CONNECT_NO_RESUME |
			  DIRTY_CONNECT_NO_EVENTS, &d);
	if (r < 0) {
		sub_error(s, NULL, "dirty_connect", r);
		return NULL;
	}
	dirty_set_timeout(d, CALL_TIMEOUT_MS);
	r = dirty_subscribe(d, s->domain, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	if (r < 0) {
		sub_error(s, d, "dirty_subscribe", r);
		goto out;
	}
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct loop l;
		uint64_t gen = 0, pending = 0, rgen = 0;

		l.t0 = now_ns();
		r = dirty_sync(d, s->domain, &gen, &pending);
		l.t_sync = now_ns();
		if (r < 0) {
			sub_error(s, d, "dirty_sync", r);
			break;
		}
		s->next_page = 0;
		s->pages = 0;
		s->bad = false;
		r = dirty_ranges(d, s->domain, 0, on_range, s, &rgen);
		l.t_end = now_ns();
		if (r < 0) {
			sub_error(s, d, "dirty_ranges", r);
			break;
		}
		r = dirty_ack(d, s->domain, rgen);
		if (r < 0) {
			sub_error(s, d, "dirty_ack", r);
			break;
		}
		s->bad_ranges += s->bad;
		/* every SYNC waits for a round of its own: the generation
		 * grows; the take is at or after it */
		if (!first && (gen <= last_sync || rgen <= last_gen))
			s->gen_regress++;
		if (rgen < gen)
			s->gen_regress++;
		/* pages only come into pending between the SYNC's reply and
		 * the take (another subscriber's round), never leave */
		if (s->pages < pending ||
		    (s->nsubs == 1 && s->pages != pending))
			s->short_gens++;
		last_sync = gen;
		last_gen = rgen;
		first = false;
		l.pages = s->pages;
		loop_add(s, &l);
	}
out:
	dirty_close(d);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, unsigned int pct)
{
	return n ? v[(n - 1) * pct / 100] / 1e6 : 0;
}

static void loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");

	buf[0] = '\0';
	if (f) {
		double a, b, c;

		if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
			snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
		fclose(f);
	}
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t domain_stats(struct dirty *mon, uint32_t dom,
			     uint64_t *last_round_ns)
{
	struct dirty_stats **st = NULL;
	size_t n = 0;
	uint64_t gen;
	int r = dirty_stats(mon, dom, &st, &n);

	if (r < 0 || n != 1)
		die("dirty_stats: %s", strerror(r < 0 ? -r : EPROTO));
	gen = st[0]->generation;
	if (last_round_ns)
		*last_round_ns = st[0]->last_round_ns;
	free(st);
	return gen;
}

/* What one N measured (the summary's row). */
struct result {
	unsigned int n;
	double rounds_s, loops_s, p50, p99, max, sync_p50, pages_s;
	double harvest_ms, loop_pct, harvest_pct, cpu_round_ms,
	       loop_round_ms, clients_pct;
	char verdict[256];
	char load[2][32];
	int fails;
};

/* The measured window: sample the threads and the rounds until @end. */
static void watch(struct dthreads *dt, struct dirty *mon, uint32_t dom,
		  uint64_t end, uint64_t *rounds_ns, size_t *nrounds,
		  size_t cap)
{
	while (now_ns() < end) {
		uint64_t ns = 0;

		usleep(SAMPLE_MS * 1000);
		dthreads_sample(dt);
		domain_stats(mon, dom, &ns);
		if (*nrounds < cap && ns)
			rounds_ns[(*nrounds)++] = ns;
	}
}

/* perf record -g of dirtyd for a window as long as the measured one. */
static void profile(const struct opts *o, pid_t pid, unsigned int n,
		    char *out, size_t len)
{
	char pidbuf[16], dur[32];
	pid_t p;
	int status;

	snprintf(out, len, "%s.%u.data", o->perf, n);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	snprintf(dur, sizeof(dur), "%.0f", o->duration_s);
	fflush(stdout);
	p = fork();
	if (p < 0)
		die("fork: %s", strerror(errno));
	if (!p) {
		execlp("perf", "perf", "record", "-q", "-g", "-p", pidbuf,
		       "-o", out, "--", "sleep", dur, (char *)NULL);
		_exit(127);
	}
	if (waitpid(p, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "rounds: perf record failed (status %#x)\n",
			status);
		out[0] = '\0';
	}
}

static void run(const struct opts *o, unsigned int n, struct result *res)
{
	struct harness h = { 0 };
	struct harness_opts ho = { .bin = o->dirtyd, .store = true,
				   .log_level = o->log_level };
	struct sub *subs = calloc(n, sizeof(*subs));
	struct dirty *mon = NULL;
	struct dirty_domain **doms = NULL;
	struct dthreads dt;
	struct dthr_usage u;
	size_t ndoms = 0, nrounds = 0, nlat = 0;
	uint64_t *lat, *slat, rounds_ns[4096];
	uint64_t gen0, gen1, t_start, t_end, pages = 0, nloops = 0;
	uint64_t errors = 0, bad = 0, regress = 0, shorts = 0;
	double cpu0, cpu1;
	char body[1024], verdict[256], perf_out[512] = "";
	uint32_t dom;
	int r;

	if (!subs)
		die("out of memory");
	memset(res, 0, sizeof(*res));
	res->n = n;
	snprintf(body, sizeof(body),
		 "max_clients = %u\nmax_clients_per_uid = %u\n\n"
		 "[sim]\nbacking_page_size = %s\ndevices = sim0:dirty\n\n"
		 "[guest g0]\ndevice = sim0\nsize = %" PRIu64 "\n"
		 "dma = clustered\ndma_rate = %u\ncluster_pages = %u\n",
		 n + 8, n + 8, o->backing, o->size, o->dma_rate,
		 o->cluster_pages);
	ho.body = body;
	r = harness_init(&h, &ho);
	if (r < 0)
		die("harness_init: %s", strerror(-r));
	r = harness_start(&h);
	if (r < 0) {
		harness_dump_log(&h, stderr, 30, NULL);
		die("starting %s: %s", o->dirtyd, strerror(-r));
	}
	r = dirty_connect(h.sock, DIRTY_CONNECT_NO_RESUME |
			  DIRTY_CONNECT_NO_EVENTS, &mon);
	if (r < 0)
		die("monitor: dirty_connect: %s", strerror(-r));
	dirty_set_timeout(mon, CALL_TIMEOUT_MS);
	r = dirty_list_domains(mon, &doms, &ndoms);
	if (r < 0 || ndoms != 1 || doms[0]->mapped_bytes != o->size)
		die("the guest's domain is not there (%s, %zu domains)",
		    strerror(r < 0 ? -r : 0), ndoms);
	dom = doms[0]->domain_id;
	free(doms);

	for (unsigned int i = 0; i < n; i++) {
		subs[i].idx = i;
		subs[i].sock = h.sock;
		subs[i].domain = dom;
		subs[i].guest_pages = o->size / 4096;
		subs[i].nsubs = n;
		if (pthread_create(&subs[i].thread, NULL, sub_main, &subs[i]))
			die("pthread_create failed");
	}
	if (dthreads_init(&dt, h.pid) < 0)
		die("/proc/%d/task: cannot read", (int)h.pid);
	/* warm-up: the sets' bitmaps faulted in, the threads voted on */
	t_start = now_ns() + (uint64_t)(o->warmup_s * 1e9);
	watch(&dt, mon, dom, t_start, rounds_ns, &nrounds, 0);

	loadavg(res->load[0], sizeof(res->load[0]));
	dthreads_sample(&dt);
	dthreads_mark(&dt);
	cpu0 = self_cpu_s();
	gen0 = domain_stats(mon, dom, NULL);
	t_start = now_ns();
	watch(&dt, mon, dom, t_start + (uint64_t)(o->duration_s * 1e9),
	      rounds_ns, &nrounds, sizeof(rounds_ns) / sizeof(rounds_ns[0]));
	gen1 = domain_stats(mon, dom, NULL);
	t_end = now_ns();
	dthreads_sample(&dt);
	cpu1 = self_cpu_s();
	u = dthreads_usage(&dt);
	loadavg(res->load[1], sizeof(res->load[1]));
	if (o->perf)
		profile(o, h.pid, n, perf_out, sizeof(perf_out));

	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(subs[i].thread, NULL);
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);

	/* the loops of the window */
	for (unsigned int i = 0; i < n; i++)
		nlat += subs[i].nloops;
	lat = calloc(nlat + 1, sizeof(*lat));
	slat = calloc(nlat + 1, sizeof(*slat));
	if (!lat || !slat)
		die("out of memory");
	for (unsigned int i = 0; i < n; i++) {
		struct sub *s = &subs[i];

		for (size_t j = 0; j < s->nloops; j++) {
			const struct loop *l = &s->loops[j];

			if (l->t0 < t_start || l->t_end > t_end)
				continue;
			lat[nloops] = l->t_end - l->t0;
			slat[nloops] = l->t_sync - l->t0;
			nloops++;
			pages += l->pages;
		}
		errors += s->errors;
		bad += s->bad_ranges;
		regress += s->gen_regress;
		shorts += s->short_gens;
	}
	qsort(lat, nloops, sizeof(*lat), cmp_u64);
	qsort(slat, nloops, sizeof(*slat), cmp_u64);
	qsort(rounds_ns, nrounds, sizeof(*rounds_ns), cmp_u64);

	{
		double w = (t_end - t_start) / 1e9;
		double rounds = (double)(gen1 - gen0);

		res->rounds_s = rounds / w;
		res->loops_s = nloops / w;
		res->p50 = pct_ms(lat, nloops, 50);
		res->p99 = pct_ms(lat, nloops, 99);
		res->max = nloops ? lat[nloops - 1] / 1e6 : 0;
		res->sync_p50 = pct_ms(slat, nloops, 50);
		res->pages_s = pages / w;
		res->harvest_ms = pct_ms(rounds_ns, nrounds, 50);
		res->loop_pct = u.pct[DTHR_LOOP];
		res->harvest_pct = u.pct[DTHR_HARVEST];
		res->clients_pct = 100.0 * (cpu1 - cpu0) / w;
		if (rounds > 0) {
			double dmas = u.pct[DTHR_DMA] / 100 * u.wall_s;

			res->cpu_round_ms = 1e3 * (u.cpu_s - dmas) / rounds;
			res->loop_round_ms = 1e3 * u.pct[DTHR_LOOP] / 100 *
					     u.wall_s / rounds;
		}
		dthreads_verdict(&u, rounds, verdict, sizeof(verdict));
		snprintf(res->verdict, sizeof(res->verdict), "%s", verdict);

		printf("\n%u subscriber%s: %.1f s measured after %.0f s of "
		       "warm-up; load average %s at the start, %s at the "
		       "end\n", n, n == 1 ? "" : "s", w, o->warmup_s,
		       res->load[0], res->load[1]);
		printf("  rounds/s (domain generations)    %8.1f   (%" PRIu64
		       " rounds)\n", res->rounds_s, gen1 - gen0);
		printf("  loops/s (SYNC+RANGES+ACK)        %8.1f   (%.1f per "
		       "subscriber)\n", res->loops_s, res->loops_s / n);
		printf("  SYNC -> ranges decoded, ms       median %.1f, p99 "
		       "%.1f, max %.1f   (SYNC alone: median %.1f)\n",
		       res->p50, res->p99, res->max, res->sync_p50);
		printf("  pages delivered/s                %10.0f (%.0f per "
		       "subscriber; %.0f per loop)\n", res->pages_s,
		       res->pages_s / n, nloops ? (double)pages / nloops : 0);
		printf("  a round, start to fold (last_round_ns): median "
		       "%.2f ms (%zu samples)\n", res->harvest_ms, nrounds);
		printf("  dirtyd CPU by thread (%% of one CPU):\n");
		dthreads_print(&dt, &u, stdout, "    ");
		printf("  dirtyd CPU per round: %.2f ms (sim DMA excluded): "
		       "event loop %.2f ms, harvest %.2f ms\n",
		       res->cpu_round_ms, res->loop_round_ms, rounds > 0 ?
		       1e3 * u.pct[DTHR_HARVEST] / 100 * u.wall_s / rounds :
		       0);
		/* what one subscriber's SYNC + take + ACK costs the loop
		 * grows with the pages each take holds, which grow as the
		 * rounds slow down: both, to compare runs */
		printf("  event loop CPU per loop: %.2f ms, at %.0f pages per "
		       "loop\n", nloops ? 1e3 * u.pct[DTHR_LOOP] / 100 *
		       u.wall_s / nloops : 0,
		       nloops ? (double)pages / nloops : 0);
		printf("  clients (this process) CPU: %.1f %% of a CPU\n",
		       res->clients_pct);
		printf("  bottleneck: %s\n", verdict);
		if (perf_out[0])
			printf("  profile (a window after this one): perf "
			       "report -i %s --no-children --sort sym\n",
			       perf_out);
	}

#define CHECK(ok, ...) do { \
		bool ok_ = (ok); \
		printf("  %s: ", ok_ ? "ok  " : "FAIL"); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		res->fails += !ok_; \
	} while (0)
	CHECK(errors == 0, "no call failed (%" PRIu64 ")", errors);
	for (unsigned int i = 0; i < n && errors; i++)
		if (subs[i].errors)
			printf("        %s\n", subs[i].first_error);
	CHECK(bad == 0, "every stream's ranges increasing, disjoint, inside "
	      "the guest (%" PRIu64 " bad)", bad);
	CHECK(regress == 0, "SYNC and RANGES generations increase (%" PRIu64
	      " out of order)", regress);
	CHECK(shorts == 0, "each generation holds %s the pages its SYNC "
	      "counted (%" PRIu64 " not)", n == 1 ? "exactly" : "at least",
	      shorts);
	CHECK(gen1 > gen0 && nloops > 0, "rounds and loops happened (%"
	      PRIu64 " rounds, %" PRIu64 " loops)", gen1 - gen0, nloops);
#undef CHECK
	fflush(stdout);

	dirty_close(mon);
	r = harness_fini(&h);
	if (r != 0) {
		printf("  FAIL: dirtyd did not exit 0 on SIGTERM (%d)\n", r);
		res->fails++;
	}
	dthreads_free(&dt);
	for (unsigned int i = 0; i < n; i++)
		free(subs[i].loops);
	free(subs);
	free(lat);
	free(slat);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rounds --dirtyd PATH [--subscribers 1,16] "
		"[--duration S (20)] [--warmup S (3)] [--gib 256] "
		"[--dma-rate 200000] [--cluster-pages 64] [--backing 4k] "
		"[--perf PREFIX] [--log-level notice]\n");
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dirtyd", required_argument, NULL, 'b' },
		{ "subscribers", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "gib", required_argument, NULL, 's' },
		{ "dma-rate", required_argument, NULL, 'r' },
		{ "cluster-pages", required_argument, NULL, 'c' },
		{ "backing", required_argument, NULL, 'k' },
		{ "perf", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = {
		.ns = { 1, 16 }, .nns = 2, .duration_s = 20, .warmup_s = 3,
		.size = 256ULL << 30, .dma_rate = 200000, .cluster_pages = 64,
		.backing = "4k", .log_level = "notice",
	};
	struct result res[MAX_NS];
	int ch, fails = 0;

	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 'b': o.dirtyd = optarg; break;
		case 'n':
			o.nns = 0;
			for (char *t = strtok(optarg, ","); t;
			     t = strtok(NULL, ",")) {
				unsigned long v = strtoul(t, NULL, 0);

				if (!v || v > MAX_SUBS || o.nns == MAX_NS)
					die("--subscribers: up to %d counts "
					    "of 1 to %d", MAX_NS, MAX_SUBS);
				o.ns[o.nns++] = (unsigned int)v;
			}
			break;
		case 'd': o.duration_s = strtod(optarg, NULL); break;
		case 'w': o.warmup_s = strtod(optarg, NULL); break;
		case 's':
			o.size = strtoull(optarg, NULL, 0) << 30;
			if (!o.size)
				die("--gib %s: the guest's GiB", optarg);
			break;
		case 'r': o.dma_rate = strtoul(optarg, NULL, 0); break;
		case 'c': o.cluster_pages = strtoul(optarg, NULL, 0); break;
		case 'k': o.backing = optarg; break;
		case 'p': o.perf = optarg; break;
		case 'l': o.log_level = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.dirtyd || optind != argc || o.duration_s < 1 || !o.nns) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("rounds: %s on the sim: one %" PRIu64 " GiB guest (%s backing)"
	       ", DMA clustered %u pages/s in bursts of %u; subscribers loop "
	       "SYNC, GET_RANGES, ACK; %.0f s measured per count\n",
	       o.dirtyd, o.size >> 30, o.backing, o.dma_rate,
	       o.cluster_pages, o.duration_s);
	for (size_t i = 0; i < o.nns; i++) {
		run(&o, o.ns[i], &res[i]);
		fails += res[i].fails;
	}
	printf("\n%4s %9s %9s %24s %9s %10s %10s %8s %8s  %s\n", "subs",
	       "rounds/s", "loops/s", "SYNC->ranges p50/p99/max",
	       "round", "pages/s", "CPU/round", "loop %", "harv %",
	       "bottleneck");
	for (size_t i = 0; i < o.nns; i++) {
		char l[48];

		snprintf(l, sizeof(l), "%.1f/%.1f/%.1f ms", res[i].p50,
			 res[i].p99, res[i].max);
		printf("%4u %9.1f %9.1f %24s %6.2f ms %10.0f %7.2f ms %8.1f "
		       "%8.1f  %.60s\n", res[i].n, res[i].rounds_s,
		       res[i].loops_s, l, res[i].harvest_ms, res[i].pages_s,
		       res[i].cpu_round_ms, res[i].loop_pct,
		       res[i].harvest_pct, res[i].verdict);
	}
	printf("%s\n", fails ? "CHECKS FAILED" : "every check passed");
	return fails ? 1 : 0;
}
