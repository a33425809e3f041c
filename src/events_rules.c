/* events_rules.c — what one sample of one person means for the care rules: where their
 * ground point is (zones), whether they are on the floor, in or out of bed, still; each
 * rule's condition with hysteresis; and births and deaths at doors or the frame edge
 * (entries, exits, occupancy). Raising and ending events is events.c's. Loop thread. */
#include "events_internal.h"
#include "vigil/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const family_t vg_events_family[VG_EV_NTYPES] = {
    [VG_EV_FALL] = FAM_DOWN,
    [VG_EV_PERSON_DOWN] = FAM_DOWN,
    [VG_EV_BED_EXIT] = FAM_BED_EXIT,
    [VG_EV_BED_EDGE] = FAM_BED_EDGE,
    [VG_EV_INACTIVITY] = FAM_INACTIVITY,
    [VG_EV_ROOM_ENTRY] = FAM_NONE,
    [VG_EV_ROOM_EXIT] = FAM_NONE,
};

/* The rules a person's sample can raise, in the order they are judged. */
static const vg_event_type_t person_rules[] = {VG_EV_FALL, VG_EV_PERSON_DOWN, VG_EV_BED_EDGE,
                                               VG_EV_BED_EXIT, VG_EV_INACTIVITY};

/* What a sample says about a person's place and posture. */
typedef struct {
    bool known; /* posture confident enough */
    vg_posture_t posture;
    const vg_zone_t *zone; /* at the ground point */
    bool excluded;         /* the ground point is in an exclude zone */
    bool support;          /* a bed or chair holds the ground point or the box centre */
    bool in_bed;           /* a bed holds the ground point or the box centre */
    bool feet_in_bed;      /* a bed holds the ground point */
} look_t;

track_t *vg_events_track(stream_t *s, uint64_t id, double mono)
{
    for (size_t i = 0; i < s->n_tracks; i++)
        if (s->tracks[i].id == id) return &s->tracks[i];
    if (s->n_tracks == s->cap_tracks) {
        s->cap_tracks = s->cap_tracks ? 2 * s->cap_tracks : 8;
        s->tracks = vg_xrealloc(s->tracks, s->cap_tracks * sizeof(*s->tracks));
    }
    if (s->n_tracks == MAX_TRACKS) return NULL;
    track_t *t = &s->tracks[s->n_tracks++];
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->first_mono = t->last_mono = mono;
    t->up.mono = t->notdown.mono = t->bed_mono = -INFINITY;
    return t;
}

/* Forgets a track; its marks stay a while as ghosts. */
static void track_drop(stream_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_tracks; i++)
        if (s->tracks[i].id == id) {
            size_t g = s->n_ghosts++ % MAX_GHOSTS;
            s->ghost_up[g] = s->tracks[i].up;
            s->ghost_notdown[g] = s->tracks[i].notdown;
            s->tracks[i] = s->tracks[--s->n_tracks];
            return;
        }
}

/* True if mark m is at most `window` s old and near box b (see NEAR_HEIGHTS). */
static bool mark_near(const mark_t *m, double now, double window, const vg_box_t *b)
{
    if (!(now - m->mono <= window)) return false;
    double mx = m->box.x + m->box.w / 2.0, my = m->box.y + m->box.h;
    double bx = b->x + b->w / 2.0, by = b->y + b->h / 2.0;
    return hypot(mx - bx, my - by) <= NEAR_HEIGHTS * m->box.h;
}

/* The person's own mark when recent, else the newest recent mark near them of a track
 * absent from this sample or lost (kind 0: upright, 1: not down): the same person
 * under a new id. Never another person seen now: a visitor standing beside a resident
 * who sits must not make the resident's sitting low. NULL if none. */
