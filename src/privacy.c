/* privacy.c — privacy masks drawn on outgoing images (see privacy.h). Plain C on the
 * caller's buffer; called by whichever thread encodes the image (rest:snapshot today).
 * Owns nothing. */
#include "vigil/privacy.h"
#include "vigil/common.h"

#include <math.h>
#include <string.h>

#define EPS_PX 1e-6 /* of a pixel */

static int clamp_px(double v, int max)
{
    if (!(v > 0)) /* also NaN */
        return 0;
    return v >= max ? max : (int)v;
}

void vg_privacy_apply(uint8_t *bgr, int width, int height, int stride, const vg_mask_t *masks,
                      size_t n_masks)
{
    if (!bgr || width <= 0 || height <= 0 || stride < 3 * width) return;
    for (size_t i = 0; masks && i < n_masks; i++) {
        const vg_mask_t *m = &masks[i];
        if (!(m->w > 0 && m->h > 0)) continue;
        /* outward, but a float error (0.15 * 640 = 96.00000000000001) is no pixel */
        int x0 = clamp_px(floor(m->x * width + EPS_PX), width);
        int y0 = clamp_px(floor(m->y * height + EPS_PX), height);
        int x1 = clamp_px(ceil((m->x + m->w) * width - EPS_PX), width);
        int y1 = clamp_px(ceil((m->y + m->h) * height - EPS_PX), height);
        if (x1 <= x0) continue;
        for (int y = y0; y < y1; y++)
            memset(bgr + (size_t)y * (size_t)stride + (size_t)x0 * 3, 0, (size_t)(x1 - x0) * 3);
    }
}

vg_mask_t *vg_privacy_copy(const vg_mask_t *masks, size_t n_masks)
{
    if (!masks || !n_masks) return NULL;
    vg_mask_t *c = vg_xcalloc(n_masks, sizeof(*c));
    memcpy(c, masks, n_masks * sizeof(*c));
    return c;
}
