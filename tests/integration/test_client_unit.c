// SPDX-License-Identifier: MIT
/*
 * libdirty against a scripted peer: a child process listens on a socket in
 * a temporary directory and plays dirtyd's side of one exchange, packet by
 * packet, including what a correct dirtyd never sends (malformed chunks,
 * replies out of order, stray descriptors).  The child checks what the
 * library sends and exits non-zero, saying why, on any surprise; the test
 * checks what the library returns.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirtyd/dirty.h>

#include "protocol/chunk.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

#define TOKEN 0x1234abcd5678ef01ULL

struct peer {
	char dir[64];
	char path[108];
	int lfd;
	pid_t pid;
};

typedef void (*peer_script)(struct peer *p);

/* ---- the peer's side (child process) ---- */

static void peer_die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
							  noreturn));

static void peer_die(const char *fmt, ...)
{
	va_list ap;

	fputs("peer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

static int peer_accept(struct peer *p)
{
	int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		peer_die("accept: %m");
	return fd;
}

static uint8_t peer_buf[PROTO_MAX_MSG];

/* The next request, decoded (its variable parts live in peer_buf). */
static struct proto_msg peer_recv(int fd)
{
	struct proto_msg m;
	ssize_t n = recv(fd, peer_buf, sizeof(peer_buf), 0);

	if (n <= 0)
		peer_die("recv: %zd (%m)", n);
	if (proto_decode(peer_buf, (size_t)n, &m) < 0)
		peer_die("undecodable request");
	return m;
}

static struct proto_msg peer_expect(int fd, uint16_t type)
{
	struct proto_msg m = peer_recv(fd);

	if (m.type != type)
		peer_die("expected %s, got %s", proto_type_name(type),
			 proto_type_name(m.type));
	if (!m.id)
		peer_die("request with id 0");
	return m;
}

static void peer_send_raw(int fd, const void *buf, size_t len,
			  const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		peer_die("send: %m");
}

static void peer_send(int fd, const struct proto_msg *m)
{
	uint8_t buf[PROTO_MAX_MSG];
	int len = proto_encode(m, buf, sizeof(buf));

	if (len < 0)
		peer_die("encode %s: %d", proto_type_name(m->type), len);
	peer_send_raw(fd, buf, (size_t)len, NULL, 0);
}

static void peer_ok(int fd, uint64_t id)
{
	peer_send(fd, &(struct proto_msg){ .type = PROTO_OK, .id = id });
}

static void peer_error(int fd, uint64_t id, uint32_t err, const char *text)
{
	struct proto_msg m = {
		.type = PROTO_ERROR,
		.id = id,
		.error = { .err = err, .text = text, .text_len = strlen(text) },
	};

	peer_send(fd, &m);
}

/* LIST_DOMAINS_REPLY to @id: the @n domains at @doms. */
static void peer_domains(int fd, uint64_t id, const struct proto_domain *doms,
			 size_t n)
{
	static uint8_t buf[PROTO_MAX_MSG];
	struct proto_list_builder lb;
	int len;

	proto_list_begin(&lb, buf, sizeof(buf), PROTO_LIST_DOMAINS_REPLY, id);
	for (size_t i = 0; i < n; i++)
		proto_list_add_domain(&lb, &doms[i]);
	len = proto_list_end(&lb, false);
	peer_send_raw(fd, buf, (size_t)len, NULL, 0);
}

/* Expect HELLO (with @token), answer with @session_flags. */
static void peer_hello(int fd, uint64_t token, uint32_t session_flags)
{
	struct proto_msg m = peer_expect(fd, PROTO_HELLO);
	struct proto_msg r = {
		.type = PROTO_HELLO_REPLY,
		.id = m.id,
		.hello_reply = {
			.major = PROTO_VERSION_MAJOR,
			.minor = PROTO_VERSION_MINOR,
			.max_msg = PROTO_MAX_MSG,
			.features = m.hello.features,
			.session_token = m.hello.features & PROTO_FEAT_RESUME ?
					 TOKEN : 0,
			.uid = 1000,
			.gid = 1000,
			.session_flags = session_flags,
		},
	};

	if (m.hello.resume_token != token)
		peer_die("HELLO token %#llx, expected %#llx",
			 (unsigned long long)m.hello.resume_token,
			 (unsigned long long)token);
	if (m.hello.major != PROTO_VERSION_MAJOR)
		peer_die("HELLO major %u", m.hello.major);
	peer_send(fd, &r);
}

/* Read until the client closes the connection. */
static void peer_wait_close(int fd)
{
	ssize_t n = recv(fd, peer_buf, sizeof(peer_buf), 0);

	if (n != 0)
		peer_die("expected the client to close, got %zd", n);
	close(fd);
}

/* One chunk with pages [first + a, first + b) of a 32768-page span. */
static size_t chunk_run(uint8_t *out, uint64_t first, uint32_t a, uint32_t b)
{
	static uint64_t bits[CHUNK_MAX_PAGES / 64];
	int n;

	memset(bits, 0, sizeof(bits));
	for (uint32_t i = a; i < b; i++)
		bits[i / 64] |= 1ULL << (i % 64);
	n = chunk_encode(first, CHUNK_MAX_PAGES, bits, out);
	if (n <= 0)
		peer_die("chunk_encode: %d", n);
	return (size_t)n;
}

/* A RANGES packet with @nchunks chunks of @len bytes, written by hand so
 * that it can be as wrong as a test needs. */
static void peer_ranges(int fd, uint64_t id, uint64_t gen, uint32_t domain,
			uint32_t seq, uint64_t total, const uint8_t *chunks,
			size_t len, uint32_t nchunks, bool more)
{
	uint8_t buf[PROTO_MAX_MSG];
	size_t plen = PROTO_HEADER_SIZE + PROTO_RANGES_FIXED + len;

	memset(buf, 0, PROTO_HEADER_SIZE + PROTO_RANGES_FIXED);
	wire_put_le16(buf, PROTO_RANGES);
	wire_put_le16(buf + 2, more ? PROTO_F_MORE : 0);
	wire_put_le32(buf + 4, (uint32_t)plen);
	wire_put_le64(buf + 8, id);
	wire_put_le64(buf + 16, gen);
	wire_put_le32(buf + 24, domain);
	wire_put_le32(buf + 28, seq);
	wire_put_le64(buf + 32, total);
	wire_put_le32(buf + 40, nchunks);
	if (len)
		memcpy(buf + PROTO_HEADER_SIZE + PROTO_RANGES_FIXED, chunks,
		       len);
	peer_send_raw(fd, buf, plen, NULL, 0);
}

/* ---- the test's side ---- */

static void peer_start(struct peer *p, peer_script script)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	strcpy(p->dir, "/tmp/libdirty-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(p->dir));
	snprintf(p->path, sizeof(p->path), "%s/sock", p->dir);
	strcpy(addr.sun_path, p->path);
	p->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(p->lfd, 0);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(p->lfd, 4), 0);
	fflush(NULL);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		script(p);
		_exit(0);
	}
	close(p->lfd);
}

