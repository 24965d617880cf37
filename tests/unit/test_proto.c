// SPDX-License-Identifier: MIT
/*
 * The wire codec: every message round-trips, lists and range packets are
 * built and read back, the decoder refuses every malformed packet with the
 * documented error, random bytes never crash it, and every example in
 * protocol/PROTOCOL.md decodes and re-encodes to the same bytes.
 */
#define _GNU_SOURCE		/* memmem, strchrnul */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_rng.h"
#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

#ifndef PROTOCOL_MD
#error "PROTOCOL_MD (the path of protocol/PROTOCOL.md) must be defined"
#endif

static uint8_t buf[PROTO_MAX_MSG + 64];
static uint8_t buf2[PROTO_MAX_MSG + 64];

static bool documented_error(int r)
{
	return r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO;
}

/* Every type the codec knows. */
static const uint16_t all_types[] = {
	PROTO_HELLO, PROTO_LIST_DEVICES, PROTO_LIST_DOMAINS,
	PROTO_CREATE_DOMAIN, PROTO_ATTACH_DEVICE, PROTO_DETACH_DEVICE,
	PROTO_DESTROY_DOMAIN, PROTO_MAP, PROTO_UNMAP, PROTO_TRACK_START,
	PROTO_TRACK_STOP, PROTO_SUBSCRIBE, PROTO_UNSUBSCRIBE, PROTO_SYNC,
	PROTO_GET_RANGES, PROTO_ACK, PROTO_STATS, PROTO_GET_FDS,
	PROTO_DMA_WRITE, PROTO_HELLO_REPLY, PROTO_LIST_DEVICES_REPLY,
	PROTO_LIST_DOMAINS_REPLY, PROTO_CREATE_DOMAIN_REPLY,
	PROTO_ATTACH_DEVICE_REPLY, PROTO_OK, PROTO_SUBSCRIBE_REPLY,
	PROTO_SYNC_REPLY, PROTO_RANGES, PROTO_STATS_REPLY,
	PROTO_GET_FDS_REPLY, PROTO_ERROR, PROTO_EV_ROUND,
	PROTO_EV_STATE_LOST, PROTO_METRICS, PROTO_METRICS_REPLY,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

/* A sample of every fixed-body message (and ERROR). */
static struct proto_msg sample(uint16_t type)
{
	struct proto_msg m = { .type = type, .id = 0x1122334455667788ULL };

	switch (type) {
	case PROTO_HELLO:
		m.hello = (struct proto_hello){
			.major = 1, .minor = 7, .features = PROTO_FEATURES_ALL,
			.resume_token = 0xdeadbeefcafef00dULL,
		};
		break;
	case PROTO_HELLO_REPLY:
		m.hello_reply = (struct proto_hello_reply){
			.major = 1, .minor = 0, .max_msg = PROTO_MAX_MSG,
			.features = 0x5, .session_token = 0xabcdef0123456789ULL,
			.uid = 1000, .gid = 1001,
			.session_flags = PROTO_SESSION_RESUMED,
		};
		break;
	case PROTO_CREATE_DOMAIN:
		m.create_domain.flags = PROTO_CREATE_TRACKING |
					PROTO_CREATE_NO_HUGE_PAGES;
		strcpy(m.create_domain.device, "sim0");
		break;
	case PROTO_CREATE_DOMAIN_REPLY:
		m.create_domain_reply = (struct proto_create_domain_reply){
			.domain_id = 3, .dev_id = 17,
			.status = PROTO_DOMAIN_SUPPORTED,
		};
		break;
	case PROTO_ATTACH_DEVICE:
	case PROTO_DETACH_DEVICE:
		m.device_op.domain_id = 9;
		/* the longest name there is room for */
		memset(m.device_op.device, 'x', PROTO_NAME_MAX - 1);
		break;
	case PROTO_ATTACH_DEVICE_REPLY:
		m.attach_device_reply.dev_id = 0xfffffffe;
		break;
	case PROTO_DESTROY_DOMAIN:
	case PROTO_TRACK_START:
	case PROTO_TRACK_STOP:
	case PROTO_UNSUBSCRIBE:
	case PROTO_SYNC:
	case PROTO_STATS:
	case PROTO_GET_FDS:
		m.domain_op.domain_id = 42;
		break;
	case PROTO_EV_STATE_LOST:
		m.id = 0;
		m.domain_op.domain_id = 42;
		break;
	case PROTO_MAP:
		m.map = (struct proto_map){
			.domain_id = 1, .flags = PROTO_MAP_READABLE |
			PROTO_MAP_WRITEABLE, .iova = 1ULL << 40,
			.length = 16ULL << 30,
		};
		break;
	case PROTO_UNMAP:
	case PROTO_DMA_WRITE:
		m.map = (struct proto_map){
			.domain_id = 1, .iova = 0x200000, .length = 0x3000,
		};
		break;
	case PROTO_SUBSCRIBE:
		m.subscribe = (struct proto_subscribe){
			.domain_id = 2, .interval_ms = 250,
			.flags = PROTO_SUBSCRIBE_CLEAN,
		};
		break;
	case PROTO_SUBSCRIBE_REPLY:
		m.subscribe_reply = (struct proto_subscribe_reply){
			.domain_id = 2, .page_size = 4096,
			.max_leaf = 1ULL << 30, .generation = 77,
		};
		break;
	case PROTO_SYNC_REPLY:
		m.sync_reply = (struct proto_sync_reply){
			.generation = 78, .pending_pages = 123456789,
		};
		break;
	case PROTO_GET_RANGES:
		m.get_ranges = (struct proto_get_ranges){
			.domain_id = 2, .flags = PROTO_RANGES_RESEND,
		};
		break;
	case PROTO_ACK:
		m.ack = (struct proto_ack){ .domain_id = 2, .generation = 78 };
		break;
	case PROTO_EV_ROUND:
		m.id = 0;
		m.ev_round = (struct proto_ev_round){
			.domain_id = 2, .generation = 79, .round_pages = 5,
			.pending_pages = 1ULL << 33,
		};
		break;
	case PROTO_METRICS:
		m.domain_op.domain_id = 3;
		break;
	case PROTO_METRICS_REPLY:
		m.flags = PROTO_F_MORE;
		m.metrics = (struct proto_metrics){
			.seq = 2, .text = "dirtyd_domains 1\n# EOF\n",
			.text_len = strlen("dirtyd_domains 1\n# EOF\n"),
		};
		break;
	case PROTO_ERROR:
		m.error = (struct proto_error){
			.err = EOPNOTSUPP,
			.text = "device sim-legacy0 cannot track dirty pages",
			.text_len = strlen("device sim-legacy0 cannot track "
					   "dirty pages"),
		};
		break;
	}
	return m;
}

static void assert_same(const struct proto_msg *a, const struct proto_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->flags, b->flags);
	cr_assert_eq(a->id, b->id);
	switch (a->type) {
	case PROTO_HELLO:
		cr_assert_eq(a->hello.major, b->hello.major);
		cr_assert_eq(a->hello.minor, b->hello.minor);
		cr_assert_eq(a->hello.features, b->hello.features);
		cr_assert_eq(a->hello.resume_token, b->hello.resume_token);
		break;
	case PROTO_HELLO_REPLY:
		cr_assert_eq(a->hello_reply.major, b->hello_reply.major);
		cr_assert_eq(a->hello_reply.minor, b->hello_reply.minor);
		cr_assert_eq(a->hello_reply.max_msg, b->hello_reply.max_msg);
		cr_assert_eq(a->hello_reply.features, b->hello_reply.features);
		cr_assert_eq(a->hello_reply.session_token,
			     b->hello_reply.session_token);
		cr_assert_eq(a->hello_reply.uid, b->hello_reply.uid);
		cr_assert_eq(a->hello_reply.gid, b->hello_reply.gid);
		cr_assert_eq(a->hello_reply.session_flags,
			     b->hello_reply.session_flags);
		break;
	case PROTO_CREATE_DOMAIN:
		cr_assert_eq(a->create_domain.flags, b->create_domain.flags);
		cr_assert_str_eq(a->create_domain.device,
				 b->create_domain.device);
		break;
	case PROTO_CREATE_DOMAIN_REPLY:
		cr_assert_eq(a->create_domain_reply.domain_id,
			     b->create_domain_reply.domain_id);
		cr_assert_eq(a->create_domain_reply.dev_id,
			     b->create_domain_reply.dev_id);
		cr_assert_eq(a->create_domain_reply.status,
			     b->create_domain_reply.status);
		break;
	case PROTO_ATTACH_DEVICE:
	case PROTO_DETACH_DEVICE:
		cr_assert_eq(a->device_op.domain_id, b->device_op.domain_id);
		cr_assert_str_eq(a->device_op.device, b->device_op.device);
		break;
	case PROTO_ATTACH_DEVICE_REPLY:
		cr_assert_eq(a->attach_device_reply.dev_id,
			     b->attach_device_reply.dev_id);
		break;
	case PROTO_DESTROY_DOMAIN:
	case PROTO_TRACK_START:
	case PROTO_TRACK_STOP:
	case PROTO_UNSUBSCRIBE:
	case PROTO_SYNC:
	case PROTO_STATS:
	case PROTO_GET_FDS:
	case PROTO_EV_STATE_LOST:
	case PROTO_METRICS:
		cr_assert_eq(a->domain_op.domain_id, b->domain_op.domain_id);
		break;
	case PROTO_METRICS_REPLY:
		cr_assert_eq(a->flags, b->flags);
		cr_assert_eq(a->metrics.seq, b->metrics.seq);
		cr_assert_eq(a->metrics.text_len, b->metrics.text_len);
		cr_assert_eq(memcmp(a->metrics.text, b->metrics.text,
				    a->metrics.text_len), 0);
		break;
	case PROTO_MAP:
	case PROTO_UNMAP:
	case PROTO_DMA_WRITE:
		cr_assert_eq(a->map.domain_id, b->map.domain_id);
		cr_assert_eq(a->map.flags, b->map.flags);
		cr_assert_eq(a->map.iova, b->map.iova);
		cr_assert_eq(a->map.length, b->map.length);
		break;
	case PROTO_SUBSCRIBE:
		cr_assert_eq(a->subscribe.domain_id, b->subscribe.domain_id);
		cr_assert_eq(a->subscribe.interval_ms,
			     b->subscribe.interval_ms);
		cr_assert_eq(a->subscribe.flags, b->subscribe.flags);
		break;
	case PROTO_SUBSCRIBE_REPLY:
		cr_assert_eq(a->subscribe_reply.domain_id,
			     b->subscribe_reply.domain_id);
		cr_assert_eq(a->subscribe_reply.page_size,
			     b->subscribe_reply.page_size);
		cr_assert_eq(a->subscribe_reply.max_leaf,
			     b->subscribe_reply.max_leaf);
		cr_assert_eq(a->subscribe_reply.generation,
			     b->subscribe_reply.generation);
		break;
	case PROTO_SYNC_REPLY:
		cr_assert_eq(a->sync_reply.generation,
			     b->sync_reply.generation);
		cr_assert_eq(a->sync_reply.pending_pages,
			     b->sync_reply.pending_pages);
		break;
	case PROTO_GET_RANGES:
		cr_assert_eq(a->get_ranges.domain_id, b->get_ranges.domain_id);
		cr_assert_eq(a->get_ranges.flags, b->get_ranges.flags);
		break;
	case PROTO_ACK:
		cr_assert_eq(a->ack.domain_id, b->ack.domain_id);
		cr_assert_eq(a->ack.generation, b->ack.generation);
		break;
	case PROTO_EV_ROUND:
		cr_assert_eq(a->ev_round.domain_id, b->ev_round.domain_id);
		cr_assert_eq(a->ev_round.generation, b->ev_round.generation);
		cr_assert_eq(a->ev_round.round_pages,
			     b->ev_round.round_pages);
		cr_assert_eq(a->ev_round.pending_pages,
			     b->ev_round.pending_pages);
		break;
	case PROTO_ERROR:
		cr_assert_eq(a->error.err, b->error.err);
		cr_assert_eq(a->error.text_len, b->error.text_len);
		cr_assert_eq(memcmp(a->error.text, b->error.text,
				    a->error.text_len), 0);
		break;
	}
}

