// SPDX-License-Identifier: MIT
/*
 * The records of a version (Owns: the bytes of dirtyd-meta, state_format.h):
 * a version written from the daemon's domains and subscriptions, and the
 * committed version read back and checked, every record, before anything
 * of it is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/state/state_private.h"

/* Why the store is not used, into st->why; returns @err. */
int refuse(struct state *st, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	return err;
}

/* ------------------------------------------------------------ records */

/*
 * A record's fields: where each is in the record (state_format.h), how
 * wide (4, 8, or BACKEND_NAME_MAX bytes of a name), and where in what it
 * says decoded (state_private.h).  One table per kind, read both ways:
 * what is written is what is read.
 */
struct field {
	uint16_t at;
	uint16_t size;
	uint16_t off;
};

/* Field @member of @type, @size bytes wide there and here, at @at. */
#define FIELD(at, type, member, size) { (at), (size),			\
	offsetof(type, member) +					\
	0 * sizeof(char[sizeof(((type *)0)->member) == (size) ? 1 : -1]) }

#define HEAD_F(name, at, size, m) FIELD(at, struct state_head, m, size),
#define DOM_F(name, at, size, m) FIELD(at, struct state_domain_rec, m, size),
#define DEV_F(name, at, size, m) FIELD(at, struct state_dev_rec, m, size),
#define MAP_F(name, at, size, m) FIELD(at, struct state_map_rec, m, size),
#define RANGE_F(name, at, size, m) FIELD(at, struct state_range_rec, m, size),
#define SUB_F(name, at, size, m) FIELD(at, struct state_sub_rec, m, size),
static const struct field head_fields[] = { STATE_HEAD_FIELDS(HEAD_F) };
static const struct field domain_fields[] = { STATE_DOM_FIELDS(DOM_F) };
static const struct field dev_fields[] = { STATE_DEV_FIELDS(DEV_F) };
static const struct field map_fields[] = { STATE_MAP_FIELDS(MAP_F) };
static const struct field range_fields[] = { STATE_RANGE_FIELDS(RANGE_F) };
static const struct field sub_fields[] = { STATE_SUB_FIELDS(SUB_F) };

/* One kind of record: its fields, their table, how long they are. */
struct kind {
	uint32_t kind;		/* STATE_REC_* */
	uint32_t size;		/* STATE_*_SIZE */
	uint32_t min;		/* the least it may have: format 3's */
	const struct field *f;
	size_t n;
	size_t native;		/* the decoded structure's size */
};

#define KIND(k, size, min, t, type) \
	{ (k), (size), (min), (t), sizeof(t) / sizeof((t)[0]), sizeof(type) }
static const struct kind kind_head = KIND(0, STATE_HEAD_SIZE, STATE_HEAD_SIZE,
					  head_fields, struct state_head);
/* the lease's fields came at the end: a record without them has none */
static const struct kind kind_domain = KIND(STATE_REC_DOMAIN, STATE_DOM_SIZE,
					    STATE_DOM_SIZE_V3, domain_fields,
					    struct state_domain_rec);
static const struct kind kind_dev = KIND(STATE_REC_DEVICE, STATE_DEV_SIZE,
					 STATE_DEV_SIZE, dev_fields,
					 struct state_dev_rec);
static const struct kind kind_map = KIND(STATE_REC_MAP, STATE_MAP_SIZE,
					 STATE_MAP_SIZE, map_fields,
					 struct state_map_rec);
static const struct kind kind_range = KIND(STATE_REC_RANGE, STATE_RANGE_SIZE,
					   STATE_RANGE_SIZE, range_fields,
					   struct state_range_rec);
static const struct kind kind_sub = KIND(STATE_REC_SUB, STATE_SUB_SIZE,
					 STATE_SUB_SIZE, sub_fields,
					 struct state_sub_rec);

/* @k's fields of @from into @b (STATE_*_SIZE bytes, zeroed). */
static void encode(uint8_t *b, const struct kind *k, const void *from)
{
	const uint8_t *s = from;

	for (size_t i = 0; i < k->n; i++) {
		const struct field *f = &k->f[i];
		uint32_t v32;
		uint64_t v64;

		if (f->size == 4) {
			memcpy(&v32, s + f->off, 4);
			state_put_le32(b + f->at, v32);
		} else if (f->size == 8) {
			memcpy(&v64, s + f->off, 8);
			state_put_le64(b + f->at, v64);
		} else {
			memcpy(b + f->at, s + f->off, f->size);
		}
	}
}

