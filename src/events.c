/* events.c — the care-event engine (see events.h): streams and their rooms, open events
 * and their lifecycle (start, update, end), the people (stream, track) each event is
 * about, acknowledgement, restore from the journal, timers. What a sample means is
 * events_rules.c's. The engine owns every struct here; transitions go out as copies.
 * Loop thread only. */
#include "events_internal.h"
#include "vigil/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_id(char *dst, const char *src)
{
    snprintf(dst, VG_EVENTS_ID_MAX, "%s", src ? src : "");
}

vg_events_t *vg_events_new(const char *instance_id)
{
    vg_events_t *ev = vg_xcalloc(1, sizeof(*ev));
    copy_id(ev->instance_id, instance_id);
    return ev;
}

static void stream_free(stream_t *s)
{
    if (s) {
        free(s->tracks);
        free(s);
    }
}

void vg_events_free(vg_events_t *ev)
{
    if (!ev) return;
    for (size_t i = 0; i < ev->n_streams; i++)
        stream_free(ev->streams[i]);
    for (size_t i = 0; i < ev->n_open; i++)
        free(ev->open[i]);
    free(ev->streams);
    free(ev->open);
    free(ev->rooms);
    free(ev->history);
    free(ev);
}

static stream_t *find_stream(const vg_events_t *ev, const char *stream_id)
{
    for (size_t i = 0; stream_id && i < ev->n_streams; i++)
        if (strcmp(ev->streams[i]->stream_id, stream_id) == 0) return ev->streams[i];
    return NULL;
}

room_t *vg_events_room(vg_events_t *ev, const char *room_id)
{
    for (size_t i = 0; i < ev->n_rooms; i++)
        if (strcmp(ev->rooms[i].room_id, room_id) == 0) return &ev->rooms[i];
    ev->rooms = vg_xrealloc(ev->rooms, (ev->n_rooms + 1) * sizeof(*ev->rooms));
    room_t *r = &ev->rooms[ev->n_rooms++];
    memset(r, 0, sizeof(*r));
    copy_id(r->room_id, room_id);
    r->entry_mono = r->exit_mono = -INFINITY;
    return r;
}

/* ---- transitions --------------------------------------------------------------------------- */

static void emit(vg_events_t *ev, open_t *o, vg_event_phase_t phase, const char *reason,
                 double mono, double wall, vg_event_list_t *out)
{
    o->ev.phase = phase;
    o->ev.reason = reason;
    o->ev.updated_at = wall;
    if (phase == VG_PHASE_END) o->ev.ended_at = wall;
    o->pub_mono = mono;
    if (out) vg_event_list_push(out, &o->ev);
    vg_events_history_note(ev, &o->ev);
}

/* Ends open event i and forgets it. */
static void close_at(vg_events_t *ev, size_t i, const char *reason, double mono, double wall,
                     vg_event_list_t *out)
{
    open_t *o = ev->open[i];
    emit(ev, o, VG_PHASE_END, reason, mono, wall, out);
    memmove(&ev->open[i], &ev->open[i + 1], (ev->n_open - i - 1) * sizeof(*ev->open));
    ev->n_open--;
    free(o);
}

static size_t index_of(const vg_events_t *ev, const open_t *o)
{
    size_t i = 0;
    while (i < ev->n_open && ev->open[i] != o)
        i++;
    return i;
}

static void add_open(vg_events_t *ev, open_t *o)
{
    if (ev->n_open == ev->cap_open) {
        ev->cap_open = ev->cap_open ? 2 * ev->cap_open : 8;
        ev->open = vg_xrealloc(ev->open, ev->cap_open * sizeof(*ev->open));
    }
    ev->open[ev->n_open++] = o;
}

/* Index of the source (stream, track) of o, or o->n_src. */
static size_t source_index(const open_t *o, const char *stream_id, uint64_t track_id)
{
    size_t i = 0;
    while (i < o->n_src &&
           !(o->src[i].track_id == track_id && strcmp(o->src[i].stream_id, stream_id) == 0))
        i++;
    return i;
}

