/*
 * The live process backend. A target is opened with the process running:
 * its mappings and files are read then, and the unwinder can load its
 * modules' symbol tables and CFI while the process goes on. Freezing seizes
 * and interrupts every thread with ptrace and reads the registers; thawing
 * (or ms_target_destroy()) detaches them again. Pages read while frozen
 * stay cached after the thaw; memory not read by then is gone, so reads
 * after the thaw that miss the cache fail rather than mix two moments.
 *
 * PTRACE_SEIZE + PTRACE_INTERRUPT rather than PTRACE_ATTACH: no SIGSTOP is
 * queued, so nothing is left pending after the detach and the process
 * simply runs on. A signal that arrives for a thread while we hold it is
 * recorded and handed back to it at the detach.
 *
 * The library keeps no global state for live targets and installs no
 * signal handler. A frontend that may be killed while it holds a process
 * stopped calls ms_target_detach_now() from its own handlers (the CLI does,
 * for SIGINT, SIGTERM, SIGHUP, SIGQUIT and its own crashes); the handler
 * must run on the thread that attached (ptrace is per thread), which is
 * always the case for a single-threaded frontend.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target/backend.h"

/* How long a thread may take to stop after PTRACE_INTERRUPT. */
#define STOP_TIMEOUT_NS (3 * 1000000000LL)
/* Re-list the threads at most this often while new ones keep appearing. */
#define MAX_ATTACH_ROUNDS 50

struct live_thread {
        pid_t tid;
        /* A signal that arrived while stopped, re-injected at detach. */
        int signo;
        bool stopped;
};

struct live_target {
        struct ms_target target;
        int mem_fd;
        struct live_thread *threads;
        size_t n_threads, capacity;
        struct timespec first_interrupt;
        /* The file-backed lines of /proc/PID/maps when opened, to notice
         * libraries loaded or unloaded before the freeze. */
        char *maps_text;
        /* Threads are seized: detach them. */
        bool attached;
        /* Frozen and thawed again: the process runs on. */
        bool resumed;
        /* The seized tids, for ms_target_detach_now() (MS_MAX_THREADS
         * entries, allocated at open: nothing grows under a signal
         * handler). */
        pid_t *signal_tids;
        size_t n_signal_tids;
        /* ms_target_detach_now() ran: reads fail from then on. */
        volatile sig_atomic_t detached_now;
        /* From the first PTRACE_INTERRUPT to the last PTRACE_DETACH. */
        uint64_t last_stop_ns;
};

/* ------------------------------------------------------------------------
 * Detaching from a signal handler
 *
 * The library installs no signal handler: it lives inside debuggers, whose
 * signal dispositions are theirs. A frontend that may be killed while it
 * holds a process stopped (the CLI) installs its own handlers and calls
 * ms_target_detach_now() from them. That function only reads this
 * target's tid table (fixed-size, published with release stores) and
 * makes raw system calls.
 * ------------------------------------------------------------------------ */

static struct live_target *to_live(struct ms_target *target)
{
        return (struct live_target *)target;
}

static long raw_ptrace(long request, pid_t tid, long data)
{
        return syscall(SYS_ptrace, request, (long)tid, 0L, data);
}

/* Publish a seized tid to ms_target_detach_now(). */
static void signal_table_add(struct live_target *live, pid_t tid)
{
        size_t n = __atomic_load_n(&live->n_signal_tids, __ATOMIC_RELAXED);
        if (!live->signal_tids || n >= MS_MAX_THREADS)
                return;
        live->signal_tids[n] = tid;
        __atomic_store_n(&live->n_signal_tids, n + 1, __ATOMIC_RELEASE);
}

void ms_live_detach_now(struct ms_target *target)
{
        struct live_target *live = to_live(target);
        int saved_errno = errno;
        size_t n =
                __atomic_exchange_n(&live->n_signal_tids, 0, __ATOMIC_ACQ_REL);
        for (size_t i = 0; i < n; i++) {
                pid_t tid = live->signal_tids[i];
                /* A thread seized but not stopped yet cannot be detached:
                 * give it a moment to reach its stop. */
                for (int tries = 0; tries < 100; tries++) {
                        if (raw_ptrace(PTRACE_DETACH, tid, 0) == 0 ||
                            errno != ESRCH)
                                break;
                        int status;
                        if (waitpid(tid, &status, __WALL | WNOHANG) < 0 &&
                            errno == ECHILD)
                                break; /* gone */
                        struct timespec ms = {0, 1000000};
                        nanosleep(&ms, NULL);
                }
        }
        live->detached_now = 1;
        errno = saved_errno;
}

