/* posture.c — upright, sitting or lying from keypoint geometry (vigil/posture.h documents
 * the measures, the rules and their thresholds). Pure functions: any thread, no state. */
#include "vigil/posture.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define UPRIGHT_TORSO_DEG 35.0f /* torso within this of vertical: upright or sitting */
#define LYING_TORSO_DEG 60.0f   /* torso this far from vertical: lying */
#define LYING_BODY_DEG 55.0f    /* a leaning torso with the whole body this far: lying */
#define SITTING_THIGH 0.5f      /* knees less than this many torso lengths below hips */
#define END_ON_RATIO 0.6f       /* torso shorter than this many shoulder widths: end-on */
#define LEGS_DOWN_DEG 30.0f     /* legs within this of vertical: standing (bent over) */
#define LYING_ASPECT 1.4f       /* box fallback: wider than this is lying */
#define UPRIGHT_ASPECT 0.7f     /* box fallback: narrower than this is upright */
#define BAND_DEG 20.0f          /* confidence reaches 1 this far past an angle threshold */
#define BAND_RATIO 0.3f         /* ... and this far past a ratio threshold */
#define BOX_CONFIDENCE 0.5f     /* the box fallback's confidence at most */

/* A body point in pixels: the mean of the sure keypoints among a pair (left, right). */
typedef struct {
    float x, y, score;
    int n; /* how many of the pair were sure: 0 means unseen */
} point_t;

typedef struct {
    point_t shoulders, hips, knees, ankles;
    float shoulder_w, hip_w; /* pixel distance between left and right; 0 when unseen */
    vg_posture_result_t r;
} measures_t;

static point_t pair(const vg_keypoint_t *kp, int left, int width, int height)
{
    point_t p = {0, 0, 0, 0};
    for (int k = left; k <= left + 1; k++) {
        if (!(kp[k].score >= VG_POSTURE_SURE)) continue;
        p.x += kp[k].x * (float)width;
        p.y += kp[k].y * (float)height;
        p.score += kp[k].score;
        p.n++;
    }
    if (p.n) {
        p.x /= (float)p.n;
        p.y /= (float)p.n;
        p.score /= (float)p.n;
    }
    return p;
}

static float pair_width(const vg_keypoint_t *kp, int left, int width, int height)
{
    const vg_keypoint_t *l = &kp[left], *r = &kp[left + 1];
    if (!(l->score >= VG_POSTURE_SURE && r->score >= VG_POSTURE_SURE)) return 0;
    return hypotf((l->x - r->x) * (float)width, (l->y - r->y) * (float)height);
}

/* Angle of the line from a down to b, from vertical: 0 straight down, 180 straight up. */
static float angle_deg(point_t a, point_t b)
{
    return atan2f(fabsf(b.x - a.x), b.y - a.y) * 180.0f / (float)M_PI;
}

/* 0.5 at the threshold, rising to 1 a band beyond it. */
static float margin(float value, float threshold, float band)
{
    return 0.5f + 0.5f * fminf(1.0f, fabsf(value - threshold) / band);
}

static void measure(measures_t *m, const vg_keypoint_t *kp, int width, int height)
{
    m->shoulders = pair(kp, VG_KP_LEFT_SHOULDER, width, height);
    m->hips = pair(kp, VG_KP_LEFT_HIP, width, height);
    m->knees = pair(kp, VG_KP_LEFT_KNEE, width, height);
    m->ankles = pair(kp, VG_KP_LEFT_ANKLE, width, height);
    m->shoulder_w = pair_width(kp, VG_KP_LEFT_SHOULDER, width, height);
    m->hip_w = pair_width(kp, VG_KP_LEFT_HIP, width, height);
    if (!m->shoulders.n || !m->hips.n) return;
    float torso = hypotf(m->hips.x - m->shoulders.x, m->hips.y - m->shoulders.y);
    m->r.torso_deg = angle_deg(m->shoulders, m->hips);
    point_t low = m->ankles.n ? m->ankles : m->knees;
    if (low.n) m->r.body_deg = angle_deg(m->shoulders, low);
    if (m->knees.n && torso > 0) m->r.thigh_drop = (m->knees.y - m->hips.y) / torso;
    point_t foot = m->ankles.n ? m->ankles : m->knees;
    if (foot.n) m->r.leg_deg = angle_deg(m->hips, foot);
    float ref = fmaxf(m->shoulder_w, m->hip_w);
    if (ref > 0) m->r.torso_ratio = torso / ref;
}

