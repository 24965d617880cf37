// SPDX-License-Identifier: MIT
/*
 * Dirty tracking: IOMMU_HWPT_SET_DIRTY_TRACKING and
 * IOMMU_HWPT_GET_DIRTY_BITMAP on the sim IOMMU.
 *
 * Kernel behaviours reproduced (Linux 6.12; drivers/iommu/iommufd/ unless
 * said otherwise; "the driver" is what intel/iommu.c and the mock in
 * selftest.c agree on):
 *
 *  1. Argument checks, in the kernel's order
 *     (hw_pagetable.c:iommufd_hwpt_get_dirty_bitmap(),
 *     io_pagetable.c:iopt_read_and_clear_dirty_data(),
 *     io_pagetable.c:iommufd_check_iova_range(),
 *     io_pagetable.c:iommu_read_and_clear_dirty()):
 *       flags other than NO_CLEAR                      -EOPNOTSUPP
 *       hwpt_id not a HWPT (unknown, IOAS, device)     -ENOENT
 *       length 0                                       -EINVAL
 *       iova + length - 1 wraps                        -EOVERFLOW
 *       iova or iova + length not aligned to the IOAS's
 *       iova_alignment (4 KiB)                         -EINVAL
 *       page_size 0                                    -EINVAL
 *       iova & (page_size - 1) or
 *       (iova + length) & (page_size - 1)              -EINVAL
 *       HWPT allocated without DIRTY_TRACKING (no dirty_ops; auto
 *       domains included)                              -EOPNOTSUPP
 *     page_size is not required to be a power of two: the mask test
 *     above is all the check there is, and each bit then stands for
 *     1 << __ffs(page_size) bytes (iova_bitmap.c:iova_bitmap_alloc()).
 *     Nor must it be at least the IOAS alignment: with 2 KiB pages on a
 *     4 KiB IOAS each dirty 4 KiB leaf sets two bits (the selftest's mock
 *     works that way).  iova_bitmap_alloc() fails only when the kernel is
 *     out of memory, which the ioctl turns into -ENOMEM whatever the
 *     cause; the sim allocates nothing per call, so never.
 *
 *  2. Only sets bits (iova_bitmap.c:iova_bitmap_set()): the caller zeroes
 *     the bitmap.  Bit k is the page at iova + k * page_size, in a byte
 *     array read as little-endian u64 words (any alignment of the buffer
 *     works, as the kernel pins it by bytes).
 *
 *  3. Failed walks.  Which release the host emulates decides what a read
 *     that cannot be answered whole returns (kernel/sim/kernel.c has the
 *     commits; kernel/sim/kernel.h the names):
 *       - tracking disabled: the driver's read_and_clear_dirty() returns
 *         -EINVAL before touching anything when given a bitmap
 *         (intel_iommu_read_and_clear_dirty(),
 *         selftest.c:mock_domain_read_and_clear_dirty());
 *       - a hole: io_pagetable.c:__iommu_read_and_clear_dirty() walks the
 *         areas contiguous from iova (iopt_for_each_contig_area()) and
 *         stops at the first gap with -EINVAL; areas before the gap are
 *         reported (and cleared), the rest of the range is not; if iova
 *         itself is in a hole, nothing is;
 *       - iova_bitmap_for_each() calls that walk once for the whole range;
 *         the 2 MiB bitmap windows (64 GiB of IOVA at 4 KiB) are pinned
 *         lazily inside iova_bitmap_set(), one at a time, so windows do
 *         not change where the hole stop falls.
 *     Up to 6.12.117 iommu_read_and_clear_dirty() ignored the walk's result
 *     and answered 0 (bits missing, silently); with walk_errors (6.12.118)
 *     it returns the -EINVAL.  A window that cannot be pinned drops its
 *     bits after the PTEs were cleared (iova_bitmap_set() returns when
 *     iova_bitmap_advance_to() fails).  The sim cannot fault on a user
 *     buffer; it mirrors the case it can see, a NULL bitmap: nothing
 *     recorded, the read still clears, 0.
 *
 *  4. The walk (intel_iommu_read_and_clear_dirty(), the mock's): for each
 *     leaf from the cursor, test the dirty bit, clear it unless NO_CLEAR
 *     (intel/iommu.h:dma_sl_pte_test_and_clear_dirty(): test_and_clear_bit,
 *     an atomic RMW; here an atomic fetch-and, done only on PTEs a plain
 *     load saw dirty), and iommu_dirty_bitmap_record(cursor, leaf size);
 *     the cursor then moves by the leaf size.  Consequences kept:
 *       - a dirty 2 MiB or 1 GiB leaf reports every bitmap page it
 *         covers; a dirty 4 KiB leaf in a bigger bitmap page sets that
 *         page's bit;
 *       - a range starting inside a huge leaf records from the range's
 *         start for the leaf's full size, so it runs into the next leaf's
 *         pages, and the huge leaf's bit is cleared for all of it;
 *       - a DMA write racing with a clearing read is reported by that
 *         read or left for the next one, never lost (both are atomic on
 *         the same PTE).
 *     A record that runs past the end of the range (a read ending inside
 *     a dirty huge leaf): with record_bounds (6.12.118) iova_bitmap_set()
 *     refuses it and the read returns -EPROTO after the walk (the walk's
 *     own -EINVAL wins), the leaf's bit cleared all the same.  Before,
 *     the kernel did not clip it and set bits past the last page, up to
 *     the end of the last pinned page of the user's buffer (a kernel bug);
 *     deviation: the sim clips such records to the range and never writes
 *     outside ceil(length / page_size) bits.
 *
 *  5. NO_CLEAR reads and leaves the bits.  Without it, each read ends
 *     with one IOTLB flush (iommu_iotlb_sync()); the sim has no IOTLB.
 *
 *  6. Locking (iopt_read_and_clear_dirty_data()): the whole walk holds
 *     the IOAS's iova lock for read: harvests of one HWPT or of several
 *     run side by side (and with DMA), map and unmap of the IOAS wait.
 *
 *  7. IOMMU_HWPT_SET_DIRTY_TRACKING (iommufd_hwpt_set_dirty_tracking(),
 *     io_pagetable.c:iopt_set_dirty_tracking(), iopt_clear_dirty_data()):
 *       hwpt_id not a HWPT                             -ENOENT
 *       no dirty_ops                                   -EOPNOTSUPP
 *       enable: under the iova lock for read, clear the dirty bit of
 *       every leaf of every area (the driver's read_and_clear_dirty()
 *       with no bitmap, allowed while disabled), then turn recording on;
 *       enabling an enabled HWPT clears again;
 *       disable: recording off, dirty bits stay in the PTEs.
 *     While recording is off DMA sets no dirty bit (VT-d SSADE clear in
 *     the PASID entry, the mock's MOCK_DIRTY_TRACK flag).
 *
 *  8. A zero length: -EINVAL with zero_length_einval (6.12.117); before,
 *     iova + length - 1 wraps: -EOVERFLOW for any iova but 0.  Deviation:
 *     at iova 0 that kernel went on to allocate a bitmap for 2^64 bytes;
 *     the sim answers -EINVAL (not observed on a kernel).
 *
 *  Reads whose answer depends on the release (8, a hole, tracking off, a
 *  record past the range) are counted (sim_stats.version_dependent_reads);
 *  with $DIRTYD_SIM_STRICT=1 the first one aborts the process: the daemon's
 *  tests run so, as dirtyd must never depend on them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel/sim/sim_private.h"
#include "kernel/uapi/iommufd.h"

/* The driver's read_and_clear_dirty() for one contiguous piece. */
static int sim_domain_read_and_clear_dirty(struct sim_hwpt *hwpt,
					   uint64_t iova, uint64_t length,
					   unsigned int flags,
					   struct sim_dirty_bitmap *dirty)
{
	if (!__atomic_load_n(&hwpt->tracking, __ATOMIC_ACQUIRE) && dirty)
		return -EINVAL;
	sim_pgtable_read_and_clear_dirty(&hwpt->pt, iova, length, flags,
					 dirty);
	return 0;
}

