/* loopq.c — the only way other threads reach the loop thread: post an item, the loop
 * wakes through event_active() and runs the items in order. Swap, then process. */
#include "vigil/loopq.h"
#include "vigil/common.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct item {
    vg_loopq_fn fn;
    void *ctx, *msg;
    struct item *next;
} item_t;

struct vg_loopq {
    pthread_mutex_t mu;
    item_t *head, *tail;
    struct event *ev;
};

void vg_loopq_drain(vg_loopq_t *q)
{
    pthread_mutex_lock(&q->mu);
    item_t *it = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (it) {
        item_t *next = it->next;
        it->fn(it->ctx, it->msg);
        free(it);
        it = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_loopq_drain(arg);
}

vg_loopq_t *vg_loopq_new(struct event_base *base)
{
    vg_loopq_t *q = vg_xcalloc(1, sizeof(*q));
    VG_CHECK(pthread_mutex_init(&q->mu, NULL) == 0);
    q->ev = event_new(base, -1, 0, on_wake, q);
    VG_CHECK(q->ev);
    return q;
}

void vg_loopq_post(vg_loopq_t *q, vg_loopq_fn fn, void *ctx, void *msg)
{
    item_t *it = vg_xmalloc(sizeof(*it));
    it->fn = fn;
    it->ctx = ctx;
    it->msg = msg;
    it->next = NULL;
    pthread_mutex_lock(&q->mu);
    bool was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    pthread_mutex_unlock(&q->mu);
    if (was_empty) event_active(q->ev, 0, 0);
}

void vg_loopq_free(vg_loopq_t *q)
{
    if (!q) return;
    vg_loopq_drain(q);
    event_free(q->ev);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
