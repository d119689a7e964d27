/*
 * str() and repr() of simple objects, full type names and dict lookups,
 * computed from an untrusted target's memory without running any of its
 * code. Used for exception messages and types (exceptions.c).
 *
 * Only what CPython's own str()/repr() of built-in types would print is
 * reproduced (str, int, bool, float, bytes, None, tuple, list, exception
 * instances, classes); objects of any other type show as CPython's default
 * repr, "<type object at 0x...>", since their __repr__ is code we cannot
 * run. Everything is bounded: depth, items per container, digits of an
 * int, bytes of bytes, entries of a dict, and the output itself.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

/* Containers nested deeper than this print as "..." */
#define MAX_DEPTH 3
/* Items shown per tuple or list. */
#define MAX_ITEMS 16
/* Digits (of 15 or 30 bits) of an int printed in decimal; longer ones are
 * described. 128 30-bit digits are about 1150 decimal digits. */
#define MAX_INT_DIGITS 128
/* Bytes of a bytes object shown. */
#define MAX_BYTES 256
/* Entries of a dict searched. */
#define MAX_DICT_ENTRIES 4096
/* Type names (tp_name) longer than this are cut. */
#define MAX_TYPE_NAME 256

/* ------------------------------------------------------------------------
 * The string builder
 * ------------------------------------------------------------------------ */

/* How much of s[0..n) fits in avail bytes without splitting a UTF-8
 * sequence. */
static size_t utf8_fit(const char *s, size_t n, size_t avail)
{
        if (n <= avail)
                return n;
        size_t k = avail;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
                k--;
        return k;
}

void ms_py_sbuf_putn(struct ms_py_sbuf *sb, const char *s, size_t n)
{
        if (sb->no_memory || sb->truncated)
                return;
        size_t avail = sb->limit > sb->len ? sb->limit - sb->len : 0;
        size_t k = utf8_fit(s, n, avail);
        if (k < n)
                sb->truncated = true;
        if (sb->len + k + 1 > sb->cap) {
                size_t cap = MS_MAX(sb->cap * 2, sb->len + k + 1);
                cap = MS_MAX(cap, (size_t)64);
                char *data = realloc(sb->data, cap);
                if (!data) {
                        sb->no_memory = true;
                        return;
                }
                sb->data = data;
                sb->cap = cap;
        }
        memcpy(sb->data + sb->len, s, k);
        sb->len += k;
        sb->data[sb->len] = '\0';
}

void ms_py_sbuf_puts(struct ms_py_sbuf *sb, const char *s)
{
        ms_py_sbuf_putn(sb, s, strlen(s));
}

void ms_py_sbuf_printf(struct ms_py_sbuf *sb, const char *fmt, ...)
{
        char buf[256];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n > 0)
                ms_py_sbuf_putn(sb, buf, MS_MIN((size_t)n, sizeof(buf) - 1));
}

char *ms_py_sbuf_take(struct ms_py_sbuf *sb)
{
        char *s = sb->data;
        if (sb->no_memory) {
                free(s);
                s = NULL;
        } else if (!s) {
                s = strdup("");
        }
        sb->data = NULL;
        sb->len = sb->cap = 0;
        return s;
}

void ms_py_sbuf_deinit(struct ms_py_sbuf *sb)
{
        free(sb->data);
        sb->data = NULL;
        sb->len = sb->cap = 0;
}

/* ------------------------------------------------------------------------
 * What an object is
 * ------------------------------------------------------------------------ */

enum kind {
        K_STR,
        K_INT,
        K_BOOL,
        K_FLOAT,
        K_BYTES,
        K_NONE,
        K_TUPLE,
        K_LIST,
        K_DICT,
        K_EXC,
        K_TYPE,
        K_OTHER,
};

struct objinfo {
        uint64_t type;
        uint64_t flags;
        char tp_name[MAX_TYPE_NAME];
        enum kind kind;
};

/* The kind follows from the type's subclass flags, which CPython keeps
 * for exactly this purpose; float and None have no flag and are told by
 * their type's name. */
