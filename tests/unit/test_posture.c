/* Unit tests for posture.c: each rule on synthetic skeletons (standing, walking, sitting
 * on a chair seen from the side and from the front, lying across the view, lying end-on,
 * bent over, weak keypoints with the box fallback), then MultiPose + posture on real
 * frames: fixtures/person.jpg (upright), the fall clips of fixtures/care (upright 1 s
 * before fall_start; lying 1 s after fall_end and just before down_until, where fall01's
 * half-sitting on the floor may be sitting) and walk.mp4 (never lying). Frames are
 * extracted with ffmpeg into a temporary directory; a missing tool, model or clip fails
 * the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/pose.h"
#include "vigil/posture.h"

/* ---- synthetic skeletons, in pixels of a 1000 x 1000 image ---- */

typedef struct {
    float x, y;
} px_t;

/* Nose, shoulders (l, r), hips (l, r), knees (l, r), ankles (l, r), all sure; arms and the
 * rest of the head unsure. */
static void skeleton(vg_keypoint_t *kp, px_t nose, px_t ls, px_t rs, px_t lh, px_t rh, px_t lk,
                     px_t rk, px_t la, px_t ra)
{
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++)
        kp[k] = (vg_keypoint_t){nose.x / 1000, nose.y / 1000, 0.1f};
    const struct {
        int k;
        px_t p;
    } sure[] = {{VG_KP_NOSE, nose},     {VG_KP_LEFT_SHOULDER, ls}, {VG_KP_RIGHT_SHOULDER, rs},
                {VG_KP_LEFT_HIP, lh},   {VG_KP_RIGHT_HIP, rh},     {VG_KP_LEFT_KNEE, lk},
                {VG_KP_RIGHT_KNEE, rk}, {VG_KP_LEFT_ANKLE, la},    {VG_KP_RIGHT_ANKLE, ra}};
    for (size_t i = 0; i < VG_ARRAY_LEN(sure); i++)
        kp[sure[i].k] = (vg_keypoint_t){sure[i].p.x / 1000, sure[i].p.y / 1000, 0.8f};
}

static vg_posture_result_t classify(const vg_keypoint_t *kp, vg_box_t box)
{
    return vg_posture_classify(kp, box, 1000, 1000);
}

static const vg_box_t any_box = {0.4f, 0.1f, 0.2f, 0.8f};

static void expect(vg_posture_result_t r, vg_posture_t p, const char *rule)
{
    if (r.posture != p || strcmp(r.rule, rule) != 0)
        fail_msg("got %s by %s, want %s by %s (torso %.0f body %.0f thigh %.2f ratio %.2f "
                 "legs %.0f)",
                 vg_posture_name(r.posture), r.rule, vg_posture_name(p), rule, r.torso_deg,
                 r.body_deg, r.thigh_drop, r.torso_ratio, r.leg_deg);
    assert_true(r.confidence > 0.3f && r.confidence <= 1.0f);
}

static void test_standing_and_walking(void **state)
{
    (void)state;
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
    /* frontal, shoulders 80 px apart, torso 130 px, thighs 110, shins 110 */
    skeleton(kp, (px_t){500, 150}, (px_t){460, 200}, (px_t){540, 200}, (px_t){470, 330},
             (px_t){530, 330}, (px_t){470, 440}, (px_t){530, 440}, (px_t){470, 550},
             (px_t){530, 550});
    expect(classify(kp, any_box), VG_POSTURE_UPRIGHT, "legs");
    /* walking, side view, leaning forward 20 degrees, one thigh swung 30 degrees */
    skeleton(kp, (px_t){560, 150}, (px_t){515, 200}, (px_t){505, 200}, (px_t){470, 322},
             (px_t){470, 322}, (px_t){525, 417}, (px_t){450, 430}, (px_t){520, 530},
             (px_t){400, 520});
    expect(classify(kp, any_box), VG_POSTURE_UPRIGHT, "legs");
}

static void test_sitting_on_a_chair(void **state)
{
    (void)state;
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
    /* side view: thighs level, shins down */
    skeleton(kp, (px_t){500, 150}, (px_t){495, 200}, (px_t){505, 200}, (px_t){500, 330},
             (px_t){500, 330}, (px_t){610, 335}, (px_t){610, 335}, (px_t){610, 445},
             (px_t){610, 445});
    expect(classify(kp, any_box), VG_POSTURE_SITTING, "thighs");
    /* front view: thighs point at the camera and look short */
    skeleton(kp, (px_t){500, 150}, (px_t){460, 200}, (px_t){540, 200}, (px_t){470, 330},
             (px_t){530, 330}, (px_t){465, 365}, (px_t){535, 365}, (px_t){465, 475},
             (px_t){535, 475});
    expect(classify(kp, any_box), VG_POSTURE_SITTING, "thighs");
    /* leaning back 40 degrees in an armchair is not lying */
    skeleton(kp, (px_t){420, 180}, (px_t){445, 230}, (px_t){455, 230}, (px_t){530, 330},
             (px_t){530, 330}, (px_t){640, 335}, (px_t){640, 335}, (px_t){640, 445},
             (px_t){640, 445});
    expect(classify(kp, any_box), VG_POSTURE_SITTING, "thighs");
}

