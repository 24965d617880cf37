// SPDX-License-Identifier: MIT
/*
 * Surviving a restart (SIGKILL, a crash, an upgrade) without losing a bit.
 *
 * What must survive, and where it lives:
 *
 *  - Dirty bits, in the bitmap memfd (bitmem.h), at every instant:
 *    . a domain's round bitmap and the bounce words of its heads: the
 *      harvest reads the IOMMU into them, so a bit the kernel cleared is in
 *      the memfd when the ioctl returns; the engine zeroes a slice only
 *      right before reading into it, after the previous round was folded;
 *    . every subscription's pending bitmap P;
 *    . every subscription's flight bitmap F: a superset of the pages of
 *      the generations it was sent and has not acknowledged.  The chunks
 *      of a generation are encoded in RAM and lost with the process; the
 *      take does F[i] |= w before P[i] &= ~w, so a page leaves P only once
 *      it is in F, and F is zeroed (punched) only when no generation is in
 *      flight any more.  Chosen over durable chunks: one OR per non-zero
 *      word, no allocation, bounded by the domain's size like P; the price
 *      is that after a restart pages of a generation acknowledged while an
 *      older one was still in flight are sent again (over-reporting is
 *      allowed, under-reporting never).
 *  - The domain's generation, in a durable counters page of its own,
 *    stored after each round's fold (no commit per round).
 *  - Everything else (domains: ids, owner, devices, IOAS/HWPT ids, mappings
 *    and retired ranges, tracking, huge pages, guest name; sessions that
 *    can be resumed: token, uid, and their subscriptions: domain, interval,
 *    clean, and where P and F are; next_domain_id; each domain's kernel
 *    context's descriptor names and blob), in the metadata memfd,
 *    rewritten whole by
 *    state_commit() after every change: the new version goes into the
 *    inactive of two slots with its length and checksum, then one aligned
 *    store of the commit word names it (state_format.h).  A version is
 *    never half-visible.
 *  - Each domain's kernel context (backend_keep()): its descriptors in
 *    the store as kernel-DOMAIN-NAME, handed over by the commit that
 *    first lists the domain (so a creation cut off leaves nothing: the
 *    dead process's files held it all).
 *
 * Bitmap space is allocated -> initialised -> committed; released space is
 * reclaimed (punched) only after a commit that no longer names it, so the
 * committed version never names reused space.  At a restart the committed
 * version's regions are claimed and all other space punched: whatever a
 * dead process allocated and never committed is gone.
 *
 * Kernel changes cannot be made atomic with a commit, so each is bracketed
 * by an intent (state.h) committed before it; a restart finishes (destroy,
 * detach, unmap, tracking) or undoes (create, attach, map) the one it
 * finds.  The clients whose requests were cut off never got an answer.
 *
 * At a restart: every domain is planned again, the old round bitmap is
 * folded into every subscription again (OR is idempotent; it may repeat
 * one round), F goes back into P, every kept session is parked until the
 * deadline it had (a session closed before the death keeps the end of its
 * resume_grace: a restart never extends it; one connected at the death
 * gets resume_grace from now), configured guests' DMA restarts.  A park
 * or a resume is recorded by the next commit, or by the tick within
 * STATE_TICK_MS (neither commits by itself).
 *
 * The store is checked, not trusted.  Before anything of it is used:
 * dirtyd-meta is its exact size; its superblock is this format; its
 * commit word names one slot; that version's checksum, head (format, seq,
 * backend) and every record (counts within the version, names terminated,
 * ids unique, page sizes, flags, intents, each bitmap page-aligned and
 * within dirtyd-bits as sized, the mappings planning to exactly the
 * bitmaps' sizes, tokens unique per domain and uid) are right;
 * dirtyd-bits is there, once, with the size the version says and at least
 * the size its bitmaps need (it is never extended or zero-filled to fit);
 * no two bitmaps overlap.  The first failure is logged at error level with
 * what it found, and nothing of that store is used (whole store, not per
 * domain: one checksum vouches for every record, one memfd holds every
 * bitmap; either wrong means the store was damaged or tampered with, and
 * no part of it is then known to be right): dirtyd starts afresh and
 * every resume gets STATE_LOST.  A domain's kernel context is its own:
 * one that is missing, torn (its dirtyd died in the middle of a change to
 * it) or not adoptable loses that domain only, logged at error level;
 * kept sessions that tracked it get STATE_LOST, all others resume.  The bits themselves are not summed: they change
 * at every round with no commit, the kernel writes them in place, and a
 * sum of words being written cannot be kept crash-consistent (dirtyd(8)).
 *
 * Adoptions that keep failing are not retried forever: the superblock
 * counts adoptions begun and not yet serving (reset at the first turn of
 * the event loop); at STATE_MAX_TRIES the next start refuses the store.
 * systemd dispatches notification messages before SIGCHLD, so an FDSTORE
 * sent right before a death is not lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/state/state.h"
#include "daemon/state/state_format.h"

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

/* A descriptor of domain @domain's kernel context, and which file it is;
 * the store calls it kernel-DOMAIN-NAME. */
struct state_kept {
	uint32_t domain;
	char name[BACKEND_NAME_MAX];
	int fd;
	dev_t dev;
	ino_t ino;
};

/* What the committed version said, parsed, until state_restore(). */
struct state_pdomain {
	const struct state_domain_rec *rec;
	const struct state_dev_rec *devs;
	const struct state_map_rec *maps;
	const struct state_range_rec *retired;
	const char (*knames)[BACKEND_NAME_MAX];	/* its context's, rec->nkept */
	const void *blob;			/* rec->blob_len bytes */
	uint64_t *counters, *round;	/* claimed */
	struct domain *dom;		/* restored; NULL: lost */
	const char *lost;		/* why not */
};

struct state_psub {
	const struct state_sub_rec *rec;
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
	int meta_fd;
	uint8_t *meta;
	struct bitmem *bits;
	uint32_t active;	/* the committed slot */
	struct event *tick;
	char why[384];		/* why the store is not adopted */

	/* what systemd passed; kernel descriptors not adopted by the end of
	 * state_restore() are closed and dropped from the store */
	int passed_meta, passed_bits;
	unsigned int nmeta, nbits;	/* passed under those names */
	struct state_kept *passed;	/* fd -1 once adopted */
	size_t npassed;

