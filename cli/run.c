/*
 * mixstack run [OPTIONS] -- COMMAND...: run a command (a test suite) and
 * triage every crash and hang of its process tree.
 *
 * - The command inherits mixstack's stdin, stdout and stderr untouched.
 *   mixstack prints its triages on stderr (text, or --markdown, or --json
 *   as one document at the end), and with --out DIR also writes
 *   DIR/triage.{txt,md,json} and moves the cores into DIR.
 * - The core limit is raised to the hard limit, for the whole tree.
 * - mixstack is a child subreaper: orphaned descendants are reparented to
 *   it, so it sees how they die. It reaps every process it can; one that
 *   dies of a core-dumping signal gets its core found and triaged. A
 *   process reaped by its own parent (a test's subprocess, a pool worker)
 *   is noticed in /proc scans, and its core looked for on disk.
 * - At --timeout, every live Python process of the tree is triaged live
 *   (who holds the GIL, who waits, deadlocks), then the tree is ended:
 *   SIGTERM, --grace seconds, SIGKILL.
 *
 * Exit status: the command's own (128 + N when signal N killed it; with
 * --fail-on-crash, its STATUS when the command succeeded but a process of
 * the tree crashed), 124 when it timed out, 125 when mixstack failed, 126 when
 * the command cannot be executed, 127 when it is not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"

enum {
        RUN_TIMEOUT = 124,
        RUN_FAILED = 125,
        RUN_CANNOT_EXECUTE = 126,
        RUN_NOT_FOUND = 127,
};

/* How often /proc is scanned for the tree, in milliseconds. */
#define TICK_MS 100
#define DEFAULT_GRACE 5.0
/* SIGKILL rounds before giving up on processes that will not die (in
 * uninterruptible sleep). */
#define KILL_ROUNDS 50

static const char run_usage[] =
        "Usage: mixstack run [OPTIONS] -- COMMAND [ARGS...]\n"
        "\n"
        "Run COMMAND (a test suite: pytest -x) with cores enabled, its "
        "output\n"
        "untouched, and triage every process of its tree that crashes, or "
        "every\n"
        "Python process still running at --timeout, on stderr. Exits with "
        "the\n"
        "command's status.\n"
        "\n"
        "Options:\n"
        "  --timeout SECONDS     triage the live Python processes then end "
        "the\n"
        "                        command after SECONDS; exit 124\n"
        "  --grace SECONDS       between SIGTERM and SIGKILL at the timeout "
        "(5)\n"
        "  --out DIR             move cores into DIR and write "
        "triage.txt,\n"
        "                        triage.md and triage.json there "
        "(without it,\n"
        "                        cores the kernel names alike are renamed "
        "core.PID.COMM\n"
        "                        where they are, so that none replaces "
        "another)\n"
        "  --fail-on-crash[=STATUS]\n"
        "                        exit STATUS (1) when the command succeeded "
        "but a\n"
        "                        process of its tree crashed (for CI)\n"
        "  --json                print one mixstack-triage/1 document on "
        "stderr\n"
        "                        at the end\n"
        "  --markdown            print markdown on stderr\n"
        "  --sysroot DIR, --lib-path DIR, --no-debuginfod, --frames N,\n"
        "  --signature-frames N  as for mixstack triage\n"
        "\n"
        "Exit status: the command's (128+N when killed by signal N, "
        "--fail-on-crash's\n"
        "STATUS when it succeeded but a process crashed), 124 on "
        "timeout,\n"
        "125 when mixstack fails, 126 when COMMAND cannot be executed, 127 "
        "when\n"
        "it is not found.\n";

/* The files written in --out DIR, by format. */
static const struct {
        const char *name;
        enum ms_triage_format format;
} out_files[] = {
        {"triage.txt", MS_TRIAGE_TEXT},
        {"triage.md", MS_TRIAGE_MARKDOWN},
        {"triage.json", MS_TRIAGE_JSON},
};
#define N_OUT_FILES (sizeof(out_files) / sizeof(out_files[0]))

