// SPDX-License-Identifier: MIT
/*
 * The simulated host: its devices, its object ids, the ops table.
 *
 * Object ids work as in drivers/iommu/iommufd/main.c: one id space for
 * devices, IOASes and HWPTs, the lowest free id >= 1 (xa_alloc() with
 * XA_FLAGS_ALLOC1), reserved while an object is being built and published
 * only once it cannot fail any more (iommufd_object_finalize()).  Every
 * lookup takes a reference; IOMMU_DESTROY succeeds only when the table's
 * reference is the last one, else -EBUSY (iommufd_object_remove()): an
 * IOAS is held by its HWPTs, a HWPT by its attached devices, a device by
 * its VFIO binding, and anything by a call in flight.
 *
 * Devices are the configured ones, living as long as the host; binding
 * gives one an id and unbinding takes it back.  Their objects carry no
 * reference count (the struct cannot go away; each device operation
 * checks the binding under the device's lock) and IOMMU_DESTROY of a
 * bound device is always -EBUSY, VFIO's reference being held until
 * unbind (an emulated device's id, an iommufd access, likewise: the
 * driver holds it).  A device's spec may put it behind one of several
 * IOMMU instances, make it log its DMA (dmalog.c) or make it emulated
 * (device.c).  dma_write() finds a device without the object lock (see
 * sim_dev_find()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/backend_impl.h"
#include "kernel/sim/sim_private.h"

/* xa_limit_31b */
#define SIM_OBJ_ID_MAX 0x7fffffffU

void sim_rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

/* --------------------------------------------------------------- objects */

/* _iommufd_object_alloc(): reserve the lowest free id. */
int sim_obj_alloc(struct sim_host *h, struct sim_obj *obj,
		  enum sim_obj_type type)
{
	uint32_t id;
	int rc = 0;

	*obj = (struct sim_obj){ .type = type, .users = 1 };

	pthread_mutex_lock(&h->obj_lock);
	for (id = 1; id < h->cap_objs && h->objs[id]; id++)
		;
	if (id >= h->cap_objs) {
		uint32_t cap = h->cap_objs ? 2 * h->cap_objs : 64;
		struct sim_obj **objs;

		if (id > SIM_OBJ_ID_MAX) {
			rc = -ENOSPC;
			goto out_unlock;
		}
		/* The new part comes zeroed. */
		objs = sim_mem_realloc(h->region, h->objs,
				       h->cap_objs * sizeof(*objs),
				       cap * sizeof(*objs));
		if (!objs) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		h->objs = objs;
		h->cap_objs = cap;
	}
	h->objs[id] = SIM_OBJ_RESERVED;
	obj->id = id;
out_unlock:
	pthread_mutex_unlock(&h->obj_lock);
	return rc;
}

/* iommufd_object_finalize(): publish. */
void sim_obj_finalize(struct sim_host *h, struct sim_obj *obj)
{
	pthread_mutex_lock(&h->obj_lock);
	h->objs[obj->id] = obj;
	pthread_mutex_unlock(&h->obj_lock);
}

/* iommufd_object_abort(): give back a reserved id. */
void sim_obj_abort(struct sim_host *h, struct sim_obj *obj)
{
	pthread_mutex_lock(&h->obj_lock);
	h->objs[obj->id] = NULL;
	pthread_mutex_unlock(&h->obj_lock);
}

/* iommufd_get_object(): NULL (-ENOENT) when absent or of another type. */
struct sim_obj *sim_obj_get(struct sim_host *h, uint32_t id,
			    enum sim_obj_type type)
{
	struct sim_obj *obj = NULL;

	pthread_mutex_lock(&h->obj_lock);
	if (id < h->cap_objs && h->objs[id] != SIM_OBJ_RESERVED)
		obj = h->objs[id];
	if (obj && type != SIM_OBJ_ANY && obj->type != type)
		obj = NULL;
	if (obj && obj->type != SIM_OBJ_DEVICE)
		obj->users++;
	pthread_mutex_unlock(&h->obj_lock);
	return obj;
}

/* iommufd_lock_obj(): a reference unless the object is going away. */
bool sim_obj_get_not_zero(struct sim_host *h, struct sim_obj *obj)
{
	bool ok;

	pthread_mutex_lock(&h->obj_lock);
	ok = obj->users != 0;
	if (ok)
		obj->users++;
	pthread_mutex_unlock(&h->obj_lock);
	return ok;
}

