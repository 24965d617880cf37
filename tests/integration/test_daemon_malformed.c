// SPDX-License-Identifier: MIT
/*
 * A client that sends garbage gets one ERROR per packet, with the errno
 * the protocol names, and its session goes on; a second client connected
 * at the same time is unaffected: its subscription still delivers exactly
 * the pages written.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"
#include "protocol/wire.h"

#define PG 4096ULL
#define GIB (1ULL << 30)

static struct harness dd;

/* After a failed assertion: kill and clean up (the exit status is
 * checked at the end of each test: Criterion ignores assertions here). */
static void stop(void)
{
	itest_stop(&dd);
}

static void header(uint8_t *p, uint16_t type, uint16_t flags, uint32_t len,
		   uint64_t id)
{
	wire_put_le16(p, type);
	wire_put_le16(p + 2, flags);
	wire_put_le32(p + 4, len);
	wire_put_le64(p + 8, id);
}

/* Send @len bytes; the next packet must be ERROR @err for @id. */
static void refused(struct itest_client *c, const void *buf, size_t len,
		    int err, uint64_t id, const char *what)
{
	struct proto_msg r;
	int e;

	cr_assert_eq(itest_send_raw(c, buf, len), 0, "%s: send: %s", what,
		     strerror(errno));
	e = itest_recv(c, &r, 20000);
	cr_assert_eq(e, 0, "%s: no answer (%s)", what, strerror(-e));
	cr_assert_eq(r.type, PROTO_ERROR, "%s: answered by %s", what,
		     proto_type_name(r.type));
	cr_assert_eq(r.error.err, (uint32_t)err, "%s: errno %u, not %d (%.*s)",
		     what, r.error.err, err, (int)r.error.text_len,
		     r.error.text);
	cr_assert_eq(r.id, id, "%s: id %llu, not %llu", what,
		     (unsigned long long)r.id, (unsigned long long)id);
	cr_assert_gt(r.error.text_len, 0, "%s: no reason given", what);
	/* the session goes on */
	cr_assert_eq(itest_list_domains(c, NULL, 0), 1, "%s: the session did "
		     "not survive", what);
}

static unsigned int daemon_fds(void)
{
	return itest_daemon_fds(&dd);
}

