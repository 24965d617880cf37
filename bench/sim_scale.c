// SPDX-License-Identifier: MIT
/*
 * sim_scale - how the sim backend copes with a big guest.
 *
 *   sim_scale [GIB [LEAF]]      GIB defaults to 1024, LEAF (4k, 2m, 1g) to 4k
 *
 * Opens a sim host with one dirty-capable device, allocates a dirty
 * tracking HWPT and attaches the device, maps GIB GiB at IOVA 0 with LEAF
 * leaves (a fake user_va aligned to 1 GiB), enables tracking, dirties a
 * pattern by DMA (every 97th 4 KiB page and the first 1 MiB of every
 * 64 GiB), then harvests the whole range in 64 GiB windows (the size one
 * 2 MiB iova_bitmap window covers at 4 KiB), with NO_CLEAR, with clear,
 * and once more with clear (now clean).  Each harvest is checked against
 * the pattern.  Prints a table; exits 1 if a check fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/backend.h"
#include "kernel/sim/sim.h"

#define GIB (1ULL << 30)
#define PAGE 4096ULL
#define WINDOW (64 * GIB)
#define STRIDE 97
#define RUN (1ULL << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS / VmHWM in KiB from /proc/self/status. */
static uint64_t proc_status_kib(const char *key)
{
	char line[256];
	uint64_t v = 0;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static bool page_dirty(uint64_t iova)
{
	return (iova / PAGE) % STRIDE == 0 || iova % WINDOW < RUN;
}

/* Count mismatches of window [@iova, @iova + @len) against the pattern. */
static uint64_t check_window(const uint64_t *bm, uint64_t iova, uint64_t len,
			     bool expect_dirty, uint64_t *set)
{
	uint64_t k, n = len / PAGE, bad = 0;

	for (k = 0; k < n; k++) {
		bool bit = bm[k / 64] >> (k % 64) & 1;
		bool want = expect_dirty && page_dirty(iova + k * PAGE);

		*set += bit;
		bad += bit != want;
	}
	return bad;
}

struct harvest_result {
	double seconds;
	uint64_t bits;
	uint64_t bad;
};

static int harvest(struct backend *b, uint32_t hwpt, uint64_t size,
		   uint64_t *bm, uint32_t flags, bool expect_dirty,
		   struct harvest_result *r)
{
	uint64_t iova;
	double t = 0;
	int rc;

	*r = (struct harvest_result){};
	for (iova = 0; iova < size; iova += WINDOW) {
		uint64_t len = size - iova < WINDOW ? size - iova : WINDOW;
		double t0;

		memset(bm, 0, WINDOW / PAGE / 8);
		t0 = now();
		rc = backend_hwpt_get_dirty_bitmap(b, hwpt, iova, len, PAGE,
						   bm, flags);
		t += now() - t0;
		if (rc)
			return rc;
		r->bad += check_window(bm, iova, len, expect_dirty, &r->bits);
	}
	r->seconds = t;
	return 0;
}

int main(int argc, char **argv)
{
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 1,
			.devices = {
				{ .name = "sim0", .dirty_tracking = true },
			},
		},
	};
	uint64_t gib = argc > 1 ? strtoull(argv[1], NULL, 0) : 1024;
	const char *leaf = argc > 2 ? argv[2] : "4k";
	struct harvest_result nc, cl, clean;
	uint32_t dev, ioas, hwpt;
	uint64_t size, iova = 0, p, writes = 0, expected = 0;
	struct sim_stats st;
	double t0, t_map, t_enable, t_dma;
	struct backend *b;
	uint64_t *bm;
	int rc;

	if (!strcmp(leaf, "4k"))
		cfg.sim.backing_page_size = SIM_PAGE_SIZE_4K;
	else if (!strcmp(leaf, "2m"))
		cfg.sim.backing_page_size = SIM_PAGE_SIZE_2M;
	else if (!strcmp(leaf, "1g"))
		cfg.sim.backing_page_size = SIM_PAGE_SIZE_1G;
	if (!gib || gib > 200000 || !cfg.sim.backing_page_size) {
		fprintf(stderr, "usage: %s [GIB [4k|2m|1g]]\n", argv[0]);
		return 2;
	}
	size = gib * GIB;

	rc = backend_open(&cfg, &b);
	if (rc) {
		fprintf(stderr, "backend_open: %s\n", strerror(-rc));
		return 1;
	}
	bm = malloc(WINDOW / PAGE / 8);
	if (!bm)
		return 1;

	rc = backend_device_bind(b, "sim0", &dev);
	rc = rc ?: backend_ioas_alloc(b, &ioas);
	rc = rc ?: backend_hwpt_alloc(b, dev, ioas,
				      IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt);
	rc = rc ?: backend_device_attach(b, dev, hwpt);
	if (rc) {
		fprintf(stderr, "setup: %s\n", strerror(-rc));
		return 1;
	}

	t0 = now();
	rc = backend_ioas_map(b, ioas,
			      IOMMU_IOAS_MAP_FIXED_IOVA |
			      IOMMU_IOAS_MAP_READABLE |
			      IOMMU_IOAS_MAP_WRITEABLE,
			      (void *)(uintptr_t)(1ULL << 40), size, &iova);
	t_map = now() - t0;
	if (rc) {
		fprintf(stderr, "map: %s\n", strerror(-rc));
		return 1;
	}

	t0 = now();
	rc = backend_hwpt_set_dirty_tracking(b, hwpt, true);
	t_enable = now() - t0;
	if (rc) {
		fprintf(stderr, "enable: %s\n", strerror(-rc));
		return 1;
	}

	t0 = now();
	for (p = 0; p < size; p += PAGE) {
		if (!page_dirty(p))
			continue;
		rc = backend_dma_write(b, dev, p, PAGE);
		if (rc) {
			fprintf(stderr, "dma_write: %s\n", strerror(-rc));
			return 1;
		}
		writes++;
	}
	t_dma = now() - t0;
	/* With huge leaves a write dirties the whole leaf: check 4k only. */
	expected = writes;

	rc = harvest(b, hwpt, size, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
		     true, &nc);
	rc = rc ?: harvest(b, hwpt, size, bm, 0, true, &cl);
	rc = rc ?: harvest(b, hwpt, size, bm, 0, false, &clean);
	if (rc) {
		fprintf(stderr, "harvest: %s\n", strerror(-rc));
		return 1;
	}
	sim_backend_stats(b, &st);

	printf("sim_scale: %" PRIu64 " GiB at %s leaves, 64 GiB windows\n",
	       gib, leaf);
	printf("%-34s %14s\n", "what", "value");
	printf("%-34s %14" PRIu64 "\n", "leaves 4k", st.pt.leaves_4k);
	printf("%-34s %14" PRIu64 "\n", "leaves 2m", st.pt.leaves_2m);
	printf("%-34s %14" PRIu64 "\n", "leaves 1g", st.pt.leaves_1g);
	printf("%-34s %14.1f\n", "page tables (MiB, stats)",
	       st.pt.table_bytes / 1048576.0);
	printf("%-34s %14.1f\n", "table arena reserved (MiB)",
	       st.pt.arena_bytes / 1048576.0);
	printf("%-34s %14.1f\n", "VmRSS (MiB)",
	       proc_status_kib("VmRSS") / 1024.0);
	printf("%-34s %14.1f\n", "VmHWM (MiB)",
	       proc_status_kib("VmHWM") / 1024.0);
	printf("%-34s %14.4f\n", "map, fills the HWPT (s)", t_map);
	printf("%-34s %14.4f\n", "enable tracking, clears (s)", t_enable);
	printf("%-34s %14" PRIu64 "\n", "dma_write calls (4 KiB each)",
	       writes);
	printf("%-34s %14.0f\n", "dma_write rate (calls/s)", writes / t_dma);
	printf("%-34s %14.4f\n", "harvest NO_CLEAR (s)", nc.seconds);
	printf("%-34s %14.4f\n", "harvest clear (s)", cl.seconds);
	printf("%-34s %14.4f\n", "harvest clear, clean (s)", clean.seconds);
	printf("%-34s %14.2f\n", "harvest clear (GiB PTE/s)",
	       (double)st.pt.table_bytes / GIB / cl.seconds);
	printf("%-34s %14" PRIu64 "\n", "bits NO_CLEAR / clear / clean",
	       nc.bits);
	printf("%-34s %14" PRIu64 "\n", "", cl.bits);
	printf("%-34s %14" PRIu64 "\n", "", clean.bits);

	if (strcmp(leaf, "4k")) {
		printf("%-34s %14s\n", "check", "skipped (huge)");
		backend_close(b);
		free(bm);
		return 0;
	}
	printf("%-34s %14s\n", "check (bits == pages written)",
	       !nc.bad && !cl.bad && !clean.bad && nc.bits == expected &&
	       cl.bits == expected ? "ok" : "FAILED");
	t0 = now();
	backend_close(b);
	printf("%-34s %14.4f\n", "close (s)", now() - t0);
	free(bm);
	return nc.bad || cl.bad || clean.bad || nc.bits != expected ||
	       cl.bits != expected;
}
