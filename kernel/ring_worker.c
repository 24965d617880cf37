// SPDX-License-Identifier: MIT
/* Worker threads that complete blocking calls on the caller's io_uring. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "kernel/ring_worker.h"

/*
 * user_data tags on a worker's own ring.  Works are 8-byte aligned, so
 * the low bits are free: a completion that did not land (the caller's CQ
 * full) comes back to the worker tagged, and it sends it again.  A
 * message of 0 stops the worker.
 */
#define TAG_SEND_FAILED 1ULL
#define TAG_MASK 7ULL

struct ring_worker {
	struct io_uring ring;
	pthread_t thread;
	unsigned int queued;	/* atomic: handed out, not yet run */
	bool ring_ok, thread_ok;
};

struct ring_pool {
	unsigned int nworkers;
	struct ring_worker *workers;
	struct io_uring ctl;	/* sends the stops: set up first, so that
				 * freeing cannot fail to stop a worker */
	bool ctl_ok;
};

static unsigned int roundup_pow2(unsigned int x)
{
	unsigned int p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

/* An SQE of @ring, submitting what waits until one is free. */
static struct io_uring_sqe *sqe_get(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(ring)))
		io_uring_submit(ring);
	return sqe;
}

/* Post @w's completion to its ring; retry until it lands, as the caller's
 * CQ is sized for every call in flight. */
static void worker_complete(struct ring_worker *rw, struct ring_work *w)
{
	for (;;) {
		struct io_uring_sqe *sqe = sqe_get(&rw->ring);

		io_uring_prep_msg_ring(sqe, w->ring_fd, (unsigned int)w->result,
				       w->user_data, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, (uintptr_t)w | TAG_SEND_FAILED);
		if (io_uring_submit(&rw->ring) >= 0)
			return;
	}
}

static void *worker_main(void *arg)
{
	struct ring_worker *rw = arg;

	/* what `top -H` and the soak (tests/soak/daemon_threads.c) show */
	prctl(PR_SET_NAME, "dirtyd-harvest");
	for (;;) {
		struct io_uring_cqe *cqe;
		struct ring_work *w;
		uint64_t data;
		int r = io_uring_wait_cqe(&rw->ring, &cqe);

		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		data = cqe->user_data;
		io_uring_cqe_seen(&rw->ring, cqe);
		w = (void *)(uintptr_t)(data & ~TAG_MASK);

		if (data & TAG_SEND_FAILED) {
			/* our completion did not land (caller's CQ full): resend */
			usleep(100);
			worker_complete(rw, w);
			continue;
		}
		if (!data)
			break;	/* stop */
		w->result = w->fn(w);
		__atomic_sub_fetch(&rw->queued, 1, __ATOMIC_RELAXED);
		worker_complete(rw, w);
	}
	return NULL;
}

/* Tell @rw to stop: a message of 0 from the pool's own ring. */
static void worker_stop(struct ring_pool *p, struct ring_worker *rw)
{
	for (;;) {
		struct io_uring_sqe *sqe = sqe_get(&p->ctl);

		io_uring_prep_msg_ring(sqe, rw->ring.ring_fd, 0, 0, 0);
		if (io_uring_submit_and_wait(&p->ctl, 1) >= 0) {
			struct io_uring_cqe *cqe;

			if (!io_uring_wait_cqe(&p->ctl, &cqe)) {
				int res = cqe->res;

				io_uring_cqe_seen(&p->ctl, cqe);
				if (res >= 0)
					return;
			}
		}
		usleep(100);	/* its CQ is full: it is still working */
	}
}

void ring_pool_free(struct ring_pool *p)
{
	if (!p)
		return;
	for (unsigned int i = 0; p->workers && i < p->nworkers; i++) {
		struct ring_worker *rw = &p->workers[i];

		if (rw->thread_ok) {
			worker_stop(p, rw);
			pthread_join(rw->thread, NULL);
		}
		if (rw->ring_ok)
			io_uring_queue_exit(&rw->ring);
	}
	if (p->ctl_ok)
		io_uring_queue_exit(&p->ctl);
	free(p->workers);
	free(p);
}

int ring_pool_new(unsigned int threads, unsigned int depth,
		  struct ring_pool **out)
{
	struct ring_pool *p;
	long ncpu;
	int r;

	if (!out)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->nworkers = threads ? threads : (ncpu > 0 ? ncpu : 1);
	p->workers = calloc(p->nworkers, sizeof(*p->workers));
	if (!p->workers) {
		free(p);
		return -ENOMEM;
	}
	r = io_uring_queue_init(2, &p->ctl, 0);
	if (r < 0)
		goto fail;
	p->ctl_ok = true;
	for (unsigned int i = 0; i < p->nworkers; i++) {
		struct ring_worker *rw = &p->workers[i];

		r = io_uring_queue_init(roundup_pow2(depth + 2), &rw->ring, 0);
		if (r < 0)
			goto fail;
		rw->ring_ok = true;
		r = -pthread_create(&rw->thread, NULL, worker_main, rw);
		if (r < 0)
			goto fail;
		rw->thread_ok = true;
	}
	*out = p;
	return 0;
fail:
	ring_pool_free(p);
	return r;
}

unsigned int ring_pool_threads(const struct ring_pool *p)
{
	return p->nworkers;
}

void ring_pool_prep(struct ring_pool *p, struct io_uring_sqe *sqe,
		    struct ring_work *w)
{
	struct ring_worker *best = &p->workers[0];
	unsigned int least = __atomic_load_n(&best->queued, __ATOMIC_RELAXED);

	for (unsigned int i = 1; i < p->nworkers && least; i++) {
		unsigned int q = __atomic_load_n(&p->workers[i].queued,
						 __ATOMIC_RELAXED);

		if (q < least) {
			best = &p->workers[i];
			least = q;
		}
	}
	__atomic_add_fetch(&best->queued, 1, __ATOMIC_RELAXED);
	w->worker = best - p->workers;
	io_uring_prep_msg_ring(sqe, best->ring.ring_fd, 0, (uintptr_t)w, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	/* a failed hand-off comes back to the caller as the work's CQE */
	io_uring_sqe_set_data64(sqe, w->user_data);
}
