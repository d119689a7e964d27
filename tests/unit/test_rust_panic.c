/*
 * Rust panic state (core/rust/) on the crash-samples: for every
 * interpreter whose artefacts exist, each scenario's core goes through the
 * real pipeline (open the core, unwind every thread, classify its frames,
 * ms_rust_analyse), and the result is compared with what the failing
 * process recorded about itself in manifest.json. Then the pieces that
 * need no core: name matching, UTF-8 and hook-text parsing, frame
 * classification on made-up frames.
 *
 * Artefacts: $MIXSTACK_SAMPLES_DIR, else $MIXSTACK_SOURCE_DIR/build/samples
 * (scripts/samples run makes them); without them that part is skipped.
 *
 * Also a live process: tests/helpers/rust_panic_fixture.rs, built with
 * rustc -C panic=abort, stopped by its SIGABRT handler in the middle of the
 * abort (on its own stack, then on a sigaltstack): the panic=abort path
 * the samples lack, the hook text and the stack scan without exception
 * objects, and the interrupted-context start. Skipped without rustc.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "merge/rules.h"
#include "rust/internal.h"
#include "rust/rust.h"
#include "target/backend.h"
#include "target/target.h"
#include "unit.h"
#include "unwind/unwind.h"

#define MAX_INTERPS 64
#define MAX_FRAMES 512

/* What a scenario's manifest says (the parts checked here). */
struct manifest {
        bool have_panic;
        char message[1024], file[1024], crash_frame[256];
        int line, col;
        pid_t panic_tid, crashed_tid;
        bool ext_stripped;
};

static bool verbose;

/* ------------------------------------------------------------------------
 * Manifest (through python3's json: the test needs no JSON parser)
 * ------------------------------------------------------------------------ */

static void unhex(const char *hex, char *out, size_t size)
{
        size_t n = 0;
        for (; hex[0] && hex[1] && n + 1 < size; hex += 2) {
                unsigned v;
                if (sscanf(hex, "%2x", &v) != 1)
                        break;
                out[n++] = (char)v;
        }
        out[n] = '\0';
}

/* No single quotes: it goes inside '...' on a shell command line. */
static const char manifest_script[] =
        "import json,sys\n"
        "m=json.load(open(sys.argv[1]))\n"
        "p=m.get(\"panic\") or {}\n"
        "h=lambda s:(s or \"\").encode().hex() or \"-\"\n"
        "print(1 if m.get(\"panic\") else 0, h(p.get(\"message\")), "
        "h(p.get(\"file\")),"
        " p.get(\"line\") or 0, p.get(\"col\") or 0, p.get(\"tid\") or 0,"
        " m.get(\"crashed_tid\") or 0,"
        " 1 if (m.get(\"extension\") or {}).get(\"stripped\") else 0,"
        " h(m.get(\"expect_crash_frame\")))\n";

static bool read_manifest(const char *path, struct manifest *m)
{
        memset(m, 0, sizeof(*m));
        if (strchr(path, '\''))
                return false;
        char *run = NULL;
        if (asprintf(&run, "python3 -c '%s' '%s' 2>/dev/null", manifest_script,
                     path) < 0)
                return false;
        FILE *f = popen(run, "r");
        free(run);
        char msg[2100], file[2100], frame[600];
        int have, stripped, tid, crashed;
        bool ok = f && fscanf(f, "%d %2099s %2099s %d %d %d %d %d %599s", &have,
                              msg, file, &m->line, &m->col, &tid, &crashed,
                              &stripped, frame) == 9;
        if (f)
                pclose(f);
        if (!ok)
                return false;
        m->have_panic = have;
        m->panic_tid = tid;
        m->crashed_tid = crashed;
        m->ext_stripped = stripped;
        unhex(strcmp(msg, "-") ? msg : "", m->message, sizeof(m->message));
        unhex(strcmp(file, "-") ? file : "", m->file, sizeof(m->file));
        unhex(strcmp(frame, "-") ? frame : "", m->crash_frame,
              sizeof(m->crash_frame));
        return true;
}

/* ------------------------------------------------------------------------
 * The pipeline
 * ------------------------------------------------------------------------ */

struct analysis {
        struct ms_target *target;
        struct ms_unwinder *unwinder;
        struct ms_native_stack *stacks;
        struct ms_rust_thread_input *inputs;
        size_t n;
        struct ms_rust_state state;
};

static void analysis_deinit(struct analysis *a)
{
        ms_rust_state_deinit(&a->state);
        for (size_t i = 0; a->stacks && i < a->n; i++)
                ms_native_stack_deinit(&a->stacks[i]);
        free(a->stacks);
        free(a->inputs);
        ms_unwinder_destroy(a->unwinder);
        ms_target_destroy(a->target);
        memset(a, 0, sizeof(*a));
}

static struct ms_error *analyse_target(struct analysis *a);

/* ext_dir holds the artefact's hard link to the extension the process
 * loaded: found by name before the path the core records, which a later
 * build may have replaced. */
static struct ms_error *analyse_core(const char *core, const char *ext_dir,
                                     struct analysis *a)
{
        memset(a, 0, sizeof(*a));
        const char *paths[] = {ext_dir};
        char *dir = strdup(core);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
                *slash = 0;
        char *sysroot = slash ? unit_sample_sysroot(dir) : NULL;
        free(dir);
        struct ms_target_options options = {
                .sysroot = sysroot,
                .library_paths = paths,
                .n_library_paths = 1,
        };
        struct ms_error *err = ms_target_open_core(core, &options, &a->target);
        free(sysroot);
        if (err)
                return err;
        return analyse_target(a);
}