static enum kind kind_of(const struct objinfo *oi)
{
        static const struct {
                uint64_t flag;
                enum kind kind;
        } by_flag[] = {
                {MS_PY_TPFLAGS_UNICODE_SUBCLASS, K_STR},
                {MS_PY_TPFLAGS_LONG_SUBCLASS, K_INT},
                {MS_PY_TPFLAGS_TUPLE_SUBCLASS, K_TUPLE},
                {MS_PY_TPFLAGS_LIST_SUBCLASS, K_LIST},
                {MS_PY_TPFLAGS_BYTES_SUBCLASS, K_BYTES},
                {MS_PY_TPFLAGS_BASE_EXC_SUBCLASS, K_EXC},
                {MS_PY_TPFLAGS_TYPE_SUBCLASS, K_TYPE},
        };
        for (size_t i = 0; i < MS_ARRAY_SIZE(by_flag); i++) {
                if (!(oi->flags & by_flag[i].flag))
                        continue;
                if (by_flag[i].kind == K_INT &&
                    strcmp(oi->tp_name, "bool") == 0)
                        return K_BOOL;
                return by_flag[i].kind;
        }
        if (strcmp(oi->tp_name, "float") == 0)
                return K_FLOAT;
        /* Only dict itself: its subclasses have reprs of their own. */
        if ((oi->flags & MS_PY_TPFLAGS_DICT_SUBCLASS) &&
            strcmp(oi->tp_name, "dict") == 0)
                return K_DICT;
        if (strcmp(oi->tp_name, "NoneType") == 0)
                return K_NONE;
        return K_OTHER;
}

static struct ms_error *classify(struct ms_target *target,
                                 const struct ms_py_layout *l, uint64_t object,
                                 struct objinfo *oi)
{
        uint64_t name;
        struct ms_error *err = ms_py_object_type(target, l, object, &oi->type);
        if (!err)
                err = ms_py_read_field(target, oi->type, l->tp_flags,
                                       &oi->flags);
        if (!err)
                err = ms_py_read_field(target, oi->type, l->tp_name, &name);
        char *s = NULL;
        if (!err)
                err = ms_target_read_string(target, name, MAX_TYPE_NAME - 1, &s,
                                            NULL);
        if (err)
                return err;
        snprintf(oi->tp_name, sizeof(oi->tp_name), "%s", s);
        free(s);
        oi->kind = kind_of(oi);
        return NULL;
}

/* ------------------------------------------------------------------------
 * Scalars
 * ------------------------------------------------------------------------ */

/* Digits (base 2^bits, least significant first) in decimal. */
static void put_decimal(struct ms_py_sbuf *sb, const uint32_t *digits, size_t n,
                        unsigned bits, bool negative)
{
        /* Base 10^9 limbs, least significant first: each 30-bit digit
         * needs at most 31/29.9 of a limb. */
        uint32_t *limbs = calloc(2 * n + 2, sizeof(*limbs));
        if (!limbs) {
                sb->no_memory = true;
                return;
        }
        size_t nl = 0;
        uint32_t mask = (1u << bits) - 1;
        for (size_t i = n; i-- > 0;) {
                uint64_t carry = digits[i] & mask;
                for (size_t j = 0; j < nl; j++) {
                        uint64_t t = ((uint64_t)limbs[j] << bits) + carry;
                        limbs[j] = (uint32_t)(t % 1000000000u);
                        carry = t / 1000000000u;
                }
                while (carry) {
                        limbs[nl++] = (uint32_t)(carry % 1000000000u);
                        carry /= 1000000000u;
                }
        }
        if (nl == 0) {
                ms_py_sbuf_puts(sb, "0");
        } else {
                ms_py_sbuf_printf(sb, "%s%u", negative ? "-" : "",
                                  limbs[nl - 1]);
                for (size_t j = nl - 1; j-- > 0;)
                        ms_py_sbuf_printf(sb, "%09u", limbs[j]);
        }
        free(limbs);
}

/* The digit count and sign of an int: 3.12+ pack them in lv_tag (count
 * << shift, sign 0 positive / 1 zero / 2 negative), before ob_size is the
 * signed count. */
static struct ms_error *int_size(struct ms_target *target,
                                 const struct ms_py_layout *l, uint64_t object,
                                 uint64_t *ndigits, bool *negative)
{
        uint64_t tag;
        struct ms_error *err =
                ms_py_read_field(target, object, l->long_tag, &tag);
        if (err)
                return err;
        if (l->long_ndigits_shift >= 0) {
                *ndigits = tag >> l->long_ndigits_shift;
                *negative = (tag & 3) == 2;
        } else {
                int64_t size = (int64_t)tag;
                *negative = size < 0;
                *ndigits = size < 0 ? -(uint64_t)size : (uint64_t)size;
        }
        return NULL;
}

