// SPDX-License-Identifier: MIT
/*
 * The wire codec: one table row per message type fixes its direction, its
 * shape (fixed body, list, error text, range chunks), its size, the header
 * flags it may carry and the layout of its fixed part (and of a list's
 * entries): where each field sits, which are reserved and which are names.
 * One walk of a layout decodes, encodes and checks every message, so the
 * per-type code is left with the values a field may take (fixed_valid())
 * and what follows the fixed part.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
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
	SHAPE_TEXT,	/* @size bytes, then lines of text (METRICS_REPLY) */
	SHAPE_READOPT,	/* @size bytes, then devices, then ranges */
};

/*
 * One field of a body: where it sits on the wire and in the C struct.  Its
 * width is the member's size: 2, 4 or 8 (little-endian integers) or
 * PROTO_NAME_MAX (a str64).  Reserved fields have no member: they must read
 * as zero and are written as zero.
 */
struct proto_field {
	uint16_t wire;
	uint16_t mem;
	uint8_t size;
	bool reserved;
};

struct proto_layout {
	const struct proto_field *f;
	size_t n;
};

#define FIELD(w, s, m) {						\
	.wire = (w), .mem = offsetof(s, m), .size = sizeof(((s *)0)->m) }
#define MSG(w, m) FIELD(w, struct proto_msg, m)
#define RSVD(w, n) { .wire = (w), .size = (n), .reserved = true }
#define LAYOUT(a) { .f = (a), .n = sizeof(a) / sizeof((a)[0]) }

/* Fixed bodies and the fixed parts of the others, on struct proto_msg. */
static const struct proto_field hello_body[] = {
	MSG(0, hello.major), MSG(2, hello.minor), RSVD(4, 4),
	MSG(8, hello.features), MSG(16, hello.resume_token),
};
static const struct proto_field hello_reply_body[] = {
	MSG(0, hello_reply.major), MSG(2, hello_reply.minor),
	MSG(4, hello_reply.max_msg), MSG(8, hello_reply.features),
	MSG(16, hello_reply.session_token), MSG(24, hello_reply.uid),
	MSG(28, hello_reply.gid), MSG(32, hello_reply.session_flags),
	RSVD(36, 4),
};
static const struct proto_field create_domain_body[] = {
	MSG(0, create_domain.flags), RSVD(4, 4), MSG(8, create_domain.device),
};
static const struct proto_field create_domain_reply_body[] = {
	MSG(0, create_domain_reply.domain_id),
	MSG(4, create_domain_reply.dev_id),
	MSG(8, create_domain_reply.status), RSVD(12, 4),
};
static const struct proto_field device_op_body[] = {
	MSG(0, device_op.domain_id), RSVD(4, 4), MSG(8, device_op.device),
};
static const struct proto_field attach_device_reply_body[] = {
	MSG(0, attach_device_reply.dev_id), RSVD(4, 4),
};
static const struct proto_field domain_op_body[] = {
	MSG(0, domain_op.domain_id), RSVD(4, 4),
};
static const struct proto_field map_body[] = {
	MSG(0, map.domain_id), MSG(4, map.flags), MSG(8, map.iova),
	MSG(16, map.length),
};
static const struct proto_field subscribe_body[] = {
	MSG(0, subscribe.domain_id), MSG(4, subscribe.interval_ms),
	MSG(8, subscribe.flags), RSVD(12, 4),
};
static const struct proto_field subscribe_reply_body[] = {
	MSG(0, subscribe_reply.domain_id), RSVD(4, 4),
	MSG(8, subscribe_reply.page_size), MSG(16, subscribe_reply.max_leaf),
	MSG(24, subscribe_reply.generation),
};
static const struct proto_field sync_reply_body[] = {
	MSG(0, sync_reply.generation), MSG(8, sync_reply.pending_pages),
};
static const struct proto_field get_ranges_body[] = {
	MSG(0, get_ranges.domain_id), MSG(4, get_ranges.flags), RSVD(8, 8),
};
static const struct proto_field ack_body[] = {
	MSG(0, ack.domain_id), RSVD(4, 4), MSG(8, ack.generation),
};
static const struct proto_field ev_round_body[] = {
	MSG(0, ev_round.domain_id), RSVD(4, 4), MSG(8, ev_round.generation),
	MSG(16, ev_round.round_pages), MSG(24, ev_round.pending_pages),
};
static const struct proto_field list_body[] = {
	MSG(0, list.count), RSVD(4, 4),
};
static const struct proto_field fds_list_body[] = {
	MSG(0, list.ioas_id), MSG(4, list.hwpt_id), MSG(8, list.count),
	RSVD(12, 4),
};
static const struct proto_field ranges_body[] = {
	MSG(0, ranges.generation), MSG(8, ranges.domain_id),
	MSG(12, ranges.seq), MSG(16, ranges.total_pages),
	MSG(24, ranges.nchunks), RSVD(28, 4),
};
static const struct proto_field metrics_reply_body[] = {
	MSG(0, metrics.seq), RSVD(4, 4),
};
static const struct proto_field adopt_reply_body[] = {
	MSG(0, list.ioas_id), MSG(4, list.hwpt_id), MSG(8, list.status),
	MSG(12, list.count), MSG(16, list.page_size), MSG(24, list.max_leaf),
	MSG(32, list.adopt_flags), RSVD(36, 4), MSG(40, list.lease),
};
static const struct proto_field readopt_body[] = {
	MSG(0, readopt.flags), MSG(4, readopt.ioas_id),
	MSG(8, readopt.hwpt_id), MSG(12, readopt.ndevices),
	MSG(16, readopt.nranges), RSVD(20, 4), MSG(24, readopt.lease),
};
static const struct proto_field readopt_reply_body[] = {
	MSG(0, readopt_reply.domain_id), MSG(4, readopt_reply.status),
	MSG(8, readopt_reply.lease),
};
static const struct proto_field error_body[] = {
	MSG(0, error.err), RSVD(4, 4),
};

