// SPDX-License-Identifier: MIT
/*
 * What a client may name a device on the iommufd backend, and what dirtyd
 * (root) opens for it: only a PCI address or a VFIO cdev name, and only
 * the VFIO character device sysfs gives for it.  Against a fake sysfs and
 * /dev tree, with /dev/null standing in for /dev/iommu.
 *
 * Every refusal must come before the target is opened: inotify watches
 * the fake /dev/vfio/devices and a "secret" directory for IN_OPEN, and the
 * hostile nodes are FIFOs, regular files, symlinks and character devices
 * of the wrong major:minor.  The tree's good node is a character device
 * with /dev/null's major:minor (1:3) and sysfs says 1:3 for it, so that
 * it opens and VFIO_DEVICE_BIND_IOMMUFD then fails with ENOTTY: that is
 * how far a correct device gets without VFIO hardware.  Device nodes need
 * mknod (root); where it fails those tests are skipped, saying so.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kernel/backend.h"
#include "tests/unit/fake_tree.h"
#include "kernel/iommufd/sysfs.h"

static char root[] = "/tmp/dirtyd-names-XXXXXX";
static char sysfs[256], devdir[256], secret[256];
static int in_fd = -1;
/* 0, or why mknod of a character device failed here. */
static int mknod_errno;

static void mkpath(const char *fmt, const char *arg)
{
	fake_mkpath(root, fmt, arg);
}

static void write_file(const char *dir, const char *name, const char *text,
		       mode_t mode)
{
	fake_write(dir, name, text, mode);
}

static void sysfs_class_cdev(const char *cdev, const char *devt)
{
	char dir[PATH_MAX];

	mkpath("sys/class/vfio-dev/%s", cdev);
	snprintf(dir, sizeof(dir), "%s/class/vfio-dev/%s", sysfs, cdev);
	write_file(dir, "dev", devt, 0444);
}

static int mkchr(const char *dir, const char *name, unsigned int maj,
		 unsigned int min)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return mknod(path, S_IFCHR | 0600, makedev(maj, min)) ? -errno : 0;
}

/*
 * 0000:65:00.0 -> vfio7, the good node (c 1:3, if mknod works);
 * 0000:66:00.0 is not bound to vfio-pci; 0000:67:00.0 -> vfio3, whose
 * node each test makes hostile in its own way; sysfs has vfio4 but
 * /dev has no node; /dev has vfio5 (c 1:3) but sysfs has no vfio5.
 * secret/ holds what a hostile client would like root to open: a FIFO
 * and a file only root may read.
 */
static void tree_setup(void)
{
	char fifo[PATH_MAX];

	cr_assert_not_null(mkdtemp(root));
	snprintf(sysfs, sizeof(sysfs), "%s/sys", root);
	snprintf(devdir, sizeof(devdir), "%s/dev/vfio/devices", root);
	snprintf(secret, sizeof(secret), "%s/secret", root);

	mkpath("sys/bus/pci/devices/%s/vfio-dev/vfio7", "0000:65:00.0");
	mkpath("sys/bus/pci/devices/%s", "0000:66:00.0");
	mkpath("sys/bus/pci/devices/%s/vfio-dev/vfio3", "0000:67:00.0");
	sysfs_class_cdev("vfio7", "1:3\n");
	sysfs_class_cdev("vfio3", "1:3\n");
	sysfs_class_cdev("vfio4", "1:3\n");
	mkpath("%s", "dev/vfio/devices");
	mkpath("%s", "secret");
	write_file(secret, "shadow", "root:secret\n", 0600);
	snprintf(fifo, sizeof(fifo), "%s/fifo", secret);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	mknod_errno = -mkchr(devdir, "vfio7", 1, 3);
	if (!mknod_errno)
		cr_assert_eq(mkchr(devdir, "vfio5", 1, 3), 0);

	in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	cr_assert_geq(in_fd, 0);
	cr_assert_geq(inotify_add_watch(in_fd, devdir, IN_OPEN), 0);
	cr_assert_geq(inotify_add_watch(in_fd, secret, IN_OPEN), 0);
}

static void tree_teardown(void)
{
	if (in_fd >= 0)
		close(in_fd);
	fake_remove(root);
}

