/* Lookups in a finished report, shared by the diagnoses, the printers and
 * the debugger frame maps. */
#ifndef MIXSTACK_REPORT_LOOKUP_H
#define MIXSTACK_REPORT_LOOKUP_H

#include "mixstack/mixstack.h"

/* The report's thread tid, or NULL (also for tid 0). */
const struct ms_thread_report *ms_report_thread(const struct ms_report *r,
                                                pid_t tid);

#endif /* MIXSTACK_REPORT_LOOKUP_H */
