// SPDX-License-Identifier: MIT
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "hint.h"

void connect_hint(FILE *f, const char *path, int err)
{
	struct stat st;
	struct group *g;

	switch (err) {
	case -EACCES:
	case -EPERM:
		if (stat(path, &st) < 0) {
			fprintf(f, "hint: a directory on the way to %s does "
				"not let you through (its mode).\n", path);
			break;
		}
		g = getgrgid(st.st_gid);
		fprintf(f, "hint: %s has mode %04o and group %s: only its "
			"owner and that group's members may connect.\n",
			path, (unsigned)(st.st_mode & 07777),
			g ? g->gr_name : "(unknown)");
		fprintf(f, "hint: add yourself to the group (usermod -aG %s "
			"USER, then log in again), or ask root; the group is "
			"dirtyd.socket's SocketGroup= (socket_group= of "
			"dirtyd.conf without systemd).\n",
			g ? g->gr_name : "GROUP");
		break;
	case -ENOENT:
		fprintf(f, "hint: no socket at %s: is dirtyd running? "
			"(systemctl status dirtyd.socket dirtyd.service); "
			"--socket or $DIRTYD_SOCKET name another path.\n",
			path);
		break;
	case -ECONNREFUSED:
		fprintf(f, "hint: %s exists but nobody listens on it: dirtyd "
			"is not running (systemctl start dirtyd.socket).\n",
			path);
		break;
	default:
		break;
	}
}
