// SPDX-License-Identifier: MIT
/*
 * map_stall - how long one client's MAP keeps dirtyd from answering
 * another client.
 *
 *   map_stall DIRTYD [-s SUBS] [-g GIB,...] [-p PROBE_GIB] [-m MAPS]
 *             [-l LEVEL]
 *
 * Starts DIRTYD (the binary) on the sim backend (4 KiB backing pages, two
 * dirty-capable devices) with a NOTIFY_SOCKET, so that subscriber sets are
 * durable (pending and flight in the bitmap memfd) as under systemd.
 * Client A creates a tracking domain on sim0 and SUBS sessions subscribe
 * to it (not CLEAN: every mapped page pending, the most a re-layout has to
 * move).  Client B has a domain of its own on sim1 with 1 GiB mapped.
 *
 * With -m, A first makes MAPS mappings of 2 MiB each (above 512 GiB of
 * IOVA): what the metadata committed at each change holds grows with
 * them, not with the bytes mapped.
 *
 * For each size in -g (default 64,256,1024, ascending): A maps more, in
 * pieces of at most 64 GiB above 1 TiB of IOVA, until that much is
 * mapped ("bulk": each piece is a MAP whose kernel part is O(piece)); then
 * A maps PROBE_GIB (default 1) at IOVA 0, below everything mapped (the
 * worst case for a layout sorted by IOVA: every range after it moves),
 * and unmaps it again.  During each of A's MAPs, B sends DMA_WRITE of one
 * page of its domain, one at a time, and times each answer.
 *
 * Per line: the size mapped before the MAP, what the MAP was, its wall
 * time, how many answers B got meanwhile, the longest B waited for one
 * (and the 99th percentile): the longest the event loop was blocked,
 * give or take a scheduler
 * tick (on a busy machine, more: the answers wait for a CPU too; the
 * first line, B alone for two seconds with no MAP, is that baseline).  With
 * -l debug, dirtyd logs what each change cost on the loop and off it
 * ("ms on it"); the log stays in the directory printed at the end.
 * Timing only: nothing here is a test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/proto.h"

#define GIB (1ULL << 30)
#define MAX_SUBS 64

struct client {
	int fd;
	uint64_t next_id;
	uint8_t buf[PROTO_MAX_MSG];
};

static char dir[64], sock_path[128];
static const char *log_level = "notice";
static pid_t daemon_pid;

/* B's waits during one measurement, for the 99th percentile. */
static uint64_t *waits;
static size_t nwaits, capwaits;

static void wait_add(uint64_t us)
{
	if (nwaits == capwaits) {
		capwaits = capwaits ? 2 * capwaits : 4096;
		waits = realloc(waits, capwaits * sizeof(*waits));
		if (!waits)
			abort();
	}
	waits[nwaits++] = us;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The 99th percentile of the waits so far (then forgotten), ms. */
static double wait_p99(void)
{
	double p;

	if (!nwaits)
		return 0;
	qsort(waits, nwaits, sizeof(*waits), cmp_u64);
	p = waits[(nwaits - 1) * 99 / 100] / 1e3;
	nwaits = 0;
	return p;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	exit(1);
}

static void cl_connect(struct client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->next_id = 1;
	strcpy(sa.sun_path, sock_path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa,
				 sizeof(sa)) < 0)
		die("connect %s: %s", sock_path, strerror(errno));
}

static uint64_t cl_send(struct client *c, struct proto_msg *m)
{
	int n;

	m->id = c->next_id++;
	n = proto_encode(m, c->buf, sizeof(c->buf));
	if (n < 0 || send(c->fd, c->buf, (size_t)n, MSG_NOSIGNAL) != n)
		die("sending %s failed", proto_type_name(m->type));
	return m->id;
}

/* The next packet answering @id (events skipped); 0 or -err. */
static int cl_wait(struct client *c, uint64_t id, struct proto_msg *m)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

		if (n <= 0)
			die("dirtyd closed the connection");
		if (proto_decode(c->buf, (size_t)n, m) < 0)
			die("undecodable packet");
		if (m->id != id)
			continue;
		if (m->type == PROTO_ERROR)
			return -(int)m->error.err;
		if (!(m->flags & PROTO_F_MORE))
			return 0;
	}
}

static int cl_call(struct client *c, struct proto_msg *m)
{
	uint64_t id = cl_send(c, m);

	return cl_wait(c, id, m);
}

static void cl_hello(struct client *c)
{
	struct proto_msg m = {
		.type = PROTO_HELLO,
		.hello = { .major = PROTO_VERSION_MAJOR,
			   .minor = PROTO_VERSION_MINOR },
	};

	if (cl_call(c, &m))
		die("HELLO failed");
}

