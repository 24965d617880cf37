// SPDX-License-Identifier: MIT
/*
 * libdirty end to end against the real dirtyd on the simulated host: the
 * pages a device writes (dirty_dma_write(), the test's oracle) come back
 * from dirty_ranges() exactly, generation by generation, with ack, resend,
 * unmap, resume, state loss, events and dirtyd's refusals.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <dirtyd/dirty.h>

#include "test_client_daemon.h"
#include "tests/unit/test_rng.h"

#define PAGE 4096ULL
#define GUEST_IOVA (1ULL << 30)
#define GUEST_PAGES 65536ULL		/* 256 MiB */
#define GUEST_SIZE (GUEST_PAGES * PAGE)
#define FIRST_PAGE (GUEST_IOVA / PAGE)

static struct harness td;

static void start(void)
{
	td_start(&td, NULL);
}

static void stop(void)
{
	td_stop(&td);
}

TestSuite(libdirty_e2e, .init = start, .fini = stop, .timeout = 120);

/* A page set over the guest: the oracle, and what ranges reported. */
struct pageset {
	uint64_t bits[GUEST_PAGES / 64];
	uint64_t pages;
	uint64_t runs;
	bool outside;		/* a page outside the guest was reported */
};

static void ps_set(struct pageset *s, uint64_t page)
{
	uint64_t i = page - FIRST_PAGE;

	if (!(s->bits[i / 64] >> (i % 64) & 1)) {
		s->bits[i / 64] |= 1ULL << (i % 64);
		s->pages++;
	}
}

static int ps_collect(void *ctx, uint64_t first, uint64_t count)
{
	struct pageset *s = ctx;

	s->runs++;
	for (uint64_t p = first; p < first + count; p++) {
		if (p < FIRST_PAGE || p >= FIRST_PAGE + GUEST_PAGES) {
			s->outside = true;
			continue;
		}
		ps_set(s, p);
	}
	return 0;
}

static void ps_assert_equal(const struct pageset *got,
			    const struct pageset *want)
{
	cr_assert_not(got->outside, "a page outside the guest was reported");
	for (uint64_t w = 0; w < GUEST_PAGES / 64; w++)
		cr_assert_eq(got->bits[w], want->bits[w],
			     "pages %llu..%llu: got %#llx, wrote %#llx",
			     (unsigned long long)(FIRST_PAGE + w * 64),
			     (unsigned long long)(FIRST_PAGE + w * 64 + 63),
			     (unsigned long long)got->bits[w],
			     (unsigned long long)want->bits[w]);
	cr_assert_eq(got->pages, want->pages);
}

/* @n writes of 1..8 pages at random places; recorded in @oracle. */
static void write_random(struct dirty *d, uint32_t dom, unsigned int n,
			 struct pageset *oracle)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t len = 1 + rng() % 8;
		uint64_t page = rng() % (GUEST_PAGES - len);

		td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA + page * PAGE,
					 len * PAGE));
		for (uint64_t p = 0; p < len; p++)
			ps_set(oracle, FIRST_PAGE + page + p);
	}
}

static struct pageset *ps_new(void)
{
	struct pageset *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	return s;
}

/* A tracking domain on @device with the guest mapped and tracking on. */
static uint32_t guest(struct dirty *d, const char *device)
{
	uint32_t dom, dev_id;

	td_ok(d, dirty_domain_create(d, device, DIRTY_CREATE_TRACKING |
				     DIRTY_CREATE_NO_HUGE_PAGES, &dom,
				     &dev_id));
	cr_assert_gt(dom, 0);
	cr_assert_gt(dev_id, 0);
	td_ok(d, dirty_map(d, dom, GUEST_IOVA, GUEST_SIZE, 0));
	td_ok(d, dirty_track_start(d, dom));
	return dom;
}

