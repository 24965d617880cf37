// SPDX-License-Identifier: MIT
/*
 * Argument errors of dirty tracking on the sim backend, through
 * kernel/backend.h (and the sim's stats, for the release it emulates), each
 * against the code Linux 6.12 returns:
 *
 *   iommufd_hwpt_get_dirty_bitmap()   flags/__reserved -> -EOPNOTSUPP,
 *                                     then the HWPT lookup -> -ENOENT,
 *   iommufd_check_iova_range()        length 0 -> -EINVAL (6.12.117+;
 *                                     before: the wrap below, -EOVERFLOW),
 *                                     iova + length - 1 wraps -> -EOVERFLOW,
 *                                     iova/end not IOAS-aligned -> -EINVAL,
 *                                     page_size 0 -> -EINVAL,
 *                                     iova/end off page_size -> -EINVAL,
 *   iommu_read_and_clear_dirty()      no dirty ops -> -EOPNOTSUPP,
 *                                     a hole or tracking off -> -EINVAL
 *                                     (6.12.118+; before: 0, no bits),
 *   iommufd_hwpt_set_dirty_tracking() HWPT lookup -> -ENOENT,
 *                                     no dirty ops -> -EOPNOTSUPP,
 *   iommufd_get_object()              wrong type or no object -> -ENOENT.
 *
 * IOMMU_HWPT_SET_DIRTY_TRACKING's unknown flags (-EOPNOTSUPP) cannot be
 * expressed: backend_hwpt_set_dirty_tracking() takes a bool.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernel/backend.h"
#include "test_sim_expect.h"

#define IOVA_START	(16 * 0x100000ULL)
#define MAP_LEN		(4 * SZ_2M)

/*
 * The host: "dev0" tracks, "nodirty0" does not.  IOAS ioas has
 * [IOVA_START, IOVA_START + MAP_LEN) mapped; hwpt is a dirty-tracking HWPT
 * on it with dev0 attached, tracking on, page IOVA_START + 4K dirty.
 */
static struct {
	struct backend *b;
	uint32_t ioas, hwpt, dev, plain;
	void *va;
	uint64_t bitmap[MAP_LEN / SZ_2K / 64 + 1];
} h;

static void host_open(void)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 2,
			.devices = {
				{ .name = "dev0", .dirty_tracking = true },
				{ .name = "nodirty0", .dirty_tracking = false },
			},
		},
	};
	uint64_t iova = IOVA_START;

	memset(&h, 0, sizeof(h));
	expect_ok(backend_open(&cfg, &h.b));
	expect_ok(backend_device_bind(h.b, "dev0", &h.dev));
	expect_ok(backend_device_bind(h.b, "nodirty0", &h.plain));
	expect_ok(backend_ioas_alloc(h.b, &h.ioas));
	h.va = mmap(NULL, MAP_LEN, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(h.va, MAP_FAILED);
	expect_ok(backend_ioas_map(h.b, h.ioas,
				   IOMMU_IOAS_MAP_FIXED_IOVA |
					   IOMMU_IOAS_MAP_WRITEABLE |
					   IOMMU_IOAS_MAP_READABLE,
				   h.va, MAP_LEN, &iova));
	expect_ok(backend_hwpt_alloc(h.b, h.dev, h.ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &h.hwpt));
	expect_ok(backend_device_attach(h.b, h.dev, h.hwpt));
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, true));
	expect_ok(backend_dma_write(h.b, h.dev, IOVA_START + SZ_4K, SZ_4K));
}

static void host_close(void)
{
	backend_close(h.b);
	h.b = NULL;
	munmap(h.va, MAP_LEN);
}

TestSuite(dirty_errors, .init = host_open, .fini = host_close);

static int get(uint32_t hwpt, uint64_t iova, uint64_t length,
	       uint64_t page_size, uint32_t flags)
{
	memset(h.bitmap, 0, sizeof(h.bitmap));
	return backend_hwpt_get_dirty_bitmap(h.b, hwpt, iova, length,
					     page_size, h.bitmap, flags);
}

static bool bitmap_clean(void)
{
	size_t i;

	for (i = 0; i < sizeof(h.bitmap) / sizeof(h.bitmap[0]); i++)
		if (h.bitmap[i])
			return false;
	return true;
}

/* A failed read sets no bit and clears no dirty bit: page 1 still dirty. */
static void expect_page1_still_dirty(void)
{
	cr_assert(bitmap_clean(), "a failed read set bits");
	expect_ok(get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, NO_CLEAR));
	cr_assert_eq(h.bitmap[0], 1ULL << 1, "bitmap[0] = 0x%" PRIx64,
		     h.bitmap[0]);
}

Test(dirty_errors, control_read_succeeds)
{
	expect_ok(get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, 0));
	cr_assert_eq(h.bitmap[0], 1ULL << 1);
	expect_ok(get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, 0));
	cr_assert(bitmap_clean());
}

/*
 * 6.12.117+: -EINVAL before anything else about the range; before, length
 * - 1 wraps and check_add_overflow() answers -EOVERFLOW, also first.
 */
