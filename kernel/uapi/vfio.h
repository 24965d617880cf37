/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dirtyd's own copy of the parts of the VFIO uAPI it uses: the device cdev
 * ioctls that bind a device to iommufd (Linux 6.6), and the device
 * features of DMA logging (Linux 6.2).
 *
 * Debian 12 ships 6.1 kernel headers, which predate both.  These
 * definitions are transcribed from include/uapi/linux/vfio.h of Linux
 * 6.12; tests/abi/ checks every size, field offset and constant against
 * that header, taken from Debian's linux-source-6.12.  Names match the
 * kernel's so that code reads like the kernel and QEMU; never include the
 * system's <linux/vfio.h> in the same translation unit.
 */
#ifndef DIRTYD_KERNEL_UAPI_VFIO_H
#define DIRTYD_KERNEL_UAPI_VFIO_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define VFIO_TYPE (';')
#define VFIO_BASE 100

/* ------------------------------------------------------- device features */

/**
 * struct vfio_device_feature - ioctl(VFIO_DEVICE_FEATURE)
 * @argsz: sizeof(struct vfio_device_feature) plus the data that follows
 * @flags: the feature's index (VFIO_DEVICE_FEATURE_MASK) and one of GET or
 *         SET, or PROBE (with GET or SET: is that supported?)
 * @data: the feature's own structure, none for a PROBE
 *
 * A driver without the feature answers -ENOTTY.
 */
struct vfio_device_feature {
	__u32 argsz;
	__u32 flags;
	__u8 data[];
};
#define VFIO_DEVICE_FEATURE_MASK (0xffff)
#define VFIO_DEVICE_FEATURE_GET (1 << 16)
#define VFIO_DEVICE_FEATURE_SET (1 << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1 << 18)
#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)

/**
 * struct vfio_device_feature_dma_logging_control - the data of
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_START (SET)
 * @page_size: in: the granule asked for, a power of two; out: the one the
 *             driver chose
 * @num_ranges: how many ranges @ranges points to (the core takes at most
 *              LOG_MAX_RANGES, 256; a driver may take fewer)
 * @__reserved: must be 0
 * @ranges: user pointer to @num_ranges struct
 *          vfio_device_feature_dma_logging_range, sorted, not overlapping,
 *          each aligned to @page_size
 */
struct vfio_device_feature_dma_logging_control {
	__aligned_u64 page_size;
	__u32 num_ranges;
	__u32 __reserved;
	__aligned_u64 ranges;
};

/** struct vfio_device_feature_dma_logging_range - one logged IOVA range */
struct vfio_device_feature_dma_logging_range {
	__aligned_u64 iova;
	__aligned_u64 length;
};

/* SET: start logging; SET: stop it (no data); GET: read and clear it. */
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_START 6
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP 7
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT 8

/**
 * struct vfio_device_feature_dma_logging_report - the data of
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT (GET)
 * @iova: the first IOVA read, aligned to @page_size
 * @length: how many bytes from @iova
 * @page_size: the granule of one bit, any power of two (the driver
 *             replicates bits of a finer log)
 * @bitmap: user pointer: bit k is set (never cleared) if the device wrote
 *          the page at @iova + k * @page_size; the device's log is cleared
 *          for what was read
 */
struct vfio_device_feature_dma_logging_report {
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 bitmap;
};

/* ------------------------------------------------------------ device cdev */

/**
 * struct vfio_device_bind_iommufd - ioctl(VFIO_DEVICE_BIND_IOMMUFD)
 * @argsz: sizeof(struct vfio_device_bind_iommufd)
 * @flags: must be 0
 * @iommufd: an open /dev/iommu
 * @out_devid: the device's ID in that iommufd
 */
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

/**
 * struct vfio_device_attach_iommufd_pt - ioctl(VFIO_DEVICE_ATTACH_IOMMUFD_PT)
 * @argsz: sizeof(struct vfio_device_attach_iommufd_pt)
 * @flags: must be 0
 * @pt_id: in: IOAS or HWPT to attach to; out: the HWPT actually attached
 */
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

/**
 * struct vfio_device_detach_iommufd_pt - ioctl(VFIO_DEVICE_DETACH_IOMMUFD_PT)
 * @argsz: sizeof(struct vfio_device_detach_iommufd_pt)
 * @flags: must be 0
 */
struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)

#endif /* DIRTYD_KERNEL_UAPI_VFIO_H */
