/* Unit tests for track.c: a walking person keeps one id, two people crossing keep theirs,
 * short misses keep the id and long ones end it (re-entry gets a new one), a change of
 * sample rate changes nothing, a falling person whose box turns from tall to wide (and
 * whom the detector loses) stays one track whose posture turns to lying, births need two
 * sightings, posture changes need two votes, and detector and pose observations of one
 * sample are one person; the JSON face annotates one frame's messages with track ids.
 * Synthetic boxes: no models needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vigil/common.h"
#include "vigil/track.h"

static vg_track_obs_t det(float x, float y, float w, float h)
{
    return (vg_track_obs_t){{x, y, w, h}, 0.9f, VG_TRACK_SRC_DETECTOR, VG_POSTURE_UNKNOWN, 0};
}

static vg_track_obs_t pose(float x, float y, float w, float h, vg_posture_t p, float conf)
{
    return (vg_track_obs_t){{x, y, w, h}, 0.8f, VG_TRACK_SRC_POSE, p, conf};
}

static int64_t update1(vg_tracker_t *t, double now, vg_track_obs_t o)
{
    int64_t id = -1;
    assert_int_equal(vg_tracker_update(t, now, &o, 1, &id), 0);
    return id;
}

static size_t live(const vg_tracker_t *t)
{
    vg_track_t tracks[VG_TRACK_MAX];
    return vg_tracker_tracks(t, tracks, VG_TRACK_MAX);
}

static void test_walking_person_keeps_one_id(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    /* tentative on the first sighting, confirmed (id 1) on the second */
    assert_int_equal(update1(t, 0.0, det(0.05f, 0.3f, 0.1f, 0.4f)), 0);
    assert_int_equal(live(t), 0);
    for (int i = 1; i < 40; i++) /* 0.1 view widths per second at 2 fps */
        assert_int_equal(update1(t, i * 0.5, det(0.05f + 0.05f * (float)i / 2, 0.3f, 0.1f, 0.4f)),
                         1);
    const vg_track_t *k = vg_tracker_get(t, 1);
    assert_non_null(k);
    assert_float_equal(k->first_seen, 0.0, 1e-9);
    assert_float_equal(k->last_seen, 19.5, 1e-9);
    assert_int_equal(k->hits, 40);
    assert_float_equal(k->vx, 0.05f, 0.005f);
    assert_float_equal(k->speed, 0.05f / 0.4f, 0.01f); /* in box heights per second */
    vg_tracker_free(t);
}

/* Two people walk towards each other along the same line and pass; their boxes overlap
 * for several samples. Each keeps their id on the far side. */
static void test_crossing_people(void **state)
{
    (void)state;
    vg_tracker_cfg_t cfg = {.view_aspect = 16.0f / 9.0f};
    vg_tracker_t *t = vg_tracker_new(&cfg);
    int64_t right_id = 0, left_id = 0;
    for (int i = 0; i <= 16; i++) {
        float a = 0.1f + 0.05f * (float)i, b = 0.8f - 0.05f * (float)i;
        vg_track_obs_t obs[2] = {det(a, 0.3f, 0.08f, 0.4f), det(b, 0.32f, 0.08f, 0.4f)};
        if (i % 2) { /* the detector's order is not the people's */
            vg_track_obs_t x = obs[0];
            obs[0] = obs[1];
            obs[1] = x;
        }
        int64_t ids[2];
        assert_int_equal(vg_tracker_update(t, i * 0.5, obs, 2, ids), 0);
        int64_t a_id = i % 2 ? ids[1] : ids[0], b_id = i % 2 ? ids[0] : ids[1];
        if (i == 1) {
            right_id = a_id;
            left_id = b_id;
            assert_true(right_id > 0 && left_id > 0 && right_id != left_id);
        } else if (i > 1) {
            assert_int_equal(a_id, right_id);
            assert_int_equal(b_id, left_id);
        }
    }
    assert_int_equal(live(t), 2);
    assert_true(vg_tracker_get(t, right_id)->vx > 0);
    assert_true(vg_tracker_get(t, left_id)->vx < 0);
    vg_tracker_free(t);
}

