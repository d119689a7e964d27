/*
 * native-demo: a multi-threaded C program with Rust frames in every stack,
 * the default sample of mixstack until the PyO3 samples exist.
 *
 *     native-demo wait     four workers and main block; prints "ready"
 *                          and stays alive (for gcore and live attach)
 *     native-demo panic    main panics in Rust (panic=abort: SIGABRT)
 *     native-demo segv     main writes through a null pointer in Rust
 *
 * Each worker goes C -> Rust (extern "C", generic, closure, inlined) -> C
 * and blocks in libc. The LINE: markers are looked up by the tests.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_WORKERS 4

/* rustlib.rs */
long demo_rust_worker(int kind);
long demo_rust_crash(int how);

static int never_written[2];
static pthread_mutex_t never_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cond = PTHREAD_COND_INITIALIZER;
static atomic_int n_blocked;

__attribute__((noinline)) static int block_in_read(void)
{
        char c;
        return (int)read(never_written[0], &c, 1); /* LINE:block_read */
}

__attribute__((noinline)) static int block_in_cond_wait(void)
{
        pthread_mutex_lock(&never_mutex);
        for (;;)
                pthread_cond_wait(&never_cond, &never_mutex); /* LINE:block_cond */
        return 0;
}

__attribute__((noinline)) static int block_in_nanosleep(void)
{
        struct timespec ts = {.tv_sec = 1000000};
        for (;;)
                nanosleep(&ts, NULL); /* LINE:block_nanosleep */
        return 0;
}

__attribute__((noinline)) static int block_in_poll(void)
{
        return poll(NULL, 0, -1); /* LINE:block_poll */
}

/* Called from Rust. */
__attribute__((noinline)) int demo_block(int kind)
{
        atomic_fetch_add(&n_blocked, 1);
        switch (kind) {
        case 0:
                return block_in_read() + 1; /* LINE:demo_block_read */
        case 1:
                return block_in_cond_wait() + 1; /* LINE:demo_block_cond */
        case 2:
                return block_in_nanosleep() + 1; /* LINE:demo_block_nanosleep */
        case 3:
                return block_in_poll() + 1; /* LINE:demo_block_poll */
        default:
                return block_in_read() + 1; /* LINE:demo_block_main */
        }
}

/* Inlined into c_worker_level: an inlined C frame. */
static inline __attribute__((always_inline)) long c_inlined(int kind)
{
        return demo_rust_worker(kind) + 1; /* LINE:c_inlined_call */
}

__attribute__((noinline)) static long c_worker_level(int kind)
{
        return c_inlined(kind) + 1; /* LINE:c_worker_level_call */
}

static void *worker_main(void *arg)
{
        int kind = (int)(long)arg;
        char name[16];
        snprintf(name, sizeof(name), "worker-%d", kind);
        pthread_setname_np(pthread_self(), name);
        c_worker_level(kind); /* LINE:worker_main_call */
        return NULL;
}

__attribute__((noinline)) static long c_crash_level(int how)
{
        return demo_rust_crash(how) + 1; /* LINE:c_crash_call */
}

static void wait_for_workers(void)
{
        while (atomic_load(&n_blocked) < N_WORKERS)
                usleep(1000);
        /* Give the last one time to enter its system call. */
        usleep(100 * 1000);
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "wait";
        if (strcmp(mode, "wait") != 0 && strcmp(mode, "panic") != 0 &&
            strcmp(mode, "segv") != 0) {
                fprintf(stderr, "usage: %s [wait|panic|segv]\n", argv[0]);
                return 2;
        }
        if (pipe(never_written) != 0) {
                perror("pipe");
                return 1;
        }
        pthread_t threads[N_WORKERS];
        for (long i = 0; i < N_WORKERS; i++)
                pthread_create(&threads[i], NULL, worker_main, (void *)i);
        wait_for_workers();

        if (strcmp(mode, "wait") == 0) {
                printf("ready %d\n", (int)getpid());
                fflush(stdout);
                c_worker_level(N_WORKERS); /* LINE:main_wait_call */
                return 0;
        }
        c_crash_level(strcmp(mode, "panic") == 0 ? 1 : 2); /* LINE:main_crash_call */
        return 0;
}
