/*
 * A small JSON reader for test fixtures (the crash samples' manifest.json):
 * the whole document becomes a tree of nodes. Strings keep their \uXXXX
 * escapes decoded to UTF-8 (surrogate pairs included); numbers are
 * doubles. Not for untrusted input of unbounded size: it recurses.
 */
#ifndef MIXSTACK_TESTS_MINI_JSON_H
#define MIXSTACK_TESTS_MINI_JSON_H

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum json_type {
        JSON_NULL,
        JSON_BOOL,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT
};

struct json {
        enum json_type type;
        bool boolean;
        double number;
        char *string;
        /* Arrays and objects: items (objects also keys). */
        struct json **items;
        char **keys;
        size_t n;
};

struct json_parser {
        const char *p;
        int depth;
};

static void json_free(struct json *j)
{
        if (!j)
                return;
        for (size_t i = 0; i < j->n; i++) {
                json_free(j->items[i]);
                if (j->keys)
                        free(j->keys[i]);
        }
        free(j->items);
        free(j->keys);
        free(j->string);
        free(j);
}

static void json_ws(struct json_parser *ps)
{
        while (isspace((unsigned char)*ps->p))
                ps->p++;
}

static void json_put_utf8(char **out, uint32_t c)
{
        char *o = *out;
        if (c < 0x80) {
                *o++ = (char)c;
        } else if (c < 0x800) {
                *o++ = (char)(0xC0 | (c >> 6));
                *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
                *o++ = (char)(0xE0 | (c >> 12));
                *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *o++ = (char)(0x80 | (c & 0x3F));
        } else {
                *o++ = (char)(0xF0 | (c >> 18));
                *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *o++ = (char)(0x80 | (c & 0x3F));
        }
        *out = o;
}

static bool json_hex4(const char *p, uint32_t *v)
{
        *v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                int d = isdigit((unsigned char)c) ? c - '0'
                        : (c >= 'a' && c <= 'f')  ? c - 'a' + 10
                        : (c >= 'A' && c <= 'F')  ? c - 'A' + 10
                                                  : -1;
                if (d < 0)
                        return false;
                *v = *v * 16 + (uint32_t)d;
        }
        return true;
}

static char *json_string(struct json_parser *ps)
{
        if (*ps->p != '"')
                return NULL;
        const char *start = ++ps->p;
        size_t len = 0;
        while (start[len] && start[len] != '"')
                len += start[len] == '\\' && start[len + 1] ? 2 : 1;
        char *out = malloc(len * 2 + 1), *o = out;
        if (!out)
                return NULL;
        const char *p = start;
        while (*p && *p != '"') {
                if (*p != '\\') {
                        *o++ = *p++;
                        continue;
                }
                p++;
                char c = *p++;
                uint32_t u, lo;
                switch (c) {
                case 'n':
                        *o++ = '\n';
                        break;
                case 't':
                        *o++ = '\t';
                        break;
                case 'r':
                        *o++ = '\r';
                        break;
                case 'b':
                        *o++ = '\b';
                        break;
                case 'f':
                        *o++ = '\f';
                        break;
                case 'u':
                        if (!json_hex4(p, &u))
                                goto bad;
                        p += 4;
                        if (u >= 0xD800 && u < 0xDC00 && p[0] == '\\' &&
                            p[1] == 'u' && json_hex4(p + 2, &lo)) {
                                u = 0x10000 + ((u - 0xD800) << 10) +
                                    (lo - 0xDC00);
                                p += 6;
                        }
                        json_put_utf8(&o, u);
                        break;
                default:
                        *o++ = c;
                        break;
                }
        }
        if (*p != '"')
                goto bad;
        *o = '\0';
        ps->p = p + 1;
        return out;
bad:
        free(out);
        return NULL;
}

static struct json *json_value(struct json_parser *ps);

