/* SPDX-License-Identifier: MIT */
/*
 * The real dirtyd for a Criterion test: started on the simulated host with
 * a config and socket in a temporary directory, stopped with SIGTERM, and
 * required to exit 0 (under ASan that also means: nothing leaked).  The
 * binary is $DIRTYD_BIN (CTest sets it to $<TARGET_FILE:dirtyd>).
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

#include "dirtyd_proc.h"

/* Devices of every test host: three that track, one that cannot. */
#define TD_DEVICES "sim0:dirty,sim1:dirty,sim2:dirty,legacy0:nodirty"

struct tdaemon {
	char dir[64];
	char sock[128];
	char conf[128];
	char log[128];
	pid_t pid;
};

static void td_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void td_dump_log(const struct tdaemon *t)
{
	char line[512];
	FILE *f = fopen(t->log, "r");

	if (!f)
		return;
	fprintf(stderr, "---- dirtyd log ----\n");
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "--------------------\n");
	fclose(f);
}

/* Start dirtyd with the base config plus @extra (more sections, or NULL)
 * and wait until it answers on its socket. */
static void td_start(struct tdaemon *t, const char *extra)
{
	const char *bin = getenv("DIRTYD_BIN");
	FILE *f;

	cr_assert_not_null(bin, "DIRTYD_BIN is not set");
	strcpy(t->dir, "/tmp/dirtyd-client-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	snprintf(t->sock, sizeof(t->sock), "%s/dirtyd.sock", t->dir);
	snprintf(t->conf, sizeof(t->conf), "%s/dirtyd.conf", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/dirtyd.log", t->dir);
	f = fopen(t->conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[daemon]\nbackend = sim\nsocket = %s\nlog_level = debug\n"
		"resume_grace = 2\nworkers = 2\n\n"
		"[sim]\nbacking_page_size = 4k\ndevices = " TD_DEVICES "\n\n"
		"%s", t->sock, extra ? extra : "");
	fclose(f);

	fflush(NULL);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		int fd = open(t->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/* never outlive the test, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		execl(bin, bin, "--config", t->conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		struct dirty *d;
		int status;

		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			td_dump_log(t);
			cr_assert_fail("dirtyd exited at start (status %#x)",
				       status);
		}
		if (dirty_connect(t->sock, DIRTY_CONNECT_NO_RESUME, &d) == 0) {
			dirty_close(d);
			return;
		}
		td_sleep_ms(10);
	}
	td_dump_log(t);
	cr_assert_fail("dirtyd did not listen within 10 s");
}

/* SIGTERM; dirtyd must exit 0 within 20 s. */
static void td_stop(struct tdaemon *t)
{
	int status = 0;

	if (t->pid <= 0)
		return;
	dirtyd_proc_stop(t->pid, &status);
	t->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		td_dump_log(t);
	unlink(t->conf);
	unlink(t->log);
	unlink(t->sock);
	rmdir(t->dir);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "dirtyd did not exit cleanly (status %#x)", status);
}

static struct dirty *td_connect(struct tdaemon *t, uint64_t flags)
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
