// SPDX-License-Identifier: MIT
/*
 * vm_guest_vfio - a real VFIO device through dirtyd's production device
 * provider, run by /init in the VM tests' guest (tests/vm/run.sh).
 *
 *   vm_guest_vfio /bin/dirtyd
 *
 * The device is the kernel's mtty sample (samples/vfio-mdev/mtty.c, built
 * in: kernel/vm/iommufd-test.config), a mediated device this program
 * creates (mdev_supported_types/mtty-2/create) and leaves for the
 * scenarios that run after it (tests/scenario/mtty.scn).  It is emulated:
 * no IOMMU of its own, no PCI parent, so its VFIO cdev is named vfioN;
 * iommufd binds it as an access, not as a device.  Its DMA logging
 * callbacks exist and report nothing.
 *
 * What runs, each answer checked exactly: the "vfio" provider (not the
 * mock one) lists, opens and binds its cdev; IOMMU_GET_HW_INFO and
 * IOMMU_HWPT_ALLOC with its id (the kernel's answer); attach to an IOAS;
 * DMA logging probe, start, report and stop through the backend, with the
 * kernel's errors for bad ranges, bad page sizes, more than 256 ranges and
 * a second start; the context kept and adopted with it (a restart); the
 * same device beside a mock device in one iommufd
 * (the mock provider's vfio_cdevs_too), where the mock device has no
 * logging (-EOPNOTSUPP); and dirtyd itself ([iommufd] device_provider =
 * vfio) refusing CREATE_DOMAIN with tracking on it, the reason reaching
 * the client.
 *
 * Prints one line per check ("ok N - what" / "not ok N - what: why") and
 * "info: ..." for what is recorded, not judged; exits 1 if a check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "kernel/backend.h"
#include "tests/vm/guest_check.h"
#include "tests/vm/guest_dirtyd.h"

#define MTTY_TYPES "/sys/class/mtty/mtty/mdev_supported_types"
#define MTTY_UUID "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
#define MTTY_CDEV "vfio0"	/* the guest's only VFIO device */
#define IOVA (16 * MIB)
#define LEN MIB
#define PAGE 4096ULL
#define NBITS (LEN / PAGE)

#define CHECK_RC(expr, want, what) ({					\
	int rc_ = (expr);						\
	check(rc_ == (want), "%s (got %d %s, want %d)", what, rc_,	\
	      rc_ ? strerror(-rc_) : "", (want));			\
})

/* Create the mtty mdev (2 ports); 0 or -errno. */
static int mtty_create(void)
{
	const char *path = MTTY_TYPES "/mtty-2/create";
	struct stat st;
	int fd, r = 0;

	if (!stat("/sys/bus/mdev/devices/" MTTY_UUID, &st))
		return 0;	/* already there */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, MTTY_UUID, strlen(MTTY_UUID)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Is every word of @bm (NBITS bits) @v? */
static bool bitmap_all(const uint64_t *bm, uint64_t v)
{
	size_t i;

	for (i = 0; i < NBITS / 64; i++)
		if (bm[i] != v)
			return false;
	return true;
}

static int open_backend(const char *provider, struct backend **b)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.device_provider = provider,
	};

	return backend_open(&cfg, b);
}

/* DMA logging on the bound mtty @dev of @b; @ranges: room for 257. */
static void test_dma_log(struct backend *b, uint32_t dev,
			 struct backend_dma_log_range *ranges)
{
	static uint64_t bm[NBITS / 64];
	struct backend_dma_log_range r = { .iova = IOVA, .length = LEN };
	uint64_t pgsize;
	int rc, i;

	CHECK_RC(backend_dma_log_probe(b, dev), 0,
		 "DMA logging PROBE: mtty has log_ops");

	memset(bm, 0xa5, sizeof(bm));
	CHECK_RC(backend_dma_log_report(b, dev, IOVA, LEN, PAGE, bm), 0,
		 "REPORT before START (mtty keeps no state)");
	check(bitmap_all(bm, 0xa5a5a5a5a5a5a5a5ULL), "it left the bitmap "
	      "as it was");

	pgsize = PAGE;
	rc = backend_dma_log_start(b, dev, &pgsize, &r, 1);
	check(rc == 0 && pgsize == PAGE, "START over 1 MiB at 4 KiB (got %d, "
	      "page size %" PRIu64 ")", rc, pgsize);

