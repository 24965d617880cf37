/* SPDX-License-Identifier: MIT */
/*
 * The kernel boundary.
 *
 * Every kernel operation dirtyd performs goes through one struct backend.
 * Two implementations exist:
 *
 *   iommufd  kernel/iommufd/: the real /dev/iommu plus VFIO cdev devices.
 *   sim      kernel/sim/: a simulated host whose IOMMU has hardware dirty
 *            bits, faithful to the Linux 6.12 iommufd semantics.
 *
 * Nothing above kernel/ knows which one runs: what differs between them
 * is in their capabilities (struct backend_caps), which callers ask
 * instead of the kind.  Operations mirror the iommufd ioctls one to one;
 * arguments keep the kernel's units (bytes, IOVAs) and the kernel's flag
 * values (kernel/uapi/iommufd.h), and every function returns 0 or a
 * negative errno, the kernel's own code passed through.  Every operation
 * is safe to call from several threads at once, as ioctls on one
 * /dev/iommu file are.  One is asynchronous: backend_dirty_read_prep(),
 * IOMMU_HWPT_GET_DIRTY_BITMAP as an SQE of the caller's io_uring.
 *
 * Owns: the kernel boundary (which backend runs, and how each one reaches
 * the kernel or stands in for it, io_uring commands included).
 */
#ifndef DIRTYD_KERNEL_BACKEND_H
#define DIRTYD_KERNEL_BACKEND_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ring_worker.h"
#include "uapi/iommufd.h"

enum backend_kind {
	BACKEND_IOMMUFD = 0,
	BACKEND_SIM = 1,
};

#define BACKEND_NAME_MAX 64
#define SIM_MAX_DEVICES 64

/** One device of the simulated host. */
struct sim_device_spec {
	char name[BACKEND_NAME_MAX];	/* what backend_device_bind() takes */
	bool dirty_tracking;		/* IOMMU_HW_CAP_DIRTY_TRACKING */
	/*
	 * Which simulated IOMMU instance the device is behind (0, 1, ...).
	 * A HWPT belongs to the instance of the device it was allocated
	 * for; attaching a device of another instance to it fails as the
	 * kernel fails such an attach (so one IOAS may need several HWPTs,
	 * QEMU's iommufd_cdev_autodomains_get()).
	 */
	unsigned int iommu;
	/*
	 * The device records its own DMA writes (VFIO device DMA logging,
	 * as the mlx5 and pds variant drivers do; backend_dma_log_*()).
	 * @dma_log_page_size: its granule (a power of two >= 4 KiB; 0 means
	 * 4 KiB): START rounds the asked page size up to it.
	 * @dma_log_max_ranges: the most ranges the device tracks (0 means
	 * the kernel's own limit, BACKEND_DMA_LOG_MAX_RANGES): START with
	 * more combines them, as mlx5 and pds do (vfio_combine_iova_ranges():
	 * the device then logs the gaps between them too).
	 */
	bool dma_logging;
	uint64_t dma_log_page_size;
	uint32_t dma_log_max_ranges;
	/*
	 * An emulated (mediated) device, as mdev drivers such as the
	 * kernel's mtty sample are: no IOMMU of its own, bound to iommufd
	 * as an access; it answers GET_HW_INFO, attach and DMA as the
	 * kernel answers for such a device (tests/scenario/, recorded in
	 * the VM with mtty).
	 */
	bool emulated;
};

/** The simulated host. */
struct sim_config {
	unsigned int n_devices;
	struct sim_device_spec devices[SIM_MAX_DEVICES];
	/*
	 * Page size of the memory behind every mapping (4 KiB, 2 MiB or
	 * 1 GiB), as if guest RAM were backed by pages of that size.  A
	 * mapping uses the largest leaf that this, the IOVA alignment and
	 * IOMMU_OPTION_HUGE_PAGES allow.  0 means 4 KiB.
	 */
	uint64_t backing_page_size;
	/*
	 * The Linux release whose IOMMU_HWPT_GET_DIRTY_BITMAP answers the
	 * sim gives ("6.12.107"; kernel/sim/kernel.h): "" means
	 * $DIRTYD_SIM_KERNEL, or if that is unset the newest kernel of the
	 * pinned matrix (kernel/vm/kernels).  -EINVAL for anything but 6.12.y.
	 */
	char kernel[16];
};

