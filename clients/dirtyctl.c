// SPDX-License-Identifier: MIT
/*
 * dirtyctl: dirtyd from the command line, through libdirty.
 *
 * Every command prints a table or a line for people, or with --json one
 * JSON document (watch: one per refresh, a line each).  A refusal prints
 * dirtyd's reason and the errno's name and exits 1; a usage error exits 2.
 */
#define _GNU_SOURCE		/* strerrorname_np */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "clock.h"
#include "hint.h"
#include "json.h"

#ifndef DIRTYD_VERSION
#define DIRTYD_VERSION "unknown"
#endif

#define EXIT_USAGE 2

/* ---- options ---- */

enum opt {
	OPT_SOCKET = 's',
	OPT_JSON = 'j',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_NO_TRACK = 0x100,
	OPT_NO_HUGE_PAGES,
	OPT_ACK,
	OPT_RESEND,
	OPT_SINCE,
	OPT_INTERVAL,
	OPT_COUNT,
	OPT_HARVEST,
	OPT_FORMAT,
};

struct ctl {
	const char *socket;		/* NULL: libdirty's default */
	bool json;
	bool no_track;
	bool no_huge_pages;
	bool ack;
	bool resend;
	bool harvest;
	bool tty_out;			/* watch: stdout is a terminal */
	uint64_t since_ms;		/* 0: not given */
	uint64_t interval_ms;
	uint64_t count;			/* 0: forever */
	const char *format;		/* stats: NULL (table or --json) or
					 * "openmetrics" */
	unsigned int given;		/* bit per command option seen */
	struct dirty *d;
};

#define GIVEN(o) (1u << ((o) - OPT_NO_TRACK))

struct command {
	const char *name;
	int min_args;
	int max_args;
	unsigned int options;		/* GIVEN() bits allowed */
	int (*run)(struct ctl *c, char **args, int nargs);
	const char *usage;
};

static void usage(FILE *f);

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dirtyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'dirtyctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* A number: decimal or 0x hex, with an optional binary suffix k, M, G, T
 * (KiB, ... also accepted). */
