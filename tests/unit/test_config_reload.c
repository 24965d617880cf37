// SPDX-License-Identifier: MIT
/*
 * config_reload() (dirtyd.conf(5) "Reloading"): what a SIGHUP changes in
 * the running configuration and what waits for a restart, exactly as the
 * log line says it; what the live configuration gave up is released with
 * the next one (the sanitizers' build checks that nothing leaks or is
 * freed twice).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>

#include "daemon/config/config.h"

static struct config live, next;
static char changed[1024], fixed[256];

static void fini(void)
{
	config_release(&live);
	config_release(&next);
}

/* @c from --set assignments (NULL-terminated), checked. */
static void build(struct config *c, const char *const *sets)
{
	cr_assert_eq(config_init(c), 0);
	for (size_t i = 0; sets[i]; i++)
		cr_assert_eq(config_set_arg(c, sets[i]), 0, "%s", sets[i]);
	cr_assert_eq(config_check(c), 0);
}

#define BASE "daemon.backend=sim", "sim.devices=sim0:dirty, sim1:dirty"

Test(config_reload, nothing_changed, .fini = fini)
{
	build(&live, (const char *const[]){ BASE, "daemon.max_domains=3",
					    "devices.sim0=0", NULL });
	build(&next, (const char *const[]){ BASE, "daemon.max_domains=3",
					    "devices.sim0=0", NULL });
	cr_assert_eq(config_reload(&live, &next, changed, sizeof(changed),
				   fixed, sizeof(fixed)), 0);
	cr_assert_str_empty(changed);
	cr_assert_str_empty(fixed);
}

Test(config_reload, run_time_keys_change, .fini = fini)
{
	build(&live, (const char *const[]){ BASE, "devices.sim0=0", NULL });
	build(&next, (const char *const[]){
		BASE, "daemon.max_domains=2", "daemon.max_inflight=3",
		"daemon.hello_timeout=0", "daemon.max_mapped=1g",
		"daemon.log_level=debug", "daemon.admin_group=0",
		"devices.sim0=0, 1", "devices.sim1=*", NULL });
	cr_assert_eq(config_reload(&live, &next, changed, sizeof(changed),
				   fixed, sizeof(fixed)), 7);
	cr_assert_str_eq(changed, "hello_timeout 10 -> 0, max_inflight 8 -> 3, "
			 "max_domains 64 -> 2, max_mapped 4398046511104 -> "
			 "1073741824, log_level info -> debug, admin_group "
			 "(none) -> 0, [devices] 1 -> 2 entries");
	cr_assert_str_empty(fixed);
	cr_assert_eq(live.max_domains, 2);
	cr_assert_eq(live.max_inflight, 3);
	cr_assert_eq(live.hello_timeout, 0);
	cr_assert_eq(live.max_mapped, 1ULL << 30);
	cr_assert_eq(live.admin_gid, 0);
	cr_assert_str_eq(live.admin_group, "0");
	cr_assert_eq(live.n_device_acls, 2);
	cr_assert_eq(live.device_acls[0].n_who, 2);
	cr_assert_str_eq(live.device_acls[1].pattern, "sim1");
	/* what it gave up is next's to release */
	cr_assert_eq(next.n_device_acls, 1);
	cr_assert_null(next.admin_group);
}

Test(config_reload, restart_keys_stay, .fini = fini)
{
	build(&live, (const char *const[]){ BASE, "daemon.socket=/run/a.sock",
					    "daemon.workers=2", NULL });
	build(&next, (const char *const[]){
		"daemon.backend=sim", "sim.devices=sim0:dirty, sim9:dirty",
		"daemon.socket=/run/b.sock", "daemon.workers=4",
		"daemon.socket_mode=0600", "daemon.max_clients=9",
		"guest.g.device=sim0", "guest.g.size=64M", NULL });
	cr_assert_eq(config_reload(&live, &next, changed, sizeof(changed),
				   fixed, sizeof(fixed)), 1);
	cr_assert_str_eq(changed, "max_clients 256 -> 9");
	cr_assert_str_eq(fixed, "workers, socket, socket_mode, [sim], [guest]");
	cr_assert_str_eq(live.socket, "/run/a.sock");
	cr_assert_eq(live.workers, 2);
	cr_assert_eq(live.socket_mode, 0660);
	cr_assert_str_eq(live.devices[1].name, "sim1");
	cr_assert_eq(live.n_guests, 0);
	cr_assert_eq(live.max_clients, 9);
}