struct run {
        struct cli_triage_config cfg;
        double timeout;
        double grace;
        const char *out_dir;
        /* --fail-on-crash: the status when the command succeeded but a
         * process of its tree crashed (0: not asked). */
        int fail_on_crash;
        /* Processes of the tree that died of a crash signal. */
        size_t n_crashed;
        char **argv;
        int argc;
        pid_t self;
        pid_t child;
        bool child_done;
        int child_status;
        bool timed_out;
        struct timespec started;
        time_t start_time;
        char *start_cwd;
        struct run_tree tree;
        struct run_cores cores;
        /* Where coredumpctl writes cores without --out. */
        char *dump_dir;
        /* Pids triaged or explained, and core files triaged. */
        pid_t *done_pids;
        size_t n_done_pids;
        struct stat *done_cores;
        size_t n_done_cores;
        /* stderr's printer (JSON into a buffer until the end), and those
         * of the --out files. */
        struct ms_triage_printer *printers[1 + N_OUT_FILES];
        size_t n_printers;
        FILE *files[N_OUT_FILES];
        char *json_buf;
        size_t json_len;
        FILE *json_mem;
        sigset_t waited;
        sigset_t old_mask;
        struct sigaction old_pipe;
};

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

static bool parse_seconds(const char *s, double *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end || end == s || !isfinite(v) || v <= 0 || v > 1e7)
                return false;
        *ret = v;
        return true;
}