static uint32_t cl_create(struct client *c, const char *dev)
{
	struct proto_msg m = {
		.type = PROTO_CREATE_DOMAIN,
		.create_domain = { .flags = PROTO_CREATE_TRACKING },
	};

	snprintf(m.create_domain.device, PROTO_NAME_MAX, "%s", dev);
	if (cl_call(c, &m))
		die("CREATE_DOMAIN %s failed", dev);
	return m.create_domain_reply.domain_id;
}

static struct proto_msg map_msg(uint16_t type, uint32_t dom, uint64_t iova,
				uint64_t len)
{
	return (struct proto_msg){
		.type = type,
		.map = { .domain_id = dom, .iova = iova, .length = len,
			 .flags = type == PROTO_MAP ? PROTO_MAP_READABLE |
				  PROTO_MAP_WRITEABLE : 0 },
	};
}

static void cl_domain_op(struct client *c, uint16_t type, uint32_t dom)
{
	struct proto_msg m = { .type = type, .domain_op = { .domain_id = dom } };
	int r = cl_call(c, &m);

	if (r)
		die("%s failed: %s", proto_type_name(type), strerror(-r));
}

/*
 * A sends @type over [@iova, @iova + @len) of @dom; B loops DMA_WRITEs on
 * its domain until A's answer.  Prints one line.
 */
static void measure(struct client *a, struct client *b, uint32_t dom,
		    uint32_t bdom, uint16_t type, uint64_t iova, uint64_t len,
		    uint64_t mapped, const char *what)
{
	struct proto_msg m = map_msg(type, dom, iova, len), r;
	uint64_t t0 = now_us(), worst = 0, answers = 0, id;
	bool done = false;
	int err = 0;

	id = cl_send(a, &m);
	while (!done) {
		struct pollfd p = { .fd = a->fd, .events = POLLIN };
		struct proto_msg w = map_msg(PROTO_DMA_WRITE, bdom, GIB, 4096);
		uint64_t t = now_us(), bid = cl_send(b, &w);

		if (cl_wait(b, bid, &w))
			die("B's DMA_WRITE failed");
		t = now_us() - t;
		worst = t > worst ? t : worst;
		wait_add(t);
		answers++;
		if (poll(&p, 1, 0) == 1) {
			err = cl_wait(a, id, &r);
			done = true;
		}
	}
	if (err)
		die("%s failed: %s", what, strerror(-err));
	printf("%8" PRIu64 " GiB  %-22s %9.1f ms  %8" PRIu64 " answers to "
	       "B, longest wait %8.2f ms (99%%: %.2f)\n",
	       (uint64_t)(mapped / GIB), what, (now_us() - t0) / 1e3, answers,
	       worst / 1e3, wait_p99());
	fflush(stdout);
}

