/* SPDX-License-Identifier: MIT */
/*
 * The two tables the ABI test compares: abi_list.h expanded once against
 * dirtyd's kernel/uapi/iommufd.h and vfio.h (abi_ours.c) and once against
 * Linux 6.12's <linux/iommufd.h> and <linux/vfio.h> (abi_kernel.c).  The
 * two sides define the same names, so each table lives in its own
 * translation unit; this header includes none of them.
 */
#ifndef DIRTYD_TESTS_ABI_TABLE_H
#define DIRTYD_TESTS_ABI_TABLE_H

#include <stddef.h>
#include <stdint.h>

/** One measured property: "offsetof(struct iommu_ioas_map, iova)" = 32. */
struct abi_entry {
	const char *name;
	uint64_t value;
};

extern const struct abi_entry abi_ours_table[];
extern const size_t abi_ours_count;
extern const struct abi_entry abi_kernel_table[];
extern const size_t abi_kernel_count;

#endif /* DIRTYD_TESTS_ABI_TABLE_H */
