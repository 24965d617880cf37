// SPDX-License-Identifier: MIT
/*
 * dirtyd restarted under a service manager (tests/harness plays systemd's
 * notify, socket-activation and file-descriptor-store protocol): with the
 * store, domains, mappings, tracking and generations survive SIGKILL and a
 * resumed client gets exactly the pages it had not acknowledged plus the
 * new ones (the oracle is the test's own DMA_WRITEs, 4 KiB leaves), also
 * when the kill lands among rounds at 1 ms intervals; without the store a
 * resume gets STATE_LOST.
 *
 * The store is checked, not trusted: a dirtyd-bits truncated (it is sealed,
 * so replaced by a shorter copy) or missing, a flipped byte in dirtyd-meta,
 * a record pointing past the end, another format: each time dirtyd starts
 * afresh, says why at error level and every resume gets STATE_LOST.  A
 * closed session keeps its deadline across restarts; adoptions that keep
 * failing stop being tried.  A stop (SIGTERM) leaves everything in the
 * store: the next start resumes a client mid-migration with every page;
 * without the store (systemd 252) the client gets STATE_LOST; a stop sent
 * during an adoption waits until dirtyd serves.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/domain/domain.h"
#include "daemon/state/state_format.h"
#include "kernel/sim/sim_private.h"
#include "itest.h"
#include "../unit/test_rng.h"

#define PG 4096ULL
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

#define CONF "[sim]\ndevices = sim0:dirty, sim1:dirty\n"

static struct harness sm;

static void stop(void)
{
	itest_stop(&sm);
}

/* A client of the managed dirtyd; returns the HELLO reply. */
static struct proto_hello_reply client(struct itest_client *c, uint64_t token)
{
	struct proto_hello_reply h;

	cr_assert_eq(itest_connect(&sm, c), 0);
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

static uint32_t make_domain_on(struct itest_client *c, const char *device);

static uint32_t make_domain(struct itest_client *c)
{
	return make_domain_on(c, "sim0");
}

/* A domain like make_domain()'s, on @device. */
static uint32_t make_domain_on(struct itest_client *c, const char *device)
{
	struct proto_create_domain_reply a;

	cr_assert_eq(itest_create(c, device, PROTO_CREATE_TRACKING |
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
	itest_manage(&sm, CONF, true);
	itest_up(&sm);
	cr_assert_eq(harness_has(&sm, "dirtyd-meta"), 1);
	cr_assert_eq(harness_has(&sm, "dirtyd-bits"), 1);
	cr_assert_eq(harness_nstored(&sm), 2, "no domain, no kernel context");

	h = client(&c, 0);
	cr_assert_neq(h.session_token, 0);
	dom = make_domain(&c);
	{
		char name[64];

		snprintf(name, sizeof(name), "kernel-%u-sim", dom);
		cr_assert_eq(harness_has(&sm, name), 1, "the domain's own "
			     "kernel context is stored as %s", name);
		cr_assert_eq(harness_nstored(&sm), 3);
	}
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

	harness_kill(&sm, SIGKILL);
	itest_close(&c);
	itest_up(&sm);
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 1 domains, 1 subscriptions", false));

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
	cr_assert_eq(itest_stop(&sm), 0);
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
	itest_manage(&sm, CONF, true);
	itest_up(&sm);
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
		harness_kill(&sm, SIGKILL);
		kills++;
		itest_close(&c);
		itest_up(&sm);
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
	cr_assert_eq(itest_stop(&sm), 0);
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

	itest_manage(&sm, CONF, false);
	itest_up(&sm);
	cr_assert_eq(harness_nstored(&sm), 0);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	harness_kill(&sm, SIGKILL);
	itest_close(&c);
	itest_up(&sm);
	h2 = client(&c, h.session_token);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_STATE_LOST,
		     "flags %#x", h2.session_flags);
	cr_assert_neq(h2.session_token, h.session_token);
	cr_assert_eq(itest_list_domains(&c, all, 4), 0, "nothing survived");
	itest_close(&c);
	cr_assert_eq(itest_stop(&sm), 0);
}

/* SIGUSR2: an orderly exit that keeps everything for the next start. */
Test(restart, sigusr2_exits_keeping_state, .fini = stop)
{
	struct proto_hello_reply h, h2;
	struct itest_client c;
	int status;
	uint32_t dom;

	itest_manage(&sm, CONF, true);
	itest_up(&sm);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	status = harness_kill(&sm, SIGUSR2);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 75,
		  "status %#x", status);
	itest_close(&c);
	itest_up(&sm);
	h2 = client(&c, h.session_token);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(find_domain(&c, dom).domain_id, dom);
	itest_close(&c);
	/* a stop leaves it too: nothing is taken out of the store */
	cr_assert_eq(harness_kill(&sm, SIGTERM), 0);
	cr_assert_eq(harness_nstored(&sm), 3, "dirtyd-meta, dirtyd-bits and "
		     "the domain's context stay");
	cr_assert_eq(itest_stop(&sm), 0);
}

/* ------------------------------------------------------------ a stop */

/*
 * What a VMM mid-migration was given, and what it is owed: pages written
 * and not yet in a generation it acknowledged (those of generations in
 * flight are owed until acknowledged), and everything ever written.
 */
struct vmm {
	struct itest_client c;
	uint64_t token;
	uint32_t dom;
	struct pageset owed, ever, given;
	uint64_t inflight[8];	/* generations taken, not acknowledged */
	struct pageset inflight_pages[8];
	unsigned int ninflight;
	unsigned int checked;
};

static void vmm_write(struct vmm *v, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		uint64_t p = random_page();

		write_page(&v->c, v->dom, p, &v->owed);
		ps_add(&v->ever, p);
	}
}

/* GET_RANGES: every page given was written; kept in flight (up to 8
 * generations, dirtyd's max_inflight) or acknowledged at once. */
