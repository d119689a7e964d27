/* Frames of the report model. */
#include <stdlib.h>

#include "mixstack/mixstack.h"
#include "unwind/unwind.h"

void ms_frame_deinit(struct ms_frame *frame)
{
        free(frame->module);
        free(frame->raw_symbol);
        free(frame->function);
        free(frame->file);
        free(frame->qualname);
        frame->module = frame->raw_symbol = frame->function = NULL;
        frame->file = frame->qualname = NULL;
}
