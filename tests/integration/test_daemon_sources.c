// SPDX-License-Identifier: MIT
/*
 * A domain's sources (issue 17; PROTOCOL.md 6.4, 6.7): how each device is
 * seen, the refusals and their reasons, the overrides, ALL_DIRTY, read-only
 * mappings never harvested, and the read of every source right before an
 * unmap.  The daemon runs in process (tests/inproc) with its loop on a
 * thread of the test's, which the test stops to act between two steps of
 * the daemon (a write after the last round, before the unmap).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "daemon/domain/domain_private.h"
#include "daemon/util/log.h"
#include "itest.h"
#include "tests/inproc/inproc.h"

#define PG 4096ULL
#define BASE (1ULL << 30)
#define RO_BASE (2ULL << 30)

/* ------------------------------------------------------------ the loop */

static pthread_t loop_thread;
static atomic_bool loop_stop;
static struct harness dd;

static void *loop_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&loop_stop))
		inproc_pump(true, 10);
	return NULL;
}

/* The daemon's loop runs (on its thread) or not (the test may reach in). */
static void loop_run(bool run)
{
	if (run) {
		atomic_store(&loop_stop, false);
		cr_assert_eq(pthread_create(&loop_thread, NULL, loop_main,
					    NULL), 0);
	} else {
		atomic_store(&loop_stop, true);
		cr_assert_eq(pthread_join(loop_thread, NULL), 0);
	}
}

static void up(const char *dirty_source)
{
	log_setup("test_daemon_sources", LOG_CRIT);
	log_set_max_level(LOG_CRIT);
	inproc_config();
	inproc_set("daemon", "workers", "1");
	if (dirty_source)
		inproc_set("daemon", "dirty_source", dirty_source);
	inproc_set("sim", "devices", "sim0:dirty, sim1:dirty, legacy0:nodirty,"
		   " legacy1:nodirty, far0:dirty iommu=1, vf0:nodirty iommu=1 "
		   "dma_logging=yes, vf1:dirty dma_logging=yes "
		   "dma_log_page_size=8k, mtty0:nodirty emulated=yes "
		   "dma_logging=yes, mtty1:nodirty emulated=yes");
	inproc_set("sim", "backing_page_size", "4k");
	inproc_start();
	inproc_listen();
	snprintf(dd.sock, sizeof(dd.sock), "%s", inproc_cfg.socket);
	loop_run(true);
}

static void down(void)
{
	loop_run(false);
	inproc_stop();
}

static void client(struct itest_client *c)
{
	cr_assert_eq(itest_connect(&dd, c), 0);
	itest_hello(c, 0, 0, NULL);
}

static int map(struct itest_client *c, uint32_t dom, uint32_t flags,
	       uint64_t iova, uint64_t length)
{
	struct proto_msg m = { .type = PROTO_MAP, .map = {
		.domain_id = dom, .flags = flags, .iova = iova,
		.length = length } }, r;

	return itest_call(c, &m, &r);
}

/* Exactly the pages [@first, @first + @n) pending in @dom's subscription,
 * taken and acknowledged. */
static void expect_pages(struct itest_client *c, uint32_t dom,
			 uint64_t first, uint64_t n, const char *what)
{
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;

	cr_assert_eq(itest_get_ranges(c, dom, 0, &got, &info), 0);
	if (n)
		itest_runs_add(&want, first, n);
	itest_runs_assert_eq(&got, &want, what);
	cr_assert_eq(itest_ack(c, dom, info.generation), 0);
	itest_runs_free(&got);
	itest_runs_free(&want);
}

/* ------------------------------------------------------------ refusals */

