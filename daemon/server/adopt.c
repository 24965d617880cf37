// SPDX-License-Identifier: MIT
/*
 * Adoption (docs/ADOPTION.md, PROTOCOL.md 6.18 to 6.20): ADOPT hands a
 * VMM a domain's kernel descriptors and ids with a lease; UNADOPT ends
 * the lease; READOPT rebuilds a domain around the kernel objects a VMM
 * held on to while dirtyd was stopped without a store.
 *
 * Owns: a domain's lease (struct domain_lease): who holds it, its session
 * (lost when the session closes, found again by a HELLO with its resume
 * token, also after a restart with the store), that an adopted domain is
 * neither destroyed nor loses a device by request (adopt_refuse()), and
 * when a lease ends without UNADOPT: its session gone for resume_grace and
 * its pid gone too (a pidfd), the orphan cleanup takes its EXTERNAL ranges
 * out of the plan (after a round, so subscribers get their last pages)
 * and unmaps them from the IOAS, so that the dead VMM's pinned memory is
 * let go.  A lease whose pid still lives is looked at again every
 * resume_grace.
 */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/server/adopt.h"
#include "daemon/server/fdpass.h"
#include "daemon/server/requests.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "protocol/proto.h"

/* ------------------------------------------------------------ the lease */

int adopt_refuse(struct domain *d, const char *what, struct error *e)
{
	const struct domain_lease *l = &d->lease;

	if (!domain_adopted(d))
		return 0;
	return error_set(e, -EBUSY, "%s: domain %u is adopted by pid %d "
			  "(lease 0x%" PRIx64 "%s): UNADOPT first", what,
			  d->id, (int)l->pid, l->id,
			  l->session ? "" : ", its session is gone");
}

static int pidfd_of(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -1 : (int)fd;
}

/* Whether the adopter's process still exists: its pidfd is readable once
 * it exited; without one (pidfd_open refused), kill(pid, 0). */
static bool lease_pid_alive(const struct domain_lease *l)
{
	struct pollfd p = { .fd = l->pidfd, .events = POLLIN };

	if (l->pidfd >= 0)
		return poll(&p, 1, 0) == 0;
	return l->pid > 0 && (kill(l->pid, 0) == 0 || errno == EPERM);
}

static uint64_t grace_ns(const struct server *srv)
{
	return (uint64_t)srv->cfg->resume_grace * 1000000000ULL;
}

static void lease_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Look at @d's lease again in @left_ns. */
static void lease_arm(struct domain *d, uint64_t left_ns)
{
	struct domain_lease *l = &d->lease;
	struct timeval tv = {
		.tv_sec = (time_t)(left_ns / 1000000000ULL),
		.tv_usec = (suseconds_t)(left_ns % 1000000000ULL / 1000),
	};

	if (!l->timer)
		l->timer = event_new(d->srv->base, -1, 0, lease_timer_cb, d);
	if (!l->timer) {
		log_error("domain %u: no memory for its lease's timer: the "
			  "lease is not cleaned up if its VMM dies", d->id);
		return;
	}
	event_add(l->timer, &tv);
}

/* The orphan cleanup, with the domain idle (after a round when tracking
 * is on): the lease's EXTERNAL ranges out of the plan, then the IOAS. */
static void lease_cleanup_run(struct domain_waiter *w, int result)
{
	struct domain *d = container_of(w, struct domain, lease.waiter);
	struct domain_lease *l = &d->lease;
	unsigned int n = 0;
	uint64_t bytes = 0;

	if (result == -ENOENT)
		return;		/* the domain went first */
	for (;;) {
		struct error e = ERROR_INIT;
		uint64_t iova = 0, len = 0;
		size_t i;
		int r;

		for (i = 0; i < d->nmaps && !d->maps[i].external; i++)
			;
		if (i == d->nmaps)
			break;
		iova = d->maps[i].iova;
		len = d->maps[i].length;
		r = domain_unmap(d, iova, len, PROTO_MAP_EXTERNAL, &e, NULL,
				 NULL);
		if (r < 0) {
			log_error("domain %u: taking the dead VMM's range "
				  "[0x%" PRIx64 ", 0x%" PRIx64 ") out of the "
				  "plan failed: %s; the lease stays", d->id,
				  iova, iova + len, error_text(&e, r));
			l->cleaning = false;
			lease_arm(d, grace_ns(d->srv));
			return;
		}
		r = backend_ioas_unmap(d->kctx, d->ioas_id, iova, len, NULL);
		if (r < 0 && r != -ENOENT)
			log_warning_errno(r, "domain %u: IOMMU_IOAS_UNMAP of the "
					  "dead VMM's [0x%" PRIx64 ", 0x%" PRIx64
					  ")", d->id, iova, iova + len);
		n++;
		bytes += len;
	}
	log_notice("domain %u: the VMM that adopted it (pid %d, lease 0x%"
		   PRIx64 ") is gone and did not come back within "
		   "resume_grace: its %u EXTERNAL ranges (0x%" PRIx64 " bytes) "
		   "are unmapped and the lease ends", d->id, (int)l->pid, l->id,
		   n, bytes);
	domain_lease_release(d);
	journal_note(d->srv);
}

