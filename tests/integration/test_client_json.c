// SPDX-License-Identifier: MIT
/*
 * test_client_json: a strict JSON (RFC 8259) checker for the client tests,
 * so that they need no jq.
 *
 *   test_client_json [--lines] [--line N] FILE [PATH...]
 *
 * Errors end the program at once (nothing is freed then).
 * Parses FILE ("-": stdin) as one JSON document, or with --lines each
 * non-empty line as one; exits 1 naming the first error.  Then prints the
 * value at each PATH of the document (with --lines: of line N, 1-based,
 * default the last), one a line: strings unquoted and unescaped, numbers,
 * true, false and null as written, objects and arrays as "{...}"/"[...]".
 * A PATH is a chain of .key and [index], optionally ending in # for the
 * length of an array or object: .domains[0].id, .ranges#.  A PATH that
 * leads nowhere exits 2.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	char *text;		/* J_STR: unescaped; J_NUM, J_BOOL, J_NULL */
	size_t n;		/* J_ARR, J_OBJ */
	char **keys;		/* J_OBJ */
	struct jval **items;
};

struct parser {
	const char *p;
	const char *start;
	const char *err;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("out of memory\n", stderr);
		exit(3);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("out of memory\n", stderr);
		exit(3);
	}
	return p;
}

static void jval_free(struct jval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jval_free(v->items[i]);
		free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	free(v);
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
	       *ps->p == '\r')
		ps->p++;
}

static struct jval *fail(struct parser *ps, const char *why)
{
	if (!ps->err)
		ps->err = why;
	return NULL;
}

static int hex4(const char *s, unsigned int *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned int)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at ps->p (on the opening quote); returns it unescaped. */
static char *parse_string(struct parser *ps)
{
	const char *s = ++ps->p, *e = s;
	char *out, *o;

	/* unescaping never lengthens: the raw length is enough */
	while (*e && *e != '"')
		e += *e == '\\' && e[1] ? 2 : 1;
	out = xmalloc((size_t)(e - s) + 1);
	o = out;

	for (;;) {
		unsigned char c = (unsigned char)*ps->p;
		unsigned int cp, lo;

		if (c == '"') {
			ps->p++;
			*o = '\0';
			return out;
		}
		if (c < 0x20) {
			fail(ps, c ? "control character in a string" :
				     "unterminated string");
			return NULL;
		}
		if (c != '\\') {
			*o++ = (char)c;
			ps->p++;
			continue;
		}
		ps->p++;
		switch (*ps->p) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(ps->p + 1, &cp) < 0)
				goto bad;
			ps->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (ps->p[1] != '\\' || ps->p[2] != 'u' ||
				    hex4(ps->p + 3, &lo) < 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto bad;
				ps->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				goto bad;
			}
			o += put_utf8(o, cp);
			break;
		default:
			goto bad;
		}
		ps->p++;
	}
bad:
	fail(ps, "bad escape in a string");
	return NULL;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static struct jval *parse_value(struct parser *ps, int depth);

static struct jval *new_val(enum jtype t)
{
	struct jval *v = xmalloc(sizeof(*v));

	*v = (struct jval){ .t = t };
	return v;
}

static struct jval *parse_number(struct parser *ps)
{
	const char *s = ps->p;
	struct jval *v;

	if (*ps->p == '-')
		ps->p++;
	if (*ps->p == '0')
		ps->p++;
	else if (is_digit(*ps->p))
		while (is_digit(*ps->p))
			ps->p++;
	else
		return fail(ps, "bad number");
	if (*ps->p == '.') {
		ps->p++;
		if (!is_digit(*ps->p))
			return fail(ps, "bad fraction");
		while (is_digit(*ps->p))
			ps->p++;
	}
	if (*ps->p == 'e' || *ps->p == 'E') {
		ps->p++;
		if (*ps->p == '+' || *ps->p == '-')
			ps->p++;
		if (!is_digit(*ps->p))
			return fail(ps, "bad exponent");
		while (is_digit(*ps->p))
			ps->p++;
	}
	v = new_val(J_NUM);
	v->text = strndup(s, (size_t)(ps->p - s));
	return v;
}

static struct jval *parse_container(struct parser *ps, int depth, bool obj)
{
	struct jval *v = new_val(obj ? J_OBJ : J_ARR);
	char close = obj ? '}' : ']';

	ps->p++;
	skip_ws(ps);
	if (*ps->p == close) {
		ps->p++;
		return v;
	}
	for (;;) {
		struct jval *item;
		char *key = NULL;

		skip_ws(ps);
		if (obj) {
			if (*ps->p != '"')
				return fail(ps, "expected a key");
			key = parse_string(ps);
			if (!key)
				return NULL;
			skip_ws(ps);
			if (*ps->p != ':')
				return fail(ps, "expected ':'");
			ps->p++;
		}
		item = parse_value(ps, depth + 1);
		if (!item)
			return NULL;
		v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
		v->keys = xrealloc(v->keys, (v->n + 1) * sizeof(*v->keys));
		v->items[v->n] = item;
		v->keys[v->n] = key;
		v->n++;
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return v;
		}
		return fail(ps, obj ? "expected ',' or '}'" :
				      "expected ',' or ']'");
	}
}

