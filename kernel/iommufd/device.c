// SPDX-License-Identifier: MIT
/*
 * The device table: dev_id -> fd, name, attached page table, for every
 * device bound to this backend.  Providers (vfio_cdev.c) do the kernel
 * work; this file keeps the table consistent under ib->lock.  A device is
 * bound before it enters the table, and leaves the table before it is
 * unbound, so no other thread ever sees a half-built or half-freed row.
 * Attach and detach hold the lock across their ioctl so that the fd they
 * use cannot be closed under them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/backend_impl.h"
#include "kernel/iommufd/iommufd_impl.h"
#include "kernel/iommufd/sysfs.h"

/*
 * The provider that binds @name: the backend's, except that a VFIO cdev
 * name binds through the VFIO cdev provider where the backend's provider
 * takes VFIO devices too (mock.c: a real VFIO device, the VM's mtty, in the
 * same iommufd as the mock IOMMU's devices).
 */
static const struct iommufd_dev_provider *
iommufd_dev_provider_of(const struct iommufd_backend *ib, const char *name)
{
	if (ib->provider->vfio_cdevs_too && iommufd_is_vfio_cdev_name(name))
		return &vfio_cdev_provider;
	return ib->provider;
}

/* Called with ib->lock held. */
static struct iommufd_dev *dev_find(struct iommufd_backend *ib,
				    uint32_t dev_id)
{
	size_t i;

	for (i = 0; i < ib->n_devs; i++)
		if (ib->devs[i].dev_id == dev_id)
			return &ib->devs[i];
	return NULL;
}

/* Called with ib->lock held. */
static int dev_insert(struct iommufd_backend *ib,
		      const struct iommufd_dev *dev)
{
	if (ib->n_devs == ib->cap_devs) {
		size_t cap = ib->cap_devs ? 2 * ib->cap_devs : 8;
		struct iommufd_dev *devs;

		devs = reallocarray(ib->devs, cap, sizeof(*devs));
		if (!devs)
			return -ENOMEM;
		ib->devs = devs;
		ib->cap_devs = cap;
	}
	ib->devs[ib->n_devs++] = *dev;
	return 0;
}

/* Called with ib->lock held; @dev points into the table. */
static void dev_remove(struct iommufd_backend *ib, struct iommufd_dev *dev)
{
	*dev = ib->devs[--ib->n_devs];
}

/* Detach if attached, then unbind; returns the detach error, if any. */
static int dev_release(struct iommufd_backend *ib, struct iommufd_dev *dev)
{
	int rc = 0;

	if (dev->attached)
		rc = dev->provider->detach(ib, dev);
	dev->provider->unbind(ib, dev);
	return rc;
}

int iommufd_dev_enumerate(struct backend *b,
			  struct backend_device_name *names, size_t max)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);

	if (!names && max)
		return -EINVAL;
	return ib->provider->enumerate(ib, names, max);
}

int iommufd_dev_canonical(struct backend *b, const char *name, char *out,
			  size_t len)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);

	if (!ib->provider->canonical)
		return backend_device_name_canonical(name, out, len);
	return ib->provider->canonical(ib, name, out, len);
}

int iommufd_dev_bind(struct backend *b, const char *name,
		     uint32_t *out_dev_id)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev dev = { .fd = -1 };
	size_t len;
	int rc;

	if (!name || !out_dev_id)
		return -EINVAL;
	len = strlen(name);
	if (len >= sizeof(dev.name))
		return -ENAMETOOLONG;
	memcpy(dev.name, name, len + 1);

	dev.provider = iommufd_dev_provider_of(ib, name);
	rc = dev.provider->bind(ib, name, &dev);
	if (rc)
		return rc;

	pthread_mutex_lock(&ib->lock);
	rc = dev_insert(ib, &dev);
	pthread_mutex_unlock(&ib->lock);
	if (rc) {
		dev.provider->unbind(ib, &dev);
		return rc;
	}
	*out_dev_id = dev.dev_id;
	return 0;
}

/*
 * The device is unbound whatever happens; a failed detach (which closing
 * the fd redoes in the kernel anyway) is still reported.
 */
