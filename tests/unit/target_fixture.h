/*
 * Fixtures for the target tests, made at run time: a child process (a fork
 * of the test, so its globals are at the same addresses) with a known
 * marker in memory, a string in .rodata, and a few named threads.
 */
#ifndef MIXSTACK_TESTS_TARGET_FIXTURE_H
#define MIXSTACK_TESTS_TARGET_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_MARKER 0x1122334455667788ULL

/* AddressSanitizer reserves terabytes of address space: gcore of such a
 * process runs for minutes and fills the disk, and ASan turns a SIGSEGV
 * into exit(1). */
#if defined(__SANITIZE_ADDRESS__)
#define FIXTURE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIXTURE_ASAN 1
#endif
#endif
#ifndef FIXTURE_ASAN
#define FIXTURE_ASAN 0
#endif
#define FIXTURE_MAX_THREADS 128

/* Rewritten by the child at run time: a core must hold the new value. It
 * is initialised so that it sits in .data, inside the executable's
 * mapping. */
volatile uint64_t fixture_marker = 1;
/* In .rodata: never dumped, read back through the executable. */
__attribute__((used)) static const char fixture_rodata[] =
        "mixstack fixture: a string in .rodata that no core dumps";

/* Shared with the child: a counter its threads bump while running. */
static volatile uint64_t *fixture_counter;

enum fixture_mode {
        FIXTURE_SLEEP, /* threads block */
        FIXTURE_SPIN,  /* threads busy-loop */
        FIXTURE_ABORT, /* main thread aborts once ready: a crash core */
        FIXTURE_SEGV,  /* worker 0 writes to FIXTURE_FAULT_ADDRESS */
};

#define FIXTURE_FAULT_ADDRESS 0x1234

static volatile int fixture_crash_now;

struct fixture_child {
        pid_t pid;
        int n_threads; /* besides the main thread */
};

static enum fixture_mode fixture_thread_mode;
static pthread_barrier_t fixture_barrier;

static __attribute__((unused)) void *fixture_thread(void *arg)
{
        char name[16];
        snprintf(name, sizeof(name), "worker-%d", (int)(intptr_t)arg);
        pthread_setname_np(pthread_self(), name);
        pthread_barrier_wait(&fixture_barrier);
        for (;;) {
                if (fixture_crash_now && arg == 0) {
                        volatile uintptr_t bad = FIXTURE_FAULT_ADDRESS;
                        *(volatile int *)bad = 1;
                }
                __atomic_fetch_add(fixture_counter, 1, __ATOMIC_RELAXED);
                if (fixture_thread_mode != FIXTURE_SPIN) {
                        struct timespec ts = {0, 1000000};
                        nanosleep(&ts, NULL);
                }
        }
        return NULL;
}

/* Fork a child with n_threads extra threads; returns once they all run.
 * FIXTURE_ABORT children chdir to dir and abort with cores enabled. */
static __attribute__((unused)) struct fixture_child fixture_spawn(
        int n_threads, enum fixture_mode mode, const char *dir)
{
        struct fixture_child child = {0, n_threads};
        if (!fixture_counter) {
                fixture_counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (fixture_counter == MAP_FAILED) {
                        perror("mmap");
                        exit(1);
                }
        }
        int fds[2];
        if (pipe(fds) < 0) {
                perror("pipe");
                exit(1);
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                exit(1);
        }
        if (pid == 0) {
                close(fds[0]);
                fixture_marker = FIXTURE_MARKER;
                fixture_thread_mode = mode;
                pthread_barrier_init(&fixture_barrier, NULL, n_threads + 1);
                for (int i = 0; i < n_threads; i++) {
                        pthread_t t;
                        if (pthread_create(&t, NULL, fixture_thread,
                                           (void *)(intptr_t)i) != 0)
                                _exit(2);
                }
                /* Every thread is named and running. */
                pthread_barrier_wait(&fixture_barrier);
                (void)!write(fds[1], "x", 1);
                close(fds[1]);
                if (mode == FIXTURE_ABORT || mode == FIXTURE_SEGV) {
                        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
                        setrlimit(RLIMIT_CORE, &rl);
                        prctl(PR_SET_DUMPABLE, 1);
                        if (chdir(dir) < 0)
                                _exit(3);
                        /* Let the threads reach their loops. */
                        struct timespec ts = {0, 50000000};
                        nanosleep(&ts, NULL);
                        signal(SIGABRT, SIG_DFL);
                        signal(SIGSEGV, SIG_DFL); /* not a sanitizer's */
                        if (mode == FIXTURE_ABORT)
                                abort();
                        fixture_crash_now = 1;
                }
                for (;;)
                        pause();
        }
        close(fds[1]);
        char c;
        if (read(fds[0], &c, 1) != 1) {
                fprintf(stderr, "fixture child did not start\n");
                exit(1);
        }
        close(fds[0]);
        child.pid = pid;
        /* Wait until every thread exists in /proc. */
        for (int tries = 0; tries < 2000; tries++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
                DIR *d = opendir(path);
                int n = 0;
                struct dirent *e;
                while (d && (e = readdir(d)))
                        n += e->d_name[0] != '.';
                if (d)
                        closedir(d);
                if (n >= n_threads + 1 || mode >= FIXTURE_ABORT)
                        break;
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
        }
        return child;
}

