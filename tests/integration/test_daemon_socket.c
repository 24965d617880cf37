// SPDX-License-Identifier: MIT
/*
 * The socket dirtyd binds itself, and the configuration checks that
 * decide whether it starts (dirtyd(8) "The socket", "--check-config"):
 *
 *   dir_not_roots        a socket directory owned by uid 65534: refused
 *                        with a message naming it, its owner and mode;
 *                        nothing is created in it
 *   dir_writable         mode 0777, and 1777 (sticky): refused the same way
 *   symlink_not_followed a symlink at the socket's name pointing at a root
 *                        0600 file, socket_mode 0666 and a group: the file
 *                        keeps its mode, owner, group and content; the
 *                        link is replaced by the socket
 *   group_wraps          socket_group (and admin_group) = 4295032830, a
 *                        gid that would wrap to 65534, and 4294967295:
 *                        refused by --check-config and by a start, with
 *                        the same message
 *   group_unknown        a group name that does not exist: the same
 *   guests_over_quota    guests of one uid beyond max_domains or
 *                        max_mapped (a start would fail creating them):
 *                        the same
 *   normal_start         a directory that does not exist yet: created
 *                        0755; the socket has the configured mode and
 *                        group, answers HELLO, no private directory is
 *                        left, and it is removed at exit
 *
 * Needs root (chown to other uids and groups; CI runs as root).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define NOBODY 65534
#define SOCK_GID 4243
#define WAIT_MS 10000

static char tmp[64];		/* this test's directory */
static struct harness hd;	/* its dirtyd */

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to chown to other users and groups "
			     "(CI runs as root); skipped");
}

static void path(char *buf, size_t size, const char *name)
{
	cr_assert_lt((size_t)snprintf(buf, size, "%s/%s", tmp, name), size);
}

static void setup(void)
{
	strcpy(tmp, "/tmp/dirtyd-socket-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	chmod(tmp, 0755);
}

static void teardown(void)
{
	char cmd[128];

	harness_fini(&hd);
	if (!tmp[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Write the config (socket @sock, sim devices sim0 and sim1, then @body
 * in [daemon]: keys, then maybe sections) for dirtyd (and @opt, if any),
 * its output into @log; not started. */
static void prepare(const char *sock, const char *body, const char *opt,
		    const char *log)
{
	char conf[128];
	const char *const args[] = { opt, NULL };
	struct harness_opts o = { .sock = sock, .log = log, .args = args,
				  .conf = conf };
	FILE *f;
	int r;

	cr_assert_not_null(getenv("DIRTYD_BIN"),
			   "DIRTYD_BIN is not set (CTest sets it)");
	path(conf, sizeof(conf), "dirtyd.conf");
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[daemon]\nbackend = sim\nsocket = %s\nworkers = 1\n"
		"log_level = debug\n[sim]\ndevices = sim0:dirty,sim1:dirty\n"
		"[daemon]\n%s\n", sock, body);
	fclose(f);
	r = harness_init(&hd, &o);
	cr_assert_eq(r, 0, "harness_init: %s", strerror(-r));
}

static void read_log(const char *log, char *out, size_t size)
{
	FILE *f = fopen(log, "r");
	size_t n = 0;

	if (f) {
		n = fread(out, 1, size - 1, f);
		fclose(f);
	}
	out[n] = '\0';
}

/* Start; its exit status; a dirtyd that starts (READY=1) or still runs
 * after HARNESS_START_MS fails the test. */
static int wait_exit(const char *log)
{
	char out[8192];
	int r = harness_start(&hd), status = hd.wstatus;

	if (r == -ECHILD) {
		harness_fini(&hd);
		cr_assert(WIFEXITED(status), "dirtyd died: %#x", status);
		return WEXITSTATUS(status);
	}
	harness_fini(&hd);
	read_log(log, out, sizeof(out));
	if (r == 0)
		cr_assert_fail("dirtyd started (READY=1); its log:\n%s", out);
	cr_assert_fail("dirtyd still runs after %d ms (%s); its log:\n%s",
		       HARNESS_START_MS, strerror(-r), out);
	return -1;
}

/* Run dirtyd to its exit; its status, and its one error line in @err. */
static int run_to_exit(const char *sock, const char *body, const char *opt,
		       char *err, size_t size)
{
	char log[128], out[8192], *line, *save = NULL;
	int st;

	path(log, sizeof(log), opt ? "check.log" : "start.log");
	prepare(sock, body, opt, log);
	st = wait_exit(log);
	read_log(log, out, sizeof(out));
	err[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, ": error: "))
			continue;
		cr_assert_eq(err[0], '\0', "two errors:\n%s\n%s", err, line);
		snprintf(err, size, "%s", line);
	}
	return st;
}

/* Start (READY=1); the socket answers a connect(2) and a HELLO. */
static void start_listening(const char *sock, const char *log)
{
	struct itest_client c;
	char out[8192];
	int status;

	itest_up(&hd);
	for (int i = 0; i < WAIT_MS / 10; i++) {
		if (itest_connect(&hd, &c) == 0) {
			itest_hello(&c, 0, 0, NULL);
			itest_close(&c);
			return;
		}
		if (harness_exited(&hd, &status))
			break;
		sleep_ms(10);
	}
	read_log(log, out, sizeof(out));
	cr_assert_fail("dirtyd does not listen on %s; its log:\n%s", sock,
		       out);
}

static void stop_ok(const char *log)
{
	char out[8192];
	int status = harness_stop(&hd);

	cr_assert_neq(status, -ETIMEDOUT, "dirtyd ignored SIGTERM");
	harness_fini(&hd);
	read_log(log, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "dirtyd exited %#x on SIGTERM; its log:\n%s", status, out);
}

/* Nothing but @keep (or nothing) in @dir: no socket, no private dir. */
static void assert_only(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		cr_assert(keep && !strcmp(e->d_name, keep), "%s/%s is left "
			  "(only %s expected)", dir, e->d_name,
			  keep ? keep : "nothing");
	}
	closedir(d);
}

