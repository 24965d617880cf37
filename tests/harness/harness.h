/* SPDX-License-Identifier: MIT */
/*
 * The one way the tests start dirtyd: a small service manager that plays
 * systemd for one dirtyd, as far as the documented protocols go
 * (sd_notify(3), sd_listen_fds(3), sd_pid_notify_with_fds(3),
 * systemd.service(5) FileDescriptorStoreMax= and WatchdogSec=).
 *
 * Owns: starting, waiting for, stopping and restarting the dirtyd of a
 * test (the integration, client and systemd tests, the fault test, the
 * soak, the VM guest programs, and through tests/harness/dirtyd-harness
 * the Python suites and the client scripts).  Plain C, no test framework: every call returns 0 or -errno,
 * so a Criterion test asserts on it (tests/integration/itest.h) and a
 * guest program checks it.
 *
 *   - the configuration: [daemon] backend, socket and log_level, then the
 *     caller's body (more [daemon] keys first, then sections); or a file
 *     of the caller's, used as is;
 *   - the socket: dirtyd binds its own (the default), or with @activate a
 *     socket unit: the listening AF_UNIX SOCK_SEQPACKET socket, created
 *     once, passed at every start as fd 3 named "dirtyd.socket"; clients
 *     connect to it even while dirtyd is down (they queue);
 *   - $NOTIFY_SOCKET: a datagram socket read by a thread, messages from
 *     the main process only (NotifyAccess=main): READY=1 (what a start
 *     waits for), WATCHDOG=1 (counted), STATUS=, STOPPING=1; with
 *     the store on, FDSTORE=1 + FDNAME= with SCM_RIGHTS (a descriptor of a
 *     file already stored is dropped, as systemd does) and
 *     FDSTOREREMOVE=1 + FDNAME=; with the store off such descriptors are
 *     closed, as systemd does without FileDescriptorStoreMax=;
 *   - or with @no_notify no $NOTIFY_SOCKET, as when dirtyd is started by
 *     hand (it then keeps no store: daemon/state/state.h), and a start
 *     waits until its socket accepts a connection;
 *   - at every start with @activate the stored descriptors follow the
 *     socket, in the order stored, with $LISTEN_FDS, $LISTEN_PID and
 *     $LISTEN_FDNAMES; messages a process sent before it died are read
 *     before its death is handled (systemd gives notifications priority
 *     over SIGCHLD);
 *   - dirtyd's stdin is /dev/null, its stdout and stderr go to one log,
 *     every start appended; dirtyd never outlives the process that
 *     started it (PR_SET_PDEATHSIG).
 *
 * Usage:
 *	struct harness h;
 *	struct harness_opts o = { .body = "[sim]\ndevices = sim0:dirty\n",
 *				  .activate = true, .store = true };
 *	harness_init(&h, &o);
 *	harness_start(&h);		// 0 at READY=1
 *	... clients connect to h.sock ...
 *	harness_kill(&h, SIGKILL);	// reaped, its notifications handled
 *	harness_start(&h);		// with the stored descriptors
 *	harness_fini(&h);		// SIGTERM, the store flushed, all gone
 */
#ifndef DIRTYD_TESTS_HARNESS_H
#define DIRTYD_TESTS_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define HARNESS_MAX_STORED 64
#define HARNESS_NAME_MAX 256
#define HARNESS_PATH_MAX 256
#define HARNESS_START_MS 30000	/* READY=1 within */
#define HARNESS_STOP_MS 20000	/* exit after SIGTERM within */
#define HARNESS_MAX_ARGS 31

struct harness_opts {
	const char *bin;	/* NULL: $DIRTYD_BIN */
	const char *backend;	/* NULL: sim */
	const char *log_level;	/* NULL: debug */
	const char *body;	/* the configuration after those keys */
	const char *conf;	/* a configuration file used as is (@sock
				 * must then name its socket) */
	const char *sock;	/* NULL: dirtyd.sock in the directory */
	const char *log;	/* NULL: dirtyd.log in the directory */
	bool activate;		/* socket activation: the harness listens */
	bool store;		/* FileDescriptorStoreMax= > 0 */
	bool no_notify;		/* no $NOTIFY_SOCKET (not with @activate):
				 * dirtyd as started by hand */
	uint64_t watchdog_usec;	/* WatchdogSec=; 0: none */
	/* more arguments after --config FILE (NULL-terminated), and a
	 * command that runs dirtyd (systemd-socket-activate ...: it must
	 * exec dirtyd in its own process); HARNESS_MAX_ARGS words at most */
	const char *const *args;
	const char *const *wrap;
	/* each notification from the main process, as received, before the
	 * harness handles it (called on the reader thread, lock held) */
	void (*on_notify)(void *arg, const char *text);
	void *notify_arg;
	unsigned int start_ms;	/* READY=1 within; 0: HARNESS_START_MS */
	unsigned int stop_ms;	/* exit after SIGTERM within; 0:
				 * HARNESS_STOP_MS */
};

struct harness_fd {
	char name[HARNESS_NAME_MAX];
	int fd;
};

