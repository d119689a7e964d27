#include <stdlib.h>
#include <string.h>

#include "base/u64_table.h"

void ms_u64_table_init(struct ms_u64_table *table, size_t entry_size)
{
        memset(table, 0, sizeof(*table));
        table->entry_size = entry_size;
}

void ms_u64_table_deinit(struct ms_u64_table *table)
{
        free(table->slots);
        ms_u64_table_init(table, table->entry_size);
}

static struct ms_u64_entry *at(void *slots, size_t entry_size, size_t i)
{
        return (struct ms_u64_entry *)((char *)slots + i * entry_size);
}

/* The slot of key: its entry, or the free slot where it goes. */
static struct ms_u64_entry *probe(void *slots, size_t entry_size,
                                  size_t n_slots, uint64_t key)
{
        /* Fibonacci hashing: the high bits of the product are well mixed
         * even for keys that differ only in their low bits (pages). */
        uint64_t h = key * 0x9e3779b97f4a7c15ULL;
        size_t mask = n_slots - 1;
        for (size_t i = (size_t)(h >> 32) & mask;; i = (i + 1) & mask) {
                struct ms_u64_entry *e = at(slots, entry_size, i);
                if (!e->used || e->key == key)
                        return e;
        }
}

void *ms_u64_table_find(const struct ms_u64_table *table, uint64_t key)
{
        if (!table->n_slots)
                return NULL;
        struct ms_u64_entry *e =
                probe(table->slots, table->entry_size, table->n_slots, key);
        return e->used ? e : NULL;
}

static bool grow(struct ms_u64_table *table)
{
        size_t n_slots = table->n_slots ? table->n_slots * 2 : 64;
        void *slots = calloc(n_slots, table->entry_size);
        if (!slots)
                return false;
        for (size_t i = 0; i < table->n_slots; i++) {
                struct ms_u64_entry *e = at(table->slots, table->entry_size, i);
                if (e->used)
                        memcpy(probe(slots, table->entry_size, n_slots, e->key),
                               e, table->entry_size);
        }
        free(table->slots);
        table->slots = slots;
        table->n_slots = n_slots;
        return true;
}

void *ms_u64_table_insert(struct ms_u64_table *table, uint64_t key)
{
        if (2 * (table->n + 1) > table->n_slots && !grow(table))
                return NULL;
        struct ms_u64_entry *e =
                probe(table->slots, table->entry_size, table->n_slots, key);
        if (e->used)
                return e;
        memset(e, 0, table->entry_size);
        e->key = key;
        e->used = true;
        table->n++;
        return e;
}

void *ms_u64_table_slot(const struct ms_u64_table *table, size_t i)
{
        struct ms_u64_entry *e = at(table->slots, table->entry_size, i);
        return e->used ? e : NULL;
}
