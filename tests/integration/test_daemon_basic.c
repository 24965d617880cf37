// SPDX-License-Identifier: MIT
/*
 * dirtyd over its socket, raw protocol: the handshake, the capability view
 * of a mixed host (seed options a, b, c), domains and devices, limits,
 * credentials, resume, and a clean exit on SIGTERM.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define DEVICES "[sim]\ndevices = sim0:dirty, sim1:dirty, legacy0:nodirty\n"

static struct harness dd;

static void start(const char *daemon_keys)
{
	char body[1024];

	snprintf(body, sizeof(body), "%s\n" DEVICES,
		 daemon_keys ? daemon_keys : "");
	itest_start(&dd, body);
}

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

static void client(struct itest_client *c)
{
	cr_assert_eq(itest_connect(&dd, c), 0);
	itest_hello(c, PROTO_FEATURES_ALL, 0, NULL);
}

static const struct proto_device *device(const struct proto_device *devs,
					 unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (!strcmp(devs[i].name, name))
			return &devs[i];
	cr_assert_fail("LIST_DEVICES does not show %s", name);
	return NULL;
}

Test(basic, hello_rules, .init = NULL, .fini = stop)
{
	struct itest_client c;
	struct proto_hello_reply hr;
	struct proto_msg m, r;

	start(NULL);
	cr_assert_eq(itest_connect(&dd, &c), 0);

	/* anything before HELLO: EPROTO, and the session goes on */
	m = (struct proto_msg){ .type = PROTO_LIST_DOMAINS };
	cr_assert_eq(itest_call(&c, &m, &r), -EPROTO);
	cr_assert(strstr(c.text, "HELLO"), "text: %s", c.text);

	/* another major version: EPROTONOSUPPORT naming both */
	m = (struct proto_msg){
		.type = PROTO_HELLO,
		.hello = { .major = PROTO_VERSION_MAJOR + 1 },
	};
	cr_assert_eq(itest_call(&c, &m, &r), -EPROTONOSUPPORT);
	cr_assert(strstr(c.text, "2.0") && strstr(c.text, "1.0"), "text: %s",
		  c.text);

	/* then a good one: no FD_PASSING on the sim, our uid and gid */
	itest_hello(&c, PROTO_FEATURES_ALL | 1ULL << 40, 0, &hr);
	cr_assert_eq(hr.major, PROTO_VERSION_MAJOR);
	cr_assert_eq(hr.max_msg, PROTO_MAX_MSG);
	cr_assert_eq(hr.features, PROTO_FEATURES_ALL & ~PROTO_FEAT_FD_PASSING);
	cr_assert_neq(hr.session_token, 0);
	cr_assert_eq(hr.uid, getuid());
	cr_assert_eq(hr.gid, getgid());
	cr_assert_eq(hr.session_flags, 0);

	/* a second HELLO: EPROTO */
	m = (struct proto_msg){
		.type = PROTO_HELLO,
		.hello = { .major = PROTO_VERSION_MAJOR },
	};
	cr_assert_eq(itest_call(&c, &m, &r), -EPROTO);
	/* a reply type sent as a request: EPROTO */
	m = (struct proto_msg){ .type = PROTO_OK };
	cr_assert_eq(itest_call(&c, &m, &r), -EPROTO);
	cr_assert_eq(itest_list_domains(&c, NULL, 0), 0);
	itest_close(&c);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

