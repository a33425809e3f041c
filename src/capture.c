/* capture.c — one stream's FFmpeg ingest thread ("cap:<stream_id>").
 *
 * The thread loops over connections: open the input, then read packets, decode, sample
 * at the target fps, convert each kept picture into the configured BGR views (one
 * sws_scale per view) and post a vg_frame_t to the mailbox. When the input fails,
 * stalls or ends (live inputs), it backs off and reconnects; files loop forever, paced
 * in real time by their timestamps. Every blocking FFmpeg call watches an interrupt
 * callback that fires at stop, at restart and at the current deadline.
 *
 * Ownership: the owner thread calls new/start/stop/free and the setters; the capture
 * thread owns every FFmpeg object (session_t) and the `run` fields. They share only
 * atomics, the views (views_mu) and the error/fps-window statistics (stats_mu). */
#include "vigil/capture.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "capture"
#define STABLE_RUN_S 60.0       /* running this long resets the backoff */
#define FPS_WINDOW_S 10.0       /* measured fps: sliding window (longer at low fps) */
#define FPS_RING 320
#define SAMPLE_TOLERANCE_S 0.005
#define KEYFRAME_SLACK 1.05     /* keyframe-only when fps <= 1.05 x keyframe rate */
#define KEY_GAPS 4              /* keyframe interval = longest of the last 4 gaps */
#define KEY_GAP_MAX_S 60.0
#define CLOSE_GRACE_S 0.5       /* lets an RTSP TEARDOWN out when not stopping */
#define READ_AT_RING 64

typedef enum { OUT_OPENED, OUT_STOP, OUT_RESTART, OUT_STALL, OUT_ERROR, OUT_FAILED } outcome_t;

typedef struct {
    vg_series_t *up, *decoded, *sampled, *dropped, *reconnects, *stalls, *target_fps, *fps,
        *decode_s, *info;
} series_t;

/* Chooses the kept pictures: a grid of 1/fps steps in stream time, or in wall time
 * when timestamps are missing or went backwards (until the next connection or loop). */
typedef struct {
    bool wall, started, have_last;
    double next_due, last_ts;
} sampler_t;

/* One connection; capture thread only. */
typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    int vstream;
    AVRational tb;
    bool live, running;
    double running_since, last_progress; /* monotonic */
    bool paced;                          /* non-live: real-time pacing by dts */
    double pace_wall0, pace_ts0, pace_last;
    double last_key_ts;
    double key_gaps[KEY_GAPS];
    int n_key_gaps, key_gap_pos;
    bool keyframe_only, need_key;
    double need_key_until;
    sampler_t sampler;
    struct {
        int64_t pts;
        double wall;
    } read_at[READ_AT_RING];
    int read_at_pos;
    struct SwsContext *sws[VG_CAPTURE_MAX_VIEWS];
    bool convert_warned;
} session_t;

struct vg_capture {
    struct { /* immutable after new */
        char *stream_id, *url, *url_redacted, *transport;
        double stall_s, backoff_initial_s, backoff_max_s, open_s, read_s;
        int threads;
        bool is_file;
        vg_mailbox_t *mailbox;
        vg_capture_state_fn on_state;
        void *on_state_arg;
    } cfg;
    _Atomic double fps;
    pthread_mutex_t views_mu;
    size_t n_views;
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];

    pthread_t thread; /* owner thread: started, joined */
    bool started, joined;
    atomic_bool stop, restart;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;

    atomic_int state;
    atomic_uint_fast64_t decoded, sampled, dropped, reconnects, stalls;
    atomic_bool keyframe_only;
    _Atomic double key_interval, last_decode_s;
    atomic_int src_w, src_h;
    pthread_mutex_t stats_mu;
    char last_error[256];
    double sample_at[FPS_RING];
    int n_samples, sample_pos;
    double sampling_since;
    series_t m;

    struct { /* capture thread only */
        double deadline; /* monotonic; the interrupt callback fires after it */
        uint64_t seq, rng;
        char err[256];
    } run;
};

static const char *const state_names[] = {"connecting", "running", "reconnecting", "stopped",
                                          "failed"};

const char *vg_capture_state_name(vg_capture_state_t s)
{
    return (unsigned)s < VG_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

/* ---- FFmpeg log routing (process-wide, once) ---- */

/* Copies msg to out with every URL-looking token ("scheme://...") redacted. */
static void redact_text(const char *msg, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < len;) {
        size_t tok = strcspn(p, " \t\n'\"");
        char *piece = strndup(p, tok);
        VG_CHECK(piece != NULL);
        char *red = strstr(piece, "://") ? vg_redact_url(piece) : NULL;
        o += (size_t)snprintf(out + o, len - o, "%s", red ? red : piece);
        free(red);
        free(piece);
        p += tok;
        if (*p && o + 1 < len)
            out[o++] = *p++;
    }
    out[o < len ? o : len - 1] = '\0';
}

