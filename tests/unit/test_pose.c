/* Unit tests for pose.cpp: the real MoveNet models (Lightning on a crop, MultiPose on the
 * whole photo) on fixtures/person.jpg against the Yolo-Fastest person box, the letterbox
 * and its inverse (the same picture padded differently gives the same keypoints), the
 * crop box, and loading errors. Models and fixtures come from $VIGIL_SHARED_DIR (set by
 * ctest); a missing file fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/detector.h"
#include "vigil/pose.h"

#define SURE 0.3f /* keypoints at least this sure are checked */

typedef struct {
    uint8_t *bgr;
    int w, h;
} image_t;

static char *shared(const char *rel)
{
    const char *dir = getenv("VIGIL_SHARED_DIR");
    return vg_xasprintf("%s/%s", dir && *dir ? dir : VIGIL_SOURCE_DIR "/../shared", rel);
}

static image_t load_person(void)
{
    char *path = shared("fixtures/person.jpg");
    image_t im = {0};
    assert_int_equal(vg_image_load(path, &im.bgr, &im.w, &im.h), 0);
    free(path);
    return im;
}

static vg_pose_model_t *load_model(const char *file, int input_size)
{
    char *rel = vg_xasprintf("models/pose/%s", file);
    char *path = shared(rel);
    char err[256];
    vg_pose_spec_t spec = {"test", path, input_size};
    vg_pose_model_t *m = NULL;
    int rc = vg_pose_new(&spec, &m, err, sizeof(err));
    if (rc != 0) fail_msg("vg_pose_new %s: %d %s", path, rc, err);
    free(path);
    free(rel);
    return m;
}

/* The best person box Yolo-Fastest (body) finds in the photo. */
static vg_box_t person_box(image_t im)
{
    char *cfg = shared("models/yolo-fastest-1.1_body.cfg");
    char *weights = shared("models/yolo-fastest-1.1_body.weights");
    vg_detector_spec_t spec = {"body", "darknet", cfg, weights, NULL, 320};
    vg_detector_t *d = NULL;
    char err[256];
    int rc = vg_detector_new(&spec, &d, err, sizeof(err));
    if (rc != 0) fail_msg("vg_detector_new: %s", err);
    vg_detection_t det[8];
    size_t n = 0;
    assert_int_equal(vg_detector_run(d, im.bgr, im.w, im.h, 3 * im.w, 0.5f, 0, det, 8, &n, NULL),
                     0);
    assert_true(n >= 1);
    vg_detector_free(d);
    free(cfg);
    free(weights);
    return (vg_box_t){det[0].x, det[0].y, det[0].w, det[0].h};
}

static float mid_y(const vg_pose_t *p, int a, int b)
{
    return (p->kp[a].y + p->kp[b].y) / 2;
}

/* Every sure keypoint inside the box (2 % slack), most keypoints sure, and the body in
 * order from top to bottom: nose, hips, knees, ankles. */
static void check_standing(const vg_pose_t *p, vg_box_t box)
{
    int sure = 0;
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++) {
        const vg_keypoint_t *kp = &p->kp[k];
        if (kp->score < SURE) continue;
        sure++;
        if (kp->x < box.x - 0.02f || kp->x > box.x + box.w + 0.02f || kp->y < box.y - 0.02f ||
            kp->y > box.y + box.h + 0.02f)
            fail_msg("keypoint %d (%.3f, %.3f) outside box %.3f %.3f %.3f %.3f", k, kp->x, kp->y,
                     box.x, box.y, box.w, box.h);
    }
    assert_true(sure >= 12);
    float nose = p->kp[VG_KP_NOSE].y, hips = mid_y(p, VG_KP_LEFT_HIP, VG_KP_RIGHT_HIP);
    float knees = mid_y(p, VG_KP_LEFT_KNEE, VG_KP_RIGHT_KNEE);
    float ankles = mid_y(p, VG_KP_LEFT_ANKLE, VG_KP_RIGHT_ANKLE);
    assert_true(nose < hips);
    assert_true(hips < knees);
    assert_true(knees < ankles);
    /* the standing body spans most of the box's height */
    assert_true(ankles - nose > 0.7f * box.h);
}

static float box_iou(vg_box_t a, vg_box_t b)
{
    float ix = fminf(a.x + a.w, b.x + b.w) - fmaxf(a.x, b.x);
    float iy = fminf(a.y + a.h, b.y + b.h) - fmaxf(a.y, b.y);
    if (ix <= 0 || iy <= 0) return 0;
    return ix * iy / (a.w * a.h + b.w * b.h - ix * iy);
}

