// SPDX-License-Identifier: MIT
/*
 * dirtyd restarted under a service manager (svcmgr.h plays systemd's
 * notify, socket-activation and file-descriptor-store protocol): with the
 * store, domains, mappings, tracking and generations survive SIGKILL and a
 * resumed client gets exactly the pages it had not acknowledged plus the
 * new ones (the oracle is the test's own DMA_WRITEs, 4 KiB leaves), also
 * when the kill lands among rounds at 1 ms intervals; without the store a
 * resume gets STATE_LOST.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "svcmgr.h"
#include "../unit/test_rng.h"

#define PG 4096ULL
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

#define CONF "[sim]\ndevices = sim0:dirty, sim1:dirty\n"

static struct svcmgr sm;

static void stop(void)
{
	svcmgr_stop(&sm);
}

/* A client of the managed dirtyd; returns the HELLO reply. */
static struct proto_hello_reply client(struct itest_client *c, uint64_t token)
{
	struct itest_daemon t = { 0 };
	struct proto_hello_reply h;

	snprintf(t.sock, sizeof(t.sock), "%s", sm.sock);
	cr_assert_eq(itest_connect(&t, c), 0);
	itest_hello(c, PROTO_FEATURES_ALL, token, &h);
	return h;
}

/* A set of pages, as a bitmap over the test's IOVA space. */
#define SPACE_PAGES (4 * GIB / PG)
struct pageset {
	uint8_t *bits;
};

static void ps_init(struct pageset *s)
{
	s->bits = calloc(SPACE_PAGES / 8, 1);
	cr_assert_not_null(s->bits);
}

static void ps_add(struct pageset *s, uint64_t page)
{
	cr_assert_lt(page, SPACE_PAGES);
	s->bits[page / 8] |= 1u << (page % 8);
}

static bool ps_has(const struct pageset *s, uint64_t page)
{
	return page < SPACE_PAGES && (s->bits[page / 8] >> (page % 8) & 1);
}

static void ps_clear(struct pageset *s)
{
	memset(s->bits, 0, SPACE_PAGES / 8);
}

static void ps_to_runs(const struct pageset *s, struct itest_runs *r)
{
	itest_runs_free(r);
	for (uint64_t p = 0; p < SPACE_PAGES; p++) {
		if (!s->bits[p / 8]) {
			p += 7;
			continue;
		}
		if (ps_has(s, p))
			itest_runs_add(r, p, 1);
	}
}

static void write_page(struct itest_client *c, uint32_t dom, uint64_t page,
		       struct pageset *w)
{
	cr_assert_eq(itest_map(c, PROTO_DMA_WRITE, dom, page * PG, PG), 0,
		     "DMA_WRITE page %llu: %s", (unsigned long long)page,
		     c->text);
	ps_add(w, page);
}

static const uint64_t maps[][2] = {
	{ GIB, 64 * MIB },
	{ 2 * GIB + 3 * PG, 8 * MIB + 5 * PG },
};

static uint64_t random_page(void)
{
	const uint64_t *m = maps[rng() % 2];

	return m[0] / PG + rng() % (m[1] / PG);
}

