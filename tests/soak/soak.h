/* SPDX-License-Identifier: MIT */
/*
 * The load soak (issue 6, section 4): one process drives the real dirtyd
 * on the simulated host with many concurrent clients, multiplexed on one
 * epoll loop, and samples the daemon every second.
 *
 *   soak_main.c    options, the daemon (config, start, READY=1, stop), the
 *                  loop, the verdict
 *   soak_client.c  the clients: raw protocol through the codec
 *                  (protocol/proto.h), one state machine per connection
 *   soak_sample.c  /proc/PID sampling, the CSV time series, the summary
 *   daemon_threads.c  dirtyd's threads by role (event loop, harvest, sim
 *                  DMA) and their CPU: why the rounds are what they are
 *                  (also bench/rounds)
 *
 * See tests/soak/README.md for the load, the mix and the criteria.
 */
#ifndef DIRTYD_TESTS_SOAK_H
#define DIRTYD_TESTS_SOAK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "protocol/proto.h"

#define SOAK_MAX_DOMAINS 64

/* What a client does; see README.md. */
enum soak_kind {
	SOAK_FAST,	/* GET_RANGES + ACK whenever EV_ROUND says there is
			 * more */
	SOAK_SLOW,	/* the same, reading a few packets per 50 ms */
	SOAK_MUTE,	/* subscribes, then never reads nor sends again */
	SOAK_RESUME,	/* fast; drops the connection and resumes by token */
	SOAK_CHURN,	/* comes and goes: a new session, subscribe, read,
			 * leave */
	SOAK_MONITOR,	/* root: LIST_DOMAINS once a second (rounds/s) */
	SOAK_NKINDS,
};

struct soak_opts {
	const char *dirtyd;
	const char *out_dir;
	unsigned int duration_s;
	unsigned int clients;
	unsigned int domains;
	unsigned int subs_per_client;	/* domains each client takes */
	uint64_t domain_size;
	const char *backing;	/* 4k | 2m | 1g */
	unsigned int interval_ms;
	unsigned int dma_rate;	/* pages/s per domain */
	double min_round_hz;	/* mean rounds/s per domain, at least */
	double rss_tolerance;	/* last third's max over the middle's, % */
	unsigned int seed;
	unsigned int resume_grace;	/* s */
	const char *log_level;	/* dirtyd's */
};

/* Counters the clients keep; the sampler turns them into rates. */
struct soak_counts {
	uint64_t requests;
	uint64_t replies;
	uint64_t streams;	/* complete RANGES streams */
	uint64_t pages;		/* pages in complete RANGES streams */
	uint64_t acks;
	uint64_t ev_rounds;
	uint64_t ev_lost;	/* EV_STATE_LOST: a harvest failed */
	uint64_t connects;
	uint64_t disconnects;	/* ours, on purpose */
	uint64_t resumes;	/* HELLO_REPLY RESUMED */
	uint64_t resumes_lost;	/* HELLO_REPLY STATE_LOST for our token */
	uint64_t errors;	/* ERROR answers: none is expected */
	uint64_t violations;	/* undecodable packets, bad streams, EOFs */
	uint64_t send_blocked;	/* a request waited for EPOLLOUT */
	uint64_t kind_pages[SOAK_NKINDS];
	uint64_t kind_streams[SOAK_NKINDS];
};

struct soak {
	struct soak_opts o;
	char dir[64];
	char sock[128];
	char log[128];
	pid_t pid;
	int epfd;
	struct soak_client *clients;	/* o.clients + the monitor */
	unsigned int nclients;
	struct soak_client *monitor;
	struct soak_counts c;
	unsigned int connected;	/* connections open now */
	unsigned int max_connected;
	bool stopping;		/* tearing down: closes are expected */
	/* the monitor's last LIST_DOMAINS: generations and when */
	uint64_t gen[SOAK_MAX_DOMAINS];
	uint64_t gen_ns;
	bool gen_fresh;
	unsigned int gen_count;		/* domains listed */
	uint64_t gen_subscribers;	/* their subscriptions, kept ones
					 * of closed sessions included */
	char first_error[512];
};

/* soak_client.c */
uint64_t soak_now_ns(void);
int soak_clients_init(struct soak *s);
/** soak_clients_tick() - timed actions (reconnects, slow reads, ...). */
void soak_clients_tick(struct soak *s, uint64_t now);
/** soak_client_event() - epoll said @ptr's connection is ready. */
void soak_client_event(struct soak *s, void *ptr, uint32_t events);
/** soak_monitor_poll() - ask for LIST_DOMAINS; false if still waiting. */
bool soak_monitor_poll(struct soak *s);
/** soak_clients_close() - close every connection (the end). */
void soak_clients_close(struct soak *s);
void soak_clients_free(struct soak *s);
const char *soak_kind_name(enum soak_kind k);
unsigned int soak_kind_count(const struct soak *s, enum soak_kind k);
/** soak_note() - remember the first problem, print every one (bounded). */
void soak_note(struct soak *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* soak_sample.c */
struct soak_proc {
	uint64_t rss_kib, rss_anon_kib, rss_shmem_kib;
	unsigned int fds, threads;
	uint64_t cpu_ticks;	/* utime + stime */
};
int soak_proc_read(pid_t pid, struct soak_proc *p);

struct soak_sampler;
struct soak_sampler *soak_sampler_new(struct soak *s, FILE *csv);
/** soak_sample() - one row: the daemon, the clients, the rounds. */
void soak_sample(struct soak_sampler *sp, uint64_t now);
/**
 * soak_verdict() - the summary and the checks, to @out; returns the number
 * of failed checks.  @final_fds: the daemon's fds once every client left;
 * @base_fds: before any connected; @exit_status: its wait status.
 */
int soak_verdict(struct soak_sampler *sp, FILE *out, unsigned int base_fds,
		 unsigned int final_fds, int exit_status);
void soak_sampler_free(struct soak_sampler *sp);

#endif
