// SPDX-License-Identifier: MIT
/*
 * The iommufd backend: struct backend over the real /dev/iommu.
 *
 * Files: iommufd.c (this: the context, the ops table and one wrapper per
 * iommufd ioctl), device.c (the table of bound devices), vfio_cdev.c (the
 * VFIO cdev device provider, and device DMA logging on its descriptor),
 * sysfs.c (device naming and discovery),
 * mock.c (the kernel's mock IOMMU devices, for tests in a VM),
 * uring_cmd.c (the dirty read as an io_uring command, and its probe).
 *
 * Device providers.  backend_config.device_provider names where devices
 * come from: "vfio" (or NULL) for VFIO cdevs, everything below; "mock" for
 * the devices of CONFIG_IOMMUFD_TEST's mock IOMMU (see mock.c for their
 * names).  Open fails with -EINVAL for another name and with -EOPNOTSUPP
 * when the provider cannot work here (mock: a kernel without
 * CONFIG_IOMMUFD_TEST, or a dirtyd built without the tests).
 *
 * Naming.  device_bind() takes a PCI address, full (0000:65:00.0) or
 * short (65:00.0 means domain 0000), or a VFIO cdev name (vfio3), and
 * never a path: names come from clients, and dirtyd is root.  A PCI
 * address resolves through <sysfs_root>/bus/pci/devices/<address>/
 * vfio-dev/vfioN to vfioN; <vfio_dev_dir>/vfioN is opened only if it is
 * the character device of <sysfs_root>/class/vfio-dev/vfioN/dev, and only
 * then does VFIO_DEVICE_BIND_IOMMUFD run on it (sysfs.h).
 *
 * Discovery.  device_enumerate() lists every vfioN in <vfio_dev_dir> in
 * numeric order, named by its PCI address in full form when sysfs has one
 * (that is what users type and what lspci -D prints), by its cdev name
 * otherwise.  Every listed name is accepted by device_bind().
 *
 * Errors.  Every function returns 0 or a negative errno and never prints;
 * where the errno alone would not tell a person what to do, it records a
 * sentence for backend_why().  Kernel errors pass through unchanged: each
 * ioctl goes through iommufd_ioctl(), the one place that turns -1/errno
 * into -errno.  Open returns -ENOENT when /dev/iommu is missing (the
 * caller explains: no CONFIG_IOMMUFD) and -ENODEV when it is not a
 * character device; binding returns -EINVAL for a name that is not one
 * (a path, say), -ENOENT for an unknown device, -ENODEV for a PCI device
 * not bound to vfio-pci or a node that is not the device's VFIO character
 * device.  Bookkeeping errors: -ENOENT for a dev_id this backend has not
 * bound, -EOPNOTSUPP for dma_write (real devices DMA on their own), and
 * for the dma_log ops with the mock provider (its devices have no VFIO
 * descriptor); with VFIO cdevs those return the kernel's answer.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/backend_impl.h"
#include "kernel/iommufd/iommufd_impl.h"
#include <stdio.h>

/* ------------------------------------------------------ ioctl wrappers */

int iommufd_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = {
		.size = sizeof(cmd),
		.id = id,
	};

	return iommufd_ioctl(fd, IOMMU_DESTROY, &cmd);
}

int iommufd_ioas_alloc(int fd, uint32_t *out_ioas_id)
{
	struct iommu_ioas_alloc cmd = {
		.size = sizeof(cmd),
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (!rc)
		*out_ioas_id = cmd.out_ioas_id;
	return rc;
}

/*
 * Asks for no ranges, only the alignment.  iommufd_ioas_iova_ranges()
 * (drivers/iommu/iommufd/ioas.c) copies the whole struct, alignment
 * included, back to us and only then fails with EMSGSIZE because
 * num_iovas (0) was smaller than the number of ranges: for this call
 * EMSGSIZE is success.
 */
static int iommufd_ioas_iova_ranges_alignment(int fd, uint32_t ioas_id,
					      uint64_t *out_alignment)
{
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = 0,
		.allowed_iovas = 0,
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
	if (rc && rc != -EMSGSIZE)
		return rc;
	*out_alignment = cmd.out_iova_alignment;
	return 0;
}

static int iommufd_ioas_map(int fd, uint32_t ioas_id, uint32_t flags,
			    void *user_va, uint64_t length, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)user_va,
		.length = length,
		.iova = *iova,
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	if (!rc)
		*iova = cmd.iova;
	return rc;
}