	/* the committed version handed back, once parsed */
	uint8_t *version;
	const struct state_head *head;
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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t now_us(void)
{
	return now_ns() / 1000;
}

/* Why the store is not used, into st->why; returns @err. */
static int refuse(struct state *st, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(struct state *st, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	return err;
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* ------------------------------------------------------------ store */

/* A name of at most BACKEND_NAME_MAX - 1 bytes into @dst. */
static void name_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, BACKEND_NAME_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* What the store calls descriptor @name of domain @domain's context. */
#define STATE_FDNAME_MAX (sizeof(FD_KERNEL) + 11 + BACKEND_NAME_MAX)
static void kernel_fdname(char out[STATE_FDNAME_MAX], uint32_t domain,
			  const char *name)
{
	snprintf(out, STATE_FDNAME_MAX, FD_KERNEL "%u-%s", domain, name);
}

static void store_failed(struct state *st, int r, const char *name)
{
	if (st->store_failed)
		return;
	st->store_failed = true;
	log_warning_errno(r, "handing %s to systemd's file descriptor store "
			  "failed: a restart will not keep the state", name);
}

static void store_fd(struct state *st, const char *name, int fd)
{
	char msg[64 + 2 * BACKEND_NAME_MAX];
	int r;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (r <= 0)
		store_failed(st, r ? r : -ENOTCONN, name);
}

static void store_remove(struct state *st, const char *name)
{
	char msg[64 + 2 * BACKEND_NAME_MAX];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	if (sd_pid_notify(0, 0, msg) <= 0)
		log_debug("FDSTOREREMOVE %s: no store", name);
}

static void kept_identify(struct state_kept *k)
{
	struct stat s;

	k->dev = 0;
	k->ino = 0;
	if (fstat(k->fd, &s) == 0) {
		k->dev = s.st_dev;
		k->ino = s.st_ino;
	}
}

/* What backend_keep() says of @d's context now: its descriptors in @fds
 * (BACKEND_KEEP_MAX_FDS), its blob in st->blob (*@len bytes). */
static int domain_keep(struct state *st, struct domain *d,
		       struct backend_kept_fd *fds, size_t *len)
{
	*len = sizeof(st->blob);
	if (!d->kctx || !d->kctx->ops->keep)
		return -EOPNOTSUPP;
	return backend_keep(d->kctx, fds, BACKEND_KEEP_MAX_FDS, st->blob, len);
}

static struct state_kept *kept_find(struct state_kept *k, size_t n,
				    uint32_t domain, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (k[i].domain == domain && !strcmp(k[i].name, name))
			return &k[i];
	return NULL;
}

/*
 * Hand the store the kernel descriptors the new version names (st->knext,
 * filled by put_domain()) that it does not hold yet: before the commit
 * word, so that no committed version names one the store lacks.
 */
static void state_store_new(struct state *st, size_t n)
{
	char name[STATE_FDNAME_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct state_kept *e = &st->knext[i];
		struct state_kept *old = kept_find(st->kept, st->nkept,
						   e->domain, e->name);

		if (old && old->dev == e->dev && old->ino == e->ino)
			continue;
		kernel_fdname(name, e->domain, e->name);
		if (old)
			store_remove(st, name);
		store_fd(st, name, e->fd);
	}
}

/* After the commit word: drop what no version names any more, and make
 * the new set the one the store holds. */
static void state_store_drop_old(struct state *st, size_t n)
{
	char name[STATE_FDNAME_MAX];
	struct state_kept *t;

	for (size_t j = 0; j < st->nkept; j++)
		if (!kept_find(st->knext, n, st->kept[j].domain,
			       st->kept[j].name)) {
			kernel_fdname(name, st->kept[j].domain,
				      st->kept[j].name);
			store_remove(st, name);
		}
	t = st->kept;
	st->kept = st->knext;
	st->knext = t;
	st->nkept = n;
}

/* ------------------------------------------------------------ versions */

struct writer {
	uint8_t *p;
	size_t len, cap;
	bool full;
};

static void put(struct writer *w, const void *src, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_pad8(struct writer *w)
{
	static const uint8_t zero[8];

	put(w, zero, (8 - w->len % 8) % 8);
}

/* Does the store keep @sub's session (a token to resume with)? */
static uint64_t sub_token(const struct subscription *sub, uid_t *uid)
{
	if (sub->session) {
		*uid = sub->session->uid;
		return sub->session->token;
	}
	if (sub->park) {
		*uid = sub->park->uid;
		return sub->park->token;
	}
	return 0;
}

/*
 * When @p's resume grace ends, CLOCK_MONOTONIC ns.  Its timer is the
 * truth: libevent reports the expiry and the loop's time on one clock, so
 * their difference is what is left.
 */
/* Kept by the park, not asked of its timer: event_pending() maps
 * libevent's monotonic timeouts to the wall clock only once the machine
 * has been up 5 s (a restart early in a boot recorded "now"). */
static uint64_t park_deadline(const struct park *p)
{
	return p->deadline_ns;
}

/* What the store records of @sub's session's grace: 0 while connected. */
static uint64_t sub_deadline(const struct subscription *sub)
{
	return sub->park ? park_deadline(sub->park) : 0;
}

static void put_domain(struct state *st, struct writer *w, struct domain *d,
		       size_t *nknext)
{
	const struct harvest_domain *p = d->plan;
	struct state_domain_rec rec = {
		.id = d->id,
		.owner = (uint32_t)d->owner,
		.ioas_id = d->ioas_id,
		.hwpt_id = d->hwpt_id,
		.flags = (d->tracking_capable ? DREC_TRACKING : 0) |
			 (d->enabled ? DREC_ENABLED : 0) |
			 (d->huge_pages ? DREC_HUGE : 0),
		.ndevices = d->ndevices,
		.nmaps = (uint32_t)d->nmaps,
		.nretired = (uint32_t)d->nretired,
		.page_size = d->page_size,
		.max_leaf = d->max_leaf,
		.round_off = bitmem_offset(st->bits, p->bitmap),
		.round_words = p->nwords + p->nheads,
		.layout_words = p->nwords,
		.counters_off = bitmem_offset(st->bits, d->counters),
		.intent = d->intent,
	};
	struct backend_kept_fd fds[BACKEND_KEEP_MAX_FDS];
	struct domain_device *dev;
	size_t len = 0;
	bool was = d->unkept;
	int n;

	/* its context: named here, its descriptors in st->knext for the
	 * store (a domain whose context cannot be kept is marked: its
	 * record says so, and a restart drops it) */
	n = domain_keep(st, d, fds, &len);
	d->unkept = n < 0 || *nknext + (size_t)n > STATE_MAX_KERNEL_FDS;
	if (d->unkept && !was)
		log_warning_errno(n < 0 ? n : -ENOSPC, "domain %u's kernel "
				  "context cannot be kept: a restart will lose "
				  "the domain", d->id);
	if (!d->unkept) {
		rec.flags |= DREC_KEPT;
		rec.nkept = (uint32_t)n;
		rec.blob_len = (uint32_t)len;
		for (int i = 0; i < n; i++) {
			struct state_kept *e = &st->knext[(*nknext)++];

			e->domain = d->id;
			name_copy(e->name, fds[i].name);
			e->fd = fds[i].fd;
			kept_identify(e);
		}
	}
	memcpy(rec.guest, d->guest, sizeof(rec.guest));
	put(w, &rec, sizeof(rec));
	for (uint32_t i = 0; i < rec.nkept; i++) {
		char name[BACKEND_NAME_MAX] = { 0 };

		name_copy(name, st->knext[*nknext - rec.nkept + i].name);
		put(w, name, sizeof(name));
	}
	put(w, st->blob, rec.blob_len);
	put_pad8(w);
	list_for_each_entry(dev, &d->devices, link) {
		struct state_dev_rec dr = { .dev_id = dev->dev_id };

		memcpy(dr.name, dev->name, sizeof(dr.name));
		put(w, &dr, sizeof(dr));
	}
	for (size_t i = 0; i < d->nmaps; i++) {
		struct state_map_rec mr = {
			.iova = d->maps[i].iova,
			.length = d->maps[i].length,
			.external = d->maps[i].external,
		};

		put(w, &mr, sizeof(mr));
	}
	for (size_t i = 0; i < d->nretired; i++) {
		struct state_range_rec rr = {
			.iova = d->retired[i].iova,
			.length = d->retired[i].length,
		};

		put(w, &rr, sizeof(rr));
	}
}

void state_commit(struct server *srv)
{
	struct state *st = srv->state;
	struct state_super *sb;
	struct state_head head = {
		.magic = STATE_MAGIC,
		.format = STATE_FORMAT,
		.bits_size = BITMEM_RESERVE,
	};
	struct writer w;
	struct domain *d;
	struct subscription *sub;
	uint64_t subs_at;
	size_t nknext = 0;
	uint32_t slot;

	if (!st || !st->meta || st->restoring)
		return;
	sb = (struct state_super *)st->meta;
	slot = !st->active;
	w = (struct writer){
		.p = st->meta + STATE_META_SUPER + slot * STATE_META_SLOT,
		.cap = STATE_META_SLOT,
	};

	head.backend = (uint32_t)srv->cfg->backend;
	head.next_domain_id = srv->next_domain_id;
	head.seq = st->seq + 1;
	list_for_each_entry(d, &srv->domains, link) {
		uid_t uid;

		head.ndomains++;
		list_for_each_entry(sub, &d->subs, dom_link)
			head.nsubs += sub_token(sub, &uid) != 0;
	}

	put(&w, &head, sizeof(head));
	list_for_each_entry(d, &srv->domains, link)
		put_domain(st, &w, d, &nknext);
	subs_at = w.len;
	list_for_each_entry(d, &srv->domains, link) {
		list_for_each_entry(sub, &d->subs, dom_link) {
			struct state_sub_rec sr = {
				.domain_id = d->id,
				.interval_ms = sub->interval_ms,
				.clean = sub->clean,
				.pages_sent = sub->pages_sent,
				.nwords = sub->set.nwords,
			};
			uid_t uid = 0;

			sr.token = sub_token(sub, &uid);
			if (!sr.token)
				continue;
			sr.uid = (uint32_t)uid;
			sr.pending_off = bitmem_offset(st->bits,
						       sub->set.pending);
			sr.flight_off = bitmem_offset(st->bits,
						      sub->set.flight);
			sr.deadline_ns = sub_deadline(sub);
			put(&w, &sr, sizeof(sr));
		}
	}
	if (w.full) {
		if (!st->too_big)
			log_error("the state no longer fits its %llu MiB: the "
				  "last version that did is kept, a restart "
				  "now would lose what changed since",
				  ull(STATE_META_SLOT >> 20));
		st->too_big = true;
		return;
	}
	st->too_big = false;
	/* descriptors the version names reach the store before it does */
	state_store_new(st, nknext);
	st->seq = head.seq;
	sb->slot[slot].seq = head.seq;
	sb->slot[slot].len = w.len;
	sb->slot[slot].sum = state_sum(w.p, w.len);
	/* the commit: one aligned store, after everything it points at */
	__atomic_store_n(&sb->commit, state_commit_word(head.seq, slot),
			 __ATOMIC_RELEASE);
	st->active = slot;
	st->subs_at = subs_at;
	st->nsubs_at = head.nsubs;
	/* and leave it once no committed version names them */
	state_store_drop_old(st, nknext);
	/* the old slot's tail: give back pages the new version did not use */
	bitmem_reclaim(st->bits);
}

/*
 * Have sessions closed or resumed since the last commit (nothing commits
 * for either)?  The kept subscriptions against the committed records.
 */
static bool state_sessions_changed(struct server *srv)
{
	struct state *st = srv->state;
	const uint8_t *at = st->meta + STATE_META_SUPER +
			    st->active * STATE_META_SLOT + st->subs_at;
	struct domain *d;
	struct subscription *sub;
	uint32_t n = 0;

	list_for_each_entry(d, &srv->domains, link) {
		list_for_each_entry(sub, &d->subs, dom_link) {
			struct state_sub_rec rec;
			uint64_t dl, was;
			uid_t uid = 0;
			uint64_t token = sub_token(sub, &uid);

			if (!token)
				continue;
			if (n == st->nsubs_at)
				return true;
			memcpy(&rec, at + (uint64_t)n++ * sizeof(rec),
			       sizeof(rec));
			if (rec.token != token || rec.uid != (uint32_t)uid ||
			    rec.domain_id != d->id)
				return true;
			dl = sub_deadline(sub);
			was = rec.deadline_ns;
			if (!dl != !was || (dl > was ? dl - was : was - dl) >
					   DEADLINE_SLACK_NS)
				return true;
		}
	}
	return n != st->nsubs_at;
}

/* ------------------------------------------------------------ reading */

struct reader {
	const uint8_t *p;
	size_t len, off;
};

static const void *get(struct reader *r, uint64_t n)
{
	const void *at;

	if (n > r->len - r->off)
		return NULL;
	at = r->p + r->off;
	r->off += n;
	return at;
}

static bool name_ok(const char *name)
{
	return memchr(name, '\0', BACKEND_NAME_MAX) != NULL;
}

static bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* The bytes a bitmap of @nwords words takes in dirtyd-bits (bitmem.c). */
static uint64_t region_bytes(uint64_t nwords)
{
	return ((nwords ? nwords : 1) * 8 + PAGE - 1) & ~(PAGE - 1);
}

/* Is @what, @nwords words at @off, where dirtyd-bits can hold it? */
static int region_check(struct state *st, const char *what, uint64_t off,
			uint64_t nwords)
{
	uint64_t size = st->head->bits_size, bytes;

	if (nwords > size / 8)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s is %llu words, "
			      "more than dirtyd-bits (%llu bytes) holds", what,
			      ull(nwords), ull(size));
	bytes = region_bytes(nwords);
	if (off % PAGE)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s is at offset "
			      "%#llx of dirtyd-bits, not on a page", what,
			      ull(off));
	if (off > size || bytes > size - off)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s, [%#llx, "
			      "%#llx), lies past the end of dirtyd-bits "
			      "(%llu bytes)", what, ull(off), ull(off + bytes),
			      ull(size));
	if (off + bytes > st->bits_end)
		st->bits_end = off + bytes;
	return 0;
}

/* Claim what @st's parsed version names; -EBADMSG (st->why) if two of
 * its bitmaps overlap. */
static int state_claim(struct state *st)
{
	const struct state_head *h = st->head;
	int r;

	for (uint32_t i = 0; i < h->ndomains; i++) {
		struct state_pdomain *pd = &st->pd[i];

		pd->counters = bitmem_claim(st->bits, pd->rec->counters_off,
					    DOMAIN_COUNTERS_WORDS);
		if (!pd->counters)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "counters at %#llx overlap another "
				      "bitmap", pd->rec->id,
				      ull(pd->rec->counters_off));
		pd->round = bitmem_claim(st->bits, pd->rec->round_off,
					 pd->rec->round_words);
		if (!pd->round)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "round bitmap at %#llx overlaps another "
				      "bitmap", pd->rec->id,
				      ull(pd->rec->round_off));
	}
	for (uint32_t i = 0; i < h->nsubs; i++) {
		struct state_psub *ps = &st->ps[i];

		ps->pending = bitmem_claim(st->bits, ps->rec->pending_off,
					   ps->rec->nwords);
		ps->flight = bitmem_claim(st->bits, ps->rec->flight_off,
					  ps->rec->nwords);
		if (!ps->pending || !ps->flight)
			return refuse(st, -EBADMSG, "dirtyd-meta: subscription "
				      "%u (domain %u)'s %s bitmap at %#llx "
				      "overlaps another bitmap", i + 1,
				      ps->rec->domain_id,
				      ps->pending ? "flight" : "pending",
				      ull(ps->pending ? ps->rec->flight_off :
					  ps->rec->pending_off));
	}
	r = bitmem_claim_done(st->bits);
	if (r < 0)
		return refuse(st, r, "punching the space of dirtyd-bits no "
			      "bitmap uses failed: %s", strerror(-r));
	return 0;
}

