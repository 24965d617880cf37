// SPDX-License-Identifier: MIT
/*
 * Requests: one table row per message type, like the kernel's ioctl table.
 * Owns: which checks a request passes before it reaches a handler.  The
 * row says which apply, so that they live here, once:
 *   REQ_HELLO   only after HELLO (EPROTO before)
 *   REQ_DOMAIN  the domain_id names a domain the client may see (ENOENT
 *               otherwise: a domain of another uid is never revealed)
 *   REQ_SETS    it uses the domain's subscriber sets (takes, acknowledges,
 *               adds one): while a change of the domain runs off the loop
 *               (domain_change.c) the sets are frozen, so it waits for the
 *               domain to be idle
 * A handler returns 0 when it answered (or will answer, from a domain
 * waiter or a stream), or a negative errno that is sent as PROTO_ERROR
 * with the reason the failing operation gave in @e (error.h).  A waiter's
 * operation gives its reason in the waiter's err.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/access/acl.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/server/adopt.h"
#include "daemon/util/error.h"
#include "daemon/util/log.h"
#include "daemon/server/metrics.h"
#include "daemon/server/requests.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/subscriber/subscription.h"
#include "daemon/server/stream.h"
#include "protocol/proto.h"
#include "protocol/wire.h"

#define REQ_HELLO (1u << 0)
#define REQ_DOMAIN (1u << 1)
#define REQ_SETS (1u << 2)

typedef int (*request_fn)(struct session *s, struct domain *d,
			  const struct proto_msg *m, struct error *e);

/* A request is either handled at once by @fn, or, with @idle, is one
 * operation on its domain that runs once the domain is idle. */
struct request_op {
	request_fn fn;
	unsigned int flags;
	void (*idle)(struct domain_waiter *w, int result);
};

/* Every request that names a domain has its id first in its body. */
_Static_assert(offsetof(struct proto_device_op, domain_id) == 0, "");
/* A device name of a request is one the backend takes. */
_Static_assert(PROTO_NAME_MAX == BACKEND_NAME_MAX, "");
_Static_assert(offsetof(struct proto_domain_op, domain_id) == 0, "");
_Static_assert(offsetof(struct proto_map, domain_id) == 0, "");
_Static_assert(offsetof(struct proto_subscribe, domain_id) == 0, "");
_Static_assert(offsetof(struct proto_get_ranges, domain_id) == 0, "");
_Static_assert(offsetof(struct proto_ack, domain_id) == 0, "");

/* A waiter's operation failed: answer with the reason it recorded. */
static void waiter_fail(struct session *s, int err)
{
	session_reply_error(s, s->req.id, err, "%s",
			    error_text(&s->waiter.err, err));
}

/* The domain went away while the request waited. */
static void waiter_gone(struct session *s, uint32_t id)
{
	session_reply_error(s, s->req.id, -ENOENT, "domain %u was destroyed",
			    id);
}

/* A waiter's operation is done: OK, or the reason it failed. */
static void waiter_reply(struct session *s, int r)
{
	if (r < 0)
		return waiter_fail(s, r);
	session_reply_ok(s, s->req.id);
}

static struct session *waiter_session(struct domain_waiter *w)
{
	struct session *s = container_of(w, struct session, waiter);

	error_clear(&w->err);
	return s;
}

/* ------------------------------------------------------------ session */

uint64_t requests_new_token(void)
{
	uint64_t t = 0;

	while (!t)
		if (getrandom(&t, sizeof(t), 0) != sizeof(t))
			t = 0;
	return t;
}

