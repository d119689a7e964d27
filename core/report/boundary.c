#include <stdlib.h>
#include <string.h>

#include "report/boundary.h"

/* Take a string: the reader's pointer is cleared, so it is freed once. */
static char *take(char **s)
{
        char *v = *s;
        *s = NULL;
        return v;
}

static const char *link_name(enum ms_py_exc_link link)
{
        switch (link) {
        case MS_PY_EXC_LINK_CAUSE:
                return "cause";
        case MS_PY_EXC_LINK_CONTEXT:
                return "context";
        case MS_PY_EXC_LINK_NONE:
                break;
        }
        return NULL;
}

static struct ms_error *exception_take(struct ms_py_exc *e,
                                       struct ms_exception *out)
{
        out->type = take(&e->type);
        out->message = take(&e->message);
        out->message_truncated = e->message_truncated;
        out->is_panic_exception = e->is_panic_exception;
        out->link = link_name(e->link);
        out->error = take(&e->error);
        if (!e->n_traceback)
                return NULL;
        out->traceback = calloc(e->n_traceback, sizeof(*out->traceback));
        if (!out->traceback)
                return &ms_error_no_memory;
        for (size_t i = 0; i < e->n_traceback; i++) {
                struct ms_py_tb_frame *tb = &e->traceback[i];
                struct ms_traceback_entry *entry = &out->traceback[i];
                /* Python prints the qualified name where it has one. */
                entry->function = tb->qualname ? take(&tb->qualname)
                                               : take(&tb->function);
                entry->file = take(&tb->file);
                entry->line = tb->line;
        }
        out->n_traceback = e->n_traceback;
        return NULL;
}

struct ms_error *ms_exception_chain_take(struct ms_py_exc_chain *chain,
                                         struct ms_exception_chain *out)
{
        memset(out, 0, sizeof(*out));
        if (!chain || !chain->n)
                return NULL;
        out->items = calloc(chain->n, sizeof(*out->items));
        if (!out->items)
                return &ms_error_no_memory;
        out->n = chain->n;
        out->truncated = chain->truncated;
        for (size_t i = 0; i < chain->n; i++) {
                struct ms_error *err =
                        exception_take(&chain->items[i], &out->items[i]);
                if (err)
                        return err;
        }
        return NULL;
}

void ms_exception_chain_free(struct ms_exception_chain *chain)
{
        for (size_t i = 0; i < chain->n; i++) {
                struct ms_exception *e = &chain->items[i];
                for (size_t j = 0; j < e->n_traceback; j++) {
                        free(e->traceback[j].function);
                        free(e->traceback[j].file);
                }
                free(e->traceback);
                free(e->type);
                free(e->message);
                free(e->error);
        }
        free(chain->items);
        memset(chain, 0, sizeof(*chain));
}

/* Replace the site of p by rt's (its strings change owner). */
static void take_site(struct ms_panic *p, struct ms_rust_thread *rt)
{
        free(p->site_function);
        free(p->site_module);
        free(p->site_file);
        p->site_function = take(&rt->site_function);
        p->site_module = take(&rt->site_module);
        p->site_file = take(&rt->site_file);
        p->site_line = rt->site_line;
        p->site_column = rt->site_column;
        p->site_index = rt->site_index;
}

struct ms_error *ms_panic_take(struct ms_rust_thread *rt, struct ms_panic **ret)
{
        *ret = NULL;
        if (!rt->in_machinery && !rt->panicking)
                return NULL;
        struct ms_panic *p = calloc(1, sizeof(*p));
        if (!p)
                return &ms_error_no_memory;
        p->kind = ms_rust_panic_kind_name(rt->kind);
        p->panicking = rt->panicking;
        take_site(p, rt);
        p->message = take(&rt->message);
        p->message_recovered_by = rt->message_recovered_by;
        p->location_file = take(&rt->file);
        p->location_line = (int)rt->line;
        p->location_column = (int)rt->column;
        p->location_recovered_by = rt->location_recovered_by;
        p->local_panic_count =
                rt->local_count_known ? (int64_t)rt->local_panic_count : -1;
        p->in_panic_hook = rt->in_panic_hook;
        *ret = p;
        return NULL;
}

struct ms_error *ms_panic_refresh_site(struct ms_panic *p,
                                       const struct ms_frame *frames,
                                       size_t n_frames)
{
        struct ms_rust_thread rt = {0};
        bool ok = ms_rust_frames_classify(frames, n_frames, &rt);
        if (ok && rt.in_machinery) {
                p->kind = ms_rust_panic_kind_name(rt.kind);
                p->panicking = rt.panicking || p->local_panic_count > 0;
                take_site(p, &rt);
        }
        free(rt.site_function);
        free(rt.site_module);
        free(rt.site_file);
        return ok ? NULL : &ms_error_no_memory;
}

void ms_panic_free(struct ms_panic *p)
{
        if (!p)
                return;
        free(p->site_function);
        free(p->site_module);
        free(p->site_file);
        free(p->message);
        free(p->location_file);
        free(p);
}

struct ms_error *ms_rust_modules_take(struct ms_rust_state *state,
                                      struct ms_report *report)
{
        if (!state->n_modules)
                return NULL;
        report->rust_modules =
                calloc(state->n_modules, sizeof(*report->rust_modules));
        if (!report->rust_modules)
                return &ms_error_no_memory;
        for (size_t i = 0; i < state->n_modules; i++) {
                struct ms_rust_module *m = &state->modules[i];
                struct ms_rust_module_report *out = &report->rust_modules[i];
                out->path = take(&m->path);
                out->rustc_version = take(&m->rustc_version);
                out->count_known = m->count_known;
                out->global_panic_count = m->global_panic_count;
                out->always_abort = m->always_abort;
                out->count_unknown_reason = take(&m->count_unknown_reason);
        }
        report->n_rust_modules = state->n_modules;
        return NULL;
}