static int parse_u64(const char *s, uint64_t *out)
{
	static const char suffixes[] = "kmgt";
	unsigned long long v;
	const char *p;
	char *end;
	int shift = 0;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		p = strchr(suffixes, end[0] | 0x20);
		if (!p)
			return -EINVAL;
		shift = 10 * (int)(p - suffixes + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
		if (v > UINT64_MAX >> shift)
			return -ERANGE;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_domain(const char *s, uint32_t *out)
{
	if (parse_u32(s, out) < 0 || !*out)
		return usage_error("'%s' is not a domain id", s);
	return 0;
}

static int parse_range(char **args, uint64_t *iova, uint64_t *length)
{
	if (parse_u64(args[0], iova) < 0)
		return usage_error("'%s' is not an IOVA", args[0]);
	if (parse_u64(args[1], length) < 0 || !*length)
		return usage_error("'%s' is not a length", args[1]);
	return 0;
}

/* ---- output ---- */

/* "4 KiB", "1.5 GiB": bytes for people. */
static const char *fmt_bytes(char *buf, size_t size, uint64_t v)
{
	static const char *const units[] = {
		"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	double x = (double)v;
	unsigned int u = 0;

	while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		x /= 1024;
		u++;
	}
	if (u == 0 || x == (double)(uint64_t)x)
		snprintf(buf, size, "%" PRIu64 " %s", (uint64_t)x, units[u]);
	else
		snprintf(buf, size, "%.1f %s", x, units[u]);
	return buf;
}

static const char *tracking_name(uint32_t status)
{
	return status & DIRTY_DOMAIN_ENABLED ? "enabled" : "disabled";
}

static const char *support_name(uint32_t status)
{
	return status & DIRTY_DOMAIN_UNSUPPORTED ? "unsupported" :
	       status & DIRTY_DOMAIN_SUPPORTED ? "supported" : "-";
}

/* Report a failed call: dirtyd's words if it refused, then the errno. */
static int fail(struct ctl *c, const char *what, int r)
{
	const char *text = c->d ? dirty_last_error_text(c->d) : NULL;
	const char *name = strerrorname_np(-r);

	if (!text || !*text)
		text = strerror(-r);
	if (!name)
		name = "E?";
	fprintf(stderr, "dirtyctl: %s: %s (%s)\n", what, text, name);
	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_open(&j, NULL, '{');
		json_open(&j, "error", '{');
		json_str(&j, "operation", what);
		json_u64(&j, "errno", (uint64_t)-r);
		json_str(&j, "name", name);
		json_str(&j, "message", text);
		json_close(&j, '}');
		json_close(&j, '}');
	}
	return EXIT_FAILURE;
}

/* The JSON answer of a command that worked: {"ok": true, ... */
static void json_ok_open(struct json *j)
{
	json_open(j, NULL, '{');
	json_bool(j, "ok", true);
}

/* The JSON form of a listing: {"NAME": [ ... ]}. */
static void json_list_open(struct json *j, const char *name)
{
	json_open(j, NULL, '{');
	json_open(j, name, '[');
}

static void json_list_close(struct json *j)
{
	json_close(j, ']');
	json_close(j, '}');
}

/* A command that only says it worked. */
static int done(struct ctl *c, const char *what, uint32_t domain_id,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int done(struct ctl *c, const char *what, uint32_t domain_id,
		const char *fmt, ...)
{
	va_list ap;

	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_ok_open(&j);
		json_str(&j, "operation", what);
		json_u64(&j, "domain", domain_id);
		json_close(&j, '}');
		return 0;
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 0;
}

/* ---- commands ---- */

static const char *device_state(uint32_t flags)
{
	if (flags & DIRTY_DEVICE_ATTACHED)
		return "attached";
	return flags & DIRTY_DEVICE_BOUND ? "bound" : "free";
}

static int cmd_devices(struct ctl *c, char **args, int nargs)
{
	struct dirty_device **devs;
	struct json j = JSON_INIT(stdout);
	size_t n;
	int r;

	r = dirty_list_devices(c->d, &devs, &n);
	if (r < 0)
		return fail(c, "listing devices", r);
	if (c->json) {
		json_list_open(&j, "devices");
		for (size_t i = 0; i < n; i++) {
			const struct dirty_device *dv = devs[i];

			json_open(&j, NULL, '{');
			json_str(&j, "name", dv->name);
			json_bool(&j, "dirty_tracking",
				  dv->flags & DIRTY_DEVICE_DIRTY_CAPABLE);
			json_bool(&j, "bound", dv->flags & DIRTY_DEVICE_BOUND);
			json_bool(&j, "attached",
				  dv->flags & DIRTY_DEVICE_ATTACHED);
			json_u64(&j, "capabilities", dv->capabilities);
			json_u64_or_null(&j, "domain", dv->domain_id,
					 dv->domain_id);
			json_u64_or_null(&j, "dev_id", dv->dev_id, dv->dev_id);
			json_close(&j, '}');
		}
		json_list_close(&j);
	} else {
		printf("%-24s %-6s %-9s %-7s %-7s %s\n", "DEVICE", "DIRTY",
		       "STATE", "DOMAIN", "DEV_ID", "CAPABILITIES");
		for (size_t i = 0; i < n; i++) {
			const struct dirty_device *dv = devs[i];
			char dom[16] = "-", id[16] = "-";

			if (dv->domain_id)
				snprintf(dom, sizeof(dom), "%" PRIu32,
					 dv->domain_id);
			if (dv->dev_id)
				snprintf(id, sizeof(id), "%" PRIu32,
					 dv->dev_id);
			printf("%-24s %-6s %-9s %-7s %-7s 0x%" PRIx64 "\n",
			       dv->name,
			       dv->flags & DIRTY_DEVICE_DIRTY_CAPABLE ?
			       "yes" : "no",
			       device_state(dv->flags), dom, id,
			       dv->capabilities);
		}
	}
	free(devs);
	return 0;
}

static void json_domain(struct json *j, const struct dirty_domain *dm)
{
	json_open(j, NULL, '{');
	json_u64(j, "domain", dm->domain_id);
	json_str(j, "tracking", tracking_name(dm->status));
	json_str(j, "support", support_name(dm->status));
	json_u64(j, "status", dm->status);
	json_u64(j, "owner_uid", dm->owner_uid);
	json_u64(j, "device_count", dm->devices);
	json_u64(j, "mapped_bytes", dm->mapped_bytes);
	json_u64(j, "page_size", dm->page_size);
	json_u64(j, "generation", dm->generation);
	json_u64(j, "subscriptions", dm->subscribers);
	json_close(j, '}');
}

static int cmd_domains(struct ctl *c, char **args, int nargs)
{
	struct dirty_domain **doms;
	struct json j = JSON_INIT(stdout);
	size_t n;
	int r;

	r = dirty_list_domains(c->d, &doms, &n);
	if (r < 0)
		return fail(c, "listing domains", r);
	if (c->json) {
		json_list_open(&j, "domains");
		for (size_t i = 0; i < n; i++)
			json_domain(&j, doms[i]);
		json_list_close(&j);
	} else {
		printf("%-6s %-9s %-12s %-6s %-7s %-10s %-6s %-10s %s\n",
		       "DOMAIN", "TRACKING", "SUPPORT", "OWNER", "DEVICES",
		       "MAPPED", "PAGE", "GENERATION", "SUBSCRIBERS");
		for (size_t i = 0; i < n; i++) {
			const struct dirty_domain *dm = doms[i];
			char mapped[32], page[32];

			printf("%-6" PRIu32 " %-9s %-12s %-6" PRIu32 " %-7"
			       PRIu32 " %-10s %-6s %-10" PRIu64 " %" PRIu32
			       "\n", dm->domain_id, tracking_name(dm->status),
			       support_name(dm->status), dm->owner_uid,
			       dm->devices,
			       fmt_bytes(mapped, sizeof(mapped),
					 dm->mapped_bytes),
			       fmt_bytes(page, sizeof(page), dm->page_size),
			       dm->generation, dm->subscribers);
		}
	}
	free(doms);
	return 0;
}

static int cmd_create(struct ctl *c, char **args, int nargs)
{
	uint32_t flags = 0, domain_id, dev_id;
	int r;

	if (!c->no_track)
		flags |= DIRTY_CREATE_TRACKING;
	if (c->no_huge_pages)
		flags |= DIRTY_CREATE_NO_HUGE_PAGES;
	r = dirty_domain_create(c->d, args[0], flags, &domain_id, &dev_id);
	if (r < 0)
		return fail(c, "creating a domain", r);
	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_ok_open(&j);
		json_u64(&j, "domain", domain_id);
		json_str(&j, "device", args[0]);
		json_u64(&j, "dev_id", dev_id);
		json_str(&j, "support",
			 c->no_track ? "unsupported" : "supported");
		json_bool(&j, "huge_pages", !c->no_huge_pages);
		json_close(&j, '}');
	} else {
		printf("domain %" PRIu32 " created with %s (dev_id %" PRIu32
		       ", %s)\n", domain_id, args[0], dev_id,
		       c->no_track ? "no tracking" : "tracking");
	}
	return 0;
}

static int cmd_attach(struct ctl *c, char **args, int nargs)
{
	uint32_t domain_id, dev_id;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = dirty_domain_attach(c->d, domain_id, args[1], &dev_id);
	if (r < 0)
		return fail(c, "attaching", r);
	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_ok_open(&j);
		json_u64(&j, "domain", domain_id);
		json_str(&j, "device", args[1]);
		json_u64(&j, "dev_id", dev_id);
		json_close(&j, '}');
		return 0;
	}
	printf("%s attached to domain %" PRIu32 " (dev_id %" PRIu32 ")\n",
	       args[1], domain_id, dev_id);
	return 0;
}

