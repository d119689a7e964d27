/*
 * Heuristic: the panic's location and message from a thread's stack
 * (Rust panic reference §3.3, §3.5). Without std's DWARF the arguments of
 * panic_with_hook (payload, &Location) survive only in spilled stack slots
 * at build-specific offsets, so every word above the stack pointer is
 * tried as a pointer to a Location and as a String / &str, and only
 * structures that validate are kept. Below the stack pointer, the default
 * hook's 512-byte text buffer sometimes survives the hook's return.
 * Everything found here is labelled "location-scan" or "hook-buffer".
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rust/internal.h"

#define PAGE 4096u
/* Candidates kept per scan. */
#define MAX_LOCATIONS 64
#define MAX_STRINGS 128
/* A payload belongs to the panic whose Location slot is this close (the
 * reference saw 0x70 bytes in every build). */
#define PAYLOAD_DISTANCE 512
/* Shorter texts on a stack are too often something else. */
#define MIN_MESSAGE 3
/* struct rt_sigframe on x86-64: the return address (pretcode), then a
 * ucontext_t: uc_flags, uc_link, uc_stack (24 bytes), then mcontext's
 * gregs, in which RSP is number 15 and RIP number 16. */
#define UC_OFFSET 8
#define UC_GREGS 40
#define GREG_RSP 15
#define GREG_RIP 16
/* How far from the handler's stack pointer the signal frame is looked
 * for. */
#define SIGFRAME_SEARCH 8192

/* The stack bytes [start, start + size), read page by page: ok[i] tells
 * whether page i could be read. */
struct window {
        uint64_t start;
        uint8_t *bytes;
        size_t size;
        bool *ok;
        size_t n_pages;
};

static void window_deinit(struct window *w)
{
        free(w->bytes);
        free(w->ok);
}

/* Read [sp - below, sp + above). Reading upward stops at the first
 * unreadable page: that is the top of the stack. */
static struct ms_error *window_read(struct ms_target *target, uint64_t sp,
                                    size_t below, size_t above,
                                    struct window *w)
{
        memset(w, 0, sizeof(*w));
        uint64_t base = sp & ~(uint64_t)(PAGE - 1);
        w->start = base >= below ? base - below : 0;
        if (sp > UINT64_MAX - above)
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "stack pointer 0x%" PRIx64 " at the end "
                                       "of the address space",
                                       sp);
        uint64_t end = sp + above;
        w->n_pages = (size_t)((end - w->start + PAGE - 1) / PAGE);
        w->bytes = calloc(w->n_pages, PAGE);
        w->ok = calloc(w->n_pages, sizeof(*w->ok));
        if (!w->bytes || !w->ok) {
                window_deinit(w);
                return &ms_error_no_memory;
        }
        for (size_t i = 0; i < w->n_pages; i++) {
                uint64_t at = w->start + i * PAGE;
                struct ms_error *err =
                        ms_target_read(target, at, w->bytes + i * PAGE, PAGE);
                w->ok[i] = !err;
                ms_error_destroy(err);
                if (!w->ok[i] && at > sp) {
                        w->n_pages = i;
                        break;
                }
        }
        w->size = w->n_pages * PAGE;
        return NULL;
}

static bool window_word(const struct window *w, uint64_t address, uint64_t *ret)
{
        if (address < w->start || address - w->start + 8 > w->size)
                return false;
        size_t off = (size_t)(address - w->start);
        if (!w->ok[off / PAGE] || !w->ok[(off + 7) / PAGE])
                return false;
        memcpy(ret, w->bytes + off, 8);
        return true;
}

/* ------------------------------------------------------------------------
 * Where to start: the interrupted context of a signal handler
 * ------------------------------------------------------------------------ */

/* The innermost signal trampoline and the native frame it interrupted
 * (in a merged stack, Python frames may sit in between). */
static bool find_restorer(const struct ms_frame *frames, size_t n,
                          uint64_t *restorer, uint64_t *interrupted)
{
        size_t i = 0;
        for (; frames && i < n; i++) {
                const char *fn = frames[i].function;
                if (frames[i].kind == MS_FRAME_NATIVE && fn &&
                    strncmp(fn, "__restore_rt", 12) == 0)
                        break;
        }
        if (!frames || i >= n)
                return false;
        *restorer = frames[i].pc;
        for (size_t k = i + 1; k < n; k++) {
                if (frames[k].kind == MS_FRAME_NATIVE) {
                        *interrupted = frames[k].pc;
                        return true;
                }
        }
        return false;
}