static int parse_run_options(int argc, char **argv, struct run *run)
{
        static const struct option longopts[] = {
                CLI_TRIAGE_LONGOPTS,
                {"timeout", required_argument, NULL, 't'},
                {"grace", required_argument, NULL, 'g'},
                {"out", required_argument, NULL, 'o'},
                {"fail-on-crash", optional_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;
        optind = 1;
        opterr = 0;
        /* "+": the command's own options are not mixstack's. */
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
                if (c == '?') {
                        cli_error("unknown option or missing argument: %s",
                                  argv[optind - 1]);
                        fputs("Try 'mixstack run --help'.\n", stderr);
                        return RUN_FAILED;
                } else if (c == 'h') {
                        fputs(run_usage, stdout);
                        exit(0);
                } else if (c == 't' || c == 'g') {
                        if (!parse_seconds(optarg, c == 't' ? &run->timeout
                                                            : &run->grace)) {
                                cli_error("bad --%s: %s",
                                          c == 't' ? "timeout" : "grace",
                                          optarg);
                                return RUN_FAILED;
                        }
                } else if (c == 'o') {
                        run->out_dir = optarg;
                } else if (c == 'f') {
                        long n = 1;
                        if (optarg && !cli_parse_count(optarg, 255, &n)) {
                                cli_error("bad --fail-on-crash: %s (a status "
                                          "from 1 to 255)",
                                          optarg);
                                return RUN_FAILED;
                        }
                        run->fail_on_crash = (int)n;
                } else if (!cli_triage_option(c, optarg, &run->cfg)) {
                        fputs("Try 'mixstack run --help'.\n", stderr);
                        return RUN_FAILED;
                }
        }
        cli_watch_downloads(run->cfg.options);
        if (optind >= argc) {
                cli_error("run: no command given (mixstack run -- COMMAND)");
                fputs("Try 'mixstack run --help'.\n", stderr);
                return RUN_FAILED;
        }
        run->argv = argv + optind;
        run->argc = argc - optind;
        return -1;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

static void note(struct run *run, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void note(struct run *run, const char *fmt, ...)
{
        char *msg;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        for (size_t i = 0; i < run->n_printers; i++)
                ms_error_destroy(
                        ms_triage_printer_add_note(run->printers[i], msg));
        free(msg);
}

static void add_error(struct run *run, const char *target, const char *msg)
{
        for (size_t i = 0; i < run->n_printers; i++)
                ms_error_destroy(ms_triage_printer_add_error(run->printers[i],
                                                             target, msg));
}

static struct ms_error *add_printer(struct run *run,
                                    enum ms_triage_format format, FILE *out)
{
        struct ms_triage_printer *p;
        struct ms_error *err = ms_triage_printer_create(format, out, &p);
        if (!err)
                run->printers[run->n_printers++] = p;
        return err;
}

static struct ms_error *open_out_dir(struct run *run)
{
        if (mkdir(run->out_dir, 0777) != 0 && errno != EEXIST)
                return ms_error_from_errno(errno, "cannot create %s",
                                           run->out_dir);
        for (size_t i = 0; i < N_OUT_FILES; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", run->out_dir,
                         out_files[i].name);
                run->files[i] = fopen(path, "we");
                if (!run->files[i])
                        return ms_error_from_errno(errno, "cannot create %s",
                                                   path);
                struct ms_error *err =
                        add_printer(run, out_files[i].format, run->files[i]);
                if (err)
                        return err;
        }
        return NULL;
}

static struct ms_error *open_outputs(struct run *run)
{
        FILE *out = stderr;
        if (run->cfg.format == MS_TRIAGE_JSON) {
                /* One document, printed when the command is over. */
                run->json_mem = open_memstream(&run->json_buf, &run->json_len);
                if (!run->json_mem)
                        return &ms_error_no_memory;
                out = run->json_mem;
        }
        struct ms_error *err = add_printer(run, run->cfg.format, out);
        if (!err && run->out_dir)
                err = open_out_dir(run);
        return err;
}

/* ------------------------------------------------------------------------
 * Cores and triage
 * ------------------------------------------------------------------------ */

static bool pid_done(const struct run *run, pid_t pid)
{
        for (size_t i = 0; i < run->n_done_pids; i++) {
                if (run->done_pids[i] == pid)
                        return true;
        }
        return false;
}

static void mark_pid(struct run *run, pid_t pid)
{
        pid_t *more =
                realloc(run->done_pids, (run->n_done_pids + 1) * sizeof(*more));
        if (more) {
                run->done_pids = more;
                run->done_pids[run->n_done_pids++] = pid;
        }
}

/* A core file is the same when its inode and modification time are:
 * "core" without %p is replaced by each crash in that directory. */
static bool core_done(const struct run *run, const struct stat *st)
{
        for (size_t i = 0; i < run->n_done_cores; i++) {
                const struct stat *d = &run->done_cores[i];
                if (d->st_dev == st->st_dev && d->st_ino == st->st_ino &&
                    d->st_mtim.tv_sec == st->st_mtim.tv_sec &&
                    d->st_mtim.tv_nsec == st->st_mtim.tv_nsec)
                        return true;
        }
        return false;
}

static void mark_core(struct run *run, const char *path)
{
        struct stat st;
        if (stat(path, &st) != 0)
                return;
        struct stat *more = realloc(run->done_cores,
                                    (run->n_done_cores + 1) * sizeof(*more));
        if (more) {
                run->done_cores = more;
                run->done_cores[run->n_done_cores++] = st;
        }
}

/* Copy src to dest and remove src (a rename across file systems). */
static bool copy_file(const char *src, const char *dest)
{
        FILE *in = fopen(src, "re"), *out = in ? fopen(dest, "we") : NULL;
        char buf[1 << 16];
        size_t n;
        bool ok = in && out;
        while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
                ok = fwrite(buf, 1, n, out) == n;
        ok = ok && !ferror(in);
        if (in)
                fclose(in);
        if (out && fclose(out) != 0)
                ok = false;
        if (ok)
                unlink(src);
        else if (out)
                unlink(dest);
        return ok;
}

/* Whether path is a file of --out DIR (coredumpctl writes there). */
static bool in_out_dir(const struct run *run, const char *path)
{
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
                *slash = '\0';
        char *real_dir = slash ? realpath(dir, NULL) : NULL;
        char *real_out = realpath(run->out_dir, NULL);
        bool in = real_dir && real_out && strcmp(real_dir, real_out) == 0;
        free(dir);
        free(real_dir);
        free(real_out);
        return in;
}

/* "DIR/core.PID.COMM" (slashes of COMM replaced), or with ".N" added
 * when that name is taken: a core never replaces another. malloc'd. */
static char *free_core_name(const char *dir, pid_t pid, const char *comm)
{
        char *base;
        if (asprintf(&base, "%s/core.%d.%s", dir, (int)pid, comm) < 0)
                return NULL;
        for (char *p = base + strlen(dir) + 1; *p; p++) {
                if (*p == '/')
                        *p = '_';
        }
        char *name = base;
        for (int n = 1; n < 1000 && access(name, F_OK) == 0; n++) {
                if (name != base)
                        free(name);
                if (asprintf(&name, "%s.%d", base, n) < 0)
                        name = NULL;
                if (!name)
                        break;
        }
        if (name != base)
                free(base);
        return name;
}

/* Whether the kernel names cores of one directory alike ("core"): the
 * next crash there would replace this one. */
static bool shared_core_name(const struct run *run)
{
        return run->cores.handler == RUN_CORE_FILE && !run->cores.uses_pid &&
               !strstr(run->cores.pattern, "%p");
}

/* Keep a core under a name of its own: moved into --out DIR as
 * core.PID.COMM, or, without --out, renamed so in its directory when the
 * kernel gives every core of that directory one name. The path to read it
 * at (malloc'd): the new one, or the old one when it cannot be moved. */
static char *keep_core(struct run *run, char *path, pid_t pid, const char *comm)
{
        char *dir = NULL;
        if (run->out_dir) {
                if (in_out_dir(run, path))
                        return path;
        } else if (shared_core_name(run)) {
                char *slash = strrchr(path, '/');
                dir = slash ? strndup(path, (size_t)(slash - path))
                            : strdup(".");
                if (!dir)
                        return path;
        } else {
                return path;
        }
        char *dest = free_core_name(dir ? dir : run->out_dir, pid, comm);
        free(dir);
        if (!dest)
                return path;
        if (rename(path, dest) == 0 ||
            (errno == EXDEV && copy_file(path, dest))) {
                free(path);
                return dest;
        }
        note(run, "cannot move %s to %s: %s", path, dest, strerror(errno));
        free(dest);
        return path;
}

/* Every working directory the tree was seen in, the start one first. */
static const char **tree_cwds(const struct run *run, size_t *n)
{
        const char **cwds = malloc((run->tree.n + 1) * sizeof(*cwds));
        *n = 0;
        if (!cwds)
                return NULL;
        if (run->start_cwd)
                cwds[(*n)++] = run->start_cwd;
        for (size_t i = 0; i < run->tree.n; i++) {
                const char *cwd = run->tree.procs[i].cwd;
                bool seen = !cwd;
                for (size_t j = 0; j < *n && !seen; j++)
                        seen = strcmp(cwds[j], cwd) == 0;
                if (!seen)
                        cwds[(*n)++] = cwd;
        }
        return cwds;
}

/* Triage the core at path, of pid (0: any), which is freed; when it
 * cannot be, the printers get an error entry for it. */
static void triage_core(struct run *run, char *path, pid_t pid,
                        const char *comm)
{
        run->n_crashed++;
        path = keep_core(run, path, pid, comm);
        pid_t found = 0;
        struct ms_error *err = cli_triage_core(
                &run->cfg, path, pid, run->printers, run->n_printers, &found);
        mark_core(run, path);
        if (!err) {
                mark_pid(run, found);
        } else {
                char *target;
                if (asprintf(&target, "%s (pid %d, %s)", path, (int)pid,
                             comm) >= 0) {
                        add_error(run, target, err->message);
                        free(target);
                }
                ms_error_destroy(err);
        }
        free(path);
}

static const char *dump_dir(struct run *run)
{
        if (run->out_dir)
                return run->out_dir;
        if (!run->dump_dir) {
                const char *tmp = getenv("TMPDIR");
                if (asprintf(&run->dump_dir, "%s/mixstack-run-%d",
                             tmp && *tmp ? tmp : "/tmp", (int)run->self) < 0)
                        run->dump_dir = NULL;
        }
        return run->dump_dir ? run->dump_dir : "/tmp";
}

/* A process of the tree died of signo; find its core and triage it.
 * quiet: no note when there is no core (its exit status is unknown, so
 * it may not have crashed at all). */
static void on_crash(struct run *run, const struct run_dead *dead, bool quiet)
{
        if (pid_done(run, dead->pid))
                return;
        char *path = NULL;
        struct ms_error *err = NULL;
        if (dead->status_known && !dead->dumped) {
                /* The kernel says there is none: whatever is on disk is
                 * another crash's. */
                err = run_cores_not_dumped(&run->cores, dead);
        } else {
                size_t n_cwds;
                const char **cwds = tree_cwds(run, &n_cwds);
                err = run_cores_find(&run->cores, dead, cwds, n_cwds,
                                     dump_dir(run), &path);
                free(cwds);
        }
        if (err) {
                if (!quiet) {
                        note(run, "%s", err->message);
                        mark_pid(run, dead->pid);
                        run->n_crashed++;
                }
                ms_error_destroy(err);
                return;
        }
        struct stat st;
        pid_t of = run_core_pid(path, NULL);
        if (stat(path, &st) != 0 || core_done(run, &st) ||
            (of && of != dead->pid)) {
                /* Triaged already, or another process's core: a name
                 * without %p is shared by every crash in a directory. */
                if (!quiet && of && of != dead->pid)
                        note(run,
                             "pid %d (%s) died of %s, but %s is the core "
                             "of pid %d: crashes in one directory "
                             "replace each other's core (set "
                             "kernel.core_uses_pid=1 or put %%p in "
                             "kernel.core_pattern)",
                             (int)dead->pid, dead->comm,
                             ms_signal_name(dead->signo)
                                     ? ms_signal_name(dead->signo)
                                     : "a signal",
                             path, (int)of);
                if (!quiet)
                        mark_pid(run, dead->pid);
                free(path);
                return;
        }
        triage_core(run, path, dead->pid, dead->comm);
}

static void fill_dead(struct run *run, pid_t pid, struct run_dead *dead)
{
        struct run_proc *p = run_tree_find(&run->tree, pid);
        dead->pid = pid;
        dead->comm = p ? p->comm : "?";
        dead->cwd = p ? p->cwd : NULL;
        dead->uid = p ? p->uid : getuid();
        dead->start_time = p ? p->start_time : run->start_time;
        if (p)
                p->reaped = true;
}

/* A process mixstack reaped, with its wait status. */
static void on_exit_status(struct run *run, pid_t pid, int status)
{
        struct run_dead dead = {.status_known = true};
        fill_dead(run, pid, &dead);
        if (pid == run->child) {
                run->child_done = true;
                run->child_status = status;
        }
        if (!WIFSIGNALED(status) || !ms_signal_is_crash(WTERMSIG(status), true))
                return;
        dead.signo = WTERMSIG(status);
        dead.dumped = WCOREDUMP(status);
        on_crash(run, &dead, false);
}

static void reap_all(struct run *run)
{
        pid_t pid;
        int status;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                on_exit_status(run, pid, status);
}

/* Processes that vanished from the tree without mixstack reaping them:
 * their parent did. Whether they crashed shows only on disk. */
static void scan(struct run *run)
{
        pid_t *gone = NULL;
        size_t n_gone = 0;
        run_tree_scan(&run->tree, &gone, &n_gone);
        for (size_t i = 0; i < n_gone; i++) {
                if (run->cores.handler == RUN_CORE_SYSTEMD ||
                    run->cores.handler == RUN_CORE_PIPE)
                        continue; /* asked once, at the end */
                struct run_dead dead = {0};
                fill_dead(run, gone[i], &dead);
                on_crash(run, &dead, true);
        }
        free(gone);
}

/* Cores on disk of processes never seen (gone between two scans), and,
 * with systemd-coredump, cores of processes reaped by their parent. */
static void final_sweep(struct run *run)
{
        size_t n_cwds, n = 0;
        const char **cwds = tree_cwds(run, &n_cwds);
        char **found =
                run_cores_sweep(&run->cores, cwds, n_cwds, run->start_time, &n);
        free(cwds);
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                char comm[17];
                pid_t pid = run_core_pid(found[i], comm);
                if (stat(found[i], &st) != 0 || core_done(run, &st) || !pid ||
                    pid_done(run, pid)) {
                        free(found[i]);
                        continue;
                }
                triage_core(run, found[i], pid, comm);
        }
        free(found);
}

/* With systemd-coredump, processes reaped by their own parent are not
 * known to have crashed: ask coredumpctl once which pids it stored cores
 * of since the start. */
static void systemd_sweep(struct run *run)
{
        if (run->cores.handler != RUN_CORE_SYSTEMD)
                return;
        size_t n;
        pid_t *stored = run_cores_systemd_pids(run->start_time, &n);
        for (size_t i = 0; i < run->tree.n; i++) {
                struct run_proc *p = &run->tree.procs[i];
                bool found = false;
                for (size_t j = 0; j < n && !found; j++)
                        found = stored[j] == p->pid;
                if (!found || p->alive || p->reaped || pid_done(run, p->pid))
                        continue;
                struct run_dead dead = {0};
                fill_dead(run, p->pid, &dead);
                on_crash(run, &dead, false);
        }
        free(stored);
}

/* ------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------ */

/* Fork and exec the command; an exec failure comes back through a
 * close-on-exec pipe as its errno. */
static int start_command(struct run *run)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
                cli_error("pipe: %s", strerror(errno));
                return RUN_FAILED;
        }
        run->child = fork();
        if (run->child < 0) {
                cli_error("fork: %s", strerror(errno));
                return RUN_FAILED;
        }
        if (run->child == 0) {
                sigaction(SIGPIPE, &run->old_pipe, NULL);
                sigprocmask(SIG_SETMASK, &run->old_mask, NULL);
                execvp(run->argv[0], run->argv);
                int e = errno;
                ssize_t w = write(fds[1], &e, sizeof(e));
                (void)w;
                _exit(RUN_NOT_FOUND);
        }
        close(fds[1]);
        int e = 0;
        ssize_t r;
        do
                r = read(fds[0], &e, sizeof(e));
        while (r < 0 && errno == EINTR);
        close(fds[0]);
        if (r != sizeof(e))
                return -1;
        waitpid(run->child, NULL, 0);
        cli_error("cannot run %s: %s", run->argv[0], strerror(e));
        return e == ENOENT ? RUN_NOT_FOUND : RUN_CANNOT_EXECUTE;
}

