/* Unit tests for the care-event engine (events.c, events_rules.c): synthetic sequences
 * of tracked people at 2 samples a second. A fall is one event that ends when the person
 * gets up; a flapping posture makes one event; sitting on a chair or lying in bed is no
 * alarm; a person first seen lying is person_down; bed exits only inside their schedule;
 * entries and exits at doors or the frame edge with the room's occupancy; two cameras of
 * one room share one alarm; acknowledgement; timers; restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/events.h"

#define DT 0.5
/* 2026-12-03 12:00:00 UTC and 23:00:00 UTC */
#define NOON 1796299200.0
#define NIGHT (NOON + 11 * 3600.0)

static const vg_box_t UPRIGHT_BOX = {0.45f, 0.3f, 0.1f, 0.5f};
static const vg_box_t LYING_BOX = {0.35f, 0.65f, 0.35f, 0.15f};

typedef struct {
    vg_events_t *ev;
    vg_event_list_t out; /* every transition so far */
    double wall0;
} fx_t;

static vg_obs_person_t person(uint64_t id, vg_box_t box, vg_posture_t posture)
{
    vg_obs_person_t p = {
        .track_id = id, .box = box, .posture = posture, .posture_conf = 0.8f, .movement = -1};
    return p;
}

static vg_obs_person_t upright(uint64_t id)
{
    return person(id, UPRIGHT_BOX, VG_POSTURE_UPRIGHT);
}

static vg_obs_person_t lying(uint64_t id)
{
    return person(id, LYING_BOX, VG_POSTURE_LYING);
}

static void setup_stream(fx_t *f, const char *stream, const char *room, const char *events_json,
                         const char *zones_json)
{
    vg_events_cfg_t cfg;
    vg_zones_t zones = {0};
    vg_jerr_t err;
    json_t *j = events_json ? json_loads(events_json, 0, NULL) : NULL;
    assert_int_equal(vg_events_cfg_from_json(j, NULL, &cfg, &err), 0);
    json_decref(j);
    j = zones_json ? json_loads(zones_json, 0, NULL) : NULL;
    assert_int_equal(vg_zones_from_json(j, NULL, &zones, &err), 0);
    json_decref(j);
    vg_events_set_stream(f->ev, stream, room, &cfg, &zones, 0, f->wall0, &f->out);
}

static fx_t *fx_new(double wall0)
{
    fx_t *f = vg_xcalloc(1, sizeof(*f));
    f->ev = vg_events_new("test-inst");
    f->wall0 = wall0;
    return f;
}

static void fx_free(fx_t *f)
{
    vg_events_free(f->ev);
    vg_event_list_free(&f->out);
    free(f);
}

/* One sample at time t of a stream, with optional births and deaths. */
static void sample(fx_t *f, const char *stream, double t, const vg_obs_person_t *people, size_t n,
                   const vg_obs_track_t *tracks, size_t n_tracks)
{
    vg_obs_t obs = {.mono = t,
                    .wall = f->wall0 + t,
                    .people = people,
                    .n_people = n,
                    .tracks = tracks,
                    .n_tracks = n_tracks};
    assert_int_equal(vg_events_observe(f->ev, stream, &obs, &f->out), 0);
}

/* The same single person every DT from t0 to t1 (exclusive). */
static double run(fx_t *f, const char *stream, double t0, double t1, vg_obs_person_t p)
{
    double t = t0;
    for (; t < t1 - 1e-9; t += DT)
        sample(f, stream, t, &p, 1, NULL, 0);
    return t;
}

static size_t count(const fx_t *f, vg_event_type_t type, vg_event_phase_t phase)
{
    size_t n = 0;
    for (size_t i = 0; i < f->out.n; i++)
        n += f->out.v[i].type == type && f->out.v[i].phase == phase;
    return n;
}

static const vg_event_t *find(const fx_t *f, vg_event_type_t type, vg_event_phase_t phase)
{
    for (size_t i = 0; i < f->out.n; i++)
        if (f->out.v[i].type == type && f->out.v[i].phase == phase) return &f->out.v[i];
    return NULL;
}

/* ---- falls and people down ----------------------------------------------------------------- */

static void test_fall_is_one_event(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", "room-1", NULL, NULL);
    run(f, "cam1", 0, 5, upright(7));
    assert_int_equal(f->out.n, 0);
    run(f, "cam1", 5, 7.5, lying(7));
    assert_int_equal(f->out.n, 0); /* not yet confirmed: 2.5 s down */
    run(f, "cam1", 7.5, 20, lying(7));
    assert_int_equal(f->out.n, 1);
    const vg_event_t *e = find(f, VG_EV_FALL, VG_PHASE_START);
    assert_non_null(e);
    assert_int_equal(e->severity, VG_SEV_CRITICAL);
    assert_int_equal(e->track_id, 7);
    assert_string_equal(e->stream_id, "cam1");
    assert_string_equal(e->room_id, "room-1");
    assert_true(fabs(e->cond_mono - 5.0) < 1e-9);
    assert_true(fabs(e->started_at - (NOON + 8.0)) < 1e-6);
    assert_true(e->confidence > 0.79 && e->confidence < 0.81);
    assert_int_equal(count(f, VG_EV_PERSON_DOWN, VG_PHASE_START), 0);
    char id[VG_EVENT_ID_MAX];
    snprintf(id, sizeof(id), "%s", e->event_id);
    /* gets up: ends after clear_s (3 s) of upright samples */
    run(f, "cam1", 20, 22.5, upright(7));
    assert_int_equal(f->out.n, 1);
    run(f, "cam1", 22.5, 30, upright(7));
    assert_int_equal(f->out.n, 2);
    const vg_event_t *end = find(f, VG_EV_FALL, VG_PHASE_END);
    assert_non_null(end);
    assert_string_equal(end->event_id, id);
    assert_string_equal(end->reason, "cleared");
    assert_true(fabs(end->ended_at - (NOON + 23.0)) < 1e-6);
    fx_free(f);
}