static void av_log_to_vg(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_WARNING || !vg_log_enabled(VG_LOG_DEBUG))
        return;
    char line[1024], clean[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
    line[strcspn(line, "\n")] = '\0';
    redact_text(line, clean, sizeof(clean));
    VG_DEBUG("ffmpeg", "ffmpeg_log", "{s:i, s:s}", "av_level", level, "msg", clean);
}

static void global_init(void)
{
    av_log_set_callback(av_log_to_vg);
    avformat_network_init();
}

/* ---- shared state helpers ---- */

static void set_error(vg_capture_t *c, const char *what, int averr)
{
    if (averr)
        snprintf(c->run.err, sizeof(c->run.err), "%s %s: %s", what, c->cfg.url_redacted,
                 av_err2str(averr));
    else
        snprintf(c->run.err, sizeof(c->run.err), "%s %s", what, c->cfg.url_redacted);
}

static void set_state(vg_capture_t *c, vg_capture_state_t st, const char *err)
{
    if (err) {
        pthread_mutex_lock(&c->stats_mu);
        snprintf(c->last_error, sizeof(c->last_error), "%s", err);
        pthread_mutex_unlock(&c->stats_mu);
    }
    int old = atomic_exchange(&c->state, (int)st);
    if (old == (int)st)
        return;
    vg_series_set(c->m.up, st == VG_CAPTURE_RUNNING ? 1 : 0);
    vg_log(st == VG_CAPTURE_FAILED ? VG_LOG_WARN : VG_LOG_INFO, MOD, "capture_state",
           "{s:s, s:s, s:s, s:s, s:s?}", "stream_id", c->cfg.stream_id, "url",
           c->cfg.url_redacted, "state", state_names[st], "from", state_names[old], "error",
           err);
    if (c->cfg.on_state)
        c->cfg.on_state(c->cfg.on_state_arg, c->cfg.stream_id, st, err);
}

static bool should_abort(const vg_capture_t *c)
{
    return atomic_load(&c->stop) || atomic_load(&c->restart);
}

static int interrupt_cb(void *opaque)
{
    vg_capture_t *c = opaque;
    return should_abort(c) || vg_now_mono() > c->run.deadline;
}

/* Sleeps up to `seconds`, waking at once on stop or restart. True when woken so. */
static bool wait_interruptible(vg_capture_t *c, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (seconds > 0 ? seconds : 0);
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&c->wake_mu);
    while (!should_abort(c)) {
        if (pthread_cond_timedwait(&c->wake_cv, &c->wake_mu, &ts) != 0)
            break;
    }
    pthread_mutex_unlock(&c->wake_mu);
    return should_abort(c);
}

static void wake(vg_capture_t *c, atomic_bool *flag)
{
    pthread_mutex_lock(&c->wake_mu);
    atomic_store(flag, true);
    pthread_cond_broadcast(&c->wake_cv);
    pthread_mutex_unlock(&c->wake_mu);
}

/* Measured sampled fps: over the last window, or since sampling began when shorter. */
static double fps_locked(const vg_capture_t *c, double now, double target)
{
    double window = fmax(FPS_WINDOW_S, 5.0 / target);
    int n = 0;
    double oldest = now, newest = 0;
    for (int i = 0; i < c->n_samples; i++) {
        double t = c->sample_at[(c->sample_pos - 1 - i + FPS_RING) % FPS_RING];
        if (t <= now - window)
            break;
        n++;
        oldest = t;
        newest = fmax(newest, t);
    }
    if (n == 0)
        return 0;
    if (now - c->sampling_since >= window)
        return n / window;
    return n >= 2 && newest > oldest ? (n - 1) / (newest - oldest) : 0;
}

static double record_sample(vg_capture_t *c, double now)
{
    pthread_mutex_lock(&c->stats_mu);
    if (c->n_samples == 0)
        c->sampling_since = now;
    c->sample_at[c->sample_pos] = now;
    c->sample_pos = (c->sample_pos + 1) % FPS_RING;
    c->n_samples += c->n_samples < FPS_RING;
    double fps = fps_locked(c, now, atomic_load(&c->fps));
    pthread_mutex_unlock(&c->stats_mu);
    return fps;
}

static void reset_samples(vg_capture_t *c)
{
    pthread_mutex_lock(&c->stats_mu);
    c->n_samples = 0;
    pthread_mutex_unlock(&c->stats_mu);
    vg_series_set(c->m.fps, 0);
}

static void count(atomic_uint_fast64_t *counter, vg_series_t *series)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    vg_series_inc(series);
}

/* ---- sampling ---- */

static bool sampler_uses_wall(const sampler_t *s, double ts)
{
    return s->wall || isnan(ts) || (s->have_last && ts < s->last_ts);
}

/* Would a picture stamped ts (stream seconds, NAN if none), seen at `now`, be kept? */
static bool sampler_wants(const sampler_t *s, double ts, double now)
{
    bool wall = sampler_uses_wall(s, ts);
    if (!s->started || wall != s->wall)
        return true;
    return (wall ? now : ts) >= s->next_due - SAMPLE_TOLERANCE_S;
}

