/* SPDX-License-Identifier: MIT */
/*
 * Who may do what.  A domain belongs to the uid that created it.  root and
 * members of the configured admin group (as SO_PEERGROUPS reports them at
 * connect time) may see and administer every domain; anyone else does not
 * see domains they do not own: those get ENOENT, never EPERM, so that
 * their existence does not leak.
 */
#ifndef DIRTYD_ACCESS_H
#define DIRTYD_ACCESS_H

#include <stdbool.h>
#include <sys/types.h>

struct domain;
struct server;
struct session;

/** access_init() - resolve the admin group's gid; logs on failure. */
int access_init(struct server *srv);
/** access_peer_is_admin() - root, or a member of the admin group, as the
 *  connected socket @fd's peer credentials and groups say. */
bool access_peer_is_admin(const struct server *srv, int fd, uid_t uid,
			  gid_t gid);
/** access_may_see() - whether @s may see and administer @d. */
bool access_may_see(const struct session *s, const struct domain *d);

#endif
