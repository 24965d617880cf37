// SPDX-License-Identifier: MIT
/*
 * Dirty tracking on the sim backend, through kernel/backend.h (and the sim's
 * stats: the release it emulates, its version-dependent reads).
 *
 * Part one ports every case of the kernel selftest's iommufd_dirty_tracking
 * fixture (tools/testing/selftests/iommu/iommufd.c and the helper
 * _test_mock_dirty_bitmaps() of iommufd_utils.h, Linux 6.12) for all of its
 * variants.  The mock IOMMU page is 2 KiB and mock huge IOPTEs are 1 MiB;
 * the sim is hardware-like, so the port runs at 4 KiB pages and 2 MiB
 * leaves.  IOMMU_TEST_OP_DIRTY becomes backend_dma_write() from a device
 * attached to the HWPT.
 *
 * Part two covers what the selftest leaves out: holes, reads while disabled,
 * 64 GiB bitmap windows, bitmap pages larger and smaller than a leaf, huge
 * leaves, unmap while tracking, several HWPTs on one IOAS.  The argument
 * errors live in test_sim_errors.c.
 *
 * Where 6.12.y releases answer a read differently (a hole, tracking off, a
 * read ending inside a dirty huge leaf: kernel/sim/kernel.h), the return
 * code and the bits expected are those of the release the host emulates
 * (test_sim_expect.h's kernel_has()); run with $DIRTYD_SIM_KERNEL set to
 * each release of the matrix.
 *
 * Bitmaps are handled as bytes: bit k is bit k % 8 of byte k / 8, which is
 * the kernel's layout of its u64 array on a little-endian machine and lets
 * the selftest's unaligned bitmap placements (+2 KiB, +0xff1) go through
 * backend_hwpt_get_dirty_bitmap()'s uint64_t * unchanged.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_rng.h"
#include "kernel/backend.h"
#include "test_sim_expect.h"

#define SZ_64K		0x10000ULL
#define SZ_1M		0x100000ULL
#define SZ_64G		(64 * SZ_1G)

/* The selftest maps at MOCK_APERTURE_START. */
#define IOVA_START	(16 * SZ_1M)
#define MAP_RW		(IOMMU_IOAS_MAP_FIXED_IOVA |			\
			 IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)

/* ---- the simulated host ------------------------------------------------ */

enum { N_DIRTY_DEVS = 4, N_PLAIN_DEVS = 2, MAX_RESERVED = 32 };

static struct host {
	struct backend *b;
	uint32_t ioas;
	uint32_t dev[N_DIRTY_DEVS];	/* "dev0".. with dirty tracking */
	uint32_t plain[N_PLAIN_DEVS];	/* "nodirty0".. without */
	struct {
		void *addr;
		size_t len;
	} va[MAX_RESERVED];
	unsigned int n_va;
} h;

/* Open a sim host whose memory is backed by @backing pages; bind devices. */
static void host_open(uint64_t backing)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = N_DIRTY_DEVS + N_PLAIN_DEVS,
			.backing_page_size = backing,
		},
	};
	unsigned int i;

	for (i = 0; i < N_DIRTY_DEVS; i++) {
		snprintf(cfg.sim.devices[i].name, BACKEND_NAME_MAX, "dev%u", i);
		cfg.sim.devices[i].dirty_tracking = true;
	}
	for (i = 0; i < N_PLAIN_DEVS; i++)
		snprintf(cfg.sim.devices[N_DIRTY_DEVS + i].name,
			 BACKEND_NAME_MAX, "nodirty%u", i);

	memset(&h, 0, sizeof(h));
	expect_ok(backend_open(&cfg, &h.b));
	for (i = 0; i < N_DIRTY_DEVS; i++)
		expect_ok(backend_device_bind(h.b, cfg.sim.devices[i].name,
					      &h.dev[i]));
	for (i = 0; i < N_PLAIN_DEVS; i++)
		expect_ok(backend_device_bind(
			h.b, cfg.sim.devices[N_DIRTY_DEVS + i].name,
			&h.plain[i]));
	expect_ok(backend_ioas_alloc(h.b, &h.ioas));
}

static void host_close(void)
{
	unsigned int i;

	backend_close(h.b);
	h.b = NULL;
	for (i = 0; i < h.n_va; i++)
		munmap(h.va[i].addr, h.va[i].len);
	h.n_va = 0;
}

static void host_open_4k(void)
{
	host_open(0);
}

static void host_open_2m(void)
{
	host_open(SZ_2M);
}

static void host_open_1g(void)
{
	host_open(SZ_1G);
}

/*
 * Address space to map at @iova: the sim keeps no memory, so this is a
 * PROT_NONE reservation, placed so that the user VA and the IOVA agree
 * modulo 1 GiB (as hugetlb-backed guest RAM would) and never limit the leaf.
 */
