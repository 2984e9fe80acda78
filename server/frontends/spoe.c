/* HAProxy SPOE agent: placeholder until the SPOP agent lands. */
#include <stdio.h>

#include "frontend_internal.h"

int spoe_start(const char *listen, int *out_port, char *err, size_t errlen)
{
    *out_port = 0;
    snprintf(err, errlen, "frontends.haproxy (%s): the SPOE agent is not built yet", listen);
    return -1;
}

void spoe_stop(void)
{
}
