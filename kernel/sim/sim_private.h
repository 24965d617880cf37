/* SPDX-License-Identifier: MIT */
/*
 * Private to kernel/sim/: the simulated host's objects and locks.
 *
 * The layout follows drivers/iommu/iommufd/ (Linux 6.12):
 *
 *   host.c     the context: object ids, lookup, destroy, the ops table
 *              (main.c in the kernel)
 *   ioas.c     IO address spaces: areas, IOVA allocation, map, unmap,
 *              IOMMU_OPTION_HUGE_PAGES (ioas.c + io_pagetable.c)
 *   hwpt.c     HWPTs: allocation, auto domains, filling and unfilling
 *              their page tables (hw_pagetable.c)
 *   device.c   bind, unbind, hw_info, attach, replace, detach, and the
 *              devices' DMA (device.c + vfio's iommufd.c + the driver's
 *              attach_dev); emulated devices as iommufd accesses
 *   dmalog.c   VFIO device DMA logging: START, REPORT, STOP and the log
 *              a device's DMA writes (vfio_main.c + a variant driver's
 *              log_ops: mlx5's and pds's, or mtty's for an emulated one)
 *   dirty.c    IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP
 *              (io_pagetable.c + iova_bitmap.c + the driver's dirty ops),
 *              and the read's asynchronous form on reader threads (what
 *              io_uring's io-wq does for a uring command)
 *   pgtable.c  the radix IO page table (the IOMMU driver's page table)
 *   arena.c    where table pages come from
 *   region.c   the memfd all of the above lives in, its allocator, and
 *              keeping and adopting a host across processes
 *
 * Locks, outermost first:
 *
 *   sim_device.lock     rwlock, the device's attachment and its DMA log's
 *                       shape; dma_write and DMA logging REPORT hold it
 *                       for read, attach/detach/bind/unbind and logging
 *                       START/STOP for write
 *   sim_ioas.mutex      the IOAS's HWPT list for auto-domain selection
 *                       (ioas->mutex)
 *   sim_ioas.iova_lock  rwlock: areas, the HWPT list, the shape of every
 *                       page table of the IOAS (iova_rwsem + domains_rwsem);
 *                       map/unmap/HWPT add/remove take it for write,
 *                       harvest, set_dirty_tracking and DMA for read
 *   sim_host.obj_lock   mutex: the object table and reference counts; a
 *                       leaf lock, nothing is taken under it
 *   sim_region.lock     mutex: the region's allocator; a leaf lock
 *
 * Dirty bits live only in leaf PTEs; readers of PTEs under the read side
 * of iova_lock use atomic loads, DMA sets bits with an atomic OR, harvests
 * clear them with an atomic AND.
 */
#ifndef DIRTYD_KERNEL_SIM_SIM_PRIVATE_H
#define DIRTYD_KERNEL_SIM_SIM_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/backend.h"
#include "kernel/sim/sim.h"
#include "kernel/sim/kernel.h"

/* ----------------------------------------------------------- region */

struct sim_region;

/*
 * Memory of a host's region (region.c): zeroed blocks of a power of two
 * bytes (64 B at least), aligned to their size up to 4 KiB.  @size is the
 * same at free as at alloc.  NULL when the region is full.
 */
void *sim_mem_alloc(struct sim_region *r, size_t size);
void sim_mem_free(struct sim_region *r, void *p, size_t size);
/* A copy of @p's first @old_size bytes in a block of @new_size. */
void *sim_mem_realloc(struct sim_region *r, void *p, size_t old_size,
		      size_t new_size);

/* ------------------------------------------------------------ arena */

/**
 * struct sim_arena - 4 KiB table pages carved from big chunks.
 *
 * Chunks grow geometrically and cost memory only once touched, so a page
 * table of millions of tables is a few dozen chunks.  A host's tables
 * come from its region (@region); a page table made on its own
 * (sim_pgtable_init(), for unit tests) takes MAP_NORESERVE anonymous
 * mappings instead.  Freed tables go on a free list (linked through their
 * first word) and are zeroed when reused.  Not thread-safe: each page
 * table owns one, changed under its IOAS's iova_lock for write.
 */