static void vmm_take(struct vmm *v, bool ack)
{
	struct itest_runs got = { 0 };
	struct itest_ranges info;
	struct pageset *pages = NULL;

	cr_assert_eq(itest_get_ranges(&v->c, v->dom, 0, &got, &info), 0, "%s",
		     v->c.text);
	if (!ack && v->ninflight < 7) {
		pages = &v->inflight_pages[v->ninflight];
		ps_init(pages);
		v->inflight[v->ninflight++] = info.generation;
	}
	for (size_t r = 0; r < got.n; r++)
		for (uint64_t p = 0; p < got.count[r]; p++) {
			uint64_t pg = got.first[r] + p;

			cr_assert(ps_has(&v->ever, pg), "page %llu was given "
				  "and never written", (unsigned long long)pg);
			ps_add(&v->given, pg);
			if (pages)
				ps_add(pages, pg);
			else
				v->owed.bits[pg / 8] &= ~(1u << (pg % 8));
		}
	if (!pages)
		cr_assert_eq(itest_ack(&v->c, v->dom, info.generation), 0);
	itest_runs_free(&got);
}

/* After a restart kept the state: resumed, and the first take holds
 * every page owed (the generations in flight came back into pending). */
static void vmm_resume_check(struct vmm *v, const char *when)
{
	struct proto_hello_reply h = client(&v->c, v->token);
	struct itest_runs got = { 0 };
	struct itest_ranges info;
	struct pageset seen;

	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED, "%s: flags %#x",
		     when, h.session_flags);
	for (unsigned int i = 0; i < v->ninflight; i++) {
		cr_assert_eq(itest_ack(&v->c, v->dom, v->inflight[i]), -ENOENT,
			     "%s: generation %llu is pending again", when,
			     (unsigned long long)v->inflight[i]);
		free(v->inflight_pages[i].bits);
	}
	v->ninflight = 0;
	cr_assert_eq(itest_sync(&v->c, v->dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&v->c, v->dom, 0, &got, &info), 0);
	ps_init(&seen);
	for (size_t r = 0; r < got.n; r++)
		for (uint64_t p = 0; p < got.count[r]; p++) {
			uint64_t pg = got.first[r] + p;

			cr_assert(ps_has(&v->ever, pg), "%s: page %llu was "
				  "never written", when,
				  (unsigned long long)pg);
			ps_add(&seen, pg);
			ps_add(&v->given, pg);
		}
	for (uint64_t p = 0; p < SPACE_PAGES; p++) {
		if (!v->owed.bits[p / 8]) {
			p += 7;
			continue;
		}
		if (!ps_has(&v->owed, p))
			continue;
		v->checked++;
		cr_assert(ps_has(&seen, p), "%s: page %llu was written, never "
			  "acknowledged, and is missing", when,
			  (unsigned long long)p);
	}
	cr_assert_eq(itest_ack(&v->c, v->dom, info.generation), 0);
	ps_clear(&v->owed);
	free(seen.bits);
	itest_runs_free(&got);
}

/* A migration's worth of rounds: writes, takes, some kept in flight. */
static void vmm_migrate(struct vmm *v, int steps)
{
	for (int s = 0; s < steps; s++) {
		vmm_write(v, 1 + rng() % 80);
		if (rng() % 2)
			vmm_take(v, rng() % 3 == 0);
	}
	/* periodic rounds run meanwhile */
	sleep_us(rng() % 3000);
}

/*
 * The "Done when": a stop and a start under a VMM mid-migration
 * lose nothing.  SIGTERM (exit 0, STOPPING=1) leaves the domain, its
 * mappings, tracking, pending pages and generations in flight in the
 * store; the next start with the store kept (systemd 254+'s restart with
 * FileDescriptorStorePreserve=restart, what the harness does) adopts it
 * and the VMM resumes with every page it was owed; the union of what it
 * was given covers every page written, nothing never written.  Then a
 * stop without the store (systemd 252 empties it at a stop): the kernel
 * frees the domain with the last descriptor, and the VMM is told
 * STATE_LOST (every page dirty).
 */
