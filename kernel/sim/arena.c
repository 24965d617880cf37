// SPDX-License-Identifier: MIT
/*
 * Table pages for the sim's IO page tables.
 *
 * A real IOMMU driver takes its table pages from the page allocator, one
 * 4 KiB page each.  Here one malloc per table would cost a header and a
 * lock per table and scatter a terabyte's 524,288 leaf tables over the
 * heap, so tables are carved from anonymous MAP_NORESERVE chunks instead:
 * the first chunk is 64 KiB, each next one twice the last, up to 256 MiB
 * (a 1 TiB / 4 KiB page table is about 2 GiB: a dozen chunks).  The bump
 * pointer prefaults the memory ahead of it 2 MiB at a time with
 * MADV_POPULATE_WRITE: a fresh table is read before it is written, and
 * letting that fault in the zero page first costs a second (copy on
 * write) fault per table.  Transparent huge pages are not asked for: they
 * made filling slower (2 MiB zeroed per fault) and the walk no faster.
 * Tables freed by unmap go on a free list and are zeroed when handed out
 * again; all chunks go back when the page table is destroyed.
 *
 * A host's page tables take their chunks (and the chunk array) from the
 * host's region (region.c), so that they live in its memfd; a page table
 * made on its own, without a host, maps private anonymous chunks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernel/sim/sim_private.h"

#define SIM_TABLE_SIZE 4096UL
#define SIM_ARENA_FIRST_CHUNK (64UL << 10)
#define SIM_ARENA_MAX_CHUNK (256UL << 20)
#define SIM_ARENA_POPULATE (2UL << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14; older kernels say EINVAL */
#endif

void sim_arena_init(struct sim_arena *a, struct sim_region *region)
{
	*a = (struct sim_arena){
		.region = region,
		.next_chunk_size = SIM_ARENA_FIRST_CHUNK,
	};
}

static void *sim_arena_map_chunk(struct sim_arena *a, size_t len)
{
	void *p;

	if (a->region)
		return sim_mem_alloc(a->region, len);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void sim_arena_unmap_chunk(struct sim_arena *a, void *p, size_t len)
{
	if (a->region)
		sim_mem_free(a->region, p, len);
	else
		munmap(p, len);
}

void sim_arena_destroy(struct sim_arena *a)
{
	struct sim_region *region = a->region;
	unsigned int i;

	for (i = 0; i < a->n_chunks; i++)
		sim_arena_unmap_chunk(a, a->chunks[i].base, a->chunks[i].len);
	if (region)
		sim_mem_free(region, a->chunks,
			     a->cap_chunks * sizeof(*a->chunks));
	else
		free(a->chunks);
	sim_arena_init(a, region);
}

static int sim_arena_grow_chunks(struct sim_arena *a)
{
	unsigned int cap = a->cap_chunks ? 2 * a->cap_chunks : 16;
	struct sim_arena_chunk *c;

	if (a->region)
		c = sim_mem_realloc(a->region, a->chunks,
				    a->cap_chunks * sizeof(*c),
				    cap * sizeof(*c));
	else
		c = realloc(a->chunks, cap * sizeof(*c));
	if (!c)
		return -ENOMEM;
	a->chunks = c;
	a->cap_chunks = cap;
	return 0;
}

static int sim_arena_grow(struct sim_arena *a)
{
	size_t len = a->next_chunk_size;
	void *p;

	if (a->n_chunks == a->cap_chunks && sim_arena_grow_chunks(a))
		return -ENOMEM;

	p = sim_arena_map_chunk(a, len);
	if (!p)
		return -ENOMEM;
	a->chunks[a->n_chunks++] = (struct sim_arena_chunk){
		.base = p,
		.len = len,
	};
	a->bump = p;
	a->bump_end = (char *)p + len;
	a->populated = p;
	if (a->next_chunk_size < SIM_ARENA_MAX_CHUNK)
		a->next_chunk_size *= 2;
	__atomic_store_n(&a->reserved, a->reserved + len, __ATOMIC_RELAXED);
	return 0;
}

uint64_t *sim_arena_alloc_table(struct sim_arena *a)
{
	uint64_t *t;

	if (a->free_list) {
		t = a->free_list;
		a->free_list = *(void **)t;
		memset(t, 0, SIM_TABLE_SIZE);
	} else {
		if (a->bump == a->bump_end && sim_arena_grow(a))
			return NULL;
		if (a->bump == a->populated) {
			size_t n = a->bump_end - a->bump;

			if (n > SIM_ARENA_POPULATE)
				n = SIM_ARENA_POPULATE;
			/* A hint: on failure pages fault in one by one. */
			madvise(a->bump, n, MADV_POPULATE_WRITE);
			a->populated = a->bump + n;
		}
		/* Fresh memory (anonymous or a memfd's) is already zero. */
		t = (uint64_t *)a->bump;
		a->bump += SIM_TABLE_SIZE;
	}
	__atomic_store_n(&a->tables, a->tables + 1, __ATOMIC_RELAXED);
	return t;
}

void sim_arena_free_table(struct sim_arena *a, uint64_t *table)
{
	*(void **)table = a->free_list;
	a->free_list = table;
	__atomic_store_n(&a->tables, a->tables - 1, __ATOMIC_RELAXED);
}