static bool is_list(uint16_t t)
{
	return t == PROTO_LIST_DEVICES_REPLY ||
	       t == PROTO_LIST_DOMAINS_REPLY || t == PROTO_STATS_REPLY ||
	       t == PROTO_GET_FDS_REPLY;
}

/* ---- round trips ---- */

Test(proto, round_trip_every_fixed_message)
{
	unsigned int done = 0;

	for (size_t i = 0; i < NTYPES; i++) {
		struct proto_msg m = sample(all_types[i]), d;
		int n, r;

		if (is_list(m.type) || m.type == PROTO_RANGES)
			continue;
		n = proto_encode(&m, buf, sizeof(buf));
		cr_assert_gt(n, 0, "%s: %d", proto_type_name(m.type), n);
		cr_assert_eq(wire_get_le32(buf + 4), (uint32_t)n);
		r = proto_decode(buf, (size_t)n, &d);
		cr_assert_eq(r, 0, "%s: %d", proto_type_name(m.type), r);
		assert_same(&m, &d);
		/* decoded, it encodes to the same bytes */
		cr_assert_eq(proto_encode(&d, buf2, sizeof(buf2)), n);
		cr_assert_eq(memcmp(buf, buf2, (size_t)n), 0);
		/* and a buffer one byte short is refused */
		cr_assert_eq(proto_encode(&m, buf2, (size_t)n - 1), -EMSGSIZE);
		done++;
	}
	cr_assert_eq(done, NTYPES - 5);
}

Test(proto, fixed_sizes_match_the_header)
{
	static const struct {
		uint16_t type;
		uint32_t body;
	} sizes[] = {
		{ PROTO_HELLO, 24 }, { PROTO_LIST_DEVICES, 0 },
		{ PROTO_LIST_DOMAINS, 0 }, { PROTO_CREATE_DOMAIN, 72 },
		{ PROTO_ATTACH_DEVICE, 72 }, { PROTO_DETACH_DEVICE, 72 },
		{ PROTO_DESTROY_DOMAIN, 8 }, { PROTO_MAP, 24 },
		{ PROTO_UNMAP, 24 }, { PROTO_TRACK_START, 8 },
		{ PROTO_TRACK_STOP, 8 }, { PROTO_SUBSCRIBE, 16 },
		{ PROTO_UNSUBSCRIBE, 8 }, { PROTO_SYNC, 8 },
		{ PROTO_GET_RANGES, 16 }, { PROTO_ACK, 16 },
		{ PROTO_STATS, 8 }, { PROTO_GET_FDS, 8 },
		{ PROTO_DMA_WRITE, 24 }, { PROTO_METRICS, 8 },
		{ PROTO_HELLO_REPLY, 40 },
		{ PROTO_CREATE_DOMAIN_REPLY, 16 },
		{ PROTO_ATTACH_DEVICE_REPLY, 8 }, { PROTO_OK, 0 },
		{ PROTO_SUBSCRIBE_REPLY, 32 }, { PROTO_SYNC_REPLY, 16 },
		{ PROTO_EV_ROUND, 32 }, { PROTO_EV_STATE_LOST, 8 },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct proto_msg m = sample(sizes[i].type);

		cr_assert_eq(proto_encode(&m, buf, sizeof(buf)),
			     (int)(PROTO_HEADER_SIZE + sizes[i].body),
			     "%s", proto_type_name(sizes[i].type));
	}
}

Test(proto, type_names)
{
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_not_null(proto_type_name(all_types[i]));
	cr_assert_str_eq(proto_type_name(PROTO_HELLO), "HELLO");
	cr_assert_str_eq(proto_type_name(PROTO_ERROR), "ERROR");
	cr_assert_str_eq(proto_type_name(PROTO_RANGES), "RANGES");
	cr_assert_str_eq(proto_type_name(PROTO_EV_STATE_LOST),
			 "EV_STATE_LOST");
	cr_assert_null(proto_type_name(0));
	cr_assert_null(proto_type_name(0x7777));
}

Test(proto, encode_refuses_what_a_peer_would)
{
	struct proto_msg m = sample(PROTO_CREATE_DOMAIN);

	/* no name; a name with no room for its NUL */
	m.create_domain.device[0] = 0;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	memset(m.create_domain.device, 'a', PROTO_NAME_MAX);
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* unknown type, unknown flags, request without id, event with one */
	m = sample(PROTO_SYNC);
	m.type = 0x1234;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(PROTO_SYNC);
	m.flags = PROTO_F_MORE;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.flags = 0;
	m.id = 0;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(PROTO_EV_ROUND);
	m.id = 1;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* MAP without access, UNMAP with flags, unknown SUBSCRIBE flags */
	m = sample(PROTO_MAP);
	m.map.flags = 0;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.map.flags = 4;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(PROTO_UNMAP);
	m.map.flags = PROTO_MAP_READABLE;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(PROTO_SUBSCRIBE);
	m.subscribe.flags = 2;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* a page size a client could not divide by */
	m = sample(PROTO_SUBSCRIBE_REPLY);
	m.subscribe_reply.page_size = 0;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(PROTO_SUBSCRIBE_REPLY);
	m.subscribe_reply.max_leaf = 2048;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* error 0 */
	m = sample(PROTO_ERROR);
	m.error.err = 0;
	cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL);
}

Test(proto, error_text_is_truncated_at_a_character)
{
	static char text[3000];
	struct proto_msg m = sample(PROTO_ERROR), d;
	int n;

	/* 'a' then 2-byte characters: byte 1024 is inside one */
	text[0] = 'a';
	for (size_t i = 1; i + 1 < sizeof(text); i += 2) {
		text[i] = (char)0xc3;
		text[i + 1] = (char)0xa9;	/* é */
	}
	m.error.text = text;
	m.error.text_len = sizeof(text);
	n = proto_encode(&m, buf, sizeof(buf));
	cr_assert_eq(n, (int)(PROTO_HEADER_SIZE + 8 + 1023));
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	cr_assert_eq(d.error.text_len, 1023);
	/* exactly PROTO_ERROR_TEXT_MAX ASCII bytes stay whole */
	memset(text, 'z', sizeof(text));
	m.error.text_len = PROTO_ERROR_TEXT_MAX;
	n = proto_encode(&m, buf, sizeof(buf));
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	cr_assert_eq(d.error.text_len, PROTO_ERROR_TEXT_MAX);
	/* the text ends at a NUL */
	m.error.text = "short\0tail";
	m.error.text_len = 10;
	n = proto_encode(&m, buf, sizeof(buf));
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	cr_assert_eq(d.error.text_len, 5);
	/* no text at all */
	m.error.text = NULL;
	m.error.text_len = 0;
	n = proto_encode(&m, buf, sizeof(buf));
	cr_assert_eq(n, (int)(PROTO_HEADER_SIZE + 8));
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	cr_assert_eq(d.error.text_len, 0);
}

/* ---- lists ---- */

