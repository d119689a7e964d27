/* The JSON of triages (schema mixstack-triage/1, docs/triage.md). */
#ifndef MIXSTACK_TRIAGE_JSON_H
#define MIXSTACK_TRIAGE_JSON_H

#include "mixstack/mixstack.h"
#include "report/model.h"
#include "triage/model.h"
#include "output/json_writer.h"

/* One element of "results". */
void ms_triage_json(const struct ms_triage *t, struct ms_json *json);

/* "source": the core's path or "pid N". */
void ms_triage_json_source(struct ms_json *json, const struct ms_report *r);

/* "threads" (every thread in one object) and "stacks" (the frames shown
 * of the signature threads). */
void ms_triage_json_threads(struct ms_json *json, const struct ms_triage *t);

#endif /* MIXSTACK_TRIAGE_JSON_H */
