// SPDX-License-Identifier: MIT
/*
 * The VFIO cdev device provider: a device is an open /dev/vfio/devices/vfioN
 * bound to the backend's iommufd (drivers/vfio/device_cdev.c).  Closing the
 * fd unbinds the device in the kernel, detaching it first if need be.
 */
#include <unistd.h>

#include "kernel/iommufd/iommufd_impl.h"
#include "kernel/iommufd/sysfs.h"
#include "kernel/uapi/vfio.h"

static int vfio_device_bind_iommufd(int devfd, int iommufd,
				    uint32_t *out_dev_id)
{
	struct vfio_device_bind_iommufd cmd = {
		.argsz = sizeof(cmd),
		.iommufd = iommufd,
	};
	int rc;

	rc = iommufd_ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &cmd);
	if (!rc)
		*out_dev_id = cmd.out_devid;
	return rc;
}

static int vfio_device_attach_iommufd_pt(int devfd, uint32_t *pt_id)
{
	struct vfio_device_attach_iommufd_pt cmd = {
		.argsz = sizeof(cmd),
		.pt_id = *pt_id,
	};
	int rc;

	rc = iommufd_ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
	if (!rc)
		*pt_id = cmd.pt_id;
	return rc;
}

static int vfio_device_detach_iommufd_pt(int devfd)
{
	struct vfio_device_detach_iommufd_pt cmd = {
		.argsz = sizeof(cmd),
	};

	return iommufd_ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &cmd);
}

static int vfio_cdev_enumerate(const struct iommufd_backend *ib,
			       struct backend_device_name *names, size_t max)
{
	return iommufd_sysfs_enumerate(ib->sysfs_root, ib->vfio_dev_dir,
				       names, max);
}

static int vfio_cdev_canonical(const struct iommufd_backend *ib,
			       const char *name, char *out, size_t len)
{
	return iommufd_sysfs_canonical(ib->sysfs_root, name, out, len);
}

/*
 * @name is a client's: iommufd_sysfs_resolve() refuses anything but a PCI
 * address or a cdev name before touching the file system, and
 * iommufd_vfio_cdev_open() opens nothing but that VFIO character device;
 * only then does an ioctl run on the descriptor.
 */
static int vfio_cdev_bind(const struct iommufd_backend *ib, const char *name,
			  struct iommufd_dev *dev)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX];
	int fd, rc;

	rc = iommufd_sysfs_resolve(ib->sysfs_root, name, cdev, sizeof(cdev));
	if (rc)
		return rc;
	fd = iommufd_vfio_cdev_open(ib->sysfs_root, ib->vfio_dev_dir, cdev);
	if (fd < 0)
		return fd;
	rc = vfio_device_bind_iommufd(fd, ib->fd, &dev->dev_id);
	if (rc) {
		close(fd);
		return rc;
	}
	dev->fd = fd;
	return 0;
}

static int vfio_cdev_attach(const struct iommufd_backend *ib,
			    struct iommufd_dev *dev, uint32_t *pt_id)
{
	return vfio_device_attach_iommufd_pt(dev->fd, pt_id);
}

static int vfio_cdev_detach(const struct iommufd_backend *ib,
			    struct iommufd_dev *dev)
{
	return vfio_device_detach_iommufd_pt(dev->fd);
}

static void vfio_cdev_unbind(const struct iommufd_backend *ib,
			     struct iommufd_dev *dev)
{
	close(dev->fd);
	dev->fd = -1;
}

const struct iommufd_dev_provider vfio_cdev_provider = {
	.name = "vfio",
	.enumerate = vfio_cdev_enumerate,
	.canonical = vfio_cdev_canonical,
	.bind = vfio_cdev_bind,
	.attach = vfio_cdev_attach,
	.detach = vfio_cdev_detach,
	.unbind = vfio_cdev_unbind,
	/* .dma_write: a real device's DMA is not ours to trigger. */
};
