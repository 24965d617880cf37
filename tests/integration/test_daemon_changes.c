// SPDX-License-Identifier: MIT
/*
 * A domain's changes run off the event loop (daemon/domain/domain_change.c): no
 * user stalls another.
 *
 *   map_leaves_others_served    while client A maps 256 GiB (4 KiB pages:
 *                               about a second of the sim's page tables),
 *                               client B is answered on its own domain
 *                               again and again; a GET_RANGES on A's domain
 *                               waits for the MAP and sees it whole; A's
 *                               subscribers lose no page written before,
 *                               during or after it, and a generation in
 *                               flight across it stays whole
 *   stop_during_map             SIGTERM while a MAP runs: dirtyd waits for
 *                               it and exits 0
 *   sigusr2_during_map          SIGUSR2 (an upgrade) while a MAP runs: the
 *                               kernel's part is waited for, the MAP never
 *                               answered, and the successor undoes it (its
 *                               intent); the store and every other domain
 *                               are kept
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

#define PG 4096ULL
#define GIB (1ULL << 30)

/* Answers B must get while A's MAP runs: on a loop that the MAP blocks,
 * B gets one or two (one may be answered before the MAP starts and one
 * after it ends); the sim takes about a second for 256 GiB, in which an
 * unblocked loop answers thousands. */
#define MIN_ANSWERS 20

static struct harness dd;

static void stop(void)
{
	itest_stop(&dd);
}

/* Pages written by DMA_WRITE, to compare with what is reported. */
struct written {
	uint64_t pages[64];
	size_t n;
};

static void write_page(struct itest_client *c, uint32_t dom, uint64_t iova,
		       struct written *w)
{
	cr_assert_eq(itest_map(c, PROTO_DMA_WRITE, dom, iova, PG), 0, "%s",
		     c->text);
	if (w) {
		cr_assert_lt(w->n, sizeof(w->pages) / sizeof(w->pages[0]));
		w->pages[w->n++] = iova / PG;
	}
}

/* The pages of @n record sets, as runs. */
static void want_of(struct itest_runs *want, const struct written *w,
		    size_t n)
{
	uint64_t pages[256];
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < w[i].n; j++)
			pages[k++] = w[i].pages[j];
	itest_runs_free(want);
	itest_runs_from_pages(want, pages, k);
}

