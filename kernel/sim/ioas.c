// SPDX-License-Identifier: MIT
/*
 * IO address spaces: the IOVA -> user_va areas of an IOAS, kept in every
 * HWPT's page table (drivers/iommu/iommufd/ioas.c and io_pagetable.c).
 *
 * What the sim reproduces, errno for errno:
 *
 *   IOMMU_IOAS_MAP (iommufd_ioas_map(), iopt_map_user_pages(),
 *   iopt_alloc_pages(), iopt_alloc_area_pages(), iopt_check_iova(),
 *   iopt_alloc_iova(), iopt_insert_area()):
 *     unknown flags                          -EOPNOTSUPP
 *     iova or length == U64_MAX              -EOVERFLOW
 *     neither READABLE nor WRITEABLE         -EINVAL
 *     unknown IOAS                           -ENOENT
 *     length 0, or > SIZE_MAX - PAGE_SIZE    -EINVAL
 *     user_va + length wraps                 -EOVERFLOW
 *     length not a multiple of the IOAS alignment    -EINVAL
 *     FIXED_IOVA: iova unaligned             -EINVAL
 *                 iova + length - 1 wraps    -EOVERFLOW
 *                 touches reserved IOVA      -EINVAL
 *                 overlaps an area           -EEXIST
 *     allocated IOVA: length >= ULONG_MAX/2  -EOVERFLOW
 *                 user_va alignment < IOAS alignment  -EINVAL
 *                 no hole fits               -ENOSPC
 *                 (first fit from PAGE_SIZE, aligned to the smaller of
 *                 roundup_pow_of_two(length) and user_va's alignment,
 *                 capped at 2 MiB, never IOVA 0)
 *     user_va not aligned to the IOAS alignment      -EINVAL
 *   IOMMU_IOAS_UNMAP (iommufd_ioas_unmap(), iopt_unmap_iova(),
 *   iopt_unmap_iova_range()):
 *     iova 0 + length U64_MAX                unmap all; 0 even if empty
 *     iova or length == U64_MAX otherwise    -EOVERFLOW
 *     length 0                               -EINVAL
 *     iova + length - 1 wraps                -EOVERFLOW
 *     an area only partly inside the range   -ENOENT, and the areas
 *         before it in the range stay unmapped (no splitting; the
 *         kernel walks areas in order and stops there)
 *     nothing inside the range               -ENOENT
 *     (no alignment check: any range that covers whole areas works)
 *   IOMMU_OPTION_HUGE_PAGES (iommufd_ioas_option_huge_pages(),
 *   iopt_disable_large_pages()):
 *     disable with a HWPT and an area        -EINVAL
 *     disable when an area is not PAGE_SIZE aligned  -EADDRINUSE
 *     enable                                 always 0
 *     disabled: HWPTs filled from then on use 4 KiB leaves only
 *     (batch_iommu_map_small()); existing leaves are kept
 *
 *   The IOAS alignment (iopt_calculate_iova_alignment()): 1 for a new
 *   IOAS (iopt_init_table()); PAGE_SIZE while huge pages are disabled;
 *   at least the smallest IOMMU page (4 KiB) while the IOAS has a domain.
 *   Raising it fails -EADDRINUSE if an area's iova, length or user_va
 *   page offset does not fit (iopt_check_iova_alignment()): at HWPT
 *   allocation, at an attach that makes an auto domain, and when huge
 *   pages are disabled.  Removing the last domain lowers it again.
 *
 * Deviations: the kernel's reserved IOVA comes from attached domains
 * (aperture) and devices (MSI windows); the sim IOAS has the sim IOMMU's
 * aperture ([0, 2^48)) from the start and reserves nothing for
 * devices.  The kernel fills domains with iova_rwsem dropped; the sim
 * holds iova_lock for write while it fills, so a map stalls harvests of
 * the same IOAS for its duration.
 */
#include <errno.h>
#include <string.h>

#include "kernel/sim/sim_private.h"
#include "kernel/uapi/iommufd.h"

