/* outbox.c — bounded FIFO of MQTT messages with a drop policy (see outbox.h).
 *
 * Each message sits on up to three circular lists with sentinels: `all` (arrival
 * order), its kind's list (droppable or precious, arrival order: the head is the one
 * to drop first) and, when retained, the `retained` list used to find a queued
 * message on the same topic. Single-threaded: the loop thread owns every outbox. */
#include "vigil/outbox.h"
#include "vigil/common.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct vg_outbox {
    vg_outbox_link_t all, droppable, precious, retained;
    size_t len, limit;
};

#define MSG_OF(link, member)                                                               \
    ((vg_outbox_msg_t *)(void *)((char *)(link) - offsetof(vg_outbox_msg_t, member)))

static void list_init(vg_outbox_link_t *head)
{
    head->prev = head->next = head;
}

static bool list_empty(const vg_outbox_link_t *head)
{
    return head->next == head;
}

static void list_append(vg_outbox_link_t *head, vg_outbox_link_t *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void list_unlink(vg_outbox_link_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

vg_outbox_msg_t *vg_outbox_msg_new(const char *topic, const void *payload, size_t len, int qos,
                                   bool retain, bool precious)
{
    vg_outbox_msg_t *msg = vg_xcalloc(1, sizeof(*msg));
    msg->topic = vg_xstrdup(topic);
    msg->payload = vg_xmalloc(len + 1);
    if (len)
        memcpy(msg->payload, payload, len);
    ((char *)msg->payload)[len] = '\0';
    msg->len = len;
    msg->qos = qos;
    msg->retain = retain;
    msg->precious = precious;
    list_init(&msg->all_);
    list_init(&msg->kind_);
    list_init(&msg->ret_);
    return msg;
}

void vg_outbox_msg_free(vg_outbox_msg_t *msg)
{
    if (!msg)
        return;
    free(msg->topic);
    free(msg->payload);
    free(msg);
}

vg_outbox_t *vg_outbox_new(size_t limit)
{
    vg_outbox_t *ob = vg_xcalloc(1, sizeof(*ob));
    list_init(&ob->all);
    list_init(&ob->droppable);
    list_init(&ob->precious);
    list_init(&ob->retained);
    ob->limit = limit;
    return ob;
}

void vg_outbox_free(vg_outbox_t *ob)
{
    if (!ob)
        return;
    vg_outbox_msg_t *msg;
    while ((msg = vg_outbox_pop(ob)))
        vg_outbox_msg_free(msg);
    free(ob);
}

/* Takes msg off every list it is on. */
static void detach(vg_outbox_t *ob, vg_outbox_msg_t *msg)
{
    list_unlink(&msg->all_);
    list_unlink(&msg->kind_);
    list_unlink(&msg->ret_);
    ob->len--;
}

static vg_outbox_msg_t *find_retained(vg_outbox_t *ob, const char *topic)
{
    for (vg_outbox_link_t *l = ob->retained.next; l != &ob->retained; l = l->next) {
        vg_outbox_msg_t *q = MSG_OF(l, ret_);
        if (strcmp(q->topic, topic) == 0)
            return q;
    }
    return NULL;
}

/* Picks the message to drop so that `incoming` fits; NULL when there is room. */
static vg_outbox_msg_t *pick_victim(vg_outbox_t *ob, vg_outbox_msg_t *incoming,
                                    vg_outbox_drop_t *why)
{
    if (ob->len < ob->limit)
        return NULL;
    if (!list_empty(&ob->droppable)) {
        *why = VG_OUTBOX_DROP_DROPPABLE;
        return MSG_OF(ob->droppable.next, kind_);
    }
    if (!incoming->precious || list_empty(&ob->precious)) {
        *why = incoming->precious ? VG_OUTBOX_DROP_PRECIOUS : VG_OUTBOX_DROP_DROPPABLE;
        return incoming; /* limit 0, or nothing queued that ranks below it */
    }
    *why = VG_OUTBOX_DROP_PRECIOUS;
    return MSG_OF(ob->precious.next, kind_);
}

void vg_outbox_push(vg_outbox_t *ob, vg_outbox_msg_t *msg, vg_outbox_evicted_t *ev)
{
    *ev = (vg_outbox_evicted_t){0};
    if (msg->retain) {
        vg_outbox_msg_t *old = find_retained(ob, msg->topic);
        if (old) {
            detach(ob, old);
            ev->superseded = old;
        }
    }
    vg_outbox_msg_t *victim = pick_victim(ob, msg, &ev->why);
    if (victim == msg) {
        ev->dropped = msg;
        return;
    }
    if (victim) {
        detach(ob, victim);
        ev->dropped = victim;
    }
    list_append(&ob->all, &msg->all_);
    list_append(msg->precious ? &ob->precious : &ob->droppable, &msg->kind_);
    if (msg->retain)
        list_append(&ob->retained, &msg->ret_);
    ob->len++;
}

vg_outbox_msg_t *vg_outbox_pop(vg_outbox_t *ob)
{
    if (list_empty(&ob->all))
        return NULL;
    vg_outbox_msg_t *msg = MSG_OF(ob->all.next, all_);
    detach(ob, msg);
    return msg;
}

const vg_outbox_msg_t *vg_outbox_peek(const vg_outbox_t *ob)
{
    if (list_empty(&ob->all))
        return NULL;
    return MSG_OF(ob->all.next, all_);
}

size_t vg_outbox_len(const vg_outbox_t *ob)
{
    return ob->len;
}

size_t vg_outbox_limit(const vg_outbox_t *ob)
{
    return ob->limit;
}
