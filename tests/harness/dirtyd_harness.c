// SPDX-License-Identifier: MIT
/*
 * dirtyd-harness - tests/harness for a test written in another language
 * (the Python suites, tests/conformance/conformance.py's Daemon): starts
 * dirtyd as the C tests do and takes commands on stdin, one a line,
 * answering each with one line on stdout.
 *
 *   dirtyd-harness --dirtyd PATH --config FILE --socket PATH --log FILE
 *                  [--activate] [--store] [--no-notify] [--start-ms N]
 *
 * The configuration is used as is (it names the socket, given again with
 * --socket); dirtyd's output goes to the log, truncated first.
 * --no-notify: no $NOTIFY_SOCKET, dirtyd as started by hand (no store);
 * ready once the socket accepts a connection.  At once
 * the first start, then, per command:
 *
 *   start          ->  "ready PID", or "exit RC" if dirtyd ended first,
 *                      or "error TEXT" (no READY=1 in time: killed)
 *   status         ->  "running PID", or "exit RC"
 *   kill SIGNUM    ->  "exit RC" (sent, reaped)
 *   stop [MS]      ->  "exit RC" (SIGTERM; SIGKILL after MS, 20000 by
 *                      default: then "exit timeout"); then dirtyd-harness
 *                      exits 0
 *   end of input   ->  as stop, without an answer
 *
 * RC is dirtyd's exit status, or minus the signal that ended it (as
 * Python's returncode).  dirtyd never outlives dirtyd-harness.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: dirtyd-harness --dirtyd PATH --config FILE "
		"--socket PATH --log FILE [--activate] [--store] "
		"[--no-notify] [--start-ms N]\n");
}

/* A wait status as Python's returncode. */
static int returncode(int status)
{
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void say_start(struct harness *h)
{
	int r = harness_start(h);

	if (r == 0)
		printf("ready %d\n", (int)h->pid);
	else if (r == -ECHILD)
		printf("exit %d\n", returncode(h->wstatus));
	else if (r == -ETIMEDOUT)
		printf("error no READY=1 within %u ms (status %d)\n",
		       h->start_ms, returncode(harness_kill(h, SIGKILL)));
	else
		printf("error %s\n", strerror(-r));
	fflush(stdout);
}

static void say_exit(struct harness *h, int status)
{
	if (status == -ETIMEDOUT)
		printf("exit timeout\n");
	else if (status < 0)
		printf("exit %d\n", h->starts ? returncode(h->wstatus) : 0);
	else
		printf("exit %d\n", returncode(status));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dirtyd", required_argument, NULL, 'b' },
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "log", required_argument, NULL, 'l' },
		{ "activate", no_argument, NULL, 'a' },
		{ "store", no_argument, NULL, 'S' },
		{ "no-notify", no_argument, NULL, 'n' },
		{ "start-ms", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct harness_opts o = { 0 };
	static struct harness h;
	char line[256];
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 'b': o.bin = optarg; break;
		case 'c': o.conf = optarg; break;
		case 's': o.sock = optarg; break;
		case 'l': o.log = optarg; break;
		case 'a': o.activate = true; break;
		case 'S': o.store = true; break;
		case 'n': o.no_notify = true; break;
		case 't': o.start_ms = strtoul(optarg, NULL, 0); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.bin || !o.conf || !o.sock || !o.log || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	r = harness_init(&h, &o);
	if (r < 0) {
		fprintf(stderr, "dirtyd-harness: %s\n", strerror(-r));
		return 1;
	}
	say_start(&h);
	while (fgets(line, sizeof(line), stdin)) {
		int status, n;

		if (!strcmp(line, "start\n")) {
			say_start(&h);
		} else if (!strcmp(line, "status\n")) {
			if (h.pid && !harness_exited(&h, &status))
				printf("running %d\n", (int)h.pid);
			else
				say_exit(&h, -ESRCH);
			fflush(stdout);
		} else if (sscanf(line, "kill %d", &n) == 1) {
			say_exit(&h, harness_kill(&h, n));
		} else if (!strncmp(line, "stop", 4)) {
			if (sscanf(line, "stop %d", &n) == 1 && n > 0)
				h.stop_ms = (unsigned int)n;
			status = h.pid ? harness_stop(&h) : -ESRCH;
			say_exit(&h, status);
			harness_fini(&h);
			return 0;
		} else {
			printf("error unknown command\n");
			fflush(stdout);
		}
	}
	harness_fini(&h);
	return 0;
}