static bool readable(const struct itest_client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

Test(changes, map_leaves_others_served, .fini = stop)
{
	/* A's first mapping lies above the new one: the MAP moves its bits
	 * (the plan is laid out by IOVA) */
	const uint64_t old_iova = 512 * GIB, new_len = 256 * GIB;
	struct proto_create_domain_reply ca, cb;
	struct itest_client a, b, clean, all;
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	struct written before = { 0 }, unsynced = { 0 }, after = { 0 };
	struct proto_msg m, r;
	uint64_t map_id, ranges_id = 0, g1;
	unsigned int answers = 0;
	bool sent_ranges = false;

	itest_start(&dd, "[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty, sim1:dirty\n");
	cr_assert_eq(itest_connect(&dd, &a), 0);
	cr_assert_eq(itest_connect(&dd, &b), 0);
	cr_assert_eq(itest_connect(&dd, &clean), 0);
	cr_assert_eq(itest_connect(&dd, &all), 0);
	itest_hello(&a, 0, 0, NULL);
	itest_hello(&b, 0, 0, NULL);
	itest_hello(&clean, PROTO_FEAT_RANGES_RAW, 0, NULL);
	itest_hello(&all, PROTO_FEAT_RANGES_RAW, 0, NULL);

	cr_assert_eq(itest_create(&a, "sim0", PROTO_CREATE_TRACKING, &ca), 0);
	cr_assert_eq(itest_map(&a, PROTO_MAP, ca.domain_id, old_iova, GIB), 0,
		     "%s", a.text);
	cr_assert_eq(itest_domain_op(&a, PROTO_TRACK_START, ca.domain_id), 0);
	cr_assert_eq(itest_create(&b, "sim1", PROTO_CREATE_TRACKING, &cb), 0);
	cr_assert_eq(itest_map(&b, PROTO_MAP, cb.domain_id, GIB, GIB), 0,
		     "%s", b.text);
	cr_assert_eq(itest_domain_op(&b, PROTO_TRACK_START, cb.domain_id), 0);
	/* one subscriber that starts clean (exactly what is written is
	 * reported), one that starts with every page pending */
	cr_assert_eq(itest_subscribe(&clean, ca.domain_id, 0,
				     PROTO_SUBSCRIBE_CLEAN, NULL), 0);
	cr_assert_eq(itest_subscribe(&all, ca.domain_id, 0, 0, NULL), 0);

	/* written and taken: generation g1 in flight across the MAP */
	for (int i = 0; i < 5; i++)
		write_page(&a, ca.domain_id, old_iova + (uint64_t)i * 977 * PG,
			   &before);
	cr_assert_eq(itest_sync(&a, ca.domain_id, NULL), 0);
	cr_assert_eq(itest_get_ranges(&clean, ca.domain_id, 0, &got, &info),
		     0);
	g1 = info.generation;
	want_of(&want, &before, 1);
	itest_runs_assert_eq(&got, &want, "before the MAP");
	/* written and harvested: pending across it */
	for (int i = 0; i < 5; i++)
		write_page(&a, ca.domain_id,
			   old_iova + (uint64_t)(i * 1021 + 3) * PG, &before);
	cr_assert_eq(itest_sync(&a, ca.domain_id, NULL), 0);
	/* written, not harvested: in the IOMMU's bits across it */
	for (int i = 0; i < 5; i++)
		write_page(&a, ca.domain_id,
			   old_iova + GIB - (uint64_t)(i * 131 + 1) * PG,
			   &unsynced);

	/* A maps 256 GiB below its mapping; B keeps asking meanwhile */
	m = (struct proto_msg){
		.type = PROTO_MAP,
		.map = { .domain_id = ca.domain_id, .iova = 0,
			 .length = new_len,
			 .flags = PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE },
	};
	itest_send(&a, &m);
	map_id = m.id;
	for (;;) {
		bool done = readable(&a);

		write_page(&b, cb.domain_id, GIB + (answers % 64) * PG, NULL);
		if (done)
			break;
		answers++;
		/* the MAP was read before B's second answer: A sent it
		 * before B's first request */
		if (answers == 2) {
			m = (struct proto_msg){
				.type = PROTO_GET_RANGES,
				.get_ranges = { .domain_id = ca.domain_id },
			};
			itest_send(&all, &m);
			ranges_id = m.id;
			sent_ranges = true;
		}
	}
	cr_assert_eq(itest_wait(&a, map_id, &r), 0, "MAP: %s", a.text);
	cr_assert_eq(r.type, PROTO_OK);
	cr_assert_geq(answers, MIN_ANSWERS, "B got %u answers while A's MAP "
		      "ran: the MAP held the event loop", answers);
	fprintf(stderr, "B got %u answers while A mapped 256 GiB\n", answers);

	/* the GET_RANGES sent during the MAP waited for it: it holds the
	 * whole new range (not CLEAN) besides the old one */
	cr_assert(sent_ranges);
	cr_assert_eq(itest_read_ranges(&all, ranges_id, ca.domain_id, &got,
				       &info), 0, "%s", all.text);
	itest_runs_free(&want);
	itest_runs_add(&want, 0, new_len / PG);
	itest_runs_add(&want, old_iova / PG, GIB / PG);
	itest_runs_assert_eq(&got, &want, "the subscriber that was not CLEAN");
	cr_assert_eq(itest_ack(&all, ca.domain_id, info.generation), 0);

	/* after the MAP: both ranges written */
	for (int i = 0; i < 5; i++) {
		write_page(&a, ca.domain_id, (uint64_t)i * 7 * GIB + 5 * PG,
			   &after);
		write_page(&a, ca.domain_id,
			   old_iova + (uint64_t)(i * 4099 + 11) * PG, &after);
	}
	cr_assert_eq(itest_sync(&a, ca.domain_id, NULL), 0);

	/* the CLEAN one: g1 put back (RESEND) and everything since, not a
	 * page lost nor one more */
	{
		struct written w[] = { before, unsynced, after };

		cr_assert_eq(itest_get_ranges(&clean, ca.domain_id,
					      PROTO_RANGES_RESEND, &got,
					      &info), 0, "%s", clean.text);
		want_of(&want, w, 3);
		itest_runs_assert_eq(&got, &want, "the CLEAN subscriber");
		cr_assert_eq(itest_ack(&clean, ca.domain_id, g1), -ENOENT,
			     "g1 was put back");
		cr_assert_eq(itest_ack(&clean, ca.domain_id, info.generation),
			     0);
	}
	/* the other: what was written since its GET_RANGES */
	{
		struct written w[] = { unsynced, after };

		cr_assert_eq(itest_get_ranges(&all, ca.domain_id, 0, &got,
					      &info), 0);
		want_of(&want, w, 2);
		itest_runs_assert_eq(&got, &want, "the other subscriber");
		cr_assert_eq(itest_ack(&all, ca.domain_id, info.generation),
			     0);
	}
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_close(&a);
	itest_close(&b);
	itest_close(&clean);
	itest_close(&all);
	itest_stop_ok(&dd);
}

/*
 * Send A's MAP of @len at IOVA 0 of @dom, then have B write its own domain
 * @bdom until the MAP is surely under way (B's second answer: the MAP was
 * read before it) and A has no answer yet.  Returns the MAP's id.
 */
static uint64_t map_under_way(struct itest_client *a, uint32_t dom,
			      uint64_t len, struct itest_client *b,
			      uint32_t bdom)
{
	struct proto_msg m = {
		.type = PROTO_MAP,
		.map = { .domain_id = dom, .iova = 0, .length = len,
			 .flags = PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE },
	};

	itest_send(a, &m);
	for (int i = 0; i < 2; i++)
		write_page(b, bdom, GIB + (uint64_t)i * PG, NULL);
	return m.id;
}

Test(changes, stop_during_map, .fini = stop)
{
	struct proto_create_domain_reply ca, cb;
	struct itest_client a, b;
	struct proto_msg r;

	itest_start(&dd, "[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty, sim1:dirty\n");
	cr_assert_eq(itest_connect(&dd, &a), 0);
	cr_assert_eq(itest_connect(&dd, &b), 0);
	itest_hello(&a, 0, 0, NULL);
	itest_hello(&b, 0, 0, NULL);
	cr_assert_eq(itest_create(&a, "sim0", PROTO_CREATE_TRACKING, &ca), 0);
	cr_assert_eq(itest_subscribe(&a, ca.domain_id, 0, 0, NULL), 0);
	cr_assert_eq(itest_create(&b, "sim1", PROTO_CREATE_TRACKING, &cb), 0);
	cr_assert_eq(itest_map(&b, PROTO_MAP, cb.domain_id, GIB, GIB), 0);
	map_under_way(&a, ca.domain_id, 256 * GIB, &b, cb.domain_id);
	/* the MAP finishes (or not) as the daemon stops; a clean exit */
	itest_stop_ok(&dd);
	while (itest_recv(&a, &r, 1000) == 0)
		;
	itest_close(&a);
	itest_close(&b);
}

static struct harness sm;

static void sm_stop(void)
{
	itest_stop(&sm);
}

static void sm_client(struct itest_client *c, uint64_t token,
		      struct proto_hello_reply *h)
{
	cr_assert_eq(itest_connect(&sm, c), 0);
	itest_hello(c, PROTO_FEATURES_ALL, token, h);
}

Test(changes, sigusr2_during_map, .fini = sm_stop)
{
	struct proto_create_domain_reply ca, cb;
	struct proto_hello_reply ha, hb;
	struct itest_client a, b;
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	struct written wb = { 0 };
	struct proto_domain doms[4];
	struct proto_msg r;
	unsigned int n;
	int status;

	itest_manage(&sm, "[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty, sim1:dirty\n", true);
	itest_up(&sm);
	sm_client(&a, 0, &ha);
	sm_client(&b, 0, &hb);
	cr_assert_eq(itest_create(&a, "sim0", PROTO_CREATE_TRACKING, &ca), 0);
	cr_assert_eq(itest_map(&a, PROTO_MAP, ca.domain_id, 512 * GIB, GIB),
		     0, "%s", a.text);
	cr_assert_eq(itest_domain_op(&a, PROTO_TRACK_START, ca.domain_id), 0);
	cr_assert_eq(itest_subscribe(&a, ca.domain_id, 0,
				     PROTO_SUBSCRIBE_CLEAN, NULL), 0);
	/* B: pages pending across the restart */
	cr_assert_eq(itest_create(&b, "sim1", PROTO_CREATE_TRACKING, &cb), 0);
	cr_assert_eq(itest_map(&b, PROTO_MAP, cb.domain_id, GIB, GIB), 0);
	cr_assert_eq(itest_domain_op(&b, PROTO_TRACK_START, cb.domain_id), 0);
	cr_assert_eq(itest_subscribe(&b, cb.domain_id, 0,
				     PROTO_SUBSCRIBE_CLEAN, NULL), 0);
	for (int i = 0; i < 5; i++)
		write_page(&b, cb.domain_id, GIB + (uint64_t)i * 4001 * PG,
			   &wb);
	cr_assert_eq(itest_sync(&b, cb.domain_id, NULL), 0);

	map_under_way(&a, ca.domain_id, 256 * GIB, &b, cb.domain_id);
	status = harness_kill(&sm, SIGUSR2);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 75,
		  "status %#x", status);
	/* never answered: the client never heard it was made */
	while (itest_recv(&a, &r, 1000) == 0)
		cr_assert_neq(r.type, PROTO_OK, "the MAP was answered");
	itest_close(&a);
	itest_close(&b);

	itest_up(&sm);
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 2 domains", false));
	cr_assert(harness_log_has(&sm, "undoing a MAP of [0x0, 0x4000000000)", false));
	sm_client(&a, ha.session_token, &ha);
	cr_assert_eq(ha.session_flags, PROTO_SESSION_RESUMED);
	sm_client(&b, hb.session_token, &hb);
	cr_assert_eq(hb.session_flags, PROTO_SESSION_RESUMED);
	n = itest_list_domains(&a, doms, 4);
	cr_assert_eq(n, 2);
	for (unsigned int i = 0; i < n; i++)
		cr_assert_eq(doms[i].mapped_bytes, GIB, "domain %u",
			     doms[i].domain_id);
	/* B's pages came through */
	cr_assert_eq(itest_get_ranges(&b, cb.domain_id, 0, &got, &info), 0);
	want_of(&want, &wb, 1);
	itest_runs_assert_eq(&got, &want, "B's pages after the restart");
	/* and A maps again */
	cr_assert_eq(itest_map(&a, PROTO_MAP, ca.domain_id, 0, 256 * GIB), 0,
		     "%s", a.text);
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_close(&a);
	itest_close(&b);
	cr_assert_eq(itest_stop(&sm), 0);
}
