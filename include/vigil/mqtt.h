/* mqtt.h — the MQTT client: libmosquitto driven by the libevent loop (no library
 * thread), reconnect with exponential backoff and full jitter, last will, remembered
 * subscriptions, and a bounded outbox for messages the broker has not taken yet.
 *
 * Everything here runs on the loop thread, hooks included. Delivery rules:
 * - QoS 0 is sent when connected and dropped (counted) otherwise.
 * - QoS 1/2 goes to libmosquitto while connected and fewer than VG_MQTT_INFLIGHT_MAX
 *   messages await their PUBACK/PUBCOMP; otherwise it waits in the outbox and is sent
 *   after the unacknowledged ones: events first, then control, then inference, each
 *   class in order (outbox.h). The outbox holds `outbox_limit` messages of any class
 *   plus VG_MQTT_EVENT_RESERVE for events only. When full it drops the oldest message
 *   of the lowest class: an inference message first; a control message only when
 *   nothing but control messages and events is queued (warning); an event only when
 *   nothing but events is (error log, vigil_mqtt_outbox_dropped_by_class_total
 *   {class="event"}). A retained message replaces a queued retained message on the
 *   same topic.
 * - Unacknowledged messages survive a lost connection: the outbox keeps each QoS>0
 *   message until its ack (on_publish), and the client connects with clean_session =
 *   false and a stable client_id, so libmosquitto re-sends them with their packet ids
 *   (MQTT 3.1.1 §4.4) right after the next CONNACK, before the outbox is flushed. Only
 *   a stop that times out (or vg_mqtt_free) gives them up, counted as dropped.
 * - The session is persistent: the broker also keeps our subscriptions and queues
 *   QoS>0 messages for us while we are away (they arrive after reconnecting; the
 *   control module must treat commands as possibly late). Subscriptions are still
 *   re-sent after every connect, so a broker that lost its state is covered.
 *
 * Host names are resolved on a short-lived thread, never on the loop; the result is
 * handed back with event_active(), so the base must have been created after
 * evthread_use_pthreads(). The client then connects to the address, TLS included:
 * the broker's certificate is verified against the configured name (OpenSSL's host
 * check) and the name is sent as SNI, so libmosquitto never resolves anything.
 *
 * Metrics: vigil_mqtt_connected, vigil_mqtt_reconnects_total,
 * vigil_mqtt_messages_published_total{class}, vigil_mqtt_messages_received_total,
 * vigil_mqtt_outbox_messages, vigil_mqtt_inflight_messages, vigil_mqtt_events_pending,
 * vigil_mqtt_outbox_dropped_total{reason}, vigil_mqtt_outbox_dropped_by_class_total{class}.
 * Logs: module "mqtt". */
#ifndef VIGIL_MQTT_H
#define VIGIL_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/config.h"

struct event_base;

typedef struct vg_mqtt vg_mqtt_t;

/* QoS>0 messages handed to libmosquitto and not yet acknowledged, at most. */
#define VG_MQTT_INFLIGHT_MAX 20

/* Outbox slots only events may use, on top of outbox_limit (default). */
#define VG_MQTT_EVENT_RESERVE 1000

/* Ranked as the outbox classes (outbox.h): higher goes first and is dropped last. */
typedef enum {
    VG_MQTT_INFERENCE = 0, /* droppable: the oldest goes first when the outbox is full */
    VG_MQTT_CONTROL,       /* acks, status: dropped only when only these and events are queued */
    VG_MQTT_EVENT,         /* care events, alarms: dropped only by newer events */
} vg_mqtt_class_t;

typedef struct {
    /* After every successful (re)connect, once the remembered subscriptions were re-sent
     * and the outbox handed over: republish retained state here. May be NULL. */
    void (*on_connect)(void *arg);
    /* A message on a subscribed topic. topic and payload are borrowed for the call;
     * payload holds len bytes (any size, not validated) followed by a NUL. */
    void (*on_message)(void *arg, const char *topic, const void *payload, size_t len);
    /* vg_mqtt_stop() finished (everything acknowledged, or the time ran out). */
    void (*on_stopped)(void *arg);
    /* Last will, published by the broker (retained, QoS 1) if we vanish without a
     * DISCONNECT. Copied; NULL topic for none. */
    const char *will_topic;
    const char *will_payload;
    void *arg;
} vg_mqtt_hooks_t;

/* Creates the client and starts connecting (first attempt as soon as the loop runs).
 * cfg and hooks are copied; the password is read from cfg->password_file now and never
 * logged. Returns 0, VG_EINVAL (bad settings: logged) or VG_EIO (unreadable password
 * file). cfg->enabled is not looked at: the owner decides whether to create one. */
