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
		   " legacy1:nodirty");
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
Test(sources, a_write_between_the_last_round_and_the_unmap_is_delivered)
{
	struct proto_create_domain_reply a;
	struct itest_client c;
	struct domain *d;
	struct error e = ERROR_INIT;

	up(NULL);
	client(&c);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
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
	struct proto_device devs[8];
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
	/* no device of the sim logs its DMA (yet): the flag is clear */
	cr_assert_eq(itest_list_devices(&c, devs, 8), 4);
	for (unsigned int i = 0; i < 4; i++)
		cr_assert_not(devs[i].flags & PROTO_DEVICE_DMA_LOGGING, "%s",
			      devs[i].name);
	itest_close(&old);
	itest_close(&c);
	down();
}
