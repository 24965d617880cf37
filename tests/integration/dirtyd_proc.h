/* SPDX-License-Identifier: MIT */
/*
 * Stopping a dirtyd the tests started, as both harnesses (itest.c and
 * test_client_daemon.h) do it.
 */
#ifndef DIRTYD_TESTS_DIRTYD_PROC_H
#define DIRTYD_TESTS_DIRTYD_PROC_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

/*
 * SIGTERM @pid and reap it, polling every 10 ms; SIGKILL it if it has not
 * exited within 20 s.  Returns true if it exited on its own; *status is
 * what waitpid() said either way.
 */
static inline bool dirtyd_proc_stop(pid_t pid, int *status)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 2000; i++) {
		struct timespec ts = { .tv_nsec = 10 * 1000000 };

		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return false;
}

#endif
