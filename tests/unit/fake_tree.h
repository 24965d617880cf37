/* SPDX-License-Identifier: MIT */
/*
 * A fake file system tree under a temporary root, for tests that point
 * the iommufd backend at their own sysfs and /dev (test_iommufd_*).
 */
#ifndef DIRTYD_TESTS_FAKE_TREE_H
#define DIRTYD_TESTS_FAKE_TREE_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p @root/@fmt (with @arg). */
static inline void fake_mkpath(const char *root, const char *fmt,
			       const char *arg)
{
	char path[PATH_MAX], *p;

	snprintf(path, sizeof(path), "%s/", root);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), fmt, arg);
	for (p = path + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		cr_assert(!mkdir(path, 0755) || errno == EEXIST, "%s", path);
		*p = '/';
	}
	cr_assert(!mkdir(path, 0755) || errno == EEXIST, "%s", path);
}

/* @dir/@name holds @text (mode @mode when created). */
static inline void fake_write(const char *dir, const char *name,
			      const char *text, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static inline int fake_rm_one(const char *path, const struct stat *st,
			      int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf @root. */
static inline void fake_remove(const char *root)
{
	nftw(root, fake_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many descriptors this process has open. */
static inline int fake_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

#endif
