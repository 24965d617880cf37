// SPDX-License-Identifier: MIT
/*
 * vm_guest_iommufd - dirtyd's kernel boundary against the real iommufd,
 * run by /init in the VM tests' guest (tests/vm/run.sh).
 *
 * Devices come from the kernel's mock IOMMU (backend_config
 * .device_provider = "mock"); everything goes through kernel/backend.h and
 * the harvest engine, as the daemon's own calls would.  Mock geometry:
 * 2 KiB IOMMU pages, 1 MiB huge leaves (devices named ":huge", backed by
 * hugetlb pages), IOVAs within [16 MiB, 2 GiB).  Reads use 4 KiB pages.
 *
 * The harvest engine runs the way its probe chooses, which must be what
 * DIRTYD_VM_ENGINE says (run.sh puts it on the kernel command line: "workers"
 * on the stock kernel, "uring_cmd" on the one with kernel/patches/), and
 * again forced onto its worker pool: the same checks on both paths.
 *
 * Prints one line per check, "ok N - what" or "not ok N - what: why",
 * "info: ..." lines for what is observed but not judged, and exits 1 if
 * any check failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <iommufd_test.h>

#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"
#include "kernel/sim/kernel.h"
#include "tests/vm/guest_check.h"

#define PG 4096ULL
#define MOCK_HUGE MIB		/* selftest.c: 512 * MOCK_IO_PAGE_SIZE */
#define MAP_RW (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | \
		IOMMU_IOAS_MAP_WRITEABLE)
#define NO_CLEAR IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR

#define CHECK_RC(expr, want, what) do {					\
	int rc_ = (expr);						\
	check(rc_ == (want), "%s: %s (got %d %s, want %d)", what, #expr, \
	      rc_, rc_ ? strerror(-rc_) : "", (want));			\
} while (0)

static int map_at(struct backend *b, uint32_t ioas, uint64_t iova,
		  uint64_t len, bool huge, uint64_t va_offset)
{
	uint8_t *mem = mem_alloc(len + va_offset, huge, false);

	if (!mem)
		return -ENOMEM;
	return backend_ioas_map(b, ioas, MAP_RW, mem + va_offset, len, &iova);
}

/* A zeroed bitmap of @nbits, page aligned, with a spare page after it. */
static uint64_t *bitmap_new(uint64_t nbits, uint64_t *out_bytes)
{
	uint64_t bytes = ((nbits + 63) / 64 * 8 + PG - 1) / PG * PG + PG;
	uint64_t *bm;

	if (posix_memalign((void **)&bm, PG, bytes))
		return NULL;
	memset(bm, 0, bytes);
	if (out_bytes)
		*out_bytes = bytes;
	return bm;
}

static bool test_bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static uint64_t count_bits(const uint64_t *bm, uint64_t nbits)
{
	uint64_t i, n = 0;

	for (i = 0; i < nbits; i++)
		n += test_bit(bm, i);
	return n;
}

/* Read [iova, iova + len) at 4 KiB; NULL on error (checked by caller). */
static uint64_t *read_bits(struct backend *b, uint32_t hwpt, uint64_t iova,
			   uint64_t len, uint32_t flags, int *rc)
{
	uint64_t *bm = bitmap_new(len / PG, NULL);

	*rc = bm ? backend_hwpt_get_dirty_bitmap(b, hwpt, iova, len, PG, bm,
						 flags) : -ENOMEM;
	return bm;
}

/* Do bits [0, nbits) of @bm equal exactly the list @want? */
static bool bits_are(const uint64_t *bm, uint64_t nbits, const uint64_t *want,
		     size_t nwant, char *why, size_t whylen)
{
	uint64_t i;
	size_t k;

	for (k = 0; k < nwant; k++) {
		if (!test_bit(bm, want[k])) {
			snprintf(why, whylen, "bit %" PRIu64 " missing",
				 want[k]);
			return false;
		}
	}
	for (i = 0; i < nbits; i++) {
		bool wanted = false;

		for (k = 0; k < nwant; k++)
			wanted |= want[k] == i;
		if (test_bit(bm, i) && !wanted) {
			snprintf(why, whylen, "bit %" PRIu64 " unexpected", i);
			return false;
		}
	}
	snprintf(why, whylen, "as expected");
	return true;
}

/* The booted kernel's behaviours (kernel/sim/kernel.h), from uname -r. */
static struct sim_kernel linux_;

/* A read that returns @want_rc and sets exactly the bits @want. */
static void check_read_rc(struct backend *b, uint32_t hwpt, uint64_t iova,
			  uint64_t len, uint32_t flags, int want_rc,
			  const uint64_t *want, size_t nwant, const char *what)
{
	char why[96];
	uint64_t *bm;
	int rc;

	bm = read_bits(b, hwpt, iova, len, flags, &rc);
	if (rc != want_rc) {
		check(false, "%s: read returned %d, not %d", what, rc,
		      want_rc);
	} else {
		bool ok = bits_are(bm, len / PG, want, nwant, why,
				   sizeof(why));

		check(ok, "%s (rc %d): %s", what, rc, why);
	}
	free(bm);
}

static void check_read(struct backend *b, uint32_t hwpt, uint64_t iova,
		       uint64_t len, uint32_t flags, const uint64_t *want,
		       size_t nwant, const char *what)
{
	check_read_rc(b, hwpt, iova, len, flags, 0, want, nwant, what);
}

