/* SPDX-License-Identifier: MIT */
/* Sending one packet with descriptors attached (SCM_RIGHTS). */
#ifndef DIRTYD_FDPASS_H
#define DIRTYD_FDPASS_H

#include <stddef.h>

struct error;

/* SCM_MAX_FD: the most descriptors one message may carry. */
#define FDPASS_MAX_FDS 253

/**
 * fdpass_send() - send @len bytes of @buf as one packet on @sock, with
 * @nfds descriptors (none when 0), without blocking and without SIGPIPE.
 * Returns 0, -EAGAIN when the socket is full, or another -errno.
 */
int fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		unsigned int nfds);

/** fdpass_dup() - a copy of @fd to hand out: above the standard
 *  descriptors, close-on-exec; -errno with the reason in @e. */
int fdpass_dup(int fd, struct error *e);

#endif
