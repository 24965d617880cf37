// SPDX-License-Identifier: MIT
/*
 * The sim's devices: VFIO cdev binding, attachment, hw_info, and the DMA
 * that sets dirty bits (drivers/iommu/iommufd/device.c, drivers/vfio/
 * iommufd.c and device_cdev.c, the mock driver's attach_dev).
 *
 *   bind an unknown name                      -ENOENT
 *   bind a name of BACKEND_NAME_MAX or more   -ENAMETOOLONG
 *   bind a device already bound               -EINVAL (vfio_df_open())
 *   unknown or unbound dev_id anywhere        -ENOENT
 *   attach to an unknown pt_id                -ENOENT
 *   attach to something not an IOAS or HWPT   -EINVAL
 *   attach while attached                     a replace
 *       (vfio_iommufd_physical_attach_ioas() -> iommufd_device_replace());
 *       to the HWPT it is on already: nothing, 0
 *   attach a device without IOMMU_HW_CAP_DIRTY_TRACKING to a HWPT
 *   allocated with DIRTY_TRACKING             -EINVAL (the driver's
 *       attach_dev: mock_domain_nop_attach(), VT-d's
 *       prepare_domain_attach_device()), also through replace
 *   attach to an IOAS                         the IOAS's auto domain, made
 *       on first use with flags 0 (so it never tracks dirty pages) and
 *       destroyed when its last device leaves
 *       (iommufd_device_auto_get_domain(), iommufd_hw_pagetable_put())
 *   detach when not attached                  0
 *       (vfio_iommufd_physical_detach_ioas())
 *   unbind                                    detaches first
 *   IOMMU_DESTROY of a bound device's id      -EBUSY
 *   hw_info                                   capabilities
 *       IOMMU_HW_CAP_DIRTY_TRACKING when the device has it, data type
 *       NONE (no hw_info op), max_pasid_log2 0
 *
 * DMA.  dma_write() is the device writing guest memory through the HWPT
 * it is attached to: each 4 KiB page is translated by a walk of that page
 * table; a page that is not mapped ends the write with -ENOENT and one IO
 * page fault counted, a page mapped without IOMMU_IOAS_MAP_WRITEABLE with
 * -EACCES (also a fault); the pages before it were written.  A device
 * that is bound but attached to nothing has its DMA blocked
 * (IOMMU_DOMAIN_BLOCKED): -ENODEV, no fault counted.  When the HWPT
 * tracks, each written leaf gets its dirty bit with an atomic OR (only if
 * it is clear).  A device whose DMA log is started (dmalog.c) records the
 * pages it wrote there too, whatever its HWPT does: logging needs no
 * dirty bits.  When neither tracks, nothing is recorded anywhere.
 *
 * Several IOMMUs.  A device is behind one simulated IOMMU instance
 * (struct sim_device_spec's @iommu) and a HWPT belongs to the instance of
 * the device it was allocated for.  Attaching a device to a HWPT of
 * another instance fails -EINVAL, as ARM SMMUv3 answers
 * (arm_smmu_attach_dev(): smmu_domain->smmu != master->smmu; the core's
 * __iommu_attach_group() answers the same for a domain of another IOMMU
 * driver; Intel VT-d shares a domain between its units when their
 * capabilities agree, so the sim follows the driver that refuses).  The
 * kernel's mock IOMMU is one instance and cannot show it.  So an IOAS
 * attached devices of two instances has one auto domain per instance
 * (iommufd_device_auto_get_domain() tries each and takes the -EINVAL as
 * "incompatible, try the next"), and DMA sets dirty bits only in the
 * HWPT of the device that wrote.
 *
 * Emulated devices (struct sim_device_spec's @emulated: an mdev such as
 * samples/vfio-mdev/mtty.c) have no IOMMU: binding makes an iommufd
 * access (vfio_iommufd_emulated_bind(), iommufd_access_create()), whose
 * id is not a device's:
 *   hw_info, IOMMU_HWPT_ALLOC with its id     -ENOENT (iommufd_get_device())
 *   attach to an IOAS                         the access joins the IOAS
 *       (vfio_iommufd_emulated_attach_ioas(), iommufd_access_attach(),
 *       iopt_add_access()): no HWPT; it raises the IOAS alignment to a
 *       CPU page, -EADDRINUSE when an area does not fit; attached again:
 *       iommufd_access_replace(), to the same IOAS 0
 *   attach to a HWPT, a device or an unknown id  -ENOENT (iommufd_get_ioas())
 *   detach                                    0, attached or not
 *       (vfio_iommufd_emulated_detach_ioas())
 *   IOMMU_DESTROY of its id                   -EBUSY (the driver's
 *       reference, held until unbind); of its IOAS  -EBUSY meanwhile
 *   DMA (the driver's iommufd_access_rw() with IOMMUFD_ACCESS_RW_WRITE)
 *       not attached -ENOENT; a page not mapped -ENOENT; an area mapped
 *       without WRITEABLE -EPERM; no IO page fault counted, and no dirty
 *       bit set in any HWPT: an emulated device's writes are seen by no
 *       IOMMU (nor by its DMA log: mtty's log_read_and_clear() reports
 *       nothing, dmalog.c)
 */