static struct ms_error *append_int(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, bool is_bool,
                                   struct ms_py_sbuf *sb)
{
        uint64_t n;
        bool negative;
        struct ms_error *err = int_size(target, l, object, &n, &negative);
        if (err)
                return err;
        if (l->long_digit_bits != 15 && l->long_digit_bits != 30)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "int digits of %d bits",
                                       l->long_digit_bits);
        if (n > MAX_INT_DIGITS) {
                ms_py_sbuf_printf(sb, "<int of %" PRIu64 " bits>",
                                  n * (uint64_t)l->long_digit_bits);
                return NULL;
        }
        uint32_t digits[MAX_INT_DIGITS];
        err = n ? ms_target_read(target, object + (uint64_t)l->long_digit,
                                 digits, (size_t)n * 4)
                : NULL;
        if (err)
                return err;
        if (is_bool) {
                ms_py_sbuf_puts(sb, n && digits[0] ? "True" : "False");
                return NULL;
        }
        put_decimal(sb, digits, (size_t)n, (unsigned)l->long_digit_bits,
                    negative);
        return NULL;
}

/* repr(float): the shortest text that reads back as the same double, as
 * Python prints it ("1.0", "1e+16", "inf"). */
static struct ms_error *append_float(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     uint64_t object, struct ms_py_sbuf *sb)
{
        double v;
        if (l->float_fval < 0)
                return ms_error_create(MS_ERROR_UNSUPPORTED, "no float layout");
        struct ms_error *err = ms_target_read(
                target, object + (uint64_t)l->float_fval, &v, sizeof(v));
        if (err)
                return err;
        if (v != v) {
                ms_py_sbuf_puts(sb, "nan");
                return NULL;
        }
        if (v - v != 0) {
                ms_py_sbuf_puts(sb, v < 0 ? "-inf" : "inf");
                return NULL;
        }
        char buf[40];
        for (int p = 1; p <= 17; p++) {
                snprintf(buf, sizeof(buf), "%.*g", p, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        ms_py_sbuf_puts(sb, buf);
        if (!strpbrk(buf, ".e"))
                ms_py_sbuf_puts(sb, ".0");
        return NULL;
}

/* Python's choice of quote: ' unless the text has ' and no ". */
static char quote_for(const char *s, size_t n)
{
        bool single = memchr(s, '\'', n) != NULL;
        bool dbl = memchr(s, '"', n) != NULL;
        return single && !dbl ? '"' : '\'';
}

/* One byte of a repr: escapes for the quote, backslash, control
 * characters; bytes >= 0x80 too when escape_high (bytes objects). */
static void put_escaped(struct ms_py_sbuf *sb, unsigned char c, char quote,
                        bool escape_high)
{
        static const char *const named[] = {
                ['\t'] = "\\t",
                ['\n'] = "\\n",
                ['\r'] = "\\r",
        };
        if (c == '\\' || c == (unsigned char)quote) {
                char e[2] = {'\\', (char)c};
                ms_py_sbuf_putn(sb, e, 2);
        } else if (c < MS_ARRAY_SIZE(named) && named[c]) {
                ms_py_sbuf_puts(sb, named[c]);
        } else if (c < 0x20 || c == 0x7f || (escape_high && c >= 0x80)) {
                ms_py_sbuf_printf(sb, "\\x%02x", c);
        } else {
                char ch = (char)c;
                ms_py_sbuf_putn(sb, &ch, 1);
        }
}

/* repr() of UTF-8 text: non-ASCII characters stay, as in Python 3, except
 * the C1 controls U+0080-U+009F, which Python escapes. */
static void put_quoted_text(struct ms_py_sbuf *sb, const char *s, size_t n)
{
        char quote = quote_for(s, n);
        ms_py_sbuf_putn(sb, &quote, 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                unsigned char next = i + 1 < n ? (unsigned char)s[i + 1] : 0;
                if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {
                        ms_py_sbuf_printf(sb, "\\x%02x", next);
                        i++;
                        continue;
                }
                put_escaped(sb, c, quote, false);
        }
        ms_py_sbuf_putn(sb, &quote, 1);
}

static struct ms_error *append_text(struct ms_target *target,
                                    const struct ms_py_layout *l,
                                    uint64_t object, bool quoted,
                                    struct ms_py_sbuf *sb)
{
        char *s;
        struct ms_error *err = ms_py_read_str(target, l, object, &s);
        if (err)
                return err;
        if (quoted)
                put_quoted_text(sb, s, strlen(s));
        else
                ms_py_sbuf_puts(sb, s);
        free(s);
        /* ms_py_read_str cuts long strings: say the text is not whole. */
        uint64_t length = 0;
        struct ms_error *lerr =
                ms_py_read_field(target, object, l->u_length, &length);
        if (!lerr && length > MS_PY_MAX_STRING)
                sb->truncated = true;
        ms_error_destroy(lerr);
        return NULL;
}

static struct ms_error *append_bytes(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     uint64_t object, struct ms_py_sbuf *sb)
{
        uint64_t size;
        struct ms_error *err =
                ms_py_read_field(target, object, l->ob_size, &size);
        if (err)
                return err;
        if ((int64_t)size < 0)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "bytes 0x%" PRIx64 " has bad size",
                                       object);
        unsigned char buf[MAX_BYTES];
        size_t n = (size_t)MS_MIN(size, (uint64_t)MAX_BYTES);
        err = n ? ms_target_read(target, object + (uint64_t)l->bytes_sval, buf,
                                 n)
                : NULL;
        if (err)
                return err;
        char quote = quote_for((const char *)buf, n);
        ms_py_sbuf_putn(sb, "b", 1);
        ms_py_sbuf_putn(sb, &quote, 1);
        for (size_t i = 0; i < n; i++)
                put_escaped(sb, buf[i], quote, true);
        if (n < size)
                ms_py_sbuf_puts(sb, "...");
        ms_py_sbuf_putn(sb, &quote, 1);
        return NULL;
}

/* ------------------------------------------------------------------------
 * Containers, exceptions, everything else
 * ------------------------------------------------------------------------ */

static struct ms_error *append_repr(struct ms_target *target,
                                    const struct ms_py_layout *l,
                                    uint64_t object, struct ms_py_sbuf *sb,
                                    int depth);

/* The item pointers of a tuple (inline) or list (a separate array), at
 * most MAX_ITEMS of them; *total is the real length. */
static struct ms_error *seq_items(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  bool is_list, uint64_t items[MAX_ITEMS],
                                  size_t *n, uint64_t *total)
{
        struct ms_error *err =
                ms_py_read_field(target, object, l->ob_size, total);
        if (err)
                return err;
        if ((int64_t)*total < 0)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "sequence 0x%" PRIx64 " has bad size",
                                       object);
        *n = (size_t)MS_MIN(*total, (uint64_t)MAX_ITEMS);
        uint64_t array = object + (uint64_t)l->tuple_item;
        if (is_list)
                err = ms_py_read_field(target, object, l->list_item, &array);
        if (!err && *n)
                err = ms_target_read(target, array, items, *n * sizeof(*items));
        return err;
}

