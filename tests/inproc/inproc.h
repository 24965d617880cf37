/* SPDX-License-Identifier: MIT */
/*
 * The daemon in process, for tests that must reach inside it: every
 * daemon/ source but main.c, on the simulated backend, its event loop run
 * by the test (inproc_pump()), clients connected by a socketpair whose
 * daemon end becomes a session exactly as an accepted connection does.
 * Used by tests/fuzz's session target, tests/integration's
 * test_stream_faults and bench/e2e_bench (durable sets, clients by
 * path).  Setup failures abort with a message.
 */
#ifndef DIRTYD_TESTS_INPROC_H
#define DIRTYD_TESTS_INPROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "daemon/config/config.h"
#include "daemon/server/server.h"

extern struct config inproc_cfg;
extern struct server inproc_srv;

/** inproc_config() - a fresh configuration (the defaults, backend sim). */
void inproc_config(void);
/** inproc_set() - one configuration key, as a config file would set it. */
void inproc_set(const char *section, const char *key, const char *value);
/** inproc_durable() - before inproc_start(): keep state as dirtyd under
 *  systemd does (state_take_fds(), state_open(), state_restore()), so that
 *  subscriber sets are durable, their bitmaps in the bitmap memfd.  Needs
 *  $NOTIFY_SOCKET set (a path where nothing listens will do: handing the
 *  memfds to the store then fails, logged once).  inproc_config() turns
 *  it off again. */
void inproc_durable(void);
/** inproc_listen() - after inproc_start(): listen on daemon.socket, as
 *  dirtyd does (server_listen()), for clients that connect by path
 *  (libdirty); inproc_stop() stops listening. */
void inproc_listen(void);
/** inproc_start() - check the configuration and bring the server up. */
void inproc_start(void);
/** inproc_stop() - everything freed: sessions, domains, the backend. */
void inproc_stop(void);
/** inproc_pump() - run the loop: what is ready now, or (@block) wait up to
 *  @max_ms for something to happen (a harvest completion, a timer). */
void inproc_pump(bool block, unsigned int max_ms);
/** inproc_become() - be @uid (and gid @uid) on this thread only, by the raw
 *  system calls (glibc's would change every thread); the saved ids stay
 *  0, so inproc_become(0) comes back.  Needs root. */
void inproc_become(uid_t uid);
/** inproc_connect() - a new session of @uid; returns the client's end
 *  (non-blocking).  @sndbuf: the daemon end's SO_SNDBUF, 0 for the
 *  default. */
int inproc_connect(uid_t uid, int sndbuf);

#endif
