/*
 * The native unwinder against eu-stack, on the native demo: a gcore core,
 * the live process, and a core from a real crash; a thread stopped in the
 * vdso; then hostile targets (garbage registers and memory) that must give
 * partial stacks, not crashes or hangs. The comparisons are skipped without
 * rustc, gcore or eu-stack.
 */
#include <glob.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target/target.h"
#include "unit.h"
#include "unwind/unwind.h"

#define MAX_REF_THREADS 64
#define MAX_REF_FRAMES 256

/* eu-stack's view of one thread. */
struct ref_thread {
        pid_t tid;
        size_t n;
        uint64_t pc[MAX_REF_FRAMES];
        char *name[MAX_REF_FRAMES];
};

struct ref {
        struct ref_thread threads[MAX_REF_THREADS];
        size_t n;
};

static char *source_dir, *tmpdir;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool have_tool(const char *tool)
{
        char *cmd = NULL;
        if (asprintf(&cmd, "command -v %s >/dev/null 2>&1", tool) < 0)
                return false;
        bool ok = system(cmd) == 0;
        free(cmd);
        return ok;
}

static void ref_free(struct ref *ref)
{
        for (size_t i = 0; i < ref->n; i++) {
                for (size_t j = 0; j < ref->threads[i].n; j++)
                        free(ref->threads[i].name[j]);
        }
        ref->n = 0;
}

/* Parse "TID n:" and "#k 0x<pc> <raw name>" lines of eu-stack -r. */
static bool run_eu_stack(const char *args, struct ref *ref, double *seconds)
{
        char *cmd = NULL;
        if (asprintf(&cmd, "eu-stack -r -n 0 %s 2>/dev/null", args) < 0)
                return false;
        double start = now();
        FILE *f = popen(cmd, "r");
        free(cmd);
        if (!f)
                return false;
        memset(ref, 0, sizeof(*ref));
        char line[4096];
        struct ref_thread *t = NULL;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                int tid;
                unsigned idx;
                uint64_t pc;
                int pos = 0;
                if (sscanf(line, "TID %d:", &tid) == 1) {
                        t = ref->n < MAX_REF_THREADS ? &ref->threads[ref->n++]
                                                     : NULL;
                        if (t)
                                t->tid = tid;
                } else if (t && t->n < MAX_REF_FRAMES &&
                           sscanf(line, "#%u 0x%" SCNx64 " %n", &idx, &pc,
                                  &pos) == 2) {
                        t->pc[t->n] = pc;
                        t->name[t->n] = pos ? strdup(line + pos) : NULL;
                        t->n++;
                }
        }
        pclose(f);
        if (seconds)
                *seconds = now() - start;
        return ref->n > 0;
}

static const struct ref_thread *ref_find(const struct ref *ref, pid_t tid)
{
        for (size_t i = 0; i < ref->n; i++) {
                if (ref->threads[i].tid == tid)
                        return &ref->threads[i];
        }
        return NULL;
}

/* The demo binary, built on demand; NULL when it cannot be. */
static char *native_demo(const char *name)
{
        if (!source_dir || !have_tool("rustc") || !have_tool("cc"))
                return NULL;
        char *cmd = NULL, *path = NULL;
        if (asprintf(&cmd, "'%s/scripts/build-native-demo' >/dev/null",
                     source_dir) < 0)
                return NULL;
        int status = system(cmd);
        free(cmd);
        if (status != 0)
                return NULL;
        if (asprintf(&path, "%s/build/native-demo/%s", source_dir, name) < 0)
                return NULL;
        return path;
}

