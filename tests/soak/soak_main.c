// SPDX-License-Identifier: MIT
/*
 * dirtyd_soak: the load soak.  Starts the real dirtyd on the simulated
 * host (a configuration of N guests, each a domain with simulated DMA and
 * tracking on), drives it with many clients for --duration seconds,
 * samples it every second into soak.csv, and ends with summary.txt and a
 * verdict: exit 0 when every check passed, 1 when one failed, 2 on a usage
 * or setup error.  See tests/soak/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tests/soak/soak.h"

#define READY_TIMEOUT_MS 60000
#define FDS_SETTLE_MS 10000
#define TICK_MS 5

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dirtyd_soak --dirtyd PATH [options]\n"
		"  --duration S       seconds of load (60)\n"
		"  --clients N        concurrent clients (256)\n"
		"  --domains N        domains, one simulated guest each (16)\n"
		"  --subscriptions N  domains each client subscribes to "
		"(1: 16 clients a domain)\n"
		"  --domain-size SIZE bytes mapped per domain (1G)\n"
		"  --backing 4k|2m|1g the sim's backing page size (2m)\n"
		"  --interval-ms MS   every client's harvest interval (10)\n"
		"  --dma-rate N       DMA pages/s per domain (2000)\n"
		"  --min-round-hz HZ  fail below this mean rounds/s per "
		"domain (0: report only)\n"
		"  --rss-tolerance P  last third's VmRSS max over the "
		"middle's, %% (5)\n"
		"  --seed N           the clients' random choices (1)\n"
		"  --resume-grace S   how long dirtyd keeps a closed "
		"session (5)\n"
		"  --log-level L      dirtyd's (notice; debug says what "
		"each session did)\n"
		"  --out DIR          soak.csv, summary.txt, dirtyd.log "
		"(a new /tmp/dirtyd-soak-* by default)\n");
}

static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 0);

	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	case 't': case 'T': n <<= 40; end++; break;
	default: break;
	}
	if (end == v || *end || !n)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_opts(struct soak_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dirtyd", required_argument, NULL, 'b' },
		{ "duration", required_argument, NULL, 'd' },
		{ "clients", required_argument, NULL, 'c' },
		{ "domains", required_argument, NULL, 'n' },
		{ "domain-size", required_argument, NULL, 's' },
		{ "subscriptions", required_argument, NULL, 'u' },
		{ "backing", required_argument, NULL, 'k' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "dma-rate", required_argument, NULL, 'r' },
		{ "min-round-hz", required_argument, NULL, 'z' },
		{ "rss-tolerance", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'e' },
		{ "resume-grace", required_argument, NULL, 'g' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;

	*o = (struct soak_opts){
		.duration_s = 60, .clients = 256, .domains = 16,
		.domain_size = 1ULL << 30, .backing = "2m",
		.interval_ms = 10, .dma_rate = 2000, .min_round_hz = 0,
		.subs_per_client = 1,
		.rss_tolerance = 5, .seed = 1, .resume_grace = 5,
		.log_level = "notice",
	};
	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 'b': o->dirtyd = optarg; break;
		case 'd': o->duration_s = strtoul(optarg, NULL, 0); break;
		case 'c': o->clients = strtoul(optarg, NULL, 0); break;
		case 'n': o->domains = strtoul(optarg, NULL, 0); break;
		case 's':
			if (parse_size(optarg, &o->domain_size) < 0) {
				fprintf(stderr, "--domain-size %s: a size, "
					"e.g. 1G\n", optarg);
				return -EINVAL;
			}
			break;
		case 'u': o->subs_per_client = strtoul(optarg, NULL, 0); break;
		case 'k': o->backing = optarg; break;
		case 'i': o->interval_ms = strtoul(optarg, NULL, 0); break;
		case 'r': o->dma_rate = strtoul(optarg, NULL, 0); break;
		case 'z': o->min_round_hz = strtod(optarg, NULL); break;
		case 't': o->rss_tolerance = strtod(optarg, NULL); break;
		case 'e': o->seed = strtoul(optarg, NULL, 0); break;
		case 'g': o->resume_grace = strtoul(optarg, NULL, 0); break;
		case 'l': o->log_level = optarg; break;
		case 'o': o->out_dir = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (!o->dirtyd || optind != argc || o->duration_s < 6 ||
	    o->clients < 8 || o->clients > 4096 || !o->domains ||
	    o->domains > SOAK_MAX_DOMAINS || !o->interval_ms ||
	    !o->subs_per_client || o->subs_per_client > o->domains ||
	    !o->resume_grace) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* The configuration after [daemon] backend, socket and log_level. */
static char *config_body(const struct soak *s)
{
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);

	if (!f)
		return NULL;
	/* room for the churners' reconnections in transit */
	fprintf(f, "max_clients = %u\nmax_subscriptions = %u\n"
		/* parked sessions of leavers expire within the run; every
		 * client is one uid, and under a slow loop (4096
		 * subscriptions) more than the default 64 are parked at
		 * once: the oldest would be dropped, a resume refused */
		"resume_grace = %u\nmax_parked = %u\n\n"
		"[sim]\nbacking_page_size = %s\ndevices =",
		s->o.clients + 64, s->o.domains, s->o.resume_grace,
		s->o.clients, s->o.backing);
	for (unsigned int i = 0; i < s->o.domains; i++)
		fprintf(f, "%s sim%u:dirty", i ? "," : "", i);
	fprintf(f, "\n");
	for (unsigned int i = 0; i < s->o.domains; i++)
		fprintf(f, "\n[guest g%u]\ndevice = sim%u\nsize = %llu\n"
			"dma = uniform\ndma_rate = %u\nseed = %u\n", i, i,
			(unsigned long long)s->o.domain_size, s->o.dma_rate,
			s->o.seed * 1000 + i + 1);
	if (fclose(f)) {
		free(body);
		return NULL;
	}
	return body;
}

