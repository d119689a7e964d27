/*
 * Where the kernel put a core (core(5)): kernel.core_pattern names a file
 * (a relative name is in the dying process's working directory, "%"
 * specifiers expand, kernel.core_uses_pid appends ".PID" when there is no
 * %p) or a pipe to a handler: systemd-coredump (read back with coredumpctl)
 * or apport (which keeps cores in /var/lib/apport/coredump). When there is
 * no core, the error says why and how to have one.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#define MS_MIN(a, b) ((a) < (b) ? (a) : (b))

#define ENABLE_HINT                                                    \
        "enable cores with `ulimit -c unlimited` and `sudo sysctl -w " \
        "kernel.core_pattern=core` (cores then land in the crashing "  \
        "process's working directory)"

/* How long systemd-coredump may take to store a core. */
#define COREDUMPCTL_SECONDS 15

static void read_line(const char *path, char *buf, size_t size)
{
        buf[0] = '\0';
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        if (fgets(buf, (int)size, f))
                buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
}

void run_cores_setup(struct run_cores *cores)
{
        memset(cores, 0, sizeof(*cores));
        struct rlimit rl;
        if (getrlimit(RLIMIT_CORE, &rl) == 0) {
                /* As far as the hard limit allows; the command and every
                 * process it starts inherit it. */
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_CORE, &rl);
                getrlimit(RLIMIT_CORE, &rl);
                cores->soft_limit = rl.rlim_cur;
                cores->hard_limit = rl.rlim_max;
        }
        read_line("/proc/sys/kernel/core_pattern", cores->pattern,
                  sizeof(cores->pattern));
        char uses_pid[16];
        read_line("/proc/sys/kernel/core_uses_pid", uses_pid, sizeof(uses_pid));
        cores->uses_pid = atoi(uses_pid) != 0;
        if (cores->pattern[0] != '|')
                cores->handler = RUN_CORE_FILE;
        else if (strstr(cores->pattern, "systemd-coredump"))
                cores->handler = RUN_CORE_SYSTEMD;
        else if (strstr(cores->pattern, "apport"))
                cores->handler = RUN_CORE_APPORT;
        else
                cores->handler = RUN_CORE_PIPE;
}

/* Append s to buf (of size PATH_MAX) with glob's special characters
 * escaped. */
static void glob_literal(char *buf, const char *s)
{
        size_t len = strlen(buf);
        for (; *s && len + 2 < PATH_MAX; s++) {
                if (strchr("*?[]\\", *s))
                        buf[len++] = '\\';
                buf[len++] = *s;
        }
        buf[len] = '\0';
}

/* The glob of dead's core: specifiers mixstack knows are expanded, the
 * others (time, host, pid in the initial namespace...) match anything. */
static void pattern_glob(const struct run_cores *cores, pid_t pid, int signo,
                         uid_t uid, const char *cwd, char *out)
{
        const char *p = cores->pattern;
        char num[32];
        out[0] = '\0';
        if (p[0] != '/' && cwd) {
                glob_literal(out, cwd);
                glob_literal(out, "/");
        }
        bool has_pid = false;
        for (; *p; p++) {
                if (*p != '%' || !p[1]) {
                        glob_literal(out, (char[]){*p, 0});
                        continue;
                }
                p++;
                num[0] = '\0';
                /* pid or signo 0: any (a sweep for cores of unseen
                 * processes). */
                has_pid = has_pid || *p == 'p';
                if (*p == 'p' && pid)
                        snprintf(num, sizeof(num), "%d", (int)pid);
                else if (*p == 's' && signo)
                        snprintf(num, sizeof(num), "%d", signo);
                else if (*p == 'u')
                        snprintf(num, sizeof(num), "%u", (unsigned)uid);
                else if (*p == '%')
                        glob_literal(out, "%");
                if (num[0])
                        glob_literal(out, num);
                else if (*p != '%' && strlen(out) + 1 < PATH_MAX)
                        strcat(out, "*");
        }
        if (!has_pid && cores->uses_pid && pid) {
                snprintf(num, sizeof(num), ".%d", (int)pid);
                glob_literal(out, num);
        }
}

/* The newest regular, non-empty file matching g and modified at or after
 * since, malloc'd; NULL when none. */