/**
 * struct backend_kept_fd - a descriptor that carries a context's kernel
 * state across a restart of the process (systemd's file descriptor store).
 * @name: what the store calls it: printable ASCII without ':', like
 *        systemd's FDNAME= (the backend chooses, e.g. "iommufd", "sim")
 * @fd: the descriptor; owned by the backend that returned it
 */
struct backend_kept_fd {
	char name[BACKEND_NAME_MAX];
	int fd;
};

/** At most this many descriptors and blob bytes come out of backend_keep(). */
#define BACKEND_KEEP_MAX_FDS (SIM_MAX_DEVICES + 8)
#define BACKEND_KEEP_MAX_BLOB 16384

struct backend_config {
	enum backend_kind kind;
	const char *iommufd_path;	/* iommufd: NULL means /dev/iommu */
	const char *sysfs_root;		/* iommufd: NULL means /sys */
	const char *vfio_dev_dir;	/* iommufd: NULL means /dev/vfio/devices */
	/*
	 * iommufd: where devices come from.  NULL or "vfio": VFIO cdevs, the
	 * production path.  "mock": the kernel's mock IOMMU devices
	 * (CONFIG_IOMMUFD_TEST; named "mock0", "mock1:nodirty", "mock2:huge",
	 * see kernel/iommufd/mock.c), for tests in a VM; they accept
	 * backend_dma_write().  Another name: backend_open() fails -EINVAL.
	 */
	const char *device_provider;
	struct sim_config sim;	/* ignored when adopting: the kept host's */
	/*
	 * Adopt instead of creating: what backend_keep() returned in a
	 * previous process (descriptors by name, in any order, and the
	 * blob).  With n_kept == 0 backend_open() starts a new context.
	 * Adopting takes ownership of every kept descriptor, also when it
	 * fails (each one is then closed).
	 */
	const struct backend_kept_fd *kept;
	size_t n_kept;
	const void *kept_blob;
	size_t kept_blob_len;
};

/** What IOMMU_GET_HW_INFO says of a bound device. */
struct backend_hw_info {
	uint64_t capabilities;		/* enum iommufd_hw_capabilities */
	uint32_t data_type;		/* enum iommu_hw_info_type */
	uint8_t max_pasid_log2;
};

/** A device the backend could bind. */
struct backend_device_name {
	char name[BACKEND_NAME_MAX];
};

/**
 * struct backend_caps - what a backend can do, where backends differ.
 * backend_kind_caps() answers before opening (from the kind alone);
 * backend_caps() answers for an open context, with what it probed.
 *
 * @dirty_read_async: how backend_dirty_read_prep() reads, or NULL where
 *	it cannot (-EOPNOTSUPP): "uring_cmd" (iommufd, where the kernel runs
 *	IOMMU_HWPT_GET_DIRTY_BITMAP as an io_uring command: probed at open;
 *	no stock kernel does, one with kernel/patches/ does), "sim" (the
 *	sim's reader threads).  NULL from backend_kind_caps() of iommufd: it
 *	takes a probe.
 * @dirty_read_sqe128: its SQEs need a ring set up with IORING_SETUP_SQE128
 * @max_leaf: the largest IO page a mapping may get with huge pages on
 *	(iommufd: 1 GiB; sim: its backing page size, 0 before opening)
 * @map_va_base: 0 where IOMMU_IOAS_MAP pins the memory at its user_va
 *	(the caller maps real memory); otherwise the backend keeps no memory,
 *	only checks the address's alignment, and takes @map_va_base + iova
 * @iommufd: the context is a /dev/iommu: backend_iommufd() hands it out
 *	(a client may map through it), backend_open() fails -ENOENT on a
 *	kernel without CONFIG_IOMMUFD
 * @config_devices: the devices are the configuration's
 *	(sim_config.devices), each of which can DMA (backend_dma_write()):
 *	no other device name binds
 * @emulates: the Linux release whose iommufd answers a simulated backend
 *	follows ("6.12.118"), NULL for the real kernel (and before opening)
 */
