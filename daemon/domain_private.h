/* SPDX-License-Identifier: MIT */
/* What the files of the domain module share; nothing outside it uses this. */
#ifndef DIRTYD_DOMAIN_PRIVATE_H
#define DIRTYD_DOMAIN_PRIVATE_H

#include "daemon/domain.h"

/** domain_free() - release the backend objects and memory of @d, now:
 *  idle, destroyed (or never finalised), nobody refers to it. */
void domain_free(struct domain *d);
/** domain_round_init() - the domain's timers (its periodic rounds, and
 *  rounds with nothing to read); -ENOMEM. */
int domain_round_init(struct domain *d);
/** domain_round_release() - free them; safe if never made. */
void domain_round_release(struct domain *d);
/** domain_timer_update() - arm the periodic timer at the smallest
 *  interval of the domain's periodic subscribers, or stop it. */
void domain_timer_update(struct domain *d);
/** domain_plan_build() - a plan over @d's mappings and retired ranges,
 *  in the state's bitmap memory; -errno. */
int domain_plan_build(struct domain *d, struct harvest_domain **out);

#endif