static void test_lying(void **state)
{
    (void)state;
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
    vg_box_t wide = {0.2f, 0.6f, 0.6f, 0.15f};
    /* across the view */
    skeleton(kp, (px_t){200, 650}, (px_t){250, 630}, (px_t){250, 690}, (px_t){380, 640},
             (px_t){380, 690}, (px_t){490, 645}, (px_t){490, 690}, (px_t){600, 650},
             (px_t){600, 690});
    expect(classify(kp, wide), VG_POSTURE_LYING, "torso");
    /* head towards the camera: upside down in the image */
    skeleton(kp, (px_t){500, 700}, (px_t){460, 660}, (px_t){540, 660}, (px_t){470, 600},
             (px_t){530, 600}, (px_t){470, 560}, (px_t){530, 560}, (px_t){470, 520},
             (px_t){530, 520});
    expect(classify(kp, wide), VG_POSTURE_LYING, "torso");
    /* feet towards the camera: the torso seen end-on (30 px for 80 px of shoulders), the
     * legs running off to one side */
    skeleton(kp, (px_t){500, 560}, (px_t){460, 580}, (px_t){540, 580}, (px_t){470, 610},
             (px_t){530, 610}, (px_t){560, 660}, (px_t){600, 660}, (px_t){620, 700},
             (px_t){660, 700});
    expect(classify(kp, wide), VG_POSTURE_LYING, "end_on");
    /* a torso leaning 50 degrees with the whole body flat */
    skeleton(kp, (px_t){300, 580}, (px_t){330, 600}, (px_t){330, 620}, (px_t){420, 690},
             (px_t){420, 700}, (px_t){530, 700}, (px_t){530, 710}, (px_t){640, 705},
             (px_t){640, 715});
    expect(classify(kp, wide), VG_POSTURE_LYING, "body_axis");
}

static void test_bent_over_is_upright(void **state)
{
    (void)state;
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
    /* facing the camera, bent double to pick something up: torso end-on, legs straight */
    skeleton(kp, (px_t){500, 360}, (px_t){460, 320}, (px_t){540, 320}, (px_t){470, 340},
             (px_t){530, 340}, (px_t){470, 450}, (px_t){530, 450}, (px_t){470, 560},
             (px_t){530, 560});
    expect(classify(kp, any_box), VG_POSTURE_UPRIGHT, "bent_over");
}

static void test_box_fallback(void **state)
{
    (void)state;
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++)
        kp[k] = (vg_keypoint_t){0.5f, 0.5f, 0.1f}; /* nothing sure */
    vg_posture_result_t r = vg_posture_classify(kp, (vg_box_t){0.1f, 0.6f, 0.5f, 0.2f}, 1000, 500);
    assert_int_equal(r.posture, VG_POSTURE_LYING); /* 500 x 100 px */
    assert_true(r.confidence <= 0.5f);
    assert_string_equal(r.rule, "box");
    /* the same normalised box in a portrait view is 250 x 200 px: unknown */
    r = vg_posture_classify(kp, (vg_box_t){0.1f, 0.6f, 0.5f, 0.2f}, 500, 1000);
    assert_int_equal(r.posture, VG_POSTURE_UNKNOWN);
    r = vg_posture_classify(NULL, (vg_box_t){0.4f, 0.1f, 0.1f, 0.6f}, 1000, 1000);
    assert_int_equal(r.posture, VG_POSTURE_UPRIGHT);
    r = vg_posture_classify(NULL, (vg_box_t){0}, 1000, 1000);
    assert_int_equal(r.posture, VG_POSTURE_UNKNOWN);
    assert_string_equal(vg_posture_name(VG_POSTURE_LYING), "lying");
    assert_string_equal(vg_posture_name((vg_posture_t)42), "unknown");
}

/* ---- real frames ---- */

static vg_pose_model_t *model;
static char tmpdir[64];

static char *shared(const char *rel)
{
    const char *dir = getenv("VIGIL_SHARED_DIR");
    return vg_xasprintf("%s/%s", dir && *dir ? dir : VIGIL_SOURCE_DIR "/../shared", rel);
}

