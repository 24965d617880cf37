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
 *    wrote: wtick[page] = w, the last write.
 *  - A client "copies" the pages of a generation when it acknowledges it:
 *    at the moment it sends ACK(g), every page of g's RANGES stream gets
 *    rtick[page] = max(rtick, G), G being the tick at which the GET_RANGES
 *    of that stream was sent (the daemon took the generation after G: a
 *    copy made then holds every write that completed before G).  Pages
 *    received and not acknowledged count for nothing: the daemon owes
 *    them until they are acknowledged.
 *  - SYNC(D) sent at tick S: the daemon answers after a round that began
 *    after S.  A client that then drains D (GET_RANGES and ACK until a
 *    generation is empty; RESEND first if it holds unacknowledged ones)
 *    must have copied every page p with base < wtick[p] < S after its
 *    last write: rtick[p] > wtick[p].  Anything else is a lost page.
 *  - base is the tick the subscription began (pages written before a
 *    SUBSCRIBE are not owed to it), or the tick the client learned its
 *    state was lost (STATE_LOST in HELLO_REPLY, EV_STATE_LOST): it then
 *    takes every page as dirty, i.e. copies everything, and only then.
 *  - A subscription made without CLEAN owes every page mapped when it was
 *    made (an interval set, emptied by the acknowledged generations).
 *  - Every page a client is sent must lie in a range that was mapped in
 *    the domain at some time.
 *
 * Configuration (environment; the CTest entry sets a bounded run):
 *   FAULT_SEED=N        run this seed only (decimal or 0x hex); without it,
 *                       a fixed seed and one from the clock
 *   FAULT_SECONDS=N     time budget per seed (default: FAULT_CTEST_SECONDS,
 *                       which CTest sets to DIRTYD_FAULT_SECONDS, else 30)
 *   FAULT_ROUNDS=N      stop a seed after N rounds (a failing round R of
 *                       seed N reproduces with FAULT_SEED=N FAULT_ROUNDS=R)
 *   FAULT_KINDS=LIST    fault kinds, comma separated; "all" (the default),
 *                       "none", a kind, or -kind to remove one: midstream,
 *                       resume, noread, noack, ackorder, domains, mappings,
 *                       kill
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

#define NDEV 8			/* sim0 .. sim7: one domain each at most */
#define NCLI 6			/* subscribing clients */
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
#define MAXREC 24		/* unacknowledged generations a client holds */
#define MAXOUT 200		/* requests a non-reader leaves unread */
#define WAIT_MS 30000

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

enum dkind { DK_EXACT, DK_HUGE, DK_MANY };
static const char *const dkind_name[] = { "exact", "huge", "many" };

