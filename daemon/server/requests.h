/* SPDX-License-Identifier: MIT */
/*
 * Requests: decoding, the checks every request shares (HELLO first, the
 * domain exists and the client may see it), and one handler per type,
 * found in a table indexed by message type.
 */
#ifndef DIRTYD_REQUESTS_H
#define DIRTYD_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

struct session;

/** requests_dispatch() - serve the packet @buf (@len bytes) of @s: a
 *  reply, a stream or a deferred reply; never closes the session. */
void requests_dispatch(struct session *s, const uint8_t *buf, size_t len);

#endif