static struct proto_device make_device(uint32_t i)
{
	struct proto_device d = {
		.capabilities = 1ULL << (i % 64),
		.flags = i % 8,
		.domain_id = i * 3,
		.dev_id = i + 1,
	};

	snprintf(d.name, sizeof(d.name), "dev-%u", i);
	return d;
}

static struct proto_domain make_domain(uint32_t i)
{
	return (struct proto_domain){
		.domain_id = i + 1, .status = i % 8, .owner_uid = 1000 + i,
		.devices = i % 5, .mapped_bytes = (uint64_t)i << 30,
		.page_size = 4096, .generation = i * 11ULL,
		.subscribers = i % 3,
	};
}

static struct proto_stats make_stats(uint32_t i)
{
	return (struct proto_stats){
		.domain_id = i + 1, .status = 3, .generation = i,
		.last_round_ns = 1000000ULL * i, .last_round_pages = i * 7ULL,
		.dirty_rate = i * 1000ULL, .mapped_bytes = 1ULL << 34,
		.pending_pages = i, .pages_sent = ~0ULL - i,
	};
}

Test(proto, list_devices_fill_and_read)
{
	struct proto_list_builder lb;
	struct proto_msg m;
	uint32_t n = 0, want = (PROTO_MAX_MSG - 24) / PROTO_DEVICE_WIRE;
	int len, r;

	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_LIST_DEVICES_REPLY, 5), 0);
	for (;;) {
		struct proto_device d = make_device(n);

		r = proto_list_add_device(&lb, &d);
		if (r)
			break;
		n++;
	}
	cr_assert_eq(r, -ENOSPC);
	cr_assert_eq(n, want);
	len = proto_list_end(&lb, true);
	cr_assert_eq(len, (int)(24 + want * PROTO_DEVICE_WIRE));
	cr_assert_leq(len, (int)PROTO_MAX_MSG);
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.type, PROTO_LIST_DEVICES_REPLY);
	cr_assert_eq(m.flags, PROTO_F_MORE);
	cr_assert_eq(m.id, 5);
	cr_assert_eq(m.list.count, want);
	for (uint32_t i = 0; i < want; i++) {
		struct proto_device a = make_device(i), b;

		proto_device_at(&m, i, &b);
		cr_assert_str_eq(a.name, b.name);
		cr_assert_eq(a.capabilities, b.capabilities);
		cr_assert_eq(a.flags, b.flags);
		cr_assert_eq(a.domain_id, b.domain_id);
		cr_assert_eq(a.dev_id, b.dev_id);
	}
	/* proto_encode() re-creates the packet from the decoded list */
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);
	/* a bad name is refused, the wrong kind of entry too */
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_LIST_DEVICES_REPLY, 5), 0);
	cr_assert_eq(proto_list_add_device(&lb, &(struct proto_device){ 0 }),
		     -EINVAL);
	cr_assert_eq(proto_list_add_domain(&lb, &(struct proto_domain){ 0 }),
		     -EINVAL);
	/* an empty last packet */
	len = proto_list_end(&lb, false);
	cr_assert_eq(len, 24);
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.flags, 0);
	cr_assert_eq(m.list.count, 0);
}

Test(proto, list_domains_and_stats)
{
	struct proto_list_builder lb;
	struct proto_msg m;
	int len;

	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_LIST_DOMAINS_REPLY, 6), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct proto_domain d = make_domain(i);

		cr_assert_eq(proto_list_add_domain(&lb, &d), 0);
	}
	len = proto_list_end(&lb, false);
	cr_assert_eq(len, (int)(24 + 100 * PROTO_DOMAIN_WIRE));
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.list.count, 100);
	for (uint32_t i = 0; i < 100; i++) {
		struct proto_domain a = make_domain(i), b;

		proto_domain_at(&m, i, &b);
		cr_assert_eq(a.domain_id, b.domain_id);
		cr_assert_eq(a.status, b.status);
		cr_assert_eq(a.owner_uid, b.owner_uid);
		cr_assert_eq(a.devices, b.devices);
		cr_assert_eq(a.mapped_bytes, b.mapped_bytes);
		cr_assert_eq(a.page_size, b.page_size);
		cr_assert_eq(a.generation, b.generation);
		cr_assert_eq(a.subscribers, b.subscribers);
	}
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);

	/* stats: fill to -ENOSPC */
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_STATS_REPLY, 7), 0);
	uint32_t n = 0;
	for (;;) {
		struct proto_stats s = make_stats(n);
		int r = proto_list_add_stats(&lb, &s);

		if (r) {
			cr_assert_eq(r, -ENOSPC);
			break;
		}
		n++;
	}
	cr_assert_eq(n, (PROTO_MAX_MSG - 24) / PROTO_STATS_WIRE);
	len = proto_list_end(&lb, true);
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.flags, PROTO_F_MORE);
	cr_assert_eq(m.list.count, n);
	for (uint32_t i = 0; i < n; i++) {
		struct proto_stats a = make_stats(i), b;

		proto_stats_at(&m, i, &b);
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	}
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);
	/* a small buffer fills sooner */
	cr_assert_eq(proto_list_begin(&lb, buf, 24 + 2 * PROTO_STATS_WIRE,
				      PROTO_STATS_REPLY, 7), 0);
	cr_assert_eq(proto_list_add_stats(&lb, &(struct proto_stats){ 0 }), 0);
	cr_assert_eq(proto_list_add_stats(&lb, &(struct proto_stats){ 0 }), 0);
	cr_assert_eq(proto_list_add_stats(&lb, &(struct proto_stats){ 0 }),
		     -ENOSPC);
	cr_assert_eq(proto_list_begin(&lb, buf, 23, PROTO_STATS_REPLY, 7),
		     -EMSGSIZE);
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf), PROTO_SYNC, 7),
		     -EINVAL);
}

Test(proto, get_fds_reply)
{
	struct proto_list_builder lb;
	struct proto_msg m;
	int len;

	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_GET_FDS_REPLY, 8), 0);
	proto_list_set_fds_ids(&lb, 2, 3);
	for (uint32_t i = 0; i < 4; i++) {
		struct proto_fd_device d = { .dev_id = 10 + i,
					     .fd_index = 4 - i };

		snprintf(d.name, sizeof(d.name), "vfio%u", i);
		cr_assert_eq(proto_list_add_fd_device(&lb, &d), 0);
	}
	len = proto_list_end(&lb, false);
	cr_assert_eq(len, (int)(32 + 4 * PROTO_FD_DEVICE_WIRE));
	/* the bytes PROTOCOL.md 6.14 gives, not only our own round trip:
	 * ioas_id at 0, hwpt_id at 4, ndevices at 8, reserved at 12 */
	{
		static const uint8_t body[16] = { 2, 0, 0, 0, 3, 0, 0, 0,
						  4, 0, 0, 0, 0, 0, 0, 0 };

		cr_assert_eq(memcmp(buf + 16, body, sizeof(body)), 0);
	}
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.list.ioas_id, 2);
	cr_assert_eq(m.list.hwpt_id, 3);
	cr_assert_eq(m.list.count, 4);
	for (uint32_t i = 0; i < 4; i++) {
		struct proto_fd_device d;
		char name[16];

		proto_fd_device_at(&m, i, &d);
		snprintf(name, sizeof(name), "vfio%u", i);
		cr_assert_str_eq(d.name, name);
		cr_assert_eq(d.dev_id, 10 + i);
		cr_assert_eq(d.fd_index, 4 - i);
	}
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);

	/* one packet only; fd indexes 1 .. count, each once */
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_GET_FDS_REPLY, 8), 0);
	cr_assert_eq(proto_list_end(&lb, true), -EINVAL);
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_GET_FDS_REPLY, 8), 0);
	cr_assert_eq(proto_list_add_fd_device(&lb, &(struct proto_fd_device){
			.name = "a", .fd_index = 0 }), -EINVAL);
	cr_assert_eq(proto_list_add_fd_device(&lb, &(struct proto_fd_device){
			.name = "a", .fd_index = 2 }), 0);
	cr_assert_eq(proto_list_end(&lb, false), -EINVAL);
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_GET_FDS_REPLY, 8), 0);
	cr_assert_eq(proto_list_add_fd_device(&lb, &(struct proto_fd_device){
			.name = "a", .fd_index = 1 }), 0);
	cr_assert_eq(proto_list_add_fd_device(&lb, &(struct proto_fd_device){
			.name = "b", .fd_index = 1 }), 0);
	cr_assert_eq(proto_list_end(&lb, false), -EINVAL);
}

/* ---- RANGES ---- */

#define SPAN_WORDS (CHUNK_MAX_PAGES / 64)

struct pageset {
	uint64_t base;
	uint64_t npages;
	uint8_t *bits;
	uint64_t count;
	uint64_t last;
};

static int pageset_add(void *ctx, uint64_t first, uint64_t count)
{
	struct pageset *ps = ctx;

	cr_assert_geq(first, ps->last);
	ps->last = first + count;
	for (uint64_t p = first; p < first + count; p++) {
		uint64_t i = p - ps->base;

		cr_assert(p >= ps->base && i < ps->npages);
		ps->bits[i / 8] |= (uint8_t)(1u << i % 8);
	}
	ps->count += count;
	return 0;
}