/* Unwind and classify every thread of a->target, then analyse. */
static struct ms_error *analyse_target(struct analysis *a)
{
        struct ms_error *err = ms_unwinder_create(a->target, &a->unwinder);
        if (err)
                return err;
        a->n = a->target->n_threads;
        a->stacks = calloc(a->n ? a->n : 1, sizeof(*a->stacks));
        a->inputs = calloc(a->n ? a->n : 1, sizeof(*a->inputs));
        if (!a->stacks || !a->inputs)
                return &ms_error_no_memory;
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; i < a->n; i++) {
                err = ms_unwind_thread(a->unwinder, i, MAX_FRAMES,
                                       &a->stacks[i]);
                if (err)
                        return err;
                for (size_t k = 0; k < a->stacks[i].n_frames; k++)
                        a->stacks[i].frames[k].category =
                                ms_rules_frame_category(
                                        rules, &a->stacks[i].frames[k]);
                a->inputs[i].tid = a->target->threads[i].tid;
                a->inputs[i].frames = a->stacks[i].frames;
                a->inputs[i].n_frames = a->stacks[i].n_frames;
        }
        return ms_rust_analyse(a->target, a->inputs, a->n, &a->state);
}

static const struct ms_rust_module *mixsample(const struct ms_rust_state *s)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                const char *p = s->modules[i].path;
                size_t n = strlen(p);
                if (n >= 17 && strcmp(p + n - 17, "mixsample.abi3.so") == 0)
                        return &s->modules[i];
        }
        return NULL;
}

static const struct ms_rust_thread *find_thread(const struct ms_rust_state *s,
                                                pid_t tid)
{
        for (size_t i = 0; i < s->n_threads; i++) {
                if (s->threads[i].tid == tid)
                        return &s->threads[i];
        }
        return NULL;
}

static size_t n_panicking(const struct ms_rust_state *s)
{
        size_t n = 0;
        for (size_t i = 0; i < s->n_threads; i++)
                n += s->threads[i].panicking;
        return n;
}

static void dump(const char *what, const struct ms_rust_state *s)
{
        if (!verbose)
                return;
        printf("  %s:\n", what);
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct ms_rust_module *m = &s->modules[i];
                printf("    module %s: %s count=%" PRIu64
                       " abort=%d modid=%" PRIu64 " (%s)\n",
                       m->path, m->count_known ? "known" : "unknown",
                       m->global_panic_count, m->always_abort, m->tls_modid,
                       m->count_unknown_reason ? m->count_unknown_reason : "");
        }
        for (size_t i = 0; i < s->n_exceptions; i++)
                printf("    exception 0x%" PRIx64 " tid %d verified %d: %s\n",
                       s->exceptions[i].address, (int)s->exceptions[i].tid,
                       s->exceptions[i].canary_verified,
                       s->exceptions[i].message ? s->exceptions[i].message
                                                : "(none)");
        for (size_t i = 0; i < s->n_threads; i++) {
                const struct ms_rust_thread *t = &s->threads[i];
                if (!t->in_machinery && !t->panicking && !t->local_panic_count)
                        continue;
                printf("    thread %d: %s panicking=%d local=%s%" PRIu64
                       " site=%s (%s:%d) message=%s [%s] at %s:%u:%u [%s]\n",
                       (int)t->tid, ms_rust_panic_kind_name(t->kind),
                       t->panicking, t->local_count_known ? "" : "?",
                       t->local_panic_count,
                       t->site_function ? t->site_function : "-",
                       t->site_file ? t->site_file : "-", t->site_line,
                       t->message ? t->message : "-",
                       t->message_recovered_by ? t->message_recovered_by : "-",
                       t->file ? t->file : "-", t->line, t->column,
                       t->location_recovered_by ? t->location_recovered_by
                                                : "-");
        }
        for (size_t i = 0; i < s->warnings.n; i++)
                printf("    warning: %s\n", s->warnings.items[i]);
}

/* ------------------------------------------------------------------------
 * Per scenario
 * ------------------------------------------------------------------------ */

static void check_abort_in_callback(const struct manifest *m,
                                    const struct ms_rust_state *s)
{
        const struct ms_rust_module *mod = mixsample(s);
        CHECK(mod && mod->count_known && mod->global_panic_count >= 1);
        CHECK(m->have_panic);
        const struct ms_rust_thread *t = find_thread(s, m->panic_tid);
        CHECK(t != NULL);
        if (!t || !m->have_panic)
                return;
        CHECK(t->in_machinery && t->panicking);
        CHECK(t->kind == MS_RUST_PANIC_CANNOT_UNWIND);
        CHECK(t->site_function && m->crash_frame[0] &&
              strstr(t->site_function, m->crash_frame));
        CHECK_STR(t->message, m->message);
        CHECK(t->message_recovered_by != NULL);
        CHECK_STR(t->file, m->file);
        CHECK(t->line == (uint32_t)m->line);
        CHECK(t->column == (uint32_t)m->col);
        CHECK(t->location_recovered_by != NULL);
        /* The first panic unwound as far as the extern "C" function: its
         * exception object is alive and holds the original message. */
        bool object = false;
        for (size_t i = 0; i < s->n_exceptions; i++) {
                const struct ms_rust_exception *e = &s->exceptions[i];
                object = object ||
                         (e->tid == t->tid && e->canary_verified &&
                          e->message && strcmp(e->message, m->message) == 0);
        }
        CHECK(s->exceptions_searched && object);
        /* Rust 1.95 aborts a cannot-unwind panic with both panics
         * counted; the local count must agree with the global one. */
        if (t->local_count_known && mod && mod->count_known)
                CHECK(t->local_panic_count == mod->global_panic_count);
}

