/* stream.c — the loop thread's stream registry. Each stream: a configuration copy,
 * an immutable worker spec shared with the inference pool, a mailbox, a capture
 * thread. Capture state and inference results arrive through the loop queue tagged
 * with the stream's generation, so a message for a stream that was removed (or
 * replaced under the same id) is ignored. Removal never blocks the loop: the removed
 * stream is handed (owned) to a VG_JOB_REAP job, which joins the capture, waits for the
 * pool to let go, and frees the rest on "jobs:reaper"; its completion on the loop
 * removes the stream's metric series once no stream of that id lives or is dying. */
#include "vigil/stream.h"
#include "vigil/capture.h"
#include "vigil/jobs.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vg_stream {
    vg_streams_t *reg;
    uint64_t gen;
    uint64_t cfg_rev; /* bumped by every vg_stream_apply */
    vg_stream_cfg_t *cfg;
    bool from_file;
    vg_stream_spec_t *spec;
    vg_mailbox_t *mb;
    vg_capture_t *cap;
    vg_infer_stream_t *inf;
    vg_capture_state_t state;
    char error[256];
    json_t *latest;
    double latest_at;
    vg_worker_stats_t wstats[VG_STREAM_MAX_WORKER_STATS];
};

struct vg_streams {
    vg_streams_opts_t o;
    vg_stream_t **items;
    size_t n, cap;
    uint64_t next_gen;
    char **dying; /* ids of removed streams not reaped yet, one entry per stream */
    size_t n_dying, cap_dying;
    void (*all_done)(void *arg);
    void *all_done_arg;
    vg_metric_t *m_state;
};

typedef struct {
    char *stream_id;
    uint64_t gen;
    vg_capture_state_t state;
    char *error;
} state_msg_t;

/* ---- specs and views ------------------------------------------------------------------- */

/* The capture view a worker reads (vg_config_worker_view decides, so the validators
 * count the same views the capture gets). */
static vg_capture_view_t view_for(const vg_config_t *cfg, const vg_worker_cfg_t *w)
{
    vg_view_cfg_t v = vg_config_worker_view(cfg, w);
    return (vg_capture_view_t){v.x, v.y, v.w, v.h, v.out_w, v.out_h};
}

/* A worker the validators admitted that still cannot run (a reload changed a model's
 * input size, say): reported in describe, the log and vigil_worker_state, never dropped
 * silently. */
static void no_slot(const vg_stream_cfg_t *sc, vg_worker_spec_t *ws, const char *what)
{
    ws->available = false;
    free(ws->unavailable_reason);
    ws->unavailable_reason = vg_xasprintf("the stream's workers need %s (limits.h)", what);
    VG_ERROR("stream", "worker_unavailable", "{s:s, s:s, s:s}", "stream_id", sc->stream_id,
             "worker", ws->worker_id, "reason", ws->unavailable_reason);
}

static vg_stream_spec_t *build_spec(const vg_config_t *cfg, const vg_stream_cfg_t *sc, uint64_t gen,
                                    vg_capture_view_t *views, size_t *n_views)
{
    vg_stream_spec_t *sp = vg_xcalloc(1, sizeof(*sp));
    atomic_init(&sp->refs, 1);
    sp->stream_id = vg_xstrdup(sc->stream_id);
    sp->gen = gen;
    sp->fps = sc->fps;
    sp->n_workers = sc->n_workers;
    sp->workers = vg_xcalloc(sc->n_workers ? sc->n_workers : 1, sizeof(*sp->workers));
    *n_views = 0;
    for (size_t i = 0; i < sc->n_workers; i++) {
        const vg_worker_cfg_t *w = &sc->workers[i];
        vg_worker_spec_t *ws = &sp->workers[i];
        ws->worker_id = vg_xstrdup(w->worker_id);
        ws->type = w->type;
        ws->model_id = vg_xstrdup(w->model_id);
        ws->confidence_threshold = w->confidence_threshold;
        ws->roi = w->roi;
        ws->gate = w->gate;
        ws->available = w->available;
        ws->unavailable_reason = vg_xstrdup(w->unavailable_reason);
        ws->view = -1;
        if (!w->available) {
            VG_WARN("stream", "worker_unavailable", "{s:s, s:s, s:s}", "stream_id", sc->stream_id,
                    "worker", ws->worker_id, "reason", ws->unavailable_reason);
            continue;
        }
        if (i >= VG_LIMIT_WORKERS_PER_STREAM) {
            no_slot(sc, ws, "more than " VG_STR(VG_LIMIT_WORKERS_PER_STREAM) " workers");
            continue;
        }
        vg_capture_view_t v = view_for(cfg, w);
        size_t j = 0;
        while (j < *n_views && memcmp(&views[j], &v, sizeof(v)) != 0)
            j++;
        if (j == *n_views && j < VG_CAPTURE_MAX_VIEWS) views[(*n_views)++] = v;
        if (j < VG_CAPTURE_MAX_VIEWS)
            ws->view = (int)j;
        else
            no_slot(sc, ws, "more than " VG_STR(VG_LIMIT_VIEWS_PER_STREAM) " distinct views");
    }
    return sp;
}