static double elapsed(const struct run *run)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - run->started.tv_sec) +
               (double)(now.tv_nsec - run->started.tv_nsec) / 1e9;
}

/* Wait up to ms for a signal; SIGCHLD reaps, a signal sent to mixstack
 * itself (kill, not the terminal, which signals the command's process
 * group too) is passed on to the command. */
static void wait_event(struct run *run, long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(&run->waited, &info, &ts);
        if (sig > 0 && sig != SIGCHLD && info.si_code <= 0 && !run->child_done)
                kill(run->child, sig);
        reap_all(run);
}

/* Triage every live Python process of the tree, parents first. */
static void snapshot_tree(struct run *run)
{
        size_t n;
        pid_t *pids = run_tree_live(run->self, &n);
        size_t n_python = 0;
        /* Live processes past the timeout are hangs (cores are not). */
        ms_error_destroy(ms_options_set(run->cfg.options, "hang", "1"));
        for (size_t i = 0; i < n; i++) {
                bool is_python = false;
                struct ms_error *err =
                        cli_triage_pid(&run->cfg, pids[i], run->printers,
                                       run->n_printers, &is_python);
                n_python += is_python;
                if (is_python)
                        mark_pid(run, pids[i]);
                /* Gone meanwhile: nothing to say. */
                if (err && kill(pids[i], 0) == 0) {
                        char target[32];
                        snprintf(target, sizeof(target), "pid %d",
                                 (int)pids[i]);
                        add_error(run, target, err->message);
                }
                ms_error_destroy(err);
        }
        ms_error_destroy(ms_options_set(run->cfg.options, "hang", "0"));
        if (!n_python)
                note(run,
                     "no Python process was running at the timeout "
                     "(%zu other processes)",
                     n);
        free(pids);
}