uint64_t ms_live_last_stop_ns(const struct ms_target *target)
{
        return ((const struct live_target *)target)->last_stop_ns;
}

/* ------------------------------------------------------------------------
 * /proc
 * ------------------------------------------------------------------------ */

/* Read a small /proc file into buf (NUL-terminated). */
static bool read_proc(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        size_t len = 0;
        while (len < size - 1) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        return true;
}

/* A numeric field ("TracerPid:") of /proc/PID/status, or -1. */
static long status_field(pid_t pid, const char *field)
{
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!read_proc(path, buf, sizeof(buf)))
                return -1;
        char *p = strstr(buf, field);
        if (!p)
                return -1;
        return strtol(p + strlen(field), NULL, 10);
}

static char *read_comm(pid_t pid, pid_t tid)
{
        char path[64], buf[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid,
                 (int)tid);
        if (!read_proc(path, buf, sizeof(buf)))
                return NULL;
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

/* Why PTRACE_SEIZE said EPERM, in words. */
static struct ms_error *explain_eperm(pid_t pid)
{
        struct ms_error *err;
        long tracer = status_field(pid, "TracerPid:");
        char buf[64];
        long scope = -1;
        if (read_proc("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)) &&
            buf[0])
                scope = strtol(buf, NULL, 10);
        long uid = status_field(pid, "Uid:");
        if (tracer > 0) {
                char path[64], comm[64] = "?";
                snprintf(path, sizeof(path), "/proc/%ld/comm", tracer);
                if (read_proc(path, comm, sizeof(comm)))
                        comm[strcspn(comm, "\n")] = '\0';
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: it is "
                                      "already traced by process %ld (%s); "
                                      "detach that debugger first",
                                      (int)pid, tracer, comm);
        } else if (scope == 1 && geteuid() != 0) {
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: "
                                      "kernel.yama.ptrace_scope is 1, which "
                                      "only allows tracing descendants; run "
                                      "as root or set it to 0 (sysctl "
                                      "kernel.yama.ptrace_scope=0)",
                                      (int)pid);
        } else if (scope == 2) {
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: "
                                      "kernel.yama.ptrace_scope is 2, which "
                                      "only allows tracing with "
                                      "CAP_SYS_PTRACE (run as root)",
                                      (int)pid);
        } else if (scope == 3) {
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: "
                                      "kernel.yama.ptrace_scope is 3, which "
                                      "disables ptrace until reboot",
                                      (int)pid);
        } else if (uid >= 0 && (uid_t)uid != geteuid() && geteuid() != 0) {
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: it "
                                      "belongs to user %ld; run as that user "
                                      "or as root",
                                      (int)pid, uid);
        } else {
                err = ms_error_create(MS_ERROR_PERMISSION,
                                      "cannot attach to process %d: ptrace "
                                      "is not permitted (missing "
                                      "CAP_SYS_PTRACE, a seccomp filter in a "
                                      "container, or a set-uid process?)",
                                      (int)pid);
        }
        if (!err->is_static)
                err->errnum = EPERM;
        return err;
}

/* ------------------------------------------------------------------------
 * Attaching
 * ------------------------------------------------------------------------ */

/* Whether a thread is a zombie or dead: ptrace refuses those with EPERM,
 * which is then no permission problem. */
static bool is_exiting(pid_t pid, pid_t tid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
                 (int)tid);
        if (!read_proc(path, buf, sizeof(buf)))
                return false;
        char *p = strrchr(buf, ')');
        return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static bool is_seized(const struct live_target *live, pid_t tid)
{
        for (size_t i = 0; i < live->n_threads; i++) {
                if (live->threads[i].tid == tid)
                        return true;
        }
        return false;
}

