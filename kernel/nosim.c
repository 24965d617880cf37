// SPDX-License-Identifier: MIT
/*
 * dirtyd without the simulated host (DIRTYD_SIM=OFF, for packagers who
 * ship only the iommufd backend): what the rest of dirtyd calls of
 * kernel/sim/ and kernel/dma_load.c, refusing.  backend = sim, [sim]
 * kernel and a [guest]'s DMA load fail with EOPNOTSUPP and say why;
 * kernel/CMakeLists.txt links this instead of the dirtyd_sim sources.
 */
#include <errno.h>

#include "kernel/backend_impl.h"
#include "kernel/dma_load.h"
#include "kernel/sim/kernel.h"
#include "kernel/sim/sim.h"

static int nosim(void)
{
	backend_why_set(0, "this dirtyd is built without the simulated host "
			"(DIRTYD_SIM=OFF)");
	return -EOPNOTSUPP;
}

int sim_backend_open(const struct sim_config *cfg, struct backend **out)
{
	return nosim();
}

int sim_backend_adopt(const struct backend_kept_fd *kept, size_t n_kept,
		      struct backend **out)
{
	backend_kept_close(kept, n_kept);
	return nosim();
}

int sim_backend_stats(struct backend *b, struct sim_stats *st)
{
	return nosim();
}

int sim_kernel_lookup(const char *release, struct sim_kernel *out)
{
	return nosim();
}

int dma_load_start(struct backend *b, const struct dma_load_config *cfg,
		   struct dma_load **out)
{
	if (out)
		*out = NULL;
	return nosim();
}

void dma_load_stop(struct dma_load *l)
{
}