static struct ms_error *append_seq(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, bool is_list,
                                   struct ms_py_sbuf *sb, int depth)
{
        uint64_t items[MAX_ITEMS], total;
        size_t n;
        struct ms_error *err =
                seq_items(target, l, object, is_list, items, &n, &total);
        if (err)
                return err;
        ms_py_sbuf_puts(sb, is_list ? "[" : "(");
        for (size_t i = 0; i < n && !sb->truncated; i++) {
                if (i)
                        ms_py_sbuf_puts(sb, ", ");
                err = append_repr(target, l, items[i], sb, depth + 1);
                if (err)
                        return err;
        }
        if (n < total)
                ms_py_sbuf_puts(sb, ", ...");
        if (!is_list && total == 1)
                ms_py_sbuf_puts(sb, ",");
        ms_py_sbuf_puts(sb, is_list ? "]" : ")");
        return NULL;
}

static struct ms_error *append_dict(struct ms_target *target,
                                    const struct ms_py_layout *l, uint64_t dict,
                                    struct ms_py_sbuf *sb, int depth);

/* "module.QualName" without the "builtins." that repr() leaves out. */
static struct ms_error *append_type_name(struct ms_target *target,
                                         const struct ms_py_layout *l,
                                         uint64_t type, struct ms_py_sbuf *sb)
{
        char *name;
        struct ms_error *err = ms_py_type_fullname(target, l, type, &name);
        if (err)
                return err;
        const char *shown = name;
        if (strncmp(shown, "builtins.", 9) == 0)
                shown += 9;
        ms_py_sbuf_puts(sb, shown);
        free(name);
        return NULL;
}