#define SIM_ULONG_MAX UINT64_MAX
/* PAGE_SIZE and HPAGE_SIZE of the x86-64 kernel the sim imitates. */
#define SIM_CPU_PAGE_SIZE 4096ULL
#define SIM_HPAGE_SIZE (2ULL << 20)

int sim_ioas_alloc(struct backend *b, uint32_t *out_ioas_id)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_ioas *ioas;
	int rc;

	if (!out_ioas_id)
		return -EINVAL;
	ioas = sim_mem_alloc(h->region, sizeof(*ioas));
	if (!ioas)
		return -ENOMEM;
	rc = sim_obj_alloc(h, &ioas->obj, SIM_OBJ_IOAS);
	if (rc) {
		sim_mem_free(h->region, ioas, sizeof(*ioas));
		return rc;
	}
	ioas->host = h;
	ioas->iova_alignment = 1;
	pthread_mutex_init(&ioas->mutex, NULL);
	sim_rwlock_init(&ioas->iova_lock);
	*out_ioas_id = ioas->obj.id;
	sim_obj_finalize(h, &ioas->obj);
	return 0;
}

/* Called with no other user left (no HWPT holds the IOAS). */
void sim_ioas_destroy(struct sim_ioas *ioas)
{
	struct sim_region *r = ioas->host->region;

	sim_mem_free(r, ioas->areas, ioas->cap_areas * sizeof(*ioas->areas));
	pthread_rwlock_destroy(&ioas->iova_lock);
	pthread_mutex_destroy(&ioas->mutex);
	sim_mem_free(r, ioas, sizeof(*ioas));
}

int sim_ioas_iova_alignment(struct backend *b, uint32_t ioas_id,
			    uint64_t *out_alignment)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_ioas *ioas;

	if (!out_alignment)
		return -EINVAL;
	ioas = sim_ioas_get(h, ioas_id);
	if (!ioas)
		return -ENOENT;
	pthread_rwlock_rdlock(&ioas->iova_lock);
	*out_alignment = ioas->iova_alignment;
	pthread_rwlock_unlock(&ioas->iova_lock);
	sim_obj_put(h, &ioas->obj);
	return 0;
}

/*
 * iopt_calculate_iova_alignment(): the alignment @ioas gets with
 * @n_domains domains, in *@out; -EADDRINUSE when it is higher than the
 * current one and an area does not fit (iopt_check_iova_alignment()).
 * Called with iova_lock held; the caller stores it.
 */
int sim_ioas_new_alignment(struct sim_ioas *ioas, unsigned int n_domains,
			   uint64_t *out)
{
	uint64_t align = ioas->disable_large_pages ? SIM_CPU_PAGE_SIZE : 1;
	size_t i;

	if (n_domains && align < SIM_IOVA_ALIGNMENT)
		align = SIM_IOVA_ALIGNMENT;
	if (align > ioas->iova_alignment) {
		for (i = 0; i < ioas->n_areas; i++) {
			const struct sim_area *a = &ioas->areas[i];

			if ((a->iova | (a->last - a->iova + 1) |
			     (a->uva % SIM_CPU_PAGE_SIZE)) & (align - 1))
				return -EADDRINUSE;
		}
	}
	*out = align;
	return 0;
}

uint64_t sim_ioas_max_leaf(struct sim_ioas *ioas)
{
	return ioas->disable_large_pages ? SIM_PAGE_SIZE_4K :
					   ioas->host->backing_page_size;
}

/* ---------------------------------------------------------------- areas */

