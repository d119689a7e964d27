/*
 * Symbol names: demangling (Rust legacy and v0, C++) with libiberty, Rust
 * hash removal, compiler clone suffixes, and the language of a symbol.
 */
#ifndef MIXSTACK_SYMBOLS_SYMBOLS_H
#define MIXSTACK_SYMBOLS_SYMBOLS_H

#include <stddef.h>

#include "mixstack/mixstack.h"

/* Demangle raw into a malloc'd string, without Rust "::h<16 hex>" hashes
 * and without v0 crate disambiguators ("std[a1b2c3]" -> "std").
 * A name that is not mangled comes back as a copy. The clone suffix of
 * raw (".cold", ".constprop.0", ...) is kept at the end of the result;
 * a symbol version ("@@GLIBC_2.34") is dropped. *language is set from the
 * mangling scheme (Rust, C++; C when plain). Returns NULL only when out of
 * memory. */
char *ms_demangle(const char *raw, enum ms_language *language);

/* Length of name without its compiler clone suffixes (".cold",
 * ".constprop.N", ".lto_priv.N", ".part.N", ".isra.N", ".llvm.N", and
 * chains of them) and without a symbol version ("@GLIBC_2.2.5"): the part
 * to match rules against. */
size_t ms_symbol_base_length(const char *name);

#endif /* MIXSTACK_SYMBOLS_SYMBOLS_H */
