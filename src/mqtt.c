/* mqtt.c — libmosquitto on the libevent loop (see mqtt.h for the delivery rules).
 *
 * Loop thread only; libmosquitto never starts a thread. Per connection attempt: resolve
 * the host off the loop (resolve.c) unless it is numeric, mosquitto_connect_async() to
 * the address (TLS too: the certificate is checked against the name, mqtt_setup.c),
 * then a persistent read event on the socket (-> mosquitto_loop_read), a write event
 * armed only while mosquitto_want_write() (-> mosquitto_loop_write), and a 0.5 s tick
 * for mosquitto_loop_misc() (keepalive) and the connect timeout (one keepalive). The io
 * events watch a dup of each new socket and are dropped with it, so neither libmosquitto
 * closing its fd before telling us nor a reused fd number confuses libevent.
 * libmosquitto callbacks only record state: the CONNACK work (resubscribe, flush the
 * outbox, the owner's on_connect) runs from a separate event, after libmosquitto has
 * queued its re-sends of unacknowledged messages, so the wire order stays the publish
 * order. Reconnects are timer-driven, never started inside a libmosquitto callback. */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/outbox.h"
#include "vigil/resolve.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOD "mqtt"
#define TICK_S 0.5
#define STABLE_S 10.0 /* a connection that lasted this long resets the backoff */
#define MQTT_MAX_PAYLOAD 268435455u

typedef enum { ST_IDLE = 0, ST_RESOLVING, ST_CONNECTING, ST_CONNACKED, ST_READY } conn_state_t;

enum { DROP_OVERFLOW, DROP_CONTROL_OVERFLOW, DROP_EVENT_OVERFLOW, DROP_OFFLINE_QOS0,
       DROP_SUPERSEDED, DROP_REJECTED, DROP_SHUTDOWN, DROP_N };
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
    int fd;       /* libmosquitto's socket while we watch it; -1 for none */
    int watch_fd; /* our dup of it, registered with libevent */
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

static struct {
    vg_series_t *connected, *reconnects, *received, *outbox, *inflight, *events_pending;
    vg_series_t *published[VG_OUTBOX_NCLASS], *dropped[DROP_N], *class_dropped[VG_OUTBOX_NCLASS];
} metrics;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_process(void)
{
    mosquitto_lib_init();
    metrics.connected = vg_metric_series(
        vg_metric_gauge("vigil_mqtt_connected", "1 while connected to the MQTT broker", NULL));
    metrics.reconnects = vg_metric_series(vg_metric_counter(
        "vigil_mqtt_reconnects_total", "MQTT connections re-established after a loss", NULL));
    metrics.received = vg_metric_series(vg_metric_counter(
        "vigil_mqtt_messages_received_total", "MQTT messages received on subscriptions", NULL));
    metrics.outbox = vg_metric_series(vg_metric_gauge(
        "vigil_mqtt_outbox_messages", "MQTT messages waiting in the outbox", NULL));
    metrics.inflight = vg_metric_series(vg_metric_gauge(
        "vigil_mqtt_inflight_messages", "MQTT QoS>0 messages sent and not yet acknowledged",
        NULL));
    vg_metric_t *pub = vg_metric_counter("vigil_mqtt_messages_published_total",
                                         "MQTT messages handed to the broker connection",
                                         "class");
    metrics.events_pending = vg_metric_series(vg_metric_gauge(
        "vigil_mqtt_events_pending",
        "Care events and alarms queued or sent and not yet acknowledged by the broker", NULL));
    vg_metric_t *cdrop = vg_metric_counter(
        "vigil_mqtt_outbox_dropped_by_class_total",
        "MQTT messages that never reached the broker (overflow, offline QoS 0, refused, shutdown)",
        "class");
    for (int i = 0; i < VG_OUTBOX_NCLASS; i++) {
        metrics.published[i] = vg_metric_series(pub, class_names[i]);
        metrics.class_dropped[i] = vg_metric_series(cdrop, class_names[i]);
    }
    vg_metric_t *drop = vg_metric_counter("vigil_mqtt_outbox_dropped_total",
                                          "MQTT messages dropped before reaching the broker",
                                          "reason");
    for (int i = 0; i < DROP_N; i++)
        metrics.dropped[i] = vg_metric_series(drop, drop_names[i]);
}

