// SPDX-License-Identifier: MIT
/*
 * Bounded buffers: a client that subscribes with a 1 ms period and events,
 * asks for ranges and then never reads cannot make dirtyd grow, however
 * many rounds run (VmRSS is measured before and after thousands of rounds
 * of a guest under DMA load), and other clients are served meanwhile.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

/* Allowed growth of the daemon's RSS while the reader stalls. */
#define MAX_GROWTH_KIB (8 * 1024)
#define WARMUP_ROUNDS 200
#define ROUNDS 1000
#define MAX_SECONDS 20

static struct harness dd;

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

static uint64_t generation(struct itest_client *c, uint32_t dom)
{
	struct proto_msg m = { .type = PROTO_STATS, .domain_op = { dom } }, r;
	struct proto_stats st;

	cr_assert_eq(itest_call(c, &m, &r), 0, "STATS: %s", c->text);
	cr_assert_eq(r.list.count, 1);
	proto_stats_at(&r, 0, &st);
	return st.generation;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait until domain @dom has completed @rounds rounds. */
static uint64_t wait_rounds(struct itest_client *c, uint32_t dom,
			    uint64_t rounds, double deadline)
{
	uint64_t g;

	while ((g = generation(c, dom)) < rounds && now_s() < deadline)
		usleep(20000);
	return g;
}

Test(slowreader, rss_stays_bounded, .fini = stop, .timeout = 120)
{
	struct itest_client slow, mon;
	struct proto_msg m;
	uint64_t rss0, rss1, g0, g1;
	unsigned int sent;
	double deadline;

	itest_start(&dd, "[sim]\ndevices = sim0:dirty\n"
		    "[guest busy]\ndevice = sim0\nsize = 1G\niova = 4G\n"
		    "dma = uniform\ndma_rate = 50000\n");
	cr_assert_eq(itest_connect(&dd, &mon), 0);
	itest_hello(&mon, 0, 0, NULL);

	/* the slow client: every page pending, 1 ms rounds, events; asks
	 * for the ranges and many other things, and reads nothing */
	cr_assert_eq(itest_connect(&dd, &slow), 0);
	itest_hello(&slow, PROTO_FEATURES_ALL, 0, NULL);
	cr_assert_eq(itest_subscribe(&slow, 1, 1, 0, NULL), 0);
	m = (struct proto_msg){ .type = PROTO_GET_RANGES,
				.get_ranges = { .domain_id = 1 } };
	itest_send(&slow, &m);
	/* until its socket is full: dirtyd stopped reading it */
	for (sent = 0;; sent++) {
		uint8_t buf[64];
		int n;

		cr_assert_lt(sent, 100000, "dirtyd reads a client that does "
			     "not read its replies");
		m = (struct proto_msg){
			.type = sent % 2 ? PROTO_SYNC : PROTO_LIST_DEVICES,
			.id = sent + 2,
			.domain_op = { 1 },
		};
		n = proto_encode(&m, buf, sizeof(buf));
		cr_assert_gt(n, 0);
		if (send(slow.fd, buf, n, MSG_DONTWAIT) < 0) {
			cr_assert_eq(errno, EAGAIN, "send: %s",
				     strerror(errno));
			break;
		}
	}

	deadline = now_s() + MAX_SECONDS;
	g0 = wait_rounds(&mon, 1, WARMUP_ROUNDS, deadline);
	rss0 = itest_vmrss_kib(&dd);
	g1 = wait_rounds(&mon, 1, g0 + ROUNDS, deadline);
	rss1 = itest_vmrss_kib(&dd);
	cr_log_info("rounds %" PRIu64 " .. %" PRIu64 ": VmRSS %" PRIu64 " -> %"
		    PRIu64 " KiB", g0, g1, rss0, rss1);
	fprintf(stderr, "slowreader: %u requests unread; rounds %" PRIu64
		" .. %" PRIu64 ": VmRSS %" PRIu64 " -> %" PRIu64 " KiB\n", sent,
		g0, g1, rss0, rss1);
	cr_assert_geq(g1 - g0, 500, "only %" PRIu64 " rounds in %d s",
		      g1 - g0, MAX_SECONDS);
	cr_assert_lt(rss1, rss0 + MAX_GROWTH_KIB, "VmRSS grew from %" PRIu64
		     " to %" PRIu64 " KiB over %" PRIu64 " rounds", rss0, rss1,
		     g1 - g0);

	/* the monitor was answered all along; the domain still works */
	cr_assert_eq(itest_list_domains(&mon, NULL, 0), 1);
	itest_close(&slow);
	itest_close(&mon);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}