static void test_misses_and_reentry(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL); /* max_age_s 5 */
    update1(t, 0.0, det(0.4f, 0.3f, 0.1f, 0.4f));
    const vg_track_change_t *born = NULL;
    assert_int_equal(vg_tracker_changes(t, &born), 0); /* tentative: not born yet */
    assert_int_equal(update1(t, 0.5, det(0.4f, 0.3f, 0.1f, 0.4f)), 1);
    assert_int_equal(vg_tracker_changes(t, &born), 1);
    assert_int_equal(born[0].change, VG_TRACK_BORN);
    assert_int_equal(born[0].id, 1);
    /* unseen for 3 s (empty samples in between), then back in place: same id */
    for (int i = 2; i < 8; i++)
        assert_int_equal(vg_tracker_update(t, i * 0.5, NULL, 0, NULL), 0);
    assert_int_equal(live(t), 1);
    assert_int_equal(update1(t, 3.5, det(0.41f, 0.3f, 0.1f, 0.4f)), 1);
    /* unseen for 4.9 s: alive; for 5.1 s (max_age_s 5): the track dies */
    assert_int_equal(vg_tracker_update(t, 8.4, NULL, 0, NULL), 0);
    assert_int_equal(live(t), 1);
    const vg_track_change_t *ch = NULL;
    assert_int_equal(vg_tracker_changes(t, &ch), 0);
    assert_int_equal(vg_tracker_update(t, 8.6, NULL, 0, NULL), 0);
    assert_int_equal(live(t), 0);
    assert_int_equal(vg_tracker_changes(t, &ch), 1); /* reported once, with its last box */
    assert_int_equal(ch[0].change, VG_TRACK_LOST);
    assert_int_equal(ch[0].id, 1);
    assert_float_equal(ch[0].box.x, 0.41f, 1e-6);
    assert_float_equal(ch[0].t, 8.6, 1e-9);
    assert_null(vg_tracker_get(t, 1));
    /* re-entry at the door: a new person, id 2 once confirmed */
    assert_int_equal(update1(t, 10.0, det(0.0f, 0.3f, 0.1f, 0.4f)), 0);
    assert_int_equal(update1(t, 10.5, det(0.02f, 0.3f, 0.1f, 0.4f)), 2);
    /* someone appearing far away is not this track, even within its age */
    assert_int_equal(update1(t, 11.0, det(0.8f, 0.3f, 0.1f, 0.4f)), 0);
    assert_int_equal(update1(t, 11.5, det(0.8f, 0.3f, 0.1f, 0.4f)), 3);
    assert_int_equal(live(t), 2);
    vg_tracker_free(t);
}

/* 10 samples a second for 2 s, then one every 2 s (the motion gate republishing) for
 * 6 s, then 2 a second: one id, and the velocity per second stays the same. */
static void test_fps_changes(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    double now = 0;
    int n = 0;
    while (now < 12.0) {
        int64_t id = update1(t, now, det(0.1f + 0.04f * (float)now, 0.3f, 0.1f, 0.4f));
        if (n++ > 0) assert_int_equal(id, 1);
        now += now < 2.0 ? 0.1 : now < 8.0 ? 2.0 : 0.5;
    }
    const vg_track_t *k = vg_tracker_get(t, 1);
    assert_non_null(k);
    assert_float_equal(k->vx, 0.04f, 0.004f);
    assert_float_equal(k->vy, 0.0f, 0.001f);
    vg_tracker_free(t);
}

/* A person walks in, seen by the detector and pose; falls sideways: the detector loses
 * them, pose sees a wide box on the floor. One track, upright then lying. */
static void test_fall_keeps_the_track(void **state)
{
    (void)state;
    vg_tracker_cfg_t cfg = {.view_aspect = 16.0f / 9.0f};
    vg_tracker_t *t = vg_tracker_new(&cfg);
    double now = 0;
    for (int i = 0; i < 6; i++, now += 0.5) {
        float x = 0.3f + 0.02f * (float)i;
        vg_track_obs_t obs[2] = {det(x, 0.2f, 0.09f, 0.6f),
                                 pose(x + 0.01f, 0.22f, 0.08f, 0.56f, VG_POSTURE_UPRIGHT, 0.8f)};
        int64_t ids[2];
        assert_int_equal(vg_tracker_update(t, now, obs, 2, ids), 0);
        assert_int_equal(ids[0], ids[1]); /* one person, not two */
        if (i > 0) assert_int_equal(ids[0], 1);
    }
    assert_int_equal(live(t), 1);
    /* mid-fall: the detector's box is short and wide, pose unsure of the posture */
    vg_track_obs_t mid[2] = {det(0.38f, 0.5f, 0.2f, 0.3f),
                             pose(0.38f, 0.48f, 0.22f, 0.32f, VG_POSTURE_UNKNOWN, 0)};
    int64_t ids[2];
    assert_int_equal(vg_tracker_update(t, now, mid, 2, ids), 0);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 1);
    /* on the floor: detector sees nothing; pose sees a wide box, lying; its centre is
     * far from the standing box's, its bottom near the standing feet */
    for (int i = 0; i < 10; i++) {
        now += 0.5;
        assert_int_equal(update1(t, now, pose(0.4f, 0.66f, 0.3f, 0.14f, VG_POSTURE_LYING, 0.6f)),
                         1);
    }
    assert_int_equal(live(t), 1);
    const vg_track_t *k = vg_tracker_get(t, 1);
    assert_int_equal(k->posture, VG_POSTURE_LYING);
    assert_int_equal(k->n_history, 2);
    assert_int_equal(k->history[0].posture, VG_POSTURE_UPRIGHT);
    assert_int_equal(k->history[1].posture, VG_POSTURE_LYING);
    /* two votes at 0.6 confidence: lying from the second sample on the floor */
    assert_float_equal(k->history[1].t, 4.0, 1e-9);
    vg_tracker_free(t);
}

