// SPDX-License-Identifier: MIT
/*
 * A start and an exit (Owns: adopting the store): the store handed back
 * mapped, checked (format.c), claimed and rebuilt into domains,
 * subscriptions and parked sessions; or new memfds handed to the store.
 * No exit takes anything out of the store: a stop's last commit
 * (state_leave()) is what the next start adopts.
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
#include "daemon/server/adopt.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/state/state_private.h"

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
	state_version_free(st);
	st->nkept = 0;
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
	if (sb->format < STATE_FORMAT_OLDEST || sb->format > STATE_FORMAT)
		return refuse(st, -EPROTO, FD_META " is in format %u and this "
			      "dirtyd reads formats %u to %u only (%s dirtyd "
			      "kept it)", sb->format, STATE_FORMAT_OLDEST,
			      STATE_FORMAT, sb->format < STATE_FORMAT ?
			      "an older" : "a newer");
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
		r = state_parse(st, (uint32_t)srv->cfg->backend);
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
	struct domain_mapping *maps;
	struct harvest_range *retired;
	struct backend *kctx;
	struct domain *d;
	int r;

	r = state_adopt_context(srv, pd, &kctx);
	if (r < 0)
		return -ENOENT;
	d = domain_alloc(srv, (uid_t)rec->owner);
	maps = calloc(rec->nmaps + 1, sizeof(*maps));
	retired = calloc(rec->nretired + 1, sizeof(*retired));
	if (!d || !maps || !retired) {
		free(d);
		free(maps);
		free(retired);
		backend_leave(kctx);
		return -ENOMEM;
	}
	d->kctx = kctx;
	d->id = rec->id;
	d->ioas_id = rec->ioas_id;
	d->hwpt_id = rec->hwpt_id;
	d->tracking_capable = rec->flags & DREC_TRACKING;
	d->enabled = rec->flags & DREC_ENABLED;
	d->huge_pages = rec->flags & DREC_HUGE;
	d->page_size = rec->page_size;
	d->max_leaf = rec->max_leaf;
	d->counters = pd->counters;
	d->generation = pd->counters[0];
	d->intent = rec->intent;
	d->lease.id = rec->lease;
	d->lease.token = rec->lease_token;
	d->lease.pid = (pid_t)rec->lease_pid;
	d->lease.uid = (uid_t)rec->lease_uid;
	d->lease.deadline_ns = rec->lease_deadline_ns;
	memcpy(d->guest, rec->guest, sizeof(d->guest));
	for (uint32_t i = 0; i < rec->nmaps; i++)
		/* our anonymous memory died with us; the kernel holds the
		 * pages it pinned for as long as the mapping exists */
		maps[i] = (struct domain_mapping){
			.iova = pd->maps[i].iova,
			.length = pd->maps[i].length,
			.external = pd->maps[i].external,
		};
	for (uint32_t i = 0; i < rec->nretired; i++)
		retired[i] = (struct harvest_range){
			.iova = pd->retired[i].iova,
			.length = pd->retired[i].length,
			.flags = HARVEST_RANGE_RETIRED,
		};
	domain_mappings_take(d, maps, rec->nmaps, retired, rec->nretired);
	for (uint32_t i = 0; i < rec->ndevices; i++) {
		if (domain_device_add(d, pd->devs[i].name,
				      pd->devs[i].dev_id) < 0) {
			domain_discard(d);
			return -ENOMEM;
		}
	}
	r = domain_restored(d);
	if (r < 0)
		return r;	/* freed */
	*out = d;
	return 0;
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
	journal_commit(srv);
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
		if (!p || subscription_restore(d, p, rec->interval_ms,
					       rec->clean, rec->pages_sent,
					       ps->pending, ps->flight) < 0)
			return -ENOMEM;
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

		adopt_lease_restored(d);
		list_for_each_entry(sub, &d->subs, dom_link)
			pending += subscriber_set_pending_pages(&sub->set);
		domain_subscriptions_changed(d);
	}
	t1 = now_us();
	journal_commit(srv);
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
		state_version_free(st);
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

void state_leave(struct server *srv)
{
	struct state *st = srv->state;

	if (!st || !st->meta || st->left)
		return;
	journal_flush(srv);
	/* an orderly stop comes from the event loop: this adoption served,
	 * whether or not the tick said so yet */
	__atomic_store_n(&((struct state_super *)st->meta)->tries, 0,
			 __ATOMIC_RELEASE);
	st->left = true;
}

void state_exit(struct server *srv)
{
	struct state *st = srv->state;

	if (!st)
		return;
	if (st->tick)
		event_free(st->tick);
	st->tick = NULL;
	if (st->pass)
		event_free(st->pass);
	st->pass = NULL;
	/* what the store holds stays there: the next start adopts it, or
	 * systemd closes it (a stop on systemd 252, or 254's stop with
	 * FileDescriptorStorePreserve=restart) and the kernel frees every
	 * domain nobody else holds */
	state_forget(st);
	state_close_passed(st);
	free(st->passed);
	free(st->kept);
	free(st->knext);
	free(st);
	srv->state = NULL;
}
