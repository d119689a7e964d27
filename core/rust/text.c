/*
 * Validated reads of what a panic leaves in memory: UTF-8 texts,
 * core::panic::Location, String / &str payloads, and the default hook's
 * formatted line. Each check exists because the scans that call these try
 * every word of a stack as a pointer: only structures that pass all of
 * them are believed.
 */
#include <stdlib.h>
#include <string.h>

#include "rust/internal.h"

/* Location: {file ptr, file len, line u32, column u32} (reference §3.1). */
#define LOCATION_SIZE 24
#define MAX_FILE_LEN 4096
#define MAX_LINE 10000000u
#define MAX_COLUMN 100000u
/* Payloads longer than this are not a panic message. */
#define MAX_PAYLOAD_LEN ((uint64_t)1 << 20)
/* Lowest and highest user-space addresses on x86-64. */
#define MIN_ADDRESS 0x10000u
#define MAX_ADDRESS 0x800000000000u

static bool plausible_pointer(uint64_t p)
{
        return p >= MIN_ADDRESS && p < MAX_ADDRESS;
}

/* Length of the UTF-8 sequence starting with byte c, 0 when c cannot
 * start one. */
static size_t utf8_length(uint8_t c)
{
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                return 2;
        if (c >= 0xe0 && c <= 0xef)
                return 3;
        if (c >= 0xf0 && c <= 0xf4)
                return 4;
        return 0;
}

/* Overlong forms, surrogates and code points past U+10FFFF. */
static bool utf8_second_ok(uint8_t c, uint8_t d)
{
        if (c == 0xe0)
                return d >= 0xa0;
        if (c == 0xed)
                return d < 0xa0;
        if (c == 0xf0)
                return d >= 0x90;
        if (c == 0xf4)
                return d < 0x90;
        return true;
}

bool ms_rust_text_ok(const uint8_t *buf, size_t len)
{
        for (size_t i = 0; i < len;) {
                uint8_t c = buf[i];
                size_t n = utf8_length(c);
                if (!n || n > len - i)
                        return false;
                if (n == 1) {
                        if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') ||
                            c == 0x7f)
                                return false;
                } else {
                        for (size_t k = 1; k < n; k++) {
                                if ((buf[i + k] & 0xc0) != 0x80)
                                        return false;
                        }
                        if (!utf8_second_ok(c, buf[i + 1]))
                                return false;
                }
                i += n;
        }
        return true;
}

/* Drop a UTF-8 sequence cut at the end of buf. */
static size_t utf8_trim(const uint8_t *buf, size_t len)
{
        size_t back = 0;
        while (back < 3 && back < len && (buf[len - 1 - back] & 0xc0) == 0x80)
                back++;
        if (back < len) {
                size_t start = len - 1 - back;
                size_t n = utf8_length(buf[start]);
                if (n > back + 1)
                        return start;
        }
        return len;
}

struct ms_error *ms_rust_read_text(struct ms_target *target, uint64_t address,
                                   uint64_t len, size_t max, char **ret)
{
        size_t n = (size_t)MS_MIN(len, (uint64_t)max);
        if (!plausible_pointer(address))
                return ms_error_create(MS_ERROR_BAD_INPUT, "not a pointer");
        char *s = malloc(n + 1);
        if (!s)
                return &ms_error_no_memory;
        struct ms_error *err = ms_target_read(target, address, s, n);
        if (err) {
                free(s);
                return err;
        }
        if (n < len)
                n = utf8_trim((const uint8_t *)s, n);
        if (!ms_rust_text_ok((const uint8_t *)s, n)) {
                free(s);
                return ms_error_create(MS_ERROR_BAD_INPUT, "not UTF-8 text");
        }
        s[n] = '\0';
        *ret = s;
        return NULL;
}