	memset(bm, 0, sizeof(bm));
	CHECK_RC(backend_dma_log_report(b, dev, IOVA, LEN, PAGE, bm), 0,
		 "REPORT of the range");
	check(bitmap_all(bm, 0), "mtty reports nothing: every bit clear");
	memset(bm, 0xff, sizeof(bm));
	CHECK_RC(backend_dma_log_report(b, dev, IOVA, LEN, PAGE, bm), 0,
		 "REPORT into a full bitmap");
	check(bitmap_all(bm, ~0ULL), "REPORT never clears a bit");
	CHECK_RC(backend_dma_log_report(b, dev, IOVA, LEN, 2048, bm), -EINVAL,
		 "REPORT at 2 KiB pages (below 4 KiB)");
	CHECK_RC(backend_dma_log_report(b, dev, IOVA, LEN, 12288, bm),
		 -EINVAL, "REPORT at 12 KiB pages (not a power of two)");
	CHECK_RC(backend_dma_log_report(b, dev, ~0ULL - PAGE + 1, 2 * PAGE,
					PAGE, bm), -EOVERFLOW,
		 "REPORT past the end of the IOVA space");

	pgsize = PAGE;
	rc = backend_dma_log_start(b, dev, &pgsize, &r, 1);
	check(rc == 0, "a second START: the core keeps no state and mtty's "
	      "log_start says 0 (got %d); mlx5 says EEXIST", rc);

	pgsize = PAGE;
	r = (struct backend_dma_log_range){ .iova = IOVA + 2048, .length = PAGE };
	CHECK_RC(backend_dma_log_start(b, dev, &pgsize, &r, 1), -EINVAL,
		 "START of a range not aligned to the page size");
	r = (struct backend_dma_log_range){ .iova = IOVA, .length = 6144 };
	CHECK_RC(backend_dma_log_start(b, dev, &pgsize, &r, 1), -EINVAL,
		 "START of a length not aligned to the page size");
	ranges[0] = (struct backend_dma_log_range){ IOVA, 2 * PAGE };
	ranges[1] = (struct backend_dma_log_range){ IOVA + PAGE, 2 * PAGE };
	CHECK_RC(backend_dma_log_start(b, dev, &pgsize, ranges, 2), -EINVAL,
		 "START of overlapping ranges");
	CHECK_RC(backend_dma_log_start(b, dev, &pgsize, ranges, 0), -EINVAL,
		 "START of no range");
	for (i = 0; i < 257; i++)
		ranges[i] = (struct backend_dma_log_range){
			IOVA + (uint64_t)i * PAGE, PAGE };
	CHECK_RC(backend_dma_log_start(b, dev, &pgsize, ranges, 257), -E2BIG,
		 "START of 257 ranges (LOG_MAX_RANGES is 256)");
	rc = backend_dma_log_start(b, dev, &pgsize, ranges, 256);
	check(rc == 0 && pgsize == PAGE, "START of 256 ranges (got %d, page "
	      "size %" PRIu64 ")", rc, pgsize);

	CHECK_RC(backend_dma_log_stop(b, dev), 0, "STOP");
	CHECK_RC(backend_dma_log_stop(b, dev), 0, "a second STOP (mtty: 0)");
}

/*
 * backend_keep() with the mtty @dev bound and attached, backend_leave(),
 * and adoption of what was kept (*@b is then the adopted backend, or NULL).
 */
static bool test_keep(struct backend **b, uint32_t dev)
{
	struct backend_kept_fd fds[BACKEND_KEEP_MAX_FDS];
	static uint8_t blob[BACKEND_KEEP_MAX_BLOB];
	struct backend_config cfg = { .kind = BACKEND_IOMMUFD };
	size_t len = sizeof(blob);
	int n, i, rc;

	n = backend_keep(*b, fds, BACKEND_KEEP_MAX_FDS, blob, &len);
	if (!check(n == 2, "backend_keep: the iommufd and the mtty's "
		   "descriptor (got %d)", n))
		return false;
	for (i = 0; i < n; i++)		/* the store's copies */
		fds[i].fd = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, 0);
	backend_leave(*b);
	*b = NULL;
	cfg.kept = fds;
	cfg.n_kept = (size_t)n;
	cfg.kept_blob = blob;
	cfg.kept_blob_len = len;
	rc = backend_open(&cfg, b);
	if (!check(!rc, "adopt the kept context with the mtty in it (%d %s)",
		   rc, rc ? strerror(-rc) : "")) {
		*b = NULL;
		return false;
	}
	CHECK_RC(backend_dma_log_probe(*b, dev), 0,
		 "the adopted mtty answers DMA logging PROBE");
	return true;
}