static void drop_source(open_t *o, size_t i)
{
    o->src[i] = o->src[--o->n_src];
}

open_t *vg_events_find_source(vg_events_t *ev, const char *stream_id, uint64_t track_id,
                              family_t fam)
{
    for (size_t i = 0; i < ev->n_open; i++) {
        open_t *o = ev->open[i];
        if (o->fam == fam && source_index(o, stream_id, track_id) < o->n_src) return o;
    }
    return NULL;
}

/* An open event of the room and family that no live person of this stream holds: the
 * same person seen by another camera, or again after their track was lost. */
static open_t *joinable(vg_events_t *ev, const stream_t *s, family_t fam)
{
    for (size_t i = 0; i < ev->n_open; i++) {
        open_t *o = ev->open[i];
        if (o->fam != fam || strcmp(o->ev.room_id, s->room_id) != 0 || o->n_src == MAX_SOURCES)
            continue;
        bool held = false;
        for (size_t k = 0; k < o->n_src; k++)
            held |= !o->src[k].lost && strcmp(o->src[k].stream_id, s->stream_id) == 0;
        if (!held) return o;
    }
    return NULL;
}

void vg_events_raise(const sample_t *x, vg_event_type_t type, const track_t *t, const char *zone_id,
                     double confidence, double cond_mono)
{
    family_t fam = vg_events_family[type];
    open_t *o = joinable(x->ev, x->s, fam);
    if (!o) {
        o = vg_xcalloc(1, sizeof(*o));
        vg_event_t *e = &o->ev;
        vg_event_new_id(x->wall, e->event_id, sizeof(e->event_id));
        e->type = type;
        e->severity = x->s->cfg.rules[type].severity;
        copy_id(e->stream_id, x->s->stream_id);
        copy_id(e->room_id, x->s->room_id);
        snprintf(e->zone_id, sizeof(e->zone_id), "%s", zone_id);
        e->track_id = t->id;
        e->confidence = confidence;
        e->started_at = x->wall;
        e->occupancy = -1;
        e->cond_mono = cond_mono;
        o->fam = fam;
        add_open(x->ev, o);
        emit(x->ev, o, VG_PHASE_START, "confirmed", x->mono, x->wall, x->out);
    }
    /* the person this stream lost is most likely this one, found again */
    for (size_t k = o->n_src; k-- > 0;)
        if (o->src[k].lost && strcmp(o->src[k].stream_id, x->s->stream_id) == 0) drop_source(o, k);
    source_t *src = &o->src[o->n_src++];
    memset(src, 0, sizeof(*src));
    copy_id(src->stream_id, x->s->stream_id);
    src->track_id = t->id;
    o->orphan = false;
}

void vg_events_clear_source(const sample_t *x, open_t *o, uint64_t track_id)
{
    size_t i = source_index(o, x->s->stream_id, track_id);
    if (i < o->n_src) drop_source(o, i);
    if (o->n_src == 0) close_at(x->ev, index_of(x->ev, o), "cleared", x->mono, x->wall, x->out);
}

void vg_events_lose_track(const sample_t *x, uint64_t track_id)
{
    for (size_t i = x->ev->n_open; i-- > 0;) {
        open_t *o = x->ev->open[i];
        size_t k = source_index(o, x->s->stream_id, track_id);
        if (k == o->n_src) continue;
        if (o->fam == FAM_DOWN) { /* still on the floor, unseen: wait lost_s */
            o->src[k].lost = true;
            o->src[k].lost_mono = x->mono;
            continue;
        }
        drop_source(o, k);
        if (o->n_src == 0) close_at(x->ev, i, "lost", x->mono, x->wall, x->out);
    }
}

