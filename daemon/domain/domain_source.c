// SPDX-License-Identifier: MIT
/*
 * A domain's sources of dirty bits (issue 17): IOMMU HWPTs with dirty
 * tracking, one or several per IOAS, and devices that log their own DMA
 * (VFIO DMA_LOGGING_START / _REPORT / _STOP).  Each round reads every
 * source into the one round bitmap (the harvest engine, batch by batch,
 * one source after the other: harvest.h), so subscribers see one stream
 * of ranges whatever the sources.
 *
 * Owns: how each device of a tracking domain is seen (the rule below),
 * and that every device of a tracking domain is seen by a source, or
 * accepted "all dirty" only when the client asked (PROTO_CREATE_ALL_DIRTY).
 *
 * The rule, per device, in QEMU's order of preference (hw/vfio:
 * vfio_devices_all_device_dirty_tracking() /
 * vfio_dirty_tracking_devices_is_supported() prefer device logging,
 * the IOMMU's dirty tracking next, "everything dirty" last): its DMA log if
 * it has one (DMA_LOGGING_START probed), else its IOMMU's dirty bits
 * (IOMMU_HW_CAP_DIRTY_TRACKING), else refused, or all dirty with
 * PROTO_CREATE_ALL_DIRTY.  QEMU decides for a whole container (device
 * logging only if every device has it, else the IOMMU for all, else
 * everything dirty); dirtyd decides per device, which it can because the
 * sources' bits are ORed: where QEMU tracks, dirtyd tracks the same way,
 * and a mixed domain QEMU would take as all dirty is tracked.  dirtyd.conf's
 * dirty_source (iommu, device) or CREATE_DOMAIN's SOURCE_IOMMU /
 * SOURCE_DEVICE narrow it to one kind.
 *
 * Who touches them: the loop, while the domain is idle (attach, detach,
 * tracking, rounds' counts), except a log's started ranges and restarts,
 * which a MAP's change thread re-starts (domain_sources_mapped()); while a
 * change runs, the loop reads none of it (LIST_SOURCES waits, METRICS
 * leaves the domain's sources out).
 *
 * HWPTs: a device to be tracked by its IOMMU joins a tracking HWPT of the
 * domain that takes it, else gets one of its own over the same IOAS (a
 * device behind another IOMMU: QEMU's iommufd_cdev_autodomains_get());
 * other devices join a plain HWPT likewise (an emulated device that has
 * none is attached to the IOAS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain_private.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"

static const char *const dev_source_names[] = {
	[DOMAIN_DEV_UNTRACKED] = "untracked",
	[DOMAIN_DEV_IOMMU] = "IOMMU dirty bits",
	[DOMAIN_DEV_DMA_LOG] = "DMA logging",
	[DOMAIN_DEV_ALL_DIRTY] = "all dirty",
};

/* The kinds @d may use: CREATE_DOMAIN's SOURCE_* flags, else the
 * configuration's. */
static enum config_dirty_source domain_rule(const struct domain *d)
{
	uint32_t f = d->create_flags & (PROTO_CREATE_SOURCE_IOMMU |
					PROTO_CREATE_SOURCE_DEVICE);

	if (f == PROTO_CREATE_SOURCE_IOMMU)
		return CONFIG_SOURCE_IOMMU;
	if (f == PROTO_CREATE_SOURCE_DEVICE)
		return CONFIG_SOURCE_DEVICE;
	return d->srv->cfg->dirty_source;
}

static struct domain_source *source_add(struct domain *d,
					enum domain_source_kind kind,
					uint32_t id, const char *device)
{
	struct domain_source *s;

	if (d->nsources >= DOMAIN_MAX_SOURCES)
		return NULL;
	s = realloc(d->sources, (d->nsources + 1) * sizeof(*s));
	if (!s)
		return NULL;
	d->sources = s;
	s = &d->sources[d->nsources++];
	*s = (struct domain_source){ .kind = kind, .id = id };
	snprintf(s->device, sizeof(s->device), "%s", device);
	return s;
}

