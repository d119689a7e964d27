/*
 * The report model's accessors (the public header's "Reading a report"):
 * frontends read reports through these, so the structures can change.
 */
#include "mixstack/mixstack.h"
#include "report/model.h"

pid_t ms_report_pid(const struct ms_report *report)
{
        return report->pid;
}

int ms_report_signal(const struct ms_report *report)
{
        return report->signo;
}

pid_t ms_report_crashed_tid(const struct ms_report *report)
{
        return report->crashed_tid;
}

const char *ms_report_executable(const struct ms_report *report)
{
        return report->executable;
}

const char *ms_report_python_version(const struct ms_report *report)
{
        return report->python_version;
}

size_t ms_report_thread_count(const struct ms_report *report)
{
        return report->n_threads;
}

const struct ms_thread_report *ms_report_thread(const struct ms_report *report,
                                                size_t i)
{
        return i < report->n_threads ? &report->threads[i] : NULL;
}

const struct ms_thread_report *ms_report_find_thread(
        const struct ms_report *report, pid_t tid)
{
        for (size_t i = 0; tid && i < report->n_threads; i++) {
                if (report->threads[i].tid == tid)
                        return &report->threads[i];
        }
        return NULL;
}

size_t ms_report_warning_count(const struct ms_report *report)
{
        return report->n_warnings;
}

const char *ms_report_warning(const struct ms_report *report, size_t i)
{
        return i < report->n_warnings ? report->warnings[i] : NULL;
}

bool ms_report_warning_concerns(const struct ms_report *report, size_t i,
                                enum ms_section section)
{
        if (i >= report->n_warnings)
                return false;
        /* Reports whose warnings were not sorted concern every section. */
        return !report->warning_sections ||
               (report->warning_sections[i] & (1u << section));
}

pid_t ms_thread_tid(const struct ms_thread_report *thread)
{
        return thread->tid;
}

const char *ms_thread_name(const struct ms_thread_report *thread)
{
        return thread->name;
}

bool ms_thread_crashed(const struct ms_thread_report *thread)
{
        return thread->crashed;
}

bool ms_thread_python(const struct ms_thread_report *thread)
{
        return thread->python;
}

enum ms_gil_state ms_thread_gil(const struct ms_thread_report *thread)
{
        return thread->gil;
}

size_t ms_thread_frame_count(const struct ms_thread_report *thread)
{
        return thread->n_frames;
}

const struct ms_frame *ms_thread_frame(const struct ms_thread_report *thread,
                                       size_t i)
{
        return i < thread->n_frames ? &thread->frames[i] : NULL;
}

enum ms_frame_kind ms_frame_kind(const struct ms_frame *frame)
{
        return frame->kind;
}

enum ms_language ms_frame_language(const struct ms_frame *frame)
{
        return frame->language;
}

uint64_t ms_frame_pc(const struct ms_frame *frame)
{
        return frame->pc;
}

bool ms_frame_inlined(const struct ms_frame *frame)
{
        return frame->inlined;
}

const char *ms_frame_function(const struct ms_frame *frame)
{
        return frame->function;
}

const char *ms_frame_module(const struct ms_frame *frame)
{
        return frame->module;
}

const char *ms_frame_file(const struct ms_frame *frame)
{
        return frame->file;
}

int ms_frame_line(const struct ms_frame *frame)
{
        return frame->line;
}

const char *ms_frame_category(const struct ms_frame *frame)
{
        return frame->category;
}