struct harness {
	char dir[64];		/* a temporary directory of ours */
	char bin[HARNESS_PATH_MAX];
	char sock[HARNESS_PATH_MAX];	/* where clients connect */
	char conf[HARNESS_PATH_MAX];
	char log[HARNESS_PATH_MAX];	/* dirtyd's stdout and stderr */
	char notify[HARNESS_PATH_MAX];
	char backend[32], log_level[32];
	bool inited;		/* harness_init() ran, harness_fini() not */
	bool own_conf;		/* conf is ours: removed at the end */
	bool own_log;
	bool activate, store, no_notify;
	uint64_t watchdog_usec;
	unsigned int start_ms, stop_ms;
	char *argv[HARNESS_MAX_ARGS + 1];	/* the command */
	char argbuf[4096];
	void (*on_notify)(void *arg, const char *text);
	void *notify_arg;
	pid_t main_pid;		/* of the last start, also once it died */
	int notify_fd;
	int listen_fd;		/* -1 unless @activate */
	pid_t pid;		/* 0: not running */
	int wstatus;		/* the wait status of the last exit */
	unsigned int starts;
	long log_start;		/* where the current start's log begins */
	size_t passed;		/* descriptors passed at the last start */

	pthread_t thread;
	bool thread_ok, quit;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* since the last start: */
	bool ready, stopping;
	unsigned int messages;	/* from the main process */
	unsigned int foreign;	/* from others: ignored (NotifyAccess=main) */
	unsigned int watchdogs;
	char status[256];	/* the last STATUS= */
	struct harness_fd stored[HARNESS_MAX_STORED];
	size_t nstored;
};

/**
 * harness_init() - a temporary directory with the configuration (unless
 * @o->conf), the notify socket and its reader, and with @o->activate the
 * listening socket.  0 or -errno (then nothing is left behind).
 */
int harness_init(struct harness *h, const struct harness_opts *o);
/** harness_configure() - rewrite the configuration as harness_init()
 *  wrote it, with @body; the next start reads it. */
int harness_configure(struct harness *h, const char *body);
/**
 * harness_start() - start dirtyd (with @activate: the socket and the
 * stored descriptors); wait (@start_ms at most) for READY=1.  0 at
 * READY=1 (@no_notify: once the socket accepts a connection); -ECHILD if
 * dirtyd exited first (its wait status in h->wstatus); -ETIMEDOUT (still
 * running); -EBUSY if running; -errno.
 */
int harness_start(struct harness *h);
/** harness_spawn() - the first half of harness_start(): started, not
 *  waited for (a socket-activated dirtyd starts at a connection). */
int harness_spawn(struct harness *h);
/** harness_wait_ready() - the second half, for @ms at most. */
int harness_wait_ready(struct harness *h, unsigned int ms);
/** harness_kill() - send @sig, reap, handle what it sent before dying;
 *  the wait status (-ESRCH if not running). */
int harness_kill(struct harness *h, int sig);
/** harness_stop() - SIGTERM, reap (SIGKILL after @stop_ms: then
 *  -ETIMEDOUT); the wait status (0: a clean exit), 0 if not running. */
int harness_stop(struct harness *h);
/** harness_exited() - dirtyd has exited on its own: reaped, true, and its
 *  wait status in *@status. */
bool harness_exited(struct harness *h, int *status);
/** harness_fini() - harness_stop() if running, flush the store, remove
 *  what harness_init() made; harness_stop()'s answer.  A harness all
 *  zeroes (never initialised) is left alone: 0. */
int harness_fini(struct harness *h);

/* The file descriptor store. */
/** harness_flush() - close every stored descriptor (the unit went
 *  inactive). */
void harness_flush(struct harness *h);
/** harness_has() - descriptors stored under @name. */
size_t harness_has(struct harness *h, const char *name);
/** harness_wait_has() - harness_has(), once the reader has caught up with
 *  what dirtyd sent (up to @ms for one to appear). */
size_t harness_wait_has(struct harness *h, const char *name, int ms);
/** harness_stored_fd() - the (first) descriptor stored under @name, still
 *  the store's, or -1: to look at or damage what dirtyd keeps. */
int harness_stored_fd(struct harness *h, const char *name);
/** harness_replace() - store @fd (taken over) under @name instead of what
 *  is stored under it (closed); @fd -1: remove @name.  -ENOSPC. */
int harness_replace(struct harness *h, const char *name, int fd);
/** harness_nstored() - descriptors in the store. */
size_t harness_nstored(struct harness *h);
/** harness_names() - the stored names, "a, b, c". */
void harness_names(struct harness *h, char *buf, size_t len);
/** harness_counts() - notifications since the last start: from the main
 *  process, from others (ignored), and WATCHDOG=1 among the first. */
struct harness_counts {
	unsigned int messages, foreign, watchdogs;
};
struct harness_counts harness_counts(struct harness *h);

/* dirtyd's log; @this_start: only what the current (or last) start
 * wrote. */
/** harness_log_count() - lines holding @text. */
unsigned int harness_log_count(const struct harness *h, const char *text,
			       bool this_start);
/** harness_log_has() - harness_log_count() > 0. */
bool harness_log_has(const struct harness *h, const char *text,
		     bool this_start);
/** harness_log_line() - the first line holding @text into @out, without
 *  its newline; false if none. */
bool harness_log_line(const struct harness *h, const char *text,
		      bool this_start, char *out, size_t len);
/**
 * harness_dump_log() - the log's last @lines lines (0: all) on @out:
 * between "---- dirtyd log ----" rulers, or with @prefix, each line after
 * it (a guest's "dirtyd: ").
 */
void harness_dump_log(const struct harness *h, FILE *out, unsigned int lines,
		      const char *prefix);

#endif
