/*
 * The process tree under `mixstack run`, read from /proc.
 *
 * A process is in the tree when its parent chain reaches mixstack. Each
 * scan reads every /proc/PID/stat (the kernel's children lists need
 * CONFIG_PROC_CHILDREN, which not every kernel has); a process that lives
 * less than one scan interval is never seen, and only its core on disk
 * tells of it (run_cores_sweep).
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

/* Parent chains longer than this are cut (a loop in racing reads). */
#define MAX_DEPTH 4096

struct stat_line {
        pid_t pid;
        pid_t ppid;
        char state;
        unsigned long long start_ticks;
        char comm[32];
};

/* Parse /proc/PID/stat; the comm may hold spaces and parentheses, so
 * the fields are read after its last ')'. */
static bool read_stat(pid_t pid, struct stat_line *s)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close < open)
                return false;
        size_t len = (size_t)(close - open - 1);
        if (len >= sizeof(s->comm))
                len = sizeof(s->comm) - 1;
        memcpy(s->comm, open + 1, len);
        s->comm[len] = '\0';
        s->pid = pid;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice threads
         * itrealvalue starttime */
        int ppid;
        unsigned long long start;
        if (sscanf(close + 1,
                   " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
                   "%*d %*d %*d %*d %*d %llu",
                   &s->state, &ppid, &start) != 3)
                return false;
        s->ppid = ppid;
        s->start_ticks = start;
        return true;
}

static int by_pid(const void *a, const void *b)
{
        const struct stat_line *x = a, *y = b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process in /proc (zombies included), sorted by pid, malloc'd. */
static struct stat_line *read_all(size_t *n)
{
        *n = 0;
        DIR *d = opendir("/proc");
        if (!d)
                return NULL;
        size_t capacity = 256;
        struct stat_line *all = malloc(capacity * sizeof(*all));
        struct dirent *e;
        while (all && (e = readdir(d))) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                if (*n == capacity) {
                        capacity *= 2;
                        struct stat_line *more =
                                realloc(all, capacity * sizeof(*all));
                        if (!more)
                                break;
                        all = more;
                }
                if (read_stat((pid_t)pid, &all[*n]))
                        (*n)++;
        }
        closedir(d);
        if (all)
                qsort(all, *n, sizeof(*all), by_pid);
        return all;
}

static const struct stat_line *find_line(const struct stat_line *all, size_t n,
                                         pid_t pid)
{
        struct stat_line key = {.pid = pid};
        return all ? bsearch(&key, all, n, sizeof(*all), by_pid) : NULL;
}

/* Depth below root (1 for a child), or 0 when not a descendant. */
static int depth_below(const struct stat_line *all, size_t n, pid_t pid,
                       pid_t root)
{
        int depth = 0;
        while (pid > 1 && depth < MAX_DEPTH) {
                const struct stat_line *s = find_line(all, n, pid);
                if (!s)
                        return 0;
                depth++;
                if (s->ppid == root)
                        return depth;
                pid = s->ppid;
        }
        return 0;
}

void run_tree_init(struct run_tree *tree, pid_t root)
{
        memset(tree, 0, sizeof(*tree));
        tree->root = root;
}

void run_tree_deinit(struct run_tree *tree)
{
        for (size_t i = 0; i < tree->n; i++)
                free(tree->procs[i].cwd);
        free(tree->procs);
        memset(tree, 0, sizeof(*tree));
}

struct run_proc *run_tree_find(struct run_tree *tree, pid_t pid)
{
        /* The newest entry: pids are reused. */
        for (size_t i = tree->n; i-- > 0;) {
                if (tree->procs[i].pid == pid)
                        return &tree->procs[i];
        }
        return NULL;
}

static time_t boot_time(void)
{
        static time_t boot;
        if (boot)
                return boot;
        FILE *f = fopen("/proc/stat", "re");
        char line[256];
        while (f && fgets(line, sizeof(line), f)) {
                long long b;
                if (sscanf(line, "btime %lld", &b) == 1)
                        boot = (time_t)b;
        }
        if (f)
                fclose(f);
        return boot;
}

