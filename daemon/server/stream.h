/* SPDX-License-Identifier: MIT */
/*
 * Replies that may take several packets: LIST_DEVICES, LIST_DOMAINS,
 * STATS and RANGES (and METRICS: daemon/server/metrics.h).  Each starts a session stream whose packets are
 * encoded one at a time, when the session's output slot is free.
 */
#ifndef DIRTYD_STREAM_H
#define DIRTYD_STREAM_H

#include <stdint.h>

struct session;
struct subscription;
struct subscriber_gen;

void stream_list_devices(struct session *s, uint64_t id);
void stream_list_domains(struct session *s, uint64_t id);
/** stream_stats() - @domain_id 0: every domain the client may see. */
void stream_stats(struct session *s, uint64_t id, uint32_t domain_id);
/** stream_ranges() - the chunks of generation @gen of @sub. */
void stream_ranges(struct session *s, uint64_t id, struct subscription *sub,
		   struct subscriber_gen *gen);

/* Tests only (tests/integration/test_stream_faults.c): called before each
 * RANGES packet is produced with its seq; a negative errno fails the
 * stream there.  NULL in dirtyd. */
extern int (*stream_ranges_fault)(uint32_t seq);

#endif
