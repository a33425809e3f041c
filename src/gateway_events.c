/* gateway_events.c — the care-event engine in the gateway (loop thread only): one
 * vg_events_t per gateway, kept in step with the streams (zones, events settings,
 * room_id); every sample of a stream goes in through vg_gw_events_observe, a 1 s timer
 * runs the engine's timers, and every transition is published on MQTT
 * ({p}/events/{instance_id}/{stream_id}, QoS 1; the retained {p}/alarms/{instance_id}
 * again), appended to the journal by a VG_JOB_JOURNAL job ("jobs:journal", fsynced),
 * counted in the metrics, and a start takes a snapshot kept for REST. At start the
 * events the journal still holds open are restored and announced again.
 *
 * The journal object is used by the journal thread only (jobs of a type run in order
 * on one thread); the loop opens it before the first job and closes it after the jobs
 * stopped. Snapshot jobs carry a frame reference and the event id; their completion
 * files the JPEG in a bounded store (the last EVSNAP_MAX events). */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/journal.h"
#include "vigil/log.h"
#include "vigil/mqtt.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVSNAP_MAX 64
#define EVSNAP_WIDTH 640

typedef struct {
    char stream_id[VG_EVENTS_ID_MAX];
    uint64_t gen, rev;
} known_t;

typedef struct {
    char event_id[VG_EVENT_ID_MAX];
    uint8_t *jpeg;
    size_t len;
} evsnap_t;

struct vg_gw_events {
    vg_gateway_t *gw;
    vg_events_t *ev;
    vg_event_list_t out;
    struct event *tick;
    vg_journal_t *journal;
    known_t *known;
    size_t n_known;
    evsnap_t snaps[EVSNAP_MAX];
    size_t snap_next;
    vg_metric_t *m_total, *m_active, *m_alarms, *m_oldest;
    vg_series_t *delay;
};

/* ---- delivery: MQTT (the client's event class: outbox priority, reserve, re-sends) -------- */

static void publish_event(vg_gateway_t *gw, const vg_event_t *e, const char *payload)
{
    if (gw->mqtt) vg_mqtt_publish_event(gw->mqtt, e->stream_id, payload);
}

/* The retained alarms: the array of the engine's alarms document. */
static void publish_alarms(vg_gateway_t *gw, const json_t *doc)
{
    if (!gw->mqtt) return;
    char *text = json_dumps(json_object_get(doc, "alarms"), JSON_COMPACT | JSON_REAL_PRECISION(7));
    vg_mqtt_set_alarms(gw->mqtt, text);
    free(text);
}

/* ---- delivery: the journal ------------------------------------------------------------------- */

typedef struct {
    vg_journal_t *j;
    char *line;
    int rc;
} journal_job_t;

static void journal_run(void *job)
{
    journal_job_t *jj = job;
    jj->rc = vg_journal_append(jj->j, jj->line);
}

static void journal_done(void *ctx, void *job, bool ran)
{
    (void)ctx;
    journal_job_t *jj = job;
    if (!ran || jj->rc != 0)
        VG_ERROR("events", "journal_write_failed", "{s:b, s:i}", "ran", ran, "rc", jj->rc);
    free(jj->line);
    free(jj);
}

static void journal_submit(struct vg_gw_events *ge, const char *payload)
{
    if (!ge->journal) return;
    journal_job_t *jj = vg_xcalloc(1, sizeof(*jj));
    jj->j = ge->journal;
    jj->line = vg_xstrdup(payload);
    vg_job_ops_t ops = {journal_run, journal_done, ge};
    vg_jobs_submit(ge->gw->jobs, VG_JOB_JOURNAL, &ops, jj);
}

/* ---- event snapshots
 * ----------------------------------------------------------------------------- */

typedef struct {
    struct vg_gw_events *ge;
    char event_id[VG_EVENT_ID_MAX];
    vg_gw_snap_t snap;
} evsnap_job_t;

static void evsnap_run(void *job)
{
    evsnap_job_t *j = job;
    vg_gw_snapshot_encode(&j->snap);
}

