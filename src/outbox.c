/* outbox.c — bounded, class-ranked queue of MQTT messages with a drop policy, and the
 * ledger of messages awaiting the broker's ack (see outbox.h).
 *
 * Each queued message sits on its class's circular list (arrival order: the head is
 * both the next to send within the class and the first to drop) and, when retained,
 * on the `retained` list used to find a queued message on the same topic. A tracked
 * message sits on the `tracked` list only. Single-threaded: the loop thread owns
 * every outbox. */
#include "vigil/outbox.h"
#include "vigil/common.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct vg_outbox {
    vg_outbox_link_t cls[VG_OUTBOX_NCLASS], retained, tracked;
    size_t n_cls[VG_OUTBOX_NCLASS], n_tracked[VG_OUTBOX_NCLASS];
    size_t len, limit, reserve;
};

#define MSG_OF(link, member)                                                                       \
    ((vg_outbox_msg_t *)(void *)((char *)(link)-offsetof(vg_outbox_msg_t, member)))

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
                                   bool retain, vg_outbox_class_t cls)
{
    VG_CHECK(cls < VG_OUTBOX_NCLASS);
    vg_outbox_msg_t *msg = vg_xcalloc(1, sizeof(*msg));
    msg->topic = vg_xstrdup(topic);
    msg->payload = vg_xmalloc(len + 1);
    if (len) memcpy(msg->payload, payload, len);
    ((char *)msg->payload)[len] = '\0';
    msg->len = len;
    msg->qos = qos;
    msg->retain = retain;
    msg->cls = cls;
    list_init(&msg->all_);
    list_init(&msg->ret_);
    return msg;
}

void vg_outbox_msg_free(vg_outbox_msg_t *msg)
{
    if (!msg) return;
    free(msg->topic);
    free(msg->payload);
    free(msg);
}

vg_outbox_t *vg_outbox_new(size_t limit, size_t event_reserve)
{
    vg_outbox_t *ob = vg_xcalloc(1, sizeof(*ob));
    for (int c = 0; c < VG_OUTBOX_NCLASS; c++)
        list_init(&ob->cls[c]);
    list_init(&ob->retained);
    list_init(&ob->tracked);
    ob->limit = limit;
    ob->reserve = event_reserve;
    return ob;
}

void vg_outbox_free(vg_outbox_t *ob)
{
    if (!ob) return;
    vg_outbox_msg_t *msg;
    while ((msg = vg_outbox_pop(ob)))
        vg_outbox_msg_free(msg);
    while ((msg = vg_outbox_untrack(ob)))
        vg_outbox_msg_free(msg);
    free(ob);
}

void vg_outbox_set_event_reserve(vg_outbox_t *ob, size_t event_reserve)
{
    ob->reserve = event_reserve;
}

/* Takes a queued msg off every list it is on. */
static void detach(vg_outbox_t *ob, vg_outbox_msg_t *msg)
{
    list_unlink(&msg->all_);
    list_unlink(&msg->ret_);
    ob->n_cls[msg->cls]--;
    ob->len--;
}

static vg_outbox_msg_t *find_retained(vg_outbox_t *ob, const char *topic)
{
    for (vg_outbox_link_t *l = ob->retained.next; l != &ob->retained; l = l->next) {
        vg_outbox_msg_t *q = MSG_OF(l, ret_);
        if (strcmp(q->topic, topic) == 0) return q;
    }
    return NULL;
}

/* Whether `incoming` fits without dropping anything. */
static bool fits(const vg_outbox_t *ob, const vg_outbox_msg_t *incoming)
{
    if (ob->len >= ob->limit + ob->reserve) return false;
    return incoming->cls == VG_OUTBOX_EVENT || ob->len - ob->n_cls[VG_OUTBOX_EVENT] < ob->limit;
}

/* Picks the message to drop so that `incoming` fits; NULL when there is room. The
 * oldest of the lowest class up to the incoming one's; else the incoming message. */
static vg_outbox_msg_t *pick_victim(vg_outbox_t *ob, vg_outbox_msg_t *incoming)
{
    if (fits(ob, incoming)) return NULL;
    for (int c = 0; c <= (int)incoming->cls; c++)
        if (!list_empty(&ob->cls[c])) return MSG_OF(ob->cls[c].next, all_);
    return incoming;
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
    vg_outbox_msg_t *victim = pick_victim(ob, msg);
    if (victim == msg) {
        ev->dropped = msg;
        return;
    }
    if (victim) {
        detach(ob, victim);
        ev->dropped = victim;
    }
    list_append(&ob->cls[msg->cls], &msg->all_);
    if (msg->retain) list_append(&ob->retained, &msg->ret_);
    ob->n_cls[msg->cls]++;
    ob->len++;
}

const vg_outbox_msg_t *vg_outbox_peek(const vg_outbox_t *ob)
{
    for (int c = VG_OUTBOX_NCLASS - 1; c >= 0; c--)
        if (!list_empty(&ob->cls[c])) return MSG_OF(ob->cls[c].next, all_);
    return NULL;
}

vg_outbox_msg_t *vg_outbox_pop(vg_outbox_t *ob)
{
    vg_outbox_msg_t *msg = (vg_outbox_msg_t *)vg_outbox_peek(ob);
    if (msg) detach(ob, msg);
    return msg;
}

void vg_outbox_track(vg_outbox_t *ob, vg_outbox_msg_t *msg, int mid)
{
    msg->mid = mid;
    list_append(&ob->tracked, &msg->all_);
    ob->n_tracked[msg->cls]++;
}

static vg_outbox_msg_t *untrack(vg_outbox_t *ob, vg_outbox_msg_t *msg)
{
    list_unlink(&msg->all_);
    ob->n_tracked[msg->cls]--;
    return msg;
}

vg_outbox_msg_t *vg_outbox_acked(vg_outbox_t *ob, int mid)
{
    for (vg_outbox_link_t *l = ob->tracked.next; l != &ob->tracked; l = l->next)
        if (MSG_OF(l, all_)->mid == mid) return untrack(ob, MSG_OF(l, all_));
    return NULL;
}

vg_outbox_msg_t *vg_outbox_untrack(vg_outbox_t *ob)
{
    if (list_empty(&ob->tracked)) return NULL;
    return untrack(ob, MSG_OF(ob->tracked.next, all_));
}

size_t vg_outbox_len(const vg_outbox_t *ob)
{
    return ob->len;
}

size_t vg_outbox_class_len(const vg_outbox_t *ob, vg_outbox_class_t cls)
{
    return cls < VG_OUTBOX_NCLASS ? ob->n_cls[cls] : 0;
}

size_t vg_outbox_tracked_len(const vg_outbox_t *ob)
{
    size_t n = 0;
    for (int c = 0; c < VG_OUTBOX_NCLASS; c++)
        n += ob->n_tracked[c];
    return n;
}

size_t vg_outbox_tracked_class_len(const vg_outbox_t *ob, vg_outbox_class_t cls)
{
    return cls < VG_OUTBOX_NCLASS ? ob->n_tracked[cls] : 0;
}

size_t vg_outbox_limit(const vg_outbox_t *ob)
{
    return ob->limit;
}

size_t vg_outbox_event_reserve(const vg_outbox_t *ob)
{
    return ob->reserve;
}