Test(sources, refusals_say_why_and_overrides_narrow)
{
	struct proto_create_domain_reply a, b;
	struct itest_client c;

	up(NULL);
	client(&c);
	/* neither way: refused, naming the device and both ways */
	cr_assert_eq(itest_create(&c, "legacy0", PROTO_CREATE_TRACKING, NULL),
		     -EOPNOTSUPP);
	cr_assert(strstr(c.text, "device legacy0 cannot track dirty pages") &&
		  strstr(c.text, "IOMMU_HW_CAP_DIRTY_TRACKING") &&
		  strstr(c.text, "no DMA logging") &&
		  strstr(c.text, "ALL_DIRTY"), "text: %s", c.text);
	/* device logging only: sim0 has none (its IOMMU's bits do not
	 * count then) */
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_DEVICE, NULL),
		     -EOPNOTSUPP);
	cr_assert(strstr(c.text, "device sim0") &&
		  strstr(c.text, "device DMA logging only"), "text: %s",
		  c.text);
	/* IOMMU only: sim0 is tracked so; both flags: the rule */
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_IOMMU, &a), 0);
	cr_assert_eq(a.status, PROTO_DOMAIN_SUPPORTED);
	cr_assert_eq(itest_create(&c, "sim1", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_IOMMU |
				  PROTO_CREATE_SOURCE_DEVICE, &b), 0);
	cr_assert_eq(b.status, PROTO_DOMAIN_SUPPORTED);
	/* a device that cannot track cannot join; nothing changed */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "legacy0", NULL), -EINVAL);
	cr_assert(strstr(c.text, "legacy0 cannot join tracking domain") &&
		  strstr(c.text, "IOMMU dirty bits only"), "text: %s", c.text);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, b.domain_id),
		     0);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim1", NULL), 0);
	itest_close(&c);
	down();
}

Test(sources, dirty_source_device_in_the_config)
{
	struct proto_create_domain_reply a;
	struct itest_client c;

	up("device");
	client(&c);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING, NULL),
		     -EOPNOTSUPP);
	cr_assert(strstr(c.text, "device DMA logging only"), "text: %s",
		  c.text);
	/* the client's flag wins over the configuration */
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_IOMMU, &a), 0);
	cr_assert_eq(a.status, PROTO_DOMAIN_SUPPORTED);
	itest_close(&c);
	down();
}

/* ------------------------------------------------------------ ALL_DIRTY */

Test(sources, all_dirty_reports_every_writeable_page_every_round)
{
	struct proto_create_domain_reply a;
	struct proto_domain doms[4];
	struct itest_client c;

	up(NULL);
	client(&c);
	cr_assert_eq(itest_create(&c, "legacy0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_ALL_DIRTY |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(a.status, PROTO_DOMAIN_SUPPORTED | PROTO_DOMAIN_ALL_DIRTY);
	/* another such device may join it; one that tracks too */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "legacy1", NULL), 0);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim0", NULL), 0);
	cr_assert_eq(map(&c, a.domain_id, PROTO_MAP_READABLE |
			 PROTO_MAP_WRITEABLE, BASE, 64 * PG), 0);
	cr_assert_eq(map(&c, a.domain_id, PROTO_MAP_READABLE, RO_BASE,
			 16 * PG), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_list_domains(&c, doms, 4), 1);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_SUPPORTED |
		     PROTO_DOMAIN_ENABLED | PROTO_DOMAIN_ALL_DIRTY);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	/* every round: every writeable page, never the read-only ones */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
		expect_pages(&c, a.domain_id, BASE / PG, 64, "all dirty");
	}
	/* without the devices that track neither way, only writes */
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "legacy0", NULL), 0);
	cr_assert_eq(itest_list_domains(&c, doms, 4), 1);
	cr_assert(doms[0].status & PROTO_DOMAIN_ALL_DIRTY);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "legacy1", NULL), 0);
	cr_assert_eq(itest_list_domains(&c, doms, 4), 1);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_SUPPORTED |
		     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	expect_pages(&c, a.domain_id, 0, 0, "tracked: nothing written");
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, BASE + 7 * PG,
			       2 * PG), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	expect_pages(&c, a.domain_id, BASE / PG + 7, 2, "tracked: written");
	itest_close(&c);
	down();
}

/* ------------------------------------------------------------ unmap */

