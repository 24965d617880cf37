// SPDX-License-Identifier: MIT
/*
 * METRICS: dirtyd's figures as one OpenMetrics text exposition
 * (PROTOCOL.md 6.17), built whole when the request arrives and streamed
 * in METRICS_REPLY packets cut at line ends.
 *
 * Owns: which figure a client may read.  Per-domain families list only
 * the domains the client may see (access_may_see(), as LIST_DOMAINS and
 * STATS); the build, the start time and the count of visible domains go
 * to everyone; figures of the whole daemon (clients, subscriptions,
 * memory, the store, cumulative rounds) only to root and the admin group
 * (access_is_admin()), as they tell of other users' activity.
 */
#define _GNU_SOURCE		/* open_memstream */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/domain/domain.h"
#include "daemon/server/metrics.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/state/state.h"
#include "daemon/subscriber/bitmem.h"
#include "daemon/subscriber/subscription.h"
#include "protocol/proto.h"

#ifndef DIRTYD_VERSION
#define DIRTYD_VERSION "unknown"
#endif

/* One family: its name, type, unit (or NULL) and help. */
static void family(FILE *f, const char *name, const char *type,
		   const char *unit, const char *help)
{
	fprintf(f, "# TYPE %s %s\n", name, type);
	if (unit)
		fprintf(f, "# UNIT %s %s\n", name, unit);
	fprintf(f, "# HELP %s %s\n", name, help);
}

/* A family of one sample without labels; counters get "_total". */
static void single(FILE *f, const char *name, const char *type,
		   const char *unit, const char *help, uint64_t v)
{
	family(f, name, type, unit, help);
	fprintf(f, "%s%s %" PRIu64 "\n", name,
		strcmp(type, "counter") ? "" : "_total", v);
}

/* Seconds from nanoseconds, exactly (9 decimals). */
static void seconds(FILE *f, uint64_t ns)
{
	fprintf(f, "%" PRIu64 ".%09" PRIu64 "\n", ns / UINT64_C(1000000000),
		ns % UINT64_C(1000000000));
}

enum dom_field {
	F_ROUNDS, F_HARVEST, F_LAST_HARVEST, F_PAGES, F_LAST_PAGES, F_RATE,
	F_PENDING, F_UNACKED, F_ERRORS, F_MAPPED, F_PAGE_SIZE, F_SUBS,
	F_TRACKING, F_COUNT
};

static const struct {
	const char *name, *type, *unit, *help;
} dom_families[F_COUNT] = {
	[F_ROUNDS] = { "dirtyd_domain_rounds", "counter", NULL,
		"Harvest rounds completed (the domain's generation)." },
	[F_HARVEST] = { "dirtyd_domain_harvest_seconds", "counter",
		"seconds", "Time the completed rounds took, since this dirtyd "
		"made or restored the domain." },
	[F_LAST_HARVEST] = { "dirtyd_domain_last_harvest_seconds", "gauge",
		"seconds", "Time the last completed round took." },
	[F_PAGES] = { "dirtyd_domain_dirty_pages", "counter", NULL,
		"Pages the completed rounds found dirty, since this dirtyd "
		"made or restored the domain." },
	[F_LAST_PAGES] = { "dirtyd_domain_last_round_dirty_pages", "gauge",
		NULL, "Pages the last completed round found dirty." },
	[F_RATE] = { "dirtyd_domain_dirty_pages_per_second", "gauge", NULL,
		"Pages dirtied per second over the rounds of the last 10 "
		"seconds (STATS dirty_rate); 0 without a round in them." },
	[F_PENDING] = { "dirtyd_domain_pending_pages", "gauge", NULL,
		"Pages pending (dirty, not yet taken), summed over the "
		"domain's subscriptions." },
	[F_UNACKED] = { "dirtyd_domain_unacknowledged_pages", "gauge", NULL,
		"Pages sent and not yet acknowledged, summed over the "
		"domain's subscriptions." },
	[F_ERRORS] = { "dirtyd_domain_round_errors", "counter", NULL,
		"Rounds that failed (every page was then marked pending)." },
	[F_MAPPED] = { "dirtyd_domain_mapped_bytes", "gauge", "bytes",
		"Bytes mapped in the domain." },
	[F_PAGE_SIZE] = { "dirtyd_domain_page_size_bytes", "gauge", "bytes",
		"Bytes in one page of the domain's ranges." },
	[F_SUBS] = { "dirtyd_domain_subscriptions", "gauge", NULL,
		"Subscriptions to the domain, parked ones included." },
	[F_TRACKING] = { "dirtyd_domain_tracking", "gauge", NULL,
		"1 while dirty tracking is on, else 0." },
};

