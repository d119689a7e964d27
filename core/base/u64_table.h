/*
 * A hash table of fixed-size entries keyed by a 64-bit number (addresses,
 * page numbers), by open addressing: the caches of the readers (pages,
 * unwinding rules, symbols) are all of this kind. An entry type starts
 * with a struct ms_u64_entry; entries move when the table grows, so a
 * pointer to one is valid until the next insertion.
 */
#ifndef MIXSTACK_BASE_U64_TABLE_H
#define MIXSTACK_BASE_U64_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ms_u64_entry {
        uint64_t key;
        bool used;
};

struct ms_u64_table {
        void *slots;
        size_t entry_size;
        size_t n_slots; /* a power of two, > 2 * n */
        size_t n;
};

/* An empty table of entries of entry_size bytes (at least the header). */
void ms_u64_table_init(struct ms_u64_table *table, size_t entry_size);
/* Free the slots (what entries point to is the caller's). */
void ms_u64_table_deinit(struct ms_u64_table *table);

/* The entry of key, or NULL. */
void *ms_u64_table_find(const struct ms_u64_table *table, uint64_t key);

/* A new zeroed entry for key, its header filled (the entry there already
 * if key is in the table); NULL when out of memory. */
void *ms_u64_table_insert(struct ms_u64_table *table, uint64_t key);

/* The i-th slot (0 <= i < n_slots), or NULL when it is free: to visit
 * every entry. */
void *ms_u64_table_slot(const struct ms_u64_table *table, size_t i);

#endif /* MIXSTACK_BASE_U64_TABLE_H */
