// SPDX-License-Identifier: MIT
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "daemon/util/log.h"

static const char *log_ident = "dirtyd";
static int log_max_level = LOG_INFO;
static bool log_journal;

/* sd-daemon convention: $JOURNAL_STREAM is "dev:ino" of the stream that
 * systemd connected stderr to; only then is stderr the journal. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(const char *ident, int max_level)
{
	if (ident)
		log_ident = ident;
	log_max_level = max_level;
	log_journal = stderr_is_journal();
}

void log_set_max_level(int max_level)
{
	log_max_level = max_level;
}

bool log_to_journal(void)
{
	return log_journal;
}

int log_internal(int level, int err, const char *file, int line,
		 const char *func, const char *fmt, ...)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug",
	};
	char msg[1024];
	va_list ap;
	int e = err < 0 ? -err : err;

	if (level > log_max_level)
		return -e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (log_journal) {
		char errno_field[32] = "ERRNO=0";

		if (e)
			snprintf(errno_field, sizeof(errno_field), "ERRNO=%d", e);
		sd_journal_send("MESSAGE=%s%s%s", msg, e ? ": " : "",
				e ? strerror(e) : "",
				"PRIORITY=%d", level,
				"SYSLOG_IDENTIFIER=%s", log_ident,
				"CODE_FILE=%s", file, "CODE_LINE=%d", line,
				"CODE_FUNC=%s", func, errno_field, NULL);
	} else {
		fprintf(stderr, "%s: %s: %s%s%s\n", log_ident,
			names[level & 7], msg, e ? ": " : "",
			e ? strerror(e) : "");
	}
	return -e;
}