static void *va_for(uint64_t iova, uint64_t len)
{
	size_t total = len + SZ_1G;
	void *addr;

	cr_assert_lt(h.n_va, MAX_RESERVED);
	addr = mmap(NULL, total, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(addr, MAP_FAILED, "reserving %zu bytes", total);
	h.va[h.n_va].addr = addr;
	h.va[h.n_va].len = total;
	h.n_va++;
	return (char *)(((uintptr_t)addr + SZ_1G - 1) & ~(SZ_1G - 1)) +
	       (iova & (SZ_1G - 1));
}

static void map_fixed(uint32_t ioas, uint64_t iova, uint64_t len)
{
	uint64_t at = iova;

	expect_ok(backend_ioas_map(h.b, ioas, MAP_RW, va_for(iova, len), len,
				   &at));
	cr_assert_eq(at, iova);
}

/* A dirty-tracking HWPT on @ioas with @dev attached, tracking enabled. */
static uint32_t tracking_hwpt(uint32_t ioas, uint32_t dev)
{
	uint32_t hwpt;

	expect_ok(backend_hwpt_alloc(h.b, dev, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	expect_ok(backend_device_attach(h.b, dev, hwpt));
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, true));
	return hwpt;
}

static void dma(uint32_t dev, uint64_t iova, uint64_t len)
{
	int rc = backend_dma_write(h.b, dev, iova, len);

	cr_assert_eq(rc, 0, "dma_write(dev %u, 0x%" PRIx64 ", 0x%" PRIx64
		     ") = %d", dev, iova, len, rc);
}

/* ---- bitmaps ------------------------------------------------------------ */

static bool bit_test(const unsigned char *p, uint64_t k)
{
	return p[k / 8] >> (k % 8) & 1;
}

static void bits_set(unsigned char *p, uint64_t first, uint64_t n)
{
	uint64_t k;

	for (k = first; k < first + n; k++)
		p[k / 8] |= 1u << (k % 8);
}

static uint64_t bits_count(const unsigned char *p, uint64_t nbits)
{
	uint64_t k, n = 0;

	for (k = 0; k < nbits / 8; k++)
		n += __builtin_popcount(p[k]);
	for (k = nbits / 8 * 8; k < nbits; k++)
		n += bit_test(p, k);
	return n;
}

/* A zeroed bitmap of whole u64 words, as the interface's caller owns. */
static unsigned char *bitmap_new(uint64_t nbits)
{
	unsigned char *p = calloc((nbits + 63) / 64, 8);

	cr_assert_not_null(p);
	return p;
}

/* Fail, naming the first differing bit, unless @got equals @want. */
static void bitmap_expect(const unsigned char *got, const unsigned char *want,
			  uint64_t nbits, const char *what)
{
	uint64_t k = 0;

	if (!memcmp(got, want, nbits / 8)) {
		k = nbits / 8 * 8;
	} else {
		while (got[k / 8] == want[k / 8])
			k += 8;
	}
	for (; k < nbits; k++)
		if (bit_test(got, k) != bit_test(want, k))
			break;
	if (k == nbits)
		return;
	cr_assert_fail("%s: bit %" PRIu64 " is %d, want %d (%" PRIu64
		       " bits set, want %" PRIu64 " of %" PRIu64 ")",
		       what, k, bit_test(got, k), bit_test(want, k),
		       bits_count(got, nbits), bits_count(want, nbits), nbits);
}

/* Read [iova, iova + len) at @ps into a fresh bitmap: rc must be @want_rc. */
static unsigned char *read_dirty_rc(uint32_t hwpt, uint64_t iova,
				    uint64_t len, uint64_t ps, uint32_t flags,
				    int want_rc)
{
	unsigned char *got = bitmap_new(len / ps);
	int rc;

	rc = backend_hwpt_get_dirty_bitmap(h.b, hwpt, iova, len, ps,
					   (uint64_t *)got, flags);
	cr_assert_eq(rc, want_rc, "get_dirty_bitmap(hwpt %u, 0x%" PRIx64
		     ", 0x%" PRIx64 ", ps 0x%" PRIx64 ", flags %u) = %d, "
		     "want %d", hwpt, iova, len, ps, flags, rc, want_rc);
	return got;
}

static void expect_dirty_rc(uint32_t hwpt, uint64_t iova, uint64_t len,
			    uint64_t ps, uint32_t flags, int want_rc,
			    const unsigned char *want, const char *what)
{
	unsigned char *got = read_dirty_rc(hwpt, iova, len, ps, flags,
					   want_rc);

	bitmap_expect(got, want, len / ps, what);
	free(got);
}

static void expect_dirty(uint32_t hwpt, uint64_t iova, uint64_t len,
			 uint64_t ps, uint32_t flags,
			 const unsigned char *want, const char *what)
{
	expect_dirty_rc(hwpt, iova, len, ps, flags, 0, want, what);
}

static void expect_clean_rc(uint32_t hwpt, uint64_t iova, uint64_t len,
			    uint64_t ps, uint32_t flags, int want_rc,
			    const char *what)
{
	unsigned char *zero = bitmap_new(len / ps);

	expect_dirty_rc(hwpt, iova, len, ps, flags, want_rc, zero, what);
	free(zero);
}

static void expect_clean(uint32_t hwpt, uint64_t iova, uint64_t len,
			 uint64_t ps, uint32_t flags, const char *what)
{
	expect_clean_rc(hwpt, iova, len, ps, flags, 0, what);
}

/* Whether the 4 KiB page at @iova of @hwpt is in a dirty leaf. */
static bool leaf_dirty(uint32_t hwpt, uint64_t iova)
{
	struct sim_leaf leaf;

	expect_ok(sim_hwpt_lookup(h.b, hwpt, iova, &leaf));
	return leaf.dirty;
}

/*
 * Expected bits of a walk at @ps from a leaf-aligned base after writes to
 * the 4 KiB pages at base + @off[i], with leaves of @leaf bytes: every page
 * of each written leaf.
 */
static unsigned char *want_leaves(uint64_t nbits, uint64_t ps, uint64_t leaf,
				  const uint64_t *off, size_t n)
{
	unsigned char *want = bitmap_new(nbits);
	uint64_t span = leaf > ps ? leaf : ps;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t first = off[i] / span * span / ps;

		bits_set(want, first, span / ps < nbits - first ?
				      span / ps : nbits - first);
	}
	return want;
}

/* ======================================================================= */
/* Part one: the selftest's fixture, every test for every variant.         */
/* ======================================================================= */

struct variant {
	uint64_t buffer_size;
	bool hugepages;
};

static struct {
	const struct variant *variant;
	uint32_t ioas_id;
	uint32_t idev_id;	/* the selftest's mock device on ioas_id */
	uint64_t page_size;	/* the selftest's MOCK_PAGE_SIZE */
	uint64_t bitmap_size;	/* in bits */
	size_t bitmap_alloc;	/* bytes: the bitmap plus a page */
	unsigned char *bitmap;
	void *buffer;
} self;

static void fixture_setup(const struct variant *variant)
{
	size_t size;
	int rc;

	memset(&self, 0, sizeof(self));
	self.variant = variant;
	/* hugepages: the mock's MOCK_FLAGS_DEVICE_HUGE_IOVA; here 2M leaves */
	host_open(variant->hugepages ? SZ_2M : SZ_4K);

	self.buffer = va_for(IOVA_START, variant->buffer_size);
	self.page_size = SZ_4K;
	self.bitmap_size = variant->buffer_size / self.page_size;

	/* Provision with an extra (PAGE_SIZE) for the unaligned case */
	size = (self.bitmap_size + 7) / 8;
	self.bitmap_alloc = size + SZ_4K;
	rc = posix_memalign((void **)&self.bitmap, SZ_4K, self.bitmap_alloc);
	cr_assert_eq(rc, 0);

	self.ioas_id = h.ioas;
	self.idev_id = h.dev[0];
	expect_ok(backend_device_attach(h.b, self.idev_id, self.ioas_id));
}

static void fixture_teardown(void)
{
	free(self.bitmap);
	host_close();
}

/* A second mock device on @pt: the selftest's test_cmd_mock_domain(). */
static uint32_t mock_domain(uint32_t pt)
{
	uint32_t dev = h.dev[1];

	expect_ok(backend_device_attach(h.b, dev, pt));
	return dev;
}

/*
 * _test_mock_dirty_bitmaps(): dirty the first @npte pages of every run of
 * 2 * @npte, read, check; read again, check the bits are gone unless
 * NO_CLEAR.  @offset places the bitmap inside self.bitmap as the selftest
 * does (0, MOCK_PAGE_SIZE, 0xff1); the whole allocation is compared, so a
 * bit set outside the bitmap fails too.
 */
static void test_mock_dirty_bitmaps(uint32_t hwpt, uint32_t dev,
				    uint64_t length, uint64_t iova,
				    uint64_t page_size, uint64_t pte_page_size,
				    size_t offset, uint64_t nbits,
				    uint32_t flags)
{
	uint64_t npte = pte_page_size / page_size, pteset = 2 * npte;
	unsigned char *want = calloc(1, self.bitmap_alloc);
	unsigned char *bitmap = self.bitmap + offset;
	uint64_t i, bit0 = offset * 8;
	char what[128];

	cr_assert_not_null(want);
	/* Mark the first PTE of every pair dirty, by DMA */
	for (i = 0; i < nbits; i += pteset)
		dma(dev, iova + i * page_size, page_size);
	for (i = 0; i < nbits; i += pteset)
		bits_set(want, bit0 + i, npte < nbits - i ? npte : nbits - i);

	/* Expect exactly those PTEs' pages in the user bitmap */
	memset(self.bitmap, 0, self.bitmap_alloc);
	expect_ok(backend_hwpt_get_dirty_bitmap(h.b, hwpt, iova, length,
						page_size,
						(uint64_t *)(void *)bitmap,
						flags));
	snprintf(what, sizeof(what), "first read, bitmap at +0x%zx", offset);
	bitmap_expect(self.bitmap, want, self.bitmap_alloc * 8, what);

	/* It was read already: expect all zeroes, unless NO_CLEAR */
	memset(self.bitmap, 0, self.bitmap_alloc);
	expect_ok(backend_hwpt_get_dirty_bitmap(h.b, hwpt, iova, length,
						page_size,
						(uint64_t *)(void *)bitmap,
						flags));
	if (!(flags & NO_CLEAR))
		memset(want, 0, self.bitmap_alloc);
	snprintf(what, sizeof(what), "second read, bitmap at +0x%zx", offset);
	bitmap_expect(self.bitmap, want, self.bitmap_alloc * 8, what);
	free(want);
}