/* The panic was caught and converted into a PanicException: counts are
 * back to 0 and no thread is in the machinery. */
static void check_caught(const struct manifest *m,
                         const struct ms_rust_state *s)
{
        const struct ms_rust_module *mod = mixsample(s);
        CHECK(mod && mod->count_known && mod->global_panic_count == 0);
        const struct ms_rust_thread *t = find_thread(s, m->panic_tid);
        CHECK(t && !t->in_machinery && !t->panicking);
        if (t && t->local_count_known)
                CHECK(t->local_panic_count == 0);
        CHECK(n_panicking(s) == 0);
}

static void check_no_panic(const struct manifest *m,
                           const struct ms_rust_state *s)
{
        const struct ms_rust_module *mod = mixsample(s);
        CHECK(mod != NULL);
        if (!m->ext_stripped)
                CHECK(mod && mod->count_known && mod->global_panic_count == 0);
        CHECK(n_panicking(s) == 0);
        for (size_t i = 0; i < s->n_threads; i++)
                CHECK(!s->threads[i].message);
}

static void check_stripped(const struct manifest *m,
                           const struct ms_rust_state *s)
{
        check_no_panic(m, s);
        const struct ms_rust_module *mod = mixsample(s);
        CHECK(m->ext_stripped);
        CHECK(mod && !mod->count_known && mod->count_unknown_reason &&
              strstr(mod->count_unknown_reason, "stripped"));
}

/* std::process::abort in an atexit handler: machinery, not a panic. */
static void check_exit_crash(const struct manifest *m,
                             const struct ms_rust_state *s)
{
        check_no_panic(m, s);
        const struct ms_rust_thread *t = find_thread(s, m->crashed_tid);
        CHECK(t && t->in_machinery && !t->panicking &&
              t->kind == MS_RUST_PANIC_PROCESS_ABORT);
        CHECK(t && t->site_function && m->crash_frame[0] &&
              strstr(t->site_function, m->crash_frame));
}

static const struct {
        const char *name;
        void (*check)(const struct manifest *, const struct ms_rust_state *);
} scenarios[] = {
        {"abort-in-callback", check_abort_in_callback},
        {"pending-panic", check_caught},
        {"handled-panic", check_caught},
        {"segfault-in-rust", check_no_panic},
        {"stripped", check_stripped},
        {"exit-crash", check_exit_crash},
        {"deep-interleave", check_no_panic},
        {"gil-deadlock", check_no_panic},
        {"gil-hog", check_no_panic},
        {"many-threads", check_no_panic},
};

static bool is_file(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int run_scenario(const char *dir, const char *interp, size_t k)
{
        char *core = NULL, *manifest = NULL, *ext = NULL;
        int ran = 0;
        if (asprintf(&core, "%s/%s/%s/core", dir, interp, scenarios[k].name) <
                    0 ||
            asprintf(&ext, "%s/%s/%s/ext", dir, interp, scenarios[k].name) <
                    0 ||
            asprintf(&manifest, "%s/%s/%s/manifest.json", dir, interp,
                     scenarios[k].name) < 0)
                goto out;
        if (!is_file(core) || !is_file(manifest))
                goto out;
        struct manifest m;
        if (!read_manifest(manifest, &m)) {
                fprintf(stderr, "%s: cannot read the manifest\n", manifest);
                CHECK(false);
                goto out;
        }
        struct analysis a;
        struct ms_error *err = analyse_core(core, ext, &a);
        if (err)
                fprintf(stderr, "%s: %s\n", core, err->message);
        CHECK(!err);
        ms_error_destroy(err);
        if (!err) {
                char what[256];
                snprintf(what, sizeof(what), "%s %s", interp,
                         scenarios[k].name);
                int failed = unit_failed;
                scenarios[k].check(&m, &a.state);
                if (unit_failed != failed && !verbose) {
                        verbose = true;
                        dump(what, &a.state);
                        verbose = false;
                } else {
                        dump(what, &a.state);
                }
                printf("%s %s: %s\n", interp, scenarios[k].name,
                       unit_failed == failed ? "ok" : "FAILED");
        }
        analysis_deinit(&a);
        ran = 1;
out:
        free(core);
        free(manifest);
        free(ext);
        return ran;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int test_samples(void)
{
        const char *env = getenv("MIXSTACK_SAMPLES_DIR");
        const char *src = getenv("MIXSTACK_SOURCE_DIR");
        char *dir = NULL;
        if (env && *env)
                dir = strdup(env);
        else if (asprintf(&dir, "%s/build/samples", src ? src : ".") < 0)
                dir = NULL;
        char *artefacts = NULL;
        if (!dir || asprintf(&artefacts, "%s/artefacts", dir) < 0) {
                free(dir);
                return 0;
        }
        free(dir);
        DIR *d = opendir(artefacts);
        if (!d) {
                printf("no crash-sample artefacts in %s (scripts/samples run): "
                       "core tests skipped\n",
                       artefacts);
                free(artefacts);
                return 0;
        }
        char *interps[MAX_INTERPS];
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d)) && n < MAX_INTERPS;) {
                if (e->d_name[0] != '.')
                        interps[n++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(interps, n, sizeof(*interps), compare_names);
        int ran = 0;
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; interps[i] && k < MS_ARRAY_SIZE(scenarios);
                     k++)
                        ran += run_scenario(artefacts, interps[i], k);
                free(interps[i]);
        }
        free(artefacts);
        return ran;
}

