/* The JSON writer: escaping of any byte sequence, commas, nesting. */
#include <stdlib.h>
#include <string.h>

#include "output/json_writer.h"
#include "unit.h"

static char *escaped(const char *s)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        ms_json_write_escaped(out, s);
        fclose(out);
        return buf;
}

static void check_escape(const char *in, const char *want)
{
        char *got = escaped(in);
        CHECK_STR(got, want);
        free(got);
}

/* True when s is valid UTF-8 without raw control characters. */
static bool valid_json_text(const char *str)
{
        const unsigned char *s = (const unsigned char *)str;
        while (*s) {
                if (*s < 0x20)
                        return false;
                if (*s < 0x80) {
                        s++;
                        continue;
                }
                int n = *s >= 0xf0 ? 3 : *s >= 0xe0 ? 2 : *s >= 0xc2 ? 1 : -1;
                if (n < 0 || *s > 0xf4)
                        return false;
                for (int i = 1; i <= n; i++) {
                        if ((s[i] & 0xc0) != 0x80)
                                return false;
                }
                s += n + 1;
        }
        return true;
}

static void test_escapes(void)
{
        check_escape("plain", "plain");
        check_escape("a\"b\\c", "a\\\"b\\\\c");
        check_escape("line\nnext\ttab\r", "line\\nnext\\ttab\\u000d");
        check_escape("\x01\x1f\x7f", "\\u0001\\u001f\\u007f");
        /* Valid UTF-8 passes through: é, €, U+1F600. */
        check_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        /* Invalid: lone continuation, truncated, overlong, surrogate. */
        check_escape("\x80", "\\ufffd");
        check_escape("a\xc3", "a\\ufffd");
        check_escape("\xc0\xaf", "\\ufffd\\ufffd");
        check_escape("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
        check_escape("\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
}

static void test_random_bytes(void)
{
        srand(12345);
        char in[64];
        bool all_valid = true;
        for (int round = 0; round < 20000; round++) {
                size_t len = (size_t)(rand() % 63);
                for (size_t i = 0; i < len; i++)
                        in[i] = (char)(1 + rand() % 255);
                in[len] = '\0';
                char *out = escaped(in);
                if (!valid_json_text(out))
                        all_valid = false;
                free(out);
        }
        CHECK(all_valid);
}

static void test_document(void)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        struct ms_json json;
        ms_json_init(&json, out, false);
        ms_json_begin_object(&json);
        ms_json_key(&json, "a");
        ms_json_int(&json, -3);
        ms_json_key(&json, "b");
        ms_json_begin_array(&json);
        ms_json_string(&json, "x");
        ms_json_null(&json);
        ms_json_bool(&json, true);
        ms_json_address(&json, 0xdeadbeef);
        ms_json_begin_object(&json);
        ms_json_end_object(&json);
        ms_json_end_array(&json);
        ms_json_key(&json, "c");
        ms_json_string(&json, NULL);
        ms_json_end_object(&json);
        fclose(out);
        CHECK_STR(buf, "{\"a\":-3,\"b\":[\"x\",null,true,\"0xdeadbeef\",{}],"
                       "\"c\":null}");
        free(buf);
}

int main(void)
{
        test_escapes();
        test_random_bytes();
        test_document();
        return unit_finish();
}