static void lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct domain *d = arg;
	struct domain_lease *l = &d->lease;

	if (!l->id || l->session || l->cleaning)
		return;
	if (lease_pid_alive(l)) {
		log_info("domain %u: its adopter's session is gone but pid %d "
			 "lives: the lease is kept, looked at again in %u s",
			 d->id, (int)l->pid, d->srv->cfg->resume_grace);
		lease_arm(d, grace_ns(d->srv));
		return;
	}
	l->cleaning = true;
	if (d->enabled)
		domain_after_round(d, &l->waiter, false, lease_cleanup_run);
	else
		domain_when_idle(d, &l->waiter, lease_cleanup_run);
}

/* @d's lease lost its session: the orphan check in resume_grace. */
static void lease_orphan(struct domain *d, uint64_t deadline_ns)
{
	uint64_t now = domain_now_ns();

	d->lease.session = NULL;
	d->lease.deadline_ns = deadline_ns;
	lease_arm(d, deadline_ns > now ? deadline_ns - now : 0);
	journal_note(d->srv);
}

void adopt_session_closed(struct session *s)
{
	struct domain *d;

	list_for_each_entry(d, &s->srv->domains, link) {
		if (d->lease.session != s)
			continue;
		log_info("domain %u: its adopter (pid %d) closed its session; "
			 "the lease is kept %u s for a resume", d->id,
			 (int)s->pid, s->srv->cfg->resume_grace);
		lease_orphan(d, domain_now_ns() + grace_ns(s->srv));
	}
}

void adopt_session_hello(struct session *s, uint64_t token)
{
	struct domain *d;

	if (!token || !s->token)
		return;
	list_for_each_entry(d, &s->srv->domains, link) {
		struct domain_lease *l = &d->lease;

		if (!l->id || l->session || l->token != token ||
		    l->uid != s->uid)
			continue;
		if (l->timer)
			event_del(l->timer);
		domain_waiter_cancel(&l->waiter);
		l->cleaning = false;
		l->session = s;
		l->token = s->token;
		l->deadline_ns = 0;
		if (l->pid != s->pid) {
			if (l->pidfd >= 0)
				close(l->pidfd);
			l->pid = s->pid;
			l->pidfd = pidfd_of(s->pid);
		}
		log_info("domain %u: its adopter is back (pid %d)", d->id,
			 (int)s->pid);
		journal_note(s->srv);
	}
}

void adopt_lease_restored(struct domain *d)
{
	struct domain_lease *l = &d->lease;

	if (!l->id)
		return;
	l->pidfd = pidfd_of(l->pid);
	lease_orphan(d, l->deadline_ns ? l->deadline_ns :
			domain_now_ns() + grace_ns(d->srv));
}

/* A lease for @s on @d, from now on. */
static void lease_take(struct session *s, struct domain *d, uint64_t id)
{
	struct domain_lease *l = &d->lease;

	l->id = id ? id : requests_new_token();
	l->token = s->token;
	l->pid = s->pid;
	l->uid = s->uid;
	l->session = s;
	l->deadline_ns = 0;
	l->pidfd = pidfd_of(s->pid);
	/* durable before the VMM hears of it */
	journal_note(s->srv);
	journal_flush(s->srv);
}

/* ------------------------------------------------------------ ADOPT */

static int need_feature(struct session *s, struct error *e)
{
	if (!(s->features & PROTO_FEAT_ADOPT))
		return error_set(e, -EOPNOTSUPP, "adoption (PROTO_FEAT_ADOPT) "
				  "was not negotiated in HELLO");
	return 0;
}

/* ADOPT_REPLY's fixed part for @d. */
static struct proto_msg adopt_reply_fixed(struct domain *d, uint64_t id,
					  bool iommufd)
{
	struct proto_msg m = { .type = PROTO_ADOPT_REPLY, .id = id };

	m.list.ioas_id = d->ioas_id;
	m.list.hwpt_id = d->hwpt_id;
	m.list.status = domain_status(d);
	m.list.page_size = d->page_size;
	m.list.max_leaf = d->max_leaf;
	m.list.lease = d->lease.id;
	m.list.adopt_flags = (d->huge_pages ? 0 : PROTO_ADOPT_HUGE_PAGES_OFF) |
			     (iommufd ? 0 : PROTO_ADOPT_NO_IOMMUFD) |
			     (domain_verifies_external(d) ?
			      PROTO_ADOPT_VERIFIES_EXTERNAL : 0);
	return m;
}

