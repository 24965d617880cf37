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
 *    clean, and where P and F are; next_domain_id; the kernel context's
 *    descriptor names and blob), in the metadata memfd, rewritten whole by
 *    state_commit() after every change: the new version goes into the
 *    inactive of two slots with its length and checksum, then one aligned
 *    store flips the active index.  A version is never half-visible.
 *  - The kernel context (backend_keep()): its descriptors in the store.
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
 * one round), F goes back into P, every kept session is parked for
 * resume_grace seconds from now, configured guests' DMA restarts.  If the
 * store handed back nothing usable, or the kernel context cannot be
 * adopted, dirtyd starts afresh and says why; resumes then get STATE_LOST.
 * systemd dispatches notification messages before SIGCHLD, so an FDSTORE
 * sent right before a death is not lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/bitmem.h"
#include "daemon/config.h"
#include "daemon/domain.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/session.h"
#include "daemon/state.h"

#define FD_META "dirtyd-meta"
#define FD_BITS "dirtyd-bits"
#define FD_KERNEL "kernel-"

#define STATE_MAGIC 0x31657461747364ULL	/* "dstate1" */
#define STATE_FORMAT 1
#define META_SUPER 4096ULL
#define META_SLOT (256ULL << 20)
#define META_SIZE (META_SUPER + 2 * META_SLOT)

/* The superblock: page 0 of the metadata memfd. */
struct state_super {
	uint64_t magic;
	uint32_t format;
	uint32_t active;	/* the committed slot: written last */
	struct {
		uint64_t seq;
		uint64_t len;
		uint64_t sum;
	} slot[2];
};

/* One version, in a slot: a head, the kernel's names and blob, domains
 * (each followed by its devices, maps and retired ranges), subscriptions. */
struct state_head {
	uint64_t magic;
	uint32_t format;
	uint32_t backend;	/* enum backend_kind */
	uint32_t next_domain_id;
	uint32_t ndomains;
	uint32_t nsubs;
	uint32_t kernel_ok;	/* the context was kept: nkept, blob valid */
	uint32_t nkept;
	uint32_t blob_len;
	struct state_intent create;
};

#define DREC_TRACKING 1u
#define DREC_ENABLED 2u
#define DREC_HUGE 4u

struct state_domain_rec {
	uint32_t id;
	uint32_t owner;
	uint32_t ioas_id;
	uint32_t hwpt_id;
	uint32_t flags;		/* DREC_* */
	uint32_t ndevices;
	uint32_t nmaps;
	uint32_t nretired;
	uint64_t page_size;
	uint64_t max_leaf;
	uint64_t round_off;	/* the plan's bitmap, then its bounce words */
	uint64_t round_words;
	uint64_t layout_words;
	uint64_t counters_off;
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
	uint64_t pending_off;
	uint64_t flight_off;
	uint64_t nwords;
};

/* A descriptor the store holds for the kernel, and which file it is. */
struct state_kept {
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
	uint64_t *counters, *round;	/* claimed */
};

struct state_psub {
	const struct state_sub_rec *rec;
	uint64_t *pending, *flight;	/* claimed */
};

struct state {
	bool store;		/* $NOTIFY_SOCKET: a store may exist */
	bool restoring;
	bool store_failed;	/* told once */
	bool too_big;		/* told once */
	bool kernel_ok;
	int meta_fd;
	uint8_t *meta;
	struct bitmem *bits;

	/* what systemd passed */
	char stale[BACKEND_KEEP_MAX_FDS][BACKEND_NAME_MAX];
	size_t nstale;		/* kernel names: dropped if not adopted */
	int passed_meta, passed_bits;
	struct backend_kept_fd passed[BACKEND_KEEP_MAX_FDS];
	size_t npassed;

	/* the committed version handed back, once parsed */
	uint8_t *version;
	const struct state_head *head;
	struct state_pdomain *pd;
	struct state_psub *ps;
	bool adopted;

	/* what the store holds of the kernel's */
	struct state_kept kept[BACKEND_KEEP_MAX_FDS];
	size_t nkept;
	uint8_t blob[BACKEND_KEEP_MAX_BLOB];
	size_t blob_len;

	struct state_intent create;
	uint64_t seq;
};

