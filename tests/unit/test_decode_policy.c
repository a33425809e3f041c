/* Unit tests for decode_policy.c on synthetic packet sequences: a camera of src_fps
 * pictures a second with a keyframe every gop_s, P-frame sizes that may or may not grow
 * while the view moves, and the real sampler (sampler.c) choosing the kept pictures the
 * way the capture thread does. Deterministic: no FFmpeg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>

#include "vigil/decode_policy.h"
#include "vigil/sampler.h"

#define WARM_S 4.0 /* counts start here: the keyframe interval is known by then */

typedef struct {
    double src_fps, gop_s, fps, still_interval_s, seconds;
    double move_from, move_to; /* the view moves in [from, to) */
    int p_still, p_moving;     /* P-frame sizes (bytes) */
    bool noisy;                /* still P-frames vary +-25 % */
} cam_t;

typedef struct {
    int decoded, decoded_keys, sampled, missed, held_decodes;
    int decoded_after[64], sampled_after[64]; /* per GOP, from t_count on: counts */
    double first_change_decode;               /* stream time; NAN if none */
    int last_decoded_idx[64], last_sampled_idx[64];
    bool active_at_end;
} sim_t;

static bool moving(const cam_t *c, double t)
{
    return t >= c->move_from && t < c->move_to;
}

static int p_size(const cam_t *c, int i, double t)
{
    if (moving(c, t)) return c->p_moving;
    return c->noisy ? c->p_still + (int)((i * 7919) % 1000) - 500 : c->p_still;
}

/* A decoded picture: sampling, and the policy's judge where the capture judges. */
static void picture(const cam_t *c, vg_decode_policy_t *p, vg_sampler_t *s, sim_t *o, int i,
                    double t, bool key)
{
    bool count = t >= WARM_S;
    o->decoded += count;
    o->decoded_keys += key && count;
    int g = (int)(t / c->gop_s);
    if (g < 64) o->last_decoded_idx[g] = i;
    if (moving(c, t) && isnan(o->first_change_decode)) o->first_change_decode = t;
    bool taken = vg_sampler_take(s, t, 100 + t, c->fps);
    if (taken) {
        o->sampled += count;
        if (g < 64) o->last_sampled_idx[g] = i;
    }
    if (taken || !vg_decode_policy_active(p)) vg_decode_policy_judge(p, t, moving(c, t));
}

static sim_t run(const cam_t *c)
{
    sim_t o = {.first_change_decode = NAN};
    for (int g = 0; g < 64; g++)
        o.last_decoded_idx[g] = o.last_sampled_idx[g] = -1;
    vg_decode_policy_t p;
    vg_dp_cfg_t cfg = {.still_interval_s = c->still_interval_s};
    vg_decode_policy_init(&p, &cfg);
    vg_sampler_t s;
    vg_sampler_reset(&s);
    int gop = (int)lround(c->gop_s * c->src_fps), held = 0, n = (int)(c->seconds * c->src_fps);
    bool base = false; /* every packet of this GOP so far was decoded or held */
    for (int i = 0; i < n; i++) {
        double t = i / c->src_fps;
        bool key = i % gop == 0;
        double interval = key ? vg_sampler_note_keyframe(&s, t) : vg_sampler_keyframe_interval(&s);
        vg_dp_packet_t pkt = {.is_key = key, .size = key ? 40000 : p_size(c, i, t), .pts = t};
        double due = s.started ? s.next_due : NAN;
        vg_dp_verdict_t v = vg_decode_policy_packet(&p, &pkt, interval, c->fps, due);
        if (key) {
            base = true;
            held = 0;
        }
        if ((v == VG_DP_DECODE || v == VG_DP_DECODE_HELD) && base) {
            o.decoded += t >= WARM_S ? held : 0; /* held pictures: decoded, not sampled */
            o.held_decodes += v == VG_DP_DECODE_HELD;
            held = 0;
            picture(c, &p, &s, &o, i, t, key);
        } else if (v == VG_DP_HOLD && base) {
            held++;
            if (vg_sampler_take(&s, t, 100 + t, c->fps) && t >= WARM_S) o.sampled++; /* repeat */
        } else {
            base = false;
            held = 0;
            o.missed += vg_sampler_wants(&s, t, 100 + t);
        }
    }
    o.active_at_end = vg_decode_policy_active(&p);
    return o;
}

