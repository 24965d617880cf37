// SPDX-License-Identifier: MIT
/*
 * dirtyd.conf(5): the ini parser, the keys, their defaults and checks.
 * Owns: every limit's value and default (each is checked next to what it
 * guards: docs/ARCHITECTURE.md lists where), and which keys a reload
 * (SIGHUP) changes in the running daemon (config_reload()).
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daemon/config/config.h"
#include "daemon/util/log.h"
#include "kernel/sim/kernel.h"

#define LINE_MAX_LEN 4096

/* A uid or gid: what uid_t holds, but never (uid_t)-1, chown(2)'s "leave
 * it alone" and setuid(2)'s error. */
_Static_assert(sizeof(uid_t) == sizeof(gid_t) && (uid_t)-1 > 0,
	       "uid_t and gid_t: the same unsigned type");
#define ID_MAX ((uint64_t)(uid_t)-1 - 1)

static const char *const log_levels[] = {
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

static const char *const dma_patterns[] = {
	[DMA_PATTERN_UNIFORM] = "uniform",
	[DMA_PATTERN_CLUSTERED] = "clustered",
	[DMA_PATTERN_SEQUENTIAL] = "sequential",
	[DMA_PATTERN_HOTSET] = "hotset",
};

const char *config_log_level_name(int level)
{
	if (level >= LOG_ERR && level <= LOG_DEBUG && log_levels[level])
		return log_levels[level];
	return "?";
}

static int set_string(char **dst, const char *v)
{
	char *s = NULL;

	if (*v) {
		s = strdup(v);
		if (!s)
			return -ENOMEM;
	}
	free(*dst);
	*dst = s;
	return 0;
}

int config_init(struct config *c)
{
	*c = (struct config){
		.backend = BACKEND_IOMMUFD,
		.socket_mode = 0660,
		.socket_gid = (gid_t)-1,
		.admin_gid = (gid_t)-1,
		.max_clients = 256,
		.max_clients_per_uid = 32,
		.root_clients = CONFIG_ROOT_CLIENTS_AUTO,
		.hello_timeout = 10,
		.max_parked = 64,
		.max_parked_bytes = 4ULL << 30,
		.max_inflight = 8,
		.max_subscriptions = 64,
		.max_domains = 64,
		.max_devices = 64,
		.max_mapped = 4ULL << 40,
		.workers = 0,
		.log_level = LOG_INFO,
		.resume_grace = 30,
		.backing_page_size = 4096,
		.n_devices = 3,
		.devices = {
			{ .name = "sim-nic0", .dirty_tracking = true },
			{ .name = "sim-legacy0", .dirty_tracking = false },
			/* a VF that logs its own DMA, behind a second IOMMU
			 * without dirty bits (issue 17's sources) */
			{ .name = "sim-vf0", .iommu = 1, .dma_logging = true },
		},
	};
	if (set_string(&c->socket, "/run/dirtyd/dirtyd.sock") < 0 ||
	    set_string(&c->iommufd_path, "/dev/iommu") < 0 ||
	    set_string(&c->device_provider, "vfio") < 0) {
		config_release(c);
		return -ENOMEM;
	}
	return 0;
}

static void device_acl_release(struct config_device_acl *a)
{
	for (size_t i = 0; i < a->n_who; i++)
		free(a->who[i].name);
	free(a->who);
	free(a->key);
	free(a->value);
	*a = (struct config_device_acl){ 0 };
}

void config_release(struct config *c)
{
	for (size_t i = 0; i < c->n_device_acls; i++)
		device_acl_release(&c->device_acls[i]);
	free(c->device_acls);
	free(c->socket);
	free(c->socket_group);
	free(c->admin_group);
	free(c->iommufd_path);
	free(c->device_provider);
	free(c->guests);
	*c = (struct config){ 0 };
}

/* ------------------------------------------------------------ values */

/* An unsigned integer: decimal, 0x hex or 0 octal, nothing after it. */
static int parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-' || isspace((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = x;
	return 0;
}

static int parse_uint(const char *v, unsigned int max, unsigned int *out)
{
	uint64_t x;

	if (parse_u64(v, &x) < 0 || x > max)
		return -EINVAL;
	*out = (unsigned int)x;
	return 0;
}

/* A size: a number with an optional K, M, G or T (binary) suffix,
 * optionally followed by "iB" or "B"; case does not matter. */
