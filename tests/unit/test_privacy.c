/* test_privacy.c — vg_privacy_apply: masks as fractions of the frame cover the same part
 * of any resolution, edges rounded outward (float error aside), clipped at the frame,
 * and nothing outside them is touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/privacy.h"

/* A white w x h image with `pad` spare bytes per row. */
static uint8_t *white(int w, int h, int pad, int *stride)
{
    *stride = 3 * w + pad;
    uint8_t *p = malloc((size_t)*stride * (size_t)h);
    memset(p, 255, (size_t)*stride * (size_t)h);
    return p;
}

static size_t black_pixels(const uint8_t *p, int w, int h, int stride)
{
    size_t n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            n += p[y * stride + 3 * x] == 0 && p[y * stride + 3 * x + 1] == 0 &&
                 p[y * stride + 3 * x + 2] == 0;
    return n;
}

static void test_same_part_at_any_size(void **state)
{
    (void)state;
    const vg_mask_t m = {0.25, 0.5, 0.5, 0.25};
    static const int sizes[][2] = {{640, 360}, {1280, 960}, {1920, 1080}, {320, 240}};
    for (size_t i = 0; i < VG_ARRAY_LEN(sizes); i++) {
        int w = sizes[i][0], h = sizes[i][1], stride;
        uint8_t *p = white(w, h, 5, &stride);
        vg_privacy_apply(p, w, h, stride, &m, 1);
        assert_int_equal(black_pixels(p, w, h, stride), (size_t)(w / 2) * (size_t)(h / 4));
        assert_int_equal(p[(h / 2) * stride + 3 * (w / 4)], 0);           /* first */
        assert_int_equal(p[(h / 2 - 1) * stride + 3 * (w / 4)], 255);     /* above */
        assert_int_equal(p[(h / 2) * stride + 3 * (w / 4 - 1)], 255);     /* left */
        assert_int_equal(p[(3 * h / 4) * stride + 3 * (3 * w / 4)], 255); /* past */
        assert_int_equal(p[(h / 2) * stride + 3 * w], 255);               /* padding */
        free(p);
    }
}

static void test_rounding_and_clipping(void **state)
{
    (void)state;
    int stride;
    uint8_t *p = white(640, 360, 0, &stride);
    const vg_mask_t exact = {0.05, 0.0, 0.1, 0.1}; /* 0.15 * 640 = 96.00000000000001 */
    vg_privacy_apply(p, 640, 360, stride, &exact, 1);
    assert_int_equal(black_pixels(p, 640, 360, stride), 64 * 36);
    free(p);
    p = white(10, 10, 0, &stride);
    const vg_mask_t part = {0.15, 0.15, 0.1, 0.1}; /* pixels 1.5..2.5: 1 and 2 */
    vg_privacy_apply(p, 10, 10, stride, &part, 1);
    assert_int_equal(black_pixels(p, 10, 10, stride), 4);
    free(p);
    p = white(10, 10, 0, &stride);
    const vg_mask_t over[] = {{0.8, 0.8, 0.5, 0.5}, {0, 0, 0, 0.5}, {-1, -1, 1.05, 1.05}};
    vg_privacy_apply(p, 10, 10, stride, over, VG_ARRAY_LEN(over));
    assert_int_equal(black_pixels(p, 10, 10, stride), 4 + 1);
    vg_privacy_apply(NULL, 10, 10, stride, over, 1);
    vg_privacy_apply(p, 10, 10, 3, over, 1); /* stride too small: nothing */
    free(p);
}

static void test_copy(void **state)
{
    (void)state;
    const vg_mask_t m[2] = {{0, 0, 1, 1}, {0.5, 0.5, 0.1, 0.1}};
    vg_mask_t *c = vg_privacy_copy(m, 2);
    assert_memory_equal(c, m, sizeof(m));
    free(c);
    assert_null(vg_privacy_copy(m, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_part_at_any_size),
        cmocka_unit_test(test_rounding_and_clipping),
        cmocka_unit_test(test_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
