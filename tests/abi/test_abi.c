// SPDX-License-Identifier: MIT
/*
 * kernel/uapi/iommufd.h and kernel/uapi/vfio.h against Linux 6.12's uAPI.
 *
 * abi_ours.c and abi_kernel.c measured the same list (abi_list.h) against
 * both sides' headers; here every entry must agree.  Then, so that the
 * list cannot silently fall behind the headers, our two are read
 * (DIRTYD_UAPI_HEADERS, set by CMake, colon-separated) and every struct,
 * member, enum and constant they define must be in the list, and the list
 * may hold nothing else.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/abi/abi_table.h"

#ifndef DIRTYD_UAPI_HEADERS
#error "DIRTYD_UAPI_HEADERS must name kernel/uapi/iommufd.h and vfio.h"
#endif

enum abi_kind {
	ABI_KIND_STRUCT,
	ABI_KIND_FIELD,
	ABI_KIND_ARRAY,
	ABI_KIND_FLEX,
	ABI_KIND_ENUM,
	ABI_KIND_CONST,
	ABI_KIND_MAX,
};

static const char *const abi_kind_name[ABI_KIND_MAX] = {
	[ABI_KIND_STRUCT] = "struct",
	[ABI_KIND_FIELD] = "member",
	[ABI_KIND_ARRAY] = "array member",
	[ABI_KIND_FLEX] = "flexible array member",
	[ABI_KIND_ENUM] = "enum",
	[ABI_KIND_CONST] = "constant",
};

/* The list itself, by name only: this file includes no uAPI header. */
struct abi_item {
	enum abi_kind kind;
	const char *scope;	/* the struct of a member, else NULL */
	const char *name;
};

static const struct abi_item abi_listed[] = {
#define ABI_STRUCT(s) { ABI_KIND_STRUCT, NULL, #s },
#define ABI_FIELD(s, f) { ABI_KIND_FIELD, #s, #f },
#define ABI_ARRAY(s, f) { ABI_KIND_ARRAY, #s, #f },
#define ABI_FLEX(s, f) { ABI_KIND_FLEX, #s, #f },
#define ABI_ENUM(e) { ABI_KIND_ENUM, NULL, #e },
#define ABI_CONST(c) { ABI_KIND_CONST, NULL, #c },
#include "tests/abi/abi_list.h"
#undef ABI_CONST
#undef ABI_ENUM
#undef ABI_FLEX
#undef ABI_ARRAY
#undef ABI_FIELD
#undef ABI_STRUCT
};
#define N_LISTED (sizeof(abi_listed) / sizeof(abi_listed[0]))

Test(abi, same_values_as_linux_6_12)
{
	size_t i, mismatches = 0;

	cr_assert_eq(abi_ours_count, abi_kernel_count,
		     "tables differ in length: %zu vs %zu", abi_ours_count,
		     abi_kernel_count);
	/* Every list item yields at least one entry. */
	cr_assert_geq(abi_ours_count, N_LISTED);

	for (i = 0; i < abi_ours_count; i++) {
		const struct abi_entry *o = &abi_ours_table[i];
		const struct abi_entry *k = &abi_kernel_table[i];

		cr_assert_str_eq(o->name, k->name, "entry %zu", i);
		cr_expect_eq(o->value, k->value,
			     "%s: kernel/uapi/ has %llu (%#llx), "
			     "Linux 6.12 has %llu (%#llx)", o->name,
			     (unsigned long long)o->value,
			     (unsigned long long)o->value,
			     (unsigned long long)k->value,
			     (unsigned long long)k->value);
		if (o->value != k->value)
			mismatches++;
	}
	cr_log_info("abi: %zu list items, %zu entries compared, %zu differ",
		    N_LISTED, abi_ours_count, mismatches);
}

Test(abi, entries_are_unique)
{
	size_t i, j;

	for (i = 0; i < abi_ours_count; i++)
		for (j = i + 1; j < abi_ours_count; j++)
			cr_expect(strcmp(abi_ours_table[i].name,
					 abi_ours_table[j].name),
				  "%s is listed twice", abi_ours_table[i].name);
}

/* ----------------------------------------------------- header coverage */

struct abi_found {
	struct abi_item items[512];
	size_t n;
	char guard[128];
};

static char *abi_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc(len + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[len] = '\0';
out:
	fclose(f);
	return buf;
}