/* What a failed walk returns on this kernel: 0 up to 6.12.117. */
static int walk_rc(void)
{
	return sim_kernel_has(&linux_, SIM_KB_WALK_ERRORS) ? -EINVAL : 0;
}

/* ------------------------------------------------------------ tests */

static void test_identity(struct backend *b)
{
	struct backend_device_name names[8];
	struct utsname uts;
	int n;

	const char *want = getenv("DIRTYD_VM_KERNEL");
	unsigned int b_;

	uname(&uts);
	info("kernel %s; mock test ops from %s (run.sh checked that this"
	     " kernel's iommufd_test.h is the same)", uts.release,
	     DIRTYD_IOMMUFD_TEST_SOURCE);
	check(want && !strncmp(uts.release, want, strlen(want)) &&
	      (uts.release[strlen(want)] < '0' ||
	       uts.release[strlen(want)] > '9'),
	      "the booted kernel (%s) is the one run.sh meant to boot (%s)",
	      uts.release, want ? want : "(DIRTYD_VM_KERNEL unset)");
	check(sim_kernel_lookup(uts.release, &linux_) == 0,
	      "kernel/sim/kernel.h knows %s", uts.release);
	for (b_ = 0; b_ < SIM_KB_COUNT; b_++)
		info("behaviour %s (from %s): %s",
		     sim_kernel_behaviour_name(b_),
		     sim_kernel_behaviour_since(b_),
		     sim_kernel_has(&linux_, b_) ? "yes" : "no");
	n = backend_device_enumerate(b, names, 8);
	check(n == 3 && !strcmp(names[0].name, "mock0") &&
	      !strcmp(names[1].name, "mock1:nodirty") &&
	      !strcmp(names[2].name, "mock2:huge"),
	      "enumerate lists the mock catalogue (%d names)", n);
}

static void test_capability(struct backend *b)
{
	static const struct {
		const char *name;
		uint64_t caps;
	} devs[] = {
		{ "mock0", IOMMU_HW_CAP_DIRTY_TRACKING },
		{ "mock1:nodirty", 0 },
		{ "mock2:huge", IOMMU_HW_CAP_DIRTY_TRACKING },
		{ "mock3:huge,nodirty", 0 },
	};
	struct backend_hw_info hw;
	uint32_t id;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		rc = backend_device_bind(b, devs[i].name, &id);
		if (!check(!rc, "bind %s (%d)", devs[i].name, rc))
			continue;
		rc = backend_device_get_hw_info(b, id, &hw);
		check(!rc && (hw.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) ==
		      devs[i].caps,
		      "IOMMU_GET_HW_INFO of %s: capabilities 0x%" PRIx64
		      " (rc %d)", devs[i].name, hw.capabilities, rc);
		check(!rc && hw.data_type == IOMMU_HW_INFO_TYPE_SELFTEST,
		      "%s: data type 0x%x is the mock's", devs[i].name,
		      hw.data_type);
		CHECK_RC(backend_device_fd(b, id), -EOPNOTSUPP,
			 "a mock device has no fd");
		CHECK_RC(backend_device_unbind(b, id), 0, "unbind");
	}
	CHECK_RC(backend_device_bind(b, "mock9:bogus", &id), -EINVAL,
		 "an unknown flag in a mock name");
	CHECK_RC(backend_device_bind(b, ":huge", &id), -EINVAL,
		 "a mock name without a base");
}

static void test_refusals(struct backend *b)
{
	uint32_t d0, d1, ioas, h0, h1;

	if (backend_device_bind(b, "mock0", &d0) ||
	    backend_device_bind(b, "mock1:nodirty", &d1) ||
	    backend_ioas_alloc(b, &ioas)) {
		check(false, "refusals: setup");
		return;
	}
	{
		uint64_t align = 0;

		backend_ioas_iova_alignment(b, ioas, &align);
		check(align == 1, "an IOAS without a domain has alignment 1"
		      " (0x%" PRIx64 ")", align);
	}
	CHECK_RC(backend_hwpt_alloc(b, d1, ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &h1),
		 -EOPNOTSUPP, "a tracking HWPT for a device that cannot");
	CHECK_RC(backend_hwpt_alloc(b, d0, ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &h0),
		 0, "a tracking HWPT for a device that can");
	{
		uint64_t align = 0;

		backend_ioas_iova_alignment(b, ioas, &align);
		check(align == (uint64_t)sysconf(_SC_PAGESIZE) / 2,
		      "a mock domain raises it to its 2 KiB page (0x%" PRIx64
		      ")", align);
	}
	CHECK_RC(backend_device_attach(b, d1, h0), -EINVAL,
		 "attaching a device that cannot track to a tracking HWPT");
	CHECK_RC(backend_device_attach(b, d0, h0), 0,
		 "attaching a device that can");
	CHECK_RC(backend_hwpt_alloc(b, d1, ioas, 0, &h1), 0,
		 "a plain HWPT for the device that cannot");
	CHECK_RC(backend_device_attach(b, d1, h1), 0,
		 "which it attaches to");
	CHECK_RC(backend_hwpt_set_dirty_tracking(b, h1, true), -EOPNOTSUPP,
		 "enabling tracking on a plain HWPT");
	CHECK_RC(backend_destroy(b, h0), -EBUSY, "destroying an attached HWPT");
	CHECK_RC(backend_destroy(b, ioas), -EBUSY,
		 "destroying an IOAS that has HWPTs");
	CHECK_RC(backend_device_detach(b, d0), 0, "detach");
	CHECK_RC(backend_dma_write(b, d0, 16 * MIB, 8), -ENODEV,
		 "a detached device cannot DMA");
	CHECK_RC(backend_destroy(b, h0), 0, "destroying the detached HWPT");
	backend_device_unbind(b, d1);
	CHECK_RC(backend_destroy(b, h1), 0,
		 "unbinding detached the device from its HWPT");
	CHECK_RC(backend_destroy(b, ioas), 0, "the IOAS is free");
	backend_device_unbind(b, d0);
}

