/* Unit tests for gate.c: no reference opens the gate; the same picture, and sensor
 * noise, keep it shut; a person-sized change opens it; slow drift adds up against the
 * reference until it opens it; a size change or reset opens it; odd sizes are safe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vigil/gate.h"

#define W 320
#define H 320
#define STRIDE (W * 3 + 64)

static uint8_t img[H * STRIDE];

/* A textured picture: a diagonal gradient, different in each channel, every channel
 * brightened by offset (0..80). */
static void paint(int offset)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img + y * STRIDE + x * 3;
            int v = (x + 2 * y) % 150;
            p[0] = (uint8_t)(v + offset);
            p[1] = (uint8_t)(v / 2 + 20 + offset);
            p[2] = (uint8_t)(150 - v / 2 + offset);
        }
}

static void box(int x0, int y0, int w, int h, uint8_t grey)
{
    for (int y = y0; y < y0 + h; y++)
        memset(img + y * STRIDE + x0 * 3, grey, (size_t)w * 3);
}

static void noise(int amplitude, unsigned seed)
{
    srand(seed);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 3; x++) {
            int v = img[y * STRIDE + x] + rand() % (2 * amplitude + 1) - amplitude;
            img[y * STRIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static void test_reference(void **state)
{
    (void)state;
    vg_gate_t *g = calloc(1, sizeof(*g));
    paint(0);
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) == 1.0); /* nothing to compare */
    vg_gate_commit(g);
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) == 0.0);
    assert_int_equal(g->cols, VG_GATE_COLS);
    assert_int_equal(g->rows, VG_GATE_COLS); /* square view */
    vg_gate_reset(g);
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) == 1.0);
    vg_gate_commit(g);
    assert_true(vg_gate_measure(g, img, W, H - 8, STRIDE) == 1.0); /* another size */
    free(g);
}

static void test_noise_and_person(void **state)
{
    (void)state;
    vg_gate_t *g = calloc(1, sizeof(*g));
    paint(20);
    vg_gate_measure(g, img, W, H, STRIDE);
    vg_gate_commit(g);
    paint(20);
    noise(12, 1); /* heavy sensor noise on every pixel */
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) == 0.0);
    /* a far-away person: 16x40 pixels of the 320x320 view, much darker */
    paint(20);
    box(100, 150, 16, 40, 10);
    double change = vg_gate_measure(g, img, W, H, STRIDE);
    assert_true(change >= 0.003);
    assert_true(change < 0.02);
    /* the whole room lit up */
    paint(80);
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) > 0.5);
    free(g);
}

/* Drift of 5 grey levels per frame never shows between two frames, but adds up. */
static void test_drift_accumulates(void **state)
{
    (void)state;
    vg_gate_t *g = calloc(1, sizeof(*g));
    paint(0);
    vg_gate_measure(g, img, W, H, STRIDE);
    vg_gate_commit(g);
    int opened_at = 0;
    for (int step = 1; step <= 5 && !opened_at; step++) {
        paint(5 * step);
        if (vg_gate_measure(g, img, W, H, STRIDE) > 0.5) opened_at = step;
    }
    assert_int_equal(opened_at, 3); /* 15 levels > VG_GATE_CELL_DIFF */
    vg_gate_commit(g);
    paint(15);
    assert_true(vg_gate_measure(g, img, W, H, STRIDE) == 0.0);
    free(g);
}

static void test_odd_sizes(void **state)
{
    (void)state;
    vg_gate_t *g = calloc(1, sizeof(*g));
    paint(0);
    const int sizes[][2] = {{1, 1}, {3, 300}, {300, 2}, {7, 5}, {W, H}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_true(vg_gate_measure(g, img, sizes[i][0], sizes[i][1], STRIDE) == 1.0);
        vg_gate_commit(g);
        assert_true(vg_gate_measure(g, img, sizes[i][0], sizes[i][1], STRIDE) == 0.0);
        assert_true(g->rows >= 1 && g->rows <= VG_GATE_MAX_ROWS);
        assert_true(g->cols >= 1 && g->cols <= VG_GATE_COLS);
    }
    assert_true(vg_gate_measure(g, NULL, W, H, STRIDE) == 1.0);
    assert_true(vg_gate_measure(g, img, 0, H, STRIDE) == 1.0);
    free(g);
}

/* The capture's judge: a 640x360 luma plane with a stride, read one pixel in 4 x 4;
 * +-6 grey levels of noise stay still, a moved block counts, another size is 1. */
static void test_gray_plane(void **state)
{
    (void)state;
    const int gw = 640, gh = 360, gs = 704;
    uint8_t *y = malloc((size_t)gs * gh);
    assert_non_null(y);
    for (int r = 0; r < gh; r++)
        for (int c = 0; c < gs; c++)
            y[r * gs + c] = (uint8_t)(60 + (c * 3 + r) % 90);
    vg_gate_t *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    assert_true(vg_gate_measure_gray(g, y, gw, gh, gs, 4) == 1.0); /* no reference */
    vg_gate_commit(g);
    srand(7);
    for (int i = 0; i < gw * gh / 4; i++) { /* sensor noise */
        int k = (rand() % gh) * gs + rand() % gw;
        y[k] = (uint8_t)(y[k] + rand() % 13 - 6);
    }
    assert_true(vg_gate_measure_gray(g, y, gw, gh, gs, 4) < 0.003);
    for (int r = 100; r < 200; r++) /* someone walks in: a 60x100 block turns dark */
        memset(y + r * gs + 300, 10, 60);
    double change = vg_gate_measure_gray(g, y, gw, gh, gs, 4);
    assert_true(change > 0.01 && change < 0.1);
    assert_true(vg_gate_measure_gray(g, y, gw / 2, gh, gs, 4) == 1.0); /* other size */
    assert_true(vg_gate_measure_gray(g, NULL, gw, gh, gs, 4) == 1.0);
    free(g);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),         cmocka_unit_test(test_noise_and_person),
        cmocka_unit_test(test_drift_accumulates), cmocka_unit_test(test_odd_sizes),
        cmocka_unit_test(test_gray_plane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
