// SPDX-License-Identifier: MIT
/*
 * The sim's sources of DMA dirty bits besides one HWPT (issue 17): devices
 * behind several simulated IOMMUs (one HWPT per instance), devices that
 * log their own DMA (VFIO DMA logging: kernel/sim/dmalog.c) and emulated
 * (mdev) devices, each against what Linux 6.12 answers (the functions are
 * named in kernel/sim/device.c and dmalog.c); then the oracle: a
 * randomized model of several devices behind two IOMMUs and logging
 * devices, random DMA, every HWPT and every log read (synchronously or on
 * the sim's reader threads) and ORed: exactly the pages written, plus the
 * coarser log granule's rounding the model computes; nothing lost, nothing
 * extra.  And logs across an adoption, a DMA racing reports, and logs
 * across the death of the process in the middle of any operation.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/backend.h"
#include "test_rng.h"
#include "test_sim_expect.h"

#define SZ_16K	0x4000ULL
#define SZ_64K	0x10000ULL
#define UVA(iova) ((void *)(uintptr_t)(0x100000000000ULL + (iova)))
#define RW (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | \
	    IOMMU_IOAS_MAP_READABLE)

/* name, IOMMU instance, dirty bits, logging, granule, max ranges,
 * emulated */
#define DEV(n, i, d, l, g, m, e) { .name = n, .iommu = i, \
	.dirty_tracking = d, .dma_logging = l, .dma_log_page_size = g, \
	.dma_log_max_ranges = m, .emulated = e }

static struct backend *host(unsigned int n,
			    const struct sim_device_spec *devs)
{
	struct backend_config cfg = { .kind = BACKEND_SIM };
	struct backend *b;

	cfg.sim.n_devices = n;
	memcpy(cfg.sim.devices, devs, n * sizeof(*devs));
	expect_ok(backend_open(&cfg, &b));
	return b;
}

static uint32_t dev_bind(struct backend *b, const char *name)
{
	uint32_t id;

	expect_ok(backend_device_bind(b, name, &id));
	return id;
}

static void map(struct backend *b, uint32_t ioas, uint64_t iova,
		uint64_t len, uint32_t flags)
{
	expect_ok(backend_ioas_map(b, ioas, flags, UVA(iova), len, &iova));
}

static int start1(struct backend *b, uint32_t dev, uint64_t *pgsize,
		  uint64_t iova, uint64_t len)
{
	struct backend_dma_log_range r = { iova, len };

	return backend_dma_log_start(b, dev, pgsize, &r, 1);
}

/* ----------------------------------------------------- several IOMMUs */

Test(sources, a_hwpt_takes_only_devices_of_its_iommu)
{
	const struct sim_device_spec devs[] = {
		DEV("a0", 0, true, false, 0, 0, false),
		DEV("a1", 0, true, false, 0, 0, false),
		DEV("b0", 1, true, false, 0, 0, false),
		DEV("b1", 1, false, false, 0, 0, false),
	};
	struct backend *b = host(4, devs);
	uint32_t a0 = dev_bind(b, "a0"), a1 = dev_bind(b, "a1"), b0 = dev_bind(b, "b0");
	uint32_t b1 = dev_bind(b, "b1"), ioas, ha, hb, auto_a, auto_b, id;
	uint64_t bits[1];
	struct sim_stats st;

	expect_ok(backend_ioas_alloc(b, &ioas));
	map(b, ioas, 0, SZ_2M, RW);
	expect_ok(backend_hwpt_alloc(b, a0, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &ha));
	expect_ok(backend_hwpt_alloc(b, b0, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hb));
	/* arm_smmu_attach_dev(): another instance's domain */
	expect_err(EINVAL, backend_device_attach(b, b0, ha));
	expect_err(EINVAL, backend_device_attach(b, a0, hb));
	expect_ok(backend_device_attach(b, a0, ha));
	expect_ok(backend_device_attach(b, b0, hb));
	/* a replace across instances fails too, and leaves it where it was */
	expect_err(EINVAL, backend_device_attach(b, a0, hb));
	expect_ok(sim_device_hwpt(b, a0, &id));
	cr_assert_eq(id, ha);

	/* auto domains: one per instance (the -EINVAL tries the next) */
	expect_ok(backend_device_attach(b, a1, ioas));
	expect_ok(backend_device_attach(b, b1, ioas));
	expect_ok(sim_device_hwpt(b, a1, &auto_a));
	expect_ok(sim_device_hwpt(b, b1, &auto_b));
	cr_assert_neq(auto_a, auto_b);
	expect_ok(sim_backend_stats(b, &st));
	cr_assert_eq(st.n_hwpt, 4);

	/* DMA dirties the writer's HWPT only */
	expect_ok(backend_hwpt_set_dirty_tracking(b, ha, true));
	expect_ok(backend_hwpt_set_dirty_tracking(b, hb, true));
	expect_ok(backend_dma_write(b, a0, 1 * SZ_4K, SZ_4K));
	expect_ok(backend_dma_write(b, b0, 2 * SZ_4K, SZ_4K));
	expect_ok(backend_dma_write(b, b1, 3 * SZ_4K, SZ_4K));
	bits[0] = 0;
	expect_ok(backend_hwpt_get_dirty_bitmap(b, ha, 0, 64 * SZ_4K, SZ_4K,
						bits, 0));
	cr_assert_eq(bits[0], 1ULL << 1);
	bits[0] = 0;
	expect_ok(backend_hwpt_get_dirty_bitmap(b, hb, 0, 64 * SZ_4K, SZ_4K,
						bits, 0));
	cr_assert_eq(bits[0], 1ULL << 2);
	backend_close(b);
}

/* ------------------------------------------------------- DMA logging */

