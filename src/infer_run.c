/* infer_run.c — what an executor does with one frame: run each of the stream's
 * workers (person detector, motion, flow; pose when a pose model exists), map boxes
 * from the worker's view back to normalised source-frame coordinates, build one
 * inference message per worker, update metrics, and hand the results over.
 * Executor threads only; a stream is never run by two executors at once. */
#include "infer_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DETECTIONS 64

static const char *const worker_states[] = {"ok", "error", "unavailable"};

void vg_infer_metrics_init(vg_infer_t *p)
{
    p->m_inferences = vg_metric_counter("vigil_inferences_total", "Inference results produced",
                                        "stream_id,worker,model_id");
    p->m_duration = vg_metric_histogram("vigil_inference_duration_seconds",
                                        "Time of one worker run on one frame", "model_id",
                                        vg_metrics_latency_buckets, vg_metrics_latency_buckets_len);
    p->m_detections =
        vg_metric_counter("vigil_detections_total", "Objects detected", "stream_id,label");
    p->m_dropped = vg_metric_counter("vigil_worker_dropped_total",
                                     "Sampled frames a worker never saw (replaced while waiting)",
                                     "stream_id,worker");
    p->m_latency = vg_metric_histogram("vigil_pipeline_latency_seconds",
                                       "From packet capture to inference result", "stream_id",
                                       vg_metrics_latency_buckets, vg_metrics_latency_buckets_len);
    p->m_state = vg_metric_gauge("vigil_worker_state", "1 for the worker's current state",
                                 "stream_id,worker,state");
    p->m_skipped = vg_metric_counter("vigil_detector_skipped_total",
                                     "Frames whose detections were republished because the view "
                                     "changed less than motion_gate.min_change since the "
                                     "detector last ran",
                                     "stream_id,worker");
}

static bool in_spec(const vg_stream_spec_t *spec, const char *worker_id)
{
    for (size_t i = 0; i < spec->n_workers; i++)
        if (strcmp(spec->workers[i].worker_id, worker_id) == 0) return true;
    return false;
}

/* The worker's state; a full table reuses the slot of a worker the spec no longer has
 * (reconfigured away), so renamed workers never run out of slots. */
static worker_state_t *state_for(vg_infer_stream_t *s, const vg_stream_spec_t *spec,
                                 const vg_worker_spec_t *w)
{
    for (size_t i = 0; i < s->n_state; i++)
        if (strcmp(s->state[i].worker_id, w->worker_id) == 0) return &s->state[i];
    worker_state_t *ws = NULL;
    for (size_t i = 0; s->n_state == MAX_WORKER_STATE && !ws && i < s->n_state; i++)
        if (!in_spec(spec, s->state[i].worker_id)) ws = &s->state[i];
    if (ws) {
        vg_motion_free(ws->motion);
        vg_flow_free(ws->flow);
        free(ws->gate);
        json_decref(ws->dets);
    } else if (s->n_state < MAX_WORKER_STATE) {
        ws = &s->state[s->n_state++];
    } else {
        return NULL; /* more workers than VG_LIMIT_WORKERS_PER_STREAM: marked unavailable */
    }
    memset(ws, 0, sizeof(*ws));
    snprintf(ws->worker_id, sizeof(ws->worker_id), "%s", w->worker_id);
    return ws;
}

static void set_state(vg_infer_t *p, const char *stream_id, worker_state_t *ws, const char *st)
{
    if (ws->state == st) return;
    for (size_t i = 0; i < VG_ARRAY_LEN(worker_states); i++)
        vg_series_set(vg_metric_series(p->m_state, stream_id, ws->worker_id, worker_states[i]),
                      worker_states[i] == st ? 1 : 0);
    ws->state = st;
}

/* Box from view-normalised coordinates to source-normalised, as JSON. */
static json_t *box_json(const vg_frame_t *f, const vg_frame_view_t *v, float x, float y, float w,
                        float h)
{
    double sw = f->src_width > 0 ? f->src_width : 1, sh = f->src_height > 0 ? f->src_height : 1;
    double bx = (v->x + x * v->w) / sw, by = (v->y + y * v->h) / sh;
    double bw = w * v->w / sw, bh = h * v->h / sh;
    return json_pack("{s:f, s:f, s:f, s:f}", "x", round(bx * 1e4) / 1e4, "y", round(by * 1e4) / 1e4,
                     "w", round(bw * 1e4) / 1e4, "h", round(bh * 1e4) / 1e4);
}

/* Whether the detector must run on view v, or may republish its last detections:
 * it must when gating is off, when it has no detections yet or ran with another model,
 * threshold or roi, when the view changed by min_change since it last ran, and when
 * refresh_s of stream time have passed. Sets *change when the gate measured. */
