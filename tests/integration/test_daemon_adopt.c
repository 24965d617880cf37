// SPDX-License-Identifier: MIT
/*
 * Adoption on the sim (PROTOCOL.md 6.18 to 6.20): what the sim can show of
 * ADOPT, UNADOPT and READOPT.  The sim has no descriptors, so ADOPT there
 * hands over the ids and the lease only (NO_IOMMUFD, no SCM_RIGHTS), and
 * READOPT is refused EOPNOTSUPP once its body, its descriptors and the
 * claims pass; tests/vm/guest_adopt.c runs both on the real kernel.
 *
 * Shown here: the reply's fields; EBUSY for a second ADOPT, DESTROY_DOMAIN
 * and DETACH_DEVICE while adopted, with the adopter named; UNADOPT by its
 * session (another session: EPERM; not adopted: EINVAL); the lease found
 * again by a resume; the orphan cleanup (a dead adopter's lease ends after
 * resume_grace, a living one's does not); the lease across SIGKILL with
 * the store; every malformed READOPT refused with nothing changed and
 * every descriptor it carried closed; descriptors sent with any other
 * request closed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "protocol/wire.h"

#define CONF "[sim]\ndevices = sim0:dirty, sim1:dirty\n"

static struct harness dd;

static void stop(void)
{
	itest_stop(&dd);
}

/* The daemon's log has @text within @ms. */
static bool log_wait(const char *text, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		if (harness_log_has(&dd, text, true))
			return true;
		usleep(20 * 1000);
	}
	return harness_log_has(&dd, text, true);
}

static void client(struct itest_client *c, uint64_t token,
		   struct proto_hello_reply *h)
{
	cr_assert_eq(itest_connect(&dd, c), 0);
	itest_hello(c, PROTO_FEATURES_ALL, token, h);
}

