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

#include "daemon/subscriber/bitmem.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain_private.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
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
static int domain_device_quota(struct server *srv, uid_t uid)
{
	struct domain *d;
	unsigned int n = 0;

	list_for_each_entry(d, &srv->domains, link)
		if (!d->dying && d->owner == uid)
			n += d->ndevices;
	if (n < srv->cfg->max_devices)
		return 0;
	return server_why(srv, -EDQUOT, "uid %u already has %u devices in its "
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
	return PROTO_DOMAIN_SUPPORTED | (d->enabled ? PROTO_DOMAIN_ENABLED : 0);
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
	struct backend *b = d->kctx;
	struct domain_device *dev, *tmp;

	dma_load_stop(d->load);
	d->load = NULL;
	list_for_each_entry_safe(dev, tmp, &d->devices, link) {
		if (b) {
			backend_device_detach(b, dev->dev_id);
			backend_device_unbind(b, dev->dev_id);
		}
		list_del_init(&dev->link);
		free(dev);
	}
	if (b && d->hwpt_id)
		backend_destroy(b, d->hwpt_id);
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
		 * drops its context's descriptors from the store */
		list_del_init(&d->link);
		state_commit(srv);
	}
	/* whatever is left of the context goes with its file */
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
static int bind_why(struct server *srv, const char *device, int r)
{
	const char *why = backend_why();

	if (r == -ENOENT || r == -ENODEV)
		return server_why(srv, -ENOENT, "no device named %s%s%s%s",
				  device, why ? " (" : "", why ? why : "",
				  why ? ")" : "");
	return server_why(srv, r, "binding device %s failed: %s", device,
			  why ? why : strerror(-r));
}


int domain_create(struct server *srv, uid_t owner, const char *device,
		  uint32_t flags, struct domain **out)
{
	bool tracking = flags & PROTO_CREATE_TRACKING;
	struct backend_hw_info info;
	struct domain_device *dev;
	struct backend *b;
	struct domain *d;
	int r;

	if (domain_count_owned(srv, owner) >= srv->cfg->max_domains)
		return server_why(srv, -EDQUOT, "uid %u already has %u "
				  "domains (max_domains %u)", (unsigned)owner,
				  domain_count_owned(srv, owner),
				  srv->cfg->max_domains);
	r = domain_device_quota(srv, owner);
	if (r < 0)
		return r;
	if (domain_of_device(srv, device, NULL))
		return server_why(srv, -EBUSY, "device %s is already in a "
				  "domain", device);

	d = calloc(1, sizeof(*d));
	dev = calloc(1, sizeof(*dev));
	if (!d || !dev) {
		free(d);
		free(dev);
		return server_why(srv, -ENOMEM, "out of memory");
	}
	d->srv = srv;
	d->owner = owner;
	d->huge_pages = !(flags & PROTO_CREATE_NO_HUGE_PAGES);
	list_init(&d->devices);
	list_init(&d->subs);
	list_init(&d->round_waiters);
	list_init(&d->next_waiters);
	list_init(&d->idle_waiters);
	snprintf(dev->name, sizeof(dev->name), "%s", device);
	/*
	 * A context of its own.  Nothing of it reaches the store before the
	 * commit that lists the domain, so a creation cut off by a death
	 * leaves nothing behind: closing the file destroys every object.
	 */
	r = backend_open(&srv->kcfg, &d->kctx);
	if (r < 0) {
		server_why(srv, r, "opening a kernel context for the domain "
			   "failed: %s", strerror(-r));
		goto fail_dev;
	}
	b = d->kctx;
	r = backend_device_bind(b, device, &dev->dev_id);
	if (r < 0) {
		r = bind_why(srv, device, r);
		goto fail_dev;
	}
	list_add_tail(&dev->link, &d->devices);
	d->ndevices = 1;
	r = backend_device_get_hw_info(b, dev->dev_id, &info);
	if (r < 0) {
		server_why(srv, r, "IOMMU_GET_HW_INFO on device %s failed: %s",
			   device, strerror(-r));
		goto fail;
	}
	device_caps_note(srv, device, info.capabilities);
	if (tracking && !(info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING)) {
		r = server_why(srv, -EOPNOTSUPP, "device %s cannot track dirty "
			       "pages (its IOMMU lacks "
			       "IOMMU_HW_CAP_DIRTY_TRACKING); create a "
			       "domain without tracking for it", device);
		goto fail;
	}
	r = backend_ioas_alloc(b, &d->ioas_id);
	if (r < 0) {
		server_why(srv, r, "IOMMU_IOAS_ALLOC failed: %s", strerror(-r));
		goto fail;
	}
	if (!d->huge_pages) {
		r = backend_ioas_set_huge_pages(b, d->ioas_id, false);
		if (r < 0) {
			server_why(srv, r, "turning IOMMU_OPTION_HUGE_PAGES "
				   "off failed: %s", strerror(-r));
			goto fail;
		}
	}
	r = backend_hwpt_alloc(b, dev->dev_id, d->ioas_id,
			       tracking ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0,
			       &d->hwpt_id);
	if (r == -EOPNOTSUPP && tracking) {
		server_why(srv, r, "device %s cannot track dirty pages (the "
			   "kernel refused a tracking HWPT); create a domain "
			   "without tracking for it", device);
		goto fail;
	}
	if (r < 0) {
		server_why(srv, r, "IOMMU_HWPT_ALLOC for device %s failed: %s",
			   device, strerror(-r));
		goto fail;
	}
	d->tracking_capable = tracking;
	/*
	 * Only now: an IOAS without a domain has alignment 1 (Linux
	 * iopt_init_table()); its first domain raises it to the IOMMU page.
	 */
	r = backend_ioas_iova_alignment(b, d->ioas_id, &d->page_size);
	if (r < 0) {
		server_why(srv, r, "IOMMU_IOAS_IOVA_RANGES failed: %s",
			   strerror(-r));
		goto fail;
	}
	r = backend_device_attach(b, dev->dev_id, d->hwpt_id);
	if (r < 0) {
		server_why(srv, r, "attaching device %s failed: %s", device,
			   strerror(-r));
		goto fail;
	}
	d->max_leaf = domain_max_leaf(d);
	d->counters = bitmem_alloc(state_bits(srv), DOMAIN_COUNTERS_WORDS);
	if (!d->counters || domain_round_init(d) < 0) {
		r = server_why(srv, -ENOMEM, "out of memory");
		goto fail;
	}
	r = domain_plan_build(d, &d->plan);
	if (r < 0) {
		server_why(srv, r, "planning the harvest failed: %s",
			   strerror(-r));
		goto fail;
	}

	/* finalised: visible from here on */
	d->id = srv->next_domain_id++;
	list_add_tail(&d->link, &srv->domains);
	state_commit(srv);
	*out = d;
	return 0;

fail_dev:
	free(dev);
fail:
	domain_free(d);
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
	state_intent_begin(d, STATE_OP_DESTROY);
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

/* ------------------------------------------------------------ devices */

int domain_attach(struct domain *d, const char *device, uint32_t *dev_id)
{
	struct server *srv = d->srv;
	struct backend *b = d->kctx;
	struct backend_hw_info info;
	struct domain_device *dev;
	int r;

	r = domain_device_quota(srv, d->owner);
	if (r < 0)
		return r;
	if (domain_of_device(srv, device, NULL))
		return server_why(srv, -EBUSY, "device %s is already in a "
				  "domain", device);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return server_why(srv, -ENOMEM, "out of memory");
	snprintf(dev->name, sizeof(dev->name), "%s", device);
	/* a restart undoes an attach cut off */
	d->intent = (struct state_intent){ 0 };
	snprintf(d->intent.device, sizeof(d->intent.device), "%s", device);
	state_intent_begin(d, STATE_OP_ATTACH);
	r = backend_device_bind(b, device, &dev->dev_id);
	if (r >= 0) {
		d->intent.dev_id = dev->dev_id;
		state_commit(srv);
	}
	if (r < 0) {
		free(dev);
		state_intent_end(d);
		return bind_why(srv, device, r);
	}
	r = backend_device_get_hw_info(b, dev->dev_id, &info);
	if (r < 0) {
		server_why(srv, r, "IOMMU_GET_HW_INFO on device %s failed: %s",
			   device, strerror(-r));
		goto fail;
	}
	device_caps_note(srv, device, info.capabilities);
	if (d->tracking_capable &&
	    !(info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING)) {
		r = server_why(srv, -EINVAL, "device %s cannot join tracking "
			       "domain %u: its IOMMU cannot track dirty pages",
			       device, d->id);
		goto fail;
	}
	r = backend_device_attach(b, dev->dev_id, d->hwpt_id);
	if (r == -EINVAL && d->tracking_capable) {
		server_why(srv, r, "device %s cannot join tracking domain %u: "
			   "the kernel refused the attach", device, d->id);
		goto fail;
	}
	if (r < 0) {
		server_why(srv, r, "attaching device %s to domain %u failed: "
			   "%s", device, d->id, strerror(-r));
		goto fail;
	}
	list_add_tail(&dev->link, &d->devices);
	d->ndevices++;
	*dev_id = dev->dev_id;
	state_intent_end(d);
	return 0;
fail:
	backend_device_unbind(b, dev->dev_id);
	free(dev);
	state_intent_end(d);
	return r;
}

int domain_detach(struct domain *d, const char *device)
{
	struct backend *b = d->kctx;
	struct domain_device *dev;
	int r;

	list_for_each_entry(dev, &d->devices, link)
		if (!strcmp(dev->name, device))
			goto found;
	return server_why(d->srv, -ENOENT, "device %s is not in domain %u",
			  device, d->id);
found:
	/* a restart finishes a detach cut off */
	d->intent = (struct state_intent){ .dev_id = dev->dev_id };
	snprintf(d->intent.device, sizeof(d->intent.device), "%s", device);
	state_intent_begin(d, STATE_OP_DETACH);
	r = backend_device_detach(b, dev->dev_id);
	if (r < 0) {
		state_intent_end(d);
		return server_why(d->srv, r, "detaching device %s failed: %s",
				  device, strerror(-r));
	}
	r = backend_device_unbind(b, dev->dev_id);
	if (r < 0)
		log_warning_errno(r, "unbinding device %s failed", device);
	list_del_init(&dev->link);
	d->ndevices--;
	free(dev);
	state_intent_end(d);
	return 0;
}

/* ------------------------------------------------------------ tracking */

int domain_set_tracking(struct domain *d, bool enable)
{
	struct subscription *sub;
	int r;

	if (!d->tracking_capable)
		return server_why(d->srv, -EOPNOTSUPP, "domain %u was created "
				  "without dirty tracking; it cannot track",
				  d->id);
	if (d->enabled == enable)
		return 0;
	/* a restart finishes a change cut off */
	d->intent = (struct state_intent){ .flags = enable };
	state_intent_begin(d, STATE_OP_TRACK);
	r = backend_hwpt_set_dirty_tracking(d->kctx, d->hwpt_id,
					    enable);
	if (r < 0) {
		state_intent_end(d);
		return server_why(d->srv, r, "IOMMU_HWPT_SET_DIRTY_TRACKING "
				  "failed: %s", strerror(-r));
	}
	if (enable && !d->enabled)
		domain_rate_start(&d->rate, domain_now_ns());
	d->enabled = enable;
	/* writes made while tracking was off were not recorded */
	if (enable)
		list_for_each_entry(sub, &d->subs, dom_link)
			subscriber_set_mark_all(&sub->set);
	domain_timer_update(d);
	state_intent_end(d);
	return 0;
}

/* ------------------------------------------------------------ subscribers */

int domain_subscribe(struct domain *d, struct session *s,
		     uint32_t interval_ms, bool clean,
		     struct subscription **out)
{
	struct subscription *sub;
	int r;

	sub = calloc(1, sizeof(*sub));
	if (!sub)
		return server_why(d->srv, -ENOMEM, "out of memory");
	r = subscriber_set_init_mem(&sub->set, d->plan, state_bits(d->srv));
	if (r < 0) {
		free(sub);
		return server_why(d->srv, r, "out of memory");
	}
	if (!clean)
		subscriber_set_mark_all(&sub->set);
	sub->dom = d;
	sub->session = s;
	sub->interval_ms = interval_ms;
	sub->clean = clean;
	list_init(&sub->owner_link);
	list_add_tail(&sub->dom_link, &d->subs);
	d->nsubs++;
	domain_timer_update(d);
	/* kept from now on if the session has a resume token */
	state_commit(d->srv);
	*out = sub;
	return 0;
}

void subscription_drop(struct subscription *sub)
{
	struct domain *d = sub->dom;

	if (sub->session)
		session_sub_dropped(sub->session, sub);
	else if (sub->park)
		park_sub_dropped(sub->park, sub);
	list_del_init(&sub->dom_link);
	d->nsubs--;
	/* a change reading the set keeps it until its end */
	if (!domain_change_sub_dropped(sub))
		subscriber_set_release(&sub->set);
	free(sub);
	/* its bitmaps are reclaimed once a version without it is in */
	state_commit(d->srv);
}

/* ------------------------------------------------------------ restart */

int domain_restored(struct domain *d)
{
	struct server *srv = d->srv;
	int r;

	r = domain_round_init(d);
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
					 PROTO_MAP_EXTERNAL, NULL, NULL);
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
		if (domain_unmap_check(d, in.iova, in.length, in.flags) == 0) {
			r = domain_unmap(d, in.iova, in.length, in.flags,
					 NULL, NULL);
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
			d->enabled = !in.flags;
			r = domain_set_tracking(d, in.flags);
			if (r < 0)
				log_warning_errno(r, "domain %u: %s", d->id,
						  d->srv->why);
		}
		break;
	default:
		break;
	}
done:
	state_commit(d->srv);
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