static struct ms_error *seize(struct live_target *live, pid_t tid)
{
        if (live->n_threads >= MS_MAX_THREADS)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "process %d has more than %d threads",
                                       (int)live->target.pid, MS_MAX_THREADS);
        if (!ms_grow((void **)&live->threads, &live->capacity, live->n_threads,
                     sizeof(*live->threads)))
                return &ms_error_no_memory;
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
                if (errno == ESRCH)
                        return NULL; /* exited meanwhile */
                if (errno == EPERM && is_exiting(live->target.pid, tid))
                        return NULL; /* a zombie (the leader, say) */
                if (errno == EPERM)
                        return explain_eperm(live->target.pid);
                return ms_error_from_errno(errno, "cannot attach to thread %d",
                                           (int)tid);
        }
        live->threads[live->n_threads++] = (struct live_thread){.tid = tid};
        signal_table_add(live, tid);
        if (live->n_threads == 1)
                clock_gettime(CLOCK_MONOTONIC, &live->first_interrupt);
        if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
                return ms_error_from_errno(errno, "cannot stop thread %d",
                                           (int)tid);
        return NULL;
}

/* Seize every thread of /proc/PID/task not seized yet; *n_new says how
 * many were new. */
static struct ms_error *seize_new_threads(struct live_target *live,
                                          size_t *n_new)
{
        char path[64];
        pid_t pid = live->target.pid;
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *dir = opendir(path);
        if (!dir) {
                if (errno == ENOENT)
                        return ms_error_create(MS_ERROR_NOT_FOUND,
                                               "no process with pid %d",
                                               (int)pid);
                return ms_error_from_errno(errno, "cannot list %s", path);
        }
        struct ms_error *err = NULL;
        struct dirent *entry;
        *n_new = 0;
        while (!err && (entry = readdir(dir))) {
                char *end;
                long tid = strtol(entry->d_name, &end, 10);
                if (*end || tid <= 0 || tid > INT32_MAX)
                        continue;
                if (is_seized(live, (pid_t)tid))
                        continue;
                size_t before = live->n_threads;
                err = seize(live, (pid_t)tid);
                *n_new += live->n_threads - before;
        }
        closedir(dir);
        return err;
}

static int64_t elapsed_ns(const struct timespec *since)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - since->tv_sec) * 1000000000LL +
               (now.tv_nsec - since->tv_nsec);
}

/* Forget thread i (it exited). */
static void drop_thread(struct live_target *live, size_t i)
{
        live->threads[i] = live->threads[--live->n_threads];
}

/* Wait until every seized thread is in a ptrace stop; threads that exit
 * are dropped. */
static struct ms_error *wait_for_stops(struct live_target *live)
{
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned spins = 0;; spins++) {
                size_t pending = 0;
                for (size_t i = 0; i < live->n_threads;) {
                        struct live_thread *t = &live->threads[i];
                        if (t->stopped) {
                                i++;
                                continue;
                        }
                        int status;
                        pid_t r = waitpid(t->tid, &status, __WALL | WNOHANG);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if ((r < 0 && errno == ECHILD) ||
                            (r > 0 && !WIFSTOPPED(status))) {
                                drop_thread(live, i);
                                continue;
                        }
                        if (r < 0)
                                return ms_error_from_errno(
                                        errno, "cannot wait for thread %d",
                                        (int)t->tid);
                        if (r > 0) {
                                t->stopped = true;
                                /* Not our interrupt: a signal arrived and
                                 * must be delivered after the detach. */
                                if (status >> 16 == 0)
                                        t->signo = WSTOPSIG(status);
                        } else {
                                pending++;
                        }
                        i++;
                }
                if (!pending)
                        return NULL;
                if (elapsed_ns(&start) > STOP_TIMEOUT_NS) {
                        for (size_t i = 0; i < live->n_threads; i++) {
                                if (!live->threads[i].stopped)
                                        return ms_error_create(
                                                MS_ERROR_OS,
                                                "thread %d of process %d did "
                                                "not stop "
                                                "within %lld s (in "
                                                "uninterruptible sleep?)",
                                                (int)live->threads[i].tid,
                                                (int)live->target.pid,
                                                STOP_TIMEOUT_NS / 1000000000LL);
                        }
                }
                if (spins < 64) {
                        sched_yield();
                } else {
                        struct timespec pause = {0, 50000};
                        nanosleep(&pause, NULL);
                }
        }
}