Test(basic, mixed_host, .fini = stop)
{
	struct itest_client c;
	struct proto_device devs[8];
	struct proto_domain doms[8];
	struct proto_create_domain_reply a, b;
	const struct proto_device *dv;
	uint32_t dev_id = 0;
	unsigned int n;

	start(NULL);
	client(&c);

	/* option c: the capability of every device */
	n = itest_list_devices(&c, devs, 8);
	cr_assert_eq(n, 3);
	dv = device(devs, n, "sim0");
	cr_assert_eq(dv->flags, PROTO_DEVICE_DIRTY_CAPABLE);
	cr_assert_eq(dv->capabilities & 1, 1);
	cr_assert_eq(dv->domain_id, 0);
	dv = device(devs, n, "legacy0");
	cr_assert_eq(dv->flags, 0);
	cr_assert_eq(dv->capabilities, 0);

	/* option a: a tracking domain for a device that cannot track is
	 * refused, naming it */
	cr_assert_eq(itest_create(&c, "legacy0", PROTO_CREATE_TRACKING, NULL),
		     -EOPNOTSUPP);
	cr_assert(strstr(c.text, "legacy0") &&
		  strstr(c.text, "cannot track dirty pages"), "text: %s",
		  c.text);
	cr_assert_eq(itest_create(&c, "nosuch", 0, NULL), -ENOENT);
	cr_assert(strstr(c.text, "nosuch"), "text: %s", c.text);

	/* a mixed host: the device goes in a domain without tracking */
	cr_assert_eq(itest_create(&c, "legacy0", 0, &b), 0);
	cr_assert_eq(b.status, PROTO_DOMAIN_UNSUPPORTED);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(a.status, PROTO_DOMAIN_SUPPORTED);
	cr_assert_neq(a.domain_id, b.domain_id);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, b.domain_id),
		     -EOPNOTSUPP);
	cr_assert_eq(itest_sync(&c, b.domain_id, NULL), -EINVAL);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), -EINVAL);
	cr_assert(strstr(c.text, "tracking is off"), "text: %s", c.text);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);

	/* option b: the status of each */
	n = itest_list_domains(&c, doms, 8);
	cr_assert_eq(n, 2);
	cr_assert_eq(doms[0].domain_id, b.domain_id);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_UNSUPPORTED);
	cr_assert_eq(doms[0].owner_uid, getuid());
	cr_assert_eq(doms[1].domain_id, a.domain_id);
	cr_assert_eq(doms[1].status, PROTO_DOMAIN_SUPPORTED |
				     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(doms[1].page_size, 4096);

	/* a device that cannot track cannot join a tracking domain */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "legacy0", NULL), -EBUSY);
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, b.domain_id),
		     0);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "legacy0", NULL), -EINVAL);
	cr_assert(strstr(c.text, "legacy0") && strstr(c.text, "cannot join"),
		  "text: %s", c.text);
	/* one that can, can; once */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim1", &dev_id), 0);
	cr_assert_neq(dev_id, 0);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim1", NULL), -EBUSY);
	cr_assert_eq(itest_create(&c, "sim1", 0, NULL), -EBUSY);
	n = itest_list_devices(&c, devs, 8);
	dv = device(devs, n, "sim1");
	cr_assert_eq(dv->flags, PROTO_DEVICE_DIRTY_CAPABLE |
				PROTO_DEVICE_BOUND | PROTO_DEVICE_ATTACHED);
	cr_assert_eq(dv->domain_id, a.domain_id);
	cr_assert_eq(dv->dev_id, dev_id);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "sim1", NULL), 0);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "sim1", NULL), -ENOENT);

	/* destroyed: gone, and its id is not reused */
	cr_assert_eq(itest_domain_op(&c, PROTO_DESTROY_DOMAIN, a.domain_id),
		     0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_STOP, a.domain_id),
		     -ENOENT);
	cr_assert_eq(itest_create(&c, "sim0", 0, &b), 0);
	cr_assert_gt(b.domain_id, a.domain_id);
	cr_assert_eq(itest_list_domains(&c, doms, 8), 1);

	/* no descriptors on the sim */
	cr_assert_eq(itest_domain_op(&c, PROTO_GET_FDS, b.domain_id),
		     -EOPNOTSUPP);
	itest_close(&c);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* A device named two ways is one device: 65:00.0 is 0000:65:00.0, as
 * LIST_DEVICES lists it (a sim device may be named like a PCI address). */