/* The production provider on its own. */
static void test_vfio_provider(void)
{
	static struct backend_dma_log_range ranges[257];
	struct backend_device_name names[8];
	struct backend_hw_info hw;
	char canon[BACKEND_NAME_MAX];
	struct backend *b;
	uint32_t dev, ioas, hwpt;
	uint64_t iova = IOVA;
	void *mem;
	int rc, n;

	rc = open_backend(NULL, &b);
	if (!check(!rc, "the iommufd backend with the vfio device provider "
		   "opens (%d)", rc))
		return;
	n = backend_device_enumerate(b, names, 8);
	check(n == 1 && !strcmp(names[0].name, MTTY_CDEV), "enumerate lists "
	      "exactly the mtty, by its cdev name (no PCI parent): %d, "
	      "\"%s\"", n, n > 0 ? names[0].name : "");
	rc = backend_device_canonical(b, MTTY_CDEV, canon, sizeof(canon));
	check(!rc && !strcmp(canon, MTTY_CDEV), "its canonical name is %s "
	      "(%d, \"%s\")", MTTY_CDEV, rc, rc ? "" : canon);

	rc = backend_device_bind(b, MTTY_CDEV, &dev);
	if (!check(!rc, "bind %s: open the cdev, VFIO_DEVICE_BIND_IOMMUFD "
		   "(%d %s)", MTTY_CDEV, rc, rc ? strerror(-rc) : ""))
		goto out;
	check(backend_device_fd(b, dev) >= 0, "the device has its VFIO "
	      "descriptor");
	rc = backend_device_get_hw_info(b, dev, &hw);
	info("IOMMU_GET_HW_INFO on the mtty: %d %s", rc,
	     rc ? strerror(-rc) : "");
	check(rc == -ENOENT, "IOMMU_GET_HW_INFO: ENOENT, an emulated device "
	      "is an iommufd access, not a device (got %d)", rc);

	rc = backend_ioas_alloc(b, &ioas);
	if (!check(!rc, "IOMMU_IOAS_ALLOC (%d)", rc))
		goto out;
	mem = mem_alloc(LEN, false, true);
	rc = mem ? backend_ioas_map(b, ioas, IOMMU_IOAS_MAP_FIXED_IOVA |
				    IOMMU_IOAS_MAP_READABLE |
				    IOMMU_IOAS_MAP_WRITEABLE, mem, LEN,
				    &iova) : -ENOMEM;
	CHECK_RC(rc, 0, "map 1 MiB");
	CHECK_RC(backend_hwpt_alloc(b, dev, ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt),
		 -ENOENT, "IOMMU_HWPT_ALLOC with tracking for the mtty");
	CHECK_RC(backend_hwpt_alloc(b, dev, ioas, 0, &hwpt), -ENOENT,
		 "IOMMU_HWPT_ALLOC without tracking for the mtty");
	CHECK_RC(backend_device_attach(b, dev, ioas), 0,
		 "attach the mtty to the IOAS");

	test_dma_log(b, dev, ranges);
	if (!test_keep(&b, dev))
		return;

	CHECK_RC(backend_device_detach(b, dev), 0, "detach");
	CHECK_RC(backend_device_unbind(b, dev), 0, "unbind");
	CHECK_RC(backend_destroy(b, ioas), 0, "destroy the IOAS");
out:
	backend_close(b);
}

/* The mtty beside a mock device in one iommufd. */
static void test_beside_mock(void)
{
	struct backend *b;
	uint32_t mtty, mock;
	int rc;

	rc = open_backend("mock", &b);
	if (!check(!rc, "the iommufd backend with the mock provider (%d)",
		   rc))
		return;
	CHECK_RC(backend_device_bind(b, "mock0", &mock), 0, "bind mock0");
	CHECK_RC(backend_device_bind(b, MTTY_CDEV, &mtty), 0,
		 "bind " MTTY_CDEV " through the same backend (the VFIO "
		 "provider binds VFIO cdev names)");
	CHECK_RC(backend_dma_log_probe(b, mock), -EOPNOTSUPP,
		 "DMA logging PROBE of the mock device: it has no VFIO "
		 "descriptor");
	CHECK_RC(backend_dma_log_probe(b, mtty), 0,
		 "DMA logging PROBE of the mtty");
	check(backend_device_fd(b, mtty) >= 0 &&
	      backend_device_fd(b, mock) == -EOPNOTSUPP, "the mtty has a "
	      "descriptor, the mock device none");
	CHECK_RC(backend_device_unbind(b, mtty), 0, "unbind the mtty");
	CHECK_RC(backend_device_unbind(b, mock), 0, "unbind mock0");
	backend_close(b);
}

