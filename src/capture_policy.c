/* capture_policy.c — what a capture thread decodes and keeps: each video packet goes
 * through the decode policy (decode_policy.c: still rooms decode one keyframe per
 * still_interval_s, active rooms each GOP up to the last sampled picture), each decoded
 * picture through the capture's own view-change judge (a gate thumbnail of the luma
 * plane, compared with the reference taken when the view last changed), the sampler,
 * and the mailbox. While the view is still, the sampling slots between decoded
 * keyframes get repeats: the last frame again (same pixels, new seq and times,
 * repeat = true), so results keep the stream's rate.
 *
 * Why the capture judges the view itself rather than reading the executors' gate: the
 * decision is needed at the keyframe, before the next packet, and it must not depend
 * on which workers a stream has or whether their gate is on. It costs one thumbnail of
 * every sampled picture (~0.05 ms at 720p: one pixel in 16).
 *
 * Capture thread only; the session owns the held packets and the last frame. */
#include "capture_internal.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <libavutil/pixdesc.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define MOD VG_CAPTURE_LOG
#define STILL_MIN_CHANGE 0.003 /* fraction of thumbnail cells: as motion_gate.min_change */
#define THUMB_STEP 4           /* read one luma pixel in 4 x 4 */

void vg_capture_account_cpu(vg_capture_t *c)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return;
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (t > c->run.cpu_mark) {
        vg_series_add(c->m.cpu, t - c->run.cpu_mark);
        atomic_store(&c->cpu_s, atomic_load(&c->cpu_s) + (t - c->run.cpu_mark));
    }
    c->run.cpu_mark = t;
}

void vg_capture_policy_begin(vg_capture_t *c, vg_capture_session_t *s)
{
    vg_dp_cfg_t cfg = {.still_interval_s = c->cfg.still_interval_s,
                       .still_after_s = c->cfg.still_after_s};
    vg_decode_policy_init(&s->policy, &cfg);
    if (!s->gate) s->gate = vg_xcalloc(1, sizeof(*s->gate));
    atomic_store(&c->still, false);
    vg_series_set(c->m.still, 0);
}

void vg_capture_release_held(vg_capture_session_t *s)
{
    for (int i = 0; i < s->n_held; i++)
        av_packet_free(&s->held[i]);
    s->n_held = 0;
    s->held_bytes = 0;
}

void vg_capture_policy_end(vg_capture_t *c, vg_capture_session_t *s)
{
    vg_capture_release_held(s);
    vg_frame_unref(s->last_frame);
    s->last_frame = NULL;
    av_frame_free(&s->last_pic);
    free(s->gate);
    s->gate = NULL;
    atomic_store(&c->still, false);
    vg_series_set(c->m.still, 0);
}

/* ---- the view's activity ---- */

static void record_delay(vg_capture_t *c, vg_capture_session_t *s)
{
    s->awaiting_change = false;
    if (s->still_seen_mono <= 0) return;
    double d = fmax(0, vg_now_mono() - s->still_seen_mono);
    vg_series_observe(c->m.change_delay, d);
    pthread_mutex_lock(&c->stats_mu);
    c->delays[c->delay_pos] = d;
    c->delay_pos = (c->delay_pos + 1) % VG_CAPTURE_DELAY_RING;
    c->n_delays += c->n_delays < VG_CAPTURE_DELAY_RING;
    pthread_mutex_unlock(&c->stats_mu);
}

/* After the policy may have switched mode: atomics, metrics, a log line. */
static void sync_mode(vg_capture_t *c, vg_capture_session_t *s, const char *trigger)
{
    bool still = !vg_decode_policy_active(&s->policy);
    if (still == atomic_load(&c->still)) return;
    atomic_store(&c->still, still);
    vg_series_set(c->m.still, still);
    if (still) {
        s->awaiting_change = true;
        s->still_seen_mono = vg_now_mono();
    } else {
        vg_capture_count(&c->wakeups, !strcmp(trigger, "size") ? c->m.wake_size : c->m.wake_view);
    }
    VG_INFO(MOD, "capture_activity", "{s:s, s:s, s:s}", "stream_id", c->cfg.stream_id, "view",
            still ? "still" : "active", "trigger", trigger);
}

/* Judges a decoded picture against the reference. Only planar YUV pictures are judged
 * (others count as changed, so such a stream is never treated as still). */