/*
 * A page written after the last round and before the kernel's unmap still
 * reaches the subscriber: the unmap reads every source first (NO_CLEAR).
 * The loop is stopped between the write and the unmap, which runs with no
 * round before it (as the part of an UNMAP after its round does).
 */
static void unmap_reads_last_writes(const char *device)
{
	struct proto_create_domain_reply a;
	struct itest_client c;
	struct domain *d;
	struct error e = ERROR_INIT;

	up(NULL);
	client(&c);
	cr_assert_eq(itest_create(&c, device, PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, BASE, 64 * PG), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, BASE + 3 * PG,
			       PG), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	expect_pages(&c, a.domain_id, BASE / PG + 3, 1, "the last round");

	loop_run(false);
	d = domain_find(&inproc_srv, a.domain_id);
	cr_assert_not_null(d);
	cr_assert_eq(backend_dma_write(d->kctx, domain_first_device(d)->dev_id,
				       BASE + 41 * PG, 2 * PG), 0);
	cr_assert_eq(domain_unmap(d, BASE, 64 * PG, 0, &e, NULL, NULL), 0,
		     "%s", error_text(&e, -1));
	cr_assert_eq(d->nmaps, 0);
	cr_assert_eq(d->nretired, 1);	/* held: the pages are pending */
	loop_run(true);

	expect_pages(&c, a.domain_id, BASE / PG + 41, 2, "before the unmap");
	/* taken and acknowledged: nobody holds the range any more */
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	expect_pages(&c, a.domain_id, 0, 0, "after");
	itest_close(&c);
	down();
}

/* sim0: its HWPT read with NO_CLEAR */
Test(sources, a_write_between_the_last_round_and_the_unmap_is_delivered)
{
	unmap_reads_last_writes("sim0");
}

/* vf0 (no dirty bits): its DMA log reported */
Test(sources, a_logged_write_between_the_last_round_and_the_unmap)
{
	unmap_reads_last_writes("vf0");
}

/* ------------------------------------------------------------ DMA logs */

/* START's ranges: merged at the smallest gaps first down to the limit,
 * in order, covering every range given. */
Test(sources, log_ranges_join_the_smallest_gaps)
{
	const struct backend_dma_log_range in[] = {
		{ 0x0, 0x1000 }, { 0x3000, 0x1000 },	/* gap 0x2000 */
		{ 0x5000, 0x1000 },			/* gap 0x1000 */
		{ 0x100000, 0x2000 },			/* gap 0xfa000 */
		{ 0x103000, 0x1000 },			/* gap 0x1000 */
	};
	struct backend_dma_log_range out[5];

	cr_assert_eq(domain_log_ranges(in, 5, 256, out), 5);
	cr_assert_eq(memcmp(out, in, sizeof(in)), 0);
	/* two gaps of 0x1000 go first */
	cr_assert_eq(domain_log_ranges(in, 5, 3, out), 3);
	cr_assert_eq(out[0].iova, 0x0);
	cr_assert_eq(out[0].length, 0x1000);
	cr_assert_eq(out[1].iova, 0x3000);
	cr_assert_eq(out[1].length, 0x3000);
	cr_assert_eq(out[2].iova, 0x100000);
	cr_assert_eq(out[2].length, 0x4000);
	/* then 0x2000; the largest gap last */
	cr_assert_eq(domain_log_ranges(in, 5, 2, out), 2);
	cr_assert_eq(out[0].iova, 0x0);
	cr_assert_eq(out[0].length, 0x6000);
	cr_assert_eq(out[1].iova, 0x100000);
	cr_assert_eq(domain_log_ranges(in, 5, 1, out), 1);
	cr_assert_eq(out[0].length, 0x104000);
	/* one of two equal gaps, the first */
	cr_assert_eq(domain_log_ranges(in, 5, 4, out), 4);
	cr_assert_eq(out[1].iova, 0x3000);
	cr_assert_eq(out[1].length, 0x3000);
	cr_assert_eq(out[3].iova, 0x103000);
	cr_assert_eq(domain_log_ranges(in, 0, 4, out), 0);
}

