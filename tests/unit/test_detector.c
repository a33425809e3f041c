/* Unit tests for detector.cpp: the real Yolo-Fastest models and the HOG detector on
 * the fixture photos, model loading errors, exact decoding of tiny ONNX models made by
 * scripts/make-onnx-test-models.py, motion, optical flow and snapshot JPEGs.
 * Models and fixtures come from $VIGIL_SHARED_DIR (set by ctest). */
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
#include "vigil/detector.h"

#include "require.h"

#define MAX_DET 64

static char tmpdir[256];

static const char *dir_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Path under the shared dir (models/, fixtures/); caller frees. */
static char *shared(const char *rel)
{
    return vg_xasprintf("%s/%s", dir_env("VIGIL_SHARED_DIR", VIGIL_SOURCE_DIR "/../shared"), rel);
}

static char *tmp_path(const char *name)
{
    return vg_xasprintf("%s/%s", tmpdir, name);
}

typedef struct {
    uint8_t *bgr;
    int w, h;
} image_t;

static image_t load_fixture(const char *name)
{
    char *rel = vg_xasprintf("fixtures/%s", name);
    char *path = shared(rel);
    image_t im = {0};
    assert_int_equal(vg_image_load(path, &im.bgr, &im.w, &im.h), 0);
    free(path);
    free(rel);
    return im;
}

/* Area-average resize of packed BGR, like the capture's scaler would deliver. */
static image_t resize_image(image_t src, int w, int h)
{
    image_t out = {vg_xmalloc((size_t)w * h * 3), w, h};
    for (int y = 0; y < h; y++) {
        int y0 = y * src.h / h, y1 = (y + 1) * src.h / h;
        for (int x = 0; x < w; x++) {
            int x0 = x * src.w / w, x1 = (x + 1) * src.w / w;
            for (int c = 0; c < 3; c++) {
                long sum = 0, n = 0;
                for (int sy = y0; sy < (y1 > y0 ? y1 : y0 + 1); sy++)
                    for (int sx = x0; sx < (x1 > x0 ? x1 : x0 + 1); sx++, n++)
                        sum += src.bgr[((size_t)sy * src.w + sx) * 3 + c];
                out.bgr[((size_t)y * w + x) * 3 + c] = (uint8_t)(sum / n);
            }
        }
    }
    return out;
}

