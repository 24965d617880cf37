/* SPDX-License-Identifier: MIT */
/*
 * The dirtyd wire protocol: constants, message layouts and the codec.
 * protocol/PROTOCOL.md is the normative text; this header mirrors it.
 *
 * Transport: a SOCK_SEQPACKET Unix socket, one message per packet.  Every
 * integer is little-endian; every message starts with a 16-byte header:
 *
 *   0  le16 type      enum proto_type
 *   2  le16 flags     enum proto_flags; other bits must be 0
 *   4  le32 length    bytes of the whole message, header included; equal
 *                     to the packet's size; 16 .. PROTO_MAX_MSG
 *   8  le64 id        request id chosen by the client (non-zero); a reply
 *                     and every packet of a stream carry the request's id;
 *                     an event carries 0
 *
 * The codec (proto.c) turns a packet into a struct proto_msg and back.
 * Decoding validates everything before it returns: the header, the exact
 * body size of fixed messages, counts against the length, strings (NUL
 * padded, at least one NUL, nothing after the first NUL but NULs), reserved
 * fields (0) and known flag bits.  It returns -EBADMSG for a malformed
 * message, -EMSGSIZE for a length over PROTO_MAX_MSG or not the packet's
 * size, -EPROTO for an unknown type.  Variable parts (lists, chunks, text)
 * point into the packet: a decoded message lives as long as its buffer.
 */
#ifndef DIRTYD_PROTOCOL_PROTO_H
#define DIRTYD_PROTOCOL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/chunk.h"

#define PROTO_VERSION_MAJOR 1
#define PROTO_VERSION_MINOR 0
#define PROTO_HEADER_SIZE 16u
#define PROTO_MAX_MSG 65536u		/* bytes, header included */
#define PROTO_NAME_MAX 64u		/* device names: NUL padded */
#define PROTO_ERROR_TEXT_MAX 1024u

/* Feature bits exchanged in HELLO: the reply holds the intersection. */
enum proto_features {
	PROTO_FEAT_RANGES_RAW = 1ULL << 0,	/* CHUNK_RAW chunks */
	PROTO_FEAT_RESUME = 1ULL << 1,	/* session tokens, resume */
	PROTO_FEAT_FD_PASSING = 1ULL << 2,	/* GET_FDS */
	PROTO_FEAT_EVENTS = 1ULL << 3,	/* EV_ROUND notifications */
	PROTO_FEAT_ADOPT = 1ULL << 4,	/* ADOPT, UNADOPT, READOPT */
	PROTO_FEAT_SOURCES = 1ULL << 5,	/* LIST_SOURCES, CREATE_DOMAIN's
					 * SOURCE_* and ALL_DIRTY */
};
#define PROTO_FEATURES_ALL 0x3fULL

enum proto_flags {
	PROTO_F_MORE = 1 << 0,	/* a stream packet; more follow */
};

enum proto_type {
	/* requests (client -> dirtyd); each is answered by its _REPLY, by
	 * PROTO_ERROR, or (GET_RANGES) by a stream of PROTO_RANGES */
	PROTO_HELLO = 0x0001,
	PROTO_LIST_DEVICES = 0x0002,
	PROTO_LIST_DOMAINS = 0x0003,
	PROTO_CREATE_DOMAIN = 0x0004,
	PROTO_ATTACH_DEVICE = 0x0005,
	PROTO_DETACH_DEVICE = 0x0006,
	PROTO_DESTROY_DOMAIN = 0x0007,
	PROTO_MAP = 0x0008,
	PROTO_UNMAP = 0x0009,
	PROTO_TRACK_START = 0x000a,
	PROTO_TRACK_STOP = 0x000b,
	PROTO_SUBSCRIBE = 0x000c,
	PROTO_UNSUBSCRIBE = 0x000d,
	PROTO_SYNC = 0x000e,
	PROTO_GET_RANGES = 0x000f,
	PROTO_ACK = 0x0010,
	PROTO_STATS = 0x0011,
	PROTO_GET_FDS = 0x0012,
	PROTO_DMA_WRITE = 0x0013,	/* test devices only (sim, mock) */
	PROTO_METRICS = 0x0014,		/* OpenMetrics text (a stream) */
	PROTO_ADOPT = 0x0015,		/* a VMM takes a domain's handoff */
	PROTO_UNADOPT = 0x0016,		/* ends the lease (answered OK) */
	PROTO_READOPT = 0x0017,		/* hands kernel objects back */
	PROTO_LIST_SOURCES = 0x0018,	/* a domain's sources (SOURCES) */