static void source_del(struct domain *d, struct domain_source *s)
{
	size_t i = (size_t)(s - d->sources);

	free(s->ranges);
	memmove(s, s + 1, (d->nsources - i - 1) * sizeof(*s));
	d->nsources--;
}

static struct domain_source *source_find(struct domain *d,
					 enum domain_source_kind kind,
					 uint32_t id)
{
	for (size_t i = 0; i < d->nsources; i++)
		if (d->sources[i].kind == kind && d->sources[i].id == id)
			return &d->sources[i];
	return NULL;
}

/* Why source_add() failed. */
static int source_full(const struct domain *d, const struct domain_device *dev,
		       struct error *e)
{
	if (d->nsources >= DOMAIN_MAX_SOURCES)
		return error_set(e, -ENOSPC, "device %s would be domain %u's "
				  "source number %d, over the most a domain "
				  "has (%d)", dev->name, d->id,
				  DOMAIN_MAX_SOURCES + 1, DOMAIN_MAX_SOURCES);
	return error_set(e, -ENOMEM, "out of memory");
}

size_t domain_sources_list(const struct domain *d, struct proto_source *out,
			   size_t max)
{
	static const uint32_t kinds[] = {
		[DOMAIN_SRC_HWPT] = PROTO_SOURCE_HWPT,
		[DOMAIN_SRC_DMA_LOG] = PROTO_SOURCE_DMA_LOG,
		[DOMAIN_SRC_PLAIN] = PROTO_SOURCE_HWPT_PLAIN,
	};
	size_t n = 0;

	for (size_t i = 0; i < d->nsources && n < max; i++) {
		const struct domain_source *s = &d->sources[i];

		out[n] = (struct proto_source){
			.domain_id = d->id,
			.kind = kinds[s->kind],
			.id = s->id,
			.devices = s->kind == DOMAIN_SRC_DMA_LOG ? 1 :
				   s->ndevices,
			.page_size = s->kind == DOMAIN_SRC_DMA_LOG ?
				     s->page_size : d->page_size,
			.ranges = s->nranges,
			.max_ranges = s->max_ranges,
			.rounds = s->rounds,
			.errors = s->errors,
			.restarts = s->restarts,
		};
		snprintf(out[n].device, sizeof(out[n].device), "%s",
			 s->device[0] ? s->device : "none");
		n++;
	}
	return n;
}

bool domain_sources_keepable(const struct domain *d)
{
	if (d->all_dirty)
		return false;
	for (size_t i = 0; i < d->nsources; i++)
		if (d->sources[i].id != d->hwpt_id ||
		    d->sources[i].kind == DOMAIN_SRC_DMA_LOG)
			return false;
	return true;
}

void domain_sources_free(struct domain *d)
{
	for (size_t i = 0; i < d->nsources; i++)
		free(d->sources[i].ranges);
	free(d->sources);
	d->sources = NULL;
	d->nsources = 0;
}

/* ------------------------------------------------------------ DMA logs */

static int gap_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

size_t domain_log_ranges(const struct backend_dma_log_range *in, size_t n,
			 size_t max, struct backend_dma_log_range *out)
{
	uint64_t *gaps, cut;
	size_t k = 0, join, equal;

	if (!n)
		return 0;
	if (n <= max) {
		memcpy(out, in, n * sizeof(*in));
		return n;
	}
	/* join the n - max smallest gaps: those below the (n - max)th
	 * smallest, then as many equal to it as are still wanted */
	gaps = malloc((n - 1) * sizeof(*gaps));
	if (!gaps) {
		/* one range over them all: always fits */
		out[0] = (struct backend_dma_log_range){
			.iova = in[0].iova,
			.length = in[n - 1].iova + in[n - 1].length - in[0].iova,
		};
		return 1;
	}
	for (size_t i = 1; i < n; i++)
		gaps[i - 1] = in[i].iova - (in[i - 1].iova + in[i - 1].length);
	qsort(gaps, n - 1, sizeof(*gaps), gap_cmp);
	join = n - max;
	cut = gaps[join - 1];
	equal = 0;
	for (size_t i = 0; i < join; i++)
		equal += gaps[i] == cut;
	free(gaps);
	out[0] = in[0];
	for (size_t i = 1; i < n; i++) {
		uint64_t gap = in[i].iova - (out[k].iova + out[k].length);

		if (gap < cut || (gap == cut && equal && equal--)) {
			out[k].length = in[i].iova + in[i].length - out[k].iova;
			continue;
		}
		out[++k] = in[i];
	}
	return k + 1;
}

