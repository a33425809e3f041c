/* gate.h — the motion gate in front of a detector: decides whether a view changed
 * enough since the detector last ran that running it again can tell anything new.
 *
 * The gate keeps a coarse grey thumbnail (cells of about 8x8 pixels, each the mean of
 * a sparse sample) of the view the detector last saw, and compares each new view with
 * that reference, not with the previous frame, so a change too slow to show between
 * two frames still adds up until it opens the gate. Averaging over a cell hides sensor
 * noise; a cell counts as changed when its mean moved by more than VG_GATE_CELL_DIFF
 * grey levels. Pure computation on caller memory: one thread at a time per gate. */
#ifndef VIGIL_GATE_H
#define VIGIL_GATE_H

#include <stdbool.h>
#include <stdint.h>

#define VG_GATE_COLS 40      /* thumbnail width in cells; rows follow the aspect */
#define VG_GATE_MAX_ROWS 160 /* views taller than 4:1 use fewer, taller cells */
#define VG_GATE_CELL_DIFF 12 /* grey levels a cell mean must move to count as changed */

typedef struct {
    uint8_t ref[VG_GATE_COLS * VG_GATE_MAX_ROWS], cur[VG_GATE_COLS * VG_GATE_MAX_ROWS];
    int cols, rows;    /* of cur; of ref too when has_ref */
    int width, height; /* image size cur was measured on */
    int ref_width, ref_height;
    bool has_ref;
} vg_gate_t;

/* Computes the thumbnail of a packed BGR24 image (borrowed) and returns the fraction
 * of cells, 0..1, that changed against the reference; 1 when there is no reference or
 * the image size differs from the reference's. */
double vg_gate_measure(vg_gate_t *g, const uint8_t *bgr, int width, int height, int stride);
/* The same on a grey (luma) plane, e.g. a decoded picture's Y plane (borrowed): reads
 * one pixel in `step` (>= 1) in each direction of every cell. */
double vg_gate_measure_gray(vg_gate_t *g, const uint8_t *y, int width, int height, int stride,
                            int step);
/* Makes the thumbnail of the last vg_gate_measure the reference (the detector ran). */
void vg_gate_commit(vg_gate_t *g);
/* Forgets the reference: the next measure returns 1. */
void vg_gate_reset(vg_gate_t *g);

#endif
