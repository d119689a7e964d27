/*
 * Signatures of asyncio hangs: a process idle in its event loop looks the
 * same whatever it waits for (one thread in epoll_wait), so when the
 * report diagnoses an await cycle or tasks stalled on Rust futures, the
 * signature names the stuck awaits instead: the innermost suspended frame
 * of each task in the cycle, or of each task awaiting a Rust future,
 * sorted so that task order and addresses do not matter.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "report/boundary.h"
#include "triage/internal.h"
#include "triage/signature.h"

/* Awaiting tasks named in one signature. */
#define MAX_AWAIT_FRAMES 4

/* Whether following the tasks t awaits comes back to t. */
static bool in_cycle(const struct ms_report *r, const struct ms_asyncio_task *t)
{
        const struct ms_asyncio_task *p = t;
        for (int i = 0; i < 64 && p && p->awaiting_task; i++) {
                p = ms_asyncio_task_find(r, p->awaiting_task);
                if (p == t)
                        return true;
        }
        return false;
}

static bool is_rust_wait(const struct ms_asyncio_task *t)
{
        return t->awaiting_kind && !strcmp(t->awaiting_kind, "rust-future");
}

static int text_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The signature text of a task's innermost suspended frame. */
static char *task_text(const struct ms_asyncio_task *t)
{
        if (!t->n_frames)
                return strdup(t->name ? t->name : "??");
        struct ms_frame f = {
                .kind = MS_FRAME_PYTHON,
                .language = MS_LANGUAGE_PYTHON,
                .function = t->frames[0].function,
                .qualname = t->frames[0].qualname,
                .file = t->frames[0].file,
        };
        return ms_signature_frame_text(&f);
}

static struct ms_error *push(struct ms_triage *t, size_t *capacity, char *text,
                             size_t thread)
{
        if (!text)
                return &ms_error_no_memory;
        if (!ms_grow((void **)&t->signature_frames, capacity,
                     t->n_signature_frames, sizeof(*t->signature_frames))) {
                free(text);
                return &ms_error_no_memory;
        }
        t->signature_frames[t->n_signature_frames++] =
                (struct ms_signature_frame){
                        .text = text, .thread = thread, .frame = SIZE_MAX};
        return NULL;
}

struct ms_error *ms_triage_asyncio_signature(struct ms_triage *t, bool *done)
{
        const struct ms_report *r = t->report;
        *done = false;
        const char *kind = NULL;
        for (size_t i = 0; i < r->n_diagnoses && !kind; i++) {
                if (!strcmp(r->diagnoses[i].kind, "await-cycle"))
                        kind = "await-cycle";
                else if (!strcmp(r->diagnoses[i].kind, "rust-future-stalled"))
                        kind = "rust-future";
        }
        if (!kind || !r->n_threads || !t->n_threads)
                return NULL;
        bool cycle = !strcmp(kind, "await-cycle");
        char *texts[MAX_AWAIT_FRAMES];
        size_t n = 0;
        struct ms_error *err = NULL;
        for (size_t i = 0; i < r->n_asyncio_loops && !err; i++) {
                const struct ms_asyncio_loop *lp = &r->asyncio_loops[i];
                for (size_t j = 0; j < lp->n_tasks && n < MAX_AWAIT_FRAMES;
                     j++) {
                        const struct ms_asyncio_task *task = &lp->tasks[j];
                        if (cycle ? !in_cycle(r, task) : !is_rust_wait(task))
                                continue;
                        texts[n] = task_text(task);
                        if (!texts[n]) {
                                err = &ms_error_no_memory;
                                break;
                        }
                        n++;
                }
        }
        qsort(texts, n, sizeof(*texts), text_cmp);
        size_t capacity = 0, thread = t->threads[0];
        if (!err)
                err = push(t, &capacity, strdup(kind), thread);
        for (size_t i = 0; i < n; i++) {
                if (!err && (i == 0 || strcmp(texts[i], texts[i - 1])))
                        err = push(t, &capacity, texts[i], thread);
                else
                        free(texts[i]);
        }
        *done = !err;
        return err;
}