/* The writeable ranges of @maps (by IOVA): those DMA can dirty. */
static struct backend_dma_log_range *log_wanted(const struct domain_mapping *m,
						size_t nmaps, size_t *n)
{
	struct backend_dma_log_range *r = calloc(nmaps + 1, sizeof(*r));

	*n = 0;
	for (size_t i = 0; r && i < nmaps; i++)
		if (!m[i].readonly)
			r[(*n)++] = (struct backend_dma_log_range){
				.iova = m[i].iova, .length = m[i].length };
	return r;
}

/*
 * START @s over @maps' writeable ranges, merged to fit the kernel's limit,
 * then, while the device says -E2BIG, to half as many (QEMU covers guest
 * RAM with two ranges; one always fits).  Nothing mapped: not started
 * (the kernel refuses no ranges), a MAP starts it.  Any thread.
 */
static int log_start(struct domain *d, struct domain_source *s,
		     const struct domain_mapping *maps, size_t nmaps)
{
	struct backend_dma_log_range *want, *r;
	size_t n, max = BACKEND_DMA_LOG_MAX_RANGES, k;
	uint64_t page_size = 0;
	int rc;

	want = log_wanted(maps, nmaps, &n);
	r = calloc(n + 1, sizeof(*r));
	if (!want || !r) {
		free(want);
		free(r);
		return -ENOMEM;
	}
	if (s->max_ranges && s->max_ranges < max)
		max = s->max_ranges;
	for (;;) {
		k = domain_log_ranges(want, n, max, r);
		if (!k) {
			rc = 0;
			break;
		}
		page_size = d->page_size;
		rc = backend_dma_log_start(d->kctx, s->id, &page_size, r,
					   (uint32_t)k);
		if (rc != -E2BIG || k == 1)
			break;
		max = k / 2 ? k / 2 : 1;
		s->max_ranges = (uint32_t)max;
	}
	free(want);
	if (rc < 0 || !k) {
		free(r);
		return rc;
	}
	free(s->ranges);
	s->ranges = r;
	s->nranges = (uint32_t)k;
	s->page_size = page_size;
	return 0;
}

static int log_stop(struct domain *d, struct domain_source *s)
{
	int r = 0;

	if (s->nranges)
		r = backend_dma_log_stop(d->kctx, s->id);
	free(s->ranges);
	s->ranges = NULL;
	s->nranges = 0;
	return r;
}

/* Do @s's started ranges cover [@iova, @iova + @length)? */
static bool log_covers(const struct domain_source *s, uint64_t iova,
		       uint64_t length)
{
	for (uint32_t i = 0; i < s->nranges; i++)
		if (s->ranges[i].iova <= iova &&
		    iova + length <= s->ranges[i].iova + s->ranges[i].length)
			return true;
	return false;
}

/* ------------------------------------------------------------ placing */

