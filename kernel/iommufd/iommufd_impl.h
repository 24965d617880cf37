/* SPDX-License-Identifier: MIT */
/* Private to kernel/iommufd/: the backend context, its devices, providers. */
#ifndef DIRTYD_KERNEL_IOMMUFD_IMPL_H
#define DIRTYD_KERNEL_IOMMUFD_IMPL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "kernel/backend.h"

#define IOMMUFD_DEFAULT_PATH		"/dev/iommu"
#define IOMMUFD_DEFAULT_SYSFS_ROOT	"/sys"
#define IOMMUFD_DEFAULT_VFIO_DEV_DIR	"/dev/vfio/devices"

/** One bound device: a row of the device table. */
struct iommufd_dev {
	uint32_t dev_id;		/* the kernel's iommufd device ID */
	int fd;				/* -1 if the provider has none */
	bool attached;
	uint32_t pt_id;			/* the HWPT the kernel attached */
	char name[BACKEND_NAME_MAX];	/* as given to device_bind */
	/* the provider that bound it and runs its operations */
	const struct iommufd_dev_provider *provider;
	struct {			/* mock.c's own objects */
		uint32_t stdev_id;	/* the selftest device object */
		uint32_t park_ioas_id;	/* where it waits when detached */
	} mock;
};

struct iommufd_backend;

/**
 * struct iommufd_dev_provider - where bound devices come from.
 *
 * VFIO cdevs (vfio_cdev.c) are the production provider; the kernel's
 * mock IOMMU devices (CONFIG_IOMMUFD_TEST, mock.c) stand in for them in
 * the VM tests.  backend_config.device_provider picks one by @name.  The
 * device table in device.c calls these with the table's lock held, except
 * @bind (the device is not in the table yet) and @unbind (it no longer
 * is).
 *
 * @name: what backend_config.device_provider says to choose it
 * @probe: whether the provider works on this /dev/iommu, asked once at
 *         open; NULL means it does
 * @enumerate: fill up to @max names device_bind would take; the count
 * @canonical: the name @enumerate lists the device @name by (see
 *             backend_device_canonical()); NULL means
 *             backend_device_name_canonical()
 * @bind: open @name and bind it to the backend's iommufd: fill @dev's
 *        dev_id and fd; on error nothing is left open
 * @attach: attach to *@pt_id; on success *@pt_id is the HWPT attached
 * @detach: detach from whatever @dev is attached to
 * @unbind: release everything @bind acquired; cannot fail
 * @dma_write: DMA-write [@iova, @iova + @length) as @dev; NULL means the
 *             provider's devices cannot be made to (-EOPNOTSUPP)
 * @feature: VFIO_DEVICE_FEATURE on @dev's descriptor with @flags and the
 *           @len bytes of @data after the header (written back on
 *           success); the kernel's 0 or -errno.  NULL means the provider's
 *           devices have no VFIO descriptor (-EOPNOTSUPP).
 * @vfio_cdevs_too: a VFIO cdev name (vfioN) binds through
 *           vfio_cdev_provider instead, in the same iommufd; that device's
 *           operations are then the VFIO provider's (device.c)
 */
struct iommufd_dev_provider {
	const char *name;
	int (*probe)(const struct iommufd_backend *ib);
	int (*enumerate)(const struct iommufd_backend *ib,
			 struct backend_device_name *names, size_t max);
	int (*canonical)(const struct iommufd_backend *ib, const char *name,
			 char *out, size_t len);
	int (*bind)(const struct iommufd_backend *ib, const char *name,
		    struct iommufd_dev *dev);
	int (*attach)(const struct iommufd_backend *ib,
		      struct iommufd_dev *dev, uint32_t *pt_id);
	int (*detach)(const struct iommufd_backend *ib,
		      struct iommufd_dev *dev);
	void (*unbind)(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev);
	int (*dma_write)(const struct iommufd_backend *ib,
			 struct iommufd_dev *dev, uint64_t iova,
			 uint64_t length);
	int (*feature)(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev, uint32_t flags, void *data,
		       size_t len);
	bool vfio_cdevs_too;
};

/** struct iommufd_backend - an open /dev/iommu and its bound devices. */
struct iommufd_backend {
	struct backend base;
	int fd;					/* /dev/iommu */
	char *sysfs_root;
	char *vfio_dev_dir;
	const struct iommufd_dev_provider *provider;
	bool uring_cmd;				/* probed at open */