/* Records a decoded picture; true when sampling keeps it. */
static bool sampler_take(sampler_t *s, double ts, double now, double interval)
{
    bool wall = sampler_uses_wall(s, ts);
    if (wall != s->wall) {
        s->wall = wall;
        s->started = false;
    }
    if (!wall) {
        s->last_ts = ts;
        s->have_last = true;
    }
    double t = wall ? now : ts;
    if (s->started && t < s->next_due - SAMPLE_TOLERANCE_S)
        return false;
    s->next_due = s->started ? s->next_due + interval : t + interval;
    if (s->next_due <= t) /* a gap: restart the grid here */
        s->next_due = t + interval;
    s->started = true;
    return true;
}

/* ---- per-packet policy: pacing, keyframes, decode mode ---- */

static double ts_seconds(int64_t ts, AVRational tb)
{
    return ts == AV_NOPTS_VALUE ? NAN : (double)ts * av_q2d(tb);
}

/* Non-live inputs: waits until the packet's dts is due in real time, like ffmpeg -re.
 * False when stop or restart interrupted the wait. */
static bool pace(vg_capture_t *c, session_t *s, const AVPacket *pkt)
{
    double t = ts_seconds(pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts, s->tb);
    if (s->live || isnan(t))
        return true;
    double now = vg_now_mono();
    double due = s->pace_wall0 + (t - s->pace_ts0);
    if (!s->paced || t < s->pace_last || t > s->pace_last + 10 || now - due > 1.0) {
        s->paced = true; /* start, discontinuity, or fell behind: re-anchor */
        s->pace_wall0 = now;
        s->pace_ts0 = t;
        due = now;
    }
    s->pace_last = t;
    return due <= now || !wait_interruptible(c, due - now);
}

static void note_keyframe(vg_capture_t *c, session_t *s, double ts)
{
    double gap = ts - s->last_key_ts;
    bool had = !isnan(s->last_key_ts);
    s->last_key_ts = ts;
    if (!had || isnan(ts) || gap <= 0 || gap > KEY_GAP_MAX_S)
        return;
    s->key_gaps[s->key_gap_pos] = gap;
    s->key_gap_pos = (s->key_gap_pos + 1) % KEY_GAPS;
    s->n_key_gaps += s->n_key_gaps < KEY_GAPS;
    double longest = 0;
    for (int i = 0; i < s->n_key_gaps; i++)
        longest = fmax(longest, s->key_gaps[i]);
    atomic_store(&c->key_interval, longest);
}

/* Keyframe-only decoding when the target fps is at or below the keyframe rate. */
static void update_decode_mode(vg_capture_t *c, session_t *s)
{
    double interval = s->n_key_gaps ? atomic_load(&c->key_interval) : 0;
    bool ko = interval > 0 && atomic_load(&c->fps) <= KEYFRAME_SLACK / interval;
    if (ko == s->keyframe_only)
        return;
    s->keyframe_only = ko;
    atomic_store(&c->keyframe_only, ko);
    if (!ko) { /* resume full decoding at the next keyframe */
        s->need_key = true;
        s->need_key_until = vg_now_mono() + c->cfg.stall_s / 2;
    }
    VG_INFO(MOD, "capture_decode_mode", "{s:s, s:s, s:b, s:f}", "stream_id", c->cfg.stream_id,
            "url", c->cfg.url_redacted, "keyframe_only", ko, "keyframe_interval_s", interval);
}

/* Whether this video packet goes to the decoder. Packets skipped by choice count as
 * progress for stall detection; waiting for a first keyframe does not (for long). */
static bool want_packet(vg_capture_t *c, session_t *s, const AVPacket *pkt, double now)
{
    bool key = pkt->flags & AV_PKT_FLAG_KEY;
    double ts = ts_seconds(pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts, s->tb);
    if (key)
        note_keyframe(c, s, ts);
    update_decode_mode(c, s);
    if (s->need_key) {
        if (!key && now < s->need_key_until)
            return false;
        s->need_key = false;
    }
    if (!s->keyframe_only)
        return true;
    if (!key || !sampler_wants(&s->sampler, ts, now)) {
        s->last_progress = now;
        return false;
    }
    return true;
}

static void remember_read_time(session_t *s, const AVPacket *pkt)
{
    s->read_at[s->read_at_pos].pts = pkt->pts;
    s->read_at[s->read_at_pos].wall = vg_now_wall();
    s->read_at_pos = (s->read_at_pos + 1) % READ_AT_RING;
}

/* Wall time when the packet of this picture was read (now if unknown). */
static double read_time_of(const session_t *s, int64_t pts)
{
    for (int i = 1; pts != AV_NOPTS_VALUE && i <= READ_AT_RING; i++) { /* newest first */
        int k = (s->read_at_pos - i + READ_AT_RING) % READ_AT_RING;
        if (s->read_at[k].pts == pts && s->read_at[k].wall > 0)
            return s->read_at[k].wall;
    }
    return vg_now_wall();
}