/* ---- small helpers ---------------------------------------------------------------- */

static double rand01(vg_mqtt_t *m)
{
    m->rng ^= m->rng >> 12; /* xorshift64* */
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return (double)((m->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static struct timeval tv_of(double s)
{
    if (s < 0)
        s = 0;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    return tv;
}

static const char *rc_text(int rc, int err)
{
    if (rc == MOSQ_ERR_ERRNO)
        return strerror(err);
    if (rc == MOSQ_ERR_KEEPALIVE) /* "Unknown error." in libmosquitto 2.0 */
        return "keepalive timeout: no answer from the broker";
    return mosquitto_strerror(rc);
}

static size_t n_inflight(const vg_mqtt_t *m)
{
    return vg_outbox_tracked_len(m->outbox);
}

static size_t events_pending(const vg_mqtt_t *m)
{
    return vg_outbox_class_len(m->outbox, VG_OUTBOX_EVENT) +
           vg_outbox_tracked_class_len(m->outbox, VG_OUTBOX_EVENT);
}

static void update_gauges(const vg_mqtt_t *m)
{
    vg_series_set(metrics.outbox, (double)vg_outbox_len(m->outbox));
    vg_series_set(metrics.inflight, (double)n_inflight(m));
    vg_series_set(metrics.events_pending, (double)events_pending(m));
}

/* n messages of class cls lost for `reason` (superseded ones are not lost: a newer
 * retained value replaced them). */
static void count_drop(int reason, vg_outbox_class_t cls, size_t n)
{
    vg_series_add(metrics.dropped[reason], (double)n);
    if (reason != DROP_SUPERSEDED)
        vg_series_add(metrics.class_dropped[cls], (double)n);
}

/* Frees every queued and tracked message, counting each as dropped for `reason`. */
static size_t drop_all(vg_mqtt_t *m, int reason)
{
    size_t n = 0;
    vg_outbox_msg_t *msg;
    while ((msg = vg_outbox_pop(m->outbox)) || (msg = vg_outbox_untrack(m->outbox))) {
        count_drop(reason, msg->cls, 1);
        if (msg->cls == VG_OUTBOX_EVENT)
            VG_ERROR(MOD, "event_dropped", "{s:s, s:s}", "topic", msg->topic, "reason",
                     drop_names[reason]);
        vg_outbox_msg_free(msg);
        n++;
    }
    return n;
}

/* The broker answered and refused (TLS handshake or verification failed): retrying
 * soon would only repeat the refusal, so the longer backoff cap applies. */
static void note_rejection(vg_mqtt_t *m, int rc, int err)
{
    if (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE ||
        (rc == MOSQ_ERR_ERRNO && err == EPROTO))
        m->rejected = true;
}

/* ---- socket events ---------------------------------------------------------------- */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void connection_down(vg_mqtt_t *m, int rc, const char *why);

static void unwatch(vg_mqtt_t *m)
{
    if (m->ev_read)
        event_free(m->ev_read);
    if (m->ev_write)
        event_free(m->ev_write);
    if (m->watch_fd >= 0)
        close(m->watch_fd);
    m->ev_read = m->ev_write = NULL;
    m->fd = m->watch_fd = -1;
}

/* The events watch a dup of libmosquitto's socket: libmosquitto closes its fd before
 * telling us, and our copy keeps the epoll registration valid until we drop it. */
static void watch(vg_mqtt_t *m)
{
    unwatch(m);
    int fd = mosquitto_socket(m->mosq);
    if (fd < 0)
        return;
    m->watch_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    VG_CHECK(m->watch_fd >= 0);
    m->ev_read = event_new(m->base, m->watch_fd, EV_READ | EV_PERSIST, on_read, m);
    m->ev_write = event_new(m->base, m->watch_fd, EV_WRITE | EV_PERSIST, on_write, m);
    VG_CHECK(m->ev_read && m->ev_write);
    event_add(m->ev_read, NULL);
    m->fd = fd;
}

/* After every call into libmosquitto: notice a socket that went away without a
 * callback, and arm the write event exactly while there is something to write. */
static void after_io(vg_mqtt_t *m)
{
    if (m->fd < 0)
        return;
    if (mosquitto_socket(m->mosq) != m->fd) {
        connection_down(m, MOSQ_ERR_CONN_LOST, "socket closed");
        return;
    }
    if (mosquitto_want_write(m->mosq)) {
        if (!event_pending(m->ev_write, EV_WRITE, NULL))
            event_add(m->ev_write, NULL);
    } else {
        event_del(m->ev_write);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    int rc = mosquitto_loop_read(m->mosq, 1);
    int err = errno;
    note_rejection(m, rc, err);
    if (rc != MOSQ_ERR_SUCCESS && m->fd >= 0) /* an error the library did not report */
        connection_down(m, rc, rc_text(rc, err));
    after_io(m);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    /* While connecting, a TLS handshake may be what waits to write; loop_read drives it
     * (and finds nothing to read otherwise). */
    if (m->state == ST_CONNECTING)
        mosquitto_loop_read(m->mosq, 1);
    if (m->fd < 0)
        return;
    int rc = mosquitto_loop_write(m->mosq, 1);
    int err = errno;
    note_rejection(m, rc, err);
    if (rc != MOSQ_ERR_SUCCESS && m->fd >= 0)
        connection_down(m, rc, rc_text(rc, err));
    after_io(m);
}

/* ---- sending ---------------------------------------------------------------------- */

/* Hands msg (taken) to libmosquitto. A QoS>0 message stays in the outbox's ledger
 * until its PUBACK/PUBCOMP (cb_publish). Only while ST_READY. */
static void send_msg(vg_mqtt_t *m, vg_outbox_msg_t *msg)
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
            count_drop(DROP_OFFLINE_QOS0, msg->cls, 1);
            vg_outbox_msg_free(msg);
            return;
        }
        break;
    case MOSQ_ERR_NOMEM:
        VG_CHECK(!"libmosquitto out of memory");
        break;
    default:
        count_drop(DROP_REJECTED, msg->cls, 1);
        VG_WARN(MOD, "publish_rejected", "{s:s, s:s, s:s}", "topic", msg->topic, "class",
                class_names[msg->cls], "reason", mosquitto_strerror(rc));
        vg_outbox_msg_free(msg);
        return;
    }
    vg_series_inc(metrics.published[msg->cls]);
    if (msg->qos > 0)
        vg_outbox_track(m->outbox, msg, mid);
    else
        vg_outbox_msg_free(msg);
}

/* Moves outbox messages (events first) to libmosquitto while the in-flight window has
 * room. */
static void pump(vg_mqtt_t *m)
{
    while (m->state == ST_READY && n_inflight(m) < VG_MQTT_INFLIGHT_MAX) {
        vg_outbox_msg_t *msg = vg_outbox_pop(m->outbox);
        if (!msg)
            break;
        send_msg(m, msg);
    }
    update_gauges(m);
}

static void log_drop(vg_mqtt_t *m, const vg_outbox_msg_t *msg)
{
    size_t limit = vg_outbox_limit(m->outbox);
    if (msg->cls == VG_OUTBOX_EVENT) {
        VG_ERROR(MOD, "event_dropped", "{s:s, s:s, s:i, s:i}", "topic", msg->topic, "reason",
                 "outbox full of events", "outbox_limit", (int)limit, "event_reserve",
                 (int)vg_outbox_event_reserve(m->outbox));
    } else if (msg->cls == VG_OUTBOX_CONTROL) {
        VG_WARN(MOD, "outbox_drop", "{s:s, s:s, s:s, s:i}", "topic", msg->topic, "class",
                "control", "reason", "outbox full of control messages and events",
                "outbox_limit", (int)limit);
    } else {
        if (!m->overflow_logged)
            VG_WARN(MOD, "outbox_overflow", "{s:i, s:s}", "outbox_limit", (int)limit, "action",
                    "dropping the oldest inference messages");
        m->overflow_logged = true;
        VG_DEBUG(MOD, "outbox_drop", "{s:s, s:s}", "topic", msg->topic, "class", "inference");
    }
}

static void enqueue(vg_mqtt_t *m, vg_outbox_msg_t *msg)
{
    vg_outbox_evicted_t ev;
    vg_outbox_push(m->outbox, msg, &ev);
    if (ev.superseded) {
        count_drop(DROP_SUPERSEDED, ev.superseded->cls, 1);
        VG_DEBUG(MOD, "outbox_superseded", "{s:s}", "topic", ev.superseded->topic);
    }
    if (ev.dropped) {
        count_drop(overflow_reason[ev.dropped->cls], ev.dropped->cls, 1);
        log_drop(m, ev.dropped);
    }
    vg_outbox_msg_free(ev.superseded);
    vg_outbox_msg_free(ev.dropped);
    update_gauges(m);
}

/* ---- stopping --------------------------------------------------------------------- */

static bool pending(const vg_mqtt_t *m)
{
    return vg_outbox_len(m->outbox) > 0 || n_inflight(m) > 0;
}

static void finish_stop(vg_mqtt_t *m)
{
    if (m->stopped)
        return;
    m->stopped = true;
    size_t left = vg_outbox_len(m->outbox) + n_inflight(m);
    if (left) {
        VG_WARN(MOD, "stop_dropped", "{s:i, s:i, s:s}", "messages", (int)left, "events",
                (int)events_pending(m), "action",
                "closing without DISCONNECT: the broker publishes the will");
        int fd = mosquitto_socket(m->mosq);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        drop_all(m, DROP_SHUTDOWN);
    }
    unwatch(m);
    vg_resolve_release(m->lookup);
    m->lookup = NULL;
    m->state = ST_IDLE;
    evtimer_del(m->ev_retry);
    evtimer_del(m->ev_deadline);
    evtimer_del(m->ev_tick);
    vg_series_set(metrics.connected, 0);
    update_gauges(m);
    VG_INFO(MOD, "stopped", "{s:b}", "clean", !left);
    event_active(m->ev_stopped, EV_TIMEOUT, 0); /* on_stopped never runs inside libmosquitto */
}

/* Advances a stop: once nothing is pending, DISCONNECT (completed in connection_down). */
static void check_stop(vg_mqtt_t *m)
{
    if (!m->stopping || m->stopped || m->disconnect_sent)
        return;
    if (pending(m)) {
        if (m->state == ST_IDLE && !evtimer_pending(m->ev_retry, NULL)) {
            struct timeval now = {0, 0};
            evtimer_add(m->ev_retry, &now);
        }
        return;
    }
    if (m->state == ST_READY || m->state == ST_CONNACKED) {
        m->disconnect_sent = true;
        mosquitto_disconnect(m->mosq);
        after_io(m);
        return;
    }
    finish_stop(m);
}

/* ---- connecting ------------------------------------------------------------------- */

/* Full jitter under a cap that doubles per attempt. The cap stops at probe_max_s while
 * the broker is unreachable (a returning broker is found within a few seconds, so what
 * waits in the outbox goes out soon after it is back) and at refused_max_s after the
 * broker refused us (bad credentials or certificates are not hammered). */
static void schedule_retry(vg_mqtt_t *m)
{
    double max = m->rejected ? m->refused_max_s : m->probe_max_s;
    double cap = m->backoff_initial_s * pow(2.0, m->attempt < 30 ? m->attempt : 30);
    if (cap > max)
        cap = max;
    double delay = cap * rand01(m);
    m->attempt++;
    VG_INFO(MOD, "reconnect_scheduled", "{s:s, s:i, s:i, s:i, s:s}", "host", m->host, "port",
            m->port, "delay_ms", (int)lround(delay * 1000), "attempt", (int)m->attempt, "after",
            m->rejected ? "refused" : "unreachable");
    struct timeval tv = tv_of(delay);
    evtimer_add(m->ev_retry, &tv);
}

static void connect_to(vg_mqtt_t *m, const char *target)
{
    m->state = ST_CONNECTING;
    unwatch(m);
    VG_DEBUG(MOD, "connecting", "{s:s, s:i, s:s}", "host", m->host, "port", m->port, "address",
             target);
    int rc = mosquitto_connect_async(m->mosq, target, m->port, m->keepalive_s);
    int err = errno;
    note_rejection(m, rc, err);
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_down(m, rc, rc_text(rc, err));
        return;
    }
    watch(m);
    after_io(m);
}