/* ------------------------------------------------------------ reporting */

static unsigned int list_sources(struct itest_client *c, uint32_t dom,
				 struct proto_source *out, unsigned int max)
{
	struct proto_msg m = { .type = PROTO_LIST_SOURCES,
			       .domain_op = { dom } }, r;
	unsigned int n;

	cr_assert_eq(itest_call(c, &m, &r), 0, "LIST_SOURCES: %s", c->text);
	cr_assert_eq(r.type, PROTO_LIST_SOURCES_REPLY);
	cr_assert_eq(r.flags, 0);
	cr_assert_leq(r.list.count, max);
	n = r.list.count;
	for (unsigned int i = 0; i < n; i++)
		proto_source_at(&r, i, &out[i]);
	return n;
}

Test(sources, list_sources_and_the_device_flag)
{
	struct proto_create_domain_reply a, b;
	struct proto_msg m = { .type = PROTO_LIST_SOURCES }, r;
	struct proto_source src[8];
	struct proto_device devs[16];
	struct itest_client c, old;

	up(NULL);
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_SOURCES, 0, NULL);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim1", NULL), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, BASE, 64 * PG), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, 0, NULL), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	/* both devices take the first's HWPT (one IOMMU): one source */
	cr_assert_eq(list_sources(&c, a.domain_id, src, 8), 1);
	cr_assert_eq(src[0].domain_id, a.domain_id);
	cr_assert_eq(src[0].kind, PROTO_SOURCE_HWPT);
	cr_assert_neq(src[0].id, 0);
	cr_assert_eq(src[0].devices, 2);
	cr_assert_str_eq(src[0].device, "sim0");
	cr_assert_eq(src[0].page_size, 4096);
	cr_assert_eq(src[0].ranges, 0);
	cr_assert_eq(src[0].rounds, 2);
	cr_assert_eq(src[0].errors, 0);
	/* a domain without tracking: its plain HWPT; ALL_DIRTY too */
	cr_assert_eq(itest_create(&c, "legacy0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_ALL_DIRTY, &b), 0);
	cr_assert_eq(list_sources(&c, b.domain_id, src, 8), 1);
	cr_assert_eq(src[0].kind, PROTO_SOURCE_HWPT_PLAIN);
	cr_assert_str_eq(src[0].device, "legacy0");
	cr_assert_eq(src[0].rounds, 0);
	/* no such domain; without the feature */
	m.domain_op.domain_id = 999;
	cr_assert_eq(itest_call(&c, &m, &r), -ENOENT);
	cr_assert_eq(itest_connect(&dd, &old), 0);
	itest_hello(&old, 0, 0, NULL);
	m.domain_op.domain_id = a.domain_id;
	cr_assert_eq(itest_call(&old, &m, &r), -EOPNOTSUPP);
	cr_assert(strstr(old.text, "SOURCES"), "text: %s", old.text);
	/* the devices that log their DMA, and only they, say so */
	cr_assert_eq(itest_list_devices(&c, devs, 16), 9);
	for (unsigned int i = 0; i < 9; i++)
		cr_assert_eq(!!(devs[i].flags & PROTO_DEVICE_DMA_LOGGING),
			     !strcmp(devs[i].name, "vf0") ||
			     !strcmp(devs[i].name, "vf1") ||
			     !strcmp(devs[i].name, "mtty0"), "%s",
			     devs[i].name);
	itest_close(&old);
	itest_close(&c);
	down();
}

/* ------------------------------------------------------------ sources */

/* @name's dev_id in @d (the loop stopped). */
static uint32_t dev_id_of(struct domain *d, const char *name)
{
	struct domain_device *dev;

	list_for_each_entry(dev, &d->devices, link)
		if (!strcmp(dev->name, name))
			return dev->dev_id;
	cr_assert_fail("no device %s in domain %u", name, d->id);
	return 0;
}

/* Each device of @names writes its pages of @w (pairs: device index,
 * page of BASE) as its DMA would, the loop stopped. */
struct write { unsigned int dev; uint64_t page, n; };

static void dma(uint32_t dom, const char *const *names, const struct write *w,
		size_t n)
{
	struct domain *d;

	loop_run(false);
	d = domain_find(&inproc_srv, dom);
	cr_assert_not_null(d);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(backend_dma_write(d->kctx,
					       dev_id_of(d, names[w[i].dev]),
					       BASE + w[i].page * PG,
					       w[i].n * PG), 0,
			     "%s writes page %lu", names[w[i].dev],
			     (unsigned long)w[i].page);
	loop_run(true);
}

/* The oracle across sources: every page each device wrote (@w; or, where
 * a source is coarser, @seen), and no other, reaches each of two
 * subscribers, round after round. */
static void oracle_seen(struct itest_client c[2], uint32_t dom,
			const char *const *names, const struct write *w,
			size_t n, const struct write *seen, size_t nseen,
			const char *what)
{
	struct itest_runs want = { 0 };
	uint64_t pages[64];
	size_t np = 0;

	dma(dom, names, w, n);
	for (size_t i = 0; i < nseen; i++)
		for (uint64_t p = 0; p < seen[i].n; p++) {
			cr_assert_lt(np, 64);
			pages[np++] = BASE / PG + seen[i].page + p;
		}
	itest_runs_from_pages(&want, pages, np);
	for (int k = 0; k < 2; k++) {
		struct itest_runs got = { 0 };
		struct itest_ranges info;

		cr_assert_eq(itest_sync(&c[k], dom, NULL), 0);
		cr_assert_eq(itest_get_ranges(&c[k], dom, 0, &got, &info), 0);
		itest_runs_assert_eq(&got, &want, what);
		cr_assert_eq(itest_ack(&c[k], dom, info.generation), 0);
		itest_runs_free(&got);
	}
	itest_runs_free(&want);
}

static void oracle(struct itest_client c[2], uint32_t dom,
		   const char *const *names, const struct write *w, size_t n,
		   const char *what)
{
	oracle_seen(c, dom, names, w, n, w, n, what);
}

static uint32_t two_subscribers(struct itest_client c[2], const char *first,
				uint32_t flags)
{
	struct proto_create_domain_reply a;

	for (int k = 0; k < 2; k++) {
		cr_assert_eq(itest_connect(&dd, &c[k]), 0);
		itest_hello(&c[k], PROTO_FEAT_SOURCES, 0, NULL);
	}
	cr_assert_eq(itest_create(&c[0], first, PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES | flags, &a), 0,
		     "%s", c[0].text);
	cr_assert_eq(a.status, PROTO_DOMAIN_SUPPORTED);
	return a.domain_id;
}

static void subscribe_both(struct itest_client c[2], uint32_t dom)
{
	cr_assert_eq(itest_domain_op(&c[0], PROTO_TRACK_START, dom), 0);
	for (int k = 0; k < 2; k++)
		cr_assert_eq(itest_subscribe(&c[k], dom, 0,
					     PROTO_SUBSCRIBE_CLEAN, NULL), 0);
}

Test(sources, two_iommus_two_hwpts_one_stream)
{
	static const char *const names[] = { "sim0", "far0", "sim1" };
	const struct write w1[] = { { 0, 3, 1 }, { 1, 4, 2 }, { 2, 100, 1 },
				    { 1, 511, 1 } };
	const struct write w2[] = { { 1, 3, 1 }, { 0, 3, 1 } };
	struct proto_source src[8];
	struct itest_client c[2];
	uint32_t dom;

	up(NULL);
	dom = two_subscribers(c, "sim0", 0);
	/* far0 is behind IOMMU 1: sim0's HWPT refuses it, it gets one */
	cr_assert_eq(itest_device_op(&c[0], PROTO_ATTACH_DEVICE, dom, "far0",
				     NULL), 0, "%s", c[0].text);
	cr_assert_eq(itest_device_op(&c[0], PROTO_ATTACH_DEVICE, dom, "sim1",
				     NULL), 0);
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, dom, BASE, 512 * PG), 0);
	subscribe_both(c, dom);
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 2);
	cr_assert_eq(src[0].kind, PROTO_SOURCE_HWPT);
	cr_assert_eq(src[0].devices, 2);	/* sim0, sim1 */
	cr_assert_eq(src[1].kind, PROTO_SOURCE_HWPT);
	cr_assert_str_eq(src[1].device, "far0");
	cr_assert_eq(src[1].devices, 1);
	cr_assert_neq(src[0].id, src[1].id);
	oracle(c, dom, names, w1, 4, "two HWPTs");
	oracle(c, dom, names, w2, 2, "the same page from both");
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 2);
	cr_assert_eq(src[0].rounds, src[1].rounds);
	cr_assert_geq(src[1].rounds, 4);
	/* far0 leaves: its HWPT goes with it */
	cr_assert_eq(itest_device_op(&c[0], PROTO_DETACH_DEVICE, dom, "far0",
				     NULL), 0);
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 1);
	itest_close(&c[0]);
	itest_close(&c[1]);
	down();
}

