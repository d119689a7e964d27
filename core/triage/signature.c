/*
 * Signatures: normalised frames of a thread, joined.
 *
 * What is dropped, and why (docs/triage.md):
 * - addresses and offsets: they move with every rebuild and with ASLR;
 * - compiler clone suffixes (.cold, .constprop.0, .llvm.123...): they
 *   depend on optimisation decisions, and .llvm.N is a per-build hash;
 * - Rust hashes ("::h0123456789abcdef"): per-build;
 * - generic arguments ("<T>", "::<u8>") and C++ argument lists: Rust's
 *   legacy and v0 manglings show them differently, and they add nothing
 *   the next frame does not say;
 * - line numbers of Python frames: an edit anywhere above moves them;
 * - inlined frames: line-tables-only debug info names them without their
 *   path ("segfault", "{closure#0}"), and inlining changes with the
 *   optimisation level; the frame they are inlined into stays.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "symbols/symbols.h"
#include "triage/signature.h"

/* A growing string; any allocation failure sticks and makes the result
 * NULL. */
struct strbuf {
        char *s;
        size_t len;
        size_t cap;
        bool failed;
};

static void sb_put(struct strbuf *b, const char *s, size_t n)
{
        if (b->failed)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 64;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *s2 = realloc(b->s, cap);
                if (!s2) {
                        b->failed = true;
                        return;
                }
                b->s = s2;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s)
{
        sb_put(b, s, strlen(s));
}

static char *sb_finish(struct strbuf *b)
{
        if (b->failed) {
                free(b->s);
                return NULL;
        }
        if (!b->s)
                return strdup("");
        return b->s;
}

static bool is_ident(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '$';
}

/* The index of the bracket closing the one at open (open, close: "<>" or
 * "()"), or len when it is not closed. An arrow "->" closes nothing. */
static size_t matching(const char *s, size_t open, size_t len, char o, char c)
{
        int depth = 0;
        for (size_t i = open; i < len; i++) {
                if (s[i] == o)
                        depth++;
                else if (s[i] == c && !(c == '>' && i > 0 && s[i - 1] == '-'))
                        depth--;
                if (depth == 0)
                        return i;
        }
        return len;
}

static bool ends_with(const struct strbuf *b, const char *suffix)
{
        size_t n = strlen(suffix);
        return b->len >= n && memcmp(b->s + b->len - n, suffix, n) == 0;
}

/* C++ "operator<", "operator()": copy the operator whole, or its
 * brackets would be taken for generic arguments. Returns the length
 * consumed, 0 when s + i is no operator name. */
static size_t copy_operator(struct strbuf *b, const char *s, size_t i,
                            size_t len)
{
        static const char word[] = "operator";
        size_t w = sizeof(word) - 1;
        if (i + w > len || memcmp(s + i, word, w) != 0 ||
            (i > 0 && is_ident(s[i - 1])) ||
            (i + w < len && is_ident(s[i + w])))
                return 0;
        size_t j = i + w;
        if (j + 1 < len && ((s[j] == '(' && s[j + 1] == ')') ||
                            (s[j] == '[' && s[j + 1] == ']')))
                j += 2;
        else
                while (j < len && strchr("<>=!+-*/%^&|~,", s[j]))
                        j++;
        sb_put(b, s + i, j - i);
        /* Its argument list, which the operator's brackets hide from the
         * general rule. */
        if (j < len && s[j] == '(')
                j = MS_MIN(matching(s, j, len, '(', ')') + 1, len);
        return j - i;
}

static void normalize_range(struct strbuf *b, const char *s, size_t len);

/* A '<' at i. A qualified path ("<X as Y>::f", "<impl X for Y>::f",
 * "<X>::f") is kept, without the brackets when it names a plain type, so
 * that legacy and v0 names agree ("<Vec<T>>::push" and "Vec<T>::push"
 * are both "Vec::push"); generic arguments ("f<T>", the turbofish
 * "f::<T>") are dropped. Returns the index after the closing '>'. */
static size_t handle_angle(struct strbuf *b, const char *s, size_t i,
                           size_t len)
{
        size_t close = matching(s, i, len, '<', '>');
        if (close == len) {
                sb_put(b, s + i, len - i);
                return len;
        }
        const char *inner = s + i + 1;
        size_t inner_len = close - i - 1;
        bool impl = inner_len > 5 && memcmp(inner, "impl ", 5) == 0;
        bool as = memmem(inner, inner_len, " as ", 4) != NULL;
        bool after_colons = ends_with(b, "::");
        bool followed =
                close + 2 < len && s[close + 1] == ':' && s[close + 2] == ':';
        bool qualifier;
        if (i > 0 && is_ident(s[i - 1]))
                qualifier = false;
        else if (after_colons)
                qualifier = impl;
        else
                qualifier = followed || impl || as;
        if (!qualifier) {
                if (after_colons)
                        b->len -= 2, b->s[b->len] = '\0';
                return close + 1;
        }
        if (impl || as)
                sb_put(b, "<", 1);
        normalize_range(b, inner, inner_len);
        if (impl || as)
                sb_put(b, ">", 1);
        return close + 1;
}