/* ------------------------------------------------------------------------
 * A live panic=abort process
 * ------------------------------------------------------------------------ */

#define FIXTURE_MARKER "// @PANIC"

/* Line and column of the panic! on the marked line of the fixture. */
static bool fixture_position(const char *src, int *line, int *col)
{
        FILE *f = fopen(src, "r");
        char buf[512];
        bool found = false;
        for (int n = 1; f && !found && fgets(buf, sizeof(buf), f); n++) {
                char *panic = strstr(buf, "panic!(");
                if (strstr(buf, FIXTURE_MARKER) && panic) {
                        *line = n;
                        *col = (int)(panic - buf) + 1;
                        found = true;
                }
        }
        if (f)
                fclose(f);
        return found;
}

static char *fixture_build(const char *src)
{
        const char *dir = getenv("MIXSTACK_TEST_BUILD_DIR");
        char *exe = NULL, *cmd = NULL;
        if (asprintf(&exe, "%s/rust-panic-fixture", dir ? dir : "/tmp") < 0)
                return NULL;
        if (system("command -v rustc >/dev/null 2>&1") != 0 ||
            asprintf(&cmd,
                     "rustc --edition=2021 -O -C panic=abort "
                     "--crate-name fixture -o '%s' '%s' 2>/dev/null",
                     exe, src) < 0) {
                free(exe);
                return NULL;
        }
        int status = system(cmd);
        free(cmd);
        if (status != 0) {
                free(exe);
                return NULL;
        }
        return exe;
}

/* Start the fixture and wait for its handler's byte: it is then stopped
 * in the abort for good. */
static pid_t fixture_start(const char *exe, const char *mode)
{
        int fds[2];
        if (pipe(fds) != 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(fds[1], 1);
                int null = open("/dev/null", O_WRONLY);
                if (null >= 0)
                        dup2(null, 2);
                close(fds[0]);
                setenv("RUST_BACKTRACE", "0", 1);
                execl(exe, exe, mode, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        char byte = 0;
        bool ready = pid > 0 && poll(&p, 1, 20000) == 1 &&
                     read(fds[0], &byte, 1) == 1 && byte == 'A';
        close(fds[0]);
        if (!ready && pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
        }
        return pid;
}

static struct ms_error *analyse_pid(pid_t pid, struct analysis *a)
{
        memset(a, 0, sizeof(*a));
        struct ms_error *err = ms_target_attach_pid(pid, NULL, &a->target);
        if (err)
                return err;
        return analyse_target(a);
}

static const struct ms_rust_module *find_suffix(const struct ms_rust_state *s,
                                                const char *suffix)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                const char *p = s->modules[i].path;
                size_t n = strlen(p), k = strlen(suffix);
                if (n >= k && strcmp(p + n - k, suffix) == 0)
                        return &s->modules[i];
        }
        return NULL;
}

static void check_fixture(const struct ms_rust_state *s, pid_t pid, int line,
                          int col)
{
        const struct ms_rust_module *mod =
                find_suffix(s, "/rust-panic-fixture");
        CHECK(mod && mod->count_known && mod->global_panic_count == 1 &&
              !mod->always_abort);
        const struct ms_rust_thread *t = find_thread(s, pid);
        CHECK(t != NULL);
        if (!t)
                return;
        CHECK(t->in_machinery && t->panicking);
        CHECK(t->kind == MS_RUST_PANIC_ABORT_RUNTIME);
        CHECK(t->site_function && strstr(t->site_function, "fixture_inner"));
        CHECK(t->local_count_known && t->local_panic_count == 1 &&
              !t->in_panic_hook);
        CHECK_STR(t->message, "fixture panic x=7");
        CHECK(t->message_recovered_by != NULL);
        CHECK(t->file && strstr(t->file, "rust_panic_fixture.rs"));
        CHECK(t->line == (uint32_t)line && t->column == (uint32_t)col);
        CHECK(t->location_recovered_by != NULL);
        CHECK(s->n_exceptions == 0); /* panic=abort allocates none */
}

/* The handler runs on top of the abort, behind a signal frame: the scan
 * must start from the interrupted context, which for a sigaltstack is far
 * from the handler's stack pointer. */
static void check_scan_start(const struct analysis *a, pid_t pid, bool alt)
{
        for (size_t i = 0; i < a->n; i++) {
                if (a->inputs[i].tid != pid)
                        continue;
                const struct ms_target_thread *th =
                        ms_target_find_thread(a->target, pid);
                uint64_t sp = th->regs[MS_REG_RSP];
                uint64_t start =
                        ms_rust_scan_start(a->target, th, a->inputs[i].frames,
                                           a->inputs[i].n_frames);
                CHECK(start > sp);
                uint64_t d = start - sp;
                CHECK(alt ? d > MS_RUST_STACK_SCAN : d < MS_RUST_STACK_SCAN);
                return;
        }
        CHECK(false);
}