static void decide(vg_posture_result_t *r, vg_posture_t p, float quality, float margin_,
                   const char *rule)
{
    r->posture = p;
    r->confidence = fminf(1.0f, quality * margin_);
    r->rule = rule;
}

/* The keypoint rules; false when the torso is unseen. */
static bool by_keypoints(measures_t *m)
{
    vg_posture_result_t *r = &m->r;
    if (isnan(r->torso_deg)) return false;
    float q = (m->shoulders.score + m->hips.score) / 2;
    float q_legs = m->knees.n ? (2 * q + m->knees.score) / 3 : q;
    if (r->torso_deg >= LYING_TORSO_DEG) {
        decide(r, VG_POSTURE_LYING, q, margin(r->torso_deg, LYING_TORSO_DEG, BAND_DEG), "torso");
    } else if (r->torso_deg >= UPRIGHT_TORSO_DEG && r->body_deg >= LYING_BODY_DEG) {
        decide(r, VG_POSTURE_LYING, q_legs, margin(r->body_deg, LYING_BODY_DEG, BAND_DEG),
               "body_axis");
    } else if (r->torso_ratio < END_ON_RATIO && r->leg_deg < LEGS_DOWN_DEG) {
        decide(r, VG_POSTURE_UPRIGHT, q_legs * 0.75f, margin(r->leg_deg, LEGS_DOWN_DEG, BAND_DEG),
               "bent_over");
    } else if (r->torso_ratio < END_ON_RATIO) {
        decide(r, VG_POSTURE_LYING, q, margin(r->torso_ratio, END_ON_RATIO, BAND_RATIO), "end_on");
    } else if (r->thigh_drop < SITTING_THIGH) {
        decide(r, VG_POSTURE_SITTING, q_legs, margin(r->thigh_drop, SITTING_THIGH, BAND_RATIO),
               "thighs");
    } else if (r->thigh_drop >= SITTING_THIGH) {
        float by_thigh = margin(r->thigh_drop, SITTING_THIGH, BAND_RATIO);
        float by_torso = margin(r->torso_deg, UPRIGHT_TORSO_DEG, BAND_DEG);
        decide(r, VG_POSTURE_UPRIGHT, q_legs, fminf(by_thigh, by_torso), "legs");
    } else {
        /* knees unseen, torso leaning less than LYING_TORSO_DEG: upright, unsure */
        float by_torso = r->torso_deg < UPRIGHT_TORSO_DEG
                             ? margin(r->torso_deg, UPRIGHT_TORSO_DEG, BAND_DEG)
                             : 0.5f;
        decide(r, VG_POSTURE_UPRIGHT, q * 0.75f, by_torso, "torso_only");
    }
    return true;
}

static void by_box(vg_posture_result_t *r)
{
    float a = r->box_aspect;
    if (!(a > 0)) return; /* r stays unknown */
    if (a >= LYING_ASPECT)
        decide(r, VG_POSTURE_LYING, BOX_CONFIDENCE, margin(a, LYING_ASPECT, 2 * BAND_RATIO), "box");
    else if (a <= UPRIGHT_ASPECT)
        decide(r, VG_POSTURE_UPRIGHT, BOX_CONFIDENCE, margin(a, UPRIGHT_ASPECT, BAND_RATIO), "box");
    else
        decide(r, VG_POSTURE_UNKNOWN, 0.0f, 1.0f, "box");
}

vg_posture_result_t vg_posture_classify(const vg_keypoint_t *kp, vg_box_t box, int width,
                                        int height)
{
    measures_t m = {0};
    m.r = (vg_posture_result_t){.torso_deg = NAN,
                                .body_deg = NAN,
                                .thigh_drop = NAN,
                                .torso_ratio = NAN,
                                .leg_deg = NAN,
                                .rule = "none"};
    if (width <= 0 || height <= 0) return m.r;
    if (box.h > 0) m.r.box_aspect = box.w * (float)width / (box.h * (float)height);
    if (kp) measure(&m, kp, width, height);
    if (!kp || !by_keypoints(&m)) by_box(&m.r);
    return m.r;
}

static const char *const names[] = {"unknown", "upright", "sitting", "lying"};

const char *vg_posture_name(vg_posture_t p)
{
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

vg_posture_t vg_posture_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0) return (vg_posture_t)i;
    return VG_POSTURE_UNKNOWN;
}
