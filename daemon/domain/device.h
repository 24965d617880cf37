/* SPDX-License-Identifier: MIT */
/*
 * Devices the backend can bind, and their dirty-tracking capability
 * (IOMMU_GET_HW_INFO) and DMA logging (DMA_LOGGING_START probed).  The capability of a device no domain holds is
 * learned by binding it briefly, once, and remembered.
 */
#ifndef DIRTYD_DEVICE_H
#define DIRTYD_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/util/error.h"
#include "kernel/backend.h"

struct server;

#define DEVICE_MAX 4096

/**
 * device_canonical() - the name dirtyd knows the device a client named
 * @name by: as device_enumerate() lists it (backend_device_canonical():
 * 65:00.0 is 0000:65:00.0), into @out.  Every comparison of a client's
 * device name with another goes through it.  -EINVAL, with the reason
 * in @e, for a name that is none (a path).
 */
int device_canonical(struct server *srv, const char *name,
		     char out[BACKEND_NAME_MAX], struct error *e);
/** device_enumerate() - names of up to DEVICE_MAX devices in *@out
 *  (malloc'ed, free() it); returns the count or -errno. */
int device_enumerate(struct server *srv, struct backend_device_name **out);
/**
 * device_caps() - IOMMU_HW_CAP_* of @name; @dev_id is its id in the
 * context @bound when bound (a domain's; NULL: not bound, probe in the
 * host's context or use what was learned).  -errno when unknown.
 */
int device_caps(struct server *srv, const char *name, struct backend *bound,
		uint32_t dev_id, uint64_t *caps);
/* In device_caps()' answer, never on the wire: the kernel answered
 * IOMMU_GET_HW_INFO with ENOENT, an emulated (mediated) device without an
 * IOMMU of its own; the refusal of IOMMU tracking says so. */
#define DEVICE_CAP_NO_IOMMU (1ULL << 63)
/** device_dma_logging() - whether @name logs its own DMA (VFIO DMA
 *  logging): asked of @bound's @dev_id, or as device_caps() learned it. */
bool device_dma_logging(struct server *srv, const char *name,
			struct backend *bound, uint32_t dev_id);
/** device_caps_note() - remember what a bound device said. */
void device_caps_note(struct server *srv, const char *name, uint64_t caps);
/** device_caps_free() - forget everything (at exit). */
void device_caps_free(struct server *srv);

#endif
