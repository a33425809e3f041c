/* gateway.h — the loop thread's owner: libevent base, configuration, signals, the
 * HTTP server and (as they land) the stream registry, MQTT and control. Everything
 * here runs on the main thread; other threads reach it only through queues that
 * wake the loop with event_active(). */
#ifndef VIGIL_GATEWAY_H
#define VIGIL_GATEWAY_H

#include "vigil/config.h"

typedef struct vg_gateway vg_gateway_t;

/* Takes ownership of cfg. Returns 0 or a negative code (reason logged). */
int vg_gateway_new(vg_config_t *cfg, const char *log_level_override, vg_gateway_t **out);
/* Runs until SIGINT/SIGTERM; returns the process exit code. */
int vg_gateway_run(vg_gateway_t *gw);
void vg_gateway_free(vg_gateway_t *gw);

/* The configuration used when vigild is started without -c. */
extern const char vg_default_config_yaml[];

#endif
