/*
 * A streaming JSON writer. It inserts commas itself and escapes every byte
 * sequence into valid JSON: control characters as \u00XX, invalid UTF-8 as
 * U+FFFD, so a name read from a corrupt target never breaks the document.
 */
#ifndef MIXSTACK_OUTPUT_JSON_WRITER_H
#define MIXSTACK_OUTPUT_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MS_JSON_MAX_DEPTH 32

struct ms_json {
        FILE *out;
        int depth;
        /* Whether the container at each depth already has an element. */
        bool has_element[MS_JSON_MAX_DEPTH];
        /* Set after a key, so the value that follows takes no comma. */
        bool after_key;
        /* Two-space indentation when true, one line when false. */
        bool pretty;
};

void ms_json_init(struct ms_json *json, FILE *out, bool pretty);
void ms_json_begin_object(struct ms_json *json);
void ms_json_end_object(struct ms_json *json);
void ms_json_begin_array(struct ms_json *json);
void ms_json_end_array(struct ms_json *json);
void ms_json_key(struct ms_json *json, const char *key);
/* A string value; NULL writes null. */
void ms_json_string(struct ms_json *json, const char *s);
void ms_json_int(struct ms_json *json, int64_t value);
void ms_json_bool(struct ms_json *json, bool value);
void ms_json_null(struct ms_json *json);
/* A key and a string value (NULL writes null). */
void ms_json_key_string(struct ms_json *json, const char *key, const char *s);
/* A key and an integer, or null when not known. */
void ms_json_key_int_or_null(struct ms_json *json, const char *key, bool known,
                             int64_t value);
/* An address as a "0x…" string. */
void ms_json_address(struct ms_json *json, uint64_t value);

/* Write s escaped (without quotes) to out. */
void ms_json_write_escaped(FILE *out, const char *s);

#endif
