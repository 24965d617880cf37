// SPDX-License-Identifier: MIT
/*
 * Access control through the real dirtyd: a client of another uid (a
 * child that setresuid()s to nobody) neither sees nor touches root's
 * domain, every request naming it gets ENOENT exactly as for an id that
 * does not exist; root sees and administers everyone's; a member of the
 * admin group does too.  Needs root (CI runs as root).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define NOBODY 65534
#define ADMIN_GID 4242

static struct harness dd;

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

#define CHECK ITEST_CHILD_CHECK

static void become(uid_t uid, gid_t gid)
{
	CHECK(setgroups(0, NULL) == 0, "setgroups: %s", strerror(errno));
	CHECK(setresgid(gid, gid, gid) == 0, "setresgid: %s", strerror(errno));
	CHECK(setresuid(uid, uid, uid) == 0, "setresuid: %s", strerror(errno));
}

/* Every request naming @dom must look exactly like one naming nothing. */
static void check_invisible(struct itest_client *c, uint32_t dom)
{
	static const uint16_t ops[] = {
		PROTO_DESTROY_DOMAIN, PROTO_TRACK_START, PROTO_TRACK_STOP,
		PROTO_UNSUBSCRIBE, PROTO_SYNC, PROTO_GET_FDS, PROTO_STATS,
	};
	struct proto_msg m, r;
	char want[64];
	int e;

	snprintf(want, sizeof(want), "no domain %u", dom);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		m = (struct proto_msg){ .type = ops[i], .domain_op = { dom } };
		e = itest_call(c, &m, &r);
		CHECK(e == -ENOENT && !strcmp(c->text, want),
		      "%s of domain %u: %s (%s)", proto_type_name(ops[i]), dom,
		      strerror(-e), c->text);
	}
	e = itest_subscribe(c, dom, 0, 0, NULL);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "SUBSCRIBE: %s",
	      c->text);
	e = itest_map(c, PROTO_MAP, dom, 1ULL << 32, 4096);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "MAP: %s", c->text);
	e = itest_map(c, PROTO_UNMAP, dom, 1ULL << 30, 1ULL << 30);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "UNMAP: %s", c->text);
	e = itest_map(c, PROTO_DMA_WRITE, dom, 1ULL << 30, 4096);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "DMA_WRITE: %s",
	      c->text);
	e = itest_ack(c, dom, 0);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "ACK: %s", c->text);
	m = (struct proto_msg){ .type = PROTO_GET_RANGES,
				.get_ranges = { .domain_id = dom } };
	e = itest_call(c, &m, &r);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "GET_RANGES: %s",
	      c->text);
	e = itest_device_op(c, PROTO_ATTACH_DEVICE, dom, "sim2", NULL);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "ATTACH: %s", c->text);
	e = itest_device_op(c, PROTO_DETACH_DEVICE, dom, "sim0", NULL);
	CHECK(e == -ENOENT && !strcmp(c->text, want), "DETACH: %s", c->text);
}

