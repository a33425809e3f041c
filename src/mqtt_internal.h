/* mqtt_internal.h — shared by mqtt.c and mqtt_setup.c only. */
#ifndef VIGIL_MQTT_INTERNAL_H
#define VIGIL_MQTT_INTERNAL_H

#include <mosquitto.h>
#include <stdbool.h>

#include "vigil/mqtt.h"

/* Applies the session settings to mosq: username and password (read from
 * cfg->password_file, wiped after use, never logged), TLS from cfg->tls (sets *tls)
 * with the certificate verified against `host` (borrowed: it must outlive mosq) even
 * though mqtt.c connects to its resolved address, and the hooks' last will (retained,
 * QoS 1). Returns 0, VG_EINVAL or VG_EIO; logs why. Loop thread, before the first
 * connect. */
/* Care-event state of one client (mqtt_events.c), embedded in vg_mqtt_t. */
typedef struct {
    char *events_base;  /* {prefix}/events/{instance_id}; NULL until set */
    char *alarms_topic; /* {prefix}/alarms/{instance_id} */
    char *alarms;       /* the newest alarms value, NULL before the first */
} vg_mqtt_care_t;

vg_mqtt_care_t *vg_mqtt_care(vg_mqtt_t *m); /* mqtt.c: borrowed, lives with m */
/* After every CONNACK, before the outbox is flushed: queues the alarms again. */
void vg_mqtt_care_on_connect(vg_mqtt_t *m);
void vg_mqtt_care_free(vg_mqtt_care_t *c); /* frees the members */

int vg_mqtt_setup_session(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg, const char *host,
                          const vg_mqtt_hooks_t *hooks, bool *tls);

#endif