static void test_enforce_dirty(void)
{
	uint32_t ioas_id, stddev_id, idev_id, hwpt_id;

	/* Regular case */
	expect_ok(backend_hwpt_alloc(h.b, self.idev_id, self.ioas_id,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &hwpt_id));
	stddev_id = mock_domain(hwpt_id);
	/* A device without the capability cannot join a tracking HWPT */
	expect_err(EINVAL, backend_device_attach(h.b, h.plain[0], hwpt_id));
	expect_ok(backend_device_unbind(h.b, stddev_id));
	expect_ok(backend_destroy(h.b, hwpt_id));

	/* IOMMU device does not support dirty tracking */
	expect_ok(backend_ioas_alloc(h.b, &ioas_id));
	idev_id = h.plain[0];
	expect_ok(backend_device_attach(h.b, idev_id, ioas_id));
	expect_err(EOPNOTSUPP,
		   backend_hwpt_alloc(h.b, idev_id, ioas_id,
				      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				      &hwpt_id));
	expect_ok(backend_device_unbind(h.b, idev_id));
}

static void test_set_dirty_tracking(void)
{
	uint32_t stddev_id, hwpt_id;

	expect_ok(backend_hwpt_alloc(h.b, self.idev_id, self.ioas_id,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &hwpt_id));
	stddev_id = mock_domain(hwpt_id);
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt_id, true));
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt_id, false));

	expect_ok(backend_device_unbind(h.b, stddev_id));
	expect_ok(backend_destroy(h.b, hwpt_id));
}

static void test_device_dirty_capability(void)
{
	struct backend_hw_info info = { 0 };
	uint32_t stddev_id, hwpt_id;

	expect_ok(backend_hwpt_alloc(h.b, self.idev_id, self.ioas_id, 0,
				     &hwpt_id));
	stddev_id = mock_domain(hwpt_id);
	expect_ok(backend_device_get_hw_info(h.b, self.idev_id, &info));
	cr_assert_eq(info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING,
		     IOMMU_HW_CAP_DIRTY_TRACKING);
	/* Not in the selftest: the mock's NO_DIRTY device lacks the bit */
	memset(&info, 0xff, sizeof(info));
	expect_ok(backend_device_get_hw_info(h.b, h.plain[0], &info));
	cr_assert_eq(info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING, 0);

	expect_ok(backend_device_unbind(h.b, stddev_id));
	expect_ok(backend_destroy(h.b, hwpt_id));
}

static void test_get_dirty_bitmap(uint32_t flags)
{
	uint64_t page_size = self.variant->hugepages ? SZ_2M : SZ_4K;
	uint64_t len = self.variant->buffer_size;
	uint32_t hwpt_id, ioas_id, dev;
	uint64_t iova = IOVA_START;

	expect_ok(backend_ioas_alloc(h.b, &ioas_id));
	expect_ok(backend_ioas_map(h.b, ioas_id, MAP_RW, self.buffer, len,
				   &iova));
	expect_ok(backend_hwpt_alloc(h.b, self.idev_id, ioas_id,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     &hwpt_id));
	/* The mock dirties the domain directly; here a device's DMA does */
	dev = mock_domain(hwpt_id);
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt_id, true));

	test_mock_dirty_bitmaps(hwpt_id, dev, len, IOVA_START, self.page_size,
				page_size, 0, self.bitmap_size, flags);
	/* PAGE_SIZE unaligned bitmap (the selftest's + MOCK_PAGE_SIZE) */
	test_mock_dirty_bitmaps(hwpt_id, dev, len, IOVA_START, self.page_size,
				page_size, SZ_2K, self.bitmap_size, flags);
	/* u64 unaligned bitmap */
	test_mock_dirty_bitmaps(hwpt_id, dev, len, IOVA_START, self.page_size,
				page_size, 0xff1, self.bitmap_size, flags);

	expect_ok(backend_device_detach(h.b, dev));
	expect_ok(backend_destroy(h.b, hwpt_id));
}