static uint64_t get_u64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static uint32_t get_u32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool ms_rust_read_location(struct ms_target *target, uint64_t address,
                           struct ms_rust_location *ret)
{
        uint8_t b[LOCATION_SIZE];
        memset(ret, 0, sizeof(*ret));
        if (!plausible_pointer(address) || address % 8)
                return false;
        struct ms_error *err = ms_target_read(target, address, b, sizeof(b));
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        uint64_t ptr = get_u64(b), len = get_u64(b + 8);
        uint32_t line = get_u32(b + 16), column = get_u32(b + 20);
        if (len < 3 || len > MAX_FILE_LEN || !line || line >= MAX_LINE ||
            !column || column >= MAX_COLUMN)
                return false;
        char *file = NULL;
        err = ms_rust_read_text(target, ptr, len, MAX_FILE_LEN, &file);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        if (strlen(file) != len || !ends_with(file, ".rs") ||
            strchr(file, '\n')) {
                free(file);
                return false;
        }
        char nul = 1;
        err = ms_target_read(target, ptr + len, &nul, 1);
        ms_error_destroy(err);
        ret->file = file;
        ret->line = line;
        ret->column = column;
        ret->nul_terminated = !err && nul == '\0';
        return true;
}

void ms_rust_location_deinit(struct ms_rust_location *loc)
{
        free(loc->file);
        loc->file = NULL;
}

bool ms_rust_is_library_file(const char *file)
{
        return strncmp(file, "/rustc/", 7) == 0 ||
               strstr(file, "library/core/src/") ||
               strstr(file, "library/std/src/") ||
               strstr(file, "library/alloc/src/") ||
               strstr(file, "library/panic_unwind/src/") ||
               strstr(file, "library/panic_abort/src/");
}

bool ms_rust_is_runtime_message(const char *message)
{
        static const char *const runtime[] = {
                "panic in a function that cannot unwind",
                "panic in a destructor during cleanup",
                "panic in a drop function during cleanup",
                "thread caused non-unwinding panic. aborting.",
                /* PyO3's PanicTrap: a panic after catch_unwind. */
                "uncaught panic at ffi boundary",
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(runtime); i++) {
                if (strcmp(message, runtime[i]) == 0)
                        return true;
        }
        return false;
}

static bool take_text(struct ms_target *target, uint64_t ptr, uint64_t len,
                      char **ret)
{
        if (!len || len > MAX_PAYLOAD_LEN)
                return false;
        struct ms_error *err =
                ms_rust_read_text(target, ptr, len, MS_RUST_MAX_TEXT, ret);
        if (err) {
                ms_error_destroy(err);
                return false;
        }
        return true;
}

/* String is a Vec<u8>, repr(Rust): cap, ptr, len as 1.85-1.95 lay it out,
 * and ptr, cap, len as older releases did. */
bool ms_rust_decode_string(struct ms_target *target, const uint64_t *words,
                           size_t n_words, bool string, char **ret)
{
        if (!string)
                return n_words >= 2 && plausible_pointer(words[0]) &&
                       take_text(target, words[0], words[1], ret);
        if (n_words < 3)
                return false;
        for (int order = 0; order < 2; order++) {
                if (ms_rust_decode_vec(target, words[order], words[1 - order],
                                       words[2], ret))
                        return true;
        }
        return false;
}

bool ms_rust_decode_vec(struct ms_target *target, uint64_t cap, uint64_t ptr,
                        uint64_t len, char **ret)
{
        return plausible_pointer(ptr) && cap >= len &&
               cap <= MAX_PAYLOAD_LEN * 2 && take_text(target, ptr, len, ret);
}

/* ------------------------------------------------------------------------
 * The default hook's text
 * ------------------------------------------------------------------------ */

/* Parse "<digits>" at *p (at most end), advancing *p. */
static bool parse_u32(const char **p, const char *end, uint32_t *ret)
{
        uint64_t v = 0;
        const char *s = *p;
        while (s < end && *s >= '0' && *s <= '9' && v < UINT32_MAX)
                v = v * 10 + (uint64_t)(*s++ - '0');
        if (s == *p || v >= UINT32_MAX)
                return false;
        *p = s;
        *ret = (uint32_t)v;
        return true;
}

/* "<file>:<line>:<col>" ending at end (exclusive): the file may contain
 * ':' itself, so the numbers are taken from the right. */