/* repr(exception): "ValueError('x')", the short type name then the args. */
static struct ms_error *append_exc_repr(struct ms_target *target,
                                        const struct ms_py_layout *l,
                                        uint64_t object,
                                        const struct objinfo *oi,
                                        struct ms_py_sbuf *sb, int depth)
{
        const char *dot = strrchr(oi->tp_name, '.');
        ms_py_sbuf_puts(sb, dot ? dot + 1 : oi->tp_name);
        uint64_t args, items[MAX_ITEMS], total;
        size_t n;
        struct ms_error *err =
                ms_py_read_field(target, object, l->exc_args, &args);
        if (!err)
                err = seq_items(target, l, args, false, items, &n, &total);
        if (err)
                return err;
        ms_py_sbuf_puts(sb, "(");
        for (size_t i = 0; i < n && !err; i++) {
                if (i)
                        ms_py_sbuf_puts(sb, ", ");
                err = append_repr(target, l, items[i], sb, depth + 1);
        }
        ms_py_sbuf_puts(sb, n < total ? ", ...)" : ")");
        return err;
}

static struct ms_error *append_repr_of(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       uint64_t object,
                                       const struct objinfo *oi,
                                       struct ms_py_sbuf *sb, int depth)
{
        switch (oi->kind) {
        case K_STR:
                return append_text(target, l, object, true, sb);
        case K_INT:
        case K_BOOL:
                return append_int(target, l, object, oi->kind == K_BOOL, sb);
        case K_FLOAT:
                return append_float(target, l, object, sb);
        case K_BYTES:
                return append_bytes(target, l, object, sb);
        case K_NONE:
                ms_py_sbuf_puts(sb, "None");
                return NULL;
        case K_TUPLE:
        case K_LIST:
                if (depth >= MAX_DEPTH) {
                        ms_py_sbuf_puts(sb,
                                        oi->kind == K_LIST ? "[...]" : "(...)");
                        return NULL;
                }
                return append_seq(target, l, object, oi->kind == K_LIST, sb,
                                  depth);
        case K_DICT:
                if (depth >= MAX_DEPTH) {
                        ms_py_sbuf_puts(sb, "{...}");
                        return NULL;
                }
                return append_dict(target, l, object, sb, depth);
        case K_EXC:
                if (depth >= MAX_DEPTH)
                        break;
                return append_exc_repr(target, l, object, oi, sb, depth);
        case K_TYPE: {
                ms_py_sbuf_puts(sb, "<class '");
                struct ms_error *err = append_type_name(target, l, object, sb);
                ms_py_sbuf_puts(sb, "'>");
                return err;
        }
        case K_OTHER:
                break;
        }
        /* object.__repr__ */
        ms_py_sbuf_puts(sb, "<");
        struct ms_error *err = append_type_name(target, l, oi->type, sb);
        if (err) {
                ms_error_destroy(err);
                ms_py_sbuf_puts(sb, oi->tp_name);
        }
        ms_py_sbuf_printf(sb, " object at 0x%" PRIx64 ">", object);
        return NULL;
}

/* Nested objects that cannot be read are shown as such; only the top
 * level returns the error. */
static struct ms_error *nested(struct ms_error *err, uint64_t object,
                               struct ms_py_sbuf *sb, int depth)
{
        if (!err || depth == 0 || err->code == MS_ERROR_NO_MEMORY)
                return err;
        ms_error_destroy(err);
        ms_py_sbuf_printf(sb, "<unreadable object at 0x%" PRIx64 ">", object);
        return NULL;
}

static struct ms_error *append_repr(struct ms_target *target,
                                    const struct ms_py_layout *l,
                                    uint64_t object, struct ms_py_sbuf *sb,
                                    int depth)
{
        struct objinfo oi;
        struct ms_error *err = classify(target, l, object, &oi);
        if (!err)
                err = append_repr_of(target, l, object, &oi, sb, depth);
        return nested(err, object, sb, depth);
}

struct ms_error *ms_py_append_repr(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, struct ms_py_sbuf *sb)
{
        return append_repr(target, l, object, sb, 0);
}

static struct ms_error *append_str(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, struct ms_py_sbuf *sb,
                                   int depth);

