// SPDX-License-Identifier: MIT
/* The simulated host and its configured guests. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/guest/simhost.h"
#include "daemon/state/state.h"
#include "kernel/backend.h"
#include "kernel/sim/sim.h"
#include "protocol/proto.h"

static const char *const pattern_names[] = {
	[DMA_PATTERN_UNIFORM] = "uniform",
	[DMA_PATTERN_CLUSTERED] = "clustered",
	[DMA_PATTERN_SEQUENTIAL] = "sequential",
	[DMA_PATTERN_HOTSET] = "hotset",
};

void simhost_backend_config(const struct config *c, struct backend_config *bc)
{
	*bc = (struct backend_config){
		.kind = c->backend,
		.iommufd_path = c->iommufd_path,
		.device_provider = c->device_provider,
		.sim = {
			.n_devices = c->n_devices,
			.backing_page_size = c->backing_page_size,
		},
	};
	memcpy(bc->sim.kernel, c->sim_kernel, sizeof(bc->sim.kernel));
	memcpy(bc->sim.devices, c->devices,
	       c->n_devices * sizeof(c->devices[0]));
}

void simhost_log_kernel(struct backend *b)
{
	struct backend_caps caps;

	backend_caps(b, &caps);
	if (caps.emulates)
		log_info("%s: IOMMU_HWPT_GET_DIRTY_BITMAP answers as Linux %s "
			 "does", backend_name(b), caps.emulates);
}

static int simhost_create_guest(struct server *srv,
				const struct guest_config *g)
{
	uint32_t flags = (g->tracking ? PROTO_CREATE_TRACKING : 0) |
			 (g->huge_pages ? 0 : PROTO_CREATE_NO_HUGE_PAGES);
	struct error e = ERROR_INIT;
	struct domain *d;
	int r;

	r = domain_create(srv, g->owner, g->device, flags, &d, &e);
	if (r < 0)
		return log_error_errno(r, "%s: [guest %s]: %s", g->origin,
				       g->name, error_text(&e, r));
	/* a restarted dirtyd finds its guests by name */
	snprintf(d->guest, sizeof(d->guest), "%s", g->name);
	journal_note(srv);
	r = domain_map(d, g->iova, g->size,
		       PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE, &e, NULL, NULL);
	if (r < 0) {
		log_error_errno(r, "%s: [guest %s]: %s", g->origin, g->name,
				error_text(&e, r));
		goto fail;
	}
	if (g->tracking) {
		r = domain_set_tracking(d, true, &e);
		if (r < 0) {
			log_error_errno(r, "%s: [guest %s]: %s", g->origin,
					g->name, error_text(&e, r));
			goto fail;
		}
	}
	if (g->dma) {
		r = domain_start_guest_load(d, g);
		if (r < 0) {
			log_error_errno(r, "%s: [guest %s]: starting its DMA "
					"load failed", g->origin, g->name);
			goto fail;
		}
	}
	if (g->dma)
		log_info("guest %s: domain %u, device %s, %" PRIu64 " MiB at "
			 "IOVA 0x%" PRIx64 ", tracking %s, DMA %s at %" PRIu64
			 " pages/s by %u threads", g->name, d->id, g->device,
			 g->size >> 20, g->iova, g->tracking ? "on" : "off",
			 pattern_names[g->pattern], g->dma_rate,
			 g->dma_threads);
	else
		log_info("guest %s: domain %u, device %s, %" PRIu64 " MiB at "
			 "IOVA 0x%" PRIx64 ", tracking %s, no DMA", g->name,
			 d->id, g->device, g->size >> 20, g->iova,
			 g->tracking ? "on" : "off");
	return 0;
fail:
	domain_destroy(d);
	return r;
}

/* A guest whose domain a restarted dirtyd restored: its DMA goes on. */
static struct domain *simhost_restored(struct server *srv,
				       const struct guest_config *g)
{
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		if (!d->dying && !strcmp(d->guest, g->name))
			return d;
	return NULL;
}

int simhost_create_guests(struct server *srv)
{
	const struct config *c = srv->cfg;

	for (size_t i = 0; i < c->n_guests; i++) {
		const struct guest_config *g = &c->guests[i];
		struct domain *d = simhost_restored(srv, g);
		int r;

		if (!d) {
			r = simhost_create_guest(srv, g);
			if (r < 0)
				return r;
			continue;
		}
		if (g->dma && domain_first_device(d)) {
			r = domain_start_guest_load(d, g);
			if (r < 0)
				return log_error_errno(r, "%s: [guest %s]: "
						       "restarting its DMA "
						       "load failed",
						       g->origin, g->name);
		}
		log_info("guest %s: domain %u restored%s", g->name, d->id,
			 g->dma ? ", DMA load restarted" : "");
	}
	return 0;
}
