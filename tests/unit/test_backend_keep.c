// SPDX-License-Identifier: MIT
/*
 * Keeping a sim host across the death of its process (backend_keep(),
 * backend_open() with kept descriptors, backend_leave()).
 *
 * A child builds a host (two devices, one IOAS, two dirty tracking HWPTs)
 * and runs a seeded sequence of maps, unmaps, DMA writes and clearing
 * harvests, checking each harvest against a model; it sends its kept
 * memfd to the parent over a socketpair (SCM_RIGHTS) and publishes in
 * shared memory how many operations have returned.  The parent SIGKILLs
 * it, at a quiet point or at a random moment, adopts the host, and
 * compares it with the model replayed to that point: ids, mappings,
 * attachments, alignment, tracking, every dirty bit; then checks that new
 * operations work and new ids do not collide.  A kill in the middle of an
 * operation may leave it done or not done (a DMA write or a harvest may
 * be part done, bit by bit), or the adoption may fail -EUCLEAN, which only
 * a map or unmap in flight may cause: never a third state.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/backend.h"
#include "kernel/sim/sim.h"

#define PAGE 4096ULL
#define NSLOT 32
#define SLOT_PAGES 64
#define SLOT_IOVA(s) ((uint64_t)((s) + 1) << 20)
#define SLOT_UVA(s) (0x7f0000000000ULL + ((uint64_t)(s) << 22))
#define MAX_OPS (1U << 22)

/* ----------------------------------------------------------------- model */

enum op_kind { OP_MAP, OP_UNMAP, OP_DMA, OP_HARVEST };

struct op {
	enum op_kind kind;
	unsigned int slot, dev, first, n;	/* dev: 0/1, also the HWPT */
};

struct model {
	bool mapped[NSLOT];
	uint64_t dirty[2][NSLOT];		/* bit p: page p of the slot */
};

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t range_mask(unsigned int first, unsigned int n)
{
	return (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << first;
}

/* The next operation, valid for @m; the rng follows the model only. */
static struct op op_next(uint64_t *rng, const struct model *m)
{
	uint64_t r = rng_next(rng);
	struct op op = {
		.slot = r % NSLOT,
		.dev = (r >> 8) & 1,
	};
	unsigned int pick = (r >> 16) % 8;

	op.first = (r >> 24) % SLOT_PAGES;
	op.n = 1 + (r >> 32) % (SLOT_PAGES - op.first);
	if (!m->mapped[op.slot])
		op.kind = OP_MAP;
	else if (pick == 0)
		op.kind = OP_UNMAP;
	else if (pick < 6)
		op.kind = OP_DMA;
	else
		op.kind = OP_HARVEST;
	return op;
}

static void model_apply(struct model *m, const struct op *op)
{
	switch (op->kind) {
	case OP_MAP:
		m->mapped[op->slot] = true;
		break;
	case OP_UNMAP:
		m->mapped[op->slot] = false;
		m->dirty[0][op->slot] = m->dirty[1][op->slot] = 0;
		break;
	case OP_DMA:
		m->dirty[op->dev][op->slot] |= range_mask(op->first, op->n);
		break;
	case OP_HARVEST:
		m->dirty[op->dev][op->slot] = 0;
		break;
	}
}

/* ------------------------------------------------------------ the host */

struct ids {
	uint32_t dev[2], ioas, hwpt[2];
};

/* What the child publishes; MAP_SHARED, made before fork(). */
struct shared {
	struct ids ids;
	uint32_t done;		/* operations that returned */
	uint32_t error;		/* the child saw a wrong result */
	char what[160];
};

static struct backend *host_new(void)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 3,
			.devices = {
				{ .name = "dev0", .dirty_tracking = true },
				{ .name = "dev1", .dirty_tracking = true },
				{ .name = "spare", .dirty_tracking = true },
			},
		},
	};
	struct backend *b = NULL;

	if (backend_open(&cfg, &b))
		return NULL;
	return b;
}