static uint32_t make_domain(struct itest_client *c, const char *device)
{
	struct proto_create_domain_reply a;

	cr_assert_eq(itest_create(c, device, PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0, "%s",
		     c->text);
	cr_assert_eq(itest_map(c, PROTO_MAP, a.domain_id, 1ULL << 20,
			       1ULL << 20), 0, "%s", c->text);
	cr_assert_eq(itest_domain_op(c, PROTO_TRACK_START, a.domain_id), 0);
	return a.domain_id;
}

/* ADOPT of @dom: 0 with the reply in *@r (entries in c->buf), or -errno. */
static int adopt(struct itest_client *c, uint32_t dom, struct proto_msg *r)
{
	struct proto_msg m = { .type = PROTO_ADOPT,
			       .domain_op.domain_id = dom };

	return itest_call(c, &m, r);
}

/* Send the packet @buf (id already in it) with descriptors; wait. */
static int call_fds(struct itest_client *c, uint8_t *buf, size_t len,
		    const int *fds, unsigned int nfds, struct proto_msg *r)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t id = wire_get_le64(buf + 8);

	cr_assert_leq(nfds, 8);
	if (nfds) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	cr_assert_eq(sendmsg(c->fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
	return itest_wait(c, id, r);
}

/* A READOPT of devices @names (each with a descriptor when @with_fd) and
 * @nranges 1 MiB ranges, sent with @nfds copies of /dev/null. */
static int readopt(struct itest_client *c, const char *const *names,
		   unsigned int ndev, bool with_fd, unsigned int nranges,
		   unsigned int nfds, uint64_t lease)
{
	struct proto_adopt_device devs[4] = { 0 };
	struct proto_range ranges[4];
	struct proto_readopt ro = {
		.flags = PROTO_CREATE_TRACKING, .ioas_id = 1, .hwpt_id = 2,
		.ndevices = ndev, .nranges = nranges, .lease = lease,
	};
	uint8_t buf[1024];
	struct proto_msg r;
	int fds[8], len, e;

	for (unsigned int i = 0; i < ndev; i++) {
		snprintf(devs[i].name, sizeof(devs[i].name), "%s", names[i]);
		devs[i].dev_id = i + 1;
		devs[i].fd_index = with_fd ? i + 1 : 0;
	}
	for (unsigned int i = 0; i < nranges; i++)
		ranges[i] = (struct proto_range){ .iova = (i + 1) << 21,
						  .length = 1 << 20 };
	len = proto_encode_readopt(buf, sizeof(buf), ++c->next_id, &ro, devs,
				   ranges);
	cr_assert_gt(len, 0);
	for (unsigned int i = 0; i < nfds; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fds[i], 0);
	}
	e = call_fds(c, buf, (size_t)len, fds, nfds, &r);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	return e;
}

Test(adopt, reply_and_ebusy, .fini = stop)
{
	struct itest_client c, c2;
	struct proto_adopt_device ad;
	struct proto_msg r;
	uint32_t dom;
	uint64_t lease;

	itest_start(&dd, CONF);
	client(&c, 0, NULL);
	client(&c2, 0, NULL);
	dom = make_domain(&c, "sim0");
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	cr_assert_eq(r.type, PROTO_ADOPT_REPLY);
	cr_assert_eq(r.list.count, 1);
	cr_assert_neq(r.list.ioas_id, 0);
	cr_assert_neq(r.list.hwpt_id, 0);
	cr_assert_eq(r.list.status, PROTO_DOMAIN_SUPPORTED |
		     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(r.list.page_size, 4096);
	cr_assert_eq(r.list.max_leaf, 4096, "NO_HUGE_PAGES: 4 KiB leaves");
	cr_assert_eq(r.list.adopt_flags, PROTO_ADOPT_HUGE_PAGES_OFF |
		     PROTO_ADOPT_NO_IOMMUFD, "flags %#x", r.list.adopt_flags);
	cr_assert_neq(r.list.lease, 0);
	lease = r.list.lease;
	proto_adopt_device_at(&r, 0, &ad);
	cr_assert_str_eq(ad.name, "sim0");
	cr_assert_eq(ad.fd_index, 0, "the sim has no descriptors");
	cr_assert_eq(ad.dev_flags, PROTO_ADOPT_DEV_BOUND |
		     PROTO_ADOPT_DEV_ATTACHED);

	/* adopted: a second ADOPT, DESTROY_DOMAIN, DETACH_DEVICE refused */
	cr_assert_eq(adopt(&c2, dom, &r), -EBUSY);
	cr_assert(strstr(c2.text, "adopted by pid"), "%s", c2.text);
	cr_assert_eq(itest_domain_op(&c2, PROTO_DESTROY_DOMAIN, dom), -EBUSY);
	cr_assert(strstr(c2.text, "DESTROY_DOMAIN: domain"), "%s", c2.text);
	cr_assert(strstr(c2.text, "UNADOPT first"), "%s", c2.text);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, dom, "sim0",
				     NULL), -EBUSY);
	cr_assert(strstr(c.text, "DETACH_DEVICE: domain"), "%s", c.text);
	/* nothing changed: still mapped, tracking, its device */
	{
		struct proto_domain all[2];

		cr_assert_eq(itest_list_domains(&c, all, 2), 1);
		cr_assert_eq(all[0].devices, 1);
		cr_assert_eq(all[0].mapped_bytes, 1ULL << 20);
		cr_assert(all[0].status & PROTO_DOMAIN_ENABLED);
	}
	/* only its session ends it */
	cr_assert_eq(itest_domain_op(&c2, PROTO_UNADOPT, dom), 0,
		     "uid 0 is an admin: %s", c2.text);
	cr_assert_eq(itest_domain_op(&c2, PROTO_UNADOPT, dom), -EINVAL);
	cr_assert(strstr(c2.text, "is not adopted"), "%s", c2.text);
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	cr_assert_neq(r.list.lease, lease, "a new lease");
	cr_assert_eq(itest_domain_op(&c, PROTO_UNADOPT, dom), 0, "%s", c.text);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, dom), 0);
	itest_close(&c);
	itest_close(&c2);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* Without PROTO_FEAT_ADOPT: EOPNOTSUPP, nothing adopted. */
