// SPDX-License-Identifier: MIT
/*
 * Domains: lookup, life cycle (backend objects built half-way and either
 * finalised or undone), devices, tracking, subscriptions, guests.  Rounds
 * and waiters are in domain_round.c, mappings and the plan in
 * domain_map.c.
 */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain_private.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "kernel/dma_load.h"
#include "protocol/proto.h"

struct domain *domain_find(struct server *srv, uint32_t id)
{
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		if (d->id == id && !d->dying)
			return d;
	return NULL;
}

struct domain *domain_of_device(struct server *srv, const char *name,
				struct domain_device **out)
{
	struct domain *d;
	struct domain_device *dev;

	list_for_each_entry(d, &srv->domains, link)
		list_for_each_entry(dev, &d->devices, link)
			if (!strcmp(dev->name, name)) {
				if (out)
					*out = dev;
				return d;
			}
	return NULL;
}

unsigned int domain_count_owned(struct server *srv, uid_t uid)
{
	struct domain *d;
	unsigned int n = 0;

	list_for_each_entry(d, &srv->domains, link)
		n += !d->dying && d->owner == uid;
	return n;
}

/* One more device for @uid's domains, within max_devices?  -EDQUOT if not. */
static int domain_device_quota(struct server *srv, uid_t uid,
			       struct error *e)
{
	struct domain *d;
	unsigned int n = 0;

	list_for_each_entry(d, &srv->domains, link)
		if (!d->dying && d->owner == uid)
			n += d->ndevices;
	if (n < srv->cfg->max_devices)
		return 0;
	return error_set(e, -EDQUOT, "uid %u already has %u devices in its "
			  "domains (max_devices %u)", (unsigned int)uid, n,
			  srv->cfg->max_devices);
}

uint64_t domain_mapped_owned(struct server *srv, uid_t uid)
{
	struct domain *d;
	uint64_t n = 0;

	list_for_each_entry(d, &srv->domains, link) {
		if (d->dying || d->owner != uid)
			continue;
		/* with a MAP under way */
		n += d->mapped_bytes + d->change_bytes;
		/* unmapped ranges still held cost bitmaps as mappings do */
		for (size_t i = 0; i < d->nretired; i++)
			n += d->retired[i].length;
	}
	return n;
}

uint32_t domain_status(const struct domain *d)
{
	if (!d->tracking_capable)
		return PROTO_DOMAIN_UNSUPPORTED;
	return PROTO_DOMAIN_SUPPORTED | (d->enabled ? PROTO_DOMAIN_ENABLED : 0) |
	       (d->all_dirty ? PROTO_DOMAIN_ALL_DIRTY : 0);
}

bool domain_adopted(const struct domain *d)
{
	return d->lease.id != 0;
}

void domain_lease_release(struct domain *d)
{
	struct domain_lease *l = &d->lease;

	domain_waiter_cancel(&l->waiter);
	if (l->timer)
		event_free(l->timer);
	if (l->pidfd >= 0)
		close(l->pidfd);
	*l = (struct domain_lease){ .pidfd = -1 };
}

struct domain_device *domain_first_device(struct domain *d)
{
	if (list_empty(&d->devices))
		return NULL;
	return list_first_entry(&d->devices, struct domain_device, link);
}

/* ------------------------------------------------------------ create */

