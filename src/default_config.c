/* default_config.c — the embedded configuration vigild runs when no -c is given: an
 * instance with no cameras yet (streams come over MQTT or REST), the built-in HOG
 * person detector, MQTT and HTTP on loopback. */
#include "vigil/gateway.h"

const char vg_default_config_yaml[] =
    "instance_id: vigil-default\n"
    "log: {level: info}\n"
    "mqtt: {enabled: true, host: 127.0.0.1, port: 1883, topic_prefix: care}\n"
    "http: {listen: 127.0.0.1:8080, web_root: web}\n"
    "models: []\n"
    "streams: []\n";
