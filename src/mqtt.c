/* mqtt.c — the MQTT client's face (see mqtt.h for the delivery rules): construction,
 * subscribe, publish, stop and free. Loop thread only; libmosquitto never starts a
 * thread. The client owns its copies of the settings, the outbox and the subscriptions.
 * The connection itself is mqtt_conn.c's, the outbox flushing and the drain before a
 * stop mqtt_flush.c's, the session settings mqtt_setup.c's and the care events
 * mqtt_events.c's; they share mqtt_internal.h. */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <event2/event.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define TICK_S 0.5
#define MQTT_MAX_PAYLOAD 268435455u

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_process(void)
{
    mosquitto_lib_init();
    vg_mqtt_metrics_init();
}

/* ---- construction ----------------------------------------------------------------- */

int vg_mqtt_new(struct event_base *base, const vg_mqtt_cfg_t *cfg, const vg_mqtt_hooks_t *hooks,
                vg_mqtt_t **out)
{
    *out = NULL;
    VG_CHECK(pthread_once(&init_once, init_process) == 0);
    if (!cfg->host || !*cfg->host || cfg->port < 1 || cfg->port > 65535 || !cfg->client_id ||
        !*cfg->client_id || cfg->keepalive_s < 5 || cfg->outbox_limit < 0) {
        VG_ERROR(MOD, "bad_config", "{s:s}", "reason",
                 "mqtt needs host, port 1..65535, client_id, keepalive_s >= 5, outbox_limit >= 0");
        return VG_EINVAL;
    }
    vg_mqtt_t *m = vg_xcalloc(1, sizeof(*m));
    m->base = base;
    m->host = vg_xstrdup(cfg->host);
    m->port = cfg->port;
    m->client_id = vg_xstrdup(cfg->client_id);
    m->keepalive_s = cfg->keepalive_s;
    m->host_numeric = vg_resolve_is_numeric(cfg->host);
    m->hooks = *hooks;
    m->hooks.will_topic = m->will_topic = vg_xstrdup(hooks->will_topic);
    m->hooks.will_payload = NULL; /* handed to libmosquitto, not kept */
    m->backoff_initial_s = 0.5;
    m->probe_max_s = VG_MQTT_PROBE_MAX_S;
    m->refused_max_s = 30;
    m->fd = m->watch_fd = -1;
    m->outbox = vg_outbox_new((size_t)cfg->outbox_limit, VG_MQTT_EVENT_RESERVE);
    if (getrandom(&m->rng, sizeof(m->rng), 0) != sizeof(m->rng) || !m->rng)
        m->rng = (uint64_t)(vg_now_wall() * 1e6) | 1;
    int rc = vg_mqtt_conn_setup(m, cfg, hooks);
    if (rc != VG_OK) {
        vg_mqtt_free(m);
        return rc;
    }
    struct timeval tick = vg_mqtt_tv(TICK_S), now = {0, 0};
    evtimer_add(m->ev_tick, &tick);
    evtimer_add(m->ev_retry, &now);
    vg_mqtt_update_gauges(m);
    *out = m;
    return VG_OK;
}

/* ---- public operations ------------------------------------------------------------ */

void vg_mqtt_set_backoff(vg_mqtt_t *m, double initial_s, double probe_max_s, double refused_max_s)
{
    m->backoff_initial_s = initial_s > 0 ? initial_s : 0.5;
    m->probe_max_s = probe_max_s >= m->backoff_initial_s ? probe_max_s : m->backoff_initial_s;
    m->refused_max_s = refused_max_s >= m->probe_max_s ? refused_max_s : m->probe_max_s;
}

int vg_mqtt_subscribe(vg_mqtt_t *m, const char *pattern, int qos)
{
    if (!pattern || !*pattern || qos < 0 || qos > 2 ||
        mosquitto_sub_topic_check(pattern) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(pattern, (int)strlen(pattern)) != MOSQ_ERR_SUCCESS)
        return VG_EINVAL;
    sub_t *s = m->subs, **tail = &m->subs;
    for (; s && strcmp(s->pattern, pattern) != 0; s = s->next)
        tail = &s->next;
    if (!s) {
        s = vg_xcalloc(1, sizeof(*s));
        s->pattern = vg_xstrdup(pattern);
        *tail = s;
    }
    s->qos = qos;
    if (m->state == ST_READY) {
        vg_mqtt_send_sub(m, s);
        vg_mqtt_after_io(m);
    }
    return VG_OK;
}