	/* replies: request type | PROTO_REPLY */
	PROTO_REPLY = 0x8000,
	PROTO_HELLO_REPLY = PROTO_REPLY | PROTO_HELLO,
	PROTO_LIST_DEVICES_REPLY = PROTO_REPLY | PROTO_LIST_DEVICES,
	PROTO_LIST_DOMAINS_REPLY = PROTO_REPLY | PROTO_LIST_DOMAINS,
	PROTO_CREATE_DOMAIN_REPLY = PROTO_REPLY | PROTO_CREATE_DOMAIN,
	PROTO_ATTACH_DEVICE_REPLY = PROTO_REPLY | PROTO_ATTACH_DEVICE,
	PROTO_OK = PROTO_REPLY | 0x00ff,	/* empty success reply */
	PROTO_SUBSCRIBE_REPLY = PROTO_REPLY | PROTO_SUBSCRIBE,
	PROTO_SYNC_REPLY = PROTO_REPLY | PROTO_SYNC,
	PROTO_RANGES = PROTO_REPLY | PROTO_GET_RANGES,
	PROTO_STATS_REPLY = PROTO_REPLY | PROTO_STATS,
	PROTO_GET_FDS_REPLY = PROTO_REPLY | PROTO_GET_FDS,
	PROTO_METRICS_REPLY = PROTO_REPLY | PROTO_METRICS,
	PROTO_ADOPT_REPLY = PROTO_REPLY | PROTO_ADOPT,
	PROTO_READOPT_REPLY = PROTO_REPLY | PROTO_READOPT,
	PROTO_LIST_SOURCES_REPLY = PROTO_REPLY | PROTO_LIST_SOURCES,
	PROTO_ERROR = 0xffff,

	/* events (dirtyd -> client, id 0) */
	PROTO_EV_ROUND = 0x4001,	/* a periodic round added pages */
	PROTO_EV_STATE_LOST = 0x4002,	/* pending state lost: all dirty */
};

/* Domain status bits (seed option b): LIST_DOMAINS, CREATE_DOMAIN. */
enum proto_domain_status {
	PROTO_DOMAIN_ENABLED = 1 << 0,	/* tracking is on */
	PROTO_DOMAIN_SUPPORTED = 1 << 1,	/* every device can track */
	PROTO_DOMAIN_UNSUPPORTED = 1 << 2,	/* created without tracking */
	PROTO_DOMAIN_ALL_DIRTY = 1 << 3,	/* a device that can track
						 * neither way was accepted
						 * with CREATE_ALL_DIRTY:
						 * every round reports every
						 * mapped page */
};

/* Device flags: LIST_DEVICES (seed option c). */
enum proto_device_flags {
	PROTO_DEVICE_DIRTY_CAPABLE = 1 << 0,	/* IOMMU_HW_CAP_DIRTY_TRACKING */
	PROTO_DEVICE_BOUND = 1 << 1,
	PROTO_DEVICE_ATTACHED = 1 << 2,
	PROTO_DEVICE_DMA_LOGGING = 1 << 3,	/* VFIO device DMA logging */
};

/* CREATE_DOMAIN flags. */
enum proto_create_flags {
	PROTO_CREATE_TRACKING = 1 << 0,	/* allocate with dirty tracking;
					 * refused for a device that cannot */
	PROTO_CREATE_NO_HUGE_PAGES = 1 << 1,	/* 4 KiB leaves only: bits mean
						 * exactly one page */
	/* With TRACKING: how each device's writes are seen (neither or
	 * both: dirtyd.conf's dirty_source, by default each device's
	 * DMA log if it has one, else its IOMMU's dirty bits) */
	PROTO_CREATE_SOURCE_IOMMU = 1 << 2,	/* IOMMU dirty bits only */
	PROTO_CREATE_SOURCE_DEVICE = 1 << 3,	/* device DMA logging only */
	PROTO_CREATE_ALL_DIRTY = 1 << 4,	/* accept a device that can do
						 * neither: everything dirty */
};

