// SPDX-License-Identifier: MIT
/*
 * METRICS_REPLY packets (daemon/server/metrics.c, PROTOCOL.md 6.17): a
 * text of many packets is cut at line ends only, every packet decodes,
 * seq counts from 0, PROTO_F_MORE is on all but the last, and the texts
 * joined are the text.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/server/metrics.h"
#include "protocol/proto.h"

static uint8_t buf[PROTO_MAX_MSG];

/* Every packet of @text; returns how many. */
static unsigned int packets(const char *text, size_t len)
{
	char *joined = malloc(len + 1);
	size_t off = 0, got = 0;
	unsigned int seq = 0;
	bool last = false;

	cr_assert_not_null(joined);
	while (!last) {
		struct proto_msg m;
		int n = metrics_packet(buf, sizeof(buf), 77, seq, text, len,
				       &off, &last);

		cr_assert_gt(n, 0, "packet %u: %d", seq, n);
		cr_assert_eq(proto_decode(buf, (size_t)n, &m), 0);
		cr_assert_eq(m.type, PROTO_METRICS_REPLY);
		cr_assert_eq(m.id, 77);
		cr_assert_eq(m.metrics.seq, seq);
		cr_assert_eq(!!(m.flags & PROTO_F_MORE), !last);
		cr_assert(!m.metrics.text_len ||
			  m.metrics.text[m.metrics.text_len - 1] == '\n');
		/* as full as a whole line allows: the next line did not fit */
		if (!last)
			cr_assert_gt((size_t)n + (size_t)(strchr(text + off,
				      '\n') - (text + off)) + 1,
				     PROTO_MAX_MSG);
		memcpy(joined + got, m.metrics.text, m.metrics.text_len);
		got += m.metrics.text_len;
		seq++;
	}
	cr_assert_eq(got, len);
	cr_assert_eq(memcmp(joined, text, len), 0);
	free(joined);
	return seq;
}

Test(metrics, long_text_cut_at_line_ends)
{
	size_t cap = 400000, len = 0;
	char *text = malloc(cap);

	cr_assert_not_null(text);
	/* lines of 20 to 219 bytes, about 5 packets */
	for (unsigned int i = 0; len + 300 < cap - 100000; i++)
		len += (size_t)sprintf(text + len,
				       "dirtyd_domain_x{domain=\"%u\"} %*u\n",
				       i, (int)(i * 37 % 200), i);
	len += (size_t)sprintf(text + len, "# EOF\n");
	cr_assert_geq(packets(text, len), 5);
	free(text);
}

Test(metrics, short_and_empty)
{
	cr_assert_eq(packets("# EOF\n", 6), 1);
	cr_assert_eq(packets("", 0), 1);
}

Test(metrics, line_longer_than_a_packet)
{
	size_t len = PROTO_MAX_MSG + 10, off = 0;
	char *text = malloc(len);
	bool last;

	cr_assert_not_null(text);
	memset(text, 'a', len);
	text[len - 1] = '\n';
	cr_assert_eq(metrics_packet(buf, sizeof(buf), 1, 0, text, len, &off,
				    &last), -EMSGSIZE);
	free(text);
}
