// SPDX-License-Identifier: MIT
/*
 * vm_guest_keep - the iommufd backend's state outliving its process, on
 * the real kernel iommufd with mock devices (run by /init in the VM
 * tests' guest, tests/vm/run.sh).
 *
 * A child opens /dev/iommu with the mock provider, binds three devices,
 * maps two areas, allocates a dirty tracking HWPT and attaches a device
 * to it and another to the IOAS (auto domain), enables tracking, makes
 * DMA writes, and sends what backend_keep() gives (descriptors over
 * SCM_RIGHTS, the blob as data) to the parent; then it unbinds the third
 * device and sends the keep again.  The parent SIGKILLs it and adopts:
 * the first, stale keep must fail -EUCLEAN (a device the kernel no longer
 * has), foreign descriptors and blobs -EINVAL; the second must give back
 * every object, mapping and dirty bit through backend_* calls, and new
 * operations must work on it.
 *
 * Prints "ok N - what" / "not ok N - what" per check, exits 1 if any
 * failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/backend.h"
#include "tests/vm/guest_check.h"

#define PG 4096ULL
#define MAP_RW (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | \
		IOMMU_IOAS_MAP_WRITEABLE)
#define NO_CLEAR IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
#define AREA0_IOVA (16 * MIB)
#define AREA0_LEN (4 * MIB)
#define AREA1_IOVA (64 * MIB)
#define AREA1_LEN (2 * MIB)

/* What the child tells the parent, besides descriptors. */
struct kept_msg {
	uint32_t dev_track, dev_auto, dev_gone, ioas, hwpt;
	int32_t n_fds;
	char names[BACKEND_KEEP_MAX_FDS][BACKEND_NAME_MAX];
	uint64_t blob_len;
	uint8_t blob[BACKEND_KEEP_MAX_BLOB];
};

/* The pages the child writes, in 4 KiB pages of each area. */
static bool written(unsigned int area, uint64_t page)
{
	return area == 0 ? (page % 7 == 3 || (page >= 500 && page < 530)) :
			   page == 0 || page == 511;
}

static int send_msg(int sock, const struct kept_msg *m,
		    const struct backend_kept_fd *fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BACKEND_KEEP_MAX_FDS)] = { 0 };
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * m->n_fds),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int i;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * m->n_fds);
	for (i = 0; i < m->n_fds; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fds[i].fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == sizeof(*m) ? 0 : -1;
}

static int recv_msg(int sock, struct kept_msg *m, struct backend_kept_fd *fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BACKEND_KEEP_MAX_FDS)];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	int i;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL) !=
	    sizeof(*m))
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) != (size_t)m->n_fds)
		return -1;
	for (i = 0; i < m->n_fds; i++) {
		memcpy(fds[i].name, m->names[i], BACKEND_NAME_MAX);
		memcpy(&fds[i].fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	return 0;
}

static int keep_into(struct backend *b, struct kept_msg *m,
		     struct backend_kept_fd *fds)
{
	size_t len = sizeof(m->blob);
	int n, i;

	n = backend_keep(b, fds, BACKEND_KEEP_MAX_FDS, m->blob, &len);
	if (n < 0)
		return n;
	m->n_fds = n;
	m->blob_len = len;
	for (i = 0; i < n; i++)
		memcpy(m->names[i], fds[i].name, BACKEND_NAME_MAX);
	return 0;
}

/* The child: build, keep, send; unbind one, keep, send; wait to die. */
static void child(int sock)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.device_provider = "mock",
	};
	struct backend_kept_fd fds[BACKEND_KEEP_MAX_FDS];
	static struct kept_msg m;
	uint64_t iova, p;
	struct backend *b;
	uint8_t *mem;
	int rc = 0;

	if (backend_open(&cfg, &b))
		_exit(2);
	rc |= backend_device_bind(b, "mock0", &m.dev_track);
	rc |= backend_device_bind(b, "mock1:nodirty", &m.dev_auto);
	rc |= backend_device_bind(b, "mock3", &m.dev_gone);
	rc |= backend_ioas_alloc(b, &m.ioas);
	mem = mem_alloc(AREA0_LEN + AREA1_LEN, false, true);
	if (!mem)
		_exit(2);
	iova = AREA0_IOVA;
	rc |= backend_ioas_map(b, m.ioas, MAP_RW, mem, AREA0_LEN, &iova);
	iova = AREA1_IOVA;
	rc |= backend_ioas_map(b, m.ioas, MAP_RW, mem + AREA0_LEN, AREA1_LEN,
			       &iova);
	rc |= backend_hwpt_alloc(b, m.dev_track, m.ioas,
				 IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &m.hwpt);
	rc |= backend_device_attach(b, m.dev_track, m.hwpt);
	rc |= backend_device_attach(b, m.dev_auto, m.ioas);
	rc |= backend_hwpt_set_dirty_tracking(b, m.hwpt, true);
	for (p = 0; p < AREA0_LEN / PG; p++)
		if (written(0, p))
			rc |= backend_dma_write(b, m.dev_track,
						AREA0_IOVA + p * PG, PG);
	for (p = 0; p < AREA1_LEN / PG; p++)
		if (written(1, p))
			rc |= backend_dma_write(b, m.dev_track,
						AREA1_IOVA + p * PG, PG);
	if (rc)
		_exit(3);
	if (keep_into(b, &m, fds) || send_msg(sock, &m, fds))
		_exit(4);
	if (backend_device_unbind(b, m.dev_gone) || keep_into(b, &m, fds) ||
	    send_msg(sock, &m, fds))
		_exit(5);
	for (;;)
		pause();
}

