// SPDX-License-Identifier: MIT
/*
 * Device ACLs through the real dirtyd on the sim ([devices] of
 * dirtyd.conf(5), PROTOCOL.md 6.4 and 10): a client as another uid (a
 * forked child that setresuid()s) is refused EACCES for a device it may
 * not claim, by CREATE_DOMAIN and by ATTACH_DEVICE, and nothing changes;
 * it may claim what its user (by name) or a group of its (by gid, primary
 * or supplementary) is listed for; root may claim every device; a device
 * refused to one stays free for one allowed.  Needs root (CI runs as
 * root).
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

#define DAEMON_UID 1		/* the user "daemon", every Debian has it */
#define STRANGER 1002
#define MEMBER 1003
#define VMS_GID 4242

static struct harness dd;

static void stop(void)
{
	itest_stop(&dd);
}

#define CHECK ITEST_CHILD_CHECK

/* @uid with primary group @gid and the one supplementary group @sup (0:
 * none). */
static void become(uid_t uid, gid_t gid, gid_t sup)
{
	CHECK(setgroups(sup ? 1 : 0, &sup) == 0, "setgroups: %s",
	      strerror(errno));
	CHECK(setresgid(gid, gid, gid) == 0, "setresgid: %s", strerror(errno));
	CHECK(setresuid(uid, uid, uid) == 0, "setresuid: %s", strerror(errno));
}

static void connect_as(struct itest_client *c, uid_t uid, gid_t gid,
		       gid_t sup)
{
	become(uid, gid, sup);
	CHECK(itest_connect(&dd, c) == 0, "connect: %s", strerror(errno));
	itest_hello(c, 0, 0, NULL);
}

static const struct proto_device *device(const struct proto_device *devs,
					 unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (!strcmp(devs[i].name, name))
			return &devs[i];
	return NULL;
}

/* Not in any domain: nothing was bound or attached for a refusal. */
static void check_free(struct itest_client *c, const char *name)
{
	struct proto_device devs[8];
	const struct proto_device *dv;
	unsigned int n = itest_list_devices(c, devs, 8);

	dv = device(devs, n, name);
	CHECK(dv, "LIST_DEVICES does not list %s (it lists them all)", name);
	CHECK(!(dv->flags & (PROTO_DEVICE_BOUND | PROTO_DEVICE_ATTACHED)),
	      "%s: flags %#x after a refusal", name, dv->flags);
}

static void check_refused(struct itest_client *c, int e, const char *name,
			  const char *why)
{
	char want[160];

	snprintf(want, sizeof(want), "uid %u may not claim device %s: ",
		 (unsigned)getuid(), name);
	CHECK(e == -EACCES, "%s: %s (%s), not EACCES", name, strerror(-e),
	      c->text);
	CHECK(strstr(c->text, want) && strstr(c->text, why),
	      "%s: text '%s' lacks '%s' or '%s'", name, c->text, want, why);
}

/* uid 1002, in no listed group: refused, and nothing changes. */
static void child_stranger(long unused)
{
	struct proto_create_domain_reply own;
	struct proto_domain doms[4];
	struct itest_client c;
	int e;

	connect_as(&c, STRANGER, STRANGER, 0);
	/* a user is listed: not this one; named short, answered full */
	e = itest_create(&c, "65:00.0", PROTO_CREATE_TRACKING, NULL);
	check_refused(&c, e, "0000:65:00.0",
		      "[devices] 65:00.0 of the configuration lists neither "
		      "it nor its groups");
	/* a group is listed: not one of this one's */
	e = itest_create(&c, "sim-a", 0, NULL);
	check_refused(&c, e, "sim-a", "[devices] sim-a ");
	/* listed for nobody, and named by no entry: root's alone */
	e = itest_create(&c, "sim-d", 0, NULL);
	check_refused(&c, e, "sim-d", "[devices] sim-d ");
	e = itest_create(&c, "sim-c", 0, NULL);
	check_refused(&c, e, "sim-c", "no [devices] entry of the "
		      "configuration names it (only root may)");
	check_free(&c, "0000:65:00.0");
	check_free(&c, "sim-a");
	check_free(&c, "sim-c");
	CHECK(itest_list_domains(&c, doms, 4) == 0, "a refusal left a domain");

	/* ATTACH claims too: refused, the domain as it was */
	e = itest_create(&c, "sim-b", PROTO_CREATE_TRACKING, &own);
	CHECK(e == 0, "CREATE on sim-b (*): %s", c.text);
	e = itest_device_op(&c, PROTO_ATTACH_DEVICE, own.domain_id, "65:00.0",
			    NULL);
	check_refused(&c, e, "0000:65:00.0", "[devices] 65:00.0 ");
	CHECK(itest_list_domains(&c, doms, 4) == 1 && doms[0].devices == 1,
	      "ATTACH refused, yet the domain has %u devices",
	      doms[0].devices);
	check_free(&c, "0000:65:00.0");
	CHECK(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, own.domain_id) == 0,
	      "DESTROY: %s", c.text);
	itest_close(&c);
	_exit(0);
}