static void test_still_decodes_keyframes_at_interval(void **state)
{
    (void)state;
    cam_t c = {.src_fps = 15,
               .gop_s = 1,
               .fps = 1,
               .still_interval_s = 2,
               .seconds = 60,
               .move_from = 1e9,
               .move_to = 1e9,
               .p_still = 3000,
               .noisy = true};
    sim_t o = run(&c);
    /* active for the first still_after_s (3 s: 3 keyframes), then one keyframe per 2 s */
    assert_int_equal(o.decoded, o.decoded_keys);
    assert_in_range(o.decoded, 27, 29);
    assert_in_range(o.sampled, 55, 57); /* results keep the stream's rate */
    assert_int_equal(o.missed, 0);
    assert_false(o.active_at_end);
    c.still_interval_s = 0; /* off: every keyframe sampling wants */
    o = run(&c);
    assert_int_equal(o.decoded, 56);
    assert_true(o.active_at_end);
}

static void test_big_p_frame_triggers_at_once(void **state)
{
    (void)state;
    cam_t c = {.src_fps = 15,
               .gop_s = 4,
               .fps = 1,
               .still_interval_s = 2,
               .seconds = 40,
               .move_from = 20.3,
               .move_to = 23,
               .p_still = 3000,
               .p_moving = 30000,
               .noisy = true};
    sim_t o = run(&c);
    assert_int_equal(o.held_decodes, 1);
    assert_false(isnan(o.first_change_decode));
    assert_true(o.first_change_decode - c.move_from < 1.0 / 15 + 1e-6);
    assert_false(o.active_at_end); /* still again after the movement */
}

static void test_cbr_caught_at_next_keyframe(void **state)
{
    (void)state;
    for (double gop = 1; gop <= 4; gop *= 2) {
        cam_t c = {.src_fps = 15,
                   .gop_s = gop,
                   .fps = 1,
                   .still_interval_s = 2,
                   .seconds = 60,
                   .move_from = 20.3,
                   .move_to = 40,
                   .p_still = 9000,
                   .p_moving = 9000};
        sim_t o = run(&c);
        assert_int_equal(o.held_decodes, 0); /* sizes never grow: no early trigger */
        assert_false(isnan(o.first_change_decode));
        double delay = o.first_change_decode - c.move_from;
        double next_key = ceil(c.move_from / gop) * gop - c.move_from;
        assert_true(delay >= next_key - 1e-6);
        assert_true(delay <= c.still_interval_s + gop + 1e-6);
        assert_true(fmod(o.first_change_decode + 1e-9, gop) < 1e-6); /* a keyframe */
    }
}

static void test_active_gop_decodes_up_to_last_sample(void **state)
{
    (void)state;
    cam_t c = {.src_fps = 15,
               .gop_s = 2,
               .fps = 1,
               .still_interval_s = 2,
               .seconds = 40,
               .move_from = 0,
               .move_to = 1e9,
               .p_still = 3000,
               .p_moving = 3000};
    sim_t o = run(&c);
    assert_int_equal(o.missed, 0);
    for (int g = 1; g < 19; g++) {
        assert_int_equal(o.last_decoded_idx[g], o.last_sampled_idx[g]);
        assert_int_equal(o.last_decoded_idx[g], g * 30 + 15); /* the picture at 1.0 s */
    }
}

/* Decoded pictures per sampled picture while active, by GOP length and fps (README). */
static void test_ratios(void **state)
{
    (void)state;
    static const struct {
        double gop, fps, ratio;
    } rows[] = {{1, 1, 1.0}, {2, 1, 8.0}, {4, 1, 11.5}, {1, 5, 2.6}, {2, 5, 2.8}, {4, 5, 2.9}};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        cam_t c = {.src_fps = 15,
                   .gop_s = rows[r].gop,
                   .fps = rows[r].fps,
                   .still_interval_s = 2,
                   .seconds = 80,
                   .move_from = 0,
                   .move_to = 1e9,
                   .p_still = 3000,
                   .p_moving = 3000};
        sim_t o = run(&c);
        double ratio = (double)o.decoded / o.sampled;
        print_message("gop %.0f s fps %.0f: decoded/sampled %.2f (%d/%d)\n", rows[r].gop,
                      rows[r].fps, ratio, o.decoded, o.sampled);
        assert_int_equal(o.missed, 0);
        assert_true(fabs(ratio - rows[r].ratio) < 0.05 * rows[r].ratio);
        int want = (int)((80 - WARM_S) * rows[r].fps);
        assert_in_range(o.sampled, want - 1, want + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_still_decodes_keyframes_at_interval),
        cmocka_unit_test(test_big_p_frame_triggers_at_once),
        cmocka_unit_test(test_cbr_caught_at_next_keyframe),
        cmocka_unit_test(test_active_gop_decodes_up_to_last_sample),
        cmocka_unit_test(test_ratios),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
