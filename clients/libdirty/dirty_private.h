/* SPDX-License-Identifier: MIT */
/* What libdirty's own files share; not installed, not part of its ABI. */
#ifndef DIRTYD_LIBDIRTY_PRIVATE_H
#define DIRTYD_LIBDIRTY_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "dirty.h"
#include "protocol/proto.h"

/* Fill list item @item (of the caller's struct) from entry @i of @m. */
typedef void (*dirty_list_add_fn)(const struct proto_msg *m, uint32_t i,
				  void *item);

/**
 * dirty_list() - request @type (of @domain_id, for STATS and LIST_SOURCES)
 * and gather every entry of its @reply_type answer, each filled by @add
 * into an item of @size bytes: *@list a malloc()ed array of *@n pointers
 * then a NULL, the items after it in the same allocation.  0 or -errno.
 */
int dirty_list(struct dirty *d, uint16_t type, uint32_t domain_id,
	       uint16_t reply_type, dirty_list_add_fn add, size_t size,
	       void ***list, size_t *n);

#endif
