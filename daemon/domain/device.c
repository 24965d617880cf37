// SPDX-License-Identifier: MIT
/* Device names and what their IOMMU can do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain/device.h"
#include "daemon/server/server.h"

struct device_cap {
	char name[BACKEND_NAME_MAX];
	uint64_t caps;
	bool dma_logging;	/* DMA_LOGGING_START probed: it logs */
	bool logs_known;	/* dma_logging was probed (a bound device's
				 * caps are noted without it) */
};

int device_canonical(struct server *srv, const char *name,
		     char out[BACKEND_NAME_MAX], struct error *e)
{
	const char *why;
	int r;

	r = backend_device_canonical(srv->backend, name, out,
				     BACKEND_NAME_MAX);
	if (r == -ENAMETOOLONG)
		r = -EINVAL;
	why = backend_why();
	if (r < 0)
		return error_set(e, r, "device %s: %s", name,
				  why ? why : strerror(-r));
	return 0;
}

int device_enumerate(struct server *srv, struct backend_device_name **out)
{
	struct backend_device_name *names;
	int n;

	names = calloc(DEVICE_MAX, sizeof(*names));
	if (!names)
		return -ENOMEM;
	n = backend_device_enumerate(srv->backend, names, DEVICE_MAX);
	if (n < 0) {
		free(names);
		return n;
	}
	*out = names;
	return n;
}

static struct device_cap *device_cap_find(struct server *srv,
					  const char *name)
{
	for (size_t i = 0; i < srv->ncaps; i++)
		if (!strcmp(srv->caps[i].name, name))
			return &srv->caps[i];
	return NULL;
}

void device_caps_note(struct server *srv, const char *name, uint64_t caps)
{
	struct device_cap *c = device_cap_find(srv, name);

	if (!c) {
		c = realloc(srv->caps, (srv->ncaps + 1) * sizeof(*c));
		if (!c)
			return;	/* only a cache */
		srv->caps = c;
		c = &srv->caps[srv->ncaps++];
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->dma_logging = false;
		c->logs_known = false;
	}
	c->caps = caps;
}

int device_caps(struct server *srv, const char *name, struct backend *bound,
		uint32_t dev_id, uint64_t *caps)
{
	struct backend *b = srv->backend;
	struct backend_hw_info info;
	struct device_cap *c;
	bool logs;
	int r;

	if (bound) {
		r = backend_device_get_hw_info(bound, dev_id, &info);
		if (r == -ENOENT)	/* no IOMMU: emulated */
			info.capabilities = DEVICE_CAP_NO_IOMMU;
		else if (r < 0)
			return r;
		*caps = info.capabilities;
		return 0;
	}
	c = device_cap_find(srv, name);
	if (c && c->logs_known) {
		*caps = c->caps;
		return 0;
	}
	/* ask the IOMMU once: bind, IOMMU_GET_HW_INFO (and whether the
	 * device logs its DMA), unbind */
	r = backend_device_bind(b, name, &dev_id);
	if (r < 0 && c) {
		/* what a bound device said, its DMA logging not known */
		*caps = c->caps;
		return 0;
	}
	if (r < 0)
		return r;
	r = backend_device_get_hw_info(b, dev_id, &info);
	if (r == -ENOENT) {
		/* an emulated (mediated) device has no IOMMU to ask */
		info.capabilities = DEVICE_CAP_NO_IOMMU;
		r = 0;
	}
	logs = r == 0 && backend_dma_log_probe(b, dev_id) == 0;
	backend_device_unbind(b, dev_id);
	if (r < 0)
		return r;
	device_caps_note(srv, name, info.capabilities);
	c = device_cap_find(srv, name);
	if (c) {
		c->dma_logging = logs;
		c->logs_known = true;
	}
	*caps = info.capabilities;
	return 0;
}

bool device_dma_logging(struct server *srv, const char *name,
			struct backend *bound, uint32_t dev_id)
{
	struct device_cap *c;

	if (bound)
		return backend_dma_log_probe(bound, dev_id) == 0;
	c = device_cap_find(srv, name);
	return c && c->logs_known && c->dma_logging;
}

void device_caps_free(struct server *srv)
{
	free(srv->caps);
	srv->caps = NULL;
	srv->ncaps = 0;
}