static void test_flapping_posture_one_event(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(1));
    /* a lying blip in an upright person: nothing */
    sample(f, "cam1", 5, (vg_obs_person_t[]){lying(1)}, 1, NULL, 0);
    run(f, "cam1", 5.5, 15, upright(1));
    assert_int_equal(f->out.n, 0);
    /* down, with an upright or unknown sample every other second */
    double t = 15;
    for (int i = 0; i < 40; i++, t += DT) {
        vg_obs_person_t p = i % 4 == 1   ? upright(1)
                            : i % 4 == 3 ? person(1, LYING_BOX, VG_POSTURE_UNKNOWN)
                                         : lying(1);
        sample(f, "cam1", t, &p, 1, NULL, 0);
    }
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 1);
    assert_int_equal(count(f, VG_EV_PERSON_DOWN, VG_PHASE_START), 0);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 0);
    /* a person detector missing them (no sample of them) does not end it either */
    for (int i = 0; i < 20; i++, t += DT)
        sample(f, "cam1", t, NULL, 0, NULL, 0);
    run(f, "cam1", t, t + 10, upright(1));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 1);
    assert_int_equal(f->out.n, 2);
    fx_free(f);
}

static void test_unsure_postures_count_for_nothing(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(1));
    vg_obs_person_t unsure = lying(1);
    unsure.posture_conf = 0.1f;
    run(f, "cam1", 5, 30, unsure);
    assert_int_equal(f->out.n, 0);
    unsure.posture_conf = 0.2f; /* weak, but above min_confidence (0.15) */
    run(f, "cam1", 30, 45, unsure);
    assert_int_equal(count(f, VG_EV_PERSON_DOWN, VG_PHASE_START), 1);
    fx_free(f);
}

static void test_person_down_when_first_seen_lying(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    vg_obs_track_t born = {.track_id = 3, .change = VG_OBS_BORN, .box = LYING_BOX};
    sample(f, "cam1", 0, (vg_obs_person_t[]){lying(3)}, 1, &born, 1);
    run(f, "cam1", DT, 9.5, lying(3));
    assert_int_equal(f->out.n, 0);
    run(f, "cam1", 9.5, 30, lying(3));
    assert_int_equal(f->out.n, 1);
    const vg_event_t *e = find(f, VG_EV_PERSON_DOWN, VG_PHASE_START);
    assert_non_null(e);
    assert_true(fabs(e->started_at - (NOON + 10.0)) < 1e-6);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 0);
    fx_free(f);
}

static void test_sitting_on_the_floor_after_a_fall(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(2));
    /* half-sitting on the floor: a box well under the upright one */
    run(f, "cam1", 5, 12, person(2, (vg_box_t){0.42f, 0.6f, 0.16f, 0.2f}, VG_POSTURE_SITTING));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 1);
    fx_free(f);
}

static void test_fall_across_a_track_switch(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(1));
    /* the tracker loses the falling person and starts a new track on the floor */
    vg_obs_track_t born = {.track_id = 2, .change = VG_OBS_BORN, .box = LYING_BOX};
    sample(f, "cam1", 5, (vg_obs_person_t[]){lying(2)}, 1, &born, 1);
    run(f, "cam1", 5.5, 9, lying(2));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 1);
    assert_int_equal(find(f, VG_EV_FALL, VG_PHASE_START)->track_id, 2);
    fx_free(f);
    /* the same after the tracker said the old track was lost, sitting low this time */
    f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(1));
    vg_obs_track_t lost = {.track_id = 1, .change = VG_OBS_LOST, .box = UPRIGHT_BOX};
    sample(f, "cam1", 5, NULL, 0, &lost, 1);
    run(f, "cam1", 5.5, 9.5, person(2, (vg_box_t){0.42f, 0.6f, 0.16f, 0.2f}, VG_POSTURE_SITTING));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 1);
    fx_free(f);
    /* a visitor standing beside a resident who sits low is no reference for them */
    f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    for (double t = 0; t < 60; t += DT) {
        vg_obs_person_t two[2] = {
            person(1, (vg_box_t){0.42f, 0.6f, 0.16f, 0.25f}, VG_POSTURE_SITTING),
            person(2, (vg_box_t){0.55f, 0.3f, 0.1f, 0.5f}, VG_POSTURE_UPRIGHT)};
        sample(f, "cam1", t, two, 2, NULL, 0);
    }
    assert_int_equal(f->out.n, 0);
    /* but a person who falls far from where anyone stood is person_down, not a fall */
    fx_free(f);
    f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, person(1, (vg_box_t){0.05f, 0.1f, 0.05f, 0.25f}, VG_POSTURE_UPRIGHT));
    sample(f, "cam1", 5, NULL, 0, &lost, 1);
    run(f, "cam1", 5.5, 20, lying(2));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 0);
    assert_int_equal(count(f, VG_EV_PERSON_DOWN, VG_PHASE_START), 1);
    fx_free(f);
}

