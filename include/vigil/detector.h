/* detector.h — what vigil does with OpenCV (pose estimation aside: pose.h), behind plain
 * C: object detection (Darknet or ONNX YOLO models through cv::dnn, or OpenCV's HOG people
 * detector), frame-differencing motion, dense optical flow, snapshot JPEGs and an image
 * loader. Implemented in src/detector.cpp (helpers shared with pose.cpp in
 * src/cv_internal.hpp): no OpenCV type crosses
 * this header and no C++ exception escapes it (OpenCV failures become VG_E* codes).
 *
 * Threads: a vg_detector_t, vg_motion_t or vg_flow_t is used by one thread at a time
 * (each inference executor owns its own); distinct objects run concurrently. The other
 * functions are thread-safe. Creating a detector loads files: never on the loop thread.
 *
 * Images are packed BGR24, `height` rows of `stride` bytes (stride >= 3 * width),
 * borrowed for the duration of the call. Boxes are normalised to [0, 1] relative to
 * the image passed in: x, y is the top-left corner, w, h the size. */
#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/privacy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float x, y, w, h;
} vg_box_t;

#define VG_DETECTOR_LABEL_MAX 32

typedef struct {
    int class_id;
    char label[VG_DETECTOR_LABEL_MAX]; /* NUL-terminated, truncated if longer */
    float confidence;                  /* 0..1 */
    float x, y, w, h;                  /* normalised, clamped to the image */
} vg_detection_t;

/* Every string is borrowed for the duration of vg_detector_new only. */
typedef struct {
    const char *model_id;     /* used in messages; may be NULL */
    const char *format;       /* "darknet" | "onnx" | "builtin-hog" */
    const char *config_path;  /* darknet .cfg; ignored otherwise */
    const char *weights_path; /* darknet .weights or the .onnx file; ignored for HOG */
    const char *labels_path;  /* optional (NULL or ""): one label per line */
    int input_size;           /* square network input, pixels, multiple of 32; 0: 320 */
} vg_detector_spec_t;

typedef struct vg_detector vg_detector_t;

/* Loads a model and runs one warm-up forward pass. On success *out is owned by the
 * caller (vg_detector_free). On failure returns VG_EINVAL (bad spec), VG_ENOTFOUND
 * (a file is missing), VG_EIO (a file is unreadable, truncated, or not a network) or
 * VG_EUNSUPPORTED (unknown format, unrecognised output layout), and writes a message
 * naming the file and the problem into err (errlen bytes, may be 0).
 *
 * Decoding: darknet outputs are rows [cx, cy, w, h, objectness, class scores] in
 * [0, 1]; OpenCV's region layer already multiplies the class scores by objectness
 * and zeroes those below 0.2, so a threshold under 0.2 finds nothing more. ONNX
 * outputs are recognised by shape: YOLOv5 [1, N, 5+C] (confidence = objectness x
 * class score) or YOLOv8 [1, 4+C, N] (no objectness), in input pixels; N must exceed
 * the row length, as it does in every real model. The input is stretched to
 * input_size x input_size (no letterbox), resized only when its size differs.
 * Labels: labels_path line N names class N; else "person" for class 0 of a one-class
 * model; else "class<N>". builtin-hog has one class, "person", and ignores the files;
 * it runs on the image scaled so its longer side is 640 pixels, and its confidence is
 * 1 / (1 + exp(-2 (s - 1))) for SVM score s: the margin (s = 1) maps to 0.5, s = 2
 * to 0.88, the hyperplane (s = 0) to 0.12. */
int vg_detector_new(const vg_detector_spec_t *spec, vg_detector_t **out, char *err, size_t errlen);
void vg_detector_free(vg_detector_t *d); /* NULL ok */

/* Detects objects in one image of any size. Keeps detections with confidence >=
 * conf_threshold and, if class_filter >= 0, of that class only (after picking each
 * box's best class); suppresses overlaps per class (IoU > 0.45). Writes at most
 * max_out detections, best first, to out (caller-owned) and their number to *n_out.
 * *forward_ms (may be NULL) receives the time of the network pass (HOG: the
 * detection) in milliseconds. Returns 0, VG_EINVAL, or VG_EIO if OpenCV failed. */