/* The peer must have run its script to the end. */
static void peer_finish(struct peer *p)
{
	int status;

	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	unlink(p->path);
	rmdir(p->dir);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the peer's script failed (status %#x)", status);
}

static struct dirty *client(struct peer *p, uint64_t flags)
{
	struct dirty *d = NULL;
	int r = dirty_connect(p->path, flags, &d);

	cr_assert_eq(r, 0, "dirty_connect: %s", strerror(-r));
	return d;
}

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	while (dir && readdir(dir))
		n++;
	if (dir)
		closedir(dir);
	return n;
}

/* Collects the runs dirty_ranges() reports. */
struct runs {
	unsigned int n;
	uint64_t first[64];
	uint64_t count[64];
	uint64_t pages;
	int stop_after;		/* return 7 from this run on (1-based) */
};

static int collect(void *ctx, uint64_t first, uint64_t count)
{
	struct runs *r = ctx;

	if (r->n < 64) {
		r->first[r->n] = first;
		r->count[r->n] = count;
	}
	r->n++;
	r->pages += count;
	if (r->stop_after && (int)r->n >= r->stop_after)
		return 7;
	return 0;
}

/* ---- tests ---- */

static void script_error(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m;

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_CREATE_DOMAIN);
	if (strcmp(m.create_domain.device, "sim-legacy0") ||
	    m.create_domain.flags != PROTO_CREATE_TRACKING)
		peer_die("CREATE_DOMAIN %s %#x", m.create_domain.device,
			 m.create_domain.flags);
	peer_error(fd, m.id, EOPNOTSUPP, "device sim-legacy0 cannot track "
		   "dirty pages");
	m = peer_expect(fd, PROTO_TRACK_START);
	peer_ok(fd, m.id);
	peer_wait_close(fd);
}

Test(libdirty_unit, error_reply_is_errno_and_text)
{
	struct peer p;
	struct dirty *d;
	uint32_t dom;

	peer_start(&p, script_error);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_session_token(d), 0);
	cr_assert_null(dirty_last_error_text(d));
	cr_assert_eq(dirty_domain_create(d, "sim-legacy0",
					 DIRTY_CREATE_TRACKING, &dom, NULL),
		     -EOPNOTSUPP);
	cr_assert_str_eq(dirty_last_error_text(d),
			 "device sim-legacy0 cannot track dirty pages");
	/* the next call that succeeds clears it */
	cr_assert_eq(dirty_track_start(d, 1), 0);
	cr_assert_null(dirty_last_error_text(d));
	dirty_close(d);
	peer_finish(&p);
}

Test(libdirty_unit, bad_arguments_never_reach_the_wire)
{
	struct dirty *d = NULL;
	uint32_t dom;
	char longname[80];

	cr_assert_eq(dirty_connect("/nonexistent/dirtyd.sock", 0, &d),
		     -ENOENT);
	cr_assert_null(d);
	cr_assert_eq(dirty_connect(NULL, 1 << 7, &d), -EINVAL);
	cr_assert_eq(dirty_connect_resume(NULL, 0, 0, &d), -EINVAL);
	cr_assert_eq(dirty_connect_resume(NULL, 1, DIRTY_CONNECT_NO_RESUME,
					  &d), -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(dirty_connect(longname, 0, &d), -ENOENT);
	char longpath[200];

	memset(longpath, 'y', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	cr_assert_eq(dirty_connect(longpath, 0, &d), -ENAMETOOLONG);
	/* NULL handles */
	cr_assert_eq(dirty_domain_create(NULL, "x", 0, &dom, NULL), -EINVAL);
	cr_assert_eq(dirty_fd(NULL), -EINVAL);
	cr_assert_null(dirty_last_error_text(NULL));
	dirty_close(NULL);
	dirty_fds_free(NULL);
}

static void script_hello_refused(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m = peer_expect(fd, PROTO_HELLO);

	/* as dirtyd answers a client beyond max_clients */
	peer_error(fd, 0, EUSERS, "too many clients (max 1)");
	close(fd);
	fd = peer_accept(p);
	m = peer_expect(fd, PROTO_HELLO);
	m.type = PROTO_HELLO_REPLY;
	m.hello_reply = (struct proto_hello_reply){
		.major = 2,
		.max_msg = PROTO_MAX_MSG,
	};
	peer_send(fd, &m);
	close(fd);
}

Test(libdirty_unit, hello_refused)
{
	struct peer p;
	struct dirty *d = NULL;

	peer_start(&p, script_hello_refused);
	cr_assert_eq(dirty_connect(p.path, 0, &d), -EUSERS);
	cr_assert_null(d);
	cr_assert_eq(dirty_connect(p.path, 0, &d), -EPROTONOSUPPORT);
	peer_finish(&p);
}

static void script_malformed_chunk(struct peer *p)
{
	uint8_t chunks[2 * CHUNK_MAX_SIZE];
	int fd = peer_accept(p);
	struct proto_msg m;
	size_t n;

	peer_hello(fd, 0, 0);
	/* 1: a good packet, then one whose chunk has a run of 0 pages */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 0, 10);
	peer_ranges(fd, m.id, 4, 1, 0, 20, chunks, n, 1, true);
	n = chunk_run(chunks, 32768, 0, 10);
	chunks[CHUNK_HEADER_SIZE + 1] = 0;	/* (gap 0, run 0) */
	peer_ranges(fd, m.id, 4, 1, 1, 20, chunks, n, 1, true);
	peer_ranges(fd, m.id, 4, 1, 2, 20, NULL, 0, 0, false);
	/* the rest of the stream is stale: the next call still works */
	m = peer_expect(fd, PROTO_ACK);
	peer_ok(fd, m.id);

	/* 2: runs out of order across packets */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 65536, 0, 10);
	peer_ranges(fd, m.id, 5, 1, 0, 20, chunks, n, 1, true);
	n = chunk_run(chunks, 0, 0, 10);
	peer_ranges(fd, m.id, 5, 1, 1, 20, chunks, n, 1, false);

	/* 3: fewer pages than total_pages said */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 0, 10);
	peer_ranges(fd, m.id, 6, 1, 0, 11, chunks, n, 1, false);

	/* 4: a packet of another generation in the stream */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 0, 10);
	peer_ranges(fd, m.id, 7, 1, 0, 20, chunks, n, 1, true);
	n = chunk_run(chunks, 32768, 0, 10);
	peer_ranges(fd, m.id, 8, 1, 1, 20, chunks, n, 1, false);

	/* 5: a sequence number skipped */
	m = peer_expect(fd, PROTO_GET_RANGES);
	peer_ranges(fd, m.id, 9, 1, 0, 0, NULL, 0, 0, true);
	peer_ranges(fd, m.id, 9, 1, 2, 0, NULL, 0, 0, false);

	/* 6: a well-formed stream after all that */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 100, 200);
	peer_ranges(fd, m.id, 10, 1, 0, 100, chunks, n, 1, false);
	peer_wait_close(fd);
}