static void normalize_range(struct strbuf *b, const char *s, size_t len)
{
        size_t i = 0;
        while (i < len) {
                size_t n = copy_operator(b, s, i, len);
                if (n) {
                        i += n;
                } else if (s[i] == '<') {
                        i = handle_angle(b, s, i, len);
                } else if (s[i] == '(' && i > 0 &&
                           (is_ident(s[i - 1]) || s[i - 1] == '>' ||
                            s[i - 1] == ')')) {
                        /* A C++ argument list (or "operator()(...)"). */
                        i = matching(s, i, len, '(', ')') + 1;
                } else {
                        sb_put(b, s + i, 1);
                        i++;
                }
        }
}

/* Replace every occurrence of from in b by to (to not longer than from). */
static void sb_replace(struct strbuf *b, const char *from, const char *to)
{
        if (b->failed || !b->s)
                return;
        size_t fl = strlen(from), tl = strlen(to);
        char *p = b->s;
        while ((p = strstr(p, from))) {
                memcpy(p, to, tl);
                memmove(p + tl, p + fl, strlen(p + fl) + 1);
                b->len -= fl - tl;
                p += tl;
        }
}

/* "{closure#3}" (v0) and "{{closure}}" (legacy) are both "{closure}". */
static void normalize_closures(struct strbuf *b)
{
        sb_replace(b, "{{closure}}", "{closure}");
        char *p = b->s;
        while (p && (p = strstr(p, "{closure#"))) {
                char *end = p + strlen("{closure#");
                while (*end >= '0' && *end <= '9')
                        end++;
                if (*end == '}') {
                        memmove(p + strlen("{closure"), end, strlen(end) + 1);
                        b->len = strlen(b->s);
                }
                p++;
        }
}

