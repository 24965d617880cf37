/* SPDX-License-Identifier: MIT */
/*
 * What the files of daemon/state/ share and nothing else uses: the state
 * (struct state), what a parsed version says until it is rebuilt, and
 * each file's functions for the others.
 *
 *   journal.c   durability: what must survive, committed (the design)
 *   format.c    the records: a version written, a version read and checked
 *   store.c     systemd's file descriptor store: what is handed to it,
 *               what it passed back
 *   restore.c   a start: the store adopted and rebuilt, or started afresh;
 *               the exit
 */
#ifndef DIRTYD_STATE_PRIVATE_H
#define DIRTYD_STATE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "daemon/state/state.h"
#include "daemon/state/state_format.h"

struct bitmem;
struct domain;
struct event;
struct park;
struct server;
struct subscription;

#define FD_META "dirtyd-meta"
#define FD_BITS "dirtyd-bits"
#define FD_KERNEL "kernel-"

#define PAGE 4096ULL
/* The tick: resets the adoption count once serving, records parks and
 * resumes that no commit followed. */
#define STATE_TICK_MS 250
/* A park's deadline moved by less than this is not worth a commit. */
#define DEADLINE_SLACK_NS (50 * 1000000ULL)
#define META_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define MSG_LOST "the store is not adopted; starting afresh, every client " \
		 "gets STATE_LOST"

/*
 * Kernel descriptors the store may hold, in all: each domain's context
 * keeps its /dev/iommu and one per device (BACKEND_KEEP_MAX_FDS at most).
 * dirtyd.service's FileDescriptorStoreMax= is above it.
 */
#define STATE_MAX_KERNEL_FDS 4096

/* What the store calls descriptor NAME of domain D's context:
 * kernel-D-NAME. */
#define STATE_FDNAME_MAX (sizeof(FD_KERNEL) + 11 + BACKEND_NAME_MAX)

/* A descriptor of domain @domain's kernel context, and which file it is;
 * the store calls it kernel-DOMAIN-NAME. */
struct state_kept {
	uint32_t domain;
	char name[BACKEND_NAME_MAX];
	int fd;
	dev_t dev;
	ino_t ino;
};

/*
 * What a version's records say, decoded (format.c reads and writes their
 * bytes, state_format.h): the daemon's own structures, in no format.
 */
struct state_head {
	uint64_t magic;
	uint32_t format;
	uint32_t backend;	/* enum backend_kind */
	uint32_t next_domain_id;
	uint32_t ndomains;
	uint32_t nsubs;
	uint32_t reserved;
	uint64_t seq;
	uint64_t bits_size;
};

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
	uint64_t round_off;
	uint64_t round_words;
	uint64_t layout_words;
	uint64_t counters_off;
	char guest[BACKEND_NAME_MAX];
	struct state_intent intent;
	uint64_t lease;
	uint64_t lease_token;
	uint32_t lease_pid;
	uint32_t lease_uid;
	uint64_t lease_deadline_ns;
};

struct state_dev_rec {
	char name[BACKEND_NAME_MAX];
	uint32_t dev_id;
	uint32_t reserved;
};

struct state_map_rec {
	uint64_t iova;
	uint64_t length;
	uint32_t external;
	uint32_t reserved;
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
	uint64_t pending_off;
	uint64_t flight_off;
	uint64_t nwords;
	uint64_t deadline_ns;
};

/* What the committed version said, parsed, until state_restore(). */
struct state_pdomain {
	struct state_domain_rec d;	/* its record */
	const struct state_domain_rec *rec;	/* &d */
	struct state_dev_rec *devs;
	struct state_map_rec *maps;
	struct state_range_rec *retired;
	const char (*knames)[BACKEND_NAME_MAX];	/* its context's, rec->nkept */
	const void *blob;			/* rec->blob_len bytes */
	uint64_t *counters, *round;	/* claimed */
	struct domain *dom;		/* restored; NULL: lost */
	const char *lost;		/* why not */
};

struct state_psub {
	struct state_sub_rec s;		/* its record */
	const struct state_sub_rec *rec;	/* &s */
	const struct state_pdomain *pd;
	uint64_t *pending, *flight;	/* claimed */
	uint64_t deadline_ns;	/* its session's: its subs' earliest */
	bool first;		/* the first of its session's subs */
};

struct state {
	bool store;		/* $NOTIFY_SOCKET: a store may exist */
	bool restoring;
	bool store_failed;	/* told once */
	bool too_big;		/* told once */
	bool serving;		/* the loop turned: adoption count reset */
	bool left;		/* state_leave(): nothing is committed */
	int meta_fd;
	uint8_t *meta;
	struct bitmem *bits;
	uint32_t active;	/* the committed slot */
	struct event *tick;
	struct event *pass;	/* the journal's: commits what is owed */
	bool owed;		/* changed since the last commit */
	char why[384];		/* why the store is not adopted */

	/* what systemd passed; kernel descriptors not adopted by the end of
	 * state_restore() are closed and dropped from the store */
	int passed_meta, passed_bits;
	unsigned int nmeta, nbits;	/* passed under those names */
	struct state_kept *passed;	/* fd -1 once adopted */
	size_t npassed;

	/* the committed version handed back, once parsed */
	uint8_t *version;
	struct state_head h;
	const struct state_head *head;	/* &h once parsed */
	struct state_pdomain *pd;
	struct state_psub *ps;
	uint64_t bits_end;	/* where its last bitmap ends */
	bool adopted;

	/* what the store holds of the kernel's: every domain's context;
	 * knext the next answer (both STATE_MAX_KERNEL_FDS) */
	struct state_kept *kept, *knext;
	size_t nkept;
	uint8_t blob[BACKEND_KEEP_MAX_BLOB];	/* domain_keep()'s */

	uint64_t seq;
	/* the committed version's subscription records: offset, count */
	uint64_t subs_at;
	uint32_t nsubs_at;
};

struct writer {
	uint8_t *p;
	size_t len, cap;
	bool full;
};

struct reader {
	const uint8_t *p;
	size_t len, off;
	uint32_t format;	/* the version's */
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline uint64_t now_us(void)
{
	return now_ns() / 1000;
}


static inline unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* format.c */
int refuse(struct state *st, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t sub_token(const struct subscription *sub, uid_t *uid);
uint64_t park_deadline(const struct park *p);
uint64_t sub_deadline(const struct subscription *sub);
void state_encode(struct state *st, struct server *srv, struct writer *w,
		  uint64_t seq, size_t *nknext, uint64_t *subs_at,
		  uint32_t *nsubs);
/* Subscription record @i of those a version of this format holds from
 * @subs on. */
void state_sub_at(const uint8_t *subs, uint32_t i, struct state_sub_rec *out);
int state_parse(struct state *st, uint32_t backend);
void state_version_free(struct state *st);

/* store.c */
void name_copy(char *dst, const char *src);
void kernel_fdname(char out[STATE_FDNAME_MAX], uint32_t domain,
		   const char *name);
void store_fd(struct state *st, const char *name, int fd);
void store_remove(struct state *st, const char *name);
void kept_identify(struct state_kept *k);
struct state_kept *kept_find(struct state_kept *k, size_t n, uint32_t domain,
			     const char *name);
void state_store_new(struct state *st, size_t n);
void state_store_drop_old(struct state *st, size_t n);
void state_close_passed(struct state *st);
void state_drop_passed(struct state *st);
int state_check_names(struct state *st);
int store_domain_keep(struct state *st, struct domain *d,
		      struct backend_kept_fd *fds, size_t *len);

/* journal.c */
void state_start_tick(struct server *srv);

#endif
