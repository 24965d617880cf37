// SPDX-License-Identifier: MIT
/*
 * dirtyd-simwatch: a simulated host, a guest under DMA load, and its dirty
 * pages harvested live through the kernel boundary, with the DMA oracle
 * checking that no written page was missed.
 *
 * Every round: take the oracle (pages written so far), harvest the whole
 * guest with clearing reads in 64 GiB windows, turn the bitmap into
 * extents and show them.  A page in the oracle taken before round N began
 * must be in round N's harvest or round N-1's (a write that lands between a
 * harvest's read of its PTE and the oracle update is reported one round
 * early); anything else is a lost page and is counted as "missed".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "protocol/extent.h"
#include "daemon/util/log.h"
#include "kernel/backend.h"
#include "kernel/dma_load.h"

#define PAGE_4K ((uint64_t)4096)
#define WINDOW ((uint64_t)64 << 30)
#define SHOW_EXTENTS 8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct shown {
	uint64_t n;
	struct extent first[SHOW_EXTENTS];
	uint64_t largest;
};

static int collect(void *ctx, const struct extent *e)
{
	struct shown *s = ctx;

	if (s->n < SHOW_EXTENTS)
		s->first[s->n] = *e;
	if (e->count > s->largest)
		s->largest = e->count;
	s->n++;
	return 0;
}

static int parse_pattern(const char *s, enum dma_pattern *p)
{
	static const char *const names[] = {
		[DMA_PATTERN_UNIFORM] = "uniform",
		[DMA_PATTERN_CLUSTERED] = "clustered",
		[DMA_PATTERN_SEQUENTIAL] = "sequential",
		[DMA_PATTERN_HOTSET] = "hotset",
	};

	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*p = i;
			return 0;
		}
	return -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dirtyd-simwatch [options]\n"
		"  -s, --size-gib N       guest size (default 64)\n"
		"  -l, --leaf 4k|2m|1g    IO page table leaf size (default 4k)\n"
		"  -p, --pattern P        uniform|clustered|sequential|hotset (default clustered)\n"
		"  -r, --rate N           DMA pages per second (default 200000, 0 = unthrottled)\n"
		"  -i, --interval-ms N    harvest interval (default 500)\n"
		"  -d, --duration-s N     stop after N seconds (default 20, 0 = until Ctrl-C)\n"
		"      --plain            no screen refresh, one block per round\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size-gib", required_argument, NULL, 's' },
		{ "leaf", required_argument, NULL, 'l' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "duration-s", required_argument, NULL, 'd' },
		{ "plain", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	uint64_t size_gib = 64, rate = 200000, interval_ms = 500, duration = 20;
	uint64_t leaf = PAGE_4K;
	enum dma_pattern pattern = DMA_PATTERN_CLUSTERED;
	bool plain = !isatty(STDOUT_FILENO);
	struct backend_config cfg = {
		.kind = BACKEND_SIM,
		.sim = {
			.n_devices = 1,
			.devices = { { .name = "sim-nic0", .dirty_tracking = true } },
		},
	};
	struct backend *b = NULL;
	struct dma_load *load = NULL;
	uint64_t *harvest = NULL, *prev = NULL, *oracle = NULL;
	uint32_t dev, ioas, hwpt;
	uint64_t iova = 1ULL << 32, length, npages, nwords, missed_total = 0;
	uint64_t pages_total = 0;
	unsigned int round = 0;
	double t_start;
	int c, r;

	log_setup("dirtyd-simwatch", LOG_INFO);
	while ((c = getopt_long(argc, argv, "s:l:p:r:i:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': size_gib = strtoull(optarg, NULL, 0); break;
		case 'l':
			leaf = !strcmp(optarg, "2m") ? 2ULL << 20 :
			       !strcmp(optarg, "1g") ? 1ULL << 30 :
			       !strcmp(optarg, "4k") ? PAGE_4K : 0;
			if (!leaf)
				return log_error("bad --leaf %s", optarg), 2;
			break;
		case 'p':
			if (parse_pattern(optarg, &pattern) < 0)
				return log_error("bad --pattern %s", optarg), 2;
			break;
		case 'r': rate = strtoull(optarg, NULL, 0); break;
		case 'i': interval_ms = strtoull(optarg, NULL, 0); break;
		case 'd': duration = strtoull(optarg, NULL, 0); break;
		case 'P': plain = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!size_gib || !interval_ms)
		return log_error("size and interval must be positive"), 2;

	length = size_gib << 30;
	npages = length / PAGE_4K;
	nwords = (npages + 63) / 64;
	cfg.sim.backing_page_size = leaf;

	r = backend_open(&cfg, &b);
	if (r < 0)
		return log_error_errno(r, "opening the simulated host failed"), 1;
	if ((r = backend_device_bind(b, "sim-nic0", &dev)) < 0 ||
	    (r = backend_ioas_alloc(b, &ioas)) < 0 ||
	    (r = backend_ioas_map(b, ioas, IOMMU_IOAS_MAP_FIXED_IOVA |
				  IOMMU_IOAS_MAP_READABLE |
				  IOMMU_IOAS_MAP_WRITEABLE,
				  (void *)(uintptr_t)(1ULL << 40), length,
				  &iova)) < 0 ||
	    (r = backend_hwpt_alloc(b, dev, ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt)) < 0 ||
	    (r = backend_device_attach(b, dev, hwpt)) < 0 ||
	    (r = backend_hwpt_set_dirty_tracking(b, hwpt, true)) < 0) {
		log_error_errno(r, "setting up the simulated guest failed");
		goto out;
	}

	harvest = aligned_alloc(64, nwords * 8);
	prev = aligned_alloc(64, nwords * 8);
	oracle = aligned_alloc(64, nwords * 8);
	if (!harvest || !prev || !oracle) {
		r = log_error_errno(-ENOMEM, "bitmaps");
		goto out;
	}
	memset(prev, 0, nwords * 8);

	r = dma_load_start(b, &(struct dma_load_config){
		.dev_id = dev, .iova = iova, .length = length,
		.pattern = pattern, .pages_per_sec = rate, .threads = 1,
		.seed = 1, .cluster_pages = 64, .hot_pages = 4096,
	}, &load);
	if (r < 0) {
		log_error_errno(r, "starting the DMA load failed");
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	t_start = clock_now_s();
	while (!stop && (!duration || clock_now_s() - t_start < duration)) {
		struct shown shown = { 0 };
		struct extent_scan scan;
		uint64_t dirty = 0, missed = 0;
		double t0, t1;

		usleep(interval_ms * 1000);
		memset(oracle, 0, nwords * 8);
		r = dma_load_oracle_take(load, iova, length, PAGE_4K, oracle);
		if (r < 0)
			break;
		memset(harvest, 0, nwords * 8);
		t0 = clock_now_s();
		for (uint64_t off = 0; off < length && r >= 0; off += WINDOW) {
			uint64_t len = length - off < WINDOW ? length - off : WINDOW;

			r = backend_hwpt_get_dirty_bitmap(b, hwpt, iova + off,
							  len, PAGE_4K,
							  harvest + off / PAGE_4K / 64,
							  0);
		}
		t1 = clock_now_s();
		if (r < 0) {
			log_error_errno(r, "harvest failed");
			break;
		}
		extent_scan_init(&scan, collect, &shown);
		extent_scan_bitmap(&scan, harvest, 0, npages);
		extent_scan_finish(&scan);
		for (uint64_t w = 0; w < nwords; w++) {
			dirty += __builtin_popcountll(harvest[w]);
			missed += __builtin_popcountll(oracle[w] &
						       ~(harvest[w] | prev[w]));
		}
		missed_total += missed;
		pages_total += dirty;
		round++;

		if (!plain)
			printf("\033[H\033[2J");
		printf("dirtyd-simwatch  sim guest %" PRIu64 " GiB, %s leaves, "
		       "DMA %s at %" PRIu64 " pages/s\n",
		       size_gib, leaf == PAGE_4K ? "4 KiB" :
		       leaf == (2ULL << 20) ? "2 MiB" : "1 GiB",
		       (const char *[]){ "uniform", "clustered", "sequential",
					"hotset" }[pattern], rate);
		printf("round %u: %" PRIu64 " dirty pages (%.1f MiB/s) in %"
		       PRIu64 " extents, largest %" PRIu64 " pages; "
		       "harvest %.1f ms; missed %" PRIu64 "\n",
		       round, dirty, dirty * 4096.0 / (1 << 20) /
		       (interval_ms / 1000.0), shown.n, shown.largest,
		       (t1 - t0) * 1e3, missed);
		for (uint64_t i = 0; i < shown.n && i < SHOW_EXTENTS; i++)
			printf("  iova 0x%012" PRIx64 " .. 0x%012" PRIx64
			       "  %6" PRIu64 " pages\n",
			       iova + shown.first[i].first * PAGE_4K,
			       iova + (shown.first[i].first +
				       shown.first[i].count) * PAGE_4K - 1,
			       shown.first[i].count);
		if (shown.n > SHOW_EXTENTS)
			printf("  ... %" PRIu64 " more\n",
			       shown.n - SHOW_EXTENTS);
		fflush(stdout);
		memcpy(prev, harvest, nwords * 8);
	}
	printf("\n%u rounds, %" PRIu64 " dirty pages harvested, %" PRIu64
	       " missed\n", round, pages_total, missed_total);
	if (r >= 0)
		r = missed_total ? -EIO : 0;
out:
	dma_load_stop(load);
	free(harvest);
	free(prev);
	free(oracle);
	backend_close(b);
	return r < 0 ? 1 : 0;
}
