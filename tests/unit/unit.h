/* A minimal unit-test harness: CHECK records a failure and goes on;
 * unit_main() prints "N passed, N failed" and returns the exit status. */
#ifndef MIXSTACK_TESTS_UNIT_H
#define MIXSTACK_TESTS_UNIT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

extern int unit_passed, unit_failed;

#define CHECK(cond)                                                            \
        do {                                                                   \
                if (cond) {                                                    \
                        unit_passed++;                                         \
                } else {                                                       \
                        unit_failed++;                                         \
                        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
                                __LINE__, #cond);                              \
                }                                                              \
        } while (0)

#define CHECK_STR(a, b)                                                        \
        do {                                                                   \
                const char *a_ = (a), *b_ = (b);                               \
                if (a_ && b_ && strcmp(a_, b_) == 0) {                         \
                        unit_passed++;                                         \
                } else {                                                       \
                        unit_failed++;                                         \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, \
                                __LINE__, a_ ? a_ : "(null)",                  \
                                b_ ? b_ : "(null)");                           \
                }                                                              \
        } while (0)

/* Print the summary line and return the process exit status. */
int unit_finish(void);

/* A test that cannot run here (missing tool or fixture) is skipped with a
 * reason: exit code 77 tells ctest (SKIP_RETURN_CODE). */
void unit_skip(const char *why);

/* The root a crash-sample artefact's process ran in (scripts/samples'
 * lane artefacts record "sysroot" in run.json): a malloc'd path to pass as
 * the target's sysroot, or NULL. dir is the artefact directory. */
char *unit_sample_sysroot(const char *dir);

#endif
