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

/* What a stream's images show when they leave vigil (the `privacy` stream key). masks:
 * the picture with the masks blacked out (default); none: the same (masks configured
 * are always applied); skeleton: no picture at all, only boxes, skeletons and zones
 * drawn on a plain background. */
typedef enum { VG_PRIVACY_MASKS = 0, VG_PRIVACY_NONE, VG_PRIVACY_SKELETON } vg_privacy_mode_t;

typedef struct {
    double x, y, w, h; /* fractions of the frame's width and height: top-left corner, size */
} vg_mask_t;

/* Fills every mask black in a packed BGR24 image (`height` rows of `stride` bytes), its
 * edges rounded outward to whole pixels so no partly covered pixel survives. Masks with
 * no area are ignored; masks reaching past the edges are clipped. */
void vg_privacy_apply(uint8_t *bgr, int width, int height, int stride, const vg_mask_t *masks,
                      size_t n_masks);

/* Paints the whole image the plain background of privacy mode skeleton (a mid grey),
 * so nothing of the camera's picture survives; drawing comes after. */
void vg_privacy_blank(uint8_t *bgr, int width, int height, int stride);

/* Draws a closed polygon (n points, xy as x0, y0, x1, y1, ... in fractions of the
 * frame) with 2-pixel lines of colour bgr_color; points outside are clipped per pixel.
 * For the zones of privacy mode skeleton. */
void vg_privacy_draw_polygon(uint8_t *bgr, int width, int height, int stride, const double *xy,
                             size_t n, const uint8_t bgr_color[3]);

/* A copy of n masks (caller frees with free()); NULL when n is 0. */
vg_mask_t *vg_privacy_copy(const vg_mask_t *masks, size_t n_masks);

#ifdef __cplusplus
}
#endif

#endif