/* nobody: root's domain @dom does not exist for it. */
static void child_nobody(long arg)
{
	uint32_t dom = (uint32_t)arg;
	struct proto_hello_reply hr;
	struct proto_domain doms[4];
	struct proto_device devs[4];
	struct proto_create_domain_reply own;
	struct itest_client c;
	struct proto_msg m, r;
	unsigned int n;
	int e;

	become(NOBODY, NOBODY);
	CHECK(itest_connect(&dd, &c) == 0, "connect: %s", strerror(errno));
	itest_hello(&c, PROTO_FEATURES_ALL, 0, &hr);
	CHECK(hr.uid == NOBODY && hr.gid == NOBODY, "HELLO_REPLY says uid %u",
	      hr.uid);

	CHECK(itest_list_domains(&c, doms, 4) == 0, "LIST_DOMAINS shows "
	      "root's domain");
	m = (struct proto_msg){ .type = PROTO_STATS };
	CHECK(itest_call(&c, &m, &r) == 0 && r.list.count == 0,
	      "STATS shows root's domain");
	n = itest_list_devices(&c, devs, 4);
	for (unsigned int i = 0; i < n && i < 4; i++) {
		if (strcmp(devs[i].name, "sim0"))
			continue;
		CHECK(devs[i].flags & PROTO_DEVICE_ATTACHED,
		      "sim0 not shown in use");
		CHECK(devs[i].domain_id == 0 && devs[i].dev_id == 0,
		      "LIST_DEVICES reveals domain %u", devs[i].domain_id);
	}
	check_invisible(&c, dom);
	check_invisible(&c, 999);
	/* the device in root's domain is busy, without a domain id */
	e = itest_create(&c, "sim0", 0, NULL);
	CHECK(e == -EBUSY && !strstr(c.text, "domain"), "CREATE on sim0: "
	      "%s (%s)", strerror(-e), c.text);
	/* its own domain: fine */
	e = itest_create(&c, "sim1", PROTO_CREATE_TRACKING, &own);
	CHECK(e == 0, "CREATE on sim1: %s", c.text);
	n = itest_list_domains(&c, doms, 4);
	CHECK(n == 1 && doms[0].domain_id == own.domain_id &&
	      doms[0].owner_uid == NOBODY, "its own domain not listed");
	CHECK(itest_domain_op(&c, PROTO_TRACK_START, own.domain_id) == 0,
	      "TRACK_START of its own: %s", c.text);
	itest_close(&c);
	_exit(0);
}

/* nobody in the admin group: sees and manages root's domain. */
static void child_admin(long arg)
{
	uint32_t dom = (uint32_t)arg;
	struct proto_domain doms[4];
	struct itest_client c;
	unsigned int n;

	become(NOBODY, ADMIN_GID);
	CHECK(itest_connect(&dd, &c) == 0, "connect: %s", strerror(errno));
	itest_hello(&c, 0, 0, NULL);
	n = itest_list_domains(&c, doms, 4);
	CHECK(n >= 1 && doms[0].domain_id == dom, "admin does not see "
	      "domain %u", dom);
	CHECK(itest_subscribe(&c, dom, 0, 0, NULL) == 0, "admin SUBSCRIBE: %s",
	      c.text);
	CHECK(itest_sync(&c, dom, NULL) == 0, "admin SYNC: %s", c.text);
	itest_close(&c);
	_exit(0);
}

Test(access, other_uid_sees_nothing, .fini = stop)
{
	struct proto_create_domain_reply a;
	struct proto_domain doms[4];
	struct itest_client c;
	unsigned int n;
	char body[256];

	if (geteuid() != 0) {
		/* dd not started: nothing for stop() to do */
		cr_skip_test("needs root to switch to uid %d (CI runs as "
			     "root); skipped", NOBODY);
	}
	snprintf(body, sizeof(body), "socket_mode = 0666\nadmin_group = %d\n"
		 "[sim]\ndevices = sim0:dirty, sim1:dirty, sim2:dirty\n",
		 ADMIN_GID);
	itest_start(&dd, body);
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEATURES_ALL, 0, NULL);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, 1ULL << 30,
			       1ULL << 30), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);

	itest_run_child(child_nobody, a.domain_id, "uid 65534");

	/* root's domain is intact; root sees nobody's and may destroy it */
	n = itest_list_domains(&c, doms, 4);
	cr_assert_eq(n, 2);
	cr_assert_eq(doms[0].domain_id, a.domain_id);
	cr_assert_eq(doms[0].owner_uid, 0);
	cr_assert_eq(doms[0].mapped_bytes, 1ULL << 30);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_SUPPORTED |
				     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(doms[1].owner_uid, NOBODY);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN,
				     doms[1].domain_id), 0);

	itest_run_child(child_admin, a.domain_id, "admin group");
	itest_close(&c);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}