struct dom {
	bool live;
	uint32_t id;
	uint32_t serial;	/* the test's, never reused */
	enum dkind kind;
	uint64_t slot[NSLOT][2];	/* iova, length; length 0: unmapped */
	bool many;		/* the NMANY mappings are there */
	struct ivset ever;	/* pages mapped at some time */
	/* the pages written, their last write's tick */
	uint64_t *page, *wtick;
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

static void dom_free(struct dom *d)
{
	iv_free(&d->ever);
	free(d->page);
	free(d->wtick);
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

/* Page @page written at tick @t. */
static void dom_written(struct dom *d, uint64_t page, uint64_t t)
{
	size_t h;

	if (2 * (d->n + 1) > d->hcap)
		dom_rehash(d);
	h = hash64(page) & (d->hcap - 1);
	for (; d->hkey[h]; h = (h + 1) & (d->hcap - 1))
		if (d->hkey[h] == page + 1) {
			d->wtick[d->hval[h]] = t;
			return;
		}
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 1024;
		d->page = realloc(d->page, d->cap * sizeof(*d->page));
		d->wtick = realloc(d->wtick, d->cap * sizeof(*d->wtick));
		cr_assert(d->page && d->wtick);
	}
	d->hkey[h] = page + 1;
	d->hval[h] = (uint32_t)d->n;
	d->page[d->n] = page;
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
	struct itest_runs runs;
};

/* A client's account of one domain. */
struct acct {
	bool sub;
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
	uint64_t token;
	bool parked;		/* left with subscriptions: may resume */
	bool state_gone;	/* the daemon restarted without its state */
	enum mode mode;
	int left;		/* rounds the mode lasts */
	bool asleep;		/* noread: requests sent, nothing read */
	struct out out[MAXOUT];
	int nout;
	struct acct a[NDEV];
};

static struct cli cl[NCLI];
static struct itest_client ctl;		/* the administrator and writer */
static struct fault_daemon fd;
static uint64_t now_tick;
static uint64_t seed_now;
static bool plain_restart;

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
	fprintf(stderr, "fault: FAILED at round %" PRIu64 " of seed %" PRIu64
		" (0x%" PRIx64 "): %s\nfault: reproduce with FAULT_SEED=%"
		PRIu64 " FAULT_ROUNDS=%" PRIu64 "\n", st.rounds + 1, seed_now,
		seed_now, msg, seed_now, st.rounds + 1);
	print_stats("this seed", &st);
	cr_assert_fail("%s (seed %" PRIu64 ")", msg, seed_now);
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

/* Copied: the pages of @runs, from a GET_RANGES sent at @t. */
static void acct_credit(struct dom *d, struct acct *a,
			const struct itest_runs *runs, uint64_t t)
{
	if (a->cap < d->n) {
		size_t cap = d->cap;

		a->rtick = realloc(a->rtick, cap * sizeof(*a->rtick));
		cr_assert_not_null(a->rtick);
		memset(a->rtick + a->cap, 0, (cap - a->cap) * sizeof(*a->rtick));
		a->cap = cap;
	}
	dom_sort(d);
	for (size_t i = 0; i < runs->n; i++) {
		uint64_t f = runs->first[i], e = f + runs->count[i];

		for (size_t k = dom_lower(d, f);
		     k < d->nsorted && d->page[d->sorted[k]] < e; k++) {
			uint32_t x = d->sorted[k];

			if (a->rtick[x] < t)
				a->rtick[x] = t;
		}
	}
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

static void state_lost_event(struct cli *k, uint32_t dom_id)
{
	for (int i = 0; i < NDEV; i++)
		if (doms[i].live && doms[i].id == dom_id && k->a[i].sub &&
		    k->a[i].serial == doms[i].serial) {
			acct_lost(&k->a[i]);
			st.state_lost_ev++;
			return;
		}
}

/* The next packet that is not an event. */
static int cli_recv(struct cli *k, struct proto_msg *m)
{
	uint64_t end = mono_ms() + WAIT_MS;

	for (;;) {
		int left = (int)(end - mono_ms());
		int e;

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
			st.ev_round++;
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
 * order within and across packets, every page within a range ever mapped)
 * and its pages added to @out.  *@end is the first page after the previous
 * chunk.
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
 * 1 when complete, 0 when stopped early, -errno for an ERROR.
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

static void cli_subscribe(struct cli *k, int di)
{
	struct dom *d = &doms[di];
	struct acct *a = &k->a[di];
	bool clean = chance(50);
	uint32_t ival = chance(50) ? 0 : 20 + (uint32_t)rnd(81);
	struct proto_msg m = {
		.type = PROTO_SUBSCRIBE,
		.subscribe = { .domain_id = d->id, .interval_ms = ival,
			       .flags = clean ? PROTO_SUBSCRIBE_CLEAN : 0 },
	}, r;
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
	trace("client %d SUBSCRIBE domain %u%s interval %u at %" PRIu64 "\n",
	      k->idx, d->id, clean ? " CLEAN" : "", ival, t);
	a->sub = true;
	a->serial = d->serial;
	a->base = t;
	if (!clean)
		dom_mapped(d, &a->owed);
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

/* GET_RANGES on @di: the generation's record (a repeat of the same
 * generation replaces it: it holds the earlier pages and more). */
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
	if (e < 0)
		fail("client %d: GET_RANGES domain %u: %s (%s)", k->idx,
		     d->id, strerror(-e), k->c.text);
	*complete = e;
	if (!e) {
		itest_runs_free(&runs);
		return NULL;
	}
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

/* Copy and ACK record @i of @di; wait for OK unless @nowait. */
static void cli_ack(struct cli *k, int di, int i, bool nowait)
{
	struct acct *a = &k->a[di];
	struct rec rc = a->rec[i];
	struct proto_msg m = {
		.type = PROTO_ACK,
		.ack = { .domain_id = doms[di].id, .generation = rc.gen },
	}, r;
	int e;

	trace("client %d ACK domain %u generation %" PRIu64 "%s\n", k->idx,
	      doms[di].id, rc.gen, nowait ? " (not waiting)" : "");
	acct_credit(&doms[di], a, &rc.runs, rc.tick);
	a->rec[i] = a->rec[--a->nrec];
	itest_runs_free(&rc.runs);
	itest_send(&k->c, &m);
	if (nowait)
		return;
	e = cli_wait(k, m.id, &r);
	if (e)
		fail("client %d: ACK generation %" PRIu64 " of domain %u: %s "
		     "(%s)", k->idx, rc.gen, doms[di].id, strerror(-e),
		     k->c.text);
}

/* GET_RANGES and ACK until a generation is empty. */
static void cli_drain(struct cli *k, int di)
{
	uint32_t flags = k->a[di].nrec ? PROTO_RANGES_RESEND : 0;

	for (int it = 0;; it++) {
		struct rec *rc;
		uint64_t pages;
		int complete;

		if (it == 8)
			fail("client %d: domain %u still has pages pending "
			     "after 8 generations without writes", k->idx,
			     doms[di].id);
		rc = cli_get(k, di, flags, 0, &complete);
		pages = rc->runs.pages;
		cli_ack(k, di, (int)(rc - k->a[di].rec), false);
		if (!pages && !k->a[di].nrec)
			break;
		flags = k->a[di].nrec ? PROTO_RANGES_RESEND : 0;
	}
}

/* The invariant, for @k's subscription to @di, after a drain that began
 * after the SYNC sent at d->sync_tick was answered. */
static void cli_check(struct cli *k, int di)
{
	struct dom *d = &doms[di];
	struct acct *a = &k->a[di];
	uint64_t s = d->sync_tick, lost = 0;

	st.checks++;
	for (size_t i = 0; i < d->n; i++) {
		uint64_t w = d->wtick[i];
		uint64_t r = i < a->cap ? a->rtick[i] : 0;

		if (w >= s || w <= a->base)
			continue;
		st.pages_checked++;
		if (r > w)
			continue;
		if (lost++ < 10)
			fprintf(stderr, "fault: LOST: client %d (%s) domain %u "
				"(%s) page %#" PRIx64 " (iova %#" PRIx64 ") "
				"written at tick %" PRIu64 ", last copied at "
				"%" PRIu64 ", account since %" PRIu64 ", "
				"SYNC at %" PRIu64 "\n", k->idx,
				mode_name[k->mode], d->id, dkind_name[d->kind],
				d->page[i], (uint64_t)(d->page[i] * PG), w, r, a->base, s);
	}
	if (a->owed.n) {
		fprintf(stderr, "fault: LOST: client %d domain %u: %" PRIu64
			" pages mapped at its SUBSCRIBE (without CLEAN) never "
			"came, first %#" PRIx64 "\n", k->idx, d->id,
			iv_pages(&a->owed), a->owed.a[0]);
		lost += iv_pages(&a->owed);
	}
	st.lost += lost;
	if (lost)
		fail("%" PRIu64 " pages lost for client %d, domain %u", lost,
		     k->idx, d->id);
}

/* ------------------------------------------------------------ sessions */

static void cli_connect(struct cli *k)
{
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

	e = itest_connect(&fd.t, &k->c);
	if (e)
		fail("client %d: connect: %s", k->idx, strerror(-e));
	k->conn = true;
	e = cli_call(k, &m, &r);
	if (e || r.type != PROTO_HELLO_REPLY)
		fail("client %d: HELLO: %s", k->idx, strerror(-e));
	flags = r.hello_reply.session_flags;
	if (!r.hello_reply.session_token)
		fail("client %d: no session token", k->idx);
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
			cli_subscribe(k, i);
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
			o->err = (int)m.error.err;
			o->done = true;
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
				st.streams++;
				st.pages_received += o->total;
				st.multi_packet += o->seq > 1;
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
		if (o->err)
			fail("client %d: GET_RANGES: %s", k->idx,
			     strerror(o->err));
		if (!subscribed(k, o->di) || k->a[o->di].serial != o->serial)
			continue;
		a = &k->a[o->di];
		if (a->nrec == MAXREC)
			fail("client %d: too many generations", k->idx);
		a->rec[a->nrec++] = (struct rec){ .gen = o->gen,
						  .tick = o->tick,
						  .runs = o->runs };
		o->runs = (struct itest_runs){ 0 };
		/* half the time copied and acknowledged, else resent */
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
		else if (ack)
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
			cli_ack(k, di, (int)(rc - k->a[di].rec), false);
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

static void dom_create(int di)
{
	struct dom *d = &doms[di];
	struct proto_create_domain_reply a;
	bool have_big = false;
	char dev[16];
	int nmaps;

	for (int i = 0; i < NDEV; i++)
		have_big |= doms[i].live && doms[i].kind == DK_MANY;
	dom_free(d);
	d->kind = !have_big && chance(8) ? DK_MANY :
		  chance(50) ? DK_EXACT : DK_HUGE;
	snprintf(dev, sizeof(dev), "sim%d", di);
	ctl_ok(itest_create(&ctl, dev, PROTO_CREATE_TRACKING |
			    (d->kind == DK_EXACT ?
			     PROTO_CREATE_NO_HUGE_PAGES : 0), &a),
	       "CREATE_DOMAIN");
	d->live = true;
	d->id = a.domain_id;
	d->serial = ++serials;
	nmaps = 1 + (int)rnd(3);
	for (int i = 0; i < nmaps; i++) {
		int s = (int)rnd(NSLOT);
		uint64_t max = d->kind == DK_EXACT ? 16384 : GIB / PG;
		uint64_t len = 1 + rnd(max);
		uint64_t off = rnd(GIB / PG - len + 1);

		if (d->slot[s][1])
			continue;
		d->slot[s][0] = SLOT_IOVA(s) + off * PG;
		d->slot[s][1] = len * PG;
		ctl_ok(itest_map(&ctl, PROTO_MAP, d->id, d->slot[s][0],
				 d->slot[s][1]), "MAP");
		iv_add(&d->ever, d->slot[s][0] / PG,
		       (d->slot[s][0] + d->slot[s][1]) / PG);
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
	for (int i = 0; i < NCLI; i++)
		if (chance(60) && ready(&cl[i]))
			cli_subscribe(&cl[i], di);
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
	int s = (int)rnd(NSLOT);
	uint64_t max = d->kind == DK_EXACT ? 16384 : GIB / PG;
	uint64_t len = 1 + rnd(max);
	uint64_t off = rnd(GIB / PG - len + 1);

	if (d->slot[s][1]) {
		trace("UNMAP domain %u %#" PRIx64 "+%#" PRIx64 "\n", d->id,
		      d->slot[s][0], d->slot[s][1]);
		ctl_ok(itest_map(&ctl, PROTO_UNMAP, d->id, d->slot[s][0],
				 d->slot[s][1]), "UNMAP");
		d->slot[s][1] = 0;
		st.unmaps++;
	} else {
		d->slot[s][0] = SLOT_IOVA(s) + off * PG;
		d->slot[s][1] = len * PG;
		trace("MAP domain %u %#" PRIx64 "+%#" PRIx64 "\n", d->id,
		      d->slot[s][0], d->slot[s][1]);
		ctl_ok(itest_map(&ctl, PROTO_MAP, d->id, d->slot[s][0],
				 d->slot[s][1]), "MAP");
		iv_add(&d->ever, d->slot[s][0] / PG,
		       (d->slot[s][0] + d->slot[s][1]) / PG);
		st.maps++;
	}
	st.faults[K_MAPPINGS]++;
}

static void ctl_connect(void)
{
	cr_assert_eq(itest_connect(&fd.t, &ctl), 0);
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
				dom_create(di);
				st.faults[K_DOMAINS]++;
			}
		}
	}
	while (live_domains() < 2)
		for (di = 0; di < NDEV; di++)
			if (!doms[di].live) {
				dom_create(di);
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
			cli_subscribe(k, di);
		else if (chance(20))
			cli_unsubscribe(k, di);
	}
}

/* k DMA writes to domain @di, single pages and bursts, anywhere mapped. */
static void writes(int di, int k)
{
	struct dom *d = &doms[di];

	for (int i = 0; i < k; i++) {
		uint64_t iova[NSLOT + 1][2];
		int n = 0, m, j = (int)rnd(NMANY);
		uint64_t pages, len, at, t;

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
		ctl_ok(itest_map(&ctl, PROTO_DMA_WRITE, d->id,
				 iova[m][0] + at * PG, len * PG), "DMA_WRITE");
		t = tick();
		trace("DMA_WRITE domain %u %#" PRIx64 "+%" PRIu64 " pages at %"
		      PRIu64 "\n", d->id, (uint64_t)(iova[m][0] + at * PG), len, t);
		for (uint64_t p = 0; p < len; p++)
			dom_written(d, iova[m][0] / PG + at + p, t);
		st.writes++;
		st.pages_written += len;
	}
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
			writes(di, 1 + (int)rnd(12));
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

/* ------------------------------------------------------------ driver */

static void print_stats(const char *what, const struct stats *s)
{
	fprintf(stderr,
		"fault: %s: %" PRIu64 " rounds, %" PRIu64 " steps\n"
		"fault:   faults: midstream %" PRIu64 " (%" PRIu64 " with the "
		"stream cut), resume %" PRIu64 ", noread %" PRIu64 " (%" PRIu64
		" requests left unread), noack %" PRIu64 ", ackorder %" PRIu64
		" (%" PRIu64 " acks out of order, %" PRIu64 " bogus), domains "
		"%" PRIu64 " (%" PRIu64 " created, %" PRIu64 " destroyed), "
		"mappings %" PRIu64 " (%" PRIu64 " maps, %" PRIu64 " unmaps), "
		"kill %" PRIu64 "\n"
		"fault:   writes %" PRIu64 " (%" PRIu64 " pages), syncs %" PRIu64
		", streams %" PRIu64 " (%" PRIu64 " packets, %" PRIu64
		" multi-packet, %" PRIu64 " pages), EV_ROUND %" PRIu64 "\n"
		"fault:   checks %" PRIu64 ", pages checked %" PRIu64
		", pages LOST %" PRIu64 ", STATE_LOST: %" PRIu64 " in "
		"HELLO_REPLY, %" PRIu64 " events; sessions resumed %" PRIu64
		", adoptions failed %" PRIu64 "\n",
		what, s->rounds, s->steps, s->faults[K_MIDSTREAM],
		s->midstream_cut, s->faults[K_RESUME], s->faults[K_NOREAD],
		s->unread_requests, s->faults[K_NOACK], s->faults[K_ACKORDER],
		s->out_of_order_acks, s->bogus_acks, s->faults[K_DOMAINS],
		s->created, s->destroyed, s->faults[K_MAPPINGS], s->maps,
		s->unmaps, s->faults[K_KILL], s->writes, s->pages_written,
		s->syncs, s->streams, s->packets, s->multi_packet,
		s->pages_received, s->ev_round, s->checks, s->pages_checked,
		s->lost, s->state_lost_hello, s->state_lost_ev, s->resumed,
		s->adopt_failed);
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
	uint64_t end = mono_ms() + seconds * 1000;
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
	for (int i = 0; i < NDEV; i++)
		dom_free(&doms[i]);
	fault_daemon_start(&fd, getenv("FAULT_LOG_LEVEL") ?: "info");
	fprintf(stderr, "fault: restarts %s\n", fault_daemon_describe(&fd));
	ctl_connect();
	for (int i = 0; i < NCLI; i++) {
		struct cli *k = &cl[i];

		*k = (struct cli){ .idx = i };
		k->features = PROTO_FEAT_RESUME |
			      (chance(50) ? PROTO_FEAT_RANGES_RAW : 0) |
			      (chance(50) ? PROTO_FEAT_EVENTS : 0);
		cli_connect(k);
	}
	while ((!rounds || st.rounds < rounds) && mono_ms() < end)
		round_run();
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
	status = fault_daemon_stop(&fd);
	fault_daemon_cleanup(&fd);
	print_stats("seed done", &st);
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

	parse_kinds();
	tracing = env_u64("FAULT_TRACE", 0);
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
	cr_assert_eq(all_seeds.lost, 0);
}