/* Seize and stop every thread; threads created meanwhile by threads not
 * yet stopped show up in the next listing, and a listing with nothing new
 * after all threads stopped is final. */
static struct ms_error *stop_all_threads(struct live_target *live)
{
        for (int round = 0; round < MAX_ATTACH_ROUNDS; round++) {
                size_t n_new = 0;
                struct ms_error *err = seize_new_threads(live, &n_new);
                if (!err)
                        err = wait_for_stops(live);
                if (err)
                        return err;
                if (!n_new) {
                        if (!live->n_threads)
                                return ms_error_create(MS_ERROR_NOT_FOUND,
                                                       "process %d exited",
                                                       (int)live->target.pid);
                        return NULL;
                }
        }
        return ms_error_create(MS_ERROR_OS,
                               "threads of process %d kept appearing while "
                               "attaching",
                               (int)live->target.pid);
}

static void detach_all(struct live_target *live)
{
        if (!live->attached)
                return;
        live->attached = false;
        /* From here the threads are ours to detach, not a handler's. */
        __atomic_store_n(&live->n_signal_tids, 0, __ATOMIC_RELEASE);
        for (size_t i = 0; i < live->n_threads; i++) {
                struct live_thread *t = &live->threads[i];
                if (ptrace(PTRACE_DETACH, t->tid, 0, (long)t->signo) < 0 &&
                    !t->stopped) {
                        /* Seized but never seen stopped (an error path):
                         * wait briefly for the stop, then detach. */
                        for (int tries = 0; tries < 100; tries++) {
                                int status;
                                if (waitpid(t->tid, &status,
                                            __WALL | WNOHANG) != 0)
                                        break;
                                struct timespec ms = {0, 1000000};
                                nanosleep(&ms, NULL);
                        }
                        ptrace(PTRACE_DETACH, t->tid, 0, 0);
                }
        }
        if (live->n_threads)
                live->last_stop_ns =
                        (uint64_t)elapsed_ns(&live->first_interrupt);
        live->n_threads = 0;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

static struct ms_error *live_read(struct ms_target *target, uint64_t address,
                                  void *buf, size_t size)
{
        struct live_target *live = to_live(target);
        if (live->detached_now)
                return ms_error_create(MS_ERROR_INTERRUPTED,
                                       "interrupted: process %d was detached",
                                       (int)target->pid);
        if (live->resumed)
                return ms_error_create(MS_ERROR_FAULT,
                                       "0x%" PRIx64 " was not read while "
                                       "process %d was stopped",
                                       address, (int)target->pid);
        size_t done = 0;
        struct iovec local = {buf, size};
        struct iovec remote = {(void *)(uintptr_t)address, size};
        ssize_t n = process_vm_readv(target->pid, &local, 1, &remote, 1, 0);
        if (n > 0)
                done = (size_t)n;
        /* /proc/PID/mem reads what process_vm_readv may not (PROT_NONE
         * pages, or no process_vm_readv in a sandbox). */
        while (done < size && live->mem_fd >= 0 &&
               address + done <= INT64_MAX) {
                ssize_t r = pread(live->mem_fd, (uint8_t *)buf + done,
                                  size - done, (off_t)(address + done));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                done += (size_t)r;
        }
        if (done < size)
                return ms_error_create(MS_ERROR_FAULT,
                                       "cannot read %zu bytes at 0x%" PRIx64,
                                       size, address);
        return NULL;
}

static void live_destroy(struct ms_target *target)
{
        struct live_target *live = to_live(target);
        detach_all(live);
        if (live->mem_fd >= 0)
                close(live->mem_fd);
        free(live->threads);
        free(live->signal_tids);
        free(live->maps_text);
        free(live);
}

/* ------------------------------------------------------------------------
 * Filling the target
 * ------------------------------------------------------------------------ */

static struct ms_error *read_threads(struct live_target *live)
{
#if defined(__x86_64__)
        _Static_assert(sizeof(struct user_regs_struct) ==
                               MS_USER_REGS_WORDS * sizeof(uint64_t),
                       "user_regs_struct layout");
        pid_t pid = live->target.pid;
        /* The main thread first, then in /proc order. */
        for (size_t i = 0; i < live->n_threads; i++) {
                if (live->threads[i].tid == pid && i) {
                        struct live_thread main = live->threads[i];
                        memmove(&live->threads[1], &live->threads[0],
                                i * sizeof(main));
                        live->threads[0] = main;
                }
        }
        for (size_t i = 0; i < live->n_threads; i++) {
                pid_t tid = live->threads[i].tid;
                struct user_regs_struct user;
                uint64_t words[MS_USER_REGS_WORDS], regs[MS_NUM_REGS];
                uint64_t fs_base = 0;
                bool have = ptrace(PTRACE_GETREGS, tid, 0, &user) == 0;
                if (have) {
                        memcpy(words, &user, sizeof(words));
                        ms_regs_from_user_regs(words, regs, &fs_base);
                } else {
                        ms_warnings_add(
                                &live->target.warnings,
                                "cannot read the registers of thread %d: %s",
                                (int)tid, strerror(errno));
                }
                char *name = read_comm(pid, tid);
                struct ms_error *err = ms_target_append_thread(
                        &live->target, tid, name, have ? regs : NULL, fs_base);
                free(name);
                if (err)
                        return err;
                if (have)
                        live->target.threads[live->target.n_threads - 1]
                                .syscall_nr = (int64_t)user.orig_rax;
        }
        return NULL;
#else
        return ms_error_create(MS_ERROR_UNSUPPORTED,
                               "live processes are only supported on x86-64");
#endif
}

/* The file-backed lines of /proc/PID/maps (only files are mappings, like
 * a core's NT_FILE), malloc'd; *vdso gets the vdso's address. */
static struct ms_error *read_maps_text(pid_t pid, char **ret, uint64_t *vdso)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return ms_error_from_errno(errno, "cannot open %s", path);
        char *text = NULL, *line = NULL;
        size_t text_size = 0, cap = 0;
        FILE *out = open_memstream(&text, &text_size);
        if (!out) {
                fclose(f);
                return &ms_error_no_memory;
        }
        while (getline(&line, &cap, f) > 0) {
                const char *name = strchr(line, '/');
                if (strstr(line, "[vdso]"))
                        *vdso = strtoull(line, NULL, 16);
                if (name)
                        fputs(line, out);
        }
        free(line);
        fclose(f);
        if (fclose(out) != 0 || !text) {
                free(text);
                return &ms_error_no_memory;
        }
        *ret = text;
        return NULL;
}