Test(proto, ranges_builder_and_decoder)
{
	const uint64_t base = (1ULL << 40) / 4096;
	const uint64_t npages = 64ULL * CHUNK_MAX_PAGES;
	uint8_t *want = calloc(npages / 8, 1);
	static uint64_t words[SPAN_WORDS];
	static uint8_t chunk[CHUNK_MAX_SIZE];
	struct pageset got = { .base = base, .npages = npages,
			       .bits = calloc(npages / 8, 1), .last = base };
	struct proto_ranges_builder rb;
	uint64_t total = 0;
	uint32_t seq = 0, packets_more = 0;
	int kinds[2] = { 0, 0 };

	rng_seed(4);
	/* dirty patterns from sparse to dense, chunk by chunk */
	for (uint64_t c = 0; c < npages / CHUNK_MAX_PAGES; c++)
		for (uint32_t i = 0; i < CHUNK_MAX_PAGES; i++) {
			unsigned int pct = (unsigned int)(c * 3 % 100);

			if (rng() % 100 < pct ||
			    (c % 4 == 1 && i / 512 % 3 == 0)) {
				uint64_t p = c * CHUNK_MAX_PAGES + i;

				want[p / 8] |= (uint8_t)(1u << p % 8);
				total++;
			}
		}

	struct proto_ranges hdr = { .generation = 9, .domain_id = 4,
				    .total_pages = total };
	cr_assert_eq(proto_ranges_begin(&rb, buf, sizeof(buf), 99, &hdr), 0);
	for (uint64_t c = 0; c < npages / CHUNK_MAX_PAGES; c++) {
		int n, r;

		memcpy(words, want + c * CHUNK_MAX_PAGES / 8,
		       CHUNK_MAX_PAGES / 8);
		n = chunk_encode(base + c * CHUNK_MAX_PAGES, CHUNK_MAX_PAGES,
				 words, chunk);
		if (!n)
			continue;
		cr_assert_gt(n, 0);
		kinds[chunk[12]]++;
		r = proto_ranges_add(&rb, chunk, (size_t)n);
		if (r == -ENOSPC) {
			struct proto_msg m;
			int len = proto_ranges_end(&rb, true);

			cr_assert_gt(rb.nchunks, 0);
			cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
			cr_assert_eq(m.flags, PROTO_F_MORE);
			cr_assert_eq(m.ranges.seq, seq);
			cr_assert_eq(m.ranges.total_pages, total);
			for (uint32_t k = 0, off = 0; k < m.ranges.nchunks;
			     k++)
				off += (uint32_t)chunk_decode(
					m.ranges.chunks + off,
					m.ranges.chunks_len - off, pageset_add,
					&got);
			packets_more++;
			hdr.seq = ++seq;
			cr_assert_eq(proto_ranges_begin(&rb, buf, sizeof(buf),
							99, &hdr), 0);
			r = proto_ranges_add(&rb, chunk, (size_t)n);
		}
		cr_assert_eq(r, 0);
	}
	struct proto_msg m;
	int len = proto_ranges_end(&rb, false);

	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.flags, 0);
	cr_assert_eq(m.id, 99);
	cr_assert_eq(m.ranges.generation, 9);
	cr_assert_eq(m.ranges.domain_id, 4);
	cr_assert_eq(m.ranges.seq, seq);
	for (uint32_t k = 0, off = 0; k < m.ranges.nchunks; k++)
		off += (uint32_t)chunk_decode(m.ranges.chunks + off,
					      m.ranges.chunks_len - off,
					      pageset_add, &got);
	/* the stream needed several packets, and both kinds of chunk */
	cr_assert_gt(packets_more, 0);
	cr_assert_gt(kinds[CHUNK_RUNS], 0);
	cr_assert_gt(kinds[CHUNK_RAW], 0);
	cr_assert_eq(got.count, total);
	cr_assert_eq(memcmp(got.bits, want, npages / 8), 0);
	/* proto_encode() copies chunks back into the same packet */
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);
	free(want);
	free(got.bits);
}

Test(proto, ranges_builder_edges)
{
	struct proto_ranges_builder rb;
	struct proto_msg m;
	uint64_t words[SPAN_WORDS] = { 0 };
	static uint8_t chunk[CHUNK_MAX_SIZE];
	int n, len;

	/* the last packet may be empty */
	cr_assert_eq(proto_ranges_begin(&rb, buf, sizeof(buf), 1,
		&(struct proto_ranges){ .generation = 0 }), 0);
	len = proto_ranges_end(&rb, false);
	cr_assert_eq(len, (int)(PROTO_HEADER_SIZE + PROTO_RANGES_FIXED));
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.ranges.nchunks, 0);
	cr_assert_eq(m.ranges.chunks_len, 0);
	/* a small buffer: -ENOSPC at once */
	words[0] = 0xff;
	n = chunk_encode(100, 64, words, chunk);
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_ranges_begin(&rb, buf, 48 + (size_t)n, 1,
		&(struct proto_ranges){ .total_pages = 16 }), 0);
	cr_assert_eq(proto_ranges_add(&rb, chunk, (size_t)n), 0);
	cr_assert_eq(proto_ranges_add(&rb, chunk, (size_t)n), -ENOSPC);
	/* a chunk whose length disagrees with its header */
	cr_assert_eq(proto_ranges_add(&rb, chunk, (size_t)n - 1), -EINVAL);
	cr_assert_eq(proto_ranges_begin(&rb, buf, 47, 1,
		&(struct proto_ranges){ 0 }), -EMSGSIZE);
}

/* ---- decoder rejections ---- */

/* Encode sample @type into buf; returns its length. */
static size_t enc(uint16_t type)
{
	struct proto_msg m = sample(type);
	int n = proto_encode(&m, buf, sizeof(buf));

	cr_assert_gt(n, 0, "%s", proto_type_name(type));
	return (size_t)n;
}

static int dec(size_t len)
{
	struct proto_msg m;

	return proto_decode(buf, len, &m);
}

static void set_len(size_t len)
{
	wire_put_le32(buf + 4, (uint32_t)len);
}