#include <errno.h>
#include <string.h>

#include "kernel/sim/sim_private.h"
#include "kernel/uapi/iommufd.h"

/*
 * The bound device with @dev_id, found without the object lock: devices
 * live as long as the host, so a stale answer is harmless and every
 * caller checks bound_id again under dev->lock.
 */
struct sim_device *sim_dev_find(struct sim_host *h, uint32_t dev_id)
{
	unsigned int i;

	if (!dev_id)
		return NULL;
	for (i = 0; i < h->n_devices; i++)
		if (__atomic_load_n(&h->devices[i].bound_id,
				    __ATOMIC_ACQUIRE) == dev_id)
			return &h->devices[i];
	return NULL;
}

int sim_dev_enumerate(struct backend *b, struct backend_device_name *names,
		      size_t max)
{
	struct sim_host *h = to_sim_host(b);
	unsigned int i;

	if (!names && max)
		return -EINVAL;
	for (i = 0; i < h->n_devices && i < max; i++)
		memcpy(names[i].name, h->devices[i].name,
		       sizeof(names[i].name));
	return (int)i;
}

int sim_dev_bind(struct backend *b, const char *name, uint32_t *out_dev_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev = NULL;
	unsigned int i;
	int rc;

	if (!name || !out_dev_id)
		return -EINVAL;
	if (strnlen(name, BACKEND_NAME_MAX) >= BACKEND_NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < h->n_devices; i++)
		if (!strcmp(h->devices[i].name, name))
			dev = &h->devices[i];
	if (!dev)
		return -ENOENT;

	pthread_rwlock_wrlock(&dev->lock);
	if (dev->bound_id) {
		rc = -EINVAL;
		goto out_unlock;
	}
	rc = sim_obj_alloc(h, &dev->obj, SIM_OBJ_DEVICE);
	if (rc)
		goto out_unlock;
	sim_obj_finalize(h, &dev->obj);
	__atomic_store_n(&dev->bound_id, dev->obj.id, __ATOMIC_RELEASE);
	*out_dev_id = dev->obj.id;
out_unlock:
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}

/*
 * iopt_remove_access(): @dev's access leaves its IOAS, which gets back the
 * alignment of what is left.  dev->lock held for write.
 */
static void sim_access_detach(struct sim_device *dev)
{
	struct sim_ioas *ioas = dev->access_ioas;

	if (!ioas)
		return;
	pthread_rwlock_wrlock(&ioas->iova_lock);
	ioas->n_accesses--;
	sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas),
			       &ioas->iova_alignment);
	pthread_rwlock_unlock(&ioas->iova_lock);
	dev->access_ioas = NULL;
	sim_obj_put(dev->host, &ioas->obj);
}

/*
 * iommufd_access_change_ioas_id(): attach (or replace) @dev's access to
 * the IOAS @pt_id.  dev->lock held for write.
 */
static int sim_access_attach(struct sim_device *dev, uint32_t pt_id)
{
	struct sim_host *h = dev->host;
	struct sim_ioas *ioas;
	uint64_t align;
	int rc;

	ioas = sim_ioas_get(h, pt_id);
	if (!ioas)
		return -ENOENT;
	if (dev->access_ioas == ioas) {
		sim_obj_put(h, &ioas->obj);
		return 0;
	}
	/* iopt_add_access() */
	pthread_rwlock_wrlock(&ioas->iova_lock);
	rc = sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas) + 1,
				    &align);
	if (!rc) {
		ioas->n_accesses++;
		ioas->iova_alignment = align;
	}
	pthread_rwlock_unlock(&ioas->iova_lock);
	if (rc) {
		sim_obj_put(h, &ioas->obj);
		return rc;
	}
	sim_access_detach(dev);
	dev->access_ioas = ioas;	/* the lookup's reference is the access's */
	return 0;
}

