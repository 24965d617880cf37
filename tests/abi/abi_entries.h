/* SPDX-License-Identifier: MIT */
/*
 * Expands abi_list.h into the rows of a struct abi_entry array, measured
 * against whichever uAPI headers the including file has included:
 *
 *	const struct abi_entry abi_ours_table[] = {
 *	#include "tests/abi/abi_entries.h"
 *	};
 *
 * The macros stringify their arguments directly (no helper macro in
 * between) so that a name is recorded as written, not macro-expanded.
 * No include guard: every table includes it once.
 */
#define ABI_M(s, f) (((struct s *)0)->f)
/* 1 for an unsigned integer type, 0 for a signed one. */
#define ABI_UNSIGNED(x) ((uint64_t)((__typeof__(x))-1 > 0))

#define ABI_STRUCT(s)							\
	{ "sizeof(struct " #s ")", sizeof(struct s) },			\
	{ "_Alignof(struct " #s ")", _Alignof(struct s) },
#define ABI_FIELD(s, f)							\
	{ "offsetof(struct " #s ", " #f ")", offsetof(struct s, f) },	\
	{ "sizeof(struct " #s "." #f ")", sizeof(ABI_M(s, f)) },	\
	{ "unsigned(struct " #s "." #f ")", ABI_UNSIGNED(ABI_M(s, f)) },
#define ABI_ARRAY(s, f)							\
	{ "offsetof(struct " #s ", " #f ")", offsetof(struct s, f) },	\
	{ "sizeof(struct " #s "." #f ")", sizeof(ABI_M(s, f)) },	\
	{ "sizeof(struct " #s "." #f "[0])", sizeof(ABI_M(s, f)[0]) },	\
	{ "unsigned(struct " #s "." #f "[0])",				\
	  ABI_UNSIGNED(ABI_M(s, f)[0]) },
#define ABI_FLEX(s, f)							\
	{ "offsetof(struct " #s ", " #f ")", offsetof(struct s, f) },	\
	{ "sizeof(struct " #s "." #f "[0])", sizeof(ABI_M(s, f)[0]) },	\
	{ "unsigned(struct " #s "." #f "[0])",				\
	  ABI_UNSIGNED(ABI_M(s, f)[0]) },
#define ABI_ENUM(e)							\
	{ "sizeof(enum " #e ")", sizeof(enum e) },
#define ABI_CONST(c)							\
	{ #c, (uint64_t)(c) },

#include "tests/abi/abi_list.h"

#undef ABI_CONST
#undef ABI_ENUM
#undef ABI_FLEX
#undef ABI_ARRAY
#undef ABI_FIELD
#undef ABI_STRUCT
#undef ABI_UNSIGNED
#undef ABI_M
