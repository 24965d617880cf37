// SPDX-License-Identifier: MIT
/*
 * libdirty's adoption calls (dirty.h, "Adoption"): ADOPT and its reply's
 * descriptors, UNADOPT, READOPT with the VMM's descriptors, and the
 * kernel map and the declaration in one call (dirty_ioas_map()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dirty.h"
#include "dirty_private.h"
#include "kernel/uapi/iommufd.h"
#include "protocol/proto.h"

#define SAME(a, b) ((long long)(a) == (long long)(b))
_Static_assert(SAME(DIRTY_FEAT_ADOPT, PROTO_FEAT_ADOPT) &&
	       SAME(DIRTY_ADOPT_HUGE_PAGES_OFF, PROTO_ADOPT_HUGE_PAGES_OFF) &&
	       SAME(DIRTY_ADOPT_VERIFIES_EXTERNAL,
		    PROTO_ADOPT_VERIFIES_EXTERNAL) &&
	       SAME(DIRTY_ADOPT_NO_IOMMUFD, PROTO_ADOPT_NO_IOMMUFD) &&
	       SAME(DIRTY_ADOPT_DEV_BOUND, PROTO_ADOPT_DEV_BOUND) &&
	       SAME(DIRTY_ADOPT_DEV_ATTACHED, PROTO_ADOPT_DEV_ATTACHED),
	       "adoption flags");
#undef SAME

static void fds_close(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A request of one domain_op body (ADOPT, UNADOPT), encoded. */
static int domain_op_packet(uint16_t type, uint32_t domain_id, uint8_t *buf,
			    size_t cap)
{
	struct proto_msg req = {
		.type = type,
		.id = 1,	/* libdirty_call_packet() sets it */
		.domain_op.domain_id = domain_id,
	};

	return proto_encode(&req, buf, cap);
}

void dirty_adoption_free(struct dirty_adoption *a)
{
	if (!a)
		return;
	if (a->iommufd >= 0)
		close(a->iommufd);
	for (size_t i = 0; a->devices && i < a->n_devices; i++) {
		if (a->devices[i] && a->devices[i]->fd >= 0)
			close(a->devices[i]->fd);
		free(a->devices[i]);
	}
	free(a->devices);
	free(a);
}

/* ADOPT_REPLY @m with its descriptors @p into a new adoption. */
static int adoption_from(uint32_t domain_id, const struct proto_msg *m,
			 struct dirty_packet *p, struct dirty_adoption **out)
{
	bool none = m->list.adopt_flags & PROTO_ADOPT_NO_IOMMUFD;
	struct dirty_adoption *a;
	unsigned int want = none ? 0 : 1;

	for (uint32_t i = 0; i < m->list.count; i++) {
		struct proto_adopt_device pd;

		proto_adopt_device_at(m, i, &pd);
		want += pd.fd_index != 0;
	}
	if (p->nfds != want || (none && want))
		return -EPROTO;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->size = sizeof(*a);
	a->iommufd = -1;
	a->devices = calloc(m->list.count + 1, sizeof(*a->devices));
	if (!a->devices) {
		free(a);
		return -ENOMEM;
	}
	a->domain_id = domain_id;
	a->ioas_id = m->list.ioas_id;
	a->hwpt_id = m->list.hwpt_id;
	a->status = m->list.status;
	a->flags = m->list.adopt_flags;
	a->page_size = m->list.page_size;
	a->max_leaf = m->list.max_leaf;
	a->lease = m->list.lease;
	for (uint32_t i = 0; i < m->list.count; i++) {
		struct dirty_adopt_device *dev = calloc(1, sizeof(*dev));
		struct proto_adopt_device pd;

		if (!dev) {
			dirty_adoption_free(a);
			return -ENOMEM;
		}
		a->devices[a->n_devices++] = dev;
		proto_adopt_device_at(m, i, &pd);
		dev->size = sizeof(*dev);
		dev->dev_id = pd.dev_id;
		dev->flags = pd.dev_flags;
		dev->fd = -1;
		memcpy(dev->name, pd.name, sizeof(dev->name));
		dev->name[sizeof(dev->name) - 1] = '\0';
		if (pd.fd_index) {
			if (pd.fd_index >= p->nfds || p->fds[pd.fd_index] < 0) {
				dirty_adoption_free(a);
				return -EPROTO;
			}
			dev->fd = p->fds[pd.fd_index];
			p->fds[pd.fd_index] = -1;
		}
	}
	if (!none) {
		a->iommufd = p->fds[0];
		p->fds[0] = -1;
	}
	*out = a;
	return 0;
}

int dirty_adopt(struct dirty *d, uint32_t domain_id,
		struct dirty_adoption **out)
{
	uint8_t req[64];
	struct dirty_packet *p;
	struct proto_msg m;
	int len, r;

	if (!d || !out)
		return -EINVAL;
	if (!(libdirty_features(d) & PROTO_FEAT_ADOPT))
		return -EOPNOTSUPP;
	len = domain_op_packet(PROTO_ADOPT, domain_id, req, sizeof(req));
	if (len < 0)
		return len;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	r = libdirty_call_packet(d, req, (size_t)len, NULL, 0,
				 PROTO_ADOPT_REPLY, &m, p);
	if (r == 0)
		r = adoption_from(domain_id, &m, p, out);
	fds_close(p->fds, p->nfds);
	free(p);
	return r;
}