void sim_obj_ref(struct sim_host *h, struct sim_obj *obj)
{
	pthread_mutex_lock(&h->obj_lock);
	obj->users++;
	pthread_mutex_unlock(&h->obj_lock);
}

void sim_obj_put(struct sim_host *h, struct sim_obj *obj)
{
	if (obj->type == SIM_OBJ_DEVICE)
		return;
	pthread_mutex_lock(&h->obj_lock);
	obj->users--;
	pthread_mutex_unlock(&h->obj_lock);
}

/*
 * iommufd_object_put_and_try_destroy(): drop a reference and take the
 * object out of the table if only the table's is left.  True when the
 * caller must now destroy it.
 */
bool sim_obj_put_and_try_remove(struct sim_host *h, struct sim_obj *obj)
{
	bool removed = false;

	pthread_mutex_lock(&h->obj_lock);
	obj->users--;
	if (obj->users == 1 && h->objs[obj->id] == obj) {
		obj->users = 0;
		h->objs[obj->id] = NULL;
		removed = true;
	}
	pthread_mutex_unlock(&h->obj_lock);
	return removed;
}

/* Unbind: the binding goes away whatever holds the (persistent) device. */
void sim_obj_remove_device(struct sim_host *h, struct sim_obj *obj)
{
	pthread_mutex_lock(&h->obj_lock);
	if (obj->id < h->cap_objs && h->objs[obj->id] == obj)
		h->objs[obj->id] = NULL;
	pthread_mutex_unlock(&h->obj_lock);
}

/* IOMMU_DESTROY: iommufd_object_remove(ictx, NULL, id, 0). */
static int sim_destroy(struct backend *b, uint32_t id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_obj *obj = NULL;
	int rc = 0;

	pthread_mutex_lock(&h->obj_lock);
	if (id < h->cap_objs && h->objs[id] != SIM_OBJ_RESERVED)
		obj = h->objs[id];
	if (!obj) {
		rc = -ENOENT;
	} else if (obj->type == SIM_OBJ_DEVICE || obj->users != 1) {
		rc = -EBUSY;
	} else {
		obj->users = 0;
		h->objs[id] = NULL;
	}
	pthread_mutex_unlock(&h->obj_lock);
	if (rc)
		return rc;

	switch (obj->type) {
	case SIM_OBJ_IOAS:
		sim_ioas_destroy((struct sim_ioas *)obj);
		break;
	case SIM_OBJ_HWPT:
		sim_hwpt_destroy((struct sim_hwpt *)obj);
		break;
	default:
		break;
	}
	return 0;
}

static int sim_iommufd(struct backend *b)
{
	return -EOPNOTSUPP;
}

/* ------------------------------------------------------- structural ops */

/*
 * The ops that change structure run between sim_change_begin() and
 * sim_change_end(), so that a host whose process died in one of them is
 * known to be torn.  Lookups, harvests and DMA do not: the references
 * they take are recounted at adoption, the bits they flip are atomic.
 */