static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long x;
	unsigned int shift = 0;

	if (!*v || !isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	case 't': shift = 40; end++; break;
	}
	if (shift && !strcasecmp(end, "ib"))
		end += 2;
	else if (!strcasecmp(end, "b"))
		end++;
	if (*end || (shift && x > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = x << shift;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_log_level(const char *v, int *out)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (log_levels[i] && !strcasecmp(v, log_levels[i])) {
			*out = i;
			return 0;
		}
	if (!strcasecmp(v, "err")) {
		*out = LOG_ERR;
		return 0;
	}
	return -EINVAL;
}

/*
 * One attribute of a [sim] device entry, "key=value" (struct
 * sim_device_spec's fields).
 */
static int parse_device_attr(struct sim_device_spec *d, char *attr,
			     const char *origin)
{
	char *eq = strchr(attr, '='), *v;
	unsigned int u;

	if (!eq)
		return log_error_errno(-EINVAL, "%s: device '%s': '%s' is not "
				       "key=value", origin, d->name, attr);
	*eq = '\0';
	v = eq + 1;
	if (!strcmp(attr, "iommu")) {
		if (parse_uint(v, 255, &d->iommu) < 0)
			goto bad;
	} else if (!strcmp(attr, "dma_logging")) {
		if (parse_bool(v, &d->dma_logging) < 0)
			goto bad;
	} else if (!strcmp(attr, "emulated")) {
		if (parse_bool(v, &d->emulated) < 0)
			goto bad;
	} else if (!strcmp(attr, "dma_log_page_size")) {
		if (parse_size(v, &d->dma_log_page_size) < 0 ||
		    d->dma_log_page_size < 4096 ||
		    d->dma_log_page_size > (1ULL << 30) ||
		    (d->dma_log_page_size & (d->dma_log_page_size - 1)))
			goto bad;
	} else if (!strcmp(attr, "dma_log_max_ranges")) {
		if (parse_uint(v, BACKEND_DMA_LOG_MAX_RANGES, &u) < 0 || !u)
			goto bad;
		d->dma_log_max_ranges = u;
	} else {
		return log_error_errno(-EINVAL, "%s: device '%s': unknown "
				       "attribute '%s' (iommu, dma_logging, "
				       "dma_log_page_size, dma_log_max_ranges, "
				       "emulated)", origin, d->name, attr);
	}
	return 0;
bad:
	return log_error_errno(-EINVAL, "%s: device '%s': %s = '%s': expected "
			       "%s", origin, d->name, attr, v,
			       !strcmp(attr, "iommu") ? "0 .. 255" :
			       !strcmp(attr, "dma_log_page_size") ?
			       "a power of two, 4k .. 1g" :
			       !strcmp(attr, "dma_log_max_ranges") ?
			       "1 .. 256" : "yes or no");
}

/* The attributes of @d, after its kind, separated by blanks; then whether
 * they make sense together. */
static int parse_device_attrs(struct sim_device_spec *d, char *attrs,
			      const char *origin)
{
	char *save = NULL, *a;
	bool log_keys = false;
	int r;

	for (a = strtok_r(attrs, " \t", &save); a;
	     a = strtok_r(NULL, " \t", &save)) {
		log_keys |= !strncmp(a, "dma_log_", 8);
		if ((r = parse_device_attr(d, a, origin)) < 0)
			return r;
	}
	if (log_keys && !d->dma_logging)
		return log_error_errno(-EINVAL, "%s: device '%s': "
				       "dma_log_page_size and "
				       "dma_log_max_ranges need "
				       "dma_logging=yes", origin, d->name);
	if (d->emulated && (d->dirty_tracking || d->iommu))
		return log_error_errno(-EINVAL, "%s: device '%s': an emulated "
				       "device has no IOMMU: it is :nodirty "
				       "and has no iommu=", origin, d->name);
	return 0;
}

/* "name:dirty,name:nodirty iommu=1 dma_logging=yes,..." */
static int parse_devices(struct config *c, const char *v, const char *origin)
{
	struct sim_device_spec devs[SIM_MAX_DEVICES];
	unsigned int n = 0;
	char buf[LINE_MAX_LEN];
	char *save = NULL, *tok;

	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon, *name = tok, *kind, *attrs;
		int r;

		while (isspace((unsigned char)*name))
			name++;
		/* the attributes follow the kind after a blank */
		attrs = name + strcspn(name, " \t");
		if (*attrs)
			*attrs++ = '\0';
		/* the last ':': a name may be a PCI address */
		colon = strrchr(name, ':');
		if (!colon)
			return log_error_errno(-EINVAL, "%s: device '%s' needs "
					       ":dirty or :nodirty", origin,
					       name);
		*colon = '\0';
		kind = colon + 1;
		for (char *e = kind + strlen(kind); e > kind &&
		     isspace((unsigned char)e[-1]); e--)
			e[-1] = '\0';
		for (char *e = name + strlen(name); e > name &&
		     isspace((unsigned char)e[-1]); e--)
			e[-1] = '\0';
		if (n == SIM_MAX_DEVICES)
			return log_error_errno(-EINVAL, "%s: more than %d "
					       "devices", origin,
					       SIM_MAX_DEVICES);
		memset(&devs[n], 0, sizeof(devs[n]));
		/* named as clients will name it: 65:00.0 is 0000:65:00.0 */
		if (backend_device_name_canonical(name, devs[n].name,
						  BACKEND_NAME_MAX) < 0)
			return log_error_errno(-EINVAL, "%s: bad device name "
					       "'%s' (1 to %d characters)",
					       origin, name,
					       BACKEND_NAME_MAX - 1);
		for (unsigned int i = 0; i < n; i++)
			if (!strcmp(devs[i].name, devs[n].name))
				return log_error_errno(-EINVAL, "%s: device "
						       "'%s' listed twice",
						       origin, name);
		if (!strcmp(kind, "dirty"))
			devs[n].dirty_tracking = true;
		else if (strcmp(kind, "nodirty"))
			return log_error_errno(-EINVAL, "%s: device '%s': "
					       "'%s' is neither dirty nor "
					       "nodirty", origin, name, kind);
		if ((r = parse_device_attrs(&devs[n], attrs, origin)) < 0)
			return r;
		n++;
	}
	memcpy(c->devices, devs, sizeof(devs[0]) * n);
	c->n_devices = n;
	return 0;
bad:
	return log_error_errno(-EINVAL, "%s: bad device list", origin);
}

static int parse_owner(const char *v, uid_t *out)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	uint64_t x;

	if (!parse_u64(v, &x)) {
		if (x > ID_MAX)
			return -ERANGE;
		*out = (uid_t)x;
		return 0;
	}
	if (getpwnam_r(v, &pw, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*out = res->pw_uid;
	return 0;
}

/* ------------------------------------------------------------ sections */

static struct guest_config *guest_find(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_guests; i++)
		if (!strcmp(c->guests[i].name, name))
			return &c->guests[i];
	return NULL;
}

static int guest_add(struct config *c, const char *name, const char *origin,
		     struct guest_config **out)
{
	struct guest_config *g;

	if (!*name || strlen(name) >= CONFIG_GUEST_NAME_MAX ||
	    strpbrk(name, " \t[]."))
		return log_error_errno(-EINVAL, "%s: bad guest name '%s' (1 to "
				       "%d characters, no blanks, dots or "
				       "brackets)", origin, name,
				       CONFIG_GUEST_NAME_MAX - 1);
	if (c->n_guests == CONFIG_MAX_GUESTS)
		return log_error_errno(-EINVAL, "%s: more than %d guests",
				       origin, CONFIG_MAX_GUESTS);
	g = realloc(c->guests, (c->n_guests + 1) * sizeof(*g));
	if (!g)
		return log_error_errno(-ENOMEM, "%s", origin);
	c->guests = g;
	g = &c->guests[c->n_guests++];
	*g = (struct guest_config){
		.size = 16ULL << 30,
		.iova = 0,
		.tracking = true,
		.huge_pages = true,
		.owner = 0,
		.dma = false,
		.pattern = DMA_PATTERN_UNIFORM,
		.dma_rate = 10000,
		.dma_threads = 1,
		.cluster_pages = 64,
		.hot_pages = 4096,
		.seed = 1,
	};
	strcpy(g->name, name);
	snprintf(g->origin, sizeof(g->origin), "%s", origin);
	*out = g;
	return 0;
}