Test(libdirty_unit, malformed_ranges_are_ebadmsg)
{
	struct runs runs = { 0 };
	struct peer p;
	struct dirty *d;
	uint64_t gen = 0;

	peer_start(&p, script_malformed_chunk);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), -EBADMSG);
	cr_assert_eq(dirty_ack(d, 1, 4), 0);
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), -EBADMSG);
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), -EBADMSG);
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), -EBADMSG);
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), -EBADMSG);
	cr_assert_eq(gen, 0, "no generation is given for a bad stream");
	memset(&runs, 0, sizeof(runs));
	cr_assert_eq(dirty_ranges(d, 1, 0, collect, &runs, &gen), 0);
	cr_assert_eq(gen, 10);
	cr_assert_eq(runs.n, 1);
	cr_assert_eq(runs.first[0], 100);
	cr_assert_eq(runs.count[0], 100);
	dirty_close(d);
	peer_finish(&p);
}

static void script_ranges_merge(struct peer *p)
{
	uint8_t chunks[3 * CHUNK_MAX_SIZE];
	int fd = peer_accept(p);
	struct proto_msg m;
	size_t n;

	peer_hello(fd, 0, 0);
	for (int round = 0; round < 2; round++) {
		/* [32760, 32778) crosses a chunk boundary and a packet
		 * boundary; [70000, 70005) stands alone */
		m = peer_expect(fd, PROTO_GET_RANGES);
		if (m.get_ranges.flags != (round ? PROTO_RANGES_RESEND : 0))
			peer_die("GET_RANGES flags %#x", m.get_ranges.flags);
		n = chunk_run(chunks, 0, 32760, 32768);
		peer_ranges(fd, m.id, 3, 2, 0, 23, chunks, n, 1, true);
		n = chunk_run(chunks, 32768, 0, 10);
		n += chunk_run(chunks + n, 65536, 70000 - 65536,
			       70005 - 65536);
		peer_ranges(fd, m.id, 3, 2, 1, 23, chunks, n, 2, false);
	}
	m = peer_expect(fd, PROTO_ACK);
	if (m.ack.domain_id != 2 || m.ack.generation != 3)
		peer_die("ACK %u %llu", m.ack.domain_id,
			 (unsigned long long)m.ack.generation);
	peer_ok(fd, m.id);
	peer_wait_close(fd);
}

Test(libdirty_unit, adjacent_runs_merge_and_ack_flag)
{
	struct runs runs = { 0 };
	struct peer p;
	struct dirty *d;
	uint64_t gen;

	peer_start(&p, script_ranges_merge);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_ranges(d, 2, 0, collect, &runs, &gen), 0);
	cr_assert_eq(gen, 3);
	cr_assert_eq(runs.n, 2);
	cr_assert_eq(runs.first[0], 32760);
	cr_assert_eq(runs.count[0], 18);
	cr_assert_eq(runs.first[1], 70000);
	cr_assert_eq(runs.count[1], 5);
	memset(&runs, 0, sizeof(runs));
	cr_assert_eq(dirty_ranges(d, 2, DIRTY_RANGES_RESEND | DIRTY_RANGES_ACK,
				  collect, &runs, &gen), 0);
	cr_assert_eq(runs.pages, 23);
	dirty_close(d);
	peer_finish(&p);
}

/*
 * RAW chunks, decoded a word at a time: span 0 holds every other page and
 * a run reaching its end; span 1 (the next packet) starts with a run
 * crossing a word, then every other page again.  The run at the seam
 * comes out whole: [32766, 32768 + 70).
 */
#define RAW_PAGES (2 * CHUNK_MAX_PAGES)

static void raw_pattern(uint64_t *bits)
{
	memset(bits, 0, RAW_PAGES / 8);
	for (uint32_t p = 0; p < RAW_PAGES; p++)
		if ((p < CHUNK_MAX_PAGES && p % 2 == 0) ||
		    (p >= CHUNK_MAX_PAGES - 2 && p < CHUNK_MAX_PAGES + 70) ||
		    (p >= CHUNK_MAX_PAGES + 100 && p % 2 == 1))
			bits[p / 64] |= 1ULL << (p % 64);
}

static void script_raw_seam(struct peer *p)
{
	static uint64_t bits[RAW_PAGES / 64];
	static uint8_t chunk[CHUNK_MAX_SIZE];
	uint64_t total = 0;
	int fd = peer_accept(p);
	struct proto_msg m;

	raw_pattern(bits);
	for (unsigned int w = 0; w < RAW_PAGES / 64; w++)
		total += (uint64_t)__builtin_popcountll(bits[w]);
	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_GET_RANGES);
	for (uint32_t s = 0; s < 2; s++) {
		int n = chunk_encode(s * CHUNK_MAX_PAGES, CHUNK_MAX_PAGES,
				     bits + s * CHUNK_MAX_PAGES / 64, chunk);

		if (n <= 0 || chunk[12] != CHUNK_RAW)
			peer_die("span %u: not a RAW chunk (%d)", s, n);
		peer_ranges(fd, m.id, 12, 3, s, total, chunk, (size_t)n, 1,
			    s == 0);
	}
	peer_wait_close(fd);
}

