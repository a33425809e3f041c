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
int vg_mqtt_setup_session(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg, const char *host,
                          const vg_mqtt_hooks_t *hooks, bool *tls);

#endif