Test(proto, reject_header)
{
	size_t n = enc(PROTO_SYNC);

	cr_assert_eq(dec(n), 0);
	/* short header */
	for (size_t i = 0; i < PROTO_HEADER_SIZE; i++)
		cr_assert_eq(dec(i), -EBADMSG);
	/* length field differs from the packet */
	set_len(n + 1);
	cr_assert_eq(dec(n), -EMSGSIZE);
	set_len(n - 1);
	cr_assert_eq(dec(n), -EMSGSIZE);
	set_len(3);
	cr_assert_eq(dec(n), -EMSGSIZE);
	/* over the maximum, claimed or real */
	set_len(PROTO_MAX_MSG + 1);
	cr_assert_eq(dec(n), -EMSGSIZE);
	set_len(PROTO_MAX_MSG + 1);
	cr_assert_eq(dec(PROTO_MAX_MSG + 1), -EMSGSIZE);
	set_len(0xffffffff);
	cr_assert_eq(dec(n), -EMSGSIZE);
	/* unknown types */
	n = enc(PROTO_SYNC);
	for (uint32_t t = 0; t <= 0xffff; t++) {
		wire_put_le16(buf, (uint16_t)t);
		if (!proto_type_name((uint16_t)t))
			cr_assert_eq(dec(n), -EPROTO, "type %#x", t);
	}
	/* unknown flag bits */
	n = enc(PROTO_SYNC);
	for (unsigned int b = 0; b < 16; b++) {
		wire_put_le16(buf + 2, (uint16_t)(1u << b));
		cr_assert_eq(dec(n), -EBADMSG);
	}
	/* PROTO_F_MORE only where streams are */
	n = enc(PROTO_SYNC_REPLY);
	wire_put_le16(buf + 2, PROTO_F_MORE);
	cr_assert_eq(dec(n), -EBADMSG);
	/* a request without an id, an event with one */
	n = enc(PROTO_SYNC);
	wire_put_le64(buf + 8, 0);
	cr_assert_eq(dec(n), -EBADMSG);
	n = enc(PROTO_EV_ROUND);
	wire_put_le64(buf + 8, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	/* replies may carry id 0 (an error to an unreadable request) */
	n = enc(PROTO_ERROR);
	wire_put_le64(buf + 8, 0);
	cr_assert_eq(dec(n), 0);
}

Test(proto, reject_wrong_body_sizes)
{
	for (size_t i = 0; i < NTYPES; i++) {
		uint16_t t = all_types[i];
		size_t n;

		if (is_list(t) || t == PROTO_RANGES || t == PROTO_ERROR ||
		    t == PROTO_METRICS_REPLY)
			continue;
		n = enc(t);
		/* one byte more (a zero), one byte less */
		buf[n] = 0;
		set_len(n + 1);
		cr_assert_eq(dec(n + 1), -EBADMSG, "%s", proto_type_name(t));
		if (n > PROTO_HEADER_SIZE) {
			set_len(n - 1);
			cr_assert_eq(dec(n - 1), -EBADMSG, "%s",
				     proto_type_name(t));
		}
	}
	/* lists, ERROR and RANGES: shorter than their fixed part */
	static const uint16_t var[] = { PROTO_LIST_DEVICES_REPLY,
		PROTO_LIST_DOMAINS_REPLY, PROTO_STATS_REPLY,
		PROTO_GET_FDS_REPLY, PROTO_ERROR, PROTO_RANGES,
		PROTO_METRICS_REPLY };
	for (size_t i = 0; i < sizeof(var) / sizeof(var[0]); i++) {
		memset(buf, 0, 64);
		wire_put_le16(buf, var[i]);
		wire_put_le64(buf + 8, 1);
		for (size_t n = PROTO_HEADER_SIZE; n < PROTO_HEADER_SIZE + 8;
		     n++) {
			set_len(n);
			cr_assert_eq(dec(n), -EBADMSG);
		}
	}
}

/* Every reserved field of every fixed message: offset from the body. */
Test(proto, reject_reserved_fields)
{
	static const struct {
		uint16_t type;
		uint32_t off, size;
	} rsv[] = {
		{ PROTO_HELLO, 4, 4 }, { PROTO_HELLO_REPLY, 36, 4 },
		{ PROTO_CREATE_DOMAIN, 4, 4 },
		{ PROTO_CREATE_DOMAIN_REPLY, 12, 4 },
		{ PROTO_ATTACH_DEVICE, 4, 4 }, { PROTO_DETACH_DEVICE, 4, 4 },
		{ PROTO_ATTACH_DEVICE_REPLY, 4, 4 },
		{ PROTO_DESTROY_DOMAIN, 4, 4 }, { PROTO_TRACK_START, 4, 4 },
		{ PROTO_TRACK_STOP, 4, 4 }, { PROTO_UNSUBSCRIBE, 4, 4 },
		{ PROTO_SYNC, 4, 4 }, { PROTO_STATS, 4, 4 },
		{ PROTO_GET_FDS, 4, 4 }, { PROTO_EV_STATE_LOST, 4, 4 },
		{ PROTO_DMA_WRITE, 4, 4 }, { PROTO_METRICS, 4, 4 },
		{ PROTO_METRICS_REPLY, 4, 4 },
		{ PROTO_SUBSCRIBE, 12, 4 }, { PROTO_SUBSCRIBE_REPLY, 4, 4 },
		{ PROTO_GET_RANGES, 8, 8 }, { PROTO_ACK, 4, 4 },
		{ PROTO_EV_ROUND, 4, 4 }, { PROTO_ERROR, 4, 4 },
	};

	for (size_t i = 0; i < sizeof(rsv) / sizeof(rsv[0]); i++)
		for (uint32_t b = 0; b < rsv[i].size * 8; b++) {
			size_t n = enc(rsv[i].type);

			buf[PROTO_HEADER_SIZE + rsv[i].off + b / 8] ^=
				(uint8_t)(1u << b % 8);
			cr_assert_eq(dec(n), -EBADMSG, "%s +%u bit %u",
				     proto_type_name(rsv[i].type), rsv[i].off,
				     b);
		}
}

Test(proto, reject_unknown_body_flags)
{
	struct proto_msg m;
	size_t n;

	n = enc(PROTO_CREATE_DOMAIN);
	wire_put_le32(buf + 16, 1u << 5);
	cr_assert_eq(dec(n), -EBADMSG);
	/* the sources' flags (1 << 2 .. 1 << 4) are known */
	wire_put_le32(buf + 16, PROTO_CREATE_TRACKING |
		      PROTO_CREATE_SOURCE_IOMMU | PROTO_CREATE_SOURCE_DEVICE |
		      PROTO_CREATE_ALL_DIRTY);
	cr_assert_eq(proto_decode(buf, n, &m), 0);
	cr_assert_eq(m.create_domain.flags, 0x1du);
	n = enc(PROTO_MAP);
	wire_put_le32(buf + 20, 0);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 20, 1u << 5);
	cr_assert_eq(dec(n), -EBADMSG);
	/* EXTERNAL: with READABLE or WRITEABLE only */
	wire_put_le32(buf + 20, PROTO_MAP_EXTERNAL);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 20, PROTO_MAP_EXTERNAL | PROTO_MAP_WRITEABLE);
	cr_assert_eq(proto_decode(buf, n, &m), 0);
	cr_assert_eq(m.map.flags, PROTO_MAP_EXTERNAL | PROTO_MAP_WRITEABLE);
	/* UNMAP: 0 or EXTERNAL, nothing else */
	n = enc(PROTO_UNMAP);
	for (uint32_t b = 0; b < 32; b++) {
		wire_put_le32(buf + 20, 1u << b);
		cr_assert_eq(dec(n), 1u << b == PROTO_MAP_EXTERNAL ? 0 :
			     -EBADMSG, "UNMAP flag bit %u", b);
	}
	n = enc(PROTO_SUBSCRIBE);
	wire_put_le32(buf + 24, 1u << 1);
	cr_assert_eq(dec(n), -EBADMSG);
	n = enc(PROTO_GET_RANGES);
	wire_put_le32(buf + 20, 1u << 1);
	cr_assert_eq(dec(n), -EBADMSG);
	/* replies: page size and leaf must be powers of two */
	n = enc(PROTO_SUBSCRIBE_REPLY);
	wire_put_le64(buf + 24, 3000);
	cr_assert_eq(dec(n), -EBADMSG);
	n = enc(PROTO_SUBSCRIBE_REPLY);
	wire_put_le64(buf + 32, 0);
	cr_assert_eq(dec(n), -EBADMSG);
	n = enc(PROTO_SUBSCRIBE_REPLY);
	wire_put_le64(buf + 32, 1024);
	cr_assert_eq(dec(n), -EBADMSG);
	/* ...but unknown reply bits (status, session flags) pass */
	n = enc(PROTO_HELLO_REPLY);
	wire_put_le32(buf + 16 + 32, 0x80000000u);
	cr_assert_eq(dec(n), 0);
	/* and a client may offer features dirtyd does not know */
	n = enc(PROTO_HELLO);
	wire_put_le64(buf + 16 + 8, ~0ULL);
	cr_assert_eq(dec(n), 0);
}

Test(proto, reject_names)
{
	static const uint16_t types[] = { PROTO_CREATE_DOMAIN,
		PROTO_ATTACH_DEVICE, PROTO_DETACH_DEVICE };

	for (size_t i = 0; i < 3; i++) {
		uint8_t *name = buf + PROTO_HEADER_SIZE + 8;
		size_t n = enc(types[i]);

		/* unterminated */
		memset(name, 'a', PROTO_NAME_MAX);
		cr_assert_eq(dec(n), -EBADMSG);
		/* empty */
		memset(name, 0, PROTO_NAME_MAX);
		cr_assert_eq(dec(n), -EBADMSG);
		/* something after the first NUL */
		memcpy(name, "abc", 3);
		name[PROTO_NAME_MAX - 1] = 'z';
		cr_assert_eq(dec(n), -EBADMSG);
		name[PROTO_NAME_MAX - 1] = 0;
		name[4] = 'z';
		cr_assert_eq(dec(n), -EBADMSG);
		name[4] = 0;
		cr_assert_eq(dec(n), 0);
		/* 63 bytes and a NUL is the longest */
		memset(name, 'b', PROTO_NAME_MAX - 1);
		cr_assert_eq(dec(n), 0);
	}
}

static size_t build_devices(uint32_t count)
{
	struct proto_list_builder lb;

	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_LIST_DEVICES_REPLY, 1), 0);
	for (uint32_t i = 0; i < count; i++) {
		struct proto_device d = make_device(i);

		cr_assert_eq(proto_list_add_device(&lb, &d), 0);
	}
	return (size_t)proto_list_end(&lb, false);
}

Test(proto, reject_lists)
{
	size_t n = build_devices(3);
	uint8_t *e = buf + 24;

	cr_assert_eq(dec(n), 0);
	/* counts overflowing, or not filling, the length */
	wire_put_le32(buf + 16, 4);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16, 2);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16, 0xffffffff);
	cr_assert_eq(dec(n), -EBADMSG);
	/* 0x2e8ba2e9 * 88 wraps to 88 in 32 bits */
	wire_put_le32(buf + 16, 0x2e8ba2e9);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16, 3);
	/* a trailing partial entry */
	buf[n] = 0;
	set_len(n + 1);
	cr_assert_eq(dec(n + 1), -EBADMSG);
	set_len(n);
	/* reserved fields: the list's and an entry's */
	wire_put_le32(buf + 20, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 20, 0);
	wire_put_le32(e + PROTO_DEVICE_WIRE + 84, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(e + PROTO_DEVICE_WIRE + 84, 0);
	/* an entry's name */
	memset(e + 2 * PROTO_DEVICE_WIRE, 'q', PROTO_NAME_MAX);
	cr_assert_eq(dec(n), -EBADMSG);
	memset(e + 2 * PROTO_DEVICE_WIRE, 0, PROTO_NAME_MAX);
	cr_assert_eq(dec(n), -EBADMSG);
	e[2 * PROTO_DEVICE_WIRE] = 'q';
	cr_assert_eq(dec(n), 0);

	/* domains: entry reserved */
	struct proto_list_builder lb;
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_LIST_DOMAINS_REPLY, 1), 0);
	cr_assert_eq(proto_list_add_domain(&lb, &(struct proto_domain){ 0 }),
		     0);
	n = (size_t)proto_list_end(&lb, false);
	wire_put_le32(buf + 24 + 44, 9);
	cr_assert_eq(dec(n), -EBADMSG);

	/* GET_FDS_REPLY: reserved, fd index out of range, MORE */
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf),
				      PROTO_GET_FDS_REPLY, 1), 0);
	cr_assert_eq(proto_list_add_fd_device(&lb, &(struct proto_fd_device){
			.name = "a", .fd_index = 1 }), 0);
	n = (size_t)proto_list_end(&lb, false);
	cr_assert_eq(dec(n), 0);
	wire_put_le32(buf + 28, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 28, 0);
	wire_put_le32(buf + 32 + 68, 2);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 32 + 68, 0);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 32 + 68, 1);
	wire_put_le16(buf + 2, PROTO_F_MORE);
	cr_assert_eq(dec(n), -EBADMSG);
}