Test(restart, stop_start_under_migration_loses_nothing, .fini = stop)
{
	struct vmm v = { 0 };
	struct proto_hello_reply h;
	struct proto_domain all[4];
	const int stops = getenv("DIRTYD_RESTART_LOOPS") ?
			  atoi(getenv("DIRTYD_RESTART_LOOPS")) : 8;
	char name[64];
	int status;

	rng_seed(4242);
	ps_init(&v.owed);
	ps_init(&v.ever);
	ps_init(&v.given);
	itest_manage(&sm, CONF, true);
	itest_up(&sm);
	h = client(&v.c, 0);
	v.token = h.session_token;
	v.dom = make_domain(&v.c);
	cr_assert_eq(itest_subscribe(&v.c, v.dom, 1, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	snprintf(name, sizeof(name), "kernel-%u-sim", v.dom);
	for (int i = 0; i < stops; i++) {
		char when[32];

		vmm_migrate(&v, 2 + rng() % 4);
		/* a generation in flight at every stop */
		vmm_write(&v, 20);
		cr_assert_eq(itest_sync(&v.c, v.dom, NULL), 0);
		vmm_take(&v, false);
		vmm_write(&v, 20);	/* pending or still in the IOMMU */
		status = harness_stop(&sm);
		cr_assert_eq(status, 0, "stop %d: exit status %#x", i, status);
		cr_assert(sm.stopping, "stop %d: STOPPING=1", i);
		cr_assert_eq(harness_has(&sm, "dirtyd-meta"), 1);
		cr_assert_eq(harness_has(&sm, "dirtyd-bits"), 1);
		cr_assert_eq(harness_has(&sm, name), 1, "stop %d: the "
			     "domain's context is left in the store", i);
		itest_close(&v.c);
		itest_up(&sm);
		cr_assert(harness_log_has(&sm, "restored from the file "
					 "descriptor store: 1 domains, 1 "
					 "subscriptions", true));
		snprintf(when, sizeof(when), "stop %d", i);
		vmm_resume_check(&v, when);
	}
	/* the end of the migration: the last pages, all acknowledged */
	vmm_write(&v, 50);
	cr_assert_eq(itest_sync(&v.c, v.dom, NULL), 0);
	vmm_take(&v, true);
	for (uint64_t p = 0; p < SPACE_PAGES; p++)
		if (ps_has(&v.ever, p))
			cr_assert(ps_has(&v.given, p), "page %llu was written "
				  "and never given", (unsigned long long)p);
	fprintf(stderr, "restart: %d stops and starts under migration, %u owed "
		"pages checked at the resumes, 0 lost\n", stops, v.checked);

	/* systemd 252: the stop empties the store */
	cr_assert_eq(harness_stop(&sm), 0);
	itest_close(&v.c);
	harness_flush(&sm);
	itest_up(&sm);
	cr_assert(!harness_log_has(&sm, "restored from", true));
	h = client(&v.c, v.token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_STATE_LOST, "flags %#x",
		     h.session_flags);
	cr_assert_eq(itest_list_domains(&v.c, all, 4), 0, "the kernel freed "
		     "the domain with its last descriptor");
	/* its device is free: nothing of the old domain holds it */
	v.dom = make_domain(&v.c);
	itest_close(&v.c);
	cr_assert_eq(itest_stop(&sm), 0);
	free(v.owed.bits);
	free(v.ever.bits);
	free(v.given.bits);
}

/* ------------------------------------------------------------ damage */

/* What every refusal ends with. */
#define LOST "the store is not adopted; starting afresh, every client " \
	     "gets STATE_LOST"

/*
 * On the running dirtyd: a domain, a subscriber with pages pending, then
 * SIGKILL; the store holds it all.  Returns the subscriber's token.
 */
static uint64_t keep_state(void)
{
	struct proto_hello_reply h;
	struct itest_client c;
	struct pageset w;
	uint32_t dom;

	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	ps_init(&w);
	for (int k = 0; k < 20; k++)
		write_page(&c, dom, random_page(), &w);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	free(w.bits);
	harness_kill(&sm, SIGKILL);
	itest_close(&c);
	return h.session_token;
}

static uint64_t keep_first(const char *conf)
{
	rng_seed(11);
	itest_manage(&sm, conf, true);
	itest_up(&sm);
	return keep_state();
}

/*
 * dirtyd starts on what the store holds, logs "error: @why: LOST" once
 * more than before, restores nothing (lists @ndomains domains: its
 * configured guests), gives @token STATE_LOST, and hands the store one new
 * dirtyd-meta and dirtyd-bits.
 */
static void assert_refused_n(uint64_t token, const char *why,
			     unsigned int ndomains)
{
	char line[1024];
	unsigned int before;
	struct proto_hello_reply h;
	struct proto_domain all[4];
	struct itest_client c;

	snprintf(line, sizeof(line), "dirtyd: error: %s: " LOST, why);
	before = harness_log_count(&sm, line, false);
	itest_up(&sm);
	if (harness_log_count(&sm, line, false) != before + 1) {
		itest_dump_log(&sm);
		cr_assert_fail("the log does not say, once more:\n%s", line);
	}
	h = client(&c, token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_STATE_LOST, "flags %#x",
		     h.session_flags);
	cr_assert_eq(itest_list_domains(&c, all, 4), ndomains,
		     "nothing restored");
	itest_close(&c);
	cr_assert_eq(harness_has(&sm, "dirtyd-meta"), 1);
	cr_assert_eq(harness_has(&sm, "dirtyd-bits"), 1);
}

static void assert_refused(uint64_t token, const char *why)
{
	assert_refused_n(token, why, 0);
}

/* The committed version in the store's dirtyd-meta. */
struct kept {
	int fd;
	struct state_super sb;
	int slot;
	uint8_t *v;
	uint64_t len;
};

static void kept_read(struct kept *k)
{
	k->fd = harness_stored_fd(&sm, "dirtyd-meta");
	cr_assert_geq(k->fd, 0);
	cr_assert_eq(pread(k->fd, &k->sb, sizeof(k->sb), 0),
		     (ssize_t)sizeof(k->sb));
	cr_assert_eq(k->sb.format, STATE_FORMAT);
	k->slot = -1;
	for (int s = 0; s < 2; s++)
		if (k->sb.commit == state_commit_word(k->sb.slot[s].seq, s))
			k->slot = s;
	cr_assert_geq(k->slot, 0, "the superblock names a version");
	k->len = k->sb.slot[k->slot].len;
	k->v = malloc(k->len);
	cr_assert_not_null(k->v);
	cr_assert_eq(pread(k->fd, k->v, k->len, STATE_META_SUPER +
			   k->slot * STATE_META_SLOT), (ssize_t)k->len);
	cr_assert_eq(state_sum(k->v, k->len), k->sb.slot[k->slot].sum);
}

/* Write the superblock back. */
static void kept_write_super(struct kept *k)
{
	cr_assert_eq(pwrite(k->fd, &k->sb, sizeof(k->sb), 0),
		     (ssize_t)sizeof(k->sb));
}

/* Write the version back; @sum: with a matching checksum, so that only
 * the checks of its records can tell. */
static void kept_write(struct kept *k, bool sum)
{
	cr_assert_eq(pwrite(k->fd, k->v, k->len, STATE_META_SUPER +
			    k->slot * STATE_META_SLOT), (ssize_t)k->len);
	if (sum) {
		k->sb.slot[k->slot].sum = state_sum(k->v, k->len);
		kept_write_super(k);
	}
}

/* A number of the version at @off (state_format.h: little-endian). */
static uint32_t kv32(const struct kept *k, uint64_t off)
{
	cr_assert_leq(off + 4, k->len);
	return state_le32(k->v + off);
}

static uint64_t kv64(const struct kept *k, uint64_t off)
{
	cr_assert_leq(off + 8, k->len);
	return state_le64(k->v + off);
}

static void kv_put32(struct kept *k, uint64_t off, uint32_t v)
{
	state_put_le32(k->v + off, v);
}

static void kv_put64(struct kept *k, uint64_t off, uint64_t v)
{
	state_put_le64(k->v + off, v);
}

static uint32_t kept_ndomains(const struct kept *k)
{
	return kv32(k, STATE_HEAD_NDOMAINS);
}

static uint32_t kept_nsubs(const struct kept *k)
{
	return kv32(k, STATE_HEAD_NSUBS);
}

/* The record at @off: past it (its header says how long it is). */
static uint64_t kept_skip(const struct kept *k, uint64_t off)
{
	uint32_t len = kv32(k, off + STATE_REC_LEN);

	cr_assert_geq(len, STATE_REC_HDR);
	return off + len;
}

/* Where domain record @i's fields are (@i == ndomains: the first
 * subscription's record, its header). */
static uint64_t kept_domain_at(const struct kept *k, uint32_t i)
{
	uint64_t off = STATE_HEAD_SIZE;

	for (uint32_t n = 0; n < i; n++) {
		uint64_t d = off + STATE_REC_HDR;
		uint32_t nrec = kv32(k, d + STATE_DOM_NDEVICES) +
				kv32(k, d + STATE_DOM_NMAPS) +
				kv32(k, d + STATE_DOM_NRETIRED);

		cr_assert_eq(kv32(k, off + STATE_REC_KIND), STATE_REC_DOMAIN);
		off = kept_skip(k, off) + (uint64_t)kv32(k, d + STATE_DOM_NKEPT) *
		      BACKEND_NAME_MAX + kv32(k, d + STATE_DOM_BLOB_LEN);
		off = (off + 7) & ~7ULL;
		for (uint32_t r = 0; r < nrec; r++)
			off = kept_skip(k, off);
	}
	cr_assert_leq(off, k->len);
	return i < kept_ndomains(k) ? off + STATE_REC_HDR : off;
}

/* Where subscription record @i's fields are. */
static uint64_t kept_sub_at(const struct kept *k, uint32_t i)
{
	uint64_t off = kept_domain_at(k, kept_ndomains(k));

	for (uint32_t n = 0; n < i; n++)
		off = kept_skip(k, off);
	cr_assert_eq(kv32(k, off + STATE_REC_KIND), STATE_REC_SUB);
	return off + STATE_REC_HDR;
}

static uint64_t region_end(uint64_t off, uint64_t nwords)
{
	return off + ((nwords * 8 + 4095) & ~4095ULL);
}

/* Where the version's last bitmap ends in dirtyd-bits. */
static uint64_t kept_bits_end(struct kept *k)
{
	uint64_t end = 0, e;

	for (uint32_t i = 0; i < kept_ndomains(k); i++) {
		uint64_t d = kept_domain_at(k, i);

		e = region_end(kv64(k, d + STATE_DOM_COUNTERS_OFF),
			       DOMAIN_COUNTERS_WORDS);
		end = e > end ? e : end;
		e = region_end(kv64(k, d + STATE_DOM_ROUND_OFF),
			       kv64(k, d + STATE_DOM_ROUND_WORDS));
		end = e > end ? e : end;
	}
	for (uint32_t i = 0; i < kept_nsubs(k); i++) {
		uint64_t s = kept_sub_at(k, i);
		uint64_t nwords = kv64(k, s + STATE_SUB_NWORDS);

		e = region_end(kv64(k, s + STATE_SUB_PENDING_OFF), nwords);
		end = e > end ? e : end;
		e = region_end(kv64(k, s + STATE_SUB_FLIGHT_OFF), nwords);
		end = e > end ? e : end;
	}
	return end;
}

/* A copy of the first @size bytes of dirtyd-bits, @size long. */
static int bits_copy(uint64_t size)
{
	int from = harness_stored_fd(&sm, "dirtyd-bits");
	int fd = memfd_create("dirtyd-bits", MFD_CLOEXEC);
	char buf[65536];

	cr_assert_geq(from, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		cr_assert_eq(pread(from, buf, n, (off_t)off), (ssize_t)n);
		cr_assert_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	return fd;
}

/* dirtyd-bits shorter than its bitmaps: never extended to fit. */
Test(restart, truncated_bits_state_lost, .fini = stop)
{
	char why[256];
	struct kept k;
	uint64_t token, end;

	token = keep_first(CONF);
	/* sealed: no holder of the descriptor can resize what is kept */
	cr_assert(ftruncate(harness_stored_fd(&sm, "dirtyd-bits"), 4096) < 0 &&
		  errno == EPERM, "dirtyd-bits is sealed against resizing");
	cr_assert(ftruncate(harness_stored_fd(&sm, "dirtyd-meta"), 4096) < 0 &&
		  errno == EPERM, "dirtyd-meta is sealed against resizing");
	kept_read(&k);
	end = kept_bits_end(&k);
	free(k.v);
	cr_assert_gt(end, 4096);
	/* so a shorter copy takes its place */
	cr_assert_eq(harness_replace(&sm, "dirtyd-bits", bits_copy(4096)), 0);
	snprintf(why, sizeof(why), "dirtyd-bits is 4096 bytes, the metadata "
		 "needs %llu", (unsigned long long)end);
	assert_refused(token, why);

	/* long enough for every bitmap, but not the size it was */
	token = keep_state();
	kept_read(&k);
	end = kept_bits_end(&k);
	free(k.v);
	cr_assert_eq(harness_replace(&sm, "dirtyd-bits", bits_copy(end)), 0);
	snprintf(why, sizeof(why), "dirtyd-bits is %llu bytes, the metadata "
		 "says it was %llu", (unsigned long long)end,
		 (unsigned long long)BITMEM_RESERVE);
	assert_refused(token, why);

	/* dirtyd-meta too */
	token = keep_state();
	{
		int fd = memfd_create("dirtyd-meta", MFD_CLOEXEC);

		cr_assert_eq(ftruncate(fd, 1 << 20), 0);
		cr_assert_eq(harness_replace(&sm, "dirtyd-meta", fd), 0);
	}
	snprintf(why, sizeof(why), "dirtyd-meta is 1048576 bytes, not %llu",
		 (unsigned long long)STATE_META_SIZE);
	assert_refused(token, why);
	cr_assert_eq(itest_stop(&sm), 0);
}

/* dirtyd-meta without dirtyd-bits: said, not silently afresh; the new
 * store then keeps state again. */
Test(restart, missing_bits_state_lost, .fini = stop)
{
	struct proto_hello_reply h;
	struct itest_client c;
	uint64_t token;

	token = keep_first(CONF);
	cr_assert_eq(harness_replace(&sm, "dirtyd-bits", -1), 0);
	assert_refused(token, "the store holds dirtyd-meta but no "
		       "dirtyd-bits: the dirty bitmaps are missing");
	/* and the other way round */
	token = keep_state();
	cr_assert_eq(harness_replace(&sm, "dirtyd-meta", -1), 0);
	assert_refused(token, "the store holds dirtyd-bits but no "
		       "dirtyd-meta: what the bitmaps belong to is missing");
	/* what dirtyd stored afresh is adopted at the next restart */
	token = keep_state();
	itest_up(&sm);
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 1 domains, 1 subscriptions", false));
	h = client(&c, token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED);
	itest_close(&c);
	cr_assert_eq(itest_stop(&sm), 0);
}

/* One byte flipped in the committed version, or in the superblock's
 * commit word. */
Test(restart, flipped_byte_state_lost, .fini = stop)
{
	char why[256];
	struct kept k;
	uint64_t token;

	token = keep_first(CONF);
	kept_read(&k);
	k.v[k.len / 2] ^= 0x20;
	kept_write(&k, false);
	snprintf(why, sizeof(why), "dirtyd-meta's committed version (seq "
		 "%llu, %llu bytes) fails its checksum: it is damaged",
		 (unsigned long long)k.sb.slot[k.slot].seq,
		 (unsigned long long)k.len);
	free(k.v);
	assert_refused(token, why);

	token = keep_state();
	kept_read(&k);
	free(k.v);
	k.sb.commit ^= 1ULL << 40;
	kept_write_super(&k);
	assert_refused(token, "dirtyd-meta's superblock names no committed "
		       "version (its commit word matches neither slot): it is "
		       "damaged");
	cr_assert_eq(itest_stop(&sm), 0);
}

/* The version @k written back with its checksum, then refused for @why. */
static void kept_refused(struct kept *k, uint64_t token, const char *why)
{
	kept_write(k, true);
	free(k->v);
	assert_refused(token, why);
}

/* Records that point past the end, with a checksum that matches: the
 * checks of the records catch them. */
Test(restart, record_past_end_state_lost, .fini = stop)
{
	char why[384];
	uint64_t s, d;
	struct kept k;
	uint64_t token;

	token = keep_first(CONF);
	kept_read(&k);
	cr_assert_eq(kept_nsubs(&k), 1);
	s = kept_sub_at(&k, 0);
	kv_put64(&k, s + STATE_SUB_PENDING_OFF, BITMEM_RESERVE);
	snprintf(why, sizeof(why), "dirtyd-meta: subscription 1 (domain %u)'s "
		 "pending bitmap, [%#llx, %#llx), lies past the end of "
		 "dirtyd-bits (%llu bytes)", kv32(&k, s + STATE_SUB_DOMAIN_ID),
		 (unsigned long long)BITMEM_RESERVE,
		 (unsigned long long)region_end(BITMEM_RESERVE,
						kv64(&k, s + STATE_SUB_NWORDS)),
		 (unsigned long long)BITMEM_RESERVE);
	kept_refused(&k, token, why);

	/* a count that runs past the end of the version */
	token = keep_state();
	kept_read(&k);
	d = kept_domain_at(&k, 0);
	kv_put32(&k, d + STATE_DOM_NMAPS, kv32(&k, d + STATE_DOM_NMAPS) + 1000);
	snprintf(why, sizeof(why), "dirtyd-meta: domain %u's %u devices, %u "
		 "mappings and %u retired ranges run past the end of the "
		 "version (%llu bytes)", kv32(&k, d + STATE_DOM_ID),
		 kv32(&k, d + STATE_DOM_NDEVICES), kv32(&k, d + STATE_DOM_NMAPS),
		 kv32(&k, d + STATE_DOM_NRETIRED), (unsigned long long)k.len);
	kept_refused(&k, token, why);

	/* an offset off the page, within the file */
	token = keep_state();
	kept_read(&k);
	s = kept_sub_at(&k, 0);
	kv_put64(&k, s + STATE_SUB_FLIGHT_OFF,
		 kv64(&k, s + STATE_SUB_FLIGHT_OFF) + 8);
	snprintf(why, sizeof(why), "dirtyd-meta: subscription 1 (domain %u)'s "
		 "flight bitmap is at offset %#llx of dirtyd-bits, not on a "
		 "page", kv32(&k, s + STATE_SUB_DOMAIN_ID),
		 (unsigned long long)kv64(&k, s + STATE_SUB_FLIGHT_OFF));
	kept_refused(&k, token, why);

	/* a record of another kind where a mapping should be */
	token = keep_state();
	kept_read(&k);
	d = kept_domain_at(&k, 0);
	{
		/* the first device's record: after the context's names */
		uint64_t dev = d - STATE_REC_HDR +
			       kv32(&k, d - STATE_REC_HDR + STATE_REC_LEN) +
			       (uint64_t)kv32(&k, d + STATE_DOM_NKEPT) *
			       BACKEND_NAME_MAX +
			       kv32(&k, d + STATE_DOM_BLOB_LEN);

		dev = (dev + 7) & ~7ULL;
		cr_assert_eq(kv32(&k, dev + STATE_REC_KIND), STATE_REC_DEVICE);
		kv_put32(&k, dev + STATE_REC_KIND, STATE_REC_MAP);
	}
	snprintf(why, sizeof(why), "dirtyd-meta: domain %u's device record 1 "
		 "is not one (another kind, or a length too short)",
		 kv32(&k, d + STATE_DOM_ID));
	kept_refused(&k, token, why);
	cr_assert_eq(itest_stop(&sm), 0);
}

/* A store of an older or a newer format: refused, never misparsed. */
Test(restart, other_format_state_lost, .fini = stop)
{
	char why[256];
	struct kept k;
	uint64_t token;

	token = keep_first(CONF);
	kept_read(&k);
	free(k.v);
	k.sb.format = STATE_FORMAT_OLDEST - 1;
	kept_write_super(&k);
	snprintf(why, sizeof(why), "dirtyd-meta is in format %u and this "
		 "dirtyd reads formats %u to %u only (an older dirtyd kept "
		 "it)", STATE_FORMAT_OLDEST - 1, STATE_FORMAT_OLDEST,
		 STATE_FORMAT);
	assert_refused(token, why);

	token = keep_state();
	kept_read(&k);
	free(k.v);
	k.sb.format = STATE_FORMAT + 1;
	kept_write_super(&k);
	snprintf(why, sizeof(why), "dirtyd-meta is in format %u and this "
		 "dirtyd reads formats %u to %u only (a newer dirtyd kept it)",
		 STATE_FORMAT + 1, STATE_FORMAT_OLDEST, STATE_FORMAT);
	assert_refused(token, why);
	cr_assert_eq(itest_stop(&sm), 0);
}

/*
 * The committed version rewritten as the format-3 dirtyd wrote it: the
 * same fields at the same offsets, no record headers (its bytes are in
 * tests/unit/state_v3/, read by test_state_format).
 */
static void kept_to_format_3(struct kept *k)
{
	uint8_t *v3 = calloc(1, k->len);
	uint64_t in = STATE_HEAD_SIZE, out = STATE_HEAD_SIZE;
	uint32_t nrec;

	cr_assert_not_null(v3);
	memcpy(v3, k->v, STATE_HEAD_SIZE);
	state_put_le32(v3 + STATE_HEAD_FORMAT, 3);
	/* a record: its fields without its header */
#define STRIP(size) do {						\
		cr_assert_eq(kv32(k, in + STATE_REC_LEN),		\
			     STATE_REC_HDR + (size));			\
		memcpy(v3 + out, k->v + in + STATE_REC_HDR, (size));	\
		in += STATE_REC_HDR + (size);				\
		out += (size);						\
	} while (0)
	for (uint32_t i = 0; i < kept_ndomains(k); i++) {
		uint64_t d = in + STATE_REC_HDR, tail;

		nrec = kv32(k, d + STATE_DOM_NDEVICES);
		/* format 3's domain record ended before the lease */
		cr_assert_eq(kv32(k, in + STATE_REC_LEN),
			     STATE_REC_HDR + STATE_DOM_SIZE);
		memcpy(v3 + out, k->v + d, STATE_DOM_SIZE_V3);
		in += STATE_REC_HDR + STATE_DOM_SIZE;
		out += STATE_DOM_SIZE_V3;
		tail = (uint64_t)kv32(k, d + STATE_DOM_NKEPT) *
		       BACKEND_NAME_MAX + kv32(k, d + STATE_DOM_BLOB_LEN);
		tail = (tail + 7) & ~7ULL;
		memcpy(v3 + out, k->v + in, tail);
		in += tail;
		out += tail;
		for (uint32_t r = 0; r < nrec; r++)
			STRIP(STATE_DEV_SIZE);
		for (uint32_t r = 0; r < kv32(k, d + STATE_DOM_NMAPS); r++)
			STRIP(STATE_MAP_SIZE);
		for (uint32_t r = 0; r < kv32(k, d + STATE_DOM_NRETIRED); r++)
			STRIP(STATE_RANGE_SIZE);
	}
	for (uint32_t i = 0; i < kept_nsubs(k); i++)
		STRIP(STATE_SUB_SIZE);
#undef STRIP
	cr_assert_eq(in, k->len);
	free(k->v);
	k->v = v3;
	k->len = out;
	k->sb.slot[k->slot].len = out;
	k->sb.format = 3;
	kept_write(k, true);
}

/*
 * SIGUSR2 is the upgrade path: the dirtyd that reads the store is not the
 * one that kept it.  A store of the previous format (3) is restored whole
 * (domains, mappings, tracking, the session, every page owed) and the
 * next commit writes it in this format.
 */
Test(restart, format_3_store_restores, .fini = stop)
{
	struct pageset w;
	struct itest_runs got = { 0 }, want = { 0 };
	struct proto_hello_reply h;
	struct itest_client c;
	struct kept k;
	uint32_t dom;

	rng_seed(5);
	ps_init(&w);
	itest_manage(&sm, CONF, true);
	itest_up(&sm);
	h = client(&c, 0);
	dom = make_domain(&c);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	for (int i = 0; i < 100; i++)
		write_page(&c, dom, random_page(), &w);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	harness_kill(&sm, SIGKILL);
	itest_close(&c);

	kept_read(&k);
	kept_to_format_3(&k);
	free(k.v);
	itest_up(&sm);
	if (!harness_log_has(&sm, "restored from the file descriptor store: 1 "
			     "domains, 1 subscriptions", false)) {
		itest_dump_log(&sm);
		cr_assert_fail("the format-3 store was not restored");
	}
	h = client(&c, h.session_token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED, "flags %#x",
		     h.session_flags);
	cr_assert_eq(itest_sync(&c, dom, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, NULL), 0, "%s",
		     c.text);
	ps_to_runs(&w, &want);
	itest_runs_assert_eq(&got, &want, "the pages owed, kept in format 3");
	/* written again in this format (kept_read() checks it) */
	kept_read(&k);
	cr_assert_eq(kv32(&k, STATE_HEAD_FORMAT), STATE_FORMAT);
	free(k.v);
	itest_close(&c);
	cr_assert_eq(itest_stop(&sm), 0);
	itest_runs_free(&got);
	itest_runs_free(&want);
	free(w.bits);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until_ms(uint64_t t)
{
	uint64_t now = mono_ms();

	if (t > now)
		sleep_us((unsigned int)(t - now) * 1000);
}

/*
 * resume_grace = 3 s.  A and B close at t0; 0.8 s later dirtyd is killed
 * and restarted twice: their deadline stays t0 + 3 s (with a grace from
 * each restart it would be after t0 + 3.8 s).  B resumes in time; killed
 * again with B connected, dirtyd is down until t0 + 3.5 s: at the next
 * start A's session has expired (STATE_LOST), B's is kept (RESUMED).
 */
Test(restart, park_keeps_first_deadline, .fini = stop)
{
	struct proto_hello_reply ha, hb, h;
	struct itest_client c, a, b;
	uint32_t dom;
	uint64_t t0;

	itest_manage(&sm, "resume_grace = 3\n" CONF, true);
	itest_up(&sm);
	client(&c, 0);
	dom = make_domain(&c);
	ha = client(&a, 0);
	hb = client(&b, 0);
	cr_assert_eq(itest_subscribe(&a, dom, 0, 0, NULL), 0);
	cr_assert_eq(itest_subscribe(&b, dom, 0, 0, NULL), 0);
	itest_close(&c);
	t0 = mono_ms();
	itest_close(&a);
	itest_close(&b);
	/* the tick records the parks and their deadline */
	sleep_us(800 * 1000);
	harness_kill(&sm, SIGKILL);
	itest_up(&sm);
	harness_kill(&sm, SIGKILL);
	itest_up(&sm);
	cr_assert_eq(harness_log_count(&sm, "restored from the file descriptor "
				      "store: 1 domains, 2 subscriptions of 2 "
				      "sessions", false), 2);
	cr_assert_lt(mono_ms(), t0 + 2500, "too slow to tell");
	h = client(&b, hb.session_token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED, "B in time");
	/* the tick records B as connected */
	sleep_us(600 * 1000);
	harness_kill(&sm, SIGKILL);
	itest_close(&b);
	sleep_until_ms(t0 + 3500);
	itest_up(&sm);
	cr_assert(harness_log_has(&sm, "a closed session of uid 0 expired", false));
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 1 domains, 1 subscriptions of 1 "
				 "sessions", false));
	h = client(&a, ha.session_token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_STATE_LOST, "A: flags %#x",
		     h.session_flags);
	itest_close(&a);
	h = client(&b, hb.session_token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED, "B: flags %#x",
		     h.session_flags);
	itest_close(&b);
	cr_assert_eq(itest_stop(&sm), 0);
}

/*
 * Adoption that keeps failing: a configured guest needs sim0, which the
 * kept domain holds, so every start that adopts the store exits before
 * serving.  Each says why; the third in a row is the last: the next
 * start refuses the store, creates the guest afresh and serves.
 */
Test(restart, failing_adoptions_back_off, .fini = stop)
{
	char line[512];
	uint64_t token;

	token = keep_first(CONF);
	cr_assert_eq(harness_configure(&sm, CONF "[guest g]\ndevice = sim0\n"
				       "size = 64M\niova = 0\n"
				       "tracking = yes\n"), 0);
	for (unsigned int i = 1; i <= STATE_MAX_TRIES; i++) {
		int r = harness_start(&sm), status = sm.wstatus;

		cr_assert_neq(r, 0, "start %u adopted the store and "
			      "failed", i);
		cr_assert_eq(r, -ECHILD, "start %u: %s", i, strerror(-r));
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1,
			  "start %u: exit status %#x", i, status);
		if (i == 1)
			continue;
		snprintf(line, sizeof(line), "dirtyd: warning: this store was "
			 "adopted %u time%s before by a dirtyd that ended "
			 "before it could serve (its log says why): adopting "
			 "it again, attempt %u of %u", i - 1, i > 2 ? "s" : "",
			 i, STATE_MAX_TRIES);
		if (!harness_log_has(&sm, line, false)) {
			itest_dump_log(&sm);
			cr_assert_fail("start %u: the log does not say\n%s", i,
				       line);
		}
	}
	cr_assert_eq(harness_log_count(&sm, "[guest g]", false),
		     STATE_MAX_TRIES, "each failing start says why");
	snprintf(line, sizeof(line), "the %u adoptions of this store before "
		 "this one each ended before dirtyd could serve (the log of "
		 "each start says why); it is not tried again",
		 STATE_MAX_TRIES);
	assert_refused_n(token, line, 1);
	cr_assert_eq(itest_stop(&sm), 0);
}

