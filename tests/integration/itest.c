// SPDX-License-Identifier: MIT
/* The daemon-level integration tests' harness: see itest.h. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
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

#include "itest.h"
#include "protocol/chunk.h"

#define REPLY_TIMEOUT_MS 20000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

unsigned int itest_daemon_fds(const struct harness *t)
{
	char path[64];
	unsigned int n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)t->pid);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

void itest_dump_log(const struct harness *t)
{
	harness_dump_log(t, stderr, 0, NULL);
}

void itest_manage(struct harness *t, const char *body, bool store)
{
	struct harness_opts o = { .body = body, .activate = true,
				  .store = store };
	int r;

	cr_assert_not_null(getenv("DIRTYD_BIN"),
			   "DIRTYD_BIN is not set (CTest sets it)");
	r = harness_init(t, &o);
	cr_assert_eq(r, 0, "harness_init: %s", strerror(-r));
}

void itest_up(struct harness *t)
{
	int r = harness_start(t);

	if (r == 0)
		return;
	itest_dump_log(t);
	if (r == -ECHILD)
		cr_assert_fail("dirtyd exited at start (status %#x)",
			       t->wstatus);
	if (r == -ETIMEDOUT)
		cr_assert_fail("dirtyd sent no READY=1 within %d ms",
			       HARNESS_START_MS);
	cr_assert_fail("starting dirtyd: %s", strerror(-r));
}

void itest_start(struct harness *t, const char *body)
{
	struct harness_opts o = { .body = body };
	int r;

	cr_assert_not_null(getenv("DIRTYD_BIN"),
			   "DIRTYD_BIN is not set (CTest sets it)");
	r = harness_init(t, &o);
	cr_assert_eq(r, 0, "harness_init: %s", strerror(-r));
	itest_up(t);
}

int itest_stop(struct harness *t)
{
	int status;

	if (t->pid > 0)
		status = harness_stop(t);
	else
		status = 0;
	if (status == -ETIMEDOUT)
		fprintf(stderr, "dirtyd ignored SIGTERM for %d ms\n",
			HARNESS_STOP_MS);
	if (status != 0)
		itest_dump_log(t);
	harness_fini(t);
	return status;
}

void itest_stop_ok(struct harness *t)
{
	int status = itest_stop(t);

	cr_assert(status == 0, "dirtyd did not exit 0 on SIGTERM (wait "
		  "status %#x)", status);
}

uint64_t itest_vmrss_kib(const struct harness *t)
{
	char path[64], line[256];
	uint64_t kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)t->pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ------------------------------------------------------------ clients */

int itest_connect(const struct harness *t, struct itest_client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	strcpy(sa.sun_path, t->sock);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		return -e;
	}
	return 0;
}