static int req_hello(struct session *s, struct domain *d,
		     const struct proto_msg *m, struct error *e)
{
	uint32_t flags = 0;

	if (m->hello.major != PROTO_VERSION_MAJOR)
		return error_set(e, -EPROTONOSUPPORT, "protocol version "
				  "%u.%u is not supported; dirtyd speaks "
				  "%u.%u", m->hello.major, m->hello.minor,
				  PROTO_VERSION_MAJOR, PROTO_VERSION_MINOR);
	s->features = m->hello.features & PROTO_FEATURES_ALL;
	/* descriptors exist only on the real backend */
	if (backend_iommufd(s->srv->backend) < 0)
		s->features &= ~(uint64_t)PROTO_FEAT_FD_PASSING;
	if (m->hello.resume_token) {
		if ((s->features & PROTO_FEAT_RESUME) &&
		    session_resume(s, m->hello.resume_token))
			flags |= PROTO_SESSION_RESUMED;
		else
			flags |= PROTO_SESSION_STATE_LOST;
	}
	if ((s->features & PROTO_FEAT_RESUME) && !s->token)
		s->token = requests_new_token();
	/* a lease held under the token is this session's again */
	if (s->features & PROTO_FEAT_RESUME)
		adopt_session_hello(s, m->hello.resume_token);
	session_hello_done(s);
	log_debug("client pid %d uid %u: HELLO %u.%u, features 0x%" PRIx64
		  "%s", (int)s->pid, (unsigned)s->uid, m->hello.major,
		  m->hello.minor, s->features,
		  flags & PROTO_SESSION_RESUMED ? ", resumed" :
		  flags & PROTO_SESSION_STATE_LOST ? ", state lost" : "");
	session_reply(s, &(struct proto_msg){
		.type = PROTO_HELLO_REPLY,
		.id = m->id,
		.hello_reply = {
			.major = PROTO_VERSION_MAJOR,
			.minor = PROTO_VERSION_MINOR,
			.max_msg = PROTO_MAX_MSG,
			.features = s->features,
			.session_token = s->token,
			.uid = (uint32_t)s->uid,
			.gid = (uint32_t)s->gid,
			.session_flags = flags,
		},
	});
	return 0;
}

static int req_list_devices(struct session *s, struct domain *d,
			    const struct proto_msg *m, struct error *e)
{
	stream_list_devices(s, m->id);
	return 0;
}

static int req_list_domains(struct session *s, struct domain *d,
			    const struct proto_msg *m, struct error *e)
{
	stream_list_domains(s, m->id);
	return 0;
}

static int req_stats(struct session *s, struct domain *d,
		     const struct proto_msg *m, struct error *e)
{
	uint32_t id = m->domain_op.domain_id;

	if (id) {
		d = domain_find(s->srv, id);
		if (!d || !access_may_see(s, d))
			return error_set(e, -ENOENT, "no domain %u", id);
	}
	stream_stats(s, m->id, id);
	return 0;
}

static int req_metrics(struct session *s, struct domain *d,
		       const struct proto_msg *m, struct error *e)
{
	uint32_t id = m->domain_op.domain_id;
	int r;

	if (id) {
		d = domain_find(s->srv, id);
		if (!d || !access_may_see(s, d))
			return error_set(e, -ENOENT, "no domain %u", id);
	}
	r = stream_metrics(s, m->id, id);
	if (r < 0)
		return error_set(e, r, "out of memory");
	return 0;
}

/* ------------------------------------------------------------ domains */

/*
 * A client claims the device it calls @given (CREATE_DOMAIN, ATTACH_DEVICE,
 * READOPT):
 * the one place that decides whether it may (acl.h) and whether the device
 * is free, before anything changes.  The name dirtyd knows the device by
 * goes to @name.
 */
int requests_claim_check(struct session *s, const char *given,
			 char name[BACKEND_NAME_MAX], struct error *e)
{
	const struct config_device_acl *a;
	struct domain *held;
	int r;

	r = device_canonical(s->srv, given, name, e);
	if (r < 0)
		return r;
	if (!acl_may_claim(s->srv->cfg, s->uid, s->gid, s->groups,
			   s->ngroups, name, &a)) {
		if (!a) {
			log_notice("client pid %d uid %u may not claim device "
				   "%s: no [devices] entry names it",
				   (int)s->pid, (unsigned)s->uid, name);
			return error_set(e, -EACCES, "uid %u may not "
					  "claim device %s: no [devices] entry "
					  "of the configuration names it (only "
					  "root may)", (unsigned)s->uid, name);
		}
		log_notice("client pid %d uid %u may not claim device %s: "
			   "[devices] %s (%s)", (int)s->pid, (unsigned)s->uid,
			   name, a->key, a->origin);
		return error_set(e, -EACCES, "uid %u may not claim "
				  "device %s: [devices] %s of the "
				  "configuration lists neither it nor its "
				  "groups", (unsigned)s->uid, name, a->key);
	}
	held = domain_of_device(s->srv, name, NULL);
	if (held)
		return error_set(e, -EBUSY, access_may_see(s, held) ?
				  "device %s is already in domain %u" :
				  "device %s is in use", name, held->id);
	return 0;
}