struct sim_arena {
	struct sim_region *region;	/* NULL: private mmap chunks */
	struct sim_arena_chunk *chunks;
	unsigned int n_chunks;
	unsigned int cap_chunks;
	char *bump;
	char *bump_end;
	char *populated;	/* prefaulted up to here */
	void *free_list;
	size_t next_chunk_size;
	uint64_t tables;	/* in use; atomic for readers of stats */
	uint64_t reserved;	/* bytes mapped; atomic for readers */
};

struct sim_arena_chunk {
	void *base;
	size_t len;
};

void sim_arena_init(struct sim_arena *a, struct sim_region *region);
void sim_arena_destroy(struct sim_arena *a);
/* A zeroed, 4 KiB-aligned table of 512 PTEs, or NULL. */
uint64_t *sim_arena_alloc_table(struct sim_arena *a);
void sim_arena_free_table(struct sim_arena *a, uint64_t *table);

/* ---------------------------------------------------------- pgtable */

#define SIM_PT_LEVELS 4
#define SIM_PT_ENTRIES 512
#define SIM_IOVA_LIMIT (1ULL << SIM_IOVA_BITS)
/* Level 0 entries map 4 KiB, level 1 2 MiB, level 2 1 GiB, level 3 (the
 * root) 512 GiB. */
#define SIM_LVL_SHIFT(lvl) (12 + 9 * (lvl))
#define SIM_LVL_SIZE(lvl) (1ULL << SIM_LVL_SHIFT(lvl))
#define SIM_LVL_IDX(iova, lvl) \
	((unsigned int)(((iova) >> SIM_LVL_SHIFT(lvl)) & (SIM_PT_ENTRIES - 1)))

/* PTE bits, after VT-d second-level PTEs. */
#define SIM_PTE_READ (1ULL << 0)
#define SIM_PTE_WRITE (1ULL << 1)
#define SIM_PTE_PRESENT (SIM_PTE_READ | SIM_PTE_WRITE)
#define SIM_PTE_LEAF (1ULL << 7)	/* PS: a leaf above level 0 */
#define SIM_PTE_DIRTY (1ULL << 9)	/* VT-d SL D bit, set by DMA */
#define SIM_PTE_ADDR_MASK 0x000ffffffffff000ULL

/**
 * struct sim_pgtable - a 4-level radix IO page table, 48-bit IOVA.
 * @root: the level 3 table
 * @arena: where its tables come from
 * @leaves: leaf PTEs by level (0: 4 KiB, 1: 2 MiB, 2: 1 GiB); atomic
 *          stores so that stats can read them without the IOAS lock
 */
struct sim_pgtable {
	uint64_t *root;
	struct sim_arena arena;
	uint64_t leaves[3];
};

/**
 * struct sim_dirty_bitmap - where a walk records dirty IOVA ranges
 * (struct iova_bitmap + iommu_dirty_bitmap_record()).
 * @data: the caller's bitmap, any byte alignment; NULL records nothing
 * @iova: IOVA of bit 0
 * @last: last IOVA the bitmap covers; records are clipped to it
 * @pgshift: log2 of the IOVA bytes one bit stands for
 * @bounds: refuse a record not inside [@iova, @last] and remember -EPROTO
 *          in @err (SIM_KB_RECORD_BOUNDS); else clip it
 * @err: the first record refused (0: none)
 * @overruns: records that did not fit, refused or clipped
 */
struct sim_dirty_bitmap {
	uint8_t *data;
	uint64_t iova;
	uint64_t last;
	unsigned int pgshift;
	bool bounds;
	int err;
	unsigned int overruns;
};

/* A page table of its own (tests), or one in @region's memory. */
int sim_pgtable_init(struct sim_pgtable *pt);
int sim_pgtable_init_in(struct sim_pgtable *pt, struct sim_region *region);
void sim_pgtable_destroy(struct sim_pgtable *pt);
/* The largest leaf for @iova/@paddr with @length left, at most @max_leaf. */
uint64_t sim_pgtable_leaf_size(uint64_t iova, uint64_t paddr, uint64_t length,
			       uint64_t max_leaf);
