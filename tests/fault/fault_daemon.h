/* SPDX-License-Identifier: MIT */
/*
 * The fault test's dirtyd: started on the simulated host with eight
 * tracking devices under the test's service manager (tests/harness plays
 * systemd: socket activation, the notify socket, the file descriptor
 * store), killed with SIGKILL and restarted on the same listening socket.
 *
 * With the store (the default) a restarted dirtyd adopts what the killed
 * one stored: domains, subscriptions and sessions survive, and a client
 * that comes back must be RESUMED, unless the new process logged that it
 * could not adopt.  FAULT_RESTART=plain runs without a store: a restart
 * knows nothing, and every client that comes back must get STATE_LOST.
 */
#ifndef DIRTYD_TESTS_FAULT_DAEMON_H
#define DIRTYD_TESTS_FAULT_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

struct fault_daemon {
	struct harness m;	/* m.sock: where clients connect */
	bool store;
	bool adopt_failed;	/* the last restart logged that it could not
				 * adopt the stored state */
	unsigned int restarts;
	unsigned int afresh;	/* "starting afresh" lines in the log */
};

/** fault_daemon_start() - write the configuration, start dirtyd, wait for
 *  READY=1. */
void fault_daemon_start(struct fault_daemon *fd, const char *log_level);
/** fault_daemon_kill() - SIGKILL and reap. */
void fault_daemon_kill(struct fault_daemon *fd);
/** fault_daemon_restart() - start again after a kill; true if the new
 *  process was given the old one's state (the fd store). */
bool fault_daemon_restart(struct fault_daemon *fd);
/** fault_daemon_adopt_failed() - the last restart said it could not adopt
 *  what was stored (so its clients are rightly told STATE_LOST). */
bool fault_daemon_adopt_failed(const struct fault_daemon *fd);
/** fault_daemon_exited() - the daemon died on its own; its wait status. */
bool fault_daemon_exited(struct fault_daemon *fd, int *status);
/** fault_daemon_stop() - SIGTERM, reap; the wait status (0: clean). */
int fault_daemon_stop(struct fault_daemon *fd);
/** fault_daemon_cleanup() - kill if running, remove the directory. */
void fault_daemon_cleanup(struct fault_daemon *fd);
/** fault_daemon_dump_log() - the last @lines lines of the log. */
void fault_daemon_dump_log(const struct fault_daemon *fd, int lines);
/** fault_daemon_describe() - how restarts are done, for the report. */
const char *fault_daemon_describe(const struct fault_daemon *fd);

#endif
