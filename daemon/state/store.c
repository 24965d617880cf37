// SPDX-License-Identifier: MIT
/*
 * systemd's file descriptor store (Owns: which descriptors the store
 * holds of ours): what systemd passed at the start, sorted by name; the
 * kernel descriptors a version names handed over before its commit word
 * and dropped once no committed version names them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/subscriber/bitmem.h"
#include "daemon/config/config.h"
#include "daemon/domain/domain.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/state/state_private.h"

/* ------------------------------------------------------------ store */

/* A name of at most BACKEND_NAME_MAX - 1 bytes into @dst. */
void name_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, BACKEND_NAME_MAX - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* What the store calls descriptor @name of domain @domain's context. */
void kernel_fdname(char out[STATE_FDNAME_MAX], uint32_t domain,
			  const char *name)
{
	snprintf(out, STATE_FDNAME_MAX, FD_KERNEL "%u-%s", domain, name);
}

static void store_failed(struct state *st, int r, const char *name)
{
	if (st->store_failed)
		return;
	st->store_failed = true;
	log_warning_errno(r, "handing %s to systemd's file descriptor store "
			  "failed: a restart will not keep the state", name);
}

void store_fd(struct state *st, const char *name, int fd)
{
	char msg[64 + 2 * BACKEND_NAME_MAX];
	int r;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (r <= 0)
		store_failed(st, r ? r : -ENOTCONN, name);
}

void store_remove(struct state *st, const char *name)
{
	char msg[64 + 2 * BACKEND_NAME_MAX];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	if (sd_pid_notify(0, 0, msg) <= 0)
		log_debug("FDSTOREREMOVE %s: no store", name);
}

void kept_identify(struct state_kept *k)
{
	struct stat s;

	k->dev = 0;
	k->ino = 0;
	if (fstat(k->fd, &s) == 0) {
		k->dev = s.st_dev;
		k->ino = s.st_ino;
	}
}

/* What backend_keep() says of @d's context now: its descriptors in @fds
 * (BACKEND_KEEP_MAX_FDS), its blob in st->blob (*@len bytes). */
int store_domain_keep(struct state *st, struct domain *d,
		      struct backend_kept_fd *fds, size_t *len)
{
	*len = sizeof(st->blob);
	if (!d->kctx || !d->kctx->ops->keep)
		return -EOPNOTSUPP;
	return backend_keep(d->kctx, fds, BACKEND_KEEP_MAX_FDS, st->blob, len);
}

struct state_kept *kept_find(struct state_kept *k, size_t n,
				    uint32_t domain, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (k[i].domain == domain && !strcmp(k[i].name, name))
			return &k[i];
	return NULL;
}

/*
 * Hand the store the kernel descriptors the new version names (st->knext,
 * filled by put_domain()) that it does not hold yet: before the commit
 * word, so that no committed version names one the store lacks.
 */
void state_store_new(struct state *st, size_t n)
{
	char name[STATE_FDNAME_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct state_kept *e = &st->knext[i];
		struct state_kept *old = kept_find(st->kept, st->nkept,
						   e->domain, e->name);

		if (old && old->dev == e->dev && old->ino == e->ino)
			continue;
		kernel_fdname(name, e->domain, e->name);
		if (old)
			store_remove(st, name);
		store_fd(st, name, e->fd);
	}
}

/* After the commit word: drop what no version names any more, and make
 * the new set the one the store holds. */
void state_store_drop_old(struct state *st, size_t n)
{
	char name[STATE_FDNAME_MAX];
	struct state_kept *t;

	for (size_t j = 0; j < st->nkept; j++)
		if (!kept_find(st->knext, n, st->kept[j].domain,
			       st->kept[j].name)) {
			kernel_fdname(name, st->kept[j].domain,
				      st->kept[j].name);
			store_remove(st, name);
		}
	t = st->kept;
	st->kept = st->knext;
	st->knext = t;
	st->nkept = n;
}

/* ------------------------------------------------------------ start */