/* MAP flags. */
enum proto_map_flags {
	PROTO_MAP_READABLE = 1 << 0,
	PROTO_MAP_WRITEABLE = 1 << 1,
	/*
	 * The range is already mapped by the client through the iommufd it
	 * got from GET_FDS: dirtyd only adds it to its harvest plan.  UNMAP
	 * with the same flag removes it from the plan without unmapping.
	 */
	PROTO_MAP_EXTERNAL = 1 << 2,
};

/* SUBSCRIBE flags. */
enum proto_subscribe_flags {
	PROTO_SUBSCRIBE_CLEAN = 1 << 0,	/* start with nothing pending: only
					 * pages written from now on */
};

/* GET_RANGES flags. */
enum proto_ranges_flags {
	PROTO_RANGES_RESEND = 1 << 0,	/* first put every unacknowledged
					 * generation back into pending */
};

/* HELLO_REPLY session flags. */
enum proto_session_flags {
	PROTO_SESSION_RESUMED = 1 << 0,	/* the token matched: subscriptions
					 * and pending state are back */
	PROTO_SESSION_STATE_LOST = 1 << 1,	/* a token was given but its
						 * state is gone: every page of
						 * every domain the client
						 * tracked must be taken as
						 * dirty */
};

/*
 * Message bodies (after the 16-byte header).  Offsets in bytes; "str64" is
 * PROTO_NAME_MAX bytes, NUL padded.  Requests with no body: LIST_DEVICES,
 * LIST_DOMAINS.  PROTO_OK has no body.
 */

/* HELLO (24): 0 le16 major, 2 le16 minor, 4 le32 reserved,
 *             8 le64 features, 16 le64 resume_token (0: new session) */
struct proto_hello {
	uint16_t major;
	uint16_t minor;
	uint64_t features;
	uint64_t resume_token;
};

/* HELLO_REPLY (40): 0 le16 major, 2 le16 minor, 4 le32 max_msg,
 *   8 le64 features, 16 le64 session_token, 24 le32 uid, 28 le32 gid,
 *   32 le32 session_flags, 36 le32 reserved */
struct proto_hello_reply {
	uint16_t major;
	uint16_t minor;
	uint32_t max_msg;
	uint64_t features;
	uint64_t session_token;
	uint32_t uid;
	uint32_t gid;
	uint32_t session_flags;
};

/* LIST_DEVICES_REPLY: 0 le32 count, 4 le32 reserved, then count entries
 * of 88: 0 str64 name, 64 le64 capabilities, 72 le32 flags,
 *        76 le32 domain_id (0: none), 80 le32 dev_id (0: not bound),
 *        84 le32 reserved.
 * More devices than fit: PROTO_F_MORE on all packets but the last. */
struct proto_device {
	char name[PROTO_NAME_MAX];
	uint64_t capabilities;
	uint32_t flags;
	uint32_t domain_id;
	uint32_t dev_id;
};
#define PROTO_DEVICE_WIRE 88u

/* LIST_DOMAINS_REPLY: 0 le32 count, 4 le32 reserved, then count entries
 * of 48: 0 le32 domain_id, 4 le32 status, 8 le32 owner_uid,
 *   12 le32 devices, 16 le64 mapped_bytes, 24 le64 page_size,
 *   32 le64 generation (rounds completed), 40 le32 subscribers,
 *   44 le32 reserved.  Only domains the client may see are listed. */
struct proto_domain {
	uint32_t domain_id;
	uint32_t status;
	uint32_t owner_uid;
	uint32_t devices;
	uint64_t mapped_bytes;
	uint64_t page_size;
	uint64_t generation;
	uint32_t subscribers;
};
#define PROTO_DOMAIN_WIRE 48u

/* CREATE_DOMAIN (72): 0 le32 flags, 4 le32 reserved, 8 str64 device.
 * The device is bound and attached; it decides the IOMMU of the domain.
 * With PROTO_CREATE_TRACKING, a device that cannot track is refused with
 * PROTO_ERROR EOPNOTSUPP naming it (create a domain without tracking for
 * it instead). */
struct proto_create_domain {
	uint32_t flags;
	char device[PROTO_NAME_MAX];
};

/* CREATE_DOMAIN_REPLY (16): 0 le32 domain_id, 4 le32 dev_id,
 *   8 le32 status, 12 le32 reserved */
