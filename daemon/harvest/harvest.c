// SPDX-License-Identifier: MIT
/* The harvest engine's execution: one io_uring, the backend's asynchronous
 * reads or a worker pool. */
#include <errno.h>
#include <liburing.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"

struct harvest_engine {
	struct backend *b;
	struct io_uring ring;
	bool ring_ok;
	int efd;
	const char *mode;	/* "workers" or the backend's dirty_read_async */
	struct ring_pool *pool;	/* workers mode: the worker threads */
	unsigned int max_inflight;
	unsigned int inflight;
	struct harvest_domain *qhead, *qtail;	/* batches to submit */
	size_t busy;				/* rounds running */
};

/* Where the kernel writes a batch's bits: its slice, or a head's bounce. */
static uint64_t *harvest_batch_target(struct harvest_batch *batch)
{
	if (batch->shift) {
		*batch->bounce = 0;
		return batch->bounce;
	}
	memset(batch->bitmap, 0, batch->nwords * 8);
	return batch->bitmap;
}

/* After the read: place a head's bits. */
static void harvest_batch_finish(struct harvest_batch *batch, int result)
{
	batch->result = result;
	if (batch->shift)
		*batch->bitmap = result ? 0 : *batch->bounce << batch->shift;
}

/* The sources a round of @dom reads: its own, or its one HWPT. */
static const struct harvest_source *harvest_sources(struct harvest_domain *dom,
						    size_t *n)
{
	if (dom->sources) {
		*n = dom->nsources;
		return dom->sources;
	}
	*n = 1;
	return &dom->one;
}

/* One source's read of @batch into @target, on the calling thread. */
static int harvest_source_read(struct harvest_domain *dom,
			       struct harvest_source *src,
			       struct harvest_batch *batch, uint64_t *target)
{
	int r;

	if (src->kind == BACKEND_READ_DMA_LOG)
		r = backend_dma_log_report(dom->reader, src->id, batch->iova,
					   batch->length, dom->page_size,
					   target);
	else
		r = backend_hwpt_get_dirty_bitmap(dom->reader, src->id,
						  batch->iova, batch->length,
						  dom->page_size, target,
						  dom->flags);
	return r;
}

/* Workers mode: the reads, every source in turn, on a worker thread. */
static int harvest_batch_work(struct ring_work *w)
{
	struct harvest_batch *batch = (struct harvest_batch *)
		((char *)w - offsetof(struct harvest_batch, rd.work));
	struct harvest_domain *dom = batch->dom;
	uint64_t *target = harvest_batch_target(batch);
	struct harvest_source *src;
	size_t n;
	int r = 0;

	src = (struct harvest_source *)harvest_sources(dom, &n);
	for (size_t i = 0; i < n && !r; i++) {
		r = harvest_source_read(dom, &src[i], batch, target);
		if (r < 0)
			__atomic_fetch_add(&src[i].errors, 1,
					   __ATOMIC_RELAXED);
	}
	harvest_batch_finish(batch, r);
	return batch->result;
}

void harvest_engine_free(struct harvest_engine *e)
{
	if (!e)
		return;
	ring_pool_free(e->pool);
	if (e->ring_ok)
		io_uring_queue_exit(&e->ring);
	if (e->efd >= 0)
		close(e->efd);
	free(e);
}

static unsigned int roundup_pow2(unsigned int x)
{
	unsigned int p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

int harvest_engine_new(struct backend *b,
		       const struct harvest_engine_config *cfg,
		       struct harvest_engine **out)
{
	struct harvest_engine_config def = { 0 };
	struct io_uring_params p = { 0 };
	struct backend_caps caps;
	struct harvest_engine *e;
	unsigned int nworkers = 0;
	long ncpu;
	int r;

	if (!b || !out)
		return -EINVAL;
	if (!cfg)
		cfg = &def;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->b = b;
	e->efd = -1;
	backend_caps(b, &caps);
	e->mode = cfg->force_workers ? NULL : caps.dirty_read_async;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!e->mode) {
		e->mode = "workers";
		nworkers = cfg->workers ? cfg->workers :
			   (ncpu > 0 ? ncpu : 1);
	}
	e->max_inflight = cfg->max_inflight ? cfg->max_inflight :
			  4 * (nworkers ? nworkers : 16);

	p.flags = IORING_SETUP_CQSIZE |
		  (!nworkers && caps.dirty_read_sqe128 ?
		   IORING_SETUP_SQE128 : 0);
	p.cq_entries = roundup_pow2(2 * e->max_inflight + 2 * nworkers);
	r = io_uring_queue_init_params(roundup_pow2(e->max_inflight + nworkers),
				       &e->ring, &p);
	if (r < 0)
		goto fail;
	e->ring_ok = true;
	e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = io_uring_register_eventfd(&e->ring, e->efd);
	if (r < 0)
		goto fail;

	if (nworkers) {
		r = ring_pool_new(nworkers, e->max_inflight, &e->pool);
		if (r < 0)
			goto fail;
	}
	*out = e;
	return 0;
fail:
	harvest_engine_free(e);
	return r;
}

