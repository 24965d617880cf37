// SPDX-License-Identifier: MIT
/* Dirty bitmaps on the heap or in a memfd that outlives us: see bitmem.h. */
#define _GNU_SOURCE		/* memfd_create, fallocate */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/subscriber/bitmem.h"

#define PAGE 4096ULL

struct bitmem_extent {
	uint64_t off;
	uint64_t len;		/* bytes, a multiple of PAGE */
};

struct bitmem {
	/* the lists and the count: regions are allocated off the event loop
	 * too (a domain's change, domain_change.c) */
	pthread_mutex_t lock;
	int fd;
	uint8_t *base;
	struct bitmem_extent *used;	/* by offset, disjoint */
	size_t nused, capused;
	struct bitmem_extent *dead;	/* released, not yet reclaimed */
	size_t ndead, capdead;
	uint64_t bytes;
};

static uint64_t bytes_of(uint64_t nwords)
{
	return (nwords * 8 + PAGE - 1) & ~(PAGE - 1);
}

/*
 * The reaper.  Punching a region frees its pages, and so does freeing a
 * big heap region: for the bitmaps of a terabyte at 4 KiB pages (32 MiB
 * each, two a durable subscriber) that is milliseconds a region, and a
 * change of a domain with many subscribers releases them all at once
 * (domain_change.c), which held the event loop for hundreds of
 * milliseconds.  Regions of BITMEM_REAP_MIN bytes or more are punched (or
 * freed) by one thread of bitmem's own instead: a memfd region stays in
 * use (its space is given to nobody) until it is punched, then is free,
 * so free space is still always a hole.  If the thread cannot be had, it
 * is done at once, as before.
 */
#define BITMEM_REAP_MIN (1ULL << 20)

struct reap_job {
	struct bitmem *m;	/* NULL: the heap */
	void *p;		/* the heap's */
	uint64_t off, len;	/* the memfd's */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* a job queued, or one done */
	struct reap_job *jobs;	/* oldest first */
	size_t n, cap;
	struct bitmem *busy;	/* the memfd of the job being done */
	bool busy_heap;
	bool started;
} reaper = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void punch(struct bitmem *m, uint64_t off, uint64_t len);
static void used_remove(struct bitmem *m, uint64_t off);

static void *reaper_main(void *arg)
{
	prctl(PR_SET_NAME, "dirtyd-reaper");
	/* below the event loop, like a change's thread (domain_change.c) */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	pthread_mutex_lock(&reaper.lock);
	for (;;) {
		struct reap_job j;

		while (!reaper.n)
			pthread_cond_wait(&reaper.cond, &reaper.lock);
		j = reaper.jobs[0];
		memmove(reaper.jobs, reaper.jobs + 1,
			--reaper.n * sizeof(*reaper.jobs));
		reaper.busy = j.m;
		reaper.busy_heap = !j.m;
		pthread_mutex_unlock(&reaper.lock);
		if (!j.m) {
			free(j.p);
		} else {
			punch(j.m, j.off, j.len);
			pthread_mutex_lock(&j.m->lock);
			used_remove(j.m, j.off);
			pthread_mutex_unlock(&j.m->lock);
		}
		pthread_mutex_lock(&reaper.lock);
		reaper.busy = NULL;
		reaper.busy_heap = false;
		pthread_cond_broadcast(&reaper.cond);
	}
	return NULL;
}

