/* gateway_mqtt.c — placeholder until the MQTT client lands. */
#include "gateway_internal.h"

int vg_gw_mqtt_start(vg_gateway_t *gw)
{
    (void)gw;
    return 0;
}

void vg_gw_mqtt_stop(vg_gateway_t *gw)
{
    (void)gw;
}

void vg_gw_publish_inference(vg_gateway_t *gw, const char *stream_id, const char *payload)
{
    (void)gw;
    (void)stream_id;
    (void)payload;
}

void vg_gw_publish_stream_status(vg_gateway_t *gw, vg_stream_t *s, const char *removed_id)
{
    (void)gw;
    (void)s;
    (void)removed_id;
}

void vg_gw_publish_status(vg_gateway_t *gw)
{
    (void)gw;
}
