// SPDX-License-Identifier: MIT
/*
 * The daemon over time: /proc/PID (VmRSS, RssAnon, RssShmem, threads,
 * utime + stime, open descriptors), its threads' CPU by role
 * (daemon_threads.h: the event loop, the harvest, the sim's DMA), the
 * monitor's rounds per second per domain and the clients' counters, one CSV
 * row a second; at the end the summary (the rounds reached and which stage
 * bounds them) and the checks (README.md says why these criteria).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/soak/daemon_threads.h"
#include "tests/soak/soak.h"

struct soak_row {
	double t;		/* seconds since the clients started */
	struct soak_proc p;
	double cpu_pct;		/* of one CPU */
	double hz_mean, hz_min, hz_max;	/* rounds/s per domain; < 0: none */
	unsigned int connected;
	double req_s, streams_s, pages_s;
	struct dthr_usage u;	/* the daemon's threads over the second */
};

struct soak_sampler {
	struct soak *s;
	FILE *csv;
	uint64_t t0;
	uint64_t last_ns;
	struct soak_proc last;
	struct soak_counts lastc;
	uint64_t gen[SOAK_MAX_DOMAINS];
	uint64_t gen_ns;
	bool have_gen;
	struct soak_row *rows;
	size_t nrows, cap;
	long tick;
	struct dthreads dt;
	bool dt_ok;
};

int soak_proc_read(pid_t pid, struct soak_proc *p)
{
	char path[64], line[512];
	unsigned long long ut = 0, st = 0;
	struct dirent *de;
	FILE *f;
	DIR *d;

	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %" SCNu64, &p->rss_kib);
		sscanf(line, "RssAnon: %" SCNu64, &p->rss_anon_kib);
		sscanf(line, "RssShmem: %" SCNu64, &p->rss_shmem_kib);
		sscanf(line, "Threads: %u", &p->threads);
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (fgets(line, sizeof(line), f)) {
		/* after "(comm)": state is field 3, utime 14, stime 15 */
		char *q = strrchr(line, ')');

		if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
				"%*u %*u %llu %llu", &ut, &st) == 2)
			p->cpu_ticks = ut + st;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		p->fds += de->d_name[0] != '.';
	closedir(d);
	/* opendir's own descriptor is not in the daemon's table */
	return 0;
}

struct soak_sampler *soak_sampler_new(struct soak *s, FILE *csv)
{
	struct soak_sampler *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->s = s;
	sp->csv = csv;
	sp->t0 = soak_now_ns();
	sp->last_ns = sp->t0;
	soak_proc_read(s->pid, &sp->last);
	sp->dt_ok = dthreads_init(&sp->dt, s->pid) == 0;
	fprintf(csv, "t_s,rss_kib,rss_anon_kib,rss_shmem_kib,fds,threads,"
		"cpu_pct,rounds_hz_mean,rounds_hz_min,rounds_hz_max,"
		"connected,requests_per_s,streams_per_s,pages_per_s,"
		"ev_rounds_per_s,errors,violations,resumes,disconnects,"
		"domains,subscriptions,cpu_loop_pct,cpu_harvest_pct,"
		"cpu_dma_pct,cpu_other_pct,machine_busy_pct");
	for (unsigned int d = 1; d <= s->o.domains; d++)
		fprintf(csv, ",hz_d%u", d);
	fprintf(csv, "\n");
	return sp;
}

