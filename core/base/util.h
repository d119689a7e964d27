/* Small helpers shared by every part of libmixstack. */
#ifndef MIXSTACK_BASE_UTIL_H
#define MIXSTACK_BASE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixstack/mixstack.h"

#define MS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Grow *items (of n elements of size elem) so that it holds at least
 * n + 1 elements, doubling *capacity. Returns false when out of memory. */
bool ms_grow(void **items, size_t *capacity, size_t n, size_t elem);

/* strdup that accepts NULL (returning NULL). Sets *ok to false on failure
 * to allocate a non-NULL string. */
char *ms_strdup_or_null(const char *s, bool *ok);

/* A list of one-line warnings, collected while analysing a target. */
struct ms_warnings {
        char **items;
        size_t n;
        size_t capacity;
};

/* Add a formatted warning. Identical warnings are kept once. Failing to
 * allocate drops the warning: warnings must never make analysis fail. */
void ms_warnings_add(struct ms_warnings *w, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Move every warning of src to the end of dst. */
void ms_warnings_move(struct ms_warnings *dst, struct ms_warnings *src);
void ms_warnings_deinit(struct ms_warnings *w);

/* In an array of n elements of size bytes sorted by the uint64_t at
 * key_offset of each, the number of elements whose key is <= key: the index
 * after the last one that starts at or before key. */
size_t ms_count_at_or_below(const void *base, size_t n, size_t size,
                            size_t key_offset, uint64_t key);

#endif /* MIXSTACK_BASE_UTIL_H */
