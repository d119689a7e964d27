/* The parts of `mixstack run`: the process tree (run_tree.c) and finding
 * cores (run_cores.c). */
#ifndef MIXSTACK_CLI_RUN_H
#define MIXSTACK_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "mixstack/mixstack.h"

/* ------------------------------------------------------------------------
 * The process tree: every process below mixstack. mixstack is a child
 * subreaper, so orphans stay in the tree (reparented to it).
 * ------------------------------------------------------------------------ */

/* What is known of a process of the tree, from /proc while it lived. */
struct run_proc {
        pid_t pid;
        pid_t ppid;
        /* Start time in clock ticks since boot (tells reused pids apart)
         * and as wall-clock seconds. */
        unsigned long long start_ticks;
        time_t start_time;
        char comm[32];
        /* The last working directory seen; NULL when unreadable. */
        char *cwd;
        uid_t uid;
        /* Seen in the last scan. */
        bool alive;
        /* mixstack reaped it itself (it saw its exit status). */
        bool reaped;
};

struct run_tree {
        pid_t root;
        struct run_proc *procs;
        size_t n;
        size_t capacity;
};

void run_tree_init(struct run_tree *tree, pid_t root);
void run_tree_deinit(struct run_tree *tree);

/* Rescan /proc: add new descendants, refresh the working directories.
 * Processes of the tree that are gone (and were not reaped by mixstack)
 * are appended to *gone (pids; the caller frees it). */
void run_tree_scan(struct run_tree *tree, pid_t **gone, size_t *n_gone);

/* The known process with pid, or NULL. */
struct run_proc *run_tree_find(struct run_tree *tree, pid_t pid);

/* The live (not zombie) descendants of root right now, parents before
 * children (malloc'd; NULL when none). */
pid_t *run_tree_live(pid_t root, size_t *n);

/* Send sig to every live descendant of root; the number signalled. */
size_t run_tree_signal(pid_t root, int sig);

/* ------------------------------------------------------------------------
 * Cores: where the kernel put the core of a process, or why it did not.
 * ------------------------------------------------------------------------ */

enum run_core_handler {
        /* core_pattern is a file name (relative: in the process's cwd). */
        RUN_CORE_FILE,
        /* A pipe to systemd-coredump: coredumpctl dump PID. */
        RUN_CORE_SYSTEMD,
        /* A pipe to apport. */
        RUN_CORE_APPORT,
        /* A pipe to something else: no core for mixstack. */
        RUN_CORE_PIPE,
};

struct run_cores {
        char pattern[512];
        bool uses_pid;
        enum run_core_handler handler;
        rlim_t soft_limit;
        rlim_t hard_limit;
};

/* Raise RLIMIT_CORE as far as allowed (inherited by the command) and read
 * how the kernel names cores. */
void run_cores_setup(struct run_cores *cores);

/* A dead process whose core is wanted. */
struct run_dead {
        pid_t pid;
        int signo;
        /* Whether its wait status says it dumped core; unknown for
         * processes reaped by their own parent. */
        bool dumped;
        bool status_known;
        const char *comm;
        const char *cwd;
        uid_t uid;
        time_t start_time;
};

/* The file holding the core of dead (malloc'd in *path), taken out of the
 * kernel's hands (coredumpctl dump writes it into dump_dir, created on
 * demand). Its error says why there is none and how to have one. */
struct ms_error *run_cores_find(const struct run_cores *cores,
                                const struct run_dead *dead,
                                const char *const *cwds, size_t n_cwds,
                                const char *dump_dir, char **path);

/* Why a process whose wait status says it dumped no core has none, and
 * how to have one. */
struct ms_error *run_cores_not_dumped(const struct run_cores *cores,
                                      const struct run_dead *dead);

/* Core files matching the pattern in the directories, newer than since
 * (for crashes of processes never seen). */
char **run_cores_sweep(const struct run_cores *cores, const char *const *cwds,
                       size_t n_cwds, time_t since, size_t *n);

/* The pids systemd-coredump stored cores of since a time (malloc'd). */
pid_t *run_cores_systemd_pids(time_t since, size_t *n);

/* The pid a core file is of, read from its notes (0 when unknown), and
 * the process's name into comm (NULL: not wanted). */
pid_t run_core_pid(const char *path, char comm[17]);

#endif /* MIXSTACK_CLI_RUN_H */