struct backend_caps {
	const char *dirty_read_async;
	bool dirty_read_sqe128;
	uint64_t max_leaf;
	uint64_t map_va_base;
	bool iommufd;
	bool config_devices;
	const char *emulates;
};

/**
 * struct backend_dirty_read - one asynchronous IOMMU_HWPT_GET_DIRTY_BITMAP
 * (see backend_hwpt_get_dirty_bitmap() for the arguments).  The caller's
 * until its completion; @work is the backend's meanwhile (a backend that
 * reads on threads of its own hands the read to them with it).
 */
struct backend_dirty_read {
	uint32_t hwpt_id;
	uint32_t flags;
	/*
	 * BACKEND_READ_HWPT (0, the default): @hwpt_id's IOMMU dirty bits.
	 * BACKEND_READ_DMA_LOG: device @dev_id's DMA log over the range
	 * (backend_dma_log_report(); @hwpt_id and @flags unused).
	 */
	uint32_t source;
	uint32_t dev_id;
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
	uint64_t *bitmap;
	struct ring_work work;
};

#define BACKEND_READ_HWPT 0
#define BACKEND_READ_DMA_LOG 1

/** One IOVA range of a DMA logging START (struct
 *  vfio_device_feature_dma_logging_range). */
struct backend_dma_log_range {
	uint64_t iova;
	uint64_t length;
};

/* The most ranges the kernel takes in one DMA logging START (Linux's
 * LOG_MAX_RANGES in drivers/vfio/vfio_main.c): -E2BIG above.  A driver may
 * track fewer (the sim's dma_log_max_ranges): it combines them; none says
 * so before START. */
#define BACKEND_DMA_LOG_MAX_RANGES 256

struct backend;
struct io_uring_sqe;

struct backend_ops {
	const char *name;
	void (*close)(struct backend *b);
	void (*leave)(struct backend *b);
	int (*device_enumerate)(struct backend *b,
				struct backend_device_name *names, size_t max);
	int (*device_bind)(struct backend *b, const char *name,
			   uint32_t *out_dev_id);
	/* NULL: backend_device_name_canonical() */
	int (*device_canonical)(struct backend *b, const char *name,
				char *out, size_t len);
	int (*device_unbind)(struct backend *b, uint32_t dev_id);
	int (*device_get_hw_info)(struct backend *b, uint32_t dev_id,
				  struct backend_hw_info *info);
	int (*device_attach)(struct backend *b, uint32_t dev_id,
			     uint32_t pt_id);
	int (*device_detach)(struct backend *b, uint32_t dev_id);
	int (*device_fd)(struct backend *b, uint32_t dev_id);
	int (*ioas_alloc)(struct backend *b, uint32_t *out_ioas_id);
	int (*ioas_iova_alignment)(struct backend *b, uint32_t ioas_id,
				   uint64_t *out_alignment);
	int (*ioas_map)(struct backend *b, uint32_t ioas_id, uint32_t flags,
			void *user_va, uint64_t length, uint64_t *iova);
	int (*ioas_unmap)(struct backend *b, uint32_t ioas_id, uint64_t iova,
			  uint64_t length, uint64_t *out_unmapped);
	int (*ioas_set_huge_pages)(struct backend *b, uint32_t ioas_id,
				   bool enable);
	int (*hwpt_alloc)(struct backend *b, uint32_t dev_id, uint32_t pt_id,
			  uint32_t flags, uint32_t *out_hwpt_id);
	int (*hwpt_set_dirty_tracking)(struct backend *b, uint32_t hwpt_id,
				       bool enable);
	int (*hwpt_get_dirty_bitmap)(struct backend *b, uint32_t hwpt_id,
				     uint64_t iova, uint64_t length,
				     uint64_t page_size, uint64_t *bitmap,
				     uint32_t flags);
	int (*destroy)(struct backend *b, uint32_t id);
	int (*iommufd)(struct backend *b);
	int (*dma_write)(struct backend *b, uint32_t dev_id, uint64_t iova,
			 uint64_t length);
	int (*keep)(struct backend *b, struct backend_kept_fd *fds,
		    size_t max_fds, void *blob, size_t *blob_len);
	void (*caps)(struct backend *b, struct backend_caps *caps);
	/* NULL: -EOPNOTSUPP */
	int (*dirty_read_prep)(struct backend *b, struct io_uring_sqe *sqe,
			       int ring_fd, struct backend_dirty_read *rd,
			       uint64_t user_data);
	/* VFIO device DMA logging; each NULL: -EOPNOTSUPP */
	int (*dma_log_probe)(struct backend *b, uint32_t dev_id);
	int (*dma_log_start)(struct backend *b, uint32_t dev_id,
			     uint64_t *page_size,
			     const struct backend_dma_log_range *ranges,
			     uint32_t nranges);
	int (*dma_log_report)(struct backend *b, uint32_t dev_id,
			      uint64_t iova, uint64_t length,
			      uint64_t page_size, uint64_t *bitmap);
	int (*dma_log_stop)(struct backend *b, uint32_t dev_id);
};