static vg_detector_t *open_model(const char *format, const char *cfg, const char *weights,
                                 const char *labels)
{
    char *c = cfg ? shared(cfg) : NULL, *w = weights ? shared(weights) : NULL;
    char *l = labels ? shared(labels) : NULL;
    vg_detector_spec_t spec = {"test", format, c, w, l, 320};
    vg_detector_t *d = NULL;
    char err[512];
    int rc = vg_detector_new(&spec, &d, err, sizeof(err));
    if (rc != 0) print_error("vg_detector_new: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(d);
    free(c);
    free(w);
    free(l);
    return d;
}

static size_t detect(vg_detector_t *d, image_t im, float thr, int cls, vg_detection_t *out)
{
    size_t n = 99;
    double ms = -1;
    assert_int_equal(
        vg_detector_run(d, im.bgr, im.w, im.h, im.w * 3, thr, cls, out, MAX_DET, &n, &ms), 0);
    assert_true(n <= MAX_DET);
    assert_true(ms >= 0);
    return n;
}

/* The standing person of person.jpg: left of centre, most of the height. */
static void expect_person(const vg_detection_t *det, size_t n, const char *label, float min_h)
{
    const vg_detection_t *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (det[i].class_id == 0 && (!best || det[i].confidence > best->confidence)) best = &det[i];
    assert_non_null(best);
    assert_string_equal(best->label, label);
    assert_true(best->confidence > 0.5f && best->confidence <= 1.0f);
    float cx = best->x + best->w / 2, cy = best->y + best->h / 2;
    assert_true(cx > 0.2f && cx < 0.5f);
    assert_true(cy > 0.3f && cy < 0.75f);
    assert_true(best->h > min_h && best->h <= 1.0f);
    assert_true(best->w > 0.05f && best->w < 0.4f);
    assert_true(best->x >= 0 && best->y >= 0 && best->x + best->w <= 1.0001f &&
                best->y + best->h <= 1.0001f);
}

static void test_body_person(void **state)
{
    (void)state;
    vg_detector_t *d = open_model("darknet", "models/yolo-fastest-1.1_body.cfg",
                                  "models/yolo-fastest-1.1_body.weights", NULL);
    assert_int_equal(vg_detector_num_classes(d), 1);
    assert_string_equal(vg_detector_label(d, 0), "person");
    assert_null(vg_detector_label(d, 1));
    vg_detection_t det[MAX_DET];
    image_t im = load_fixture("person.jpg");
    expect_person(det, detect(d, im, 0.5f, -1, det), "person", 0.4f);
    image_t sq = resize_image(im, 320, 320); /* as frames arrive: model size, stretched */
    expect_person(det, detect(d, sq, 0.5f, 0, det), "person", 0.4f);
    free(sq.bgr);
    free(im.bgr);
    vg_detector_free(d);
}

static void test_body_no_person(void **state)
{
    (void)state;
    vg_detector_t *d = open_model("darknet", "models/yolo-fastest-1.1_body.cfg",
                                  "models/yolo-fastest-1.1_body.weights", NULL);
    const char *names[] = {"dog.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg"};
    vg_detection_t det[MAX_DET];
    for (size_t i = 0; i < VG_ARRAY_LEN(names); i++) {
        image_t im = load_fixture(names[i]);
        size_t n = detect(d, im, 0.5f, -1, det);
        if (n) print_error("%s: %s %.2f\n", names[i], det[0].label, det[0].confidence);
        assert_int_equal(n, 0);
        image_t sq = resize_image(im, 320, 320);
        assert_int_equal(detect(d, sq, 0.5f, 0, det), 0);
        free(sq.bgr);
        free(im.bgr);
    }
    vg_detector_free(d);
}

static void test_body_labels_file(void **state)
{
    (void)state;
    vg_detector_t *d = open_model("darknet", "models/yolo-fastest-1.1_body.cfg",
                                  "models/yolo-fastest-1.1_body.weights", "models/body.names");
    assert_string_equal(vg_detector_label(d, 0), "body"); /* the file wins */
    assert_int_equal(vg_detector_class_id(d, "body"), 0);
    assert_int_equal(vg_detector_class_id(d, "person"), VG_ENOTFOUND);
    vg_detector_free(d);
}

static void coco_person(const char *cfg, const char *weights)
{
    vg_detector_t *d = open_model("darknet", cfg, weights, "models/coco.names");
    assert_int_equal(vg_detector_num_classes(d), 80);
    assert_int_equal(vg_detector_class_id(d, "person"), 0);
    assert_int_equal(vg_detector_class_id(d, "dog"), 16);
    vg_detection_t det[MAX_DET];
    image_t im = load_fixture("person.jpg");
    size_t n = detect(d, im, 0.5f, 0, det);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(det[i].class_id, 0);
    expect_person(det, n, "person", 0.4f);
    n = detect(d, im, 0.5f, -1, det); /* all classes: the dog is there too */
    int dogs = 0;
    for (size_t i = 0; i < n; i++) {
        dogs += det[i].class_id == 16;
        assert_true(i == 0 || det[i].confidence <= det[i - 1].confidence);
    }
    assert_true(dogs >= 1);
    expect_person(det, n, "person", 0.4f);
    free(im.bgr);
    vg_detector_free(d);
}

static void test_coco_person(void **state)
{
    (void)state;
    coco_person("models/yolo-fastest-1.1.cfg", "models/yolo-fastest-1.1.weights");
}

static void test_xl_person(void **state)
{
    (void)state;
    coco_person("models/yolo-fastest-1.1-xl.cfg", "models/yolo-fastest-1.1-xl.weights");
}

static void test_hog_person(void **state)
{
    (void)state;
    vg_detector_t *d = open_model("builtin-hog", NULL, NULL, NULL);
    assert_string_equal(vg_detector_label(d, 0), "person");
    vg_detection_t det[MAX_DET];
    image_t im = load_fixture("person.jpg");
    image_t small = resize_image(im, 320, im.h * 320 / im.w);
    expect_person(det, detect(d, small, 0.5f, 0, det), "person", 0.5f);
    assert_int_equal(detect(d, small, 0.5f, 3, det), 0); /* HOG has class 0 only */
    free(small.bgr);
    free(im.bgr);
    vg_detector_free(d);
}

/* ---- loading errors ---- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void copy_prefix(const char *from, const char *to, size_t len)
{
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    char *buf = vg_xmalloc(len);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    write_file(to, buf, len);
    free(buf);
}

/* Loading must fail with `code` and a message naming `names`. */
static void expect_load_error(const char *format, const char *cfg, const char *weights,
                              const char *labels, int code, const char *names)
{
    vg_detector_spec_t spec = {"broken", format, cfg, weights, labels, 320};
    vg_detector_t *d = (vg_detector_t *)&spec; /* must come back untouched */
    char err[512] = "x";
    int rc = vg_detector_new(&spec, &d, err, sizeof(err));
    print_message("      %s -> %d: %s\n", names, rc, err);
    assert_int_equal(rc, code);
    assert_ptr_equal(d, (vg_detector_t *)&spec);
    assert_non_null(strstr(err, names));
}

static void test_load_errors(void **state)
{
    (void)state;
    char *cfg = shared("models/yolo-fastest-1.1_body.cfg");
    char *weights = shared("models/yolo-fastest-1.1_body.weights");
    char *names = shared("models/body.names");
    char *missing = tmp_path("missing.weights");
    char *trunc = tmp_path("truncated.weights");
    char *nocfg = tmp_path("missing.cfg");
    copy_prefix(weights, trunc, 1000);
    expect_load_error("darknet", cfg, missing, NULL, VG_ENOTFOUND, missing);
    expect_load_error("darknet", cfg, trunc, NULL, VG_EIO, trunc);
    expect_load_error("darknet", cfg, cfg, NULL, VG_EIO, cfg); /* a text file as weights */
    expect_load_error("darknet", nocfg, weights, NULL, VG_ENOTFOUND, nocfg);
    expect_load_error("darknet", names, weights, NULL, VG_EIO, names);          /* not a cfg */
    expect_load_error("darknet", cfg, weights, missing, VG_ENOTFOUND, missing); /* labels */
    expect_load_error("onnx", NULL, cfg, NULL, VG_EIO, cfg);
    expect_load_error("onnx", NULL, trunc, NULL, VG_EIO, trunc);
    expect_load_error("tflite", cfg, weights, NULL, VG_EUNSUPPORTED, "tflite");
    char err[64];
    vg_detector_t *d = NULL;
    assert_int_equal(vg_detector_new(NULL, &d, err, sizeof(err)), VG_EINVAL);
    vg_detector_free(NULL);
    free(cfg);
    free(weights);
    free(names);
    free(missing);
    free(trunc);
    free(nocfg);
}

/* ---- ONNX decoding ---- */

#define ONNX_TOOLS "/usr/bin/python3 importing onnx and numpy (Debian python3-onnx python3-numpy)"

static bool have_onnx_models(void)
{
    static int made = -1;
    if (made < 0) {
        if (system("/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null") != 0) {
            made = 0;
        } else {
            char *cmd = vg_xasprintf("/usr/bin/python3 '%s/scripts/make-onnx-test-models.py' '%s'",
                                     dir_env("VIGIL_SOURCE_DIR", VIGIL_SOURCE_DIR), tmpdir);
            assert_int_equal(system(cmd), 0);
            free(cmd);
            made = 1;
        }
    }
    return made == 1;
}

static vg_detector_t *open_onnx(const char *name, const char *labels)
{
    char *path = tmp_path(name);
    char *lpath = labels ? tmp_path("test.names") : NULL;
    if (labels) write_file(lpath, labels, strlen(labels));
    vg_detector_spec_t spec = {name, "onnx", NULL, path, lpath, 64};
    vg_detector_t *d = NULL;
    char err[512];
    int rc = vg_detector_new(&spec, &d, err, sizeof(err));
    if (rc != 0) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    free(path);
    free(lpath);
    return d;
}

static void expect_box(const vg_detection_t *d, int cls, const char *label, float conf, float x,
                       float y, float w, float h)
{
    assert_int_equal(d->class_id, cls);
    assert_string_equal(d->label, label);
    assert_float_equal(d->confidence, conf, 1e-5);
    assert_float_equal(d->x, x, 1e-5);
    assert_float_equal(d->y, y, 1e-5);
    assert_float_equal(d->w, w, 1e-5);
    assert_float_equal(d->h, h, 1e-5);
}

static void test_onnx_yolov5(void **state)
{
    (void)state;
    VG_TEST_REQUIRE(have_onnx_models(), ONNX_TOOLS);
    vg_detector_t *d = open_onnx("yolov5-test.onnx", "patient\ncart\n");
    assert_int_equal(vg_detector_num_classes(d), 2);
    assert_int_equal(vg_detector_input_size(d), 64);
    image_t im = load_fixture("dog.jpg"); /* any picture: the output is constant */
    vg_detection_t det[MAX_DET];
    assert_int_equal(detect(d, im, 0.5f, -1, det), 3);
    expect_box(&det[0], 0, "patient", 0.81f, 0.125f, 0.125f, 0.25f, 0.25f);
    expect_box(&det[1], 1, "cart", 0.63f, 0.125f, 0.125f, 0.25f, 0.25f);
    expect_box(&det[2], 0, "patient", 0.55f, 0.8125f, 0.0625f, 0.1875f, 0.125f);
    assert_int_equal(detect(d, im, 0.5f, 1, det), 1);
    expect_box(&det[0], 1, "cart", 0.63f, 0.125f, 0.125f, 0.25f, 0.25f);
    assert_int_equal(detect(d, im, 0.25f, 0, det), 3); /* the 0.30 box now passes */
    expect_box(&det[2], 0, "patient", 0.30f, 0.6875f, 0.6875f, 0.125f, 0.125f);
    size_t n = 9;
    assert_int_equal(vg_detector_run(d, im.bgr, im.w, im.h, im.w * 3, 0.5f, -1, det, 1, &n, NULL),
                     0);
    assert_int_equal(n, 1); /* max_out caps, best first */
    assert_float_equal(det[0].confidence, 0.81f, 1e-5);
    free(im.bgr);
    vg_detector_free(d);
}

static void test_onnx_yolov8(void **state)
{
    (void)state;
    VG_TEST_REQUIRE(have_onnx_models(), ONNX_TOOLS);
    vg_detector_t *d = open_onnx("yolov8-test.onnx", NULL);
    assert_int_equal(vg_detector_num_classes(d), 2);
    assert_string_equal(vg_detector_label(d, 1), "class1");
    image_t im = load_fixture("eagle.jpg");
    image_t sq = resize_image(im, 64, 64); /* already at model size: no resize */
    vg_detection_t det[MAX_DET];
    for (int pass = 0; pass < 2; pass++) {
        image_t in = pass ? sq : im;
        assert_int_equal(detect(d, in, 0.5f, -1, det), 2);
        expect_box(&det[0], 1, "class1", 0.9f, 0.59375f, 0.59375f, 0.3125f, 0.3125f);
        expect_box(&det[1], 0, "class0", 0.8f, 0.125f, 0.125f, 0.25f, 0.25f);
    }
    assert_int_equal(detect(d, im, 0.95f, -1, det), 0);
    free(sq.bgr);
    free(im.bgr);
    vg_detector_free(d);
}

/* ---- motion, flow, snapshots ---- */

static image_t solid(int w, int h, uint8_t v)
{
    image_t im = {vg_xmalloc((size_t)w * h * 3), w, h};
    memset(im.bgr, v, (size_t)w * h * 3);
    return im;
}

static void fill_rect(image_t im, int x, int y, int w, int h, uint8_t v)
{
    for (int r = y; r < y + h; r++)
        memset(im.bgr + ((size_t)r * im.w + x) * 3, v, (size_t)w * 3);
}

static void test_motion(void **state)
{
    (void)state;
    vg_motion_t *m = vg_motion_new();
    image_t a = solid(320, 240, 30), b = solid(320, 240, 30);
    fill_rect(a, 40, 40, 40, 40, 255);
    fill_rect(b, 200, 120, 40, 40, 255); /* the square moved */
    vg_box_t boxes[8];
    size_t n = 9;
    float score = -1;
    assert_int_equal(vg_motion_run(m, a.bgr, a.w, a.h, a.w * 3, &score, boxes, 8, &n), 0);
    assert_true(score == 0.0f && n == 0); /* first frame */
    assert_int_equal(vg_motion_run(m, a.bgr, a.w, a.h, a.w * 3, &score, boxes, 8, &n), 0);
    assert_true(score == 0.0f && n == 0); /* identical frame */
    assert_int_equal(vg_motion_run(m, b.bgr, b.w, b.h, b.w * 3, &score, boxes, 8, &n), 0);
    print_message("      motion score %.4f, %zu boxes\n", score, n);
    assert_true(score > 0.01f && score < 0.2f);
    assert_int_equal(n, 2); /* where it left and where it arrived */
    int found_new = 0;
    for (size_t i = 0; i < n; i++) {
        float cx = boxes[i].x + boxes[i].w / 2, cy = boxes[i].y + boxes[i].h / 2;
        found_new |= fabsf(cx - 220.0f / 320) < 0.03f && fabsf(cy - 140.0f / 240) < 0.04f &&
                     boxes[i].w < 0.25f;
    }
    assert_true(found_new);
    assert_int_equal(vg_motion_run(m, b.bgr, b.w, b.h, b.w * 3, &score, NULL, 0, &n), 0);
    assert_true(score == 0.0f && n == 0);
    assert_int_equal(vg_motion_run(m, NULL, b.w, b.h, b.w * 3, &score, NULL, 0, &n), VG_EINVAL);
    free(a.bgr);
    free(b.bgr);
    vg_motion_free(m);
    vg_motion_free(NULL);
}

/* A smooth random texture, shifted by (dx, dy) pixels. */
static image_t texture(int w, int h, int dx, int dy)
{
    image_t im = solid(w, h, 0);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double u = x - dx, v = y - dy;
            double t = 128 + 50 * sin(u * 0.21) * cos(v * 0.17) + 40 * sin((u + 2 * v) * 0.09) +
                       30 * cos((u - v) * 0.31);
            memset(im.bgr + ((size_t)y * w + x) * 3, (uint8_t)t, 3);
        }
    }
    return im;
}

