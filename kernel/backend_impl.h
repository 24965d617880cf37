/* SPDX-License-Identifier: MIT */
/* Private to kernel/: the constructors backend_open() dispatches to. */
#ifndef DIRTYD_KERNEL_BACKEND_IMPL_H
#define DIRTYD_KERNEL_BACKEND_IMPL_H

#include "kernel/backend.h"

int iommufd_backend_open(const struct backend_config *cfg,
			 struct backend **out);
int sim_backend_open(const struct sim_config *cfg, struct backend **out);

#endif
