/* privacy.h — privacy masks: rectangles of a camera's picture that must never leave
 * vigil. A mask is stored as fractions of the frame (0..1), so it covers the same part
 * of the room whatever resolution the camera sends. vg_privacy_apply() is the one place
 * masks are drawn: every image that leaves the process (snapshot.jpg today, event
 * images tomorrow) goes through it after its last drawing step, at the size it is
 * sent. Pure functions on caller-owned memory; any thread. */
#ifndef VIGIL_PRIVACY_H
#define VIGIL_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double x, y, w, h; /* fractions of the frame's width and height: top-left corner, size */
} vg_mask_t;

/* Fills every mask black in a packed BGR24 image (`height` rows of `stride` bytes), its
 * edges rounded outward to whole pixels so no partly covered pixel survives. Masks with
 * no area are ignored; masks reaching past the edges are clipped. */
void vg_privacy_apply(uint8_t *bgr, int width, int height, int stride, const vg_mask_t *masks,
                      size_t n_masks);

/* A copy of n masks (caller frees with free()); NULL when n is 0. */
vg_mask_t *vg_privacy_copy(const vg_mask_t *masks, size_t n_masks);

#ifdef __cplusplus
}
#endif

#endif