static const mark_t *recent_mark(const sample_t *x, const track_t *t, int kind, double window,
                                 const vg_box_t *b)
{
    const mark_t *own = kind ? &t->notdown : &t->up, *best = NULL;
    if (x->mono - own->mono <= window) return own;
    const stream_t *s = x->s;
    for (size_t i = 0; i < s->n_tracks + MAX_GHOSTS; i++) {
        const mark_t *m = i < s->n_tracks ? (kind ? &s->tracks[i].notdown : &s->tracks[i].up)
                                          : (kind ? &s->ghost_notdown[i - s->n_tracks]
                                                  : &s->ghost_up[i - s->n_tracks]);
        if (i < s->n_tracks && s->tracks[i].last_mono >= x->mono) continue; /* seen now */
        if (i >= s->n_tracks && i - s->n_tracks >= s->n_ghosts) continue;
        if (mark_near(m, x->mono, window, b) && (!best || m->mono > best->mono)) best = m;
    }
    return best;
}

static vg_zone_kind_t kind_at(const vg_zones_t *z, double x, double y)
{
    const vg_zone_t *zone = vg_zones_locate(z, x, y);
    return zone ? zone->kind : VG_ZONE_NKINDS;
}

static void look(const sample_t *x, const vg_obs_person_t *p, look_t *l)
{
    const vg_zones_t *z = &x->s->zones;
    l->posture = p->posture;
    l->known = p->posture != VG_POSTURE_UNKNOWN && p->posture_conf >= x->s->cfg.min_confidence;
    bool lying = l->known && p->posture == VG_POSTURE_LYING;
    double gx, gy, cx, cy;
    vg_zones_ground_point(&p->box, lying, &gx, &gy);
    vg_zones_ground_point(&p->box, true, &cx, &cy);
    if (lying && p->has_centre) gx = p->cx, gy = p->cy;
    l->zone = vg_zones_locate(z, gx, gy);
    vg_zone_kind_t kg = l->zone ? l->zone->kind : VG_ZONE_NKINDS, kc = kind_at(z, cx, cy);
    l->excluded = kg == VG_ZONE_EXCLUDE;
    l->feet_in_bed = kg == VG_ZONE_BED;
    l->in_bed = kg == VG_ZONE_BED || kc == VG_ZONE_BED;
    l->support = l->in_bed || kg == VG_ZONE_CHAIR || kc == VG_ZONE_CHAIR;
}

/* ---- conditions ---------------------------------------------------------------------------- */

static void cond_feed(cond_t *c, int v, double now, double clear_s, double since)
{
    if (v > 0) {
        if (!c->on) {
            c->on = true;
            c->since = since;
        }
        c->clearing = false;
    } else if (v == 0 && c->on) {
        if (!c->clearing) {
            c->clearing = true;
            c->clear_since = now;
        }
        if (now - c->clear_since >= clear_s) {
            c->on = false;
            c->clearing = false;
        }
    }
}

/* Sitting low: well under the height of this person's recent upright box. */
static bool sitting_low(const sample_t *x, const track_t *t, const vg_obs_person_t *p)
{
    const mark_t *up = recent_mark(x, t, 0, UPRIGHT_MEMORY_S, &p->box);
    return up && p->box.h < FLOOR_SIT_RATIO * up->box.h;
}

/* On the floor: 1 yes, 0 no, -1 cannot tell (sitting off any zone could be a chair). */
static int down_value(const sample_t *x, const track_t *t, const vg_obs_person_t *p,
                      const look_t *l)
{
    if (!l->known || l->posture == VG_POSTURE_UPRIGHT) return l->known ? 0 : -1;
    if (l->support) return 0;
    if (l->posture == VG_POSTURE_LYING) return 1;
    bool floor_zone = l->zone && l->zone->kind == VG_ZONE_FLOOR;
    return floor_zone || sitting_low(x, t, p) ? 1 : -1;
}

static int bed_edge_value(const track_t *t, const look_t *l)
{
    if (!l->known) return -1;
    if (l->posture == VG_POSTURE_SITTING && l->in_bed && t->bed_lying) return 1;
    return l->posture == VG_POSTURE_UPRIGHT || (l->posture == VG_POSTURE_LYING && l->in_bed) ? 0
                                                                                             : -1;
}

static int bed_exit_value(const sample_t *x, const track_t *t, const look_t *l)
{
    if (!l->known) return -1;
    if (l->posture != VG_POSTURE_UPRIGHT) return l->in_bed ? 0 : -1;
    bool was_in_bed = x->mono - t->bed_mono <= BED_MEMORY_S;
    return was_in_bed && !l->feet_in_bed ? 1 : -1;
}