Test(adopt, needs_feature, .fini = stop)
{
	struct itest_client c, o;
	struct proto_msg r;
	uint32_t dom;

	itest_start(&dd, CONF);
	client(&o, 0, NULL);
	dom = make_domain(&o, "sim0");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEATURES_ALL & ~(uint64_t)PROTO_FEAT_ADOPT, 0,
		    NULL);
	cr_assert_eq(adopt(&c, dom, &r), -EOPNOTSUPP);
	cr_assert(strstr(c.text, "PROTO_FEAT_ADOPT"), "%s", c.text);
	cr_assert_eq(itest_domain_op(&c, PROTO_UNADOPT, dom), -EOPNOTSUPP);
	cr_assert_eq(readopt(&c, (const char *[]){ "sim1" }, 1, false, 0, 1,
			     0), -EOPNOTSUPP);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, dom), 0,
		     "not adopted: %s", c.text);
	itest_close(&c);
	itest_close(&o);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* Another uid's domain: not even seen (ENOENT), as for any request. */
static void child_stranger(long dom)
{
	struct itest_client c;
	struct proto_msg r;
	int e;

	ITEST_CHILD_CHECK(setgroups(0, NULL) == 0 && setresgid(1002, 1002,
		1002) == 0 && setresuid(1002, 1002, 1002) == 0, "setresuid");
	ITEST_CHILD_CHECK(itest_connect(&dd, &c) == 0, "connect");
	itest_hello(&c, PROTO_FEATURES_ALL, 0, NULL);
	e = adopt(&c, (uint32_t)dom, &r);
	ITEST_CHILD_CHECK(e == -ENOENT, "ADOPT of another's domain: %d %s", e,
			  c.text);
	e = itest_domain_op(&c, PROTO_UNADOPT, (uint32_t)dom);
	ITEST_CHILD_CHECK(e == -ENOENT, "UNADOPT: %d %s", e, c.text);
	/* READOPT of a device uid 1002 may not claim */
	e = readopt(&c, (const char *[]){ "sim1" }, 1, false, 0, 1, 0);
	ITEST_CHILD_CHECK(e == -EACCES, "READOPT: %d %s", e, c.text);
	ITEST_CHILD_CHECK(strstr(c.text, "may not claim device sim1"), "%s",
			  c.text);
	itest_close(&c);
}

Test(adopt, other_uid, .fini = stop)
{
	struct itest_client c;
	struct proto_domain all[2];
	uint32_t dom;

	itest_need_root();
	itest_start(&dd, "socket_mode = 0666\n" CONF "[devices]\nsim0 = 1003\n");
	client(&c, 0, NULL);
	dom = make_domain(&c, "sim0");
	itest_run_child(child_stranger, dom, "uid 1002");
	cr_assert_eq(itest_list_domains(&c, all, 2), 1, "nothing readopted");
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, dom), 0,
		     "not adopted: %s", c.text);
	itest_close(&c);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* The lease follows the session's resume token. */
Test(adopt, resume_finds_lease, .fini = stop)
{
	struct itest_client c, o;
	struct proto_hello_reply h, h2;
	struct proto_msg r;
	uint32_t dom;

	itest_start(&dd, "resume_grace = 30\n" CONF);
	client(&c, 0, &h);
	client(&o, 0, NULL);
	dom = make_domain(&c, "sim0");
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	itest_close(&c);
	cr_assert(log_wait("closed its session; the lease is kept", 5000));
	client(&c, h.session_token, &h2);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED);
	cr_assert(harness_log_has(&dd, "its adopter is back", false));
	cr_assert_eq(itest_domain_op(&o, PROTO_DESTROY_DOMAIN, dom), -EBUSY);
	cr_assert_eq(itest_domain_op(&c, PROTO_UNADOPT, dom), 0, "%s", c.text);
	cr_assert_eq(itest_domain_op(&o, PROTO_DESTROY_DOMAIN, dom), 0);
	itest_close(&c);
	itest_close(&o);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* A non-admin's other session may not end the lease. */