int iommufd_dev_unbind(struct backend *b, uint32_t dev_id)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *row, dev;

	pthread_mutex_lock(&ib->lock);
	row = dev_find(ib, dev_id);
	if (!row) {
		pthread_mutex_unlock(&ib->lock);
		return -ENOENT;
	}
	dev = *row;
	dev_remove(ib, row);
	pthread_mutex_unlock(&ib->lock);

	return dev_release(ib, &dev);
}

int iommufd_dev_attach(struct backend *b, uint32_t dev_id, uint32_t pt_id)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *dev;
	int rc = -ENOENT;

	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev) {
		rc = dev->provider->attach(ib, dev, &pt_id);
		if (!rc) {
			dev->attached = true;
			dev->pt_id = pt_id;
		}
	}
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

int iommufd_dev_detach(struct backend *b, uint32_t dev_id)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *dev;
	int rc = -ENOENT;

	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev) {
		rc = dev->provider->detach(ib, dev);
		if (!rc) {
			dev->attached = false;
			dev->pt_id = 0;
		}
	}
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

int iommufd_dev_fd(struct backend *b, uint32_t dev_id)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *dev;
	int rc = -ENOENT;

	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev)
		rc = dev->fd >= 0 ? dev->fd : -EOPNOTSUPP;
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

int iommufd_dev_dma_write(struct backend *b, uint32_t dev_id, uint64_t iova,
			  uint64_t length)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *dev;
	int rc = -ENOENT;

	if (!ib->provider->dma_write)	/* none of its devices can */
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev)
		rc = dev->provider->dma_write ?
		     dev->provider->dma_write(ib, dev, iova, length) :
		     -EOPNOTSUPP;
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

/*
 * The lock is held across the ioctl, as for attach, so that the descriptor
 * cannot be closed under it.
 */
int iommufd_dev_feature(struct backend *b, uint32_t dev_id, uint32_t flags,
			void *data, size_t len)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommufd_dev *dev;
	int rc = -ENOENT;

	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev)
		rc = dev->provider->feature ?
		     dev->provider->feature(ib, dev, flags, data, len) :
		     -EOPNOTSUPP;
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

/* For close: no other thread may use @ib any more. */
void iommufd_dev_unbind_all(struct iommufd_backend *ib)
{
	size_t i;

	for (i = 0; i < ib->n_devs; i++)
		dev_release(ib, &ib->devs[i]);
	free(ib->devs);
	ib->devs = NULL;
	ib->n_devs = 0;
	ib->cap_devs = 0;
}

/* ---------------------------------------------------------- keep, adopt */

/*
 * The device table in backend_keep()'s blob: a header, then one row per
 * bound device.  A device's fd goes to the store as "iommufd-dev<dev_id>",
 * so adoption pairs rows with descriptors whatever order they come in.
 */
#define IOMMUFD_KEPT_MAGIC "dirtydI"
#define IOMMUFD_KEPT_VERSION 1
#define IOMMUFD_KEPT_DEV_FMT "iommufd-dev%u"

struct iommufd_kept_hdr {
	char magic[8];
	uint32_t version;
	uint32_t n_devs;
	char provider[16];
};

struct iommufd_kept_dev {
	char name[BACKEND_NAME_MAX];
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t mock_stdev_id;
	uint32_t mock_park_ioas_id;
	uint8_t attached;
	uint8_t has_fd;
	uint8_t vfio;		/* bound by the VFIO cdev provider */
	uint8_t reserved[5];
};