/* Start "exe wait" and return its pid once every thread blocks. */
static pid_t start_demo(const char *exe)
{
        int fds[2];
        if (pipe(fds) != 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                execl(exe, exe, "wait", (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        char buf[64] = "";
        ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        if (n <= 0 || strncmp(buf, "ready", 5) != 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
        }
        /* Main prints "ready" just before it blocks in read (system call
         * 0): wait until it does, for stacks that stay put. */
        char path[64], line[64];
        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
        for (int i = 0; i < 500; i++) {
                FILE *f = fopen(path, "r");
                bool in_read = f && fgets(line, sizeof(line), f) &&
                               strncmp(line, "0 ", 2) == 0;
                if (f)
                        fclose(f);
                if (in_read)
                        break;
                usleep(10 * 1000);
        }
        return pid;
}

static void stop_demo(pid_t pid)
{
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* The "State:" and "TracerPid:" of /proc/pid/status. */
static void process_state(pid_t pid, char *state, int *tracer)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        *state = '?';
        *tracer = -1;
        FILE *f = fopen(path, "r");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                sscanf(line, "State: %c", state);
                sscanf(line, "TracerPid: %d", tracer);
        }
        fclose(f);
}

/* Source line of the "LINE:<marker>" comment in the demo's file. */
static int marker_line(const char *file, const char *marker)
{
        char *path = NULL, line[1024], *needle = NULL;
        if (asprintf(&path, "%s/crash-samples/native-demo/%s", source_dir,
                     file) < 0 ||
            asprintf(&needle, "LINE:%s ", marker) < 0)
                return -1;
        FILE *f = fopen(path, "r");
        free(path);
        int n = 0, found = -1;
        while (f && fgets(line, sizeof(line), f)) {
                n++;
                line[strcspn(line, "\n")] = ' ';
                if (strstr(line, needle))
                        found = n;
        }
        if (f)
                fclose(f);
        free(needle);
        return found;
}

struct stacks {
        struct ms_native_stack *stacks;
        pid_t *tids;
        size_t n;
};

static void stacks_free(struct stacks *s)
{
        for (size_t i = 0; i < s->n; i++)
                ms_native_stack_deinit(&s->stacks[i]);
        free(s->stacks);
        free(s->tids);
}

static struct ms_error *unwind_all(struct ms_target *target, struct stacks *s,
                                   unsigned max_frames, double *seconds)
{
        double start = now();
        struct ms_unwinder *u;
        struct ms_error *err = ms_unwinder_create(target, &u);
        if (err)
                return err;
        s->n = target->n_threads;
        s->stacks = calloc(s->n + 1, sizeof(*s->stacks));
        s->tids = calloc(s->n + 1, sizeof(*s->tids));
        for (size_t i = 0; !err && i < s->n; i++) {
                s->tids[i] = target->threads[i].tid;
                err = ms_unwind_thread(u, i, max_frames, &s->stacks[i]);
        }
        ms_unwinder_destroy(u);
        if (seconds)
                *seconds = now() - start;
        return err;
}

/* Every thread: the physical frames' pcs and raw symbols are eu-stack's. */
static void compare(const struct stacks *s, const struct ref *ref,
                    const char *what)
{
        CHECK(s->n == ref->n);
        for (size_t i = 0; i < s->n; i++) {
                const struct ref_thread *r = ref_find(ref, s->tids[i]);
                CHECK(r != NULL);
                if (!r)
                        continue;
                const struct ms_native_stack *st = &s->stacks[i];
                size_t k = 0;
                bool same = true;
                for (size_t j = 0; j < st->n_frames; j++) {
                        const struct ms_frame *f = &st->frames[j];
                        if (f->inlined)
                                continue;
                        if (k >= r->n || f->pc != r->pc[k] || !f->raw_symbol ||
                            !r->name[k] ||
                            strcmp(f->raw_symbol, r->name[k]) != 0) {
                                fprintf(stderr,
                                        "%s: tid %d frame %zu: 0x%" PRIx64
                                        " %s vs eu-stack 0x%" PRIx64 " %s\n",
                                        what, (int)s->tids[i], k, f->pc,
                                        f->raw_symbol ? f->raw_symbol : "?",
                                        k < r->n ? r->pc[k] : 0,
                                        k < r->n && r->name[k] ? r->name[k]
                                                               : "?");
                                same = false;
                                break;
                        }
                        k++;
                }
                if (same && k != r->n)
                        fprintf(stderr, "%s: tid %d: %zu frames vs %zu\n", what,
                                (int)s->tids[i], k, r->n);
                CHECK(same && k == r->n);
                if (st->error)
                        fprintf(stderr, "%s: tid %d: error %s\n", what,
                                (int)s->tids[i], st->error);
                CHECK(st->error == NULL);
        }
}

static const struct ms_frame *find_function(const struct ms_native_stack *st,
                                            const char *function)
{
        for (size_t j = 0; j < st->n_frames; j++) {
                if (st->frames[j].function &&
                    strcmp(st->frames[j].function, function) == 0)
                        return &st->frames[j];
        }
        return NULL;
}

static void check_frame(const struct ms_native_stack *st, const char *function,
                        const char *file, const char *marker, bool inlined,
                        enum ms_language language)
{
        const struct ms_frame *f = find_function(st, function);
        if (!f) {
                fprintf(stderr, "no frame %s\n", function);
                CHECK(f != NULL);
                return;
        }
        int want = marker_line(file, marker);
        bool ok = f->file && strstr(f->file, file) && f->line == want &&
                  f->inlined == inlined && f->language == language;
        if (!ok)
                fprintf(stderr,
                        "frame %s: %s:%d inlined %d language %d, want "
                        "%s:%d inlined %d language %d\n",
                        function, f->file ? f->file : "?", f->line, f->inlined,
                        f->language, file, want, inlined, language);
        CHECK(ok);
}

/* Names, source lines, inlined frames and languages of the workers. */
static void check_demo_frames(const struct stacks *s, bool v0)
{
        enum ms_language C = MS_LANGUAGE_C, R = MS_LANGUAGE_RUST;
        size_t workers = 0;
        for (size_t i = 0; i < s->n; i++) {
                const struct ms_native_stack *st = &s->stacks[i];
                if (!find_function(st, "worker_main"))
                        continue;
                workers++;
                check_frame(st, "c_inlined", "native-demo.c", "c_inlined_call",
                            true, C);
                check_frame(st, "c_worker_level", "native-demo.c",
                            "c_worker_level_call", false, C);
                check_frame(st, "worker_main", "native-demo.c",
                            "worker_main_call", false, C);
                check_frame(st, "demo::inlined_level", "rustlib.rs",
                            "rust_inlined_call", true, R);
                check_frame(st,
                            v0 ? "demo::closure_level::{closure#0}"
                               : "demo::closure_level::{{closure}}",
                            "rustlib.rs", "rust_closure_call", false, R);
                check_frame(st, "demo::closure_level", "rustlib.rs",
                            "rust_closure_level_call", false, R);
                /* Even kinds call the i32 instance, odd ones u8. */
                const struct ms_frame *f =
                        find_function(st, "demo_rust_worker");
                CHECK(f && f->language == R &&
                      (f->line == marker_line("rustlib.rs",
                                              "rust_worker_call_i32") ||
                       f->line == marker_line("rustlib.rs",
                                              "rust_worker_call_u8")));
        }
        CHECK(workers == 4);
}

static struct ms_target *open_core(const char *core, const char *exe)
{
        /* A crash sample's core: in the lane's root for lane artefacts. */
        char *dir = strdup(core);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
                *slash = 0;
        char *sysroot = slash ? unit_sample_sysroot(dir) : NULL;
        free(dir);
        struct ms_target_options options = {.executable = exe,
                                            .sysroot = sysroot};
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(core, &options, &target);
        free(sysroot);
        if (err) {
                fprintf(stderr, "open %s: %s\n", core, err->message);
                ms_error_destroy(err);
        }
        CHECK(target != NULL);
        return target;
}

static void test_core_and_live(const char *name, bool v0)
{
        char *exe = native_demo(name);
        if (!exe) {
                printf("%s: skipped (cannot build the native demo)\n", name);
                return;
        }
        pid_t pid = start_demo(exe);
        CHECK(pid > 0);
        if (pid <= 0)
                return;

        /* Live: attach, unwind, detach; then eu-stack. */
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_attach_pid(pid, NULL, &target);
        struct stacks live = {0};
        double live_s = 0;
        if (err) {
                fprintf(stderr, "attach: %s\n", err->message);
                CHECK(err == NULL);
        } else {
                err = unwind_all(target, &live, 1024, &live_s);
                CHECK(err == NULL);
                ms_target_destroy(target);
        }
        ms_error_destroy(err);
        char state;
        int tracer;
        usleep(50 * 1000);
        process_state(pid, &state, &tracer);
        CHECK(state == 'S' && tracer == 0);

        struct ref ref;
        char args[2048];
        double eu_live_s = 0;
        snprintf(args, sizeof(args), "-p %d", (int)pid);
        CHECK(run_eu_stack(args, &ref, &eu_live_s));
        if (live.n) {
                compare(&live, &ref, "live");
                check_demo_frames(&live, v0);
        }
        ref_free(&ref);
        stacks_free(&live);

        /* gcore snapshot. */
        char core[512];
        snprintf(core, sizeof(core), "%s/%s.core", tmpdir, name);
        char *cmd = NULL;
        if (asprintf(&cmd,
                     "gcore -o '%s' %d >/dev/null 2>&1 && mv '%s.%d' '%s'",
                     core, (int)pid, core, (int)pid, core) < 0)
                cmd = NULL;
        int status = cmd ? system(cmd) : -1;
        free(cmd);
        stop_demo(pid);
        CHECK(status == 0);
        if (status != 0)
                return;

        target = open_core(core, exe);
        if (!target)
                return;
        struct stacks snap = {0};
        double core_s = 0, eu_core_s = 0;
        err = unwind_all(target, &snap, 1024, &core_s);
        CHECK(err == NULL);
        ms_error_destroy(err);

        /* Symbol lookup: a LOCAL symbol of .symtab, and one of libc. */
        struct ms_unwinder *u = NULL;
        CHECK(ms_unwinder_create(target, &u) == NULL);
        uint64_t address = 0, size = 0;
        char suffix[64];
        snprintf(suffix, sizeof(suffix), "/%s", name);
        err = ms_unwinder_find_symbol(u, suffix, "demo_block", &address, &size);
        CHECK(err == NULL && address && size);
        ms_error_destroy(err);
        err = ms_unwinder_find_symbol(u, "libc.so.6", "abort", &address, &size);
        CHECK(err == NULL && address);
        ms_error_destroy(err);
        err = ms_unwinder_find_symbol(u, NULL, "no such symbol", &address,
                                      &size);
        CHECK(err && err->code == MS_ERROR_NOT_FOUND);
        ms_error_destroy(err);
        ms_unwinder_destroy(u);
        ms_target_destroy(target);

        snprintf(args, sizeof(args), "--core '%s' -e '%s'", core, exe);
        CHECK(run_eu_stack(args, &ref, &eu_core_s));
        compare(&snap, &ref, "gcore");
        check_demo_frames(&snap, v0);
        ref_free(&ref);
        stacks_free(&snap);
        printf("%s: live %.3fs (eu-stack %.3fs), core %.3fs (eu-stack "
               "%.3fs)\n",
               name, live_s, eu_live_s, core_s, eu_core_s);
        unlink(core);
        free(exe);
}

/* A real crash: "panic" aborts through Rust's panic machinery. */
static void test_crash(const char *name, const char *mode, int signo)
{
        char *exe = native_demo(name);
        if (!exe)
                return;
        char pattern[256] = "";
        int fd = open("/proc/sys/kernel/core_pattern", O_RDONLY);
        if (fd >= 0) {
                ssize_t n = read(fd, pattern, sizeof(pattern) - 1);
                pattern[n > 0 ? n : 0] = '\0';
                close(fd);
        }
        pattern[strcspn(pattern, "\n")] = '\0';
        if (strcmp(pattern, "core") != 0 && strcmp(pattern, "core.%p") != 0) {
                printf("crash: skipped (core_pattern is '%s')\n", pattern);
                free(exe);
                return;
        }
        pid_t pid = fork();
        if (pid == 0) {
                struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
                setrlimit(RLIMIT_CORE, &rl);
                if (chdir(tmpdir) != 0)
                        _exit(126);
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                execl(exe, exe, mode, (char *)NULL);
                _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == signo);
        CHECK(WIFSIGNALED(status) && WCOREDUMP(status));
        char core[512];
        snprintf(core, sizeof(core), "%s/core", tmpdir);
        if (access(core, R_OK) != 0)
                snprintf(core, sizeof(core), "%s/core.%d", tmpdir, (int)pid);
        struct ms_target *target = open_core(core, exe);
        if (!target) {
                free(exe);
                return;
        }
        struct stacks s = {0};
        CHECK(unwind_all(target, &s, 1024, NULL) == NULL);
        pid_t crashed = target->signal_tid;
        ms_target_destroy(target);
        struct ref ref;
        char args[1024];
        snprintf(args, sizeof(args), "--core '%s' -e '%s'", core, exe);
        CHECK(run_eu_stack(args, &ref, NULL));
        compare(&s, &ref, mode);
        ref_free(&ref);

        /* The crashing thread goes through the crash site in Rust. */
        for (size_t i = 0; i < s.n; i++) {
                if (s.tids[i] != crashed)
                        continue;
                check_frame(&s.stacks[i], "demo::do_crash", "rustlib.rs",
                            signo == SIGABRT ? "rust_panic" : "rust_segv",
                            false, MS_LANGUAGE_RUST);
                check_frame(&s.stacks[i], "c_crash_level", "native-demo.c",
                            "c_crash_call", false, MS_LANGUAGE_C);
                if (signo == SIGABRT)
                        CHECK(find_function(&s.stacks[i],
                                            "__rustc::rust_begin_unwind"));
        }
        stacks_free(&s);
        unlink(core);
        free(exe);
}

/* ------------------------------------------------------------------------
 * The vdso
 * ------------------------------------------------------------------------ */

__attribute__((noinline, noreturn)) static void spin_in_vdso(void)
{
        struct timespec ts;
        for (;;)
                clock_gettime(CLOCK_MONOTONIC, &ts);
}

/* AT_SYSINFO_EHDR of pid. */
static uint64_t vdso_of(pid_t pid)
{
        char path[64];
        uint64_t kv[2], address = 0;
        snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
        FILE *f = fopen(path, "r");
        while (f && fread(kv, sizeof(kv), 1, f) == 1) {
                if (kv[0] == AT_SYSINFO_EHDR)
                        address = kv[1];
        }
        if (f)
                fclose(f);
        return address;
}

/* A thread stopped in the vdso is named from the vdso's own symbols and
 * unwinds with its CFI, read from target memory. */
static void test_vdso(void)
{
        pid_t pid = fork();
        if (pid == 0)
                spin_in_vdso();
        usleep(100 * 1000);
        bool seen = false;
        for (int attempt = 0; attempt < 20 && !seen; attempt++) {
                struct ms_target *target = NULL;
                struct ms_error *err = ms_target_attach_pid(pid, NULL, &target);
                if (err) {
                        fprintf(stderr, "attach: %s\n", err->message);
                        ms_error_destroy(err);
                        break;
                }
                /* Until the backends record it themselves. */
                if (!target->vdso_address)
                        target->vdso_address = vdso_of(pid);
                struct stacks s = {0};
                CHECK(unwind_all(target, &s, 64, NULL) == NULL);
                ms_target_destroy(target);
                const struct ms_native_stack *st = &s.stacks[0];
                if (st->n_frames && st->frames[0].module &&
                    strcmp(st->frames[0].module, "[vdso]") == 0) {
                        seen = true;
                        CHECK(st->frames[0].function &&
                              strstr(st->frames[0].function, "clock_gettime"));
                        CHECK(find_function(st, "spin_in_vdso") != NULL);
                        CHECK(find_function(st, "main") != NULL);
                        CHECK(st->error == NULL);
                }
                stacks_free(&s);
        }
        CHECK(seen);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------------------
 * Hostile targets
 * ------------------------------------------------------------------------ */

/* Memory: a self-referencing frame-pointer chain at 0x10000 ("loop"), a
 * chain that goes on forever ("endless"), or random bytes. */
enum memory_kind { MEMORY_LOOP, MEMORY_ENDLESS, MEMORY_RANDOM, MEMORY_NONE };

static int read_memory(void *arg, uint64_t address, void *buf, size_t size)
{
        enum memory_kind kind = *(enum memory_kind *)arg;
        uint8_t *out = buf;
        for (size_t i = 0; i < size; i += 8) {
                uint64_t a = address + i, v;
                switch (kind) {
                case MEMORY_LOOP:
                        v = a % 16 == 0 ? a : 0x4000;
                        break;
                case MEMORY_ENDLESS:
                        v = a % 16 == 0 ? a + 16 : 0x4000 + a;
                        break;
                case MEMORY_RANDOM:
                        v = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
                        break;
                default:
                        return -1;
                }
                memcpy(out + i, &v, MS_MIN(8, size - i));
        }
        return 0;
}

static void test_hostile(void)
{
        static const enum memory_kind kinds[] = {MEMORY_LOOP, MEMORY_ENDLESS,
                                                 MEMORY_RANDOM, MEMORY_NONE};
        srand(1);
        for (size_t k = 0; k < MS_ARRAY_SIZE(kinds); k++) {
                enum memory_kind kind = kinds[k];
                struct ms_target *target = NULL;
                struct ms_error *err = ms_target_create_debugger(
                        read_memory, &kind, NULL, &target);
                CHECK(err == NULL);
                if (err) {
                        ms_error_destroy(err);
                        continue;
                }
                /* Registers: the chain's start, zeros, random. */
                for (int t = 0; t < 20; t++) {
                        uint64_t regs[MS_NUM_REGS];
                        for (int r = 0; r < MS_NUM_REGS; r++)
                                regs[r] = t == 1 ? 0
                                                 : ((uint64_t)rand() << 32) ^
                                                           (uint64_t)rand();
                        if (t == 0) {
                                regs[MS_REG_RIP] = 0x4000;
                                regs[MS_REG_RBP] = 0x10000;
                                regs[MS_REG_RSP] = 0xff00;
                        }
                        ms_target_add_thread(target, 100 + t, NULL, regs, 0);
                }
                /* A mapping of a file that is not ELF, and one that is. */
                ms_target_add_mapping(target, "/etc/passwd", 0x1000, 0x2000, 0);
                ms_target_set_process(target, 100, NULL, 0, 0);
                struct stacks s = {0};
                err = unwind_all(target, &s, 64, NULL);
                CHECK(err == NULL);
                ms_error_destroy(err);
                for (size_t i = 0; i < s.n; i++) {
                        CHECK(s.stacks[i].n_frames <= 64);
                        /* Garbage never ends cleanly. */
                        CHECK(s.stacks[i].error != NULL ||
                              s.stacks[i].n_frames >= 1);
                }
                /* libdwfl's frame-pointer fallback refuses a chain that
                 * does not go up the stack; the walk must still end. */
                if (kind == MEMORY_LOOP)
                        CHECK(s.stacks[0].error != NULL &&
                              s.stacks[0].n_frames < 64);
                if (kind == MEMORY_ENDLESS) {
                        const char *e = s.stacks[0].error;
                        CHECK(e && strstr(e, "stopped after"));
                }
                stacks_free(&s);
                ms_target_destroy(target);
        }
}

/* The unwinding rules cached per address and libdwfl's own unwinder give
 * the same stacks (pcs, activation flags, reasons for stopping) on every
 * thread of every crash-sample core there is: the cache is a shortcut, not
 * a second opinion. */
static void compare_unwinders(struct ms_target *target, size_t *n_threads,
                              size_t *n_frames)
{
        struct ms_unwinder *cached = NULL, *plain = NULL;
        CHECK(ms_unwinder_create(target, &cached) == NULL);
        CHECK(ms_unwinder_create(target, &plain) == NULL);
        if (!cached || !plain) {
                ms_unwinder_destroy(cached);
                ms_unwinder_destroy(plain);
                return;
        }
        ms_unwinder_set_names_only(cached, true);
        ms_unwinder_set_names_only(plain, true);
        ms_unwinder_set_cfi_cache(plain, false);
        for (size_t i = 0; i < target->n_threads; i++) {
                struct ms_native_stack a, b;
                CHECK(ms_unwind_thread(cached, i, 1024, &a) == NULL);
                CHECK(ms_unwind_thread(plain, i, 1024, &b) == NULL);
                bool same = a.n_frames == b.n_frames && !a.error == !b.error &&
                            (!a.error || strcmp(a.error, b.error) == 0);
                for (size_t k = 0; same && k < a.n_frames; k++)
                        same = a.frames[k].pc == b.frames[k].pc &&
                               a.frames[k].is_activation ==
                                       b.frames[k].is_activation;
                if (!same)
                        printf("  thread %d: %zu frames (%s) vs %zu (%s)\n",
                               (int)target->threads[i].tid, a.n_frames,
                               a.error ? a.error : "-", b.n_frames,
                               b.error ? b.error : "-");
                CHECK(same);
                *n_threads += 1;
                *n_frames += a.n_frames;
                ms_native_stack_deinit(&a);
                ms_native_stack_deinit(&b);
        }
        ms_unwinder_destroy(cached);
        ms_unwinder_destroy(plain);
}

static void test_rules_agree(void)
{
        const char *samples = getenv("MIXSTACK_SAMPLES_DIR");
        char *pattern = NULL;
        int n = samples ? asprintf(&pattern, "%s/artefacts/*/*/core", samples)
                        : asprintf(&pattern,
                                   "%s/build/samples/artefacts/*/*/core",
                                   source_dir ? source_dir : ".");
        if (n < 0)
                return;
        glob_t g;
        int r = glob(pattern, 0, NULL, &g);
        free(pattern);
        if (r != 0) {
                printf("cached rules vs libdwfl: skipped (no sample cores)\n");
                return;
        }
        size_t n_threads = 0, n_frames = 0;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                struct ms_target *target = open_core(g.gl_pathv[i], NULL);
                if (!target)
                        continue;
                compare_unwinders(target, &n_threads, &n_frames);
                ms_target_destroy(target);
        }
        printf("cached rules vs libdwfl: %zu cores, %zu threads, %zu frames\n",
               g.gl_pathc, n_threads, n_frames);
        CHECK(n_frames > 0);
        globfree(&g);
}

int main(void)
{
        source_dir = getenv("MIXSTACK_SOURCE_DIR");
        char tmpl[] = "/tmp/mixstack-unwind-XXXXXX";
        tmpdir = mkdtemp(tmpl);
        if (!tmpdir)
                unit_skip("cannot create a temporary directory");
        test_hostile();
        test_vdso();
        test_rules_agree();
        if (!have_tool("eu-stack") || !have_tool("gcore")) {
                printf("eu-stack/gcore comparisons skipped\n");
        } else {
                test_core_and_live("native-demo", false);
                test_core_and_live("native-demo-v0", true);
                test_crash("native-demo", "panic", SIGABRT);
                test_crash("native-demo-v0", "segv", SIGSEGV);
        }
        char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", tmpdir) >= 0 && system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", tmpdir);
        free(cmd);
        return unit_finish();
}