/*
 * A read whose answer depends on the release: counted, and fatal under
 * $DIRTYD_SIM_STRICT (the daemon's tests).
 */
void sim_version_dependent(struct sim_host *h, const char *call,
			   const char *what, uint64_t iova, uint64_t length)
{
	__atomic_fetch_add(&h->version_dependent_reads, 1, __ATOMIC_RELAXED);
	if (!h->strict)
		return;
	fprintf(stderr, "sim: DIRTYD_SIM_STRICT: %s of "
		"[0x%" PRIx64 ", +0x%" PRIx64 ") %s: the kernels of the matrix "
		"answer it differently (kernel/sim/kernel.h)\n",
		call, iova, length, what);
	abort();
}

/* iommufd_check_iova_range() */
static int sim_check_iova_range(const struct sim_host *h, uint64_t iova,
				uint64_t length, uint64_t page_size)
{
	const uint64_t iommu_pgsize = SIM_IOVA_ALIGNMENT;
	uint64_t last_iova;

	if (!length && sim_kernel_has(&h->kernel, SIM_KB_ZERO_LENGTH_EINVAL))
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last_iova))
		return -EOVERFLOW;
	if (!length)
		return -EINVAL;	/* iova 0: see 8 above */
	if ((iova & (iommu_pgsize - 1)) ||
	    ((last_iova + 1) & (iommu_pgsize - 1)))
		return -EINVAL;
	if (!page_size)
		return -EINVAL;
	if ((iova & (page_size - 1)) || ((last_iova + 1) & (page_size - 1)))
		return -EINVAL;
	return 0;
}