static int cmd_detach(struct ctl *c, char **args, int nargs)
{
	uint32_t domain_id;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = dirty_domain_detach(c->d, domain_id, args[1]);
	if (r < 0)
		return fail(c, "detaching", r);
	return done(c, "detach", domain_id, "%s detached from domain %" PRIu32,
		    args[1], domain_id);
}

static int cmd_destroy(struct ctl *c, char **args, int nargs)
{
	uint32_t domain_id;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = dirty_domain_destroy(c->d, domain_id);
	if (r < 0)
		return fail(c, "destroying", r);
	return done(c, "destroy", domain_id, "domain %" PRIu32 " destroyed",
		    domain_id);
}

/* sources DOMAIN: where its rounds read dirty bits from (LIST_SOURCES) */
static int cmd_sources(struct ctl *c, char **args, int nargs)
{
	static const char *const kinds[] = {
		[DIRTY_SOURCE_HWPT] = "hwpt",
		[DIRTY_SOURCE_DMA_LOG] = "dma_log",
		[DIRTY_SOURCE_HWPT_PLAIN] = "hwpt_plain",
	};
	struct dirty_source **src;
	struct json j = JSON_INIT(stdout);
	uint32_t domain_id;
	size_t n;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = dirty_list_sources(c->d, domain_id, &src, &n);
	if (r < 0)
		return fail(c, "listing sources", r);
	if (c->json)
		json_list_open(&j, "sources");
	else
		printf("%-10s %-6s %-24s %-7s %-6s %-11s %-8s %-6s %s\n",
		       "KIND", "ID", "DEVICE", "DEVICES", "PAGE", "RANGES",
		       "ROUNDS", "ERRORS", "RESTARTS");
	for (size_t i = 0; i < n; i++) {
		const struct dirty_source *s = src[i];
		const char *kind = s->kind < 4 && kinds[s->kind] ?
				   kinds[s->kind] : "?";
		char page[32], ranges[32] = "-";

		if (s->kind == DIRTY_SOURCE_DMA_LOG)
			snprintf(ranges, sizeof(ranges), s->max_ranges ?
				 "%" PRIu32 "/%" PRIu32 : "%" PRIu32,
				 s->ranges, s->max_ranges);
		if (c->json) {
			json_open(&j, NULL, '{');
			json_u64(&j, "domain", s->domain_id);
			json_str(&j, "kind", kind);
			json_u64(&j, s->kind == DIRTY_SOURCE_DMA_LOG ?
				 "dev_id" : "hwpt_id", s->id);
			json_str(&j, "device", s->device);
			json_u64(&j, "device_count", s->devices);
			json_u64(&j, "page_size", s->page_size);
			json_u64(&j, "range_count", s->ranges);
			json_u64(&j, "max_range_count", s->max_ranges);
			json_u64(&j, "rounds", s->rounds);
			json_u64(&j, "error_count", s->errors);
			json_u64(&j, "restart_count", s->restarts);
			json_close(&j, '}');
			continue;
		}
		printf("%-10s %-6" PRIu32 " %-24s %-7" PRIu32 " %-6s %-11s %-8"
		       PRIu64 " %-6" PRIu64 " %" PRIu64 "\n", kind, s->id,
		       s->device, s->devices,
		       s->page_size ? fmt_bytes(page, sizeof(page),
						s->page_size) : "-",
		       ranges, s->rounds, s->errors, s->restarts);
	}
	if (c->json)
		json_list_close(&j);
	free(src);
	return 0;
}

/* map, unmap, dma: DOMAIN IOVA LENGTH */
static int cmd_range(struct ctl *c, char **args, const char *what,
		     int (*op)(struct dirty *, uint32_t, uint64_t, uint64_t))
{
	uint64_t iova, length;
	uint32_t domain_id;
	char len[32];
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = parse_range(args + 1, &iova, &length);
	if (r)
		return r;
	r = op(c->d, domain_id, iova, length);
	if (r < 0)
		return fail(c, what, r);
	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_ok_open(&j);
		json_str(&j, "operation", what);
		json_u64(&j, "domain", domain_id);
		json_u64(&j, "iova", iova);
		json_u64(&j, "length", length);
		json_close(&j, '}');
		return 0;
	}
	printf("%s: domain %" PRIu32 " [0x%" PRIx64 ", 0x%" PRIx64 ") (%s)\n",
	       what, domain_id, iova, iova + length,
	       fmt_bytes(len, sizeof(len), length));
	return 0;
}

static int map_rw(struct dirty *d, uint32_t domain_id, uint64_t iova,
		  uint64_t length)
{
	return dirty_map(d, domain_id, iova, length, 0);
}

static int cmd_map(struct ctl *c, char **args, int nargs)
{
	return cmd_range(c, args, "map", map_rw);
}

static int cmd_unmap(struct ctl *c, char **args, int nargs)
{
	return cmd_range(c, args, "unmap", dirty_unmap);
}

static int cmd_dma(struct ctl *c, char **args, int nargs)
{
	return cmd_range(c, args, "dma", dirty_dma_write);
}

static int cmd_track(struct ctl *c, char **args, int nargs)
{
	uint32_t domain_id;
	bool start;
	int r;

	if (!strcmp(args[0], "start"))
		start = true;
	else if (!strcmp(args[0], "stop"))
		start = false;
	else
		return usage_error("track: say start or stop, not '%s'",
				   args[0]);
	r = parse_domain(args[1], &domain_id);
	if (r)
		return r;
	r = start ? dirty_track_start(c->d, domain_id) :
		    dirty_track_stop(c->d, domain_id);
	if (r < 0)
		return fail(c, start ? "starting tracking" :
				       "stopping tracking", r);
	return done(c, start ? "track start" : "track stop", domain_id,
		    "tracking %s on domain %" PRIu32,
		    start ? "started" : "stopped", domain_id);
}

