/* SPDX-License-Identifier: MIT */
/*
 * Which users and groups may claim which devices: the [devices] section of
 * dirtyd.conf(5).  A claim is CREATE_DOMAIN with a device, or
 * ATTACH_DEVICE; the client's own credentials decide (access.h: its uid,
 * and its groups as they were when it connected), whoever owns the
 * domain.
 *
 *   - root (uid 0) may always claim every device;
 *   - without a [devices] section, every client may claim every device;
 *   - with one, the entry that names the device decides: the entry whose
 *     name is the device's, else the first pattern (in the order of the
 *     file, then of --set) that matches it.  Its list says who may claim
 *     it: a user, by name or uid; a group, @name or @gid (primary or
 *     supplementary); * for every client.  A device no entry names (and
 *     an empty list) is root's alone.
 *
 * Names are compared canonical (device_canonical(): as LIST_DEVICES lists
 * them), so 65:00.0 is 0000:65:00.0 here as everywhere.
 */
#ifndef DIRTYD_ACL_H
#define DIRTYD_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;
struct config_device_acl;

/**
 * acl_entry() - the [devices] entry that decides for the device @name
 * (canonical); NULL if none does.
 */
const struct config_device_acl *acl_entry(const struct config *cfg,
					  const char *name);

/**
 * acl_may_claim() - whether the client @uid, of primary group @gid and
 * supplementary @groups (@ngroups), may claim the device @name
 * (canonical).  *@entry: the entry that decided, NULL when none did (no
 * [devices] section, root, or no entry for the device).
 */
bool acl_may_claim(const struct config *cfg, uid_t uid, gid_t gid,
		   const gid_t *groups, size_t ngroups, const char *name,
		   const struct config_device_acl **entry);

#endif