static void test_live(void)
{
        const char *src_dir = getenv("MIXSTACK_SOURCE_DIR");
        char *src = NULL;
        int line = 0, col = 0;
        if (asprintf(&src, "%s/tests/helpers/rust_panic_fixture.rs",
                     src_dir ? src_dir : ".") < 0)
                return;
        char *exe =
                fixture_position(src, &line, &col) ? fixture_build(src) : NULL;
        if (!exe) {
                printf("live panic=abort fixture skipped (no rustc or no "
                       "%s)\n",
                       src);
                free(src);
                return;
        }
        static const char *const modes[] = {"same-stack", "altstack"};
        for (size_t i = 0; i < MS_ARRAY_SIZE(modes); i++) {
                pid_t pid = fixture_start(exe, modes[i]);
                CHECK(pid > 0);
                if (pid <= 0)
                        continue;
                struct analysis a;
                struct ms_error *err = analyse_pid(pid, &a);
                if (err && err->code == MS_ERROR_PERMISSION) {
                        printf("live fixture skipped: %s\n", err->message);
                } else {
                        if (err)
                                fprintf(stderr, "fixture: %s\n", err->message);
                        CHECK(!err);
                        if (!err) {
                                int failed = unit_failed;
                                check_fixture(&a.state, pid, line, col);
                                check_scan_start(&a, pid, i == 1);
                                bool v = verbose;
                                verbose = verbose || unit_failed != failed;
                                dump(modes[i], &a.state);
                                verbose = v;
                                printf("live fixture %s: %s\n", modes[i],
                                       unit_failed == failed ? "ok" : "FAILED");
                        }
                }
                ms_error_destroy(err);
                analysis_deinit(&a);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        free(exe);
        free(src);
}

/* ------------------------------------------------------------------------
 * Without cores
 * ------------------------------------------------------------------------ */

static void test_names(void)
{
        CHECK(ms_rust_name_has("__rustc::rust_panic", "rust_panic"));
        CHECK(ms_rust_name_has("rust_panic", "rust_panic"));
        CHECK(!ms_rust_name_has("my_rust_panic", "rust_panic"));
        CHECK(!ms_rust_name_has("rust_panic_with_hook", "rust_panic"));
        CHECK(ms_rust_name_has("std::panicking::panic_with_hook<T>",
                               "panic_with_hook"));
        CHECK(ms_rust_name_has("core::panicking::panic_cannot_unwind.cold",
                               "panic_cannot_unwind"));
        CHECK(!ms_rust_name_has(NULL, "x"));
}

static void test_text(void)
{
        CHECK(ms_rust_text_ok((const uint8_t *)"abc\n\t", 5));
        CHECK(ms_rust_text_ok((const uint8_t *)"\xc3\xa9t\xc3\xa9", 5));
        CHECK(!ms_rust_text_ok((const uint8_t *)"a\x01", 2));
        CHECK(!ms_rust_text_ok((const uint8_t *)"\xc3", 1));
        CHECK(!ms_rust_text_ok((const uint8_t *)"\xc0\xaf", 2)); /* overlong */
        CHECK(!ms_rust_text_ok((const uint8_t *)"\xed\xa0\x80",
                               3)); /* surrogate */
        CHECK(ms_rust_is_library_file(
                "/rustc/59807616e/library/core/src/panicking.rs"));
        CHECK(!ms_rust_is_library_file("src/lib.rs"));
        CHECK(ms_rust_is_runtime_message(
                "panic in a function that cannot unwind"));
}

static void test_hook_text(void)
{
        struct ms_rust_hook_text h;
        /* >= 1.91, with the tid, then the NUL-filled rest of the buffer. */
        static const char new_text[] =
                "thread '<unnamed>' (27151) panicked at src/lib.rs:6:9:\n"
                "rust panic from panicmod: x=13\n\0\0\0garbage";
        CHECK(ms_rust_parse_hook_text(new_text, sizeof(new_text) - 1, &h));
        CHECK_STR(h.thread_name, "<unnamed>");
        CHECK_STR(h.file, "src/lib.rs");
        CHECK(h.line == 6 && h.column == 9);
        CHECK_STR(h.message, "rust panic from panicmod: x=13");
        ms_rust_hook_text_deinit(&h);
        /* 1.73-1.90: no tid; a file name with a colon. */
        static const char mid_text[] =
                "thread 'main' panicked at C:/x/a.rs:12:5:\nboom";
        CHECK(ms_rust_parse_hook_text(mid_text, sizeof(mid_text) - 1, &h));
        CHECK_STR(h.file, "C:/x/a.rs");
        CHECK(h.line == 12 && h.column == 5);
        CHECK_STR(h.message, "boom");
        ms_rust_hook_text_deinit(&h);
        /* <= 1.72. */
        static const char old_text[] =
                "thread 'main' panicked at 'it's, broken', src/main.rs:3:16\n";
        CHECK(ms_rust_parse_hook_text(old_text, sizeof(old_text) - 1, &h));
        CHECK_STR(h.message, "it's, broken");
        CHECK_STR(h.file, "src/main.rs");
        CHECK(h.line == 3 && h.column == 16);
        ms_rust_hook_text_deinit(&h);
        static const char bad[] = "thread 'x' panicked at nowhere";
        CHECK(!ms_rust_parse_hook_text(bad, sizeof(bad) - 1, &h));
        static const char bad_file[] = "thread 'x' panicked at a.c:1:2:\nm";
        CHECK(!ms_rust_parse_hook_text(bad_file, sizeof(bad_file) - 1, &h));
}

/* Made-up frames, innermost first, classified by the shipped rules. */
static void classify(struct ms_frame *frames, size_t n)
{
        const struct ms_rules *rules = ms_frame_rules(NULL);
        for (size_t i = 0; i < n; i++) {
                frames[i].kind = MS_FRAME_NATIVE;
                frames[i].language = MS_LANGUAGE_RUST;
                frames[i].category = ms_rules_frame_category(rules, &frames[i]);
        }
}

static void thread_free(struct ms_rust_thread *t)
{
        free(t->site_function);
        free(t->site_module);
        free(t->site_file);
}

static void test_frames(void)
{
        /* panic=abort, 1.85 names. */
        struct ms_frame aborting[] = {
                {.function = "abort"},
                {.function = "panic_abort::__rust_start_panic::abort"},
                {.function = "__rust_start_panic"},
                {.function = "rust_panic"},
                {.function = "std::panicking::rust_panic_with_hook"},
                {.function =
                         "std::panicking::begin_panic_handler::{{closure}}"},
                {.function = "rust_begin_unwind"},
                {.function = "core::panicking::panic_fmt"},
                {.function = "core::option::unwrap_failed"},
                {.function = "unwrap<u32>",
                 .file = "/rustc/x/library/core/src/option.rs"},
                {.function = "abort::inner", .file = "abort.rs", .line = 3},
                {.function = "abort::main"},
        };
        struct ms_rust_thread t = {0};
        classify(aborting, MS_ARRAY_SIZE(aborting));
        CHECK(ms_rust_frames_classify(aborting, MS_ARRAY_SIZE(aborting), &t));
        CHECK(t.in_machinery && t.panicking);
        CHECK(t.kind == MS_RUST_PANIC_ABORT_RUNTIME);
        CHECK(t.site_index == 10);
        CHECK_STR(t.site_function, "abort::inner");
        thread_free(&t);

        /* Double panic, 1.95 names. */
        struct ms_frame cleanup[] = {
                {.function = "std::sys::pal::unix::abort_internal"},
                {.function = "std::process::abort"},
                {.function = "std::panicking::panic_with_hook"},
                {.function = "__rustc::rust_begin_unwind"},
                {.function = "core::panicking::panic_nounwind_nobacktrace"},
                {.function = "core::panicking::panic_in_cleanup"},
                {.function = "double::inner"},
        };
        memset(&t, 0, sizeof(t));
        classify(cleanup, MS_ARRAY_SIZE(cleanup));
        CHECK(ms_rust_frames_classify(cleanup, MS_ARRAY_SIZE(cleanup), &t));
        CHECK(t.kind == MS_RUST_PANIC_IN_CLEANUP);
        CHECK_STR(t.site_function, "double::inner");
        thread_free(&t);

        /* Every PyO3 call goes through catch_unwind: no panic. */
        struct ms_frame calls[] = {
                {.function = "read"},
                {.function = "mixsample::block_on_pipe"},
                {.function = "std::panicking::catch_unwind::do_call<F, R>"},
                {.function = "std::panicking::try<R, F>"},
                {.function = "pyo3::impl_::trampoline::trampoline"},
        };
        memset(&t, 0, sizeof(t));
        classify(calls, MS_ARRAY_SIZE(calls));
        CHECK(ms_rust_frames_classify(calls, MS_ARRAY_SIZE(calls), &t));
        CHECK(!t.in_machinery && !t.panicking && t.site_index == -1);
        CHECK(t.kind == MS_RUST_PANIC_NONE);
        thread_free(&t);

        /* A C++ exception: unwinder frames only. */
        struct ms_frame cxx[] = {
                {.function = "_Unwind_RaiseException"},
                {.function = "__cxa_throw"},
                {.function = "f"},
        };
        memset(&t, 0, sizeof(t));
        classify(cxx, MS_ARRAY_SIZE(cxx));
        CHECK(ms_rust_frames_classify(cxx, MS_ARRAY_SIZE(cxx), &t));
        CHECK(!t.in_machinery && t.kind == MS_RUST_PANIC_NONE);
        thread_free(&t);
}

/* ------------------------------------------------------------------------
 * Synthetic memory (a debugger-fed target over a buffer)
 * ------------------------------------------------------------------------ */

#define FAKE_BASE 0x10000000u
#define FAKE_SIZE 0x10000u

static uint8_t fake[FAKE_SIZE];
/* The target reading fake[]: a debugger target keeps the pages it read
 * (the process holds still while it lives), so each change of fake[]
 * starts its cache afresh. */
static struct ms_target *fake_target;

static void fake_changed(void)
{
        if (fake_target)
                ms_target_cache_pages(fake_target);
}

static int fake_read(void *arg, uint64_t address, void *buf, size_t size)
{
        if (address < FAKE_BASE || address - FAKE_BASE > FAKE_SIZE ||
            size > FAKE_SIZE - (address - FAKE_BASE))
                return -1;
        memcpy(buf, fake + (address - FAKE_BASE), size);
        return 0;
}

static void put_u64(uint64_t address, uint64_t v)
{
        memcpy(fake + (address - FAKE_BASE), &v, 8);
        fake_changed();
}

static void put_u32(uint64_t address, uint32_t v)
{
        memcpy(fake + (address - FAKE_BASE), &v, 4);
        fake_changed();
}

static void put_text(uint64_t address, const char *text)
{
        memcpy(fake + (address - FAKE_BASE), text, strlen(text) + 1);
        fake_changed();
}

static void put_location(uint64_t at, uint64_t file, uint64_t len,
                         uint32_t line, uint32_t col)
{
        put_u64(at, file);
        put_u64(at + 8, len);
        put_u32(at + 16, line);
        put_u32(at + 20, col);
}

static void test_synthetic_location(struct ms_target *t)
{
        const uint64_t file = FAKE_BASE + 0x100, loc = FAKE_BASE + 0x200;
        struct ms_rust_location l;
        put_text(file, "src/lib.rs");
        put_location(loc, file, 10, 272, 9);
        CHECK(ms_rust_read_location(t, loc, &l));
        CHECK_STR(l.file, "src/lib.rs");
        CHECK(l.line == 272 && l.column == 9 && l.nul_terminated);
        ms_rust_location_deinit(&l);
        /* Every field is checked. */
        put_location(loc, file, 10, 0, 9);
        CHECK(!ms_rust_read_location(t, loc, &l));
        put_location(loc, file, 10, 1, 100000);
        CHECK(!ms_rust_read_location(t, loc, &l));
        put_location(loc, file, 5000, 1, 1);
        CHECK(!ms_rust_read_location(t, loc, &l));
        put_location(loc, file, 9, 1, 1); /* "src/lib.r" */
        CHECK(!ms_rust_read_location(t, loc, &l));
        put_location(loc, FAKE_BASE + FAKE_SIZE + 0x1000, 10, 1, 1);
        CHECK(!ms_rust_read_location(t, loc, &l));
        CHECK(!ms_rust_read_location(t, loc + 4, &l)); /* misaligned */
        put_text(file, "src/\x01ib.rs");
        put_location(loc, file, 10, 1, 1);
        CHECK(!ms_rust_read_location(t, loc, &l));
}

static void test_synthetic_strings(struct ms_target *t)
{
        const uint64_t text = FAKE_BASE + 0x300;
        char *s = NULL;
        put_text(text, "boom 4242 and more");
        uint64_t string[3] = {32, text, 9}, swapped[3] = {text, 32, 9};
        CHECK(ms_rust_decode_string(t, string, 3, true, &s));
        CHECK_STR(s, "boom 4242");
        free(s);
        CHECK(ms_rust_decode_string(t, swapped, 3, true, &s));
        CHECK_STR(s, "boom 4242");
        free(s);
        uint64_t slice[2] = {text, 4};
        CHECK(ms_rust_decode_string(t, slice, 2, false, &s));
        CHECK_STR(s, "boom");
        free(s);
        uint64_t bad_cap[3] = {3, text, 9}, empty[3] = {8, text, 0};
        CHECK(!ms_rust_decode_string(t, bad_cap, 3, true, &s));
        CHECK(!ms_rust_decode_string(t, empty, 3, true, &s));
        /* A length cut in the middle of a UTF-8 sequence is cut before
         * it when longer than the limit, rejected otherwise. */
        put_text(text, "\xc3\xa9");
        uint64_t half[2] = {text, 1};
        CHECK(!ms_rust_decode_string(t, half, 2, false, &s));
}

/* An exception object whose canary is the fake module's, a String cause;
 * then one with a foreign canary, and one whose cleanup pointer is not the
 * module's. */
static void test_synthetic_exception(struct ms_target *t)
{
        const uint64_t canary = FAKE_BASE + 0x400, cleanup = FAKE_BASE + 0x408;
        const uint64_t obj = FAKE_BASE + 0x1000, cause = FAKE_BASE + 0x1100;
        const uint64_t vtable = FAKE_BASE + 0x1200, text = FAKE_BASE + 0x1300;
        struct ms_rust_module module = {
                .path = "/fake/libx.so",
                .canary_address = canary,
                .cleanup_address = cleanup,
        };
        struct ms_rust_state state = {.modules = &module, .n_modules = 1};
        memcpy(fake + (obj - FAKE_BASE), "MOZ\0RUST", 8);
        fake_changed();
        put_u64(obj + 8, cleanup);
        put_u64(obj + 32, canary);
        put_u64(obj + 40, cause);
        put_u64(obj + 48, vtable);
        put_u64(vtable + 8, 24);
        put_u64(vtable + 16, 8);
        put_u64(cause, 64);
        put_u64(cause + 8, text);
        put_u64(cause + 16, 14);
        put_text(text, "original panic");
        struct ms_rust_exception e;
        CHECK(ms_rust_decode_exception(t, &state, obj, &e));
        CHECK(e.canary_verified && e.module == module.path);
        CHECK_STR(e.message, "original panic");
        free(e.message);
        /* &str payload. */
        put_u64(vtable + 8, 16);
        put_u64(cause, text);
        put_u64(cause + 8, 8);
        CHECK(ms_rust_decode_exception(t, &state, obj, &e));
        CHECK_STR(e.message, "original");
        free(e.message);
        /* A payload of another type: an object, no message. */
        put_u64(vtable + 8, 4);
        CHECK(ms_rust_decode_exception(t, &state, obj, &e));
        CHECK(e.message == NULL);
        put_u64(obj + 32, canary + 1);
        CHECK(!ms_rust_decode_exception(t, &state, obj, &e));
        put_u64(obj + 32, canary);
        put_u64(obj + 8, cleanup + 8);
        CHECK(!ms_rust_decode_exception(t, &state, obj, &e));
        put_u64(obj + 8, cleanup);
        memcpy(fake + (obj - FAKE_BASE), "MOZ\0RUSX", 8);
        fake_changed();
        CHECK(!ms_rust_decode_exception(t, &state, obj, &e));
}

/* The stack scan on a made-up stack: a library Location first (skipped),
 * then the user's with its String payload nearby. */
static void test_synthetic_scan(struct ms_target *t)
{
        const uint64_t sp = FAKE_BASE + 0x8000;
        const uint64_t core_file = FAKE_BASE + 0x2000,
                       user_file = FAKE_BASE + 0x2100;
        const uint64_t core_loc = FAKE_BASE + 0x2200,
                       user_loc = FAKE_BASE + 0x2220;
        const uint64_t heap = FAKE_BASE + 0x4000; /* outside the mapping */
        const uint64_t runtime = FAKE_BASE + 0x2400;
        memset(fake + (sp - FAKE_BASE), 0, 0x1000);
        fake_changed();
        put_text(core_file, "/rustc/x/library/core/src/panicking.rs");
        put_location(core_loc, core_file, 38, 225, 5);
        put_text(user_file, "src/lib.rs");
        put_location(user_loc, user_file, 10, 6, 9);
        put_text(heap, "rust panic from panicmod: x=13");
        put_u64(sp + 0x158, core_loc);
        put_u64(sp + 0x1a8, user_loc);
        put_u64(sp + 0x218, 48); /* String {cap, ptr, len} */
        put_u64(sp + 0x220, heap);
        put_u64(sp + 0x228, 30);
        struct ms_rust_state state = {0};
        struct ms_rust_thread th = {0};
        struct ms_error *err = ms_rust_scan_stack(t, &state, sp, &th);
        CHECK(!err);
        ms_error_destroy(err);
        CHECK_STR(th.file, "src/lib.rs");
        CHECK(th.line == 6 && th.column == 9);
        CHECK_STR(th.location_recovered_by, MS_RUST_BY_LOCATION_SCAN);
        CHECK_STR(th.message, "rust panic from panicmod: x=13");
        CHECK_STR(th.message_recovered_by, MS_RUST_BY_LOCATION_SCAN);
        free(th.file);
        free(th.message);
        /* The hook's text below sp is taken first. */
        memset(&th, 0, sizeof(th));
        static const char hook[] =
                "thread '<unnamed>' (27151) panicked at src/hook.rs:1:2:\n"
                "from the hook\n";
        memcpy(fake + (sp - 0x800 - FAKE_BASE), hook, sizeof(hook));
        fake_changed();
        err = ms_rust_scan_stack(t, &state, sp, &th);
        CHECK(!err);
        ms_error_destroy(err);
        CHECK_STR(th.message, "from the hook");
        CHECK_STR(th.message_recovered_by, MS_RUST_BY_HOOK_BUFFER);
        CHECK_STR(th.file, "src/hook.rs");
        CHECK_STR(th.hook_thread_name, "<unnamed>");
        free(th.file);
        free(th.message);
        free(th.hook_thread_name);
        memset(fake + (sp - 0x800 - FAKE_BASE), 0, sizeof(hook));
        fake_changed();
        /* Only a library location: it is reported, but neither core's
         * message nor a &str whose length runs past it into the next
         * literal is taken as the panic's. */
        memset(&th, 0, sizeof(th));
        put_u64(sp + 0x1a8, 0);
        put_u64(sp + 0x218, 0);
        put_u64(sp + 0x220, 0);
        put_u64(sp + 0x228, 0);
        put_text(runtime, "panic in a function that cannot unwind0001020304");
        put_u64(sp + 0x170, runtime);
        put_u64(sp + 0x178, 38);
        put_u64(sp + 0x190, runtime);
        put_u64(sp + 0x198, 48);
        err = ms_rust_scan_stack(t, &state, sp, &th);
        ms_error_destroy(err);
        CHECK(th.file && ms_rust_is_library_file(th.file));
        CHECK(th.message == NULL);
        free(th.file);
        free(th.message);
        /* A &str literal (in a file mapping) is a message. */
        memset(&th, 0, sizeof(th));
        put_text(FAKE_BASE + 0x2500, "static panic message");
        put_u64(sp + 0x1a8, user_loc);
        put_u64(sp + 0x1b0, FAKE_BASE + 0x2500);
        put_u64(sp + 0x1b8, 20);
        err = ms_rust_scan_stack(t, &state, sp, &th);
        ms_error_destroy(err);
        CHECK_STR(th.message, "static panic message");
        free(th.file);
        free(th.message);
}

static void test_synthetic(void)
{
        struct ms_target *t = NULL;
        struct ms_error *err =
                ms_target_create_debugger(fake_read, NULL, NULL, &t);
        CHECK(!err);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        fake_target = t;
        /* Texts below 0x3000 count as a module's literals, the rest as
         * heap. */
        err = ms_target_add_mapping(t, "/fake/libx.so", FAKE_BASE,
                                    FAKE_BASE + 0x3000, 0);
        CHECK(!err);
        ms_error_destroy(err);
        test_synthetic_location(t);
        test_synthetic_strings(t);
        test_synthetic_exception(t);
        test_synthetic_scan(t);
        /* No list of writable memory from a debugger. */
        struct ms_rust_region *r;
        size_t n;
        err = ms_rust_writable_regions(t, &r, &n);
        CHECK(err && err->code == MS_ERROR_UNSUPPORTED);
        ms_error_destroy(err);
        fake_target = NULL;
        ms_target_destroy(t);
}

int main(void)
{
        verbose = getenv("MIXSTACK_TEST_VERBOSE") != NULL;
        test_names();
        test_text();
        test_hook_text();
        test_frames();
        test_synthetic();
        test_live();
        int ran = test_samples();
        printf("%d crash-sample cores checked\n", ran);
        return unit_finish();
}
