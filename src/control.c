/* control.c — commands from MQTT and REST. A table names each command, where it
 * applies (instance or stream) and its parameters with their types and ranges; one
 * validator walks it. Applying builds the stream's next configuration as a copy and
 * swaps it in only when everything checked out; a model change first loads the model
 * off the loop thread and keeps the old one on failure. Loop thread only. */
#include "vigil/control.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEN_MAX VG_LIMIT_SEEN_COMMANDS
#define MAX_BUSY VG_LIMIT_BUSY_STREAMS

typedef enum { SCOPE_INSTANCE = 1, SCOPE_STREAM = 2, SCOPE_ANY = 3 } scope_t;
typedef enum { P_NUM, P_INT, P_ID, P_STR, P_OBJ, P_ANY } ptype_t;

typedef struct {
    const char *name;
    ptype_t type;
    bool required;
    double min, max;
} param_t;

typedef struct cmd_ctx cmd_ctx_t;
typedef void (*cmd_fn)(vg_control_t *c, cmd_ctx_t *x);

typedef struct {
    const char *name;
    scope_t scope;
    const param_t *params;
    size_t n_params;
    cmd_fn fn;
    bool any_param; /* add_stream: params go through the stream schema */
} command_t;

struct cmd_ctx {
    const command_t *cmd;
    char *command_id;
    char *command_name;
    char *stream_id;
    json_t *params;
    char *source, *who;
    vg_ack_fn ack;
    void *ack_arg;
    vg_stream_cfg_t *next; /* pending configuration (change_model) */
    char *model_id;
};

typedef struct waiter {
    vg_ack_fn fn;
    void *arg;
    struct waiter *next;
} waiter_t;

typedef struct {
    char *command_id;
    json_t *ack;         /* final ack, or NULL while in progress */
    waiter_t *waiters;   /* repeats that arrived while in progress, from other requesters */
    vg_ack_fn origin_fn; /* who sent the original */
    void *origin_arg;
} seen_t;

struct vg_control {
    vg_control_opts_t o;
    seen_t seen[SEEN_MAX];
    size_t seen_next;
    char *busy[MAX_BUSY];
    size_t n_busy;
    uint64_t id_counter;
    vg_metric_t *m_commands;
};

/* ---- acks --------------------------------------------------------------------------------- */

static json_t *make_ack(const cmd_ctx_t *x, const char *status, const char *code,
                        const char *message, const char *field)
{
    char ts[32];
    vg_format_time(vg_now_wall(), ts, sizeof(ts));
    json_t *err =
        code ? json_pack("{s:s, s:s, s:s?}", "code", code, "message", message, "field", field)
             : json_null();
    return json_pack("{s:s?, s:s?, s:s?, s:s, s:o, s:s, s:s?}", "command_id", x->command_id,
                     "command", x->command_name, "stream_id", x->stream_id, "status", status,
                     "error", err, "timestamp", ts, "source", x->source);
}

static seen_t *seen_find(vg_control_t *c, const char *id)
{
    for (size_t i = 0; id && i < SEEN_MAX; i++)
        if (c->seen[i].command_id && strcmp(c->seen[i].command_id, id) == 0) return &c->seen[i];
    return NULL;
}

/* Answers the repeats that waited for the outcome, with it. */
static void seen_release(seen_t *s, const json_t *ack)
{
    while (s->waiters) {
        waiter_t *w = s->waiters;
        s->waiters = w->next;
        if (ack) w->fn(w->arg, ack, true);
        free(w);
    }
}

static void seen_add(vg_control_t *c, const char *id, vg_ack_fn fn, void *arg)
{
    seen_t *s = &c->seen[c->seen_next];
    c->seen_next = (c->seen_next + 1) % SEEN_MAX;
    seen_release(s, s->ack); /* an entry recycled while in progress still answers */
    free(s->command_id);
    json_decref(s->ack);
    s->command_id = vg_xstrdup(id);
    s->ack = NULL;
    s->origin_fn = fn;
    s->origin_arg = arg;
}