#define DIRTY_VARIANT(vname, size, huge)				\
	static const struct variant variant_##vname = {			\
		.buffer_size = (size),					\
		.hugepages = (huge),					\
	};								\
	static void setup_##vname(void)					\
	{								\
		fixture_setup(&variant_##vname);			\
	}								\
	TestSuite(iommufd_dirty_tracking_##vname,			\
		  .init = setup_##vname, .fini = fixture_teardown);	\
	Test(iommufd_dirty_tracking_##vname, enforce_dirty)		\
	{								\
		test_enforce_dirty();					\
	}								\
	Test(iommufd_dirty_tracking_##vname, set_dirty_tracking)	\
	{								\
		test_set_dirty_tracking();				\
	}								\
	Test(iommufd_dirty_tracking_##vname, device_dirty_capability)	\
	{								\
		test_device_dirty_capability();				\
	}								\
	Test(iommufd_dirty_tracking_##vname, get_dirty_bitmap)		\
	{								\
		test_get_dirty_bitmap(0);				\
	}								\
	Test(iommufd_dirty_tracking_##vname, get_dirty_bitmap_no_clear)	\
	{								\
		test_get_dirty_bitmap(NO_CLEAR);			\
	}

/* half of an u8 index bitmap (2 bits at 4 KiB) */
DIRTY_VARIANT(domain_dirty8k, 8 * 1024ULL, false)
/* one u8 index bitmap (4 bits) */
DIRTY_VARIANT(domain_dirty16k, 16 * 1024ULL, false)
/* one u32 index bitmap (16 bits) */
DIRTY_VARIANT(domain_dirty64k, 64 * 1024ULL, false)
/* one u64 index bitmap (32 bits) */
DIRTY_VARIANT(domain_dirty128k, 128 * 1024ULL, false)
/* two u64 index and trailing end bitmap (80 bits) */
DIRTY_VARIANT(domain_dirty320k, 320 * 1024ULL, false)
/* 2K bitmap (64M IOVA range) */
DIRTY_VARIANT(domain_dirty64M, 64 * SZ_1M, false)
DIRTY_VARIANT(domain_dirty64M_huge, 64 * SZ_1M, true)
/* 4K bitmap (128M IOVA range) */
DIRTY_VARIANT(domain_dirty128M, 128 * SZ_1M, false)
DIRTY_VARIANT(domain_dirty128M_huge, 128 * SZ_1M, true)

/* ======================================================================= */
/* Part two: what the selftest leaves out.                                 */
/* ======================================================================= */

TestSuite(dirty_4k, .init = host_open_4k, .fini = host_close);
TestSuite(dirty_2m, .init = host_open_2m, .fini = host_close);
TestSuite(dirty_1g, .init = host_open_1g, .fini = host_close);

/* Bits of the 4 KiB pages @pages[] of a walk of @nbits at 4 KiB. */
static unsigned char *want_pages(uint64_t nbits, const uint64_t *pages,
				 size_t n)
{
	unsigned char *want = bitmap_new(nbits);
	size_t i;

	for (i = 0; i < n; i++)
		bits_set(want, pages[i], 1);
	return want;
}

#define PAGES(...) ((const uint64_t[]){ __VA_ARGS__ }),			\
	(sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

Test(dirty_4k, no_clear_then_clear)
{
	uint64_t len = 256 * SZ_4K;
	unsigned char *want = want_pages(256, PAGES(0, 1, 63, 64, 200, 255));
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START, 2 * SZ_4K);
	dma(h.dev[0], IOVA_START + 63 * SZ_4K, 2 * SZ_4K);
	dma(h.dev[0], IOVA_START + 200 * SZ_4K, 1);
	dma(h.dev[0], IOVA_START + 255 * SZ_4K + SZ_4K - 1, 1);

	expect_dirty(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR, want,
		     "first NO_CLEAR read");
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR, want,
		     "second NO_CLEAR read");
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want, "clearing read");
	expect_clean(hwpt, IOVA_START, len, SZ_4K, 0, "read after clear");
	expect_clean(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR,
		     "NO_CLEAR read after clear");
	free(want);
}

Test(dirty_4k, read_covers_and_clears_only_its_range)
{
	uint64_t len = 256 * SZ_4K;
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + 7 * SZ_4K, 6 * SZ_4K);	/* 7..12 */
	dma(h.dev[0], IOVA_START + 200 * SZ_4K, SZ_4K);

	/* bit 0 is the page at the read's iova: pages 8..15 -> bits 0..4 */
	want = want_pages(8, PAGES(0, 1, 2, 3, 4));
	expect_dirty(hwpt, IOVA_START + 8 * SZ_4K, 8 * SZ_4K, SZ_4K, 0, want,
		     "sub-range read");
	free(want);
	/* Pages 8..12 were cleared, 7 and 200 were outside the read */
	want = want_pages(256, PAGES(7, 200));
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want,
		     "whole read after a sub-range read");
	free(want);
}

/* A read from page 3: every 64-page word of the walk lands 3 bits lower. */
Test(dirty_4k, read_not_on_a_64_page_boundary)
{
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, 512 * SZ_4K);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + 61 * SZ_4K, 10 * SZ_4K);	/* 61..70 */
	dma(h.dev[0], IOVA_START + 125 * SZ_4K, SZ_4K);
	dma(h.dev[0], IOVA_START + 127 * SZ_4K, 2 * SZ_4K);	/* 127, 128 */
	dma(h.dev[0], IOVA_START + 202 * SZ_4K, SZ_4K);	/* past the read */

	want = want_pages(199, PAGES(58, 59, 60, 61, 62, 63, 64, 65, 66, 67,
				     122, 124, 125));
	expect_dirty(hwpt, IOVA_START + 3 * SZ_4K, 199 * SZ_4K, SZ_4K, 0,
		     want, "pages 3..201");
	free(want);
	want = want_pages(512, PAGES(202));
	expect_dirty(hwpt, IOVA_START, 512 * SZ_4K, SZ_4K, 0, want,
		     "the whole mapping afterwards");
	free(want);
}

/*
 * Linux 6.12: __iommu_read_and_clear_dirty() walks the contiguous areas from
 * the start of the range and returns -EINVAL at the first hole; up to
 * 6.12.117 iommu_read_and_clear_dirty() ignores that and returns 0, from
 * 6.12.118 (walk_errors) it returns the -EINVAL.  Either way the bits
 * before the hole are reported (and cleared), the ones after are neither.
 */
Test(dirty_4k, hole_stops_the_walk)
{
	uint64_t a = IOVA_START, c = IOVA_START + 32 * SZ_4K;
	const int hole_rc = kernel_rc_walk(h.b);
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, a, 16 * SZ_4K);	/* pages 0..15, hole 16..31 */
	map_fixed(h.ioas, c, 16 * SZ_4K);	/* pages 32..47 */
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], a, SZ_4K);
	dma(h.dev[0], a + 15 * SZ_4K, SZ_4K);
	dma(h.dev[0], c, 2 * SZ_4K);
	expect_err(ENOENT, backend_dma_write(h.b, h.dev[0], a + 16 * SZ_4K,
					     SZ_4K));

	want = want_pages(48, PAGES(0, 15));
	expect_dirty_rc(hwpt, a, 48 * SZ_4K, SZ_4K, 0, hole_rc, want,
			"read across the hole");
	free(want);
	/* The walk never reached the area after the hole: still dirty */
	want = want_pages(16, PAGES(0, 1));
	expect_dirty(hwpt, c, 16 * SZ_4K, SZ_4K, NO_CLEAR, want,
		     "area after the hole");
	/* A range that starts in the hole reports nothing, clears nothing */
	expect_clean_rc(hwpt, a + 16 * SZ_4K, 32 * SZ_4K, SZ_4K, 0, hole_rc,
			"read starting in the hole");
	expect_dirty(hwpt, c, 16 * SZ_4K, SZ_4K, NO_CLEAR, want,
		     "area after the hole, again");
	free(want);
	/* A trailing hole: bits up to it are reported */
	want = want_pages(32, PAGES(0, 1));
	expect_dirty_rc(hwpt, c, 32 * SZ_4K, SZ_4K, 0, hole_rc, want,
			"read running past the last area");
	free(want);
	expect_clean(hwpt, a, 16 * SZ_4K, SZ_4K, 0, "first area, cleared");
	expect_clean(hwpt, c, 16 * SZ_4K, SZ_4K, 0, "last area, cleared");
}

Test(dirty_4k, adjacent_mappings_are_not_a_hole)
{
	uint64_t a = IOVA_START, b = IOVA_START + 16 * SZ_4K;
	unsigned char *want = want_pages(48, PAGES(15, 16, 47));
	uint32_t hwpt;

	hwpt = tracking_hwpt(h.ioas, h.dev[0]);	/* before any mapping */
	map_fixed(h.ioas, a, 16 * SZ_4K);
	map_fixed(h.ioas, b, 32 * SZ_4K);
	dma(h.dev[0], a + 15 * SZ_4K, 2 * SZ_4K);
	dma(h.dev[0], a + 47 * SZ_4K, SZ_4K);
	expect_dirty(hwpt, a, 48 * SZ_4K, SZ_4K, 0, want,
		     "read across two adjacent mappings");
	free(want);
}

/*
 * Intel/AMD/mock read_and_clear_dirty() return -EINVAL when tracking is off
 * and a bitmap is given, before touching a PTE; up to 6.12.117 the core
 * ignores it (the read returns 0), from 6.12.118 (walk_errors) the read
 * returns the -EINVAL.  Either way it sets nothing and clears nothing.
 * Enabling first clears every dirty bit of every mapped area.
 */
Test(dirty_4k, read_while_disabled)
{
	uint64_t len = 64 * SZ_4K;
	const int off_rc = kernel_rc_walk(h.b);
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	expect_ok(backend_hwpt_alloc(h.b, h.dev[0], h.ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	expect_ok(backend_device_attach(h.b, h.dev[0], hwpt));

	/* Never enabled */
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);
	expect_clean_rc(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR, off_rc,
			"read before enabling");
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, true));
	expect_clean(hwpt, IOVA_START, len, SZ_4K, 0,
		     "first read after enabling");

	/* Enabled, then disabled with a page still dirty */
	dma(h.dev[0], IOVA_START + 2 * SZ_4K, SZ_4K);
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, false));
	expect_clean_rc(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR, off_rc,
			"NO_CLEAR read while disabled");
	expect_clean_rc(hwpt, IOVA_START, len, SZ_4K, 0, off_rc,
			"read while disabled");
	/* ... which left the PTE dirty */
	cr_assert(leaf_dirty(hwpt, IOVA_START + 2 * SZ_4K),
		  "a read while disabled cleared a dirty bit");
	dma(h.dev[0], IOVA_START + 3 * SZ_4K, SZ_4K);	/* not recorded */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, true));
	expect_clean(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR,
		     "read after re-enabling");

	dma(h.dev[0], IOVA_START + 4 * SZ_4K, SZ_4K);
	want = want_pages(64, PAGES(4));
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want,
		     "write after re-enabling");
	free(want);
}

Test(dirty_4k, enable_twice_clears_again)
{
	uint64_t len = 64 * SZ_4K;
	unsigned char *want = want_pages(64, PAGES(9));
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + 5 * SZ_4K, SZ_4K);
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, true));
	expect_clean(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR,
		     "read after the second enable");
	dma(h.dev[0], IOVA_START + 9 * SZ_4K, SZ_4K);
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want,
		     "still tracking after the second enable");
	free(want);
}

