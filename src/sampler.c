/* sampler.c — frame-selection policy of the capture thread: a sampling grid in stream
 * time with a wall-clock fallback, keyframe interval measurement, and the keyframe-only
 * decision. Pure functions over a caller-owned struct; one thread per sampler. */
#include "vigil/sampler.h"

#include <math.h>
#include <string.h>

#define TOLERANCE_S 0.005   /* a picture this early still takes its grid slot */
#define KEYFRAME_SLACK 1.05 /* keyframe-only when fps <= 1.05 x keyframe rate */
#define KEY_GAP_MAX_S 60.0

void vg_sampler_reset(vg_sampler_t *s)
{
    memset(s, 0, sizeof(*s));
    s->last_key_ts = NAN;
}

double vg_sampler_keyframe_interval(const vg_sampler_t *s)
{
    double longest = 0;
    for (int i = 0; i < s->n_key_gaps; i++)
        longest = fmax(longest, s->key_gaps[i]);
    return longest;
}

double vg_sampler_note_keyframe(vg_sampler_t *s, double ts)
{
    double gap = ts - s->last_key_ts;
    s->last_key_ts = ts;
    if (!isnan(gap) && gap > 0 && gap <= KEY_GAP_MAX_S) {
        s->key_gaps[s->key_gap_pos] = gap;
        s->key_gap_pos = (s->key_gap_pos + 1) % VG_SAMPLER_KEY_GAPS;
        if (s->n_key_gaps < VG_SAMPLER_KEY_GAPS) s->n_key_gaps++;
    }
    return vg_sampler_keyframe_interval(s);
}

bool vg_sampler_keyframe_only(const vg_sampler_t *s, double fps)
{
    double interval = vg_sampler_keyframe_interval(s);
    return interval > 0 && fps * interval <= KEYFRAME_SLACK;
}

static bool uses_wall(const vg_sampler_t *s, double ts)
{
    return s->wall || isnan(ts) || (s->have_last && ts < s->last_ts);
}

bool vg_sampler_wants(const vg_sampler_t *s, double ts, double now)
{
    bool wall = uses_wall(s, ts);
    if (!s->started || wall != s->wall) return true;
    return (wall ? now : ts) >= s->next_due - TOLERANCE_S;
}

bool vg_sampler_take(vg_sampler_t *s, double ts, double now, double fps)
{
    bool wall = uses_wall(s, ts);
    if (wall != s->wall) { /* switching clocks: start a new grid */
        s->wall = wall;
        s->started = false;
    }
    if (!wall) {
        s->last_ts = ts;
        s->have_last = true;
    }
    double t = wall ? now : ts, step = 1.0 / fps;
    if (s->started && t < s->next_due - TOLERANCE_S) return false;
    s->next_due = s->started ? s->next_due + step : t + step;
    if (s->next_due <= t) /* a gap in the input: restart the grid here */
        s->next_due = t + step;
    s->started = true;
    return true;
}