Test(libdirty_e2e, ranges_are_exactly_the_pages_written)
{
	struct dirty_subscription_info info = { .size = sizeof(info) };
	struct pageset *want = ps_new(), *got = ps_new();
	struct dirty_domain **doms;
	struct dirty_stats **st;
	uint64_t gen, gen2, pending, sent;
	struct dirty *d = td_connect(&td, 0);
	uint32_t dom;
	size_t n;

	rng_seed(0x5eed0001);
	dom = guest(d, "sim0");

	td_ok(d, dirty_list_domains(d, &doms, &n));
	cr_assert_eq(n, 1);
	cr_assert_eq(doms[0]->domain_id, dom);
	cr_assert_eq(doms[0]->status,
		     DIRTY_DOMAIN_ENABLED | DIRTY_DOMAIN_SUPPORTED);
	cr_assert_eq(doms[0]->mapped_bytes, GUEST_SIZE);
	cr_assert_eq(doms[0]->page_size, PAGE);
	cr_assert_eq(doms[0]->devices, 1);
	free(doms);

	td_ok(d, dirty_subscribe(d, dom, 0, DIRTY_SUBSCRIBE_CLEAN, &info));
	cr_assert_eq(info.domain_id, dom);
	cr_assert_eq(info.page_size, PAGE);
	cr_assert_eq(info.max_leaf, PAGE, "NO_HUGE_PAGES: 4 KiB leaves");
	cr_assert_eq(dirty_subscribe(d, dom, 0, 0, NULL), -EEXIST);

	/* round 1: a random set, exactly */
	write_random(d, dom, 400, want);
	td_ok(d, dirty_sync(d, dom, &gen, &pending));
	cr_assert_eq(pending, want->pages);
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	ps_assert_equal(got, want);
	td_ok(d, dirty_ack(d, dom, gen));
	cr_assert_eq(dirty_ack(d, dom, gen), -ENOENT);

	/* nothing written: nothing reported */
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_sync(d, dom, NULL, &pending));
	cr_assert_eq(pending, 0);
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	cr_assert_eq(got->pages, 0);
	td_ok(d, dirty_ack(d, dom, gen));

	/* round 3: taken twice without ack (no round between: the same
	 * generation again), then with RESEND, then acknowledged */
	memset(want, 0, sizeof(*want));
	write_random(d, dom, 100, want);
	td_ok(d, dirty_sync(d, dom, NULL, NULL));
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	ps_assert_equal(got, want);
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen2));
	ps_assert_equal(got, want);
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, DIRTY_RANGES_RESEND | DIRTY_RANGES_ACK,
			      ps_collect, got, &gen2));
	ps_assert_equal(got, want);
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	cr_assert_eq(got->pages, 0, "acknowledged pages came back");
	td_ok(d, dirty_ack(d, dom, gen));

	td_ok(d, dirty_stats(d, dom, &st, &n));
	cr_assert_eq(n, 1);
	cr_assert_eq(st[0]->domain_id, dom);
	cr_assert_eq(st[0]->mapped_bytes, GUEST_SIZE);
	cr_assert_geq(st[0]->generation, 3);
	sent = st[0]->pages_sent;
	cr_assert_geq(sent, want->pages);
	free(st);

	td_ok(d, dirty_unsubscribe(d, dom));
	cr_assert_eq(dirty_unsubscribe(d, dom), -ENOENT);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
	free(want);
	free(got);
}

struct runs {
	uint64_t first[4];
	uint64_t count[4];
	unsigned int n;
};

static int runs_collect(void *ctx, uint64_t first, uint64_t count)
{
	struct runs *r = ctx;

	if (r->n < 4) {
		r->first[r->n] = first;
		r->count[r->n] = count;
	}
	r->n++;
	return 0;
}

Test(libdirty_e2e, a_new_subscription_has_every_page_pending)
{
	struct dirty *d = td_connect(&td, 0);
	struct runs runs = { 0 };
	uint64_t gen;
	uint32_t dom;

	dom = guest(d, "sim1");
	/* a second mapping, not adjacent */
	td_ok(d, dirty_map(d, dom, 4ULL << 30, 64 * PAGE, 0));
	td_ok(d, dirty_subscribe(d, dom, 0, 0, NULL));
	td_ok(d, dirty_ranges(d, dom, DIRTY_RANGES_ACK, runs_collect, &runs,
			      &gen));
	cr_assert_eq(runs.n, 2);
	cr_assert_eq(runs.first[0], FIRST_PAGE);
	cr_assert_eq(runs.count[0], GUEST_PAGES);
	cr_assert_eq(runs.first[1], (4ULL << 30) / PAGE);
	cr_assert_eq(runs.count[1], 64);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
}

