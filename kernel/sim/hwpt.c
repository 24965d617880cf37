// SPDX-License-Identifier: MIT
/*
 * HWPTs: the sim IOMMU's domains (drivers/iommu/iommufd/hw_pagetable.c).
 *
 * Each HWPT has its own page table, filled from every area of its IOAS
 * when it is allocated and kept in step by map and unmap, as
 * iopt_table_add_domain() and iopt_area_fill_domains() do for each domain
 * of an IOAS.
 *
 * IOMMU_HWPT_ALLOC (iommufd_hwpt_alloc(), iommufd_hwpt_paging_alloc(),
 * iommufd_hwpt_nested_alloc(), the mock's domain_alloc_user()):
 *   unknown device, or an emulated one (its id is an iommufd access,
 *   not a device: iommufd_get_device())       -ENOENT
 *   unknown pt_id                             -EINVAL (not -ENOENT)
 *   pt_id a HWPT: a nested domain needs driver data the sim has none
 *   of                                        -EOPNOTSUPP
 *   pt_id neither IOAS nor HWPT               -EINVAL
 *   flags beyond NEST_PARENT | DIRTY_TRACKING -EOPNOTSUPP
 *     (FAULT_ID_VALID included)
 *   DIRTY_TRACKING on a device without the capability  -EOPNOTSUPP
 *   an area not aligned to 4 KiB (iopt_table_add_domain(): the domain
 *   raises the IOAS alignment, see ioas.c)    -EADDRINUSE
 * A HWPT belongs to the simulated IOMMU instance of the device it was
 * allocated for (struct sim_device_spec's @iommu; device.c refuses other
 * instances' devices).
 * A HWPT allocated without DIRTY_TRACKING has no dirty ops: both dirty
 * ioctls answer -EOPNOTSUPP on it, and so on auto domains.
 */
#include <errno.h>

#include "kernel/sim/sim_private.h"
#include "kernel/uapi/iommufd.h"

/* iopt_table_add_domain(): fill the new page table and link it. */
static int sim_hwpt_add_to_ioas(struct sim_hwpt *hwpt)
{
	struct sim_ioas *ioas = hwpt->ioas;
	uint64_t max_leaf, align;
	size_t i;
	int rc = 0;

	pthread_rwlock_wrlock(&ioas->iova_lock);
	/* The domain's smallest page raises the IOAS alignment. */
	rc = sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas) + 1,
				    &align);
	if (rc)
		goto out_unlock;
	max_leaf = sim_ioas_max_leaf(ioas);
	for (i = 0; i < ioas->n_areas; i++) {
		const struct sim_area *a = &ioas->areas[i];

		rc = sim_pgtable_map(&hwpt->pt, a->iova, a->uva,
				     a->last - a->iova + 1, a->prot, max_leaf);
		if (rc)
			goto out_unlock;
	}
	hwpt->next = ioas->hwpts;
	ioas->hwpts = hwpt;
	ioas->n_hwpts++;
	ioas->iova_alignment = align;
out_unlock:
	pthread_rwlock_unlock(&ioas->iova_lock);
	return rc;
}

/* iopt_table_remove_domain(); the caller holds ioas->mutex. */
static void sim_hwpt_remove_from_ioas(struct sim_hwpt *hwpt)
{
	struct sim_ioas *ioas = hwpt->ioas;
	struct sim_hwpt **pp;

	pthread_rwlock_wrlock(&ioas->iova_lock);
	for (pp = &ioas->hwpts; *pp; pp = &(*pp)->next) {
		if (*pp == hwpt) {
			*pp = hwpt->next;
			ioas->n_hwpts--;
			break;
		}
	}
	/* The last domain gone, the alignment falls back (never fails). */
	sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas),
			       &ioas->iova_alignment);
	pthread_rwlock_unlock(&ioas->iova_lock);
}

static void sim_hwpt_free(struct sim_hwpt *hwpt)
{
	struct sim_host *h = hwpt->ioas->host;

	sim_pgtable_destroy(&hwpt->pt);
	sim_obj_put(h, &hwpt->ioas->obj);
	sim_mem_free(h->region, hwpt, sizeof(*hwpt));
}

/*
 * iommufd_hwpt_paging_alloc(): a HWPT over @ioas for @dev, filled and
 * linked but not published.  The caller holds ioas->mutex and either
 * finalizes the object or calls sim_hwpt_abort().
 */
