// SPDX-License-Identifier: MIT
/*
 * Writes the fuzz targets' seed corpus:
 *
 *   fuzz_seeds PROTOCOL.md OUTDIR
 *
 * OUTDIR/proto/    one valid packet of every message type (lists with
 *                  entries, RANGES with RUNS and RAW chunks, ERROR), every
 *                  example block of PROTOCOL.md, and chunks on their own
 * OUTDIR/session/  sessions in fuzz_session.c's record format: the common
 *                  paths (HELLO, CREATE_DOMAIN, MAP, TRACK_START,
 *                  SUBSCRIBE, DMA_WRITE, SYNC, GET_RANGES, ACK ...), a
 *                  resume, device changes, and the errors of section 7
 *
 * The corpus in tests/fuzz/corpus/ is this program's output plus the
 * regression seeds (crash-*, reproducers of bugs found, kept by hand):
 *   build/tests/fuzz/fuzz_seeds protocol/PROTOCOL.md tests/fuzz/corpus
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

static const char *outdir;
static uint8_t pkt[PROTO_MAX_MSG];

static void die(const char *what)
{
	fprintf(stderr, "fuzz_seeds: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *sub, const char *name, const void *buf,
		       size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path);
}

static int encode(const struct proto_msg *m)
{
	int n = proto_encode(m, pkt, sizeof(pkt));

	if (n < 0) {
		fprintf(stderr, "fuzz_seeds: encoding %s failed: %d\n",
			proto_type_name(m->type), n);
		exit(1);
	}
	return n;
}

static void seed_msg(const char *name, const struct proto_msg *m)
{
	char file[128];
	int n = encode(m);

	snprintf(file, sizeof(file), "msg-%s", name);
	write_file("proto", file, pkt, (size_t)n);
}

/* ------------------------------------------------------------ proto */

