// SPDX-License-Identifier: MIT
/*
 * Mappings of a domain and its harvest plan: one harvest range per MAP;
 * unmapped ranges that subscribers still hold pages of stay in the plan as
 * retired ranges until nobody does; every change lays the plan out again
 * and moves each subscriber's pending bits over.  Idle domains only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daemon/config.h"
#include "daemon/domain_private.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/session.h"
#include "protocol/proto.h"

/* Mappings per domain: one harvest range each. */
#define DOMAIN_MAX_MAPS 65536
/* Where the sim "backs" a mapping: it checks alignment, never touches. */
#define SIM_FAKE_VA_BASE (1ULL << 40)

/* ------------------------------------------------------------ plan */

static int range_cmp(const void *a, const void *b)
{
	const struct harvest_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static bool domain_held(struct domain *d, uint64_t iova, uint64_t length)
{
	struct subscription *sub;

	list_for_each_entry(sub, &d->subs, dom_link)
		if (subscriber_set_holds(&sub->set, iova, length))
			return true;
	return false;
}

/*
 * Lay the plan out again over the current mappings and the retired ranges
 * still held, move every subscriber's pending bits over, and free the old
 * plan.  Idle only.
 */
int domain_plan_build(struct domain *d, struct harvest_domain **out)
{
	struct harvest_domain *plan;
	struct harvest_range *ranges;
	size_t n = 0;
	int r;

	ranges = calloc(d->nmaps + d->nretired + 1, sizeof(*ranges));
	plan = calloc(1, sizeof(*plan));
	if (!ranges || !plan) {
		free(ranges);
		free(plan);
		return -ENOMEM;
	}
	plan->mem = state_bits(d->srv);
	plan->b = d->kctx;
	for (size_t i = 0; i < d->nmaps; i++)
		ranges[n++] = (struct harvest_range){
			.iova = d->maps[i].iova,
			.length = d->maps[i].length,
		};
	for (size_t i = 0; i < d->nretired; i++) {
		ranges[n] = d->retired[i];
		ranges[n++].flags = HARVEST_RANGE_RETIRED;
	}
	qsort(ranges, n, sizeof(*ranges), range_cmp);
	r = harvest_domain_plan(plan, d->hwpt_id, d->page_size, ranges, n,
				harvest_batch_bytes(d->mapped_bytes,
						    d->page_size,
						    d->srv->workers));
	free(ranges);
	if (r < 0) {
		free(plan);
		return r;
	}
	*out = plan;
	return 0;
}

static int domain_replan(struct domain *d)
{
	struct harvest_domain *plan;
	struct subscription *sub, *tmp;
	size_t kept = 0;
	int r;

	for (size_t i = 0; i < d->nretired; i++)
		if (domain_held(d, d->retired[i].iova, d->retired[i].length))
			d->retired[kept++] = d->retired[i];
	d->nretired = kept;
	r = domain_plan_build(d, &plan);
	if (r < 0)
		return r;
	list_for_each_entry_safe(sub, tmp, &d->subs, dom_link) {
		struct subscriber_set fresh;

		if (subscriber_set_relayout(&sub->set, plan) == 0)
			continue;
		/* its bits cannot move: it gets every page instead */
		if (subscriber_set_init_mem(&fresh, plan, plan->mem) < 0) {
			log_error("out of memory re-planning domain %u: a "
				  "subscription is dropped", d->id);
			subscription_drop(sub);
			continue;
		}
		log_warning("moving a subscriber of domain %u to the new plan "
			    "failed; it gets every page", d->id);
		subscriber_set_mark_all(&fresh);
		/* the generations it was sent stay its own */
		fresh.inflight = sub->set.inflight;
		sub->set.inflight = NULL;
		subscriber_set_release(&sub->set);
		sub->set = fresh;
		sub->ev_lost = true;
		if (sub->session)
			session_kick(sub->session);
	}
	harvest_domain_release(d->plan);
	free(d->plan);
	d->plan = plan;
	state_commit(d->srv);
	return 0;
}

/* Retired ranges never overlap mappings: a new mapping takes over the
 * part of a retired range it covers (the same IOVA, the same bits). */
static int domain_retired_subtract(struct domain *d, uint64_t iova,
				   uint64_t length)
{
	uint64_t end = iova + length;
	struct harvest_range *r;
	size_t n = 0;

	r = calloc(d->nretired * 2 + 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < d->nretired; i++) {
		struct harvest_range x = d->retired[i];
		uint64_t xend = x.iova + x.length;

		if (xend <= iova || x.iova >= end) {
			r[n++] = x;
			continue;
		}
		if (x.iova < iova)
			r[n++] = (struct harvest_range){
				.iova = x.iova, .length = iova - x.iova,
				.flags = HARVEST_RANGE_RETIRED };
		if (xend > end)
			r[n++] = (struct harvest_range){
				.iova = end, .length = xend - end,
				.flags = HARVEST_RANGE_RETIRED };
	}
	free(d->retired);
	d->retired = r;
	d->nretired = n;
	return 0;
}

void domain_subscriptions_changed(struct domain *d)
{
	int r;

	domain_timer_update(d);
	if (!d->nretired || d->running || d->settling || d->dying)
		return;
	for (size_t i = 0; i < d->nretired; i++)
		if (!domain_held(d, d->retired[i].iova, d->retired[i].length)) {
			r = domain_replan(d);
			if (r < 0)
				log_warning_errno(r, "re-planning domain %u "
						  "failed", d->id);
			return;
		}
}

/* ------------------------------------------------------------ mappings */

int domain_check_range(struct domain *d, uint64_t iova, uint64_t length)
{
	uint64_t end;

	if (!length || iova % d->page_size || length % d->page_size)
		return server_why(d->srv, -EINVAL, "IOVA 0x%" PRIx64 " and "
				  "length 0x%" PRIx64 " must be non-zero "
				  "multiples of domain %u's page size %" PRIu64,
				  iova, length, d->id, d->page_size);
	if (__builtin_add_overflow(iova, length, &end))
		return server_why(d->srv, -EINVAL, "IOVA 0x%" PRIx64 " + "
				  "length 0x%" PRIx64 " wraps", iova, length);
	return 0;
}

/* Mark pages [@iova, @iova + @length), a range of the plan, pending. */
static void domain_mark_range(struct domain *d, struct subscriber_set *set,
			      uint64_t iova, uint64_t length)
{
	const struct harvest_domain *p = d->plan;

	for (size_t i = 0; i < p->nranges; i++) {
		uint64_t bit = p->ranges[i].bit, n = length / p->page_size;

		if (p->ranges[i].iova != iova)
			continue;
		while (n) {
			uint64_t off = bit % 64;
			uint64_t k = 64 - off < n ? 64 - off : n;
			uint64_t word = (k == 64 ? ~0ULL : (1ULL << k) - 1)
					<< off;

			subscriber_set_fold(set, bit / 64, &word, 1);
			bit += k;
			n -= k;
		}
		return;
	}
}

/* Back [m->iova, m->iova + m->length) with memory and IOMMU_IOAS_MAP it. */
static int domain_map_backing(struct domain *d, struct domain_mapping *m,
			      uint32_t proto_flags)
{
	struct server *srv = d->srv;
	uint32_t flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	uint64_t io = m->iova;
	void *va;
	int r;

	if (srv->cfg->backend == BACKEND_SIM) {
		va = (void *)(uintptr_t)(SIM_FAKE_VA_BASE + m->iova);
	} else {
		va = mmap(NULL, m->length, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (va == MAP_FAILED)
			return server_why(srv, -errno, "backing %" PRIu64
					  " bytes failed: %s", m->length,
					  strerror(errno));
		m->mem = va;
	}
	if (proto_flags & PROTO_MAP_READABLE)
		flags |= IOMMU_IOAS_MAP_READABLE;
	if (proto_flags & PROTO_MAP_WRITEABLE)
		flags |= IOMMU_IOAS_MAP_WRITEABLE;
	r = backend_ioas_map(d->kctx, d->ioas_id, flags, va, m->length,
			     &io);
	if (r < 0) {
		server_why(srv, r, "IOMMU_IOAS_MAP of [0x%" PRIx64 ", 0x%"
			   PRIx64 ") failed: %s", m->iova, m->iova + m->length,
			   strerror(-r));
		if (m->mem)
			munmap(m->mem, m->length);
		m->mem = NULL;
		return r;
	}
	return 0;
}

static int domain_map_do(struct domain *d, uint64_t iova, uint64_t length,
			 uint32_t proto_flags)
{
	struct server *srv = d->srv;
	struct domain_mapping *maps, m = { .iova = iova, .length = length };
	struct subscription *sub;
	uint64_t mapped;
	size_t at;
	int r;

	/* PROTOCOL.md 6.7: the range first */
	r = domain_check_range(d, iova, length);
	if (r < 0)
		return r;
	if (!(proto_flags & (PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE)))
		return server_why(srv, -EINVAL, "MAP needs READABLE or "
				  "WRITEABLE");
	if (proto_flags & PROTO_MAP_EXTERNAL &&
	    srv->cfg->backend == BACKEND_SIM)
		return server_why(srv, -EOPNOTSUPP, "MAP EXTERNAL: the sim "
				  "backend has no iommufd a client could map "
				  "through");
	/* what a uid may make dirtyd build page tables and bitmaps for */
	mapped = domain_mapped_owned(srv, d->owner);
	if (length > srv->cfg->max_mapped ||
	    mapped > srv->cfg->max_mapped - length)
		return server_why(srv, -EDQUOT, "uid %u has 0x%" PRIx64 " bytes "
				  "mapped; 0x%" PRIx64 " more is over max_mapped "
				  "0x%" PRIx64, (unsigned int)d->owner, mapped,
				  length, srv->cfg->max_mapped);
	if (d->nmaps >= DOMAIN_MAX_MAPS)
		return server_why(srv, -ENOSPC, "domain %u has %d mappings, "
				  "the most it may have", d->id,
				  DOMAIN_MAX_MAPS);
	for (at = 0; at < d->nmaps && d->maps[at].iova < iova; at++)
		;
	if ((at < d->nmaps && d->maps[at].iova < iova + length) ||
	    (at && d->maps[at - 1].iova + d->maps[at - 1].length > iova))
		return server_why(srv, -EEXIST, "[0x%" PRIx64 ", 0x%" PRIx64
				  ") overlaps a mapping of domain %u", iova,
				  iova + length, d->id);
	maps = realloc(d->maps, (d->nmaps + 1) * sizeof(*maps));
	if (!maps)
		return server_why(srv, -ENOMEM, "out of memory");
	d->maps = maps;

	/* EXTERNAL: the client mapped it through its iommufd; plan only */
	m.external = proto_flags & PROTO_MAP_EXTERNAL;
	if (!m.external) {
		r = domain_map_backing(d, &m, proto_flags);
		if (r < 0)
			return r;
	}
	r = domain_retired_subtract(d, iova, length);
	if (r < 0)
		goto fail_unmap;
	memmove(&d->maps[at + 1], &d->maps[at],
		(d->nmaps - at) * sizeof(*d->maps));
	d->maps[at] = m;
	d->nmaps++;
	d->mapped_bytes += length;
	r = domain_replan(d);
	if (r < 0) {
		memmove(&d->maps[at], &d->maps[at + 1],
			(d->nmaps - at - 1) * sizeof(*d->maps));
		d->nmaps--;
		d->mapped_bytes -= length;
		server_why(srv, r, "planning the harvest failed: %s",
			   strerror(-r));
		goto fail_unmap;
	}
	/* memory a subscriber has not copied yet, unless it asked for a
	 * clean start */
	list_for_each_entry(sub, &d->subs, dom_link)
		if (!sub->clean)
			domain_mark_range(d, &sub->set, iova, length);
	return 0;

fail_unmap:
	if (!m.external)
		backend_ioas_unmap(d->kctx, d->ioas_id, iova, length,
				   NULL);
	if (m.mem)
		munmap(m.mem, length);
	return r;
}

/* A restart finds the intent and undoes the map (state.h). */
int domain_map(struct domain *d, uint64_t iova, uint64_t length,
	       uint32_t proto_flags)
{
	int r;

	d->intent = (struct state_intent){
		.iova = iova, .length = length, .flags = proto_flags,
	};
	state_intent_begin(d, STATE_OP_MAP);
	r = domain_map_do(d, iova, length, proto_flags);
	state_intent_end(d);
	return r;
}

int domain_unmap_check(struct domain *d, uint64_t iova, uint64_t length,
		       uint32_t proto_flags)
{
	bool external = proto_flags & PROTO_MAP_EXTERNAL;
	bool any = false;
	int r;

	r = domain_check_range(d, iova, length);
	if (r < 0)
		return r;
	for (size_t i = 0; i < d->nmaps; i++) {
		const struct domain_mapping *m = &d->maps[i];

		if (m->iova + m->length <= iova || m->iova >= iova + length)
			continue;
		if (m->iova < iova || m->iova + m->length > iova + length)
			return server_why(d->srv, -EINVAL, "UNMAP [0x%" PRIx64
					  ", 0x%" PRIx64 ") would split the "
					  "mapping [0x%" PRIx64 ", 0x%" PRIx64
					  "); unmap whole mappings", iova,
					  iova + length, m->iova,
					  m->iova + m->length);
		if (m->external != external)
			return server_why(d->srv, -EINVAL, "UNMAP [0x%" PRIx64
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
		return server_why(d->srv, -ENOENT, "nothing is mapped in [0x%"
				  PRIx64 ", 0x%" PRIx64 ") of domain %u",
				  iova, iova + length, d->id);
	return 0;
}

static int domain_unmap_do(struct domain *d, uint64_t iova, uint64_t length,
			   uint32_t proto_flags);

/* A restart finds the intent and finishes the unmap (state.h). */
int domain_unmap(struct domain *d, uint64_t iova, uint64_t length,
		 uint32_t proto_flags)
{
	int r;

	r = domain_unmap_check(d, iova, length, proto_flags);
	if (r < 0)
		return r;
	d->intent = (struct state_intent){
		.iova = iova, .length = length, .flags = proto_flags,
	};
	state_intent_begin(d, STATE_OP_UNMAP);
	r = domain_unmap_do(d, iova, length, proto_flags);
	state_intent_end(d);
	return r;
}

static int domain_unmap_do(struct domain *d, uint64_t iova, uint64_t length,
			   uint32_t proto_flags)
{
	struct backend *b = d->kctx;
	struct harvest_range *retired;
	size_t kept = 0, n = 0;
	int r = 0;

	for (size_t i = 0; i < d->nmaps; i++)
		n += d->maps[i].iova >= iova &&
		     d->maps[i].iova + d->maps[i].length <= iova + length;
	retired = realloc(d->retired, (d->nretired + n) * sizeof(*retired));
	if (!retired)
		return server_why(d->srv, -ENOMEM, "out of memory");
	d->retired = retired;
	for (size_t i = 0; i < d->nmaps; i++) {
		struct domain_mapping *m = &d->maps[i];

		if (m->iova < iova || m->iova + m->length > iova + length) {
			d->maps[kept++] = *m;
			continue;
		}
		r = m->external ? 0 : backend_ioas_unmap(b, d->ioas_id,
							 m->iova, m->length,
							 NULL);
		/* nothing there: unmapped already (by a dirtyd that died
		 * before it could say so) */
		if (r == -ENOENT)
			r = 0;
		if (r < 0) {
			/* still mapped: keep it */
			log_warning_errno(r, "IOMMU_IOAS_UNMAP of [0x%" PRIx64
					  ", 0x%" PRIx64 ") failed", m->iova,
					  m->iova + m->length);
			server_why(d->srv, r, "IOMMU_IOAS_UNMAP failed: %s",
				   strerror(-r));
			d->maps[kept++] = *m;
			continue;
		}
		if (m->mem)
			munmap(m->mem, m->length);
		d->mapped_bytes -= m->length;
		d->retired[d->nretired++] = (struct harvest_range){
			.iova = m->iova, .length = m->length,
			.flags = HARVEST_RANGE_RETIRED,
		};
	}
	d->nmaps = kept;
	qsort(d->retired, d->nretired, sizeof(*d->retired), range_cmp);
	/* the unmapped ranges are still in the plan: subscribers' holds
	 * are asked there before the new plan drops what nobody holds */
	{
		int q = domain_replan(d);

		if (q < 0) {
			log_error_errno(q, "re-planning domain %u after an "
					"unmap failed", d->id);
			if (!r)
				r = server_why(d->srv, q, "re-planning failed: "
					       "%s", strerror(-q));
		}
	}
	return r;
}