/* The pages reported, and whether each run was maximal and in order. */
struct raw_seen {
	uint64_t bits[RAW_PAGES / 64];
	uint64_t runs, end;
	bool maximal;
};

static int raw_collect(void *ctx, uint64_t first, uint64_t count)
{
	struct raw_seen *r = ctx;

	if (r->runs && first <= r->end)
		r->maximal = false;	/* touching or behind the last */
	r->runs++;
	r->end = first + count;
	for (uint64_t p = first; p < first + count && p < RAW_PAGES; p++)
		r->bits[p / 64] |= 1ULL << (p % 64);
	return 0;
}

Test(libdirty_unit, raw_chunks_merge_at_word_chunk_and_packet_seams)
{
	static struct raw_seen seen = { .maximal = true };
	static uint64_t want[RAW_PAGES / 64];
	struct peer p;
	struct dirty *d;
	uint64_t gen = 0;

	raw_pattern(want);
	peer_start(&p, script_raw_seam);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_ranges(d, 3, 0, raw_collect, &seen, &gen), 0);
	cr_assert_eq(gen, 12);
	cr_assert(seen.maximal, "a run was cut or out of order");
	cr_assert_eq(memcmp(seen.bits, want, sizeof(want)), 0);
	/* 16383 single pages, the seam's run, 16334 single pages */
	cr_assert_eq(seen.runs, 16383 + 1 + (CHUNK_MAX_PAGES - 100) / 2);
	dirty_close(d);
	peer_finish(&p);
}

static void script_callback_stop(struct peer *p)
{
	uint8_t chunks[3 * CHUNK_MAX_SIZE];
	int fd = peer_accept(p);
	struct proto_msg m;
	size_t n;

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 0, 1);
	n += chunk_run(chunks + n, 32768, 5, 6);
	peer_ranges(fd, m.id, 1, 1, 0, 3, chunks, n, 2, true);
	n = chunk_run(chunks, 65536, 0, 1);
	peer_ranges(fd, m.id, 1, 1, 1, 3, chunks, n, 1, false);
	m = peer_expect(fd, PROTO_SYNC);
	m.type = PROTO_SYNC_REPLY;
	m.sync_reply = (struct proto_sync_reply){ .generation = 2,
						  .pending_pages = 3 };
	peer_send(fd, &m);
	peer_wait_close(fd);
}

Test(libdirty_unit, callback_stops_the_report_not_the_connection)
{
	struct runs runs = { .stop_after = 1 };
	struct peer p;
	struct dirty *d;
	uint64_t gen = 99, pending;

	peer_start(&p, script_callback_stop);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_ranges(d, 1, DIRTY_RANGES_ACK, collect, &runs,
				  &gen), 7);
	cr_assert_eq(runs.n, 1);
	cr_assert_eq(gen, 99);
	cr_assert_eq(dirty_sync(d, 1, &gen, &pending), 0);
	cr_assert_eq(gen, 2);
	cr_assert_eq(pending, 3);
	dirty_close(d);
	peer_finish(&p);
}

static void script_state_lost(struct peer *p)
{
	uint8_t chunks[CHUNK_MAX_SIZE];
	int fd = peer_accept(p);
	struct proto_msg m;
	size_t n;

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_SUBSCRIBE);
	if (m.subscribe.domain_id != 5 || m.subscribe.interval_ms != 250 ||
	    m.subscribe.flags != PROTO_SUBSCRIBE_CLEAN)
		peer_die("SUBSCRIBE %u %u %#x", m.subscribe.domain_id,
			 m.subscribe.interval_ms, m.subscribe.flags);
	m.type = PROTO_SUBSCRIBE_REPLY;
	m.subscribe_reply = (struct proto_subscribe_reply){
		.domain_id = 5, .page_size = 4096, .max_leaf = 4096,
		.generation = 17,
	};
	peer_send(fd, &m);
	/* dirtyd goes away (a restart) while a SYNC waits */
	peer_expect(fd, PROTO_SYNC);
	close(fd);

	/* the reconnect: dirtyd does not know the token */
	fd = peer_accept(p);
	peer_hello(fd, TOKEN, PROTO_SESSION_STATE_LOST);
	/* dirty_ranges() subscribes again, without CLEAN: every page */
	m = peer_expect(fd, PROTO_UNSUBSCRIBE);
	if (m.domain_op.domain_id != 5)
		peer_die("UNSUBSCRIBE %u", m.domain_op.domain_id);
	peer_error(fd, m.id, ENOENT, "not subscribed to domain 5");
	m = peer_expect(fd, PROTO_SUBSCRIBE);
	if (m.subscribe.domain_id != 5 || m.subscribe.interval_ms != 250 ||
	    m.subscribe.flags != 0)
		peer_die("re-SUBSCRIBE %u %u %#x", m.subscribe.domain_id,
			 m.subscribe.interval_ms, m.subscribe.flags);
	m.type = PROTO_SUBSCRIBE_REPLY;
	m.subscribe_reply = (struct proto_subscribe_reply){
		.domain_id = 5, .page_size = 4096, .max_leaf = 4096,
	};
	peer_send(fd, &m);
	/* every mapped page: 4096 of them */
	m = peer_expect(fd, PROTO_GET_RANGES);
	n = chunk_run(chunks, 0, 0, 4096);
	peer_ranges(fd, m.id, 1, 5, 0, 4096, chunks, n, 1, false);
	/* once only */
	m = peer_expect(fd, PROTO_GET_RANGES);
	peer_ranges(fd, m.id, 1, 5, 0, 0, NULL, 0, 0, false);
	peer_wait_close(fd);
}

Test(libdirty_unit, state_lost_reports_every_page)
{
	struct runs runs = { 0 };
	struct dirty_session s = { .size = sizeof(s) };
	struct peer p;
	struct dirty *d;
	uint64_t gen;

	peer_start(&p, script_state_lost);
	d = client(&p, 0);
	cr_assert_eq(dirty_session_token(d), TOKEN);
	cr_assert_eq(dirty_subscribe(d, 5, 250, DIRTY_SUBSCRIBE_CLEAN, NULL),
		     0);
	cr_assert_eq(dirty_sync(d, 5, &gen, NULL), -ECONNRESET);
	cr_assert_eq(dirty_reconnect(d), 0);
	cr_assert_eq(dirty_session(d, &s), 0);
	cr_assert_eq(s.flags, DIRTY_SESSION_STATE_LOST);
	cr_assert_eq(dirty_ranges(d, 5, 0, collect, &runs, &gen), 0);
	cr_assert_eq(runs.n, 1);
	cr_assert_eq(runs.first[0], 0);
	cr_assert_eq(runs.count[0], 4096);
	memset(&runs, 0, sizeof(runs));
	cr_assert_eq(dirty_ranges(d, 5, 0, collect, &runs, &gen), 0);
	cr_assert_eq(runs.n, 0);
	dirty_close(d);
	peer_finish(&p);
}

