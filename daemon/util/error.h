/* SPDX-License-Identifier: MIT */
/*
 * Owns: an error's reason reaches the client that caused it.
 *
 * An error and its reason, passed explicitly (as QEMU's Error **): the
 * function that fails fills the caller's struct error, and returns the
 * same negative errno.  The caller that answers the client reads it; no
 * text survives from one request into the next, and which text a client
 * gets does not depend on the order of calls.
 *
 *	int f(..., struct error *e)
 *	{
 *		if (busy)
 *			return error_set(e, -EBUSY, "device %s is in use", n);
 *	}
 *
 * @e may be NULL where nobody wants the text (a restore).  A caller that
 * says more than its callee did sets @e again: the last reason is the one
 * the client gets.
 */
#ifndef DIRTYD_ERROR_H
#define DIRTYD_ERROR_H

/* The reason's longest text: a PROTO_ERROR's (protocol/proto.h). */
#define ERROR_TEXT_MAX 255

struct error {
	int code;			/* 0: none; else a negative errno */
	char text[ERROR_TEXT_MAX + 1];
};

#define ERROR_INIT {0}

/** error_set() - record @code (negative errno) and its reason in @e (if
 *  not NULL); returns @code. */
int error_set(struct error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** error_text() - @e's reason, or strerror(-@code) if it has none. */
const char *error_text(const struct error *e, int code);
/** error_clear() - forget what @e held. */
void error_clear(struct error *e);

#endif