#define CHAIR_ZONE                                                                                 \
    "{\"zone_id\":\"chair\",\"kind\":\"chair\",\"points\":[[0.3,0.5],[0.7,0.5],[0.7,0.9],[0.3,0."  \
    "9]]}"
#define BED_ZONE                                                                                   \
    "{\"zone_id\":\"bed\",\"kind\":\"bed\",\"points\":[[0.1,0.5],[0.5,0.5],[0.5,0.9],[0.1,0.9]]}"

static void test_chair_and_bed_are_no_alarm(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, "[" CHAIR_ZONE "]");
    run(f, "cam1", 0, 5, upright(1));
    /* sits down on the chair, lower than the floor ratio, and even lies across it */
    run(f, "cam1", 5, 40, person(1, (vg_box_t){0.42f, 0.6f, 0.16f, 0.25f}, VG_POSTURE_SITTING));
    run(f, "cam1", 40, 60, person(1, (vg_box_t){0.35f, 0.6f, 0.3f, 0.15f}, VG_POSTURE_LYING));
    assert_int_equal(f->out.n, 0);
    fx_free(f);
    /* without zones, sitting at a normal height is no fall either */
    f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, NULL);
    run(f, "cam1", 0, 5, upright(1));
    run(f, "cam1", 5, 60, person(1, (vg_box_t){0.42f, 0.45f, 0.16f, 0.35f}, VG_POSTURE_SITTING));
    assert_int_equal(f->out.n, 0);
    fx_free(f);
    /* lying in a bed zone: no person_down, however long; beside it: person_down */
    f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL, "[" BED_ZONE "]");
    vg_box_t in_bed = {0.12f, 0.6f, 0.35f, 0.15f}, beside = {0.55f, 0.6f, 0.35f, 0.15f};
    run(f, "cam1", 0, 120, person(4, in_bed, VG_POSTURE_LYING));
    assert_int_equal(f->out.n, 0);
    run(f, "cam1", 120, 140, person(5, beside, VG_POSTURE_LYING));
    assert_int_equal(count(f, VG_EV_PERSON_DOWN, VG_PHASE_START), 1);
    assert_int_equal(f->out.n, 1);
    fx_free(f);
}

static void test_exclude_zone_is_ignored(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, NULL,
                 "[{\"zone_id\":\"tv\",\"kind\":\"exclude\",\"points\":[[0,0.5],[1,0.5],[1,1],"
                 "[0,1]]}]");
    run(f, "cam1", 0, 5, upright(1));
    run(f, "cam1", 5, 60, lying(1));
    assert_int_equal(f->out.n, 0);
    fx_free(f);
}

/* ---- bed exits ----------------------------------------------------------------------------- */

#define BED_RULES                                                                                  \
    "{\"timezone\":\"UTC\",\"bed_exit\":{\"enabled\":true,\"schedule\":\"21:00-07:00\"},"          \
    "\"bed_edge\":{\"enabled\":true,\"schedule\":[\"21:00-07:00\"]}}"

static void get_out_of_bed(fx_t *f)
{
    setup_stream(f, "cam1", NULL, BED_RULES, "[" BED_ZONE "]");
    run(f, "cam1", 0, 20, person(1, (vg_box_t){0.12f, 0.6f, 0.35f, 0.15f}, VG_POSTURE_LYING));
    /* sits up at the bed's edge, feet on the floor just outside it */
    run(f, "cam1", 20, 30, person(1, (vg_box_t){0.4f, 0.55f, 0.15f, 0.4f}, VG_POSTURE_SITTING));
    /* stands beside the bed and walks off */
    run(f, "cam1", 30, 40, person(1, (vg_box_t){0.6f, 0.3f, 0.1f, 0.55f}, VG_POSTURE_UPRIGHT));
}

