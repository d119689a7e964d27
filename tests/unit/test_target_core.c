/* The core file backend and the shared target code, on cores made at run
 * time: a gcore snapshot of a stopped child and a real SIGABRT core. */
#include <elf.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/backend.h"
#include "target_fixture.h"
#include "unit.h"

#define N_THREADS 3

static char *self_exe(void)
{
        static char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

static bool has_warning(const struct ms_target *target, const char *text)
{
        for (size_t i = 0; i < target->warnings.n; i++) {
                if (strstr(target->warnings.items[i], text))
                        return true;
        }
        return false;
}

static void print_warnings(const char *what, const struct ms_target *target)
{
        for (size_t i = 0; i < target->warnings.n; i++)
                printf("  %s warning: %s\n", what, target->warnings.items[i]);
}

static void write_file(const char *path, const void *data, size_t size)
{
        FILE *f = fopen(path, "w");
        if (!f || fwrite(data, 1, size, f) != size) {
                perror(path);
                exit(1);
        }
        fclose(f);
}

static void *read_whole(const char *path, size_t *size)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *buf = malloc(n > 0 ? (size_t)n : 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        *size = (size_t)n;
        return buf;
}

/* ------------------------------------------------------------------------ */

static void test_not_cores(const char *dir)
{
        struct ms_target *target = NULL;
        struct ms_error *err;
        char path[4096];

        snprintf(path, sizeof(path), "%s/text", dir);
        write_file(path, "hello, world\n", 13);
        err = ms_target_open_core(path, NULL, &target);
        CHECK(err && err->code == MS_ERROR_BAD_INPUT);
        CHECK(err && strstr(err->message, "is not an ELF file"));
        ms_error_destroy(err);

        snprintf(path, sizeof(path), "%s/empty", dir);
        write_file(path, "", 0);
        err = ms_target_open_core(path, NULL, &target);
        CHECK(err && err->code == MS_ERROR_BAD_INPUT);
        ms_error_destroy(err);

        err = ms_target_open_core(self_exe(), NULL, &target);
        CHECK(err && err->code == MS_ERROR_BAD_INPUT);
        CHECK(err && strstr(err->message,
                            "is an ELF file but not a core dump (type DYN)"));
        if (err)
                printf("  not a core: %s\n", err->message);
        ms_error_destroy(err);

        snprintf(path, sizeof(path), "%s/does-not-exist", dir);
        err = ms_target_open_core(path, NULL, &target);
        CHECK(err && err->code == MS_ERROR_NOT_FOUND);
        ms_error_destroy(err);

        err = ms_target_open_core(dir, NULL, &target);
        CHECK(err && err->code == MS_ERROR_BAD_INPUT);
        ms_error_destroy(err);

        /* An aarch64 core header. */
        Elf64_Ehdr ehdr = {0};
        memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
        ehdr.e_ident[EI_CLASS] = ELFCLASS64;
        ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
        ehdr.e_type = ET_CORE;
        ehdr.e_machine = EM_AARCH64;
        snprintf(path, sizeof(path), "%s/arm-core", dir);
        write_file(path, &ehdr, sizeof(ehdr));
        err = ms_target_open_core(path, NULL, &target);
        CHECK(err && err->code == MS_ERROR_UNSUPPORTED);
        ms_error_destroy(err);

        err = ms_target_open_core(NULL, NULL, &target);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
}

/* What every core of a fixture child must show. */
static void check_core(struct ms_target *target, pid_t pid, const int *tids,
                       int n_tids, const char *what)
{
        CHECK(target->kind == MS_TARGET_CORE);
        CHECK(target->pid == pid);
        /* The vdso is dumped: its ELF header is there. */
        uint8_t magic[SELFMAG];
        CHECK(target->vdso_address != 0);
        struct ms_error *verr = ms_target_read(target, target->vdso_address,
                                               magic, sizeof(magic));
        CHECK(!verr && memcmp(magic, ELFMAG, SELFMAG) == 0);
        ms_error_destroy(verr);
        CHECK(target->n_threads == (size_t)n_tids);
        for (int i = 0; i < n_tids; i++) {
                struct ms_target_thread *t =
                        ms_target_find_thread(target, tids[i]);
                CHECK(t != NULL);
                CHECK(t && t->have_regs && t->regs[MS_REG_RIP] != 0 &&
                      t->regs[MS_REG_RSP] != 0 && t->fs_base != 0);
        }
        struct ms_target_thread *main_thread =
                ms_target_find_thread(target, pid);
        CHECK(main_thread && main_thread->name &&
              strncmp(main_thread->name, "test_target_cor", 15) == 0);

        uint64_t marker = 0;
        struct ms_error *err = ms_target_read_u64(
                target, (uint64_t)(uintptr_t)&fixture_marker, &marker);
        CHECK(!err && marker == FIXTURE_MARKER);
        if (err)
                printf("  %s: marker: %s\n", what, err->message);
        ms_error_destroy(err);

        /* .rodata is not in the core: the backend alone cannot read it,
         * the target can, from the executable. */
        char buf[sizeof(fixture_rodata)];
        uint64_t rodata = (uint64_t)(uintptr_t)fixture_rodata;
        err = target->ops->read(target, rodata, buf, sizeof(buf));
        if (!err)
                printf("  %s: note: .rodata was dumped in the core\n", what);
        CHECK(err == NULL || err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        char *s = NULL;
        err = ms_target_read_string(target, rodata, 4096, &s, NULL);
        CHECK(!err);
        CHECK_STR(s, fixture_rodata);
        free(s);
        ms_error_destroy(err);

        /* A string cut at max_len. */
        bool truncated = false;
        err = ms_target_read_string(target, rodata, 8, &s, &truncated);
        CHECK(!err && truncated && strlen(s) == 8);
        free(s);
        ms_error_destroy(err);

        CHECK_STR(target->executable, self_exe());
        CHECK_STR(target->host_executable, self_exe());
        const struct ms_mapping *m = ms_target_find_mapping(
                target, (uint64_t)(uintptr_t)&fixture_marker);
        CHECK(m && strcmp(m->path, self_exe()) == 0 && m->host_path);
        for (size_t i = 1; i < target->n_mappings; i++)
                CHECK(target->mappings[i - 1].end <= target->mappings[i].start);

        /* The build-id in the core equals the executable's. */
        const struct ms_mapping *first = NULL;
        for (size_t i = 0; i < target->n_mappings && !first; i++) {
                if (strcmp(target->mappings[i].path, self_exe()) == 0 &&
                    target->mappings[i].file_offset == 0)
                        first = &target->mappings[i];
        }
        CHECK(first != NULL);
        uint8_t id[64], here[64];
        size_t id_len = sizeof(id), here_len = sizeof(here), size;
        if (first) {
                err = ms_target_build_id(target, first, id, &id_len);
                const uint8_t *image =
                        ms_target_map_file(target, first->path, &size);
                CHECK(image &&
                      ms_elf_file_build_id(image, size, here, &here_len));
                if (err)
                        printf("  %s: no build-id in the core: %s\n", what,
                               err->message);
                else
                        CHECK(id_len == here_len &&
                              memcmp(id, here, id_len) == 0);
                ms_error_destroy(err);
        }
        CHECK(!has_warning(target, "missing file"));
        CHECK(!has_warning(target, "does not match"));

        uint64_t unmapped;
        err = ms_target_read_u64(target, 8, &unmapped);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        err = ms_target_read_u64(target, UINT64_MAX - 3, &unmapped);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
}

/* A sysroot with nothing in it: every file is missing; a library path
 * finds the executable by name; a wrong file is caught by its build-id. */
static void test_missing_files(const char *core, const char *dir)
{
        char libdir[1024], path[8192];
        snprintf(libdir, sizeof(libdir), "%s/libs", dir);
        mkdir(libdir, 0755);
        const char *paths[] = {libdir};
        struct ms_target_options options = {
                .sysroot = "/nonexistent-sysroot",
                .library_paths = paths,
                .n_library_paths = 1,
        };
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(core, &options, &target);
        CHECK(!err);
        if (err) {
                printf("  %s\n", err->message);
                ms_error_destroy(err);
                return;
        }
        CHECK(has_warning(target, "missing file: /"));
        CHECK(has_warning(target, "its symbols and memory are unavailable"));
        CHECK(target->host_executable == NULL);
        char *s = NULL;
        err = ms_target_read_string(target, (uint64_t)(uintptr_t)fixture_rodata,
                                    4096, &s, NULL);
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        free(s);
        ms_target_destroy(target);

        /* The executable found by its name in a library directory; the
         * test binary posing as libc is caught. */
        size_t size;
        void *exe = read_whole(self_exe(), &size);
        const char *base = strrchr(self_exe(), '/') + 1;
        snprintf(path, sizeof(path), "%s/%s", libdir, base);
        write_file(path, exe, size);
        snprintf(path, sizeof(path), "%s/libc.so.6", libdir);
        write_file(path, exe, size);
        free(exe);
        err = ms_target_open_core(core, &options, &target);
        CHECK(!err);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        snprintf(path, sizeof(path), "%s/%s", libdir, base);
        CHECK_STR(target->host_executable, path);
        CHECK(has_warning(target,
                          "libc.so.6 on this machine does not match the core"));
        for (size_t i = 0; i < target->n_mappings; i++) {
                if (strstr(target->mappings[i].path, "/libc.so.6"))
                        CHECK(target->mappings[i].host_path == NULL);
        }
        err = ms_target_read_string(target, (uint64_t)(uintptr_t)fixture_rodata,
                                    4096, &s, NULL);
        CHECK(!err);
        CHECK_STR(s, fixture_rodata);
        free(s);
        ms_error_destroy(err);
        print_warnings("missing", target);
        ms_target_destroy(target);

        /* A given executable that is not the one: warned, used anyway. */
        struct ms_target_options exe_options = {.executable = "/bin/true"};
        err = ms_target_open_core(core, &exe_options, &target);
        CHECK(!err);
        if (!err) {
                CHECK_STR(target->host_executable, "/bin/true");
                CHECK(has_warning(target,
                                  "/bin/true on this machine does not match"));
                ms_target_destroy(target);
        }
        ms_error_destroy(err);
}

/* ------------------------------------------------------------------------
 * Debugger-fed target built from a core
 * ------------------------------------------------------------------------ */

static int read_through(void *arg, uint64_t address, void *buf, size_t size)
{
        struct ms_error *err = ms_target_read(arg, address, buf, size);
        ms_error_destroy(err);
        return err ? -1 : 0;
}

static void test_debugger(const char *core_path)
{
        struct ms_target *core = NULL, *dbg = NULL;
        struct ms_error *err = ms_target_open_core(core_path, NULL, &core);
        CHECK(!err);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        err = ms_target_create_debugger(read_through, core, NULL, &dbg);
        CHECK(!err);
        for (size_t i = 0; !err && i < core->n_threads; i++) {
                const struct ms_target_thread *t = &core->threads[i];
                err = ms_target_add_thread(dbg, t->tid, t->name, t->regs,
                                           t->fs_base);
        }
        CHECK(!err);
        /* Backwards, to exercise the sorted insertion. */
        for (size_t i = core->n_mappings; !err && i-- > 0;) {
                const struct ms_mapping *m = &core->mappings[i];
                err = ms_target_add_mapping(dbg, m->path, m->start, m->end,
                                            m->file_offset);
        }
        CHECK(!err);
        if (!err)
                err = ms_target_set_process(dbg, core->pid, core->executable,
                                            core->signo, core->signal_tid);
        CHECK(!err);
        ms_error_destroy(err);

        err = ms_target_add_thread(dbg, core->threads[0].tid, NULL, NULL, 0);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
        err = ms_target_add_thread(core, 1, NULL, NULL, 0);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);
        err = ms_target_add_mapping(dbg, "/x", 10, 5, 0);
        CHECK(err && err->code == MS_ERROR_INVALID_ARGUMENT);
        ms_error_destroy(err);

        CHECK(dbg->kind == MS_TARGET_DEBUGGER);
        CHECK(dbg->pid == core->pid && dbg->signo == core->signo &&
              dbg->signal_tid == core->signal_tid);
        CHECK_STR(dbg->executable, core->executable);
        CHECK_STR(dbg->host_executable, core->host_executable);
        CHECK(dbg->n_threads == core->n_threads);
        for (size_t i = 0; i < dbg->n_threads && i < core->n_threads; i++) {
                CHECK(dbg->threads[i].tid == core->threads[i].tid);
                CHECK(memcmp(dbg->threads[i].regs, core->threads[i].regs,
                             sizeof(core->threads[i].regs)) == 0);
                CHECK(dbg->threads[i].fs_base == core->threads[i].fs_base);
        }
        CHECK(dbg->n_mappings == core->n_mappings);
        for (size_t i = 0; i < dbg->n_mappings && i < core->n_mappings; i++) {
                const struct ms_mapping *a = &dbg->mappings[i];
                const struct ms_mapping *b = &core->mappings[i];
                CHECK(a->start == b->start && a->end == b->end &&
                      a->file_offset == b->file_offset);
                CHECK_STR(a->path, b->path);
                CHECK((a->host_path == NULL) == (b->host_path == NULL));
                if (a->host_path && b->host_path)
                        CHECK_STR(a->host_path, b->host_path);
        }
        uint64_t marker = 0;
        err = ms_target_read_u64(dbg, (uint64_t)(uintptr_t)&fixture_marker,
                                 &marker);
        CHECK(!err && marker == FIXTURE_MARKER);
        ms_error_destroy(err);
        char *s = NULL;
        err = ms_target_read_string(dbg, (uint64_t)(uintptr_t)fixture_rodata,
                                    4096, &s, NULL);
        CHECK(!err);
        CHECK_STR(s, fixture_rodata);
        free(s);
        ms_error_destroy(err);
        /* Every mapped byte the core has, the debugger target has too. */
        for (size_t i = 0; i < core->n_mappings; i += 7) {
                uint8_t a[64], b[64];
                uint64_t at = core->mappings[i].start;
                struct ms_error *e1 = ms_target_read(core, at, a, sizeof(a));
                struct ms_error *e2 = ms_target_read(dbg, at, b, sizeof(b));
                CHECK((e1 == NULL) == (e2 == NULL));
                if (!e1 && !e2)
                        CHECK(memcmp(a, b, sizeof(a)) == 0);
                ms_error_destroy(e1);
                ms_error_destroy(e2);
        }
        ms_target_destroy(dbg);
        ms_target_destroy(core);

        /* A module known only by its load address. */
        err = ms_target_create_debugger(read_through, NULL, NULL, &dbg);
        CHECK(!err);
        if (!err) {
                err = ms_target_add_mapping(dbg, "[vdso]", 0x1000, 0x1000, 0);
                CHECK(!err && dbg->n_mappings == 1);
                CHECK(ms_target_find_mapping(dbg, 0x1000) == NULL);
                ms_error_destroy(err);
                ms_target_destroy(dbg);
        }
}

/* A core without NT_FILE: the executable is found from AT_EXECFN and
 * mapped at the bias AT_PHDR gives. */
static void test_no_nt_file(const char *core, const char *dir)
{
        size_t size;
        uint8_t *data = read_whole(core, &size);
        if (!data)
                return;
        Elf64_Ehdr ehdr;
        memcpy(&ehdr, data, sizeof(ehdr));
        bool patched = false;
        for (size_t i = 0; i < ehdr.e_phnum; i++) {
                Elf64_Phdr p;
                memcpy(&p, data + ehdr.e_phoff + i * sizeof(p), sizeof(p));
                if (p.p_type != PT_NOTE)
                        continue;
                size_t off = 0, start = 0;
                struct ms_note note;
                bool malformed = false;
                while (ms_note_next(data + p.p_offset, p.p_filesz, 4, &off,
                                    &note, &malformed)) {
                        if (note.type == NT_FILE) {
                                uint32_t other = 0x4f544852; /* unknown */
                                memcpy(data + p.p_offset + start + 8, &other,
                                       4);
                                patched = true;
                        }
                        start = off;
                }
        }
        CHECK(patched);
        char path[4096];
        snprintf(path, sizeof(path), "%s/no-nt-file", dir);
        write_file(path, data, size);
        free(data);
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(path, NULL, &target);
        CHECK(!err);
        if (err) {
                printf("  %s\n", err->message);
                ms_error_destroy(err);
                return;
        }
        CHECK(has_warning(target, "no NT_FILE"));
        CHECK_STR(target->host_executable, self_exe());
        CHECK(target->n_mappings > 0);
        char *s = NULL;
        err = ms_target_read_string(target, (uint64_t)(uintptr_t)fixture_rodata,
                                    4096, &s, NULL);
        CHECK(!err);
        CHECK_STR(s, fixture_rodata);
        free(s);
        ms_error_destroy(err);
        uint64_t marker = 0;
        err = ms_target_read_u64(target, (uint64_t)(uintptr_t)&fixture_marker,
                                 &marker);
        CHECK(!err && marker == FIXTURE_MARKER);
        ms_error_destroy(err);
        ms_target_destroy(target);
}

static int no_memory(void *arg, uint64_t address, void *buf, size_t size)
{
        return -1;
}

static void test_resolve(void)
{
        const char *paths[] = {"/usr/bin"};
        struct ms_target_options options = {
                .library_paths = paths,
                .n_library_paths = 1,
        };
        struct ms_target *t = NULL;
        struct ms_error *err =
                ms_target_create_debugger(no_memory, NULL, &options, &t);
        CHECK(!err);
        if (err) {
                ms_error_destroy(err);
                return;
        }
        /* Library paths come before the recorded path. */
        char *p = ms_target_resolve_path(t, "/bin/sh");
        CHECK_STR(p, "/usr/bin/sh");
        free(p);
        p = ms_target_resolve_path(t, "/etc/os-release (deleted)");
        CHECK_STR(p, "/etc/os-release");
        free(p);
        p = ms_target_resolve_path(t, "/nowhere/sh");
        CHECK_STR(p, "/usr/bin/sh");
        free(p);
        CHECK(ms_target_resolve_path(t, "[vdso]") == NULL);
        CHECK(ms_target_resolve_path(t, "/dev/zero (deleted)") == NULL);
        CHECK(ms_target_resolve_path(t, "/memfd:jit (deleted)") == NULL);
        CHECK(ms_target_resolve_path(t, "") == NULL);
        CHECK(ms_target_resolve_path(t, NULL) == NULL);
        /* Pseudo files are no missing files. */
        err = ms_target_add_mapping(t, "/dev/zero (deleted)", 0x1000, 0x2000,
                                    0);
        CHECK(!err && t->warnings.n == 0);
        ms_error_destroy(err);
        err = ms_target_add_mapping(t, "/no/such/lib.so", 0x3000, 0x4000, 0);
        CHECK(!err &&
              has_warning(t,
                          "missing file: /no/such/lib.so (mapped at 0x3000)"));
        ms_error_destroy(err);
        err = ms_target_add_mapping(t, "/no/such/lib.so", 0x4000, 0x5000,
                                    0x1000);
        CHECK(!err && t->warnings.n == 1);
        ms_error_destroy(err);
        err = ms_target_add_mapping(t, "/bin/sh", 0x5000, 0x6000, 0);
        CHECK(!err && ms_target_find_mapping(t, 0x5800) &&
              ms_target_find_mapping(t, 0x5800)->host_path);
        ms_error_destroy(err);
        /* No memory behind it: reads fault, from the file too when the
         * file holds nothing there. */
        uint8_t b[4];
        err = ms_target_read(t, 0x3000, b, sizeof(b));
        CHECK(err && err->code == MS_ERROR_FAULT);
        ms_error_destroy(err);
        err = ms_target_read(t, 0x5000, b, sizeof(b));
        CHECK(!err && memcmp(b, ELFMAG, SELFMAG) == 0);
        ms_error_destroy(err);
        ms_target_destroy(t);

        /* A sysroot of "/" is no sysroot. */
        struct ms_target_options root = {.sysroot = "/"};
        err = ms_target_create_debugger(no_memory, NULL, &root, &t);
        CHECK(!err && t->sysroot == NULL);
        ms_error_destroy(err);
        ms_target_destroy(t);
}

/* ------------------------------------------------------------------------
 * Broken cores
 * ------------------------------------------------------------------------ */

static void open_broken(const char *path, const char *what, bool verbose)
{
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(path, NULL, &target);
        if (err) {
                CHECK(err->code == MS_ERROR_BAD_INPUT ||
                      err->code == MS_ERROR_UNSUPPORTED);
                if (verbose)
                        printf("  %s: error: %s\n", what, err->message);
                ms_error_destroy(err);
                return;
        }
        /* Whatever it holds, reading it must be safe. */
        for (size_t i = 0; i < target->n_threads; i++) {
                uint64_t v;
                struct ms_error *e = ms_target_read_u64(
                        target, target->threads[i].regs[MS_REG_RSP], &v);
                ms_error_destroy(e);
        }
        for (size_t i = 0; i < target->n_mappings; i++) {
                uint8_t buf[32];
                struct ms_error *e = ms_target_read(
                        target, target->mappings[i].start, buf, sizeof(buf));
                ms_error_destroy(e);
        }
        if (verbose) {
                printf("  %s: opened, %zu threads\n", what, target->n_threads);
                print_warnings(what, target);
        }
        ms_target_destroy(target);
}

static void test_truncated(const char *core, const char *dir)
{
        size_t size;
        uint8_t *data = read_whole(core, &size);
        CHECK(data != NULL);
        if (!data)
                return;
        Elf64_Ehdr ehdr;
        memcpy(&ehdr, data, sizeof(ehdr));
        size_t note_off = 0, note_size = 0, load_off = 0, load_size = 0;
        for (size_t i = 0; i < ehdr.e_phnum; i++) {
                Elf64_Phdr p;
                memcpy(&p, data + ehdr.e_phoff + i * sizeof(p), sizeof(p));
                if (p.p_type == PT_NOTE && !note_off) {
                        note_off = p.p_offset;
                        note_size = p.p_filesz;
                }
                if (p.p_type == PT_LOAD && p.p_filesz > 8192 && !load_off) {
                        load_off = p.p_offset;
                        load_size = p.p_filesz;
                }
        }
        /* Cuts inside the headers, the notes or memory must give an error
         * or a warning; the others (gcore's section headers at the end)
         * need not. */
        size_t cuts[] = {
                4,
                16,
                63,
                sizeof(Elf64_Ehdr),
                sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10,
                note_off + 30,
                note_off + note_size / 2,
                load_off + load_size / 2,
                note_off + note_size,
                size - 1,
        };
        size_t n_must_warn = 8;
        char path[4096];
        snprintf(path, sizeof(path), "%s/truncated", dir);
        for (size_t i = 0; i < MS_ARRAY_SIZE(cuts); i++) {
                if (cuts[i] > size)
                        continue;
                write_file(path, data, cuts[i]);
                char what[64];
                snprintf(what, sizeof(what), "cut at %zu", cuts[i]);
                struct ms_target *target = NULL;
                struct ms_error *err = ms_target_open_core(path, NULL, &target);
                if (i < n_must_warn)
                        CHECK(err || has_warning(target, "truncated"));
                if (!err)
                        ms_target_destroy(target);
                ms_error_destroy(err);
                open_broken(path, what, true);
        }

        /* Random damage to the headers and notes. */
        srand(12345);
        size_t span = MS_MIN(size, MS_MAX(note_off + note_size, (size_t)4096));
        uint8_t *copy = malloc(size);
        /* Fewer rounds when each copy is big (gcore: notes at the end). */
        int rounds = span > (8u << 20) ? 40 : 300;
        for (int round = 0; round < rounds && copy; round++) {
                memcpy(copy, data, size);
                int flips = 1 + rand() % 16;
                for (int j = 0; j < flips; j++) {
                        size_t at = (size_t)rand() % span;
                        if (rand() % 2 && note_size) {
                                /* Aim at the notes, where the sizes are. */
                                at = note_off + (size_t)rand() % note_size;
                        }
                        copy[at] = rand() % 3 ? (uint8_t)rand() : 0xff;
                }
                write_file(path, copy, MS_MIN(size, span + 65536));
                open_broken(path, "fuzz", false);
        }
        free(copy);
        CHECK(true); /* survived */
        free(data);
}

/* ------------------------------------------------------------------------ */

static void test_gcore(const char *dir, char **core_out)
{
        if (!fixture_have_gcore()) {
                printf("  gcore not found: skipping the gcore snapshot test\n");
                return;
        }
        if (FIXTURE_ASAN) {
                printf("  AddressSanitizer build: skipping the gcore snapshot "
                       "test (gcore would dump the shadow memory)\n");
                return;
        }
        struct fixture_child child =
                fixture_spawn(N_THREADS, FIXTURE_SLEEP, dir);
        int tids[FIXTURE_MAX_THREADS];
        int n_tids = fixture_tids(child.pid, tids, FIXTURE_MAX_THREADS);
        char *core = fixture_gcore(child.pid, dir);
        pid_t pid = child.pid;
        fixture_kill(&child);
        CHECK(core != NULL);
        if (!core) {
                printf("  gcore failed\n");
                return;
        }
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(core, NULL, &target);
        CHECK(!err);
        if (err) {
                printf("  gcore core: %s\n", err->message);
                ms_error_destroy(err);
                free(core);
                return;
        }
        CHECK(n_tids == N_THREADS + 1);
        check_core(target, pid, tids, n_tids, "gcore");
        /* A snapshot, not a crash. */
        CHECK(target->signo == 0);
        print_warnings("gcore", target);
        ms_target_destroy(target);
        *core_out = core;
}

static void test_crash(const char *dir, enum fixture_mode mode, char **core_out)
{
        if (!fixture_core_pattern_local()) {
                printf("  core_pattern does not write cores to the cwd: "
                       "skipping the crash core test\n");
                return;
        }
        char *sub = NULL;
        if (asprintf(&sub, "%s/crash%d", dir, (int)mode) < 0)
                return;
        mkdir(sub, 0755);
        pid_t pid;
        int tids[FIXTURE_MAX_THREADS], n_tids;
        char *core =
                fixture_crash_core(N_THREADS, mode, sub, &pid, tids, &n_tids);
        free(sub);
        if (!core) {
                printf("  the kernel wrote no core: skipping the crash core "
                       "test\n");
                return;
        }
        struct ms_target *target = NULL;
        struct ms_error *err = ms_target_open_core(core, NULL, &target);
        CHECK(!err);
        if (err) {
                printf("  crash core: %s\n", err->message);
                ms_error_destroy(err);
                free(core);
                return;
        }
        CHECK(n_tids == N_THREADS + 1);
        check_core(target, pid, tids, n_tids, "crash");
        if (mode == FIXTURE_ABORT) {
                CHECK(target->signo == SIGABRT);
                CHECK(target->signal_tid == pid);
                CHECK(target->fault_address == 0);
        } else {
                /* A worker crashed: it is first in the core. */
                CHECK(target->signo == SIGSEGV);
                CHECK(target->signal_tid != pid);
                CHECK(target->fault_address == FIXTURE_FAULT_ADDRESS);
                CHECK(target->si_code == SEGV_MAPERR);
                struct ms_target_thread *t =
                        ms_target_find_thread(target, target->signal_tid);
                CHECK(t && t->signo == SIGSEGV);
        }
        CHECK(target->threads[0].tid == target->signal_tid);
        print_warnings("crash", target);
        ms_target_destroy(target);
        if (core_out)
                *core_out = core;
        else
                free(core);
}

int main(void)
{
        char *dir = fixture_tmpdir();
        char *gcore = NULL, *crash = NULL;
        printf("not cores\n");
        test_not_cores(dir);
        printf("path resolution\n");
        test_resolve();
        printf("gcore snapshot\n");
        test_gcore(dir, &gcore);
        printf("crash core\n");
        test_crash(dir, FIXTURE_ABORT, &crash);
        printf("crash core (SIGSEGV in a thread)\n");
        test_crash(dir, FIXTURE_SEGV, NULL);
        const char *core = crash ? crash : gcore;
        if (core) {
                printf("missing files (%s)\n", core);
                test_missing_files(core, dir);
                printf("no NT_FILE\n");
                test_no_nt_file(core, dir);
                printf("debugger-fed target\n");
                test_debugger(core);
                printf("truncated and damaged cores\n");
                test_truncated(core, dir);
        }
        if (gcore && crash) {
                printf("debugger-fed target (gcore)\n");
                test_debugger(gcore);
                printf("truncated gcore\n");
                test_truncated(gcore, dir);
        }
        free(gcore);
        free(crash);
        fixture_rmdir(dir);
        free(dir);
        if (!core && !unit_failed)
                unit_skip("no core could be made (no gcore, no core dumps)");
        return unit_finish();
}
