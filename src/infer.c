/* infer.c — the executor pool. Threads "infer:<i>" wait on one condition variable;
 * mailbox posts mark their stream ready. An executor picks the ready, idle stream with
 * the smallest virtual time (weighted fair queueing by target fps), takes its newest
 * frame, runs the stream's workers on it and hands the results to on_result. Each
 * executor keeps its own detectors (one cv::dnn::Net per model) in a small cache that
 * evicts the least recently used; a model that failed to load is not tried again
 * before its back-off ends. Model loads for live changes run as jobs on "jobs:model"
 * and leave the loaded net as a spare for the first executor that needs it. */
#include "vigil/infer.h"
#include "infer_internal.h"
#include "vigil/common.h"
#include "vigil/detector.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- specs ---------------------------------------------------------------------------- */

vg_stream_spec_t *vg_stream_spec_ref(vg_stream_spec_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void vg_stream_spec_unref(vg_stream_spec_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    for (size_t i = 0; i < s->n_workers; i++) {
        free(s->workers[i].worker_id);
        free(s->workers[i].model_id);
        free(s->workers[i].unavailable_reason);
    }
    free(s->workers);
    free(s->stream_id);
    free(s);
}

void vg_infer_result_free(vg_infer_result_t *r)
{
    if (!r) return;
    json_decref(r->results);
    free(r->stream_id);
    free(r);
}

/* ---- detector caches -------------------------------------------------------------------- */

static const vg_model_cfg_t *find_model(vg_infer_t *p, const char *model_id)
{
    for (size_t i = 0; model_id && i < p->n_models; i++)
        if (strcmp(p->models[i].model_id, model_id) == 0) return &p->models[i];
    return NULL;
}

static int load_detector(const vg_model_cfg_t *m, vg_detector_t **out, char *err, size_t len)
{
    static const char *const formats[] = {"darknet", "onnx", "builtin-hog"};
    vg_detector_spec_t spec = {
        .model_id = m->model_id,
        .format = formats[m->format],
        .config_path = m->config,
        .weights_path = m->weights,
        .labels_path = m->labels,
        .input_size = m->input_size,
    };
    return vg_detector_new(&spec, out, err, len);
}

/* Back-off of a model that failed to load: until `retry_at`, executors answer with
 * the saved error instead of reading the files again. Caller holds p->mu. */
static failed_load_t *failed_find_locked(vg_infer_t *p, const char *model_id)
{
    for (failed_load_t *f = p->failed; f; f = f->next)
        if (strcmp(f->model_id, model_id) == 0) return f;
    return NULL;
}

static void note_load(vg_infer_t *p, const char *model_id, bool ok, const char *err)
{
    pthread_mutex_lock(&p->mu);
    failed_load_t **pp = &p->failed;
    while (*pp && strcmp((*pp)->model_id, model_id) != 0)
        pp = &(*pp)->next;
    failed_load_t *f = *pp;
    if (ok && f) {
        *pp = f->next;
        free(f->model_id);
        free(f);
    } else if (!ok) {
        if (!f) {
            f = vg_xcalloc(1, sizeof(*f));
            f->model_id = vg_xstrdup(model_id);
            f->next = p->failed;
            p->failed = f;
        }
        f->delay_s = f->delay_s > 0 ? f->delay_s * 2 : VG_INFER_LOAD_RETRY_MIN_S;
        if (f->delay_s > VG_INFER_LOAD_RETRY_MAX_S) f->delay_s = VG_INFER_LOAD_RETRY_MAX_S;
        f->retry_at = vg_now_mono() + f->delay_s;
        snprintf(f->error, sizeof(f->error), "%s", err);
    }
    pthread_mutex_unlock(&p->mu);
    vg_series_inc(ok ? p->m_loads_ok : p->m_loads_failed);
}

/* A spare net the loader left for model_id (taken), or NULL. Caller holds p->mu. */
static vg_detector_t *take_spare_locked(vg_infer_t *p, const char *model_id)
{
    for (spare_t **sp = &p->spares; *sp; sp = &(*sp)->next) {
        if (strcmp((*sp)->model_id, model_id) == 0) {
            spare_t *s = *sp;
            *sp = s->next;
            vg_detector_t *d = s->det;
            free(s->model_id);
            free(s);
            return d;
        }
    }
    return NULL;
}

/* Puts d in the executor's cache, evicting the least recently used net when full. */
static void cache_put(executor_t *e, const char *model_id, vg_detector_t *d)
{
    size_t slot = e->n_dets;
    if (slot == VG_INFER_MAX_CACHED_MODELS) {
        slot = 0;
        for (size_t i = 1; i < e->n_dets; i++)
            if (e->cache[i].used < e->cache[slot].used) slot = i;
        VG_DEBUG("infer", "model_evicted", "{s:i, s:s}", "executor", e->index, "model_id",
                 e->cache[slot].model_id);
        vg_detector_free(e->cache[slot].det);
        free(e->cache[slot].model_id);
    } else {
        e->n_dets++;
    }
    e->cache[slot] = (cached_det_t){vg_xstrdup(model_id), d, ++e->clock};
}

/* The executor's own detector for model_id: its cache, a spare from a load job, or a
 * fresh load (unless the model is backing off after a failure). NULL with err set. */
vg_detector_t *vg_infer_executor_detector(executor_t *e, const char *model_id, char *err,
                                          size_t len)
{
    for (size_t i = 0; i < e->n_dets; i++) {
        if (strcmp(e->cache[i].model_id, model_id) == 0) {
            e->cache[i].used = ++e->clock;
            return e->cache[i].det;
        }
    }
    vg_infer_t *p = e->pool;
    pthread_mutex_lock(&p->mu);
    vg_detector_t *d = take_spare_locked(p, model_id);
    const vg_model_cfg_t *m = find_model(p, model_id);
    failed_load_t *f = d ? NULL : failed_find_locked(p, model_id);
    bool backing_off = f && vg_now_mono() < f->retry_at;
    if (backing_off) snprintf(err, len, "%s", f->error);
    pthread_mutex_unlock(&p->mu);
    if (backing_off) return NULL;
    if (!d) {
        if (!m) {
            snprintf(err, len, "model '%s' is not defined", model_id);
            return NULL;
        }
        int rc = load_detector(m, &d, err, len);
        note_load(p, model_id, rc == 0, err);
        if (rc != 0) return NULL;
    }
    cache_put(e, model_id, d);
    return d;
}

/* ---- scheduling ---------------------------------------------------------------------------- */

static void on_post(void *arg)
{
    vg_infer_stream_t *s = arg;
    vg_infer_t *p = s->pool;
    pthread_mutex_lock(&p->mu);
    if (!s->ready) s->ready_at = vg_now_mono();
    s->ready = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static vg_infer_stream_t *pick_locked(vg_infer_t *p)
{
    vg_infer_stream_t *best = NULL;
    for (vg_infer_stream_t *s = p->streams; s; s = s->next) {
        if (!s->ready || s->busy || s->detached) continue;
        if (s->vtime < p->vclock) s->vtime = p->vclock; /* an idle stream earns no credit */
        /* equal virtual times (streams of one fps that all caught up) go oldest first,
         * so a burst of aligned keyframes is served in arrival order */
        if (!best || s->vtime < best->vtime ||
            (s->vtime == best->vtime && s->ready_at < best->ready_at))
            best = s;
    }
    return best;
}

static void unlink_locked(vg_infer_t *p, vg_infer_stream_t *s)
{
    for (vg_infer_stream_t **pp = &p->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            return;
        }
    }
}

static void stream_free(vg_infer_stream_t *s)
{
    for (size_t i = 0; i < s->n_state; i++) {
        vg_motion_free(s->state[i].motion);
        vg_flow_free(s->state[i].flow);
        free(s->state[i].gate);
        json_decref(s->state[i].dets);
    }
    vg_stream_spec_unref(s->spec);
    free(s);
}

static void *executor_main(void *arg)
{
    executor_t *e = arg;
    vg_infer_t *p = e->pool;
    char name[16];
    snprintf(name, sizeof(name), "infer:%d", e->index);
    pthread_setname_np(pthread_self(), name);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        vg_infer_stream_t *s = pick_locked(p);
        if (!s) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        s->busy = true;
        s->ready = false;
        vg_stream_spec_t *spec = vg_stream_spec_ref(s->spec);
        p->vclock = s->vtime;
        pthread_mutex_unlock(&p->mu);

        vg_frame_t *f = vg_mailbox_take(s->mb);
        if (f) {
            vg_infer_run_frame(e, s, spec, f);
            vg_frame_unref(f);
        }
        pthread_mutex_lock(&p->mu);
        s->busy = false;
        if (f) s->vtime += 1.0 / (spec->fps > 0 ? spec->fps : 1.0);
        vg_stream_spec_unref(spec);
        if (s->detached) {
            unlink_locked(p, s);
            pthread_mutex_unlock(&p->mu);
            s->done(s->done_arg);
            stream_free(s);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < e->n_dets; i++) {
        vg_detector_free(e->cache[i].det);
        free(e->cache[i].model_id);
    }
    return NULL;
}

/* ---- loader ---------------------------------------------------------------------------------- */

typedef struct {
    vg_infer_t *pool; /* outlives the jobs: the gateway stops them before freeing it */
    vg_model_cfg_t model;
    void (*done)(void *arg, bool ok, const char *error);
    void *arg;
    bool ok;
    char err[512];
} load_job_t;

/* "jobs:model": loads the net and keeps it as a spare (one per model). */
static void load_run(void *job)
{
    load_job_t *j = job;
    vg_infer_t *p = j->pool;
    vg_detector_t *d = NULL;
    double t0 = vg_now_mono();
    j->ok = load_detector(&j->model, &d, j->err, sizeof(j->err)) == 0;
    VG_INFO("infer", j->ok ? "model_loaded" : "model_load_failed", "{s:s, s:f, s:s}", "model_id",
            j->model.model_id, "load_ms", (vg_now_mono() - t0) * 1000.0, "error", j->err);
    note_load(p, j->model.model_id, j->ok, j->err);
    pthread_mutex_lock(&p->mu);
    bool have = false; /* one spare per model: repeated changes must not pile nets up */
    for (spare_t *sp = p->spares; sp; sp = sp->next)
        have |= strcmp(sp->model_id, j->model.model_id) == 0;
    if (j->ok && !have) {
        spare_t *s = vg_xcalloc(1, sizeof(*s));
        s->model_id = vg_xstrdup(j->model.model_id);
        s->det = d;
        s->next = p->spares;
        p->spares = s;
        d = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    vg_detector_free(d);
}

static void load_done(void *ctx, void *job, bool ran)
{
    (void)ctx;
    load_job_t *j = job;
    j->done(j->arg, ran && j->ok, ran ? j->err : "shutting down");
    vg_model_cfg_free_copy(&j->model);
    free(j);
}

void vg_infer_load_model(vg_infer_t *p, const vg_model_cfg_t *m,
                         void (*done)(void *arg, bool ok, const char *error), void *arg)
{
    load_job_t *j = vg_xcalloc(1, sizeof(*j));
    j->pool = p;
    vg_model_cfg_copy(&j->model, m);
    j->done = done;
    j->arg = arg;
    static const vg_job_ops_t ops = {load_run, load_done, NULL};
    vg_jobs_submit(p->jobs, VG_JOB_MODEL_LOAD, &ops, j);
}

/* ---- pool ---------------------------------------------------------------------------------- */

int vg_infer_new(const vg_infer_cfg_t *cfg, vg_infer_t **out)
{
    vg_infer_t *p = vg_xcalloc(1, sizeof(*p));
    p->instance_id = vg_xstrdup(cfg->instance_id);
    p->on_result = cfg->on_result;
    p->arg = cfg->arg;
    p->jobs = cfg->jobs;
    vg_metric_t *loads = vg_metric_counter("vigil_model_loads_total",
                                           "Detector model loads from disk by result", "result");
    p->m_loads_ok = vg_metric_series(loads, "success");
    p->m_loads_failed = vg_metric_series(loads, "error");
    p->n_models = cfg->models->n_models;
    p->models = vg_xcalloc(p->n_models, sizeof(*p->models));
    for (size_t i = 0; i < p->n_models; i++)
        vg_model_cfg_copy(&p->models[i], &cfg->models->models[i]);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->n_exec = cfg->threads > 0 ? cfg->threads : (int)(cores > 0 ? cores : 1);
    VG_CHECK(pthread_mutex_init(&p->mu, NULL) == 0);
    VG_CHECK(pthread_cond_init(&p->cv, NULL) == 0);
    vg_detector_set_threads(1); /* our executors are the parallelism */
    vg_infer_metrics_init(p);
    p->exec = vg_xcalloc((size_t)p->n_exec, sizeof(*p->exec));
    for (int i = 0; i < p->n_exec; i++) {
        p->exec[i].pool = p;
        p->exec[i].index = i;
        VG_CHECK(pthread_create(&p->exec[i].thread, NULL, executor_main, &p->exec[i]) == 0);
    }
    VG_INFO("infer", "started", "{s:i, s:i}", "threads", p->n_exec, "models", (int)p->n_models);
    *out = p;
    return VG_OK;
}

void vg_infer_free(vg_infer_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_exec; i++)
        pthread_join(p->exec[i].thread, NULL);
    while (p->streams) {
        vg_infer_stream_t *s = p->streams;
        p->streams = s->next;
        if (s->done) s->done(s->done_arg);
        stream_free(s);
    }
    while (p->spares) {
        spare_t *s = p->spares;
        p->spares = s->next;
        vg_detector_free(s->det);
        free(s->model_id);
        free(s);
    }
    while (p->failed) {
        failed_load_t *f = p->failed;
        p->failed = f->next;
        free(f->model_id);
        free(f);
    }
    for (size_t i = 0; i < p->n_models; i++)
        vg_model_cfg_free_copy(&p->models[i]);
    free(p->models);
    free(p->exec);
    free(p->instance_id);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int vg_infer_threads(const vg_infer_t *p)
{
    return p->n_exec;
}

vg_infer_stream_t *vg_infer_attach(vg_infer_t *p, vg_mailbox_t *mb, vg_stream_spec_t *spec)
{
    vg_infer_stream_t *s = vg_xcalloc(1, sizeof(*s));
    s->pool = p;
    s->mb = mb;
    s->spec = vg_stream_spec_ref(spec);
    pthread_mutex_lock(&p->mu);
    s->vtime = p->vclock;
    s->next = p->streams;
    p->streams = s;
    pthread_mutex_unlock(&p->mu);
    vg_mailbox_set_notify(mb, on_post, s);
    return s;
}

void vg_infer_set_spec(vg_infer_stream_t *s, vg_stream_spec_t *spec)
{
    vg_infer_t *p = s->pool;
    vg_stream_spec_ref(spec);
    pthread_mutex_lock(&p->mu);
    vg_stream_spec_t *old = s->spec;
    s->spec = spec;
    pthread_mutex_unlock(&p->mu);
    vg_stream_spec_unref(old);
}

void vg_infer_detach(vg_infer_stream_t *s, void (*done)(void *arg), void *arg)
{
    vg_infer_t *p = s->pool;
    vg_mailbox_set_notify(s->mb, NULL, NULL);
    pthread_mutex_lock(&p->mu);
    s->detached = true;
    s->done = done;
    s->done_arg = arg;
    bool idle = !s->busy;
    if (idle) unlink_locked(p, s);
    pthread_mutex_unlock(&p->mu);
    if (idle) {
        done(arg);
        stream_free(s);
    }
}