static void child_two_sessions(long unused)
{
	struct itest_client a, b;
	struct proto_create_domain_reply cr;
	struct proto_msg r;
	int e;

	ITEST_CHILD_CHECK(setgroups(0, NULL) == 0 && setresgid(1003, 1003,
		1003) == 0 && setresuid(1003, 1003, 1003) == 0, "setresuid");
	ITEST_CHILD_CHECK(itest_connect(&dd, &a) == 0, "connect");
	itest_hello(&a, PROTO_FEATURES_ALL, 0, NULL);
	ITEST_CHILD_CHECK(itest_connect(&dd, &b) == 0, "connect");
	itest_hello(&b, PROTO_FEATURES_ALL, 0, NULL);
	e = itest_create(&a, "sim1", PROTO_CREATE_TRACKING, &cr);
	ITEST_CHILD_CHECK(e == 0, "create: %s", a.text);
	e = adopt(&a, cr.domain_id, &r);
	ITEST_CHILD_CHECK(e == 0, "adopt: %s", a.text);
	e = itest_domain_op(&b, PROTO_UNADOPT, cr.domain_id);
	ITEST_CHILD_CHECK(e == -EPERM, "UNADOPT from another session: %d",
			  e);
	ITEST_CHILD_CHECK(strstr(b.text, "only its session or an admin"),
			  "%s", b.text);
	e = itest_domain_op(&a, PROTO_UNADOPT, cr.domain_id);
	ITEST_CHILD_CHECK(e == 0, "UNADOPT: %s", a.text);
	e = itest_domain_op(&b, PROTO_DESTROY_DOMAIN, cr.domain_id);
	ITEST_CHILD_CHECK(e == 0, "destroy: %s", b.text);
	itest_close(&a);
	itest_close(&b);
}

Test(adopt, unadopt_only_by_its_session, .fini = stop)
{
	itest_need_root();
	itest_start(&dd, "socket_mode = 0666\n" CONF
		    "[devices]\nsim1 = 1003\n");
	itest_run_child(child_two_sessions, 0, "uid 1003");
	cr_assert_eq(itest_stop(&dd), 0);
}

/* The adopter dies: after resume_grace its lease ends. */
static void child_adopt_and_die(long dom)
{
	struct itest_client c;
	struct proto_msg r;
	int e;

	ITEST_CHILD_CHECK(itest_connect(&dd, &c) == 0, "connect");
	itest_hello(&c, PROTO_FEATURES_ALL, 0, NULL);
	e = adopt(&c, (uint32_t)dom, &r);
	ITEST_CHILD_CHECK(e == 0, "adopt: %s", c.text);
	/* exits: its session closes, its pid goes */
}

Test(adopt, orphan_cleanup, .fini = stop)
{
	struct itest_client c;
	struct proto_domain all[2];
	uint32_t dom;
	int e = -EBUSY;

	itest_start(&dd, "resume_grace = 1\n" CONF);
	client(&c, 0, NULL);
	dom = make_domain(&c, "sim0");
	itest_run_child(child_adopt_and_die, dom, "adopter");
	cr_assert(log_wait("closed its session", 5000));
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, dom), -EBUSY,
		     "within resume_grace the lease holds");
	cr_assert(strstr(c.text, "its session is gone"), "%s", c.text);
	for (int i = 0; i < 50 && e == -EBUSY; i++) {
		usleep(100 * 1000);
		e = itest_domain_op(&c, PROTO_DESTROY_DOMAIN, dom);
	}
	cr_assert_eq(e, 0, "the dead adopter's lease ended: %s", c.text);
	cr_assert(harness_log_has(&dd, "did not come back within "
				  "resume_grace: its 0 EXTERNAL ranges", false));
	cr_assert_eq(itest_list_domains(&c, all, 2), 0);
	itest_close(&c);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* The adopter's session went, its process lives: the lease stays. */