/* List entries, on their own structs. */
static const struct proto_field device_entry[] = {
	FIELD(0, struct proto_device, name),
	FIELD(64, struct proto_device, capabilities),
	FIELD(72, struct proto_device, flags),
	FIELD(76, struct proto_device, domain_id),
	FIELD(80, struct proto_device, dev_id),
	RSVD(84, 4),
};
static const struct proto_field domain_entry[] = {
	FIELD(0, struct proto_domain, domain_id),
	FIELD(4, struct proto_domain, status),
	FIELD(8, struct proto_domain, owner_uid),
	FIELD(12, struct proto_domain, devices),
	FIELD(16, struct proto_domain, mapped_bytes),
	FIELD(24, struct proto_domain, page_size),
	FIELD(32, struct proto_domain, generation),
	FIELD(40, struct proto_domain, subscribers),
	RSVD(44, 4),
};
static const struct proto_field stats_entry[] = {
	FIELD(0, struct proto_stats, domain_id),
	FIELD(4, struct proto_stats, status),
	FIELD(8, struct proto_stats, generation),
	FIELD(16, struct proto_stats, last_round_ns),
	FIELD(24, struct proto_stats, last_round_pages),
	FIELD(32, struct proto_stats, dirty_rate),
	FIELD(40, struct proto_stats, mapped_bytes),
	FIELD(48, struct proto_stats, pending_pages),
	FIELD(56, struct proto_stats, pages_sent),
};
static const struct proto_field source_entry[] = {
	FIELD(0, struct proto_source, domain_id),
	FIELD(4, struct proto_source, kind),
	FIELD(8, struct proto_source, id),
	FIELD(12, struct proto_source, devices),
	FIELD(16, struct proto_source, device),
	FIELD(80, struct proto_source, page_size),
	FIELD(88, struct proto_source, ranges),
	FIELD(92, struct proto_source, max_ranges),
	FIELD(96, struct proto_source, rounds),
	FIELD(104, struct proto_source, errors),
	FIELD(112, struct proto_source, restarts),
};
static const struct proto_field fd_device_entry[] = {
	FIELD(0, struct proto_fd_device, name),
	FIELD(64, struct proto_fd_device, dev_id),
	FIELD(68, struct proto_fd_device, fd_index),
};

static const struct proto_field adopt_device_entry[] = {
	FIELD(0, struct proto_adopt_device, name),
	FIELD(64, struct proto_adopt_device, dev_id),
	FIELD(68, struct proto_adopt_device, fd_index),
	FIELD(72, struct proto_adopt_device, dev_flags),
	RSVD(76, 4),
};
static const struct proto_field range_entry[] = {
	FIELD(0, struct proto_range, iova),
	FIELD(8, struct proto_range, length),
};
static const struct proto_layout adopt_device_layout =
	LAYOUT(adopt_device_entry);
static const struct proto_layout range_layout = LAYOUT(range_entry);

#undef MSG
#undef FIELD
#undef RSVD

struct proto_type_info {
	uint16_t type;
	uint8_t dir;
	uint8_t shape;
	uint16_t flags;		/* header flags allowed */
	uint32_t size;
	uint32_t entry;
	const char *name;
	struct proto_layout body;	/* the first @size bytes */
	struct proto_layout entries;	/* SHAPE_LIST: each entry */
};

#define ROW(t, d, s, f, sz, ...) {					\
	.type = PROTO_##t, .dir = d, .shape = s, .flags = f,		\
	.size = sz, .name = #t, __VA_ARGS__ }
#define BODY(a) .body = LAYOUT(a)
#define ENTRIES(a, sz) .entries = LAYOUT(a), .entry = sz

