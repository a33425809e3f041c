/* mqtt_flush.c — the MQTT client's outbox on the wire: publishes handed to
 * libmosquitto while the in-flight window has room (events first), QoS>0 messages kept
 * in the outbox's ledger until their ack, drops counted and logged by reason and class,
 * and a stop that drains what is pending before it disconnects. Loop thread only. The
 * outbox owns queued and tracked messages; a message handed to vg_mqtt_send() or
 * vg_mqtt_enqueue() is theirs. */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <event2/event.h>
#include <mosquitto.h>
#include <sys/socket.h>

static const char *const drop_names[DROP_N] = {"overflow",     "control_overflow", "event_overflow",
                                               "offline_qos0", "superseded",       "rejected",
                                               "shutdown"};
/* an overflow drop's reason, by the class that lost the message */
static const int overflow_reason[VG_OUTBOX_NCLASS] = {DROP_OVERFLOW, DROP_CONTROL_OVERFLOW,
                                                      DROP_EVENT_OVERFLOW};
static const char *const class_names[VG_OUTBOX_NCLASS] = {"inference", "control", "event"};
_Static_assert((int)VG_MQTT_INFERENCE == (int)VG_OUTBOX_INFERENCE &&
                   (int)VG_MQTT_CONTROL == (int)VG_OUTBOX_CONTROL &&
                   (int)VG_MQTT_EVENT == (int)VG_OUTBOX_EVENT,
               "mqtt classes are outbox classes");

vg_mqtt_metrics_t vg_mqtt_metrics;

void vg_mqtt_metrics_init(void)
{
    vg_mqtt_metrics.connected = vg_metric_series(
        vg_metric_gauge("vigil_mqtt_connected", "1 while connected to the MQTT broker", NULL));
    vg_mqtt_metrics.reconnects = vg_metric_series(vg_metric_counter(
        "vigil_mqtt_reconnects_total", "MQTT connections re-established after a loss", NULL));
    vg_mqtt_metrics.received = vg_metric_series(vg_metric_counter(
        "vigil_mqtt_messages_received_total", "MQTT messages received on subscriptions", NULL));
    vg_mqtt_metrics.outbox = vg_metric_series(
        vg_metric_gauge("vigil_mqtt_outbox_messages", "MQTT messages waiting in the outbox", NULL));
    vg_mqtt_metrics.inflight = vg_metric_series(vg_metric_gauge(
        "vigil_mqtt_inflight_messages", "MQTT QoS>0 messages sent and not yet acknowledged", NULL));
    vg_metric_t *pub = vg_metric_counter("vigil_mqtt_messages_published_total",
                                         "MQTT messages handed to the broker connection", "class");
    vg_mqtt_metrics.events_pending = vg_metric_series(vg_metric_gauge(
        "vigil_mqtt_events_pending",
        "Care events and alarms queued or sent and not yet acknowledged by the broker", NULL));
    vg_metric_t *cdrop = vg_metric_counter(
        "vigil_mqtt_outbox_dropped_by_class_total",
        "MQTT messages that never reached the broker (overflow, offline QoS 0, refused, shutdown)",
        "class");
    for (int i = 0; i < VG_OUTBOX_NCLASS; i++) {
        vg_mqtt_metrics.published[i] = vg_metric_series(pub, class_names[i]);
        vg_mqtt_metrics.class_dropped[i] = vg_metric_series(cdrop, class_names[i]);
    }
    vg_metric_t *drop =
        vg_metric_counter("vigil_mqtt_outbox_dropped_total",
                          "MQTT messages dropped before reaching the broker", "reason");
    for (int i = 0; i < DROP_N; i++)
        vg_mqtt_metrics.dropped[i] = vg_metric_series(drop, drop_names[i]);
}

size_t vg_mqtt_inflight_len(const vg_mqtt_t *m)
{
    return vg_outbox_tracked_len(m->outbox);
}

size_t vg_mqtt_events_pending(const vg_mqtt_t *m)
{
    return vg_outbox_class_len(m->outbox, VG_OUTBOX_EVENT) +
           vg_outbox_tracked_class_len(m->outbox, VG_OUTBOX_EVENT);
}

