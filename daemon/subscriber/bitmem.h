/* SPDX-License-Identifier: MIT */
/*
 * Where dirty bitmaps live.
 *
 * With no bitmem (NULL) they are ordinary heap memory.  With one, they are
 * page-aligned regions of one big sparse memfd that outlives the process
 * (systemd's file descriptor store keeps it, daemon/state/state.h): a bit written
 * there is as safe as the kernel's page cache the moment the store
 * instruction retires, whatever kills the process next.
 *
 * Space.  Regions are whole pages at byte offsets into the memfd, found
 * first-fit.  A region is released in two steps so that no committed
 * version of the daemon's metadata ever names space that was reused:
 * bitmem_release() only queues it; bitmem_reclaim(), which the state module
 * calls after it committed a version that no longer names it, punches the
 * pages (they read as zero again, their memory is freed) and makes the
 * space free.  Free space is always a hole, so a new region reads as zero
 * without being written.  After a restart bitmem_claim() marks what the
 * committed metadata names, and bitmem_claim_done() punches everything
 * else (regions a crashed process allocated but never committed).
 *
 * Threads.  bitmem_alloc(), bitmem_release() and bitmem_reclaim() may be
 * called from any thread (a domain's change moves subscriber sets off the
 * event loop, daemon/domain/domain_change.c); a region is used by one thread at a
 * time, whoever owns it.
 */
#ifndef DIRTYD_BITMEM_H
#define DIRTYD_BITMEM_H

#include <stdint.h>

struct bitmem;

/* Bytes of address space reserved for the memfd: bitmaps of at most this
 * much in total (a 1 TiB guest's bitmap at 4 KiB pages is 32 MiB). */
#define BITMEM_RESERVE (1ULL << 40)

/**
 * bitmem_new() - bitmaps in a new memfd named @name, BITMEM_RESERVE bytes,
 * sealed so that its size never changes (F_SEAL_SHRINK, F_SEAL_GROW,
 * F_SEAL_SEAL).  -errno.
 */
int bitmem_new(const char *name, struct bitmem **out);
/**
 * bitmem_adopt() - bitmaps in the kept memfd @fd (taken over, closed on
 * failure).  It is used as it is, never resized: -EMSGSIZE unless it is
 * BITMEM_RESERVE bytes; -errno.
 */
int bitmem_adopt(int fd, struct bitmem **out);
/** bitmem_free() - unmap and close; the memfd's contents stay wherever
 *  another descriptor of it lives (the fd store).  NULL is fine. */
void bitmem_free(struct bitmem *m);
/** bitmem_fd() - the memfd. */
int bitmem_fd(const struct bitmem *m);

/**
 * bitmem_alloc() - @nwords zeroed 64-bit words, 4096-byte aligned, or NULL
 * (out of memory, or of reserved space).  @m NULL: the heap.
 */
uint64_t *bitmem_alloc(struct bitmem *m, uint64_t nwords);
/** bitmem_release() - give back what bitmem_alloc() returned (NULL is
 *  fine): at once on the heap, at the next bitmem_reclaim() otherwise. */
void bitmem_release(struct bitmem *m, uint64_t *p, uint64_t nwords);
/** bitmem_zero() - clear @nwords words at @p (whole pages are punched). */
void bitmem_zero(struct bitmem *m, uint64_t *p, uint64_t nwords);
/** bitmem_reclaim() - free what was released before now: call it after a
 *  commit that names none of it.  Regions of a MiB or more are punched by
 *  a thread of bitmem's own (and big heap regions freed there): their
 *  space is free once they are (bitmem.c, "The reaper"). */
void bitmem_reclaim(struct bitmem *m);

/** bitmem_offset() - where @p lies in the memfd, in bytes. */
uint64_t bitmem_offset(const struct bitmem *m, const uint64_t *p);
/**
 * bitmem_claim() - at a restart: the region [@off, @off + @nwords words)
 * that committed metadata names is in use; returns it, or NULL if it is
 * misaligned, out of the reserved space or overlaps a claimed region.
 */
uint64_t *bitmem_claim(struct bitmem *m, uint64_t off, uint64_t nwords);
/** bitmem_claim_done() - every claim made: punch all other space. */
int bitmem_claim_done(struct bitmem *m);
/**
 * bitmem_data() - the words of [@p + *@from, @p + @nwords) that may hold
 * anything: the first run of them at or after *@from is
 * [*@from, return value); *@from == @nwords when there is none.  Holes
 * read as zero, so a scan may skip them without touching (and so
 * allocating) their pages.  On the heap: everything.
 */
uint64_t bitmem_data(const struct bitmem *m, const uint64_t *p,
		     uint64_t nwords, uint64_t *from);
/** bitmem_bytes() - bytes of regions in use (claimed or allocated). */
uint64_t bitmem_bytes(const struct bitmem *m);

#endif