static const struct proto_type_info proto_types[] = {
	ROW(HELLO, DIR_REQUEST, SHAPE_FIXED, 0, 24, BODY(hello_body)),
	ROW(LIST_DEVICES, DIR_REQUEST, SHAPE_FIXED, 0, 0),
	ROW(LIST_DOMAINS, DIR_REQUEST, SHAPE_FIXED, 0, 0),
	ROW(CREATE_DOMAIN, DIR_REQUEST, SHAPE_FIXED, 0, 72,
	    BODY(create_domain_body)),
	ROW(ATTACH_DEVICE, DIR_REQUEST, SHAPE_FIXED, 0, 72,
	    BODY(device_op_body)),
	ROW(DETACH_DEVICE, DIR_REQUEST, SHAPE_FIXED, 0, 72,
	    BODY(device_op_body)),
	ROW(DESTROY_DOMAIN, DIR_REQUEST, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),
	ROW(MAP, DIR_REQUEST, SHAPE_FIXED, 0, 24, BODY(map_body)),
	ROW(UNMAP, DIR_REQUEST, SHAPE_FIXED, 0, 24, BODY(map_body)),
	ROW(TRACK_START, DIR_REQUEST, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),
	ROW(TRACK_STOP, DIR_REQUEST, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),
	ROW(SUBSCRIBE, DIR_REQUEST, SHAPE_FIXED, 0, 16,
	    BODY(subscribe_body)),
	ROW(UNSUBSCRIBE, DIR_REQUEST, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),
	ROW(SYNC, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(GET_RANGES, DIR_REQUEST, SHAPE_FIXED, 0, 16,
	    BODY(get_ranges_body)),
	ROW(ACK, DIR_REQUEST, SHAPE_FIXED, 0, 16, BODY(ack_body)),
	ROW(STATS, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(GET_FDS, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(DMA_WRITE, DIR_REQUEST, SHAPE_FIXED, 0, 24, BODY(map_body)),
	ROW(METRICS, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(ADOPT, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(UNADOPT, DIR_REQUEST, SHAPE_FIXED, 0, 8, BODY(domain_op_body)),
	ROW(READOPT, DIR_REQUEST, SHAPE_READOPT, 0, PROTO_READOPT_FIXED,
	    BODY(readopt_body)),
	ROW(LIST_SOURCES, DIR_REQUEST, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),

	ROW(HELLO_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 40,
	    BODY(hello_reply_body)),
	ROW(LIST_DEVICES_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    BODY(list_body), ENTRIES(device_entry, PROTO_DEVICE_WIRE)),
	ROW(LIST_DOMAINS_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    BODY(list_body), ENTRIES(domain_entry, PROTO_DOMAIN_WIRE)),
	ROW(CREATE_DOMAIN_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 16,
	    BODY(create_domain_reply_body)),
	ROW(ATTACH_DEVICE_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 8,
	    BODY(attach_device_reply_body)),
	ROW(OK, DIR_REPLY, SHAPE_FIXED, 0, 0),
	ROW(SUBSCRIBE_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 32,
	    BODY(subscribe_reply_body)),
	ROW(SYNC_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 16,
	    BODY(sync_reply_body)),
	ROW(RANGES, DIR_REPLY, SHAPE_RANGES, PROTO_F_MORE,
	    PROTO_RANGES_FIXED, BODY(ranges_body)),
	ROW(STATS_REPLY, DIR_REPLY, SHAPE_LIST, PROTO_F_MORE, 8,
	    BODY(list_body), ENTRIES(stats_entry, PROTO_STATS_WIRE)),
	/* one packet: it carries the descriptors */
	ROW(GET_FDS_REPLY, DIR_REPLY, SHAPE_LIST, 0, 16,
	    BODY(fds_list_body), ENTRIES(fd_device_entry,
					 PROTO_FD_DEVICE_WIRE)),
	/* one packet: it carries the descriptors */
	ROW(ADOPT_REPLY, DIR_REPLY, SHAPE_LIST, 0, PROTO_ADOPT_FIXED,
	    BODY(adopt_reply_body), ENTRIES(adopt_device_entry,
					    PROTO_ADOPT_DEVICE_WIRE)),
	ROW(READOPT_REPLY, DIR_REPLY, SHAPE_FIXED, 0, 16,
	    BODY(readopt_reply_body)),
	ROW(LIST_SOURCES_REPLY, DIR_REPLY, SHAPE_LIST, 0, 8,
	    BODY(list_body), ENTRIES(source_entry, PROTO_SOURCE_WIRE)),
	ROW(METRICS_REPLY, DIR_REPLY, SHAPE_TEXT, PROTO_F_MORE,
	    PROTO_METRICS_FIXED, BODY(metrics_reply_body)),
	ROW(ERROR, DIR_REPLY, SHAPE_ERROR, 0, 8, BODY(error_body)),

	ROW(EV_ROUND, DIR_EVENT, SHAPE_FIXED, 0, 32, BODY(ev_round_body)),
	ROW(EV_STATE_LOST, DIR_EVENT, SHAPE_FIXED, 0, 8,
	    BODY(domain_op_body)),
};

#undef ENTRIES
#undef BODY
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

/*
 * The length of the valid UTF-8 character at @p (@n bytes left), 0 if
 * there is none: RFC 3629, shortest form, no surrogates, at most U+10FFFF,
 * and no control character (U+0000 .. U+001F, U+007F).
 */
static size_t utf8_char(const uint8_t *p, size_t n)
{
	uint32_t c;
	size_t len;

	if (!n)
		return 0;
	if (p[0] < 0x80)
		return p[0] >= 0x20 && p[0] != 0x7f;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

bool proto_text_valid(const void *text, size_t n)
{
	const uint8_t *p = text;

	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_char(p + i, n - i)))
			return false;
	return true;
}

bool proto_metrics_text_valid(const void *text, size_t n)
{
	const uint8_t *p = text;

	if (n && p[n - 1] != '\n')
		return false;
	for (size_t i = 0; i < n;) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t len = (size_t)(nl - (p + i));

		if (!proto_text_valid(p + i, len))
			return false;
		i += len + 1;
	}
	return true;
}

/*
 * @text as ERROR text into @dst: up to its first NUL, each byte that does
 * not start a valid character (proto_text_valid()) replaced by '?', cut
 * at a character boundary to at most PROTO_ERROR_TEXT_MAX bytes.  Returns
 * the length.
 */
static size_t error_text_put(uint8_t *dst, const char *text, size_t len)
{
	const uint8_t *t = (const uint8_t *)text;
	size_t n = 0;

	if (!text)
		return 0;
	len = strnlen(text, len);
	for (size_t i = 0, k; i < len; i += k) {
		k = utf8_char(t + i, len - i);
		if (n + (k ? k : 1) > PROTO_ERROR_TEXT_MAX)
			break;
		if (k) {
			if (dst)
				memcpy(dst + n, t + i, k);
			n += k;
		} else {
			if (dst)
				dst[n] = '?';
			n++;
			k = 1;
		}
	}
	return n;
}

/* A str64: 1 .. PROTO_NAME_MAX - 1 bytes of text, then NULs to the end. */
static bool name_valid(const uint8_t *p)
{
	size_t n = strnlen((const char *)p, PROTO_NAME_MAX);

	if (!n || n == PROTO_NAME_MAX || !proto_text_valid(p, n))
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

static bool name_ok(const char *name)
{
	size_t n = strnlen(name, PROTO_NAME_MAX);

	return n && n < PROTO_NAME_MAX && proto_text_valid(name, n);
}

/* ---- layouts ---- */

/* Reserved fields zero, names well formed. */
static bool fields_valid(const uint8_t *p, const struct proto_layout *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct proto_field *f = &l->f[i];

		if (f->reserved ? (f->size == 8 ? wire_get_le64(p + f->wire) :
				   wire_get_le32(p + f->wire)) != 0 :
		    f->size == PROTO_NAME_MAX && !name_valid(p + f->wire))
			return false;
	}
	return true;
}

static void fields_get(void *dst, const uint8_t *p,
		       const struct proto_layout *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct proto_field *f = &l->f[i];
		uint8_t *d = (uint8_t *)dst + f->mem;
		uint16_t v16;
		uint32_t v32;
		uint64_t v64;

		if (f->reserved)
			continue;
		switch (f->size) {
		case 2:
			v16 = wire_get_le16(p + f->wire);
			memcpy(d, &v16, sizeof(v16));
			break;
		case 4:
			v32 = wire_get_le32(p + f->wire);
			memcpy(d, &v32, sizeof(v32));
			break;
		case 8:
			v64 = wire_get_le64(p + f->wire);
			memcpy(d, &v64, sizeof(v64));
			break;
		default:
			name_get((char *)d, p + f->wire);
			break;
		}
	}
}

/* Names must have passed names_ok(). */
static void fields_put(uint8_t *p, const void *src,
		       const struct proto_layout *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct proto_field *f = &l->f[i];
		const uint8_t *s = (const uint8_t *)src + f->mem;
		uint16_t v16;
		uint32_t v32;
		uint64_t v64;

		if (f->reserved) {
			memset(p + f->wire, 0, f->size);
			continue;
		}
		switch (f->size) {
		case 2:
			memcpy(&v16, s, sizeof(v16));
			wire_put_le16(p + f->wire, v16);
			break;
		case 4:
			memcpy(&v32, s, sizeof(v32));
			wire_put_le32(p + f->wire, v32);
			break;
		case 8:
			memcpy(&v64, s, sizeof(v64));
			wire_put_le64(p + f->wire, v64);
			break;
		default:
			name_put(p + f->wire, (const char *)s);
			break;
		}
	}
}

static bool names_ok(const void *src, const struct proto_layout *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct proto_field *f = &l->f[i];

		if (!f->reserved && f->size == PROTO_NAME_MAX &&
		    !name_ok((const char *)src + f->mem))
			return false;
	}
	return true;
}