void domain_free(struct domain *d)
{
	struct server *srv = d->srv;
	/* leaving: the kernel's objects stay for the store and the VMMs */
	struct backend *b = d->leaving ? NULL : d->kctx;
	struct domain_device *dev, *tmp;

	dma_load_stop(d->load);
	d->load = NULL;
	domain_lease_release(d);
	list_for_each_entry_safe(dev, tmp, &d->devices, link) {
		if (b) {
			backend_device_detach(b, dev->dev_id);
			backend_device_unbind(b, dev->dev_id);
		}
		list_del_init(&dev->link);
		free(dev);
	}
	/* every HWPT of its sources, the first one (d->hwpt_id) among them,
	 * or that one alone where it has none (never planned) */
	for (size_t i = 0; b && i < d->nsources; i++)
		if (d->sources[i].kind != DOMAIN_SRC_DMA_LOG &&
		    d->sources[i].id != d->hwpt_id)
			backend_destroy(b, d->sources[i].id);
	if (b && d->hwpt_id)
		backend_destroy(b, d->hwpt_id);
	domain_sources_free(d);
	if (b && d->ioas_id) {
		if (d->nmaps)
			backend_ioas_unmap(b, d->ioas_id, 0, UINT64_MAX, NULL);
		backend_destroy(b, d->ioas_id);
	}
	for (size_t i = 0; i < d->nmaps; i++)
		if (d->maps[i].mem)
			munmap(d->maps[i].mem, d->maps[i].length);
	free(d->maps);
	free(d->retired);
	if (d->plan) {
		harvest_domain_release(d->plan);
		free(d->plan);
	}
	bitmem_release(state_bits(srv), d->counters, DOMAIN_COUNTERS_WORDS);
	domain_round_release(d);
	if (d->link.next) {
		/* listed: the version without it ends its DESTROY intent and
		 * drops its context's descriptors from the store, now: before
		 * the context closes */
		list_del_init(&d->link);
		journal_commit(srv);
	}
	/* whatever is left of the context goes with its file */
	if (d->leaving)
		backend_leave(d->kctx);
	else
		backend_close(d->kctx);
	free(d);
}

static uint64_t domain_max_leaf(const struct domain *d)
{
	struct backend_caps caps;

	if (!d->huge_pages)
		return d->page_size;
	backend_caps(d->kctx, &caps);
	return caps.max_leaf > d->page_size ? caps.max_leaf : d->page_size;
}

/* A device the backend would not bind: the reason it gave, if any
 * (backend_why()); a name it does not know is ENOENT, whatever the cause. */
static int bind_why(struct server *srv, const char *device, int r,
		    struct error *e)
{
	const char *why = backend_why();

	if (r == -ENOENT || r == -ENODEV)
		return error_set(e, -ENOENT, "no device named %s%s%s%s",
				  device, why ? " (" : "", why ? why : "",
				  why ? ")" : "");
	return error_set(e, r, "binding device %s failed: %s", device,
			  why ? why : strerror(-r));
}


/* Room for one more domain of @owner, with @device, which is free? */
static int domain_create_check(struct server *srv, uid_t owner,
			       const char *device, struct error *e)
{
	int r;

	if (domain_count_owned(srv, owner) >= srv->cfg->max_domains)
		return error_set(e, -EDQUOT, "uid %u already has %u "
				  "domains (max_domains %u)", (unsigned)owner,
				  domain_count_owned(srv, owner),
				  srv->cfg->max_domains);
	r = domain_device_quota(srv, owner, e);
	if (r < 0)
		return r;
	if (domain_of_device(srv, device, NULL))
		return error_set(e, -EBUSY, "device %s is already in a "
				  "domain", device);
	return 0;
}

/*
 * The kernel's side of a new domain, in its own context, for its first
 * device @dev (bound): the capability checked, the IOAS, the HWPT (with
 * tracking if asked), the IOVA alignment, the attach.
 */
static int domain_kernel_build(struct domain *d, struct domain_device *dev,
			       bool tracking, struct error *e)
{
	struct backend *b = d->kctx;
	const char *device = dev->name;
	uint64_t caps;
	int r;

	/* (an emulated device, without an IOMMU: 0) */
	r = device_caps(d->srv, device, b, dev->dev_id, &caps);
	if (r < 0)
		return error_set(e, r, "IOMMU_GET_HW_INFO on device %s failed: "
				  "%s", device, strerror(-r));
	device_caps_note(d->srv, device, caps);
	d->tracking_capable = tracking;
	r = backend_ioas_alloc(b, &d->ioas_id);
	if (r < 0)
		return error_set(e, r, "IOMMU_IOAS_ALLOC failed: %s",
				  strerror(-r));
	if (!d->huge_pages) {
		r = backend_ioas_set_huge_pages(b, d->ioas_id, false);
		if (r < 0)
			return error_set(e, r, "turning IOMMU_OPTION_HUGE_PAGES "
					  "off failed: %s", strerror(-r));
	}
	/* its HWPT (tracking or not) and source (domain_source.c) */
	r = domain_device_place(d, dev, caps, e);
	if (r < 0)
		return r;
	/*
	 * Only now: an IOAS without a domain has alignment 1 (Linux
	 * iopt_init_table()); its first domain raises it to the IOMMU page.
	 */
	r = backend_ioas_iova_alignment(b, d->ioas_id, &d->page_size);
	if (r < 0)
		return error_set(e, r, "IOMMU_IOAS_IOVA_RANGES failed: %s",
				  strerror(-r));
	return 0;
}