static int iommufd_ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova,
			      uint64_t length, uint64_t *out_unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
	if (!rc && out_unmapped)
		*out_unmapped = cmd.length;
	return rc;
}

static int iommufd_option_set(int fd, uint32_t option_id, uint32_t object_id,
			      uint64_t val)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = IOMMU_OPTION_OP_SET,
		.object_id = object_id,
		.val64 = val,
	};

	return iommufd_ioctl(fd, IOMMU_OPTION, &cmd);
}

int iommufd_get_hw_info(int fd, uint32_t dev_id,
			       struct backend_hw_info *info)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.data_len = 0,
		.data_uptr = 0,
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_GET_HW_INFO, &cmd);
	if (rc)
		return rc;
	*info = (struct backend_hw_info){
		.capabilities = cmd.out_capabilities,
		.data_type = cmd.out_data_type,
		.max_pasid_log2 = cmd.out_max_pasid_log2,
	};
	return 0;
}

static int iommufd_hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id,
			      uint32_t flags, uint32_t *out_hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};
	int rc;

	rc = iommufd_ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (!rc)
		*out_hwpt_id = cmd.out_hwpt_id;
	return rc;
}

static int iommufd_hwpt_set_dirty_tracking(int fd, uint32_t hwpt_id,
					   bool enable)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = hwpt_id,
	};

	return iommufd_ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