/* @k's fields at @b (@len bytes) into @to: those past @len stay 0. */
static void decode(const uint8_t *b, uint32_t len, const struct kind *k,
		   void *to)
{
	uint8_t *d = to;

	for (size_t i = 0; i < k->n; i++) {
		const struct field *f = &k->f[i];
		uint32_t v32;
		uint64_t v64;

		if ((uint32_t)f->at + f->size > len)
			continue;
		if (f->size == 4) {
			v32 = state_le32(b + f->at);
			memcpy(d + f->off, &v32, 4);
		} else if (f->size == 8) {
			v64 = state_le64(b + f->at);
			memcpy(d + f->off, &v64, 8);
		} else {
			memcpy(d + f->off, b + f->at, f->size);
		}
	}
}

/* ------------------------------------------------------------ versions */

static void put(struct writer *w, const void *src, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_pad8(struct writer *w)
{
	static const uint8_t zero[8];

	put(w, zero, (8 - w->len % 8) % 8);
}

/* A record of kind @k saying @from: its header, its fields. */
static void put_rec(struct writer *w, const struct kind *k, const void *from)
{
	uint8_t b[STATE_REC_HDR + STATE_DOM_SIZE] = { 0 };

	state_put_le32(b + STATE_REC_KIND, k->kind);
	state_put_le32(b + STATE_REC_LEN, STATE_REC_HDR + k->size);
	encode(b + STATE_REC_HDR, k, from);
	put(w, b, STATE_REC_HDR + k->size);
}

/* Does the store keep @sub's session (a token to resume with)? */
uint64_t sub_token(const struct subscription *sub, uid_t *uid)
{
	if (sub->session) {
		*uid = sub->session->uid;
		return sub->session->token;
	}
	if (sub->park) {
		*uid = sub->park->uid;
		return sub->park->token;
	}
	return 0;
}

/*
 * When @p's resume grace ends, CLOCK_MONOTONIC ns.  Its timer is the
 * truth: libevent reports the expiry and the loop's time on one clock, so
 * their difference is what is left.
 */
/* Kept by the park, not asked of its timer: event_pending() maps
 * libevent's monotonic timeouts to the wall clock only once the machine
 * has been up 5 s (a restart early in a boot recorded "now"). */
uint64_t park_deadline(const struct park *p)
{
	return p->deadline_ns;
}

/* What the store records of @sub's session's grace: 0 while connected. */
uint64_t sub_deadline(const struct subscription *sub)
{
	return sub->park ? park_deadline(sub->park) : 0;
}

static void put_domain(struct state *st, struct writer *w, struct domain *d,
		       size_t *nknext)
{
	const struct harvest_domain *p = d->plan;
	struct state_domain_rec rec = {
		.id = d->id,
		.owner = (uint32_t)d->owner,
		.ioas_id = d->ioas_id,
		.hwpt_id = d->hwpt_id,
		.flags = (d->tracking_capable ? DREC_TRACKING : 0) |
			 (d->enabled ? DREC_ENABLED : 0) |
			 (d->huge_pages ? DREC_HUGE : 0),
		.ndevices = d->ndevices,
		.nmaps = (uint32_t)d->nmaps,
		.nretired = (uint32_t)d->nretired,
		.page_size = d->page_size,
		.max_leaf = d->max_leaf,
		.round_off = bitmem_offset(st->bits, p->bitmap),
		.round_words = harvest_layout_words(p),
		.layout_words = p->nwords,
		.counters_off = bitmem_offset(st->bits, d->counters),
		.intent = d->intent,
		.lease = d->lease.id,
		.lease_token = d->lease.token,
		.lease_pid = (uint32_t)d->lease.pid,
		.lease_uid = (uint32_t)d->lease.uid,
		.lease_deadline_ns = d->lease.deadline_ns,
	};
	struct backend_kept_fd fds[BACKEND_KEEP_MAX_FDS];
	struct domain_device *dev;
	size_t len = 0;
	bool was = d->unkept;
	int n;

	/* its context: named here, its descriptors in st->knext for the
	 * store (a domain whose context cannot be kept is marked: its
	 * record says so, and a restart drops it) */
	n = store_domain_keep(st, d, fds, &len);
	/* the record names one HWPT: a domain with more sources than it
	 * (domain_source.c) cannot come back whole */
	if (n >= 0 && !domain_sources_keepable(d))
		n = -EOPNOTSUPP;
	d->unkept = n < 0 || *nknext + (size_t)n > STATE_MAX_KERNEL_FDS;
	if (d->unkept && !was)
		log_warning_errno(n < 0 ? n : -ENOSPC, "domain %u's kernel "
				  "context cannot be kept: a restart will lose "
				  "the domain", d->id);
	if (!d->unkept) {
		rec.flags |= DREC_KEPT;
		rec.nkept = (uint32_t)n;
		rec.blob_len = (uint32_t)len;
		for (int i = 0; i < n; i++) {
			struct state_kept *e = &st->knext[(*nknext)++];

			e->domain = d->id;
			name_copy(e->name, fds[i].name);
			e->fd = fds[i].fd;
			kept_identify(e);
		}
	}
	memcpy(rec.guest, d->guest, sizeof(rec.guest));
	put_rec(w, &kind_domain, &rec);
	for (uint32_t i = 0; i < rec.nkept; i++) {
		char name[BACKEND_NAME_MAX] = { 0 };

		name_copy(name, st->knext[*nknext - rec.nkept + i].name);
		put(w, name, sizeof(name));
	}
	put(w, st->blob, rec.blob_len);
	put_pad8(w);
	list_for_each_entry(dev, &d->devices, link) {
		struct state_dev_rec dr = { .dev_id = dev->dev_id };

		memcpy(dr.name, dev->name, sizeof(dr.name));
		put_rec(w, &kind_dev, &dr);
	}
	for (size_t i = 0; i < d->nmaps; i++) {
		struct state_map_rec mr = {
			.iova = d->maps[i].iova,
			.length = d->maps[i].length,
			.external = d->maps[i].external,
		};

		put_rec(w, &kind_map, &mr);
	}
	for (size_t i = 0; i < d->nretired; i++) {
		struct state_range_rec rr = {
			.iova = d->retired[i].iova,
			.length = d->retired[i].length,
		};

		put_rec(w, &kind_range, &rr);
	}
}

/*
 * The version of @srv as it is now, seq @seq, into @w: its head, domains
 * (their kernel descriptors into st->knext, *@nknext of them) and
 * subscriptions (from *@subs_at, *@nsubs of them).
 */
void state_encode(struct state *st, struct server *srv, struct writer *w,
		  uint64_t seq, size_t *nknext, uint64_t *subs_at,
		  uint32_t *nsubs)
{
	struct state_head head = {
		.magic = STATE_MAGIC,
		.format = STATE_FORMAT,
		.backend = (uint32_t)srv->cfg->backend,
		.next_domain_id = srv->next_domain_id,
		.seq = seq,
		.bits_size = BITMEM_RESERVE,
	};
	uint8_t hb[STATE_HEAD_SIZE] = { 0 };
	struct subscription *sub;
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link) {
		uid_t uid;

		head.ndomains++;
		list_for_each_entry(sub, &d->subs, dom_link)
			head.nsubs += sub_token(sub, &uid) != 0;
	}
	encode(hb, &kind_head, &head);
	put(w, hb, sizeof(hb));
	*nknext = 0;
	list_for_each_entry(d, &srv->domains, link)
		put_domain(st, w, d, nknext);
	*subs_at = w->len;
	*nsubs = head.nsubs;
	list_for_each_entry(d, &srv->domains, link) {
		list_for_each_entry(sub, &d->subs, dom_link) {
			struct state_sub_rec sr = {
				.domain_id = d->id,
				.interval_ms = sub->interval_ms,
				.clean = sub->clean,
				.pages_sent = sub->pages_sent,
				.nwords = sub->set.nwords,
			};
			uid_t uid = 0;

			sr.token = sub_token(sub, &uid);
			if (!sr.token)
				continue;
			sr.uid = (uint32_t)uid;
			sr.pending_off = bitmem_offset(st->bits,
						       sub->set.pending);
			sr.flight_off = bitmem_offset(st->bits,
						      sub->set.flight);
			sr.deadline_ns = sub_deadline(sub);
			put_rec(w, &kind_sub, &sr);
		}
	}
}

