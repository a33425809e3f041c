/* Unit tests for jobs.c: jobs of a type run in order on the type's named thread and
 * complete on the loop thread through the loop queue; a state write replaces the one
 * still pending (newest wins); stop runs pending reaps and state writes and cancels
 * pending snapshots and model loads; a submit after stop runs or cancels at once.
 * Run under ThreadSanitizer in CI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/jobs.h"
#include "vigil/loopq.h"

#define N 64

typedef struct {
    int index;
    char thread[16];
    pthread_t ran_on;
    atomic_bool *gate; /* when set, run waits until it is true */
} job_t;

typedef struct {
    pthread_t loop;
    atomic_int done, ran, cancelled;
    int order[N * 2];
    atomic_int n_order;
    bool done_off_loop;
    char last_thread[16]; /* the thread the last job ran on */
} tally_t;

static void job_run(void *data)
{
    job_t *j = data;
    while (j->gate && !atomic_load(j->gate))
        usleep(1000);
    pthread_getname_np(pthread_self(), j->thread, sizeof(j->thread));
    j->ran_on = pthread_self();
}

static void job_done(void *ctx, void *data, bool ran)
{
    tally_t *t = ctx;
    job_t *j = data;
    if (!pthread_equal(pthread_self(), t->loop)) t->done_off_loop = true;
    if (ran) {
        memcpy(t->last_thread, j->thread, sizeof(t->last_thread));
        atomic_fetch_add(&t->ran, 1);
        t->order[atomic_fetch_add(&t->n_order, 1)] = j->index;
    } else {
        atomic_fetch_add(&t->cancelled, 1);
    }
    atomic_fetch_add(&t->done, 1);
    free(j);
}

static job_t *job_new(int index, atomic_bool *gate)
{
    job_t *j = vg_xcalloc(1, sizeof(*j));
    j->index = index;
    j->gate = gate;
    return j;
}

/* A loop (base + queue) with jobs completing on it, and a fresh tally. */
typedef struct {
    struct event_base *base;
    vg_loopq_t *q;
    vg_jobs_t *js;
} loop_t;

static tally_t *loop_start(loop_t *l)
{
    static tally_t t;
    l->base = event_base_new();
    l->q = vg_loopq_new(l->base);
    l->js = vg_jobs_new(l->q);
    memset(&t, 0, sizeof(t));
    t.loop = pthread_self();
    return &t;
}

static void loop_end(loop_t *l)
{
    vg_jobs_free(l->js);
    vg_loopq_free(l->q);
    event_base_free(l->base);
}