static const struct sim_device_spec log_devs[] = {
	DEV("log0", 1, false, true, 0, 4, false),
	DEV("plain0", 0, true, false, 0, 0, false),
	DEV("g16k", 0, false, true, SZ_16K, 0, false),
	DEV("two", 0, false, true, 0, 2, false),
	DEV("one", 0, false, true, 0, 1, false),
};

Test(dma_log, probe_and_the_checks_of_start)
{
	struct backend *b = host(5, log_devs);
	uint32_t l = dev_bind(b, "log0"), p = dev_bind(b, "plain0");
	struct backend_dma_log_range r[BACKEND_DMA_LOG_MAX_RANGES + 1];
	uint64_t ps = SZ_4K;
	unsigned int i;

	expect_ok(backend_dma_log_probe(b, l));
	expect_err(ENOTTY, backend_dma_log_probe(b, p));
	expect_err(ENOENT, backend_dma_log_probe(b, 4242));
	/* no log_ops: -ENOTTY before anything is looked at */
	expect_err(ENOTTY, backend_dma_log_start(b, p, &ps, r, 0));
	expect_err(ENOTTY, backend_dma_log_report(b, p, 0, SZ_4K, 1, NULL));
	expect_err(ENOTTY, backend_dma_log_stop(b, p));

	for (i = 0; i <= BACKEND_DMA_LOG_MAX_RANGES; i++)
		r[i] = (struct backend_dma_log_range){ i * SZ_64K, SZ_4K };
	expect_err(EINVAL, backend_dma_log_start(b, l, &ps, r, 0));
	expect_err(E2BIG, backend_dma_log_start(b, l, &ps, r,
					       BACKEND_DMA_LOG_MAX_RANGES + 1));
	expect_err(EINVAL, start1(b, l, &ps, SZ_2K, SZ_4K));
	expect_err(EINVAL, start1(b, l, &ps, 0, SZ_4K + SZ_2K));
	expect_err(EOVERFLOW, start1(b, l, &ps, -SZ_4K, SZ_4K));
	expect_err(EOVERFLOW, start1(b, l, &ps, -SZ_4K, 2 * SZ_4K));
	expect_err(EINVAL, start1(b, l, &ps, 0, 0));
	/* overlapping, in any order; touching is fine */
	r[0] = (struct backend_dma_log_range){ SZ_64K, SZ_64K };
	r[1] = (struct backend_dma_log_range){ 0, SZ_64K + SZ_4K };
	expect_err(EINVAL, backend_dma_log_start(b, l, &ps, r, 2));
	/* the first bad range decides: unaligned before it wraps */
	r[0] = (struct backend_dma_log_range){ SZ_2K, SZ_4K };
	r[1] = (struct backend_dma_log_range){ -SZ_4K, SZ_64K };
	expect_err(EINVAL, backend_dma_log_start(b, l, &ps, r, 2));
	cr_assert_eq(ps, SZ_4K, "a failed START changed the page size");

	/* 12 KiB passes IS_ALIGNED() for multiples of 16 KiB; ilog2() makes
	 * it 8 KiB */
	ps = 3 * SZ_4K;
	expect_ok(start1(b, l, &ps, 0, SZ_64K));
	cr_assert_eq(ps, 2 * SZ_4K);
	/* started: -EINVAL (mlx5, pds) */
	ps = SZ_4K;
	expect_err(EINVAL, start1(b, l, &ps, 0, SZ_64K));
	expect_ok(backend_dma_log_stop(b, l));
	expect_ok(backend_dma_log_stop(b, l));
	/* sorted by the kernel's interval tree: any order */
	r[0] = (struct backend_dma_log_range){ SZ_2M, SZ_64K };
	r[1] = (struct backend_dma_log_range){ 0, SZ_64K };
	expect_ok(backend_dma_log_start(b, l, &ps, r, 2));
	cr_assert_eq(ps, SZ_4K);
	backend_close(b);
}

Test(dma_log, the_checks_of_report)
{
	struct backend *b = host(5, log_devs);
	uint32_t l = dev_bind(b, "log0");
	struct backend_dma_log_range r[2] = { { 0, SZ_64K },
					      { SZ_64K, SZ_64K } };
	uint64_t ps = SZ_4K, bits[2] = { 0 };

	/* before START: the page size first, then the driver's -EINVAL */
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, SZ_4K, SZ_2K,
						  bits));
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, SZ_4K, 3 * SZ_4K,
						  bits));
	expect_err(EOVERFLOW, backend_dma_log_report(b, l, -SZ_4K, SZ_4K,
						     SZ_4K, bits));
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, SZ_4K, SZ_4K,
						  bits));
	expect_ok(backend_dma_log_start(b, l, &ps, r, 2));
	expect_ok(backend_dma_log_report(b, l, 0, SZ_64K, SZ_4K, bits));
	expect_ok(backend_dma_log_report(b, l, SZ_64K, SZ_64K, SZ_64K, bits));
	/* length 0; outside; across two ranges (pds_vfio_dirty_sync()) */
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, 0, SZ_4K, bits));
	expect_err(EINVAL, backend_dma_log_report(b, l, 2 * SZ_64K, SZ_4K,
						  SZ_4K, bits));
	expect_err(EINVAL, backend_dma_log_report(b, l, SZ_64K - SZ_4K,
						  2 * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0] | bits[1], 0);
	/* stopped: forgotten */
	expect_ok(backend_dma_log_stop(b, l));
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, SZ_64K, SZ_4K,
						  bits));
	backend_close(b);
}

/* log0 on an IOAS's auto domain (IOMMU 1, no dirty bits), [0, 1 MiB)
 * mapped. */