/** Every implementation embeds this as its first member. */
struct backend {
	const struct backend_ops *ops;
};

/**
 * backend_open() - open a context: /dev/iommu, or a new simulated host; or,
 * with cfg->n_kept, adopt the context a previous process kept.
 * Returns 0 or a negative errno; on the iommufd backend -ENOENT when
 * /dev/iommu is missing and -ENODEV when it is not a character device
 * (backend_why() says what it is).  Adopting fails
 * -EUCLEAN when the kept state cannot be trusted (the sim's state was torn
 * by the death of the process that held it in the middle of a change; on
 * iommufd, a kept device the kernel no longer has), -EINVAL when it is
 * not a kept context of this backend kind (another file, another build's
 * layout, a context closed with backend_close()), and -EBUSY when the
 * sim's memory cannot go back at its address in this process (another
 * sim host, or anything else, is mapped there): the caller then starts
 * anew and tells its clients their state is lost.  An adopted context
 * has the objects, ids, mappings, attachments, tracking state and dirty
 * bits it had; calls in flight when its process died are either wholly
 * done or not at all (else -EUCLEAN), except DMA writes and clearing
 * harvests, which may be part done, as on the hardware.
 */
int backend_open(const struct backend_config *cfg, struct backend **out);
/** backend_close() - unbind everything, free everything; NULL is fine.
 *  Kept copies of its descriptors no longer adopt (-EINVAL) or hold
 *  anything on the sim; on iommufd they still hold what was not unbound. */
void backend_close(struct backend *b);
/**
 * backend_leave() - let go of a context in this process only: unmap, close
 * this process's descriptors, free this process's memory, destroy
 * nothing.  What backend_keep() gave out (now in the fd store) holds the
 * objects for the next process to adopt.  NULL is fine.
 */
void backend_leave(struct backend *b);
/** backend_kind_from_string() - "iommufd" or "sim"; -EINVAL otherwise. */
int backend_kind_from_string(const char *s, enum backend_kind *out);
/** backend_kind_name() - "iommufd" or "sim" (what backend_name() of an
 *  open context says); "unknown" for another value. */
const char *backend_kind_name(enum backend_kind kind);
/** backend_kind_caps() - what a context of @kind can do, as far as the
 *  kind alone says (before opening: for checking a configuration);
 *  -EINVAL for an unknown kind. */
int backend_kind_caps(enum backend_kind kind, struct backend_caps *caps);
/** backend_caps() - what the open context @b can do. */
static inline void backend_caps(struct backend *b, struct backend_caps *caps)
{
	b->ops->caps(b, caps);
}
/** backend_name() - "iommufd" or "sim". */
static inline const char *backend_name(const struct backend *b)
{
	return b->ops->name;
}

/**
 * backend_why() - what the last backend_open() or backend_device_bind()
 * of this thread that failed can say beyond its errno: a sentence for a
 * person (without the device's name, which the caller has), e.g. why a
 * device name was refused; NULL when the errno says it all.  Each of those
 * two calls clears it first; the sim never sets it.
 */