static void start_attempt(vg_mqtt_t *m)
{
    if (m->stopped || m->state != ST_IDLE)
        return;
    m->attempt_started = vg_now_mono();
    m->rejected = false;
    if (m->host_numeric) {
        connect_to(m, m->host);
        return;
    }
    m->state = ST_RESOLVING;
    m->lookup = vg_resolve_start(m->host, m->ev_resolved);
}

static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    vg_resolve_result_t res;
    if (m->state != ST_RESOLVING || !m->lookup || vg_resolve_result(m->lookup, &res) != 0)
        return;
    vg_resolve_release(m->lookup);
    m->lookup = NULL;
    if (res.error) {
        connection_down(m, MOSQ_ERR_EAI, res.error);
        return;
    }
    /* by address, even with TLS: the certificate is verified against the configured
     * name, which is also sent as SNI (mqtt_setup.c), so libmosquitto never resolves */
    connect_to(m, res.addr[m->addr_index % res.n]);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_attempt(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    if (m->fd >= 0) {
        mosquitto_loop_misc(m->mosq);
        after_io(m);
    }
    /* no CONNACK within a keepalive interval: as dead as a missed ping */
    if ((m->state == ST_RESOLVING || m->state == ST_CONNECTING) &&
        vg_now_mono() - m->attempt_started > m->keepalive_s)
        connection_down(m, MOSQ_ERR_TIMEOUT, "connect timed out");
}

