/* SPDX-License-Identifier: MIT */
/*
 * The layout of what dirtyd keeps in systemd's file descriptor store
 * (daemon/state/format.c), shared with the tests that damage it on purpose
 * (tests/integration/test_daemon_restart.c).  Every number is stored
 * little-endian at the offset named here, whatever the host: a version is
 * bytes, not a dump of C structures, and the dirtyd that reads it is not
 * always the one that wrote it (SIGUSR2: an upgrade).
 *
 * dirtyd-meta, STATE_META_SIZE bytes, sealed against shrinking and growing:
 *
 *   [0, 4096)            the superblock, struct state_super
 *   [4096, +256 MiB)     slot 0: one version
 *   [.., +256 MiB)       slot 1: one version
 *
 * A version: the head (STATE_HEAD_*); ndomains domains, each a domain
 * record followed by its kernel context's nkept descriptor names of
 * BACKEND_NAME_MAX bytes (the store holds each as kernel-DOMAIN-NAME),
 * blob_len bytes of its blob padded to 8, its ndevices device records,
 * nmaps map records and nretired range records; nsubs subscription
 * records.  Nothing else: its length is exactly that.
 *
 * Format 4: every record begins with STATE_REC_HDR bytes, its kind and its
 * length (header included, a multiple of 8, at least what the kind's
 * fields need); a reader checks the kind, reads the fields it knows and
 * skips the rest, so that a field added at a record's end is not a new
 * format.  Format 3 wrote the same fields at the same offsets, without
 * the header (records of fixed length, the host's C structures of a
 * little-endian machine): this dirtyd reads both, writes 4.
 *
 * A commit writes the new version into the slot that is not committed,
 * then that slot's seq, len and sum (state_sum() of the version), then,
 * last, one aligned 64-bit store of commit = state_commit_word(seq, slot).
 * The committed version is the slot whose word matches: a damaged
 * superblock names neither (and never the older slot, whose bitmaps may
 * have been reclaimed since).  The superblock's format is the newest of
 * its versions (a reader of an older format refuses it); each version's
 * head says its own.
 *
 * dirtyd-bits, BITMEM_RESERVE bytes (daemon/subscriber/bitmem.h), sealed likewise:
 * every bitmap, at the page-aligned offsets the records name.  Its size is
 * in the version (bits_size); the bits themselves are not summed (dirtyd(8)
 * "Restarts" says why).
 *
 * Every format keeps magic at offset 0 and format at offset 8 of the
 * superblock, so that any dirtyd can tell a store of another format and
 * refuse it.  Change anything below but a field added at a record's end:
 * bump STATE_FORMAT.
 */
#ifndef DIRTYD_STATE_FORMAT_H
#define DIRTYD_STATE_FORMAT_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/state/state.h"
#include "kernel/backend.h"

#define STATE_MAGIC 0x31657461747364ULL	/* "dstate1" */
/* 1: the first; 2: the superblock's commit word and adoption count, the
 * head's seq and bits_size, the subscriptions' park deadlines; 3: a
 * kernel context per domain (names and blob in its record), no creation
 * intent; 4: explicit little-endian fields, each record's kind and
 * length first */
#define STATE_FORMAT 4
/* The oldest format this dirtyd reads (format.c) */
#define STATE_FORMAT_OLDEST 3
#define STATE_META_SUPER 4096ULL
#define STATE_META_SLOT (256ULL << 20)
#define STATE_META_SIZE (STATE_META_SUPER + 2 * STATE_META_SLOT)

/*
 * Adoptions of one store begun in a row by a dirtyd that then did not get
 * to serve (it failed, crashed or was killed before its first turn of the
 * event loop): at this many the next start refuses the store.  Below
 * StartLimitBurst= in dirtyd.service, so that the fresh start still
 * happens before systemd gives up.
 */
#define STATE_MAX_TRIES 3

/*
 * The superblock: page 0 of dirtyd-meta, written in place (the commit
 * word and the adoption count by single atomic stores), so a structure;
 * its offsets are fixed below and dirtyd runs on little-endian hosts only
 * (the assert below), where its numbers are the little-endian bytes.
 */
