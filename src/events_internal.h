/* events_internal.h — the event engine's state, shared by events.c (streams, open
 * events and their lifecycle) and events_rules.c (what one sample of one person means).
 * Loop thread only, like the engine. */
#ifndef VIGIL_EVENTS_INTERNAL_H
#define VIGIL_EVENTS_INTERNAL_H

#include "vigil/events.h"

#define MAX_SOURCES 8
#define FALL_WINDOW_S 5.0     /* not down this close before going down: a fall was seen */
#define UPRIGHT_MEMORY_S 30.0 /* an upright box this recent is the reference for sitting */
#define FLOOR_SIT_RATIO 0.6   /* sitting, box under this share of the upright one: on the floor */
#define BED_MEMORY_S 600.0 /* lying or sitting in bed this recently: upright outside is an exit */
#define STALE_S 60.0       /* a track unseen this long is lost, told or not */
#define EDGE_MARGIN 0.02   /* a box this close to the border touches the frame edge */

/* Rules that exclude each other share a family: one open event per room, family and
 * person (a fall and a person_down of one person are one alarm). */
typedef enum { FAM_DOWN, FAM_BED_EXIT, FAM_BED_EDGE, FAM_INACTIVITY, FAM_NONE, FAM_N } family_t;

/* A condition with hysteresis: on at the first sample that shows it, off only after
 * samples that deny it for clear_s; samples that say nothing (unknown) change nothing. */
typedef struct {
    bool on;
    bool clearing;      /* denied since clear_since */
    double since;       /* mono of the first sample that showed it */
    double clear_since; /* mono of the first denying sample */
} cond_t;

/* A sample worth remembering: when, and where the person was. mono is -INFINITY
 * until there was one. */
typedef struct {
    double mono;
    vg_box_t box;
} mark_t;

#define MAX_TRACKS 64 /* per stream; more people than that in one view are ignored */
#define MAX_GHOSTS 8  /* marks of lost tracks a stream remembers */
/* A mark of another track counts for this person when its box's bottom centre is this
 * many of its heights from their box centre: a tracker that switched ids at the fall. */
#define NEAR_HEIGHTS 1.0

typedef struct {
    uint64_t id;
    double first_mono, last_mono;
    mark_t up;       /* last confident upright sample */
    mark_t notdown;  /* last sample confidently not on the floor */
    bool fall_seen;  /* the current down condition began within FALL_WINDOW_S of one */
    double bed_mono; /* last sample lying or sitting in a bed zone */
    bool bed_lying;  /* lying in bed seen since the last sample upright outside it */
    bool anchored;
    double anchor_x, anchor_y, move_mono; /* inactivity: where the person last moved */
    double conf_sum;                      /* posture confidence over the down condition */
    int conf_n;
    cond_t cond[FAM_N];
} track_t;

typedef struct {
    char stream_id[VG_EVENTS_ID_MAX], room_id[VG_EVENTS_ID_MAX];
    vg_events_cfg_t cfg;
    vg_zones_t zones;
    track_t *tracks;
    size_t n_tracks, cap_tracks;
    mark_t ghost_up[MAX_GHOSTS], ghost_notdown[MAX_GHOSTS]; /* of lost tracks, a ring */
    size_t n_ghosts;
} stream_t;

typedef struct {
    char stream_id[VG_EVENTS_ID_MAX];
    uint64_t track_id;
    bool lost;
    double lost_mono; /* when the track was lost */
} source_t;

typedef struct {
    vg_event_t ev; /* current state; phase of the last transition */
    family_t fam;
    source_t src[MAX_SOURCES];
    size_t n_src;
    bool orphan;        /* restored, nobody has shown its condition yet */
    double orphan_mono; /* since when */
    double pub_mono;    /* last transition published */
} open_t;

typedef struct {
    char room_id[VG_EVENTS_ID_MAX];
    int occupancy;
    double entry_mono, exit_mono; /* last counted entry and exit, -INFINITY: none */
    char entry_stream[VG_EVENTS_ID_MAX], exit_stream[VG_EVENTS_ID_MAX];
} room_t;

struct vg_events {
    char instance_id[VG_EVENTS_ID_MAX];
    stream_t **streams;
    size_t n_streams;
    open_t **open;
    size_t n_open, cap_open;
    room_t *rooms;
    size_t n_rooms;
    vg_event_t *history; /* ring of HISTORY_MAX: latest state of recent events */
    size_t n_history;    /* events noted so far; slot = index % HISTORY_MAX */
};

#define HISTORY_MAX 1024

/* One sample's context, for the rules. */
typedef struct {
    vg_events_t *ev;
    stream_t *s;
    double mono, wall;
    vg_event_list_t *out;
} sample_t;

extern const family_t vg_events_family[VG_EV_NTYPES];

/* events.c: lifecycle. */
open_t *vg_events_find_source(vg_events_t *ev, const char *stream_id, uint64_t track_id,
                              family_t fam);
/* Starts an event for a person (or joins the room's open event of the family that no
 * live person of this stream holds). */
void vg_events_raise(const sample_t *x, vg_event_type_t type, const track_t *t, const char *zone_id,
                     double confidence, double cond_mono);
/* The person no longer shows the condition: drops them from the event, ending it when
 * nobody is left. */
void vg_events_clear_source(const sample_t *x, open_t *o, uint64_t track_id);
/* The track is gone: down events wait lost_s for it, others end when nobody is left. */
void vg_events_lose_track(const sample_t *x, uint64_t track_id);
room_t *vg_events_room(vg_events_t *ev, const char *room_id);
void vg_events_emit_instant(const sample_t *x, vg_event_type_t type, uint64_t track_id,
                            const char *zone_id, int occupancy);

/* events_json.c: RFC 3339 UTC ("2026-12-03T09:26:06.123Z") to epoch s; -1 if not. */
double vg_events_parse_time(const char *s);

/* events_history.c: remembers the latest state of an event. */
void vg_events_history_note(vg_events_t *ev, const vg_event_t *e);

/* events_rules.c: one person in one sample, and births and deaths. */
void vg_events_rules_person(const sample_t *x, const vg_obs_person_t *p);
void vg_events_rules_track(const sample_t *x, const vg_obs_track_t *t);
/* Marks the person's track seen in this sample (before any rule runs). */
void vg_events_rules_seen(const sample_t *x, const vg_obs_person_t *p);
/* Tracks unseen for STALE_S are lost (no exit counted): a tracker that never says. */
void vg_events_rules_age(const sample_t *x);
/* The stream's track (created if new); NULL when the stream has MAX_TRACKS already. */
track_t *vg_events_track(stream_t *s, uint64_t id, double mono);

/* events_json.c */

#endif