static bool json_push(struct json *j, struct json *item, char *key)
{
        struct json **items = realloc(j->items, (j->n + 1) * sizeof(*items));
        if (!items)
                return false;
        j->items = items;
        if (j->type == JSON_OBJECT) {
                char **keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));
                if (!keys)
                        return false;
                j->keys = keys;
                j->keys[j->n] = key;
        }
        j->items[j->n++] = item;
        return true;
}

static struct json *json_container(struct json_parser *ps, struct json *j)
{
        char close = j->type == JSON_ARRAY ? ']' : '}';
        ps->p++;
        json_ws(ps);
        if (*ps->p == close) {
                ps->p++;
                return j;
        }
        for (;;) {
                char *key = NULL;
                json_ws(ps);
                if (j->type == JSON_OBJECT) {
                        key = json_string(ps);
                        json_ws(ps);
                        if (!key || *ps->p++ != ':') {
                                free(key);
                                break;
                        }
                }
                struct json *item = json_value(ps);
                if (!item || !json_push(j, item, key)) {
                        json_free(item);
                        free(key);
                        break;
                }
                json_ws(ps);
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p++ == close)
                        return j;
                break;
        }
        json_free(j);
        return NULL;
}

static struct json *json_value(struct json_parser *ps)
{
        json_ws(ps);
        if (++ps->depth > 64)
                return NULL;
        struct json *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        const char *p = ps->p;
        struct json *ret = j;
        if (*p == '{' || *p == '[') {
                j->type = *p == '{' ? JSON_OBJECT : JSON_ARRAY;
                ret = json_container(ps, j);
        } else if (*p == '"') {
                j->type = JSON_STRING;
                j->string = json_string(ps);
                if (!j->string) {
                        json_free(j);
                        ret = NULL;
                }
        } else if (strncmp(p, "null", 4) == 0) {
                ps->p += 4;
        } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
                j->type = JSON_BOOL;
                j->boolean = *p == 't';
                ps->p += j->boolean ? 4 : 5;
        } else {
                char *end;
                j->type = JSON_NUMBER;
                j->number = strtod(p, &end);
                if (end == p) {
                        json_free(j);
                        ret = NULL;
                }
                ps->p = end;
        }
        ps->depth--;
        return ret;
}

/* Parse a whole document; NULL on a syntax error. */
static struct json *json_parse(const char *text)
{
        struct json_parser ps = {.p = text};
        struct json *j = json_value(&ps);
        json_ws(&ps);
        if (j && *ps.p) {
                json_free(j);
                return NULL;
        }
        return j;
}

static struct json *json_parse_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *text = size >= 0 ? malloc((size_t)size + 1) : NULL;
        struct json *j = NULL;
        if (text && fread(text, 1, (size_t)size, f) == (size_t)size) {
                text[size] = '\0';
                j = json_parse(text);
        }
        free(text);
        fclose(f);
        return j;
}

/* obj[key], or NULL when obj is not an object or lacks key. */
static struct json *json_get(const struct json *obj, const char *key)
{
        for (size_t i = 0; obj && obj->type == JSON_OBJECT && i < obj->n; i++) {
                if (strcmp(obj->keys[i], key) == 0)
                        return obj->items[i];
        }
        return NULL;
}

/* The string at obj[key], or NULL (absent, null or not a string). */
static const char *json_str(const struct json *obj, const char *key)
{
        const struct json *j = json_get(obj, key);
        return j && j->type == JSON_STRING ? j->string : NULL;
}

/* The number at obj[key] as an integer, or dflt. */
static long long json_int(const struct json *obj, const char *key,
                          long long dflt)
{
        const struct json *j = json_get(obj, key);
        return j && j->type == JSON_NUMBER ? (long long)j->number : dflt;
}

static bool json_bool(const struct json *obj, const char *key)
{
        const struct json *j = json_get(obj, key);
        return j && j->type == JSON_BOOL && j->boolean;
}

static bool json_is_null(const struct json *j)
{
        return !j || j->type == JSON_NULL;
}

#endif
