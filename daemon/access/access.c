// SPDX-License-Identifier: MIT
/*
 * Owners and administrators.  Owns: who may see and change a domain (its
 * owner, root, the admin group; another uid's domain is never revealed).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/access/access.h"
#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"

void access_init(struct server *srv)
{
	srv->has_admin_gid = srv->cfg->admin_gid != (gid_t)-1;
	srv->admin_gid = srv->cfg->admin_gid;
}

int access_peer_groups(int fd, gid_t **out)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;

	*out = NULL;
	for (;;) {
		gid_t *g = realloc(groups, len ? len : sizeof(gid_t));

		if (!g) {
			free(groups);
			return -ENOMEM;
		}
		groups = g;
		/* ERANGE: len is now what it takes */
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
			break;
		if (errno != ERANGE) {
			free(groups);
			return -errno;
		}
	}
	*out = groups;
	return (int)(len / sizeof(gid_t));
}

bool access_member(gid_t gid, gid_t primary, const gid_t *groups, size_t n)
{
	if (gid == primary)
		return true;
	for (size_t i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

bool access_is_admin(const struct server *srv, const struct session *s)
{
	if (s->uid == 0)
		return true;
	return srv->has_admin_gid &&
	       access_member(srv->admin_gid, s->gid, s->groups, s->ngroups);
}

bool access_may_see(const struct session *s, const struct domain *d)
{
	return s->admin || d->owner == s->uid;
}
