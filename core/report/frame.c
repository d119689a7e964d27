/* Frames of the report model. */
#include <stdlib.h>

#include "mixstack/mixstack.h"
#include "report/model.h"
#include "unwind/unwind.h"

void ms_frame_deinit(struct ms_frame *frame)
{
        free(frame->module);
        free(frame->raw_symbol);
        free(frame->function);
        free(frame->file);
        free(frame->qualname);
        for (size_t i = 0; i < frame->n_locals; i++) {
                free(frame->locals[i].name);
                free(frame->locals[i].value);
        }
        free(frame->locals);
        frame->locals = NULL;
        frame->n_locals = 0;
        frame->module = frame->raw_symbol = frame->function = NULL;
        frame->file = frame->qualname = NULL;
}
