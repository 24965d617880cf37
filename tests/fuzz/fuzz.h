/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: a failed check prints why and aborts, which
 * libFuzzer reports as a crash and keeps as a reproducer (and the replay
 * driver, replay.c, as a failed test).
 */
#ifndef DIRTYD_TESTS_FUZZ_H
#define DIRTYD_TESTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s: ",	\
				__FILE__, __LINE__, #cond);		\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

/* libFuzzer's entry points, defined by each target. */
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