/* Does @pd plan to the layout its bitmaps were made for? */
static int state_check_plan(const struct state_pdomain *pd)
{
	const struct state_domain_rec *rec = pd->rec;
	struct harvest_domain plan = { 0 };
	struct harvest_range *ranges;
	size_t n = 0, a = 0, b = 0;
	int r;

	ranges = calloc((size_t)rec->nmaps + rec->nretired + 1,
			sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	while (a < rec->nmaps || b < rec->nretired) {
		bool map = b == rec->nretired ||
			   (a < rec->nmaps &&
			    pd->maps[a].iova < pd->retired[b].iova);

		ranges[n++] = map ? (struct harvest_range){
			.iova = pd->maps[a].iova,
			.length = pd->maps[a].length,
		} : (struct harvest_range){
			.iova = pd->retired[b].iova,
			.length = pd->retired[b].length,
			.flags = HARVEST_RANGE_RETIRED,
		};
		a += map;
		b += !map;
	}
	r = harvest_domain_plan(&plan, rec->hwpt_id, rec->page_size, ranges,
				n, 0);
	free(ranges);
	if (r < 0)
		return r;
	if (plan.nwords != rec->layout_words ||
	    plan.nwords + plan.nheads != rec->round_words)
		r = -EBADMSG;
	harvest_domain_release(&plan);
	return r;
}

/* Which slot the superblock's commit word names: 0, 1, or -1. */
static int committed_slot(const struct state_super *sb)
{
	uint64_t word = __atomic_load_n(&sb->commit, __ATOMIC_ACQUIRE);
	bool s0 = word == state_commit_word(sb->slot[0].seq, 0);
	bool s1 = word == state_commit_word(sb->slot[1].seq, 1);

	return s0 == s1 ? -1 : s1;
}

/* Parse one domain's records at @r. */
static int parse_domain(struct state *st, struct reader *r, uint32_t i)
{
	struct state_pdomain *pd = &st->pd[i];
	const struct state_domain_rec *rec;
	char what[96];
	int e;

	pd->rec = rec = get(r, sizeof(*rec));
	if (!rec)
		return refuse(st, -EBADMSG, "dirtyd-meta: the version "
			      "(%zu bytes) ends inside its domain record "
			      "%u of %u", r->len, i + 1, st->head->ndomains);
	if (!rec->id || rec->id >= st->head->next_domain_id)
		return refuse(st, -EBADMSG, "dirtyd-meta: domain record %u "
			      "has id %u (the next id is %u)", i + 1, rec->id,
			      st->head->next_domain_id);
	if (rec->nkept > BACKEND_KEEP_MAX_FDS ||
	    rec->blob_len > BACKEND_KEEP_MAX_BLOB ||
	    (!(rec->flags & DREC_KEPT) && (rec->nkept || rec->blob_len)))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's kernel "
			      "context is malformed (%u descriptors, %u bytes "
			      "of blob)", rec->id, rec->nkept, rec->blob_len);
	pd->knames = get(r, (uint64_t)rec->nkept * BACKEND_NAME_MAX);
	pd->blob = get(r, rec->blob_len);
	if (!pd->knames || !pd->blob || !get(r, (8 - r->off % 8) % 8))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's kernel "
			      "context runs past the end of the version",
			      rec->id);
	for (uint32_t k = 0; k < rec->nkept; k++)
		if (!name_ok(pd->knames[k]) || strchr(pd->knames[k], ':'))
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "kernel descriptor name %u is "
				      "malformed", rec->id, k + 1);
	if (!name_ok(rec->guest) || !name_ok(rec->intent.device) ||
	    rec->intent.op > STATE_OP_TRACK || rec->flags & ~(DREC_TRACKING |
	    DREC_ENABLED | DREC_HUGE | DREC_KEPT))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's record "
			      "is malformed (a name, its flags or its "
			      "intent)", rec->id);
	/* the IOAS's IOVA alignment: the mock IOMMU's is 2 KiB */
	if (!pow2_in(rec->page_size, 512, 1ULL << 30) ||
	    !pow2_in(rec->max_leaf, rec->page_size, 1ULL << 30))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u has page "
			      "size %llu and largest leaf %llu", rec->id,
			      ull(rec->page_size), ull(rec->max_leaf));
	pd->devs = get(r, (uint64_t)rec->ndevices * sizeof(*pd->devs));
	pd->maps = get(r, (uint64_t)rec->nmaps * sizeof(*pd->maps));
	pd->retired = get(r, (uint64_t)rec->nretired * sizeof(*pd->retired));
	if (!pd->devs || !pd->maps || !pd->retired)
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's %u "
			      "devices, %u mappings and %u retired ranges "
			      "run past the end of the version (%zu bytes)",
			      rec->id, rec->ndevices, rec->nmaps,
			      rec->nretired, r->len);
	for (uint32_t k = 0; k < rec->ndevices; k++)
		if (!name_ok(pd->devs[k].name))
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "device %u has no name", rec->id, k + 1);
	for (uint32_t k = 0; k < rec->nmaps; k++)
		if (pd->maps[k].external > 1)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "mapping %u is malformed", rec->id,
				      k + 1);
	snprintf(what, sizeof(what), "domain %u's counters", rec->id);
	e = region_check(st, what, rec->counters_off, DOMAIN_COUNTERS_WORDS);
	if (e < 0)
		return e;
	snprintf(what, sizeof(what), "domain %u's round bitmap", rec->id);
	return region_check(st, what, rec->round_off, rec->round_words);
}

