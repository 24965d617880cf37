// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernel/backend_impl.h"

/* backend_why(): one sentence per thread, "" for none. */
static __thread char backend_why_buf[256];

const char *backend_why(void)
{
	return backend_why_buf[0] ? backend_why_buf : NULL;
}

void backend_why_clear(void)
{
	backend_why_buf[0] = '\0';
}

int backend_why_set(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(backend_why_buf, sizeof(backend_why_buf), fmt, ap);
	va_end(ap);
	return err;
}

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

void backend_kept_close(const struct backend_kept_fd *kept, size_t n_kept)
{
	size_t i;

	for (i = 0; kept && i < n_kept; i++)
		if (kept[i].fd >= 0)
			close(kept[i].fd);
}

int backend_open(const struct backend_config *cfg, struct backend **out)
{
	backend_why_clear();
	if (!cfg || !out) {
		if (cfg)
			backend_kept_close(cfg->kept, cfg->n_kept);
		return -EINVAL;
	}
	*out = NULL;
	if (cfg->n_kept && !cfg->kept)
		return -EINVAL;
	switch (cfg->kind) {
	case BACKEND_IOMMUFD:
		return iommufd_backend_open(cfg, out);
	case BACKEND_SIM:
		if (cfg->n_kept)
			return sim_backend_adopt(cfg->kept, cfg->n_kept, out);
		return sim_backend_open(&cfg->sim, out);
	}
	backend_kept_close(cfg->kept, cfg->n_kept);
	return -EINVAL;
}

void backend_close(struct backend *b)
{
	if (b)
		b->ops->close(b);
}

void backend_leave(struct backend *b)
{
	if (b)
		b->ops->leave(b);
}
