// SPDX-License-Identifier: MIT
/* The one way the tests start dirtyd: see harness.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NOTIFY_MAX_FDS 32
#define ENV_MAX 512

extern char **environ;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------- the notify socket */

static bool same_file(int a, int b)
{
	struct stat x, y;

	return fstat(a, &x) == 0 && fstat(b, &y) == 0 &&
	       x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Drop every descriptor stored under @name; called with the lock held. */
static void store_remove(struct harness *h, const char *name)
{
	size_t k = 0;

	for (size_t i = 0; i < h->nstored; i++) {
		if (!strcmp(h->stored[i].name, name))
			close(h->stored[i].fd);
		else
			h->stored[k++] = h->stored[i];
	}
	h->nstored = k;
}

/* One notification with its descriptors; called with the lock held. */
static void handle(struct harness *h, char *text, int *fds, size_t nfds)
{
	bool fdstore = false, remove = false;
	const char *name = "stored";
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "READY=1"))
			h->ready = true;
		else if (!strcmp(line, "STOPPING=1"))
			h->stopping = true;
		else if (!strcmp(line, "WATCHDOG=1"))
			h->watchdogs++;
		else if (!strncmp(line, "STATUS=", 7))
			snprintf(h->status, sizeof(h->status), "%s", line + 7);
		else if (!strcmp(line, "FDSTORE=1"))
			fdstore = true;
		else if (!strcmp(line, "FDSTOREREMOVE=1"))
			remove = true;
		else if (!strncmp(line, "FDNAME=", 7))
			name = line + 7;
	}
	if (remove)
		store_remove(h, name);
	for (size_t i = 0; i < nfds; i++) {
		bool dup = false;

		if (!fdstore || !h->store ||
		    h->nstored == HARNESS_MAX_STORED) {
			close(fds[i]);
			continue;
		}
		/* a file stored already is dropped, as systemd does */
		for (size_t k = 0; k < h->nstored && !dup; k++)
			dup = same_file(h->stored[k].fd, fds[i]);
		if (dup) {
			close(fds[i]);
			continue;
		}
		snprintf(h->stored[h->nstored].name, HARNESS_NAME_MAX, "%s",
			 name);
		h->stored[h->nstored++].fd = fds[i];
	}
}

/* Read every queued notification; called with the lock held. */
static void drain(struct harness *h)
{
	for (;;) {
		char buf[4096];
		union {
			char c[CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS) +
			       CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} ctl;
		pid_t from = 0;
		struct iovec iov = { .iov_base = buf,
				     .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.c, .msg_controllen = sizeof(ctl.c),
		};
		int fds[NOTIFY_MAX_FDS];
		size_t nfds = 0;
		ssize_t n = recvmsg(h->notify_fd, &mh,
				    MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return;
		buf[n] = '\0';
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) /
					   sizeof(int);

				if (k > NOTIFY_MAX_FDS - nfds)
					k = NOTIFY_MAX_FDS - nfds;
				memcpy(fds + nfds, CMSG_DATA(c),
				       k * sizeof(int));
				nfds += k;
			} else if (c->cmsg_level == SOL_SOCKET &&
				   c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;

				memcpy(&uc, CMSG_DATA(c), sizeof(uc));
				from = uc.pid;
			}
		if (from && from != h->main_pid) {
			/* NotifyAccess=main: not the service's process */
			h->foreign++;
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		h->messages++;
		if (h->on_notify)
			h->on_notify(h->notify_arg, buf);
		handle(h, buf, fds, nfds);
		pthread_cond_broadcast(&h->cond);
	}
}

static void drain_locked(struct harness *h)
{
	pthread_mutex_lock(&h->lock);
	drain(h);
	pthread_mutex_unlock(&h->lock);
}

static void *reader(void *arg)
{
	struct harness *h = arg;

	for (;;) {
		struct pollfd p = { .fd = h->notify_fd, .events = POLLIN };
		bool quit;

		poll(&p, 1, 50);
		pthread_mutex_lock(&h->lock);
		drain(h);
		quit = h->quit;
		pthread_mutex_unlock(&h->lock);
		if (quit)
			return NULL;
	}
}