static void proto_seeds(void)
{
	static uint8_t chunks[PROTO_MAX_MSG];
	static uint64_t bits[CHUNK_MAX_PAGES / 64];
	struct proto_list_builder lb;
	struct proto_ranges_builder rb;
	struct proto_msg m;
	uint8_t chunk[CHUNK_MAX_SIZE];
	size_t clen = 0;
	int n;

#define SEED(nm, ...) do {						\
		m = (struct proto_msg){ __VA_ARGS__ };			\
		seed_msg(nm, &m);					\
	} while (0)
	SEED("hello", .type = PROTO_HELLO, .id = 1,
	     .hello = { .major = 1, .features = PROTO_FEATURES_ALL });
	SEED("list_devices", .type = PROTO_LIST_DEVICES, .id = 2);
	SEED("list_domains", .type = PROTO_LIST_DOMAINS, .id = 3);
	SEED("create_domain", .type = PROTO_CREATE_DOMAIN, .id = 4,
	     .create_domain = { .flags = 3, .device = "sim1" });
	SEED("attach_device", .type = PROTO_ATTACH_DEVICE, .id = 5,
	     .device_op = { .domain_id = 1, .device = "sim2" });
	SEED("detach_device", .type = PROTO_DETACH_DEVICE, .id = 6,
	     .device_op = { .domain_id = 1, .device = "sim2" });
	SEED("destroy_domain", .type = PROTO_DESTROY_DOMAIN, .id = 7,
	     .domain_op = { .domain_id = 1 });
	SEED("map", .type = PROTO_MAP, .id = 8,
	     .map = { .domain_id = 1, .flags = 7, .iova = 1 << 20,
		      .length = 1 << 20 });
	SEED("unmap", .type = PROTO_UNMAP, .id = 9,
	     .map = { .domain_id = 1, .flags = 4, .iova = 1 << 20,
		      .length = 1 << 20 });
	SEED("track_start", .type = PROTO_TRACK_START, .id = 10,
	     .domain_op = { .domain_id = 1 });
	SEED("track_stop", .type = PROTO_TRACK_STOP, .id = 11,
	     .domain_op = { .domain_id = 1 });
	SEED("subscribe", .type = PROTO_SUBSCRIBE, .id = 12,
	     .subscribe = { .domain_id = 1, .interval_ms = 100, .flags = 1 });
	SEED("unsubscribe", .type = PROTO_UNSUBSCRIBE, .id = 13,
	     .domain_op = { .domain_id = 1 });
	SEED("sync", .type = PROTO_SYNC, .id = 14,
	     .domain_op = { .domain_id = 1 });
	SEED("get_ranges", .type = PROTO_GET_RANGES, .id = 15,
	     .get_ranges = { .domain_id = 1, .flags = 1 });
	SEED("ack", .type = PROTO_ACK, .id = 16,
	     .ack = { .domain_id = 1, .generation = 5 });
	SEED("stats", .type = PROTO_STATS, .id = 17);
	SEED("get_fds", .type = PROTO_GET_FDS, .id = 18,
	     .domain_op = { .domain_id = 1 });
	SEED("dma_write", .type = PROTO_DMA_WRITE, .id = 19,
	     .map = { .domain_id = 1, .iova = 1 << 20, .length = 4096 });
	SEED("hello_reply", .type = PROTO_HELLO_REPLY, .id = 1,
	     .hello_reply = { .major = 1, .max_msg = PROTO_MAX_MSG,
			      .features = 0xb, .session_token = 0x1234,
			      .uid = 1000, .gid = 1000, .session_flags = 2 });
	SEED("create_domain_reply", .type = PROTO_CREATE_DOMAIN_REPLY, .id = 4,
	     .create_domain_reply = { .domain_id = 1, .dev_id = 2,
				      .status = 3 });
	SEED("attach_device_reply", .type = PROTO_ATTACH_DEVICE_REPLY, .id = 5,
	     .attach_device_reply = { .dev_id = 3 });
	SEED("ok", .type = PROTO_OK, .id = 6);
	SEED("subscribe_reply", .type = PROTO_SUBSCRIBE_REPLY, .id = 12,
	     .subscribe_reply = { .domain_id = 1, .page_size = 4096,
				  .max_leaf = 1 << 21, .generation = 3 });
	SEED("sync_reply", .type = PROTO_SYNC_REPLY, .id = 14,
	     .sync_reply = { .generation = 4, .pending_pages = 36 });
	SEED("error", .type = PROTO_ERROR, .id = 4,
	     .error = { .err = ENOENT, .text = "no domain 7",
			.text_len = 11 });
	SEED("ev_round", .type = PROTO_EV_ROUND,
	     .ev_round = { .domain_id = 1, .generation = 6, .round_pages = 12,
			   .pending_pages = 12 });
	SEED("ev_state_lost", .type = PROTO_EV_STATE_LOST,
	     .domain_op = { .domain_id = 1 });
