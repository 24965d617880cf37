// SPDX-License-Identifier: MIT
/* The listening socket: socket activation or our own, accept, limits. */
#define _GNU_SOURCE		/* accept4 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config/config.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"

/* Out of descriptors: stop accepting this long. */
#define ACCEPT_BACKOFF_MS 100
/* A peer hung up on gets this long to read our last packet, and at most
 * this many wait at once (server_hang_up()). */
#define HANGUP_LINGER_MS 1000
#define HANGUP_MAX 64

struct hangup {
	struct server *srv;
	struct list_head link;
	struct event *ev;
	int fd;
	struct timespec deadline;
};

/* Discard what the peer sent; true once it closed (or the socket broke). */
static bool hangup_drain(int fd)
{
	char buf[512];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		return n == 0 || (errno != EAGAIN && errno != EINTR);
	}
}

static void hangup_free(struct hangup *h)
{
	list_del_init(&h->link);
	h->srv->nhangups--;
	event_free(h->ev);
	close(h->fd);
	free(h);
}

static void hangup_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct hangup *h = arg;
	struct timespec now;
	struct timeval left;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(h->deadline.tv_sec - now.tv_sec) * 1000000 +
	     (h->deadline.tv_nsec - now.tv_nsec) / 1000;
	if ((what & EV_TIMEOUT) || hangup_drain(fd) || us <= 0)
		return hangup_free(h);
	left = (struct timeval){ .tv_sec = us / 1000000,
				 .tv_usec = us % 1000000 };
	event_add(h->ev, &left);
}

void server_hang_up(struct server *srv, int fd)
{
	struct timeval tv = { .tv_usec = HANGUP_LINGER_MS * 1000 };
	struct hangup *h;

	/* the peer reads what we sent, then end of file */
	shutdown(fd, SHUT_WR);
	if (hangup_drain(fd) || srv->nhangups >= HANGUP_MAX ||
	    !(h = calloc(1, sizeof(*h)))) {
		close(fd);
		return;
	}
	h->srv = srv;
	h->fd = fd;
	clock_gettime(CLOCK_MONOTONIC, &h->deadline);
	h->deadline.tv_sec += HANGUP_LINGER_MS / 1000;
	h->ev = event_new(srv->base, fd, EV_READ, hangup_on_event, h);
	if (!h->ev || event_add(h->ev, &tv) < 0) {
		if (h->ev)
			event_free(h->ev);
		free(h);
		close(fd);
		return;
	}
	list_add_tail(&h->link, &srv->hangups);
	srv->nhangups++;
}

void server_hang_ups_free(struct server *srv)
{
	while (!list_empty(&srv->hangups))
		hangup_free(list_first_entry(&srv->hangups, struct hangup,
					     link));
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
	server_hang_up(srv, fd);
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
	r = session_admit(srv, fd, text, sizeof(text));
	if (r == -EUSERS) {
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

/*
 * Our own socket (no socket activation), made without ever following a
 * link that someone else could have planted, nor trusting a directory
 * that someone else could change (dirtyd(8), "The socket"):
 *
 *  - the socket's directory is opened once (created, mode 0755, where
 *    missing) and must belong to root (or to our euid) and be writable by
 *    no one else, sticky or not; every step below is relative to that
 *    descriptor;
 *  - the socket is bound, given its mode and group and made to listen in
 *    a private directory (mkdtemp: mode 0700, ours) that no one else can
 *    enter, then rename(2)d onto its name: rename replaces a symbolic link
 *    at the name, never what it points to; the private directory goes.
 *
 * Binding and creating inside a directory held by descriptor goes through
 * /proc/self/fd/N/, which also keeps the address short.
 */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

/* Open directory @path, creating what is missing with mode 0755. */
static int socket_dir_open(const char *path, int *out)
{
	char buf[SUN_PATH_SIZE], done[SUN_PATH_SIZE] = "";
	char *comp, *save = NULL;
	int fd, nfd, r;

	snprintf(buf, sizeof(buf), "%s", path);
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "opening / failed");
	for (comp = strtok_r(buf, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		strcat(done, "/");
		strcat(done, comp);
		nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT &&
		    mkdirat(fd, comp, 0755) == 0) {
			/* ours: 0755 whatever the umask, and never a link
			 * put in its place */
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY |
				     O_NOFOLLOW | O_CLOEXEC);
			if (nfd >= 0 && fchmod(nfd, 0755) < 0) {
				r = log_error_errno(-errno, "chmod 0755 %s "
						    "failed", done);
				close(nfd);
				close(fd);
				return r;
			}
			if (nfd >= 0)
				log_info("created the directory %s", done);
		}
		if (nfd < 0) {
			r = log_error_errno(-errno, "creating or opening the "
					    "directory %s failed", done);
			close(fd);
			return r;
		}
		close(fd);
		fd = nfd;
	}
	*out = fd;
	return 0;
}