void itest_close(struct itest_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int itest_send_raw(struct itest_client *c, const void *buf, size_t len)
{
	if (send(c->fd, buf, len, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

void itest_send(struct itest_client *c, struct proto_msg *m)
{
	uint8_t buf[PROTO_MAX_MSG];
	int n;

	if (!m->id)
		m->id = c->next_id++;
	n = proto_encode(m, buf, sizeof(buf));
	cr_assert_gt(n, 0, "encoding %s: %s", proto_type_name(m->type),
		     strerror(-n));
	cr_assert_eq(itest_send_raw(c, buf, (size_t)n), 0, "send: %s",
		     strerror(errno));
}

int itest_recv(struct itest_client *c, struct proto_msg *m, int timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int r;

	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(c->fd, c->buf, sizeof(c->buf), MSG_TRUNC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	cr_assert_leq((size_t)n, sizeof(c->buf), "dirtyd sent %zd bytes", n);
	c->len = (size_t)n;
	return proto_decode(c->buf, c->len, m);
}

int itest_wait(struct itest_client *c, uint64_t id, struct proto_msg *reply)
{
	uint64_t end = now_ms() + REPLY_TIMEOUT_MS;

	for (;;) {
		int left = (int)(end - now_ms());
		int r;

		cr_assert_gt(left, 0, "no reply to request %" PRIu64
			     " within %d ms", id, REPLY_TIMEOUT_MS);
		r = itest_recv(c, reply, left);
		if (r == -ETIMEDOUT)
			continue;
		cr_assert_eq(r, 0, "receiving the reply to %" PRIu64 ": %s",
			     id, strerror(-r));
		if (reply->type == PROTO_EV_ROUND) {
			c->ev_round++;
			c->ev_generation = reply->ev_round.generation;
			continue;
		}
		if (reply->type == PROTO_EV_STATE_LOST) {
			c->ev_lost++;
			continue;
		}
		cr_assert_eq(reply->id, id, "got a %s for request %" PRIu64
			     " while waiting for %" PRIu64,
			     proto_type_name(reply->type), reply->id, id);
		if (reply->type != PROTO_ERROR)
			return 0;
		snprintf(c->text, sizeof(c->text), "%.*s",
			 (int)reply->error.text_len, reply->error.text);
		cr_assert_gt(reply->error.err, 0);
		return -(int)reply->error.err;
	}
}

int itest_call(struct itest_client *c, struct proto_msg *req,
	       struct proto_msg *reply)
{
	struct proto_msg tmp;

	itest_send(c, req);
	return itest_wait(c, req->id, reply ? reply : &tmp);
}

void itest_hello(struct itest_client *c, uint64_t features,
		 uint64_t resume_token, struct proto_hello_reply *out)
{
	struct proto_msg m = {
		.type = PROTO_HELLO,
		.hello = { .major = PROTO_VERSION_MAJOR,
			   .minor = PROTO_VERSION_MINOR,
			   .features = features,
			   .resume_token = resume_token },
	}, r;
	int e = itest_call(c, &m, &r);

	cr_assert_eq(e, 0, "HELLO: %s (%s)", strerror(-e), c->text);
	cr_assert_eq(r.type, PROTO_HELLO_REPLY);
	if (out)
		*out = r.hello_reply;
}

int itest_create(struct itest_client *c, const char *device, uint32_t flags,
		 struct proto_create_domain_reply *out)
{
	struct proto_msg m = {
		.type = PROTO_CREATE_DOMAIN,
		.create_domain = { .flags = flags },
	}, r;
	int e;

	snprintf(m.create_domain.device, PROTO_NAME_MAX, "%s", device);
	e = itest_call(c, &m, &r);
	if (!e) {
		cr_assert_eq(r.type, PROTO_CREATE_DOMAIN_REPLY);
		if (out)
			*out = r.create_domain_reply;
	}
	return e;
}

int itest_domain_op(struct itest_client *c, uint16_t type, uint32_t dom)
{
	struct proto_msg m = { .type = type, .domain_op = { dom } }, r;
	int e = itest_call(c, &m, &r);

	if (!e && type != PROTO_SYNC && type != PROTO_STATS)
		cr_assert_eq(r.type, PROTO_OK, "%s answered by %s",
			     proto_type_name(type), proto_type_name(r.type));
	return e;
}

int itest_device_op(struct itest_client *c, uint16_t type, uint32_t dom,
		    const char *device, uint32_t *dev_id)
{
	struct proto_msg m = { .type = type, .device_op = { .domain_id = dom } }, r;
	int e;

	snprintf(m.device_op.device, PROTO_NAME_MAX, "%s", device);
	e = itest_call(c, &m, &r);
	if (!e && type == PROTO_ATTACH_DEVICE && dev_id)
		*dev_id = r.attach_device_reply.dev_id;
	return e;
}

int itest_map(struct itest_client *c, uint16_t type, uint32_t dom,
	      uint64_t iova, uint64_t length)
{
	struct proto_msg m = {
		.type = type,
		.map = {
			.domain_id = dom,
			.flags = type == PROTO_MAP ?
				 PROTO_MAP_READABLE | PROTO_MAP_WRITEABLE : 0,
			.iova = iova,
			.length = length,
		},
	}, r;
	int e = itest_call(c, &m, &r);

	if (!e)
		cr_assert_eq(r.type, PROTO_OK);
	return e;
}

int itest_subscribe(struct itest_client *c, uint32_t dom,
		    uint32_t interval_ms, uint32_t flags,
		    struct proto_subscribe_reply *out)
{
	struct proto_msg m = {
		.type = PROTO_SUBSCRIBE,
		.subscribe = { .domain_id = dom, .interval_ms = interval_ms,
			       .flags = flags },
	}, r;
	int e = itest_call(c, &m, &r);

	if (!e) {
		cr_assert_eq(r.type, PROTO_SUBSCRIBE_REPLY);
		if (out)
			*out = r.subscribe_reply;
	}
	return e;
}

int itest_sync(struct itest_client *c, uint32_t dom, uint64_t *generation)
{
	struct proto_msg m = { .type = PROTO_SYNC, .domain_op = { dom } }, r;
	int e = itest_call(c, &m, &r);

	if (!e) {
		cr_assert_eq(r.type, PROTO_SYNC_REPLY);
		if (generation)
			*generation = r.sync_reply.generation;
	}
	return e;
}

int itest_ack(struct itest_client *c, uint32_t dom, uint64_t generation)
{
	struct proto_msg m = {
		.type = PROTO_ACK,
		.ack = { .domain_id = dom, .generation = generation },
	};

	return itest_call(c, &m, NULL);
}

/* ------------------------------------------------------------ runs */

void itest_runs_add(struct itest_runs *r, uint64_t first, uint64_t count)
{
	if (!count)
		return;
	r->pages += count;
	if (r->n && r->first[r->n - 1] + r->count[r->n - 1] == first) {
		r->count[r->n - 1] += count;
		return;
	}
	cr_assert(!r->n || r->first[r->n - 1] + r->count[r->n - 1] < first,
		  "run %" PRIu64 "+%" PRIu64 " is not after the previous one",
		  first, count);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->first = realloc(r->first, r->cap * sizeof(*r->first));
		r->count = realloc(r->count, r->cap * sizeof(*r->count));
		cr_assert(r->first && r->count);
	}
	r->first[r->n] = first;
	r->count[r->n++] = count;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void itest_runs_from_pages(struct itest_runs *r, uint64_t *pages, size_t n)
{
	qsort(pages, n, sizeof(*pages), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (!i || pages[i] != pages[i - 1])
			itest_runs_add(r, pages[i], 1);
}

void itest_runs_free(struct itest_runs *r)
{
	free(r->first);
	free(r->count);
	memset(r, 0, sizeof(*r));
}

static void runs_print(const char *name, const struct itest_runs *r)
{
	fprintf(stderr, "%s: %zu runs, %" PRIu64 " pages:", name, r->n,
		r->pages);
	for (size_t i = 0; i < r->n && i < 40; i++)
		fprintf(stderr, " %" PRIx64 "+%" PRIu64, r->first[i],
			r->count[i]);
	fprintf(stderr, r->n > 40 ? " ...\n" : "\n");
}

void itest_runs_assert_eq(const struct itest_runs *got,
			  const struct itest_runs *want, const char *what)
{
	bool eq = got->n == want->n && got->pages == want->pages;

	for (size_t i = 0; eq && i < got->n; i++)
		eq = got->first[i] == want->first[i] &&
		     got->count[i] == want->count[i];
	if (!eq) {
		runs_print("got ", got);
		runs_print("want", want);
	}
	cr_assert(eq, "%s: the page sets differ (%" PRIu64 " pages in %zu "
		  "runs, expected %" PRIu64 " in %zu)", what, got->pages,
		  got->n, want->pages, want->n);
}

/* ------------------------------------------------------------ streams */

struct decode_ctx {
	struct itest_runs *out;
	uint64_t end;		/* first page after the previous chunk */
};

static int decode_run(void *ctx, uint64_t first, uint64_t count)
{
	struct decode_ctx *d = ctx;

	itest_runs_add(d->out, first, count);
	return 0;
}

int itest_get_ranges(struct itest_client *c, uint32_t dom, uint32_t flags,
		     struct itest_runs *out, struct itest_ranges *info)
{
	struct proto_msg m = {
		.type = PROTO_GET_RANGES,
		.get_ranges = { .domain_id = dom, .flags = flags },
	};

	itest_send(c, &m);
	return itest_read_ranges(c, m.id, dom, out, info);
}

int itest_read_ranges(struct itest_client *c, uint64_t id, uint32_t dom,
		      struct itest_runs *out, struct itest_ranges *info)
{
	struct decode_ctx dc = { .out = out };
	struct itest_ranges in = { 0 };
	struct proto_msg r;
	int e;

	itest_runs_free(out);
	for (uint32_t seq = 0;; seq++) {
		const uint8_t *p;
		size_t left;

		e = itest_wait(c, id, &r);
		if (e)
			return e;
		cr_assert_eq(r.type, PROTO_RANGES);
		cr_assert_eq(r.ranges.seq, seq, "RANGES packet %u has seq %u",
			     seq, r.ranges.seq);
		cr_assert_eq(r.ranges.domain_id, dom);
		if (seq) {
			cr_assert_eq(r.ranges.generation, in.generation);
			cr_assert_eq(r.ranges.total_pages, in.total_pages);
		}
		in.generation = r.ranges.generation;
		in.total_pages = r.ranges.total_pages;
		in.packets++;
		p = r.ranges.chunks;
		left = r.ranges.chunks_len;
		for (uint32_t i = 0; i < r.ranges.nchunks; i++) {
			uint64_t first;
			uint32_t span;
			int n;

			chunk_peek(p, &first, &span);
			cr_assert_geq(first, dc.end, "chunks out of order");
			dc.end = first + span;
			if (p[12] == CHUNK_RAW)
				in.raw_chunks++;
			n = chunk_decode(p, left, decode_run, &dc);
			cr_assert_gt(n, 0, "chunk %u does not decode", i);
			p += n;
			left -= (size_t)n;
			in.chunks++;
		}
		cr_assert_eq(left, 0u, "bytes after the last chunk");
		if (!(r.flags & PROTO_F_MORE))
			break;
	}
	cr_assert_eq(out->pages, in.total_pages, "total_pages %" PRIu64
		     " but the chunks hold %" PRIu64, in.total_pages,
		     out->pages);
	if (info)
		*info = in;
	return 0;
}

/* ------------------------------------------------------------ lists */

unsigned int itest_list_domains(struct itest_client *c,
				struct proto_domain *out, unsigned int max)
{
	struct proto_msg m = { .type = PROTO_LIST_DOMAINS }, r;
	unsigned int n = 0;

	itest_send(c, &m);
	do {
		int e = itest_wait(c, m.id, &r);

		cr_assert_eq(e, 0, "LIST_DOMAINS: %s", c->text);
		cr_assert_eq(r.type, PROTO_LIST_DOMAINS_REPLY);
		for (uint32_t i = 0; i < r.list.count; i++, n++)
			if (n < max)
				proto_domain_at(&r, i, &out[n]);
	} while (r.flags & PROTO_F_MORE);
	return n;
}

unsigned int itest_list_devices(struct itest_client *c,
				struct proto_device *out, unsigned int max)
{
	struct proto_msg m = { .type = PROTO_LIST_DEVICES }, r;
	unsigned int n = 0;

	itest_send(c, &m);
	do {
		int e = itest_wait(c, m.id, &r);

		cr_assert_eq(e, 0, "LIST_DEVICES: %s", c->text);
		cr_assert_eq(r.type, PROTO_LIST_DEVICES_REPLY);
		for (uint32_t i = 0; i < r.list.count; i++, n++)
			if (n < max)
				proto_device_at(&r, i, &out[n]);
	} while (r.flags & PROTO_F_MORE);
	return n;
}

void itest_run_child(void (*fn)(long), long arg, const char *who)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the %s child failed (status %#x; its reason is above)", who,
		  status);
}

void itest_need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch uids and groups (CI runs "
			     "as root); skipped");
}