/* The kernel pushed the rt_sigframe with __restore_rt as its return
 * address; the ucontext after it holds the interrupted RSP and RIP. The
 * RIP must be the pc of the frame the unwinder found under the handler,
 * or the word was something else. */
uint64_t ms_rust_scan_start(struct ms_target *target,
                            const struct ms_target_thread *thread,
                            const struct ms_frame *frames, size_t n)
{
        uint64_t sp = thread->regs[MS_REG_RSP], restorer, interrupted;
        if (!find_restorer(frames, n, &restorer, &interrupted))
                return sp;
        struct window w;
        struct ms_error *err = window_read(target, sp, 0, SIGFRAME_SEARCH, &w);
        if (err) {
                ms_error_destroy(err);
                return sp;
        }
        uint64_t found = sp;
        for (uint64_t a = sp & ~(uint64_t)7; a + 8 <= w.start + w.size;
             a += 8) {
                uint64_t word, rsp, rip;
                if (!window_word(&w, a, &word) || word + 1 < restorer ||
                    word > restorer + 1)
                        continue;
                uint64_t gregs = a + UC_OFFSET + UC_GREGS;
                struct ms_error *e =
                        ms_target_read_u64(target, gregs + GREG_RIP * 8, &rip);
                if (!e)
                        e = ms_target_read_u64(target, gregs + GREG_RSP * 8,
                                               &rsp);
                bool ok = !e && rip == interrupted && rsp;
                ms_error_destroy(e);
                if (ok) {
                        found = rsp;
                        break;
                }
        }
        window_deinit(&w);
        return found;
}

/* ------------------------------------------------------------------------
 * Location and payload candidates
 * ------------------------------------------------------------------------ */

struct location_candidate {
        uint64_t slot;
        uint64_t address;
        struct ms_rust_location loc;
        const struct ms_rust_module *module;
};

struct string_candidate {
        uint64_t slot;
        char *text;
        bool heap; /* a String, not a &str */
};

struct candidates {
        struct location_candidate locations[MAX_LOCATIONS];
        size_t n_locations;
        struct string_candidate strings[MAX_STRINGS];
        size_t n_strings;
};

static void candidates_deinit(struct candidates *c)
{
        for (size_t i = 0; i < c->n_locations; i++)
                ms_rust_location_deinit(&c->locations[i].loc);
        for (size_t i = 0; i < c->n_strings; i++)
                free(c->strings[i].text);
}

static bool seen_location(const struct candidates *c, uint64_t address)
{
        for (size_t i = 0; i < c->n_locations; i++) {
                if (c->locations[i].address == address)
                        return true;
        }
        return false;
}

static void collect_location(struct ms_target *target,
                             const struct ms_rust_state *state, uint64_t slot,
                             uint64_t word, struct candidates *c)
{
        if (c->n_locations >= MAX_LOCATIONS || seen_location(c, word))
                return;
        struct location_candidate *l = &c->locations[c->n_locations];
        if (!ms_rust_read_location(target, word, &l->loc))
                return;
        l->slot = slot;
        l->address = word;
        l->module = ms_rust_module_at(state, target, word);
        c->n_locations++;
}

/* Whether text could be a panic message: at least MIN_MESSAGE bytes with
 * something other than blanks, not a file name (a Location's), and not a
 * runtime message with more bytes after it (a &str whose length word was
 * something else, running on into the next literal). */
static bool is_message_text(const char *text)
{
        static const char *const runtime_prefixes[] = {
                "panic in a ",
                "thread caused non-unwinding panic",
                "uncaught panic at ffi boundary",
        };
        size_t n = strlen(text);
        if (n < MIN_MESSAGE || strspn(text, " \t\r\n") == n ||
            (n > 3 && strcmp(text + n - 3, ".rs") == 0))
                return false;
        for (size_t i = 0; i < MS_ARRAY_SIZE(runtime_prefixes); i++) {
                size_t k = strlen(runtime_prefixes[i]);
                if (strncmp(text, runtime_prefixes[i], k) == 0 &&
                    !ms_rust_is_runtime_message(text))
                        return false;
        }
        return true;
}

/* A String's buffer is on the heap, a &str's literal in a module: which
 * side of the file mappings a pointer falls on. */
