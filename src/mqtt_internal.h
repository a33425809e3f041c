/* mqtt_internal.h — the MQTT client's shared insides, for mqtt*.c only: the client
 * struct (loop thread only, like all of the client), its metrics, and the functions
 * the files hand each other. mqtt.c builds, frees and fronts the client; mqtt_conn.c
 * connects, reconnects and runs libmosquitto's socket and callbacks; mqtt_flush.c moves
 * the outbox to the broker, counts drops and drives a stop; mqtt_setup.c applies the
 * session settings; mqtt_events.c owns the care-event topics and the alarms. */
#ifndef VIGIL_MQTT_INTERNAL_H
#define VIGIL_MQTT_INTERNAL_H

#include <event2/event.h>
#include <math.h>
#include <mosquitto.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "vigil/metrics.h"
#include "vigil/mqtt.h"
#include "vigil/outbox.h"
#include "vigil/resolve.h"

#define MOD "mqtt"

enum {
    DROP_OVERFLOW,
    DROP_CONTROL_OVERFLOW,
    DROP_EVENT_OVERFLOW,
    DROP_OFFLINE_QOS0,
    DROP_SUPERSEDED,
    DROP_REJECTED,
    DROP_SHUTDOWN,
    DROP_N
};

/* mqtt_setup.c. Applies the session settings to mosq: username and password (read from
 * cfg->password_file, wiped after use, never logged), TLS from cfg->tls (sets *tls)
 * with the certificate verified against `host` (borrowed: it must outlive mosq) even
 * though mqtt.c connects to its resolved address, and the hooks' last will (retained,
 * QoS 1). Returns 0, VG_EINVAL or VG_EIO; logs why. Loop thread, before the first
 * connect. */
int vg_mqtt_setup_session(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg, const char *host,
                          const vg_mqtt_hooks_t *hooks, bool *tls);

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

typedef enum { ST_IDLE = 0, ST_RESOLVING, ST_CONNECTING, ST_CONNACKED, ST_READY } conn_state_t;
typedef struct sub {
    char *pattern;
    int qos, mid;
    struct sub *next;
} sub_t;

struct vg_mqtt {
    /* settings, fixed by vg_mqtt_new */
    struct event_base *base;
    char *host, *client_id, *will_topic;
    int port, keepalive_s;
    bool host_numeric, tls;
    vg_mqtt_hooks_t hooks;
    double backoff_initial_s, probe_max_s, refused_max_s;
    /* runtime */
    struct mosquitto *mosq;
    conn_state_t state;
    bool stopping, disconnect_sent, stopped, ever_connected, overflow_logged, session_present;
    bool rejected; /* this attempt reached a broker that said no (CONNACK refusal, TLS) */
    int fd;        /* libmosquitto's socket while we watch it; -1 for none */
    int watch_fd;  /* our dup of it, registered with libevent */
    struct event *ev_read, *ev_write;
    struct event *ev_tick, *ev_retry, *ev_ready, *ev_resolved, *ev_deadline, *ev_stopped;
    vg_resolve_t *lookup;
    double attempt_started, connected_at;
    unsigned attempt;    /* reconnects scheduled in a row without a stable connection */
    unsigned addr_index; /* which resolved address to try; moves on after a failure */
    vg_outbox_t *outbox; /* queued messages, and QoS>0 ones awaiting their ack */
    vg_mqtt_care_t care; /* event topics, the alarms kept for every reconnect */
    sub_t *subs;
    uint64_t rng;
};

typedef struct {
    vg_series_t *connected, *reconnects, *received, *outbox, *inflight, *events_pending;
    vg_series_t *published[VG_OUTBOX_NCLASS], *dropped[DROP_N], *class_dropped[VG_OUTBOX_NCLASS];
} vg_mqtt_metrics_t;

extern vg_mqtt_metrics_t vg_mqtt_metrics; /* mqtt_flush.c; set once per process */

static inline struct timeval vg_mqtt_tv(double s)
{
    if (s < 0) s = 0;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    return tv;
}

/* mqtt_flush.c: the outbox, its gauges and drops, and the drain before a stop */
void vg_mqtt_metrics_init(void);
void vg_mqtt_update_gauges(const vg_mqtt_t *m);
void vg_mqtt_count_drop(int reason, vg_outbox_class_t cls, size_t n);
size_t vg_mqtt_drop_all(vg_mqtt_t *m, int reason);
void vg_mqtt_send(vg_mqtt_t *m, vg_outbox_msg_t *msg); /* takes msg; only while ST_READY */
void vg_mqtt_pump(vg_mqtt_t *m);
void vg_mqtt_enqueue(vg_mqtt_t *m, vg_outbox_msg_t *msg); /* takes msg */
bool vg_mqtt_pending(const vg_mqtt_t *m);
void vg_mqtt_finish_stop(vg_mqtt_t *m);
void vg_mqtt_check_stop(vg_mqtt_t *m);

/* mqtt_conn.c: the connection, its socket and libmosquitto's callbacks */
int vg_mqtt_conn_setup(vg_mqtt_t *m, const vg_mqtt_cfg_t *cfg, const vg_mqtt_hooks_t *hooks);
void vg_mqtt_unwatch(vg_mqtt_t *m);
void vg_mqtt_after_io(vg_mqtt_t *m);
void vg_mqtt_send_sub(vg_mqtt_t *m, sub_t *s);

#endif