static int iommufd_hwpt_get_dirty_bitmap(int fd, uint32_t hwpt_id,
					 uint64_t iova, uint64_t length,
					 uint64_t page_size, uint64_t *bitmap,
					 uint32_t flags)
{
	struct iommu_hwpt_get_dirty_bitmap cmd =
		iommufd_dirty_bitmap_cmd(hwpt_id, iova, length, page_size,
					 bitmap, flags);

	return iommufd_ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

/* ---------------------------------------------------------- backend ops */

static int ib_device_get_hw_info(struct backend *b, uint32_t dev_id,
				 struct backend_hw_info *info)
{
	if (!info)
		return -EINVAL;
	return iommufd_get_hw_info(to_iommufd_backend(b)->fd, dev_id, info);
}

static int ib_ioas_alloc(struct backend *b, uint32_t *out_ioas_id)
{
	if (!out_ioas_id)
		return -EINVAL;
	return iommufd_ioas_alloc(to_iommufd_backend(b)->fd, out_ioas_id);
}

static int ib_ioas_iova_alignment(struct backend *b, uint32_t ioas_id,
				  uint64_t *out_alignment)
{
	if (!out_alignment)
		return -EINVAL;
	return iommufd_ioas_iova_ranges_alignment(to_iommufd_backend(b)->fd,
						  ioas_id, out_alignment);
}

static int ib_ioas_map(struct backend *b, uint32_t ioas_id, uint32_t flags,
		       void *user_va, uint64_t length, uint64_t *iova)
{
	if (!iova)
		return -EINVAL;
	return iommufd_ioas_map(to_iommufd_backend(b)->fd, ioas_id, flags,
				user_va, length, iova);
}

static int ib_ioas_unmap(struct backend *b, uint32_t ioas_id, uint64_t iova,
			 uint64_t length, uint64_t *out_unmapped)
{
	return iommufd_ioas_unmap(to_iommufd_backend(b)->fd, ioas_id, iova,
				  length, out_unmapped);
}

static int ib_ioas_set_huge_pages(struct backend *b, uint32_t ioas_id,
				  bool enable)
{
	return iommufd_option_set(to_iommufd_backend(b)->fd,
				  IOMMU_OPTION_HUGE_PAGES, ioas_id, enable);
}

static int ib_hwpt_alloc(struct backend *b, uint32_t dev_id, uint32_t pt_id,
			 uint32_t flags, uint32_t *out_hwpt_id)
{
	if (!out_hwpt_id)
		return -EINVAL;
	return iommufd_hwpt_alloc(to_iommufd_backend(b)->fd, dev_id, pt_id,
				  flags, out_hwpt_id);
}

static int ib_hwpt_set_dirty_tracking(struct backend *b, uint32_t hwpt_id,
				      bool enable)
{
	return iommufd_hwpt_set_dirty_tracking(to_iommufd_backend(b)->fd,
					       hwpt_id, enable);
}

static int ib_hwpt_get_dirty_bitmap(struct backend *b, uint32_t hwpt_id,
				    uint64_t iova, uint64_t length,
				    uint64_t page_size, uint64_t *bitmap,
				    uint32_t flags)
{
	return iommufd_hwpt_get_dirty_bitmap(to_iommufd_backend(b)->fd,
					     hwpt_id, iova, length, page_size,
					     bitmap, flags);
}

static int ib_destroy(struct backend *b, uint32_t id)
{
	return iommufd_destroy(to_iommufd_backend(b)->fd, id);
}

static int ib_iommufd(struct backend *b)
{
	return to_iommufd_backend(b)->fd;
}

static const struct iommufd_dev_provider *const iommufd_dev_providers[] = {
	&vfio_cdev_provider,
#ifdef DIRTYD_MOCK_PROVIDER
	&mock_provider,
#endif
};

static int iommufd_dev_provider_find(const char *name,
				     const struct iommufd_dev_provider **out)
{
	size_t i;

	if (!name)
		name = vfio_cdev_provider.name;
	for (i = 0; i < sizeof(iommufd_dev_providers) /
			sizeof(iommufd_dev_providers[0]); i++) {
		if (!strcmp(iommufd_dev_providers[i]->name, name)) {
			*out = iommufd_dev_providers[i];
			return 0;
		}
	}
	if (!strcmp(name, "mock")) {	/* test code: see mock.c */
		backend_why_set(0, "this dirtyd is built without the mock "
				"device provider (it comes with DIRTYD_TESTS)");
		return -EOPNOTSUPP;
	}
	return -EINVAL;
}

static void ib_free(struct iommufd_backend *ib)
{
	if (ib->fd >= 0)
		close(ib->fd);
	pthread_mutex_destroy(&ib->lock);
	free(ib->sysfs_root);
	free(ib->vfio_dev_dir);
	free(ib);
}

static void ib_close(struct backend *b)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);

	iommufd_dev_unbind_all(ib);
	ib_free(ib);
}

/* The kept copies of the fds hold the kernel's objects from now on. */
static void ib_leave(struct backend *b)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);

	iommufd_dev_leave_all(ib);
	ib_free(ib);
}

static int ib_keep(struct backend *b, struct backend_kept_fd *fds,
		   size_t max_fds, void *blob, size_t *blob_len)
{
	if ((!fds && max_fds) || !blob_len || (!blob && *blob_len))
		return -EINVAL;
	return iommufd_dev_keep(to_iommufd_backend(b), fds, max_fds, blob,
				blob_len);
}

/* Largest leaf a real IOMMU may use with huge pages on. */
#define IOMMUFD_MAX_LEAF (1ULL << 30)

const struct backend_caps iommufd_kind_caps = {
	.dirty_read_sqe128 = true,
	.max_leaf = IOMMUFD_MAX_LEAF,
	.iommufd = true,
};

static void ib_caps(struct backend *b, struct backend_caps *caps)
{
	*caps = iommufd_kind_caps;
	if (to_iommufd_backend(b)->uring_cmd)
		caps->dirty_read_async = "uring_cmd";
}