/* The user daemon, listed by name: claims the device refused above. */
static void child_user(long unused)
{
	struct proto_create_domain_reply own;
	struct itest_client c;
	int e;

	connect_as(&c, DAEMON_UID, DAEMON_UID, 0);
	e = itest_create(&c, "0000:65:00.0", PROTO_CREATE_TRACKING, &own);
	CHECK(e == 0, "CREATE on 0000:65:00.0 as daemon: %s", c.text);
	e = itest_create(&c, "sim-a", 0, NULL);
	check_refused(&c, e, "sim-a", "[devices] sim-a ");
	CHECK(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, own.domain_id) == 0,
	      "DESTROY: %s", c.text);
	itest_close(&c);
	_exit(0);
}

/* A member of group 4242: listed by gid, as a supplementary group and as
 * the primary one. */
static void child_member(long unused)
{
	struct proto_create_domain_reply own;
	uint32_t dev_id;
	struct itest_client c;
	int e;

	connect_as(&c, MEMBER, MEMBER, VMS_GID);
	e = itest_create(&c, "sim-b", 0, &own);
	CHECK(e == 0, "CREATE on sim-b: %s", c.text);
	e = itest_device_op(&c, PROTO_ATTACH_DEVICE, own.domain_id, "sim-a",
			    &dev_id);
	CHECK(e == 0, "ATTACH of sim-a by a supplementary group: %s", c.text);
	e = itest_device_op(&c, PROTO_ATTACH_DEVICE, own.domain_id, "sim-c",
			    NULL);
	check_refused(&c, e, "sim-c", "no [devices] entry");
	CHECK(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, own.domain_id) == 0,
	      "DESTROY: %s", c.text);
	itest_close(&c);
	_exit(0);
}

static void child_primary(long unused)
{
	struct proto_create_domain_reply own;
	struct itest_client c;

	connect_as(&c, STRANGER, VMS_GID, 0);
	CHECK(itest_create(&c, "sim-a", 0, &own) == 0, "CREATE on sim-a by "
	      "the primary group: %s", c.text);
	CHECK(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, own.domain_id) == 0,
	      "DESTROY: %s", c.text);
	itest_close(&c);
	_exit(0);
}

Test(acl, who_may_claim, .fini = stop)
{
	static const char *const all[] = {
		"0000:65:00.0", "sim-a", "sim-b", "sim-c", "sim-d",
	};
	struct proto_create_domain_reply r;
	struct itest_client c;
	char body[512];

	if (geteuid() != 0)
		cr_skip_test("needs root to switch uids (CI runs as root); "
			     "skipped");
	snprintf(body, sizeof(body), "socket_mode = 0666\n"
		 "[sim]\ndevices = 65:00.0:dirty, sim-a:dirty, sim-b:dirty, "
		 "sim-c:dirty, sim-d:dirty\n"
		 "[devices]\n"
		 "65:00.0 = daemon\n"
		 "sim-a = @%d, 1004\n"
		 "sim-d =\n"
		 "sim-[ab] = *\n", VMS_GID);
	itest_start(&dd, body);

	itest_run_child(child_stranger, 0, "uid 1002");
	itest_run_child(child_user, 0, "user daemon");
	itest_run_child(child_member, 0, "group 4242, supplementary");
	itest_run_child(child_primary, 0, "group 4242, primary");

	/* root may claim every device, listed or not, one domain each */
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, 0, 0, NULL);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		cr_assert_eq(itest_create(&c, all[i], 0, &r), 0, "root, %s: "
			     "%s", all[i], c.text);
	itest_close(&c);
	itest_stop_ok(&dd);
}