int dirty_unadopt(struct dirty *d, uint32_t domain_id)
{
	uint8_t req[64];
	struct dirty_packet *p;
	struct proto_msg m;
	int len, r;

	if (!d)
		return -EINVAL;
	if (!(libdirty_features(d) & PROTO_FEAT_ADOPT))
		return -EOPNOTSUPP;
	len = domain_op_packet(PROTO_UNADOPT, domain_id, req, sizeof(req));
	if (len < 0)
		return len;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	r = libdirty_call_packet(d, req, (size_t)len, NULL, 0, PROTO_OK, &m,
				 p);
	fds_close(p->fds, p->nfds);
	free(p);
	return r;
}

/* The caller's READOPT, checked, as the codec's structures. */
static int readopt_wire(const struct dirty_readopt *r,
			struct proto_adopt_device *devs,
			struct proto_range *ranges, int *fds,
			unsigned int *nfds)
{
	*nfds = 0;
	fds[(*nfds)++] = r->iommufd;
	for (size_t i = 0; i < r->n_devices; i++) {
		const struct dirty_readopt_device *g = r->devices[i];

		if (!g || g->size < sizeof(*g) ||
		    !memchr(g->name, '\0', sizeof(g->name)))
			return -EINVAL;
		devs[i] = (struct proto_adopt_device){ .dev_id = g->dev_id };
		memcpy(devs[i].name, g->name, sizeof(devs[i].name));
		if (g->fd >= 0) {
			if (*nfds >= DIRTY_FDS_MAX)
				return -E2BIG;
			devs[i].fd_index = *nfds;
			fds[(*nfds)++] = g->fd;
		}
	}
	for (size_t i = 0; i < r->n_ranges; i++) {
		const struct dirty_iova_range *rg = r->ranges[i];

		if (!rg || rg->size < sizeof(*rg))
			return -EINVAL;
		ranges[i] = (struct proto_range){ .iova = rg->iova,
						  .length = rg->length };
	}
	return 0;
}

int dirty_readopt(struct dirty *d, const struct dirty_readopt *r,
		  uint32_t *domain_id)
{
	struct proto_readopt ro;
	struct proto_adopt_device *devs = NULL;
	struct proto_range *ranges = NULL;
	struct dirty_packet *p = NULL;
	int fds[DIRTY_FDS_MAX];
	unsigned int nfds = 0;
	struct proto_msg m;
	uint8_t *pkt = NULL;
	int len, rc;

	if (!d || !r || !domain_id || r->size < sizeof(*r) ||
	    r->iommufd < 0 || !r->n_devices || !r->devices ||
	    (r->n_ranges && !r->ranges) ||
	    r->n_devices > PROTO_MAX_MSG / PROTO_ADOPT_DEVICE_WIRE ||
	    r->n_ranges > PROTO_MAX_MSG / PROTO_RANGE_WIRE)
		return -EINVAL;
	if (!(libdirty_features(d) & PROTO_FEAT_ADOPT))
		return -EOPNOTSUPP;
	devs = calloc(r->n_devices, sizeof(*devs));
	ranges = calloc(r->n_ranges + 1, sizeof(*ranges));
	pkt = malloc(PROTO_MAX_MSG);
	p = malloc(sizeof(*p));
	rc = -ENOMEM;
	if (!devs || !ranges || !pkt || !p)
		goto out;
	rc = readopt_wire(r, devs, ranges, fds, &nfds);
	if (rc < 0)
		goto out;
	ro = (struct proto_readopt){
		.flags = r->create_flags,
		.ioas_id = r->ioas_id,
		.hwpt_id = r->hwpt_id,
		.ndevices = (uint32_t)r->n_devices,
		.nranges = (uint32_t)r->n_ranges,
		.lease = r->lease,
	};
	len = proto_encode_readopt(pkt, PROTO_MAX_MSG, 1, &ro, devs, ranges);
	rc = len < 0 ? (len == -EMSGSIZE ? -E2BIG : -EINVAL) : 0;
	if (rc < 0)
		goto out;
	rc = libdirty_call_packet(d, pkt, (size_t)len, fds, nfds,
				  PROTO_READOPT_REPLY, &m, p);
	if (rc == 0)
		*domain_id = m.readopt_reply.domain_id;
	fds_close(p->fds, p->nfds);
out:
	free(devs);
	free(ranges);
	free(pkt);
	free(p);
	return rc;
}

int dirty_ioas_map(struct dirty *d, uint32_t domain_id, int iommufd,
		   uint32_t ioas_id, void *va, uint64_t iova, uint64_t length,
		   uint32_t flags)
{
	uint32_t rw = flags & (DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE);
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova,
	};
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int r, saved;

	if (!d || iommufd < 0 || !va || !length ||
	    flags & ~(uint32_t)(DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE))
		return -EINVAL;
	if (!rw)
		rw = DIRTY_MAP_READABLE | DIRTY_MAP_WRITEABLE;
	if (rw & DIRTY_MAP_READABLE)
		map.flags |= IOMMU_IOAS_MAP_READABLE;
	if (rw & DIRTY_MAP_WRITEABLE)
		map.flags |= IOMMU_IOAS_MAP_WRITEABLE;
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map))
		return -errno;
	r = dirty_map(d, domain_id, iova, length, rw | DIRTY_MAP_EXTERNAL);
	if (r < 0) {
		/* an undeclared mapping must not exist */
		saved = r;
		ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap);
		return saved;
	}
	return 0;
}

int dirty_ioas_unmap(struct dirty *d, uint32_t domain_id, int iommufd,
		     uint32_t ioas_id, uint64_t iova, uint64_t length)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int r;

	if (!d || iommufd < 0 || !length)
		return -EINVAL;
	r = dirty_unmap_flags(d, domain_id, iova, length, DIRTY_MAP_EXTERNAL);
	if (r < 0)
		return r;
	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap))
		return -errno;
	return 0;
}