Test(dirty_errors, length_zero)
{
	bool einval = kernel_has(h.b, SIM_KB_ZERO_LENGTH_EINVAL);

	expect_rc(kernel_rc_zero_length(h.b, IOVA_START),
		  get(h.hwpt, IOVA_START, 0, SZ_4K, 0));
	expect_rc(kernel_rc_zero_length(h.b, IOVA_START),
		  get(h.hwpt, IOVA_START, 0, SZ_4K, NO_CLEAR));
	/* checked before anything else about the range */
	expect_rc(kernel_rc_zero_length(h.b, UINT64_MAX - SZ_4K + 1),
		  get(h.hwpt, UINT64_MAX - SZ_4K + 1, 0, 0, 0));
	expect_rc(kernel_rc_zero_length(h.b, IOVA_START + 1),
		  get(h.hwpt, IOVA_START + 1, 0, SZ_4K, 0));
	/* the helper's answer, spelled out */
	if (einval)
		expect_err(EINVAL, get(h.hwpt, IOVA_START + 1, 0, SZ_4K, 0));
	else
		expect_err(EOVERFLOW, get(h.hwpt, IOVA_START + 1, 0, SZ_4K,
					  0));
	expect_page1_still_dirty();
}

Test(dirty_errors, overflow)
{
	expect_err(EOVERFLOW, get(h.hwpt, UINT64_MAX - SZ_4K + 1, 2 * SZ_4K,
				  SZ_4K, 0));
	expect_err(EOVERFLOW, get(h.hwpt, SZ_4K, UINT64_MAX, SZ_4K, 0));
	expect_err(EOVERFLOW, get(h.hwpt, IOVA_START, UINT64_MAX - SZ_4K + 1,
				  SZ_4K, 0));
	/* checked before alignment and page_size */
	expect_err(EOVERFLOW, get(h.hwpt, UINT64_MAX - 10, 100, 0, 0));
	expect_page1_still_dirty();
}

/*
 * last_iova = 2^64 - 1 does not wrap: a valid range, unmapped.  The walk
 * finds no area there: -EINVAL from 6.12.118 (walk_errors), 0 before.
 */
Test(dirty_errors, range_ending_at_top_of_iova_space)
{
	expect_rc(kernel_rc_walk(h.b),
		  get(h.hwpt, UINT64_MAX - SZ_4K + 1, SZ_4K, SZ_4K, 0));
	cr_assert(bitmap_clean());
	expect_page1_still_dirty();
}

Test(dirty_errors, unaligned_to_the_iommu_page)
{
	uint64_t align = 0;

	expect_ok(backend_ioas_iova_alignment(h.b, h.ioas, &align));
	cr_assert_eq(align, SZ_4K);
	expect_err(EINVAL, get(h.hwpt, IOVA_START + SZ_2K, SZ_4K, SZ_2K, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START + 1, SZ_4K, 1, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, SZ_4K + SZ_2K, SZ_2K, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, SZ_4K - 1, 1, 0));
	expect_page1_still_dirty();
}

Test(dirty_errors, unaligned_to_the_bitmap_page)
{
	expect_err(EINVAL, get(h.hwpt, IOVA_START + SZ_4K, 2 * SZ_4K,
			       2 * SZ_4K, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, 3 * SZ_4K, 2 * SZ_4K, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START + SZ_4K, SZ_2M, SZ_2M, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, SZ_2M + SZ_4K, SZ_2M, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, MAP_LEN, SZ_1G, 0));
	expect_page1_still_dirty();
}

Test(dirty_errors, page_size_zero)
{
	expect_err(EINVAL, get(h.hwpt, IOVA_START, MAP_LEN, 0, 0));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, MAP_LEN, 0, NO_CLEAR));
	expect_page1_still_dirty();
}

Test(dirty_errors, unknown_flags)
{
	expect_err(EOPNOTSUPP, get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, 2));
	expect_err(EOPNOTSUPP, get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K,
				   NO_CLEAR | 2));
	expect_err(EOPNOTSUPP, get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K,
				   1U << 31));
	expect_err(EOPNOTSUPP, get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K,
				   UINT32_MAX));
	expect_page1_still_dirty();
}

Test(dirty_errors, wrong_hwpt_id)
{
	uint32_t bad[] = { 0, 0x7fff, UINT32_MAX };
	uint32_t gone;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_err(ENOENT, get(bad[i], IOVA_START, MAP_LEN, SZ_4K, 0));
		expect_err(ENOENT,
			   backend_hwpt_set_dirty_tracking(h.b, bad[i], true));
		expect_err(ENOENT,
			   backend_hwpt_set_dirty_tracking(h.b, bad[i], false));
	}
	/* A destroyed HWPT */
	expect_ok(backend_hwpt_alloc(h.b, h.dev, h.ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &gone));
	expect_ok(backend_destroy(h.b, gone));
	expect_err(ENOENT, get(gone, IOVA_START, MAP_LEN, SZ_4K, 0));
	expect_err(ENOENT, backend_hwpt_set_dirty_tracking(h.b, gone, true));
	expect_page1_still_dirty();
}