static int adopt(const struct kept_msg *m, const struct backend_kept_fd *fds,
		 int n_fds, const void *blob, size_t blob_len,
		 struct backend **out)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.device_provider = "mock",
		.kept = fds,
		.n_kept = (size_t)n_fds,
		.kept_blob = blob,
		.kept_blob_len = blob_len,
	};

	(void)m;
	return backend_open(&cfg, out);
}

static void dup_fds(const struct backend_kept_fd *in, int n,
		    struct backend_kept_fd *out)
{
	int i;

	for (i = 0; i < n; i++) {
		out[i] = in[i];
		out[i].fd = dup(in[i].fd);
	}
}

static void check_bits(struct backend *b, const struct kept_msg *m)
{
	static uint64_t bm[AREA0_LEN / PG / 64];
	unsigned int area;
	uint64_t p, bad, n;

	for (area = 0; area < 2; area++) {
		uint64_t iova = area ? AREA1_IOVA : AREA0_IOVA;
		uint64_t len = area ? AREA1_LEN : AREA0_LEN;
		int rc;

		memset(bm, 0, sizeof(bm));
		rc = backend_hwpt_get_dirty_bitmap(b, m->hwpt, iova, len, PG,
						   bm, NO_CLEAR);
		bad = n = 0;
		for (p = 0; p < len / PG; p++) {
			bool bit = bm[p / 64] >> (p % 64) & 1;

			n += bit;
			bad += bit != written(area, p);
		}
		check(!rc && !bad, "adopted: area %u dirty bits exact (%llu "
		      "set, %llu wrong, rc %d)", area,
		      (unsigned long long)n, (unsigned long long)bad, rc);
	}
}

