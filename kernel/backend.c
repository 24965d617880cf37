// SPDX-License-Identifier: MIT
#include <ctype.h>
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

/* Reads @min to @max hex digits at *@p and advances *@p past them. */
static int hex_field(const char **p, unsigned int min, unsigned int max,
		     unsigned int *val)
{
	unsigned int n = 0, v = 0;

	while (n < max && isxdigit((unsigned char)(*p)[n])) {
		int c = tolower((unsigned char)(*p)[n]);

		v = v * 16 + (unsigned int)(isdigit(c) ? c - '0' :
					    c - 'a' + 10);
		n++;
	}
	if (n < min)
		return -EINVAL;
	*p += n;
	*val = v;
	return 0;
}

int backend_pci_addr_parse(const char *s, char out[BACKEND_PCI_ADDR_LEN])
{
	unsigned int domain = 0, bus, slot, fn;
	const char *colon = strchr(s, ':');
	const char *p = s;

	if (colon && strchr(colon + 1, ':')) {
		if (hex_field(&p, 4, 8, &domain) || *p++ != ':')
			return -EINVAL;
	}
	if (hex_field(&p, 2, 2, &bus) || *p++ != ':' ||
	    hex_field(&p, 2, 2, &slot) || *p++ != '.' ||
	    hex_field(&p, 1, 1, &fn) || *p)
		return -EINVAL;
	if (slot > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, BACKEND_PCI_ADDR_LEN, "%04x:%02x:%02x.%x", domain, bus,
		 slot, fn);
	return 0;
}

int backend_device_name_canonical(const char *name, char *out, size_t len)
{
	char addr[BACKEND_PCI_ADDR_LEN];
	int n;

	if (!name || !*name || !out)
		return -EINVAL;
	if (!backend_pci_addr_parse(name, addr))
		name = addr;
	n = snprintf(out, len, "%s", name);
	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
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

const char *backend_kind_name(enum backend_kind kind)
{
	switch (kind) {
	case BACKEND_IOMMUFD:
		return "iommufd";
	case BACKEND_SIM:
		return "sim";
	}
	return "unknown";
}

int backend_kind_caps(enum backend_kind kind, struct backend_caps *caps)
{
	if (!caps)
		return -EINVAL;
	switch (kind) {
	case BACKEND_IOMMUFD:
		*caps = iommufd_kind_caps;
		return 0;
	case BACKEND_SIM:
		*caps = sim_kind_caps;
		return 0;
	}
	return -EINVAL;
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

int backend_open_given(const struct backend_config *cfg, int iommufd,
		       const struct backend_given_device *devs, size_t n,
		       uint32_t hwpt_id, struct backend **out)
{
	backend_why_clear();
	if (cfg && out && cfg->kind == BACKEND_IOMMUFD && (devs || !n))
		return iommufd_backend_open_given(cfg, iommufd, devs, n,
						  hwpt_id, out);
	if (iommufd >= 0)
		close(iommufd);
	for (size_t i = 0; devs && i < n; i++)
		if (devs[i].fd >= 0)
			close(devs[i].fd);
	if (cfg && cfg->kind == BACKEND_SIM)
		return backend_why_set(-EOPNOTSUPP, "the sim backend has no "
				       "descriptors to take back");
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
