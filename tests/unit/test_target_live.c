/* The live process backend: attach to a forked child, read it, detach, and
 * make sure the child runs on untraced, also when mixstack is killed while
 * attached. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>

#include "target/backend.h"
#include "target_fixture.h"
#include "unit.h"

#define N_THREADS 4

static bool stopped_state(char state)
{
        return state == 't' || state == 'T';
}

static bool traced_or_stopped(pid_t pid)
{
        int tids[FIXTURE_MAX_THREADS];
        int n = fixture_tids(pid, tids, FIXTURE_MAX_THREADS);
        for (int i = 0; i < n; i++) {
                /* /proc/TID/stat works for any thread. */
                char state = fixture_state(tids[i]);
                if (stopped_state(state))
                        return true;
        }
        return fixture_status_field(pid, "TracerPid:") != 0;
}

/* The child is running, untraced, and its threads make progress. */
static void check_released(pid_t pid, const char *what)
{
        CHECK(kill(pid, 0) == 0);
        CHECK(!stopped_state(fixture_state(pid)));
        CHECK(fixture_status_field(pid, "TracerPid:") == 0);
        CHECK(!traced_or_stopped(pid));
        bool running = fixture_running();
        CHECK(running);
        if (!running)
                printf("  %s: the child does not run after the detach\n", what);
}

static void test_attach(void)
{
        struct fixture_child child =
                fixture_spawn(N_THREADS, FIXTURE_SLEEP, NULL);
        int tids[FIXTURE_MAX_THREADS];
        int n_tids = fixture_tids(child.pid, tids, FIXTURE_MAX_THREADS);
        CHECK(n_tids == N_THREADS + 1);

        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_attach_pid(child.pid, NULL, &target);
        CHECK(!err);
        if (err) {
                printf("  attach: %s\n", err->message);
                ms_error_destroy(err);
                fixture_kill(&child);
                return;
        }
        CHECK(target->kind == MS_TARGET_PID);
        CHECK(target->pid == child.pid);
        CHECK(target->signo == 0);
        CHECK(target->n_threads == (size_t)n_tids);
        CHECK(target->threads[0].tid == child.pid);
        CHECK(target->vdso_address != 0);
        for (int i = 0; i < n_tids; i++) {
                struct ms_target_thread *t =
                        ms_target_find_thread(target, tids[i]);
                CHECK(t && t->have_regs && t->regs[MS_REG_RIP] != 0 &&
                      t->regs[MS_REG_RSP] != 0 && t->fs_base != 0);
                CHECK(t && t->name);
                if (t && t->tid != child.pid)
                        CHECK(t->name && strncmp(t->name, "worker-", 7) == 0);
                /* Stopped while we hold it. */
                CHECK(stopped_state(fixture_state(tids[i])));
        }
        CHECK(fixture_status_field(child.pid, "TracerPid:") == getpid());

        uint64_t marker = 0;
        err = ms_target_read_u64(target, (uint64_t)(uintptr_t)&fixture_marker,
                                 &marker);
        CHECK(!err && marker == FIXTURE_MARKER);
        ms_error_destroy(err);
        char *s = NULL;
        err = ms_target_read_string(target, (uint64_t)(uintptr_t)fixture_rodata,
                                    4096, &s, NULL);
        CHECK(!err);
        CHECK_STR(s, fixture_rodata);
        free(s);
        ms_error_destroy(err);
        uint64_t word;
        err = ms_target_read_u64(target, 16, &word);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);

        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        CHECK_STR(target->executable, exe);
        CHECK_STR(target->host_executable, exe);
        const struct ms_mapping *m = ms_target_find_mapping(
                target, (uint64_t)(uintptr_t)&fixture_marker);
        CHECK(m && strcmp(m->path, exe) == 0 && m->host_path);
        CHECK(target->warnings.n == 0);
        for (size_t i = 0; i < target->warnings.n; i++)
                printf("  warning: %s\n", target->warnings.items[i]);

        /* A process held by one target cannot be attached by another
         * (the kernel's rule, not the library's: it keeps no global live
         * target). */
        struct ms_target *second = NULL;
        err = ms_target_attach_pid(child.pid, NULL, &second);
        CHECK(err && err->code == MS_ERROR_PERMISSION);
        ms_error_destroy(err);

        ms_target_destroy(target);
        check_released(child.pid, "destroy");
        fixture_kill(&child);
}