/* ---- kept pictures ---- */

static const char *pix_fmt_name(int fmt)
{
    const char *name = av_get_pix_fmt_name((enum AVPixelFormat)fmt);
    return name ? name : "unknown";
}

static size_t copy_views(vg_capture_t *c, vg_capture_view_t *views)
{
    pthread_mutex_lock(&c->views_mu);
    size_t n = c->n_views;
    memcpy(views, c->views, n * sizeof(*views));
    pthread_mutex_unlock(&c->views_mu);
    return n;
}

/* Builds the frame of a kept picture: one conversion per view. NULL on failure. */
static vg_frame_t *build_frame(vg_capture_t *c, session_t *s, const AVFrame *pic, double ts)
{
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];
    size_t n = copy_views(c, views);
    vg_frame_t *f = vg_frame_new();
    f->captured_at = read_time_of(s, pic->pts);
    f->pts_s = ts;
    f->src_width = pic->width;
    f->src_height = pic->height;
    for (size_t i = 0; i < n; i++) {
        const vg_capture_view_t *cv = &views[i];
        vg_frame_view_t *v = vg_frame_add_view(f, cv->out_w, cv->out_h);
        int r[4];
        int rc = vg_frame_convert_bgr(&s->sws[i], pic, cv->x, cv->y, cv->w, cv->h, v->data,
                                      v->width, v->height, v->stride, r);
        if (rc != VG_OK) {
            if (!s->convert_warned)
                VG_WARN(MOD, "capture_convert_failed", "{s:s, s:s, s:s, s:i}", "stream_id",
                        c->cfg.stream_id, "url", c->cfg.url_redacted, "pix_fmt",
                        pix_fmt_name(pic->format),
                        "code", rc);
            s->convert_warned = true;
            vg_frame_unref(f);
            return NULL;
        }
        v->x = r[0], v->y = r[1], v->w = r[2], v->h = r[3];
    }
    vg_frame_set_source(f, pic);
    f->seq = ++c->run.seq;
    return f;
}

static void note_picture(vg_capture_t *c, session_t *s, const AVFrame *pic, double now)
{
    s->last_progress = now;
    count(&c->decoded, c->m.decoded);
    int old_w = atomic_exchange(&c->src_w, pic->width);
    int old_h = atomic_exchange(&c->src_h, pic->height);
    if (old_w != pic->width || old_h != pic->height)
        VG_INFO(MOD, "capture_resolution", "{s:s, s:s, s:i, s:i, s:s}", "stream_id",
                c->cfg.stream_id, "url", c->cfg.url_redacted, "width", pic->width, "height",
                pic->height, "pix_fmt",
                pix_fmt_name(pic->format));
    if (!s->running) {
        s->running = true;
        s->running_since = now;
        set_state(c, VG_CAPTURE_RUNNING, NULL);
    }
}

static void handle_picture(vg_capture_t *c, session_t *s, const AVFrame *pic)
{
    double now = vg_now_mono();
    note_picture(c, s, pic, now);
    double ts = ts_seconds(pic->best_effort_timestamp, s->tb);
    if (!sampler_take(&s->sampler, ts, now, 1.0 / atomic_load(&c->fps)))
        return;
    vg_frame_t *f = build_frame(c, s, pic, ts);
    if (!f)
        return;
    count(&c->sampled, c->m.sampled);
    if (vg_mailbox_post(c->cfg.mailbox, f))
        count(&c->dropped, c->m.dropped);
    vg_series_set(c->m.fps, record_sample(c, now));
}

/* Sends one packet and drains the decoder. Decode errors are not fatal: a corrupt
 * packet costs one picture, and a decoder that never recovers shows up as a stall. */
static void decode_packet(vg_capture_t *c, session_t *s, const AVPacket *pkt)
{
    double t0 = vg_now_mono();
    int rc = avcodec_send_packet(s->dec, pkt);
    if (rc < 0 && rc != AVERROR(EAGAIN))
        VG_DEBUG(MOD, "capture_decode_error", "{s:s, s:s}", "stream_id", c->cfg.stream_id,
                 "error", av_err2str(rc));
    double spent = vg_now_mono() - t0;
    for (;;) {
        double t1 = vg_now_mono();
        rc = avcodec_receive_frame(s->dec, s->frame);
        spent += vg_now_mono() - t1;
        if (rc < 0)
            break;
        handle_picture(c, s, s->frame);
        av_frame_unref(s->frame);
    }
    atomic_store(&c->last_decode_s, spent);
    vg_series_observe(c->m.decode_s, spent);
}

/* ---- one connection ---- */

static bool url_has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

