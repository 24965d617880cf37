// SPDX-License-Identifier: MIT
/*
 * A domain's sources of dirty bits (PROTOCOL.md 6.21): dirty_list_sources().
 * Owns: nothing beyond its function; the codec is protocol/proto.c's, the
 * list gathering dirty.c's (dirty_private.h).
 */
#include <errno.h>
#include <string.h>

#include "dirty.h"
#include "dirty_private.h"

_Static_assert(DIRTY_FEAT_SOURCES == PROTO_FEAT_SOURCES &&
	       DIRTY_CREATE_SOURCE_IOMMU == PROTO_CREATE_SOURCE_IOMMU &&
	       DIRTY_CREATE_SOURCE_DEVICE == PROTO_CREATE_SOURCE_DEVICE &&
	       DIRTY_CREATE_ALL_DIRTY == PROTO_CREATE_ALL_DIRTY &&
	       DIRTY_DOMAIN_ALL_DIRTY == PROTO_DOMAIN_ALL_DIRTY &&
	       DIRTY_DEVICE_DMA_LOGGING == PROTO_DEVICE_DMA_LOGGING &&
	       (int)DIRTY_SOURCE_HWPT == (int)PROTO_SOURCE_HWPT &&
	       (int)DIRTY_SOURCE_DMA_LOG == (int)PROTO_SOURCE_DMA_LOG &&
	       (int)DIRTY_SOURCE_HWPT_PLAIN == (int)PROTO_SOURCE_HWPT_PLAIN,
	       "the sources' values are the protocol's");

static void add_source(const struct proto_msg *m, uint32_t i, void *item)
{
	struct dirty_source *s = item;
	struct proto_source ps;

	proto_source_at(m, i, &ps);
	*s = (struct dirty_source){
		.size = sizeof(*s),
		.domain_id = ps.domain_id,
		.kind = ps.kind,
		.id = ps.id,
		.devices = ps.devices,
		.page_size = ps.page_size,
		.ranges = ps.ranges,
		.max_ranges = ps.max_ranges,
		.rounds = ps.rounds,
		.errors = ps.errors,
		.restarts = ps.restarts,
	};
	memcpy(s->device, ps.device, sizeof(s->device));
}

int dirty_list_sources(struct dirty *d, uint32_t domain_id,
		       struct dirty_source ***list, size_t *n)
{
	if (!domain_id)
		return -EINVAL;
	return dirty_list(d, PROTO_LIST_SOURCES, domain_id,
			  PROTO_LIST_SOURCES_REPLY, add_source,
			  sizeof(***list), (void ***)list, n);
}