static void test_multipose_finds_the_person(void **state)
{
    (void)state;
    image_t im = load_person();
    vg_box_t box = person_box(im);
    vg_pose_model_t *m = load_model("movenet-multipose-256.onnx", 256);
    assert_int_equal(vg_pose_kind(m), VG_POSE_MULTI);
    assert_int_equal(vg_pose_input_size(m), 256);
    vg_pose_t p[VG_POSE_MAX_PEOPLE];
    size_t n = 0;
    double ms = -1;
    assert_int_equal(vg_pose_run(m, im.bgr, im.w, im.h, 3 * im.w, NULL, 0.2f, p, 6, &n, &ms), 0);
    assert_true(ms >= 0);
    assert_int_equal(n, 1); /* one person in the photo (the dog and the horse are not) */
    assert_true(p[0].score > 0.5f);
    check_standing(&p[0], box);
    assert_true(box_iou(p[0].box, box) > 0.6f);
    vg_pose_free(m);
    free(im.bgr);
}

static void test_lightning_on_a_crop(void **state)
{
    (void)state;
    image_t im = load_person();
    vg_box_t box = person_box(im);
    vg_pose_model_t *m = load_model("movenet-lightning-192.onnx", 192);
    assert_int_equal(vg_pose_kind(m), VG_POSE_SINGLE);
    vg_box_t crop = vg_pose_crop_box(box, im.w, im.h);
    vg_pose_t p;
    size_t n = 0;
    assert_int_equal(vg_pose_run(m, im.bgr, im.w, im.h, 3 * im.w, &crop, 0.0f, &p, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(p.score > 0.4f);
    check_standing(&p, box);
    assert_true(box_iou(p.box, box) > 0.6f);
    vg_pose_free(m);
    free(im.bgr);
}

/* A copy of the photo on a larger black canvas at (ox, oy). */
static image_t pad_image(image_t im, int w, int h, int ox, int oy)
{
    image_t out = {vg_xcalloc((size_t)w * h, 3), w, h};
    for (int y = 0; y < im.h; y++)
        memcpy(out.bgr + ((size_t)(y + oy) * w + ox) * 3, im.bgr + (size_t)y * im.w * 3,
               (size_t)im.w * 3);
    return out;
}

/* Letterboxing the photo's top 400 rows (640x400) scales by 0.4 and centres it in the
 * 256x256 input with 48 rows above, that is 120 rows of the photo: the same rows already
 * padded that way give the network the same input, so the keypoints must map to the same
 * places. Padded elsewhere (all at the bottom), they stay within 2 % (3 input pixels). */
static void test_letterbox_inverse(void **state)
{
    (void)state;
    image_t im = load_person();
    im.h = 400; /* the person's feet are at about row 360 */
    vg_pose_model_t *m = load_model("movenet-multipose-256.onnx", 256);
    vg_pose_t a, b, c;
    size_t n = 0;
    assert_int_equal(vg_pose_run(m, im.bgr, im.w, im.h, 3 * im.w, NULL, 0.2f, &a, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    int top = 120;
    image_t centred = pad_image(im, im.w, im.w, 0, top);
    image_t low = pad_image(im, im.w, im.w, 0, 0);
    assert_int_equal(vg_pose_run(m, centred.bgr, im.w, im.w, 3 * im.w, NULL, 0.2f, &b, 1, &n, NULL),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(vg_pose_run(m, low.bgr, im.w, im.w, 3 * im.w, NULL, 0.2f, &c, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++) {
        float by = (b.kp[k].y * im.w - (float)top) / (float)im.h;
        float cy = c.kp[k].y * im.w / (float)im.h;
        assert_float_equal(a.kp[k].x, b.kp[k].x, 1e-4);
        assert_float_equal(a.kp[k].y, by, 1e-4);
        assert_float_equal(a.kp[k].score, b.kp[k].score, 1e-4);
        if (a.kp[k].score < SURE) continue;
        assert_float_equal(a.kp[k].x, c.kp[k].x, 0.02);
        assert_float_equal(a.kp[k].y, cy, 0.02);
    }
    /* a region: the right half of the centred canvas holds no person */
    vg_box_t right = {0.5f, 0.0f, 0.5f, 1.0f};
    assert_int_equal(
        vg_pose_run(m, centred.bgr, im.w, im.w, 3 * im.w, &right, 0.2f, &b, 1, &n, NULL), 0);
    assert_int_equal(n, 0);
    /* the left half does, at the same place of the canvas */
    vg_box_t left = {0.0f, 0.0f, 0.5f, 1.0f};
    assert_int_equal(
        vg_pose_run(m, centred.bgr, im.w, im.w, 3 * im.w, &left, 0.2f, &c, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_float_equal(c.kp[VG_KP_NOSE].x, a.kp[VG_KP_NOSE].x, 0.01);
    free(centred.bgr);
    free(low.bgr);
    vg_pose_free(m);
    free(im.bgr);
}

static void test_crop_box(void **state)
{
    (void)state;
    /* a 100x200 px person in a 1000x500 image: a 250 px square around its centre */
    vg_box_t c = vg_pose_crop_box((vg_box_t){0.4f, 0.2f, 0.1f, 0.4f}, 1000, 500);
    assert_float_equal(c.w * 1000, 250, 0.01);
    assert_float_equal(c.h * 500, 250, 0.01);
    assert_float_equal((c.x + c.w / 2) * 1000, 450, 0.01);
    assert_float_equal((c.y + c.h / 2) * 500, 200, 0.01);
    /* at the left edge: shifted inside */
    c = vg_pose_crop_box((vg_box_t){0.0f, 0.2f, 0.1f, 0.4f}, 1000, 500);
    assert_float_equal(c.x, 0, 1e-6);
    assert_float_equal(c.w * 1000, 250, 0.01);
    /* taller than the image: clipped to its height */
    c = vg_pose_crop_box((vg_box_t){0.4f, 0.0f, 0.1f, 1.0f}, 1000, 500);
    assert_float_equal(c.y, 0, 1e-6);
    assert_float_equal(c.h, 1, 1e-6);
    assert_float_equal(c.w * 1000, 625, 0.01);
}

static void test_load_errors(void **state)
{
    (void)state;
    char err[256];
    vg_pose_model_t *m = NULL;
    vg_pose_spec_t missing = {"x", "/nonexistent/movenet.onnx", 192};
    assert_int_equal(vg_pose_new(&missing, &m, err, sizeof(err)), VG_ENOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/movenet.onnx"));
    char *cfg = shared("models/yolo-fastest-1.1_body.cfg");
    vg_pose_spec_t not_onnx = {"x", cfg, 192};
    assert_int_equal(vg_pose_new(&not_onnx, &m, err, sizeof(err)), VG_EIO);
    assert_non_null(strstr(err, cfg));
    free(cfg);
    vg_pose_spec_t bad_size = {"x", "/nonexistent", 100};
    assert_int_equal(vg_pose_new(&bad_size, &m, err, sizeof(err)), VG_EINVAL);
    assert_non_null(strstr(err, "input_size"));
    assert_null(m);
    vg_pose_free(NULL);
}

static void test_run_rejects_bad_arguments(void **state)
{
    (void)state;
    vg_pose_model_t *m = load_model("movenet-lightning-192.onnx", 0);
    assert_int_equal(vg_pose_input_size(m), 192); /* 0: the model's own size */
    vg_pose_model_t *multi = load_model("movenet-multipose-256.onnx", 0);
    assert_int_equal(vg_pose_kind(multi), VG_POSE_MULTI);
    assert_int_equal(vg_pose_input_size(multi), 256);
    vg_pose_free(multi);
    uint8_t px[3 * 4 * 4] = {0};
    vg_pose_t p;
    size_t n = 7;
    assert_int_equal(vg_pose_run(m, NULL, 4, 4, 12, NULL, 0, &p, 1, &n, NULL), VG_EINVAL);
    assert_int_equal(vg_pose_run(m, px, 4, 4, 11, NULL, 0, &p, 1, &n, NULL), VG_EINVAL);
    vg_box_t empty = {0.5f, 0.5f, 0, 0.1f};
    assert_int_equal(vg_pose_run(m, px, 4, 4, 12, &empty, 0, &p, 1, &n, NULL), VG_EINVAL);
    /* a tiny blank image runs and gives one unsure pose */
    assert_int_equal(vg_pose_run(m, px, 4, 4, 12, NULL, 0, &p, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(p.score < 0.3f);
    vg_pose_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipose_finds_the_person),
        cmocka_unit_test(test_lightning_on_a_crop),
        cmocka_unit_test(test_letterbox_inverse),
        cmocka_unit_test(test_crop_box),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_run_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