Test(malformed, errors_and_other_clients, .fini = stop)
{
	static uint8_t big[70 * 1024];
	uint8_t p[256];
	struct itest_client bad, good;
	struct proto_create_domain_reply a;
	struct itest_runs got = { 0 }, want = { 0 };
	uint64_t pages[64];
	size_t npages = 0;
	unsigned int fds;

	itest_start(&dd, "[sim]\ndevices = sim0:dirty, sim1:dirty\n");
	cr_assert_eq(itest_connect(&dd, &good), 0);
	itest_hello(&good, PROTO_FEATURES_ALL, 0, NULL);
	cr_assert_eq(itest_create(&good, "sim0", PROTO_CREATE_TRACKING |
				  PROTO_CREATE_NO_HUGE_PAGES, &a), 0);
	cr_assert_eq(itest_map(&good, PROTO_MAP, a.domain_id, GIB, GIB), 0);
	cr_assert_eq(itest_domain_op(&good, PROTO_TRACK_START, a.domain_id),
		     0);
	cr_assert_eq(itest_subscribe(&good, a.domain_id, 5,
				     PROTO_SUBSCRIBE_CLEAN, NULL), 0);

	cr_assert_eq(itest_connect(&dd, &bad), 0);
	itest_hello(&bad, 0, 0, NULL);

	for (int round = 0; round < 4; round++) {
		/* the good client writes between the bad one's packets */
		for (int i = 0; i < 8; i++) {
			uint64_t page = GIB / PG + (uint64_t)round * 1000 +
					(uint64_t)i * 37;

			cr_assert_eq(itest_map(&good, PROTO_DMA_WRITE,
					       a.domain_id, page * PG, PG), 0);
			pages[npages++] = page;
		}
		switch (round) {
		case 0:
			/* garbage, shorter than a header */
			refused(&bad, "\x13\x37\xde\xad\xbe", 5, EBADMSG, 0,
				"5 garbage bytes");
			/* an empty packet */
			refused(&bad, "", 0, EBADMSG, 0, "an empty packet");
			/* a length field that is not the packet's size */
			header(p, PROTO_LIST_DOMAINS, 0, 100, 7);
			refused(&bad, p, 16, EMSGSIZE, 7, "length 100 in 16");
			header(p, PROTO_LIST_DOMAINS, 0, 16, 8);
			refused(&bad, p, 24, EMSGSIZE, 8, "length 16 in 24");
			break;
		case 1:
			/* over 64 KiB */
			header(big, PROTO_LIST_DOMAINS, 0, sizeof(big), 9);
			refused(&bad, big, sizeof(big), EMSGSIZE, 9,
				"a 70 KiB packet");
			header(big, PROTO_LIST_DOMAINS, 0, 65537, 10);
			refused(&bad, big, 65537, EMSGSIZE, 10,
				"a 65537-byte packet");
			/* an unknown type; a reply type */
			header(p, 0x0077, 0, 16, 11);
			refused(&bad, p, 16, EPROTO, 11, "type 0x0077");
			header(p, PROTO_SYNC_REPLY, 0, 32, 12);
			memset(p + 16, 0, 16);
			refused(&bad, p, 32, EPROTO, 12, "a SYNC_REPLY");
			break;
		case 2:
			/* a non-zero reserved field */
			header(p, PROTO_TRACK_START, 0, 24, 13);
			wire_put_le32(p + 16, a.domain_id);
			wire_put_le32(p + 20, 1);
			refused(&bad, p, 24, EBADMSG, 13, "reserved field 1");
			/* a body one byte short */
			header(p, PROTO_TRACK_START, 0, 23, 14);
			refused(&bad, p, 23, EBADMSG, 14, "a short body");
			/* request id 0 */
			header(p, PROTO_LIST_DOMAINS, 0, 16, 0);
			refused(&bad, p, 16, EBADMSG, 0, "request id 0");
			/* an unknown flag; MORE on a request */
			header(p, PROTO_LIST_DOMAINS, 0x8, 16, 15);
			refused(&bad, p, 16, EBADMSG, 15, "header flag 0x8");
			header(p, PROTO_LIST_DOMAINS, PROTO_F_MORE, 16, 16);
			refused(&bad, p, 16, EBADMSG, 16, "MORE on a request");
			break;
		case 3:
			/* an unknown MAP flag */
			header(p, PROTO_MAP, 0, 40, 17);
			wire_put_le32(p + 16, a.domain_id);
			wire_put_le32(p + 20, 0xb);
			wire_put_le64(p + 24, 8 * GIB);
			wire_put_le64(p + 32, GIB);
			refused(&bad, p, 40, EBADMSG, 17, "MAP flag 0x8");
			/* a name with no NUL */
			header(p, PROTO_CREATE_DOMAIN, 0, 88, 18);
			memset(p + 16, 0, 8);
			memset(p + 24, 'a', 64);
			refused(&bad, p, 88, EBADMSG, 18,
				"an unterminated name");
			/* a domain of nobody's */
			header(p, PROTO_SYNC, 0, 24, 19);
			wire_put_le32(p + 16, 4242);
			wire_put_le32(p + 20, 0);
			refused(&bad, p, 24, ENOENT, 19, "SYNC of domain 4242");
			/* EXTERNAL: the sim has no iommufd to map through */
			header(p, PROTO_MAP, 0, 40, 20);
			wire_put_le32(p + 16, a.domain_id);
			wire_put_le32(p + 20, PROTO_MAP_READABLE |
				      PROTO_MAP_WRITEABLE | PROTO_MAP_EXTERNAL);
			wire_put_le64(p + 24, 8 * GIB);
			wire_put_le64(p + 32, GIB);
			refused(&bad, p, 40, EOPNOTSUPP, 20,
				"MAP EXTERNAL on the sim");
			break;
		}
	}

	/* descriptors sent to dirtyd are closed, not kept */
	fds = daemon_fds();
	for (int i = 0; i < 10; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 3)];
			struct cmsghdr align;
		} ctl = { 0 };
		int sent[3] = { 0, 1, 2 };
		struct iovec iov = { .iov_base = p, .iov_len = 16 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		struct proto_msg r;

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(sent));
		memcpy(CMSG_DATA(cm), sent, sizeof(sent));
		header(p, PROTO_LIST_DOMAINS, 0, 16, 100 + i);
		cr_assert_eq(sendmsg(bad.fd, &mh, 0), 16);
		cr_assert_eq(itest_wait(&bad, 100 + i, &r), 0);
		cr_assert_eq(r.type, PROTO_LIST_DOMAINS_REPLY);
	}
	cr_assert_eq(daemon_fds(), fds, "dirtyd kept descriptors a client "
		     "sent");

	/* the good client's subscription delivers exactly its pages */
	cr_assert_eq(itest_sync(&good, a.domain_id, NULL), 0);
	cr_assert_eq(itest_get_ranges(&good, a.domain_id, 0, &got, NULL), 0);
	itest_runs_from_pages(&want, pages, npages);
	itest_runs_assert_eq(&got, &want, "the other client's ranges");
	itest_close(&bad);
	itest_close(&good);
	itest_runs_free(&got);
	itest_runs_free(&want);
	/* SIGTERM: exit 0, and under ASan nothing leaked */
	itest_stop_ok(&dd);
}
