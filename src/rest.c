/* rest.c — placeholder until the REST API lands. */
#include "gateway_internal.h"

void vg_rest_register(vg_gateway_t *gw)
{
    (void)gw;
}
