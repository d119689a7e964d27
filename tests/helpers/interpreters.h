/*
 * The CPython interpreters the cpython tests run against: every pyenv
 * 3.8+ (under $PYENV_ROOT or ~/.pyenv) and /usr/bin/python3.N, or the
 * colon-separated list in $MIXSTACK_TEST_PYTHONS. Header-only, included by
 * tests/unit/test_cpython_*.c.
 */
#ifndef MIXSTACK_TESTS_INTERPRETERS_H
#define MIXSTACK_TESTS_INTERPRETERS_H

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_MAX_PYTHONS 64

struct test_pythons {
        char *paths[TEST_MAX_PYTHONS];
        size_t n;
};

static void test_pythons_add(struct test_pythons *p, const char *path)
{
        if (p->n < TEST_MAX_PYTHONS && access(path, X_OK) == 0)
                p->paths[p->n++] = strdup(path);
}

static void test_pythons_find(struct test_pythons *p)
{
        memset(p, 0, sizeof(*p));
        const char *list = getenv("MIXSTACK_TEST_PYTHONS");
        if (list && *list) {
                char *copy = strdup(list), *save = NULL;
                for (char *s = strtok_r(copy, ":", &save); s;
                     s = strtok_r(NULL, ":", &save))
                        test_pythons_add(p, s);
                free(copy);
                return;
        }
        const char *root = getenv("PYENV_ROOT");
        char pattern[4096];
        if (root)
                snprintf(pattern, sizeof(pattern), "%s", root);
        else
                snprintf(pattern, sizeof(pattern), "%s/.pyenv",
                         getenv("HOME") ? getenv("HOME") : "/root");
        for (int minor = 8; minor <= 15; minor++) {
                char pat[4200];
                glob_t g;
                snprintf(pat, sizeof(pat), "%s/versions/3.%d.*/bin/python3.%d",
                         pattern, minor, minor);
                if (glob(pat, 0, NULL, &g) == 0) {
                        for (size_t i = 0; i < g.gl_pathc; i++)
                                test_pythons_add(p, g.gl_pathv[i]);
                }
                globfree(&g);
        }
        for (int minor = 8; minor <= 15; minor++) {
                char path[64];
                snprintf(path, sizeof(path), "/usr/bin/python3.%d", minor);
                test_pythons_add(p, path);
        }
}

static void test_pythons_free(struct test_pythons *p)
{
        for (size_t i = 0; i < p->n; i++)
                free(p->paths[i]);
        p->n = 0;
}

/* A short name for messages and file names: "3.11.7" for pyenv, else
 * the path with '/' replaced. */
static void test_python_name(const char *path, char *buf, size_t size)
{
        const char *v = strstr(path, "/versions/");
        if (v) {
                v += strlen("/versions/");
                size_t n = strcspn(v, "/");
                snprintf(buf, size, "%.*s", (int)n, v);
                return;
        }
        snprintf(buf, size, "%s", path);
        for (char *s = buf; *s; s++) {
                if (*s == '/')
                        *s = '_';
        }
}

/* Where a test writes its scratch files. */
static const char *test_scratch_dir(void)
{
        const char *d = getenv("MIXSTACK_TEST_BUILD_DIR");
        return d ? d : "/tmp";
}

/* tests/helpers/<name> in the source tree. */
static void test_helper_path(const char *name, char *buf, size_t size)
{
        const char *src = getenv("MIXSTACK_SOURCE_DIR");
        snprintf(buf, size, "%s/tests/helpers/%s", src ? src : ".", name);
}

#endif