Test(basic, one_device_two_names, .fini = stop)
{
	struct itest_client c;
	struct proto_device devs[8];
	struct proto_create_domain_reply a;
	const struct proto_device *dv;
	uint32_t dev_id = 0;
	unsigned int n;

	itest_start(&dd, "[sim]\ndevices = 65:00.0:dirty, sim1:dirty\n");
	client(&c);
	n = itest_list_devices(&c, devs, 8);
	cr_assert_eq(n, 2);
	device(devs, n, "0000:65:00.0");

	cr_assert_eq(itest_create(&c, "65:00.0", PROTO_CREATE_TRACKING, &a),
		     0, "%s", c.text);
	n = itest_list_devices(&c, devs, 8);
	dv = device(devs, n, "0000:65:00.0");
	cr_assert_eq(dv->domain_id, a.domain_id);
	cr_assert_eq(dv->dev_id, a.dev_id);
	cr_assert_eq(itest_create(&c, "0000:65:00.0", 0, NULL), -EBUSY);
	cr_assert(strstr(c.text, "device 0000:65:00.0 is already in domain"),
		  "text: %s", c.text);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "0000:65:00.0", NULL), -EBUSY);
	/* detached by either name */
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "sim1", NULL), 0, "%s", c.text);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "0000:65:00.0", NULL), 0, "%s", c.text);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "65:00.0", NULL), -ENOENT);
	cr_assert_eq(itest_device_op(&c, PROTO_ATTACH_DEVICE, a.domain_id,
				     "65:00.0", &dev_id), 0, "%s", c.text);
	n = itest_list_devices(&c, devs, 8);
	dv = device(devs, n, "0000:65:00.0");
	cr_assert_eq(dv->domain_id, a.domain_id);
	cr_assert_eq(dv->dev_id, dev_id);
	cr_assert_eq(itest_device_op(&c, PROTO_DETACH_DEVICE, a.domain_id,
				     "65:00.0", NULL), 0, "%s", c.text);
	itest_close(&c);
	itest_stop_ok(&dd);
}

Test(basic, mapping_rules, .fini = stop)
{
	struct itest_client c;
	struct proto_create_domain_reply a;
	const uint64_t G = 1ULL << 30;

	start(NULL);
	client(&c);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, G, G), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, G + G / 2, G),
		     -EEXIST);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, 3 * G + 1, 4096),
		     -EINVAL);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, 3 * G, 0), -EINVAL);
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, a.domain_id, G, G / 2),
		     -EINVAL);
	cr_assert(strstr(c.text, "split"), "text: %s", c.text);
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, a.domain_id, 8 * G, G),
		     -ENOENT);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, 8 * G, 4096),
		     -ENOENT);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, G, 4096), 0);
	cr_assert_eq(itest_map(&c, PROTO_UNMAP, a.domain_id, 0, 4 * G), 0);
	cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id, G, 4096),
		     -ENOENT);
	itest_close(&c);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