/* Blank out comments (keeping newlines) and join continued lines. */
static void abi_strip(char *s)
{
	char *p;

	for (p = s; *p; p++) {
		if (p[0] == '/' && p[1] == '*') {
			for (; *p && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p != '\n')
					*p = ' ';
			if (*p) {
				p[0] = ' ';
				p[1] = ' ';
				p++;
			}
		} else if (p[0] == '/' && p[1] == '/') {
			for (; *p && *p != '\n'; p++)
				*p = ' ';
			if (!*p)
				break;
		} else if (p[0] == '\\' && p[1] == '\n') {
			p[0] = ' ';
			p[1] = ' ';
			p++;
		}
	}
}

static bool abi_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Copy the identifier at *p (after blanks) into out; advance *p. */
static bool abi_ident(const char **p, char *out, size_t max)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!abi_ident_char(*s) || isdigit((unsigned char)*s))
		return false;
	while (abi_ident_char(*s) && n + 1 < max)
		out[n++] = *s++;
	out[n] = '\0';
	*p = s;
	return true;
}

/*
 * The identifier just before the first '[' or ';' of a member line;
 * whether it is an array, and a flexible one ("[]").
 */
static bool abi_member_name(const char *line, char *out, size_t max,
			    bool *is_array, bool *is_flex)
{
	const char *end = line + strcspn(line, "[;");
	const char *start;

	*is_array = *end == '[';
	*is_flex = *is_array && end[1 + strspn(end + 1, " \t")] == ']';
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	start = end;
	while (start > line && abi_ident_char(start[-1]))
		start--;
	if (start == end || (size_t)(end - start) >= max)
		return false;
	memcpy(out, start, end - start);
	out[end - start] = '\0';
	return true;
}

static void abi_add(struct abi_found *found, enum abi_kind kind,
		    const char *scope, const char *name)
{
	struct abi_item *it;

	cr_assert_lt(found->n, sizeof(found->items) / sizeof(found->items[0]));
	it = &found->items[found->n++];
	it->kind = kind;
	it->scope = scope ? strdup(scope) : NULL;
	it->name = strdup(name);
	cr_assert(it->name && (!scope || it->scope));
}

static bool abi_starts(const char *s, const char *word)
{
	size_t n = strlen(word);

	return !strncmp(s, word, n) && !abi_ident_char(s[n]);
}

/*
 * A parser for the style of kernel/uapi/'s headers: one member or
 * enumerator per line, no nested aggregates.  It fails the test on
 * anything it does not understand rather than skip it.
 */
static void abi_parse(char *text, struct abi_found *found)
{
	enum { OUTSIDE, IN_STRUCT, IN_ENUM } state = OUTSIDE;
	char scope[128] = "", name[128];
	char *line, *save = NULL;
	unsigned int lineno = 0;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *p = line;
		bool is_array, is_flex;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			continue;

		if (*p == '#') {
			p++;
			if (abi_starts(p, "ifndef")) {
				p += strlen("ifndef");
				if (!found->guard[0])
					abi_ident(&p, found->guard,
						  sizeof(found->guard));
			} else if (abi_starts(p, "define")) {
				p += strlen("define");
				cr_assert(abi_ident(&p, name, sizeof(name)),
					  "cannot parse: %s", line);
				if (strcmp(name, found->guard))
					abi_add(found, ABI_KIND_CONST, NULL,
						name);
			}
			continue;
		}

		switch (state) {
		case OUTSIDE:
			if (abi_starts(p, "struct") && strchr(p, '{')) {
				p += strlen("struct");
				cr_assert(abi_ident(&p, scope, sizeof(scope)),
					  "cannot parse: %s", line);
				abi_add(found, ABI_KIND_STRUCT, NULL, scope);
				state = IN_STRUCT;
			} else if (abi_starts(p, "enum") && strchr(p, '{')) {
				p += strlen("enum");
				if (abi_ident(&p, name, sizeof(name)))
					abi_add(found, ABI_KIND_ENUM, NULL,
						name);
				state = IN_ENUM;
			} else {
				cr_assert(!strchr(p, '{'),
					  "the ABI checker cannot parse: %s",
					  line);
			}
			break;
		case IN_STRUCT:
			if (*p == '}') {
				state = OUTSIDE;
				break;
			}
			cr_assert(!strchr(p, '{') && strchr(p, ';'),
				  "the ABI checker cannot parse a member of "
				  "struct %s: %s", scope, line);
			cr_assert(abi_member_name(p, name, sizeof(name),
						  &is_array, &is_flex),
				  "cannot parse: %s", line);
			abi_add(found, is_flex ? ABI_KIND_FLEX :
				is_array ? ABI_KIND_ARRAY : ABI_KIND_FIELD,
				scope, name);
			break;
		case IN_ENUM:
			if (*p == '}') {
				state = OUTSIDE;
				break;
			}
			/* One or more "NAME [= value]," per line. */
			for (;;) {
				cr_assert(abi_ident(&p, name, sizeof(name)),
					  "cannot parse an enumerator: %s",
					  line);
				abi_add(found, ABI_KIND_CONST, NULL, name);
				p = strchr(p, ',');
				if (!p || !p[1 + strspn(p + 1, " \t")])
					break;
				p++;
			}
			break;
		}
	}
	cr_assert_eq(state, OUTSIDE, "unterminated struct or enum");
}

