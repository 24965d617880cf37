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
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;

	if (nfds > FDPASS_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}