const char *backend_why(void);
/** backend_why_clear() - forget the reason (backend_device_bind() does). */
void backend_why_clear(void);

/*
 * Devices.  A name is what the backend's device_enumerate() lists: on
 * iommufd a PCI address (0000:65:00.0; 65:00.0 also binds) or, for a VFIO
 * device without a PCI parent, its cdev name (vfio3), never a path (see
 * kernel/iommufd/sysfs.h); on the sim a configured device name.
 */
/** backend_device_enumerate() - fill up to @max names; returns the count. */
static inline int backend_device_enumerate(struct backend *b,
					   struct backend_device_name *names,
					   size_t max)
{
	return b->ops->device_enumerate(b, names, max);
}
/**
 * backend_device_name_canonical() - @name as dirtyd compares device names,
 * without looking anything up: a PCI address, full or short, hex digits in
 * either case (65:00.0, 0000:65:00.0, 0000:65:00.0 with upper-case hex),
 * in the full lower-case form sysfs and LIST_DEVICES use (0000:65:00.0);
 * any other name as it is.  Writes @out, @len bytes at most with the NUL;
 * -ENAMETOOLONG if it does not fit, -EINVAL for NULL or "".
 */
int backend_device_name_canonical(const char *name, char *out, size_t len);
/*
 * backend_pci_addr_parse() - DDDD:BB:SS.F (4 to 8 domain digits, as sysfs
 * prints a domain with "%04x") or BB:SS.F (domain 0) into the full form,
 * "%04x:%02x:%02x.%x"; -EINVAL for anything else.
 */
#define BACKEND_PCI_ADDR_LEN 24	/* "ffffffff:ff:1f.7" and its NUL, rounded */
int backend_pci_addr_parse(const char *s, char out[BACKEND_PCI_ADDR_LEN]);
/**
 * backend_device_canonical() - the name device_enumerate() lists the
 * device @name by, to compare names of one device given two ways:
 * backend_device_name_canonical(), and on iommufd with VFIO cdevs, the
 * cdev name of a device with a PCI parent is that PCI address (vfio3 ->
 * 0000:65:00.0, from sysfs).  Whether the device exists is not checked
 * (binding does): a name that is no device's comes back canonical.
 * -EINVAL for a name binding would refuse as not a name at all (a path;
 * backend_why() says so), -ENAMETOOLONG as above.
 */
static inline int backend_device_canonical(struct backend *b,
					   const char *name, char *out,
					   size_t len)
{
	backend_why_clear();
	if (!b->ops->device_canonical)
		return backend_device_name_canonical(name, out, len);
	return b->ops->device_canonical(b, name, out, len);
}
/** backend_device_bind() - VFIO_DEVICE_BIND_IOMMUFD.  On iommufd, -EINVAL
 *  for a name that is not one (a path, say), -ENOENT for no such device,
 *  -ENODEV for one not bound to vfio-pci or whose node is not its VFIO
 *  character device; backend_why() says which. */
static inline int backend_device_bind(struct backend *b, const char *name,
				      uint32_t *out_dev_id)
{
	backend_why_clear();
	return b->ops->device_bind(b, name, out_dev_id);
}
/** backend_device_unbind() - close the device (detaching it first). */
static inline int backend_device_unbind(struct backend *b, uint32_t dev_id)
{
	return b->ops->device_unbind(b, dev_id);
}
/** backend_device_get_hw_info() - IOMMU_GET_HW_INFO: the capability. */
static inline int backend_device_get_hw_info(struct backend *b,
					     uint32_t dev_id,
					     struct backend_hw_info *info)
{
	return b->ops->device_get_hw_info(b, dev_id, info);
}
/** backend_device_attach() - VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS or
 *  HWPT; -EINVAL for a device that cannot track on a tracking HWPT. */