static AVDictionary *input_options(const vg_capture_t *c)
{
    AVDictionary *opts = NULL;
    char us[32];
    snprintf(us, sizeof(us), "%lld", (long long)(c->cfg.read_s * 1e6));
    if (url_has_scheme(c->cfg.url, "rtsp") || url_has_scheme(c->cfg.url, "rtsps")) {
        av_dict_set(&opts, "rtsp_transport", c->cfg.transport, 0);
        av_dict_set(&opts, "timeout", us, 0); /* socket I/O, µs (FFmpeg >= 5: not stimeout) */
        av_dict_set(&opts, "allowed_media_types", "video", 0);
    } else if (!c->cfg.is_file) {
        av_dict_set(&opts, "rw_timeout", us, 0); /* any AVIO protocol, µs */
    }
    return opts;
}

static bool is_permanent(const vg_capture_t *c, int rc)
{
    if (c->cfg.is_file)
        return true; /* a local file answers the same way until someone replaces it */
    switch (rc) {
    case AVERROR_INVALIDDATA:
    case AVERROR_STREAM_NOT_FOUND:
    case AVERROR_DECODER_NOT_FOUND:
    case AVERROR_DEMUXER_NOT_FOUND:
    case AVERROR_PROTOCOL_NOT_FOUND:
    case AVERROR_OPTION_NOT_FOUND:
    case AVERROR_PATCHWELCOME:
    case AVERROR(ENOSYS):
    case AVERROR_HTTP_UNAUTHORIZED:
    case AVERROR_HTTP_FORBIDDEN:
    case AVERROR_HTTP_NOT_FOUND:
        return true;
    default:
        return false;
    }
}

/* Outcome of an FFmpeg call that returned rc < 0, with c->run.err set. */
static outcome_t failure(vg_capture_t *c, const session_t *s, const char *what, int rc)
{
    if (atomic_load(&c->stop))
        return OUT_STOP;
    if (atomic_load(&c->restart))
        return OUT_RESTART;
    /* Our deadline. Some demuxers (RTSP) turn the interrupt into another error. */
    if (rc == AVERROR_EXIT || vg_now_mono() > c->run.deadline) {
        if (!s->fmt || !s->dec)
            set_error(c, "open timed out:", 0);
        else if (vg_now_mono() - s->last_progress >= c->cfg.stall_s)
            return OUT_STALL;
        else
            set_error(c, "read timed out:", 0);
        return OUT_ERROR;
    }
    set_error(c, what, rc);
    return !s->dec && is_permanent(c, rc) ? OUT_FAILED : OUT_ERROR;
}

static int open_decoder(vg_capture_t *c, session_t *s, const AVCodec *codec)
{
    AVStream *st = s->fmt->streams[s->vstream];
    s->dec = avcodec_alloc_context3(codec);
    VG_CHECK(s->dec != NULL);
    int rc = avcodec_parameters_to_context(s->dec, st->codecpar);
    if (rc < 0)
        return rc;
    s->dec->thread_count = c->cfg.threads;
    s->dec->pkt_timebase = st->time_base;
    rc = avcodec_open2(s->dec, codec, NULL);
    if (rc < 0)
        avcodec_free_context(&s->dec);
    return rc;
}

static outcome_t session_open(vg_capture_t *c, session_t *s)
{
    s->fmt = avformat_alloc_context();
    VG_CHECK(s->fmt != NULL);
    s->fmt->interrupt_callback = (AVIOInterruptCB){interrupt_cb, c};
    c->run.deadline = vg_now_mono() + c->cfg.open_s;
    AVDictionary *opts = input_options(c);
    int rc = avformat_open_input(&s->fmt, c->cfg.url, NULL, &opts);
    av_dict_free(&opts);
    if (rc < 0)
        return failure(c, s, "cannot open", rc); /* s->fmt was freed */
    if ((rc = avformat_find_stream_info(s->fmt, NULL)) < 0)
        return failure(c, s, "cannot read stream info of", rc);
    const AVCodec *codec = NULL;
    rc = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (rc < 0)
        return failure(c, s, rc == AVERROR_DECODER_NOT_FOUND ? "no decoder for the video of"
                                                             : "no video stream in",
                       rc);
    s->vstream = rc;
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        s->fmt->streams[i]->discard = (int)i == s->vstream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    s->tb = s->fmt->streams[s->vstream]->time_base;
    if ((rc = open_decoder(c, s, codec)) < 0)
        return failure(c, s, "cannot open the decoder for", rc);
    s->live = (s->fmt->iformat->flags & AVFMT_NOFILE) ||
              !(s->fmt->pb && (s->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL));
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    VG_CHECK(s->pkt && s->frame);
    VG_INFO(MOD, "capture_connected", "{s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "stream_id",
            c->cfg.stream_id, "url", c->cfg.url_redacted, "format", s->fmt->iformat->name,
            "codec", codec->name, "width", s->dec->width, "height", s->dec->height, "live",
            s->live);
    return OUT_OPENED;
}

/* Back to the start of a file; false when it cannot seek (then it is reopened). */
static bool rewind_input(session_t *s)
{
    int64_t start = s->fmt->start_time != AV_NOPTS_VALUE ? s->fmt->start_time : 0;
    if (avformat_seek_file(s->fmt, -1, INT64_MIN, start, start, 0) < 0)
        return false;
    avcodec_flush_buffers(s->dec);
    s->paced = false;
    s->sampler = (sampler_t){0};
    s->last_key_ts = NAN;
    s->need_key = true;
    s->need_key_until = vg_now_mono() + 1.0;
    return true;
}