/* ------------------------------------------------------------ store */

/* A name of at most BACKEND_NAME_MAX - 1 bytes into @dst. */
static void name_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, BACKEND_NAME_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* What the store calls the kernel's descriptor @name. */
static void kernel_fdname(char out[sizeof(FD_KERNEL) + BACKEND_NAME_MAX],
			  const char *name)
{
	memcpy(out, FD_KERNEL, strlen(FD_KERNEL));
	name_copy(out + strlen(FD_KERNEL), name);
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

/* Bring the store's kernel descriptors in line with backend_keep(). */
static void state_keep_kernel(struct server *srv)
{
	struct state *st = srv->state;
	struct backend *b = srv->backend;
	struct backend_kept_fd fds[BACKEND_KEEP_MAX_FDS];
	struct state_kept now[BACKEND_KEEP_MAX_FDS];
	char name[sizeof(FD_KERNEL) + BACKEND_NAME_MAX];
	size_t len = sizeof(st->blob);
	int n;

	if (!b || !b->ops->keep) {
		st->kernel_ok = false;
		return;
	}
	n = b->ops->keep(b, fds, BACKEND_KEEP_MAX_FDS, st->blob, &len);
	if (n < 0) {
		if (st->kernel_ok || !st->seq)
			log_warning_errno(n, "the backend cannot keep its "
					  "context: a restart will not keep "
					  "the domains");
		st->kernel_ok = false;
		st->blob_len = 0;
		return;
	}
	st->blob_len = len;
	for (int i = 0; i < n; i++) {
		struct state_kept *k = &now[i];
		bool same = false;

		name_copy(k->name, fds[i].name);
		k->fd = fds[i].fd;
		kept_identify(k);
		for (size_t j = 0; j < st->nkept; j++)
			if (!strcmp(st->kept[j].name, k->name)) {
				same = st->kept[j].dev == k->dev &&
				       st->kept[j].ino == k->ino;
				kernel_fdname(name, k->name);
				if (!same)
					store_remove(st, name);
				break;
			}
		if (!same) {
			kernel_fdname(name, k->name);
			store_fd(st, name, k->fd);
		}
	}
	for (size_t j = 0; j < st->nkept; j++) {
		bool gone = true;

		for (int i = 0; i < n && gone; i++)
			gone = strcmp(st->kept[j].name, now[i].name);
		if (gone) {
			kernel_fdname(name, st->kept[j].name);
			store_remove(st, name);
		}
	}
	memcpy(st->kept, now, n * sizeof(now[0]));
	st->nkept = n;
	st->kernel_ok = true;
}

/* ------------------------------------------------------------ versions */

static uint64_t state_sum(const uint8_t *p, size_t len)
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

static void put_domain(struct state *st, struct writer *w, struct domain *d)
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
	struct domain_device *dev;

	memcpy(rec.guest, d->guest, sizeof(rec.guest));
	put(w, &rec, sizeof(rec));
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
	};
	struct writer w;
	struct domain *d;
	struct subscription *sub;
	uint32_t slot;
	uint64_t seq;

	if (!st || !st->meta || st->restoring)
		return;
	sb = (struct state_super *)st->meta;
	slot = !__atomic_load_n(&sb->active, __ATOMIC_ACQUIRE);
	w = (struct writer){
		.p = st->meta + META_SUPER + slot * META_SLOT,
		.cap = META_SLOT,
	};

	/* descriptors the version names reach the store before it does */
	state_keep_kernel(srv);
	head.backend = (uint32_t)srv->cfg->backend;
	head.next_domain_id = srv->next_domain_id;
	head.kernel_ok = st->kernel_ok;
	head.nkept = st->kernel_ok ? (uint32_t)st->nkept : 0;
	head.blob_len = st->kernel_ok ? (uint32_t)st->blob_len : 0;
	head.create = st->create;
	list_for_each_entry(d, &srv->domains, link) {
		uid_t uid;

		head.ndomains++;
		list_for_each_entry(sub, &d->subs, dom_link)
			head.nsubs += sub_token(sub, &uid) != 0;
	}

	put(&w, &head, sizeof(head));
	for (uint32_t i = 0; i < head.nkept; i++)
		put(&w, st->kept[i].name, BACKEND_NAME_MAX);
	put(&w, st->blob, head.blob_len);
	put_pad8(&w);
	list_for_each_entry(d, &srv->domains, link)
		put_domain(st, &w, d);
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
			put(&w, &sr, sizeof(sr));
		}
	}
	if (w.full) {
		if (!st->too_big)
			log_error("the state no longer fits its %llu MiB: the "
				  "last version that did is kept, a restart "
				  "now would lose what changed since",
				  (unsigned long long)(META_SLOT >> 20));
		st->too_big = true;
		return;
	}
	st->too_big = false;
	seq = ++st->seq;
	sb->slot[slot].seq = seq;
	sb->slot[slot].len = w.len;
	sb->slot[slot].sum = state_sum(w.p, w.len);
	/* the commit: one aligned store, after everything it points at */
	__atomic_store_n(&sb->active, slot, __ATOMIC_RELEASE);
	/* the old slot's tail: give back pages the new version did not use */
	bitmem_reclaim(st->bits);
}