static void test_bed_exit_at_night_only(void **state)
{
    (void)state;
    fx_t *f = fx_new(NIGHT);
    get_out_of_bed(f);
    const vg_event_t *edge = find(f, VG_EV_BED_EDGE, VG_PHASE_START);
    assert_non_null(edge);
    assert_int_equal(edge->severity, VG_SEV_WARNING);
    assert_true(fabs(edge->started_at - (NIGHT + 23.0)) < 1e-6);
    assert_int_equal(count(f, VG_EV_BED_EDGE, VG_PHASE_END), 1);
    assert_int_equal(count(f, VG_EV_BED_EXIT, VG_PHASE_START), 1);
    assert_true(fabs(find(f, VG_EV_BED_EXIT, VG_PHASE_START)->started_at - (NIGHT + 32.0)) < 1e-6);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 0);
    /* back to bed: the exit ends */
    run(f, "cam1", 40, 50, person(1, (vg_box_t){0.12f, 0.6f, 0.35f, 0.15f}, VG_POSTURE_LYING));
    assert_int_equal(count(f, VG_EV_BED_EXIT, VG_PHASE_END), 1);
    fx_free(f);
    /* the same at noon: nothing */
    f = fx_new(NOON);
    get_out_of_bed(f);
    assert_int_equal(f->out.n, 0);
    fx_free(f);
    /* a nurse at night who was never in the bed: nothing */
    f = fx_new(NIGHT);
    setup_stream(f, "cam1", NULL, BED_RULES, "[" BED_ZONE "]");
    run(f, "cam1", 0, 60, person(9, (vg_box_t){0.6f, 0.3f, 0.1f, 0.55f}, VG_POSTURE_UPRIGHT));
    assert_int_equal(f->out.n, 0);
    fx_free(f);
}

/* ---- entries and exits --------------------------------------------------------------------- */

#define DOOR_ZONE                                                                                  \
    "{\"zone_id\":\"door\",\"kind\":\"door\",\"points\":[[0.8,0.2],[1,0.2],[1,0.9],[0.8,0.9]]}"
#define DOOR_RULES "{\"room_entry\":{\"enabled\":true},\"room_exit\":{\"enabled\":true}}"

static void born_lost(fx_t *f, const char *stream, double t, uint64_t id, vg_obs_change_t c,
                      vg_box_t box)
{
    vg_obs_track_t tr = {.track_id = id, .change = c, .box = box};
    vg_obs_person_t p = person(id, box, VG_POSTURE_UPRIGHT);
    sample(f, stream, t, &p, c == VG_OBS_BORN, &tr, 1);
}

static void test_entries_and_exits_at_doors(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", "r1", DOOR_RULES, "[" DOOR_ZONE "]");
    vg_box_t at_door = {0.82f, 0.3f, 0.1f, 0.5f}, middle = {0.4f, 0.3f, 0.1f, 0.5f};
    vg_box_t left_edge = {0.0f, 0.3f, 0.1f, 0.5f};
    born_lost(f, "cam1", 0, 1, VG_OBS_BORN, at_door);
    const vg_event_t *e = find(f, VG_EV_ROOM_ENTRY, VG_PHASE_START);
    assert_non_null(e);
    assert_int_equal(e->occupancy, 1);
    assert_string_equal(e->zone_id, "door");
    assert_true(e->ended_at > 0);
    assert_int_equal(e->severity, VG_SEV_INFO);
    /* born in the middle or at the edge (there is a door): no entry */
    born_lost(f, "cam1", 1, 2, VG_OBS_BORN, middle);
    born_lost(f, "cam1", 2, 3, VG_OBS_BORN, left_edge);
    assert_int_equal(f->out.n, 1);
    /* lost in the middle (occluded): no exit; lost at the door: exit */
    born_lost(f, "cam1", 3, 2, VG_OBS_LOST, middle);
    assert_int_equal(f->out.n, 1);
    born_lost(f, "cam1", 10, 1, VG_OBS_LOST, at_door);
    e = find(f, VG_EV_ROOM_EXIT, VG_PHASE_START);
    assert_non_null(e);
    assert_int_equal(e->track_id, 1);
    assert_int_equal(vg_events_occupancy(f->ev, "r1"), e->occupancy);
    fx_free(f);

    /* no door zone: the frame edge */
    f = fx_new(NOON);
    setup_stream(f, "cam1", "r1", DOOR_RULES, NULL);
    born_lost(f, "cam1", 0, 1, VG_OBS_BORN, left_edge);
    born_lost(f, "cam1", 1, 2, VG_OBS_BORN, middle);
    assert_int_equal(count(f, VG_EV_ROOM_ENTRY, VG_PHASE_START), 1);
    assert_int_equal(vg_events_occupancy(f->ev, "r1"), 1);
    born_lost(f, "cam1", 5, 1, VG_OBS_LOST, (vg_box_t){0.9f, 0.3f, 0.1f, 0.5f});
    assert_int_equal(count(f, VG_EV_ROOM_EXIT, VG_PHASE_START), 1);
    assert_int_equal(find(f, VG_EV_ROOM_EXIT, VG_PHASE_START)->occupancy, 0);
    fx_free(f);
}

/* ---- rooms with two cameras ---------------------------------------------------------------- */