Test(basic, limits, .fini = stop)
{
	struct itest_client c[4], x;
	struct proto_create_domain_reply a, b;
	struct proto_msg r;
	int e;

	start("max_clients = 3\nmax_subscriptions = 1\nmax_domains = 2\n"
	      "max_mapped = 64m\n");
	for (int i = 0; i < 3; i++)
		client(&c[i]);

	/* a fourth client: one ERROR EUSERS with id 0, then EOF */
	cr_assert_eq(itest_connect(&dd, &x), 0);
	e = itest_recv(&x, &r, 20000);
	cr_assert_eq(e, 0, "%s", strerror(-e));
	cr_assert_eq(r.type, PROTO_ERROR);
	cr_assert_eq(r.id, 0);
	cr_assert_eq(r.error.err, EUSERS);
	cr_assert(memmem(r.error.text, r.error.text_len, "max 3", 5));
	cr_assert_eq(itest_recv(&x, &r, 20000), -ECONNRESET);
	itest_close(&x);

	/* max_domains per uid, whichever session asks */
	cr_assert_eq(itest_create(&c[0], "sim0", PROTO_CREATE_TRACKING, &a), 0);
	cr_assert_eq(itest_create(&c[1], "sim1", PROTO_CREATE_TRACKING, &b), 0);
	cr_assert_eq(itest_create(&c[2], "legacy0", 0, NULL), -EDQUOT);
	cr_assert(strstr(c[2].text, "max_domains 2"), "text: %s", c[2].text);

	/* max_mapped: bytes of every domain of the uid together */
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, a.domain_id, 1ULL << 30,
			       48ULL << 20), 0, "%s", c[0].text);
	cr_assert_eq(itest_map(&c[1], PROTO_MAP, b.domain_id, 2ULL << 30,
			       32ULL << 20), -EDQUOT);
	cr_assert(strstr(c[1].text, "max_mapped 0x4000000"), "text: %s",
		  c[1].text);
	/* refused whole, nothing mapped: the 16 MiB left still fit */
	cr_assert_eq(itest_map(&c[1], PROTO_MAP, b.domain_id, 2ULL << 30,
			       16ULL << 20), 0, "%s", c[1].text);
	cr_assert_eq(itest_map(&c[1], PROTO_MAP, b.domain_id, 3ULL << 30,
			       4096), -EDQUOT);
	cr_assert_eq(itest_map(&c[0], PROTO_MAP, a.domain_id, 1ULL << 40,
			       1ULL << 46), -EDQUOT);
	cr_assert_eq(itest_map(&c[0], PROTO_UNMAP, a.domain_id, 1ULL << 30,
			       48ULL << 20), 0, "%s", c[0].text);
	cr_assert_eq(itest_map(&c[1], PROTO_MAP, b.domain_id, 3ULL << 30,
			       4096), 0, "%s", c[1].text);

	/* max_subscriptions per session; EEXIST for the same domain */
	cr_assert_eq(itest_subscribe(&c[0], a.domain_id, 0, 0, NULL), 0);
	cr_assert_eq(itest_subscribe(&c[0], a.domain_id, 0, 0, NULL), -EEXIST);
	cr_assert_eq(itest_subscribe(&c[0], b.domain_id, 0, 0, NULL), -EDQUOT);
	cr_assert(strstr(c[0].text, "max_subscriptions 1"), "text: %s",
		  c[0].text);
	/* per session: another session may */
	cr_assert_eq(itest_subscribe(&c[1], b.domain_id, 0, 0, NULL), 0);
	/* a destroyed domain frees both */
	cr_assert_eq(itest_domain_op(&c[1], PROTO_DESTROY_DOMAIN, a.domain_id),
		     0);
	cr_assert_eq(itest_subscribe(&c[0], b.domain_id, 0, 0, NULL), 0);
	cr_assert_eq(itest_create(&c[2], "legacy0", 0, NULL), 0);

	/* a client leaving makes room for another */
	itest_close(&c[2]);
	for (int i = 0;; i++) {
		cr_assert_lt(i, 200, "the closed client's place never freed");
		cr_assert_eq(itest_connect(&dd, &x), 0);
		if (itest_recv(&x, &r, 50) == -ETIMEDOUT)
			break;
		itest_close(&x);
	}
	itest_hello(&x, 0, 0, NULL);
	for (int i = 0; i < 2; i++)
		itest_close(&c[i]);
	itest_close(&x);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* A connection's descriptor used by another process: EPERM. */
Test(basic, passed_descriptor, .fini = stop)
{
	struct itest_client c;
	pid_t pid;
	int status;

	start(NULL);
	client(&c);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct proto_msg m = { .type = PROTO_LIST_DOMAINS }, r;
		int e;

		itest_send(&c, &m);
		e = itest_recv(&c, &r, 20000);
		_exit(e == 0 && r.type == PROTO_ERROR &&
		      r.error.err == EPERM && r.id == m.id ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the other process was not refused with EPERM");
	/* the owner goes on */
	cr_assert_eq(itest_list_domains(&c, NULL, 0), 0);
	itest_close(&c);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

Test(basic, resume, .fini = stop)
{
	struct itest_client c;
	struct proto_hello_reply hr, hr2;
	struct proto_create_domain_reply a;
	struct itest_runs got = { 0 }, want = { 0 };
	struct itest_ranges info;
	uint64_t pages[3] = { 0x40000, 0x40001, 0x40100 };

	start("resume_grace = 1");
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, 0, &hr);
	cr_assert_neq(hr.session_token, 0);
	cr_assert_eq(itest_create(&c, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(itest_map(&c, PROTO_MAP, a.domain_id, 1ULL << 30,
			       1ULL << 30), 0);
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, a.domain_id), 0);
	cr_assert_eq(itest_subscribe(&c, a.domain_id, 0, PROTO_SUBSCRIBE_CLEAN,
				     NULL), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, a.domain_id,
				       pages[i] * 4096, 4096), 0);
	cr_assert_eq(itest_sync(&c, a.domain_id, NULL), 0);
	itest_runs_from_pages(&want, pages, 3);
	/* sent, not acknowledged: the connection drops */
	cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "before the disconnect");
	itest_close(&c);

	/* the token brings the subscription back, unacknowledged pages
	 * pending again */
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, hr.session_token, &hr2);
	cr_assert_eq(hr2.session_flags, PROTO_SESSION_RESUMED);
	cr_assert_eq(hr2.session_token, hr.session_token);
	cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got, &info), 0);
	itest_runs_assert_eq(&got, &want, "after the resume");
	itest_close(&c);

	/* an unknown token, and an expired one: state lost */
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, hr.session_token ^ 1, &hr2);
	cr_assert_eq(hr2.session_flags, PROTO_SESSION_STATE_LOST);
	itest_close(&c);
	usleep(1600 * 1000);
	cr_assert_eq(itest_connect(&dd, &c), 0);
	itest_hello(&c, PROTO_FEAT_RESUME, hr.session_token, &hr2);
	cr_assert_eq(hr2.session_flags, PROTO_SESSION_STATE_LOST);
	cr_assert_eq(itest_get_ranges(&c, a.domain_id, 0, &got, NULL), -ENOENT);
	itest_close(&c);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}