static int req_create_domain(struct session *s, struct domain *d,
			     const struct proto_msg *m, struct error *e)
{
	const struct proto_create_domain *c = &m->create_domain;
	struct domain_device *dev = NULL;
	char name[BACKEND_NAME_MAX];
	int r;

	r = requests_claim_check(s, c->device, name, e);
	if (r < 0)
		return r;
	r = domain_create(s->srv, s->uid, name, c->flags, &d, e);
	if (r < 0)
		return r;
	dev = domain_first_device(d);
	log_info("domain %u created by uid %u: device %s, %s", d->id,
		 (unsigned)s->uid, name,
		 d->tracking_capable ? "dirty tracking" : "no tracking");
	session_reply(s, &(struct proto_msg){
		.type = PROTO_CREATE_DOMAIN_REPLY,
		.id = m->id,
		.create_domain_reply = {
			.domain_id = d->id,
			.dev_id = dev->dev_id,
			.status = domain_status(d),
		},
	});
	return 0;
}

static void attach_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);
	uint32_t dev_id = 0;
	int r;

	if (result < 0)
		return waiter_gone(s, s->req.device_op.domain_id);
	r = domain_attach(w->dom, s->req.device_op.device, &dev_id,
			  &w->err);
	if (r < 0)
		return waiter_fail(s, r);
	log_info("device %s attached to domain %u", s->req.device_op.device,
		 w->dom->id);
	session_reply(s, &(struct proto_msg){
		.type = PROTO_ATTACH_DEVICE_REPLY,
		.id = s->req.id,
		.attach_device_reply = { .dev_id = dev_id },
	});
}

static int req_attach_device(struct session *s, struct domain *d,
			     const struct proto_msg *m, struct error *e)
{
	/* attach_idle() takes the name dirtyd knows the device by */
	int r = requests_claim_check(s, m->device_op.device, s->req.device_op.device,
			    e);

	if (r < 0)
		return r;
	domain_when_idle(d, &s->waiter, attach_idle);
	return 0;
}

static void detach_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);
	char name[BACKEND_NAME_MAX];
	int r;

	if (result < 0)
		return waiter_gone(s, s->req.device_op.domain_id);
	r = adopt_refuse(w->dom, "DETACH_DEVICE", &w->err);
	if (r >= 0)
		r = device_canonical(s->srv, s->req.device_op.device, name,
				     &w->err);
	if (r >= 0)
		r = domain_detach(w->dom, name, &w->err);
	if (r >= 0)
		log_info("device %s detached from domain %u", name,
			 w->dom->id);
	waiter_reply(s, r);
}

static void destroy_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);
	uint32_t id = s->req.domain_op.domain_id;

	if (result < 0)
		return waiter_gone(s, id);
	if (adopt_refuse(w->dom, "DESTROY_DOMAIN", &w->err) < 0)
		return waiter_fail(s, -EBUSY);
	domain_destroy(w->dom);
	log_info("domain %u destroyed by uid %u", id, (unsigned)s->uid);
	session_reply_ok(s, s->req.id);
}

/* ------------------------------------------------------------ mappings */

/* A MAP or UNMAP done off the loop (domain_change.c): its answer, with
 * the reason it gave in the waiter's err. */
static void change_done(struct domain_waiter *w, int result)
{
	struct session *s = container_of(w, struct session, waiter);

	waiter_reply(s, result);
}

/* The waiting MAP or UNMAP request: @op (domain_map(), domain_unmap())
 * checks it now and runs the rest off the loop; change_done() answers. */