static void test_births_need_two_sightings(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL); /* tentative_age_s 1.5 */
    assert_int_equal(update1(t, 0.0, det(0.5f, 0.5f, 0.1f, 0.3f)), 0);
    assert_int_equal(vg_tracker_update(t, 2.0, NULL, 0, NULL), 0);
    /* the flicker died unconfirmed: seeing it again starts over */
    assert_int_equal(update1(t, 2.5, det(0.5f, 0.5f, 0.1f, 0.3f)), 0);
    /* two observations of one sample (same time) do not confirm */
    assert_int_equal(update1(t, 2.5, det(0.5f, 0.5f, 0.1f, 0.3f)), 0);
    assert_int_equal(update1(t, 3.0, det(0.5f, 0.5f, 0.1f, 0.3f)), 1);
    vg_tracker_free(t);
}

static void test_posture_votes(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    vg_track_obs_t up = pose(0.4f, 0.2f, 0.1f, 0.5f, VG_POSTURE_UPRIGHT, 0.6f);
    vg_track_obs_t sit = pose(0.4f, 0.3f, 0.1f, 0.4f, VG_POSTURE_SITTING, 0.6f);
    update1(t, 0.0, up);
    update1(t, 0.5, up);
    update1(t, 1.0, sit); /* one unsure vote: still upright */
    assert_int_equal(vg_tracker_get(t, 1)->posture, VG_POSTURE_UPRIGHT);
    update1(t, 1.5, up);
    update1(t, 2.0, sit);
    assert_int_equal(vg_tracker_get(t, 1)->posture, VG_POSTURE_UPRIGHT);
    update1(t, 2.5, sit); /* the second vote in a row */
    assert_int_equal(vg_tracker_get(t, 1)->posture, VG_POSTURE_SITTING);
    vg_track_obs_t sure_up = up;
    sure_up.posture_confidence = 0.9f; /* a sure observation needs no second vote */
    update1(t, 3.0, sure_up);
    assert_int_equal(vg_tracker_get(t, 1)->posture, VG_POSTURE_UPRIGHT);
    /* detector observations carry no posture and change nothing */
    update1(t, 3.5, det(0.4f, 0.3f, 0.1f, 0.4f));
    update1(t, 4.0, det(0.4f, 0.3f, 0.1f, 0.4f));
    const vg_track_t *k = vg_tracker_get(t, 1);
    assert_int_equal(k->posture, VG_POSTURE_UPRIGHT);
    assert_int_equal(k->n_history, 3);
    vg_tracker_free(t);
}

/* The person detector's result and the pose estimator's for one sample arrive as two
 * updates with the same time: one track, counted once. */
static void test_split_updates_of_one_sample(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    for (int i = 0; i < 4; i++) {
        int64_t a = update1(t, i * 0.5, det(0.3f, 0.2f, 0.1f, 0.5f));
        int64_t b = update1(t, i * 0.5, pose(0.31f, 0.22f, 0.09f, 0.46f, VG_POSTURE_UPRIGHT, 0.7f));
        assert_int_equal(a, b);
    }
    assert_int_equal(live(t), 1);
    assert_int_equal(vg_tracker_get(t, 1)->hits, 4);
    vg_tracker_free(t);
}

static void test_limits_and_arguments(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    vg_track_obs_t o = det(0, 0, 0.1f, 0.1f);
    assert_int_equal(vg_tracker_update(NULL, 0, &o, 1, NULL), VG_EINVAL);
    assert_int_equal(vg_tracker_update(t, 0, NULL, 1, NULL), VG_EINVAL);
    assert_int_equal(vg_tracker_update(t, NAN, &o, 1, NULL), VG_EINVAL);
    /* more people than tracks: the extra ones get no id, nothing breaks */
    vg_track_obs_t many[40];
    int64_t ids[40];
    for (int i = 0; i < 40; i++)
        many[i] = det((float)(i % 8) / 8, (float)(i / 8) / 5, 0.05f, 0.1f);
    for (int s = 0; s < 3; s++)
        assert_int_equal(vg_tracker_update(t, s * 0.5, many, 40, ids), 0);
    int with_id = 0;
    for (int i = 0; i < 40; i++)
        with_id += ids[i] > 0;
    assert_int_equal(with_id, VG_TRACK_MAX);
    vg_tracker_free(t);
    /* boxes without a size are nobody */
    t = vg_tracker_new(NULL);
    vg_track_obs_t bad[3] = {det(0.1f, 0.1f, 0, 0.2f), det(NAN, 0.1f, 0.1f, 0.2f),
                             det(0.1f, 0.1f, 0.1f, INFINITY)};
    for (int s = 0; s < 3; s++)
        assert_int_equal(vg_tracker_update(t, s * 0.5, bad, 3, ids), 0);
    assert_int_equal(ids[0] + ids[1] + ids[2], 0);
    assert_int_equal(live(t), 0);
    vg_tracker_free(t);
    vg_tracker_free(NULL);
}