Test(sources, device_logs_and_a_mixed_domain)
{
	static const char *const names[] = { "vf0", "sim0", "vf1" };
	const struct write w1[] = { { 0, 3, 1 }, { 0, 200, 3 }, { 1, 7, 1 } };
	/* vf1 logs at 8 KiB: its 4 KiB write reports its granule */
	const struct write w2[] = { { 2, 10, 1 }, { 0, 10, 1 }, { 0, 40, 1 } };
	const struct write seen2[] = { { 0, 10, 2 }, { 0, 40, 1 } };
	struct proto_source src[8];
	struct itest_client c[2];
	uint32_t dom;

	up(NULL);
	dom = two_subscribers(c, "vf0", 0);
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, dom, BASE, 512 * PG), 0);
	/* not started while tracking is off */
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 2);
	cr_assert_eq(src[0].kind, PROTO_SOURCE_HWPT_PLAIN);
	cr_assert_eq(src[1].kind, PROTO_SOURCE_DMA_LOG);
	cr_assert_str_eq(src[1].device, "vf0");
	cr_assert_eq(src[1].ranges, 0);
	/* sim0 (IOMMU 0, dirty bits) next to it: a tracking HWPT of its own */
	cr_assert_eq(itest_device_op(&c[0], PROTO_ATTACH_DEVICE, dom, "sim0",
				     NULL), 0, "%s", c[0].text);
	subscribe_both(c, dom);
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 3);
	cr_assert_eq(src[1].ranges, 1);
	cr_assert_eq(src[1].page_size, 4096);
	cr_assert_eq(src[2].kind, PROTO_SOURCE_HWPT);
	cr_assert_str_eq(src[2].device, "sim0");
	oracle(c, dom, names, w1, 3, "a log and a HWPT");
	/* a device that has both: its log (QEMU's preference), started at
	 * once since tracking is on */
	cr_assert_eq(itest_device_op(&c[0], PROTO_ATTACH_DEVICE, dom, "vf1",
				     NULL), 0, "%s", c[0].text);
	/* (behind IOMMU 0, vf0's plain HWPT refuses it: one of its own) */
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 5);
	cr_assert_eq(src[3].kind, PROTO_SOURCE_HWPT_PLAIN);
	cr_assert_str_eq(src[3].device, "vf1");
	cr_assert_eq(src[4].kind, PROTO_SOURCE_DMA_LOG);
	cr_assert_str_eq(src[4].device, "vf1");
	cr_assert_eq(src[4].ranges, 1);
	cr_assert_eq(src[4].page_size, 8192);
	oracle_seen(c, dom, names, w2, 3, seen2, 2, "two logs, one coarser");
	/* TRACK_STOP stops the logs */
	cr_assert_eq(itest_domain_op(&c[0], PROTO_TRACK_STOP, dom), 0);
	cr_assert_eq(list_sources(&c[0], dom, src, 8), 5);
	cr_assert_eq(src[1].ranges + src[4].ranges, 0);
	itest_close(&c[0]);
	itest_close(&c[1]);
	down();
}