static void change_start(struct domain_waiter *w,
			 int (*op)(struct domain *d, uint64_t iova,
				   uint64_t length, uint32_t proto_flags,
				   struct error *e, struct domain_waiter *w,
				   void (*fn)(struct domain_waiter *w,
					      int result)))
{
	struct session *s = container_of(w, struct session, waiter);
	const struct proto_map *mp = &s->req.map;
	int r;

	r = op(w->dom, mp->iova, mp->length, mp->flags, &w->err, w,
	       change_done);
	if (r < 0)
		waiter_fail(s, r);
}

static void map_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);

	if (result < 0)
		return waiter_gone(s, s->req.map.domain_id);
	change_start(w, domain_map);
}

/* With tracking on, @fn runs after a last round collects what was written
 * until now; else once the domain is idle. */
static void when_harvested(struct session *s, struct domain *d,
			   void (*fn)(struct domain_waiter *w, int result))
{
	if (d->enabled)
		domain_after_round(d, &s->waiter, false, fn);
	else
		domain_when_idle(d, &s->waiter, fn);
}

static void unmap_ready(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);

	/* a failed round marked everything pending: unmapping is safe */
	if (result == -ENOENT)
		return waiter_gone(s, s->req.map.domain_id);
	change_start(w, domain_unmap);
}

static int req_unmap(struct session *s, struct domain *d,
		     const struct proto_msg *m, struct error *e)
{
	int r = domain_unmap_check(d, m->map.iova, m->map.length,
				   m->map.flags, e);

	if (r < 0)
		return r;
	/* with tracking on, writes before the unmap are harvested first */
	when_harvested(s, d, unmap_ready);
	return 0;
}

static int req_dma_write(struct session *s, struct domain *d,
			 const struct proto_msg *m, struct error *e)
{
	struct domain_device *dev = domain_first_device(d);
	int r;

	r = domain_check_range(d, m->map.iova, m->map.length, e);
	if (r < 0)
		return r;
	if (!dev)
		return error_set(e, -ENODEV, "domain %u has no device",
				  d->id);
	r = backend_dma_write(d->kctx, dev->dev_id, m->map.iova,
			      m->map.length);
	if (r == -ENOENT)
		return error_set(e, r, "DMA write to [0x%" PRIx64 ", 0x%"
				  PRIx64 ") by %s faulted: not mapped",
				  m->map.iova, m->map.iova + m->map.length,
				  dev->name);
	if (r == -EACCES)
		return error_set(e, r, "DMA write to [0x%" PRIx64 ", 0x%"
				  PRIx64 ") by %s faulted: mapped without "
				  "PROTO_MAP_WRITEABLE", m->map.iova,
				  m->map.iova + m->map.length, dev->name);
	if (r == -EOPNOTSUPP)
		return error_set(e, r, "device %s cannot be made to "
				  "write (only simulated and mock devices "
				  "can)", dev->name);
	if (r < 0)
		return error_set(e, r, "DMA write by %s failed: %s",
				  dev->name, strerror(-r));
	session_reply_ok(s, m->id);
	return 0;
}

/* ------------------------------------------------------------ tracking */

static void tracking_reply(struct session *s, struct domain *d, bool on)
{
	int r = domain_set_tracking(d, on, &s->waiter.err);

	if (r >= 0)
		log_info("dirty tracking %s for domain %u", on ? "on" : "off",
			 d->id);
	waiter_reply(s, r);
}

static void track_start_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);

	if (result < 0)
		return waiter_gone(s, s->req.domain_op.domain_id);
	tracking_reply(s, w->dom, true);
}

static int need_tracking(struct domain *d, struct error *e)
{
	if (!d->tracking_capable)
		return error_set(e, -EOPNOTSUPP, "domain %u was created "
				  "without dirty tracking; it cannot track",
				  d->id);
	return 0;
}

static int req_track_start(struct session *s, struct domain *d,
			   const struct proto_msg *m, struct error *e)
{
	int r = need_tracking(d, e);

	if (!r)
		domain_when_idle(d, &s->waiter, track_start_idle);
	return r;
}