int sim_pgtable_map(struct sim_pgtable *pt, uint64_t iova, uint64_t paddr,
		    uint64_t length, uint64_t pte_prot, uint64_t max_leaf);
void sim_pgtable_unmap(struct sim_pgtable *pt, uint64_t iova,
		       uint64_t length);
int sim_pgtable_lookup(struct sim_pgtable *pt, uint64_t iova,
		       struct sim_leaf *leaf);
void sim_pgtable_read_and_clear_dirty(struct sim_pgtable *pt, uint64_t iova,
				      uint64_t length, unsigned int flags,
				      struct sim_dirty_bitmap *dirty);
int sim_pgtable_dma_write(struct sim_pgtable *pt, uint64_t iova,
			  uint64_t last, bool track);
/* The same, saying in *@done the first IOVA it did not write (@last + 1
 * when it wrote everything; the 4 KiB page that faulted otherwise). */
int sim_pgtable_dma_write_done(struct sim_pgtable *pt, uint64_t iova,
			       uint64_t last, bool track, uint64_t *done);
void sim_pgtable_stats(struct sim_pgtable *pt, struct sim_pgtable_stats *st);
int sim_pgtable_for_each_table(struct sim_pgtable *pt, sim_table_fn fn,
			       void *ctx);
void sim_dirty_record(struct sim_dirty_bitmap *dirty, uint64_t iova,
		      uint64_t length);

/* ---------------------------------------------------------- objects */

enum sim_obj_type {
	SIM_OBJ_ANY = 0,
	SIM_OBJ_DEVICE,
	SIM_OBJ_HWPT,
	SIM_OBJ_IOAS,
};

/**
 * struct sim_obj - what an id names (struct iommufd_object).
 * @users: references: 1 for the table, plus every holder; destroy wants
 *         exactly 1 (-EBUSY otherwise), as iommufd_object_remove()
 */
struct sim_obj {
	enum sim_obj_type type;
	uint32_t id;
	unsigned int users;	/* under sim_host.obj_lock */
};

struct sim_area {
	uint64_t iova;
	uint64_t last;
	uint64_t uva;
	uint32_t prot;	/* SIM_PTE_READ | SIM_PTE_WRITE */
};

struct sim_hwpt;

struct sim_ioas {
	struct sim_obj obj;
	struct sim_host *host;
	pthread_mutex_t mutex;
	pthread_rwlock_t iova_lock;
	/* Under iova_lock. */
	struct sim_area *areas;		/* sorted by iova, disjoint */
	size_t n_areas;
	size_t cap_areas;
	bool disable_large_pages;
	uint64_t iova_alignment;	/* 1 until a domain or no huge pages */
	/* Under mutex and iova_lock for write to change. */
	struct sim_hwpt *hwpts;		/* list through sim_hwpt.next */
	unsigned int n_hwpts;
	/* Emulated devices attached (iommufd accesses: iopt_add_access());
	 * under iova_lock for write to change.  Each one raises the
	 * alignment to a CPU page as a domain does. */
	unsigned int n_accesses;
};

/* What iopt_calculate_iova_alignment() counts: domains and accesses. */
static inline unsigned int sim_ioas_n_domains(const struct sim_ioas *ioas)
{
	return ioas->n_hwpts + ioas->n_accesses;
}

struct sim_hwpt {
	struct sim_obj obj;
	struct sim_ioas *ioas;
	struct sim_hwpt *next;		/* in ioas->hwpts */
	bool dirty_ops;			/* IOMMU_HWPT_ALLOC_DIRTY_TRACKING */
	bool auto_domain;
	bool nest_parent;
	bool tracking;			/* atomic: dirty tracking enabled */
	/* The simulated IOMMU instance it was allocated for: only devices
	 * behind that instance attach to it (device.c). */
	unsigned int iommu;
	struct sim_pgtable pt;
};