struct proto_create_domain_reply {
	uint32_t domain_id;
	uint32_t dev_id;
	uint32_t status;
};

/* ATTACH_DEVICE, DETACH_DEVICE (72): 0 le32 domain_id, 4 le32 reserved,
 *   8 str64 device.  A device that cannot track is refused from a
 *   tracking domain with PROTO_ERROR EINVAL naming it and saying why. */
struct proto_device_op {
	uint32_t domain_id;
	char device[PROTO_NAME_MAX];
};

/* ATTACH_DEVICE_REPLY (8): 0 le32 dev_id, 4 le32 reserved */
struct proto_attach_device_reply {
	uint32_t dev_id;
};

/* DESTROY_DOMAIN, TRACK_START, TRACK_STOP, UNSUBSCRIBE, SYNC,
 * GET_FDS (8): 0 le32 domain_id, 4 le32 reserved */
struct proto_domain_op {
	uint32_t domain_id;
};

/* MAP, UNMAP (24): 0 le32 domain_id, 4 le32 flags (MAP: proto_map_flags,
 *   at least one; UNMAP: 0), 8 le64 iova, 16 le64 length.  IOVA and
 *   length are multiples of the domain's page size (EINVAL otherwise).
 *   dirtyd backs MAP with its own memory (for guests it simulates or
 *   tests); a VMM maps its own guest memory through GET_FDS instead. */
struct proto_map {
	uint32_t domain_id;
	uint32_t flags;
	uint64_t iova;
	uint64_t length;
};

/* DMA_WRITE (24): 0 le32 domain_id, 4 le32 reserved, 8 le64 iova,
 *   16 le64 length.  Makes the domain's first device write the range as
 *   its DMA would (backend_dma_write): for tests and demos on the sim and
 *   on the kernel's mock IOMMU; EOPNOTSUPP on real devices, ENOENT where
 *   nothing is mapped.  Answered by PROTO_OK.  Same body as MAP, flags 0. */

/* SUBSCRIBE (16): 0 le32 domain_id, 4 le32 interval_ms (0: on demand:
 *   harvests happen only on SYNC), 8 le32 flags (proto_subscribe_flags),
 *   12 le32 reserved.
 * A new subscription starts with every mapped page pending (the client
 * has copied nothing yet), unless PROTO_SUBSCRIBE_CLEAN. */
struct proto_subscribe {
	uint32_t domain_id;
	uint32_t interval_ms;
	uint32_t flags;
};

/* SUBSCRIBE_REPLY (32): 0 le32 domain_id, 4 le32 reserved,
 *   8 le64 page_size (what one page of a range is),
 *   16 le64 max_leaf (largest IO page a device write dirties as a whole:
 *   a write anywhere in it reports every page it covers),
 *   24 le64 generation (rounds completed so far) */
struct proto_subscribe_reply {
	uint32_t domain_id;
	uint64_t page_size;
	uint64_t max_leaf;
	uint64_t generation;
};

/* SYNC_REPLY (16): 0 le64 generation (a round that began after the
 *   request and has completed: every page written before SYNC was sent is
 *   now pending for this subscriber), 8 le64 pending_pages */
struct proto_sync_reply {
	uint64_t generation;
	uint64_t pending_pages;
};

/* GET_RANGES (16): 0 le32 domain_id, 4 le32 flags (proto_ranges_flags),
 *   8 le64 reserved.
 * Moves everything pending into a new unacknowledged generation and
 * streams it: one or more PROTO_RANGES packets, PROTO_F_MORE on all but
 * the last. */
struct proto_get_ranges {
	uint32_t domain_id;
	uint32_t flags;
};

/* RANGES: 0 le64 generation, 8 le32 domain_id, 12 le32 seq (0, 1, ...),
 *   16 le64 total_pages (of the whole generation, in every packet),
 *   24 le32 nchunks, 28 le32 reserved, then nchunks chunks
 *   (protocol/chunk.h), in increasing page order, filling the packet
 *   exactly.  The last packet (no PROTO_F_MORE) may hold 0 chunks. */
struct proto_ranges {
	uint64_t generation;
	uint32_t domain_id;
	uint32_t seq;
	uint64_t total_pages;
	uint32_t nchunks;
	const uint8_t *chunks;	/* decode: points into the packet */
	size_t chunks_len;
};
#define PROTO_RANGES_FIXED 32u

