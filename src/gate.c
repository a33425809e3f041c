/* gate.c — the motion gate's thumbnail and comparison (see gate.h). Executor threads
 * (BGR views, about 0.05 ms per 320x320 view: one pixel in four of every cell) and the
 * capture threads (luma planes, for the decode policy's view-change judge). */
#include "vigil/gate.h"

#include <stdlib.h>
#include <string.h>

/* The fraction of cells of cur that moved against ref; 1 without a comparable ref. */
static double compare(const vg_gate_t *g)
{
    if (!g->has_ref || g->ref_width != g->width || g->ref_height != g->height) return 1.0;
    int changed = 0;
    for (int i = 0; i < g->rows * g->cols; i++)
        changed += abs((int)g->cur[i] - (int)g->ref[i]) > VG_GATE_CELL_DIFF;
    return (double)changed / (g->rows * g->cols);
}

/* One cell's mean luma over pixels [x0, x1) x [y0, y1) of the source image. */
typedef uint8_t (*cell_fn)(const uint8_t *img, int stride, int step, int x0, int x1, int y0,
                           int y1);

static uint8_t bgr_cell(const uint8_t *bgr, int stride, int step, int x0, int x1, int y0, int y1)
{
    (void)step; /* every second pixel of every second row */
    uint32_t sum = 0, n = 0;
    for (int y = y0; y < y1; y += 2) {
        const uint8_t *p = bgr + (size_t)y * (size_t)stride + (size_t)x0 * 3;
        for (int x = x0; x < x1; x += 2, p += 6) {
            sum += (uint32_t)p[0] + 2u * p[1] + p[2]; /* B + 2G + R */
            n += 4;
        }
    }
    return (uint8_t)(n ? sum / n : 0);
}

static uint8_t gray_cell(const uint8_t *y, int stride, int step, int x0, int x1, int y0, int y1)
{
    uint32_t sum = 0, n = 0;
    for (int yy = y0; yy < y1; yy += step) {
        const uint8_t *p = y + (size_t)yy * (size_t)stride;
        for (int x = x0; x < x1; x += step, n++)
            sum += p[x];
    }
    return (uint8_t)(n ? sum / n : 0);
}

/* Sizes the grid for a width x height image, fills g->cur cell by cell, compares. */
static double measure_grid(vg_gate_t *g, const uint8_t *img, int width, int height, int stride,
                           int step, cell_fn cell)
{
    int cols = width < VG_GATE_COLS ? width : VG_GATE_COLS;
    int rows = (int)((long)height * cols / width);
    rows = rows < 1 ? 1 : rows > VG_GATE_MAX_ROWS ? VG_GATE_MAX_ROWS : rows;
    g->cols = cols;
    g->rows = rows;
    g->width = width;
    g->height = height;
    for (int r = 0; r < rows; r++) {
        int y0 = (int)((long)r * height / rows), y1 = (int)((long)(r + 1) * height / rows);
        for (int c = 0; c < cols; c++) {
            int x0 = (int)((long)c * width / cols), x1 = (int)((long)(c + 1) * width / cols);
            g->cur[r * cols + c] = cell(img, stride, step, x0, x1, y0, y1);
        }
    }
    return compare(g);
}

double vg_gate_measure(vg_gate_t *g, const uint8_t *bgr, int width, int height, int stride)
{
    if (!bgr || width <= 0 || height <= 0) return 1.0;
    return measure_grid(g, bgr, width, height, stride, 2, bgr_cell);
}

double vg_gate_measure_gray(vg_gate_t *g, const uint8_t *y, int width, int height, int stride,
                            int step)
{
    if (!y || width <= 0 || height <= 0) return 1.0;
    step = step < 1 ? 1 : step;
    return measure_grid(g, y, width, height, stride, step, gray_cell);
}

void vg_gate_commit(vg_gate_t *g)
{
    memcpy(g->ref, g->cur, (size_t)g->rows * (size_t)g->cols);
    g->ref_width = g->width;
    g->ref_height = g->height;
    g->has_ref = g->cols > 0;
}

void vg_gate_reset(vg_gate_t *g)
{
    g->has_ref = false;
}