struct sim_hwpt *sim_hwpt_paging_alloc(struct sim_host *h,
				       struct sim_ioas *ioas,
				       struct sim_device *dev, uint32_t flags,
				       int *rc)
{
	const uint32_t valid_flags = IOMMU_HWPT_ALLOC_NEST_PARENT |
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	struct sim_hwpt *hwpt;

	if (flags & ~valid_flags) {
		*rc = -EOPNOTSUPP;
		return NULL;
	}
	if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !dev->dirty_cap) {
		*rc = -EOPNOTSUPP;
		return NULL;
	}

	hwpt = sim_mem_alloc(h->region, sizeof(*hwpt));
	if (!hwpt) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = sim_obj_alloc(h, &hwpt->obj, SIM_OBJ_HWPT);
	if (*rc) {
		sim_mem_free(h->region, hwpt, sizeof(*hwpt));
		return NULL;
	}
	/* Pairs with sim_hwpt_free() */
	sim_obj_ref(h, &ioas->obj);
	hwpt->ioas = ioas;
	hwpt->dirty_ops = flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	/* the driver's domain_alloc_user() for @dev: its IOMMU's domain */
	hwpt->iommu = dev->iommu;
	hwpt->nest_parent = flags & IOMMU_HWPT_ALLOC_NEST_PARENT;

	*rc = sim_pgtable_init_in(&hwpt->pt, h->region);
	if (*rc)
		goto out_abort;
	*rc = sim_hwpt_add_to_ioas(hwpt);
	if (*rc)
		goto out_abort;
	return hwpt;

out_abort:
	sim_obj_abort(h, &hwpt->obj);
	sim_hwpt_free(hwpt);
	return NULL;
}

/* Undo sim_hwpt_paging_alloc() before finalize; ioas->mutex held. */
void sim_hwpt_abort(struct sim_hwpt *hwpt)
{
	struct sim_host *h = hwpt->ioas->host;

	sim_hwpt_remove_from_ioas(hwpt);
	sim_obj_abort(h, &hwpt->obj);
	sim_hwpt_free(hwpt);
}

/* iommufd_hwpt_paging_destroy(): the object is out of the table. */
void sim_hwpt_destroy(struct sim_hwpt *hwpt)
{
	struct sim_ioas *ioas = hwpt->ioas;

	pthread_mutex_lock(&ioas->mutex);
	sim_hwpt_remove_from_ioas(hwpt);
	pthread_mutex_unlock(&ioas->mutex);
	sim_hwpt_free(hwpt);
}

/* iommufd_hw_pagetable_put(): an auto domain dies with its last device. */
void sim_hwpt_put(struct sim_host *h, struct sim_hwpt *hwpt)
{
	if (!hwpt->auto_domain) {
		sim_obj_put(h, &hwpt->obj);
		return;
	}
	if (sim_obj_put_and_try_remove(h, &hwpt->obj))
		sim_hwpt_destroy(hwpt);
}

int sim_hwpt_alloc(struct backend *b, uint32_t dev_id, uint32_t pt_id,
		   uint32_t flags, uint32_t *out_hwpt_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev;
	struct sim_obj *pt_obj;
	struct sim_ioas *ioas;
	struct sim_hwpt *hwpt;
	int rc;

	if (!out_hwpt_id)
		return -EINVAL;
	dev = sim_dev_find(h, dev_id);
	/* an emulated device's id is an access: iommufd_get_device() */
	if (!dev || dev->emulated)
		return -ENOENT;

	pt_obj = sim_obj_get(h, pt_id, SIM_OBJ_ANY);
	if (!pt_obj)
		return -EINVAL;

	switch (pt_obj->type) {
	case SIM_OBJ_IOAS:
		ioas = (struct sim_ioas *)pt_obj;
		pthread_mutex_lock(&ioas->mutex);
		hwpt = sim_hwpt_paging_alloc(h, ioas, dev, flags, &rc);
		if (hwpt) {
			*out_hwpt_id = hwpt->obj.id;
			sim_obj_finalize(h, &hwpt->obj);
		}
		pthread_mutex_unlock(&ioas->mutex);
		break;
	case SIM_OBJ_HWPT:
		/* iommufd_hwpt_nested_alloc(): !user_data->len */
		rc = -EOPNOTSUPP;
		break;
	default:
		rc = -EINVAL;
		break;
	}
	sim_obj_put(h, pt_obj);
	return rc;
}