Test(dma_log, records_what_the_device_wrote_and_report_clears)
{
	struct backend *b = host(5, log_devs);
	uint32_t l = dev_bind(b, "log0"), ioas, hwpt;
	uint64_t ps = SZ_4K, bits[4] = { 0 };
	bool on;

	expect_ok(backend_ioas_alloc(b, &ioas));
	map(b, ioas, 0, 16 * SZ_64K, RW);
	expect_ok(start1(b, l, &ps, 0, 16 * SZ_64K));
	/* blocked DMA (not attached) writes nothing, logs nothing */
	expect_err(ENODEV, backend_dma_write(b, l, 0, SZ_4K));
	expect_ok(backend_device_attach(b, l, ioas));
	expect_ok(sim_device_hwpt(b, l, &hwpt));
	expect_err(EOPNOTSUPP, backend_hwpt_set_dirty_tracking(b, hwpt, true));
	expect_ok(sim_hwpt_tracking(b, hwpt, &on));
	cr_assert(!on);

	/* a byte of page 1, pages 3-4, and a write that faults at 1 MiB
	 * after writing its first two pages */
	expect_ok(backend_dma_write(b, l, SZ_4K + 100, 1));
	expect_ok(backend_dma_write(b, l, 3 * SZ_4K, 2 * SZ_4K));
	expect_err(ENOENT, backend_dma_write(b, l, 16 * SZ_64K - 2 * SZ_4K,
					     4 * SZ_4K));
	expect_ok(backend_dma_log_report(b, l, 0, 16 * SZ_64K, SZ_4K, bits));
	cr_assert_eq(bits[0], (1ULL << 1) | (3ULL << 3));
	cr_assert_eq(bits[3], 3ULL << 62);
	memset(bits, 0, sizeof(bits));
	expect_ok(backend_dma_log_report(b, l, 0, 16 * SZ_64K, SZ_4K, bits));
	cr_assert_eq(bits[0] | bits[1] | bits[2] | bits[3], 0,
		     "a report did not clear");

	/* a report of a part takes that part only */
	expect_ok(backend_dma_write(b, l, 0, 8 * SZ_4K));
	expect_ok(backend_dma_log_report(b, l, 2 * SZ_4K, 2 * SZ_4K, SZ_4K,
					 bits));
	cr_assert_eq(bits[0], 3);
	bits[0] = 0;
	expect_ok(backend_dma_log_report(b, l, 0, SZ_64K, 2 * SZ_4K, bits));
	cr_assert_eq(bits[0], 1 | 1 << 2 | 1 << 3);

	/* unbind stops it: bound again, not started */
	expect_ok(backend_dma_write(b, l, 0, SZ_4K));
	expect_ok(backend_device_unbind(b, l));
	l = dev_bind(b, "log0");
	expect_err(EINVAL, backend_dma_log_report(b, l, 0, SZ_64K, SZ_4K,
						  bits));
	expect_ok(start1(b, l, &ps, 0, SZ_64K));
	backend_close(b);
}

Test(dma_log, a_coarser_granule_and_combined_ranges)
{
	struct backend *b = host(5, log_devs);
	uint32_t g = dev_bind(b, "g16k"), two = dev_bind(b, "two"), one = dev_bind(b, "one");
	struct backend_dma_log_range r[3] = {
		{ 0, SZ_4K }, { 2 * SZ_4K, SZ_4K }, { 25 * SZ_4K, SZ_4K },
	};
	uint64_t ps = SZ_4K, bits[2] = { 0 }, id;
	uint32_t ioas;
	int want;

	expect_ok(backend_ioas_alloc(b, &ioas));
	map(b, ioas, 0, SZ_2M, RW);
	for (id = 0; id < 3; id++)
		expect_ok(backend_device_attach(b, (uint32_t[]){ g, two, one }[id],
						ioas));

	/* 4 KiB asked, the granule given */
	expect_ok(start1(b, g, &ps, 0, SZ_64K));
	cr_assert_eq(ps, SZ_16K);
	expect_ok(backend_dma_write(b, g, 5 * SZ_4K, 1));
	expect_ok(backend_dma_log_report(b, g, 0, SZ_64K, SZ_4K, bits));
	cr_assert_eq(bits[0], 0xfULL << 4, "0x%llx",
		     (unsigned long long)bits[0]);
	bits[0] = 0;
	expect_ok(backend_dma_write(b, g, 5 * SZ_4K, 1));
	expect_ok(backend_dma_log_report(b, g, 0, SZ_64K, SZ_64K, bits));
	cr_assert_eq(bits[0], 1);
	/* a report cutting a log page: refused (-EPROTO) or clipped */
	bits[0] = 0;
	expect_ok(backend_dma_write(b, g, 5 * SZ_4K, 1));
	want = kernel_has(b, SIM_KB_RECORD_BOUNDS) ? -EPROTO : 0;
	expect_rc(want, backend_dma_log_report(b, g, 6 * SZ_4K, 2 * SZ_4K,
					       SZ_4K, bits));
	cr_assert_eq(bits[0], want ? 0 : 3);

	/* two ranges at most: the closest two of three become one */
	ps = SZ_4K;
	expect_ok(backend_dma_log_start(b, two, &ps, r, 3));
	expect_ok(backend_dma_write(b, two, SZ_4K, SZ_4K));	/* the gap */
	bits[0] = 0;
	expect_ok(backend_dma_log_report(b, two, 0, 3 * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0], 2);
	expect_err(EINVAL, backend_dma_log_report(b, two, 0, 26 * SZ_4K,
						  SZ_4K, bits));
	/* one range: first start to last end */
	expect_ok(backend_dma_log_start(b, one, &ps, r, 3));
	expect_ok(backend_dma_write(b, one, 10 * SZ_4K, SZ_4K));
	bits[0] = 0;
	expect_ok(backend_dma_log_report(b, one, 0, 26 * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0], 1ULL << 10);
	backend_close(b);
}

