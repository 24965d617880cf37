// SPDX-License-Identifier: MIT
/*
 * vm_guest_adopt - adoption on the real kernel (docs/ADOPTION.md,
 * PROTOCOL.md 6.18 to 6.20): a test VMM adopts a domain of the real dirtyd
 * (iommufd backend, the kernel's mock IOMMU devices), maps its own memory
 * into the IOAS, declares it, has the mock device write into it and
 * receives exactly the written pages; a declaration of an unmapped range
 * is refused; then dirtyd is killed and started WITHOUT its store
 * (tests/harness plays systemd and drops what it stored), the VMM's
 * resume gets STATE_LOST, it hands its iommufd back (READOPT; every
 * malformed READOPT first, each refused with nothing built), and the
 * pages written while dirtyd was down, and those it had not harvested
 * yet, are all delivered, exactly.  Last, a VMM dies while dirtyd runs:
 * after resume_grace its lease ends and its range leaves the plan and the
 * IOAS, its device's last pages still delivered.
 *
 *   vm_guest_adopt /bin/dirtyd
 *
 * Mock geometry as in guest_daemon.c: 2 KiB IO pages.  The kernel's
 * behaviour across holes (kernel/sim/kernel.h, SIM_KB_WALK_ERRORS: a read
 * across a hole is EINVAL from 6.12.118, 0 before) decides what a
 * declaration of an unmapped range gets.  Prints one line per check,
 * exits 1 if any failed (then dirtyd's log follows).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirtyd/dirty.h>
#include <iommufd_test.h>

#include "kernel/uapi/iommufd.h"

#include "kernel/sim/kernel.h"
#include "tests/vm/guest_check.h"
#include "tests/vm/guest_dirtyd.h"

#define GA_IOVA (512 * MIB)	/* the VMM's mapping */
#define GA_LEN (2 * MIB)
#define GA_HOLE (768 * MIB)	/* never mapped */

static uint64_t page_size;	/* the mock IO page */
static uint64_t npages;
static bool holes_refused;	/* the kernel refuses reads across holes */
static struct harness sm;

#define CHECK_RC(expr, want, what) ({					\
	int rc_ = (expr);						\
	check(rc_ == (want), "%s (got %d %s, want %d)", what, rc_,	\
	      rc_ ? strerror(-rc_) : "", (want));			\
})

/* One byte per page of the VMM's mapping. */
struct pages {
	uint8_t p[GA_LEN / 2048];
	uint64_t outside;
};

static void pages_set(struct pages *s, uint64_t iova, uint64_t len)
{
	for (uint64_t a = iova; a < iova + len; a += page_size)
		s->p[(a - GA_IOVA) / page_size] = 1;
}

static int pages_add(void *ctx, uint64_t first, uint64_t count)
{
	struct pages *s = ctx;

	for (uint64_t pg = first; pg < first + count; pg++) {
		uint64_t iova = pg * page_size;

		if (iova < GA_IOVA || iova >= GA_IOVA + GA_LEN)
			s->outside++;
		else
			s->p[(iova - GA_IOVA) / page_size] = 1;
	}
	return 0;
}

/* SYNC, GET_RANGES with ACK: exactly @want? */
static void round_exact(struct dirty *c, uint32_t dom, const struct pages *want,
			const char *what)
{
	static struct pages got;
	uint64_t ng = 0, nw = 0, diff = 0;
	int r;

	memset(&got, 0, sizeof(got));
	r = dirty_sync(c, dom, NULL, NULL);
	if (!check(!r, "%s: SYNC (%d %s)", what, r,
		   r ? dirty_last_error_text(c) : ""))
		return;
	r = dirty_ranges(c, dom, DIRTY_RANGES_ACK, pages_add, &got, NULL);
	if (!check(!r, "%s: GET_RANGES (%d %s)", what, r,
		   r ? dirty_last_error_text(c) : ""))
		return;
	for (uint64_t i = 0; i < npages; i++) {
		ng += got.p[i];
		nw += want->p[i];
		diff += got.p[i] != want->p[i];
	}
	check(!diff && !got.outside, "%s: %" PRIu64 " pages reported, %"
	      PRIu64 " written, %" PRIu64 " differ, %" PRIu64 " outside",
	      what, ng, nw, diff, got.outside);
}

/* The mock device writes [@iova, +@len) as dirtyd's DMA_WRITE would
 * (mock.c), through the VMM's own iommufd: dirtyd need not run. */
