/* capture_session.c — one connection of a capture thread: open the input with deadlines,
 * read packets (paced in real time for files, looping at their end), decide per packet
 * whether to decode it (keyframe-only mode, sampling), decode, and turn each kept
 * picture into a vg_frame_t with one BGR conversion per view, posted to the mailbox.
 *
 * Runs on the capture thread only; every FFmpeg object here belongs to the session.
 * Blocking FFmpeg calls are bounded by interrupt_cb: stop, restart, or c->run.deadline
 * (open timeout while opening; then the sooner of the read timeout and the stall
 * deadline). */
#include "capture_internal.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MOD VG_CAPTURE_LOG
#define CLOSE_GRACE_S 0.5 /* lets an RTSP TEARDOWN out when not stopping */

static int interrupt_cb(void *opaque)
{
    vg_capture_t *c = opaque;
    if (vg_capture_aborting(c)) return 1;
    if (vg_now_mono() <= c->run.deadline) return 0;
    if (c->run.expired == VG_CAPTURE_DEADLINE_NONE) c->run.expired = c->run.deadline_kind;
    return 1;
}

static void arm_deadline(vg_capture_t *c, double at, int kind)
{
    c->run.deadline = at;
    c->run.deadline_kind = kind;
}

static void set_error(vg_capture_t *c, const char *what, int averr)
{
    if (averr)
        snprintf(c->run.err, sizeof(c->run.err), "%s %s: %s", what, c->cfg.url_redacted,
                 av_err2str(averr));
    else
        snprintf(c->run.err, sizeof(c->run.err), "%s %s", what, c->cfg.url_redacted);
}

static double stream_time(const vg_capture_session_t *s, int64_t ts)
{
    return vg_capture_stream_time(s, ts);
}

static double packet_time(const vg_capture_session_t *s, const AVPacket *pkt)
{
    return stream_time(s, pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts);
}

/* After a file looped, shifts its timestamps to continue one picture after the last
 * one, so pacing, sampling and keyframe measurement see one unbroken timeline. */
static void follow_timeline(vg_capture_session_t *s, const AVPacket *pkt)
{
    if (s->loop_pending && !isnan(packet_time(s, pkt))) {
        s->loop_offset += s->max_ts + s->frame_dur - packet_time(s, pkt);
        s->loop_pending = false;
    }
    double t = packet_time(s, pkt);
    if (!isnan(t) && (isnan(s->max_ts) || t > s->max_ts)) s->max_ts = t;
}

static const char *pix_fmt_name(int fmt)
{
    const char *name = av_get_pix_fmt_name((enum AVPixelFormat)fmt);
    return name ? name : "unknown";
}

/* ---- per packet ---- */

/* Non-live inputs: waits until the packet's dts is due in real time, like ffmpeg -re.
 * False when stop or restart interrupted the wait. */
static bool pace(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt)
{
    double t = stream_time(s, pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts);
    if (s->live || isnan(t)) return true;
    double now = vg_now_mono();
    double due = s->pace_wall0 + (t - s->pace_ts0);
    if (!s->paced || t < s->pace_last || t > s->pace_last + 10 || now - due > 1.0) {
        s->paced = true; /* start, discontinuity, or fell behind: re-anchor */
        s->pace_wall0 = now;
        s->pace_ts0 = t;
        due = now;
    }
    s->pace_last = t;
    return due <= now || !vg_capture_sleep(c, due - now);
}

static void remember_read_time(vg_capture_session_t *s, const AVPacket *pkt)
{
    s->read_at[s->read_at_pos].pts = pkt->pts;
    s->read_at[s->read_at_pos].wall = vg_now_wall();
    s->read_at[s->read_at_pos].mono = vg_now_mono();
    s->read_at_pos = (s->read_at_pos + 1) % VG_CAPTURE_READ_AT_RING;
}

/* When the packet of this picture was read (now if unknown), on both clocks. */
void vg_capture_read_time(const vg_capture_session_t *s, int64_t pts, double *wall, double *mono)
{
    for (int i = 1; pts != AV_NOPTS_VALUE && i <= VG_CAPTURE_READ_AT_RING; i++) {
        int k = (s->read_at_pos - i + VG_CAPTURE_READ_AT_RING) % VG_CAPTURE_READ_AT_RING;
        if (s->read_at[k].pts == pts && s->read_at[k].wall > 0) { /* newest first */
            *wall = s->read_at[k].wall;
            *mono = s->read_at[k].mono;
            return;
        }
    }
    *wall = vg_now_wall();
    *mono = vg_now_mono();
}