/*
 * __iommu_read_and_clear_dirty(): the areas contiguous from @iova, in
 * order; -EINVAL at the first hole (which the caller ignores).
 */
static int sim_read_and_clear_contig(struct sim_hwpt *hwpt, uint64_t iova,
				     uint64_t last, unsigned int flags,
				     struct sim_dirty_bitmap *dirty)
{
	struct sim_ioas *ioas = hwpt->ioas;
	uint64_t cur = iova;
	int rc;

	for (;;) {
		const struct sim_area *area = sim_ioas_area_at(ioas, cur);
		uint64_t end;

		/* iopt_area_contig_init() / iopt_area_contig_next() */
		if (!area || (area->iova != cur && cur != iova))
			return -EINVAL;
		end = last < area->last ? last : area->last;
		rc = sim_domain_read_and_clear_dirty(hwpt, cur, end - cur + 1,
						     flags, dirty);
		if (rc)
			return rc;
		if (end == last)
			return 0;
		cur = end + 1;
	}
}

int sim_hwpt_get_dirty_bitmap(struct backend *b, uint32_t hwpt_id,
			      uint64_t iova, uint64_t length,
			      uint64_t page_size, uint64_t *bitmap,
			      uint32_t flags)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_dirty_bitmap dirty;
	struct sim_hwpt *hwpt;
	int rc, walk;

	if (flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)
		return -EOPNOTSUPP;
	hwpt = sim_hwpt_get(h, hwpt_id);
	if (!hwpt)
		return -ENOENT;

	if (!length)
		sim_version_dependent(h, "GET_DIRTY_BITMAP", "has length 0",
				      iova, length);
	rc = sim_check_iova_range(h, iova, length, page_size);
	if (rc)
		goto out_put;

	pthread_rwlock_rdlock(&hwpt->ioas->iova_lock);
	if (!hwpt->dirty_ops) {
		rc = -EOPNOTSUPP;
		goto out_unlock;
	}
	dirty = (struct sim_dirty_bitmap){
		.data = (uint8_t *)bitmap,
		.iova = iova,
		.last = iova + length - 1,
		.pgshift = (unsigned int)__builtin_ctzll(page_size),
		.bounds = sim_kernel_has(&h->kernel, SIM_KB_RECORD_BOUNDS),
	};
	walk = sim_read_and_clear_contig(hwpt, iova, iova + length - 1, flags,
					 &dirty);
	if (walk)
		sim_version_dependent(h, "GET_DIRTY_BITMAP",
				      __atomic_load_n(&hwpt->tracking,
						      __ATOMIC_ACQUIRE) ?
				      "crosses a hole" :
				      "while tracking is off",
				      iova, length);
	if (dirty.overruns)
		sim_version_dependent(h, "GET_DIRTY_BITMAP",
				      "ends inside a dirty leaf", iova, length);
	/*
	 * iova_bitmap_for_each(): the walk's error, else the first record
	 * refused; up to 6.12.117 iommu_read_and_clear_dirty() dropped both.
	 */
	if (sim_kernel_has(&h->kernel, SIM_KB_WALK_ERRORS))
		rc = walk ?: dirty.err;
out_unlock:
	pthread_rwlock_unlock(&hwpt->ioas->iova_lock);
out_put:
	sim_obj_put(h, &hwpt->obj);
	return rc;
}