static int bad_value(const char *origin, const char *section,
		     const char *key, const char *value, const char *want)
{
	return log_error_errno(-EINVAL, "%s: [%s] %s = '%s': %s", origin,
			       section, key, value, want);
}

/* [daemon]'s counts: where each goes, its range, what a wrong value is told. */
static const struct uint_key {
	const char *key;
	size_t off;
	unsigned int min, max;
	const char *want;
} daemon_uints[] = {
/* (the sizeof() fails to compile unless the field is an unsigned int) */
#define U(k, lo, hi, w)							\
	{ #k, offsetof(struct config, k) + 0 * sizeof(char[		\
		__builtin_types_compatible_p(				\
			__typeof__(((struct config *)0)->k),		\
			unsigned int) ? 1 : -1]), lo, hi, w }
	U(max_clients, 1, 65536, "expected 1 .. 65536"),
	U(max_clients_per_uid, 1, 65536, "expected 1 .. 65536"),
	U(root_clients, 0, 65535, "expected 0 .. 65536, less than max_clients"),
	U(hello_timeout, 0, 3600, "expected seconds, 0 (none) .. 3600"),
	U(max_parked, 0, 65536, "expected 0 (no resume) .. 65536"),
	U(max_inflight, 1, 4096, "expected 1 .. 4096"),
	U(max_subscriptions, 1, 65536, "expected 1 .. 65536"),
	U(max_domains, 1, 65536, "expected 1 .. 65536"),
	U(max_devices, 1, 65536, "expected 1 .. 65536"),
	U(workers, 0, 1024, "expected 0 (one per CPU) .. 1024"),
	U(resume_grace, 0, 86400, "expected seconds, 0 .. 86400"),
#undef U
};

static int set_daemon(struct config *c, const char *key, const char *v,
		      const char *origin)
{
	const char *sec = "daemon";
	int r;

	for (size_t i = 0; i < sizeof(daemon_uints) / sizeof(daemon_uints[0]);
	     i++) {
		const struct uint_key *u = &daemon_uints[i];
		unsigned int x;

		if (strcmp(key, u->key))
			continue;
		if (parse_uint(v, u->max, &x) < 0 || x < u->min)
			return bad_value(origin, sec, key, v, u->want);
		*(unsigned int *)((char *)c + u->off) = x;
		return 0;
	}

	if (!strcmp(key, "backend")) {
		if (backend_kind_from_string(v, &c->backend) < 0)
			return bad_value(origin, sec, key, v,
					 "expected sim or iommufd");
	} else if (!strcmp(key, "socket")) {
		const char *base = strrchr(v, '/');

		if (v[0] != '/' || strlen(v) >= 108 || !base[1] ||
		    !strcmp(base, "/.") || !strcmp(base, "/.."))
			return bad_value(origin, sec, key, v, "expected an "
					 "absolute path of a file, 2 .. 107 "
					 "bytes");
		if ((r = set_string(&c->socket, v)) < 0)
			return log_error_errno(r, "%s", origin);
	} else if (!strcmp(key, "socket_group")) {
		/* resolved by config_check(), after every override */
		if ((r = set_string(&c->socket_group, v)) < 0)
			return log_error_errno(r, "%s", origin);
		snprintf(c->socket_group_origin,
			 sizeof(c->socket_group_origin), "%s", origin);
	} else if (!strcmp(key, "socket_mode")) {
		/* octal digits only: no sign, no blank, no overflow */
		bool octal = *v && strlen(v) <= 11 &&
			     !v[strspn(v, "01234567")];
		unsigned long m = octal ? strtoul(v, NULL, 8) : ULONG_MAX;

		if (m > 0777)
			return bad_value(origin, sec, key, v, "expected an "
					 "octal mode, 0000 .. 0777 (such as "
					 "0660)");
		c->socket_mode = (unsigned int)m;
	} else if (!strcmp(key, "admin_group")) {
		if ((r = set_string(&c->admin_group, v)) < 0)
			return log_error_errno(r, "%s", origin);
		snprintf(c->admin_group_origin,
			 sizeof(c->admin_group_origin), "%s", origin);
	} else if (!strcmp(key, "max_parked_bytes")) {
		if (parse_size(v, &c->max_parked_bytes) < 0)
			return bad_value(origin, sec, key, v,
					 "expected a size (e.g. 1g, 256m)");
	} else if (!strcmp(key, "max_mapped")) {
		if (parse_size(v, &c->max_mapped) < 0 || !c->max_mapped ||
		    c->max_mapped % 4096)
			return bad_value(origin, sec, key, v,
					 "expected a size, a multiple of 4096, "
					 "4k .. 2^64 - 4k (e.g. 4t, 512g)");
	} else if (!strcmp(key, "dirty_source")) {
		static const char *const names[] = {
			[CONFIG_SOURCE_AUTO] = "auto",
			[CONFIG_SOURCE_IOMMU] = "iommu",
			[CONFIG_SOURCE_DEVICE] = "device",
		};
		size_t i;

		for (i = 0; i < 3 && strcmp(v, names[i]); i++)
			;
		if (i == 3)
			return bad_value(origin, sec, key, v, "expected auto, "
					 "iommu or device");
		c->dirty_source = (enum config_dirty_source)i;
	} else if (!strcmp(key, "log_level")) {
		if (parse_log_level(v, &c->log_level) < 0)
			return bad_value(origin, sec, key, v, "expected error, "
					 "warning, notice, info or debug");
	} else {
		return log_error_errno(-EINVAL, "%s: unknown key '%s' in "
				       "section [daemon]", origin, key);
	}
	return 0;
}

