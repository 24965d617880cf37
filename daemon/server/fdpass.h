/* SPDX-License-Identifier: MIT */
/* Sending one packet with descriptors attached (SCM_RIGHTS); the
 * descriptors of a domain that GET_FDS and ADOPT hand out. */
#ifndef DIRTYD_FDPASS_H
#define DIRTYD_FDPASS_H

#include <stddef.h>

struct error;

#include "protocol/packet_io.h"

#define FDPASS_MAX_FDS PROTO_MAX_FDS

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

struct domain;
/**
 * fdpass_domain_fds() - what dirtyd hands out of @d (GET_FDS, ADOPT):
 * copies of its iommufd (@fds[0]) and of each device's descriptor, in
 * the order of d->devices; @index[i] is device i's position in @fds, 0
 * for a device without one (a mock IOMMU device).  Returns how many are
 * in @fds (0: the backend has none, the sim), or -errno with the reason
 * in @e and nothing left open.  @fds and @index have room for
 * FDPASS_MAX_FDS; the caller checked that d->ndevices + 1 fits.
 */
int fdpass_domain_fds(struct domain *d, int *fds, unsigned int *index,
		      struct error *e);

#endif
