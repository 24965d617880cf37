// SPDX-License-Identifier: MIT
/*
 * [devices] of dirtyd.conf(5) and acl.h: the entries as the strict parser
 * reads them (device names canonical, users and groups resolved once, in
 * config_check(), ids range-checked), every refusal naming the file and
 * line, the key, the value and what is allowed; and who may claim what.
 * Uses the users and groups every Debian system has: root (0), daemon
 * (1), nobody (65534), nogroup (65534).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/access/acl.h"
#include "daemon/config/config.h"
#include "daemon/util/log.h"

static struct config cfg;
static char path[64];
static char err[8192];		/* what the last load logged */

static void fini(void)
{
	config_release(&cfg);
	if (path[0])
		unlink(path);
}

/*
 * @conf as a file, then each --set of @sets (NULL-terminated), then
 * config_check(); the first failure's code, its log in err[].
 */
static int load(const char *conf, const char *const *sets)
{
	int fd, saved, mfd, r;
	ssize_t n;

	if (path[0])
		unlink(path);
	strcpy(path, "/tmp/dirtyd-acl-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, conf, strlen(conf)), (ssize_t)strlen(conf));
	close(fd);
	config_release(&cfg);
	cr_assert_eq(config_init(&cfg), 0);

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	mfd = memfd_create("log", 0);
	cr_assert(saved >= 0 && mfd >= 0);
	dup2(mfd, STDERR_FILENO);
	r = config_load_file(&cfg, path, true);
	for (size_t i = 0; !r && sets && sets[i]; i++)
		r = config_set_arg(&cfg, sets[i]);
	if (!r)
		r = config_check(&cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(mfd, err, sizeof(err) - 1, 0);
	close(mfd);
	err[n > 0 ? n : 0] = '\0';
	return r;
}

/* Refused, saying @want (after "FILE:"). */
static void refused(const char *conf, const char *want)
{
	char full[1024];

	cr_assert_eq(load(conf, NULL), -EINVAL, "accepted:\n%s", conf);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	cr_assert(strstr(err, full), "'%s' not in: %s", full, err);
}

#define SIM "[daemon]\nbackend = sim\n[sim]\n" \
	    "devices = 65:00.0:dirty, sim1:dirty, sim2:nodirty\n"

TestSuite(acl, .fini = fini);

Test(acl, entries_as_read)
{
	const struct config_device_acl *a;

	cr_assert_eq(load(SIM "[devices]\n"
			  "65:00.0 = daemon, @nogroup, 1234, @77\n"
			  "sim* = *\n"
			  "sim2 =\n", NULL), 0, "%s", err);
	cr_assert_eq(cfg.n_device_acls, 3);
	a = &cfg.device_acls[0];
	cr_assert_str_eq(a->pattern, "0000:65:00.0");
	cr_assert_str_eq(a->key, "65:00.0");
	cr_assert_not(a->glob);
	cr_assert_eq(a->n_who, 4);
	cr_assert(a->who[0].kind == WHO_USER && a->who[0].id == 1);
	cr_assert(a->who[1].kind == WHO_GROUP && a->who[1].id == 65534);
	cr_assert(a->who[2].kind == WHO_USER && a->who[2].id == 1234);
	cr_assert(a->who[3].kind == WHO_GROUP && a->who[3].id == 77);
	snprintf(err, sizeof(err), "%s:6", path);
	cr_assert_str_eq(a->origin, err);
	a = &cfg.device_acls[1];
	cr_assert(a->glob && !strcmp(a->pattern, "sim*"));
	cr_assert(a->n_who == 1 && a->who[0].kind == WHO_ANYONE);
	cr_assert_eq(cfg.device_acls[2].n_who, 0);
}

/* Names resolve in config_check(), after every override, not before. */
Test(acl, names_resolve_in_config_check)
{
	cr_assert_eq(config_init(&cfg), 0);
	cr_assert_eq(config_set(&cfg, "devices", "0000:65:00.0",
				"dirtyd-no-such-user", "here"), 0);
	cr_assert_eq(config_set_arg(&cfg, "devices.0000:65:00.0=daemon"), 0);
	cr_assert_eq(config_check(&cfg), 0);
	cr_assert_eq(cfg.n_device_acls, 1);
	cr_assert_eq(cfg.device_acls[0].who[0].id, 1);
}

/* --set: a new entry after the file's, or a new list for one of them,
 * whichever way the device is written. */
Test(acl, set_overrides)
{
	static const char *const sets[] = {
		"devices.65:00.0=root", "devices.vfio*=@daemon", NULL,
	};

	cr_assert_eq(load("[devices]\n0000:65:00.0 = daemon\n* = nobody\n",
			  sets), 0, "%s", err);
	cr_assert_eq(cfg.n_device_acls, 3);
	cr_assert_str_eq(cfg.device_acls[0].pattern, "0000:65:00.0");
	cr_assert_eq(cfg.device_acls[0].who[0].id, 0);
	cr_assert_str_eq(cfg.device_acls[0].origin, "--set devices.65:00.0=root");
	cr_assert_str_eq(cfg.device_acls[2].pattern, "vfio*");
	cr_assert_eq(cfg.device_acls[2].who[0].kind, WHO_GROUP);
}

Test(acl, unknown_users_and_groups)
{
	refused("[devices]\n0000:65:00.0 = daemon, dirtyd-no-such-user\n",
		"2: [devices] 0000:65:00.0 = 'daemon, dirtyd-no-such-user': "
		"dirtyd-no-such-user: no such user");
	refused("[devices]\n\n* = @dirtyd-no-such-group\n",
		"3: [devices] * = '@dirtyd-no-such-group': "
		"@dirtyd-no-such-group: no such group");
	/* a group is not a user, nor the other way round */
	refused("[devices]\n* = nogroup\n", "2: [devices] * = 'nogroup': "
		"nogroup: no such user");
	refused("[devices]\n* = @nobody\n", "2: [devices] * = '@nobody': "
		"@nobody: no such group");
}

Test(acl, ids_range_checked)
{
	refused("[devices]\n* = 4294967295\n", "2: [devices] * = "
		"'4294967295': 4294967295: expected a user name or a uid, "
		"0 .. 4294967294");
	refused("[devices]\n* = @4295032830\n", "2: [devices] * = "
		"'@4295032830': @4295032830: expected a group name or a gid, "
		"0 .. 4294967294");
	refused("[devices]\n* = 99999999999999999999999\n",
		"2: [devices] * = '99999999999999999999999': "
		"99999999999999999999999: expected a user name or a uid, "
		"0 .. 4294967294");
	cr_assert_eq(load("[devices]\n* = 4294967294, @0\n", NULL), 0, "%s",
		     err);
}

Test(acl, bad_lists)
{
	static const char *const bad[] = {
		"daemon,,root", "daemon root", "daemon,", ",daemon", "@",
		"@ daemon",
	};
	const char *want = "expected users (name or uid), @groups (name or "
			   "gid) or *, separated by commas";
	char conf[256], msg[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(conf, sizeof(conf), "[devices]\nvfio3 = %s\n", bad[i]);
		snprintf(msg, sizeof(msg), "2: [devices] vfio3 = '%s': %s",
			 bad[i], want);
		refused(conf, msg);
	}
}

Test(acl, bad_device_names)
{
	char conf[256];

	refused("[devices]\nvfio 3 = root\n", "2: [devices] 'vfio 3': "
		"expected a device name or a pattern (*, ?, [...]), 1 to 63 "
		"characters without blanks or commas");
	refused("[devices]\nvfio3,vfio4 = root\n", "2: [devices] "
		"'vfio3,vfio4': expected a device name");
	snprintf(conf, sizeof(conf), "[devices]\n%0*d = root\n", 64, 0);
	refused(conf, "2: [devices] '0000");
	refused("[devices]\n = root\n", "2: [devices] '': expected");
	/* on the sim, a name is a device of [sim] */
	refused(SIM "[devices]\nsim3 = root\n",
		"6: [devices] sim3: no sim device named sim3");
	refused(SIM "[devices]\n66:00.0 = root\n",
		"6: [devices] 66:00.0: no sim device named 0000:66:00.0");
	cr_assert_eq(load(SIM "[devices]\n0000:65:00.0 = root\nnic* = root\n",
			  NULL), 0, "%s", err);
}

Test(acl, duplicates)
{
	refused("[devices]\n65:00.0 = root\n0000:65:00.0 = daemon\n",
		"3: [devices] 0000:65:00.0: listed twice (as 65:00.0 at ");
	refused("[devices]\n0000:0A:1F.7 = root\n# two ways\n0a:1f.7 = root\n",
		"4: [devices] 0a:1f.7: listed twice (as 0000:0A:1F.7 at ");
	refused("[devices]\nsim* = root\n[daemon]\n[devices]\nsim* = root\n",
		"5: [devices] sim*: listed twice (as sim* at ");
	refused("[devices]\nvfio3 = daemon, root, daemon\n",
		"2: [devices] vfio3 = 'daemon, root, daemon': daemon is listed "
		"twice");
	refused("[devices]\nvfio3 = @daemon, @daemon\n",
		"2: [devices] vfio3 = '@daemon, @daemon': @daemon is listed "
		"twice");
	/* the user daemon and the group daemon are two */
	cr_assert_eq(load("[devices]\nvfio3 = daemon, @daemon\n", NULL), 0,
		     "%s", err);
}

/* --------------------------------------------------------- who may claim */

static bool may(uid_t uid, gid_t gid, const gid_t *groups, size_t n,
		const char *name, const char **key)
{
	const struct config_device_acl *a;
	bool r = acl_may_claim(&cfg, uid, gid, groups, n, name, &a);

	*key = a ? a->key : NULL;
	return r;
}

Test(acl, nothing_configured_everyone_may)
{
	const char *key;

	cr_assert_eq(load("", NULL), 0, "%s", err);
	cr_assert(may(1000, 1000, NULL, 0, "0000:65:00.0", &key));
	cr_assert_null(key);
}

Test(acl, who_may_claim)
{
	static const gid_t sup[] = { 10, 65534, 20 };
	const char *key;

	cr_assert_eq(load(SIM "[devices]\n"
			  "65:00.0 = daemon, @nogroup, 1234\n"
			  "sim2 =\n"
			  "sim* = *\n"
			  "s* = root\n", NULL), 0, "%s", err);
	/* by user, by name or uid */
	cr_assert(may(1, 1, NULL, 0, "0000:65:00.0", &key));
	cr_assert(may(1234, 1234, NULL, 0, "0000:65:00.0", &key));
	/* by group: primary or supplementary */
	cr_assert(may(5, 65534, NULL, 0, "0000:65:00.0", &key));
	cr_assert(may(5, 5, sup, 3, "0000:65:00.0", &key));
	/* not listed: refused, and the entry that said so */
	cr_assert_not(may(5, 5, sup, 1, "0000:65:00.0", &key));
	cr_assert_str_eq(key, "65:00.0");
	cr_assert_not(may(2, 2, NULL, 0, "0000:65:00.0", &key));
	/* root always */
	cr_assert(may(0, 0, NULL, 0, "0000:65:00.0", &key));
	cr_assert(may(0, 0, NULL, 0, "sim2", &key));
	cr_assert(may(0, 0, NULL, 0, "nosuch", &key));
	/* a name beats a pattern; patterns in order; * is everyone */
	cr_assert_not(may(1, 1, NULL, 0, "sim2", &key));
	cr_assert_str_eq(key, "sim2");
	cr_assert(may(77, 77, NULL, 0, "sim1", &key));
	cr_assert_str_eq(key, "sim*");
	cr_assert_not(may(77, 77, NULL, 0, "s1", &key));
	cr_assert_str_eq(key, "s*");
	/* no entry: only root */
	cr_assert_not(may(1, 1, NULL, 0, "0000:66:00.0", &key));
	cr_assert_null(key);
}

/* Globs see the full form: 0000:65:* covers every function of bus 65. */
Test(acl, patterns_match_listed_names)
{
	const char *key;

	cr_assert_eq(load("[devices]\n0000:65:* = daemon\nvfio[0-3] = "
			  "nobody\n", NULL), 0, "%s", err);
	cr_assert(may(1, 1, NULL, 0, "0000:65:00.3", &key));
	cr_assert_not(may(1, 1, NULL, 0, "0000:66:00.0", &key));
	cr_assert(may(65534, 65534, NULL, 0, "vfio2", &key));
	cr_assert_not(may(65534, 65534, NULL, 0, "vfio4", &key));
}

/* [sim] devices' attributes (struct sim_device_spec), and the default
 * host's three devices. */
Test(acl, sim_device_attributes)
{
	const struct sim_device_spec *d;

	cr_assert_eq(config_init(&cfg), 0);
	cr_assert_eq(cfg.n_devices, 3);
	d = &cfg.devices[2];
	cr_assert_str_eq(d->name, "sim-vf0");
	cr_assert(d->iommu == 1 && d->dma_logging && !d->dirty_tracking &&
		  !d->emulated && !d->dma_log_page_size &&
		  !d->dma_log_max_ranges);

	cr_assert_eq(load("[sim]\ndevices = nic:dirty, vf:nodirty iommu=1 "
			  "dma_logging=yes  dma_log_page_size=16k\t"
			  "dma_log_max_ranges=4 ,m:nodirty emulated=yes "
			  "dma_logging=on\n", NULL), 0, "%s", err);
	cr_assert_eq(cfg.n_devices, 3);
	cr_assert(cfg.devices[0].dirty_tracking && !cfg.devices[0].iommu);
	d = &cfg.devices[1];
	cr_assert_str_eq(d->name, "vf");
	cr_assert(d->iommu == 1 && d->dma_logging &&
		  d->dma_log_page_size == 16384 && d->dma_log_max_ranges == 4);
	d = &cfg.devices[2];
	cr_assert(d->emulated && d->dma_logging && !d->dirty_tracking);

	refused("[sim]\ndevices = vf:nodirty iommu=x\n",
		"2: device 'vf': iommu = 'x': expected 0 .. 255");
	refused("[sim]\ndevices = vf:nodirty dma_log_page_size=16k\n",
		"2: device 'vf': dma_log_page_size and dma_log_max_ranges "
		"need dma_logging=yes");
	refused("[sim]\ndevices = vf:nodirty dma_logging=yes "
		"dma_log_page_size=6k\n",
		"2: device 'vf': dma_log_page_size = '6k': expected a power "
		"of two, 4k .. 1g");
	refused("[sim]\ndevices = vf:nodirty dma_logging=yes "
		"dma_log_max_ranges=257\n",
		"2: device 'vf': dma_log_max_ranges = '257': expected 1 .. 256");
	refused("[sim]\ndevices = m:dirty emulated=yes\n",
		"2: device 'm': an emulated device has no IOMMU");
	refused("[sim]\ndevices = vf:nodirty colour=blue\n",
		"2: device 'vf': unknown attribute 'colour'");
	refused("[sim]\ndevices = vf:nodirty iommu\n",
		"2: device 'vf': 'iommu' is not key=value");
}