/* ------------------------------------------------------------- setup */

static int bind_unix(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int write_conf(const struct harness *h, const char *body)
{
	FILE *f = fopen(h->conf, "w");

	if (!f)
		return -errno;
	fprintf(f, "[daemon]\nbackend = %s\nsocket = %s\nlog_level = %s\n"
		"%s\n", h->backend, h->sock, h->log_level, body ? body : "");
	return fclose(f) ? -errno : 0;
}

int harness_configure(struct harness *h, const char *body)
{
	return h->own_conf ? write_conf(h, body) : -EINVAL;
}

static int copy_path(char *dst, const char *src)
{
	if (strlen(src) >= HARNESS_PATH_MAX)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

/* The command: @o->wrap, then dirtyd --config FILE, then @o->args. */
static int make_argv(struct harness *h, const struct harness_opts *o)
{
	const char *const base[] = { h->bin, "--config", h->conf, NULL };
	const char *const *parts[] = { o->wrap, base, o->args };
	size_t n = 0, off = 0;

	for (size_t p = 0; p < 3; p++)
		for (size_t i = 0; parts[p] && parts[p][i]; i++) {
			size_t len = strlen(parts[p][i]) + 1;

			if (n == HARNESS_MAX_ARGS ||
			    len > sizeof(h->argbuf) - off)
				return -E2BIG;
			h->argv[n++] = memcpy(h->argbuf + off, parts[p][i],
					      len);
			off += len;
		}
	h->argv[n] = NULL;
	return 0;
}

static int setup(struct harness *h, const struct harness_opts *o)
{
	const char *bin = o->bin ? o->bin : getenv("DIRTYD_BIN");
	int r, fd;

	if (!bin || !*bin)
		return -ENOENT;
	r = copy_path(h->bin, bin);
	if (r < 0)
		return r;
	strcpy(h->dir, "/tmp/dirtyd-harness-XXXXXX");
	if (!mkdtemp(h->dir)) {
		h->dir[0] = '\0';
		return -errno;
	}
	/* others (a test's child of another uid) may reach the socket */
	chmod(h->dir, 0755);
	snprintf(h->notify, sizeof(h->notify), "%s/notify", h->dir);
	snprintf(h->sock, sizeof(h->sock), "%s/dirtyd.sock", h->dir);
	snprintf(h->conf, sizeof(h->conf), "%s/dirtyd.conf", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/dirtyd.log", h->dir);
	if ((o->sock && (r = copy_path(h->sock, o->sock)) < 0) ||
	    (o->conf && (r = copy_path(h->conf, o->conf)) < 0) ||
	    (o->log && (r = copy_path(h->log, o->log)) < 0))
		return r;
	h->own_conf = !o->conf;
	h->own_log = !o->log;
	r = make_argv(h, o);
	if (r < 0)
		return r;
	if (h->own_conf && (r = write_conf(h, o->body)) < 0)
		return r;
	fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);

	if (h->no_notify)
		return h->activate ? -EINVAL : 0;
	h->notify_fd = bind_unix(h->notify, SOCK_DGRAM);
	if (h->notify_fd < 0)
		return h->notify_fd;
	/* room for FDSTORE bursts; the sender of each */
	setsockopt(h->notify_fd, SOL_SOCKET, SO_RCVBUF, &(int){ 1 << 20 },
		   sizeof(int));
	setsockopt(h->notify_fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 },
		   sizeof(int));
	if (h->activate) {
		/* the socket unit */
		h->listen_fd = bind_unix(h->sock, SOCK_SEQPACKET);
		if (h->listen_fd < 0)
			return h->listen_fd;
		chmod(h->sock, 0666);
		if (listen(h->listen_fd, 128) < 0)
			return -errno;
	}
	r = pthread_create(&h->thread, NULL, reader, h);
	if (r)
		return -r;
	h->thread_ok = true;
	return 0;
}

int harness_init(struct harness *h, const struct harness_opts *o)
{
	int r;

	memset(h, 0, sizeof(*h));
	h->notify_fd = -1;
	h->listen_fd = -1;
	h->activate = o->activate;
	h->store = o->store;
	h->no_notify = o->no_notify;
	h->watchdog_usec = o->watchdog_usec;
	h->start_ms = o->start_ms ? o->start_ms : HARNESS_START_MS;
	h->stop_ms = o->stop_ms ? o->stop_ms : HARNESS_STOP_MS;
	h->on_notify = o->on_notify;
	h->notify_arg = o->notify_arg;
	snprintf(h->backend, sizeof(h->backend), "%s",
		 o->backend ? o->backend : "sim");
	snprintf(h->log_level, sizeof(h->log_level), "%s",
		 o->log_level ? o->log_level : "debug");
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->inited = true;
	r = setup(h, o);
	if (r < 0)
		harness_fini(h);
	return r;
}

/* ------------------------------------------------------------- start */

/* @v into @buf (async-signal-safe: for the child). */
static void put_num(char *buf, unsigned long long v)
{
	char tmp[24];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*buf++ = tmp[--n];
	*buf = '\0';
}

/*
 * The environment of a start: ours without what a service manager sets,
 * then what this one sets.  $LISTEN_PID and $WATCHDOG_PID need the
 * child's pid: @pid_slots get the strings the child completes.
 */
struct start_env {
	char *envp[ENV_MAX];
	char listen_fds[32], listen_pid[48], names[32 + (HARNESS_MAX_STORED +
							  1) * HARNESS_NAME_MAX];
	char notify[32 + HARNESS_PATH_MAX];
	char wd_usec[48], wd_pid[48];
};

static bool managed_var(const char *e)
{
	static const char *const vars[] = {
		"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
		"JOURNAL_STREAM=",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (!strncmp(e, vars[i], strlen(vars[i])))
			return true;
	return false;
}

static void start_env(const struct harness *h, struct start_env *se,
		      size_t nfds)
{
	size_t n = 0;

	for (char **e = environ; *e && n < ENV_MAX - 8; e++)
		if (!managed_var(*e))
			se->envp[n++] = *e;
	snprintf(se->notify, sizeof(se->notify), "NOTIFY_SOCKET=%s",
		 h->notify);
	if (!h->no_notify)
		se->envp[n++] = se->notify;
	if (h->activate) {
		snprintf(se->listen_fds, sizeof(se->listen_fds),
			 "LISTEN_FDS=%zu", nfds);
		strcpy(se->listen_pid, "LISTEN_PID=");
		se->envp[n++] = se->listen_fds;
		se->envp[n++] = se->listen_pid;
		se->envp[n++] = se->names;
	}
	if (h->watchdog_usec) {
		snprintf(se->wd_usec, sizeof(se->wd_usec), "WATCHDOG_USEC=%llu",
			 (unsigned long long)h->watchdog_usec);
		strcpy(se->wd_pid, "WATCHDOG_PID=");
		se->envp[n++] = se->wd_usec;
		se->envp[n++] = se->wd_pid;
	}
	se->envp[n] = NULL;
}

/* The child: descriptors at 3.., the environment, exec. */
static void child(const struct harness *h, struct start_env *se, int *fds,
		  size_t n)
{
	int logfd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			 0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t self = getpid();

	/* never outlive the test, whatever happens to it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* StandardInput=null, as systemd's default */
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	if (logfd >= 0) {
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
	}
	/* out of the way of 3.., then into place (dup2 clears CLOEXEC) */
	for (size_t i = 0; i < n; i++)
		fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 256);
	for (size_t i = 0; i < n; i++)
		dup2(fds[i], 3 + (int)i);
	put_num(se->listen_pid + strlen("LISTEN_PID="),
		(unsigned long long)self);
	put_num(se->wd_pid + strlen("WATCHDOG_PID="), (unsigned long long)self);
	execve(h->argv[0], h->argv, se->envp);
	_exit(127);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (long)st.st_size;
}

/* Without $NOTIFY_SOCKET: ready once the socket accepts a connection. */
static int wait_listening(struct harness *h, uint64_t end)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(sa.sun_path, h->sock);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int status;

		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			return 0;
		}
		close(fd);
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			h->wstatus = status;
			return -ECHILD;
		}
		if (now_ms() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

int harness_start(struct harness *h)
{
	int r = harness_spawn(h);

	return r < 0 ? r : harness_wait_ready(h, h->start_ms);
}

int harness_spawn(struct harness *h)
{
	static struct start_env se;	/* big; one start at a time */
	int fds[HARNESS_MAX_STORED + 1], r = 0;
	size_t n = 0;

	if (h->pid)
		return -EBUSY;
	h->log_start = file_size(h->log);
	pthread_mutex_lock(&h->lock);
	strcpy(se.names, "LISTEN_FDNAMES=dirtyd.socket");
	if (h->activate) {
		fds[n++] = h->listen_fd;
		for (size_t i = 0; i < h->nstored; i++) {
			fds[n++] = h->stored[i].fd;
			strcat(se.names, ":");
			strcat(se.names, h->stored[i].name);
		}
	}
	start_env(h, &se, n);
	h->ready = h->stopping = false;
	h->watchdogs = h->messages = h->foreign = 0;
	h->status[0] = '\0';
	h->passed = n;
	fflush(NULL);
	h->pid = fork();
	if (h->pid == 0)
		child(h, &se, fds, n);
	if (h->pid < 0) {
		r = -errno;
		h->pid = 0;
	} else {
		h->main_pid = h->pid;
		h->starts++;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

int harness_wait_ready(struct harness *h, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	int r = 0;

	if (!h->pid)
		return -ESRCH;
	if (h->no_notify)
		return wait_listening(h, end);
	pthread_mutex_lock(&h->lock);
	while (!r && !h->ready) {
		struct timespec ts;
		int status;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		if (h->ready)
			break;
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			h->wstatus = status;
			/* what it sent before it died counts */
			drain(h);
			r = -ECHILD;
		} else if (now_ms() > end) {
			r = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* ------------------------------------------------------------- stop */

int harness_kill(struct harness *h, int sig)
{
	int status = 0;

	if (!h->pid)
		return -ESRCH;
	kill(h->pid, sig);
	while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
		;
	h->pid = 0;
	h->wstatus = status;
	/* what it sent before it died counts (systemd reads notifications
	 * before it handles SIGCHLD) */
	drain_locked(h);
	return status;
}

bool harness_exited(struct harness *h, int *status)
{
	if (!h->pid || waitpid(h->pid, status, WNOHANG) != h->pid)
		return false;
	h->pid = 0;
	h->wstatus = *status;
	drain_locked(h);
	return true;
}

int harness_stop(struct harness *h)
{
	int status = 0;

	if (!h->pid)
		return 0;
	kill(h->pid, SIGTERM);
	for (unsigned int i = 0; i < h->stop_ms / 10; i++) {
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			h->wstatus = status;
			drain_locked(h);
			return status;
		}
		sleep_ms(10);
	}
	harness_kill(h, SIGKILL);
	return -ETIMEDOUT;
}

int harness_fini(struct harness *h)
{
	int status;

	if (!h->inited)
		return 0;	/* never initialised (a skipped test) */
	status = harness_stop(h);

	if (h->thread_ok) {
		pthread_mutex_lock(&h->lock);
		h->quit = true;
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
		h->thread_ok = false;
	}
	/* the unit is inactive: the store is flushed */
	harness_flush(h);
	if (h->notify_fd >= 0)
		close(h->notify_fd);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	h->notify_fd = h->listen_fd = -1;
	if (h->dir[0]) {
		unlink(h->notify);
		if (!strncmp(h->sock, h->dir, strlen(h->dir)))
			unlink(h->sock);
		if (h->own_conf)
			unlink(h->conf);
		if (h->own_log)
			unlink(h->log);
		rmdir(h->dir);
		h->dir[0] = '\0';
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	h->inited = false;
	return status;
}

/* ------------------------------------------------------------- store */

void harness_flush(struct harness *h)
{
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nstored; i++)
		close(h->stored[i].fd);
	h->nstored = 0;
	pthread_mutex_unlock(&h->lock);
}

size_t harness_has(struct harness *h, const char *name)
{
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nstored; i++)
		n += !strcmp(h->stored[i].name, name);
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t harness_wait_has(struct harness *h, const char *name, int ms)
{
	for (int i = 0; i < ms / 10 && !harness_has(h, name); i++)
		sleep_ms(10);
	return harness_has(h, name);
}

int harness_stored_fd(struct harness *h, const char *name)
{
	int fd = -1;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nstored && fd < 0; i++)
		if (!strcmp(h->stored[i].name, name))
			fd = h->stored[i].fd;
	pthread_mutex_unlock(&h->lock);
	return fd;
}

int harness_replace(struct harness *h, const char *name, int fd)
{
	size_t k = 0;
	bool done = false;
	int r = 0;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nstored; i++) {
		if (strcmp(h->stored[i].name, name)) {
			h->stored[k++] = h->stored[i];
			continue;
		}
		close(h->stored[i].fd);
		if (fd >= 0 && !done) {
			h->stored[k] = h->stored[i];
			h->stored[k++].fd = fd;
			done = true;
		}
	}
	h->nstored = k;
	if (fd >= 0 && !done) {
		if (h->nstored == HARNESS_MAX_STORED) {
			close(fd);
			r = -ENOSPC;
		} else {
			snprintf(h->stored[h->nstored].name, HARNESS_NAME_MAX,
				 "%s", name);
			h->stored[h->nstored++].fd = fd;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

size_t harness_nstored(struct harness *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->nstored;
	pthread_mutex_unlock(&h->lock);
	return n;
}

void harness_names(struct harness *h, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nstored && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				h->stored[i].name);
	pthread_mutex_unlock(&h->lock);
}

struct harness_counts harness_counts(struct harness *h)
{
	struct harness_counts c;

	pthread_mutex_lock(&h->lock);
	c.messages = h->messages;
	c.foreign = h->foreign;
	c.watchdogs = h->watchdogs;
	pthread_mutex_unlock(&h->lock);
	return c;
}

/* --------------------------------------------------------------- log */

static FILE *log_open(const struct harness *h, bool this_start)
{
	FILE *f = fopen(h->log, "r");

	if (f && this_start)
		fseek(f, h->log_start, SEEK_SET);
	return f;
}

unsigned int harness_log_count(const struct harness *h, const char *text,
			       bool this_start)
{
	FILE *f = log_open(h, this_start);
	unsigned int n = 0;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0)
		n += strstr(line, text) != NULL;
	free(line);
	fclose(f);
	return n;
}

bool harness_log_has(const struct harness *h, const char *text,
		     bool this_start)
{
	return harness_log_line(h, text, this_start, NULL, 0);
}

bool harness_log_line(const struct harness *h, const char *text,
		      bool this_start, char *out, size_t len)
{
	FILE *f = log_open(h, this_start);
	bool found = false;
	char *line = NULL;
	size_t cap = 0;

	if (out && len)
		out[0] = '\0';
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		if (!strstr(line, text))
			continue;
		found = true;
		line[strcspn(line, "\n")] = '\0';
		if (out && len)
			snprintf(out, len, "%s", line);
	}
	free(line);
	fclose(f);
	return found;
}

void harness_dump_log(const struct harness *h, FILE *out, unsigned int lines,
		      const char *prefix)
{
	FILE *f = fopen(h->log, "r");
	unsigned long total = 0, skip = 0;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	if (lines) {
		while (getline(&line, &cap, f) > 0)
			total++;
		skip = total > lines ? total - lines : 0;
		rewind(f);
	}
	if (!prefix)
		fprintf(out, "---- dirtyd log (%s) ----\n", h->log);
	while (getline(&line, &cap, f) > 0) {
		if (skip) {
			skip--;
			continue;
		}
		if (prefix) {
			line[strcspn(line, "\n")] = '\0';
			fprintf(out, "%s%s\n", prefix, line);
		} else {
			fputs(line, out);
		}
	}
	if (!prefix)
		fprintf(out, "---- end of dirtyd log ----\n");
	fflush(out);
	free(line);
	fclose(f);
}