void soak_sample(struct soak_sampler *sp, uint64_t now)
{
	struct soak *s = sp->s;
	struct soak_row r = {
		.t = (now - sp->t0) / 1e9,
		.hz_mean = -1, .hz_min = -1, .hz_max = -1,
		.connected = s->connected,
	};
	double dt = (now - sp->last_ns) / 1e9;
	double hz[SOAK_MAX_DOMAINS];
	bool have_hz = false;
	unsigned int ndom = 0;
	uint64_t nsubs = 0;
	long tck = sysconf(_SC_CLK_TCK);

	soak_proc_read(s->pid, &r.p);
	if (sp->dt_ok && dthreads_sample(&sp->dt) == 0) {
		r.u = dthreads_usage(&sp->dt);
		dthreads_mark(&sp->dt);
	}
	r.cpu_pct = dt > 0 ? 100.0 * (r.p.cpu_ticks - sp->last.cpu_ticks) /
			     tck / dt : 0;
	r.req_s = (s->c.requests - sp->lastc.requests) / dt;
	r.streams_s = (s->c.streams - sp->lastc.streams) / dt;
	r.pages_s = (s->c.pages - sp->lastc.pages) / dt;
	/* rounds/s: the monitor's last two LIST_DOMAINS, timed on arrival */
	if (s->gen_fresh) {
		if (sp->have_gen && s->gen_ns > sp->gen_ns) {
			double gdt = (s->gen_ns - sp->gen_ns) / 1e9, sum = 0;

			r.hz_min = 1e18;
			r.hz_max = 0;
			for (unsigned int d = 0; d < s->o.domains; d++) {
				hz[d] = (s->gen[d] - sp->gen[d]) / gdt;
				sum += hz[d];
				r.hz_min = fmin(r.hz_min, hz[d]);
				r.hz_max = fmax(r.hz_max, hz[d]);
			}
			r.hz_mean = sum / s->o.domains;
			have_hz = true;
		}
		ndom = s->gen_count;
		nsubs = s->gen_subscribers;
		memcpy(sp->gen, s->gen, sizeof(sp->gen));
		sp->gen_ns = s->gen_ns;
		sp->have_gen = true;
	}
	soak_monitor_poll(s);

	fprintf(sp->csv, "%.2f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%u,"
		"%.1f,%.1f,%.1f,%.1f,%u,%.0f,%.0f,%.0f,%.0f,%" PRIu64 ",%"
		PRIu64 ",%" PRIu64 ",%" PRIu64, r.t, r.p.rss_kib,
		r.p.rss_anon_kib, r.p.rss_shmem_kib, r.p.fds, r.p.threads,
		r.cpu_pct, r.hz_mean, r.hz_min, r.hz_max, r.connected, r.req_s,
		r.streams_s, r.pages_s,
		(s->c.ev_rounds - sp->lastc.ev_rounds) / dt, s->c.errors,
		s->c.violations, s->c.resumes, s->c.disconnects);
	if (have_hz)
		fprintf(sp->csv, ",%u,%" PRIu64, ndom, nsubs);
	else
		fprintf(sp->csv, ",,");
	fprintf(sp->csv, ",%.1f,%.1f,%.1f,%.1f,%.1f", r.u.pct[DTHR_LOOP],
		r.u.pct[DTHR_HARVEST], r.u.pct[DTHR_DMA],
		r.u.pct[DTHR_IOURING] + r.u.pct[DTHR_OTHER], r.u.machine_pct);
	for (unsigned int d = 0; d < s->o.domains; d++) {
		if (have_hz)
			fprintf(sp->csv, ",%.1f", hz[d]);
		else
			fprintf(sp->csv, ",");
	}
	fprintf(sp->csv, "\n");
	fflush(sp->csv);
	if (sp->tick++ % 10 == 0)
		fprintf(stderr, "soak: t=%5.0fs rss %" PRIu64 " KiB fds %u "
			"cpu %5.1f%% (loop %.0f%%, harvest %.0f%%) rounds "
			"%.1f/s (min %.1f) clients %u req/s %.0f pages/s %.0f "
			"errors %" PRIu64 "\n", r.t, r.p.rss_kib, r.p.fds,
			r.cpu_pct, r.u.pct[DTHR_LOOP], r.u.pct[DTHR_HARVEST],
			r.hz_mean, r.hz_min,
			r.connected, r.req_s, r.pages_s,
			s->c.errors + s->c.violations);
	if (sp->nrows == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 256;
		struct soak_row *rows = realloc(sp->rows,
						cap * sizeof(*rows));

		if (rows) {
			sp->rows = rows;
			sp->cap = cap;
		}
	}
	if (sp->nrows < sp->cap)
		sp->rows[sp->nrows++] = r;
	sp->last = r.p;
	sp->last_ns = now;
	sp->lastc = s->c;
}

/* Statistics of rows with lo <= t < hi. */
struct window {
	unsigned int n, nhz;
	uint64_t rss_max, rss_min, shmem_max;
	unsigned int fds_max, fds_min;
	double cpu_sum, cpu_max, hz_sum, hz_min;
	struct dthr_usage u;	/* the threads' means over the rows */
	/* least squares of rss over t */
	double st, sr, stt, str;
};

