/* infer_internal.h — the pool's private structures, shared by infer.c (threads,
 * scheduling, model loading) and infer_run.c (running workers on one frame). */
#ifndef VIGIL_INFER_INTERNAL_H
#define VIGIL_INFER_INTERNAL_H

#include "vigil/detector.h"
#include "vigil/gate.h"
#include "vigil/infer.h"
#include "vigil/metrics.h"

#include <pthread.h>

#define MAX_WORKER_STATE VG_LIMIT_WORKERS_PER_STREAM

typedef struct {
    char worker_id[72];
    vg_motion_t *motion;
    vg_flow_t *flow;
    vg_gate_t *gate;   /* person and pose workers: allocated on first use */
    json_t *dets;      /* detections of the detector's last run, or NULL */
    double ran_at;     /* captured_mono of the frame it last ran on */
    char ran_time[32]; /* the same, formatted */
    char ran_key[160]; /* model, threshold and roi it last ran with */
    uint64_t last_seq;
    const char *state; /* last reported worker state */
} worker_state_t;

struct vg_infer_stream {
    vg_infer_t *pool;
    vg_mailbox_t *mb;
    vg_stream_spec_t *spec; /* guarded by pool->mu */
    bool ready, busy, detached;
    double vtime;
    double ready_at; /* monotonic time its waiting frame was posted */
    void (*done)(void *arg);
    void *done_arg;
    /* executor-only state: one executor at a time */
    worker_state_t state[MAX_WORKER_STATE];
    size_t n_state;
    struct vg_infer_stream *next;
};

typedef struct {
    char *model_id;
    vg_detector_t *det;
    uint64_t used; /* executor clock at its last use (LRU) */
} cached_det_t;

typedef struct {
    vg_infer_t *pool;
    int index;
    pthread_t thread;
    cached_det_t cache[VG_INFER_MAX_CACHED_MODELS];
    size_t n_dets;
    uint64_t clock;
} executor_t;

typedef struct spare {
    char *model_id;
    vg_detector_t *det;
    struct spare *next;
} spare_t;

/* A model that failed to load and when executors may try it again. */
typedef struct failed_load {
    char *model_id;
    double retry_at, delay_s; /* monotonic */
    char error[256];
    struct failed_load *next;
} failed_load_t;

struct vg_infer {
    char *instance_id;
    void (*on_result)(void *arg, vg_infer_result_t *r);
    void *arg;
    vg_model_cfg_t *models;
    size_t n_models;
    int n_exec;
    executor_t *exec;
    vg_jobs_t *jobs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    double vclock;
    vg_infer_stream_t *streams;
    spare_t *spares;
    failed_load_t *failed;
    vg_series_t *m_loads_ok, *m_loads_failed;
    vg_metric_t *m_inferences, *m_duration, *m_detections, *m_dropped, *m_latency, *m_state,
        *m_skipped;
};

void vg_infer_metrics_init(vg_infer_t *p);
/* Runs every worker of `spec` on frame f and delivers the results. Executor thread. */
void vg_infer_run_frame(executor_t *e, vg_infer_stream_t *s, const vg_stream_spec_t *spec,
                        const vg_frame_t *f);
/* The executor's detector for model_id (cached, spare, or loaded now). */
vg_detector_t *vg_infer_executor_detector(executor_t *e, const char *model_id, char *err,
                                          size_t len);

#endif
