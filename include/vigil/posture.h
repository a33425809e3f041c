/* posture.h — a person's posture (upright, sitting, lying) from the geometry of their
 * MoveNet keypoints, with the box's aspect ratio as a fallback when the keypoints are
 * weak. Pure functions on values: any thread, no state, no allocation.
 *
 * Geometry is measured in pixels (keypoints are normalised, so the image size is passed
 * in), from keypoints scoring >= VG_POSTURE_SURE:
 *   torso angle   from vertical, of the line from mid-shoulders to mid-hips: 0 when the
 *                 hips are straight below the shoulders, 90 horizontal, 180 upside down.
 *   thigh drop    how far the knees are below the hips, in torso lengths (standing: about
 *                 1; sitting: thighs level or pointing at the camera, near 0).
 *   torso ratio   torso length in shoulder (or hip) widths: about 1.3 for a torso seen
 *                 side-on (upright, sitting, lying across the view); a torso seen end-on
 *                 (lying along the line of sight, or bent double) is much shorter.
 *   leg angle     of the line from mid-hips to mid-ankles (else knees), from vertical.
 * Rules, in order (each threshold lies between the postures' typical values):
 *   torso angle >= 60                                       lying (torso)
 *   torso angle 35..60 and shoulders-to-ankles >= 55        lying (body_axis)
 *   torso ratio < 0.6 and leg angle < 30                    upright (bent_over)
 *   torso ratio < 0.6                                       lying (end_on)
 *   thigh drop < 0.5                                        sitting (thighs)
 *   thigh drop >= 0.5                                       upright (legs)
 *   knees unseen, torso angle < 60                          upright (torso_only)
 *   torso unseen: box width / height >= 1.4 lying, <= 0.7 upright, else unknown (box).
 * The confidence is the mean score of the keypoints the rule used times how far the
 * deciding measure is from its threshold (0.5 at the threshold, 1 a band beyond); the box
 * fallback's is at most 0.5. */
#ifndef VIGIL_POSTURE_H
#define VIGIL_POSTURE_H

#include "vigil/pose.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VG_POSTURE_SURE 0.2f /* keypoints scoring at least this are used (as for boxes) */

typedef enum {
    VG_POSTURE_UNKNOWN = 0,
    VG_POSTURE_UPRIGHT,
    VG_POSTURE_SITTING,
    VG_POSTURE_LYING,
} vg_posture_t;

typedef struct {
    vg_posture_t posture;
    float confidence;  /* 0..1 */
    float torso_deg;   /* torso angle from vertical, degrees; NAN when unseen */
    float body_deg;    /* shoulders-to-ankles (else knees) angle from vertical; NAN */
    float thigh_drop;  /* knees below hips, in torso lengths; NAN */
    float torso_ratio; /* torso length in shoulder (or hip) widths; NAN */
    float leg_deg;     /* hips-to-ankles (else knees) angle from vertical; NAN */
    float box_aspect;  /* box width / height in pixels */
    const char *rule;  /* which rule decided (static string), for logs and tests */
} vg_posture_result_t;

/* Classifies one person. kp: VG_POSE_KEYPOINTS keypoints normalised to a width x height
 * image, or NULL (box only); box: the person's box, normalised. */
vg_posture_result_t vg_posture_classify(const vg_keypoint_t *kp, vg_box_t box, int width,
                                        int height);

/* "upright", "sitting", "lying" or "unknown" (static strings). */
const char *vg_posture_name(vg_posture_t p);
/* The posture so named, VG_POSTURE_UNKNOWN for any other string or NULL. */
vg_posture_t vg_posture_parse(const char *name);

#ifdef __cplusplus
}
#endif

#endif