static void test_tracking(struct backend *b)
{
	const uint64_t base = 16 * MIB, len = MIB;
	uint32_t d, ioas, h;
	int rc;

	if (backend_device_bind(b, "mock0", &d) ||
	    backend_ioas_alloc(b, &ioas) ||
	    map_at(b, ioas, base, len, false, 0) ||
	    backend_hwpt_alloc(b, d, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
			       &h) ||
	    backend_device_attach(b, d, h)) {
		check(false, "tracking: setup");
		return;
	}
	/* A read before enabling: nothing; 0 up to 6.12.117, then EINVAL. */
	CHECK_RC(backend_dma_write(b, d, base + 3 * PG, 8), 0,
		 "DMA while tracking is off");
	check_read_rc(b, h, base, len, 0, walk_rc(), NULL, 0,
		      "a read before enabling returns no bits");
	CHECK_RC(backend_hwpt_set_dirty_tracking(b, h, true), 0, "enable");
	check_read(b, h, base, len, 0, NULL, 0,
		   "DMA while tracking was off left no bits");

	{
		const uint64_t want[] = { 3, 10, 255 };

		backend_dma_write(b, d, base + 3 * PG + 100, 8);
		backend_dma_write(b, d, base + 10 * PG, PG);
		backend_dma_write(b, d, base + len - 1, 1);
		check_read(b, h, base, len, NO_CLEAR, want, 3,
			   "NO_CLEAR read sees the written pages");
		check_read(b, h, base, len, NO_CLEAR, want, 3,
			   "NO_CLEAR left them: read again");
		check_read(b, h, base, len, 0, want, 3,
			   "clearing read sees them");
		check_read(b, h, base, len, 0, NULL, 0,
			   "and cleared them");
	}
	{
		/* bit k is the page at iova + k * 4 KiB */
		const uint64_t want[] = { 0, 7, 8, 63 };

		backend_dma_write(b, d, base + 32 * PG, 1);
		backend_dma_write(b, d, base + 39 * PG, 2 * PG);
		backend_dma_write(b, d, base + 95 * PG, 1);
		backend_dma_write(b, d, base + 96 * PG, 1);	/* outside */
		backend_dma_write(b, d, base + 31 * PG, 1);	/* outside */
		check_read(b, h, base + 32 * PG, 64 * PG, 0, want, 4,
			   "bits relative to the iova of the read");
		{
			const uint64_t rest[] = { 31, 96 };

			check_read(b, h, base, len, 0, rest, 2,
				   "the pages outside that read stayed dirty");
		}
	}
	/* Unmapped IOVA with tracking on: an IO page fault. */
	CHECK_RC(backend_dma_write(b, d, base + len, 8), -ENOENT,
		 "DMA to an unmapped IOVA");
	/* Disable: reads answer nothing (0 or EINVAL, walk_errors); the
	 * bits stay in the PTEs and enabling clears them. */
	backend_dma_write(b, d, base + 5 * PG, 8);
	CHECK_RC(backend_hwpt_set_dirty_tracking(b, h, false), 0, "disable");
	check_read_rc(b, h, base, len, 0, walk_rc(), NULL, 0,
		      "a read while disabled returns no bits");
	CHECK_RC(backend_dma_write(b, d, base + 6 * PG, 8), 0,
		 "DMA while disabled");
	CHECK_RC(backend_hwpt_set_dirty_tracking(b, h, true), 0, "re-enable");
	check_read(b, h, base, len, 0, NULL, 0,
		   "enabling cleared what was dirty before disabling");
	/* A hole: the read stops at it; 0 up to 6.12.117, then EINVAL,
	 * with the bits before the hole set either way. */
	{
		const uint64_t want[] = { 2 };
		uint64_t *bm;

		if (map_at(b, ioas, base + 2 * MIB, len, false, 0)) {
			check(false, "hole: map");
		} else {
			backend_dma_write(b, d, base + 2 * PG, 8);
			backend_dma_write(b, d, base + 2 * MIB + 2 * PG, 8);
			check_read_rc(b, h, base, 3 * MIB, NO_CLEAR, walk_rc(),
				      want, 1,
				      "a read across a hole stops at it");
			bm = read_bits(b, h, base + 2 * MIB, len, 0, &rc);
			check(!rc && count_bits(bm, len / PG) == 1 &&
			      test_bit(bm, 2),
			      "the mapping past the hole kept its bit");
			free(bm);
		}
	}
	CHECK_RC(backend_ioas_unmap(b, ioas, base, len, NULL), 0, "unmap");
	backend_device_unbind(b, d);
	CHECK_RC(backend_destroy(b, h), 0, "destroy the HWPT");
	CHECK_RC(backend_destroy(b, ioas), 0, "destroy the IOAS");
}