static void flow_between(image_t a, image_t b, float *mag, float *dir)
{
    vg_flow_t *f = vg_flow_new();
    assert_int_equal(vg_flow_run(f, a.bgr, a.w, a.h, a.w * 3, mag, dir), 0);
    assert_true(*mag == 0.0f && *dir == 0.0f);
    assert_int_equal(vg_flow_run(f, b.bgr, b.w, b.h, b.w * 3, mag, dir), 0);
    vg_flow_free(f);
}

static void test_flow(void **state)
{
    (void)state;
    image_t a = texture(160, 120, 0, 0), right = texture(160, 120, 3, 0);
    image_t down = texture(160, 120, 0, 3), up_left = texture(160, 120, -2, -2);
    float mag, dir;
    flow_between(a, right, &mag, &dir);
    print_message("      right: %.2f px at %.1f deg\n", mag, dir);
    assert_true(mag > 1.5f && mag < 4.5f);
    assert_true(dir < 20.0f || dir > 340.0f);
    flow_between(a, down, &mag, &dir);
    print_message("      down: %.2f px at %.1f deg\n", mag, dir);
    assert_true(mag > 1.5f && fabsf(dir - 90.0f) < 20.0f);
    flow_between(a, up_left, &mag, &dir);
    print_message("      up-left: %.2f px at %.1f deg\n", mag, dir);
    assert_true(mag > 1.5f && fabsf(dir - 225.0f) < 20.0f);
    flow_between(a, a, &mag, &dir);
    assert_true(mag < 0.1f);
    free(a.bgr);
    free(right.bgr);
    free(down.bgr);
    free(up_left.bgr);
    vg_flow_free(NULL);
}