void vg_mqtt_update_gauges(const vg_mqtt_t *m)
{
    vg_series_set(vg_mqtt_metrics.outbox, (double)vg_outbox_len(m->outbox));
    vg_series_set(vg_mqtt_metrics.inflight, (double)vg_mqtt_inflight_len(m));
    vg_series_set(vg_mqtt_metrics.events_pending, (double)vg_mqtt_events_pending(m));
}

/* n messages of class cls lost for `reason` (superseded ones are not lost: a newer
 * retained value replaced them). */
void vg_mqtt_count_drop(int reason, vg_outbox_class_t cls, size_t n)
{
    vg_series_add(vg_mqtt_metrics.dropped[reason], (double)n);
    if (reason != DROP_SUPERSEDED) vg_series_add(vg_mqtt_metrics.class_dropped[cls], (double)n);
}

/* Frees every queued and tracked message, counting each as dropped for `reason`. */
size_t vg_mqtt_drop_all(vg_mqtt_t *m, int reason)
{
    size_t n = 0;
    vg_outbox_msg_t *msg;
    while ((msg = vg_outbox_pop(m->outbox)) || (msg = vg_outbox_untrack(m->outbox))) {
        vg_mqtt_count_drop(reason, msg->cls, 1);
        if (msg->cls == VG_OUTBOX_EVENT)
            VG_ERROR(MOD, "event_dropped", "{s:s, s:s}", "topic", msg->topic, "reason",
                     drop_names[reason]);
        vg_outbox_msg_free(msg);
        n++;
    }
    return n;
}
/* ---- sending ---------------------------------------------------------------------- */

/* Hands msg (taken) to libmosquitto. A QoS>0 message stays in the outbox's ledger
 * until its PUBACK/PUBCOMP (cb_publish). Only while ST_READY. */
void vg_mqtt_send(vg_mqtt_t *m, vg_outbox_msg_t *msg)
{
    int mid = 0;
    int rc = mosquitto_publish(m->mosq, &mid, msg->topic, (int)msg->len, msg->payload, msg->qos,
                               msg->retain);
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        break;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
    case MOSQ_ERR_ERRNO:
    case MOSQ_ERR_PROTOCOL:
        /* The connection is failing. libmosquitto stored a QoS>0 message in its session
         * before trying to write it and re-sends it after reconnecting; QoS 0 is lost. */
        if (msg->qos == 0) {
            vg_mqtt_count_drop(DROP_OFFLINE_QOS0, msg->cls, 1);
            vg_outbox_msg_free(msg);
            return;
        }
        break;
    case MOSQ_ERR_NOMEM:
        VG_CHECK(!"libmosquitto out of memory");
        break;
    default:
        vg_mqtt_count_drop(DROP_REJECTED, msg->cls, 1);
        VG_WARN(MOD, "publish_rejected", "{s:s, s:s, s:s}", "topic", msg->topic, "class",
                class_names[msg->cls], "reason", mosquitto_strerror(rc));
        vg_outbox_msg_free(msg);
        return;
    }
    vg_series_inc(vg_mqtt_metrics.published[msg->cls]);
    if (msg->qos > 0)
        vg_outbox_track(m->outbox, msg, mid);
    else
        vg_outbox_msg_free(msg);
}

/* Moves outbox messages (events first) to libmosquitto while the in-flight window has
 * room. */
void vg_mqtt_pump(vg_mqtt_t *m)
{
    while (m->state == ST_READY && vg_mqtt_inflight_len(m) < VG_MQTT_INFLIGHT_MAX) {
        vg_outbox_msg_t *msg = vg_outbox_pop(m->outbox);
        if (!msg) break;
        vg_mqtt_send(m, msg);
    }
    vg_mqtt_update_gauges(m);
}