static bool abi_same(const struct abi_item *a, const struct abi_item *b)
{
	if (a->kind != b->kind || strcmp(a->name, b->name))
		return false;
	if (!a->scope || !b->scope)
		return !a->scope && !b->scope;
	return !strcmp(a->scope, b->scope);
}

Test(abi, list_covers_header)
{
	struct abi_found *found = calloc(1, sizeof(*found));
	size_t n_found[ABI_KIND_MAX] = { 0 }, n_listed[ABI_KIND_MAX] = { 0 };
	char *paths = strdup(DIRTYD_UAPI_HEADERS), *path, *save = NULL;
	size_t i, j, n_headers = 0;
	int k;

	cr_assert(found && paths);
	for (path = strtok_r(paths, ":", &save); path;
	     path = strtok_r(NULL, ":", &save)) {
		char *text = abi_read_file(path);

		cr_assert(text, "cannot read %s", path);
		abi_strip(text);
		found->guard[0] = '\0';	/* each header has its own */
		abi_parse(text, found);
		cr_assert(found->guard[0], "%s: no include guard found", path);
		free(text);
		n_headers++;
	}
	cr_assert_eq(n_headers, 2, "DIRTYD_UAPI_HEADERS: %s",
		     DIRTYD_UAPI_HEADERS);

	for (i = 0; i < found->n; i++) {
		const struct abi_item *it = &found->items[i];
		bool listed = false;

		n_found[it->kind]++;
		for (j = 0; j < N_LISTED && !listed; j++)
			listed = abi_same(it, &abi_listed[j]);
		cr_expect(listed, "kernel/uapi/ defines %s %s%s%s, which "
			  "tests/abi/abi_list.h does not list",
			  abi_kind_name[it->kind],
			  it->scope ? it->scope : "", it->scope ? "." : "",
			  it->name);
	}
	for (j = 0; j < N_LISTED; j++) {
		bool defined = false;

		n_listed[abi_listed[j].kind]++;
		for (i = 0; i < found->n && !defined; i++)
			defined = abi_same(&found->items[i], &abi_listed[j]);
		cr_expect(defined, "tests/abi/abi_list.h lists %s %s%s%s, "
			  "which the checker did not find in %s",
			  abi_kind_name[abi_listed[j].kind],
			  abi_listed[j].scope ? abi_listed[j].scope : "",
			  abi_listed[j].scope ? "." : "", abi_listed[j].name,
			  DIRTYD_UAPI_HEADERS);
	}
	/* The same number of each kind: no duplicates on either side. */
	for (k = 0; k < ABI_KIND_MAX; k++)
		cr_expect_eq(n_found[k], n_listed[k],
			     "%s: %zu in the headers, %zu in the list",
			     abi_kind_name[k], n_found[k], n_listed[k]);
	cr_log_info("abi: the headers define %zu structs, %zu members, "
		    "%zu array members, %zu flexible ones, %zu enums, "
		    "%zu constants", n_found[ABI_KIND_STRUCT],
		    n_found[ABI_KIND_FIELD], n_found[ABI_KIND_ARRAY],
		    n_found[ABI_KIND_FLEX], n_found[ABI_KIND_ENUM],
		    n_found[ABI_KIND_CONST]);

	for (i = 0; i < found->n; i++) {
		free((char *)found->items[i].scope);
		free((char *)found->items[i].name);
	}
	free(found);
	free(paths);
}