/* The one place a connection (or an attempt) ends. Safe inside libmosquitto callbacks:
 * it only drops our events and arms a timer. */
static void connection_down(vg_mqtt_t *m, int rc, const char *why)
{
    if (m->state == ST_IDLE)
        return;
    conn_state_t was = m->state;
    m->state = ST_IDLE;
    unwatch(m);
    vg_resolve_release(m->lookup);
    m->lookup = NULL;
    vg_series_set(metrics.connected, 0);
    if (was == ST_READY || was == ST_CONNACKED) {
        double up = vg_now_mono() - m->connected_at;
        if (up >= STABLE_S)
            m->attempt = 0;
        vg_log(rc == MOSQ_ERR_SUCCESS ? VG_LOG_INFO : VG_LOG_WARN, MOD, "disconnected",
               "{s:s, s:i, s:s, s:i, s:i, s:i, s:i}", "host", m->host, "port", m->port, "reason",
               rc == MOSQ_ERR_SUCCESS ? "requested" : why, "rc", rc, "up_s", (int)up,
               "unacknowledged", (int)n_inflight(m), "outbox",
               (int)vg_outbox_len(m->outbox));
    } else {
        m->addr_index++;
        VG_WARN(MOD, "connect_failed", "{s:s, s:i, s:s, s:i}", "host", m->host, "port", m->port,
                "reason", why, "rc", rc);
    }
    if (m->stopping && (m->disconnect_sent || !pending(m))) {
        finish_stop(m);
        return;
    }
    schedule_retry(m);
}

