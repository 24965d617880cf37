/* SPDX-License-Identifier: MIT */
/*
 * METRICS (PROTOCOL.md 6.17): dirtyd's figures as OpenMetrics text, what
 * the client may see of them (metrics.c says which).
 */
#ifndef DIRTYD_METRICS_H
#define DIRTYD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct session;

/** metrics_text() - the exposition for @s (@only: one domain, 0: every
 *  one it may see) in *@text (malloc'd, *@len bytes); -ENOMEM. */
int metrics_text(struct session *s, uint32_t only, char **text, size_t *len);
/** stream_metrics() - answer METRICS @id with a METRICS_REPLY stream. */
int stream_metrics(struct session *s, uint64_t id, uint32_t domain_id);

#endif