/* Append the mappings of the lines of text (which is cut up). */
static struct ms_error *add_mappings(struct live_target *live, char *text)
{
        struct ms_error *err = NULL;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && !err;
             line = strtok_r(NULL, "\n", &save)) {
                uint64_t start, end, offset;
                int name = 0;
                if (sscanf(line,
                           "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %n",
                           &start, &end, &offset, &name) < 3 ||
                    !name || line[name] != '/')
                        continue;
                err = ms_target_append_mapping(&live->target, line + name,
                                               start, end, offset);
        }
        if (!err)
                ms_target_finish_mappings(&live->target);
        return err;
}

/* Read the mappings; when the target has some already (read when opened),
 * replace them only if the process mapped or unmapped files since. */
static struct ms_error *read_maps(struct live_target *live, bool *changed)
{
        char *text = NULL;
        struct ms_error *err = read_maps_text(live->target.pid, &text,
                                              &live->target.vdso_address);
        if (err)
                return err;
        *changed = !live->maps_text || strcmp(text, live->maps_text) != 0;
        if (!*changed) {
                free(text);
                return NULL;
        }
        free(live->maps_text);
        live->maps_text = text;
        char *copy = strdup(text);
        if (!copy)
                return &ms_error_no_memory;
        ms_target_clear_mappings(&live->target);
        err = add_mappings(live, copy);
        free(copy);
        return err;
}

