/* SPDX-License-Identifier: MIT */
/*
 * libdirty: the client library of dirtyd, the IOMMU dirty-page daemon.
 *
 * A VMM (or any tool) connects to dirtyd over its Unix socket, creates or
 * finds a domain (an IO address space whose devices' DMA writes the IOMMU
 * records), subscribes to it and, in each pre-copy round of a live
 * migration, asks for the pages written since it last asked:
 *
 *	struct dirty *d;
 *	uint64_t gen;
 *
 *	dirty_connect(NULL, 0, &d);
 *	dirty_subscribe(d, domain, 0, 0, NULL);	// every page pending
 *	for (;;) {
 *		dirty_sync(d, domain, &gen, NULL);	// harvest now
 *		dirty_ranges(d, domain, 0, copy_pages, vm, &gen);
 *		dirty_ack(d, domain, gen);	// copied: forget them
 *	}
 *	dirty_close(d);
 *
 * Conventions:
 *  - Every function that can fail returns 0 (or a documented non-negative
 *    value) on success and a negative errno on failure; none reads or
 *    writes the global errno.  When dirtyd refused a request, the errno is
 *    its (e.g. -ENOENT: no such domain, or one you may not see) and
 *    dirty_last_error_text() holds dirtyd's explanation.
 *  - The library never logs and never prints.
 *  - A handle is thread-compatible, not thread-safe: use one handle per
 *    thread, or serialise calls on a handle yourself.  There is no global
 *    state.
 *  - Calls block until dirtyd answers (see dirty_set_timeout()).  Events
 *    that arrive meanwhile are queued for dirty_next_event().
 *  - Page numbers are IOVA / page size, where the page size is the one
 *    dirty_subscribe() reports (and LIST_DOMAINS lists).
 *  - Every public struct begins with `uint32_t size` (the ABI's one rule
 *    for growing):
 *    . a struct you pass (in or out) has @size set by you to its sizeof:
 *      the library reads or writes only the bytes that fit in @size and
 *      refuses a @size below the struct's 1.0 layout with -EINVAL; on
 *      return, @size of an out struct says how many bytes it filled;
 *    . a struct the library returns has @size set by the library to what
 *      it filled: a program compiled against a newer header checks @size
 *      before it reads a field that header added;
 *    . a list the library returns is an array of pointers to structs
 *      (never an array of structs, whose stride would be your sizeof).
 *    Nothing else is reserved.
 *  - DIRTY_VERSION_* say which libdirty a program was compiled against;
 *    dirty_version() which one it runs with.
 *
 * Link with `pkg-config --cflags --libs libdirty`.  See libdirty(3).
 */
#ifndef DIRTYD_LIBDIRTY_DIRTY_H
#define DIRTYD_LIBDIRTY_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library's version (not the protocol's): the major one is the
 * soname's (libdirty.so.1) and moves only when the ABI breaks; a minor
 * one adds functions or struct fields.  DIRTY_VERSION_NUMBER is
 * DIRTY_VERSION(DIRTY_VERSION_MAJOR, DIRTY_VERSION_MINOR,
 * DIRTY_VERSION_PATCH), comparable with what dirty_version() returns.
 */
#define DIRTY_VERSION_MAJOR 1
#define DIRTY_VERSION_MINOR 0
#define DIRTY_VERSION_PATCH 0
#define DIRTY_VERSION(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
#define DIRTY_VERSION_NUMBER \
	DIRTY_VERSION(DIRTY_VERSION_MAJOR, DIRTY_VERSION_MINOR, \
		      DIRTY_VERSION_PATCH)

/** DIRTY_SOCKET_DEFAULT - where dirtyd listens unless told otherwise. */
#define DIRTY_SOCKET_DEFAULT "/run/dirtyd/dirtyd.sock"
/** DIRTY_SOCKET_ENV - environment variable naming another socket. */
#define DIRTY_SOCKET_ENV "DIRTYD_SOCKET"
/** DIRTY_NAME_MAX - bytes of a device name, NUL included. */
#define DIRTY_NAME_MAX 64

/** struct dirty - a connection to dirtyd (opaque). */
struct dirty;

/* dirty_connect() flags. */
enum dirty_connect_flags {
	/* Do not ask for a session token: subscriptions end with the
	 * connection (one-shot tools). */
	DIRTY_CONNECT_NO_RESUME = 1 << 0,
	/* Do not ask for DIRTY_EVENT_ROUND notifications. */
	DIRTY_CONNECT_NO_EVENTS = 1 << 1,
};

/* Feature bits of the session (struct dirty_session.features). */
enum dirty_features {
	DIRTY_FEAT_RANGES_RAW = 1ULL << 0,	/* bitmap chunks */
	DIRTY_FEAT_RESUME = 1ULL << 1,		/* session tokens */
	DIRTY_FEAT_FD_PASSING = 1ULL << 2,	/* dirty_get_fds() */
	DIRTY_FEAT_EVENTS = 1ULL << 3,		/* DIRTY_EVENT_ROUND */
};

/* struct dirty_session.flags */
enum dirty_session_flags {
	/* A resume token matched: subscriptions and their pending pages
	 * are back; generations taken but not acknowledged are pending
	 * again. */
	DIRTY_SESSION_RESUMED = 1 << 0,
	/* A resume token was given but dirtyd no longer had its state:
	 * every page of every domain tracked before must be taken as dirty.
	 * dirty_reconnect() handles this itself (see there). */
	DIRTY_SESSION_STATE_LOST = 1 << 1,
};