static char *newest_match(const char *g, time_t since)
{
        glob_t gl;
        char *best = NULL;
        time_t best_time = 0;
        if (glob(g, GLOB_NOSORT, NULL, &gl) != 0)
                return NULL;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
                struct stat st;
                if (stat(gl.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode) ||
                    st.st_size == 0 || st.st_mtime < since)
                        continue;
                if (!best || st.st_mtime >= best_time) {
                        free(best);
                        best = strdup(gl.gl_pathv[i]);
                        best_time = st.st_mtime;
                }
        }
        globfree(&gl);
        return best;
}

static const char *sig_name(int signo)
{
        const char *name = ms_signal_name(signo);
        return name ? name : "a signal";
}

/* Why a file pattern gave no core. */
static struct ms_error *no_file_core(const struct run_cores *cores,
                                     const struct run_dead *dead,
                                     const char *looked_for)
{
        if (cores->hard_limit == 0)
                return ms_error_create(
                        MS_ERROR_NOT_FOUND,
                        "pid %d (%s) died of %s but cores are disabled: "
                        "RLIMIT_CORE's hard limit is 0, so mixstack could not "
                        "raise it; run `ulimit -c unlimited` as root (or "
                        "raise the hard limit in /etc/security/limits.conf) "
                        "before mixstack run",
                        (int)dead->pid, dead->comm, sig_name(dead->signo));
        if (dead->status_known && !dead->dumped)
                return ms_error_create(
                        MS_ERROR_NOT_FOUND,
                        "pid %d (%s) died of %s but the kernel wrote no core "
                        "(kernel.core_pattern=%s): the process lowered its own "
                        "core limit, is not dumpable (setuid, "
                        "prctl(PR_SET_DUMPABLE)), or could not create %s "
                        "(read-only or full directory?); %s",
                        (int)dead->pid, dead->comm, sig_name(dead->signo),
                        cores->pattern, looked_for, ENABLE_HINT);
        return ms_error_create(
                MS_ERROR_NOT_FOUND,
                "pid %d (%s) died of %s but no core matches %s "
                "(kernel.core_pattern=%s%s)",
                (int)dead->pid, dead->comm, sig_name(dead->signo), looked_for,
                cores->pattern, cores->uses_pid ? ", core_uses_pid=1" : "");
}

static struct ms_error *find_file_core(const struct run_cores *cores,
                                       const struct run_dead *dead,
                                       const char *const *cwds, size_t n_cwds,
                                       char **path)
{
        char g[PATH_MAX];
        const char *first = NULL;
        /* Its own cwd first, then the others the tree was seen in. */
        for (size_t i = 0; i <= n_cwds; i++) {
                const char *cwd = i == 0 ? dead->cwd : cwds[i - 1];
                if (i == 0 && !cwd)
                        continue;
                pattern_glob(cores, dead->pid, dead->signo, dead->uid, cwd, g);
                first = first ? first : cwd;
                *path = newest_match(g, dead->start_time);
                if (*path || cores->pattern[0] == '/')
                        break;
        }
        if (*path)
                return NULL;
        pattern_glob(cores, dead->pid, dead->signo, dead->uid, first, g);
        return no_file_core(cores, dead, g);
}

/* Run a helper with its output in a pipe (never on the command's
 * terminal); its exit status, or -1. The first bytes of its output go to
 * out. */
static int run_helper(char *const argv[], char *out, size_t size)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                dup2(fds[1], 1);
                dup2(fds[1], 2);
                int null = open("/dev/null", O_RDONLY);
                if (null >= 0)
                        dup2(null, 0);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        size_t len = 0;
        ssize_t r;
        char chunk[512];
        /* Read to the end, so the helper never blocks on a full pipe. */
        while (pid > 0 && (r = read(fds[0], chunk, sizeof(chunk))) > 0) {
                size_t keep = MS_MIN((size_t)r, size - 1 - len);
                memcpy(out + len, chunk, keep);
                len += keep;
        }
        out[len] = '\0';
        close(fds[0]);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct ms_error *make_dir(const char *dir)
{
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return ms_error_from_errno(errno, "cannot create %s", dir);
        return NULL;
}

/* coredumpctl dump PID -o FILE, retried while systemd-coredump is still
 * storing the core. */
