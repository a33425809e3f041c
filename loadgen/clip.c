/* clip.c — demux an MP4 (or any libavformat container) H.264 stream into memory.
 * Runs once per distinct clip file on the main thread at startup. Packets are kept
 * exactly as stored (AVCC length-prefixed for MP4, so caps say stream-format=avc with
 * the avcC record as codec_data); nothing is decoded or re-encoded. The timeline is
 * rebased to start at 0 and, with an fps override, rescaled. */
#include "clip.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <jansson.h>
#include <libavformat/avformat.h>
#include <string.h>

#define MOD "clip"

typedef struct {
    GByteArray *blob;
    GArray *aus; /* of vg_clip_au_t, raw timestamps in stream time base until finish */
    int64_t first_dts;
} clip_reader_t;

static int open_input(const char *path, AVFormatContext **fmt, int *stream)
{
    int rc = avformat_open_input(fmt, path, NULL, NULL);
    if (rc < 0) {
        VG_ERROR(MOD, "clip_open_failed", "{s:s, s:s}", "path", path, "error", av_err2str(rc));
        return VG_EIO;
    }
    rc = avformat_find_stream_info(*fmt, NULL);
    if (rc < 0) {
        VG_ERROR(MOD, "clip_probe_failed", "{s:s, s:s}", "path", path, "error", av_err2str(rc));
        return VG_EIO;
    }
    *stream = av_find_best_stream(*fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (*stream < 0 || (*fmt)->streams[*stream]->codecpar->codec_id != AV_CODEC_ID_H264) {
        VG_ERROR(MOD, "clip_not_h264", "{s:s}", "path", path);
        return VG_EUNSUPPORTED;
    }
    return VG_OK;
}

static void add_packet(clip_reader_t *r, const AVPacket *pkt)
{
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : dts;
    if (r->aus->len == 0) r->first_dts = dts;
    vg_clip_au_t au = {
        .offset = r->blob->len,
        .size = (size_t)pkt->size,
        .pts = (GstClockTime)(pts - r->first_dts),
        .dts = (GstClockTime)(dts - r->first_dts),
        .duration = pkt->duration > 0 ? (GstClockTime)pkt->duration : 0,
        .key = (pkt->flags & AV_PKT_FLAG_KEY) != 0,
    };
    g_byte_array_append(r->blob, pkt->data, (guint)pkt->size);
    g_array_append_val(r->aus, au);
}

static int read_packets(AVFormatContext *fmt, int stream, clip_reader_t *r)
{
    AVPacket *pkt = av_packet_alloc();
    VG_CHECK(pkt != NULL);
    int rc;
    while ((rc = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == stream && pkt->size > 0 &&
            (pkt->dts != AV_NOPTS_VALUE || pkt->pts != AV_NOPTS_VALUE))
            add_packet(r, pkt);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return rc == AVERROR_EOF ? VG_OK : VG_EIO;
}

/* Converts stream time-base units to nanoseconds, scaled by `scale` (fps override). */
static GstClockTime to_ns(GstClockTime ts, AVRational tb, double scale)
{
    int64_t ns = av_rescale_q((int64_t)ts, tb, (AVRational){1, GST_SECOND});
    return (GstClockTime)((double)ns * scale + 0.5);
}

/* Rebased stream-time AUs -> nanoseconds; fills period and fps. A clip that has no
 * usable timing (one frame, no duration) plays at the override or 25 fps. */
static void finish_timeline(vg_clip_t *clip, AVRational tb, double fps_override)
{
    const vg_clip_au_t *last = &clip->aus[clip->n_aus - 1];
    GstClockTime frame =
        last->duration ? last->duration : (clip->n_aus > 1 ? last->dts / (clip->n_aus - 1) : 0);
    double native_ns = (double)to_ns(last->dts + frame, tb, 1.0);
    double native_fps = native_ns > 0 ? (double)clip->n_aus * GST_SECOND / native_ns : 25.0;
    double fps = fps_override > 0 ? fps_override : native_fps;
    double scale = native_fps / fps;
    for (size_t i = 0; i < clip->n_aus; i++) {
        vg_clip_au_t *au = &clip->aus[i];
        if (native_ns > 0) {
            au->pts = to_ns(au->pts, tb, scale);
            au->dts = to_ns(au->dts, tb, scale);
        } else {
            au->pts = au->dts = (GstClockTime)((double)i * GST_SECOND / fps);
        }
        au->duration = (GstClockTime)(GST_SECOND / fps);
    }
    clip->period = (GstClockTime)((double)clip->n_aus * GST_SECOND / fps + 0.5);
    clip->fps = fps;
}

static GstCaps *make_caps(const AVCodecParameters *par, double fps)
{
    bool avc = par->extradata_size > 0 && par->extradata[0] == 1;
    GstCaps *caps = gst_caps_new_simple(
        "video/x-h264", "stream-format", G_TYPE_STRING, avc ? "avc" : "byte-stream", "alignment",
        G_TYPE_STRING, "au", "width", G_TYPE_INT, par->width, "height", G_TYPE_INT, par->height,
        "framerate", GST_TYPE_FRACTION, (int)(fps * 1000 + 0.5), 1000, NULL);
    if (avc) {
        GstBuffer *cd = gst_buffer_new_memdup(par->extradata, (gsize)par->extradata_size);
        gst_caps_set_simple(caps, "codec_data", GST_TYPE_BUFFER, cd, NULL);
        gst_buffer_unref(cd);
    }
    return caps;
}

int vg_clip_load(const char *path, double fps, vg_clip_t **out)
{
    AVFormatContext *fmt = NULL;
    clip_reader_t r = {.blob = g_byte_array_new(),
                       .aus = g_array_new(FALSE, FALSE, sizeof(vg_clip_au_t))};
    vg_clip_t *clip = NULL;
    int stream = -1;
    int rc = open_input(path, &fmt, &stream);
    if (rc < 0) goto fail;
    if ((rc = read_packets(fmt, stream, &r)) < 0) {
        VG_ERROR(MOD, "clip_read_failed", "{s:s}", "path", path);
        goto fail;
    }
    if (r.aus->len == 0 || !g_array_index(r.aus, vg_clip_au_t, 0).key) {
        VG_ERROR(MOD, "clip_bad_start", "{s:s, s:s}", "path", path, "reason",
                 r.aus->len ? "first frame is not a keyframe" : "no video packets");
        rc = VG_EINVAL;
        goto fail;
    }
    clip = vg_xcalloc(1, sizeof(*clip));
    clip->refs = 1;
    clip->path = vg_xstrdup(path);
    clip->n_aus = r.aus->len;
    clip->aus = (vg_clip_au_t *)(void *)g_array_free(r.aus, FALSE);
    clip->data = g_byte_array_free_to_bytes(r.blob);
    r.aus = NULL;
    r.blob = NULL;
    const AVStream *st = fmt->streams[stream];
    finish_timeline(clip, st->time_base, fps);
    clip->width = st->codecpar->width;
    clip->height = st->codecpar->height;
    clip->caps = make_caps(st->codecpar, clip->fps);
    avformat_close_input(&fmt);
    VG_INFO(MOD, "clip_loaded", "{s:s, s:I, s:f, s:f, s:i, s:i}", "path", path, "frames",
            (json_int_t)clip->n_aus, "seconds", (double)clip->period / GST_SECOND, "fps", clip->fps,
            "width", clip->width, "height", clip->height);
    *out = clip;
    return VG_OK;
fail:
    if (r.aus) g_array_free(r.aus, TRUE);
    if (r.blob) g_byte_array_free(r.blob, TRUE);
    avformat_close_input(&fmt);
    return rc;
}

vg_clip_t *vg_clip_ref(vg_clip_t *clip)
{
    g_atomic_int_inc(&clip->refs);
    return clip;
}

void vg_clip_unref(vg_clip_t *clip)
{
    if (!clip || !g_atomic_int_dec_and_test(&clip->refs)) return;
    g_bytes_unref(clip->data);
    g_free(clip->aus);
    if (clip->caps) gst_caps_unref(clip->caps);
    free(clip->path);
    free(clip);
}

GstBuffer *vg_clip_buffer(const vg_clip_t *clip, size_t i, uint64_t loop, GstClockTime start)
{
    const vg_clip_au_t *au = &clip->aus[i];
    gsize size = 0;
    const guint8 *base = g_bytes_get_data(clip->data, &size);
    GstBuffer *buf = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, (gpointer)base, size,
                                                 au->offset, au->size, g_bytes_ref(clip->data),
                                                 (GDestroyNotify)g_bytes_unref);
    GstClockTime shift = (GstClockTime)loop * clip->period - start; /* pts, dts >= start */
    GST_BUFFER_PTS(buf) = au->pts + shift;
    GST_BUFFER_DTS(buf) = au->dts + shift;
    GST_BUFFER_DURATION(buf) = au->duration;
    if (!au->key) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
    return buf;
}

size_t vg_clip_keyframe_at(const vg_clip_t *clip, double phase)
{
    GstClockTime at = (GstClockTime)(phase * (double)clip->period);
    for (size_t i = 0; i < clip->n_aus; i++)
        if (clip->aus[i].key && clip->aus[i].dts >= at) return i;
    return 0;
}