/* Nobody but root (or we) may add, remove or rename its entries. */
static int socket_dir_check(int dfd, const char *dir)
{
	struct stat st;
	char also[48] = "";

	if (fstat(dfd, &st) < 0)
		return log_error_errno(-errno, "stat %s failed", dir);
	if ((st.st_uid == 0 || st.st_uid == geteuid()) &&
	    !(st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (geteuid())
		snprintf(also, sizeof(also), " (or by uid %u, dirtyd's)",
			 (unsigned int)geteuid());
	return log_error_errno(-EPERM, "refusing the socket directory %s: "
			       "owner uid %u, mode %04o; it must be owned by "
			       "root%s and not writable by group or others",
			       dir, (unsigned int)st.st_uid,
			       (unsigned int)(st.st_mode & 07777), also);
}

/* What is at the socket's name: nothing, a stale socket (removed), a
 * symbolic link (left for rename() to replace), or a refusal. */
static int socket_clear_stale(int dfd, const char *base, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno(-errno, "stat %s failed", path);
	}
	if (S_ISLNK(st.st_mode)) {
		log_warning("%s is a symbolic link: replacing the link, not "
			    "following it", path);
		return 0;
	}
	if (!S_ISSOCK(st.st_mode))
		return log_error_errno(-EEXIST, "%s exists and is not a "
				       "socket; not touching it", path);
	/* a socket: does anything listen on it? */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket() failed");
	r = connect(fd, (const struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0)
		return log_error_errno(-EADDRINUSE, "another daemon listens "
				       "on %s", path);
	if (errno != ECONNREFUSED && errno != ENOENT)
		return log_error_errno(-errno, "probing %s failed", path);
	if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
		return log_error_errno(-errno, "removing the stale socket %s "
				       "failed", path);
	log_info("removed the stale socket %s", path);
	return 0;
}

/* Bind, chmod, chgrp and listen on @fd as @name inside private @pfd. */
static int socket_make(const struct config *cfg, int fd, int pfd,
		       const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s",
		 pfd, name);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(-errno, "binding %s failed (in a "
				       "private directory, through "
				       "/proc/self/fd)", cfg->socket);
	/* nobody else can enter @pfd: nothing here is anyone else's link */
	if (fchmodat(pfd, name, cfg->socket_mode, 0) < 0)
		return log_error_errno(-errno, "chmod %04o %s failed",
				       cfg->socket_mode, cfg->socket);
	if (cfg->socket_gid != (gid_t)-1 &&
	    fchownat(pfd, name, (uid_t)-1, cfg->socket_gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return log_error_errno(-errno, "chgrp %u %s failed",
				       (unsigned int)cfg->socket_gid,
				       cfg->socket);
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(-errno, "listen() on %s failed",
				       cfg->socket);
	return 0;
}

static int server_bind(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	char dir[SUN_PATH_SIZE], priv[64];
	const char *base, *name = "dirtyd.sock";
	int dfd = -1, pfd = -1, fd = -1, r;
	bool made = false;
	size_t plen;

	if (strlen(cfg->socket) >= SUN_PATH_SIZE)
		return log_error_errno(-ENAMETOOLONG, "socket path %s is too "
				       "long", cfg->socket);
	snprintf(dir, sizeof(dir), "%s", cfg->socket);
	*strrchr(dir, '/') = '\0';	/* config.c: absolute, a file's */
	base = cfg->socket + strlen(dir) + 1;
	r = socket_dir_open(*dir ? dir : "/", &dfd);
	if (r < 0)
		return r;
	r = socket_dir_check(dfd, *dir ? dir : "/");
	if (r < 0)
		goto out;
	r = socket_clear_stale(dfd, base, cfg->socket);
	if (r < 0)
		goto out;
	plen = (size_t)snprintf(priv, sizeof(priv), "/proc/self/fd/%d/",
				dfd);
	strcat(priv, ".dirtyd-bind.XXXXXX");
	if (!mkdtemp(priv)) {
		r = log_error_errno(-errno, "creating a private directory in "
				    "%s failed (through /proc/self/fd)",
				    *dir ? dir : "/");
		goto out;
	}
	made = true;
	pfd = openat(dfd, priv + plen, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (pfd < 0) {
		r = log_error_errno(-errno, "opening the private directory "
				    "%s/%s failed", dir, priv + plen);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		r = log_error_errno(-errno, "socket() failed");
		goto out;
	}
	r = socket_make(cfg, fd, pfd, name);
	if (r < 0)
		goto out;
	/* rename(2) replaces a symbolic link itself, never its target */
	if (renameat(pfd, name, dfd, base) < 0) {
		r = log_error_errno(-errno, "moving the socket onto %s failed",
				    cfg->socket);
		goto out;
	}
	srv->listen_bound = true;
	srv->listen_fd = fd;
	fd = -1;
	if (cfg->socket_gid != (gid_t)-1)
		log_info("listening on %s (mode %04o, group %u)", cfg->socket,
			 cfg->socket_mode, (unsigned int)cfg->socket_gid);
	else
		log_info("listening on %s (mode %04o)", cfg->socket,
			 cfg->socket_mode);
out:
	if (pfd >= 0) {
		unlinkat(pfd, name, 0);	/* only after a failure */
		close(pfd);
	}
	if (made && unlinkat(dfd, priv + plen, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		log_warning_errno(-errno, "removing the private directory "
				  "%s/%s failed", dir, priv + plen);
	if (fd >= 0)
		close(fd);
	close(dfd);
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
