/* SPDX-License-Identifier: MIT */
/*
 * The dirtyd of the VM tests' guest programs (guest_daemon.c,
 * guest_restart.c, guest_vfio.c): the real daemon on the iommufd backend
 * with the kernel's mock IOMMU devices or VFIO cdevs, started by
 * tests/harness.
 */
#ifndef DIRTYD_TESTS_VM_GUEST_DIRTYD_H
#define DIRTYD_TESTS_VM_GUEST_DIRTYD_H

#include <stdbool.h>
#include <stdio.h>

#include "harness.h"

/*
 * guest_dirtyd_init_provider() - @bin with [daemon] workers = 2 and @keys
 * (more [daemon] keys, or ""), [iommufd] on /dev/iommu with the device
 * provider @provider (mock: the kernel's mock IOMMU devices; vfio: VFIO
 * cdevs, the guest's mtty); @activate: socket activation and the file
 * descriptor store.  Not started.  0 or -errno.
 */
static inline int guest_dirtyd_init_provider(struct harness *h,
					     const char *bin,
					     const char *keys, bool activate,
					     const char *provider)
{
	char body[512];
	struct harness_opts o = {
		.bin = bin,
		.backend = "iommufd",
		.body = body,
		.activate = activate,
		.store = activate,
	};

	snprintf(body, sizeof(body), "workers = 2\n%s\n[iommufd]\n"
		 "path = /dev/iommu\ndevice_provider = %s\n", keys, provider);
	return harness_init(h, &o);
}

/* guest_dirtyd_init() - the same with the mock devices. */
static inline int guest_dirtyd_init(struct harness *h, const char *bin,
				    const char *keys, bool activate)
{
	return guest_dirtyd_init_provider(h, bin, keys, activate, "mock");
}

#endif
