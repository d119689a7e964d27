#include "mixstack/mixstack.h"

const char *ms_version(void)
{
        return MIXSTACK_VERSION;
}

unsigned ms_abi_version(void)
{
        return MS_ABI_VERSION;
}
