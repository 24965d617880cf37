// SPDX-License-Identifier: MIT
/*
 * Device naming and discovery: PCI addresses to VFIO cdevs and back, by
 * reading sysfs.  Each PCI device bound to vfio-pci has one child in the
 * "vfio-dev" class, <sysfs_root>/bus/pci/devices/<address>/vfio-dev/vfioN,
 * whose device node is /dev/vfio/devices/vfioN (Linux >= 6.6,
 * CONFIG_VFIO_DEVICE_CDEV; see drivers/vfio/device_cdev.c), with the
 * major:minor of <sysfs_root>/class/vfio-dev/vfioN/dev.
 *
 * Names come from clients of the socket and dirtyd runs as root: a name
 * is checked to be a PCI address or a cdev name before any file system
 * access, and a node is opened only once it is known to be that VFIO
 * character device (sysfs.h).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kernel/backend_impl.h"
#include "kernel/iommufd/iommufd_impl.h"
#include "kernel/iommufd/sysfs.h"

__attribute__((format(printf, 3, 4)))
static int path_printf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	return (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/*
 * "vfio" and a decimal number as the kernel prints it (vfio%d: no sign,
 * no leading zero, at most INT_MAX): the name of a VFIO cdev.
 */
bool iommufd_is_vfio_cdev_name(const char *s)
{
	unsigned long long v = 0;
	size_t n;

	if (strncmp(s, "vfio", 4))
		return false;
	s += 4;
	for (n = 0; isdigit((unsigned char)s[n]); n++) {
		if (n == 10)
			return false;
		v = v * 10 + (unsigned int)(s[n] - '0');
	}
	return n && !s[n] && (s[0] != '0' || n == 1) && v <= INT_MAX;
}

static int vfio_cdev_filter(const struct dirent *de)
{
	return iommufd_is_vfio_cdev_name(de->d_name);
}

int iommufd_device_name_check(const char *name)
{
	char addr[BACKEND_PCI_ADDR_LEN];

	if (!name)
		return -EINVAL;
	if (iommufd_is_vfio_cdev_name(name) ||
	    !backend_pci_addr_parse(name, addr))
		return 0;
	if (strchr(name, '/'))
		return backend_why_set(-EINVAL, "a device is not named by a "
				       "path: name it as dirtyd lists it, by "
				       "its PCI address (0000:65:00.0 or "
				       "65:00.0) or VFIO cdev name (vfio3)");
	return backend_why_set(-EINVAL, "not a device name: name a device as "
			       "dirtyd lists it, by its PCI address "
			       "(0000:65:00.0 or 65:00.0) or VFIO cdev name "
			       "(vfio3)");
}

/* The vfioN child of the PCI device at @pci_dir; -ENODEV if none. */
static int pci_dev_vfio_cdev(const char *pci_dir, char *cdev, size_t len)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc;

	rc = path_printf(dir, sizeof(dir), "%s/vfio-dev", pci_dir);
	if (rc)
		return rc;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ENODEV : -errno;
	rc = -ENODEV;
	while ((de = readdir(d))) {
		if (iommufd_is_vfio_cdev_name(de->d_name)) {
			rc = path_printf(cdev, len, "%s", de->d_name);
			break;
		}
	}
	closedir(d);
	return rc;
}