/* iommufd_get_hwpt_paging() asks for IOMMUFD_OBJ_HWPT_PAGING: -ENOENT. */
Test(dirty_errors, ioas_or_device_id_as_hwpt)
{
	expect_err(ENOENT, get(h.ioas, IOVA_START, MAP_LEN, SZ_4K, 0));
	expect_err(ENOENT, backend_hwpt_set_dirty_tracking(h.b, h.ioas, true));
	expect_err(ENOENT, get(h.dev, IOVA_START, MAP_LEN, SZ_4K, 0));
	expect_err(ENOENT, backend_hwpt_set_dirty_tracking(h.b, h.dev, false));
	expect_page1_still_dirty();
}

/* Allocated without IOMMU_HWPT_ALLOC_DIRTY_TRACKING: no dirty_ops. */
Test(dirty_errors, hwpt_without_dirty_tracking)
{
	uint32_t plain_hwpt;

	expect_ok(backend_hwpt_alloc(h.b, h.plain, h.ioas, 0, &plain_hwpt));
	/* a device that cannot track may join it */
	expect_ok(backend_device_attach(h.b, h.plain, plain_hwpt));
	expect_err(EOPNOTSUPP,
		   backend_hwpt_set_dirty_tracking(h.b, plain_hwpt, true));
	expect_err(EOPNOTSUPP,
		   backend_hwpt_set_dirty_tracking(h.b, plain_hwpt, false));
	expect_ok(backend_dma_write(h.b, h.plain, IOVA_START, SZ_4K));
	expect_err(EOPNOTSUPP, get(plain_hwpt, IOVA_START, MAP_LEN, SZ_4K, 0));
	cr_assert(bitmap_clean());
	/* the range is checked before the dirty ops */
	expect_rc(kernel_rc_zero_length(h.b, IOVA_START),
		  get(plain_hwpt, IOVA_START, 0, SZ_4K, 0));
	expect_err(EOVERFLOW, get(plain_hwpt, UINT64_MAX, 2, SZ_4K, 0));
	expect_err(EINVAL, get(plain_hwpt, IOVA_START, MAP_LEN, 0, 0));
	/* the same device type may allocate a plain one, not a tracking one */
	expect_err(EOPNOTSUPP,
		   backend_hwpt_alloc(h.b, h.plain, h.ioas,
				      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				      &plain_hwpt));
	expect_page1_still_dirty();
}

/* The kernel's order: flags, object, range, dirty ops / tracking state. */
Test(dirty_errors, precedence)
{
	/* flags before the object */
	expect_err(EOPNOTSUPP, get(0, IOVA_START, MAP_LEN, SZ_4K, 2));
	expect_err(EOPNOTSUPP, get(h.ioas, IOVA_START, 0, 0, 4));
	/* the object before the range */
	expect_err(ENOENT, get(0, IOVA_START, 0, SZ_4K, 0));
	expect_err(ENOENT, get(h.ioas, UINT64_MAX, 2, SZ_4K, 0));
	/* length 0, then overflow, then alignment, then page_size */
	expect_rc(kernel_rc_zero_length(h.b, UINT64_MAX),
		  get(h.hwpt, UINT64_MAX, 0, 0, 0));
	expect_err(EOVERFLOW, get(h.hwpt, UINT64_MAX, 2, 0, 0));
	/* a disabled HWPT still checks the range */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, false));
	expect_err(EINVAL, get(h.hwpt, IOVA_START, SZ_4K, 0, 0));
	expect_err(EOVERFLOW, get(h.hwpt, UINT64_MAX, 2, SZ_4K, 0));
	/* then the driver refuses the walk: -EINVAL (6.12.118+) or 0 */
	expect_rc(kernel_rc_walk(h.b),
		  get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, 0));
	cr_assert(bitmap_clean());
}

/*
 * $DIRTYD_SIM_STRICT=1, as the daemon's tests run: a read whose answer
 * differs between the kernels of the matrix aborts the process; a read of
 * exactly what is mapped does not.
 */
Test(dirty_strict, hole_read_aborts, .signal = SIGABRT)
{
	cr_assert_eq(setenv("DIRTYD_SIM_STRICT", "1", 1), 0);
	host_open();
	get(h.hwpt, IOVA_START, MAP_LEN + SZ_2M, SZ_4K, NO_CLEAR);
	cr_assert_fail("a read across a hole did not abort");
}

Test(dirty_strict, disabled_read_aborts, .signal = SIGABRT)
{
	cr_assert_eq(setenv("DIRTYD_SIM_STRICT", "1", 1), 0);
	host_open();
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, h.hwpt, false));
	get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, NO_CLEAR);
	cr_assert_fail("a read while tracking is off did not abort");
}

Test(dirty_strict, exact_reads_pass, .fini = host_close)
{
	cr_assert_eq(setenv("DIRTYD_SIM_STRICT", "1", 1), 0);
	host_open();
	expect_ok(get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, NO_CLEAR));
	expect_ok(get(h.hwpt, IOVA_START + SZ_2M, SZ_2M, SZ_4K, 0));
	expect_ok(get(h.hwpt, IOVA_START, MAP_LEN, SZ_4K, 0));
}