void vg_events_emit_instant(const sample_t *x, vg_event_type_t type, uint64_t track_id,
                            const char *zone_id, int occupancy)
{
    vg_event_t e;
    memset(&e, 0, sizeof(e));
    vg_event_new_id(x->wall, e.event_id, sizeof(e.event_id));
    e.type = type;
    e.phase = VG_PHASE_START;
    e.severity = x->s->cfg.rules[type].severity;
    copy_id(e.stream_id, x->s->stream_id);
    copy_id(e.room_id, x->s->room_id);
    snprintf(e.zone_id, sizeof(e.zone_id), "%s", zone_id);
    e.track_id = track_id;
    e.confidence = 1.0;
    e.started_at = e.updated_at = e.ended_at = x->wall;
    e.reason = "instant";
    e.occupancy = occupancy;
    e.cond_mono = x->mono;
    vg_event_list_push(x->out, &e);
    vg_events_history_note(x->ev, &e);
}

/* ---- streams ------------------------------------------------------------------------------- */

/* Takes a stream's people out of every open event; events left with nobody end. */
static void detach_stream(vg_events_t *ev, const char *stream_id, double mono, double wall,
                          vg_event_list_t *out)
{
    for (size_t i = ev->n_open; i-- > 0;) {
        open_t *o = ev->open[i];
        bool had = o->n_src > 0;
        for (size_t k = o->n_src; k-- > 0;)
            if (strcmp(o->src[k].stream_id, stream_id) == 0) drop_source(o, k);
        bool mine = strcmp(o->ev.stream_id, stream_id) == 0;
        if (o->n_src == 0 && (had || mine)) close_at(ev, i, "stream_removed", mono, wall, out);
    }
}

void vg_events_set_stream(vg_events_t *ev, const char *stream_id, const char *room_id,
                          const vg_events_cfg_t *cfg, const vg_zones_t *zones, double mono,
                          double wall, vg_event_list_t *out)
{
    const char *room = room_id && *room_id ? room_id : stream_id;
    stream_t *s = find_stream(ev, stream_id);
    if (!s) {
        s = vg_xcalloc(1, sizeof(*s));
        copy_id(s->stream_id, stream_id);
        ev->streams = vg_xrealloc(ev->streams, (ev->n_streams + 1) * sizeof(*ev->streams));
        ev->streams[ev->n_streams++] = s;
    } else if (strcmp(s->room_id, room) != 0) {
        detach_stream(ev, stream_id, mono, wall, out);
        s->n_tracks = 0;
    }
    copy_id(s->room_id, room);
    s->cfg = *cfg;
    if (zones)
        s->zones = *zones;
    else
        s->zones.n = 0;
}

void vg_events_remove_stream(vg_events_t *ev, const char *stream_id, double mono, double wall,
                             vg_event_list_t *out)
{
    for (size_t i = 0; i < ev->n_streams; i++)
        if (strcmp(ev->streams[i]->stream_id, stream_id) == 0) {
            detach_stream(ev, stream_id, mono, wall, out);
            stream_free(ev->streams[i]);
            ev->streams[i] = ev->streams[--ev->n_streams];
            return;
        }
}

int vg_events_observe(vg_events_t *ev, const char *stream_id, const vg_obs_t *obs,
                      vg_event_list_t *out)
{
    stream_t *s = find_stream(ev, stream_id);
    if (!s) return VG_ENOTFOUND;
    sample_t x = {ev, s, obs->mono, obs->wall, out};
    for (size_t i = 0; i < obs->n_tracks; i++)
        if (obs->tracks[i].change == VG_OBS_BORN) vg_events_rules_track(&x, &obs->tracks[i]);
    for (size_t i = 0; i < obs->n_people; i++)
        vg_events_rules_seen(&x, &obs->people[i]);
    for (size_t i = 0; i < obs->n_people; i++)
        vg_events_rules_person(&x, &obs->people[i]);
    for (size_t i = 0; i < obs->n_tracks; i++)
        if (obs->tracks[i].change == VG_OBS_LOST) vg_events_rules_track(&x, &obs->tracks[i]);
    vg_events_rules_age(&x);
    /* people who were there before anyone counted them */
    room_t *r = vg_events_room(ev, s->room_id);
    if ((size_t)r->occupancy < obs->n_people) r->occupancy = (int)obs->n_people;
    return 0;
}

