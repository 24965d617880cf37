// SPDX-License-Identifier: MIT
/* A service manager for tests: see svcmgr.h. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
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

#include "svcmgr.h"

#define START_TIMEOUT_MS 30000
#define NOTIFY_MAX_FDS 32

void svcmgr_dump_log(const struct svcmgr *m)
{
	char line[1024];
	FILE *f = fopen(m->log, "r");

	if (!f)
		return;
	fprintf(stderr, "---- dirtyd log (%s) ----\n", m->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "---- end of dirtyd log ----\n");
	fclose(f);
}

bool svcmgr_log_has(const struct svcmgr *m, const char *text)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(m->log, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

unsigned int svcmgr_log_count(const struct svcmgr *m, const char *text)
{
	char line[4096];
	unsigned int n = 0;
	FILE *f = fopen(m->log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

static bool same_file(int a, int b)
{
	struct stat x, y;

	return fstat(a, &x) == 0 && fstat(b, &y) == 0 &&
	       x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* One notification with its descriptors; called with the lock held. */
static void svcmgr_handle(struct svcmgr *m, char *text, int *fds, size_t nfds)
{
	bool fdstore = false, remove = false;
	const char *name = "stored";

	for (char *save, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "READY=1"))
			m->ready = true;
		else if (!strcmp(line, "FDSTORE=1"))
			fdstore = true;
		else if (!strcmp(line, "FDSTOREREMOVE=1"))
			remove = true;
		else if (!strncmp(line, "FDNAME=", 7))
			name = line + 7;
	}
	if (remove) {
		size_t k = 0;

		for (size_t i = 0; i < m->nstored; i++) {
			if (!strcmp(m->stored[i].name, name))
				close(m->stored[i].fd);
			else
				m->stored[k++] = m->stored[i];
		}
		m->nstored = k;
	}
	for (size_t i = 0; i < nfds; i++) {
		bool dup = false;

		if (!fdstore || !m->store || m->nstored == SVCMGR_MAX_STORED) {
			close(fds[i]);
			continue;
		}
		for (size_t k = 0; k < m->nstored && !dup; k++)
			dup = same_file(m->stored[k].fd, fds[i]);
		if (dup) {
			close(fds[i]);
			continue;
		}
		snprintf(m->stored[m->nstored].name, SVCMGR_NAME_MAX, "%s",
			 name);
		m->stored[m->nstored++].fd = fds[i];
	}
}