/* Start dirtyd (tests/harness) and wait for READY=1. */
static int start_daemon(struct soak *s, struct harness *h)
{
	struct harness_opts o = { .bin = s->o.dirtyd,
				  .log_level = s->o.log_level,
				  .log = s->log,
				  .start_ms = READY_TIMEOUT_MS };
	char *body = config_body(s);
	int r;

	if (!body)
		return -ENOMEM;
	o.body = body;
	r = harness_init(h, &o);
	free(body);
	if (r < 0)
		return r;
	if (strlen(h->sock) >= sizeof(s->sock))
		return -ENAMETOOLONG;
	strcpy(s->sock, h->sock);
	r = harness_start(h);
	if (r == -ECHILD)
		fprintf(stderr, "soak: dirtyd exited at start (status %#x); "
			"its log: %s\n", h->wstatus, s->log);
	if (r < 0)
		return r;
	s->pid = h->pid;
	return 0;
}

/*
 * The daemon's descriptors, the fewest of 5 looks 2 ms apart: sd_notify()
 * opens a socket for each message it sends (STATUS= from time to time)
 * and closes it at once, and one look may catch it.  A leaked descriptor
 * stays, and is in every look.
 */
static unsigned int daemon_fds(const struct soak *s)
{
	unsigned int fewest = ~0u;

	for (int i = 0; i < 5; i++) {
		struct soak_proc p;

		if (soak_proc_read(s->pid, &p) < 0)
			return 0;
		if (p.fds < fewest)
			fewest = p.fds;
		usleep(2000);
	}
	return fewest;
}

/* The load: clients and samples until the duration is over. */
static void run(struct soak *s, struct soak_sampler *sp)
{
	struct epoll_event evs[512];
	uint64_t start = soak_now_ns();
	uint64_t end = start + s->o.duration_s * 1000000000ULL;
	uint64_t next_sample = start + 1000000000ULL;

	for (;;) {
		uint64_t now = soak_now_ns();
		int n;

		if (now >= end)
			break;
		n = epoll_wait(s->epfd, evs, 512, TICK_MS);
		for (int i = 0; i < n; i++)
			soak_client_event(s, evs[i].data.ptr, evs[i].events);
		now = soak_now_ns();
		soak_clients_tick(s, now);
		if (now >= next_sample) {
			soak_sample(sp, now);
			next_sample += 1000000000ULL;
		}
	}
}

int main(int argc, char **argv)
{
	struct soak s = { .pid = 0 };
	struct harness dirtyd = { 0 };
	struct soak_sampler *sp = NULL;
	char path[256];
	FILE *csv = NULL, *sum = NULL;
	unsigned int base_fds, final_fds;
	const char *out;
	int status = -1, fails = 0, r;
	uint64_t end;

	if (parse_opts(&s.o, argc, argv) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	strcpy(s.dir, "/tmp/dirtyd-soak-XXXXXX");
	if (!mkdtemp(s.dir)) {
		perror("soak: mkdtemp");
		return 2;
	}
	out = s.o.out_dir ? s.o.out_dir : s.dir;
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "soak: mkdir %s: %s\n", out, strerror(errno));
		return 2;
	}
	snprintf(s.log, sizeof(s.log), "%s/dirtyd.log", out);
	r = start_daemon(&s, &dirtyd);
	if (r < 0) {
		fprintf(stderr, "soak: starting dirtyd failed: %s\n",
			strerror(-r));
		goto fail;
	}
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	snprintf(path, sizeof(path), "%s/soak.csv", out);
	csv = fopen(path, "w");
	if (s.epfd < 0 || !csv || soak_clients_init(&s) < 0) {
		fprintf(stderr, "soak: setting up failed: %s\n",
			strerror(errno));
		goto fail;
	}
	base_fds = daemon_fds(&s);
	sp = soak_sampler_new(&s, csv);
	if (!sp)
		goto fail;
	fprintf(stderr, "soak: dirtyd pid %d, %u descriptors before any "
		"client; %u s of load; results in %s\n", (int)s.pid, base_fds,
		s.o.duration_s, out);

	run(&s, sp);

	/* every client leaves: the descriptors must come back exactly */
	soak_clients_close(&s);
	end = soak_now_ns() + FDS_SETTLE_MS * 1000000ULL;
	while ((final_fds = daemon_fds(&s)) != base_fds &&
	       soak_now_ns() < end)
		usleep(50000);
	status = harness_fini(&dirtyd);
	if (status == -ETIMEDOUT)
		fprintf(stderr, "soak: dirtyd ignored SIGTERM for 20 s\n");
	s.pid = 0;
	snprintf(path, sizeof(path), "%s/summary.txt", out);
	sum = fopen(path, "w");
	fails = soak_verdict(sp, stdout, base_fds, final_fds, status);
	if (sum) {
		soak_verdict(sp, sum, base_fds, final_fds, status);
		fclose(sum);
	}
	fclose(csv);
	printf("soak: time series %s/soak.csv, summary %s/summary.txt, "
	       "dirtyd's log %s\n", out, out, s.log);
	soak_sampler_free(sp);
	soak_clients_free(&s);
	rmdir(s.dir);
	return fails ? 1 : 0;
fail:
	harness_fini(&dirtyd);
	soak_sampler_free(sp);
	soak_clients_free(&s);
	return 2;
}