static struct window window(const struct soak_sampler *sp, double lo,
			    double hi)
{
	struct window w = { .rss_min = UINT64_MAX, .fds_min = ~0u,
			    .hz_min = 1e18 };

	for (size_t i = 0; i < sp->nrows; i++) {
		const struct soak_row *r = &sp->rows[i];

		if (r->t < lo || r->t >= hi)
			continue;
		w.n++;
		w.rss_max = r->p.rss_kib > w.rss_max ? r->p.rss_kib :
						       w.rss_max;
		w.rss_min = r->p.rss_kib < w.rss_min ? r->p.rss_kib :
						       w.rss_min;
		if (r->p.rss_shmem_kib > w.shmem_max)
			w.shmem_max = r->p.rss_shmem_kib;
		w.fds_max = r->p.fds > w.fds_max ? r->p.fds : w.fds_max;
		w.fds_min = r->p.fds < w.fds_min ? r->p.fds : w.fds_min;
		w.cpu_sum += r->cpu_pct;
		for (int k = 0; k < DTHR_NROLES; k++) {
			w.u.pct[k] += r->u.pct[k];
			w.u.busiest_pct[k] += r->u.busiest_pct[k];
			if (r->u.threads[k] > w.u.threads[k])
				w.u.threads[k] = r->u.threads[k];
		}
		w.u.machine_pct += r->u.machine_pct;
		w.u.wall_s += r->u.wall_s;
		w.u.cpu_s += r->u.cpu_s;
		w.u.ncpu = r->u.ncpu;
		w.cpu_max = fmax(w.cpu_max, r->cpu_pct);
		if (r->hz_mean >= 0) {
			w.nhz++;
			w.hz_sum += r->hz_mean;
			w.hz_min = fmin(w.hz_min, r->hz_min);
		}
		w.st += r->t;
		w.sr += (double)r->p.rss_kib;
		w.stt += r->t * r->t;
		w.str += r->t * (double)r->p.rss_kib;
	}
	for (int k = 0; k < DTHR_NROLES && w.n; k++) {
		w.u.pct[k] /= w.n;
		w.u.busiest_pct[k] /= w.n;
	}
	if (w.n)
		w.u.machine_pct /= w.n;
	return w;
}

static double slope_kib_per_min(const struct window *w)
{
	double den = w->n * w->stt - w->st * w->st;

	return w->n > 2 && den > 0 ?
	       60.0 * (w->n * w->str - w->st * w->sr) / den : 0;
}

