/* Unit tests for sampler.c: the sampling grid, its wall-clock fallback, keyframe
 * interval measurement and the keyframe-only decision. Deterministic: no FFmpeg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>

#include "vigil/sampler.h"

/* Feeds n pictures at src_fps (stream time from t0, wall time from 100 + same offset)
 * and returns how many were kept at fps. */
static int feed(vg_sampler_t *s, double src_fps, int n, double t0, double fps)
{
    int kept = 0;
    for (int i = 0; i < n; i++) {
        double ts = t0 + i / src_fps;
        kept += vg_sampler_take(s, ts, 100 + ts, fps);
    }
    return kept;
}

static void test_grid_rates(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 150, 0, 5), 50); /* every third picture, exactly */
    vg_sampler_reset(&s);
    int kept = feed(&s, 15, 150, 0, 4); /* not a divisor: 4/s on average */
    assert_in_range(kept, 39, 41);
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 150, 0, 30), 150); /* faster than the source: all */
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 25, 250, 0, 0.5), 5);
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 16, 0, 1), 2); /* the first picture, then one per second */
}

static void test_jittery_timestamps(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    int kept = 0;
    for (int i = 0; i < 300; i++) { /* 15 fps with +-8 ms of clock jitter */
        double ts = i / 15.0 + ((i * 7919) % 17 - 8) / 1000.0;
        kept += vg_sampler_take(&s, ts, 100 + ts, 5);
    }
    assert_in_range(kept, 98, 101);
}

static void test_wall_fallback(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    int kept = 0;
    for (int i = 0; i < 150; i++) /* no timestamps at all: wall clock */
        kept += vg_sampler_take(&s, NAN, 100 + i / 15.0, 5);
    assert_int_equal(kept, 50);

    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 30, 10, 5), 10);
    /* Timestamps jump back: the grid moves to wall time, and the first picture is kept. */
    assert_true(vg_sampler_wants(&s, 3.0, 200));
    assert_true(vg_sampler_take(&s, 3.0, 200, 5));
    assert_true(s.wall);
    assert_false(vg_sampler_take(&s, 3.1, 200.1, 5));
    assert_true(vg_sampler_take(&s, 3.2, 200.2, 5));
    /* ...and stays there, whatever the stream clock says, until reset. */
    assert_false(vg_sampler_take(&s, 50.0, 200.3, 5));
    assert_true(vg_sampler_take(&s, 50.1, 200.4, 5));
    vg_sampler_reset(&s);
    assert_false(s.wall);
}

static void test_gap_restarts_grid(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 15, 0, 2), 2);
    assert_true(vg_sampler_take(&s, 30.0, 130, 2)); /* 30 s later: kept at once */
    assert_false(vg_sampler_take(&s, 30.2, 130.2, 2));
    assert_true(vg_sampler_take(&s, 30.5, 130.5, 2)); /* then every 0.5 s from there */
}

static void test_wants_matches_take(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    for (int i = 0; i < 100; i++) {
        double ts = i / 15.0;
        bool want = vg_sampler_wants(&s, ts, 100 + ts);
        assert_int_equal(want, vg_sampler_take(&s, ts, 100 + ts, 3));
    }
}

static void test_fps_change(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    assert_int_equal(feed(&s, 15, 150, 0, 5), 50);
    assert_int_equal(feed(&s, 15, 150, 10, 1), 10); /* the next 10 s at 1 fps */
}

static void test_keyframe_interval(void **state)
{
    (void)state;
    vg_sampler_t s;
    vg_sampler_reset(&s);
    assert_true(vg_sampler_keyframe_interval(&s) == 0);
    assert_false(vg_sampler_keyframe_only(&s, 0.01)); /* unknown: decode everything */
    assert_true(vg_sampler_note_keyframe(&s, 0) == 0);
    assert_true(vg_sampler_note_keyframe(&s, 2) == 2);
    assert_true(vg_sampler_note_keyframe(&s, 4) == 2);
    assert_true(vg_sampler_keyframe_only(&s, 0.5));
    assert_true(vg_sampler_keyframe_only(&s, 0.52)); /* within the slack */
    assert_false(vg_sampler_keyframe_only(&s, 0.6));
    assert_false(vg_sampler_keyframe_only(&s, 1));
    /* Nonsense gaps are ignored: none, backwards, over a minute. */
    vg_sampler_note_keyframe(&s, NAN);
    vg_sampler_note_keyframe(&s, 10);
    vg_sampler_note_keyframe(&s, 9);
    vg_sampler_note_keyframe(&s, 200);
    assert_true(vg_sampler_keyframe_interval(&s) == 2);
    /* The longest of the last four gaps. */
    vg_sampler_note_keyframe(&s, 203);
    assert_true(vg_sampler_keyframe_interval(&s) == 3);
    for (int i = 1; i <= 4; i++)
        vg_sampler_note_keyframe(&s, 203 + i);
    assert_true(vg_sampler_keyframe_interval(&s) == 1);
    assert_true(vg_sampler_keyframe_only(&s, 1));
    vg_sampler_reset(&s);
    assert_true(vg_sampler_keyframe_interval(&s) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_rates),         cmocka_unit_test(test_jittery_timestamps),
        cmocka_unit_test(test_wall_fallback),      cmocka_unit_test(test_gap_restarts_grid),
        cmocka_unit_test(test_wants_matches_take), cmocka_unit_test(test_fps_change),
        cmocka_unit_test(test_keyframe_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
