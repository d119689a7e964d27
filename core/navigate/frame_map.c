/*
 * A report's thread against a debugger's frames of that thread, and Python
 * frame navigation on it: what the gdb and lldb frontends share.
 *
 * Both sides see the same physical frames (stack frames with a pc of their
 * own); either may have frames the other lacks (an unwinder that stopped
 * early, a frame the other could not unwind through). The physical frames
 * are matched on their pcs by the longest common subsequence, so a missing
 * frame costs only itself. A function inlined into a physical frame is a
 * frame of its own on both sides, but the two do not always agree on the
 * inline chains (lldb drops them in the cold part of a split function):
 * they are matched by name within their physical frame, and by distance
 * from the physical frame when the names do not help.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "navigate/navigate.h"
#include "output/printers.h"
#include "report/native.h"

/* The common subsequence table is (a+1)*(b+1) cells: above this, a greedy
 * match (both stacks are bounded by the report's max_frames anyway). */
#define MAX_LCS_CELLS (4u << 20)
#define MAX_DEBUGGER_FRAMES 65536

struct dbg_frame {
        uint64_t pc;
        unsigned flags;
        char *function;
};

struct ms_frame_map {
        const struct ms_report *report;
        const struct ms_thread_report *thread;
        const struct ms_native_frames *native;
        struct dbg_frame *dbg;
        size_t n_dbg, dbg_capacity;
        bool matched;
        /* Per native frame: the debugger frame, or -1. */
        long *native_dbg;
        /* Per debugger frame: the native frame, or -1. */
        long *dbg_native;
        /* Per report frame: the debugger frame, or -1. */
        long *frame_dbg;
        /* Report frame indices of the Python frames, innermost first. */
        size_t *python;
        size_t n_python;
        /* Navigation: the debugger's selected frame, the Python frame
         * chosen (-1: none) and the debugger frame it was chosen at. */
        size_t selected_dbg;
        long chosen;
        size_t chosen_dbg;
        /* The last list: of which Python frame, and the next line. */
        long list_k;
        long list_next;
};

struct ms_error *ms_frame_map_create(const struct ms_report *report, pid_t tid,
                                     struct ms_frame_map **ret)
{
        if (!report || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "ms_frame_map_create: no report");
        const struct ms_thread_report *thread =
                ms_report_find_thread(report, tid);
        if (!thread)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "thread %d is not in the report",
                                       (int)tid);
        struct ms_frame_map *map = calloc(1, sizeof(*map));
        if (!map)
                return &ms_error_no_memory;
        map->report = report;
        map->thread = thread;
        map->native =
                ms_report_native(report, (size_t)(thread - report->threads));
        map->chosen = -1;
        map->list_k = -1;
        *ret = map;
        return NULL;
}

struct ms_error *ms_frame_map_add_debugger_frame(struct ms_frame_map *map,
                                                 uint64_t pc, unsigned flags,
                                                 const char *function)
{
        if (!map)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT, "no map");
        if (map->n_dbg >= MAX_DEBUGGER_FRAMES)
                return ms_error_create(MS_ERROR_UNSUPPORTED,
                                       "more than %d debugger frames",
                                       MAX_DEBUGGER_FRAMES);
        if (!ms_grow((void **)&map->dbg, &map->dbg_capacity, map->n_dbg,
                     sizeof(*map->dbg)))
                return &ms_error_no_memory;
        struct dbg_frame *f = &map->dbg[map->n_dbg];
        f->pc = pc;
        f->flags = flags;
        f->function = NULL;
        if (function && !(f->function = strdup(function)))
                return &ms_error_no_memory;
        map->n_dbg++;
        map->matched = false;
        return NULL;
}

static void clear_match(struct ms_frame_map *map)
{
        free(map->native_dbg);
        free(map->dbg_native);
        free(map->frame_dbg);
        free(map->python);
        map->native_dbg = map->dbg_native = map->frame_dbg = NULL;
        map->python = NULL;
        map->n_python = 0;
        map->matched = false;
}

void ms_frame_map_destroy(struct ms_frame_map *map)
{
        if (!map)
                return;
        clear_match(map);
        for (size_t i = 0; i < map->n_dbg; i++)
                free(map->dbg[i].function);
        free(map->dbg);
        free(map);
}

const struct ms_thread_report *ms_frame_map_thread(
        const struct ms_frame_map *map)
{
        return map ? map->thread : NULL;
}

