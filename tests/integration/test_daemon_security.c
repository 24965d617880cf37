// SPDX-License-Identifier: MIT
/*
 * Security through the real dirtyd (issue 6, section 5), what the other
 * tests do not already show (test_daemon_access.c: another uid's view;
 * test_daemon_basic.c: limits reached, a descriptor used by another
 * process of the same uid; test_daemon_malformed.c: bad packets):
 *
 *   socket_mode_and_group   the socket dirtyd binds has exactly the
 *                           configured mode and group; a uid outside the
 *                           group cannot connect(2) (EACCES), a member can
 *   socket_mode_excludes    mode 0600 and a group by name: a member of the
 *                           group cannot connect either
 *   credentials_every_packet
 *                           root's connection handed (SCM_RIGHTS) to a
 *                           process that became uid 65534: every request,
 *                           interleaved with root's own on the same
 *                           connection, is refused EPERM with the reason;
 *                           forged SCM_CREDENTIALS never leave the kernel;
 *                           root's domain, mapping, tracking and pending
 *                           pages are exactly as before
 *   limits_change_nothing   max_domains, max_subscriptions, max_clients and
 *                           the message size: each refusal has its errno
 *                           and a sentence naming the limit, and nothing
 *                           else moved (devices unbound, subscriber counts,
 *                           descriptors, the pending pages of a
 *                           subscription)
 *
 * Needs root to switch uids and chgrp (CI runs as root).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "protocol/wire.h"

#define NOBODY 65534
#define SOCK_GID 4243
#define PG 4096ULL
#define GIB (1ULL << 30)

static struct harness dd;

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

#define need_root itest_need_root

#define CHECK ITEST_CHILD_CHECK

/* Become @uid with primary group @gid and the @n groups @groups. */
static void become(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
	CHECK(setgroups(n, groups) == 0, "setgroups: %s", strerror(errno));
	CHECK(setresgid(gid, gid, gid) == 0, "setresgid: %s", strerror(errno));
	CHECK(setresuid(uid, uid, uid) == 0, "setresuid: %s", strerror(errno));
}

static unsigned int daemon_fds(void)
{
	return itest_daemon_fds(&dd);
}

/* ------------------------------------------------ the socket's mode */

/* Not in the group: the socket's permissions stop connect(2). */
static void child_outsider(long unused)
{
	struct itest_client c;
	int e;

	become(NOBODY, NOBODY, NULL, 0);
	e = itest_connect(&dd, &c);
	CHECK(e == -EACCES, "connect without the group: %s, not EACCES",
	      strerror(-e));
}

/* A member (supplementary group): connects and is served as itself. */
static void child_member(long gid)
{
	gid_t g = (gid_t)gid;
	struct proto_hello_reply hr;
	struct itest_client c;
	int e;

	become(NOBODY, NOBODY, &g, 1);
	e = itest_connect(&dd, &c);
	CHECK(e == 0, "connect as a member of group %ld: %s", gid,
	      strerror(-e));
	itest_hello(&c, 0, 0, &hr);
	CHECK(hr.uid == NOBODY && hr.gid == NOBODY, "HELLO_REPLY says uid "
	      "%u gid %u", hr.uid, hr.gid);
	CHECK(itest_list_domains(&c, NULL, 0) == 0, "sees root's domains");
	itest_close(&c);
}

/* A member whose group the mode leaves out: refused like anyone. */
static void child_member_refused(long gid)
{
	struct itest_client c;
	int e;

	become(NOBODY, (gid_t)gid, NULL, 0);
	e = itest_connect(&dd, &c);
	CHECK(e == -EACCES, "connect as a member of group %ld with mode "
	      "0600: %s, not EACCES", gid, strerror(-e));
}

static void assert_socket(mode_t mode, gid_t gid)
{
	struct stat st;

	cr_assert_eq(lstat(dd.sock, &st), 0, "%s: %s", dd.sock,
		     strerror(errno));
	cr_assert(S_ISSOCK(st.st_mode), "%s is not a socket", dd.sock);
	cr_assert_eq(st.st_mode & 07777, mode, "socket mode %04o, not %04o",
		     (unsigned int)(st.st_mode & 07777), (unsigned int)mode);
	cr_assert_eq(st.st_gid, gid, "socket group %u, not %u",
		     (unsigned int)st.st_gid, (unsigned int)gid);
	cr_assert_eq(st.st_uid, geteuid(), "socket owner %u",
		     (unsigned int)st.st_uid);
}