/* ---- libmosquitto callbacks ------------------------------------------------------- */

static void cb_connect(struct mosquitto *mosq, void *obj, int rc, int flags)
{
    (void)mosq;
    vg_mqtt_t *m = obj;
    if (rc != 0) { /* a failing loop_read and on_disconnect follow */
        m->rejected = true;
        VG_WARN(MOD, "connect_refused", "{s:s, s:i, s:s, s:i}", "host", m->host, "port",
                m->port, "reason", mosquitto_connack_string(rc), "rc", rc);
        return;
    }
    m->state = ST_CONNACKED;
    m->connected_at = vg_now_mono();
    m->session_present = flags & 1;
    event_active(m->ev_ready, EV_TIMEOUT, 0);
}

static void cb_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    int err = errno;
    vg_mqtt_t *m = obj;
    note_rejection(m, rc, err);
    connection_down(m, rc, rc_text(rc, err));
}

static void cb_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    vg_mqtt_t *m = obj;
    vg_outbox_msg_t *msg = vg_outbox_acked(m->outbox, mid);
    if (!msg)
        return;
    vg_outbox_msg_free(msg);
    pump(m);
    check_stop(m);
}

static void cb_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    vg_mqtt_t *m = obj;
    vg_series_inc(metrics.received);
    if (m->hooks.on_message)
        m->hooks.on_message(m->hooks.arg, msg->topic, msg->payload ? msg->payload : "",
                            msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
}

static void cb_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    (void)mosq;
    vg_mqtt_t *m = obj;
    for (sub_t *s = m->subs; s; s = s->next)
        if (s->mid == mid && n > 0 && granted[0] == 0x80)
            VG_WARN(MOD, "subscribe_refused", "{s:s, s:i}", "topic", s->pattern, "qos", s->qos);
}