/* ---- decoding ---- */

static int decode_list(const uint8_t *body, size_t blen,
		       const struct proto_type_info *ti, struct proto_msg *m)
{
	uint32_t count = m->list.count;
	const uint8_t *e = body + ti->size;
	uint8_t seen[(PROTO_MAX_MSG / PROTO_FD_DEVICE_WIRE) / 8 + 1];

	bool fds = m->type == PROTO_GET_FDS_REPLY ||
		   m->type == PROTO_ADOPT_REPLY;

	if ((uint64_t)count * ti->entry != blen - ti->size)
		return -EBADMSG;
	if (fds)
		memset(seen, 0, sizeof(seen));
	for (uint32_t i = 0; i < count; i++, e += ti->entry) {
		uint32_t fdi;

		if (!fields_valid(e, &ti->entries))
			return -EBADMSG;
		if (!fds)
			continue;
		/* descriptor 0 is the iommufd; each device names its own,
		 * 1 .. count, each once (ADOPT_REPLY: 0 for none) */
		fdi = wire_get_le32(e + 68);
		if (!fdi && m->type == PROTO_ADOPT_REPLY)
			continue;
		if (!fdi || fdi > count || seen[fdi / 8] & 1u << (fdi % 8))
			return -EBADMSG;
		seen[fdi / 8] |= (uint8_t)(1u << (fdi % 8));
	}
	m->list.entries = body + ti->size;
	return 0;
}