/* ---- per picture ---- */

static size_t copy_views(vg_capture_t *c, vg_capture_view_t *views)
{
    pthread_mutex_lock(&c->views_mu);
    size_t n = c->n_views;
    memcpy(views, c->views, n * sizeof(*views));
    pthread_mutex_unlock(&c->views_mu);
    return n;
}

vg_frame_t *vg_capture_build_frame(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic,
                                   double ts)
{
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];
    size_t n = copy_views(c, views);
    vg_frame_t *f = vg_frame_new();
    vg_capture_read_time(s, pic->pts, &f->captured_at, &f->captured_mono);
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
                        pix_fmt_name(pic->format), "code", rc);
            s->convert_warned = true;
            vg_frame_unref(f);
            return NULL;
        }
        v->x = r[0], v->y = r[1], v->w = r[2], v->h = r[3];
    }
    vg_frame_set_source(f, pic);
    return f; /* seq: set when posted */
}

void vg_capture_note_picture(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic,
                             double now)
{
    s->last_progress = now;
    vg_capture_count(&c->decoded, c->m.decoded);
    int old_w = atomic_exchange(&c->src_w, pic->width);
    int old_h = atomic_exchange(&c->src_h, pic->height);
    if (old_w != pic->width || old_h != pic->height)
        VG_INFO(MOD, "capture_resolution", "{s:s, s:s, s:i, s:i, s:s}", "stream_id",
                c->cfg.stream_id, "url", c->cfg.url_redacted, "width", pic->width, "height",
                pic->height, "pix_fmt", pix_fmt_name(pic->format));
    if (!s->running) {
        s->running = true;
        s->running_since = now;
        vg_capture_enter_state(c, VG_CAPTURE_RUNNING, NULL);
    }
}

/* Sends one packet and drains the decoder. Decode errors are not fatal: a corrupt
 * packet costs a picture, and a decoder that never recovers shows up as a stall. */
void vg_capture_decode_packet(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt)
{
    double t0 = vg_now_mono();
    int rc = avcodec_send_packet(s->dec, pkt);
    if (rc < 0 && rc != AVERROR(EAGAIN))
        VG_DEBUG(MOD, "capture_decode_error", "{s:s, s:s}", "stream_id", c->cfg.stream_id, "error",
                 av_err2str(rc));
    double spent = vg_now_mono() - t0; /* decoding only, not the conversions */
    for (;;) {
        double t1 = vg_now_mono();
        rc = avcodec_receive_frame(s->dec, s->frame);
        spent += vg_now_mono() - t1;
        if (rc < 0) break;
        vg_capture_on_picture(c, s, s->frame);
        av_frame_unref(s->frame);
    }
    atomic_store(&c->last_decode_s, spent);
    vg_series_observe(c->m.decode_s, spent);
}

/* ---- opening ---- */

static bool url_has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

/* What FFmpeg may open for this URL, nested opens included (a playlist, a redirect):
 * RTSP and what it runs on, or the file protocol for a file path (vg_config_check_url
 * admits nothing else); any other URL only its own scheme. */
#define RTSP_PROTOCOLS "rtsp,rtsps,tcp,udp,tls,rtp,srtp"
static void set_whitelist(AVDictionary **opts, const vg_capture_t *c)
{
    const char *url = c->cfg.url, *sep = strstr(url, "://");
    char scheme[32];
    if (url_has_scheme(url, "rtsp") || url_has_scheme(url, "rtsps"))
        av_dict_set(opts, "protocol_whitelist", RTSP_PROTOCOLS, 0);
    else if (c->cfg.is_file || !sep || (size_t)(sep - url) >= sizeof(scheme))
        av_dict_set(opts, "protocol_whitelist", "file", 0);
    else {
        snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - url), url);
        av_dict_set(opts, "protocol_whitelist", scheme, 0);
    }
}

/* Protocol timeouts (µs) as a second line behind interrupt_cb: later than our own open
 * and read deadlines, so those fire first and the error says what happened (an RTSP
 * server that never answers otherwise reads as "Invalid data"). */