/* Still: 1 when the person has not moved since the last sample, 0 when they moved (or
 * are in bed, where stillness is sleep). Updates the movement anchor. */
static int still_value(const sample_t *x, track_t *t, const vg_obs_person_t *p, const look_t *l)
{
    double cx = p->has_centre ? p->cx : p->box.x + p->box.w / 2.0;
    double cy = p->has_centre ? p->cy : p->box.y + p->box.h / 2.0;
    bool moved = !t->anchored || p->movement >= x->s->cfg.move_eps ||
                 hypot(cx - t->anchor_x, cy - t->anchor_y) >= x->s->cfg.move_eps;
    if (moved) {
        t->anchored = true;
        t->anchor_x = cx;
        t->anchor_y = cy;
        t->move_mono = x->mono;
    }
    return moved || (l->known && l->posture != VG_POSTURE_UPRIGHT && l->in_bed) ? 0 : 1;
}

static void feed_down(const sample_t *x, track_t *t, const vg_obs_person_t *p, const look_t *l)
{
    cond_t *c = &t->cond[FAM_DOWN];
    int v = down_value(x, t, p, l);
    bool was_on = c->on;
    cond_feed(c, v, x->mono, x->s->cfg.clear_s, x->mono);
    if (c->on && !was_on) {
        t->fall_seen = recent_mark(x, t, 1, FALL_WINDOW_S, &p->box) != NULL;
        t->conf_sum = 0;
        t->conf_n = 0;
    }
    if (v > 0) {
        t->conf_sum += p->posture_conf;
        t->conf_n++;
    }
    bool notdown = l->known && (l->posture == VG_POSTURE_UPRIGHT ||
                                (l->posture == VG_POSTURE_SITTING && v != 1) || l->support);
    if (notdown) t->notdown = (mark_t){x->mono, p->box};
    if (l->known && l->posture == VG_POSTURE_UPRIGHT) {
        t->up = (mark_t){x->mono, p->box};
    }
}

static void feed(const sample_t *x, track_t *t, const vg_obs_person_t *p, const look_t *l)
{
    double clear = x->s->cfg.clear_s;
    feed_down(x, t, p, l);
    cond_feed(&t->cond[FAM_BED_EDGE], bed_edge_value(t, l), x->mono, clear, x->mono);
    cond_feed(&t->cond[FAM_BED_EXIT], bed_exit_value(x, t, l), x->mono, clear, x->mono);
    int still = still_value(x, t, p, l);
    cond_feed(&t->cond[FAM_INACTIVITY], still, x->mono, 0, t->move_mono);
    if (l->known && l->posture != VG_POSTURE_UPRIGHT && l->in_bed) t->bed_mono = x->mono;
    if (l->known && l->posture == VG_POSTURE_LYING && l->in_bed) t->bed_lying = true;
    if (l->known && l->posture == VG_POSTURE_UPRIGHT && !l->feet_in_bed) t->bed_lying = false;
}

/* ---- rules --------------------------------------------------------------------------------- */

/* True if the rule may raise now: enabled and inside its schedule. */
static bool rule_live(const sample_t *x, vg_event_type_t type)
{
    return x->s->cfg.rules[type].enabled && vg_events_cfg_active(&x->s->cfg, type, x->wall);
}

static void judge(const sample_t *x, track_t *t, vg_event_type_t type, const vg_obs_person_t *p,
                  const look_t *l)
{
    family_t fam = vg_events_family[type];
    const cond_t *c = &t->cond[fam];
    open_t *o = vg_events_find_source(x->ev, x->s->stream_id, t->id, fam);
    if (!c->on) {
        if (o) vg_events_clear_source(x, o, t->id);
        return;
    }
    /* clearing: the latest clear sample denied it; no event starts on a fading condition */
    if (o || c->clearing || x->mono - c->since < x->s->cfg.rules[type].threshold_s ||
        !rule_live(x, type))
        return;
    if (type == VG_EV_FALL && !t->fall_seen) return;
    /* a fall seen is the fall rule's, unless that rule cannot raise it */
    if (type == VG_EV_PERSON_DOWN && t->fall_seen && rule_live(x, VG_EV_FALL)) return;
    double conf = fam == FAM_DOWN && t->conf_n ? t->conf_sum / t->conf_n : p->posture_conf;
    vg_events_raise(x, type, t, l->zone ? l->zone->zone_id : "", conf, c->since);
}

