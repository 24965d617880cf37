// SPDX-License-Identifier: MIT
/*
 * The randomised fault test: the real dirtyd on the simulated host, the
 * test its only writer (DMA_WRITE), and an exact oracle for the invariant
 *
 *   every page a device wrote before a harvest round began is reported to
 *   every subscriber of that domain in that round, or in an earlier round
 *   that subscriber has not acknowledged,
 *
 * checked while faults are injected: clients disconnecting mid-stream,
 * disconnecting and resuming, never reading, never acknowledging,
 * acknowledging out of order; domains created and destroyed; mappings
 * changed while tracking; the daemon killed with SIGKILL and restarted.
 *
 * The oracle.  One counter, the tick, orders everything the test does (the
 * test is single threaded and waits for each reply, so an event with a
 * smaller tick happened before one with a larger tick, in the daemon too).
 *  - A write (DMA_WRITE, answered OK) at tick w records w for each page it
 *    wrote: wtick[page] = w, the last write.  A batch of writes (sent
 *    pipelined, nothing else in between) gets the tick after its last OK.
 *  - A client "copies" the pages of a generation when it acknowledges it:
 *    when ACK(g) is answered OK (or, for an ACK the client does not wait
 *    for, when it is sent), every page of g's RANGES stream gets
 *    rtick[page] = max(rtick, G), G being the tick at which the GET_RANGES
 *    of that stream was sent (the daemon took the generation after G: a
 *    copy made then holds every write that completed before G).  Pages
 *    received and not acknowledged count for nothing: the daemon owes
 *    them until they are acknowledged.
 *  - SYNC(D) sent at tick S: the daemon answers after a round that began
 *    after S.  A client that then drains D (GET_RANGES and ACK until a
 *    generation is empty; first RESEND, or ACK, what it holds) must have
 *    copied every page p with base < wtick[p] < S after its last write:
 *    rtick[p] > wtick[p].  Anything else is a lost page.
 *  - base is the tick the subscription began (pages written before a
 *    SUBSCRIBE are not owed to it), or the tick the client learned its
 *    state was lost (STATE_LOST in HELLO_REPLY, EV_STATE_LOST): it then
 *    takes every page as dirty, i.e. copies everything, and only then.
 *  - A subscription made without CLEAN owes every page mapped when it was
 *    made (an interval set, emptied by the acknowledged generations).
 *  - Every page a client is sent must lie in a range that was mapped in
 *    the domain at some time; a client without PROTO_FEAT_RANGES_RAW must
 *    never get a CHUNK_RAW chunk.  Reporting more than was written is
 *    allowed (a huge IO page reports its whole 2 MiB leaf): the oracle only
 *    looks for pages missing.
 *  - GET_RANGES answered by ERROR (PROTOCOL.md 6.11) is no failure by
 *    itself: every page it took is pending again, the client retries (3
 *    times per drain), and a generation it held may have been put back too
 *    (its ACK may then be ENOENT, and copies nothing).  The oracle decides:
 *    a page that never comes is lost.
 *
 * Clients and combinations.  NCLI = 16 clients, one for each combination
 * of what a session negotiates or does: client i has PROTO_FEAT_RANGES_RAW
 * if bit 0 of i is set, PROTO_FEAT_RESUME if bit 1, uses
 * PROTO_RANGES_RESEND if bit 2 (without, it acknowledges what it holds
 * before it asks again), PROTO_FEAT_EVENTS if bit 3.  CLEAN is per
 * subscription, so one client is two combinations: 32 in all, each counted
 * apart (pages checked by write pattern, pages lost, ERRORs).
 *
 * Each seed begins with the matrix: four domains, two "dense" (4 KiB
 * leaves, mappings of whole 32768-page chunk spans) and two "huge" (2 MiB
 * leaves), every client subscribed to all four (CLEAN to the first of each
 * pair, not to the second), so all 32 combinations share domains.  Every
 * write pattern is then written in turn (for "alternate", every other page
 * of a whole 32768-page span: the worst case of the RUNS form), SYNC, and
 * every client takes a generation, holds it (the RESUME ones disconnect and
 * resume every other time), drains and is checked.  Then the random rounds
 * with faults, until the seed's time is up (the matrix counts in it).
 *
 * Write patterns: sparse (1 to 16 pages, anywhere), clustered (short writes
 * within a window of 64 to 4096 pages), dense (a contiguous run, up to two
 * spans, cut into up to 8 writes), alternate (every 2nd or 3rd page of a
 * window or of a whole span: one DMA_WRITE each, pipelined), huge-leaf (one
 * page in each of up to 64 2 MiB leaves of a huge domain).
 *
 * At the end: a table, one row per combination: subscriptions, checks,
 * pages checked by the pattern of their last write, pages lost, GET_RANGES
 * answered ERROR.  The test fails if any page was lost, or if any
 * combination had no page checked for a pattern the matrix writes.
 *
 * Configuration (environment; the CTest entry sets a bounded run):
 *   FAULT_SEED=N        run this seed only (decimal or 0x hex); without it,
 *                       a fixed seed and one from the clock
 *   FAULT_SECONDS=N     time budget per seed, the matrix included
 *                       (default: FAULT_CTEST_SECONDS, which CTest sets to
 *                       DIRTYD_FAULT_SECONDS, else 30); the matrix always
 *                       runs whole
 *   FAULT_ROUNDS=N      stop a seed after N rounds (a failing round R of
 *                       seed N reproduces with FAULT_SEED=N FAULT_ROUNDS=R;
 *                       round 0 is the matrix)
 *   FAULT_KINDS=LIST    fault kinds, comma separated; "all" (the default),
 *                       "none", a kind, or -kind to remove one (a list
 *                       that starts with a kind has only the kinds named):
 *                       midstream, resume, noread, noack, ackorder,
 *                       domains, mappings, kill
 *   FAULT_FAILFAST=1    stop at the first lost page (default: count them
 *                       all, report, then fail)
 *   FAULT_LOG_LEVEL=L   the daemon's log level (default info)
 *   FAULT_KEEP_LOG=1    keep the daemon's log directory at the end
 *
 * What is not deterministic given the seed: the daemon's periodic rounds
 * (their timing decides in which generation a page travels, how many
 * EV_ROUND events come, and how many generations an out-of-order client
 * holds), how far a client that stops reading gets before the daemon
 * blocks, and where in its work a SIGKILL finds the daemon.  The faults,
 * their order, the writes and the checks are the same on every run.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/chunk.h"
#include "tests/fault/fault_daemon.h"
#include "tests/integration/itest.h"

#define PG 4096ULL
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define LEAF_PAGES (2 * MIB / PG)	/* fault_daemon.c: backing 2m */
#define SPAN ((uint64_t)CHUNK_MAX_PAGES)	/* a chunk's span, pages */

#define NDEV 8			/* sim0 .. sim7: one domain each at most */
#define NSLOT 12		/* mapping slots of a domain, 1 GiB each */
#define SLOT_IOVA(i) ((4 + (uint64_t)(i)) * GIB)
/*
 * The "many" domain: NMANY small mappings, 1 to 4 pages each, 2 MiB apart.
 * A chunk never crosses a mapping, so with every page pending (a
 * subscription without CLEAN, a resume) its stream needs more than one
 * packet: the only way to cut a stream in the middle, cheaply.
 */
#define MANY_IOVA (1ULL << 40)
#define NMANY 3900
#define MANY_AT(i) (MANY_IOVA + (uint64_t)(i) * 2 * MIB)
#define MANY_LEN(i) ((1 + (uint64_t)(i) % 4) * PG)
/*
 * A "dense" domain (4 KiB leaves) has two zones, always at the same place
 * (so the pages it can be written stay bounded): zone 0 two whole spans at
 * a span boundary, zone 1 starting 777 pages into a span (its first chunk
 * starts at the mapping's start), then a whole span and 5000 pages.
 */
#define NZONE 2
static const uint64_t zone_page[NZONE] = {
	SLOT_IOVA(0) / PG, SLOT_IOVA(1) / PG + 777,
};
static const uint64_t zone_pages[NZONE] = { 2 * SPAN, 2 * SPAN - 777 + 5000 };
#define MAXREC 24		/* unacknowledged generations a client holds */
#define MAXOUT 200		/* requests a non-reader leaves unread */
#define WAIT_MS 30000
#define WINDOW 64		/* DMA_WRITEs in flight in a batch */
#define GET_RETRIES 3		/* GET_RANGES answered ERROR, per drain */

/* ------------------------------------------------------------ config */

enum kind {
	K_MIDSTREAM,
	K_RESUME,
	K_NOREAD,
	K_NOACK,
	K_ACKORDER,
	K_DOMAINS,
	K_MAPPINGS,
	K_KILL,
	NKIND
};

static const char *const kind_name[NKIND] = {
	"midstream", "resume", "noread", "noack", "ackorder", "domains",
	"mappings", "kill",
};

static bool on[NKIND];
static bool failfast;

/* ------------------------------------------------------------ combinations */

#define NCLI 16			/* one client per session combination */
#define CLI_RAW(i) (((i) >> 0) & 1)
#define CLI_RESUME(i) (((i) >> 1) & 1)
#define CLI_RESEND(i) (((i) >> 2) & 1)
#define CLI_EVENTS(i) (((i) >> 3) & 1)

/* The table's rows: raw, clean, resume, resend, events, most significant
 * first. */
#define NCOMBO 32
#define COMBO(raw, clean, resume, resend, events)			\
	((raw) << 4 | (clean) << 3 | (resume) << 2 | (resend) << 1 | (events))

static const char *combo_name(int c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %s %s %s %s", c & 16 ? "RAW" : "noRAW",
		 c & 8 ? "CLEAN" : "noCLEAN", c & 4 ? "RESUME" : "noRESUME",
		 c & 2 ? "RESEND" : "noRESEND", c & 1 ? "EVENTS" : "noEVENTS");
	return buf;
}

/* ------------------------------------------------------------ patterns */

enum pat { P_SPARSE, P_CLUSTER, P_DENSE, P_ALT, P_LEAF, NPAT };
static const char *const pat_name[NPAT] = {
	"sparse", "clustered", "dense", "alternate", "huge-leaf",
};

/* ------------------------------------------------------------ rng */

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct rng R;		/* every decision that shapes the run */

static uint64_t rnd(uint64_t n)
{
	return n ? rng_next(&R) % n : 0;
}

static bool chance(unsigned int pct)
{
	return rnd(100) < pct;
}

/* ------------------------------------------------------------ stats */

/* Per combination (all uint64_t: stats_add() adds them as an array). */
struct combo_stats {
	uint64_t subs, checks;
	uint64_t checked[NPAT];		/* by the pattern of the last write */
	uint64_t lost[NPAT];
	uint64_t lost_owed;		/* mapped at a SUBSCRIBE, never sent */
	uint64_t get_errors;		/* GET_RANGES answered ERROR */
	uint64_t gave_up;		/* drains left after GET_RETRIES */
	uint64_t void_acks;		/* ACK ENOENT of a generation put back */
	uint64_t streams, pages_received, ev_round;
};