static void test_two_streams_one_room_one_alarm(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", "room-7", DOOR_RULES, NULL);
    setup_stream(f, "cam2", "room-7", DOOR_RULES, NULL);
    /* both see the person come in through the door (the frame edge) */
    vg_box_t edge = {0.0f, 0.3f, 0.1f, 0.5f};
    born_lost(f, "cam1", 0, 11, VG_OBS_BORN, edge);
    born_lost(f, "cam2", 0.5, 21, VG_OBS_BORN, edge);
    assert_int_equal(count(f, VG_EV_ROOM_ENTRY, VG_PHASE_START), 1);
    assert_int_equal(vg_events_occupancy(f->ev, "room-7"), 1);
    /* both see them fall, cam2 a second later */
    for (double t = 1; t < 30; t += DT) {
        vg_obs_person_t a = t < 5 ? upright(11) : lying(11);
        vg_obs_person_t b = t < 6 ? upright(21) : lying(21);
        sample(f, "cam1", t, &a, 1, NULL, 0);
        sample(f, "cam2", t + 0.25, &b, 1, NULL, 0);
    }
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 1);
    assert_string_equal(find(f, VG_EV_FALL, VG_PHASE_START)->stream_id, "cam1");
    /* cam1 sees them up, cam2 still sees them down: still open */
    run(f, "cam1", 30, 40, upright(11));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 0);
    run(f, "cam2", 40.25, 50, upright(21));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 1);
    /* other rooms are apart: a fall on cam3 in another room is its own alarm */
    setup_stream(f, "cam3", "room-8", NULL, NULL);
    run(f, "cam3", 50, 55, upright(31));
    run(f, "cam3", 55, 60, lying(31));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_START), 2);
    fx_free(f);
}

/* ---- acknowledgement, payload, timers, restore ------------------------------------------- */

static void fall_now(fx_t *f)
{
    setup_stream(f, "cam1", "room-1", NULL, NULL);
    run(f, "cam1", 0, 5, upright(7));
    run(f, "cam1", 5, 10, lying(7));
    assert_int_equal(f->out.n, 1);
}

static void test_ack(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    fall_now(f);
    char id[VG_EVENT_ID_MAX];
    snprintf(id, sizeof(id), "%s", f->out.v[0].event_id);
    json_t *alarms0 = vg_events_alarms_json(f->ev, "", NOON + 10);
    json_t *list = json_object_get(alarms0, "alarms");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "event_id")),
                        id);
    assert_string_equal(json_string_value(json_object_get(alarms0, "instance_id")), "test-inst");
    json_decref(alarms0);
    assert_int_equal(vg_events_ack(f->ev, "nope", "nurse", NOON + 11, &f->out), VG_ENOTFOUND);
    assert_int_equal(vg_events_ack(f->ev, id, "nurse-anna", NOON + 11, &f->out), 0);
    assert_int_equal(f->out.n, 2);
    const vg_event_t *u = &f->out.v[1];
    assert_int_equal(u->phase, VG_PHASE_UPDATE);
    assert_string_equal(u->reason, "acked");
    assert_string_equal(u->acked_by, "nurse-anna");
    assert_true(fabs(u->acked_at - (NOON + 11)) < 1e-6);
    assert_int_equal(vg_events_ack(f->ev, id, "someone", NOON + 12, &f->out), 0);
    assert_int_equal(f->out.n, 2);
    json_t *alarms = vg_events_alarms_json(f->ev, "", NOON + 12);
    assert_int_equal(json_array_size(json_object_get(alarms, "alarms")), 0); /* acked */
    json_decref(alarms);
    vg_event_list_t open = {0};
    vg_events_list_open(f->ev, &open);
    assert_int_equal(open.n, 1);
    assert_string_equal(open.v[0].acked_by, "nurse-anna");
    vg_event_list_free(&open);
    /* it stays open until they are up; the end carries the ack */
    run(f, "cam1", 10, 20, upright(7));
    const vg_event_t *end = find(f, VG_EV_FALL, VG_PHASE_END);
    assert_non_null(end);
    assert_string_equal(end->acked_by, "nurse-anna");
    assert_int_equal(vg_events_ack(f->ev, id, "late", NOON + 30, &f->out), VG_ENOTFOUND);
    fx_free(f);
}

