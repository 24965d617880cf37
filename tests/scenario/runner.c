// SPDX-License-Identifier: MIT
/*
 * scenario_runner - run a scenario (a .scn file of tests/scenario/) on a
 * backend and print its canonical transcript.
 *
 *   scenario_runner --backend sim [--kernel 6.12.N] FILE.scn
 *   scenario_runner --backend iommufd FILE.scn   (the mock device provider;
 *                                     vfio= devices through the VFIO one)
 *
 * The sim emulates the release --kernel names (default: as
 * kernel/sim/kernel.h says, $DIRTYD_SIM_KERNEL or the newest of the pinned
 * matrix); on iommufd the release is the running kernel's (uname -r).
 * The transcript's first line names it: "# Linux 6.12.N".
 *
 * The same file runs on the sim on the host and on the real kernel in the
 * VM (tests/vm/run.sh), and the two transcripts must be identical byte for
 * byte: the kernel is the reference.  Only kernel/backend.h is used.
 *
 * Format: one operation per line; '#' starts a comment.  Objects have
 * names chosen by the scenario; their ids never appear in the transcript.
 * Numbers are decimal or 0x hex, with an optional K, M or G suffix.
 *
 *   host backing=SIZE                 sim only: backing_page_size
 *   device D [nodirty] [huge] [iommu=N] [log[=PGSIZE[,MAXRANGES]]]
 *          [emulated] [vfio=NAME]    bind a device.  On the sim the words
 *                                     declare it (struct sim_device_spec:
 *                                     behind IOMMU instance N, with DMA
 *                                     logging of that granule and range
 *                                     limit (0: the defaults), an emulated
 *                                     (mdev) device).  On iommufd a mock
 *                                     device "D[:nodirty][,huge]", or with
 *                                     vfio=NAME the real VFIO device of
 *                                     that cdev (vfioN: the VM's mtty)
 *                                     through the VFIO cdev provider; the
 *                                     other words are the kernel's to say
 *   unbind D
 *   hwinfo D                          prints caps=
 *   ioas A                            IOMMU_IOAS_ALLOC
 *   huge_pages A on|off               IOMMU_OPTION_HUGE_PAGES
 *   alignment A                       IOMMU_IOAS_IOVA_RANGES' alignment;
 *                                     prints align= (the mock's domains
 *                                     have 2 KiB pages, the sim's 4 KiB:
 *                                     ask only where no domain decides)
 *   map A iova=X len=L [huge] [ro] [flags=F] [uva_off=O]
 *                                     FIXED_IOVA map of fresh memory, 2 MiB
 *                                     aligned + O (huge: hugetlb pages on
 *                                     the kernel); flags= replaces all of
 *                                     FIXED_IOVA|READABLE|WRITEABLE
 *   unmap A iova=X len=L              prints unmapped=
 *   hwpt H dev=D pt=A [dirty] [flags=F]  IOMMU_HWPT_ALLOC [DIRTY_TRACKING]
 *   attach D pt=X                     X an IOAS (auto domain) or a HWPT
 *   detach D
 *   enable H / disable H              IOMMU_HWPT_SET_DIRTY_TRACKING
 *                                     (read, enable and disable take any
 *                                     object, to see what a wrong id gets)
 *   dirty D iova=X len=L              backend_dma_write()
 *   read H iova=X len=L pgsize=P [no_clear] [flags=F] [prefill]
 *                                     GET_DIRTY_BITMAP; prints (on 0, and
 *                                     on EINVAL or EPROTO, after which the
 *                                     kernel may have set bits) bits= (set
 *                                     bits as ranges), bitmap= (hex u64
 *                                     words, word 0 first) and, if the
 *                                     kernel wrote past the last bit,
 *                                     past_end=; prefill sets every other
 *                                     bit of the range before the call
 *   destroy X                         IOMMU_DESTROY
 *   logprobe D                        DMA logging PROBE
 *                                     (backend_dma_log_probe())
 *   logstart D pgsize=P ranges=IOVA+LEN[*N][,...]
 *                                     DMA_LOGGING_START over the ranges
 *                                     (IOVA+LEN*N: N ranges of LEN bytes
 *                                     back to back from IOVA; "ranges=-":
 *                                     none); prints pgsize= (the granule
 *                                     the driver chose) on 0
 *   logreport D iova=X len=L pgsize=P DMA_LOGGING_REPORT; prints, on 0,
 *                                     bits=, bitmap= and past_end= as read
 *   logstop D                         DMA_LOGGING_STOP
 *
 * A line may end with "-> RESULT [key=value...]": the expected errno name
 * (or 0) and printed values; after it, "->[BEHAVIOUR] RESULT [...]" says
 * what a kernel with that behaviour of kernel/sim/kernel.h answers instead
 * (walk_errors, record_bounds, zero_length_einval; the last one the
 * kernel has wins).  A line that starts with "when:BEHAVIOUR" runs only on
 * kernels with that behaviour, "unless:BEHAVIOUR" only on the others.  A name whose creation failed stands for id
 * 0, which no backend knows (-ENOENT).
 *
 * Transcript: one line per operation, "LINE: OP => RESULT [values]", and
 * " MISMATCH(expected ...)" where the expectation was not met.  Exit
 * status: 0, 1 if any expectation was not met, 2 for a bad scenario or a
 * backend that cannot open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include "kernel/backend.h"
#include "kernel/sim/kernel.h"
#include "kernel/sim/sim.h"

#define SCN_MAX_OBJS 256
#define SCN_MAX_TOKENS 16
#define SCN_NAME_MAX 32
#define SCN_HUGE_SIZE (2ULL << 20)
#define SCN_PAGE 4096ULL

enum scn_kind {
	SCN_DEVICE,
	SCN_IOAS,
	SCN_HWPT,
};

struct scn_obj {
	char name[SCN_NAME_MAX];
	enum scn_kind kind;
	uint32_t id;
	bool nodirty;
	bool huge;
	char vfio[SCN_NAME_MAX];	/* vfio=: a VFIO cdev on iommufd */
};