/* How @d sees @dev: its kind, or -EOPNOTSUPP (why in @e). */
static int device_how(struct domain *d, struct domain_device *dev,
		      uint64_t caps, bool attach, struct error *e)
{
	bool iommu = caps & IOMMU_HW_CAP_DIRTY_TRACKING;
	enum config_dirty_source rule = domain_rule(d);
	const char *lacks;

	if (!d->tracking_capable)
		return DOMAIN_DEV_UNTRACKED;
	if (dev->dma_logging && rule != CONFIG_SOURCE_IOMMU)
		return DOMAIN_DEV_DMA_LOG;
	if (iommu && rule != CONFIG_SOURCE_DEVICE)
		return DOMAIN_DEV_IOMMU;
	if (d->create_flags & PROTO_CREATE_ALL_DIRTY)
		return DOMAIN_DEV_ALL_DIRTY;
	switch (rule) {
	case CONFIG_SOURCE_IOMMU:
		lacks = caps & DEVICE_CAP_NO_IOMMU ?
			"the kernel answers IOMMU_GET_HW_INFO on it with ENOENT "
			"(No such file or directory): an emulated device, "
			"without an IOMMU of its own (the domain tracks by "
			"IOMMU dirty bits only)" :
			"its IOMMU lacks IOMMU_HW_CAP_DIRTY_TRACKING (the "
			"domain tracks by IOMMU dirty bits only)";
		break;
	case CONFIG_SOURCE_DEVICE:
		lacks = "it has no DMA logging (the domain tracks by device "
			"DMA logging only)";
		break;
	default:
		lacks = "its IOMMU lacks IOMMU_HW_CAP_DIRTY_TRACKING and it "
			"has no DMA logging";
		break;
	}
	if (attach)
		return error_set(e, -EINVAL, "device %s cannot join tracking "
				  "domain %u: it cannot track dirty pages: %s",
				  dev->name, d->id, lacks);
	return error_set(e, -EOPNOTSUPP, "device %s cannot track dirty pages: "
			  "%s; create a domain without tracking for it, or "
			  "with ALL_DIRTY",
			  dev->name, lacks);
}

/* A new HWPT over @d's IOAS for @dev (tracking or plain), a source of
 * @d's; its tracking turned on if @d's is.  -errno, why in @e. */
static int hwpt_new(struct domain *d, struct domain_device *dev,
		    bool tracking, struct domain_source **out,
		    struct error *e)
{
	struct backend *b = d->kctx;
	struct domain_source *s;
	uint32_t id;
	int r;

	r = backend_hwpt_alloc(b, dev->dev_id, d->ioas_id,
			       tracking ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0,
			       &id);
	if (r == -EOPNOTSUPP && tracking)
		return error_set(e, r, "device %s cannot track dirty pages (the "
				  "kernel refused a tracking HWPT); create a "
				  "domain without tracking for it", dev->name);
	if (r < 0)
		return error_set(e, r, "IOMMU_HWPT_ALLOC for device %s failed: "
				  "%s", dev->name, strerror(-r));
	if (tracking && d->enabled) {
		r = backend_hwpt_set_dirty_tracking(b, id, true);
		if (r < 0) {
			backend_destroy(b, id);
			return error_set(e, r, "IOMMU_HWPT_SET_DIRTY_TRACKING "
					  "failed: %s", strerror(-r));
		}
	}
	s = source_add(d, tracking ? DOMAIN_SRC_HWPT : DOMAIN_SRC_PLAIN, id,
		       dev->name);
	if (!s) {
		backend_destroy(b, id);
		return source_full(d, dev, e);
	}
	*out = s;
	return 0;
}

/* Attach @dev to a HWPT of @kind of @d's that takes it, else to a new
 * one; sets dev->pt_id. */
static int device_join(struct domain *d, struct domain_device *dev,
		       enum domain_source_kind kind, struct error *e)
{
	struct backend *b = d->kctx;
	struct domain_source *s = NULL;
	int r;

