/*
 * A triage (ms_triage_create()): internal to the library and its unit
 * tests; users of the public header read it through its accessors or
 * print it.
 */
#ifndef MIXSTACK_TRIAGE_MODEL_H
#define MIXSTACK_TRIAGE_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "mixstack/mixstack.h"

/* A frame of a signature. */
struct ms_signature_frame {
        /* The normalised frame: "mixsample::segfault_now",
         * "segfault-in-rust.py:parse_record", "libfoo.so" (no symbol). */
        char *text;
        /* Its thread (index in the report's threads) and its index in that
         * thread's frames. */
        size_t thread;
        size_t frame;
};

struct ms_triage {
        /* What happened, one word: the signal for crashes ("SIGSEGV",
         * "SIGBUS", ...), "panic" (a Rust panic ended the process), "abort"
         * (SIGABRT without a panic), "fatal-error" (a fatal Python error),
         * "deadlock", "hang" (a live process past its time), "snapshot" (no
         * signal and not known to hang). Static storage. */
        const char *kind;
        /* One or two sentences for people: what, where, why. */
        char *reason;
        /* "KIND | FRAME | FRAME ..."; a deadlock joins its two threads' frames
         * with " || ". */
        char *signature;
        /* 16 hex digits of the signature's 64-bit FNV-1a hash: a short key
         * for file names and grouping. */
        char signature_id[17];
        struct ms_signature_frame *signature_frames;
        size_t n_signature_frames;
        /* The report triaged. It is borrowed: it must outlive the triage. */
        const struct ms_report *report;
        /* The threads the signature comes from (indexes in report->threads):
         * the crashing thread, the GIL holder, or a deadlocked pair. */
        size_t threads[2];
        size_t n_threads;
        /* The frame at fault in threads[0]: its innermost frame outside
         * signal and panic machinery, or -1. The stack is shown from there;
         * machinery_frames frames before it are not. */
        int crash_frame;
        size_t machinery_frames;
        /* Basename of the module holding the frame at fault, or NULL. */
        char *crash_module;
        /* What could not be done (a bad user rules file, ...). */
        char **warnings;
        size_t n_warnings;
        /* How many stack frames printers show. */
        unsigned stack_frames;
};

/* A command run under `mixstack run` (ms_triage_run_create()). */
struct ms_triage_run {
        const char *const *argv;
        size_t argc;
        /* How the command ended: its exit code, or the signal that killed
         * it (0 when it exited), or timed_out. */
        int exit_code;
        int signo;
        bool timed_out;
        /* The --timeout in seconds (0: none) and the time it ran. */
        double timeout;
        double seconds;
        /* What mixstack run exits with. */
        int exit_status;
};

#endif /* MIXSTACK_TRIAGE_MODEL_H */