static bool must_run(worker_state_t *ws, const vg_worker_spec_t *w, const vg_frame_t *f,
                     const vg_frame_view_t *v, const char *key, double *change)
{
    if (!w->gate.enabled) return true;
    if (!ws->gate) ws->gate = vg_xcalloc(1, sizeof(*ws->gate));
    *change = vg_gate_measure(ws->gate, v->data, v->width, v->height, v->stride);
    if (!ws->dets || strcmp(key, ws->ran_key) != 0 || *change >= w->gate.min_change) return true;
    if (f->repeat)
        return false; /* the capture saw the view still: the same pixels, nothing to refresh */
    double age = f->captured_mono - ws->ran_at;
    return age >= w->gate.refresh_s || age < 0;
}

static int run_person(executor_t *e, worker_state_t *ws, const char *stream_id,
                      const vg_worker_spec_t *w, const vg_frame_t *f, const vg_frame_view_t *v,
                      json_t *msg, bool *ran, char *err, size_t errlen)
{
    vg_infer_t *p = e->pool;
    char key[sizeof(ws->ran_key)];
    snprintf(key, sizeof(key), "%s %.6f %d %d %d %d", w->model_id ? w->model_id : "",
             w->confidence_threshold, w->roi.x, w->roi.y, w->roi.w, w->roi.h);
    double change = -1;
    *ran = must_run(ws, w, f, v, key, &change);
    if (change >= 0) json_object_set_new(msg, "view_change", json_real(round(change * 1e4) / 1e4));
    json_object_set_new(msg, "detector_ran", json_boolean(*ran));
    if (!*ran) {
        vg_series_inc(vg_metric_series(p->m_skipped, stream_id, w->worker_id));
    } else {
        vg_detector_t *d = vg_infer_executor_detector(e, w->model_id, err, errlen);
        if (!d) return VG_EIO;
        int person = vg_detector_class_id(d, "person");
        vg_detection_t dets[MAX_DETECTIONS];
        size_t n = 0;
        double fwd = 0;
        int rc = vg_detector_run(d, v->data, v->width, v->height, v->stride,
                                 (float)w->confidence_threshold, person >= 0 ? person : 0, dets,
                                 MAX_DETECTIONS, &n, &fwd);
        if (rc != 0) {
            snprintf(err, errlen, "detector failed on a %dx%d frame", v->width, v->height);
            return rc;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) /* a person detector reports persons, whatever its
                                          labels file calls them */
            json_array_append_new(
                arr, json_pack("{s:s, s:f, s:o}", "label", "person", "confidence",
                               round(dets[i].confidence * 1e3) / 1e3, "box",
                               box_json(f, v, dets[i].x, dets[i].y, dets[i].w, dets[i].h)));
        json_decref(ws->dets);
        ws->dets = arr;
        ws->ran_at = f->captured_mono;
        vg_format_time(f->captured_at, ws->ran_time, sizeof(ws->ran_time));
        snprintf(ws->ran_key, sizeof(ws->ran_key), "%s", key);
        if (ws->gate) vg_gate_commit(ws->gate);
    }
    size_t n = json_array_size(ws->dets);
    for (size_t i = 0; i < n; i++)
        vg_series_inc(vg_metric_series(p->m_detections, stream_id, "person"));
    json_object_set_new(msg, "detections", json_deep_copy(ws->dets));
    json_object_set_new(msg, "person_count", json_integer((json_int_t)n));
    json_object_set_new(msg, "detected_at", json_string(ws->ran_time));
    return VG_OK;
}

static int run_motion(worker_state_t *ws, const vg_frame_t *f, const vg_frame_view_t *v,
                      json_t *msg)
{
    if (!ws->motion) ws->motion = vg_motion_new();
    float score = 0;
    vg_box_t boxes[16];
    size_t n = 0;
    int rc = vg_motion_run(ws->motion, v->data, v->width, v->height, v->stride, &score, boxes,
                           VG_ARRAY_LEN(boxes), &n);
    if (rc != 0) return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, box_json(f, v, boxes[i].x, boxes[i].y, boxes[i].w, boxes[i].h));
    json_object_set_new(msg, "motion_score", json_real(round(score * 1e4) / 1e4));
    json_object_set_new(msg, "motion_boxes", arr);
    return VG_OK;
}

