// SPDX-License-Identifier: MIT
/*
 * vm_guest_restart - the real dirtyd on the iommufd backend with the
 * kernel's mock IOMMU devices, killed with SIGKILL and started again
 * through systemd's file descriptor store, run by /init in the VM tests'
 * guest (tests/vm/run.sh).
 *
 *   vm_guest_restart /bin/dirtyd
 *
 * The program plays the service manager through tests/harness, as the
 * integration tests do on the simulated host (sd_notify(3),
 * sd_listen_fds(3), systemd.service(5) FileDescriptorStoreMax=): the
 * listening AF_UNIX SOCK_SEQPACKET socket, created once and passed at
 * every start as fd 3 named "dirtyd.socket"; a $NOTIFY_SOCKET read by a
 * thread (READY=1, FDSTORE=1 + FDNAME= with SCM_RIGHTS, FDSTOREREMOVE=1);
 * the stored descriptors passed after the socket, in the order stored,
 * with $LISTEN_FDS, $LISTEN_PID and $LISTEN_FDNAMES.
 *
 * Scenario (dirtyd(8) "Restarts"): a tracking domain on mock0, a client
 * with a resume token; an acknowledged round (W0), a generation taken and
 * not acknowledged (W1), pages harvested and pending (W2), pages written
 * after and still in the IOMMU's dirty bits (W3); SIGKILL; a start with
 * the stored descriptors: dirtyd adopts the kernel context, the client
 * resumes (PROTO_SESSION_RESUMED) and gets at least W1 + W2 + W3 and
 * nothing that was never written; new writes (W4) work (the HWPT still
 * tracks).  Then the same on a new domain with a stop (SIGTERM: STOPPING=1,
 * exit 0) instead of the kill, the store kept (systemd 254+'s restart):
 * the stop destroyed nothing, the kernel context with its mappings and
 * dirty bits is adopted, nothing is lost.  Then a stop whose store is
 * emptied (systemd 252): while the test holds the domain's descriptors
 * (GET_FDS, as a VMM) its pages stay pinned; once it closes them no
 * process holds /dev/iommu and every page the domains pinned is unpinned
 * (/proc/vmstat nr_foll_pin_acquired - nr_foll_pin_released back to what
 * it was before dirtyd started: the kernel freed everything, dirtyd
 * leaked nothing); a start without the store: the resume gets
 * PROTO_SESSION_STATE_LOST.
 *
 * Mock geometry as in guest_daemon.c: 2 KiB IO pages.  Prints one line
 * per check ("ok N - ..." / "not ok N - ...: why"), exits 1 if any check
 * failed (then dirtyd's log follows, "dirtyd: ..." lines).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "tests/vm/guest_check.h"
#include "tests/vm/guest_dirtyd.h"


#define GR_BASE (16 * MIB)	/* the mapping */
#define GR_LEN (4 * MIB)

static uint64_t page_size;	/* the mock IO page: what domains report */
static uint64_t npages;		/* GR_LEN / page_size */

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

/* ------------------------------------------------- the service manager */

static struct harness sm;

/* The socket unit, the notify socket and its reader, the store on;
 * resume_grace: the default (30 s). */
static int sm_init(const char *bin)
{
	return guest_dirtyd_init(&sm, bin, "", true);
}

/* Start dirtyd with the socket and the stored descriptors; wait for
 * READY=1.  *@npassed: descriptors passed. */
static int sm_start(size_t *npassed)
{
	int r = harness_start(&sm);

	*npassed = sm.passed;
	if (r == -ECHILD)
		info("dirtyd exited at start (wait status %#x)", sm.wstatus);
	return r;
}

/* Pages pinned (FOLL_PIN) and not yet unpinned, system-wide: what
 * IOMMU_IOAS_MAP holds; -1 if /proc/vmstat does not say.  The per-CPU
 * deltas are folded first (vm/stat_refresh), so the count is exact. */
static int64_t pins_held(void)
{
	long long acquired = -1, released = -1, v;
	char key[64];
	FILE *f = fopen("/proc/sys/vm/stat_refresh", "we");

	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2) {
		if (!strcmp(key, "nr_foll_pin_acquired"))
			acquired = v;
		else if (!strcmp(key, "nr_foll_pin_released"))
			released = v;
	}
	fclose(f);
	return acquired < 0 || released < 0 ? -1 : acquired - released;
}