static inline int backend_device_attach(struct backend *b, uint32_t dev_id,
					uint32_t pt_id)
{
	return b->ops->device_attach(b, dev_id, pt_id);
}
/** backend_device_detach() - VFIO_DEVICE_DETACH_IOMMUFD_PT. */
static inline int backend_device_detach(struct backend *b, uint32_t dev_id)
{
	return b->ops->device_detach(b, dev_id);
}
/** backend_device_fd() - the device's VFIO fd (to hand to a VMM);
 *  -EOPNOTSUPP where devices have no fd (the sim). */
static inline int backend_device_fd(struct backend *b, uint32_t dev_id)
{
	return b->ops->device_fd(b, dev_id);
}

/* IO address spaces. */
/** backend_ioas_alloc() - IOMMU_IOAS_ALLOC. */
static inline int backend_ioas_alloc(struct backend *b, uint32_t *out_ioas_id)
{
	return b->ops->ioas_alloc(b, out_ioas_id);
}
/** backend_ioas_iova_alignment() - IOMMU_IOAS_IOVA_RANGES'
 *  out_iova_alignment: the smallest page any mapping or bitmap may use. */
static inline int backend_ioas_iova_alignment(struct backend *b,
					      uint32_t ioas_id,
					      uint64_t *out_alignment)
{
	return b->ops->ioas_iova_alignment(b, ioas_id, out_alignment);
}
/** backend_ioas_map() - IOMMU_IOAS_MAP; *iova is in with FIXED_IOVA and
 *  out otherwise.  The sim keeps no memory: it ignores @user_va's
 *  contents but checks its alignment as the kernel does. */
static inline int backend_ioas_map(struct backend *b, uint32_t ioas_id,
				   uint32_t flags, void *user_va,
				   uint64_t length, uint64_t *iova)
{
	return b->ops->ioas_map(b, ioas_id, flags, user_va, length, iova);
}
/** backend_ioas_unmap() - IOMMU_IOAS_UNMAP; @out_unmapped may be NULL. */
static inline int backend_ioas_unmap(struct backend *b, uint32_t ioas_id,
				     uint64_t iova, uint64_t length,
				     uint64_t *out_unmapped)
{
	return b->ops->ioas_unmap(b, ioas_id, iova, length, out_unmapped);
}
/** backend_ioas_set_huge_pages() - IOMMU_OPTION_HUGE_PAGES on an IOAS. */
static inline int backend_ioas_set_huge_pages(struct backend *b,
					      uint32_t ioas_id, bool enable)
{
	return b->ops->ioas_set_huge_pages(b, ioas_id, enable);
}

/* Hardware page tables and dirty tracking. */
/** backend_hwpt_alloc() - IOMMU_HWPT_ALLOC over an IOAS; with
 *  IOMMU_HWPT_ALLOC_DIRTY_TRACKING, -EOPNOTSUPP when @dev_id cannot. */
static inline int backend_hwpt_alloc(struct backend *b, uint32_t dev_id,
				     uint32_t pt_id, uint32_t flags,
				     uint32_t *out_hwpt_id)
{
	return b->ops->hwpt_alloc(b, dev_id, pt_id, flags, out_hwpt_id);
}
/** backend_hwpt_set_dirty_tracking() - IOMMU_HWPT_SET_DIRTY_TRACKING;
 *  enabling clears every dirty bit of every mapped area first. */
static inline int backend_hwpt_set_dirty_tracking(struct backend *b,
						  uint32_t hwpt_id,
						  bool enable)
{
	return b->ops->hwpt_set_dirty_tracking(b, hwpt_id, enable);
}
/**
 * backend_hwpt_get_dirty_bitmap() - IOMMU_HWPT_GET_DIRTY_BITMAP.
 * Sets (never clears) bit k of @bitmap for the page at
 * @iova + k * @page_size if it is dirty; @flags may hold
 * IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR.  Like Linux 6.12, it returns 0 with
 * bits missing when the range crosses a hole or tracking is disabled: the
 * caller must read only mapped ranges of an enabled HWPT.
 */
