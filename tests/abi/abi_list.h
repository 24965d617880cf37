/* SPDX-License-Identifier: MIT */
/*
 * Everything kernel/uapi/iommufd.h and kernel/uapi/vfio.h define, as an
 * X-macro list.
 *
 * abi_ours.c expands it against those two and abi_kernel.c against Linux
 * 6.12's <linux/iommufd.h> and <linux/vfio.h>; test_abi.c compares the two
 * tables entry by entry and checks, by reading both headers, that this
 * list names every struct, field, enum and constant in them.  Add a line
 * here whenever a header grows one.
 *
 * The includer defines, then undefines after use:
 *   ABI_STRUCT(s)    struct s: its size and alignment
 *   ABI_FIELD(s, f)  scalar member f of struct s: offset, size, signedness
 *   ABI_ARRAY(s, f)  array member f of struct s: offset, size, and the
 *                    size and signedness of one element
 *   ABI_FLEX(s, f)   flexible array member f of struct s: offset, and the
 *                    size and signedness of one element
 *   ABI_ENUM(e)      enum e (the tag exists, its size)
 *   ABI_CONST(c)     a macro or enumerator: its value
 * No include guard: it is meant to be expanded more than once.
 */

/* ---------------------------------------------------------------- iommufd */
ABI_CONST(IOMMUFD_TYPE)

