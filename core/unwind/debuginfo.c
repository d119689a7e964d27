/*
 * Finding the separate debug info of modules: libdwfl's standard search
 * (/usr/lib/debug/.build-id, .gnu_debuglink), then, when $DEBUGINFOD_URLS
 * names servers, libdw's debuginfod client, which fetches the file by
 * build-id into its cache. The environment is read, never changed: without
 * servers libdw never loads the client, so nothing is fetched and nothing
 * waits. Downloads are reported through the target's download callback.
 */
#include <dlfcn.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unwind/internal.h"

/* The part of libdebuginfod's API used here (debuginfod.h), looked up in
 * the copy libdw has loaded: no build or link dependency on it, and the
 * client is dwfl's own (its servers, its cache). Function addresses only:
 * resolved once, never changed. */
typedef int debuginfod_progressfn_t(debuginfod_client *client, long a, long b);

static struct {
        void (*set_progressfn)(debuginfod_client *, debuginfod_progressfn_t *);
        void (*set_user_data)(debuginfod_client *, void *);
        void *(*get_user_data)(debuginfod_client *);
        const char *(*get_url)(debuginfod_client *);
        bool ok;
} api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void resolve_api(void)
{
        void *h = dlopen("libdebuginfod.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (!h)
                return;
        *(void **)&api.set_progressfn = dlsym(h, "debuginfod_set_progressfn");
        *(void **)&api.set_user_data = dlsym(h, "debuginfod_set_user_data");
        *(void **)&api.get_user_data = dlsym(h, "debuginfod_get_user_data");
        *(void **)&api.get_url = dlsym(h, "debuginfod_get_url");
        api.ok = api.set_progressfn && api.set_user_data && api.get_user_data &&
                 api.get_url;
        dlclose(h); /* libdw keeps it loaded */
}

/* The lookup under way in this thread (dwfl's callbacks take no argument
 * of their own, the client's progress function only the client). */
struct fetch {
        const char *module;
        struct ms_unwinder *unwinder; /* set once the client reports */
        char *url;
        int64_t bytes, total;
};
static _Thread_local struct fetch *current_fetch;

static void report(struct fetch *f, bool finished, bool ok)
{
        struct ms_target *t = f->unwinder->target;
        struct ms_download d = {
                .module = f->module,
                .url = f->url,
                .bytes = f->bytes,
                .total = f->total,
                .finished = finished,
                .ok = ok,
        };
        t->download(t->download_arg, &d);
}

static int progress(debuginfod_client *client, long bytes, long total)
{
        struct fetch *f = current_fetch;
        if (!f)
                return 0; /* a lookup dwfl makes on its own (alt files) */
        f->unwinder = api.get_user_data(client);
        if (!f->unwinder)
                return 0;
        if (!f->url) {
                const char *url = api.get_url(client);
                f->url = url ? strdup(url) : NULL;
        }
        f->bytes = bytes > 0 ? bytes : 0;
        f->total = total > 0 ? total : 0;
        report(f, false, false);
        return 0;
}

void ms_unwinder_watch_downloads(struct ms_unwinder *u)
{
        if (u->target->no_debuginfod || !u->target->download)
                return;
        /* NULL without servers: libdw then never loads libdebuginfod. */
        debuginfod_client *client = dwfl_get_debuginfod_client(u->dwfl);
        if (!client)
                return;
        pthread_once(&api_once, resolve_api);
        if (!api.ok)
                return;
        api.set_user_data(client, u);
        api.set_progressfn(client, progress);
}

/* libdwfl's search, debuginfod included when it has servers. */
int ms_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                      Dwarf_Addr base, const char *file_name,
                      const char *debuglink_file, GElf_Word debuglink_crc,
                      char **debuginfo_file_name)
{
        struct fetch f = {.module = modname};
        struct fetch *outer = current_fetch;
        current_fetch = &f;
        int fd = dwfl_standard_find_debuginfo(
                mod, userdata, modname, base, file_name, debuglink_file,
                debuglink_crc, debuginfo_file_name);
        current_fetch = outer;
        if (f.unwinder)
                report(&f, true, fd >= 0);
        free(f.url);
        return fd;
}

/* Whether the ELF file open on fd has the build-id of mod. */
static bool same_build_id(Dwfl_Module *mod, int fd)
{
        const unsigned char *want;
        GElf_Addr vaddr;
        int n = dwfl_module_build_id(mod, &want, &vaddr);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        const void *have;
        bool same = n > 0 && elf && dwelf_elf_gnu_build_id(elf, &have) == n &&
                    memcmp(want, have, n) == 0;
        elf_end(elf);
        return same;
}

static int open_candidate(Dwfl_Module *mod, char *path, char **found)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && same_build_id(mod, fd)) {
                *found = path;
                return fd;
        }
        if (fd >= 0)
                close(fd);
        free(path);
        return -1;
}

/* The same search with no network: by build-id under the debuginfo path,
 * then the .gnu_debuglink name next to the file, in .debug/ there and
 * under /usr/lib/debug, each checked against the module's build-id. */
int ms_find_debuginfo_offline(Dwfl_Module *mod, void **userdata,
                              const char *modname, Dwarf_Addr base,
                              const char *file_name, const char *debuglink_file,
                              GElf_Word debuglink_crc,
                              char **debuginfo_file_name)
{
        int fd = dwfl_build_id_find_debuginfo(
                mod, userdata, modname, base, file_name, debuglink_file,
                debuglink_crc, debuginfo_file_name);
        if (fd >= 0 || !debuglink_file || !file_name ||
            strchr(debuglink_file, '/'))
                return fd;
        char *copy = strdup(file_name);
        if (!copy)
                return -1;
        const char *dir = dirname(copy);
        static const char *const formats[] = {"%s/%s", "%s/.debug/%s",
                                              "/usr/lib/debug%s/%s"};
        fd = -1;
        for (size_t i = 0; fd < 0 && i < sizeof(formats) / sizeof(*formats);
             i++) {
                char *path;
                if (asprintf(&path, formats[i], dir, debuglink_file) < 0)
                        break;
                /* The file itself is no debug file of its own. */
                if (strcmp(path, file_name) == 0) {
                        free(path);
                        continue;
                }
                fd = open_candidate(mod, path, debuginfo_file_name);
        }
        free(copy);
        return fd;
}
