// SPDX-License-Identifier: MIT
/*
 * dirtyd-migrate: the pre-copy phase of a live migration, simulated against
 * a domain of dirtyd whose device keeps writing (a [guest] of the sim with
 * a DMA workload), through libdirty.
 *
 * Round 1 copies every mapped page (a new subscription has them all
 * pending).  Each later round copies what the previous one left dirty: it
 * takes the ranges, "copies" them (sleeps for the time the modelled link
 * needs, --bandwidth, while the device goes on writing), acknowledges them
 * and syncs to learn what was dirtied meanwhile.  When what is left could
 * be copied within --max-downtime-ms, the guest would be stopped: a final
 * sync and ranges give the stop-and-copy set, and its copy time is the
 * downtime.  After --max-rounds without getting there the migration does
 * not converge: the device dirties faster than the link copies.  A round
 * whose copy takes longer than --progress-ms reports how far it got every
 * --progress-ms while it copies.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirtyd/dirty.h>

#include "clock.h"
#include "hint.h"
#include "json.h"

#ifndef DIRTYD_VERSION
#define DIRTYD_VERSION "unknown"
#endif

#define MIB (1024.0 * 1024.0)
#define EXIT_USAGE 2
#define EXIT_NOT_CONVERGED 3

struct migrate {
	const char *socket;
	uint32_t domain_id;
	double bandwidth;		/* bytes/s */
	double max_downtime;		/* s */
	unsigned int max_rounds;
	double progress;		/* s between progress reports; 0: none */
	double reconnect;		/* s to wait for dirtyd to come back */
	bool json;

	struct dirty *d;
	uint64_t page_size;
	uint64_t mapped_bytes;
	struct json j;

	/* totals */
	unsigned int rounds;
	unsigned int reconnects;
	uint64_t pages_copied;
	double started;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleep @s seconds; a signal cuts it short. */
static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int fail(struct migrate *m, const char *what, int r)
{
	const char *text = m->d ? dirty_last_error_text(m->d) : NULL;

	fprintf(stderr, "dirtyd-migrate: %s: %s\n", what,
		text && *text ? text : strerror(-r));
	return 1;
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "dirtyd-migrate: %s '%s'\n"
		"Try 'dirtyd-migrate --help'.\n", msg, arg);
	return EXIT_USAGE;
}

static double pages_mib(const struct migrate *m, uint64_t pages)
{
	return (double)pages * (double)m->page_size / MIB;
}

/* Seconds the modelled link needs for @pages. */
static double copy_time(const struct migrate *m, uint64_t pages)
{
	return (double)pages * (double)m->page_size / m->bandwidth;
}

/* dirty_range_fn: the "copy" only counts; the time is modelled. */
static int count_pages(void *ctx, uint64_t first_page, uint64_t npages)
{
	uint64_t *pages = ctx;

	*pages += npages;
	return 0;
}

/* Within a long copy: how far round m->rounds got. */
static void print_progress(struct migrate *m, uint64_t done, uint64_t pages,
			   double elapsed)
{
	if (m->json) {
		json_open(&m->j, NULL, '{');
		json_str(&m->j, "type", "progress");
		json_u64(&m->j, "round", m->rounds);
		json_u64(&m->j, "copied_pages", done);
		json_u64(&m->j, "round_pages", pages);
		json_double(&m->j, "elapsed_s", elapsed);
		json_close(&m->j, '}');
		return;
	}
	printf("  round %u: %" PRIu64 " of %" PRIu64 " pages copied (%.0f %%), "
	       "%.1f s\n", m->rounds, done, pages,
	       pages ? 100.0 * (double)done / (double)pages : 100.0, elapsed);
	fflush(stdout);
}

/* "Copy" @pages: the time the modelled link takes, reporting progress
 * every m->progress seconds meanwhile. */
static void copy_pages(struct migrate *m, uint64_t pages)
{
	double total = copy_time(m, pages), t0 = clock_now_s();

	while (!interrupted) {
		double elapsed = clock_now_s() - t0;

		if (elapsed >= total)
			break;
		if (!m->progress) {
			sleep_s(total - elapsed);
			break;
		}
		sleep_s(fmin(total - elapsed, m->progress));
		elapsed = clock_now_s() - t0;
		if (elapsed < total && !interrupted)
			print_progress(m, (uint64_t)((double)pages * elapsed /
						     total), pages, elapsed);
	}
}

static void print_reconnect(struct migrate *m, uint32_t flags)
{
	bool lost = flags & DIRTY_SESSION_STATE_LOST;

	if (m->json) {
		json_open(&m->j, NULL, '{');
		json_str(&m->j, "type", "reconnect");
		json_u64(&m->j, "round", m->rounds);
		json_bool(&m->j, "resumed", flags & DIRTY_SESSION_RESUMED);
		json_bool(&m->j, "state_lost", lost);
		json_close(&m->j, '}');
		return;
	}
	printf("  round %u: dirtyd restarted; session %s\n", m->rounds,
	       lost ? "lost: every mapped page is dirty again" : "resumed");
	fflush(stdout);
}