/* Read every queued notification; called with the lock held. */
static void svcmgr_drain(struct svcmgr *m)
{
	for (;;) {
		char buf[4096];
		union {
			char c[CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = buf,
				     .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.c, .msg_controllen = sizeof(ctl.c),
		};
		int fds[NOTIFY_MAX_FDS];
		size_t nfds = 0;
		ssize_t n = recvmsg(m->notify_fd, &mh,
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

				memcpy(fds + nfds, CMSG_DATA(c),
				       k * sizeof(int));
				nfds += k;
			}
		svcmgr_handle(m, buf, fds, nfds);
		pthread_cond_broadcast(&m->cond);
	}
}

static void *svcmgr_thread(void *arg)
{
	struct svcmgr *m = arg;

	for (;;) {
		struct pollfd p = { .fd = m->notify_fd, .events = POLLIN };
		bool quit;

		poll(&p, 1, 50);
		pthread_mutex_lock(&m->lock);
		svcmgr_drain(m);
		quit = m->quit;
		pthread_mutex_unlock(&m->lock);
		if (quit)
			return NULL;
	}
}

static void svcmgr_write_conf(const struct svcmgr *m, const char *body);

void svcmgr_init(struct svcmgr *m, const char *body, bool store)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(m, 0, sizeof(*m));
	m->store = store;
	strcpy(m->dir, "/tmp/dirtyd-svcmgr-XXXXXX");
	cr_assert_not_null(mkdtemp(m->dir));
	chmod(m->dir, 0755);
	snprintf(m->sock, sizeof(m->sock), "%s/dirtyd.sock", m->dir);
	snprintf(m->conf, sizeof(m->conf), "%s/dirtyd.conf", m->dir);
	snprintf(m->log, sizeof(m->log), "%s/dirtyd.log", m->dir);
	snprintf(m->notify, sizeof(m->notify), "%s/notify", m->dir);
	svcmgr_write_conf(m, body);

	/* the socket unit */
	strcpy(sa.sun_path, m->sock);
	m->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(m->listen_fd, 0);
	cr_assert_eq(bind(m->listen_fd, (struct sockaddr *)&sa, sizeof(sa)),
		     0, "bind %s: %s", m->sock, strerror(errno));
	chmod(m->sock, 0666);
	cr_assert_eq(listen(m->listen_fd, 128), 0);

	strcpy(sa.sun_path, m->notify);
	m->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(m->notify_fd, 0);
	cr_assert_eq(bind(m->notify_fd, (struct sockaddr *)&sa, sizeof(sa)),
		     0, "bind %s: %s", m->notify, strerror(errno));
	/* room for FDSTORE bursts */
	setsockopt(m->notify_fd, SOL_SOCKET, SO_RCVBUF,
		   &(int){ 1 << 20 }, sizeof(int));

	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	cr_assert_eq(pthread_create(&m->thread, NULL, svcmgr_thread, m), 0);
	m->thread_ok = true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* The child: descriptors at 3.., the environment, exec. */
static void svcmgr_exec(struct svcmgr *m, int *fds, size_t n, char *names)
{
	const char *bin = getenv("DIRTYD_BIN");
	int logfd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			 0644);
	char num[32];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dup2(logfd, STDOUT_FILENO);
	dup2(logfd, STDERR_FILENO);
	/* out of the way of 3.., then into place (dup2 clears CLOEXEC) */
	for (size_t i = 0; i < n; i++)
		fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 256);
	for (size_t i = 0; i < n; i++)
		dup2(fds[i], 3 + (int)i);
	snprintf(num, sizeof(num), "%zu", n);
	setenv("LISTEN_FDS", num, 1);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	setenv("NOTIFY_SOCKET", m->notify, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("JOURNAL_STREAM");
	execl(bin, bin, "--config", m->conf, (char *)NULL);
	_exit(127);
}

static void svcmgr_write_conf(const struct svcmgr *m, const char *body)
{
	FILE *f = fopen(m->conf, "w");

	cr_assert_not_null(f);
	fprintf(f, "[daemon]\nbackend = sim\nsocket = %s\nlog_level = debug\n"
		"%s\n", m->sock, body ? body : "");
	fclose(f);
}

void svcmgr_configure(struct svcmgr *m, const char *body)
{
	svcmgr_write_conf(m, body);
}

/* Start; 0 at READY=1, or the wait status of a dirtyd that exited first
 * (then, with @must, fail showing the log). */