/*
 * iommufd_access_rw(access, iova, ..., IOMMUFD_ACCESS_RW_WRITE): the areas
 * contiguous from @iova, each writable.  dev->lock held for read.
 */
static int sim_access_write(struct sim_device *dev, uint64_t iova,
			    uint64_t last)
{
	struct sim_ioas *ioas = dev->access_ioas;
	uint64_t cur = iova;
	int rc;

	if (!ioas)
		return -ENOENT;
	pthread_rwlock_rdlock(&ioas->iova_lock);
	for (;;) {
		const struct sim_area *area = sim_ioas_area_at(ioas, cur);

		/* iopt_area_contig_done() false */
		if (!area || (area->iova != cur && cur != iova)) {
			rc = -ENOENT;
			break;
		}
		/* check_area_prot() */
		if (!(area->prot & SIM_PTE_WRITE)) {
			rc = -EPERM;
			break;
		}
		if (area->last >= last) {
			rc = 0;
			break;
		}
		cur = area->last + 1;
	}
	pthread_rwlock_unlock(&ioas->iova_lock);
	return rc;
}

int sim_dev_unbind(struct backend *b, uint32_t dev_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev;
	struct sim_hwpt *old;

	dev = sim_dev_find(h, dev_id);
	if (!dev)
		return -ENOENT;
	pthread_rwlock_wrlock(&dev->lock);
	if (dev->bound_id != dev_id) {
		pthread_rwlock_unlock(&dev->lock);
		return -ENOENT;
	}
	old = dev->hwpt;
	dev->hwpt = NULL;
	sim_access_detach(dev);
	/* closing the device stops its logging (mlx5vf_cmd_close_migratable(),
	 * pds_vfio_close_device()): what was not reported is gone */
	sim_dma_log_free(dev);
	sim_obj_remove_device(h, &dev->obj);
	__atomic_store_n(&dev->bound_id, 0, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&dev->lock);

	if (old)
		sim_hwpt_put(h, old);
	return 0;
}

int sim_dev_get_hw_info(struct backend *b, uint32_t dev_id,
			struct backend_hw_info *info)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev;
	int rc = 0;

	if (!info)
		return -EINVAL;
	dev = sim_dev_find(h, dev_id);
	if (!dev)
		return -ENOENT;
	pthread_rwlock_rdlock(&dev->lock);
	if (dev->bound_id != dev_id || dev->emulated) {
		/* an access is not a device: iommufd_get_device() */
		rc = -ENOENT;
	} else {
		*info = (struct backend_hw_info){
			.capabilities = dev->dirty_cap ?
					IOMMU_HW_CAP_DIRTY_TRACKING : 0,
			.data_type = IOMMU_HW_INFO_TYPE_NONE,
			.max_pasid_log2 = 0,
		};
	}
	pthread_rwlock_unlock(&dev->lock);
	return rc;
}

/*
 * iommufd_device_do_attach() / iommufd_device_do_replace(): point @dev at
 * @hwpt, leaving in *@old the HWPT whose reference the caller must put.
 * dev->lock is held for write.
 */
static int sim_dev_do_attach(struct sim_device *dev, struct sim_hwpt *hwpt,
			     struct sim_hwpt **old)
{
	if (dev->hwpt == hwpt)
		return 0;
	/* A domain of another IOMMU instance: arm_smmu_attach_dev() */
	if (hwpt->iommu != dev->iommu)
		return -EINVAL;
	/* The driver's attach_dev() enforces dirty tracking. */
	if (hwpt->dirty_ops && !dev->dirty_cap)
		return -EINVAL;
	sim_obj_ref(dev->host, &hwpt->obj);
	*old = dev->hwpt;
	dev->hwpt = hwpt;
	return 0;
}

/* iommufd_device_auto_get_domain() */
static int sim_dev_auto_get_domain(struct sim_device *dev,
				   struct sim_ioas *ioas, struct sim_hwpt **old)
{
	struct sim_host *h = dev->host;
	struct sim_hwpt *hwpt;
	int rc;