void vg_events_rules_person(const sample_t *x, const vg_obs_person_t *p)
{
    track_t *t = vg_events_track(x->s, p->track_id, x->mono);
    if (!t) return;
    look_t l;
    look(x, p, &l);
    if (l.excluded) return;
    feed(x, t, p, &l);
    for (size_t i = 0; i < VG_ARRAY_LEN(person_rules); i++)
        judge(x, t, person_rules[i], p, &l);
}

/* ---- entries and exits --------------------------------------------------------------------- */

/* True if a box is at a door zone (its ground point or centre), or touches the frame
 * edge when the stream has no door zone; *zone_id names the door. */
static bool at_door(const stream_t *s, const vg_box_t *b, const char **zone_id)
{
    *zone_id = "";
    if (!vg_zones_has_kind(&s->zones, VG_ZONE_DOOR))
        return b->x <= EDGE_MARGIN || b->y <= EDGE_MARGIN || b->x + b->w >= 1 - EDGE_MARGIN ||
               b->y + b->h >= 1 - EDGE_MARGIN;
    double pts[2][2];
    vg_zones_ground_point(b, false, &pts[0][0], &pts[0][1]);
    vg_zones_ground_point(b, true, &pts[1][0], &pts[1][1]);
    for (int i = 0; i < 2; i++) {
        const vg_zone_t *z = vg_zones_locate(&s->zones, pts[i][0], pts[i][1]);
        if (z && z->kind == VG_ZONE_DOOR) {
            *zone_id = z->zone_id;
            return true;
        }
    }
    return false;
}

/* Counts an entry or exit in the room unless another camera of the room counted one
 * within merge_s; raises the instant event when its rule is live. */
static void pass_door(const sample_t *x, const vg_obs_track_t *tr, const char *zone_id)
{
    bool entry = tr->change == VG_OBS_BORN;
    room_t *r = vg_events_room(x->ev, x->s->room_id);
    double *last = entry ? &r->entry_mono : &r->exit_mono;
    char *last_stream = entry ? r->entry_stream : r->exit_stream;
    if (x->mono - *last < x->s->cfg.merge_s && strcmp(last_stream, x->s->stream_id) != 0) return;
    *last = x->mono;
    snprintf(last_stream, VG_EVENTS_ID_MAX, "%s", x->s->stream_id);
    r->occupancy += entry ? 1 : (r->occupancy > 0 ? -1 : 0);
    vg_event_type_t type = entry ? VG_EV_ROOM_ENTRY : VG_EV_ROOM_EXIT;
    if (rule_live(x, type)) vg_events_emit_instant(x, type, tr->track_id, zone_id, r->occupancy);
}

void vg_events_rules_seen(const sample_t *x, const vg_obs_person_t *p)
{
    track_t *t = vg_events_track(x->s, p->track_id, x->mono);
    if (t) t->last_mono = x->mono;
}

void vg_events_rules_age(const sample_t *x)
{
    for (size_t i = x->s->n_tracks; i-- > 0;) {
        uint64_t id = x->s->tracks[i].id;
        if (x->mono - x->s->tracks[i].last_mono >= STALE_S) {
            vg_events_lose_track(x, id);
            track_drop(x->s, id);
        }
    }
}

void vg_events_rules_track(const sample_t *x, const vg_obs_track_t *tr)
{
    const char *zone_id;
    bool door = at_door(x->s, &tr->box, &zone_id);
    if (tr->change == VG_OBS_BORN) {
        vg_events_track(x->s, tr->track_id, x->mono);
        if (door) pass_door(x, tr, zone_id);
        return;
    }
    if (door) pass_door(x, tr, zone_id);
    vg_events_lose_track(x, tr->track_id);
    track_drop(x->s, tr->track_id);
}