int state_take_fds(struct server *srv, int *listen_fd)
{
	struct state *st;
	char **names = NULL;
	int n, r = 0;

	*listen_fd = -1;
	st = calloc(1, sizeof(*st));
	if (!st)
		return log_error_errno(-ENOMEM, "out of memory");
	st->passed_meta = st->passed_bits = st->meta_fd = -1;
	st->store = getenv("NOTIFY_SOCKET") != NULL;
	srv->state = st;
	st->passed = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->passed));
	st->kept = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->kept));
	st->knext = calloc(STATE_MAX_KERNEL_FDS, sizeof(*st->knext));
	if (!st->passed || !st->kept || !st->knext)
		return log_error_errno(-ENOMEM, "out of memory");

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return log_error_errno(n, "reading $LISTEN_FDS failed");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "";

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (!strcmp(name, FD_META)) {
			/* one of each, or the store is not ours */
			if (st->nmeta++)
				close(fd);
			else
				st->passed_meta = fd;
		} else if (!strcmp(name, FD_BITS)) {
			if (st->nbits++)
				close(fd);
			else
				st->passed_bits = fd;
		} else if (!strncmp(name, FD_KERNEL, strlen(FD_KERNEL)) &&
			   st->npassed < STATE_MAX_KERNEL_FDS) {
			struct state_kept *k = &st->passed[st->npassed];
			const char *at = name + strlen(FD_KERNEL);
			char *end;
			unsigned long dom = strtoul(at, &end, 10);

			/* kernel-DOMAIN-NAME; another name is not ours */
			if (at[0] < '1' || at[0] > '9' || *end != '-' ||
			    dom > UINT32_MAX || !end[1] ||
			    strlen(end + 1) >= BACKEND_NAME_MAX) {
				log_warning("ignoring the descriptor named "
					    "'%s' that systemd passed", name);
				store_remove(st, name);
				close(fd);
				continue;
			}
			k->domain = (uint32_t)dom;
			name_copy(k->name, end + 1);
			k->fd = fd;
			st->npassed++;
		} else if (sd_is_socket(fd, AF_UNIX, 0, 1) > 0) {
			if (*listen_fd >= 0) {
				r = log_error_errno(-EINVAL, "systemd passed "
						    "more than one socket; "
						    "dirtyd takes exactly one "
						    "(ListenSequentialPacket=)");
				close(fd);
				continue;
			}
			*listen_fd = fd;
		} else {
			log_warning("ignoring the descriptor named '%s' that "
				    "systemd passed", name);
			close(fd);
		}
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return r;
}

void state_close_passed(struct state *st)
{
	if (st->passed_meta >= 0)
		close(st->passed_meta);
	if (st->passed_bits >= 0)
		close(st->passed_bits);
	for (size_t i = 0; i < st->npassed; i++)
		if (st->passed[i].fd >= 0)
			close(st->passed[i].fd);
	st->passed_meta = st->passed_bits = -1;
	st->npassed = 0;
}

/* Kernel descriptors passed and not adopted: closed (the kernel frees
 * what they held) and dropped from the store. */
void state_drop_passed(struct state *st)
{
	char name[STATE_FDNAME_MAX];

	for (size_t i = 0; i < st->npassed; i++) {
		if (st->passed[i].fd < 0)
			continue;
		kernel_fdname(name, st->passed[i].domain, st->passed[i].name);
		store_remove(st, name);
		close(st->passed[i].fd);
		st->passed[i].fd = -1;
	}
	st->npassed = 0;
}

/* Are the store's descriptors the set one dirtyd leaves? */
int state_check_names(struct state *st)
{
	if (st->nmeta > 1 || st->nbits > 1)
		return refuse(st, -EBADMSG, "the store holds %u descriptors "
			      "named " FD_META " and %u named " FD_BITS
			      " (one of each is ours)", st->nmeta, st->nbits);
	if (st->nmeta && !st->nbits)
		return refuse(st, -ENOENT, "the store holds " FD_META " but "
			      "no " FD_BITS ": the dirty bitmaps are missing");
	if (!st->nmeta && st->nbits)
		return refuse(st, -ENOENT, "the store holds " FD_BITS " but "
			      "no " FD_META ": what the bitmaps belong to is "
			      "missing");
	if (!st->nmeta)
		return refuse(st, -ENOENT, "the store holds a kernel context "
			      "(" FD_KERNEL "%u-%s) but neither " FD_META
			      " nor " FD_BITS, st->passed[0].domain,
			      st->passed[0].name);
	return 0;
}