/*
 * One IOVA range a logging device records over, after its driver combined
 * the ranges of START down to its limit (vfio_combine_iova_ranges()).
 * @bits: one bit per log page (struct sim_dma_log's @pgshift) of
 * [@iova, @last], in the region; set by DMA with an atomic OR, taken by
 * REPORT with an atomic exchange.
 */
struct sim_log_range {
	uint64_t iova;
	uint64_t last;
	uint64_t *bits;
	uint64_t n_words;
};

/*
 * A device's DMA log (the driver's tracker).  @active, @pgshift and
 * @ranges change only under the device's lock for write (START, STOP,
 * unbind), inside sim_change_begin()/end(); the bits under it for read.
 */
struct sim_dma_log {
	bool active;
	unsigned int pgshift;
	uint32_t n_ranges;
	struct sim_log_range *ranges;	/* sorted by iova, disjoint */
};

struct sim_device {
	struct sim_obj obj;		/* in the table only while bound */
	struct sim_host *host;
	char name[BACKEND_NAME_MAX];
	bool dirty_cap;
	/* struct sim_device_spec's: which IOMMU instance it is behind; an
	 * emulated (mdev) device; its DMA logging, granule and range limit
	 * (0: BACKEND_DMA_LOG_MAX_RANGES) */
	unsigned int iommu;
	bool emulated;
	bool dma_logging;
	uint64_t log_granule;
	uint32_t log_max_ranges;
	pthread_rwlock_t lock;
	uint32_t bound_id;		/* atomic; 0 while unbound */
	struct sim_hwpt *hwpt;		/* under lock; never for emulated */
	/* An emulated device's access: the IOAS it is attached to (holding
	 * a reference), under lock. */
	struct sim_ioas *access_ioas;
	struct sim_dma_log log;
	uint64_t faults;		/* atomic */
};

/*
 * The host.  It, and everything it points to, lives in its region: the
 * only pointers out of it are backend.ops and the locks' state, which
 * adoption sets anew.
 */
struct sim_host {
	struct backend backend;
	struct sim_region *region;
	uint64_t backing_page_size;
	unsigned int n_devices;
	struct sim_device devices[SIM_MAX_DEVICES];

	pthread_mutex_t obj_lock;
	struct sim_obj **objs;		/* index = id; slot 0 unused */
	uint32_t cap_objs;
	uint64_t io_page_faults;	/* atomic */
	struct sim_kernel kernel;	/* the release it emulates */
	/*
	 * Reads whose answer depends on the release (a zero length, a hole,
	 * tracking off, a record past the range); atomic.  With @strict
	 * ($DIRTYD_SIM_STRICT=1 in the process that opened or adopted the
	 * host, for the daemon's tests) such a read aborts the process.
	 */
	uint64_t version_dependent_reads;
	bool strict;
};

/* An id whose object is being built: lookups do not see it. */
#define SIM_OBJ_RESERVED ((struct sim_obj *)1)

/*
 * Size classes of the region's allocator: blocks of 2^6 .. 2^41 bytes.
 */
#define SIM_MEM_MIN_SHIFT 6
#define SIM_MEM_CLASSES 36

/**
 * struct sim_region - the memfd a host lives in, mapped at @base.
 *
 * Everything of a host (this header, the host, its objects, areas, page
 * tables) is in one memfd mapped MAP_SHARED at the same address in every
 * process that holds it, so its pointers stay valid when a new process
 * adopts it (region.c).  The header is read with pread() before mapping:
 * its first members never move.
 *
 * @magic, @version, @layout: what this is and which build laid it out
 * @base: where it is mapped; @size: how much
 * @changing: structural changes under way (sim_change_begin()); a region
 *            left with it non-zero is torn and cannot be adopted
 * @changes: structural changes completed (for tests)
 * @lock: the allocator's
 * @bump: offset of the first byte never handed out
 * @free: free blocks by size class, linked through their first word
 * @fd: the memfd, in the process that maps it
 */
