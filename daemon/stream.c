// SPDX-License-Identifier: MIT
/* Multi-packet replies, encoded one packet at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/access.h"
#include "daemon/device.h"
#include "daemon/domain.h"
#include "daemon/server.h"
#include "daemon/session.h"
#include "daemon/stream.h"
#include "protocol/chunk.h"
#include "protocol/wire.h"

/* ------------------------------------------------------------ devices */

static int devices_next(struct session *s, uint8_t *buf, size_t cap,
			bool *last)
{
	struct server *srv = s->srv;
	struct backend_device_name *names;
	struct proto_list_builder lb;
	int n, r;

	n = device_enumerate(srv, &names);
	if (n < 0)
		return n;
	r = proto_list_begin(&lb, buf, cap, PROTO_LIST_DEVICES_REPLY,
			     s->stream.id);
	if (r < 0)
		goto out;
	for (; s->stream.cursor < (uint64_t)n; s->stream.cursor++) {
		const char *name = names[s->stream.cursor].name;
		struct domain_device *ddev = NULL;
		struct domain *d = domain_of_device(srv, name, &ddev);
		struct proto_device e = { 0 };
		uint64_t caps = 0;

		snprintf(e.name, sizeof(e.name), "%s", name);
		if (!device_caps(srv, name, d ? ddev->dev_id : 0, &caps)) {
			e.capabilities = caps;
			if (caps & IOMMU_HW_CAP_DIRTY_TRACKING)
				e.flags |= PROTO_DEVICE_DIRTY_CAPABLE;
		}
		if (d) {
			e.flags |= PROTO_DEVICE_BOUND | PROTO_DEVICE_ATTACHED;
			if (access_may_see(s, d)) {
				e.domain_id = d->id;
				e.dev_id = ddev->dev_id;
			}
		}
		r = proto_list_add_device(&lb, &e);
		if (r == -ENOSPC)
			break;
		if (r < 0)
			goto out;
	}
	*last = s->stream.cursor >= (uint64_t)n;
	r = proto_list_end(&lb, !*last);
out:
	free(names);
	return r;
}

void stream_list_devices(struct session *s, uint64_t id)
{
	s->stream = (struct session_stream){ .next = devices_next, .id = id };
	session_start_stream(s);
}

/* ------------------------------------------------------------ domains */

/*
 * One packet of a list with an entry per domain: those @s may see, in id
 * order after the cursor (only stream.domain_id if set); @add adds the entry
 * of one.
 */
static int domain_list_next(struct session *s, uint8_t *buf, size_t cap,
			    bool *last, uint16_t type,
			    int (*add)(struct session *s, struct domain *d,
				       struct proto_list_builder *lb))
{
	struct proto_list_builder lb;
	struct domain *d;
	int r;

	r = proto_list_begin(&lb, buf, cap, type, s->stream.id);
	if (r < 0)
		return r;
	*last = true;
	list_for_each_entry(d, &s->srv->domains, link) {
		if (d->dying || d->id <= s->stream.cursor ||
		    !access_may_see(s, d) ||
		    (s->stream.domain_id && d->id != s->stream.domain_id))
			continue;
		r = add(s, d, &lb);
		if (r == -ENOSPC) {
			*last = false;
			break;
		}
		if (r < 0)
			return r;
		s->stream.cursor = d->id;
	}
	return proto_list_end(&lb, !*last);
}

static int domain_add(struct session *s, struct domain *d,
		      struct proto_list_builder *lb)
{
	return proto_list_add_domain(lb, &(struct proto_domain){
		.domain_id = d->id,
		.status = domain_status(d),
		.owner_uid = (uint32_t)d->owner,
		.devices = d->ndevices,
		.mapped_bytes = d->mapped_bytes,
		.page_size = d->page_size,
		.generation = d->generation,
		.subscribers = d->nsubs,
	});
}

static int domains_next(struct session *s, uint8_t *buf, size_t cap,
			bool *last)
{
	return domain_list_next(s, buf, cap, last, PROTO_LIST_DOMAINS_REPLY,
				domain_add);
}

void stream_list_domains(struct session *s, uint64_t id)
{
	s->stream = (struct session_stream){ .next = domains_next, .id = id };
	session_start_stream(s);
}

/* ------------------------------------------------------------ stats */

static int stats_add(struct session *s, struct domain *d,
		     struct proto_list_builder *lb)
{
	struct subscription *sub = session_sub_of(s, d);