int harvest_engine_eventfd(const struct harvest_engine *e)
{
	return e->efd;
}

const char *harvest_engine_mode(const struct harvest_engine *e)
{
	return e->mode;
}

unsigned int harvest_engine_workers(const struct harvest_engine *e)
{
	return e->pool ? ring_pool_threads(e->pool) : 0;
}

size_t harvest_engine_busy(const struct harvest_engine *e)
{
	return e->busy;
}

/*
 * Async mode: the backend prepares the read of the batch's source
 * batch->src as an SQE of the engine's ring (backend_dirty_read_prep());
 * its CQE ends that read, and the next source's is prepared then
 * (harvest_batch_next()).  A read the backend cannot prepare (a device's
 * DMA log where it reads only HWPTs asynchronously) is made here and its
 * result posted to the ring; a backend that refuses completes the batch
 * through the ring all the same, with its error.
 */
static void harvest_batch_prep(struct harvest_engine *e,
			       struct io_uring_sqe *sqe,
			       struct harvest_batch *batch)
{
	struct harvest_domain *dom = batch->dom;
	struct harvest_source *src;
	uint64_t *target;
	size_t n;
	int r;

	src = (struct harvest_source *)harvest_sources(dom, &n);
	if (!n) {
		/* nothing to read: the slice zeroed, done */
		r = 0;
		harvest_batch_target(batch);
		goto post;
	}
	src += batch->src;
	target = batch->src ? batch->rd.bitmap : harvest_batch_target(batch);
	batch->rd = (struct backend_dirty_read){
		.hwpt_id = src->id,
		.flags = dom->flags,
		.source = src->kind,
		.dev_id = src->id,
		.iova = batch->iova,
		.length = batch->length,
		.page_size = dom->page_size,
		.bitmap = target,
	};
	r = backend_dirty_read_prep(dom->reader, sqe, e->ring.ring_fd,
				    &batch->rd, (uintptr_t)batch);
	if (r == -EOPNOTSUPP && src->kind == BACKEND_READ_DMA_LOG)
		r = harvest_source_read(dom, src, batch, target);
	else if (r == 0)
		return;
post:
	io_uring_prep_msg_ring(sqe, e->ring.ring_fd, (unsigned int)r,
			       (uintptr_t)batch, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, (uintptr_t)batch);
}

/* Async mode: a batch whose read of one source is done, with more to
 * read, prepares the next one (an SQE now, submitted by the pump). */
static int harvest_batch_next(struct harvest_engine *e,
			      struct harvest_batch *batch)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

	if (!sqe) {
		int r = io_uring_submit(&e->ring);

		if (r < 0)
			return r;
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return -EBUSY;
	}
	harvest_batch_prep(e, sqe, batch);
	return 0;
}