static struct ms_error *find_systemd_core(const struct run_dead *dead,
                                          const char *dump_dir, char **path)
{
        struct ms_error *err = make_dir(dump_dir);
        if (err)
                return err;
        char pid[32], out[PATH_MAX], msg[512] = "";
        snprintf(pid, sizeof(pid), "%d", (int)dead->pid);
        snprintf(out, sizeof(out), "%s/core.%d.%s", dump_dir, (int)dead->pid,
                 dead->comm);
        char *argv[] = {"coredumpctl", "--no-pager", "-q", "dump",
                        pid,           "-o",         out,  NULL};
        for (int i = 0; i < COREDUMPCTL_SECONDS * 2; i++) {
                int status = run_helper(argv, msg, sizeof(msg));
                struct stat st;
                if (status == 0 && stat(out, &st) == 0 && st.st_size > 0) {
                        *path = strdup(out);
                        return *path ? NULL : &ms_error_no_memory;
                }
                if (status == 127 || status < 0)
                        break;
                nanosleep(&(struct timespec){0, 500000000}, NULL);
        }
        unlink(out);
        return ms_error_create(
                MS_ERROR_NOT_FOUND,
                "pid %d (%s) died of %s but coredumpctl has no "
                "core of it (%s); check Storage= and "
                "ProcessSizeMax= in "
                "/etc/systemd/coredump.conf, or %s",
                (int)dead->pid, dead->comm, sig_name(dead->signo),
                msg[0] ? msg : "coredumpctl failed", ENABLE_HINT);
}

/* apport keeps cores as /var/lib/apport/coredump/core.EXE.UID.BOOT.PID.TIME
 * (Ubuntu 22.04 on); older versions wrote "core" into the cwd. */
static struct ms_error *find_apport_core(const struct run_cores *cores,
                                         const struct run_dead *dead,
                                         char **path)
{
        char g[PATH_MAX];
        snprintf(g, sizeof(g), "/var/lib/apport/coredump/core.*.%d.*",
                 (int)dead->pid);
        *path = newest_match(g, dead->start_time);
        if (!*path && dead->cwd) {
                snprintf(g, sizeof(g), "%s/core", dead->cwd);
                *path = newest_match(g, dead->start_time);
        }
        if (*path)
                return NULL;
        return ms_error_create(MS_ERROR_NOT_FOUND,
                               "pid %d (%s) died of %s; kernel.core_pattern "
                               "pipes cores to apport (%s), which keeps them "
                               "only for packaged programs; %s",
                               (int)dead->pid, dead->comm,
                               sig_name(dead->signo), cores->pattern,
                               ENABLE_HINT);
}

struct ms_error *run_cores_find(const struct run_cores *cores,
                                const struct run_dead *dead,
                                const char *const *cwds, size_t n_cwds,
                                const char *dump_dir, char **path)
{
        *path = NULL;
        switch (cores->handler) {
        case RUN_CORE_FILE:
                return find_file_core(cores, dead, cwds, n_cwds, path);
        case RUN_CORE_SYSTEMD:
                return find_systemd_core(dead, dump_dir, path);
        case RUN_CORE_APPORT:
                return find_apport_core(cores, dead, path);
        case RUN_CORE_PIPE:
                break;
        }
        return ms_error_create(MS_ERROR_NOT_FOUND,
                               "pid %d (%s) died of %s but kernel.core_pattern "
                               "pipes cores to a handler mixstack cannot read "
                               "(%s); %s",
                               (int)dead->pid, dead->comm,
                               sig_name(dead->signo), cores->pattern,
                               ENABLE_HINT);
}

struct ms_error *run_cores_not_dumped(const struct run_cores *cores,
                                      const struct run_dead *dead)
{
        char g[PATH_MAX];
        if (cores->handler != RUN_CORE_FILE && cores->hard_limit != 0)
                return ms_error_create(
                        MS_ERROR_NOT_FOUND,
                        "pid %d (%s) died of %s but the kernel dumped no core "
                        "(kernel.core_pattern=%s): the process lowered its own "
                        "core limit or is not dumpable; %s",
                        (int)dead->pid, dead->comm, sig_name(dead->signo),
                        cores->pattern, ENABLE_HINT);
        pattern_glob(cores, dead->pid, dead->signo, dead->uid, dead->cwd, g);
        return no_file_core(cores, dead, g);
}

