// SPDX-License-Identifier: MIT
/*
 * dirtyd under systemd's protocols, without a running systemd: the real
 * dirtyd binary started by systemd-socket-activate (sd_listen_fds) or
 * directly, by tests/harness, which plays the service manager: its
 * sd_notify messages read from the harness's NOTIFY_SOCKET (only the main
 * process's count: NotifyAccess=main), its control socket spoken to with
 * the protocol codec.
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
 *	WATCHDOG_USEC=2000000: READY=1 (the socket answers at once), STATUS=,
 *	WATCHDOG=1 armed at half the interval (dirtyd's log says so) and
 *	sent (>= 2 in 3 s); SIGHUP: RELOADING=1 with MONOTONIC_USEC= (what
 *	systemd 253's Type=notify-reload needs), then READY=1 again, dirtyd
 *	still serving; SIGTERM: STOPPING=1, exit 0.  The gaps between
 *	pings are printed, not asserted: they measure the machine's
 *	scheduling (a 546 ms gap was seen at a 400 ms interval under load).
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
#include <pthread.h>
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

#include "harness.h"
#include "protocol/proto.h"

#define READY_TIMEOUT_MS 30000	/* an ASan build starting a guest */
#define EXIT_TIMEOUT_MS 15000
#define WATCHDOG_USEC 2000000ULL

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

/* ---- notifications ---- */

/* Whether @text holds the assignment @line ("READY=1") or, for a "KEY="
 * prefix, any assignment of KEY.  sd_notify() sends newline separated
 * lines. */
