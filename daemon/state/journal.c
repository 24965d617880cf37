// SPDX-License-Identifier: MIT
/*
 * Surviving a restart (SIGKILL, a crash, an upgrade, a stop whose store
 * systemd keeps) without losing a bit.
 *
 * Owns: durability.  Every change to what must survive reaches the store
 * through the journal (state.h): a kernel change's intent is committed
 * before the change begins (journal_change()); everything else, and the
 * end of a change, is owed and committed once per pass of the event loop,
 * and always before a reply leaves or a harvest begins (journal_flush()).
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
 *    rewritten whole by journal_commit(), at most once per pass of the
 *    event loop that changed it: the new version goes into the
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
 * finds.  The clients whose requests were cut off never got an answer:
 * the commit that ends an intent is owed, and what is owed is committed
 * before any reply is sent.  A harvest reads (and the kernel clears) dirty
 * bits only into bitmaps a committed version names: what is owed is
 * committed before a round starts.
 *
 * At a restart: every domain is planned again, the old round bitmap is
 * folded into every subscription again (OR is idempotent; it may repeat
 * one round), F goes back into P, every kept session is parked until the
 * deadline it had (a session closed before the death keeps the end of its
 * resume_grace: a restart never extends it; one connected at the death
 * gets resume_grace from now), configured guests' DMA restarts.  A park
 * or a resume is owed like any change; the tick, every STATE_TICK_MS,
 * also records a park's deadline that moved.
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
#include "daemon/subscriber/subscription.h"
#include "daemon/state/state_private.h"

void journal_commit(struct server *srv)
{
	struct state *st = srv->state;
	struct state_super *sb;
	struct writer w;
	uint64_t subs_at;
	size_t nknext;
	uint32_t slot, nsubs;

	if (!st || !st->meta || st->restoring || st->left)
		return;
	/* what was owed is in this version, or (too big) never will be */
	st->owed = false;
	sb = (struct state_super *)st->meta;
	slot = !st->active;
	w = (struct writer){
		.p = st->meta + STATE_META_SUPER + slot * STATE_META_SLOT,
		.cap = STATE_META_SLOT,
	};
	state_encode(st, srv, &w, st->seq + 1, &nknext, &subs_at, &nsubs);
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
	st->seq++;
	sb->slot[slot].seq = st->seq;
	sb->slot[slot].len = w.len;
	sb->slot[slot].sum = state_sum(w.p, w.len);
	/* a store kept by an older dirtyd: the superblock says it now holds
	 * a version of this format, before the commit word names one */
	if (sb->format != STATE_FORMAT)
		__atomic_store_n(&sb->format, STATE_FORMAT, __ATOMIC_RELEASE);
	/* the commit: one aligned store, after everything it points at */
	__atomic_store_n(&sb->commit, state_commit_word(st->seq, slot),
			 __ATOMIC_RELEASE);
	st->active = slot;
	st->subs_at = subs_at;
	st->nsubs_at = nsubs;
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
			state_sub_at(at, n++, &rec);
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
		journal_commit(srv);
}

/* The end of a pass of the event loop that changed what must survive. */
static void journal_on_pass(evutil_socket_t fd, short what, void *arg)
{
	journal_flush(arg);
}

void state_start_tick(struct server *srv)
{
	struct state *st = srv->state;
	struct timeval tv = { .tv_usec = STATE_TICK_MS * 1000 };

	st->pass = event_new(srv->base, -1, 0, journal_on_pass, srv);
	if (!st->pass)
		log_warning("creating the journal's event failed: every change "
			    "is committed at once");
	st->tick = event_new(srv->base, -1, EV_PERSIST, state_on_tick, srv);
	if (!st->tick || event_add(st->tick, &tv) < 0) {
		log_warning("starting the state tick failed: a session closed "
			    "or resumed is recorded only at the next change, "
			    "and a failed adoption is counted as one");
		return;
	}
	event_active(st->tick, EV_TIMEOUT, 0);
}

void journal_note(struct server *srv)
{
	struct state *st = srv->state;

	if (!st || !st->meta || st->restoring || st->left || st->owed)
		return;
	if (!st->pass) {
		journal_commit(srv);
		return;
	}
	st->owed = true;
	event_active(st->pass, EV_TIMEOUT, 0);
}

void journal_flush(struct server *srv)
{
	if (srv->state && srv->state->owed)
		journal_commit(srv);
}

void journal_change(struct domain *d, const struct state_intent *in)
{
	d->intent = *in;
	d->intent.domain_id = d->id;
	/* on disk before the kernel change begins: a restart finds it */
	journal_commit(d->srv);
}

void journal_change_end(struct domain *d)
{
	d->intent = (struct state_intent){ 0 };
	journal_note(d->srv);
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
