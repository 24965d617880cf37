// SPDX-License-Identifier: MIT
/*
 * vm_guest_daemon - the real dirtyd on the iommufd backend with the
 * kernel's mock IOMMU devices ([iommufd] device_provider = mock), and
 * clients over its socket (libdirty), run by /init in the VM tests' guest
 * (tests/vm/run.sh).
 *
 *   vm_guest_daemon /bin/dirtyd
 *
 * dirtyd is started as systemd would (tests/harness: NOTIFY_SOCKET,
 * READY=1 awaited) and stopped with SIGTERM at the end (a clean exit is a check).  Mock
 * geometry: the IO page is half the CPU page (2 KiB), so a domain's
 * page_size is 2 KiB and every expectation below is in those pages; IOVAs
 * within [16 MiB, 2 GiB); ":huge" devices map 1 MiB leaves where the
 * memory is physically contiguous (hugetlb, mapped by the client itself).
 *
 * Prints one line per check, "ok N - what" or "not ok N - what: why",
 * "info: ..." lines for what is observed but not judged, and exits 1 if
 * any check failed (then dirtyd's log follows, "dirtyd: ..." lines).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "kernel/uapi/iommufd.h"
#include "tests/vm/guest_check.h"
#include "tests/vm/guest_dirtyd.h"

#define GD_PARALLEL 3
#define GD_ROUNDS 5

static uint64_t page_size;	/* the mock IO page: what domains report */

#define CHECK_RC(expr, want, what) ({					\
	int rc_ = (expr);						\
	check(rc_ == (want), "%s (got %d %s, want %d)", what, rc_,	\
	      rc_ ? strerror(-rc_) : "", (want));			\
})

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ daemon */

static struct harness dirtyd;

/* Start dirtyd (tests/harness) and wait for READY=1. */
static int daemon_start(const char *bin)
{
	int r = guest_dirtyd_init(&dirtyd, bin, "resume_grace = 0\n", false);

	return r < 0 ? r : harness_start(&dirtyd);
}

/* SIGTERM, then the wait status (-ETIMEDOUT if it had to be killed). */
static int daemon_stop(void)
{
	return harness_stop(&dirtyd);
}

/*
 * Does dirtyd's log say it harvests the way the harness expects?  run.sh
 * boots the stock kernel with DIRTYD_VM_ENGINE=workers and the patched one
 * with DIRTYD_VM_ENGINE=uring_cmd on the kernel command line, which the
 * kernel hands to /init, and /init to us, as an environment variable.
 */
static void daemon_check_engine(void)
{
	const char *want = getenv("DIRTYD_VM_ENGINE");
	char needle[64];

	if (!check(want && *want, "the harness says which harvest engine to "
		   "expect (DIRTYD_VM_ENGINE=%s)", want ? want : "(unset)"))
		return;
	snprintf(needle, sizeof(needle), "harvest by %s (", want);
	check(harness_log_has(&dirtyd, needle, false), "dirtyd's start-up probe chose %s (\"%s\" in its log)",
	      want, needle);
}

static void daemon_dump_log(void)
{
	harness_dump_log(&dirtyd, stdout, 0, "dirtyd: ");
}

/* ------------------------------------------------------------ pages */

/* What a client received, against what it expects, over
 * [base, base + n) pages; anything outside is counted. */
struct pageset {
	uint64_t base;		/* first page number */
	uint64_t n;
	uint8_t *got;
	uint8_t *want;
	uint64_t outside;	/* pages reported outside the window */
	uint64_t first_outside;
};

static int pageset_init(struct pageset *ps, uint64_t iova, uint64_t length)
{
	*ps = (struct pageset){
		.base = iova / page_size,
		.n = length / page_size,
	};
	ps->got = calloc(ps->n, 1);
	ps->want = calloc(ps->n, 1);
	return ps->got && ps->want ? 0 : -ENOMEM;
}

static void pageset_free(struct pageset *ps)
{
	free(ps->got);
	free(ps->want);
}

static void pageset_reset(struct pageset *ps)
{
	memset(ps->got, 0, ps->n);
	memset(ps->want, 0, ps->n);
	ps->outside = 0;
}

