/* Demangling: fixed strings, then real symbols of the native demo built with
 * legacy and v0 mangling (skipped without rustc). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbols/symbols.h"
#include "unit.h"

static void check(const char *raw, const char *want, enum ms_language lang)
{
        enum ms_language got_lang = MS_LANGUAGE_UNKNOWN;
        char *got = ms_demangle(raw, &got_lang);
        if (!got || strcmp(got, want) != 0 || got_lang != lang)
                fprintf(stderr, "  for %s (language %d, want %d)\n", raw,
                        (int)got_lang, (int)lang);
        CHECK_STR(got, want);
        CHECK(got_lang == lang);
        free(got);
}

static void check_base(const char *name, size_t want)
{
        size_t got = ms_symbol_base_length(name);
        if (got != want)
                fprintf(stderr, "  base of %s: %zu, want %zu\n", name, got,
                        want);
        CHECK(got == want);
}

static void test_fixed(void)
{
        enum ms_language C = MS_LANGUAGE_C, X = MS_LANGUAGE_CXX,
                         R = MS_LANGUAGE_RUST;
        /* Legacy Rust: hash gone, escapes decoded. */
        check("_ZN3foo3bar17h0123456789abcdefE", "foo::bar", R);
        check("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$"
              "17h92315db49301f251E",
              "std::rt::lang_start::{{closure}}", R);
        check("_ZN3gen16Wrapper$LT$T$GT$4show17hd29ef5f20c69da9cE",
              "gen::Wrapper<T>::show", R);
        /* v0: no disambiguators. */
        check("_RNvCs1234_7___rustc17rust_begin_unwind",
              "__rustc::rust_begin_unwind", R);
        check("_RNvNtCsjrHSEGnQ3l9_3std7process5abort", "std::process::abort",
              R);
        check("_RNvMCsgwiwt6F3Sso_3genINtB2_7WrapperINtNtCslNYArtu3iFV_5alloc"
              "3vec3VecThReEEE4showB2_",
              "<gen::Wrapper<alloc::vec::Vec<(u8, &str)>>>::show", R);
        /* C++ as is, with parameters. */
        check("_ZNSt6vectorIiSaIiEE9push_backERKi",
              "std::vector<int, std::allocator<int> >::push_back(int const&)",
              X);
        check("_Z3fooi", "foo(int)", X);
        /* Plain C, and things that only look mangled. */
        check("main", "main", C);
        check("_start", "_start", C);
        check("_Z", "_Z", C);
        check("_R", "_R", C);
        check("_Rfoo", "_Rfoo", C);
        check("_ZN3foo3barE_garbage", "_ZN3foo3barE_garbage", X);
        /* Clone suffixes stay as written after the demangled name. */
        check("_PyEval_EvalFrameDefault.cold", "_PyEval_EvalFrameDefault.cold",
              C);
        check("take_gil.lto_priv.0", "take_gil.lto_priv.0", C);
        check("_ZN3foo3bar17h0123456789abcdefE.llvm.42", "foo::bar.llvm.42", R);
        check("_ZN3gen16Wrapper$LT$T$GT$4show17hd29ef5f20c69da9cE.0.llvm."
              "9875488600633596104",
              "gen::Wrapper<T>::show.0.llvm.9875488600633596104", R);
        check("_RNvCs1234_7___rustc17rust_begin_unwind.llvm.123",
              "__rustc::rust_begin_unwind.llvm.123", R);
        check("_Z3fooi.constprop.0.isra.0", "foo(int).constprop.0.isra.0", X);
        check("_ZNSt6vectorIiSaIiEE9push_backERKi.cold",
              "std::vector<int, std::allocator<int> >::push_back(int const&)"
              ".cold",
              X);
        /* Symbol versions go. */
        check("__libc_start_main@@GLIBC_2.34", "__libc_start_main", C);
        check("read@GLIBC_2.2.5", "read", C);
        check("_ZN3foo3bar17h0123456789abcdefE.cold@@V1", "foo::bar.cold", R);
        check("@weird", "@weird", C);
        /* NULL is "no symbol". */
        enum ms_language lang = MS_LANGUAGE_C;
        char *s = ms_demangle(NULL, &lang);
        CHECK(s && lang == MS_LANGUAGE_UNKNOWN);
        free(s);
}

