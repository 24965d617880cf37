/* SPDX-License-Identifier: MIT */
/*
 * Which Linux the sim emulates.  IOMMU_HWPT_GET_DIRTY_BITMAP answered
 * differently within 6.12.y; each difference is one named behaviour here,
 * on from the stable release that brought it (kernel/sim/kernel.c lists
 * them with the commit that changed them).  A host emulates one release,
 * chosen when it is opened (struct sim_config's @kernel, else
 * $DIRTYD_SIM_KERNEL, else the newest kernel of the pinned matrix,
 * kernel/vm/kernels) and kept across adoption.  The VM tests read the same
 * table for the kernel they boot, so a guest test expects of a kernel what
 * the sim does when it emulates that kernel.
 */
#ifndef DIRTYD_KERNEL_SIM_KERNEL_H
#define DIRTYD_KERNEL_SIM_KERNEL_H

#include <stdbool.h>

enum sim_kernel_behaviour {
	/* length 0 is -EINVAL (before: iova + length - 1 wraps: -EOVERFLOW) */
	SIM_KB_ZERO_LENGTH_EINVAL,
	/*
	 * A read whose walk fails returns the failure: -EINVAL for a hole in
	 * the range or a HWPT that is not tracking (before: 0, the bits after
	 * the failure missing)
	 */
	SIM_KB_WALK_ERRORS,
	/*
	 * A dirty leaf whose record does not fit in the range (a read ending
	 * inside a dirty huge IOPTE) is not recorded and the read returns
	 * -EPROTO once the walk is done (before: recorded, clipped to the
	 * user's bitmap pages, 0)
	 */
	SIM_KB_RECORD_BOUNDS,
	SIM_KB_COUNT,
};

/** The release strings are "6.12.N" (uname -r's first three numbers). */
#define SIM_KERNEL_RELEASE_MAX 16

/**
 * struct sim_kernel - one emulated kernel.
 * @release: "6.12.N"
 * @behaviours: bit (1 << enum sim_kernel_behaviour) for each one it has
 */
struct sim_kernel {
	char release[SIM_KERNEL_RELEASE_MAX];
	unsigned int behaviours;
};

/**
 * sim_kernel_lookup() - the behaviours of @release: "6.12.N", anything
 * after the third number ignored ("6.12.118-amd64").  -EINVAL for a
 * string that is not a 6.12.y release: the sim emulates 6.12 only.
 */
int sim_kernel_lookup(const char *release, struct sim_kernel *out);
/** sim_kernel_newest() - the newest release of the pinned matrix. */
const char *sim_kernel_newest(void);
/** sim_kernel_matrix() - the pinned matrix's releases, oldest first. */
const char *const *sim_kernel_matrix(unsigned int *n);
static inline bool sim_kernel_has(const struct sim_kernel *k,
				  enum sim_kernel_behaviour b)
{
	return k->behaviours & (1u << b);
}
/** sim_kernel_behaviour_name() - "zero_length_einval", ... */
const char *sim_kernel_behaviour_name(enum sim_kernel_behaviour b);
/** sim_kernel_behaviour_from_name() - the reverse; -1 if unknown. */
int sim_kernel_behaviour_from_name(const char *name);
/** sim_kernel_behaviour_since() - the first release with @b, "6.12.N". */
const char *sim_kernel_behaviour_since(enum sim_kernel_behaviour b);

#endif /* DIRTYD_KERNEL_SIM_KERNEL_H */