int proto_ranges_decode(const struct proto_ranges *r, struct extent *runs,
			size_t cap, chunk_batch_fn fn, void *ctx)
{
	const uint8_t *p = r->chunks;
	size_t left = r->chunks_len;
	uint64_t next = 0;

	for (uint32_t i = 0; i < r->nchunks; i++) {
		uint64_t first;
		uint32_t span;
		int n = chunk_size(p, left);

		if (n < 0)
			return -EBADMSG;
		/* in increasing page order, spans disjoint */
		chunk_peek(p, &first, &span);
		if (i && first < next)
			return -EBADMSG;
		next = first + span;
		n = chunk_decode_batch(p, left, runs, cap, fn, ctx);
		if (n < 0)
			return n;
		p += n;
		left -= (size_t)n;
	}
	return left ? -EBADMSG : 0;
}

/* chunk_batch_fn of decode_ranges(): the pages of the runs */
static int ranges_count(void *ctx, const struct extent *runs, size_t n)
{
	uint64_t *pages = ctx;

	for (size_t i = 0; i < n; i++)
		*pages += runs[i].count;
	return 0;
}

/* The chunks too with @chunks, else only that nchunks of them fit. */
static int decode_ranges(const uint8_t *body, size_t blen, struct proto_msg *m,
			 bool chunks)
{
	struct proto_ranges *r = &m->ranges;
	struct extent runs[256];
	uint64_t pages = 0;

	r->chunks = body + PROTO_RANGES_FIXED;
	r->chunks_len = blen - PROTO_RANGES_FIXED;
	/* each chunk takes at least CHUNK_HEADER_SIZE + 1 bytes */
	if ((uint64_t)r->nchunks * (CHUNK_HEADER_SIZE + 1) > r->chunks_len)
		return -EBADMSG;
	if (!chunks)
		return 0;
	if (proto_ranges_decode(r, runs, sizeof(runs) / sizeof(runs[0]),
				ranges_count, &pages) ||
	    pages > r->total_pages)
		return -EBADMSG;
	return 0;
}

/*
 * READOPT's devices (each a valid entry; dev_flags 0; fd_index 0 or
 * 1 .. ndevices, each once) and ranges (non-empty, not wrapping,
 * increasing and disjoint), filling the packet exactly.
 */
static int decode_readopt(const uint8_t *body, size_t blen,
			  struct proto_msg *m)
{
	struct proto_readopt *r = &m->readopt;
	uint8_t seen[(PROTO_MAX_MSG / PROTO_ADOPT_DEVICE_WIRE) / 8 + 1];
	const uint8_t *e = body + PROTO_READOPT_FIXED;
	uint64_t next = 0;

	if (!r->ndevices ||
	    (uint64_t)r->ndevices * PROTO_ADOPT_DEVICE_WIRE +
	    (uint64_t)r->nranges * PROTO_RANGE_WIRE !=
	    blen - PROTO_READOPT_FIXED ||
	    r->flags & ~(uint32_t)(PROTO_CREATE_TRACKING |
				   PROTO_CREATE_NO_HUGE_PAGES))
		return -EBADMSG;
	memset(seen, 0, sizeof(seen));
	r->devices = e;
	for (uint32_t i = 0; i < r->ndevices; i++, e += PROTO_ADOPT_DEVICE_WIRE) {
		uint32_t fdi = wire_get_le32(e + 68);

		if (!fields_valid(e, &adopt_device_layout) ||
		    wire_get_le32(e + 72) || fdi > r->ndevices ||
		    (fdi && seen[fdi / 8] & 1u << (fdi % 8)))
			return -EBADMSG;
		if (fdi)
			seen[fdi / 8] |= (uint8_t)(1u << (fdi % 8));
	}
	r->ranges = e;
	for (uint32_t i = 0; i < r->nranges; i++, e += PROTO_RANGE_WIRE) {
		uint64_t iova = wire_get_le64(e), len = wire_get_le64(e + 8);

		if (!len || iova + len < iova || (i && iova < next))
			return -EBADMSG;
		next = iova + len;
	}
	return 0;
}

static int decode_error(const uint8_t *body, size_t blen, struct proto_msg *m)
{
	size_t tlen = blen - 8;

	if (!m->error.err || m->error.err > 4095 ||
	    tlen > PROTO_ERROR_TEXT_MAX || !proto_text_valid(body + 8, tlen))
		return -EBADMSG;
	m->error.text = (const char *)body + 8;
	m->error.text_len = tlen;
	return 0;
}

static int decode_text(const uint8_t *body, size_t blen, struct proto_msg *m)
{
	size_t tlen = blen - PROTO_METRICS_FIXED;

	if (!proto_metrics_text_valid(body + PROTO_METRICS_FIXED, tlen))
		return -EBADMSG;
	m->metrics.text = (const char *)body + PROTO_METRICS_FIXED;
	m->metrics.text_len = tlen;
	return 0;
}

