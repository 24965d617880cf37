// SPDX-License-Identifier: MIT
/*
 * Choosing the iommufd backend's device provider
 * (backend_config.device_provider), without a kernel: the mock provider
 * itself runs in the VM tests (tests/vm/).
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "kernel/backend.h"

static int open_with(const char *provider, const char *path,
		     struct backend **b)
{
	struct backend_config cfg = {
		.kind = BACKEND_IOMMUFD,
		.iommufd_path = path,
		.vfio_dev_dir = "/nonexistent/vfio/devices",
		.device_provider = provider,
	};

	return backend_open(&cfg, b);
}

Test(mock_provider, unknown_provider_is_einval)
{
	struct backend *b = NULL;

	cr_assert_eq(open_with("bogus", "/dev/null", &b), -EINVAL);
	cr_assert_null(b);
	cr_assert_eq(open_with("", "/dev/null", &b), -EINVAL);
	cr_assert_eq(open_with("MOCK", "/dev/null", &b), -EINVAL);
}

Test(mock_provider, vfio_is_the_default)
{
	struct backend_device_name names[4];
	struct backend *b = NULL;

	cr_assert_eq(open_with(NULL, "/dev/null", &b), 0);
	cr_assert_eq(backend_device_enumerate(b, names, 4), 0);
	backend_close(b);
	cr_assert_eq(open_with("vfio", "/dev/null", &b), 0);
	cr_assert_eq(backend_device_enumerate(b, names, 4), 0);
	backend_close(b);
}

/* Not /dev/iommu with CONFIG_IOMMUFD_TEST (here: no ioctls at all): the
 * mock provider refuses at open, not at the first bind. */
Test(mock_provider, mock_needs_the_kernel_test_interface)
{
	struct backend *b = NULL;

	cr_assert_eq(open_with("mock", "/dev/null", &b), -EOPNOTSUPP);
	cr_assert_null(b);
}

Test(mock_provider, missing_dev_iommu_is_enoent_first)
{
	struct backend *b = NULL;

	cr_assert_eq(open_with("mock", "/nonexistent/iommu", &b), -ENOENT);
	cr_assert_eq(open_with("bogus", "/nonexistent/iommu", &b), -EINVAL);
}