/* [guest NAME] sections: domains dirtyd creates at start. */
Test(basic, configured_guests, .fini = stop)
{
	struct itest_client c;
	struct proto_domain doms[4];
	struct itest_runs got = { 0 }, want = { 0 };
	uint64_t pages[] = { 0x40000, 0x40001, 0x40002, 0x7ffff, 0x55555 };

	itest_start(&dd, "[sim]\ndevices = sim0:dirty, sim1:dirty, "
		    "legacy0:nodirty\n"
		    "[guest quiet]\ndevice = sim0\nsize = 1G\niova = 1G\n"
		    "dma = none\nhuge_pages = no\n"
		    "[guest old]\ndevice = legacy0\nsize = 256M\niova = 4G\n"
		    "tracking = no\nowner = 1000\n");
	client(&c);
	cr_assert_eq(itest_list_domains(&c, doms, 4), 2);
	cr_assert_eq(doms[0].domain_id, 1);
	cr_assert_eq(doms[0].owner_uid, 0);
	cr_assert_eq(doms[0].status, PROTO_DOMAIN_SUPPORTED |
				     PROTO_DOMAIN_ENABLED);
	cr_assert_eq(doms[0].mapped_bytes, 1ULL << 30);
	cr_assert_eq(doms[0].devices, 1);
	cr_assert_eq(doms[1].domain_id, 2);
	cr_assert_eq(doms[1].owner_uid, 1000);
	cr_assert_eq(doms[1].status, PROTO_DOMAIN_UNSUPPORTED);
	cr_assert_eq(doms[1].mapped_bytes, 256ULL << 20);

	/* dma = none: only what a client writes is dirty */
	cr_assert_eq(itest_domain_op(&c, PROTO_TRACK_START, 1), 0);
	cr_assert_eq(itest_subscribe(&c, 1, 0, PROTO_SUBSCRIBE_CLEAN, NULL), 0);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(itest_map(&c, PROTO_DMA_WRITE, 1, pages[i] * 4096,
				       4096), 0);
	cr_assert_eq(itest_sync(&c, 1, NULL), 0);
	cr_assert_eq(itest_get_ranges(&c, 1, 0, &got, NULL), 0);
	itest_runs_from_pages(&want, pages, 5);
	itest_runs_assert_eq(&got, &want, "the quiet guest");
	itest_close(&c);
	itest_runs_free(&got);
	itest_runs_free(&want);
	itest_stop_ok(&dd);
}

/* Run dirtyd with @args (NULL-terminated) and @conf as its --config;
 * returns its exit status, its stderr in @out. */
static int run_dirtyd(const char *conf, char *out, size_t size, ...)
{
	const char *argv[16] = { getenv("DIRTYD_BIN") };
	char path[] = "/tmp/dirtyd-conf-XXXXXX";
	int fd = mkstemp(path), pfd[2], status, argc = 1;
	va_list ap;
	ssize_t n, len = 0;
	pid_t pid;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, conf, strlen(conf)), (ssize_t)strlen(conf));
	close(fd);
	argv[argc++] = "--config";
	argv[argc++] = path;
	va_start(ap, size);
	while ((argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	cr_assert_eq(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + len, size - 1 - len)) > 0)
		len += n;
	out[len] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	unlink(path);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The parser is strict and says where: file:line, or the option. */