int iommufd_dev_keep(struct iommufd_backend *ib, struct backend_kept_fd *fds,
		     size_t max_fds, void *blob, size_t *blob_len)
{
	struct iommufd_kept_hdr hdr = {
		.magic = IOMMUFD_KEPT_MAGIC,
		.version = IOMMUFD_KEPT_VERSION,
	};
	size_t i, n_fds = 1, need;
	int rc = 0;

	pthread_mutex_lock(&ib->lock);
	need = sizeof(hdr) + ib->n_devs * sizeof(struct iommufd_kept_dev);
	for (i = 0; i < ib->n_devs; i++)
		n_fds += ib->devs[i].fd >= 0;
	if (n_fds > max_fds || need > *blob_len ||
	    strlen(ib->provider->name) >= sizeof(hdr.provider)) {
		rc = -ENOSPC;
		goto out_unlock;
	}
	strcpy(hdr.provider, ib->provider->name);
	hdr.n_devs = (uint32_t)ib->n_devs;
	memcpy(blob, &hdr, sizeof(hdr));
	fds[0] = (struct backend_kept_fd){ .name = "iommufd", .fd = ib->fd };
	n_fds = 1;
	for (i = 0; i < ib->n_devs; i++) {
		const struct iommufd_dev *dev = &ib->devs[i];
		struct iommufd_kept_dev row = {
			.dev_id = dev->dev_id,
			.pt_id = dev->pt_id,
			.mock_stdev_id = dev->mock.stdev_id,
			.mock_park_ioas_id = dev->mock.park_ioas_id,
			.attached = dev->attached,
			.has_fd = dev->fd >= 0,
			.vfio = dev->provider == &vfio_cdev_provider,
		};

		memcpy(row.name, dev->name, sizeof(row.name));
		memcpy((char *)blob + sizeof(hdr) + i * sizeof(row), &row,
		       sizeof(row));
		if (dev->fd < 0)
			continue;
		fds[n_fds] = (struct backend_kept_fd){ .fd = dev->fd };
		snprintf(fds[n_fds].name, sizeof(fds[n_fds].name),
			 IOMMUFD_KEPT_DEV_FMT, dev->dev_id);
		n_fds++;
	}
	*blob_len = need;
	rc = (int)n_fds;
out_unlock:
	pthread_mutex_unlock(&ib->lock);
	return rc;
}

/* The kept descriptor called @name, taken out of @fds (-1 if none). */
static int kept_take(int *fds, const struct backend_kept_fd *kept,
		     size_t n_kept, const char *name)
{
	size_t i;
	int fd;

	for (i = 0; i < n_kept; i++) {
		if (fds[i] >= 0 && !strcmp(kept[i].name, name)) {
			fd = fds[i];
			fds[i] = -1;
			return fd;
		}
	}
	return -1;
}

/*
 * Rebuild the table from a kept blob and descriptors; ib->fd is the kept
 * iommufd already.  @fds is the kept descriptors not yet taken: those
 * this takes become the devices' (and are -1 in @fds after).  -EINVAL
 * for a blob that is not ours, -EUCLEAN for a device the kernel no longer
 * has (or whose fd was not kept).
 */
int iommufd_dev_adopt(struct iommufd_backend *ib,
		      const struct backend_kept_fd *kept, int *fds,
		      size_t n_kept, const void *blob, size_t blob_len)
{
	struct iommufd_kept_hdr hdr;
	size_t i;
	int rc;

	if (!blob || blob_len < sizeof(hdr))
		return -EINVAL;
	memcpy(&hdr, blob, sizeof(hdr));
	if (memcmp(hdr.magic, IOMMUFD_KEPT_MAGIC, sizeof(hdr.magic)) ||
	    hdr.version != IOMMUFD_KEPT_VERSION ||
	    !memchr(hdr.provider, '\0', sizeof(hdr.provider)) ||
	    strcmp(hdr.provider, ib->provider->name) ||
	    hdr.n_devs > BACKEND_KEEP_MAX_FDS ||
	    blob_len != sizeof(hdr) +
			hdr.n_devs * sizeof(struct iommufd_kept_dev))
		return -EINVAL;

	for (i = 0; i < hdr.n_devs; i++) {
		struct iommufd_kept_dev row;
		struct iommufd_dev dev = { .fd = -1 };
		struct backend_hw_info info;
		char name[BACKEND_NAME_MAX];

		memcpy(&row, (const char *)blob + sizeof(hdr) +
			     i * sizeof(row), sizeof(row));
		if (!memchr(row.name, '\0', sizeof(row.name)))
			return -EINVAL;
		if (row.has_fd) {
			snprintf(name, sizeof(name), IOMMUFD_KEPT_DEV_FMT,
				 row.dev_id);
			dev.fd = kept_take(fds, kept, n_kept, name);
			if (dev.fd < 0)
				return -EUCLEAN;
		}
		dev.provider = row.vfio ? &vfio_cdev_provider : ib->provider;
		dev.dev_id = row.dev_id;
		dev.attached = row.attached;
		dev.pt_id = row.pt_id;
		dev.mock.stdev_id = row.mock_stdev_id;
		dev.mock.park_ioas_id = row.mock_park_ioas_id;
		memcpy(dev.name, row.name, sizeof(dev.name));
		rc = dev_insert(ib, &dev);
		if (rc) {
			if (dev.fd >= 0)
				close(dev.fd);
			return rc;
		}
		/*
		 * The kernel must still have it: IOMMU_GET_HW_INFO.  Not for
		 * a VFIO device, which its open descriptor keeps bound, and
		 * which iommufd does not know as a device when it is
		 * emulated (an mdev such as mtty is an access: ENOENT).
		 */
		if (dev.provider == &vfio_cdev_provider)
			continue;
		rc = ib->base.ops->device_get_hw_info(&ib->base, dev.dev_id,
						      &info);
		if (rc)
			return rc == -ENOENT ? -EUCLEAN : rc;
	}
	return 0;
}

