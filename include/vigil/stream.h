/* stream.h — the stream registry and each stream's lifecycle, on the loop thread.
 * A stream owns its configuration copy, its mailbox, its capture thread and its place
 * in the inference pool. Starting never blocks; stopping asks the capture to stop and
 * hands the joining to a VG_JOB_REAP job, so the loop and other streams never wait.
 * Each stream has a generation, new at every add: asynchronous work names a stream by
 * id + generation, so a stream removed and re-added under the same id is not confused.
 * Capture state and inference results reach the loop through the loop queue. */
#ifndef VIGIL_STREAM_H
#define VIGIL_STREAM_H

#include <jansson.h>

#include "vigil/capture.h"
#include "vigil/config.h"
#include "vigil/infer.h"
#include "vigil/jobs.h"
#include "vigil/loopq.h"

typedef struct vg_streams vg_streams_t;
typedef struct vg_stream vg_stream_t;

/* Called on the loop thread for each inference result (borrowed) of a live stream. */
typedef void (*vg_streams_result_fn)(void *arg, vg_stream_t *s, const vg_infer_result_t *r);
/* Called on the loop thread when a stream's capture state changes. */
typedef void (*vg_streams_state_fn)(void *arg, vg_stream_t *s);

typedef struct {
    const vg_config_t *cfg; /* capture defaults and the model registry; borrowed */
    vg_loopq_t *q;
    vg_infer_t *pool;
    vg_jobs_t *jobs; /* reaps removed streams; borrowed */
    vg_streams_result_fn on_result;
    vg_streams_state_fn on_state;
    void *arg;
} vg_streams_opts_t;

vg_streams_t *vg_streams_new(const vg_streams_opts_t *o);
/* Removes every stream: their reaps are queued as jobs; vg_jobs_stop then runs them
 * (afterwards no capture thread runs and no stream is attached to the pool). */
void vg_streams_shutdown(vg_streams_t *ss);
/* Frees the registry (after vg_streams_shutdown, vg_jobs_stop and a drain of the loop
 * queue). */
void vg_streams_free(vg_streams_t *ss);
/* The registry's borrowed config pointer (after a reload). */
void vg_streams_set_config(vg_streams_t *ss, const vg_config_t *cfg);

/* Starts a stream from a validated configuration (copied). VG_EEXIST if the id is taken. */
int vg_streams_add(vg_streams_t *ss, const vg_stream_cfg_t *sc, bool from_file);
/* Stops and removes it (asynchronously reaped). VG_ENOTFOUND if unknown. */
int vg_streams_remove(vg_streams_t *ss, const char *stream_id);
vg_stream_t *vg_streams_find(vg_streams_t *ss, const char *stream_id);
/* The live stream of that id and generation, or NULL (removed, or replaced since). */
vg_stream_t *vg_streams_find_gen(vg_streams_t *ss, const char *stream_id, uint64_t gen);
size_t vg_streams_count(const vg_streams_t *ss);
/* Iteration in insertion order: vg_streams_at(ss, i) for i < count. */
vg_stream_t *vg_streams_at(vg_streams_t *ss, size_t i);
/* Asks every stream to stop; `done` runs on the loop once all are reaped. */
void vg_streams_stop_all(vg_streams_t *ss, void (*done)(void *arg), void *arg);

/* Applies a new configuration to a running stream without restarting its capture
 * (fps, workers, models, roi, masks). A changed URL replaces the stream (the old
 * capture is reaped off the loop): use the returned pointer. */
vg_stream_t *vg_stream_apply(vg_stream_t *s, const vg_stream_cfg_t *sc);
/* For the inference pool's on_result (executor thread): queues r for the loop. */
void vg_streams_post_result(vg_streams_t *ss, vg_infer_result_t *r);
void vg_stream_restart(vg_stream_t *s);

const char *vg_stream_id(const vg_stream_t *s);
/* Which incarnation of its id this stream is: each add (also a re-add of a removed id, or
 * a URL change through vg_stream_apply) takes a new, higher one; restarts and live
 * changes keep it. Messages from an older generation are dropped. */
uint64_t vg_stream_gen(const vg_stream_t *s);
/* Bumped by every configuration change (vg_stream_apply): work computed from a copy of
 * the configuration checks it is still current before applying. */
uint64_t vg_stream_cfg_rev(const vg_stream_t *s);
const vg_stream_cfg_t *vg_stream_cfg(const vg_stream_t *s);
bool vg_stream_from_file(const vg_stream_t *s);
const char *vg_stream_state(const vg_stream_t *s); /* capture state name */
const char *vg_stream_error(const vg_stream_t *s); /* redacted, "" when none */
vg_mailbox_t *vg_stream_mailbox(vg_stream_t *s);
/* The latest inference results (JSON array, borrowed) or NULL, and when they came. */
json_t *vg_stream_latest(const vg_stream_t *s, double *at);
#define VG_STREAM_MAX_WORKER_STATS VG_LIMIT_WORKERS_PER_STREAM
typedef struct {
    uint64_t results;    /* results since the last take */
    uint64_t runs;       /* of them, those the worker computed (not republished by the gate) */
    double inference_ms; /* their summed inference time */
    uint64_t dropped;    /* sampled frames the worker never saw */
    uint64_t last_seq;
} vg_worker_stats_t;
/* Returns worker i's counters since the previous call and restarts them (telemetry). */
void vg_stream_take_worker_stats(vg_stream_t *s, size_t i, vg_worker_stats_t *out);
double vg_stream_fps_measured(const vg_stream_t *s);
/* The capture's counters; false (out zeroed) while the stream has no capture. */
bool vg_stream_capture_stats(const vg_stream_t *s, vg_capture_stats_t *out);

/* {enabled, min_change, refresh_s} (caller frees). */
json_t *vg_stream_gate_json(const vg_motion_gate_cfg_t *g);
/* A JSON description: id, redacted url, state, fps target and measured, workers. */
json_t *vg_stream_describe(const vg_stream_t *s);

#endif
