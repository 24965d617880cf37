// SPDX-License-Identifier: MIT
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/harvest/harvest.h"
#include "daemon/util/log.h"
#include "daemon/server/session.h"
#include "daemon/state/state.h"
#include "daemon/guest/simhost.h"
#include "kernel/backend.h"
#include "tests/inproc/inproc.h"

struct config inproc_cfg;
struct server inproc_srv;
static struct event *ev_engine;
static bool durable;

static void __attribute__((format(printf, 1, 2), noreturn))
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "inproc: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

void inproc_config(void)
{
	inproc_srv = (struct server){ .cfg = &inproc_cfg, .listen_fd = -1,
				      .activated_fd = -1,
				      .next_domain_id = 1 };
	durable = false;
	list_init(&inproc_srv.sessions);
	list_init(&inproc_srv.domains);
	list_init(&inproc_srv.parks);
	list_init(&inproc_srv.hangups);
	if (config_init(&inproc_cfg))
		fail("config_init");
	inproc_set("daemon", "backend", "sim");
}

void inproc_set(const char *section, const char *key, const char *value)
{
	if (config_set(&inproc_cfg, section, key, value, "inproc"))
		fail("config %s.%s = %s", section, key, value);
}

void inproc_start(void)
{
	struct server *srv = &inproc_srv;
	struct backend_config bc;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (config_check(&inproc_cfg))
		fail("config_check");
	access_init(srv);
	simhost_backend_config(&inproc_cfg, &bc);
	if (durable) {
		/* as main.c: the store, then the backend through it */
		if (state_take_fds(srv, &srv->activated_fd) < 0)
			fail("state_take_fds");
		r = state_open(srv, &bc);
	} else {
		srv->kcfg = bc;
		r = backend_open(&bc, &srv->backend);
	}
	if (r)
		fail("backend_open: %s", strerror(-r));
	r = harvest_engine_new(srv->backend, &(struct harvest_engine_config){
		.workers = inproc_cfg.workers,
	}, &srv->engine);
	if (r)
		fail("harvest_engine_new: %s", strerror(-r));
	srv->workers = harvest_engine_workers(srv->engine);
	srv->base = event_base_new();
	if (!srv->base)
		fail("event_base_new");
	ev_engine = event_new(srv->base, harvest_engine_eventfd(srv->engine),
			      EV_READ | EV_PERSIST, domain_engine_event, srv);
	if (!ev_engine || event_add(ev_engine, NULL))
		fail("watching the harvest engine");
	if (durable && state_restore(srv) < 0)
		fail("state_restore");
}

void inproc_durable(void)
{
	durable = true;
}

void inproc_listen(void)
{
	if (server_listen(&inproc_srv) < 0)
		fail("listening on %s", inproc_cfg.socket);
}

void inproc_stop(void)
{
	struct server *srv = &inproc_srv;

	server_stop_listening(srv);
	session_free_all(srv);
	server_hang_ups_free(srv);
	domain_destroy_all(srv);
	device_caps_free(srv);
	harvest_engine_free(srv->engine);
	state_exit(srv);
	backend_close(srv->backend);
	event_free(ev_engine);
	ev_engine = NULL;
	event_base_free(srv->base);
	libevent_global_shutdown();
	config_release(&inproc_cfg);
}

void inproc_pump(bool block, unsigned int max_ms)
{
	if (block) {
		struct timeval tv = {
			.tv_sec = max_ms / 1000,
			.tv_usec = max_ms % 1000 * 1000,
		};

		event_base_loopexit(inproc_srv.base, &tv);
		event_base_loop(inproc_srv.base, EVLOOP_ONCE);
	} else {
		event_base_loop(inproc_srv.base, EVLOOP_NONBLOCK);
	}
}

void inproc_become(uid_t uid)
{
	if (uid) {
		if (syscall(SYS_setresgid, uid, uid, 0) ||
		    syscall(SYS_setresuid, uid, uid, 0))
			fail("becoming uid %u: %s (run as root)",
			     (unsigned int)uid, strerror(errno));
	} else if (syscall(SYS_setresuid, 0, 0, 0) ||
		   syscall(SYS_setresgid, 0, 0, 0)) {
		fail("back to root: %s", strerror(errno));
	}
}

int inproc_connect(uid_t uid, int sndbuf)
{
	int sv[2], r;

	/* a socketpair's credentials are its creator's */
	if (uid)
		inproc_become(uid);
	r = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv);
	if (uid)
		inproc_become(0);
	if (r)
		fail("socketpair: %s", strerror(errno));
	if (sndbuf && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				 sizeof(sndbuf)))
		fail("SO_SNDBUF: %s", strerror(errno));
	r = session_new(&inproc_srv, sv[0]);
	if (r)
		fail("session_new: %s", strerror(-r));
	return sv[1];
}
