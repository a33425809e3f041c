/* jobs.h — slow work off the loop thread, in the style of redis bio.c: one named thread
 * per job type ("jobs:model", "jobs:snapshot", "jobs:state", "jobs:reaper"), jobs of a
 * type run in submission order. A job's `run` executes on its type's thread; its `done`
 * then runs on the loop thread through the loop queue and owns the job.
 *
 * A job carries what it needs by value, by reference (refcounted frames, specs) or by
 * id + generation that `done` looks up again on the loop; never a raw pointer to state
 * the loop owns and may free while the job runs. `ctx` (given to `done` only) must live
 * until the completions were drained after vg_jobs_stop. */
#ifndef VIGIL_JOBS_H
#define VIGIL_JOBS_H

#include <stdbool.h>

#include "vigil/loopq.h"

typedef enum {
    VG_JOB_MODEL_LOAD,  /* validates a model for a live change; pending ones cancelled at stop */
    VG_JOB_SNAPSHOT,    /* converts and encodes a frame; pending ones cancelled at stop */
    VG_JOB_STATE_WRITE, /* replaces the state file; a newer job replaces a pending one;
                           pending ones still run at stop */
    VG_JOB_REAP,        /* joins a removed stream's threads; pending ones still run at stop */
    VG_JOB_TYPES
} vg_job_type_t;

typedef struct {
    void (*run)(void *job); /* the type's thread: the slow part */
    /* Exactly once per job; takes ownership of it. ran is false when the job was
     * cancelled at stop or replaced by a newer one (then run never ran). */
    void (*done)(void *ctx, void *job, bool ran);
    void *ctx;
} vg_job_ops_t;

typedef struct vg_jobs vg_jobs_t;

/* Starts one thread per type. `q` (borrowed) carries the completions to the loop; NULL
 * runs `done` on the thread that finished or cancelled the job (tests, tools). */
vg_jobs_t *vg_jobs_new(vg_loopq_t *q);
/* Any thread. Queues `job` (ownership passes; `ops` is copied). After vg_jobs_stop the
 * job is run or cancelled, as the type does at stop, and done called, all at once on
 * the calling thread (shutdown: the loop queue may be freed already). */
void vg_jobs_submit(vg_jobs_t *js, vg_job_type_t type, const vg_job_ops_t *ops, void *job);
/* Stops every thread: running jobs finish, pending ones run or are cancelled as their
 * type says, then the threads are joined. Completions are posted to the loop queue:
 * drain it afterwards. Idempotent. */
void vg_jobs_stop(vg_jobs_t *js);
/* Stops (if not yet) and frees. NULL ok. */
void vg_jobs_free(vg_jobs_t *js);
/* Jobs queued or running of a type (metrics, tests). */
int vg_jobs_pending(vg_jobs_t *js, vg_job_type_t type);

#endif
