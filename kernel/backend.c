// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "kernel/backend_impl.h"

int backend_kind_from_string(const char *s, enum backend_kind *out)
{
	if (!s || !out)
		return -EINVAL;
	if (!strcmp(s, "iommufd"))
		*out = BACKEND_IOMMUFD;
	else if (!strcmp(s, "sim"))
		*out = BACKEND_SIM;
	else
		return -EINVAL;
	return 0;
}

int backend_open(const struct backend_config *cfg, struct backend **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	switch (cfg->kind) {
	case BACKEND_IOMMUFD:
		return iommufd_backend_open(cfg, out);
	case BACKEND_SIM:
		return sim_backend_open(&cfg->sim, out);
	}
	return -EINVAL;
}

void backend_close(struct backend *b)
{
	if (b)
		b->ops->close(b);
}
