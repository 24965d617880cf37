// SPDX-License-Identifier: MIT
/*
 * SIGHUP reloads dirtyd.conf(5) (dirtyd(8) SIGNALS) in the running dirtyd
 * on the sim:
 *
 *   limit_and_acl_under_connected_clients
 *                    a root client and a client of another uid (a forked
 *                    child) stay connected across a reload that raises
 *                    max_domains and adds a [devices] entry: both keep
 *                    working on their domains, and on the same
 *                    connections what was refused (EDQUOT, EACCES) is
 *                    now allowed; one line says what changed
 *   invalid_file_changes_nothing
 *                    a file that does not parse is refused whole (its
 *                    error logged with the file and line): the old limit
 *                    still holds; a change only a restart applies ([sim])
 *                    is logged as such and the running devices stay;
 *                    SIGHUP never kills dirtyd, which still exits 0 on
 *                    SIGTERM
 *
 * Needs root for the other uid (CI runs as root).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define STRANGER 1002

#define SIM "[sim]\ndevices = sim0:dirty, sim1:dirty, sim2:dirty, sim3:dirty\n"

static struct harness dd;

static void stop(void)
{
	itest_stop(&dd);
}

#define CHECK ITEST_CHILD_CHECK

/* SIGHUP, then wait for a (new) log line holding @expect. */
static void reload(const char *expect)
{
	unsigned int before = harness_log_count(&dd, expect, true);
	int status;

	cr_assert_eq(kill(dd.pid, SIGHUP), 0);
	for (int i = 0; i < 1000; i++) {
		if (harness_log_count(&dd, expect, true) > before)
			break;
		usleep(10000);
	}
	if (harness_log_count(&dd, expect, true) <= before) {
		itest_dump_log(&dd);
		cr_assert_fail("after SIGHUP the log does not say '%s'",
			       expect);
	}
	cr_assert(!harness_exited(&dd, &status), "SIGHUP ended dirtyd "
		  "(status %#x)", status);
}

/* The other uid's client: a domain on sim1 (its ACL), sim2 refused; told
 * to go on after the reload, sim2 is its own, and the first still works. */
static void child(int ready, int go)
{
	struct proto_create_domain_reply one, two;
	struct proto_domain doms[4];
	struct itest_client c;
	char x = 'x';
	int e;

	CHECK(setgroups(0, NULL) == 0, "setgroups: %s", strerror(errno));
	CHECK(setresgid(STRANGER, STRANGER, STRANGER) == 0, "setresgid: %s",
	      strerror(errno));
	CHECK(setresuid(STRANGER, STRANGER, STRANGER) == 0, "setresuid: %s",
	      strerror(errno));
	CHECK(itest_connect(&dd, &c) == 0, "connect: %s", strerror(errno));
	itest_hello(&c, 0, 0, NULL);
	e = itest_create(&c, "sim1", PROTO_CREATE_TRACKING, &one);
	CHECK(e == 0, "CREATE on sim1: %s", c.text);
	e = itest_create(&c, "sim2", PROTO_CREATE_TRACKING, NULL);
	CHECK(e == -EACCES, "CREATE on sim2 before the reload: %s (%s)",
	      strerror(-e), c.text);
	CHECK(write(ready, &x, 1) == 1, "write: %s", strerror(errno));
	CHECK(read(go, &x, 1) == 1, "read: %s", strerror(errno));
	/* the same connection, the new ACL and limit */
	e = itest_create(&c, "sim2", PROTO_CREATE_TRACKING, &two);
	CHECK(e == 0, "CREATE on sim2 after the reload: %s (%s)",
	      strerror(-e), c.text);
	CHECK(itest_map(&c, PROTO_MAP, one.domain_id, 0, 1 << 20) == 0,
	      "MAP on the first domain: %s", c.text);
	CHECK(itest_domain_op(&c, PROTO_TRACK_START, one.domain_id) == 0,
	      "TRACK_START: %s", c.text);
	CHECK(itest_list_domains(&c, doms, 4) == 2, "LIST_DOMAINS: not 2");
	itest_close(&c);
	_exit(0);
}