static void start_daemon(const char *bin)
{
	char conf[128], notify[128], log[128], buf[4096];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int nfd;
	FILE *f;

	strcpy(dir, "/tmp/map-stall-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(sock_path, sizeof(sock_path), "%s/dirtyd.sock", dir);
	snprintf(conf, sizeof(conf), "%s/dirtyd.conf", dir);
	snprintf(notify, sizeof(notify), "%s/notify", dir);
	snprintf(log, sizeof(log), "%s/dirtyd.log", dir);
	f = fopen(conf, "w");
	if (!f)
		die("%s: %s", conf, strerror(errno));
	fprintf(f, "[daemon]\nbackend = sim\nsocket = %s\nlog_level = %s\n"
		"max_subscriptions = 64\nmax_clients_per_uid = 128\n"
		"[sim]\nbacking_page_size = 4k\n"
		"devices = sim0:dirty, sim1:dirty\n", sock_path, log_level);
	fclose(f);
	strcpy(sa.sun_path, notify);
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (nfd < 0 || bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("notify socket: %s", strerror(errno));
	daemon_pid = fork();
	if (daemon_pid < 0)
		die("fork: %s", strerror(errno));
	if (!daemon_pid) {
		FILE *lf = fopen(log, "w");

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lf) {
			dup2(fileno(lf), 1);
			dup2(fileno(lf), 2);
		}
		setenv("NOTIFY_SOCKET", notify, 1);
		unsetenv("WATCHDOG_USEC");
		unsetenv("LISTEN_FDS");
		execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		ssize_t n = recv(nfd, buf, sizeof(buf) - 1, 0);

		if (n < 0)
			die("notify: %s", strerror(errno));
		buf[n] = '\0';
		if (strstr(buf, "READY=1"))
			break;
	}
	/* as the tests do: nobody reads it from now on, so that a full
	 * queue never blocks sd_notify() */
	close(nfd);
	unlink(notify);
}

int main(int argc, char **argv)
{
	struct client a, b, subs[MAX_SUBS];
	unsigned int nsubs = 1;
	uint64_t sizes[16] = { 64, 256, 1024 }, probe = 1, nmaps = 0;
	size_t nsizes = 3;
	uint64_t mapped = 0, next = 1024 * GIB;
	uint32_t dom, bdom;
	int opt, status;

	while ((opt = getopt(argc, argv, "s:g:p:m:l:")) != -1) {
		switch (opt) {
		case 's':
			nsubs = (unsigned int)atoi(optarg);
			if (nsubs > MAX_SUBS)
				die("at most %d subscribers", MAX_SUBS);
			break;
		case 'g':
			nsizes = 0;
			for (char *t = strtok(optarg, ","); t && nsizes < 16;
			     t = strtok(NULL, ","))
				sizes[nsizes++] = strtoull(t, NULL, 0);
			break;
		case 'p':
			probe = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			nmaps = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			log_level = optarg;
			break;
		default:
			die("usage: map_stall DIRTYD [-s SUBS] [-g GIB,...] "
			    "[-p PROBE_GIB] [-m MAPS] [-l LEVEL]");
		}
	}
	if (optind != argc - 1)
		die("usage: map_stall DIRTYD [-s SUBS] [-g GIB,...] "
		    "[-p PROBE_GIB] [-m MAPS] [-l LEVEL]");
	start_daemon(argv[optind]);

	cl_connect(&a);
	cl_hello(&a);
	dom = cl_create(&a, "sim0");
	cl_domain_op(&a, PROTO_TRACK_START, dom);
	for (unsigned int i = 0; i < nsubs; i++) {
		struct proto_msg m = {
			.type = PROTO_SUBSCRIBE,
			.subscribe = { .domain_id = dom },
		};

		cl_connect(&subs[i]);
		cl_hello(&subs[i]);
		if (cl_call(&subs[i], &m))
			die("SUBSCRIBE failed");
	}
	cl_connect(&b);
	cl_hello(&b);
	bdom = cl_create(&b, "sim1");
	{
		struct proto_msg m = map_msg(PROTO_MAP, bdom, GIB, GIB);

		if (cl_call(&b, &m))
			die("B's MAP failed");
	}
	cl_domain_op(&b, PROTO_TRACK_START, bdom);
	for (uint64_t i = 0; i < nmaps; i++) {
		struct proto_msg m = map_msg(PROTO_MAP, dom,
					     512 * GIB + i * 4 * (GIB >> 10),
					     2 * (GIB >> 10));

		if (cl_call(&a, &m))
			die("small MAP %" PRIu64 " failed", i);
		mapped += 2 * (GIB >> 10);
	}
	printf("%u subscribers of A's domain (durable, not CLEAN), %" PRIu64
	       " small mappings; sim, 4 KiB pages\n", nsubs, nmaps);
	printf("%12s  %-22s %12s  %s\n", "mapped", "A's request", "wall",
	       "B meanwhile");
	{
		uint64_t t0 = now_us(), worst = 0, answers = 0;

		while (now_us() - t0 < 2000000) {
			struct proto_msg w = map_msg(PROTO_DMA_WRITE, bdom,
						     GIB, 4096);
			uint64_t t = now_us(), bid = cl_send(&b, &w);

			if (cl_wait(&b, bid, &w))
				die("B's DMA_WRITE failed");
			t = now_us() - t;
			worst = t > worst ? t : worst;
			wait_add(t);
			answers++;
		}
		printf("%12s  %-22s %9.1f ms  %8" PRIu64 " answers to B, "
		       "longest wait %8.2f ms (99%%: %.2f)\n", "-",
		       "(none: B alone)", (now_us() - t0) / 1e3, answers,
		       worst / 1e3, wait_p99());
	}

	for (size_t i = 0; i < nsizes; i++) {
		char what[64];

		while (mapped < sizes[i] * GIB) {
			uint64_t piece = sizes[i] * GIB - mapped;

			if (piece > 64 * GIB)
				piece = 64 * GIB;
			snprintf(what, sizeof(what), "MAP %" PRIu64 " GiB (bulk)",
				 (uint64_t)(piece / GIB));
			measure(&a, &b, dom, bdom, PROTO_MAP, next, piece,
				mapped, what);
			next += piece;
			mapped += piece;
		}
		snprintf(what, sizeof(what), "MAP %" PRIu64 " GiB at 0",
			 probe);
		measure(&a, &b, dom, bdom, PROTO_MAP, 0, probe * GIB, mapped,
			what);
		snprintf(what, sizeof(what), "UNMAP %" PRIu64 " GiB at 0",
			 probe);
		measure(&a, &b, dom, bdom, PROTO_UNMAP, 0, probe * GIB,
			mapped + probe * GIB, what);
	}
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, &status, 0);
	printf("dirtyd's log: %s/dirtyd.log\n", dir);
	return 0;
}