/* The flag sets and values a fixed body may carry, beyond its layout. */
static bool fixed_valid(const struct proto_msg *m)
{
	const struct proto_subscribe_reply *sr = &m->subscribe_reply;

	switch (m->type) {
	case PROTO_CREATE_DOMAIN:
		return !(m->create_domain.flags &
			 ~(uint32_t)(PROTO_CREATE_TRACKING |
				     PROTO_CREATE_NO_HUGE_PAGES |
				     PROTO_CREATE_SOURCE_IOMMU |
				     PROTO_CREATE_SOURCE_DEVICE |
				     PROTO_CREATE_ALL_DIRTY));
	case PROTO_MAP:
		return m->map.flags & (PROTO_MAP_READABLE |
				       PROTO_MAP_WRITEABLE) &&
		       !(m->map.flags & ~(uint32_t)(PROTO_MAP_READABLE |
						    PROTO_MAP_WRITEABLE |
						    PROTO_MAP_EXTERNAL));
	case PROTO_UNMAP:
		return !(m->map.flags & ~(uint32_t)PROTO_MAP_EXTERNAL);
	case PROTO_DMA_WRITE:
		return !m->map.flags;
	case PROTO_SUBSCRIBE:
		return !(m->subscribe.flags &
			 ~(uint32_t)PROTO_SUBSCRIBE_CLEAN);
	case PROTO_SUBSCRIBE_REPLY:
		/* a client divides by these: powers of two, leaf >= page */
		return is_pow2(sr->page_size) && is_pow2(sr->max_leaf) &&
		       sr->max_leaf >= sr->page_size;
	case PROTO_GET_RANGES:
		return !(m->get_ranges.flags &
			 ~(uint32_t)PROTO_RANGES_RESEND);
	default:
		return true;
	}
}

int proto_peek(const uint8_t *buf, size_t len, uint16_t *type, uint64_t *id)
{
	uint32_t length;

	if (!buf || len < PROTO_HEADER_SIZE)
		return -EBADMSG;
	length = wire_get_le32(buf + 4);
	if (len > PROTO_MAX_MSG || length > PROTO_MAX_MSG || length != len)
		return -EMSGSIZE;
	if (!proto_type_info(wire_get_le16(buf)))
		return -EPROTO;
	if (type)
		*type = wire_get_le16(buf);
	if (id)
		*id = wire_get_le64(buf + 8);
	return 0;
}

bool proto_type_is_request(uint16_t type)
{
	const struct proto_type_info *ti = proto_type_info(type);

	return ti && ti->dir == DIR_REQUEST;
}

static int decode(const uint8_t *buf, size_t len, struct proto_msg *m,
		  bool chunks)
{
	const struct proto_type_info *ti;
	const uint8_t *body;
	size_t blen;
	int r;

	if (!m)
		return -EBADMSG;
	r = proto_peek(buf, len, NULL, NULL);
	if (r < 0)
		return r;
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
	if (!fields_valid(body, &ti->body))
		return -EBADMSG;
	fields_get(m, body, &ti->body);
	switch (ti->shape) {
	case SHAPE_LIST:
		return decode_list(body, blen, ti, m);
	case SHAPE_RANGES:
		return decode_ranges(body, blen, m, chunks);
	case SHAPE_ERROR:
		return decode_error(body, blen, m);
	case SHAPE_TEXT:
		return decode_text(body, blen, m);
	case SHAPE_READOPT:
		return decode_readopt(body, blen, m);
	default:
		return fixed_valid(m) ? 0 : -EBADMSG;
	}
}

int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m)
{
	return decode(buf, len, m, true);
}