static int vmm_dma_write(int iommufd, uint32_t hwpt, uint64_t iova,
			 uint64_t len)
{
	uint64_t n = len / page_size, bitmap[64] = { 0 };
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt,
		.dirty = {
			.iova = iova,
			.length = len,
			.page_size = page_size,
			.uptr = (uintptr_t)bitmap,
		},
	};

	if (n > 64 * 64)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++)
		bitmap[i / 64] |= 1ULL << (i % 64);
	if (ioctl(iommufd, IOMMU_TEST_CMD, &cmd))
		return -errno;
	return cmd.dirty.out_nr_dirty == n ? 0 : -ENOENT;
}

/* A READOPT of the adoption @a, with @iommufd, device @dev_id (a
 * descriptor @dev_fd, -1 none), IOAS, HWPT and one range. */
static int readopt(struct dirty *c, const struct dirty_adoption *a,
		   int iommufd, uint32_t dev_id, int dev_fd, uint32_t ioas,
		   uint32_t hwpt, uint64_t iova, uint64_t len, uint32_t *dom)
{
	struct dirty_readopt_device dev = { .size = sizeof(dev),
					    .dev_id = dev_id, .fd = dev_fd };
	struct dirty_iova_range rg = { .size = sizeof(rg), .iova = iova,
				       .length = len };
	const struct dirty_readopt_device *devs[] = { &dev };
	const struct dirty_iova_range *rgs[] = { &rg };
	struct dirty_readopt r = {
		.size = sizeof(r),
		.create_flags = DIRTY_CREATE_TRACKING,
		.ioas_id = ioas,
		.hwpt_id = hwpt,
		.lease = a->lease,
		.iommufd = iommufd,
		.n_devices = 1,
		.devices = devs,
		.n_ranges = 1,
		.ranges = rgs,
	};

	snprintf(dev.name, sizeof(dev.name), "%s", a->devices[0]->name);
	*dom = 0;
	return dirty_readopt(c, &r, dom);
}

static size_t ndomains(struct dirty *c)
{
	struct dirty_domain **list = NULL;
	size_t n = 0;

	if (dirty_list_domains(c, &list, &n) < 0)
		n = (size_t)-1;
	free(list);
	return n;
}

/* Each malformed READOPT on the real kernel: refused, nothing built. */
static void readopt_refusals(struct dirty *c, const struct dirty_adoption *a)
{
	uint32_t dev = a->devices[0]->dev_id, nd;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), r;

	r = readopt(c, a, null, dev, -1, a->ioas_id, a->hwpt_id, GA_IOVA,
		    GA_LEN, &nd);
	check(r == -EBADF && strstr(dirty_last_error_text(c), "not "
				    "/dev/iommu"), "READOPT with /dev/null "
	      "as the iommufd: EBADF (%d: %s)", r, dirty_last_error_text(c));
	r = readopt(c, a, a->iommufd, dev, null, a->ioas_id, a->hwpt_id,
		    GA_IOVA, GA_LEN, &nd);
	check(r == -EBADF, "READOPT with a descriptor for a mock device "
	      "(which has none): EBADF (%d: %s)", r, dirty_last_error_text(c));
	r = readopt(c, a, a->iommufd, dev + 100, -1, a->ioas_id, a->hwpt_id,
		    GA_IOVA, GA_LEN, &nd);
	check(r == -ENOENT && strstr(dirty_last_error_text(c),
				     "IOMMU_GET_HW_INFO"),
	      "READOPT of a dev_id the iommufd does not have: ENOENT (%d: "
	      "%s)", r, dirty_last_error_text(c));
	r = readopt(c, a, a->iommufd, dev, -1, a->ioas_id + 100, a->hwpt_id,
		    GA_IOVA, GA_LEN, &nd);
	check(r == -ENOENT, "READOPT of an IOAS the iommufd does not have: "
	      "ENOENT (%d: %s)", r, dirty_last_error_text(c));
	r = readopt(c, a, a->iommufd, dev, -1, a->ioas_id, a->hwpt_id + 100,
		    GA_IOVA, GA_LEN, &nd);
	check(r == -ENOENT, "READOPT of a HWPT the iommufd does not have: "
	      "ENOENT (%d: %s)", r, dirty_last_error_text(c));
	r = readopt(c, a, a->iommufd, dev, -1, a->ioas_id, a->hwpt_id,
		    GA_IOVA + page_size / 2, GA_LEN, &nd);
	check(r == -EINVAL, "READOPT of a range off the page size: EINVAL "
	      "(%d: %s)", r, dirty_last_error_text(c));
	if (holes_refused) {
		r = readopt(c, a, a->iommufd, dev, -1, a->ioas_id, a->hwpt_id,
			    GA_HOLE, MIB, &nd);
		check(r == -EINVAL && strstr(dirty_last_error_text(c),
					     "not wholly mapped"),
		      "READOPT of a range the VMM never mapped: EINVAL (%d: %s)",
		      r, dirty_last_error_text(c));
		r = readopt(c, a, a->iommufd, dev, -1, a->ioas_id, a->hwpt_id,
			    GA_IOVA, GA_LEN + MIB, &nd);
		check(r == -EINVAL, "READOPT of a range mapped only in part: "
		      "EINVAL (%d: %s)", r, dirty_last_error_text(c));
	} else {
		info("this kernel reads holes as clean: a range never mapped "
		     "cannot be told from a mapped one (not tried)");
	}
	check(ndomains(c) == 0, "after every refusal no domain exists");
	close(null);
}

