/* SPDX-License-Identifier: MIT */
/*
 * Surviving a restart: dirtyd's state in systemd's file descriptor store.
 * See the comment at the top of journal.c for the design and the argument.
 *
 * Descriptors kept in the store (FDNAME=):
 *   dirtyd-meta      the metadata memfd (domains, sessions, subscriptions,
 *                    where their bitmaps are), two versions, one active
 *   dirtyd-bits      the bitmap memfd (daemon/subscriber/bitmem.h)
 *   kernel-D-NAME    each descriptor backend_keep() returns for domain D's
 *                    kernel context, NAME its name (the sim: kernel-D-sim;
 *                    iommufd: kernel-D-iommufd and one per bound device)
 *
 * Life: state_take_fds() at start sorts what systemd passed; state_open()
 * opens the backend, adopting the kept context when what the store handed
 * back passes every check (format.c: checked, not trusted; the layout is
 * state_format.h); state_restore() rebuilds domains, subscriptions and
 * parked sessions from it (or starts afresh and hands new memfds to the
 * store).  Every change to what must survive goes through the journal
 * (journal.c, below).  A stop commits what is owed and then nothing more
 * (state_leave()); no exit takes anything out of the store: systemd
 * closes it or hands it to the next start.  Without $NOTIFY_SOCKET there
 * is no store: nothing is kept, bitmaps live on the heap and the journal
 * does nothing.
 */
#ifndef DIRTYD_STATE_H
#define DIRTYD_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/backend.h"

struct domain;
struct server;

/*
 * A kernel change in progress: what a restart must undo or finish.  A
 * creation needs none: a domain's kernel context reaches the store only
 * with the version that lists the domain (domain.h).
 */
enum state_op {
	STATE_OP_NONE = 0,
	STATE_OP_DESTROY,	/* finished */
	STATE_OP_ATTACH,	/* undone */
	STATE_OP_DETACH,	/* finished */
	STATE_OP_MAP,		/* undone */
	STATE_OP_UNMAP,		/* finished */
	STATE_OP_TRACK,		/* finished */
};

struct state_intent {
	uint32_t op;		/* enum state_op */
	uint32_t domain_id;
	uint64_t iova;
	uint64_t length;
	uint32_t flags;		/* MAP/UNMAP: PROTO_MAP_*; TRACK: on */
	uint32_t dev_id;	/* 0: not (yet) known */
	uint32_t ioas_id;
	uint32_t hwpt_id;
	char device[BACKEND_NAME_MAX];
};

/**
 * state_take_fds() - sort the descriptors systemd passed: ours by name,
 * and the listening socket (*listen_fd, or -1 if none was passed).
 * -errno (logged) if they make no sense.
 */
int state_take_fds(struct server *srv, int *listen_fd);
/**
 * state_open() - open the backend described by @bc: adopt the kept
 * context if the store handed back one that passes every check, else a
 * new one (logging at error level what was wrong: every resume then gets
 * STATE_LOST).  -errno as backend_open().
 */
int state_open(struct server *srv, struct backend_config *bc);
/**
 * state_restore() - with the event loop and the engine up: rebuild what
 * was adopted (domains, subscriptions, parked sessions), or start afresh
 * and hand new memfds to the store.  -errno (logged) only for what the
 * daemon cannot run without.
 */
int state_restore(struct server *srv);
/**
 * state_leave() - at a stop, before the daemon frees its memory: commit
 * what is owed, count this adoption as one that served, and from then on
 * commit nothing (what the freeing drops is not a change: the store keeps
 * the last version for the next start).
 */
void state_leave(struct server *srv);
/** state_exit() - at the end: close and free ours; the store keeps what
 *  it holds (systemd decides when to close it). */
void state_exit(struct server *srv);

/*
 * The journal (journal.c): the one way to change what must survive.
 *
 * A kernel change declares its intent once, journal_change(): committed
 * at once, before the change begins, so that a restart finds it; its end,
 * journal_change_end(), and every other change, journal_note(), are owed:
 * committed once, at the end of the event loop's pass (all of them in one
 * version).  What is owed is committed before anything leaves the process
 * that depends on it, journal_flush(): before a reply is sent (a client
 * is never told of a change a restart would undo) and before a harvest
 * reads the IOMMU into bitmaps a version must name.
 */
/** journal_change() - @d's kernel change @in (its op and what it needs;
 *  the domain id is filled in) as its intent: committed now. */
void journal_change(struct domain *d, const struct state_intent *in);
/** journal_change_end() - @d's change done: the intent cleared, owed. */
void journal_change_end(struct domain *d);
/** journal_note() - something that must survive changed: owed. */
void journal_note(struct server *srv);
/** journal_flush() - commit what is owed, now. */
void journal_flush(struct server *srv);
/** journal_commit() - write what must survive, as it is now, as the new
 *  version (hand changed kernel descriptors to the store first): now. */
void journal_commit(struct server *srv);

/** state_keeps() - true when a successor could adopt what we hold. */
bool state_keeps(const struct server *srv);
/** state_bits() - where durable bitmaps go (NULL: the heap). */
struct bitmem *state_bits(struct server *srv);
/** state_restoring() - true while state_restore() rebuilds. */
bool state_restoring(const struct server *srv);

#endif
