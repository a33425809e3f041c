/* mqtt_conn.c — the MQTT client's connection: libmosquitto on the libevent loop.
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

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <mosquitto.h>
#include <string.h>
#include <unistd.h>

#define STABLE_S 10.0 /* a connection that lasted this long resets the backoff */

/* ---- small helpers ---------------------------------------------------------------- */

static double rand01(vg_mqtt_t *m)
{
    m->rng ^= m->rng >> 12; /* xorshift64* */
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return (double)((m->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static const char *rc_text(int rc, int err)
{
    if (rc == MOSQ_ERR_ERRNO) return strerror(err);
    if (rc == MOSQ_ERR_KEEPALIVE) /* "Unknown error." in libmosquitto 2.0 */
        return "keepalive timeout: no answer from the broker";
    return mosquitto_strerror(rc);
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

void vg_mqtt_unwatch(vg_mqtt_t *m)
{
    if (m->ev_read) event_free(m->ev_read);
    if (m->ev_write) event_free(m->ev_write);
    if (m->watch_fd >= 0) close(m->watch_fd);
    m->ev_read = m->ev_write = NULL;
    m->fd = m->watch_fd = -1;
}

/* The events watch a dup of libmosquitto's socket: libmosquitto closes its fd before
 * telling us, and our copy keeps the epoll registration valid until we drop it. */
static void watch(vg_mqtt_t *m)
{
    vg_mqtt_unwatch(m);
    int fd = mosquitto_socket(m->mosq);
    if (fd < 0) return;
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
void vg_mqtt_after_io(vg_mqtt_t *m)
{
    if (m->fd < 0) return;
    if (mosquitto_socket(m->mosq) != m->fd) {
        connection_down(m, MOSQ_ERR_CONN_LOST, "socket closed");
        return;
    }
    if (mosquitto_want_write(m->mosq)) {
        if (!event_pending(m->ev_write, EV_WRITE, NULL)) event_add(m->ev_write, NULL);
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
    vg_mqtt_after_io(m);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    /* While connecting, a TLS handshake may be what waits to write; loop_read drives it
     * (and finds nothing to read otherwise). */
    if (m->state == ST_CONNECTING) mosquitto_loop_read(m->mosq, 1);
    if (m->fd < 0) return;
    int rc = mosquitto_loop_write(m->mosq, 1);
    int err = errno;
    note_rejection(m, rc, err);
    if (rc != MOSQ_ERR_SUCCESS && m->fd >= 0) connection_down(m, rc, rc_text(rc, err));
    vg_mqtt_after_io(m);
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
    if (cap > max) cap = max;
    double delay = cap * rand01(m);
    m->attempt++;
    VG_INFO(MOD, "reconnect_scheduled", "{s:s, s:i, s:i, s:i, s:s}", "host", m->host, "port",
            m->port, "delay_ms", (int)lround(delay * 1000), "attempt", (int)m->attempt, "after",
            m->rejected ? "refused" : "unreachable");
    struct timeval tv = vg_mqtt_tv(delay);
    evtimer_add(m->ev_retry, &tv);
}

static void connect_to(vg_mqtt_t *m, const char *target)
{
    m->state = ST_CONNECTING;
    vg_mqtt_unwatch(m);
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
    vg_mqtt_after_io(m);
}

static void start_attempt(vg_mqtt_t *m)
{
    if (m->stopped || m->state != ST_IDLE) return;
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
    if (m->state != ST_RESOLVING || !m->lookup || vg_resolve_result(m->lookup, &res) != 0) return;
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
        vg_mqtt_after_io(m);
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
    if (m->state == ST_IDLE) return;
    conn_state_t was = m->state;
    m->state = ST_IDLE;
    vg_mqtt_unwatch(m);
    vg_resolve_release(m->lookup);
    m->lookup = NULL;
    vg_series_set(vg_mqtt_metrics.connected, 0);
    if (was == ST_READY || was == ST_CONNACKED) {
        double up = vg_now_mono() - m->connected_at;
        if (up >= STABLE_S) m->attempt = 0;
        vg_log(rc == MOSQ_ERR_SUCCESS ? VG_LOG_INFO : VG_LOG_WARN, MOD, "disconnected",
               "{s:s, s:i, s:s, s:i, s:i, s:i, s:i}", "host", m->host, "port", m->port, "reason",
               rc == MOSQ_ERR_SUCCESS ? "requested" : why, "rc", rc, "up_s", (int)up,
               "unacknowledged", (int)vg_mqtt_inflight_len(m), "outbox",
               (int)vg_outbox_len(m->outbox));
    } else {
        m->addr_index++;
        VG_WARN(MOD, "connect_failed", "{s:s, s:i, s:s, s:i}", "host", m->host, "port", m->port,
                "reason", why, "rc", rc);
    }
    if (m->stopping && (m->disconnect_sent || !vg_mqtt_pending(m))) {
        vg_mqtt_finish_stop(m);
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
        VG_WARN(MOD, "connect_refused", "{s:s, s:i, s:s, s:i}", "host", m->host, "port", m->port,
                "reason", mosquitto_connack_string(rc), "rc", rc);
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
    if (!msg) return;
    vg_outbox_msg_free(msg);
    vg_mqtt_pump(m);
    vg_mqtt_check_stop(m);
}

static void cb_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    vg_mqtt_t *m = obj;
    vg_series_inc(vg_mqtt_metrics.received);
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

void vg_mqtt_send_sub(vg_mqtt_t *m, sub_t *s)
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
    if (m->state != ST_CONNACKED) return;
    m->state = ST_READY;
    m->overflow_logged = false;
    vg_series_set(vg_mqtt_metrics.connected, 1);
    if (m->ever_connected) vg_series_inc(vg_mqtt_metrics.reconnects);
    m->ever_connected = true;
    VG_INFO(MOD, "connected", "{s:s, s:i, s:s, s:b, s:b, s:i, s:i}", "host", m->host, "port",
            m->port, "client_id", m->client_id, "tls", m->tls, "session_present",
            m->session_present, "unacknowledged", (int)vg_mqtt_inflight_len(m), "outbox",
            (int)vg_outbox_len(m->outbox));
    for (sub_t *s = m->subs; s && m->state == ST_READY; s = s->next)
        vg_mqtt_send_sub(m, s);
    vg_mqtt_care_on_connect(m); /* the alarms again, newest value, ahead of the outbox */
    vg_mqtt_pump(m);
    if (m->hooks.on_connect && !m->stopping && m->state == ST_READY)
        m->hooks.on_connect(m->hooks.arg);
    vg_mqtt_check_stop(m);
    vg_mqtt_after_io(m);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    VG_WARN(MOD, "stop_timeout", "{s:i, s:i}", "outbox", (int)vg_outbox_len(m->outbox),
            "unacknowledged", (int)vg_mqtt_inflight_len(m));
    vg_mqtt_finish_stop(m);
}

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_mqtt_t *m = arg;
    if (m->hooks.on_stopped) m->hooks.on_stopped(m->hooks.arg);
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

int vg_mqtt_conn_setup(vg_mqtt_t *m, const vg_mqtt_cfg_t *cfg, const vg_mqtt_hooks_t *hooks)
{
    m->ev_tick = loop_event(m, on_tick, EV_PERSIST);
    m->ev_retry = loop_event(m, on_retry, 0);
    m->ev_ready = loop_event(m, on_ready, 0);
    m->ev_resolved = loop_event(m, on_resolved, 0);
    m->ev_deadline = loop_event(m, on_deadline, 0);
    m->ev_stopped = loop_event(m, on_stopped, 0);
    return setup_mosquitto(m, cfg, hooks);
}
