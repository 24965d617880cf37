/* SPDX-License-Identifier: MIT */
/*
 * METRICS (PROTOCOL.md 6.17): dirtyd's figures as OpenMetrics text, what
 * the client may see of them (metrics.c says which).
 */
#ifndef DIRTYD_METRICS_H
#define DIRTYD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;

/** metrics_text() - the exposition for @s (@only: one domain, 0: every
 *  one it may see) in *@text (malloc'd, *@len bytes); -ENOMEM. */
int metrics_text(struct session *s, uint32_t only, char **text, size_t *len);
/**
 * metrics_packet() - METRICS_REPLY @seq of request @id into @buf (@cap
 * bytes): the @len bytes of @text from *@off on, cut after the last line
 * end that fits; *@off moves past them, *@last when they were the rest.
 * Returns the packet's length, -EMSGSIZE for a line longer than a packet.
 */
int metrics_packet(uint8_t *buf, size_t cap, uint64_t id, uint32_t seq,
		   const char *text, size_t len, size_t *off, bool *last);
/** stream_metrics() - answer METRICS @id with a METRICS_REPLY stream. */
int stream_metrics(struct session *s, uint64_t id, uint32_t domain_id);

#endif