/* What dirtyd keeps of a built domain: its counters, timers and plan. */
static int domain_daemon_build(struct domain *d, struct error *e)
{
	int r;

	d->max_leaf = domain_max_leaf(d);
	d->counters = bitmem_alloc(state_bits(d->srv), DOMAIN_COUNTERS_WORDS);
	if (!d->counters || domain_round_init(d) < 0)
		return error_set(e, -ENOMEM, "out of memory");
	r = domain_plan_build(d, &d->plan);
	if (r < 0)
		return error_set(e, r, "planning the harvest failed: %s",
				  strerror(-r));
	return 0;
}

int domain_create(struct server *srv, uid_t owner, const char *device,
		  uint32_t flags, struct domain **out, struct error *e)
{
	struct domain_device *dev;
	struct domain *d;
	int r;

	r = domain_create_check(srv, owner, device, e);
	if (r < 0)
		return r;
	d = domain_alloc(srv, owner);
	dev = calloc(1, sizeof(*dev));
	if (!d || !dev) {
		free(d);
		free(dev);
		return error_set(e, -ENOMEM, "out of memory");
	}
	d->huge_pages = !(flags & PROTO_CREATE_NO_HUGE_PAGES);
	d->create_flags = flags;
	snprintf(dev->name, sizeof(dev->name), "%s", device);
	/*
	 * A context of its own.  Nothing of it reaches the store before the
	 * commit that lists the domain, so a creation cut off by a death
	 * leaves nothing behind: closing the file destroys every object.
	 */
	r = backend_open(&srv->kcfg, &d->kctx);
	if (r < 0) {
		error_set(e, r, "opening a kernel context for the domain "
			  "failed: %s", strerror(-r));
		goto fail_dev;
	}
	r = backend_device_bind(d->kctx, device, &dev->dev_id);
	if (r < 0) {
		r = bind_why(srv, device, r, e);
		goto fail_dev;
	}
	r = domain_kernel_build(d, dev, flags & PROTO_CREATE_TRACKING, e);
	list_add_tail(&dev->link, &d->devices);
	d->ndevices = 1;
	if (r >= 0)
		r = domain_daemon_build(d, e);
	if (r < 0)
		goto fail;

	/* finalised: visible from here on */
	d->id = srv->next_domain_id++;
	list_add_tail(&d->link, &srv->domains);
	journal_note(srv);
	*out = d;
	return 0;

fail_dev:
	free(dev);
fail:
	domain_free(d);
	return r;
}

/* A domain domain_readopt() could not finish: every bit of it is
 * dropped, nothing of the kernel's touched (the client holds it). */
static void domain_unbuilt_leave(struct domain *d)
{
	if (d->plan) {
		harvest_domain_release(d->plan);
		free(d->plan);
		d->plan = NULL;
	}
	bitmem_release(state_bits(d->srv), d->counters, DOMAIN_COUNTERS_WORDS);
	d->counters = NULL;
	domain_round_release(d);
	domain_discard(d);
}

/* The ids and ranges of @g, checked against @d's context. */
static int domain_given_check(struct domain *d, const struct domain_given *g,
			      struct error *e)
{
	struct server *srv = d->srv;
	uint64_t total = 0, bit = 0;
	int r;