/**
 * struct dirty_session - what the handshake established (you pass it).
 * @size: sizeof(struct dirty_session), set by you; on return, what was
 *        filled
 * @version_major: dirtyd's protocol version
 * @version_minor: ditto
 * @max_msg: largest packet dirtyd sends or accepts, in bytes
 * @features: enum dirty_features both sides support
 * @token: the resume token (0 without DIRTY_FEAT_RESUME)
 * @uid: the uid dirtyd knows this client by
 * @gid: its gid
 * @flags: enum dirty_session_flags
 */
struct dirty_session {
	uint32_t size;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t max_msg;
	uint64_t features;
	uint64_t token;
	uint32_t uid;
	uint32_t gid;
	uint32_t flags;
};

/* struct dirty_device.flags */
enum dirty_device_flags {
	DIRTY_DEVICE_DIRTY_CAPABLE = 1 << 0,	/* its IOMMU can track */
	DIRTY_DEVICE_BOUND = 1 << 1,	/* bound to dirtyd's iommufd */
	DIRTY_DEVICE_ATTACHED = 1 << 2,	/* attached to a domain */
};

/**
 * struct dirty_device - one device of the host (the library returns it).
 * @size: bytes the library filled
 * @name: what dirty_domain_create() takes: a PCI address or VFIO cdev name
 *        (vfio3, never a path) on real hardware, a configured name on the
 *        simulated host
 * @capabilities: IOMMU_HW_CAP_* of its IOMMU (0 until bound)
 * @flags: enum dirty_device_flags
 * @domain_id: its domain, 0 for none or one you may not see
 * @dev_id: its iommufd device id, 0 when not bound
 */
struct dirty_device {
	uint32_t size;
	char name[DIRTY_NAME_MAX];
	uint64_t capabilities;
	uint32_t flags;
	uint32_t domain_id;
	uint32_t dev_id;
};

/* Domain status bits: struct dirty_domain.status, dirty_stats.status. */
enum dirty_domain_status {
	DIRTY_DOMAIN_ENABLED = 1 << 0,		/* tracking is on */
	DIRTY_DOMAIN_SUPPORTED = 1 << 1,	/* every device can track */
	DIRTY_DOMAIN_UNSUPPORTED = 1 << 2,	/* created without tracking */
};

/**
 * struct dirty_domain - one domain, as dirty_list_domains() lists it (the
 * library returns it).
 * @size: bytes the library filled
 * @domain_id: dirtyd's id (1, 2, ...; never reused while it runs)
 * @status: enum dirty_domain_status
 * @owner_uid: the uid that created it
 * @devices: devices attached
 * @mapped_bytes: bytes of IOVA mapped
 * @page_size: what one page of a range is, in bytes
 * @generation: harvest rounds completed
 * @subscribers: subscriptions, every client's
 */
struct dirty_domain {
	uint32_t size;
	uint32_t domain_id;
	uint32_t status;
	uint32_t owner_uid;
	uint32_t devices;
	uint64_t mapped_bytes;
	uint64_t page_size;
	uint64_t generation;
	uint32_t subscribers;
};

/**
 * struct dirty_stats - dirty-rate statistics of one domain (the library
 * returns it).
 * @size: bytes the library filled
 * @domain_id: the domain
 * @status: enum dirty_domain_status
 * @generation: harvest rounds completed
 * @last_round_ns: how long the last round took
 * @last_round_pages: pages the last round found dirty
 * @dirty_rate: pages per second: the pages the rounds of the last 10 s
 *   found, over the wall time they cover (0 without a round then)
 * @mapped_bytes: bytes of IOVA mapped
 * @pending_pages: pages pending for this client (0 if not subscribed)
 * @pages_sent: pages sent to this client, all time
 */
struct dirty_stats {
	uint32_t size;
	uint32_t domain_id;
	uint32_t status;
	uint64_t generation;
	uint64_t last_round_ns;
	uint64_t last_round_pages;
	uint64_t dirty_rate;
	uint64_t mapped_bytes;
	uint64_t pending_pages;
	uint64_t pages_sent;
};

/* dirty_domain_create() flags. */
enum dirty_create_flags {
	/* Allocate the domain with dirty tracking; refused (-EOPNOTSUPP)
	 * for a device whose IOMMU cannot track. */
	DIRTY_CREATE_TRACKING = 1 << 0,
	/* 4 KiB IO pages only: each page reported is exactly one page
	 * written (no huge leaves reporting their every page). */
	DIRTY_CREATE_NO_HUGE_PAGES = 1 << 1,
};

/* dirty_map() flags; neither READABLE nor WRITEABLE means both. */
enum dirty_map_flags {
	DIRTY_MAP_READABLE = 1 << 0,
	DIRTY_MAP_WRITEABLE = 1 << 1,
	/* The range is already mapped by the caller through the iommufd of
	 * dirty_get_fds() (IOMMU_IOAS_MAP into its ioas_id): dirtyd only
	 * adds it to its harvest plan.  Remove it with dirty_unmap_flags()
	 * and this flag (dirtyd then unmaps nothing). */
	DIRTY_MAP_EXTERNAL = 1 << 2,
};