int vg_detector_run(vg_detector_t *d, const uint8_t *bgr, int width, int height, int stride,
                    float conf_threshold, int class_filter, vg_detection_t *out, size_t max_out,
                    size_t *n_out, double *forward_ms);

int vg_detector_num_classes(const vg_detector_t *d);
int vg_detector_input_size(const vg_detector_t *d);
/* The label of class_id (borrowed, lives as long as d), or NULL when out of range. */
const char *vg_detector_label(const vg_detector_t *d, int class_id);
/* The class whose label is `label`, or VG_ENOTFOUND. */
int vg_detector_class_id(const vg_detector_t *d, const char *label);

/* Sets OpenCV's worker thread count (cv::setNumThreads) for the whole process; the
 * executor pool calls it once with 1 so inference threads do not fight over cores. */
void vg_detector_set_threads(int n);

/* ---- motion: frame differencing on a grayscale copy about 160 pixels wide ---- */

typedef struct vg_motion vg_motion_t;

vg_motion_t *vg_motion_new(void);    /* caller frees with vg_motion_free */
void vg_motion_free(vg_motion_t *m); /* NULL ok */
/* Compares the image with the previous one given to m. *score is the fraction of
 * pixels that changed (0..1); boxes (caller-owned, up to max_boxes, largest first)
 * surround the changed regions, *n_boxes their number. The first image, and any image
 * whose size differs from the previous one, gives score 0 and no boxes.
 * Returns 0, VG_EINVAL, or VG_EIO if OpenCV failed. */
int vg_motion_run(vg_motion_t *m, const uint8_t *bgr, int width, int height, int stride,
                  float *score, vg_box_t *boxes, size_t max_boxes, size_t *n_boxes);

/* ---- flow: Farneback dense optical flow on a grayscale copy about 160 pixels wide ---- */

typedef struct vg_flow vg_flow_t;

vg_flow_t *vg_flow_new(void);    /* caller frees with vg_flow_free */
void vg_flow_free(vg_flow_t *f); /* NULL ok */
/* Flow from the previous image given to f to this one. *mean_magnitude: mean flow
 * length in pixels per frame at the small size; *direction_deg: direction of the
 * summed flow vectors (the magnitude-weighted mean angle) in [0, 360), 0 = towards +x
 * (right), 90 = towards +y (down the image). The first image, and any image whose size
 * differs from the previous one, gives 0 and 0. Returns 0, VG_EINVAL or VG_EIO. */
int vg_flow_run(vg_flow_t *f, const uint8_t *bgr, int width, int height, int stride,
                float *mean_magnitude, float *direction_deg);

/* ---- snapshots and images ---- */

/* Encodes the image as JPEG, scaled down to out_width pixels wide keeping its aspect
 * (out_width <= 0 or >= width: full size; never scaled up), with the boxes drawn and
 * their labels and confidences (boxes may be NULL), then every privacy mask (may be
 * NULL) filled black by vg_privacy_apply, both before scaling (nothing masked blurs
 * into its neighbours) and on the final image after drawing. quality 1..100 (<= 0: 85). *jpeg is
 * caller-frees (free()), *len its size. Returns 0, VG_EINVAL or VG_EIO. */
int vg_snapshot_jpeg(const uint8_t *bgr, int width, int height, int stride, int out_width,
                     const vg_detection_t *boxes, size_t n_boxes, const vg_mask_t *masks,
                     size_t n_masks, int quality, uint8_t **jpeg, size_t *len);

/* Reads an image file (any format OpenCV reads) into packed BGR24 with stride
 * 3 * width. *bgr is caller-frees (free()). Returns 0, VG_ENOTFOUND or VG_EIO. */
int vg_image_load(const char *path, uint8_t **bgr, int *width, int *height);
/* The same from an encoded image in memory (data borrowed). Returns 0, VG_EINVAL, VG_EIO. */
int vg_image_decode(const uint8_t *data, size_t len, uint8_t **bgr, int *width, int *height);

#ifdef __cplusplus
}
#endif

#endif