static int setup(void **state)
{
    (void)state;
    char *path = shared("models/pose/movenet-multipose-256.onnx");
    vg_pose_spec_t spec = {"multipose", path, 256};
    char err[256];
    int rc = vg_pose_new(&spec, &model, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "vg_pose_new: %s\n", err);
    free(path);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-posture-XXXXXX");
    return rc != 0 || !mkdtemp(tmpdir);
}

static int teardown(void **state)
{
    (void)state;
    vg_pose_free(model);
    char *cmd = vg_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc != 0;
}

/* The posture of the most confident person in an image file; fails if nobody is found. */
static vg_posture_result_t posture_of(const char *path)
{
    uint8_t *bgr = NULL;
    int w = 0, h = 0;
    assert_int_equal(vg_image_load(path, &bgr, &w, &h), 0);
    vg_pose_t p[VG_POSE_MAX_PEOPLE];
    size_t n = 0;
    assert_int_equal(
        vg_pose_run(model, bgr, w, h, 3 * w, NULL, 0.2f, p, VG_POSE_MAX_PEOPLE, &n, NULL), 0);
    free(bgr);
    if (n == 0) fail_msg("%s: nobody found", path);
    return vg_posture_classify(p[0].kp, p[0].box, w, h);
}

/* Extracts the frame at t seconds of a care clip to a PNG; returns its path (caller
 * frees). */
static char *frame_at(const char *clip, double t)
{
    char *rel = vg_xasprintf("fixtures/care/%s", clip);
    char *src = shared(rel);
    char *png = vg_xasprintf("%s/%s-%.2f.png", tmpdir, clip, t);
    char *cmd = vg_xasprintf("ffmpeg -v error -y -ss %.3f -i '%s' -frames:v 1 '%s'", t, src, png);
    int rc = system(cmd);
    if (rc != 0 || access(png, R_OK) != 0) fail_msg("ffmpeg failed (%d): %s", rc, cmd);
    free(cmd);
    free(src);
    free(rel);
    return png;
}

static void test_person_jpg_is_upright(void **state)
{
    (void)state;
    char *path = shared("fixtures/person.jpg");
    vg_posture_result_t r = posture_of(path);
    assert_int_equal(r.posture, VG_POSTURE_UPRIGHT);
    assert_true(r.confidence > 0.5f);
    free(path);
}

static const struct {
    const char *clip;
    double fall_start, fall_end, down_until; /* labels.json */
    bool sitting_ok;
} falls[] = {
    {"fall01.mp4", 4.3, 5.0, 6.9, true},  {"fall02.mp4", 4.1, 4.6, 8.8, false},
    {"fall03.mp4", 3.3, 3.6, 5.2, false}, {"fall04.mp4", 6.2, 6.8, 9.9, false},
    {"fall05.mp4", 5.3, 6.3, 8.6, false}, {"fall-actor.mp4", 2.8, 3.5, 5.2, false},
};

static void check_frame(const char *clip, double t, vg_posture_t want, bool sitting_ok)
{
    char *png = frame_at(clip, t);
    vg_posture_result_t r = posture_of(png);
    bool ok = r.posture == want || (sitting_ok && r.posture == VG_POSTURE_SITTING);
    if (!ok)
        fail_msg("%s at %.2f s: %s (%.2f, rule %s), want %s", clip, t, vg_posture_name(r.posture),
                 r.confidence, r.rule, vg_posture_name(want));
    unlink(png);
    free(png);
}

static void test_fall_clips(void **state)
{
    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(falls); i++) {
        check_frame(falls[i].clip, falls[i].fall_start - 1.0, VG_POSTURE_UPRIGHT, false);
        check_frame(falls[i].clip, falls[i].fall_end + 1.0, VG_POSTURE_LYING, falls[i].sitting_ok);
        check_frame(falls[i].clip, falls[i].down_until - 0.3, VG_POSTURE_LYING,
                    falls[i].sitting_ok);
    }
}

static void test_walk_is_never_lying(void **state)
{
    (void)state;
    for (double t = 0.0; t < 3.5; t += 0.5) {
        char *png = frame_at("walk.mp4", t);
        vg_posture_result_t r = posture_of(png);
        if (r.posture == VG_POSTURE_LYING) fail_msg("walk.mp4 at %.2f s: lying (%s)", t, r.rule);
        unlink(png);
        free(png);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standing_and_walking),
        cmocka_unit_test(test_sitting_on_a_chair),
        cmocka_unit_test(test_lying),
        cmocka_unit_test(test_bent_over_is_upright),
        cmocka_unit_test(test_box_fallback),
        cmocka_unit_test(test_person_jpg_is_upright),
        cmocka_unit_test(test_fall_clips),
        cmocka_unit_test(test_walk_is_never_lying),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
