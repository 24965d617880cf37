/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one context: configuration, backend, harvest engine, event
 * loop, the listening socket, and the lists of sessions, domains and
 * parked (resumable) subscriptions.  Everything runs on the event loop's
 * thread; only harvest batches run elsewhere (daemon/harvest/harvest.h).
 */
#ifndef DIRTYD_SERVER_H
#define DIRTYD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/util/list.h"
#include "kernel/backend.h"
#include "protocol/proto.h"

struct backend;
struct config;
struct event;
struct event_base;
struct harvest_engine;
struct device_cap;
struct state;

struct server {
	const struct config *cfg;
	/*
	 * The host's context: enumerates devices, probes unclaimed ones and
	 * the engine's uring commands; it never holds a domain's objects.
	 * Each domain opens its own from @kcfg (domain.h).
	 */
	struct backend *backend;
	struct backend_config kcfg;
	struct harvest_engine *engine;
	unsigned int workers;		/* the engine's: batch sizes */
	struct event_base *base;

	int listen_fd;
	int activated_fd;		/* passed by systemd, or -1 */
	bool listen_activated;		/* from sd_listen_fds() */
	bool listen_bound;		/* we created cfg->socket */
	struct event *ev_listen;

	struct list_head sessions;
	unsigned int nsessions;
	struct list_head domains;	/* by increasing id */
	uint32_t next_domain_id;
	struct list_head parks;		/* struct park */
	struct list_head hangups;	/* server_hang_up() */
	unsigned int nhangups;

	bool has_admin_gid;
	gid_t admin_gid;

	/* LIST_DEVICES: what each device said when probed */
	struct device_cap *caps;
	size_t ncaps;

	uint64_t rounds;		/* completed, every domain */
	uint64_t rounds_pages;		/* pages they found dirty */
	uint64_t round_errors;		/* rounds that failed */

	struct state *state;		/* surviving a restart (state.h) */
};

/**
 * server_listen() - take the socket systemd passed (srv->activated_fd: an
 * AF_UNIX SOCK_SEQPACKET listener) or bind cfg->socket; then accept on it.
 * Logs and returns -errno on failure.
 */
int server_listen(struct server *srv);
/** server_stop_listening() - close the listener; unlink what we bound. */
void server_stop_listening(struct server *srv);
/**
 * server_hang_up() - close @fd, whose last packet is sent, so that the
 * peer reads it: Linux hands a peer ECONNRESET ahead of what it was sent
 * when a socket closes with packets unread.  So our side is shut, what
 * the peer sends is discarded, and @fd is closed when the peer closes or
 * after a second (at most 64 wait at once; beyond, at once).
 */
void server_hang_up(struct server *srv, int fd);
/** server_hang_ups_free() - at exit: close those still waiting. */
void server_hang_ups_free(struct server *srv);

#endif