static int set_iommufd(struct config *c, const char *key, const char *v,
		       const char *origin)
{
	int r;

	if (!strcmp(key, "device_provider")) {
		if (strcmp(v, "vfio") && strcmp(v, "mock"))
			return bad_value(origin, "iommufd", key, v,
					 "expected vfio or mock");
		if ((r = set_string(&c->device_provider, v)) < 0)
			return log_error_errno(r, "%s", origin);
		return 0;
	}
	if (strcmp(key, "path"))
		return log_error_errno(-EINVAL, "%s: unknown key '%s' in "
				       "section [iommufd]", origin, key);
	if (v[0] != '/')
		return bad_value(origin, "iommufd", key, v,
				 "expected an absolute path");
	if ((r = set_string(&c->iommufd_path, v)) < 0)
		return log_error_errno(r, "%s", origin);
	return 0;
}

static int set_sim(struct config *c, const char *key, const char *v,
		   const char *origin)
{
	if (!strcmp(key, "backing_page_size")) {
		uint64_t x;

		if (parse_size(v, &x) < 0 ||
		    (x != 4096 && x != (2ULL << 20) && x != (1ULL << 30)))
			return bad_value(origin, "sim", key, v,
					 "expected 4k, 2m or 1g");
		c->backing_page_size = x;
		return 0;
	}
	if (!strcmp(key, "devices"))
		return parse_devices(c, v, origin);
	if (!strcmp(key, "kernel")) {
		struct sim_kernel k;

		if (sim_kernel_lookup(v, &k) < 0)
			return bad_value(origin, "sim", key, v,
					 "expected a Linux 6.12.y release "
					 "(6.12.107, ...)");
		snprintf(c->sim_kernel, sizeof(c->sim_kernel), "%s",
			 k.release);
		return 0;
	}
	return log_error_errno(-EINVAL, "%s: unknown key '%s' in section "
			       "[sim]", origin, key);
}

static int set_guest(struct guest_config *g, const char *key, const char *v,
		     const char *origin)
{
	char sec[CONFIG_GUEST_NAME_MAX + 8];
	uint64_t x;

	snprintf(sec, sizeof(sec), "guest %s", g->name);
	if (!strcmp(key, "device")) {
		if (backend_device_name_canonical(v, g->device,
						  sizeof(g->device)) < 0)
			return bad_value(origin, sec, key, v,
					 "expected a device name");
	} else if (!strcmp(key, "size")) {
		if (parse_size(v, &g->size) < 0 || !g->size ||
		    g->size % 4096 || g->size > (1ULL << 48))
			return bad_value(origin, sec, key, v, "expected a "
					 "multiple of 4 KiB, 4k .. 256t, such "
					 "as 16G");
	} else if (!strcmp(key, "iova")) {
		if (parse_size(v, &g->iova) < 0 || g->iova % 4096 ||
		    g->iova >= (1ULL << 48))
			return bad_value(origin, sec, key, v, "expected a "
					 "multiple of 4 KiB, 0 .. 256t - 4k");
	} else if (!strcmp(key, "tracking")) {
		if (parse_bool(v, &g->tracking) < 0)
			return bad_value(origin, sec, key, v,
					 "expected yes or no");
	} else if (!strcmp(key, "huge_pages")) {
		if (parse_bool(v, &g->huge_pages) < 0)
			return bad_value(origin, sec, key, v,
					 "expected yes or no");
	} else if (!strcmp(key, "owner")) {
		char want[64];
		int r = parse_owner(v, &g->owner);

		snprintf(want, sizeof(want), "expected a user name or a uid, "
			 "0 .. %" PRIu64, ID_MAX);
		if (r < 0)
			return bad_value(origin, sec, key, v, r == -ENOENT ?
					 "no such user" : want);
	} else if (!strcmp(key, "dma")) {
		size_t i;

		g->dma = strcmp(v, "none") != 0;
		for (i = 0; g->dma && i < 4; i++)
			if (!strcmp(v, dma_patterns[i])) {
				g->pattern = (enum dma_pattern)i;
				break;
			}
		if (g->dma && i == 4)
			return bad_value(origin, sec, key, v, "expected none, "
					 "uniform, clustered, sequential or "
					 "hotset");
	} else if (!strcmp(key, "dma_rate")) {
		if (parse_u64(v, &g->dma_rate) < 0)
			return bad_value(origin, sec, key, v, "expected pages "
					 "per second, 0 (unthrottled) .. "
					 "2^64 - 1");
	} else if (!strcmp(key, "dma_threads")) {
		if (parse_uint(v, DMA_LOAD_MAX_THREADS, &g->dma_threads) < 0 ||
		    !g->dma_threads)
			return bad_value(origin, sec, key, v,
					 "expected 1 .. 64");
	} else if (!strcmp(key, "cluster_pages")) {
		if (parse_u64(v, &x) < 0 || !x || x > UINT32_MAX)
			return bad_value(origin, sec, key, v, "expected a "
					 "page count, 1 .. 4294967295");
		g->cluster_pages = (uint32_t)x;
	} else if (!strcmp(key, "hot_pages")) {
		if (parse_u64(v, &g->hot_pages) < 0 || !g->hot_pages)
			return bad_value(origin, sec, key, v, "expected a "
					 "page count, 1 .. 2^64 - 1");
	} else if (!strcmp(key, "seed")) {
		if (parse_u64(v, &g->seed) < 0)
			return bad_value(origin, sec, key, v, "expected an "
					 "integer, 0 .. 2^64 - 1");
	} else {
		return log_error_errno(-EINVAL, "%s: unknown key '%s' in "
				       "section [%s]", origin, key, sec);
	}
	return 0;
}

/* [devices]: the entry for @pattern (canonical), or NULL. */
static struct config_device_acl *device_acl_find(struct config *c,
						 const char *pattern)
{
	for (size_t i = 0; i < c->n_device_acls; i++)
		if (!strcmp(c->device_acls[i].pattern, pattern))
			return &c->device_acls[i];
	return NULL;
}

