// SPDX-License-Identifier: MIT
/*
 * The region: one memfd that holds a simulated host's whole state, so
 * that the host outlives the process that made it, as the kernel's
 * iommufd objects outlive a process while someone holds /dev/iommu.
 *
 * Layout.  The memfd is SIM_REGION_SIZE bytes, sparse: it is mapped
 * MAP_SHARED | MAP_NORESERVE and only the pages touched cost memory.
 * At offset 0 is struct sim_region (the header, then the host); every
 * other object, array and page-table chunk is a block handed out by the
 * allocator below.  Pointers are plain pointers: the region is mapped at
 * the same address (@base) in every process, first in a range no loader
 * or allocator uses (SIM_REGION_HINT, one SIM_REGION_SIZE slot after
 * another), then wherever the kernel puts it.  MADV_DONTFORK keeps it
 * out of forked children: a child neither shares it by surprise nor
 * holds the slot.
 *
 * Allocator.  Blocks are powers of two from 64 bytes, aligned to their
 * size up to 4 KiB, carved from a bump offset; freed blocks go on a free
 * list per size class, linked through their first word.  A freed block
 * of 4 KiB or more gives its pages back (MADV_REMOVE punches them out of
 * the memfd) and comes back zeroed; a smaller one is zeroed when handed
 * out again.  One mutex, taken only to allocate and free: page tables
 * take 4 KiB tables from their own arena chunks (arena.c) and come here
 * once per chunk.
 *
 * Keeping and adopting.  backend_keep() on a sim returns the memfd,
 * sealed against shrinking and growing, as "sim".  backend_open() with it reads the header with pread(), maps the
 * file at the recorded address with MAP_FIXED_NOREPLACE (-EBUSY when
 * something else is there), and refuses a region whose @changing count
 * is not zero (-EUCLEAN: the process died in the middle of a structural
 * change) or that is not a live region of this build (-EINVAL: another
 * file, a closed host, another layout).  The host then takes new locks
 * (the dead process may have held the old ones) and recounts references
 * (see host.c).  Closing a host punches the whole file and clears the
 * magic, so a stale copy in a file descriptor store adopts as -EINVAL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/sim/sim_private.h"

#define SIM_REGION_MAGIC "dirtydS"
#define SIM_REGION_VERSION 1
/*
 * 16 GiB of address space per host: one host is one iommufd context,
 * which dirtyd opens per domain (thousands of them fit); page tables take
 * 1/512 of what is mapped at 4 KiB pages, so this is room for 8 TiB of
 * guest per host.
 */
#define SIM_REGION_SIZE (1ULL << 34)
/*
 * Where regions go: [32 TiB, 80 TiB) is above ASan's shadow and below
 * where PIE executables, their heap and mmap() land on x86-64.
 */
#define SIM_REGION_HINT 0x200000000000ULL
#define SIM_REGION_SLOTS 3072
#define SIM_PAGE 4096UL
#define SIM_KEPT_NAME "sim"
#define SIM_REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* What this build's structures look like, to refuse another build's. */
static uint32_t sim_region_layout(void)
{
	uint32_t l = SIM_REGION_VERSION;

	l = l * 131 + sizeof(struct sim_region);
	l = l * 131 + sizeof(struct sim_host);
	l = l * 131 + sizeof(struct sim_device);
	l = l * 131 + sizeof(struct sim_ioas);
	l = l * 131 + sizeof(struct sim_hwpt);
	l = l * 131 + sizeof(struct sim_area);
	l = l * 131 + sizeof(struct sim_log_range);
	l = l * 131 + sizeof(pthread_mutex_t);
	l = l * 131 + sizeof(pthread_rwlock_t);
	return l;
}

/* ------------------------------------------------------------ allocator */

/* The class of a @size block (0 for 64 bytes), or -1 if too big. */
static int sim_mem_class(size_t size)
{
	unsigned int shift = SIM_MEM_MIN_SHIFT;

	if (size > 1ULL << SIM_MEM_MIN_SHIFT)
		shift = 64 - __builtin_clzll(size - 1);
	if (shift - SIM_MEM_MIN_SHIFT >= SIM_MEM_CLASSES)
		return -1;
	return (int)(shift - SIM_MEM_MIN_SHIFT);
}