static void test_snapshot(void **state)
{
    (void)state;
    image_t im = load_fixture("person.jpg"); /* 640 x 424 */
    int stride = im.w * 3 + 64;              /* exercise a padded stride */
    uint8_t *padded = vg_xcalloc((size_t)stride, (size_t)im.h);
    for (int y = 0; y < im.h; y++)
        memcpy(padded + (size_t)y * stride, im.bgr + (size_t)y * im.w * 3, (size_t)im.w * 3);
    vg_detection_t box = {0, "person", 0.93f, 0.29f, 0.23f, 0.14f, 0.65f};
    vg_mask_t mask = {0.5, 0.25, 0.3, 0.4}; /* over the horse */
    uint8_t *jpeg = NULL;
    size_t len = 0;
    assert_int_equal(
        vg_snapshot_jpeg(padded, im.w, im.h, stride, 320, &box, 1, &mask, 1, 80, &jpeg, &len), 0);
    assert_true(len > 1000 && jpeg[0] == 0xFF && jpeg[1] == 0xD8 && jpeg[2] == 0xFF);
    image_t out;
    assert_int_equal(vg_image_decode(jpeg, len, &out.bgr, &out.w, &out.h), 0);
    assert_int_equal(out.w, 320);
    assert_int_equal(out.h, 212);
    for (int y = (int)(0.25f * out.h) + 2; y < (int)(0.65f * out.h) - 2; y++)
        for (int x = (int)(0.5f * out.w) + 2; x < (int)(0.8f * out.w) - 2; x++)
            for (int c = 0; c < 3; c++)
                assert_true(out.bgr[((size_t)y * out.w + x) * 3 + c] < 16);
    free(out.bgr);
    free(jpeg);
    assert_int_equal(
        vg_snapshot_jpeg(padded, im.w, im.h, stride, 0, NULL, 0, NULL, 0, 0, &jpeg, &len),
        0); /* full size, default quality */
    assert_int_equal(vg_image_decode(jpeg, len, &out.bgr, &out.w, &out.h), 0);
    assert_int_equal(out.w, 640);
    free(out.bgr);
    free(jpeg);
    assert_int_equal(vg_snapshot_jpeg(padded, im.w, im.h, 10, 0, NULL, 0, NULL, 0, 0, &jpeg, &len),
                     VG_EINVAL);
    assert_int_equal(vg_image_decode((const uint8_t *)"nope", 4, &out.bgr, &out.w, &out.h), VG_EIO);
    free(padded);
    free(im.bgr);
}