/* A [devices] key: a device name, canonical, or a glob, into @pattern. */
static int device_acl_pattern(const char *key, const char *origin,
			      char pattern[BACKEND_NAME_MAX], bool *glob)
{
	if (!*key || strlen(key) >= BACKEND_NAME_MAX ||
	    key[strcspn(key, " \t,")])
		return log_error_errno(-EINVAL, "%s: [devices] '%s': expected a "
				       "device name or a pattern (*, ?, [...]), "
				       "1 to %d characters without blanks or "
				       "commas", origin, key,
				       BACKEND_NAME_MAX - 1);
	*glob = key[strcspn(key, "*?[")] != '\0';
	if (*glob) {
		strcpy(pattern, key);
		return 0;
	}
	/* 65:00.0 is 0000:65:00.0, as claims name it (device_canonical) */
	return backend_device_name_canonical(key, pattern, BACKEND_NAME_MAX);
}

/* "who, who, ...": "*", a user or "@group", by name or id; "" is none. */
static int device_acl_who(struct config_device_acl *a, const char *v,
			  const char *origin)
{
	const char *p = v;

	if (!*v)
		return 0;	/* the device is root's alone */
	for (;;) {
		size_t len = strcspn(p, ",");
		struct config_who *w;
		const char *tok = p;
		size_t tlen = len;

		while (tlen && isspace((unsigned char)*tok)) {
			tok++;
			tlen--;
		}
		while (tlen && isspace((unsigned char)tok[tlen - 1]))
			tlen--;
		if (!tlen || strcspn(tok, " \t") < tlen ||
		    (tok[0] == '@' && tlen == 1))
			return bad_value(origin, "devices", a->key, v, "expected "
					 "users (name or uid), @groups (name "
					 "or gid) or *, separated by commas");
		w = realloc(a->who, (a->n_who + 1) * sizeof(*w));
		if (!w)
			return log_error_errno(-ENOMEM, "%s", origin);
		a->who = w;
		w = &a->who[a->n_who];
		*w = (struct config_who){ .kind = WHO_USER };
		if (tok[0] == '*' && tlen == 1)
			w->kind = WHO_ANYONE;
		else if (tok[0] == '@')
			w->kind = WHO_GROUP;
		if (w->kind == WHO_GROUP) {
			tok++;
			tlen--;
		}
		w->name = strndup(tok, tlen);
		if (!w->name)
			return log_error_errno(-ENOMEM, "%s", origin);
		a->n_who++;
		for (size_t i = 0; i + 1 < a->n_who; i++)
			if (a->who[i].kind == w->kind &&
			    !strcmp(a->who[i].name, w->name))
				return log_error_errno(-EINVAL, "%s: [devices] "
						       "%s = '%s': %s%s is "
						       "listed twice", origin,
						       a->key, v,
						       w->kind == WHO_GROUP ?
						       "@" : "", w->name);
		p += len;
		if (!*p)
			return 0;
		p++;
	}
}

/* "pattern = who, ...": a new entry, or (--set) a new value for one. */
static int set_devices(struct config *c, const char *key, const char *v,
		       const char *origin)
{
	struct config_device_acl n = { 0 }, *a;
	int r;

	r = device_acl_pattern(key, origin, n.pattern, &n.glob);
	if (r < 0)
		return r;
	snprintf(n.origin, sizeof(n.origin), "%s", origin);
	n.key = strdup(key);
	n.value = strdup(v);
	if (!n.key || !n.value) {
		r = log_error_errno(-ENOMEM, "%s", origin);
		goto fail;
	}
	r = device_acl_who(&n, v, origin);
	if (r < 0)
		goto fail;
	a = device_acl_find(c, n.pattern);
	if (!a) {
		a = realloc(c->device_acls,
			    (c->n_device_acls + 1) * sizeof(*a));
		if (!a) {
			r = log_error_errno(-ENOMEM, "%s", origin);
			goto fail;
		}
		c->device_acls = a;
		a = &c->device_acls[c->n_device_acls++];
	} else {
		device_acl_release(a);
	}
	*a = n;
	return 0;
fail:
	device_acl_release(&n);
	return r;
}

int config_set(struct config *c, const char *section, const char *key,
	       const char *value, const char *origin)
{
	if (!strcmp(section, "daemon"))
		return set_daemon(c, key, value, origin);
	if (!strcmp(section, "iommufd"))
		return set_iommufd(c, key, value, origin);
	if (!strcmp(section, "sim"))
		return set_sim(c, key, value, origin);
	if (!strcmp(section, "devices"))
		return set_devices(c, key, value, origin);
	if (!strncmp(section, "guest ", 6)) {
		struct guest_config *g = guest_find(c, section + 6);
		int r;

		if (!g && (r = guest_add(c, section + 6, origin, &g)) < 0)
			return r;
		return set_guest(g, key, value, origin);
	}
	return log_error_errno(-EINVAL, "%s: unknown section [%s]", origin,
			       section);
}

/* ------------------------------------------------------------ files */

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Parse one "[section]" header into @section. */
static int parse_section(char *line, char *section, size_t size,
			 struct config *c, const char *origin)
{
	char *end = strchr(line, ']'), *name;
	struct guest_config *g;
	int r;

	if (!end || *strip(end + 1))
		return log_error_errno(-EINVAL, "%s: malformed section header",
				       origin);
	*end = '\0';
	name = strip(line + 1);
	if (!strcmp(name, "daemon") || !strcmp(name, "iommufd") ||
	    !strcmp(name, "sim") || !strcmp(name, "devices")) {
		snprintf(section, size, "%s", name);
		return 0;
	}
	if (!strncmp(name, "guest", 5) && isspace((unsigned char)name[5])) {
		char *gname = strip(name + 5);

		if (guest_find(c, gname))
			return log_error_errno(-EINVAL, "%s: guest '%s' is "
					       "defined twice", origin, gname);
		r = guest_add(c, gname, origin, &g);
		if (r < 0)
			return r;
		snprintf(section, size, "guest %s", gname);
		return 0;
	}
	return log_error_errno(-EINVAL, "%s: unknown section [%s]", origin,
			       name);
}