	r = backend_ioas_iova_alignment(d->kctx, g->ioas_id, &d->page_size);
	if (r < 0)
		return error_set(e, r == -ENOENT ? -ENOENT : r, "IOAS %u: "
				  "IOMMU_IOAS_IOVA_RANGES failed: %s",
				  g->ioas_id, strerror(-r));
	if (d->page_size < 512 || d->page_size & (d->page_size - 1))
		return error_set(e, -EINVAL, "IOAS %u has IOVA alignment %"
				  PRIu64 ": no page table is attached to it",
				  g->ioas_id, d->page_size);
	/* a zero-length read: -ENOENT for no such HWPT, else -EINVAL */
	r = backend_hwpt_get_dirty_bitmap(d->kctx, g->hwpt_id, 0, 0,
					  d->page_size, &bit,
					  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	if (r == -ENOENT)
		return error_set(e, -ENOENT, "the iommufd has no HWPT %u",
				  g->hwpt_id);
	if (g->nranges > DOMAIN_MAX_MAPS)
		return error_set(e, -ENOSPC, "%zu ranges: a domain has at "
				  "most %d", g->nranges, DOMAIN_MAX_MAPS);
	d->maps = calloc(g->nranges + 1, sizeof(*d->maps));
	if (!d->maps)
		return error_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < g->nranges; i++) {
		r = domain_check_range(d, g->ranges[i][0], g->ranges[i][1], e);
		if (r < 0)
			return r;
		d->maps[i] = (struct domain_mapping){
			.iova = g->ranges[i][0],
			.length = g->ranges[i][1],
			.external = true,
		};
		d->nmaps++;
		total += g->ranges[i][1];
	}
	if (total > srv->cfg->max_mapped ||
	    domain_mapped_owned(srv, d->owner) > srv->cfg->max_mapped - total)
		return error_set(e, -EDQUOT, "uid %u: 0x%" PRIx64 " bytes "
				  "more is over max_mapped 0x%" PRIx64,
				  (unsigned int)d->owner, total,
				  srv->cfg->max_mapped);
	d->mapped_bytes = total;
	/* the probe reads only with tracking on: if it is not, it fails */
	d->enabled = d->tracking_capable && g->nranges;
	for (size_t i = 0; d->enabled && i < g->nranges; i++) {
		char why[PROTO_ERROR_TEXT_MAX];

		r = domain_external_probe(d, g->ranges[i][0], g->ranges[i][1],
					  e);
		if (r < 0) {
			snprintf(why, sizeof(why), "%s", error_text(e, r));
			return error_set(e, r, "%s (or dirty tracking of HWPT "
					  "%u is off)", why, g->hwpt_id);
		}
	}
	return 0;
}

int domain_readopt(struct server *srv, uid_t owner, struct backend *kctx,
		   const struct domain_given *g, struct domain **out,
		   struct error *e)
{
	struct domain *d;
	int r;

	r = domain_create_check(srv, owner, g->names[0], e);
	if (r < 0) {
		backend_leave(kctx);
		return r;
	}
	d = domain_alloc(srv, owner);
	if (!d) {
		backend_leave(kctx);
		return error_set(e, -ENOMEM, "out of memory");
	}
	d->kctx = kctx;
	d->ioas_id = g->ioas_id;
	d->hwpt_id = g->hwpt_id;
	d->huge_pages = !(g->flags & PROTO_CREATE_NO_HUGE_PAGES);
	d->tracking_capable = g->flags & PROTO_CREATE_TRACKING;
	for (size_t i = 0; i < g->ndevices; i++) {
		if (i && domain_of_device(srv, g->names[i], NULL)) {
			r = error_set(e, -EBUSY, "device %s is already in a "
				      "domain", g->names[i]);
			goto fail;
		}
		r = domain_device_add(d, g->names[i], g->dev_ids[i]);
		if (r < 0) {
			error_set(e, r, "out of memory");
			goto fail;
		}
	}
	r = domain_given_check(d, g, e);
	/* its one HWPT, every device behind it (domain_source.c) */
	if (r >= 0 && domain_sources_restored(d) < 0)
		r = error_set(e, -ENOMEM, "out of memory");
	if (r >= 0)
		r = domain_daemon_build(d, e);
	if (r < 0)
		goto fail;
	if (d->enabled)
		domain_rate_start(&d->rate, domain_now_ns());
	d->backlog = d->enabled;
	d->id = srv->next_domain_id++;
	list_add_tail(&d->link, &srv->domains);
	journal_note(srv);
	*out = d;
	return 0;
fail:
	domain_unbuilt_leave(d);
	return r;
}

