#include <inttypes.h>
#include <string.h>

#include "output/json_writer.h"

void ms_json_init(struct ms_json *json, FILE *out, bool pretty)
{
        memset(json, 0, sizeof(*json));
        json->out = out;
        json->pretty = pretty;
}

static void newline(struct ms_json *json)
{
        if (!json->pretty)
                return;
        fputc('\n', json->out);
        for (int i = 0; i < json->depth; i++)
                fputs("  ", json->out);
}

/* Separate a value from the one before it, unless it follows a key. */
static void before_value(struct ms_json *json)
{
        if (json->after_key) {
                json->after_key = false;
                return;
        }
        if (json->depth > 0 && json->depth <= MS_JSON_MAX_DEPTH) {
                if (json->has_element[json->depth - 1])
                        fputc(',', json->out);
                json->has_element[json->depth - 1] = true;
                newline(json);
        }
}

static void begin(struct ms_json *json, char c)
{
        before_value(json);
        fputc(c, json->out);
        json->depth++;
        if (json->depth <= MS_JSON_MAX_DEPTH)
                json->has_element[json->depth - 1] = false;
}

static void end(struct ms_json *json, char c)
{
        bool had = json->depth <= MS_JSON_MAX_DEPTH &&
                   json->has_element[json->depth - 1];
        json->depth--;
        if (had)
                newline(json);
        fputc(c, json->out);
        if (json->depth == 0 && json->pretty)
                fputc('\n', json->out);
}

void ms_json_begin_object(struct ms_json *json)
{
        begin(json, '{');
}

void ms_json_end_object(struct ms_json *json)
{
        end(json, '}');
}

void ms_json_begin_array(struct ms_json *json)
{
        begin(json, '[');
}

void ms_json_end_array(struct ms_json *json)
{
        end(json, ']');
}

void ms_json_key(struct ms_json *json, const char *key)
{
        before_value(json);
        fputc('"', json->out);
        ms_json_write_escaped(json->out, key);
        fputs(json->pretty ? "\": " : "\":", json->out);
        json->after_key = true;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_sequence_length(const unsigned char *s)
{
        unsigned char c = s[0];
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Reject overlong forms, surrogates and values past U+10FFFF. */
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return len;
}

void ms_json_write_escaped(FILE *out, const char *str)
{
        const unsigned char *s = (const unsigned char *)str;
        while (*s) {
                unsigned char c = *s;
                if (c == '"' || c == '\\') {
                        fputc('\\', out);
                        fputc(c, out);
                        s++;
                } else if (c == '\n') {
                        fputs("\\n", out);
                        s++;
                } else if (c == '\t') {
                        fputs("\\t", out);
                        s++;
                } else if (c < 0x20 || c == 0x7f) {
                        fprintf(out, "\\u%04x", c);
                        s++;
                } else if (c < 0x80) {
                        fputc(c, out);
                        s++;
                } else {
                        size_t len = utf8_sequence_length(s);
                        if (len) {
                                fwrite(s, 1, len, out);
                                s += len;
                        } else {
                                fputs("\\ufffd", out);
                                s++;
                        }
                }
        }
}

void ms_json_string(struct ms_json *json, const char *s)
{
        if (!s) {
                ms_json_null(json);
                return;
        }
        before_value(json);
        fputc('"', json->out);
        ms_json_write_escaped(json->out, s);
        fputc('"', json->out);
}

void ms_json_int(struct ms_json *json, int64_t value)
{
        before_value(json);
        fprintf(json->out, "%" PRId64, value);
}

void ms_json_bool(struct ms_json *json, bool value)
{
        before_value(json);
        fputs(value ? "true" : "false", json->out);
}

void ms_json_null(struct ms_json *json)
{
        before_value(json);
        fputs("null", json->out);
}

void ms_json_address(struct ms_json *json, uint64_t value)
{
        before_value(json);
        fprintf(json->out, "\"0x%" PRIx64 "\"", value);
}

void ms_json_key_string(struct ms_json *json, const char *key, const char *s)
{
        ms_json_key(json, key);
        ms_json_string(json, s);
}

void ms_json_key_int_or_null(struct ms_json *json, const char *key, bool known,
                             int64_t value)
{
        ms_json_key(json, key);
        if (known)
                ms_json_int(json, value);
        else
                ms_json_null(json);
}