	for (size_t i = 0; i < d->nsources; i++) {
		s = &d->sources[i];
		if (s->kind != kind)
			continue;
		if (backend_device_attach(b, dev->dev_id, s->id) == 0)
			goto joined;
		/* another IOMMU, or other capabilities: try the next */
	}
	r = hwpt_new(d, dev, kind == DOMAIN_SRC_HWPT, &s, e);
	if (r < 0 && kind == DOMAIN_SRC_PLAIN && d->ioas_id) {
		/* an emulated device has no IOMMU of its own: the IOAS */
		r = backend_device_attach(b, dev->dev_id, d->ioas_id);
		if (r == 0) {
			dev->pt_id = d->ioas_id;
			return 0;
		}
		return error_set(e, r, "attaching device %s failed: %s",
				  dev->name, strerror(-r));
	}
	if (r < 0)
		return r;
	r = backend_device_attach(b, dev->dev_id, s->id);
	if (r < 0) {
		backend_destroy(b, s->id);
		source_del(d, s);
		if (r == -EINVAL && kind == DOMAIN_SRC_HWPT)
			return error_set(e, r, "device %s cannot join tracking "
					  "domain %u: the kernel refused the "
					  "attach", dev->name, d->id);
		return error_set(e, r, "attaching device %s failed: %s",
				  dev->name, strerror(-r));
	}
joined:
	s->ndevices++;
	dev->pt_id = s->id;
	if (!d->hwpt_id)
		d->hwpt_id = s->id;
	return 0;
}

int domain_device_place(struct domain *d, struct domain_device *dev,
			uint64_t caps, struct error *e)
{
	bool attach = d->ndevices > 0;
	struct domain_source *s = NULL;
	int how, r;

	dev->dma_logging = backend_dma_log_probe(d->kctx, dev->dev_id) == 0;
	how = device_how(d, dev, caps, attach, e);
	if (how < 0)
		return how;
	r = device_join(d, dev, how == DOMAIN_DEV_IOMMU ? DOMAIN_SRC_HWPT :
			DOMAIN_SRC_PLAIN, e);
	if (r < 0)
		return r;
	dev->how = how;
	if (how == DOMAIN_DEV_DMA_LOG) {
		s = source_add(d, DOMAIN_SRC_DMA_LOG, dev->dev_id, dev->name);
		if (!s) {
			r = source_full(d, dev, e);
			goto undo;
		}
		r = d->enabled ? log_start(d, s, d->maps, d->nmaps) : 0;
		if (r < 0) {
			source_del(d, s);
			error_set(e, r, "DMA_LOGGING_START on device %s failed: "
				  "%s", dev->name, strerror(-r));
			goto undo;
		}
	}
	if (how == DOMAIN_DEV_ALL_DIRTY)
		d->all_dirty++;
	if (d->plan && domain_sources_apply(d, d->plan) < 0) {
		r = error_set(e, -ENOMEM, "out of memory");
		backend_device_detach(d->kctx, dev->dev_id);
		domain_device_unplace(d, dev);
		return r;
	}
	log_info("domain %u: device %s seen by %s", d->id, dev->name,
		 dev_source_names[how]);
	return 0;
undo:
	backend_device_detach(d->kctx, dev->dev_id);
	dev->how = DOMAIN_DEV_UNTRACKED;
	domain_device_unplace(d, dev);
	return r;
}

void domain_device_unplace(struct domain *d, struct domain_device *dev)
{
	/* (detached already) */
	struct domain_source *s;

	if (dev->how == DOMAIN_DEV_DMA_LOG) {
		s = source_find(d, DOMAIN_SRC_DMA_LOG, dev->dev_id);
		if (s) {
			int r = log_stop(d, s);

			if (r < 0)
				log_warning_errno(r, "domain %u: DMA_LOGGING_STOP"
						  " on device %s failed", d->id,
						  dev->name);
			source_del(d, s);
		}
	}
	if (dev->how == DOMAIN_DEV_ALL_DIRTY && d->all_dirty)
		d->all_dirty--;
	s = source_find(d, DOMAIN_SRC_HWPT, dev->pt_id);
	if (!s)
		s = source_find(d, DOMAIN_SRC_PLAIN, dev->pt_id);
	if (s && s->ndevices)
		s->ndevices--;
	/* the first HWPT stays: the state names it (GET_FDS too) */
	if (s && !s->ndevices && s->id != d->hwpt_id &&
	    backend_destroy(d->kctx, s->id) >= 0)
		source_del(d, s);
	dev->pt_id = 0;
	if (d->plan && !d->plan->pending)
		(void)domain_sources_apply(d, d->plan);
}

