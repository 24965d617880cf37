// SPDX-License-Identifier: MIT
/*
 * Limits per user, with root's share kept (dirtyd.conf(5), PROTOCOL.md 7
 * and 12): what one ordinary user can no longer take from the others.
 *
 *   connections_per_uid_and_roots_share  max_clients_per_uid, root_clients
 *   hello_timeout                        a connection that never says HELLO
 *   parked_sessions_per_uid              max_parked, max_parked_bytes
 *   generations_in_flight                max_inflight: a client that never
 *                                        acknowledges holds a bounded set
 *   retired_ranges_count_in_max_mapped   an unmapped range still held
 *   devices_per_uid                      max_devices, by CREATE_DOMAIN and
 *                                        ATTACH_DEVICE; root's are its own
 *   refused_client_reads_why             a refused client that sent HELLO
 *                                        reads the ERROR, not a reset
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define PG 4096ULL
#define GIB (1ULL << 30)
#define MIB (1ULL << 20)

static struct harness dd;

static void stop(void)
{
	itest_stop(&dd);
}

#define need_root itest_need_root

#define CHECK ITEST_CHILD_CHECK

/*
 * A connection refused at accept: one ERROR @err with id 0 whose text
 * holds @why, then the end.  0, or -1 with a reason on stderr.
 */
static int refused(struct itest_client *c, int err, const char *why)
{
	struct proto_msg m;
	int r = itest_recv(c, &m, 5000);

	if (r || m.type != PROTO_ERROR || m.error.err != (uint32_t)err ||
	    m.id || !memmem(m.error.text, m.error.text_len, why,
			    strlen(why))) {
		fprintf(stderr, "expected ERROR %d \"...%s...\", got %d %s\n",
			err, why, r, r ? "" : proto_type_name(m.type));
		return -1;
	}
	return itest_recv(c, &m, 5000) == -ECONNRESET ? 0 : -1;
}

/* A child as @uid holding @n connections (each past HELLO), then one more
 * that must be refused with @why (NULL: none), until the parent writes to
 * @hold[0]; it tells the parent on @ready[1] when it holds them. */
static void child_connections(uid_t uid, unsigned int n, const char *why,
			      int ready, int hold)
{
	struct itest_client c[64], extra;
	char b = 0;

	CHECK(setgroups(0, NULL) == 0, "setgroups: %s", strerror(errno));
	CHECK(setresgid(uid, uid, uid) == 0, "setresgid");
	CHECK(setresuid(uid, uid, uid) == 0, "setresuid");
	for (unsigned int i = 0; i < n; i++) {
		CHECK(itest_connect(&dd, &c[i]) == 0, "connect %u", i);
		itest_hello(&c[i], 0, 0, NULL);
	}
	if (why) {
		CHECK(itest_connect(&dd, &extra) == 0, "connect extra");
		CHECK(refused(&extra, EUSERS, why) == 0, "not refused: %s",
		      why);
		itest_close(&extra);
	}
	CHECK(write(ready, "r", 1) == 1, "write");
	CHECK(read(hold, &b, 1) == 1, "read");
	_exit(0);
}

static pid_t spawn(uid_t uid, unsigned int n, const char *why, int *ready,
		   int *hold)
{
	int rp[2], hp[2];
	pid_t pid;
	char b;

	cr_assert_eq(pipe(rp), 0);
	cr_assert_eq(pipe(hp), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		close(rp[0]);
		close(hp[1]);
		child_connections(uid, n, why, rp[1], hp[0]);
	}
	close(rp[1]);
	close(hp[0]);
	cr_assert_eq(read(rp[0], &b, 1), 1, "the uid %u child failed (its "
		     "reason is above)", (unsigned int)uid);
	*ready = rp[0];
	*hold = hp[1];
	return pid;
}

static void reap(pid_t pid, int ready, int hold)
{
	int status;

	cr_assert_eq(write(hold, "x", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status));
	close(ready);
	close(hold);
}