/* One frame's messages: a person detector's detections and a pose estimator's poses of
 * the same person get the same track_id; a tentative one gets null; posture strings and
 * scores are read; the track's JSON carries its history. */
static void test_annotate_json(void **state)
{
    (void)state;
    vg_tracker_t *t = vg_tracker_new(NULL);
    const char *frame =
        "[{\"worker\": \"people\", \"detections\": [{\"label\": \"person\", \"confidence\": 0.9,"
        "   \"box\": {\"x\": 0.30, \"y\": 0.20, \"w\": 0.10, \"h\": 0.50}}]},"
        " {\"worker\": \"motion\", \"motion_boxes\": [{\"x\": 0.3, \"y\": 0.2, \"w\": 0.1, \"h\": "
        "0.1}]},"
        " {\"worker\": \"pose\", \"poses\": [{\"score\": 0.8, \"posture\": \"sitting\","
        "   \"posture_confidence\": 0.9, \"box\": {\"x\": 0.31, \"y\": 0.22, \"w\": 0.09, \"h\": "
        "0.46}},"
        "  {\"score\": 0.5, \"box\": {\"x\": 0.8}}]}]";
    json_t *msgs[2];
    for (int i = 0; i < 2; i++) {
        msgs[i] = json_loads(frame, 0, NULL);
        assert_non_null(msgs[i]);
        assert_int_equal(vg_track_annotate(t, i * 0.5, msgs[i]), 0);
    }
    json_t *det0 = json_array_get(json_object_get(json_array_get(msgs[0], 0), "detections"), 0);
    assert_true(json_is_null(json_object_get(det0, "track_id"))); /* tentative */
    json_t *det = json_array_get(json_object_get(json_array_get(msgs[1], 0), "detections"), 0);
    json_t *poses = json_object_get(json_array_get(msgs[1], 2), "poses");
    assert_int_equal(json_integer_value(json_object_get(det, "track_id")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(poses, 0), "track_id")), 1);
    /* a pose without a whole box is no observation; motion boxes are not people */
    assert_null(json_object_get(json_array_get(poses, 1), "track_id"));
    assert_null(json_object_get(
        json_array_get(json_object_get(json_array_get(msgs[1], 1), "motion_boxes"), 0),
        "track_id"));
    const vg_track_t *k = vg_tracker_get(t, 1);
    assert_int_equal(k->posture, VG_POSTURE_SITTING);
    assert_float_equal(k->score, 0.9f, 1e-6);
    json_t *j = vg_track_json(k);
    assert_int_equal(json_integer_value(json_object_get(j, "track_id")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "posture")), "sitting");
    assert_int_equal(json_array_size(json_object_get(j, "history")), 1);
    assert_float_equal(json_number_value(json_object_get(j, "last_seen")), 0.5, 1e-9);
    json_decref(j);
    json_t *not_array = json_object();
    assert_int_equal(vg_track_annotate(t, 1.0, not_array), VG_EINVAL);
    json_decref(not_array);
    for (int i = 0; i < 2; i++)
        json_decref(msgs[i]);
    assert_int_equal(vg_posture_parse("lying"), VG_POSTURE_LYING);
    assert_int_equal(vg_posture_parse("LYING"), VG_POSTURE_UNKNOWN);
    assert_int_equal(vg_posture_parse(NULL), VG_POSTURE_UNKNOWN);
    vg_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walking_person_keeps_one_id),
        cmocka_unit_test(test_crossing_people),
        cmocka_unit_test(test_misses_and_reentry),
        cmocka_unit_test(test_fps_changes),
        cmocka_unit_test(test_fall_keeps_the_track),
        cmocka_unit_test(test_births_need_two_sightings),
        cmocka_unit_test(test_posture_votes),
        cmocka_unit_test(test_split_updates_of_one_sample),
        cmocka_unit_test(test_limits_and_arguments),
        cmocka_unit_test(test_annotate_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