int iommufd_sysfs_resolve(const char *sysfs_root, const char *name,
			  char *cdev, size_t len)
{
	char addr[BACKEND_PCI_ADDR_LEN], pci_dir[PATH_MAX];
	struct stat st;
	int rc;

	if (!sysfs_root || !cdev || !len)
		return -EINVAL;
	/* Nothing below touches the file system with a name not checked. */
	rc = iommufd_device_name_check(name);
	if (rc)
		return rc;
	if (iommufd_is_vfio_cdev_name(name))
		return path_printf(cdev, len, "%s", name);

	rc = backend_pci_addr_parse(name, addr);
	if (rc)
		return rc;
	rc = path_printf(pci_dir, sizeof(pci_dir), "%s/bus/pci/devices/%s",
			 sysfs_root, addr);
	if (rc)
		return rc;
	if (stat(pci_dir, &st)) {
		if (errno == ENOENT)
			return backend_why_set(-ENOENT, "sysfs has no PCI "
					       "device %s", addr);
		return -errno;
	}
	rc = pci_dev_vfio_cdev(pci_dir, cdev, len);
	if (rc == -ENODEV)
		return backend_why_set(rc, "PCI device %s is not bound to "
				       "vfio-pci (it has no VFIO cdev)", addr);
	return rc;
}

/* Reads "major:minor\n" as sysfs prints a dev_t. */
static int devt_parse(const char *s, dev_t *devt)
{
	unsigned long maj, min;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	maj = strtoul(s, &end, 10);
	if (errno || *end != ':' || !isdigit((unsigned char)end[1]))
		return -EINVAL;
	min = strtoul(end + 1, &end, 10);
	if (errno || (*end != '\n' && *end) || (*end && end[1]) ||
	    maj > UINT_MAX || min > UINT_MAX)
		return -EINVAL;
	*devt = makedev((unsigned int)maj, (unsigned int)min);
	return 0;
}

/* The major:minor of VFIO cdev @cdev: <sysfs_root>/class/vfio-dev/@cdev/dev. */
static int vfio_cdev_devt(const char *sysfs_root, const char *cdev,
			  dev_t *devt)
{
	char path[PATH_MAX], buf[32];
	ssize_t n;
	int fd, rc;

	rc = path_printf(path, sizeof(path), "%s/class/vfio-dev/%s/dev",
			 sysfs_root, cdev);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return backend_why_set(-ENOENT, "sysfs has no VFIO "
					       "device %s", cdev);
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	buf[n] = '\0';
	if (devt_parse(buf, devt))
		return backend_why_set(-ENODEV, "sysfs gives no device number "
				       "for %s", cdev);
	return 0;
}

static const char *file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFBLK:
		return "a block device";
	default:
		return "not a file";
	}
}

/* -ENODEV unless @st is the character device @devt. */
static int cdev_check(const struct stat *st, dev_t devt, const char *dir,
		      const char *cdev)
{
	if (!S_ISCHR(st->st_mode))
		return backend_why_set(-ENODEV, "%s/%s is %s, not a VFIO "
				       "character device", dir, cdev,
				       file_type(st->st_mode));
	if (st->st_rdev != devt)
		return backend_why_set(-ENODEV, "%s/%s is character device "
				       "%u:%u, not %s (%u:%u in sysfs)", dir,
				       cdev, major(st->st_rdev),
				       minor(st->st_rdev), cdev, major(devt),
				       minor(devt));
	return 0;
}

int iommufd_vfio_cdev_fd_check(const char *sysfs_root, const char *name,
				int fd)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX];
	struct stat st;
	dev_t devt;
	int rc;

	rc = iommufd_sysfs_resolve(sysfs_root, name, cdev, sizeof(cdev));
	if (!rc)
		rc = vfio_cdev_devt(sysfs_root, cdev, &devt);
	if (rc)
		return rc;
	if (fstat(fd, &st))
		return -errno;
	return cdev_check(&st, devt, "the descriptor given for", name);
}

