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

#include "kernel/backend.h"

struct error;
struct session;

/** requests_dispatch() - serve the packet @buf (@len bytes) of @s: a
 *  reply, a stream or a deferred reply; never closes the session.  The
 *  @nfds descriptors @fds it carried are taken: READOPT's, the only
 *  request that takes any, or closed (PROTOCOL.md 1). */
void requests_dispatch(struct session *s, const uint8_t *buf, size_t len,
		       int *fds, unsigned int nfds);
/** requests_new_token() - a random non-zero 64-bit value (resume
 *  tokens, leases). */
uint64_t requests_new_token(void);
/** requests_claim_check() - may @s claim the device it calls @given
 *  ([devices] ACL, not in a domain)?  Its name dirtyd knows into @name;
 *  -errno with the reason in @e. */
int requests_claim_check(struct session *s, const char *given,
			 char name[BACKEND_NAME_MAX], struct error *e);

#endif