static struct ms_error *append_args_str(struct ms_target *target,
                                        const struct ms_py_layout *l,
                                        uint64_t args, bool single,
                                        bool repr_single, struct ms_py_sbuf *sb,
                                        int depth)
{
        if (single)
                return repr_single ? append_repr(target, l, args, sb, depth)
                                   : append_str(target, l, args, sb, depth);
        uint64_t items[MAX_ITEMS], total;
        size_t n;
        struct ms_error *err =
                seq_items(target, l, args, false, items, &n, &total);
        if (err || total == 0)
                return err;
        if (total > 1)
                return append_repr(target, l, args, sb, depth);
        return append_args_str(target, l, items[0], true, repr_single, sb,
                               depth);
}

/* str(): text as is, an exception as BaseException.__str__ of its args
 * (an exception among its own args ends at MAX_DEPTH), the rest as repr. */
static struct ms_error *append_str(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, struct ms_py_sbuf *sb,
                                   int depth)
{
        struct objinfo oi;
        struct ms_error *err = classify(target, l, object, &oi);
        if (!err && oi.kind == K_STR)
                return append_text(target, l, object, false, sb);
        if (!err && oi.kind == K_EXC && depth < MAX_DEPTH) {
                /* A nested exception's own __str__ (KeyError's) is not
                 * followed. */
                uint64_t args;
                err = ms_py_read_field(target, object, l->exc_args, &args);
                if (!err)
                        err = append_args_str(target, l, args, false, false, sb,
                                              depth + 1);
                return nested(err, object, sb, depth);
        }
        if (!err)
                err = append_repr_of(target, l, object, &oi, sb, depth);
        return nested(err, object, sb, depth);
}

struct ms_error *ms_py_append_args_str(struct ms_target *target,
                                       const struct ms_py_layout *l,
                                       uint64_t args, bool single,
                                       bool repr_single, struct ms_py_sbuf *sb)
{
        return append_args_str(target, l, args, single, repr_single, sb, 0);
}

struct ms_error *ms_py_append_str(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  struct ms_py_sbuf *sb)
{
        return append_str(target, l, object, sb, 0);
}

/* ------------------------------------------------------------------------
 * Dicts and type names
 * ------------------------------------------------------------------------ */

/* Where a combined dict's entries are and how to read them. */
struct dict_entries {
        uint64_t address;
        uint64_t n;
        int32_t size, key, value;
};

/* 3.8-3.10: dk_size slots with an index table of 1-8 bytes per slot. */
static struct ms_error *entries_by_size(struct ms_target *target,
                                        const struct ms_py_layout *l,
                                        uint64_t keys, struct dict_entries *e)
{
        uint64_t slots;
        struct ms_error *err =
                ms_py_read_field(target, keys, l->dk_size, &slots);
        if (err)
                return err;
        if (slots < 8 || slots > (1u << 24) || (slots & (slots - 1)))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "dict keys 0x%" PRIx64 " have %" PRIu64
                                       " slots",
                                       keys, slots);
        unsigned ix = slots <= 0xff ? 1 : slots <= 0xffff ? 2 : 4;
        e->address = keys + (uint64_t)l->dk_indices + slots * ix;
        e->size = l->dk_entry_size;
        e->key = l->dk_entry_key;
        e->value = l->dk_entry_value;
        return NULL;
}

/* 3.11+: sizes as log2; unicode-keyed tables have shorter entries. */
static struct ms_error *entries_by_log2(struct ms_target *target,
                                        const struct ms_py_layout *l,
                                        uint64_t keys, struct dict_entries *e)
{
        uint8_t head[16];
        int32_t last = MS_MAX(l->dk_log2_size,
                              MS_MAX(l->dk_log2_index_bytes, l->dk_kind));
        if (l->dk_log2_size < 0 || l->dk_log2_index_bytes < 0 ||
            l->dk_kind < 0 || last >= (int32_t)sizeof(head))
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "no dict keys layout");
        struct ms_error *err =
                ms_target_read(target, keys, head, (size_t)last + 1);
        if (err)
                return err;
        unsigned log2 = head[l->dk_log2_size];
        unsigned log2_ix = head[l->dk_log2_index_bytes];
        if (log2 < 3 || log2 > 24 || log2_ix < log2 || log2_ix > log2 + 3)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "dict keys 0x%" PRIx64 " are corrupt",
                                       keys);
        bool general = head[l->dk_kind] == 0;
        e->address = keys + (uint64_t)l->dk_indices + (1ULL << log2_ix);
        e->size = general ? l->dk_entry_size : l->dk_uentry_size;
        e->key = general ? l->dk_entry_key : l->dk_uentry_key;
        e->value = general ? l->dk_entry_value : l->dk_uentry_value;
        return NULL;
}