void *sim_mem_alloc(struct sim_region *r, size_t size)
{
	int c = sim_mem_class(size);
	size_t bsize, align;
	uint64_t off;
	void *p;

	if (c < 0)
		return NULL;
	bsize = 1ULL << (c + SIM_MEM_MIN_SHIFT);
	pthread_mutex_lock(&r->lock);
	p = r->free[c];
	if (p) {
		r->free[c] = *(void **)p;
		pthread_mutex_unlock(&r->lock);
		/* Pages of a big block were punched: only the link is left. */
		memset(p, 0, bsize < SIM_PAGE ? bsize : sizeof(void *));
		return p;
	}
	align = bsize < SIM_PAGE ? bsize : SIM_PAGE;
	off = (r->bump + align - 1) & ~(uint64_t)(align - 1);
	if (off > r->size || r->size - off < bsize) {
		pthread_mutex_unlock(&r->lock);
		return NULL;
	}
	r->bump = off + bsize;
	pthread_mutex_unlock(&r->lock);
	/* Never handed out before: still the memfd's zeroes. */
	return (char *)r + off;
}

void sim_mem_free(struct sim_region *r, void *p, size_t size)
{
	int c = sim_mem_class(size);
	size_t bsize;

	if (!p || c < 0)
		return;
	bsize = 1ULL << (c + SIM_MEM_MIN_SHIFT);
	/* A hint: if it fails, the pages stay and the block is zeroed. */
	if (bsize >= SIM_PAGE && madvise(p, bsize, MADV_REMOVE))
		memset(p, 0, bsize);
	pthread_mutex_lock(&r->lock);
	*(void **)p = r->free[c];
	r->free[c] = p;
	pthread_mutex_unlock(&r->lock);
}

void *sim_mem_realloc(struct sim_region *r, void *p, size_t old_size,
		      size_t new_size)
{
	void *n;

	if (p && sim_mem_class(old_size) == sim_mem_class(new_size))
		return p;
	n = sim_mem_alloc(r, new_size);
	if (!n)
		return NULL;
	if (p) {
		memcpy(n, p, old_size < new_size ? old_size : new_size);
		sim_mem_free(r, p, old_size);
	}
	return n;
}

/* --------------------------------------------------------------- region */