static const struct backend_ops iommufd_backend_ops = {
	.name = "iommufd",
	.close = ib_close,
	.leave = ib_leave,
	.device_enumerate = iommufd_dev_enumerate,
	.device_canonical = iommufd_dev_canonical,
	.device_bind = iommufd_dev_bind,
	.device_unbind = iommufd_dev_unbind,
	.device_get_hw_info = ib_device_get_hw_info,
	.device_attach = iommufd_dev_attach,
	.device_detach = iommufd_dev_detach,
	.device_fd = iommufd_dev_fd,
	.ioas_alloc = ib_ioas_alloc,
	.ioas_iova_alignment = ib_ioas_iova_alignment,
	.ioas_map = ib_ioas_map,
	.ioas_unmap = ib_ioas_unmap,
	.ioas_set_huge_pages = ib_ioas_set_huge_pages,
	.hwpt_alloc = ib_hwpt_alloc,
	.hwpt_set_dirty_tracking = ib_hwpt_set_dirty_tracking,
	.hwpt_get_dirty_bitmap = ib_hwpt_get_dirty_bitmap,
	.destroy = ib_destroy,
	.iommufd = ib_iommufd,
	.dma_write = iommufd_dev_dma_write,
	.keep = ib_keep,
	.caps = ib_caps,
	.dirty_read_prep = iommufd_dirty_read_prep,
	.dma_log_probe = iommufd_dma_log_probe,
	.dma_log_start = iommufd_dma_log_start,
	.dma_log_report = iommufd_dma_log_report,
	.dma_log_stop = iommufd_dma_log_stop,
};

/*
 * Adopt what a previous process kept: its iommufd (checked to be one:
 * IOMMU_DESTROY of id 0, which no object has, is -ENOENT there and
 * -ENOTTY anywhere else) and the device table of the blob.
 */