/* ---- capture and inference callbacks (other threads -> loop) ------------------------------ */

static void on_state_loop(void *ctx, void *msg);

static void on_capture_state(void *arg, const char *stream_id, vg_capture_state_t state,
                             const char *error)
{
    vg_stream_t *s = arg; /* only s->reg and s->gen are read: both immutable */
    state_msg_t *m = vg_xcalloc(1, sizeof(*m));
    m->stream_id = vg_xstrdup(stream_id);
    m->gen = s->gen;
    m->state = state;
    m->error = vg_xstrdup(error);
    vg_loopq_post(s->reg->o.q, on_state_loop, s->reg, m);
}

/* vigil_stream_state{stream_id, state}: 1 for the current state, 0 for the others. */
static void publish_state_metric(vg_streams_t *ss, const vg_stream_t *s)
{
    static const vg_capture_state_t states[] = {VG_CAPTURE_CONNECTING, VG_CAPTURE_RUNNING,
                                                VG_CAPTURE_RECONNECTING, VG_CAPTURE_FAILED};
    for (size_t i = 0; i < VG_ARRAY_LEN(states); i++)
        vg_series_set(
            vg_metric_series(ss->m_state, s->cfg->stream_id, vg_capture_state_name(states[i])),
            s->state == states[i] ? 1 : 0);
}

vg_stream_t *vg_streams_find_gen(vg_streams_t *ss, const char *id, uint64_t gen)
{
    vg_stream_t *s = vg_streams_find(ss, id);
    return s && s->gen == gen ? s : NULL;
}

static void on_state_loop(void *ctx, void *msg)
{
    vg_streams_t *ss = ctx;
    state_msg_t *m = msg;
    vg_stream_t *s = vg_streams_find_gen(ss, m->stream_id, m->gen);
    if (s && m->state != VG_CAPTURE_STOPPED) {
        s->state = m->state;
        publish_state_metric(ss, s);
        snprintf(s->error, sizeof(s->error), "%s", m->error ? m->error : "");
        if (ss->o.on_state) ss->o.on_state(ss->o.arg, s);
    }
    free(m->stream_id);
    free(m->error);
    free(m);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int start_capture(vg_stream_t *s, const vg_capture_view_t *views, size_t n_views)
{
    const vg_config_t *cfg = s->reg->o.cfg;
    vg_capture_cfg_t cc = {
        .stream_id = s->cfg->stream_id,
        .url = s->cfg->url,
        .fps = s->cfg->fps,
        .rtsp_transport = cfg->capture.rtsp_transport,
        .stall_timeout_s = cfg->capture.stall_timeout_s,
        .reconnect_initial_s = cfg->capture.reconnect_initial_s,
        .reconnect_max_s = cfg->capture.reconnect_max_s,
        .open_timeout_s = 10,
        .read_timeout_s = cfg->capture.stall_timeout_s,
        .decoder_threads = 1,
        .still_interval_s = cfg->capture.still_interval_s,
        .still_after_s = cfg->capture.still_after_s,
        .n_views = n_views,
        .mailbox = s->mb,
        .on_state = on_capture_state,
        .on_state_arg = s,
    };
    memcpy(cc.views, views, n_views * sizeof(*views));
    if (vg_capture_new(&cc, &s->cap) != 0) return VG_EINVAL;
    return vg_capture_start(s->cap);
}

int vg_streams_add(vg_streams_t *ss, const vg_stream_cfg_t *sc, bool from_file)
{
    if (vg_streams_find(ss, sc->stream_id)) return VG_EEXIST;
    vg_stream_t *s = vg_xcalloc(1, sizeof(*s));
    s->reg = ss;
    s->gen = ++ss->next_gen;
    s->cfg = vg_stream_cfg_dup(sc);
    s->from_file = from_file;
    s->state = VG_CAPTURE_CONNECTING;
    s->mb = vg_mailbox_new();
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];
    size_t n_views = 0;
    s->spec = build_spec(ss->o.cfg, s->cfg, s->gen, views, &n_views);
    s->inf = vg_infer_attach(ss->o.pool, s->mb, s->spec);
    if (ss->n == ss->cap)
        ss->items = vg_xrealloc(ss->items, (ss->cap = ss->cap * 2 + 8) * sizeof(*ss->items));
    ss->items[ss->n++] = s;
    publish_state_metric(ss, s);
    char *red = vg_redact_url(s->cfg->url);
    if (start_capture(s, views, n_views) != 0) {
        s->state = VG_CAPTURE_FAILED;
        snprintf(s->error, sizeof(s->error), "capture could not start");
    }
    VG_INFO("stream", "added", "{s:s, s:s, s:f, s:i, s:b}", "stream_id", sc->stream_id, "url", red,
            "fps", sc->fps, "workers", (int)sc->n_workers, "from_file", from_file);
    free(red);
    return VG_OK;
}