static uint32_t make_domain(struct itest_client *c)
{
	struct proto_create_domain_reply a;

	cr_assert_eq(itest_create(c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0, "%s",
		     c->text);
	for (size_t i = 0; i < 2; i++)
		cr_assert_eq(itest_map(c, PROTO_MAP, a.domain_id, maps[i][0],
				       maps[i][1]), 0, "%s", c->text);
	cr_assert_eq(itest_domain_op(c, PROTO_TRACK_START, a.domain_id), 0);
	return a.domain_id;
}

static struct proto_domain find_domain(struct itest_client *c, uint32_t id)
{
	struct proto_domain all[16];
	unsigned int n = itest_list_domains(c, all, 16);

	for (unsigned int i = 0; i < n; i++)
		if (all[i].domain_id == id)
			return all[i];
	cr_assert_fail("domain %u is not listed", id);
	return all[0];
}

/* Domains, mappings, tracking, generation, and a generation in flight
 * survive SIGKILL; the resumed client gets what it had not acknowledged
 * and what was written meanwhile, nothing less, nothing else. */
Test(restart, sigkill_keeps_domains_and_pending, .fini = stop)
{
	struct pageset w1, w2, w3, all;
	struct itest_runs got = { 0 }, want = { 0 };
	struct proto_subscribe_reply sr;
	struct proto_hello_reply h;
	struct proto_domain before, after;
	struct itest_ranges info;
	struct itest_client c;
	uint64_t gen_inflight;
	uint32_t dom;

	rng_seed(7);
	ps_init(&w1);
	ps_init(&w2);
	ps_init(&w3);
	ps_init(&all);
	svcmgr_init(&sm, CONF, true);
	svcmgr_start(&sm);
	cr_assert_eq(svcmgr_has(&sm, "dirtyd-meta"), 1);
	cr_assert_eq(svcmgr_has(&sm, "dirtyd-bits"), 1);
	cr_assert_geq(svcmgr_nstored(&sm), 3, "the kernel context is stored");

	h = client(&c, 0);
	cr_assert_neq(h.session_token, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, &sr),
		     0);
	/* a few acknowledged rounds first */
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < 50; k++)
			write_page(&c, dom, random_page(), &all);
		cr_assert_eq(itest_sync(&c, dom, NULL), 0);
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	}
	/* W1: sent, not acknowledged */
	for (int k = 0; k < 200; k++)
		write_page(&c, dom, random_page(), &w1);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	ps_to_runs(&w1, &want);
	itest_runs_assert_eq(&got, &want, "W1 before the kill");
	gen_inflight = info.generation;
	/* W2: harvested, pending */
	for (int k = 0; k < 200; k++)
		write_page(&c, dom, random_page(), &w2);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	/* W3: still in the IOMMU */
	for (int k = 0; k < 200; k++)
		write_page(&c, dom, random_page(), &w3);
	before = find_domain(&c, dom);

	svcmgr_kill(&sm, SIGKILL);
	itest_close(&c);
	svcmgr_start(&sm);
	cr_assert(svcmgr_log_has(&sm, "restored from the file descriptor "
				 "store: 1 domains, 1 subscriptions"));

	{
		struct proto_hello_reply h2 = client(&c, h.session_token);

		cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED,
			     "flags %#x", h2.session_flags);
		cr_assert_eq(h2.session_token, h.session_token);
	}
	after = find_domain(&c, dom);
	cr_assert_eq(after.mapped_bytes, before.mapped_bytes);
	cr_assert_eq(after.status, before.status, "tracking survives");
	cr_assert_eq(after.page_size, before.page_size);
	cr_assert_geq(after.generation, before.generation);
	cr_assert_eq(after.subscribers, 1);

	/* everything not acknowledged, and the writes still in the IOMMU */
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	cr_assert_gt(info.generation, gen_inflight);
	for (uint64_t p = 0; p < SPACE_PAGES / 8; p++)
		w1.bits[p] |= w2.bits[p] | w3.bits[p];
	ps_to_runs(&w1, &want);
	itest_runs_assert_eq(&got, &want, "W1 + W2 + W3 after the restart");
	cr_assert_eq(itest_ack(&c, dom, gen_inflight), -ENOENT,
		     "the old generation is pending again, not in flight");
	cr_assert_eq(itest_ack(&c, dom, info.generation), 0);

	/* the restored domain works: new writes, a new mapping, an unmap */
	ps_clear(&w1);
	for (int k = 0; k < 100; k++)
		write_page(&c, dom, random_page(), &w1);
	cr_assert_eq(itest_map(&c, PROTO_MAP, dom, 3 * GIB, 4 * MIB), 0, "%s",
		     c.text);
	write_page(&c, dom, 3 * GIB / PG + 17, &w1);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
	ps_to_runs(&w1, &want);
	itest_runs_assert_eq(&got, &want, "writes after the restart");
	cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, dom, 3 * GIB, 4 * MIB), 0,
		     "%s", c.text);
	itest_close(&c);
	cr_assert_eq(svcmgr_stop(&sm), 0);
	free(w1.bits);
	free(w2.bits);
	free(w3.bits);
	free(all.bits);
	itest_runs_free(&got);
	itest_runs_free(&want);
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/*
 * Rounds every 1 ms, and SIGKILL at random moments among them, many
 * times: after each restart the resumed client gets at least every page
 * it wrote and has not seen in a generation it acknowledged, and nothing
 * it never wrote.
 */