static struct ms_error *dict_entries(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     uint64_t dict, struct dict_entries *e)
{
        uint64_t flags, keys, values = 0, n;
        struct ms_error *err = ms_py_type_flags(target, l, dict, &flags);
        if (!err && !(flags & MS_PY_TPFLAGS_DICT_SUBCLASS))
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "0x%" PRIx64 " is not a dict", dict);
        if (!err)
                err = ms_py_read_field(target, dict, l->dict_keys, &keys);
        if (!err && l->dict_values >= 0)
                err = ms_py_read_field(target, dict, l->dict_values, &values);
        if (err)
                return err;
        /* Split tables (instance dicts sharing keys) keep the values
         * elsewhere; the dicts read here (classes') are never split. */
        if (values)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "split dict 0x%" PRIx64, dict);
        if (!ms_py_plausible_pointer(keys))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "dict 0x%" PRIx64 " has bad keys", dict);
        err = l->dk_size >= 0 ? entries_by_size(target, l, keys, e)
                              : entries_by_log2(target, l, keys, e);
        if (!err)
                err = ms_py_read_field(target, keys, l->dk_nentries, &n);
        if (err)
                return err;
        if (e->size <= 0 || e->key < 0 || e->value < 0 || n > MAX_DICT_ENTRIES)
                return ms_error_create(
                        MS_ERROR_BAD_INPUT,
                        "dict 0x%" PRIx64 " has %" PRIu64 " entries", dict, n);
        e->n = n;
        return NULL;
}

/* repr(dict) of a combined table: "{key: value, ...}", at most MAX_ITEMS
 * entries. Split tables (instance dicts) come out as "{...}". */
static struct ms_error *append_dict(struct ms_target *target,
                                    const struct ms_py_layout *l, uint64_t dict,
                                    struct ms_py_sbuf *sb, int depth)
{
        struct dict_entries e = {0};
        struct ms_error *err = dict_entries(target, l, dict, &e);
        if (err && err->code == MS_ERROR_UNSUPPORTED) {
                ms_error_destroy(err);
                ms_py_sbuf_puts(sb, "{...}");
                return NULL;
        }
        if (err)
                return err;
        ms_py_sbuf_puts(sb, "{");
        size_t shown = 0;
        for (uint64_t i = 0; i < e.n && !err && !sb->no_memory; i++) {
                uint64_t entry = e.address + i * (uint64_t)e.size, k, v;
                err = ms_target_read_u64(target, entry + (uint64_t)e.key, &k);
                if (!err)
                        err = ms_target_read_u64(target,
                                                 entry + (uint64_t)e.value, &v);
                if (err || !k || !v)
                        continue;
                if (shown == MAX_ITEMS) {
                        ms_py_sbuf_puts(sb, ", ...");
                        break;
                }
                if (shown++)
                        ms_py_sbuf_puts(sb, ", ");
                err = append_repr(target, l, k, sb, depth + 1);
                ms_py_sbuf_puts(sb, ": ");
                if (!err)
                        err = append_repr(target, l, v, sb, depth + 1);
        }
        ms_py_sbuf_puts(sb, "}");
        return err;
}

/* Whether the object at address is the str `s` (ASCII). */
static bool str_equals(struct ms_target *target, const struct ms_py_layout *l,
                       uint64_t object, const char *s, struct ms_error **err)
{
        uint64_t length;
        struct ms_error *e =
                ms_py_read_field(target, object, l->u_length, &length);
        if (e || length != strlen(s)) {
                ms_error_destroy(e);
                return false;
        }
        char *text;
        e = ms_py_read_str(target, l, object, &text);
        if (e) {
                if (e->code == MS_ERROR_NO_MEMORY)
                        *err = e;
                else
                        ms_error_destroy(e);
                return false;
        }
        bool same = strcmp(text, s) == 0;
        free(text);
        return same;
}