/*
 * READOPT: rows for devices a client held on (backend_open_given()).
 * Every descriptor of @devs is taken: inserted, or closed.
 */
int iommufd_dev_take_given(struct iommufd_backend *ib,
			   const struct backend_given_device *devs, size_t n,
			   uint32_t hwpt_id)
{
	bool has_fds = ib->provider == &vfio_cdev_provider;
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		const struct backend_given_device *g = &devs[i];
		/* its operations are its provider's (a device with a
		 * descriptor is a VFIO cdev, as iommufd_dev_provider_of()
		 * says at a bind) */
		struct iommufd_dev dev = { .fd = g->fd, .dev_id = g->dev_id,
					   .attached = true,
					   .pt_id = hwpt_id,
					   .provider = g->fd >= 0 ?
					   &vfio_cdev_provider :
					   ib->provider };
		struct backend_hw_info info;

		if (!memchr(g->name, '\0', sizeof(g->name)) || !g->name[0]) {
			rc = -EINVAL;
		} else if (has_fds && g->fd < 0) {
			rc = backend_why_set(-EBADF, "no descriptor was given "
					     "for device %s", g->name);
		} else if (!has_fds && g->fd >= 0) {
			rc = backend_why_set(-EBADF, "device %s has no "
					     "descriptor (%s devices have "
					     "none), one was given", g->name,
					     ib->provider->name);
		} else if (has_fds) {
			rc = iommufd_vfio_cdev_fd_check(ib->sysfs_root, g->name,
							g->fd);
			if (rc)
				rc = backend_why_set(-EBADF, "the descriptor "
						     "given for device %s is "
						     "not its VFIO character "
						     "device", g->name);
		}
		if (!rc && iommufd_get_hw_info(ib->fd, g->dev_id, &info))
			rc = backend_why_set(-ENOENT, "the iommufd has no device "
					     "%u (IOMMU_GET_HW_INFO failed)",
					     g->dev_id);
		if (!rc) {
			memcpy(dev.name, g->name, sizeof(dev.name));
			pthread_mutex_lock(&ib->lock);
			rc = dev_insert(ib, &dev);
			pthread_mutex_unlock(&ib->lock);
		}
		if (rc && g->fd >= 0)
			close(g->fd);
	}
	for (; i < n; i++)
		if (devs[i].fd >= 0)
			close(devs[i].fd);
	return rc;
}

/* For leave: close this process's descriptors, unbind nothing. */
void iommufd_dev_leave_all(struct iommufd_backend *ib)
{
	size_t i;

	for (i = 0; i < ib->n_devs; i++)
		if (ib->devs[i].fd >= 0)
			close(ib->devs[i].fd);
	free(ib->devs);
	ib->devs = NULL;
	ib->n_devs = 0;
	ib->cap_devs = 0;
}