static void test_huge(struct backend *b)
{
	const uint64_t base = 32 * MIB, len = 4 * MIB;
	uint64_t want[256], *bm, bytes, past = 0, i;
	uint32_t d, ioas, h;
	int rc;

	if (backend_device_bind(b, "mock2:huge", &d) ||
	    backend_ioas_alloc(b, &ioas)) {
		check(false, "huge: setup");
		return;
	}
	rc = map_at(b, ioas, base, len, true, 0);
	if (!check(!rc, "map 4 MiB of hugetlb memory (%d)", rc))
		return;
	if (backend_hwpt_alloc(b, d, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
			       &h) || backend_device_attach(b, d, h) ||
	    backend_hwpt_set_dirty_tracking(b, h, true)) {
		check(false, "huge: HWPT");
		return;
	}
	/* 8 bytes into the second 1 MiB leaf: every page of it is dirty. */
	backend_dma_write(b, d, base + MIB + 12 * PG, 8);
	for (i = 0; i < 256; i++)
		want[i] = 256 + i;
	check_read(b, h, base, len, NO_CLEAR, want, 256,
		   "a dirty 1 MiB leaf reports its 256 pages");
	/* A read inside the leaf, from its middle for 4 KiB: the leaf is
	 * recorded from the read's start for 1 MiB.  Up to 6.12.117 that
	 * sets the read's bit and bits past its end; with record_bounds
	 * (6.12.118) it is refused: EPROTO, no bit. */
	bm = bitmap_new(1, &bytes);
	rc = backend_hwpt_get_dirty_bitmap(b, h, base + MIB + MIB / 2, PG, PG,
					   bm, NO_CLEAR);
	for (i = 1; i < bytes * 8; i++)
		past += test_bit(bm, i);
	if (sim_kernel_has(&linux_, SIM_KB_RECORD_BOUNDS))
		check(rc == -EPROTO && !test_bit(bm, 0) && !past,
		      "a 4 KiB read inside a dirty leaf fails EPROTO, no bits "
		      "(rc %d, %" PRIu64 " past)", rc, past);
	else
		check(!rc && test_bit(bm, 0),
		      "a 4 KiB read inside a dirty leaf sets its bit (rc %d)",
		      rc);
	info("that 4 KiB read set %" PRIu64 " bits past its end", past);
	free(bm);
	/* A read that starts at the leaf and ends inside it, likewise. */
	bm = bitmap_new(1, &bytes);
	rc = backend_hwpt_get_dirty_bitmap(b, h, base + MIB, MIB / 2, PG, bm,
					   NO_CLEAR);
	check(rc == (sim_kernel_has(&linux_, SIM_KB_RECORD_BOUNDS) ?
		     -EPROTO : 0),
	      "a read ending inside a dirty leaf: rc %d", rc);
	free(bm);
	/* A clearing read of the leaf's first page clears the whole leaf,
	 * and from 6.12.118 (record_bounds) reports nothing: EPROTO, "the
	 * dirty state becomes unknown". */
	bm = read_bits(b, h, base + MIB, PG, 0, &rc);
	if (sim_kernel_has(&linux_, SIM_KB_RECORD_BOUNDS))
		check(rc == -EPROTO && !test_bit(bm, 0),
		      "clearing read of the leaf's first page: EPROTO (rc %d)",
		      rc);
	else
		check(!rc && test_bit(bm, 0),
		      "clearing read of the leaf's first page (rc %d)", rc);
	free(bm);
	check_read(b, h, base, len, 0, NULL, 0,
		   "it cleared the whole 1 MiB leaf");
	backend_device_unbind(b, d);
	backend_destroy(b, h);
	backend_destroy(b, ioas);
}

/* ------------------------------------------------------------ engine */

struct dom {
	uint32_t dev, ioas, hwpt;
	struct harvest_domain hd;
	uint64_t *expect;		/* laid out as hd.bitmap */
	bool huge;
};

static void on_done(void *ctx, struct harvest_domain *dom, int result)
{
	if (result)
		check(false, "engine round of HWPT %u: %d", dom->hwpt_id,
		      result);
	(*(int *)ctx)++;
}

/*
 * Expected bits of a domain after writes, from the kernel itself: one
 * NO_CLEAR read per range (each range ends on a leaf boundary and starts
 * with small leaves, so whole-range reads are exact), laid out as the plan
 * lays them out.
 */
static int expect_from_kernel(struct backend *b, struct dom *dm)
{
	size_t i;
	int rc;

	memset(dm->expect, 0, dm->hd.nwords * 8);
	for (i = 0; i < dm->hd.nranges; i++) {
		const struct harvest_range *r = &dm->hd.ranges[i];
		uint64_t *bm, p;

		bm = read_bits(b, dm->hwpt, r->iova, r->length, NO_CLEAR, &rc);
		if (rc) {
			free(bm);
			return rc;
		}
		for (p = 0; p < r->length / PG; p++)
			if (test_bit(bm, p))
				set_bit(dm->expect, r->bit + p);
		free(bm);
	}
	return 0;
}

