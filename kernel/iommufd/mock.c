// SPDX-License-Identifier: MIT
/*
 * The mock device provider: devices of the kernel's mock IOMMU
 * (CONFIG_IOMMUFD_TEST, drivers/iommu/iommufd/selftest.c), for testing
 * against the real iommufd where no VFIO hardware exists (tests/vm/).
 * Chosen with backend_config.device_provider = "mock".
 *
 * The test interface (IOMMU_TEST_CMD) is a debug ABI that follows the
 * kernel version, so its definitions are generated at build time from the
 * iommufd_test.h of the same linux-source tree the VM kernel is built from
 * (kernel/vm/iommufd-test-header.sh).  Test code: built into dirtyd only
 * with the tests (DIRTYD_TESTS, which defines DIRTYD_MOCK_PROVIDER;
 * kernel/vm/iommufd-test-header.cmake).
 *
 * Naming.  A device is "<base>[:<flag>[,<flag>]]": <base> is any
 * non-empty string without ':' or ','; the flags are "nodirty"
 * (MOCK_FLAGS_DEVICE_NO_DIRTY: no IOMMU_HW_CAP_DIRTY_TRACKING) and "huge"
 * (MOCK_FLAGS_DEVICE_HUGE_IOVA: its domains also map 1 MiB leaves, given
 * 1 MiB of physically contiguous memory, e.g. hugetlb pages).  Each bind
 * creates a new mock device, so binding one name twice gives two devices.
 * enumerate() lists a fixed catalogue: mock0, mock1:nodirty, mock2:huge.
 * A VFIO cdev name (vfioN) is not a mock device: it binds the real VFIO
 * device through the VFIO cdev provider (vfio_cdevs_too), in the same
 * iommufd, so that a test can put an emulated VFIO device (the VM's mtty)
 * beside mock devices and their HWPTs.
 *
 * Life cycle.  A mock device exists only attached (IOMMU_TEST_OP_MOCK_DOMAIN
 * creates, binds and attaches it in one call, to an IOAS it must be given),
 * so each device gets a private parking IOAS: bind creates the device on
 * it, detach moves it back there, unbind destroys the device (its selftest
 * object) and then the parking IOAS.  attach is
 * IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, which like VFIO's ATTACH_IOMMUFD_PT
 * takes an IOAS (auto domain) or a HWPT and answers the HWPT attached.
 * The device's iommufd dev_id is the kernel's idev id: IOMMU_GET_HW_INFO
 * and IOMMU_HWPT_ALLOC take it as for a VFIO device.  No device fd exists.
 *
 * DMA.  dma_write() is IOMMU_TEST_OP_DIRTY on the device's HWPT: it sets
 * the dirty bit of every mock page (MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2,
 * selftest.c) of [iova, iova + length) rounded out to mock pages.  The
 * mock marks only while tracking is enabled (-EINVAL otherwise): a device
 * writing while tracking is off records nothing, so that -EINVAL becomes
 * 0, and then unmapped IOVAs cannot be told (the mock skips them without
 * a word); with tracking on, a range not wholly mapped is -ENOENT (its
 * mapped pages are still marked).  A detached device: -ENODEV.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/iommufd/iommufd_impl.h"

#include <iommufd_test.h>

/* The catalogue enumerate() lists. */
static const char *const mock_catalogue[] = {
	"mock0",
	"mock1:nodirty",
	"mock2:huge",
};

/* A bitmap of this many mock pages per IOMMU_TEST_OP_DIRTY (16 KiB). */
#define MOCK_DIRTY_CHUNK_PAGES (1ULL << 17)

/* selftest.c: MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2 */
static uint64_t mock_io_page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE) / 2;
}

static int mock_parse_name(const char *name, uint32_t *dev_flags)
{
	size_t len = strcspn(name, ":,");
	const char *p = name + len;
	uint32_t flags = 0;

	if (!len || *p == ',')
		return -EINVAL;
	while (*p) {
		p++;			/* the ':', then each ',' */
		len = strcspn(p, ",");
		if (len == strlen("nodirty") && !strncmp(p, "nodirty", len))
			flags |= MOCK_FLAGS_DEVICE_NO_DIRTY;
		else if (len == strlen("huge") && !strncmp(p, "huge", len))
			flags |= MOCK_FLAGS_DEVICE_HUGE_IOVA;
		else
			return -EINVAL;
		p += len;
	}
	*dev_flags = flags;
	return 0;
}

static int mock_test_cmd(int fd, struct iommu_test_cmd *cmd)
{
	return iommufd_ioctl(fd, IOMMU_TEST_CMD, cmd);
}

/*
 * Op 0 is no test op: a kernel with CONFIG_IOMMUFD_TEST answers
 * -EOPNOTSUPP (iommufd_test()'s default), one without it -ENOTTY (no
 * such ioctl).
 */
static int mock_probe(const struct iommufd_backend *ib)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = 0,
	};
	int rc;

	rc = mock_test_cmd(ib->fd, &cmd);
	if (rc == -ENOTTY)
		return -EOPNOTSUPP;
	return rc == -EOPNOTSUPP ? 0 : rc;
}