/* libmosquitto's errors (TLS verification details, ...) as warnings, the rest as debug.
 * It never logs credentials. */
static void cb_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
    (void)mosq;
    (void)obj;
    if (level & MOSQ_LOG_ERR)
        VG_WARN(MOD, "library_error", "{s:s}", "text", text);
    else if (vg_log_enabled(VG_LOG_DEBUG))
        VG_DEBUG(MOD, "library", "{s:i, s:s}", "mosq_level", level, "text", text);
}

/* ---- connected -------------------------------------------------------------------- */

static void send_sub(vg_mqtt_t *m, sub_t *s)
{
    int rc = mosquitto_subscribe(m->mosq, &s->mid, s->pattern, s->qos);
    if (rc == MOSQ_ERR_SUCCESS)
        VG_INFO(MOD, "subscribe", "{s:s, s:i}", "topic", s->pattern, "qos", s->qos);
    else
        VG_WARN(MOD, "subscribe_failed", "{s:s, s:s}", "topic", s->pattern, "reason",
                mosquitto_strerror(rc));
}

/* Runs after the CONNACK callback returned, i.e. after libmosquitto queued the re-sends. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    if (m->state != ST_CONNACKED)
        return;
    m->state = ST_READY;
    m->overflow_logged = false;
    vg_series_set(metrics.connected, 1);
    if (m->ever_connected)
        vg_series_inc(metrics.reconnects);
    m->ever_connected = true;
    VG_INFO(MOD, "connected", "{s:s, s:i, s:s, s:b, s:b, s:i, s:i}", "host", m->host, "port",
            m->port, "client_id", m->client_id, "tls", m->tls, "session_present",
            m->session_present, "unacknowledged", (int)n_inflight(m), "outbox",
            (int)vg_outbox_len(m->outbox));
    for (sub_t *s = m->subs; s && m->state == ST_READY; s = s->next)
        send_sub(m, s);
    vg_mqtt_care_on_connect(m); /* the alarms again, newest value, ahead of the outbox */
    pump(m);
    if (m->hooks.on_connect && !m->stopping && m->state == ST_READY)
        m->hooks.on_connect(m->hooks.arg);
    check_stop(m);
    after_io(m);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    VG_WARN(MOD, "stop_timeout", "{s:i, s:i}", "outbox", (int)vg_outbox_len(m->outbox),
            "unacknowledged", (int)n_inflight(m));
    finish_stop(m);
}

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    if (m->hooks.on_stopped)
        m->hooks.on_stopped(m->hooks.arg);
}

/* ---- construction ----------------------------------------------------------------- */

static int setup_mosquitto(vg_mqtt_t *m, const vg_mqtt_cfg_t *cfg, const vg_mqtt_hooks_t *h)
{
    /* clean_session = false: the broker and libmosquitto keep the session, so messages
     * sent but not acknowledged are re-sent after a reconnect */
    m->mosq = mosquitto_new(m->client_id, false, m);
    if (!m->mosq) {
        VG_ERROR(MOD, "bad_config", "{s:s, s:s}", "reason", "mosquitto_new failed", "error",
                 strerror(errno));
        return VG_EINVAL;
    }
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, VG_MQTT_INFLIGHT_MAX);
    mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_with_flags_callback_set(m->mosq, cb_connect);
    mosquitto_disconnect_callback_set(m->mosq, cb_disconnect);
    mosquitto_publish_callback_set(m->mosq, cb_publish);
    mosquitto_message_callback_set(m->mosq, cb_message);
    mosquitto_subscribe_callback_set(m->mosq, cb_subscribe);
    mosquitto_log_callback_set(m->mosq, cb_log);
    return vg_mqtt_setup_session(m->mosq, cfg, m->host, h, &m->tls);
}

static struct event *loop_event(vg_mqtt_t *m, event_callback_fn fn, short flags)
{
    struct event *ev = event_new(m->base, -1, flags, fn, m);
    VG_CHECK(ev);
    return ev;
}

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
    m->ev_tick = loop_event(m, on_tick, EV_PERSIST);
    m->ev_retry = loop_event(m, on_retry, 0);
    m->ev_ready = loop_event(m, on_ready, 0);
    m->ev_resolved = loop_event(m, on_resolved, 0);
    m->ev_deadline = loop_event(m, on_deadline, 0);
    m->ev_stopped = loop_event(m, on_stopped, 0);
    int rc = setup_mosquitto(m, cfg, hooks);
    if (rc != VG_OK) {
        vg_mqtt_free(m);
        return rc;
    }
    struct timeval tick = tv_of(TICK_S), now = {0, 0};
    evtimer_add(m->ev_tick, &tick);
    evtimer_add(m->ev_retry, &now);
    update_gauges(m);
    *out = m;
    return VG_OK;
}

