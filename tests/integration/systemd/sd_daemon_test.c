// SPDX-License-Identifier: MIT
/*
 * dirtyd under systemd's protocols, without a running systemd: the real
 * dirtyd binary started by systemd-socket-activate (sd_listen_fds) or
 * directly, its sd_notify messages read from a NOTIFY_SOCKET this program
 * owns, its control socket spoken to with the protocol codec.
 *
 *   sd_daemon_test activate DIRTYD SOCKET_ACTIVATE
 *	systemd-socket-activate --seqpacket starts dirtyd on the first
 *	connection; dirtyd serves that socket (answers HELLO) and does not
 *	bind its configured path; READY=1 comes from the main pid (what
 *	NotifyAccess=main needs); SIGTERM: STOPPING=1, exit 0.
 *   sd_daemon_test activate-stream DIRTYD SOCKET_ACTIVATE
 *	a SOCK_STREAM socket passed by systemd is refused: dirtyd exits
 *	non-zero without READY=1.
 *   sd_daemon_test notify DIRTYD
 *	WATCHDOG_USEC=400000: READY=1 (the socket answers at once), STATUS=,
 *	WATCHDOG=1 at about half the interval (>= 3 in 1 s, no gap reaching
 *	the interval), SIGTERM: STOPPING=1, exit 0.
 *   sd_daemon_test standalone DIRTYD
 *	dirtyd binds its configured path itself: creates the directory 0755,
 *	sets socket_mode and socket_group; a second dirtyd on the same path
 *	fails while the first keeps serving; a stale socket is replaced; no
 *	WATCHDOG=1 without WATCHDOG_USEC.
 *   sd_daemon_test example DIRTYD CONF
 *	the shipped example configuration starts as it is (only the socket
 *	path and the groups, which a CI host lacks, overridden on the command
 *	line) and serves HELLO.
 *
 * Exit status 0 when every check passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "protocol/proto.h"

#define READY_TIMEOUT_MS 30000	/* an ASan build starting a guest */
#define EXIT_TIMEOUT_MS 15000
#define WATCHDOG_USEC 400000ULL

static int failures;

static void check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the scratch directory ---- */

static char tmpdir[PATH_MAX];

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void tmpdir_cleanup(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmpdir_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/dirtyd-sd.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(tmpdir_cleanup);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", tmpdir, name);

	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "path too long: %s/%s\n", tmpdir, name);
		exit(1);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A config for the sim with one small guest under DMA load. */
static void write_config(const char *path, const char *socket,
			 const char *daemon_extra)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "[daemon]\n"
		 "backend = sim\n"
		 "socket = %s\n"
		 "workers = 1\n"
		 "log_level = debug\n"
		 "%s"
		 "\n[sim]\n"
		 "backing_page_size = 4k\n"
		 "devices = sim0:dirty, sim1:nodirty\n"
		 "\n[guest sdtest]\n"
		 "device = sim0\n"
		 "size = 64M\n"
		 "tracking = yes\n"
		 "dma = uniform\n"
		 "dma_rate = 1000\n"
		 "dma_threads = 1\n"
		 "seed = 4\n",
		 socket, daemon_extra ? daemon_extra : "");
	write_file(path, text);
}

/* An AF_UNIX address for @path; paths that do not fit end the test. */
static struct sockaddr_un unix_addr(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len >= sizeof(sa.sun_path)) {
		fprintf(stderr, "socket path too long: %s\n", path);
		exit(1);
	}
	memcpy(sa.sun_path, path, len + 1);
	return sa;
}

/* ---- the NOTIFY_SOCKET listener ---- */

struct notify {
	int fd;
	char path[PATH_MAX];
};

struct notify_msg {
	pid_t pid;		/* sender, from SCM_CREDENTIALS */
	uint64_t at_ms;
	char text[4096];
};