/* False when the stream cannot be marked busy: VG_LIMIT_BUSY_STREAMS are already. */
static bool busy_set(vg_control_t *c, const char *stream_id, bool on)
{
    for (size_t i = 0; i < c->n_busy; i++) {
        if (strcmp(c->busy[i], stream_id) == 0) {
            if (!on) {
                free(c->busy[i]);
                c->busy[i] = c->busy[--c->n_busy];
            }
            return true;
        }
    }
    if (on && c->n_busy == MAX_BUSY) return false;
    if (on) c->busy[c->n_busy++] = vg_xstrdup(stream_id);
    return true;
}

static bool busy_get(const vg_control_t *c, const char *stream_id)
{
    for (size_t i = 0; stream_id && i < c->n_busy; i++)
        if (strcmp(c->busy[i], stream_id) == 0) return true;
    return false;
}

static void ctx_free(cmd_ctx_t *x)
{
    free(x->command_id);
    free(x->command_name);
    free(x->stream_id);
    free(x->source);
    free(x->who);
    free(x->model_id);
    json_decref(x->params);
    vg_stream_cfg_free(x->next);
    free(x);
}

/* Sends the final ack, remembers it, audits, frees the context. */
static void finish(vg_control_t *c, cmd_ctx_t *x, const char *status, const char *code,
                   const char *message, const char *field)
{
    json_t *ack = make_ack(x, status, code, message, field);
    seen_t *s = seen_find(c, x->command_id);
    if (s) {
        json_decref(s->ack);
        s->ack = json_incref(ack);
    }
    vg_series_inc(vg_metric_series(c->m_commands, x->cmd ? x->cmd->name : "invalid", status));
    vg_log(strcmp(status, "completed") == 0 ? VG_LOG_INFO : VG_LOG_WARN, "control", "command",
           "{s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:s?}", "command_id", x->command_id,
           "command", x->command_name, "stream_id", x->stream_id, "status", status, "code", code,
           "message", message, "source", x->source, "who", x->who);
    x->ack(x->ack_arg, ack, true);
    if (s) seen_release(s, ack);
    json_decref(ack);
    ctx_free(x);
}