static struct stats {
	uint64_t rounds, steps;
	uint64_t faults[NKIND];
	uint64_t midstream_cut;		/* stream left with packets unread */
	uint64_t unread_requests;	/* requests a non-reader left */
	uint64_t out_of_order_acks, bogus_acks;
	uint64_t checks, pages_checked, owed_checked;
	uint64_t lost;
	uint64_t state_lost_hello, state_lost_ev, resumed;
	uint64_t writes, pages_written, syncs;
	uint64_t streams, packets, multi_packet, pages_received;
	uint64_t ev_round;
	uint64_t created, destroyed, maps, unmaps;
	uint64_t adopt_failed;
	uint64_t pat_batches[NPAT], pat_writes[NPAT], pat_pages[NPAT];
	uint64_t full_spans;		/* alternate over a whole span */
	uint64_t leaf_extra;		/* huge domains: pages received that
					 * were never written (whole leaves) */
	uint64_t raw_chunks, runs_chunks;
	uint64_t get_errors, gave_up, void_acks;
	uint64_t matrix_steps, resubscribed;
	struct combo_stats combo[NCOMBO];
} st, all_seeds;

/* ------------------------------------------------------------ intervals */

/* Disjoint sorted [first, end) page intervals. */
struct ivset {
	uint64_t *a;		/* a[2i], a[2i + 1] */
	size_t n, cap;
};

static void iv_free(struct ivset *s)
{
	free(s->a);
	*s = (struct ivset){ 0 };
}

static void iv_push(struct ivset *s, uint64_t f, uint64_t e)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->a = realloc(s->a, 2 * s->cap * sizeof(*s->a));
		cr_assert_not_null(s->a);
	}
	s->a[2 * s->n] = f;
	s->a[2 * s->n + 1] = e;
	s->n++;
}

/* Union with [f, e). */
static void iv_add(struct ivset *s, uint64_t f, uint64_t e)
{
	struct ivset t = { 0 };
	bool done = false;

	if (!s->n || s->a[2 * s->n - 1] < f) {
		iv_push(s, f, e);
		return;
	}

	for (size_t i = 0; i < s->n; i++) {
		uint64_t a = s->a[2 * i], b = s->a[2 * i + 1];

		if (b < f) {
			iv_push(&t, a, b);
		} else if (a > e) {
			if (!done)
				iv_push(&t, f, e);
			done = true;
			iv_push(&t, a, b);
		} else {
			f = a < f ? a : f;
			e = b > e ? b : e;
		}
	}
	if (!done)
		iv_push(&t, f, e);
	iv_free(s);
	*s = t;
}

/* Remove every run of @r (sorted, disjoint): one merge. */
static void iv_sub_runs(struct ivset *s, const struct itest_runs *r)
{
	struct ivset t = { 0 };
	size_t j = 0;

	for (size_t i = 0; i < s->n; i++) {
		uint64_t a = s->a[2 * i], b = s->a[2 * i + 1];

		while (j < r->n && r->first[j] + r->count[j] <= a)
			j++;
		for (size_t k = j; k < r->n && r->first[k] < b; k++) {
			uint64_t f = r->first[k], e = f + r->count[k];

			if (f > a)
				iv_push(&t, a, f);
			if (e > a)
				a = e;
			if (a >= b)
				break;
		}
		if (a < b)
			iv_push(&t, a, b);
	}
	iv_free(s);
	*s = t;
}

static bool iv_covers(const struct ivset *s, uint64_t f, uint64_t e)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->a[2 * mid + 1] <= f)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n && s->a[2 * lo] <= f && e <= s->a[2 * lo + 1];
}

static uint64_t iv_pages(const struct ivset *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->a[2 * i + 1] - s->a[2 * i];
	return n;
}

/* ------------------------------------------------------------ domains */

enum dkind { DK_EXACT, DK_HUGE, DK_MANY, DK_DENSE };
static const char *const dkind_name[] = { "exact", "huge", "many", "dense" };

struct dom {
	bool live;
	uint32_t id;
	uint32_t serial;	/* the test's, never reused */
	enum dkind kind;
	uint64_t slot[NSLOT][2];	/* iova, length; length 0: unmapped */
	bool many;		/* the NMANY mappings are there */
	struct ivset ever;	/* pages mapped at some time */
	/* the pages written, their last write's tick and pattern */
	uint64_t *page, *wtick;
	uint8_t *wpat;
	size_t n, cap;
	uint64_t *hkey;		/* page + 1, 0 empty */
	uint32_t *hval;
	size_t hcap;
	uint32_t *sorted;	/* indices by page */
	size_t nsorted;
	uint64_t sync_tick;	/* the last answered SYNC was sent then */
};

static struct dom doms[NDEV];
static uint32_t serials;

static bool small_leaves(const struct dom *d)
{
	return d->kind == DK_EXACT || d->kind == DK_DENSE;
}

static void dom_free(struct dom *d)
{
	iv_free(&d->ever);
	free(d->page);
	free(d->wtick);
	free(d->wpat);
	free(d->hkey);
	free(d->hval);
	free(d->sorted);
	*d = (struct dom){ 0 };
}

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 33);
}

static void dom_rehash(struct dom *d)
{
	size_t cap = d->hcap ? 2 * d->hcap : 1024;

	free(d->hkey);
	free(d->hval);
	d->hkey = calloc(cap, sizeof(*d->hkey));
	d->hval = calloc(cap, sizeof(*d->hval));
	cr_assert(d->hkey && d->hval);
	d->hcap = cap;
	for (size_t i = 0; i < d->n; i++) {
		size_t h = hash64(d->page[i]) & (cap - 1);

		while (d->hkey[h])
			h = (h + 1) & (cap - 1);
		d->hkey[h] = d->page[i] + 1;
		d->hval[h] = (uint32_t)i;
	}
}

/* Page @page written at tick @t, in pattern @p. */
static void dom_written(struct dom *d, uint64_t page, uint64_t t, enum pat p)
{
	size_t h;

	if (2 * (d->n + 1) > d->hcap)
		dom_rehash(d);
	h = hash64(page) & (d->hcap - 1);
	for (; d->hkey[h]; h = (h + 1) & (d->hcap - 1))
		if (d->hkey[h] == page + 1) {
			d->wtick[d->hval[h]] = t;
			d->wpat[d->hval[h]] = (uint8_t)p;
			return;
		}
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 1024;
		d->page = realloc(d->page, d->cap * sizeof(*d->page));
		d->wtick = realloc(d->wtick, d->cap * sizeof(*d->wtick));
		d->wpat = realloc(d->wpat, d->cap * sizeof(*d->wpat));
		cr_assert(d->page && d->wtick && d->wpat);
	}
	d->hkey[h] = page + 1;
	d->hval[h] = (uint32_t)d->n;
	d->page[d->n] = page;
	d->wpat[d->n] = (uint8_t)p;
	d->wtick[d->n++] = t;
}

static struct dom *sort_dom;