char **run_cores_sweep(const struct run_cores *cores, const char *const *cwds,
                       size_t n_cwds, time_t since, size_t *n)
{
        *n = 0;
        if (cores->handler != RUN_CORE_FILE)
                return NULL;
        char **found = NULL;
        char g[PATH_MAX];
        for (size_t i = 0; i < n_cwds; i++) {
                /* Any pid: %p and the appended ".PID" match anything. */
                pattern_glob(cores, 0, 0, getuid(), cwds[i], g);
                if (cores->uses_pid && !strstr(cores->pattern, "%p"))
                        strcat(g, ".*");
                glob_t gl;
                if (glob(g, GLOB_NOSORT, NULL, &gl) != 0)
                        continue;
                for (size_t j = 0; j < gl.gl_pathc; j++) {
                        struct stat st;
                        if (stat(gl.gl_pathv[j], &st) != 0 ||
                            !S_ISREG(st.st_mode) || st.st_size == 0 ||
                            st.st_mtime < since)
                                continue;
                        char **more = realloc(found, (*n + 1) * sizeof(*more));
                        if (!more)
                                break;
                        found = more;
                        found[*n] = strdup(gl.gl_pathv[j]);
                        if (found[*n])
                                (*n)++;
                }
                globfree(&gl);
                if (cores->pattern[0] == '/')
                        break;
        }
        return found;
}

/* pr_pid and pr_fname of the NT_PRPSINFO note in the PT_NOTE segment at
 * offset (x86-64 layout: pr_pid at 24, pr_fname[16] at 40). */
static pid_t note_pid(FILE *f, uint64_t offset, uint64_t size, char comm[17])
{
        uint64_t pos = 0;
        while (pos + 12 <= size && pos < (1u << 24)) {
                uint32_t hdr[3];
                if (fseeko(f, (off_t)(offset + pos), SEEK_SET) != 0 ||
                    fread(hdr, 4, 3, f) != 3)
                        return 0;
                uint64_t name = (hdr[0] + 3u) & ~3u, desc = (hdr[1] + 3u) & ~3u;
                if (hdr[2] == 3 /* NT_PRPSINFO */ && hdr[1] >= 56) {
                        unsigned char desc[56];
                        if (fseeko(f, (off_t)(offset + pos + 12 + name),
                                   SEEK_SET) != 0 ||
                            fread(desc, 1, sizeof(desc), f) != sizeof(desc))
                                return 0;
                        int32_t pid;
                        memcpy(&pid, desc + 24, 4);
                        memcpy(comm, desc + 40, 16);
                        comm[16] = '\0';
                        return pid > 0 ? pid : 0;
                }
                pos += 12 + name + desc;
        }
        return 0;
}

/* The process id in a core's NT_PRPSINFO note, read without opening the
 * whole core; 0 when it is not there. */
pid_t run_core_pid(const char *path, char comm[17])
{
        unsigned char ehdr[64];
        pid_t pid = 0;
        char unused[17];
        if (!comm)
                comm = unused;
        strcpy(comm, "?");
        FILE *f = fopen(path, "re");
        if (!f)
                return 0;
        if (fread(ehdr, 1, sizeof(ehdr), f) != sizeof(ehdr) ||
            memcmp(ehdr, "\177ELF\2\1", 6) != 0) {
                fclose(f);
                return 0;
        }
        uint64_t phoff;
        uint16_t phentsize, phnum;
        memcpy(&phoff, ehdr + 0x20, 8);
        memcpy(&phentsize, ehdr + 0x36, 2);
        memcpy(&phnum, ehdr + 0x38, 2);
        for (uint16_t i = 0; i < phnum && i < 4096 && !pid; i++) {
                unsigned char ph[56];
                if (phentsize < sizeof(ph) ||
                    fseeko(f, (off_t)(phoff + (uint64_t)i * phentsize),
                           SEEK_SET) != 0 ||
                    fread(ph, 1, sizeof(ph), f) != sizeof(ph))
                        break;
                uint32_t type;
                uint64_t offset, size;
                memcpy(&type, ph, 4);
                memcpy(&offset, ph + 8, 8);
                memcpy(&size, ph + 32, 8);
                if (type == 4 /* PT_NOTE */)
                        pid = note_pid(f, offset, size, comm);
        }
        fclose(f);
        return pid;
}

pid_t *run_cores_systemd_pids(time_t since, size_t *n)
{
        char since_arg[64], out[1 << 16];
        snprintf(since_arg, sizeof(since_arg), "--since=@%lld",
                 (long long)since);
        char *argv[] = {"coredumpctl",  "--no-pager", "-q", "-F",
                        "COREDUMP_PID", since_arg,    NULL};
        *n = 0;
        if (run_helper(argv, out, sizeof(out)) != 0)
                return NULL;
        pid_t *pids = NULL;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                long pid = strtol(line, NULL, 10);
                pid_t *more = pid > 0 ? realloc(pids, (*n + 1) * sizeof(*pids))
                                      : NULL;
                if (more) {
                        pids = more;
                        pids[(*n)++] = (pid_t)pid;
                }
        }
        return pids;
}
