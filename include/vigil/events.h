/* events.h — care events: rules over the people one stream sees, sample by sample
 * (fall, person_down, bed_exit, bed_edge, inactivity, room_entry, room_exit), each
 * event with a lifecycle (start, update, end), one open event per room, type family and
 * person, and the JSON payload that MQTT, REST and the journal carry.
 *
 * The engine is pure: it reads no clock and does no I/O. The caller (the loop) feeds
 * each stream's observations in order with their sample times and receives the
 * transitions to publish; timers (periodic updates, lost people) run in vg_events_tick.
 * One engine serves every stream of an instance, so cameras that share a room_id share
 * the room's events. Loop thread only; nothing here is shared with other threads. */
#ifndef VIGIL_EVENTS_H
#define VIGIL_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/detector.h" /* vg_box_t */
#include "vigil/zones.h"

#define VG_EVENT_ID_MAX 40 /* a UUIDv7 string and the NUL */
#define VG_EVENTS_ID_MAX 65
#define VG_EVENTS_MAX_WINDOWS 4 /* schedule windows per rule */

typedef enum {
    VG_EV_FALL,
    VG_EV_PERSON_DOWN,
    VG_EV_BED_EXIT,
    VG_EV_BED_EDGE,
    VG_EV_INACTIVITY,
    VG_EV_ROOM_ENTRY,
    VG_EV_ROOM_EXIT,
    VG_EV_NTYPES,
} vg_event_type_t;

typedef enum { VG_PHASE_START, VG_PHASE_UPDATE, VG_PHASE_END } vg_event_phase_t;
typedef enum { VG_SEV_INFO, VG_SEV_WARNING, VG_SEV_CRITICAL } vg_severity_t;

#include "vigil/posture.h"

/* ---- settings ------------------------------------------------------------------------------ */

/* Local-time windows [start, end) in minutes of the day; end < start wraps past
 * midnight ("21:00-07:00"). No windows: always. */
typedef struct {
    size_t n;
    struct {
        int start_min, end_min;
    } w[VG_EVENTS_MAX_WINDOWS];
} vg_schedule_t;

typedef struct {
    bool enabled;
    vg_severity_t severity;
    double threshold_s; /* confirm_s, down_s or inactivity_s (see the rules table) */
    vg_schedule_t schedule;
} vg_rule_cfg_t;

/* A stream's `events:` settings. Time zone of schedules: "local" (the process's zone:
 * TZ in the environment or /etc/localtime, read through localtime_r), "UTC", or a fixed
 * offset "+01:00" / "-05:30". IANA names are not accepted here: run vigild with TZ set
 * to the name and use "local", so the C library alone owns the zone database. */
typedef struct {
    vg_rule_cfg_t rules[VG_EV_NTYPES];
    char timezone[16];     /* as given, for to_json */
    int tz_offset_min;     /* fixed offset when tz_local is false */
    bool tz_local;         /* localtime_r */
    double min_confidence; /* postures below are unknown (default 0.15) */
    double clear_s;        /* a condition must be gone this long to end an event (3) */
    double update_s;       /* an open event repeats as `update` this often (60; 0 never) */
    double lost_s;         /* a lost person's fall/person_down ends after this (300) */
    double merge_s;        /* entries/exits of one room this close are one (5) */
    double move_eps;       /* movement, in image fractions, that resets inactivity (0.03) */
} vg_events_cfg_t;

/* The defaults: fall and person_down on, every other rule off; no schedules. */
void vg_events_cfg_default(vg_events_cfg_t *cfg);
/* Parses an `events` object (borrowed; NULL or JSON null: the defaults) over the
 * defaults. `key` names it in errors ("events", "streams[0].events"). Per rule type an
 * object {enabled, severity, schedule, <threshold>} where the threshold key is the
 * rule's (fall: confirm_s, person_down: down_s, bed_exit and bed_edge: confirm_s,
 * inactivity: inactivity_s); schedule is a string or an array of up to 4 strings
 * "HH:MM-HH:MM". Top-level keys: timezone, min_confidence, clear_s, update_s, lost_s,
 * merge_s, move_eps. Returns 0, or VG_EINVAL with err filled and *out untouched. */
int vg_events_cfg_from_json(const json_t *obj, const char *key, vg_events_cfg_t *out,
                            vg_jerr_t *err);