/* ------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------ */

static bool dbg_physical(const struct dbg_frame *f)
{
        return !(f->flags &
                 (MS_DEBUGGER_FRAME_INLINED | MS_DEBUGGER_FRAME_ARTIFICIAL));
}

/* Physical native frames: not inlined, or the outermost frame. */
static bool native_physical(const struct ms_native_frames *nf, size_t i)
{
        return !nf->frames[i].inlined || i + 1 == nf->n;
}

/* The debugger frames [*ds, de) inlined into physical frame de. */
static size_t dbg_inline_start(const struct ms_frame_map *map, size_t de)
{
        size_t ds = de;
        while (ds > 0 && (map->dbg[ds - 1].flags & MS_DEBUGGER_FRAME_INLINED))
                ds--;
        return ds;
}

/* The pc of physical debugger frame j: that of the innermost frame
 * inlined into it (lldb gives the frames of an inline chain other than
 * the innermost the pc where the inlined code starts). */
static uint64_t dbg_pc(const struct ms_frame_map *map, size_t j)
{
        return map->dbg[dbg_inline_start(map, j)].pc;
}

/* Pair lib[] with dbg[] (indices of physical frames) on equal pcs. */
static struct ms_error *match_physical(struct ms_frame_map *map,
                                       const size_t *lib, size_t a,
                                       const size_t *dbg, size_t b)
{
        const struct ms_native_frame *nf = map->native->frames;
        if ((uint64_t)(a + 1) * (b + 1) > MAX_LCS_CELLS) {
                /* Greedy: take each library frame at the next debugger
                 * frame with its pc. */
                size_t j = 0;
                for (size_t i = 0; i < a && j < b; i++) {
                        size_t k = j;
                        while (k < b && dbg_pc(map, dbg[k]) != nf[lib[i]].pc)
                                k++;
                        if (k < b) {
                                map->native_dbg[lib[i]] = (long)dbg[k];
                                map->dbg_native[dbg[k]] = (long)lib[i];
                                j = k + 1;
                        }
                }
                return NULL;
        }
        /* len[i][j]: the longest common subsequence of lib[i..] and
         * dbg[j..]. */
        uint16_t *len = calloc((a + 1) * (b + 1), sizeof(*len));
        uint64_t *pcs = malloc((b + 1) * sizeof(*pcs));
        if (!len || !pcs) {
                free(len);
                free(pcs);
                return &ms_error_no_memory;
        }
        for (size_t j = 0; j < b; j++)
                pcs[j] = dbg_pc(map, dbg[j]);
#define LEN(i, j) len[(i) * (b + 1) + (j)]
        for (size_t i = a; i-- > 0;) {
                for (size_t j = b; j-- > 0;) {
                        if (nf[lib[i]].pc == pcs[j])
                                LEN(i, j) = LEN(i + 1, j + 1) + 1;
                        else
                                LEN(i, j) =
                                        MS_MAX(LEN(i + 1, j), LEN(i, j + 1));
                }
        }
        size_t i = 0, j = 0;
        while (i < a && j < b) {
                if (nf[lib[i]].pc == pcs[j] &&
                    LEN(i, j) == LEN(i + 1, j + 1) + 1) {
                        map->native_dbg[lib[i]] = (long)dbg[j];
                        map->dbg_native[dbg[j]] = (long)lib[i];
                        i++;
                        j++;
                } else if (LEN(i + 1, j) >= LEN(i, j + 1)) {
                        i++;
                } else {
                        j++;
                }
        }
#undef LEN
        free(len);
        free(pcs);
        return NULL;
}

/* Inlined frames of one physical frame: library frames [ls, le) (le the
 * physical one) against debugger frames [ds, de). By name in order, then
 * by distance from the physical frame. */
static void match_inlined(struct ms_frame_map *map, size_t ls, size_t le,
                          size_t ds, size_t de)
{
        size_t next = ds;
        for (size_t i = ls; i < le; i++) {
                const char *name = map->native->frames[i].function;
                for (size_t j = next; j < de; j++) {
                        if (map->dbg_native[j] < 0 &&
                            ms_same_function_name(name, map->dbg[j].function)) {
                                map->native_dbg[i] = (long)j;
                                map->dbg_native[j] = (long)i;
                                next = j + 1;
                                break;
                        }
                }
        }
        for (size_t i = ls; i < le; i++) {
                if (map->native_dbg[i] >= 0)
                        continue;
                size_t from_end = le - i;
                map->native_dbg[i] =
                        de - ds >= from_end ? (long)(de - from_end) : (long)ds;
        }
}