Test(dirty_4k, disable_twice_then_read)
{
	uint64_t len = 64 * SZ_4K;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	expect_ok(backend_hwpt_alloc(h.b, h.dev[0], h.ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	expect_ok(backend_device_attach(h.b, h.dev[0], hwpt));
	/* Disabling what was never enabled */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, false));
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, true));
	dma(h.dev[0], IOVA_START, 8 * SZ_4K);
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, false));
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, false));
	expect_clean_rc(hwpt, IOVA_START, len, SZ_4K, 0, kernel_rc_walk(h.b),
			"read after disabling twice");
	expect_clean_rc(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR,
			kernel_rc_walk(h.b),
			"NO_CLEAR read after disabling twice");
	cr_assert(leaf_dirty(hwpt, IOVA_START + 7 * SZ_4K),
		  "a read while disabled cleared a dirty bit");
}

Test(dirty_4k, bitmap_is_only_ored_into)
{
	uint64_t nbits = 200, nwords = (nbits + 63) / 64, guard = 8;
	unsigned char *got = calloc(nwords + guard, 8);
	unsigned char *want = calloc(nwords + guard, 8);
	uint32_t hwpt;

	cr_assert(got && want);
	map_fixed(h.ioas, IOVA_START, nbits * SZ_4K);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	/* 0xa5 has bits 0, 2, 5, 7: dirty pages 1, 2 (already set), 3, 199 */
	memset(got, 0xa5, (nwords + guard) * 8);
	memset(want, 0xa5, (nwords + guard) * 8);
	bits_set(want, 1, 3);
	bits_set(want, 199, 1);
	dma(h.dev[0], IOVA_START + SZ_4K, 3 * SZ_4K);
	dma(h.dev[0], IOVA_START + 199 * SZ_4K, SZ_4K);

	expect_ok(backend_hwpt_get_dirty_bitmap(h.b, hwpt, IOVA_START,
						nbits * SZ_4K, SZ_4K,
						(uint64_t *)got, 0));
	/* also: the bits of the last word past @nbits and the guard stay */
	bitmap_expect(got, want, (nwords + guard) * 64,
		      "pre-set caller bits");
	free(got);
	free(want);
}

/* One dirty 4 KiB page sets the bit of the bitmap page that holds it. */
Test(dirty_4k, bitmap_page_larger_than_leaf)
{
	uint64_t len = 16 * SZ_2M;
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + SZ_2M + 2 * SZ_4K, SZ_4K);
	dma(h.dev[0], IOVA_START + 6 * SZ_2M - SZ_4K, SZ_4K);
	dma(h.dev[0], IOVA_START + 15 * SZ_2M, SZ_4K);
	want = want_pages(16, PAGES(1, 5, 15));
	expect_dirty(hwpt, IOVA_START, len, SZ_2M, NO_CLEAR, want,
		     "2 MiB bitmap pages over 4 KiB leaves");
	free(want);
	want = want_pages(len / SZ_64K,
			  PAGES(SZ_2M / SZ_64K, (6 * SZ_2M - SZ_4K) / SZ_64K,
				15 * SZ_2M / SZ_64K));
	expect_dirty(hwpt, IOVA_START, len, SZ_64K, NO_CLEAR, want,
		     "64 KiB bitmap pages over 4 KiB leaves");
	free(want);
	/* IOVA_START is 16 MiB: the largest page it is aligned to */
	want = want_pages(2, PAGES(0, 1));
	expect_dirty(hwpt, IOVA_START, len, len / 2, 0, want,
		     "16 MiB bitmap pages");
	free(want);
	/* That read cleared every 4 KiB leaf under its pages */
	expect_clean(hwpt, IOVA_START, len, SZ_4K, 0,
		     "4 KiB read after a 16 MiB read");
}

/*
 * iommufd_check_iova_range() does not require page_size >= the IOMMU page:
 * at 2 KiB, a dirty 4 KiB leaf sets two bits.
 */
Test(dirty_4k, bitmap_page_smaller_than_iommu_page)
{
	uint64_t len = 16 * SZ_4K, align = 0;
	unsigned char *want = want_pages(32, PAGES(2, 3, 30, 31));
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	expect_ok(backend_ioas_iova_alignment(h.b, h.ioas, &align));
	cr_assert_eq(align, SZ_4K);
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);
	dma(h.dev[0], IOVA_START + 15 * SZ_4K, SZ_4K);
	expect_dirty(hwpt, IOVA_START, len, SZ_2K, 0, want,
		     "2 KiB bitmap pages");
	free(want);
}

/*
 * Nor is page_size required to be a power of two: iommufd_check_iova_range()
 * only tests iova and iova + length against page_size - 1 as a mask, and
 * iova_bitmap_alloc() takes pgshift = __ffs(page_size).  12 KiB passes the
 * mask test at 16 MiB and counts as 4 KiB: page 5 is bit 5, not bit 1.
 */
Test(dirty_4k, bitmap_page_not_a_power_of_two)
{
	uint64_t got = 0;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, 16 * SZ_4K);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + 5 * SZ_4K, SZ_4K);
	expect_ok(backend_hwpt_get_dirty_bitmap(h.b, hwpt, IOVA_START,
						12 * SZ_4K, 3 * SZ_4K, &got,
						0));
	cr_assert_eq(got, 1ULL << 5, "bitmap 0x%" PRIx64, got);
}

Test(dirty_4k, unmap_while_tracking_then_remap)
{
	uint64_t a = IOVA_START, b = IOVA_START + 16 * SZ_1M, unmapped = 0;
	unsigned char *want_b = want_pages(256, PAGES(2));
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, a, SZ_1M);
	map_fixed(h.ioas, b, SZ_1M);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], a + SZ_4K, SZ_4K);
	dma(h.dev[0], b + 2 * SZ_4K, SZ_4K);

	expect_ok(backend_ioas_unmap(h.b, h.ioas, a, SZ_1M, &unmapped));
	cr_assert_eq(unmapped, SZ_1M);
	expect_err(ENOENT, backend_dma_write(h.b, h.dev[0], a + SZ_4K, SZ_4K));
	/* a hole: -EINVAL from 6.12.118 (walk_errors), 0 before */
	expect_clean_rc(hwpt, a, SZ_1M, SZ_4K, NO_CLEAR, kernel_rc_walk(h.b),
			"the unmapped range");
	expect_dirty(hwpt, b, SZ_1M, SZ_4K, NO_CLEAR, want_b,
		     "the other mapping");

	/* Re-mapped while tracking: fresh IOPTEs, nothing dirty */
	map_fixed(h.ioas, a, SZ_1M);
	expect_clean(hwpt, a, SZ_1M, SZ_4K, NO_CLEAR, "the re-mapped range");
	dma(h.dev[0], a + 3 * SZ_4K, SZ_4K);
	want = want_pages(256, PAGES(3));
	expect_dirty(hwpt, a, SZ_1M, SZ_4K, 0, want,
		     "a write to the re-mapped range");
	free(want);
	expect_dirty(hwpt, b, SZ_1M, SZ_4K, 0, want_b,
		     "the other mapping, at the end");
	free(want_b);
}