/* The most ranges one logstart passes (above the kernel's 256, to see its
 * E2BIG). */
#define SCN_MAX_LOG_RANGES 1024

struct scn {
	const char *path;
	bool kernel;
	struct backend *b;
	struct scn_obj objs[SCN_MAX_OBJS];
	size_t nobjs;
	unsigned int mismatches;
	/* the line being run */
	unsigned int lineno;
	char *tok[SCN_MAX_TOKENS];
	int ntok;
	char *expect[SCN_MAX_TOKENS];
	int nexpect;
	struct sim_kernel linux_;	/* the release it runs against */
	char out[65536];		/* the values printed */
	size_t outlen;
};

static const struct {
	int err;
	const char *name;
} scn_errnos[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EIO, "EIO" },
	{ ENXIO, "ENXIO" }, { E2BIG, "E2BIG" }, { EBADF, "EBADF" },
	{ ENOMEM, "ENOMEM" }, { EACCES, "EACCES" }, { EFAULT, "EFAULT" },
	{ EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { ENODEV, "ENODEV" },
	{ EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" }, { ERANGE, "ERANGE" },
	{ ENOTTY, "ENOTTY" }, { EOPNOTSUPP, "EOPNOTSUPP" },
	{ EOVERFLOW, "EOVERFLOW" }, { EADDRINUSE, "EADDRINUSE" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { EMSGSIZE, "EMSGSIZE" },
	{ EPROTO, "EPROTO" },
};

static void scn_die(const struct scn *s, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%u: ", s->path, s->lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void scn_errname(int rc, char *buf, size_t len)
{
	size_t i;

	if (!rc) {
		snprintf(buf, len, "0");
		return;
	}
	for (i = 0; i < sizeof(scn_errnos) / sizeof(scn_errnos[0]); i++) {
		if (scn_errnos[i].err == -rc) {
			snprintf(buf, len, "%s", scn_errnos[i].name);
			return;
		}
	}
	snprintf(buf, len, "E%d", -rc);
}

static void scn_printf(struct scn *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->out + s->outlen, sizeof(s->out) - s->outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(s->out) - s->outlen)
		scn_die(s, "output too long");
	s->outlen += (size_t)n;
}

/* ------------------------------------------------------------ parsing */

static bool scn_parse_u64(const char *str, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(str, &end, 0);
	if (errno || end == str)
		return false;
	switch (*end) {
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

/* The value of key=... among the operation's tokens, or NULL. */
static const char *scn_arg(const struct scn *s, const char *key)
{
	size_t len = strlen(key);
	int i;

	for (i = 1; i < s->ntok; i++)
		if (!strncmp(s->tok[i], key, len) && s->tok[i][len] == '=')
			return s->tok[i] + len + 1;
	return NULL;
}

static bool scn_flag(const struct scn *s, const char *word)
{
	int i;

	for (i = 1; i < s->ntok; i++)
		if (!strcmp(s->tok[i], word))
			return true;
	return false;
}

static uint64_t scn_num(const struct scn *s, const char *key)
{
	const char *v = scn_arg(s, key);
	uint64_t n;

	if (!v)
		scn_die(s, "%s: missing %s=", s->tok[0], key);
	if (!scn_parse_u64(v, &n))
		scn_die(s, "%s: bad number %s=%s", s->tok[0], key, v);
	return n;
}

static struct scn_obj *scn_find(struct scn *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nobjs; i++)
		if (!strcmp(s->objs[i].name, name))
			return &s->objs[i];
	return NULL;
}

static struct scn_obj *scn_get(struct scn *s, const char *name)
{
	struct scn_obj *o;

	if (!name)
		scn_die(s, "%s: missing an object name", s->tok[0]);
	o = scn_find(s, name);
	if (!o)
		scn_die(s, "%s: unknown object %s", s->tok[0], name);
	return o;
}

static struct scn_obj *scn_get_kind(struct scn *s, const char *name,
				    enum scn_kind kind)
{
	struct scn_obj *o = scn_get(s, name);

	if (o->kind != kind)
		scn_die(s, "%s: %s is not a %s", s->tok[0], name,
			kind == SCN_DEVICE ? "device" :
			kind == SCN_IOAS ? "IOAS" : "HWPT");
	return o;
}

static struct scn_obj *scn_new(struct scn *s, const char *name,
			       enum scn_kind kind)
{
	struct scn_obj *o;

	if (!name || strlen(name) >= SCN_NAME_MAX || strchr(name, '='))
		scn_die(s, "%s: bad object name", s->tok[0]);
	if (scn_find(s, name))
		scn_die(s, "%s: %s already exists", s->tok[0], name);
	if (s->nobjs == SCN_MAX_OBJS)
		scn_die(s, "too many objects");
	o = &s->objs[s->nobjs++];
	memset(o, 0, sizeof(*o));
	strcpy(o->name, name);
	o->kind = kind;
	return o;
}

/*
 * Split @line into operation tokens and expectation tokens: those after
 * "->", or after the last "->[BEHAVIOUR]" whose behaviour the kernel has.
 */
static void scn_tokenize(struct scn *s, char *line)
{
	char *hash = strchr(line, '#');
	enum { OP, TAKE, SKIP } mode = OP;
	bool any = false;
	char *save, *t;

	if (hash)
		*hash = '\0';
	s->ntok = 0;
	s->nexpect = 0;
	for (t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		bool when = !strncmp(t, "when:", 5);

		if (mode == OP && !s->ntok &&
		    (when || !strncmp(t, "unless:", 7))) {
			int b = sim_kernel_behaviour_from_name(t + (when ? 5 : 7));

			if (b < 0)
				scn_die(s, "unknown behaviour (kernel/sim/kernel.h)");
			if (sim_kernel_has(&s->linux_,
					   (enum sim_kernel_behaviour)b) != when) {
				s->ntok = 0;	/* not on this kernel */
				s->nexpect = 0;
				return;
			}
			continue;
		}
		if (!strcmp(t, "->")) {
			if (any)
				scn_die(s, "two '->'");
			any = true;
			mode = TAKE;
			continue;
		}
		if (!strncmp(t, "->[", 3)) {
			size_t n = strlen(t);
			int b;

			if (!any || n < 5 || t[n - 1] != ']')
				scn_die(s, "'->[BEHAVIOUR]' after '->' only");
			t[n - 1] = '\0';
			b = sim_kernel_behaviour_from_name(t + 3);
			if (b < 0)
				scn_die(s, "unknown behaviour (kernel/sim/kernel.h)");
			if (sim_kernel_has(&s->linux_,
					   (enum sim_kernel_behaviour)b)) {
				s->nexpect = 0;
				mode = TAKE;
			} else {
				mode = SKIP;
			}
			continue;
		}
		if (mode == TAKE) {
			if (s->nexpect == SCN_MAX_TOKENS)
				scn_die(s, "too many words");
			s->expect[s->nexpect++] = t;
		} else if (mode == OP) {
			if (s->ntok == SCN_MAX_TOKENS)
				scn_die(s, "too many words");
			s->tok[s->ntok++] = t;
		}
	}
	if (any && (!s->ntok || !s->nexpect))
		scn_die(s, "'->' needs an operation before and a result after");
}

/* ------------------------------------------------------------ memory */

/* Fresh memory for a mapping: 2 MiB aligned; hugetlb pages if @huge on
 * the kernel (the sim reads no memory; it only checks the alignment). */
static void *scn_alloc_mem(struct scn *s, uint64_t len, bool huge)
{
	uint64_t size = (len + SCN_HUGE_SIZE - 1) & ~(SCN_HUGE_SIZE - 1);
	uint8_t *p;

	if (huge && s->kernel) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			scn_die(s, "map: no hugetlb pages for %" PRIu64
				" bytes (boot with hugepages=N)", size);
		return p;
	}
	p = mmap(NULL, size + SCN_HUGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		scn_die(s, "map: out of memory");
	return (void *)(((uintptr_t)p + SCN_HUGE_SIZE - 1) &
			~(SCN_HUGE_SIZE - 1));
}

/* ------------------------------------------------------------ ops */

static int scn_op_device(struct scn *s)
{
	struct scn_obj *o = scn_find(s, s->tok[1]);
	char name[BACKEND_NAME_MAX];

	if (!o || o->kind != SCN_DEVICE)
		scn_die(s, "device: not declared");
	if (s->kernel && o->vfio[0])
		return backend_device_bind(s->b, o->vfio, &o->id);
	snprintf(name, sizeof(name), "%s%s%s%s", o->name,
		 s->kernel && (o->nodirty || o->huge) ? ":" : "",
		 s->kernel && o->nodirty ? "nodirty" : "",
		 s->kernel && o->huge ? (o->nodirty ? ",huge" : "huge") : "");
	return backend_device_bind(s->b, name, &o->id);
}

static int scn_op_hwinfo(struct scn *s)
{
	struct scn_obj *d = scn_get_kind(s, s->tok[1], SCN_DEVICE);
	struct backend_hw_info info;
	int rc;

	rc = backend_device_get_hw_info(s->b, d->id, &info);
	if (!rc)
		scn_printf(s, " caps=0x%" PRIx64,
			   info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	return rc;
}

static int scn_op_map(struct scn *s)
{
	struct scn_obj *a = scn_get_kind(s, s->tok[1], SCN_IOAS);
	uint64_t iova = scn_num(s, "iova"), len = scn_num(s, "len");
	uint32_t flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE;
	uint64_t off = 0;
	uint8_t *mem;

	if (!scn_flag(s, "ro"))
		flags |= IOMMU_IOAS_MAP_WRITEABLE;
	if (scn_arg(s, "flags"))
		flags = (uint32_t)scn_num(s, "flags");
	if (scn_arg(s, "uva_off"))
		off = scn_num(s, "uva_off");
	mem = scn_alloc_mem(s, (len ? len : 1) + off, scn_flag(s, "huge"));
	return backend_ioas_map(s->b, a->id, flags, mem + off, len, &iova);
}

static int scn_op_unmap(struct scn *s)
{
	struct scn_obj *a = scn_get_kind(s, s->tok[1], SCN_IOAS);
	uint64_t unmapped = 0;
	int rc;

	rc = backend_ioas_unmap(s->b, a->id, scn_num(s, "iova"),
				scn_num(s, "len"), &unmapped);
	if (!rc)
		scn_printf(s, " unmapped=0x%" PRIx64, unmapped);
	return rc;
}

static int scn_op_hwpt(struct scn *s)
{
	struct scn_obj *h = scn_new(s, s->tok[1], SCN_HWPT);
	struct scn_obj *d = scn_get_kind(s, scn_arg(s, "dev"), SCN_DEVICE);
	struct scn_obj *pt = scn_get(s, scn_arg(s, "pt"));
	uint32_t flags = 0;

	if (scn_flag(s, "dirty"))
		flags |= IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	if (scn_arg(s, "flags"))
		flags = (uint32_t)scn_num(s, "flags");
	return backend_hwpt_alloc(s->b, d->id, pt->id, flags, &h->id);
}

static int scn_op_attach(struct scn *s)
{
	struct scn_obj *d = scn_get_kind(s, s->tok[1], SCN_DEVICE);
	struct scn_obj *pt = scn_get(s, scn_arg(s, "pt"));

	return backend_device_attach(s->b, d->id, pt->id);
}

/*
 * A bitmap of @len bytes of IOVA at @pgsize a bit, in whole pages plus
 * one: the kernel pins the bitmap by pages and may write past its last
 * bit (a huge leaf past the end).  Its bit count in *@nbits, its size in
 * *@total; zeroed.
 */
static uint64_t *scn_bitmap_alloc(struct scn *s, uint64_t len,
				  uint64_t pgsize, uint64_t *nbits,
				  uint64_t *total)
{
	/* A bit stands for 1 << __ffs(page_size) bytes (iova_bitmap.c). */
	uint64_t gran = pgsize & -pgsize, nwords, bytes;
	uint64_t *bitmap;

	*nbits = gran && len / gran < (1ULL << 24) ? len / gran : 0;
	nwords = (*nbits + 63) / 64;
	bytes = (nwords * 8 + SCN_PAGE - 1) & ~(SCN_PAGE - 1);
	*total = bytes + SCN_PAGE;
	if (posix_memalign((void **)&bitmap, SCN_PAGE, *total))
		scn_die(s, "%s: out of memory", s->tok[0]);
	memset(bitmap, 0, *total);
	return bitmap;
}

/* Prints bits= (set bits as ranges), bitmap= and past_end=. */
static void scn_bitmap_print(struct scn *s, const uint64_t *bitmap,
			     uint64_t nbits, uint64_t total)
{
	uint64_t nwords = (nbits + 63) / 64, i, run_start = 0;
	bool first = true, in_run = false, past = false;

	scn_printf(s, " bits=");
	for (i = 0; i <= nbits; i++) {
		bool set = i < nbits && (bitmap[i / 64] >> (i % 64) & 1);

		if (set && !in_run) {
			run_start = i;
			in_run = true;
		} else if (!set && in_run) {
			scn_printf(s, "%s%" PRIu64, first ? "" : ",",
				   run_start);
			if (i - 1 > run_start)
				scn_printf(s, "-%" PRIu64, i - 1);
			first = false;
			in_run = false;
		}
	}
	if (first)
		scn_printf(s, "-");
	scn_printf(s, " bitmap=");
	for (i = 0; i < nwords; i++)
		scn_printf(s, "%s%016" PRIx64, i ? "." : "",
			   i == nwords - 1 && nbits % 64 ?
			   bitmap[i] & ((1ULL << (nbits % 64)) - 1) :
			   bitmap[i]);
	if (!nwords)
		scn_printf(s, "-");
	for (i = nbits; i < total * 8; i++) {
		if (!(bitmap[i / 64] >> (i % 64) & 1))
			continue;
		scn_printf(s, "%s%" PRIu64, past ? "," : " past_end=", i);
		past = true;
	}
}

static int scn_op_read(struct scn *s)
{
	struct scn_obj *h = scn_get(s, s->tok[1]);	/* any id */
	uint64_t iova = scn_num(s, "iova"), len = scn_num(s, "len");
	uint64_t pgsize = scn_num(s, "pgsize");
	uint64_t nbits, total, i;
	uint32_t flags = 0;
	const char *f = scn_arg(s, "flags");
	uint64_t *bitmap;
	int rc;

	if (scn_flag(s, "no_clear"))
		flags |= IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
	if (f) {
		uint64_t v;

		if (!scn_parse_u64(f, &v) || v > UINT32_MAX)
			scn_die(s, "read: bad flags=%s", f);
		flags = (uint32_t)v;
	}
	bitmap = scn_bitmap_alloc(s, len, pgsize, &nbits, &total);
	if (scn_flag(s, "prefill"))	/* every other bit set beforehand */
		for (i = 0; i < nbits; i += 2)
			bitmap[i / 64] |= 1ULL << (i % 64);

	rc = backend_hwpt_get_dirty_bitmap(s->b, h->id, iova, len, pgsize,
					   bitmap, flags);
	/* A walk that failed (walk_errors, record_bounds) may have set bits
	 * before it did: show them. */
	if (!rc || rc == -EINVAL || rc == -EPROTO)
		scn_bitmap_print(s, bitmap, nbits, total);
	free(bitmap);
	return rc;
}

/* ranges=IOVA+LEN[*N][,...] or "-" (none) into @r; the count. */
static uint32_t scn_log_ranges(struct scn *s, struct backend_dma_log_range *r)
{
	const char *v = scn_arg(s, "ranges");
	char buf[1024], *item, *save = NULL;
	uint32_t n = 0;

	if (!v)
		scn_die(s, "logstart: missing ranges=");
	if (!strcmp(v, "-"))
		return 0;
	if (strlen(v) >= sizeof(buf))
		scn_die(s, "logstart: ranges= too long");
	strcpy(buf, v);
	for (item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *plus = strchr(item, '+'), *star;
		uint64_t iova, len, count = 1, k;

		if (!plus)
			scn_die(s, "logstart: a range is IOVA+LEN[*N]");
		*plus = '\0';
		star = strchr(plus + 1, '*');
		if (star) {
			*star = '\0';
			if (!scn_parse_u64(star + 1, &count) || !count)
				scn_die(s, "logstart: bad count *%s", star + 1);
		}
		if (!scn_parse_u64(item, &iova) ||
		    !scn_parse_u64(plus + 1, &len))
			scn_die(s, "logstart: bad range %s+%s", item, plus + 1);
		if (count > SCN_MAX_LOG_RANGES - n)
			scn_die(s, "logstart: more than %d ranges",
				SCN_MAX_LOG_RANGES);
		for (k = 0; k < count; k++)
			r[n++] = (struct backend_dma_log_range){
				.iova = iova + k * len,
				.length = len,
			};
	}
	return n;
}

static int scn_op_logstart(struct scn *s)
{
	struct scn_obj *d = scn_get_kind(s, s->tok[1], SCN_DEVICE);
	static struct backend_dma_log_range r[SCN_MAX_LOG_RANGES];
	uint64_t pgsize = scn_num(s, "pgsize");
	uint32_t n = scn_log_ranges(s, r);
	int rc;

	rc = backend_dma_log_start(s->b, d->id, &pgsize, n ? r : NULL, n);
	if (!rc)
		scn_printf(s, " pgsize=0x%" PRIx64, pgsize);
	return rc;
}

static int scn_op_logreport(struct scn *s)
{
	struct scn_obj *d = scn_get_kind(s, s->tok[1], SCN_DEVICE);
	uint64_t iova = scn_num(s, "iova"), len = scn_num(s, "len");
	uint64_t pgsize = scn_num(s, "pgsize"), nbits, total;
	uint64_t *bitmap = scn_bitmap_alloc(s, len, pgsize, &nbits, &total);
	int rc;

	rc = backend_dma_log_report(s->b, d->id, iova, len, pgsize, bitmap);
	if (!rc)
		scn_bitmap_print(s, bitmap, nbits, total);
	free(bitmap);
	return rc;
}

static int scn_op_destroy(struct scn *s)
{
	struct scn_obj *o = scn_get(s, s->tok[1]);

	if (o->kind == SCN_DEVICE)
		scn_die(s, "destroy: %s is a device (unbind it)", o->name);
	return backend_destroy(s->b, o->id);
}

static int scn_run_op(struct scn *s)
{
	const char *op = s->tok[0];

	if (s->ntok < 2)
		scn_die(s, "%s: missing an object name", op);
	if (!strcmp(op, "host"))
		return 0;
	if (!strcmp(op, "device"))
		return scn_op_device(s);
	if (!strcmp(op, "unbind"))
		return backend_device_unbind(
			s->b, scn_get_kind(s, s->tok[1], SCN_DEVICE)->id);
	if (!strcmp(op, "hwinfo"))
		return scn_op_hwinfo(s);
	if (!strcmp(op, "ioas"))
		return backend_ioas_alloc(s->b,
					  &scn_new(s, s->tok[1], SCN_IOAS)->id);
	if (!strcmp(op, "huge_pages")) {
		if (s->ntok != 3 || (strcmp(s->tok[2], "on") &&
				     strcmp(s->tok[2], "off")))
			scn_die(s, "huge_pages: on or off");
		return backend_ioas_set_huge_pages(
			s->b, scn_get_kind(s, s->tok[1], SCN_IOAS)->id,
			!strcmp(s->tok[2], "on"));
	}
	if (!strcmp(op, "alignment")) {
		uint64_t align = 0;
		int rc;

		rc = backend_ioas_iova_alignment(
			s->b, scn_get_kind(s, s->tok[1], SCN_IOAS)->id, &align);
		if (!rc)
			scn_printf(s, " align=0x%" PRIx64, align);
		return rc;
	}
	if (!strcmp(op, "map"))
		return scn_op_map(s);
	if (!strcmp(op, "unmap"))
		return scn_op_unmap(s);
	if (!strcmp(op, "hwpt"))
		return scn_op_hwpt(s);
	if (!strcmp(op, "attach"))
		return scn_op_attach(s);
	if (!strcmp(op, "detach"))
		return backend_device_detach(
			s->b, scn_get_kind(s, s->tok[1], SCN_DEVICE)->id);
	if (!strcmp(op, "enable") || !strcmp(op, "disable"))
		return backend_hwpt_set_dirty_tracking(
			s->b, scn_get(s, s->tok[1])->id,
			!strcmp(op, "enable"));
	if (!strcmp(op, "dirty")) {
		struct scn_obj *d = scn_get_kind(s, s->tok[1], SCN_DEVICE);

		return backend_dma_write(s->b, d->id, scn_num(s, "iova"),
					 scn_num(s, "len"));
	}
	if (!strcmp(op, "read"))
		return scn_op_read(s);
	if (!strcmp(op, "destroy"))
		return scn_op_destroy(s);
	if (!strcmp(op, "logprobe"))
		return backend_dma_log_probe(
			s->b, scn_get_kind(s, s->tok[1], SCN_DEVICE)->id);
	if (!strcmp(op, "logstart"))
		return scn_op_logstart(s);
	if (!strcmp(op, "logreport"))
		return scn_op_logreport(s);
	if (!strcmp(op, "logstop"))
		return backend_dma_log_stop(
			s->b, scn_get_kind(s, s->tok[1], SCN_DEVICE)->id);
	scn_die(s, "unknown operation %s", op);
	return 0;
}

/* Does the expectation hold?  Every expected token must be printed. */
static bool scn_expectation_met(struct scn *s, const char *result)
{
	int i;

	if (strcmp(s->expect[0], result))
		return false;
	for (i = 1; i < s->nexpect; i++) {
		const char *p = s->out;
		size_t len = strlen(s->expect[i]);
		bool found = false;

		while ((p = strstr(p, s->expect[i]))) {
			if (p[-1] == ' ' && (p[len] == ' ' || !p[len])) {
				found = true;
				break;
			}
			p += len;
		}
		if (!found)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------ main */

/* One word of a device line after its name, into @o and the sim's @spec. */
static void scn_device_word(struct scn *s, struct scn_obj *o,
			    struct sim_device_spec *spec, const char *w)
{
	uint64_t v;

	if (!strcmp(w, "nodirty")) {
		o->nodirty = true;
	} else if (!strcmp(w, "huge")) {
		o->huge = true;
	} else if (!strcmp(w, "emulated")) {
		spec->emulated = true;
	} else if (!strncmp(w, "iommu=", 6)) {
		if (!scn_parse_u64(w + 6, &v) || v > UINT32_MAX)
			scn_die(s, "device: bad %s", w);
		spec->iommu = (unsigned int)v;
	} else if (!strcmp(w, "log") || !strncmp(w, "log=", 4)) {
		char buf[64], *comma;

		spec->dma_logging = true;
		if (!w[3])
			return;
		if (strlen(w + 4) >= sizeof(buf))
			scn_die(s, "device: bad %s", w);
		strcpy(buf, w + 4);
		comma = strchr(buf, ',');
		if (comma) {
			*comma = '\0';
			if (!scn_parse_u64(comma + 1, &v) || v > UINT32_MAX)
				scn_die(s, "device: bad %s", w);
			spec->dma_log_max_ranges = (uint32_t)v;
		}
		if (!scn_parse_u64(buf, &spec->dma_log_page_size))
			scn_die(s, "device: bad %s", w);
	} else if (!strncmp(w, "vfio=", 5)) {
		if (!w[5] || strlen(w + 5) >= sizeof(o->vfio))
			scn_die(s, "device: bad %s", w);
		strcpy(o->vfio, w + 5);
	} else {
		scn_die(s, "device: unknown flag %s", w);
	}
}

/* First pass: the devices and the host, which the sim needs at open. */
static void scn_declare(struct scn *s, FILE *f, struct backend_config *cfg)
{
	char line[1024];
	struct sim_device_spec *spec;
	struct scn_obj *o;
	int i;

	s->lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		s->lineno++;
		scn_tokenize(s, line);
		if (!s->ntok)
			continue;
		if (!strcmp(s->tok[0], "host")) {
			uint64_t v = scn_num(s, "backing");

			cfg->sim.backing_page_size = v;
			continue;
		}
		if (strcmp(s->tok[0], "device"))
			continue;
		if (s->ntok < 2)
			scn_die(s, "device: missing a name");
		o = scn_new(s, s->tok[1], SCN_DEVICE);
		if (cfg->sim.n_devices == SIM_MAX_DEVICES)
			scn_die(s, "device: too many devices");
		spec = &cfg->sim.devices[cfg->sim.n_devices++];
		memset(spec, 0, sizeof(*spec));
		for (i = 2; i < s->ntok; i++)
			scn_device_word(s, o, spec, s->tok[i]);
		snprintf(spec->name, BACKEND_NAME_MAX, "%s", o->name);
		spec->dirty_tracking = !o->nodirty;
	}
}

static void scn_run(struct scn *s, FILE *f)
{
	char line[1024], text[1024], result[32];
	bool met;
	int rc, i;
	size_t len;

	s->lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		s->lineno++;
		scn_tokenize(s, line);
		if (!s->ntok)
			continue;
		text[0] = '\0';
		len = 0;
		for (i = 0; i < s->ntok; i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
						"%s%s", i ? " " : "",
						s->tok[i]);
		s->outlen = 0;
		s->out[0] = '\0';
		rc = scn_run_op(s);
		scn_errname(rc, result, sizeof(result));
		printf("%u: %s => %s%s", s->lineno, text, result, s->out);
		if (s->nexpect) {
			met = scn_expectation_met(s, result);
			if (!met) {
				s->mismatches++;
				printf(" MISMATCH(expected");
				for (i = 0; i < s->nexpect; i++)
					printf(" %s", s->expect[i]);
				printf(")");
			}
		}
		printf("\n");
		fflush(stdout);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: scenario_runner --backend sim [--kernel 6.12.N] "
		"FILE.scn\n"
		"       scenario_runner --backend iommufd FILE.scn\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct backend_config cfg = { 0 };
	static struct scn s;
	const char *backend;
	FILE *f;
	int rc;

	if ((argc != 4 && argc != 6) || strcmp(argv[1], "--backend"))
		usage();
	backend = argv[2];
	if (argc == 6) {
		if (strcmp(argv[3], "--kernel") || strcmp(backend, "sim") ||
		    strlen(argv[4]) >= sizeof(cfg.sim.kernel))
			usage();
		strcpy(cfg.sim.kernel, argv[4]);
	}
	s.path = argv[argc - 1];
	if (!strcmp(backend, "sim")) {
		cfg.kind = BACKEND_SIM;
	} else if (!strcmp(backend, "iommufd")) {
		cfg.kind = BACKEND_IOMMUFD;
		cfg.device_provider = "mock";
		s.kernel = true;
	} else {
		usage();
	}
	f = fopen(s.path, "r");
	if (!f) {
		perror(s.path);
		return 2;
	}
	scn_declare(&s, f, &cfg);
	rewind(f);

	rc = backend_open(&cfg, &s.b);
	if (rc) {
		fprintf(stderr, "scenario_runner: cannot open the %s backend:"
			" %s\n", backend, strerror(-rc));
		return 2;
	}
	if (s.kernel) {
		struct utsname u;

		if (uname(&u) || sim_kernel_lookup(u.release, &s.linux_)) {
			fprintf(stderr, "scenario_runner: Linux %s is not a "
				"6.12.y release of kernel/sim/kernel.h\n",
				u.release);
			return 2;
		}
	} else {
		struct sim_stats st;

		if (sim_backend_stats(s.b, &st) ||
		    sim_kernel_lookup(st.kernel, &s.linux_))
			return 2;
	}
	printf("# Linux %s\n", s.linux_.release);
	scn_run(&s, f);
	fclose(f);
	backend_close(s.b);
	return s.mismatches ? 1 : 0;
}