static void evsnap_done(void *ctx, void *job, bool ran)
{
    struct vg_gw_events *ge = ctx;
    evsnap_job_t *j = job;
    if (ran && j->snap.jpeg) {
        evsnap_t *s = &ge->snaps[ge->snap_next];
        ge->snap_next = (ge->snap_next + 1) % EVSNAP_MAX;
        free(s->jpeg);
        snprintf(s->event_id, sizeof(s->event_id), "%s", j->event_id);
        s->jpeg = j->snap.jpeg;
        s->len = j->snap.len;
        j->snap.jpeg = NULL;
    }
    vg_gw_snap_clear(&j->snap);
    free(j);
}

static void evsnap_take(struct vg_gw_events *ge, const vg_event_t *e)
{
    vg_stream_t *s = vg_streams_find(ge->gw->streams, e->stream_id);
    vg_frame_t *f = s ? vg_mailbox_latest(vg_stream_mailbox(s)) : NULL;
    if (!f) return;
    evsnap_job_t *j = vg_xcalloc(1, sizeof(*j));
    j->ge = ge;
    snprintf(j->event_id, sizeof(j->event_id), "%s", e->event_id);
    vg_gw_snap_init(&j->snap, s, f, EVSNAP_WIDTH, true);
    vg_job_ops_t ops = {evsnap_run, evsnap_done, ge};
    vg_jobs_submit(ge->gw->jobs, VG_JOB_SNAPSHOT, &ops, j);
}

int vg_gw_events_snapshot(vg_gateway_t *gw, const char *event_id, const uint8_t **jpeg, size_t *len)
{
    struct vg_gw_events *ge = gw->events;
    for (size_t i = 0; ge && i < EVSNAP_MAX; i++) {
        if (ge->snaps[i].jpeg && strcmp(ge->snaps[i].event_id, event_id) == 0) {
            *jpeg = ge->snaps[i].jpeg;
            *len = ge->snaps[i].len;
            return VG_OK;
        }
    }
    return VG_ENOTFOUND;
}

/* ---- transitions
 * --------------------------------------------------------------------------------- */

/* vigil_events_active by type and severity; the alarms (open, unacknowledged, warning or
 * critical) by severity with the age of the oldest, which the alert rule watches. */
static void update_active(struct vg_gw_events *ge)
{
    int count[VG_EV_NTYPES][3] = {{0}}, alarms[3] = {0};
    double oldest[3] = {0}, wall = vg_now_wall();
    vg_event_list_t open = {0};
    vg_events_list_open(ge->ev, &open);
    for (size_t i = 0; i < open.n; i++) {
        const vg_event_t *e = &open.v[i];
        count[e->type][e->severity]++;
        if (e->acked_at > 0 || e->severity == VG_SEV_INFO) continue;
        alarms[e->severity]++;
        if (wall - e->started_at > oldest[e->severity]) oldest[e->severity] = wall - e->started_at;
    }
    vg_event_list_free(&open);
    for (int s = VG_SEV_WARNING; s <= VG_SEV_CRITICAL; s++) {
        const char *name = vg_severity_name((vg_severity_t)s);
        vg_series_set(vg_metric_series(ge->m_alarms, name), alarms[s]);
        vg_series_set(vg_metric_series(ge->m_oldest, name), oldest[s]);
    }
    for (int t = 0; t < VG_EV_NTYPES; t++)
        for (int s = 0; s < 3; s++)
            vg_series_set(vg_metric_series(ge->m_active, vg_event_type_name((vg_event_type_t)t),
                                           vg_severity_name((vg_severity_t)s)),
                          count[t][s]);
}

static void emit_one(struct vg_gw_events *ge, const vg_event_t *e, double mono)
{
    vg_gateway_t *gw = ge->gw;
    json_t *j = vg_event_to_json(e, gw->cfg->instance_id, "");
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(j);
    publish_event(gw, e, text);
    journal_submit(ge, text);
    free(text);
    if (e->phase == VG_PHASE_START) {
        vg_series_inc(vg_metric_series(ge->m_total, e->stream_id, vg_event_type_name(e->type)));
        if (e->cond_mono > 0 && mono >= e->cond_mono)
            vg_series_observe(ge->delay, mono - e->cond_mono);
        evsnap_take(ge, e);
    }
    VG_INFO("events", "event", "{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", e->event_id, "type",
            vg_event_type_name(e->type), "phase", vg_event_phase_name(e->phase), "stream_id",
            e->stream_id, "room_id", e->room_id, "reason", e->reason ? e->reason : "");
}

