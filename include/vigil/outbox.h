/* outbox.h — the MQTT client's bounded FIFO of messages waiting for the broker.
 *
 * Pure data structure, no I/O, no locks: the loop thread owns it (mqtt.c). Messages
 * leave in the order they came in. A retained message replaces a queued retained
 * message on the same topic (the broker keeps only the latest anyway); the newer one
 * goes to the tail. When full, room is made by dropping, in this order: the oldest
 * droppable message; the incoming message if it is droppable itself; the oldest
 * precious message. Every push reports what it evicted, so the caller can count and
 * log. All operations are O(1) except the retained-topic lookup, which walks only the
 * queued retained messages. */
#ifndef VIGIL_OUTBOX_H
#define VIGIL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vg_outbox vg_outbox_t;

typedef struct vg_outbox_link {
    struct vg_outbox_link *prev, *next;
} vg_outbox_link_t;

typedef struct {
    char *topic;
    void *payload; /* `len` bytes followed by a NUL */
    size_t len;
    int qos;
    bool retain;
    bool precious; /* acks, status: never dropped in favour of a droppable message */
    /* private to outbox.c */
    vg_outbox_link_t all_, kind_, ret_;
} vg_outbox_msg_t;

typedef enum {
    VG_OUTBOX_KEPT = 0,      /* nothing dropped */
    VG_OUTBOX_DROP_DROPPABLE, /* a droppable message (the oldest, or the incoming one) */
    VG_OUTBOX_DROP_PRECIOUS,  /* the oldest precious message: the box held nothing else */
} vg_outbox_drop_t;

/* What one push evicted. Both messages are the caller's to free. */
typedef struct {
    vg_outbox_msg_t *superseded; /* queued retained message on the same topic, or NULL */
    vg_outbox_msg_t *dropped;    /* dropped to stay within the limit (may be the pushed one) */
    vg_outbox_drop_t why;
} vg_outbox_evicted_t;

/* Copies topic and payload. Caller frees with vg_outbox_msg_free (NULL is fine). */
vg_outbox_msg_t *vg_outbox_msg_new(const char *topic, const void *payload, size_t len, int qos,
                                   bool retain, bool precious);
void vg_outbox_msg_free(vg_outbox_msg_t *msg);

/* `limit` is the most messages held; 0 holds none (every push drops). Caller frees. */
vg_outbox_t *vg_outbox_new(size_t limit);
void vg_outbox_free(vg_outbox_t *ob); /* frees the queued messages too; NULL is fine */

/* Appends msg (takes ownership) and reports in *ev what it evicted. */
void vg_outbox_push(vg_outbox_t *ob, vg_outbox_msg_t *msg, vg_outbox_evicted_t *ev);
/* Removes the oldest message; NULL when empty. Caller frees. */
vg_outbox_msg_t *vg_outbox_pop(vg_outbox_t *ob);
/* The oldest message without removing it (borrowed); NULL when empty. */
const vg_outbox_msg_t *vg_outbox_peek(const vg_outbox_t *ob);

size_t vg_outbox_len(const vg_outbox_t *ob);
size_t vg_outbox_limit(const vg_outbox_t *ob);

#endif
