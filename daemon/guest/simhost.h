/* SPDX-License-Identifier: MIT */
/*
 * The simulated host from the configuration: its devices and backing page
 * size ([sim]), and the guests dirtyd creates on it at start ([guest NAME]:
 * a domain, its mapping, tracking and a DMA load).
 */
#ifndef DIRTYD_SIMHOST_H
#define DIRTYD_SIMHOST_H

struct backend;
struct backend_config;
struct config;
struct server;

/** simhost_backend_config() - the backend_config that @c describes. */
void simhost_backend_config(const struct config *c,
			    struct backend_config *bc);
/** simhost_create_guests() - every [guest NAME]; logs and fails on the
 *  first that cannot be created. */
int simhost_create_guests(struct server *srv);
/** simhost_log_kernel() - log which Linux a sim host @b emulates;
 *  nothing for a context of another backend. */
void simhost_log_kernel(struct backend *b);

#endif