void state_sub_at(const uint8_t *subs, uint32_t i, struct state_sub_rec *out)
{
	memset(out, 0, sizeof(*out));
	decode(subs + (uint64_t)i * (STATE_REC_HDR + STATE_SUB_SIZE) +
	       STATE_REC_HDR, STATE_SUB_SIZE, &kind_sub, out);
}

/* ------------------------------------------------------------ reading */

static const void *get(struct reader *r, uint64_t n)
{
	const void *at;

	if (n > r->len - r->off)
		return NULL;
	at = r->p + r->off;
	r->off += n;
	return at;
}

/*
 * The next record, of kind @k, decoded into @to; false if it is not one
 * (format 4: its header names another kind, or a length too short, not a
 * multiple of 8, or past the end) or runs past the end of the version.
 * Format 3's records had no header and the kind's length.
 */
static bool get_rec(struct reader *r, const struct kind *k, void *to)
{
	const uint8_t *b;
	uint32_t len = k->min;

	if (r->format >= 4) {
		b = get(r, STATE_REC_HDR);
		if (!b)
			return false;
		len = state_le32(b + STATE_REC_LEN);
		if (state_le32(b + STATE_REC_KIND) != k->kind ||
		    len < STATE_REC_HDR + k->min || len % 8)
			return false;
		len -= STATE_REC_HDR;
	}
	b = get(r, len);
	if (!b)
		return false;
	memset(to, 0, k->native);
	decode(b, len, k, to);
	return true;
}