/* Parse one subscription's record at @r. */
static int parse_sub(struct state *st, struct reader *r, uint32_t i)
{
	struct state_psub *ps = &st->ps[i];
	const struct state_sub_rec *rec;
	const struct state_pdomain *pd = NULL;
	char what[96];
	int e;

	ps->rec = rec = get(r, sizeof(*rec));
	if (!rec)
		return refuse(st, -EBADMSG, "dirtyd-meta: the version "
			      "(%zu bytes) ends inside its subscription "
			      "record %u of %u", r->len, i + 1,
			      st->head->nsubs);
	for (uint32_t k = 0; k < st->head->ndomains && !pd; k++)
		if (st->pd[k].rec->id == rec->domain_id)
			pd = &st->pd[k];
	if (!rec->token || rec->clean > 1 || !pd)
		return refuse(st, -EBADMSG, "dirtyd-meta: subscription %u "
			      "(domain %u) is malformed (no token, or a "
			      "domain the version does not hold)", i + 1,
			      rec->domain_id);
	ps->pd = pd;
	if (rec->nwords != pd->rec->layout_words)
		return refuse(st, -EBADMSG, "dirtyd-meta: subscription %u's "
			      "bitmaps are %llu words, domain %u's layout is "
			      "%llu", i + 1, ull(rec->nwords), rec->domain_id,
			      ull(pd->rec->layout_words));
	snprintf(what, sizeof(what), "subscription %u (domain %u)'s pending "
		 "bitmap", i + 1, rec->domain_id);
	e = region_check(st, what, rec->pending_off, rec->nwords);
	if (e < 0)
		return e;
	snprintf(what, sizeof(what), "subscription %u (domain %u)'s flight "
		 "bitmap", i + 1, rec->domain_id);
	return region_check(st, what, rec->flight_off, rec->nwords);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_psub(const void *a, const void *b)
{
	const struct state_psub *const *pa = a, *const *pb = b;
	const struct state_sub_rec *x = (*pa)->rec, *y = (*pb)->rec;

	if (x->token != y->token)
		return (x->token > y->token) - (x->token < y->token);
	return (x->domain_id > y->domain_id) - (x->domain_id < y->domain_id);
}

/*
 * Domain ids unique; a token one uid's, subscribed once per domain; each
 * session's deadline the earliest of its subscriptions'.
 */
static int check_unique(struct state *st)
{
	const struct state_head *h = st->head;
	struct state_psub **by = NULL;
	uint32_t *ids;
	int r = 0;

	ids = calloc((size_t)h->ndomains + 1, sizeof(*ids));
	by = calloc((size_t)h->nsubs + 1, sizeof(*by));
	if (!ids || !by) {
		r = refuse(st, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < h->ndomains; i++)
		ids[i] = st->pd[i].rec->id;
	qsort(ids, h->ndomains, sizeof(*ids), cmp_u32);
	for (uint32_t i = 1; i < h->ndomains && !r; i++)
		if (ids[i] == ids[i - 1])
			r = refuse(st, -EBADMSG, "dirtyd-meta: two domains "
				   "have id %u", ids[i]);
	for (uint32_t i = 0; i < h->nsubs; i++)
		by[i] = &st->ps[i];
	qsort(by, h->nsubs, sizeof(*by), cmp_psub);
	for (uint32_t i = 0, first = 0; i < h->nsubs && !r; i++) {
		const struct state_sub_rec *a = by[first]->rec, *b = by[i]->rec;

		if (i && b->token != a->token)
			first = i;
		else if (i && (b->uid != a->uid ||
			       b->domain_id == by[i - 1]->rec->domain_id))
			r = refuse(st, -EBADMSG, "dirtyd-meta: a session is "
				   "kept twice for domain %u, or for two "
				   "uids", b->domain_id);
		by[i]->first = i == first;
		/* the deadline of the session: the earliest; 0 (connected)
		 * only if no subscription says it was closed */
		if (i == first ||
		    (b->deadline_ns && (!by[first]->deadline_ns ||
		     b->deadline_ns < by[first]->deadline_ns)))
			by[first]->deadline_ns = b->deadline_ns;
	}
	for (uint32_t i = 0, first = 0; i < h->nsubs && !r; i++) {
		if (by[i]->first)
			first = i;
		by[i]->deadline_ns = by[first]->deadline_ns;
	}
out:
	free(ids);
	free(by);
	return r;
}

/* Parse the committed version; st->why says what is wrong with it. */
static int state_parse(struct server *srv)
{
	struct state *st = srv->state;
	const struct state_super *sb = (const void *)st->meta;
	const struct state_head *h;
	struct reader r;
	uint64_t len;
	int slot, e;

	slot = committed_slot(sb);
	if (slot < 0)
		return refuse(st, -EBADMSG, "dirtyd-meta's superblock names "
			      "no committed version (its commit word matches "
			      "neither slot): it is damaged");
	len = sb->slot[slot].len;
	if (len > STATE_META_SLOT || len < sizeof(struct state_head))
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "(seq %llu) says it is %llu bytes; a version is "
			      "%zu to %llu", ull(sb->slot[slot].seq), ull(len),
			      sizeof(struct state_head),
			      ull(STATE_META_SLOT));
	if (state_sum(st->meta + STATE_META_SUPER + slot * STATE_META_SLOT,
		      len) != sb->slot[slot].sum)
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "(seq %llu, %llu bytes) fails its checksum: it "
			      "is damaged", ull(sb->slot[slot].seq), ull(len));
	st->active = (uint32_t)slot;
	st->seq = sb->slot[slot].seq;
	/* a private copy: later commits write the slots */
	st->version = malloc(len);
	if (!st->version)
		return refuse(st, -ENOMEM, "out of memory");
	memcpy(st->version, st->meta + STATE_META_SUPER +
	       slot * STATE_META_SLOT, len);
	r = (struct reader){ .p = st->version, .len = len };
	st->head = h = get(&r, sizeof(*h));
	if (h->magic != STATE_MAGIC || h->format != STATE_FORMAT ||
	    h->seq != st->seq)
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "is not a format %u version of seq %llu (it says "
			      "format %u, seq %llu)", STATE_FORMAT,
			      ull(st->seq), h->format, ull(h->seq));
	if (h->backend != (uint32_t)srv->cfg->backend)
		return refuse(st, -EINVAL, "it was kept by a dirtyd on the %s "
			      "backend; this one runs the %s backend",
			      backend_kind_name(h->backend),
			      backend_kind_name(srv->cfg->backend));
	if (h->ndomains > len / sizeof(struct state_domain_rec) ||
	    h->nsubs > len / sizeof(struct state_sub_rec) ||
	    !h->next_domain_id)
		return refuse(st, -EBADMSG, "dirtyd-meta: the head of its "
			      "committed version is malformed (%u domains, %u "
			      "subscriptions in %llu bytes)", h->ndomains,
			      h->nsubs, ull(len));
	st->pd = calloc((size_t)h->ndomains + 1, sizeof(*st->pd));
	st->ps = calloc((size_t)h->nsubs + 1, sizeof(*st->ps));
	if (!st->pd || !st->ps)
		return refuse(st, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < h->ndomains; i++) {
		e = parse_domain(st, &r, i);
		if (e < 0)
			return e;
	}
	for (uint32_t i = 0; i < h->nsubs; i++) {
		e = parse_sub(st, &r, i);
		if (e < 0)
			return e;
	}
	if (r.off != len)
		return refuse(st, -EBADMSG, "dirtyd-meta: its records end at "
			      "byte %zu of a %llu-byte version", r.off,
			      ull(len));
	e = check_unique(st);
	if (e < 0)
		return e;
	for (uint32_t i = 0; i < h->ndomains; i++) {
		e = state_check_plan(&st->pd[i]);
		if (e == -ENOMEM)
			return refuse(st, e, "out of memory");
		if (e < 0)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "%u mappings and %u retired ranges do "
				      "not plan to the %llu-word bitmaps it "
				      "names", st->pd[i].rec->id,
				      st->pd[i].rec->nmaps,
				      st->pd[i].rec->nretired,
				      ull(st->pd[i].rec->layout_words));
	}
	return 0;
}