#undef SEED

	/* lists, with two entries each */
	proto_list_begin(&lb, pkt, sizeof(pkt), PROTO_LIST_DEVICES_REPLY, 2);
	proto_list_add_device(&lb, &(struct proto_device){
		.name = "sim0", .capabilities = 1, .flags = 7,
		.domain_id = 1, .dev_id = 2 });
	proto_list_add_device(&lb, &(struct proto_device){
		.name = "sim-legacy0" });
	n = proto_list_end(&lb, true);
	write_file("proto", "msg-list_devices_reply", pkt, (size_t)n);
	proto_list_begin(&lb, pkt, sizeof(pkt), PROTO_LIST_DOMAINS_REPLY, 3);
	proto_list_add_domain(&lb, &(struct proto_domain){
		.domain_id = 1, .status = 3, .owner_uid = 1000, .devices = 1,
		.mapped_bytes = 1 << 30, .page_size = 4096, .generation = 5,
		.subscribers = 2 });
	proto_list_add_domain(&lb, &(struct proto_domain){
		.domain_id = 2, .status = 4 });
	n = proto_list_end(&lb, false);
	write_file("proto", "msg-list_domains_reply", pkt, (size_t)n);
	proto_list_begin(&lb, pkt, sizeof(pkt), PROTO_STATS_REPLY, 17);
	proto_list_add_stats(&lb, &(struct proto_stats){
		.domain_id = 1, .status = 3, .generation = 5,
		.last_round_ns = 850000, .last_round_pages = 36,
		.dirty_rate = 360, .mapped_bytes = 1 << 30,
		.pages_sent = 36 });
	n = proto_list_end(&lb, false);
	write_file("proto", "msg-stats_reply", pkt, (size_t)n);
	proto_list_begin(&lb, pkt, sizeof(pkt), PROTO_GET_FDS_REPLY, 18);
	proto_list_set_fds_ids(&lb, 3, 4);
	proto_list_add_fd_device(&lb, &(struct proto_fd_device){
		.name = "vfio0", .dev_id = 5, .fd_index = 2 });
	proto_list_add_fd_device(&lb, &(struct proto_fd_device){
		.name = "vfio1", .dev_id = 6, .fd_index = 1 });
	n = proto_list_end(&lb, false);
	write_file("proto", "msg-get_fds_reply", pkt, (size_t)n);

	/* chunks: sparse (RUNS), dense (RAW), one page, a full span */
	memset(bits, 0, sizeof(bits));
	bits[0] = 0x7;
	bits[16] = 1;
	bits[500] = 0xffff0000ffffULL;
	n = chunk_encode(0x40000, CHUNK_MAX_PAGES, bits, chunk);
	write_file("proto", "chunk-runs", chunk, (size_t)n);
	memcpy(chunks + clen, chunk, (size_t)n);
	clen += (size_t)n;
	memset(bits, 0, sizeof(bits));
	for (int i = 0; i < 8; i++)
		bits[i] = 0x5555555555555555ULL;
	n = chunk_encode(0x48000, CHUNK_MAX_PAGES, bits, chunk);
	write_file("proto", "chunk-raw", chunk, (size_t)n);
	memcpy(chunks + clen, chunk, (size_t)n);
	clen += (size_t)n;
	memset(bits, 0, sizeof(bits));
	bits[0] = 1;
	n = chunk_encode(7, 1, bits, chunk);
	write_file("proto", "chunk-one", chunk, (size_t)n);
	memset(bits, 0xff, sizeof(bits));
	n = chunk_encode(0x50000, CHUNK_MAX_PAGES, bits, chunk);
	write_file("proto", "chunk-full", chunk, (size_t)n);
	memcpy(chunks + clen, chunk, (size_t)n);
	clen += (size_t)n;

	/* RANGES with those three chunks, and an empty last packet */
	proto_ranges_begin(&rb, pkt, sizeof(pkt), 15, &(struct proto_ranges){
		.generation = 5, .domain_id = 1,
		.total_pages = 3 + 1 + 32 + 128 + 32768 });
	for (size_t off = 0; off < clen;) {
		size_t len = CHUNK_HEADER_SIZE + wire_get_le16(chunks + off +
							       14);

		proto_ranges_add(&rb, chunks + off, len);
		off += len;
	}
	n = proto_ranges_end(&rb, true);
	write_file("proto", "msg-ranges", pkt, (size_t)n);
	proto_ranges_begin(&rb, pkt, sizeof(pkt), 15, &(struct proto_ranges){
		.generation = 5, .domain_id = 1, .seq = 1 });
	n = proto_ranges_end(&rb, false);
	write_file("proto", "msg-ranges_empty", pkt, (size_t)n);
}

/* Every ```hex block of PROTOCOL.md, as a packet. */
static void example_seeds(const char *md_path)
{
	char line[1024], name[64];
	unsigned int nex = 0;
	bool in = false;
	size_t len = 0;
	FILE *f = fopen(md_path, "r");

	if (!f)
		die(md_path);
	while (fgets(line, sizeof(line), f)) {
		if (!in) {
			in = !strncmp(line, "```hex", 6);
			len = 0;
			continue;
		}
		if (!strncmp(line, "```", 3)) {
			snprintf(name, sizeof(name), "example-%02u", nex++);
			write_file("proto", name, pkt, len);
			in = false;
			continue;
		}
		for (char *p = line; *p && *p != '#';) {
			unsigned int b;
			int used;

			if (sscanf(p, " %2x%n", &b, &used) != 1)
				break;
			if (len < sizeof(pkt))
				pkt[len++] = (uint8_t)b;
			p += used;
		}
	}
	fclose(f);
	if (nex < 10) {
		fprintf(stderr, "fuzz_seeds: only %u examples in %s\n", nex,
			md_path);
		exit(1);
	}
}

