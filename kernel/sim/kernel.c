// SPDX-License-Identifier: MIT
/*
 * The kernels the sim emulates: what changed in IOMMU_HWPT_GET_DIRTY_BITMAP
 * within 6.12.y, from which stable release, and why (kernel/sim/kernel.h).
 *
 * Found by diffing drivers/iommu/iommufd/ of Debian's linux-source-6.12
 * 6.12.107-1~deb12u1 and 6.12.118-1~deb12u1, checked against the VM
 * (tests/scenario/recorded/<release>/) and Debian's changelog:
 *
 *   zero_length_einval  6.12.117  "iommufd: Reject a zero-length dirty
 *       bitmap request": iommufd_check_iova_range() begins with
 *       `if (!bitmap->length) return -EINVAL;`.  Before, length - 1 wraps
 *       and check_add_overflow() answers -EOVERFLOW (unless iova is 0).
 *
 *   walk_errors  6.12.118  "iommufd/iova_bitmap: Ensure that
 *       iova_bitmap_set() handles the full IOVA": iommu_read_and_clear_dirty()
 *       returns what iova_bitmap_for_each() returns, so the -EINVAL of
 *       __iommu_read_and_clear_dirty() at a hole, and of the driver's
 *       read_and_clear_dirty() on a domain that is not tracking, reach user
 *       space.  The areas before a hole were read (and cleared) all the
 *       same: "on failure the dirty state becomes unknown" (the uAPI
 *       kernel-doc the same commit added).
 *
 *   record_bounds  6.12.118  the same commit: iova_bitmap_set() refuses a
 *       record that is not inside [bitmap->iova, bitmap->iova + length)
 *       and remembers -EPROTO, which iova_bitmap_for_each() returns when
 *       the walk itself succeeded.  A dirty huge IOPTE is recorded from the
 *       walk's cursor for the leaf's size, so a read ending inside one
 *       fails; its dirty bit was cleared by then (unless NO_CLEAR).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel/sim/kernel.h"
#include "kernel_matrix.h"	/* generated from kernel/vm/kernels */

static const struct {
	const char *name;
	const char *since;		/* the first release that has it */
} behaviours[SIM_KB_COUNT] = {
	[SIM_KB_ZERO_LENGTH_EINVAL] = { "zero_length_einval", "6.12.117" },
	[SIM_KB_WALK_ERRORS] = { "walk_errors", "6.12.118" },
	[SIM_KB_RECORD_BOUNDS] = { "record_bounds", "6.12.118" },
};

/* N of "6.12.N", or -EINVAL */
static int release_sublevel(const char *release, unsigned int *sub)
{
	unsigned int major, minor;
	int n = 0;

	if (!release ||
	    sscanf(release, "%u.%u.%u%n", &major, &minor, sub, &n) != 3 ||
	    major != 6 || minor != 12 || (release[n] >= '0' && release[n] <= '9'))
		return -EINVAL;
	return 0;
}

static const char *const matrix[] = { DIRTYD_KERNEL_MATRIX };

int sim_kernel_lookup(const char *release, struct sim_kernel *out)
{
	unsigned int sub, since, b;

	if (!out || release_sublevel(release, &sub))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->release, sizeof(out->release), "6.12.%u", sub);
	for (b = 0; b < SIM_KB_COUNT; b++)
		if (!release_sublevel(behaviours[b].since, &since) &&
		    sub >= since)
			out->behaviours |= 1u << b;
	return 0;
}

const char *sim_kernel_newest(void)
{
	return matrix[sizeof(matrix) / sizeof(matrix[0]) - 1];
}

const char *const *sim_kernel_matrix(unsigned int *n)
{
	*n = sizeof(matrix) / sizeof(matrix[0]);
	return matrix;
}

const char *sim_kernel_behaviour_name(enum sim_kernel_behaviour b)
{
	return (unsigned int)b < SIM_KB_COUNT ? behaviours[b].name : "?";
}

int sim_kernel_behaviour_from_name(const char *name)
{
	unsigned int b;

	for (b = 0; b < SIM_KB_COUNT; b++)
		if (!strcmp(name, behaviours[b].name))
			return (int)b;
	return -1;
}

const char *sim_kernel_behaviour_since(enum sim_kernel_behaviour b)
{
	return (unsigned int)b < SIM_KB_COUNT ? behaviours[b].since : "?";
}