static void reject(vg_control_t *c, cmd_ctx_t *x, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reject(vg_control_t *c, cmd_ctx_t *x, const char *code, const char *field,
                   const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(c, x, "rejected", code, msg, field);
}

/* ---- stream configuration helpers ------------------------------------------------------------ */

/* Workers a per-worker command targets: the named one, or every worker using a model. */
static bool targets(const vg_worker_cfg_t *w, const char *worker_id)
{
    if (worker_id) return strcmp(w->worker_id, worker_id) == 0;
    return w->type == VG_WORKER_PERSON || w->type == VG_WORKER_POSE;
}

static bool has_worker(const vg_stream_cfg_t *sc, const char *worker_id)
{
    for (size_t i = 0; i < sc->n_workers; i++)
        if (targets(&sc->workers[i], worker_id)) return true;
    return false;
}

/* Whether a model change reaches a worker: only person detectors take a detect model. */
static bool takes_model(const vg_stream_cfg_t *sc, const char *worker_id)
{
    for (size_t i = 0; i < sc->n_workers; i++)
        if (targets(&sc->workers[i], worker_id) && sc->workers[i].type == VG_WORKER_PERSON)
            return true;
    return false;
}

/* ---- applying ---------------------------------------------------------------------------------
 */

static void applied(vg_control_t *c, cmd_ctx_t *x, bool removed)
{
    if (c->o.on_changed) c->o.on_changed(c->o.arg, x->stream_id, removed);
    if (c->o.on_status) c->o.on_status(c->o.arg, "running");
    finish(c, x, "completed", NULL, NULL, NULL);
}

static void reconfiguring(vg_control_t *c)
{
    if (c->o.on_status) c->o.on_status(c->o.arg, "reconfiguring");
}

static vg_stream_cfg_t *next_cfg(vg_control_t *c, cmd_ctx_t *x, vg_stream_t *s);

/* A model load in flight: the command and the stream it was computed against. */
typedef struct {
    vg_control_t *c;
    cmd_ctx_t *x;
    uint64_t gen, cfg_rev;
} load_msg_t;

/* After the load: the stream must be the same one (id and generation); a configuration
 * changed meanwhile (a reload) is kept and the command's params applied on top of it. */
static void apply_loaded(vg_control_t *c, cmd_ctx_t *x, const load_msg_t *m)
{
    vg_stream_t *s = vg_streams_find_gen(c->o.streams, x->stream_id, m->gen);
    if (!s) {
        finish(c, x, "failed", "unknown_stream", "the stream was removed meanwhile", NULL);
        return;
    }
    if (vg_stream_cfg_rev(s) != m->cfg_rev) {
        vg_stream_cfg_free(x->next);
        free(x->model_id);
        x->model_id = NULL;
        x->next = next_cfg(c, x, s); /* validates again: rejects (and frees x) if invalid */
        if (!x->next) return;
    }
    vg_stream_apply(s, x->next);
    applied(c, x, false);
}

/* Loop thread (the job's completion). A failed load leaves the old model running: the
 * instance is "running" again and the command "failed". */
static void on_model_loaded(void *arg, bool ok, const char *error)
{
    load_msg_t *m = arg;
    vg_control_t *c = m->c;
    cmd_ctx_t *x = m->x;
    busy_set(c, x->stream_id, false);
    if (!ok) {
        if (c->o.on_status) c->o.on_status(c->o.arg, "running");
        finish(c, x, "failed", "model_load_failed", error, "model_id");
    } else {
        apply_loaded(c, x, m);
    }
    free(m);
}

/* Applies x->next now, or after loading x->model_id when it is set. */
static void apply_next(vg_control_t *c, cmd_ctx_t *x, vg_stream_t *s)
{
    if (x->model_id && !busy_set(c, x->stream_id, true)) {
        reject(c, x, "busy", "stream_id", "%d streams are already changing models (the limit)",
               VG_LIMIT_BUSY_STREAMS);
        return;
    }
    reconfiguring(c);
    if (!x->model_id) {
        vg_stream_apply(s, x->next);
        applied(c, x, false);
        return;
    }
    const vg_model_cfg_t *m = vg_config_find_model(c->o.cfg, x->model_id);
    load_msg_t *lm = vg_xcalloc(1, sizeof(*lm));
    lm->c = c;
    lm->x = x;
    lm->gen = vg_stream_gen(s);
    lm->cfg_rev = vg_stream_cfg_rev(s);
    vg_infer_load_model(c->o.pool, m, on_model_loaded, lm);
}

/* zones, events, room_id, privacy: parsed by the care-event engine's own parsers, so
 * an error names the field inside ("zones[1].points[2]"). False after rejecting (x and
 * n freed). */
static bool care_params(vg_control_t *c, cmd_ctx_t *x, vg_stream_cfg_t *n)
{
    const json_t *p = x->params;
    vg_jerr_t err = {{0}, {0}};
    json_t *z = json_object_get(p, "zones"), *ev = json_object_get(p, "events");
    vg_zones_t zones;
    vg_events_cfg_t ecfg;
    const char *privacy = json_string_value(json_object_get(p, "privacy"));
    static const char *const modes[] = {"masks", "none", "skeleton"};
    int mode = -1;
    for (int i = 0; privacy && i < 3; i++)
        if (strcmp(privacy, modes[i]) == 0) mode = i;
    if ((z && vg_zones_from_json(z, "zones", &zones, &err) != 0) ||
        (ev && vg_events_cfg_from_json(ev, "events", &ecfg, &err) != 0) ||
        (json_object_get(p, "privacy") && mode < 0 &&
         (vg_jerr_set(&err, "privacy", "privacy: expected masks, none or skeleton"), true))) {
        vg_stream_cfg_free(n);
        reject(c, x, "invalid_param", err.field, "%s", err.message);
        return false;
    }
    if (z) {
        free(n->zones);
        n->zones = NULL;
        if (zones.n) n->zones = memcpy(vg_xcalloc(1, sizeof(zones)), &zones, sizeof(zones));
    }
    if (ev) {
        free(n->events);
        n->events = memcpy(vg_xcalloc(1, sizeof(ecfg)), &ecfg, sizeof(ecfg));
    }
    if (json_object_get(p, "room_id")) {
        free(n->room_id);
        n->room_id = vg_xstrdup(json_string_value(json_object_get(p, "room_id")));
    }
    if (mode >= 0) n->privacy = mode;
    return true;
}

/* Builds the next configuration from the validated params; NULL after rejecting. */
static vg_stream_cfg_t *next_cfg(vg_control_t *c, cmd_ctx_t *x, vg_stream_t *s)
{
    const json_t *p = x->params;
    const char *worker_id = json_string_value(json_object_get(p, "worker_id"));
    const vg_stream_cfg_t *cur = vg_stream_cfg(s);
    if (worker_id && !has_worker(cur, worker_id)) {
        reject(c, x, "invalid_param", "worker_id", "stream '%s' has no worker '%s'", x->stream_id,
               worker_id);
        return NULL;
    }
    json_t *fps = json_object_get(p, json_object_get(p, "max_fps") ? "max_fps" : "fps");
    json_t *conf = json_object_get(p, "confidence_threshold");
    const char *model = json_string_value(json_object_get(p, "model_id"));
    json_t *roi = json_object_get(p, "roi");
    if (!roi && json_object_get(p, "x"))
        roi = (json_t *)p; /* set_roi carries x, y, w, h at the top */
    if (model) {
        const vg_model_cfg_t *m = vg_config_find_model(c->o.cfg, model);
        if (!m || m->task != VG_TASK_DETECT || !takes_model(cur, worker_id)) {
            reject(c, x, "unknown_model", "model_id",
                   !m ? "no model '%s' is defined" : "model '%s' cannot serve these workers",
                   model);
            return NULL;
        }
    }
    vg_rect_t r = {0, 0, 0, 0};
    if (roi) {
        static const char *const keys[] = {"x", "y", "w", "h"};
        int *dst[] = {&r.x, &r.y, &r.w, &r.h};
        for (size_t i = 0; i < 4; i++) {
            json_t *v = json_object_get(roi, keys[i]);
            double d = json_number_value(v);
            if (!json_is_number(v) || d != floor(d) || d < (i < 2 ? 0 : 1) || d > 100000) {
                char field[16];
                snprintf(field, sizeof(field), "%s%s", roi == p ? "" : "roi.", keys[i]);
                reject(c, x, "invalid_param", field, "'%s' must be an integer %s", field,
                       i < 2 ? "from 0 to 100000" : "from 1 to 100000");
                return NULL;
            }
            *dst[i] = (int)d;
        }
    }
    vg_stream_cfg_t *n = vg_stream_cfg_dup(cur);
    if (!care_params(c, x, n)) return NULL; /* rejected; x and n were freed */
    if (fps) n->fps = json_number_value(fps);
    for (size_t i = 0; i < n->n_workers; i++) {
        vg_worker_cfg_t *w = &n->workers[i];
        if (!targets(w, worker_id)) continue;
        if (conf) w->confidence_threshold = json_number_value(conf);
        if (roi) w->roi = r;
        if (model && w->type == VG_WORKER_PERSON) {
            free(w->model_id);
            w->model_id = vg_xstrdup(model);
        }
    }
    const char *field = NULL;
    char why[160];
    if (vg_config_check_limits(c->o.cfg, n, &field, why, sizeof(why)) != 0) {
        vg_stream_cfg_free(n);
        reject(c, x, "invalid_param", field, "%s", why);
        return NULL;
    }
    x->model_id = vg_xstrdup(model);
    return n;
}

/* ---- commands ----------------------------------------------------------------------------------
 */

static void cmd_change(vg_control_t *c, cmd_ctx_t *x)
{
    vg_stream_t *s = vg_streams_find(c->o.streams, x->stream_id);
    vg_stream_cfg_t *next = next_cfg(c, x, s);
    if (!next) return; /* rejected; x was freed */
    x->next = next;
    apply_next(c, x, s);
}

static void cmd_restart(vg_control_t *c, cmd_ctx_t *x)
{
    if (x->stream_id) {
        vg_stream_restart(vg_streams_find(c->o.streams, x->stream_id));
    } else {
        for (size_t i = 0; i < vg_streams_count(c->o.streams); i++)
            vg_stream_restart(vg_streams_at(c->o.streams, i));
    }
    finish(c, x, "completed", NULL, NULL, NULL);
}

/* Rejects a valid stream this instance must not run; true when it did. */
static bool add_refused(vg_control_t *c, cmd_ctx_t *x, const vg_stream_cfg_t *sc)
{
    const vg_config_t *cfg = c->o.cfg;
    if (vg_streams_find(c->o.streams, sc->stream_id))
        reject(c, x, "stream_exists", "stream_id", "stream '%s' already exists", sc->stream_id);
    else if (cfg->deployment_mode == VG_DEPLOY_SINGLE && vg_streams_count(c->o.streams) > 0)
        reject(c, x, "stream_exists", "stream_id",
               "deployment_mode single_stream runs one stream; remove it first");
    else if (!sc->enabled)
        reject(c, x, "invalid_param", "enabled",
               "add_stream runs the stream it adds: 'enabled' false is for configuration files");
    else if (c->o.owns && !c->o.owns(c->o.arg, sc->stream_id))
        reject(c, x, "wrong_shard", "stream_id",
               "stream '%s' belongs to another shard: this instance is shard %d of %d",
               sc->stream_id, cfg->shard_index, cfg->shard_count);
    else
        return false;
    return true;
}

static void cmd_add(vg_control_t *c, cmd_ctx_t *x)
{
    json_t *p = json_deep_copy(x->params);
    if (!json_object_get(p, "workers")) /* a room camera watches for people by default */
        json_object_set_new(p, "workers", json_pack("[{s:s}]", "type", "person_detector"));
    char *field = NULL, *msg = NULL;
    vg_stream_cfg_t *sc = vg_control_stream_from_json(c->o.cfg, p, &field, &msg);
    json_decref(p);
    if (!sc) {
        bool missing = msg && strstr(msg, "missing required");
        reject(c, x, missing ? "missing_param" : "invalid_param", field, "%s", msg);
        free(field);
        free(msg);
        return;
    }
    free(x->stream_id);
    x->stream_id = vg_xstrdup(sc->stream_id);
    if (add_refused(c, x, sc)) {
        vg_stream_cfg_free(sc);
        return; /* rejected; x was freed */
    }
    reconfiguring(c);
    vg_streams_add(c->o.streams, sc, false);
    vg_stream_cfg_free(sc);
    applied(c, x, false);
}

static void cmd_ack_event(vg_control_t *c, cmd_ctx_t *x)
{
    const char *id = json_string_value(json_object_get(x->params, "event_id"));
    const char *by = json_string_value(json_object_get(x->params, "by"));
    int rc = c->o.ack_event ? c->o.ack_event(c->o.arg, id, by ? by : x->source) : VG_ENOTFOUND;
    if (rc != 0) {
        reject(c, x, "unknown_event", "event_id", "no open event '%.64s'", id);
        return;
    }
    finish(c, x, "completed", NULL, NULL, NULL);
}

static void cmd_remove(vg_control_t *c, cmd_ctx_t *x)
{
    reconfiguring(c);
    vg_streams_remove(c->o.streams, x->stream_id);
    applied(c, x, true);
}

static const param_t p_set_fps[] = {{"max_fps", P_NUM, true, 0.01, 30}};
static const param_t p_set_conf[] = {{"confidence_threshold", P_NUM, true, 0, 1},
                                     {"worker_id", P_ID, false, 0, 0}};
static const param_t p_change_model[] = {{"model_id", P_ID, true, 0, 0},
                                         {"worker_id", P_ID, false, 0, 0}};
static const param_t p_set_roi[] = {{"x", P_INT, true, 0, 100000},
                                    {"y", P_INT, true, 0, 100000},
                                    {"w", P_INT, true, 1, 100000},
                                    {"h", P_INT, true, 1, 100000},
                                    {"worker_id", P_ID, false, 0, 0}};
static const param_t p_remove[] = {{"stream_id", P_ID, false, 0, 0}};
static const param_t p_reconfigure[] = {
    {"fps", P_NUM, false, 0.01, 30},
    {"model_id", P_ID, false, 0, 0},
    {"confidence_threshold", P_NUM, false, 0, 1},
    {"roi", P_OBJ, false, 0, 0},
    {"worker_id", P_ID, false, 0, 0},
    {"zones", P_ANY, false, 0, 0},
    {"events", P_ANY, false, 0, 0},
    {"room_id", P_ID, false, 0, 0},
    {"privacy", P_STR, false, 0, 0},
};
static const param_t p_set_zones[] = {{"zones", P_ANY, true, 0, 0}};
static const param_t p_ack_event[] = {{"event_id", P_STR, true, 0, 0}, {"by", P_STR, false, 0, 0}};

#define PARAMS(a) a, VG_ARRAY_LEN(a)
static const command_t commands[] = {
    {"restart", SCOPE_ANY, NULL, 0, cmd_restart, false},
    {"set_fps", SCOPE_STREAM, PARAMS(p_set_fps), cmd_change, false},
    {"set_confidence", SCOPE_STREAM, PARAMS(p_set_conf), cmd_change, false},
    {"change_model", SCOPE_STREAM, PARAMS(p_change_model), cmd_change, false},
    {"set_roi", SCOPE_STREAM, PARAMS(p_set_roi), cmd_change, false},
    {"reconfigure", SCOPE_STREAM, PARAMS(p_reconfigure), cmd_change, false},
    {"add_stream", SCOPE_INSTANCE, NULL, 0, cmd_add, true},
    {"remove_stream", SCOPE_ANY, PARAMS(p_remove), cmd_remove, false},
    {"set_zones", SCOPE_STREAM, PARAMS(p_set_zones), cmd_change, false},
    {"ack_event", SCOPE_INSTANCE, PARAMS(p_ack_event), cmd_ack_event, false},
};

/* ---- validation and dispatch --------------------------------------------------------------------
 */

static bool check_params(vg_control_t *c, cmd_ctx_t *x)
{
    const command_t *cmd = x->cmd;
    const char *key;
    json_t *v;
    json_object_foreach(x->params, key, v)
    {
        size_t i = 0;
        while (i < cmd->n_params && strcmp(cmd->params[i].name, key) != 0)
            i++;
        if (i == cmd->n_params) {
            reject(c, x, "unknown_param", key, "%s takes no parameter '%s'", cmd->name, key);
            return false;
        }
        const param_t *p = &cmd->params[i];
        double d = json_number_value(v);
        bool ok =
            p->type == P_NUM   ? json_is_number(v) && d >= p->min && d <= p->max
            : p->type == P_INT ? json_is_number(v) && d == floor(d) && d >= p->min && d <= p->max
            : p->type == P_ID  ? vg_config_valid_id(json_string_value(v))
            : p->type == P_OBJ ? json_is_object(v)
            : p->type == P_STR
                ? json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= 64
                : true;
        if (!ok) {
            char want[96];
            if (p->type == P_NUM || p->type == P_INT)
                snprintf(want, sizeof(want), "%s from %g to %g",
                         p->type == P_INT ? "an integer" : "a number", p->min, p->max);
            else
                snprintf(want, sizeof(want), "%s",
                         p->type == P_ID    ? "an id of 1 to 64 characters [A-Za-z0-9_.-]"
                         : p->type == P_STR ? "a string of 1 to 64 characters"
                                            : "an object");
            char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            reject(c, x, "invalid_param", key, "'%s' must be %s, got %.64s", key, want,
                   got ? got : "?");
            free(got);
            return false;
        }
    }
    for (size_t i = 0; i < cmd->n_params; i++) {
        if (cmd->params[i].required && !json_object_get(x->params, cmd->params[i].name)) {
            reject(c, x, "missing_param", cmd->params[i].name, "%s needs parameter '%s'", cmd->name,
                   cmd->params[i].name);
            return false;
        }
    }
    if (cmd->fn == cmd_change && json_object_size(x->params) == 0) {
        reject(c, x, "missing_param", "params", "%s needs at least one parameter", cmd->name);
        return false;
    }
    return true;
}

static void dispatch(vg_control_t *c, cmd_ctx_t *x, json_t *cmd_obj)
{
    const char *name = x->command_name;
    const command_t *cmd = NULL;
    for (size_t i = 0; name && i < VG_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0) cmd = &commands[i];
    x->cmd = cmd;
    if (!name) {
        reject(c, x, "missing_param", "command", "'command' (a string) is required");
        return;
    }
    if (!cmd) {
        reject(c, x, "unknown_command", "command", "unknown command '%.64s'", name);
        return;
    }
    json_t *params = json_object_get(cmd_obj, "params");
    if (params && !json_is_object(params)) {
        reject(c, x, "invalid_param", "params", "'params' must be an object");
        return;
    }
    x->params = params ? json_incref(params) : json_object();
    /* the stream: from the topic or URL, else the payload, else params */
    const char *sid = x->stream_id;
    if (!sid) sid = json_string_value(json_object_get(cmd_obj, "stream_id"));
    if (!sid && cmd->fn == cmd_remove)
        sid = json_string_value(json_object_get(x->params, "stream_id"));
    if (sid && !x->stream_id && cmd->scope != SCOPE_INSTANCE) x->stream_id = vg_xstrdup(sid);
    if (!cmd->any_param && !check_params(c, x)) return;
    if (cmd->scope == SCOPE_INSTANCE) {
        cmd->fn(c, x);
        return;
    }
    if (!x->stream_id && cmd->scope == SCOPE_STREAM) {
        reject(c, x, "missing_param", "stream_id", "%s applies to one stream: give stream_id",
               cmd->name);
        return;
    }
    if (!x->stream_id && cmd->fn == cmd_remove) {
        reject(c, x, "missing_param", "stream_id", "remove_stream needs 'stream_id'");
        return;
    }
    if (x->stream_id && !vg_streams_find(c->o.streams, x->stream_id)) {
        reject(c, x, "unknown_stream", "stream_id", "no stream '%.64s'", x->stream_id);
        return;
    }
    if (x->stream_id && busy_get(c, x->stream_id)) {
        reject(c, x, "busy", "stream_id", "stream '%s' has a change in progress", x->stream_id);
        return;
    }
    cmd->fn(c, x);
}

/* A requester already waiting, or the original itself: it gets the outcome anyway (MQTT
 * publishes every ack on one topic, so a repeat there must not double the final ack). */
static bool is_waiting(const seen_t *s, vg_ack_fn fn, void *arg)
{
    for (const waiter_t *w = s->waiters; w; w = w->next)
        if (w->fn == fn && w->arg == arg) return true;
    return s->origin_fn == fn && s->origin_arg == arg;
}

static cmd_ctx_t *ctx_new(const vg_origin_t *o, vg_ack_fn fn, void *arg)
{
    cmd_ctx_t *x = vg_xcalloc(1, sizeof(*x));
    x->ack = fn;
    x->ack_arg = arg;
    x->source = vg_xstrdup(o->source);
    x->who = vg_xstrdup(o->who);
    x->stream_id = vg_xstrdup(o->stream_id);
    return x;
}

void vg_control_submit_json(vg_control_t *c, json_t *cmd_obj, const vg_origin_t *o, vg_ack_fn fn,
                            void *arg)
{
    cmd_ctx_t *x = ctx_new(o, fn, arg);
    json_t *id = json_object_get(cmd_obj, "command_id");
    const char *name = json_string_value(json_object_get(cmd_obj, "command"));
    x->command_name = vg_xstrdup(name);
    if (id &&
        (!json_is_string(id) || !*json_string_value(id) || strlen(json_string_value(id)) > 128)) {
        x->command_id = vg_xasprintf("gen-%llu", (unsigned long long)++c->id_counter);
        reject(c, x, "invalid_param", "command_id",
               "'command_id' must be a string of 1 to 128 "
               "characters");
        return;
    }
    x->command_id = id ? vg_xstrdup(json_string_value(id))
                       : vg_xasprintf("gen-%llu", (unsigned long long)++c->id_counter);
    seen_t *s = seen_find(c, x->command_id);
    if (s) { /* a repeat: answer with the earlier outcome, apply nothing */
        VG_INFO("control", "command_repeat", "{s:s, s:s?, s:b}", "command_id", x->command_id,
                "source", x->source, "in_progress", s->ack == NULL);
        if (s->ack) {
            x->ack(x->ack_arg, s->ack, true);
        } else {
            json_t *rec = make_ack(x, "received", NULL, NULL, NULL);
            x->ack(x->ack_arg, rec, false);
            json_decref(rec);
            if (!is_waiting(s, fn, arg)) { /* the outcome comes when the original ends */
                waiter_t *w = vg_xcalloc(1, sizeof(*w));
                w->fn = fn;
                w->arg = arg;
                w->next = s->waiters;
                s->waiters = w;
            }
        }
        ctx_free(x);
        return;
    }
    seen_add(c, x->command_id, fn, arg);
    json_t *rec = make_ack(x, "received", NULL, NULL, NULL);
    x->ack(x->ack_arg, rec, false);
    json_decref(rec);
    dispatch(c, x, cmd_obj);
}

void vg_control_submit(vg_control_t *c, const char *payload, size_t len, const vg_origin_t *o,
                       vg_ack_fn fn, void *arg)
{
    json_error_t jerr;
    json_t *cmd = NULL;
    const char *code = NULL;
    char msg[256];
    if (len > VG_COMMAND_MAX_BYTES) {
        code = "payload_too_large";
        snprintf(msg, sizeof(msg), "command is %zu bytes, the limit is %d", len,
                 VG_COMMAND_MAX_BYTES);
    } else if (!(cmd = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr))) {
        code = "invalid_json";
        snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
    } else if (!json_is_object(cmd)) {
        code = "invalid_json";
        snprintf(msg, sizeof(msg), "a command must be a JSON object");
    }
    if (!code) {
        vg_control_submit_json(c, cmd, o, fn, arg);
        json_decref(cmd);
        return;
    }
    json_decref(cmd);
    finish(c, ctx_new(o, fn, arg), "rejected", code, msg, NULL);
}

vg_control_t *vg_control_new(const vg_control_opts_t *o)
{
    vg_control_t *c = vg_xcalloc(1, sizeof(*c));
    c->o = *o;
    c->m_commands =
        vg_metric_counter("vigil_commands_total", "Commands by name and outcome", "command,status");
    return c;
}

void vg_control_set_config(vg_control_t *c, const vg_config_t *cfg)
{
    c->o.cfg = cfg;
}

void vg_control_free(vg_control_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < SEEN_MAX; i++) {
        seen_release(&c->seen[i], NULL);
        free(c->seen[i].command_id);
        json_decref(c->seen[i].ack);
    }
    for (size_t i = 0; i < c->n_busy; i++)
        free(c->busy[i]);
    free(c);
}