int main(void)
{
	struct backend_kept_fd fds1[BACKEND_KEEP_MAX_FDS];
	struct backend_kept_fd fds2[BACKEND_KEEP_MAX_FDS];
	struct backend_kept_fd tmp[BACKEND_KEEP_MAX_FDS];
	static struct kept_msg m1, m2;
	struct backend_hw_info hw;
	struct backend *b = NULL;
	uint64_t align, iova, bm[8];
	struct timespec t0, t1;
	uint32_t ioas2;
	int sv[2], rc, status;
	uint8_t *mem;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return 1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		child(sv[1]);
	}
	close(sv[1]);
	rc = recv_msg(sv[0], &m1, fds1);
	check(!rc && m1.n_fds == 1 && !strcmp(m1.names[0], "iommufd") &&
	      m1.blob_len > 0, "child kept its iommufd and a blob (%d fds, "
	      "%llu bytes)", m1.n_fds, (unsigned long long)m1.blob_len);
	rc |= recv_msg(sv[0], &m2, fds2);
	check(!rc, "child kept again after an unbind");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "child killed with SIGKILL");
	if (rc)
		goto out;
	close(fds1[0].fd);

	/* Refusals: nothing taken, nothing changed. */
	dup_fds(fds2, m2.n_fds, tmp);
	check(adopt(&m1, tmp, m1.n_fds, m1.blob, m1.blob_len, &b) ==
	      -EUCLEAN, "a stale keep (unbound device) adopts -EUCLEAN");
	dup_fds(fds2, m2.n_fds, tmp);
	m1.blob[0] ^= 0xff;
	check(adopt(&m2, tmp, m2.n_fds, m1.blob, m1.blob_len, &b) == -EINVAL,
	      "a foreign blob adopts -EINVAL");
	tmp[0] = (struct backend_kept_fd){ .name = "iommufd",
					   .fd = memfd_create("x", 0) };
	check(adopt(&m2, tmp, 1, m2.blob, m2.blob_len, &b) == -EINVAL,
	      "a descriptor that is no iommufd adopts -EINVAL");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = adopt(&m2, fds2, m2.n_fds, m2.blob, m2.blob_len, &b);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!check(!rc, "adopt the kept iommufd (%d %s, %.0f us)", rc,
		   rc ? strerror(-rc) : "",
		   (t1.tv_sec - t0.tv_sec) * 1e6 +
		   (t1.tv_nsec - t0.tv_nsec) / 1e3))
		goto out;

	/* Objects. */
	rc = backend_device_get_hw_info(b, m2.dev_track, &hw);
	check(!rc && (hw.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
	      "adopted: tracking device %u is there, dirty capable",
	      m2.dev_track);
	rc = backend_device_get_hw_info(b, m2.dev_auto, &hw);
	check(!rc && !(hw.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
	      "adopted: nodirty device %u is there", m2.dev_auto);
	check(backend_device_get_hw_info(b, m2.dev_gone, &hw) == -ENOENT,
	      "adopted: the unbound device %u is gone", m2.dev_gone);
	check(backend_device_unbind(b, m2.dev_gone) == -ENOENT,
	      "adopted: the table does not list the unbound device");
	rc = backend_ioas_iova_alignment(b, m2.ioas, &align);
	check(!rc && align == 2048, "adopted: IOAS %u alignment %llu (the "
	      "mock's 2 KiB)", m2.ioas, (unsigned long long)align);
	check(backend_destroy(b, m2.ioas) == -EBUSY,
	      "adopted: the IOAS is held by its HWPT");
	check(backend_destroy(b, m2.hwpt) == -EBUSY,
	      "adopted: the HWPT is held by its device");
	mem = mem_alloc(2 * MIB, false, true);
	iova = AREA0_IOVA;
	check(mem && backend_ioas_map(b, m2.ioas, MAP_RW, mem, PG, &iova) ==
	      -EEXIST, "adopted: area 0 is still mapped");

	/* Every dirty bit, then new DMA through the adopted device. */
	check_bits(b, &m2);
	memset(bm, 0, sizeof(bm));
	rc = backend_hwpt_get_dirty_bitmap(b, m2.hwpt, AREA1_IOVA, 64 * PG,
					   PG, bm, 0);
	check(!rc && bm[0] == 1, "adopted: a clearing read of area 1's "
	      "first 64 pages gives page 0 (%#llx)",
	      (unsigned long long)bm[0]);
	rc = backend_dma_write(b, m2.dev_track, AREA1_IOVA + 5 * PG, PG);
	memset(bm, 0, sizeof(bm));
	rc |= backend_hwpt_get_dirty_bitmap(b, m2.hwpt, AREA1_IOVA, 64 * PG,
					    PG, bm, 0);
	check(!rc && bm[0] == 1ULL << 5, "adopted: DMA by the adopted device "
	      "is tracked (%#llx)", (unsigned long long)bm[0]);

	/* New objects, new ids. */
	iova = 128 * MIB;
	rc = backend_ioas_map(b, m2.ioas, MAP_RW, mem, 2 * MIB, &iova);
	rc |= backend_dma_write(b, m2.dev_track, iova, PG);
	memset(bm, 0, sizeof(bm));
	rc |= backend_hwpt_get_dirty_bitmap(b, m2.hwpt, iova, 64 * PG, PG, bm,
					    0);
	check(!rc && bm[0] == 1, "adopted: a new mapping is tracked");
	rc = backend_ioas_alloc(b, &ioas2);
	check(!rc && ioas2 != m2.ioas && ioas2 != m2.hwpt &&
	      ioas2 != m2.dev_track && ioas2 != m2.dev_auto,
	      "adopted: a new IOAS gets a new id (%u)", ioas2);
	check(backend_destroy(b, ioas2) == 0, "adopted: destroy it");
	check(backend_device_detach(b, m2.dev_track) == 0 &&
	      backend_destroy(b, m2.hwpt) == 0,
	      "adopted: detach, destroy the HWPT");
	check(backend_device_unbind(b, m2.dev_auto) == 0,
	      "adopted: unbind the auto-domain device");
	backend_close(b);
out:
	printf("%u checks, %u failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