/* Expect [iova, iova + length) rounded out to pages. */
static void pageset_expect(struct pageset *ps, uint64_t iova, uint64_t length)
{
	uint64_t p = iova / page_size, end = (iova + length + page_size - 1) /
					      page_size;

	for (; p < end; p++)
		if (p >= ps->base && p < ps->base + ps->n)
			ps->want[p - ps->base] = 1;
}

static int pageset_add(void *ctx, uint64_t first, uint64_t npages)
{
	struct pageset *ps = ctx;

	for (uint64_t p = first; p < first + npages; p++) {
		if (p < ps->base || p >= ps->base + ps->n) {
			if (!ps->outside++)
				ps->first_outside = p;
			continue;
		}
		ps->got[p - ps->base] = 1;
	}
	return 0;
}

/* "as expected", or the first difference, in @why. */
static bool pageset_same(const struct pageset *ps, char *why, size_t len,
			 uint64_t *ngot)
{
	uint64_t i, n = 0, bad = UINT64_MAX;

	for (i = 0; i < ps->n; i++) {
		n += ps->got[i];
		if (ps->got[i] != ps->want[i] && bad == UINT64_MAX)
			bad = i;
	}
	if (ngot)
		*ngot = n + ps->outside;
	if (ps->outside) {
		snprintf(why, len, "%" PRIu64 " pages outside the window, the "
			 "first %" PRIu64, ps->outside, ps->first_outside);
		return false;
	}
	if (bad != UINT64_MAX) {
		snprintf(why, len, "page %" PRIu64 " (IOVA 0x%" PRIx64 ") %s",
			 ps->base + bad, (ps->base + bad) * page_size,
			 ps->want[bad] ? "missing" : "unexpected");
		return false;
	}
	snprintf(why, len, "%" PRIu64 " pages, as expected", n);
	return true;
}

/* SYNC, take the ranges (acknowledged), compare; one check. */
static bool sync_and_compare(struct dirty *c, uint32_t dom,
			     struct pageset *ps, const char *what)
{
	char why[160];
	int r;

	memset(ps->got, 0, ps->n);
	ps->outside = 0;
	r = dirty_sync(c, dom, NULL, NULL);
	if (r < 0)
		return check(false, "%s: SYNC failed: %d %s (%s)", what, r,
			     strerror(-r), dirty_last_error_text(c));
	r = dirty_ranges(c, dom, DIRTY_RANGES_ACK, pageset_add, ps, NULL);
	if (r < 0)
		return check(false, "%s: GET_RANGES failed: %d %s (%s)", what,
			     r, strerror(-r), dirty_last_error_text(c));
	return check(pageset_same(ps, why, sizeof(why), NULL), "%s: %s",
		     what, why);
}

/* ------------------------------------------------------------ iommufd */

static int client_ioas_map(int iommufd, uint32_t ioas, void *va,
			   uint64_t iova, uint64_t length)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP, &map) ? -errno : 0;
}

static int client_ioas_unmap(int iommufd, uint32_t ioas, uint64_t iova,
			     uint64_t length)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas,
		.iova = iova,
		.length = length,
	};

	return ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap) ? -errno : 0;
}

/* ------------------------------------------------------------ tests */

static void test_devices(struct dirty *c)
{
	static const struct {
		const char *name;
		bool capable;
	} want[] = {
		{ "mock0", true },
		{ "mock1:nodirty", false },
		{ "mock2:huge", true },
	};
	struct dirty_device **list = NULL;
	size_t n = 0;
	int r;

	r = dirty_list_devices(c, &list, &n);
	if (!check(!r, "LIST_DEVICES (%d %s)", r, r ? strerror(-r) : ""))
		return;
	check(n == 3, "LIST_DEVICES lists the mock catalogue (%zu devices)",
	      n);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct dirty_device *dev = NULL;

		for (size_t j = 0; j < n; j++)
			if (!strcmp(list[j]->name, want[i].name))
				dev = list[j];
		if (!check(dev, "LIST_DEVICES has %s", want[i].name))
			continue;
		check(!!(dev->flags & DIRTY_DEVICE_DIRTY_CAPABLE) ==
		      want[i].capable &&
		      !!(dev->capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) ==
		      want[i].capable,
		      "%s: DIRTY_CAPABLE %s (flags 0x%x, capabilities "
		      "0x%" PRIx64 ")", dev->name, want[i].capable ? "set" :
		      "clear", dev->flags, dev->capabilities);
	}
	free(list);
}