static void script_resumed(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m;

	peer_hello(fd, TOKEN, PROTO_SESSION_RESUMED);
	/* no re-subscription: straight to the ranges */
	m = peer_expect(fd, PROTO_GET_RANGES);
	peer_ranges(fd, m.id, 1, 5, 0, 0, NULL, 0, 0, false);
	peer_wait_close(fd);
}

Test(libdirty_unit, resumed_session_keeps_subscriptions)
{
	struct runs runs = { 0 };
	struct dirty_session s = { .size = sizeof(s) };
	struct peer p;
	struct dirty *d = NULL;
	uint64_t gen;

	peer_start(&p, script_resumed);
	cr_assert_eq(dirty_connect_resume(p.path, TOKEN, 0, &d), 0);
	cr_assert_eq(dirty_session(d, &s), 0);
	cr_assert_eq(s.flags, DIRTY_SESSION_RESUMED);
	cr_assert_eq(s.uid, 1000);
	cr_assert_eq(s.features, PROTO_FEATURES_ALL);
	cr_assert_eq(dirty_ranges(d, 5, 0, collect, &runs, &gen), 0);
	dirty_close(d);
	peer_finish(&p);
}

static void send_ev_round(int fd, uint32_t domain, uint64_t gen)
{
	struct proto_msg ev = {
		.type = PROTO_EV_ROUND,
		.ev_round = { .domain_id = domain, .generation = gen,
			      .round_pages = gen * 10, .pending_pages = 5 },
	};

	peer_send(fd, &ev);
}

static void script_events(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m, lost = { .type = PROTO_EV_STATE_LOST };

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_SYNC);
	/* events before the answer: the latest round per domain wins */
	send_ev_round(fd, 3, 1);
	send_ev_round(fd, 4, 1);
	send_ev_round(fd, 3, 2);
	lost.domain_op.domain_id = 3;
	peer_send(fd, &lost);
	m.type = PROTO_SYNC_REPLY;
	m.sync_reply = (struct proto_sync_reply){ .generation = 2 };
	peer_send(fd, &m);
	/* one more while idle */
	send_ev_round(fd, 4, 9);
	peer_wait_close(fd);
}

Test(libdirty_unit, events_are_queued_and_coalesced)
{
	struct dirty_event ev = { .size = sizeof(ev) };
	struct peer p;
	struct dirty *d;
	uint64_t gen;

	peer_start(&p, script_events);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_sync(d, 3, &gen, NULL), 0);
	cr_assert_eq(dirty_next_event(d, &ev), 1);
	cr_assert_eq(ev.type, DIRTY_EVENT_ROUND);
	cr_assert_eq(ev.domain_id, 3);
	cr_assert_eq(ev.generation, 2, "the latest round of domain 3");
	cr_assert_eq(ev.round_pages, 20);
	cr_assert_eq(dirty_next_event(d, &ev), 1);
	cr_assert_eq(ev.domain_id, 4);
	cr_assert_eq(ev.generation, 1);
	cr_assert_eq(dirty_next_event(d, &ev), 1);
	cr_assert_eq(ev.type, DIRTY_EVENT_STATE_LOST);
	cr_assert_eq(ev.domain_id, 3);
	/* the idle one arrives on the socket: poll, then read it */
	struct pollfd pfd = { .fd = dirty_fd(d), .events = POLLIN };

	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	cr_assert_eq(dirty_next_event(d, &ev), 1);
	cr_assert_eq(ev.domain_id, 4);
	cr_assert_eq(ev.generation, 9);
	cr_assert_eq(dirty_next_event(d, &ev), 0);
	dirty_close(d);
	peer_finish(&p);
}

static void script_timeout(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m, late;

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_SYNC);
	late = m;
	/* the client gives up after 100 ms; answer SYNC only once the next
	 * request is there */
	m = peer_expect(fd, PROTO_ACK);
	late.type = PROTO_SYNC_REPLY;
	late.sync_reply = (struct proto_sync_reply){ .generation = 1 };
	peer_send(fd, &late);
	peer_ok(fd, m.id);
	peer_wait_close(fd);
}

Test(libdirty_unit, late_answers_are_discarded)
{
	struct peer p;
	struct dirty *d;
	uint64_t gen;

	peer_start(&p, script_timeout);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_set_timeout(d, -1), -EINVAL);
	cr_assert_eq(dirty_set_timeout(d, 100), 0);
	cr_assert_eq(dirty_sync(d, 1, &gen, NULL), -ETIMEDOUT);
	cr_assert_eq(dirty_ack(d, 1, 1), 0);
	dirty_close(d);
	peer_finish(&p);
}

static void script_fds(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_builder_buf {
		uint8_t b[PROTO_MAX_MSG];
	} *buf = malloc(sizeof(*buf));
	struct proto_list_builder lb;
	struct proto_msg m;
	int pass[3], len;

	peer_hello(fd, 0, 0);
	/* GET_FDS: the iommufd and two devices */
	m = peer_expect(fd, PROTO_GET_FDS);
	pass[0] = open("/dev/null", O_RDONLY);
	pass[1] = open("/dev/zero", O_RDONLY);
	pass[2] = open("/dev/null", O_WRONLY);
	proto_list_begin(&lb, buf->b, sizeof(buf->b), PROTO_GET_FDS_REPLY,
			 m.id);
	proto_list_set_fds_ids(&lb, 2, 3);
	proto_list_add_fd_device(&lb, &(struct proto_fd_device){
		.name = "vfio0", .dev_id = 7, .fd_index = 2 });
	proto_list_add_fd_device(&lb, &(struct proto_fd_device){
		.name = "vfio1", .dev_id = 8, .fd_index = 1 });
	len = proto_list_end(&lb, false);
	peer_send_raw(fd, buf->b, (size_t)len, pass, 3);
	/* an OK that carries a descriptor nobody asked for */
	m = peer_expect(fd, PROTO_TRACK_STOP);
	len = proto_encode(&(struct proto_msg){ .type = PROTO_OK,
						.id = m.id }, buf->b,
			   sizeof(buf->b));
	peer_send_raw(fd, buf->b, (size_t)len, pass, 1);
	/* GET_FDS answered with the wrong number of descriptors */
	m = peer_expect(fd, PROTO_GET_FDS);
	proto_list_begin(&lb, buf->b, sizeof(buf->b), PROTO_GET_FDS_REPLY,
			 m.id);
	proto_list_add_fd_device(&lb, &(struct proto_fd_device){
		.name = "vfio0", .dev_id = 7, .fd_index = 1 });
	len = proto_list_end(&lb, false);
	peer_send_raw(fd, buf->b, (size_t)len, pass, 1);
	/* and refused */
	m = peer_expect(fd, PROTO_GET_FDS);
	peer_error(fd, m.id, EOPNOTSUPP, "the simulated host has no fds");
	peer_wait_close(fd);
	free(buf);
}

