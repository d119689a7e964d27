/* Memory regions a debugger listed for a debugger-fed target. */
#ifndef MIXSTACK_TARGET_REGIONS_H
#define MIXSTACK_TARGET_REGIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "target/target.h"

struct ms_memory_region {
        uint64_t start;
        uint64_t end;
};

/* The writable regions of a debugger-fed target; false when the target is
 * of another kind or its debugger listed none. */
bool ms_target_debugger_regions(const struct ms_target *target,
                                const struct ms_memory_region **regions,
                                size_t *n);

#endif
