/* SPDX-License-Identifier: MIT */
/*
 * Private to libdirty: what dirty.c gives the library's other files
 * (adopt.c, sources.c).  Nothing here is exported (libdirty.sym: dirty_* only).
 */
#ifndef DIRTYD_LIBDIRTY_PRIVATE_H
#define DIRTYD_LIBDIRTY_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/packet_io.h"
#include "protocol/proto.h"

struct dirty;

/* SCM_MAX_FD: the most descriptors one message can carry. */
#define DIRTY_FDS_MAX PROTO_MAX_FDS

/* A received packet: its length and the descriptors it carried. */
struct dirty_packet {
	size_t len;
	int fds[DIRTY_FDS_MAX];
	unsigned int nfds;
};

#define LIBDIRTY_HIDDEN __attribute__((visibility("hidden")))

/** libdirty_features() - what HELLO negotiated. */
LIBDIRTY_HIDDEN uint64_t libdirty_features(const struct dirty *d);
/**
 * libdirty_call_packet() - send the encoded request @pkt (@len bytes; its
 * id is set here) with @nfds descriptors (not closed: the kernel copies
 * them), and read its one-packet answer @reply_type into @m (pointing into
 * the handle's buffer until the next call), with the descriptors it
 * carried in @p (yours to close).  An ERROR is returned as its errno
 * (dirty_last_error_text()); another type, -EPROTO.
 */
LIBDIRTY_HIDDEN int libdirty_call_packet(struct dirty *d, uint8_t *pkt,
					 size_t len, const int *fds,
					 unsigned int nfds, uint16_t reply_type,
					 struct proto_msg *m,
					 struct dirty_packet *p);

/* Fill list item @item (of the caller's struct) from entry @i of @m. */
typedef void (*dirty_list_add_fn)(const struct proto_msg *m, uint32_t i,
				  void *item);

/**
 * dirty_list() - request @type (of @domain_id, for STATS and LIST_SOURCES)
 * and gather every entry of its @reply_type answer, each filled by @add
 * into an item of @size bytes: *@list a malloc()ed array of *@n pointers
 * then a NULL, the items after it in the same allocation.  0 or -errno.
 * (sources.c)
 */
LIBDIRTY_HIDDEN int dirty_list(struct dirty *d, uint16_t type,
			       uint32_t domain_id, uint16_t reply_type,
			       dirty_list_add_fn add, size_t size, void ***list,
			       size_t *n);

#endif