/*
 * A subscription for this command's connection (one-shot: it ends with
 * the connection).  Only pages written from now on with @clean.
 */
static int subscribe(struct ctl *c, uint32_t domain_id, bool clean,
		     struct dirty_subscription_info *info)
{
	int r;

	r = dirty_subscribe(c->d, domain_id, 0,
			    clean ? DIRTY_SUBSCRIBE_CLEAN : 0, info);
	if (r < 0)
		return fail(c, "subscribing", r);
	return 0;
}

static int cmd_sync(struct ctl *c, char **args, int nargs)
{
	uint64_t gen, pending;
	uint32_t domain_id;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	r = subscribe(c, domain_id, true, NULL);
	if (r)
		return r;
	r = dirty_sync(c->d, domain_id, &gen, &pending);
	if (r < 0)
		return fail(c, "syncing", r);
	if (c->json) {
		struct json j = JSON_INIT(stdout);

		json_open(&j, NULL, '{');
		json_u64(&j, "domain", domain_id);
		json_u64(&j, "generation", gen);
		json_u64(&j, "pending_pages", pending);
		json_close(&j, '}');
		return 0;
	}
	printf("domain %" PRIu32 ": generation %" PRIu64 "\n", domain_id,
	       gen);
	return 0;
}

struct ranges_out {
	struct ctl *c;
	struct json *j;
	uint64_t page_size;
	uint64_t pages;
	uint64_t runs;
};

static int print_run(void *ctx, uint64_t first, uint64_t count)
{
	struct ranges_out *o = ctx;
	uint64_t iova = first * o->page_size;
	uint64_t len = count * o->page_size;

	o->pages += count;
	o->runs++;
	if (o->c->json) {
		json_open(o->j, NULL, '{');
		json_u64(o->j, "first_page", first);
		json_u64(o->j, "pages", count);
		json_u64(o->j, "iova", iova);
		json_u64(o->j, "length", len);
		json_close(o->j, '}');
	} else {
		printf("0x%016" PRIx64 "-0x%016" PRIx64 " %10" PRIu64
		       " pages\n", iova, iova + len - 1, count);
	}
	return 0;
}

static int discard_run(void *ctx, uint64_t first, uint64_t count)
{
	return 0;
}

static int cmd_ranges(struct ctl *c, char **args, int nargs)
{
	struct dirty_subscription_info info = { .size = sizeof(info) };
	struct json j = JSON_INIT(stdout);
	struct ranges_out o = { .c = c, .j = &j };
	uint32_t domain_id, flags = 0;
	uint64_t gen = 0;
	int r;

	r = parse_domain(args[0], &domain_id);
	if (r)
		return r;
	/* Without --since: every mapped page is pending (nothing copied
	 * yet); with it: what is written within the window. */
	r = subscribe(c, domain_id, c->since_ms, &info);
	if (r)
		return r;
	if (c->since_ms) {
		struct timespec ts = {
			.tv_sec = (time_t)(c->since_ms / 1000),
			.tv_nsec = (long)(c->since_ms % 1000) * 1000000,
		};

		/* Drop what the IOMMU gathered before the window: a first
		 * harvest may report writes older than the subscription. */
		r = dirty_sync(c->d, domain_id, NULL, NULL);
		if (r == 0)
			r = dirty_ranges(c->d, domain_id, DIRTY_RANGES_ACK,
					 discard_run, NULL, &gen);
		if (r < 0)
			return fail(c, "starting the window", r);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		r = dirty_sync(c->d, domain_id, NULL, NULL);
		if (r < 0)
			return fail(c, "syncing", r);
	}
	o.page_size = info.page_size;
	if (c->resend)
		flags |= DIRTY_RANGES_RESEND;
	if (c->json) {
		json_open(&j, NULL, '{');
		json_u64(&j, "domain", domain_id);
		json_u64(&j, "page_size", info.page_size);
		json_open(&j, "ranges", '[');
	}
	r = dirty_ranges(c->d, domain_id, flags, print_run, &o, &gen);
	if (r < 0) {
		if (c->json) {	/* close what is open, then the error */
			json_list_close(&j);
		}
		return fail(c, "taking ranges", r);
	}
	if (c->ack) {
		r = dirty_ack(c->d, domain_id, gen);
		if (r < 0) {
			if (c->json) {
				json_list_close(&j);
			}
			return fail(c, "acknowledging", r);
		}
	}
	if (c->json) {
		json_close(&j, ']');
		json_u64(&j, "generation", gen);
		json_u64(&j, "pages", o.pages);
		json_u64(&j, "range_count", o.runs);
		json_bool(&j, "acked", c->ack);
		json_close(&j, '}');
		return 0;
	}
	printf("domain %" PRIu32 " generation %" PRIu64 ": %" PRIu64
	       " pages in %" PRIu64 " ranges (page size %" PRIu64 ")%s\n",
	       domain_id, gen, o.pages, o.runs, info.page_size,
	       c->ack ? ", acknowledged" : "");
	return 0;
}

/* Page size of @domain_id in @doms, 4096 if it is not there. */
static uint64_t page_size_of(struct dirty_domain *const *doms, size_t n,
			     uint32_t domain_id)
{
	for (size_t i = 0; i < n; i++)
		if (doms[i]->domain_id == domain_id && doms[i]->page_size)
			return doms[i]->page_size;
	return 4096;
}

static double mib(uint64_t pages, uint64_t page_size)
{
	return (double)pages * (double)page_size / (1024.0 * 1024.0);
}

/* What one refresh of watch, or stats, shows of a domain: the dirty rate
 * only when it is current (@fresh), the last round only if there was one. */