/* One user cannot lock root out, nor the others. */
Test(limits, connections_per_uid_and_roots_share, .fini = stop)
{
	struct itest_client root[4], extra;
	int r1, h1, r2, h2;
	pid_t a, b;

	need_root();
	itest_start(&dd, "socket_mode = 0666\nmax_clients = 8\n"
		    "max_clients_per_uid = 4\nroot_clients = 2\n");
	/* uid 65534: 4 connections, the 5th refused */
	a = spawn(65534, 4, "max_clients_per_uid", &r1, &h1);
	/* uid 65533: 2 more reach 6 = 8 - 2; the next is root's */
	b = spawn(65533, 2, "kept for root", &r2, &h2);
	/* root takes the last two, then the pool is full for root too */
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(itest_connect(&dd, &root[i]), 0);
		itest_hello(&root[i], 0, 0, NULL);
	}
	cr_assert_eq(itest_connect(&dd, &extra), 0);
	cr_assert_eq(refused(&extra, EUSERS, "too many clients"), 0);
	itest_close(&extra);
	reap(a, r1, h1);
	reap(b, r2, h2);
	for (int i = 0; i < 2; i++)
		itest_close(&root[i]);
	itest_stop_ok(&dd);
}

/* A connection that never says HELLO is closed, and its slot freed. */
Test(limits, hello_timeout, .fini = stop)
{
	struct itest_client idle, late;
	struct proto_msg m;

	itest_start(&dd, "max_clients = 1\nroot_clients = 0\n"
		    "hello_timeout = 1\n");
	cr_assert_eq(itest_connect(&dd, &idle), 0);
	cr_assert_eq(itest_recv(&idle, &m, 5000), 0);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.error.err, ETIMEDOUT);
	cr_assert_not_null(memmem(m.error.text, m.error.text_len,
				  "hello_timeout", 13));
	cr_assert_eq(itest_recv(&idle, &m, 5000), -ECONNRESET);
	itest_close(&idle);
	/* the slot is free again; a HELLO in time stops the clock */
	cr_assert_eq(itest_connect(&dd, &late), 0);
	itest_hello(&late, 0, 0, NULL);
	cr_assert_eq(itest_recv(&late, &m, 2000), -ETIMEDOUT);
	itest_close(&late);
	itest_stop_ok(&dd);
}

/* Subscribe, close: a parked session of @dom; its token. */
static uint64_t park_one(uint32_t dom)
{
	struct proto_hello_reply h;
	struct itest_client c;

	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, 0, &h);
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	itest_close(&c);
	return h.session_token;
}

static uint32_t resume_flags(uint64_t token)
{
	struct proto_hello_reply h;
	struct itest_client c;

	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, token, &h);
	itest_close(&c);
	return h.session_flags;
}