/* Hand @j to the reaper; false if it cannot take it (do it now). */
static bool reap(const struct reap_job *j)
{
	bool ok = false;

	pthread_mutex_lock(&reaper.lock);
	if (!reaper.started) {
		sigset_t all, old;
		pthread_t t;

		/* signals are the event loop's */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		reaper.started = !pthread_create(&t, NULL, reaper_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (reaper.started)
			pthread_detach(t);
	}
	if (reaper.started && reaper.n == reaper.cap) {
		size_t c = reaper.cap ? 2 * reaper.cap : 64;
		struct reap_job *v = realloc(reaper.jobs, c * sizeof(*v));

		if (v) {
			reaper.jobs = v;
			reaper.cap = c;
		}
	}
	if (reaper.started && reaper.n < reaper.cap) {
		reaper.jobs[reaper.n++] = *j;
		pthread_cond_broadcast(&reaper.cond);
		ok = true;
	}
	pthread_mutex_unlock(&reaper.lock);
	return ok;
}

/* Wait until the reaper has nothing of @m's left. */
static void reap_drain(struct bitmem *m)
{
	pthread_mutex_lock(&reaper.lock);
	for (;;) {
		bool any = reaper.busy == m;

		for (size_t i = 0; !any && i < reaper.n; i++)
			any = reaper.jobs[i].m == m;
		if (!any)
			break;
		pthread_cond_wait(&reaper.cond, &reaper.lock);
	}
	pthread_mutex_unlock(&reaper.lock);
}

static int extents_grow(struct bitmem_extent **v, size_t n, size_t *cap)
{
	struct bitmem_extent *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 64;
	p = realloc(*v, c * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

/* Seals: nobody, not even another holder of the descriptor, can change
 * its size (punching holes stays allowed), nor the seals. */
#define BITMEM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int bitmem_map(struct bitmem *m)
{
	m->base = mmap(NULL, BITMEM_RESERVE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, m->fd, 0);
	if (m->base == MAP_FAILED)
		return -errno;
	return 0;
}

static struct bitmem *bitmem_alloc_struct(int fd)
{
	struct bitmem *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->fd = fd;
	m->base = MAP_FAILED;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}
/* Map @m and hand it out; freed on failure. */
static int bitmem_map_out(struct bitmem *m, struct bitmem **out)
{
	int r = bitmem_map(m);

	if (r < 0) {
		bitmem_free(m);
		return r;
	}
	*out = m;
	return 0;
}


int bitmem_new(const char *name, struct bitmem **out)
{
	struct bitmem *m;
	int r;

	m = bitmem_alloc_struct(-1);
	if (!m)
		return -ENOMEM;
	m->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->fd < 0 || ftruncate(m->fd, BITMEM_RESERVE) < 0 ||
	    fcntl(m->fd, F_ADD_SEALS, BITMEM_SEALS) < 0) {
		r = -errno;
		goto fail;
	}
	return bitmem_map_out(m, out);
fail:
	bitmem_free(m);
	return r;
}

int bitmem_adopt(int fd, struct bitmem **out)
{
	struct bitmem *m;
	struct stat st;
	int r;

	m = bitmem_alloc_struct(fd);
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	/* never resized to fit: what is not there was lost */
	if ((uint64_t)st.st_size != BITMEM_RESERVE) {
		r = -EMSGSIZE;
		goto fail;
	}
	return bitmem_map_out(m, out);
fail:
	bitmem_free(m);
	return r;
}

void bitmem_free(struct bitmem *m)
{
	if (!m)
		return;
	reap_drain(m);
	if (m->base != MAP_FAILED)
		munmap(m->base, BITMEM_RESERVE);
	if (m->fd >= 0)
		close(m->fd);
	free(m->used);
	free(m->dead);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int bitmem_fd(const struct bitmem *m)
{
	return m->fd;
}

uint64_t bitmem_offset(const struct bitmem *m, const uint64_t *p)
{
	return (uint64_t)((const uint8_t *)p - m->base);
}

uint64_t bitmem_bytes(const struct bitmem *m)
{
	return m ? __atomic_load_n(&m->bytes, __ATOMIC_RELAXED) : 0;
}

/* Insert [@off, @off + @len) into the used list at @at. */
static int used_insert(struct bitmem *m, size_t at, uint64_t off,
		       uint64_t len)
{
	if (extents_grow(&m->used, m->nused, &m->capused) < 0)
		return -ENOMEM;
	memmove(&m->used[at + 1], &m->used[at],
		(m->nused - at) * sizeof(*m->used));
	m->used[at] = (struct bitmem_extent){ .off = off, .len = len };
	m->nused++;
	__atomic_store_n(&m->bytes, m->bytes + len, __ATOMIC_RELAXED);
	return 0;
}

uint64_t *bitmem_alloc(struct bitmem *m, uint64_t nwords)
{
	uint64_t len = bytes_of(nwords ? nwords : 1), off = 0;
	size_t at;

	if (!m) {
		uint64_t *p = aligned_alloc(PAGE, len);

		if (p)
			memset(p, 0, len);
		return p;
	}
	/* first fit; free space is a hole, so it reads as zero */
	pthread_mutex_lock(&m->lock);
	for (at = 0; at < m->nused; at++) {
		if (m->used[at].off - off >= len)
			break;
		off = m->used[at].off + m->used[at].len;
	}
	if (off + len > BITMEM_RESERVE || off + len < off ||
	    used_insert(m, at, off, len) < 0) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	pthread_mutex_unlock(&m->lock);
	return (uint64_t *)(m->base + off);
}

void bitmem_release(struct bitmem *m, uint64_t *p, uint64_t nwords)
{
	uint64_t off = 0;

	if (!p)
		return;
	if (!m) {
		if (bytes_of(nwords) < BITMEM_REAP_MIN ||
		    !reap(&(struct reap_job){ .p = p }))
			free(p);
		return;
	}
	off = bitmem_offset(m, p);
	pthread_mutex_lock(&m->lock);
	if (extents_grow(&m->dead, m->ndead, &m->capdead) == 0) {
		m->dead[m->ndead++] = (struct bitmem_extent){
			.off = off, .len = bytes_of(nwords ? nwords : 1),
		};
	}
	pthread_mutex_unlock(&m->lock);
	/* out of memory: the region stays in use until the next restart */
}

static void punch(struct bitmem *m, uint64_t off, uint64_t len)
{
	if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		memset(m->base + off, 0, len);	/* cannot happen on a memfd */
}

void bitmem_zero(struct bitmem *m, uint64_t *p, uint64_t nwords)
{
	uint64_t len = nwords * 8, whole;

	if (!m || !p) {
		if (p)
			memset(p, 0, len);
		return;
	}
	/* regions start on a page: punch the whole pages, clear the rest */
	whole = len & ~(PAGE - 1);
	if (whole)
		punch(m, bitmem_offset(m, p), whole);
	memset((uint8_t *)p + whole, 0, len - whole);
}

/* Forget the used region at @off, punched: its space is free.  Locked. */
static void used_remove(struct bitmem *m, uint64_t off)
{
	size_t lo = 0, hi = m->nused;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->used[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == m->nused || m->used[lo].off != off)
		return;
	__atomic_store_n(&m->bytes, m->bytes - m->used[lo].len,
			 __ATOMIC_RELAXED);
	memmove(&m->used[lo], &m->used[lo + 1],
		(m->nused - lo - 1) * sizeof(*m->used));
	m->nused--;
}

void bitmem_reclaim(struct bitmem *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->ndead; i++) {
		struct bitmem_extent *e = &m->dead[i];
		size_t lo = 0, hi = m->nused;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (m->used[mid].off < e->off)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == m->nused || m->used[lo].off != e->off)
			continue;	/* never ours: ignore */
		/* big: punched by the reaper, in use until then */
		if (m->used[lo].len >= BITMEM_REAP_MIN &&
		    reap(&(struct reap_job){ .m = m, .off = e->off,
					     .len = m->used[lo].len }))
			continue;
		punch(m, e->off, m->used[lo].len);
		used_remove(m, e->off);
	}
	m->ndead = 0;
	pthread_mutex_unlock(&m->lock);
}

uint64_t *bitmem_claim(struct bitmem *m, uint64_t off, uint64_t nwords)
{
	uint64_t len = bytes_of(nwords ? nwords : 1);
	size_t at = 0;

	if (off % PAGE || off >= BITMEM_RESERVE ||
	    len > BITMEM_RESERVE - off)
		return NULL;
	pthread_mutex_lock(&m->lock);
	while (at < m->nused && m->used[at].off < off)
		at++;
	if ((at < m->nused && m->used[at].off < off + len) ||
	    (at && m->used[at - 1].off + m->used[at - 1].len > off) ||
	    used_insert(m, at, off, len) < 0) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	pthread_mutex_unlock(&m->lock);
	return (uint64_t *)(m->base + off);
}

int bitmem_claim_done(struct bitmem *m)
{
	uint64_t off = 0;

	for (size_t i = 0; i <= m->nused; i++) {
		uint64_t end = i < m->nused ? m->used[i].off : BITMEM_RESERVE;

		if (end > off &&
		    fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)(end - off)) < 0)
			return -errno;
		if (i < m->nused)
			off = m->used[i].off + m->used[i].len;
	}
	return 0;
}

uint64_t bitmem_data(const struct bitmem *m, const uint64_t *p,
		     uint64_t nwords, uint64_t *from)
{
	uint64_t base, end, at;
	off_t data, hole;

	if (!m || *from >= nwords)
		return nwords;
	base = bitmem_offset(m, p);
	end = base + nwords * 8;
	at = base + *from * 8;
	data = lseek(m->fd, (off_t)at, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		*from = nwords;		/* holes to the end of the file */
		return nwords;
	}
	if (data < 0)
		return nwords;		/* cannot tell: all of it */
	if ((uint64_t)data >= end) {
		*from = nwords;
		return nwords;
	}
	hole = lseek(m->fd, data, SEEK_HOLE);
	*from = ((uint64_t)data - base) / 8;
	if (hole < 0 || (uint64_t)hole >= end)
		return nwords;
	return ((uint64_t)hole - base + 7) / 8;
}
