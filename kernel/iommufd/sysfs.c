// SPDX-License-Identifier: MIT
/*
 * Device naming and discovery: PCI addresses to VFIO cdevs and back, by
 * reading sysfs.  Each PCI device bound to vfio-pci has one child in the
 * "vfio-dev" class, <sysfs_root>/bus/pci/devices/<address>/vfio-dev/vfioN,
 * whose device node is /dev/vfio/devices/vfioN (Linux >= 6.6,
 * CONFIG_VFIO_DEVICE_CDEV; see drivers/vfio/device_cdev.c).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernel/iommufd/sysfs.h"

/* "ffffffff:ff:1f.7" and its NUL, rounded up. */
#define PCI_ADDR_LEN 24

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

/* Reads @min to @max hex digits at *@p and advances *@p past them. */
static int hex_field(const char **p, unsigned int min, unsigned int max,
		     unsigned int *val)
{
	unsigned int n = 0, v = 0;

	while (n < max && isxdigit((unsigned char)(*p)[n])) {
		int c = tolower((unsigned char)(*p)[n]);

		v = v * 16 + (unsigned int)(isdigit(c) ? c - '0' :
					    c - 'a' + 10);
		n++;
	}
	if (n < min)
		return -EINVAL;
	*p += n;
	*val = v;
	return 0;
}

/*
 * Parses DDDD:BB:SS.F (4 to 8 domain digits, as sysfs prints a domain
 * with "%04x") or BB:SS.F (domain 0) into the form sysfs uses.
 */
static int pci_addr_parse(const char *s, char out[PCI_ADDR_LEN])
{
	unsigned int domain = 0, bus, slot, fn;
	const char *colon = strchr(s, ':');
	const char *p = s;

	if (colon && strchr(colon + 1, ':')) {
		if (hex_field(&p, 4, 8, &domain) || *p++ != ':')
			return -EINVAL;
	}
	if (hex_field(&p, 2, 2, &bus) || *p++ != ':' ||
	    hex_field(&p, 2, 2, &slot) || *p++ != '.' ||
	    hex_field(&p, 1, 1, &fn) || *p)
		return -EINVAL;
	if (slot > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, PCI_ADDR_LEN, "%04x:%02x:%02x.%x", domain, bus, slot, fn);
	return 0;
}

/* "vfio" followed by a decimal number: the name of a VFIO cdev. */
static bool is_vfio_cdev_name(const char *s)
{
	if (strncmp(s, "vfio", 4) || !s[4])
		return false;
	for (s += 4; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static int vfio_cdev_filter(const struct dirent *de)
{
	return is_vfio_cdev_name(de->d_name);
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
		if (is_vfio_cdev_name(de->d_name)) {
			rc = path_printf(cdev, len, "%s", de->d_name);
			break;
		}
	}
	closedir(d);
	return rc;
}

int iommufd_sysfs_resolve(const char *sysfs_root, const char *vfio_dev_dir,
			  const char *name, char *path, size_t len)
{
	char addr[PCI_ADDR_LEN], pci_dir[PATH_MAX], cdev[NAME_MAX + 1];
	struct stat st;
	int rc;

	if (!sysfs_root || !vfio_dev_dir || !name || !path || !len)
		return -EINVAL;
	if (name[0] == '/')
		return path_printf(path, len, "%s", name);

	rc = pci_addr_parse(name, addr);
	if (rc)
		return rc;
	rc = path_printf(pci_dir, sizeof(pci_dir), "%s/bus/pci/devices/%s",
			 sysfs_root, addr);
	if (rc)
		return rc;
	if (stat(pci_dir, &st))
		return -errno;
	rc = pci_dev_vfio_cdev(pci_dir, cdev, sizeof(cdev));
	if (rc)
		return rc;
	return path_printf(path, len, "%s/%s", vfio_dev_dir, cdev);
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
		if (rc == -ENOENT)
			rc = path_printf(name, BACKEND_NAME_MAX, "%s/%s",
					 vfio_dev_dir, cdev);
		if (rc)
			break;
		filled++;
	}

	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc ? rc : (int)filled;
}