/* dirty_subscribe() flags. */
enum dirty_subscribe_flags {
	/* Start with nothing pending: report only pages written from now
	 * on.  Without it every mapped page starts pending, as a migration
	 * that has copied nothing yet needs. */
	DIRTY_SUBSCRIBE_CLEAN = 1 << 0,
};

/**
 * struct dirty_subscription_info - what dirty_subscribe() established (you
 * pass it).
 * @size: sizeof(struct dirty_subscription_info), set by you; on return,
 *        what was filled
 * @domain_id: the domain
 * @page_size: what one page of a range is, in bytes
 * @max_leaf: largest IO page a device write dirties as a whole: a write
 *            anywhere in it reports every page it covers
 * @generation: harvest rounds completed so far
 */
struct dirty_subscription_info {
	uint32_t size;
	uint32_t domain_id;
	uint64_t page_size;
	uint64_t max_leaf;
	uint64_t generation;
};

/* dirty_ranges() flags. */
enum dirty_ranges_flags {
	/* First put every generation taken but not acknowledged back into
	 * pending (after a failed copy, or a lost connection). */
	DIRTY_RANGES_RESEND = 1 << 0,
	/* Acknowledge the generation once every range was reported and the
	 * callback returned 0 for each. */
	DIRTY_RANGES_ACK = 1 << 1,
};

/**
 * typedef dirty_range_fn - called by dirty_ranges() for each run of dirty
 * pages [@first_page, @first_page + @npages), in increasing page order;
 * runs never overlap.  A non-zero return stops the reporting and
 * dirty_ranges() returns it (the generation then stays unacknowledged).
 */
typedef int (*dirty_range_fn)(void *ctx, uint64_t first_page,
			      uint64_t npages);

/* struct dirty_event.type */
enum dirty_event_type {
	/* A periodic harvest round added pages to this client's pending
	 * set (only with DIRTY_FEAT_EVENTS).  Never queued: after one, the
	 * next comes only after dirty_ranges() or dirty_sync() on the domain
	 * (PROTOCOL.md 6.16). */
	DIRTY_EVENT_ROUND = 1,
	/* dirtyd lost track of what is dirty in the domain: every mapped
	 * page must be taken as dirty.  The next dirty_ranges() on the
	 * domain reports them all (see there). */
	DIRTY_EVENT_STATE_LOST = 2,
};

/**
 * struct dirty_event - a notification from dirtyd (you pass it).
 * @size: sizeof(struct dirty_event), set by you; on return, what was filled
 * @type: enum dirty_event_type
 * @domain_id: the domain
 * @generation: DIRTY_EVENT_ROUND: the domain's generation after the round
 * @round_pages: DIRTY_EVENT_ROUND: pages the rounds since the last event,
 *   dirty_ranges() or dirty_sync() of the domain found dirty
 * @pending_pages: DIRTY_EVENT_ROUND: pages now pending for this client
 */
struct dirty_event {
	uint32_t size;
	uint32_t type;
	uint32_t domain_id;
	uint64_t generation;
	uint64_t round_pages;
	uint64_t pending_pages;
};

/**
 * struct dirty_fd_device - one device of a domain, for dirty_get_fds() (the
 * library returns it).
 * @size: bytes the library filled
 * @name: the device's name
 * @dev_id: its iommufd device id
 * @fd: its VFIO device fd (close-on-exec), or -1 once you took it
 */
struct dirty_fd_device {
	uint32_t size;
	char name[DIRTY_NAME_MAX];
	uint32_t dev_id;
	int fd;
};

/**
 * struct dirty_fds - the descriptors of a domain, for a VMM that drives
 * its devices and maps its own memory (QEMU: -object iommufd,fd=N
 * -device vfio-pci,fd=M); the library returns it.
 * @size: bytes the library filled
 * @iommufd: dirtyd's iommufd (close-on-exec), or -1 once you took it
 * @ioas_id: the domain's IO address space, where to map guest memory
 * @hwpt_id: its hardware page table
 * @n_devices: entries of @devices
 * @devices: the devices attached to the domain, @n_devices pointers
 */
struct dirty_fds {
	uint32_t size;
	int iommufd;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	size_t n_devices;
	struct dirty_fd_device **devices;
};

/* ---- The library ---------------------------------------------------- */

/**
 * dirty_version() - the version of the libdirty the program runs with, as
 * DIRTY_VERSION(major, minor, patch): compare it with DIRTY_VERSION_NUMBER
 * (the header's) to know whether a function or field of a newer minor
 * version is there.
 */
unsigned int dirty_version(void);

/** dirty_version_string() - the same as "MAJOR.MINOR.PATCH" (static). */
const char *dirty_version_string(void);

/* ---- Connections ---------------------------------------------------- */

/**
 * dirty_connect() - connect to dirtyd and shake hands.
 * @path: the socket; NULL means $DIRTYD_SOCKET if set (and the process is
 *        not set-id), else DIRTY_SOCKET_DEFAULT
 * @flags: enum dirty_connect_flags
 * @out: the new handle
 *
 * Return: 0; -ENOENT or -ECONNREFUSED when dirtyd does not listen there;
 * -EACCES when the socket's permissions keep you out; -EPROTONOSUPPORT
 * when dirtyd speaks another major version; -EUSERS when dirtyd has too
 * many clients; -ENOMEM; -EINVAL for bad arguments.
 */
int dirty_connect(const char *path, uint64_t flags, struct dirty **out);

