/* Reading CPython objects out of an untrusted target: blobs, strings,
 * bytes, type names. */
#include <stdlib.h>
#include <string.h>

#include "cpython/internal.h"

struct ms_error *ms_py_blob_read(struct ms_target *target, uint64_t address,
                                 size_t size, size_t min_size,
                                 struct ms_py_blob *blob)
{
        if (size > sizeof(blob->data))
                size = sizeof(blob->data);
        blob->address = address;
        blob->size = 0;
        struct ms_error *err =
                ms_target_read(target, address, blob->data, size);
        if (!err) {
                blob->size = size;
                return NULL;
        }
        /* A struct at the end of a mapping: keep the part before the next
         * page boundary, which is all a struct that small can span. */
        uint64_t page_end = (address | 4095) + 1;
        size_t part = (size_t)MS_MIN((uint64_t)size, page_end - address);
        if (part >= min_size && part < size) {
                struct ms_error *again =
                        ms_target_read(target, address, blob->data, part);
                if (!again) {
                        ms_error_destroy(err);
                        blob->size = part;
                        return NULL;
                }
                ms_error_destroy(again);
        }
        return err;
}

static bool blob_has(const struct ms_py_blob *blob, int32_t off, size_t n)
{
        return off >= 0 && (size_t)off + n <= blob->size;
}

bool ms_py_blob_u64(const struct ms_py_blob *blob, int32_t off, uint64_t *ret)
{
        if (!blob_has(blob, off, 8))
                return false;
        memcpy(ret, blob->data + off, 8);
        return true;
}

bool ms_py_blob_i64(const struct ms_py_blob *blob, int32_t off, int64_t *ret)
{
        if (!blob_has(blob, off, 8))
                return false;
        memcpy(ret, blob->data + off, 8);
        return true;
}

bool ms_py_blob_i32(const struct ms_py_blob *blob, int32_t off, int32_t *ret)
{
        if (!blob_has(blob, off, 4))
                return false;
        memcpy(ret, blob->data + off, 4);
        return true;
}

bool ms_py_blob_u8(const struct ms_py_blob *blob, int32_t off, uint8_t *ret)
{
        if (!blob_has(blob, off, 1))
                return false;
        *ret = blob->data[off];
        return true;
}

struct ms_error *ms_py_read_field(struct ms_target *target, uint64_t address,
                                  int32_t off, uint64_t *ret)
{
        if (off < 0)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "field not in this CPython version");
        return ms_target_read_u64(target, address + (uint64_t)off, ret);
}

struct ms_error *ms_py_read_field_i32(struct ms_target *target,
                                      uint64_t address, int32_t off,
                                      int32_t *ret)
{
        if (off < 0)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "field not in this CPython version");
        uint32_t v;
        struct ms_error *err =
                ms_target_read_u32(target, address + (uint64_t)off, &v);
        if (!err)
                *ret = (int32_t)v;
        return err;
}

bool ms_py_plausible_pointer(uint64_t p)
{
        /* x86-64 user space ends below 2^47 (2^56 with 5-level paging). */
        return p >= 4096 && (p & 7) == 0 && p < (1ULL << 56);
}

struct ms_error *ms_py_object_type(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, uint64_t *type)
{
        if (!ms_py_plausible_pointer(object))
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "bad object pointer 0x%" PRIx64, object);
        struct ms_error *err =
                ms_py_read_field(target, object, l->ob_type, type);
        if (!err && !ms_py_plausible_pointer(*type))
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "object 0x%" PRIx64
                                      " has bad type 0x%" PRIx64,
                                      object, *type);
        return err;
}

struct ms_error *ms_py_type_flags(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  uint64_t *ret)
{
        uint64_t type;
        struct ms_error *err = ms_py_object_type(target, l, object, &type);
        if (!err)
                err = ms_py_read_field(target, type, l->tp_flags, ret);
        return err;
}

struct ms_error *ms_py_type_name(struct ms_target *target,
                                 const struct ms_py_layout *l, uint64_t object,
                                 char *buf, size_t size)
{
        uint64_t type, name;
        struct ms_error *err = ms_py_object_type(target, l, object, &type);
        if (!err)
                err = ms_py_read_field(target, type, l->tp_name, &name);
        if (err)
                return err;
        char *s;
        err = ms_target_read_string(target, name, size ? size - 1 : 0, &s,
                                    NULL);
        if (err)
                return err;
        snprintf(buf, size, "%s", s);
        free(s);
        return NULL;
}

struct ms_error *ms_py_check_type(struct ms_target *target,
                                  const struct ms_py_layout *l, uint64_t object,
                                  const char *name, const char *what)
{
        char type[32];
        struct ms_error *err =
                ms_py_type_name(target, l, object, type, sizeof(type));
        if (!err && strcmp(type, name) != 0)
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "0x%" PRIx64 " is a %s, not %s", object,
                                      type, what);
        return err;
}

static struct ms_error *check_flag(struct ms_target *target,
                                   const struct ms_py_layout *l,
                                   uint64_t object, uint64_t flag,
                                   const char *what)
{
        uint64_t flags;
        struct ms_error *err = ms_py_type_flags(target, l, object, &flags);
        if (!err && !(flags & flag))
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "object 0x%" PRIx64 " is not %s", object,
                                      what);
        return err;
}