vg_stream_t *vg_stream_apply(vg_stream_t *s, const vg_stream_cfg_t *sc)
{
    if (strcmp(s->cfg->url, sc->url) != 0) {
        /* a new camera: the old capture is reaped off the loop, a new one starts */
        vg_streams_t *ss = s->reg;
        bool from_file = s->from_file;
        vg_streams_remove(ss, s->cfg->stream_id);
        vg_streams_add(ss, sc, from_file);
        return vg_streams_find(ss, sc->stream_id);
    }
    vg_stream_cfg_t *old = s->cfg;
    s->cfg = vg_stream_cfg_dup(sc);
    s->cfg_rev++;
    vg_stream_cfg_free(old);
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];
    size_t n_views = 0;
    vg_stream_spec_t *spec = build_spec(s->reg->o.cfg, s->cfg, s->gen, views, &n_views);
    if (s->cap) {
        vg_capture_set_views(s->cap, views, n_views);
        vg_capture_set_fps(s->cap, s->cfg->fps);
    }
    vg_infer_set_spec(s->inf, spec);
    vg_stream_spec_unref(s->spec);
    s->spec = spec;
    return s;
}

void vg_stream_restart(vg_stream_t *s)
{
    if (s->cap) vg_capture_restart(s->cap);
}

/* ---- results ---------------------------------------------------------------------------- */

/* Per-worker counters for telemetry, from the results themselves (loop thread). */
static void account(vg_stream_t *s, const vg_infer_result_t *r)
{
    size_t i;
    json_t *msg;
    json_array_foreach(r->results, i, msg)
    {
        const char *wid = json_string_value(json_object_get(msg, "worker"));
        for (size_t k = 0; wid && k < s->cfg->n_workers && k < VG_STREAM_MAX_WORKER_STATS; k++) {
            if (strcmp(s->cfg->workers[k].worker_id, wid) != 0) continue;
            vg_worker_stats_t *w = &s->wstats[k];
            w->results++;
            w->runs += json_is_false(json_object_get(msg, "detector_ran")) ? 0 : 1;
            w->inference_ms += json_number_value(json_object_get(msg, "inference_ms"));
            if (w->last_seq && r->seq > w->last_seq + 1) w->dropped += r->seq - w->last_seq - 1;
            w->last_seq = r->seq;
        }
    }
}

void vg_stream_take_worker_stats(vg_stream_t *s, size_t i, vg_worker_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= VG_STREAM_MAX_WORKER_STATS) return;
    *out = s->wstats[i];
    uint64_t last = s->wstats[i].last_seq;
    memset(&s->wstats[i], 0, sizeof(s->wstats[i]));
    s->wstats[i].last_seq = last;
}

double vg_stream_fps_measured(const vg_stream_t *s)
{
    vg_capture_stats_t st;
    if (!s->cap) return 0;
    vg_capture_stats(s->cap, &st);
    return st.fps;
}

bool vg_stream_capture_stats(const vg_stream_t *s, vg_capture_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!s->cap) return false;
    vg_capture_stats(s->cap, out);
    return true;
}

static void on_result_loop(void *ctx, void *msg)
{
    vg_streams_t *ss = ctx;
    vg_infer_result_t *r = msg;
    vg_stream_t *s = vg_streams_find_gen(ss, r->stream_id, r->gen); /* not a removed one's */
    if (s) {
        json_decref(s->latest);
        s->latest = json_incref(r->results);
        s->latest_at = vg_now_wall();
        account(s, r);
        if (ss->o.on_result) ss->o.on_result(ss->o.arg, s, r);
    }
    vg_infer_result_free(r);
}

/* The inference pool's callback: executor thread. */
void vg_streams_post_result(vg_streams_t *ss, vg_infer_result_t *r)
{
    vg_loopq_post(ss->o.q, on_result_loop, ss, r);
}