static uint32_t make_domain(struct itest_client *c, uint64_t bytes)
{
	struct proto_create_domain_reply a;

	cr_assert_eq(itest_create(c, "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(itest_map(c, PROTO_MAP, a.domain_id, GIB, bytes), 0,
		     "%s", c->text);
	cr_assert_eq(itest_domain_op(c, PROTO_TRACK_START, a.domain_id), 0);
	return a.domain_id;
}

/* Closed sessions kept for a resume: at most max_parked per uid, holding
 * at most max_parked_bytes; the oldest goes first. */
Test(limits, parked_sessions_per_uid, .fini = stop)
{
	struct itest_client admin;
	uint64_t t[3], big;
	uint32_t dom, wide;

	itest_start(&dd, "max_parked = 2\nmax_parked_bytes = 1m\n"
		    "[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty, sim1:dirty\n");
	cr_assert_eq(itest_connect(&dd, &admin), 0);
	itest_hello(&admin, 0, 0, NULL);
	dom = make_domain(&admin, 64 * MIB);
	for (int i = 0; i < 3; i++)
		t[i] = park_one(dom);
	usleep(200 * 1000);	/* dirtyd reads the closes */
	cr_assert_eq(resume_flags(t[0]), PROTO_SESSION_STATE_LOST,
		     "the oldest of three was dropped (max_parked 2)");
	cr_assert_eq(resume_flags(t[1]), PROTO_SESSION_RESUMED);
	cr_assert_eq(resume_flags(t[2]), PROTO_SESSION_RESUMED);
	/* 64 GiB at 4 KiB: a 2 MiB bitmap, over max_parked_bytes alone */
	{
		struct proto_create_domain_reply a;

		cr_assert_eq(itest_create(&admin, "sim1",
					  PROTO_CREATE_TRACKING, &a), 0);
		wide = a.domain_id;
		cr_assert_eq(itest_map(&admin, PROTO_MAP, wide, 64 * GIB,
				       64 * GIB), 0, "%s", admin.text);
	}
	big = park_one(wide);
	usleep(200 * 1000);
	cr_assert_eq(resume_flags(big), PROTO_SESSION_STATE_LOST,
		     "a session holding more than max_parked_bytes is not "
		     "kept");
	itest_close(&admin);
	itest_stop_ok(&dd);
}

/* A client that never acknowledges holds pending plus max_inflight
 * generations: the oldest go back to pending (ACK of them: ENOENT), and
 * none of their pages is lost. */
Test(limits, generations_in_flight, .fini = stop)
{
	struct itest_runs got = { 0 };
	struct itest_ranges info;
	struct itest_client c;
	uint64_t gens[10];
	uint32_t dom;

	itest_start(&dd, "max_inflight = 3\n[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty\n");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RANGES_RAW, 0, NULL);
	dom = make_domain(&c, 64 * MIB);
	cr_assert_eq(itest_subscribe(&c, dom, 0, PROTO_SUBSCRIBE_CLEAN, NULL),
		     0);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, dom,
				       GIB + (uint64_t)i * 7 * PG, PG), 0);
		cr_assert_eq(itest_sync(&c, dom, NULL), 0);
		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		gens[i] = info.generation;
		/* from the 4th on, the oldest goes back and travels again
		 * with the new page: i / 3 + 1 pages */
		cr_assert_eq(info.total_pages, (uint64_t)(i / 3 + 1),
			     "GET_RANGES %d: %lu pages", i,
			     (unsigned long)info.total_pages);
	}
	/* the three in flight hold all ten pages: 3 + 3 + 4 */
	for (int i = 0; i < 7; i++)
		cr_assert_eq(itest_ack(&c, dom, gens[i]), -ENOENT,
			     "generation %d is still in flight", i);
	for (int i = 7; i < 10; i++)
		cr_assert_eq(itest_ack(&c, dom, gens[i]), 0);
	itest_close(&c);
	itest_runs_free(&got);
	itest_stop_ok(&dd);
}

/* An unmapped range still held by a subscriber counts in max_mapped. */
Test(limits, retired_ranges_count_in_max_mapped, .fini = stop)
{
	struct itest_client c;
	uint32_t dom;

	itest_start(&dd, "max_mapped = 64m\n[sim]\nbacking_page_size = 4k\n"
		    "devices = sim0:dirty\n");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, 0, 0, NULL);
	dom = make_domain(&c, 64 * MIB);
	/* not CLEAN: every page pending, so the range stays held */
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, dom, GIB, 64 * MIB), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, dom, 2 * GIB, MIB), -EDQUOT,
		     "the held 64 MiB count");
	cr_assert_not_null(strstr(c.text, "max_mapped"));
	/* once delivered and acknowledged it is let go */
	{
		struct itest_runs got = { 0 };
		struct itest_ranges info;

		cr_assert_eq(itest_get_ranges(&c, dom, 0, &got, &info), 0);
		cr_assert_eq(itest_ack(&c, dom, info.generation), 0);
		itest_runs_free(&got);
	}
	cr_assert_eq(itest_map(&c, PROTO_MAP, dom, 2 * GIB, MIB), 0, "%s",
		     c.text);
	itest_close(&c);
	itest_stop_ok(&dd);
}

/* A user holds max_devices devices at most, however it asks; what it was
 * refused stays free, and root's share is its own. */