static void test_payload(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    fall_now(f);
    vg_events_ack(f->ev, f->out.v[0].event_id, "nurse", NOON + 11, &f->out);
    json_t *j = vg_event_to_json(&f->out.v[1], "test-inst", "http://gw:8080");
    static const char *const keys[] = {
        "event_id", "type",     "phase",    "severity",   "instance_id", "stream_id",
        "room_id",  "track_id", "zone_id",  "confidence", "started_at",  "updated_at",
        "ended_at", "acked_at", "acked_by", "snapshot",   "reason"};
    for (size_t i = 0; i < VG_ARRAY_LEN(keys); i++)
        if (!json_object_get(j, keys[i])) fail_msg("payload lacks %s", keys[i]);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "fall");
    assert_string_equal(json_string_value(json_object_get(j, "phase")), "update");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(j, "instance_id")), "test-inst");
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-12-03T12:00:08.000Z");
    assert_true(json_is_null(json_object_get(j, "ended_at")));
    assert_true(json_is_null(json_object_get(j, "zone_id")));
    assert_null(json_object_get(j, "occupancy"));
    char snap[160];
    snprintf(snap, sizeof(snap), "http://gw:8080/api/v1/events/%s/snapshot.jpg",
             f->out.v[0].event_id);
    assert_string_equal(json_string_value(json_object_get(j, "snapshot")), snap);
    /* reads back */
    vg_event_t back;
    vg_jerr_t err;
    assert_int_equal(vg_event_from_json(j, &back, &err), 0);
    assert_string_equal(back.event_id, f->out.v[1].event_id);
    assert_int_equal(back.type, VG_EV_FALL);
    assert_int_equal(back.phase, VG_PHASE_UPDATE);
    assert_int_equal(back.track_id, 7);
    assert_true(fabs(back.started_at - f->out.v[1].started_at) < 1e-3);
    assert_true(fabs(back.acked_at - (NOON + 11)) < 1e-3);
    assert_string_equal(back.acked_by, "nurse");
    assert_string_equal(back.reason, "acked");
    json_object_set_new(j, "started_at", json_string("yesterday"));
    assert_int_equal(vg_event_from_json(j, &back, &err), VG_EINVAL);
    assert_string_equal(err.field, "started_at");
    json_decref(j);
    /* ids: UUIDv7, unique, ordered by time */
    const char *id = f->out.v[0].event_id;
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '7');
    char a[VG_EVENT_ID_MAX], b[VG_EVENT_ID_MAX];
    vg_event_new_id(NOON, a, sizeof(a));
    vg_event_new_id(NOON, b, sizeof(b));
    assert_string_not_equal(a, b);
    assert_int_equal(strncmp(a, b, 13), 0);
    vg_event_new_id(NOON + 1, b, sizeof(b));
    assert_true(strcmp(a, b) < 0);
    fx_free(f);
}

static void test_timers_updates_and_lost(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", "room-1", "{\"update_s\":10,\"lost_s\":60}", NULL);
    run(f, "cam1", 0, 5, upright(7));
    run(f, "cam1", 5, 10, lying(7));
    vg_events_tick(f->ev, 12, NOON + 12, &f->out);
    assert_int_equal(f->out.n, 1);
    vg_events_tick(f->ev, 18.5, NOON + 18.5, &f->out);
    assert_int_equal(f->out.n, 2);
    assert_string_equal(f->out.v[1].reason, "still_active");
    /* the track is lost while down: the event waits lost_s for them */
    vg_obs_track_t lost = {.track_id = 7, .change = VG_OBS_LOST, .box = LYING_BOX};
    sample(f, "cam1", 20, NULL, 0, &lost, 1);
    vg_events_tick(f->ev, 79, NOON + 79, &f->out);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 0);
    vg_events_tick(f->ev, 80, NOON + 80, &f->out);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 1);
    assert_string_equal(find(f, VG_EV_FALL, VG_PHASE_END)->reason, "lost");
    fx_free(f);

    /* a tracker that never says the track was lost: unseen for 60 s is lost */
    f = fx_new(NOON);
    setup_stream(f, "cam1", "room-1", "{\"update_s\":0,\"lost_s\":60}", NULL);
    run(f, "cam1", 0, 5, upright(7));
    run(f, "cam1", 5, 10, lying(7));
    for (double t = 10; t < 71; t += 1)
        sample(f, "cam1", t, NULL, 0, NULL, 0);
    vg_events_tick(f->ev, 129, NOON + 129, &f->out);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 0);
    vg_events_tick(f->ev, 130, NOON + 130, &f->out);
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 1);
    fx_free(f);

    /* lost and found again as a new track, still down: the same event */
    f = fx_new(NOON);
    setup_stream(f, "cam1", "room-1", NULL, NULL);
    run(f, "cam1", 0, 5, upright(7));
    run(f, "cam1", 5, 10, lying(7));
    sample(f, "cam1", 10, NULL, 0, &lost, 1);
    run(f, "cam1", 10.5, 40, lying(8));
    assert_int_equal(f->out.n, 1);
    run(f, "cam1", 40, 50, upright(8));
    assert_int_equal(count(f, VG_EV_FALL, VG_PHASE_END), 1);
    fx_free(f);
}

static void test_restore(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    fall_now(f);
    vg_event_t saved = f->out.v[0];
    fx_free(f);
    /* a new engine (a restart): restored, announced, then joined by the person still down */
    f = fx_new(NOON + 100);
    setup_stream(f, "cam1", "room-1", NULL, NULL);
    assert_int_equal(vg_events_restore(f->ev, &saved, 0, NOON + 100, &f->out), 0);
    assert_int_equal(vg_events_restore(f->ev, &saved, 0, NOON + 100, &f->out), VG_EEXIST);
    assert_int_equal(f->out.n, 1);
    assert_string_equal(f->out.v[0].reason, "restored");
    assert_string_equal(f->out.v[0].event_id, saved.event_id);
    run(f, "cam1", 0, 30, lying(1));
    assert_int_equal(f->out.n, 1); /* person_down joined the restored fall */
    run(f, "cam1", 30, 40, upright(1));
    assert_int_equal(f->out.n, 2);
    assert_int_equal(f->out.v[1].phase, VG_PHASE_END);
    assert_string_equal(f->out.v[1].event_id, saved.event_id);
    saved.ended_at = NOON;
    assert_int_equal(vg_events_restore(f->ev, &saved, 0, NOON, &f->out), VG_EINVAL);
    fx_free(f);
}