/* ------------------------------------------------------------ start */

int state_take_fds(struct server *srv, int *listen_fd)
{
	struct state *st;
	char **names = NULL;
	int n, r = 0;

	*listen_fd = -1;
	st = calloc(1, sizeof(*st));
	if (!st)
		return log_error_errno(-ENOMEM, "out of memory");
	st->passed_meta = st->passed_bits = st->meta_fd = -1;
	st->store = getenv("NOTIFY_SOCKET") != NULL;
	srv->state = st;
	st->passed = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->passed));
	st->kept = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->kept));
	st->knext = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->knext));
	if (!st->passed || !st->kept || !st->knext)
		return log_error_errno(-ENOMEM, "out of memory");

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return log_error_errno(n, "reading $LISTEN_FDS failed");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (!strcmp(name, FD_META)) {
			/* one of each, or the store is not ours */
			if (st->nmeta++)
				close(fd);
			else
				st->passed_meta = fd;
		} else if (!strcmp(name, FD_BITS)) {
			if (st->nbits++)
				close(fd);
			else
				st->passed_bits = fd;
		} else if (!strncmp(name, FD_KERNEL, strlen(FD_KERNEL)) &&
			   st->npassed < STATE_MAX_KERNEL_FDS) {
			struct state_kept *k = &st->passed[st->npassed];
			const char *at = name + strlen(FD_KERNEL);
			char *end;
			unsigned long dom = strtoul(at, &end, 10);

			/* kernel-DOMAIN-NAME; another name is not ours */
			if (at[0] < '1' || at[0] > '9' || *end != '-' ||
			    dom > UINT32_MAX || !end[1] ||
			    strlen(end + 1) >= BACKEND_NAME_MAX) {
				log_warning("ignoring the descriptor named "
					    "'%s' that systemd passed", name);
				store_remove(st, name);
				close(fd);
				continue;
			}
			k->domain = (uint32_t)dom;
			name_copy(k->name, end + 1);
			k->fd = fd;
			st->npassed++;
		} else if (sd_is_socket(fd, AF_UNIX, 0, 1) > 0) {
			if (*listen_fd >= 0) {
				r = log_error_errno(-EINVAL, "systemd passed "
						    "more than one socket; "
						    "dirtyd takes exactly one "
						    "(ListenSequentialPacket=)");
				close(fd);
				continue;
			}
			*listen_fd = fd;
		} else {
			log_warning("ignoring the descriptor named '%s' that "
				    "systemd passed", name);
			close(fd);
		}
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return r;
}

static void state_close_passed(struct state *st)
{
	if (st->passed_meta >= 0)
		close(st->passed_meta);
	if (st->passed_bits >= 0)
		close(st->passed_bits);
	for (size_t i = 0; i < st->npassed; i++)
		if (st->passed[i].fd >= 0)
			close(st->passed[i].fd);
	st->passed_meta = st->passed_bits = -1;
	st->npassed = 0;
}

/* Kernel descriptors passed and not adopted: closed (the kernel frees
 * what they held) and dropped from the store. */