/* SIGTERM to the whole tree, --grace seconds for it to go, then SIGKILL
 * until nothing is left. */
static void end_tree(struct run *run)
{
        run_tree_signal(run->self, SIGTERM);
        double until = elapsed(run) + run->grace;
        size_t n;
        pid_t *left;
        while ((left = run_tree_live(run->self, &n)) && elapsed(run) < until) {
                free(left);
                wait_event(run, 50);
        }
        free(left);
        for (int i = 0; i < KILL_ROUNDS && run_tree_signal(run->self, SIGKILL);
             i++)
                wait_event(run, 100);
        reap_all(run);
}

static void on_timeout(struct run *run)
{
        run->timed_out = true;
        note(run,
             "%s ran past its timeout of %g s: triaging its live Python "
             "processes, then ending it",
             run->argv[0], run->timeout);
        snapshot_tree(run);
        end_tree(run);
}

static void supervise(struct run *run)
{
        while (!run->child_done) {
                long ms = TICK_MS;
                if (run->timeout > 0) {
                        double left = run->timeout - elapsed(run);
                        if (left <= 0) {
                                scan(run);
                                on_timeout(run);
                                break;
                        }
                        if (left * 1000 < ms)
                                ms = (long)(left * 1000) + 1;
                }
                wait_event(run, ms);
                scan(run);
        }
        /* Crashes of the last moments, and cores of the unseen. */
        reap_all(run);
        scan(run);
        final_sweep(run);
        systemd_sweep(run);
}