static void test_base_length(void)
{
        check_base("_PyEval_EvalFrameDefault.cold", 24);
        check_base("take_gil.lto_priv.0", 8);
        check_base("foo.constprop.0.isra.0", 3);
        check_base("foo.part.1", 3);
        check_base("foo.cold.12", 3);
        check_base("foo.isra.0.cold", 3);
        check_base("_ZN3foo3bar17h0123456789abcdefE.llvm.42", 31);
        check_base("_ZN3foo3bar17h0123456789abcdefE.0.llvm.9875", 31);
        check_base("main", 4);
        check_base("__libc_start_main@@GLIBC_2.34", 17);
        check_base("foo.cold@GLIBC_2.2.5", 3);
        check_base("", 0);
        check_base(".cold", 5);
        check_base("a.b", 3); /* not a clone suffix */
        /* Legacy Rust uses ".." for "::" inside the mangled name. */
        check_base("_ZN4core3ptr13drop_in_place$LT$std..rt..x$GT$"
                   "17h0123456789abcdefE",
                   strlen("_ZN4core3ptr13drop_in_place$LT$std..rt..x$GT$"
                          "17h0123456789abcdefE"));
}

/* Path of a native-demo binary, built on demand; NULL to skip. */
static char *native_demo(const char *name)
{
        const char *src = getenv("MIXSTACK_SOURCE_DIR");
        if (!src)
                return NULL;
        if (system("command -v rustc >/dev/null 2>&1") != 0)
                return NULL;
        char *cmd = NULL, *path = NULL;
        if (asprintf(&cmd, "'%s/scripts/build-native-demo' >/dev/null", src) <
            0)
                return NULL;
        int status = system(cmd);
        free(cmd);
        if (status != 0)
                return NULL;
        if (asprintf(&path, "%s/build/native-demo/%s", src, name) < 0)
                return NULL;
        return path;
}

/* "[<hex>]" after an identifier: a v0 crate disambiguator left in. */
static bool has_disambiguator(const char *s)
{
        for (const char *p = strchr(s, '['); p; p = strchr(p + 1, '[')) {
                size_t n = strspn(p + 1, "0123456789abcdef");
                if (p > s && p[-1] != '<' && p[-1] != '&' && p[-1] != ' ' &&
                    p[-1] != '(' && n > 0 && p[1 + n] == ']')
                        return true;
        }
        return false;
}

/* Demangle every symbol of binary whose raw name contains needle, and
 * check that the one that demangles to want exists. Every Rust name must
 * come out without hash or disambiguator. */
static void check_binary(const char *binary, const char *want)
{
        char *cmd = NULL;
        if (asprintf(&cmd, "nm '%s'", binary) < 0)
                return;
        FILE *nm = popen(cmd, "r");
        free(cmd);
        CHECK(nm != NULL);
        if (!nm)
                return;
        char line[8192];
        int found = 0, rust = 0, bad = 0;
        while (fgets(line, sizeof(line), nm)) {
                line[strcspn(line, "\n")] = '\0';
                char *raw = strrchr(line, ' ');
                if (!raw)
                        continue;
                raw++;
                enum ms_language lang;
                char *d = ms_demangle(raw, &lang);
                if (!d)
                        continue;
                if (lang == MS_LANGUAGE_RUST) {
                        rust++;
                        if (strstr(d, "::h") && strlen(strstr(d, "::h")) == 19)
                                bad++;
                        if (has_disambiguator(d)) {
                                fprintf(stderr, "  disambiguator: %s\n", d);
                                bad++;
                        }
                        if (strcmp(d, raw) == 0) {
                                fprintf(stderr, "  not demangled: %s\n", raw);
                                bad++;
                        }
                }
                if (strcmp(d, want) == 0)
                        found++;
                free(d);
        }
        pclose(nm);
        if (!found)
                fprintf(stderr, "  %s: no symbol demangles to %s\n", binary,
                        want);
        CHECK(found > 0);
        CHECK(rust > 100);
        CHECK(bad == 0);
}

static void test_real_symbols(void)
{
        char *legacy = native_demo("native-demo");
        char *v0 = native_demo("native-demo-v0");
        if (!legacy || !v0) {
                free(legacy);
                free(v0);
                printf("real symbols skipped (no rustc or no source dir)\n");
                return;
        }
        /* User crate legacy, std v0, in one binary. */
        check_binary(legacy, "demo::closure_level");
        check_binary(legacy, "demo::closure_level::{{closure}}");
        check_binary(legacy, "demo::generic_level");
        check_binary(legacy, "std::process::abort");
        check_binary(legacy, "__rustc::rust_begin_unwind");
        check_binary(legacy, "std::panicking::panic_with_hook");
        /* Everything v0. */
        check_binary(v0, "demo::closure_level");
        check_binary(v0, "demo::closure_level::{closure#0}");
        check_binary(v0, "demo::generic_level::<u8>");
        check_binary(v0, "demo::generic_level::<i32>");
        check_binary(v0, "demo::crash_generic::<i32>::{closure#0}");
        check_binary(v0, "__rustc::rust_begin_unwind");
        free(legacy);
        free(v0);
}

int main(void)
{
        test_fixed();
        test_base_length();
        test_real_symbols();
        return unit_finish();
}
