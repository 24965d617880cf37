// SPDX-License-Identifier: MIT
/*
 * /init of the VM tests' initramfs (static): mounts the pseudo file
 * systems, runs every test listed in /etc/dirtyd-vm/tests in order, and
 * powers the machine off.
 *
 * /etc/dirtyd-vm/tests: one test a line, "NAME TIMEOUT_S ARGV...", words
 * separated by single spaces (tests/vm/mkinitramfs.sh writes it).
 *
 * The results go to the second serial port (/dev/ttyS1), which run.sh
 * reads, one record a line, every line starting "DIRTYD-VM ":
 *
 *   DIRTYD-VM BEGIN release=<uname -r> tests=<n> engine=<DIRTYD_VM_ENGINE>
 *   DIRTYD-VM OUT <name> <a line the test printed, stdout and stderr>
 *   DIRTYD-VM RESULT <name> PASS|FAIL status=<exit status|signalN|timeout>
 *             ms=<n>   (on the same line)
 *   DIRTYD-VM SUMMARY passed=<n> failed=<n>
 *
 * The test output is also copied to the console (ttyS0), with the kernel's
 * messages, for a person reading the log.
 *
 * The tests inherit /init's environment, which the kernel fills from the
 * command line's NAME=VALUE words it does not know itself: run.sh passes
 * DIRTYD_VM_ENGINE (the harvest engine mode the guest programs must find)
 * that way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define INIT_TESTS "/etc/dirtyd-vm/tests"
#define INIT_MAX_TESTS 64
#define INIT_MAX_ARGS 32
#define INIT_LINE_MAX 4096

static FILE *results;

static void init_result(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("DIRTYD-VM ", results);
	vfprintf(results, fmt, ap);
	fputc('\n', results);
	fflush(results);
	va_end(ap);
}

static void init_mount(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) && errno != EBUSY)
		fprintf(stderr, "init: mount %s on %s: %s\n", type, dir,
			strerror(errno));
}

static void init_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static FILE *init_results_port(void)
{
	struct termios t;
	int fd;

	fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "init: /dev/ttyS1: %s; results on the "
			"console\n", strerror(errno));
		return stdout;
	}
	if (!tcgetattr(fd, &t)) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fdopen(fd, "w");
}

static uint64_t init_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pass one line of the test's output on, to both ports. */
static void init_line(const char *name, const char *line)
{
	printf("[%s] %s\n", name, line);
	init_result("OUT %s %s", name, line);
}

/*
 * Run one test; returns true if it passed (exit status 0).  Its output is
 * read line by line until it closes the pipe; past @timeout_s it is killed.
 */
static bool init_run(const char *name, unsigned int timeout_s, char **argv)
{
	char buf[INIT_LINE_MAX], status[64];
	uint64_t start = init_now_ms(), deadline;
	size_t used = 0;
	bool timed_out = false;
	int pipefd[2], ws;
	pid_t pid;

	deadline = start + (uint64_t)timeout_s * 1000;
	if (pipe2(pipefd, O_CLOEXEC)) {
		init_result("RESULT %s FAIL status=pipe ms=0", name);
		return false;
	}
	pid = fork();
	if (pid < 0) {
		init_result("RESULT %s FAIL status=fork ms=0", name);
		return false;
	}
	if (!pid) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "init: exec %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);

	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		uint64_t now = init_now_ms();
		ssize_t n;
		char *nl;

		if (now >= deadline) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(pipefd[0], buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			init_line(name, buf);
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
		if (used == sizeof(buf) - 1) {	/* a very long line */
			init_line(name, buf);
			used = 0;
		}
	}
	if (used) {
		buf[used] = '\0';
		init_line(name, buf);
	}
	close(pipefd[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;

	if (timed_out)
		snprintf(status, sizeof(status), "timeout");
	else if (WIFEXITED(ws))
		snprintf(status, sizeof(status), "%d", WEXITSTATUS(ws));
	else
		snprintf(status, sizeof(status), "signal%d", WTERMSIG(ws));
	init_result("RESULT %s %s status=%s ms=%llu", name,
		    !timed_out && WIFEXITED(ws) && !WEXITSTATUS(ws) ?
		    "PASS" : "FAIL", status,
		    (unsigned long long)(init_now_ms() - start));
	return !timed_out && WIFEXITED(ws) && !WEXITSTATUS(ws);
}

static void init_poweroff(void)
{
	sync();
	/*
	 * The guest kernel has no ACPI (kernel/vm/iommufd-test.config), so
	 * RB_POWER_OFF would halt and /init would exit (a panic); qemu runs
	 * with -no-reboot, so a reboot ends it.
	 */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

int main(void)
{
	static char lines[INIT_MAX_TESTS][INIT_LINE_MAX];
	unsigned int ntests = 0, passed = 0, failed = 0, i;
	struct utsname uts;
	FILE *f;

	init_mount("devtmpfs", "/dev", "devtmpfs");
	init_console();
	init_mount("proc", "/proc", "proc");
	init_mount("sysfs", "/sys", "sysfs");
	init_mount("tmpfs", "/tmp", "tmpfs");
	init_mount("tmpfs", "/run", "tmpfs");
	setenv("PATH", "/bin", 1);
	results = init_results_port();

	f = fopen(INIT_TESTS, "r");
	if (f) {
		while (ntests < INIT_MAX_TESTS &&
		       fgets(lines[ntests], INIT_LINE_MAX, f)) {
			lines[ntests][strcspn(lines[ntests], "\n")] = '\0';
			if (lines[ntests][0])
				ntests++;
		}
		fclose(f);
	}
	uname(&uts);
	init_result("BEGIN release=%s tests=%u engine=%s", uts.release, ntests,
		    getenv("DIRTYD_VM_ENGINE") ?: "(unset)");

	for (i = 0; i < ntests; i++) {
		char *argv[INIT_MAX_ARGS + 1], *name, *save, *tmo;
		unsigned int argc = 0;

		name = strtok_r(lines[i], " ", &save);
		tmo = strtok_r(NULL, " ", &save);
		while (argc < INIT_MAX_ARGS &&
		       (argv[argc] = strtok_r(NULL, " ", &save)))
			argc++;
		argv[argc] = NULL;
		if (!name || !tmo || !argc) {
			init_result("RESULT line%u FAIL status=badline ms=0",
				    i + 1);
			failed++;
			continue;
		}
		printf("init: running %s\n", name);
		if (init_run(name, (unsigned int)strtoul(tmo, NULL, 10), argv))
			passed++;
		else
			failed++;
	}
	if (!f) {
		init_result("RESULT tests FAIL status=no-" INIT_TESTS " ms=0");
		failed++;
	}
	init_result("SUMMARY passed=%u failed=%u", passed, failed);
	init_poweroff();
	return 0;
}