/* The dead VMM: adopts, maps and declares GA_LEN at GA_IOVA, has the
 * device write 4 pages, tells the parent, exits without unmapping. */
static void orphan_child(const char *sock, uint32_t dom, int ready)
{
	struct dirty_adoption *a = NULL;
	struct dirty *c = NULL;
	void *mem = mem_alloc(GA_LEN, false, true);
	char ok = 0;

	if (mem && !dirty_connect(sock, 0, &c) && !dirty_adopt(c, dom, &a) &&
	    !dirty_ioas_map(c, dom, a->iommufd, a->ioas_id, mem, GA_IOVA,
			    GA_LEN, 0) &&
	    !dirty_dma_write(c, dom, GA_IOVA + 20 * page_size, 4 * page_size))
		ok = 1;
	if (write(ready, &ok, 1) != 1)
		_exit(1);
	_exit(0);	/* no UNADOPT, no unmap: a crash */
}

/*
 * A VMM dies while dirtyd runs: after resume_grace (1 s here) its lease
 * ends, its range leaves the plan and the IOAS (its pinned memory is let
 * go), and what its device wrote still reaches the subscriber.
 */
static void test_orphan(const char *bin)
{
	struct harness h = { 0 };
	struct dirty *c = NULL;
	struct dirty_fds *fds = NULL;
	struct dirty_domain **list = NULL;
	struct iommu_ioas_unmap un = { .size = sizeof(un), .iova = GA_IOVA,
				       .length = GA_LEN };
	struct pages want;
	uint32_t dom = 0;
	size_t n = 0;
	int p[2], r, ws;
	char ok = 0;
	pid_t pid;

	memset(&want, 0, sizeof(want));
	r = guest_dirtyd_init(&h, bin, "resume_grace = 1\n", false);
	if (!r)
		r = harness_start(&h);
	if (!check(!r, "orphan: dirtyd with resume_grace = 1 (%d)", r))
		goto out;
	if (!check(!dirty_connect(h.sock, 0, &c) &&
		   !dirty_domain_create(c, "mock0", DIRTY_CREATE_TRACKING, &dom,
					NULL) &&
		   !dirty_track_start(c, dom) &&
		   !dirty_subscribe(c, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL),
		   "orphan: a tracking domain on mock0, a CLEAN subscriber"))
		goto out;
	if (pipe(p))
		goto out;
	pid = fork();
	if (pid == 0)
		orphan_child(h.sock, dom, p[1]);
	close(p[1]);
	r = (int)read(p[0], &ok, 1);
	close(p[0]);
	waitpid(pid, &ws, 0);
	if (!check(r == 1 && ok && WIFEXITED(ws) && !WEXITSTATUS(ws),
		   "orphan: a VMM adopted, mapped and declared 2 MiB, had 4 "
		   "pages written, and exited without unmapping"))
		goto out;
	for (int i = 0; i < 100; i++) {
		free(list);
		list = NULL;
		if (dirty_list_domains(c, &list, &n) || n != 1 ||
		    !list[0]->mapped_bytes)
			break;
		usleep(50 * 1000);
	}
	check(n == 1 && list && list[0]->mapped_bytes == 0,
	      "orphan: within 5 s its range left dirtyd's plan");
	check(harness_log_has(&h, "did not come back within resume_grace: "
			      "its 1 EXTERNAL ranges (0x200000 bytes) are "
			      "unmapped", true), "orphan: dirtyd says so (notice)");
	pages_set(&want, GA_IOVA + 20 * page_size, 4 * page_size);
	round_exact(c, dom, &want, "orphan: the dead VMM's device's 4 pages "
		    "still reach the subscriber");
	r = dirty_get_fds(c, dom, &fds);
	if (check(!r, "orphan: GET_FDS (%d)", r)) {
		un.ioas_id = fds->ioas_id;
		r = ioctl(fds->iommufd, IOMMU_IOAS_UNMAP, &un) ? -errno : 0;
		check(r == -ENOENT, "orphan: dirtyd unmapped it from the IOAS "
		      "too (IOMMU_IOAS_UNMAP finds nothing: %d)", r);
	}
	CHECK_RC(dirty_domain_destroy(c, dom), 0,
		 "orphan: no lease left: DESTROY_DOMAIN");
out:
	free(list);
	dirty_fds_free(fds);
	dirty_close(c);
	if (h.inited && n_failed)
		harness_dump_log(&h, stdout, 0, "dirtyd: ");
	ws = harness_fini(&h);
	check(ws == 0, "orphan: dirtyd exits 0 (%d)", ws);
}

