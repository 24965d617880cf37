// SPDX-License-Identifier: MIT
/* The listening socket: socket activation or our own, accept, limits. */
#define _GNU_SOURCE		/* accept4 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/session.h"

/* Out of descriptors: stop accepting this long. */
#define ACCEPT_BACKOFF_MS 100

int server_why(struct server *srv, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(srv->why, sizeof(srv->why), fmt, ap);
	va_end(ap);
	return err;
}

/* Tell a client over the limit why, and hang up. */
static void server_refuse(struct server *srv, int fd, int err,
			  const char *text)
{
	uint8_t buf[PROTO_HEADER_SIZE + 8 + PROTO_ERROR_TEXT_MAX];
	struct proto_msg m = {
		.type = PROTO_ERROR,
		.error = { .err = (uint32_t)err, .text = text,
			   .text_len = strlen(text) },
	};
	int n = proto_encode(&m, buf, sizeof(buf));

	if (n > 0 && send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("telling a refused client failed: %s",
			  strerror(errno));
	close(fd);
}

static void server_on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	event_add(srv->ev_listen, NULL);
}

static void server_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *srv = arg;
	char text[128];
	int fd, r;

	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			struct timeval tv = {
				.tv_usec = ACCEPT_BACKOFF_MS * 1000,
			};

			log_warning_errno(-errno, "accepting a client failed; "
					  "pausing %d ms", ACCEPT_BACKOFF_MS);
			event_del(srv->ev_listen);
			event_base_once(srv->base, -1, EV_TIMEOUT,
					server_on_backoff, srv, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
			   errno != ECONNABORTED) {
			log_warning_errno(-errno, "accepting a client failed");
		}
		return;
	}
	if (srv->nsessions >= srv->cfg->max_clients) {
		snprintf(text, sizeof(text), "too many clients (max %u)",
			 srv->cfg->max_clients);
		log_notice("refusing a client: %s", text);
		server_refuse(srv, fd, EUSERS, text);
		return;
	}
	r = session_new(srv, fd);
	if (r < 0) {
		log_warning_errno(r, "setting up a client failed");
		close(fd);
	}
}

/* The socket systemd passed (state_take_fds() sorted it out from the
 * stored descriptors): one AF_UNIX SOCK_SEQPACKET listener. */
static int server_take_activated(struct server *srv, int fd)
{
	int r;

	r = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0);
	if (r < 0)
		return log_error_errno(r, "checking the passed socket failed");
	if (!r)
		return log_error_errno(-EINVAL, "the socket systemd passed is "
				       "not a listening AF_UNIX "
				       "SOCK_SEQPACKET socket; use "
				       "ListenSequentialPacket=");
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return log_error_errno(-errno, "setting up the passed socket "
				       "failed");
	srv->listen_fd = fd;
	srv->listen_activated = true;
	log_info("listening on the socket systemd passed");
	return 0;
}

/* mkdir -p, 0755 for what we create. */
static int mkdir_parents(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file at @sa: remove it if nothing listens on it. */
static int server_clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return log_error_errno(-EEXIST, "%s exists and is not a "
				       "socket; not touching it", sa->sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return log_error_errno(-EADDRINUSE, "another daemon listens "
				       "on %s", sa->sun_path);
	if (errno != ECONNREFUSED && errno != ENOENT)
		return log_error_errno(-errno, "probing %s failed",
				       sa->sun_path);
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return log_error_errno(-errno, "removing the stale socket %s "
				       "failed", sa->sun_path);
	log_info("removed the stale socket %s", sa->sun_path);
	return 0;
}

static int server_bind(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "socket path %s is too "
				       "long", cfg->socket);
	strcpy(sa.sun_path, cfg->socket);
	r = mkdir_parents(cfg->socket);
	if (r < 0)
		return log_error_errno(r, "creating the directory of %s failed",
				       cfg->socket);
	r = server_clear_stale(&sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return log_error_errno(-errno, "socket() failed");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = log_error_errno(-errno, "binding %s failed", cfg->socket);
		goto fail;
	}
	srv->listen_bound = true;
	srv->listen_fd = fd;
	if (chmod(cfg->socket, cfg->socket_mode) < 0) {
		r = log_error_errno(-errno, "chmod %o %s failed",
				    cfg->socket_mode, cfg->socket);
		goto fail;
	}
	if (cfg->socket_group) {
		struct group gr, *res = NULL;
		char buf[16384];
		char *end;
		unsigned long gid = strtoul(cfg->socket_group, &end, 10);

		if (*end) {
			r = getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf),
				       &res);
			if (r || !res) {
				r = log_error_errno(r ? -r : -ENOENT,
						    "socket_group %s: no such "
						    "group", cfg->socket_group);
				goto fail;
			}
			gid = res->gr_gid;
		}
		if (chown(cfg->socket, (uid_t)-1, (gid_t)gid) < 0) {
			r = log_error_errno(-errno, "chgrp %s %s failed",
					    cfg->socket_group, cfg->socket);
			goto fail;
		}
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = log_error_errno(-errno, "listen() on %s failed",
				    cfg->socket);
		goto fail;
	}
	log_info("listening on %s", cfg->socket);
	return 0;
fail:
	srv->listen_fd = -1;
	close(fd);
	if (srv->listen_bound)
		unlink(cfg->socket);
	srv->listen_bound = false;
	return r;
}

int server_listen(struct server *srv)
{
	int one = 1, r;

	r = srv->activated_fd >= 0 ?
	    server_take_activated(srv, srv->activated_fd) : server_bind(srv);
	if (r < 0)
		return r;
	/*
	 * SO_PASSCRED on the listener: accepted sockets inherit it, so even
	 * a packet a client sends before dirtyd has accepted its connection
	 * carries the sender's credentials (set on the accepted socket only,
	 * a packet sent between accept() and that setsockopt() would carry
	 * none, and be refused as another process's).
	 */
	if (setsockopt(srv->listen_fd, SOL_SOCKET, SO_PASSCRED, &one,
		       sizeof(one)) < 0) {
		r = log_error_errno(-errno, "setting SO_PASSCRED on the socket "
				    "failed");
		server_stop_listening(srv);
		return r;
	}
	srv->ev_listen = event_new(srv->base, srv->listen_fd,
				   EV_READ | EV_PERSIST, server_on_accept, srv);
	if (!srv->ev_listen || event_add(srv->ev_listen, NULL) < 0) {
		server_stop_listening(srv);
		return log_error_errno(-ENOMEM, "watching the socket failed");
	}
	return 0;
}

void server_stop_listening(struct server *srv)
{
	if (srv->ev_listen) {
		event_free(srv->ev_listen);
		srv->ev_listen = NULL;
	}
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		srv->listen_fd = -1;
	}
	if (srv->listen_bound) {
		unlink(srv->cfg->socket);
		srv->listen_bound = false;
	}
}