static int cmp_idx(const void *a, const void *b)
{
	uint64_t x = sort_dom->page[*(const uint32_t *)a];
	uint64_t y = sort_dom->page[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

static void dom_sort(struct dom *d)
{
	if (d->nsorted == d->n)
		return;
	d->sorted = realloc(d->sorted, d->cap * sizeof(*d->sorted));
	cr_assert_not_null(d->sorted);
	for (size_t i = 0; i < d->n; i++)
		d->sorted[i] = (uint32_t)i;
	sort_dom = d;
	qsort(d->sorted, d->n, sizeof(*d->sorted), cmp_idx);
	d->nsorted = d->n;
}

/* First position in d->sorted whose page is >= @page. */
static size_t dom_lower(const struct dom *d, uint64_t page)
{
	size_t lo = 0, hi = d->nsorted;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->page[d->sorted[mid]] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Every range mapped now, as pages. */
static void dom_mapped(const struct dom *d, struct ivset *out)
{
	for (int i = 0; i < NSLOT; i++)
		if (d->slot[i][1])
			iv_add(out, d->slot[i][0] / PG,
			       (d->slot[i][0] + d->slot[i][1]) / PG);
	if (d->many)
		for (int i = 0; i < NMANY; i++)
			iv_add(out, MANY_AT(i) / PG,
			       (MANY_AT(i) + MANY_LEN(i)) / PG);
}

/* ------------------------------------------------------------ clients */

/* A generation received and not acknowledged yet. */
struct rec {
	uint64_t gen;
	uint64_t tick;		/* its GET_RANGES was sent then */
	bool doubt;		/* a GET_RANGES failed since: it may have
				 * been put back into pending */
	struct itest_runs runs;
};

/* A client's account of one domain. */
struct acct {
	bool sub;
	bool clean;		/* subscribed with PROTO_SUBSCRIBE_CLEAN */
	uint32_t serial;	/* of the domain it is of */
	uint64_t base;
	uint64_t *rtick;	/* by the domain's written-page index */
	size_t cap;
	struct ivset owed;	/* mapped at a SUBSCRIBE without CLEAN */
	struct rec rec[MAXREC];
	int nrec;
};

enum mode { M_NORMAL, M_NOACK, M_ACKORDER, M_NOREAD, M_MIDSTREAM, M_RESUME };
static const char *const mode_name[] = {
	"normal", "noack", "ackorder", "noread", "midstream", "resume",
};

/* A request a non-reader sent and has not read the answer of. */
struct out {
	uint64_t id;
	uint16_t type;
	int di;
	uint32_t dom_id;
	uint32_t serial;
	uint64_t tick;
	bool done;
	int err;
	uint32_t seq;
	uint64_t gen, total, end;
	struct itest_runs runs;
};

struct cli {
	struct itest_client c;
	int idx;
	bool conn;
	uint64_t features;
	bool resend;		/* uses PROTO_RANGES_RESEND */
	uint64_t token;
	bool parked;		/* left with subscriptions: may resume */
	bool state_gone;	/* the daemon restarted without its state */
	enum mode mode;
	int left;		/* rounds the mode lasts */
	bool asleep;		/* noread: requests sent, nothing read */
	struct out out[MAXOUT];
	int nout;
	struct acct a[NDEV];
	/* without RESUME: the subscriptions a closed connection dropped,
	 * made again when it connects (serial 0: none) */
	uint32_t had[NDEV];
	bool had_clean[NDEV];
};

static struct cli cl[NCLI];
static struct itest_client ctl;		/* the administrator and writer */
static struct fault_daemon fd;
static uint64_t now_tick;
static uint64_t seed_now;
static bool plain_restart;
static bool in_matrix;
static uint64_t loss_round;		/* first round of this seed with a
					 * page lost, + 1 */
static unsigned int lost_lines, error_lines;

static bool tracing;

/* FAULT_TRACE=1: what the test does, on stderr, to follow a failure. */
#define trace(...)							\
	do {								\
		if (tracing)						\
			fprintf(stderr, "fault: trace: " __VA_ARGS__);	\
	} while (0)

static uint64_t tick(void)
{
	return ++now_tick;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* The combination of @k's subscription @a. */
static int combo_of(const struct cli *k, const struct acct *a)
{
	return COMBO(CLI_RAW(k->idx), a->clean ? 1 : 0, CLI_RESUME(k->idx),
		     CLI_RESEND(k->idx), CLI_EVENTS(k->idx));
}

static const char *cli_name(const struct cli *k, const struct acct *a)
{
	static char buf[4][96];
	static int n;
	char *b = buf[n++ % 4];

	return combo_name(combo_of(k, a), b, sizeof(buf[0]));
}

/* ------------------------------------------------------------ failing */

static void print_stats(const char *what, const struct stats *s);

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fault_daemon_dump_log(&fd, 80);
	fprintf(stderr, "fault: FAILED at round %" PRIu64 "%s of seed %" PRIu64
		" (0x%" PRIx64 "): %s\nfault: reproduce with FAULT_SEED=%"
		PRIu64 " FAULT_ROUNDS=%" PRIu64 "\n", st.rounds + !in_matrix,
		in_matrix ? " (the matrix)" : "", seed_now, seed_now, msg,
		seed_now, st.rounds + 1);
	print_stats("this seed", &st);
	cr_assert_fail("%s (seed %" PRIu64 ")", msg, seed_now);
}

/* Pages were lost: stop (FAULT_FAILFAST) or note where, and go on. */
static void lost_pages(uint64_t n, const struct cli *k, const struct dom *d)
{
	if (failfast)
		fail("%" PRIu64 " pages lost for client %d, domain %u", n,
		     k->idx, d->id);
	if (loss_round)
		return;
	loss_round = st.rounds + 1;
	fault_daemon_dump_log(&fd, 40);
	fprintf(stderr, "fault: pages LOST first at round %" PRIu64 "%s of "
		"seed %" PRIu64 ": reproduce with FAULT_SEED=%" PRIu64
		" FAULT_ROUNDS=%" PRIu64 " (FAULT_FAILFAST=1 stops there); "
		"going on to count them all\n", st.rounds + !in_matrix,
		in_matrix ? " (the matrix)" : "", seed_now, seed_now,
		st.rounds + 1);
}

/* ------------------------------------------------------------ accounts */

static void rec_clear(struct acct *a)
{
	for (int i = 0; i < a->nrec; i++)
		itest_runs_free(&a->rec[i].runs);
	a->nrec = 0;
}

static void acct_drop(struct acct *a)
{
	rec_clear(a);
	iv_free(&a->owed);
	free(a->rtick);
	*a = (struct acct){ 0 };
}

/* The client takes every page as dirty, now. */
static void acct_lost(struct acct *a)
{
	a->base = tick();
	iv_free(&a->owed);
	rec_clear(a);
}

static void acct_grow(const struct dom *d, struct acct *a)
{
	if (a->cap < d->n) {
		size_t cap = d->cap;

		a->rtick = realloc(a->rtick, cap * sizeof(*a->rtick));
		cr_assert_not_null(a->rtick);
		memset(a->rtick + a->cap, 0, (cap - a->cap) * sizeof(*a->rtick));
		a->cap = cap;
	}
}

/* Copied: the pages of @runs, from a GET_RANGES sent at @t. */
static void acct_credit(struct dom *d, struct acct *a,
			const struct itest_runs *runs, uint64_t t)
{
	uint64_t written = 0;

	acct_grow(d, a);
	dom_sort(d);
	for (size_t i = 0; i < runs->n; i++) {
		uint64_t f = runs->first[i], e = f + runs->count[i];

		for (size_t k = dom_lower(d, f);
		     k < d->nsorted && d->page[d->sorted[k]] < e; k++) {
			uint32_t x = d->sorted[k];

			if (a->rtick[x] < t)
				a->rtick[x] = t;
			written++;
		}
	}
	/* the rest of a huge domain's CLEAN stream: whole leaves */
	if (d->kind == DK_HUGE && a->clean && !a->owed.n)
		st.leaf_extra += runs->pages - written;
	if (a->owed.n)
		iv_sub_runs(&a->owed, runs);
}

/* ------------------------------------------------------------ I/O */

static void cli_dead(struct cli *k, const char *what, int e)
{
	int status;

	if (fault_daemon_exited(&fd, &status))
		fail("dirtyd died (wait status %#x) while client %d %s",
		     status, k->idx, what);
	fail("client %d %s: %s", k->idx, what, strerror(-e));
}

/* @k's live subscription to the domain of id @dom_id; -1 if none. */
static int sub_of_id(const struct cli *k, uint32_t dom_id)
{
	for (int i = 0; i < NDEV; i++)
		if (doms[i].live && doms[i].id == dom_id && k->a[i].sub &&
		    k->a[i].serial == doms[i].serial)
			return i;
	return -1;
}

static void state_lost_event(struct cli *k, uint32_t dom_id)
{
	int i = sub_of_id(k, dom_id);

	if (i >= 0) {
		acct_lost(&k->a[i]);
		st.state_lost_ev++;
	}
}

/* The next packet that is not an event. */
static int cli_recv(struct cli *k, struct proto_msg *m)
{
	uint64_t end = mono_ms() + WAIT_MS;

	for (;;) {
		int left = (int)(end - mono_ms());
		int e, i;

		if (left <= 0)
			fail("client %d: no packet from dirtyd within %d ms",
			     k->idx, WAIT_MS);
		e = itest_recv(&k->c, m, left);
		if (e == -ETIMEDOUT)
			continue;
		if (e == -ECONNRESET)
			return e;
		if (e)
			fail("client %d: dirtyd sent a packet that does not "
			     "decode (%s)", k->idx, strerror(-e));
		if (m->type == PROTO_EV_ROUND) {
			if (!(k->features & PROTO_FEAT_EVENTS))
				fail("client %d: EV_ROUND without "
				     "PROTO_FEAT_EVENTS", k->idx);
			st.ev_round++;
			i = sub_of_id(k, m->ev_round.domain_id);
			if (i >= 0)
				st.combo[combo_of(k, &k->a[i])].ev_round++;
			continue;
		}
		if (m->type == PROTO_EV_STATE_LOST) {
			state_lost_event(k, m->domain_op.domain_id);
			continue;
		}
		return 0;
	}
}

/* The answer to @id: 0, or -errno of its ERROR. */
static int cli_wait(struct cli *k, uint64_t id, struct proto_msg *m)
{
	int e = cli_recv(k, m);

	if (e)
		cli_dead(k, "waiting for a reply", e);
	if (m->id != id)
		fail("client %d: got %s for request %" PRIu64 " while waiting "
		     "for %" PRIu64, k->idx, proto_type_name(m->type), m->id,
		     id);
	if (m->type == PROTO_ERROR) {
		snprintf(k->c.text, sizeof(k->c.text), "%.*s",
			 (int)m->error.text_len, m->error.text);
		return -(int)m->error.err;
	}
	return 0;
}

static int cli_call(struct cli *k, struct proto_msg *req, struct proto_msg *r)
{
	itest_send(&k->c, req);
	return cli_wait(k, req->id, r);
}

/* Send without blocking (a non-reader's); false when the socket is full. */
static bool cli_send_nb(struct cli *k, struct proto_msg *m)
{
	uint8_t buf[256];
	int n;

	m->id = k->c.next_id++;
	n = proto_encode(m, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	if (send(k->c.fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		cr_assert(errno == EAGAIN || errno == EWOULDBLOCK,
			  "send: %s", strerror(errno));
		return false;
	}
	return true;
}

struct runs_ctx {
	struct itest_runs *out;
};

static int runs_add(void *ctx, uint64_t first, uint64_t count)
{
	itest_runs_add(((struct runs_ctx *)ctx)->out, first, count);
	return 0;
}

/*
 * One RANGES packet of a stream: checked (seq, generation, total, chunks in
 * order within and across packets, every page within a range ever mapped,
 * no CHUNK_RAW for a client without PROTO_FEAT_RANGES_RAW) and its pages
 * added to @out.  *@end is the first page after the previous chunk.
 */
static void ranges_packet(struct cli *k, const struct proto_msg *m,
			  const struct dom *d, uint32_t seq, uint64_t *gen,
			  uint64_t *total, uint64_t *end, struct itest_runs *out)
{
	struct runs_ctx rc = { .out = out };
	const uint8_t *p = m->ranges.chunks;
	size_t left = m->ranges.chunks_len;
	size_t n0 = out->n;

	if (m->type != PROTO_RANGES)
		fail("client %d: %s in a RANGES stream", k->idx,
		     proto_type_name(m->type));
	if (m->ranges.seq != seq)
		fail("client %d: RANGES packet %u has seq %u", k->idx, seq,
		     m->ranges.seq);
	if (m->ranges.domain_id != d->id)
		fail("client %d: RANGES of domain %u for domain %u", k->idx,
		     m->ranges.domain_id, d->id);
	if (seq && (m->ranges.generation != *gen ||
		    m->ranges.total_pages != *total))
		fail("client %d: generation or total changed within a stream",
		     k->idx);
	*gen = m->ranges.generation;
	*total = m->ranges.total_pages;
	for (uint32_t i = 0; i < m->ranges.nchunks; i++) {
		uint64_t first;
		uint32_t span;
		int n;

		n = chunk_decode(p, left, runs_add, &rc);
		if (n <= 0)
			fail("client %d: chunk %u does not decode", k->idx, i);
		chunk_peek(p, &first, &span);
		if (first < *end)
			fail("client %d: chunks out of order (%#" PRIx64
			     " after %#" PRIx64 ")", k->idx, first, *end);
		if (p[12] == CHUNK_RAW) {
			if (!(k->features & PROTO_FEAT_RANGES_RAW))
				fail("client %d (no RANGES_RAW): a CHUNK_RAW "
				     "chunk at page %#" PRIx64, k->idx, first);
			st.raw_chunks++;
		} else {
			st.runs_chunks++;
		}
		*end = first + span;
		p += n;
		left -= (size_t)n;
	}
	if (left)
		fail("client %d: %zu bytes after the last chunk", k->idx, left);
	for (size_t i = n0; i < out->n; i++)
		if (!iv_covers(&d->ever, out->first[i],
			       out->first[i] + out->count[i]))
			fail("client %d: domain %u (%s) reported pages %#"
			     PRIx64 "+%" PRIu64 " outside every range it ever "
			     "mapped", k->idx, d->id, dkind_name[d->kind],
			     out->first[i], out->count[i]);
	st.packets++;
}

/*
 * The stream answering GET_RANGES @id: at most @maxpk packets (0: all).
 * 1 when complete, 0 when stopped early, -errno for an ERROR (which may
 * come after packets: the stream is dropped).
 */
static int cli_stream(struct cli *k, uint64_t id, const struct dom *d,
		      unsigned int maxpk, struct itest_runs *out,
		      uint64_t *gen, uint64_t *total)
{
	uint64_t end = 0;
	struct proto_msg m;

	itest_runs_free(out);
	for (uint32_t seq = 0;; seq++) {
		int e;

		if (maxpk && seq == maxpk)
			return 0;
		e = cli_wait(k, id, &m);
		if (e)
			return e;
		ranges_packet(k, &m, d, seq, gen, total, &end, out);
		if (!(m.flags & PROTO_F_MORE)) {
			if (out->pages != *total)
				fail("client %d (%s): domain %u (%s) generation "
				     "%" PRIu64 ": total_pages %" PRIu64 " but "
				     "the chunks hold %" PRIu64, k->idx,
				     mode_name[k->mode], d->id,
				     dkind_name[d->kind], *gen, *total,
				     out->pages);
			st.streams++;
			st.multi_packet += seq > 0;
			st.pages_received += *total;
			return 1;
		}
	}
}

/* ------------------------------------------------------------ requests */

static void ctl_ok(int e, const char *what)
{
	if (e)
		fail("administrator: %s: %s (%s)", what, strerror(-e),
		     ctl.text);
}

static void dom_sync(int di)
{
	struct dom *d = &doms[di];
	uint64_t t = tick();

	ctl_ok(itest_sync(&ctl, d->id, NULL), "SYNC");
	trace("SYNC domain %u at %" PRIu64 "\n", d->id, t);
	d->sync_tick = t;
	st.syncs++;
}

static bool ready(const struct cli *k)
{
	return k->conn && !k->asleep;
}

static bool subscribed(const struct cli *k, int di)
{
	return doms[di].live && k->a[di].sub &&
	       k->a[di].serial == doms[di].serial;
}

/* SUBSCRIBE @k to @di, with CLEAN if @clean (< 0: a coin decides). */
static void cli_subscribe(struct cli *k, int di, int clean)
{
	struct dom *d = &doms[di];
	struct acct *a = &k->a[di];
	bool c = clean < 0 ? chance(50) : clean;
	uint32_t ival = chance(50) ? 0 : 20 + (uint32_t)rnd(81);
	struct proto_msg m = {
		.type = PROTO_SUBSCRIBE,
		.subscribe = { .domain_id = d->id, .interval_ms = ival,
			       .flags = c ? PROTO_SUBSCRIBE_CLEAN : 0 },
	}, r;
	uint64_t leaf = small_leaves(d) ? PG : 2 * MIB;
	uint64_t t = tick();
	int e;

	acct_drop(a);
	e = cli_call(k, &m, &r);
	if (e)
		fail("client %d: SUBSCRIBE domain %u: %s (%s)", k->idx, d->id,
		     strerror(-e), k->c.text);
	if (r.type != PROTO_SUBSCRIBE_REPLY || r.subscribe_reply.page_size != PG)
		fail("client %d: SUBSCRIBE answered by %s, page size %" PRIu64,
		     k->idx, proto_type_name(r.type),
		     r.subscribe_reply.page_size);
	if (r.subscribe_reply.max_leaf != leaf)
		fail("client %d: domain %u (%s): max_leaf %#" PRIx64 ", not %#"
		     PRIx64, k->idx, d->id, dkind_name[d->kind],
		     r.subscribe_reply.max_leaf, leaf);
	trace("client %d SUBSCRIBE domain %u%s interval %u at %" PRIu64 "\n",
	      k->idx, d->id, c ? " CLEAN" : "", ival, t);
	a->sub = true;
	a->clean = c;
	a->serial = d->serial;
	a->base = t;
	if (!c)
		dom_mapped(d, &a->owed);
	st.combo[combo_of(k, a)].subs++;
}

static void cli_unsubscribe(struct cli *k, int di)
{
	struct proto_msg m = { .type = PROTO_UNSUBSCRIBE,
			       .domain_op = { doms[di].id } }, r;
	int e = cli_call(k, &m, &r);

	if (e)
		fail("client %d: UNSUBSCRIBE domain %u: %s", k->idx,
		     doms[di].id, strerror(-e));
	acct_drop(&k->a[di]);
}

/* A random domain the client is subscribed to; -1 if none.  The draw does
 * not depend on the daemon. */
static int cli_pick_sub(struct cli *k, bool prefer_big)
{
	int subs[NDEV], n = 0;
	uint64_t r = rnd(1 << 20);

	for (int i = 0; i < NDEV; i++)
		if (subscribed(k, i)) {
			if (prefer_big && doms[i].kind == DK_MANY)
				return i;
			subs[n++] = i;
		}
	return n ? subs[r % n] : -1;
}

/*
 * GET_RANGES of @di answered by ERROR @err (6.11): its pages are pending
 * again; a generation held may have gone back with them.
 */
static void get_error(struct cli *k, int di, int err)
{
	struct acct *a = &k->a[di];

	st.get_errors++;
	st.combo[combo_of(k, a)].get_errors++;
	if (error_lines++ < 6)
		fprintf(stderr, "fault: GET_RANGES answered ERROR %s (\"%s\"): "
			"client %d (%s) domain %u (%s); the pages are pending "
			"again: it retries\n", strerror(err), k->c.text,
			k->idx, cli_name(k, a), doms[di].id,
			dkind_name[doms[di].kind]);
	trace("client %d GET_RANGES domain %u: ERROR %s\n", k->idx,
	      doms[di].id, strerror(err));
	for (int i = 0; i < a->nrec; i++)
		a->rec[i].doubt = true;
}

/* GET_RANGES on @di: the generation's record (a repeat of the same
 * generation replaces it: it holds the earlier pages and more).  NULL when
 * stopped early (*@complete 0) or answered ERROR (*@complete -errno). */
static struct rec *cli_get(struct cli *k, int di, uint32_t flags,
			   unsigned int maxpk, int *complete)
{
	struct dom *d = &doms[di];
	struct acct *a = &k->a[di];
	struct proto_msg m = {
		.type = PROTO_GET_RANGES,
		.get_ranges = { .domain_id = d->id, .flags = flags },
	};
	struct itest_runs runs = { 0 };
	uint64_t gen = 0, total = 0, t;
	struct rec *rc = NULL;
	int e;

	if (flags & PROTO_RANGES_RESEND)
		rec_clear(a);	/* they come back, as one */
	t = tick();
	itest_send(&k->c, &m);
	e = cli_stream(k, m.id, d, maxpk, &runs, &gen, &total);
	*complete = e;
	if (e <= 0) {
		itest_runs_free(&runs);
		if (e < 0)
			get_error(k, di, -e);
		return NULL;
	}
	st.combo[combo_of(k, a)].streams++;
	st.combo[combo_of(k, a)].pages_received += total;
	for (int i = 0; i < a->nrec; i++)
		if (a->rec[i].gen == gen)
			rc = &a->rec[i];
	if (!rc) {
		if (a->nrec == MAXREC)
			fail("client %d: more than %d generations held",
			     k->idx, MAXREC);
		rc = &a->rec[a->nrec++];
	} else {
		itest_runs_free(&rc->runs);
	}
	*rc = (struct rec){ .gen = gen, .tick = t, .runs = runs };
	trace("client %d GET_RANGES domain %u%s at %" PRIu64 ": generation %"
	      PRIu64 ", %" PRIu64 " pages\n", k->idx, d->id,
	      flags ? " RESEND" : "", t, gen, total);
	return rc;
}

/* Copy and ACK record @i of @di; wait for OK unless @nowait (never for a
 * record in doubt: its ACK may be ENOENT, and then copies nothing). */
static void cli_ack(struct cli *k, int di, int i, bool nowait)
{
	struct acct *a = &k->a[di];
	struct rec rc = a->rec[i];
	struct proto_msg m = {
		.type = PROTO_ACK,
		.ack = { .domain_id = doms[di].id, .generation = rc.gen },
	}, r;
	int e;

	if (rc.doubt)
		nowait = false;
	trace("client %d ACK domain %u generation %" PRIu64 "%s%s\n", k->idx,
	      doms[di].id, rc.gen, nowait ? " (not waiting)" : "",
	      rc.doubt ? " (in doubt)" : "");
	a->rec[i] = a->rec[--a->nrec];
	itest_send(&k->c, &m);
	if (nowait) {
		acct_credit(&doms[di], a, &rc.runs, rc.tick);
		itest_runs_free(&rc.runs);
		return;
	}
	e = cli_wait(k, m.id, &r);
	if (!e) {
		acct_credit(&doms[di], a, &rc.runs, rc.tick);
	} else if (e == -ENOENT && rc.doubt) {
		st.void_acks++;
		st.combo[combo_of(k, a)].void_acks++;
	} else {
		fail("client %d: ACK generation %" PRIu64 " of domain %u: %s "
		     "(%s)", k->idx, rc.gen, doms[di].id, strerror(-e),
		     k->c.text);
	}
	itest_runs_free(&rc.runs);
}

/* What @k holds of @di: RESEND on the next GET_RANGES (the flag), or,
 * for a client that does not use RESEND, copied and acknowledged now. */
static uint32_t cli_settle(struct cli *k, int di)
{
	struct acct *a = &k->a[di];

	if (!a->nrec)
		return 0;
	if (k->resend)
		return PROTO_RANGES_RESEND;
	while (a->nrec)
		cli_ack(k, di, 0, false);
	return 0;
}

/* GET_RANGES and ACK until a generation is empty.  An ERROR is retried
 * (GET_RETRIES times); what never comes is for cli_check() to find. */
static void cli_drain(struct cli *k, int di)
{
	int errors = 0;

	for (int it = 0;; it++) {
		struct acct *a = &k->a[di];
		uint32_t flags = cli_settle(k, di);
		struct rec *rc;
		uint64_t pages;
		int complete;

		if (it - errors == 8)
			fail("client %d: domain %u still has pages pending "
			     "after 8 generations without writes", k->idx,
			     doms[di].id);
		rc = cli_get(k, di, flags, 0, &complete);
		if (!rc) {
			if (++errors <= GET_RETRIES)
				continue;
			st.gave_up++;
			st.combo[combo_of(k, a)].gave_up++;
			trace("client %d: domain %u: gave up after %d "
			      "ERRORs\n", k->idx, doms[di].id, errors);
			return;
		}
		pages = rc->runs.pages;
		cli_ack(k, di, (int)(rc - a->rec), false);
		if (!pages && !a->nrec)
			break;
	}
}

/* The invariant, for @k's subscription to @di, after a drain that began
 * after the SYNC sent at d->sync_tick was answered.  A page found lost is
 * counted once: it is then taken as copied at that SYNC. */
static void cli_check(struct cli *k, int di)
{
	struct dom *d = &doms[di];
	struct acct *a = &k->a[di];
	struct combo_stats *cs = &st.combo[combo_of(k, a)];
	uint64_t s = d->sync_tick, lost = 0;

	st.checks++;
	cs->checks++;
	acct_grow(d, a);
	for (size_t i = 0; i < d->n; i++) {
		uint64_t w = d->wtick[i];
		uint64_t r = a->rtick[i];

		if (w >= s || w <= a->base)
			continue;
		st.pages_checked++;
		cs->checked[d->wpat[i]]++;
		if (r > w)
			continue;
		lost++;
		cs->lost[d->wpat[i]]++;
		a->rtick[i] = s;
		if (lost_lines++ < 12)
			fprintf(stderr, "fault: LOST: client %d (%s; %s) domain "
				"%u (%s) page %#" PRIx64 " (iova %#" PRIx64 ", "
				"written %s) at tick %" PRIu64 ", last copied "
				"at %" PRIu64 ", account since %" PRIu64 ", SYNC "
				"at %" PRIu64 "\n", k->idx, cli_name(k, a),
				mode_name[k->mode], d->id, dkind_name[d->kind],
				d->page[i], (uint64_t)(d->page[i] * PG),
				pat_name[d->wpat[i]], w, r, a->base, s);
	}
	if (a->owed.n) {
		uint64_t n = iv_pages(&a->owed);

		if (lost_lines++ < 12)
			fprintf(stderr, "fault: LOST: client %d (%s) domain %u: "
				"%" PRIu64 " pages mapped at its SUBSCRIBE "
				"(without CLEAN) never came, first %#" PRIx64
				"\n", k->idx, cli_name(k, a), d->id, n,
				a->owed.a[0]);
		lost += n;
		cs->lost_owed += n;
		iv_free(&a->owed);
	}
	st.lost += lost;
	if (lost)
		lost_pages(lost, k, d);
}

/* ------------------------------------------------------------ sessions */

static void cli_connect(struct cli *k)
{
	bool resume = k->features & PROTO_FEAT_RESUME;
	struct proto_msg m = {
		.type = PROTO_HELLO,
		.hello = { .major = PROTO_VERSION_MAJOR,
			   .minor = PROTO_VERSION_MINOR,
			   .features = k->features,
			   .resume_token = k->token },
	}, r;
	bool expect_resume = k->token && k->parked && !k->state_gone;
	uint32_t flags;
	int e;

	e = itest_connect(&fd.m, &k->c);
	if (e)
		fail("client %d: connect: %s", k->idx, strerror(-e));
	k->conn = true;
	e = cli_call(k, &m, &r);
	if (e || r.type != PROTO_HELLO_REPLY)
		fail("client %d: HELLO: %s", k->idx, strerror(-e));
	flags = r.hello_reply.session_flags;
	if (resume && !r.hello_reply.session_token)
		fail("client %d: no session token", k->idx);
	if (!resume && (r.hello_reply.session_token || flags))
		fail("client %d: without PROTO_FEAT_RESUME, token %#" PRIx64
		     " and session flags %#x", k->idx,
		     r.hello_reply.session_token, flags);
	if (k->token && !(flags & (PROTO_SESSION_RESUMED |
				   PROTO_SESSION_STATE_LOST)))
		fail("client %d: resuming, neither RESUMED nor STATE_LOST",
		     k->idx);
	if (expect_resume && !(flags & PROTO_SESSION_RESUMED)) {
		if (!fault_daemon_adopt_failed(&fd))
			fail("client %d: STATE_LOST where its session should "
			     "have resumed", k->idx);
		expect_resume = false;
	}
	if (!expect_resume && (flags & PROTO_SESSION_RESUMED))
		fail("client %d: RESUMED where its state is gone", k->idx);
	trace("client %d connected, flags %#x\n", k->idx, flags);
	k->token = r.hello_reply.session_token;
	k->parked = false;
	k->state_gone = false;
	if (!resume) {
		/* its subscriptions went with the connection: again (a
		 * new subscription owes what it owes, from now on) */
		for (int i = 0; i < NDEV; i++) {
			if (k->had[i] && doms[i].live &&
			    doms[i].serial == k->had[i]) {
				cli_subscribe(k, i, k->had_clean[i]);
				st.resubscribed++;
			}
			k->had[i] = 0;
		}
		return;
	}
	if (flags & PROTO_SESSION_RESUMED) {
		/* in-flight generations are pending again */
		for (int i = 0; i < NDEV; i++)
			rec_clear(&k->a[i]);
		st.resumed++;
		return;
	}
	if (!(flags & PROTO_SESSION_STATE_LOST))
		return;
	st.state_lost_hello++;
	for (int i = 0; i < NDEV; i++) {
		bool again = subscribed(k, i);

		acct_drop(&k->a[i]);
		if (again)
			cli_subscribe(k, i, -1);
	}
}

static void cli_close(struct cli *k)
{
	bool subs = false;

	for (int i = 0; i < NDEV; i++)
		subs |= subscribed(k, i);
	itest_close(&k->c);
	k->conn = false;
	k->asleep = false;
	for (int i = 0; i < k->nout; i++)
		itest_runs_free(&k->out[i].runs);
	k->nout = 0;
	if (!(k->features & PROTO_FEAT_RESUME)) {
		/* no token: the daemon drops the subscriptions */
		for (int i = 0; i < NDEV; i++) {
			k->had[i] = subscribed(k, i) ? doms[i].serial : 0;
			k->had_clean[i] = k->a[i].clean;
			acct_drop(&k->a[i]);
		}
		k->parked = false;
		return;
	}
	/* the daemon keeps a session that had subscriptions */
	k->parked = subs;
	/* what it held unacknowledged goes back to pending */
	for (int i = 0; i < NDEV; i++)
		rec_clear(&k->a[i]);
}

/* ------------------------------------------------------------ faults */

/* noread: ask for ranges and a burst of STATS, then read nothing. */
static void noread_sleep(struct cli *k)
{
	int di = cli_pick_sub(k, true);
	unsigned int burst = 8 + (unsigned int)rnd(150);
	struct proto_msg m;

	k->nout = 0;
	if (di >= 0) {
		m = (struct proto_msg){
			.type = PROTO_GET_RANGES,
			.get_ranges = { .domain_id = doms[di].id },
		};
		k->out[0] = (struct out){ .type = m.type, .di = di,
					  .dom_id = doms[di].id,
					  .serial = doms[di].serial,
					  .tick = tick() };
		if (cli_send_nb(k, &m)) {
			k->out[0].id = m.id;
			k->nout = 1;
		}
	}
	for (unsigned int i = 0; i < burst && k->nout < MAXOUT; i++) {
		m = (struct proto_msg){ .type = PROTO_STATS };
		if (!cli_send_nb(k, &m))
			break;
		k->out[k->nout++] = (struct out){ .id = m.id, .type = m.type,
						  .di = -1 };
	}
	st.unread_requests += k->nout;
	k->asleep = true;
	st.faults[K_NOREAD]++;
}

/* noread: wake up and read every answer that waits. */
static void noread_wake(struct cli *k)
{
	int left = k->nout;

	k->asleep = false;
	while (left) {
		struct proto_msg m;
		struct out *o = NULL;
		int e = cli_recv(k, &m);

		if (e)
			cli_dead(k, "reading what it left unread", e);
		for (int i = 0; i < k->nout; i++)
			if (k->out[i].id == m.id && !k->out[i].done)
				o = &k->out[i];
		if (!o)
			fail("client %d: %s for request %" PRIu64 ", which "
			     "is not waiting", k->idx, proto_type_name(m.type),
			     m.id);
		if (m.type == PROTO_ERROR) {
			/* for a stream begun, its packets are dropped */
			o->err = (int)m.error.err;
			o->done = true;
			snprintf(k->c.text, sizeof(k->c.text), "%.*s",
				 (int)m.error.text_len, m.error.text);
		} else if (o->type == PROTO_STATS) {
			if (m.type != PROTO_STATS_REPLY)
				fail("client %d: STATS answered by %s", k->idx,
				     proto_type_name(m.type));
			o->done = !(m.flags & PROTO_F_MORE);
		} else if (!subscribed(k, o->di) ||
			   k->a[o->di].serial != o->serial) {
			/* its domain was destroyed: a stream that had
			 * begun completes, its pages are moot */
			if (m.type != PROTO_RANGES)
				fail("client %d: GET_RANGES answered by %s",
				     k->idx, proto_type_name(m.type));
			o->done = !(m.flags & PROTO_F_MORE);
		} else {
			struct dom *d = &doms[o->di];

			ranges_packet(k, &m, d, o->seq++, &o->gen, &o->total,
				      &o->end, &o->runs);
			o->done = !(m.flags & PROTO_F_MORE);
			if (o->done) {
				struct combo_stats *cs =
					&st.combo[combo_of(k, &k->a[o->di])];

				st.streams++;
				st.pages_received += o->total;
				st.multi_packet += o->seq > 1;
				cs->streams++;
				cs->pages_received += o->total;
			}
		}
		left -= o->done;
	}
	for (int i = 0; i < k->nout; i++) {
		struct out *o = &k->out[i];
		struct acct *a;

		if (o->type != PROTO_GET_RANGES) {
			if (o->err)
				fail("client %d: STATS: %s", k->idx,
				     strerror(o->err));
			continue;
		}
		if (o->err == ENOENT && !subscribed(k, o->di))
			continue;	/* its domain went away first */
		if (!subscribed(k, o->di) || k->a[o->di].serial != o->serial)
			continue;
		if (o->err) {
			/* pending again (6.11): a later drain gets them */
			get_error(k, o->di, o->err);
			continue;
		}
		a = &k->a[o->di];
		if (a->nrec == MAXREC)
			fail("client %d: too many generations", k->idx);
		a->rec[a->nrec++] = (struct rec){ .gen = o->gen,
						  .tick = o->tick,
						  .runs = o->runs };
		o->runs = (struct itest_runs){ 0 };
		/* half the time copied and acknowledged, else held (resent,
		 * or acknowledged, by the drain) */
		if (chance(50))
			cli_ack(k, o->di, a->nrec - 1, false);
	}
	for (int i = 0; i < k->nout; i++)
		itest_runs_free(&k->out[i].runs);
	k->nout = 0;
}

/* midstream: GET_RANGES, read 0 or 1 packet, maybe ACK, close. */
static void midstream(struct cli *k)
{
	int di = cli_pick_sub(k, chance(70));
	unsigned int maxpk = (unsigned int)rnd(2);
	bool ack = chance(30);
	int complete = 0;
	struct rec *rc;

	if (di < 0)
		return;
	if (!maxpk) {
		struct proto_msg m = {
			.type = PROTO_GET_RANGES,
			.get_ranges = { .domain_id = doms[di].id },
		};

		itest_send(&k->c, &m);
		st.midstream_cut++;
	} else {
		rc = cli_get(k, di, 0, maxpk, &complete);
		if (!complete)
			st.midstream_cut++;
		else if (rc && ack)
			/* sent, and gone before the answer */
			cli_ack(k, di, (int)(rc - k->a[di].rec), true);
	}
	cli_close(k);
	trace("client %d left in the middle of a stream\n", k->idx);
	st.faults[K_MIDSTREAM]++;
}

/* resume: leave now (maybe right after an ACK, unanswered). */
static void leave(struct cli *k)
{
	int di = cli_pick_sub(k, false);
	bool ack = chance(50);
	int complete;

	if (di >= 0 && ack) {
		struct rec *rc = cli_get(k, di, 0, 0, &complete);

		if (rc)
			cli_ack(k, di, (int)(rc - k->a[di].rec), true);
	}
	cli_close(k);
	trace("client %d left\n", k->idx);
	st.faults[K_RESUME]++;
}

static void ackorder(struct cli *k)
{
	struct rng shuffle = { .s = seed_now ^ (st.rounds << 8) ^
					(uint64_t)k->idx };

	for (int di = 0; di < NDEV; di++) {
		struct acct *a = &k->a[di];
		struct proto_msg m, r;

		if (!subscribed(k, di))
			continue;
		/* acknowledge in a random order: each swap-removes */
		while (a->nrec) {
			int i = (int)(rng_next(&shuffle) % (uint64_t)a->nrec);

			st.out_of_order_acks += a->nrec > 1;
			cli_ack(k, di, i, false);
		}
		/* and one that is not in flight */
		m = (struct proto_msg){
			.type = PROTO_ACK,
			.ack = { .domain_id = doms[di].id,
				 .generation = (1ULL << 62) + rnd(1000) },
		};
		if (cli_call(k, &m, &r) != -ENOENT)
			fail("client %d: ACK of a generation never sent was "
			     "not refused with ENOENT", k->idx);
		st.bogus_acks++;
	}
	st.faults[K_ACKORDER]++;
}

/* A client's move in the middle of a round. */
static void cli_step(struct cli *k)
{
	int di, complete;
	struct rec *rc;

	if (!k->conn) {
		if (chance(50))
			cli_connect(k);
		return;
	}
	if (k->asleep)
		return;
	switch (k->mode) {
	case M_NORMAL:
		di = cli_pick_sub(k, false);
		if (di >= 0 && chance(50)) {
			rc = cli_get(k, di, 0, 0, &complete);
			if (rc)
				cli_ack(k, di, (int)(rc - k->a[di].rec),
					false);
		}
		break;
	case M_NOACK:
	case M_ACKORDER:
		di = cli_pick_sub(k, false);
		if (di >= 0 && k->a[di].nrec < MAXREC - 1) {
			cli_get(k, di, 0, 0, &complete);
			if (k->mode == M_NOACK)
				st.faults[K_NOACK]++;
		}
		break;
	case M_NOREAD:
		noread_sleep(k);
		break;
	case M_MIDSTREAM:
		midstream(k);
		break;
	case M_RESUME:
		leave(k);
		break;
	}
}

static enum mode pick_mode(void)
{
	static const struct { enum mode m; enum kind k; } fm[] = {
		{ M_NOACK, K_NOACK }, { M_ACKORDER, K_ACKORDER },
		{ M_NOREAD, K_NOREAD }, { M_MIDSTREAM, K_MIDSTREAM },
		{ M_RESUME, K_RESUME },
	};
	uint64_t r = rnd(4 + 5);	/* normal weighs 4 */

	if (r < 4 || !on[fm[r - 4].k])
		return M_NORMAL;
	return fm[r - 4].m;
}

/* The end of a round for @k: a faulty client whose time is up gives up
 * its fault; then drains and is checked. */
static void cli_finish(struct cli *k)
{
	if (k->mode != M_NORMAL && --k->left > 0 &&
	    (k->mode == M_NOACK || k->mode == M_ACKORDER ||
	     k->mode == M_NOREAD))
		return;		/* still faulty: checked later */
	if (k->asleep)
		noread_wake(k);
	if (!k->conn)
		cli_connect(k);
	if (k->mode == M_ACKORDER)
		ackorder(k);
	for (int di = 0; di < NDEV; di++)
		if (subscribed(k, di)) {
			cli_drain(k, di);
			cli_check(k, di);
		}
	k->mode = pick_mode();
	k->left = 1 + (int)rnd(3);
}

/* ------------------------------------------------------------ mutations */

/* Where slot @s of a domain of kind @kind is mapped: a random place in the
 * slot's GiB (EXACT: at most 16384 pages; HUGE: half the time whole 2 MiB
 * leaves), or DENSE's zone @s. */
static void slot_place(enum dkind kind, int s, uint64_t *iova, uint64_t *len)
{
	uint64_t max = kind == DK_EXACT ? 16384 : GIB / PG;
	uint64_t pages, off;

	if (kind == DK_DENSE) {
		*iova = zone_page[s] * PG;
		*len = zone_pages[s] * PG;
		return;
	}
	if (kind == DK_HUGE && chance(50)) {
		uint64_t leaves = 1 + rnd(GIB / PG / LEAF_PAGES / 4);

		pages = leaves * LEAF_PAGES;
		off = rnd(GIB / PG / LEAF_PAGES - leaves + 1) * LEAF_PAGES;
	} else {
		pages = 1 + rnd(max);
		off = rnd(GIB / PG - pages + 1);
	}
	*iova = SLOT_IOVA(s) + off * PG;
	*len = pages * PG;
}

static void slot_map(struct dom *d, int s, uint64_t iova, uint64_t len)
{
	d->slot[s][0] = iova;
	d->slot[s][1] = len;
	trace("MAP domain %u %#" PRIx64 "+%#" PRIx64 "\n", d->id, iova, len);
	ctl_ok(itest_map(&ctl, PROTO_MAP, d->id, iova, len), "MAP");
	iv_add(&d->ever, iova / PG, (iova + len) / PG);
}

static int count_kind(enum dkind kind)
{
	int n = 0;

	for (int i = 0; i < NDEV; i++)
		n += doms[i].live && doms[i].kind == kind;
	return n;
}

/* A new domain in @di: of kind @kind (< 0: drawn); every client may
 * subscribe to it if @subs. */
static void dom_create(int di, int kind, bool subs)
{
	struct dom *d = &doms[di];
	struct proto_create_domain_reply a;
	bool have_big = count_kind(DK_MANY) > 0;
	int ndense = count_kind(DK_DENSE);
	char dev[16];
	int nmaps;

	dom_free(d);
	if (kind >= 0) {
		d->kind = (enum dkind)kind;
	} else if (!have_big && chance(8)) {
		d->kind = DK_MANY;
	} else {
		uint64_t r = rnd(100);

		d->kind = r < 35 ? DK_EXACT : r < 70 ? DK_HUGE :
			  ndense < 2 ? DK_DENSE : DK_EXACT;
	}
	snprintf(dev, sizeof(dev), "sim%d", di);
	ctl_ok(itest_create(&ctl, dev, PROTO_CREATE_TRACKING |
			    (small_leaves(d) ?
			     PROTO_CREATE_NO_HUGE_PAGES : 0), &a),
	       "CREATE_DOMAIN");
	d->live = true;
	d->id = a.domain_id;
	d->serial = ++serials;
	trace("CREATE_DOMAIN %u (%s) on %s\n", d->id, dkind_name[d->kind],
	      dev);
	if (d->kind == DK_DENSE) {
		for (int z = 0; z < NZONE; z++)
			slot_map(d, z, zone_page[z] * PG, zone_pages[z] * PG);
	} else {
		nmaps = 1 + (int)rnd(3);
		for (int i = 0; i < nmaps; i++) {
			int s = (int)rnd(NSLOT);
			uint64_t iova, len;

			slot_place(d->kind, s, &iova, &len);
			if (!d->slot[s][1])
				slot_map(d, s, iova, len);
		}
	}
	if (d->kind == DK_MANY) {
		for (int i = 0; i < NMANY; i++)
			ctl_ok(itest_map(&ctl, PROTO_MAP, d->id, MANY_AT(i),
					 MANY_LEN(i)), "MAP (many)");
		d->many = true;
		dom_mapped(d, &d->ever);
	}
	ctl_ok(itest_domain_op(&ctl, PROTO_TRACK_START, d->id),
	       "TRACK_START");
	st.created++;
	for (int i = 0; subs && i < NCLI; i++)
		if (chance(60) && ready(&cl[i]))
			cli_subscribe(&cl[i], di, -1);
}

static void dom_destroy(int di)
{
	struct dom *d = &doms[di];

	ctl_ok(itest_domain_op(&ctl, PROTO_DESTROY_DOMAIN, d->id),
	       "DESTROY_DOMAIN");
	for (int i = 0; i < NCLI; i++)
		if (cl[i].a[di].serial == d->serial)
			acct_drop(&cl[i].a[di]);
	d->live = false;
	st.destroyed++;
}

static void dom_remap(int di)
{
	struct dom *d = &doms[di];
	int s = (int)rnd(d->kind == DK_DENSE ? NZONE : NSLOT);
	uint64_t iova, len;

	slot_place(d->kind, s, &iova, &len);
	if (d->slot[s][1]) {
		trace("UNMAP domain %u %#" PRIx64 "+%#" PRIx64 "\n", d->id,
		      d->slot[s][0], d->slot[s][1]);
		ctl_ok(itest_map(&ctl, PROTO_UNMAP, d->id, d->slot[s][0],
				 d->slot[s][1]), "UNMAP");
		d->slot[s][1] = 0;
		st.unmaps++;
	} else {
		slot_map(d, s, iova, len);
		st.maps++;
	}
	st.faults[K_MAPPINGS]++;
}

static void ctl_connect(void)
{
	cr_assert_eq(itest_connect(&fd.m, &ctl), 0);
	itest_hello(&ctl, 0, 0, NULL);
}

/* SIGKILL, restart, everyone reconnects. */
static void kill_restart(void)
{
	itest_close(&ctl);
	fault_daemon_kill(&fd);
	for (int i = 0; i < NCLI; i++) {
		struct cli *k = &cl[i];

		if (k->conn)
			cli_close(k);
		if (k->mode == M_NOREAD)
			k->mode = M_NORMAL;
	}
	plain_restart = !fault_daemon_restart(&fd);
	if (fault_daemon_adopt_failed(&fd))
		st.adopt_failed++;
	ctl_connect();
	if (plain_restart || fault_daemon_adopt_failed(&fd)) {
		/* a new daemon: no domain, no session survived */
		for (int di = 0; di < NDEV; di++) {
			for (int i = 0; i < NCLI; i++)
				if (cl[i].a[di].serial == doms[di].serial)
					acct_drop(&cl[i].a[di]);
			doms[di].live = false;
		}
		for (int i = 0; i < NCLI; i++)
			cl[i].state_gone = true;
	}
	for (int i = 0; i < NCLI; i++)
		cli_connect(&cl[i]);
	st.faults[K_KILL]++;
}

static int live_domains(void)
{
	int n = 0;

	for (int i = 0; i < NDEV; i++)
		n += doms[i].live;
	return n;
}

static int pick_live(void)
{
	int live[NDEV], n = 0;
	uint64_t r = rnd(1 << 20);

	for (int i = 0; i < NDEV; i++)
		if (doms[i].live)
			live[n++] = i;
	return n ? live[r % n] : -1;
}

static void mutate(void)
{
	int di;

	if (on[K_KILL] && st.rounds > 2 && chance(2))
		kill_restart();
	if (on[K_DOMAINS]) {
		if (live_domains() > 2 && chance(12))
			dom_destroy(pick_live());
		if (live_domains() < 6 && chance(20)) {
			di = (int)rnd(NDEV);
			if (!doms[di].live) {
				dom_create(di, -1, true);
				st.faults[K_DOMAINS]++;
			}
		}
	}
	while (live_domains() < 2)
		for (di = 0; di < NDEV; di++)
			if (!doms[di].live) {
				dom_create(di, -1, true);
				break;
			}
	/* not on the "many" domain: each MAP there re-plans 3900 ranges */
	if (on[K_MAPPINGS])
		for (int i = (int)rnd(4); i > 0; i--) {
			di = pick_live();
			if (doms[di].kind != DK_MANY)
				dom_remap(di);
		}
	/* clients come and go on domains */
	for (int i = 0; i < NCLI; i++) {
		struct cli *k = &cl[i];

		di = pick_live();
		if (!ready(k) || k->mode != M_NORMAL || !chance(15))
			continue;
		if (!subscribed(k, di))
			cli_subscribe(k, di, -1);
		else if (chance(20))
			cli_unsubscribe(k, di);
	}
}

/* ------------------------------------------------------------ writes */

/* The writes of a batch, in pages. */
static struct { uint64_t page, pages; } *xt;
static size_t xn, xcap;

static void xt_add(uint64_t page, uint64_t pages)
{
	if (xn == xcap) {
		xcap = xcap ? 2 * xcap : 4096;
		xt = realloc(xt, xcap * sizeof(*xt));
		cr_assert_not_null(xt);
	}
	xt[xn].page = page;
	xt[xn++].pages = pages;
}

/* The batch, WINDOW DMA_WRITEs in flight; its pages written at the tick
 * after the last OK (nothing else happens meanwhile). */
static void xt_write(int di, enum pat p)
{
	struct dom *d = &doms[di];
	uint64_t id0 = ctl.next_id, pages = 0, t;
	size_t sent = 0, done = 0;

	while (done < xn) {
		struct proto_msg r;

		while (sent < xn && sent - done < WINDOW) {
			struct proto_msg m = {
				.type = PROTO_DMA_WRITE,
				.map = { .domain_id = d->id,
					 .iova = xt[sent].page * PG,
					 .length = xt[sent].pages * PG },
			};

			itest_send(&ctl, &m);
			sent++;
		}
		ctl_ok(itest_wait(&ctl, id0 + done, &r), "DMA_WRITE");
		done++;
	}
	t = tick();
	for (size_t i = 0; i < xn; i++) {
		for (uint64_t q = 0; q < xt[i].pages; q++)
			dom_written(d, xt[i].page + q, t, p);
		pages += xt[i].pages;
	}
	trace("DMA_WRITE domain %u (%s): %s, %zu writes from %#" PRIx64
	      ", %" PRIu64 " pages at %" PRIu64 "\n", d->id,
	      dkind_name[d->kind], pat_name[p], xn, xn ? xt[0].page : 0,
	      pages, t);
	st.writes += xn;
	st.pages_written += pages;
	st.pat_batches[p]++;
	st.pat_writes[p] += xn;
	st.pat_pages[p] += pages;
	xn = 0;
}

/* The mapped slots of @d: first page and pages; their number. */
static int dom_slots(const struct dom *d, uint64_t r[NSLOT][2])
{
	int n = 0;

	for (int s = 0; s < NSLOT; s++)
		if (d->slot[s][1]) {
			r[n][0] = d->slot[s][0] / PG;
			r[n++][1] = d->slot[s][1] / PG;
		}
	return n;
}

/* A window of @want pages (at most) in a random mapped slot: false if
 * nothing is mapped. */
static bool pick_window(const struct dom *d, uint64_t want, uint64_t *first,
			uint64_t *pages)
{
	uint64_t r[NSLOT][2];
	int n = dom_slots(d, r), m = (int)rnd(1 << 20);

	if (!n)
		return false;
	m %= n;
	*pages = want < r[m][1] ? want : r[m][1];
	*first = r[m][0] + rnd(r[m][1] - *pages + 1);
	return true;
}

/* sparse: @k writes of one page or a few, anywhere mapped. */
static void pat_sparse(const struct dom *d, int k)
{
	for (int i = 0; i < k; i++) {
		uint64_t iova[NSLOT + 1][2];
		int n = 0, m, j = (int)rnd(NMANY);
		uint64_t pages, len, at;

		for (int s = 0; s < NSLOT; s++)
			if (d->slot[s][1]) {
				iova[n][0] = d->slot[s][0];
				iova[n++][1] = d->slot[s][1];
			}
		if (d->many) {
			iova[n][0] = MANY_AT(j);
			iova[n++][1] = MANY_LEN(j);
		}
		m = (int)rnd(1 << 20);
		len = chance(75) ? 1 : 1 + rnd(16);
		at = rnd(1ULL << 40);
		if (!n)
			return;
		m %= n;
		pages = iova[m][1] / PG;
		at %= pages;
		if (at + len > pages)
			len = pages - at;
		xt_add(iova[m][0] / PG + at, len);
	}
}

/* clustered: 8 to 64 writes of 1 to 8 pages within 64 to 4096 pages. */
static void pat_cluster(const struct dom *d)
{
	uint64_t first, pages;
	int k = 8 + (int)rnd(57);

	if (!pick_window(d, 64ULL << rnd(7), &first, &pages))
		return;
	for (int i = 0; i < k; i++) {
		uint64_t at = rnd(pages), len = 1 + rnd(8);

		xt_add(first + at, at + len > pages ? pages - at : len);
	}
}

/* dense: a contiguous run (on DENSE up to two spans), in up to 8 writes. */
static void pat_dense(const struct dom *d)
{
	uint64_t want = d->kind == DK_DENSE ? 1024 + rnd(2 * SPAN - 1023) :
			d->kind == DK_HUGE ? 64 + rnd(4096) : 64 + rnd(2048);
	uint64_t first, pages;
	int cuts = (int)rnd(8);

	if (!pick_window(d, want, &first, &pages))
		return;
	while (pages) {
		uint64_t len = cuts-- > 0 ? 1 + rnd(pages) : pages;

		xt_add(first, len);
		first += len;
		pages -= len;
	}
}

/* alternate: every 2nd (or 3rd) page: over a whole span of a DENSE zone
 * if @full (the worst case for RUNS: 16384 runs), else over a window. */
static void pat_alt(const struct dom *d, bool full)
{
	uint64_t first, pages, stride = 2;

	if (d->kind == DK_DENSE && full) {
		uint64_t spans[4];
		int n = 0;

		for (int z = 0; z < NZONE; z++) {
			uint64_t a = (zone_page[z] + SPAN - 1) / SPAN * SPAN;

			if (!d->slot[z][1])
				continue;
			for (; a + SPAN <= zone_page[z] + zone_pages[z];
			     a += SPAN)
				spans[n++] = a;
		}
		if (n) {
			first = spans[rnd((uint64_t)n)];
			for (uint64_t q = rnd(2); q < SPAN; q += 2)
				xt_add(first + q, 1);
			st.full_spans++;
			return;
		}
	}
	if (!pick_window(d, d->kind == DK_DENSE ? 2048 + rnd(SPAN - 2047) :
			 256 + rnd(4096), &first, &pages))
		return;
	if (chance(30))
		stride = 3;
	for (uint64_t q = rnd(stride); q < pages; q += stride)
		xt_add(first + q, 1);
}

/* huge-leaf: one page in each of up to 64 2 MiB leaves (every leaf or
 * every other one) of a huge domain: each reports its whole leaf. */
static void pat_leaf(const struct dom *d)
{
	uint64_t r[NSLOT][2];
	int n = dom_slots(d, r), m = (int)rnd(1 << 20);
	uint64_t b, e, nb, cnt, step = chance(50) ? 1 : 2, b0;

	if (!n)
		return;
	m %= n;
	b = (r[m][0] + LEAF_PAGES - 1) / LEAF_PAGES;
	e = (r[m][0] + r[m][1]) / LEAF_PAGES;
	nb = e > b ? e - b : 0;
	if (!nb) {
		xt_add(r[m][0] + rnd(r[m][1]), 1);
		return;
	}
	cnt = 1 + rnd(nb < 64 ? nb : 64);
	if ((cnt - 1) * step + 1 > nb)
		cnt = (nb - 1) / step + 1;
	b0 = b + rnd(nb - (cnt - 1) * step);
	for (uint64_t i = 0; i < cnt; i++)
		xt_add((b0 + i * step) * LEAF_PAGES + rnd(LEAF_PAGES), 1);
}

/* Pattern @p on @di (one that fits its kind), written. */
static void write_pattern(int di, enum pat p, bool full)
{
	const struct dom *d = &doms[di];

	switch (p) {
	case P_SPARSE:
		pat_sparse(d, 1 + (int)rnd(12));
		break;
	case P_CLUSTER:
		pat_cluster(d);
		break;
	case P_DENSE:
		pat_dense(d);
		break;
	case P_ALT:
		pat_alt(d, full);
		break;
	case P_LEAF:
		pat_leaf(d);
		break;
	default:
		break;
	}
	if (xn)
		xt_write(di, p);
}

/* A write step on @di: a pattern that fits its kind. */
static void writes(int di)
{
	uint64_t r = rnd(100);
	enum pat p;

	switch (doms[di].kind) {
	case DK_EXACT:
		p = r < 55 ? P_SPARSE : r < 85 ? P_CLUSTER :
		    r < 95 ? P_DENSE : P_ALT;
		break;
	case DK_DENSE:
		p = r < 40 ? P_SPARSE : r < 65 ? P_CLUSTER :
		    r < 88 ? P_DENSE : P_ALT;
		break;
	case DK_HUGE:
		p = r < 45 ? P_SPARSE : r < 70 ? P_CLUSTER :
		    r < 80 ? P_DENSE : P_LEAF;
		break;
	default:
		p = P_SPARSE;
		break;
	}
	write_pattern(di, p, chance(30));
}

static void round_run(void)
{
	int nsteps = 6 + (int)rnd(12);

	mutate();
	for (int s = 0; s < nsteps; s++) {
		uint64_t r = rnd(10);
		int di = pick_live();

		st.steps++;
		if (r < 5)
			writes(di);
		else if (r < 6)
			dom_sync(di);
		else
			cli_step(&cl[rnd(NCLI)]);
	}
	for (int di = 0; di < NDEV; di++)
		if (doms[di].live)
			dom_sync(di);
	for (int i = 0; i < NCLI; i++)
		cli_finish(&cl[i]);
	st.rounds++;
}

/* ------------------------------------------------------------ the matrix */

/*
 * Every combination on the same domains, every pattern: domains 0 and 1
 * dense, 2 and 3 huge; every client subscribes to all four, with CLEAN to
 * 0 and 2.  For each pattern: write it where it fits (alternate: both
 * spans of zone 0 on domain 0, a whole span on domain 1), SYNC, and each
 * client takes a generation of each domain and holds it, the RESUME ones
 * disconnect and resume every other pattern, then drain (RESEND, or ACK
 * first) and are checked.
 */
#define NMATRIX 4
static const enum dkind matrix_kind[NMATRIX] = {
	DK_DENSE, DK_DENSE, DK_HUGE, DK_HUGE,
};

static bool pat_fits(enum dkind kind, enum pat p)
{
	if (p == P_ALT)
		return kind == DK_DENSE;
	if (p == P_LEAF)
		return kind == DK_HUGE;
	return true;
}

/* Every other page of both spans of zone 0: a RUNS-only stream of about
 * 64 KiB, more than one packet. */
static void matrix_alt_zone0(int di)
{
	for (uint64_t q = rnd(2); q < 2 * SPAN; q += 2)
		xt_add(zone_page[0] + q, 1);
	st.full_spans += 2;
	xt_write(di, P_ALT);
}

static void matrix_run(void)
{
	in_matrix = true;
	for (int di = 0; di < NMATRIX; di++)
		dom_create(di, matrix_kind[di], false);
	for (int i = 0; i < NCLI; i++)
		for (int di = 0; di < NMATRIX; di++)
			cli_subscribe(&cl[i], di, !(di & 1));
	for (int p = 0; p < NPAT; p++) {
		for (int di = 0; di < NMATRIX; di++)
			if (p == P_ALT && di == 0)
				matrix_alt_zone0(di);
			else if (pat_fits(doms[di].kind, (enum pat)p))
				write_pattern(di, (enum pat)p, true);
		for (int di = 0; di < NMATRIX; di++)
			dom_sync(di);
		for (int i = 0; i < NCLI; i++) {
			struct cli *k = &cl[i];
			int complete;

			for (int di = 0; di < NMATRIX; di++)
				if (subscribed(k, di))
					cli_get(k, di, 0, 0, &complete);
			if ((p & 1) && on[K_RESUME] &&
			    (k->features & PROTO_FEAT_RESUME)) {
				cli_close(k);
				cli_connect(k);
				st.faults[K_RESUME]++;
			}
			for (int di = 0; di < NMATRIX; di++) {
				if (!subscribed(k, di))
					continue;
				cli_drain(k, di);
				cli_check(k, di);
			}
		}
		st.matrix_steps++;
	}
	in_matrix = false;
}

/* ------------------------------------------------------------ driver */

static void print_stats(const char *what, const struct stats *s)
{
	fprintf(stderr,
		"fault: %s: %" PRIu64 " rounds (after %" PRIu64 " matrix "
		"steps), %" PRIu64 " steps\n"
		"fault:   faults: midstream %" PRIu64 " (%" PRIu64 " with the "
		"stream cut), resume %" PRIu64 ", noread %" PRIu64 " (%" PRIu64
		" requests left unread), noack %" PRIu64 ", ackorder %" PRIu64
		" (%" PRIu64 " acks out of order, %" PRIu64 " bogus), domains "
		"%" PRIu64 " (%" PRIu64 " created, %" PRIu64 " destroyed), "
		"mappings %" PRIu64 " (%" PRIu64 " maps, %" PRIu64 " unmaps), "
		"kill %" PRIu64 "\n"
		"fault:   writes %" PRIu64 " (%" PRIu64 " pages), syncs %" PRIu64
		", streams %" PRIu64 " (%" PRIu64 " packets, %" PRIu64
		" multi-packet, %" PRIu64 " pages; chunks %" PRIu64 " RUNS, %"
		PRIu64 " RAW), EV_ROUND %" PRIu64 "\n"
		"fault:   checks %" PRIu64 ", pages checked %" PRIu64
		", pages LOST %" PRIu64 ", STATE_LOST: %" PRIu64 " in "
		"HELLO_REPLY, %" PRIu64 " events; sessions resumed %" PRIu64
		", subscriptions made again (no RESUME) %" PRIu64 ", adoptions "
		"failed %" PRIu64 "\n"
		"fault:   GET_RANGES answered ERROR %" PRIu64 " (drains given up "
		"after %d: %" PRIu64 ", ACKs of generations put back: %" PRIu64
		")\n",
		what, s->rounds, s->matrix_steps, s->steps,
		s->faults[K_MIDSTREAM], s->midstream_cut, s->faults[K_RESUME],
		s->faults[K_NOREAD], s->unread_requests, s->faults[K_NOACK],
		s->faults[K_ACKORDER], s->out_of_order_acks, s->bogus_acks,
		s->faults[K_DOMAINS], s->created, s->destroyed,
		s->faults[K_MAPPINGS], s->maps, s->unmaps, s->faults[K_KILL],
		s->writes, s->pages_written, s->syncs, s->streams, s->packets,
		s->multi_packet, s->pages_received, s->runs_chunks,
		s->raw_chunks, s->ev_round, s->checks, s->pages_checked,
		s->lost, s->state_lost_hello, s->state_lost_ev, s->resumed,
		s->resubscribed, s->adopt_failed, s->get_errors, GET_RETRIES,
		s->gave_up, s->void_acks);
	fprintf(stderr, "fault:   patterns:");
	for (int p = 0; p < NPAT; p++)
		fprintf(stderr, "%s %s %" PRIu64 " batches (%" PRIu64 " writes, %"
			PRIu64 " pages)", p ? "," : "", pat_name[p],
			s->pat_batches[p], s->pat_writes[p], s->pat_pages[p]);
	fprintf(stderr, "; %" PRIu64 " whole spans alternate; huge leaves "
		"reported %" PRIu64 " pages never written\n", s->full_spans,
		s->leaf_extra);
}

/*
 * The table: one row per combination, pages checked by the pattern of
 * their last write (a page counts once per check), pages lost, GET_RANGES
 * answered ERROR.  The same columns every time, for quoting.
 */
static void print_table(const char *what, const struct stats *s)
{
	struct combo_stats t = { 0 };

	fprintf(stderr, "fault: %s, per combination (pages checked by the "
		"pattern of their last write; lost must be 0):\n", what);
	fprintf(stderr, "fault: %-3s %-5s %-6s %-6s %-6s %5s %6s", "raw",
		"clean", "resume", "resend", "events", "subs", "checks");
	for (int p = 0; p < NPAT; p++)
		fprintf(stderr, " %10s", pat_name[p]);
	fprintf(stderr, " %11s %8s %8s\n", "checked", "lost", "errors");
	for (int c = 0; c <= NCOMBO; c++) {
		const struct combo_stats *cs = c < NCOMBO ? &s->combo[c] : &t;
		uint64_t checked = 0, lost = cs->lost_owed;

		for (int p = 0; p < NPAT; p++) {
			checked += cs->checked[p];
			lost += cs->lost[p];
		}
		if (c < NCOMBO) {
			const uint64_t *src = (const uint64_t *)cs;
			uint64_t *dst = (uint64_t *)&t;

			for (size_t i = 0; i < sizeof(t) / sizeof(uint64_t);
			     i++)
				dst[i] += src[i];
			fprintf(stderr, "fault: %-3s %-5s %-6s %-6s %-6s",
				c & 16 ? "yes" : "no", c & 8 ? "yes" : "no",
				c & 4 ? "yes" : "no", c & 2 ? "yes" : "no",
				c & 1 ? "yes" : "no");
		} else {
			fprintf(stderr, "fault: %-31s", "all");
		}
		fprintf(stderr, " %5" PRIu64 " %6" PRIu64, cs->subs,
			cs->checks);
		for (int p = 0; p < NPAT; p++)
			fprintf(stderr, " %10" PRIu64, cs->checked[p]);
		fprintf(stderr, " %11" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
			checked, lost, cs->get_errors);
	}
	for (int c = 0; c < NCOMBO; c++) {
		const struct combo_stats *cs = &s->combo[c];
		uint64_t lost = cs->lost_owed;
		char name[96];

		for (int p = 0; p < NPAT; p++)
			lost += cs->lost[p];
		if (!lost)
			continue;
		fprintf(stderr, "fault: LOST by %s:",
			combo_name(c, name, sizeof(name)));
		for (int p = 0; p < NPAT; p++)
			fprintf(stderr, " %s %" PRIu64, pat_name[p],
				cs->lost[p]);
		fprintf(stderr, ", mapped at SUBSCRIBE %" PRIu64 "\n",
			cs->lost_owed);
	}
}

/* Combinations (and patterns the matrix writes for them) never checked:
 * their number, each printed. */
static unsigned int coverage_gaps(const struct stats *s)
{
	unsigned int gaps = 0;

	for (int c = 0; c < NCOMBO; c++) {
		const struct combo_stats *cs = &s->combo[c];
		char name[96];

		for (int p = 0; p < NPAT; p++) {
			if (cs->checked[p])
				continue;
			fprintf(stderr, "fault: NOT EXERCISED: %s had no page "
				"written %s checked\n",
				combo_name(c, name, sizeof(name)),
				pat_name[p]);
			gaps++;
		}
	}
	return gaps;
}

static void stats_add(struct stats *t, const struct stats *s)
{
	const uint64_t *src = (const uint64_t *)s;
	uint64_t *dst = (uint64_t *)t;

	for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
		dst[i] += src[i];
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static void parse_kinds(void)
{
	const char *v = getenv("FAULT_KINDS");
	char buf[256], *save = NULL;

	for (int i = 0; i < NKIND; i++)
		on[i] = true;
	if (!v || !*v)
		return;
	snprintf(buf, sizeof(buf), "%s", v);
	for (char *w = strtok_r(buf, ", ", &save); w;
	     w = strtok_r(NULL, ", ", &save)) {
		bool neg = *w == '-';
		bool found = false;

		/* a list that starts with a kind means those kinds only */
		if (w == buf && !neg && strcmp(w, "all") && strcmp(w, "none"))
			for (int i = 0; i < NKIND; i++)
				on[i] = false;
		if (neg)
			w++;
		if (!strcmp(w, "all") || !strcmp(w, "none")) {
			for (int i = 0; i < NKIND; i++)
				on[i] = !strcmp(w, "all");
			continue;
		}
		for (int i = 0; i < NKIND; i++)
			if (!strcmp(w, kind_name[i])) {
				on[i] = !neg;
				found = true;
			}
		cr_assert(found, "FAULT_KINDS: unknown kind \"%s\"", w);
	}
}

static void run_seed(uint64_t seed, uint64_t seconds, uint64_t rounds)
{
	uint64_t start = mono_ms(), end = start + seconds * 1000, matrix_ms;
	uint64_t last_round = 0, longest_round = 0, final;
	char kinds[256] = "";
	int status;

	for (int i = 0; i < NKIND; i++)
		if (on[i])
			snprintf(kinds + strlen(kinds),
				 sizeof(kinds) - strlen(kinds), "%s%s",
				 *kinds ? "," : "", kind_name[i]);
	fprintf(stderr, "fault: seed %" PRIu64 " (0x%" PRIx64 "), kinds %s, "
		"%" PRIu64 " s%s; reproduce: FAULT_SEED=%" PRIu64 "\n", seed,
		seed, kinds, seconds, rounds ? " or the round limit" : "",
		seed);
	memset(&st, 0, sizeof(st));
	R.s = seed;
	seed_now = seed;
	now_tick = 0;
	serials = 0;
	loss_round = 0;
	lost_lines = error_lines = 0;
	for (int i = 0; i < NDEV; i++)
		dom_free(&doms[i]);
	fault_daemon_start(&fd, getenv("FAULT_LOG_LEVEL") ?: "info");
	fprintf(stderr, "fault: restarts %s\n", fault_daemon_describe(&fd));
	ctl_connect();
	for (int i = 0; i < NCLI; i++) {
		struct cli *k = &cl[i];

		*k = (struct cli){ .idx = i };
		k->features = (CLI_RAW(i) ? PROTO_FEAT_RANGES_RAW : 0) |
			      (CLI_RESUME(i) ? PROTO_FEAT_RESUME : 0) |
			      (CLI_EVENTS(i) ? PROTO_FEAT_EVENTS : 0);
		k->resend = CLI_RESEND(i);
		cli_connect(k);
	}
	matrix_run();
	matrix_ms = mono_ms() - start;
	fprintf(stderr, "fault: the matrix (%d combinations x %d patterns) "
		"took %" PRIu64 " ms\n", NCOMBO, NPAT, matrix_ms);
	while ((!rounds || st.rounds < rounds) && mono_ms() < end) {
		last_round = mono_ms();
		round_run();
		last_round = mono_ms() - last_round;
		longest_round = last_round > longest_round ? last_round :
				longest_round;
	}
	final = mono_ms();
	/* everyone drains and is checked one last time */
	for (int i = 0; i < NCLI; i++) {
		cl[i].mode = M_NORMAL;
		cl[i].left = 0;
	}
	for (int di = 0; di < NDEV; di++)
		if (doms[di].live)
			dom_sync(di);
	for (int i = 0; i < NCLI; i++)
		cli_finish(&cl[i]);
	itest_close(&ctl);
	for (int i = 0; i < NCLI; i++) {
		itest_close(&cl[i].c);
		for (int di = 0; di < NDEV; di++)
			acct_drop(&cl[i].a[di]);
	}
	for (int i = 0; i < NDEV; i++)
		dom_free(&doms[i]);
	free(xt);
	xt = NULL;
	xn = xcap = 0;
	status = fault_daemon_stop(&fd);
	fault_daemon_cleanup(&fd);
	print_stats("seed done", &st);
	fprintf(stderr, "fault: seed %" PRIu64 ": %" PRIu64 " ms (the matrix "
		"%" PRIu64 ", the longest round %" PRIu64 ", the last %" PRIu64
		", the final drain and stop %" PRIu64 ")\n", seed,
		mono_ms() - start, matrix_ms, longest_round, last_round,
		mono_ms() - final);
	if (st.lost)
		fprintf(stderr, "fault: seed %" PRIu64 " LOST %" PRIu64 " pages, "
			"first at round %" PRIu64 ": FAULT_SEED=%" PRIu64
			" FAULT_ROUNDS=%" PRIu64 " reproduces it\n", seed,
			st.lost, loss_round - 1, seed, loss_round);
	stats_add(&all_seeds, &st);
	cr_assert(status == 0, "dirtyd did not exit 0 on SIGTERM (wait status "
		  "%#x): under ASan, a leak", status);
}

static void cleanup(void)
{
	fault_daemon_cleanup(&fd);
}

Test(fault, random, .fini = cleanup, .timeout = 0)
{
	/* FAULT_SECONDS from the caller wins over CTest's budget */
	uint64_t seconds = env_u64("FAULT_SECONDS",
				   env_u64("FAULT_CTEST_SECONDS", 30));
	uint64_t rounds = env_u64("FAULT_ROUNDS", 0);
	const char *seed = getenv("FAULT_SEED");
	unsigned int gaps;

	parse_kinds();
	tracing = env_u64("FAULT_TRACE", 0);
	failfast = env_u64("FAULT_FAILFAST", 0);
	if (getenv("FAULT_ROUNDS") && !getenv("FAULT_SECONDS"))
		seconds = 365 * 86400ULL;
	if (seed && *seed) {
		run_seed(strtoull(seed, NULL, 0), seconds, rounds);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		run_seed(1, seconds, rounds);
		run_seed((uint64_t)ts.tv_sec * 1000003ULL ^
			 (uint64_t)ts.tv_nsec ^ (uint64_t)getpid(),
			 seconds, rounds);
	}
	print_stats("all seeds", &all_seeds);
	print_table("all seeds", &all_seeds);
	gaps = coverage_gaps(&all_seeds);
	cr_assert_eq(all_seeds.lost, 0, "%" PRIu64 " pages lost (the table "
		     "above says by which combinations)", all_seeds.lost);
	cr_assert_eq(gaps, 0, "%u combinations x patterns never checked: "
		     "a combination not exercised is a failure", gaps);
}