/* Descriptors of /dev/iommu open in any process. */
static unsigned int iommu_files(void)
{
	char path[300], link[64], fdpath[600];
	unsigned int n = 0;
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *p, *e;

	if (!proc)
		return 0;
	while ((p = readdir(proc))) {
		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((e = readdir(fds))) {
			ssize_t len;

			snprintf(fdpath, sizeof(fdpath), "%s/%s", path,
				 e->d_name);
			len = readlink(fdpath, link, sizeof(link) - 1);
			if (len <= 0)
				continue;
			link[len] = '\0';
			n += !strcmp(link, "/dev/iommu");
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}

/* ------------------------------------------------------------- pages */

/* One byte per page of the mapping. */
struct pages {
	uint8_t *p;
	uint64_t outside;	/* pages reported outside the mapping */
};

static int pages_init(struct pages *s)
{
	s->p = calloc(npages, 1);
	s->outside = 0;
	return s->p ? 0 : -ENOMEM;
}

static void pages_clear(struct pages *s)
{
	memset(s->p, 0, npages);
	s->outside = 0;
}

static uint64_t pages_count(const struct pages *s)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < npages; i++)
		n += s->p[i];
	return n + s->outside;
}

static int pages_add(void *ctx, uint64_t first, uint64_t count)
{
	struct pages *s = ctx;
	uint64_t base = GR_BASE / page_size;

	for (uint64_t pg = first; pg < first + count; pg++) {
		if (pg < base || pg >= base + npages)
			s->outside++;
		else
			s->p[pg - base] = 1;
	}
	return 0;
}

/*
 * @n DMA_WRITEs of 1 to 3 pages at pseudo-random places, through dirtyd
 * (the mock device's DMA); recorded in @w and @ever.  0 or the first
 * error.
 */
static int write_pages(struct dirty *c, uint32_t dom, unsigned int *seed,
		       unsigned int n, struct pages *w, struct pages *ever)
{
	for (unsigned int k = 0; k < n; k++) {
		uint64_t pg = rand_r(seed) % npages;
		uint64_t cnt = 1 + rand_r(seed) % 3;
		int r;

		if (pg + cnt > npages)
			cnt = npages - pg;
		r = dirty_dma_write(c, dom, GR_BASE + pg * page_size,
				    cnt * page_size);
		if (r < 0)
			return r;
		for (uint64_t i = pg; i < pg + cnt; i++) {
			w->p[i] = 1;
			ever->p[i] = 1;
		}
	}
	return 0;
}

/* Is @got exactly @want?  The first difference in @why. */
static bool pages_same(const struct pages *got, const struct pages *want,
		       char *why, size_t len)
{
	if (got->outside) {
		snprintf(why, len, "%" PRIu64 " pages outside the mapping",
			 got->outside);
		return false;
	}
	for (uint64_t i = 0; i < npages; i++)
		if (got->p[i] != want->p[i]) {
			snprintf(why, len, "page %" PRIu64 " of the mapping "
				 "%s", i, want->p[i] ? "missing" :
				 "unexpected");
			return false;
		}
	snprintf(why, len, "%" PRIu64 " pages, as expected",
		 pages_count(want));
	return true;
}

/* ------------------------------------------------------------- tests */

static const struct dirty_domain *find_domain(struct dirty_domain *const *l,
					      size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (l[i]->domain_id == id)
			return l[i];
	return NULL;
}

/* SYNC, then GET_RANGES with ACK; exactly @want?  One check. */
static bool round_exact(struct dirty *c, uint32_t dom, struct pages *got,
			const struct pages *want, const char *what)
{
	char why[160];
	int r;

	pages_clear(got);
	r = dirty_sync(c, dom, NULL, NULL);
	if (r < 0)
		return check(false, "%s: SYNC failed: %d %s (%s)", what, r,
			     strerror(-r), dirty_last_error_text(c));
	r = dirty_ranges(c, dom, DIRTY_RANGES_ACK, pages_add, got, NULL);
	if (r < 0)
		return check(false, "%s: GET_RANGES failed: %d %s (%s)", what,
			     r, strerror(-r), dirty_last_error_text(c));
	return check(pages_same(got, want, why, sizeof(why)), "%s: %s", what,
		     why);
}

