/* SPDX-License-Identifier: MIT */
/* Private to kernel/: the constructors backend_open() dispatches to. */
#ifndef DIRTYD_KERNEL_BACKEND_IMPL_H
#define DIRTYD_KERNEL_BACKEND_IMPL_H

#include "kernel/backend.h"

/* What a context of each kind can do before it is open (backend.h). */
extern const struct backend_caps iommufd_kind_caps;
extern const struct backend_caps sim_kind_caps;

int iommufd_backend_open(const struct backend_config *cfg,
			 struct backend **out);
int sim_backend_open(const struct sim_config *cfg, struct backend **out);
int iommufd_backend_open_given(const struct backend_config *cfg, int iommufd,
			       const struct backend_given_device *devs,
			       size_t n, uint32_t hwpt_id,
			       struct backend **out);
/* Adopt a kept sim host; owns the descriptors, also on failure. */
int sim_backend_adopt(const struct backend_kept_fd *kept, size_t n_kept,
		      struct backend **out);
/* Close every kept descriptor (an adoption that cannot even start). */
void backend_kept_close(const struct backend_kept_fd *kept, size_t n_kept);
/*
 * Record why @err (negative) happened, for backend_why(), and return it:
 *	return backend_why_set(-EINVAL, "a path is not a device name");
 */
int backend_why_set(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
