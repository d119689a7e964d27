/*
 * A program of a library user: it sees only the public header, opens a
 * core, and prints what the report's accessors give, one line per thread
 * ("T ...") and per frame ("F ..."), and its triage ("G ..."), fields
 * separated by tabs. Used by
 * tests/integration/test_library_hygiene.py.
 */
#include <inttypes.h>
#include <stdio.h>

#include "mixstack/mixstack.h"

static const char *str(const char *s)
{
        return s ? s : "-";
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: walk_report CORE\n");
                return 2;
        }
        if (ms_abi_version() != MS_ABI_VERSION) {
                fprintf(stderr, "abi %u, built for %u\n", ms_abi_version(),
                        MS_ABI_VERSION);
                return 2;
        }
        struct ms_target *target;
        struct ms_report *report = NULL;
        struct ms_error *err = ms_target_open_core(argv[1], NULL, &target);
        if (!err) {
                err = ms_report_create(target, NULL, &report);
                ms_target_destroy(target);
        }
        if (err) {
                fprintf(stderr, "error %d: %s\n", (int)ms_error_code(err),
                        ms_error_message(err));
                ms_error_destroy(err);
                return 1;
        }
        printf("R\t%d\t%d\t%d\t%s\t%s\n", (int)ms_report_pid(report),
               ms_report_signal(report), (int)ms_report_crashed_tid(report),
               str(ms_report_executable(report)),
               str(ms_report_python_version(report)));
        for (size_t i = 0; i < ms_report_thread_count(report); i++) {
                const struct ms_thread_report *t = ms_report_thread(report, i);
                if (ms_report_find_thread(report, ms_thread_tid(t)) != t)
                        printf("X\tfind_thread %d\n", (int)ms_thread_tid(t));
                printf("T\t%d\t%s\t%d\t%d\t%s\t%zu\n", (int)ms_thread_tid(t),
                       str(ms_thread_name(t)), ms_thread_crashed(t),
                       ms_thread_python(t), ms_gil_state_name(ms_thread_gil(t)),
                       ms_thread_frame_count(t));
                for (size_t j = 0; j < ms_thread_frame_count(t); j++) {
                        const struct ms_frame *f = ms_thread_frame(t, j);
                        printf("F\t%s\t%s\t0x%" PRIx64 "\t%d\t%s\t%s\t%s\t%d"
                               "\t%s\n",
                               ms_frame_kind(f) == MS_FRAME_PYTHON ? "python"
                                                                   : "native",
                               ms_language_name(ms_frame_language(f)),
                               ms_frame_pc(f), ms_frame_inlined(f),
                               str(ms_frame_function(f)),
                               str(ms_frame_module(f)), str(ms_frame_file(f)),
                               ms_frame_line(f), str(ms_frame_category(f)));
                }
                if (ms_thread_frame(t, ms_thread_frame_count(t)))
                        printf("X\tframe past the end\n");
        }
        if (ms_report_thread(report, ms_report_thread_count(report)))
                printf("X\tthread past the end\n");
        for (size_t i = 0; i < ms_report_warning_count(report); i++)
                printf("W\t%d\t%s\n",
                       ms_report_warning_concerns(report, i, MS_SECTION_REPORT),
                       ms_report_warning(report, i));
        struct ms_triage *triage;
        err = ms_triage_create(report, NULL, &triage);
        if (!err) {
                printf("G\t%s\t%s\t%s\t%s\n", ms_triage_kind(triage),
                       ms_triage_signature(triage),
                       ms_triage_signature_id(triage),
                       ms_triage_reason(triage));
                ms_triage_destroy(triage);
        }
        ms_error_destroy(err);
        /* Options are set by name: a signature of two frames. */
        struct ms_options *options;
        err = ms_options_create(&options);
        if (!err)
                err = ms_options_set(options, "signature-frames", "2");
        if (!err)
                err = ms_triage_create(report, ms_options_triage(options),
                                       &triage);
        if (!err) {
                printf("H\t%s\n", ms_triage_signature(triage));
                ms_triage_destroy(triage);
        }
        ms_error_destroy(err);
        ms_options_destroy(options);
        ms_report_destroy(report);
        return 0;
}