/*
 * In a file a [devices] entry names its devices once (65:00.0 and
 * 0000:65:00.0 are one); --set replaces an entry's value.
 */
static int device_acl_twice(struct config *c, const char *section,
			    const char *key, const char *origin)
{
	char pattern[BACKEND_NAME_MAX];
	struct config_device_acl *a;
	bool glob;

	if (strcmp(section, "devices") ||
	    device_acl_pattern(key, origin, pattern, &glob) < 0)
		return 0;	/* set_devices() says what is wrong */
	a = device_acl_find(c, pattern);
	if (!a)
		return 0;
	return log_error_errno(-EINVAL, "%s: [devices] %s: listed twice (as %s "
			       "at %s)", origin, key, a->key, a->origin);
}

int config_load_file(struct config *c, const char *path, bool must_exist)
{
	char line[LINE_MAX_LEN], section[CONFIG_GUEST_NAME_MAX + 8] = "";
	char origin[PATH_MAX + 32];
	unsigned int lineno = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return log_error_errno(-errno, "cannot read configuration %s",
				       path);
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq;

		lineno++;
		snprintf(origin, sizeof(origin), "%s:%u", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			r = log_error_errno(-EINVAL, "%s: line longer than %d "
					    "bytes", origin, LINE_MAX_LEN - 2);
			break;
		}
		s = strip(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			r = parse_section(s, section, sizeof(section), c,
					  origin);
			if (r < 0)
				break;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			r = log_error_errno(-EINVAL, "%s: expected key = value "
					    "or [section]", origin);
			break;
		}
		*eq = '\0';
		if (!*section) {
			r = log_error_errno(-EINVAL, "%s: key '%s' outside of "
					    "any section", origin, strip(s));
			break;
		}
		s = strip(s);
		r = device_acl_twice(c, section, s, origin);
		if (r < 0)
			break;
		r = config_set(c, section, s, strip(eq + 1), origin);
		if (r < 0)
			break;
	}
	if (!r && ferror(f))
		r = log_error_errno(-EIO, "reading %s failed", path);
	fclose(f);
	return r < 0 ? -EINVAL : 0;
}

int config_set_arg(struct config *c, const char *arg)
{
	char buf[LINE_MAX_LEN], section[LINE_MAX_LEN + 8];
	char origin[LINE_MAX_LEN + 16];
	char *eq, *dot;

	snprintf(origin, sizeof(origin), "--set %s", arg);
	if (strlen(arg) >= sizeof(buf))
		return log_error_errno(-EINVAL, "%s: too long", origin);
	strcpy(buf, arg);
	eq = strchr(buf, '=');
	if (!eq)
		return log_error_errno(-EINVAL, "%s: expected "
				       "section.key=value", origin);
	*eq = '\0';
	dot = strrchr(buf, '.');
	if (!dot || dot == buf)
		return log_error_errno(-EINVAL, "%s: expected "
				       "section.key=value", origin);
	/* a device name has dots: devices.0000:65:00.0=alice */
	if (!strncmp(buf, "devices.", 8))
		dot = buf + 7;
	*dot = '\0';
	if (!strncmp(buf, "guest.", 6))
		snprintf(section, sizeof(section), "guest %s", buf + 6);
	else
		snprintf(section, sizeof(section), "%s", buf);
	return config_set(c, section, dot + 1, eq + 1, origin) < 0 ?
	       -EINVAL : 0;
}

/* The guests are created as their owner's domains at start, one device
 * each: within max_domains, max_devices and max_mapped, as a client's
 * would be (domain.c). */
static int guest_check_quota(const struct config *c, size_t i)
{
	const struct guest_config *g = &c->guests[i];
	unsigned int n = 0;
	uint64_t mapped = 0;

	for (size_t k = 0; k <= i; k++) {
		if (c->guests[k].owner != g->owner)
			continue;
		n++;
		mapped += c->guests[k].size;	/* each at most 2^48 */
	}
	if (n > c->max_domains)
		return log_error_errno(-EINVAL, "%s: [guest %s]: uid %u's "
				       "guests are more than max_domains = %u "
				       "domains", g->origin, g->name,
				       (unsigned int)g->owner, c->max_domains);
	if (n > c->max_devices)
		return log_error_errno(-EINVAL, "%s: [guest %s]: uid %u's "
				       "guests have more than max_devices = %u "
				       "devices", g->origin, g->name,
				       (unsigned int)g->owner, c->max_devices);
	if (mapped > c->max_mapped)
		return log_error_errno(-EINVAL, "%s: [guest %s]: uid %u's "
				       "guests map %" PRIu64 " bytes, more "
				       "than max_mapped = %" PRIu64, g->origin,
				       g->name, (unsigned int)g->owner, mapped,
				       c->max_mapped);
	return 0;
}

static int guest_check(const struct config *c, size_t i)
{
	const struct guest_config *g = &c->guests[i];
	const struct sim_device_spec *dev = NULL;
	const char *o = g->origin, *n = g->name;
	struct backend_caps caps;

	/* a guest's device is one of [sim]'s, which DMA on demand */
	if (backend_kind_caps(c->backend, &caps) < 0 || !caps.config_devices)
		return log_error_errno(-EINVAL, "%s: [guest %s] needs backend "
				       "= sim", o, n);
	if (!g->device[0])
		return log_error_errno(-EINVAL, "%s: [guest %s] has no device",
				       o, n);
	for (unsigned int k = 0; k < c->n_devices; k++)
		if (!strcmp(c->devices[k].name, g->device))
			dev = &c->devices[k];
	if (!dev)
		return log_error_errno(-EINVAL, "%s: [guest %s]: no sim device "
				       "named %s", o, n, g->device);
	if (g->tracking && !dev->dirty_tracking)
		return log_error_errno(-EINVAL, "%s: [guest %s]: device %s "
				       "cannot track dirty pages; set tracking "
				       "= no", o, n, g->device);
	for (size_t k = 0; k < i; k++) {
		if (strcmp(c->guests[k].device, g->device))
			continue;
		return log_error_errno(-EINVAL, "%s: [guest %s]: device %s is "
				       "already [guest %s]'s", o, n, g->device,
				       c->guests[k].name);
	}
	if (g->iova + g->size < g->iova || g->iova + g->size > (1ULL << 48))
		return log_error_errno(-EINVAL, "%s: [guest %s]: iova + size "
				       "beyond 2^48", o, n);
	if (g->dma && g->pattern == DMA_PATTERN_HOTSET &&
	    g->hot_pages > g->size / DMA_LOAD_PAGE_SIZE)
		return log_error_errno(-EINVAL, "%s: [guest %s]: hot_pages "
				       "exceeds the guest's pages", o, n);
	if (g->dma && g->pattern == DMA_PATTERN_CLUSTERED &&
	    g->cluster_pages > g->size / DMA_LOAD_PAGE_SIZE)
		return log_error_errno(-EINVAL, "%s: [guest %s]: cluster_pages "
				       "exceeds the guest's pages", o, n);
	return guest_check_quota(c, i);
}

