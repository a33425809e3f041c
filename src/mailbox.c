/* mailbox.c — refcounted frames, the BGR conversion they are built with, and the
 * latest-wins mailbox between a capture thread and the inference executors.
 *
 * A frame is allocated as a frame_impl_t: the public vg_frame_t followed by its atomic
 * refcount and the decoded picture kept for snapshots. The picture is the only mutable
 * part of a posted frame; src_mu guards it (the mailbox releases it when a newer frame
 * is posted, while a snapshot may be reading it). The mailbox lock guards two pointers
 * and is never held while freeing, converting or notifying. */
#include "vigil/mailbox.h"
#include "vigil/common.h"

#include <libavutil/frame.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_ALIGN 64

typedef struct {
    vg_frame_t pub; /* first: a vg_frame_t * is a frame_impl_t * */
    atomic_int refs;
    pthread_mutex_t src_mu;
    AVFrame *src; /* guarded by src_mu; NULL once superseded */
} frame_impl_t;

struct vg_mailbox {
    pthread_mutex_t mu;
    vg_frame_t *slot;   /* untaken frame, one reference */
    vg_frame_t *latest; /* newest posted frame, one reference */
    vg_mailbox_notify_fn notify;
    void *notify_arg;
    atomic_uint_fast64_t posted;
    atomic_uint_fast64_t dropped;
};

static frame_impl_t *impl_of(const vg_frame_t *f)
{
    return (frame_impl_t *)f;
}

vg_frame_t *vg_frame_new(void)
{
    frame_impl_t *fi = vg_xcalloc(1, sizeof(*fi));
    atomic_init(&fi->refs, 1);
    VG_CHECK(pthread_mutex_init(&fi->src_mu, NULL) == 0);
    fi->pub.pts_s = NAN;
    return &fi->pub;
}

vg_frame_view_t *vg_frame_add_view(vg_frame_t *f, int width, int height)
{
    if (f->n_views >= VG_FRAME_MAX_VIEWS || width <= 0 || height <= 0) return NULL;
    vg_frame_view_t *v = &f->views[f->n_views++];
    memset(v, 0, sizeof(*v));
    v->width = width;
    v->height = height;
    v->stride = (3 * width + VIEW_ALIGN - 1) / VIEW_ALIGN * VIEW_ALIGN;
    v->data = av_malloc((size_t)v->stride * (size_t)height);
    VG_CHECK(v->data != NULL);
    return v;
}

void vg_frame_set_source(vg_frame_t *f, const AVFrame *av)
{
    frame_impl_t *fi = impl_of(f);
    AVFrame *copy = av ? av_frame_clone(av) : NULL;
    VG_CHECK(av == NULL || copy != NULL);
    pthread_mutex_lock(&fi->src_mu);
    AVFrame *old = fi->src;
    fi->src = copy;
    pthread_mutex_unlock(&fi->src_mu);
    av_frame_free(&old);
}

static void frame_release_source(vg_frame_t *f)
{
    vg_frame_set_source(f, NULL);
}

vg_frame_t *vg_frame_ref(vg_frame_t *f)
{
    atomic_fetch_add_explicit(&impl_of(f)->refs, 1, memory_order_relaxed);
    return f;
}

void vg_frame_unref(vg_frame_t *f)
{
    if (!f) return;
    frame_impl_t *fi = impl_of(f);
    int before = atomic_fetch_sub_explicit(&fi->refs, 1, memory_order_acq_rel);
    VG_CHECK(before > 0);
    if (before != 1) return;
    for (int i = 0; i < f->n_views; i++)
        av_free(f->views[i].data);
    av_frame_free(&fi->src);
    pthread_mutex_destroy(&fi->src_mu);
    free(fi);
}

/* ---- conversion ---- */

/* The non-deprecated twin of a JPEG-range format; *full set when it was one. */
static enum AVPixelFormat normalize_format(enum AVPixelFormat f, bool *full)
{
    static const enum AVPixelFormat map[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P},
    };
    for (size_t i = 0; i < VG_ARRAY_LEN(map); i++) {
        if (map[i][0] == f) {
            *full = true;
            return map[i][1];
        }
    }
    return f;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Clamps the region to the picture and rounds its origin down to the chroma grid,
 * keeping its right and bottom edges. */
