/* track.c — the per-stream multi-person tracker of vigil/track.h: groups one sample's
 * detector and pose observations into people, matches people to tracks greedily (IoU and
 * centre/ground-point distance against the last and the predicted box), ages tracks by
 * time, confirms new ones after repeated sightings and votes on posture changes.
 * Owned by one thread; no locks, no shared state. */
#include "vigil/track.h"

#include "vigil/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAME_PERSON_IOU 0.3f /* detector and pose boxes of one sample: one person */
#define SURE_POSTURE 0.75f   /* a posture this confident needs no second vote */
#define MAX_PREDICT_S 1.0    /* prediction extrapolates at most this far */
#define MIN_DT_S 1e-3        /* updates closer than this are the same sample */
#define VELOCITY_ALPHA 0.5f  /* weight of the newest velocity measurement */

typedef struct {
    vg_track_t pub;
    vg_posture_t candidate; /* a posture seen but not yet voted in */
    int votes;
    double last_hit;
} slot_t;

struct vg_tracker {
    vg_tracker_cfg_t cfg;
    slot_t slots[VG_TRACK_MAX]; /* live tracks, oldest first */
    size_t n;
    int64_t next_id;
    vg_track_change_t changes[2 * VG_TRACK_MAX]; /* of the last update */
    size_t n_changes;
};

/* One person of a sample: the observations of different sources that overlap. */
typedef struct {
    vg_box_t box;
    float score;
    vg_posture_t posture;
    float posture_confidence;
    int sources; /* bit mask of vg_track_src_t */
    int track;   /* slot index once matched, else -1 */
} person_t;

typedef struct {
    float cost;
    int slot, person;
} pair_t;

static void defaults(vg_tracker_cfg_t *c)
{
    if (!(c->max_age_s > 0)) c->max_age_s = 5.0;
    if (!(c->tentative_age_s > 0)) c->tentative_age_s = 1.5;
    if (c->confirm_hits <= 0) c->confirm_hits = 2;
    if (!(c->min_iou > 0)) c->min_iou = 0.1f;
    if (!(c->gate > 0)) c->gate = 0.75f;
    if (!(c->view_aspect > 0)) c->view_aspect = 1.0f;
    if (c->posture_votes <= 0) c->posture_votes = 2;
}

vg_tracker_t *vg_tracker_new(const vg_tracker_cfg_t *cfg)
{
    vg_tracker_t *t = vg_xcalloc(1, sizeof(*t));
    if (cfg) t->cfg = *cfg;
    defaults(&t->cfg);
    t->next_id = 1;
    return t;
}

void vg_tracker_free(vg_tracker_t *t)
{
    free(t);
}

static float iou(vg_box_t a, vg_box_t b)
{
    float ix = fminf(a.x + a.w, b.x + b.w) - fmaxf(a.x, b.x);
    float iy = fminf(a.y + a.h, b.y + b.h) - fmaxf(a.y, b.y);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy, uni = a.w * a.h + b.w * b.h - inter;
    return uni > 0 ? inter / uni : 0;
}

/* A box with a positive, finite size: anything else is not a person. */
static bool valid_box(vg_box_t b)
{
    return isfinite(b.x) && isfinite(b.y) && isfinite(b.w) && isfinite(b.h) && b.w > 0 && b.h > 0;
}

static bool centre_inside(vg_box_t a, vg_box_t b)
{
    float cx = a.x + a.w / 2, cy = a.y + a.h / 2;
    return cx >= b.x && cx <= b.x + b.w && cy >= b.y && cy <= b.y + b.h;
}

/* The nearer of centre and bottom-centre distances, in the longer side of the larger box
 * (a person's length whether standing or lying; a box shrunk to a few keypoints does not
 * shrink the gate), all measured in view heights (x scaled by the aspect). */
static float distance(vg_box_t track, vg_box_t obs, float aspect)
{
    float size = fmaxf(fmaxf(track.w * aspect, track.h), fmaxf(obs.w * aspect, obs.h));
    if (!(size > 0)) return INFINITY;
    float dx = (obs.x + obs.w / 2 - track.x - track.w / 2) * aspect;
    float dyc = obs.y + obs.h / 2 - track.y - track.h / 2;
    float dyb = obs.y + obs.h - track.y - track.h;
    return fminf(hypotf(dx, dyc), hypotf(dx, dyb)) / size;
}

