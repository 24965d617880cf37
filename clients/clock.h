/* SPDX-License-Identifier: MIT */
/* The monotonic clock in seconds, as the clients time rounds and refreshes. */
#ifndef DIRTYD_CLIENTS_CLOCK_H
#define DIRTYD_CLIENTS_CLOCK_H

#include <time.h>

static inline double clock_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