struct sim_region {
	char magic[8];
	uint32_t version;
	uint32_t layout;
	uint64_t base;
	uint64_t size;
	uint64_t changing;
	uint64_t changes;
	pthread_mutex_t lock;
	uint64_t bump;
	void *free[SIM_MEM_CLASSES];
	int fd;
	struct sim_host host;
};

/* region.c */
int sim_region_create(struct sim_region **out);
int sim_region_adopt(const struct backend_kept_fd *kept, size_t n_kept,
		     struct sim_region **out);
/* Let go: unmap and close; with @dead, first mark it not adoptable. */
void sim_region_release(struct sim_region *r, bool dead);
int sim_region_keep(struct sim_region *r, struct backend_kept_fd *fds,
		    size_t max_fds);

/*
 * Bracket every change of structure (objects, areas, page table shape,
 * attachments, tracking state): a process that dies between the two
 * leaves @changing non-zero and its region torn.  DMA and harvests only
 * flip dirty bits, one atomic operation each, and need no bracket.
 */
static inline void sim_change_begin(struct sim_host *h)
{
	__atomic_fetch_add(&h->region->changing, 1, __ATOMIC_SEQ_CST);
}

static inline void sim_change_end(struct sim_host *h)
{
	__atomic_fetch_add(&h->region->changes, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&h->region->changing, 1, __ATOMIC_SEQ_CST);
}

/* The sim IOMMU's smallest page: what a domain raises an IOAS's alignment
 * to (IOMMU_IOAS_IOVA_RANGES' out_iova_alignment once it has one). */
#define SIM_IOVA_ALIGNMENT SIM_PAGE_SIZE_4K

static inline struct sim_host *to_sim_host(struct backend *b)
{
	return (struct sim_host *)b;
}

/* host.c */
int sim_obj_alloc(struct sim_host *h, struct sim_obj *obj,
		  enum sim_obj_type type);
void sim_obj_finalize(struct sim_host *h, struct sim_obj *obj);
void sim_obj_abort(struct sim_host *h, struct sim_obj *obj);
struct sim_obj *sim_obj_get(struct sim_host *h, uint32_t id,
			    enum sim_obj_type type);
bool sim_obj_get_not_zero(struct sim_host *h, struct sim_obj *obj);
void sim_obj_put(struct sim_host *h, struct sim_obj *obj);
void sim_obj_ref(struct sim_host *h, struct sim_obj *obj);
bool sim_obj_put_and_try_remove(struct sim_host *h, struct sim_obj *obj);
void sim_obj_remove_device(struct sim_host *h, struct sim_obj *obj);

static inline struct sim_ioas *sim_ioas_get(struct sim_host *h, uint32_t id)
{
	struct sim_obj *obj = sim_obj_get(h, id, SIM_OBJ_IOAS);

	return obj ? (struct sim_ioas *)obj : NULL;
}

static inline struct sim_hwpt *sim_hwpt_get(struct sim_host *h, uint32_t id)
{
	struct sim_obj *obj = sim_obj_get(h, id, SIM_OBJ_HWPT);

	return obj ? (struct sim_hwpt *)obj : NULL;
}

/* ioas.c */
int sim_ioas_alloc(struct backend *b, uint32_t *out_ioas_id);
int sim_ioas_iova_alignment(struct backend *b, uint32_t ioas_id,
			    uint64_t *out_alignment);
int sim_ioas_map(struct backend *b, uint32_t ioas_id, uint32_t flags,
		 void *user_va, uint64_t length, uint64_t *iova);
int sim_ioas_unmap(struct backend *b, uint32_t ioas_id, uint64_t iova,
		   uint64_t length, uint64_t *out_unmapped);
int sim_ioas_set_huge_pages(struct backend *b, uint32_t ioas_id,
			    bool enable);
void sim_ioas_destroy(struct sim_ioas *ioas);
int sim_ioas_new_alignment(struct sim_ioas *ioas, unsigned int n_domains,
			   uint64_t *out);