static void refresh(struct run_proc *p)
{
        char path[64], cwd[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/%d/cwd", (int)p->pid);
        ssize_t len = readlink(path, cwd, sizeof(cwd) - 1);
        if (len > 0) {
                cwd[len] = '\0';
                if (!p->cwd || strcmp(p->cwd, cwd) != 0) {
                        char *copy = strdup(cwd);
                        if (copy) {
                                free(p->cwd);
                                p->cwd = copy;
                        }
                }
        }
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d", (int)p->pid);
        if (stat(path, &st) == 0)
                p->uid = st.st_uid;
}

static struct run_proc *add_proc(struct run_tree *tree,
                                 const struct stat_line *s)
{
        if (tree->n == tree->capacity) {
                size_t capacity = tree->capacity ? 2 * tree->capacity : 32;
                struct run_proc *more =
                        realloc(tree->procs, capacity * sizeof(*more));
                if (!more)
                        return NULL;
                tree->procs = more;
                tree->capacity = capacity;
        }
        struct run_proc *p = &tree->procs[tree->n++];
        memset(p, 0, sizeof(*p));
        p->pid = s->pid;
        p->ppid = s->ppid;
        p->start_ticks = s->start_ticks;
        long hz = sysconf(_SC_CLK_TCK);
        p->start_time =
                boot_time() + (time_t)(s->start_ticks /
                                       (unsigned long long)(hz > 0 ? hz : 100));
        snprintf(p->comm, sizeof(p->comm), "%s", s->comm);
        return p;
}

static void append_pid(pid_t **pids, size_t *n, pid_t pid)
{
        pid_t *more = realloc(*pids, (*n + 1) * sizeof(**pids));
        if (!more)
                return;
        *pids = more;
        (*pids)[(*n)++] = pid;
}

void run_tree_scan(struct run_tree *tree, pid_t **gone, size_t *n_gone)
{
        size_t n;
        struct stat_line *all = read_all(&n);
        for (size_t i = 0; i < tree->n; i++) {
                struct run_proc *p = &tree->procs[i];
                if (!p->alive)
                        continue;
                const struct stat_line *s = find_line(all, n, p->pid);
                bool same = s && s->start_ticks == p->start_ticks;
                /* A zombie is dead: its core, if any, is on disk; but
                 * mixstack's own children are reaped with their status. */
                if (same && (s->state != 'Z' || s->ppid == tree->root))
                        continue;
                p->alive = false;
                if (!p->reaped)
                        append_pid(gone, n_gone, p->pid);
        }
        for (size_t i = 0; i < n; i++) {
                const struct stat_line *s = &all[i];
                if (s->state == 'Z' || !depth_below(all, n, s->pid, tree->root))
                        continue;
                struct run_proc *p = run_tree_find(tree, s->pid);
                if (!p || p->start_ticks != s->start_ticks)
                        p = add_proc(tree, s);
                if (!p)
                        continue;
                p->alive = true;
                refresh(p);
        }
        free(all);
}

static int by_depth(const void *a, const void *b)
{
        const long *x = a, *y = b;
        return (x[0] > y[0]) - (x[0] < y[0]);
}

pid_t *run_tree_live(pid_t root, size_t *n_ret)
{
        size_t n;
        struct stat_line *all = read_all(&n);
        /* (depth, pid) pairs, sorted so that parents come first. */
        long *pairs = malloc((n ? n : 1) * 2 * sizeof(*pairs));
        size_t count = 0;
        for (size_t i = 0; pairs && i < n; i++) {
                int depth = all[i].state == 'Z'
                                    ? 0
                                    : depth_below(all, n, all[i].pid, root);
                if (depth) {
                        pairs[2 * count] = depth;
                        pairs[2 * count + 1] = all[i].pid;
                        count++;
                }
        }
        free(all);
        pid_t *pids = NULL;
        *n_ret = 0;
        if (pairs && count) {
                qsort(pairs, count, 2 * sizeof(*pairs), by_depth);
                pids = malloc(count * sizeof(*pids));
                for (size_t i = 0; pids && i < count; i++)
                        pids[i] = (pid_t)pairs[2 * i + 1];
                *n_ret = pids ? count : 0;
        }
        free(pairs);
        return pids;
}

size_t run_tree_signal(pid_t root, int sig)
{
        size_t n;
        pid_t *pids = run_tree_live(root, &n);
        for (size_t i = 0; i < n; i++) {
                kill(pids[i], sig);
                /* A stopped process acts on SIGTERM only once continued. */
                if (sig == SIGTERM)
                        kill(pids[i], SIGCONT);
        }
        free(pids);
        return n;
}