/*
 * A user (@group false) or a group as the configuration names one: decimal
 * digits are an id, 0 .. ID_MAX; anything else names one that must exist.
 * 0; -EINVAL with what is wrong in @why; or -errno when looking it up
 * failed.
 */
static int lookup_id(bool group, const char *name, uint32_t *id, char *why,
		     size_t len)
{
	const char *what = group ? "group" : "user";
	struct passwd pw, *pres = NULL;
	struct group gr, *gres = NULL;
	char *buf = NULL;
	size_t size = 1024;
	uint64_t x;
	int r;

	if (*name && !name[strspn(name, "0123456789")]) {
		errno = 0;
		x = strtoull(name, NULL, 10);
		if (!errno && x <= ID_MAX) {
			*id = (uint32_t)x;
			return 0;
		}
		snprintf(why, len, "expected a %s name or a %s, 0 .. %" PRIu64,
			 what, group ? "gid" : "uid", ID_MAX);
		return -EINVAL;
	}
	do {
		char *b = realloc(buf, size *= 4);

		if (!b) {
			r = ENOMEM;
			break;
		}
		buf = b;
		if (group)
			r = getgrnam_r(name, &gr, buf, size, &gres);
		else
			r = getpwnam_r(name, &pw, buf, size, &pres);
	} while (r == ERANGE && size < (16U << 20));
	free(buf);
	if (r)
		return -r;
	if (!gres && !pres) {
		snprintf(why, len, "no such %s", what);
		return -EINVAL;
	}
	*id = group ? gr.gr_gid : pw.pw_uid;
	if (*id == (uint32_t)-1) {
		snprintf(why, len, "the %s's %s is (%s_t)-1", what,
			 group ? "gid" : "uid", group ? "gid" : "uid");
		return -EINVAL;
	}
	return 0;
}

/* socket_group, admin_group: lookup_id(); NULL: none, (gid_t)-1. */
static int resolve_group(const char *key, const char *name,
			 const char *origin, gid_t *gid)
{
	char why[80];
	uint32_t id;
	int r;

	*gid = (gid_t)-1;
	if (!name)
		return 0;
	r = lookup_id(true, name, &id, why, sizeof(why));
	if (r == -EINVAL)
		return bad_value(origin, "daemon", key, name, why);
	if (r < 0)
		return log_error_errno(r, "%s: [daemon] %s = '%s': looking "
				       "the group up failed", origin, key,
				       name);
	*gid = (gid_t)id;
	return 0;
}

/* A [devices] entry: its users and groups to ids; on the sim, a device
 * name must be a device of [sim]. */
static int device_acl_check(const struct config *c,
			    struct config_device_acl *a)
{
	struct backend_caps caps;
	bool known;
	char why[80];
	int r;

	known = a->glob || backend_kind_caps(c->backend, &caps) < 0 ||
		!caps.config_devices;
	for (unsigned int k = 0; !known && k < c->n_devices; k++)
		known = !strcmp(c->devices[k].name, a->pattern);
	if (!known)
		return log_error_errno(-EINVAL, "%s: [devices] %s: no sim "
				       "device named %s", a->origin, a->key,
				       a->pattern);
	for (size_t i = 0; i < a->n_who; i++) {
		struct config_who *w = &a->who[i];
		const char *at = w->kind == WHO_GROUP ? "@" : "";

		if (w->kind == WHO_ANYONE)
			continue;
		r = lookup_id(w->kind == WHO_GROUP, w->name, &w->id, why,
			      sizeof(why));
		if (r == -EINVAL)
			return log_error_errno(r, "%s: [devices] %s = '%s': "
					       "%s%s: %s", a->origin, a->key,
					       a->value, at, w->name, why);
		if (r < 0)
			return log_error_errno(r, "%s: [devices] %s = '%s': "
					       "looking %s%s up failed",
					       a->origin, a->key, a->value, at,
					       w->name);
	}
	return 0;
}