/* ------------------------------------------------------------ reading */

struct reader {
	const uint8_t *p;
	size_t len, off;
};

static const void *get(struct reader *r, size_t n)
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

/* Claim what @st's parsed version names; -EBADMSG if it makes no sense. */
static int state_claim(struct state *st)
{
	const struct state_head *h = st->head;

	for (uint32_t i = 0; i < h->ndomains; i++) {
		struct state_pdomain *pd = &st->pd[i];

		pd->counters = bitmem_claim(st->bits, pd->rec->counters_off,
					    DOMAIN_COUNTERS_WORDS);
		pd->round = bitmem_claim(st->bits, pd->rec->round_off,
					 pd->rec->round_words);
		if (!pd->counters || !pd->round)
			return -EBADMSG;
	}
	for (uint32_t i = 0; i < h->nsubs; i++) {
		struct state_psub *ps = &st->ps[i];

		ps->pending = bitmem_claim(st->bits, ps->rec->pending_off,
					   ps->rec->nwords);
		ps->flight = bitmem_claim(st->bits, ps->rec->flight_off,
					  ps->rec->nwords);
		if (!ps->pending || !ps->flight)
			return -EBADMSG;
	}
	return bitmem_claim_done(st->bits);
}

/* Does @pd plan to the layout its bitmaps were made for? */
static int state_check_plan(const struct state_pdomain *pd)
{
	const struct state_domain_rec *rec = pd->rec;
	struct harvest_domain plan = { 0 };
	struct harvest_range *ranges;
	size_t n = 0, a = 0, b = 0;
	int r;

	ranges = calloc(rec->nmaps + rec->nretired + 1, sizeof(*ranges));
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

/* Parse the committed version; *why says what is wrong with it. */
static int state_parse(struct server *srv, const char **why)
{
	struct state *st = srv->state;
	const struct state_super *sb = (const void *)st->meta;
	struct reader r;
	uint32_t slot;
	uint64_t len;

	*why = "it is not a dirtyd state";
	if (sb->magic != STATE_MAGIC || sb->format != STATE_FORMAT)
		return -EINVAL;
	slot = sb->active;
	len = sb->slot[slot & 1].len;
	*why = "its committed version is damaged";
	if (slot > 1 || len > META_SLOT || len < sizeof(struct state_head) ||
	    state_sum(st->meta + META_SUPER + slot * META_SLOT, len) !=
	    sb->slot[slot].sum)
		return -EBADMSG;
	st->seq = sb->slot[slot].seq;
	/* a private copy: later commits write the slots */
	st->version = malloc(len);
	if (!st->version)
		return -ENOMEM;
	memcpy(st->version, st->meta + META_SUPER + slot * META_SLOT, len);
	r = (struct reader){ .p = st->version, .len = len };
	st->head = get(&r, sizeof(*st->head));
	if (st->head->magic != STATE_MAGIC ||
	    st->head->format != STATE_FORMAT ||
	    st->head->nkept > BACKEND_KEEP_MAX_FDS ||
	    st->head->blob_len > BACKEND_KEEP_MAX_BLOB ||
	    st->head->ndomains > len / sizeof(struct state_domain_rec) ||
	    st->head->nsubs > len / sizeof(struct state_sub_rec))
		return -EBADMSG;
	*why = "it was kept by a dirtyd on another backend";
	if (st->head->backend != (uint32_t)srv->cfg->backend)
		return -EINVAL;
	*why = "its committed version is damaged";
	for (uint32_t i = 0; i < st->head->nkept; i++) {
		const char *name = get(&r, BACKEND_NAME_MAX);

		if (!name || !name_ok(name))
			return -EBADMSG;
		name_copy(st->kept[i].name, name);
	}
	st->nkept = st->head->nkept;
	if (!get(&r, st->head->blob_len))
		return -EBADMSG;
	memcpy(st->blob, st->version + r.off - st->head->blob_len,
	       st->head->blob_len);
	st->blob_len = st->head->blob_len;
	r.off = (r.off + 7) & ~7ULL;
	st->pd = calloc(st->head->ndomains + 1, sizeof(*st->pd));
	st->ps = calloc(st->head->nsubs + 1, sizeof(*st->ps));
	if (!st->pd || !st->ps)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->head->ndomains; i++) {
		struct state_pdomain *pd = &st->pd[i];
		const struct state_domain_rec *rec;

		pd->rec = rec = get(&r, sizeof(*rec));
		if (!rec || !rec->id || !name_ok(rec->guest) ||
		    !name_ok(rec->intent.device) ||
		    !rec->page_size || rec->page_size & (rec->page_size - 1) ||
		    rec->ndevices > len || rec->nmaps > len ||
		    rec->nretired > len)
			return -EBADMSG;
		pd->devs = get(&r, rec->ndevices * sizeof(*pd->devs));
		pd->maps = get(&r, rec->nmaps * sizeof(*pd->maps));
		pd->retired = get(&r, rec->nretired * sizeof(*pd->retired));
		if ((rec->ndevices && !pd->devs) || (rec->nmaps && !pd->maps) ||
		    (rec->nretired && !pd->retired))
			return -EBADMSG;
		for (uint32_t k = 0; k < rec->ndevices; k++)
			if (!name_ok(pd->devs[k].name))
				return -EBADMSG;
	}
	for (uint32_t i = 0; i < st->head->nsubs; i++) {
		struct state_psub *ps = &st->ps[i];
		bool found = false;

		ps->rec = get(&r, sizeof(*ps->rec));
		if (!ps->rec || !ps->rec->token)
			return -EBADMSG;
		for (uint32_t k = 0; k < st->head->ndomains && !found; k++)
			found = st->pd[k].rec->id == ps->rec->domain_id &&
				st->pd[k].rec->layout_words == ps->rec->nwords;
		if (!found)
			return -EBADMSG;
	}
	if (r.off != len || !name_ok(st->head->create.device))
		return -EBADMSG;
	*why = "a domain's mappings cannot be planned as they were";
	for (uint32_t i = 0; i < st->head->ndomains; i++)
		if (state_check_plan(&st->pd[i]) < 0)
			return -EBADMSG;
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

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return log_error_errno(n, "reading $LISTEN_FDS failed");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (!strcmp(name, FD_META) && st->passed_meta < 0) {
			st->passed_meta = fd;
		} else if (!strcmp(name, FD_BITS) && st->passed_bits < 0) {
			st->passed_bits = fd;
		} else if (!strncmp(name, FD_KERNEL, strlen(FD_KERNEL)) &&
			   st->npassed < BACKEND_KEEP_MAX_FDS) {
			struct backend_kept_fd *k = &st->passed[st->npassed++];

			name_copy(k->name, name + strlen(FD_KERNEL));
			k->fd = fd;
			name_copy(st->stale[st->nstale++], k->name);
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
		close(st->passed[i].fd);
	st->passed_meta = st->passed_bits = -1;
	st->npassed = 0;
}

static int state_map_meta(struct state *st, int fd)
{
	struct stat s;

	if (fstat(fd, &s) < 0)
		return -errno;
	if ((uint64_t)s.st_size != META_SIZE && ftruncate(fd, META_SIZE) < 0)
		return -errno;
	st->meta = mmap(NULL, META_SIZE, PROT_READ | PROT_WRITE,
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
		munmap(st->meta, META_SIZE);
	st->meta = NULL;
	if (st->meta_fd >= 0)
		close(st->meta_fd);
	st->meta_fd = -1;
	bitmem_free(st->bits);
	st->bits = NULL;
	state_drop_version(st);
	st->nkept = 0;
	st->blob_len = 0;
}

/* Map, parse and claim the state handed back: 0, or why not (logged). */
static int state_load(struct server *srv)
{
	struct state *st = srv->state;
	const char *why = "it cannot be mapped";
	int r;

	r = state_map_meta(st, st->passed_meta);
	st->passed_meta = -1;
	if (!r)
		r = state_parse(srv, &why);
	if (!r) {
		why = "its bitmaps cannot be mapped";
		r = bitmem_new(st->passed_bits, FD_BITS, &st->bits);
		st->passed_bits = -1;
	}
	if (!r) {
		why = "its bitmaps are not where it says";
		r = state_claim(st);
	}
	if (!r && !st->head->kernel_ok) {
		why = "the dirtyd that kept it could not keep its kernel "
		      "context";
		r = -ENOENT;
	}
	for (uint32_t i = 0; !r && i < st->nkept; i++) {
		bool found = false;

		for (size_t k = 0; k < st->npassed && !found; k++)
			found = !strcmp(st->passed[k].name, st->kept[i].name);
		if (!found) {
			why = "a descriptor of its kernel context is missing";
			r = -ENOENT;
		}
	}
	if (r < 0)
		log_warning_errno(r, "the state systemd handed back cannot be "
				  "used (%s): starting afresh; resuming "
				  "clients are told their state is lost", why);
	return r;
}

int state_open(struct server *srv, struct backend_config *bc)
{
	struct state *st = srv->state;
	struct backend_kept_fd kept[BACKEND_KEEP_MAX_FDS];
	int r;

	if (st->store && st->passed_meta >= 0 && st->passed_bits >= 0 &&
	    state_load(srv) == 0) {
		/* the kernel's descriptors, in the order the version names
		 * them; ones it does not name are not ours any more */
		for (size_t i = 0; i < st->nkept; i++)
			for (size_t k = 0; k < st->npassed; k++)
				if (!strcmp(st->passed[k].name,
					    st->kept[i].name)) {
					kept[i] = st->passed[k];
					st->kept[i].fd = kept[i].fd;
					kept_identify(&st->kept[i]);
					st->passed[k].fd = -1;
					break;
				}
		for (size_t k = 0; k < st->npassed; k++)
			if (st->passed[k].fd >= 0)
				close(st->passed[k].fd);
		st->npassed = 0;
		bc->kept = kept;
		bc->n_kept = st->nkept;
		bc->kept_blob = st->blob;
		bc->kept_blob_len = st->blob_len;
		r = backend_open(bc, &srv->backend);
		bc->kept = NULL;
		bc->n_kept = 0;
		if (r == 0) {
			st->adopted = true;
			st->nstale = 0;
			return 0;
		}
		log_warning_errno(r, "adopting the kept kernel context failed "
				  "(%s): starting afresh; resuming clients are "
				  "told their state is lost",
				  r == -EUCLEAN ? "it was torn by the death "
				  "of the dirtyd that held it" :
				  "it is not a context of this backend");
		st->nkept = 0;	/* backend_open() closed them */
	}
	state_forget(st);
	state_close_passed(st);
	return backend_open(bc, &srv->backend);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* The domain @pd, as it was. */
static int state_restore_domain(struct server *srv,
				const struct state_pdomain *pd,
				struct domain **out)
{
	const struct state_domain_rec *rec = pd->rec;
	struct domain *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct domain){
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
	for (size_t i = 0; i < st->nstale; i++) {
		char name[sizeof(FD_KERNEL) + BACKEND_NAME_MAX];

		kernel_fdname(name, st->stale[i]);
		store_remove(st, name);
	}
	st->nstale = 0;
	fd = memfd_create(FD_META, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = state_map_meta(st, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = bitmem_new(-1, FD_BITS, &st->bits);
	if (r < 0)
		return r;
	sb = (struct state_super *)st->meta;
	sb->magic = STATE_MAGIC;
	sb->format = STATE_FORMAT;
	/* an empty version first, so that the store never holds a
	 * superblock without one */
	st->seq = 0;
	state_commit(srv);
	store_fd(st, FD_META, st->meta_fd);
	store_fd(st, FD_BITS, bitmem_fd(st->bits));
	return 0;
}

/* Group the kept subscriptions into parked sessions, as after a close. */
static int state_restore_subs(struct server *srv)
{
	struct state *st = srv->state;

	for (uint32_t i = 0; i < st->head->nsubs; i++) {
		const struct state_psub *ps = &st->ps[i];
		const struct state_sub_rec *rec = ps->rec;
		struct domain *d = NULL, *x;
		struct subscription *sub;
		struct park *p = NULL, *q;

		list_for_each_entry(x, &srv->domains, link)
			if (x->id == rec->domain_id)
				d = x;
		if (!d)
			return -EBADMSG;	/* checked in state_parse() */
		list_for_each_entry(q, &srv->parks, link)
			if (q->token == rec->token && q->uid == rec->uid)
				p = q;
		if (!p)
			p = park_restore(srv, rec->token, (uid_t)rec->uid);
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
	unsigned int nparks = 0;
	struct domain *d, *tmp;
	struct park *p;
	int r;

	srv->next_domain_id = st->head->next_domain_id;
	for (uint32_t i = 0; i < st->head->ndomains; i++) {
		r = state_restore_domain(srv, &st->pd[i], &d);
		if (r < 0)
			return r;
	}
	r = state_restore_subs(srv);
	if (r < 0)
		return r;
	/* the last round, read from the IOMMU and maybe not yet folded */
	{
		uint32_t i = 0;

		list_for_each_entry(d, &srv->domains, link)
			domain_refold(d, st->pd[i++].round);
	}
	/* the round regions of the old plans go with the next commit */
	for (uint32_t i = 0; i < st->head->ndomains; i++)
		bitmem_release(st->bits, st->pd[i].round,
			       st->pd[i].rec->round_words);
	/* a domain being created when the previous dirtyd died */
	if (st->head->create.op == STATE_OP_CREATE) {
		const struct state_intent *c = &st->head->create;
		struct backend *b = srv->backend;

		if (c->dev_id)
			backend_device_detach(b, c->dev_id);
		if (c->hwpt_id)
			backend_destroy(b, c->hwpt_id);
		if (c->ioas_id)
			backend_destroy(b, c->ioas_id);
		if (c->dev_id)
			backend_device_unbind(b, c->dev_id);
		log_notice("undid the creation of a domain for device %s that "
			   "was cut off%s", c->device, c->device[0] &&
			   !c->dev_id ? " (if the device was bound, it stays "
			   "bound until dirtyd starts afresh)" : "");
	}
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
	list_for_each_entry(p, &srv->parks, link)
		nparks++;
	{
		unsigned int nd = 0, ns = 0;

		list_for_each_entry(d, &srv->domains, link) {
			nd++;
			ns += d->nsubs;
		}
		log_notice("restored from the file descriptor store: %u "
			   "domains, %u subscriptions of %u sessions waiting "
			   "%u s for a resume, %" PRIu64 " pages pending, in "
			   "%" PRIu64 " ms", nd, ns, nparks,
			   srv->cfg->resume_grace, pending,
			   (now_us() - t0 + 500) / 1000);
	}
	return 0;
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
		return 0;
	}
	r = state_fresh(srv);
	if (r < 0) {
		log_warning_errno(r, "creating the state memfds failed: a "
				  "restart will not keep the state");
		state_forget(st);
	}
	return 0;
}

void state_exit(struct server *srv)
{
	struct state *st = srv->state;
	char name[sizeof(FD_KERNEL) + BACKEND_NAME_MAX];

	if (!st)
		return;
	if (st->meta) {
		/* everything was destroyed: nothing for a successor */
		for (size_t i = 0; i < st->nkept; i++) {
			kernel_fdname(name, st->kept[i].name);
			store_remove(st, name);
		}
		store_remove(st, FD_META);
		store_remove(st, FD_BITS);
	}
	state_forget(st);
	state_close_passed(st);
	free(st);
	srv->state = NULL;
}

struct state_intent *state_create_intent(struct server *srv)
{
	struct state *st = srv->state;

	return st && st->meta ? &st->create : NULL;
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