static bool in_file_mapping(const struct ms_target *target, uint64_t address)
{
        return ms_target_find_mapping(target, address) != NULL;
}

static void collect_string(struct ms_target *target, const struct window *w,
                           uint64_t slot, struct candidates *c)
{
        uint64_t words[3];
        if (c->n_strings >= MAX_STRINGS)
                return;
        for (size_t i = 0; i < 3; i++) {
                if (!window_word(w, slot + 8 * i, &words[i]))
                        return;
        }
        struct string_candidate *s = &c->strings[c->n_strings];
        s->text = NULL;
        /* String {cap, ptr, len} (or {ptr, cap, len}) with its buffer on
         * the heap, else &str {ptr, len} of a literal. */
        for (int order = 0; order < 2 && !s->text; order++) {
                uint64_t ptr = words[1 - order];
                if (!in_file_mapping(target, ptr))
                        ms_rust_decode_vec(target, words[order], ptr, words[2],
                                           &s->text);
        }
        s->heap = s->text != NULL;
        if (!s->text &&
            (!in_file_mapping(target, words[0]) ||
             !ms_rust_decode_string(target, words, 2, false, &s->text)))
                return;
        if (!is_message_text(s->text)) {
                free(s->text);
                return;
        }
        s->slot = slot;
        c->n_strings++;
}

static void collect_locations(struct ms_target *target,
                              const struct ms_rust_state *state,
                              const struct window *w, uint64_t sp,
                              struct candidates *c)
{
        for (uint64_t a = (sp + 7) & ~(uint64_t)7; a + 8 <= w->start + w->size;
             a += 8) {
                uint64_t word;
                if (window_word(w, a, &word))
                        collect_location(target, state, a, word, c);
        }
}

/* Payloads only near the chosen Location's slot, and above sp (below it
 * lies what returned functions left). */
static void collect_strings(struct ms_target *target, const struct window *w,
                            uint64_t sp, uint64_t slot, struct candidates *c)
{
        uint64_t from =
                slot > sp + PAYLOAD_DISTANCE ? slot - PAYLOAD_DISTANCE : sp;
        uint64_t to = slot + PAYLOAD_DISTANCE;
        for (uint64_t a = (from + 7) & ~(uint64_t)7; a <= to; a += 8)
                collect_string(target, w, a, c);
}

/* ------------------------------------------------------------------------
 * Choosing
 * ------------------------------------------------------------------------ */

/* The innermost location outside Rust's library, preferring the site's
 * module; a library location ("panic in a function that cannot unwind")
 * only when there is nothing else. */
static const struct location_candidate *choose_location(
        const struct candidates *c, const char *site_module)
{
        const struct location_candidate *user = NULL, *library = NULL;
        for (size_t i = 0; i < c->n_locations; i++) {
                const struct location_candidate *l = &c->locations[i];
                if (ms_rust_is_library_file(l->loc.file)) {
                        if (!library)
                                library = l;
                        continue;
                }
                if (site_module && l->module &&
                    strcmp(l->module->path, site_module) == 0)
                        return l;
                if (!user)
                        user = l;
        }
        return user ? user : library;
}

static uint64_t distance(uint64_t a, uint64_t b)
{
        return a > b ? a - b : b - a;
}

/* The payload nearest the chosen Location's slot, not a runtime message;
 * Strings (formatted messages) before &strs. */
static const struct string_candidate *choose_string(const struct candidates *c,
                                                    uint64_t slot)
{
        const struct string_candidate *best = NULL;
        for (size_t i = 0; i < c->n_strings; i++) {
                const struct string_candidate *s = &c->strings[i];
                if (ms_rust_is_runtime_message(s->text) ||
                    distance(s->slot, slot) > PAYLOAD_DISTANCE)
                        continue;
                if (!best || (s->heap && !best->heap) ||
                    (s->heap == best->heap &&
                     distance(s->slot, slot) < distance(best->slot, slot)))
                        best = s;
        }
        return best;
}

/* ------------------------------------------------------------------------
 * The hook's text
 * ------------------------------------------------------------------------ */