static void state_drop_passed(struct state *st)
{
	char name[STATE_FDNAME_MAX];

	for (size_t i = 0; i < st->npassed; i++) {
		if (st->passed[i].fd < 0)
			continue;
		kernel_fdname(name, st->passed[i].domain, st->passed[i].name);
		store_remove(st, name);
		close(st->passed[i].fd);
		st->passed[i].fd = -1;
	}
	st->npassed = 0;
}

static int state_map_meta(struct state *st, int fd)
{
	st->meta = mmap(NULL, STATE_META_SIZE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (st->meta == MAP_FAILED) {
		st->meta = NULL;
		return -errno;
	}
	st->meta_fd = fd;
	return 0;
}

/* The parsed version handed back, once rebuilt from or given up. */
static void state_drop_version(struct state *st)
{
	free(st->version);
	free(st->pd);
	free(st->ps);
	st->version = NULL;
	st->pd = NULL;
	st->ps = NULL;
	st->head = NULL;
}

static void state_forget(struct state *st)
{
	if (st->meta)
		munmap(st->meta, STATE_META_SIZE);
	st->meta = NULL;
	if (st->meta_fd >= 0)
		close(st->meta_fd);
	st->meta_fd = -1;
	bitmem_free(st->bits);
	st->bits = NULL;
	state_drop_version(st);
	st->nkept = 0;
}

/* Are the store's descriptors the set one dirtyd leaves? */
static int state_check_names(struct state *st)
{
	if (st->nmeta > 1 || st->nbits > 1)
		return refuse(st, -EBADMSG, "the store holds %u descriptors "
			      "named " FD_META " and %u named " FD_BITS
			      " (one of each is ours)", st->nmeta, st->nbits);
	if (st->nmeta && !st->nbits)
		return refuse(st, -ENOENT, "the store holds " FD_META " but "
			      "no " FD_BITS ": the dirty bitmaps are missing");
	if (!st->nmeta && st->nbits)
		return refuse(st, -ENOENT, "the store holds " FD_BITS " but "
			      "no " FD_META ": what the bitmaps belong to is "
			      "missing");
	if (!st->nmeta)
		return refuse(st, -ENOENT, "the store holds a kernel context "
			      "(" FD_KERNEL "%u-%s) but neither " FD_META
			      " nor " FD_BITS, st->passed[0].domain,
			      st->passed[0].name);
	return 0;
}

/* Map dirtyd-meta as it is and check its superblock. */
static int state_adopt_meta(struct state *st)
{
	const struct state_super *sb;
	struct stat s;
	int fd = st->passed_meta, r;

	st->passed_meta = -1;
	if (fstat(fd, &s) < 0) {
		r = -errno;
		close(fd);
		return refuse(st, r, FD_META " cannot be read: %s",
			      strerror(-r));
	}
	if ((uint64_t)s.st_size != STATE_META_SIZE) {
		close(fd);
		return refuse(st, -EMSGSIZE, FD_META " is %llu bytes, not "
			      "%llu", ull((uint64_t)s.st_size),
			      ull(STATE_META_SIZE));
	}
	r = state_map_meta(st, fd);
	if (r < 0) {
		close(fd);
		return refuse(st, r, FD_META " cannot be mapped: %s",
			      strerror(-r));
	}
	sb = (const void *)st->meta;
	if (sb->magic != STATE_MAGIC)
		return refuse(st, -EINVAL, FD_META " is not a dirtyd state "
			      "(magic %#llx)", ull(sb->magic));
	if (sb->format != STATE_FORMAT)
		return refuse(st, -EPROTO, FD_META " is in format %u and this "
			      "dirtyd reads format %u only (%s dirtyd kept "
			      "it)", sb->format, STATE_FORMAT,
			      sb->format < STATE_FORMAT ? "an older" :
			      "a newer");
	return 0;
}

/*
 * Count this adoption in the store before anything is taken from it, so
 * that a start that dies adopting it (a crash, the watchdog, a failure
 * before serving) is counted; refuse at STATE_MAX_TRIES.
 */
static int state_count_try(struct state *st)
{
	struct state_super *sb = (void *)st->meta;
	uint32_t tries = __atomic_load_n(&sb->tries, __ATOMIC_RELAXED);

	if (tries >= STATE_MAX_TRIES)
		return refuse(st, -ELOOP, "the %u adoptions of this store "
			      "before this one each ended before dirtyd could "
			      "serve (the log of each start says why); it is "
			      "not tried again", tries);
	if (tries)
		log_warning("this store was adopted %u time%s before by a "
			    "dirtyd that ended before it could serve (its "
			    "log says why): adopting it again, attempt %u of "
			    "%u", tries, tries > 1 ? "s" : "", tries + 1,
			    STATE_MAX_TRIES);
	__atomic_store_n(&sb->tries, tries + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Take dirtyd-bits as it is: its size is what the version says. */
static int state_adopt_bits(struct state *st)
{
	int fd = st->passed_bits, r;
	struct stat s;
	uint64_t size;

	st->passed_bits = -1;
	if (fstat(fd, &s) < 0) {
		r = -errno;
		close(fd);
		return refuse(st, r, FD_BITS " cannot be read: %s",
			      strerror(-r));
	}
	size = (uint64_t)s.st_size;
	r = 0;
	if (size < st->bits_end)
		r = refuse(st, -EMSGSIZE, FD_BITS " is %llu bytes, the "
			   "metadata needs %llu", ull(size),
			   ull(st->bits_end));
	else if (size != st->head->bits_size)
		r = refuse(st, -EMSGSIZE, FD_BITS " is %llu bytes, the "
			   "metadata says it was %llu", ull(size),
			   ull(st->head->bits_size));
	else if (size != BITMEM_RESERVE)
		r = refuse(st, -EMSGSIZE, FD_BITS " is %llu bytes; this dirtyd "
			   "maps %llu", ull(size), ull(BITMEM_RESERVE));
	if (r < 0) {
		close(fd);
		return r;
	}
	r = bitmem_adopt(fd, &st->bits);
	if (r < 0)
		return refuse(st, r, FD_BITS " cannot be mapped: %s",
			      strerror(-r));
	return 0;
}

/* Map, check, parse and claim the state handed back: 0, or why not
 * (logged).  -ENOENT, not logged, when the store held nothing. */
static int state_load(struct server *srv)
{
	struct state *st = srv->state;
	uint64_t t0 = now_us();
	int r;

	if (!st->nmeta && !st->nbits && !st->npassed)
		return -ENOENT;
	r = state_check_names(st);
	if (!r)
		r = state_adopt_meta(st);
	if (!r)
		r = state_count_try(st);
	if (!r)
		r = state_parse(srv);
	if (!r)
		r = state_adopt_bits(st);
	if (!r)
		r = state_claim(st);
	if (r < 0)
		log_error("%s: " MSG_LOST, st->why);
	else
		log_debug("the store is checked and claimed, in %" PRIu64
			  " us: version %" PRIu64 " of %" PRIu64 " bytes, %u "
			  "domains, %u subscriptions", now_us() - t0, st->seq,
			  ((const struct state_super *)st->meta)->
			  slot[st->active].len, st->head->ndomains,
			  st->head->nsubs);
	return r;
}

int state_open(struct server *srv, struct backend_config *bc)
{
	struct state *st = srv->state;

	/* each domain adopts its own context in state_restore() */
	srv->kcfg = *bc;
	srv->kcfg.kept = NULL;
	srv->kcfg.n_kept = 0;
	if (st->store && state_load(srv) == 0) {
		st->adopted = true;
	} else {
		state_forget(st);
		if (st->passed_meta >= 0)
			close(st->passed_meta);
		if (st->passed_bits >= 0)
			close(st->passed_bits);
		st->passed_meta = st->passed_bits = -1;
		/* kernel contexts of a store not adopted: state_fresh() */
	}
	return backend_open(&srv->kcfg, &srv->backend);
}

/*
 * Adopt the kernel context @pd's domain kept (its descriptors in the
 * store, its blob in the version) into *@out; NULL and why (pd->lost)
 * when it cannot be: the domain is lost, no other.
 */
static int state_adopt_context(struct server *srv, struct state_pdomain *pd,
			       struct backend **out)
{
	struct state *st = srv->state;
	const struct state_domain_rec *rec = pd->rec;
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	struct backend_config bc = srv->kcfg;
	int r;

	*out = NULL;
	if (!(rec->flags & DREC_KEPT)) {
		pd->lost = "the dirtyd that kept it could not keep its kernel "
			   "context";
		return -ENOENT;
	}
	for (uint32_t i = 0; i < rec->nkept; i++) {
		struct state_kept *k = kept_find(st->passed, st->npassed,
						 rec->id, pd->knames[i]);

		if (!k || k->fd < 0) {
			/* those taken so far go back to be dropped */
			pd->lost = "a descriptor of its kernel context is not "
				   "in the store";
			return -ENOENT;
		}
		name_copy(kept[i].name, k->name);
		kept[i].fd = k->fd;
	}
	/* backend_open() owns them from here, also when it fails */
	for (uint32_t i = 0; i < rec->nkept; i++) {
		struct state_kept *k = kept_find(st->passed, st->npassed,
						 rec->id, pd->knames[i]);

		st->kept[st->nkept] = *k;
		kept_identify(&st->kept[st->nkept]);
		k->fd = -1;
		st->nkept++;
	}
	bc.kept = kept;
	bc.n_kept = rec->nkept;
	bc.kept_blob = pd->blob;
	bc.kept_blob_len = rec->blob_len;
	r = backend_open(&bc, out);
	if (r < 0) {
		pd->lost = r == -EUCLEAN ? "its kernel context was torn by "
			   "the death of the dirtyd that held it in the middle "
			   "of a change" : r == -EBUSY ? "its kernel context "
			   "cannot be mapped back at its address" : "its kernel "
			   "context is not one this dirtyd can adopt";
		/* closed; the next commit drops them from the store */
		*out = NULL;
	}
	return r;
}

/* The domain @pd, as it was; -ENOENT (pd->lost says why) when its kernel
 * context cannot be adopted. */
static int state_restore_domain(struct server *srv, struct state_pdomain *pd,
				struct domain **out)
{
	const struct state_domain_rec *rec = pd->rec;
	struct backend *kctx;
	struct domain *d;
	int r;

	r = state_adopt_context(srv, pd, &kctx);
	if (r < 0)
		return -ENOENT;
	d = calloc(1, sizeof(*d));
	if (!d) {
		backend_leave(kctx);
		return -ENOMEM;
	}
	*d = (struct domain){
		.kctx = kctx,
		.srv = srv,
		.id = rec->id,
		.owner = (uid_t)rec->owner,
		.ioas_id = rec->ioas_id,
		.hwpt_id = rec->hwpt_id,
		.tracking_capable = rec->flags & DREC_TRACKING,
		.enabled = rec->flags & DREC_ENABLED,
		.huge_pages = rec->flags & DREC_HUGE,
		.page_size = rec->page_size,
		.max_leaf = rec->max_leaf,
		.counters = pd->counters,
		.generation = pd->counters[0],
		.intent = rec->intent,
	};
	memcpy(d->guest, rec->guest, sizeof(d->guest));
	list_init(&d->devices);
	list_init(&d->subs);
	list_init(&d->round_waiters);
	list_init(&d->next_waiters);
	list_init(&d->idle_waiters);
	for (uint32_t i = 0; i < rec->ndevices; i++) {
		struct domain_device *dev = calloc(1, sizeof(*dev));

		if (!dev)
			goto nomem;
		memcpy(dev->name, pd->devs[i].name, sizeof(dev->name));
		dev->dev_id = pd->devs[i].dev_id;
		list_add_tail(&dev->link, &d->devices);
		d->ndevices++;
	}
	d->maps = calloc(rec->nmaps + 1, sizeof(*d->maps));
	d->retired = calloc(rec->nretired + 1, sizeof(*d->retired));
	if (!d->maps || !d->retired)
		goto nomem;
	for (uint32_t i = 0; i < rec->nmaps; i++) {
		/* our anonymous memory died with us; the kernel holds the
		 * pages it pinned for as long as the mapping exists */
		d->maps[i] = (struct domain_mapping){
			.iova = pd->maps[i].iova,
			.length = pd->maps[i].length,
			.external = pd->maps[i].external,
		};
		d->mapped_bytes += pd->maps[i].length;
	}
	d->nmaps = rec->nmaps;
	for (uint32_t i = 0; i < rec->nretired; i++)
		d->retired[i] = (struct harvest_range){
			.iova = pd->retired[i].iova,
			.length = pd->retired[i].length,
			.flags = HARVEST_RANGE_RETIRED,
		};
	d->nretired = rec->nretired;
	r = domain_restored(d);
	if (r < 0)
		return r;	/* freed */
	*out = d;
	return 0;
nomem:
	while (!list_empty(&d->devices)) {
		struct domain_device *dev = list_first_entry(&d->devices,
							     struct domain_device,
							     link);

		list_del_init(&dev->link);
		free(dev);
	}
	free(d->maps);
	free(d->retired);
	backend_leave(d->kctx);
	free(d);
	return -ENOMEM;
}

/* Hand new memfds to the store, dropping what it held of ours. */
static int state_fresh(struct server *srv)
{
	struct state *st = srv->state;
	struct state_super *sb;
	int fd, r;

	store_remove(st, FD_META);
	store_remove(st, FD_BITS);
	state_drop_passed(st);
	fd = memfd_create(FD_META, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, STATE_META_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, META_SEALS) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = state_map_meta(st, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = bitmem_new(FD_BITS, &st->bits);
	if (r < 0)
		return r;
	sb = (struct state_super *)st->meta;
	sb->magic = STATE_MAGIC;
	sb->format = STATE_FORMAT;
	/* an empty version first, into slot 0, so that the store never
	 * holds a superblock without one */
	st->seq = 0;
	st->active = 1;
	state_commit(srv);
	store_fd(st, FD_META, st->meta_fd);
	store_fd(st, FD_BITS, bitmem_fd(st->bits));
	return 0;
}

/* Did the session of @rec track a domain that is lost? */
static bool state_token_lost(const struct state *st,
			     const struct state_sub_rec *rec)
{
	for (uint32_t i = 0; i < st->head->nsubs; i++)
		if (st->ps[i].rec->token == rec->token &&
		    st->ps[i].rec->uid == rec->uid && !st->ps[i].pd->dom)
			return true;
	return false;
}

/*
 * Group the kept subscriptions into parked sessions, as after a close,
 * each until the deadline it had; a session whose deadline passed while
 * no dirtyd ran is dropped.  *@nexpired: sessions dropped so.
 */
static int state_restore_subs(struct server *srv, unsigned int *nexpired)
{
	struct state *st = srv->state;
	uint64_t now = now_ns();
	uint64_t grace = (uint64_t)srv->cfg->resume_grace * 1000000000ULL;

	for (uint32_t i = 0; i < st->head->nsubs; i++) {
		const struct state_psub *ps = &st->ps[i];
		const struct state_sub_rec *rec = ps->rec;
		struct domain *d = ps->pd->dom;
		struct subscription *sub;
		struct park *p = NULL, *q;

		if (state_token_lost(st, rec)) {
			if (ps->first) {
				log_notice("a kept session of uid %u tracked "
					   "a domain that is lost: its "
					   "subscriptions are dropped, its "
					   "token gets STATE_LOST", rec->uid);
			}
			bitmem_release(st->bits, ps->pending, rec->nwords);
			bitmem_release(st->bits, ps->flight, rec->nwords);
			continue;
		}
		if (ps->deadline_ns && ps->deadline_ns <= now) {
			if (ps->first) {
				log_notice("a closed session of uid %u "
					   "expired %.1f s ago, while no "
					   "dirtyd ran: its subscriptions are "
					   "dropped, its token gets "
					   "STATE_LOST", rec->uid,
					   (now - ps->deadline_ns) / 1e9);
				(*nexpired)++;
			}
			/* reclaimed after the next commit */
			bitmem_release(st->bits, ps->pending, rec->nwords);
			bitmem_release(st->bits, ps->flight, rec->nwords);
			continue;
		}
		list_for_each_entry(q, &srv->parks, link)
			if (q->token == rec->token && q->uid == rec->uid)
				p = q;
		if (!p) {
			/* until its deadline; never later than a grace
			 * from now (connected at the death, or a store
			 * from the future) */
			uint64_t left = ps->deadline_ns ?
					ps->deadline_ns - now : grace;

			if (left > grace)
				left = grace;
			p = park_restore(srv, rec->token, (uid_t)rec->uid,
					 left);
		}
		sub = calloc(1, sizeof(*sub));
		if (!p || !sub) {
			free(sub);
			return -ENOMEM;
		}
		sub->dom = d;
		sub->park = p;
		sub->interval_ms = rec->interval_ms;
		sub->clean = rec->clean;
		sub->pages_sent = rec->pages_sent;
		subscriber_set_adopt(&sub->set, d->plan, st->bits, ps->pending,
				     ps->flight);
		list_add_tail(&sub->dom_link, &d->subs);
		d->nsubs++;
		list_add_tail(&sub->owner_link, &p->subs);
	}
	return 0;
}

static int state_rebuild(struct server *srv)
{
	struct state *st = srv->state;
	uint64_t t0 = now_us(), t1, pending = 0;
	uint64_t first = UINT64_MAX, last = 0, now;
	unsigned int nparks = 0, nexpired = 0, nd = 0, ns = 0, nlost = 0;
	struct domain *d, *tmp;
	struct park *p;
	int r;

	srv->next_domain_id = st->head->next_domain_id;
	for (uint32_t i = 0; i < st->head->ndomains; i++) {
		struct state_pdomain *pd = &st->pd[i];

		r = state_restore_domain(srv, pd, &pd->dom);
		if (r == -ENOENT) {
			/* this domain only: the others are whole */
			log_error("domain %u (uid %u%s%s) is lost: %s; its "
				  "kept sessions get STATE_LOST", pd->rec->id,
				  pd->rec->owner, pd->rec->guest[0] ?
				  ", guest " : "", pd->rec->guest, pd->lost);
			bitmem_release(st->bits, pd->counters,
				       DOMAIN_COUNTERS_WORDS);
			nlost++;
			continue;
		}
		if (r < 0)
			return r;
	}
	r = state_restore_subs(srv, &nexpired);
	if (r < 0)
		return r;
	/* the last round, read from the IOMMU and maybe not yet folded */
	for (uint32_t i = 0; i < st->head->ndomains; i++)
		if (st->pd[i].dom)
			domain_refold(st->pd[i].dom, st->pd[i].round);
	/* the round regions of the old plans go with the next commit */
	for (uint32_t i = 0; i < st->head->ndomains; i++)
		bitmem_release(st->bits, st->pd[i].round,
			       st->pd[i].rec->round_words);
	/* contexts no version named: a creation cut off by the death */
	state_drop_passed(st);
	st->restoring = false;
	list_for_each_entry_safe(d, tmp, &srv->domains, link)
		if (d->intent.op != STATE_OP_NONE)
			domain_resolve_intent(d);	/* may destroy d */
	list_for_each_entry(d, &srv->domains, link) {
		struct subscription *sub;

		list_for_each_entry(sub, &d->subs, dom_link)
			pending += subscriber_set_pending_pages(&sub->set);
		domain_subscriptions_changed(d);
	}
	t1 = now_us();
	state_commit(srv);
	log_debug("restore: rebuilt in %" PRIu64 " us, committed in %" PRIu64
		  " us", t1 - t0, now_us() - t1);
	now = now_ns();
	list_for_each_entry(p, &srv->parks, link) {
		uint64_t dl = park_deadline(p);

		nparks++;
		first = dl < first ? dl : first;
		last = dl > last ? dl : last;
	}
	list_for_each_entry(d, &srv->domains, link) {
		nd++;
		ns += d->nsubs;
	}
	log_notice("restored from the file descriptor store: %u domains, %u "
		   "subscriptions of %u sessions waiting for a resume (the "
		   "first expires in %.1f s, the last in %.1f s), %u sessions "
		   "expired meanwhile, %" PRIu64 " pages pending, in %" PRIu64
		   " ms; %u domains lost", nd, ns, nparks,
		   nparks && first > now ? (first - now) / 1e9 : 0.0,
		   nparks && last > now ? (last - now) / 1e9 : 0.0, nexpired,
		   pending, (now_us() - t0 + 500) / 1000, nlost);
	return 0;
}

/*
 * On the event loop: at its first turn dirtyd serves, so the adoption
 * counted in the store succeeded; then, closes and resumes no commit
 * recorded are.
 */
static void state_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct state *st = srv->state;
	struct state_super *sb = (void *)st->meta;

	if (!st->serving) {
		st->serving = true;
		__atomic_store_n(&sb->tries, 0, __ATOMIC_RELEASE);
	}
	if (!st->too_big && state_sessions_changed(srv))
		state_commit(srv);
}

static void state_start_tick(struct server *srv)
{
	struct state *st = srv->state;
	struct timeval tv = { .tv_usec = STATE_TICK_MS * 1000 };

	st->tick = event_new(srv->base, -1, EV_PERSIST, state_on_tick, srv);
	if (!st->tick || event_add(st->tick, &tv) < 0) {
		log_warning("starting the state tick failed: a session closed "
			    "or resumed is recorded only at the next change, "
			    "and a failed adoption is counted as one");
		return;
	}
	event_active(st->tick, EV_TIMEOUT, 0);
}

int state_restore(struct server *srv)
{
	struct state *st = srv->state;
	int r;

	if (!st->store)
		return 0;
	if (st->adopted) {
		st->restoring = true;
		r = state_rebuild(srv);
		st->restoring = false;
		state_drop_version(st);
		if (r < 0)
			return log_error_errno(r, "rebuilding the kept state "
					       "failed");
		state_start_tick(srv);
		return 0;
	}
	r = state_fresh(srv);
	if (r < 0) {
		log_warning_errno(r, "creating the state memfds failed: a "
				  "restart will not keep the state");
		state_forget(st);
		return 0;
	}
	state_start_tick(srv);
	return 0;
}

void state_exit(struct server *srv)
{
	struct state *st = srv->state;
	char name[STATE_FDNAME_MAX];

	if (!st)
		return;
	if (st->tick)
		event_free(st->tick);
	st->tick = NULL;
	if (st->meta) {
		/* everything was destroyed: nothing for a successor */
		for (size_t i = 0; i < st->nkept; i++) {
			kernel_fdname(name, st->kept[i].domain,
				      st->kept[i].name);
			store_remove(st, name);
		}
		store_remove(st, FD_META);
		store_remove(st, FD_BITS);
	}
	state_forget(st);
	state_close_passed(st);
	free(st->passed);
	free(st->kept);
	free(st->knext);
	free(st);
	srv->state = NULL;
}

void state_intent_begin(struct domain *d, enum state_op op)
{
	d->intent.op = op;
	d->intent.domain_id = d->id;
	state_commit(d->srv);
}

void state_intent_end(struct domain *d)
{
	d->intent = (struct state_intent){ 0 };
	state_commit(d->srv);
}

struct bitmem *state_bits(struct server *srv)
{
	return srv->state ? srv->state->bits : NULL;
}

bool state_restoring(const struct server *srv)
{
	return srv->state && srv->state->restoring;
}

bool state_keeps(const struct server *srv)
{
	const struct state *st = srv->state;

	return st && (st->meta || st->adopted);
}
