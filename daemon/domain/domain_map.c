// SPDX-License-Identifier: MIT
/*
 * Mappings of a domain and its harvest plan: one harvest range per MAP;
 * unmapped ranges that subscribers still hold pages of stay in the plan as
 * retired ranges until nobody does; every change lays the plan out again
 * and moves each subscriber's pending bits over.  The checks run on the
 * loop, on an idle domain; the rest is a change's work, off the loop
 * (domain_change.c): it reads the domain, writes only the change (and the
 * kernel state of the logs it re-starts: domain_source.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daemon/config/config.h"
#include "daemon/domain/domain_private.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "protocol/proto.h"

/* ------------------------------------------------------------ plan */

static int range_cmp(const void *a, const void *b)
{
	const struct harvest_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

int domain_plan_ranges(struct domain *d, const struct domain_mapping *maps,
		       size_t nmaps, const struct harvest_range *retired,
		       size_t nretired, uint64_t mapped,
		       struct harvest_domain **out)
{
	struct harvest_domain *plan;
	struct harvest_range *ranges;
	size_t n = 0;
	int r;

	ranges = calloc(nmaps + nretired + 1, sizeof(*ranges));
	plan = calloc(1, sizeof(*plan));
	if (!ranges || !plan) {
		free(ranges);
		free(plan);
		return -ENOMEM;
	}
	plan->mem = state_bits(d->srv);
	plan->b = d->kctx;
	/* read-only mappings: laid out (MAP marks them for a copy), never
	 * read: DMA cannot dirty them */
	for (size_t i = 0; i < nmaps; i++)
		ranges[n++] = (struct harvest_range){
			.iova = maps[i].iova,
			.length = maps[i].length,
			.flags = maps[i].readonly ? HARVEST_RANGE_UNREAD : 0,
		};
	for (size_t i = 0; i < nretired; i++) {
		ranges[n] = retired[i];
		ranges[n++].flags = HARVEST_RANGE_RETIRED;
	}
	qsort(ranges, n, sizeof(*ranges), range_cmp);
	/* what its batches read: the domain's sources (domain_source.c) */
	r = domain_sources_apply(d, plan);
	if (r < 0) {
		free(ranges);
		free(plan);
		return r;
	}
	r = harvest_domain_plan(plan, d->hwpt_id, d->page_size, ranges, n,
				harvest_batch_bytes(mapped, d->page_size,
						    d->srv->workers));
	free(ranges);
	if (r < 0) {
		harvest_domain_release(plan);
		free(plan);
		return r;
	}
	*out = plan;
	return 0;
}

int domain_plan_build(struct domain *d, struct harvest_domain **out)
{
	return domain_plan_ranges(d, d->maps, d->nmaps, d->retired,
				  d->nretired, d->mapped_bytes, out);
}

/* Is [@iova, @iova + @length) held by a set of @c (one dropped meanwhile
 * too: it can only keep a range longer)? */
static bool change_held(const struct domain_change *c, uint64_t iova,
			uint64_t length)
{
	for (size_t i = 0; i < c->nsubs; i++)
		if (subscriber_snap_holds(&c->subs[i].snap, iova, length))
			return true;
	return false;
}

/*
 * The worker: of @n retired ranges (by IOVA), those some set still holds,
 * in a new array (*@out, *@nout); -ENOMEM.
 */
static int change_keep(struct domain_change *c,
		       const struct harvest_range *retired, size_t n,
		       struct harvest_range **out, size_t *nout)
{
	struct harvest_range *kept = calloc(n + 1, sizeof(*kept));

	*nout = 0;
	if (!kept)
		return error_set(&c->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (change_held(c, retired[i].iova, retired[i].length))
			kept[(*nout)++] = retired[i];
	*out = kept;
	return 0;
}

/*
 * The worker: plan over @c's mappings (or the domain's) and @retired (by
 * IOVA, taken over), and move every set's bits to the new plan if its
 * layout changed.  Sets @c->retired and @c->plan, or nothing on failure.
 */
static int change_plan(struct domain_change *c, struct harvest_range *retired,
		       size_t n)
{
	struct domain *d = c->d;
	const struct domain_mapping *maps = c->maps ? c->maps : d->maps;
	size_t nmaps = c->maps ? c->nmaps : d->nmaps;
	uint64_t mapped = c->maps ? c->mapped_bytes : d->mapped_bytes;
	struct harvest_domain *plan;
	int r;

	r = domain_plan_ranges(d, maps, nmaps, retired, n, mapped, &plan);
	if (r < 0) {
		free(retired);
		return error_set(&c->err, r, "planning the harvest failed: "
					 "%s", strerror(-r));
	}
	c->moved = !harvest_layout_same(d->plan, plan);
	for (size_t i = 0; c->moved && i < c->nsubs; i++) {
		struct change_sub *cs = &c->subs[i];

		if (subscriber_snap_move(&cs->snap, plan, &cs->moved) == 0)
			continue;
		/* its bits cannot move: it gets every page instead */
		log_warning("moving a subscriber of domain %u to the new plan "
			    "failed; it gets every page", d->id);
		if (subscriber_set_init_mem(&cs->moved, plan, plan->mem) < 0) {
			cs->drop = true;
			continue;
		}
		subscriber_set_mark_all(&cs->moved);
		cs->lost = true;
	}
	c->retired = retired;
	c->nretired = n;
	c->plan = plan;
	return 0;
}

/* The worker: change_keep() then change_plan() over @retired (@n, by
 * IOVA; the caller's). */
static int change_replan(struct domain_change *c,
			 const struct harvest_range *retired, size_t n)
{
	struct harvest_range *kept;
	size_t nkept;
	int r;

	r = change_keep(c, retired, n, &kept, &nkept);
	if (r < 0)
		return r;
	return change_plan(c, kept, nkept);
}

/* A copy of @d's retired ranges with room for @more; NULL. */
static struct harvest_range *retired_copy(const struct domain *d, size_t more)
{
	struct harvest_range *r = calloc(d->nretired + more + 1, sizeof(*r));

	for (size_t i = 0; r && i < d->nretired; i++)
		r[i] = d->retired[i];
	return r;
}

/* Drop retired ranges nobody holds any more (a change of its own: the
 * holds are asked of every set, the sets move). */
static int retire_work(struct domain_change *c)
{
	struct domain *d = c->d;
	struct harvest_range *kept;
	size_t nkept;
	int r;

	r = change_keep(c, d->retired, d->nretired, &kept, &nkept);
	if (r < 0)
		return r;
	if (nkept == d->nretired) {
		/* every one still held: nothing changes */
		free(kept);
		return 0;
	}
	return change_plan(c, kept, nkept);
}

void domain_subscriptions_changed(struct domain *d)
{
	struct domain_change *c;
	int r;

	domain_timer_update(d);
	if (!d->nretired || d->dying)
		return;
	if (d->running || d->settling || d->change) {
		d->retire_wanted = true;	/* domain_idle_again() */
		return;
	}
	d->retire_wanted = false;
	c = domain_change_new(d, CHANGE_RETIRE);
	if (!c) {
		log_warning("re-planning domain %u: out of memory", d->id);
		return;
	}
	c->work = retire_work;
	r = domain_change_run(c, true, NULL, NULL, NULL);
	if (r < 0)
		log_warning_errno(r, "re-planning domain %u failed", d->id);
}

/* ------------------------------------------------------------ mappings */

int domain_check_range(struct domain *d, uint64_t iova, uint64_t length,
		       struct error *e)
{
	uint64_t end;

	if (!length || iova % d->page_size || length % d->page_size)
		return error_set(e, -EINVAL, "IOVA 0x%" PRIx64 " and "
				  "length 0x%" PRIx64 " must be non-zero "
				  "multiples of domain %u's page size %" PRIu64,
				  iova, length, d->id, d->page_size);
	if (__builtin_add_overflow(iova, length, &end))
		return error_set(e, -EINVAL, "IOVA 0x%" PRIx64 " + "
				  "length 0x%" PRIx64 " wraps", iova, length);
	return 0;
}

/* The worker: back [m->iova, m->iova + m->length) with memory and
 * IOMMU_IOAS_MAP it. */
static int map_backing(struct domain_change *c, struct domain_mapping *m)
{
	struct domain *d = c->d;
	uint32_t flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	struct backend_caps caps;
	uint64_t io = m->iova;
	void *va;
	int r;

	backend_caps(d->kctx, &caps);
	if (caps.map_va_base) {
		/* a backend that keeps no memory: an address will do */
		va = (void *)(uintptr_t)(caps.map_va_base + m->iova);
	} else {
		va = mmap(NULL, m->length, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (va == MAP_FAILED)
			return error_set(&c->err, -errno, "backing %" PRIu64
						 " bytes failed: %s",
						 m->length, strerror(errno));
		m->mem = va;
	}
	if (c->flags & PROTO_MAP_READABLE)
		flags |= IOMMU_IOAS_MAP_READABLE;
	if (c->flags & PROTO_MAP_WRITEABLE)
		flags |= IOMMU_IOAS_MAP_WRITEABLE;
	r = backend_ioas_map(d->kctx, d->ioas_id, flags, va, m->length,
			     &io);
	if (r < 0) {
		error_set(&c->err, r, "IOMMU_IOAS_MAP of [0x%" PRIx64 ", 0x%"
				  PRIx64 ") failed: %s", m->iova,
				  m->iova + m->length, strerror(-r));
		if (m->mem)
			munmap(m->mem, m->length);
		m->mem = NULL;
		return r;
	}
	return 0;
}

/* Retired ranges never overlap mappings: a new mapping takes over the
 * part of a retired range it covers (the same IOVA, the same bits).  A
 * copy of @d's without [@iova, @iova + @length), *@n of them; NULL. */
static struct harvest_range *retired_subtract(const struct domain *d,
					      uint64_t iova, uint64_t length,
					      size_t *n)
{
	uint64_t end = iova + length;
	struct harvest_range *r;

	*n = 0;
	r = calloc(d->nretired * 2 + 1, sizeof(*r));
	if (!r)
		return NULL;
	for (size_t i = 0; i < d->nretired; i++) {
		struct harvest_range x = d->retired[i];
		uint64_t xend = x.iova + x.length;

		if (xend <= iova || x.iova >= end) {
			r[(*n)++] = x;
			continue;
		}
		if (x.iova < iova)
			r[(*n)++] = (struct harvest_range){
				.iova = x.iova, .length = iova - x.iova,
				.flags = HARVEST_RANGE_RETIRED };
		if (xend > end)
			r[(*n)++] = (struct harvest_range){
				.iova = end, .length = xend - end,
				.flags = HARVEST_RANGE_RETIRED };
	}
	return r;
}

/* Bits one probe reads at most: 64 KiB of bitmap. */
#define PROBE_PAGES (1ULL << 19)

/* A page-aligned IOVA no mapping or retired range of @d covers, nor
 * [@iova, @iova + @length) (a range being declared). */
static uint64_t unmapped_iova(const struct domain *d, uint64_t iova,
			      uint64_t length)
{
	uint64_t at = 0;
	bool moved = true;

	while (moved) {
		moved = false;
		if (at >= iova && at - iova < length) {
			at = iova + length;
			moved = true;
		}
		for (size_t i = 0; i < d->nmaps; i++)
			if (at >= d->maps[i].iova &&
			    at - d->maps[i].iova < d->maps[i].length) {
				at = d->maps[i].iova + d->maps[i].length;
				moved = true;
			}
		for (size_t i = 0; i < d->nretired; i++)
			if (at >= d->retired[i].iova &&
			    at - d->retired[i].iova < d->retired[i].length) {
				at = d->retired[i].iova + d->retired[i].length;
				moved = true;
			}
	}
	return at;
}

static bool verifies(struct domain *d, uint64_t iova, uint64_t length)
{
	struct backend_caps caps;
	uint64_t bit = 0;
	int r;

	if (__atomic_load_n(&d->holes_refused, __ATOMIC_RELAXED))
		return true;
	backend_caps(d->kctx, &caps);
	if (!caps.iommufd || caps.emulates || !d->tracking_capable)
		return false;
	/* 6.12.118 and later: -EINVAL for no area there; before: 0 */
	r = backend_hwpt_get_dirty_bitmap(d->kctx, d->hwpt_id,
					  unmapped_iova(d, iova, length),
					  d->page_size,
					  d->page_size, &bit,
					  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	if (r != -EINVAL)
		return false;
	__atomic_store_n(&d->holes_refused, true, __ATOMIC_RELAXED);
	return true;
}

bool domain_verifies_external(struct domain *d)
{
	return verifies(d, 0, 0);
}

int domain_external_probe(struct domain *d, uint64_t iova, uint64_t length,
			  struct error *e)
{
	static _Thread_local uint64_t bits[PROBE_PAGES / 64];
	uint64_t at = iova, end = iova + length;

	if (!d->enabled || !verifies(d, iova, length))
		return 0;
	while (at < end) {
		uint64_t n = end - at, step = PROBE_PAGES * d->page_size;
		int r;

		if (n > step)
			n = step;
		r = backend_hwpt_get_dirty_bitmap(d->kctx, d->hwpt_id, at, n,
						  d->page_size, bits,
						  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
		if (r == -EINVAL)
			return error_set(e, r, "range [0x%" PRIx64 ", 0x%"
					  PRIx64 ") declared EXTERNAL is not "
					  "wholly mapped in IOAS %u (a "
					  "NO_CLEAR read of [0x%" PRIx64
					  ", 0x%" PRIx64 ") found a hole): "
					  "map it with IOMMU_IOAS_MAP first",
					  iova, end, d->ioas_id, at, at + n);
		if (r < 0)
			return error_set(e, r, "probing [0x%" PRIx64 ", 0x%"
					  PRIx64 ") with a NO_CLEAR read "
					  "failed: %s", at, at + n,
					  strerror(-r));
		at += n;
	}
	return 0;
}

/* The worker's MAP: the kernel's mapping, the new mappings, the plan,
 * the sets moved and, unless CLEAN, the new range pending in each. */
static int map_work(struct domain_change *c)
{
	struct domain *d = c->d;
	struct domain_mapping m = {
		.iova = c->iova,
		.length = c->length,
		.external = c->flags & PROTO_MAP_EXTERNAL,
		.readonly = !(c->flags & PROTO_MAP_WRITEABLE),
	};
	struct harvest_range *retired;
	size_t at, nretired;
	int r;

	/* EXTERNAL: the client mapped it through its iommufd; plan only,
	 * once the kernel says it is mapped (where it can tell) */
	if (!m.external) {
		r = map_backing(c, &m);
		if (r < 0)
			return r;
	} else {
		r = domain_external_probe(d, m.iova, m.length, &c->err);
		if (r < 0)
			return r;
	}
	c->maps = calloc(d->nmaps + 1, sizeof(*c->maps));
	retired = retired_subtract(d, c->iova, c->length, &nretired);
	if (!c->maps || !retired) {
		free(retired);
		r = error_set(&c->err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (at = 0; at < d->nmaps && d->maps[at].iova < c->iova; at++)
		;
	for (size_t i = 0; i < d->nmaps; i++)
		c->maps[i + (i >= at)] = d->maps[i];
	c->maps[at] = m;
	c->nmaps = d->nmaps + 1;
	c->mapped_bytes = d->mapped_bytes + c->length;
	/* DMA logs started over ranges that miss it start again */
	r = m.readonly ? 0 : domain_sources_mapped(c, c->iova, c->length);
	if (r < 0) {
		free(retired);
		goto fail;
	}
	r = change_replan(c, retired, nretired);
	free(retired);
	if (r < 0)
		goto fail;
	/* memory a subscriber has not copied yet, unless it asked for a
	 * clean start */
	for (size_t i = 0; i < c->nsubs; i++) {
		struct change_sub *cs = &c->subs[i];

		if (cs->clean || cs->lost || cs->drop)
			continue;
		if (c->moved)
			subscriber_set_mark_range(&cs->moved, c->iova,
						  c->length);
		else
			subscriber_snap_mark(&cs->snap, c->iova, c->length);
	}
	return 0;

fail:
	free(c->maps);
	c->maps = NULL;
	if (!m.external)
		backend_ioas_unmap(d->kctx, d->ioas_id, c->iova,
				   c->length, NULL);
	if (m.mem)
		munmap(m.mem, c->length);
	return r;
}

/* The checks of a MAP, now, on the loop: PROTOCOL.md 6.7's order. */
static int domain_map_check(struct domain *d, uint64_t iova, uint64_t length,
			    uint32_t proto_flags, struct error *e)
{
	struct server *srv = d->srv;
	struct backend_caps caps;
	uint64_t mapped;
	size_t at;
	int r;

	/* PROTOCOL.md 6.7: the range first */
	r = domain_check_range(d, iova, length, e);
	if (r < 0)
		return r;
	if (!(proto_flags & (PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE)))
		return error_set(e, -EINVAL, "MAP needs READABLE or "
				  "WRITEABLE");
	backend_caps(d->kctx, &caps);
	if (proto_flags & PROTO_MAP_EXTERNAL && !caps.iommufd)
		return error_set(e, -EOPNOTSUPP, "MAP EXTERNAL: the %s "
				  "backend has no iommufd a client could map "
				  "through", backend_name(d->kctx));
	/* what a uid may make dirtyd build page tables and bitmaps for */
	mapped = domain_mapped_owned(srv, d->owner);
	if (length > srv->cfg->max_mapped ||
	    mapped > srv->cfg->max_mapped - length)
		return error_set(e, -EDQUOT, "uid %u has 0x%" PRIx64 " bytes "
				  "mapped; 0x%" PRIx64 " more is over max_mapped "
				  "0x%" PRIx64, (unsigned int)d->owner, mapped,
				  length, srv->cfg->max_mapped);
	if (d->nmaps >= DOMAIN_MAX_MAPS)
		return error_set(e, -ENOSPC, "domain %u has %d mappings, "
				  "the most it may have", d->id,
				  DOMAIN_MAX_MAPS);
	for (at = 0; at < d->nmaps && d->maps[at].iova < iova; at++)
		;
	if ((at < d->nmaps && d->maps[at].iova < iova + length) ||
	    (at && d->maps[at - 1].iova + d->maps[at - 1].length > iova))
		return error_set(e, -EEXIST, "[0x%" PRIx64 ", 0x%" PRIx64
				  ") overlaps a mapping of domain %u", iova,
				  iova + length, d->id);
	return 0;
}

/* Run @work over [@iova, @iova + @length) of @d as a change bracketed by
 * intent @op: a restart undoes a MAP and finishes an UNMAP it finds
 * (state.h); the change's end ends it. */
static int domain_change_intent(struct domain *d, enum state_op op,
				int (*work)(struct domain_change *c),
				uint64_t iova, uint64_t length,
				uint32_t proto_flags, struct error *e,
				struct domain_waiter *w,
				void (*fn)(struct domain_waiter *w, int result))
{
	struct domain_change *c;

	c = domain_change_new(d, op == STATE_OP_MAP ? CHANGE_MAP :
			      CHANGE_UNMAP);
	if (!c)
		return error_set(e, -ENOMEM, "out of memory");
	c->work = work;
	c->iova = iova;
	c->length = length;
	c->flags = proto_flags;
	/* a MAP counts in max_mapped from now on */
	if (op == STATE_OP_MAP)
		d->change_bytes = length;
	journal_change(d, &(struct state_intent){
		.op = op, .iova = iova, .length = length, .flags = proto_flags,
	});
	return domain_change_run(c, w != NULL, e, w, fn);
}

int domain_map(struct domain *d, uint64_t iova, uint64_t length,
	       uint32_t proto_flags, struct error *e, struct domain_waiter *w,
	       void (*fn)(struct domain_waiter *w, int result))
{
	int r = domain_map_check(d, iova, length, proto_flags, e);

	if (r < 0)
		return r;
	return domain_change_intent(d, STATE_OP_MAP, map_work, iova, length,
				    proto_flags, e, w, fn);
}

int domain_unmap_check(struct domain *d, uint64_t iova, uint64_t length,
		       uint32_t proto_flags, struct error *e)
{
	bool external = proto_flags & PROTO_MAP_EXTERNAL;
	bool any = false;
	int r;

	r = domain_check_range(d, iova, length, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < d->nmaps; i++) {
		const struct domain_mapping *m = &d->maps[i];

		if (m->iova + m->length <= iova || m->iova >= iova + length)
			continue;
		if (m->iova < iova || m->iova + m->length > iova + length)
			return error_set(e, -EINVAL, "UNMAP [0x%" PRIx64
					  ", 0x%" PRIx64 ") would split the "
					  "mapping [0x%" PRIx64 ", 0x%" PRIx64
					  "); unmap whole mappings", iova,
					  iova + length, m->iova,
					  m->iova + m->length);
		if (m->external != external)
			return error_set(e, -EINVAL, "UNMAP [0x%" PRIx64
					  ", 0x%" PRIx64 ") %s EXTERNAL covers "
					  "the mapping [0x%" PRIx64 ", 0x%"
					  PRIx64 ") the %s made",
					  iova, iova + length,
					  external ? "with" : "without",
					  m->iova, m->iova + m->length,
					  m->external ? "client" : "daemon");
		any = true;
	}
	if (!any)
		return error_set(e, -ENOENT, "nothing is mapped in [0x%"
				  PRIx64 ", 0x%" PRIx64 ") of domain %u",
				  iova, iova + length, d->id);
	return 0;
}

/* The worker's UNMAP: the kernel's unmaps, the mappings left, the
 * unmapped ones retired (same places: the layout changes only where
 * retired ranges nobody holds go). */
static int unmap_work(struct domain_change *c)
{
	struct domain *d = c->d;
	struct backend *b = d->kctx;
	uint64_t iova = c->iova, end = c->iova + c->length;
	struct harvest_range *retired;
	size_t n = 0;
	int r = 0, q;

	c->maps = calloc(d->nmaps + 1, sizeof(*c->maps));
	retired = retired_copy(d, d->nmaps);
	if (!c->maps || !retired) {
		free(c->maps);
		c->maps = NULL;
		free(retired);
		return error_set(&c->err, -ENOMEM, "out of memory");
	}
	c->mapped_bytes = d->mapped_bytes;
	n = d->nretired;
	for (size_t i = 0; i < d->nmaps; i++) {
		const struct domain_mapping *m = &d->maps[i];
		int e;

		if (m->iova < iova || m->iova + m->length > end) {
			c->maps[c->nmaps++] = *m;
			continue;
		}
		/*
		 * What DMA wrote since the last round's read, right before
		 * the IOAS unmap takes the bits with the page tables (QEMU's
		 * NO_CLEAR read before an unmap): pending in every set, which
		 * then holds the range retired until it is taken.  If it
		 * cannot be read, every page of it is pending instead.  An
		 * EXTERNAL range too: its client unmaps it after our answer.
		 */
		if (d->enabled && !m->readonly) {
			e = domain_sources_read(c, m->iova, m->length);
			if (e < 0) {
				log_warning_errno(e, "domain %u: reading [0x%"
						  PRIx64 ", 0x%" PRIx64 ") before "
						  "its unmap failed; every page "
						  "of it is pending", d->id,
						  m->iova, m->iova + m->length);
				for (size_t k = 0; k < c->nsubs; k++)
					subscriber_snap_mark(&c->subs[k].snap,
							     m->iova,
							     m->length);
			}
		}
		e = m->external ? 0 : backend_ioas_unmap(b, d->ioas_id,
							 m->iova, m->length,
							 NULL);
		/* nothing there: unmapped already (by a dirtyd that died
		 * before it could say so) */
		if (e == -ENOENT)
			e = 0;
		if (e < 0) {
			/* still mapped: keep it */
			log_warning_errno(e, "IOMMU_IOAS_UNMAP of [0x%" PRIx64
					  ", 0x%" PRIx64 ") failed", m->iova,
					  m->iova + m->length);
			r = error_set(&c->err, e, "IOMMU_IOAS_UNMAP failed: "
					      "%s", strerror(-e));
			c->maps[c->nmaps++] = *m;
			continue;
		}
		if (m->mem)
			munmap(m->mem, m->length);
		c->mapped_bytes -= m->length;
		retired[n++] = (struct harvest_range){
			.iova = m->iova, .length = m->length,
			.flags = HARVEST_RANGE_RETIRED,
		};
	}
	qsort(retired, n, sizeof(*retired), range_cmp);
	/* the unmapped ranges are still in the plan: subscribers' holds
	 * are asked there before the new plan drops what nobody holds */
	q = change_replan(c, retired, n);
	if (q < 0) {
		/* the kernel's mappings are gone all the same: the domain
		 * says so, its plan stays (its rounds fail until a change
		 * plans again) */
		log_error("re-planning domain %u after an unmap failed: %s",
			  d->id, error_text(&c->err, q));
		if (!r)
			r = q;
		c->retired = retired;
		c->nretired = n;
		return r;
	}
	free(retired);
	return r;
}

int domain_unmap(struct domain *d, uint64_t iova, uint64_t length,
		 uint32_t proto_flags, struct error *e, struct domain_waiter *w,
		 void (*fn)(struct domain_waiter *w, int result))
{
	int r = domain_unmap_check(d, iova, length, proto_flags, e);

	if (r < 0)
		return r;
	return domain_change_intent(d, STATE_OP_UNMAP, unmap_work, iova,
				    length, proto_flags, e, w, fn);
}