/**
 * dirty_connect_resume() - connect with the session token of an earlier
 * connection (dirty_session_token()) to get its subscriptions back.
 * @path: as for dirty_connect()
 * @token: the earlier session's token
 * @flags: as for dirty_connect()
 * @out: the new handle
 *
 * Check dirty_session(): DIRTY_SESSION_RESUMED means the subscriptions and
 * their pending pages are back (generations not acknowledged are pending
 * again); DIRTY_SESSION_STATE_LOST means they are gone (the token expired,
 * or dirtyd restarted): take every page as dirty, subscribe again (a new
 * subscription starts with every page pending) and copy everything.
 *
 * Return: as dirty_connect().
 */
int dirty_connect_resume(const char *path, uint64_t token, uint64_t flags,
			 struct dirty **out);

/**
 * dirty_reconnect() - replace a broken connection of @d (dirtyd restarted,
 * or a call returned -ECONNRESET / -EPIPE / -EPROTO) by a new one to the
 * same socket, resuming the session if dirtyd still has it.  If it does
 * not (DIRTY_SESSION_STATE_LOST), every subscription @d had is marked
 * lost: the next dirty_ranges() on each domain subscribes again and
 * reports every mapped page.  Events not yet read are kept.
 *
 * Return: as dirty_connect(); on failure @d stays usable for another try
 * (other calls return -ENOTCONN meanwhile).
 */
int dirty_reconnect(struct dirty *d);

/**
 * dirty_close() - close the connection and free @d.  Subscriptions end
 * (unless the session has a token: then dirtyd keeps them for its resume
 * grace period).  NULL is fine.
 */
void dirty_close(struct dirty *d);

/**
 * dirty_fd() - the socket, for the caller's poll loop: it is readable when
 * dirtyd sent something unasked (an event); then call dirty_next_event()
 * until it returns 0.  Events that arrive while a call waits for its
 * answer are queued in the handle and do not make the socket readable:
 * drain dirty_next_event() after calls too.  Do not read from or write to
 * the socket yourself.  It changes with dirty_reconnect().
 */
int dirty_fd(const struct dirty *d);

/**
 * dirty_session() - what the handshake established.
 * @out: set @out->size to sizeof(*out) first
 * Return: 0, or -EINVAL for NULL arguments or an @out->size below 1.0's.
 */
int dirty_session(const struct dirty *d, struct dirty_session *out);

/** dirty_session_token() - the resume token, 0 if the session has none. */
uint64_t dirty_session_token(const struct dirty *d);

/**
 * dirty_set_timeout() - how long a call waits for dirtyd's answer.
 * @timeout_ms: milliseconds; 0 (the default) waits forever
 *
 * A call that times out returns -ETIMEDOUT; its late answer is discarded
 * when it arrives, so the handle stays usable.
 * Return: 0, or -EINVAL.
 */
int dirty_set_timeout(struct dirty *d, int timeout_ms);

/**
 * dirty_last_error_text() - dirtyd's explanation of why the last failed
 * call on @d was refused, e.g. "device sim-legacy0 cannot track dirty
 * pages (...)"; NULL when the last call succeeded or failed on this side
 * (then the errno it returned says everything).  Valid until the next
 * call on @d.
 */
const char *dirty_last_error_text(const struct dirty *d);

/* ---- Devices and domains -------------------------------------------- */

/**
 * dirty_list_devices() - every device dirtyd could use, with whether its
 * IOMMU can track dirty pages.
 * @list: set to a malloc()ed array of @n pointers to the devices, then a
 *        NULL; one allocation: release it all with free(*list)
 * @n: set to the number of devices
 * Return: 0 or a negative errno.
 */
int dirty_list_devices(struct dirty *d, struct dirty_device ***list,
		       size_t *n);

/**
 * dirty_list_domains() - the domains you may see (yours; every one for
 * root and members of dirtyd's admin group), with their status.
 * @list: set to a malloc()ed array of @n pointers, then a NULL (release
 *        it all with free(*list))
 * @n: set to the number of domains
 * Return: 0 or a negative errno.
 */
int dirty_list_domains(struct dirty *d, struct dirty_domain ***list,
		       size_t *n);

/**
 * dirty_domain_create() - create a domain with @device attached.
 * @device: a name from dirty_list_devices()
 * @flags: enum dirty_create_flags
 * @domain_id: set to the new domain's id
 * @dev_id: set to the device's iommufd id (may be NULL)
 *
 * Return: 0; -EOPNOTSUPP when DIRTY_CREATE_TRACKING is asked of a device
 * that cannot track (create it without, in a domain of its own); -EBUSY
 * when the device is in a domain already; -ENOENT when there is no such
 * device; -EDQUOT when you own too many domains.
 */
int dirty_domain_create(struct dirty *d, const char *device, uint32_t flags,
			uint32_t *domain_id, uint32_t *dev_id);

/**
 * dirty_domain_attach() - attach another device to a domain.
 * @dev_id: set to its iommufd id (may be NULL)
 * Return: 0; -EINVAL when the domain tracks and the device cannot; -EBUSY
 * when the device is in a domain; -ENOENT for no such domain.
 */
int dirty_domain_attach(struct dirty *d, uint32_t domain_id,
			const char *device, uint32_t *dev_id);

/**
 * dirty_domain_detach() - detach a device from a domain (and unbind it).
 * Return: 0 or a negative errno.
 */
int dirty_domain_detach(struct dirty *d, uint32_t domain_id,
			const char *device);