Test(libdirty_unit, descriptors_are_received_and_never_leaked)
{
	struct dirty_fds *fds = NULL;
	struct peer p;
	struct dirty *d;
	int before;

	peer_start(&p, script_fds);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	before = open_fds();
	cr_assert_eq(dirty_get_fds(d, 1, &fds), 0);
	cr_assert_eq(fds->ioas_id, 2);
	cr_assert_eq(fds->hwpt_id, 3);
	cr_assert_eq(fds->n_devices, 2);
	cr_assert_eq(fds->size, sizeof(struct dirty_fds));
	cr_assert_eq(fds->devices[0]->size, sizeof(struct dirty_fd_device));
	cr_assert_eq(fds->devices[1]->size, sizeof(struct dirty_fd_device));
	cr_assert_null(fds->devices[2]);
	cr_assert_str_eq(fds->devices[0]->name, "vfio0");
	cr_assert_eq(fds->devices[0]->dev_id, 7);
	cr_assert_str_eq(fds->devices[1]->name, "vfio1");
	cr_assert_geq(fds->iommufd, 0);
	cr_assert(fcntl(fds->iommufd, F_GETFD) & FD_CLOEXEC);
	/* device 1 got the third descriptor: /dev/null opened for writing */
	cr_assert_eq(fcntl(fds->devices[0]->fd, F_GETFL) & O_ACCMODE,
		     O_WRONLY);
	cr_assert_eq(fcntl(fds->devices[1]->fd, F_GETFL) & O_ACCMODE,
		     O_RDONLY);
	cr_assert_eq(open_fds(), before + 3);
	dirty_fds_free(fds);
	cr_assert_eq(open_fds(), before);
	cr_assert_eq(dirty_track_stop(d, 1), 0);
	cr_assert_eq(open_fds(), before, "a stray descriptor was kept");
	cr_assert_eq(dirty_get_fds(d, 1, &fds), -EPROTO);
	cr_assert_eq(open_fds(), before);
	cr_assert_eq(dirty_get_fds(d, 1, &fds), -EOPNOTSUPP);
	cr_assert_str_eq(dirty_last_error_text(d),
			 "the simulated host has no fds");
	dirty_close(d);
	peer_finish(&p);
}

static void script_lists(struct peer *p)
{
	uint8_t *buf = malloc(PROTO_MAX_MSG);
	struct proto_list_builder lb;
	int fd = peer_accept(p);
	struct proto_msg m;
	int len;

	peer_hello(fd, 0, 0);
	m = peer_expect(fd, PROTO_LIST_DEVICES);
	for (int pkt = 0; pkt < 2; pkt++) {
		proto_list_begin(&lb, buf, PROTO_MAX_MSG,
				 PROTO_LIST_DEVICES_REPLY, m.id);
		for (int i = 0; i < 2 - pkt; i++) {
			struct proto_device dv = {
				.flags = PROTO_DEVICE_DIRTY_CAPABLE,
				.capabilities = 1,
			};

			snprintf(dv.name, sizeof(dv.name), "sim%d",
				 pkt * 2 + i);
			proto_list_add_device(&lb, &dv);
		}
		len = proto_list_end(&lb, pkt == 0);
		peer_send_raw(fd, buf, (size_t)len, NULL, 0);
	}
	m = peer_expect(fd, PROTO_LIST_DOMAINS);
	peer_domains(fd, m.id, NULL, 0);
	m = peer_expect(fd, PROTO_STATS);
	if (m.domain_op.domain_id != 9)
		peer_die("STATS %u", m.domain_op.domain_id);
	peer_error(fd, m.id, ENOENT, "no domain 9");
	peer_wait_close(fd);
	free(buf);
}

