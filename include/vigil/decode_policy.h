/* decode_policy.h — which packets the capture thread decodes, from the activity of the
 * view: a still room decodes keyframes only, at most one every still_interval_s; an
 * active room decodes each GOP from its keyframe up to the last picture sampling keeps
 * in it, and drops the rest until the next keyframe.
 *
 * The policy sees packets as {is_key, size, pts} and the views of decoded pictures as
 * changed / still (judged by the caller, e.g. with a gate thumbnail); no FFmpeg types.
 * It starts active. Still -> active: a decoded picture shows change, or a P-frame is
 * more than size_factor x the median of the recent still-room P-frame sizes (the early
 * trigger; packet sizes can only add decoding, never remove it: on a constant-bitrate
 * camera it never fires and the keyframe interval bounds the delay). Active -> still:
 * the view stayed still for still_after_s of stream time.
 *
 * Pure computation on a caller-owned struct; one thread at a time per policy. */
#ifndef VIGIL_DECODE_POLICY_H
#define VIGIL_DECODE_POLICY_H

#include <stdbool.h>

#define VG_DP_SIZES 32    /* still-room P-frame sizes remembered */
#define VG_DP_MIN_SIZES 8 /* the size trigger needs this many */

typedef struct {
    double still_interval_s; /* still rooms: one keyframe per this; 0: never still */
    double still_after_s;    /* still this long (stream time) -> still mode; 0: 3 */
    double size_factor;      /* P-frame trigger; 0: 3 */
} vg_dp_cfg_t;

typedef struct {
    bool is_key;
    int size;   /* bytes */
    double pts; /* stream time in seconds; NAN when unknown */
} vg_dp_packet_t;

typedef enum {
    VG_DP_SKIP,        /* do not decode; not needed later */
    VG_DP_HOLD,        /* do not decode now, but keep it: a trigger may need this GOP */
    VG_DP_DECODE,      /* decode it */
    VG_DP_DECODE_HELD, /* triggered: decode the held packets of this GOP, then this one */
} vg_dp_verdict_t;

typedef struct {
    vg_dp_cfg_t cfg;
    bool active;
    double key_pts;     /* this GOP's keyframe, NAN before the first */
    double last_still;  /* pts of the last keyframe decoded while still */
    double still_since; /* active: first pts of the current still streak, NAN if none */
    double last_pts, frame_dur;
    int sizes[VG_DP_SIZES];
    int n_sizes, size_pos;
    unsigned long long triggers; /* still -> active by a P-frame's size */
} vg_decode_policy_t;

/* A new connection (forgets everything) with this configuration. */
void vg_decode_policy_init(vg_decode_policy_t *p, const vg_dp_cfg_t *cfg);
/* Changes the configuration (keeps the state). */
void vg_decode_policy_set_cfg(vg_decode_policy_t *p, const vg_dp_cfg_t *cfg);
/* What to do with a video packet. key_interval: the measured keyframe interval in
 * seconds (0 while unknown); fps: the target sampling rate; due: the stream time of the
 * next picture sampling will keep (NAN when unknown: sampling runs on wall time). */
vg_dp_verdict_t vg_decode_policy_packet(vg_decode_policy_t *p, const vg_dp_packet_t *pkt,
                                        double key_interval, double fps, double due);
/* The caller judged a decoded picture (pts: its stream time). Returns true when this
 * verdict switched the mode (either way). */
bool vg_decode_policy_judge(vg_decode_policy_t *p, double pts, bool changed);
/* True while the view counts as active (decoding what sampling needs). */
bool vg_decode_policy_active(const vg_decode_policy_t *p);

#endif