static int check(FILE *out, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int check(FILE *out, bool ok, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "%s: ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fprintf(out, "\n");
	return ok ? 0 : 1;
}

int soak_verdict(struct soak_sampler *sp, FILE *out, unsigned int base_fds,
		 unsigned int final_fds, int exit_status)
{
	struct soak *s = sp->s;
	const struct soak_counts *c = &s->c;
	double d = s->o.duration_s, tol = s->o.rss_tolerance;
	struct window all = window(sp, 0, 1e18);
	struct window warm = window(sp, 0, d / 3);
	struct window mid = window(sp, d / 3, 2 * d / 3);
	struct window last = window(sp, 2 * d / 3, 1e18);
	struct window steady = window(sp, d / 3, 1e18);
	double hz = steady.nhz ? steady.hz_sum / steady.nhz : 0;
	uint64_t rss_limit = (uint64_t)(mid.rss_max * (1 + tol / 100));
	/* + 1: sd_notify()'s passing socket; + 16: connections the driver
	 * hung up and dirtyd has not yet seen closed while their clients
	 * already came back (50 ms later at the soonest) */
	unsigned int fd_limit = base_fds + 1 + s->max_connected + 16;
	int fails = 0;

	fprintf(out, "dirtyd soak: %u s, %u clients (fast %u, slow %u, mute "
		"%u, resume %u, churn %u) + 1 monitor, each subscribed to %u "
		"of %u domains of %" PRIu64
		" MiB (%s backing), harvest every %u ms, DMA %u pages/s per "
		"domain\n", s->o.duration_s, s->o.clients,
		soak_kind_count(s, SOAK_FAST), soak_kind_count(s, SOAK_SLOW),
		soak_kind_count(s, SOAK_MUTE), soak_kind_count(s, SOAK_RESUME),
		soak_kind_count(s, SOAK_CHURN), s->o.subs_per_client,
		s->o.domains,
		s->o.domain_size >> 20, s->o.backing, s->o.interval_ms,
		s->o.dma_rate);
	fprintf(out, "samples: %u (warm-up third %u, middle %u, last %u)\n",
		all.n, warm.n, mid.n, last.n);
	fprintf(out, "memory: VmRSS KiB warm-up max %" PRIu64 ", middle "
		"%" PRIu64 "..%" PRIu64 ", last %" PRIu64 "..%" PRIu64
		"; RssShmem max %" PRIu64 "; slope over the last two thirds "
		"%+.0f KiB/min\n", warm.rss_max, mid.rss_min, mid.rss_max,
		last.rss_min, last.rss_max, all.shmem_max,
		slope_kib_per_min(&steady));
	fprintf(out, "descriptors: before any client %u, during %u..%u "
		"(connections %u at most), after every client left %u\n",
		base_fds, all.fds_min, all.fds_max, s->max_connected,
		final_fds);
	fprintf(out, "cpu (%% of one CPU): middle mean %.1f, last mean %.1f,"
		" max %.1f\n", mid.n ? mid.cpu_sum / mid.n : 0,
		last.n ? last.cpu_sum / last.n : 0, all.cpu_max);
	fprintf(out, "rounds: %.1f/s per domain on average after warm-up "
		"(lowest domain in a second: %.1f/s; %u ms asked = %.0f/s)\n",
		hz, steady.nhz ? steady.hz_min : 0, s->o.interval_ms,
		1000.0 / s->o.interval_ms);
	if (steady.u.wall_s > 0) {
		char why[512];
		/* rounds of every domain in the steady window */
		double rounds = hz * s->o.domains * steady.u.wall_s;

		fprintf(out, "dirtyd's threads after warm-up (mean %% of one "
			"CPU; /proc/PID/task, tests/soak/daemon_threads.h):\n");
		for (int k = 0; k < DTHR_NROLES; k++)
			if (steady.u.threads[k])
				fprintf(out, "  %-10s %2u thread%s %6.1f %% "
					"(busiest %5.1f %%)\n",
					dthreads_role_name((enum dthr_role)k),
					steady.u.threads[k],
					steady.u.threads[k] == 1 ? " " : "s",
					steady.u.pct[k],
					steady.u.busiest_pct[k]);
		fprintf(out, "  machine: %u CPUs %.0f %% busy; dirtyd %.2f "
			"CPU-ms per round (of any domain; sim DMA included)\n",
			steady.u.ncpu, steady.u.machine_pct,
			rounds > 0 ? 1e3 * steady.u.cpu_s / rounds : 0);
		fprintf(out, "bottleneck: %s\n",
			dthreads_verdict(&steady.u, rounds, why, sizeof(why)));
	}
	fprintf(out, "clients: %" PRIu64 " requests, %" PRIu64 " streams, %"
		PRIu64 " pages, %" PRIu64 " ACKs, %" PRIu64 " EV_ROUND, %"
		PRIu64 " connects, %" PRIu64 " hang-ups, %" PRIu64
		" resumed, %" PRIu64 " send waits\n", c->requests, c->streams,
		c->pages, c->acks, c->ev_rounds, c->connects, c->disconnects,
		c->resumes, c->send_blocked);
	for (enum soak_kind k = 0; k < SOAK_MONITOR; k++)
		fprintf(out, "  %-6s %8" PRIu64 " streams %12" PRIu64
			" pages\n", soak_kind_name(k), c->kind_streams[k],
			c->kind_pages[k]);

	fails += check(out, c->errors == 0, "no ERROR answers (%" PRIu64 ")%s"
		       "%s", c->errors, c->errors ? ": first: " : "",
		       c->errors ? s->first_error : "");
	fails += check(out, c->violations == 0, "no protocol violations, "
		       "undecodable packets or hang-ups by dirtyd (%" PRIu64
		       ")", c->violations);
	fails += check(out, c->ev_lost == 0 && c->resumes_lost == 0,
		       "no state lost: EV_STATE_LOST %" PRIu64 ", resumes "
		       "refused %" PRIu64, c->ev_lost, c->resumes_lost);
	fails += check(out, c->resumes > 0 && c->disconnects > 0 &&
		       c->kind_streams[SOAK_FAST] > 0 &&
		       c->kind_streams[SOAK_SLOW] > 0 &&
		       c->kind_streams[SOAK_RESUME] > 0 &&
		       c->kind_streams[SOAK_CHURN] > 0,
		       "every kind of client did its part (%" PRIu64
		       " resumes, %" PRIu64 " hang-ups)", c->resumes,
		       c->disconnects);
	fails += check(out, final_fds == base_fds, "descriptors back to the "
		       "baseline after every client left: %u, baseline %u",
		       final_fds, base_fds);
	fails += check(out, all.fds_max <= fd_limit, "descriptors during the "
		       "run at most baseline + connections (+ 17 in transit):"
		       " %u <= %u", all.fds_max, fd_limit);
	fails += check(out, mid.n > 0 && last.n > 0 &&
		       last.rss_max <= rss_limit, "VmRSS flat after warm-up:"
		       " last third's max %" PRIu64 " KiB <= middle third's "
		       "max %" PRIu64 " KiB + %.1f%% (%" PRIu64 ")",
		       last.rss_max, mid.rss_max, tol, rss_limit);
	/* Rounds must keep coming; how many a second is the machine's
	 * (reported; asserted only when asked: --min-round-hz). */
	fails += check(out, steady.nhz > 0 && hz > 0 &&
		       hz >= s->o.min_round_hz,
		       "harvest rounds kept coming: %.1f/s per domain (of "
		       "%.0f asked; wanted >= %.1f: --min-round-hz)", hz,
		       1000.0 / s->o.interval_ms, s->o.min_round_hz);
	fails += check(out, WIFEXITED(exit_status) &&
		       WEXITSTATUS(exit_status) == 0, "dirtyd exited 0 on "
		       "SIGTERM (wait status %#x)", exit_status);
	fprintf(out, "%s\n", fails ? "SOAK FAILED" : "SOAK PASSED");
	return fails;
}

void soak_sampler_free(struct soak_sampler *sp)
{
	if (!sp)
		return;
	free(sp->rows);
	dthreads_free(&sp->dt);
	free(sp);
}
