/* SPDX-License-Identifier: MIT */
/*
 * The sim backend tests' assertions on a call's errno return, and the sizes
 * they speak in.
 */
#ifndef DIRTYD_TESTS_SIM_EXPECT_H
#define DIRTYD_TESTS_SIM_EXPECT_H

#include <criterion/criterion.h>
#include <string.h>

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

#endif