static void place_report_frames(struct ms_frame_map *map)
{
        const struct ms_thread_report *t = map->thread;
        long anchor = -1;
        size_t pending = 0;
        for (size_t r = 0; r < t->n_frames; r++) {
                const struct ms_frame *f = &t->frames[r];
                long ni = f->native_index;
                long d = ni >= 0 && (size_t)ni < map->native->n
                                 ? map->native_dbg[ni]
                                 : -1;
                map->frame_dbg[r] = d;
                if (f->kind == MS_FRAME_PYTHON) {
                        map->python[map->n_python++] = r;
                        if (ni < 0) {
                                /* Not paired with an eval-loop frame: with
                                 * the next paired group, else after the
                                 * native frame before them. */
                                pending++;
                                continue;
                        }
                        for (size_t p = r - pending; p < r; p++)
                                map->frame_dbg[p] = d;
                        pending = 0;
                } else {
                        for (size_t p = r - pending; p < r; p++)
                                map->frame_dbg[p] = anchor;
                        pending = 0;
                        anchor = d;
                }
        }
        for (size_t p = t->n_frames - pending; p < t->n_frames; p++)
                map->frame_dbg[p] = anchor;
}

static struct ms_error *compute(struct ms_frame_map *map)
{
        if (map->matched)
                return NULL;
        clear_match(map);
        const struct ms_native_frames *nf = map->native;
        const struct ms_thread_report *t = map->thread;
        size_t *lib = NULL, *dbg = NULL, a = 0, b = 0;
        map->native_dbg = malloc((nf->n + 1) * sizeof(long));
        map->dbg_native = malloc((map->n_dbg + 1) * sizeof(long));
        map->frame_dbg = malloc((t->n_frames + 1) * sizeof(long));
        map->python = malloc((t->n_frames + 1) * sizeof(size_t));
        lib = malloc((nf->n + 1) * sizeof(size_t));
        dbg = malloc((map->n_dbg + 1) * sizeof(size_t));
        struct ms_error *err = NULL;
        if (!map->native_dbg || !map->dbg_native || !map->frame_dbg ||
            !map->python || !lib || !dbg) {
                err = &ms_error_no_memory;
                goto out;
        }
        for (size_t i = 0; i < nf->n; i++) {
                map->native_dbg[i] = -1;
                if (native_physical(nf, i))
                        lib[a++] = i;
        }
        for (size_t j = 0; j < map->n_dbg; j++) {
                map->dbg_native[j] = -1;
                if (dbg_physical(&map->dbg[j]))
                        dbg[b++] = j;
        }
        err = match_physical(map, lib, a, dbg, b);
        if (err)
                goto out;
        for (size_t k = 0; k < a; k++) {
                size_t le = lib[k];
                size_t ls = k ? lib[k - 1] + 1 : 0;
                long de = map->native_dbg[le];
                if (de >= 0 && ls < le)
                        match_inlined(map, ls, le,
                                      dbg_inline_start(map, (size_t)de),
                                      (size_t)de);
        }
        place_report_frames(map);
        map->matched = true;
out:
        free(lib);
        free(dbg);
        if (err)
                clear_match(map);
        return err;
}

long ms_frame_map_debugger_frame(struct ms_frame_map *map, size_t i)
{
        if (!map || compute(map) || i >= map->thread->n_frames)
                return -1;
        return map->frame_dbg[i];
}

/* Whether debugger frame n is one the library hides: a frame it has that
 * the report does not show. Tail-call frames go with their neighbours. */
static bool known_frame(struct ms_frame_map *map, size_t n)
{
        if (map->dbg_native[n] >= 0)
                return true;
        if (map->dbg[n].flags & MS_DEBUGGER_FRAME_INLINED) {
                /* Inlined into a physical frame the library has. */
                size_t p = n;
                while (p < map->n_dbg &&
                       (map->dbg[p].flags & MS_DEBUGGER_FRAME_INLINED))
                        p++;
                return p < map->n_dbg && map->dbg_native[p] >= 0;
        }
        return false;
}