static void json_stats(struct json *j, const struct dirty_stats *s,
		       uint64_t ps, bool fresh)
{
	bool round = s->generation > 0;

	json_u64(j, "domain", s->domain_id);
	json_str(j, "tracking", tracking_name(s->status));
	json_u64(j, "generation", s->generation);
	json_u64_or_null(j, "last_round_ns", s->last_round_ns, round);
	json_u64_or_null(j, "last_round_pages", s->last_round_pages, round);
	json_u64_or_null(j, "dirty_pages_per_s", s->dirty_rate, fresh);
	if (fresh)
		json_double(j, "dirty_mib_per_s", mib(s->dirty_rate, ps));
	else
		json_null(j, "dirty_mib_per_s");
	json_u64(j, "mapped_bytes", s->mapped_bytes);
	json_u64(j, "page_size", ps);
}

/* stats --format openmetrics: what dirtyd said, byte for byte. */
static int stats_openmetrics(struct ctl *c, uint32_t domain_id)
{
	char *text;
	size_t len;
	int r;

	r = dirty_metrics(c->d, domain_id, &text, &len);
	if (r < 0)
		return fail(c, "reading metrics", r);
	r = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
	free(text);
	if (!r) {
		fprintf(stderr, "dirtyctl: writing the metrics: %s\n",
			strerror(errno));
		return EXIT_FAILURE;
	}
	return 0;
}

static int cmd_stats(struct ctl *c, char **args, int nargs)
{
	struct dirty_domain **doms = NULL;
	struct dirty_stats **st = NULL;
	uint32_t domain_id = 0;
	struct json j = JSON_INIT(stdout);
	size_t n, ndoms;
	int r;

	if (nargs) {
		r = parse_domain(args[0], &domain_id);
		if (r)
			return r;
	}
	if (c->format && !strcmp(c->format, "openmetrics"))
		return stats_openmetrics(c, domain_id);
	r = dirty_stats(c->d, domain_id, &st, &n);
	if (r < 0)
		return fail(c, "reading statistics", r);
	r = dirty_list_domains(c->d, &doms, &ndoms);
	if (r < 0) {
		free(st);
		return fail(c, "listing domains", r);
	}
	if (c->json) {
		json_list_open(&j, "stats");
	} else {
		printf("%-6s %-9s %-10s %-10s %-11s %-12s %-11s %s\n",
		       "DOMAIN", "TRACKING", "GENERATION", "ROUND_MS",
		       "ROUND_PAGES", "DIRTY_PG/S", "DIRTY_MiB/S", "MAPPED");
	}
	for (size_t i = 0; i < n; i++) {
		const struct dirty_stats *s = st[i];
		uint64_t ps = page_size_of(doms, ndoms, s->domain_id);
		char mapped[32];

		if (c->json) {
			json_open(&j, NULL, '{');
			json_stats(&j, s, ps, true);
			json_u64(&j, "status", s->status);
			json_close(&j, '}');
			continue;
		}
		printf("%-6" PRIu32 " %-9s %-10" PRIu64 " ", s->domain_id,
		       tracking_name(s->status), s->generation);
		if (s->generation)
			printf("%-10.3f %-11" PRIu64 " ", s->last_round_ns / 1e6,
			       s->last_round_pages);
		else
			printf("%-10s %-11s ", "-", "-");
		printf("%-12" PRIu64 " %-11.1f %s\n", s->dirty_rate,
		       mib(s->dirty_rate, ps),
		       fmt_bytes(mapped, sizeof(mapped), s->mapped_bytes));
	}
	if (c->json) {
		json_list_close(&j);
	}
	free(doms);
	free(st);
	return 0;
}

/* ---- status ---- */

/* The value of the sample @name{@labels} (@labels "" for none) in an
 * OpenMetrics text; false if there is none. */
static bool om_value(const char *text, const char *name, const char *labels,
		     double *v)
{
	size_t nl = strlen(name), ll = strlen(labels);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p += !!p) {
		if (strncmp(p, name, nl) || strncmp(p + nl, labels, ll) ||
		    p[nl + ll] != ' ')
			continue;
		*v = strtod(p + nl + ll + 1, NULL);
		return true;
	}
	return false;
}

/* Sum of every sample of the per-domain family @name ({domain="..."}). */
static double om_sum(const char *text, const char *name)
{
	size_t nl = strlen(name);
	double sum = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p += !!p) {
		const char *sp;

		if (strncmp(p, name, nl) || p[nl] != '{')
			continue;
		sp = strchr(p, ' ');
		if (sp)
			sum += strtod(sp + 1, NULL);
	}
	return sum;
}

/* A label's value of the first sample of @name, into @buf ("" if none). */
static const char *om_label(const char *text, const char *name,
			    const char *label, char *buf, size_t size)
{
	size_t nl = strlen(name);
	char key[64];

	buf[0] = '\0';
	snprintf(key, sizeof(key), "%s=\"", label);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p += !!p) {
		const char *eol = strchrnul(p, '\n'), *v, *end;

		if (strncmp(p, name, nl) || p[nl] != '{')
			continue;
		v = strstr(p, key);
		if (!v || v > eol)
			return buf;
		v += strlen(key);
		end = strchr(v, '"');
		if (end && end < eol && (size_t)(end - v) < size) {
			memcpy(buf, v, (size_t)(end - v));
			buf[end - v] = '\0';
		}
		return buf;
	}
	return buf;
}

struct status_fig {
	const char *key;	/* JSON */
	const char *label;	/* for people */
	const char *daemon;	/* the daemon-wide family (admin only) */
	const char *domains;	/* the per-domain one, summed, or NULL */
	bool bytes;
};

static const struct status_fig status_figs[] = {
	{ "clients", "clients", "dirtyd_clients", NULL, false },
	{ "subscriptions", "subscriptions", "dirtyd_subscriptions",
	  "dirtyd_domain_subscriptions", false },
	{ "parked_sessions", "parked sessions", "dirtyd_parked_sessions",
	  NULL, false },
	{ "harvest_rounds", "rounds", "dirtyd_rounds_total",
	  "dirtyd_domain_rounds_total", false },
	{ "dirty_pages", "dirty pages", "dirtyd_dirty_pages_total",
	  "dirtyd_domain_dirty_pages_total", false },
	{ "harvest_errors", "round errors", "dirtyd_round_errors_total",
	  "dirtyd_domain_round_errors_total", false },
	{ "resident_bytes", "resident memory", "dirtyd_resident_memory_bytes",
	  NULL, true },
	{ "store_kept", "state kept across restarts", "dirtyd_store_kept",
	  NULL, false },
};