int config_check(struct config *c)
{
	if (resolve_group("socket_group", c->socket_group,
			  c->socket_group_origin, &c->socket_gid) < 0 ||
	    resolve_group("admin_group", c->admin_group,
			  c->admin_group_origin, &c->admin_gid) < 0)
		return -EINVAL;
	if (c->root_clients != CONFIG_ROOT_CLIENTS_AUTO &&
	    c->root_clients >= c->max_clients)
		return log_error_errno(-EINVAL, "root_clients = %u must be "
				       "less than max_clients = %u",
				       c->root_clients, c->max_clients);
	for (size_t i = 0; i < c->n_guests; i++) {
		int r = guest_check(c, i);

		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_device_acls; i++) {
		int r = device_acl_check(c, &c->device_acls[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------ reload */

/* What config_reload() says, as it goes: "key a -> b, ..." */
struct diff {
	char *buf;
	size_t len, at;
	unsigned int n;
};

static void diff_add(struct diff *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void diff_add(struct diff *d, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (d->at + 1 >= d->len)
		return;
	if (d->n++) {
		w = snprintf(d->buf + d->at, d->len - d->at, ", ");
		d->at += w > 0 ? (size_t)w : 0;
		if (d->at >= d->len)
			d->at = d->len - 1;
	}
	va_start(ap, fmt);
	w = vsnprintf(d->buf + d->at, d->len - d->at, fmt, ap);
	va_end(ap);
	d->at += w > 0 ? (size_t)w : 0;
	if (d->at >= d->len)
		d->at = d->len - 1;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static const char *str_or(const char *s, const char *none)
{
	return s ? s : none;
}

static bool device_acls_eq(const struct config *a, const struct config *b)
{
	if (a->n_device_acls != b->n_device_acls)
		return false;
	for (size_t i = 0; i < a->n_device_acls; i++) {
		const struct config_device_acl *x = &a->device_acls[i];
		const struct config_device_acl *y = &b->device_acls[i];

		if (strcmp(x->pattern, y->pattern) ||
		    !str_eq(x->value, y->value) || x->n_who != y->n_who)
			return false;
		for (size_t k = 0; k < x->n_who; k++)
			if (x->who[k].kind != y->who[k].kind ||
			    x->who[k].id != y->who[k].id)
				return false;
	}
	return true;
}

static bool guest_eq(const struct guest_config *a, const struct guest_config *b)
{
	return !strcmp(a->name, b->name) && !strcmp(a->device, b->device) &&
	       a->size == b->size && a->iova == b->iova &&
	       a->tracking == b->tracking && a->huge_pages == b->huge_pages &&
	       a->owner == b->owner && a->dma == b->dma &&
	       a->pattern == b->pattern && a->dma_rate == b->dma_rate &&
	       a->dma_threads == b->dma_threads &&
	       a->cluster_pages == b->cluster_pages &&
	       a->hot_pages == b->hot_pages && a->seed == b->seed;
}

static bool sim_devices_eq(const struct config *a, const struct config *b)
{
	if (a->n_devices != b->n_devices)
		return false;
	for (unsigned int i = 0; i < a->n_devices; i++)
		if (strcmp(a->devices[i].name, b->devices[i].name) ||
		    a->devices[i].dirty_tracking != b->devices[i].dirty_tracking)
			return false;
	return true;
}

static bool guests_eq(const struct config *a, const struct config *b)
{
	if (a->n_guests != b->n_guests)
		return false;
	for (size_t i = 0; i < a->n_guests; i++)
		if (!guest_eq(&a->guests[i], &b->guests[i]))
			return false;
	return true;
}

int config_reload(struct config *live, struct config *next, char *changed,
		  size_t changed_len, char *fixed, size_t fixed_len)
{
	struct diff ch = { changed, changed_len, 0, 0 };
	struct diff fx = { fixed, fixed_len, 0, 0 };

	changed[0] = '\0';
	fixed[0] = '\0';
	/* what changes at run time: each is read where it is checked */
	for (size_t i = 0; i < sizeof(daemon_uints) / sizeof(daemon_uints[0]);
	     i++) {
		const struct uint_key *u = &daemon_uints[i];
		unsigned int *was = (unsigned int *)((char *)live + u->off);
		unsigned int now = *(unsigned int *)((char *)next + u->off);

		if (*was == now)
			continue;
		if (u->off == offsetof(struct config, workers)) {
			diff_add(&fx, "workers");
			continue;
		}
		if (u->off == offsetof(struct config, root_clients)) {
			diff_add(&ch, "root_clients %u -> %u",
				 config_root_clients(live),
				 config_root_clients(next));
		} else {
			diff_add(&ch, "%s %u -> %u", u->key, *was, now);
		}
		*was = now;
	}
	if (live->max_parked_bytes != next->max_parked_bytes) {
		diff_add(&ch, "max_parked_bytes %" PRIu64 " -> %" PRIu64,
			 live->max_parked_bytes, next->max_parked_bytes);
		live->max_parked_bytes = next->max_parked_bytes;
	}
	if (live->max_mapped != next->max_mapped) {
		diff_add(&ch, "max_mapped %" PRIu64 " -> %" PRIu64,
			 live->max_mapped, next->max_mapped);
		live->max_mapped = next->max_mapped;
	}
	if (live->log_level != next->log_level) {
		diff_add(&ch, "log_level %s -> %s",
			 config_log_level_name(live->log_level),
			 config_log_level_name(next->log_level));
		live->log_level = next->log_level;
	}
	if (live->admin_gid != next->admin_gid) {
		char *t = live->admin_group;

		diff_add(&ch, "admin_group %s -> %s",
			 str_or(live->admin_group, "(none)"),
			 str_or(next->admin_group, "(none)"));
		live->admin_group = next->admin_group;
		next->admin_group = t;
		live->admin_gid = next->admin_gid;
		memcpy(live->admin_group_origin, next->admin_group_origin,
		       sizeof(live->admin_group_origin));
	}
	if (!device_acls_eq(live, next)) {
		struct config_device_acl *t = live->device_acls;
		size_t n = live->n_device_acls;

		diff_add(&ch, "[devices] %zu -> %zu entries", n,
			 next->n_device_acls);
		live->device_acls = next->device_acls;
		live->n_device_acls = next->n_device_acls;
		next->device_acls = t;
		next->n_device_acls = n;
	}
	/* what only a restart changes: the socket and the kernel side */
	if (live->backend != next->backend)
		diff_add(&fx, "backend");
	if (!str_eq(live->socket, next->socket))
		diff_add(&fx, "socket");
	if (live->socket_gid != next->socket_gid)
		diff_add(&fx, "socket_group");
	if (live->socket_mode != next->socket_mode)
		diff_add(&fx, "socket_mode");
	if (!str_eq(live->iommufd_path, next->iommufd_path))
		diff_add(&fx, "[iommufd] path");
	if (!str_eq(live->device_provider, next->device_provider))
		diff_add(&fx, "[iommufd] device_provider");
	if (live->backing_page_size != next->backing_page_size ||
	    strcmp(live->sim_kernel, next->sim_kernel) ||
	    !sim_devices_eq(live, next))
		diff_add(&fx, "[sim]");
	if (!guests_eq(live, next))
		diff_add(&fx, "[guest]");
	return (int)ch.n;
}