static void fit_region(const AVFrame *src, const AVPixFmtDescriptor *d, int r[4])
{
    int W = src->width, H = src->height;
    if (r[2] <= 0 || r[3] <= 0) {
        r[0] = 0, r[1] = 0, r[2] = W, r[3] = H;
    }
    int x0 = clampi(r[0], 0, W - 1), y0 = clampi(r[1], 0, H - 1);
    int x1 = clampi(r[0] + r[2], x0 + 1, W), y1 = clampi(r[1] + r[3], y0 + 1, H);
    x0 &= ~((1 << d->log2_chroma_w) - 1);
    y0 &= ~((1 << d->log2_chroma_h) - 1);
    r[0] = x0, r[1] = y0, r[2] = x1 - x0, r[3] = y1 - y0;
}

/* Plane pointers of `src` moved to the region origin (x, y), which is on the chroma grid. */
static void offset_planes(const AVFrame *src, const AVPixFmtDescriptor *d, int x, int y,
                          const uint8_t *planes[4])
{
    for (int p = 0; p < 4; p++) {
        planes[p] = src->data[p];
        if (!planes[p] || ((d->flags & AV_PIX_FMT_FLAG_PAL) && p == 1)) continue;
        int c = 0;
        while (c < d->nb_components && d->comp[c].plane != p)
            c++;
        if (c == d->nb_components) continue;
        bool chroma = !(d->flags & AV_PIX_FMT_FLAG_RGB) && (c == 1 || c == 2);
        int px = chroma ? x >> d->log2_chroma_w : x;
        int py = chroma ? y >> d->log2_chroma_h : y;
        planes[p] += (ptrdiff_t)py * src->linesize[p] + (ptrdiff_t)px * d->comp[c].step;
    }
}

/* Makes the context read the source's matrix and range (it only knows the format). */
static void set_colorspace(struct SwsContext *sws, const AVFrame *src, bool full)
{
    int *inv, *tbl, src_range, dst_range, bri, con, sat;
    const int *want = sws_getCoefficients(src->colorspace);
    if (sws_getColorspaceDetails(sws, &inv, &src_range, &tbl, &dst_range, &bri, &con, &sat) < 0)
        return;
    if (src_range == (int)full && memcmp(inv, want, 4 * sizeof(int)) == 0) return;
    sws_setColorspaceDetails(sws, want, full, tbl, dst_range, bri, con, sat);
}

int vg_frame_convert_bgr(struct SwsContext **sws, const AVFrame *src, int x, int y, int w, int h,
                         uint8_t *dst, int dst_w, int dst_h, int dst_stride, int out_rect[4])
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src->format);
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)))
        return VG_EUNSUPPORTED;
    if (src->width <= 0 || src->height <= 0 || dst_w <= 0 || dst_h <= 0) return VG_EIO;
    int r[4] = {x, y, w, h};
    fit_region(src, d, r);
    bool full = src->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = normalize_format(src->format, &full);
    *sws = sws_getCachedContext(*sws, r[2], r[3], fmt, dst_w, dst_h, AV_PIX_FMT_BGR24, SWS_BILINEAR,
                                NULL, NULL, NULL);
    if (!*sws) return VG_EIO;
    set_colorspace(*sws, src, full);
    const uint8_t *planes[4];
    offset_planes(src, d, r[0], r[1], planes);
    uint8_t *dst_planes[4] = {dst, NULL, NULL, NULL};
    int dst_strides[4] = {dst_stride, 0, 0, 0};
    if (sws_scale(*sws, planes, src->linesize, 0, r[3], dst_planes, dst_strides) <= 0)
        return VG_EIO;
    if (out_rect) memcpy(out_rect, r, sizeof(r));
    return VG_OK;
}

