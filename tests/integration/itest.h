/* SPDX-License-Identifier: MIT */
/*
 * The daemon-level integration tests' harness: the real dirtyd started on
 * the simulated host by tests/harness (config, socket and NOTIFY_SOCKET in
 * a temporary directory; READY=1 awaited), as Criterion assertions, and
 * raw clients that speak the protocol through the codec
 * (protocol/proto.h), nothing else.
 *
 * The binary is $DIRTYD_BIN (CTest sets it to $<TARGET_FILE:dirtyd>).
 * Failures are Criterion assertions; the daemon's log is printed with them.
 */
#ifndef DIRTYD_TESTS_ITEST_H
#define DIRTYD_TESTS_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/types.h>

#include "harness.h"
#include "protocol/proto.h"

/**
 * itest_start() - dirtyd on its own socket (harness.h): a config of
 * [daemon] backend = sim, the socket in a temporary directory, log_level
 * = debug, then @body (more keys of [daemon] first, then sections);
 * start; assert READY=1.
 */
void itest_start(struct harness *t, const char *body);
/**
 * itest_manage() - the same dirtyd under the service manager: socket
 * activation, and with @store the file descriptor store; not started.
 */
void itest_manage(struct harness *t, const char *body, bool store);
/** itest_up() - start (again); assert READY=1, else fail with the log. */
void itest_up(struct harness *t);
/** itest_stop() - SIGTERM, wait (20 s at most), clean up; returns the
 *  wait status (the caller asserts a clean exit, 0).  Safe on a harness
 *  never started (a skipped test). */
int itest_stop(struct harness *t);
/** itest_stop_ok() - itest_stop() and assert exit status 0. */
void itest_stop_ok(struct harness *t);
/** itest_daemon_fds() - descriptors the daemon has open now. */
unsigned int itest_daemon_fds(const struct harness *t);
/** itest_dump_log() - the daemon's log on stderr. */
void itest_dump_log(const struct harness *t);
/** itest_vmrss_kib() - the daemon's VmRSS. */
uint64_t itest_vmrss_kib(const struct harness *t);

/** A raw client. */
struct itest_client {
	int fd;
	uint64_t next_id;
	uint8_t buf[PROTO_MAX_MSG];	/* the last packet received */
	size_t len;
	char text[PROTO_ERROR_TEXT_MAX + 1];	/* the last ERROR's text */
	unsigned int ev_round, ev_lost;	/* events itest_wait skipped */
	uint64_t ev_generation;
};

/** itest_connect() - connect to @t's socket; -errno on failure. */
int itest_connect(const struct harness *t, struct itest_client *c);
void itest_close(struct itest_client *c);
/** itest_hello() - HELLO with @features; asserts HELLO_REPLY. */
void itest_hello(struct itest_client *c, uint64_t features,
		 uint64_t resume_token, struct proto_hello_reply *out);

/** itest_send() - encode and send @m (an id is assigned if 0). */
void itest_send(struct itest_client *c, struct proto_msg *m);
/** itest_send_raw() - send @len bytes as one packet; -errno. */
int itest_send_raw(struct itest_client *c, const void *buf, size_t len);
/**
 * itest_recv() - the next packet into c->buf, decoded into @m; waits up
 * to @timeout_ms; -ETIMEDOUT, -ECONNRESET at EOF, or the decode error.
 */
int itest_recv(struct itest_client *c, struct proto_msg *m, int timeout_ms);
/**
 * itest_wait() - the next packet answering request @id (events are
 * counted and skipped); 0, or -errno of an ERROR (text in c->text).
 */
int itest_wait(struct itest_client *c, uint64_t id, struct proto_msg *reply);
/** itest_call() - itest_send() then itest_wait(). */
int itest_call(struct itest_client *c, struct proto_msg *req,
	       struct proto_msg *reply);

/* One-request helpers; each returns 0 or -errno of the ERROR. */
int itest_create(struct itest_client *c, const char *device, uint32_t flags,
		 struct proto_create_domain_reply *out);
int itest_domain_op(struct itest_client *c, uint16_t type, uint32_t dom);
int itest_device_op(struct itest_client *c, uint16_t type, uint32_t dom,
		    const char *device, uint32_t *dev_id);
int itest_map(struct itest_client *c, uint16_t type, uint32_t dom,
	      uint64_t iova, uint64_t length);
int itest_subscribe(struct itest_client *c, uint32_t dom,
		    uint32_t interval_ms, uint32_t flags,
		    struct proto_subscribe_reply *out);
int itest_sync(struct itest_client *c, uint32_t dom, uint64_t *generation);
int itest_ack(struct itest_client *c, uint32_t dom, uint64_t generation);

/** Runs of pages, in increasing order, merged when adjacent. */
struct itest_runs {
	uint64_t *first, *count;
	size_t n, cap;
	uint64_t pages;
};
void itest_runs_add(struct itest_runs *r, uint64_t first, uint64_t count);
/** itest_runs_from_pages() - a set from pages in any order, repeats ok. */
void itest_runs_from_pages(struct itest_runs *r, uint64_t *pages, size_t n);
void itest_runs_free(struct itest_runs *r);
/** itest_runs_assert_eq() - equal sets, else fail showing both. */
void itest_runs_assert_eq(const struct itest_runs *got,
			  const struct itest_runs *want, const char *what);

/** What a RANGES stream said besides its pages. */
struct itest_ranges {
	uint64_t generation;
	uint64_t total_pages;
	unsigned int packets;
	unsigned int chunks;
	unsigned int raw_chunks;
};

/**
 * itest_get_ranges() - GET_RANGES and every packet of its stream, checked
 * (seq from 0, MORE on all but the last, total_pages the same in every
 * packet and equal to the decoded pages, chunks in increasing order), the
 * pages into @out (reset first).  0 or -errno of an ERROR.
 */
int itest_get_ranges(struct itest_client *c, uint32_t dom, uint32_t flags,
		     struct itest_runs *out, struct itest_ranges *info);

/** itest_read_ranges() - the same, for GET_RANGES @id already sent. */
int itest_read_ranges(struct itest_client *c, uint64_t id, uint32_t dom,
		      struct itest_runs *out, struct itest_ranges *info);

/** itest_list_domains() - every entry of LIST_DOMAINS; returns count. */
unsigned int itest_list_domains(struct itest_client *c,
				struct proto_domain *out, unsigned int max);
/** itest_list_devices() - every entry of LIST_DEVICES; returns count. */
unsigned int itest_list_devices(struct itest_client *c,
				struct proto_device *out, unsigned int max);

/*
 * ITEST_CHILD_CHECK() - in a forked child (another uid, say): report and
 * exit 1 on the first check that fails (Criterion's asserts belong to the
 * parent).
 */
#define ITEST_CHILD_CHECK(cond, ...)					\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "child (uid %u), line %d: ",	\
				(unsigned)getuid(), __LINE__);		\
			fprintf(stderr, __VA_ARGS__);			\
			fprintf(stderr, "\n");				\
			_exit(1);					\
		}							\
	} while (0)

/**
 * itest_run_child() - fork, run @fn(@arg) in the child (which exits 0 when
 * it returns; its checks are ITEST_CHILD_CHECK()s), wait, and assert that
 * it exited 0; @who names it in the failure.
 */
void itest_run_child(void (*fn)(long), long arg, const char *who);

/** itest_need_root() - skip the test, saying why, unless running as root
 *  (switching uids needs it; CI runs as root). */
void itest_need_root(void);

#endif
