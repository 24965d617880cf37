// SPDX-License-Identifier: MIT
/* Who may claim which device (acl.h).  Owns: the device ACLs. */
#include <fnmatch.h>
#include <string.h>

#include "daemon/access/access.h"
#include "daemon/access/acl.h"
#include "daemon/config/config.h"

const struct config_device_acl *acl_entry(const struct config *cfg,
					  const char *name)
{
	const struct config_device_acl *first = NULL;

	for (size_t i = 0; i < cfg->n_device_acls; i++) {
		const struct config_device_acl *a = &cfg->device_acls[i];

		if (!a->glob && !strcmp(a->pattern, name))
			return a;
		if (a->glob && !first && !fnmatch(a->pattern, name, 0))
			first = a;
	}
	return first;
}

bool acl_may_claim(const struct config *cfg, uid_t uid, gid_t gid,
		   const gid_t *groups, size_t ngroups, const char *name,
		   const struct config_device_acl **entry)
{
	const struct config_device_acl *a;

	*entry = NULL;
	if (uid == 0 || !cfg->n_device_acls)
		return true;
	a = acl_entry(cfg, name);
	*entry = a;
	for (size_t i = 0; a && i < a->n_who; i++) {
		const struct config_who *w = &a->who[i];

		if (w->kind == WHO_ANYONE ||
		    (w->kind == WHO_USER && w->id == uid) ||
		    (w->kind == WHO_GROUP &&
		     access_member((gid_t)w->id, gid, groups, ngroups)))
			return true;
	}
	return false;
}