static AVDictionary *input_options(const vg_capture_t *c)
{
    AVDictionary *opts = NULL;
    set_whitelist(&opts, c);
    char us[32];
    double backstop = (c->cfg.read_s > c->cfg.open_s ? c->cfg.read_s : c->cfg.open_s) + 1.0;
    snprintf(us, sizeof(us), "%lld", (long long)(backstop * 1e6));
    if (url_has_scheme(c->cfg.url, "rtsp") || url_has_scheme(c->cfg.url, "rtsps")) {
        av_dict_set(&opts, "rtsp_transport", c->cfg.transport, 0);
        av_dict_set(&opts, "timeout", us, 0); /* socket I/O; FFmpeg 5 dropped "stimeout" */
        av_dict_set(&opts, "allowed_media_types", "video", 0);
    } else if (!c->cfg.is_file) {
        av_dict_set(&opts, "rw_timeout", us, 0); /* any AVIO protocol */
    }
    return opts;
}

/* Errors at open that retrying soon will not fix: the input answers, but not with a
 * usable video stream, or the URL cannot work (see vg_capture_state_t FAILED). */
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

/* Outcome of an FFmpeg call that returned rc < 0; sets c->run.err. */
static vg_capture_outcome_t failure(vg_capture_t *c, const vg_capture_session_t *s,
                                    const char *what, int rc)
{
    if (atomic_load(&c->stop)) return VG_CAPTURE_OUT_STOP;
    if (atomic_load(&c->restart)) return VG_CAPTURE_OUT_RESTART;
    /* Our deadline fired. Some demuxers (RTSP) turn the interrupt into another error,
     * and the demuxer may still hand out buffered packets before the error. */
    switch (c->run.expired) {
    case VG_CAPTURE_DEADLINE_STALL:
        return VG_CAPTURE_OUT_STALL;
    case VG_CAPTURE_DEADLINE_OPEN:
    case VG_CAPTURE_DEADLINE_READ:
        set_error(
            c,
            c->run.expired == VG_CAPTURE_DEADLINE_OPEN ? "open timed out:" : "read timed out:", 0);
        return VG_CAPTURE_OUT_ERROR;
    }
    set_error(c, what, rc);
    return !s->dec && is_permanent(c, rc) ? VG_CAPTURE_OUT_FAILED : VG_CAPTURE_OUT_ERROR;
}

static int open_decoder(vg_capture_t *c, vg_capture_session_t *s, const AVCodec *codec)
{
    AVStream *st = s->fmt->streams[s->vstream];
    s->dec = avcodec_alloc_context3(codec);
    VG_CHECK(s->dec != NULL);
    int rc = avcodec_parameters_to_context(s->dec, st->codecpar);
    if (rc >= 0) {
        s->dec->thread_count = c->cfg.threads;
        s->dec->pkt_timebase = st->time_base;
        s->dec->skip_loop_filter = s->keyframe_only ? AVDISCARD_ALL : AVDISCARD_DEFAULT;
        rc = avcodec_open2(s->dec, codec, NULL);
    }
    if (rc < 0) avcodec_free_context(&s->dec);
    return rc;
}

static void log_connected(const vg_capture_t *c, const vg_capture_session_t *s)
{
    VG_INFO(MOD, "capture_connected", "{s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "stream_id",
            c->cfg.stream_id, "url", c->cfg.url_redacted, "format", s->fmt->iformat->name, "codec",
            s->dec->codec->name, "width", s->dec->width, "height", s->dec->height, "live", s->live);
}

