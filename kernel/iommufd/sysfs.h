/* SPDX-License-Identifier: MIT */
/*
 * VFIO device naming and discovery through sysfs, without /dev/iommu.
 *
 * A device is named by its VFIO cdev path (any absolute path, e.g.
 * /dev/vfio/devices/vfio3) or by its PCI address, full (0000:65:00.0) or
 * short (65:00.0, domain 0000), hex digits in either case.  A PCI address
 * resolves through <sysfs_root>/bus/pci/devices/<address>/vfio-dev/vfioN to
 * <vfio_dev_dir>/vfioN.  Both directories are parameters so that tests can
 * point them at a fake tree; the backend passes /sys and /dev/vfio/devices.
 */
#ifndef DIRTYD_KERNEL_IOMMUFD_SYSFS_H
#define DIRTYD_KERNEL_IOMMUFD_SYSFS_H

#include <stddef.h>

#include "kernel/backend.h"

/**
 * iommufd_sysfs_resolve() - the cdev path of the device @name.
 * Writes a NUL-terminated path of at most @len bytes to @path.  Returns 0,
 * -EINVAL for a name that is neither an absolute path nor a PCI address,
 * -ENOENT for a PCI address sysfs does not know, -ENODEV for a PCI device
 * not bound to vfio-pci (no vfio-dev directory), -ENAMETOOLONG if @path is
 * too small, or another negative errno from the file system.  A cdev path
 * is returned as given, without checking that it exists.
 */
int iommufd_sysfs_resolve(const char *sysfs_root, const char *vfio_dev_dir,
			  const char *name, char *path, size_t len);

/**
 * iommufd_sysfs_enumerate() - the devices in @vfio_dev_dir.
 * Lists every vfioN entry of @vfio_dev_dir in numeric order, each by the
 * PCI address sysfs gives it in full form (0000:65:00.0), or by its cdev
 * path (<vfio_dev_dir>/vfioN) when sysfs has no PCI device for it.  Fills
 * up to @max names and returns how many it filled; 0 when @vfio_dev_dir
 * does not exist; -ENAMETOOLONG for a cdev path that does not fit in
 * BACKEND_NAME_MAX; another negative errno from the file system.
 */
int iommufd_sysfs_enumerate(const char *sysfs_root, const char *vfio_dev_dir,
			    struct backend_device_name *names, size_t max);

#endif /* DIRTYD_KERNEL_IOMMUFD_SYSFS_H */