static bool view_changed(vg_capture_session_t *s, const AVFrame *pic)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)pic->format);
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_PAL)) ||
        !(d->flags & AV_PIX_FMT_FLAG_PLANAR) || !pic->data[0])
        return true;
    double change = vg_gate_measure_gray(s->gate, pic->data[0], pic->width, pic->height,
                                         pic->linesize[0], THUMB_STEP);
    return change >= STILL_MIN_CHANGE;
}

static void judge(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic, double ts)
{
    bool changed = view_changed(s, pic);
    if (changed && s->awaiting_change) record_delay(c, s);
    if (!changed && s->awaiting_change) {
        double wall;
        vg_capture_read_time(s, pic->pts, &wall, &s->still_seen_mono);
    }
    if (s->flushing) return; /* held pictures only tell when the change began */
    if (changed) vg_gate_commit(s->gate);
    if (vg_decode_policy_judge(&s->policy, ts, changed)) sync_mode(c, s, "view");
}

/* ---- frames ---- */

/* Posts a frame: its seq is set here, so frames that are built but never posted (a
 * still keyframe between two sampling slots) leave no gap that would count as dropped. */
static void post(vg_capture_t *c, vg_frame_t *f)
{
    f->seq = ++c->run.seq;
    vg_capture_count(&c->sampled, c->m.sampled);
    if (vg_mailbox_post(c->cfg.mailbox, f)) vg_capture_count(&c->dropped, c->m.dropped);
    vg_series_set(c->m.fps, vg_capture_record_sample(c, vg_now_mono()));
}

static void keep_last(vg_capture_session_t *s, vg_frame_t *f, const AVFrame *pic)
{
    vg_frame_unref(s->last_frame);
    s->last_frame = vg_frame_ref(f);
    if (!s->last_pic) s->last_pic = av_frame_alloc();
    VG_CHECK(s->last_pic != NULL);
    av_frame_unref(s->last_pic);
    if (av_frame_ref(s->last_pic, pic) < 0) av_frame_free(&s->last_pic);
}

/* The last frame again, for a sampling slot whose packet was not decoded. */
static vg_frame_t *repeat_frame(const vg_capture_session_t *s, double ts, int64_t pts)
{
    const vg_frame_t *last = s->last_frame;
    vg_frame_t *f = vg_frame_new();
    vg_capture_read_time(s, pts, &f->captured_at, &f->captured_mono);
    f->pts_s = ts;
    f->src_width = last->src_width;
    f->src_height = last->src_height;
    f->repeat = true;
    for (int i = 0; i < last->n_views; i++) {
        const vg_frame_view_t *lv = &last->views[i];
        vg_frame_view_t *v = vg_frame_add_view(f, lv->width, lv->height);
        memcpy(v->data, lv->data, (size_t)lv->stride * (size_t)lv->height);
        v->x = lv->x, v->y = lv->y, v->w = lv->w, v->h = lv->h;
    }
    if (s->last_pic) vg_frame_set_source(f, s->last_pic);
    return f;
}

static void repeat_if_due(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt, double ts,
                          double now)
{
    if (vg_decode_policy_active(&s->policy) || !s->last_frame) return;
    if (!vg_sampler_take(&s->sampler, ts, now, atomic_load(&c->fps))) return;
    vg_frame_t *f = repeat_frame(s, ts, pkt->pts);
    vg_capture_count(&c->repeated, c->m.repeated);
    post(c, f);
}

void vg_capture_on_picture(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic)
{
    double now = vg_now_mono();
    vg_capture_note_picture(c, s, pic, now);
    double ts = vg_capture_stream_time(s, pic->best_effort_timestamp);
    if (s->flushing) {
        judge(c, s, pic, ts);
        return;
    }
    bool still = !vg_decode_policy_active(&s->policy);
    bool take = vg_sampler_take(&s->sampler, ts, now, atomic_load(&c->fps));
    if (!take && !still) return;
    judge(c, s, pic, ts);
    vg_frame_t *f = vg_capture_build_frame(c, s, pic, ts);
    if (!f) return;
    keep_last(s, f, pic);
    if (take)
        post(c, f);
    else
        vg_frame_unref(f); /* a still keyframe between slots: the next repeats show it */
}