/* The least a record of @k takes in a version of @r's format. */
static uint64_t rec_min(const struct reader *r, const struct kind *k)
{
	return (r->format >= 4 ? STATE_REC_HDR : 0) + k->min;
}

static bool name_ok(const char *name)
{
	return memchr(name, '\0', BACKEND_NAME_MAX) != NULL;
}

static bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* The bytes a bitmap of @nwords words takes in dirtyd-bits (bitmem.c). */
static uint64_t region_bytes(uint64_t nwords)
{
	return ((nwords ? nwords : 1) * 8 + PAGE - 1) & ~(PAGE - 1);
}

/* Is @what, @nwords words at @off, where dirtyd-bits can hold it? */
static int region_check(struct state *st, const char *what, uint64_t off,
			uint64_t nwords)
{
	uint64_t size = st->head->bits_size, bytes;

	if (nwords > size / 8)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s is %llu words, "
			      "more than dirtyd-bits (%llu bytes) holds", what,
			      ull(nwords), ull(size));
	bytes = region_bytes(nwords);
	if (off % PAGE)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s is at offset "
			      "%#llx of dirtyd-bits, not on a page", what,
			      ull(off));
	if (off > size || bytes > size - off)
		return refuse(st, -EBADMSG, "dirtyd-meta: %s, [%#llx, "
			      "%#llx), lies past the end of dirtyd-bits "
			      "(%llu bytes)", what, ull(off), ull(off + bytes),
			      ull(size));
	if (off + bytes > st->bits_end)
		st->bits_end = off + bytes;
	return 0;
}