struct before {
	struct dirty_domain dom;
	uint32_t ioas_id, hwpt_id;
	uint64_t token;
	uint64_t gen_inflight;
};

/* Up to the kill: W0 acknowledged, W1 in flight, W2 harvested and
 * pending, W3 in the IOMMU; @w12: W1 + W2 + W3. */
static int scenario_before(struct dirty *c, uint32_t *domp,
			   struct pages *w12, struct pages *ever,
			   struct before *b)
{
	struct dirty_domain **list = NULL;
	struct dirty_fds *fds = NULL;
	struct dirty_session s = { .size = sizeof(s) };
	struct pages w0, w2, got;
	unsigned int seed = 12345;
	uint32_t dom = 0;
	size_t n = 0;
	char why[160];
	int r, ret = -EIO;

	if (pages_init(&w0) || pages_init(&w2) || pages_init(&got))
		return -ENOMEM;
	r = dirty_session(c, &s);
	if (!check(!r && (s.features & DIRTY_FEAT_RESUME) && s.token,
		   "the session negotiated PROTO_FEAT_RESUME and has a "
		   "token (features 0x%" PRIx64 ", token %s)", s.features,
		   s.token ? "set" : "0"))
		goto out;
	b->token = s.token;

	r = dirty_domain_create(c, "mock0", DIRTY_CREATE_TRACKING, &dom,
				NULL);
	if (!check(!r, "CREATE_DOMAIN with tracking on mock0 (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	*domp = dom;
	if (!CHECK_RC(dirty_map(c, dom, GR_BASE, GR_LEN, 0), 0,
		      "MAP 4 MiB at 16 MiB") ||
	    !CHECK_RC(dirty_track_start(c, dom), 0, "TRACK_START"))
		goto out;
	r = dirty_subscribe(c, dom, 0, DIRTY_SUBSCRIBE_CLEAN, NULL);
	if (!check(!r, "SUBSCRIBE (clean, on SYNC only) (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;

	/* W0: a round taken and acknowledged */
	r = write_pages(c, dom, &seed, 30, &w0, ever);
	if (!CHECK_RC(r, 0, "DMA_WRITE W0 (30 writes of 1-3 pages)") ||
	    !round_exact(c, dom, &got, &w0, "W0: SYNC + GET_RANGES + ACK"))
		goto out;

	/* W1: a generation taken, not acknowledged */
	r = write_pages(c, dom, &seed, 40, w12, ever);
	if (!CHECK_RC(r, 0, "DMA_WRITE W1 (40 writes of 1-3 pages)") ||
	    !CHECK_RC(dirty_sync(c, dom, NULL, NULL), 0, "SYNC after W1"))
		goto out;
	pages_clear(&got);
	r = dirty_ranges(c, dom, 0, pages_add, &got, &b->gen_inflight);
	if (!check(!r, "GET_RANGES after W1, not acknowledged (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	if (!check(pages_same(&got, w12, why, sizeof(why)), "W1 in flight "
		   "(generation %" PRIu64 "): %s", b->gen_inflight, why))
		goto out;

	/* W2: harvested, pending in dirtyd's bitmap memfd */
	r = write_pages(c, dom, &seed, 40, &w2, ever);
	if (!CHECK_RC(r, 0, "DMA_WRITE W2 (40 writes of 1-3 pages)") ||
	    !CHECK_RC(dirty_sync(c, dom, NULL, NULL), 0, "SYNC after W2, "
		      "no GET_RANGES: W2 pending"))
		goto out;
	for (uint64_t i = 0; i < npages; i++)
		w12->p[i] |= w2.p[i];
	/* W3: written after, still in the IOMMU (no SYNC, no timer) */
	pages_clear(&w2);
	r = write_pages(c, dom, &seed, 40, &w2, ever);
	if (!CHECK_RC(r, 0, "DMA_WRITE W3 (40 writes of 1-3 pages), left "
		      "in the IOMMU's dirty bits"))
		goto out;
	for (uint64_t i = 0; i < npages; i++)
		w12->p[i] |= w2.p[i];
	info("W0 %" PRIu64 " pages; W1 + W2 + W3 %" PRIu64 " pages (W3 "
	     "alone %" PRIu64 "); written in all %" PRIu64 " pages",
	     pages_count(&w0), pages_count(w12), pages_count(&w2),
	     pages_count(ever));

	r = dirty_list_domains(c, &list, &n);
	if (!check(!r && find_domain(list, n, dom), "LIST_DOMAINS lists "
		   "domain %u before the kill (%d)", dom, r))
		goto out;
	b->dom = *find_domain(list, n, dom);
	r = dirty_get_fds(c, dom, &fds);
	if (!check(!r, "GET_FDS before the kill (%d %s)", r,
		   r ? dirty_last_error_text(c) : ""))
		goto out;
	b->ioas_id = fds->ioas_id;
	b->hwpt_id = fds->hwpt_id;
	info("before the kill: domain %u, ioas %u, hwpt %u, generation %"
	     PRIu64 ", %" PRIu64 " bytes mapped", dom, b->ioas_id,
	     b->hwpt_id, b->dom.generation, b->dom.mapped_bytes);
	ret = 0;
out:
	dirty_fds_free(fds);
	free(list);
	free(w0.p);
	free(w2.p);
	free(got.p);
	return ret;
}

/* After the start with the store: resumed, nothing lost, still tracks. */
static void scenario_after(struct dirty *c, uint32_t dom,
			   const struct pages *w12, struct pages *ever,
			   const struct before *b)
{
	struct dirty_domain **list = NULL;
	const struct dirty_domain *d;
	struct dirty_fds *fds = NULL;
	struct dirty_session s = { .size = sizeof(s) };
	struct pages uni, got, w3;
	uint64_t missing = 0, never = 0, extra = 0, gen = 0, first_gen = 0;
	unsigned int seed = 777, calls = 0;
	size_t n = 0;
	int r;

	if (pages_init(&uni) || pages_init(&got) || pages_init(&w3))
		return;
	r = dirty_reconnect(c);
	if (!check(!r, "the client reconnects with its token (%d %s)", r,
		   r ? strerror(-r) : ""))
		goto out;
	r = dirty_session(c, &s);
	check(!r && s.flags == DIRTY_SESSION_RESUMED, "HELLO: "
	      "PROTO_SESSION_RESUMED (session flags %#x)", s.flags);
	check(s.token == b->token, "the same token after the resume");

	r = dirty_list_domains(c, &list, &n);
	d = r ? NULL : find_domain(list, n, dom);
	if (check(d, "LIST_DOMAINS lists domain %u after the restart (%d, %zu "
		  "domains)", dom, r, n)) {
		check(d->mapped_bytes == b->dom.mapped_bytes &&
		      d->page_size == b->dom.page_size &&
		      d->status == b->dom.status, "the domain is as before: "
		      "%" PRIu64 " bytes mapped, page_size %" PRIu64 ", status "
		      "%u (before %" PRIu64 ", %" PRIu64 ", %u)",
		      d->mapped_bytes, d->page_size, d->status,
		      b->dom.mapped_bytes, b->dom.page_size, b->dom.status);
		check(d->generation >= b->dom.generation && d->subscribers == 1,
		      "generation %" PRIu64 " >= %" PRIu64 ", %u subscriber",
		      d->generation, b->dom.generation, d->subscribers);
	}
	r = dirty_get_fds(c, dom, &fds);
	if (check(!r, "GET_FDS after the restart (%d %s)", r,
		  r ? dirty_last_error_text(c) : ""))
		check(fds->ioas_id == b->ioas_id && fds->hwpt_id == b->hwpt_id,
		      "the kernel context was adopted: ioas %u hwpt %u (before "
		      "%u %u)", fds->ioas_id, fds->hwpt_id, b->ioas_id,
		      b->hwpt_id);

	/* everything not acknowledged, and what is still in the IOMMU */
	if (!CHECK_RC(dirty_sync(c, dom, NULL, NULL), 0, "SYNC after the "
		      "resume"))
		goto out;
	for (;;) {
		pages_clear(&got);
		r = dirty_ranges(c, dom, 0, pages_add, &got, &gen);
		if (r < 0)
			break;
		calls++;
		if (calls == 1) {
			first_gen = gen;
			check(gen > b->gen_inflight, "the first GET_RANGES "
			      "after the resume is a new generation (%" PRIu64
			      " > %" PRIu64 ")", gen, b->gen_inflight);
			r = dirty_ack(c, dom, b->gen_inflight);
			check(r == -ENOENT, "ACK of the generation that was in "
			      "flight: ENOENT, it is pending again (got %d)",
			      r);
		}
		for (uint64_t i = 0; i < npages; i++)
			uni.p[i] |= got.p[i];
		uni.outside += got.outside;
		r = dirty_ack(c, dom, gen);
		if (r < 0 || !pages_count(&got) || calls == 8)
			break;
	}
	if (!check(r >= 0 && calls >= 1, "GET_RANGES + ACK until empty after "
		   "the resume (%u calls, generations %" PRIu64 "..%" PRIu64
		   ", %d %s)", calls, first_gen, gen, r,
		   r < 0 ? dirty_last_error_text(c) : ""))
		goto out;
	check(!pages_count(&got), "the last GET_RANGES was empty (%" PRIu64
	      " pages)", pages_count(&got));
	for (uint64_t i = 0; i < npages; i++) {
		missing += w12->p[i] && !uni.p[i];
		never += uni.p[i] && !ever->p[i];
		extra += uni.p[i] && !w12->p[i];
	}
	check(!missing, "no page lost: each of the %" PRIu64 " pages of W1 "
	      "(in flight) + W2 (pending) + W3 (in the IOMMU) reported "
	      "after the resume (%" PRIu64 " missing)", pages_count(w12),
	      missing);
	check(!never && !uni.outside, "nothing never written is reported "
	      "(%" PRIu64 " such pages, %" PRIu64 " outside the mapping)",
	      never, uni.outside);
	info("after the resume: %" PRIu64 " pages reported, %" PRIu64
	     " beyond W1 + W2 + W3 (written before, allowed)",
	     pages_count(&uni), extra);

	/* the HWPT still tracks: new writes, exactly */
	r = write_pages(c, dom, &seed, 25, &w3, ever);
	if (CHECK_RC(r, 0, "DMA_WRITE W4 after the restart (25 writes)"))
		round_exact(c, dom, &got, &w3, "W4: SYNC + GET_RANGES + ACK "
			    "after the restart: exactly the pages written");
	pages_clear(&w3);
	round_exact(c, dom, &got, &w3, "then nothing written, nothing "
		    "reported");
out:
	dirty_fds_free(fds);
	free(list);
	free(uni.p);
	free(got.p);
	free(w3.p);
}

int main(int argc, char **argv)
{
	struct pages w12 = { 0 }, ever = { 0 };
	struct before b = { 0 };
	struct dirty *c = NULL;
	struct dirty_session s = { .size = sizeof(s) };
	struct dirty_domain **list = NULL;
	size_t npassed = 0, n = 0;
	int64_t pins0;
	char names[1024], line[1024];
	uint32_t dom = 0, dom2 = 0;
	uint64_t t0;
	char kname[64];
	int r, ws;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 2) {
		fprintf(stderr, "usage: vm_guest_restart /path/to/dirtyd\n");
		return 2;
	}
	page_size = (uint64_t)sysconf(_SC_PAGESIZE) / 2;
	npages = GR_LEN / page_size;
	if (pages_init(&w12) || pages_init(&ever))
		return 1;
	pins0 = pins_held();
	check(pins0 >= 0 && iommu_files() == 0, "before dirtyd: %" PRId64
	      " pages pinned, no /dev/iommu open", pins0);

	r = sm_init(argv[1]);
	if (!check(!r, "the service manager: socket unit and NOTIFY_SOCKET "
		   "(%d %s)", r, r ? strerror(-r) : ""))
		goto out;
	r = sm_start(&npassed);
	if (!check(!r, "dirtyd (iommufd, mock devices) started with the "
		   "socket and sent READY=1 (%d %s)", r, r ? strerror(-r) : ""))
		goto out;
	harness_names(&sm, names, sizeof(names));
	info("stored after the first start: %s", names);
	check(harness_has(&sm, "dirtyd-meta") == 1 && harness_has(&sm, "dirtyd-bits") == 1 &&
	      harness_nstored(&sm) == 2, "FDSTORE=1: dirtyd-meta and dirtyd-bits "
	      "stored once each, no kernel context without a domain (%zu "
	      "stored)", harness_nstored(&sm));
	r = dirty_connect(sm.sock, 0, &c);
	if (!check(!r, "connect and HELLO (%d %s)", r, r ? strerror(-r) : ""))
		goto out;
	if (scenario_before(c, &dom, &w12, &ever, &b) < 0)
		goto out;
	snprintf(kname, sizeof(kname), "kernel-%u-iommufd", dom);
	check(harness_wait_has(&sm, kname, 2000) == 1, "the domain's own iommufd context is "
	      "stored as %s", kname);

	/* SIGKILL: no chance to tidy up */
	ws = harness_kill(&sm, SIGKILL);
	check(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "SIGKILL (wait "
	      "status %#x)", ws);
	harness_names(&sm, names, sizeof(names));
	info("the store after the kill: %s", names);
	check(harness_has(&sm, "dirtyd-meta") == 1 && harness_has(&sm, "dirtyd-bits") == 1 &&
	      harness_has(&sm, kname) == 1, "the store still holds dirtyd-meta, "
	      "dirtyd-bits and %s", kname);

	t0 = now_ms();
	r = sm_start(&npassed);
	if (!check(!r, "dirtyd started again with the socket and %zu stored "
		   "descriptors and sent READY=1 in %" PRIu64 " ms (%d %s)",
		   npassed - 1, now_ms() - t0, r, r ? strerror(-r) : ""))
		goto out;
	harness_log_line(&sm, "restored from the file descriptor store", true,
			 line, sizeof(line));
	info("%s", line);
	check(harness_log_has(&sm, "restored from the file descriptor store: "
			      "1 domains, 1 subscriptions of 1 sessions",
			      true), "dirtyd logged that it "
	      "restored 1 domain, 1 subscription of 1 session");
	check(!harness_log_has(&sm, "starting afresh", true),
	      "dirtyd did not start afresh");
	scenario_after(c, dom, &w12, &ever, &b);

	/* The same with a stop (SIGTERM) the store survives: systemd 254+'s
	 * restart (FileDescriptorStorePreserve=restart) */
	CHECK_RC(dirty_domain_destroy(c, dom), 0, "DESTROY_DOMAIN of the "
		 "first domain");
	pages_clear(&w12);
	pages_clear(&ever);
	b = (struct before){ 0 };
	info("the stop: the scenario again on a new domain, then SIGTERM "
	     "(what it calls the kill)");
	if (scenario_before(c, &dom, &w12, &ever, &b) < 0)
		goto out;
	snprintf(kname, sizeof(kname), "kernel-%u-iommufd", dom);
	check(harness_wait_has(&sm, kname, 2000) == 1, "the new domain's "
	      "context is stored as %s", kname);
	ws = harness_stop(&sm);
	check(ws == 0 && sm.stopping, "SIGTERM: STOPPING=1 and exit 0 (wait "
	      "status %#x)", ws);
	harness_names(&sm, names, sizeof(names));
	info("the store after the stop: %s", names);
	check(harness_has(&sm, "dirtyd-meta") == 1 &&
	      harness_has(&sm, "dirtyd-bits") == 1 &&
	      harness_has(&sm, kname) == 1, "the stop took nothing out of "
	      "the store: dirtyd-meta, dirtyd-bits and %s", kname);
	r = sm_start(&npassed);
	if (!check(!r, "dirtyd started again after the stop with %zu stored "
		   "descriptors (%d %s)", npassed - 1, r,
		   r ? strerror(-r) : ""))
		goto out;
	check(harness_log_has(&sm, "restored from the file descriptor store: "
			      "1 domains, 1 subscriptions of 1 sessions",
			      true), "dirtyd restored the domain the stop left");
	scenario_after(c, dom, &w12, &ever, &b);

	/* A stop whose store systemd empties (252), with a VMM holding the
	 * domain's descriptors, then without */
	{
		struct dirty_fds *vmm = NULL;
		int64_t held;

		r = dirty_get_fds(c, dom, &vmm);
		check(!r, "GET_FDS: the test holds the domain's descriptors, "
		      "as a VMM (%d %s)", r, r ? dirty_last_error_text(c) : "");
		ws = harness_stop(&sm);
		check(ws == 0, "SIGTERM again: exit 0 (wait status %#x)", ws);
		harness_flush(&sm);
		held = pins_held();
		check(iommu_files() >= 1 && held > pins0, "while the VMM holds "
		      "them the domain lives: %u /dev/iommu open, %" PRId64
		      " pages pinned (%" PRId64 " before dirtyd started)",
		      iommu_files(), held, pins0);
		dirty_fds_free(vmm);
		held = pins_held();
		check(iommu_files() == 0 && held == pins0, "its last "
		      "descriptor closed, the kernel freed it: no /dev/iommu "
		      "open, %" PRId64 " pages pinned as before dirtyd started "
		      "(%" PRId64 ")", held, pins0);
	}
	r = sm_start(&npassed);
	if (!check(!r && npassed == 1, "dirtyd started with the socket "
		   "only, no stored descriptor (%d %s)", r,
		   r ? strerror(-r) : ""))
		goto out;
	check(!harness_log_has(&sm, "restored from the file descriptor store",
			       true),
	      "dirtyd restored nothing");
	r = dirty_reconnect(c);
	if (!check(!r, "the client reconnects with its token (%d %s)", r,
		   r ? strerror(-r) : ""))
		goto out;
	r = dirty_session(c, &s);
	check(!r && s.flags == DIRTY_SESSION_STATE_LOST, "HELLO: "
	      "PROTO_SESSION_STATE_LOST (session flags %#x)", s.flags);
	check(s.token && s.token != b.token, "a new token");
	r = dirty_list_domains(c, &list, &n);
	check(!r && n == 0, "nothing survived: LIST_DOMAINS lists %zu "
	      "domains (%d)", n, r);
	free(list);
	/* the fresh dirtyd works: a new domain on the same mock device */
	r = dirty_domain_create(c, "mock0", DIRTY_CREATE_TRACKING, &dom2,
				NULL);
	check(!r, "the fresh dirtyd creates a tracking domain on mock0 (%d "
	      "%s)", r, r ? dirty_last_error_text(c) : "");
	harness_names(&sm, names, sizeof(names));
	info("the store of the fresh dirtyd: %s", names);
	snprintf(kname, sizeof(kname), "kernel-%u-iommufd", dom2);
	check(harness_wait_has(&sm, kname, 2000) == 1 && harness_has(&sm, "dirtyd-meta") == 1 &&
	      harness_has(&sm, "dirtyd-bits") == 1, "the fresh dirtyd stored new dirtyd-meta, "
	      "dirtyd-bits and %s", kname);
	if (dom2)
		CHECK_RC(dirty_domain_destroy(c, dom2), 0, "DESTROY_DOMAIN");
	dirty_close(c);
	c = NULL;
	ws = harness_stop(&sm);
	check(ws == 0, "dirtyd exits 0 on SIGTERM (wait status %d)", ws);
	check(harness_nstored(&sm) == 2 && harness_has(&sm, "dirtyd-meta") == 1 &&
	      harness_has(&sm, "dirtyd-bits") == 1, "a stop leaves the store as "
	      "it is: dirtyd-meta and dirtyd-bits (the destroyed domain's %s "
	      "left at its DESTROY_DOMAIN; %zu stored)", kname,
	      harness_nstored(&sm));
out:
	dirty_close(c);
	if (sm.pid)
		harness_kill(&sm, SIGKILL);
	printf("%u checks, %u failed\n", n_checks, n_failed);
	if (n_failed)
		harness_dump_log(&sm, stdout, 0, "dirtyd: ");
	harness_fini(&sm);
	free(w12.p);
	free(ever.p);
	return n_failed ? 1 : 0;
}