/* ACK (16): 0 le32 domain_id, 4 le32 reserved, 8 le64 generation */
struct proto_ack {
	uint32_t domain_id;
	uint64_t generation;
};

/* STATS (8): 0 le32 domain_id (0: every domain the client may see),
 *   4 le32 reserved.
 * STATS_REPLY: 0 le32 count, 4 le32 reserved, then entries of 64:
 *   0 le32 domain_id, 4 le32 status, 8 le64 generation,
 *   16 le64 last_round_ns (duration), 24 le64 last_round_pages,
 *   32 le64 dirty_rate (pages/s, exponentially averaged),
 *   40 le64 mapped_bytes, 48 le64 pending_pages (this client),
 *   56 le64 pages_sent (this client, all time) */
struct proto_stats {
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
#define PROTO_STATS_WIRE 64u

/* LIST_SOURCES (8): 0 le32 domain_id, 4 le32 reserved (feature
 *   PROTO_FEAT_SOURCES; one reply packet: a domain has at most 64).
 * LIST_SOURCES_REPLY: 0 le32 count, 4 le32 reserved, then entries of 120:
 *   0 le32 domain_id, 4 le32 kind (proto_source_kind), 8 le32 id (HWPT id,
 *   or the device's dev_id), 12 le32 devices (attached to a HWPT; 1 for a
 *   log), 16 str64 device (a log's device, a HWPT's first),
 *   80 le64 page_size (a HWPT: the domain's; a log: the device's, from
 *   START, 0 before), 88 le32 ranges (a log: ranges started, 0: not
 *   started), 92 le32 max_ranges (a log: the most one START took before
 *   the device asked for fewer, 0: none refused), 96 le64 rounds (that
 *   read it, since dirtyd started), 104 le64 errors (its reads that
 *   failed), 112 le64 restarts (a log: STOP and START again by a MAP). */
enum proto_source_kind {
	PROTO_SOURCE_HWPT = 1,		/* a HWPT with dirty tracking: read */
	PROTO_SOURCE_DMA_LOG = 2,	/* a device's DMA log: read */
	PROTO_SOURCE_HWPT_PLAIN = 3,	/* a HWPT without tracking (devices
					 * tracked another way, or none) */
};
struct proto_source {
	uint32_t domain_id;
	uint32_t kind;
	uint32_t id;
	uint32_t devices;
	char device[PROTO_NAME_MAX];
	uint64_t page_size;
	uint32_t ranges;
	uint32_t max_ranges;
	uint64_t rounds;
	uint64_t errors;
	uint64_t restarts;
};
#define PROTO_SOURCE_WIRE 120u

/* GET_FDS_REPLY: 0 le32 ioas_id, 4 le32 hwpt_id, 8 le32 ndevices,
 *   12 le32 reserved, then ndevices entries of 72: 0 str64 name,
 *   64 le32 dev_id, 68 le32 fd_index.  SCM_RIGHTS carries 1 + ndevices
 *   descriptors: the iommufd first, then each device's (fd_index). */
struct proto_fd_device {
	char name[PROTO_NAME_MAX];
	uint32_t dev_id;
	uint32_t fd_index;
};
#define PROTO_FD_DEVICE_WIRE 72u

/* ADOPT, UNADOPT (8): 0 le32 domain_id, 4 le32 reserved (ADOPT's flags:
 *   none yet).
 * ADOPT_REPLY: 0 le32 ioas_id, 4 le32 hwpt_id, 8 le32 status,
 *   12 le32 ndevices, 16 le64 page_size, 24 le64 max_leaf,
 *   32 le32 adopt_flags (proto_adopt_flags), 36 le32 reserved,
 *   40 le64 lease, then ndevices entries of 80: 0 str64 name,
 *   64 le32 dev_id, 68 le32 fd_index (0: the device has no descriptor,
 *   a mock IOMMU device; else 1 .. ndevices, each once), 72 le32
 *   dev_flags (proto_adopt_device_flags), 76 le32 reserved.  One packet;
 *   SCM_RIGHTS carries the iommufd first, then each device's descriptor
 *   at its fd_index (none at all on the sim: no iommufd exists there). */
enum proto_adopt_flags {
	PROTO_ADOPT_HUGE_PAGES_OFF = 1 << 0,	/* IOMMU_OPTION_HUGE_PAGES 0 */
	PROTO_ADOPT_VERIFIES_EXTERNAL = 1 << 1,	/* MAP EXTERNAL is probed */
	PROTO_ADOPT_NO_IOMMUFD = 1 << 2,	/* no descriptor (the sim) */
};
enum proto_adopt_device_flags {
	PROTO_ADOPT_DEV_BOUND = 1 << 0,
	PROTO_ADOPT_DEV_ATTACHED = 1 << 1,	/* to hwpt_id */
};
struct proto_adopt_device {
	char name[PROTO_NAME_MAX];
	uint32_t dev_id;
	uint32_t fd_index;
	uint32_t dev_flags;
};
#define PROTO_ADOPT_FIXED 48u
#define PROTO_ADOPT_DEVICE_WIRE 80u

/* READOPT: 0 le32 flags (proto_create_flags the domain was created
 *   with), 4 le32 ioas_id, 8 le32 hwpt_id, 12 le32 ndevices,
 *   16 le32 nranges, 20 le32 reserved, 24 le64 lease (the ADOPT_REPLY's,
 *   0 if unknown), then ndevices entries of 80 as ADOPT_REPLY's (dev_flags
 *   and reserved 0; fd_index 1 .. ndevices or 0 for none), then nranges
 *   entries of 16: 0 le64 iova, 8 le64 length (non-zero, not wrapping, in
 *   increasing IOVA order, disjoint).  SCM_RIGHTS: the iommufd first, then
 *   each device's at its fd_index.  ndevices >= 1.
 * READOPT_REPLY (16): 0 le32 domain_id, 4 le32 status, 8 le64 lease. */
struct proto_range {
	uint64_t iova;
	uint64_t length;
};
struct proto_readopt {
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	uint32_t ndevices;
	uint32_t nranges;
	uint64_t lease;
	const uint8_t *devices;	/* decode: wire entries in the packet */
	const uint8_t *ranges;
};
#define PROTO_READOPT_FIXED 32u
#define PROTO_RANGE_WIRE 16u
struct proto_readopt_reply {
	uint32_t domain_id;
	uint32_t status;
	uint64_t lease;
};

/* METRICS (8): 0 le32 domain_id (0: every domain the client may see),
 *   4 le32 reserved.
 * METRICS_REPLY: 0 le32 seq (0, 1, ...), 4 le32 reserved, then text to
 *   the end of the packet: whole lines of UTF-8, each ending in '\n',
 *   without any other control character.  PROTO_F_MORE on all packets
 *   but the last; the packets' texts in order are one OpenMetrics text
 *   exposition ending with "# EOF\n". */
struct proto_metrics {
	uint32_t seq;
	const char *text;	/* decode: points into the packet */
	size_t text_len;
};
#define PROTO_METRICS_FIXED 8u

/* ERROR: 0 le32 errno (positive), 4 le32 reserved, then the message text
 *   (UTF-8, no NUL, at most PROTO_ERROR_TEXT_MAX bytes) to the end. */
struct proto_error {
	uint32_t err;
	const char *text;	/* decode: points into the packet */
	size_t text_len;
};

/* EV_ROUND (32): 0 le32 domain_id, 4 le32 reserved, 8 le64 generation,
 *   16 le64 round_pages, 24 le64 pending_pages.  At most one is queued
 *   per subscription: a slow reader gets the latest, not a backlog. */
struct proto_ev_round {
	uint32_t domain_id;
	uint64_t generation;
	uint64_t round_pages;
	uint64_t pending_pages;
};

/* EV_STATE_LOST (8): 0 le32 domain_id, 4 le32 reserved */

/** A decoded or to-be-encoded message. */
struct proto_msg {
	uint16_t type;
	uint16_t flags;
	uint64_t id;
	union {
		struct proto_hello hello;
		struct proto_hello_reply hello_reply;
		struct proto_create_domain create_domain;
		struct proto_create_domain_reply create_domain_reply;
		struct proto_device_op device_op;
		struct proto_attach_device_reply attach_device_reply;
		struct proto_domain_op domain_op;
		struct proto_map map;
		struct proto_subscribe subscribe;
		struct proto_subscribe_reply subscribe_reply;
		struct proto_sync_reply sync_reply;
		struct proto_get_ranges get_ranges;
		struct proto_ranges ranges;
		struct proto_ack ack;
		struct proto_ev_round ev_round;
		struct proto_error error;
		struct proto_metrics metrics;
		struct proto_readopt readopt;
		struct proto_readopt_reply readopt_reply;
		/* lists: count and the wire entries (decode with
		 * proto_*_at()); encode with the proto_list_* helpers */
		struct {
			uint32_t count;
			const uint8_t *entries;
			/* GET_FDS_REPLY, ADOPT_REPLY */
			uint32_t ioas_id;
			uint32_t hwpt_id;
			/* ADOPT_REPLY only */
			uint32_t status;
			uint32_t adopt_flags;
			uint64_t page_size;
			uint64_t max_leaf;
			uint64_t lease;
		} list;
	};
};

/**
 * proto_peek() - the header checks of a received packet, in the order of
 * PROTOCOL.md 3 (steps 1 to 3): -EBADMSG under 16 bytes, -EMSGSIZE for a
 * length other than the packet's or over PROTO_MAX_MSG, -EPROTO for an
 * unknown type; else 0 with *@type and *@id (each may be NULL).
 */
int proto_peek(const uint8_t *buf, size_t len, uint16_t *type, uint64_t *id);
/** proto_type_is_request() - whether a client may send @type. */
bool proto_type_is_request(uint16_t type);
/** proto_text_valid() - @n bytes of UTF-8 without a control character, as
 *  str64 names and ERROR text must be (PROTOCOL.md 2). */
bool proto_text_valid(const void *text, size_t n);

/**
 * proto_decode() - parse and validate one packet: proto_peek(), then its
 * form.  Returns 0, -EBADMSG, -EMSGSIZE or -EPROTO (see above); @m is
 * valid only on 0.
 */
int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m);

