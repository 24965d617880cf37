/* SPDX-License-Identifier: MIT */
/*
 * JSON output for the command-line tools (dirtyctl, dirtyd-migrate): a
 * writer for documents built top-down, objects and arrays nested up to
 * JSON_DEPTH, strings escaped (RFC 8259), numbers as unsigned integers or
 * doubles.  A document ends with a newline when its outermost value
 * closes, so that a stream of documents is one per line.  Keys come from
 * one vocabulary for both tools, listed in dirtyctl(1), JSON VOCABULARY
 * (tests/integration/test_client_json_keys.sh checks every key printed is
 * there); a value that does not exist is null, never 0.
 *
 *	struct json j = JSON_INIT(stdout);
 *
 *	json_open(&j, NULL, '{');
 *	json_u64(&j, "domain", 1);
 *	json_open(&j, "ranges", '[');
 *	...
 *	json_close(&j, ']');
 *	json_close(&j, '}');
 */
#ifndef DIRTYD_CLIENTS_JSON_H
#define DIRTYD_CLIENTS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH 8

struct json {
	FILE *f;
	int depth;
	bool need_comma[JSON_DEPTH];
};

#define JSON_INIT(file) ((struct json){ .f = (file) })

/** json_open() - start an object ('{') or array ('['); @key names it
 *  inside an object, NULL elsewhere. */
void json_open(struct json *j, const char *key, char c);
/** json_close() - end the innermost object ('}') or array (']'). */
void json_close(struct json *j, char c);
/** json_str() - a string member (@key) or element (@key NULL). */
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, bool v);
/** json_double() - with 3 decimals; a non-finite value prints null. */
void json_double(struct json *j, const char *key, double v);
/** json_null() - null: the value does not exist (never 0 for "none"). */
void json_null(struct json *j, const char *key);
/** json_u64_or_null() - @v if @has, else null. */
void json_u64_or_null(struct json *j, const char *key, uint64_t v, bool has);

#endif