/* ------------------------------------------------------------ sessions */

/* fuzz_session.c's ctl bits */
#define AS_OTHER 0x01
#define WITH_FD 0x02
#define NO_DRAIN 0x04
#define SETTLE 0x08
#define RAW_LENGTH 0x10
#define OVERSIZE 0x20
#define RAW_IDS 0x40
#define RECONNECT 0x80

static uint8_t sess[1 << 16];
static size_t sess_len;
static uint64_t next_id;

static void rec_raw(uint8_t ctl, const void *buf, size_t len)
{
	if (sess_len + 3 + len > sizeof(sess)) {
		fprintf(stderr, "fuzz_seeds: session too long\n");
		exit(1);
	}
	sess[sess_len] = ctl;
	wire_put_le16(sess + sess_len + 1, (uint16_t)len);
	memcpy(sess + sess_len + 3, buf, len);
	sess_len += 3 + len;
}

static void rec(uint8_t ctl, struct proto_msg m)
{
	m.id = ++next_id;
	rec_raw(ctl, pkt, (size_t)encode(&m));
}

static void sess_begin(void)
{
	sess_len = 0;
	next_id = 0;
}

static void sess_end(const char *name)
{
	write_file("session", name, sess, sess_len);
}

#define HELLO(feat, tok) (struct proto_msg){ .type = PROTO_HELLO,	\
	.hello = { .major = 1, .features = (feat), .resume_token = (tok) } }
#define CREATE(fl, dev) (struct proto_msg){ .type = PROTO_CREATE_DOMAIN, \
	.create_domain = { .flags = (fl), .device = dev } }
#define DEVOP(t, d, dev) (struct proto_msg){ .type = (t),		\
	.device_op = { .domain_id = (d), .device = dev } }
#define DOMOP(t, d) (struct proto_msg){ .type = (t),			\
	.domain_op = { .domain_id = (d) } }
#define MAPOP(t, d, fl, io, len) (struct proto_msg){ .type = (t),	\
	.map = { .domain_id = (d), .flags = (fl), .iova = (io),		\
		 .length = (len) } }
#define SUB(d, iv, fl) (struct proto_msg){ .type = PROTO_SUBSCRIBE,	\
	.subscribe = { .domain_id = (d), .interval_ms = (iv),		\
		       .flags = (fl) } }
#define RANGES(d, fl) (struct proto_msg){ .type = PROTO_GET_RANGES,	\
	.get_ranges = { .domain_id = (d), .flags = (fl) } }
#define ACK(d, g) (struct proto_msg){ .type = PROTO_ACK,		\
	.ack = { .domain_id = (d), .generation = (g) } }

#define RW (PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE)
#define MB (1ULL << 20)
#define PG 4096ULL