static struct ms_error *read_executable(struct live_target *live)
{
        char path[64], exe[4096];
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)live->target.pid);
        ssize_t n = readlink(path, exe, sizeof(exe) - 1);
        if (n <= 0) {
                ms_warnings_add(&live->target.warnings, "cannot read %s: %s",
                                path, strerror(errno));
                return NULL;
        }
        exe[n] = '\0';
        live->target.executable = strdup(exe);
        return live->target.executable ? NULL : &ms_error_no_memory;
}

static struct ms_error *check_pid(pid_t pid, pid_t *tgid)
{
        if (pid <= 0)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "invalid pid %d", (int)pid);
        long t = status_field(pid, "Tgid:");
        if (t <= 0)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "no process with pid %d", (int)pid);
        if (t == getpid())
                return ms_error_create(
                        MS_ERROR_INVALID_ARGUMENT,
                        "cannot attach to mixstack itself (pid %d)", (int)pid);
        *tgid = (pid_t)t;
        return NULL;
}

/* /proc/PID/mem, when allowed: before the process is ours to trace, a
 * restricted ptrace scope (yama 1) refuses it. */
static void open_mem(struct live_target *live)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)live->target.pid);
        if (live->mem_fd < 0)
                live->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
}

/* Stop every thread and read what only a stopped process can give: the
 * registers, and memory that holds still. */
static struct ms_error *live_freeze(struct ms_target *target,
                                    bool *mappings_changed)
{
        struct live_target *live = to_live(target);
        *mappings_changed = false;
        live->attached = true;
        struct ms_error *err = stop_all_threads(live);
        if (err)
                return err;
        open_mem(live);
        /* Pages cached before the stop may have changed: start afresh.
         * From here memory cannot change, so whole pages are read once (a
         * system call per 8-byte read of the unwinder was most of the time
         * the process stayed stopped). */
        ms_target_cache_pages(target);
        err = read_threads(live);
        if (!err)
                err = read_maps(live, mappings_changed);
        return err;
}

static void live_thaw(struct ms_target *target)
{
        struct live_target *live = to_live(target);
        if (live->resumed)
                return;
        detach_all(live);
        live->resumed = true;
}

static const struct ms_target_ops live_ops = {
        .read = live_read,
        .freeze = live_freeze,
        .thaw = live_thaw,
        .destroy = live_destroy,
};

static struct ms_error *open_running(struct live_target *live)
{
        open_mem(live);
        /* The executable first: the mappings resolve it to a host file. */
        bool changed;
        struct ms_error *err = read_executable(live);
        return err ? err : read_maps(live, &changed);
}

struct ms_error *ms_target_open_pid(pid_t pid,
                                    const struct ms_target_options *options,
                                    struct ms_target **ret)
{
        if (!ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no target to return");
        pid_t tgid = 0;
        struct ms_error *err = check_pid(pid, &tgid);
        if (err)
                return err;
        struct live_target *live = calloc(1, sizeof(*live));
        if (!live)
                return &ms_error_no_memory;
        live->mem_fd = -1;
        live->signal_tids = calloc(MS_MAX_THREADS, sizeof(pid_t));
        if (!live->signal_tids) {
                free(live);
                return &ms_error_no_memory;
        }
        err = ms_target_init(&live->target, &live_ops, MS_TARGET_PID, options);
        if (!err) {
                live->target.pid = tgid;
                if (tgid != pid)
                        ms_warnings_add(&live->target.warnings,
                                        "%d is a thread of process %d: "
                                        "showing the whole process",
                                        (int)pid, (int)tgid);
                err = open_running(live);
        }
        if (err) {
                ms_target_destroy(&live->target);
                return err;
        }
        *ret = &live->target;
        return NULL;
}

struct ms_error *ms_target_attach_pid(pid_t pid,
                                      const struct ms_target_options *options,
                                      struct ms_target **ret)
{
        struct ms_target *target;
        struct ms_error *err = ms_target_open_pid(pid, options, &target);
        if (err)
                return err;
        bool froze, changed;
        err = ms_target_freeze(target, &froze, &changed);
        if (err) {
                /* Destroy detaches whatever was seized. */
                ms_target_destroy(target);
                return err;
        }
        *ret = target;
        return NULL;
}