static inline int backend_hwpt_get_dirty_bitmap(struct backend *b,
						uint32_t hwpt_id,
						uint64_t iova, uint64_t length,
						uint64_t page_size,
						uint64_t *bitmap,
						uint32_t flags)
{
	return b->ops->hwpt_get_dirty_bitmap(b, hwpt_id, iova, length,
					     page_size, bitmap, flags);
}
/**
 * backend_dirty_read_prep() - prepare @sqe, an SQE of the caller's io_uring
 * whose fd is @ring_fd (set up with IORING_SETUP_SQE128 where
 * backend_caps() says dirty_read_sqe128), to read dirty bits as
 * backend_hwpt_get_dirty_bitmap() would with @rd's arguments (or, with
 * @rd->source BACKEND_READ_DMA_LOG, backend_dma_log_report(); a backend
 * that cannot read that source this way returns -EOPNOTSUPP for it, and
 * the caller reads it synchronously).  Once the
 * caller submits it, exactly one CQE comes on that ring with @user_data
 * and res the read's 0 or -errno, once the bits are in @rd->bitmap; until
 * then @rd, its bitmap and the context stay as they are.  Where the backend cannot read this
 * way (backend_caps()' dirty_read_async is NULL), -EOPNOTSUPP and @sqe is
 * left alone; otherwise 0.
 */
static inline int backend_dirty_read_prep(struct backend *b,
					  struct io_uring_sqe *sqe,
					  int ring_fd,
					  struct backend_dirty_read *rd,
					  uint64_t user_data)
{
	if (!b->ops->dirty_read_prep)
		return -EOPNOTSUPP;
	return b->ops->dirty_read_prep(b, sqe, ring_fd, rd, user_data);
}
/*
 * Device DMA logging: VFIO_DEVICE_FEATURE with
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_START / _REPORT / _STOP (Linux 6.2+;
 * kernel/uapi/vfio.h), on the device's own descriptor.  The device records
 * its writes itself, over the ranges given at START, at a page size it
 * chooses; no HWPT is involved, so it works behind IOMMUs without dirty
 * bits.  Every call returns the kernel's 0 or -errno; -EOPNOTSUPP where
 * the backend's devices have no VFIO descriptor (the mock IOMMU's).
 */
/** backend_dma_log_probe() - VFIO_DEVICE_FEATURE_PROBE of
 *  DMA_LOGGING_START: 0 if the device logs, the kernel's -ENOTTY if its
 *  driver has no log_ops. */
static inline int backend_dma_log_probe(struct backend *b, uint32_t dev_id)
{
	if (!b->ops->dma_log_probe)
		return -EOPNOTSUPP;
	return b->ops->dma_log_probe(b, dev_id);
}
/**
 * backend_dma_log_start() - DMA_LOGGING_START over @nranges ranges (in any
 * order, not overlapping, each aligned to *@page_size); *@page_size is in
 * and out: the driver may change it (to its granule).  -E2BIG above
 * BACKEND_DMA_LOG_MAX_RANGES (the caller merges neighbours and retries, as
 * QEMU covers guest RAM with two ranges); above the driver's own limit the
 * driver combines the closest ranges itself.  -EINVAL for no range, an
 * unaligned or overlapping one, -EOVERFLOW for one that wraps, -EINVAL
 * (mlx5, pds) when already started (kernel/sim/dmalog.c has the details).
 */
static inline int backend_dma_log_start(struct backend *b, uint32_t dev_id,
					uint64_t *page_size,
					const struct backend_dma_log_range *r,
					uint32_t nranges)
{
	if (!b->ops->dma_log_start)
		return -EOPNOTSUPP;
	return b->ops->dma_log_start(b, dev_id, page_size, r, nranges);
}
/**
 * backend_dma_log_report() - DMA_LOGGING_REPORT: sets (never clears) bit k
 * of @bitmap for the page at @iova + k * @page_size if the device wrote it
 * since START or the last report, and clears the device's record of what
 * it reported (there is no NO_CLEAR).  @page_size is the caller's (a power
 * of two >= 4 KiB); a device granule coarser than it sets every page of
 * the granule.  -EINVAL when logging was not started (pds also when the
 * range is not inside one range it logs).
 */