/* Every figure of @d, by family; F_HARVEST and F_LAST_HARVEST in ns. */
static void dom_values(const struct domain *d, uint64_t v[F_COUNT])
{
	const struct subscription *sub;

	v[F_ROUNDS] = d->generation;
	v[F_HARVEST] = d->rounds_ns;
	v[F_LAST_HARVEST] = d->last_round_ns;
	v[F_PAGES] = d->rounds_pages;
	v[F_LAST_PAGES] = d->last_round_pages;
	v[F_RATE] = domain_rate_get(&d->rate, domain_now_ns());
	v[F_PENDING] = v[F_UNACKED] = 0;
	list_for_each_entry(sub, &d->subs, dom_link) {
		v[F_PENDING] += subscriber_set_pending_pages(&sub->set);
		for (const struct subscriber_gen *g = sub->set.inflight; g;
		     g = g->next)
			v[F_UNACKED] += g->pages;
	}
	v[F_ERRORS] = d->round_errors;
	v[F_MAPPED] = d->mapped_bytes;
	v[F_PAGE_SIZE] = d->page_size;
	v[F_SUBS] = d->nsubs;
	v[F_TRACKING] = d->enabled;
}

static void dom_sample(FILE *f, enum dom_field k, const struct domain *d,
		       const uint64_t v[F_COUNT])
{
	fprintf(f, "%s%s{domain=\"%" PRIu32 "\"} ", dom_families[k].name,
		strcmp(dom_families[k].type, "counter") ? "" : "_total",
		d->id);
	if (k == F_HARVEST || k == F_LAST_HARVEST)
		seconds(f, v[k]);
	else
		fprintf(f, "%" PRIu64 "\n", v[k]);
}

static bool listed(const struct session *s, const struct domain *d,
		   uint32_t only)
{
	return !d->dying && access_may_see(s, d) && (!only || d->id == only);
}

/* The read sources' families (LIST_SOURCES' figures), one sample per
 * source of each listed domain; plain HWPTs, never read, have none. */
static void source_figures(FILE *f, const struct session *s, uint32_t only)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "dirtyd_source_rounds", "counter",
		  "Rounds that read the source." },
		{ "dirtyd_source_errors", "counter",
		  "Reads of the source that failed." },
		{ "dirtyd_source_restarts", "counter",
		  "A DMA log's STOP and START again by a MAP outside its "
		  "ranges." },
		{ "dirtyd_source_ranges", "gauge",
		  "Ranges a DMA log's START covers (0: not started)." },
	};
	struct proto_source src[DOMAIN_MAX_SOURCES];
	const struct domain *d;

	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		family(f, fams[k].name, fams[k].type, NULL, fams[k].help);
		list_for_each_entry(d, &s->srv->domains, link) {
			size_t n;

			/* a change's thread may be re-starting its logs
			 * (domain_source.c): no sample of it meanwhile */
			if (!listed(s, d, only) || d->change)
				continue;
			n = domain_sources_list(d, src, DOMAIN_MAX_SOURCES);
			for (size_t i = 0; i < n; i++) {
				const struct proto_source *x = &src[i];
				const uint64_t v[] = { x->rounds, x->errors,
						       x->restarts, x->ranges };

				if (x->kind == PROTO_SOURCE_HWPT_PLAIN)
					continue;
				fprintf(f, "%s%s{domain=\"%" PRIu32 "\",kind=\"%s\","
					"id=\"%" PRIu32 "\",device=\"",
					fams[k].name, k < 3 ? "_total" : "",
					d->id, x->kind == PROTO_SOURCE_HWPT ?
					"hwpt" : "dma_log", x->id);
				/* OpenMetrics escapes \\ and \" in a value */
				for (const char *c = x->device; *c; c++)
					fprintf(f, "%s%c", *c == '\\' ||
						*c == '"' ? "\\" : "", *c);
				fprintf(f, "\"} %" PRIu64 "\n", v[k]);
			}
		}
	}
}

/* When this process started, in seconds since the epoch (its start in
 * clock ticks after boot, /proc/self/stat field 22, plus the boot time). */