Test(security, socket_mode_and_group, .fini = stop)
{
	char body[256];

	need_root();
	snprintf(body, sizeof(body), "socket_mode = 0660\nsocket_group = %d\n"
		 "[sim]\ndevices = sim0:dirty\n", SOCK_GID);
	itest_start(&dd, body);
	assert_socket(0660, SOCK_GID);
	itest_run_child(child_outsider, 0, "outsider");
	itest_run_child(child_member, SOCK_GID, "group member");
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

Test(security, socket_mode_excludes, .fini = stop)
{
	struct group *gr;
	struct itest_client c;

	need_root();
	gr = getgrnam("nogroup");
	cr_assert_not_null(gr, "no group 'nogroup' on this host");
	/* a group by name, and a mode without group bits */
	itest_start(&dd, "socket_mode = 0600\nsocket_group = nogroup\n"
		    "[sim]\ndevices = sim0:dirty\n");
	assert_socket(0600, gr->gr_gid);
	itest_run_child(child_member_refused, gr->gr_gid, "nogroup member");
	/* the owner (root) still connects */
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, 0, 0, NULL);
	itest_close(&c);
	itest_stop_ok(&dd);
}

/* ------------------------------------------ credentials, every packet */

struct owner_state {
	uint32_t dom;
	uint64_t gen;		/* a generation of root's in flight */
	int ctl;		/* to the parent: turns and the descriptor */
};

/* One turn done: tell root, and wait until root has used the socket. */
static void child_turn(int ctl)
{
	char b = 't';

	CHECK(write(ctl, &b, 1) == 1, "ctl write: %s", strerror(errno));
	CHECK(read(ctl, &b, 1) == 1, "ctl read: %s", strerror(errno));
}

