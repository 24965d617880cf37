// SPDX-License-Identifier: MIT
/*
 * The VFIO cdev device provider: a device is an open /dev/vfio/devices/vfioN
 * bound to the backend's iommufd (drivers/vfio/device_cdev.c).  Closing the
 * fd unbinds the device in the kernel, detaching it first if need be.
 *
 * And device DMA logging (the backend's dma_log ops): VFIO_DEVICE_FEATURE
 * DMA_LOGGING_START, _REPORT and _STOP on that descriptor
 * (drivers/vfio/vfio_main.c), each returning the kernel's 0 or -errno
 * unchanged: -ENOTTY from a driver without log_ops, -E2BIG above
 * LOG_MAX_RANGES, -EINVAL for unaligned or overlapping ranges, and whatever
 * the driver's log_start says when logging runs already.  The same code
 * path for every driver: the mtty sample in the VM tests, mlx5 and pds on
 * real hosts.
 */
#include <stddef.h>
#include <string.h>
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

/* The largest data of a feature dirtyd uses (DMA_LOGGING_REPORT's). */
#define VFIO_FEATURE_DATA_MAX 32

static int vfio_cdev_feature(const struct iommufd_backend *ib,
			     struct iommufd_dev *dev, uint32_t flags,
			     void *data, size_t len)
{
	/* The header and the data, contiguous, as the kernel reads them. */
	_Alignas(8) unsigned char buf[sizeof(struct vfio_device_feature) +
				      VFIO_FEATURE_DATA_MAX];
	struct vfio_device_feature hdr = {
		.argsz = (uint32_t)(sizeof(hdr) + len),
		.flags = flags,
	};
	int rc;

	if (len > VFIO_FEATURE_DATA_MAX || (len && !data))
		return -EINVAL;
	memcpy(buf, &hdr, sizeof(hdr));
	if (len)
		memcpy(buf + sizeof(hdr), data, len);
	rc = iommufd_ioctl(dev->fd, VFIO_DEVICE_FEATURE, buf);
	if (!rc && len)
		memcpy(data, buf + sizeof(hdr), len);
	return rc;
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
	.feature = vfio_cdev_feature,
};

/* ------------------------------------------------------ DMA logging */

/* The caller's ranges go to the kernel as they are. */
_Static_assert(sizeof(struct backend_dma_log_range) ==
	       sizeof(struct vfio_device_feature_dma_logging_range) &&
	       offsetof(struct backend_dma_log_range, iova) ==
	       offsetof(struct vfio_device_feature_dma_logging_range, iova) &&
	       offsetof(struct backend_dma_log_range, length) ==
	       offsetof(struct vfio_device_feature_dma_logging_range, length),
	       "struct backend_dma_log_range is the kernel's range");

int iommufd_dma_log_probe(struct backend *b, uint32_t dev_id)
{
	return iommufd_dev_feature(b, dev_id, VFIO_DEVICE_FEATURE_PROBE |
				   VFIO_DEVICE_FEATURE_SET |
				   VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				   NULL, 0);
}

int iommufd_dma_log_start(struct backend *b, uint32_t dev_id,
			  uint64_t *page_size,
			  const struct backend_dma_log_range *ranges,
			  uint32_t nranges)
{
	struct vfio_device_feature_dma_logging_control control = {
		.num_ranges = nranges,
		.ranges = (uintptr_t)ranges,
	};
	int rc;

	if (!page_size)
		return -EINVAL;
	control.page_size = *page_size;
	rc = iommufd_dev_feature(b, dev_id, VFIO_DEVICE_FEATURE_SET |
				 VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				 &control, sizeof(control));
	if (!rc)
		*page_size = control.page_size;
	return rc;
}

int iommufd_dma_log_report(struct backend *b, uint32_t dev_id, uint64_t iova,
			   uint64_t length, uint64_t page_size,
			   uint64_t *bitmap)
{
	struct vfio_device_feature_dma_logging_report report = {
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.bitmap = (uintptr_t)bitmap,
	};

	return iommufd_dev_feature(b, dev_id, VFIO_DEVICE_FEATURE_GET |
				   VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
				   &report, sizeof(report));
}

int iommufd_dma_log_stop(struct backend *b, uint32_t dev_id)
{
	return iommufd_dev_feature(b, dev_id, VFIO_DEVICE_FEATURE_SET |
				   VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
				   NULL, 0);
}