/**
 * dirty_domain_destroy() - detach and unbind every device, unmap, and
 * drop every subscription (with their pending pages).
 * Return: 0 or a negative errno (-ENOENT: no such domain).
 */
int dirty_domain_destroy(struct dirty *d, uint32_t domain_id);

/**
 * dirty_map() - map [@iova, @iova + @length) with memory dirtyd provides
 * (for guests it simulates or tests); or, with DIRTY_MAP_EXTERNAL, have
 * dirtyd track a range the caller mapped itself into the IOAS it got from
 * dirty_get_fds().
 * @flags: enum dirty_map_flags; without READABLE or WRITEABLE, both
 * Return: 0; -EINVAL when @iova or @length is not a multiple of the page
 * size; -EEXIST when part of the range is mapped already; -EOPNOTSUPP for
 * DIRTY_MAP_EXTERNAL on the simulated host.
 */
int dirty_map(struct dirty *d, uint32_t domain_id, uint64_t iova,
	      uint64_t length, uint32_t flags);

/**
 * dirty_unmap() - unmap [@iova, @iova + @length), which must cover whole
 * mappings (one or more dirty_map() ranges).  Pages written before the
 * unmap still reach every subscriber.
 * Return: 0; -EINVAL when the range would split a mapping.
 */
int dirty_unmap(struct dirty *d, uint32_t domain_id, uint64_t iova,
		uint64_t length);

/**
 * dirty_unmap_flags() - dirty_unmap() with @flags: 0 or DIRTY_MAP_EXTERNAL
 * (ranges mapped with DIRTY_MAP_EXTERNAL: dirtyd drops them from its plan
 * and unmaps nothing; unmap them through your iommufd afterwards).
 * Return: as dirty_unmap(); -EINVAL when @flags does not match how a
 * covered mapping was made.
 */
int dirty_unmap_flags(struct dirty *d, uint32_t domain_id, uint64_t iova,
		      uint64_t length, uint32_t flags);

/**
 * dirty_track_start() - enable dirty tracking.  Subscribers that existed
 * while it was off get every mapped page pending (writes then went
 * unrecorded).
 * Return: 0; -EOPNOTSUPP for a domain created without tracking.
 */
int dirty_track_start(struct dirty *d, uint32_t domain_id);

/** dirty_track_stop() - disable dirty tracking; subscriptions stay.
 *  Return: 0 or a negative errno. */
int dirty_track_stop(struct dirty *d, uint32_t domain_id);

/* ---- Subscriptions and ranges --------------------------------------- */

/**
 * dirty_subscribe() - subscribe this connection to a domain's dirty pages.
 * @interval_ms: harvest the domain every so many milliseconds (the
 *               domain's period is its subscribers' smallest); 0 harvests
 *               only on dirty_sync()
 * @flags: enum dirty_subscribe_flags
 * @info: set to the page size and generation (may be NULL; else set
 *        @info->size to sizeof(*info) first)
 * Return: 0; -EEXIST when subscribed already; -EDQUOT past dirtyd's limit
 * of subscriptions per client; -EINVAL for an @info->size below 1.0's
 * (nothing is sent then).
 */
int dirty_subscribe(struct dirty *d, uint32_t domain_id, uint32_t interval_ms,
		    uint32_t flags, struct dirty_subscription_info *info);

/**
 * dirty_unsubscribe() - end the subscription and drop its pending pages.
 * Return: 0 or a negative errno.
 */
int dirty_unsubscribe(struct dirty *d, uint32_t domain_id);

/**
 * dirty_sync() - harvest the domain now: when it returns, every page
 * written before the call is pending for this subscription.
 * @generation: set to the round's generation (may be NULL)
 * @pending_pages: set to the pages now pending (may be NULL)
 * Return: 0; -EINVAL when tracking is off; an error of the harvest.
 */
int dirty_sync(struct dirty *d, uint32_t domain_id, uint64_t *generation,
	       uint64_t *pending_pages);

/**
 * dirty_ranges() - take everything pending as a new generation and report
 * its pages to @fn, run by run, in increasing page order.
 * @flags: enum dirty_ranges_flags
 * @fn: called for each run (see dirty_range_fn)
 * @ctx: passed to @fn
 * @generation: set to the generation to acknowledge (may be NULL)
 *
 * Acknowledge the generation with dirty_ack() once its pages are copied.
 * Taking ranges again before acknowledging sends the same generation
 * again if no round ran in between.  If dirtyd lost the domain's state
 * (DIRTY_EVENT_STATE_LOST, or a reconnect that could not resume), the
 * call first subscribes again, so that it reports every mapped page.
 *
 * Return: 0; -EBADMSG when dirtyd sent a malformed stream (ranges may have
 * been reported; take them again with DIRTY_RANGES_RESEND); the non-zero
 * value @fn returned; -ENOENT when not subscribed.
 */
int dirty_ranges(struct dirty *d, uint32_t domain_id, uint32_t flags,
		 dirty_range_fn fn, void *ctx, uint64_t *generation);