Test(restart, kill_among_fast_rounds, .fini = stop)
{
	struct pageset owed, ever;
	struct itest_runs got = { 0 };
	struct proto_hello_reply h;
	struct itest_ranges info;
	struct itest_client c;
	unsigned int kills = 0, checked = 0, extra = 0;
	const int rounds = getenv("DIRTYD_RESTART_LOOPS") ?
			   atoi(getenv("DIRTYD_RESTART_LOOPS")) : 25;
	uint32_t dom;

	rng_seed(1234);
	ps_init(&owed);
	ps_init(&ever);
	svcmgr_init(&sm, CONF, true);
	svcmgr_start(&sm);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 1, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);

	for (int i = 0; i < rounds; i++) {
		int steps = 1 + rng() % 4;

		for (int s = 0; s < steps; s++) {
			for (int k = 0, n = 1 + rng() % 60; k < n; k++) {
				uint64_t p = random_page();

				write_page(&c, dom, p, &owed);
				ps_add(&ever, p);
			}
			if (rng() % 2) {
				/* a generation: taken, maybe acknowledged */
				cr_assert_eq(itest_sync(&c, dom, NULL), 0);
				cr_assert_eq(itest_get_ranges(&c, dom, 0, &got,
							      &info), 0);
				if (rng() % 3) {
					for (size_t r = 0; r < got.n; r++)
						for (uint64_t p = 0;
						     p < got.count[r]; p++) {
							uint64_t pg = got.first[r] + p;

							owed.bits[pg / 8] &=
								~(1u << (pg % 8));
						}
					cr_assert_eq(itest_ack(&c, dom,
							       info.generation),
						     0);
				}
			}
		}
		/* periodic rounds run meanwhile: kill somewhere among them */
		sleep_us(rng() % 3000);
		svcmgr_kill(&sm, SIGKILL);
		kills++;
		itest_close(&c);
		svcmgr_start(&sm);
		{
			struct proto_hello_reply h2 = client(&c,
							     h.session_token);

			cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED,
				     "kill %u: flags %#x", kills,
				     h2.session_flags);
		}
		cr_assert_eq(itest_sync(&c, dom, NULL), 0);
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		{
			struct pageset seen;

			ps_init(&seen);
			for (size_t r = 0; r < got.n; r++)
				for (uint64_t p = 0; p < got.count[r]; p++) {
					uint64_t pg = got.first[r] + p;

					cr_assert(ps_has(&ever, pg), "kill %u: "
						  "page %llu was never "
						  "written", kills,
						  (unsigned long long)pg);
					ps_add(&seen, pg);
				}
			for (uint64_t p = 0; p < SPACE_PAGES; p++) {
				if (!owed.bits[p / 8]) {
					p += 7;
					continue;
				}
				if (!ps_has(&owed, p))
					continue;
				checked++;
				cr_assert(ps_has(&seen, p), "kill %u: page "
					  "%llu was written, never "
					  "acknowledged, and is missing",
					  kills, (unsigned long long)p);
			}
			extra += got.pages;
			free(seen.bits);
		}
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
		ps_clear(&owed);
	}
	cr_log_info("%u kills among 1 ms rounds, %u owed pages checked, all "
		    "delivered (%u pages sent after restarts)", kills, checked,
		    extra);
	fprintf(stderr, "restart: %u kills among 1 ms rounds, %u owed pages "
		"checked, 0 lost\n", kills, checked);
	itest_close(&c);
	cr_assert_eq(svcmgr_stop(&sm), 0);
	free(owed.bits);
	free(ever.bits);
	itest_runs_free(&got);
}

/* Without a store nothing survives: a resume gets STATE_LOST. */
Test(restart, without_store_state_lost, .fini = stop)
{
	struct proto_hello_reply h, h2;
	struct proto_domain all[4];
	struct itest_client c;
	uint32_t dom;

	svcmgr_init(&sm, CONF, false);
	svcmgr_start(&sm);
	cr_assert_eq(svcmgr_nstored(&sm), 0);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	svcmgr_kill(&sm, SIGKILL);
	itest_close(&c);
	svcmgr_start(&sm);
	h2 = client(&c, h.session_token);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_STATE_LOST,
		     "flags %#x", h2.session_flags);
	cr_assert_neq(h2.session_token, h.session_token);
	cr_assert_eq(itest_list_domains(&c, all, 4), 0, "nothing survived");
	itest_close(&c);
	cr_assert_eq(svcmgr_stop(&sm), 0);
}

/* SIGUSR2: an orderly exit that keeps everything for the next start. */
Test(restart, sigusr2_exits_keeping_state, .fini = stop)
{
	struct proto_hello_reply h, h2;
	struct itest_client c;
	int status;
	uint32_t dom;

	svcmgr_init(&sm, CONF, true);
	svcmgr_start(&sm);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	status = svcmgr_kill(&sm, SIGUSR2);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 75,
		  "status %#x", status);
	itest_close(&c);
	svcmgr_start(&sm);
	h2 = client(&c, h.session_token);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(find_domain(&c, dom).domain_id, dom);
	itest_close(&c);
	/* a stop gives the state up: the store is emptied */
	cr_assert_eq(svcmgr_kill(&sm, SIGTERM), 0);
	cr_assert_eq(svcmgr_nstored(&sm), 0);
	cr_assert_eq(svcmgr_stop(&sm), 0);
}
