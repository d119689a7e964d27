/*
 * Crash signatures: the frames of a thread that name a bug, normalised so
 * that every occurrence of the bug gives the same text.
 *
 * The lists are "LABEL FIELD REGEX" lines (data/signature-rules.conf) read
 * with the rules engine of merge/rules.h. Labels:
 *   sentinel    frames inward of the innermost frame matching a sentinel
 *               line are dropped (a signal trampoline: what runs above it is
 *               a signal handler); the sentinel frame itself goes through
 *               the other lines
 *   irrelevant  the frame is skipped
 *   prefix      the frame is kept but does not count: it is combined with
 *               the frame after it (generic library code)
 *   keep        the frame counts (overrides a later line)
 * FIELD is "function", "module" or "category" (the frame's category from
 * the frame rules). For Python frames, "function" is matched against the
 * signature text "FILE:FUNCTION" and "module" against the source path.
 * Function and module lines are tried before category lines; within each,
 * the first matching line wins.
 */
#ifndef MIXSTACK_TRIAGE_SIGNATURE_H
#define MIXSTACK_TRIAGE_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "mixstack/mixstack.h"
#include "report/model.h"
#include "triage/model.h"

struct ms_signature_rules;

enum ms_signature_label {
        MS_SIGNATURE_FRAME, /* no line matched, or "keep" */
        MS_SIGNATURE_IRRELEVANT,
        MS_SIGNATURE_PREFIX,
};

struct ms_error *ms_signature_rules_create(struct ms_signature_rules **ret);
void ms_signature_rules_destroy(struct ms_signature_rules *rules);

/* Add the lines of text (origin names it in error messages). Lines added
 * with prepend are tried before those already there. */
struct ms_error *ms_signature_rules_add_text(struct ms_signature_rules *rules,
                                             const char *text,
                                             const char *origin, bool prepend);

/* The process-wide lists: the built-in file, with the user's
 * ($MIXSTACK_SIGNATURE_RULES, then ~/.config/mixstack/signature-rules.conf)
 * tried first. Loaded once. A bad user file leaves the built-in lists and
 * its error in *warning (which belongs to the library). */
const struct ms_signature_rules *ms_signature_rules_default(
        const struct ms_error **warning);

/* The normalised text of a frame, malloc'd (NULL when out of memory):
 * Python frames "FILE:FUNCTION" (the file's basename; "pkg/__init__.py"
 * for package files), native frames their function without clone
 * suffixes, Rust hashes, generic arguments and argument lists, or the
 * module (ms_signature_normalize_module()) when the function is unknown,
 * or "??". */
char *ms_signature_frame_text(const struct ms_frame *frame);

/* A module as signatures name it: its basename without a shared
 * library's version ("libffi.so.8.1.2": "libffi.so") and a Python
 * extension module without its ABI tag ("_ctypes.cpython-311-x86_64-
 * linux-gnu.so", "mixsample.abi3.so": "_ctypes", "mixsample"). Malloc'd,
 * NULL when out of memory. */
char *ms_signature_normalize_module(const char *path);

/* The same for a native function name alone. */
char *ms_signature_normalize_function(const char *function);

/* How the lists label a frame whose text is text. */
enum ms_signature_label ms_signature_label(
        const struct ms_signature_rules *rules, const struct ms_frame *frame,
        const char *text);

/* Whether a frame is a sentinel. */
bool ms_signature_is_sentinel(const struct ms_signature_rules *rules,
                              const struct ms_frame *frame, const char *text);

/* The frames of a thread's signature: at most max_frames counted frames
 * (and the prefix frames before them), each with thread_index as its
 * thread. Frames are appended to *frames (of *n, growing *capacity). */
struct ms_error *ms_signature_thread(const struct ms_signature_rules *rules,
                                     const struct ms_thread_report *thread,
                                     size_t thread_index, unsigned max_frames,
                                     struct ms_signature_frame **frames,
                                     size_t *n, size_t *capacity);

/* "KIND | F1 | F2 ..." from frames; frames of a second thread follow
 * " || ". Malloc'd, NULL when out of memory. */
char *ms_signature_join(const char *kind,
                        const struct ms_signature_frame *frames, size_t n);

/* The 64-bit FNV-1a hash of s as 16 hex digits into id. */
void ms_signature_id(const char *s, char id[17]);

#endif /* MIXSTACK_TRIAGE_SIGNATURE_H */