Test(libdirty_e2e, refusals_name_the_device_and_the_reason)
{
	struct dirty *d = td_connect(&td, 0);
	struct dirty_device **devs;
	struct dirty_domain **doms;
	struct dirty_fds *fds;
	uint32_t dom, legacy_dom, dev_id;
	const char *text;
	size_t n;

	td_ok(d, dirty_list_devices(d, &devs, &n));
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		bool legacy = !strcmp(devs[i]->name, "legacy0");

		cr_assert_eq(!!(devs[i]->flags & DIRTY_DEVICE_DIRTY_CAPABLE),
			     !legacy, "%s", devs[i]->name);
	}
	free(devs);

	/* option a: a device that cannot track is refused, by name */
	cr_assert_eq(dirty_domain_create(d, "legacy0", DIRTY_CREATE_TRACKING,
					 &dom, NULL), -EOPNOTSUPP);
	text = dirty_last_error_text(d);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "legacy0"), "%s", text);
	cr_assert_eq(dirty_domain_create(d, "nosuch", 0, &dom, NULL),
		     -ENOENT);
	cr_assert_not_null(dirty_last_error_text(d));

	/* ... and goes into a domain of its own that does not track */
	td_ok(d, dirty_domain_create(d, "legacy0", 0, &legacy_dom, NULL));
	td_ok(d, dirty_list_domains(d, &doms, &n));
	cr_assert_eq(n, 1);
	cr_assert_eq(doms[0]->status, DIRTY_DOMAIN_UNSUPPORTED);
	free(doms);
	cr_assert_eq(dirty_track_start(d, legacy_dom), -EOPNOTSUPP);
	cr_assert_not_null(dirty_last_error_text(d));

	/* a tracking domain refuses it too, and says why */
	td_ok(d, dirty_domain_create(d, "sim0", DIRTY_CREATE_TRACKING, &dom,
				     NULL));
	cr_assert_eq(dirty_domain_attach(d, dom, "legacy0", NULL), -EBUSY);
	td_ok(d, dirty_domain_destroy(d, legacy_dom));
	cr_assert_eq(dirty_domain_attach(d, dom, "legacy0", NULL), -EINVAL);
	text = dirty_last_error_text(d);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "legacy0"), "%s", text);
	td_ok(d, dirty_domain_attach(d, dom, "sim1", &dev_id));
	cr_assert_gt(dev_id, 0);
	cr_assert_eq(dirty_domain_create(d, "sim1", 0, &legacy_dom, NULL),
		     -EBUSY);
	td_ok(d, dirty_domain_detach(d, dom, "sim1"));

	/* tracking off: no sync */
	td_ok(d, dirty_subscribe(d, dom, 0, 0, NULL));
	cr_assert_eq(dirty_sync(d, dom, NULL, NULL), -EINVAL);
	cr_assert_not_null(dirty_last_error_text(d));

	/* the sim has no descriptors to hand out */
	cr_assert_eq(dirty_get_fds(d, dom, &fds), -EOPNOTSUPP);
	/* misaligned, unmapped */
	cr_assert_eq(dirty_map(d, dom, 100, PAGE, 0), -EINVAL);
	cr_assert_eq(dirty_dma_write(d, dom, 0, PAGE), -ENOENT);

	td_ok(d, dirty_domain_destroy(d, dom));
	cr_assert_eq(dirty_track_start(d, dom), -ENOENT);
	cr_assert_eq(dirty_domain_destroy(d, dom), -ENOENT);
	td_ok(d, dirty_list_domains(d, &doms, &n));
	cr_assert_eq(n, 0);
	free(doms);
	dirty_close(d);
}

Test(libdirty_e2e, pages_written_before_an_unmap_are_delivered)
{
	struct pageset *want = ps_new(), *got = ps_new();
	struct dirty *d = td_connect(&td, 0);
	uint64_t gen;
	uint32_t dom;

	td_ok(d, dirty_domain_create(d, "sim2", DIRTY_CREATE_TRACKING |
				     DIRTY_CREATE_NO_HUGE_PAGES, &dom, NULL));
	/* the guest in two mappings: dirtyd unmaps whole mappings only */
	td_ok(d, dirty_map(d, dom, GUEST_IOVA, GUEST_SIZE / 2, 0));
	td_ok(d, dirty_map(d, dom, GUEST_IOVA + GUEST_SIZE / 2,
			   GUEST_SIZE / 2, 0));
	td_ok(d, dirty_track_start(d, dom));
	td_ok(d, dirty_subscribe(d, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL));
	/* the first half is written, then unmapped before any sync */
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA + 10 * PAGE, 5 * PAGE));
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA + GUEST_SIZE / 2,
				 PAGE));
	for (uint64_t p = 10; p < 15; p++)
		ps_set(want, FIRST_PAGE + p);
	ps_set(want, FIRST_PAGE + GUEST_PAGES / 2);
	td_ok(d, dirty_unmap(d, dom, GUEST_IOVA, GUEST_SIZE / 2));
	td_ok(d, dirty_sync(d, dom, NULL, NULL));
	td_ok(d, dirty_ranges(d, dom, DIRTY_RANGES_ACK, ps_collect, got,
			      &gen));
	ps_assert_equal(got, want);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
	free(want);
	free(got);
}