static void test_image_load_missing(void **state)
{
    (void)state;
    uint8_t *bgr = NULL;
    int w, h;
    char *missing = tmp_path("missing.jpg");
    assert_int_equal(vg_image_load(missing, &bgr, &w, &h), VG_ENOTFOUND);
    free(missing);
}

/* Forward time of each model, one OpenCV thread: reported, not asserted. */
static void test_forward_times(void **state)
{
    (void)state;
    static const char *models[][3] = {
        {"darknet", "models/yolo-fastest-1.1_body.cfg", "models/yolo-fastest-1.1_body.weights"},
        {"darknet", "models/yolo-fastest-1.1.cfg", "models/yolo-fastest-1.1.weights"},
        {"darknet", "models/yolo-fastest-1.1-xl.cfg", "models/yolo-fastest-1.1-xl.weights"},
        {"builtin-hog", NULL, NULL},
    };
    vg_detector_set_threads(1);
    image_t im = load_fixture("person.jpg");
    image_t sq = resize_image(im, 320, 320);
    for (size_t i = 0; i < VG_ARRAY_LEN(models); i++) {
        vg_detector_t *d = open_model(models[i][0], models[i][1], models[i][2], NULL);
        vg_detection_t det[MAX_DET];
        size_t n;
        double ms, total = 0, best = 1e9;
        int runs = 10;
        for (int r = 0; r < runs; r++) {
            assert_int_equal(
                vg_detector_run(d, sq.bgr, 320, 320, 960, 0.5f, 0, det, MAX_DET, &n, &ms), 0);
            total += ms;
            best = ms < best ? ms : best;
        }
        print_message("      forward %-38s %6.1f ms mean, %6.1f ms best (1 thread, 320x320)\n",
                      models[i][2] ? models[i][2] : models[i][0], total / runs, best);
        vg_detector_free(d);
    }
    free(sq.bgr);
    free(im.bgr);
    vg_detector_set_threads(-1);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-test-detector-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = vg_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_person),
        cmocka_unit_test(test_body_no_person),
        cmocka_unit_test(test_body_labels_file),
        cmocka_unit_test(test_coco_person),
        cmocka_unit_test(test_xl_person),
        cmocka_unit_test(test_hog_person),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_onnx_yolov5),
        cmocka_unit_test(test_onnx_yolov8),
        cmocka_unit_test(test_motion),
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_image_load_missing),
        cmocka_unit_test(test_forward_times),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
