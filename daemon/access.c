// SPDX-License-Identifier: MIT
/* Owners and administrators. */
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/access.h"
#include "daemon/config.h"
#include "daemon/domain.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/session.h"

int access_init(struct server *srv)
{
	const char *name = srv->cfg->admin_group;
	struct group gr, *res = NULL;
	char buf[16384];
	char *end;
	unsigned long gid;
	int r;

	srv->has_admin_gid = false;
	if (!name)
		return 0;
	gid = strtoul(name, &end, 10);
	if (*name && !*end && gid < UINT32_MAX) {
		srv->admin_gid = (gid_t)gid;
		srv->has_admin_gid = true;
		return 0;
	}
	r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (r || !res)
		return log_error_errno(r ? -r : -ENOENT, "admin_group %s: no "
				       "such group", name);
	srv->admin_gid = res->gr_gid;
	srv->has_admin_gid = true;
	return 0;
}

bool access_peer_is_admin(const struct server *srv, int fd, uid_t uid,
			  gid_t gid)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool admin = false;

	if (uid == 0)
		return true;
	if (!srv->has_admin_gid)
		return false;
	if (gid == srv->admin_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			return false;
		groups = malloc(len);
		if (!groups ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups,
			       &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == srv->admin_gid)
			admin = true;
	if (groups != small)
		free(groups);
	return admin;
}

bool access_may_see(const struct session *s, const struct domain *d)
{
	return s->admin || d->owner == s->uid;
}