Test(dirty_4k, several_hwpts_on_one_ioas)
{
	uint64_t len = 64 * SZ_4K;
	unsigned char *want;
	uint32_t hwpt1, hwpt2;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt1 = tracking_hwpt(h.ioas, h.dev[0]);
	hwpt2 = tracking_hwpt(h.ioas, h.dev[1]);
	cr_assert_neq(hwpt1, hwpt2);
	expect_ok(backend_device_attach(h.b, h.dev[2], hwpt1));

	dma(h.dev[0], IOVA_START + 1 * SZ_4K, SZ_4K);
	dma(h.dev[1], IOVA_START + 2 * SZ_4K, SZ_4K);
	dma(h.dev[2], IOVA_START + 5 * SZ_4K, SZ_4K);
	want = want_pages(64, PAGES(1, 5));
	expect_dirty(hwpt1, IOVA_START, len, SZ_4K, 0, want,
		     "HWPT of dev0 and dev2");
	free(want);
	want = want_pages(64, PAGES(2));
	expect_dirty(hwpt2, IOVA_START, len, SZ_4K, NO_CLEAR, want,
		     "HWPT of dev1, after reading the other one");

	/* Stopping one leaves the other tracking */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt2, false));
	dma(h.dev[0], IOVA_START + 4 * SZ_4K, SZ_4K);
	dma(h.dev[1], IOVA_START + 3 * SZ_4K, SZ_4K);
	/* not tracking: -EINVAL from 6.12.118 (walk_errors), 0 before */
	expect_clean_rc(hwpt2, IOVA_START, len, SZ_4K, 0, kernel_rc_walk(h.b),
			"disabled HWPT");
	free(want);
	want = want_pages(64, PAGES(4));
	expect_dirty(hwpt1, IOVA_START, len, SZ_4K, 0, want,
		     "HWPT still enabled");
	free(want);
	/* Re-enabling the second clears what it had kept */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt2, true));
	expect_clean(hwpt2, IOVA_START, len, SZ_4K, 0, "re-enabled HWPT");
}

/* A device attached straight to the IOAS gets an auto domain: untracked. */
Test(dirty_4k, auto_domain_never_tracks)
{
	uint64_t len = 64 * SZ_4K;
	unsigned char *want = want_pages(64, PAGES(2));
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[1]);
	expect_ok(backend_device_attach(h.b, h.dev[0], h.ioas));
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);
	dma(h.dev[1], IOVA_START + 2 * SZ_4K, SZ_4K);
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want,
		     "only the device on the tracking HWPT");
	free(want);
}

/* ---- against a reference model ---------------------------------------- */

/*
 * Random DMA, random reads (page size, range starting on a leaf, NO_CLEAR
 * or not, bitmap at a random byte offset) checked against a model: a
 * dirty flag per leaf; a read sets bit k when a dirty leaf overlaps page k
 * and clears the leaves it overlapped.  A read that ends inside a dirty
 * leaf records it clipped to the range and returns 0, or, with
 * record_bounds (6.12.118), records nothing of that leaf and returns
 * -EPROTO; either way the leaf is cleared and the read counted as
 * version-dependent.
 */
static void random_rounds(uint64_t leaf, uint64_t len, unsigned int rounds)
{
	static const uint64_t sizes[] = { SZ_4K, 2 * SZ_4K, SZ_64K, SZ_2M };
	const uint64_t nleaves = len / leaf;
	const bool bounds = kernel_has(h.b, SIM_KB_RECORD_BOUNDS);
	const int bounds_rc = kernel_rc_bounds(h.b);
	bool *model = calloc(nleaves, sizeof(*model));
	unsigned char *buf = malloc(len / SZ_4K / 8 + 16);
	unsigned int r, i, overruns = 0;
	uint32_t hwpt;

	cr_assert(model && buf);
	rng_seed(leaf);
	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	cr_assert_eq(version_dependent_reads(h.b), 0);

	for (r = 0; r < rounds; r++) {
		uint64_t ps = sizes[rng() % 4], start, first, nbits, n, k;
		uint64_t end, tail;
		size_t off = rng() % 9;
		uint32_t flags = rng() % 3 ? 0 : NO_CLEAR;
		unsigned char *want, *got = buf + off;
		bool overrun;
		char what[160];
		int rc;

		for (i = rng() % 40; i; i--) {
			uint64_t page = rng() % (len / SZ_4K);

			dma(h.dev[0], IOVA_START + page * SZ_4K, SZ_4K);
			model[page * SZ_4K / leaf] = true;
		}
		/* a start on a leaf and on @ps; at least one @ps page */
		first = rng() % (len / (leaf > ps ? leaf : ps));
		start = first * (leaf > ps ? leaf : ps);
		n = (len - start) / ps;
		nbits = 1 + rng() % n;
		/* the leaf the read ends in, and whether it ends inside it */
		end = start + nbits * ps;
		tail = (end - 1) / leaf;
		overrun = end % leaf && model[tail];
		overruns += overrun;

		want = bitmap_new(nbits);
		for (k = 0; k < nbits; k++) {
			uint64_t a = start + k * ps, l;

			for (l = a / leaf; l <= (a + ps - 1) / leaf; l++)
				if (model[l] && !(overrun && bounds &&
						  l == tail))
					bits_set(want, k, 1);
		}
		if (!flags)
			for (k = start / leaf; k <= tail; k++)
				model[k] = false;

		memset(got, 0, (nbits + 7) / 8);
		rc = backend_hwpt_get_dirty_bitmap(h.b, hwpt,
						   IOVA_START + start,
						   nbits * ps, ps,
						   (uint64_t *)(void *)got,
						   flags);
		snprintf(what, sizeof(what),
			 "round %u: +0x%" PRIx64 " %" PRIu64 " x 0x%" PRIx64
			 " flags %u, bitmap at +%zu", r, start, nbits, ps,
			 flags, off);
		cr_assert_eq(rc, overrun ? bounds_rc : 0, "%s: rc %d", what,
			     rc);
		bitmap_expect(got, want, nbits, what);
		free(want);
	}
	/* Only the reads ending inside a dirty leaf depend on the release */
	cr_assert_eq(version_dependent_reads(h.b), overruns,
		     "%" PRIu64 " version-dependent reads, want %u",
		     version_dependent_reads(h.b), overruns);
	if (leaf > SZ_4K)
		cr_assert_gt(overruns, 0, "no read ended inside a dirty leaf");
	free(buf);
	free(model);
}

Test(dirty_4k, random_reads_match_a_model)
{
	random_rounds(SZ_4K, 32 * SZ_2M, 300);
}

Test(dirty_2m, random_reads_match_a_model)
{
	random_rounds(SZ_2M, 32 * SZ_2M, 300);
}

/* ---- huge leaves -------------------------------------------------------- */

Test(dirty_2m, huge_leaf_reports_every_page)
{
	uint64_t len = 4 * SZ_2M, nbits = len / SZ_4K;
	const uint64_t off[] = { SZ_2M + 3 * SZ_4K, 4 * SZ_2M - SZ_4K };
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + off[0], SZ_4K);
	dma(h.dev[0], IOVA_START + off[1], 1);
	want = want_leaves(nbits, SZ_4K, SZ_2M, off, 2);
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, NO_CLEAR, want,
		     "4 KiB bitmap over 2 MiB leaves");
	free(want);
	want = want_pages(4, PAGES(1, 3));
	expect_dirty(hwpt, IOVA_START, len, SZ_2M, 0, want,
		     "2 MiB bitmap over 2 MiB leaves");
	free(want);
	expect_clean(hwpt, IOVA_START, len, SZ_4K, 0, "after clearing");
}

Test(dirty_2m, huge_pages_option_off_gives_4k_leaves)
{
	uint64_t len = 2 * SZ_2M;
	unsigned char *want = want_pages(len / SZ_4K, PAGES(1, 600));
	uint32_t hwpt;

	expect_ok(backend_ioas_set_huge_pages(h.b, h.ioas, false));
	map_fixed(h.ioas, IOVA_START, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);
	dma(h.dev[0], IOVA_START + 600 * SZ_4K, SZ_4K);
	expect_dirty(hwpt, IOVA_START, len, SZ_4K, 0, want,
		     "IOMMU_OPTION_HUGE_PAGES = 0");
	free(want);
}