ABI_CONST(IOMMUFD_CMD_BASE)
ABI_CONST(IOMMUFD_CMD_DESTROY)
ABI_CONST(IOMMUFD_CMD_IOAS_ALLOC)
ABI_CONST(IOMMUFD_CMD_IOAS_IOVA_RANGES)
ABI_CONST(IOMMUFD_CMD_IOAS_MAP)
ABI_CONST(IOMMUFD_CMD_IOAS_UNMAP)
ABI_CONST(IOMMUFD_CMD_OPTION)
ABI_CONST(IOMMUFD_CMD_HWPT_ALLOC)
ABI_CONST(IOMMUFD_CMD_GET_HW_INFO)
ABI_CONST(IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)
ABI_CONST(IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

ABI_STRUCT(iommu_destroy)
ABI_FIELD(iommu_destroy, size)
ABI_FIELD(iommu_destroy, id)
ABI_CONST(IOMMU_DESTROY)

ABI_STRUCT(iommu_ioas_alloc)
ABI_FIELD(iommu_ioas_alloc, size)
ABI_FIELD(iommu_ioas_alloc, flags)
ABI_FIELD(iommu_ioas_alloc, out_ioas_id)
ABI_CONST(IOMMU_IOAS_ALLOC)

ABI_STRUCT(iommu_iova_range)
ABI_FIELD(iommu_iova_range, start)
ABI_FIELD(iommu_iova_range, last)

ABI_STRUCT(iommu_ioas_iova_ranges)
ABI_FIELD(iommu_ioas_iova_ranges, size)
ABI_FIELD(iommu_ioas_iova_ranges, ioas_id)
ABI_FIELD(iommu_ioas_iova_ranges, num_iovas)
ABI_FIELD(iommu_ioas_iova_ranges, __reserved)
ABI_FIELD(iommu_ioas_iova_ranges, allowed_iovas)
ABI_FIELD(iommu_ioas_iova_ranges, out_iova_alignment)
ABI_CONST(IOMMU_IOAS_IOVA_RANGES)

ABI_ENUM(iommufd_ioas_map_flags)
ABI_CONST(IOMMU_IOAS_MAP_FIXED_IOVA)
ABI_CONST(IOMMU_IOAS_MAP_WRITEABLE)
ABI_CONST(IOMMU_IOAS_MAP_READABLE)

ABI_STRUCT(iommu_ioas_map)
ABI_FIELD(iommu_ioas_map, size)
ABI_FIELD(iommu_ioas_map, flags)
ABI_FIELD(iommu_ioas_map, ioas_id)
ABI_FIELD(iommu_ioas_map, __reserved)
ABI_FIELD(iommu_ioas_map, user_va)
ABI_FIELD(iommu_ioas_map, length)
ABI_FIELD(iommu_ioas_map, iova)
ABI_CONST(IOMMU_IOAS_MAP)

ABI_STRUCT(iommu_ioas_unmap)
ABI_FIELD(iommu_ioas_unmap, size)
ABI_FIELD(iommu_ioas_unmap, ioas_id)
ABI_FIELD(iommu_ioas_unmap, iova)
ABI_FIELD(iommu_ioas_unmap, length)
ABI_CONST(IOMMU_IOAS_UNMAP)

ABI_ENUM(iommufd_option)
ABI_CONST(IOMMU_OPTION_RLIMIT_MODE)
ABI_CONST(IOMMU_OPTION_HUGE_PAGES)

ABI_ENUM(iommufd_option_ops)
ABI_CONST(IOMMU_OPTION_OP_SET)
ABI_CONST(IOMMU_OPTION_OP_GET)

ABI_STRUCT(iommu_option)
ABI_FIELD(iommu_option, size)
ABI_FIELD(iommu_option, option_id)
ABI_FIELD(iommu_option, op)
ABI_FIELD(iommu_option, __reserved)
ABI_FIELD(iommu_option, object_id)
ABI_FIELD(iommu_option, val64)
ABI_CONST(IOMMU_OPTION)

ABI_ENUM(iommufd_hwpt_alloc_flags)
ABI_CONST(IOMMU_HWPT_ALLOC_NEST_PARENT)
ABI_CONST(IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
ABI_CONST(IOMMU_HWPT_FAULT_ID_VALID)

ABI_ENUM(iommu_hwpt_data_type)
ABI_CONST(IOMMU_HWPT_DATA_NONE)
ABI_CONST(IOMMU_HWPT_DATA_VTD_S1)

ABI_STRUCT(iommu_hwpt_alloc)
ABI_FIELD(iommu_hwpt_alloc, size)
ABI_FIELD(iommu_hwpt_alloc, flags)
ABI_FIELD(iommu_hwpt_alloc, dev_id)
ABI_FIELD(iommu_hwpt_alloc, pt_id)
ABI_FIELD(iommu_hwpt_alloc, out_hwpt_id)
ABI_FIELD(iommu_hwpt_alloc, __reserved)
ABI_FIELD(iommu_hwpt_alloc, data_type)
ABI_FIELD(iommu_hwpt_alloc, data_len)
ABI_FIELD(iommu_hwpt_alloc, data_uptr)
ABI_FIELD(iommu_hwpt_alloc, fault_id)
ABI_FIELD(iommu_hwpt_alloc, __reserved2)
ABI_CONST(IOMMU_HWPT_ALLOC)

ABI_ENUM(iommu_hw_info_type)
ABI_CONST(IOMMU_HW_INFO_TYPE_NONE)
ABI_CONST(IOMMU_HW_INFO_TYPE_INTEL_VTD)

ABI_ENUM(iommufd_hw_capabilities)
ABI_CONST(IOMMU_HW_CAP_DIRTY_TRACKING)
ABI_CONST(IOMMU_HW_CAP_PCI_PASID_EXEC)
ABI_CONST(IOMMU_HW_CAP_PCI_PASID_PRIV)

ABI_STRUCT(iommu_hw_info)
ABI_FIELD(iommu_hw_info, size)
ABI_FIELD(iommu_hw_info, flags)
ABI_FIELD(iommu_hw_info, dev_id)
ABI_FIELD(iommu_hw_info, data_len)
ABI_FIELD(iommu_hw_info, data_uptr)
ABI_FIELD(iommu_hw_info, out_data_type)
ABI_FIELD(iommu_hw_info, out_max_pasid_log2)
ABI_ARRAY(iommu_hw_info, __reserved)
ABI_FIELD(iommu_hw_info, out_capabilities)
ABI_CONST(IOMMU_GET_HW_INFO)

ABI_ENUM(iommufd_hwpt_set_dirty_tracking_flags)
ABI_CONST(IOMMU_HWPT_DIRTY_TRACKING_ENABLE)

ABI_STRUCT(iommu_hwpt_set_dirty_tracking)
ABI_FIELD(iommu_hwpt_set_dirty_tracking, size)
ABI_FIELD(iommu_hwpt_set_dirty_tracking, flags)
ABI_FIELD(iommu_hwpt_set_dirty_tracking, hwpt_id)
ABI_FIELD(iommu_hwpt_set_dirty_tracking, __reserved)
ABI_CONST(IOMMU_HWPT_SET_DIRTY_TRACKING)

ABI_ENUM(iommufd_hwpt_get_dirty_bitmap_flags)
ABI_CONST(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)

ABI_STRUCT(iommu_hwpt_get_dirty_bitmap)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, size)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, hwpt_id)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, flags)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, __reserved)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, iova)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, length)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, page_size)
ABI_FIELD(iommu_hwpt_get_dirty_bitmap, data)
ABI_CONST(IOMMU_HWPT_GET_DIRTY_BITMAP)