/* ms_target_detach_now(), what a frontend's signal handler calls: the
 * process runs on at once, and the target reads no more. */
static void test_detach_now(void)
{
        struct fixture_child child =
                fixture_spawn(N_THREADS, FIXTURE_SLEEP, NULL);
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_attach_pid(child.pid, NULL, &target);
        CHECK(!err);
        ms_error_destroy(err);
        if (!err) {
                CHECK(stopped_state(fixture_state(child.pid)));
                ms_target_detach_now(target);
                check_released(child.pid, "detach_now");
                uint64_t word;
                err = ms_target_read_u64(
                        target, (uint64_t)(uintptr_t)&fixture_marker, &word);
                CHECK(err && err->code == MS_ERROR_INTERRUPTED);
                ms_error_destroy(err);
                ms_target_destroy(target);
                check_released(child.pid, "destroy after detach_now");
        }
        fixture_kill(&child);
}

/* The helper's handler, as the CLI's (cli/guard.c). */
static struct ms_target *volatile killed_target;
static void detach_and_die(int sig)
{
        if (killed_target)
                ms_target_detach_now(killed_target);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void test_bad_pids(void)
{
        struct ms_target *target = NULL;
        /* A pid just freed. */
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        waitpid(pid, NULL, 0);
        struct ms_error *err = ms_target_attach_pid(pid, NULL, &target);
        CHECK(err && err->code == MS_ERROR_NOT_FOUND);
        CHECK(err && strstr(err->message, "no process with pid"));
        if (err)
                printf("  %s\n", err->message);
        ms_error_destroy(err);

        err = ms_target_attach_pid(getpid(), NULL, &target);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
        err = ms_target_attach_pid(0, NULL, &target);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
        err = ms_target_attach_pid(-5, NULL, &target);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
}

/* An already traced process: the error names the tracer. */
static void test_already_traced(void)
{
        struct fixture_child child = fixture_spawn(1, FIXTURE_SLEEP, NULL);
        int fds[2];
        if (pipe(fds) < 0)
                return;
        pid_t tracer = fork();
        if (tracer == 0) {
                close(fds[0]);
                if (ptrace(PTRACE_SEIZE, child.pid, 0, 0) < 0)
                        _exit(1);
                (void)!write(fds[1], "x", 1);
                for (;;)
                        pause();
        }
        close(fds[1]);
        char c;
        bool ok = read(fds[0], &c, 1) == 1;
        close(fds[0]);
        CHECK(ok);
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_attach_pid(child.pid, NULL, &target);
        CHECK(err && err->code == MS_ERROR_PERMISSION);
        CHECK(err && strstr(err->message, "already traced by process"));
        if (err)
                printf("  %s\n", err->message);
        ms_error_destroy(err);
        if (!err)
                ms_target_destroy(target);
        kill(tracer, SIGKILL);
        waitpid(tracer, NULL, 0);
        fixture_kill(&child);
}

/* A helper attaches, then dies of sig: the child must be released. */
static void test_killed_while_attached(int sig)
{
        struct fixture_child child =
                fixture_spawn(N_THREADS, FIXTURE_SLEEP, NULL);
        int fds[2];
        if (pipe(fds) < 0)
                return;
        fflush(NULL);
        pid_t helper = fork();
        if (helper == 0) {
                close(fds[0]);
                struct ms_target *target = NULL;
                signal(sig, detach_and_die);
                struct ms_error *err =
                        ms_target_attach_pid(child.pid, NULL, &target);
                if (err)
                        _exit(1);
                killed_target = target;
                (void)!write(fds[1], "x", 1);
                if (sig == SIGSEGV) {
                        /* Quiet: a sanitizer would report the crash. */
                        int null = open("/dev/null", O_WRONLY);
                        if (null >= 0)
                                dup2(null, 2);
                        volatile uintptr_t bad = 8;
                        *(volatile int *)bad = 1;
                }
                for (;;)
                        pause();
        }
        close(fds[1]);
        char c;
        bool attached = read(fds[0], &c, 1) == 1;
        close(fds[0]);
        CHECK(attached);
        if (attached && sig != SIGSEGV) {
                CHECK(fixture_status_field(child.pid, "TracerPid:") == helper);
                CHECK(stopped_state(fixture_state(child.pid)));
                kill(helper, sig);
        }
        int status = 0;
        waitpid(helper, &status, 0);
        if (sig == SIGSEGV && FIXTURE_ASAN)
                CHECK(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
        else
                CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sig);
        char what[32];
        snprintf(what, sizeof(what), "signal %d", sig);
        check_released(child.pid, what);
        fixture_kill(&child);
}

static void measure_stop_time(enum fixture_mode mode, const char *what)
{
        struct fixture_child child = fixture_spawn(64, mode, NULL);
        uint64_t best = UINT64_MAX, worst = 0;
        for (int i = 0; i < 5; i++) {
                struct ms_target *target = NULL;
                struct ms_error *err =
                        ms_target_attach_pid(child.pid, NULL, &target);
                CHECK(!err && target->n_threads == 65);
                ms_error_destroy(err);
                if (err)
                        break;
                /* What a report needs at least: every thread's stack top. */
                for (size_t t = 0; t < target->n_threads; t++) {
                        uint8_t buf[256];
                        struct ms_error *e = ms_target_read(
                                target, target->threads[t].regs[MS_REG_RSP],
                                buf, sizeof(buf));
                        ms_error_destroy(e);
                }
                ms_target_thaw(target);
                uint64_t ns = ms_live_last_stop_ns(target);
                ms_target_destroy(target);
                best = MS_MIN(best, ns);
                worst = MS_MAX(worst, ns);
        }
        printf("  64 %s threads stopped for %.2f ms (best of 5; worst %.2f "
               "ms)\n",
               what, best / 1e6, worst / 1e6);
        check_released(child.pid, what);
        fixture_kill(&child);
}

/* Reads of a live process go through a cache of whole pages: results must
 * be those of uncached reads, at page boundaries, next to unmapped pages
 * (which must not poison their neighbours) and for large reads. */
#define CACHE_PAGES 8
static uint8_t pattern_byte(size_t i)
{
        return (uint8_t)(i * 7 + 3 + (i >> 12));
}

static void test_page_cache(void)
{
        long page = sysconf(_SC_PAGESIZE);
        size_t size = CACHE_PAGES * (size_t)page;
        uint8_t *region = mmap(NULL, size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(region != MAP_FAILED);
        if (region == MAP_FAILED)
                return;
        for (size_t i = 0; i < size; i++)
                region[i] = pattern_byte(i);
        /* Page 5 becomes a hole; the child inherits the layout. */
        munmap(region + 5 * page, (size_t)page);
        struct fixture_child child = fixture_spawn(1, FIXTURE_SLEEP, NULL);
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_attach_pid(child.pid, NULL, &target);
        CHECK(!err);
        if (err) {
                ms_error_destroy(err);
                fixture_kill(&child);
                munmap(region, size);
                return;
        }
        uint64_t base = (uint64_t)(uintptr_t)region;
        uint8_t buf[64 * 1024];
        bool same = true;
        /* Words around every boundary of the readable pages 0-4, twice. */
        for (int round = 0; round < 2; round++) {
                for (size_t b = 1; b < 5; b++) {
                        for (size_t at = b * page - 13; at < b * page + 13;
                             at++) {
                                err = ms_target_read(target, base + at, buf,
                                                     24);
                                CHECK(!err);
                                ms_error_destroy(err);
                                for (size_t k = 0; !err && k < 24; k++)
                                        same &= buf[k] == pattern_byte(at + k);
                        }
                }
        }
        CHECK(same);
        /* Into the hole: a fault, whatever was read before ... */
        err = ms_target_read(target, base + 5 * page - 8, buf, 16);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        err = ms_target_read(target, base + 5 * page + 8, buf, 8);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        /* ... and both neighbours still read. */
        err = ms_target_read(target, base + 5 * page - 8, buf, 8);
        CHECK(!err && memcmp(buf, region + 5 * page - 8, 8) == 0);
        ms_error_destroy(err);
        err = ms_target_read(target, base + 6 * page, buf, 8);
        CHECK(!err && memcmp(buf, region + 6 * page, 8) == 0);
        ms_error_destroy(err);
        /* A read larger than the cache serves at once, and one across the
         * hole fails. */
        err = ms_target_read(target, base, buf, 5 * (size_t)page);
        CHECK(!err && memcmp(buf, region, 5 * (size_t)page) == 0);
        ms_error_destroy(err);
        err = ms_target_read(target, base, buf, 7 * (size_t)page);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        /* Small reads spanning two cached pages, unaligned. */
        err = ms_target_read(target, base + page - 3, buf, (size_t)page + 6);
        CHECK(!err && memcmp(buf, region + page - 3, (size_t)page + 6) == 0);
        ms_error_destroy(err);
        ms_target_destroy(target);
        check_released(child.pid, "page cache");
        fixture_kill(&child);
        munmap(region, size);
}

static bool has_mapping_of(const struct ms_target *target, const char *path)
{
        for (size_t i = 0; i < target->n_mappings; i++) {
                if (strcmp(target->mappings[i].path, path) == 0)
                        return true;
        }
        return false;
}

/* A target opened running is not stopped until frozen; a file the process
 * maps meanwhile is among the mappings read at the freeze; after the thaw
 * the process runs untraced, and memory not read while it was stopped is
 * not read at all. */
static void test_open_freeze_thaw(void)
{
        static const char path[] = "/etc/passwd";
        int go[2], done[2];
        CHECK(pipe(go) == 0 && pipe(done) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                if (read(go[0], &c, 1) == 1) {
                        int fd = open(path, O_RDONLY);
                        void *p = fd >= 0 ? mmap(NULL, 4096, PROT_READ,
                                                 MAP_PRIVATE, fd, 0)
                                          : MAP_FAILED;
                        ssize_t n =
                                write(done[1], p == MAP_FAILED ? "n" : "y", 1);
                        (void)n;
                }
                for (;;)
                        pause();
        }
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_pid(pid, NULL, &target);
        CHECK(!err && target);
        ms_error_destroy(err);
        if (!target) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return;
        }
        CHECK(target->n_threads == 0);
        CHECK(!has_mapping_of(target, path));
        CHECK(fixture_status_field(pid, "TracerPid:") == 0);

        char c = 0;
        CHECK(write(go[1], "g", 1) == 1 && read(done[0], &c, 1) == 1);
        CHECK(c == 'y');
        bool froze = false, changed = false;
        err = ms_target_freeze(target, &froze, &changed);
        CHECK(!err && froze && changed);
        ms_error_destroy(err);
        CHECK(has_mapping_of(target, path));
        CHECK(target->n_threads == 1 && target->threads[0].have_regs);
        CHECK(fixture_status_field(pid, "TracerPid:") == getpid());
        uint64_t marker = 0;
        err = ms_target_read_u64(target, (uint64_t)(uintptr_t)&fixture_marker,
                                 &marker);
        CHECK(!err && marker == 1);
        ms_error_destroy(err);

        ms_target_thaw(target);
        CHECK(fixture_status_field(pid, "TracerPid:") == 0);
        /* Read while stopped: still there. */
        err = ms_target_read_u64(target, (uint64_t)(uintptr_t)&fixture_marker,
                                 &marker);
        CHECK(!err && marker == 1);
        ms_error_destroy(err);
        /* Not read while stopped: refused rather than read now. */
        err = ms_target_read_u64(target, (uint64_t)(uintptr_t)fixture_rodata,
                                 &marker);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        /* Stopped once: a second freeze stops nothing. */
        err = ms_target_freeze(target, &froze, &changed);
        CHECK(!err && !froze);
        ms_error_destroy(err);
        CHECK(fixture_status_field(pid, "TracerPid:") == 0);
        ms_target_destroy(target);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(go[0]);
        close(go[1]);
        close(done[0]);
        close(done[1]);
}

int main(void)
{
        if (geteuid() != 0) {
                long scope = -1;
                FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
                if (f) {
                        if (fscanf(f, "%ld", &scope) != 1)
                                scope = -1;
                        fclose(f);
                }
                /* Children can be traced even with scope 1. */
                if (scope >= 2)
                        unit_skip("ptrace is restricted (yama ptrace_scope)");
        }
        printf("attach\n");
        test_attach();
        printf("open, freeze, thaw\n");
        test_open_freeze_thaw();
        printf("page cache\n");
        test_page_cache();
        printf("bad pids\n");
        test_bad_pids();
        printf("already traced\n");
        test_already_traced();
        printf("detach now\n");
        test_detach_now();
        printf("killed while attached\n");
        test_killed_while_attached(SIGTERM);
        test_killed_while_attached(SIGINT);
        test_killed_while_attached(SIGSEGV);
        printf("stop time\n");
        measure_stop_time(FIXTURE_SLEEP, "sleeping");
        measure_stop_time(FIXTURE_SPIN, "spinning");
        return unit_finish();
}
