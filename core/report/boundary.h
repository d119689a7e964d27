/*
 * Moving the readers' boundary facts (CPython exceptions and GIL, Rust
 * panics) into the public report model, and the model's destructors for
 * them.
 */
#ifndef MIXSTACK_REPORT_BOUNDARY_H
#define MIXSTACK_REPORT_BOUNDARY_H

#include "cpython/cpython.h"
#include "mixstack/mixstack.h"
#include "report/model.h"
#include "rust/rust.h"
#include "target/target.h"

/* Move chain (its strings change owner) into out. */
struct ms_error *ms_exception_chain_take(struct ms_py_exc_chain *chain,
                                         struct ms_exception_chain *out);
void ms_exception_chain_free(struct ms_exception_chain *chain);

/* A panic report of a thread's Rust state, or NULL (with no error) when
 * no panic machinery is on its stack. site_index indexes the native
 * frames the state was computed from. */
struct ms_error *ms_panic_take(struct ms_rust_thread *rt,
                               struct ms_panic **ret);
void ms_panic_free(struct ms_panic *panic);

/* Find the kind and site of a panic again in frames that now have their
 * inlined frames and source positions (the panic was found in frames named
 * from symbol tables only). What came from memory stays. */
struct ms_error *ms_panic_refresh_site(struct ms_panic *panic,
                                       const struct ms_frame *frames,
                                       size_t n_frames);

/* The Rust modules of state into the report. */
struct ms_error *ms_rust_modules_take(struct ms_rust_state *state,
                                      struct ms_report *report);

/* The owner of the pthread mutex thread t is blocked on, from its
 * classified native frames and registers, or 0 (locks.c). */
pid_t ms_lock_owner(struct ms_target *target, const struct ms_target_thread *t,
                    const struct ms_frame *frames, size_t n_frames);

/* Diagnoses from the GIL states and native stacks of the report's threads
 * (diagnose.c); py[i] is the Python thread of report thread i, or NULL. */
struct ms_error *ms_report_diagnose(struct ms_report *report,
                                    struct ms_py_thread *const *py);
void ms_diagnoses_free(struct ms_report *report);

/* The asyncio tasks of runtime rt into report->asyncio_loops (asyncio.c;
 * reads the target), its warnings into warnings. */
struct ms_error *ms_report_asyncio_read(struct ms_target *target,
                                        const struct ms_py_runtime *rt,
                                        struct ms_report *report,
                                        struct ms_warnings *warnings);
/* Diagnoses of the await graph and the loops' threads (after the GIL
 * states and native stacks are known). */
struct ms_error *ms_report_diagnose_asyncio(struct ms_report *report);
void ms_asyncio_free(struct ms_report *report);
/* The task of report with id id, or NULL (a linear search). */
const struct ms_asyncio_task *ms_asyncio_task_find(const struct ms_report *r,
                                                   uint64_t id);

#endif
