// SPDX-License-Identifier: MIT
/* SCM_RIGHTS: descriptors travel with the packet they belong to; which
 * descriptors of a domain dirtyd hands out (GET_FDS, ADOPT). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "daemon/domain/domain.h"
#include "daemon/server/fdpass.h"
#include "daemon/util/error.h"

int fdpass_dup(int fd, struct error *e)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (r < 0)
		return error_set(e, -errno, "dup failed: %s", strerror(errno));
	return r;
}

int fdpass_domain_fds(struct domain *d, int *fds, unsigned int *index,
		      struct error *e)
{
	struct domain_device *dev;
	unsigned int n = 0, i = 0;
	int fd, r;

	fd = backend_iommufd(d->kctx);
	list_for_each_entry(dev, &d->devices, link)
		index[i++] = 0;
	if (fd < 0)
		return 0;
	r = fds[n++] = fdpass_dup(fd, e);
	i = 0;
	list_for_each_entry(dev, &d->devices, link) {
		if (r < 0)
			break;
		fd = backend_device_fd(d->kctx, dev->dev_id);
		if (fd >= 0) {
			r = fds[n] = fdpass_dup(fd, e);
			index[i] = n++;
		} else if (fd != -EOPNOTSUPP) {
			r = error_set(e, fd, "device %s has no descriptor: "
				      "%s", dev->name, strerror(-fd));
		}
		i++;
	}
	if (r >= 0)
		return (int)n;
	while (n)
		if (fds[--n] >= 0)
			close(fds[n]);
	return r;
}

int fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		unsigned int nfds)
{
	return proto_send_fds(sock, buf, len, fds, nfds, MSG_DONTWAIT);
}