/* ---- removal and the reaper ----------------------------------------------------------------- */

typedef struct {
    vg_stream_t *s; /* removed from the registry: owned by the job */
    char *id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool detached;
} reap_job_t;

static bool is_dying(const vg_streams_t *ss, const char *id)
{
    for (size_t i = 0; i < ss->n_dying; i++)
        if (strcmp(ss->dying[i], id) == 0) return true;
    return false;
}

/* Loop thread: the stream is gone. Its series go only when no stream of that id is live
 * or still dying (DELETE X, POST X, DELETE X: the second X still writes to them). */
static void reaped_done(void *ctx, void *job, bool ran)
{
    vg_streams_t *ss = ctx;
    reap_job_t *j = job;
    VG_CHECK(ran); /* reaps run even at stop */
    size_t i = 0;
    while (i < ss->n_dying && strcmp(ss->dying[i], j->id) != 0)
        i++;
    VG_CHECK(i < ss->n_dying);
    free(ss->dying[i]);
    memmove(&ss->dying[i], &ss->dying[i + 1], (ss->n_dying - i - 1) * sizeof(*ss->dying));
    ss->n_dying--;
    if (!vg_streams_find(ss, j->id) && !is_dying(ss, j->id))
        vg_metrics_remove_label("stream_id", j->id);
    free(j->id);
    free(j);
    if (ss->n_dying == 0 && ss->all_done && ss->n == 0) {
        void (*done)(void *) = ss->all_done;
        ss->all_done = NULL;
        done(ss->all_done_arg);
    }
}