/* Index of the first area whose last IOVA is >= @iova. */
static size_t sim_area_lower_bound(struct sim_ioas *ioas, uint64_t iova)
{
	size_t lo = 0, hi = ioas->n_areas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ioas->areas[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* iopt_area_iter_first(iopt, iova, iova) */
const struct sim_area *sim_ioas_area_at(struct sim_ioas *ioas, uint64_t iova)
{
	size_t i = sim_area_lower_bound(ioas, iova);

	if (i < ioas->n_areas && ioas->areas[i].iova <= iova)
		return &ioas->areas[i];
	return NULL;
}

static bool sim_area_intersects(struct sim_ioas *ioas, uint64_t iova,
				uint64_t last)
{
	size_t i = sim_area_lower_bound(ioas, iova);

	return i < ioas->n_areas && ioas->areas[i].iova <= last;
}

static int sim_area_reserve(struct sim_ioas *ioas)
{
	struct sim_area *areas;
	size_t cap;

	if (ioas->n_areas < ioas->cap_areas)
		return 0;
	cap = ioas->cap_areas ? 2 * ioas->cap_areas : 16;
	areas = sim_mem_realloc(ioas->host->region, ioas->areas,
				ioas->cap_areas * sizeof(*areas),
				cap * sizeof(*areas));
	if (!areas)
		return -ENOMEM;
	ioas->areas = areas;
	ioas->cap_areas = cap;
	return 0;
}

static void sim_area_insert(struct sim_ioas *ioas,
			    const struct sim_area *area)
{
	size_t i = sim_area_lower_bound(ioas, area->iova);

	memmove(&ioas->areas[i + 1], &ioas->areas[i],
		(ioas->n_areas - i) * sizeof(*area));
	ioas->areas[i] = *area;
	ioas->n_areas++;
}

/* ------------------------------------------------------------------ map */

/* __alloc_iova_check_range() */
static bool sim_alloc_iova_check_range(uint64_t *start, uint64_t last,
				       uint64_t length, uint64_t align,
				       uint64_t page_offset)
{
	uint64_t aligned;

	if (__builtin_add_overflow(*start, align - 1, &aligned))
		return false;
	aligned &= ~(align - 1);
	aligned |= page_offset;
	if (aligned >= last || last - aligned < length - 1)
		return false;
	*start = aligned;
	return true;
}

static uint64_t sim_roundup_pow_of_two(uint64_t x)
{
	return x <= 1 ? 1 : 1ULL << (64 - __builtin_clzll(x - 1));
}

/* iopt_alloc_iova(): first fit among holes of areas and reserved IOVA. */
static int sim_alloc_iova(struct sim_ioas *ioas, uint64_t *iova,
			  uint64_t uptr, uint64_t length)
{
	uint64_t page_offset = uptr % SIM_CPU_PAGE_SIZE;
	uint64_t start = SIM_CPU_PAGE_SIZE, last;
	uint64_t align;
	size_t i;

	if (length == 0 || length >= SIM_ULONG_MAX / 2)
		return -EOVERFLOW;

	/* Keep the alignment of uptr, to give huge pages a chance. */
	align = sim_roundup_pow_of_two(length);
	if (uptr && (1ULL << __builtin_ctzll(uptr)) < align)
		align = 1ULL << __builtin_ctzll(uptr);
	if (align >= SIM_HPAGE_SIZE)
		align = SIM_HPAGE_SIZE;
	if (align < ioas->iova_alignment)
		return -EINVAL;

	/* The allowed span; nothing beyond the aperture is free. */
	if (!sim_alloc_iova_check_range(&start,
					SIM_ULONG_MAX - SIM_CPU_PAGE_SIZE,
					length, align, page_offset))
		return -ENOSPC;

	for (i = sim_area_lower_bound(ioas, start);; i++) {
		uint64_t hole = start;

		if (i < ioas->n_areas) {
			if (ioas->areas[i].iova <= start) {
				start = ioas->areas[i].last + 1;
				continue;
			}
			last = ioas->areas[i].iova - 1;
		} else {
			last = SIM_IOVA_LIMIT - 1;
		}
		if (last >= SIM_IOVA_LIMIT)
			last = SIM_IOVA_LIMIT - 1;
		if (hole <= last &&
		    sim_alloc_iova_check_range(&hole, last, length, align,
					       page_offset)) {
			*iova = hole;
			return 0;
		}
		if (i >= ioas->n_areas || last == SIM_IOVA_LIMIT - 1)
			return -ENOSPC;
		start = ioas->areas[i].last + 1;
	}
}

/* iopt_check_iova() */
static int sim_check_iova(struct sim_ioas *ioas, uint64_t iova,
			  uint64_t length)
{
	uint64_t last;

	if (iova & (ioas->iova_alignment - 1))
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	/* The aperture's end is reserved IOVA. */
	if (last >= SIM_IOVA_LIMIT)
		return -EINVAL;
	if (sim_area_intersects(ioas, iova, last))
		return -EEXIST;
	return 0;
}

/* iopt_area_fill_domains(): put the area in every HWPT, or in none. */
static int sim_area_fill_hwpts(struct sim_ioas *ioas,
			       const struct sim_area *area)
{
	uint64_t length = area->last - area->iova + 1;
	uint64_t max_leaf = sim_ioas_max_leaf(ioas);
	struct sim_hwpt *hwpt, *undo;
	int rc;

	for (hwpt = ioas->hwpts; hwpt; hwpt = hwpt->next) {
		rc = sim_pgtable_map(&hwpt->pt, area->iova, area->uva, length,
				     area->prot, max_leaf);
		if (rc)
			goto out_undo;
	}
	return 0;

out_undo:
	for (undo = ioas->hwpts; undo != hwpt; undo = undo->next)
		sim_pgtable_unmap(&undo->pt, area->iova, length);
	/* The page table refuses only for want of memory. */
	return rc == -ENOMEM ? rc : -EINVAL;
}

int sim_ioas_map(struct backend *b, uint32_t ioas_id, uint32_t flags,
		 void *user_va, uint64_t length, uint64_t *iova)
{
	struct sim_host *h = to_sim_host(b);
	uint64_t uptr = (uintptr_t)user_va;
	struct sim_ioas *ioas;
	struct sim_area area;
	uint64_t end, dst;
	int rc;

	if (!iova)
		return -EINVAL;
	if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
		      IOMMU_IOAS_MAP_READABLE))
		return -EOPNOTSUPP;
	if (*iova >= SIM_ULONG_MAX || length >= SIM_ULONG_MAX)
		return -EOVERFLOW;
	if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
		return -EINVAL;

	ioas = sim_ioas_get(h, ioas_id);
	if (!ioas)
		return -ENOENT;

	/* iopt_alloc_pages() */
	if (length > SIZE_MAX - SIM_CPU_PAGE_SIZE || length == 0) {
		rc = -EINVAL;
		goto out_put;
	}
	if (__builtin_add_overflow(uptr, length, &end)) {
		rc = -EOVERFLOW;
		goto out_put;
	}

	pthread_rwlock_wrlock(&ioas->iova_lock);
	/* iopt_alloc_area_pages() */
	if (length & (ioas->iova_alignment - 1)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	dst = *iova;
	if (!(flags & IOMMU_IOAS_MAP_FIXED_IOVA))
		rc = sim_alloc_iova(ioas, &dst, uptr, length);
	else
		rc = sim_check_iova(ioas, dst, length);
	if (rc)
		goto out_unlock;

	/* iopt_insert_area(): area->page_offset = start_byte % PAGE_SIZE */
	if ((uptr % SIM_CPU_PAGE_SIZE) & (ioas->iova_alignment - 1)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	rc = sim_area_reserve(ioas);
	if (rc)
		goto out_unlock;

	area = (struct sim_area){
		.iova = dst,
		.last = dst + length - 1,
		.uva = uptr,
		.prot = (flags & IOMMU_IOAS_MAP_READABLE ? SIM_PTE_READ : 0) |
			(flags & IOMMU_IOAS_MAP_WRITEABLE ? SIM_PTE_WRITE : 0),
	};
	rc = sim_area_fill_hwpts(ioas, &area);
	if (rc)
		goto out_unlock;
	sim_area_insert(ioas, &area);
	*iova = dst;

out_unlock:
	pthread_rwlock_unlock(&ioas->iova_lock);
out_put:
	sim_obj_put(h, &ioas->obj);
	return rc;
}

/* ---------------------------------------------------------------- unmap */

/* iopt_unmap_iova_range(): whole areas inside [@start, @last], in order. */
static int sim_unmap_iova_range(struct sim_ioas *ioas, uint64_t start,
				uint64_t last, uint64_t *unmapped)
{
	uint64_t bytes = 0;
	size_t i, j;
	int rc = 0;

	pthread_rwlock_wrlock(&ioas->iova_lock);
	i = sim_area_lower_bound(ioas, start);
	for (j = i; j < ioas->n_areas && ioas->areas[j].iova <= last; j++) {
		const struct sim_area *a = &ioas->areas[j];
		uint64_t len = a->last - a->iova + 1;
		struct sim_hwpt *hwpt;

		if (a->iova < start || a->last > last) {
			rc = -ENOENT;
			break;
		}
		for (hwpt = ioas->hwpts; hwpt; hwpt = hwpt->next)
			sim_pgtable_unmap(&hwpt->pt, a->iova, len);
		bytes += len;
	}
	if (j > i) {
		memmove(&ioas->areas[i], &ioas->areas[j],
			(ioas->n_areas - j) * sizeof(ioas->areas[0]));
		ioas->n_areas -= j - i;
	}
	pthread_rwlock_unlock(&ioas->iova_lock);

	*unmapped = bytes;
	return rc;
}

int sim_ioas_unmap(struct backend *b, uint32_t ioas_id, uint64_t iova,
		   uint64_t length, uint64_t *out_unmapped)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_ioas *ioas;
	uint64_t unmapped = 0, last;
	int rc;

	ioas = sim_ioas_get(h, ioas_id);
	if (!ioas)
		return -ENOENT;

	if (iova == 0 && length == UINT64_MAX) {
		rc = sim_unmap_iova_range(ioas, 0, SIM_ULONG_MAX, &unmapped);
		goto out_put;
	}
	if (iova >= SIM_ULONG_MAX || length >= SIM_ULONG_MAX) {
		rc = -EOVERFLOW;
		goto out_put;
	}
	/* iopt_unmap_iova() */
	if (!length) {
		rc = -EINVAL;
		goto out_put;
	}
	if (__builtin_add_overflow(iova, length - 1, &last)) {
		rc = -EOVERFLOW;
		goto out_put;
	}
	rc = sim_unmap_iova_range(ioas, iova, last, &unmapped);
	if (!rc && !unmapped)
		rc = -ENOENT;

out_put:
	if (!rc && out_unmapped)
		*out_unmapped = unmapped;
	sim_obj_put(h, &ioas->obj);
	return rc;
}

/* ------------------------------------------------------------- options */

int sim_ioas_set_huge_pages(struct backend *b, uint32_t ioas_id, bool enable)
{
	struct sim_host *h = to_sim_host(b);
	struct sim_ioas *ioas;
	int rc = 0;

	ioas = sim_ioas_get(h, ioas_id);
	if (!ioas)
		return -ENOENT;

	pthread_rwlock_wrlock(&ioas->iova_lock);
	if (enable) {
		/* iopt_enable_large_pages(): lowering cannot fail */
		ioas->disable_large_pages = false;
		sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas),
				       &ioas->iova_alignment);
	} else if (!ioas->disable_large_pages) {
		/* Won't do it if domains already have pages mapped in them */
		if (ioas->hwpts && ioas->n_areas) {
			rc = -EINVAL;
		} else {
			ioas->disable_large_pages = true;
			rc = sim_ioas_new_alignment(ioas, sim_ioas_n_domains(ioas),
						    &ioas->iova_alignment);
			if (rc)
				ioas->disable_large_pages = false;
		}
	}
	pthread_rwlock_unlock(&ioas->iova_lock);

	sim_obj_put(h, &ioas->obj);
	return rc;
}