static void session_seeds(void)
{
	struct proto_msg m;
	uint8_t raw[64];

	/* the pre-copy loop of section 8.3, once through */
	sess_begin();
	rec(0, HELLO(PROTO_FEATURES_ALL, 0));
	rec(0, (struct proto_msg){ .type = PROTO_LIST_DEVICES });
	rec(0, CREATE(PROTO_CREATE_TRACKING | PROTO_CREATE_NO_HUGE_PAGES,
		      "sim1"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, MB, MB));
	rec(0, DOMOP(PROTO_TRACK_START, 1));
	rec(0, SUB(1, 0, 0));
	rec(0, MAPOP(PROTO_DMA_WRITE, 1, 0, MB + 3 * PG, 5 * PG));
	rec(SETTLE, DOMOP(PROTO_SYNC, 1));
	rec(0, RANGES(1, 0));
	rec(0, ACK(1, 1));
	rec(0, MAPOP(PROTO_DMA_WRITE, 1, 0, MB + 64 * PG, PG));
	rec(SETTLE, DOMOP(PROTO_SYNC, 1));
	rec(0, RANGES(1, 0));
	rec(0, ACK(1, 2));
	rec(0, (struct proto_msg){ .type = PROTO_LIST_DOMAINS });
	rec(0, DOMOP(PROTO_STATS, 0));
	rec(0, DOMOP(PROTO_UNSUBSCRIBE, 1));
	rec(0, DOMOP(PROTO_TRACK_STOP, 1));
	rec(0, MAPOP(PROTO_UNMAP, 1, 0, MB, MB));
	rec(0, DOMOP(PROTO_DESTROY_DOMAIN, 1));
	sess_end("precopy");

	/* a clean periodic subscription with events, two mappings, resend */
	sess_begin();
	rec(0, HELLO(PROTO_FEAT_EVENTS | PROTO_FEAT_RANGES_RAW, 0));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim2"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 0, 4 * MB));
	rec(0, MAPOP(PROTO_MAP, 1, PROTO_MAP_READABLE, 8 * MB, 2 * MB));
	rec(0, DOMOP(PROTO_TRACK_START, 1));
	rec(SETTLE, SUB(1, 1, PROTO_SUBSCRIBE_CLEAN));
	for (int i = 0; i < 8; i++)
		rec(0, MAPOP(PROTO_DMA_WRITE, 1, 0, (uint64_t)i * 3 * PG * 17,
			     PG));
	rec(SETTLE, DOMOP(PROTO_SYNC, 1));
	rec(0, RANGES(1, 0));
	rec(0, RANGES(1, PROTO_RANGES_RESEND));
	rec(SETTLE, MAPOP(PROTO_UNMAP, 1, 0, 8 * MB, 2 * MB));
	rec(0, RANGES(1, 0));
	sess_end("periodic");

	/* resume: the subscription survives a reconnect */
	sess_begin();
	rec(0, HELLO(PROTO_FEAT_RESUME, 0));
	rec(0, CREATE(PROTO_CREATE_TRACKING | PROTO_CREATE_NO_HUGE_PAGES,
		      "sim1"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 0, MB));
	rec(0, DOMOP(PROTO_TRACK_START, 1));
	rec(0, SUB(1, 0, 0));
	rec(NO_DRAIN, RANGES(1, 0));
	rec(RECONNECT, HELLO(PROTO_FEAT_RESUME, 1));
	rec(0, RANGES(1, PROTO_RANGES_RESEND));
	rec(0, ACK(1, 0));
	rec(RECONNECT, HELLO(PROTO_FEAT_RESUME, 1));
	rec(0, RANGES(1, 0));
	sess_end("resume");

	/* devices in and out of a domain; a domain without tracking */
	sess_begin();
	rec(0, HELLO(PROTO_FEATURES_ALL, 0));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim1"));
	rec(0, DEVOP(PROTO_ATTACH_DEVICE, 1, "sim2"));
	rec(0, DEVOP(PROTO_ATTACH_DEVICE, 1, "sim-legacy0"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 2 * MB, 2 * MB));
	rec(0, DOMOP(PROTO_TRACK_START, 1));
	rec(0, SUB(1, 0, 0));
	rec(0, DEVOP(PROTO_DETACH_DEVICE, 1, "sim1"));
	rec(0, MAPOP(PROTO_DMA_WRITE, 1, 0, 2 * MB, 2 * PG));
	rec(SETTLE, DOMOP(PROTO_SYNC, 1));
	rec(0, CREATE(0, "sim-legacy0"));
	rec(0, MAPOP(PROTO_MAP, 2, PROTO_MAP_WRITEABLE, 0, MB));
	rec(0, DOMOP(PROTO_TRACK_START, 2));
	rec(0, SUB(2, 0, 0));
	rec(0, RANGES(2, 0));
	rec(0, DOMOP(PROTO_DESTROY_DOMAIN, 1));
	rec(0, RANGES(1, 0));
	sess_end("devices");

	/* the errors of section 7, one after another */
	sess_begin();
	rec(0, (struct proto_msg){ .type = PROTO_LIST_DOMAINS });
	rec(0, (struct proto_msg){ .type = PROTO_HELLO,
				   .hello = { .major = 2 } });
	rec(0, HELLO(PROTO_FEATURES_ALL | 0xf0, 0));
	rec(0, HELLO(0, 0));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim-legacy0"));
	rec(0, CREATE(0, "nosuch"));
	rec(0, CREATE(0, "sim0"));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim1"));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim2"));
	rec(0, CREATE(0, "sim-legacy0"));
	rec(0, DEVOP(PROTO_ATTACH_DEVICE, 1, "sim-legacy0"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 123, MB));
	rec(0, MAPOP(PROTO_MAP, 1, RW, MB, MB));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 0, 2 * MB));
	rec(0, MAPOP(PROTO_MAP, 1, RW, ~0ULL << 12, 1ULL << 13));
	rec(0, MAPOP(PROTO_MAP, 1, RW | PROTO_MAP_EXTERNAL, 4 * MB, MB));
	rec(0, MAPOP(PROTO_UNMAP, 1, 0, MB, PG));
	rec(0, MAPOP(PROTO_UNMAP, 1, 0, 16 * MB, MB));
	rec(0, MAPOP(PROTO_DMA_WRITE, 1, 0, 32 * MB, PG));
	rec(0, DOMOP(PROTO_SYNC, 1));
	rec(0, DOMOP(PROTO_TRACK_START, 3));
	rec(0, RANGES(1, 0));
	rec(0, ACK(1, 9));
	rec(0, SUB(1, 0, 0));
	rec(0, SUB(1, 0, 0));
	rec(0, DOMOP(PROTO_GET_FDS, 1));
	rec(RAW_IDS, DOMOP(PROTO_DESTROY_DOMAIN, 1));
	rec(RAW_IDS, DOMOP(PROTO_STATS, 1));
	rec(AS_OTHER, DOMOP(PROTO_STATS, 0));
	rec(WITH_FD, DOMOP(PROTO_STATS, 0));
	rec(OVERSIZE, DOMOP(PROTO_STATS, 0));
	rec(0, (struct proto_msg){ .type = PROTO_OK });
	m = DOMOP(PROTO_EV_STATE_LOST, 1);	/* an event: id 0 */
	rec_raw(0, pkt, (size_t)encode(&m));
	memset(raw, 0, sizeof(raw));
	raw[0] = 0x34;
	raw[1] = 0x12;			/* an unknown type */
	raw[8] = 1;
	rec_raw(0, raw, 16);
	rec_raw(0, raw, 7);		/* shorter than a header */
	raw[0] = PROTO_SYNC;
	raw[1] = 0;
	raw[4] = 0xff;		/* a length that is not the size */
	rec_raw(RAW_LENGTH, raw, 24);
	rec_raw(0, raw, 0);		/* an empty packet */
	sess_end("errors");

	/* several SYNCs waiting at once, then a close with replies unread */
	sess_begin();
	rec(0, HELLO(PROTO_FEATURES_ALL, 0));
	rec(0, CREATE(PROTO_CREATE_TRACKING, "sim2"));
	rec(0, MAPOP(PROTO_MAP, 1, RW, 0, 64 * MB));
	rec(0, DOMOP(PROTO_TRACK_START, 1));
	rec(0, SUB(1, 0, 0));
	for (int i = 0; i < 20; i++)
		rec(NO_DRAIN, DOMOP(PROTO_SYNC, 1));
	rec(NO_DRAIN, RANGES(1, 0));
	rec(NO_DRAIN, DOMOP(PROTO_TRACK_STOP, 1));
	rec(NO_DRAIN, DOMOP(PROTO_DESTROY_DOMAIN, 1));
	rec(RECONNECT, HELLO(0, 0));
	sess_end("pipelined");
}

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 3) {
		fprintf(stderr, "usage: fuzz_seeds PROTOCOL.md OUTDIR\n");
		return 2;
	}
	outdir = argv[2];
	mkdir(outdir, 0755);
	snprintf(path, sizeof(path), "%s/proto", outdir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/session", outdir);
	mkdir(path, 0755);
	proto_seeds();
	example_seeds(argv[1]);
	session_seeds();
	return 0;
}