/* ---- public operations ------------------------------------------------------------ */

void vg_mqtt_set_backoff(vg_mqtt_t *m, double initial_s, double probe_max_s,
                         double refused_max_s)
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
        send_sub(m, s);
        after_io(m);
    }
    return VG_OK;
}

int vg_mqtt_unsubscribe(vg_mqtt_t *m, const char *pattern)
{
    for (sub_t **pp = &m->subs; *pp; pp = &(*pp)->next) {
        sub_t *s = *pp;
        if (strcmp(s->pattern, pattern) != 0)
            continue;
        *pp = s->next;
        if (m->state == ST_READY) {
            mosquitto_unsubscribe(m->mosq, NULL, s->pattern);
            VG_INFO(MOD, "unsubscribe", "{s:s}", "topic", s->pattern);
            after_io(m);
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
        (unsigned)cls >= VG_OUTBOX_NCLASS ||
        mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS)
        return VG_EINVAL;
    if (m->stopping)
        return VG_EBUSY;
    if (qos == 0 && m->state != ST_READY) {
        count_drop(DROP_OFFLINE_QOS0, (vg_outbox_class_t)cls, 1);
        return VG_OK;
    }
    vg_outbox_msg_t *msg =
        vg_outbox_msg_new(topic, payload, len, qos, retain, (vg_outbox_class_t)cls);
    if (qos == 0 || (m->state == ST_READY && vg_outbox_len(m->outbox) == 0 &&
                     n_inflight(m) < VG_MQTT_INFLIGHT_MAX)) {
        send_msg(m, msg);
        update_gauges(m);
    } else {
        enqueue(m, msg);
    }
    after_io(m);
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

size_t vg_mqtt_inflight_len(const vg_mqtt_t *m)
{
    return n_inflight(m);
}

size_t vg_mqtt_events_pending(const vg_mqtt_t *m)
{
    return events_pending(m);
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
    if (m->stopping)
        return;
    m->stopping = true;
    VG_INFO(MOD, "stopping", "{s:i, s:i, s:f}", "outbox", (int)vg_outbox_len(m->outbox),
            "unacknowledged", (int)n_inflight(m), "timeout_s", timeout_s);
    struct timeval tv = tv_of(timeout_s);
    evtimer_add(m->ev_deadline, &tv);
    if (m->state == ST_IDLE && pending(m)) { /* try at once rather than after the backoff */
        struct timeval now = {0, 0};
        evtimer_add(m->ev_retry, &now);
    }
    check_stop(m);
}

void vg_mqtt_free(vg_mqtt_t *m)
{
    if (!m)
        return;
    size_t left = vg_outbox_len(m->outbox) + n_inflight(m);
    if (left && !m->stopped) {
        VG_WARN(MOD, "free_dropped", "{s:i, s:i}", "messages", (int)left, "events",
                (int)events_pending(m));
        drop_all(m, DROP_SHUTDOWN);
    }
    unwatch(m);
    vg_resolve_release(m->lookup);
    struct event *evs[] = {m->ev_tick, m->ev_retry, m->ev_ready, m->ev_resolved, m->ev_deadline,
                           m->ev_stopped};
    for (size_t i = 0; i < VG_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (m->mosq)
        mosquitto_destroy(m->mosq); /* closes without DISCONNECT: the will goes out */
    vg_outbox_free(m->outbox);
    vg_mqtt_care_free(&m->care);
    while (m->subs) {
        sub_t *s = m->subs;
        m->subs = s->next;
        free(s->pattern);
        free(s);
    }
    vg_series_set(metrics.connected, 0);
    vg_series_set(metrics.outbox, 0);
    vg_series_set(metrics.inflight, 0);
    vg_series_set(metrics.events_pending, 0);
    free(m->host);
    free(m->client_id);
    free(m->will_topic);
    free(m);
}
