// SPDX-License-Identifier: MIT
/* The dirty rate of a domain: pages over the wall time its rounds cover. */
#include "daemon/domain/rate.h"

#define RATE_BUCKET_NS (DOMAIN_RATE_WINDOW_NS / DOMAIN_RATE_BUCKETS)

void domain_rate_start(struct domain_rate *r, uint64_t now_ns)
{
	r->since_ns = now_ns;
	r->since_known = true;
}

void domain_rate_note(struct domain_rate *r, uint64_t now_ns,
		      uint64_t start_ns, uint64_t pages)
{
	uint64_t since = r->since_known && r->since_ns <= now_ns ?
			 r->since_ns : start_ns;

	if (r->n && r->b[r->head].end_ns / RATE_BUCKET_NS ==
		    now_ns / RATE_BUCKET_NS) {
		r->b[r->head].end_ns = now_ns;
		r->b[r->head].pages += pages;
	} else {
		r->head = (r->head + 1) % DOMAIN_RATE_BUCKETS;
		if (r->n < DOMAIN_RATE_BUCKETS)
			r->n++;
		r->b[r->head].start_ns = since;
		r->b[r->head].end_ns = now_ns;
		r->b[r->head].pages = pages;
	}
	r->since_ns = now_ns;
	r->since_known = true;
}

uint64_t domain_rate_get(const struct domain_rate *r, uint64_t now_ns)
{
	uint64_t pages = 0, start = 0, end;
	unsigned int k;

	if (!r->n || now_ns - r->b[r->head].end_ns >= DOMAIN_RATE_WINDOW_NS)
		return 0;
	end = r->b[r->head].end_ns;
	for (k = 0; k < r->n; k++) {
		unsigned int i = (r->head + DOMAIN_RATE_BUCKETS - k) %
				 DOMAIN_RATE_BUCKETS;

		if (now_ns - r->b[i].end_ns >= DOMAIN_RATE_WINDOW_NS)
			break;
		pages += r->b[i].pages;
		start = r->b[i].start_ns;
	}
	if (end <= start)
		return 0;
	return (uint64_t)(pages * 1e9 / (double)(end - start) + 0.5);
}