int proto_decode_lazy(const uint8_t *buf, size_t len, struct proto_msg *m)
{
	return decode(buf, len, m, false);
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
		return ti->size + error_text_put(NULL, m->error.text,
						 m->error.text_len);
	case SHAPE_TEXT:
		return ti->size + m->metrics.text_len;
	case SHAPE_READOPT:
		return ti->size +
		       (size_t)m->readopt.ndevices * PROTO_ADOPT_DEVICE_WIRE +
		       (size_t)m->readopt.nranges * PROTO_RANGE_WIRE;
	default:
		return ti->size;
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
	if (!ti || !names_ok(m, &ti->body))
		return -EINVAL;
	if ((ti->shape == SHAPE_LIST && m->list.count && !m->list.entries) ||
	    (ti->shape == SHAPE_RANGES && m->ranges.chunks_len &&
	     !m->ranges.chunks) ||
	    (ti->shape == SHAPE_TEXT && m->metrics.text_len &&
	     !m->metrics.text) ||
	    (ti->shape == SHAPE_READOPT &&
	     ((m->readopt.ndevices && !m->readopt.devices) ||
	      (m->readopt.nranges && !m->readopt.ranges))))
		return -EINVAL;
	len = PROTO_HEADER_SIZE + encode_body_size(m, ti);
	if (len > PROTO_MAX_MSG || len > cap)
		return -EMSGSIZE;

	memset(buf, 0, len);
	put_header(buf, m->type, m->flags, (uint32_t)len, m->id);
	b = buf + PROTO_HEADER_SIZE;
	fields_put(b, m, &ti->body);
	/* what follows the fixed part is copied as it is */
	switch (ti->shape) {
	case SHAPE_LIST:
		if (m->list.count)
			memcpy(b + ti->size, m->list.entries,
			       (size_t)m->list.count * ti->entry);
		break;
	case SHAPE_RANGES:
		if (m->ranges.chunks_len)
			memcpy(b + ti->size, m->ranges.chunks,
			       m->ranges.chunks_len);
		break;
	case SHAPE_ERROR:
		error_text_put(b + ti->size, m->error.text, m->error.text_len);
		break;
	case SHAPE_TEXT:
		if (m->metrics.text_len)
			memcpy(b + ti->size, m->metrics.text,
			       m->metrics.text_len);
		break;
	case SHAPE_READOPT:
		if (m->readopt.ndevices)
			memcpy(b + ti->size, m->readopt.devices,
			       (size_t)m->readopt.ndevices *
			       PROTO_ADOPT_DEVICE_WIRE);
		if (m->readopt.nranges)
			memcpy(b + ti->size + (size_t)m->readopt.ndevices *
			       PROTO_ADOPT_DEVICE_WIRE, m->readopt.ranges,
			       (size_t)m->readopt.nranges * PROTO_RANGE_WIRE);
		break;
	default:
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
		.count_off = PROTO_HEADER_SIZE +
			     (type == PROTO_GET_FDS_REPLY ? 8 :
			      type == PROTO_ADOPT_REPLY ? 12 : 0),
	};
	memset(buf, 0, lb->len);
	put_header(buf, type, 0, (uint32_t)lb->len, id);
	return 0;
}

static int list_add(struct proto_list_builder *lb, uint16_t type,
		    const void *entry)
{
	const struct proto_type_info *ti = proto_type_info(type);

	if (!lb || !lb->buf || wire_get_le16(lb->buf) != type)
		return -EINVAL;
	if (lb->len + lb->entry_size > lb->cap)
		return -ENOSPC;
	fields_put(lb->buf + lb->len, entry, &ti->entries);
	lb->len += lb->entry_size;
	lb->count++;
	return 0;
}

int proto_list_add_device(struct proto_list_builder *lb,
			  const struct proto_device *d)
{
	if (!d || !name_ok(d->name))
		return -EINVAL;
	return list_add(lb, PROTO_LIST_DEVICES_REPLY, d);
}

int proto_list_add_domain(struct proto_list_builder *lb,
			  const struct proto_domain *d)
{
	if (!d)
		return -EINVAL;
	return list_add(lb, PROTO_LIST_DOMAINS_REPLY, d);
}

int proto_list_add_stats(struct proto_list_builder *lb,
			 const struct proto_stats *s)
{
	if (!s)
		return -EINVAL;
	return list_add(lb, PROTO_STATS_REPLY, s);
}

int proto_list_add_fd_device(struct proto_list_builder *lb,
			     const struct proto_fd_device *d)
{
	if (!d || !name_ok(d->name) || !d->fd_index)
		return -EINVAL;
	return list_add(lb, PROTO_GET_FDS_REPLY, d);
}

int proto_list_add_source(struct proto_list_builder *lb,
			  const struct proto_source *s)
{
	if (!s || !name_ok(s->device))
		return -EINVAL;
	return list_add(lb, PROTO_LIST_SOURCES_REPLY, s);
}

void proto_list_set_fds_ids(struct proto_list_builder *lb, uint32_t ioas_id,
			    uint32_t hwpt_id)
{
	if (!lb || !lb->buf || wire_get_le16(lb->buf) != PROTO_GET_FDS_REPLY)
		return;
	wire_put_le32(lb->buf + PROTO_HEADER_SIZE, ioas_id);
	wire_put_le32(lb->buf + PROTO_HEADER_SIZE + 4, hwpt_id);
}

void proto_list_set_adopt(struct proto_list_builder *lb,
			  const struct proto_msg *m)
{
	const struct proto_type_info *ti = proto_type_info(PROTO_ADOPT_REPLY);

	if (!lb || !lb->buf || !m ||
	    wire_get_le16(lb->buf) != PROTO_ADOPT_REPLY)
		return;
	fields_put(lb->buf + PROTO_HEADER_SIZE, m, &ti->body);
}

int proto_list_add_adopt_device(struct proto_list_builder *lb,
				const struct proto_adopt_device *d)
{
	if (!d || !name_ok(d->name))
		return -EINVAL;
	return list_add(lb, PROTO_ADOPT_REPLY, d);
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
	if ((wire_get_le16(lb->buf) == PROTO_GET_FDS_REPLY ||
	     wire_get_le16(lb->buf) == PROTO_ADOPT_REPLY) &&
	    (more || proto_decode(lb->buf, lb->len, &check)))
		return -EINVAL;
	return (int)lb->len;
}

static void list_entry_get(const struct proto_msg *m, uint16_t type,
			   uint32_t i, void *entry)
{
	const struct proto_type_info *ti = proto_type_info(type);

	fields_get(entry, m->list.entries + (size_t)i * ti->entry,
		   &ti->entries);
}

