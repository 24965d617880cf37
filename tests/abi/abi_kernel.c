// SPDX-License-Identifier: MIT
/*
 * The ABI table of Linux 6.12's uAPI headers, taken from Debian's
 * linux-source-6.12 by scripts/linux-uapi.sh.  tests/abi/CMakeLists.txt
 * puts that directory first on the include path, so <linux/iommufd.h> and
 * <linux/vfio.h> are the 6.12 ones and everything they include
 * (<linux/types.h>, <linux/ioctl.h>) is the system's.
 */
#include <stddef.h>
#include <stdint.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "tests/abi/abi_table.h"

#if defined(DIRTYD_KERNEL_UAPI_IOMMUFD_H) || defined(DIRTYD_KERNEL_UAPI_VFIO_H)
#error "abi_kernel.c must measure the kernel's headers, not kernel/uapi/"
#endif
#if !defined(IOMMU_HWPT_GET_DIRTY_BITMAP) || !defined(VFIO_DEVICE_BIND_IOMMUFD)
/* The system's 6.1 <linux/vfio.h> lacks the cdev ioctls. */
#error "put scripts/linux-uapi.sh's directory first on the include path"
#endif

const struct abi_entry abi_kernel_table[] = {
#include "tests/abi/abi_entries.h"
};
const size_t abi_kernel_count = sizeof(abi_kernel_table) /
				sizeof(abi_kernel_table[0]);
