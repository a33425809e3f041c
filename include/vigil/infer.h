/* infer.h — the inference executor pool and the per-stream specs its workers run.
 *
 * A pool of N threads ("infer:<i>") serves every stream's mailbox. A stream is handled
 * by at most one executor at a time (its workers keep per-stream state such as the
 * previous frame), and the executor picks, among the streams with a frame waiting, the
 * one furthest behind its target rate (virtual time += 1 / fps per frame served), so
 * every stream gets its fps when capacity allows and all degrade in proportion under
 * overload. Each executor owns its own detector (cv::dnn::Net) per model.
 *
 * The loop thread owns specs and the stream registry; it hands the pool immutable,
 * refcounted specs and swaps them for live changes (next frame uses the new one).
 * Results go back through the on_result callback, which runs on executor threads. */
#ifndef VIGIL_INFER_H
#define VIGIL_INFER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vigil/config.h"
#include "vigil/jobs.h"
#include "vigil/mailbox.h"

/* Nets one executor keeps loaded; the least recently used goes first. */
#define VG_INFER_MAX_CACHED_MODELS 8
/* After a failed load, executors wait this long (doubling per failure, up to the max)
 * before reading the model's files again; meanwhile its workers report the error. */
#define VG_INFER_LOAD_RETRY_MIN_S 2.0
#define VG_INFER_LOAD_RETRY_MAX_S 60.0

typedef struct {
    char *worker_id;
    vg_worker_type_t type;
    char *model_id; /* NULL for motion and flow */
    double confidence_threshold;
    vg_rect_t roi;             /* w == 0: whole frame */
    vg_motion_gate_cfg_t gate; /* person and pose workers */
    int view;                  /* index of the capture view this worker reads */
    bool available;
    char *unavailable_reason;
} vg_worker_spec_t;

/* Immutable once shared; refcounted (any thread may ref/unref). */
typedef struct {
    atomic_int refs;
    char *stream_id;
    uint64_t gen; /* the stream's generation: results carry it back */
    double fps;
    size_t n_workers;
    vg_worker_spec_t *workers;
} vg_stream_spec_t;

vg_stream_spec_t *vg_stream_spec_ref(vg_stream_spec_t *s);
void vg_stream_spec_unref(vg_stream_spec_t *s);

typedef struct vg_infer vg_infer_t;
typedef struct vg_infer_stream vg_infer_stream_t;

/* One frame's results: `results` is a JSON array with one object per worker run, each a
 * complete inference message ({instance_id, stream_id, worker, model_id, seq,
 * captured_at, latency_ms, inference_ms, frame, detections, person_count, ...}).
 * Ownership passes to the callback. */
typedef struct {
    char *stream_id;
    uint64_t gen; /* of the spec that produced it: the loop drops results of an older stream */
    uint64_t seq;
    int person_count; /* -1 when no person detector ran */
    json_t *results;
} vg_infer_result_t;

void vg_infer_result_free(vg_infer_result_t *r);

typedef struct {
    const char *instance_id;
    int threads;               /* 0: one per core */
    const vg_config_t *models; /* the model registry; copied */
    vg_jobs_t *jobs;           /* runs model loads; borrowed, stopped before the pool is freed */
    void (*on_result)(void *arg, vg_infer_result_t *r); /* executor thread; takes r */
    /* Worker state changes ("ok", "error", "unavailable"), executor thread. */
    void *arg;
} vg_infer_cfg_t;

int vg_infer_new(const vg_infer_cfg_t *cfg, vg_infer_t **out);
/* Stops and joins the executors (the stream list must be empty or is dropped). */
void vg_infer_free(vg_infer_t *p);

/* Attaches a stream: the pool takes frames from `mb` (borrowed until detach completes)
 * and runs `spec` (a new reference is taken). Loop thread. */
vg_infer_stream_t *vg_infer_attach(vg_infer_t *p, vg_mailbox_t *mb, vg_stream_spec_t *spec);
/* Swaps the spec; the next frame uses it. Loop thread. */
void vg_infer_set_spec(vg_infer_stream_t *s, vg_stream_spec_t *spec);
/* Detaches without waiting; `done` runs on some thread once no executor uses the stream
 * (immediately if idle). After that the mailbox may be freed. */
void vg_infer_detach(vg_infer_stream_t *s, void (*done)(void *arg), void *arg);

/* Loads (validates) a model as a VG_JOB_MODEL_LOAD job, then calls `done(arg, ok, error)`
 * on the loop thread (ok false, error "shutting down" when jobs stopped first). On
 * success the loaded net is kept for the first executor that needs it. */
void vg_infer_load_model(vg_infer_t *p, const vg_model_cfg_t *m,
                         void (*done)(void *arg, bool ok, const char *error), void *arg);

/* Stats for telemetry: average inference ms and drops per worker are in metrics. */
int vg_infer_threads(const vg_infer_t *p);

#endif