int domain_sources_restored(struct domain *d)
{
	struct domain_device *dev;
	struct domain_source *s;

	if (!d->hwpt_id)
		return 0;
	s = source_add(d, d->tracking_capable ? DOMAIN_SRC_HWPT :
		       DOMAIN_SRC_PLAIN, d->hwpt_id,
		       d->ndevices ? domain_first_device(d)->name : "none");
	if (!s)
		return -ENOMEM;
	list_for_each_entry(dev, &d->devices, link) {
		dev->how = d->tracking_capable ? DOMAIN_DEV_IOMMU :
			   DOMAIN_DEV_UNTRACKED;
		dev->pt_id = d->hwpt_id;
		s->ndevices++;
	}
	return 0;
}

/* ------------------------------------------------------------ rounds */

int domain_sources_track(struct domain *d, bool enable, struct error *e)
{
	struct backend *b = d->kctx;
	size_t i;
	int r = 0;

	for (i = 0; i < d->nsources; i++) {
		struct domain_source *s = &d->sources[i];

		if (s->kind == DOMAIN_SRC_HWPT)
			r = backend_hwpt_set_dirty_tracking(b, s->id, enable);
		else if (s->kind == DOMAIN_SRC_DMA_LOG && enable)
			r = log_start(d, s, d->maps, d->nmaps);
		else if (s->kind == DOMAIN_SRC_DMA_LOG)
			r = log_stop(d, s);
		if (r < 0)
			break;
	}
	if (r >= 0)
		return 0;
	error_set(e, r, "%s on the %s of device %s failed: %s",
		  d->sources[i].kind == DOMAIN_SRC_HWPT ?
		  "IOMMU_HWPT_SET_DIRTY_TRACKING" : enable ?
		  "DMA_LOGGING_START" : "DMA_LOGGING_STOP",
		  d->sources[i].kind == DOMAIN_SRC_HWPT ? "HWPT" : "DMA log",
		  d->sources[i].device, strerror(-r));
	/* all or nothing: back as it was (a stop that fails goes on) */
	if (enable)
		while (i--) {
			struct domain_source *s = &d->sources[i];

			if (s->kind == DOMAIN_SRC_HWPT)
				backend_hwpt_set_dirty_tracking(b, s->id,
								false);
			else if (s->kind == DOMAIN_SRC_DMA_LOG)
				log_stop(d, s);
		}
	return r;
}

int domain_sources_apply(struct domain *d, struct harvest_domain *plan)
{
	struct harvest_source src[HARVEST_MAX_SOURCES];
	size_t n = 0;

	for (size_t i = 0; i < d->nsources && n < HARVEST_MAX_SOURCES; i++) {
		const struct domain_source *s = &d->sources[i];

		if (s->kind == DOMAIN_SRC_PLAIN)
			continue;
		src[n++] = (struct harvest_source){
			.kind = s->kind == DOMAIN_SRC_HWPT ? BACKEND_READ_HWPT :
				BACKEND_READ_DMA_LOG,
			.id = s->id,
		};
	}
	return harvest_domain_set_sources(plan, src, n);
}

void domain_sources_round(struct domain *d, int result)
{
	struct harvest_domain *p = d->plan;

	for (size_t i = 0; p->sources && i < p->nsources; i++) {
		struct harvest_source *h = &p->sources[i];
		struct domain_source *s;
		uint64_t errors = __atomic_exchange_n(&h->errors, 0,
						      __ATOMIC_RELAXED);

		s = source_find(d, h->kind == BACKEND_READ_HWPT ?
				DOMAIN_SRC_HWPT : DOMAIN_SRC_DMA_LOG, h->id);
		if (!s)
			continue;
		s->errors += errors;
		if (result >= 0)
			s->rounds++;
	}
}

/* ------------------------------------------------------------ changes */

/* Every page of each run of bits in @bits (bit 0: @iova) pending in every
 * set of @c. */