/* Does @pd plan to the layout its bitmaps were made for? */
static int state_check_plan(const struct state_pdomain *pd)
{
	const struct state_domain_rec *rec = pd->rec;
	struct harvest_domain plan = { 0 };
	struct harvest_range *ranges;
	size_t n = 0, a = 0, b = 0;
	int r;

	ranges = calloc((size_t)rec->nmaps + rec->nretired + 1,
			sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	while (a < rec->nmaps || b < rec->nretired) {
		bool map = b == rec->nretired ||
			   (a < rec->nmaps &&
			    pd->maps[a].iova < pd->retired[b].iova);

		ranges[n++] = map ? (struct harvest_range){
			.iova = pd->maps[a].iova,
			.length = pd->maps[a].length,
		} : (struct harvest_range){
			.iova = pd->retired[b].iova,
			.length = pd->retired[b].length,
			.flags = HARVEST_RANGE_RETIRED,
		};
		a += map;
		b += !map;
	}
	r = harvest_domain_plan(&plan, rec->hwpt_id, rec->page_size, ranges,
				n, 0);
	free(ranges);
	if (r < 0)
		return r;
	if (plan.nwords != rec->layout_words ||
	    harvest_layout_words(&plan) != rec->round_words)
		r = -EBADMSG;
	harvest_domain_release(&plan);
	return r;
}

/* Which slot the superblock's commit word names: 0, 1, or -1. */
static int committed_slot(const struct state_super *sb)
{
	uint64_t word = __atomic_load_n(&sb->commit, __ATOMIC_ACQUIRE);
	bool s0 = word == state_commit_word(sb->slot[0].seq, 0);
	bool s1 = word == state_commit_word(sb->slot[1].seq, 1);

	return s0 == s1 ? -1 : s1;
}

static int rec_bad(struct state *st, const struct state_domain_rec *rec,
		   const char *what, uint32_t k)
{
	return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's %s record %u "
		      "is not one (another kind, or a length too short)",
		      rec->id, what, k + 1);
}

/* Parse @pd's devices, mappings and retired ranges at @r. */
static int parse_ranges(struct state *st, struct reader *r,
			struct state_pdomain *pd)
{
	const struct state_domain_rec *rec = pd->rec;
	bool ok;

	ok = (uint64_t)rec->ndevices * rec_min(r, &kind_dev) +
	     (uint64_t)rec->nmaps * rec_min(r, &kind_map) +
	     (uint64_t)rec->nretired * rec_min(r, &kind_range) <=
	     r->len - r->off;
	if (ok) {
		pd->devs = calloc((size_t)rec->ndevices + 1, sizeof(*pd->devs));
		pd->maps = calloc((size_t)rec->nmaps + 1, sizeof(*pd->maps));
		pd->retired = calloc((size_t)rec->nretired + 1,
				     sizeof(*pd->retired));
		if (!pd->devs || !pd->maps || !pd->retired)
			return refuse(st, -ENOMEM, "out of memory");
	}
	if (!ok)
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's %u "
			      "devices, %u mappings and %u retired ranges "
			      "run past the end of the version (%zu bytes)",
			      rec->id, rec->ndevices, rec->nmaps,
			      rec->nretired, r->len);
	for (uint32_t k = 0; k < rec->ndevices; k++)
		if (!get_rec(r, &kind_dev, &pd->devs[k]))
			return rec_bad(st, rec, "device", k);
	for (uint32_t k = 0; k < rec->nmaps; k++)
		if (!get_rec(r, &kind_map, &pd->maps[k]))
			return rec_bad(st, rec, "mapping", k);
	for (uint32_t k = 0; k < rec->nretired; k++)
		if (!get_rec(r, &kind_range, &pd->retired[k]))
			return rec_bad(st, rec, "retired range", k);
	for (uint32_t k = 0; k < rec->ndevices; k++)
		if (!name_ok(pd->devs[k].name))
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "device %u has no name", rec->id, k + 1);
	for (uint32_t k = 0; k < rec->nmaps; k++)
		if (pd->maps[k].external > 1)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "mapping %u is malformed", rec->id,
				      k + 1);
	return 0;
}

/* Parse @pd's kernel context at @r: its descriptors' names, its blob. */
static int parse_context(struct state *st, struct reader *r,
			 struct state_pdomain *pd)
{
	const struct state_domain_rec *rec = pd->rec;

	if (rec->nkept > BACKEND_KEEP_MAX_FDS ||
	    rec->blob_len > BACKEND_KEEP_MAX_BLOB ||
	    (!(rec->flags & DREC_KEPT) && (rec->nkept || rec->blob_len)))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's kernel "
			      "context is malformed (%u descriptors, %u bytes "
			      "of blob)", rec->id, rec->nkept, rec->blob_len);
	pd->knames = get(r, (uint64_t)rec->nkept * BACKEND_NAME_MAX);
	pd->blob = get(r, rec->blob_len);
	if (!pd->knames || !pd->blob || !get(r, (8 - r->off % 8) % 8))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's kernel "
			      "context runs past the end of the version",
			      rec->id);
	for (uint32_t k = 0; k < rec->nkept; k++)
		if (!name_ok(pd->knames[k]) || strchr(pd->knames[k], ':'))
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "kernel descriptor name %u is "
				      "malformed", rec->id, k + 1);
	return 0;
}

