/* SPDX-License-Identifier: MIT */
/*
 * A service manager for tests: plays systemd for one dirtyd, as far as
 * the documented protocols go (sd_notify(3), sd_listen_fds(3),
 * sd_pid_notify_with_fds(3), systemd.service(5) FileDescriptorStoreMax=):
 *
 *   - a socket unit: the listening AF_UNIX SOCK_SEQPACKET socket, created
 *     once, passed at every start as fd 3 named "dirtyd.socket"; clients
 *     connect to svcmgr.sock even while dirtyd is down (they queue);
 *   - $NOTIFY_SOCKET: a datagram socket read by a thread: READY=1, and
 *     with the store on, FDSTORE=1 + FDNAME= with SCM_RIGHTS (a descriptor
 *     of a file already stored is dropped, as systemd does) and
 *     FDSTOREREMOVE=1 + FDNAME=; with the store off such descriptors are
 *     closed, as systemd does without FileDescriptorStoreMax=;
 *   - at every start the stored descriptors follow the socket, in the
 *     order stored, with $LISTEN_FDS, $LISTEN_PID and $LISTEN_FDNAMES.
 *     Messages a process sent before it died are read before the death is
 *     handled (systemd gives notifications priority over SIGCHLD).
 *
 * Usage:
 *	struct svcmgr m;
 *	svcmgr_init(&m, "[sim]\ndevices = sim0:dirty\n", true);
 *	svcmgr_start(&m);		// waits for READY=1
 *	... clients connect to m.sock ...
 *	svcmgr_kill(&m, SIGKILL);	// reaped, its notifications handled
 *	svcmgr_start(&m);		// or svcmgr_restart(&m): kill + start
 *	svcmgr_stop(&m);		// SIGTERM; the store is flushed
 *
 * Failures are Criterion assertions; dirtyd's log (every start appends)
 * is printed with them.
 */
#ifndef DIRTYD_TESTS_SVCMGR_H
#define DIRTYD_TESTS_SVCMGR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SVCMGR_MAX_STORED 64
#define SVCMGR_NAME_MAX 256

struct svcmgr_fd {
	char name[SVCMGR_NAME_MAX];
	int fd;
};

struct svcmgr {
	char dir[64];
	char sock[128];		/* where clients connect */
	char conf[128];
	char log[128];		/* dirtyd's stdout and stderr, all starts */
	char notify[128];
	int notify_fd;
	int listen_fd;
	bool store;		/* FileDescriptorStoreMax= > 0 */
	pid_t pid;		/* 0: not running */
	unsigned int starts;

	pthread_t thread;
	bool thread_ok, quit;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;		/* READY=1 since the last start */
	struct svcmgr_fd stored[SVCMGR_MAX_STORED];
	size_t nstored;
};

/**
 * svcmgr_init() - a temporary directory with dirtyd.conf ([daemon]
 * backend = sim, socket, log_level = debug, then @body), the socket and
 * the notify socket; @store: keep descriptors sent with FDSTORE=1.
 */
void svcmgr_init(struct svcmgr *m, const char *body, bool store);
/** svcmgr_start() - start dirtyd ($DIRTYD_BIN) with the socket and the
 *  stored descriptors; wait (30 s at most) for READY=1. */
void svcmgr_start(struct svcmgr *m);
/** svcmgr_try_start() - the same, but a dirtyd that exits before READY=1
 *  is no failure: 0 at READY=1, else its wait status (non-zero). */
int svcmgr_try_start(struct svcmgr *m);
/** svcmgr_configure() - rewrite dirtyd.conf as svcmgr_init() wrote it,
 *  with @body; the next start reads it. */
void svcmgr_configure(struct svcmgr *m, const char *body);
/** svcmgr_kill() - send @sig, reap, handle what it sent before dying;
 *  returns the wait status. */
int svcmgr_kill(struct svcmgr *m, int sig);
/** svcmgr_restart() - svcmgr_kill(SIGKILL) if running, then start. */
void svcmgr_restart(struct svcmgr *m);
/** svcmgr_stop() - SIGTERM (SIGKILL after 20 s), flush the store, remove
 *  everything; returns the wait status (0: a clean exit). */
int svcmgr_stop(struct svcmgr *m);
/** svcmgr_has() - descriptors stored under @name. */
size_t svcmgr_has(struct svcmgr *m, const char *name);
/** svcmgr_stored_fd() - the (first) descriptor stored under @name, still
 *  the store's, or -1: to look at or damage what dirtyd keeps. */
int svcmgr_stored_fd(struct svcmgr *m, const char *name);
/** svcmgr_replace() - store @fd (taken over) under @name instead of what
 *  is stored under it (closed); @fd -1: remove @name from the store. */
void svcmgr_replace(struct svcmgr *m, const char *name, int fd);
/** svcmgr_nstored() - descriptors in the store. */
size_t svcmgr_nstored(struct svcmgr *m);
/** svcmgr_dump_log() - dirtyd's log on stderr. */
void svcmgr_dump_log(const struct svcmgr *m);
/** svcmgr_log_has() - whether dirtyd's log holds @text. */
bool svcmgr_log_has(const struct svcmgr *m, const char *text);
/** svcmgr_log_count() - lines of dirtyd's log holding @text. */
unsigned int svcmgr_log_count(const struct svcmgr *m, const char *text);

#endif