int vg_mqtt_unsubscribe(vg_mqtt_t *m, const char *pattern)
{
    for (sub_t **pp = &m->subs; *pp; pp = &(*pp)->next) {
        sub_t *s = *pp;
        if (strcmp(s->pattern, pattern) != 0) continue;
        *pp = s->next;
        if (m->state == ST_READY) {
            mosquitto_unsubscribe(m->mosq, NULL, s->pattern);
            VG_INFO(MOD, "unsubscribe", "{s:s}", "topic", s->pattern);
            vg_mqtt_after_io(m);
        }
        free(s->pattern);
        free(s);
        return VG_OK;
    }
    return VG_ENOTFOUND;
}

int vg_mqtt_publish(vg_mqtt_t *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain, vg_mqtt_class_t cls)
{
    if (!topic || !*topic || qos < 0 || qos > 2 || len > MQTT_MAX_PAYLOAD || (len && !payload) ||
        (unsigned)cls >= VG_OUTBOX_NCLASS || mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS)
        return VG_EINVAL;
    if (m->stopping) return VG_EBUSY;
    if (qos == 0 && m->state != ST_READY) {
        vg_mqtt_count_drop(DROP_OFFLINE_QOS0, (vg_outbox_class_t)cls, 1);
        return VG_OK;
    }
    vg_outbox_msg_t *msg =
        vg_outbox_msg_new(topic, payload, len, qos, retain, (vg_outbox_class_t)cls);
    if (qos == 0 || (m->state == ST_READY && vg_outbox_len(m->outbox) == 0 &&
                     vg_mqtt_inflight_len(m) < VG_MQTT_INFLIGHT_MAX)) {
        vg_mqtt_send(m, msg);
        vg_mqtt_update_gauges(m);
    } else {
        vg_mqtt_enqueue(m, msg);
    }
    vg_mqtt_after_io(m);
    return VG_OK;
}

bool vg_mqtt_connected(const vg_mqtt_t *m)
{
    return m->state == ST_READY;
}

size_t vg_mqtt_outbox_len(const vg_mqtt_t *m)
{
    return vg_outbox_len(m->outbox);
}

void vg_mqtt_set_event_reserve(vg_mqtt_t *m, size_t n)
{
    vg_outbox_set_event_reserve(m->outbox, n);
}

vg_mqtt_care_t *vg_mqtt_care(vg_mqtt_t *m)
{
    return &m->care;
}

void vg_mqtt_stop(vg_mqtt_t *m, double timeout_s)
{
    if (m->stopping) return;
    m->stopping = true;
    VG_INFO(MOD, "stopping", "{s:i, s:i, s:f}", "outbox", (int)vg_outbox_len(m->outbox),
            "unacknowledged", (int)vg_mqtt_inflight_len(m), "timeout_s", timeout_s);
    struct timeval tv = vg_mqtt_tv(timeout_s);
    evtimer_add(m->ev_deadline, &tv);
    if (m->state == ST_IDLE && vg_mqtt_pending(m)) { /* try at once rather than after the backoff */
        struct timeval now = {0, 0};
        evtimer_add(m->ev_retry, &now);
    }
    vg_mqtt_check_stop(m);
}

void vg_mqtt_free(vg_mqtt_t *m)
{
    if (!m) return;
    size_t left = vg_outbox_len(m->outbox) + vg_mqtt_inflight_len(m);
    if (left && !m->stopped) {
        VG_WARN(MOD, "free_dropped", "{s:i, s:i}", "messages", (int)left, "events",
                (int)vg_mqtt_events_pending(m));
        vg_mqtt_drop_all(m, DROP_SHUTDOWN);
    }
    vg_mqtt_unwatch(m);
    vg_resolve_release(m->lookup);
    struct event *evs[] = {m->ev_tick,     m->ev_retry,    m->ev_ready,
                           m->ev_resolved, m->ev_deadline, m->ev_stopped};
    for (size_t i = 0; i < VG_ARRAY_LEN(evs); i++)
        if (evs[i]) event_free(evs[i]);
    if (m->mosq) mosquitto_destroy(m->mosq); /* closes without DISCONNECT: the will goes out */
    vg_outbox_free(m->outbox);
    vg_mqtt_care_free(&m->care);
    while (m->subs) {
        sub_t *s = m->subs;
        m->subs = s->next;
        free(s->pattern);
        free(s);
    }
    vg_series_set(vg_mqtt_metrics.connected, 0);
    vg_series_set(vg_mqtt_metrics.outbox, 0);
    vg_series_set(vg_mqtt_metrics.inflight, 0);
    vg_series_set(vg_mqtt_metrics.events_pending, 0);
    free(m->host);
    free(m->client_id);
    free(m->will_topic);
    free(m);
}