Test(libdirty_e2e, resume_gets_the_subscription_back)
{
	struct pageset *want = ps_new(), *got = ps_new();
	struct dirty_session s = { .size = sizeof(s) };
	struct dirty *d = td_connect(&td, 0), *d2 = NULL;
	uint64_t token, gen;
	uint32_t dom;

	dom = guest(d, "sim0");
	td_ok(d, dirty_subscribe(d, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL));
	token = dirty_session_token(d);
	cr_assert_neq(token, 0);
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA, 3 * PAGE));
	for (uint64_t p = 0; p < 3; p++)
		ps_set(want, FIRST_PAGE + p);
	td_ok(d, dirty_sync(d, dom, NULL, NULL));
	/* taken, not acknowledged: in flight when the connection ends */
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	ps_assert_equal(got, want);
	dirty_close(d);

	cr_assert_eq(dirty_connect_resume(td.sock, token, 0, &d2), 0);
	td_ok(d2, dirty_session(d2, &s));
	cr_assert_eq(s.flags, DIRTY_SESSION_RESUMED);
	memset(got, 0, sizeof(*got));
	td_ok(d2, dirty_ranges(d2, dom, DIRTY_RANGES_ACK, ps_collect, got,
			       &gen));
	ps_assert_equal(got, want);
	td_ok(d2, dirty_domain_destroy(d2, dom));
	dirty_close(d2);

	/* a token dirtyd never gave */
	cr_assert_eq(dirty_connect_resume(td.sock, token ^ 0xff, 0, &d2), 0);
	td_ok(d2, dirty_session(d2, &s));
	cr_assert_eq(s.flags, DIRTY_SESSION_STATE_LOST);
	dirty_close(d2);
	free(want);
	free(got);
}

Test(libdirty_e2e, state_lost_after_the_grace_reports_every_page)
{
	struct pageset *got = ps_new();
	struct dirty_session s = { .size = sizeof(s) };
	struct dirty *d = td_connect(&td, 0);
	uint64_t gen;
	uint32_t dom;

	dom = guest(d, "sim1");
	td_ok(d, dirty_subscribe(d, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL));
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA, PAGE));
	/* the connection breaks; the grace (2 s) runs out */
	shutdown(dirty_fd(d), SHUT_RDWR);
	cr_assert_lt(dirty_sync(d, dom, NULL, NULL), 0);
	td_sleep_ms(3500);
	td_ok(d, dirty_reconnect(d));
	td_ok(d, dirty_session(d, &s));
	cr_assert_eq(s.flags, DIRTY_SESSION_STATE_LOST);
	/* the library subscribes again: every mapped page */
	td_ok(d, dirty_ranges(d, dom, DIRTY_RANGES_ACK, ps_collect, got,
			      &gen));
	cr_assert_eq(got->pages, GUEST_PAGES);
	cr_assert_eq(got->runs, 1);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
	free(got);
}

Test(libdirty_e2e, periodic_rounds_send_events)
{
	struct dirty_event ev = { .size = sizeof(ev) };
	struct dirty *d = td_connect(&td, 0);
	uint32_t dom;
	int r = 0;

	dom = guest(d, "sim2");
	td_ok(d, dirty_subscribe(d, dom, 50, DIRTY_SUBSCRIBE_CLEAN, NULL));
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA + 7 * PAGE, PAGE));
	for (int i = 0; i < 100 && r == 0; i++) {
		struct pollfd pfd = { .fd = dirty_fd(d), .events = POLLIN };

		r = dirty_next_event(d, &ev);
		if (r == 0)
			poll(&pfd, 1, 50);
	}
	cr_assert_eq(r, 1, "no event within 5 s (%d)", r);
	cr_assert_eq(ev.type, DIRTY_EVENT_ROUND);
	cr_assert_eq(ev.domain_id, dom);
	cr_assert_gt(ev.generation, 0);
	cr_assert_geq(ev.pending_pages, 1);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
}

/* Bit @k of a little-endian bitmap of unsigned longs, read byte by byte:
 * byte k / 8 of a little-endian word array holds bits k - k % 8 on. */