/*
 * [16M - 4K, 20M + 4K): the IOVA allows 2 MiB leaves only in the middle:
 * 4K | 2M | 2M | 4K.
 */
Test(dirty_2m, leaf_size_follows_iova_alignment)
{
	uint64_t iova = IOVA_START - SZ_4K, len = 2 * SZ_2M + 2 * SZ_4K;
	unsigned char *want = bitmap_new(len / SZ_4K);
	uint32_t hwpt;

	map_fixed(h.ioas, iova, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], iova, SZ_4K);
	dma(h.dev[0], IOVA_START + SZ_1M, SZ_4K);
	dma(h.dev[0], IOVA_START + 2 * SZ_2M, SZ_4K);
	bits_set(want, 0, 1);
	bits_set(want, 1, 512);
	bits_set(want, 1025, 1);
	expect_dirty(hwpt, iova, len, SZ_4K, 0, want, "4K | 2M | 2M | 4K");
	free(want);
}

/*
 * A read of part of a dirty leaf clears the leaf's one dirty bit.  Up to
 * 6.12.117 it sees every page of the part dirty (the record clipped to the
 * range) and returns 0; with record_bounds (6.12.118) the record, which
 * runs past the range, is refused: no bit, -EPROTO.
 */
Test(dirty_2m, partial_huge_leaf_read)
{
	uint64_t mid = IOVA_START + 2 * SZ_4K;
	const bool bounds = kernel_has(h.b, SIM_KB_RECORD_BOUNDS);
	const int rc = kernel_rc_bounds(h.b);
	unsigned char *want = bounds ? bitmap_new(4) :
				       want_pages(4, PAGES(0, 1, 2, 3));
	unsigned char *whole = bitmap_new(512);
	uint32_t hwpt;

	bits_set(whole, 0, 512);
	map_fixed(h.ioas, IOVA_START, 2 * SZ_2M);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);
	expect_dirty_rc(hwpt, mid, 4 * SZ_4K, SZ_4K, NO_CLEAR, rc, want,
			"NO_CLEAR read of pages 2..5 of a dirty leaf");
	expect_dirty_rc(hwpt, IOVA_START, 4 * SZ_4K, SZ_4K, NO_CLEAR, rc, want,
			"NO_CLEAR read of pages 0..3 of a dirty leaf");
	/* NO_CLEAR left the leaf dirty, refused or not */
	cr_assert(leaf_dirty(hwpt, IOVA_START));
	expect_dirty(hwpt, IOVA_START, SZ_2M, SZ_4K, NO_CLEAR, whole,
		     "NO_CLEAR read of the whole leaf");
	expect_dirty_rc(hwpt, mid, 4 * SZ_4K, SZ_4K, 0, rc, want,
			"clearing read of pages 2..5 of a dirty leaf");
	free(want);
	free(whole);
	/* ... cleared it, refused or not */
	cr_assert_not(leaf_dirty(hwpt, IOVA_START));
	expect_clean(hwpt, IOVA_START, 2 * SZ_2M, SZ_4K, 0,
		     "the whole leaf after a partial clearing read");
}

/*
 * Linux 6.12's Intel and AMD walkers record a dirty leaf as
 * [walk iova, walk iova + leaf size), and up to 6.12.117 iova_bitmap_set()
 * writes whatever of that falls in the pinned bitmap pages: on real
 * hardware a read that starts or ends inside a dirty huge leaf can set bits
 * past the end of the caller's bitmap.  The sim's contract (backend.h) is
 * bit k for the page at iova + k * page_size: no write past the bitmap's
 * words.  With record_bounds (6.12.118) such a record is refused: no bit
 * at all, -EPROTO.
 */
Test(dirty_2m, partial_huge_leaf_stays_in_bitmap)
{
	const uint64_t guard = 16;
	const int rc = kernel_rc_bounds(h.b);
	unsigned char *got = calloc(1 + guard, 8);
	unsigned char *want = calloc(1 + guard, 8);
	uint32_t hwpt;

	cr_assert(got && want);
	map_fixed(h.ioas, IOVA_START, 2 * SZ_2M);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START, SZ_4K);
	dma(h.dev[0], IOVA_START + SZ_2M, SZ_4K);

	/* Ends inside the first leaf */
	if (!kernel_has(h.b, SIM_KB_RECORD_BOUNDS))
		bits_set(want, 0, 2);
	expect_rc(rc, backend_hwpt_get_dirty_bitmap(h.b, hwpt, IOVA_START,
						    2 * SZ_4K, SZ_4K,
						    (uint64_t *)got,
						    NO_CLEAR));
	bitmap_expect(got, want, (1 + guard) * 64,
		      "read ending inside a dirty leaf");
	/* Starts inside the second leaf */
	memset(got, 0, (1 + guard) * 8);
	expect_rc(rc, backend_hwpt_get_dirty_bitmap(h.b, hwpt,
						    IOVA_START + 2 * SZ_2M -
							    2 * SZ_4K,
						    2 * SZ_4K, SZ_4K,
						    (uint64_t *)got,
						    NO_CLEAR));
	bitmap_expect(got, want, (1 + guard) * 64,
		      "read starting inside a dirty leaf");
	free(got);
	free(want);
}

/*
 * Linux 6.12's walkers (intel_iommu_read_and_clear_dirty(), AMD's
 * iommu_v1_read_and_clear_dirty(), the mock) record a dirty leaf from the
 * walk's cursor for the leaf's full size, then move the cursor by that
 * size.  A read starting inside a dirty huge leaf therefore reports a whole
 * leaf's worth of pages from its start, running into the next (clean)
 * leaf.  Over-reporting is safe for migration; the sim keeps it.
 */
Test(dirty_2m, read_from_inside_huge_leaf_runs_a_full_leaf)
{
	unsigned char *want = bitmap_new(1024);
	uint32_t hwpt;

	map_fixed(h.ioas, IOVA_START, 4 * SZ_2M);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], IOVA_START + SZ_4K, SZ_4K);	/* leaf 0 only */
	/* [17M, 21M): 1 MiB of leaf 0, leaf 1, 1 MiB of leaf 2 */
	bits_set(want, 0, 512);
	expect_dirty(hwpt, IOVA_START + SZ_1M, 2 * SZ_2M, SZ_4K, 0, want,
		     "read from the middle of a dirty 2 MiB leaf");
	free(want);
	expect_clean(hwpt, IOVA_START, 4 * SZ_2M, SZ_4K, 0,
		     "leaf 0 cleared, leaf 1 never dirty");
}

/*
 * sim_stats.version_dependent_reads counts the reads that the releases of
 * the matrix answer differently (dirtyd makes none), whichever release the
 * host emulates: a read across a hole, one while tracking is off, one of
 * length 0, one ending inside a dirty huge leaf, one each.  Reads of
 * exactly the mapped, leaf-aligned ranges count nothing, nor does a read
 * ending inside a clean huge leaf (nothing to record: every release
 * answers 0).
 */