static int mock_enumerate(const struct iommufd_backend *ib,
			  struct backend_device_name *names, size_t max)
{
	size_t i, n = sizeof(mock_catalogue) / sizeof(mock_catalogue[0]);

	for (i = 0; i < n && i < max; i++) {
		memset(names[i].name, 0, sizeof(names[i].name));
		strcpy(names[i].name, mock_catalogue[i]);
	}
	return (int)i;
}

static int mock_bind(const struct iommufd_backend *ib, const char *name,
		     struct iommufd_dev *dev)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
	};
	uint32_t flags, park;
	int rc;

	rc = mock_parse_name(name, &flags);
	if (rc)
		return rc;
	rc = iommufd_ioas_alloc(ib->fd, &park);
	if (rc)
		return rc;
	cmd.id = park;
	cmd.mock_domain_flags.dev_flags = flags;
	rc = mock_test_cmd(ib->fd, &cmd);
	if (rc) {
		iommufd_destroy(ib->fd, park);
		return rc;
	}
	dev->dev_id = cmd.mock_domain_flags.out_idev_id;
	dev->fd = -1;
	dev->mock.stdev_id = cmd.mock_domain_flags.out_stdev_id;
	dev->mock.park_ioas_id = park;
	return 0;
}

static int mock_replace(const struct iommufd_backend *ib,
			const struct iommufd_dev *dev, uint32_t *pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = dev->mock.stdev_id,
		.mock_domain_replace.pt_id = *pt_id,
	};
	int rc;

	rc = mock_test_cmd(ib->fd, &cmd);
	if (!rc)
		*pt_id = cmd.mock_domain_replace.pt_id;
	return rc;
}

static int mock_attach(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev, uint32_t *pt_id)
{
	return mock_replace(ib, dev, pt_id);
}

static int mock_detach(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev)
{
	uint32_t park = dev->mock.park_ioas_id;

	return mock_replace(ib, dev, &park);
}

/* Destroying the selftest object detaches, unbinds and frees the device. */
static void mock_unbind(const struct iommufd_backend *ib,
			struct iommufd_dev *dev)
{
	iommufd_destroy(ib->fd, dev->mock.stdev_id);
	iommufd_destroy(ib->fd, dev->mock.park_ioas_id);
	dev->mock.stdev_id = 0;
	dev->mock.park_ioas_id = 0;
}

/* One IOMMU_TEST_OP_DIRTY of @npages mock pages, every bit set. */
static int mock_dirty(const struct iommufd_backend *ib, uint32_t hwpt_id,
		      uint64_t iova, uint64_t npages, uint64_t *bitmap,
		      uint64_t *out_nr_dirty)
{
	uint64_t page = mock_io_page_size();
	uint64_t nwords = (npages + 63) / 64;
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt_id,
		.dirty = {
			.iova = iova,
			.length = npages * page,
			.page_size = page,
			.uptr = (uintptr_t)bitmap,
		},
	};
	int rc;

	memset(bitmap, 0xff, nwords * sizeof(*bitmap));
	if (npages % 64)
		bitmap[nwords - 1] = (1ULL << (npages % 64)) - 1;
	rc = mock_test_cmd(ib->fd, &cmd);
	if (!rc)
		*out_nr_dirty = cmd.dirty.out_nr_dirty;
	return rc;
}

static int mock_dma_write(const struct iommufd_backend *ib,
			  struct iommufd_dev *dev, uint64_t iova,
			  uint64_t length)
{
	uint64_t page = mock_io_page_size();
	uint64_t last, start, npages, n, nr_dirty;
	bool hole = false;
	uint64_t *bitmap;
	int rc = 0;

	if (!length)
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	if (!dev->attached)
		return -ENODEV;

	start = iova & ~(page - 1);
	npages = (last - start) / page + 1;
	n = npages < MOCK_DIRTY_CHUNK_PAGES ? npages : MOCK_DIRTY_CHUNK_PAGES;
	bitmap = calloc((n + 63) / 64, sizeof(*bitmap));
	if (!bitmap)
		return -ENOMEM;
	while (npages) {
		n = npages < MOCK_DIRTY_CHUNK_PAGES ? npages :
						      MOCK_DIRTY_CHUNK_PAGES;
		rc = mock_dirty(ib, dev->pt_id, start, n, bitmap, &nr_dirty);
		if (rc == -EINVAL) {
			/* Tracking is off: the write records nothing. */
			rc = 0;
			break;
		}
		if (rc)
			break;
		if (nr_dirty != n)
			hole = true;
		start += n * page;
		npages -= n;
	}
	free(bitmap);
	if (!rc && hole)
		rc = -ENOENT;
	return rc;
}

const struct iommufd_dev_provider mock_provider = {
	.name = "mock",
	.probe = mock_probe,
	.enumerate = mock_enumerate,
	.bind = mock_bind,
	.attach = mock_attach,
	.detach = mock_detach,
	.unbind = mock_unbind,
	.dma_write = mock_dma_write,
	.vfio_cdevs_too = true,
};