static outcome_t session_read(vg_capture_t *c, session_t *s)
{
    for (;;) {
        double now = vg_now_mono();
        if (should_abort(c))
            return failure(c, s, "", AVERROR_EXIT);
        if (now - s->last_progress >= c->cfg.stall_s)
            return OUT_STALL;
        c->run.deadline = fmin(now + c->cfg.read_s, s->last_progress + c->cfg.stall_s);
        int rc = av_read_frame(s->fmt, s->pkt);
        if (rc == AVERROR_EOF && !s->live && rewind_input(s))
            continue;
        if (rc == AVERROR(EAGAIN)) {
            wait_interruptible(c, 0.01);
            continue;
        }
        if (rc < 0)
            return failure(c, s, rc == AVERROR_EOF ? "end of stream from" : "read error from", rc);
        if (s->pkt->stream_index == s->vstream) {
            remember_read_time(s, s->pkt);
            if (!pace(c, s, s->pkt)) {
                av_packet_unref(s->pkt);
                continue; /* stop or restart: handled at the top */
            }
            if (want_packet(c, s, s->pkt, vg_now_mono()))
                decode_packet(c, s, s->pkt);
        }
        av_packet_unref(s->pkt);
    }
}

static outcome_t session_run(vg_capture_t *c, session_t *s)
{
    *s = (session_t){.last_key_ts = NAN};
    outcome_t out = session_open(c, s);
    if (out != OUT_OPENED)
        return out;
    s->last_progress = vg_now_mono();
    s->need_key = true; /* skip leading non-key packets (not for long) */
    s->need_key_until = s->last_progress + c->cfg.stall_s / 2;
    return session_read(c, s);
}

static void session_close(vg_capture_t *c, session_t *s)
{
    c->run.deadline = vg_now_mono() + CLOSE_GRACE_S;
    for (int i = 0; i < VG_CAPTURE_MAX_VIEWS; i++)
        sws_freeContext(s->sws[i]);
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fmt);
    atomic_store(&c->keyframe_only, false);
    reset_samples(c);
}

/* ---- the thread ---- */

/* Full jitter in [initial, min(max, initial * 2^attempt)]. */
static double backoff_delay(vg_capture_t *c, unsigned attempt)
{
    double cap = c->cfg.backoff_initial_s * ldexp(1.0, (int)(attempt < 30 ? attempt : 30));
    cap = fmin(cap, c->cfg.backoff_max_s);
    c->run.rng ^= c->run.rng << 13; /* xorshift64 */
    c->run.rng ^= c->run.rng >> 7;
    c->run.rng ^= c->run.rng << 17;
    double u = (double)(c->run.rng >> 11) / (double)(1ULL << 53);
    return c->cfg.backoff_initial_s + u * fmax(0, cap - c->cfg.backoff_initial_s);
}

/* After a connection ended: state, logs, and how long to wait before the next one. */
static double after_session(vg_capture_t *c, outcome_t out, unsigned *attempt)
{
    const char *reason = out == OUT_RESTART ? "restart" : out == OUT_STALL ? "stall"
                         : out == OUT_FAILED ? "failed" : "error";
    double delay;
    if (out == OUT_STALL) {
        count(&c->stalls, c->m.stalls);
        snprintf(c->run.err, sizeof(c->run.err), "stalled: no decoded frame for %.1f s from %s",
                 c->cfg.stall_s, c->cfg.url_redacted);
        VG_WARN(MOD, "capture_stall", "{s:s, s:s, s:f}", "stream_id", c->cfg.stream_id, "url",
                c->cfg.url_redacted, "stall_timeout_s", c->cfg.stall_s);
    }
    if (out == OUT_RESTART) {
        *attempt = 0;
        delay = 0;
        set_state(c, VG_CAPTURE_RECONNECTING, NULL);
    } else if (out == OUT_FAILED) {
        delay = c->cfg.backoff_max_s;
        set_state(c, VG_CAPTURE_FAILED, c->run.err);
    } else {
        delay = backoff_delay(c, (*attempt)++);
        set_state(c, VG_CAPTURE_RECONNECTING, c->run.err);
    }
    vg_log(out == OUT_RESTART ? VG_LOG_INFO : VG_LOG_WARN, MOD, "capture_reconnect", "{s:s, s:s, s:s, s:s, s:f, s:i}", "stream_id",
            c->cfg.stream_id, "url", c->cfg.url_redacted, "reason", reason, "error",
            out == OUT_RESTART ? "" : c->run.err, "delay_s", delay, "attempt", (int)*attempt);
    return delay;
}