Test(proto, reject_error_text)
{
	struct proto_msg m = { .type = PROTO_ERROR, .id = 3 };
	size_t n;

	/* more than PROTO_ERROR_TEXT_MAX bytes of text */
	memset(buf, 0, sizeof(buf));
	wire_put_le16(buf, PROTO_ERROR);
	wire_put_le64(buf + 8, 3);
	wire_put_le32(buf + 16, EIO);
	memset(buf + 24, 'e', PROTO_ERROR_TEXT_MAX + 1);
	n = 24 + PROTO_ERROR_TEXT_MAX + 1;
	set_len(n);
	cr_assert_eq(dec(n), -EBADMSG);
	set_len(n - 1);
	cr_assert_eq(proto_decode(buf, n - 1, &m), 0);
	cr_assert_eq(m.error.err, EIO);
	cr_assert_eq(m.error.text_len, PROTO_ERROR_TEXT_MAX);
	/* a NUL in the text */
	buf[30] = 0;
	cr_assert_eq(dec(n - 1), -EBADMSG);
	buf[30] = 'e';
	/* errno 0 or out of range */
	wire_put_le32(buf + 16, 0);
	cr_assert_eq(dec(n - 1), -EBADMSG);
	wire_put_le32(buf + 16, 4096);
	cr_assert_eq(dec(n - 1), -EBADMSG);
	wire_put_le32(buf + 16, 4095);
	cr_assert_eq(dec(n - 1), 0);
}

/* A RANGES packet of two chunks: RUNS at page 1000, RAW at page 40000. */
static size_t build_ranges(size_t *c0, size_t *c1)
{
	static uint64_t words[SPAN_WORDS];
	static uint8_t chunk[CHUNK_MAX_SIZE];
	struct proto_ranges_builder rb;
	int n;

	cr_assert_eq(proto_ranges_begin(&rb, buf, sizeof(buf), 7,
		&(struct proto_ranges){ .generation = 1, .domain_id = 1,
					.total_pages = 3 + 5 }), 0);
	memset(words, 0, sizeof(words));
	words[0] = 0x7ULL << 40;	/* 3 pages: RUNS */
	n = chunk_encode(1000, 64, words, chunk);
	cr_assert_eq(chunk[12], CHUNK_RUNS);
	*c0 = (size_t)n;
	cr_assert_eq(proto_ranges_add(&rb, chunk, (size_t)n), 0);
	words[0] = 0x15ULL | 1ULL << 7 | 1ULL << 9;	/* 5 pages: RAW */
	n = chunk_encode(40000, 16, words, chunk);
	cr_assert_eq(chunk[12], CHUNK_RAW);
	*c1 = (size_t)n;
	cr_assert_eq(proto_ranges_add(&rb, chunk, (size_t)n), 0);
	return (size_t)proto_ranges_end(&rb, false);
}

Test(proto, reject_ranges)
{
	size_t c0, c1, n = build_ranges(&c0, &c1);
	uint8_t *ch = buf + 48;
	struct proto_msg m;

	cr_assert_eq(proto_decode(buf, n, &m), 0);
	cr_assert_eq(m.ranges.nchunks, 2);
	cr_assert_eq(m.ranges.chunks_len, c0 + c1);
	/* reserved */
	wire_put_le32(buf + 16 + 28, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16 + 28, 0);
	/* more chunks claimed than there are, fewer than fill it */
	wire_put_le32(buf + 16 + 24, 3);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16 + 24, 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16 + 24, 0xffffffff);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(buf + 16 + 24, 2);
	/* a trailing byte; a packet cut inside the last chunk */
	buf[n] = 0;
	set_len(n + 1);
	cr_assert_eq(dec(n + 1), -EBADMSG);
	set_len(n - 1);
	cr_assert_eq(dec(n - 1), -EBADMSG);
	set_len(n);
	cr_assert_eq(dec(n), 0);
	/* malformed chunks: reserved, kind, span, zero run */
	ch[13] = 1;
	cr_assert_eq(dec(n), -EBADMSG);
	ch[13] = 0;
	ch[12] = 2;
	cr_assert_eq(dec(n), -EBADMSG);
	ch[12] = CHUNK_RUNS;
	wire_put_le32(ch + 8, 0);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(ch + 8, CHUNK_MAX_PAGES + 1);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le32(ch + 8, 64);
	cr_assert_eq(ch[16], 40);	/* gap 40, run 3 */
	ch[17] = 0;	/* run 3 -> 0 */
	cr_assert_eq(dec(n), -EBADMSG);
	ch[17] = 3;
	cr_assert_eq(dec(n), 0);
	/* RAW: a trailing zero byte is not canonical */
	ch[c0 + 16 + 1] = 0;
	cr_assert_eq(dec(n), -EBADMSG);
	ch[c0 + 16 + 1] = 0x02;
	cr_assert_eq(dec(n), 0);
	/* chunks out of order or overlapping */
	wire_put_le64(ch + c0, 1000);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le64(ch + c0, 1063);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le64(ch + c0, 1064);	/* just after the first's span */
	cr_assert_eq(dec(n), 0);
	/* more pages than the generation's total */
	wire_put_le64(buf + 16 + 16, 7);
	cr_assert_eq(dec(n), -EBADMSG);
	wire_put_le64(buf + 16 + 16, 8);
	cr_assert_eq(dec(n), 0);
}

/* ---- robustness ---- */

static void check_decoded(const uint8_t *p, size_t len)
{
	struct proto_msg m;
	int r = proto_decode(p, len, &m);

	cr_assert(r == 0 || documented_error(r), "decode returned %d", r);
	if (r)
		return;
	/* what decodes re-encodes to the same bytes */
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), (int)len,
		     "%s", proto_type_name(m.type));
	cr_assert_eq(memcmp(p, buf2, len), 0, "%s", proto_type_name(m.type));
}

Test(proto, random_bytes)
{
	static uint8_t pkt[PROTO_MAX_MSG + 16];

	rng_seed(1);
	for (unsigned int it = 0; it < 200000; it++) {
		size_t len = (size_t)(rng() % 256);

		if (it % 1000 == 0)
			len = (size_t)(rng() % (PROTO_MAX_MSG + 16));
		for (size_t i = 0; i < len; i++)
			pkt[i] = (uint8_t)rng();
		/* often a plausible header, so bodies are reached */
		if (len >= PROTO_HEADER_SIZE && it % 2) {
			wire_put_le16(pkt, all_types[rng() % NTYPES]);
			wire_put_le16(pkt + 2, (uint16_t)(rng() % 2));
			wire_put_le32(pkt + 4, (uint32_t)len);
		}
		check_decoded(pkt, len);
	}
}

Test(proto, mutated_valid_messages)
{
	static uint8_t pkt[PROTO_MAX_MSG + 16];
	size_t c0, c1;
	unsigned int ok = 0;

	rng_seed(2);
	for (unsigned int it = 0; it < 100000; it++) {
		uint16_t t = all_types[rng() % NTYPES];
		size_t len;

		if (t == PROTO_RANGES)
			len = build_ranges(&c0, &c1);
		else if (is_list(t))
			len = build_devices((uint32_t)(rng() % 4));
		else
			len = enc(t);
		memcpy(pkt, buf, len);
		for (unsigned int k = (unsigned int)(rng() % 3) + 1; k--;)
			pkt[rng() % len] ^= (uint8_t)(1u << rng() % 8);
		if (rng() % 8 == 0) {	/* and sometimes the size */
			len = (size_t)(rng() % (len + 8));
			if (len >= 8 && rng() % 2)
				wire_put_le32(pkt + 4, (uint32_t)len);
		}
		{
			struct proto_msg m;

			ok += !proto_decode(pkt, len, &m);
		}
		check_decoded(pkt, len);
	}
	/* some mutations land in fields with no constraint */
	cr_assert_gt(ok, 1000);
}

/* ---- the examples in PROTOCOL.md ---- */

struct example {
	char name[64];
	uint8_t bytes[2048];
	size_t len;
};

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Every ```hex block, with the name from the nearest preceding line
 * "Example: NAME".  Inside a block, '#' starts a comment to the end of the
 * line; everything else is pairs of hex digits and white space.
 */
static size_t parse_examples(const char *md, struct example *ex, size_t max)
{
	const char *p = md;
	char name[64] = "";
	size_t n = 0;

	while (*p) {
		const char *eol = strchrnul(p, '\n');

		if (!strncmp(p, "Example: ", 9)) {
			size_t l = 0;

			for (const char *q = p + 9; q < eol && *q != ' ' &&
			     *q != '\r' && l < sizeof(name) - 1; q++)
				name[l++] = *q;
			name[l] = 0;
		} else if (!strncmp(p, "```hex", 6) &&
			   (p[6] == '\n' || p[6] == '\r')) {
			struct example *e = &ex[n];
			int hi = -1;

			cr_assert_lt(n, max);
			cr_assert_neq(name[0], 0,
				      "a hex block without an Example: line");
			strcpy(e->name, name);
			name[0] = 0;
			e->len = 0;
			p = eol + 1;
			while (*p && strncmp(p, "```", 3)) {
				eol = strchrnul(p, '\n');
				for (const char *q = p; q < eol && *q != '#';
				     q++) {
					int v = hexval(*q);

					if (*q == ' ' || *q == '\t' ||
					    *q == '\r')
						continue;
					cr_assert_geq(v, 0,
						      "%s: stray '%c'", e->name,
						      *q);
					if (hi < 0) {
						hi = v;
						continue;
					}
					cr_assert_lt(e->len, sizeof(e->bytes));
					e->bytes[e->len++] =
						(uint8_t)(hi << 4 | v);
					hi = -1;
				}
				p = *eol ? eol + 1 : eol;
			}
			cr_assert_eq(hi, -1, "%s: odd number of digits",
				     e->name);
			n++;
			eol = strchrnul(p, '\n');
		}
		p = *eol ? eol + 1 : eol;
	}
	return n;
}