/* Append code point c as UTF-8 (lone surrogates and junk become U+FFFD). */
static size_t put_utf8(char *out, uint32_t c)
{
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
                c = 0xFFFD;
        if (c < 0x80) {
                out[0] = (char)c;
                return 1;
        }
        if (c < 0x800) {
                out[0] = (char)(0xC0 | (c >> 6));
                out[1] = (char)(0x80 | (c & 0x3F));
                return 2;
        }
        if (c < 0x10000) {
                out[0] = (char)(0xE0 | (c >> 12));
                out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
                out[2] = (char)(0x80 | (c & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | (c >> 18));
        out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[3] = (char)(0x80 | (c & 0x3F));
        return 4;
}

static struct ms_error *decode_units(struct ms_target *target, uint64_t data,
                                     unsigned kind, size_t n, char **ret)
{
        uint8_t *raw = malloc(n * kind + 1);
        char *out = malloc(n * 4 + 1);
        if (!raw || !out) {
                free(raw);
                free(out);
                return &ms_error_no_memory;
        }
        struct ms_error *err =
                n ? ms_target_read(target, data, raw, n * kind) : NULL;
        if (err) {
                free(raw);
                free(out);
                return err;
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
                uint32_t c;
                if (kind == 1) {
                        c = raw[i];
                } else if (kind == 2) {
                        uint16_t u;
                        memcpy(&u, raw + 2 * i, 2);
                        c = u;
                } else {
                        memcpy(&c, raw + 4 * i, 4);
                }
                len += put_utf8(out + len, c);
        }
        out[len] = '\0';
        free(raw);
        *ret = out;
        return NULL;
}

/* Where the characters of a str are, and their kind (1, 2 or 4 bytes). */
static struct ms_error *str_data(struct ms_target *target,
                                 const struct ms_py_layout *l, uint64_t address,
                                 uint32_t state, uint64_t *data, unsigned *kind,
                                 int64_t *length)
{
        *kind = (state >> l->u_kind_shift) & 7;
        bool compact = (state >> l->u_compact_bit) & 1;
        bool ascii = (state >> l->u_ascii_bit) & 1;
        bool ready = l->u_ready_bit < 0 || ((state >> l->u_ready_bit) & 1);
        struct ms_error *err = NULL;
        if (!ready) {
                /* 3.8-3.11 legacy string never made ready: the text is only
                 * in wstr (wchar_t, UTF-32 on Linux). */
                *kind = 4;
                err = ms_py_read_field(target, address, l->u_wstr, data);
                if (!err)
                        err = ms_py_read_field(target, address,
                                               l->u_wstr_length,
                                               (uint64_t *)length);
        } else if (compact && ascii) {
                *data = address + (uint64_t)l->u_ascii_data;
        } else if (compact) {
                *data = address + (uint64_t)l->u_compact_data;
        } else {
                err = ms_py_read_field(target, address, l->u_compact_data,
                                       data);
        }
        if (!err && *kind != 1 && *kind != 2 && *kind != 4)
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "str 0x%" PRIx64 " has bad kind %u",
                                      address, *kind);
        return err;
}

struct ms_error *ms_py_read_str(struct ms_target *target,
                                const struct ms_py_layout *l, uint64_t address,
                                char **ret)
{
        struct ms_error *err = check_flag(
                target, l, address, MS_PY_TPFLAGS_UNICODE_SUBCLASS, "a str");
        if (err)
                return err;
        uint64_t length;
        int32_t state = 0;
        err = ms_py_read_field(target, address, l->u_length, &length);
        if (!err)
                err = ms_py_read_field_i32(target, address, l->u_state, &state);
        if (err)
                return err;
        uint64_t data;
        unsigned kind;
        int64_t len = (int64_t)length;
        err = str_data(target, l, address, (uint32_t)state, &data, &kind, &len);
        if (err)
                return err;
        if (len < 0)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "str 0x%" PRIx64 " has bad length",
                                       address);
        return decode_units(target, data, kind,
                            (size_t)MS_MIN(len, MS_PY_MAX_STRING), ret);
}

struct ms_error *ms_py_read_bytes(struct ms_target *target,
                                  const struct ms_py_layout *l,
                                  uint64_t address, size_t max, uint8_t **ret,
                                  size_t *len)
{
        struct ms_error *err = check_flag(
                target, l, address, MS_PY_TPFLAGS_BYTES_SUBCLASS, "bytes");
        uint64_t size;
        if (!err)
                err = ms_py_read_field(target, address, l->ob_size, &size);
        if (err)
                return err;
        if ((int64_t)size < 0 || size > max)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "bytes 0x%" PRIx64
                                       " has bad size %" PRId64,
                                       address, (int64_t)size);
        uint8_t *buf = malloc(size + 1);
        if (!buf)
                return &ms_error_no_memory;
        err = size ? ms_target_read(target, address + (uint64_t)l->bytes_sval,
                                    buf, size)
                   : NULL;
        if (err) {
                free(buf);
                return err;
        }
        *ret = buf;
        *len = size;
        return NULL;
}