static int sim_op_bind(struct backend *b, const char *name,
		       uint32_t *out_dev_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dev_bind(b, name, out_dev_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_unbind(struct backend *b, uint32_t dev_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dev_unbind(b, dev_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_attach(struct backend *b, uint32_t dev_id, uint32_t pt_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dev_attach(b, dev_id, pt_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_detach(struct backend *b, uint32_t dev_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dev_detach(b, dev_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_ioas_alloc(struct backend *b, uint32_t *out_ioas_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_ioas_alloc(b, out_ioas_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_ioas_map(struct backend *b, uint32_t ioas_id,
			   uint32_t flags, void *user_va, uint64_t length,
			   uint64_t *iova)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_ioas_map(b, ioas_id, flags, user_va, length, iova);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_ioas_unmap(struct backend *b, uint32_t ioas_id,
			     uint64_t iova, uint64_t length,
			     uint64_t *out_unmapped)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_ioas_unmap(b, ioas_id, iova, length, out_unmapped);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_ioas_set_huge_pages(struct backend *b, uint32_t ioas_id,
				      bool enable)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_ioas_set_huge_pages(b, ioas_id, enable);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_hwpt_alloc(struct backend *b, uint32_t dev_id,
			     uint32_t pt_id, uint32_t flags,
			     uint32_t *out_hwpt_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_hwpt_alloc(b, dev_id, pt_id, flags, out_hwpt_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

/* Enabling clears every dirty bit before it turns recording on. */
static int sim_op_hwpt_set_dirty_tracking(struct backend *b,
					  uint32_t hwpt_id, bool enable)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_hwpt_set_dirty_tracking(b, hwpt_id, enable);
	sim_change_end(to_sim_host(b));
	return rc;
}

/* DMA logging START and STOP make or free a device's log. */
static int sim_op_dma_log_start(struct backend *b, uint32_t dev_id,
				uint64_t *page_size,
				const struct backend_dma_log_range *ranges,
				uint32_t nranges)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dma_log_start(b, dev_id, page_size, ranges, nranges);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_dma_log_stop(struct backend *b, uint32_t dev_id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_dma_log_stop(b, dev_id);
	sim_change_end(to_sim_host(b));
	return rc;
}

static int sim_op_destroy(struct backend *b, uint32_t id)
{
	int rc;

	sim_change_begin(to_sim_host(b));
	rc = sim_destroy(b, id);
	sim_change_end(to_sim_host(b));
	return rc;
}

/* ------------------------------------------------------------ open/close */

/*
 * Everything the host has is in its region: closing is releasing the
 * region for good, which gives all of its memory back at once.
 */
static void sim_close(struct backend *b)
{
	sim_region_release(to_sim_host(b)->region, true);
}

/* The objects live on in the memfd for whoever holds a kept copy. */
static void sim_leave(struct backend *b)
{
	sim_region_release(to_sim_host(b)->region, false);
}

/* Where the sim "backs" a mapping: it checks alignment, never touches. */
#define SIM_MAP_VA_BASE (1ULL << 40)

const struct backend_caps sim_kind_caps = {
	.dirty_read_async = "sim",
	.map_va_base = SIM_MAP_VA_BASE,
	.config_devices = true,
};

static void sim_caps(struct backend *b, struct backend_caps *caps)
{
	*caps = sim_kind_caps;
	caps->max_leaf = to_sim_host(b)->backing_page_size;
	caps->emulates = to_sim_host(b)->kernel.release;
}

static int sim_keep(struct backend *b, struct backend_kept_fd *fds,
		    size_t max_fds, void *blob, size_t *blob_len)
{
	if ((!fds && max_fds) || !blob_len)
		return -EINVAL;
	*blob_len = 0;
	return sim_region_keep(to_sim_host(b)->region, fds, max_fds);
}

static const struct backend_ops sim_backend_ops = {
	.name = "sim",
	.close = sim_close,
	.leave = sim_leave,
	.device_enumerate = sim_dev_enumerate,
	.device_bind = sim_op_bind,
	.device_unbind = sim_op_unbind,
	.device_get_hw_info = sim_dev_get_hw_info,
	.device_attach = sim_op_attach,
	.device_detach = sim_op_detach,
	.device_fd = sim_dev_fd,
	.ioas_alloc = sim_op_ioas_alloc,
	.ioas_iova_alignment = sim_ioas_iova_alignment,
	.ioas_map = sim_op_ioas_map,
	.ioas_unmap = sim_op_ioas_unmap,
	.ioas_set_huge_pages = sim_op_ioas_set_huge_pages,
	.hwpt_alloc = sim_op_hwpt_alloc,
	.hwpt_set_dirty_tracking = sim_op_hwpt_set_dirty_tracking,
	.hwpt_get_dirty_bitmap = sim_hwpt_get_dirty_bitmap,
	.destroy = sim_op_destroy,
	.iommufd = sim_iommufd,
	.dma_write = sim_dev_dma_write,
	.keep = sim_keep,
	.caps = sim_caps,
	.dirty_read_prep = sim_dirty_read_prep,
	.dma_log_probe = sim_dma_log_probe,
	.dma_log_start = sim_op_dma_log_start,
	.dma_log_report = sim_dma_log_report,
	.dma_log_stop = sim_op_dma_log_stop,
};

static int sim_config_check(const struct sim_config *cfg)
{
	unsigned int i, j;

	if (cfg->n_devices > SIM_MAX_DEVICES)
		return -EINVAL;
	switch (cfg->backing_page_size) {
	case 0:
	case SIM_PAGE_SIZE_4K:
	case SIM_PAGE_SIZE_2M:
	case SIM_PAGE_SIZE_1G:
		break;
	default:
		return -EINVAL;
	}
	for (i = 0; i < cfg->n_devices; i++) {
		const struct sim_device_spec *d = &cfg->devices[i];
		const char *name = d->name;

		if (!name[0] || !memchr(name, '\0', BACKEND_NAME_MAX))
			return -EINVAL;
		/* a granule: 0 (4 KiB) or a power of two from 4 KiB */
		if (d->dma_log_page_size &&
		    (d->dma_log_page_size < SIM_PAGE_SIZE_4K ||
		     d->dma_log_page_size > (1ULL << 62) ||
		     (d->dma_log_page_size & (d->dma_log_page_size - 1))))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (!strcmp(name, cfg->devices[j].name))
				return -EINVAL;
	}
	return 0;
}

/* $DIRTYD_SIM_STRICT=1: a release-dependent read aborts (dirty.c). */
static bool sim_strict_from_env(void)
{
	const char *v = getenv("DIRTYD_SIM_STRICT");

	return v && !strcmp(v, "1");
}

int sim_backend_open(const struct sim_config *cfg, struct backend **out)
{
	struct sim_kernel kernel;
	const char *release;
	struct sim_region *r;
	struct sim_host *h;
	unsigned int i;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	release = cfg->kernel;
	if (!memchr(release, '\0', sizeof(cfg->kernel)))
		return -EINVAL;
	if (!release[0])
		release = getenv("DIRTYD_SIM_KERNEL");
	if (!release || !release[0])
		release = sim_kernel_newest();
	rc = sim_config_check(cfg);
	if (rc)
		return rc;
	rc = sim_kernel_lookup(release, &kernel);
	if (rc)
		return rc;

	rc = sim_region_create(&r);
	if (rc)
		return rc;
	h = &r->host;
	h->backend.ops = &sim_backend_ops;
	h->kernel = kernel;
	h->strict = sim_strict_from_env();
	h->backing_page_size = cfg->backing_page_size ?: SIM_PAGE_SIZE_4K;
	h->n_devices = cfg->n_devices;
	pthread_mutex_init(&h->obj_lock, NULL);
	for (i = 0; i < cfg->n_devices; i++) {
		struct sim_device *dev = &h->devices[i];
		const struct sim_device_spec *d = &cfg->devices[i];

		dev->host = h;
		memcpy(dev->name, d->name, sizeof(dev->name));
		/* an emulated device has no IOMMU: neither its dirty bits nor
		 * an instance (device.c) */
		dev->emulated = d->emulated;
		dev->dirty_cap = d->dirty_tracking && !d->emulated;
		dev->iommu = d->emulated ? 0 : d->iommu;
		dev->dma_logging = d->dma_logging;
		dev->log_granule = d->dma_log_page_size ?: SIM_PAGE_SIZE_4K;
		dev->log_max_ranges = d->dma_log_max_ranges &&
				      d->dma_log_max_ranges <
				      BACKEND_DMA_LOG_MAX_RANGES ?
				      d->dma_log_max_ranges :
				      BACKEND_DMA_LOG_MAX_RANGES;
		sim_rwlock_init(&dev->lock);
	}
	/* the process's readers start with its first host, not at its first
	 * harvest (a failure is tried again at each read) */
	(void)sim_readers_start(NULL);
	*out = &h->backend;
	return 0;
}

/*
 * Whether the object table and the devices agree, in a host whose
 * @changing count was 0; -EUCLEAN if not (memory damaged behind our back).
 */
static int sim_host_check(struct sim_host *h)
{
	struct sim_region *r = h->region;
	uint64_t lo = r->base, hi = r->base + r->size;
	unsigned int i;
	uint32_t id;

#define SIM_IN_REGION(p) \
	((uintptr_t)(p) >= lo && (uintptr_t)(p) < hi)
	if (h->n_devices > SIM_MAX_DEVICES || h->cap_objs > (1U << 31) ||
	    (h->cap_objs && !SIM_IN_REGION(h->objs)))
		return -EUCLEAN;
	for (id = 1; id < h->cap_objs; id++) {
		struct sim_obj *obj = h->objs[id];

		if (!obj)
			continue;
		if (obj == SIM_OBJ_RESERVED || !SIM_IN_REGION(obj) ||
		    obj->id != id)
			return -EUCLEAN;
		if (obj->type == SIM_OBJ_HWPT) {
			struct sim_ioas *ioas = ((struct sim_hwpt *)obj)->ioas;

			if (!SIM_IN_REGION(ioas) ||
			    ioas->obj.type != SIM_OBJ_IOAS)
				return -EUCLEAN;
		}
	}
	for (i = 0; i < h->n_devices; i++) {
		struct sim_device *dev = &h->devices[i];

		if (dev->bound_id && (dev->bound_id >= h->cap_objs ||
				      h->objs[dev->bound_id] != &dev->obj))
			return -EUCLEAN;
		if (dev->hwpt && (!dev->bound_id || !SIM_IN_REGION(dev->hwpt)))
			return -EUCLEAN;
		if (sim_dma_log_check(h, dev))
			return -EUCLEAN;
	}
#undef SIM_IN_REGION
	return 0;
}

/*
 * A host whose process died: new locks, since the dead may have held the
 * old ones, and reference counts recounted from what holds what, since
 * calls in flight died holding theirs (see host.c's header).
 */
static void sim_host_revive(struct sim_host *h)
{
	unsigned int i;
	uint32_t id;

	h->backend.ops = &sim_backend_ops;
	pthread_mutex_init(&h->obj_lock, NULL);
	for (i = 0; i < h->n_devices; i++)
		sim_rwlock_init(&h->devices[i].lock);
	for (id = 1; id < h->cap_objs; id++) {
		struct sim_obj *obj = h->objs[id];

		if (!obj || obj->type == SIM_OBJ_DEVICE)
			continue;
		obj->users = 1;
		if (obj->type == SIM_OBJ_IOAS) {
			struct sim_ioas *ioas = (struct sim_ioas *)obj;

			pthread_mutex_init(&ioas->mutex, NULL);
			sim_rwlock_init(&ioas->iova_lock);
		}
	}
	for (id = 1; id < h->cap_objs; id++) {
		struct sim_obj *obj = h->objs[id];

		if (obj && obj->type == SIM_OBJ_HWPT)
			((struct sim_hwpt *)obj)->ioas->obj.users++;
	}
	for (i = 0; i < h->n_devices; i++) {
		if (h->devices[i].hwpt)
			h->devices[i].hwpt->obj.users++;
		if (h->devices[i].access_ioas)
			h->devices[i].access_ioas->obj.users++;
	}
}

int sim_backend_adopt(const struct backend_kept_fd *kept, size_t n_kept,
		      struct backend **out)
{
	struct sim_region *r;
	int rc;

	rc = sim_region_adopt(kept, n_kept, &r);
	if (rc)
		return rc;
	rc = sim_host_check(&r->host);
	if (rc) {
		sim_region_release(r, false);
		return rc;
	}
	sim_host_revive(&r->host);
	r->host.strict = sim_strict_from_env();
	(void)sim_readers_start(NULL);	/* as sim_backend_open() */
	*out = &r->host.backend;
	return 0;
}

/* ------------------------------------------------------------ sim.h API */

bool sim_backend_is(const struct backend *b)
{
	return b && b->ops == &sim_backend_ops;
}

int sim_backend_stats(struct backend *b, struct sim_stats *st)
{
	struct sim_host *h;
	uint32_t id;
	unsigned int i;

	if (!sim_backend_is(b) || !st)
		return -EINVAL;
	h = to_sim_host(b);
	*st = (struct sim_stats){
		.io_page_faults = __atomic_load_n(&h->io_page_faults,
						  __ATOMIC_RELAXED),
		.version_dependent_reads =
			__atomic_load_n(&h->version_dependent_reads,
					__ATOMIC_RELAXED),
	};
	memcpy(st->kernel, h->kernel.release, sizeof(st->kernel));
	for (i = 0; i < h->n_devices; i++)
		if (__atomic_load_n(&h->devices[i].bound_id, __ATOMIC_RELAXED))
			st->n_bound++;

	/* Objects stay alive while in the table, and the table is locked. */
	pthread_mutex_lock(&h->obj_lock);
	for (id = 1; id < h->cap_objs; id++) {
		struct sim_obj *obj = h->objs[id];
		struct sim_pgtable_stats pst;

		if (!obj || obj == SIM_OBJ_RESERVED)
			continue;
		if (obj->type == SIM_OBJ_IOAS) {
			st->n_ioas++;
		} else if (obj->type == SIM_OBJ_HWPT) {
			st->n_hwpt++;
			sim_pgtable_stats(&((struct sim_hwpt *)obj)->pt, &pst);
			st->pt.tables += pst.tables;
			st->pt.table_bytes += pst.table_bytes;
			st->pt.arena_bytes += pst.arena_bytes;
			st->pt.leaves_4k += pst.leaves_4k;
			st->pt.leaves_2m += pst.leaves_2m;
			st->pt.leaves_1g += pst.leaves_1g;
		}
	}
	pthread_mutex_unlock(&h->obj_lock);
	return 0;
}

/* The sim-only API's preamble: a sim backend and a live HWPT (referenced:
 * sim_obj_put() it), or -EINVAL / -ENOENT. */
static int sim_api_hwpt(struct backend *b, uint32_t hwpt_id, bool arg_ok,
			struct sim_host **h, struct sim_hwpt **hwpt)
{
	if (!sim_backend_is(b) || !arg_ok)
		return -EINVAL;
	*h = to_sim_host(b);
	*hwpt = sim_hwpt_get(*h, hwpt_id);
	return *hwpt ? 0 : -ENOENT;
}

int sim_hwpt_stats(struct backend *b, uint32_t hwpt_id,
		   struct sim_pgtable_stats *st)
{
	struct sim_host *h;
	struct sim_hwpt *hwpt;
	int rc;

	rc = sim_api_hwpt(b, hwpt_id, st, &h, &hwpt);
	if (rc)
		return rc;
	sim_pgtable_stats(&hwpt->pt, st);
	sim_obj_put(h, &hwpt->obj);
	return 0;
}

int sim_hwpt_lookup(struct backend *b, uint32_t hwpt_id, uint64_t iova,
		    struct sim_leaf *leaf)
{
	struct sim_host *h;
	struct sim_hwpt *hwpt;
	int rc;

	rc = sim_api_hwpt(b, hwpt_id, leaf, &h, &hwpt);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&hwpt->ioas->iova_lock);
	rc = sim_pgtable_lookup(&hwpt->pt, iova, leaf);
	pthread_rwlock_unlock(&hwpt->ioas->iova_lock);
	sim_obj_put(h, &hwpt->obj);
	return rc;
}

int sim_hwpt_for_each_table(struct backend *b, uint32_t hwpt_id,
			    sim_table_fn fn, void *ctx)
{
	struct sim_host *h;
	struct sim_hwpt *hwpt;
	int rc;

	rc = sim_api_hwpt(b, hwpt_id, fn, &h, &hwpt);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&hwpt->ioas->iova_lock);
	rc = sim_pgtable_for_each_table(&hwpt->pt, fn, ctx);
	pthread_rwlock_unlock(&hwpt->ioas->iova_lock);
	sim_obj_put(h, &hwpt->obj);
	return rc;
}

int sim_hwpt_tracking(struct backend *b, uint32_t hwpt_id, bool *enabled)
{
	struct sim_host *h;
	struct sim_hwpt *hwpt;
	int rc;

	rc = sim_api_hwpt(b, hwpt_id, enabled, &h, &hwpt);
	if (rc)
		return rc;
	*enabled = __atomic_load_n(&hwpt->tracking, __ATOMIC_ACQUIRE);
	sim_obj_put(h, &hwpt->obj);
	return 0;
}

int sim_device_hwpt(struct backend *b, uint32_t dev_id, uint32_t *hwpt_id)
{
	struct sim_device *dev;
	int rc = 0;

	if (!sim_backend_is(b) || !hwpt_id)
		return -EINVAL;
	dev = sim_dev_find(to_sim_host(b), dev_id);
	if (!dev)
		return -ENOENT;
	pthread_rwlock_rdlock(&dev->lock);
	if (dev->bound_id != dev_id)
		rc = -ENOENT;
	else if (!dev->hwpt)
		rc = -ENODEV;
	else
		*hwpt_id = dev->hwpt->obj.id;
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}