void domain_destroy(struct domain *d)
{
	struct subscription *sub, *tmp;
	struct list_head *lists[] = {
		&d->round_waiters, &d->next_waiters, &d->idle_waiters,
	};

	d->dying = true;
	/* a restart finishes it: the version without d ends it */
	journal_change(d, &(struct state_intent){ .op = STATE_OP_DESTROY });
	dma_load_stop(d->load);
	d->load = NULL;
	event_del(d->timer);
	list_for_each_entry_safe(sub, tmp, &d->subs, dom_link)
		subscription_drop(sub);
	for (size_t i = 0; i < 3; i++)
		while (!list_empty(lists[i])) {
			struct domain_waiter *w =
				list_first_entry(lists[i], struct domain_waiter,
						 link);

			list_del_init(&w->link);
			w->fn(w, -ENOENT);
		}
	if (!d->settling && !d->running)
		domain_free(d);
}

void domain_destroy_all(struct server *srv)
{
	struct domain *d, *tmp;
	int r;

	list_for_each_entry(d, &srv->domains, link) {
		dma_load_stop(d->load);
		d->load = NULL;
	}
	/* nothing a change's thread uses may go before it is done */
	domain_changes_wait(srv);
	r = harvest_engine_wait(srv->engine);
	if (r < 0)
		log_warning_errno(r, "finishing the last harvests failed");
	list_for_each_entry_safe(d, tmp, &srv->domains, link) {
		/* one started by the drops of the sessions freed */
		domain_change_wait(d);
		if (d->running) {
			/* an empty round that will never be dispatched */
			event_del(d->ev_empty_round);
			d->running = false;
		}
		domain_destroy(d);
	}
}

void domain_leave_all(struct server *srv)
{
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		d->leaving = true;
	domain_destroy_all(srv);
}

/* ------------------------------------------------------------ devices */

int domain_attach(struct domain *d, const char *device, uint32_t *dev_id,
		  struct error *e)
{
	struct server *srv = d->srv;
	struct backend *b = d->kctx;
	uint64_t caps;
	struct domain_device *dev;
	struct state_intent in;
	int r;

	r = domain_device_quota(srv, d->owner, e);
	if (r < 0)
		return r;
	if (domain_of_device(srv, device, NULL))
		return error_set(e, -EBUSY, "device %s is already in a "
				  "domain", device);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return error_set(e, -ENOMEM, "out of memory");
	snprintf(dev->name, sizeof(dev->name), "%s", device);
	/* a restart undoes an attach cut off */
	in = (struct state_intent){ .op = STATE_OP_ATTACH };
	snprintf(in.device, sizeof(in.device), "%s", device);
	journal_change(d, &in);
	r = backend_device_bind(b, device, &dev->dev_id);
	if (r >= 0) {
		/* the device to unbind, before the attach */
		in.dev_id = dev->dev_id;
		journal_change(d, &in);
	}
	if (r < 0) {
		free(dev);
		journal_change_end(d);
		return bind_why(srv, device, r, e);
	}
	r = device_caps(srv, device, b, dev->dev_id, &caps);
	if (r < 0) {
		error_set(e, r, "IOMMU_GET_HW_INFO on device %s failed: %s",
			   device, strerror(-r));
		goto fail;
	}
	device_caps_note(srv, device, caps);
	/* its HWPT, maybe a new one, and source (domain_source.c) */
	r = domain_device_place(d, dev, caps, e);
	if (r < 0)
		goto fail;
	list_add_tail(&dev->link, &d->devices);
	d->ndevices++;
	*dev_id = dev->dev_id;
	journal_change_end(d);
	return 0;
fail:
	backend_device_unbind(b, dev->dev_id);
	free(dev);
	journal_change_end(d);
	return r;
}