static void *capture_main(void *arg)
{
    vg_capture_t *c = arg;
    char name[16];
    snprintf(name, sizeof(name), "cap:%s", c->cfg.stream_id);
    pthread_setname_np(pthread_self(), name);
    set_state(c, VG_CAPTURE_CONNECTING, NULL);
    unsigned attempt = 0;
    for (;;) {
        atomic_store(&c->restart, false);
        session_t s;
        outcome_t out = session_run(c, &s);
        bool stable = s.running && vg_now_mono() - s.running_since >= STABLE_RUN_S;
        if (out == OUT_RESTART)
            atomic_store(&c->restart, false); /* let the close be polite */
        session_close(c, &s);
        vg_series_set(c->m.up, 0);
        if (out == OUT_STOP || atomic_load(&c->stop))
            break;
        if (stable)
            attempt = 0;
        double delay = after_session(c, out, &attempt);
        if (wait_interruptible(c, delay) && atomic_load(&c->stop))
            break;
        count(&c->reconnects, c->m.reconnects);
    }
    set_state(c, VG_CAPTURE_STOPPED, NULL);
    return NULL;
}

/* ---- public API ---- */

static bool views_valid(const vg_capture_view_t *v, size_t n)
{
    if (n > VG_CAPTURE_MAX_VIEWS || (n && !v))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i].x < 0 || v[i].y < 0 || v[i].w < 0 || v[i].h < 0 || v[i].out_w < 1 ||
            v[i].out_h < 1 || v[i].out_w > VG_CAPTURE_VIEW_MAX_SIZE ||
            v[i].out_h > VG_CAPTURE_VIEW_MAX_SIZE)
            return false;
    }
    return true;
}

static bool fps_valid(double fps)
{
    return fps >= VG_CAPTURE_FPS_MIN && fps <= VG_CAPTURE_FPS_MAX;
}

static bool cfg_valid(const vg_capture_cfg_t *cfg)
{
    const char *tr = cfg->rtsp_transport;
    return cfg->stream_id && cfg->stream_id[0] && cfg->url && cfg->url[0] && cfg->mailbox &&
           fps_valid(cfg->fps) && (!tr || !strcmp(tr, "tcp") || !strcmp(tr, "udp")) &&
           cfg->stall_timeout_s >= 0 && cfg->reconnect_initial_s >= 0 &&
           cfg->reconnect_max_s >= 0 && cfg->open_timeout_s >= 0 && cfg->read_timeout_s >= 0 &&
           cfg->decoder_threads >= 0 && cfg->decoder_threads <= 64 &&
           views_valid(cfg->views, cfg->n_views);
}

static double or_default(double v, double def)
{
    return v > 0 ? v : def;
}

static void register_metrics(vg_capture_t *c)
{
    static const char *const label = "stream_id";
    const char *id = c->cfg.stream_id;
    series_t *m = &c->m;
#define COUNTER(field, name, help) m->field = vg_metric_series(vg_metric_counter(name, help, label), id)
#define GAUGE(field, name, help) m->field = vg_metric_series(vg_metric_gauge(name, help, label), id)
    GAUGE(up, "vigil_stream_up", "1 while the stream delivers decoded frames");
    COUNTER(decoded, "vigil_stream_frames_decoded_total", "Pictures decoded");
    COUNTER(sampled, "vigil_stream_frames_sampled_total", "Pictures kept by sampling");
    COUNTER(dropped, "vigil_stream_frames_dropped_total", "Frames replaced before inference");
    COUNTER(reconnects, "vigil_stream_reconnects_total", "Connection attempts after the first");
    COUNTER(stalls, "vigil_stream_stalls_total", "Connections dropped for lack of frames");
    GAUGE(target_fps, "vigil_stream_target_fps", "Configured sampling rate");
    GAUGE(fps, "vigil_stream_fps", "Measured sampling rate");
#undef COUNTER
#undef GAUGE
    m->decode_s = vg_metric_series(
        vg_metric_histogram("vigil_stream_decode_duration_seconds", "Time to decode one packet",
                            label, vg_metrics_latency_buckets, vg_metrics_latency_buckets_len),
        id);
    m->info = vg_metric_series(
        vg_metric_gauge("vigil_stream_info", "Stream source (credentials redacted)", "stream_id,url"),
        id, c->cfg.url_redacted);
    vg_series_set(m->info, 1);
    vg_series_set(m->up, 0);
    vg_series_set(m->target_fps, atomic_load(&c->fps));
}