static void *sim_region_map_at(int fd, uint64_t addr)
{
	void *p;

	p = mmap((void *)(uintptr_t)addr, SIM_REGION_SIZE,
		 PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_NORESERVE |
		 (addr ? MAP_FIXED_NOREPLACE : 0), fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Kernels before 4.17 take MAP_FIXED_NOREPLACE as a mere hint. */
	if (addr && (uintptr_t)p != addr) {
		munmap(p, SIM_REGION_SIZE);
		errno = EEXIST;
		return NULL;
	}
	madvise(p, SIM_REGION_SIZE, MADV_DONTFORK);
	return p;
}

int sim_region_create(struct sim_region **out)
{
	static unsigned int next_slot;
	struct sim_region *r = NULL;
	unsigned int slot, first;
	int fd, rc;

	fd = memfd_create("dirtyd-sim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* sealed: whoever else holds it (the fd store) cannot cut the
	 * memory from under the process that maps it (SIGBUS) */
	if (ftruncate(fd, SIM_REGION_SIZE) ||
	    fcntl(fd, F_ADD_SEALS, SIM_REGION_SEALS)) {
		rc = -errno;
		goto err_close;
	}
	/* from the slot after the last one taken: creation stays O(1) */
	first = __atomic_load_n(&next_slot, __ATOMIC_RELAXED);
	for (unsigned int i = 0; !r && i < SIM_REGION_SLOTS; i++) {
		slot = (first + i) % SIM_REGION_SLOTS;
		r = sim_region_map_at(fd, SIM_REGION_HINT +
					  slot * SIM_REGION_SIZE);
		if (r)
			__atomic_store_n(&next_slot, slot + 1,
					 __ATOMIC_RELAXED);
	}
	if (!r)
		r = sim_region_map_at(fd, 0);
	if (!r) {
		rc = -ENOMEM;
		goto err_close;
	}

	/* Fresh memfd pages are zero: set what is not. */
	r->version = SIM_REGION_VERSION;
	r->layout = sim_region_layout();
	r->base = (uintptr_t)r;
	r->size = SIM_REGION_SIZE;
	r->bump = sizeof(*r);
	r->fd = fd;
	pthread_mutex_init(&r->lock, NULL);
	r->host.region = r;
	memcpy(r->magic, SIM_REGION_MAGIC, sizeof(r->magic));
	*out = r;
	return 0;

err_close:
	close(fd);
	return rc;
}

void sim_region_release(struct sim_region *r, bool dead)
{
	int fd = r->fd;

	uint64_t size = r->size;

	pthread_mutex_destroy(&r->lock);
	if (dead)
		memset(r->magic, 0, sizeof(r->magic));
	munmap(r, size);
	/* Holders of a copy of the fd (a file descriptor store) keep no
	 * memory; unmapped first, the pages have no mapping left to zap. */
	if (dead)
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			  (off_t)size);
	close(fd);
}

int sim_region_keep(struct sim_region *r, struct backend_kept_fd *fds,
		    size_t max_fds)
{
	if (max_fds < 1)
		return -ENOSPC;
	fds[0] = (struct backend_kept_fd){ .name = SIM_KEPT_NAME, .fd = r->fd };
	return 1;
}

/* Is @fd the memfd of a live region of this build?  Its header, if so. */
static int sim_region_check(int fd, struct sim_region *hdr)
{
	const size_t n = offsetof(struct sim_region, lock);
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(*hdr))
		return -EINVAL;
	if (pread(fd, hdr, n, 0) != (ssize_t)n)
		return -EINVAL;
	if (memcmp(hdr->magic, SIM_REGION_MAGIC, sizeof(hdr->magic)) ||
	    hdr->version != SIM_REGION_VERSION ||
	    hdr->layout != sim_region_layout() ||
	    hdr->size != (uint64_t)st.st_size || hdr->size < sizeof(*hdr) ||
	    hdr->base % SIM_PAGE || hdr->base + hdr->size < hdr->base)
		return -EINVAL;
	return 0;
}

int sim_region_adopt(const struct backend_kept_fd *kept, size_t n_kept,
		     struct sim_region **out)
{
	struct sim_region hdr, *r;
	int fd = -1, rc;
	size_t i;

	/* Ours are the first "sim"; every other descriptor is closed. */
	for (i = 0; i < n_kept; i++) {
		if (fd < 0 && !strcmp(kept[i].name, SIM_KEPT_NAME))
			fd = kept[i].fd;
		else if (kept[i].fd >= 0)
			close(kept[i].fd);
	}
	if (fd < 0 || n_kept != 1) {
		rc = -EINVAL;
		goto err_close;
	}
	rc = sim_region_check(fd, &hdr);
	if (rc)
		goto err_close;
	if (__atomic_load_n(&hdr.changing, __ATOMIC_RELAXED)) {
		rc = -EUCLEAN;
		goto err_close;
	}
	if (hdr.size != SIM_REGION_SIZE ||
	    (fcntl(fd, F_GET_SEALS) & SIM_REGION_SEALS) != SIM_REGION_SEALS) {
		rc = -EINVAL;
		goto err_close;
	}
	r = sim_region_map_at(fd, hdr.base);
	if (!r) {
		rc = errno == EEXIST ? -EBUSY : -errno;
		goto err_close;
	}
	/* Read again, mapped: the header is what pread() saw. */
	if (r->changing) {
		munmap(r, SIM_REGION_SIZE);
		rc = -EUCLEAN;
		goto err_close;
	}
	r->fd = fd;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;

err_close:
	if (fd >= 0)
		close(fd);
	return rc;
}