	return proto_list_add_stats(lb, &(struct proto_stats){
		.domain_id = d->id,
		.status = domain_status(d),
		.generation = d->generation,
		.last_round_ns = d->last_round_ns,
		.last_round_pages = d->last_round_pages,
		.dirty_rate = (uint64_t)(d->dirty_rate + 0.5),
		.mapped_bytes = d->mapped_bytes,
		.pending_pages = sub ?
			subscriber_set_pending_pages(&sub->set) : 0,
		.pages_sent = sub ? sub->pages_sent : 0,
	});
}

static int stats_next(struct session *s, uint8_t *buf, size_t cap,
		      bool *last)
{
	return domain_list_next(s, buf, cap, last, PROTO_STATS_REPLY,
				stats_add);
}

void stream_stats(struct session *s, uint64_t id, uint32_t domain_id)
{
	s->stream = (struct session_stream){
		.next = stats_next, .id = id, .domain_id = domain_id,
	};
	session_start_stream(s);
}

/* ------------------------------------------------------------ ranges */

struct runs_out {
	uint8_t *p;
	uint64_t first;
	uint64_t cursor;	/* pages from first: end of the last run */
};

static uint8_t *uleb_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static int runs_put(void *ctx, uint64_t first, uint64_t count)
{
	struct runs_out *o = ctx;
	uint64_t at = first - o->first;

	o->p = uleb_put(o->p, at - o->cursor);
	o->p = uleb_put(o->p, count);
	o->cursor = at + count;
	return 0;
}

/*
 * A CHUNK_RAW chunk as CHUNK_RUNS, for a client that did not negotiate
 * PROTO_FEAT_RANGES_RAW.  The worst case, every other page, takes two
 * bytes per dirty page: 32 KiB for a whole chunk, which still fits a
 * packet.  Returns the new chunk's size in @out.
 */
static int chunk_to_runs(const uint8_t *chunk, size_t len, uint8_t *out,
			 size_t cap)
{
	struct runs_out o = { .p = out + CHUNK_HEADER_SIZE };
	uint32_t span;
	int r;

	if (cap < CHUNK_HEADER_SIZE + CHUNK_MAX_PAGES)
		return -ENOSPC;
	chunk_peek(chunk, &o.first, &span);
	r = chunk_decode(chunk, len, runs_put, &o);
	if (r < 0)
		return r;
	wire_put_le64(out, o.first);
	wire_put_le32(out + 8, span);
	out[12] = CHUNK_RUNS;
	out[13] = 0;
	wire_put_le16(out + 14, (uint16_t)(o.p - out - CHUNK_HEADER_SIZE));
	return (int)(o.p - out);
}

static int ranges_next(struct session *s, uint8_t *buf, size_t cap,
		       bool *last)
{
	static uint8_t runs[CHUNK_HEADER_SIZE + CHUNK_MAX_PAGES];
	struct session_stream *st = &s->stream;
	const struct subscriber_gen *g = st->gen;
	bool raw_ok = s->features & PROTO_FEAT_RANGES_RAW;
	struct proto_ranges_builder rb;
	int r;

	r = proto_ranges_begin(&rb, buf, cap, st->id, &(struct proto_ranges){
		.generation = g->gen,
		.domain_id = st->domain_id,
		.seq = st->seq,
		.total_pages = g->pages,
	});
	if (r < 0)
		return r;
	while (st->off < g->len) {
		const uint8_t *c = g->chunks + st->off;
		size_t len = CHUNK_HEADER_SIZE + wire_get_le16(c + 14);
		const uint8_t *send = c;
		size_t send_len = len;

		if (!raw_ok && c[12] == CHUNK_RAW) {
			r = chunk_to_runs(c, len, runs, sizeof(runs));
			if (r < 0)
				return r;
			send = runs;
			send_len = (size_t)r;
		}
		r = proto_ranges_add(&rb, send, send_len);
		if (r == -ENOSPC && rb.nchunks)
			break;
		if (r < 0)
			return r;
		st->off += len;
	}
	*last = st->off >= g->len;
	st->seq++;
	return proto_ranges_end(&rb, !*last);
}

void stream_ranges(struct session *s, uint64_t id, struct subscription *sub,
		   struct subscriber_gen *gen)
{
	s->stream = (struct session_stream){
		.next = ranges_next,
		.id = id,
		.domain_id = sub->dom->id,
		.sub = sub,
		.gen = gen,
	};
	session_start_stream(s);
}