static void notify_open(struct notify *n)
{
	struct sockaddr_un sa;
	int one = 1;

	tmp_path(n->path, sizeof(n->path), "notify");
	sa = unix_addr(n->path);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0 ||
	    setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    bind(n->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("notify socket");
		exit(1);
	}
}

/* Next datagram within @timeout_ms: 1, or 0 on timeout. */
static int notify_recv(struct notify *n, struct notify_msg *m, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = { .iov_base = m->text,
			     .iov_len = sizeof(m->text) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd p = { .fd = n->fd, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t len;
	int r;

	r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
	if (r <= 0)
		return 0;
	len = recvmsg(n->fd, &mh, MSG_CMSG_CLOEXEC);
	if (len < 0) {
		perror("recvmsg notify");
		exit(1);
	}
	m->text[len] = '\0';
	m->at_ms = now_ms();
	m->pid = 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			m->pid = uc.pid;
		}
	}
	return 1;
}

/* Whether @m holds the assignment @line ("READY=1") or, for a "KEY=" prefix,
 * any assignment of KEY.  sd_notify() sends newline separated lines. */
static bool msg_has(const struct notify_msg *m, const char *line)
{
	size_t len = strlen(line);
	bool prefix = len && line[len - 1] == '=';
	const char *p = m->text;

	while (*p) {
		const char *end = strchrnul(p, '\n');

		if ((size_t)(end - p) >= len && !memcmp(p, line, len) &&
		    (prefix || (size_t)(end - p) == len))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static void msg_print(const struct notify_msg *m)
{
	char flat[sizeof(m->text)];
	size_t i;

	for (i = 0; m->text[i]; i++)
		flat[i] = m->text[i] == '\n' ? ' ' : m->text[i];
	flat[i] = '\0';
	printf("  notify from pid %d: %s\n", (int)m->pid, flat);
}

/* Whether @pid has exited (it is not reaped). */
static bool exited(pid_t pid)
{
	siginfo_t si = { 0 };

	return !waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
	       si.si_pid == pid;
}

/*
 * Read notifications until one from @pid holds @line, for at most
 * @timeout_ms, or until @pid exits.  Counts WATCHDOG=1 from @pid into
 * *@watchdogs (if given).  Returns true when found.
 */
static bool notify_wait(struct notify *n, pid_t pid, const char *line,
			int timeout_ms, unsigned int *watchdogs)
{
	uint64_t end = now_ms() + timeout_ms;
	struct notify_msg m;

	for (;;) {
		int64_t left = (int64_t)(end - now_ms());

		if (left <= 0)
			return false;
		if (!notify_recv(n, &m, left < 100 ? (int)left : 100)) {
			if (exited(pid))
				return false;
			continue;
		}
		if (!msg_has(&m, "WATCHDOG=1"))
			msg_print(&m);
		if (m.pid != pid)
			continue;
		if (watchdogs && msg_has(&m, "WATCHDOG=1"))
			(*watchdogs)++;
		if (msg_has(&m, line))
			return true;
	}
}

/* ---- processes ---- */

/*
 * Start @argv with a clean systemd environment plus @env (NAME=VALUE,
 * NULL terminated); "WATCHDOG_PID=" gets the child's own pid.
 */
static pid_t spawn(char *const argv[], const char *const env[])
{
	static const char *const clear[] = {
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
		"WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", NULL };
	pid_t pid;
	int i;

	printf("  run:");
	for (i = 0; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid > 0)
		return pid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	umask(022);
	for (i = 0; clear[i]; i++)
		unsetenv(clear[i]);
	for (i = 0; env && env[i]; i++) {
		if (!strcmp(env[i], "WATCHDOG_PID=")) {
			char v[32];

			snprintf(v, sizeof(v), "%d", (int)getpid());
			setenv("WATCHDOG_PID", v, 1);
		} else {
			putenv((char *)env[i]);
		}
	}
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %m\n", argv[0]);
	_exit(127);
}

/* Wait up to @timeout_ms for @pid; its wait status, or -1 (then killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 || now_ms() >= end)
			break;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static bool exited_zero(int status)
{
	return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool exited_nonzero(int status)
{
	return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0;
}

static void describe_status(char *buf, size_t len, int status)
{
	if (status == -1)
		snprintf(buf, len, "still running (killed)");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "signal %d", WTERMSIG(status));
}

/* SIGTERM: STOPPING=1 from @pid, then exit 0. */
static void stop_daemon(struct notify *n, pid_t pid)
{
	char how[64];
	bool stopping;
	int status;

	kill(pid, SIGTERM);
	stopping = notify_wait(n, pid, "STOPPING=1", EXIT_TIMEOUT_MS, NULL);
	check(stopping, "STOPPING=1 after SIGTERM");
	status = wait_exit(pid, EXIT_TIMEOUT_MS);
	describe_status(how, sizeof(how), status);
	check(exited_zero(status), "dirtyd exits 0 after SIGTERM (%s)", how);
}

/* ---- the control socket ---- */

static int connect_seqpacket(const char *path)
{
	struct sockaddr_un sa = unix_addr(path);
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * HELLO on a connected socket; the reply within @timeout_ms must be a
 * HELLO_REPLY with our id, major version and uid.  Returns NULL when it is,
 * else what went wrong.
 */
static const char *hello_on(int fd, int timeout_ms)
{
	static uint8_t buf[PROTO_MAX_MSG];
	struct proto_msg m = {
		.type = PROTO_HELLO,
		.id = 42,
		.hello = { .major = PROTO_VERSION_MAJOR,
			   .minor = PROTO_VERSION_MINOR },
	};
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t len;
	int r;

	r = proto_encode(&m, buf, sizeof(buf));
	if (r < 0)
		return "cannot encode HELLO";
	if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
		return "cannot send HELLO";
	if (poll(&p, 1, timeout_ms) <= 0)
		return "no reply to HELLO in time";
	len = recv(fd, buf, sizeof(buf), 0);
	if (len <= 0)
		return "connection closed instead of a reply";
	r = proto_decode(buf, (size_t)len, &m);
	if (r < 0)
		return "the reply does not decode";
	if (m.type == PROTO_ERROR) {
		printf("  PROTO_ERROR %u: %.*s\n", m.error.err,
		       (int)m.error.text_len, m.error.text);
		return "HELLO refused";
	}
	if (m.type != PROTO_HELLO_REPLY || m.id != 42 ||
	    m.hello_reply.major != PROTO_VERSION_MAJOR ||
	    m.hello_reply.uid != getuid())
		return "not the HELLO_REPLY expected";
	return NULL;
}

static bool hello(const char *path, int timeout_ms)
{
	const char *why;
	int fd;

	fd = connect_seqpacket(path);
	if (fd < 0) {
		printf("  connecting to %s: %s\n", path, strerror(-fd));
		return false;
	}
	why = hello_on(fd, timeout_ms);
	close(fd);
	if (why)
		printf("  HELLO on %s: %s\n", path, why);
	return !why;
}

/* ---- the tests ---- */

static int test_activate(const char *dirtyd, const char *ssa, bool stream)
{
	char sock[PATH_MAX], conf[PATH_MAX], own[PATH_MAX];
	char env_notify[PATH_MAX + 32], how[64];
	char *argv[16];
	struct notify n;
	struct notify_msg m;
	struct stat st = { 0 };
	uint64_t end;
	bool early = false;
	int argc = 0, status;
	pid_t pid;

	tmpdir_setup();
	notify_open(&n);
	tmp_path(sock, sizeof(sock), "activated.sock");
	tmp_path(own, sizeof(own), "configured.sock");
	tmp_path(conf, sizeof(conf), "dirtyd.conf");
	write_config(conf, own, NULL);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", n.path);

	argv[argc++] = (char *)ssa;
	if (!stream)
		argv[argc++] = "--seqpacket";
	argv[argc++] = "-l";
	argv[argc++] = sock;
	argv[argc++] = "-E";
	argv[argc++] = env_notify;
	if (getenv("ASAN_OPTIONS")) {
		argv[argc++] = "-E";
		argv[argc++] = "ASAN_OPTIONS";
	}
	argv[argc++] = (char *)dirtyd;
	argv[argc++] = "--config";
	argv[argc++] = conf;
	argv[argc] = NULL;
	pid = spawn(argv, NULL);

	/* systemd-socket-activate binds, then waits for a connection. */
	end = now_ms() + 5000;
	while (stat(sock, &st) < 0 && now_ms() < end)
		usleep(10000);
	if (!S_ISSOCK(st.st_mode)) {
		check(false, "systemd-socket-activate listens on %s", sock);
		wait_exit(pid, 0);
		return 1;
	}
	/* Nothing runs before the first connection. */
	while (notify_recv(&n, &m, 300)) {
		msg_print(&m);
		early = true;
	}
	check(!early, "no notification before the first connection");

	if (stream) {
		struct sockaddr_un sa = unix_addr(sock);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ready;

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			perror("connect stream");
		ready = notify_wait(&n, pid, "READY=1", 3000, NULL);
		status = wait_exit(pid, EXIT_TIMEOUT_MS);
		describe_status(how, sizeof(how), status);
		check(!ready, "no READY=1 with a SOCK_STREAM socket");
		check(exited_nonzero(status),
		      "dirtyd refuses a SOCK_STREAM socket from systemd (%s)",
		      how);
		if (fd >= 0)
			close(fd);
		return failures ? 1 : 0;
	}

	/* The first connection starts dirtyd, which must serve it. */
	check(hello(sock, READY_TIMEOUT_MS),
	      "the first connection starts dirtyd and it answers HELLO");
	check(notify_wait(&n, pid, "READY=1", READY_TIMEOUT_MS, NULL),
	      "READY=1 from the main pid %d (exec'ed by "
	      "systemd-socket-activate: NotifyAccess=main)", (int)pid);
	check(hello(sock, 5000), "a second connection is served too");
	check(lstat(own, &st) < 0 && errno == ENOENT,
	      "the configured socket path was not bound (the passed one "
	      "is used)");
	stop_daemon(&n, pid);
	return failures ? 1 : 0;
}

static int test_notify(const char *dirtyd)
{
	char sock[PATH_MAX], conf[PATH_MAX], env_notify[PATH_MAX + 32];
	char env_wd[64];
	const char *env[] = { env_notify, env_wd, "WATCHDOG_PID=", NULL };
	char *argv[] = { (char *)dirtyd, "--config", conf, NULL };
	uint64_t ready_at, last, first = 0, max_gap = 0, end;
	unsigned int pings = 0, pings_1s = 0, status_msgs = 0;
	struct notify_msg m;
	struct notify n;
	pid_t pid;

	tmpdir_setup();
	notify_open(&n);
	tmp_path(sock, sizeof(sock), "dirtyd.sock");
	tmp_path(conf, sizeof(conf), "dirtyd.conf");
	write_config(conf, sock, NULL);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", n.path);
	snprintf(env_wd, sizeof(env_wd), "WATCHDOG_USEC=%llu",
		 (unsigned long long)WATCHDOG_USEC);
	pid = spawn(argv, env);

	if (!notify_wait(&n, pid, "READY=1", READY_TIMEOUT_MS, NULL)) {
		check(false, "READY=1 within %d ms", READY_TIMEOUT_MS);
		wait_exit(pid, 0);
		return 1;
	}
	ready_at = now_ms();
	check(true, "READY=1");
	check(hello(sock, 2000), "the socket answers HELLO once READY=1");

	/* Watch for 1.5 s: WATCHDOG=1 and STATUS=. */
	last = ready_at;
	end = ready_at + 1500;
	for (;;) {
		int64_t left = (int64_t)(end - now_ms());

		if (left <= 0 || !notify_recv(&n, &m, (int)left))
			break;
		if (m.pid != pid) {
			msg_print(&m);
			continue;
		}
		if (msg_has(&m, "STATUS=")) {
			msg_print(&m);
			status_msgs++;
		}
		if (msg_has(&m, "WATCHDOG=1")) {
			if (!pings)
				first = m.at_ms;
			else if (m.at_ms - last > max_gap)
				max_gap = m.at_ms - last;
			last = m.at_ms;
			pings++;
			if (m.at_ms - ready_at <= 1000)
				pings_1s++;
		}
	}
	if (now_ms() - last > max_gap)
		max_gap = now_ms() - last;
	printf("  WATCHDOG=1: %u in 1.5 s after READY=1, %u in the first "
	       "second, mean interval %.0f ms, longest gap %llu ms "
	       "(WATCHDOG_USEC %llu ms)\n", pings, pings_1s,
	       pings > 1 ? (double)(last - first) / (pings - 1) : 0.0,
	       (unsigned long long)max_gap,
	       (unsigned long long)(WATCHDOG_USEC / 1000));
	check(pings_1s >= 3, "at least 3 WATCHDOG=1 within 1 s (%u)",
	      pings_1s);
	check(max_gap < WATCHDOG_USEC / 1000,
	      "no gap between WATCHDOG=1 reaches the %llu ms interval "
	      "(longest %llu ms)",
	      (unsigned long long)(WATCHDOG_USEC / 1000),
	      (unsigned long long)max_gap);
	check(status_msgs >= 1, "STATUS= sent (%u in 1.5 s)", status_msgs);
	stop_daemon(&n, pid);
	return failures ? 1 : 0;
}

/* A socket node nobody listens on, as a crashed daemon leaves it. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = unix_addr(path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, 1)) {
		perror("stale socket");
		exit(1);
	}
	close(fd);
}

static int test_standalone(const char *dirtyd)
{
	char dir[PATH_MAX], sock[PATH_MAX], conf[PATH_MAX], extra[256];
	char env_notify[PATH_MAX + 32], how[64];
	const char *env[] = { env_notify, NULL };
	char *argv[] = { (char *)dirtyd, "--config", conf, NULL };
	unsigned int pings = 0;
	struct group *gr;
	struct notify n;
	struct stat st = { 0 };
	gid_t gid = getgid();
	pid_t pid, pid2;
	int status, r;

	tmpdir_setup();
	notify_open(&n);
	/* A directory that does not exist yet: dirtyd creates it. */
	tmp_path(dir, sizeof(dir), "run/dirtyd");
	tmp_path(sock, sizeof(sock), "run/dirtyd/dirtyd.sock");
	tmp_path(conf, sizeof(conf), "dirtyd.conf");
	/* A group other than ours: only root may chgrp to any group. */
	gr = geteuid() ? NULL : getgrnam("nogroup");
	if (!gr && !geteuid())
		gr = getgrgid(65534);
	if (gr && gr->gr_gid != getgid()) {
		gid = gr->gr_gid;
		snprintf(extra, sizeof(extra),
			 "socket_mode = 0640\nsocket_group = %s\n", gr->gr_name);
	} else {
		snprintf(extra, sizeof(extra), "socket_mode = 0640\n");
	}
	write_config(conf, sock, extra);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", n.path);

	pid = spawn(argv, env);
	if (!notify_wait(&n, pid, "READY=1", READY_TIMEOUT_MS, &pings)) {
		check(false, "READY=1 within %d ms", READY_TIMEOUT_MS);
		wait_exit(pid, 0);
		return 1;
	}
	r = stat(dir, &st);
	check(r == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755,
	      "socket directory created with mode 0755 (%04o)",
	      r ? 0 : (unsigned int)(st.st_mode & 07777));
	if (lstat(sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		check(false, "dirtyd bound %s itself", sock);
	} else {
		check(true, "dirtyd bound %s itself", sock);
		check((st.st_mode & 07777) == 0640, "socket mode 0640 (%04o)",
		      (unsigned int)(st.st_mode & 07777));
		check(st.st_gid == gid, "socket group %u (%u)",
		      (unsigned int)gid, (unsigned int)st.st_gid);
	}
	check(hello(sock, 5000), "the socket answers HELLO");

	/* A second daemon must not take the socket of a live one. */
	pid2 = spawn(argv, env);
	status = wait_exit(pid2, EXIT_TIMEOUT_MS);
	describe_status(how, sizeof(how), status);
	check(exited_nonzero(status),
	      "a second dirtyd on a socket in use fails (%s)", how);
	check(hello(sock, 5000), "the first dirtyd still answers HELLO");

	/* No WATCHDOG_USEC: no WATCHDOG=1 (counted since start). */
	notify_wait(&n, pid, "WATCHDOG=1", 1000, &pings);
	check(pings == 0, "no WATCHDOG=1 without WATCHDOG_USEC (%u)", pings);
	stop_daemon(&n, pid);

	/* A stale socket (nobody listening) is replaced. */
	make_stale_socket(sock);
	pid = spawn(argv, env);
	check(notify_wait(&n, pid, "READY=1", READY_TIMEOUT_MS, NULL),
	      "READY=1 with a stale socket at the path");
	check(hello(sock, 5000), "the stale socket was replaced");
	stop_daemon(&n, pid);
	return failures ? 1 : 0;
}

static int test_example(const char *dirtyd, const char *example)
{
	char sock[PATH_MAX], set_sock[PATH_MAX + 32];
	char env_notify[PATH_MAX + 32];
	const char *env[] = { env_notify, NULL };
	char *argv[] = { (char *)dirtyd, "--config", (char *)example,
			 "--set", set_sock,
			 "--set", "daemon.socket_group=",
			 "--set", "daemon.admin_group=",
			 NULL };
	struct notify n;
	pid_t pid;

	tmpdir_setup();
	notify_open(&n);
	tmp_path(sock, sizeof(sock), "dirtyd.sock");
	snprintf(set_sock, sizeof(set_sock), "daemon.socket=%s", sock);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", n.path);
	pid = spawn(argv, env);
	if (!notify_wait(&n, pid, "READY=1", READY_TIMEOUT_MS, NULL)) {
		check(false, "READY=1 with the example configuration");
		wait_exit(pid, 0);
		return 1;
	}
	check(true, "READY=1 with the example configuration");
	check(hello(sock, 5000), "the socket answers HELLO");
	stop_daemon(&n, pid);
	return failures ? 1 : 0;
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: sd_daemon_test activate|activate-stream DIRTYD "
		"SOCKET_ACTIVATE\n"
		"       sd_daemon_test notify|standalone DIRTYD\n"
		"       sd_daemon_test example DIRTYD CONF\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode;
	int r;

	if (argc < 3)
		usage();
	mode = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (access(argv[2], X_OK) < 0) {
		fprintf(stderr, "sd_daemon_test: %s: %m\n", argv[2]);
		return 1;
	}
	if (!strcmp(mode, "activate") || !strcmp(mode, "activate-stream")) {
		if (argc != 4)
			usage();
		if (access(argv[3], X_OK) < 0) {
			fprintf(stderr, "sd_daemon_test: %s: %m (Debian: "
				"apt-get install systemd)\n", argv[3]);
			return 1;
		}
		r = test_activate(argv[2], argv[3],
				  !strcmp(mode, "activate-stream"));
	} else if (!strcmp(mode, "notify") && argc == 3) {
		r = test_notify(argv[2]);
	} else if (!strcmp(mode, "standalone") && argc == 3) {
		r = test_standalone(argv[2]);
	} else if (!strcmp(mode, "example") && argc == 4) {
		r = test_example(argv[2], argv[3]);
	} else {
		usage();
	}
	printf("%s: %d check(s) failed\n", mode, failures);
	return r;
}