static vg_box_t predicted(const vg_track_t *k, double now)
{
    double dt = fmin(fmax(now - k->last_seen, 0.0), MAX_PREDICT_S);
    vg_box_t b = k->box;
    b.x += (float)(k->vx * dt);
    b.y += (float)(k->vy * dt);
    return b;
}

/* Matching cost of a person to a track, or INFINITY when the gate forbids it. */
static float cost(const vg_tracker_t *t, const vg_track_t *k, vg_box_t box, double now)
{
    vg_box_t cand[2] = {k->box, predicted(k, now)};
    float best = INFINITY;
    for (int i = 0; i < 2; i++) {
        float o = iou(cand[i], box), d = distance(cand[i], box, t->cfg.view_aspect);
        if (o >= t->cfg.min_iou || d <= t->cfg.gate) best = fminf(best, 1.0f - o + d);
    }
    return best;
}

/* Drops tracks unseen for longer than their age limit, keeping the order. */
static void change(vg_tracker_t *t, const vg_track_t *k, vg_track_change_kind_t kind, double now)
{
    VG_CHECK(t->n_changes < VG_ARRAY_LEN(t->changes));
    t->changes[t->n_changes++] = (vg_track_change_t){k->id, kind, k->box, now};
}

static void age(vg_tracker_t *t, double now)
{
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        const vg_track_t *k = &t->slots[i].pub;
        double limit = k->id > 0 ? t->cfg.max_age_s : t->cfg.tentative_age_s;
        if (now - k->last_seen > limit) {
            if (k->id > 0) change(t, k, VG_TRACK_LOST, now);
            continue;
        }
        if (kept != i) t->slots[kept] = t->slots[i];
        kept++;
    }
    t->n = kept;
}

/* Adds observation o to a person of another source it overlaps, or starts a person. */
static int group(person_t *people, int n, const vg_track_obs_t *o)
{
    for (int i = 0; i < n; i++) {
        person_t *p = &people[i];
        if (p->sources & (int)o->source) continue;
        if (iou(p->box, o->box) < SAME_PERSON_IOU && !centre_inside(p->box, o->box) &&
            !centre_inside(o->box, p->box))
            continue;
        p->sources |= (int)o->source;
        if (o->source == VG_TRACK_SRC_DETECTOR) p->box = o->box; /* the detector's box wins */
        p->score = fmaxf(p->score, o->score);
        if (o->posture != VG_POSTURE_UNKNOWN) {
            p->posture = o->posture;
            p->posture_confidence = o->posture_confidence;
        }
        return i;
    }
    people[n] = (person_t){o->box, o->score, o->posture, o->posture_confidence, (int)o->source, -1};
    return n;
}

static int by_cost(const void *a, const void *b)
{
    float x = ((const pair_t *)a)->cost, y = ((const pair_t *)b)->cost;
    return x < y ? -1 : x > y;
}

/* Greedy assignment, cheapest pair first. */
static void match(vg_tracker_t *t, person_t *people, int n, double now)
{
    pair_t *pairs = vg_xmalloc(sizeof(*pairs) * (t->n * (size_t)n + 1));
    size_t np = 0;
    for (size_t s = 0; s < t->n; s++)
        for (int p = 0; p < n; p++) {
            float c = cost(t, &t->slots[s].pub, people[p].box, now);
            if (isfinite(c)) pairs[np++] = (pair_t){c, (int)s, p};
        }
    qsort(pairs, np, sizeof(*pairs), by_cost);
    bool taken[VG_TRACK_MAX] = {false};
    for (size_t i = 0; i < np; i++) {
        if (taken[pairs[i].slot] || people[pairs[i].person].track >= 0) continue;
        taken[pairs[i].slot] = true;
        people[pairs[i].person].track = pairs[i].slot;
    }
    free(pairs);
}

static void set_posture(vg_track_t *k, vg_posture_t p, float conf, double now)
{
    k->posture = p;
    k->posture_confidence = conf;
    if (k->n_history == VG_TRACK_HISTORY) {
        memmove(k->history, k->history + 1, sizeof(k->history[0]) * (VG_TRACK_HISTORY - 1));
        k->n_history--;
    }
    k->history[k->n_history++] = (vg_posture_change_t){now, p};
}