static bool shown_range(struct ms_frame_map *map, size_t n, size_t *first,
                        size_t *count)
{
        size_t lo = SIZE_MAX, hi = 0;
        for (size_t r = 0; r < map->thread->n_frames; r++) {
                if (map->frame_dbg[r] == (long)n) {
                        lo = MS_MIN(lo, r);
                        hi = MS_MAX(hi, r);
                }
        }
        if (lo == SIZE_MAX) {
                *first = 0;
                *count = 0;
                return false;
        }
        *first = lo;
        *count = hi - lo + 1;
        return true;
}

bool ms_frame_map_shows(struct ms_frame_map *map, size_t n, size_t *first,
                        size_t *count)
{
        *first = 0;
        *count = 0;
        if (!map || compute(map) || n >= map->n_dbg)
                return false;
        if (shown_range(map, n, first, count))
                return true;
        if (!(map->dbg[n].flags & MS_DEBUGGER_FRAME_ARTIFICIAL))
                return known_frame(map, n);
        /* A tail-call frame (the debugger's guess at a caller that
         * jumped rather than called): hidden with the machinery next to
         * it. */
        size_t f, c;
        bool inner = n > 0 && known_frame(map, n - 1) &&
                     !shown_range(map, n - 1, &f, &c);
        bool outer = n + 1 < map->n_dbg && known_frame(map, n + 1) &&
                     !shown_range(map, n + 1, &f, &c);
        return inner || outer;
}

/* ------------------------------------------------------------------------
 * Navigation
 * ------------------------------------------------------------------------ */

size_t ms_frame_map_n_python(const struct ms_frame_map *map)
{
        size_t n = 0;
        for (size_t i = 0; map && i < map->thread->n_frames; i++)
                n += map->thread->frames[i].kind == MS_FRAME_PYTHON;
        return n;
}

long ms_frame_map_python_frame(const struct ms_frame_map *map, size_t k)
{
        for (size_t i = 0; map && i < map->thread->n_frames; i++) {
                if (map->thread->frames[i].kind != MS_FRAME_PYTHON)
                        continue;
                if (k-- == 0)
                        return (long)i;
        }
        return -1;
}

void ms_frame_map_sync(struct ms_frame_map *map, size_t n)
{
        if (!map)
                return;
        if (map->chosen >= 0 && map->chosen_dbg != n)
                map->chosen = -1;
        map->selected_dbg = n;
}

static long python_dbg(const struct ms_frame_map *map, size_t k)
{
        return map->frame_dbg[map->python[k]];
}

/* The innermost Python frame at or above the selected debugger frame. */
static long implicit_python(const struct ms_frame_map *map)
{
        for (size_t k = 0; k < map->n_python; k++) {
                long d = python_dbg(map, k);
                if (d >= 0 && (size_t)d >= map->selected_dbg)
                        return (long)k;
        }
        return -1;
}

long ms_frame_map_current_python(struct ms_frame_map *map)
{
        if (!map || compute(map))
                return -1;
        if (map->chosen >= 0 && (size_t)map->chosen < map->n_python)
                return map->chosen;
        return implicit_python(map);
}

struct ms_error *ms_frame_map_select_python(struct ms_frame_map *map, size_t k)
{
        struct ms_error *err =
                map ? compute(map)
                    : ms_error_create(MS_ERROR_INVALID_ARGUMENT, "no map");
        if (err)
                return err;
        if (k >= map->n_python)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "no Python frame %zu (the thread has "
                                       "%zu)",
                                       k, map->n_python);
        long d = python_dbg(map, k);
        map->chosen = (long)k;
        map->chosen_dbg = d >= 0 ? (size_t)d : map->selected_dbg;
        map->selected_dbg = map->chosen_dbg;
        return NULL;
}

long ms_frame_map_current_debugger_frame(struct ms_frame_map *map)
{
        long k = ms_frame_map_current_python(map);
        long i = k >= 0 ? ms_frame_map_python_frame(map, (size_t)k) : -1;
        return i >= 0 ? ms_frame_map_debugger_frame(map, (size_t)i) : -1;
}

void ms_frame_map_follow(struct ms_frame_map *map, struct ms_frame_map *leader)
{
        long k = leader ? ms_frame_map_current_python(leader) : -1;
        if (map && k >= 0 && (size_t)k < ms_frame_map_n_python(map))
                ms_error_destroy(ms_frame_map_select_python(map, (size_t)k));
}

