/* SPDX-License-Identifier: MIT */
/*
 * The one way dirtyd logs, in the daemon and in its tools.  Owns: logging.
 *
 * Under systemd (stderr connected to the journal, as $JOURNAL_STREAM says)
 * records go to the journal with structured fields (PRIORITY, CODE_FILE,
 * CODE_LINE, CODE_FUNC, ERRNO, SYSLOG_IDENTIFIER); otherwise one line each
 * to stderr.  Code under kernel/ never logs: it returns -errno and its caller
 * logs once, where it decides what to do, in the statement that returns:
 *
 *	if (r < 0)
 *		return log_error_errno(r, "binding %s failed", name);
 */
#ifndef DIRTYD_LOG_H
#define DIRTYD_LOG_H

#include <stdbool.h>
#include <syslog.h>

/** log_setup() - name the program and the most verbose level to emit. */
void log_setup(const char *ident, int max_level);
/** log_set_max_level() - change the verbosity (LOG_ERR .. LOG_DEBUG). */
void log_set_max_level(int max_level);
/** log_to_journal() - true when records go to the journal. */
bool log_to_journal(void);

/**
 * log_internal() - emit one record.  @err is 0 or an errno (either sign);
 * when non-zero its text is appended and ERRNO= is set.  Returns -|err|,
 * so that error paths can `return log_..._errno(r, ...)`.
 */
int log_internal(int level, int err, const char *file, int line,
		 const char *func, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#define log_full_errno(level, err, ...) \
	log_internal(level, err, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(LOG_WARNING, err, __VA_ARGS__)
#define log_error_errno(err, ...) log_full_errno(LOG_ERR, err, __VA_ARGS__)

#endif