/*
 * A call failed with @r.  If that says the connection is gone (dirtyd
 * stopped or restarted), reconnect, resuming the session, trying for
 * m->reconnect seconds: true if the call must be made again.
 */
static bool reconnected(struct migrate *m, int r)
{
	struct dirty_session s = { .size = sizeof(s) };
	double deadline;

	if ((r != -ECONNRESET && r != -EPIPE && r != -ENOTCONN &&
	     r != -EPROTO) || interrupted || m->reconnect <= 0)
		return false;
	deadline = clock_now_s() + m->reconnect;
	while ((r = dirty_reconnect(m->d)) < 0) {
		if (clock_now_s() >= deadline || interrupted) {
			fail(m, "reconnecting to dirtyd", r);
			return false;
		}
		sleep_s(0.1);
	}
	if (dirty_session(m->d, &s) < 0)
		s.flags = 0;
	m->reconnects++;
	print_reconnect(m, s.flags);
	return true;
}

/* dirty_sync(), again after a reconnection. */
static int sync_domain(struct migrate *m, uint64_t *gen, uint64_t *pending)
{
	int r;

	do
		r = dirty_sync(m->d, m->domain_id, gen, pending);
	while (r < 0 && reconnected(m, r));
	return r < 0 ? fail(m, "syncing", r) : 0;
}

/* dirty_ranges() counting into *@pages; after a reconnection, taken
 * again from nothing (what was taken is pending again, or, the state
 * lost, every mapped page is). */
static int take_ranges(struct migrate *m, uint32_t flags, uint64_t *pages,
		       uint64_t *gen)
{
	int r;

	do {
		*pages = 0;
		r = dirty_ranges(m->d, m->domain_id, flags, count_pages,
				 pages, gen);
	} while (r < 0 && reconnected(m, r));
	return r < 0 ? fail(m, "taking ranges", r) : 0;
}

/* Take the pending ranges, copy them, acknowledge them. */
static int copy_round(struct migrate *m, uint64_t *pages)
{
	uint64_t gen;
	int r;

	r = take_ranges(m, 0, pages, &gen);
	if (r)
		return r;
	copy_pages(m, *pages);
	r = dirty_ack(m->d, m->domain_id, gen);
	/* Reconnected: that generation is pending again (or the state is
	 * lost and everything is): the next round copies it again. */
	if (r < 0 && !reconnected(m, r))
		return fail(m, "acknowledging", r);
	m->pages_copied += *pages;
	return 0;
}

/* The first ENABLED domain we may see, unless --domain said which. */
static int find_domain(struct migrate *m)
{
	struct dirty_domain **doms;
	size_t n;
	int r;

	r = dirty_list_domains(m->d, &doms, &n);
	if (r < 0)
		return fail(m, "listing domains", r);
	for (size_t i = 0; i < n; i++) {
		if (m->domain_id ? doms[i]->domain_id != m->domain_id :
		    !(doms[i]->status & DIRTY_DOMAIN_ENABLED))
			continue;
		m->domain_id = doms[i]->domain_id;
		m->mapped_bytes = doms[i]->mapped_bytes;
		free(doms);
		return 0;
	}
	free(doms);
	if (m->domain_id)
		fprintf(stderr, "dirtyd-migrate: no domain %" PRIu32
			" (or not yours)\n", m->domain_id);
	else
		fprintf(stderr, "dirtyd-migrate: no domain with tracking "
			"enabled; give --domain\n");
	return 1;
}

static void print_start(struct migrate *m)
{
	if (m->json) {
		json_open(&m->j, NULL, '{');
		json_str(&m->j, "type", "start");
		json_u64(&m->j, "domain", m->domain_id);
		json_u64(&m->j, "mapped_bytes", m->mapped_bytes);
		json_u64(&m->j, "page_size", m->page_size);
		json_double(&m->j, "bandwidth_mib_per_s", m->bandwidth / MIB);
		json_double(&m->j, "max_downtime_ms", m->max_downtime * 1e3);
		json_u64(&m->j, "max_rounds", m->max_rounds);
		json_close(&m->j, '}');
		return;
	}
	printf("migrating domain %" PRIu32 ": %.1f MiB mapped, %" PRIu64
	       "-byte pages, link %.0f MiB/s, max downtime %.0f ms\n\n",
	       m->domain_id, m->mapped_bytes / MIB, m->page_size,
	       m->bandwidth / MIB, m->max_downtime * 1e3);
	printf("%5s %12s %10s %8s %12s %10s %12s %12s\n", "round",
	       "copied_pg", "copied_MiB", "time_s", "dirty_pg/s",
	       "dirty_MiB/s", "remaining_pg", "downtime_ms");
}

