// SPDX-License-Identifier: MIT
/* The dirty rate: pages over the wall time the rounds cover (PROTOCOL.md
 * 6.13), whatever the rounds' intervals. */
#include <criterion/criterion.h>

#include "daemon/domain/rate.h"

#define MS 1000000ULL
#define S (1000 * MS)

/* 1000 pages/s steady, found by 100 ms periodic rounds. */
static void steady(struct domain_rate *r, uint64_t from, uint64_t to)
{
	for (uint64_t t = from + 100 * MS; t <= to; t += 100 * MS)
		domain_rate_note(r, t, t - 1 * MS, 100);
}

Test(rate, zero_before_the_first_round_and_after_the_window)
{
	struct domain_rate r = { 0 };

	domain_rate_start(&r, 5 * S);
	cr_assert_eq(domain_rate_get(&r, 6 * S), 0);
	/* the first round covers from TRACK_START */
	domain_rate_note(&r, 7 * S, 7 * S - MS, 4000);
	cr_assert_eq(domain_rate_get(&r, 7 * S), 2000);
	cr_assert_eq(domain_rate_get(&r, 7 * S + DOMAIN_RATE_WINDOW_NS), 0);
}

Test(rate, steady_periodic_rounds)
{
	struct domain_rate r = { 0 };

	domain_rate_start(&r, 0);
	steady(&r, 0, 30 * S);
	cr_assert_eq(domain_rate_get(&r, 30 * S), 1000);
}

/* Extra SYNC rounds between the periodic ones add no pages: the rate
 * stays what was written (dirtyctl showed 2.4x before). */
Test(rate, extra_short_rounds_do_not_inflate_it)
{
	struct domain_rate r = { 0 };
	uint64_t t = 0;

	domain_rate_start(&r, 0);
	while (t < 30 * S) {
		/* 95 ms periodic, then a 5 ms SYNC round: 1000 pages/s */
		t += 95 * MS;
		domain_rate_note(&r, t, t - MS, 95);
		t += 5 * MS;
		domain_rate_note(&r, t, t - MS, 5);
	}
	cr_assert_eq(domain_rate_get(&r, t), 1000);
}

/* A long quiet stretch between on-demand rounds counts as time. */
Test(rate, on_demand_rounds_count_the_time_between)
{
	struct domain_rate r = { 0 };

	domain_rate_start(&r, 0);
	domain_rate_note(&r, 2 * S, 2 * S - MS, 1000);
	domain_rate_note(&r, 6 * S, 6 * S - MS, 1000);
	cr_assert_eq(domain_rate_get(&r, 6 * S), 333);
	/* the window moves on: the first round is out of it at 12 s, but
	 * the second still covers 2 .. 6 s */
	cr_assert_eq(domain_rate_get(&r, 12 * S + 1), 250);
}

/* A rate change shows within the window. */
Test(rate, follows_a_change_within_the_window)
{
	struct domain_rate r = { 0 };
	uint64_t t;

	domain_rate_start(&r, 0);
	steady(&r, 0, 30 * S);
	for (t = 30 * S + 10 * MS; t <= 45 * S; t += 10 * MS)
		domain_rate_note(&r, t, t - MS, 50);	/* 5000 pages/s */
	cr_assert_eq(domain_rate_get(&r, 45 * S), 5000);
}