/* The first hook text in the window that is about a user panic. */
static bool find_hook_text(const struct window *w,
                           struct ms_rust_hook_text *ret)
{
        static const char needle[] = "thread '";
        const uint8_t *p = w->bytes, *end = w->bytes + w->size;
        while (p < end) {
                const uint8_t *at = memmem(p, (size_t)(end - p), needle,
                                           sizeof(needle) - 1);
                if (!at)
                        return false;
                size_t off = (size_t)(at - w->bytes);
                size_t len = MS_MIN((size_t)(end - at), (size_t)512);
                /* The text must lie in pages that were read. */
                if (w->ok[off / PAGE] && w->ok[(off + len - 1) / PAGE] &&
                    ms_rust_parse_hook_text((const char *)at, len, ret)) {
                        if (!ms_rust_is_library_file(ret->file) &&
                            !ms_rust_is_runtime_message(ret->message))
                                return true;
                        ms_rust_hook_text_deinit(ret);
                }
                p = at + 1;
        }
        return false;
}

/* ------------------------------------------------------------------------
 * The scan
 * ------------------------------------------------------------------------ */

static bool set_string(char **field, const char *value)
{
        char *copy = strdup(value);
        if (!copy)
                return false;
        free(*field);
        *field = copy;
        return true;
}

/* A hook text about another panic than the message already recovered (from
 * an exception object) is left out altogether. */
static bool apply_hook(const struct ms_rust_hook_text *h,
                       struct ms_rust_thread *out)
{
        if (out->message && strcmp(out->message, h->message) != 0)
                return true;
        if (!out->message && h->message[0]) {
                if (!set_string(&out->message, h->message))
                        return false;
                out->message_recovered_by = MS_RUST_BY_HOOK_BUFFER;
        }
        if (!out->file) {
                if (!set_string(&out->file, h->file))
                        return false;
                out->line = h->line;
                out->column = h->column;
                out->location_recovered_by = MS_RUST_BY_HOOK_BUFFER;
        }
        return set_string(&out->hook_thread_name, h->thread_name);
}

static bool apply_scan(struct ms_target *target, const struct window *w,
                       uint64_t sp, struct candidates *c,
                       struct ms_rust_thread *out)
{
        const struct location_candidate *l =
                choose_location(c, out->site_module);
        if (!l)
                return true;
        collect_strings(target, w, sp, l->slot, c);
        if (!out->file) {
                if (!set_string(&out->file, l->loc.file))
                        return false;
                out->line = l->loc.line;
                out->column = l->loc.column;
                out->location_recovered_by = MS_RUST_BY_LOCATION_SCAN;
        }
        const struct string_candidate *s = choose_string(c, l->slot);
        if (!out->message && s) {
                if (!set_string(&out->message, s->text))
                        return false;
                out->message_recovered_by = MS_RUST_BY_LOCATION_SCAN;
        }
        return true;
}

/* The hook's text is std's own rendering of the panic, so it is taken
 * before the validated-structure scan; fields already set (from an
 * exception object) are kept. */
struct ms_error *ms_rust_scan_stack(struct ms_target *target,
                                    const struct ms_rust_state *state,
                                    uint64_t sp, struct ms_rust_thread *out)
{
        struct window w;
        struct ms_error *err = window_read(target, sp, MS_RUST_STACK_SCAN_BELOW,
                                           MS_RUST_STACK_SCAN, &w);
        if (err)
                return err;
        struct ms_rust_hook_text hook;
        bool ok = true;
        if (find_hook_text(&w, &hook)) {
                ok = apply_hook(&hook, out);
                ms_rust_hook_text_deinit(&hook);
        }
        struct candidates *c = calloc(1, sizeof(*c));
        if (!c || !ok) {
                free(c);
                window_deinit(&w);
                return &ms_error_no_memory;
        }
        collect_locations(target, state, &w, sp, c);
        ok = apply_scan(target, &w, sp, c, out);
        candidates_deinit(c);
        free(c);
        window_deinit(&w);
        return ok ? NULL : &ms_error_no_memory;
}

struct ms_error *ms_rust_stack_refers(struct ms_target *target, uint64_t sp,
                                      const uint64_t *values, size_t n,
                                      bool *found)
{
        memset(found, 0, n * sizeof(*found));
        struct window w;
        struct ms_error *err =
                window_read(target, sp, 0, MS_RUST_STACK_SCAN, &w);
        if (err)
                return err;
        for (uint64_t a = (sp + 7) & ~(uint64_t)7; a + 8 <= w.start + w.size;
             a += 8) {
                uint64_t word;
                if (!window_word(&w, a, &word))
                        continue;
                for (size_t i = 0; i < n; i++)
                        found[i] = found[i] || word == values[i];
        }
        window_deinit(&w);
        return NULL;
}