static int host_setup(struct backend *b, struct ids *ids)
{
	unsigned int d;
	int rc = 0;

	rc |= backend_device_bind(b, "dev0", &ids->dev[0]);
	rc |= backend_device_bind(b, "dev1", &ids->dev[1]);
	rc |= backend_ioas_alloc(b, &ids->ioas);
	for (d = 0; d < 2; d++) {
		rc |= backend_hwpt_alloc(b, ids->dev[d], ids->ioas,
					 IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					 &ids->hwpt[d]);
		rc |= backend_device_attach(b, ids->dev[d], ids->hwpt[d]);
		rc |= backend_hwpt_set_dirty_tracking(b, ids->hwpt[d], true);
	}
	return rc;
}

/* Run @op on @b; a harvest's bits go to *@bits. */
static int op_run(struct backend *b, const struct ids *ids,
		  const struct op *op, uint64_t *bits)
{
	uint64_t iova = SLOT_IOVA(op->slot), len = SLOT_PAGES * PAGE;

	switch (op->kind) {
	case OP_MAP:
		return backend_ioas_map(b, ids->ioas,
					IOMMU_IOAS_MAP_FIXED_IOVA |
					IOMMU_IOAS_MAP_READABLE |
					IOMMU_IOAS_MAP_WRITEABLE,
					(void *)(uintptr_t)SLOT_UVA(op->slot),
					len, &iova);
	case OP_UNMAP:
		return backend_ioas_unmap(b, ids->ioas, iova, len, NULL);
	case OP_DMA:
		return backend_dma_write(b, ids->dev[op->dev],
					 iova + op->first * PAGE,
					 op->n * PAGE);
	case OP_HARVEST:
		*bits = 0;
		return backend_hwpt_get_dirty_bitmap(b, ids->hwpt[op->dev],
						     iova, len, PAGE, bits,
						     0);
	}
	return -EINVAL;
}

/* --------------------------------------------------- passing descriptors */

static void send_kept(int sock, const struct backend_kept_fd *kept, int n)
{
	char names[BACKEND_KEEP_MAX_FDS][BACKEND_NAME_MAX];
	char cbuf[CMSG_SPACE(sizeof(int) * BACKEND_KEEP_MAX_FDS)] = { 0 };
	struct iovec iov = { .iov_base = names,
			     .iov_len = (size_t)n * BACKEND_NAME_MAX };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * n),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int i;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	for (i = 0; i < n; i++) {
		memcpy(names[i], kept[i].name, BACKEND_NAME_MAX);
		memcpy(CMSG_DATA(c) + i * sizeof(int), &kept[i].fd,
		       sizeof(int));
	}
	if (sendmsg(sock, &msg, 0) < 0)
		_exit(3);
}