static double start_time(void)
{
	unsigned long long ticks = 0, btime = 0;
	char buf[1024], *p;
	FILE *f;
	size_t n;

	f = fopen("/proc/self/stat", "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			 "%*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &ticks) != 1)
		return 0;
	f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t resident_bytes(void)
{
	unsigned long long size, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* What only root and the admin group see. */
static void daemon_figures(FILE *f, struct server *srv)
{
	struct bitmem *bits = state_bits(srv);
	const struct domain *d;
	const struct park *pk;
	uint64_t subs = 0, sub_mem = 0, parked = 0;

	list_for_each_entry(d, &srv->domains, link) {
		const struct subscription *sub;

		subs += d->nsubs;
		list_for_each_entry(sub, &d->subs, dom_link)
			sub_mem += subscriber_set_memory(&sub->set);
	}
	list_for_each_entry(pk, &srv->parks, link)
		parked++;
	single(f, "dirtyd_clients", "gauge", NULL,
	       "Connected clients.", srv->nsessions);
	single(f, "dirtyd_parked_sessions", "gauge", NULL,
	       "Closed sessions kept for a resume.", parked);
	single(f, "dirtyd_subscriptions", "gauge", NULL,
	       "Subscriptions of every domain, parked ones included.", subs);
	single(f, "dirtyd_rounds", "counter", NULL,
	       "Rounds completed, every domain, since this process started.",
	       srv->rounds);
	single(f, "dirtyd_dirty_pages", "counter", NULL,
	       "Pages the rounds found dirty, every domain, since this "
	       "process started.", srv->rounds_pages);
	single(f, "dirtyd_round_errors", "counter", NULL,
	       "Rounds that failed, every domain, since this process "
	       "started.", srv->round_errors);
	single(f, "dirtyd_resident_memory_bytes", "gauge", "bytes",
	       "dirtyd's resident memory (VmRSS).", resident_bytes());
	single(f, "dirtyd_subscriber_memory_bytes", "gauge", "bytes",
	       "Memory of the subscriptions' bitmaps and generations.",
	       sub_mem);
	single(f, "dirtyd_store_kept", "gauge", NULL,
	       "1 when the service manager's file descriptor store keeps "
	       "dirtyd's state (a restart loses nothing), else 0.",
	       state_keeps(srv));
	single(f, "dirtyd_store_bitmap_bytes", "gauge", "bytes",
	       "Bytes of the durable bitmap memory in use (0 without a "
	       "store).", bits ? bitmem_bytes(bits) : 0);
}

int metrics_text(struct session *s, uint32_t only, char **text, size_t *len)
{
	static double started;
	uint64_t (*vals)[F_COUNT];
	size_t i;
	struct server *srv = s->srv;
	struct backend_caps caps;
	const struct domain *d;
	struct utsname uts;
	uint64_t ndoms = 0;
	FILE *f;

	*text = NULL;
	f = open_memstream(text, len);
	if (!f)
		return -ENOMEM;
	backend_caps(srv->backend, &caps);
	if (uname(&uts) < 0)
		uts.release[0] = '\0';
	family(f, "dirtyd_build_info", "gauge", NULL,
	       "dirtyd's version, backend and the Linux release the "
	       "simulated backend emulates, or the one running; value 1.");
	fprintf(f, "dirtyd_build_info{version=\"%s\",backend=\"%s\","
		"kernel=\"%s\"} 1\n", DIRTYD_VERSION,
		backend_name(srv->backend),
		caps.emulates ? caps.emulates : uts.release);
	family(f, "dirtyd_start_time_seconds", "gauge", "seconds",
	       "When dirtyd started, in seconds since the epoch.");
	/* it does not change: read once */
	if (!started)
		started = start_time();
	fprintf(f, "dirtyd_start_time_seconds %.2f\n", started);
	list_for_each_entry(d, &srv->domains, link)
		ndoms += listed(s, d, 0);
	single(f, "dirtyd_domains", "gauge", NULL,
	       "Domains this client may see.", ndoms);
	if (s->admin)
		daemon_figures(f, srv);
	/* each family's samples together, every figure of a domain once */
	vals = calloc(ndoms ? ndoms : 1, sizeof(*vals));
	if (!vals) {
		fclose(f);
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	i = 0;
	list_for_each_entry(d, &srv->domains, link)
		if (listed(s, d, only))
			dom_values(d, vals[i++]);
	for (int k = 0; k < F_COUNT; k++) {
		family(f, dom_families[k].name, dom_families[k].type,
		       dom_families[k].unit, dom_families[k].help);
		i = 0;
		list_for_each_entry(d, &srv->domains, link)
			if (listed(s, d, only))
				dom_sample(f, k, d, vals[i++]);
	}
	free(vals);
	source_figures(f, s, only);
	fputs("# EOF\n", f);
	if (fclose(f) || !*text) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}

int metrics_packet(uint8_t *buf, size_t cap, uint64_t id, uint32_t seq,
		   const char *text, size_t len, size_t *off, bool *last)
{
	size_t room = cap - PROTO_HEADER_SIZE - PROTO_METRICS_FIXED;
	const char *from = text + *off;
	size_t n = len - *off;

	if (n > room) {
		const char *nl = memrchr(from, '\n', room);

		if (!nl)
			return -EMSGSIZE;	/* no line is that long */
		n = (size_t)(nl - from) + 1;
	}
	*off += n;
	*last = *off == len;
	return proto_encode(&(struct proto_msg){
		.type = PROTO_METRICS_REPLY,
		.flags = *last ? 0 : PROTO_F_MORE,
		.id = id,
		.metrics = { .seq = seq, .text = from, .text_len = n },
	}, buf, cap);
}

static int metrics_next(struct session *s, uint8_t *buf, size_t cap,
			bool *last)
{
	struct session_stream *st = &s->stream;
	size_t off = st->cursor;
	int r = metrics_packet(buf, cap, st->id, st->seq++, st->text,
			       st->text_len, &off, last);

	st->cursor = off;
	return r;
}

static void metrics_end(struct session *s, bool whole)
{
	free(s->stream.text);
	s->stream.text = NULL;
}

int stream_metrics(struct session *s, uint64_t id, uint32_t domain_id)
{
	char *text;
	size_t len;
	int r = metrics_text(s, domain_id, &text, &len);

	if (r < 0)
		return r;
	s->stream = (struct session_stream){
		.next = metrics_next,
		.end = metrics_end,
		.id = id,
		.domain_id = domain_id,
		.text = text,
		.text_len = len,
	};
	session_start_stream(s);
	return 0;
}