int adopt_req_adopt(struct session *s, struct domain *d,
		    const struct proto_msg *m, struct error *e)
{
	unsigned int index[FDPASS_MAX_FDS], i = 0;
	struct proto_list_builder lb;
	struct domain_device *dev;
	int fds[FDPASS_MAX_FDS];
	struct proto_msg fixed;
	uint64_t lease;
	int r, n;

	r = need_feature(s, e);
	if (r < 0)
		return r;
	r = adopt_refuse(d, "ADOPT", e);
	if (r < 0)
		return r;
	if (backend_iommufd(d->kctx) >= 0 &&
	    !(s->features & PROTO_FEAT_FD_PASSING))
		return error_set(e, -EOPNOTSUPP, "ADOPT hands over descriptors: "
				  "negotiate PROTO_FEAT_FD_PASSING too");
	if (d->ndevices + 1 > FDPASS_MAX_FDS)
		return error_set(e, -E2BIG, "domain %u has more devices than "
				  "one message can carry descriptors for",
				  d->id);
	r = proto_list_begin(&lb, s->out, PROTO_MAX_MSG, PROTO_ADOPT_REPLY,
			     m->id);
	if (r < 0)
		return error_set(e, r, "encoding failed");
	n = fdpass_domain_fds(d, fds, index, e);
	if (n < 0)
		return n;
	list_for_each_entry(dev, &d->devices, link) {
		struct proto_adopt_device ad = {
			.dev_id = dev->dev_id,
			.fd_index = index[i++],
			.dev_flags = PROTO_ADOPT_DEV_BOUND |
				     PROTO_ADOPT_DEV_ATTACHED,
		};

		snprintf(ad.name, sizeof(ad.name), "%s", dev->name);
		r = proto_list_add_adopt_device(&lb, &ad);
		if (r < 0)
			break;
	}
	lease = requests_new_token();
	d->lease.id = lease;	/* for the reply's fixed part */
	fixed = adopt_reply_fixed(d, m->id, n > 0);
	d->lease.id = 0;
	proto_list_set_adopt(&lb, &fixed);
	if (r >= 0)
		r = proto_list_end(&lb, false);
	if (r < 0) {
		while (n)
			close(fds[--n]);
		return error_set(e, r, "encoding failed");
	}
	lease_take(s, d, lease);
	log_notice("domain %u adopted by pid %d uid %u (lease 0x%" PRIx64
		   "): %d descriptors handed over", d->id, (int)s->pid,
		   (unsigned int)s->uid, lease, n);
	session_reply_packet(s, (size_t)r, fds, (unsigned int)n);
	return 0;
}

int adopt_req_unadopt(struct session *s, struct domain *d,
		      const struct proto_msg *m, struct error *e)
{
	struct domain_lease *l = &d->lease;
	int r = need_feature(s, e);

	if (r < 0)
		return r;
	if (!domain_adopted(d))
		return error_set(e, -EINVAL, "domain %u is not adopted", d->id);
	if (l->session != s && !s->admin)
		return error_set(e, -EPERM, "domain %u's lease is held by pid "
				  "%d%s: only its session or an admin may end "
				  "it", d->id, (int)l->pid,
				  l->session ? "" : " (its session is gone: "
				  "resume it with its token)");
	log_notice("domain %u: lease 0x%" PRIx64 " of pid %d ended by pid %d",
		   d->id, l->id, (int)l->pid, (int)s->pid);
	domain_lease_release(d);
	journal_note(s->srv);
	journal_flush(s->srv);
	session_reply_ok(s, m->id);
	return 0;
}

/* ------------------------------------------------------------ READOPT */

/* The descriptors of the packet: taken (-1 in @s's list from now on). */
static void in_fds_close(struct session *s)
{
	for (unsigned int i = 0; i < s->in_nfds; i++)
		if (s->in_fds[i] >= 0)
			close(s->in_fds[i]);
	s->in_nfds = 0;
}

/* The body's devices against the packet's descriptors and the ACL: their
 * names dirtyd knows them by into @names, their descriptors into @g. */
static int readopt_devices(struct session *s, const struct proto_readopt *r,
			   char (*names)[BACKEND_NAME_MAX], uint32_t *dev_ids,
			   struct backend_given_device *g, struct error *e)
{
	unsigned int want = 1;
	int rc;

