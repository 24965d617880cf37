// SPDX-License-Identifier: MIT
/*
 * VFIO device DMA logging on the sim's devices: VFIO_DEVICE_FEATURE
 * DMA_LOGGING_START, _REPORT and _STOP (drivers/vfio/vfio_main.c,
 * Linux 6.12), with the log_ops of a variant driver (mlx5's and pds's,
 * which agree where it matters here) for a device with @dma_logging, and
 * mtty's (samples/vfio-mdev/mtty.c) for an emulated one.
 *
 * Owns: the simulated devices' DMA logs (what START takes, what DMA
 * records, what REPORT hands out and clears).
 *
 * Every call, in the kernel's order:
 *
 *   unknown or unbound dev_id                 -ENOENT (the sim's handle;
 *                                             on the kernel a closed fd)
 *   a device without log_ops (no @dma_logging)  -ENOTTY, for PROBE, START,
 *                                             REPORT and STOP alike
 *   PROBE                                     0 (vfio_check_feature())
 *
 *   START (vfio_ioctl_device_feature_logging_start()):
 *     no range                                -EINVAL
 *     more than LOG_MAX_RANGES (256: a page of ranges)  -E2BIG
 *     then each range in the caller's order (they need not be sorted):
 *       iova or length not IS_ALIGNED() to page_size  -EINVAL (a mask
 *         test, so a page size that is not a power of two is not refused
 *         here; 0 lets only iova 0, length 0 through)
 *       iova + length wraps                   -EOVERFLOW
 *       overlaps a range before it            -EINVAL
 *     deviation: a zero-length range is -EINVAL here (the kernel passes it
 *     to the driver as a node whose last is before its start; what mlx5's
 *     and pds's firmware answer is unknown)
 *     then the driver (mlx5vf_start_page_tracker(), pds_vfio_dirty_enable()):
 *       already started                       -EINVAL (both drivers; pds
 *         answers -EEXIST only when its firmware has regions the driver
 *         forgot, which cannot happen here)
 *       more ranges than the device takes (@dma_log_max_ranges)  not an
 *         error: both drivers combine them, vfio_combine_iova_ranges()
 *         (one range: first start to last end; else merge the pair with
 *         the smallest gap, the first such pair, until few enough), and
 *         the device then logs the gaps too
 *       the page size: ilog2() of it (rounded down to a power of two),
 *         raised to the device's granule (@dma_log_page_size; mlx5 clamps
 *         to pg_track_log_min_page_size, the sim models no maximum), and
 *         written back
 *       the log's memory cannot be had        -ENOMEM
 *   REPORT (vfio_ioctl_device_feature_logging_report()):
 *     page_size below 4 KiB or not a power of two  -EINVAL
 *     iova + length wraps                     -EOVERFLOW
 *     then the driver (pds_vfio_dirty_sync(), mlx5vf_tracker_read_and_clear()):
 *       not started                           -EINVAL
 *       length 0, or the range not inside one logged (combined) range
 *                                             -EINVAL (pds; mlx5 asks its
 *                                             firmware, which the sim
 *                                             takes to agree)
 *     each log page (granule) of the range that the device wrote since
 *     START or the last report is taken (atomically: a write racing the
 *     report is in this one or the next) and recorded with
 *     iova_bitmap_set(page, log page size): a granule coarser than the
 *     caller's page sets each of its pages, a finer one the page that
 *     holds it.  A log page that reaches outside the range (a report not
 *     aligned to the log's page size) is recorded as the release decides
 *     (kernel/sim/kernel.h record_bounds: refused, -EPROTO; before,
 *     clipped), its bit cleared all the same, and counted as a
 *     version-dependent read.  There is no NO_CLEAR.
 *   STOP: 0, started or not (both drivers); the log is forgotten.
 *   Unbinding the device stops it too (the drivers' close_device()).
 *
 * An emulated device with @dma_logging has mtty's log_ops: the checks of
 * vfio_main.c above, then START 0 (the page size left as it was, started
 * twice 0), REPORT 0 with no bit set (before START too), STOP 0.  mtty
 * performs no DMA; the sim's emulated devices write through their access
 * (device.c), and no log or HWPT sees it.
 *
 * The log lives in the host's region like everything else: START and STOP
 * are structural changes (host.c brackets them), the bits flip atomically,
 * and an adopted host has the logs, started or not, with their bits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/sim/sim_private.h"

#define SIM_LOG_MIN_PAGE SIM_PAGE_SIZE_4K

/* The bound device @dev_id, its lock held (for write with @write), or NULL
 * (-ENOENT). */
