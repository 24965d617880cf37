// SPDX-License-Identifier: MIT
/* The ABI table of dirtyd's own uAPI copy, kernel/uapi/{iommufd,vfio}.h. */
#include <stddef.h>
#include <stdint.h>

#include "kernel/uapi/iommufd.h"
#include "kernel/uapi/vfio.h"
#include "tests/abi/abi_table.h"

const struct abi_entry abi_ours_table[] = {
#include "tests/abi/abi_entries.h"
};
const size_t abi_ours_count = sizeof(abi_ours_table) /
			      sizeof(abi_ours_table[0]);
