/* decode_policy.c — the capture thread's decode policy (see decode_policy.h): still
 * rooms decode one keyframe per still_interval_s, active rooms each GOP up to the last
 * picture sampling keeps in it. Pure functions over a caller-owned struct. */
#include "vigil/decode_policy.h"

#include <math.h>
#include <string.h>

#define DEFAULT_STILL_AFTER_S 3.0
#define DEFAULT_SIZE_FACTOR 3.0
#define SAMPLER_TOLERANCE_S 0.005 /* as in sampler.c: a picture this early takes its slot */
#define KEYFRAME_SLACK 1.05       /* as in sampler.c: keyframes alone serve fps */

void vg_decode_policy_set_cfg(vg_decode_policy_t *p, const vg_dp_cfg_t *cfg)
{
    p->cfg = *cfg;
    if (p->cfg.still_interval_s < 0) p->cfg.still_interval_s = 0;
    if (p->cfg.still_after_s <= 0) p->cfg.still_after_s = DEFAULT_STILL_AFTER_S;
    if (p->cfg.size_factor <= 1) p->cfg.size_factor = DEFAULT_SIZE_FACTOR;
    if (p->cfg.still_interval_s == 0) p->active = true;
}

void vg_decode_policy_init(vg_decode_policy_t *p, const vg_dp_cfg_t *cfg)
{
    memset(p, 0, sizeof(*p));
    p->active = true;
    p->key_pts = p->last_still = p->still_since = p->last_pts = NAN;
    vg_decode_policy_set_cfg(p, cfg);
}

bool vg_decode_policy_active(const vg_decode_policy_t *p)
{
    return p->active;
}

static void note_time(vg_decode_policy_t *p, double pts)
{
    if (isnan(pts)) return;
    double d = pts - p->last_pts;
    if (d > 0 && d < 1.0) p->frame_dur = p->frame_dur > 0 ? 0.875 * p->frame_dur + 0.125 * d : d;
    p->last_pts = pts;
}

static int median_size(const vg_decode_policy_t *p)
{
    int v[VG_DP_SIZES];
    int n = p->n_sizes;
    memcpy(v, p->sizes, (size_t)n * sizeof(v[0]));
    for (int i = 1; i < n; i++) { /* insertion sort: 32 values at most */
        int x = v[i], j = i - 1;
        for (; j >= 0 && v[j] > x; j--)
            v[j + 1] = v[j];
        v[j + 1] = x;
    }
    return v[n / 2];
}

/* Still room: a keyframe when the interval has passed; a P-frame only when its size
 * says the view changed. */
static vg_dp_verdict_t still_packet(vg_decode_policy_t *p, const vg_dp_packet_t *pkt)
{
    if (pkt->is_key) {
        double tol = p->frame_dur > 0 ? p->frame_dur / 2 : 0.01;
        if (isnan(pkt->pts) || isnan(p->last_still) ||
            pkt->pts - p->last_still >= p->cfg.still_interval_s - tol) {
            p->last_still = pkt->pts;
            return VG_DP_DECODE;
        }
        return VG_DP_HOLD;
    }
    if (p->n_sizes >= VG_DP_MIN_SIZES &&
        (double)pkt->size > p->cfg.size_factor * (double)median_size(p)) {
        p->active = true;
        p->still_since = NAN;
        p->triggers++;
        return VG_DP_DECODE_HELD;
    }
    p->sizes[p->size_pos] = pkt->size;
    p->size_pos = (p->size_pos + 1) % VG_DP_SIZES;
    if (p->n_sizes < VG_DP_SIZES) p->n_sizes++;
    return VG_DP_HOLD;
}

/* Active room: decode while sampling still keeps a picture in this GOP. */
static vg_dp_verdict_t active_packet(const vg_decode_policy_t *p, const vg_dp_packet_t *pkt,
                                     double key_interval, double fps, double due)
{
    if (isnan(due) || isnan(pkt->pts) || isnan(p->key_pts) || key_interval <= 0 ||
        p->frame_dur <= 0)
        return VG_DP_DECODE;                  /* not enough known to skip anything */
    if (fps * key_interval <= KEYFRAME_SLACK) /* keyframes alone serve the rate */
        return pkt->is_key && due <= pkt->pts + SAMPLER_TOLERANCE_S ? VG_DP_DECODE : VG_DP_SKIP;
    double last_in_gop = p->key_pts + key_interval - p->frame_dur;
    return due <= last_in_gop + p->frame_dur / 2 ? VG_DP_DECODE : VG_DP_SKIP;
}

vg_dp_verdict_t vg_decode_policy_packet(vg_decode_policy_t *p, const vg_dp_packet_t *pkt,
                                        double key_interval, double fps, double due)
{
    note_time(p, pkt->pts);
    if (pkt->is_key) p->key_pts = pkt->pts;
    if (!p->active) return still_packet(p, pkt);
    return active_packet(p, pkt, key_interval, fps, due);
}

bool vg_decode_policy_judge(vg_decode_policy_t *p, double pts, bool changed)
{
    if (!p->active) {
        if (!changed) return false;
        p->active = true;
        p->still_since = NAN;
        return true;
    }
    if (changed || isnan(pts)) {
        p->still_since = NAN;
        return false;
    }
    if (isnan(p->still_since)) p->still_since = pts;
    if (p->cfg.still_interval_s <= 0 || pts - p->still_since < p->cfg.still_after_s) return false;
    p->active = false;
    p->last_still = pts;
    p->still_since = NAN;
    return true;
}