struct ms_error *ms_frame_map_move(struct ms_frame_map *map, long count,
                                   size_t *ret)
{
        struct ms_error *err =
                map ? compute(map)
                    : ms_error_create(MS_ERROR_INVALID_ARGUMENT, "no map");
        if (err)
                return err;
        if (!map->n_python)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "no Python frames in this thread");
        long n = (long)map->n_python;
        long cur = ms_frame_map_current_python(map);
        /* With no current frame, every Python frame is newer than the
         * selected frame. */
        long target = cur >= 0 ? cur + count : count > 0 ? n : n + count;
        if (target >= n) {
                if (cur == n - 1 || cur < 0)
                        return ms_error_create(MS_ERROR_NOT_FOUND,
                                               "no older Python frame (the "
                                               "outermost is selected)");
                target = n - 1;
        }
        if (target < 0) {
                if (cur == 0)
                        return ms_error_create(MS_ERROR_NOT_FOUND,
                                               "no newer Python frame (the "
                                               "innermost is selected)");
                target = 0;
        }
        *ret = (size_t)target;
        return ms_frame_map_select_python(map, (size_t)target);
}

/* ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------ */

/* Run print(map, arg, out) into a new string. */
static struct ms_error *format_into(
        struct ms_frame_map *map, const void *arg,
        struct ms_error *(*print)(struct ms_frame_map *, const void *, FILE *),
        char **ret)
{
        if (!map || !ret)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no map or result");
        struct ms_error *err = compute(map);
        if (err)
                return err;
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return ms_error_from_errno(errno, "open_memstream");
        err = print(map, arg, out);
        if (fclose(out) != 0 && !err)
                err = &ms_error_no_memory;
        if (err) {
                free(buf);
                return err;
        }
        *ret = buf;
        return NULL;
}

static struct ms_error *print_stack(struct ms_frame_map *map, const void *arg,
                                    FILE *out)
{
        unsigned flags = *(const unsigned *)arg;
        long cur = ms_frame_map_current_python(map);
        struct ms_text_numbering numbering = {
                .numbers = map->frame_dbg,
                .marked = cur >= 0 ? (long)map->python[cur] : -1,
                .python_only = flags & MS_FRAME_MAP_PYTHON_ONLY,
                .source_line = flags & MS_FRAME_MAP_SOURCE
                                       ? ms_source_line_printer
                                       : NULL,
        };
        ms_text_thread_numbered(map->thread, &numbering, out);
        return NULL;
}

struct ms_error *ms_frame_map_format_stack(struct ms_frame_map *map,
                                           unsigned flags, char **ret)
{
        return format_into(map, &flags, print_stack, ret);
}

static const struct ms_frame *current_frame(struct ms_frame_map *map,
                                            struct ms_error **err)
{
        long k = ms_frame_map_current_python(map);
        *err = NULL;
        if (k < 0) {
                *err = ms_error_create(MS_ERROR_NOT_FOUND,
                                       map->n_python
                                               ? "no Python frame at or above "
                                                 "the selected frame"
                                               : "no Python frames in this "
                                                 "thread");
                return NULL;
        }
        return &map->thread->frames[map->python[k]];
}

static struct ms_error *print_current(struct ms_frame_map *map, const void *arg,
                                      FILE *out)
{
        struct ms_error *err;
        const struct ms_frame *f = current_frame(map, &err);
        if (!f)
                return err;
        size_t r = (size_t)(f - map->thread->frames);
        ms_text_frame(f, map->frame_dbg[r], true, out);
        ms_source_line_printer(NULL, f, out);
        return NULL;
}

struct ms_error *ms_frame_map_format_current(struct ms_frame_map *map,
                                             char **ret)
{
        return format_into(map, NULL, print_current, ret);
}

struct list_range {
        long first, last;
};

