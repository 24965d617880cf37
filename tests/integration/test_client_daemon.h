/* SPDX-License-Identifier: MIT */
/*
 * The real dirtyd for a Criterion test: started on the simulated host by
 * tests/harness with a config and socket in a temporary directory, without
 * $NOTIFY_SOCKET, stopped with SIGTERM, and required to exit 0 (under ASan
 * that also means: nothing leaked).  The binary is $DIRTYD_BIN (CTest sets
 * it to $<TARGET_FILE:dirtyd>).
 */
#ifndef DIRTYD_TESTS_CLIENT_DAEMON_H
#define DIRTYD_TESTS_CLIENT_DAEMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "harness.h"

/* Devices of every test host: three that track, one that cannot. */
#define TD_DEVICES "sim0:dirty,sim1:dirty,sim2:dirty,legacy0:nodirty"

static void td_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void td_dump_log(const struct harness *t)
{
	harness_dump_log(t, stderr, 0, NULL);
}

/* Start dirtyd with the base config plus @extra (more sections, or NULL),
 * wait until its socket accepts a connection, and check that it answers. */
static void td_start(struct harness *t, const char *extra)
{
	char body[1024];
	/* no $NOTIFY_SOCKET: dirtyd as a VMM's host starts it by hand */
	struct harness_opts o = { .body = body, .no_notify = true };
	struct dirty *d;
	int r;

	cr_assert_not_null(getenv("DIRTYD_BIN"), "DIRTYD_BIN is not set");
	cr_assert_lt((size_t)snprintf(body, sizeof(body),
				      "resume_grace = 2\nworkers = 2\n\n"
				      "[sim]\nbacking_page_size = 4k\n"
				      "devices = " TD_DEVICES "\n\n%s",
				      extra ? extra : ""), sizeof(body));
	r = harness_init(t, &o);
	cr_assert_eq(r, 0, "harness_init: %s", strerror(-r));
	r = harness_start(t);
	if (r) {
		td_dump_log(t);
		cr_assert_fail("dirtyd did not start: %s (status %#x)",
			       strerror(-r), t->wstatus);
	}
	r = dirty_connect(t->sock, DIRTY_CONNECT_NO_RESUME, &d);
	if (r) {
		td_dump_log(t);
		cr_assert_fail("dirtyd is ready but does not answer: %s",
			       strerror(-r));
	}
	dirty_close(d);
}

/* SIGTERM; dirtyd must exit 0 within 20 s. */
static void td_stop(struct harness *t)
{
	int status = harness_stop(t);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		td_dump_log(t);
	harness_fini(t);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "dirtyd did not exit cleanly (status %#x)", status);
}

static struct dirty *td_connect(struct harness *t, uint64_t flags)
{
	struct dirty *d = NULL;
	int r = dirty_connect(t->sock, flags, &d);

	cr_assert_eq(r, 0, "dirty_connect: %s", strerror(-r));
	return d;
}

/* Assert a call returned 0, showing dirtyd's reason if it did not. */
#define td_ok(d, call)							\
	do {								\
		int td_r_ = (call);					\
		const char *td_t_ = dirty_last_error_text(d);		\
									\
		cr_assert_eq(td_r_, 0, "%s: %s (%s)", #call,		\
			     strerror(-td_r_), td_t_ ? td_t_ : "-");	\
	} while (0)

#endif