/* Delivers what the engine appended to ge->out, then empties it. Escalations run last:
 * their commands may change a stream, and so the engine again (re-entering here with a
 * fresh ge->out), so this batch is taken out of it first. */
static void emit(struct vg_gw_events *ge)
{
    while (ge->out.n) {
        vg_event_list_t batch = ge->out;
        memset(&ge->out, 0, sizeof(ge->out));
        double mono = vg_now_mono();
        for (size_t i = 0; i < batch.n; i++)
            emit_one(ge, &batch.v[i], mono);
        json_t *alarms = vg_events_alarms_json(ge->ev, "", vg_now_wall());
        publish_alarms(ge->gw, alarms);
        json_decref(alarms);
        update_active(ge);
        for (size_t i = 0; i < batch.n; i++)
            if (batch.v[i].phase == VG_PHASE_START) vg_gw_escalate(ge->gw, &batch.v[i]);
        vg_event_list_free(&batch);
    }
}

/* ---- the loop's side
 * ------------------------------------------------------------------------------ */

void vg_gw_events_observe(vg_gateway_t *gw, const char *stream_id, const vg_obs_t *obs)
{
    struct vg_gw_events *ge = gw->events;
    if (!ge) return;
    vg_events_observe(ge->ev, stream_id, obs, &ge->out);
    emit(ge);
}

int vg_gw_events_ack(vg_gateway_t *gw, const char *event_id, const char *by)
{
    struct vg_gw_events *ge = gw->events;
    if (!ge) return VG_ENOTFOUND;
    int rc = vg_events_ack(ge->ev, event_id, by, vg_now_wall(), &ge->out);
    emit(ge);
    return rc;
}

const vg_events_t *vg_gw_events_engine(vg_gateway_t *gw)
{
    return gw->events ? gw->events->ev : NULL;
}

static known_t *known_find(struct vg_gw_events *ge, const char *id)
{
    for (size_t i = 0; i < ge->n_known; i++)
        if (strcmp(ge->known[i].stream_id, id) == 0) return &ge->known[i];
    return NULL;
}

/* Streams added, changed (zones, events, room_id) or removed since the last call. */
void vg_gw_events_sync(vg_gateway_t *gw)
{
    struct vg_gw_events *ge = gw->events;
    if (!ge) return;
    double mono = vg_now_mono(), wall = vg_now_wall();
    for (size_t i = ge->n_known; i-- > 0;) {
        if (vg_streams_find(gw->streams, ge->known[i].stream_id)) continue;
        vg_events_remove_stream(ge->ev, ge->known[i].stream_id, mono, wall, &ge->out);
        ge->known[i] = ge->known[--ge->n_known];
    }
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++) {
        vg_stream_t *s = vg_streams_at(gw->streams, i);
        known_t *k = known_find(ge, vg_stream_id(s));
        if (k && k->gen == vg_stream_gen(s) && k->rev == vg_stream_cfg_rev(s)) continue;
        if (!k) {
            ge->known = vg_xrealloc(ge->known, (ge->n_known + 1) * sizeof(*ge->known));
            k = &ge->known[ge->n_known++];
            snprintf(k->stream_id, sizeof(k->stream_id), "%s", vg_stream_id(s));
        }
        k->gen = vg_stream_gen(s);
        k->rev = vg_stream_cfg_rev(s);
        for (int t = 0; t < VG_EV_NTYPES; t++) /* counters start at 0, not absent */
            vg_metric_series(ge->m_total, k->stream_id, vg_event_type_name((vg_event_type_t)t));
        const vg_stream_cfg_t *sc = vg_stream_cfg(s);
        vg_events_cfg_t def;
        vg_events_cfg_default(&def);
        vg_events_set_stream(ge->ev, k->stream_id, sc->room_id, sc->events ? sc->events : &def,
                             sc->zones, mono, wall, &ge->out);
    }
    emit(ge);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct vg_gw_events *ge = arg;
    vg_events_tick(ge->ev, vg_now_mono(), vg_now_wall(), &ge->out);
    emit(ge);
    update_active(ge); /* the alarms' age grows */
}

