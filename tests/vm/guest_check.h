/* SPDX-License-Identifier: MIT */
/*
 * What the VM tests' guest programs (guest_iommufd.c, guest_daemon.c)
 * share: their TAP-like output, one line per check, "ok N - what" or
 * "not ok N - what: why", "info: ..." lines for what is observed but not
 * judged, and the 2 MiB aligned memory they map.
 */
#ifndef DIRTYD_TESTS_VM_GUEST_CHECK_H
#define DIRTYD_TESTS_VM_GUEST_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#define MIB (1ULL << 20)

static unsigned int n_checks, n_failed;

static inline bool check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	n_checks++;
	printf("%s %u - ", ok ? "ok" : "not ok", n_checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		n_failed++;
	return ok;
}

static inline void info(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static inline void info(const char *fmt, ...)
{
	va_list ap;

	printf("info: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/*
 * Memory for a mapping, 2 MiB aligned: hugetlb (physically contiguous
 * 2 MiB pages, populated) or plain pages (populated if @populate).
 */
static inline void *mem_alloc(uint64_t len, bool huge, bool populate)
{
	uint64_t size = (len + 2 * MIB - 1) & ~(2 * MIB - 1);
	uint8_t *p;

	if (huge) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_POPULATE, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	p = mmap(NULL, size + 2 * MIB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0),
		 -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	return (void *)(((uintptr_t)p + 2 * MIB - 1) & ~(2 * MIB - 1));
}

#endif