static void mark_runs(struct domain_change *c, const uint64_t *bits,
		      uint64_t npages, uint64_t iova, uint64_t page_size)
{
	uint64_t p = 0;

	while (p < npages) {
		uint64_t w = bits[p / 64] >> (p % 64), q;

		if (!w) {
			p = (p / 64 + 1) * 64;
			continue;
		}
		p += (uint64_t)__builtin_ctzll(w);
		if (p >= npages)
			break;
		for (q = p; q < npages && (bits[q / 64] >> (q % 64)) & 1; q++)
			;
		for (size_t i = 0; i < c->nsubs; i++)
			subscriber_snap_mark(&c->subs[i].snap,
					     iova + p * page_size,
					     (q - p) * page_size);
		p = q;
	}
}

int domain_sources_read(struct domain_change *c, uint64_t iova,
			uint64_t length)
{
	struct domain *d = c->d;
	uint64_t ps = d->page_size, window = ps * HARVEST_WINDOW_BITS;
	uint64_t *bits, x = iova, end = iova + length;
	int r = 0;

	bits = malloc(HARVEST_WINDOW_BITS / 8);
	if (!bits)
		return -ENOMEM;
	/* windows cut at multiples of the window (1 GiB aligned at least):
	 * no read ends inside a huge leaf but at the range's end */
	while (x < end && r >= 0) {
		uint64_t cut = (x | (window - 1)) + 1;
		uint64_t stop = (cut && cut < end) ? cut : end;
		uint64_t n = (stop - x) / ps;

		memset(bits, 0, (n + 63) / 64 * 8);
		for (size_t i = 0; i < d->nsources && r >= 0; i++) {
			const struct domain_source *s = &d->sources[i];

			if (s->kind == DOMAIN_SRC_HWPT)
				r = backend_hwpt_get_dirty_bitmap(d->kctx,
					s->id, x, stop - x, ps, bits,
					IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
			else if (s->kind == DOMAIN_SRC_DMA_LOG &&
				 log_covers(s, x, stop - x))
				r = backend_dma_log_report(d->kctx, s->id, x,
							   stop - x, ps, bits);
		}
		if (r >= 0)
			mark_runs(c, bits, n, x, ps);
		x = stop;
	}
	free(bits);
	return r;
}

int domain_sources_mapped(struct domain_change *c, uint64_t iova,
			  uint64_t length)
{
	struct domain *d = c->d;
	int r = 0;

	if (!d->enabled)
		return 0;
	for (size_t i = 0; i < d->nsources && r >= 0; i++) {
		struct domain_source *s = &d->sources[i];

		if (s->kind != DOMAIN_SRC_DMA_LOG || log_covers(s, iova, length))
			continue;
		/*
		 * No START adds a range to a running log: STOP, START over
		 * every mapping.  What the device wrote after the last
		 * round's report and before the STOP is gone with the log,
		 * so every page the old ranges covered is pending again.
		 */
		for (uint32_t k = 0; k < s->nranges; k++)
			for (size_t j = 0; j < c->nsubs; j++)
				for (size_t m = 0; m < d->nmaps; m++) {
					const struct domain_mapping *mp =
						&d->maps[m];
					uint64_t a = mp->iova, z = a + mp->length;
					uint64_t ra = s->ranges[k].iova;
					uint64_t rz = ra + s->ranges[k].length;

					if (mp->readonly)
						continue;
					a = a > ra ? a : ra;
					z = z < rz ? z : rz;
					if (a < z)
						subscriber_snap_mark(
							&c->subs[j].snap, a,
							z - a);
				}
		r = log_stop(d, s);
		if (r >= 0) {
			r = log_start(d, s, c->maps, c->nmaps);
			/* the MAP fails: the log goes on over what it
			 * covered (if even that fails, its next REPORT
			 * fails the round: its clients are told) */
			if (r < 0)
				log_start(d, s, d->maps, d->nmaps);
		}
		s->restarts++;
		if (r < 0)
			error_set(&c->err, r, "restarting DMA logging of "
				  "device %s over the new mapping failed: %s",
				  s->device, strerror(-r));
	}
	return r;
}
