/* SPDX-License-Identifier: MIT */
/*
 * VFIO device naming, discovery and opening through sysfs, without
 * /dev/iommu.
 *
 * A device is named as iommufd_sysfs_enumerate() lists it, and only so:
 * by its PCI address, full (0000:65:00.0) or short (65:00.0, domain 0000),
 * hex digits in either case, or by its VFIO cdev name, "vfio" and a
 * decimal number without leading zeros (vfio3).  Never by a path: a name
 * comes from a client of the socket, and dirtyd runs as root.  Anything
 * else is -EINVAL before any file system access.  A PCI address resolves
 * through <sysfs_root>/bus/pci/devices/<address>/vfio-dev/vfioN to the
 * cdev name vfioN; the node opened is <vfio_dev_dir>/vfioN, and only if it
 * is the character device whose major:minor sysfs gives in
 * <sysfs_root>/class/vfio-dev/vfioN/dev.  Both directories are parameters
 * so that tests can point them at a fake tree; the backend passes /sys and
 * /dev/vfio/devices.  Every refusal says why in backend_why().
 */
#ifndef DIRTYD_KERNEL_IOMMUFD_SYSFS_H
#define DIRTYD_KERNEL_IOMMUFD_SYSFS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel/backend.h"

/* "vfio" and at most 10 digits, and the NUL. */
#define IOMMUFD_CDEV_NAME_MAX 16

/**
 * iommufd_device_name_check() - whether @name is a device name at all:
 * a PCI address or a VFIO cdev name, as above.  Touches nothing.  Returns
 * 0 or -EINVAL (with backend_why()).
 */
int iommufd_device_name_check(const char *name);

/**
 * iommufd_sysfs_resolve() - the VFIO cdev name (vfioN) of the device @name.
 * Writes it, NUL-terminated, to @cdev of @len bytes.  Returns 0; -EINVAL
 * for a name that is neither a PCI address nor a cdev name (a path, say),
 * before any file system access; for a PCI address, -ENOENT when sysfs
 * does not know it and -ENODEV when it is not bound to vfio-pci (no
 * vfio-dev child); -ENAMETOOLONG if @cdev is too small; another negative
 * errno from the file system.  A cdev name is returned as given, without
 * checking that it exists: iommufd_vfio_cdev_open() does.
 */
int iommufd_sysfs_resolve(const char *sysfs_root, const char *name,
			  char *cdev, size_t len);

/**
 * iommufd_vfio_cdev_open() - open the VFIO cdev @cdev (a cdev name, vfioN),
 * verified: <vfio_dev_dir>/@cdev, not following a symlink, must be a
 * character device whose st_rdev is the major:minor of
 * <sysfs_root>/class/vfio-dev/@cdev/dev.  Checked before opening (so
 * that nothing else is ever opened for writing) and again with fstat()
 * on the descriptor (so that nothing swapped in between is used).
 * Returns the descriptor (O_RDWR, close-on-exec, blocking), on which no
 * ioctl has run; or -EINVAL for @cdev not a cdev name; -ENOENT when
 * sysfs has no such VFIO device or @vfio_dev_dir no such node; -ENODEV
 * when the node is not that character device (a symlink, a FIFO, a
 * regular file, another device) or sysfs's dev file cannot be read as
 * major:minor; another negative errno from the file system.
 */
int iommufd_vfio_cdev_open(const char *sysfs_root, const char *vfio_dev_dir,
			   const char *cdev);

/**
 * iommufd_vfio_cdev_fd_check() - whether the open descriptor @fd is the
 * VFIO character device of the device @name (as iommufd_sysfs_resolve()
 * takes it): fstat()'s st_rdev against sysfs's major:minor.  No ioctl
 * runs on @fd.  0; -ENODEV (not that device, with backend_why()), or what
 * resolving @name gives.
 */
int iommufd_vfio_cdev_fd_check(const char *sysfs_root, const char *name,
				int fd);

/**
 * iommufd_sysfs_canonical() - the name iommufd_sysfs_enumerate() lists the
 * device @name by: a PCI address in full form (65:00.0 -> 0000:65:00.0),
 * and a cdev name (vfio3) as the PCI address of the device sysfs gives it
 * under, or as it is if none.  Whether a PCI address exists is not
 * checked.  Returns 0; -EINVAL for a name that is neither (before any file
 * system access); -ENAMETOOLONG if @out (@len bytes) is too small; another
 * negative errno from the file system.
 */
int iommufd_sysfs_canonical(const char *sysfs_root, const char *name,
			    char *out, size_t len);

/**
 * iommufd_sysfs_enumerate() - the devices in @vfio_dev_dir.
 * Lists every vfioN entry of @vfio_dev_dir in numeric order, each by the
 * PCI address sysfs gives it in full form (0000:65:00.0), or by its cdev
 * name (vfioN) when sysfs has no PCI device for it.  Fills up to @max
 * names and returns how many it filled; 0 when @vfio_dev_dir does not
 * exist; another negative errno from the file system.
 */
int iommufd_sysfs_enumerate(const char *sysfs_root, const char *vfio_dev_dir,
			    struct backend_device_name *names, size_t max);

#endif /* DIRTYD_KERNEL_IOMMUFD_SYSFS_H */
