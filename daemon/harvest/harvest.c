// SPDX-License-Identifier: MIT
/* The harvest engine's execution: one io_uring, uring commands or workers. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"

/*
 * user_data tags.  Batches are 8-byte aligned, so the low bits are free:
 * a completion posted by a worker carries the bare batch pointer; a
 * MSG_RING that failed comes back to its sender tagged.
 */
#define TAG_SEND_FAILED 1ULL
#define TAG_MASK 7ULL

/* The command area of a 128-byte SQE, where a uring command's struct goes. */
#define URING_CMD_AREA (2 * sizeof(struct io_uring_sqe) - \
			offsetof(struct io_uring_sqe, cmd))

/*
 * Fill @sqe (of an IORING_SETUP_SQE128 ring) with IOMMU_HWPT_GET_DIRTY_BITMAP
 * @cmd as a uring command on @iommufd: cmd_op the ioctl number, the struct
 * at the start of the command area, the rest of the area zero (an SQE slot
 * is reused: no stale bytes past the struct).
 */
static void prep_dirty_bitmap_cmd(struct io_uring_sqe *sqe, int iommufd,
				  const struct iommu_hwpt_get_dirty_bitmap *cmd)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, iommufd, NULL, 0, 0);
	sqe->cmd_op = IOMMU_HWPT_GET_DIRTY_BITMAP;
	memset(sqe->cmd, 0, URING_CMD_AREA);
	memcpy(sqe->cmd, cmd, sizeof(*cmd));
}

struct harvest_worker {
	struct harvest_engine *e;
	struct io_uring ring;
	pthread_t thread;
	unsigned int inflight;	/* engine thread only */
	bool ring_ok, thread_ok;
};

struct harvest_engine {
	struct backend *b;
	struct io_uring ring;
	bool ring_ok;
	int efd;
	bool uring_cmd;
	int iommufd;
	unsigned int nworkers;
	struct harvest_worker *workers;
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

static void harvest_batch_run(struct backend *b, struct harvest_batch *batch)
{
	struct harvest_domain *dom = batch->dom;

	if (dom->b)
		b = dom->b;

	harvest_batch_finish(batch,
			     backend_hwpt_get_dirty_bitmap(b, dom->hwpt_id,
							   batch->iova,
							   batch->length,
							   dom->page_size,
							   harvest_batch_target(batch),
							   dom->flags));
}

/* Post @batch's completion to the engine ring; retry until it lands, as
 * the engine's CQ is sized for every batch in flight. */
static void worker_complete(struct harvest_worker *w,
			    struct harvest_batch *batch)
{
	for (;;) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

		if (!sqe) {
			io_uring_submit(&w->ring);
			continue;
		}
		io_uring_prep_msg_ring(sqe, w->e->ring.ring_fd,
				       (unsigned int)batch->result,
				       (uint64_t)(uintptr_t)batch, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, (uintptr_t)batch | TAG_SEND_FAILED);
		if (io_uring_submit(&w->ring) >= 0)
			return;
	}
}

static void *worker_main(void *arg)
{
	struct harvest_worker *w = arg;

	for (;;) {
		struct io_uring_cqe *cqe;
		uint64_t data;
		int r = io_uring_wait_cqe(&w->ring, &cqe);

		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		data = cqe->user_data;
		r = cqe->res;
		io_uring_cqe_seen(&w->ring, cqe);

		if (data & TAG_SEND_FAILED) {
			/* our completion did not land (engine CQ full): resend */
			usleep(100);
			worker_complete(w, (void *)(uintptr_t)(data & ~TAG_MASK));
			continue;
		}
		if (!data)
			break;	/* stop */
		harvest_batch_run(w->e->b, (void *)(uintptr_t)data);
		worker_complete(w, (void *)(uintptr_t)data);
	}
	return NULL;
}

/*
 * Does /dev/iommu run IOMMU_HWPT_GET_DIRTY_BITMAP as a uring command?  Ask
 * for HWPT 0, which never exists: a kernel with the handler says -ENOENT,
 * as the ioctl would; one without it -EOPNOTSUPP (no .uring_cmd in the
 * file operations).  Anything else (-EINVAL of an io_uring that does not
 * know the opcode or SQE128, a handler that answers differently from the
 * ioctl) is not a path the engine trusts with a round.
 */
static bool probe_uring_cmd(struct harvest_engine *e)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = 0,
	};
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	bool ok = false;

	if (e->iommufd < 0 ||
	    io_uring_queue_init(2, &ring, IORING_SETUP_SQE128) < 0)
		return false;
	sqe = io_uring_get_sqe(&ring);
	prep_dirty_bitmap_cmd(sqe, e->iommufd, &cmd);
	if (io_uring_submit(&ring) == 1 && !io_uring_wait_cqe(&ring, &cqe)) {
		ok = cqe->res == -ENOENT;
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	return ok;
}

