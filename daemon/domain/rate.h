/* SPDX-License-Identifier: MIT */
#ifndef DIRTYD_RATE_H
#define DIRTYD_RATE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The dirty rate (PROTOCOL.md 6.13): the pages of the rounds that ended in
 * the last DOMAIN_RATE_WINDOW_NS over the time they cover.  Rounds are
 * summed into buckets of DOMAIN_RATE_WINDOW_NS / DOMAIN_RATE_BUCKETS by
 * when they ended; each bucket covers from where its first round began
 * collecting (the end of the round before, or TRACK_START) to the end of
 * its last, so the buckets tile time and every round weighs what it covers.
 */
#define DOMAIN_RATE_WINDOW_NS 10000000000ULL
#define DOMAIN_RATE_BUCKETS 40

struct domain_rate {
	struct {
		uint64_t start_ns, end_ns, pages;
	} b[DOMAIN_RATE_BUCKETS];
	unsigned int head, n;		/* the newest is b[head] */
	uint64_t since_ns;		/* collecting since, if since_known */
	bool since_known;
};

/** domain_rate_start() - pages are collected from @now_ns (TRACK_START). */
void domain_rate_start(struct domain_rate *r, uint64_t now_ns);
/** domain_rate_note() - a round ending at @now_ns found @pages; it began
 *  collecting at the last round's end, or at @start_ns if unknown. */
void domain_rate_note(struct domain_rate *r, uint64_t now_ns,
		      uint64_t start_ns, uint64_t pages);
/** domain_rate_get() - pages per second at @now_ns; 0 without a round in
 *  the window. */
uint64_t domain_rate_get(const struct domain_rate *r, uint64_t now_ns);

#endif