/**
 * proto_decode_lazy() - proto_decode(), except that a RANGES message's
 * chunks are left unread (only that nchunks of them could fit is checked):
 * for a reader that goes through them with proto_ranges_decode() anyway,
 * which checks them as it reads them.  Other types: as proto_decode().
 */
int proto_decode_lazy(const uint8_t *buf, size_t len, struct proto_msg *m);

/**
 * proto_ranges_decode() - the chunks of a decoded RANGES message @r,
 * checked as proto_decode() checks them (each valid, in increasing page
 * order, spans disjoint, filling the message exactly), and their runs
 * handed to @fn in batches of at most @cap at @runs (chunk_decode_batch()),
 * in one pass: when a malformed chunk is found, the runs of the chunks
 * before it have been handed over, none of its own.  The one check left to
 * the caller: no more pages than @r->total_pages (count them in @fn).  @fn
 * returns 0 or a negative errno, which stops the decoding.  Returns 0,
 * -EBADMSG, or what @fn returned.
 */
int proto_ranges_decode(const struct proto_ranges *r, struct extent *runs,
			size_t cap, chunk_batch_fn fn, void *ctx);

/**
 * proto_encode() - write @m into @buf (@cap bytes, PROTO_MAX_MSG is always
 * enough).  Fixed messages, ERROR (its text ends at a NUL and is truncated
 * to PROTO_ERROR_TEXT_MAX at a UTF-8 boundary), RANGES (its chunks are
 * copied) and lists (list.count wire entries copied from list.entries, as
 * a decoded message holds them).  Returns the packet's length, -EMSGSIZE
 * when it does not fit, or -EINVAL when the result would not decode (bad
 * type, flags, id, name, reserved value ...).
 */
