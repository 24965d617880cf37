// SPDX-License-Identifier: MIT
/*
 * Multi-packet replies, encoded one packet at a time into the session's
 * output slot.  RANGES packets carry a generation's chunks as the codec
 * reads them (protocol/chunk.h: chunk_reader, proto_ranges_fill()): no
 * byte of a chunk is touched here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/access/access.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/server/stream.h"
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
		if (!device_caps(srv, name, d ? d->kctx : NULL,
				 d ? ddev->dev_id : 0, &caps)) {
			e.capabilities = caps & ~DEVICE_CAP_NO_IOMMU;
			if (caps & IOMMU_HW_CAP_DIRTY_TRACKING)
				e.flags |= PROTO_DEVICE_DIRTY_CAPABLE;
			if (device_dma_logging(srv, name, d ? d->kctx : NULL,
					       d ? ddev->dev_id : 0))
				e.flags |= PROTO_DEVICE_DMA_LOGGING;
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
		.dirty_rate = domain_rate_get(&d->rate, domain_now_ns()),
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

int (*stream_ranges_fault)(uint32_t seq);

/* One packet of the generation's chunks, as the session takes them
 * (chunk_reader: RAW ones cut into RUNS parts without RANGES_RAW). */
static int ranges_next(struct session *s, uint8_t *buf, size_t cap,
		       bool *last)
{
	struct session_stream *st = &s->stream;
	const struct subscriber_gen *g = st->gen;
	struct proto_ranges_builder rb;
	int r;

	if (stream_ranges_fault && (r = stream_ranges_fault(st->seq)) < 0)
		return r;

	r = proto_ranges_begin(&rb, buf, cap, st->id, &(struct proto_ranges){
		.generation = g->gen,
		.domain_id = st->domain_id,
		.seq = st->seq,
		.total_pages = g->pages,
	});
	if (r < 0)
		return r;
	r = proto_ranges_fill(&rb, &st->chunks);
	if (r < 0)
		return r;
	*last = chunk_reader_done(&st->chunks);
	st->seq++;
	return proto_ranges_end(&rb, !*last);
}

/* Whole: the generation is in flight until acknowledged; else every page
 * of it is pending again.  Without its subscription, the stream owns it. */
static void ranges_end(struct session *s, bool whole)
{
	struct session_stream *st = &s->stream;
	struct subscription *sub = st->sub;

	subscription_sent(sub, st->gen, whole);
	st->gen = NULL;
	st->sub = NULL;
}

void stream_ranges(struct session *s, uint64_t id, struct subscription *sub,
		   struct subscriber_gen *gen)
{
	s->stream = (struct session_stream){
		.next = ranges_next,
		.end = ranges_end,
		.id = id,
		.domain_id = sub->dom->id,
		.sub = sub,
		.gen = gen,
		.chunks = {
			.buf = gen->chunks,
			.len = gen->len,
			.runs_only = !(s->features & PROTO_FEAT_RANGES_RAW),
		},
	};
	session_start_stream(s);
}