/* ---- timers, acknowledgement, restore ------------------------------------------------------ */

/* True when everyone the event is about was lost (or it was restored with nobody),
 * with *since the moment the last of them went. */
static bool all_lost(const open_t *o, double *since)
{
    if (o->n_src == 0) {
        *since = o->orphan_mono;
        return o->orphan;
    }
    *since = -INFINITY;
    for (size_t k = 0; k < o->n_src; k++) {
        if (!o->src[k].lost) return false;
        *since = fmax(*since, o->src[k].lost_mono);
    }
    return true;
}

void vg_events_tick(vg_events_t *ev, double mono, double wall, vg_event_list_t *out)
{
    for (size_t i = ev->n_open; i-- > 0;) {
        open_t *o = ev->open[i];
        const stream_t *s = find_stream(ev, o->ev.stream_id);
        vg_events_cfg_t def;
        if (!s) vg_events_cfg_default(&def);
        const vg_events_cfg_t *cfg = s ? &s->cfg : &def;
        double since;
        if (all_lost(o, &since) && mono - since >= cfg->lost_s)
            close_at(ev, i, "lost", mono, wall, out);
        else if (cfg->update_s > 0 && mono - o->pub_mono >= cfg->update_s)
            emit(ev, o, VG_PHASE_UPDATE, "still_active", mono, wall, out);
    }
}

static open_t *find_open(const vg_events_t *ev, const char *event_id)
{
    for (size_t i = 0; event_id && i < ev->n_open; i++)
        if (strcmp(ev->open[i]->ev.event_id, event_id) == 0) return ev->open[i];
    return NULL;
}

int vg_events_ack(vg_events_t *ev, const char *event_id, const char *by, double wall,
                  vg_event_list_t *out)
{
    open_t *o = find_open(ev, event_id);
    if (!o) return VG_ENOTFOUND;
    if (o->ev.acked_at > 0) return 0;
    o->ev.acked_at = wall;
    copy_id(o->ev.acked_by, by && *by ? by : "unknown");
    emit(ev, o, VG_PHASE_UPDATE, "acked", o->pub_mono, wall, out);
    return 0;
}

int vg_events_restore(vg_events_t *ev, const vg_event_t *e, double mono, double wall,
                      vg_event_list_t *out)
{
    if ((unsigned)e->type >= VG_EV_NTYPES || e->ended_at > 0 || e->phase == VG_PHASE_END ||
        vg_events_family[e->type] == FAM_NONE)
        return VG_EINVAL;
    if (find_open(ev, e->event_id)) return VG_EEXIST;
    if (!find_stream(ev, e->stream_id)) return VG_ENOTFOUND;
    open_t *o = vg_xcalloc(1, sizeof(*o));
    o->ev = *e;
    o->ev.cond_mono = mono;
    o->fam = vg_events_family[e->type];
    o->orphan = true;
    o->orphan_mono = mono;
    add_open(ev, o);
    emit(ev, o, VG_PHASE_UPDATE, "restored", mono, wall, out);
    return 0;
}

void vg_events_list_open(const vg_events_t *ev, vg_event_list_t *out)
{
    for (size_t i = 0; i < ev->n_open; i++)
        vg_event_list_push(out, &ev->open[i]->ev);
}

int vg_events_occupancy(const vg_events_t *ev, const char *room_id)
{
    for (size_t i = 0; room_id && i < ev->n_rooms; i++)
        if (strcmp(ev->rooms[i].room_id, room_id) == 0) return ev->rooms[i].occupancy;
    return 0;
}