uint64_t sim_ioas_max_leaf(struct sim_ioas *ioas);
const struct sim_area *sim_ioas_area_at(struct sim_ioas *ioas,
					uint64_t iova);

/* hwpt.c */
int sim_hwpt_alloc(struct backend *b, uint32_t dev_id, uint32_t pt_id,
		   uint32_t flags, uint32_t *out_hwpt_id);
struct sim_hwpt *sim_hwpt_paging_alloc(struct sim_host *h,
				       struct sim_ioas *ioas,
				       struct sim_device *dev, uint32_t flags,
				       int *rc);
void sim_hwpt_abort(struct sim_hwpt *hwpt);
void sim_hwpt_destroy(struct sim_hwpt *hwpt);
void sim_hwpt_put(struct sim_host *h, struct sim_hwpt *hwpt);

/* device.c */
int sim_dev_enumerate(struct backend *b, struct backend_device_name *names,
		      size_t max);
int sim_dev_bind(struct backend *b, const char *name, uint32_t *out_dev_id);
int sim_dev_unbind(struct backend *b, uint32_t dev_id);
int sim_dev_get_hw_info(struct backend *b, uint32_t dev_id,
			struct backend_hw_info *info);
int sim_dev_attach(struct backend *b, uint32_t dev_id, uint32_t pt_id);
int sim_dev_detach(struct backend *b, uint32_t dev_id);
int sim_dev_fd(struct backend *b, uint32_t dev_id);
int sim_dev_dma_write(struct backend *b, uint32_t dev_id, uint64_t iova,
		      uint64_t length);
struct sim_device *sim_dev_find(struct sim_host *h, uint32_t dev_id);

/* dmalog.c */
int sim_dma_log_probe(struct backend *b, uint32_t dev_id);
int sim_dma_log_start(struct backend *b, uint32_t dev_id,
		      uint64_t *page_size,
		      const struct backend_dma_log_range *ranges,
		      uint32_t nranges);
int sim_dma_log_report(struct backend *b, uint32_t dev_id, uint64_t iova,
		       uint64_t length, uint64_t page_size, uint64_t *bitmap);
int sim_dma_log_stop(struct backend *b, uint32_t dev_id);
/* The device wrote [@iova, @last]: record it in its log if it logs
 * there.  dev->lock held for read. */
void sim_dma_log_record(struct sim_device *dev, uint64_t iova, uint64_t last);
/* Forget the log (STOP, unbind); dev->lock held for write. */
void sim_dma_log_free(struct sim_device *dev);
/* Whether @dev's log lies in its region, as adoption checks; 0 or
 * -EUCLEAN. */
int sim_dma_log_check(const struct sim_host *h, const struct sim_device *dev);

/* dirty.c */
/* A read whose answer depends on the release (@call: "GET_DIRTY_BITMAP",
 * ...): counted, and fatal under $DIRTYD_SIM_STRICT. */
void sim_version_dependent(struct sim_host *h, const char *call,
			   const char *what, uint64_t iova, uint64_t length);
int sim_hwpt_set_dirty_tracking(struct backend *b, uint32_t hwpt_id,
				bool enable);
/* sim_readers_start() - the process's reader threads (made by the first
 * call; sim_backend_open() makes them, so that a process's threads and
 * descriptors are all there once its first host is open); -errno. */
struct ring_pool;
int sim_readers_start(struct ring_pool **out);
int sim_dirty_read_prep(struct backend *b, struct io_uring_sqe *sqe,
			int ring_fd, struct backend_dirty_read *rd,
			uint64_t user_data);
int sim_hwpt_get_dirty_bitmap(struct backend *b, uint32_t hwpt_id,
			      uint64_t iova, uint64_t length,
			      uint64_t page_size, uint64_t *bitmap,
			      uint32_t flags);

/* A writer-preferring rwlock, as rw_semaphore queues readers behind a
 * waiting writer: DMA in a loop must not starve map/unmap. */
void sim_rwlock_init(pthread_rwlock_t *lock);

#endif /* DIRTYD_KERNEL_SIM_SIM_PRIVATE_H */
