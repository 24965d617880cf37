/* SPDX-License-Identifier: MIT */
/*
 * Who may do what.  A domain belongs to the uid that created it.  root and
 * members of the configured admin group (as SO_PEERGROUPS reports them at
 * connect time) may see and administer every domain; anyone else does not
 * see domains they do not own: those get ENOENT, never EPERM, so that
 * their existence does not leak.  Which devices a client may claim is
 * acl.h's.
 *
 * Group membership is decided here, once, for both: the connecting
 * process's primary gid (SO_PEERCRED) or any of its supplementary groups
 * (SO_PEERGROUPS), as they were when it connected.
 */
#ifndef DIRTYD_ACCESS_H
#define DIRTYD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct domain;
struct server;
struct session;

/** access_init() - the admin group as config_check() resolved it (both
 *  --check-config and a start: nothing is looked up again). */
void access_init(struct server *srv);
/** access_peer_groups() - the supplementary groups of the connected socket
 *  @fd's peer, malloc'ed into *@out (free() it); the count or -errno. */
int access_peer_groups(int fd, gid_t **out);
/** access_member() - whether @gid is the peer's @primary gid or one of its
 *  @n supplementary @groups. */
bool access_member(gid_t gid, gid_t primary, const gid_t *groups, size_t n);
/** access_is_admin() - root, or a member of the admin group. */
bool access_is_admin(const struct server *srv, const struct session *s);
/** access_may_see() - whether @s may see and administer @d. */
bool access_may_see(const struct session *s, const struct domain *d);

#endif