static bool is_rust_hash(const char *s, size_t len)
{
        if (len < 19 || memcmp(s + len - 19, "::h", 3) != 0)
                return false;
        for (size_t i = len - 16; i < len; i++) {
                if (!strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

/* Trailing C++ qualifiers and white space. */
static void trim_tail(struct strbuf *b)
{
        static const char *const tails[] = {" const", " volatile", " &&",
                                            " &",     " noexcept", " "};
        bool again = true;
        while (again && b->s) {
                again = false;
                for (size_t i = 0; i < MS_ARRAY_SIZE(tails); i++) {
                        if (ends_with(b, tails[i])) {
                                b->len -= strlen(tails[i]);
                                b->s[b->len] = '\0';
                                again = true;
                        }
                }
        }
}

char *ms_signature_normalize_function(const char *function)
{
        size_t len = ms_symbol_base_length(function);
        if (is_rust_hash(function, len))
                len -= 19;
        struct strbuf b = {0};
        normalize_range(&b, function, len);
        normalize_closures(&b);
        trim_tail(&b);
        if (!b.failed && b.len == 0)
                sb_put(&b, function, len);
        return sb_finish(&b);
}

static const char *basename_of(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* The file of a Python frame as a signature shows it: its basename, with
 * its directory for a package's __init__.py or __main__.py, which say
 * nothing alone. Machines and virtualenvs differ in the rest. */
static void python_file(struct strbuf *b, const char *file)
{
        const char *base = basename_of(file);
        if (base > file + 1 && (strcmp(base, "__init__.py") == 0 ||
                                strcmp(base, "__main__.py") == 0)) {
                const char *dir = base - 1;
                while (dir > file && dir[-1] != '/')
                        dir--;
                base = dir;
        }
        sb_puts(b, base);
}

static char *python_text(const struct ms_frame *frame)
{
        struct strbuf b = {0};
        python_file(&b, frame->file ? frame->file : "?");
        sb_put(&b, ":", 1);
        /* The code name, not the qualified name: 3.8-3.10 have no
         * co_qualname, and signatures must agree across interpreters. */
        const char *name = frame->function ? frame->function : frame->qualname;
        sb_puts(&b, name ? name : "?");
        return sb_finish(&b);
}

/* The length of name up to a Python extension module's ABI tag
 * (".cpython-311-x86_64-linux-gnu.so", ".cpython-313t-...", ".abi3.so"),
 * or 0 when it has none. */
static size_t extension_stem(const char *name)
{
        size_t len = strlen(name);
        if (len < 4 || strcmp(name + len - 3, ".so") != 0)
                return 0;
        const char *abi3 = ".abi3.so";
        if (len > strlen(abi3) && strcmp(name + len - strlen(abi3), abi3) == 0)
                return len - strlen(abi3);
        const char *tag = strstr(name, ".cpython-");
        if (tag && tag > name && !strchr(tag + 1, '/'))
                return (size_t)(tag - name);
        return 0;
}

char *ms_signature_normalize_module(const char *path)
{
        const char *name = basename_of(path);
        size_t stem = extension_stem(name);
        if (stem)
                return strndup(name, stem);
        /* A shared library's version ("libffi.so.8.1.2"): it changes
         * with patch releases, the crash does not. */
        const char *so = strstr(name, ".so.");
        if (so && so > name) {
                bool version = true;
                for (const char *p = so + 4; *p && version; p++)
                        version = (*p >= '0' && *p <= '9') || *p == '.';
                if (version)
                        return strndup(name, (size_t)(so - name) + 3);
        }
        return strdup(name);
}

char *ms_signature_frame_text(const struct ms_frame *frame)
{
        if (frame->kind == MS_FRAME_PYTHON)
                return python_text(frame);
        if (frame->function && *frame->function)
                return ms_signature_normalize_function(frame->function);
        if (frame->module)
                return ms_signature_normalize_module(frame->module);
        return strdup("??");
}

static struct ms_error *append_frame(struct ms_signature_frame **frames,
                                     size_t *n, size_t *capacity, char *text,
                                     size_t thread, size_t index)
{
        if (!ms_grow((void **)frames, capacity, *n, sizeof(**frames))) {
                free(text);
                return &ms_error_no_memory;
        }
        (*frames)[(*n)++] = (struct ms_signature_frame){
                .text = text,
                .thread = thread,
                .frame = index,
        };
        return NULL;
}

/* The index where the signature starts: the innermost sentinel, or 0. */
static size_t sentinel_start(const struct ms_signature_rules *rules,
                             const struct ms_thread_report *thread)
{
        for (size_t i = 0; i < thread->n_frames; i++) {
                const struct ms_frame *f = &thread->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                char *text = ms_signature_frame_text(f);
                bool sentinel =
                        text && ms_signature_is_sentinel(rules, f, text);
                free(text);
                if (sentinel)
                        return i;
        }
        return 0;
}

/* Drop frames [from, *n) of frames. */
static void truncate_frames(struct ms_signature_frame *frames, size_t *n,
                            size_t from)
{
        while (*n > from)
                free(frames[--*n].text);
}

struct ms_error *ms_signature_thread(const struct ms_signature_rules *rules,
                                     const struct ms_thread_report *thread,
                                     size_t thread_index, unsigned max_frames,
                                     struct ms_signature_frame **frames,
                                     size_t *n, size_t *capacity)
{
        size_t first = *n, counted = 0, prefixes = 0;
        for (size_t i = sentinel_start(rules, thread);
             i < thread->n_frames && counted < max_frames; i++) {
                const struct ms_frame *f = &thread->frames[i];
                if (f->inlined && f->kind == MS_FRAME_NATIVE)
                        continue;
                char *text = ms_signature_frame_text(f);
                if (!text)
                        return &ms_error_no_memory;
                enum ms_signature_label label =
                        ms_signature_label(rules, f, text);
                /* Recursion and runs of unnamed frames of one module
                 * collapse: their depth changes from run to run. */
                bool repeat =
                        *n > first && strcmp((*frames)[*n - 1].text, text) == 0;
                if (label == MS_SIGNATURE_IRRELEVANT || repeat ||
                    (label == MS_SIGNATURE_PREFIX && prefixes >= max_frames)) {
                        free(text);
                        continue;
                }
                struct ms_error *err = append_frame(frames, n, capacity, text,
                                                    thread_index, i);
                if (err)
                        return err;
                if (label == MS_SIGNATURE_PREFIX) {
                        prefixes++;
                } else {
                        counted++;
                        prefixes = 0;
                }
        }
        /* Prefix frames combine with the frame after them; with none
         * after, they go, unless they are all there is. */
        if (counted && prefixes)
                truncate_frames(*frames, n, *n - prefixes);
        return NULL;
}

char *ms_signature_join(const char *kind,
                        const struct ms_signature_frame *frames, size_t n)
{
        struct strbuf b = {0};
        sb_puts(&b, kind);
        for (size_t i = 0; i < n; i++) {
                bool other_thread =
                        i > 0 && frames[i].thread != frames[i - 1].thread;
                sb_puts(&b, other_thread ? " || " : " | ");
                sb_puts(&b, frames[i].text);
        }
        if (!n)
                sb_puts(&b, " | (no frames)");
        return sb_finish(&b);
}

void ms_signature_id(const char *s, char id[17])
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                h ^= *p;
                h *= UINT64_C(0x100000001b3);
        }
        snprintf(id, 17, "%016llx", (unsigned long long)h);
}