static const struct example *find(const struct example *ex, size_t n,
				  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ex[i].name, name))
			return &ex[i];
	cr_assert_fail("PROTOCOL.md has no example %s", name);
	return NULL;
}

struct count_runs {
	uint64_t pages;
	uint64_t first;
};

static int count_runs(void *ctx, uint64_t first, uint64_t count)
{
	struct count_runs *c = ctx;

	if (!c->pages)
		c->first = first;
	c->pages += count;
	return 0;
}

struct span_bits {
	uint64_t first;
	uint64_t bits[SPAN_WORDS];
};

static int span_set(void *ctx, uint64_t first, uint64_t count)
{
	struct span_bits *sb = ctx;

	for (uint64_t p = first - sb->first; p < first - sb->first + count;
	     p++)
		sb->bits[p / 64] |= 1ULL << (p % 64);
	return 0;
}

static void assert_canonical(const struct proto_msg *m, const char *name)
{
	static struct span_bits sb;
	static uint8_t out[CHUNK_MAX_SIZE];
	size_t off = 0;

	for (uint32_t k = 0; k < m->ranges.nchunks; k++) {
		const uint8_t *c = m->ranges.chunks + off;
		uint32_t span;
		int len, n;

		memset(&sb, 0, sizeof(sb));
		chunk_peek(c, &sb.first, &span);
		len = chunk_decode(c, m->ranges.chunks_len - off, span_set,
				   &sb);
		cr_assert_gt(len, 0);
		n = chunk_encode(sb.first, span, sb.bits, out);
		cr_assert_eq(n, len, "%s: chunk %u is not canonical", name, k);
		cr_assert_eq(memcmp(out, c, (size_t)n), 0,
			     "%s: chunk %u is not canonical", name, k);
		off += (size_t)len;
	}
}

Test(proto, protocol_md_examples)
{
	static struct example ex[64];
	static const char *const required[] = {
		"HELLO", "HELLO_REPLY", "CREATE_DOMAIN", "ERROR",
		"SUBSCRIBE", "SUBSCRIBE_REPLY", "SYNC", "SYNC_REPLY",
		"GET_RANGES", "RANGES", "ACK", "STATS_REPLY",
		"LIST_DEVICES_REPLY", "EV_ROUND",
	};
	const size_t nreq = sizeof(required) / sizeof(required[0]);
	char *md = read_file(PROTOCOL_MD);
	size_t n = parse_examples(md, ex, 64);
	struct proto_msg m;

	cr_assert_geq(n, nreq, "only %zu examples in %s", n, PROTOCOL_MD);
	/* every block: decodes, is the type it is named after, re-encodes */
	for (size_t i = 0; i < n; i++) {
		int r = proto_decode(ex[i].bytes, ex[i].len, &m);

		cr_assert_eq(r, 0, "example %s: decode %d", ex[i].name, r);
		cr_assert_str_eq(proto_type_name(m.type), ex[i].name,
				 "example %s decodes as %s", ex[i].name,
				 proto_type_name(m.type));
		cr_assert_eq(proto_encode(&m, buf, sizeof(buf)),
			     (int)ex[i].len, "example %s", ex[i].name);
		cr_assert_eq(memcmp(buf, ex[i].bytes, ex[i].len), 0,
			     "example %s re-encodes differently", ex[i].name);
	}
	for (size_t i = 0; i < nreq; i++)
		find(ex, n, required[i]);
	/* chunks in the examples are what chunk_encode() makes of them */
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(proto_decode(ex[i].bytes, ex[i].len, &m), 0);
		if (m.type == PROTO_RANGES)
			assert_canonical(&m, ex[i].name);
	}

	/* and they say what the text around them says */
	const struct example *e = find(ex, n, "HELLO");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.id, 1);
	cr_assert_eq(m.hello.major, PROTO_VERSION_MAJOR);
	cr_assert_eq(m.hello.minor, PROTO_VERSION_MINOR);
	/* the story's client offers every feature it uses (not SOURCES: it
	 * lists no sources) */
	cr_assert_eq(m.hello.features, PROTO_FEAT_RANGES_RAW |
		     PROTO_FEAT_RESUME | PROTO_FEAT_FD_PASSING |
		     PROTO_FEAT_EVENTS | PROTO_FEAT_ADOPT);
	cr_assert_eq(m.hello.resume_token, 0);

	e = find(ex, n, "HELLO_REPLY");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.id, 1);
	cr_assert_eq(m.hello_reply.max_msg, PROTO_MAX_MSG);
	cr_assert_eq(m.hello_reply.features, PROTO_FEAT_RANGES_RAW |
		     PROTO_FEAT_RESUME | PROTO_FEAT_EVENTS | PROTO_FEAT_ADOPT);
	cr_assert_eq(m.hello_reply.uid, 1000);
	cr_assert_eq(m.hello_reply.session_flags, 0);
	cr_assert_neq(m.hello_reply.session_token, 0);

	e = find(ex, n, "CREATE_DOMAIN");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.create_domain.flags, PROTO_CREATE_TRACKING);
	cr_assert_str_eq(m.create_domain.device, "sim-legacy0");
	uint64_t create_id = m.id;

	e = find(ex, n, "ERROR");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.id, create_id);
	cr_assert_eq(m.error.err, EOPNOTSUPP);
	cr_assert_not_null(memmem(m.error.text, m.error.text_len,
				  "sim-legacy0", 11));

	/* the story of section 14 (tests/conformance/examples.py writes it
	 * from a running dirtyd): an on-demand CLEAN subscription on a
	 * domain of 4 KiB leaves, so SYNC_REPLY, RANGES, ACK and STATS
	 * agree on one generation and its pages */
	e = find(ex, n, "SUBSCRIBE");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.subscribe.domain_id, 1);
	cr_assert_eq(m.subscribe.interval_ms, 0);
	cr_assert_eq(m.subscribe.flags, PROTO_SUBSCRIBE_CLEAN);

	e = find(ex, n, "SUBSCRIBE_REPLY");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.subscribe_reply.page_size, 4096);
	cr_assert_eq(m.subscribe_reply.max_leaf, 4096);

	e = find(ex, n, "SYNC_REPLY");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	uint64_t gen = m.sync_reply.generation;
	uint64_t pending = m.sync_reply.pending_pages;

	cr_assert_gt(gen, 0);
	cr_assert_gt(pending, 0);

	e = find(ex, n, "GET_RANGES");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.get_ranges.domain_id, 1);
	cr_assert_eq(m.get_ranges.flags, 0);

	e = find(ex, n, "RANGES");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.flags, 0);
	cr_assert_eq(m.ranges.generation, gen);
	cr_assert_eq(m.ranges.nchunks, 2);
	cr_assert_eq(m.ranges.total_pages, pending);
	{
		struct count_runs a = { 0 }, b = { 0 };
		int l0 = chunk_decode(m.ranges.chunks, m.ranges.chunks_len,
				      count_runs, &a);

		cr_assert_gt(l0, 0);
		cr_assert_eq(m.ranges.chunks[12], CHUNK_RUNS);
		cr_assert_eq(m.ranges.chunks[l0 + 12], CHUNK_RAW);
		cr_assert_gt(chunk_decode(m.ranges.chunks + l0,
					  m.ranges.chunks_len - (size_t)l0,
					  count_runs, &b), 0);
		cr_assert_eq(a.pages + b.pages, m.ranges.total_pages);
		cr_assert_eq(a.first, 0x40000);
	}

	e = find(ex, n, "ACK");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.ack.generation, gen);

	e = find(ex, n, "STATS_REPLY");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.list.count, 1);
	{
		struct proto_stats s;

		proto_stats_at(&m, 0, &s);
		cr_assert_eq(s.domain_id, 1);
		cr_assert_eq(s.generation, gen);
		cr_assert_eq(s.last_round_pages, pending);
		cr_assert_eq(s.pages_sent, pending);
		cr_assert_eq(s.pending_pages, 0);
		cr_assert_eq(s.mapped_bytes, 1ULL << 30);
	}

	e = find(ex, n, "LIST_DEVICES_REPLY");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_geq(m.list.count, 2);
	{
		bool sim0 = false, legacy = false;

		for (uint32_t i = 0; i < m.list.count; i++) {
			struct proto_device d;

			proto_device_at(&m, i, &d);
			if (!strcmp(d.name, "sim0")) {
				sim0 = true;
				cr_assert(d.flags & PROTO_DEVICE_DIRTY_CAPABLE);
			} else if (!strcmp(d.name, "sim-legacy0")) {
				legacy = true;
				cr_assert_not(d.flags &
					      PROTO_DEVICE_DIRTY_CAPABLE);
			}
		}
		cr_assert(sim0 && legacy);
	}

	e = find(ex, n, "EV_ROUND");
	cr_assert_eq(proto_decode(e->bytes, e->len, &m), 0);
	cr_assert_eq(m.id, 0);
	cr_assert_eq(m.ev_round.domain_id, 1);
	free(md);
}

/* GET_FDS_REPLY with no device (the mock provider's) decodes; spelled out
 * from PROTOCOL.md 6.14. */