/* Every setting, defaults included (caller owns the reference); parses back equal. */
json_t *vg_events_cfg_to_json(const vg_events_cfg_t *cfg);
/* True if the rule has no schedule or wall time `wall` (epoch s) falls in a window. */
bool vg_events_cfg_active(const vg_events_cfg_t *cfg, vg_event_type_t type, double wall);

/* ---- input --------------------------------------------------------------------------------- */

/* One tracked person in one sample. */
typedef struct {
    uint64_t track_id;
    vg_box_t box; /* normalised to the frame */
    vg_posture_t posture;
    float posture_conf; /* 0..1 */
    /* movement since the previous sample as a fraction of the frame; < 0: unknown, the
     * engine then compares centres across samples itself */
    float movement;
    bool has_centre; /* cx, cy: the keypoints' centre, better than the box's */
    float cx, cy;
} vg_obs_person_t;

typedef enum { VG_OBS_BORN, VG_OBS_LOST } vg_obs_change_t;

/* A track born or lost in this sample, with its first or last box. The engine decides
 * from the box whether that was at a door zone (or the frame edge when the stream has
 * no door zone). */
typedef struct {
    uint64_t track_id;
    vg_obs_change_t change;
    vg_box_t box;
} vg_obs_track_t;

/* One sample of one stream: every person seen in it, and births and deaths. */
typedef struct {
    double mono; /* sample time, CLOCK_MONOTONIC seconds; non-decreasing per stream */
    double wall; /* the same moment, epoch seconds */
    const vg_obs_person_t *people;
    size_t n_people;
    const vg_obs_track_t *tracks;
    size_t n_tracks;
} vg_obs_t;

/* ---- output -------------------------------------------------------------------------------- */

/* One transition of one event, a self-contained copy. Times are epoch seconds; 0 means
 * not set (JSON null). */
typedef struct {
    char event_id[VG_EVENT_ID_MAX];
    vg_event_type_t type;
    vg_event_phase_t phase;
    vg_severity_t severity;
    char stream_id[VG_EVENTS_ID_MAX]; /* the stream that raised it */
    char room_id[VG_EVENTS_ID_MAX];
    char zone_id[VG_ZONE_ID_MAX]; /* "" when the person was in no zone */
    uint64_t track_id;
    double confidence;
    double started_at, updated_at, ended_at, acked_at;
    char acked_by[VG_EVENTS_ID_MAX];
    const char *reason; /* static: "confirmed", "still_active", "acked", "restored",
                           "cleared", "lost", "stream_removed", "instant" */
    int occupancy;      /* room_entry / room_exit: people in the room after it; else -1 */
    double cond_mono;   /* the first sample that showed the condition (for delay) */
} vg_event_t;

typedef struct {
    vg_event_t *v;
    size_t n, cap;
} vg_event_list_t;

void vg_event_list_clear(vg_event_list_t *l); /* keeps the memory */
/* Appends a copy of e; returns the copy (valid until the next push). */
vg_event_t *vg_event_list_push(vg_event_list_t *l, const vg_event_t *e);
void vg_event_list_free(vg_event_list_t *l);

const char *vg_event_type_name(vg_event_type_t t);
int vg_event_type_parse(const char *name, vg_event_type_t *out); /* 0 or VG_EINVAL */
const char *vg_event_phase_name(vg_event_phase_t p);
const char *vg_severity_name(vg_severity_t s);
int vg_severity_parse(const char *name, vg_severity_t *out);

/* The payload: event_id, type, phase, severity, instance_id, stream_id, room_id,
 * track_id, zone_id, confidence, started_at, updated_at, ended_at, acked_at, acked_by,
 * snapshot (snapshot_base + "/api/v1/events/{id}/snapshot.jpg"; base may be "" for a
 * relative URL), reason, occupancy (entries and exits only). Times RFC 3339 UTC.
 * Caller owns the reference. */
json_t *vg_event_to_json(const vg_event_t *e, const char *instance_id, const char *snapshot_base);
/* A new event id: a UUIDv7 (48 bits of epoch milliseconds from `wall`, 74 random bits),
 * unique across restarts, ordered by time. len >= VG_EVENT_ID_MAX. */