Test(basic, config_errors)
{
	static const struct {
		const char *conf, *option, *want;
	} bad[] = {
		{ "[daemon]\nbackend = sim\nbogus = 1\n", NULL,
		  ":3: unknown key 'bogus' in section [daemon]" },
		{ "# comment\n[deamon]\n", NULL,
		  ":2: unknown section [deamon]" },
		{ "[daemon]\nmax_clients = many\n", NULL,
		  ":2: [daemon] max_clients = 'many'" },
		{ "backend = sim\n", NULL, ":1: key 'backend' outside" },
		{ "[daemon]\nbackend = sim\n[sim]\ndevices = a:dirty\n"
		  "[guest g]\ndevice = b\n", NULL,
		  ":5: [guest g]: no sim device named b" },
		{ "[daemon]\nbackend = sim\n[sim]\ndevices = a:dirty, "
		  "b:nodirty\n[guest g]\ndevice = b\n", NULL,
		  "device b cannot track dirty pages" },
		{ "[sim]\ndevices = 65:00.0:dirty, 0000:65:00.0:dirty\n",
		  NULL, "device '0000:65:00.0' listed twice" },
		{ "[sim]\nbacking_page_size = 8k\n", NULL,
		  "expected 4k, 2m or 1g" },
		{ "[sim]\nkernel = 6.13.1\n", NULL,
		  "[sim] kernel = '6.13.1': expected a Linux 6.12.y release" },
		{ "[devices]\n* = dirtyd-no-such-user\n", NULL,
		  ":2: [devices] * = 'dirtyd-no-such-user': "
		  "dirtyd-no-such-user: no such user" },
		{ "[daemon]\nbackend = sim\n", "--set=devices.65:00.0=root",
		  "--set devices.65:00.0=root: [devices] 65:00.0: no sim "
		  "device named 0000:65:00.0" },
		{ "[daemon]\nbackend = sim\n", "--set=daemon.nosuch=1",
		  "--set daemon.nosuch=1: unknown key 'nosuch'" },
		{ "[daemon]\nbackend = sim\n", "--log-level=loud",
		  "--log-level: [daemon] log_level = 'loud'" },
	};
	char out[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = run_dirtyd(bad[i].conf, out, sizeof(out),
				    "--check-config", bad[i].option, NULL);

		cr_assert_eq(st, 2, "case %zu: exit %d: %s", i, st, out);
		cr_assert(strstr(out, bad[i].want), "case %zu: '%s' not in: %s",
			  i, bad[i].want, out);
	}
	cr_assert_eq(run_dirtyd("[daemon]\nbackend = sim\n[guest g]\n"
				"device = sim-nic0\nsize = 2G\n", out,
				sizeof(out), "--check-config",
				"--set=guest.g.dma=hotset", NULL), 0, "%s",
		     out);
	cr_assert_eq(run_dirtyd("", out, sizeof(out), "--version", NULL), 0);
	cr_assert(strstr(out, "dirtyd "), "%s", out);
	cr_assert_eq(run_dirtyd("", out, sizeof(out), "--frobnicate", NULL), 2);
	/* the iommufd backend where there is no /dev/iommu: a clear error */
	cr_assert_eq(run_dirtyd("[daemon]\nbackend = iommufd\nsocket = "
				"/tmp/dirtyd-none.sock\n[iommufd]\npath = "
				"/nonexistent/iommu\n", out, sizeof(out),
				NULL), 1, "%s", out);
	cr_assert(strstr(out, "backend = sim"), "%s", out);
	/* this host's own kernel, as it is: Debian 12's 6.1 has no iommufd */
	if (access("/dev/iommu", F_OK) != 0) {
		cr_assert_eq(run_dirtyd("[daemon]\nbackend = iommufd\nsocket ="
					" /tmp/dirtyd-none.sock\n", out,
					sizeof(out), NULL), 1, "%s", out);
		cr_assert(strstr(out, "cannot open /dev/iommu: this kernel "
				  "has no iommufd"), "%s", out);
	}
	/* [sim] kernel: a 6.12.y release of kernel/sim/kernel.h */
	cr_assert_eq(run_dirtyd("[sim]\nkernel = 6.12.107\n", out,
				sizeof(out), "--check-config", NULL), 0, "%s",
		     out);
}