Test(proto, get_fds_reply_without_devices)
{
	static const uint8_t pkt[32] = {
		0x12, 0x80, 0, 0, 32, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	struct proto_msg m;

	cr_assert_eq(proto_decode(pkt, sizeof(pkt), &m), 0);
	cr_assert_eq(m.list.ioas_id, 1);
	cr_assert_eq(m.list.hwpt_id, 2);
	cr_assert_eq(m.list.count, 0);
}

/* str64 names and ERROR text: valid UTF-8 without control characters
 * (PROTOCOL.md 2); the encoder makes any ERROR text so. */
Test(proto, names_and_error_text_are_utf8)
{
	static const char *const bad[] = {
		"e\xff", "e\xc0\x80", "e\xed\xa0\x80", "e\xc3",
		"e\xf4\x90\x80\x80", "e\x80", "a\nb", "a\x7f", "\x1b[2J",
	};
	static const char *const good[] = {
		"sim0", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"0000:00:04.0",
	};
	struct proto_msg m = { .type = PROTO_CREATE_DOMAIN, .id = 1 }, d;
	int n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(m.create_domain.device, sizeof(m.create_domain.device),
			 "%s", bad[i]);
		cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL,
			     "name %zu", i);
		/* the same bytes on the wire: malformed */
		m.create_domain.device[0] = 'x';
		n = proto_encode(&(struct proto_msg){ .type =
				 PROTO_CREATE_DOMAIN, .id = 1,
				 .create_domain = { .device = "x" } },
				 buf, sizeof(buf));
		cr_assert_gt(n, 0);
		memcpy(buf + 16 + 8, bad[i], strlen(bad[i]));
		cr_assert_eq(proto_decode(buf, (size_t)n, &d), -EBADMSG,
			     "name %zu", i);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(m.create_domain.device, sizeof(m.create_domain.device),
			 "%s", good[i]);
		n = proto_encode(&m, buf, sizeof(buf));
		cr_assert_gt(n, 0, "name %zu", i);
		cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	}
	/* ERROR: invalid bytes become '?', never a control character */
	m = (struct proto_msg){ .type = PROTO_ERROR, .id = 3, .error = {
		.err = ENOENT, .text = "no device named e\xff\n\xc3",
		.text_len = 21 } };
	n = proto_encode(&m, buf, sizeof(buf));
	cr_assert_eq(n, 16 + 8 + 20);
	cr_assert_eq(memcmp(buf + 24, "no device named e???", 20), 0);
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
	buf[30] = '\n';
	cr_assert_eq(proto_decode(buf, (size_t)n, &d), -EBADMSG);
}

/* METRICS_REPLY: whole lines of text, each ending in a newline, without
 * another control character; an empty text is allowed (PROTOCOL.md 6.17) */
Test(proto, metrics_reply_text)
{
	static const char *const bad[] = {
		"no newline at the end", "a\tb\n", "a\rb\n",
		"\xff\n", "a\x7f\n", "\xc0\xaf\n",
	};
	static const char *const good[] = {
		"", "\n", "# EOF\n", "a{domain=\"1\"} 2\n\xc3\xa9\n",
	};
	struct proto_msg m = sample(PROTO_METRICS_REPLY), d;
	int n;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		m.metrics.text = good[i];
		m.metrics.text_len = strlen(good[i]);
		n = proto_encode(&m, buf, sizeof(buf));
		cr_assert_eq(n, (int)(PROTO_HEADER_SIZE + PROTO_METRICS_FIXED +
				      strlen(good[i])), "good %zu", i);
		cr_assert_eq(proto_decode(buf, (size_t)n, &d), 0);
		cr_assert_eq(d.metrics.text_len, strlen(good[i]));
		cr_assert_eq(memcmp(d.metrics.text, good[i],
				    d.metrics.text_len), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m.metrics.text = bad[i];
		m.metrics.text_len = strlen(bad[i]);
		cr_assert_eq(proto_encode(&m, buf, sizeof(buf)), -EINVAL,
			     "bad %zu", i);
		cr_assert(!proto_metrics_text_valid(bad[i], strlen(bad[i])));
	}
}

/* ADOPT_REPLY: PROTOCOL.md 6.18's offsets; fd_index 0 (no descriptor)
 * allowed, others 1 .. count each once; one packet only. */
Test(proto, adopt_reply)
{
	struct proto_list_builder lb;
	struct proto_adopt_device d;
	struct proto_msg m = { .type = PROTO_ADOPT_REPLY }, r;
	int len;

	m.list.ioas_id = 2;
	m.list.hwpt_id = 3;
	m.list.status = PROTO_DOMAIN_SUPPORTED | PROTO_DOMAIN_ENABLED;
	m.list.page_size = 4096;
	m.list.max_leaf = 1 << 21;
	m.list.adopt_flags = PROTO_ADOPT_VERIFIES_EXTERNAL;
	m.list.lease = 0x1122334455667788ULL;
	cr_assert_eq(proto_list_begin(&lb, buf, sizeof(buf), PROTO_ADOPT_REPLY,
				      9), 0);
	proto_list_set_adopt(&lb, &m);
	d = (struct proto_adopt_device){ .name = "mock0", .dev_id = 7,
					 .fd_index = 0, .dev_flags = 3 };
	cr_assert_eq(proto_list_add_adopt_device(&lb, &d), 0);
	d = (struct proto_adopt_device){ .name = "0000:65:00.0", .dev_id = 8,
					 .fd_index = 1, .dev_flags = 3 };
	cr_assert_eq(proto_list_add_adopt_device(&lb, &d), 0);
	len = proto_list_end(&lb, false);
	cr_assert_eq(len, (int)(16 + PROTO_ADOPT_FIXED +
				2 * PROTO_ADOPT_DEVICE_WIRE));
	{
		static const uint8_t body[48] = {
			2, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0,
			0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0,
			2, 0, 0, 0, 0, 0, 0, 0,
			0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
		};

		cr_assert_eq(memcmp(buf + 16, body, sizeof(body)), 0);
	}
	cr_assert_eq(proto_decode(buf, (size_t)len, &r), 0);
	cr_assert_eq(r.list.count, 2);
	cr_assert_eq(r.list.lease, m.list.lease);
	cr_assert_eq(r.list.max_leaf, 1 << 21);
	proto_adopt_device_at(&r, 1, &d);
	cr_assert_str_eq(d.name, "0000:65:00.0");
	cr_assert_eq(d.fd_index, 1);
	cr_assert_eq(proto_encode(&r, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);
	/* an fd_index twice, or past the count: malformed */
	wire_put_le32(buf + 16 + PROTO_ADOPT_FIXED + 68, 1);
	cr_assert_eq(proto_decode(buf, (size_t)len, &r), -EBADMSG);
	wire_put_le32(buf + 16 + PROTO_ADOPT_FIXED + 68, 3);
	cr_assert_eq(proto_decode(buf, (size_t)len, &r), -EBADMSG);
	/* a reserved field */
	wire_put_le32(buf + 16 + PROTO_ADOPT_FIXED + 68, 0);
	wire_put_le32(buf + 16 + 36, 1);
	cr_assert_eq(proto_decode(buf, (size_t)len, &r), -EBADMSG);
}

/* READOPT: devices and ranges after the fixed part, each checked. */
Test(proto, readopt)
{
	struct proto_adopt_device devs[2] = {
		{ .name = "mock0", .dev_id = 7 },
		{ .name = "vfio3", .dev_id = 9, .fd_index = 1 },
	};
	struct proto_range rg[2] = { { 1 << 20, 1 << 20 }, { 1 << 22, 4096 } };
	struct proto_readopt ro = { .flags = PROTO_CREATE_TRACKING,
				    .ioas_id = 2, .hwpt_id = 3, .ndevices = 2,
				    .nranges = 2, .lease = 5 };
	struct proto_adopt_device d;
	struct proto_range g;
	struct proto_msg m;
	int len;

	len = proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg);
	cr_assert_eq(len, (int)(16 + PROTO_READOPT_FIXED +
				2 * PROTO_ADOPT_DEVICE_WIRE +
				2 * PROTO_RANGE_WIRE));
	cr_assert_eq(wire_get_le32(buf + 16 + 12), 2, "ndevices at 12");
	cr_assert_eq(wire_get_le64(buf + 16 + 24), 5, "lease at 24");
	cr_assert_eq(proto_decode(buf, (size_t)len, &m), 0);
	cr_assert_eq(m.readopt.nranges, 2);
	proto_readopt_device_at(&m.readopt, 1, &d);
	cr_assert_str_eq(d.name, "vfio3");
	cr_assert_eq(d.fd_index, 1);
	proto_readopt_range_at(&m.readopt, 1, &g);
	cr_assert_eq(g.iova, 1 << 22);
	cr_assert_eq(g.length, 4096);
	cr_assert_eq(proto_encode(&m, buf2, sizeof(buf2)), len);
	cr_assert_eq(memcmp(buf, buf2, (size_t)len), 0);

	/* refused: no device, unknown flags, an fd_index past ndevices or
	 * twice, dev_flags set, overlapping or wrapping ranges */
	ro.ndevices = 0;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	ro.ndevices = 2;
	ro.flags = 1u << 7;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	ro.flags = 0;
	devs[0].fd_index = 3;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	devs[0].fd_index = 1;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	devs[0].fd_index = 0;
	devs[0].dev_flags = 1;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	devs[0].dev_flags = 0;
	rg[1].iova = (1 << 21) - 4096;
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	rg[1] = (struct proto_range){ UINT64_MAX - 4095, 8192 };
	cr_assert_eq(proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg),
		     -EINVAL);
	/* a body one range short of what it counts */
	rg[1] = (struct proto_range){ 1 << 22, 4096 };
	len = proto_encode_readopt(buf, sizeof(buf), 4, &ro, devs, rg);
	cr_assert_gt(len, 0);
	wire_put_le32(buf + 4, (uint32_t)len - PROTO_RANGE_WIRE);
	cr_assert_eq(proto_decode(buf, (size_t)len - PROTO_RANGE_WIRE, &m),
		     -EBADMSG);
}