static bool lebit(const unsigned long *map, uint64_t k)
{
	return ((const uint8_t *)map)[k / 8] >> (k % 8) & 1;
}

/* Any page of @s in the bytes [a, b) of the guest? */
static bool ps_any(const struct pageset *s, uint64_t a, uint64_t b)
{
	for (uint64_t p = a / PAGE; p * PAGE < b; p++) {
		uint64_t i = p - FIRST_PAGE;

		if (s->bits[i / 64] >> (i % 64) & 1)
			return true;
	}
	return false;
}

/*
 * dirty_ranges_lebitmap() against dirty_ranges() of the same generation
 * (taken again: no round in between), bit by bit, at the domain's page
 * size and coarser and finer ones; what was set before stays set; a window
 * that leaves runs out is -ERANGE and loses nothing.
 */
Test(libdirty_e2e, lebitmap_is_the_runs_bit_by_bit)
{
	static const uint64_t sizes[] = { PAGE, 2 * PAGE, 16 * PAGE,
					  512 * PAGE, PAGE / 4 };
	struct pageset *want = ps_new(), *got = ps_new();
	struct dirty *d = td_connect(&td, 0);
	uint64_t gen, gen2, half = GUEST_SIZE / 2;
	bool in_half = false, past_half = false;
	unsigned long *map;
	uint32_t dom;

	cr_assert_eq(dirty_version(), DIRTY_VERSION_NUMBER);
	cr_assert_eq(DIRTY_VERSION_NUMBER, DIRTY_VERSION(1, 0, 0));
	cr_assert_str_eq(dirty_version_string(), "1.0.0");

	rng_seed(0x5eed1eb1);
	dom = guest(d, "sim2");
	td_ok(d, dirty_subscribe(d, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL));
	write_random(d, dom, 300, want);
	/* and a run across a word of bits at every page size up to 512 */
	td_ok(d, dirty_dma_write(d, dom, GUEST_IOVA + 1000 * PAGE,
				 100 * PAGE));
	for (uint64_t p = 1000; p < 1100; p++)
		ps_set(want, FIRST_PAGE + p);
	td_ok(d, dirty_sync(d, dom, NULL, NULL));
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	ps_assert_equal(got, want);

	map = calloc(GUEST_SIZE / (PAGE / 4) / 8, 1);
	cr_assert_not_null(map);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t ps = sizes[i], nbits = GUEST_SIZE / ps;

		memset(map, 0, nbits / 8);
		/* a bit set before: ORed, never cleared */
		((uint8_t *)map)[nbits / 8 - 1] |= 0x80;
		td_ok(d, dirty_ranges_lebitmap(d, dom, 0, GUEST_IOVA,
					       GUEST_SIZE, ps, map, &gen2));
		cr_assert_eq(gen2, gen, "the same generation again");
		for (uint64_t k = 0; k < nbits; k++) {
			uint64_t a = GUEST_IOVA + k * ps;
			bool w = ps_any(got, a, a + ps) || k == nbits - 1;

			cr_assert_eq(lebit(map, k), w, "page size %llu: bit "
				     "%llu is %d", (unsigned long long)ps,
				     (unsigned long long)k, lebit(map, k));
		}
	}

	/* the first half only: what lies in it is set, the rest is not
	 * lost: -ERANGE, nothing acknowledged */
	for (uint64_t p = 0; p < GUEST_PAGES; p++) {
		bool set = ps_any(want, GUEST_IOVA + p * PAGE,
				  GUEST_IOVA + (p + 1) * PAGE);

		in_half |= set && p * PAGE < half;
		past_half |= set && p * PAGE >= half;
	}
	cr_assert(in_half && past_half);
	memset(map, 0, half / PAGE / 8);
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, DIRTY_RANGES_ACK,
					   GUEST_IOVA, half, PAGE, map, &gen2),
		     -ERANGE);
	cr_assert_eq(gen2, gen);
	for (uint64_t k = 0; k < half / PAGE; k++)
		cr_assert_eq(lebit(map, k),
			     ps_any(want, GUEST_IOVA + k * PAGE,
				    GUEST_IOVA + (k + 1) * PAGE), "bit %llu",
			     (unsigned long long)k);
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, DIRTY_RANGES_RESEND, ps_collect, got,
			      &gen2));
	ps_assert_equal(got, want);

	/* the whole guest, with ACK: then nothing is left */
	memset(map, 0, GUEST_SIZE / PAGE / 8);
	td_ok(d, dirty_ranges_lebitmap(d, dom, DIRTY_RANGES_ACK, GUEST_IOVA,
				       GUEST_SIZE, PAGE, map, &gen2));
	memset(got, 0, sizeof(*got));
	td_ok(d, dirty_ranges(d, dom, 0, ps_collect, got, &gen));
	cr_assert_eq(got->pages, 0, "acknowledged pages came back");

	/* bad windows never take a generation */
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, 0, GUEST_IOVA, GUEST_SIZE,
					   3 * PAGE, map, NULL), -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, 0, GUEST_IOVA + PAGE / 2,
					   GUEST_SIZE, PAGE, map, NULL),
		     -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, 0, GUEST_IOVA, 0, PAGE,
					   map, NULL), -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, 0, GUEST_IOVA, GUEST_SIZE,
					   PAGE, NULL, NULL), -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, dom, 0, ~0ULL & ~(PAGE - 1),
					   2 * PAGE, PAGE, map, NULL),
		     -EINVAL);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_close(d);
	free(map);
	free(want);
	free(got);
}