/**
 * dirty_ranges_lebitmap() - dirty_ranges() into a bitmap: take everything
 * pending as a new generation and set (OR: never clear) in @bitmap one bit
 * per @page_size bytes of [@iova, @iova + @length) that a dirty run
 * touches, as QEMU's physical_memory_set_dirty_lebitmap() reads it: bit k
 * (the page at @iova + k * @page_size) is bit k % BITS of little-endian
 * word k / BITS, BITS the bits of an unsigned long.  Where @page_size is
 * coarser than the domain's page, a run sets every bit it touches; where
 * it is finer, every bit of each page (rounded out, never in).
 * @flags: enum dirty_ranges_flags (DIRTY_RANGES_ACK: acknowledge only when
 *         every run was inside the window)
 * @iova: the window's first byte, a multiple of @page_size
 * @length: its bytes, a non-zero multiple of @page_size
 * @page_size: bytes per bit, a power of two
 * @bitmap: @length / @page_size bits, rounded up to whole unsigned longs
 * @generation: set to the generation to acknowledge (may be NULL)
 *
 * The window is meant to cover the domain's whole mapped IOVA space: a
 * generation is taken whole.  A run (or part of one) outside the window is
 * not lost: the bits of what lies inside are set all the same, the
 * generation is not acknowledged (even with DIRTY_RANGES_ACK) and the call
 * returns -ERANGE; take it again with DIRTY_RANGES_RESEND and a window that
 * covers it, or with dirty_ranges().
 *
 * Return: 0; -ERANGE as above (@generation is set then too); -EINVAL for
 * a bad window or page size (nothing is taken then); otherwise as
 * dirty_ranges().
 */
int dirty_ranges_lebitmap(struct dirty *d, uint32_t domain_id, uint32_t flags,
			  uint64_t iova, uint64_t length, uint64_t page_size,
			  unsigned long *bitmap, uint64_t *generation);

/**
 * dirty_ack() - the pages of @generation are copied: forget them.
 * Return: 0; -ENOENT when @generation is not unacknowledged.
 */
int dirty_ack(struct dirty *d, uint32_t domain_id, uint64_t generation);

/**
 * dirty_stats() - dirty-rate statistics.
 * @domain_id: one domain, or 0 for every domain you may see
 * @list: set to a malloc()ed array of @n pointers, then a NULL (release
 *        it all with free(*list))
 * @n: set to the number of domains
 * Return: 0 or a negative errno.
 */
int dirty_stats(struct dirty *d, uint32_t domain_id,
		struct dirty_stats ***list, size_t *n);

/**
 * dirty_metrics() - dirtyd's figures as OpenMetrics text (PROTOCOL.md
 * 6.17): per-domain families for the domains you may see (@domain_id:
 * one of them, or 0 for all), daemon-wide ones as your access allows.
 * @text: set to a malloc()ed, NUL-terminated text ending in "# EOF\n"
 *	(release it with free())
 * @len: set to its length without the NUL (may be NULL)
 * Return: 0 or a negative errno (-ENOENT: no such domain you may see).
 */
int dirty_metrics(struct dirty *d, uint32_t domain_id, char **text,
		  size_t *len);

/**
 * dirty_next_event() - the next notification, without blocking.
 * @ev: set to the event when one is returned (set @ev->size to
 *      sizeof(*ev) first)
 * Return: 1 with @ev set, 0 when there is none, or a negative errno
 * (-EINVAL for an @ev->size below 1.0's: no event is consumed).
 */
int dirty_next_event(struct dirty *d, struct dirty_event *ev);

/* ---- Descriptors and test devices ----------------------------------- */

/**
 * dirty_get_fds() - receive dirtyd's iommufd and the VFIO fds of the
 * domain's devices (owner or admin only), to drive the devices and map
 * guest memory into the domain's IOAS while dirtyd keeps tracking.
 * @out: set to a malloc()ed struct (its devices in the same allocation);
 *       release it with dirty_fds_free(), which closes every descriptor
 *       still in it (set a field to -1 to keep that descriptor)
 * Return: 0; -EOPNOTSUPP on the simulated host or without
 * DIRTY_FEAT_FD_PASSING; -ENOENT for no such domain.
 */
int dirty_get_fds(struct dirty *d, uint32_t domain_id, struct dirty_fds **out);

/** dirty_fds_free() - close the descriptors left in @fds, free it; NULL is
 *  fine. */
void dirty_fds_free(struct dirty_fds *fds);

/**
 * dirty_dma_write() - make the domain's first device write
 * [@iova, @iova + @length) as its DMA would: for tests and demos on the
 * simulated host.
 * Return: 0; -EOPNOTSUPP on real devices; -ENOENT where nothing is mapped.
 */
int dirty_dma_write(struct dirty *d, uint32_t domain_id, uint64_t iova,
		    uint64_t length);

/* ---- Adoption: ADOPT, UNADOPT, READOPT (docs/ADOPTION.md) ---------- */

/*
 * A VMM that adopts a domain maps its own guest memory into the domain's
 * IOAS (dirty_ioas_map()), never binds, attaches, allocates, toggles
 * tracking or reads dirty bits itself, and takes the dirty ranges from
 * dirtyd.  The structs follow libdirty 1.0's rule: each begins with its
 * size (the caller's: set to sizeof by the caller; the library's: set to
 * what the library filled), lists are arrays of pointers.
 */

/** HELLO feature of adoption: dirty_adopt(), dirty_unadopt(),
 *  dirty_readopt() (PROTO_FEAT_ADOPT). */
#define DIRTY_FEAT_ADOPT (1ULL << 4)

