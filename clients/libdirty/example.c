// SPDX-License-Identifier: MIT
/*
 * libdirty-example: the loop of a VMM's pre-copy phase, against dirtyd on
 * the simulated host.
 *
 *   libdirty-example [DEVICE [ROUNDS]]
 *
 * Creates a tracking domain on DEVICE (default sim0), maps 64 MiB at IOVA
 * 0, starts tracking and subscribes; then, each round, makes the device
 * write a few pages (a guest at work), syncs, prints the dirty ranges and
 * acknowledges them.  The socket is $DIRTYD_SOCKET or the default.
 *
 * Build against an installed libdirty:
 *   cc example.c $(pkg-config --cflags --libs libdirty)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirtyd/dirty.h>

#define GUEST_SIZE (64ULL << 20)

static int print_range(void *ctx, uint64_t first_page, uint64_t npages)
{
	const struct dirty_subscription_info *info = ctx;
	uint64_t iova = first_page * info->page_size;

	printf("  pages %" PRIu64 "+%" PRIu64 "  iova 0x%" PRIx64 "-0x%" PRIx64
	       "\n", first_page, npages, iova,
	       iova + npages * info->page_size - 1);
	return 0;
}

/* Print why a call failed: dirtyd's words if it refused, else the errno. */
static int fail(struct dirty *d, const char *what, int r)
{
	const char *text = d ? dirty_last_error_text(d) : NULL;

	fprintf(stderr, "%s: %s\n", what, text ? text : strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	const char *device = argc > 1 ? argv[1] : "sim0";
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	struct dirty_subscription_info info = { .size = sizeof(info) };
	uint32_t domain;
	struct dirty *d;
	int r, ret = 1;

	r = dirty_connect(NULL, 0, &d);
	if (r < 0)
		return fail(NULL, "connecting to dirtyd", r);

	r = dirty_domain_create(d, device, DIRTY_CREATE_TRACKING |
				DIRTY_CREATE_NO_HUGE_PAGES, &domain, NULL);
	if (r < 0) {
		fail(d, "creating a domain", r);
		goto out;
	}
	printf("domain %" PRIu32 " on %s\n", domain, device);

	r = dirty_map(d, domain, 0, GUEST_SIZE, 0);
	if (r < 0) {
		fail(d, "mapping", r);
		goto destroy;
	}
	r = dirty_track_start(d, domain);
	if (r < 0) {
		fail(d, "starting tracking", r);
		goto destroy;
	}
	/* CLEAN: this example copies nothing up front, so it only wants the
	 * pages written from now on. */
	r = dirty_subscribe(d, domain, 0, DIRTY_SUBSCRIBE_CLEAN, &info);
	if (r < 0) {
		fail(d, "subscribing", r);
		goto destroy;
	}

	for (int round = 1; round <= rounds; round++) {
		uint64_t gen, pending;

		/* The guest works: its device writes 3 pages here and a
		 * 16-page buffer there. */
		r = dirty_dma_write(d, domain, round * 0x10000ULL,
				    3 * info.page_size);
		if (r == 0)
			r = dirty_dma_write(d, domain, round * 0x100000ULL,
					    16 * info.page_size);
		if (r < 0) {
			fail(d, "writing", r);
			goto destroy;
		}

		r = dirty_sync(d, domain, &gen, &pending);
		if (r < 0) {
			fail(d, "syncing", r);
			goto destroy;
		}
		printf("round %d: generation %" PRIu64 ", %" PRIu64
		       " pages dirty\n", round, gen, pending);
		r = dirty_ranges(d, domain, 0, print_range, &info, &gen);
		if (r < 0) {
			fail(d, "taking ranges", r);
			goto destroy;
		}
		/* ... copy those pages to the destination, then: */
		r = dirty_ack(d, domain, gen);
		if (r < 0) {
			fail(d, "acknowledging", r);
			goto destroy;
		}
	}
	ret = 0;

destroy:
	r = dirty_domain_destroy(d, domain);
	if (r < 0)
		ret = fail(d, "destroying the domain", r);
out:
	dirty_close(d);
	return ret;
}
