/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dirtyd's own copy of the parts of the iommufd uAPI it uses (the VFIO
 * parts are in kernel/uapi/vfio.h).
 *
 * Debian 12 ships 6.1 kernel headers, which predate iommufd dirty tracking
 * (Linux 6.7).  These definitions are transcribed from
 * include/uapi/linux/iommufd.h of Linux 6.12; tests/abi/ checks every size,
 * field offset and constant against that header, taken from Debian's
 * linux-source-6.12.  Names match the kernel's so that code reads like the
 * kernel and QEMU; never include the system's <linux/iommufd.h> in the
 * same translation unit.
 */
#ifndef DIRTYD_KERNEL_UAPI_IOMMUFD_H
#define DIRTYD_KERNEL_UAPI_IOMMUFD_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* ---------------------------------------------------------------- iommufd */

#define IOMMUFD_TYPE (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
};

/**
 * struct iommu_destroy - ioctl(IOMMU_DESTROY)
 * @size: sizeof(struct iommu_destroy)
 * @id: iommufd object ID to destroy (IOAS, HWPT, ...)
 */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/**
 * struct iommu_ioas_alloc - ioctl(IOMMU_IOAS_ALLOC)
 * @size: sizeof(struct iommu_ioas_alloc)
 * @flags: must be 0
 * @out_ioas_id: output IOAS ID
 */
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

/**
 * struct iommu_iova_range - one allowed IOVA range, inclusive
 * @start: first IOVA
 * @last: last IOVA (inclusive)
 */
struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

/**
 * struct iommu_ioas_iova_ranges - ioctl(IOMMU_IOAS_IOVA_RANGES)
 * @size: sizeof(struct iommu_ioas_iova_ranges)
 * @ioas_id: IOAS to read
 * @num_iovas: in: capacity of @allowed_iovas; out: ranges that exist
 * @__reserved: must be 0
 * @allowed_iovas: pointer to an array of struct iommu_iova_range
 * @out_iova_alignment: minimum alignment of any mapping (the IOAS page size)
 */
struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

/**
 * enum iommufd_ioas_map_flags - flags of struct iommu_ioas_map
 * @IOMMU_IOAS_MAP_FIXED_IOVA: map at @iova instead of allocating one
 * @IOMMU_IOAS_MAP_WRITEABLE: DMA may write the memory
 * @IOMMU_IOAS_MAP_READABLE: DMA may read the memory
 */
enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

/**
 * struct iommu_ioas_map - ioctl(IOMMU_IOAS_MAP)
 * @size: sizeof(struct iommu_ioas_map)
 * @flags: enum iommufd_ioas_map_flags
 * @ioas_id: IOAS to change
 * @__reserved: must be 0
 * @user_va: userspace address of the memory to map
 * @length: bytes to map
 * @iova: in with FIXED_IOVA, otherwise out: the IOVA of the mapping
 */
struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

/**
 * struct iommu_ioas_unmap - ioctl(IOMMU_IOAS_UNMAP)
 * @size: sizeof(struct iommu_ioas_unmap)
 * @ioas_id: IOAS to change
 * @iova: first IOVA to unmap
 * @length: in: bytes to unmap; out: bytes unmapped
 */
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

/**
 * enum iommufd_option - options of ioctl(IOMMU_OPTION)
 * @IOMMU_OPTION_RLIMIT_MODE: pinned-page accounting mode (global)
 * @IOMMU_OPTION_HUGE_PAGES: per IOAS, 1 (default) lets mappings use huge
 *                           IOPTEs, 0 maps at PAGE_SIZE; only settable while
 *                           the IOAS has no mappings
 */
enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};

/**
 * enum iommufd_option_ops - ioctl(IOMMU_OPTION) operations
 * @IOMMU_OPTION_OP_SET: set the option's value
 * @IOMMU_OPTION_OP_GET: read the option's value
 */
enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};

/**
 * struct iommu_option - ioctl(IOMMU_OPTION)
 * @size: sizeof(struct iommu_option)
 * @option_id: enum iommufd_option
 * @op: enum iommufd_option_ops
 * @__reserved: must be 0
 * @object_id: object the option applies to (0 for global options)
 * @val64: value to set or value read
 */
struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