/* Hand queued batches out, up to the in-flight limit. */
static int harvest_engine_pump(struct harvest_engine *e)
{
	while (e->qhead && e->inflight < e->max_inflight) {
		struct harvest_domain *dom = e->qhead;
		struct harvest_batch *batch = &dom->batches[dom->next];
		struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

		if (!sqe) {
			int r = io_uring_submit(&e->ring);

			if (r < 0)
				return r;
			continue;
		}
		if (e->pool) {
			batch->rd.work = (struct ring_work){
				.fn = harvest_batch_work,
				.ring_fd = e->ring.ring_fd,
				.user_data = (uintptr_t)batch,
			};
			ring_pool_prep(e->pool, sqe, &batch->rd.work);
		} else {
			harvest_batch_prep(e, sqe, batch);
		}
		e->inflight++;
		if (++dom->next == dom->nbatches) {
			e->qhead = dom->qnext;
			if (!e->qhead)
				e->qtail = NULL;
			dom->qnext = NULL;
		}
	}
	/*
	 * Whatever waits in the SQ ring, also SQEs left behind by an earlier
	 * submission that stopped early (an SQE that fails to prepare ends
	 * it; the kernel keeps the rest): no completion would come for them
	 * until somebody enters the ring again.
	 */
	if (io_uring_sq_ready(&e->ring)) {
		int r = io_uring_submit(&e->ring);

		if (r < 0)
			return r;
	}
	return 0;
}

int harvest_engine_start(struct harvest_engine *e, struct harvest_domain *dom,
			 uint32_t flags, harvest_done_fn on_done, void *ctx)
{
	if (!e || !dom)
		return -EINVAL;
	if (dom->pending)
		return -EBUSY;
	dom->flags = flags;
	dom->reader = dom->b ? dom->b : e->b;
	dom->one = (struct harvest_source){ .kind = BACKEND_READ_HWPT,
					    .id = dom->hwpt_id };
	for (size_t i = 0; i < dom->nbatches; i++)
		dom->batches[i].src = 0;
	dom->on_done = on_done;
	dom->ctx = ctx;
	dom->result = 0;
	dom->next = 0;
	dom->pending = dom->nbatches;
	e->busy++;
	if (!dom->nbatches) {
		e->busy--;
		if (on_done)
			on_done(ctx, dom, 0);
		dom->round++;
		return 0;
	}
	dom->qnext = NULL;
	if (e->qtail)
		e->qtail->qnext = dom;
	else
		e->qhead = dom;
	e->qtail = dom;
	return harvest_engine_pump(e);
}

static void batch_done(struct harvest_engine *e, struct harvest_batch *batch,
		       int res, int *finished)
{
	struct harvest_domain *dom = batch->dom;
	size_t nsrc;

	/*
	 * The backend's CQE is the final answer: the non-blocking issue of
	 * a uring command that would block (-EAGAIN) never reaches us,
	 * io_uring re-issues it on io-wq, where it may sleep.  So -EAGAIN
	 * here, like any -errno, fails the batch and the round.  A failed
	 * hand-off to a worker, too: the batch never ran.
	 */
	if (!e->pool) {
		struct harvest_source *src =
			(struct harvest_source *)harvest_sources(dom, &nsrc);

		/* the read of source batch->src ended (its error counted) */
		if (res < 0 && batch->src < nsrc)
			__atomic_fetch_add(&src[batch->src].errors, 1,
					   __ATOMIC_RELAXED);
		if (res >= 0 && ++batch->src < nsrc) {
			/* the next source, into the same slice */
			res = harvest_batch_next(e, batch);
			if (res == 0)
				return;
			batch->src = nsrc;	/* not the source's error */
		}
		harvest_batch_finish(batch, res);
	}
	if (res < 0 && !dom->result)
		dom->result = res;
	e->inflight--;
	if (--dom->pending == 0) {
		e->busy--;
		dom->round++;
		(*finished)++;
		if (dom->on_done)
			dom->on_done(dom->ctx, dom, dom->result);
	}
}

int harvest_engine_process(struct harvest_engine *e)
{
	struct io_uring_cqe *cqe;
	uint64_t dummy;
	int finished = 0, r;

	if (read(e->efd, &dummy, sizeof(dummy)) < 0 && errno != EAGAIN)
		return -errno;
	while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
		struct harvest_batch *batch = (void *)(uintptr_t)cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(&e->ring, cqe);
		batch_done(e, batch, res, &finished);
	}
	r = harvest_engine_pump(e);
	return r < 0 ? r : finished;
}

int harvest_engine_wait(struct harvest_engine *e)
{
	int total = 0;

	while (e->busy) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&e->ring, &cqe);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		r = harvest_engine_process(e);
		if (r < 0)
			return r;
		total += r;
	}
	return total;
}