int vg_mqtt_new(struct event_base *base, const vg_mqtt_cfg_t *cfg, const vg_mqtt_hooks_t *hooks,
                vg_mqtt_t **out);

/* A broker that cannot be reached is probed at most this far apart (default), so
 * queued messages go out within a few seconds of its return. */
#define VG_MQTT_PROBE_MAX_S 3.0

/* Reconnect delay: uniform in [0, min(max, initial_s * 2^n)] for the n-th attempt in a
 * row; n restarts after a connection stayed up 10 s. max is probe_max_s while the
 * broker is unreachable (refused TCP, DNS failure, timeout, lost connection) and
 * refused_max_s after it answered no (CONNACK refusal, TLS failure). Defaults 0.5 s,
 * VG_MQTT_PROBE_MAX_S and 30 s. */
void vg_mqtt_set_backoff(vg_mqtt_t *m, double initial_s, double probe_max_s, double refused_max_s);

/* Remembers a subscription and sends it now if connected; it is re-sent after every
 * connect. Subscribing to a known pattern again changes its QoS. 0 or VG_EINVAL. */
int vg_mqtt_subscribe(vg_mqtt_t *m, const char *pattern, int qos);
/* Forgets a subscription (and unsubscribes if connected). 0 or VG_ENOTFOUND. */
int vg_mqtt_unsubscribe(vg_mqtt_t *m, const char *pattern);

/* Publishes, queues or drops-and-counts `len` bytes of payload (copied) as described
 * above. Returns 0 when the message was taken (sent, queued or counted as dropped);
 * VG_EINVAL for a bad topic, QoS or size; VG_EBUSY once vg_mqtt_stop() was called. */
int vg_mqtt_publish(vg_mqtt_t *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain, vg_mqtt_class_t cls);

/* ---- care events ------------------------------------------------------------------
 * Topics: {topic_prefix}/events/{instance_id}/{stream_id} (one message per event phase,
 * QoS 1, not retained) and {topic_prefix}/alarms/{instance_id} (retained, QoS 1). Both
 * go as VG_MQTT_EVENT: first out of the outbox, never dropped for other messages, kept
 * until the broker's PUBACK across lost connections. */

/* Names the event topics; call once after vg_mqtt_new. Strings are copied. 0, or
 * VG_EINVAL for an empty or wildcard prefix or instance id. */
int vg_mqtt_set_instance(vg_mqtt_t *m, const char *topic_prefix, const char *instance_id);
/* Publishes one event payload (`json`, a JSON object, borrowed) for stream_id. 0 when
 * taken; VG_EINVAL (no instance set, bad stream id, not a JSON object); VG_EBUSY once
 * stopping. */
int vg_mqtt_publish_event(vg_mqtt_t *m, const char *stream_id, const char *json);
/* Sets the retained alarms (`json`, a JSON array, borrowed): published now, or as soon
 * as the broker is back, and again after every reconnect (a broker that lost its
 * retained messages gets them back). Only the newest value is ever queued, so the
 * newest value wins. 0, VG_EINVAL or VG_EBUSY as above. */
int vg_mqtt_set_alarms(vg_mqtt_t *m, const char *json);

/* Outbox slots only events may use (default VG_MQTT_EVENT_RESERVE). */
void vg_mqtt_set_event_reserve(vg_mqtt_t *m, size_t n);

bool vg_mqtt_connected(const vg_mqtt_t *m); /* CONNACK received and not lost since */
size_t vg_mqtt_outbox_len(const vg_mqtt_t *m);
size_t vg_mqtt_inflight_len(const vg_mqtt_t *m);   /* handed over, not yet acknowledged */
size_t vg_mqtt_events_pending(const vg_mqtt_t *m); /* events queued or unacknowledged */

/* Graceful stop: refuses new publishes, hands over the outbox (reconnecting at once if
 * needed), waits for every acknowledgement, then sends DISCONNECT (the broker drops
 * the will) and calls hooks.on_stopped. A final message ("offline" status) is simply
 * published just before calling this. If timeout_s passes first, what is left is
 * counted as dropped{reason="shutdown"} and the connection is cut without DISCONNECT,
 * so the broker publishes the will instead. Calling it again does nothing. */
void vg_mqtt_stop(vg_mqtt_t *m, double timeout_s);

/* Frees at once (no DISCONNECT: the broker publishes the will); anything not yet
 * acknowledged counts as dropped{reason="shutdown"}. NULL is fine. Allowed in on_stopped,
 * not inside on_connect or on_message. */
void vg_mqtt_free(vg_mqtt_t *m);

#endif