Test(reload, limit_and_acl_under_connected_clients, .fini = stop)
{
	struct proto_create_domain_reply mine;
	struct itest_client a;
	int ready[2], go[2], status;
	char x;
	pid_t pid;

	itest_need_root();
	itest_start(&dd, "socket_mode = 0666\nmax_domains = 1\n" SIM
		    "[devices]\nsim1 = 1002\n");
	cr_assert_eq(itest_connect(&dd, &a), 0);
	itest_hello(&a, 0, 0, NULL);
	cr_assert_eq(itest_create(&a, "sim0", PROTO_CREATE_TRACKING, &mine),
		     0, "%s", a.text);
	cr_assert_eq(itest_create(&a, "sim3", PROTO_CREATE_TRACKING, NULL),
		     -EDQUOT, "%s", a.text);
	cr_assert(strstr(a.text, "max_domains 1"), "%s", a.text);

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		child(ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	cr_assert_eq(read(ready[0], &x, 1), 1, "the child failed before the "
		     "reload");

	cr_assert_eq(harness_configure(&dd, "socket_mode = 0666\n"
				       "max_domains = 2\n" SIM
				       "[devices]\nsim1 = 1002\n"
				       "sim2 = 1002\n"), 0);
	reload("reloaded ");
	cr_assert(harness_log_has(&dd, ": max_domains 1 -> 2, [devices] 1 -> "
				 "2 entries", true));
	cr_assert(!harness_log_has(&dd, "only a restart", true));
	cr_assert_eq(write(go[1], "y", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child failed (status %#x; its reason is above)", status);
	close(ready[0]);
	close(go[1]);

	/* the root client, connected throughout: its domain works, and the
	 * new limit applies to it on the same connection */
	cr_assert_eq(itest_map(&a, PROTO_MAP, mine.domain_id, 0, 1 << 20), 0,
		     "%s", a.text);
	cr_assert_eq(itest_domain_op(&a, PROTO_TRACK_START, mine.domain_id),
		     0, "%s", a.text);
	cr_assert_eq(itest_sync(&a, mine.domain_id, NULL), 0, "%s", a.text);
	cr_assert_eq(itest_create(&a, "sim3", PROTO_CREATE_TRACKING, NULL), 0,
		     "%s", a.text);
	itest_close(&a);
	itest_stop_ok(&dd);
}

Test(reload, invalid_file_changes_nothing, .fini = stop)
{
	struct proto_device devs[8];
	struct itest_client a;

	itest_start(&dd, "max_domains = 1\n" SIM);
	cr_assert_eq(itest_connect(&dd, &a), 0);
	itest_hello(&a, 0, 0, NULL);
	cr_assert_eq(itest_create(&a, "sim0", 0, NULL), 0, "%s", a.text);

	/* refused whole: the good key before the bad one changes nothing */
	cr_assert_eq(harness_configure(&dd, "max_domains = 3\n"
				       "max_clients = banana\n" SIM), 0);
	reload("the configuration is unchanged");
	cr_assert(harness_log_has(&dd, "[daemon] max_clients = 'banana'",
				 true), "the parse error, with its line");
	cr_assert(!harness_log_has(&dd, "reloaded ", true));
	cr_assert_eq(itest_create(&a, "sim1", 0, NULL), -EDQUOT, "%s",
		     a.text);

	/* a missing file: the same */
	cr_assert_eq(unlink(dd.conf), 0);
	reload("the configuration is unchanged");
	cr_assert_eq(itest_create(&a, "sim1", 0, NULL), -EDQUOT, "%s",
		     a.text);

	/* what only a restart changes stays; the rest changes */
	cr_assert_eq(harness_configure(&dd, "max_domains = 2\n[sim]\n"
				       "devices = sim0:dirty, sim9:dirty\n"),
		     0);
	reload("reloaded ");
	cr_assert(harness_log_has(&dd, ": [sim] changed, and only a restart "
				 "applies that: the running values stay",
				 true));
	cr_assert(harness_log_has(&dd, ": max_domains 1 -> 2", true));
	cr_assert_eq(itest_list_devices(&a, devs, 8), 4, "the running "
		     "devices stay");
	cr_assert_eq(itest_create(&a, "sim1", 0, NULL), 0, "%s", a.text);

	/* nothing changed at all */
	reload("nothing changed");
	itest_close(&a);
	itest_stop_ok(&dd);
}