static struct sim_device *sim_log_dev(struct sim_host *h, uint32_t dev_id,
				      bool write)
{
	struct sim_device *dev = sim_dev_find(h, dev_id);

	if (!dev)
		return NULL;
	if (write)
		pthread_rwlock_wrlock(&dev->lock);
	else
		pthread_rwlock_rdlock(&dev->lock);
	if (dev->bound_id != dev_id) {
		pthread_rwlock_unlock(&dev->lock);
		return NULL;
	}
	return dev;
}

int sim_dma_log_probe(struct backend *b, uint32_t dev_id)
{
	struct sim_device *dev = sim_log_dev(to_sim_host(b), dev_id, false);
	int rc;

	if (!dev)
		return -ENOENT;
	rc = dev->dma_logging ? 0 : -ENOTTY;
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}

void sim_dma_log_free(struct sim_device *dev)
{
	struct sim_region *r = dev->host->region;
	struct sim_dma_log *log = &dev->log;
	uint32_t i;

	if (!log->active)
		return;
	for (i = 0; i < log->n_ranges; i++)
		sim_mem_free(r, log->ranges[i].bits,
			     log->ranges[i].n_words * sizeof(uint64_t));
	sim_mem_free(r, log->ranges, log->n_ranges * sizeof(*log->ranges));
	memset(log, 0, sizeof(*log));
}

/* One range of START: [iova, last]. */
struct sim_log_node {
	uint64_t iova;
	uint64_t last;
};

