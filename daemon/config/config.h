/* SPDX-License-Identifier: MIT */
/*
 * dirtyd's configuration: an ini file (dirtyd.conf(5)) and command-line
 * overrides of any of its keys.
 *
 * The parser is strict: an unknown section or key, a malformed line or a
 * bad value is an error that names the file and line (or the option), so a
 * typo never silently leaves a default in place.  Errors are logged here,
 * once, and returned as -EINVAL.
 */
#ifndef DIRTYD_CONFIG_H
#define DIRTYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kernel/backend.h"
#include "kernel/dma_load.h"

#define CONFIG_DEFAULT_PATH "/etc/dirtyd/dirtyd.conf"
#define CONFIG_GUEST_NAME_MAX 64
#define CONFIG_MAX_GUESTS 64

/** A [guest NAME] section: a domain dirtyd creates at start on the sim. */
struct guest_config {
	char name[CONFIG_GUEST_NAME_MAX];
	char device[BACKEND_NAME_MAX];
	uint64_t size;			/* bytes mapped */
	uint64_t iova;			/* where */
	bool tracking;			/* tracking HWPT, turned on */
	bool huge_pages;		/* IOMMU_OPTION_HUGE_PAGES */
	uid_t owner;
	bool dma;			/* false: dma=none */
	enum dma_pattern pattern;
	uint64_t dma_rate;		/* pages/s, 0: unthrottled */
	unsigned int dma_threads;
	uint32_t cluster_pages;
	uint64_t hot_pages;
	uint64_t seed;
	char origin[128];		/* "file:line" of the section */
};

/** One who of a [devices] entry: "*", a user or "@group", by name or id. */
struct config_who {
	enum { WHO_ANYONE, WHO_USER, WHO_GROUP } kind;
	char *name;			/* as written, without the '@' */
	uint32_t id;			/* config_check(): the uid or gid */
};

/**
 * A [devices] entry, "pattern = who, who, ...": who may claim the devices
 * @pattern names (acl.h says how entries apply).
 */
struct config_device_acl {
	char pattern[BACKEND_NAME_MAX];	/* a device name, canonical, or a
					 * glob (fnmatch(3)) */
	bool glob;
	char *key;			/* as written, for messages */
	char *value;			/* likewise */
	size_t n_who;			/* 0: only root */
	struct config_who *who;
	char origin[128];		/* "file:line" or "--set ..." */
};

/* [daemon] dirty_source: how a tracking domain sees a device's writes,
 * unless CREATE_DOMAIN says (PROTO_CREATE_SOURCE_*). */
enum config_dirty_source {
	CONFIG_SOURCE_AUTO = 0,		/* its DMA log if it has one, else
					 * its IOMMU's dirty bits */
	CONFIG_SOURCE_IOMMU = 1,	/* IOMMU dirty bits only */
	CONFIG_SOURCE_DEVICE = 2,	/* device DMA logging only */
};

struct config {
	/* [daemon] */
	enum backend_kind backend;
	char *socket;
	char *socket_group;		/* NULL: leave the group alone */
	unsigned int socket_mode;
	char *admin_group;		/* NULL: only root administers */
	/* config_check(): the groups' gids, (gid_t)-1 for none */
	gid_t socket_gid;
	gid_t admin_gid;
	char socket_group_origin[128];	/* where each was set */
	char admin_group_origin[128];
	unsigned int max_clients;
	unsigned int max_clients_per_uid;	/* root exempt */
	unsigned int root_clients;	/* of max_clients, only root's */
#define CONFIG_ROOT_CLIENTS_AUTO (~0u)	/* max_clients / 16 */
	unsigned int hello_timeout;	/* seconds to a HELLO; 0: none */
	unsigned int max_parked;	/* closed sessions kept, per uid */
	uint64_t max_parked_bytes;	/* what they hold, per uid */
	unsigned int max_inflight;	/* generations, per subscription */
	unsigned int max_subscriptions;	/* per client */
	unsigned int max_domains;	/* per uid */
	unsigned int max_devices;	/* per uid, in its domains */
	uint64_t max_mapped;		/* bytes, all domains of a uid */
	unsigned int workers;		/* 0: one per online CPU */
	int log_level;			/* LOG_ERR .. LOG_DEBUG */
	unsigned int resume_grace;	/* seconds; 0: no resume */
	enum config_dirty_source dirty_source;	/* a tracking domain's
						 * devices, by default */
	/* [iommufd] */
	char *iommufd_path;
	char *device_provider;		/* "vfio" or "mock" */
	/* [sim] */
	uint64_t backing_page_size;
	char sim_kernel[16];		/* "6.12.N"; "": the sim's default */
	unsigned int n_devices;
	struct sim_device_spec devices[SIM_MAX_DEVICES];
	/* [guest NAME] */
	size_t n_guests;
	struct guest_config *guests;
	/* [devices]: none, every client may claim every device */
	size_t n_device_acls;
	struct config_device_acl *device_acls;
};

/** config_root_clients() - the connections kept for root. */
static inline unsigned int config_root_clients(const struct config *c)
{
	return c->root_clients == CONFIG_ROOT_CLIENTS_AUTO ?
	       c->max_clients / 16 : c->root_clients;
}

/** config_init() - every key at its default. */
int config_init(struct config *c);
void config_release(struct config *c);

/**
 * config_load_file() - read @path over @c.  A missing file is an error
 * only when @must_exist (the default path may be absent).
 */
int config_load_file(struct config *c, const char *path, bool must_exist);

/**
 * config_set() - set one key; @section is "daemon", "guest NAME", ...;
 * @origin names where the setting came from, for error messages.
 */
int config_set(struct config *c, const char *section, const char *key,
	       const char *value, const char *origin);

/**
 * config_set_arg() - "section.key=value" from --set; a guest section is
 * written guest.NAME.key=value, a [devices] entry devices.PATTERN=value.
 */
int config_set_arg(struct config *c, const char *arg);

/**
 * config_check() - every check the configuration needs beyond one key's
 * syntax: consistency across keys (guests name sim devices), socket_group
 * and admin_group resolved to gids (into socket_gid, admin_gid), the users
 * and groups of [devices] to ids.  Both
 * --check-config and a real start call it; a start never rejects what it
 * accepted.
 */
int config_check(struct config *c);

/**
 * config_reload() - a reload (SIGHUP): @next, loaded and checked like a
 * start's configuration (config_check()), into the running @live, as far
 * as the running daemon can take it.  Changed at once: every limit of
 * [daemon] but workers, log_level, admin_group and the [devices] ACLs
 * (each is read where it is checked, for the next request, connection,
 * park or take; nothing granted before is taken back).  Kept, for a
 * restart: backend, socket, socket_group, socket_mode, workers, [iommufd],
 * [sim] and the [guest]s.  What changed goes into @changed ("key old ->
 * new, ..."), the names of what needs a restart into @fixed; both "" when
 * none.  Returns how many keys changed.  Whatever @live gave up is in
 * @next, for config_release().
 */
int config_reload(struct config *live, struct config *next, char *changed,
		  size_t changed_len, char *fixed, size_t fixed_len);

/** config_log_level_name() - "info", ... for @level. */
const char *config_log_level_name(int level);

#endif
