/* outbox.h — the MQTT client's bounded queue of messages waiting for the broker, and
 * its ledger of messages handed to the broker and not yet acknowledged.
 *
 * Pure data structure, no I/O, no locks: the loop thread owns it (mqtt.c). Messages
 * have a class, ranked inference < control < event. They leave highest class first,
 * in arrival order within a class. A retained message replaces a queued retained
 * message on the same topic (the broker keeps only the latest anyway); the newer one
 * goes to the tail of its class.
 *
 * Room: `limit` messages are shared by every class; events also have `event_reserve`
 * slots of their own that no other class may use. When a message does not fit, the
 * oldest message of the lowest class present, up to the incoming message's own class,
 * is dropped; the incoming message itself when only higher classes are queued. So an
 * inference flood never displaces a control message or an event, and an event is
 * dropped only when the box holds nothing but events. Every push reports what it
 * evicted, so the caller can count and log.
 *
 * Ledger: a message taken with vg_outbox_pop() and handed to the broker is given back
 * with vg_outbox_track(mid); it stays owned by the outbox until vg_outbox_acked(mid).
 * Tracked messages do not count against the limits. */
#ifndef VIGIL_OUTBOX_H
#define VIGIL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vg_outbox vg_outbox_t;

typedef struct vg_outbox_link {
    struct vg_outbox_link *prev, *next;
} vg_outbox_link_t;

/* Ranked: a higher class is sent first and dropped last. */
typedef enum {
    VG_OUTBOX_INFERENCE = 0, /* results, telemetry: the oldest goes first when full */
    VG_OUTBOX_CONTROL,       /* acks, status */
    VG_OUTBOX_EVENT,         /* care events and alarms: dropped only by other events */
    VG_OUTBOX_NCLASS,
} vg_outbox_class_t;

typedef struct {
    char *topic;
    void *payload; /* `len` bytes followed by a NUL */
    size_t len;
    int qos;
    bool retain;
    vg_outbox_class_t cls;
    int mid; /* while tracked: the broker packet id awaiting its ack */
    /* private to outbox.c */
    vg_outbox_link_t all_, ret_;
} vg_outbox_msg_t;

/* What one push evicted. Both messages are the caller's to free. */
typedef struct {
    vg_outbox_msg_t *superseded; /* queued retained message on the same topic, or NULL */
    vg_outbox_msg_t *dropped;    /* dropped to stay within the limits (may be the pushed
                                    one); its `cls` says which class lost a message */
} vg_outbox_evicted_t;

/* Copies topic and payload. Caller frees with vg_outbox_msg_free (NULL is fine). */
vg_outbox_msg_t *vg_outbox_msg_new(const char *topic, const void *payload, size_t len, int qos,
                                   bool retain, vg_outbox_class_t cls);
void vg_outbox_msg_free(vg_outbox_msg_t *msg);

/* `limit` messages of any class plus `event_reserve` for events only; 0 and 0 hold
 * none (every push drops). Caller frees. */
vg_outbox_t *vg_outbox_new(size_t limit, size_t event_reserve);
/* Frees the queued and the tracked messages too; NULL is fine. */
void vg_outbox_free(vg_outbox_t *ob);
/* Changes the reserve; a box already fuller than the new room shrinks on later pushes. */
void vg_outbox_set_event_reserve(vg_outbox_t *ob, size_t event_reserve);

/* Appends msg (takes ownership) and reports in *ev what it evicted. */
void vg_outbox_push(vg_outbox_t *ob, vg_outbox_msg_t *msg, vg_outbox_evicted_t *ev);
/* Removes the next message to send (highest class, oldest); NULL when empty. Caller
 * frees it, or hands it back with vg_outbox_track(). */
vg_outbox_msg_t *vg_outbox_pop(vg_outbox_t *ob);
/* The message vg_outbox_pop() would return, borrowed; NULL when empty. */
const vg_outbox_msg_t *vg_outbox_peek(const vg_outbox_t *ob);

/* Keeps msg (takes ownership) until the broker acknowledges packet id `mid`. */
void vg_outbox_track(vg_outbox_t *ob, vg_outbox_msg_t *msg, int mid);
/* The tracked message with packet id `mid`, removed from the ledger (caller frees), or
 * NULL when none is tracked under that id. */
vg_outbox_msg_t *vg_outbox_acked(vg_outbox_t *ob, int mid);
/* Removes the oldest tracked message (caller frees); NULL when none. For shutdown. */
vg_outbox_msg_t *vg_outbox_untrack(vg_outbox_t *ob);

size_t vg_outbox_len(const vg_outbox_t *ob); /* queued, every class */
size_t vg_outbox_class_len(const vg_outbox_t *ob, vg_outbox_class_t cls);
size_t vg_outbox_tracked_len(const vg_outbox_t *ob);
size_t vg_outbox_tracked_class_len(const vg_outbox_t *ob, vg_outbox_class_t cls);
size_t vg_outbox_limit(const vg_outbox_t *ob);
size_t vg_outbox_event_reserve(const vg_outbox_t *ob);

#endif