static void log_drop(vg_mqtt_t *m, const vg_outbox_msg_t *msg)
{
    size_t limit = vg_outbox_limit(m->outbox);
    if (msg->cls == VG_OUTBOX_EVENT) {
        VG_ERROR(MOD, "event_dropped", "{s:s, s:s, s:i, s:i}", "topic", msg->topic, "reason",
                 "outbox full of events", "outbox_limit", (int)limit, "event_reserve",
                 (int)vg_outbox_event_reserve(m->outbox));
    } else if (msg->cls == VG_OUTBOX_CONTROL) {
        VG_WARN(MOD, "outbox_drop", "{s:s, s:s, s:s, s:i}", "topic", msg->topic, "class", "control",
                "reason", "outbox full of control messages and events", "outbox_limit", (int)limit);
    } else {
        if (!m->overflow_logged)
            VG_WARN(MOD, "outbox_overflow", "{s:i, s:s}", "outbox_limit", (int)limit, "action",
                    "dropping the oldest inference messages");
        m->overflow_logged = true;
        VG_DEBUG(MOD, "outbox_drop", "{s:s, s:s}", "topic", msg->topic, "class", "inference");
    }
}

void vg_mqtt_enqueue(vg_mqtt_t *m, vg_outbox_msg_t *msg)
{
    vg_outbox_evicted_t ev;
    vg_outbox_push(m->outbox, msg, &ev);
    if (ev.superseded) {
        vg_mqtt_count_drop(DROP_SUPERSEDED, ev.superseded->cls, 1);
        VG_DEBUG(MOD, "outbox_superseded", "{s:s}", "topic", ev.superseded->topic);
    }
    if (ev.dropped) {
        vg_mqtt_count_drop(overflow_reason[ev.dropped->cls], ev.dropped->cls, 1);
        log_drop(m, ev.dropped);
    }
    vg_outbox_msg_free(ev.superseded);
    vg_outbox_msg_free(ev.dropped);
    vg_mqtt_update_gauges(m);
}

/* ---- stopping --------------------------------------------------------------------- */

bool vg_mqtt_pending(const vg_mqtt_t *m)
{
    return vg_outbox_len(m->outbox) > 0 || vg_mqtt_inflight_len(m) > 0;
}

void vg_mqtt_finish_stop(vg_mqtt_t *m)
{
    if (m->stopped) return;
    m->stopped = true;
    size_t left = vg_outbox_len(m->outbox) + vg_mqtt_inflight_len(m);
    if (left) {
        VG_WARN(MOD, "stop_dropped", "{s:i, s:i, s:s}", "messages", (int)left, "events",
                (int)vg_mqtt_events_pending(m), "action",
                "closing without DISCONNECT: the broker publishes the will");
        int fd = mosquitto_socket(m->mosq);
        if (fd >= 0) shutdown(fd, SHUT_RDWR);
        vg_mqtt_drop_all(m, DROP_SHUTDOWN);
    }
    vg_mqtt_unwatch(m);
    vg_resolve_release(m->lookup);
    m->lookup = NULL;
    m->state = ST_IDLE;
    evtimer_del(m->ev_retry);
    evtimer_del(m->ev_deadline);
    evtimer_del(m->ev_tick);
    vg_series_set(vg_mqtt_metrics.connected, 0);
    vg_mqtt_update_gauges(m);
    VG_INFO(MOD, "stopped", "{s:b}", "clean", !left);
    event_active(m->ev_stopped, EV_TIMEOUT, 0); /* on_stopped never runs inside libmosquitto */
}

/* Advances a stop: once nothing is pending, DISCONNECT (completed in connection_down). */
void vg_mqtt_check_stop(vg_mqtt_t *m)
{
    if (!m->stopping || m->stopped || m->disconnect_sent) return;
    if (vg_mqtt_pending(m)) {
        if (m->state == ST_IDLE && !evtimer_pending(m->ev_retry, NULL)) {
            struct timeval now = {0, 0};
            evtimer_add(m->ev_retry, &now);
        }
        return;
    }
    if (m->state == ST_READY || m->state == ST_CONNACKED) {
        m->disconnect_sent = true;
        mosquitto_disconnect(m->mosq);
        vg_mqtt_after_io(m);
        return;
    }
    vg_mqtt_finish_stop(m);
}