int vg_capture_new(const vg_capture_cfg_t *cfg, vg_capture_t **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!cfg || !out || !cfg_valid(cfg))
        return VG_EINVAL;
    pthread_once(&once, global_init);
    vg_capture_t *c = vg_xcalloc(1, sizeof(*c));
    c->cfg.stream_id = vg_xstrdup(cfg->stream_id);
    c->cfg.url = vg_xstrdup(cfg->url);
    c->cfg.url_redacted = vg_redact_url(cfg->url);
    c->cfg.transport = vg_xstrdup(cfg->rtsp_transport ? cfg->rtsp_transport : "tcp");
    c->cfg.stall_s = or_default(cfg->stall_timeout_s, 10);
    c->cfg.backoff_initial_s = or_default(cfg->reconnect_initial_s, 1);
    c->cfg.backoff_max_s = fmax(or_default(cfg->reconnect_max_s, 30), c->cfg.backoff_initial_s);
    c->cfg.open_s = or_default(cfg->open_timeout_s, 10);
    c->cfg.read_s = or_default(cfg->read_timeout_s, 10);
    c->cfg.threads = cfg->decoder_threads > 0 ? cfg->decoder_threads : 1;
    c->cfg.is_file = !strstr(cfg->url, "://") || strncmp(cfg->url, "file:", 5) == 0;
    c->cfg.mailbox = cfg->mailbox;
    c->cfg.on_state = cfg->on_state;
    c->cfg.on_state_arg = cfg->on_state_arg;
    atomic_init(&c->fps, cfg->fps);
    c->n_views = cfg->n_views;
    memcpy(c->views, cfg->views, cfg->n_views * sizeof(cfg->views[0]));
    VG_CHECK(pthread_mutex_init(&c->views_mu, NULL) == 0);
    VG_CHECK(pthread_mutex_init(&c->stats_mu, NULL) == 0);
    VG_CHECK(pthread_mutex_init(&c->wake_mu, NULL) == 0);
    pthread_condattr_t ca;
    VG_CHECK(pthread_condattr_init(&ca) == 0);
    VG_CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0);
    VG_CHECK(pthread_cond_init(&c->wake_cv, &ca) == 0);
    pthread_condattr_destroy(&ca);
    atomic_init(&c->state, VG_CAPTURE_STOPPED); /* until the thread runs */
    c->run.rng = ((uint64_t)(vg_now_wall() * 1e6) ^ (uint64_t)(uintptr_t)c) | 1;
    register_metrics(c);
    *out = c;
    return VG_OK;
}

int vg_capture_start(vg_capture_t *c)
{
    if (c->started)
        return VG_EBUSY;
    c->started = true;
    VG_INFO(MOD, "capture_start", "{s:s, s:s, s:f, s:i}", "stream_id", c->cfg.stream_id, "url",
            c->cfg.url_redacted, "fps", atomic_load(&c->fps), "views", (int)c->n_views);
    VG_CHECK(pthread_create(&c->thread, NULL, capture_main, c) == 0);
    return VG_OK;
}

void vg_capture_request_stop(vg_capture_t *c)
{
    wake(c, &c->stop);
}

void vg_capture_stop(vg_capture_t *c)
{
    if (!c->started || c->joined)
        return;
    vg_capture_request_stop(c);
    VG_CHECK(pthread_join(c->thread, NULL) == 0);
    c->joined = true;
}

void vg_capture_free(vg_capture_t *c)
{
    if (!c)
        return;
    vg_capture_stop(c);
    pthread_cond_destroy(&c->wake_cv);
    pthread_mutex_destroy(&c->wake_mu);
    pthread_mutex_destroy(&c->stats_mu);
    pthread_mutex_destroy(&c->views_mu);
    free(c->cfg.stream_id);
    free(c->cfg.url);
    free(c->cfg.url_redacted);
    free(c->cfg.transport);
    free(c);
}

int vg_capture_set_fps(vg_capture_t *c, double fps)
{
    if (!fps_valid(fps))
        return VG_EINVAL;
    atomic_store(&c->fps, fps);
    vg_series_set(c->m.target_fps, fps);
    return VG_OK;
}

int vg_capture_set_views(vg_capture_t *c, const vg_capture_view_t *views, size_t n)
{
    if (!views_valid(views, n))
        return VG_EINVAL;
    pthread_mutex_lock(&c->views_mu);
    memcpy(c->views, views, n * sizeof(*views));
    c->n_views = n;
    pthread_mutex_unlock(&c->views_mu);
    return VG_OK;
}

void vg_capture_restart(vg_capture_t *c)
{
    wake(c, &c->restart);
}

void vg_capture_stats(const vg_capture_t *c, vg_capture_stats_t *out)
{
    vg_capture_t *mc = (vg_capture_t *)c; /* for the stats lock only */
    memset(out, 0, sizeof(*out));
    out->state = (vg_capture_state_t)atomic_load(&c->state);
    out->frames_decoded = atomic_load(&c->decoded);
    out->frames_sampled = atomic_load(&c->sampled);
    out->frames_dropped = atomic_load(&c->dropped);
    out->reconnects = atomic_load(&c->reconnects);
    out->stalls = atomic_load(&c->stalls);
    out->keyframe_only = atomic_load(&c->keyframe_only);
    out->target_fps = atomic_load(&c->fps);
    out->keyframe_interval_s = atomic_load(&c->key_interval);
    out->last_decode_s = atomic_load(&c->last_decode_s);
    out->src_width = atomic_load(&c->src_w);
    out->src_height = atomic_load(&c->src_h);
    pthread_mutex_lock(&mc->stats_mu);
    out->fps = fps_locked(c, vg_now_mono(), out->target_fps);
    memcpy(out->last_error, c->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&mc->stats_mu);
}