static vg_capture_outcome_t session_open(vg_capture_t *c, vg_capture_session_t *s)
{
    s->fmt = avformat_alloc_context();
    VG_CHECK(s->fmt != NULL);
    s->fmt->interrupt_callback = (AVIOInterruptCB){interrupt_cb, c};
    c->run.expired = VG_CAPTURE_DEADLINE_NONE;
    arm_deadline(c, vg_now_mono() + c->cfg.open_s, VG_CAPTURE_DEADLINE_OPEN);
    AVDictionary *opts = input_options(c);
    int rc = avformat_open_input(&s->fmt, c->cfg.url, NULL, &opts);
    av_dict_free(&opts);
    if (rc < 0) return failure(c, s, "cannot open", rc); /* s->fmt was freed */
    if ((rc = avformat_find_stream_info(s->fmt, NULL)) < 0)
        return failure(c, s, "cannot read stream info of", rc);
    const AVCodec *codec = NULL;
    rc = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (rc < 0)
        return failure(c, s,
                       rc == AVERROR_DECODER_NOT_FOUND ? "no decoder for the video of"
                                                       : "no video stream in",
                       rc);
    s->vstream = rc;
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        s->fmt->streams[i]->discard = (int)i == s->vstream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    AVStream *st = s->fmt->streams[s->vstream];
    s->tb = st->time_base;
    s->frame_dur = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0
                       ? av_q2d(av_inv_q(st->avg_frame_rate))
                       : 0.04;
    if ((rc = open_decoder(c, s, codec)) < 0)
        return failure(c, s, "cannot open the decoder for", rc);
    s->live = (s->fmt->iformat->flags & AVFMT_NOFILE) ||
              !(s->fmt->pb && (s->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL));
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    VG_CHECK(s->pkt && s->frame);
    log_connected(c, s);
    return VG_CAPTURE_OUT_OPENED;
}

/* ---- reading ---- */

/* Back to the start of a file; false when it cannot seek (then it is reopened). */
static bool rewind_input(vg_capture_session_t *s)
{
    int64_t start = s->fmt->start_time != AV_NOPTS_VALUE ? s->fmt->start_time : 0;
    if (avformat_seek_file(s->fmt, -1, INT64_MIN, start, start, 0) < 0) return false;
    avcodec_flush_buffers(s->dec);
    s->loop_pending = !isnan(s->max_ts);
    s->need_key = true;
    s->need_key_until = vg_now_mono() + 1.0;
    vg_capture_release_held(s);
    return true;
}

static vg_capture_outcome_t session_read(vg_capture_t *c, vg_capture_session_t *s)
{
    for (;;) {
        double now = vg_now_mono();
        if (vg_capture_aborting(c)) return failure(c, s, "", AVERROR_EXIT);
        if (now - s->last_progress >= c->cfg.stall_s) return VG_CAPTURE_OUT_STALL;
        double stall_at = s->last_progress + c->cfg.stall_s;
        if (now + c->cfg.read_s < stall_at)
            arm_deadline(c, now + c->cfg.read_s, VG_CAPTURE_DEADLINE_READ);
        else
            arm_deadline(c, stall_at, VG_CAPTURE_DEADLINE_STALL);
        int rc = av_read_frame(s->fmt, s->pkt);
        if (rc >= 0 && c->run.expired == VG_CAPTURE_DEADLINE_STALL) {
            /* the interrupt only made the demuxer flush a frame it held back (RTSP):
             * that is not the camera making progress */
            av_packet_unref(s->pkt);
            return VG_CAPTURE_OUT_STALL;
        }
        if (rc == AVERROR_EOF && !s->live && rewind_input(s)) continue;
        if (rc == AVERROR(EAGAIN)) {
            vg_capture_sleep(c, 0.01);
            continue;
        }
        if (rc < 0)
            return failure(c, s, rc == AVERROR_EOF ? "end of stream from" : "read error from", rc);
        if (s->pkt->stream_index == s->vstream) {
            remember_read_time(s, s->pkt);
            follow_timeline(s, s->pkt);
            if (pace(c, s, s->pkt)) vg_capture_packet(c, s, s->pkt);
        }
        av_packet_unref(s->pkt);
    }
}

vg_capture_outcome_t vg_capture_session_run(vg_capture_t *c, vg_capture_session_t *s)
{
    memset(s, 0, sizeof(*s));
    s->max_ts = NAN;
    vg_sampler_reset(&s->sampler);
    vg_capture_outcome_t out = session_open(c, s);
    if (out != VG_CAPTURE_OUT_OPENED) return out;
    s->last_progress = vg_now_mono();
    s->need_key = true; /* skip leading non-key packets (not for long) */
    s->need_key_until = s->last_progress + c->cfg.stall_s / 2;
    vg_capture_policy_begin(c, s);
    return session_read(c, s);
}

void vg_capture_session_close(vg_capture_t *c, vg_capture_session_t *s)
{
    arm_deadline(c, vg_now_mono() + CLOSE_GRACE_S, VG_CAPTURE_DEADLINE_NONE);
    vg_capture_policy_end(c, s);
    for (int i = 0; i < VG_CAPTURE_MAX_VIEWS; i++)
        sws_freeContext(s->sws[i]);
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fmt);
}