static int cmd_status(struct ctl *c, char **args, int nargs)
{
	struct json j = JSON_INIT(stdout);
	char version[64], backend[32], kernel[32], num[32];
	double start = 0, v, domains = 0;
	bool admin;
	char *text;
	int r;

	r = dirty_metrics(c->d, 0, &text, NULL);
	if (r < 0)
		return fail(c, "reading metrics", r);
	om_label(text, "dirtyd_build_info", "version", version,
		 sizeof(version));
	om_label(text, "dirtyd_build_info", "backend", backend,
		 sizeof(backend));
	om_label(text, "dirtyd_build_info", "kernel", kernel, sizeof(kernel));
	om_value(text, "dirtyd_start_time_seconds", "", &start);
	om_value(text, "dirtyd_domains", "", &domains);
	/* daemon-wide figures only for root and the admin group */
	admin = om_value(text, "dirtyd_clients", "", &v);
	if (c->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "version", version);
		json_str(&j, "backend", backend);
		if (*kernel)
			json_str(&j, "kernel", kernel);
		else
			json_null(&j, "kernel");
		json_double(&j, "uptime_s", start ? time(NULL) - start : NAN);
		json_u64(&j, "domain_count", (uint64_t)domains);
		json_str(&j, "scope", admin ? "daemon" : "your domains");
	} else {
		printf("dirtyd %s, backend %s%s%s%s\n", version, backend,
		       !*kernel ? "" : strcmp(backend, "sim") ? " (on Linux " :
		       " (emulating Linux ", kernel, *kernel ? ")" : "");
		if (start) {
			long up = (long)(time(NULL) - start);

			printf("uptime: %ldd %02ld:%02ld:%02ld\n", up / 86400,
			       up / 3600 % 24, up / 60 % 60, up % 60);
		}
		printf("domains: %.0f%s\n", domains,
		       admin ? "" : " (yours)");
	}
	for (size_t i = 0; i < sizeof(status_figs) / sizeof(status_figs[0]);
	     i++) {
		const struct status_fig *f = &status_figs[i];
		bool has = om_value(text, f->daemon, "", &v);

		if (!has && f->domains) {
			v = om_sum(text, f->domains);
			has = true;
		}
		if (c->json) {
			json_u64_or_null(&j, f->key, (uint64_t)v, has);
			continue;
		}
		if (has && f->bytes)
			printf("%s: %s\n", f->label,
			       fmt_bytes(num, sizeof(num), (uint64_t)v));
		else if (has)
			printf("%s: %.0f%s\n", f->label, v,
			       admin || !f->domains ? "" :
			       " (of your domains)");
		else
			printf("%s: - (root and the admin group only)\n",
			       f->label);
	}
	if (c->json)
		json_close(&j, '}');
	free(text);
	return 0;
}

/* ---- watch ---- */

static volatile sig_atomic_t watch_stop;

static void on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

struct watch_prev {
	uint32_t domain_id;
	uint64_t generation;
	double changed;		/* when watch saw it change; 0: never */
};

/* The previous refresh's entry of @s, or NULL (the first refresh, or a
 * new domain). */
static const struct watch_prev *watch_prev_of(const struct watch_prev *prev,
					      size_t nprev,
					      const struct dirty_stats *s)
{
	for (size_t i = 0; i < nprev; i++)
		if (prev[i].domain_id == s->domain_id)
			return &prev[i];
	return NULL;
}

/* Subscribe to every tracking domain not subscribed yet, so that it is
 * harvested every interval (--harvest). */
static int watch_harvest(struct ctl *c, struct dirty_domain *const *doms,
			 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r;

		if (!(doms[i]->status & DIRTY_DOMAIN_ENABLED))
			continue;
		r = dirty_subscribe(c->d, doms[i]->domain_id,
				    (uint32_t)c->interval_ms,
				    DIRTY_SUBSCRIBE_CLEAN, NULL);
		/* -EEXIST: subscribed at an earlier refresh */
		if (r < 0 && r != -EEXIST && r != -ENOENT)
			return fail(c, "subscribing", r);
	}
	return 0;
}