struct round_report {
	unsigned int round;
	uint64_t copied;
	double seconds;
	uint64_t remaining;
};

static void print_round(struct migrate *m, const struct round_report *rr)
{
	double rate = rr->seconds > 0 ? rr->remaining / rr->seconds : 0;
	double downtime = copy_time(m, rr->remaining);

	if (m->json) {
		json_open(&m->j, NULL, '{');
		json_str(&m->j, "type", "round");
		json_u64(&m->j, "round", rr->round);
		json_u64(&m->j, "copied_pages", rr->copied);
		json_double(&m->j, "copied_mib", pages_mib(m, rr->copied));
		json_double(&m->j, "duration_s", rr->seconds);
		json_double(&m->j, "dirty_pages_per_s", rate);
		json_double(&m->j, "dirty_mib_per_s",
			    rate * (double)m->page_size / MIB);
		json_u64(&m->j, "remaining_pages", rr->remaining);
		json_double(&m->j, "estimated_downtime_ms", downtime * 1e3);
		json_close(&m->j, '}');
		return;
	}
	printf("%5u %12" PRIu64 " %10.1f %8.3f %12.0f %10.1f %12" PRIu64
	       " %12.1f\n", rr->round, rr->copied, pages_mib(m, rr->copied),
	       rr->seconds, rate, rate * (double)m->page_size / MIB,
	       rr->remaining, downtime * 1e3);
	fflush(stdout);
}

static void print_summary(struct migrate *m, bool converged,
			  uint64_t final_pages, double downtime)
{
	double total = clock_now_s() - m->started;
	uint64_t copied = m->pages_copied;

	if (m->json) {
		json_open(&m->j, NULL, '{');
		json_str(&m->j, "type", "summary");
		json_u64(&m->j, "domain", m->domain_id);
		json_bool(&m->j, "converged", converged);
		json_bool(&m->j, "interrupted", interrupted);
		json_u64(&m->j, "rounds", m->rounds);
		json_u64(&m->j, "reconnects", m->reconnects);
		json_u64(&m->j, "copied_pages", copied);
		json_double(&m->j, "copied_mib", pages_mib(m, copied));
		json_double(&m->j, "duration_s", total);
		json_u64(&m->j, "final_pages", final_pages);
		json_double(&m->j, "final_mib", pages_mib(m, final_pages));
		json_double(&m->j, "downtime_ms", downtime * 1e3);
		json_close(&m->j, '}');
		return;
	}
	printf("\nstop-and-copy: %" PRIu64 " pages (%.1f MiB), downtime "
	       "%.1f ms\n", final_pages, pages_mib(m, final_pages),
	       downtime * 1e3);
	printf("summary: %s after %u rounds; %.1f MiB copied in %.2f s; "
	       "final downtime %.1f ms; converged: %s\n",
	       interrupted ? "interrupted" :
	       converged ? "converged" : "did not converge",
	       m->rounds, pages_mib(m, copied), total, downtime * 1e3,
	       converged ? "yes" : "no");
}

static int migrate(struct migrate *m)
{
	struct dirty_subscription_info info = { .size = sizeof(info) };
	uint64_t final_pages = 0, gen;
	bool converged = false;
	double downtime;
	int r;

	/* Nothing copied yet: every mapped page pending. */
	r = dirty_subscribe(m->d, m->domain_id, 0, 0, &info);
	if (r < 0)
		return fail(m, "subscribing", r);
	m->page_size = info.page_size;
	m->started = clock_now_s();
	/* Harvest once before round 1: dirty bits the IOMMU gathered before
	 * we subscribed then land in what round 1 copies anyway, instead of
	 * inflating round 2. */
	r = sync_domain(m, NULL, NULL);
	if (r)
		return r;
	print_start(m);

	while (!interrupted) {
		struct round_report rr = { .round = ++m->rounds };
		double t = clock_now_s();

		r = copy_round(m, &rr.copied);
		if (r)
			return r;
		/* what the device dirtied while we copied */
		r = sync_domain(m, &gen, &rr.remaining);
		if (r)
			return r;
		rr.seconds = clock_now_s() - t;
		print_round(m, &rr);
		if (copy_time(m, rr.remaining) <= m->max_downtime) {
			converged = true;
			break;
		}
		if (m->rounds >= m->max_rounds)
			break;
	}

	/* Stop-and-copy: the guest is paused here; what is dirty now is
	 * what must move while it does not run. */
	if (!interrupted) {
		r = sync_domain(m, NULL, NULL);
		if (!r)
			r = take_ranges(m, DIRTY_RANGES_ACK, &final_pages,
					&gen);
		if (r)
			return r;
		m->pages_copied += final_pages;
	}
	downtime = copy_time(m, final_pages);
	print_summary(m, converged && !interrupted, final_pages, downtime);
	dirty_unsubscribe(m->d, m->domain_id);
	if (interrupted)
		return 130;
	return converged ? 0 : EXIT_NOT_CONVERGED;
}

