// SPDX-License-Identifier: MIT
/* The fault test's dirtyd: see fault_daemon.h. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fault/fault_daemon.h"
#include "tests/integration/itest.h"

/* the harness writes [daemon] backend, socket and log_level = debug
 * first; a key given twice takes its last value */
static const char config[] =
	"log_level = %s\n"
	"resume_grace = 30\n"
	"workers = 2\n"
	"[sim]\n"
	"backing_page_size = 2m\n"
	"devices = sim0:dirty, sim1:dirty, sim2:dirty, sim3:dirty, "
	"sim4:dirty, sim5:dirty, sim6:dirty, sim7:dirty\n";

/* What dirtyd logs when it cannot use what the store handed back. */
#define AFRESH "starting afresh"

void fault_daemon_start(struct fault_daemon *fd, const char *log_level)
{
	const char *how = getenv("FAULT_RESTART");
	char body[512];

	memset(fd, 0, sizeof(*fd));
	fd->store = !how || strcmp(how, "plain");
	cr_assert(!how || !strcmp(how, "plain") || !strcmp(how, "store"),
		  "FAULT_RESTART is store (the default) or plain");
	snprintf(body, sizeof(body), config, log_level);
	itest_manage(&fd->m, body, fd->store);
	itest_up(&fd->m);
}

void fault_daemon_kill(struct fault_daemon *fd)
{
	int status = harness_kill(&fd->m, SIGKILL);

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "dirtyd had exited before the SIGKILL (status %#x)", status);
}

bool fault_daemon_restart(struct fault_daemon *fd)
{
	unsigned int afresh;

	fd->restarts++;
	itest_up(&fd->m);
	afresh = harness_log_count(&fd->m, AFRESH, false);
	fd->adopt_failed = afresh > fd->afresh;
	fd->afresh = afresh;
	return fd->store;
}

bool fault_daemon_adopt_failed(const struct fault_daemon *fd)
{
	return fd->adopt_failed;
}

bool fault_daemon_exited(struct fault_daemon *fd, int *status)
{
	return harness_exited(&fd->m, status);
}

int fault_daemon_stop(struct fault_daemon *fd)
{
	const char *keep = getenv("FAULT_KEEP_LOG");
	char saved[160];
	int status;

	if (!fd->m.dir[0])
		return 0;
	if (keep && *keep && strcmp(keep, "0")) {
		snprintf(saved, sizeof(saved), "%s.dirtyd.log", fd->m.dir);
		if (link(fd->m.log, saved) == 0)
			fprintf(stderr, "fault: the daemon's log is kept as "
				"%s\n", saved);
	}
	status = itest_stop(&fd->m);
	return status;
}

void fault_daemon_cleanup(struct fault_daemon *fd)
{
	if (fd->m.dir[0]) {
		if (fd->m.pid > 0)
			harness_kill(&fd->m, SIGKILL);
		fault_daemon_stop(fd);
	}
}

void fault_daemon_dump_log(const struct fault_daemon *fd, int lines)
{
	if (fd->m.dir[0])
		harness_dump_log(&fd->m, stderr, (unsigned int)lines, NULL);
}

const char *fault_daemon_describe(const struct fault_daemon *fd)
{
	return fd->store ? "through the file descriptor store (the test plays "
			   "systemd): resumed clients must get RESUMED" :
			   "plain (FAULT_RESTART=plain, no store): clients "
			   "must get STATE_LOST";
}