static int recv_kept(int sock, struct backend_kept_fd *kept)
{
	char names[BACKEND_KEEP_MAX_FDS][BACKEND_NAME_MAX];
	char cbuf[CMSG_SPACE(sizeof(int) * BACKEND_KEEP_MAX_FDS)];
	struct iovec iov = { .iov_base = names, .iov_len = sizeof(names) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	ssize_t len;
	int i, n;

	len = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (len <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	if (len != (ssize_t)n * BACKEND_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		memcpy(kept[i].name, names[i], BACKEND_NAME_MAX);
		memcpy(&kept[i].fd, CMSG_DATA(c) + i * sizeof(int),
		       sizeof(int));
	}
	return n;
}

/* ------------------------------------------------------------- the child */

/* Build, send the kept fds, run @quiet_ops operations (or until killed,
 * if 0), then wait to be killed. */
static void child_main(int sock, struct shared *sh, uint64_t seed,
		       uint32_t quiet_ops)
{
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	struct model m = { 0 };
	uint64_t rng = seed, bits;
	size_t blob_len = 0;
	struct backend *b;
	uint32_t limit = quiet_ops ? quiet_ops : MAX_OPS, k;
	int n;

	b = host_new();
	if (!b || host_setup(b, &sh->ids))
		_exit(2);
	n = backend_keep(b, kept, BACKEND_KEEP_MAX_FDS, NULL, &blob_len);
	if (n != 1 || blob_len)
		_exit(2);
	send_kept(sock, kept, n);

	for (k = 0; k < limit; k++) {
		struct op op = op_next(&rng, &m);
		uint64_t want = m.dirty[op.dev][op.slot];
		int rc = op_run(b, &sh->ids, &op, &bits);

		if (!rc && op.kind == OP_HARVEST && bits != want)
			rc = -EIO;
		if (rc && !sh->error) {
			snprintf(sh->what, sizeof(sh->what),
				 "op %u kind %d slot %u: %d", k, op.kind,
				 op.slot, rc);
			__atomic_store_n(&sh->error, 1, __ATOMIC_RELEASE);
		}
		model_apply(&m, &op);
		__atomic_store_n(&sh->done, k + 1, __ATOMIC_RELEASE);
	}
	if (write(sock, "q", 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

/* ------------------------------------------------------------ the parent */

struct run_stats {
	unsigned int runs, adopted, torn;
	unsigned int inflight_done, inflight_not_done, inflight_partial;
};

/* State of slot @s in hwpt @h, bit by bit, against @want (bits that must
 * be set) and @may (bits that may be set). */
static void check_slot_bits(struct backend *b, const struct ids *ids,
			    unsigned int h, unsigned int s, uint64_t must,
			    uint64_t may, uint64_t *seen)
{
	uint64_t bits = 0;

	cr_assert_eq(backend_hwpt_get_dirty_bitmap(b, ids->hwpt[h],
						   SLOT_IOVA(s),
						   SLOT_PAGES * PAGE, PAGE,
						   &bits,
						   IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR),
		     0);
	cr_assert_eq(bits & must, must,
		     "hwpt %u slot %u: bits %#llx lack %#llx", h, s,
		     (unsigned long long)bits, (unsigned long long)must);
	cr_assert_eq(bits & ~(must | may), 0,
		     "hwpt %u slot %u: bits %#llx beyond %#llx", h, s,
		     (unsigned long long)bits,
		     (unsigned long long)(must | may));
	*seen = bits;
}

/* Is slot @s mapped in both HWPTs (with its uva), or in neither? */
static bool slot_mapped(struct backend *b, const struct ids *ids,
			unsigned int s)
{
	struct sim_leaf leaf;
	int rc[2], h;

	for (h = 0; h < 2; h++) {
		rc[h] = sim_hwpt_lookup(b, ids->hwpt[h],
					SLOT_IOVA(s) + (SLOT_PAGES - 1) * PAGE,
					&leaf);
		cr_assert(rc[h] == 0 || rc[h] == -ENXIO);
		if (!rc[h]) {
			cr_assert_eq(leaf.paddr,
				     SLOT_UVA(s) + (SLOT_PAGES - 1) * PAGE);
			cr_assert(leaf.writable);
			cr_assert_eq(leaf.size, PAGE);
		}
	}
	cr_assert_eq(rc[0], rc[1]);
	return !rc[0];
}

/*
 * Compare adopted @b with the model after @done operations of @seed, the
 * operation after those maybe in flight (@inflight).
 */
static void check_adopted(struct backend *b, const struct ids *ids,
			  uint64_t seed, uint32_t done, bool inflight,
			  struct run_stats *st)
{
	struct model m = { 0 }, after;
	uint64_t rng = seed;
	struct op next;
	unsigned int s, h;
	uint32_t k, hwpt;
	uint64_t align;
	bool on, next_done = false;

	for (k = 0; k < done; k++) {
		struct op op = op_next(&rng, &m);

		model_apply(&m, &op);
	}
	next = op_next(&rng, &m);
	after = m;
	model_apply(&after, &next);

	/* Objects, attachments, tracking, alignment. */
	for (h = 0; h < 2; h++) {
		cr_assert_eq(sim_device_hwpt(b, ids->dev[h], &hwpt), 0);
		cr_assert_eq(hwpt, ids->hwpt[h]);
		cr_assert_eq(sim_hwpt_tracking(b, ids->hwpt[h], &on), 0);
		cr_assert(on);
	}
	cr_assert_eq(backend_ioas_iova_alignment(b, ids->ioas, &align), 0);
	cr_assert_eq(align, PAGE);
	cr_assert_eq(backend_destroy(b, ids->ioas), -EBUSY);
	cr_assert_eq(backend_destroy(b, ids->dev[0]), -EBUSY);

	/* Mappings: before or after the next op, nothing else. */
	for (s = 0; s < NSLOT; s++) {
		bool mapped = slot_mapped(b, ids, s);

		if (inflight && (next.kind == OP_MAP ||
				 next.kind == OP_UNMAP) && next.slot == s) {
			cr_assert(mapped == m.mapped[s] ||
				  mapped == after.mapped[s]);
			next_done = mapped == after.mapped[s];
		} else {
			cr_assert_eq(mapped, m.mapped[s], "slot %u", s);
		}
	}
	if (next_done)
		m = after;

	/* Every dirty bit. */
	for (h = 0; h < 2; h++) {
		for (s = 0; s < NSLOT; s++) {
			uint64_t must = m.dirty[h][s], may = 0, seen;

			if (!m.mapped[s])
				continue;
			if (inflight && next.slot == s && next.dev == h) {
				if (next.kind == OP_DMA)
					may = range_mask(next.first, next.n);
				if (next.kind == OP_HARVEST) {
					may = must;
					must = 0;
				}
			}
			check_slot_bits(b, ids, h, s, must, may, &seen);
			if (!may || !st)
				continue;
			if (seen == (m.dirty[h][s] | (next.kind == OP_DMA ?
							may : 0)) &&
			    next.kind == OP_DMA)
				st->inflight_done++;
			else if (seen == m.dirty[h][s])
				st->inflight_not_done++;
			else if (next.kind == OP_HARVEST && !seen)
				st->inflight_done++;
			else
				st->inflight_partial++;
		}
	}
}

/* After the checks: new operations work, new ids are new. */
static void check_new_ops(struct backend *b, const struct ids *ids)
{
	uint64_t iova = SLOT_IOVA(NSLOT + 4), bits = 0, unmapped;
	uint32_t ioas2, dev2, hwpt2;

	cr_assert_eq(backend_ioas_map(b, ids->ioas,
				      IOMMU_IOAS_MAP_FIXED_IOVA |
				      IOMMU_IOAS_MAP_READABLE |
				      IOMMU_IOAS_MAP_WRITEABLE,
				      (void *)(uintptr_t)SLOT_UVA(NSLOT + 4),
				      SLOT_PAGES * PAGE, &iova), 0);
	cr_assert_eq(backend_dma_write(b, ids->dev[1], iova + 3 * PAGE, PAGE),
		     0);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(b, ids->hwpt[1], iova,
						   SLOT_PAGES * PAGE, PAGE,
						   &bits, 0), 0);
	cr_assert_eq(bits, 1ULL << 3);

	cr_assert_eq(backend_ioas_alloc(b, &ioas2), 0);
	cr_assert_eq(backend_device_bind(b, "spare", &dev2), 0);
	cr_assert_eq(backend_device_bind(b, "dev0", &hwpt2), -EINVAL);
	cr_assert_eq(backend_hwpt_alloc(b, dev2, ioas2,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
					&hwpt2), 0);
	cr_assert(ioas2 != ids->ioas && ioas2 != ids->hwpt[0] &&
		  ioas2 != ids->hwpt[1] && ioas2 != ids->dev[0] &&
		  ioas2 != ids->dev[1]);
	cr_assert(dev2 != ioas2 && hwpt2 != ioas2 && hwpt2 != dev2);
	cr_assert(dev2 > ids->hwpt[1] || (dev2 != ids->dev[0] &&
					  dev2 != ids->dev[1] &&
					  dev2 != ids->ioas &&
					  dev2 != ids->hwpt[0] &&
					  dev2 != ids->hwpt[1]));
	cr_assert_eq(backend_destroy(b, hwpt2), 0);
	cr_assert_eq(backend_destroy(b, ioas2), 0);
	cr_assert_eq(backend_device_unbind(b, dev2), 0);

	/* Tear everything down: references were counted right. */
	cr_assert_eq(backend_ioas_unmap(b, ids->ioas, 0, UINT64_MAX,
					&unmapped), 0);
	cr_assert_eq(backend_destroy(b, ids->hwpt[0]), -EBUSY);
	cr_assert_eq(backend_device_detach(b, ids->dev[0]), 0);
	cr_assert_eq(backend_device_detach(b, ids->dev[1]), 0);
	cr_assert_eq(backend_destroy(b, ids->ioas), -EBUSY);
	cr_assert_eq(backend_destroy(b, ids->hwpt[0]), 0);
	cr_assert_eq(backend_destroy(b, ids->hwpt[1]), 0);
	cr_assert_eq(backend_destroy(b, ids->ioas), 0);
}

static int adopt(const struct backend_kept_fd *kept, int n,
		 struct backend **out)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.kept = kept,
		.n_kept = (size_t)n,
	};

	return backend_open(&cfg, out);
}

static struct shared *shared_new(void)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(sh, MAP_FAILED);
	return sh;
}

/*
 * One child, killed after @quiet_ops operations (0: after @delay_us of
 * running).  Returns the adoption's result; checks the state if it is 0.
 */
static int run_once(uint64_t seed, uint32_t quiet_ops, unsigned int delay_us,
		    struct run_stats *st)
{
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	struct shared *sh = shared_new();
	struct backend *b = NULL;
	int sv[2], n, rc, status;
	uint32_t done;
	pid_t pid;
	char c;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1], sh, seed, quiet_ops);
	}
	close(sv[1]);
	n = recv_kept(sv[0], kept);
	cr_assert_eq(n, 1, "the child sent no memfd");
	cr_assert_str_eq(kept[0].name, "sim");
	if (quiet_ops)
		cr_assert_eq(read(sv[0], &c, 1), 1);
	else
		usleep(delay_us);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "child exited %d", WEXITSTATUS(status));
	close(sv[0]);
	cr_assert_eq(sh->error, 0, "child: %s", sh->what);
	done = sh->done;

	rc = adopt(kept, n, &b);
	if (st) {
		st->runs++;
		st->adopted += rc == 0;
		st->torn += rc == -EUCLEAN;
	}
	if (rc == -EUCLEAN) {
		/* Only a structural change in flight tears. */
		struct model m = { 0 };
		uint64_t rng = seed;
		uint32_t k;
		struct op next;

		cr_assert(!quiet_ops);
		for (k = 0; k < done; k++) {
			struct op op = op_next(&rng, &m);

			model_apply(&m, &op);
		}
		next = op_next(&rng, &m);
		cr_assert(next.kind == OP_MAP || next.kind == OP_UNMAP,
			  "torn with op %d in flight", next.kind);
	} else {
		cr_assert_eq(rc, 0);
		check_adopted(b, &sh->ids, seed, done, !quiet_ops, st);
		check_new_ops(b, &sh->ids);
		backend_close(b);
	}
	munmap(sh, sizeof(*sh));
	return rc;
}