/* Parse one domain's records at @r. */
static int parse_domain(struct state *st, struct reader *r, uint32_t i)
{
	struct state_pdomain *pd = &st->pd[i];
	const struct state_domain_rec *rec = &pd->d;
	char what[96];
	int e;

	pd->rec = rec;
	if (!get_rec(r, &kind_domain, &pd->d))
		return refuse(st, -EBADMSG, "dirtyd-meta: the version "
			      "(%zu bytes) ends inside its domain record "
			      "%u of %u, or it is not one", r->len, i + 1,
			      st->head->ndomains);
	if (!rec->id || rec->id >= st->head->next_domain_id)
		return refuse(st, -EBADMSG, "dirtyd-meta: domain record %u "
			      "has id %u (the next id is %u)", i + 1, rec->id,
			      st->head->next_domain_id);
	e = parse_context(st, r, pd);
	if (e < 0)
		return e;
	if (!name_ok(rec->guest) || !name_ok(rec->intent.device) ||
	    rec->intent.op > STATE_OP_TRACK || rec->flags & ~(DREC_TRACKING |
	    DREC_ENABLED | DREC_HUGE | DREC_KEPT))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's record "
			      "is malformed (a name, its flags or its "
			      "intent)", rec->id);
	/* the IOAS's IOVA alignment: the mock IOMMU's is 2 KiB */
	if (!pow2_in(rec->page_size, 512, 1ULL << 30) ||
	    !pow2_in(rec->max_leaf, rec->page_size, 1ULL << 30))
		return refuse(st, -EBADMSG, "dirtyd-meta: domain %u has page "
			      "size %llu and largest leaf %llu", rec->id,
			      ull(rec->page_size), ull(rec->max_leaf));
	e = parse_ranges(st, r, pd);
	if (e < 0)
		return e;
	snprintf(what, sizeof(what), "domain %u's counters", rec->id);
	e = region_check(st, what, rec->counters_off, DOMAIN_COUNTERS_WORDS);
	if (e < 0)
		return e;
	snprintf(what, sizeof(what), "domain %u's round bitmap", rec->id);
	return region_check(st, what, rec->round_off, rec->round_words);
}

/* Parse one subscription's record at @r. */

