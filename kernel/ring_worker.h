/* SPDX-License-Identifier: MIT */
/*
 * Worker threads that make a blocking call asynchronous on io_uring.
 *
 * A caller hands a struct ring_work to a pool with an SQE of its own ring
 * (ring_pool_prep(): an IORING_OP_MSG_RING to the least loaded worker's
 * ring); the worker runs the work's function and posts its result as a
 * CQE on the caller's ring, again with IORING_OP_MSG_RING.  So a call that
 * blocks (an ioctl, the sim's page-table walk) completes on the same path
 * as an io_uring command would: one CQE carrying the caller's user_data
 * and the call's 0 or -errno.  The harvest engine's worker pool and the
 * sim's asynchronous dirty reads (backend_dirty_read_prep()) are such
 * pools.
 *
 * Owns: the hand-off to worker threads and the completion they post
 * (exactly one CQE per submitted hand-off, also when a ring is full).
 */
#ifndef DIRTYD_KERNEL_RING_WORKER_H
#define DIRTYD_KERNEL_RING_WORKER_H

#include <stdint.h>

struct io_uring_sqe;
struct ring_pool;
struct ring_work;

/** Runs on a worker; returns the completion's res (0 or -errno). */
typedef int (*ring_work_fn)(struct ring_work *w);

/**
 * struct ring_work - one call in flight; the caller's until its CQE, and
 * 8-byte aligned (the pools tag pointers to it).
 * @fn: what the worker runs
 * @ctx: @fn's, as the caller likes
 * @ring_fd: the ring the completion goes to
 * @user_data: the completion's user_data
 * @result: what @fn returned (the pool's)
 * @worker: which worker runs it (the pool's)
 */
struct ring_work {
	ring_work_fn fn;
	void *ctx;
	int ring_fd;
	int result;
	uint64_t user_data;
	unsigned int worker;
} __attribute__((aligned(8)));

/**
 * ring_pool_new() - @threads workers (0: one per online CPU), each with a
 * ring for @depth works in flight.  0 or -errno.
 */
int ring_pool_new(unsigned int threads, unsigned int depth,
		  struct ring_pool **out);
/** ring_pool_free() - stop and join the workers; NULL is fine.  No work
 *  may be in flight. */
void ring_pool_free(struct ring_pool *p);
/** ring_pool_threads() - the number of workers. */
unsigned int ring_pool_threads(const struct ring_pool *p);
/**
 * ring_pool_prep() - prepare @sqe (of any ring of the caller's) to hand @w
 * (@fn, @ring_fd and @user_data set) to the least loaded worker.  Once
 * submitted, exactly one CQE with @w->user_data comes on @w->ring_fd: the
 * result of @w->fn, or, if the hand-off failed (@w->fn never ran), the
 * IORING_OP_MSG_RING's -errno on the ring of @sqe.  Safe to call from
 * several threads at once.
 */
void ring_pool_prep(struct ring_pool *p, struct io_uring_sqe *sqe,
		    struct ring_work *w);

#endif /* DIRTYD_KERNEL_RING_WORKER_H */