Test(backend_keep, quiet_kill_adopts_exact_state, .timeout = 120)
{
	run_once(0x9e3779b97f4a7c15ULL, 5000, 0, NULL);
	run_once(0x1234567ULL, 1, 0, NULL);
}

Test(backend_keep, random_kills_exact_or_torn, .timeout = 300)
{
	struct run_stats st = { 0 };
	uint64_t rng = 0xfeedULL;
	unsigned int i, runs = 200;
	const char *env = getenv("DIRTYD_KEEP_RUNS");

	if (env)
		runs = (unsigned int)strtoul(env, NULL, 10);
	for (i = 0; i < runs; i++) {
		uint64_t seed = rng_next(&rng) | 1;

		run_once(seed, 0, (unsigned int)(rng_next(&rng) % 3000),
			 &st);
	}
	cr_assert_eq(st.runs, runs);
	cr_assert_eq(st.adopted + st.torn, runs);
	cr_assert_gt(st.adopted, 0);
	fprintf(stderr,
		"backend_keep: %u random kills: %u adopted exact, %u -EUCLEAN "
		"(%.1f %%); in-flight DMA/harvest found done %u, not done "
		"%u, part done %u\n",
		st.runs, st.adopted, st.torn, 100.0 * st.torn / st.runs,
		st.inflight_done, st.inflight_not_done, st.inflight_partial);
}

