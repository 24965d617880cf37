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
#include <stdlib.h>
#include <string.h>

#include "kernel/iommufd/iommufd_impl.h"

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
		rc = ib->provider->detach(ib, dev);
	ib->provider->unbind(ib, dev);
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

	rc = ib->provider->bind(ib, name, &dev);
	if (rc)
		return rc;

	pthread_mutex_lock(&ib->lock);
	rc = dev_insert(ib, &dev);
	pthread_mutex_unlock(&ib->lock);
	if (rc) {
		ib->provider->unbind(ib, &dev);
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
		rc = ib->provider->attach(ib, dev, &pt_id);
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
		rc = ib->provider->detach(ib, dev);
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

	if (!ib->provider->dma_write)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ib->lock);
	dev = dev_find(ib, dev_id);
	if (dev)
		rc = ib->provider->dma_write(ib, dev, iova, length);
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