/*
 * dirtyd with the VFIO provider: a domain that must track through the
 * IOMMU is refused, with the kernel's reason; one that may use any source
 * tracks by the mtty's own DMA log (issue 17: per device, QEMU's order).
 */
static void test_daemon(const char *bin)
{
	static struct harness h;
	struct dirty *c = NULL;
	struct dirty_source **src = NULL;
	const char *text;
	uint32_t dom = 0, dev_id = 0;
	size_t n = 0;
	int r, ws;

	r = guest_dirtyd_init_provider(&h, bin, "resume_grace = 0\n", false,
				       "vfio");
	if (!r)
		r = harness_start(&h);
	if (!check(!r, "dirtyd (device_provider = vfio) started (%d)", r))
		goto out;
	r = dirty_connect(h.sock, 0, &c);
	if (!check(!r, "connect and HELLO (%d)", r))
		goto stop;
	r = dirty_domain_create(c, MTTY_CDEV, DIRTY_CREATE_TRACKING |
				DIRTY_CREATE_SOURCE_IOMMU, &dom, NULL);
	text = dirty_last_error_text(c);
	info("CREATE_DOMAIN with IOMMU tracking on %s: %d \"%s\"", MTTY_CDEV,
	     r, text ? text : "");
	check(r == -EOPNOTSUPP, "CREATE_DOMAIN with IOMMU tracking on the mtty "
	      "is refused (EOPNOTSUPP) with the kernel's IOMMU_GET_HW_INFO error "
	      "(got %d)", r);
	check(text && strstr(text, MTTY_CDEV) &&
	      strstr(text, "IOMMU_GET_HW_INFO") &&
	      strstr(text, "No such file or directory"), "the client gets the "
	      "reason, naming the device, the call and its error: \"%s\"",
	      text ? text : "(none)");
	r = dirty_domain_create(c, MTTY_CDEV, DIRTY_CREATE_TRACKING, &dom,
				&dev_id);
	text = dirty_last_error_text(c);
	check(!r, "CREATE_DOMAIN with tracking, any source, on the mtty: "
	      "its DMA log (%d \"%s\")", r, r && text ? text : "");
	if (r)
		goto close;
	r = dirty_list_sources(c, dom, &src, &n);
	check(!r && n == 1 && src[0]->kind == DIRTY_SOURCE_DMA_LOG &&
	      !strcmp(src[0]->device, MTTY_CDEV), "LIST_SOURCES: one source, "
	      "the DMA log of %s (%d, %zu, kind %u)", MTTY_CDEV, r, n,
	      n ? src[0]->kind : 0);
	free(src);
	CHECK_RC(dirty_track_start(c, dom), 0, "TRACK_START: DMA logging "
		 "started on the real device");
	CHECK_RC(dirty_track_stop(c, dom), 0, "TRACK_STOP: stopped");
	CHECK_RC(dirty_domain_destroy(c, dom), 0, "DESTROY_DOMAIN");
close:
	dirty_close(c);
stop:
	ws = harness_stop(&h);
	check(ws == 0, "dirtyd exits 0 on SIGTERM (wait status %d)", ws);
out:
	if (n_failed)
		harness_dump_log(&h, stdout, 0, "dirtyd: ");
	harness_fini(&h);
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: vm_guest_vfio /bin/dirtyd\n");
		return 2;
	}
	r = mtty_create();
	if (!check(!r, "create an mtty mdev (%s/mtty-2/create): %d %s",
		   MTTY_TYPES, r, r ? strerror(-r) : "")) {
		printf("%u checks, %u failed\n", n_checks, n_failed);
		return 1;
	}
	test_vfio_provider();
	test_beside_mock();
	test_daemon(argv[1]);
	printf("%u checks, %u failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
