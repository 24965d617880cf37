// SPDX-License-Identifier: MIT
/*
 * The iommufd backend without a kernel that has iommufd: opening a missing
 * /dev/iommu or one that is not a character device, naming and discovery
 * against a fake sysfs and /dev tree, and error pass-through with
 * /dev/null standing in for /dev/iommu (every ioctl on it fails with
 * ENOTTY), and the device table driven through a fake device provider
 * plugged into the backend's provider seam.  What a hostile name or node
 * is refused with: test_iommufd_names.c.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/backend.h"
#include "tests/unit/fake_tree.h"
#include "kernel/iommufd/iommufd_impl.h"
#include "kernel/iommufd/sysfs.h"

static char root[] = "/tmp/dirtyd-iommufd-XXXXXX";
/* root is short: these fit, and snprintf into PATH_MAX cannot truncate. */
static char sysfs[256], devdir[256], iommu[256];

static void mkpath(const char *fmt, const char *arg)
{
	fake_mkpath(root, fmt, arg);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	fake_write(dir, name, text, 0644);
}

static void touch(const char *dir, const char *name)
{
	write_file(dir, name, "");
}

/* <sysfs>/class/vfio-dev/@cdev/dev: "1:3", /dev/null's major:minor. */
static void sysfs_class_cdev(const char *cdev)
{
	char dir[PATH_MAX];

	mkpath("sys/class/vfio-dev/%s", cdev);
	snprintf(dir, sizeof(dir), "%s/class/vfio-dev/%s", sysfs, cdev);
	write_file(dir, "dev", "1:3\n");
}

/*
 * 0000:0a:1f.7 -> vfio2, 0000:65:00.0 -> vfio7, 0000:66:00.0 is not bound
 * to vfio-pci, 0000:67:00.0 has an empty vfio-dev; vfio12 has no PCI
 * device in sysfs; "vfio", "vfio3x" and "vfio07" are not cdev names.  The
 * nodes are regular files: nothing here is a VFIO character device.
 */
static void tree_setup(void)
{
	cr_assert_not_null(mkdtemp(root));
	snprintf(sysfs, sizeof(sysfs), "%s/sys", root);
	snprintf(devdir, sizeof(devdir), "%s/dev/vfio/devices", root);
	snprintf(iommu, sizeof(iommu), "%s/iommu", root);

	mkpath("sys/bus/pci/devices/%s/vfio-dev/vfio2", "0000:0a:1f.7");
	mkpath("sys/bus/pci/devices/%s/vfio-dev/vfio7", "0000:65:00.0");
	mkpath("sys/bus/pci/devices/%s", "0000:66:00.0");
	mkpath("sys/bus/pci/devices/%s/vfio-dev", "0000:67:00.0");
	mkpath("%s", "dev/vfio/devices");
	touch(devdir, "vfio2");
	touch(devdir, "vfio7");
	touch(devdir, "vfio12");
	touch(devdir, "vfio");
	touch(devdir, "vfio3x");
	touch(devdir, "vfio07");
	sysfs_class_cdev("vfio2");
	sysfs_class_cdev("vfio7");
	sysfs_class_cdev("vfio12");
	touch(root, "iommu");
}

static void tree_teardown(void)
{
	fake_remove(root);
}

static int resolve(const char *name, char *cdev, size_t len)
{
	return iommufd_sysfs_resolve(sysfs, name, cdev, len);
}

/* ------------------------------------------------------------- open */

Test(iommufd_open, missing_dev_iommu_is_enoent)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.iommufd_path = "/nonexistent/dirtyd/iommu",
	};
	struct backend *b = (struct backend *)1;

	cr_assert_eq(backend_open(&cfg, &b), -ENOENT);
	cr_assert_null(b);
}