/* ------------------------------------------------------------------------
 * Set-up and the end
 * ------------------------------------------------------------------------ */

static int exit_status(struct run *run)
{
        if (run->timed_out)
                return RUN_TIMEOUT;
        if (WIFSIGNALED(run->child_status))
                return 128 + WTERMSIG(run->child_status);
        int status = WIFEXITED(run->child_status)
                             ? WEXITSTATUS(run->child_status)
                             : RUN_FAILED;
        if (status == 0 && run->fail_on_crash && run->n_crashed) {
                note(run,
                     "%zu process%s of the command crashed: exit %d "
                     "(--fail-on-crash)",
                     run->n_crashed, run->n_crashed == 1 ? "" : "es",
                     run->fail_on_crash);
                status = run->fail_on_crash;
        }
        return status;
}

static void finish_outputs(struct run *run, int status)
{
        struct ms_triage_run *info = NULL;
        struct ms_error *err = ms_triage_run_create(
                (const char *const *)run->argv, (size_t)run->argc, &info);
        if (err) {
                cli_error("%s", err->message);
                ms_error_destroy(err);
        } else {
                ms_triage_run_set_outcome(
                        info,
                        WIFEXITED(run->child_status)
                                ? WEXITSTATUS(run->child_status)
                                : 0,
                        WIFSIGNALED(run->child_status)
                                ? WTERMSIG(run->child_status)
                                : 0,
                        run->timed_out);
                ms_triage_run_set_times(info, run->timeout, elapsed(run));
                ms_triage_run_set_exit_status(info, status);
        }
        for (size_t i = 0; i < run->n_printers; i++) {
                err = ms_triage_printer_finish(run->printers[i], info);
                if (err)
                        cli_error("%s", err->message);
                ms_error_destroy(err);
                ms_triage_printer_destroy(run->printers[i]);
        }
        ms_triage_run_destroy(info);
        run->n_printers = 0;
        for (size_t i = 0; i < N_OUT_FILES; i++) {
                if (run->files[i] && fclose(run->files[i]) != 0)
                        cli_error("cannot write %s/%s: %s", run->out_dir,
                                  out_files[i].name, strerror(errno));
                run->files[i] = NULL;
        }
        if (run->json_mem && fclose(run->json_mem) == 0 && run->json_buf)
                fwrite(run->json_buf, 1, run->json_len, stderr);
        run->json_mem = NULL;
        fflush(stderr);
}