Test(libdirty_unit, lists_span_packets)
{
	struct dirty_domain **doms = NULL;
	struct dirty_device **devs = NULL;
	struct dirty_stats **st = NULL;
	struct peer p;
	struct dirty *d;
	size_t n = 99;

	peer_start(&p, script_lists);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_list_devices(d, &devs, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(devs[0]->name, "sim0");
	cr_assert_str_eq(devs[2]->name, "sim2");
	cr_assert_eq(devs[2]->flags, DIRTY_DEVICE_DIRTY_CAPABLE);
	/* pointers, then a NULL; each entry says what was filled */
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(devs[i]->size, sizeof(struct dirty_device));
	cr_assert_null(devs[3]);
	free(devs);
	cr_assert_eq(dirty_list_domains(d, &doms, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_not_null(doms);
	cr_assert_null(doms[0]);
	free(doms);
	cr_assert_eq(dirty_stats(d, 9, &st, &n), -ENOENT);
	cr_assert_null(st);
	dirty_close(d);
	peer_finish(&p);
}

static void script_eof(struct peer *p)
{
	int fd = peer_accept(p);

	peer_hello(fd, 0, 0);
	peer_expect(fd, PROTO_SYNC);
	close(fd);
}

Test(libdirty_unit, eof_is_econnreset)
{
	struct dirty_event ev = { .size = sizeof(ev) };
	struct peer p;
	struct dirty *d;

	peer_start(&p, script_eof);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	cr_assert_eq(dirty_sync(d, 1, NULL, NULL), -ECONNRESET);
	cr_assert_eq(dirty_next_event(d, &ev), -ECONNRESET);
	dirty_close(d);
	peer_finish(&p);
}

/* ---- the growth rule: a struct's size bounds what the library fills ---- */

static void script_sizes(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m;

	peer_hello(fd, 0, 0);
	/* the one SUBSCRIBE that reached the wire: interval 250 */
	m = peer_expect(fd, PROTO_SUBSCRIBE);
	if (m.subscribe.interval_ms != 250)
		peer_die("SUBSCRIBE with interval %u", m.subscribe.interval_ms);
	m.type = PROTO_SUBSCRIBE_REPLY;
	m.subscribe_reply = (struct proto_subscribe_reply){
		.domain_id = 5, .page_size = 4096, .max_leaf = 2 << 20,
		.generation = 17,
	};
	peer_send(fd, &m);
	m = peer_expect(fd, PROTO_SYNC);
	send_ev_round(fd, 5, 18);
	m.type = PROTO_SYNC_REPLY;
	m.sync_reply = (struct proto_sync_reply){ .generation = 18 };
	peer_send(fd, &m);
	peer_wait_close(fd);
}

#define SENTINEL 0xa5a5a5a5a5a5a5a5ULL

Test(libdirty_unit, structs_are_bounded_by_their_size)
{
	/* what a program compiled against a newer header passes: the 1.0
	 * struct, then a field this library does not know */
	struct {
		struct dirty_session s;
		uint64_t added;
	} newer_s;
	struct {
		struct dirty_subscription_info info;
		uint64_t added;
	} newer_i;
	struct {
		struct dirty_event ev;
		uint64_t added;
	} newer_e;
	struct dirty_session s = { .size = 0 };
	struct dirty_subscription_info info = { .size = 4 };
	struct dirty_event ev = { .size = 8 };
	struct peer p;
	struct dirty *d;

	peer_start(&p, script_sizes);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);

	/* below the 1.0 layout: refused, nothing written */
	cr_assert_eq(dirty_session(d, &s), -EINVAL);
	s.size = offsetof(struct dirty_session, flags);
	cr_assert_eq(dirty_session(d, &s), -EINVAL);
	cr_assert_eq(s.uid, 0);
	s.size = sizeof(s);
	cr_assert_eq(dirty_session(d, &s), 0);
	cr_assert_eq(s.size, sizeof(s));
	cr_assert_eq(s.uid, 1000);
	memset(&newer_s, 0xa5, sizeof(newer_s));
	newer_s.s.size = sizeof(newer_s);
	cr_assert_eq(dirty_session(d, &newer_s.s), 0);
	cr_assert_eq(newer_s.s.size, sizeof(struct dirty_session),
		     "size says what was filled");
	cr_assert_eq(newer_s.s.uid, 1000);
	cr_assert_eq(newer_s.s.gid, 1000);
	cr_assert_eq(newer_s.s.token, 0);
	cr_assert_eq(newer_s.s.version_major, PROTO_VERSION_MAJOR);
	cr_assert_eq(newer_s.added, SENTINEL, "a field past the library's");

	/* a bad info never reaches the wire (the peer would see interval
	 * 111) */
	cr_assert_eq(dirty_subscribe(d, 5, 111, 0, &info), -EINVAL);
	memset(&newer_i, 0xa5, sizeof(newer_i));
	newer_i.info.size = sizeof(newer_i);
	cr_assert_eq(dirty_subscribe(d, 5, 250, 0, &newer_i.info), 0);
	cr_assert_eq(newer_i.info.size,
		     sizeof(struct dirty_subscription_info));
	cr_assert_eq(newer_i.info.domain_id, 5);
	cr_assert_eq(newer_i.info.page_size, 4096);
	cr_assert_eq(newer_i.info.max_leaf, 2 << 20);
	cr_assert_eq(newer_i.info.generation, 17);
	cr_assert_eq(newer_i.added, SENTINEL);

	/* an event is not consumed by a refused call */
	cr_assert_eq(dirty_sync(d, 5, NULL, NULL), 0);
	cr_assert_eq(dirty_next_event(d, &ev), -EINVAL);
	memset(&newer_e, 0xa5, sizeof(newer_e));
	newer_e.ev.size = sizeof(newer_e);
	cr_assert_eq(dirty_next_event(d, &newer_e.ev), 1);
	cr_assert_eq(newer_e.ev.size, sizeof(struct dirty_event));
	cr_assert_eq(newer_e.ev.type, DIRTY_EVENT_ROUND);
	cr_assert_eq(newer_e.ev.domain_id, 5);
	cr_assert_eq(newer_e.ev.generation, 18);
	cr_assert_eq(newer_e.added, SENTINEL);
	ev.size = sizeof(ev);
	cr_assert_eq(dirty_next_event(d, &ev), 0);
	dirty_close(d);
	peer_finish(&p);
}

/* ---- dirty_ranges_lebitmap(), bit by bit ---- */

/*
 * Generation 4 of domain 6 (4 KiB pages), in two packets: [0, 1),
 * [63, 66) across a word of bits, [100, 228) over two whole words,
 * [32760, 32778) across a chunk and a packet, [70000, 70005): 155 pages.
 */
static const uint64_t lb_runs[][2] = {
	{ 0, 1 }, { 63, 3 }, { 100, 128 }, { 32760, 18 }, { 70000, 5 },
};
#define LB_PAGES 155

static void peer_lb_generation(int fd, uint64_t id)
{
	static uint64_t bits[CHUNK_MAX_PAGES / 64];
	uint8_t chunks[3 * CHUNK_MAX_SIZE];
	size_t n;
	int r;

	/* span 0: one chunk with its four runs */
	memset(bits, 0, sizeof(bits));
	for (size_t i = 0; i < 4; i++)
		for (uint64_t pg = lb_runs[i][0];
		     pg < lb_runs[i][0] + lb_runs[i][1] && pg < 32768; pg++)
			bits[pg / 64] |= 1ULL << (pg % 64);
	r = chunk_encode(0, CHUNK_MAX_PAGES, bits, chunks);
	if (r <= 0)
		peer_die("chunk_encode: %d", r);
	peer_ranges(fd, id, 4, 6, 0, LB_PAGES, chunks, (size_t)r, 1, true);
	n = chunk_run(chunks, 32768, 0, 10);
	n += chunk_run(chunks + n, 65536, 70000 - 65536, 70005 - 65536);
	peer_ranges(fd, id, 4, 6, 1, LB_PAGES, chunks, n, 2, false);
}

static void script_lebitmap(struct peer *p)
{
	int fd = peer_accept(p);
	struct proto_msg m;

	peer_hello(fd, 0, 0);
	/* not subscribed through this handle: the page size is looked up,
	 * not found, then found (a resumed session's subscription) */
	m = peer_expect(fd, PROTO_LIST_DOMAINS);
	peer_domains(fd, m.id, NULL, 0);
	m = peer_expect(fd, PROTO_LIST_DOMAINS);
	peer_domains(fd, m.id, (const struct proto_domain[]){
		{ .domain_id = 2, .page_size = 65536 },
		{ .domain_id = 6, .page_size = 4096 } }, 2);
	m = peer_expect(fd, PROTO_GET_RANGES);
	peer_lb_generation(fd, m.id);
	m = peer_expect(fd, PROTO_SUBSCRIBE);
	m.type = PROTO_SUBSCRIBE_REPLY;
	m.subscribe_reply = (struct proto_subscribe_reply){
		.domain_id = 6, .page_size = 4096, .max_leaf = 4096,
	};
	peer_send(fd, &m);
	/* four takes, then one with RESEND; only then an ACK */
	for (int i = 0; i < 5; i++) {
		m = peer_expect(fd, PROTO_GET_RANGES);
		if (m.get_ranges.domain_id != 6 ||
		    m.get_ranges.flags != (i == 4 ? PROTO_RANGES_RESEND : 0))
			peer_die("GET_RANGES %d: domain %u flags %#x", i,
				 m.get_ranges.domain_id, m.get_ranges.flags);
		peer_lb_generation(fd, m.id);
	}
	m = peer_expect(fd, PROTO_ACK);
	if (m.ack.domain_id != 6 || m.ack.generation != 4)
		peer_die("ACK %u %llu", m.ack.domain_id,
			 (unsigned long long)m.ack.generation);
	peer_ok(fd, m.id);
	peer_wait_close(fd);
}

#define LB_BITS (80000 * 2)	/* the window's bits at 2 KiB */

/* Bit @k of a little-endian bitmap, read byte by byte (independent of the
 * host's byte order and of the width of unsigned long). */
static bool lebit(const unsigned long *map, uint64_t k)
{
	return ((const uint8_t *)map)[k / 8] >> (k % 8) & 1;
}

/* Is a page of lb_runs in the bytes [a, b)? */
static bool lb_dirty(uint64_t a, uint64_t b)
{
	for (size_t i = 0; i < sizeof(lb_runs) / sizeof(lb_runs[0]); i++)
		if (lb_runs[i][0] * 4096 < b &&
		    (lb_runs[i][0] + lb_runs[i][1]) * 4096 > a)
			return true;
	return false;
}

/* Every bit of @map over [iova, iova + nbits * ps) as lb_runs say, but
 * for bit @extra (set before the call; -1: none). */
static void lb_check(const unsigned long *map, uint64_t iova, uint64_t ps,
		     uint64_t nbits, uint64_t extra)
{
	for (uint64_t k = 0; k < nbits; k++) {
		uint64_t a = iova + k * ps;

		cr_assert_eq(lebit(map, k), lb_dirty(a, a + ps) || k == extra,
			     "page size %llu, window at %#llx: bit %llu",
			     (unsigned long long)ps, (unsigned long long)iova,
			     (unsigned long long)k);
	}
}

Test(libdirty_unit, lebitmap_sets_exactly_the_runs)
{
	size_t words = LB_BITS / (8 * sizeof(unsigned long)) + 1;
	unsigned long *map = calloc(words, sizeof(unsigned long));
	struct peer p;
	struct dirty *d;
	uint64_t gen = 0;

	cr_assert_not_null(map);
	peer_start(&p, script_lebitmap);
	d = client(&p, DIRTY_CONNECT_NO_RESUME);
	/* no such domain in LIST_DOMAINS: nothing taken */
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 1 << 20, 4096, map,
					   NULL), -ENOENT);
	/* domain 6's page size from LIST_DOMAINS (4 KiB, not domain 2's) */
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 80000ULL * 4096, 4096,
					   map, &gen), 0);
	lb_check(map, 0, 4096, 80000, ~0ULL);
	memset(map, 0, words * sizeof(unsigned long));
	cr_assert_eq(dirty_subscribe(d, 6, 0, 0, NULL), 0);
	/* bad windows and flags are refused before anything is sent */
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 1 << 20, 3000, map,
					   NULL), -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 2048, 1 << 20, 4096, map,
					   NULL), -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 0, 4096, map, NULL),
		     -EINVAL);
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 1 << 5, 0, 4096, 4096, map,
					   NULL), -EINVAL);

	/* the domain's page size: bit k is page k */
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 80000ULL * 4096, 4096,
					   map, &gen), 0);
	cr_assert_eq(gen, 4);
	lb_check(map, 0, 4096, 80000, ~0ULL);
	/* coarser, and a bit set before: ORed */
	memset(map, 0, words * sizeof(unsigned long));
	((uint8_t *)map)[1] = 0x10;	/* bit 12: pages 48..51, clean */
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 80000ULL * 4096,
					   16384, map, NULL), 0);
	lb_check(map, 0, 16384, 20000, 12);
	/* finer: two bits a page */
	memset(map, 0, words * sizeof(unsigned long));
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, 0, 0, 80000ULL * 4096, 2048,
					   map, NULL), 0);
	lb_check(map, 0, 2048, LB_BITS, ~0ULL);
	/* a window leaving out [0, 1), part of [63, 66) and [70000, 70005):
	 * what is inside is set, the call says the rest was not taken */
	memset(map, 0, words * sizeof(unsigned long));
	gen = 0;
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, DIRTY_RANGES_ACK, 64 * 4096,
					   (70000 - 64) * 4096ULL, 4096, map,
					   &gen), -ERANGE);
	cr_assert_eq(gen, 4);
	lb_check(map, 64 * 4096, 4096, 70000 - 64, ~0ULL);
	/* taken again whole, and acknowledged */
	memset(map, 0, words * sizeof(unsigned long));
	cr_assert_eq(dirty_ranges_lebitmap(d, 6, DIRTY_RANGES_RESEND |
					   DIRTY_RANGES_ACK, 0,
					   80000ULL * 4096, 4096, map, &gen), 0);
	lb_check(map, 0, 4096, 80000, ~0ULL);
	dirty_close(d);
	peer_finish(&p);
	free(map);
}