/* struct dirty_adoption.flags */
#define DIRTY_ADOPT_HUGE_PAGES_OFF (1u << 0)	/* IOMMU_OPTION_HUGE_PAGES 0 */
#define DIRTY_ADOPT_VERIFIES_EXTERNAL (1u << 1)	/* declarations probed */
#define DIRTY_ADOPT_NO_IOMMUFD (1u << 2)	/* no descriptors (the sim) */
/* struct dirty_adopt_device.flags */
#define DIRTY_ADOPT_DEV_BOUND (1u << 0)
#define DIRTY_ADOPT_DEV_ATTACHED (1u << 1)	/* to hwpt_id: never touch */

/**
 * struct dirty_adopt_device - one device of an adopted domain.
 * @size: what the library filled (sizeof at its build)
 * @dev_id: its iommufd device id (IOMMU_GET_HW_INFO takes it)
 * @flags: DIRTY_ADOPT_DEV_*
 * @fd: its VFIO cdev descriptor (close-on-exec), or -1: none (a mock
 *      IOMMU device) or you took it
 * @name: as dirtyd names it
 */
struct dirty_adopt_device {
	uint32_t size;
	uint32_t dev_id;
	uint32_t flags;
	int fd;
	char name[DIRTY_NAME_MAX];
};

/**
 * struct dirty_adoption - what dirty_adopt() hands over.
 * @size: what the library filled
 * @domain_id: the domain
 * @ioas_id: where to map guest memory (dirty_ioas_map())
 * @hwpt_id: dirtyd's HWPT: never attach, free, toggle or clear-read it
 * @status: DIRTY_DOMAIN_*
 * @flags: DIRTY_ADOPT_*
 * @page_size: the unit of every range dirtyd reports
 * @max_leaf: the largest IO page a write dirties as a whole
 * @lease: the lease's id (dirty_readopt() gives it back)
 * @iommufd: the domain's /dev/iommu file (close-on-exec), -1 on the sim
 *      or once you took it
 * @n_devices: entries of @devices
 * @devices: the domain's devices
 */
struct dirty_adoption {
	uint32_t size;
	uint32_t domain_id;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	uint32_t status;
	uint32_t flags;
	uint64_t page_size;
	uint64_t max_leaf;
	uint64_t lease;
	int iommufd;
	size_t n_devices;
	struct dirty_adopt_device **devices;
};

/**
 * dirty_adopt() - adopt domain @domain_id (owner or admin): receive its
 * descriptors and ids, and a lease; from then on DESTROY_DOMAIN and
 * DETACH_DEVICE answer EBUSY until dirty_unadopt().  If this session goes
 * away without coming back (dirty_connect_resume()) within resume_grace
 * and its process is gone, dirtyd unmaps the ranges it declared and ends
 * the lease.
 * @out: set to a malloc()ed struct; dirty_adoption_free() closes what is
 *       left in it
 * Return: 0; -EOPNOTSUPP without DIRTY_FEAT_ADOPT (or, on iommufd,
 * DIRTY_FEAT_FD_PASSING); -EBUSY already adopted; -ENOENT no such domain.
 */
int dirty_adopt(struct dirty *d, uint32_t domain_id,
		struct dirty_adoption **out);
/** dirty_adoption_free() - close the descriptors left in @a, free it;
 *  NULL is fine. */
void dirty_adoption_free(struct dirty_adoption *a);
/**
 * dirty_unadopt() - end the lease of @domain_id (its session, or an
 * admin), after unmapping your ranges.
 * Return: 0; -EINVAL not adopted; -EPERM another's lease.
 */
int dirty_unadopt(struct dirty *d, uint32_t domain_id);

/**
 * struct dirty_readopt_device - a device you hold, for dirty_readopt().
 * @size: sizeof(struct dirty_readopt_device), set by you
 * @dev_id: its iommufd device id (from the adoption)
 * @fd: its VFIO cdev descriptor, or -1 for a device without one
 * @name: its name (as the adoption gave it)
 */
struct dirty_readopt_device {
	uint32_t size;
	uint32_t dev_id;
	int fd;
	char name[DIRTY_NAME_MAX];
};

/**
 * struct dirty_iova_range - a range you mapped into the IOAS.
 * @size: sizeof(struct dirty_iova_range), set by you
 */
struct dirty_iova_range {
	uint32_t size;
	uint64_t iova;
	uint64_t length;
};

/**
 * struct dirty_readopt - what dirty_readopt() hands back, set by you.
 * @size: sizeof(struct dirty_readopt)
 * @create_flags: the DIRTY_CREATE_* the domain was created with
 * @ioas_id, @hwpt_id: as the adoption gave them
 * @lease: the adoption's lease, or 0
 * @iommufd: the adoption's iommufd
 * @n_devices, @devices: every device of the domain
 * @n_ranges, @ranges: every range you mapped and declared, in increasing
 *      IOVA order
 */
struct dirty_readopt {
	uint32_t size;
	uint32_t create_flags;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	uint64_t lease;
	int iommufd;
	size_t n_devices;
	const struct dirty_readopt_device *const *devices;
	size_t n_ranges;
	const struct dirty_iova_range *const *ranges;
};