/*
 * backend_dirty_read_prep(): the sim's "kernel" has no io_uring command,
 * so reader threads (kernel/ring_worker.h) stand in for io_uring's io-wq:
 * the SQE hands the read to one of them, and it posts the CQE to the
 * caller's ring when the bits are in.  Either source: a HWPT's dirty bits,
 * or (BACKEND_READ_DMA_LOG) a device's DMA logging REPORT (dmalog.c); any
 * other source is -EINVAL at prep.  Like io-wq's, they serve every
 * context of the process: one per CPU, started by the first read, living
 * as long as the process (a child of fork() starts its own).
 */
static int sim_dirty_read_work(struct ring_work *w)
{
	struct backend_dirty_read *rd = (struct backend_dirty_read *)
		((char *)w - offsetof(struct backend_dirty_read, work));

	switch (rd->source) {
	case BACKEND_READ_HWPT:
		return sim_hwpt_get_dirty_bitmap(w->ctx, rd->hwpt_id, rd->iova,
						 rd->length, rd->page_size,
						 rd->bitmap, rd->flags);
	case BACKEND_READ_DMA_LOG:
		return sim_dma_log_report(w->ctx, rd->dev_id, rd->iova,
					  rd->length, rd->page_size,
					  rd->bitmap);
	default:
		return -EINVAL;
	}
}

/* In flight per reader thread, at most (more wait in its ring's CQ). */
#define SIM_READER_DEPTH 256

static pthread_mutex_t sim_readers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring_pool *sim_readers;

/* In a child of fork(): the threads stayed with the parent. */
static void sim_readers_forget(void)
{
	sim_readers = NULL;
	pthread_mutex_init(&sim_readers_lock, NULL);
}

int sim_readers_start(struct ring_pool **out)
{
	struct ring_pool *readers;
	int rc = 0;

	readers = __atomic_load_n(&sim_readers, __ATOMIC_ACQUIRE);
	if (!readers) {
		pthread_mutex_lock(&sim_readers_lock);
		if (!sim_readers) {
			rc = ring_pool_new(0, SIM_READER_DEPTH, &readers);
			if (!rc) {
				pthread_atfork(NULL, NULL, sim_readers_forget);
				__atomic_store_n(&sim_readers, readers,
						 __ATOMIC_RELEASE);
			}
		}
		readers = sim_readers;
		pthread_mutex_unlock(&sim_readers_lock);
	}
	if (out)
		*out = readers;
	return rc;
}

int sim_dirty_read_prep(struct backend *b, struct io_uring_sqe *sqe,
			int ring_fd, struct backend_dirty_read *rd,
			uint64_t user_data)
{
	struct ring_pool *readers;
	int rc;

	if (rd->source != BACKEND_READ_HWPT &&
	    rd->source != BACKEND_READ_DMA_LOG)
		return -EINVAL;
	rc = sim_readers_start(&readers);
	if (rc)
		return rc;
	rd->work = (struct ring_work){
		.fn = sim_dirty_read_work,
		.ctx = b,
		.ring_fd = ring_fd,
		.user_data = user_data,
	};
	ring_pool_prep(readers, sqe, &rd->work);
	return 0;
}

/* iopt_clear_dirty_data(): every area, no bitmap. */
static void sim_clear_dirty_data(struct sim_hwpt *hwpt)
{
	struct sim_ioas *ioas = hwpt->ioas;
	size_t i;

	for (i = 0; i < ioas->n_areas; i++) {
		const struct sim_area *a = &ioas->areas[i];

		sim_domain_read_and_clear_dirty(hwpt, a->iova,
						a->last - a->iova + 1, 0, NULL);
	}
}

int sim_hwpt_set_dirty_tracking(struct backend *b, uint32_t hwpt_id,
				bool enable)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_hwpt *hwpt;
	int rc = 0;

	hwpt = sim_hwpt_get(h, hwpt_id);
	if (!hwpt)
		return -ENOENT;
	if (!hwpt->dirty_ops) {
		rc = -EOPNOTSUPP;
		goto out_put;
	}

	pthread_rwlock_rdlock(&hwpt->ioas->iova_lock);
	/* Clear dirty bits from PTEs to ensure a clean snapshot */
	if (enable)
		sim_clear_dirty_data(hwpt);
	__atomic_store_n(&hwpt->tracking, enable, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&hwpt->ioas->iova_lock);
out_put:
	sim_obj_put(h, &hwpt->obj);
	return rc;
}
