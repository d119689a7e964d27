#include "mixstack/mixstack.h"

const char *ms_version(void)
{
        return MIXSTACK_VERSION;
}
