/* SPDX-License-Identifier: MIT */
/*
 * Which of a running dirtyd's threads does what, and how much CPU each used:
 * read from /proc/PID/task, for the soak's summary and bench/rounds ("which
 * stage is the bottleneck").
 *
 * Owns: telling dirtyd's threads apart from outside.  dirtyd names its
 * threads (dirtyd.8, THREADS): "dirtyd-harvest" is harvest, "dirtyd-dma"
 * the sim's DMA.  Binaries before it named none (every comm "dirtyd"),
 * and bench/rounds runs old binaries too, so otherwise:
 *   - the main thread (tid == pid) is the event loop (docs/ARCHITECTURE.md:
 *     every request, fold and reply);
 *   - a thread whose comm differs from the main thread's is grouped by its
 *     comm: io_uring's own workers ("iou-wrk-*", "iou-sqp-*") as io_uring,
 *     any other name as other;
 *   - the rest by the system call they wait in, sampled: io_uring_enter is
 *     a ring worker (kernel/ring_worker.c: the sim's reader threads and the
 *     engine's harvest workers: harvest), clock_nanosleep / nanosleep a
 *     simulated guest's DMA writer (kernel/dma_load.c: the load, not
 *     dirtyd's work on real hardware), anything else (the bitmap reaper,
 *     a change's thread) other.  A thread never seen waiting is other.
 * CPU time is /proc/PID/task/TID/schedstat's (ns on a CPU), or utime +
 * stime where the kernel has no schedstat.
 */
#ifndef DIRTYD_TESTS_SOAK_DAEMON_THREADS_H
#define DIRTYD_TESTS_SOAK_DAEMON_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum dthr_role {
	DTHR_LOOP,	/* the event loop (the main thread) */
	DTHR_HARVEST,	/* ring workers: the sim's readers, the engine's */
	DTHR_DMA,	/* the simulated guests' DMA writers */
	DTHR_IOURING,	/* io_uring's kernel workers (iou-*) */
	DTHR_OTHER,
	DTHR_NROLES,
};

struct dthr {
	pid_t tid;
	char comm[32];
	uint64_t cpu_ns;	/* all time, at the last sample */
	uint64_t mark_ns;	/* at the last dthreads_mark() */
	unsigned int votes[DTHR_NROLES];
	bool alive;
};

struct dthreads {
	pid_t pid;
	char main_comm[32];
	struct dthr *t;
	size_t n, cap;
	/* at the last sample, and at the mark: the time, and /proc/stat's
	 * busy and total jiffies of the machine */
	uint64_t sample_wall_ns, sample_busy, sample_total;
	uint64_t mark_wall_ns, mark_busy, mark_total;
};

/* CPU by role since the last mark. */
struct dthr_usage {
	double wall_s;
	double pct[DTHR_NROLES];	/* % of one CPU, the role's threads
					 * together */
	double busiest_pct[DTHR_NROLES];	/* its busiest thread's */
	unsigned int threads[DTHR_NROLES];
	double cpu_s;		/* every thread of the daemon, seconds */
	double machine_pct;	/* the whole machine's busy CPU, % of all */
	unsigned int ncpu;
};

/** dthreads_init() - for the dirtyd of @pid; a first sample, marked. */
int dthreads_init(struct dthreads *d, pid_t pid);
/** dthreads_sample() - read every thread's CPU time and vote on the role
 *  of each from the system call it waits in.  0 or -errno. */
int dthreads_sample(struct dthreads *d);
/** dthreads_mark() - the last sample is where the next usage starts. */
void dthreads_mark(struct dthreads *d);
/** dthreads_usage() - CPU by role between the mark and the last sample. */
struct dthr_usage dthreads_usage(const struct dthreads *d);
enum dthr_role dthreads_role(const struct dthreads *d, const struct dthr *t);
const char *dthreads_role_name(enum dthr_role r);
/**
 * dthreads_verdict() - which stage bounds the rounds, in words, into @buf:
 * the loop near a whole CPU (loop-bound); the harvest threads saturated
 * (harvest-bound); neither, with the machine's CPUs all busy (CPU-bound:
 * the stages share them with other work); or none of these (each stage
 * waits for the other).  With @rounds (the rounds of the window; <= 0:
 * unknown) also the loop's and the harvest's CPU per round, and which is
 * larger: a round's stages run one after the other.  The machine's busy
 * share always.
 */
const char *dthreads_verdict(const struct dthr_usage *u, double rounds,
			     char *buf, size_t len);
/** dthreads_print() - one line per role, then each thread, to @out. */
void dthreads_print(const struct dthreads *d, const struct dthr_usage *u,
		    FILE *out, const char *indent);
void dthreads_free(struct dthreads *d);

#endif