static struct jval *parse_literal(struct parser *ps, const char *word,
				  enum jtype t)
{
	struct jval *v;
	size_t n = strlen(word);

	if (strncmp(ps->p, word, n))
		return fail(ps, "unexpected character");
	ps->p += n;
	v = new_val(t);
	v->text = strdup(word);
	return v;
}

static struct jval *parse_value(struct parser *ps, int depth)
{
	struct jval *v;
	char *s;

	if (depth > 64)
		return fail(ps, "nested too deep");
	skip_ws(ps);
	switch (*ps->p) {
	case '{':
		return parse_container(ps, depth, true);
	case '[':
		return parse_container(ps, depth, false);
	case '"':
		s = parse_string(ps);
		if (!s)
			return NULL;
		v = new_val(J_STR);
		v->text = s;
		return v;
	case 't':
		return parse_literal(ps, "true", J_BOOL);
	case 'f':
		return parse_literal(ps, "false", J_BOOL);
	case 'n':
		return parse_literal(ps, "null", J_NULL);
	case '\0':
		return fail(ps, "unexpected end");
	default:
		if (*ps->p == '-' || is_digit(*ps->p))
			return parse_number(ps);
		return fail(ps, "unexpected character");
	}
}

/* One document filling [s, end of string). */
static struct jval *parse_document(const char *s, const char *what)
{
	struct parser ps = { .p = s, .start = s };
	struct jval *v = parse_value(&ps, 0);

	if (v) {
		skip_ws(&ps);
		if (*ps.p)
			v = fail(&ps, "trailing characters");
	}
	if (!v) {
		fprintf(stderr, "%s: invalid JSON at offset %zu: %s\n", what,
			(size_t)(ps.p - ps.start), ps.err);
		exit(1);
	}
	return v;
}

/* The value at @path in @v, or NULL; *len set when the path ends in #. */
static const struct jval *lookup(const struct jval *v, const char *path,
				 long *len)
{
	*len = -1;
	while (*path) {
		if (*path == '#' && !path[1]) {
			if (v->t != J_ARR && v->t != J_OBJ)
				return NULL;
			*len = (long)v->n;
			return v;
		}
		if (*path == '.') {
			const char *k = ++path;
			size_t kl = strcspn(k, ".[#");
			size_t i;

			if (v->t != J_OBJ)
				return NULL;
			for (i = 0; i < v->n; i++)
				if (strlen(v->keys[i]) == kl &&
				    !strncmp(v->keys[i], k, kl))
					break;
			if (i == v->n)
				return NULL;
			v = v->items[i];
			path = k + kl;
		} else if (*path == '[') {
			char *end;
			unsigned long i = strtoul(path + 1, &end, 10);

			if (*end != ']' || v->t != J_ARR || i >= v->n)
				return NULL;
			v = v->items[i];
			path = end + 1;
		} else {
			return NULL;
		}
	}
	return v;
}

static char *read_all(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	size_t n = 0, cap = 65536;
	char *buf;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(3);
	}
	buf = xmalloc(cap);
	for (;;) {
		size_t k = fread(buf + n, 1, cap - n - 1, f);

		n += k;
		if (n + 1 < cap)
			break;
		cap *= 2;
		buf = xrealloc(buf, cap);
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		fprintf(stderr, "%s: NUL byte in the input\n", path);
		exit(1);
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	const struct jval *doc = NULL;
	bool lines = false;
	long want = -1, count = 0;
	int i = 1, ret = 0;
	char *buf;

	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--lines")) {
			lines = true;
		} else if (!strcmp(argv[i], "--line") && i + 1 < argc) {
			want = atol(argv[++i]);
			lines = true;
		} else {
			break;
		}
	}
	if (i >= argc) {
		fputs("usage: test_client_json [--lines] [--line N] FILE "
		      "[PATH...]\n", stderr);
		return 3;
	}
	buf = read_all(argv[i]);
	if (!lines) {
		doc = parse_document(buf, argv[i]);
	} else {
		char what[64];

		for (char *line = strtok(buf, "\n"); line;
		     line = strtok(NULL, "\n")) {
			const struct jval *v;

			if (!line[strspn(line, " \t\r")])
				continue;
			snprintf(what, sizeof(what), "%s:%ld", argv[i],
				 count + 1);
			v = parse_document(line, what);
			count++;
			if (want < 0 || count == want) {
				jval_free((struct jval *)doc);
				doc = v;
			} else {
				jval_free((struct jval *)v);
			}
		}
		if (!doc) {
			fprintf(stderr, "%s: no line %ld\n", argv[i], want);
			free(buf);
			return argc > i + 1 ? 2 : 1;
		}
	}
	for (i++; i < argc; i++) {
		long len;
		const struct jval *v = lookup(doc, argv[i], &len);

		if (!v) {
			fprintf(stderr, "%s: no such path\n", argv[i]);
			ret = 2;
			continue;
		}
		if (len >= 0)
			printf("%ld\n", len);
		else if (v->t == J_OBJ)
			puts("{...}");
		else if (v->t == J_ARR)
			puts("[...]");
		else
			puts(v->text);
	}
	jval_free((struct jval *)doc);
	free(buf);
	return ret;
}