int main(int argc, char **argv)
{
	static struct pages want;
	struct dirty_adoption *a = NULL;
	struct dirty_session s = { .size = sizeof(s) };
	struct sim_kernel k;
	struct utsname uts;
	struct stat st;
	struct dirty *c = NULL;
	uint32_t dom = 0, dom2 = 0, dev_id = 0;
	uint64_t token;
	void *mem;
	int r, ws;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 2) {
		fprintf(stderr, "usage: vm_guest_adopt /path/to/dirtyd\n");
		return 2;
	}
	page_size = (uint64_t)sysconf(_SC_PAGESIZE) / 2;
	npages = GA_LEN / page_size;
	uname(&uts);
	if (!check(sim_kernel_lookup(uts.release, &k) == 0,
		   "kernel/sim/kernel.h knows %s", uts.release))
		return 1;
	holes_refused = sim_kernel_has(&k, SIM_KB_WALK_ERRORS);
	info("kernel %s: a dirty read across a hole is %s", uts.release,
	     holes_refused ? "EINVAL" : "0 (read as clean)");

	r = guest_dirtyd_init(&sm, argv[1], "resume_grace = 30\n", true);
	if (!r)
		r = harness_start(&sm);
	if (!check(!r, "dirtyd (iommufd, mock devices) started (%d %s)", r,
		   r ? strerror(-r) : ""))
		goto out;
	r = dirty_connect(sm.sock, 0, &c);
	if (!check(!r, "connect and HELLO (%d)", r))
		goto out;
	r = dirty_domain_create(c, "mock0", DIRTY_CREATE_TRACKING, &dom,
				&dev_id);
	if (!check(!r, "CREATE_DOMAIN with tracking on mock0 (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	CHECK_RC(dirty_track_start(c, dom), 0, "TRACK_START");

	/* ADOPT */
	r = dirty_adopt(c, dom, &a);
	if (!check(!r, "ADOPT (%d %s)", r, r ? dirty_last_error_text(c) : ""))
		goto out;
	check(a->iommufd >= 0 && !fstat(a->iommufd, &st) &&
	      S_ISCHR(st.st_mode) && fcntl(a->iommufd, F_GETFD) & FD_CLOEXEC,
	      "ADOPT: the iommufd came over SCM_RIGHTS (close-on-exec)");
	check(a->n_devices == 1 && a->devices[0]->dev_id == dev_id &&
	      a->devices[0]->fd == -1 &&
	      !strcmp(a->devices[0]->name, "mock0") &&
	      a->devices[0]->flags == (DIRTY_ADOPT_DEV_BOUND |
				       DIRTY_ADOPT_DEV_ATTACHED),
	      "ADOPT: device mock0, dev_id %u, no descriptor (a mock device)",
	      dev_id);
	check(a->ioas_id && a->hwpt_id && a->page_size == page_size &&
	      a->lease && a->status == (DIRTY_DOMAIN_SUPPORTED |
					DIRTY_DOMAIN_ENABLED),
	      "ADOPT: ioas %u, hwpt %u, page size %" PRIu64 ", tracking on, "
	      "lease %#" PRIx64, a->ioas_id, a->hwpt_id, a->page_size,
	      a->lease);
	check(!(a->flags & DIRTY_ADOPT_NO_IOMMUFD) &&
	      !!(a->flags & DIRTY_ADOPT_VERIFIES_EXTERNAL) == holes_refused,
	      "ADOPT: VERIFIES_EXTERNAL is %s, as this kernel reads holes "
	      "(flags %#x)", holes_refused ? "set" : "clear", a->flags);
	r = dirty_domain_destroy(c, dom);
	check(r == -EBUSY && strstr(dirty_last_error_text(c), "UNADOPT first"),
	      "DESTROY_DOMAIN while adopted: EBUSY (%d: %s)", r,
	      dirty_last_error_text(c));
	r = dirty_domain_detach(c, dom, "mock0");
	check(r == -EBUSY, "DETACH_DEVICE while adopted: EBUSY (%d: %s)", r,
	      dirty_last_error_text(c));

	/* the VMM maps its own memory and declares it */
	mem = mem_alloc(GA_LEN, false, true);
	if (!check(mem, "2 MiB of the VMM's memory"))
		goto out;
	r = dirty_ioas_map(c, dom, a->iommufd, a->ioas_id, mem, GA_IOVA,
			   GA_LEN, 0);
	if (!check(!r, "dirty_ioas_map(): IOMMU_IOAS_MAP of 2 MiB at 0x%llx "
		   "and MAP EXTERNAL (%d %s)", (unsigned long long)GA_IOVA, r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	r = dirty_map(c, dom, GA_HOLE, MIB, DIRTY_MAP_EXTERNAL);
	if (holes_refused) {
		check(r == -EINVAL && strstr(dirty_last_error_text(c),
					     "not wholly mapped"),
		      "MAP EXTERNAL of a range the VMM never mapped: EINVAL "
		      "(%d: %s)", r, dirty_last_error_text(c));
		r = dirty_map(c, dom, GA_IOVA + GA_LEN - MIB, 2 * MIB,
			      DIRTY_MAP_EXTERNAL);
		check(r == -EEXIST, "MAP EXTERNAL over the declared range: "
		      "EEXIST (%d)", r);
	} else {
		check(r == 0, "MAP EXTERNAL of an unmapped range: this kernel "
		      "reads holes as clean, dirtyd cannot tell (%d %s)", r,
		      r ? dirty_last_error_text(c) : "");
		if (!r)
			CHECK_RC(dirty_unmap_flags(c, dom, GA_HOLE, MIB,
						   DIRTY_MAP_EXTERNAL), 0,
				 "UNMAP EXTERNAL of it");
	}
	r = dirty_ioas_map(c, dom, a->iommufd, a->ioas_id, mem, GA_IOVA,
			   GA_LEN, 0);
	check(r == -EEXIST, "dirty_ioas_map() over the same IOVAs: the "
	      "kernel's EEXIST, nothing declared (%d)", r);
	r = dirty_subscribe(c, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	if (!check(!r, "SUBSCRIBE CLEAN (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;

	/* the mock device writes into the VMM's memory */
	CHECK_RC(dirty_dma_write(c, dom, GA_IOVA + 9 * page_size,
				 3 * page_size), 0, "DMA_WRITE 3 pages");
	CHECK_RC(dirty_dma_write(c, dom, GA_IOVA + GA_LEN - page_size,
				 page_size), 0, "DMA_WRITE the last page");
	pages_set(&want, GA_IOVA + 9 * page_size, 3 * page_size);
	pages_set(&want, GA_IOVA + GA_LEN - page_size, page_size);
	round_exact(c, dom, &want, "the VMM receives exactly the pages "
		    "written into its mapping");

	/* written, not harvested: still in the IOPTEs at the kill */
	memset(&want, 0, sizeof(want));
	CHECK_RC(dirty_dma_write(c, dom, GA_IOVA + 100 * page_size,
				 5 * page_size), 0,
		 "DMA_WRITE 5 pages dirtyd does not harvest before its death");
	pages_set(&want, GA_IOVA + 100 * page_size, 5 * page_size);

	/* dirtyd dies; started again WITHOUT the store */
	ws = harness_kill(&sm, SIGKILL);
	check(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "SIGKILL (wait "
	      "status %#x)", ws);
	harness_flush(&sm);
	CHECK_RC(vmm_dma_write(a->iommufd, a->hwpt_id,
			       GA_IOVA + 300 * page_size, 7 * page_size), 0,
		 "while dirtyd is down the device writes 7 pages (the VMM's "
		 "iommufd keeps the HWPT tracking)");
	pages_set(&want, GA_IOVA + 300 * page_size, 7 * page_size);
	CHECK_RC(vmm_dma_write(a->iommufd, a->hwpt_id, GA_IOVA, page_size), 0,
		 "and the first page");
	pages_set(&want, GA_IOVA, page_size);
	r = harness_start(&sm);
	if (!check(!r && sm.passed == 1, "dirtyd started with the socket only, "
		   "no store (%d, %zu passed)", r, sm.passed))
		goto out;
	token = dirty_session_token(c);
	r = dirty_reconnect(c);
	if (!check(!r, "the VMM reconnects with its token (%d)", r))
		goto out;
	r = dirty_session(c, &s);
	check(!r && s.flags == DIRTY_SESSION_STATE_LOST && s.token != token,
	      "the subscription is gone: STATE_LOST (flags %#x)", s.flags);
	CHECK_RC(dirty_unsubscribe(c, dom), -ENOENT, "the old domain is gone");
	check(ndomains(c) == 0, "the fresh dirtyd has no domain");

	readopt_refusals(c, a);
	r = readopt(c, a, a->iommufd, a->devices[0]->dev_id, -1, a->ioas_id,
		    a->hwpt_id, GA_IOVA, GA_LEN, &dom2);
	if (!check(!r && dom2, "READOPT with the VMM's iommufd, mock0 and its "
		   "range: domain %u (%d %s)", dom2, r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	{
		struct dirty_domain **list = NULL;
		size_t n = 0;

		r = dirty_list_domains(c, &list, &n);
		check(!r && n == 1 && list[0]->domain_id == dom2 &&
		      list[0]->status == (DIRTY_DOMAIN_SUPPORTED |
					 DIRTY_DOMAIN_ENABLED) &&
		      list[0]->mapped_bytes == GA_LEN,
		      "LIST_DOMAINS: the readopted domain, tracking on (the "
		      "probe saw it), its 2 MiB");
		free(list);
	}
	r = dirty_subscribe(c, dom2, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	check(!r, "SUBSCRIBE CLEAN to it (%d %s)", r,
	      r ? dirty_last_error_text(c) : "");
	round_exact(c, dom2, &want, "every page written while dirtyd was "
		    "down, and those it had not harvested, are delivered");
	memset(&want, 0, sizeof(want));
	CHECK_RC(dirty_dma_write(c, dom2, GA_IOVA + 40 * page_size,
				 2 * page_size), 0,
		 "DMA_WRITE through the readopted domain's device");
	pages_set(&want, GA_IOVA + 40 * page_size, 2 * page_size);
	round_exact(c, dom2, &want, "and its pages are reported exactly");
	r = dirty_domain_destroy(c, dom2);
	check(r == -EBUSY, "the readopted domain is adopted: DESTROY_DOMAIN "
	      "EBUSY (%d)", r);
	CHECK_RC(dirty_ioas_unmap(c, dom2, a->iommufd, a->ioas_id, GA_IOVA,
				  GA_LEN), 0,
		 "dirty_ioas_unmap(): UNMAP EXTERNAL, then IOMMU_IOAS_UNMAP");
	CHECK_RC(dirty_unadopt(c, dom2), 0, "UNADOPT");
	CHECK_RC(dirty_domain_destroy(c, dom2), 0, "DESTROY_DOMAIN");
	dirty_close(c);
	c = NULL;
	ws = harness_stop(&sm);
	check(ws == 0, "dirtyd exits 0 on SIGTERM (wait status %d)", ws);
	test_orphan(argv[1]);
out:
	dirty_close(c);
	dirty_adoption_free(a);
	if (sm.pid)
		harness_kill(&sm, SIGKILL);
	printf("%u checks, %u failed\n", n_checks, n_failed);
	if (n_failed)
		harness_dump_log(&sm, stdout, 0, "dirtyd: ");
	harness_fini(&sm);
	return n_failed ? 1 : 0;
}