static int ib_adopt(struct iommufd_backend *ib, const struct backend_config *cfg)
{
	int fds[BACKEND_KEEP_MAX_FDS];
	size_t i, n = cfg->n_kept;
	int rc;

	if (n > BACKEND_KEEP_MAX_FDS) {
		backend_kept_close(cfg->kept, n);
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		fds[i] = cfg->kept[i].fd;
	for (i = 0; i < n && ib->fd < 0; i++) {
		if (fds[i] >= 0 && !strcmp(cfg->kept[i].name, "iommufd")) {
			ib->fd = fds[i];
			fds[i] = -1;
		}
	}
	rc = -EINVAL;
	if (ib->fd < 0 || iommufd_destroy(ib->fd, 0) != -ENOENT)
		goto out_close;
	if (ib->provider->probe) {
		rc = ib->provider->probe(ib);
		if (rc)
			goto out_close;
	}
	rc = iommufd_dev_adopt(ib, cfg->kept, fds, n, cfg->kept_blob,
			       cfg->kept_blob_len);
out_close:
	/* Whatever was not taken, and everything on failure (ib_free()). */
	for (i = 0; i < n; i++)
		if (fds[i] >= 0 && fds[i] != ib->fd)
			close(fds[i]);
	if (rc)
		iommufd_dev_leave_all(ib);
	return rc;
}

/* A new, empty context of @cfg's provider, without a /dev/iommu yet. */
static int ib_new(const struct backend_config *cfg, struct iommufd_backend **out)
{
	const struct iommufd_dev_provider *provider;
	struct iommufd_backend *ib;
	int rc;

	rc = iommufd_dev_provider_find(cfg->device_provider, &provider);
	if (rc)
		return rc;
	ib = calloc(1, sizeof(*ib));
	if (!ib)
		return -ENOMEM;
	ib->base.ops = &iommufd_backend_ops;
	ib->fd = -1;
	ib->provider = provider;
	pthread_mutex_init(&ib->lock, NULL);
	ib->sysfs_root = strdup(cfg->sysfs_root ? cfg->sysfs_root :
				IOMMUFD_DEFAULT_SYSFS_ROOT);
	ib->vfio_dev_dir = strdup(cfg->vfio_dev_dir ? cfg->vfio_dev_dir :
				  IOMMUFD_DEFAULT_VFIO_DEV_DIR);
	if (!ib->sysfs_root || !ib->vfio_dev_dir) {
		ib_free(ib);
		return -ENOMEM;
	}
	*out = ib;
	return 0;
}

/*
 * READOPT: @fd must be the character device /dev/iommu is (not merely
 * some character device) before any ioctl runs on it, and then answer as
 * an iommufd (IOMMU_DESTROY of id 0: -ENOENT).
 */
static int ib_given_iommufd(const struct backend_config *cfg, int fd)
{
	const char *path = cfg->iommufd_path ? cfg->iommufd_path :
					       IOMMUFD_DEFAULT_PATH;
	struct stat st, want;

	if (fd < 0 || fstat(fd, &st))
		return backend_why_set(-EBADF, "no iommufd descriptor was "
				       "given");
	if (stat(path, &want))
		return backend_why_set(-errno, "%s: %s", path,
				       strerror(errno));
	if (!S_ISCHR(st.st_mode) || !S_ISCHR(want.st_mode) ||
	    st.st_rdev != want.st_rdev)
		return backend_why_set(-EBADF, "the first descriptor is not "
				       "%s", path);
	if (iommufd_destroy(fd, 0) != -ENOENT)
		return backend_why_set(-EBADF, "the first descriptor does not "
				       "answer as an iommufd");
	return 0;
}

int iommufd_backend_open_given(const struct backend_config *cfg, int iommufd,
			       const struct backend_given_device *devs,
			       size_t n, uint32_t hwpt_id,
			       struct backend **out)
{
	struct iommufd_backend *ib = NULL;
	int rc;

	rc = ib_new(cfg, &ib);
	if (!rc)
		rc = ib_given_iommufd(cfg, iommufd);
	if (rc) {
		if (ib)
			ib_free(ib);
		close(iommufd);
		for (size_t i = 0; i < n; i++)
			if (devs[i].fd >= 0)
				close(devs[i].fd);
		return rc;
	}
	ib->fd = iommufd;
	rc = ib->provider->probe ? ib->provider->probe(ib) : 0;
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (devs[i].fd >= 0)
				close(devs[i].fd);
	} else {
		rc = iommufd_dev_take_given(ib, devs, n, hwpt_id);
	}
	if (rc) {
		iommufd_dev_leave_all(ib);
		ib_free(ib);
		return rc;
	}
	ib->uring_cmd = iommufd_uring_cmd_probe(ib->fd);
	*out = &ib->base;
	return 0;
}

int iommufd_backend_open(const struct backend_config *cfg,
			 struct backend **out)
{
	struct iommufd_backend *ib;
	const char *path;
	struct stat st;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	path = cfg->iommufd_path ? cfg->iommufd_path : IOMMUFD_DEFAULT_PATH;
	rc = ib_new(cfg, &ib);
	if (rc) {
		backend_kept_close(cfg->kept, cfg->n_kept);
		return rc;
	}

	if (cfg->n_kept) {
		rc = ib_adopt(ib, cfg);
		if (rc)
			goto err_free;
		ib->uring_cmd = iommufd_uring_cmd_probe(ib->fd);
		*out = &ib->base;
		return 0;
	}

	ib->fd = open(path, O_RDWR | O_CLOEXEC);
	if (ib->fd < 0) {
		rc = -errno;
		goto err_free;
	}
	/* Whatever the provider, iommufd is a (misc) character device. */
	if (fstat(ib->fd, &st)) {
		rc = -errno;
		goto err_free;
	}
	if (!S_ISCHR(st.st_mode)) {
		rc = backend_why_set(-ENODEV, "%s is not a character device: "
				     "iommufd is /dev/iommu (Linux 6.7 or "
				     "newer with CONFIG_IOMMUFD)", path);
		goto err_free;
	}
	if (ib->provider->probe) {
		rc = ib->provider->probe(ib);
		if (rc)
			goto err_free;
	}
	ib->uring_cmd = iommufd_uring_cmd_probe(ib->fd);

	*out = &ib->base;
	return 0;

err_free:
	ib_free(ib);
	return rc;
}
