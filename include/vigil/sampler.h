/* sampler.h — the capture thread's frame-selection policy, kept free of FFmpeg so it
 * can be tested on its own: which pictures to keep at a target fps, the keyframe
 * interval measured from the stream, and whether to decode keyframes only.
 *
 * Times are seconds: `ts` is stream time (NAN when the stream has none), `now` is
 * vg_now_mono(). One sampler per connection, used by one thread; plain struct, no
 * allocation (zero-initialise with vg_sampler_reset). */
#ifndef VIGIL_SAMPLER_H
#define VIGIL_SAMPLER_H

#include <stdbool.h>

#define VG_SAMPLER_KEY_GAPS 4

typedef struct {
    /* sampling grid: in stream time, or wall time once timestamps failed */
    bool wall, started, have_last;
    double next_due, last_ts;
    /* keyframe gaps in stream time; the interval is the longest recent gap */
    double last_key_ts;
    double key_gaps[VG_SAMPLER_KEY_GAPS];
    int n_key_gaps, key_gap_pos;
} vg_sampler_t;

/* A new connection: forgets everything. */
void vg_sampler_reset(vg_sampler_t *s);
/* Records a packet's keyframe; returns the keyframe interval (0 while unknown: fewer
 * than two keyframes, or gaps that are not positive or longer than 60 s). */
double vg_sampler_note_keyframe(vg_sampler_t *s, double ts);
double vg_sampler_keyframe_interval(const vg_sampler_t *s);
/* True when fps is at or below the keyframe rate (with 5 % slack for jittery stream
 * clocks): then every kept picture can be a keyframe and other packets need not be
 * decoded. False while the interval is unknown. */
bool vg_sampler_keyframe_only(const vg_sampler_t *s, double fps);

/* Would a picture stamped ts, seen at now, be kept? Does not change the sampler (used
 * to skip decoding keyframes that sampling would drop anyway). */
bool vg_sampler_wants(const vg_sampler_t *s, double ts, double now);
/* Records a decoded picture; true when it is kept. Keeps one picture per 1/fps step of
 * a grid in stream time, so the kept rate is fps on average whatever the source rate
 * (all pictures when the source is slower). Timestamps missing or going backwards
 * switch the grid to wall time until the next reset. */
bool vg_sampler_take(vg_sampler_t *s, double ts, double now, double fps);

#endif