/* In one process: leave, adopt; an address in use; a closed host. */
Test(backend_keep, leave_adopt_busy_closed_and_foreign)
{
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS], dup_kept;
	struct backend *b = host_new(), *b2 = NULL;
	struct ids ids;
	uint64_t iova = SLOT_IOVA(0), bits = 0;
	size_t blob_len = 0;
	int n, fd;

	cr_assert_not_null(b);
	cr_assert_eq(host_setup(b, &ids), 0);
	cr_assert_eq(backend_ioas_map(b, ids.ioas, IOMMU_IOAS_MAP_FIXED_IOVA |
				      IOMMU_IOAS_MAP_WRITEABLE,
				      (void *)(uintptr_t)SLOT_UVA(0),
				      SLOT_PAGES * PAGE, &iova), 0);
	cr_assert_eq(backend_dma_write(b, ids.dev[0], iova, 2 * PAGE), 0);
	n = backend_keep(b, kept, 0, NULL, &blob_len);
	cr_assert_eq(n, -ENOSPC);
	n = backend_keep(b, kept, BACKEND_KEEP_MAX_FDS, NULL, &blob_len);
	cr_assert_eq(n, 1);

	/* Still mapped here: its address is taken. */
	dup_kept = kept[0];
	dup_kept.fd = dup(kept[0].fd);
	cr_assert_eq(adopt(&dup_kept, 1, &b2), -EBUSY);
	cr_assert_eq(fcntl(dup_kept.fd, F_GETFD), -1, "not closed");

	/* Left, it adopts with its bits. */
	dup_kept.fd = dup(kept[0].fd);
	backend_leave(b);
	cr_assert_eq(adopt(&dup_kept, 1, &b2), 0);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(b2, ids.hwpt[0], iova,
						   SLOT_PAGES * PAGE, PAGE,
						   &bits, 0), 0);
	cr_assert_eq(bits, 3);

	/* Closed, a copy no longer adopts. */
	n = backend_keep(b2, kept, BACKEND_KEEP_MAX_FDS, NULL, &blob_len);
	cr_assert_eq(n, 1);
	/* whoever holds it cannot cut its memory from under its process */
	cr_assert(ftruncate(kept[0].fd, 4096) < 0 && errno == EPERM,
		  "the kept memfd is sealed against shrinking");
	cr_assert(ftruncate(kept[0].fd, 1ULL << 40) < 0 && errno == EPERM,
		  "and growing");
	dup_kept.fd = dup(kept[0].fd);
	backend_close(b2);
	cr_assert_eq(adopt(&dup_kept, 1, &b2), -EINVAL);

	/* Not a sim memfd; not called "sim"; two descriptors. */
	dup_kept.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert_eq(adopt(&dup_kept, 1, &b2), -EINVAL);
	fd = memfd_create("other", MFD_CLOEXEC);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	dup_kept.fd = fd;
	cr_assert_eq(adopt(&dup_kept, 1, &b2), -EINVAL);
	kept[0] = (struct backend_kept_fd){ .name = "iommufd",
					    .fd = memfd_create("x", 0) };
	cr_assert_eq(adopt(kept, 1, &b2), -EINVAL);
	cr_assert_eq(fcntl(kept[0].fd, F_GETFD), -1, "not closed");
}