/* ------------------------------------------------ the socket's directory */

/* A start in @dir (chowned/chmodded by the caller) fails with the message
 * naming it, its owner and its mode. */
static void refused_dir(const char *dir, uid_t uid, mode_t mode)
{
	char sock[128], err[1024], want[512];
	int st;

	cr_assert_eq(chown(dir, uid, 0), 0);
	cr_assert_eq(chmod(dir, mode), 0);
	path(sock, sizeof(sock), "d/dirtyd.sock");
	st = run_to_exit(sock, "", NULL, err, sizeof(err));
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	snprintf(want, sizeof(want), "refusing the socket directory %s: "
		 "owner uid %u, mode %04o; it must be owned by root and not "
		 "writable by group or others", dir, (unsigned int)uid,
		 (unsigned int)mode);
	cr_assert(strstr(err, want), "'%s' not in: %s", want, err);
	assert_only(dir, NULL);
}

Test(socket, dir_not_roots, .init = setup, .fini = teardown)
{
	char dir[128];

	need_root();
	path(dir, sizeof(dir), "d");
	cr_assert_eq(mkdir(dir, 0755), 0);
	refused_dir(dir, NOBODY, 0755);
}

Test(socket, dir_writable, .init = setup, .fini = teardown)
{
	char dir[128];

	need_root();
	path(dir, sizeof(dir), "d");
	cr_assert_eq(mkdir(dir, 0755), 0);
	refused_dir(dir, 0, 0777);
	refused_dir(dir, 0, 0775);
	refused_dir(dir, 0, 01777);
}

/* ------------------------------------------------ a link at the name */

Test(socket, symlink_not_followed, .init = setup, .fini = teardown)
{
	char dir[128], sock[128], secret[128], log[128], body[128], buf[64];
	struct stat before, st;
	FILE *f;

	need_root();
	path(dir, sizeof(dir), "d");
	path(sock, sizeof(sock), "d/dirtyd.sock");
	path(secret, sizeof(secret), "secret");
	path(log, sizeof(log), "dirtyd.log");
	cr_assert_eq(mkdir(dir, 0755), 0);
	f = fopen(secret, "w");
	cr_assert_not_null(f);
	fputs("root's only\n", f);
	fclose(f);
	cr_assert_eq(chown(secret, 0, 0), 0);
	cr_assert_eq(chmod(secret, 0600), 0);
	cr_assert_eq(stat(secret, &before), 0);
	cr_assert_eq(symlink(secret, sock), 0);

	snprintf(body, sizeof(body), "socket_mode = 0666\nsocket_group = %d",
		 NOBODY);
	prepare(sock, body, NULL, log);
	start_listening(sock, log);

	cr_assert_eq(stat(secret, &st), 0);
	cr_assert_eq(st.st_mode, before.st_mode, "the file's mode %o is now "
		     "%o", (unsigned int)before.st_mode,
		     (unsigned int)st.st_mode);
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(st.st_gid, 0, "the file's group is now %u",
		     (unsigned int)st.st_gid);
	cr_assert_eq(st.st_ino, before.st_ino);
	f = fopen(secret, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "root's only\n");

	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode), "%s is not a socket (mode %o)", sock,
		  (unsigned int)st.st_mode);
	cr_assert_eq(st.st_mode & 07777, 0666);
	cr_assert_eq(st.st_gid, NOBODY);
	assert_only(dir, "dirtyd.sock");
	stop_ok(log);
	assert_only(dir, NULL);
	cr_assert_eq(stat(secret, &st), 0, "the link's target is gone");
}