TestSuite(iommufd_names, .init = tree_setup, .fini = tree_teardown);

static void need_mknod(void)
{
	if (mknod_errno) {
		fprintf(stderr, "SKIP: mknod of a character device in %s "
			"failed (%s): run as root to test device nodes\n",
			root, strerror(mknod_errno));
		cr_skip_test("mknod of a character device failed (%s)",
			     strerror(mknod_errno));
	}
}

/* The names of the files in the watched directories opened since last. */
static void opened(char *names, size_t len)
{
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	names[0] = '\0';
	while ((n = read(in_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			if ((ev->mask & IN_OPEN) && !(ev->mask & IN_ISDIR) &&
			    ev->len) {
				strncat(names, " ", len - strlen(names) - 1);
				strncat(names, ev->name,
					len - strlen(names) - 1);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void assert_nothing_opened(const char *what)
{
	char names[1024];

	opened(names, sizeof(names));
	cr_assert_str_empty(names, "%s: opened%s", what, names);
}

static struct backend *open_on_dev_null(void)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.iommufd_path = "/dev/null",
		.sysfs_root = sysfs,
		.vfio_dev_dir = devdir,
	};
	struct backend *b = NULL;

	cr_assert_eq(backend_open(&cfg, &b), 0);
	return b;
}

/*
 * backend_device_bind(@name) is refused with @err and a reason holding
 * @why, opening nothing in the watched directories, leaking nothing.
 */
static void assert_bind_refused(const char *name, int err, const char *why)
{
	struct backend *b = open_on_dev_null();
	uint32_t dev_id = 0;
	int fds = fake_open_fds();

	opened((char[8]){ 0 }, 8);
	cr_assert_eq(backend_device_bind(b, name, &dev_id), err,
		     "\"%s\": want %d", name, err);
	cr_assert_not_null(backend_why(), "\"%s\": no reason", name);
	cr_assert_not_null(strstr(backend_why(), why), "\"%s\": %s", name,
			   backend_why());
	assert_nothing_opened(name);
	cr_assert_eq(fake_open_fds(), fds, "\"%s\": a descriptor leaked", name);
	backend_close(b);
}

/* Replace the node vfio3 (sysfs: 1:3) by @kind. */
enum node { FIFO, REGULAR, SYMLINK_PASSWD, SYMLINK_FIFO, SYMLINK_NULL,
	    WRONG_DEVT, DIRECTORY };

static void make_vfio3(enum node kind)
{
	char path[PATH_MAX], target[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vfio3", devdir);
	cr_assert(!unlink(path) || errno == ENOENT);
	switch (kind) {
	case FIFO:
		cr_assert_eq(mkfifo(path, 0600), 0);
		break;
	case REGULAR:
		write_file(devdir, "vfio3", "", 0600);
		break;
	case SYMLINK_PASSWD:
		cr_assert_eq(symlink("/etc/passwd", path), 0);
		break;
	case SYMLINK_FIFO:
		snprintf(target, sizeof(target), "%s/fifo", secret);
		cr_assert_eq(symlink(target, path), 0);
		break;
	case SYMLINK_NULL:	/* even the right device, through a link */
		cr_assert_eq(symlink("/dev/null", path), 0);
		break;
	case WRONG_DEVT:	/* /dev/zero */
		cr_assert_eq(mkchr(devdir, "vfio3", 1, 5), 0);
		break;
	case DIRECTORY:
		cr_assert_eq(mkdir(path, 0700), 0);
		break;
	}
}

/* ------------------------------------------------ the name, alone */

Test(iommufd_names, accepted_names)
{
	static const char *const good[] = {
		"vfio0", "vfio3", "vfio12", "vfio2147483647",
		"0000:65:00.0", "65:00.0", "0000:0A:1F.7", "0a:1f.7",
		"10000:65:00.0",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(iommufd_device_name_check(good[i]), 0, "\"%s\"",
			     good[i]);
}

Test(iommufd_names, refused_names)
{
	static const char *const bad[] = {
		"", "vfio", "vfio00", "vfio03", "vfio-1", "vfio+1", "VFIO3",
		"vfio2147483648", "vfio12345678901", "vfio3 ", " vfio3",
		"vfio3\n", "mock0", ".", "..", "0000:65:00.0 ",
	};
	static const char *const paths[] = {
		"/etc/shadow", "/dev/vfio/devices/vfio3", "../vfio3",
		"../../secret/fifo", "./vfio3", "vfio3/", "vfio3/..",
		"vfio/3", "dev/vfio/devices/vfio3", "0000:65:00.0/../../x",
		"/",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		backend_why_clear();
		cr_assert_eq(iommufd_device_name_check(bad[i]), -EINVAL,
			     "\"%s\"", bad[i]);
		cr_assert_not_null(strstr(backend_why(), "not a device name"),
				   "\"%s\": %s", bad[i], backend_why());
	}
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		backend_why_clear();
		cr_assert_eq(iommufd_device_name_check(paths[i]), -EINVAL,
			     "\"%s\"", paths[i]);
		cr_assert_not_null(strstr(backend_why(), "not named by a path"),
				   "\"%s\": %s", paths[i], backend_why());
	}
	cr_assert_eq(iommufd_device_name_check(NULL), -EINVAL);
}

/*
 * Before any file system access: with a sysfs and a /dev that do not
 * exist the answer is still -EINVAL, never -ENOENT.
 */
Test(iommufd_names, path_refused_before_the_file_system)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX], path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/fifo", secret);
	cr_assert_eq(iommufd_sysfs_resolve("/nonexistent", path, cdev,
					   sizeof(cdev)), -EINVAL);
	cr_assert_eq(iommufd_sysfs_resolve("/nonexistent", "../vfio3", cdev,
					   sizeof(cdev)), -EINVAL);
	cr_assert_eq(iommufd_vfio_cdev_open("/nonexistent", "/nonexistent",
					    "../secret/fifo"), -EINVAL);
	cr_assert_eq(iommufd_vfio_cdev_open("/nonexistent", "/nonexistent",
					    "0000:65:00.0"), -EINVAL);
	assert_nothing_opened("resolve");
}

/* ------------------------------------------ through device_bind() */

Test(iommufd_names, path_names_are_einval)
{
	char path[PATH_MAX];

	make_vfio3(FIFO);
	assert_bind_refused("/etc/shadow", -EINVAL, "not named by a path");
	snprintf(path, sizeof(path), "%s/fifo", secret);
	assert_bind_refused(path, -EINVAL, "not named by a path");
	snprintf(path, sizeof(path), "%s/shadow", secret);
	assert_bind_refused(path, -EINVAL, "not named by a path");
	/* the right node, by its path: still a path */
	snprintf(path, sizeof(path), "%s/vfio7", devdir);
	assert_bind_refused(path, -EINVAL, "not named by a path");
	snprintf(path, sizeof(path), "%s/vfio3", devdir);
	assert_bind_refused(path, -EINVAL, "not named by a path");
	assert_bind_refused("../../../secret/fifo", -EINVAL,
			    "not named by a path");
	assert_bind_refused("../devices/vfio3", -EINVAL,
			    "not named by a path");
	assert_bind_refused("vfio3/", -EINVAL, "not named by a path");
	assert_bind_refused("vfio03", -EINVAL, "not a device name");
}

Test(iommufd_names, fifo_named_like_a_cdev_is_enodev)
{
	make_vfio3(FIFO);
	assert_bind_refused("vfio3", -ENODEV, "is a FIFO, not a VFIO "
			    "character device");
	/* and by the PCI address sysfs gives it */
	assert_bind_refused("0000:67:00.0", -ENODEV, "is a FIFO");
	assert_bind_refused("67:00.0", -ENODEV, "is a FIFO");
}

Test(iommufd_names, regular_file_named_vfio3_is_enodev)
{
	make_vfio3(REGULAR);
	assert_bind_refused("vfio3", -ENODEV, "is a regular file");
}

Test(iommufd_names, directory_named_vfio3_is_enodev)
{
	make_vfio3(DIRECTORY);
	assert_bind_refused("vfio3", -ENODEV, "is a directory");
}

Test(iommufd_names, symlink_is_enodev)
{
	make_vfio3(SYMLINK_PASSWD);
	assert_bind_refused("vfio3", -ENODEV, "is a symbolic link");
	/* what it points to, watched: never opened through the link */
	make_vfio3(SYMLINK_FIFO);
	assert_bind_refused("vfio3", -ENODEV, "is a symbolic link");
	make_vfio3(SYMLINK_NULL);
	assert_bind_refused("vfio3", -ENODEV, "is a symbolic link");
	assert_bind_refused("0000:67:00.0", -ENODEV, "is a symbolic link");
}

Test(iommufd_names, char_device_of_wrong_devt_is_enodev)
{
	need_mknod();
	make_vfio3(WRONG_DEVT);
	assert_bind_refused("vfio3", -ENODEV, "is character device 1:5, not "
			    "vfio3 (1:3 in sysfs)");
	assert_bind_refused("0000:67:00.0", -ENODEV, "is character device");
}

Test(iommufd_names, not_in_sysfs_is_enoent)
{
	need_mknod();
	/* vfio5 is a node (c 1:3) that sysfs does not know: not opened */
	assert_bind_refused("vfio5", -ENOENT, "sysfs has no VFIO device "
			    "vfio5");
	assert_bind_refused("vfio6", -ENOENT, "sysfs has no VFIO device");
	/* sysfs knows vfio4, /dev has no node */
	assert_bind_refused("vfio4", -ENOENT, "vfio4 does not exist");
}

Test(iommufd_names, pci_address_not_bound_to_vfio)
{
	assert_bind_refused("0000:66:00.0", -ENODEV, "PCI device "
			    "0000:66:00.0 is not bound to vfio-pci");
	assert_bind_refused("66:00.0", -ENODEV, "not bound to vfio-pci");
	assert_bind_refused("0000:99:00.0", -ENOENT, "sysfs has no PCI device "
			    "0000:99:00.0");
}

Test(iommufd_names, sysfs_dev_file_must_be_a_devt)
{
	static const char *const bad[] = {
		"", "1", "1:", ":3", "1:3x\n", "1:3\n\n", " 1:3\n", "1:-3\n",
		"-1:3\n", "99999999999:3\n",
	};
	size_t i;

	make_vfio3(REGULAR);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sysfs_class_cdev("vfio3", bad[i]);
		assert_bind_refused("vfio3", -ENODEV, "sysfs gives no device "
				    "number for vfio3");
	}
}

/* ---------------------------------------------------- the right one */

Test(iommufd_names, correct_device_opens_verified)
{
	struct stat st;
	int fd, flags;

	need_mknod();
	opened((char[8]){ 0 }, 8);
	fd = iommufd_vfio_cdev_open(sysfs, devdir, "vfio7");
	if (fd == -EACCES || fd == -EPERM) {
		fprintf(stderr, "SKIP: %s/vfio7 cannot be opened here (%s: "
			"nodev mount or device cgroup)\n", devdir,
			strerror(-fd));
		cr_skip_test("device nodes cannot be opened here");
	}
	cr_assert_geq(fd, 0, "%d %s", fd, backend_why());
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
	cr_assert_eq(st.st_rdev, makedev(1, 3));
	flags = fcntl(fd, F_GETFL);
	cr_assert_eq(flags & O_ACCMODE, O_RDWR);
	cr_assert_eq(flags & O_NONBLOCK, 0, "handed to VMMs non-blocking");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	{
		char names[1024];

		opened(names, sizeof(names));
		cr_assert_str_eq(names, " vfio7", "the watch sees opens");
	}
}

/* Verified, opened, then VFIO_DEVICE_BIND_IOMMUFD runs: /dev/null says
 * ENOTTY, as a real VFIO cdev would not; nothing leaks. */
Test(iommufd_names, correct_device_reaches_the_bind_ioctl)
{
	struct backend *b;
	uint32_t dev_id;
	int fds;

	need_mknod();
	b = open_on_dev_null();
	fds = fake_open_fds();
	cr_assert_eq(backend_device_bind(b, "0000:65:00.0", &dev_id),
		     -ENOTTY);
	cr_assert_null(backend_why(), "%s", backend_why());
	cr_assert_eq(backend_device_bind(b, "65:00.0", &dev_id), -ENOTTY);
	cr_assert_eq(backend_device_bind(b, "vfio7", &dev_id), -ENOTTY);
	cr_assert_eq(fake_open_fds(), fds);
	backend_close(b);
}

/* ------------------------------------------------------ enumeration */

Test(iommufd_names, enumerate_lists_only_names_bind_takes)
{
	struct backend_device_name names[8];
	int n, i;

	make_vfio3(FIFO);
	n = iommufd_sysfs_enumerate(sysfs, devdir, names, 8);
	cr_assert_geq(n, 1);
	for (i = 0; i < n; i++) {
		cr_assert_null(strchr(names[i].name, '/'), "%s",
			       names[i].name);
		cr_assert_eq(iommufd_device_name_check(names[i].name), 0,
			     "%s", names[i].name);
	}
	/* vfio3 (0000:67:00.0), vfio5 (no PCI parent), vfio7 (0000:65:00.0) */
	if (!mknod_errno) {
		cr_assert_eq(n, 3);
		cr_assert_str_eq(names[0].name, "0000:67:00.0");
		cr_assert_str_eq(names[1].name, "vfio5");
		cr_assert_str_eq(names[2].name, "0000:65:00.0");
	}
	assert_nothing_opened("enumerate");
}

/* ------------------------------------------------ one name per device */

/* Without looking anything up: a PCI address in its full lower-case form,
 * anything else as it is. */
Test(iommufd_names, canonical_name_alone)
{
	static const char *const pairs[][2] = {
		{ "65:00.0", "0000:65:00.0" },
		{ "0000:65:00.0", "0000:65:00.0" },
		{ "0000:0A:1F.7", "0000:0a:1f.7" },
		{ "0a:1f.7", "0000:0a:1f.7" },
		{ "10000:65:00.0", "10000:65:00.0" },
		{ "0010000:65:00.0", "10000:65:00.0" },
		/* not PCI addresses: as they are */
		{ "65:20.0", "65:20.0" },
		{ "65:00.8", "65:00.8" },
		{ "65:00.0 ", "65:00.0 " },
		{ "vfio3", "vfio3" },
		{ "sim-nic0", "sim-nic0" },
		{ "mock1:nodirty", "mock1:nodirty" },
		{ "*", "*" },
	};
	char out[BACKEND_NAME_MAX];

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		cr_assert_eq(backend_device_name_canonical(pairs[i][0], out,
							   sizeof(out)), 0,
			     "\"%s\"", pairs[i][0]);
		cr_assert_str_eq(out, pairs[i][1], "\"%s\"", pairs[i][0]);
	}
	cr_assert_eq(backend_device_name_canonical("", out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(backend_device_name_canonical(NULL, out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(backend_device_name_canonical("65:00.0", out, 12),
		     -ENAMETOOLONG);
	cr_assert_eq(backend_device_name_canonical("65:00.0", out, 13), 0);
}

/* What enumerate lists a device by, whichever way it was named: a cdev
 * name of a PCI device is its PCI address. */
Test(iommufd_names, canonical_name_is_the_listed_one)
{
	static const char *const pairs[][2] = {
		{ "vfio7", "0000:65:00.0" },
		{ "65:00.0", "0000:65:00.0" },
		{ "0000:65:00.0", "0000:65:00.0" },
		{ "vfio3", "0000:67:00.0" },
		{ "vfio5", "vfio5" },		/* no PCI parent */
		{ "vfio9", "vfio9" },		/* none at all: bind says */
		{ "99:00.0", "0000:99:00.0" },
	};
	char out[BACKEND_NAME_MAX], path[PATH_MAX];

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		cr_assert_eq(iommufd_sysfs_canonical(sysfs, pairs[i][0], out,
						     sizeof(out)), 0,
			     "\"%s\"", pairs[i][0]);
		cr_assert_str_eq(out, pairs[i][1], "\"%s\"", pairs[i][0]);
	}
	/* a path is refused before the file system, as by bind */
	snprintf(path, sizeof(path), "%s/fifo", secret);
	backend_why_clear();
	cr_assert_eq(iommufd_sysfs_canonical("/nonexistent", path, out,
					     sizeof(out)), -EINVAL);
	cr_assert_not_null(strstr(backend_why(), "not named by a path"));
	cr_assert_eq(iommufd_sysfs_canonical(sysfs, "mock0", out,
					     sizeof(out)), -EINVAL);
	assert_nothing_opened("canonical");
}