static int svcmgr_start_wait(struct svcmgr *m, bool must)
{
	int fds[SVCMGR_MAX_STORED + 1];
	char names[(SVCMGR_MAX_STORED + 1) * SVCMGR_NAME_MAX] = "dirtyd.socket";
	size_t n = 1;
	uint64_t end;

	cr_assert_not_null(getenv("DIRTYD_BIN"),
			   "DIRTYD_BIN is not set (CTest sets it)");
	cr_assert_eq(m->pid, 0, "dirtyd is running already");
	pthread_mutex_lock(&m->lock);
	fds[0] = m->listen_fd;
	for (size_t i = 0; i < m->nstored; i++) {
		fds[n++] = m->stored[i].fd;
		strcat(names, ":");
		strcat(names, m->stored[i].name);
	}
	m->ready = false;
	fflush(NULL);
	m->pid = fork();
	if (m->pid == 0)
		svcmgr_exec(m, fds, n, names);
	pthread_mutex_unlock(&m->lock);
	cr_assert_gt(m->pid, 0);
	m->starts++;

	end = now_ms() + START_TIMEOUT_MS;
	pthread_mutex_lock(&m->lock);
	while (!m->ready) {
		struct timespec ts;
		int status;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
		if (m->ready)
			break;
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			/* what it sent before it died counts */
			svcmgr_drain(m);
			pthread_mutex_unlock(&m->lock);
			if (!must)
				return status ? status : -1;
			svcmgr_dump_log(m);
			cr_assert_fail("dirtyd exited at start (status %#x)",
				       status);
		}
		if (now_ms() > end) {
			pthread_mutex_unlock(&m->lock);
			svcmgr_dump_log(m);
			cr_assert_fail("dirtyd sent no READY=1 within %d ms",
				       START_TIMEOUT_MS);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void svcmgr_start(struct svcmgr *m)
{
	svcmgr_start_wait(m, true);
}

int svcmgr_try_start(struct svcmgr *m)
{
	return svcmgr_start_wait(m, false);
}

int svcmgr_kill(struct svcmgr *m, int sig)
{
	int status = 0;

	if (!m->pid)
		return 0;
	kill(m->pid, sig);
	waitpid(m->pid, &status, 0);
	m->pid = 0;
	/* what it sent before it died counts */
	pthread_mutex_lock(&m->lock);
	svcmgr_drain(m);
	pthread_mutex_unlock(&m->lock);
	return status;
}

void svcmgr_restart(struct svcmgr *m)
{
	svcmgr_kill(m, SIGKILL);
	svcmgr_start(m);
}

size_t svcmgr_has(struct svcmgr *m, const char *name)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nstored; i++)
		n += !strcmp(m->stored[i].name, name);
	pthread_mutex_unlock(&m->lock);
	return n;
}

int svcmgr_stored_fd(struct svcmgr *m, const char *name)
{
	int fd = -1;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nstored && fd < 0; i++)
		if (!strcmp(m->stored[i].name, name))
			fd = m->stored[i].fd;
	pthread_mutex_unlock(&m->lock);
	return fd;
}

void svcmgr_replace(struct svcmgr *m, const char *name, int fd)
{
	size_t k = 0;
	bool done = false;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nstored; i++) {
		if (strcmp(m->stored[i].name, name)) {
			m->stored[k++] = m->stored[i];
			continue;
		}
		close(m->stored[i].fd);
		if (fd >= 0 && !done) {
			m->stored[k] = m->stored[i];
			m->stored[k++].fd = fd;
			done = true;
		}
	}
	m->nstored = k;
	if (fd >= 0 && !done) {
		cr_assert_lt(m->nstored, SVCMGR_MAX_STORED);
		snprintf(m->stored[m->nstored].name, SVCMGR_NAME_MAX, "%s",
			 name);
		m->stored[m->nstored++].fd = fd;
	}
	pthread_mutex_unlock(&m->lock);
}

size_t svcmgr_nstored(struct svcmgr *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->nstored;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int svcmgr_stop(struct svcmgr *m)
{
	int status = 0;

	if (!m->dir[0])
		return 0;
	if (m->pid) {
		kill(m->pid, SIGTERM);
		for (int i = 0; i < 2000; i++) {
			struct timespec ts = { .tv_nsec = 10 * 1000000 };

			if (waitpid(m->pid, &status, WNOHANG) == m->pid)
				break;
			nanosleep(&ts, NULL);
			if (i == 1999) {
				kill(m->pid, SIGKILL);
				waitpid(m->pid, &status, 0);
				status = -1;
			}
		}
		m->pid = 0;
	}
	if (status != 0)
		svcmgr_dump_log(m);
	if (m->thread_ok) {
		pthread_mutex_lock(&m->lock);
		m->quit = true;
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		m->thread_ok = false;
	}
	/* the unit is inactive: the store is flushed */
	for (size_t i = 0; i < m->nstored; i++)
		close(m->stored[i].fd);
	m->nstored = 0;
	close(m->notify_fd);
	close(m->listen_fd);
	unlink(m->notify);
	unlink(m->sock);
	unlink(m->conf);
	unlink(m->log);
	rmdir(m->dir);
	m->dir[0] = '\0';
	return status;
}