/* ------------------------------------------------ groups */

/* --check-config and a start: both exit 2 with the same error, which
 * contains @want. */
static void refused_both(const char *body, const char *want)
{
	char sock[128], check[1024], start[1024];
	int st;

	path(sock, sizeof(sock), "dirtyd.sock");
	st = run_to_exit(sock, body, "--check-config", check, sizeof(check));
	cr_assert_eq(st, 2, "--check-config with '%s': exit %d: %s", body, st,
		     check);
	cr_assert(strstr(check, want), "'%s' not in: %s", want, check);
	st = run_to_exit(sock, body, NULL, start, sizeof(start));
	cr_assert_eq(st, 2, "a start with '%s': exit %d: %s", body, st,
		     start);
	cr_assert_str_eq(start, check, "a start and --check-config differ");
}

static void assert_config_only(void)
{
	char log[128];

	/* the logs are removed first: only the config may stay */
	path(log, sizeof(log), "check.log");
	unlink(log);
	path(log, sizeof(log), "start.log");
	unlink(log);
	assert_only(tmp, "dirtyd.conf");
}

Test(socket, group_wraps, .init = setup, .fini = teardown)
{
	const char *range = "expected a group name or a gid, 0 .. 4294967294";
	char want[256];

	need_root();
	snprintf(want, sizeof(want), "[daemon] socket_group = '4295032830': "
		 "%s", range);
	refused_both("socket_group = 4295032830", want);
	snprintf(want, sizeof(want), "[daemon] socket_group = '4294967295': "
		 "%s", range);
	refused_both("socket_group = 4294967295", want);
	snprintf(want, sizeof(want), "[daemon] admin_group = '4295032830': "
		 "%s", range);
	refused_both("admin_group = 4295032830", want);
	assert_config_only();
}

Test(socket, group_unknown, .init = setup, .fini = teardown)
{
	need_root();
	cr_assert_null(getgrnam("dirtyd-no-such-group"));
	refused_both("socket_group = dirtyd-no-such-group",
		     "[daemon] socket_group = 'dirtyd-no-such-group': no such "
		     "group");
	refused_both("admin_group = dirtyd-no-such-group",
		     "[daemon] admin_group = 'dirtyd-no-such-group': no such "
		     "group");
	/* not a number, so a name: and no group has it */
	refused_both("socket_group = -1",
		     "[daemon] socket_group = '-1': no such group");
	assert_config_only();
}

/* What a start would refuse creating the guests, --check-config refuses. */
Test(socket, guests_over_quota, .init = setup, .fini = teardown)
{
	need_root();
	refused_both("max_domains = 1\n[guest a]\ndevice = sim0\nsize = 4k\n"
		     "[guest b]\ndevice = sim1\nsize = 4k\n",
		     "[guest b]: uid 0's guests are more than max_domains = 1 "
		     "domains");
	refused_both("max_devices = 1\n[guest a]\ndevice = sim0\nsize = 4k\n"
		     "[guest b]\ndevice = sim1\nsize = 4k\n",
		     "[guest b]: uid 0's guests have more than max_devices = 1 "
		     "devices");
	refused_both("max_mapped = 1g\n[guest a]\ndevice = sim0\n"
		     "size = 2g\n",
		     "[guest a]: uid 0's guests map 2147483648 bytes, more "
		     "than max_mapped = 1073741824");
	assert_config_only();
}

/* ------------------------------------------------ a normal start */

Test(socket, normal_start, .init = setup, .fini = teardown)
{
	char dir[128], sock[128], log[128], body[128], err[1024];
	struct stat st;

	need_root();
	path(dir, sizeof(dir), "run/dirtyd");
	path(sock, sizeof(sock), "run/dirtyd/dirtyd.sock");
	path(log, sizeof(log), "dirtyd.log");
	snprintf(body, sizeof(body), "socket_mode = 0640\nsocket_group = %d\n"
		 "admin_group = %d", SOCK_GID, SOCK_GID);
	/* what starts is what --check-config accepts */
	cr_assert_eq(run_to_exit(sock, body, "--check-config", err,
				 sizeof(err)), 0, "%s", err);
	prepare(sock, body, NULL, log);
	umask(077);	/* ours, inherited: dirtyd must not depend on it */
	start_listening(sock, log);
	umask(022);

	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0755, "created with mode %04o",
		     (unsigned int)(st.st_mode & 07777));
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640, "socket mode %04o",
		     (unsigned int)(st.st_mode & 07777));
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(st.st_gid, SOCK_GID);
	assert_only(dir, "dirtyd.sock");
	stop_ok(log);
	assert_only(dir, NULL);
}