/* What a write of 8 bytes at @iova must have dirtied, by the model. */
static void expect_write(struct dom *dm, uint64_t iova, uint64_t *model)
{
	size_t i;

	for (i = 0; i < dm->hd.nranges; i++) {
		const struct harvest_range *r = &dm->hd.ranges[i];
		uint64_t first = iova, last = iova, p;

		if (iova < r->iova || iova >= r->iova + r->length)
			continue;
		if (dm->huge) {
			uint64_t leaf = iova & ~(MOCK_HUGE - 1);

			/* a 1 MiB leaf where the whole of it is mapped */
			if (leaf >= r->iova &&
			    leaf + MOCK_HUGE <= r->iova + r->length) {
				first = leaf;
				last = leaf + MOCK_HUGE - 1;
			}
		}
		for (p = (first - r->iova) / PG; p <= (last - r->iova) / PG;
		     p++)
			set_bit(model, r->bit + p);
	}
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/*
 * One engine configuration: which mode the engine must be in, and how it
 * was asked for.  The harness tells the guest which mode the probe must
 * find (DIRTYD_VM_ENGINE, from the kernel command line: run.sh), so a probe
 * that silently falls back to workers on the patched kernel fails here.
 */
struct engine_case {
	const char *what;
	struct harvest_engine_config cfg;
	const char *want;	/* "uring_cmd" or "workers" */
};

static struct harvest_engine *engine_new(struct backend *b,
					 const struct engine_case *ec)
{
	struct harvest_engine *e;
	int rc;

	rc = harvest_engine_new(b, &ec->cfg, &e);
	if (!check(!rc, "%s: harvest engine (%d)", ec->what, rc))
		return NULL;
	info("%s: engine mode %s, %u workers", ec->what,
	     harvest_engine_mode(e), harvest_engine_workers(e));
	if (!check(!strcmp(harvest_engine_mode(e), ec->want),
		   "%s: the engine harvests by %s (probe said %s)", ec->what,
		   ec->want, harvest_engine_mode(e))) {
		harvest_engine_free(e);
		return NULL;
	}
	check(!strcmp(ec->want, "workers") ? harvest_engine_workers(e) > 0 :
	      harvest_engine_workers(e) == 0,
	      "%s: %u worker threads", ec->what, harvest_engine_workers(e));
	return e;
}

static void test_engine(struct backend *b, const struct engine_case *ec)
{
	/*
	 * Three domains.  The huge one's range starts 5 pages past a
	 * 64-page boundary and crosses the 1 GiB batch cut with 1 MiB
	 * leaves on both sides; its head, the pages up to the first 1 MiB
	 * boundary, are 2 KiB leaves.
	 */
	const struct harvest_range r0[] = {
		{ .iova = 16 * MIB, .length = 8 * MIB },
		{ .iova = 64 * MIB + 3 * PG, .length = 2 * MIB + 7 * PG },
	};
	const struct harvest_range r1[] = {
		{ .iova = (1ULL << 30) - 6 * MIB + 5 * PG,
		  .length = 12 * MIB - 5 * PG },
	};
	const struct harvest_range r2[] = {
		{ .iova = (1ULL << 30) + 64 * MIB, .length = 16 * MIB },
	};
	const struct harvest_range *rs[] = { r0, r1, r2 };
	const size_t ns[] = { 2, 1, 1 };
	const char *names[] = { "mock0", "mock2:huge", "mock0" };
	struct harvest_engine *e;
	struct dom dm[3] = { 0 };
	uint64_t *model[3] = { 0 };
	int round, i, ndone, rc;
	size_t k;

	e = engine_new(b, ec);
	if (!e)
		return;

	for (i = 0; i < 3; i++) {
		dm[i].huge = strstr(names[i], "huge") != NULL;
		if (backend_device_bind(b, names[i], &dm[i].dev) ||
		    backend_ioas_alloc(b, &dm[i].ioas)) {
			check(false, "%s: setup %d", ec->what, i);
			goto out;
		}
		for (k = 0; k < ns[i]; k++) {
			/* the VA agrees with the IOVA mod 1 MiB */
			rc = map_at(b, dm[i].ioas, rs[i][k].iova,
				    rs[i][k].length, dm[i].huge,
				    rs[i][k].iova % MOCK_HUGE);
			if (!check(!rc, "%s: map range %zu of domain %d"
				   " (%d)", ec->what, k, i, rc))
				goto out;
		}
		if (backend_hwpt_alloc(b, dm[i].dev, dm[i].ioas,
				       IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				       &dm[i].hwpt) ||
		    backend_device_attach(b, dm[i].dev, dm[i].hwpt) ||
		    backend_hwpt_set_dirty_tracking(b, dm[i].hwpt, true)) {
			check(false, "%s: HWPT %d", ec->what, i);
			goto out;
		}
		rc = harvest_domain_plan(&dm[i].hd, dm[i].hwpt, PG, rs[i],
					 ns[i], 1ULL << 30);
		if (!check(!rc, "%s: plan domain %d: %zu batches", ec->what,
			   i, dm[i].hd.nbatches))
			goto out;
		dm[i].expect = calloc(dm[i].hd.nwords, 8);
		model[i] = calloc(dm[i].hd.nwords, 8);
	}
	info("%s: domain 1 (huge) batches:", ec->what);
	for (k = 0; k < dm[1].hd.nbatches; k++)
		info("  iova 0x%" PRIx64 " len 0x%" PRIx64 " shift %u",
		     dm[1].hd.batches[k].iova, dm[1].hd.batches[k].length,
		     dm[1].hd.batches[k].shift);

	for (round = 0; round < 3; round++) {
		for (i = 0; i < 3; i++) {
			struct harvest_domain *hd = &dm[i].hd;

			memset(model[i], 0, hd->nwords * 8);
			for (k = 0; k < 200; k++) {
				const struct harvest_range *r =
					&hd->ranges[rnd() % hd->nranges];
				uint64_t iova = r->iova +
					(rnd() % (r->length / 8)) * 8;

				backend_dma_write(b, dm[i].dev, iova, 8);
				expect_write(&dm[i], iova, model[i]);
			}
			/* the heads and the batch cut, every round */
			if (dm[i].huge) {
				const struct harvest_range *r = &hd->ranges[0];
				uint64_t cut = 1ULL << 30;
				const uint64_t at[] = {
					r->iova, r->iova + 58 * PG,
					(r->iova | (64 * PG - 1)) + 1,
					(r->iova | (MOCK_HUGE - 1)) + 1 - 8,
					(r->iova | (MOCK_HUGE - 1)) + 1,
					cut - 8, cut, cut + MOCK_HUGE / 2,
				};

				for (k = 0; k < sizeof(at) / sizeof(at[0]);
				     k++) {
					backend_dma_write(b, dm[i].dev, at[k],
							  8);
					expect_write(&dm[i], at[k], model[i]);
				}
			}
			rc = expect_from_kernel(b, &dm[i]);
			check(!rc && !memcmp(dm[i].expect, model[i],
					     hd->nwords * 8),
			      "%s: round %d domain %d: the kernel's bits are"
			      " the model's (%" PRIu64 " pages)", ec->what,
			      round, i,
			      count_bits(model[i], hd->nbits));
			/* the engine must zero the slices it reads into */
			for (k = 0; k < hd->nbatches; k++)
				memset(hd->batches[k].bitmap, 0xa5,
				       hd->batches[k].nwords * 8);
		}
		ndone = 0;
		for (i = 0; i < 3; i++)
			harvest_engine_start(e, &dm[i].hd, 0, on_done,
					     &ndone);
		rc = harvest_engine_wait(e);
		check(rc == 3 && ndone == 3,
		      "%s: round %d: three domains harvested in parallel"
		      " (%d)", ec->what, round, rc);
		for (i = 0; i < 3; i++) {
			uint64_t w, bad = UINT64_MAX;

			for (w = 0; w < dm[i].hd.nwords; w++) {
				if (dm[i].hd.bitmap[w] != dm[i].expect[w]) {
					bad = w;
					break;
				}
			}
			check(bad == UINT64_MAX,
			      "%s: round %d domain %d: the engine's bitmap is"
			      " the kernel's%s", ec->what, round, i,
			      bad == UINT64_MAX ? "" : " (differs)");
			if (bad != UINT64_MAX)
				info("word %" PRIu64 ": engine %016" PRIx64
				     " kernel %016" PRIx64, bad,
				     dm[i].hd.bitmap[bad], dm[i].expect[bad]);
		}
		/* the clearing round left nothing */
		for (i = 0; i < 3; i++) {
			rc = expect_from_kernel(b, &dm[i]);
			check(!rc && !count_bits(dm[i].expect, dm[i].hd.nbits),
			      "%s: round %d domain %d: nothing left after the"
			      " clearing round", ec->what, round, i);
		}
	}
out:
	for (i = 0; i < 3; i++) {
		harvest_domain_release(&dm[i].hd);
		free(dm[i].expect);
		free(model[i]);
		if (dm[i].dev)
			backend_device_unbind(b, dm[i].dev);
		if (dm[i].hwpt)
			backend_destroy(b, dm[i].hwpt);
		if (dm[i].ioas)
			backend_destroy(b, dm[i].ioas);
	}
	harvest_engine_free(e);
}

/* A domain of many small mappings on its own mock device and IOAS. */
static int many_setup(struct backend *b, struct dom *dm, unsigned int nr,
		      uint64_t *total_pages)
{
	struct harvest_range *rs = calloc(nr, sizeof(*rs));
	unsigned int k;
	int rc;

	if (!rs)
		return -ENOMEM;
	rc = backend_device_bind(b, "mock0", &dm->dev);
	if (!rc)
		rc = backend_ioas_alloc(b, &dm->ioas);
	/* 64 KiB apart by 256 KiB; every fourth starts 1-3 pages late (a
	 * head batch and a shifted bounce word) */
	for (k = 0; !rc && k < nr; k++) {
		uint64_t skip = (k % 4) * PG;

		rs[k] = (struct harvest_range){
			.iova = 16 * MIB + k * 256 * 1024ULL + skip,
			.length = 64 * 1024 - skip,
		};
		rc = map_at(b, dm->ioas, rs[k].iova, rs[k].length, false,
			    rs[k].iova % MOCK_HUGE);
		*total_pages += rs[k].length / PG;
	}
	if (!rc)
		rc = backend_hwpt_alloc(b, dm->dev, dm->ioas,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&dm->hwpt);
	if (!rc)
		rc = backend_device_attach(b, dm->dev, dm->hwpt);
	if (!rc)
		rc = backend_hwpt_set_dirty_tracking(b, dm->hwpt, true);
	if (!rc)
		rc = harvest_domain_plan(&dm->hd, dm->hwpt, PG, rs, nr,
					 1ULL << 30);
	free(rs);
	if (!rc) {
		dm->expect = calloc(dm->hd.nwords, 8);
		if (!dm->expect)
			rc = -ENOMEM;
	}
	return rc;
}

static void dom_release(struct backend *b, struct dom *dm)
{
	harvest_domain_release(&dm->hd);
	free(dm->expect);
	if (dm->dev)
		backend_device_unbind(b, dm->dev);
	if (dm->hwpt)
		backend_destroy(b, dm->hwpt);
	if (dm->ioas)
		backend_destroy(b, dm->ioas);
	*dm = (struct dom){ 0 };
}

/*
 * Many small batches over four domains at once, the shape the uring
 * commands are for: 4 x 48 mappings of up to 64 KiB, 240 batches a round.
 * With a small max_inflight there are more batches than SQEs and the
 * engine must keep refilling its ring from completions.
 */
static void test_engine_many(struct backend *b, const struct engine_case *ec)
{
	enum { NDOM = 4, NR = 48 };
	struct harvest_engine *e;
	struct dom dm[NDOM] = { 0 };
	uint64_t *model[NDOM] = { 0 }, pages = 0;
	size_t nbatches = 0, k;
	int i, round, rc, ndone;

	e = engine_new(b, ec);
	if (!e)
		return;
	for (i = 0; i < NDOM; i++) {
		rc = many_setup(b, &dm[i], NR, &pages);
		if (!check(!rc, "%s: domain %d with %d small mappings (%d)",
			   ec->what, i, NR, rc))
			goto out;
		model[i] = calloc(dm[i].hd.nwords, 8);
		nbatches += dm[i].hd.nbatches;
	}
	info("%s: %d domains, %" PRIu64 " pages, %zu batches a round",
	     ec->what, NDOM, pages, nbatches);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < NDOM; i++) {
			struct harvest_domain *hd = &dm[i].hd;

			memset(model[i], 0, hd->nwords * 8);
			for (k = 0; k < 150; k++) {
				const struct harvest_range *r =
					&hd->ranges[rnd() % hd->nranges];
				uint64_t iova = r->iova +
					(rnd() % (r->length / 8)) * 8;

				backend_dma_write(b, dm[i].dev, iova, 8);
				expect_write(&dm[i], iova, model[i]);
			}
			rc = expect_from_kernel(b, &dm[i]);
			check(!rc && !memcmp(dm[i].expect, model[i],
					     hd->nwords * 8),
			      "%s: round %d domain %d: the kernel's bits are"
			      " the model's (%" PRIu64 " pages)", ec->what,
			      round, i, count_bits(model[i], hd->nbits));
			/* the engine must zero the slices it reads into */
			for (k = 0; k < hd->nbatches; k++)
				memset(hd->batches[k].bitmap, 0xa5,
				       hd->batches[k].nwords * 8);
		}
		ndone = 0;
		for (i = 0; i < NDOM; i++) {
			rc = harvest_engine_start(e, &dm[i].hd, 0,
						  on_done, &ndone);
			if (rc)
				check(false, "%s: start domain %d (%d)",
				      ec->what, i, rc);
		}
		rc = harvest_engine_wait(e);
		check(rc == NDOM && ndone == NDOM && !harvest_engine_busy(e),
		      "%s: round %d: %d domains, %zu batches harvested (%d)",
		      ec->what, round, NDOM, nbatches, rc);
		for (i = 0; i < NDOM; i++) {
			check(!memcmp(dm[i].hd.bitmap, model[i],
				      dm[i].hd.nwords * 8),
			      "%s: round %d domain %d: the engine's bitmap is"
			      " the model's", ec->what, round, i);
			rc = expect_from_kernel(b, &dm[i]);
			check(!rc && !count_bits(dm[i].expect, dm[i].hd.nbits),
			      "%s: round %d domain %d: the clearing round"
			      " left nothing", ec->what, round, i);
		}
	}