/*
 * One domain's kernel context torn (its dirtyd died in the middle of a
 * change to it: the sim's region says so) costs that domain only: the
 * other is restored whole and its session resumes with every page; the
 * session that tracked the torn one gets STATE_LOST; its device is free.
 */
Test(restart, torn_context_loses_that_domain_only, .fini = stop)
{
	struct pageset wa, wb;
	struct itest_runs got = { 0 }, want = { 0 };
	struct proto_hello_reply ha, hb;
	struct proto_create_domain_reply cr;
	struct proto_domain all[4];
	struct itest_client a, b;
	uint32_t da, db;
	uint64_t one = 1;
	char name[64], line[256];

	rng_seed(13);
	ps_init(&wa);
	ps_init(&wb);
	itest_manage(&sm, CONF, true);
	itest_up(&sm);
	ha = client(&a, 0);
	hb = client(&b, 0);
	da = make_domain_on(&a, "sim0");
	db = make_domain_on(&b, "sim1");
	cr_assert_eq(itest_subscribe(&a, da, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	cr_assert_eq(itest_subscribe(&b, db, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	for (int k = 0; k < 40; k++) {
		write_page(&a, da, random_page(), &wa);
		write_page(&b, db, random_page(), &wb);
	}
	cr_assert_eq(itest_sync(&a, da, NULL), 0);
	cr_assert_eq(itest_sync(&b, db, NULL), 0);
	harness_kill(&sm, SIGKILL);
	itest_close(&a);
	itest_close(&b);

	/* as if it died inside a change to domain da's context */
	snprintf(name, sizeof(name), "kernel-%u-sim", da);
	cr_assert_eq(pwrite(harness_stored_fd(&sm, name), &one, sizeof(one),
			    offsetof(struct sim_region, changing)),
		     (ssize_t)sizeof(one));
	itest_up(&sm);
	snprintf(line, sizeof(line), "domain %u (uid %u) is lost: its kernel "
		 "context was torn by the death of the dirtyd that held it in "
		 "the middle of a change", da, (unsigned int)getuid());
	if (!harness_log_has(&sm, line, false)) {
		itest_dump_log(&sm);
		cr_assert_fail("the log does not say:\n%s", line);
	}
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 1 domains, 1 subscriptions of 1 "
				 "sessions", false));
	cr_assert(harness_log_has(&sm, "; 1 domains lost", false));

	/* the other domain's session: every page it had not taken */
	hb = client(&b, hb.session_token);
	cr_assert_eq(hb.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(itest_sync(&b, db, NULL), 0);
	cr_assert_eq(itest_get_ranges(&b, db, 0, &got, NULL), 0, "%s",
		     b.text);
	ps_to_runs(&wb, &want);
	itest_runs_assert_eq(&got, &want, "the kept domain's pages");
	/* the torn one's: told */
	ha = client(&a, ha.session_token);
	cr_assert_eq(ha.session_flags, PROTO_SESSION_STATE_LOST);
	cr_assert_eq(itest_list_domains(&a, all, 4), 1);
	cr_assert_eq(all[0].domain_id, db);
	/* and its device is free again, in a domain with a new id */
	cr_assert_eq(itest_create(&a, "sim0", PROTO_CREATE_TRACKING, &cr), 0,
		     "%s", a.text);
	cr_assert_gt(cr.domain_id, db);
	snprintf(name, sizeof(name), "kernel-%u-sim", da);
	cr_assert_eq(harness_has(&sm, name), 0, "the torn context left the "
		     "store");
	itest_close(&a);
	itest_close(&b);
	itest_runs_free(&got);
	itest_runs_free(&want);
	free(wa.bits);
	free(wb.bits);
	cr_assert_eq(itest_stop(&sm), 0);
}

/*
 * A stop sent while dirtyd adopts the store (systemd restarting it during
 * a start) waits until dirtyd serves: it is never a death half-way
 * through the adoption, dirtyd exits 0 having served, and the next start
 * counts no failed adoption.  The configured guest, created after the
 * adoption, keeps the start busy for a while after the store is checked.
 */
Test(restart, stop_during_adoption_waits, .fini = stop)
{
	struct proto_hello_reply h;
	struct itest_client c;
	uint64_t token;
	int r, status = -1;

	token = keep_first(CONF);
	cr_assert_eq(harness_configure(&sm, CONF "[guest g]\ndevice = sim1\n"
				       "size = 64G\niova = 0\n"
				       "tracking = yes\ndma = none\n"), 0);
	cr_assert_eq(harness_spawn(&sm), 0);
	for (int i = 0; i < 10000 &&
	     !harness_log_has(&sm, "the store is checked and claimed", true);
	     i++)
		sleep_us(1000);
	cr_assert(harness_log_has(&sm, "the store is checked and claimed",
				  true));
	cr_assert_eq(kill(sm.pid, SIGTERM), 0);
	r = harness_wait_ready(&sm, HARNESS_START_MS);
	cr_assert_eq(r, 0, "SIGTERM during the adoption: %s (wait status "
		     "%#x)", strerror(-r), sm.wstatus);
	for (int i = 0; i < 20000 && !harness_exited(&sm, &status); i++)
		sleep_us(1000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit "
		  "status %#x", status);
	cr_assert(harness_log_has(&sm, "Terminated: stopping", true));

	itest_up(&sm);
	cr_assert(!harness_log_has(&sm, "adopted 1 time before", true),
		  "the stopped start counted as a failed adoption");
	cr_assert(harness_log_has(&sm, "restored from the file descriptor "
				 "store: 2 domains", true));
	h = client(&c, token);
	cr_assert_eq(h.session_flags, PROTO_SESSION_RESUMED, "flags %#x",
		     h.session_flags);
	itest_close(&c);
	cr_assert_eq(itest_stop(&sm), 0);
}
