/* privacy.c — privacy masks drawn on outgoing images (see privacy.h). Plain C on the
 * caller's buffer; called by whichever thread encodes the image (rest:snapshot today).
 * Owns nothing. */
#include "vigil/privacy.h"
#include "vigil/common.h"

#include <math.h>
#include <stdlib.h>
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

void vg_privacy_blank(uint8_t *bgr, int width, int height, int stride)
{
    if (!bgr || width <= 0 || height <= 0) return;
    for (int y = 0; y < height; y++)
        memset(bgr + (size_t)y * (size_t)stride, 0x60, (size_t)width * 3);
}

static void put2(uint8_t *bgr, int width, int height, int stride, int x, int y, const uint8_t c[3])
{
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int px = x + dx, py = y + dy;
            if (px < 0 || py < 0 || px >= width || py >= height) continue;
            memcpy(bgr + (size_t)py * (size_t)stride + (size_t)px * 3, c, 3);
        }
}

/* Bresenham from (x0, y0) to (x1, y1), in pixels. */
static void line(uint8_t *bgr, int width, int height, int stride, int x0, int y0, int x1, int y1,
                 const uint8_t c[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int guard = 0; guard < 100000; guard++) {
        put2(bgr, width, height, stride, x0, y0, c);
        if (x0 == x1 && y0 == y1) return;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

void vg_privacy_draw_polygon(uint8_t *bgr, int width, int height, int stride, const double *xy,
                             size_t n, const uint8_t bgr_color[3])
{
    if (!bgr || n < 2 || width <= 0 || height <= 0) return;
    for (size_t i = 0; i < n; i++) {
        size_t j = (i + 1) % n;
        line(bgr, width, height, stride, (int)(xy[2 * i] * (width - 1) + 0.5),
             (int)(xy[2 * i + 1] * (height - 1) + 0.5), (int)(xy[2 * j] * (width - 1) + 0.5),
             (int)(xy[2 * j + 1] * (height - 1) + 0.5), bgr_color);
    }
}