void harvest_engine_free(struct harvest_engine *e)
{
	if (!e)
		return;
	for (unsigned int i = 0; i < e->nworkers; i++) {
		struct harvest_worker *w = &e->workers[i];

		if (w->thread_ok) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

			if (sqe) {
				io_uring_prep_msg_ring(sqe, w->ring.ring_fd, 0,
						       0, 0);
				sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
				io_uring_submit(&e->ring);
			}
			pthread_join(w->thread, NULL);
		}
		if (w->ring_ok)
			io_uring_queue_exit(&w->ring);
	}
	free(e->workers);
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
	struct harvest_engine *e;
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
	e->iommufd = backend_iommufd(b);
	e->uring_cmd = !cfg->force_workers && probe_uring_cmd(e);

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	e->nworkers = e->uring_cmd ? 0 :
		      cfg->workers ? cfg->workers : (ncpu > 0 ? ncpu : 1);
	e->max_inflight = cfg->max_inflight ? cfg->max_inflight :
			  4 * (e->nworkers ? e->nworkers : 16);

	p.flags = IORING_SETUP_CQSIZE | (e->uring_cmd ? IORING_SETUP_SQE128 : 0);
	p.cq_entries = roundup_pow2(2 * e->max_inflight + 2 * e->nworkers);
	r = io_uring_queue_init_params(roundup_pow2(e->max_inflight + e->nworkers),
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

	if (e->nworkers) {
		e->workers = calloc(e->nworkers, sizeof(*e->workers));
		if (!e->workers) {
			r = -ENOMEM;
			goto fail;
		}
	}
	for (unsigned int i = 0; i < e->nworkers; i++) {
		struct harvest_worker *w = &e->workers[i];

		w->e = e;
		r = io_uring_queue_init(roundup_pow2(e->max_inflight + 2),
					&w->ring, 0);
		if (r < 0)
			goto fail;
		w->ring_ok = true;
		r = -pthread_create(&w->thread, NULL, worker_main, w);
		if (r < 0)
			goto fail;
		w->thread_ok = true;
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
	return e->uring_cmd ? "uring_cmd" : "workers";
}

unsigned int harvest_engine_workers(const struct harvest_engine *e)
{
	return e->nworkers;
}

size_t harvest_engine_busy(const struct harvest_engine *e)
{
	return e->busy;
}

static struct harvest_worker *least_loaded(struct harvest_engine *e)
{
	struct harvest_worker *best = &e->workers[0];

	for (unsigned int i = 1; i < e->nworkers; i++)
		if (e->workers[i].inflight < best->inflight)
			best = &e->workers[i];
	return best;
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
		if (e->uring_cmd) {
			struct iommu_hwpt_get_dirty_bitmap cmd = {
				.size = sizeof(cmd),
				.hwpt_id = dom->hwpt_id,
				.flags = dom->flags,
				.iova = batch->iova,
				.length = batch->length,
				.page_size = dom->page_size,
				.data = (uintptr_t)harvest_batch_target(batch),
			};

			prep_dirty_bitmap_cmd(sqe, dom->b ?
					      backend_iommufd(dom->b) :
					      e->iommufd, &cmd);
			io_uring_sqe_set_data64(sqe, (uintptr_t)batch);
		} else {
			struct harvest_worker *w = least_loaded(e);

			io_uring_prep_msg_ring(sqe, w->ring.ring_fd, 0,
					       (uintptr_t)batch, 0);
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
			io_uring_sqe_set_data64(sqe, (uintptr_t)batch |
						     TAG_SEND_FAILED);
			w->inflight++;
			batch->worker = w - e->workers;
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

	/*
	 * A uring command's CQE is the final answer: the non-blocking issue
	 * that would block (-EAGAIN) never reaches us, io_uring re-issues it
	 * on io-wq, where it may sleep.  So -EAGAIN here, like any -errno,
	 * fails the batch and the round.
	 */
	if (e->uring_cmd)
		harvest_batch_finish(batch, res);
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
		uint64_t data = cqe->user_data;
		int res = cqe->res;
		struct harvest_batch *batch = (void *)(uintptr_t)(data & ~TAG_MASK);

		io_uring_cqe_seen(&e->ring, cqe);
		if (!e->uring_cmd) {
			/* a failed hand-off (tagged) means the batch never
			 * ran: it fails with the MSG_RING error */
			e->workers[batch->worker].inflight--;
		}
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