struct ms_error *ms_py_dict_pairs(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t dict,
                                  size_t max, uint64_t **keys,
                                  uint64_t **values, size_t *n)
{
        struct dict_entries e = {0};
        *keys = *values = NULL;
        *n = 0;
        struct ms_error *err = dict_entries(target, l, dict, &e);
        if (err)
                return err;
        size_t size = (size_t)e.n * (size_t)e.size;
        uint8_t *buf = malloc(size ? size : 1);
        *keys = calloc(e.n ? e.n : 1, sizeof(**keys));
        *values = calloc(e.n ? e.n : 1, sizeof(**values));
        if (!buf || !*keys || !*values) {
                free(buf);
                free(*keys);
                free(*values);
                *keys = *values = NULL;
                return &ms_error_no_memory;
        }
        err = size ? ms_target_read(target, e.address, buf, size) : NULL;
        for (uint64_t i = 0; !err && i < e.n && *n < max; i++) {
                uint64_t k, v;
                memcpy(&k, buf + i * (uint64_t)e.size + (uint64_t)e.key, 8);
                memcpy(&v, buf + i * (uint64_t)e.size + (uint64_t)e.value, 8);
                if (!k || !v)
                        continue; /* a deleted entry */
                (*keys)[*n] = k;
                (*values)[*n] = v;
                (*n)++;
        }
        free(buf);
        return err;
}

struct ms_error *ms_py_dict_get(struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t dict,
                                const char *key, uint64_t *value)
{
        uint64_t *keys, *values;
        size_t n;
        struct ms_error *err = ms_py_dict_pairs(
                target, l, dict, MAX_DICT_ENTRIES, &keys, &values, &n);
        bool found = false;
        for (size_t i = 0; !err && !found && i < n; i++) {
                found = str_equals(target, l, keys[i], key, &err);
                if (found)
                        *value = values[i];
        }
        free(keys);
        free(values);
        if (err || found)
                return err;
        return ms_error_create(MS_ERROR_NOT_FOUND, "no %s in dict 0x%" PRIx64,
                               key, dict);
}

/* A heap type's module: its dict's __module__ (type.__module__ does the
 * same), "builtins" when there is none. */
static struct ms_error *heap_type_module(struct ms_target *target,
                                         const struct ms_py_layout *l,
                                         uint64_t type, char **ret)
{
        uint64_t dict, module;
        struct ms_error *err =
                ms_py_read_field(target, type, l->tp_dict, &dict);
        if (!err)
                err = ms_py_dict_get(target, l, dict, "__module__", &module);
        if (err && err->code == MS_ERROR_NOT_FOUND) {
                ms_error_destroy(err);
                *ret = strdup("builtins");
                return *ret ? NULL : &ms_error_no_memory;
        }
        return err ? err : ms_py_read_str(target, l, module, ret);
}

static struct ms_error *join_name(const char *module, const char *name,
                                  char **ret)
{
        if (asprintf(ret, "%s.%s", module, name) < 0) {
                *ret = NULL;
                return &ms_error_no_memory;
        }
        return NULL;
}

struct ms_error *ms_py_type_fullname(struct ms_target *target,
                                     const struct ms_py_layout *l,
                                     uint64_t type, char **ret)
{
        uint64_t meta_flags, flags, name_ptr;
        /* A type's type (type or a metaclass) has the type flag. */
        struct ms_error *err = ms_py_type_flags(target, l, type, &meta_flags);
        if (!err && !(meta_flags & MS_PY_TPFLAGS_TYPE_SUBCLASS))
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "0x%" PRIx64 " is not a type", type);
        if (!err)
                err = ms_py_read_field(target, type, l->tp_flags, &flags);
        if (!err)
                err = ms_py_read_field(target, type, l->tp_name, &name_ptr);
        char *name = NULL;
        if (!err)
                err = ms_target_read_string(target, name_ptr, MAX_TYPE_NAME - 1,
                                            &name, NULL);
        if (err)
                return err;
        if (!(flags & MS_PY_TPFLAGS_HEAPTYPE)) {
                /* Static types: "module.Name" in tp_name, or a builtin. */
                if (strrchr(name, '.')) {
                        *ret = name;
                        return NULL;
                }
                err = join_name("builtins", name, ret);
                free(name);
                return err;
        }
        char *module = NULL, *qualname = NULL;
        uint64_t q = 0;
        struct ms_error *qerr =
                ms_py_read_field(target, type, l->ht_qualname, &q);
        if (!qerr)
                qerr = ms_py_read_str(target, l, q, &qualname);
        if (qerr && qerr->code == MS_ERROR_NO_MEMORY)
                err = qerr;
        else
                ms_error_destroy(qerr);
        if (!err)
                err = heap_type_module(target, l, type, &module);
        if (!err)
                err = join_name(module, qualname ? qualname : name, ret);
        free(module);
        free(qualname);
        free(name);
        return err;
}