static bool text_has(const char *text, const char *line)
{
	size_t len = strlen(line);
	bool prefix = len && line[len - 1] == '=';
	const char *p = text;

	while (*p) {
		const char *end = strchrnul(p, '\n');

		if ((size_t)(end - p) >= len && !memcmp(p, line, len) &&
		    (prefix || (size_t)(end - p) == len))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/*
 * What the main process notified, when: READY=1, and in later messages
 * WATCHDOG=1 and STATUS=.  Filled on the harness's reader thread.
 */
#define SEEN_MAX 256

struct seen {
	pthread_mutex_t lock;
	uint64_t ready_at;	/* 0: no READY=1 yet */
	uint64_t watchdog[SEEN_MAX], status[SEEN_MAX];
	unsigned int nwatchdog, nstatus;
	uint64_t reloading_at, reloaded_at;	/* SIGHUP: RELOADING=1, READY=1 */
	bool reload_usec;	/* MONOTONIC_USEC= with RELOADING=1 */
};

static void on_notify(void *arg, const char *text)
{
	struct seen *w = arg;
	uint64_t now = now_ms();
	char flat[4096];
	size_t i;

	if (!text_has(text, "WATCHDOG=1")) {
		for (i = 0; text[i] && i < sizeof(flat) - 1; i++)
			flat[i] = text[i] == '\n' ? ' ' : text[i];
		flat[i] = '\0';
		printf("  notify: %s\n", flat);
	}
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (!w->ready_at) {
		/* READY=1 carries a STATUS= too: only later ones count */
		if (text_has(text, "READY=1"))
			w->ready_at = now;
	} else {
		if (text_has(text, "WATCHDOG=1") && w->nwatchdog < SEEN_MAX)
			w->watchdog[w->nwatchdog++] = now;
		if (text_has(text, "STATUS=") && w->nstatus < SEEN_MAX)
			w->status[w->nstatus++] = now;
		if (text_has(text, "RELOADING=1")) {
			w->reloading_at = now;
			w->reload_usec = text_has(text, "MONOTONIC_USEC=");
		}
		if (text_has(text, "READY=1") && w->reloading_at)
			w->reloaded_at = now;
	}
	pthread_mutex_unlock(&w->lock);
}

/* ---- processes ---- */

/* A harness for dirtyd (@dirtyd, or the command @wrap runs it with) with
 * @conf, its socket @sock; ends the test if that fails. */
static void daemon_init(struct harness *h, const char *dirtyd,
			const char *conf, const char *sock,
			const char *const *wrap, const char *const *args,
			struct seen *w, uint64_t watchdog_usec)
{
	char log[PATH_MAX + 32];
	struct harness_opts o = {
		.bin = dirtyd, .conf = conf, .sock = sock, .log = log,
		.wrap = wrap, .args = args,
		.on_notify = on_notify, .notify_arg = w,
		.watchdog_usec = watchdog_usec,
		.start_ms = READY_TIMEOUT_MS, .stop_ms = EXIT_TIMEOUT_MS,
	};
	static unsigned int n;
	int r;

	snprintf(log, sizeof(log), "%s/dirtyd-%u.log", tmpdir, n++);
	r = harness_init(h, &o);
	if (r < 0) {
		fprintf(stderr, "the harness: %s\n", strerror(-r));
		exit(1);
	}
}

/* Until dirtyd exits, for @timeout_ms at most: its wait status, or -1
 * (then killed). */
static int wait_exit(struct harness *h, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	int status;

	for (;;) {
		if (!h->pid)
			return h->wstatus;
		if (harness_exited(h, &status))
			return status;
		if (now_ms() >= end)
			break;
		usleep(10000);
	}
	harness_kill(h, SIGKILL);
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

/* SIGTERM: STOPPING=1 from the main process, then exit 0. */
static void stop_daemon(struct harness *h)
{
	char how[64];
	int status = harness_stop(h);

	if (status == -ETIMEDOUT)
		status = -1;
	check(h->stopping, "STOPPING=1 after SIGTERM");
	describe_status(how, sizeof(how), status);
	check(exited_zero(status), "dirtyd exits 0 after SIGTERM (%s)", how);
}

/* dirtyd's output, then the harness gone. */
static void daemon_fini(struct harness *h)
{
	harness_dump_log(h, stdout, 0, "  ");
	harness_fini(h);
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
	char sock[PATH_MAX], conf[PATH_MAX], own[PATH_MAX], how[64];
	const char *wrap[16];
	struct stat st = { 0 };
	struct harness h;
	uint64_t end;
	int argc = 0, status;
	unsigned int n;

	tmpdir_setup();
	tmp_path(sock, sizeof(sock), "activated.sock");
	tmp_path(own, sizeof(own), "configured.sock");
	tmp_path(conf, sizeof(conf), "dirtyd.conf");
	write_config(conf, own, NULL);

	/* it execs dirtyd in its own process: the harness's main process */
	wrap[argc++] = ssa;
	if (!stream)
		wrap[argc++] = "--seqpacket";
	wrap[argc++] = "-l";
	wrap[argc++] = sock;
	wrap[argc++] = "-E";
	wrap[argc++] = "NOTIFY_SOCKET";	/* the harness's, from the env */
	if (getenv("ASAN_OPTIONS")) {
		wrap[argc++] = "-E";
		wrap[argc++] = "ASAN_OPTIONS";
	}
	wrap[argc] = NULL;
	daemon_init(&h, dirtyd, conf, sock, wrap, NULL, NULL, 0);
	if (harness_spawn(&h) < 0) {
		check(false, "systemd-socket-activate starts");
		daemon_fini(&h);
		return 1;
	}
	printf("  run: %s ... %s --config %s (pid %d)\n", ssa, dirtyd, conf,
	       (int)h.pid);

	/* systemd-socket-activate binds, then waits for a connection. */
	end = now_ms() + 5000;
	while (stat(sock, &st) < 0 && now_ms() < end)
		usleep(10000);
	if (!S_ISSOCK(st.st_mode)) {
		check(false, "systemd-socket-activate listens on %s", sock);
		wait_exit(&h, 0);
		daemon_fini(&h);
		return 1;
	}
	/* Nothing runs before the first connection. */
	usleep(300000);
	n = harness_counts(&h).messages;
	check(n == 0, "no notification before the first connection (%u)", n);

	if (stream) {
		struct sockaddr_un sa = unix_addr(sock);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ready;

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			perror("connect stream");
		ready = harness_wait_ready(&h, 3000) == 0;
		status = wait_exit(&h, EXIT_TIMEOUT_MS);
		describe_status(how, sizeof(how), status);
		check(!ready, "no READY=1 with a SOCK_STREAM socket");
		check(exited_nonzero(status),
		      "dirtyd refuses a SOCK_STREAM socket from systemd (%s)",
		      how);
		if (fd >= 0)
			close(fd);
		daemon_fini(&h);
		return failures ? 1 : 0;
	}

	/* The first connection starts dirtyd, which must serve it. */
	check(hello(sock, READY_TIMEOUT_MS),
	      "the first connection starts dirtyd and it answers HELLO");
	check(harness_wait_ready(&h, READY_TIMEOUT_MS) == 0,
	      "READY=1 from the main pid %d (exec'ed by "
	      "systemd-socket-activate: NotifyAccess=main; %u from others)",
	      (int)h.main_pid, h.foreign);
	check(hello(sock, 5000), "a second connection is served too");
	check(lstat(own, &st) < 0 && errno == ENOENT,
	      "the configured socket path was not bound (the passed one "
	      "is used)");
	stop_daemon(&h);
	daemon_fini(&h);
	return failures ? 1 : 0;
}

static int test_notify(const char *dirtyd)
{
	char sock[PATH_MAX], conf[PATH_MAX];
	uint64_t ready_at, last, first = 0, max_gap = 0, end;
	unsigned int pings = 0, status_msgs = 0;
	struct seen w = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct harness h;

	tmpdir_setup();
	tmp_path(sock, sizeof(sock), "dirtyd.sock");
	tmp_path(conf, sizeof(conf), "dirtyd.conf");
	write_config(conf, sock, NULL);
	daemon_init(&h, dirtyd, conf, sock, NULL, NULL, &w, WATCHDOG_USEC);

	if (harness_start(&h) != 0) {
		check(false, "READY=1 within %d ms", READY_TIMEOUT_MS);
		wait_exit(&h, 0);
		daemon_fini(&h);
		return 1;
	}
	pthread_mutex_lock(&w.lock);
	ready_at = w.ready_at;
	pthread_mutex_unlock(&w.lock);
	check(true, "READY=1");
	check(hello(sock, 2000), "the socket answers HELLO once READY=1");

	/* Watch for 3 s: WATCHDOG=1 and STATUS=. */
	end = ready_at + 3000;
	while (now_ms() < end)
		usleep(10000);
	pthread_mutex_lock(&w.lock);
	last = ready_at;
	for (unsigned int i = 0; i < w.nwatchdog && w.watchdog[i] <= end;
	     i++) {
		uint64_t at = w.watchdog[i];

		if (!pings)
			first = at;
		else if (at - last > max_gap)
			max_gap = at - last;
		last = at;
		pings++;
	}
	for (unsigned int i = 0; i < w.nstatus; i++)
		status_msgs += w.status[i] <= end;
	pthread_mutex_unlock(&w.lock);
	if (end - last > max_gap)
		max_gap = end - last;
	printf("  WATCHDOG=1: %u in 3 s after READY=1, mean interval %.0f "
	       "ms, longest gap %llu ms (WATCHDOG_USEC %llu ms)\n", pings,
	       pings > 1 ? (double)(last - first) / (pings - 1) : 0.0,
	       (unsigned long long)max_gap,
	       (unsigned long long)(WATCHDOG_USEC / 1000));
	check(pings >= 2, "at least 2 WATCHDOG=1 within 3 s (%u)", pings);
	/* what dirtyd arms, not how punctually a shared machine runs it (a
	 * gap is a scheduling delay: printed above, never asserted) */
	{
		char want[96];

		snprintf(want, sizeof(want), "watchdog: WATCHDOG=1 every %llu us",
			 (unsigned long long)(WATCHDOG_USEC / 2));
		check(harness_log_has(&h, want, false),
		      "dirtyd pings at half the interval (its log: \"%s\")",
		      want);
	}
	check(status_msgs >= 1, "STATUS= sent (%u in 3 s)", status_msgs);

	/* SIGHUP: a reload, announced as systemd 253's notify-reload wants */
	check(kill(h.pid, SIGHUP) == 0, "SIGHUP sent");
	end = now_ms() + 5000;
	for (;;) {
		bool done;

		pthread_mutex_lock(&w.lock);
		done = w.reloaded_at != 0;
		pthread_mutex_unlock(&w.lock);
		if (done || now_ms() > end)
			break;
		usleep(10000);
	}
	pthread_mutex_lock(&w.lock);
	check(w.reloading_at, "RELOADING=1 after SIGHUP");
	check(w.reload_usec, "MONOTONIC_USEC= with RELOADING=1");
	check(w.reloaded_at >= w.reloading_at && w.reloaded_at,
	      "READY=1 after RELOADING=1");
	pthread_mutex_unlock(&w.lock);
	check(hello(sock, 2000), "the socket answers HELLO after the reload");
	stop_daemon(&h);
	daemon_fini(&h);
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
	char how[64];
	struct harness h, h2;
	struct group *gr;
	struct stat st = { 0 };
	gid_t gid = getgid();
	unsigned int n;
	int status, r;

	tmpdir_setup();
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

	daemon_init(&h, dirtyd, conf, sock, NULL, NULL, NULL, 0);
	if (harness_start(&h) != 0) {
		check(false, "READY=1 within %d ms", READY_TIMEOUT_MS);
		wait_exit(&h, 0);
		daemon_fini(&h);
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
	daemon_init(&h2, dirtyd, conf, sock, NULL, NULL, NULL, 0);
	h2.start_ms = EXIT_TIMEOUT_MS;
	r = harness_start(&h2);
	status = r == -ECHILD ? h2.wstatus : wait_exit(&h2, 0);
	describe_status(how, sizeof(how), status);
	check(exited_nonzero(status),
	      "a second dirtyd on a socket in use fails (%s)", how);
	daemon_fini(&h2);
	check(hello(sock, 5000), "the first dirtyd still answers HELLO");

	/* No WATCHDOG_USEC: no WATCHDOG=1 (counted since start). */
	usleep(1000000);
	n = harness_counts(&h).watchdogs;
	check(n == 0, "no WATCHDOG=1 without WATCHDOG_USEC (%u)", n);
	stop_daemon(&h);

	/* A stale socket (nobody listening) is replaced. */
	make_stale_socket(sock);
	check(harness_start(&h) == 0,
	      "READY=1 with a stale socket at the path");
	check(hello(sock, 5000), "the stale socket was replaced");
	stop_daemon(&h);
	daemon_fini(&h);
	return failures ? 1 : 0;
}

static int test_example(const char *dirtyd, const char *example)
{
	char sock[PATH_MAX], set_sock[PATH_MAX + 32];
	const char *const args[] = { "--set", set_sock,
				     "--set", "daemon.socket_group=",
				     "--set", "daemon.admin_group=",
				     NULL };
	struct harness h;

	tmpdir_setup();
	tmp_path(sock, sizeof(sock), "dirtyd.sock");
	snprintf(set_sock, sizeof(set_sock), "daemon.socket=%s", sock);
	daemon_init(&h, dirtyd, example, sock, NULL, args, NULL, 0);
	if (harness_start(&h) != 0) {
		check(false, "READY=1 with the example configuration");
		wait_exit(&h, 0);
		daemon_fini(&h);
		return 1;
	}
	check(true, "READY=1 with the example configuration");
	check(hello(sock, 5000), "the socket answers HELLO");
	stop_daemon(&h);
	daemon_fini(&h);
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
	umask(022);	/* systemd's UMask= default, for every dirtyd here */
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