Test(limits, devices_per_uid, .fini = stop)
{
	struct proto_create_domain_reply a;
	struct itest_client c;
	uint32_t dev_id = 0;
	pid_t pid;
	int status;

	need_root();
	itest_start(&dd, "socket_mode = 0666\nmax_devices = 2\n[sim]\n"
		    "devices = sim0:dirty, sim1:dirty, sim2:dirty, "
		    "sim3:dirty\n");
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		struct itest_client u;
		struct proto_create_domain_reply ua;
		struct proto_msg m = { .type = PROTO_ATTACH_DEVICE }, r;

		CHECK(setgroups(0, NULL) == 0, "setgroups");
		CHECK(setresgid(65534, 65534, 65534) == 0, "setresgid");
		CHECK(setresuid(65534, 65534, 65534) == 0, "setresuid");
		CHECK(itest_connect(&dd, &u) == 0, "connect");
		itest_hello(&u, 0, 0, NULL);
		CHECK(itest_create(&u, "sim0", 0, &ua) == 0, "create: %s",
		      u.text);
		m.device_op.domain_id = ua.domain_id;
		snprintf(m.device_op.device, sizeof(m.device_op.device), "sim1");
		CHECK(itest_call(&u, &m, &r) == 0, "attach sim1: %s", u.text);
		/* the third, either way */
		snprintf(m.device_op.device, sizeof(m.device_op.device), "sim2");
		CHECK(itest_call(&u, &m, &r) == -EDQUOT, "attach sim2: %s",
		      u.text);
		CHECK(strstr(u.text, "uid 65534 already has 2 devices in its "
			     "domains (max_devices 2)") != NULL, "text: %s",
		      u.text);
		CHECK(itest_create(&u, "sim2", 0, &ua) == -EDQUOT,
		      "create on sim2: %s", u.text);
		CHECK(strstr(u.text, "max_devices 2") != NULL, "text: %s",
		      u.text);
		itest_close(&u);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status),
		  "the uid 65534 child failed (its reason is above)");
	/* sim2 was not taken; root has a share of its own */
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, 0, 0, NULL);
	cr_assert_eq(itest_create(&c, "sim2", 0, &a), 0, "%s", c.text);
	{
		struct proto_msg m = { .type = PROTO_ATTACH_DEVICE }, r;

		m.device_op.domain_id = a.domain_id;
		snprintf(m.device_op.device, sizeof(m.device_op.device), "sim3");
		cr_assert_eq(itest_call(&c, &m, &r), 0, "%s", c.text);
		dev_id = r.attach_device_reply.dev_id;
	}
	cr_assert_neq(dev_id, 0);
	itest_close(&c);
	itest_stop_ok(&dd);
}

/*
 * A client refused at accept that sent its HELLO before reading gets the
 * ERROR first (PROTOCOL.md 7), then the end: not ECONNRESET or EPIPE,
 * which Linux gives a peer when a socket closes with packets unread.
 */
Test(limits, refused_client_reads_why, .fini = stop)
{
	struct itest_client a, b;
	struct proto_msg m;

	itest_start(&dd, "max_clients = 1\n");
	cr_assert_eq(itest_connect(&dd, &a), 0);
	itest_hello(&a, 0, 0, NULL);
	for (int i = 0; i < 20; i++) {
		struct proto_msg h = { .type = PROTO_HELLO, .hello = {
			.major = PROTO_VERSION_MAJOR } };

		cr_assert_eq(itest_connect(&dd, &b), 0);
		itest_send(&b, &h);
		cr_assert_eq(itest_recv(&b, &m, 5000), 0, "try %d: the first "
			     "read is the ERROR, not %s", i,
			     strerror(-itest_recv(&b, &m, 0)));
		cr_assert_eq(m.type, PROTO_ERROR);
		cr_assert_eq(m.error.err, EUSERS);
		cr_assert_eq(m.id, 0);
		cr_assert_eq(itest_recv(&b, &m, 5000), -ECONNRESET,
			     "then the end");
		itest_close(&b);
	}
	itest_close(&a);
	itest_stop_ok(&dd);
}