Test(adopt, living_adopter_keeps_lease, .fini = stop)
{
	struct itest_client c, o;
	struct proto_msg r;
	uint32_t dom;

	itest_start(&dd, "resume_grace = 1\n" CONF);
	client(&c, 0, NULL);
	client(&o, 0, NULL);
	dom = make_domain(&o, "sim0");
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	itest_close(&c);
	cr_assert(log_wait("lives: the lease is kept", 5000));
	cr_assert_eq(itest_domain_op(&o, PROTO_DESTROY_DOMAIN, dom), -EBUSY);
	itest_close(&o);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* The lease is journaled: after SIGKILL with the store it holds, and the
 * adopter's resume finds it. */
Test(adopt, lease_survives_restart, .fini = stop)
{
	struct itest_client c, o;
	struct proto_hello_reply h, h2;
	struct proto_msg r;
	uint32_t dom;

	itest_manage(&dd, "resume_grace = 30\n" CONF, true);
	itest_up(&dd);
	client(&c, 0, &h);
	dom = make_domain(&c, "sim0");
	cr_assert_eq(itest_subscribe(&c, dom, 0, 0, NULL), 0);
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	harness_kill(&dd, SIGKILL);
	itest_close(&c);
	itest_up(&dd);
	client(&o, 0, NULL);
	cr_assert_eq(itest_domain_op(&o, PROTO_DESTROY_DOMAIN, dom), -EBUSY,
		     "the lease came back with the store: %s", o.text);
	cr_assert(strstr(o.text, "its session is gone"), "%s", o.text);
	client(&c, h.session_token, &h2);
	cr_assert_eq(h2.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(itest_domain_op(&c, PROTO_UNADOPT, dom), 0, "%s", c.text);
	cr_assert_eq(itest_domain_op(&o, PROTO_DESTROY_DOMAIN, dom), 0);
	itest_close(&c);
	itest_close(&o);
	cr_assert_eq(itest_stop(&dd), 0);
}

/* Every malformed READOPT: refused, nothing built, every descriptor it
 * carried closed. */
Test(adopt, readopt_refusals, .fini = stop)
{
	const char *one[] = { "sim1" }, *twice[] = { "sim1", "sim1" };
	struct itest_client c;
	struct proto_domain all[2];
	struct proto_msg r;
	unsigned int fds0;
	uint8_t buf[256];
	uint32_t dom;
	int len;

	itest_start(&dd, CONF);
	client(&c, 0, NULL);
	dom = make_domain(&c, "sim0");
	fds0 = itest_daemon_fds(&dd);

	/* the codec's refusals: no device, a range of 0 bytes, ranges out
	 * of order, a length that is not the body's */
	{
		struct proto_readopt ro = { .ndevices = 0 };

		cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 1, &ro,
						  NULL, NULL), -EINVAL);
		memset(buf, 0, sizeof(buf));
		wire_put_le16(buf, PROTO_READOPT);
		wire_put_le32(buf + 4, PROTO_HEADER_SIZE + PROTO_READOPT_FIXED);
		wire_put_le64(buf + 8, ++c.next_id);
		len = PROTO_HEADER_SIZE + PROTO_READOPT_FIXED;
		cr_assert_eq(call_fds(&c, buf, (size_t)len, NULL, 0, &r),
			     -EBADMSG);
		cr_assert(strstr(c.text, "malformed READOPT"), "%s", c.text);
	}
	{
		struct proto_adopt_device dv = { .name = "sim1", .dev_id = 1 };
		struct proto_range rg[2] = { { 1 << 21, 1 << 20 },
					     { 0, 1 << 20 } };
		struct proto_readopt ro = { .ndevices = 1, .nranges = 2 };
		int fd = open("/dev/null", O_RDONLY);

		cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 1, &ro,
						  &dv, rg), -EINVAL,
			     "ranges out of order");
		rg[1] = (struct proto_range){ 1 << 22, 0 };
		cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 1, &ro,
						  &dv, rg), -EINVAL,
			     "an empty range");
		rg[1] = (struct proto_range){ 1 << 22, 1 << 20 };
		len = proto_encode_readopt(buf, sizeof(buf), ++c.next_id, &ro,
					   &dv, rg);
		cr_assert_gt(len, 0);
		/* one range's bytes short: its length is not the body's */
		wire_put_le32(buf + 4, (uint32_t)len - PROTO_RANGE_WIRE);
		cr_assert_eq(call_fds(&c, buf, (size_t)len - PROTO_RANGE_WIRE,
				      &fd, 1, &r), -EBADMSG);
		close(fd);
	}
	/* descriptors: none, or more than the body says */
	cr_assert_eq(readopt(&c, one, 1, false, 0, 0, 0), -EBADF);
	cr_assert(strstr(c.text, "carries 0 descriptors; its body needs 1"),
		  "%s", c.text);
	cr_assert_eq(readopt(&c, one, 1, false, 0, 3, 0), -EBADF);
	cr_assert_eq(readopt(&c, one, 1, true, 0, 1, 0), -EBADF,
		     "a device's descriptor missing");
	/* a device named twice, a device already in a domain */
	cr_assert_eq(readopt(&c, twice, 2, false, 0, 1, 0), -EINVAL);
	cr_assert(strstr(c.text, "named twice"), "%s", c.text);
	cr_assert_eq(readopt(&c, (const char *[]){ "sim0" }, 1, false, 0, 1,
			     0), -EBUSY);
	cr_assert(strstr(c.text, "already in domain"), "%s", c.text);
	/* a lease that was never lost */
	cr_assert_eq(adopt(&c, dom, &r), 0, "%s", c.text);
	fds0++;		/* the lease's pidfd of its adopter */
	cr_assert_eq(readopt(&c, one, 1, false, 1, 1, r.list.lease), -EBUSY);
	cr_assert(strstr(c.text, "it was never lost"), "%s", c.text);
	/* well formed: the sim has nothing to take back */
	cr_assert_eq(readopt(&c, one, 1, false, 2, 1, 0), -EOPNOTSUPP);
	cr_assert(strstr(c.text, "sim backend has no descriptors"), "%s",
		  c.text);
	/* nothing built, nothing kept */
	cr_assert_eq(itest_list_domains(&c, all, 2), 1);
	cr_assert_eq(itest_daemon_fds(&dd), fds0, "every descriptor closed");
	/* any other request: descriptors closed too */
	{
		struct proto_msg m = { .type = PROTO_LIST_DOMAINS,
				       .id = ++c.next_id };
		int fds[2] = { open("/dev/null", O_RDONLY),
			       open("/dev/null", O_RDONLY) };

		len = proto_encode(&m, buf, sizeof(buf));
		cr_assert_eq(call_fds(&c, buf, (size_t)len, fds, 2, &r), 0);
		close(fds[0]);
		close(fds[1]);
		/* a stream: read it out */
		while (r.flags & PROTO_F_MORE)
			cr_assert_eq(itest_wait(&c, m.id, &r), 0);
	}
	cr_assert_eq(itest_daemon_fds(&dd), fds0, "every descriptor closed");
	cr_assert_eq(itest_domain_op(&c, PROTO_UNADOPT, dom), 0);
	itest_close(&c);
	cr_assert_eq(itest_stop(&dd), 0);
}