static void vote(const vg_tracker_t *t, slot_t *s, const person_t *p, double now)
{
    vg_track_t *k = &s->pub;
    if (p->posture == VG_POSTURE_UNKNOWN) return;
    if (p->posture == k->posture) {
        k->posture_confidence = p->posture_confidence;
        s->votes = 0;
        return;
    }
    if (p->posture == s->candidate && now - s->last_hit > MIN_DT_S)
        s->votes++;
    else if (p->posture != s->candidate)
        s->votes = 1;
    s->candidate = p->posture;
    if (k->posture == VG_POSTURE_UNKNOWN || p->posture_confidence >= SURE_POSTURE ||
        s->votes >= t->cfg.posture_votes) {
        set_posture(k, p->posture, p->posture_confidence, now);
        s->votes = 0;
    }
}

static void observe(const vg_tracker_t *t, slot_t *s, const person_t *p, double now)
{
    vg_track_t *k = &s->pub;
    double dt = now - k->last_seen;
    if (dt > MIN_DT_S) {
        float vx = (p->box.x + p->box.w / 2 - k->box.x - k->box.w / 2) / (float)dt;
        float vy = (p->box.y + p->box.h / 2 - k->box.y - k->box.h / 2) / (float)dt;
        k->vx = VELOCITY_ALPHA * vx + (1 - VELOCITY_ALPHA) * k->vx;
        k->vy = VELOCITY_ALPHA * vy + (1 - VELOCITY_ALPHA) * k->vy;
        float a = t->cfg.view_aspect, size = fmaxf(p->box.w * a, p->box.h);
        k->speed = size > 0 ? hypotf(k->vx * a, k->vy) / size : 0;
    }
    vote(t, s, p, now);
    if (now - s->last_hit > MIN_DT_S) {
        k->hits++;
        s->last_hit = now;
    }
    k->box = p->box;
    k->score = p->score;
    k->last_seen = now;
}

static void birth(vg_tracker_t *t, person_t *p, double now)
{
    if (t->n == VG_TRACK_MAX) return;
    slot_t *s = &t->slots[t->n];
    memset(s, 0, sizeof(*s));
    s->pub.box = p->box;
    s->pub.score = p->score;
    s->pub.first_seen = s->pub.last_seen = now;
    s->pub.hits = 1;
    s->last_hit = now;
    vote(t, s, p, now);
    p->track = (int)t->n++;
}

int vg_tracker_update(vg_tracker_t *t, double now, const vg_track_obs_t *obs, size_t n,
                      int64_t *ids)
{
    if (!t || (n && !obs) || !isfinite(now)) return VG_EINVAL;
    t->n_changes = 0;
    age(t, now);
    person_t people[VG_TRACK_MAX * 2];
    int of_obs[VG_TRACK_MAX * 2], np = 0;
    size_t used = n < VG_ARRAY_LEN(people) ? n : VG_ARRAY_LEN(people);
    for (size_t i = 0; i < used; i++) {
        of_obs[i] = -1;
        if (!valid_box(obs[i].box)) continue;
        of_obs[i] = group(people, np, &obs[i]);
        if (of_obs[i] == np) np++;
    }
    match(t, people, np, now);
    for (int p = 0; p < np; p++) {
        if (people[p].track >= 0)
            observe(t, &t->slots[people[p].track], &people[p], now);
        else
            birth(t, &people[p], now);
    }
    for (size_t s = 0; s < t->n; s++) {
        vg_track_t *k = &t->slots[s].pub;
        if (k->id == 0 && k->hits >= t->cfg.confirm_hits) {
            k->id = t->next_id++;
            change(t, k, VG_TRACK_BORN, now);
        }
    }
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = i < used && of_obs[i] >= 0 && people[of_obs[i]].track >= 0
                     ? t->slots[people[of_obs[i]].track].pub.id
                     : 0;
    return VG_OK;
}

size_t vg_tracker_tracks(const vg_tracker_t *t, vg_track_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; t && i < t->n && n < max; i++)
        if (t->slots[i].pub.id > 0) out[n++] = t->slots[i].pub;
    return n;
}

const vg_track_t *vg_tracker_get(const vg_tracker_t *t, int64_t id)
{
    for (size_t i = 0; t && id > 0 && i < t->n; i++)
        if (t->slots[i].pub.id == id) return &t->slots[i].pub;
    return NULL;
}

size_t vg_tracker_changes(const vg_tracker_t *t, const vg_track_change_t **out)
{
    *out = t ? t->changes : NULL;
    return t ? t->n_changes : 0;
}
