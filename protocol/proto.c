// SPDX-License-Identifier: MIT
/*
 * The wire codec: one table row per message type fixes its direction, its
 * shape (fixed body, list, error text, range chunks), its size and the
 * header flags it may carry, so the checks common to every message live in
 * one place; the per-type code only reads and writes fields.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

enum proto_dir {
	DIR_REQUEST,
	DIR_REPLY,
	DIR_EVENT,
};

enum proto_shape {
	SHAPE_FIXED,	/* body of exactly @size bytes */
	SHAPE_LIST,	/* @size bytes, then count entries of @entry bytes */
	SHAPE_ERROR,	/* @size bytes, then text */
	SHAPE_RANGES,	/* @size bytes, then chunks */
};

struct proto_type_info {
	uint16_t type;
	uint8_t dir;
	uint8_t shape;
	uint16_t flags;		/* header flags allowed */
	uint32_t size;
	uint32_t entry;
	const char *name;
};

#define ROW(t, d, s, f, sz, e) {					\
	.type = PROTO_##t, .dir = d, .shape = s, .flags = f,		\
	.size = sz, .entry = e, .name = #t }

static const struct proto_type_info proto_types[] = {
	ROW(HELLO, DIR_REQUEST, SHAPE_FIXED, 0, 24, 0),
	ROW(LIST_DEVICES, DIR_REQUEST, SHAPE_FIXED, 0, 0, 0),
	ROW(LIST_DOMAINS, DIR_REQUEST, SHAPE_FIXED, 0, 0, 0),
	ROW(CREATE_DOMAIN, DIR_REQUEST, SHAPE_FIXED, 0, 72, 0),
	ROW(ATTACH_DEVICE, DIR_REQUEST, SHAPE_FIXED, 0, 72, 0),
	ROW(DETACH_DEVICE, DIR_REQUEST, SHAPE_FIXED, 0, 72, 0),
	ROW(DESTROY_DOMAIN, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(MAP, DIR_REQUEST, SHAPE_FIXED, 0, 24, 0),
	ROW(UNMAP, DIR_REQUEST, SHAPE_FIXED, 0, 24, 0),
	ROW(TRACK_START, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(TRACK_STOP, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(SUBSCRIBE, DIR_REQUEST, SHAPE_FIXED, 0, 16, 0),
	ROW(UNSUBSCRIBE, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(SYNC, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(GET_RANGES, DIR_REQUEST, SHAPE_FIXED, 0, 16, 0),
	ROW(ACK, DIR_REQUEST, SHAPE_FIXED, 0, 16, 0),
	ROW(STATS, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(GET_FDS, DIR_REQUEST, SHAPE_FIXED, 0, 8, 0),
	ROW(DMA_WRITE, DIR_REQUEST, SHAPE_FIXED, 0, 24, 0),

	ROW(HELLO_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 40, 0),
	ROW(LIST_DEVICES_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    PROTO_DEVICE_WIRE),
	ROW(LIST_DOMAINS_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    PROTO_DOMAIN_WIRE),
	ROW(CREATE_DOMAIN_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 16, 0),
	ROW(ATTACH_DEVICE_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 8, 0),
	ROW(OK, DIR_REPLY, SHAPE_FIXED, 0, 0, 0),
	ROW(SUBSCRIBE_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 32, 0),
	ROW(SYNC_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 16, 0),
	ROW(RANGES, DIR_REPLY, SHAPE_RANGES, PROTO_F_MORE,
	    PROTO_RANGES_FIXED, 0),
	ROW(STATS_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    PROTO_STATS_WIRE),
	/* one packet: it carries the descriptors */
	ROW(GET_FDS_REPLY, DIR_REPLY, SHAPE_LIST, 0, 16,
	    PROTO_FD_DEVICE_WIRE),
	ROW(ERROR, DIR_REPLY, SHAPE_ERROR, 0, 8, 0),

	ROW(EV_ROUND, DIR_EVENT, SHAPE_FIXED, 0, 32, 0),
	ROW(EV_STATE_LOST, DIR_EVENT, SHAPE_FIXED, 0, 8, 0),
};

#undef ROW

static const struct proto_type_info *proto_type_info(uint16_t type)
{
	for (size_t i = 0; i < sizeof(proto_types) / sizeof(proto_types[0]);
	     i++)
		if (proto_types[i].type == type)
			return &proto_types[i];
	return NULL;
}

const char *proto_type_name(uint16_t type)
{
	const struct proto_type_info *ti = proto_type_info(type);

	return ti ? ti->name : NULL;
}

/* ---- field helpers ---- */

/* A str64: 1 .. PROTO_NAME_MAX - 1 bytes, then NULs to the end. */
static bool name_valid(const uint8_t *p)
{
	size_t n = strnlen((const char *)p, PROTO_NAME_MAX);

	if (!n || n == PROTO_NAME_MAX)
		return false;
	for (size_t i = n; i < PROTO_NAME_MAX; i++)
		if (p[i])
			return false;
	return true;
}

static void name_get(char *dst, const uint8_t *p)
{
	memcpy(dst, p, PROTO_NAME_MAX);
}

/* Encode side: -EINVAL for an empty name or one without room for a NUL. */
static int name_put(uint8_t *p, const char *src)
{
	size_t n = strnlen(src, PROTO_NAME_MAX);

	if (!n || n == PROTO_NAME_MAX)
		return -EINVAL;
	memset(p, 0, PROTO_NAME_MAX);
	memcpy(p, src, n);
	return 0;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- decoding ---- */

static int decode_device(const uint8_t *p)
{
	if (!name_valid(p) || wire_get_le32(p + 84))
		return -EBADMSG;
	return 0;
}

static int decode_domain(const uint8_t *p)
{
	return wire_get_le32(p + 44) ? -EBADMSG : 0;
}

static int decode_list(const uint8_t *body, size_t blen,
		       const struct proto_type_info *ti, struct proto_msg *m)
{
	uint32_t count = wire_get_le32(body);
	const uint8_t *e = body + ti->size;
	uint8_t seen[(PROTO_MAX_MSG / PROTO_FD_DEVICE_WIRE) / 8 + 1];

	if ((uint64_t)count * ti->entry != blen - ti->size)
		return -EBADMSG;
	if (m->type == PROTO_GET_FDS_REPLY) {
		if (wire_get_le32(body + 12))
			return -EBADMSG;
		m->list.ioas_id = wire_get_le32(body + 4);
		m->list.hwpt_id = wire_get_le32(body + 8);
		memset(seen, 0, sizeof(seen));
	} else if (wire_get_le32(body + 4)) {
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < count; i++, e += ti->entry) {
		uint32_t fdi;

		switch (m->type) {
		case PROTO_LIST_DEVICES_REPLY:
			if (decode_device(e))
				return -EBADMSG;
			break;
		case PROTO_LIST_DOMAINS_REPLY:
			if (decode_domain(e))
				return -EBADMSG;
			break;
		case PROTO_GET_FDS_REPLY:
			/* descriptor 0 is the iommufd; each device names its
			 * own, 1 .. count, each once */
			fdi = wire_get_le32(e + 68);
			if (!name_valid(e) || !fdi || fdi > count ||
			    seen[fdi / 8] & 1u << (fdi % 8))
				return -EBADMSG;
			seen[fdi / 8] |= (uint8_t)(1u << (fdi % 8));
			break;
		default:	/* STATS_REPLY: no reserved fields */
			break;
		}
	}
	m->list.count = count;
	m->list.entries = body + ti->size;
	return 0;
}

struct ranges_walk {
	uint64_t pages;
};

static int ranges_count(void *ctx, uint64_t first, uint64_t count)
{
	struct ranges_walk *w = ctx;

	w->pages += count;
	return 0;
}

static int decode_ranges(const uint8_t *body, size_t blen, struct proto_msg *m)
{
	struct proto_ranges *r = &m->ranges;
	const uint8_t *p = body + PROTO_RANGES_FIXED;
	size_t left = blen - PROTO_RANGES_FIXED;
	struct ranges_walk w = { 0 };
	uint64_t next = 0;

	if (wire_get_le32(body + 28))
		return -EBADMSG;
	r->generation = wire_get_le64(body);
	r->domain_id = wire_get_le32(body + 8);
	r->seq = wire_get_le32(body + 12);
	r->total_pages = wire_get_le64(body + 16);
	r->nchunks = wire_get_le32(body + 24);
	r->chunks = p;
	r->chunks_len = left;
	/* each chunk takes at least CHUNK_HEADER_SIZE + 1 bytes */
	if ((uint64_t)r->nchunks * (CHUNK_HEADER_SIZE + 1) > left)
		return -EBADMSG;
	for (uint32_t i = 0; i < r->nchunks; i++) {
		uint64_t first;
		uint32_t span;
		int n;

		n = chunk_decode(p, left, ranges_count, &w);
		if (n < 0)
			return -EBADMSG;
		chunk_peek(p, &first, &span);
		/* in increasing page order, spans disjoint */
		if (i && first < next)
			return -EBADMSG;
		next = first + span;
		p += n;
		left -= (size_t)n;
	}
	if (left || w.pages > r->total_pages)
		return -EBADMSG;
	return 0;
}

static int decode_error(const uint8_t *body, size_t blen, struct proto_msg *m)
{
	uint32_t err = wire_get_le32(body);
	size_t tlen = blen - 8;

	if (!err || err > 4095 || wire_get_le32(body + 4) ||
	    tlen > PROTO_ERROR_TEXT_MAX || memchr(body + 8, 0, tlen))
		return -EBADMSG;
	m->error.err = err;
	m->error.text = (const char *)body + 8;
	m->error.text_len = tlen;
	return 0;
}

static int decode_fixed(const uint8_t *b, struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_HELLO:
		if (wire_get_le32(b + 4))
			return -EBADMSG;
		m->hello = (struct proto_hello){
			.major = wire_get_le16(b),
			.minor = wire_get_le16(b + 2),
			.features = wire_get_le64(b + 8),
			.resume_token = wire_get_le64(b + 16),
		};
		return 0;
	case PROTO_HELLO_REPLY:
		if (wire_get_le32(b + 36))
			return -EBADMSG;
		m->hello_reply = (struct proto_hello_reply){
			.major = wire_get_le16(b),
			.minor = wire_get_le16(b + 2),
			.max_msg = wire_get_le32(b + 4),
			.features = wire_get_le64(b + 8),
			.session_token = wire_get_le64(b + 16),
			.uid = wire_get_le32(b + 24),
			.gid = wire_get_le32(b + 28),
			.session_flags = wire_get_le32(b + 32),
		};
		return 0;
	case PROTO_LIST_DEVICES:
	case PROTO_LIST_DOMAINS:
	case PROTO_OK:
		return 0;
	case PROTO_CREATE_DOMAIN:
		if (wire_get_le32(b + 4) || !name_valid(b + 8) ||
		    wire_get_le32(b) & ~(uint32_t)(PROTO_CREATE_TRACKING |
						   PROTO_CREATE_NO_HUGE_PAGES))
			return -EBADMSG;
		m->create_domain.flags = wire_get_le32(b);
		name_get(m->create_domain.device, b + 8);
		return 0;
	case PROTO_CREATE_DOMAIN_REPLY:
		if (wire_get_le32(b + 12))
			return -EBADMSG;
		m->create_domain_reply = (struct proto_create_domain_reply){
			.domain_id = wire_get_le32(b),
			.dev_id = wire_get_le32(b + 4),
			.status = wire_get_le32(b + 8),
		};
		return 0;
	case PROTO_ATTACH_DEVICE:
	case PROTO_DETACH_DEVICE:
		if (wire_get_le32(b + 4) || !name_valid(b + 8))
			return -EBADMSG;
		m->device_op.domain_id = wire_get_le32(b);
		name_get(m->device_op.device, b + 8);
		return 0;
	case PROTO_ATTACH_DEVICE_REPLY:
		if (wire_get_le32(b + 4))
			return -EBADMSG;
		m->attach_device_reply.dev_id = wire_get_le32(b);
		return 0;
	case PROTO_DESTROY_DOMAIN:
	case PROTO_TRACK_START:
	case PROTO_TRACK_STOP:
	case PROTO_UNSUBSCRIBE:
	case PROTO_SYNC:
	case PROTO_STATS:
	case PROTO_GET_FDS:
	case PROTO_EV_STATE_LOST:
		if (wire_get_le32(b + 4))
			return -EBADMSG;
		m->domain_op.domain_id = wire_get_le32(b);
		return 0;
	case PROTO_MAP:
	case PROTO_UNMAP:
	case PROTO_DMA_WRITE: {
		uint32_t flags = wire_get_le32(b + 4);

		if (m->type == PROTO_MAP ?
		    !(flags & (PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE)) ||
		    flags & ~(uint32_t)(PROTO_MAP_READABLE |
					PROTO_MAP_WRITEABLE |
					PROTO_MAP_EXTERNAL) :
		    m->type == PROTO_UNMAP ?
		    flags & ~(uint32_t)PROTO_MAP_EXTERNAL :
		    flags)
			return -EBADMSG;
		m->map = (struct proto_map){
			.domain_id = wire_get_le32(b),
			.flags = flags,
			.iova = wire_get_le64(b + 8),
			.length = wire_get_le64(b + 16),
		};
		return 0;
	}
	case PROTO_SUBSCRIBE:
		if (wire_get_le32(b + 8) & ~(uint32_t)PROTO_SUBSCRIBE_CLEAN ||
		    wire_get_le32(b + 12))
			return -EBADMSG;
		m->subscribe = (struct proto_subscribe){
			.domain_id = wire_get_le32(b),
			.interval_ms = wire_get_le32(b + 4),
			.flags = wire_get_le32(b + 8),
		};
		return 0;
	case PROTO_SUBSCRIBE_REPLY:
		m->subscribe_reply = (struct proto_subscribe_reply){
			.domain_id = wire_get_le32(b),
			.page_size = wire_get_le64(b + 8),
			.max_leaf = wire_get_le64(b + 16),
			.generation = wire_get_le64(b + 24),
		};
		/* a client divides by these: powers of two, leaf >= page */
		if (wire_get_le32(b + 4) ||
		    !is_pow2(m->subscribe_reply.page_size) ||
		    !is_pow2(m->subscribe_reply.max_leaf) ||
		    m->subscribe_reply.max_leaf < m->subscribe_reply.page_size)
			return -EBADMSG;
		return 0;
	case PROTO_SYNC_REPLY:
		m->sync_reply = (struct proto_sync_reply){
			.generation = wire_get_le64(b),
			.pending_pages = wire_get_le64(b + 8),
		};
		return 0;
	case PROTO_GET_RANGES:
		if (wire_get_le32(b + 4) & ~(uint32_t)PROTO_RANGES_RESEND ||
		    wire_get_le64(b + 8))
			return -EBADMSG;
		m->get_ranges = (struct proto_get_ranges){
			.domain_id = wire_get_le32(b),
			.flags = wire_get_le32(b + 4),
		};
		return 0;
	case PROTO_ACK:
		if (wire_get_le32(b + 4))
			return -EBADMSG;
		m->ack = (struct proto_ack){
			.domain_id = wire_get_le32(b),
			.generation = wire_get_le64(b + 8),
		};
		return 0;
	case PROTO_EV_ROUND:
		if (wire_get_le32(b + 4))
			return -EBADMSG;
		m->ev_round = (struct proto_ev_round){
			.domain_id = wire_get_le32(b),
			.generation = wire_get_le64(b + 8),
			.round_pages = wire_get_le64(b + 16),
			.pending_pages = wire_get_le64(b + 24),
		};
		return 0;
	}
	return -EPROTO;
}

int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m)
{
	const struct proto_type_info *ti;
	const uint8_t *body;
	uint32_t length;
	size_t blen;

	if (!buf || !m || len < PROTO_HEADER_SIZE)
		return -EBADMSG;
	length = wire_get_le32(buf + 4);
	if (len > PROTO_MAX_MSG || length > PROTO_MAX_MSG || length != len)
		return -EMSGSIZE;
	*m = (struct proto_msg){
		.type = wire_get_le16(buf),
		.flags = wire_get_le16(buf + 2),
		.id = wire_get_le64(buf + 8),
	};
	ti = proto_type_info(m->type);
	if (!ti)
		return -EPROTO;
	if (m->flags & ~ti->flags)
		return -EBADMSG;
	/* requests carry an id to echo, events none */
	if ((ti->dir == DIR_REQUEST && !m->id) ||
	    (ti->dir == DIR_EVENT && m->id))
		return -EBADMSG;
	body = buf + PROTO_HEADER_SIZE;
	blen = len - PROTO_HEADER_SIZE;
	if (ti->shape == SHAPE_FIXED ? blen != ti->size : blen < ti->size)
		return -EBADMSG;
	switch (ti->shape) {
	case SHAPE_LIST:
		return decode_list(body, blen, ti, m);
	case SHAPE_RANGES:
		return decode_ranges(body, blen, m);
	case SHAPE_ERROR:
		return decode_error(body, blen, m);
	default:
		return decode_fixed(body, m);
	}
}

/* ---- encoding ---- */

static void put_header(uint8_t *buf, uint16_t type, uint16_t flags,
		       uint32_t length, uint64_t id)
{
	wire_put_le16(buf, type);
	wire_put_le16(buf + 2, flags);
	wire_put_le32(buf + 4, length);
	wire_put_le64(buf + 8, id);
}

/* Error text: up to the first NUL, at most PROTO_ERROR_TEXT_MAX bytes, cut
 * at a UTF-8 character boundary. */
static size_t error_text_len(const char *text, size_t len)
{
	const uint8_t *t = (const uint8_t *)text;
	size_t n;

	if (!text)
		return 0;
	n = strnlen(text, len);
	if (n > PROTO_ERROR_TEXT_MAX) {
		n = PROTO_ERROR_TEXT_MAX;
		while (n && (t[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

static void put_device(uint8_t *p, const struct proto_device *d)
{
	name_put(p, d->name);
	wire_put_le64(p + 64, d->capabilities);
	wire_put_le32(p + 72, d->flags);
	wire_put_le32(p + 76, d->domain_id);
	wire_put_le32(p + 80, d->dev_id);
	wire_put_le32(p + 84, 0);
}

static void put_domain(uint8_t *p, const struct proto_domain *d)
{
	wire_put_le32(p, d->domain_id);
	wire_put_le32(p + 4, d->status);
	wire_put_le32(p + 8, d->owner_uid);
	wire_put_le32(p + 12, d->devices);
	wire_put_le64(p + 16, d->mapped_bytes);
	wire_put_le64(p + 24, d->page_size);
	wire_put_le64(p + 32, d->generation);
	wire_put_le32(p + 40, d->subscribers);
	wire_put_le32(p + 44, 0);
}

static void put_stats(uint8_t *p, const struct proto_stats *s)
{
	wire_put_le32(p, s->domain_id);
	wire_put_le32(p + 4, s->status);
	wire_put_le64(p + 8, s->generation);
	wire_put_le64(p + 16, s->last_round_ns);
	wire_put_le64(p + 24, s->last_round_pages);
	wire_put_le64(p + 32, s->dirty_rate);
	wire_put_le64(p + 40, s->mapped_bytes);
	wire_put_le64(p + 48, s->pending_pages);
	wire_put_le64(p + 56, s->pages_sent);
}

static void put_fd_device(uint8_t *p, const struct proto_fd_device *d)
{
	name_put(p, d->name);
	wire_put_le32(p + 64, d->dev_id);
	wire_put_le32(p + 68, d->fd_index);
}

/* Body size of @m as encoded. */
static size_t encode_body_size(const struct proto_msg *m,
			       const struct proto_type_info *ti)
{
	switch (ti->shape) {
	case SHAPE_LIST:
		return ti->size + (size_t)m->list.count * ti->entry;
	case SHAPE_RANGES:
		return ti->size + m->ranges.chunks_len;
	case SHAPE_ERROR:
		return ti->size + error_text_len(m->error.text,
						 m->error.text_len);
	default:
		return ti->size;
	}
}

static void encode_fixed(const struct proto_msg *m, uint8_t *b)
{
	switch (m->type) {
	case PROTO_HELLO:
		wire_put_le16(b, m->hello.major);
		wire_put_le16(b + 2, m->hello.minor);
		wire_put_le64(b + 8, m->hello.features);
		wire_put_le64(b + 16, m->hello.resume_token);
		break;
	case PROTO_HELLO_REPLY:
		wire_put_le16(b, m->hello_reply.major);
		wire_put_le16(b + 2, m->hello_reply.minor);
		wire_put_le32(b + 4, m->hello_reply.max_msg);
		wire_put_le64(b + 8, m->hello_reply.features);
		wire_put_le64(b + 16, m->hello_reply.session_token);
		wire_put_le32(b + 24, m->hello_reply.uid);
		wire_put_le32(b + 28, m->hello_reply.gid);
		wire_put_le32(b + 32, m->hello_reply.session_flags);
		break;
	case PROTO_CREATE_DOMAIN:
		wire_put_le32(b, m->create_domain.flags);
		name_put(b + 8, m->create_domain.device);
		break;
	case PROTO_CREATE_DOMAIN_REPLY:
		wire_put_le32(b, m->create_domain_reply.domain_id);
		wire_put_le32(b + 4, m->create_domain_reply.dev_id);
		wire_put_le32(b + 8, m->create_domain_reply.status);
		break;
	case PROTO_ATTACH_DEVICE:
	case PROTO_DETACH_DEVICE:
		wire_put_le32(b, m->device_op.domain_id);
		name_put(b + 8, m->device_op.device);
		break;
	case PROTO_ATTACH_DEVICE_REPLY:
		wire_put_le32(b, m->attach_device_reply.dev_id);
		break;
	case PROTO_DESTROY_DOMAIN:
	case PROTO_TRACK_START:
	case PROTO_TRACK_STOP:
	case PROTO_UNSUBSCRIBE:
	case PROTO_SYNC:
	case PROTO_STATS:
	case PROTO_GET_FDS:
	case PROTO_EV_STATE_LOST:
		wire_put_le32(b, m->domain_op.domain_id);
		break;
	case PROTO_MAP:
	case PROTO_UNMAP:
	case PROTO_DMA_WRITE:
		wire_put_le32(b, m->map.domain_id);
		wire_put_le32(b + 4, m->map.flags);
		wire_put_le64(b + 8, m->map.iova);
		wire_put_le64(b + 16, m->map.length);
		break;
	case PROTO_SUBSCRIBE:
		wire_put_le32(b, m->subscribe.domain_id);
		wire_put_le32(b + 4, m->subscribe.interval_ms);
		wire_put_le32(b + 8, m->subscribe.flags);
		break;
	case PROTO_SUBSCRIBE_REPLY:
		wire_put_le32(b, m->subscribe_reply.domain_id);
		wire_put_le64(b + 8, m->subscribe_reply.page_size);
		wire_put_le64(b + 16, m->subscribe_reply.max_leaf);
		wire_put_le64(b + 24, m->subscribe_reply.generation);
		break;
	case PROTO_SYNC_REPLY:
		wire_put_le64(b, m->sync_reply.generation);
		wire_put_le64(b + 8, m->sync_reply.pending_pages);
		break;
	case PROTO_GET_RANGES:
		wire_put_le32(b, m->get_ranges.domain_id);
		wire_put_le32(b + 4, m->get_ranges.flags);
		break;
	case PROTO_ACK:
		wire_put_le32(b, m->ack.domain_id);
		wire_put_le64(b + 8, m->ack.generation);
		break;
	case PROTO_EV_ROUND:
		wire_put_le32(b, m->ev_round.domain_id);
		wire_put_le64(b + 8, m->ev_round.generation);
		wire_put_le64(b + 16, m->ev_round.round_pages);
		wire_put_le64(b + 24, m->ev_round.pending_pages);
		break;
	}
}

static int encode_names_valid(const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_CREATE_DOMAIN: {
		size_t n = strnlen(m->create_domain.device, PROTO_NAME_MAX);

		return n && n < PROTO_NAME_MAX ? 0 : -EINVAL;
	}
	case PROTO_ATTACH_DEVICE:
	case PROTO_DETACH_DEVICE: {
		size_t n = strnlen(m->device_op.device, PROTO_NAME_MAX);

		return n && n < PROTO_NAME_MAX ? 0 : -EINVAL;
	}
	default:
		return 0;
	}
}

int proto_encode(const struct proto_msg *m, uint8_t *buf, size_t cap)
{
	const struct proto_type_info *ti;
	struct proto_msg check;
	uint8_t *b;
	size_t len;
	int r;

	if (!m || !buf)
		return -EINVAL;
	ti = proto_type_info(m->type);
	if (!ti || encode_names_valid(m))
		return -EINVAL;
	if ((ti->shape == SHAPE_LIST && m->list.count && !m->list.entries) ||
	    (ti->shape == SHAPE_RANGES && m->ranges.chunks_len &&
	     !m->ranges.chunks))
		return -EINVAL;
	len = PROTO_HEADER_SIZE + encode_body_size(m, ti);
	if (len > PROTO_MAX_MSG || len > cap)
		return -EMSGSIZE;

	memset(buf, 0, len);
	put_header(buf, m->type, m->flags, (uint32_t)len, m->id);
	b = buf + PROTO_HEADER_SIZE;
	switch (ti->shape) {
	case SHAPE_LIST:
		wire_put_le32(b, m->list.count);
		if (m->type == PROTO_GET_FDS_REPLY) {
			wire_put_le32(b + 4, m->list.ioas_id);
			wire_put_le32(b + 8, m->list.hwpt_id);
		}
		if (m->list.count)
			memcpy(b + ti->size, m->list.entries,
			       (size_t)m->list.count * ti->entry);
		break;
	case SHAPE_RANGES:
		wire_put_le64(b, m->ranges.generation);
		wire_put_le32(b + 8, m->ranges.domain_id);
		wire_put_le32(b + 12, m->ranges.seq);
		wire_put_le64(b + 16, m->ranges.total_pages);
		wire_put_le32(b + 24, m->ranges.nchunks);
		if (m->ranges.chunks_len)
			memcpy(b + PROTO_RANGES_FIXED, m->ranges.chunks,
			       m->ranges.chunks_len);
		break;
	case SHAPE_ERROR:
		wire_put_le32(b, m->error.err);
		if (len > PROTO_HEADER_SIZE + 8)
			memcpy(b + 8, m->error.text,
			       len - PROTO_HEADER_SIZE - 8);
		break;
	default:
		encode_fixed(m, b);
		break;
	}
	/* never put on the wire what a peer would refuse */
	r = proto_decode(buf, len, &check);
	return r ? -EINVAL : (int)len;
}

/* ---- list replies ---- */

int proto_list_begin(struct proto_list_builder *lb, uint8_t *buf, size_t cap,
		     uint16_t type, uint64_t id)
{
	const struct proto_type_info *ti = proto_type_info(type);

	if (!lb || !buf || !ti || ti->shape != SHAPE_LIST)
		return -EINVAL;
	if (cap > PROTO_MAX_MSG)
		cap = PROTO_MAX_MSG;
	if (cap < PROTO_HEADER_SIZE + ti->size)
		return -EMSGSIZE;
	*lb = (struct proto_list_builder){
		.buf = buf,
		.cap = cap,
		.len = PROTO_HEADER_SIZE + ti->size,
		.entry_size = ti->entry,
		.count_off = PROTO_HEADER_SIZE,
	};
	memset(buf, 0, lb->len);
	put_header(buf, type, 0, (uint32_t)lb->len, id);
	return 0;
}

static uint8_t *list_slot(struct proto_list_builder *lb, uint16_t type,
			  int *r)
{
	uint8_t *p;

	if (!lb || !lb->buf || wire_get_le16(lb->buf) != type) {
		*r = -EINVAL;
		return NULL;
	}
	if (lb->len + lb->entry_size > lb->cap) {
		*r = -ENOSPC;
		return NULL;
	}
	p = lb->buf + lb->len;
	lb->len += lb->entry_size;
	lb->count++;
	*r = 0;
	return p;
}

static bool name_ok(const char *name)
{
	size_t n = strnlen(name, PROTO_NAME_MAX);

	return n && n < PROTO_NAME_MAX;
}

int proto_list_add_device(struct proto_list_builder *lb,
			  const struct proto_device *d)
{
	uint8_t *p;
	int r;

	if (!d || !name_ok(d->name))
		return -EINVAL;
	p = list_slot(lb, PROTO_LIST_DEVICES_REPLY, &r);
	if (p)
		put_device(p, d);
	return r;
}

int proto_list_add_domain(struct proto_list_builder *lb,
			  const struct proto_domain *d)
{
	uint8_t *p;
	int r;

	if (!d)
		return -EINVAL;
	p = list_slot(lb, PROTO_LIST_DOMAINS_REPLY, &r);
	if (p)
		put_domain(p, d);
	return r;
}

int proto_list_add_stats(struct proto_list_builder *lb,
			 const struct proto_stats *s)
{
	uint8_t *p;
	int r;

	if (!s)
		return -EINVAL;
	p = list_slot(lb, PROTO_STATS_REPLY, &r);
	if (p)
		put_stats(p, s);
	return r;
}

int proto_list_add_fd_device(struct proto_list_builder *lb,
			     const struct proto_fd_device *d)
{
	uint8_t *p;
	int r;

	if (!d || !name_ok(d->name) || !d->fd_index)
		return -EINVAL;
	p = list_slot(lb, PROTO_GET_FDS_REPLY, &r);
	if (p)
		put_fd_device(p, d);
	return r;
}

void proto_list_set_fds_ids(struct proto_list_builder *lb, uint32_t ioas_id,
			    uint32_t hwpt_id)
{
	if (!lb || !lb->buf || wire_get_le16(lb->buf) != PROTO_GET_FDS_REPLY)
		return;
	wire_put_le32(lb->buf + PROTO_HEADER_SIZE + 4, ioas_id);
	wire_put_le32(lb->buf + PROTO_HEADER_SIZE + 8, hwpt_id);
}

int proto_list_end(struct proto_list_builder *lb, bool more)
{
	struct proto_msg check;

	if (!lb || !lb->buf)
		return -EINVAL;
	wire_put_le16(lb->buf + 2, more ? PROTO_F_MORE : 0);
	wire_put_le32(lb->buf + 4, (uint32_t)lb->len);
	wire_put_le32(lb->buf + lb->count_off, lb->count);
	/* GET_FDS_REPLY: one packet (it carries the descriptors), each fd
	 * index 1 .. count once; the decoder says whether it is so */
	if (wire_get_le16(lb->buf) == PROTO_GET_FDS_REPLY &&
	    (more || proto_decode(lb->buf, lb->len, &check)))
		return -EINVAL;
	return (int)lb->len;
}

static const uint8_t *list_entry(const struct proto_msg *m, uint16_t type,
				 uint32_t i)
{
	const struct proto_type_info *ti = proto_type_info(type);

	return m->list.entries + (size_t)i * ti->entry;
}

void proto_device_at(const struct proto_msg *m, uint32_t i,
		     struct proto_device *d)
{
	const uint8_t *p = list_entry(m, PROTO_LIST_DEVICES_REPLY, i);

	name_get(d->name, p);
	d->capabilities = wire_get_le64(p + 64);
	d->flags = wire_get_le32(p + 72);
	d->domain_id = wire_get_le32(p + 76);
	d->dev_id = wire_get_le32(p + 80);
}

void proto_domain_at(const struct proto_msg *m, uint32_t i,
		     struct proto_domain *d)
{
	const uint8_t *p = list_entry(m, PROTO_LIST_DOMAINS_REPLY, i);

	*d = (struct proto_domain){
		.domain_id = wire_get_le32(p),
		.status = wire_get_le32(p + 4),
		.owner_uid = wire_get_le32(p + 8),
		.devices = wire_get_le32(p + 12),
		.mapped_bytes = wire_get_le64(p + 16),
		.page_size = wire_get_le64(p + 24),
		.generation = wire_get_le64(p + 32),
		.subscribers = wire_get_le32(p + 40),
	};
}

void proto_stats_at(const struct proto_msg *m, uint32_t i,
		    struct proto_stats *s)
{
	const uint8_t *p = list_entry(m, PROTO_STATS_REPLY, i);

	*s = (struct proto_stats){
		.domain_id = wire_get_le32(p),
		.status = wire_get_le32(p + 4),
		.generation = wire_get_le64(p + 8),
		.last_round_ns = wire_get_le64(p + 16),
		.last_round_pages = wire_get_le64(p + 24),
		.dirty_rate = wire_get_le64(p + 32),
		.mapped_bytes = wire_get_le64(p + 40),
		.pending_pages = wire_get_le64(p + 48),
		.pages_sent = wire_get_le64(p + 56),
	};
}

void proto_fd_device_at(const struct proto_msg *m, uint32_t i,
			struct proto_fd_device *d)
{
	const uint8_t *p = list_entry(m, PROTO_GET_FDS_REPLY, i);

	name_get(d->name, p);
	d->dev_id = wire_get_le32(p + 64);
	d->fd_index = wire_get_le32(p + 68);
}

/* ---- RANGES packets ---- */

int proto_ranges_begin(struct proto_ranges_builder *rb, uint8_t *buf,
		       size_t cap, uint64_t id, const struct proto_ranges *r)
{
	uint8_t *b;

	if (!rb || !buf || !r)
		return -EINVAL;
	if (cap > PROTO_MAX_MSG)
		cap = PROTO_MAX_MSG;
	if (cap < PROTO_HEADER_SIZE + PROTO_RANGES_FIXED)
		return -EMSGSIZE;
	*rb = (struct proto_ranges_builder){
		.buf = buf,
		.cap = cap,
		.len = PROTO_HEADER_SIZE + PROTO_RANGES_FIXED,
	};
	memset(buf, 0, rb->len);
	put_header(buf, PROTO_RANGES, 0, (uint32_t)rb->len, id);
	b = buf + PROTO_HEADER_SIZE;
	wire_put_le64(b, r->generation);
	wire_put_le32(b + 8, r->domain_id);
	wire_put_le32(b + 12, r->seq);
	wire_put_le64(b + 16, r->total_pages);
	return 0;
}

int proto_ranges_add(struct proto_ranges_builder *rb, const uint8_t *chunk,
		     size_t len)
{
	/* cheap checks only: the chunk comes from chunk_encode() */
	if (!rb || !rb->buf || !chunk || len <= CHUNK_HEADER_SIZE ||
	    len > CHUNK_MAX_SIZE ||
	    wire_get_le16(chunk + 14) != len - CHUNK_HEADER_SIZE)
		return -EINVAL;
	if (rb->len + len > rb->cap)
		return -ENOSPC;
	memcpy(rb->buf + rb->len, chunk, len);
	rb->len += len;
	rb->nchunks++;
	return 0;
}

int proto_ranges_end(struct proto_ranges_builder *rb, bool more)
{
	if (!rb || !rb->buf)
		return -EINVAL;
	wire_put_le16(rb->buf + 2, more ? PROTO_F_MORE : 0);
	wire_put_le32(rb->buf + 4, (uint32_t)rb->len);
	wire_put_le32(rb->buf + PROTO_HEADER_SIZE + 24, rb->nchunks);
	return (int)rb->len;
}