int iommufd_vfio_cdev_open(const char *sysfs_root, const char *vfio_dev_dir,
			   const char *cdev)
{
	struct stat st;
	int dirfd, fd, flags, rc;
	dev_t devt;

	if (!sysfs_root || !vfio_dev_dir || !cdev)
		return -EINVAL;
	/* A cdev name has no '/': openat() below stays in vfio_dev_dir. */
	if (!iommufd_is_vfio_cdev_name(cdev))
		return backend_why_set(-EINVAL, "not a VFIO cdev name (vfioN)");
	rc = vfio_cdev_devt(sysfs_root, cdev, &devt);
	if (rc)
		return rc;

	dirfd = open(vfio_dev_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		if (errno == ENOENT)
			return backend_why_set(-ENOENT, "%s does not exist",
					       vfio_dev_dir);
		return -errno;
	}
	/* Before opening: nothing but that device is ever opened. */
	if (fstatat(dirfd, cdev, &st, AT_SYMLINK_NOFOLLOW)) {
		rc = -errno;
		if (rc == -ENOENT)
			backend_why_set(rc, "%s/%s does not exist",
					vfio_dev_dir, cdev);
		goto out;
	}
	rc = cdev_check(&st, devt, vfio_dev_dir, cdev);
	if (rc)
		goto out;
	fd = openat(dirfd, cdev, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)	/* a symlink since fstatat() */
			rc = backend_why_set(-ENODEV, "%s/%s is a symbolic "
					     "link, not a VFIO character "
					     "device", vfio_dev_dir, cdev);
		goto out;
	}
	/* After: what was opened is what was checked. */
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		goto out;
	}
	rc = cdev_check(&st, devt, vfio_dev_dir, cdev);
	if (rc) {
		close(fd);
		goto out;
	}
	/* The descriptor goes to VMMs (GET_FDS) as it is: blocking. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
		rc = -errno;
		close(fd);
		goto out;
	}
	rc = fd;
out:
	close(dirfd);
	return rc;
}

/* The PCI device whose vfio-dev child is @cdev; -ENOENT if none. */
static int vfio_cdev_pci_addr(const char *sysfs_root, const char *cdev,
			      char *addr, size_t len)
{
	char dir[PATH_MAX], rel[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc;

	rc = path_printf(dir, sizeof(dir), "%s/bus/pci/devices", sysfs_root);
	if (rc)
		return rc;
	d = opendir(dir);
	if (!d)
		return -errno;
	rc = -ENOENT;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (path_printf(rel, sizeof(rel), "%s/vfio-dev/%s",
				de->d_name, cdev))
			continue;
		if (fstatat(dirfd(d), rel, &st, 0))
			continue;
		rc = path_printf(addr, len, "%s", de->d_name);
		break;
	}
	closedir(d);
	return rc;
}

int iommufd_sysfs_canonical(const char *sysfs_root, const char *name,
			     char *out, size_t len)
{
	int rc;

	if (!sysfs_root || !out)
		return -EINVAL;
	rc = iommufd_device_name_check(name);
	if (rc || !iommufd_is_vfio_cdev_name(name))
		return rc ? rc : backend_device_name_canonical(name, out, len);
	/* checked: "vfio" and digits, so no path */
	rc = vfio_cdev_pci_addr(sysfs_root, name, out, len);
	if (rc == -ENOENT)	/* no PCI parent (or no such cdev) */
		rc = path_printf(out, len, "%s", name);
	return rc;
}

int iommufd_sysfs_enumerate(const char *sysfs_root, const char *vfio_dev_dir,
			    struct backend_device_name *names, size_t max)
{
	struct dirent **ents;
	size_t filled = 0;
	int n, i, rc = 0;

	if (!sysfs_root || !vfio_dev_dir || (!names && max))
		return -EINVAL;
	n = scandir(vfio_dev_dir, &ents, vfio_cdev_filter, versionsort);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;

	for (i = 0; i < n && filled < max; i++) {
		const char *cdev = ents[i]->d_name;
		char *name = names[filled].name;

		rc = vfio_cdev_pci_addr(sysfs_root, cdev, name,
					BACKEND_NAME_MAX);
		if (rc == -ENOENT)	/* no PCI parent: its cdev name */
			rc = path_printf(name, BACKEND_NAME_MAX, "%s", cdev);
		if (rc)
			break;
		filled++;
	}

	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc ? rc : (int)filled;
}
