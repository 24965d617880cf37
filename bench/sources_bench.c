// SPDX-License-Identifier: MIT
/*
 * sources_bench - what a domain's sources cost a harvest round (issue 17):
 * one sim host, one guest mapped once in one IOAS, read three ways in the
 * same run by the harvest engine (default configuration: on the sim, its
 * reader threads):
 *
 *   1 hwpt     one device (IOMMU 0) and its tracking HWPT: what dirtyd did
 *              before sources;
 *   2 hwpts    that device and one behind IOMMU 1 with a HWPT of its own
 *              over the same IOAS: every batch reads both, one after the
 *              other, into its slice (harvest.h);
 *   dma log    one device without dirty bits that logs its DMA (IOMMU 1),
 *              its log started over the guest: every batch a REPORT.
 *
 *   sources_bench [-g GIB] [-d DENSITY] [-r REPS]
 *
 * Before each timed round the same pages (DENSITY of the guest, spread
 * evenly, half by each device with two) are written again by DMA, untimed;
 * each round's bitmap is checked against them.  Prints the median and the
 * fastest of REPS rounds per case, and the load average before and after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baselines.h"
#include "daemon/harvest/harvest.h"
#include "kernel/backend.h"

#define PG 4096ULL
#define GIB (1ULL << 30)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "sources_bench: %s: %s\n", what, strerror(-r));
	exit(1);
}

struct host {
	struct backend *b;
	uint32_t ioas;
	uint32_t dev[3], hwpt[2];	/* nic0, far0, vf0 */
};

static void host_open(struct host *h, uint64_t size)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 3,
			.devices = {
				{ .name = "nic0", .dirty_tracking = true },
				{ .name = "far0", .dirty_tracking = true,
				  .iommu = 1 },
				{ .name = "vf0", .iommu = 1,
				  .dma_logging = true },
			},
		},
	};
	uint64_t iova = 0, ps = PG;
	uint32_t plain;
	struct backend_dma_log_range all = { 0, size };
	int r;

	r = backend_open(&cfg, &h->b);
	r = r ?: backend_ioas_alloc(h->b, &h->ioas);
	for (int i = 0; i < 3 && !r; i++)
		r = backend_device_bind(h->b, cfg.sim.devices[i].name,
					&h->dev[i]);
	for (int i = 0; i < 2 && !r; i++) {
		r = backend_hwpt_alloc(h->b, h->dev[i], h->ioas,
				       IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				       &h->hwpt[i]);
		r = r ?: backend_device_attach(h->b, h->dev[i], h->hwpt[i]);
	}
	/* vf0: a plain HWPT of its own (no dirty bits: not a tracking one) */
	r = r ?: backend_hwpt_alloc(h->b, h->dev[2], h->ioas, 0, &plain);
	r = r ?: backend_device_attach(h->b, h->dev[2], plain);
	if (r)
		die("setting up the host", r);
	r = backend_ioas_map(h->b, h->ioas, IOMMU_IOAS_MAP_FIXED_IOVA |
			     IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
			     (void *)(uintptr_t)(1ULL << 40), size, &iova);
	for (int i = 0; i < 2 && !r; i++)
		r = backend_hwpt_set_dirty_tracking(h->b, h->hwpt[i], true);
	r = r ?: backend_dma_log_start(h->b, h->dev[2], &ps, &all, 1);
	if (r)
		die("mapping and starting", r);
}

/* Write every @stride-th page, alternating between the devices of @devs. */
static void dirty(struct host *h, const uint32_t *devs, int ndev,
		  uint64_t npages, uint64_t stride)
{
	for (uint64_t p = 0, k = 0; p < npages; p += stride, k++) {
		int r = backend_dma_write(h->b, devs[k % ndev], p * PG, 8);

		if (r)
			die("dma write", r);
	}
}