static void test_inactivity(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    setup_stream(f, "cam1", NULL, "{\"inactivity\":{\"enabled\":true,\"inactivity_s\":60}}", NULL);
    vg_obs_person_t p = person(1, (vg_box_t){0.4f, 0.45f, 0.16f, 0.35f}, VG_POSTURE_SITTING);
    double t = 0;
    for (; t < 30; t += DT) { /* small jitter is no movement */
        p.box.x = 0.4f + (float)(0.005 * sin(t));
        sample(f, "cam1", t, &p, 1, NULL, 0);
    }
    t = run(f, "cam1", t, 59.5, p);
    assert_int_equal(f->out.n, 0);
    t = run(f, "cam1", t, 61, p);
    assert_int_equal(count(f, VG_EV_INACTIVITY, VG_PHASE_START), 1);
    p.box.x = 0.5f;
    run(f, "cam1", t, t + 1, p);
    assert_int_equal(count(f, VG_EV_INACTIVITY, VG_PHASE_END), 1);
    fx_free(f);
}

/* ---- history ------------------------------------------------------------------------------ */

static size_t query(fx_t *f, const char *const *kv, vg_event_list_t *res)
{
    vg_events_filter_t flt;
    vg_events_filter_default(&flt);
    vg_jerr_t err;
    for (; kv && *kv; kv += 2)
        assert_int_equal(vg_events_filter_set(&flt, kv[0], kv[1], &err), 0);
    vg_event_list_clear(res);
    vg_events_query(f->ev, &flt, res);
    return res->n;
}