out:
	for (i = 0; i < NDOM; i++) {
		dom_release(b, &dm[i]);
		free(model[i]);
	}
	harvest_engine_free(e);
}

struct err_slot {
	int result;
	int ndone;
};

static void on_done_slot(void *ctx, struct harvest_domain *dom, int result)
{
	struct err_slot *slot = ctx;

	(void)dom;
	slot->result = result;
	slot->ndone++;
}

/*
 * Errors travel per batch and per domain, and one domain's failure leaves
 * the others' rounds, and the engine, intact: domain 0 is good, domain 1
 * names a HWPT that does not exist (-ENOENT from every batch), domain 2 is
 * started with a flag the kernel does not know (-EOPNOTSUPP), all three
 * at once.  Domain 2's failed reads must not have cleared its bits.
 */
static void test_engine_errors(struct backend *b, const struct engine_case *ec)
{
	struct harvest_engine *e;
	struct dom dm[3] = { 0 };
	struct err_slot slot[3] = { 0 };
	uint64_t pages = 0, *before = NULL;
	const uint32_t flags[3] = { 0, 0, 1u << 7 };
	size_t k;
	int i, rc;

	e = engine_new(b, ec);
	if (!e)
		return;
	for (i = 0; i < 3; i++) {
		rc = many_setup(b, &dm[i], 8, &pages);
		if (!check(!rc, "%s: error domain %d (%d)", ec->what, i, rc))
			goto out;
		for (k = 0; k < 40; k++) {
			const struct harvest_range *r =
				&dm[i].hd.ranges[rnd() % dm[i].hd.nranges];

			backend_dma_write(b, dm[i].dev, r->iova +
					  (rnd() % (r->length / PG)) * PG, 8);
		}
	}
	/* domain 1 reads a HWPT id nobody allocated */
	dm[1].hd.hwpt_id = 0x7ffffff0;
	for (k = 0; k < dm[1].hd.nbatches; k++)
		dm[1].hd.batches[k].result = 1;
	before = calloc(dm[2].hd.nwords, 8);
	rc = expect_from_kernel(b, &dm[2]);
	if (!check(!rc && before && count_bits(dm[2].expect, dm[2].hd.nbits),
		   "%s: domain 2 has dirty pages before its failing round",
		   ec->what))
		goto out;
	memcpy(before, dm[2].expect, dm[2].hd.nwords * 8);
	rc = expect_from_kernel(b, &dm[0]);
	if (!check(!rc, "%s: domain 0's bits (%d)", ec->what, rc))
		goto out;
	for (i = 0; i < 3; i++) {
		rc = harvest_engine_start(e, &dm[i].hd, flags[i],
					  on_done_slot, &slot[i]);
		check(!rc, "%s: start error domain %d (%d)", ec->what, i, rc);
	}
	rc = harvest_engine_wait(e);
	check(rc == 3 && !harvest_engine_busy(e),
	      "%s: all three rounds end, failing or not (%d)", ec->what, rc);
	check(slot[0].ndone == 1 && slot[0].result == 0 &&
	      !memcmp(dm[0].hd.bitmap, dm[0].expect, dm[0].hd.nwords * 8),
	      "%s: the good domain's round succeeds with its bits (%d)",
	      ec->what, slot[0].result);
	check(slot[1].ndone == 1 && slot[1].result == -ENOENT,
	      "%s: an unknown HWPT fails its round with -ENOENT (%d %s)",
	      ec->what, slot[1].result, strerror(-slot[1].result));
	for (k = 0; k < dm[1].hd.nbatches; k++)
		if (dm[1].hd.batches[k].result != -ENOENT)
			break;
	check(k == dm[1].hd.nbatches,
	      "%s: every one of its %zu batches says -ENOENT", ec->what,
	      dm[1].hd.nbatches);
	check(slot[2].ndone == 1 && slot[2].result == -EOPNOTSUPP,
	      "%s: an unknown flag fails the round with -EOPNOTSUPP (%d %s)",
	      ec->what, slot[2].result, strerror(-slot[2].result));
	rc = expect_from_kernel(b, &dm[2]);
	check(!rc && !memcmp(before, dm[2].expect, dm[2].hd.nwords * 8),
	      "%s: the refused reads cleared nothing", ec->what);
	/* the engine goes on: domain 2 again, properly */
	slot[2] = (struct err_slot){ 0 };
	rc = harvest_engine_start(e, &dm[2].hd, 0, on_done_slot,
				  &slot[2]);
	if (!rc)
		rc = harvest_engine_wait(e);
	check(rc == 1 && slot[2].result == 0 &&
	      !memcmp(dm[2].hd.bitmap, before, dm[2].hd.nwords * 8),
	      "%s: after the errors the engine harvests domain 2 (%d)",
	      ec->what, rc);
out:
	dm[1].hd.hwpt_id = dm[1].hwpt;
	for (i = 0; i < 3; i++)
		dom_release(b, &dm[i]);
	free(before);
	harvest_engine_free(e);
}