static int run_flow(worker_state_t *ws, const vg_frame_view_t *v, json_t *msg)
{
    if (!ws->flow) ws->flow = vg_flow_new();
    float mag = 0, dir = 0;
    int rc = vg_flow_run(ws->flow, v->data, v->width, v->height, v->stride, &mag, &dir);
    if (rc != 0) return rc;
    const char *activity = mag < 0.2f ? "still" : mag < 1.5f ? "low" : "high";
    json_object_set_new(msg, "flow_magnitude", json_real(round(mag * 1e3) / 1e3));
    json_object_set_new(msg, "flow_direction_deg", json_real(round(dir * 10) / 10));
    json_object_set_new(msg, "activity", json_string(activity));
    return VG_OK;
}

/* This thread's CPU time: the executors run many streams, so each job is measured. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0
               ? (double)ts.tv_sec + (double)ts.tv_nsec / 1e9
               : 0;
}

static void add_worker_cpu(const char *stream_id, const char *worker_id, double s)
{
    char stage[96];
    snprintf(stage, sizeof(stage), "worker:%s", worker_id);
    vg_series_add(vg_metric_series(vg_metrics_stream_cpu(), stream_id, stage), s);
}

void vg_infer_run_frame(executor_t *e, vg_infer_stream_t *s, const vg_stream_spec_t *spec,
                        const vg_frame_t *f)
{
    vg_infer_t *p = e->pool;
    vg_infer_result_t *res = vg_xcalloc(1, sizeof(*res));
    res->stream_id = vg_xstrdup(spec->stream_id);
    res->gen = spec->gen;
    res->seq = f->seq;
    res->person_count = -1;
    res->results = json_array();
    char captured[32];
    vg_format_time(f->captured_at, captured, sizeof(captured));
    for (size_t i = 0; i < spec->n_workers; i++) {
        const vg_worker_spec_t *w = &spec->workers[i];
        worker_state_t *ws = state_for(s, spec, w);
        if (!ws) continue;
        if (ws->last_seq && f->seq > ws->last_seq + 1)
            vg_series_add(vg_metric_series(p->m_dropped, spec->stream_id, w->worker_id),
                          (double)(f->seq - ws->last_seq - 1));
        ws->last_seq = f->seq;
        if (!w->available) {
            set_state(p, spec->stream_id, ws, worker_states[2]);
            continue;
        }
        if (w->view < 0 || w->view >= f->n_views)
            continue; /* views not yet updated to a new spec: next frame */
        const vg_frame_view_t *v = &f->views[w->view];
        json_t *msg = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:s}", "instance_id", p->instance_id,
                                "stream_id", spec->stream_id, "worker", w->worker_id, "model_id",
                                w->model_id, "seq", (json_int_t)f->seq, "captured_at", captured);
        char err[512] = "";
        double cpu0 = thread_cpu_s(), t0 = vg_now_mono();
        bool ran = true;
        int rc = w->type == VG_WORKER_MOTION ? run_motion(ws, f, v, msg)
                 : w->type == VG_WORKER_FLOW
                     ? run_flow(ws, v, msg)
                     : run_person(e, ws, spec->stream_id, w, f, v, msg, &ran, err, sizeof(err));
        double took = vg_now_mono() - t0;
        add_worker_cpu(spec->stream_id, w->worker_id, thread_cpu_s() - cpu0);
        if (rc != 0) {
            if (ws->state != worker_states[1])
                VG_ERROR("infer", "worker_failed", "{s:s, s:s, s:s}", "stream_id", spec->stream_id,
                         "worker", w->worker_id, "error", err);
            set_state(p, spec->stream_id, ws, worker_states[1]);
            json_decref(msg);
            continue;
        }
        set_state(p, spec->stream_id, ws, worker_states[0]);
        double latency = vg_now_mono() - f->captured_mono; /* capture thread to here */
        json_object_set_new(msg, "latency_ms", json_real(round(latency * 1e4) / 10));
        json_object_set_new(msg, "inference_ms", json_real(round(took * 1e4) / 10));
        json_object_set_new(
            msg, "frame", json_pack("{s:i, s:i}", "width", f->src_width, "height", f->src_height));
        if (w->type == VG_WORKER_PERSON)
            res->person_count = (int)json_integer_value(json_object_get(msg, "person_count"));
        json_array_append_new(res->results, msg);
        const char *model = w->model_id ? w->model_id : vg_worker_type_name(w->type);
        vg_series_inc(vg_metric_series(p->m_inferences, spec->stream_id, w->worker_id, model));
        if (ran) vg_series_observe(vg_metric_series(p->m_duration, model), took);
        vg_series_observe(vg_metric_series(p->m_latency, spec->stream_id), latency);
    }
    if (json_array_size(res->results) == 0) {
        vg_infer_result_free(res);
        return;
    }
    p->on_result(p->arg, res);
}