static void usage(FILE *f)
{
	fputs("Usage: dirtyd-migrate [OPTIONS]\n"
	      "\n"
	      "Simulate the pre-copy rounds of a live migration of a domain "
	      "of dirtyd\n"
	      "whose device keeps writing (e.g. a [guest] of the simulated "
	      "host).\n"
	      "\n"
	      "  -s, --socket PATH         dirtyd's socket (default: "
	      "$DIRTYD_SOCKET, else\n"
	      "                            " DIRTY_SOCKET_DEFAULT ")\n"
	      "  -d, --domain ID           the domain (default: the first "
	      "with tracking on)\n"
	      "  -b, --bandwidth MIB_S     the link, in MiB/s (default 1250 "
	      "= 10 Gbit/s)\n"
	      "  -t, --max-downtime-ms MS  stop and copy when the rest fits "
	      "in MS\n"
	      "                            (default 300)\n"
	      "  -r, --max-rounds N        give up after N rounds (default "
	      "30)\n"
	      "  -p, --progress-ms MS      within a round whose copy takes "
	      "longer, report\n"
	      "                            progress every MS (default 1000; 0:"
	      " never)\n"
	      "  -R, --reconnect-s S       if dirtyd restarts, wait up to S "
	      "seconds for it and\n"
	      "                            resume (default 30; 0: give up at "
	      "once)\n"
	      "  -j, --json                one JSON object a line: start, "
	      "progress, each round,\n"
	      "                            summary\n"
	      "  -h, --help                this text\n"
	      "  -V, --version             the version\n"
	      "\n"
	      "Exit status: 0 converged, 1 error, 2 usage, 3 did not "
	      "converge.\n"
	      "See dirtyd-migrate(1).\n", f);
}

static int parse_positive(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 'd' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "max-downtime-ms", required_argument, NULL, 't' },
		{ "max-rounds", required_argument, NULL, 'r' },
		{ "progress-ms", required_argument, NULL, 'p' },
		{ "reconnect-s", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct migrate m = {
		.bandwidth = 1250 * MIB,
		.max_downtime = 0.3,
		.max_rounds = 30,
		.progress = 1.0,
		.reconnect = 30,
		.j = JSON_INIT(stdout),
	};
	struct sigaction sa = { .sa_handler = on_signal };
	double v;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "s:d:b:t:r:p:R:jhV", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			m.socket = optarg;
			break;
		case 'd':
			if (parse_positive(optarg, UINT32_MAX, &v) < 0 ||
			    v != floor(v))
				return usage_error("bad domain", optarg);
			m.domain_id = (uint32_t)v;
			break;
		case 'b':
			if (parse_positive(optarg, 1e9, &v) < 0)
				return usage_error("bad bandwidth", optarg);
			m.bandwidth = v * MIB;
			break;
		case 't':
			if (parse_positive(optarg, 1e9, &v) < 0)
				return usage_error("bad downtime", optarg);
			m.max_downtime = v / 1e3;
			break;
		case 'r':
			if (parse_positive(optarg, 1e6, &v) < 0 ||
			    v != floor(v))
				return usage_error("bad round count", optarg);
			m.max_rounds = (unsigned int)v;
			break;
		case 'p':
			if (!strcmp(optarg, "0")) {
				m.progress = 0;
				break;
			}
			if (parse_positive(optarg, 1e9, &v) < 0)
				return usage_error("bad progress interval",
						   optarg);
			m.progress = v / 1e3;
			break;
		case 'R':
			if (!strcmp(optarg, "0")) {
				m.reconnect = 0;
				break;
			}
			if (parse_positive(optarg, 1e6, &v) < 0)
				return usage_error("bad reconnect time",
						   optarg);
			m.reconnect = v;
			break;
		case 'j':
			m.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dirtyd-migrate %s\n", DIRTYD_VERSION);
			return 0;
		default:
			fputs("Try 'dirtyd-migrate --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = dirty_connect(m.socket, DIRTY_CONNECT_NO_EVENTS, &m.d);
	if (r < 0) {
		const char *env = getenv(DIRTY_SOCKET_ENV);

		fail(&m, "connecting to dirtyd", r);
		connect_hint(stderr, m.socket ? m.socket :
			     env && *env ? env : DIRTY_SOCKET_DEFAULT, r);
		return 1;
	}
	r = find_domain(&m);
	if (!r)
		r = migrate(&m);
	dirty_close(m.d);
	return r;
}
