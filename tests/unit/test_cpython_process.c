/*
 * The CPython reader on real processes: for every installed interpreter,
 * run tests/helpers/blocked_stacks.py (two threads with known stacks),
 * gcore it, and check that ms_py_runtimes_find reads from the core the
 * version, the threads (native tids), and every frame (function,
 * qualname, file, line, entry flag) that the script recorded about itself.
 * Also: the same without an unwinder (ELF .dynsym/.PyRuntime only) and
 * with the exhaustive scan alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers/interpreters.h"
#include "cpython/cpython.h"
#include "unit.h"
#include "unwind/unwind.h"

#define MAX_EXP_THREADS 8
#define MAX_EXP_FRAMES 64

struct exp_frame {
        char entry; /* 'E', 'N' or '?' */
        int line;
        char function[128], qualname[256], file[1024];
};

struct exp_thread {
        pid_t tid;
        uint64_t ident;
        bool main;
        size_t n_frames;
        struct exp_frame frames[MAX_EXP_FRAMES];
};

struct expected {
        char version[64];
        uint32_t hexversion;
        size_t n_threads;
        struct exp_thread threads[MAX_EXP_THREADS];
};

static bool read_expected(const char *path, struct expected *e)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        memset(e, 0, sizeof(*e));
        char line[2048];
        struct exp_thread *t = NULL;
        bool ok = true;
        while (ok && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char role[16];
                unsigned long long ident;
                int tid;
                size_t n;
                if (sscanf(line, "version %63s %x", e->version,
                           &e->hexversion) == 2)
                        continue;
                if (sscanf(line, "thread %d %llu %15s %zu", &tid, &ident, role,
                           &n) == 4) {
                        ok = e->n_threads < MAX_EXP_THREADS;
                        if (!ok)
                                break;
                        t = &e->threads[e->n_threads++];
                        t->tid = tid;
                        t->ident = ident;
                        t->main = strcmp(role, "main") == 0;
                        continue;
                }
                ok = t && t->n_frames < MAX_EXP_FRAMES;
                if (!ok)
                        break;
                struct exp_frame *fr = &t->frames[t->n_frames++];
                int pos = 0;
                ok = sscanf(line, "frame %c %d %127s %255s %n", &fr->entry,
                            &fr->line, fr->function, fr->qualname, &pos) == 4 &&
                     pos > 0;
                if (ok)
                        snprintf(fr->file, sizeof(fr->file), "%s", line + pos);
        }
        fclose(f);
        return ok && e->n_threads > 0;
}

/* Wait up to timeout_ms for a line on fd; true when "READY" came. */
static bool wait_ready(int fd, int timeout_ms)
{
        char buf[256];
        size_t n = 0;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 200) > 0) {
                        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
                        if (r <= 0)
                                return false;
                        n += (size_t)r;
                        buf[n] = '\0';
                        if (strstr(buf, "READY"))
                                return true;
                        if (n >= sizeof(buf) - 1)
                                return false;
                }
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                long ms = (now.tv_sec - start.tv_sec) * 1000 +
                          (now.tv_nsec - start.tv_nsec) / 1000000;
                if (ms > timeout_ms)
                        return false;
        }
}

struct child {
        pid_t pid;
        int stdin_w, stdout_r;
};

