/* pose.h — human pose estimation with Google's MoveNet (ONNX, through OpenCV DNN) behind
 * plain C: single-person Lightning on a crop around a person, multi-person MultiPose on a
 * whole view or a region of it. Implemented in src/pose.cpp; no OpenCV type crosses this
 * header and no C++ exception escapes it.
 *
 * Threads: a vg_pose_model_t is used by one thread at a time (its inference executor);
 * distinct models run concurrently. Creating one loads a file: never on the loop thread.
 *
 * Images follow detector.h: packed BGR24, `height` rows of `stride` bytes, borrowed for
 * the call. Every box and keypoint is normalised to [0, 1] relative to the image passed
 * in (x right, y down; a box is its top-left corner and size), whatever crop or region
 * the network saw: the square input is letterboxed and the letterbox undone. */
#ifndef VIGIL_POSE_H
#define VIGIL_POSE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/detector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* COCO-17 keypoint order, as MoveNet writes it. */
enum {
    VG_KP_NOSE,
    VG_KP_LEFT_EYE,
    VG_KP_RIGHT_EYE,
    VG_KP_LEFT_EAR,
    VG_KP_RIGHT_EAR,
    VG_KP_LEFT_SHOULDER,
    VG_KP_RIGHT_SHOULDER,
    VG_KP_LEFT_ELBOW,
    VG_KP_RIGHT_ELBOW,
    VG_KP_LEFT_WRIST,
    VG_KP_RIGHT_WRIST,
    VG_KP_LEFT_HIP,
    VG_KP_RIGHT_HIP,
    VG_KP_LEFT_KNEE,
    VG_KP_RIGHT_KNEE,
    VG_KP_LEFT_ANKLE,
    VG_KP_RIGHT_ANKLE,
    VG_POSE_KEYPOINTS
};

#define VG_POSE_MAX_PEOPLE 6 /* MultiPose's own limit */

typedef struct {
    float x, y;  /* normalised to the image passed in */
    float score; /* 0..1, the keypoint heatmap's value */
} vg_keypoint_t;

typedef struct {
    float score;  /* 0..1: MultiPose's centre score; Lightning's mean keypoint score */
    vg_box_t box; /* extent of the keypoints scoring >= 0.2, padded by 10 % a side */
    vg_keypoint_t kp[VG_POSE_KEYPOINTS];
} vg_pose_t;

typedef enum {
    VG_POSE_SINGLE = 1, /* Lightning: one person near the middle of its input */
    VG_POSE_MULTI = 2,  /* MultiPose: up to VG_POSE_MAX_PEOPLE anywhere in the input */
} vg_pose_kind_t;

/* Strings are borrowed for the duration of vg_pose_new only. */
typedef struct {
    const char *model_id;     /* used in messages; may be NULL */
    const char *weights_path; /* the .onnx file */
    int input_size;           /* square input in pixels, multiple of 32; 0: the model's own (192 for
                                 Lightning, 256 for MultiPose). Both nets are fully convolutional and
                                 run at any size: smaller is faster and less precise. */
} vg_pose_spec_t;

typedef struct vg_pose_model vg_pose_model_t;

/* Loads a MoveNet ONNX model and runs one warm-up pass; tells single- from multi-person by
 * its outputs (4 heads: Lightning; 6 with box_scale and box_offset: MultiPose), each a
 * 1xCxGxG map with G = input_size / 4. On success *out is caller-owned (vg_pose_free).
 * Errors as vg_detector_new: VG_EINVAL, VG_ENOTFOUND, VG_EIO, VG_EUNSUPPORTED (outputs
 * are not MoveNet's), with a message naming the file in err (errlen bytes, may be 0). */
int vg_pose_new(const vg_pose_spec_t *spec, vg_pose_model_t **out, char *err, size_t errlen);
void vg_pose_free(vg_pose_model_t *m); /* NULL ok */

vg_pose_kind_t vg_pose_kind(const vg_pose_model_t *m);
int vg_pose_input_size(const vg_pose_model_t *m);

/* Estimates poses in `region` of the image (normalised; NULL: the whole image), which is
 * letterboxed to the square input. Single-person models always give one pose (check its
 * score); give them a crop around a person (vg_pose_crop_box). Multi-person models give
 * the people whose centre scores >= min_score and who have at least 4 keypoints scoring
 * >= 0.2, best first, duplicates (box IoU > 0.5) removed. Writes at most max_out poses to out
 * (caller-owned), their number to *n_out, the network time in ms to *forward_ms (may be NULL).
 * Returns 0, VG_EINVAL or VG_EIO. */
int vg_pose_run(vg_pose_model_t *m, const uint8_t *bgr, int width, int height, int stride,
                const vg_box_t *region, float min_score, vg_pose_t *out, size_t max_out,
                size_t *n_out, double *forward_ms);

/* The crop to give a single-person model for a person box (normalised to a width x height
 * image): a square in pixels centred on the box, its side 1.25 times the box's longer
 * side, shifted inside the image where it can be and clipped where it cannot. */
vg_box_t vg_pose_crop_box(vg_box_t person, int width, int height);

#ifdef __cplusplus
}
#endif

#endif