/* The events the journal still holds open come back, announced as `update` (restored). */
static void restore(struct vg_gw_events *ge)
{
    const vg_config_t *cfg = ge->gw->cfg;
    vg_event_list_t open = {0};
    size_t bad = 0;
    if (vg_journal_restore(cfg->events_file, cfg->events_file_keep, &open, &bad) != 0)
        VG_ERROR("events", "journal_unreadable", "{s:s}", "path", cfg->events_file);
    int restored = 0;
    for (size_t i = 0; i < open.n; i++) {
        int rc = vg_events_restore(ge->ev, &open.v[i], vg_now_mono(), vg_now_wall(), &ge->out);
        if (rc == 0)
            restored++;
        else
            VG_WARN("events", "event_not_restored", "{s:s, s:s, s:i}", "event_id",
                    open.v[i].event_id, "stream_id", open.v[i].stream_id, "rc", rc);
    }
    VG_INFO("events", "journal_restored", "{s:s, s:i, s:i, s:i}", "path", cfg->events_file, "open",
            (int)open.n, "restored", restored, "bad_lines", (int)bad);
    vg_event_list_free(&open);
    emit(ge);
}

static const double delay_bounds[] = {0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60};

int vg_gw_events_start(vg_gateway_t *gw)
{
    struct vg_gw_events *ge = vg_xcalloc(1, sizeof(*ge));
    ge->gw = gw;
    ge->ev = vg_events_new(gw->cfg->instance_id);
    ge->m_total = vg_metric_counter("vigil_events_total", "Care events started, by stream and type",
                                    "stream_id,type");
    ge->m_active = vg_metric_gauge("vigil_events_active", "Care events open now", "type,severity");
    ge->m_alarms =
        vg_metric_gauge("vigil_alarms_active",
                        "Open, unacknowledged care events (the retained alarms)", "severity");
    ge->m_oldest =
        vg_metric_gauge("vigil_alarm_oldest_seconds",
                        "Age of the oldest unacknowledged open care event; 0: none", "severity");
    ge->delay = vg_metric_series(
        vg_metric_histogram("vigil_event_delay_seconds",
                            "From the first sample showing an event's condition to its start", "",
                            delay_bounds, VG_ARRAY_LEN(delay_bounds)));
    gw->events = ge;
    const vg_config_t *cfg = gw->cfg;
    if (cfg->events_file && *cfg->events_file) {
        vg_journal_cfg_t jc = {.path = cfg->events_file,
                               .max_bytes = (size_t)cfg->events_file_max_mb * 1024 * 1024,
                               .keep = cfg->events_file_keep};
        char err[256];
        if (vg_journal_open(&jc, &ge->journal, err, sizeof(err)) != 0)
            VG_ERROR("events", "journal_open_failed", "{s:s, s:s, s:s}", "path", cfg->events_file,
                     "error", err, "action", "events go out on MQTT and REST, unjournalled");
    }
    vg_gw_events_sync(gw);
    update_active(ge);
    if (ge->journal) restore(ge);
    ge->tick = event_new(gw->base, -1, EV_PERSIST, on_tick, ge);
    struct timeval tv = {1, 0};
    event_add(ge->tick, &tv);
    return VG_OK;
}

void vg_gw_events_stop(vg_gateway_t *gw)
{
    if (gw->events && gw->events->tick) {
        event_free(gw->events->tick);
        gw->events->tick = NULL;
    }
}

void vg_gw_events_free(vg_gateway_t *gw)
{
    struct vg_gw_events *ge = gw->events;
    if (!ge) return;
    vg_gw_events_stop(gw);
    vg_gw_escalate_free(gw);
    vg_journal_close(ge->journal); /* after the jobs stopped: no journal job is left */
    vg_events_free(ge->ev);
    vg_event_list_free(&ge->out);
    for (size_t i = 0; i < EVSNAP_MAX; i++)
        free(ge->snaps[i].jpeg);
    free(ge->known);
    free(ge);
    gw->events = NULL;
}