static void track_stop_ready(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);

	if (result == -ENOENT)
		return waiter_gone(s, s->req.domain_op.domain_id);
	tracking_reply(s, w->dom, false);
}

static int req_track_stop(struct session *s, struct domain *d,
			  const struct proto_msg *m, struct error *e)
{
	int r = need_tracking(d, e);

	/* a last round collects what was written until now */
	if (!r)
		when_harvested(s, d, track_stop_ready);
	return r;
}

/* ------------------------------------------------------------ subscribers */

/* Create the session's subscription to @d and answer SUBSCRIBE_REPLY. */
static int subscribe_now(struct session *s, struct domain *d,
			 struct error *e)
{
	const struct proto_subscribe *sb = &s->req.subscribe;
	struct subscription *sub;
	int r;

	r = subscription_create(d, s, sb->interval_ms,
				sb->flags & PROTO_SUBSCRIBE_CLEAN, &sub, e);
	if (r < 0)
		return r;
	session_reply(s, &(struct proto_msg){
		.type = PROTO_SUBSCRIBE_REPLY,
		.id = s->req.id,
		.subscribe_reply = {
			.domain_id = d->id,
			.page_size = d->page_size,
			.max_leaf = d->max_leaf,
			.generation = d->generation,
		},
	});
	return 0;
}

/*
 * A CLEAN subscription joins after a round that began after SUBSCRIBE
 * arrived: that round folds what was written before into the others, so
 * the new subscriber starts with nothing, and every later write is its.
 * If that round failed or tracking went off meanwhile, the subscription
 * is made all the same (it can only over-report then).
 */
static void subscribe_ready(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);
	int r;

	if (result == -ENOENT)
		return waiter_gone(s, s->req.subscribe.domain_id);
	r = subscribe_now(s, w->dom, &w->err);
	if (r < 0)
		waiter_fail(s, r);
}

static int req_subscribe(struct session *s, struct domain *d,
			 const struct proto_msg *m, struct error *e)
{
	unsigned int max = s->srv->cfg->max_subscriptions;

	if (session_sub_of(s, d))
		return error_set(e, -EEXIST, "this session is already "
				  "subscribed to domain %u", d->id);
	if (s->nsubs >= max)
		return error_set(e, -EDQUOT, "too many subscriptions on "
				  "this session (max_subscriptions %u)", max);
	/* a readopted domain's backlog is the new subscriber's too */
	if ((m->subscribe.flags & PROTO_SUBSCRIBE_CLEAN) && d->enabled &&
	    !d->backlog) {
		domain_after_round(d, &s->waiter, false, subscribe_ready);
		return 0;
	}
	return subscribe_now(s, d, e);
}

static int no_subscription(struct domain *d, struct error *e)
{
	return error_set(e, -ENOENT, "this session has no subscription "
			  "to domain %u", d->id);
}

static int req_unsubscribe(struct session *s, struct domain *d,
			   const struct proto_msg *m, struct error *e)
{
	struct subscription *sub = session_sub_of(s, d);

	if (!sub)
		return no_subscription(d, e);
	subscription_drop(sub);
	domain_subscriptions_changed(d);
	session_reply_ok(s, m->id);
	return 0;
}

static void sync_done(struct domain_waiter *w, int result)
{
	struct session_async *a = container_of(w, struct session_async,
					       waiter);
	uint32_t id = a->req.domain_op.domain_id;
	struct subscription *sub;

	if (result == -ENOENT)
		return session_async_error(a, result, "domain %u was destroyed",
					   id);
	if (result == -EINVAL)
		return session_async_error(a, result, "tracking was turned off "
					   "on domain %u before the round", id);
	if (result < 0)
		return session_async_error(a, result, "harvesting domain %u "
					   "failed: %s; every page is pending",
					   id, strerror(-result));
	sub = session_sub_of(a->s, w->dom);
	session_async_reply(a, &(struct proto_msg){
		.type = PROTO_SYNC_REPLY,
		.id = a->req.id,
		.sync_reply = {
			.generation = w->dom->generation,
			.pending_pages = sub ?
				subscriber_set_pending_pages(&sub->set) : 0,
		},
	});
}

