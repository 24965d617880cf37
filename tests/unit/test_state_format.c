// SPDX-License-Identifier: MIT
/*
 * The state's records read back (daemon/state/format.c) from a store an
 * earlier dirtyd kept: tests/unit/state_v3/ is what the dirtyd of commit
 * 108e264 (format 3) left in systemd's file descriptor store, made by
 * tests/unit/state_v3/gen.py.  SIGUSR2 is the documented upgrade path: the
 * binary that reads those bytes is not the one that wrote them.
 *
 * Every record is read as it was written: the head, both domains (their
 * devices, mappings, the retired range, the kernel context's name), the
 * subscriptions (token, uid, where their bitmaps are, the park's
 * deadline).  test_daemon_restart's format_3_store_restores restores a
 * whole store rewritten in format 3 and checks it is written again in
 * this one.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daemon/state/state_private.h"
#include "daemon/subscriber/bitmem.h"

#define GIB (1ULL << 30)
#define MIB (1ULL << 20)

/* A fixture file, whole; *@len its size. */
static uint8_t *slurp(const char *name, size_t *len)
{
	char path[512];
	uint8_t *p;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", STATE_V3_DIR, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p[n] = '\0';
	*len = (size_t)n;
	return p;
}

/* A number of expect.txt ("key value" lines; the token in hex). */
static uint64_t expect(const char *key)
{
	size_t len;
	char *t = (char *)slurp("expect.txt", &len);
	char pat[64];
	uint64_t v;
	char *at;

	snprintf(pat, sizeof(pat), "%s ", key);
	for (at = t; at && strncmp(at, pat, strlen(pat));
	     at = strchr(at, '\n'), at = at ? at + 1 : NULL)
		;
	cr_assert_not_null(at, "expect.txt has no %s", key);
	v = strtoull(at + strlen(pat), NULL, strcmp(key, "token") ? 10 : 16);
	free(t);
	return v;
}

/* A dirtyd-meta as the store would hand it back: the fixture's
 * superblock and committed version, in place. */
static void meta_load(struct state *st)
{
	size_t slen, vlen;
	uint8_t *sb = slurp("super.bin", &slen);
	uint8_t *v = slurp("version.bin", &vlen);
	uint64_t slot = expect("slot");

	cr_assert_eq(slen, STATE_META_SUPER);
	cr_assert_eq(vlen, expect("len"));
	memset(st, 0, sizeof(*st));
	st->meta = mmap(NULL, STATE_META_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(st->meta, MAP_FAILED);
	memcpy(st->meta, sb, slen);
	memcpy(st->meta + STATE_META_SUPER + slot * STATE_META_SLOT, v, vlen);
	free(sb);
	free(v);
}

static void meta_free(struct state *st)
{
	munmap(st->meta, STATE_META_SIZE);
	state_version_free(st);
}

/* What gen.py made, as this dirtyd reads it. */
static void check_v3(struct state *st)
{
	const struct state_pdomain *a, *b;
	const struct state_psub *s;
	uint32_t dom = (uint32_t)expect("domain");
	uint32_t other = (uint32_t)expect("other");

	cr_assert_eq(st->seq, expect("seq"));
	cr_assert_eq(st->head->ndomains, 2);
	cr_assert_eq(st->head->nsubs, 2);
	cr_assert_eq(st->head->next_domain_id, other + 1);
	cr_assert_eq(st->head->backend, BACKEND_SIM);
	cr_assert_eq(st->head->bits_size, BITMEM_RESERVE);

	a = &st->pd[0];
	b = &st->pd[1];
	cr_assert_eq(a->rec->id, dom);
	cr_assert_eq(a->rec->owner, expect("uid"));
	cr_assert_eq(a->rec->flags, DREC_TRACKING | DREC_ENABLED | DREC_KEPT);
	cr_assert_eq(a->rec->page_size, 4096);
	cr_assert_eq(a->rec->max_leaf, 4096);
	cr_assert_eq(a->rec->intent.op, STATE_OP_NONE);
	cr_assert_eq(a->rec->nkept, 1);
	cr_assert_str_eq(a->knames[0], "sim");
	cr_assert_eq(a->rec->ndevices, 2);
	cr_assert_str_eq(a->devs[0].name, "sim0");
	cr_assert_str_eq(a->devs[1].name, "sim1");
	cr_assert_neq(a->devs[0].dev_id, a->devs[1].dev_id);
	cr_assert_eq(a->rec->nmaps, 2);
	cr_assert_eq(a->maps[0].iova, GIB);
	cr_assert_eq(a->maps[0].length, 64 * MIB);
	cr_assert_eq(a->maps[1].iova, 2 * GIB + 3 * 4096);
	cr_assert_eq(a->maps[1].length, 8 * MIB + 5 * 4096);
	cr_assert_eq(a->maps[0].external, 0);
	/* unmapped while a generation in flight held pages of it */
	cr_assert_eq(a->rec->nretired, 1);
	cr_assert_eq(a->retired[0].iova, 3 * GIB);
	cr_assert_eq(a->retired[0].length, 4 * MIB);

	cr_assert_eq(b->rec->id, other);
	cr_assert_eq(b->rec->flags, DREC_KEPT);
	cr_assert_eq(b->rec->ndevices, 1);
	cr_assert_str_eq(b->devs[0].name, "sim2");
	cr_assert_eq(b->rec->nmaps, 1);
	cr_assert_eq(b->maps[0].iova, 0);
	cr_assert_eq(b->maps[0].length, 2 * MIB);
	cr_assert_eq(b->rec->nretired, 0);

	for (int i = 0; i < 2; i++) {
		s = &st->ps[i];
		cr_assert_eq(s->rec->token, expect("token"));
		cr_assert_eq(s->rec->uid, expect("uid"));
		cr_assert_eq(s->rec->domain_id, i ? other : dom);
		cr_assert_eq(s->pd, i ? b : a);
		cr_assert_eq(s->rec->nwords, s->pd->rec->layout_words);
		cr_assert_eq(s->rec->clean, !i);
		/* closed: parked until the end of its grace */
		cr_assert_neq(s->rec->deadline_ns, 0);
		cr_assert_neq(s->rec->pending_off, s->rec->flight_off);
	}
	cr_assert(st->bits_end > 0 && st->bits_end <= BITMEM_RESERVE);
}

Test(state_format, reads_format_3)
{
	struct state st;
	int r;

	meta_load(&st);
	r = state_parse(&st, BACKEND_SIM);
	cr_assert_eq(r, 0, "%s", st.why);
	check_v3(&st);
	meta_free(&st);
}

/* Kept by a dirtyd on another backend: refused, with why. */
Test(state_format, refuses_another_backend)
{
	struct state st;

	meta_load(&st);
	cr_assert_lt(state_parse(&st, BACKEND_IOMMUFD), 0);
	cr_assert(strstr(st.why, "kept by a dirtyd on the sim backend"),
		  "%s", st.why);
	meta_free(&st);
}