int proto_encode(const struct proto_msg *m, uint8_t *buf, size_t cap);

/* List replies (LIST_DEVICES_REPLY, LIST_DOMAINS_REPLY, STATS_REPLY,
 * GET_FDS_REPLY, LIST_SOURCES_REPLY) are built in place: */
struct proto_list_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t count;
	uint32_t entry_size;
	size_t count_off;
};
/** proto_list_begin() - start a list reply of @type in @buf. */
int proto_list_begin(struct proto_list_builder *lb, uint8_t *buf, size_t cap,
		     uint16_t type, uint64_t id);
/** proto_list_add_*() - append one entry; -ENOSPC when the packet is full
 *  (send it with PROTO_F_MORE and begin another). */
int proto_list_add_device(struct proto_list_builder *lb,
			  const struct proto_device *d);
int proto_list_add_domain(struct proto_list_builder *lb,
			  const struct proto_domain *d);
int proto_list_add_stats(struct proto_list_builder *lb,
			 const struct proto_stats *s);
int proto_list_add_fd_device(struct proto_list_builder *lb,
			     const struct proto_fd_device *d);
int proto_list_add_source(struct proto_list_builder *lb,
			  const struct proto_source *s);
/** proto_list_set_fds_ids() - GET_FDS_REPLY's ioas and hwpt ids. */
void proto_list_set_fds_ids(struct proto_list_builder *lb, uint32_t ioas_id,
			    uint32_t hwpt_id);