/* The client asked about @d (GET_RANGES, SYNC): the reply covers the
 * rounds so far; the next round with pages sends the next EV_ROUND. */
static void events_rearm(struct session *s, struct domain *d)
{
	struct subscription *sub = session_sub_of(s, d);

	if (sub)
		subscription_events_rearm(sub);
}

static int req_sync(struct session *s, struct domain *d,
		    const struct proto_msg *m, struct error *e)
{
	struct session_async *a;

	events_rearm(s, d);
	if (!d->enabled)
		return error_set(e, -EINVAL, "tracking is off on domain "
				  "%u%s", d->id, d->tracking_capable ?
				  " (TRACK_START first)" :
				  " (created without tracking)");
	/* the session serves other requests while this one waits */
	a = session_async_new(s);
	if (!a)
		return error_set(e, -ENOMEM, "out of memory");
	domain_after_round(d, &a->waiter, true, sync_done);
	return 0;
}

static int req_get_ranges(struct session *s, struct domain *d,
			  const struct proto_msg *m, struct error *e)
{
	struct subscription *sub = session_sub_of(s, d);
	struct subscriber_gen *gen;
	int r;

	if (!sub)
		return no_subscription(d, e);
	events_rearm(s, d);
	r = subscription_take(sub, m->get_ranges.flags & PROTO_RANGES_RESEND,
			      &gen, e);
	if (r < 0)
		return r;
	/* delivered (pages_sent) or given back when the stream ends */
	stream_ranges(s, m->id, sub, gen);
	return 0;
}

static int req_ack(struct session *s, struct domain *d,
		   const struct proto_msg *m, struct error *e)
{
	struct subscription *sub = session_sub_of(s, d);
	int r;

	if (!sub)
		return no_subscription(d, e);
	r = subscription_ack(sub, m->ack.generation);
	if (r < 0)
		return error_set(e, r, "generation %" PRIu64 " of domain "
				  "%u is not in flight", m->ack.generation,
				  d->id);
	domain_subscriptions_changed(d);
	session_reply_ok(s, m->id);
	return 0;
}

/* ------------------------------------------------------------ fds */

static int req_get_fds(struct session *s, struct domain *d,
		       const struct proto_msg *m, struct error *e)
{
	unsigned int index[FDPASS_MAX_FDS], i = 0;
	struct proto_list_builder lb;
	struct domain_device *dev;
	int fds[FDPASS_MAX_FDS];
	int r, n;

	if (!(s->features & PROTO_FEAT_FD_PASSING))
		return error_set(e, -EOPNOTSUPP, "descriptor passing "
				  "was not negotiated in HELLO");
	if (d->ndevices + 1 > FDPASS_MAX_FDS)
		return error_set(e, -E2BIG, "domain %u has more devices "
				  "than one message can carry descriptors "
				  "for", d->id);
	r = proto_list_begin(&lb, s->out, PROTO_MAX_MSG, PROTO_GET_FDS_REPLY,
			     m->id);
	if (r < 0)
		return error_set(e, r, "encoding failed");
	proto_list_set_fds_ids(&lb, d->ioas_id, d->hwpt_id);
	n = fdpass_domain_fds(d, fds, index, e);
	if (n <= 0)
		return n < 0 ? n : error_set(e, -EOPNOTSUPP, "the %s backend "
					     "has no descriptors to hand out",
					     backend_name(d->kctx));
	/* a mock IOMMU device has no descriptor: it is left out */
	list_for_each_entry(dev, &d->devices, link) {
		struct proto_fd_device fdd = { .dev_id = dev->dev_id,
					       .fd_index = index[i++] };

		snprintf(fdd.name, sizeof(fdd.name), "%s", dev->name);
		if (fdd.fd_index && (r = proto_list_add_fd_device(&lb, &fdd)) < 0)
			break;
	}
	if (r >= 0)
		r = proto_list_end(&lb, false);
	if (r < 0) {
		while (n)
			close(fds[--n]);
		return error_set(e, r, "encoding failed");
	}
	log_info("handed the iommufd and %d device descriptors of domain %u "
		 "to pid %d", n - 1, d->id, (int)s->pid);
	session_reply_packet(s, (size_t)r, fds, (unsigned int)n);
	return 0;
}

