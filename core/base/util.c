#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

bool ms_grow(void **items, size_t *capacity, size_t n, size_t elem)
{
        if (n < *capacity)
                return true;
        size_t cap = *capacity ? *capacity * 2 : 8;
        if (cap > SIZE_MAX / elem)
                return false;
        void *p = realloc(*items, cap * elem);
        if (!p)
                return false;
        *items = p;
        *capacity = cap;
        return true;
}

char *ms_strdup_or_null(const char *s, bool *ok)
{
        if (!s)
                return NULL;
        char *copy = strdup(s);
        if (!copy)
                *ok = false;
        return copy;
}

void ms_warnings_add(struct ms_warnings *w, const char *fmt, ...)
{
        char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int len = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (len < 0)
                return;
        for (char *p = msg; *p; p++) {
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        }
        for (size_t i = 0; i < w->n; i++) {
                if (strcmp(w->items[i], msg) == 0) {
                        free(msg);
                        return;
                }
        }
        if (!ms_grow((void **)&w->items, &w->capacity, w->n,
                     sizeof(*w->items))) {
                free(msg);
                return;
        }
        w->items[w->n++] = msg;
}

void ms_warnings_move(struct ms_warnings *dst, struct ms_warnings *src)
{
        for (size_t i = 0; i < src->n; i++) {
                if (ms_grow((void **)&dst->items, &dst->capacity, dst->n,
                            sizeof(*dst->items)))
                        dst->items[dst->n++] = src->items[i];
                else
                        free(src->items[i]);
        }
        free(src->items);
        src->items = NULL;
        src->n = src->capacity = 0;
}

void ms_warnings_deinit(struct ms_warnings *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->items[i]);
        free(w->items);
        w->items = NULL;
        w->n = w->capacity = 0;
}

size_t ms_count_at_or_below(const void *base, size_t n, size_t size,
                            size_t key_offset, uint64_t key)
{
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint64_t k;
                memcpy(&k, (const char *)base + mid * size + key_offset,
                       sizeof(k));
                if (k <= key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}
