// SPDX-License-Identifier: MIT
/*
 * IOMMU_HWPT_GET_DIRTY_BITMAP as an io_uring command: the iommufd
 * backend's asynchronous dirty read (backend_dirty_read_prep()).
 *
 * A kernel with kernel/patches/ applied runs the ioctl as an
 * IORING_OP_URING_CMD on /dev/iommu: cmd_op is the ioctl number, its
 * struct sits at the start of the command area of a 128-byte SQE, and the
 * CQE carries the ioctl's 0 or -errno.  No stock kernel does; open probes.
 */
#include <liburing.h>
#include <stddef.h>
#include <string.h>

#include "kernel/iommufd/iommufd_impl.h"

/* The command area of a 128-byte SQE, where a uring command's struct goes. */
#define URING_CMD_AREA (2 * sizeof(struct io_uring_sqe) - \
			offsetof(struct io_uring_sqe, cmd))

/*
 * Fill @sqe (of an IORING_SETUP_SQE128 ring) with @cmd as a uring command
 * on @fd: cmd_op the ioctl number, the struct at the start of the command
 * area, the rest of the area zero (an SQE slot is reused: no stale bytes
 * past the struct).
 */
static void prep_dirty_bitmap_cmd(struct io_uring_sqe *sqe, int fd,
				  const struct iommu_hwpt_get_dirty_bitmap *cmd)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = IOMMU_HWPT_GET_DIRTY_BITMAP;
	memset(sqe->cmd, 0, URING_CMD_AREA);
	memcpy(sqe->cmd, cmd, sizeof(*cmd));
}

int iommufd_dirty_read_prep(struct backend *b, struct io_uring_sqe *sqe,
			    int ring_fd, struct backend_dirty_read *rd,
			    uint64_t user_data)
{
	struct iommufd_backend *ib = to_iommufd_backend(b);
	struct iommu_hwpt_get_dirty_bitmap cmd =
		iommufd_dirty_bitmap_cmd(rd->hwpt_id, rd->iova, rd->length,
					 rd->page_size, rd->bitmap, rd->flags);

	(void)ring_fd;	/* the CQE comes on the ring of @sqe */
	if (!ib->uring_cmd)
		return -EOPNOTSUPP;
	prep_dirty_bitmap_cmd(sqe, ib->fd, &cmd);
	io_uring_sqe_set_data64(sqe, user_data);
	return 0;
}

/*
 * Does /dev/iommu run IOMMU_HWPT_GET_DIRTY_BITMAP as a uring command?  Ask
 * for HWPT 0, which never exists: a kernel with the handler says -ENOENT,
 * as the ioctl would; one without it -EOPNOTSUPP (no .uring_cmd in the
 * file operations).  Anything else (-EINVAL of an io_uring that does not
 * know the opcode or SQE128, a handler that answers differently from the
 * ioctl) is not a path the harvest engine trusts with a round.
 */
bool iommufd_uring_cmd_probe(int fd)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = 0,
	};
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	bool ok = false;

	if (fd < 0 || io_uring_queue_init(2, &ring, IORING_SETUP_SQE128) < 0)
		return false;
	sqe = io_uring_get_sqe(&ring);
	prep_dirty_bitmap_cmd(sqe, fd, &cmd);
	if (io_uring_submit(&ring) == 1 && !io_uring_wait_cqe(&ring, &cqe)) {
		ok = cqe->res == -ENOENT;
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	return ok;
}
