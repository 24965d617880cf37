/* SPDX-License-Identifier: MIT */
/*
 * Adoption: ADOPT, UNADOPT, READOPT and the lease they give a VMM
 * (adopt.c says what it owns; docs/ADOPTION.md is the contract).
 */
#ifndef DIRTYD_ADOPT_H
#define DIRTYD_ADOPT_H

#include <stdint.h>

struct domain;
struct error;
struct proto_msg;
struct session;

/* The request handlers (requests.c's table).  READOPT takes the
 * descriptors of its packet (s->in_fds): used, or closed. */
int adopt_req_adopt(struct session *s, struct domain *d,
		    const struct proto_msg *m, struct error *e);
int adopt_req_unadopt(struct session *s, struct domain *d,
		      const struct proto_msg *m, struct error *e);
int adopt_req_readopt(struct session *s, struct domain *d,
		      const struct proto_msg *m, struct error *e);

/** adopt_refuse() - -EBUSY with the reason in @e when @d is adopted (a
 *  request @what that would take the VMM's domain or device away). */
int adopt_refuse(struct domain *d, const char *what, struct error *e);
/** adopt_session_closed() - @s goes: the leases it held wait
 *  resume_grace for it, then their orphan check. */
void adopt_session_closed(struct session *s);
/** adopt_session_hello() - @s said HELLO with resume @token: the leases
 *  of that token and uid are its again. */
void adopt_session_hello(struct session *s, uint64_t token);
/** adopt_lease_restored() - @d came back from the store with a lease:
 *  its session is gone until a resume; the orphan check is armed. */
void adopt_lease_restored(struct domain *d);

#endif