static void on_detached(void *arg)
{
    reap_job_t *j = arg;
    pthread_mutex_lock(&j->mu);
    j->detached = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* "jobs:reaper": joins the capture, waits for the pool to let go, frees the stream. */
static void reap_run(void *job)
{
    reap_job_t *j = job;
    vg_stream_t *s = j->s;
    vg_capture_free(s->cap); /* joins the capture thread */
    VG_CHECK(pthread_mutex_init(&j->mu, NULL) == 0);
    VG_CHECK(pthread_cond_init(&j->cv, NULL) == 0);
    vg_infer_detach(s->inf, on_detached, j);
    pthread_mutex_lock(&j->mu);
    while (!j->detached)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    vg_mailbox_free(s->mb);
    vg_stream_spec_unref(s->spec);
    json_decref(s->latest);
    vg_stream_cfg_free(s->cfg);
    free(s);
    j->s = NULL;
}

int vg_streams_remove(vg_streams_t *ss, const char *stream_id)
{
    size_t i = 0;
    while (i < ss->n && strcmp(ss->items[i]->cfg->stream_id, stream_id) != 0)
        i++;
    if (i == ss->n) return VG_ENOTFOUND;
    vg_stream_t *s = ss->items[i];
    memmove(&ss->items[i], &ss->items[i + 1], (ss->n - i - 1) * sizeof(*ss->items));
    ss->n--;
    if (s->cap) vg_capture_request_stop(s->cap); /* returns at once; the reaper joins */
    VG_INFO("stream", "removed", "{s:s}", "stream_id", stream_id);
    reap_job_t *j = vg_xcalloc(1, sizeof(*j));
    j->s = s;
    j->id = vg_xstrdup(s->cfg->stream_id);
    if (ss->n_dying == ss->cap_dying)
        ss->dying =
            vg_xrealloc(ss->dying, (ss->cap_dying = ss->cap_dying * 2 + 8) * sizeof(*ss->dying));
    ss->dying[ss->n_dying++] = vg_xstrdup(j->id);
    vg_job_ops_t ops = {reap_run, reaped_done, ss};
    vg_jobs_submit(ss->o.jobs, VG_JOB_REAP, &ops, j);
    return VG_OK;
}

void vg_streams_stop_all(vg_streams_t *ss, void (*done)(void *arg), void *arg)
{
    while (ss->n)
        vg_streams_remove(ss, ss->items[ss->n - 1]->cfg->stream_id);
    if (ss->n_dying == 0) {
        done(arg);
        return;
    }
    ss->all_done = done;
    ss->all_done_arg = arg;
}

/* ---- registry -------------------------------------------------------------------------------- */

vg_streams_t *vg_streams_new(const vg_streams_opts_t *o)
{
    vg_streams_t *ss = vg_xcalloc(1, sizeof(*ss));
    ss->o = *o;
    ss->m_state = vg_metric_gauge("vigil_stream_state", "1 for the stream's current state",
                                  "stream_id,state");
    return ss;
}

void vg_streams_shutdown(vg_streams_t *ss)
{
    if (!ss) return;
    ss->all_done = NULL;
    while (ss->n)
        vg_streams_remove(ss, ss->items[ss->n - 1]->cfg->stream_id);
}

void vg_streams_free(vg_streams_t *ss)
{
    if (!ss) return;
    VG_CHECK(ss->n == 0 && ss->n_dying == 0); /* shutdown, jobs stopped, queue drained */
    free(ss->items);
    free(ss->dying);
    free(ss);
}

void vg_streams_set_config(vg_streams_t *ss, const vg_config_t *cfg)
{
    ss->o.cfg = cfg;
}

vg_stream_t *vg_streams_find(vg_streams_t *ss, const char *stream_id)
{
    for (size_t i = 0; stream_id && i < ss->n; i++)
        if (strcmp(ss->items[i]->cfg->stream_id, stream_id) == 0) return ss->items[i];
    return NULL;
}

size_t vg_streams_count(const vg_streams_t *ss)
{
    return ss->n;
}

vg_stream_t *vg_streams_at(vg_streams_t *ss, size_t i)
{
    return i < ss->n ? ss->items[i] : NULL;
}

/* ---- accessors ---------------------------------------------------------------------------------
 */

const char *vg_stream_id(const vg_stream_t *s)
{
    return s->cfg->stream_id;
}

uint64_t vg_stream_gen(const vg_stream_t *s)
{
    return s->gen;
}

uint64_t vg_stream_cfg_rev(const vg_stream_t *s)
{
    return s->cfg_rev;
}

const vg_stream_cfg_t *vg_stream_cfg(const vg_stream_t *s)
{
    return s->cfg;
}

bool vg_stream_from_file(const vg_stream_t *s)
{
    return s->from_file;
}

const char *vg_stream_state(const vg_stream_t *s)
{
    return vg_capture_state_name(s->state);
}

const char *vg_stream_error(const vg_stream_t *s)
{
    return s->error;
}

vg_mailbox_t *vg_stream_mailbox(vg_stream_t *s)
{
    return s->mb;
}

json_t *vg_stream_latest(const vg_stream_t *s, double *at)
{
    if (at) *at = s->latest_at;
    return s->latest;
}

json_t *vg_stream_gate_json(const vg_motion_gate_cfg_t *g)
{
    return json_pack("{s:b, s:f, s:f}", "enabled", g->enabled, "min_change", g->min_change,
                     "refresh_s", g->refresh_s);
}

json_t *vg_stream_describe(const vg_stream_t *s)
{
    vg_capture_stats_t st;
    memset(&st, 0, sizeof(st));
    if (s->cap) vg_capture_stats(s->cap, &st);
    char *url = vg_redact_url(s->cfg->url);
    json_t *workers = json_array();
    for (size_t i = 0; i < s->cfg->n_workers; i++) {
        const vg_worker_cfg_t *w = &s->cfg->workers[i];
        const vg_worker_spec_t *ws = i < s->spec->n_workers ? &s->spec->workers[i] : NULL;
        bool available = ws ? ws->available : w->available;
        json_t *wj =
            json_pack("{s:s, s:s, s:s?, s:f, s:s}", "worker_id", w->worker_id, "type",
                      vg_worker_type_name(w->type), "model_id", w->model_id, "confidence_threshold",
                      w->confidence_threshold, "state", available ? "available" : "unavailable");
        if (!available)
            json_object_set_new(wj, "reason",
                                json_string(ws ? ws->unavailable_reason : w->unavailable_reason));
        if (w->type == VG_WORKER_PERSON || w->type == VG_WORKER_POSE)
            json_object_set_new(wj, "motion_gate", vg_stream_gate_json(&w->gate));
        if (w->roi.w)
            json_object_set_new(wj, "roi",
                                json_pack("{s:i, s:i, s:i, s:i}", "x", w->roi.x, "y", w->roi.y, "w",
                                          w->roi.w, "h", w->roi.h));
        json_array_append_new(workers, wj);
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:o, s:I, s:I, s:I, s:I, s:I}", "stream_id",
                  s->cfg->stream_id, "url", url, "state", vg_capture_state_name(s->state), "error",
                  s->error, "fps_target", s->cfg->fps, "fps_measured", st.fps, "workers", workers,
                  "frames_decoded", (json_int_t)st.frames_decoded, "frames_sampled",
                  (json_int_t)st.frames_sampled, "frames_dropped", (json_int_t)st.frames_dropped,
                  "reconnects", (json_int_t)st.reconnects, "stalls", (json_int_t)st.stalls);
    free(url);
    return j;
}