static int watch_refresh(struct ctl *c, struct watch_prev **prev,
			 size_t *nprev, double *last, uint64_t refresh)
{
	struct dirty_domain **doms = NULL;
	struct dirty_stats **st = NULL;
	struct json j = JSON_INIT(stdout);
	double t = clock_now_s(), dt = *last ? t - *last : 0;
	size_t n, ndoms, nstale = 0;
	struct watch_prev *np;
	int r;

	r = dirty_list_domains(c->d, &doms, &ndoms);
	if (r < 0)
		return fail(c, "listing domains", r);
	if (c->harvest) {
		r = watch_harvest(c, doms, ndoms);
		if (r) {
			free(doms);
			return r;
		}
	}
	r = dirty_stats(c->d, 0, &st, &n);
	if (r < 0) {
		free(doms);
		return fail(c, "reading statistics", r);
	}
	np = calloc(n ? n : 1, sizeof(*np));

	if (c->json) {
		json_open(&j, NULL, '{');
		json_u64(&j, "refresh", refresh);
		if (*last)
			json_double(&j, "interval_s", dt);
		else
			json_null(&j, "interval_s");
		json_open(&j, "domains", '[');
	} else {
		time_t wall = time(NULL);
		char when[32];

		strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
		/* clear the screen on a terminal only, never into a pipe */
		if (c->tty_out)
			printf("\033[H\033[2J");
		else if (refresh > 1)
			putchar('\n');
		printf("dirtyctl watch  %s  every %" PRIu64 " ms%s%s\n\n",
		       when, c->interval_ms,
		       c->harvest ? ", harvesting" : "",
		       c->tty_out ? "  (q or Ctrl-C quits)" : "");
		printf("%-6s %-9s %-10s %-8s %-12s %-11s %-11s %-10s %s\n",
		       "DOMAIN", "TRACKING", "GENERATION", "ROUNDS/S",
		       "DIRTY_PG/S", "DIRTY_MiB/S", "LAST_ROUND", "ROUND_MS",
		       "MAPPED");
	}
	for (size_t i = 0; i < n; i++) {
		const struct dirty_stats *s = st[i];
		const struct watch_prev *p = watch_prev_of(*prev, *nprev, s);
		uint64_t ps = page_size_of(doms, ndoms, s->domain_id);
		bool changed = p && s->generation != p->generation;
		double seen = changed ? t : p ? p->changed : 0;
		/* the first look: dirtyd's figure (rounds of the last 10 s);
		 * later ones only while watch sees rounds: one within the
		 * last 3 refreshes, or second (a harvest period as long as
		 * the refresh interval jitters around it) */
		bool fresh = !p || (seen && t - seen <= fmax(
			3 * (double)c->interval_ms / 1e3, 1.0));
		double rounds = p && dt > 0 ?
			(double)(s->generation - p->generation) / dt : NAN;
		char mapped[32], rate[24], rmib[24], lr[24], lrms[24];

		nstale += !fresh;
		if (np)
			np[i] = (struct watch_prev){
				.domain_id = s->domain_id,
				.generation = s->generation,
				.changed = seen,
			};
		if (c->json) {
			json_open(&j, NULL, '{');
			json_stats(&j, s, ps, fresh);
			json_double(&j, "harvest_rounds_per_s", rounds);
			json_close(&j, '}');
			continue;
		}
		snprintf(rate, sizeof(rate), fresh ? "%" PRIu64 : "-",
			 s->dirty_rate);
		snprintf(rmib, sizeof(rmib), fresh ? "%.1f" : "-",
			 mib(s->dirty_rate, ps));
		snprintf(lr, sizeof(lr), s->generation ? "%" PRIu64 : "-",
			 s->last_round_pages);
		snprintf(lrms, sizeof(lrms), s->generation ? "%.3f" : "-",
			 s->last_round_ns / 1e6);
		printf("%-6" PRIu32 " %-9s %-10" PRIu64 " ", s->domain_id,
		       tracking_name(s->status), s->generation);
		if (isnan(rounds))
			printf("%-8s ", "-");
		else
			printf("%-8.1f ", rounds);
		printf("%-12s %-11s %-11s %-10s %s\n", rate, rmib, lr, lrms,
		       fmt_bytes(mapped, sizeof(mapped), s->mapped_bytes));
	}
	if (c->json) {
		json_list_close(&j);
	} else if (!n) {
		printf("(no domain you may see)\n");
	} else if (nstale) {
		printf("\n-: no round since the last refresh%s\n",
		       c->harvest ? "" : " (nothing harvests the domain; "
		       "--harvest makes watch do it)");
	}
	fflush(stdout);

	if (np) {
		free(*prev);
		*prev = np;
		*nprev = n;
	}
	*last = t;
	free(doms);
	free(st);
	return 0;
}

static int cmd_watch(struct ctl *c, char **args, int nargs)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct termios saved, raw;
	bool tty = !c->json && isatty(STDIN_FILENO) &&
		   tcgetattr(STDIN_FILENO, &saved) == 0;
	struct watch_prev *prev = NULL;
	size_t nprev = 0;
	double last = 0;
	int r = 0;

	c->tty_out = !c->json && isatty(STDOUT_FILENO);
	if (!c->interval_ms)
		c->interval_ms = 1000;
	if (c->interval_ms > INT32_MAX)
		return usage_error("--interval is too long");
	sigaction(SIGINT, &sa, NULL);	/* no SA_RESTART: poll returns */
	sigaction(SIGTERM, &sa, NULL);
	if (tty) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}

	for (uint64_t i = 1; !watch_stop; i++) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		double until;

		r = watch_refresh(c, &prev, &nprev, &last, i);
		if (r || (c->count && i >= c->count))
			break;
		until = clock_now_s() + c->interval_ms / 1000.0;
		while (!watch_stop) {
			double left = until - clock_now_s();
			char ch;

			if (left <= 0)
				break;
			if (poll(&pfd, tty ? 1 : 0, (int)(left * 1000) + 1) <=
			    0 || !(pfd.revents & POLLIN))
				continue;
			if (read(STDIN_FILENO, &ch, 1) == 1 &&
			    (ch == 'q' || ch == 'Q'))
				watch_stop = 1;
		}
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	free(prev);
	return r;
}

/* ---- main ---- */

#define OPTS_RANGES (GIVEN(OPT_ACK) | GIVEN(OPT_RESEND) | GIVEN(OPT_SINCE))
#define OPTS_WATCH (GIVEN(OPT_INTERVAL) | GIVEN(OPT_COUNT) | \
		    GIVEN(OPT_HARVEST))