static int parse_sub(struct state *st, struct reader *r, uint32_t i)
{
	struct state_psub *ps = &st->ps[i];
	const struct state_sub_rec *rec = &ps->s;
	const struct state_pdomain *pd = NULL;
	char what[96];
	int e;

	ps->rec = rec;
	if (!get_rec(r, &kind_sub, &ps->s))
		return refuse(st, -EBADMSG, "dirtyd-meta: the version "
			      "(%zu bytes) ends inside its subscription "
			      "record %u of %u, or it is not one", r->len,
			      i + 1, st->head->nsubs);
	for (uint32_t k = 0; k < st->head->ndomains && !pd; k++)
		if (st->pd[k].rec->id == rec->domain_id)
			pd = &st->pd[k];
	if (!rec->token || rec->clean > 1 || !pd)
		return refuse(st, -EBADMSG, "dirtyd-meta: subscription %u "
			      "(domain %u) is malformed (no token, or a "
			      "domain the version does not hold)", i + 1,
			      rec->domain_id);
	ps->pd = pd;
	if (rec->nwords != pd->rec->layout_words)
		return refuse(st, -EBADMSG, "dirtyd-meta: subscription %u's "
			      "bitmaps are %llu words, domain %u's layout is "
			      "%llu", i + 1, ull(rec->nwords), rec->domain_id,
			      ull(pd->rec->layout_words));
	snprintf(what, sizeof(what), "subscription %u (domain %u)'s pending "
		 "bitmap", i + 1, rec->domain_id);
	e = region_check(st, what, rec->pending_off, rec->nwords);
	if (e < 0)
		return e;
	snprintf(what, sizeof(what), "subscription %u (domain %u)'s flight "
		 "bitmap", i + 1, rec->domain_id);
	return region_check(st, what, rec->flight_off, rec->nwords);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_psub(const void *a, const void *b)
{
	const struct state_psub *const *pa = a, *const *pb = b;
	const struct state_sub_rec *x = (*pa)->rec, *y = (*pb)->rec;

	if (x->token != y->token)
		return (x->token > y->token) - (x->token < y->token);
	return (x->domain_id > y->domain_id) - (x->domain_id < y->domain_id);
}

/*
 * Domain ids unique; a token one uid's, subscribed once per domain; each
 * session's deadline the earliest of its subscriptions'.
 */
static int check_unique(struct state *st)
{
	const struct state_head *h = st->head;
	struct state_psub **by = NULL;
	uint32_t *ids;
	int r = 0;

	ids = calloc((size_t)h->ndomains + 1, sizeof(*ids));
	by = calloc((size_t)h->nsubs + 1, sizeof(*by));
	if (!ids || !by) {
		r = refuse(st, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < h->ndomains; i++)
		ids[i] = st->pd[i].rec->id;
	qsort(ids, h->ndomains, sizeof(*ids), cmp_u32);
	for (uint32_t i = 1; i < h->ndomains && !r; i++)
		if (ids[i] == ids[i - 1])
			r = refuse(st, -EBADMSG, "dirtyd-meta: two domains "
				   "have id %u", ids[i]);
	for (uint32_t i = 0; i < h->nsubs; i++)
		by[i] = &st->ps[i];
	qsort(by, h->nsubs, sizeof(*by), cmp_psub);
	for (uint32_t i = 0, first = 0; i < h->nsubs && !r; i++) {
		const struct state_sub_rec *a = by[first]->rec, *b = by[i]->rec;

		if (i && b->token != a->token)
			first = i;
		else if (i && (b->uid != a->uid ||
			       b->domain_id == by[i - 1]->rec->domain_id))
			r = refuse(st, -EBADMSG, "dirtyd-meta: a session is "
				   "kept twice for domain %u, or for two "
				   "uids", b->domain_id);
		by[i]->first = i == first;
		/* the deadline of the session: the earliest; 0 (connected)
		 * only if no subscription says it was closed */
		if (i == first ||
		    (b->deadline_ns && (!by[first]->deadline_ns ||
		     b->deadline_ns < by[first]->deadline_ns)))
			by[first]->deadline_ns = b->deadline_ns;
	}
	for (uint32_t i = 0, first = 0; i < h->nsubs && !r; i++) {
		if (by[i]->first)
			first = i;
		by[i]->deadline_ns = by[first]->deadline_ns;
	}
out:
	free(ids);
	free(by);
	return r;
}

/* The committed version, summed and copied (later commits write the
 * slots), at @r. */
static int version_open(struct state *st, struct reader *r)
{
	const struct state_super *sb = (const void *)st->meta;
	const uint8_t *at;
	uint64_t len;
	int slot;

	slot = committed_slot(sb);
	if (slot < 0)
		return refuse(st, -EBADMSG, "dirtyd-meta's superblock names "
			      "no committed version (its commit word matches "
			      "neither slot): it is damaged");
	len = sb->slot[slot].len;
	if (len > STATE_META_SLOT || len < STATE_HEAD_SIZE)
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "(seq %llu) says it is %llu bytes; a version is "
			      "%u to %llu", ull(sb->slot[slot].seq), ull(len),
			      STATE_HEAD_SIZE, ull(STATE_META_SLOT));
	at = st->meta + STATE_META_SUPER + slot * STATE_META_SLOT;
	if (state_sum(at, len) != sb->slot[slot].sum)
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "(seq %llu, %llu bytes) fails its checksum: it "
			      "is damaged", ull(sb->slot[slot].seq), ull(len));
	st->active = (uint32_t)slot;
	st->seq = sb->slot[slot].seq;
	st->version = malloc(len);
	if (!st->version)
		return refuse(st, -ENOMEM, "out of memory");
	memcpy(st->version, at, len);
	*r = (struct reader){ .p = st->version, .len = len };
	return 0;
}