	pthread_mutex_t lock;			/* protects the table */
	struct iommufd_dev *devs;
	size_t n_devs;
	size_t cap_devs;
};

static inline struct iommufd_backend *to_iommufd_backend(struct backend *b)
{
	return (struct iommufd_backend *)b;
}

/* The one errno conversion of every ioctl in this directory. */
static inline int iommufd_ioctl(int fd, unsigned long request, void *cmd)
{
	return ioctl(fd, request, cmd) ? -errno : 0;
}

extern const struct iommufd_dev_provider vfio_cdev_provider;
/* Built only with the tests: DIRTYD_MOCK_PROVIDER (see mock.c). */
extern const struct iommufd_dev_provider mock_provider;

/* sysfs.c: "vfio" and a decimal number as the kernel prints it (vfio%d). */
bool iommufd_is_vfio_cdev_name(const char *s);

/* iommufd.c: the wrappers providers share. */
int iommufd_ioas_alloc(int fd, uint32_t *out_ioas_id);
int iommufd_destroy(int fd, uint32_t id);

/* The struct of IOMMU_HWPT_GET_DIRTY_BITMAP, for the ioctl and the
 * uring command alike. */
static inline struct iommu_hwpt_get_dirty_bitmap
iommufd_dirty_bitmap_cmd(uint32_t hwpt_id, uint64_t iova, uint64_t length,
			 uint64_t page_size, uint64_t *bitmap, uint32_t flags)
{
	return (struct iommu_hwpt_get_dirty_bitmap){
		.size = sizeof(struct iommu_hwpt_get_dirty_bitmap),
		.hwpt_id = hwpt_id,
		.flags = flags,
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.data = (uintptr_t)bitmap,
	};
}

/* uring_cmd.c: the dirty read as an io_uring command. */
bool iommufd_uring_cmd_probe(int fd);
int iommufd_dirty_read_prep(struct backend *b, struct io_uring_sqe *sqe,
			    int ring_fd, struct backend_dirty_read *rd,
			    uint64_t user_data);

/* vfio_cdev.c: device DMA logging, the backend's dma_log ops (VFIO
 * device features through iommufd_dev_feature()). */
int iommufd_dma_log_probe(struct backend *b, uint32_t dev_id);
int iommufd_dma_log_start(struct backend *b, uint32_t dev_id,
			  uint64_t *page_size,
			  const struct backend_dma_log_range *ranges,
			  uint32_t nranges);
int iommufd_dma_log_report(struct backend *b, uint32_t dev_id, uint64_t iova,
			   uint64_t length, uint64_t page_size,
			   uint64_t *bitmap);
int iommufd_dma_log_stop(struct backend *b, uint32_t dev_id);

/* device.c: the device table, behind the backend's device ops. */
int iommufd_dev_enumerate(struct backend *b,
			  struct backend_device_name *names, size_t max);
int iommufd_dev_canonical(struct backend *b, const char *name, char *out,
			  size_t len);
int iommufd_dev_bind(struct backend *b, const char *name,
		     uint32_t *out_dev_id);
int iommufd_dev_unbind(struct backend *b, uint32_t dev_id);
int iommufd_dev_attach(struct backend *b, uint32_t dev_id, uint32_t pt_id);
int iommufd_dev_detach(struct backend *b, uint32_t dev_id);
int iommufd_dev_fd(struct backend *b, uint32_t dev_id);
int iommufd_dev_dma_write(struct backend *b, uint32_t dev_id, uint64_t iova,
			  uint64_t length);
int iommufd_dev_feature(struct backend *b, uint32_t dev_id, uint32_t flags,
			void *data, size_t len);
void iommufd_dev_unbind_all(struct iommufd_backend *ib);
void iommufd_dev_leave_all(struct iommufd_backend *ib);
/* backend_keep(): "iommufd", the devices' fds, the table in the blob. */
int iommufd_dev_keep(struct iommufd_backend *ib, struct backend_kept_fd *fds,
		     size_t max_fds, void *blob, size_t *blob_len);
int iommufd_dev_take_given(struct iommufd_backend *ib,
			   const struct backend_given_device *devs, size_t n,
			   uint32_t hwpt_id);
int iommufd_get_hw_info(int fd, uint32_t dev_id,
			struct backend_hw_info *info);
int iommufd_dev_adopt(struct iommufd_backend *ib,
		      const struct backend_kept_fd *kept, int *fds,
		      size_t n_kept, const void *blob, size_t blob_len);

#endif /* DIRTYD_KERNEL_IOMMUFD_IMPL_H */