static int sim_log_node_cmp(const void *a, const void *b)
{
	const struct sim_log_node *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* vfio_combine_iova_ranges() on @n sorted nodes, down to @req. */
static uint32_t sim_log_combine(struct sim_log_node *nodes, uint32_t n,
				uint32_t req)
{
	if (req == 1) {
		nodes[0].last = nodes[n - 1].last;
		return 1;
	}
	while (n > req) {
		uint64_t min_gap = UINT64_MAX;
		uint32_t i, at = 0;

		for (i = 1; i < n; i++) {
			uint64_t gap = nodes[i].iova - nodes[i - 1].last;

			if (gap < min_gap) {
				min_gap = gap;
				at = i;
			}
		}
		nodes[at - 1].last = nodes[at].last;
		memmove(&nodes[at], &nodes[at + 1],
			(n - at - 1) * sizeof(*nodes));
		n--;
	}
	return n;
}

/* The checks of vfio_ioctl_device_feature_logging_start() before the
 * driver, filling @nodes in the caller's order. */
static int sim_log_check_ranges(uint64_t page_size,
				const struct backend_dma_log_range *ranges,
				uint32_t nranges, struct sim_log_node *nodes)
{
	uint32_t i, j;

	for (i = 0; i < nranges; i++) {
		uint64_t iova = ranges[i].iova, len = ranges[i].length, end;

		/* IS_ALIGNED(): ((x) & ((a) - 1)) == 0 */
		if ((iova & (page_size - 1)) || (len & (page_size - 1)))
			return -EINVAL;
		if (__builtin_add_overflow(iova, len, &end))
			return -EOVERFLOW;
		if (!len)
			return -EINVAL;	/* deviation: see the top */
		nodes[i] = (struct sim_log_node){ iova, end - 1 };
		for (j = 0; j < i; j++)
			if (nodes[j].iova <= nodes[i].last &&
			    nodes[i].iova <= nodes[j].last)
				return -EINVAL;	/* Range overlapping */
	}
	return 0;
}

/* The driver's log_start(): the tracker over @n sorted @nodes. */
static int sim_log_tracker_start(struct sim_device *dev,
				 struct sim_log_node *nodes, uint32_t n,
				 uint64_t *page_size)
{
	struct sim_region *r = dev->host->region;
	uint32_t max = dev->log_max_ranges ?: BACKEND_DMA_LOG_MAX_RANGES;
	uint64_t granule = dev->log_granule ?: SIM_LOG_MIN_PAGE;
	struct sim_log_range *lr;
	unsigned int shift;
	uint32_t i;

	if (dev->log.active)
		return -EINVAL;
	if (n > max)
		n = sim_log_combine(nodes, n, max);
	/* mlx5: ilog2(*page_size), at least pg_track_log_min_page_size */
	shift = 63 - (unsigned int)__builtin_clzll(*page_size);
	if (shift < (unsigned int)__builtin_ctzll(granule))
		shift = (unsigned int)__builtin_ctzll(granule);

	lr = sim_mem_alloc(r, n * sizeof(*lr));
	if (!lr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		uint64_t pages = (nodes[i].last >> shift) -
				 (nodes[i].iova >> shift) + 1;

		lr[i] = (struct sim_log_range){
			.iova = nodes[i].iova,
			.last = nodes[i].last,
			.n_words = pages / 64 + (pages % 64 != 0),
		};
		if (lr[i].n_words > SIZE_MAX / sizeof(uint64_t))
			lr[i].bits = NULL;
		else
			lr[i].bits = sim_mem_alloc(r, lr[i].n_words *
						      sizeof(uint64_t));
		if (!lr[i].bits) {
			while (i--)
				sim_mem_free(r, lr[i].bits,
					     lr[i].n_words * sizeof(uint64_t));
			sim_mem_free(r, lr, n * sizeof(*lr));
			return -ENOMEM;
		}
	}
	dev->log = (struct sim_dma_log){
		.active = true,
		.pgshift = shift,
		.n_ranges = n,
		.ranges = lr,
	};
	*page_size = 1ULL << shift;
	return 0;
}

int sim_dma_log_start(struct backend *b, uint32_t dev_id,
		      uint64_t *page_size,
		      const struct backend_dma_log_range *ranges,
		      uint32_t nranges)
{
	struct sim_log_node *nodes = NULL;
	struct sim_device *dev;
	int rc;

	dev = sim_log_dev(to_sim_host(b), dev_id, true);
	if (!dev)
		return -ENOENT;
	if (!dev->dma_logging) {
		rc = -ENOTTY;
		goto out_unlock;
	}
	if (!page_size || (nranges && !ranges)) {
		rc = -EFAULT;	/* copy_from_user() */
		goto out_unlock;
	}
	if (!nranges) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (nranges > BACKEND_DMA_LOG_MAX_RANGES) {
		rc = -E2BIG;
		goto out_unlock;
	}
	nodes = calloc(nranges, sizeof(*nodes));
	if (!nodes) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = sim_log_check_ranges(*page_size, ranges, nranges, nodes);
	if (rc || dev->emulated)
		goto out_unlock;	/* mtty_log_start(): 0, nothing kept */
	/* the interval tree hands the driver the ranges in IOVA order */
	qsort(nodes, nranges, sizeof(*nodes), sim_log_node_cmp);
	rc = sim_log_tracker_start(dev, nodes, nranges, page_size);
out_unlock:
	pthread_rwlock_unlock(&dev->lock);
	free(nodes);
	return rc;
}

int sim_dma_log_stop(struct backend *b, uint32_t dev_id)
{
	struct sim_device *dev;
	int rc = 0;

	dev = sim_log_dev(to_sim_host(b), dev_id, true);
	if (!dev)
		return -ENOENT;
	if (!dev->dma_logging)
		rc = -ENOTTY;
	else
		sim_dma_log_free(dev);	/* nothing for mtty */
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}

/* The bits of word @w that are in [@first, @last]. */
static inline uint64_t sim_log_mask(uint64_t w, uint64_t first, uint64_t last)
{
	uint64_t mask = ~0ULL;

	if (w == first / 64)
		mask &= ~0ULL << (first % 64);
	if (w == last / 64)
		mask &= ~0ULL >> (63 - last % 64);
	return mask;
}

/* Set bits [@first, @last] of @bits with atomic ORs. */
static void sim_log_set(uint64_t *bits, uint64_t first, uint64_t last)
{
	uint64_t w;

	for (w = first / 64; w <= last / 64; w++) {
		uint64_t mask = sim_log_mask(w, first, last);

		if ((__atomic_load_n(&bits[w], __ATOMIC_RELAXED) & mask) !=
		    mask)
			__atomic_fetch_or(&bits[w], mask, __ATOMIC_RELAXED);
	}
}

void sim_dma_log_record(struct sim_device *dev, uint64_t iova, uint64_t last)
{
	const struct sim_dma_log *log = &dev->log;
	unsigned int sh = log->pgshift;
	uint32_t i;

	if (!log->active)
		return;
	for (i = 0; i < log->n_ranges; i++) {
		const struct sim_log_range *r = &log->ranges[i];
		uint64_t a, e, base;

		if (r->last < iova)
			continue;
		if (r->iova > last)
			break;
		a = iova > r->iova ? iova : r->iova;
		e = last < r->last ? last : r->last;
		base = r->iova >> sh;
		sim_log_set(r->bits, (a >> sh) - base, (e >> sh) - base);
	}
}

/* The logged range that holds [@iova, @last] whole, or NULL. */
static const struct sim_log_range *sim_log_range_of(const struct sim_dma_log
						    *log, uint64_t iova,
						    uint64_t last)
{
	uint32_t i;

	for (i = 0; i < log->n_ranges; i++)
		if (log->ranges[i].iova <= iova && last <= log->ranges[i].last)
			return &log->ranges[i];
	return NULL;
}

/* Take log pages [@first, @last] of @r (bit numbers) and record them. */
static void sim_log_take(const struct sim_log_range *r, unsigned int sh,
			 uint64_t first, uint64_t last,
			 struct sim_dirty_bitmap *dirty)
{
	uint64_t w, base = r->iova >> sh;

	for (w = first / 64; w <= last / 64; w++) {
		uint64_t mask = sim_log_mask(w, first, last), got;

		if (!(__atomic_load_n(&r->bits[w], __ATOMIC_RELAXED) & mask))
			continue;
		got = __atomic_fetch_and(&r->bits[w], ~mask,
					 __ATOMIC_RELAXED) & mask;
		while (got) {
			uint64_t bit = w * 64 + (uint64_t)__builtin_ctzll(got);

			got &= got - 1;
			sim_dirty_record(dirty, (base + bit) << sh, 1ULL << sh);
		}
	}
}

int sim_dma_log_report(struct backend *b, uint32_t dev_id, uint64_t iova,
		       uint64_t length, uint64_t page_size, uint64_t *bitmap)
{
	struct sim_host *h = to_sim_host(b);
	const struct sim_log_range *r;
	struct sim_dirty_bitmap dirty;
	struct sim_device *dev;
	uint64_t end, last;
	unsigned int sh;
	int rc = 0;

	dev = sim_log_dev(h, dev_id, false);
	if (!dev)
		return -ENOENT;
	if (!dev->dma_logging) {
		rc = -ENOTTY;
		goto out_unlock;
	}
	if (page_size < SIM_LOG_MIN_PAGE || (page_size & (page_size - 1))) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (__builtin_add_overflow(iova, length, &end)) {
		rc = -EOVERFLOW;
		goto out_unlock;
	}
	if (dev->emulated)
		goto out_unlock;	/* mtty_log_read_and_clear(): 0 */
	if (!dev->log.active || !length) {
		rc = -EINVAL;
		goto out_unlock;
	}
	last = end - 1;
	r = sim_log_range_of(&dev->log, iova, last);
	if (!r) {
		rc = -EINVAL;
		goto out_unlock;
	}
	sh = dev->log.pgshift;
	dirty = (struct sim_dirty_bitmap){
		.data = (uint8_t *)bitmap,
		.iova = iova,
		.last = last,
		.pgshift = (unsigned int)__builtin_ctzll(page_size),
		.bounds = sim_kernel_has(&h->kernel, SIM_KB_RECORD_BOUNDS),
	};
	sim_log_take(r, sh, (iova >> sh) - (r->iova >> sh),
		     (last >> sh) - (r->iova >> sh), &dirty);
	if (dirty.overruns)
		sim_version_dependent(h, "DMA logging REPORT",
				      "ends inside a log page", iova, length);
	/* iova_bitmap_for_each(): a record refused (record_bounds only) */
	rc = dirty.err;
out_unlock:
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}

int sim_dma_log_check(const struct sim_host *h, const struct sim_device *dev)
{
	const struct sim_region *r = h->region;
	const struct sim_dma_log *log = &dev->log;
	uint64_t lo = r->base, hi = r->base + r->size;
	uint32_t i;

#define SIM_IN_REGION(p) \
	((uintptr_t)(p) >= lo && (uintptr_t)(p) < hi)
	if (dev->access_ioas && (!dev->emulated || !dev->bound_id ||
				 !SIM_IN_REGION(dev->access_ioas) ||
				 dev->access_ioas->obj.type != SIM_OBJ_IOAS))
		return -EUCLEAN;
	if (!log->active)
		return 0;
	if (!dev->bound_id || !dev->dma_logging || dev->emulated ||
	    !log->n_ranges || log->n_ranges > BACKEND_DMA_LOG_MAX_RANGES ||
	    log->pgshift < 12 || log->pgshift > 63 ||
	    !SIM_IN_REGION(log->ranges))
		return -EUCLEAN;
	for (i = 0; i < log->n_ranges; i++)
		if (!SIM_IN_REGION(log->ranges[i].bits) ||
		    log->ranges[i].last < log->ranges[i].iova)
			return -EUCLEAN;
#undef SIM_IN_REGION
	return 0;
}