static struct ms_error *print_list(struct ms_frame_map *map, const void *arg,
                                   FILE *out)
{
        const struct list_range *range = arg;
        struct ms_error *err;
        const struct ms_frame *f = current_frame(map, &err);
        if (!f)
                return err;
        long k = ms_frame_map_current_python(map);
        if (!f->file)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "the current Python frame has no file "
                                       "name");
        if (f->line <= 0 && range->first <= 0)
                return ms_error_create(MS_ERROR_NOT_FOUND,
                                       "the current Python frame's line is "
                                       "unknown");
        long first = range->first, last = range->last;
        if (first <= 0) {
                if (map->list_k == k && map->list_next > 0) {
                        first = map->list_next;
                        last = first + 10;
                } else {
                        first = MS_MAX(f->line - 5, 1);
                        last = f->line + 5;
                }
        } else if (last <= 0) {
                last = first + 10;
        }
        if (last < first)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "%ld,%ld is an empty range", first,
                                       last);
        struct ms_source_lines src;
        err = ms_source_read(f->file, first, last, &src);
        if (err)
                return err;
        if (!src.n) {
                err = ms_error_create(MS_ERROR_NOT_FOUND,
                                      "line %ld is past the end of %s (%ld "
                                      "lines)",
                                      first, f->file, src.total);
                ms_source_lines_deinit(&src);
                return err;
        }
        for (size_t i = 0; i < src.n; i++) {
                long number = first + (long)i;
                fprintf(out, "%c%4ld    ", number == f->line ? '>' : ' ',
                        number);
                ms_text_write_safe(out, src.lines[i]);
                fputc('\n', out);
        }
        map->list_k = k;
        map->list_next = first + (long)src.n;
        ms_source_lines_deinit(&src);
        return NULL;
}

struct ms_error *ms_frame_map_format_list(struct ms_frame_map *map, long first,
                                          long last, char **ret)
{
        struct list_range range = {first, last};
        return format_into(map, &range, print_list, ret);
}

static struct ms_error *print_locals(struct ms_frame_map *map, const void *arg,
                                     FILE *out)
{
        struct ms_error *err;
        const struct ms_frame *f = current_frame(map, &err);
        if (!f)
                return err;
        for (size_t i = 0; i < f->n_locals; i++) {
                ms_text_write_safe(out, f->locals[i].name);
                fputs(" = ", out);
                ms_text_write_safe(out, f->locals[i].value);
                fputc('\n', out);
        }
        if (!f->n_locals)
                fputs("(no locals)\n", out);
        return NULL;
}

struct ms_error *ms_frame_map_format_locals(struct ms_frame_map *map,
                                            char **ret)
{
        return format_into(map, NULL, print_locals, ret);
}

static const char *find_name(const struct ms_py_namespace *ns, const char *name)
{
        for (size_t i = 0; ns && i < ns->n; i++) {
                if (ns->items[i].name && strcmp(ns->items[i].name, name) == 0)
                        return ns->items[i].value;
        }
        return NULL;
}

static void print_name(FILE *out, const char *where, const char *name,
                       const char *value)
{
        fputs(where, out);
        ms_text_write_safe(out, name);
        fputs(" = ", out);
        ms_text_write_safe(out, value ? value : "?");
        fputc('\n', out);
}

static struct ms_error *print_lookup(struct ms_frame_map *map, const void *arg,
                                     FILE *out)
{
        const char *name = arg;
        struct ms_error *err;
        const struct ms_frame *f = current_frame(map, &err);
        if (!f)
                return err;
        for (size_t i = 0; i < f->n_locals; i++) {
                if (f->locals[i].name && strcmp(f->locals[i].name, name) == 0) {
                        print_name(out, "local ", name, f->locals[i].value);
                        return NULL;
                }
        }
        const struct ms_py_namespace *globals, *builtins;
        ms_report_python_names(
                map->report, (size_t)(map->thread - map->report->threads),
                (size_t)ms_frame_map_current_python(map), &globals, &builtins);
        const char *value = find_name(globals, name);
        if (value) {
                print_name(out, "global ", name, value);
                return NULL;
        }
        value = find_name(builtins, name);
        if (value) {
                print_name(out, "builtin ", name, value);
                return NULL;
        }
        return ms_error_create(
                MS_ERROR_NOT_FOUND, "%s is not a local of %s%s%s", name,
                f->qualname ? f->qualname : f->function,
                globals ? ", a global of its module"
                        : " (its module's globals are not "
                          "known)",
                builtins ? " or a builtin" : " (the builtins are not known)");
}

struct ms_error *ms_frame_map_lookup(struct ms_frame_map *map, const char *name,
                                     char **ret)
{
        if (!name || !*name)
                return ms_error_create(MS_ERROR_INVALID_ARGUMENT,
                                       "no name to look up");
        return format_into(map, name, print_lookup, ret);
}