static const struct command commands[] = {
	{ "devices", 0, 0, 0, cmd_devices, "devices" },
	{ "domains", 0, 0, 0, cmd_domains, "domains" },
	{ "sources", 1, 1, 0, cmd_sources, "sources DOMAIN" },
	{ "create", 1, 1, GIVEN(OPT_NO_TRACK) | GIVEN(OPT_NO_HUGE_PAGES),
	  cmd_create, "create DEVICE [--no-track] [--no-huge-pages]" },
	{ "attach", 2, 2, 0, cmd_attach, "attach DOMAIN DEVICE" },
	{ "detach", 2, 2, 0, cmd_detach, "detach DOMAIN DEVICE" },
	{ "destroy", 1, 1, 0, cmd_destroy, "destroy DOMAIN" },
	{ "map", 3, 3, 0, cmd_map, "map DOMAIN IOVA LENGTH" },
	{ "unmap", 3, 3, 0, cmd_unmap, "unmap DOMAIN IOVA LENGTH" },
	{ "track", 2, 2, 0, cmd_track, "track start|stop DOMAIN" },
	{ "sync", 1, 1, 0, cmd_sync, "sync DOMAIN" },
	{ "ranges", 1, 1, OPTS_RANGES, cmd_ranges,
	  "ranges DOMAIN [--ack] [--resend] [--since MS]" },
	{ "stats", 0, 1, GIVEN(OPT_FORMAT), cmd_stats,
	  "stats [DOMAIN] [--format table|json|openmetrics]" },
	{ "status", 0, 0, 0, cmd_status, "status" },
	{ "watch", 0, 0, OPTS_WATCH, cmd_watch,
	  "watch [--interval MS] [--count N] [--harvest]" },
	{ "dma", 3, 3, 0, cmd_dma, "dma DOMAIN IOVA LENGTH" },
};

static void usage(FILE *f)
{
	fputs("Usage: dirtyctl [--socket PATH] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "Talk to dirtyd, the IOMMU dirty-page tracking daemon.\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fputs("\n"
	      "Options:\n"
	      "  -s, --socket PATH   dirtyd's socket (default: $DIRTYD_SOCKET,"
	      " else\n"
	      "                      " DIRTY_SOCKET_DEFAULT ")\n"
	      "  -j, --json          print JSON (watch: one object a line)\n"
	      "  -h, --help          this text\n"
	      "  -V, --version       the version\n"
	      "  --no-track          create: a domain without dirty tracking\n"
	      "  --no-huge-pages     create: 4 KiB IO pages only\n"
	      "  --ack               ranges: acknowledge what was printed\n"
	      "  --resend            ranges: resend unacknowledged pages\n"
	      "  --since MS          ranges: only the pages written during the"
	      " MS ms\n"
	      "                      after the command starts (it waits that "
	      "long)\n"
	      "  --interval MS       watch: refresh period (default 1000)\n"
	      "  --count N           watch: stop after N refreshes\n"
	      "  --harvest           watch: subscribe to every tracking "
	      "domain so that\n"
	      "                      it is harvested every interval\n"
	      "  --format FMT        stats: table (default), json, or "
	      "openmetrics (what\n"
	      "                      dirtyd returns, for node_exporter's "
	      "textfile collector)\n"
	      "\n"
	      "IOVA and LENGTH take 0x hex and k/M/G/T (binary) suffixes.\n"
	      "Exit status: 0 done, 1 refused or failed, 2 usage error.\n"
	      "See dirtyctl(1).\n", f);
}

static const char *socket_shown(const char *opt)
{
	const char *env = getenv(DIRTY_SOCKET_ENV);

	if (opt)
		return opt;
	return env && *env ? env : DIRTY_SOCKET_DEFAULT;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "no-track", no_argument, NULL, OPT_NO_TRACK },
		{ "no-huge-pages", no_argument, NULL, OPT_NO_HUGE_PAGES },
		{ "ack", no_argument, NULL, OPT_ACK },
		{ "resend", no_argument, NULL, OPT_RESEND },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "harvest", no_argument, NULL, OPT_HARVEST },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ 0 }
	};
	struct ctl c = { 0 };
	const struct command *cmd = NULL;
	char what[128];
	int opt, r, nargs;

	while ((opt = getopt_long(argc, argv, "s:jhV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SOCKET:
			c.socket = optarg;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("dirtyctl %s (libdirty %s)\n", DIRTYD_VERSION,
			       dirty_version_string());
			return 0;
		case OPT_NO_TRACK:
			c.no_track = true;
			break;
		case OPT_NO_HUGE_PAGES:
			c.no_huge_pages = true;
			break;
		case OPT_ACK:
			c.ack = true;
			break;
		case OPT_RESEND:
			c.resend = true;
			break;
		case OPT_HARVEST:
			c.harvest = true;
			break;
		case OPT_SINCE:
			if (parse_u64(optarg, &c.since_ms) < 0 || !c.since_ms)
				return usage_error("bad --since '%s'", optarg);
			break;
		case OPT_INTERVAL:
			if (parse_u64(optarg, &c.interval_ms) < 0 ||
			    !c.interval_ms)
				return usage_error("bad --interval '%s'",
						   optarg);
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "json"))
				c.json = true;
			else if (!strcmp(optarg, "openmetrics"))
				c.format = optarg;
			else if (strcmp(optarg, "table"))
				return usage_error("bad --format '%s' (table, "
						   "json or openmetrics)",
						   optarg);
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, &c.count) < 0 || !c.count)
				return usage_error("bad --count '%s'", optarg);
			break;
		default:
			fputs("Try 'dirtyctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
		if (opt >= OPT_NO_TRACK)
			c.given |= GIVEN(opt);
	}
	if (optind >= argc)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < cmd->min_args || nargs > cmd->max_args)
		return usage_error("usage: dirtyctl %s", cmd->usage);
	if (c.given & ~cmd->options)
		return usage_error("an option given does not apply to '%s' "
				   "(usage: dirtyctl %s)", cmd->name,
				   cmd->usage);

	/* One-shot: no session to resume, no events wanted. */
	r = dirty_connect(c.socket, DIRTY_CONNECT_NO_RESUME |
			  DIRTY_CONNECT_NO_EVENTS, &c.d);
	if (r < 0) {
		snprintf(what, sizeof(what), "connecting to %s",
			 socket_shown(c.socket));
		fail(&c, what, r);
		connect_hint(stderr, socket_shown(c.socket), r);
		return EXIT_FAILURE;
	}
	r = cmd->run(&c, argv + optind + 1, nargs);
	dirty_close(c.d);
	return r;
}