Test(sources, a_map_outside_a_started_log_restarts_it)
{
	static const char *const names[] = { "vf0" };
	const struct write w[] = { { 0, 1024 + 5, 1 }, { 0, 9, 1 } };
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	struct proto_source src[4];
	struct itest_client c[2];
	uint32_t dom;

	up(NULL);
	dom = two_subscribers(c, "vf0", 0);
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, dom, BASE, 64 * PG), 0);
	subscribe_both(c, dom);
	cr_assert_eq(list_sources(&c[0], dom, src, 4), 2);
	cr_assert_eq(src[1].ranges, 1);
	/* a write, then a MAP elsewhere: the log starts again over both;
	 * what it covered is pending (the gap before the restart is not
	 * known); the new mapping is not (CLEAN subscriptions) */
	dma(dom, names, w + 1, 1);
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, dom, BASE + 1024 * PG,
			       64 * PG), 0);
	cr_assert_eq(list_sources(&c[0], dom, src, 4), 2);
	cr_assert_eq(src[1].restarts, 1);
	cr_assert_eq(src[1].ranges, 2);
	itest_runs_add(&want, BASE / PG, 64);
	cr_assert_eq(itest_get_ranges(&c[1], dom, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "after the restart");
	cr_assert_eq(itest_ack(&c[1], dom, info.generation), 0);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* the restarted log sees writes in either mapping */
	cr_assert_eq(itest_get_ranges(&c[0], dom, 0, &got, &info), 0);
	cr_assert_eq(itest_ack(&c[0], dom, info.generation), 0);
	itest_runs_free(&got);
	oracle(c, dom, names, w, 2, "the restarted log");
	itest_close(&c[0]);
	itest_close(&c[1]);
	down();
}

