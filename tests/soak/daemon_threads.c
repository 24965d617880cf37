// SPDX-License-Identifier: MIT
/*
 * dirtyd's threads from outside: roles and CPU time (daemon_threads.h says
 * how a thread's role is told).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tests/soak/daemon_threads.h"

#define SATURATED_PCT 85.0	/* a thread this busy is the bottleneck */

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The first line of /proc/PID/task/TID/@what into @buf; 0 or -errno. */
static int task_read(pid_t pid, pid_t tid, const char *what, char *buf,
		     size_t len)
{
	char path[96];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid,
		 (int)tid, what);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		r = -EIO;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return r;
}

static uint64_t task_cpu_ns(pid_t pid, pid_t tid)
{
	char line[512];
	unsigned long long ns, ut, st;
	char *q;

	if (!task_read(pid, tid, "schedstat", line, sizeof(line)) &&
	    sscanf(line, "%llu", &ns) == 1)
		return ns;
	if (task_read(pid, tid, "stat", line, sizeof(line)) < 0)
		return 0;
	/* after "(comm)": state is field 3, utime 14, stime 15 */
	q = strrchr(line, ')');
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			 "%*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* The machine's busy and total jiffies (/proc/stat's "cpu" line). */
static void machine_jiffies(uint64_t *busy, uint64_t *total)
{
	unsigned long long v[10] = { 0 };
	char line[512];
	FILE *f = fopen("/proc/stat", "r");

	*busy = *total = 0;
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4) {
		for (int i = 0; i < 8; i++)
			*total += v[i];
		/* idle and iowait are not busy */
		*busy = *total - v[3] - v[4];
	}
	fclose(f);
}

static struct dthr *find(struct dthreads *d, pid_t tid)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->t[i].tid == tid)
			return &d->t[i];
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 32;
		struct dthr *t = realloc(d->t, cap * sizeof(*t));

		if (!t)
			return NULL;
		d->t = t;
		d->cap = cap;
	}
	memset(&d->t[d->n], 0, sizeof(d->t[0]));
	d->t[d->n].tid = tid;
	return &d->t[d->n++];
}

/* A vote from what @t waits in now ("running": none). */
static void vote(struct dthreads *d, struct dthr *t)
{
	char line[256];
	long nr;

	if (task_read(d->pid, t->tid, "syscall", line, sizeof(line)) < 0 ||
	    sscanf(line, "%ld", &nr) != 1 || nr < 0)
		return;
	if (nr == SYS_io_uring_enter)
		t->votes[DTHR_HARVEST]++;
	else if (nr == SYS_clock_nanosleep || nr == SYS_nanosleep)
		t->votes[DTHR_DMA]++;
	else
		t->votes[DTHR_OTHER]++;
}

int dthreads_sample(struct dthreads *d)
{
	char path[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)d->pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	for (size_t i = 0; i < d->n; i++)
		d->t[i].alive = false;
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);
		struct dthr *t;
		uint64_t ns;

		if (tid <= 0)
			continue;
		t = find(d, tid);
		if (!t)
			break;
		if (!t->comm[0])
			task_read(d->pid, tid, "comm", t->comm,
				  sizeof(t->comm));
		ns = task_cpu_ns(d->pid, tid);
		/* a thread that ended keeps what it used until then */
		if (ns >= t->cpu_ns)
			t->cpu_ns = ns;
		t->alive = true;
		vote(d, t);
	}
	closedir(dir);
	d->sample_wall_ns = wall_ns();
	machine_jiffies(&d->sample_busy, &d->sample_total);
	return 0;
}

void dthreads_mark(struct dthreads *d)
{
	for (size_t i = 0; i < d->n; i++)
		d->t[i].mark_ns = d->t[i].cpu_ns;
	d->mark_wall_ns = d->sample_wall_ns;
	d->mark_busy = d->sample_busy;
	d->mark_total = d->sample_total;
}

int dthreads_init(struct dthreads *d, pid_t pid)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->pid = pid;
	r = task_read(pid, pid, "comm", d->main_comm, sizeof(d->main_comm));
	if (r < 0)
		return r;
	r = dthreads_sample(d);
	if (r < 0)
		return r;
	dthreads_mark(d);
	return 0;
}

enum dthr_role dthreads_role(const struct dthreads *d, const struct dthr *t)
{
	enum dthr_role best = DTHR_OTHER;

	if (t->tid == d->pid)
		return DTHR_LOOP;
	/* dirtyd names its threads (prctl PR_SET_NAME); an older binary
	 * does not: then what they wait in decides */
	if (!strcmp(t->comm, "dirtyd-harvest"))
		return DTHR_HARVEST;
	if (!strcmp(t->comm, "dirtyd-dma"))
		return DTHR_DMA;
	if (strcmp(t->comm, d->main_comm))
		return strncmp(t->comm, "iou-", 4) ? DTHR_OTHER : DTHR_IOURING;
	for (int r = DTHR_HARVEST; r < DTHR_NROLES; r++)
		if (t->votes[r] > t->votes[best])
			best = (enum dthr_role)r;
	return best;
}