static void test_history(void **state)
{
    (void)state;
    fx_t *f = fx_new(NOON);
    fall_now(f); /* an open fall on cam1 at NOON + 8 */
    setup_stream(f, "cam2", "room-2", DOOR_RULES, NULL);
    vg_box_t edge = {0.0f, 0.3f, 0.1f, 0.5f};
    for (int i = 0; i < 1100; i++) /* entries and exits push the fall's start out of the ring */
        born_lost(f, "cam2", 20 + i, 100 + (uint64_t)i / 2, i % 2 ? VG_OBS_LOST : VG_OBS_BORN,
                  edge);
    vg_event_list_t res = {0};
    assert_int_equal(query(f, NULL, &res), 100);
    assert_int_equal(res.v[0].type, VG_EV_ROOM_EXIT); /* newest first */
    assert_true(res.v[0].updated_at > res.v[1].updated_at);
    assert_int_equal(query(f, (const char *const[]){"active", "true", NULL}, &res), 1);
    assert_int_equal(res.v[0].type, VG_EV_FALL);
    assert_int_equal(query(f, (const char *const[]){"stream_id", "cam1", NULL}, &res), 1);
    assert_int_equal(
        query(f, (const char *const[]){"room_id", "room-2", "limit", "1000", NULL}, &res), 1000);
    assert_int_equal(
        query(f, (const char *const[]){"type", "room_entry", "limit", "1000", NULL}, &res), 512);
    assert_int_equal(
        query(f, (const char *const[]){"since", "2026-12-03T12:18:00Z", "type", "room_exit", NULL},
              &res),
        (1100 - (1080 - 20)) / 2);
    char since[32];
    snprintf(since, sizeof(since), "%.0f", NOON + 1118);
    assert_int_equal(query(f, (const char *const[]){"since", since, NULL}, &res), 2);
    /* one event by id, open or recent */
    vg_event_t e;
    assert_int_equal(vg_events_get(f->ev, f->out.v[0].event_id, &e), 0);
    assert_int_equal(e.type, VG_EV_FALL);
    assert_int_equal(vg_events_get(f->ev, f->out.v[f->out.n - 1].event_id, &e), 0);
    assert_int_equal(e.type, VG_EV_ROOM_EXIT);
    assert_int_equal(vg_events_get(f->ev, f->out.v[1].event_id, &e), VG_ENOTFOUND);
    /* bad parameters name themselves */
    vg_events_filter_t flt;
    vg_jerr_t err;
    vg_events_filter_default(&flt);
    assert_int_equal(vg_events_filter_set(&flt, "limit", "0", &err), VG_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_int_equal(vg_events_filter_set(&flt, "type", "fire", &err), VG_EINVAL);
    assert_int_equal(vg_events_filter_set(&flt, "active", "yes", &err), VG_EINVAL);
    assert_int_equal(vg_events_filter_set(&flt, "since", "noon", &err), VG_EINVAL);
    assert_int_equal(vg_events_filter_set(&flt, "colour", "red", &err), VG_EINVAL);
    assert_string_equal(err.field, "colour");
    vg_event_list_free(&res);
    fx_free(f);
}

/* ---- settings ------------------------------------------------------------------------------ */

static void expect_cfg_error(const char *text, const char *field)
{
    vg_events_cfg_t cfg;
    vg_jerr_t err = {0};
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_int_equal(vg_events_cfg_from_json(j, "events", &cfg, &err), VG_EINVAL);
    json_decref(j);
    if (strcmp(err.field, field) != 0)
        fail_msg("field '%s' != '%s' (%s)", err.field, field, err.message);
}

static void test_settings(void **state)
{
    (void)state;
    vg_events_cfg_t cfg, back;
    vg_jerr_t err;
    assert_int_equal(vg_events_cfg_from_json(NULL, NULL, &cfg, &err), 0);
    assert_true(cfg.rules[VG_EV_FALL].enabled && cfg.rules[VG_EV_PERSON_DOWN].enabled);
    assert_false(cfg.rules[VG_EV_BED_EXIT].enabled || cfg.rules[VG_EV_INACTIVITY].enabled);
    assert_true(cfg.rules[VG_EV_FALL].threshold_s == 3);
    assert_true(cfg.rules[VG_EV_PERSON_DOWN].threshold_s == 10);
    assert_true(cfg.rules[VG_EV_INACTIVITY].threshold_s == 1800);
    expect_cfg_error("[]", "events");
    expect_cfg_error("{\"fall\":{\"confirm_s\":-1}}", "events.fall.confirm_s");
    expect_cfg_error("{\"fall\":{\"down_s\":5}}", "events.fall.down_s");
    expect_cfg_error("{\"fall\":{\"enabled\":1}}", "events.fall.enabled");
    expect_cfg_error("{\"bed_exit\":{\"severity\":\"loud\"}}", "events.bed_exit.severity");
    expect_cfg_error("{\"bed_exit\":{\"schedule\":\"21:00-7:00\"}}", "events.bed_exit.schedule");
    expect_cfg_error("{\"bed_exit\":{\"schedule\":[\"21:00-07:00\",\"25:00-26:00\"]}}",
                     "events.bed_exit.schedule[1]");
    expect_cfg_error("{\"bed_exit\":{\"schedule\":\"07:00-07:00\"}}", "events.bed_exit.schedule");
    expect_cfg_error("{\"timezone\":\"Europe/Berlin\"}", "events.timezone");
    expect_cfg_error("{\"timezone\":\"+15:00\"}", "events.timezone");
    expect_cfg_error("{\"clear_s\":\"3\"}", "events.clear_s");
    expect_cfg_error("{\"smoke\":{}}", "events.smoke");
    const char *text = "{\"timezone\":\"+01:00\",\"clear_s\":5,\"fall\":{\"confirm_s\":4},"
                       "\"bed_exit\":{\"enabled\":true,\"severity\":\"critical\","
                       "\"schedule\":[\"21:00-07:00\",\"13:00-14:30\"]}}";
    json_t *j = json_loads(text, 0, NULL);
    assert_int_equal(vg_events_cfg_from_json(j, NULL, &cfg, &err), 0);
    json_decref(j);
    assert_true(cfg.clear_s == 5 && cfg.rules[VG_EV_FALL].threshold_s == 4);
    assert_int_equal(cfg.rules[VG_EV_BED_EXIT].severity, VG_SEV_CRITICAL);
    j = vg_events_cfg_to_json(&cfg);
    assert_int_equal(vg_events_cfg_from_json(j, NULL, &back, &err), 0);
    json_t *j2 = vg_events_cfg_to_json(&back);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    assert_true(back.clear_s == 5 && back.tz_offset_min == 60 && !back.tz_local);
    assert_int_equal(back.rules[VG_EV_BED_EXIT].schedule.n, 2);
    assert_int_equal(back.rules[VG_EV_BED_EXIT].schedule.w[1].end_min, 14 * 60 + 30);
    /* schedules in +01:00: 21:00-07:00 local is 20:00-06:00 UTC */
    double midnight = NOON - 12 * 3600.0;
    assert_true(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 20.5 * 3600));
    assert_true(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 5.9 * 3600));
    assert_false(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 6.1 * 3600));
    assert_false(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 19.9 * 3600));
    assert_true(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 12.5 * 3600));
    assert_false(vg_events_cfg_active(&cfg, VG_EV_BED_EXIT, midnight + 13.5 * 3600));
    assert_true(vg_events_cfg_active(&cfg, VG_EV_FALL, midnight + 13.5 * 3600));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fall_is_one_event),
        cmocka_unit_test(test_flapping_posture_one_event),
        cmocka_unit_test(test_unsure_postures_count_for_nothing),
        cmocka_unit_test(test_person_down_when_first_seen_lying),
        cmocka_unit_test(test_sitting_on_the_floor_after_a_fall),
        cmocka_unit_test(test_fall_across_a_track_switch),
        cmocka_unit_test(test_chair_and_bed_are_no_alarm),
        cmocka_unit_test(test_exclude_zone_is_ignored),
        cmocka_unit_test(test_bed_exit_at_night_only),
        cmocka_unit_test(test_entries_and_exits_at_doors),
        cmocka_unit_test(test_two_streams_one_room_one_alarm),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_timers_updates_and_lost),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_inactivity),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