void proto_device_at(const struct proto_msg *m, uint32_t i,
		     struct proto_device *d)
{
	list_entry_get(m, PROTO_LIST_DEVICES_REPLY, i, d);
}

void proto_domain_at(const struct proto_msg *m, uint32_t i,
		     struct proto_domain *d)
{
	*d = (struct proto_domain){ 0 };
	list_entry_get(m, PROTO_LIST_DOMAINS_REPLY, i, d);
}

void proto_stats_at(const struct proto_msg *m, uint32_t i,
		    struct proto_stats *s)
{
	*s = (struct proto_stats){ 0 };
	list_entry_get(m, PROTO_STATS_REPLY, i, s);
}

void proto_fd_device_at(const struct proto_msg *m, uint32_t i,
			struct proto_fd_device *d)
{
	list_entry_get(m, PROTO_GET_FDS_REPLY, i, d);
}

void proto_source_at(const struct proto_msg *m, uint32_t i,
		     struct proto_source *s)
{
	*s = (struct proto_source){ 0 };
	list_entry_get(m, PROTO_LIST_SOURCES_REPLY, i, s);
}

void proto_adopt_device_at(const struct proto_msg *m, uint32_t i,
			   struct proto_adopt_device *d)
{
	*d = (struct proto_adopt_device){ .name = "" };
	list_entry_get(m, PROTO_ADOPT_REPLY, i, d);
}

void proto_readopt_device_at(const struct proto_readopt *r, uint32_t i,
			     struct proto_adopt_device *d)
{
	*d = (struct proto_adopt_device){ .name = "" };
	fields_get(d, r->devices + (size_t)i * PROTO_ADOPT_DEVICE_WIRE,
		   &adopt_device_layout);
}

void proto_readopt_range_at(const struct proto_readopt *r, uint32_t i,
			    struct proto_range *rg)
{
	fields_get(rg, r->ranges + (size_t)i * PROTO_RANGE_WIRE,
		   &range_layout);
}

int proto_encode_readopt(uint8_t *buf, size_t cap, uint64_t id,
			 const struct proto_readopt *r,
			 const struct proto_adopt_device *devs,
			 const struct proto_range *ranges)
{
	struct proto_msg m = { .type = PROTO_READOPT, .id = id };
	uint8_t *wire;
	size_t dl, rl;
	int n;

	if (!r || (r->ndevices && !devs) || (r->nranges && !ranges))
		return -EINVAL;
	dl = (size_t)r->ndevices * PROTO_ADOPT_DEVICE_WIRE;
	rl = (size_t)r->nranges * PROTO_RANGE_WIRE;
	if (dl + rl > PROTO_MAX_MSG - PROTO_HEADER_SIZE - PROTO_READOPT_FIXED)
		return -EMSGSIZE;
	for (uint32_t i = 0; i < r->ndevices; i++)
		if (!name_ok(devs[i].name))
			return -EINVAL;
	wire = malloc(dl + rl + 1);
	if (!wire)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->ndevices; i++) {
		fields_put(wire + (size_t)i * PROTO_ADOPT_DEVICE_WIRE, &devs[i],
			   &adopt_device_layout);
	}
	for (uint32_t i = 0; i < r->nranges; i++)
		fields_put(wire + dl + (size_t)i * PROTO_RANGE_WIRE, &ranges[i],
			   &range_layout);
	m.readopt = *r;
	m.readopt.devices = wire;
	m.readopt.ranges = wire + dl;
	n = proto_encode(&m, buf, cap);
	free(wire);
	return n;
}

/* ---- RANGES packets ---- */

int proto_ranges_begin(struct proto_ranges_builder *rb, uint8_t *buf,
		       size_t cap, uint64_t id, const struct proto_ranges *r)
{
	struct proto_msg msg;

	if (!rb || !buf || !r)
		return -EINVAL;
	msg.ranges = *r;
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
	/* nchunks is counted by proto_ranges_add() */
	msg.ranges.nchunks = 0;
	fields_put(buf + PROTO_HEADER_SIZE, &msg,
		   &proto_type_info(PROTO_RANGES)->body);
	return 0;
}

int proto_ranges_add(struct proto_ranges_builder *rb, const uint8_t *chunk,
		     size_t len)
{
	/* the header only: the chunk comes from chunk_encode() */
	if (!rb || !rb->buf || chunk_size(chunk, len) != (int)len)
		return -EINVAL;
	if (rb->len + len > rb->cap)
		return -ENOSPC;
	memcpy(rb->buf + rb->len, chunk, len);
	rb->len += len;
	rb->nchunks++;
	return 0;
}

int proto_ranges_fill(struct proto_ranges_builder *rb, struct chunk_reader *cr)
{
	if (!rb || !rb->buf || !cr)
		return -EINVAL;
	for (;;) {
		int n = chunk_reader_next(cr, rb->buf + rb->len,
					  rb->cap - rb->len);

		if (n == -ENOSPC && rb->nchunks)
			return 0;	/* full: the rest in the next packet */
		if (n <= 0)
			return n;
		rb->len += (size_t)n;
		rb->nchunks++;
	}
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
