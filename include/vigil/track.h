/* track.h — a per-stream multi-person tracker: gives every person seen by the person
 * detector or the pose estimator a stable track_id across samples, with first and last
 * seen, speed and a posture history. A tracker is owned by one thread (the stream's
 * results arrive in order there) and shares nothing; distinct trackers are independent.
 *
 * Each update gives the observations of one sample at time `now` (seconds, any clock,
 * non-decreasing; samples may come at any rate and the rate may change). Observations of
 * different sources in one update that overlap (IoU >= 0.3, or one's centre inside the
 * other) are one person. People are matched to tracks greedily by cost
 * 1 - IoU + distance, against both the track's last box and its constant-velocity
 * prediction; a pair is allowed when the IoU is >= min_iou or the distance (the nearer of
 * centre-to-centre and bottom-centre to bottom-centre, in the longer side of the larger
 * of the two boxes, in pixels) is <= gate, so a person whose box turns from tall to wide as they
 * fall keeps their track. Ageing is by time: a track unseen for max_age_s dies (a
 * tentative one after tentative_age_s); a new person starts a tentative track that is
 * confirmed, and gets its id, once seen in confirm_hits updates at distinct times. */
#ifndef VIGIL_TRACK_H
#define VIGIL_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vigil/detector.h"
#include "vigil/posture.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VG_TRACK_MAX 32     /* tracks per tracker; more people are not tracked */
#define VG_TRACK_HISTORY 16 /* posture changes kept per track */

typedef enum {
    VG_TRACK_SRC_DETECTOR = 1, /* a person detector's box: no posture */
    VG_TRACK_SRC_POSE = 2,     /* a pose estimator's person: box and posture */
} vg_track_src_t;

typedef struct {
    vg_box_t box; /* normalised to the view */
    float score;  /* 0..1 */
    vg_track_src_t source;
    vg_posture_t posture; /* VG_POSTURE_UNKNOWN: leaves the track's posture as it is */
    float posture_confidence;
} vg_track_obs_t;

typedef struct {
    double max_age_s;       /* a confirmed track unseen this long dies; default 5 */
    double tentative_age_s; /* a tentative track unseen this long dies; default 1.5 */
    int confirm_hits;       /* updates at distinct times that confirm a track; default 2 */
    float min_iou;          /* default 0.1 */
    float gate;             /* distance in track sizes; default 0.75 */
    float view_aspect;      /* the view's width / height, for pixel distances; default 1 */
    int posture_votes;      /* a new posture needs this many pose observations in a row,
                               or one with confidence >= 0.75; default 2 */
} vg_tracker_cfg_t;

typedef struct {
    double t; /* when the track took this posture */
    vg_posture_t posture;
} vg_posture_change_t;

typedef struct {
    int64_t id;   /* 1, 2, ... in order of confirmation; 0 while tentative */
    vg_box_t box; /* the last observed box */
    float score;  /* the last observation's */
    double first_seen, last_seen;
    int hits;             /* updates that matched it */
    float vx, vy;         /* centre velocity, view widths and heights per second */
    float speed;          /* centre speed in track sizes (its box's longer side) per second */
    vg_posture_t posture; /* after the votes; UNKNOWN until a pose observation decides */
    float posture_confidence;
    vg_posture_change_t history[VG_TRACK_HISTORY]; /* oldest first */
    size_t n_history;
} vg_track_t;

typedef struct vg_tracker vg_tracker_t;

/* cfg NULL or fields 0: defaults. Caller frees with vg_tracker_free. */
vg_tracker_t *vg_tracker_new(const vg_tracker_cfg_t *cfg);
void vg_tracker_free(vg_tracker_t *t); /* NULL ok */

/* Ages the tracks to `now`, matches the n observations (borrowed) and writes each one's
 * track id to ids[i] (caller-owned, n entries; may be NULL): > 0 for a confirmed track, 0
 * for a tentative one, when VG_TRACK_MAX tracks are live, or for a box without a positive
 * finite size (ignored). Returns 0 or VG_EINVAL. */
int vg_tracker_update(vg_tracker_t *t, double now, const vg_track_obs_t *obs, size_t n,
                      int64_t *ids);

/* Copies the live confirmed tracks, oldest first, at most max; returns how many. */
size_t vg_tracker_tracks(const vg_tracker_t *t, vg_track_t *out, size_t max);

/* The live confirmed track with this id, or NULL (borrowed until the next update). */
const vg_track_t *vg_tracker_get(const vg_tracker_t *t, int64_t id);

typedef enum {
    VG_TRACK_BORN = 1, /* confirmed (got its id) */
    VG_TRACK_LOST = 2, /* a confirmed track aged out */
} vg_track_change_kind_t;

typedef struct {
    int64_t id;
    vg_track_change_kind_t change;
    vg_box_t box; /* its first confirmed box, or its last */
    double t;     /* the update's time */
} vg_track_change_t;

/* The births and deaths of confirmed tracks in the last update (what the care events take
 * as track changes); *out is borrowed until the next update. Returns their number. */
size_t vg_tracker_changes(const vg_tracker_t *t, const vg_track_change_t **out);

/* ---- JSON (src/track_json.c) ---- */

/* One update from one frame's inference messages (a JSON array, borrowed): every element
 * of a message's "detections" (score "confidence"; source detector) and "poses" (score
 * "score", "posture" and "posture_confidence"; source pose) with a "box" {x, y, w, h} is an
 * observation; each gets "track_id" set to its id, or null while its track is tentative.
 * At most 2 * VG_TRACK_MAX observations; the rest get no track_id. Returns 0 or
 * VG_EINVAL. */
int vg_track_annotate(vg_tracker_t *t, double now, json_t *results);

/* {track_id, first_seen, last_seen, box {x, y, w, h}, speed, posture, posture_confidence,
 *  history [{t, posture}]} (times as given to the tracker). Caller owns the reference. */
json_t *vg_track_json(const vg_track_t *k);

#ifdef __cplusplus
}
#endif

#endif