static int recv_fd(int ctl)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	int fd;

	CHECK(recvmsg(ctl, &mh, 0) == 1, "recvmsg: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&mh);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS, "no descriptor passed");
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

/* The child, now uid 65534, on root's connection. */
static void child_borrower(long arg)
{
	const struct owner_state *o = (const struct owner_state *)arg;
	const uint32_t dom = o->dom;
	struct proto_msg reqs[] = {
		{ .type = PROTO_LIST_DOMAINS },
		{ .type = PROTO_STATS, .domain_op = { dom } },
		{ .type = PROTO_DESTROY_DOMAIN, .domain_op = { dom } },
		{ .type = PROTO_TRACK_STOP, .domain_op = { dom } },
		{ .type = PROTO_UNMAP, .map = { dom, 0, GIB, GIB } },
		{ .type = PROTO_MAP, .map = { dom, PROTO_MAP_READABLE |
					      PROTO_MAP_WRITEABLE, 8 * GIB,
					      GIB } },
		{ .type = PROTO_DMA_WRITE, .map = { dom, 0, GIB + 77 * PG,
						    PG } },
		{ .type = PROTO_UNSUBSCRIBE, .domain_op = { dom } },
		{ .type = PROTO_GET_RANGES, .get_ranges = { dom } },
		{ .type = PROTO_ACK, .ack = { dom, o->gen } },
		{ .type = PROTO_SYNC, .domain_op = { dom } },
		{ .type = PROTO_SUBSCRIBE, .subscribe = { dom, 5, 0 } },
		{ .type = PROTO_DETACH_DEVICE, .device_op = { dom, "sim0" } },
		{ .type = PROTO_CREATE_DOMAIN,
		  .create_domain = { PROTO_CREATE_TRACKING, "sim1" } },
		{ .type = PROTO_HELLO, .hello = { .major = 1 } },
	};
	struct itest_client *c = calloc(1, sizeof(*c));
	char want_owner[64], want_sender[64];
	struct ucred forged = { .pid = getppid(), .uid = 0, .gid = 0 };

	become(NOBODY, NOBODY, NULL, 0);
	CHECK(c, "calloc");
	c->fd = recv_fd(o->ctl);
	c->next_id = 1000;
	snprintf(want_owner, sizeof(want_owner), "belongs to pid %d (uid 0)",
		 (int)getppid());
	snprintf(want_sender, sizeof(want_sender), "came from pid %d (uid "
		 "%d)", (int)getpid(), NOBODY);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct proto_msg r;
		const char *name = proto_type_name(reqs[i].type);
		int e;

		itest_send(c, &reqs[i]);
		e = itest_recv(c, &r, 20000);
		CHECK(e == 0, "%s: no answer: %s", name, strerror(-e));
		CHECK(r.type == PROTO_ERROR && r.error.err == EPERM,
		      "%s on root's connection: %s %u, not ERROR EPERM", name,
		      proto_type_name(r.type),
		      r.type == PROTO_ERROR ? r.error.err : 0);
		CHECK(r.id == reqs[i].id, "%s: ERROR for id %llu, not %llu",
		      name, (unsigned long long)r.id,
		      (unsigned long long)reqs[i].id);
		CHECK(memmem(r.error.text, r.error.text_len, want_owner,
			     strlen(want_owner)) &&
		      memmem(r.error.text, r.error.text_len, want_sender,
			     strlen(want_sender)),
		      "%s: the reason does not name both: %.*s", name,
		      (int)r.error.text_len, r.error.text);
		/* root uses the same connection between our requests */
		child_turn(o->ctl);
	}
	/* Claiming root's credentials: the kernel refuses to send it. */
	{
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} u = { 0 };
		uint8_t p[24];
		struct iovec iov = { .iov_base = p, .iov_len = sizeof(p) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		wire_put_le16(p, PROTO_DESTROY_DOMAIN);
		wire_put_le16(p + 2, 0);
		wire_put_le32(p + 4, sizeof(p));
		wire_put_le64(p + 8, 4242);
		wire_put_le32(p + 16, dom);
		wire_put_le32(p + 20, 0);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_CREDENTIALS;
		cm->cmsg_len = CMSG_LEN(sizeof(forged));
		memcpy(CMSG_DATA(cm), &forged, sizeof(forged));
		CHECK(sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0 && errno == EPERM,
		      "forged SCM_CREDENTIALS (pid %d uid 0) were sent",
		      (int)forged.pid);
		/* nothing reached dirtyd: no answer waits */
		CHECK(itest_recv(c, &(struct proto_msg){ 0 }, 200) ==
		      -ETIMEDOUT, "an answer to a packet never sent");
	}
	close(c->fd);
	free(c);
}