/* A regular file or a FIFO is no iommufd, whatever the provider. */
Test(iommufd_open, dev_iommu_not_a_char_device_is_enodev,
     .init = tree_setup, .fini = tree_teardown)
{
	static const char *const providers[] = { NULL, "vfio", "mock" };
	struct backend_config cfg = { .kind = BACKEND_IOMMUFD };
	char fifo[PATH_MAX];
	struct backend *b;
	size_t i;

	snprintf(fifo, sizeof(fifo), "%s/iommu-fifo", root);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	for (i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		cfg.device_provider = providers[i];
		cfg.iommufd_path = iommu;
		b = (struct backend *)1;
		cr_assert_eq(backend_open(&cfg, &b), -ENODEV);
		cr_assert_null(b);
		cr_assert_not_null(backend_why());
		cr_assert_not_null(strstr(backend_why(),
					  "is not a character device"),
				   "%s", backend_why());
		cr_assert_not_null(strstr(backend_why(), iommu));

		/* O_RDWR on a FIFO does not wait for a peer */
		cfg.iommufd_path = fifo;
		cr_assert_eq(backend_open(&cfg, &b), -ENODEV);
		cr_assert_null(b);
	}
	cfg.device_provider = NULL;
	cfg.iommufd_path = "/dev/null";
	cr_assert_eq(backend_open(&cfg, &b), 0);
	cr_assert_null(backend_why());
	backend_close(b);
}

/* ---------------------------------------------------------- naming */

TestSuite(iommufd_sysfs, .init = tree_setup, .fini = tree_teardown);

