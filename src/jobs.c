/* jobs.c — the job threads (see jobs.h). One lane per job type: a FIFO, a mutex, a
 * condition variable and a named thread. The thread takes one job under the lock, runs
 * it unlocked, then hands it to `done` through the loop queue. A table says, per type,
 * its thread name, whether a newer job replaces a pending one, and what stop does with
 * pending jobs (run them or cancel them). Any thread submits; the loop stops. */
#include "vigil/jobs.h"
#include "vigil/common.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    vg_job_ops_t ops;
    void *data;
    bool ran;
    struct job *next;
} job_t;

typedef struct {
    const char *thread_name;
    bool latest_wins; /* a submit replaces the jobs still pending */
    bool run_on_stop; /* stop runs pending jobs (else cancels them) */
} lane_kind_t;

static const lane_kind_t kinds[VG_JOB_TYPES] = {
    [VG_JOB_MODEL_LOAD] = {"jobs:model", false, false},
    [VG_JOB_SNAPSHOT] = {"jobs:snapshot", false, false},
    [VG_JOB_STATE_WRITE] = {"jobs:state", true, true},
    [VG_JOB_REAP] = {"jobs:reaper", false, true},
};

typedef struct {
    vg_jobs_t *js;
    const lane_kind_t *kind;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    int pending; /* queued + running */
    bool stop, joined;
} lane_t;

struct vg_jobs {
    vg_loopq_t *q;
    lane_t lanes[VG_JOB_TYPES];
};

static void on_done_loop(void *ctx, void *msg)
{
    (void)ctx;
    job_t *j = msg;
    j->ops.done(j->ops.ctx, j->data, j->ran);
    free(j);
}

/* Hands a finished or cancelled job to its done: on the loop, or here without a queue. */
static void finish(vg_jobs_t *js, job_t *j, bool ran)
{
    j->ran = ran;
    if (js->q) {
        vg_loopq_post(js->q, on_done_loop, NULL, j);
        return;
    }
    on_done_loop(NULL, j);
}

static void *lane_main(void *arg)
{
    lane_t *l = arg;
    pthread_setname_np(pthread_self(), l->kind->thread_name);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->head && !l->stop)
            pthread_cond_wait(&l->cv, &l->mu);
        job_t *j = l->head;
        if (!j) break; /* stopping, nothing left */
        l->head = j->next;
        if (!l->head) l->tail = NULL;
        bool run = !l->stop || l->kind->run_on_stop;
        pthread_mutex_unlock(&l->mu);
        if (run && j->ops.run) j->ops.run(j->data);
        finish(l->js, j, run);
        pthread_mutex_lock(&l->mu);
        l->pending--;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

vg_jobs_t *vg_jobs_new(vg_loopq_t *q)
{
    vg_jobs_t *js = vg_xcalloc(1, sizeof(*js));
    js->q = q;
    for (int t = 0; t < VG_JOB_TYPES; t++) {
        lane_t *l = &js->lanes[t];
        l->js = js;
        l->kind = &kinds[t];
        VG_CHECK(pthread_mutex_init(&l->mu, NULL) == 0);
        VG_CHECK(pthread_cond_init(&l->cv, NULL) == 0);
        VG_CHECK(pthread_create(&l->thread, NULL, lane_main, l) == 0);
    }
    return js;
}

/* Detaches the pending jobs a newer one replaces; the caller finishes them unlocked. */
static job_t *take_replaced_locked(lane_t *l)
{
    if (!l->kind->latest_wins) return NULL;
    job_t *old = l->head;
    for (job_t *j = old; j; j = j->next)
        l->pending--;
    l->head = l->tail = NULL;
    return old;
}

void vg_jobs_submit(vg_jobs_t *js, vg_job_type_t type, const vg_job_ops_t *ops, void *job)
{
    VG_CHECK(type >= 0 && type < VG_JOB_TYPES && ops && ops->done);
    lane_t *l = &js->lanes[type];
    job_t *j = vg_xcalloc(1, sizeof(*j));
    j->ops = *ops;
    j->data = job;
    pthread_mutex_lock(&l->mu);
    if (l->stop) { /* after stop: what stop would have done, here and now */
        pthread_mutex_unlock(&l->mu);
        if (l->kind->run_on_stop && ops->run) ops->run(job);
        j->ran = l->kind->run_on_stop;
        on_done_loop(NULL, j); /* the loop queue may be gone already */
        return;
    }
    job_t *replaced = take_replaced_locked(l);
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->pending++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    while (replaced) {
        job_t *next = replaced->next;
        finish(js, replaced, false);
        replaced = next;
    }
}

void vg_jobs_stop(vg_jobs_t *js)
{
    for (int t = 0; t < VG_JOB_TYPES; t++) {
        lane_t *l = &js->lanes[t];
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    for (int t = 0; t < VG_JOB_TYPES; t++) {
        lane_t *l = &js->lanes[t];
        if (!l->joined) VG_CHECK(pthread_join(l->thread, NULL) == 0);
        l->joined = true;
    }
}

void vg_jobs_free(vg_jobs_t *js)
{
    if (!js) return;
    vg_jobs_stop(js);
    for (int t = 0; t < VG_JOB_TYPES; t++) {
        pthread_cond_destroy(&js->lanes[t].cv);
        pthread_mutex_destroy(&js->lanes[t].mu);
    }
    free(js);
}

int vg_jobs_pending(vg_jobs_t *js, vg_job_type_t type)
{
    lane_t *l = &js->lanes[type];
    pthread_mutex_lock(&l->mu);
    int n = l->pending;
    pthread_mutex_unlock(&l->mu);
    return n;
}