Test(security, credentials_every_packet, .fini = stop)
{
	struct itest_client c;
	struct proto_create_domain_reply a;
	struct proto_domain doms[4];
	struct proto_device devs[4];
	struct itest_runs got = { 0 }, want = { 0 };
	struct owner_state o;
	uint64_t pages[] = { GIB / PG + 1, GIB / PG + 2, GIB / PG + 500,
			     2 * GIB / PG - 1 };
	unsigned int turns = 0, n;
	int sv[2], status;
	pid_t pid;
	char b;

	need_root();
	/* the default mode 0660 without a group: the borrower could not
	 * connect itself, it only has root's descriptor */
	itest_start(&dd, "[sim]\ndevices = sim0:dirty, sim1:dirty\n");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEATURES_ALL, 0, NULL);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, GIB, GIB), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	/* one generation in flight (the borrower's ACK names it) */
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, pages[0] * PG,
			       PG), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	{
		struct itest_ranges info;

		cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got,
					      &info), 0);
		o.gen = info.generation;
	}
	itest_runs_from_pages(&want, pages, 1);
	itest_runs_assert_eq(&got, &want, "before");
	/* and pages pending */
	for (size_t i = 1; i < 4; i++)
		cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id,
				       pages[i] * PG, PG), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	o.dom = a.domain_id;
	o.ctl = sv[1];
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		child_borrower((long)&o);
		_exit(0);
	}
	close(sv[1]);
	{
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u = { 0 };
		struct iovec iov = { .iov_base = "f", .iov_len = 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &c.fd, sizeof(int));
		cr_assert_eq(sendmsg(sv[0], &mh, 0), 1);
	}
	/* each time the borrower was refused, root is served at once */
	while (read(sv[0], &b, 1) == 1) {
		n = itest_list_domains(&c, doms, 4);
		cr_assert_eq(n, 1, "turn %u: root lists %u domains", turns, n);
		cr_assert_eq(write(sv[0], &b, 1), 1);
		turns++;
	}
	close(sv[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the borrowing child failed (status %#x; its reason is "
		  "above)", status);
	cr_assert_eq(turns, 15, "%u turns", turns);

	/* root's state: exactly as it was */
	n = itest_list_domains(&c, doms, 4);
	cr_assert_eq(n, 1);
	cr_assert_eq(doms[0].domain_id, a.domain_id);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_SUPPORTED |
				     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(doms[0].mapped_bytes, GIB);
	cr_assert_eq(doms[0].devices, 1);
	cr_assert_eq(doms[0].subscribers, 1);
	n = itest_list_devices(&c, devs, 4);
	for (unsigned int i = 0; i < n && i < 4; i++)
		if (!strcmp(devs[i].name, "sim1"))
			cr_assert_eq(devs[i].flags & (PROTO_DEVICE_BOUND |
						      PROTO_DEVICE_ATTACHED),
				     0, "sim1 was bound by the borrower");
	/* the generation in flight is still there to acknowledge, and the
	 * pending pages are exactly root's (no DMA_WRITE of page +77) */
	cr_assert_eq(itest_ack(&c, a.domain_id, o.gen), 0, "%s", c.text);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got, NULL), 0);
	itest_runs_free(&want);
	itest_runs_from_pages(&want, pages + 1, 3);
	itest_runs_assert_eq(&got, &want, "root's pending pages after");
	itest_close(&c);
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_stop_ok(&dd);
}

/* ------------------------------------------------------------ limits */

static void header(uint8_t *p, uint16_t type, uint32_t len, uint64_t id)
{
	wire_put_le16(p, type);
	wire_put_le16(p + 2, 0);
	wire_put_le32(p + 4, len);
	wire_put_le64(p + 8, id);
}

/* Send @len bytes of @buf; the answer must be ERROR @err for @id with a
 * text holding @text. */
static void refused_raw(struct itest_client *c, const void *buf, size_t len,
			int err, uint64_t id, const char *text)
{
	struct proto_msg r;
	int e;

	cr_assert_eq(itest_send_raw(c, buf, len), 0, "send %zu bytes: %s",
		     len, strerror(errno));
	e = itest_recv(c, &r, 20000);
	cr_assert_eq(e, 0, "%zu bytes: no answer (%s)", len, strerror(-e));
	cr_assert_eq(r.type, PROTO_ERROR, "%zu bytes: answered by %s", len,
		     proto_type_name(r.type));
	cr_assert_eq(r.error.err, (uint32_t)err, "%zu bytes: errno %u, not "
		     "%d (%.*s)", len, r.error.err, err,
		     (int)r.error.text_len, r.error.text);
	cr_assert_eq(r.id, id);
	cr_assert(memmem(r.error.text, r.error.text_len, text, strlen(text)),
		  "%zu bytes: '%s' not in '%.*s'", len, text,
		  (int)r.error.text_len, r.error.text);
}