/* Signals are taken with sigtimedwait; SIGPIPE is ignored so that a
 * closed stderr cannot kill mixstack (the command gets both back). */
static void set_up_signals(struct run *run)
{
        sigemptyset(&run->waited);
        int sigs[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                sigaddset(&run->waited, sigs[i]);
        sigprocmask(SIG_BLOCK, &run->waited, &run->old_mask);
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigaction(SIGPIPE, &ign, &run->old_pipe);
}

static int set_up(struct run *run)
{
        run->self = getpid();
        run->start_time = time(NULL);
        clock_gettime(CLOCK_MONOTONIC, &run->started);
        run->start_cwd = getcwd(NULL, 0);
        run_tree_init(&run->tree, run->self);
        run_cores_setup(&run->cores);
        /* Orphans of the tree are reparented to mixstack, which sees how
         * they die. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
                cli_error("warning: cannot become a child subreaper (%s): "
                          "crashes of orphaned processes are seen only on "
                          "disk",
                          strerror(errno));
        struct ms_error *err = open_outputs(run);
        if (err) {
                cli_error("%s", err->message);
                ms_error_destroy(err);
                return RUN_FAILED;
        }
        set_up_signals(run);
        return -1;
}

static void tear_down(struct run *run)
{
        /* What set-up opened when the outputs were never finished. */
        for (size_t i = 0; i < run->n_printers; i++)
                ms_triage_printer_destroy(run->printers[i]);
        for (size_t i = 0; i < N_OUT_FILES; i++) {
                if (run->files[i])
                        fclose(run->files[i]);
        }
        if (run->json_mem)
                fclose(run->json_mem);
        free(run->json_buf);
        run_tree_deinit(&run->tree);
        free(run->start_cwd);
        free(run->dump_dir);
        free(run->done_pids);
        free(run->done_cores);
        cli_triage_config_deinit(&run->cfg);
}

int cli_run_main(int argc, char **argv)
{
        struct run run = {.grace = DEFAULT_GRACE};
        if (!cli_triage_config_init(&run.cfg))
                return RUN_FAILED;
        int status = parse_run_options(argc, argv, &run);
        if (status < 0)
                status = set_up(&run);
        if (status >= 0) {
                tear_down(&run);
                return status;
        }
        status = start_command(&run);
        if (status < 0) {
                supervise(&run);
                status = exit_status(&run);
        } else {
                /* Not started: the documents say so, as a shell would. */
                run.child_status = W_EXITCODE(status, 0);
        }
        finish_outputs(&run, status);
        tear_down(&run);
        return status;
}
