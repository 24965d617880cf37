// SPDX-License-Identifier: MIT
/* The simulated host and its configured guests. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/domain.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/simhost.h"
#include "kernel/backend.h"
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
	memcpy(bc->sim.devices, c->devices,
	       c->n_devices * sizeof(c->devices[0]));
}

static int simhost_create_guest(struct server *srv,
				const struct guest_config *g)
{
	uint32_t flags = (g->tracking ? PROTO_CREATE_TRACKING : 0) |
			 (g->huge_pages ? 0 : PROTO_CREATE_NO_HUGE_PAGES);
	struct domain *d;
	int r;

	srv->why[0] = '\0';
	r = domain_create(srv, g->owner, g->device, flags, &d);
	if (r < 0)
		return log_error_errno(r, "%s: [guest %s]: %s", g->origin,
				       g->name, srv->why);
	r = domain_map(d, g->iova, g->size,
		       PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE);
	if (r < 0) {
		log_error_errno(r, "%s: [guest %s]: %s", g->origin, g->name,
				srv->why);
		goto fail;
	}
	if (g->tracking) {
		r = domain_set_tracking(d, true);
		if (r < 0) {
			log_error_errno(r, "%s: [guest %s]: %s", g->origin,
					g->name, srv->why);
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

int simhost_create_guests(struct server *srv)
{
	const struct config *c = srv->cfg;

	for (size_t i = 0; i < c->n_guests; i++) {
		int r = simhost_create_guest(srv, &c->guests[i]);

		if (r < 0)
			return r;
	}
	return 0;
}