static inline int backend_dma_log_report(struct backend *b, uint32_t dev_id,
					 uint64_t iova, uint64_t length,
					 uint64_t page_size, uint64_t *bitmap)
{
	if (!b->ops->dma_log_report)
		return -EOPNOTSUPP;
	return b->ops->dma_log_report(b, dev_id, iova, length, page_size,
				      bitmap);
}
/** backend_dma_log_stop() - DMA_LOGGING_STOP: what was not reported is
 *  gone. */
static inline int backend_dma_log_stop(struct backend *b, uint32_t dev_id)
{
	if (!b->ops->dma_log_stop)
		return -EOPNOTSUPP;
	return b->ops->dma_log_stop(b, dev_id);
}

/** backend_destroy() - IOMMU_DESTROY of an IOAS or HWPT; -EBUSY in use. */
static inline int backend_destroy(struct backend *b, uint32_t id)
{
	return b->ops->destroy(b, id);
}
/** backend_iommufd() - the /dev/iommu fd (to hand to a VMM);
 *  -EOPNOTSUPP on the sim. */
static inline int backend_iommufd(struct backend *b)
{
	return b->ops->iommufd(b);
}
/**
 * backend_dma_write() - make @dev_id write [@iova, @iova + @length) as its
 * DMA would: through its attached page table, setting dirty bits when
 * tracking is on.  For tests and simulated load: the sim's devices and the
 * kernel's mock IOMMU devices do it; -EOPNOTSUPP for real VFIO devices;
 * -ENOENT where @iova is not mapped (an IO page fault).
 */
static inline int backend_dma_write(struct backend *b, uint32_t dev_id,
				    uint64_t iova, uint64_t length)
{
	return b->ops->dma_write(b, dev_id, iova, length);
}

/**
 * backend_keep() - what a restarted process needs to adopt this context:
 * up to @max_fds descriptors (still owned by the backend: the caller
 * passes them to the fd store, it does not close them) and up to
 * *@blob_len bytes of description in @blob (*@blob_len is set to the bytes
 * used).  Returns the number of descriptors, -ENOSPC if either does not
 * fit.  The answer changes with binds, unbinds, attaches and detaches:
 * call it again after each (the sim always answers its one memfd, "sim",
 * and no blob; iommufd answers "iommufd", one "iommufd-dev<N>" per bound
 * device that has a fd, and the device table in the blob).  Objects
 * (IOAS, HWPT, bound devices, mappings, dirty bits) live on while a kept
 * descriptor is open, as they do in the kernel while /dev/iommu is open.
 */
static inline int backend_keep(struct backend *b,
			       struct backend_kept_fd *fds, size_t max_fds,
			       void *blob, size_t *blob_len)
{
	return b->ops->keep(b, fds, max_fds, blob, blob_len);
}

/**
 * struct backend_given_device - a device of a context a client hands back
 * (READOPT): its name, its iommufd dev_id, its descriptor (a VFIO cdev
 * bound to the given iommufd), or -1 where the provider's devices have
 * none (the kernel's mock IOMMU).
 */
struct backend_given_device {
	char name[BACKEND_NAME_MAX];
	uint32_t dev_id;
	int fd;
};

/**
 * backend_open_given() - a context around kernel objects a client still
 * holds after the process that made them went away without a store:
 * @iommufd, which must be a character device of @cfg's /dev/iommu and
 * answer as an iommufd, and @n bound devices attached to @hwpt_id, each
 * checked: its descriptor is the VFIO cdev of the device it names (none
 * for a provider without descriptors), and IOMMU_GET_HW_INFO answers for
 * its dev_id on @iommufd.  Which device a dev_id is, and what a device is
 * attached to, the kernel cannot be asked: those are taken as given.
 * Every descriptor is the backend's from the call on (closed on failure).
 * Returns 0; -EBADF a descriptor that is not what it must be,
 * -ENOENT a dev_id the iommufd does not have (backend_why() says which),
 * -EOPNOTSUPP on the sim (it has no descriptors).
 */
int backend_open_given(const struct backend_config *cfg, int iommufd,
		       const struct backend_given_device *devs, size_t n,
		       uint32_t hwpt_id, struct backend **out);

#endif /* DIRTYD_KERNEL_BACKEND_H */