/**
 * enum iommufd_hwpt_alloc_flags - flags of struct iommu_hwpt_alloc
 * @IOMMU_HWPT_ALLOC_NEST_PARENT: may be a nesting parent
 * @IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the domain tracks dirty IOVAs;
 *   EOPNOTSUPP when @dev_id's IOMMU cannot
 * @IOMMU_HWPT_FAULT_ID_VALID: @fault_id is valid
 */
enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
};

/**
 * enum iommu_hwpt_data_type - driver data of struct iommu_hwpt_alloc
 * @IOMMU_HWPT_DATA_NONE: no data (a paging domain over an IOAS)
 * @IOMMU_HWPT_DATA_VTD_S1: Intel VT-d stage-1 page table
 */
enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
};

/**
 * struct iommu_hwpt_alloc - ioctl(IOMMU_HWPT_ALLOC)
 * @size: sizeof(struct iommu_hwpt_alloc)
 * @flags: enum iommufd_hwpt_alloc_flags
 * @dev_id: device whose IOMMU builds the page table
 * @pt_id: IOAS (or parent HWPT) the page table follows
 * @out_hwpt_id: output HWPT ID; the device is not attached by this call
 * @__reserved: must be 0
 * @data_type: enum iommu_hwpt_data_type
 * @data_len: bytes at @data_uptr
 * @data_uptr: driver data
 * @fault_id: fault object, with IOMMU_HWPT_FAULT_ID_VALID
 * @__reserved2: must be 0
 */
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

/**
 * enum iommu_hw_info_type - IOMMU hardware types of struct iommu_hw_info
 * @IOMMU_HW_INFO_TYPE_NONE: no driver data (the kernel's mock IOMMU
 *                           reports its own IOMMU_HW_INFO_TYPE_SELFTEST)
 * @IOMMU_HW_INFO_TYPE_INTEL_VTD: Intel VT-d
 */
enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
};

/**
 * enum iommufd_hw_capabilities - out_capabilities of struct iommu_hw_info
 * @IOMMU_HW_CAP_DIRTY_TRACKING: the device's IOMMU records DMA writes in
 *                               hardware dirty bits (seed option c)
 * @IOMMU_HW_CAP_PCI_PASID_EXEC: PASID execute permission
 * @IOMMU_HW_CAP_PCI_PASID_PRIV: PASID privileged mode
 */
enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
};

/**
 * struct iommu_hw_info - ioctl(IOMMU_GET_HW_INFO)
 * @size: sizeof(struct iommu_hw_info)
 * @flags: must be 0
 * @dev_id: the bound device to query
 * @data_len: in: bytes at @data_uptr; out: bytes the kernel filled
 * @data_uptr: buffer for driver data (may be 0 with @data_len 0)
 * @out_data_type: enum iommu_hw_info_type
 * @out_max_pasid_log2: PASID width
 * @__reserved: must be 0
 * @out_capabilities: enum iommufd_hw_capabilities
 */
struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

/**
 * enum iommufd_hwpt_set_dirty_tracking_flags - flags of
 *   struct iommu_hwpt_set_dirty_tracking
 * @IOMMU_HWPT_DIRTY_TRACKING_ENABLE: enable (clearing every dirty bit of
 *                                    every mapped area first); 0 disables
 */
enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

/**
 * struct iommu_hwpt_set_dirty_tracking - ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING)
 * @size: sizeof(struct iommu_hwpt_set_dirty_tracking)
 * @flags: enum iommufd_hwpt_set_dirty_tracking_flags
 * @hwpt_id: a HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING
 * @__reserved: must be 0
 */
struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

/**
 * enum iommufd_hwpt_get_dirty_bitmap_flags - flags of
 *   struct iommu_hwpt_get_dirty_bitmap
 * @IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: read without clearing the IOPTEs'
 *                                        dirty bits (read, then unmap)
 */
enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

/**
 * struct iommu_hwpt_get_dirty_bitmap - ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP)
 * @size: sizeof(struct iommu_hwpt_get_dirty_bitmap)
 * @hwpt_id: HWPT to read
 * @flags: enum iommufd_hwpt_get_dirty_bitmap_flags
 * @__reserved: must be 0
 * @iova: first IOVA of the range, aligned to @page_size and the IOAS
 * @length: bytes of the range, aligned likewise
 * @page_size: bytes each bit stands for
 * @data: user pointer to u64 words; bit k is the page at iova + k*page_size.
 *        The kernel only sets bits: zero the buffer before every call.
 */
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

#endif /* DIRTYD_KERNEL_UAPI_IOMMUFD_H */