struct state_super {
	uint64_t magic;		/* offset 0 in every format */
	uint32_t format;	/* offset 8 in every format */
	uint32_t tries;		/* adoptions begun, not yet serving */
	struct {
		uint64_t seq;
		uint64_t len;
		uint64_t sum;	/* state_sum() of the version */
	} slot[2];
	uint64_t commit;	/* state_commit_word(): written last */
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the superblock is written in place: a little-endian host");
_Static_assert(offsetof(struct state_super, magic) == 0 &&
	       offsetof(struct state_super, format) == 8 &&
	       offsetof(struct state_super, tries) == 12 &&
	       offsetof(struct state_super, slot) == 16 &&
	       sizeof(((struct state_super *)0)->slot[0]) == 24 &&
	       offsetof(struct state_super, commit) == 64 &&
	       sizeof(struct state_super) == 72, "superblock layout");
_Static_assert(sizeof(struct state_super) <= STATE_META_SUPER, "superblock");

/*
 * A version's records: each field's offset from the start of the record's
 * fields (format 4: after the header), its width (4 or 8: a number;
 * BACKEND_NAME_MAX: a name, NUL-terminated), and the member of the decoded
 * structure it is read into (format.c, state_private.h).  One list per
 * kind: the offsets, the asserts below and format.c's tables are made
 * from it.  The fields follow one another unpadded, each aligned to its
 * width (up to 8); every record's length is a multiple of 8 so that the
 * next one is aligned.
 */
#define STATE_REC_KIND 0	/* u32: STATE_REC_* */
#define STATE_REC_LEN 4		/* u32: bytes, header included */
#define STATE_REC_HDR 8

#define STATE_REC_DOMAIN 0x6d6f4444u	/* "DDom" */
#define STATE_REC_DEVICE 0x76654444u	/* "DDev" */
#define STATE_REC_MAP 0x614d4444u	/* "DDMa" */
#define STATE_REC_RANGE 0x61524444u	/* "DDRa" */
#define STATE_REC_SUB 0x75534444u	/* "DDSu" */

/* The head: first in a version, no record header. */
#define STATE_HEAD_FIELDS(X)						\
	/* STATE_MAGIC */						\
	X(STATE_HEAD_MAGIC, 0, 8, magic)				\
	X(STATE_HEAD_FORMAT, STATE_HEAD_MAGIC + 8, 4, format)		\
	/* enum backend_kind */						\
	X(STATE_HEAD_BACKEND, STATE_HEAD_FORMAT + 4, 4, backend)	\
	X(STATE_HEAD_NEXT_DOMAIN_ID,					\
	  STATE_HEAD_BACKEND + 4, 4, next_domain_id)			\
	X(STATE_HEAD_NDOMAINS,						\
	  STATE_HEAD_NEXT_DOMAIN_ID + 4, 4, ndomains)			\
	X(STATE_HEAD_NSUBS, STATE_HEAD_NDOMAINS + 4, 4, nsubs)		\
	/* written 0, not read */					\
	X(STATE_HEAD_RESERVED, STATE_HEAD_NSUBS + 4, 4, reserved)	\
	/* the slot's: its own */					\
	X(STATE_HEAD_SEQ, STATE_HEAD_RESERVED + 4, 8, seq)		\
	/* dirtyd-bits' */						\
	X(STATE_HEAD_BITS_SIZE, STATE_HEAD_SEQ + 8, 8, bits_size)
#define STATE_HEAD_SIZE 48

#define DREC_TRACKING 1u
#define DREC_ENABLED 2u
#define DREC_HUGE 4u
#define DREC_KEPT 8u	/* its kernel context was kept: nkept, blob */

/* A domain, then its intent (struct state_intent). */
#define STATE_DOM_FIELDS(X)						\
	X(STATE_DOM_ID, 0, 4, id)					\
	/* uid */							\
	X(STATE_DOM_OWNER, STATE_DOM_ID + 4, 4, owner)			\
	X(STATE_DOM_IOAS_ID, STATE_DOM_OWNER + 4, 4, ioas_id)		\
	X(STATE_DOM_HWPT_ID, STATE_DOM_IOAS_ID + 4, 4, hwpt_id)		\
	/* DREC_* */							\
	X(STATE_DOM_FLAGS, STATE_DOM_HWPT_ID + 4, 4, flags)		\
	X(STATE_DOM_NDEVICES, STATE_DOM_FLAGS + 4, 4, ndevices)		\
	X(STATE_DOM_NMAPS, STATE_DOM_NDEVICES + 4, 4, nmaps)		\
	X(STATE_DOM_NRETIRED, STATE_DOM_NMAPS + 4, 4, nretired)		\
	X(STATE_DOM_NKEPT, STATE_DOM_NRETIRED + 4, 4, nkept)		\
	X(STATE_DOM_BLOB_LEN, STATE_DOM_NKEPT + 4, 4, blob_len)		\
	X(STATE_DOM_PAGE_SIZE, STATE_DOM_BLOB_LEN + 4, 8, page_size)	\
	X(STATE_DOM_MAX_LEAF, STATE_DOM_PAGE_SIZE + 8, 8, max_leaf)	\
	/* the plan's bitmap, then its bounce words */			\
	X(STATE_DOM_ROUND_OFF, STATE_DOM_MAX_LEAF + 8, 8, round_off)	\
	X(STATE_DOM_ROUND_WORDS,					\
	  STATE_DOM_ROUND_OFF + 8, 8, round_words)			\
	X(STATE_DOM_LAYOUT_WORDS,					\
	  STATE_DOM_ROUND_WORDS + 8, 8, layout_words)			\
	/* DOMAIN_COUNTERS_WORDS words */				\
	X(STATE_DOM_COUNTERS_OFF,					\
	  STATE_DOM_LAYOUT_WORDS + 8, 8, counters_off)			\
	X(STATE_DOM_GUEST,						\
	  STATE_DOM_COUNTERS_OFF + 8, BACKEND_NAME_MAX, guest)		\
	/* enum state_op */						\
	X(STATE_DOM_INTENT_OP,						\
	  STATE_DOM_GUEST + BACKEND_NAME_MAX, 4, intent.op)		\
	X(STATE_DOM_INTENT_DOMAIN_ID,					\
	  STATE_DOM_INTENT_OP + 4, 4, intent.domain_id)			\
	X(STATE_DOM_INTENT_IOVA,					\
	  STATE_DOM_INTENT_DOMAIN_ID + 4, 8, intent.iova)		\
	X(STATE_DOM_INTENT_LENGTH,					\
	  STATE_DOM_INTENT_IOVA + 8, 8, intent.length)			\
	X(STATE_DOM_INTENT_FLAGS,					\
	  STATE_DOM_INTENT_LENGTH + 8, 4, intent.flags)			\
	X(STATE_DOM_INTENT_DEV_ID,					\
	  STATE_DOM_INTENT_FLAGS + 4, 4, intent.dev_id)			\
	X(STATE_DOM_INTENT_IOAS_ID,					\
	  STATE_DOM_INTENT_DEV_ID + 4, 4, intent.ioas_id)		\
	X(STATE_DOM_INTENT_HWPT_ID,					\
	  STATE_DOM_INTENT_IOAS_ID + 4, 4, intent.hwpt_id)		\
	X(STATE_DOM_INTENT_DEVICE,					\
	  STATE_DOM_INTENT_HWPT_ID + 4, BACKEND_NAME_MAX, intent.device)	\
	/* added in format 4 at the record's end (a record of 256 bytes	\
	 * has none: not adopted): the lease of a VMM that adopted the	\
	 * domain (ADOPT), 0 for none; its session's resume token; its pid	\
	 * and uid; the CLOCK_MONOTONIC ns after which it is cleaned up	\
	 * once its session is gone (0 while it was connected) */		\
	X(STATE_DOM_LEASE,						\
	  STATE_DOM_INTENT_DEVICE + BACKEND_NAME_MAX, 8, lease)		\
	X(STATE_DOM_LEASE_TOKEN, STATE_DOM_LEASE + 8, 8, lease_token)	\
	X(STATE_DOM_LEASE_PID, STATE_DOM_LEASE_TOKEN + 8, 4, lease_pid)	\
	X(STATE_DOM_LEASE_UID, STATE_DOM_LEASE_PID + 4, 4, lease_uid)	\
	X(STATE_DOM_LEASE_DEADLINE_NS,					\
	  STATE_DOM_LEASE_UID + 4, 8, lease_deadline_ns)
#define STATE_DOM_SIZE 288
/* What a domain record had before the lease: format 3's length, and the
 * least a format 4 record may have. */
#define STATE_DOM_SIZE_V3 256

/* A device of a domain. */
#define STATE_DEV_FIELDS(X)						\
	X(STATE_DEV_NAME, 0, BACKEND_NAME_MAX, name)			\
	X(STATE_DEV_DEV_ID,						\
	  STATE_DEV_NAME + BACKEND_NAME_MAX, 4, dev_id)			\
	/* written 0, not read */					\
	X(STATE_DEV_RESERVED, STATE_DEV_DEV_ID + 4, 4, reserved)
#define STATE_DEV_SIZE 72

/* A mapping of a domain. */
#define STATE_MAP_FIELDS(X)						\
	X(STATE_MAP_IOVA, 0, 8, iova)					\
	X(STATE_MAP_LENGTH, STATE_MAP_IOVA + 8, 8, length)		\
	/* 0 or 1 */							\
	X(STATE_MAP_EXTERNAL, STATE_MAP_LENGTH + 8, 4, external)	\
	/* written 0, not read */					\
	X(STATE_MAP_RESERVED, STATE_MAP_EXTERNAL + 4, 4, reserved)
#define STATE_MAP_SIZE 24

/* A retired range of a domain. */
#define STATE_RANGE_FIELDS(X)						\
	X(STATE_RANGE_IOVA, 0, 8, iova)					\
	X(STATE_RANGE_LENGTH, STATE_RANGE_IOVA + 8, 8, length)
#define STATE_RANGE_SIZE 16

/* A subscription of a session that can be resumed; its deadline: the
 * CLOCK_MONOTONIC ns at which its closed session's resume grace ends, 0
 * while the session was connected. */
#define STATE_SUB_FIELDS(X)						\
	X(STATE_SUB_TOKEN, 0, 8, token)					\
	X(STATE_SUB_UID, STATE_SUB_TOKEN + 8, 4, uid)			\
	X(STATE_SUB_DOMAIN_ID, STATE_SUB_UID + 4, 4, domain_id)		\
	X(STATE_SUB_INTERVAL_MS,					\
	  STATE_SUB_DOMAIN_ID + 4, 4, interval_ms)			\
	/* 0 or 1 */							\
	X(STATE_SUB_CLEAN, STATE_SUB_INTERVAL_MS + 4, 4, clean)		\
	X(STATE_SUB_PAGES_SENT, STATE_SUB_CLEAN + 4, 8, pages_sent)	\
	/* nwords words */						\
	X(STATE_SUB_PENDING_OFF,					\
	  STATE_SUB_PAGES_SENT + 8, 8, pending_off)			\
	X(STATE_SUB_FLIGHT_OFF,						\
	  STATE_SUB_PENDING_OFF + 8, 8, flight_off)			\
	X(STATE_SUB_NWORDS, STATE_SUB_FLIGHT_OFF + 8, 8, nwords)	\
	X(STATE_SUB_DEADLINE_NS, STATE_SUB_NWORDS + 8, 8, deadline_ns)
#define STATE_SUB_SIZE 64

/* The offsets, by name. */
#define STATE_OFFSET(name, at, size, member) name = (at),
enum {
	STATE_HEAD_FIELDS(STATE_OFFSET)
	STATE_DOM_FIELDS(STATE_OFFSET)
	STATE_DEV_FIELDS(STATE_OFFSET)
	STATE_MAP_FIELDS(STATE_OFFSET)
	STATE_RANGE_FIELDS(STATE_OFFSET)
	STATE_SUB_FIELDS(STATE_OFFSET)
};
#undef STATE_OFFSET

/* Each field is where the one before it ends (so none overlaps or leaves a
 * gap), aligned to its width; their widths add up to the record's length;
 * format 3's offsets, the lengths below. */
#define STATE_ALIGNED(name, at, size, member) \
	&& (at) % ((size) < 8 ? (size) : 8) == 0
#define STATE_WIDTH(name, at, size, member) + (size)
#define STATE_LAYOUT_OK(FIELDS, len)					\
	(1 FIELDS(STATE_ALIGNED) &&					\
	 (0 FIELDS(STATE_WIDTH)) == (len) && (len) % 8 == 0)
_Static_assert(STATE_LAYOUT_OK(STATE_HEAD_FIELDS, STATE_HEAD_SIZE), "head");
_Static_assert(STATE_LAYOUT_OK(STATE_DOM_FIELDS, STATE_DOM_SIZE), "domain");
_Static_assert(STATE_LAYOUT_OK(STATE_DEV_FIELDS, STATE_DEV_SIZE), "device");
_Static_assert(STATE_LAYOUT_OK(STATE_MAP_FIELDS, STATE_MAP_SIZE), "map");
_Static_assert(STATE_LAYOUT_OK(STATE_RANGE_FIELDS, STATE_RANGE_SIZE),
	       "range");
_Static_assert(STATE_LAYOUT_OK(STATE_SUB_FIELDS, STATE_SUB_SIZE),
	       "subscription");
/* format 3's lengths: what its dirtyd wrote (its records, no headers) */
_Static_assert(STATE_HEAD_SIZE == 48 && STATE_DOM_SIZE_V3 == 256 &&
	       STATE_DOM_LEASE == STATE_DOM_SIZE_V3 &&
	       STATE_DEV_SIZE == 72 && STATE_MAP_SIZE == 24 &&
	       STATE_RANGE_SIZE == 16 && STATE_SUB_SIZE == 64 &&
	       BACKEND_NAME_MAX == 64, "format 3's records");

/* Little-endian numbers at @p, whatever the host. */
static inline uint32_t state_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t state_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void state_put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void state_put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/*
 * The checksum of a version: 64 bits, FNV-1a-like over 64-bit words with
 * a shift to mix the high bits down.  It catches damage (a flipped bit, a
 * torn or truncated write), not forgery: whoever can write the memfd can
 * write a matching sum, which is why every record is also checked against
 * the sizes before anything is used.  About 2 to 5 GB/s on one core.
 */
static inline uint64_t state_sum(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		h = (h ^ state_le64(p + i)) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The superblock's commit word for version @seq in @slot. */
static inline uint64_t state_commit_word(uint64_t seq, uint32_t slot)
{
	uint8_t w[24];

	state_put_le64(w, STATE_MAGIC);
	state_put_le64(w + 8, seq);
	state_put_le64(w + 16, slot);
	return state_sum(w, sizeof(w));
}

#endif