Test(dirty_2m, version_dependent_reads_counted)
{
	const uint64_t a = IOVA_START, c = IOVA_START + 4 * SZ_2M;
	const bool bounds = kernel_has(h.b, SIM_KB_RECORD_BOUNDS);
	unsigned char *want;
	uint32_t hwpt;

	map_fixed(h.ioas, a, 2 * SZ_2M);	/* leaves a0, a1 */
	map_fixed(h.ioas, c, 2 * SZ_2M);	/* c0, c1, after a hole */
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], a + SZ_4K, SZ_4K);		/* a0 */
	dma(h.dev[0], c + SZ_2M + SZ_4K, SZ_4K);	/* c1 */
	cr_assert_eq(version_dependent_reads(h.b), 0);

	/* Exactly mapped, leaf-aligned ranges: nothing counted */
	want = bitmap_new(1024);
	bits_set(want, 0, 512);
	expect_dirty(hwpt, a, 2 * SZ_2M, SZ_4K, NO_CLEAR, want,
		     "area a at 4 KiB");
	free(want);
	want = want_pages(2, PAGES(0));
	expect_dirty(hwpt, a, 2 * SZ_2M, SZ_2M, NO_CLEAR, want,
		     "area a at 2 MiB");
	free(want);
	want = bitmap_new(32);
	bits_set(want, 0, 32);
	expect_dirty(hwpt, a, SZ_2M, SZ_64K, NO_CLEAR, want, "leaf a0 alone");
	free(want);
	expect_clean(hwpt, a + SZ_2M, SZ_2M, SZ_4K, 0, "leaf a1 alone");
	want = want_pages(2, PAGES(1));
	expect_dirty(hwpt, c, 2 * SZ_2M, SZ_2M, NO_CLEAR, want,
		     "area c at 2 MiB");
	free(want);
	/* Ending inside a clean huge leaf (c0) */
	expect_clean(hwpt, c, 2 * SZ_4K, SZ_4K, 0, "inside clean leaf c0");
	cr_assert_eq(version_dependent_reads(h.b), 0,
		     "%" PRIu64 " reads counted", version_dependent_reads(h.b));

	/* Across the hole: a's bits, -EINVAL from 6.12.118 */
	want = bitmap_new(4096);
	bits_set(want, 0, 512);
	expect_dirty_rc(hwpt, a, c + 2 * SZ_2M - a, SZ_4K, NO_CLEAR,
			kernel_rc_walk(h.b), want, "across the hole");
	free(want);
	cr_assert_eq(version_dependent_reads(h.b), 1);

	/* Length 0 */
	expect_rc(kernel_rc_zero_length(h.b, a),
		  backend_hwpt_get_dirty_bitmap(h.b, hwpt, a, 0, SZ_4K,
						&(uint64_t){ 0 }, NO_CLEAR));
	cr_assert_eq(version_dependent_reads(h.b), 2);

	/* Ending inside the dirty leaf c1 */
	want = bitmap_new(512 + 2);
	if (!bounds)
		bits_set(want, 512, 2);
	expect_dirty_rc(hwpt, c, SZ_2M + 2 * SZ_4K, SZ_4K, NO_CLEAR,
			kernel_rc_bounds(h.b), want, "ending inside leaf c1");
	free(want);
	cr_assert_eq(version_dependent_reads(h.b), 3);

	/* Tracking off */
	expect_ok(backend_hwpt_set_dirty_tracking(h.b, hwpt, false));
	expect_clean_rc(hwpt, a, 2 * SZ_2M, SZ_4K, NO_CLEAR,
			kernel_rc_walk(h.b), "area a, tracking off");
	cr_assert_eq(version_dependent_reads(h.b), 4);

	/* None of them cleared a bit: the leaves are as they were */
	cr_assert(leaf_dirty(hwpt, a));
	cr_assert_not(leaf_dirty(hwpt, a + SZ_2M));
	cr_assert_not(leaf_dirty(hwpt, c));
	cr_assert(leaf_dirty(hwpt, c + SZ_2M));
}

Test(dirty_1g, huge_leaf_1g_reports_every_page)
{
	uint64_t iova = SZ_1G, len = 2 * SZ_1G, nbits = len / SZ_4K;
	const uint64_t off[] = { SZ_1G + 5 * SZ_1M };
	unsigned char *want = want_leaves(nbits, SZ_4K, SZ_1G, off, 1);
	uint32_t hwpt;

	map_fixed(h.ioas, iova, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	dma(h.dev[0], iova + off[0], SZ_4K);
	expect_dirty(hwpt, iova, len, SZ_4K, NO_CLEAR, want,
		     "4 KiB bitmap over 1 GiB leaves");
	free(want);
	want = want_leaves(len / SZ_2M, SZ_2M, SZ_1G, off, 1);
	expect_dirty(hwpt, iova, len, SZ_2M, NO_CLEAR, want,
		     "2 MiB bitmap over 1 GiB leaves");
	free(want);
	want = want_pages(2, PAGES(1));
	expect_dirty(hwpt, iova, len, SZ_1G, 0, want,
		     "1 GiB bitmap over 1 GiB leaves");
	free(want);
	expect_clean(hwpt, iova, len, SZ_2M, 0, "after clearing");
}

/* ---- beyond one 64 GiB bitmap window ------------------------------------ */

/*
 * Linux 6.12 pins the user bitmap 512 pages (2 MiB, 64 GiB of IOVA at
 * 4 KiB) at a time; the first window ends (2 MiB - offset in page) bytes
 * into the bitmap and a dirty leaf across a window boundary is split by
 * iova_bitmap_set().  Map 160 GiB, dirty both sides of every 64 GiB
 * boundary and of the first window's end for a bitmap at @pgoff, read it
 * all at 4 KiB: every bit must be exact.
 */
static void windows(uint64_t leaf, size_t pgoff, bool huge_pages)
{
	const uint64_t iova = SZ_1G, len = 160 * SZ_1G;
	const uint64_t nbits = len / SZ_4K, nbytes = (nbits + 7) / 8;
	const uint64_t w1 = (512 * SZ_4K - pgoff) * 8 * SZ_4K;
	const uint64_t off[] = {
		0, SZ_64G - SZ_4K, SZ_64G, 2 * SZ_64G - SZ_4K, 2 * SZ_64G,
		w1 - SZ_4K, w1, 100 * SZ_1G + 12 * SZ_4K, len - SZ_4K,
	};
	unsigned char *want = want_leaves(nbits, SZ_4K, leaf, off, 9);
	unsigned char *buf = malloc(nbytes + 2 * SZ_4K);
	unsigned char *got;
	uint32_t hwpt;
	size_t i;
	int pass;

	cr_assert_not_null(buf);
	/* the bitmap at @pgoff within a page */
	got = (unsigned char *)(((uintptr_t)buf + SZ_4K - 1) & ~(SZ_4K - 1)) +
	      pgoff;
	if (!huge_pages)
		expect_ok(backend_ioas_set_huge_pages(h.b, h.ioas, false));
	map_fixed(h.ioas, iova, len);
	hwpt = tracking_hwpt(h.ioas, h.dev[0]);
	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		dma(h.dev[0], iova + off[i], SZ_4K);

	for (pass = 0; pass < 3; pass++) {
		uint32_t flags = pass == 0 ? NO_CLEAR : 0;

		memset(got, 0, nbytes);
		expect_ok(backend_hwpt_get_dirty_bitmap(
			h.b, hwpt, iova, len, SZ_4K,
			(uint64_t *)(void *)got, flags));
		if (pass == 2)
			memset(want, 0, nbytes);
		bitmap_expect(got, want, nbits,
			      pass == 0 ? "160 GiB NO_CLEAR read" :
			      pass == 1 ? "160 GiB clearing read" :
					  "160 GiB read after clearing");
	}
	free(want);
	free(buf);
}

Test(dirty_2m, windows_2m_leaves, .timeout = 120)
{
	windows(SZ_2M, 0, true);
}

Test(dirty_2m, windows_2m_leaves_unaligned_bitmap, .timeout = 120)
{
	windows(SZ_2M, 0xff1, true);
}

Test(dirty_1g, windows_1g_leaves, .timeout = 120)
{
	windows(SZ_1G, 0, true);
}

Test(dirty_2m, windows_4k_leaves, .timeout = 300)
{
	windows(SZ_4K, 0, false);
}