static void check(const struct harvest_domain *d, uint64_t npages,
		  uint64_t stride, const char *name)
{
	for (uint64_t p = 0; p < npages; p++) {
		bool want = p % stride == 0;
		bool got = d->bitmap[p / 64] >> (p % 64) & 1;

		if (want != got) {
			fprintf(stderr, "sources_bench: %s: page %llu is %s\n",
				name, (unsigned long long)p,
				got ? "dirty, not written" : "written, not seen");
			exit(1);
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t gib = 16, reps = 9;
	double density = 0.01, l0, l1;
	struct harvest_engine *e;
	struct host h;
	int opt;

	while ((opt = getopt(argc, argv, "g:d:r:")) != -1) {
		if (opt == 'g')
			gib = strtoull(optarg, NULL, 0);
		else if (opt == 'd')
			density = strtod(optarg, NULL);
		else if (opt == 'r')
			reps = strtoull(optarg, NULL, 0);
		else
			return fprintf(stderr, "usage: sources_bench [-g GIB] "
				       "[-d DENSITY] [-r REPS]\n"), 2;
	}
	if (!gib || reps < 3 || density <= 0 || density > 1)
		return fprintf(stderr, "sources_bench: -g >= 1, -r >= 3, "
			       "0 < -d <= 1\n"), 2;
	l0 = bench_loadavg();
	host_open(&h, gib * GIB);
	if (harvest_engine_new(h.b, NULL, &e))
		die("the engine", -ENOMEM);

	const uint64_t npages = gib * GIB / PG;
	const uint64_t stride = (uint64_t)(1 / density);
	const struct {
		const char *name;
		struct harvest_source src[2];
		int nsrc;
		uint32_t writers[2];
		int nwriters;
	} cases[] = {
		{ "1 hwpt", { { BACKEND_READ_HWPT, h.hwpt[0], 0 } }, 1,
		  { h.dev[0] }, 1 },
		{ "2 hwpts", { { BACKEND_READ_HWPT, h.hwpt[0], 0 },
			       { BACKEND_READ_HWPT, h.hwpt[1], 0 } }, 2,
		  { h.dev[0], h.dev[1] }, 2 },
		{ "dma log", { { BACKEND_READ_DMA_LOG, h.dev[2], 0 } }, 1,
		  { h.dev[2] }, 1 },
	};
	struct harvest_range range = { .iova = 0, .length = gib * GIB };

	printf("sources_bench: %llu GiB guest, %g of its pages written per "
	       "round, %llu rounds per case, engine mode %s\n",
	       (unsigned long long)gib, density, (unsigned long long)reps,
	       harvest_engine_mode(e));
	printf("%-8s %12s %12s %10s\n", "case", "median ms", "fastest ms",
	       "x 1 hwpt");
	double base = 0, med;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct harvest_domain d = { .b = h.b };
		double *t = calloc(reps, sizeof(*t));
		int r;

		r = harvest_domain_set_sources(&d, cases[c].src,
					       (size_t)cases[c].nsrc);
		r = r ?: harvest_domain_plan(&d, 0, PG, &range, 1,
					     harvest_batch_bytes(gib * GIB, PG,
								 2));
		if (r || !t)
			die("planning", r ? r : -ENOMEM);
		/* a round first: whatever was written before is read */
		harvest_engine_start(e, &d, 0, NULL, NULL);
		harvest_engine_wait(e);
		for (uint64_t i = 0; i < reps; i++) {
			double t0;

			dirty(&h, cases[c].writers, cases[c].nwriters, npages,
			      stride);
			t0 = now();
			r = harvest_engine_start(e, &d, 0, NULL, NULL);
			r = r ?: harvest_engine_wait(e) < 0;
			t[i] = now() - t0;
			if (r || d.result)
				die(cases[c].name, d.result ? d.result : r);
			check(&d, npages, stride, cases[c].name);
		}
		med = median(t, reps);	/* sorts: t[0] is the fastest */
		if (!c)
			base = med;
		printf("%-8s %12.2f %12.2f %10.2f\n", cases[c].name,
		       med * 1e3, t[0] * 1e3, med / base);
		free(t);
		harvest_domain_release(&d);
	}
	l1 = bench_loadavg();
	printf("load average (1 min): %.2f before, %.2f after\n", l0, l1);
	harvest_engine_free(e);
	backend_close(h.b);
	return 0;
}