void vg_event_new_id(double wall, char *out, size_t len);
/* Reads a payload back (for the journal). 0 or VG_EINVAL with err filled. */
int vg_event_from_json(const json_t *obj, vg_event_t *out, vg_jerr_t *err);

/* ---- the engine ---------------------------------------------------------------------------- */

typedef struct vg_events vg_events_t;

/* `instance_id` is copied. */
vg_events_t *vg_events_new(const char *instance_id);
void vg_events_free(vg_events_t *ev); /* NULL ok */

/* Adds a stream or replaces its settings and zones (copied; zones NULL: none). room_id
 * NULL or "": the stream id. Changing the room of a stream ends its open events. */
void vg_events_set_stream(vg_events_t *ev, const char *stream_id, const char *room_id,
                          const vg_events_cfg_t *cfg, const vg_zones_t *zones, double mono,
                          double wall, vg_event_list_t *out);
/* Ends the stream's open events (reason stream_removed) and forgets it. */
void vg_events_remove_stream(vg_events_t *ev, const char *stream_id, double mono, double wall,
                             vg_event_list_t *out);

/* Feeds one sample of a stream; appends the transitions it causes to out. VG_ENOTFOUND
 * for a stream never set. */
int vg_events_observe(vg_events_t *ev, const char *stream_id, const vg_obs_t *obs,
                      vg_event_list_t *out);
/* Timers: periodic updates of open events, and the end of events whose person has been
 * lost for lost_s. Call every second or so. */
void vg_events_tick(vg_events_t *ev, double mono, double wall, vg_event_list_t *out);

/* Acknowledges an open event: sets acked_at and acked_by (copied, truncated to 64) and
 * appends an `update` (reason acked). VG_ENOTFOUND when no open event has that id;
 * acknowledging twice keeps the first and appends nothing. */
int vg_events_ack(vg_events_t *ev, const char *event_id, const char *by, double wall,
                  vg_event_list_t *out);

/* Re-opens an event read back from the journal (its stream must be set): it keeps its
 * id and times, has no person until a person of its stream's room shows its condition
 * again, and ends after lost_s if nobody does. Appends an `update` (reason restored).
 * VG_EEXIST if it is open already, VG_ENOTFOUND for an unknown stream, VG_EINVAL for an
 * ended or instant event. */
int vg_events_restore(vg_events_t *ev, const vg_event_t *e, double mono, double wall,
                      vg_event_list_t *out);

/* ---- history, for REST ---------------------------------------------------------------------- */

/* Which events GET /api/v1/events returns. Strings are borrowed. */
typedef struct {
    const char *stream_id, *room_id; /* NULL: any */
    int type;                        /* a vg_event_type_t, or -1: any */
    int active;                      /* 1: open only, 0: ended only, -1: any */
    double since;                    /* updated at or after (epoch s); 0: any */
    size_t limit;                    /* 1..1000, default 100 */
} vg_events_filter_t;

void vg_events_filter_default(vg_events_filter_t *f);
/* Sets one filter from a query parameter (stream_id, room_id, type, active = true|false,
 * since = RFC 3339 or epoch seconds, limit); `value` is borrowed by the filter. 0, or
 * VG_EINVAL with err naming the parameter. */
int vg_events_filter_set(vg_events_filter_t *f, const char *key, const char *value, vg_jerr_t *err);
/* The latest state of the engine's last 1024 events (open ones always included), newest
 * first, that match the filter, appended to out. */
void vg_events_query(const vg_events_t *ev, const vg_events_filter_t *f, vg_event_list_t *out);
/* The latest state of one event, open or among the last 1024; 0 or VG_ENOTFOUND. */
int vg_events_get(const vg_events_t *ev, const char *event_id, vg_event_t *out);

/* The retained `{p}/alarms/{instance_id}` document: {instance_id, updated_at, alarms:
 * [payload, ...]} with every open, unacknowledged event of severity warning or critical,
 * oldest first (payloads as vg_event_to_json). Caller owns the reference. */
json_t *vg_events_alarms_json(const vg_events_t *ev, const char *snapshot_base, double wall);

/* A copy of every open event, oldest first, phase and reason of its last transition
 * (for the retained alarms and REST). */
void vg_events_list_open(const vg_events_t *ev, vg_event_list_t *out);
/* People in the room by its entries and exits (0 for an unknown room). */
int vg_events_occupancy(const vg_events_t *ev, const char *room_id);

#endif
