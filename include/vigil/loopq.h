/* loopq.h — hand work to the loop thread from any thread: a mutex-protected queue plus
 * event_active(). The loop swaps the whole queue out under the lock and runs each
 * item's function unlocked, in posting order. */
#ifndef VIGIL_LOOPQ_H
#define VIGIL_LOOPQ_H

#include <event2/event.h>

typedef struct vg_loopq vg_loopq_t;
/* Runs on the loop thread with the ctx given at post; owns msg. */
typedef void (*vg_loopq_fn)(void *ctx, void *msg);

/* Needs evthread_use_pthreads() before the base was created. */
vg_loopq_t *vg_loopq_new(struct event_base *base);
/* Any thread. Never blocks beyond a short lock. */
void vg_loopq_post(vg_loopq_t *q, vg_loopq_fn fn, void *ctx, void *msg);
/* Runs what is queued now (shutdown ordering). Loop thread. */
void vg_loopq_drain(vg_loopq_t *q);
/* Runs what is queued, then frees. Loop thread, after every producer stopped. NULL ok. */
void vg_loopq_free(vg_loopq_t *q);

#endif