/* The version's head at @r, checked; room for what it counts. */
static int parse_head(struct state *st, struct reader *r, uint32_t backend)
{
	const struct state_super *sb = (const void *)st->meta;
	const struct state_head *h = &st->h;

	decode(get(r, STATE_HEAD_SIZE), STATE_HEAD_SIZE, &kind_head, &st->h);
	st->head = h;
	/* each version says its format; the superblock, the newest */
	if (h->magic != STATE_MAGIC || h->format < STATE_FORMAT_OLDEST ||
	    h->format > sb->format || h->seq != st->seq)
		return refuse(st, -EBADMSG, "dirtyd-meta's committed version "
			      "is not a format %u to %u version of seq %llu "
			      "(it says format %u, seq %llu)",
			      STATE_FORMAT_OLDEST, sb->format, ull(st->seq),
			      h->format, ull(h->seq));
	r->format = h->format;
	if (h->backend != backend)
		return refuse(st, -EINVAL, "it was kept by a dirtyd on the %s "
			      "backend; this one runs the %s backend",
			      backend_kind_name(h->backend),
			      backend_kind_name(backend));
	if (h->ndomains > r->len / rec_min(r, &kind_domain) ||
	    h->nsubs > r->len / rec_min(r, &kind_sub) ||
	    !h->next_domain_id)
		return refuse(st, -EBADMSG, "dirtyd-meta: the head of its "
			      "committed version is malformed (%u domains, %u "
			      "subscriptions in %zu bytes)", h->ndomains,
			      h->nsubs, r->len);
	st->pd = calloc((size_t)h->ndomains + 1, sizeof(*st->pd));
	st->ps = calloc((size_t)h->nsubs + 1, sizeof(*st->ps));
	if (!st->pd || !st->ps)
		return refuse(st, -ENOMEM, "out of memory");
	return 0;
}

/* Every domain's and subscription's records at @r, to the version's end. */
static int parse_records(struct state *st, struct reader *r)
{
	int e;

	for (uint32_t i = 0; i < st->head->ndomains; i++) {
		e = parse_domain(st, r, i);
		if (e < 0)
			return e;
	}
	for (uint32_t i = 0; i < st->head->nsubs; i++) {
		e = parse_sub(st, r, i);
		if (e < 0)
			return e;
	}
	if (r->off != r->len)
		return refuse(st, -EBADMSG, "dirtyd-meta: its records end at "
			      "byte %zu of a %zu-byte version", r->off,
			      r->len);
	return 0;
}

/* Does every domain plan to the bitmaps its record names? */
static int check_plans(struct state *st)
{
	for (uint32_t i = 0; i < st->head->ndomains; i++) {
		const struct state_domain_rec *rec = st->pd[i].rec;
		int e = state_check_plan(&st->pd[i]);

		if (e == -ENOMEM)
			return refuse(st, e, "out of memory");
		if (e < 0)
			return refuse(st, -EBADMSG, "dirtyd-meta: domain %u's "
				      "%u mappings and %u retired ranges do "
				      "not plan to the %llu-word bitmaps it "
				      "names", rec->id, rec->nmaps,
				      rec->nretired, ull(rec->layout_words));
	}
	return 0;
}

/* Parse the committed version; st->why says what is wrong with it. */
int state_parse(struct state *st, uint32_t backend)
{
	struct reader r = { 0 };
	int e;

	e = version_open(st, &r);
	if (!e)
		e = parse_head(st, &r, backend);
	if (!e)
		e = parse_records(st, &r);
	if (!e)
		e = check_unique(st);
	if (!e)
		e = check_plans(st);
	return e;
}

/* What state_parse() made of the committed version: freed. */
void state_version_free(struct state *st)
{
	for (uint32_t i = 0; st->pd && st->head && i < st->head->ndomains;
	     i++) {
		free(st->pd[i].devs);
		free(st->pd[i].maps);
		free(st->pd[i].retired);
	}
	free(st->version);
	free(st->pd);
	free(st->ps);
	st->version = NULL;
	st->pd = NULL;
	st->ps = NULL;
	st->head = NULL;
}