/** proto_list_set_adopt() - ADOPT_REPLY's fixed fields from @m's list
 *  (all but the count, which proto_list_end() writes). */
void proto_list_set_adopt(struct proto_list_builder *lb,
			  const struct proto_msg *m);
int proto_list_add_adopt_device(struct proto_list_builder *lb,
				const struct proto_adopt_device *d);
/** proto_list_end() - finish; @more sets PROTO_F_MORE.  Returns the
 *  packet's length. */
int proto_list_end(struct proto_list_builder *lb, bool more);

/* Reading list entries of a decoded message (index < list.count). */
void proto_device_at(const struct proto_msg *m, uint32_t i,
		     struct proto_device *d);
void proto_domain_at(const struct proto_msg *m, uint32_t i,
		     struct proto_domain *d);
void proto_stats_at(const struct proto_msg *m, uint32_t i,
		    struct proto_stats *s);
void proto_fd_device_at(const struct proto_msg *m, uint32_t i,
			struct proto_fd_device *d);
/* ADOPT_REPLY's devices (i < list.count); READOPT's (i < ndevices). */
void proto_adopt_device_at(const struct proto_msg *m, uint32_t i,
			   struct proto_adopt_device *d);
void proto_readopt_device_at(const struct proto_readopt *r, uint32_t i,
			     struct proto_adopt_device *d);
void proto_readopt_range_at(const struct proto_readopt *r, uint32_t i,
			    struct proto_range *rg);
/**
 * proto_encode_readopt() - a READOPT packet of @r's fixed fields, @devs
 * (r->ndevices) and @ranges (r->nranges) into @buf; its length, or
 * -EMSGSIZE, or -EINVAL when it would not decode.
 */
int proto_encode_readopt(uint8_t *buf, size_t cap, uint64_t id,
			 const struct proto_readopt *r,
			 const struct proto_adopt_device *devs,
			 const struct proto_range *ranges);
void proto_source_at(const struct proto_msg *m, uint32_t i,
		     struct proto_source *s);

/* RANGES packets are built in place too, chunk by chunk: */
struct proto_ranges_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t nchunks;
};
/** proto_ranges_begin() - start a RANGES packet (fixed part from @r). */
int proto_ranges_begin(struct proto_ranges_builder *rb, uint8_t *buf,
		       size_t cap, uint64_t id, const struct proto_ranges *r);
/** proto_ranges_add() - append one encoded chunk; -ENOSPC when it does not
 *  fit (finish this packet with more = true first). */
int proto_ranges_add(struct proto_ranges_builder *rb, const uint8_t *chunk,
		     size_t len);
/**
 * proto_ranges_fill() - append the chunks @cr gives (chunk.h) until the
 * packet is full or @cr is at its end (chunk_reader_done() tells which).
 * Returns 0; -ENOSPC when not even one chunk fits the packet; -EBADMSG.
 */
int proto_ranges_fill(struct proto_ranges_builder *rb, struct chunk_reader *cr);
/** proto_ranges_end() - finish; returns the packet's length. */
int proto_ranges_end(struct proto_ranges_builder *rb, bool more);

/** proto_metrics_text_valid() - @n bytes of whole lines: each
 *  proto_text_valid() and ending in '\n' (METRICS_REPLY's text). */
bool proto_metrics_text_valid(const void *text, size_t n);

/** proto_type_name() - "HELLO", "ERROR", ... or NULL for unknown. */
const char *proto_type_name(uint16_t type);

#endif
