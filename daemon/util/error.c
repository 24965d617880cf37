// SPDX-License-Identifier: MIT
/* Errors with their reasons (error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon/util/error.h"

int error_set(struct error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return code;
}

const char *error_text(const struct error *e, int code)
{
	return e && e->code && e->text[0] ? e->text : strerror(-code);
}

void error_clear(struct error *e)
{
	if (e) {
		e->code = 0;
		e->text[0] = '\0';
	}
}