/* A logging device on a tracking HWPT records in both. */
Test(dma_log, independent_of_the_iommu_and_in_both)
{
	const struct sim_device_spec devs[] = {
		DEV("nic", 0, true, true, 0, 0, false),
	};
	struct backend *b = host(1, devs);
	uint32_t d = dev_bind(b, "nic"), ioas, hwpt;
	uint64_t ps = SZ_4K, lb = 0, hb = 0;

	expect_ok(backend_ioas_alloc(b, &ioas));
	map(b, ioas, 0, SZ_2M, RW);
	expect_ok(backend_hwpt_alloc(b, d, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	expect_ok(backend_device_attach(b, d, hwpt));
	expect_ok(backend_hwpt_set_dirty_tracking(b, hwpt, true));
	expect_ok(start1(b, d, &ps, 0, SZ_2M));
	expect_ok(backend_dma_write(b, d, 7 * SZ_4K, SZ_4K));
	expect_ok(backend_dma_log_report(b, d, 0, 64 * SZ_4K, SZ_4K, &lb));
	expect_ok(backend_hwpt_get_dirty_bitmap(b, hwpt, 0, 64 * SZ_4K, SZ_4K,
						&hb, 0));
	cr_assert_eq(lb, 1ULL << 7);
	cr_assert_eq(hb, 1ULL << 7);
	backend_close(b);
}

/* ------------------------------------------------- emulated devices */

Test(emulated, answers_as_the_kernel_for_mtty)
{
	const struct sim_device_spec devs[] = {
		DEV("mtty0", 0, false, true, 0, 0, true),
		DEV("mdpy0", 0, false, false, 0, 0, true),
		DEV("nic0", 0, true, false, 0, 0, false),
	};
	struct backend *b = host(3, devs);
	uint32_t m = dev_bind(b, "mtty0"), y = dev_bind(b, "mdpy0"), n = dev_bind(b, "nic0");
	uint32_t ioas, ioas2, hwpt, id;
	struct backend_hw_info info;
	uint64_t ps = 2 * SZ_4K, bits = 0, align;

	expect_ok(backend_ioas_alloc(b, &ioas));
	expect_ok(backend_ioas_alloc(b, &ioas2));
	map(b, ioas, 0, SZ_64K, RW);
	map(b, ioas, SZ_64K, SZ_64K, IOMMU_IOAS_MAP_FIXED_IOVA |
					  IOMMU_IOAS_MAP_READABLE);
	expect_ok(backend_hwpt_alloc(b, n, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	expect_ok(backend_device_attach(b, n, hwpt));
	expect_ok(backend_hwpt_set_dirty_tracking(b, hwpt, true));

	/* its id is an access, not a device */
	expect_err(ENOENT, backend_device_get_hw_info(b, m, &info));
	expect_err(ENOENT, backend_hwpt_alloc(b, m, ioas, 0, &id));
	expect_err(EBUSY, backend_destroy(b, m));
	/* iommufd_get_ioas(): only an IOAS */
	expect_err(ENOENT, backend_device_attach(b, m, hwpt));
	expect_err(ENOENT, backend_device_attach(b, m, n));
	expect_err(ENOENT, backend_device_attach(b, m, 4242));
	expect_err(ENOENT, backend_dma_write(b, m, 0, SZ_4K));

	expect_ok(backend_ioas_iova_alignment(b, ioas2, &align));
	cr_assert_eq(align, 1);
	expect_ok(backend_device_attach(b, m, ioas2));
	expect_ok(backend_ioas_iova_alignment(b, ioas2, &align));
	cr_assert_eq(align, SZ_4K, "an access raises the alignment");
	expect_ok(backend_device_attach(b, m, ioas));	/* replace */
	expect_ok(backend_ioas_iova_alignment(b, ioas2, &align));
	cr_assert_eq(align, 1);
	expect_ok(backend_device_attach(b, m, ioas));
	expect_err(ENODEV, sim_device_hwpt(b, m, &id));
	expect_err(EBUSY, backend_destroy(b, ioas));

	/* iommufd_access_rw(): no IO page table, no dirty bit anywhere */
	expect_ok(backend_dma_write(b, m, 0, 2 * SZ_4K));
	expect_err(EPERM, backend_dma_write(b, m, SZ_64K - SZ_4K, 2 * SZ_4K));
	expect_err(ENOENT, backend_dma_write(b, m, 2 * SZ_64K, SZ_4K));
	expect_err(ENOENT, backend_dma_write(b, m, SZ_2M, SZ_4K));
	expect_ok(backend_hwpt_get_dirty_bitmap(b, hwpt, 0, 2 * SZ_64K, SZ_4K,
						&bits, 0));
	cr_assert_eq(bits, 0);

	/* mtty's log_ops: vfio_main.c's checks, then nothing */
	expect_ok(backend_dma_log_probe(b, m));
	expect_err(ENOTTY, backend_dma_log_probe(b, y));
	expect_err(ENOTTY, backend_dma_log_start(b, y, &ps, NULL, 0));
	expect_ok(backend_dma_log_report(b, m, 0, SZ_64K, SZ_4K, &bits));
	expect_err(EINVAL, backend_dma_log_report(b, m, 0, SZ_64K, SZ_2K,
						  &bits));
	expect_err(EINVAL, start1(b, m, &ps, SZ_4K, SZ_64K));
	expect_ok(start1(b, m, &ps, 0, SZ_64K));
	cr_assert_eq(ps, 2 * SZ_4K, "mtty leaves the page size");
	expect_ok(start1(b, m, &ps, 0, SZ_64K));
	expect_ok(backend_dma_write(b, m, 0, SZ_4K));
	expect_ok(backend_dma_log_report(b, m, 0, SZ_64K, SZ_4K, &bits));
	cr_assert_eq(bits, 0);
	expect_ok(backend_dma_log_stop(b, m));
	expect_ok(backend_dma_log_stop(b, m));

	expect_ok(backend_device_detach(b, m));
	expect_ok(backend_device_detach(b, m));
	expect_err(ENOENT, backend_dma_write(b, m, 0, SZ_4K));
	expect_ok(backend_device_unbind(b, m));
	expect_ok(backend_device_detach(b, n));
	expect_ok(backend_destroy(b, hwpt));
	expect_ok(backend_destroy(b, ioas));
	backend_close(b);
}

/* ------------------------------------------------------ the oracle */

#define N_RANGES 5
#define PAGES_PER_RANGE 96	/* 384 KiB, a multiple of 16 KiB */
#define RANGE_IOVA(i) (0x1000000ULL * (i) + 0x40000ULL * (i))
#define N_DEV 6
#define WORDS ((PAGES_PER_RANGE + 63) / 64)

enum { D0, D1, D2, D3, D4, EMU };

static const struct sim_device_spec oracle_devs[N_DEV] = {
	[D0] = DEV("d0", 0, true, false, 0, 0, false),
	[D1] = DEV("d1", 0, true, true, 0, 0, false),		/* both */
	[D2] = DEV("d2", 1, true, false, 0, 0, false),
	[D3] = DEV("d3", 1, false, true, 0, 0, false),		/* log only */
	[D4] = DEV("d4", 0, false, true, SZ_16K, 2, false),	/* 16K, 2 */
	[EMU] = DEV("m0", 0, false, true, 0, 0, true),
};

struct oracle {
	struct backend *b;
	uint32_t dev[N_DEV], ioas, hwpt[2];
	uint64_t want[N_RANGES][WORDS];		/* the model */
	uint64_t got[N_RANGES][WORDS];
	unsigned int emulated_only;		/* pages only m0 wrote */
	struct io_uring ring;
};

static void oracle_setup(struct oracle *o)
{
	struct backend_dma_log_range r[N_RANGES];
	unsigned int i;
	uint64_t ps;

	memset(o, 0, sizeof(*o));
	o->b = host(N_DEV, oracle_devs);
	for (i = 0; i < N_DEV; i++)
		o->dev[i] = dev_bind(o->b, oracle_devs[i].name);
	expect_ok(backend_ioas_alloc(o->b, &o->ioas));
	for (i = 0; i < N_RANGES; i++) {
		map(o->b, o->ioas, RANGE_IOVA(i), PAGES_PER_RANGE * SZ_4K, RW);
		r[i] = (struct backend_dma_log_range){
			RANGE_IOVA(i), PAGES_PER_RANGE * SZ_4K };
	}
	expect_ok(backend_hwpt_alloc(o->b, o->dev[D0], o->ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &o->hwpt[0]));
	expect_ok(backend_hwpt_alloc(o->b, o->dev[D2], o->ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &o->hwpt[1]));
	expect_ok(backend_device_attach(o->b, o->dev[D0], o->hwpt[0]));
	expect_ok(backend_device_attach(o->b, o->dev[D1], o->hwpt[0]));
	expect_ok(backend_device_attach(o->b, o->dev[D2], o->hwpt[1]));
	expect_ok(backend_device_attach(o->b, o->dev[D3], o->ioas));
	expect_ok(backend_device_attach(o->b, o->dev[D4], o->ioas));
	expect_ok(backend_device_attach(o->b, o->dev[EMU], o->ioas));
	for (i = 0; i < 2; i++)
		expect_ok(backend_hwpt_set_dirty_tracking(o->b, o->hwpt[i],
							  true));
	for (i = D1; i <= EMU; i++) {
		if (!oracle_devs[i].dma_logging)
			continue;
		ps = SZ_4K;
		expect_ok(backend_dma_log_start(o->b, o->dev[i], &ps, r,
						N_RANGES));
		cr_assert_eq(ps, i == D4 ? SZ_16K : SZ_4K);
	}
	cr_assert_eq(io_uring_queue_init(64, &o->ring, 0), 0);
}

static void bit_set(uint64_t *w, uint64_t k)
{
	w[k / 64] |= 1ULL << (k % 64);
}

/* Device @d writes [@iova, @iova + @len) of range @ri (which may run past
 * its end, faulting there); the model learns what a read must show. */
static void oracle_dma(struct oracle *o, unsigned int d, unsigned int ri,
		       uint64_t off, uint64_t len)
{
	uint64_t end = PAGES_PER_RANGE * SZ_4K, p, first, last;
	int rc = backend_dma_write(o->b, o->dev[d], RANGE_IOVA(ri) + off, len);

	expect_rc(off + len > end ? -ENOENT : 0, rc);	/* the gap faults */
	if (d == EMU) {
		o->emulated_only++;
		return;
	}
	first = off / SZ_4K;
	last = ((off + len > end ? end : off + len) - 1) / SZ_4K;
	if (d == D4) {	/* its 16 KiB log pages */
		first &= ~3ULL;
		last |= 3;
	}
	for (p = first; p <= last; p++)
		bit_set(o->want[ri], p);
}

/* One read of every source over every range, ORed into o->got. */
static void oracle_harvest(struct oracle *o)
{
	struct backend_dirty_read rd[N_RANGES * 5];
	unsigned int i, n = 0, async = 0, r, s;

	memset(o->got, 0, sizeof(o->got));
	for (r = 0; r < N_RANGES; r++) {
		for (s = 0; s < 5; s++) {
			struct backend_dirty_read *x = &rd[n++];

			*x = (struct backend_dirty_read){
				.iova = RANGE_IOVA(r),
				.length = PAGES_PER_RANGE * SZ_4K,
				.page_size = SZ_4K,
				.bitmap = o->got[r],
			};
			if (s < 2) {
				x->hwpt_id = o->hwpt[s];
			} else {
				x->source = BACKEND_READ_DMA_LOG;
				x->dev_id = o->dev[(unsigned int[]){ D1, D3,
								     D4 }[s - 2]];
			}
		}
	}
	/* each read alone (the bitmaps are shared): sync or on the ring */
	for (i = 0; i < n; i++) {
		struct io_uring_cqe *cqe;

		if (rng() & 1) {
			if (rd[i].source == BACKEND_READ_HWPT)
				expect_ok(backend_hwpt_get_dirty_bitmap(
					o->b, rd[i].hwpt_id, rd[i].iova,
					rd[i].length, SZ_4K, rd[i].bitmap, 0));
			else
				expect_ok(backend_dma_log_report(
					o->b, rd[i].dev_id, rd[i].iova,
					rd[i].length, SZ_4K, rd[i].bitmap));
			continue;
		}
		expect_ok(backend_dirty_read_prep(o->b,
						  io_uring_get_sqe(&o->ring),
						  o->ring.ring_fd, &rd[i], i));
		cr_assert_eq(io_uring_submit(&o->ring), 1);
		cr_assert_eq(io_uring_wait_cqe(&o->ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, i);
		cr_assert_eq(cqe->res, 0, "read %u: %d", i, cqe->res);
		io_uring_cqe_seen(&o->ring, cqe);
		async++;
	}
	(void)async;
}

Test(sources, oracle_every_page_written_once_across_sources,
     .timeout = 120)
{
	struct oracle o;
	unsigned int round, op, r, w, checked = 0;

	rng_seed(0x17);
	oracle_setup(&o);
	for (round = 0; round < 200; round++) {
		unsigned int ops = rng() % 12;

		for (op = 0; op < ops; op++) {
			unsigned int d = rng() % N_DEV, ri = rng() % N_RANGES;
			uint64_t off = rng() % (PAGES_PER_RANGE * SZ_4K);
			uint64_t len = 1 + rng() % (6 * SZ_4K);

			oracle_dma(&o, d, ri, off, len);
		}
		oracle_harvest(&o);
		for (r = 0; r < N_RANGES; r++)
			for (w = 0; w < WORDS; w++) {
				cr_assert_eq(o.got[r][w], o.want[r][w],
					     "round %u range %u word %u: got "
					     "0x%016llx want 0x%016llx", round,
					     r, w,
					     (unsigned long long)o.got[r][w],
					     (unsigned long long)o.want[r][w]);
				checked += __builtin_popcountll(o.want[r][w]);
			}
		memset(o.want, 0, sizeof(o.want));
	}
	cr_assert_gt(checked, 1000, "the oracle saw too few pages: %u",
		     checked);
	cr_assert_gt(o.emulated_only, 0);
	io_uring_queue_exit(&o.ring);
	backend_close(o.b);
}

/* An unknown source is refused at prep; the ring sees nothing. */
Test(sources, an_unknown_read_source_is_einval)
{
	struct oracle o;
	struct backend_dirty_read rd = {
		.source = 7, .iova = 0, .length = SZ_4K, .page_size = SZ_4K,
		.bitmap = o.got[0],
	};

	oracle_setup(&o);
	expect_err(EINVAL, backend_dirty_read_prep(o.b,
						   io_uring_get_sqe(&o.ring),
						   o.ring.ring_fd, &rd, 1));
	io_uring_queue_exit(&o.ring);
	backend_close(o.b);
}

/* ------------------------------------------------------- adoption */

Test(dma_log, logs_and_accesses_survive_an_adoption)
{
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	struct backend_config cfg = { .kind = BACKEND_SIM };
	struct oracle o;
	uint64_t bits[WORDS] = { 0 }, ps = SZ_4K;
	size_t blob_len = 0;
	int n;

	oracle_setup(&o);
	expect_ok(backend_dma_write(o.b, o.dev[D3], RANGE_IOVA(1) + SZ_4K,
				    SZ_4K));
	expect_ok(backend_dma_write(o.b, o.dev[D4], RANGE_IOVA(2), 1));
	n = backend_keep(o.b, kept, BACKEND_KEEP_MAX_FDS, NULL, &blob_len);
	cr_assert_eq(n, 1);
	kept[0].fd = dup(kept[0].fd);	/* leaving closes the backend's */
	backend_leave(o.b);
	cfg.kept = kept;
	cfg.n_kept = 1;
	expect_ok(backend_open(&cfg, &o.b));

	expect_ok(backend_dma_log_report(o.b, o.dev[D3], RANGE_IOVA(1),
					 PAGES_PER_RANGE * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0], 2);
	bits[0] = 0;
	expect_ok(backend_dma_log_report(o.b, o.dev[D4], RANGE_IOVA(2),
					 PAGES_PER_RANGE * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0], 0xf);
	/* still started, still logging, with its granule */
	expect_err(EINVAL, start1(o.b, o.dev[D4], &ps, 0, SZ_64K));
	expect_ok(backend_dma_write(o.b, o.dev[D4], RANGE_IOVA(0) + SZ_64K,
				    1));
	bits[0] = 0;
	expect_ok(backend_dma_log_report(o.b, o.dev[D4], RANGE_IOVA(0),
					 PAGES_PER_RANGE * SZ_4K, SZ_4K, bits));
	cr_assert_eq(bits[0], 0xfULL << 16);
	/* the access still holds its IOAS */
	expect_err(EBUSY, backend_destroy(o.b, o.ioas));
	expect_ok(backend_device_unbind(o.b, o.dev[EMU]));
	expect_ok(backend_dma_log_stop(o.b, o.dev[D4]));
	io_uring_queue_exit(&o.ring);
	backend_close(o.b);
}

/* -------------------------------------------- DMA racing with reports */

#define RACE_PAGES 65536

struct race {
	struct backend *b;
	uint32_t dev;
	bool go;				/* atomic: reports began */
	unsigned long writes;			/* atomic */
};

/* Writes each page once, in order: a write a report lost stays lost. */
static void *race_writer(void *arg)
{
	struct race *r = arg;
	uint64_t p;

	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		sched_yield();
	for (p = 0; p < RACE_PAGES; p++) {
		if (backend_dma_write(r->b, r->dev, p * SZ_4K, SZ_4K))
			return (void *)1;
		__atomic_fetch_add(&r->writes, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* A write racing a report is in that report or the next: never lost. */
Test(dma_log, a_write_racing_a_report_is_never_lost, .timeout = 120)
{
	const struct sim_device_spec devs[] = {
		DEV("vf", 1, false, true, 0, 0, false),
	};
	static struct race r;
	static uint64_t got[RACE_PAGES / 64];
	uint64_t ps = SZ_4K;
	unsigned int reports = 0, w;
	pthread_t t;
	uint32_t ioas;
	void *res;

	memset(&r, 0, sizeof(r));
	memset(got, 0, sizeof(got));
	r.b = host(1, devs);
	r.dev = dev_bind(r.b, "vf");
	expect_ok(backend_ioas_alloc(r.b, &ioas));
	map(r.b, ioas, 0, RACE_PAGES * SZ_4K, RW);
	expect_ok(backend_device_attach(r.b, r.dev, ioas));
	expect_ok(start1(r.b, r.dev, &ps, 0, RACE_PAGES * SZ_4K));
	cr_assert_eq(pthread_create(&t, NULL, race_writer, &r), 0);
	/* reports of the words being written while it writes, then of the
	 * whole */
	do {
		uint64_t first = __atomic_load_n(&r.writes, __ATOMIC_ACQUIRE) /
				 64 * 64;
		uint64_t n = 128;

		if (first + n > RACE_PAGES)
			n = RACE_PAGES - first;
		if (n)
			expect_ok(backend_dma_log_report(r.b, r.dev,
							 first * SZ_4K,
							 n * SZ_4K, SZ_4K,
							 &got[first / 64]));
		reports++;
		__atomic_store_n(&r.go, true, __ATOMIC_RELEASE);
	} while (__atomic_load_n(&r.writes, __ATOMIC_ACQUIRE) < RACE_PAGES);
	cr_assert_eq(pthread_join(t, &res), 0);
	cr_assert_null(res, "a write failed");
	expect_ok(backend_dma_log_report(r.b, r.dev, 0, RACE_PAGES * SZ_4K,
					 SZ_4K, got));
	cr_log_info("%u reports during %d writes", reports, RACE_PAGES);
	for (w = 0; w < RACE_PAGES / 64; w++)
		cr_assert_eq(got[w], ~0ULL, "word %u: 0x%016llx: pages lost",
			     w, (unsigned long long)got[w]);
	backend_close(r.b);
}

/* ------------------------------------------- logs across a kill */

/*
 * A child runs a seeded sequence of START, STOP, DMA and REPORT on one
 * logging device, checking each report against a model, and is killed at
 * a random moment; the parent adopts its host (the memfd reopened through
 * /proc) and finds the log as the model says, the operation in flight
 * done or not (a DMA or a report possibly in part), or the host torn,
 * which only a START or STOP in flight may cause.
 */
#define KILL_PAGES 64

enum kill_op { K_START, K_STOP, K_DMA, K_REPORT };

struct kill_model {
	bool active;
	uint64_t dirty;		/* pages logged and not reported */
};

struct kill_shared {
	int fd;			/* the child's kept memfd */
	uint32_t dev;
	uint32_t done;		/* operations that returned; atomic */
	uint32_t error;
	bool ready;
};

static enum kill_op kill_next(uint64_t *s, const struct kill_model *m,
			      uint64_t *mask)
{
	uint64_t r = (*s = *s * 6364136223846793005ULL +
			   1442695040888963407ULL) >> 16;
	unsigned int pick = r % 10, first = (r >> 8) % KILL_PAGES;
	unsigned int n = 1 + (r >> 16) % (KILL_PAGES - first);

	*mask = (n == 64 ? ~0ULL : (1ULL << n) - 1) << first;
	if (pick == 0)
		return m->active ? K_STOP : K_START;
	if (pick < 7)
		return K_DMA;
	return m->active ? K_REPORT : K_START;
}

static void kill_apply(struct kill_model *m, enum kill_op op, uint64_t mask)
{
	switch (op) {
	case K_START:
		*m = (struct kill_model){ .active = true };
		break;
	case K_STOP:
		*m = (struct kill_model){ 0 };
		break;
	case K_DMA:
		if (m->active)
			m->dirty |= mask;
		break;
	case K_REPORT:
		m->dirty = 0;
		break;
	}
}

static int kill_run(struct backend *b, uint32_t dev, enum kill_op op,
		    uint64_t mask, uint64_t *bits)
{
	uint64_t ps = SZ_4K;

	switch (op) {
	case K_START:
		return start1(b, dev, &ps, 0, KILL_PAGES * SZ_4K);
	case K_STOP:
		return backend_dma_log_stop(b, dev);
	case K_DMA:
		return backend_dma_write(b, dev,
					 (uint64_t)__builtin_ctzll(mask) * SZ_4K,
					 (uint64_t)__builtin_popcountll(mask) *
						 SZ_4K);
	case K_REPORT:
		*bits = 0;
		return backend_dma_log_report(b, dev, 0, KILL_PAGES * SZ_4K,
					      SZ_4K, bits);
	}
	return -EINVAL;
}

static const struct sim_device_spec kill_devs[] = {
	DEV("vf", 1, false, true, 0, 0, false),
};

static void kill_child(struct kill_shared *sh, uint64_t seed)
{
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	struct kill_model m = { 0 };
	struct backend *b = NULL;
	struct backend_config cfg = { .kind = BACKEND_SIM };
	size_t blob_len = 0;
	uint64_t s = seed, mask, bits;
	uint32_t ioas, k;

	cfg.sim.n_devices = 1;
	cfg.sim.devices[0] = kill_devs[0];
	if (backend_open(&cfg, &b) ||
	    backend_device_bind(b, "vf", &sh->dev) ||
	    backend_ioas_alloc(b, &ioas) ||
	    backend_ioas_map(b, ioas, RW, UVA(0), KILL_PAGES * SZ_4K,
			     &(uint64_t){ 0 }) ||
	    backend_device_attach(b, sh->dev, ioas) ||
	    backend_keep(b, kept, BACKEND_KEEP_MAX_FDS, NULL, &blob_len) != 1)
		_exit(2);
	sh->fd = kept[0].fd;
	__atomic_store_n(&sh->ready, true, __ATOMIC_RELEASE);
	for (k = 0;; k++) {
		enum kill_op op = kill_next(&s, &m, &mask);
		int rc = kill_run(b, sh->dev, op, mask, &bits);

		if (rc || (op == K_REPORT && bits != m.dirty))
			__atomic_store_n(&sh->error, k + 1, __ATOMIC_RELEASE);
		kill_apply(&m, op, mask);
		__atomic_store_n(&sh->done, k + 1, __ATOMIC_RELEASE);
	}
}

/* One kill after @delay_us; 1 if the host adopted, 0 if torn. */
static int kill_once(uint64_t seed, unsigned int delay_us)
{
	struct kill_shared *sh = mmap(NULL, sizeof(*sh),
				      PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct backend_config cfg = { .kind = BACKEND_SIM };
	struct backend_kept_fd kept = { .name = "sim" };
	struct kill_model m = { 0 }, after;
	uint64_t s = seed, mask = 0, bits = 0, must, may;
	struct backend *b;
	enum kill_op next = K_START;
	char path[64];
	bool active;
	uint32_t k, done;
	pid_t pid;
	int rc;

	cr_assert_neq(sh, MAP_FAILED);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid)
		kill_child(sh, seed);
	while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
		sched_yield();
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, sh->fd);
	kept.fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(kept.fd, 0, "%s: %s", path, strerror(errno));
	usleep(delay_us);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(sh->error, 0, "the child's operation %u failed",
		     sh->error - 1);
	done = sh->done;
	for (k = 0; k <= done; k++) {
		next = kill_next(&s, &m, &mask);
		if (k < done)
			kill_apply(&m, next, mask);
	}
	after = m;
	kill_apply(&after, next, mask);

	cfg.kept = &kept;
	cfg.n_kept = 1;
	rc = backend_open(&cfg, &b);
	if (rc == -EUCLEAN) {
		cr_assert(next == K_START || next == K_STOP,
			  "torn with operation %d in flight", next);
		munmap(sh, sizeof(*sh));
		return 0;
	}
	expect_ok(rc);
	rc = backend_dma_log_report(b, sh->dev, 0, KILL_PAGES * SZ_4K, SZ_4K,
				    &bits);
	cr_assert(rc == 0 || rc == -EINVAL, "report: %d", rc);
	active = !rc;
	if (next == K_START || next == K_STOP)
		cr_assert(active == m.active || active == after.active);
	else
		cr_assert_eq(active, m.active);
	must = m.dirty;
	may = 0;
	if (next == K_DMA && m.active)
		may = mask;
	if (next == K_REPORT) {
		may = must;
		must = 0;
	}
	if (active != m.active)	/* the START in flight was done: fresh */
		must = 0;
	if (active) {
		cr_assert_eq(bits & must, must, "bits 0x%llx lack 0x%llx",
			     (unsigned long long)bits,
			     (unsigned long long)must);
		cr_assert_eq(bits & ~(must | may), 0,
			     "bits 0x%llx beyond 0x%llx",
			     (unsigned long long)bits,
			     (unsigned long long)(must | may));
	}
	/* and it goes on logging */
	expect_ok(backend_dma_log_stop(b, sh->dev));
	expect_ok(start1(b, sh->dev, &(uint64_t){ SZ_4K }, 0,
			 KILL_PAGES * SZ_4K));
	expect_ok(backend_dma_write(b, sh->dev, 3 * SZ_4K, SZ_4K));
	bits = 0;
	expect_ok(backend_dma_log_report(b, sh->dev, 0, KILL_PAGES * SZ_4K,
					 SZ_4K, &bits));
	cr_assert_eq(bits, 1ULL << 3);
	backend_close(b);
	munmap(sh, sizeof(*sh));
	return 1;
}

Test(dma_log, a_kill_leaves_the_log_before_or_after_or_torn, .timeout = 120)
{
	unsigned int i, adopted = 0;

	for (i = 0; i < 40; i++)
		adopted += kill_once(0x1700 + i, 200 + (rng() % 3000));
	cr_log_info("%u of 40 kills adopted, the rest torn", adopted);
	cr_assert_gt(adopted, 0);
}