/*
 * Adoption through libdirty on the sim: the ids and the lease without
 * descriptors (DIRTY_ADOPT_NO_IOMMUFD), EBUSY while adopted, the sizes of
 * the structs the library returns, the refusals of READOPT and of
 * dirty_ioas_map() where no iommufd exists (tests/vm/guest_adopt.c runs
 * them on the real kernel).
 */
Test(libdirty_e2e, adopt_on_the_sim)
{
	struct dirty *d = td_connect(&td, 0);
	struct dirty_adoption *a = NULL;
	struct dirty_readopt_device dev = { .size = sizeof(dev), .fd = -1,
					    .name = "sim1" };
	const struct dirty_readopt_device *devs[] = { &dev };
	struct dirty_readopt r = {
		.size = sizeof(r), .iommufd = -1, .n_devices = 1,
		.devices = devs,
	};
	static char mem[2 * 4096] __attribute__((aligned(4096)));
	uint32_t dom = guest(d, "sim0"), nd = 0;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), e;

	td_ok(d, dirty_adopt(d, dom, &a));
	cr_assert_eq(a->size, sizeof(*a));
	cr_assert_eq(a->domain_id, dom);
	cr_assert_eq(a->flags, DIRTY_ADOPT_HUGE_PAGES_OFF |
		     DIRTY_ADOPT_NO_IOMMUFD);
	cr_assert_eq(a->iommufd, -1);
	cr_assert_eq(a->page_size, PAGE);
	cr_assert_neq(a->lease, 0);
	cr_assert_eq(a->status, DIRTY_DOMAIN_SUPPORTED | DIRTY_DOMAIN_ENABLED);
	cr_assert_eq(a->n_devices, 1);
	cr_assert_eq(a->devices[0]->size, sizeof(*a->devices[0]));
	cr_assert_str_eq(a->devices[0]->name, "sim0");
	cr_assert_eq(a->devices[0]->fd, -1);
	cr_assert_eq(a->devices[0]->flags, DIRTY_ADOPT_DEV_BOUND |
		     DIRTY_ADOPT_DEV_ATTACHED);
	cr_assert_eq(dirty_adopt(d, dom, &a), -EBUSY);
	cr_assert_eq(dirty_domain_destroy(d, dom), -EBUSY);
	cr_assert(strstr(dirty_last_error_text(d), "UNADOPT first"));
	/* READOPT: the sim has nothing to take back; a bad struct: EINVAL */
	cr_assert_eq(dirty_readopt(d, &r, &nd), -EINVAL, "iommufd -1");
	cr_assert_geq(null, 0);
	r.iommufd = null;
	dev.size = 1;
	cr_assert_eq(dirty_readopt(d, &r, &nd), -EINVAL, "size 1");
	dev.size = sizeof(dev);
	e = dirty_readopt(d, &r, &nd);
	cr_assert_eq(e, -EOPNOTSUPP, "%d %s", e, dirty_last_error_text(d));
	cr_assert_eq(nd, 0);
	/* no iommufd to map through: the kernel's refusal, nothing declared */
	cr_assert_eq(dirty_ioas_map(d, dom, null, a->ioas_id, mem, 1ULL << 40,
				    sizeof(mem), 0), -ENOTTY);
	close(null);
	td_ok(d, dirty_unadopt(d, dom));
	cr_assert_eq(dirty_unadopt(d, dom), -EINVAL);
	td_ok(d, dirty_domain_destroy(d, dom));
	dirty_adoption_free(a);
	dirty_close(d);
}