int main(void)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.device_provider = "mock",
	};
	const char *want = getenv("DIRTYD_VM_ENGINE");
	struct backend *b;
	int rc;

	rc = backend_open(&cfg, &b);
	if (!check(!rc, "open /dev/iommu with the mock provider (%d %s)", rc,
		   rc ? strerror(-rc) : ""))
		return 1;
	test_identity(b);
	test_capability(b);
	test_refusals(b);
	test_tracking(b);
	test_huge(b);
	if (check(want && (!strcmp(want, "workers") ||
			   !strcmp(want, "uring_cmd")),
		  "the harness says which engine the probe must find "
		  "(DIRTYD_VM_ENGINE=%s)", want ? want : "(unset)")) {
		const struct engine_case cases[] = {
			{ "probe", { .workers = 2 }, want },
			{ "forced workers",
			  { .workers = 2, .force_workers = true }, "workers" },
			{ "probe, 2 in flight",
			  { .workers = 2, .max_inflight = 2 }, want },
		};

		test_engine(b, &cases[0]);
		test_engine(b, &cases[1]);
		test_engine_many(b, &cases[0]);
		test_engine_many(b, &cases[1]);
		test_engine_many(b, &cases[2]);
		test_engine_errors(b, &cases[0]);
		test_engine_errors(b, &cases[1]);
	}
	backend_close(b);
	printf("%u checks, %u failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
