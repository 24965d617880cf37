/* SPDX-License-Identifier: MIT */
/*
 * The layout of what dirtyd keeps in systemd's file descriptor store
 * (daemon/state/format.c), shared with the tests that damage it on purpose
 * (tests/integration/test_daemon_restart.c).
 *
 * dirtyd-meta, STATE_META_SIZE bytes, sealed against shrinking and growing:
 *
 *   [0, 4096)            the superblock, struct state_super
 *   [4096, +256 MiB)     slot 0: one version
 *   [.., +256 MiB)       slot 1: one version
 *
 * A version: struct state_head; ndomains domains, each a struct
 * state_domain_rec followed by its kernel context's nkept descriptor names
 * of BACKEND_NAME_MAX bytes (the store holds each as
 * kernel-DOMAIN-NAME), blob_len bytes of its blob padded to 8, its
 * ndevices struct state_dev_rec, nmaps struct state_map_rec and nretired
 * struct state_range_rec; nsubs struct state_sub_rec.  Nothing else: its
 * length is exactly that.
 *
 * A commit writes the new version into the slot that is not committed,
 * then that slot's seq, len and sum (state_sum() of the version), then,
 * last, one aligned 64-bit store of commit = state_commit_word(seq, slot).
 * The committed version is the slot whose word matches: a damaged
 * superblock names neither (and never the older slot, whose bitmaps may
 * have been reclaimed since).
 *
 * dirtyd-bits, BITMEM_RESERVE bytes (daemon/subscriber/bitmem.h), sealed likewise:
 * every bitmap, at the page-aligned offsets the records name.  Its size is
 * in the version (bits_size); the bits themselves are not summed (dirtyd(8)
 * "Restarts" says why).
 *
 * Every format keeps magic at offset 0 and format at offset 8 of the
 * superblock, so that any dirtyd can tell a store of another format and
 * refuse it.  Change anything below: bump STATE_FORMAT.
 */
#ifndef DIRTYD_STATE_FORMAT_H
#define DIRTYD_STATE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/state/state.h"
#include "kernel/backend.h"

#define STATE_MAGIC 0x31657461747364ULL	/* "dstate1" */
/* 1: the first; 2: the superblock's commit word and adoption count, the
 * head's seq and bits_size, the subscriptions' park deadlines; 3: a
 * kernel context per domain (names and blob in its record), no creation
 * intent */
#define STATE_FORMAT 3
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

/* The superblock: page 0 of dirtyd-meta. */
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

/* One version's head. */
struct state_head {
	uint64_t magic;
	uint32_t format;
	uint32_t backend;	/* enum backend_kind */
	uint32_t next_domain_id;
	uint32_t ndomains;
	uint32_t nsubs;
	uint64_t seq;		/* the slot's: a version is its own */
	uint64_t bits_size;	/* dirtyd-bits' size when it was written */
};

#define DREC_TRACKING 1u
#define DREC_ENABLED 2u
#define DREC_HUGE 4u
#define DREC_KEPT 8u	/* its kernel context was kept: nkept, blob */

struct state_domain_rec {
	uint32_t id;
	uint32_t owner;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	uint32_t flags;		/* DREC_* */
	uint32_t ndevices;
	uint32_t nmaps;
	uint32_t nretired;
	uint32_t nkept;
	uint32_t blob_len;
	uint64_t page_size;
	uint64_t max_leaf;
	uint64_t round_off;	/* the plan's bitmap, then its bounce words */
	uint64_t round_words;
	uint64_t layout_words;
	uint64_t counters_off;	/* DOMAIN_COUNTERS_WORDS words */
	char guest[BACKEND_NAME_MAX];
	struct state_intent intent;
};

struct state_dev_rec {
	char name[BACKEND_NAME_MAX];
	uint32_t dev_id;
	uint32_t pad;
};

struct state_map_rec {
	uint64_t iova;
	uint64_t length;
	uint32_t external;
	uint32_t pad;
};

struct state_range_rec {
	uint64_t iova;
	uint64_t length;
};

struct state_sub_rec {
	uint64_t token;
	uint32_t uid;
	uint32_t domain_id;
	uint32_t interval_ms;
	uint32_t clean;
	uint64_t pages_sent;
	uint64_t pending_off;	/* nwords words each */
	uint64_t flight_off;
	uint64_t nwords;
	/* CLOCK_MONOTONIC ns at which its closed session's resume grace
	 * ends; 0: the session was connected */
	uint64_t deadline_ns;
};

/* Records follow one another unpadded: each keeps the next aligned. */
_Static_assert(sizeof(struct state_super) <= STATE_META_SUPER, "superblock");
_Static_assert(sizeof(struct state_head) % 8 == 0, "head");
_Static_assert(sizeof(struct state_domain_rec) % 8 == 0, "domain record");
_Static_assert(sizeof(struct state_dev_rec) % 8 == 0, "device record");
_Static_assert(sizeof(struct state_map_rec) % 8 == 0, "map record");
_Static_assert(sizeof(struct state_range_rec) % 8 == 0, "range record");
_Static_assert(sizeof(struct state_sub_rec) % 8 == 0, "sub record");
_Static_assert(BACKEND_NAME_MAX % 8 == 0, "names");

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
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The superblock's commit word for version @seq in @slot. */
static inline uint64_t state_commit_word(uint64_t seq, uint32_t slot)
{
	const uint64_t w[3] = { STATE_MAGIC, seq, slot };

	return state_sum((const uint8_t *)w, sizeof(w));
}

#endif
