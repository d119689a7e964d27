/*
 * Symbol demangling with libiberty. Rust comes in two manglings that can
 * share one binary (std v0, user crates legacy up to Rust 1.96), C++ is
 * Itanium, and compilers append clone suffixes to all of them.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <demangle.h>

#include "base/util.h"
#include "symbols/symbols.h"

/* Longer names are copied, not demangled: a symbol table is untrusted and
 * the demangler's work grows with the input. */
#define MAX_DEMANGLE_LENGTH 16384

/* Clone suffix words that are followed by ".N" ("foo.constprop.0"). */
static const char *const numbered_suffixes[] = {
        "constprop", "lto_priv", "part", "isra", "llvm", "cold", "clone",
};

/* Clone suffix words that stand alone ("foo.cold"). */
static const char *const plain_suffixes[] = {
        "cold",
        "localalias",
        "lto_priv",
};

static bool all_digits(const char *s, size_t len)
{
        if (!len)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

static bool word_in(const char *s, size_t len, const char *const *words,
                    size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (strlen(words[i]) == len && memcmp(s, words[i], len) == 0)
                        return true;
        }
        return false;
}

/* The last '.' in name[0, len), or NULL. */
static const char *last_dot(const char *name, size_t len)
{
        for (size_t i = len; i > 0; i--) {
                if (name[i - 1] == '.')
                        return &name[i - 1];
        }
        return NULL;
}

/* Length of name[0, len) without its last clone suffix component, or len
 * when it ends in none. A bare ".N" counts: LLVM and GCC number duplicate
 * local symbols that way ("….0.llvm.123"). */
static size_t strip_one_suffix(const char *name, size_t len)
{
        const char *dot = last_dot(name, len);
        /* A leading dot is no suffix, and the base must not become empty. */
        if (!dot || dot == name)
                return len;
        const char *tail = dot + 1;
        size_t tail_len = name + len - tail;
        if (all_digits(tail, tail_len)) {
                const char *prev = last_dot(name, dot - name);
                if (prev && prev != name &&
                    word_in(prev + 1, dot - prev - 1, numbered_suffixes,
                            MS_ARRAY_SIZE(numbered_suffixes)))
                        return prev - name;
                return dot - name;
        }
        if (word_in(tail, tail_len, plain_suffixes,
                    MS_ARRAY_SIZE(plain_suffixes)))
                return dot - name;
        return len;
}

/* Length of name without a symbol version ("memcpy@@GLIBC_2.14",
 * "read@GLIBC_2.2.5"): mangled names never contain '@'. */
static size_t unversioned_length(const char *name)
{
        const char *at = strchr(name, '@');
        return at && at != name ? (size_t)(at - name) : strlen(name);
}

size_t ms_symbol_base_length(const char *name)
{
        size_t len = unversioned_length(name);
        /* Each round removes at least one character, so this ends. */
        for (;;) {
                size_t shorter = strip_one_suffix(name, len);
                if (shorter == len)
                        return len;
                len = shorter;
        }
}

/* "_ZN" ... "17h" <16 hex digits> "E": the legacy Rust hash that tells
 * legacy Rust apart from C++. */
static bool is_legacy_rust(const char *name, size_t len)
{
        static const size_t hash_len = 3 + 16 + 1;
        if (len < 3 + hash_len || memcmp(name, "_ZN", 3) != 0)
                return false;
        const char *h = name + len - hash_len;
        if (memcmp(h, "17h", 3) != 0 || h[hash_len - 1] != 'E')
                return false;
        for (size_t i = 3; i < hash_len - 1; i++) {
                if (!isxdigit((unsigned char)h[i]))
                        return false;
        }
        return true;
}

/* "_R", an optional decimal encoding version, then a path tag. */
static bool is_v0_rust(const char *name, size_t len)
{
        if (len < 3 || name[0] != '_' || name[1] != 'R')
                return false;
        size_t i = 2;
        while (i < len && isdigit((unsigned char)name[i]))
                i++;
        return i < len && isupper((unsigned char)name[i]);
}

static enum ms_language symbol_language(const char *name, size_t len)
{
        if (is_legacy_rust(name, len) || is_v0_rust(name, len))
                return MS_LANGUAGE_RUST;
        if (len > 2 && name[0] == '_' && name[1] == 'Z')
                return MS_LANGUAGE_CXX;
        return MS_LANGUAGE_C;
}

/* Whether s[0, len) is a v0 crate disambiguator: lowercase hex digits. */
static bool is_disambiguator(const char *s, size_t len)
{
        if (!len || len > 16)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
                        return false;
        }
        return true;
}

/* Remove "[<hex>]" right after an identifier ("std[a1b2c3d4]::x" ->
 * "std::x"), in place. libiberty leaves them out unless DMGL_VERBOSE, so
 * this only guards against demanglers that print them. Array and slice
 * types ("[u8; 4]", "&[u8]") never follow an identifier character. */
static void strip_disambiguators(char *s)
{
        char *out = s;
        for (char *in = s; *in;) {
                if (*in == '[' && out > s &&
                    (isalnum((unsigned char)out[-1]) || out[-1] == '_')) {
                        char *close = strchr(in, ']');
                        if (close && is_disambiguator(in + 1, close - in - 1)) {
                                in = close + 1;
                                continue;
                        }
                }
                *out++ = *in++;
        }
        *out = '\0';
}

/* Demangle base (already without clone suffix), or NULL when it is not a
 * name libiberty understands. */
static char *demangle_base(const char *base, enum ms_language language)
{
        if (language == MS_LANGUAGE_RUST) {
                /* Without DMGL_VERBOSE libiberty drops the legacy hash and
                 * the v0 disambiguators. */
                char *s = cplus_demangle(base, DMGL_RUST);
                if (s)
                        strip_disambiguators(s);
                return s;
        }
        if (language == MS_LANGUAGE_CXX)
                return cplus_demangle(base,
                                      DMGL_GNU_V3 | DMGL_PARAMS | DMGL_ANSI);
        return NULL;
}

char *ms_demangle(const char *raw, enum ms_language *language)
{
        if (!raw) {
                *language = MS_LANGUAGE_UNKNOWN;
                return strdup("");
        }
        size_t name_len = unversioned_length(raw);
        size_t base_len = ms_symbol_base_length(raw);
        *language = symbol_language(raw, base_len);
        char *demangled = NULL;
        if (*language != MS_LANGUAGE_C && name_len <= MAX_DEMANGLE_LENGTH) {
                char *base = strndup(raw, base_len);
                if (!base)
                        return NULL;
                demangled = demangle_base(base, *language);
                free(base);
        }
        if (!demangled)
                return strndup(raw, name_len);

        /* The clone suffix, as written, after the demangled name. */
        size_t len = strlen(demangled), suffix_len = name_len - base_len;
        char *out = realloc(demangled, len + suffix_len + 1);
        if (!out) {
                free(demangled);
                return NULL;
        }
        memcpy(out + len, raw + base_len, suffix_len);
        out[len + suffix_len] = '\0';
        return out;
}