	pthread_mutex_lock(&ioas->mutex);
	for (hwpt = ioas->hwpts; hwpt; hwpt = hwpt->next) {
		if (!hwpt->auto_domain)
			continue;
		if (!sim_obj_get_not_zero(h, &hwpt->obj))
			continue;
		rc = sim_dev_do_attach(dev, hwpt, old);
		sim_obj_put(h, &hwpt->obj);
		/* -EINVAL: incompatible, try the next one */
		if (rc == -EINVAL)
			continue;
		goto out_unlock;
	}

	hwpt = sim_hwpt_paging_alloc(h, ioas, dev, 0, &rc);
	if (!hwpt)
		goto out_unlock;
	rc = sim_dev_do_attach(dev, hwpt, old);
	if (rc) {
		sim_hwpt_abort(hwpt);
		goto out_unlock;
	}
	hwpt->auto_domain = true;
	sim_obj_finalize(h, &hwpt->obj);
out_unlock:
	pthread_mutex_unlock(&ioas->mutex);
	return rc;
}

int sim_dev_attach(struct backend *b, uint32_t dev_id, uint32_t pt_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_hwpt *old = NULL;
	struct sim_device *dev;
	struct sim_obj *pt_obj;
	int rc;

	dev = sim_dev_find(h, dev_id);
	if (!dev)
		return -ENOENT;
	pthread_rwlock_wrlock(&dev->lock);
	if (dev->bound_id != dev_id) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (dev->emulated) {
		rc = sim_access_attach(dev, pt_id);
		goto out_unlock;
	}
	pt_obj = sim_obj_get(h, pt_id, SIM_OBJ_ANY);
	if (!pt_obj) {
		rc = -ENOENT;
		goto out_unlock;
	}
	switch (pt_obj->type) {
	case SIM_OBJ_HWPT:
		rc = sim_dev_do_attach(dev, (struct sim_hwpt *)pt_obj, &old);
		break;
	case SIM_OBJ_IOAS:
		rc = sim_dev_auto_get_domain(dev, (struct sim_ioas *)pt_obj,
					     &old);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	sim_obj_put(h, pt_obj);
out_unlock:
	pthread_rwlock_unlock(&dev->lock);
	/* This destruction has to be after we unlock everything */
	if (old)
		sim_hwpt_put(h, old);
	return rc;
}

int sim_dev_detach(struct backend *b, uint32_t dev_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev;
	struct sim_hwpt *old;

	dev = sim_dev_find(h, dev_id);
	if (!dev)
		return -ENOENT;
	pthread_rwlock_wrlock(&dev->lock);
	if (dev->bound_id != dev_id) {
		pthread_rwlock_unlock(&dev->lock);
		return -ENOENT;
	}
	old = dev->hwpt;
	dev->hwpt = NULL;
	sim_access_detach(dev);
	pthread_rwlock_unlock(&dev->lock);

	if (old)
		sim_hwpt_put(h, old);
	return 0;
}

int sim_dev_fd(struct backend *b, uint32_t dev_id)
{
	return -EOPNOTSUPP;
}

int sim_dev_dma_write(struct backend *b, uint32_t dev_id, uint64_t iova,
		      uint64_t length)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_device *dev;
	struct sim_hwpt *hwpt;
	bool fault = false;
	uint64_t last, done;
	int rc;

	if (!length)
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	dev = sim_dev_find(h, dev_id);
	if (!dev)
		return -ENOENT;

	pthread_rwlock_rdlock(&dev->lock);
	hwpt = dev->hwpt;
	if (dev->bound_id != dev_id) {
		rc = -ENOENT;
	} else if (dev->emulated) {
		rc = sim_access_write(dev, iova, last);
	} else if (!hwpt) {
		rc = -ENODEV;
	} else {
		pthread_rwlock_rdlock(&hwpt->ioas->iova_lock);
		rc = sim_pgtable_dma_write_done(&hwpt->pt, iova, last,
						__atomic_load_n(&hwpt->tracking,
								__ATOMIC_ACQUIRE),
						&done);
		pthread_rwlock_unlock(&hwpt->ioas->iova_lock);
		fault = rc != 0;
		/* what it wrote, up to the page that faulted */
		if (done > iova)
			sim_dma_log_record(dev, iova,
					   done - 1 < last ? done - 1 : last);
	}
	pthread_rwlock_unlock(&dev->lock);

	if (fault) {
		__atomic_fetch_add(&dev->faults, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&h->io_page_faults, 1, __ATOMIC_RELAXED);
	}
	return rc;
}