/* Capability refusals; returns a tracking domain on mock0 (0: none). */
static uint32_t test_refusals(struct dirty *c)
{
	uint32_t dom = 0, plain = 0, dev_id;
	const char *text;
	int r;

	r = dirty_domain_create(c, "mock1:nodirty", DIRTY_CREATE_TRACKING,
				&plain, NULL);
	text = dirty_last_error_text(c);
	check(r == -EOPNOTSUPP, "CREATE_DOMAIN with tracking on mock1:nodirty "
	      "is refused EOPNOTSUPP (got %d)", r);
	check(text && strstr(text, "mock1:nodirty"), "the refusal names the "
	      "device: \"%s\"", text ? text : "(none)");

	r = dirty_domain_create(c, "mock0", DIRTY_CREATE_TRACKING, &dom,
				NULL);
	if (!check(!r, "CREATE_DOMAIN with tracking on mock0 (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		return 0;
	r = dirty_domain_attach(c, dom, "mock1:nodirty", &dev_id);
	text = dirty_last_error_text(c);
	check(r == -EINVAL, "ATTACH_DEVICE mock1:nodirty to the tracking "
	      "domain is refused EINVAL (got %d)", r);
	check(text && strstr(text, "mock1:nodirty"), "the refusal names the "
	      "device: \"%s\"", text ? text : "(none)");

	r = dirty_domain_create(c, "mock1:nodirty", 0, &plain, NULL);
	if (check(!r, "CREATE_DOMAIN without tracking on mock1:nodirty (%d "
		  "%s)", r, r ? dirty_last_error_text(c) : "")) {
		CHECK_RC(dirty_track_start(c, plain), -EOPNOTSUPP,
			 "TRACK_START on the domain without tracking");
		CHECK_RC(dirty_domain_destroy(c, plain), 0,
			 "DESTROY_DOMAIN of it");
	}
	return dom;
}

/* Enable, disable, exact pages, bits relative to the IOVA, unmap. */
static void test_tracking(struct dirty *c, uint32_t dom)
{
	const uint64_t base = 16 * MIB, len = 4 * MIB;
	/* an IOVA that is no multiple of 64 pages: bits relative to it */
	const uint64_t odd = 64 * MIB + 13 * 2048, odd_len = 200 * 2048;
	struct dirty_subscription_info si = { .size = sizeof(si) };
	struct pageset ps, po;
	int r;

	CHECK_RC(dirty_map(c, dom, base, len, 0), 0,
		 "MAP 4 MiB at 16 MiB (dirtyd's memory)");
	r = dirty_subscribe(c, dom, 0, DIRTY_SUBSCRIBE_CLEAN, &si);
	if (!check(!r, "SUBSCRIBE (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		return;
	check(si.page_size == page_size, "the domain's page_size is the mock "
	      "IO page, %" PRIu64 " (got %" PRIu64 ", max_leaf %" PRIu64 ")",
	      page_size, si.page_size, si.max_leaf);
	if (pageset_init(&ps, base, len) < 0 ||
	    pageset_init(&po, odd, odd_len) < 0)
		return;

	CHECK_RC(dirty_track_start(c, dom), 0, "TRACK_START");
	pageset_expect(&ps, base, len);
	sync_and_compare(c, dom, &ps, "a subscriber from before TRACK_START "
			 "gets every mapped page");
	pageset_reset(&ps);
	sync_and_compare(c, dom, &ps, "nothing written, nothing reported");

	CHECK_RC(dirty_dma_write(c, dom, base, page_size), 0,
		 "DMA_WRITE page 0");
	CHECK_RC(dirty_dma_write(c, dom, base + 5 * page_size,
				 3 * page_size), 0, "DMA_WRITE pages 5-7");
	CHECK_RC(dirty_dma_write(c, dom, base + 1000 * page_size, page_size),
		 0, "DMA_WRITE page 1000");
	CHECK_RC(dirty_dma_write(c, dom, base + len - page_size, page_size),
		 0, "DMA_WRITE the last page");
	pageset_expect(&ps, base, page_size);
	pageset_expect(&ps, base + 5 * page_size, 3 * page_size);
	pageset_expect(&ps, base + 1000 * page_size, page_size);
	pageset_expect(&ps, base + len - page_size, page_size);
	sync_and_compare(c, dom, &ps, "GET_RANGES: exactly the pages written");
	pageset_reset(&ps);
	sync_and_compare(c, dom, &ps, "the harvest cleared them: nothing "
			 "again");

	r = dirty_dma_write(c, dom, 8 * MIB, page_size);
	check(r == -ENOENT, "DMA_WRITE where nothing is mapped: ENOENT (got "
	      "%d: %s)", r, dirty_last_error_text(c));

	CHECK_RC(dirty_track_stop(c, dom), 0, "TRACK_STOP");
	CHECK_RC(dirty_dma_write(c, dom, base + 7 * page_size, page_size), 0,
		 "DMA_WRITE with tracking off (the mock records nothing)");
	r = dirty_sync(c, dom, NULL, NULL);
	check(r == -EINVAL, "SYNC with tracking off: EINVAL (got %d)", r);
	CHECK_RC(dirty_track_start(c, dom), 0, "TRACK_START again");
	pageset_reset(&ps);
	pageset_expect(&ps, base, len);
	sync_and_compare(c, dom, &ps, "after tracking was off every mapped "
			 "page is pending");

	pageset_reset(&ps);
	CHECK_RC(dirty_dma_write(c, dom, base + 77 * page_size,
				 2 * page_size), 0, "DMA_WRITE pages 77-78");
	pageset_expect(&ps, base + 77 * page_size, 2 * page_size);
	sync_and_compare(c, dom, &ps, "re-enabled: exactly the pages written");

	CHECK_RC(dirty_map(c, dom, odd, odd_len, 0), 0,
		 "MAP 200 pages at 64 MiB + 13 pages");
	pageset_reset(&po);
	CHECK_RC(dirty_dma_write(c, dom, odd, page_size), 0,
		 "DMA_WRITE its first page");
	CHECK_RC(dirty_dma_write(c, dom, odd + 63 * page_size,
				 3 * page_size), 0,
		 "DMA_WRITE its pages 63-65");
	CHECK_RC(dirty_dma_write(c, dom, odd + odd_len - page_size,
				 page_size), 0, "DMA_WRITE its last page");
	pageset_expect(&po, odd, page_size);
	pageset_expect(&po, odd + 63 * page_size, 3 * page_size);
	pageset_expect(&po, odd + odd_len - page_size, page_size);
	/* a page of the 4 MiB mapping would be "outside" po: a failure */
	sync_and_compare(c, dom, &po, "bits relative to an unaligned IOVA: "
			 "exactly the pages written");

	CHECK_RC(dirty_dma_write(c, dom, odd + 100 * page_size, page_size), 0,
		 "DMA_WRITE page 100 of it, then UNMAP it");
	CHECK_RC(dirty_unmap(c, dom, odd, odd_len), 0, "UNMAP with tracking "
		 "on");
	pageset_reset(&po);
	pageset_expect(&po, odd + 100 * page_size, page_size);
	sync_and_compare(c, dom, &po, "a page written before the UNMAP is "
			 "still delivered");
	CHECK_RC(dirty_unsubscribe(c, dom), 0, "UNSUBSCRIBE");
	pageset_free(&ps);
	pageset_free(&po);
}

/*
 * GET_FDS, then a mapping the client made itself through the passed
 * iommufd (IOMMU_IOAS_MAP into the domain's IOAS), tracked by dirtyd
 * after MAP with DIRTY_MAP_EXTERNAL.  @huge: hugetlb memory on a :huge
 * device, where a write dirties its whole 1 MiB leaf.
 */
static void test_external(struct dirty *c, uint32_t dom, bool huge)
{
	const uint64_t iova = huge ? 1024 * MIB : 512 * MIB, len = 2 * MIB;
	const char *tag = huge ? "huge" : "external";
	struct dirty_subscription_info si = { .size = sizeof(si) };
	struct dirty_fds *fds = NULL;
	struct pageset ps;
	struct stat st;
	void *mem;
	int r, fd;

	r = dirty_get_fds(c, dom, &fds);
	if (!check(!r, "%s: GET_FDS (%d %s)", tag, r,
		   r ? dirty_last_error_text(c) : ""))
		return;
	fd = fds->iommufd;
	check(fd >= 0 && !fstat(fd, &st) && S_ISCHR(st.st_mode) &&
	      fcntl(fd, F_GETFD) & FD_CLOEXEC, "%s: the iommufd came over "
	      "SCM_RIGHTS (fd %d, close-on-exec)", tag, fd);
	check(fds->n_devices == 0, "%s: no device descriptors (mock devices "
	      "have none; %zu listed)", tag, fds->n_devices);
	info("%s: ioas_id %u hwpt_id %u", tag, fds->ioas_id, fds->hwpt_id);

	mem = mem_alloc(len, huge, true);
	if (!check(mem, "%s: %s memory for the client's own mapping", tag,
		   huge ? "hugetlb" : "plain"))
		goto out;
	r = client_ioas_map(fd, fds->ioas_id, mem, iova, len);
	if (!check(!r, "%s: the client's IOMMU_IOAS_MAP of 2 MiB at 0x%"
		   PRIx64 " through the passed iommufd (%d %s)", tag, iova, r,
		   r ? strerror(-r) : ""))
		goto out;
	CHECK_RC(dirty_map(c, dom, iova, len, DIRTY_MAP_EXTERNAL), 0,
		 huge ? "huge: MAP EXTERNAL of it" : "external: MAP EXTERNAL "
		 "of it");
	/* tracking first: a subscriber from before TRACK_START would get
	 * every mapped page (the mock0 domain tracks already) */
	if (huge)
		CHECK_RC(dirty_track_start(c, dom), 0, "huge: TRACK_START");
	r = dirty_subscribe(c, dom, 0, DIRTY_SUBSCRIBE_CLEAN, &si);
	if (!check(!r, "%s: SUBSCRIBE (%d %s)", tag, r,
		   r ? dirty_last_error_text(c) : ""))
		goto out_unmap;
	if (huge)
		check(si.max_leaf >= MIB, "huge: max_leaf %" PRIu64 " covers "
		      "the 1 MiB mock leaf", si.max_leaf);
	if (pageset_init(&ps, iova, len) < 0)
		goto out_unsub;

	if (huge) {
		CHECK_RC(dirty_dma_write(c, dom, iova + MIB + 3 * page_size,
					 page_size), 0,
			 "huge: DMA_WRITE one page in the second 1 MiB leaf");
		pageset_expect(&ps, iova + MIB, MIB);
		sync_and_compare(c, dom, &ps, "huge: the whole 1 MiB leaf is "
				 "reported (512 pages)");
	} else {
		CHECK_RC(dirty_dma_write(c, dom, iova + 9 * page_size,
					 2 * page_size), 0,
			 "external: DMA_WRITE into the client's mapping");
		CHECK_RC(dirty_dma_write(c, dom, iova + len - page_size,
					 page_size), 0,
			 "external: DMA_WRITE its last page");
		pageset_expect(&ps, iova + 9 * page_size, 2 * page_size);
		pageset_expect(&ps, iova + len - page_size, page_size);
		sync_and_compare(c, dom, &ps, "external: GET_RANGES shows "
				 "the client's mapping's pages");
	}
	pageset_free(&ps);

	r = dirty_unmap(c, dom, iova, len);
	check(r == -EINVAL, "%s: UNMAP without EXTERNAL of the client's "
	      "mapping is refused EINVAL (got %d: %s)", tag, r,
	      dirty_last_error_text(c));
	CHECK_RC(dirty_unmap_flags(c, dom, iova, len, DIRTY_MAP_EXTERNAL), 0,
		 huge ? "huge: UNMAP EXTERNAL" : "external: UNMAP EXTERNAL");
	CHECK_RC(dirty_sync(c, dom, NULL, NULL), 0, huge ?
		 "huge: SYNC after it left the plan" :
		 "external: SYNC after it left the plan");
out_unsub:
	dirty_unsubscribe(c, dom);
out_unmap:
	/* dirtyd left it mapped: the client's own unmap finds it there */
	r = client_ioas_unmap(fd, fds->ioas_id, iova, len);
	check(!r, "%s: the client's IOMMU_IOAS_UNMAP finds its mapping "
	      "still there (%d %s)", tag, r, r ? strerror(-r) : "");
out:
	dirty_fds_free(fds);
}

/* IOMMU_HWPT_GET_DIRTY_BITMAP through @iommufd; -errno. */
static int client_read_dirty(int iommufd, uint32_t hwpt, uint64_t iova,
			     uint64_t length, uint64_t *bitmap, uint32_t flags)
{
	struct iommu_hwpt_get_dirty_bitmap get = {
		.size = sizeof(get),
		.hwpt_id = hwpt,
		.flags = flags,
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.data = (uintptr_t)bitmap,
	};

	return ioctl(iommufd, IOMMU_HWPT_GET_DIRTY_BITMAP, &get) ? -errno : 0;
}

static int client_destroy(int iommufd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &d) ? -errno : 0;
}

/*
 * One context per domain: the iommufd GET_FDS hands out for domain @da
 * reaches @da's objects only.  Through it, domain @db's HWPT and IOAS ids
 * (which may also name objects of @da's context: ids belong to the file)
 * are read with clearing, unmapped and destroyed; @db's device then still
 * writes its mapping, and its subscriber gets exactly the pages written,
 * none lost.  Through @db's own descriptor the same read works.
 */
static void test_isolation(struct dirty *c, uint32_t da, uint32_t db)
{
	const uint64_t iova = 768 * MIB, len = 2 * MIB;
	uint64_t bits[2 * MIB / 512 / 64];
	struct dirty_fds *fa = NULL, *fb = NULL;
	struct pageset ps;
	int r;

	if (!check(!dirty_get_fds(c, da, &fa) && !dirty_get_fds(c, db, &fb),
		   "isolation: GET_FDS of both domains (%s)",
		   dirty_last_error_text(c)))
		goto out;
	info("isolation: domain %u has ioas %u hwpt %u, domain %u has ioas %u "
	     "hwpt %u, each in its own context", da, fa->ioas_id, fa->hwpt_id,
	     db, fb->ioas_id, fb->hwpt_id);
	CHECK_RC(dirty_map(c, db, iova, len, 0), 0, "isolation: MAP 2 MiB "
		 "in domain B");
	if (!check(!dirty_subscribe(c, db, 0, DIRTY_SUBSCRIBE_CLEAN, NULL),
		   "isolation: SUBSCRIBE to domain B (%s)",
		   dirty_last_error_text(c)))
		goto out_unmap;
	if (pageset_init(&ps, iova, len) < 0)
		goto out_unsub;
	CHECK_RC(dirty_dma_write(c, db, iova + 5 * page_size, 3 * page_size),
		 0, "isolation: domain B's device writes 3 pages");
	CHECK_RC(dirty_dma_write(c, db, iova + len - page_size, page_size), 0,
		 "isolation: and its last page");
	pageset_expect(&ps, iova + 5 * page_size, 3 * page_size);
	pageset_expect(&ps, iova + len - page_size, page_size);

	/* the other domain's descriptor, B's ids: nothing of B's */
	memset(bits, 0, sizeof(bits));
	r = client_read_dirty(fa->iommufd, fb->hwpt_id, iova, len, bits, 0);
	info("isolation: A's iommufd, clearing read of B's hwpt %u: %d %s",
	     fb->hwpt_id, r, r ? strerror(-r) : "");
	{
		unsigned int set = 0;

		for (size_t i = 0; i < sizeof(bits) / 8; i++)
			set += (unsigned int)__builtin_popcountll(bits[i]);
		check(!set, "isolation: A's descriptor reads no bit of B's "
		      "(%u set)", set);
	}
	r = client_ioas_unmap(fa->iommufd, fb->ioas_id, iova, len);
	check(r < 0, "isolation: A's iommufd cannot unmap B's mapping by B's "
	      "ioas id %u (%d %s)", fb->ioas_id, r, r ? strerror(-r) : "ok");
	r = client_destroy(fa->iommufd, fb->hwpt_id);
	check(r < 0, "isolation: A's iommufd cannot destroy B's hwpt %u (%d "
	      "%s)", fb->hwpt_id, r, r ? strerror(-r) : "ok");
	r = client_destroy(fa->iommufd, fb->ioas_id);
	check(r < 0, "isolation: A's iommufd cannot destroy B's ioas %u (%d "
	      "%s)", fb->ioas_id, r, r ? strerror(-r) : "ok");

	/* B is whole: its device still writes, its bits all arrive */
	CHECK_RC(dirty_dma_write(c, db, iova + 100 * page_size, page_size), 0,
		 "isolation: domain B's mapping is still there");
	pageset_expect(&ps, iova + 100 * page_size, page_size);
	sync_and_compare(c, db, &ps, "isolation: domain B's subscriber gets "
			 "every page written, none cleared through A's "
			 "descriptor");
	/* and B's own descriptor reaches B's HWPT */
	r = client_read_dirty(fb->iommufd, fb->hwpt_id, iova, len, bits,
			      IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	check(!r, "isolation: B's own iommufd reads B's hwpt %u (%d %s)",
	      fb->hwpt_id, r, r ? strerror(-r) : "");
	pageset_free(&ps);
out_unsub:
	dirty_unsubscribe(c, db);
out_unmap:
	CHECK_RC(dirty_unmap(c, db, iova, len), 0, "isolation: UNMAP");
out:
	dirty_fds_free(fa);
	dirty_fds_free(fb);
}

/* Several domains harvested in parallel, one client thread each. */
struct par {
	pthread_t thread;
	pthread_barrier_t *barrier;
	uint32_t dom;
	uint64_t iova, len;
	unsigned int seed;
	unsigned int rounds_ok;
	char why[200];
};

static void *par_run(void *arg)
{
	struct par *p = arg;
	struct dirty *c = NULL;
	struct pageset ps;
	int r;

	r = dirty_connect(dirtyd.sock, 0, &c);
	if (!r)
		r = dirty_subscribe(c, p->dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	if (!r)
		r = pageset_init(&ps, p->iova, p->len);
	pthread_barrier_wait(p->barrier);
	if (r) {
		snprintf(p->why, sizeof(p->why), "setup: %d %s", r,
			 c ? dirty_last_error_text(c) : "");
		goto out;
	}
	for (unsigned int round = 0; round < GD_ROUNDS; round++) {
		uint64_t np = p->len / page_size;

		pageset_reset(&ps);
		for (unsigned int k = 0; k < 16; k++) {
			uint64_t pg = rand_r(&p->seed) % np;
			uint64_t n = 1 + rand_r(&p->seed) % 4;

			if (pg + n > np)
				n = np - pg;
			r = dirty_dma_write(c, p->dom, p->iova + pg * page_size,
					    n * page_size);
			if (r < 0)
				break;
			pageset_expect(&ps, p->iova + pg * page_size,
				       n * page_size);
		}
		if (!r)
			r = dirty_sync(c, p->dom, NULL, NULL);
		if (!r)
			r = dirty_ranges(c, p->dom, DIRTY_RANGES_ACK,
					 pageset_add, &ps, NULL);
		if (r < 0) {
			snprintf(p->why, sizeof(p->why), "round %u: %d %s",
				 round, r, dirty_last_error_text(c));
			break;
		}
		if (!pageset_same(&ps, p->why, sizeof(p->why), NULL))
			break;
		p->rounds_ok++;
	}
	pageset_free(&ps);
out:
	dirty_close(c);
	return NULL;
}

static void test_parallel(struct dirty *c)
{
	static const char *const names[GD_PARALLEL] = {
		"mock3", "mock4", "mock5"
	};
	struct par par[GD_PARALLEL];
	pthread_barrier_t barrier;
	uint64_t t0;
	int r;

	pthread_barrier_init(&barrier, NULL, GD_PARALLEL);
	for (unsigned int i = 0; i < GD_PARALLEL; i++) {
		par[i] = (struct par){
			.barrier = &barrier,
			.iova = (128 + 64 * (uint64_t)i) * MIB,
			.len = 16 * MIB,
			.seed = 1 + i,
		};
		r = dirty_domain_create(c, names[i], DIRTY_CREATE_TRACKING,
					&par[i].dom, NULL);
		if (!r)
			r = dirty_map(c, par[i].dom, par[i].iova, par[i].len,
				      0);
		if (!r)
			r = dirty_track_start(c, par[i].dom);
		if (!check(!r, "parallel: domain %u on %s, 16 MiB mapped, "
			   "tracking (%d %s)", par[i].dom, names[i], r,
			   r ? dirty_last_error_text(c) : ""))
			return;
	}
	t0 = now_ms();
	for (unsigned int i = 0; i < GD_PARALLEL; i++)
		pthread_create(&par[i].thread, NULL, par_run, &par[i]);
	for (unsigned int i = 0; i < GD_PARALLEL; i++)
		pthread_join(par[i].thread, NULL);
	info("parallel: %d clients x %d rounds in %" PRIu64 " ms",
	     GD_PARALLEL, GD_ROUNDS, now_ms() - t0);
	for (unsigned int i = 0; i < GD_PARALLEL; i++)
		check(par[i].rounds_ok == GD_ROUNDS, "parallel: domain %u: "
		      "%u of %d rounds harvested exactly what its client "
		      "wrote%s%s", par[i].dom, par[i].rounds_ok, GD_ROUNDS,
		      par[i].rounds_ok == GD_ROUNDS ? "" : ": ",
		      par[i].rounds_ok == GD_ROUNDS ? "" : par[i].why);
	for (unsigned int i = 0; i < GD_PARALLEL; i++)
		dirty_domain_destroy(c, par[i].dom);
	pthread_barrier_destroy(&barrier);
}

int main(int argc, char **argv)
{
	struct dirty *c = NULL;
	uint32_t dom, hdom = 0;
	int r, ws;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: vm_guest_daemon /path/to/dirtyd\n");
		return 2;
	}
	page_size = (uint64_t)sysconf(_SC_PAGESIZE) / 2;

	r = daemon_start(argv[1]);
	if (!check(!r, "dirtyd (iommufd backend, device_provider = mock) "
		   "started and sent READY=1 (%d %s)", r,
		   r ? strerror(-r) : "")) {
		daemon_stop();
		daemon_dump_log();
		harness_fini(&dirtyd);
		return 1;
	}
	daemon_check_engine();
	r = dirty_connect(dirtyd.sock, 0, &c);
	if (!check(!r, "connect and HELLO (%d %s)", r, r ? strerror(-r) : ""))
		goto out;

	test_devices(c);
	dom = test_refusals(c);
	if (dom) {
		test_tracking(c, dom);
		test_external(c, dom, false);
	}
	r = dirty_domain_create(c, "mock2:huge", DIRTY_CREATE_TRACKING,
				&hdom, NULL);
	if (check(!r, "CREATE_DOMAIN with tracking on mock2:huge (%d %s)", r,
		  r ? dirty_last_error_text(c) : ""))
		test_external(c, hdom, true);
	if (dom && hdom)
		test_isolation(c, hdom, dom);
	test_parallel(c);
	if (dom)
		CHECK_RC(dirty_domain_destroy(c, dom), 0,
			 "DESTROY_DOMAIN of the mock0 domain");
	if (hdom)
		CHECK_RC(dirty_domain_destroy(c, hdom), 0,
			 "DESTROY_DOMAIN of the mock2:huge domain");
out:
	dirty_close(c);
	ws = daemon_stop();
	check(ws == 0, "dirtyd exits 0 on SIGTERM (wait status %d)", ws);
	printf("%u checks, %u failed\n", n_checks, n_failed);
	if (n_failed)
		daemon_dump_log();
	harness_fini(&dirtyd);
	return n_failed ? 1 : 0;
}