int vg_frame_snapshot_bgr(const vg_frame_t *f, int max_width, uint8_t **bgr, int *w, int *h,
                          int *stride)
{
    frame_impl_t *fi = impl_of(f);
    pthread_mutex_lock(&fi->src_mu);
    AVFrame *src = fi->src ? av_frame_clone(fi->src) : NULL;
    pthread_mutex_unlock(&fi->src_mu);
    if (!src) return VG_ENOTFOUND;
    int ow = src->width, oh = src->height;
    if (max_width > 0 && ow > max_width) {
        oh = (int)lround((double)oh * max_width / ow);
        ow = max_width;
    }
    oh = oh < 1 ? 1 : oh;
    int ostride = (3 * ow + VIEW_ALIGN - 1) / VIEW_ALIGN * VIEW_ALIGN;
    void *buf = NULL;
    VG_CHECK(posix_memalign(&buf, VIEW_ALIGN, (size_t)ostride * (size_t)oh) == 0);
    struct SwsContext *sws = NULL;
    int rc = vg_frame_convert_bgr(&sws, src, 0, 0, 0, 0, buf, ow, oh, ostride, NULL);
    sws_freeContext(sws);
    av_frame_free(&src);
    if (rc != VG_OK) {
        free(buf);
        return VG_EIO;
    }
    *bgr = buf, *w = ow, *h = oh, *stride = ostride;
    return VG_OK;
}

/* ---- mailbox ---- */

vg_mailbox_t *vg_mailbox_new(void)
{
    vg_mailbox_t *mb = vg_xcalloc(1, sizeof(*mb));
    VG_CHECK(pthread_mutex_init(&mb->mu, NULL) == 0);
    atomic_init(&mb->posted, 0);
    atomic_init(&mb->dropped, 0);
    return mb;
}

void vg_mailbox_free(vg_mailbox_t *mb)
{
    if (!mb) return;
    vg_mailbox_clear(mb);
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}

bool vg_mailbox_post(vg_mailbox_t *mb, vg_frame_t *frame)
{
    vg_frame_ref(frame); /* for mb->latest */
    pthread_mutex_lock(&mb->mu);
    vg_frame_t *replaced = mb->slot, *prev_latest = mb->latest;
    mb->slot = frame;
    mb->latest = frame;
    vg_mailbox_notify_fn notify = mb->notify;
    void *arg = mb->notify_arg;
    pthread_mutex_unlock(&mb->mu);

    atomic_fetch_add_explicit(&mb->posted, 1, memory_order_relaxed);
    if (replaced) atomic_fetch_add_explicit(&mb->dropped, 1, memory_order_relaxed);
    if (prev_latest) {
        frame_release_source(prev_latest);
        vg_frame_unref(prev_latest);
    }
    vg_frame_unref(replaced);
    if (notify) notify(arg);
    return replaced != NULL;
}

vg_frame_t *vg_mailbox_take(vg_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->mu);
    vg_frame_t *f = mb->slot;
    mb->slot = NULL;
    pthread_mutex_unlock(&mb->mu);
    return f;
}

vg_frame_t *vg_mailbox_latest(vg_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->mu);
    vg_frame_t *f = mb->latest ? vg_frame_ref(mb->latest) : NULL;
    pthread_mutex_unlock(&mb->mu);
    return f;
}

void vg_mailbox_clear(vg_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->mu);
    vg_frame_t *slot = mb->slot, *latest = mb->latest;
    mb->slot = NULL;
    mb->latest = NULL;
    pthread_mutex_unlock(&mb->mu);
    vg_frame_unref(slot);
    vg_frame_unref(latest);
}

void vg_mailbox_set_notify(vg_mailbox_t *mb, vg_mailbox_notify_fn fn, void *arg)
{
    pthread_mutex_lock(&mb->mu);
    mb->notify = fn;
    mb->notify_arg = arg;
    pthread_mutex_unlock(&mb->mu);
}

uint64_t vg_mailbox_posted(const vg_mailbox_t *mb)
{
    return atomic_load_explicit(&mb->posted, memory_order_relaxed);
}

uint64_t vg_mailbox_dropped(const vg_mailbox_t *mb)
{
    return atomic_load_explicit(&mb->dropped, memory_order_relaxed);
}