Test(sources, overrides_and_emulated_devices)
{
	struct proto_create_domain_reply a;
	struct proto_source src[4];
	struct itest_client c;

	up(NULL);
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_SOURCES, 0, NULL);
	/* IOMMU only: vf0 has no dirty bits; vf1 is then tracked by them */
	cr_assert_eq(itest_create(&c, "vf0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_IOMMU, NULL),
		     -EOPNOTSUPP);
	cr_assert(strstr(c.text, "IOMMU dirty bits only"), "%s", c.text);
	cr_assert_eq(itest_create(&c, "vf1", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_IOMMU, &a), 0);
	cr_assert_eq(list_sources(&c, a.domain_id, src, 4), 1);
	cr_assert_eq(src[0].kind, PROTO_SOURCE_HWPT);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, a.domain_id),
		     0);
	/* device only: vf1 by its log */
	cr_assert_eq(itest_create(&c, "vf1", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_SOURCE_DEVICE, &a), 0);
	cr_assert_eq(list_sources(&c, a.domain_id, src, 4), 2);
	cr_assert_eq(src[1].kind, PROTO_SOURCE_DMA_LOG);
	/* an emulated device: no IOMMU, attached to the address space; with
	 * a log it is a source, without one it is refused */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "mtty0", NULL), 0, "%s", c.text);
	cr_assert_eq(list_sources(&c, a.domain_id, src, 4), 3);
	cr_assert_eq(src[2].kind, PROTO_SOURCE_DMA_LOG);
	cr_assert_str_eq(src[2].device, "mtty0");
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "mtty1", NULL), -EINVAL);
	cr_assert(strstr(c.text, "mtty1 cannot join"), "%s", c.text);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, BASE, 64 * PG), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(list_sources(&c, a.domain_id, src, 4), 3);
	cr_assert_eq(src[2].ranges, 1);
	itest_close(&c);
	down();
}