/* LIST_SOURCES: one packet (a domain has at most DOMAIN_MAX_SOURCES). */
static int req_list_sources(struct session *s, struct domain *d,
			    const struct proto_msg *m, struct error *e)
{
	struct proto_source src[DOMAIN_MAX_SOURCES];
	struct proto_list_builder lb;
	size_t n = domain_sources_list(d, src, DOMAIN_MAX_SOURCES);
	int r;

	if (!(s->features & PROTO_FEAT_SOURCES))
		return error_set(e, -EOPNOTSUPP, "LIST_SOURCES: the SOURCES "
				  "feature was not negotiated in HELLO");
	r = proto_list_begin(&lb, s->out, PROTO_MAX_MSG,
			     PROTO_LIST_SOURCES_REPLY, m->id);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = proto_list_add_source(&lb, &src[i]);
	if (r >= 0)
		r = proto_list_end(&lb, false);
	if (r < 0)
		return error_set(e, r, "encoding failed");
	/* (no descriptors: an array all the same, memcpy() takes none) */
	session_reply_packet(s, (size_t)r, (const int[1]){ -1 }, 0);
	return 0;
}

/* ------------------------------------------------------------ table */

static const struct request_op request_ops[] = {
	[PROTO_HELLO] = { .fn = req_hello },
	[PROTO_LIST_DEVICES] = { .fn = req_list_devices, .flags = REQ_HELLO },
	[PROTO_LIST_DOMAINS] = { .fn = req_list_domains, .flags = REQ_HELLO },
	[PROTO_CREATE_DOMAIN] = { .fn = req_create_domain,
				  .flags = REQ_HELLO },
	[PROTO_ATTACH_DEVICE] = { .fn = req_attach_device,
				  .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_DETACH_DEVICE] = { .idle = detach_idle,
				  .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_DESTROY_DOMAIN] = { .idle = destroy_idle,
				   .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_MAP] = { .idle = map_idle, .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_UNMAP] = { .fn = req_unmap, .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_TRACK_START] = { .fn = req_track_start,
				.flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_TRACK_STOP] = { .fn = req_track_stop,
			       .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_SUBSCRIBE] = { .fn = req_subscribe,
			      .flags = REQ_HELLO | REQ_DOMAIN | REQ_SETS },
	[PROTO_UNSUBSCRIBE] = { .fn = req_unsubscribe,
				.flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_SYNC] = { .fn = req_sync, .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_GET_RANGES] = { .fn = req_get_ranges,
			       .flags = REQ_HELLO | REQ_DOMAIN | REQ_SETS },
	[PROTO_ACK] = { .fn = req_ack,
			.flags = REQ_HELLO | REQ_DOMAIN | REQ_SETS },
	[PROTO_STATS] = { .fn = req_stats, .flags = REQ_HELLO },
	[PROTO_GET_FDS] = { .fn = req_get_fds,
			    .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_DMA_WRITE] = { .fn = req_dma_write,
			      .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_METRICS] = { .fn = req_metrics, .flags = REQ_HELLO },
	[PROTO_ADOPT] = { .fn = adopt_req_adopt,
			  .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_UNADOPT] = { .fn = adopt_req_unadopt,
			    .flags = REQ_HELLO | REQ_DOMAIN },
	[PROTO_READOPT] = { .fn = adopt_req_readopt, .flags = REQ_HELLO },
	/* the sources a change may re-start: after it */
	[PROTO_LIST_SOURCES] = { .fn = req_list_sources,
				 .flags = REQ_HELLO | REQ_DOMAIN | REQ_SETS },
};

#define N_OPS (sizeof(request_ops) / sizeof(request_ops[0]))