/* ------------------------------------------------------------------ VFIO */
ABI_CONST(VFIO_TYPE)
ABI_CONST(VFIO_BASE)

ABI_STRUCT(vfio_device_feature)
ABI_FIELD(vfio_device_feature, argsz)
ABI_FIELD(vfio_device_feature, flags)
ABI_FLEX(vfio_device_feature, data)
ABI_CONST(VFIO_DEVICE_FEATURE_MASK)
ABI_CONST(VFIO_DEVICE_FEATURE_GET)
ABI_CONST(VFIO_DEVICE_FEATURE_SET)
ABI_CONST(VFIO_DEVICE_FEATURE_PROBE)
ABI_CONST(VFIO_DEVICE_FEATURE)

ABI_STRUCT(vfio_device_feature_dma_logging_control)
ABI_FIELD(vfio_device_feature_dma_logging_control, page_size)
ABI_FIELD(vfio_device_feature_dma_logging_control, num_ranges)
ABI_FIELD(vfio_device_feature_dma_logging_control, __reserved)
ABI_FIELD(vfio_device_feature_dma_logging_control, ranges)

ABI_STRUCT(vfio_device_feature_dma_logging_range)
ABI_FIELD(vfio_device_feature_dma_logging_range, iova)
ABI_FIELD(vfio_device_feature_dma_logging_range, length)

ABI_CONST(VFIO_DEVICE_FEATURE_DMA_LOGGING_START)
ABI_CONST(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP)
ABI_CONST(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)

ABI_STRUCT(vfio_device_feature_dma_logging_report)
ABI_FIELD(vfio_device_feature_dma_logging_report, iova)
ABI_FIELD(vfio_device_feature_dma_logging_report, length)
ABI_FIELD(vfio_device_feature_dma_logging_report, page_size)
ABI_FIELD(vfio_device_feature_dma_logging_report, bitmap)

ABI_STRUCT(vfio_device_bind_iommufd)
ABI_FIELD(vfio_device_bind_iommufd, argsz)
ABI_FIELD(vfio_device_bind_iommufd, flags)
ABI_FIELD(vfio_device_bind_iommufd, iommufd)
ABI_FIELD(vfio_device_bind_iommufd, out_devid)
ABI_CONST(VFIO_DEVICE_BIND_IOMMUFD)

ABI_STRUCT(vfio_device_attach_iommufd_pt)
ABI_FIELD(vfio_device_attach_iommufd_pt, argsz)
ABI_FIELD(vfio_device_attach_iommufd_pt, flags)
ABI_FIELD(vfio_device_attach_iommufd_pt, pt_id)
ABI_CONST(VFIO_DEVICE_ATTACH_IOMMUFD_PT)

ABI_STRUCT(vfio_device_detach_iommufd_pt)
ABI_FIELD(vfio_device_detach_iommufd_pt, argsz)
ABI_FIELD(vfio_device_detach_iommufd_pt, flags)
ABI_CONST(VFIO_DEVICE_DETACH_IOMMUFD_PT)