/**
 * dirty_readopt() - hand a dirtyd that lost its state (stopped without a
 * store) the kernel objects of a domain you adopted: it checks them,
 * rebuilds the domain (a new id, yours) and gives you a lease.  Your
 * descriptors stay yours (copies are sent).  Subscriptions of the old
 * domain are gone: subscribe again; dirty bits the IOMMU recorded
 * meanwhile are still in its page tables and reach the new subscription.
 * @domain_id: set to the new domain's id
 * Return: 0; -EOPNOTSUPP on the sim or without DIRTY_FEAT_ADOPT; -EBADF a
 * descriptor that is not what it says; -ENOENT an id the iommufd does not
 * have; -EINVAL a range not wholly mapped (or tracking off); -EACCES a
 * device your uid may not claim; -EBUSY a device already in a domain.
 */
int dirty_readopt(struct dirty *d, const struct dirty_readopt *r,
		  uint32_t *domain_id);

/**
 * dirty_ioas_map() - map [@va, @va + @length) of your memory at @iova of
 * @ioas_id through @iommufd (IOMMU_IOAS_MAP, FIXED_IOVA) and declare it
 * to dirtyd (dirty_map() with DIRTY_MAP_EXTERNAL), in that order; if the
 * declaration fails, the mapping is undone: no undeclared mapping stays.
 * @flags: DIRTY_MAP_READABLE / DIRTY_MAP_WRITEABLE (neither: both)
 * Return: 0; the kernel's or dirtyd's negative errno.
 */
int dirty_ioas_map(struct dirty *d, uint32_t domain_id, int iommufd,
		   uint32_t ioas_id, void *va, uint64_t iova, uint64_t length,
		   uint32_t flags);
/**
 * dirty_ioas_unmap() - withdraw the declaration of [@iova, @iova +
 * @length) (dirtyd harvests it one last time), then IOMMU_IOAS_UNMAP it.
 * Stop the device's DMA to the range first.
 * Return: 0; dirtyd's negative errno (nothing unmapped) or the kernel's.
 */
int dirty_ioas_unmap(struct dirty *d, uint32_t domain_id, int iommufd,
		     uint32_t ioas_id, uint64_t iova, uint64_t length);
/*
 * A domain's sources of dirty bits (issue 17; PROTOCOL.md 6.4, 6.21).
 * A tracking domain sees each device's writes by its own DMA log if it has
 * one, else by its IOMMU's dirty bits (one HWPT per IOMMU, their bits
 * ORed); DIRTY_CREATE_SOURCE_* narrow that to one way, and a device that
 * can do neither is refused unless DIRTY_CREATE_ALL_DIRTY.  Whatever the
 * sources, dirty_ranges() delivers one stream.
 */
/* dirty_connect() negotiates it when dirtyd offers it (dirty_session()) */
#define DIRTY_FEAT_SOURCES (1ULL << 5)
/* dirty_domain_create() flags (with DIRTY_CREATE_TRACKING) */
#define DIRTY_CREATE_SOURCE_IOMMU (1u << 2)	/* IOMMU dirty bits only */
#define DIRTY_CREATE_SOURCE_DEVICE (1u << 3)	/* device DMA logging only */
#define DIRTY_CREATE_ALL_DIRTY (1u << 4)	/* accept a device that can do
						 * neither: every page dirty */
/* struct dirty_domain's status: a device is taken as all dirty */
#define DIRTY_DOMAIN_ALL_DIRTY (1u << 3)
/* struct dirty_device's flags: the device logs its own DMA */
#define DIRTY_DEVICE_DMA_LOGGING (1u << 3)

/* struct dirty_source's kind */
enum dirty_source_kind {
	DIRTY_SOURCE_HWPT = 1,		/* a HWPT with dirty tracking: read */
	DIRTY_SOURCE_DMA_LOG = 2,	/* a device's DMA log: read */
	DIRTY_SOURCE_HWPT_PLAIN = 3,	/* a HWPT without tracking */
};

/**
 * struct dirty_source - one source of a domain, as dirty_list_sources()
 * lists it (the library returns it).
 * @size: bytes the library filled
 * @domain_id: its domain
 * @kind: enum dirty_source_kind
 * @id: the HWPT's iommufd id, or the logging device's dev_id
 * @devices: devices attached to the HWPT (1 for a log)
 * @device: the log's device, or the HWPT's first
 * @page_size: a HWPT: the domain's page size; a log: the device's, from
 *             its START (0 while not started)
 * @ranges: a log: IOVA ranges its START covers (0: not started)
 * @max_ranges: a log: the most ranges a START took after the device
 *              refused more (0: none refused)
 * @rounds: rounds that read it, since dirtyd started
 * @errors: its reads that failed
 * @restarts: a log: STOP and START again by a MAP outside its ranges
 */
struct dirty_source {
	uint32_t size;
	uint32_t domain_id;
	uint32_t kind;
	uint32_t id;
	uint32_t devices;
	char device[DIRTY_NAME_MAX];
	uint64_t page_size;
	uint32_t ranges;
	uint32_t max_ranges;
	uint64_t rounds;
	uint64_t errors;
	uint64_t restarts;
};

/**
 * dirty_list_sources() - where @domain_id's rounds read dirty bits from.
 * @list: set to a malloc()ed array of @n pointers, then a NULL (release it
 *        all with free(*list))
 * @n: set to the number of sources
 * Return: 0; -EOPNOTSUPP when dirtyd does not offer DIRTY_FEAT_SOURCES;
 * -ENOENT for no such domain (or one you may not see); -EINVAL for
 * domain 0.
 */
int dirty_list_sources(struct dirty *d, uint32_t domain_id,
		       struct dirty_source ***list, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* DIRTYD_LIBDIRTY_DIRTY_H */