const char *dthreads_role_name(enum dthr_role r)
{
	static const char *const names[DTHR_NROLES] = {
		[DTHR_LOOP] = "event loop",
		[DTHR_HARVEST] = "harvest",
		[DTHR_DMA] = "sim DMA",
		[DTHR_IOURING] = "io_uring",
		[DTHR_OTHER] = "other",
	};

	return r < DTHR_NROLES ? names[r] : "?";
}

struct dthr_usage dthreads_usage(const struct dthreads *d)
{
	struct dthr_usage u = { 0 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	u.ncpu = ncpu > 0 ? (unsigned int)ncpu : 1;
	u.wall_s = (d->sample_wall_ns - d->mark_wall_ns) / 1e9;
	if (u.wall_s <= 0)
		return u;
	for (size_t i = 0; i < d->n; i++) {
		const struct dthr *t = &d->t[i];
		enum dthr_role r = dthreads_role(d, t);
		double s = (t->cpu_ns - t->mark_ns) / 1e9;
		double pct = 100.0 * s / u.wall_s;

		u.cpu_s += s;
		u.pct[r] += pct;
		if (pct > u.busiest_pct[r])
			u.busiest_pct[r] = pct;
		if (t->alive || s > 0)
			u.threads[r]++;
	}
	if (d->sample_total > d->mark_total)
		u.machine_pct = 100.0 * (d->sample_busy - d->mark_busy) /
				(d->sample_total - d->mark_total);
	return u;
}

const char *dthreads_verdict(const struct dthr_usage *u, double rounds,
			     char *buf, size_t len)
{
	unsigned int hw = u->threads[DTHR_HARVEST];
	double hcap = 100.0 * (hw < u->ncpu ? hw : u->ncpu);
	double loop_ms = u->pct[DTHR_LOOP] / 100 * u->wall_s * 1e3;
	double harv_ms = u->pct[DTHR_HARVEST] / 100 * u->wall_s * 1e3;
	int n;

	if (u->pct[DTHR_LOOP] >= SATURATED_PCT)
		n = snprintf(buf, len, "loop-bound: the event loop used %.0f "
			     "%% of a CPU", u->pct[DTHR_LOOP]);
	else if (hw && (u->busiest_pct[DTHR_HARVEST] >= SATURATED_PCT ||
			u->pct[DTHR_HARVEST] >= SATURATED_PCT / 100 * hcap))
		n = snprintf(buf, len, "harvest-bound: the %u harvest threads"
			     " used %.0f %% of a CPU (busiest %.0f %%)", hw,
			     u->pct[DTHR_HARVEST],
			     u->busiest_pct[DTHR_HARVEST]);
	else if (u->machine_pct >= 90)
		n = snprintf(buf, len, "CPU-bound: no thread of dirtyd "
			     "saturated (the loop %.0f %%, harvest %.0f %% of "
			     "a CPU), the machine's CPUs busy with other work "
			     "too", u->pct[DTHR_LOOP], u->pct[DTHR_HARVEST]);
	else
		n = snprintf(buf, len, "no stage saturated (the loop %.0f %%, "
			     "harvest %.0f %% of a CPU): each waits for the "
			     "other", u->pct[DTHR_LOOP], u->pct[DTHR_HARVEST]);
	if (n > 0 && (size_t)n < len && rounds > 0) {
		/* a round's stages run one after the other: the larger
		 * one is where its time goes */
		n += snprintf(buf + n, len - (size_t)n, "; per round the "
			      "loop %.1f ms, the harvest %.1f ms of CPU: "
			      "mostly the %s", loop_ms / rounds,
			      harv_ms / rounds,
			      loop_ms >= harv_ms ? "loop" : "harvest");
	}
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; the machine's %u CPUs "
			 "%.0f %% busy", u->ncpu, u->machine_pct);
	return buf;
}

void dthreads_print(const struct dthreads *d, const struct dthr_usage *u,
		    FILE *out, const char *indent)
{
	if (u->wall_s <= 0)
		return;
	for (int r = 0; r < DTHR_NROLES; r++)
		if (u->threads[r])
			fprintf(out, "%s%-10s %2u thread%s %6.1f %% of a CPU "
				"(busiest %5.1f %%)\n", indent,
				dthreads_role_name((enum dthr_role)r),
				u->threads[r], u->threads[r] == 1 ? " " : "s",
				u->pct[r], u->busiest_pct[r]);
	fprintf(out, "%s  threads:", indent);
	for (size_t i = 0; i < d->n; i++) {
		const struct dthr *t = &d->t[i];
		double s = (t->cpu_ns - t->mark_ns) / 1e9;

		if (!t->alive && s <= 0)
			continue;
		fprintf(out, " %d %s [%s] %.1f%%;", (int)t->tid, t->comm,
			dthreads_role_name(dthreads_role(d, t)),
			100.0 * s / u->wall_s);
	}
	fprintf(out, "\n%s  machine: %u CPUs %.0f %% busy; dirtyd %.2f CPU-s "
		"in %.2f s\n", indent, u->ncpu, u->machine_pct, u->cpu_s,
		u->wall_s);
}

void dthreads_free(struct dthreads *d)
{
	free(d->t);
	d->t = NULL;
	d->n = d->cap = 0;
}
