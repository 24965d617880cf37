/* SPDX-License-Identifier: MIT */
/*
 * The sim backend tests' assertions on a call's errno return, the sizes
 * they speak in, and what the kernel the host emulates does where 6.12.y
 * releases differ (kernel/sim/kernel.h).
 */
#ifndef DIRTYD_TESTS_SIM_EXPECT_H
#define DIRTYD_TESTS_SIM_EXPECT_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernel/sim/kernel.h"
#include "kernel/sim/sim.h"

#define SZ_2K		0x800ULL
#define SZ_4K		0x1000ULL
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL
#define NO_CLEAR	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR

/* @expr returns 0. */
#define expect_ok(expr)							\
	do {								\
		int rc_ = (expr);					\
		cr_assert_eq(rc_, 0, "%s = %d (%s)", #expr, rc_,	\
			     strerror(-rc_));				\
	} while (0)

/* @expr returns -@err. */
#define expect_err(err, expr)						\
	do {								\
		int rc_ = (expr);					\
		cr_assert_eq(rc_, -(err), "%s = %d (%s), want -%s",	\
			     #expr, rc_, strerror(-rc_), #err);		\
	} while (0)

/* @expr returns @want: 0 or a -errno the test worked out. */
#define expect_rc(want, expr)						\
	do {								\
		int rc_ = (expr), want_ = (want);			\
		cr_assert_eq(rc_, want_, "%s = %d (%s), want %d (%s)",	\
			     #expr, rc_, strerror(-rc_), want_,		\
			     strerror(-want_));				\
	} while (0)

/*
 * kernel_has() - whether the kernel the sim host @b emulates has behaviour
 * @kb.  Asked of the host (the release it chose when opened: struct
 * sim_config's kernel, else $DIRTYD_SIM_KERNEL, else the newest), so that
 * a test expects what the host under test does.
 */
static inline bool kernel_has(struct backend *b, enum sim_kernel_behaviour kb)
{
	struct sim_stats st;
	struct sim_kernel k;

	expect_ok(sim_backend_stats(b, &st));
	expect_ok(sim_kernel_lookup(st.kernel, &k));
	return sim_kernel_has(&k, kb);
}

/*
 * What a GET_DIRTY_BITMAP on @b returns where the releases differ:
 * kernel_rc_zero_length() for length 0 at @iova (the sim's -EINVAL at
 * iova 0 before zero_length_einval: kernel/sim/dirty.c, 8),
 * kernel_rc_walk() for a read across a hole or of a HWPT that is not
 * tracking, kernel_rc_bounds() for one whose walk succeeds but ends inside
 * a dirty huge leaf.
 */
static inline int kernel_rc_zero_length(struct backend *b, uint64_t iova)
{
	return kernel_has(b, SIM_KB_ZERO_LENGTH_EINVAL) || !iova ? -EINVAL :
								    -EOVERFLOW;
}

static inline int kernel_rc_walk(struct backend *b)
{
	return kernel_has(b, SIM_KB_WALK_ERRORS) ? -EINVAL : 0;
}

/*
 * The refusal is record_bounds; that iommu_read_and_clear_dirty() passes
 * its -EPROTO on is walk_errors (one commit, 6.12.118).
 */
static inline int kernel_rc_bounds(struct backend *b)
{
	return kernel_has(b, SIM_KB_RECORD_BOUNDS) &&
	       kernel_has(b, SIM_KB_WALK_ERRORS) ? -EPROTO : 0;
}

/* sim_stats.version_dependent_reads of @b so far. */
static inline uint64_t version_dependent_reads(struct backend *b)
{
	struct sim_stats st;

	expect_ok(sim_backend_stats(b, &st));
	return st.version_dependent_reads;
}

#endif