/* ---- packets ---- */

/* Keyframe-only decoding when the target fps is at or below the keyframe rate. */
static void update_decode_mode(vg_capture_t *c, vg_capture_session_t *s)
{
    bool ko = vg_sampler_keyframe_only(&s->sampler, atomic_load(&c->fps));
    if (ko == s->keyframe_only) return;
    s->keyframe_only = ko;
    atomic_store(&c->keyframe_only, ko);
    /* Decoding only keyframes, the picture is scaled down a lot for the detectors, and
     * the deblocking filter is ~10 % of an IDR decode on a deblocked (camera-like)
     * stream: skip it. Read per slice by the decoder, so switching is immediate. */
    if (s->dec) s->dec->skip_loop_filter = ko ? AVDISCARD_ALL : AVDISCARD_DEFAULT;
    VG_INFO(MOD, "capture_decode_mode", "{s:s, s:s, s:b, s:f}", "stream_id", c->cfg.stream_id,
            "url", c->cfg.url_redacted, "keyframe_only", ko, "keyframe_interval_s",
            vg_sampler_keyframe_interval(&s->sampler));
}

static void hold(vg_capture_session_t *s, const AVPacket *pkt)
{
    if (s->n_held == VG_CAPTURE_HELD_MAX ||
        s->held_bytes + (size_t)pkt->size > VG_CAPTURE_HELD_BYTES) {
        vg_capture_release_held(s); /* too much: a trigger waits for the next keyframe */
        s->base = false;
        return;
    }
    AVPacket *copy = av_packet_clone(pkt); /* a reference, not a copy, when refcounted */
    VG_CHECK(copy != NULL);
    s->held[s->n_held++] = copy;
    s->held_bytes += (size_t)pkt->size;
}

static void decode_held(vg_capture_t *c, vg_capture_session_t *s)
{
    s->flushing = true;
    for (int i = 0; i < s->n_held; i++)
        vg_capture_decode_packet(c, s, s->held[i]);
    s->flushing = false;
    vg_capture_release_held(s);
}

/* Whether decoding may start at this packet: after a (re)connect or a rewind, only from
 * a keyframe, unless none came for a while (a stream that never flags them). */
static bool key_gate(vg_capture_session_t *s, bool key, double now)
{
    if (!s->need_key) return true;
    if (!key && now < s->need_key_until) return false;
    s->need_key = false;
    s->base = true;
    return true;
}

/* The stream time of the next sampling slot. A sampler on wall time (timestamps went
 * backwards, as RTSP's do once RTCP syncs them) maps its slot to stream time from this
 * packet: live inputs advance both clocks together. NAN when unknown. */
static double next_due(const vg_capture_session_t *s, double ts, double now)
{
    if (!s->sampler.started) return NAN;
    return s->sampler.wall ? ts + (s->sampler.next_due - now) : s->sampler.next_due;
}

void vg_capture_packet(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt)
{
    double now = vg_now_mono();
    bool key = pkt->flags & AV_PKT_FLAG_KEY;
    double ts = vg_capture_stream_time(s, pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts);
    double interval = vg_sampler_keyframe_interval(&s->sampler);
    if (key) {
        interval = vg_sampler_note_keyframe(&s->sampler, ts);
        atomic_store(&c->key_interval, interval);
        vg_capture_release_held(s);
        s->base = true;
    }
    update_decode_mode(c, s);
    if (!key_gate(s, key, now)) return;
    double due = next_due(s, ts, now);
    vg_dp_packet_t dp = {.is_key = key, .size = pkt->size, .pts = ts};
    vg_dp_verdict_t v =
        vg_decode_policy_packet(&s->policy, &dp, interval, atomic_load(&c->fps), due);
    sync_mode(c, s, "size");
    if ((v == VG_DP_DECODE || v == VG_DP_DECODE_HELD) && s->base) {
        decode_held(c, s);
        vg_capture_decode_packet(c, s, pkt);
    } else {
        s->last_progress = now; /* skipped or held by policy: still progress */
        if (v == VG_DP_HOLD && s->base)
            hold(s, pkt);
        else {
            s->base = false;
            vg_capture_release_held(s);
        }
        repeat_if_due(c, s, pkt, ts, now);
    }
    vg_capture_account_cpu(c);
}