	for (uint32_t i = 0; i < r->ndevices; i++) {
		struct proto_adopt_device ad;

		proto_readopt_device_at(r, i, &ad);
		want += ad.fd_index != 0;
	}
	if (s->in_nfds != want)
		return error_set(e, -EBADF, "READOPT carries %u descriptors; "
				  "its body needs %u (the iommufd, then one "
				  "per device with an fd_index)", s->in_nfds,
				  want);
	for (uint32_t i = 0; i < r->ndevices; i++) {
		struct proto_adopt_device ad;

		proto_readopt_device_at(r, i, &ad);
		/* unique (the codec checks): so 1 .. want - 1, each once */
		if (ad.fd_index >= want)
			return error_set(e, -EBADF, "device %s: fd_index %u, "
					  "but the packet carries %u "
					  "descriptors", ad.name, ad.fd_index,
					  want);
		rc = requests_claim_check(s, ad.name, names[i], e);
		if (rc < 0)
			return rc;
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(names[j], names[i]) ||
			    dev_ids[j] == ad.dev_id)
				return error_set(e, -EINVAL, "device %s (dev_id "
						  "%u) is named twice", names[i],
						  ad.dev_id);
		dev_ids[i] = ad.dev_id;
		g[i] = (struct backend_given_device){ .dev_id = ad.dev_id,
						       .fd = -1 };
		memcpy(g[i].name, names[i], BACKEND_NAME_MAX);
		if (ad.fd_index)
			g[i].fd = s->in_fds[ad.fd_index];
	}
	return 0;
}

int adopt_req_readopt(struct session *s, struct domain *unused,
		      const struct proto_msg *m, struct error *e)
{
	const struct proto_readopt *r = &m->readopt;
	struct server *srv = s->srv;
	char (*names)[BACKEND_NAME_MAX] = NULL;
	struct backend_given_device *g = NULL;
	uint64_t (*ranges)[2] = NULL;
	uint32_t *dev_ids = NULL;
	struct domain_given given;
	struct backend *kctx;
	struct domain *d;
	struct backend_caps caps;
	int rc, fd0;

	rc = need_feature(s, e);
	if (rc < 0)
		goto out_close;
	list_for_each_entry(d, &srv->domains, link) {
		if (r->lease && d->lease.id == r->lease) {
			rc = error_set(e, -EBUSY, "lease 0x%" PRIx64 " is "
				       "domain %u's: it was never lost",
				       r->lease, d->id);
			goto out_close;
		}
	}
	names = calloc(r->ndevices, sizeof(*names));
	dev_ids = calloc(r->ndevices, sizeof(*dev_ids));
	g = calloc(r->ndevices, sizeof(*g));
	ranges = calloc(r->nranges + 1, sizeof(*ranges));
	if (!names || !dev_ids || !g || !ranges) {
		rc = error_set(e, -ENOMEM, "out of memory");
		goto out_close;
	}
	rc = readopt_devices(s, r, names, dev_ids, g, e);
	if (rc < 0)
		goto out_close;
	for (uint32_t i = 0; i < r->nranges; i++) {
		struct proto_range rg;

		proto_readopt_range_at(r, i, &rg);
		ranges[i][0] = rg.iova;
		ranges[i][1] = rg.length;
	}
	backend_caps(srv->backend, &caps);
	if (!caps.iommufd) {
		rc = error_set(e, -EOPNOTSUPP, "READOPT: the %s backend has no "
			       "descriptors to take back",
			       backend_name(srv->backend));
		goto out_close;
	}
	/* from here on the descriptors are the backend's */
	fd0 = s->in_fds[0];
	s->in_nfds = 0;
	rc = backend_open_given(&srv->kcfg, fd0, g, r->ndevices, r->hwpt_id,
				&kctx);
	if (rc < 0) {
		const char *why = backend_why();

		rc = error_set(e, rc, "READOPT: %s", why ? why : strerror(-rc));
		goto out;
	}
	given = (struct domain_given){
		.flags = r->flags,
		.ioas_id = r->ioas_id,
		.hwpt_id = r->hwpt_id,
		.names = (const char (*)[BACKEND_NAME_MAX])names,
		.dev_ids = dev_ids,
		.ndevices = r->ndevices,
		.ranges = (const uint64_t (*)[2])ranges,
		.nranges = r->nranges,
	};
	rc = domain_readopt(srv, s->uid, kctx, &given, &d, e);
	if (rc < 0)
		goto out;
	lease_take(s, d, r->lease);
	log_notice("domain %u readopted by pid %d uid %u: IOAS %u, HWPT %u, "
		   "%u devices, %u ranges, tracking %s (lease 0x%" PRIx64 ")",
		   d->id, (int)s->pid, (unsigned int)s->uid, d->ioas_id,
		   d->hwpt_id, d->ndevices, r->nranges,
		   d->enabled ? "on" : "off", d->lease.id);
	session_reply(s, &(struct proto_msg){
		.type = PROTO_READOPT_REPLY,
		.id = m->id,
		.readopt_reply = { .domain_id = d->id,
				   .status = domain_status(d),
				   .lease = d->lease.id },
	});
	goto out;
out_close:
	in_fds_close(s);
out:
	free(names);
	free(dev_ids);
	free(g);
	free(ranges);
	return rc;
}