static bool parse_position(const char *s, const char *end,
                           struct ms_rust_hook_text *h)
{
        const char *colon2 = NULL, *colon1 = NULL;
        for (const char *p = end; p > s; p--) {
                if (p[-1] == ':') {
                        if (!colon2)
                                colon2 = p - 1;
                        else {
                                colon1 = p - 1;
                                break;
                        }
                }
        }
        if (!colon1 || colon1 == s)
                return false;
        const char *p = colon1 + 1;
        if (!parse_u32(&p, colon2, &h->line) || p != colon2)
                return false;
        p = colon2 + 1;
        if (!parse_u32(&p, end, &h->column) || p != end)
                return false;
        h->file = strndup(s, (size_t)(colon1 - s));
        return h->file && ends_with(h->file, ".rs");
}

static const char *find(const char *s, const char *end, const char *needle)
{
        size_t n = strlen(needle);
        if (end < s || (size_t)(end - s) < n)
                return NULL;
        return memmem(s, (size_t)(end - s), needle, n);
}

/* 1.73+: "panicked at <file>:<l>:<c>:\n<msg>". */
static bool parse_new(const char *at, const char *end,
                      struct ms_rust_hook_text *h)
{
        const char *nl = find(at, end, ":\n");
        if (!nl || !parse_position(at, nl, h))
                return false;
        const char *msg = nl + 2, *stop = msg;
        while (stop < end && *stop)
                stop++;
        /* The hook ends its line with one newline. */
        if (stop > msg && stop[-1] == '\n')
                stop--;
        h->message = strndup(msg, (size_t)(stop - msg));
        return h->message != NULL;
}

/* Up to 1.72: "panicked at '<msg>', <file>:<l>:<c>". */
static bool parse_old(const char *at, const char *end,
                      struct ms_rust_hook_text *h)
{
        if (at >= end || *at != '\'')
                return false;
        const char *stop = at + 1;
        while (stop < end && *stop && *stop != '\n')
                stop++;
        const char *sep = NULL;
        for (const char *p = at + 1; p + 3 <= stop; p++) {
                if (memcmp(p, "', ", 3) == 0)
                        sep = p;
        }
        if (!sep || !parse_position(sep + 3, stop, h))
                return false;
        h->message = strndup(at + 1, (size_t)(sep - at - 1));
        return h->message != NULL;
}

bool ms_rust_parse_hook_text(const char *text, size_t len,
                             struct ms_rust_hook_text *ret)
{
        memset(ret, 0, sizeof(*ret));
        const char *end = text + len;
        if (len < 8 || memcmp(text, "thread '", 8) != 0)
                return false;
        const char *name = text + 8;
        const char *quote = find(name, end, "' ");
        if (!quote || quote - name > 256)
                return false;
        const char *p = quote + 2;
        /* 1.91+: "(<os tid>) ". */
        if (p < end && *p == '(') {
                const char *close = find(p, MS_MIN(end, p + 24), ") ");
                if (!close)
                        return false;
                p = close + 2;
        }
        const char *at = find(p, MS_MIN(end, p + 12), "panicked at ");
        if (at != p)
                return false;
        p += strlen("panicked at ");
        bool ok = *p == '\'' ? parse_old(p, end, ret) : parse_new(p, end, ret);
        if (ok)
                ret->thread_name = strndup(name, (size_t)(quote - name));
        if (!ok || !ret->thread_name ||
            !ms_rust_text_ok((const uint8_t *)ret->message,
                             strlen(ret->message)) ||
            !ms_rust_text_ok((const uint8_t *)ret->file, strlen(ret->file)) ||
            !ms_rust_text_ok((const uint8_t *)ret->thread_name,
                             strlen(ret->thread_name))) {
                ms_rust_hook_text_deinit(ret);
                return false;
        }
        return true;
}

void ms_rust_hook_text_deinit(struct ms_rust_hook_text *h)
{
        free(h->thread_name);
        free(h->message);
        free(h->file);
        memset(h, 0, sizeof(*h));
}