int domain_detach(struct domain *d, const char *device, struct error *e)
{
	struct backend *b = d->kctx;
	struct domain_device *dev;
	struct state_intent in;
	int r;

	list_for_each_entry(dev, &d->devices, link)
		if (!strcmp(dev->name, device))
			goto found;
	return error_set(e, -ENOENT, "device %s is not in domain %u",
			  device, d->id);
found:
	/* a restart finishes a detach cut off */
	in = (struct state_intent){ .op = STATE_OP_DETACH,
				    .dev_id = dev->dev_id };
	snprintf(in.device, sizeof(in.device), "%s", device);
	journal_change(d, &in);
	r = backend_device_detach(b, dev->dev_id);
	if (r < 0) {
		journal_change_end(d);
		return error_set(e, r, "detaching device %s failed: %s",
				  device, strerror(-r));
	}
	domain_device_unplace(d, dev);
	r = backend_device_unbind(b, dev->dev_id);
	if (r < 0)
		log_warning_errno(r, "unbinding device %s failed", device);
	list_del_init(&dev->link);
	d->ndevices--;
	free(dev);
	journal_change_end(d);
	return 0;
}

/* ------------------------------------------------------------ tracking */

int domain_set_tracking(struct domain *d, bool enable, struct error *e)
{
	struct subscription *sub;
	int r;

	if (!d->tracking_capable)
		return error_set(e, -EOPNOTSUPP, "domain %u was created "
				  "without dirty tracking; it cannot track",
				  d->id);
	if (d->enabled == enable)
		return 0;
	/* a restart finishes a change cut off */
	journal_change(d, &(struct state_intent){ .op = STATE_OP_TRACK,
						  .flags = enable });
	/* every source: HWPTs' tracking, devices' logs */
	r = domain_sources_track(d, enable, e);
	if (r < 0) {
		journal_change_end(d);
		return r;
	}
	/* ranges a client declared while the reads could not check them */
	for (size_t i = 0; enable && i < d->nmaps; i++) {
		if (!d->maps[i].external)
			continue;
		r = domain_external_probe(d, d->maps[i].iova,
					  d->maps[i].length, e);
		if (r < 0) {
			backend_hwpt_set_dirty_tracking(d->kctx, d->hwpt_id,
							false);
			journal_change_end(d);
			return r;
		}
	}
	if (enable && !d->enabled)
		domain_rate_start(&d->rate, domain_now_ns());
	d->enabled = enable;
	/* writes made while tracking was off were not recorded */
	if (enable)
		list_for_each_entry(sub, &d->subs, dom_link)
			subscriber_set_mark_all(&sub->set);
	domain_timer_update(d);
	journal_change_end(d);
	return 0;
}

/* ------------------------------------------------------------ restart */

struct domain *domain_alloc(struct server *srv, uid_t owner)
{
	struct domain *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->srv = srv;
	d->owner = owner;
	d->lease.pidfd = -1;
	list_init(&d->devices);
	list_init(&d->subs);
	list_init(&d->round_waiters);
	list_init(&d->next_waiters);
	list_init(&d->idle_waiters);
	return d;
}

int domain_device_add(struct domain *d, const char *name, uint32_t dev_id)
{
	struct domain_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return -ENOMEM;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->dev_id = dev_id;
	list_add_tail(&dev->link, &d->devices);
	d->ndevices++;
	return 0;
}

void domain_mappings_take(struct domain *d, struct domain_mapping *maps,
			  size_t nmaps, struct harvest_range *retired,
			  size_t nretired)
{
	d->maps = maps;
	d->nmaps = nmaps;
	d->mapped_bytes = 0;
	for (size_t i = 0; i < nmaps; i++)
		d->mapped_bytes += maps[i].length;
	d->retired = retired;
	d->nretired = nretired;
}

void domain_discard(struct domain *d)
{
	struct domain_device *dev, *tmp;

	list_for_each_entry_safe(dev, tmp, &d->devices, link) {
		list_del_init(&dev->link);
		free(dev);
	}
	free(d->maps);
	free(d->retired);
	domain_sources_free(d);
	domain_lease_release(d);
	backend_leave(d->kctx);
	free(d);
}

int domain_restored(struct domain *d)
{
	struct server *srv = d->srv;
	int r;

	r = domain_round_init(d);
	if (r == 0)
		r = domain_sources_restored(d);
	if (r == 0)
		r = domain_plan_build(d, &d->plan);
	if (r < 0) {
		d->counters = NULL;	/* still the kept version's */
		domain_free(d);
		return r;
	}
	list_add_tail(&d->link, &srv->domains);
	return 0;
}