static void test_order_thread_and_loop(void **state)
{
    (void)state;
    loop_t l;
    tally_t *t = loop_start(&l);
    vg_job_ops_t ops = {job_run, job_done, t};
    for (int i = 0; i < N; i++)
        vg_jobs_submit(l.js, VG_JOB_SNAPSHOT, &ops, job_new(i, NULL));
    for (int i = 0; i < 2000 && atomic_load(&t->done) < N; i++) {
        event_base_loop(l.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(atomic_load(&t->done), N);
    assert_int_equal(atomic_load(&t->ran), N);
    assert_false(t->done_off_loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(t->order[i], i);
    assert_int_equal(vg_jobs_pending(l.js, VG_JOB_SNAPSHOT), 0);
    loop_end(&l);
}

/* Each type runs on its own named thread; without a loop queue, done runs there too. */
static void test_thread_names(void **state)
{
    (void)state;
    static const struct {
        vg_job_type_t type;
        const char *name;
    } want[] = {{VG_JOB_MODEL_LOAD, "jobs:model"},
                {VG_JOB_SNAPSHOT, "jobs:snapshot"},
                {VG_JOB_STATE_WRITE, "jobs:state"},
                {VG_JOB_REAP, "jobs:reaper"}};
    vg_jobs_t *js = vg_jobs_new(NULL);
    for (size_t i = 0; i < VG_ARRAY_LEN(want); i++) {
        static tally_t t;
        memset(&t, 0, sizeof(t));
        t.loop = pthread_self();
        vg_job_ops_t ops = {job_run, job_done, &t};
        vg_jobs_submit(js, want[i].type, &ops, job_new(0, NULL));
        for (int k = 0; k < 2000 && atomic_load(&t.done) < 1; k++)
            usleep(1000);
        assert_int_equal(atomic_load(&t.ran), 1);
        assert_true(t.done_off_loop);
        assert_string_equal(t.last_thread, want[i].name);
    }
    vg_jobs_free(js);
}

static void test_state_newest_wins(void **state)
{
    (void)state;
    vg_jobs_t *js = vg_jobs_new(NULL);
    static tally_t t;
    memset(&t, 0, sizeof(t));
    t.loop = pthread_self();
    atomic_bool gate = false;
    vg_job_ops_t ops = {job_run, job_done, &t};
    vg_jobs_submit(js, VG_JOB_STATE_WRITE, &ops, job_new(0, &gate)); /* blocks the thread */
    while (vg_jobs_pending(js, VG_JOB_STATE_WRITE) != 1)
        usleep(1000);
    usleep(20000); /* the first job is running now, not pending */
    for (int i = 1; i <= N; i++)
        vg_jobs_submit(js, VG_JOB_STATE_WRITE, &ops, job_new(i, NULL));
    assert_int_equal(atomic_load(&t.cancelled), N - 1); /* replaced at submit */
    atomic_store(&gate, true);
    vg_jobs_free(js);
    assert_int_equal(atomic_load(&t.done), N + 1);
    assert_int_equal(atomic_load(&t.ran), 2);
    assert_int_equal(t.order[0], 0);
    assert_int_equal(t.order[1], N); /* the newest */
}

/* Stop: reaps and state writes still pending run, snapshots and loads are cancelled;
 * a submit after stop does the same at once on the caller. */
static void test_stop_policy(void **state)
{
    (void)state;
    loop_t l;
    tally_t *t = loop_start(&l);
    atomic_bool gate = false;
    vg_job_ops_t ops = {job_run, job_done, t};
    static const vg_job_type_t types[] = {VG_JOB_MODEL_LOAD, VG_JOB_SNAPSHOT, VG_JOB_STATE_WRITE,
                                          VG_JOB_REAP};
    for (size_t k = 0; k < VG_ARRAY_LEN(types); k++) {
        vg_jobs_submit(l.js, types[k], &ops, job_new(100, &gate)); /* running at stop */
        usleep(20000); /* taken by the thread: not replaced by the next state write */
        vg_jobs_submit(l.js, types[k], &ops, job_new(200, NULL)); /* pending at stop */
    }
    usleep(20000);
    atomic_store(&gate, true);
    vg_jobs_stop(l.js);
    vg_loopq_drain(l.q);
    assert_int_equal(atomic_load(&t->done), 8);
    /* 4 running jobs finished; pending: reap and state ran, model and snapshot cancelled */
    assert_int_equal(atomic_load(&t->ran), 6);
    assert_int_equal(atomic_load(&t->cancelled), 2);
    assert_false(t->done_off_loop);
    vg_jobs_submit(l.js, VG_JOB_STATE_WRITE, &ops, job_new(300, NULL));
    vg_jobs_submit(l.js, VG_JOB_SNAPSHOT, &ops, job_new(301, NULL));
    assert_int_equal(atomic_load(&t->done), 10); /* at once, without a drain */
    assert_int_equal(atomic_load(&t->ran), 7);
    assert_int_equal(atomic_load(&t->cancelled), 3);
    vg_jobs_stop(l.js); /* idempotent */
    loop_end(&l);
}

int main(void)
{
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_thread_and_loop),
        cmocka_unit_test(test_thread_names),
        cmocka_unit_test(test_state_newest_wins),
        cmocka_unit_test(test_stop_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