static __attribute__((unused)) void fixture_kill(struct fixture_child *child)
{
        if (child->pid > 0) {
                kill(child->pid, SIGKILL);
                waitpid(child->pid, NULL, 0);
                child->pid = 0;
        }
}

/* The tids of a live process, sorted; returns the count. */
static __attribute__((unused)) int int_cmp(const void *a, const void *b)
{
        return *(const int *)a - *(const int *)b;
}

static __attribute__((unused)) int fixture_tids(pid_t pid, int *tids, int max)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] != '.' && n < max)
                        tids[n++] = atoi(e->d_name);
        }
        if (d)
                closedir(d);
        qsort(tids, n, sizeof(int), int_cmp);
        return n;
}

/* State letter of /proc/PID/stat, or 0. */
static __attribute__((unused)) char fixture_state(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

/* A numeric field of /proc/PID/status, or -1. */
static __attribute__((unused)) long fixture_status_field(pid_t pid,
                                                         const char *field)
{
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strstr(buf, field);
        return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

/* Whether the child's threads make progress (not stopped). */
static __attribute__((unused)) bool fixture_running(void)
{
        uint64_t before = *fixture_counter;
        for (int i = 0; i < 500; i++) {
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
                if (*fixture_counter != before)
                        return true;
        }
        return false;
}

static __attribute__((unused)) char *fixture_tmpdir(void)
{
        char tmpl[] = "/tmp/mixstack-test-XXXXXX";
        char *dir = mkdtemp(tmpl);
        if (!dir) {
                perror("mkdtemp");
                exit(1);
        }
        return strdup(dir);
}

static __attribute__((unused)) void fixture_rmdir(const char *dir)
{
        char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0)
                (void)!system(cmd);
        free(cmd);
}

static __attribute__((unused)) bool fixture_have_gcore(void)
{
        return system("command -v gcore >/dev/null 2>&1") == 0;
}

/* gcore the child into dir; returns the core path (malloc'd) or NULL. */
static __attribute__((unused)) char *fixture_gcore(pid_t pid, const char *dir)
{
        char *cmd = NULL, *path = NULL;
        if (asprintf(&cmd, "gcore -o '%s/gcore' %d >/dev/null 2>&1", dir,
                     (int)pid) < 0)
                return NULL;
        int rc = system(cmd);
        free(cmd);
        if (asprintf(&path, "%s/gcore.%d", dir, (int)pid) < 0)
                return NULL;
        struct stat st;
        if (rc != 0 || stat(path, &st) < 0) {
                free(path);
                return NULL;
        }
        return path;
}

/* Whether the kernel writes cores into the crashing process's cwd. */
static __attribute__((unused)) bool fixture_core_pattern_local(void)
{
        char buf[256] = "";
        FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
        if (!f)
                return false;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = '\0';
        fclose(f);
        return buf[0] && buf[0] != '|' && !strchr(buf, '/');
}

/* Crash a child (mode FIXTURE_ABORT or FIXTURE_SEGV) in dir; returns its
 * core's path or NULL. */
static __attribute__((unused)) char *fixture_crash_core(int n_threads,
                                                        enum fixture_mode mode,
                                                        const char *dir,
                                                        pid_t *pid, int *tids,
                                                        int *n_tids)
{
        struct fixture_child child = fixture_spawn(n_threads, mode, dir);
        *pid = child.pid;
        *n_tids = fixture_tids(child.pid, tids, FIXTURE_MAX_THREADS);
        int status;
        waitpid(child.pid, &status, 0);
        if (!WIFSIGNALED(status) || !WCOREDUMP(status))
                return NULL;
        DIR *d = opendir(dir);
        struct dirent *e;
        char *path = NULL;
        while (d && (e = readdir(d))) {
                if (strncmp(e->d_name, "core", 4) == 0 && !path) {
                        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
                                path = NULL;
                }
        }
        if (d)
                closedir(d);
        return path;
}

#endif