static bool domain_has_map(struct domain *d, uint64_t iova, uint64_t length)
{
	for (size_t i = 0; i < d->nmaps; i++)
		if (d->maps[i].iova == iova && d->maps[i].length == length)
			return true;
	return false;
}

void domain_resolve_intent(struct domain *d)
{
	struct state_intent in = d->intent;
	struct backend *b = d->kctx;
	struct domain_device *dev, *tmp;
	int r;

	d->intent = (struct state_intent){ 0 };
	switch (in.op) {
	case STATE_OP_DESTROY:
		log_notice("domain %u: finishing its destruction", d->id);
		domain_destroy(d);
		return;
	case STATE_OP_MAP:
		/* undone: the client never heard it was made */
		log_notice("domain %u: undoing a MAP of [0x%" PRIx64 ", 0x%"
			   PRIx64 ") that was cut off", d->id, in.iova,
			   in.iova + in.length);
		if (domain_has_map(d, in.iova, in.length)) {
			r = domain_unmap(d, in.iova, in.length, in.flags &
					 PROTO_MAP_EXTERNAL, NULL, NULL, NULL);
		} else {
			r = 0;
			if (!(in.flags & PROTO_MAP_EXTERNAL))
				backend_ioas_unmap(b, d->ioas_id, in.iova,
						   in.length, NULL);
		}
		if (r < 0)
			log_warning_errno(r, "domain %u: undoing the MAP "
					  "failed", d->id);
		break;
	case STATE_OP_UNMAP:
		log_notice("domain %u: finishing an UNMAP of [0x%" PRIx64
			   ", 0x%" PRIx64 ")", d->id, in.iova,
			   in.iova + in.length);
		if (domain_unmap_check(d, in.iova, in.length, in.flags,
				       NULL) == 0) {
			r = domain_unmap(d, in.iova, in.length, in.flags,
					 NULL, NULL, NULL);
			if (r < 0)
				log_warning_errno(r, "domain %u: finishing the "
						  "UNMAP failed", d->id);
		}
		break;
	case STATE_OP_ATTACH:
		log_notice("domain %u: undoing an attach of %s that was cut "
			   "off", d->id, in.device);
		list_for_each_entry(dev, &d->devices, link)
			if (!strcmp(dev->name, in.device))
				goto done;	/* it was committed */
		if (in.dev_id) {
			backend_device_detach(b, in.dev_id);
			backend_device_unbind(b, in.dev_id);
		} else if (in.device[0]) {
			log_warning("domain %u: if device %s was bound, it "
				    "stays bound until dirtyd starts afresh",
				    d->id, in.device);
		}
		break;
	case STATE_OP_DETACH:
		log_notice("domain %u: finishing the detach of %s", d->id,
			   in.device);
		list_for_each_entry_safe(dev, tmp, &d->devices, link)
			if (!strcmp(dev->name, in.device)) {
				backend_device_detach(b, dev->dev_id);
				domain_device_unplace(d, dev);
				backend_device_unbind(b, dev->dev_id);
				list_del_init(&dev->link);
				d->ndevices--;
				free(dev);
			}
		break;
	case STATE_OP_TRACK:
		log_notice("domain %u: finishing TRACK_%s", d->id,
			   in.flags ? "START" : "STOP");
		if (d->tracking_capable) {
			/* the kernel may have it either way: say it again */
			struct error e = ERROR_INIT;

			d->enabled = !in.flags;
			r = domain_set_tracking(d, in.flags, &e);
			if (r < 0)
				log_warning_errno(r, "domain %u: %s", d->id,
						  error_text(&e, r));
		}
		break;
	default:
		break;
	}
done:
	journal_note(d->srv);
}

/* ------------------------------------------------------------ guests */

int domain_start_guest_load(struct domain *d, const struct guest_config *g)
{
	struct domain_device *dev = domain_first_device(d);
	struct dma_load_config cfg = {
		.dev_id = dev->dev_id,
		.iova = g->iova,
		.length = g->size,
		.pattern = g->pattern,
		.pages_per_sec = g->dma_rate,
		.threads = g->dma_threads,
		.seed = g->seed,
		.cluster_pages = g->cluster_pages,
		.hot_pages = g->hot_pages,
	};

	return dma_load_start(d->kctx, &cfg, &d->load);
}