Test(iommufd_sysfs, pci_address_resolves)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX];

	cr_assert_eq(resolve("0000:65:00.0", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio7");
	cr_assert_eq(resolve("65:00.0", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio7");

	cr_assert_eq(resolve("0000:0A:1F.7", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio2");
	cr_assert_eq(resolve("0a:1f.7", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio2");
}

/* Checked by iommufd_vfio_cdev_open(), not here. */
Test(iommufd_sysfs, cdev_name_passes_through)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX];

	cr_assert_eq(resolve("vfio3", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio3");
	cr_assert_eq(resolve("vfio0", cdev, sizeof(cdev)), 0);
	cr_assert_str_eq(cdev, "vfio0");
}

Test(iommufd_sysfs, path_is_einval)
{
	char cdev[IOMMUFD_CDEV_NAME_MAX], path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vfio7", devdir);
	cr_assert_eq(resolve(path, cdev, sizeof(cdev)), -EINVAL);
	cr_assert_eq(resolve("/dev/vfio/devices/vfio3", cdev, sizeof(cdev)),
		     -EINVAL);
	cr_assert_not_null(strstr(backend_why(), "path"), "%s",
			   backend_why());
}

Test(iommufd_sysfs, not_bound_to_vfio_is_enodev)
{
	char path[PATH_MAX];

	cr_assert_eq(resolve("0000:66:00.0", path, sizeof(path)), -ENODEV);
	cr_assert_eq(resolve("67:00.0", path, sizeof(path)), -ENODEV);
}

Test(iommufd_sysfs, unknown_address_is_enoent)
{
	char path[PATH_MAX];

	cr_assert_eq(resolve("0000:99:00.0", path, sizeof(path)), -ENOENT);
	cr_assert_eq(resolve("0001:65:00.0", path, sizeof(path)), -ENOENT);
}

Test(iommufd_sysfs, malformed_name_is_einval)
{
	static const char *const bad[] = {
		"", "vfio", "vfio07", "vfio3x", "65:00", "65:00.",
		"0000:65:00.8", "65:20.0",
		"zz:00.0", "0000:65:00.0x", "0000:65:0.0", "000:65:00.0",
		"0000:065:00.0", "0000::65:00.0", "0000:65:00:0",
		"123456789:65:00.0", " 65:00.0",
	};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(resolve(bad[i], path, sizeof(path)), -EINVAL,
			     "\"%s\"", bad[i]);
		cr_assert_not_null(strstr(backend_why(), "not a device name"),
				   "%s", backend_why());
	}
	cr_assert_eq(resolve(NULL, path, sizeof(path)), -EINVAL);
}

Test(iommufd_sysfs, short_buffer_is_enametoolong)
{
	char cdev[4];

	cr_assert_eq(resolve("0000:65:00.0", cdev, sizeof(cdev)),
		     -ENAMETOOLONG);
}

Test(iommufd_sysfs, enumerate_lists_what_is_there)
{
	struct backend_device_name names[8];

	cr_assert_eq(iommufd_sysfs_enumerate(sysfs, devdir, names, 8), 3);
	cr_assert_str_eq(names[0].name, "0000:0a:1f.7");
	cr_assert_str_eq(names[1].name, "0000:65:00.0");
	cr_assert_str_eq(names[2].name, "vfio12");

	cr_assert_eq(iommufd_sysfs_enumerate(sysfs, devdir, names, 1), 1);
	cr_assert_str_eq(names[0].name, "0000:0a:1f.7");
	cr_assert_eq(iommufd_sysfs_enumerate(sysfs, devdir, NULL, 0), 0);
}

Test(iommufd_sysfs, enumerate_without_sysfs_gives_cdev_names)
{
	struct backend_device_name names[8];
	char nosys[PATH_MAX];

	snprintf(nosys, sizeof(nosys), "%s/nosys", root);
	cr_assert_eq(iommufd_sysfs_enumerate(nosys, devdir, names, 8), 3);
	cr_assert_str_eq(names[0].name, "vfio2");
	cr_assert_str_eq(names[1].name, "vfio7");
	cr_assert_str_eq(names[2].name, "vfio12");
}

Test(iommufd_sysfs, enumerate_without_vfio_dir_is_empty)
{
	struct backend_device_name names[8];
	char nodir[PATH_MAX];

	snprintf(nodir, sizeof(nodir), "%s/novfio", root);
	cr_assert_eq(iommufd_sysfs_enumerate(sysfs, nodir, names, 8), 0);
}

/* --------------------------------- errors pass through, /dev/null */

TestSuite(iommufd_passthrough, .init = tree_setup, .fini = tree_teardown);

/* A character device that answers every ioctl with ENOTTY. */
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
	cr_assert_not_null(b);
	cr_assert_str_eq(backend_name(b), "iommufd");
	return b;
}

Test(iommufd_passthrough, iommufd_ioctls_return_enotty)
{
	struct backend *b = open_on_dev_null();
	struct backend_hw_info info;
	uint64_t u64 = 0, bitmap[1];
	uint32_t id;
	char buf[4096] __attribute__((aligned(4096)));

	cr_assert_geq(backend_iommufd(b), 0);
	cr_assert_eq(backend_ioas_alloc(b, &id), -ENOTTY);
	cr_assert_eq(backend_ioas_iova_alignment(b, 1, &u64), -ENOTTY);
	cr_assert_eq(backend_ioas_map(b, 1, IOMMU_IOAS_MAP_READABLE, buf,
				      sizeof(buf), &u64), -ENOTTY);
	cr_assert_eq(backend_ioas_unmap(b, 1, 0, 4096, &u64), -ENOTTY);
	cr_assert_eq(backend_ioas_unmap(b, 1, 0, 4096, NULL), -ENOTTY);
	cr_assert_eq(backend_ioas_set_huge_pages(b, 1, false), -ENOTTY);
	cr_assert_eq(backend_hwpt_alloc(b, 1, 2,
					IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id),
		     -ENOTTY);
	cr_assert_eq(backend_hwpt_set_dirty_tracking(b, 3, true), -ENOTTY);
	cr_assert_eq(backend_hwpt_get_dirty_bitmap(b, 3, 0, 4096, 4096,
						   bitmap, 0), -ENOTTY);
	cr_assert_eq(backend_destroy(b, 3), -ENOTTY);
	cr_assert_eq(backend_device_get_hw_info(b, 1, &info), -ENOTTY);
	backend_close(b);
}

Test(iommufd_passthrough, device_bind_errors)
{
	struct backend *b = open_on_dev_null();
	struct backend_device_name names[8];
	char path[PATH_MAX];
	uint32_t dev_id;
	int fds;

	cr_assert_eq(backend_device_enumerate(b, names, 8), 3);
	cr_assert_str_eq(names[1].name, "0000:65:00.0");

	/* Every node here is a regular file: refused, nothing leaks. */
	fds = fake_open_fds();
	cr_assert_eq(backend_device_bind(b, "0000:65:00.0", &dev_id),
		     -ENODEV);
	cr_assert_not_null(strstr(backend_why(), "is a regular file"), "%s",
			   backend_why());
	cr_assert_eq(backend_device_bind(b, "vfio12", &dev_id), -ENODEV);
	cr_assert_eq(fake_open_fds(), fds);

	cr_assert_eq(backend_device_bind(b, "0000:66:00.0", &dev_id),
		     -ENODEV);
	cr_assert_not_null(strstr(backend_why(), "not bound to vfio-pci"),
			   "%s", backend_why());
	cr_assert_eq(backend_device_bind(b, "0000:99:00.0", &dev_id),
		     -ENOENT);
	cr_assert_eq(backend_device_bind(b, "65:00", &dev_id), -EINVAL);
	cr_assert_eq(backend_device_bind(b, "vfio5", &dev_id), -ENOENT);
	cr_assert_not_null(strstr(backend_why(), "sysfs has no VFIO device"),
			   "%s", backend_why());
	snprintf(path, sizeof(path), "%s/vfio12", devdir);
	cr_assert_eq(backend_device_bind(b, path, &dev_id), -EINVAL);
	cr_assert_eq(fake_open_fds(), fds);
	backend_close(b);
}

Test(iommufd_passthrough, unknown_dev_id)
{
	struct backend *b = open_on_dev_null();

	cr_assert_eq(backend_device_unbind(b, 1), -ENOENT);
	cr_assert_eq(backend_device_attach(b, 1, 2), -ENOENT);
	cr_assert_eq(backend_device_detach(b, 1), -ENOENT);
	cr_assert_eq(backend_device_fd(b, 1), -ENOENT);
	cr_assert_eq(backend_dma_write(b, 1, 0, 4096), -EOPNOTSUPP);
	backend_close(b);
}

/* ------------------------------------- the device table, fake provider */

/*
 * A provider whose devices are /dev/null fds with dev_ids counted from
 * 100; attach reports HWPT pt_id + 1000.  It counts what the table asks.
 */
static struct {
	pthread_mutex_t lock;
	uint32_t next_id;
	int binds, unbinds, attaches, detaches, dma_writes;
	int open_fds;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .next_id = 100 };

static int fake_enumerate(const struct iommufd_backend *ib,
			  struct backend_device_name *names, size_t max)
{
	return 0;
}

static int fake_bind(const struct iommufd_backend *ib, const char *name,
		     struct iommufd_dev *dev)
{
	if (strcmp(name, "good"))
		return -ENOENT;
	dev->fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert_geq(dev->fd, 0);
	pthread_mutex_lock(&fake.lock);
	dev->dev_id = fake.next_id++;
	fake.binds++;
	fake.open_fds++;
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int fake_attach(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev, uint32_t *pt_id)
{
	if (*pt_id == 0)
		return -EINVAL;
	*pt_id += 1000;
	fake.attaches++;	/* table lock held */
	return 0;
}

static int fake_detach(const struct iommufd_backend *ib,
		       struct iommufd_dev *dev)
{
	cr_assert(dev->attached, "detach of a detached device");
	pthread_mutex_lock(&fake.lock);
	fake.detaches++;
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static void fake_unbind(const struct iommufd_backend *ib,
			struct iommufd_dev *dev)
{
	cr_assert_eq(close(dev->fd), 0);
	pthread_mutex_lock(&fake.lock);
	fake.unbinds++;
	fake.open_fds--;
	pthread_mutex_unlock(&fake.lock);
}

static int fake_dma_write(const struct iommufd_backend *ib,
			  struct iommufd_dev *dev, uint64_t iova,
			  uint64_t length)
{
	fake.dma_writes++;
	return dev->attached ? 0 : -ENOENT;
}

static const struct iommufd_dev_provider fake_provider = {
	.enumerate = fake_enumerate,
	.bind = fake_bind,
	.attach = fake_attach,
	.detach = fake_detach,
	.unbind = fake_unbind,
	.dma_write = fake_dma_write,
};

static struct backend *open_with_fake_provider(void)
{
	struct backend *b = open_on_dev_null();

	to_iommufd_backend(b)->provider = &fake_provider;
	return b;
}

TestSuite(iommufd_devices, .init = tree_setup, .fini = tree_teardown);

Test(iommufd_devices, bind_attach_detach_unbind)
{
	struct backend *b = open_with_fake_provider();
	struct iommufd_backend *ib = to_iommufd_backend(b);
	uint32_t a, c;

	cr_assert_eq(backend_device_bind(b, "bad", &a), -ENOENT);
	cr_assert_eq(backend_device_bind(b, "good", &a), 0);
	cr_assert_eq(backend_device_bind(b, "good", &c), 0);
	cr_assert_neq(a, c);
	cr_assert_geq(backend_device_fd(b, a), 0);
	cr_assert_neq(backend_device_fd(b, a), backend_device_fd(b, c));

	cr_assert_eq(backend_dma_write(b, a, 0, 4096), -ENOENT);
	cr_assert_eq(backend_device_attach(b, a, 0), -EINVAL);
	cr_assert_eq(backend_device_attach(b, a, 7), 0);
	cr_assert_eq(ib->devs[0].pt_id, 1007);
	cr_assert_eq(backend_dma_write(b, a, 0, 4096), 0);
	cr_assert_eq(backend_dma_write(b, 999, 0, 4096), -ENOENT);
	cr_assert_eq(backend_device_detach(b, a), 0);
	cr_assert_eq(backend_device_attach(b, a, 8), 0);

	/* Unbinding an attached device detaches it first. */
	cr_assert_eq(backend_device_unbind(b, a), 0);
	cr_assert_eq(fake.detaches, 2);
	cr_assert_eq(backend_device_unbind(b, a), -ENOENT);
	cr_assert_eq(backend_device_fd(b, a), -ENOENT);
	cr_assert_geq(backend_device_fd(b, c), 0);
	cr_assert_eq(fake.open_fds, 1);

	/* Close unbinds the rest, detaching what is attached. */
	cr_assert_eq(backend_device_attach(b, c, 9), 0);
	backend_close(b);
	cr_assert_eq(fake.binds, 2);
	cr_assert_eq(fake.unbinds, 2);
	cr_assert_eq(fake.detaches, 3);
	cr_assert_eq(fake.open_fds, 0);
}

static void *bind_loop(void *arg)
{
	struct backend *b = arg;
	uint32_t id;
	int i;

	for (i = 0; i < 2000; i++) {
		cr_assert_eq(backend_device_bind(b, "good", &id), 0);
		cr_assert_eq(backend_device_attach(b, id, 1), 0);
		cr_assert_geq(backend_device_fd(b, id), 0);
		if (i % 50)
			cr_assert_eq(backend_device_unbind(b, id), 0);
	}
	return NULL;
}

Test(iommufd_devices, concurrent_bind_unbind)
{
	struct backend *b = open_with_fake_provider();
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, bind_loop, b), 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	cr_assert_eq(fake.binds, 8000);
	/* i % 50 == 0 stays bound: 40 per thread */
	cr_assert_eq(fake.open_fds, 4 * 40);
	cr_assert_eq(to_iommufd_backend(b)->n_devs, 4 * 40);
	backend_close(b);
	cr_assert_eq(fake.unbinds, 8000);
	cr_assert_eq(fake.open_fds, 0);
}