static bool spawn(const char *python, const char *script, const char *expected,
                  struct child *c)
{
        int in[2], out[2];
        if (pipe(in) || pipe(out))
                return false;
        pid_t pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                close(in[1]);
                close(out[0]);
                execl(python, python, "-I", script, expected, (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        c->pid = pid;
        c->stdin_w = in[1];
        c->stdout_r = out[0];
        return true;
}

static void finish(struct child *c)
{
        close(c->stdin_w); /* the main thread's read returns: it exits */
        for (int i = 0; i < 100; i++) {
                if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
                        goto done;
                usleep(50000);
        }
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
done:
        close(c->stdout_r);
}

static bool make_core(pid_t pid, const char *prefix, char *core, size_t size)
{
        char cmd[8192];
        snprintf(cmd, sizeof(cmd), "gcore -o '%s' %d >/dev/null 2>&1", prefix,
                 (int)pid);
        if (system(cmd) != 0)
                return false;
        snprintf(core, size, "%s.%d", prefix, (int)pid);
        return access(core, R_OK) == 0;
}

static const struct ms_py_thread *find_thread(const struct ms_py_runtime *rt,
                                              pid_t tid)
{
        for (size_t i = 0; i < rt->n_threads; i++) {
                if (rt->threads[i].native_tid == tid)
                        return &rt->threads[i];
        }
        return NULL;
}

static void check_frames(const char *name, const struct exp_thread *et,
                         const struct ms_py_thread *t, bool has_qualname)
{
        CHECK(t->n_frames == et->n_frames);
        if (t->error)
                fprintf(stderr, "%s: thread %d: %s\n", name, (int)et->tid,
                        t->error);
        for (size_t i = 0; i < et->n_frames && i < t->n_frames; i++) {
                const struct exp_frame *e = &et->frames[i];
                const struct ms_py_frame *f = &t->frames[i];
                CHECK_STR(f->function, e->function);
                CHECK_STR(f->file, e->file);
                if (f->line != e->line)
                        fprintf(stderr, "%s: %s: line %d, want %d\n", name,
                                e->function, f->line, e->line);
                CHECK(f->line == e->line);
                if (has_qualname)
                        CHECK_STR(f->qualname, e->qualname);
                else
                        CHECK(f->qualname == NULL);
                if (e->entry != '?') {
                        if (f->is_entry != (e->entry == 'E'))
                                fprintf(stderr,
                                        "%s: %s: is_entry %d, want %c\n", name,
                                        e->function, f->is_entry, e->entry);
                        CHECK(f->is_entry == (e->entry == 'E'));
                }
        }
}

static void check_runtime(const char *name, const struct expected *e,
                          const struct ms_py_runtime *rt)
{
        int major = (int)(e->hexversion >> 24);
        int minor = (int)((e->hexversion >> 16) & 0xff);
        CHECK(rt->major == major && rt->minor == minor);
        /* The full version is known from Py_Version (3.11+), the debug
         * offsets, or the sys.version buffer in the core. */
        CHECK_STR(rt->version_string, e->version);
        CHECK(!rt->free_threaded);
        CHECK(rt->n_interps == 1);
        CHECK(rt->n_interps >= 1 && rt->interps[0].id == 0 &&
              rt->interps[0].is_main);
        CHECK(rt->n_threads == e->n_threads);
        for (size_t i = 0; i < rt->warnings.n; i++)
                fprintf(stderr, "%s: warning: %s\n", name,
                        rt->warnings.items[i]);
        for (size_t i = 0; i < e->n_threads; i++) {
                const struct exp_thread *et = &e->threads[i];
                const struct ms_py_thread *t = find_thread(rt, et->tid);
                if (!t)
                        fprintf(stderr, "%s: no thread with tid %d\n", name,
                                (int)et->tid);
                CHECK(t != NULL);
                if (!t)
                        continue;
                CHECK(t->pthread_id == et->ident);
                CHECK(t->interp_id == 0);
                check_frames(name, et, t, minor >= 11);
        }
}

static void check_find(const char *name, const char *what,
                       struct ms_target *target, struct ms_unwinder *unwinder,
                       const struct ms_py_find_options *options,
                       const struct expected *e, uint64_t *address)
{
        struct ms_py_runtime *rts = NULL;
        size_t n = 0;
        struct ms_error *err =
                ms_py_runtimes_find(target, unwinder, options, &rts, &n);
        if (err)
                fprintf(stderr, "%s (%s): %s\n", name, what, err->message);
        CHECK(err == NULL);
        ms_error_destroy(err);
        if (n != 1)
                fprintf(stderr, "%s (%s): %zu runtimes\n", name, what, n);
        CHECK(n == 1);
        if (n >= 1) {
                printf("%s (%s): CPython %s at 0x%" PRIx64 " found by %s, "
                       "%zu threads\n",
                       name, what, rts[0].version_string, rts[0].address,
                       rts[0].found_by, rts[0].n_threads);
                check_runtime(name, e, &rts[0]);
                if (*address)
                        CHECK(rts[0].address == *address);
                *address = rts[0].address;
        }
        ms_py_runtimes_destroy(rts, n);
}

static void test_python(const char *python)
{
        char name[256], expected_path[4608], prefix[4608], core[4700];
        char script[4096];
        test_python_name(python, name, sizeof(name));
        test_helper_path("blocked_stacks.py", script, sizeof(script));
        snprintf(expected_path, sizeof(expected_path),
                 "%s/cpython-expected-%s.txt", test_scratch_dir(), name);
        snprintf(prefix, sizeof(prefix), "%s/cpython-core-%s",
                 test_scratch_dir(), name);
        unlink(expected_path);
        struct child c = {0};
        CHECK(spawn(python, script, expected_path, &c));
        bool ready = wait_ready(c.stdout_r, 60000);
        if (!ready)
                fprintf(stderr, "%s: script did not get ready\n", name);
        CHECK(ready);
        bool cored = ready && make_core(c.pid, prefix, core, sizeof(core));
        if (ready && !cored)
                fprintf(stderr, "%s: gcore failed\n", name);
        CHECK(!ready || cored);
        finish(&c);
        struct expected *e = calloc(1, sizeof(*e));
        bool have = cored && read_expected(expected_path, e);
        CHECK(!cored || have);
        if (!have) {
                free(e);
                return;
        }

        struct ms_target *target = NULL;
        struct ms_unwinder *unwinder = NULL;
        struct ms_error *err = ms_target_open_core(core, NULL, &target);
        if (!err)
                err = ms_unwinder_create(target, &unwinder);
        if (err)
                fprintf(stderr, "%s: %s\n", name, err->message);
        CHECK(err == NULL);
        ms_error_destroy(err);
        if (target) {
                uint64_t address = 0;
                check_find(name, "unwinder", target, unwinder, NULL, e,
                           &address);
                check_find(name, "elf only", target, NULL, NULL, e, &address);
                struct ms_py_find_options scan = {.exhaustive = true,
                                                  .skip_modules = true};
                check_find(name, "scan only", target, NULL, &scan, e, &address);
        }
        ms_unwinder_destroy(unwinder);
        ms_target_destroy(target);
        free(e);
        if (!getenv("MIXSTACK_KEEP_CORES"))
                unlink(core);
}

int main(void)
{
        if (system("command -v gcore >/dev/null 2>&1") != 0)
                unit_skip("gcore not installed");
        struct test_pythons pythons;
        test_pythons_find(&pythons);
        if (pythons.n == 0)
                unit_skip("no CPython 3.8+ interpreter found");
        for (size_t i = 0; i < pythons.n; i++)
                test_python(pythons.paths[i]);
        test_pythons_free(&pythons);
        return unit_finish();
}