Test(security, limits_change_nothing, .fini = stop)
{
	static uint8_t big[PROTO_MAX_MSG + 1];
	struct itest_client c, c2, x;
	struct proto_create_domain_reply a, b;
	struct proto_domain doms[4];
	struct proto_device devs[4];
	struct itest_runs got = { 0 }, want = { 0 };
	uint64_t pages[] = { GIB / PG + 3, GIB / PG + 4, GIB / PG + 9000 };
	struct proto_msg r;
	unsigned int fds, n;
	int e;

	itest_start(&dd, "max_clients = 2\nmax_subscriptions = 1\n"
		    "max_domains = 2\n"
		    "[sim]\ndevices = sim0:dirty, sim1:dirty, sim2:dirty\n");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEATURES_ALL, 0, NULL);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, GIB, GIB), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	cr_assert_eq(itest_create(&c, "sim1", PROTO_CREATE_TRACKING, &b), 0);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, pages[0] * PG,
			       PG), 0);

	/* max_domains: the device stays unbound, no domain appears */
	e = itest_create(&c, "sim2", PROTO_CREATE_TRACKING, NULL);
	cr_assert_eq(e, -EDQUOT, "%s", strerror(-e));
	cr_assert_str_eq(c.text, "uid 0 already has 2 domains (max_domains "
			 "2)");
	n = itest_list_devices(&c, devs, 4);
	for (unsigned int i = 0; i < n && i < 4; i++)
		if (!strcmp(devs[i].name, "sim2"))
			cr_assert(devs[i].flags == PROTO_DEVICE_DIRTY_CAPABLE &&
				  devs[i].dev_id == 0 && devs[i].domain_id == 0,
				  "sim2 changed: flags %#x dev_id %u",
				  devs[i].flags, devs[i].dev_id);

	/* max_subscriptions: the other domain gains no subscriber */
	e = itest_subscribe(&c, b.domain_id, 10, 0, NULL);
	cr_assert_eq(e, -EDQUOT, "%s", strerror(-e));
	cr_assert_str_eq(c.text, "too many subscriptions on this session "
			 "(max_subscriptions 1)");

	/* max_clients: one ERROR EUSERS with id 0, then EOF; the refused
	 * connection leaves no descriptor behind */
	cr_assert_eq(itest_connect(&dd, &c2), 0);
	itest_hello(&c2, 0, 0, NULL);
	fds = daemon_fds();
	cr_assert_eq(itest_connect(&dd, &x), 0);
	e = itest_recv(&x, &r, 20000);
	cr_assert_eq(e, 0, "%s", strerror(-e));
	cr_assert_eq(r.type, PROTO_ERROR);
	cr_assert_eq(r.id, 0);
	cr_assert_eq(r.error.err, EUSERS);
	cr_assert(r.error.text_len == strlen("too many clients (max 2)") &&
		  !memcmp(r.error.text, "too many clients (max 2)",
			  r.error.text_len), "'%.*s'", (int)r.error.text_len,
		  r.error.text);
	cr_assert_eq(itest_recv(&x, &r, 20000), -ECONNRESET);
	itest_close(&x);
	/* dirtyd closes its end when it sees ours closed (or a second
	 * after its ERROR: server_hang_up()); a loaded machine may take
	 * longer to get there, so this waits up to 10 s */
	for (int i = 0; i < 1000 && daemon_fds() != fds; i++)
		usleep(10000);
	cr_assert_eq(daemon_fds(), fds, "the refused client left a "
		     "descriptor in dirtyd");
	cr_assert_eq(itest_list_domains(&c2, NULL, 0), 2);

	/* message size: 65537 bytes is too big, 65536 is not (it is a
	 * malformed LIST_DOMAINS), 15 bytes are not a header */
	header(big, PROTO_LIST_DOMAINS, sizeof(big), 77);
	refused_raw(&c, big, sizeof(big), EMSGSIZE, 77, "65536");
	header(big, PROTO_LIST_DOMAINS, PROTO_MAX_MSG, 78);
	refused_raw(&c, big, PROTO_MAX_MSG, EBADMSG, 78,
		    "malformed LIST_DOMAINS message (65536 bytes)");
	refused_raw(&c, big, 15, EBADMSG, 0, "packet of 15 bytes is shorter "
		    "than the 16-byte header");

	/* and after all that: the same domains, subscribers and pages */
	for (size_t i = 1; i < 3; i++)
		cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id,
				       pages[i] * PG, PG), 0);
	n = itest_list_domains(&c, doms, 4);
	cr_assert_eq(n, 2);
	cr_assert_eq(doms[0].subscribers, 1);
	cr_assert_eq(doms[1].subscribers, 0);
	cr_assert_eq(doms[0].mapped_bytes, GIB);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got, NULL), 0);
	itest_runs_from_pages(&want, pages, 3);
	itest_runs_assert_eq(&got, &want, "the subscription's pages");
	itest_close(&c2);
	itest_close(&c);
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_stop_ok(&dd);
}