/* A REQ_SETS request that waited for its domain's change: now. */
static void sets_idle(struct domain_waiter *w, int result)
{
	struct session *s = waiter_session(w);
	int r;

	if (result < 0)
		return waiter_gone(s, s->req.domain_op.domain_id);
	r = request_ops[s->req.type].fn(s, w->dom, &s->req, &w->err);
	if (r < 0)
		waiter_fail(s, r);
}

/* Say what was wrong with a packet the codec refused. */
static void refuse_packet(struct session *s, const uint8_t *buf, size_t len,
			  uint64_t id, int err)
{
	uint16_t type;
	uint32_t wire_len;
	const char *name;

	if (len < PROTO_HEADER_SIZE)
		return session_reply_error(s, id, err, "packet of %zu bytes is "
					   "shorter than the %u-byte header",
					   len, PROTO_HEADER_SIZE);
	type = wire_get_le16(buf);
	wire_len = wire_get_le32(buf + 4);
	name = proto_type_name(type);
	if (err == -EMSGSIZE && wire_len > PROTO_MAX_MSG)
		session_reply_error(s, id, err, "length field %u exceeds the "
				    "maximum of %u bytes", wire_len,
				    PROTO_MAX_MSG);
	else if (err == -EMSGSIZE)
		session_reply_error(s, id, err, "length field %u does not "
				    "match the packet's %zu bytes", wire_len,
				    len);
	else if (err == -EPROTO || !name)
		session_reply_error(s, id, err, "unknown message type 0x%04x",
				    type);
	else
		session_reply_error(s, id, err, "malformed %s message (%zu "
				    "bytes): wrong size, non-zero reserved "
				    "field, unknown flag, bad name or request "
				    "id 0", name, len);
}

static void dispatch(struct session *s, const uint8_t *buf, size_t len)
{
	struct server *srv = s->srv;
	const struct request_op *op;
	struct domain *d = NULL;
	struct error e = ERROR_INIT;
	struct proto_msg m;
	uint16_t type = 0;
	uint64_t id = len >= PROTO_HEADER_SIZE ? wire_get_le64(buf + 8) : 0;
	int r;

	/* PROTOCOL.md 3: the header, the type, the session's state, the
	 * form, the meaning; the first check that fails answers */
	r = proto_peek(buf, len, &type, &id);
	if (r < 0)
		return refuse_packet(s, buf, len, id, r);
	if (!proto_type_is_request(type) || type >= N_OPS ||
	    (!request_ops[type].fn && !request_ops[type].idle))
		return session_reply_error(s, id, -EPROTO, "%s (0x%04x) is "
					   "not a request",
					   proto_type_name(type) ?: "?", type);
	op = &request_ops[type];
	if ((op->flags & REQ_HELLO) && !s->hello)
		return session_reply_error(s, id, -EPROTO, "send HELLO "
					   "first");
	if (type == PROTO_HELLO && s->hello)
		return session_reply_error(s, id, -EPROTO, "HELLO was already "
					   "sent on this session");
	r = proto_decode(buf, len, &m);
	if (r < 0)
		return refuse_packet(s, buf, len, id, r);
	if (op->flags & REQ_DOMAIN) {
		uint32_t did = m.domain_op.domain_id;

		d = domain_find(srv, did);
		if (!d || !access_may_see(s, d))
			return session_reply_error(s, m.id, -ENOENT,
						   "no domain %u", did);
	}
	s->req = m;
	s->busy = true;
	if (op->idle)
		return domain_when_idle(d, &s->waiter, op->idle);
	if ((op->flags & REQ_SETS) && d->change)
		return domain_when_idle(d, &s->waiter, sets_idle);
	r = op->fn(s, d, &m, &e);
	if (r < 0)
		session_reply_error(s, m.id, r, "%s", error_text(&e, r));
}

void requests_dispatch(struct session *s, const uint8_t *buf, size_t len,
		       int *fds, unsigned int nfds)
{
	s->in_fds = fds;
	s->in_nfds = nfds;
	dispatch(s, buf, len);
	/* what READOPT did not take (PROTOCOL.md 1: closed) */
	for (unsigned int i = 0; i < s->in_nfds; i++)
		close(s->in_fds[i]);
	s->in_fds = NULL;
	s->in_nfds = 0;
}
