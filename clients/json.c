// SPDX-License-Identifier: MIT
#include <math.h>
#include <inttypes.h>

#include "json.h"

static void json_quoted(struct json *j, const char *s)
{
	fputc('"', j->f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", j->f);
			break;
		case '\\':
			fputs("\\\\", j->f);
			break;
		case '\n':
			fputs("\\n", j->f);
			break;
		case '\t':
			fputs("\\t", j->f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(j->f, "\\u%04x", *p);
			else
				fputc(*p, j->f);
		}
	}
	fputc('"', j->f);
}

/* The comma before a value, and its key. */
static void json_sep(struct json *j, const char *key)
{
	if (j->depth > 0 && j->depth <= JSON_DEPTH) {
		if (j->need_comma[j->depth - 1])
			fputc(',', j->f);
		j->need_comma[j->depth - 1] = true;
	}
	if (key) {
		json_quoted(j, key);
		fputc(':', j->f);
	}
}

void json_open(struct json *j, const char *key, char c)
{
	json_sep(j, key);
	fputc(c, j->f);
	if (j->depth < JSON_DEPTH)
		j->need_comma[j->depth] = false;
	j->depth++;
}

void json_close(struct json *j, char c)
{
	j->depth--;
	fputc(c, j->f);
	if (!j->depth) {
		fputc('\n', j->f);
		fflush(j->f);
	}
}

void json_str(struct json *j, const char *key, const char *v)
{
	json_sep(j, key);
	json_quoted(j, v);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	json_sep(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_double(struct json *j, const char *key, double v)
{
	json_sep(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.3f", v);
	else
		fputs("null", j->f);
}

void json_null(struct json *j, const char *key)
{
	json_sep(j, key);
	fputs("null", j->f);
}

void json_u64_or_null(struct json *j, const char *key, uint64_t v, bool has)
{
	if (has)
		json_u64(j, key, v);
	else
		json_null(j, key);
}
