/* mailbox.h — refcounted frames and the per-stream latest-wins mailbox that hands them
 * from a stream's capture thread to the inference executors.
 *
 * A frame is built by one producer (the capture thread), then posted; from then on it is
 * immutable and shared by reference: any thread may read it, ref it and unref it.
 * The mailbox holds one untaken frame: posting replaces it (the replaced frame counts as
 * dropped), taking empties it. It never blocks the producer: its lock only guards a
 * pointer swap. The mailbox also remembers the newest posted frame (taken or not) for
 * snapshots; only that frame keeps its decoded picture (AVFrame) alive, so snapshots
 * convert lazily without decoder buffers piling up. */
#ifndef VIGIL_MAILBOX_H
#define VIGIL_MAILBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil/limits.h"

struct AVFrame;
struct SwsContext;

#define VG_FRAME_MAX_VIEWS VG_LIMIT_VIEWS_PER_STREAM

/* One model input: a region of the source scaled to width x height, packed BGR24. */
typedef struct {
    uint8_t *data;     /* owned by the frame; rows of stride bytes */
    int width, height; /* output size in pixels */
    int stride;        /* bytes per row, >= 3 * width, a multiple of 64 */
    int x, y, w, h;    /* source region in source pixels (clamped, chroma-aligned) */
} vg_frame_view_t;

typedef struct {
    uint64_t seq;              /* per stream, monotonic from 1, across reconnects */
    double captured_at;        /* wall clock (epoch s) when its packet was read: a timestamp */
    double captured_mono;      /* the same instant on the monotonic clock: for durations */
    double pts_s;              /* stream time in seconds; NAN when the stream had none */
    int src_width, src_height; /* decoded picture size */
    bool repeat;               /* the previous picture again: the capture saw the view still
                                  and did not decode this one (decode policy) */
    int n_views;
    vg_frame_view_t views[VG_FRAME_MAX_VIEWS];
} vg_frame_t;

/* ---- frames: producer side (one thread, before posting) ---- */

/* New empty frame with one reference, owned by the caller. */
vg_frame_t *vg_frame_new(void);
/* Appends a view with an allocated (uninitialised) BGR24 buffer of width x height;
 * the caller fills data and the region fields. NULL when the frame has
 * VG_FRAME_MAX_VIEWS views or the size is not positive. Borrowed (owned by the frame). */
vg_frame_view_t *vg_frame_add_view(vg_frame_t *f, int width, int height);
/* Keeps a new reference to the decoded picture `av` (borrowed) for snapshots. */
void vg_frame_set_source(vg_frame_t *f, const struct AVFrame *av);

/* Converts the region (x, y, w, h) of `src` (borrowed, any software pixel format)
 * straight to packed BGR24 of dst_w x dst_h at dst (dst_stride bytes per row) with one
 * sws_scale; the region is selected by offsetting the plane pointers, its origin
 * rounded down to the chroma grid, and clamped to the picture; w or h <= 0 means the
 * whole picture. `*sws` is the caller's cache for this output (start with NULL; the
 * context is rebuilt when the input size or format changes; sws_freeContext it).
 * Writes the region actually used to out_rect[4] = {x, y, w, h} when not NULL.
 * Returns 0, VG_EUNSUPPORTED (hardware or bitstream format) or VG_EIO. */
int vg_frame_convert_bgr(struct SwsContext **sws, const struct AVFrame *src, int x, int y, int w,
                         int h, uint8_t *dst, int dst_w, int dst_h, int dst_stride,
                         int out_rect[4]);

/* ---- frames: any thread ---- */

/* Adds a reference; returns f. */
vg_frame_t *vg_frame_ref(vg_frame_t *f);
/* Drops a reference; the last one frees the frame. NULL is ignored. */
void vg_frame_unref(vg_frame_t *f);

/* Converts the frame's whole decoded picture to packed BGR24, at most max_width pixels
 * wide (aspect kept; max_width <= 0: full size), with one sws_scale. Runs on the
 * calling thread (never the loop thread: it is the slow part of a snapshot). *bgr is
 * caller-frees (free()). Returns 0, VG_ENOTFOUND when the frame no longer holds its
 * picture (a newer frame was posted since), or VG_EIO. */
int vg_frame_snapshot_bgr(const vg_frame_t *f, int max_width, uint8_t **bgr, int *w, int *h,
                          int *stride);

/* ---- mailbox ---- */

typedef struct vg_mailbox vg_mailbox_t;

/* Called on the posting thread, outside the mailbox lock, after every post. Keep it
 * short and non-blocking (signal a condvar, write an eventfd). */
typedef void (*vg_mailbox_notify_fn)(void *arg);

vg_mailbox_t *vg_mailbox_new(void);
/* Drops the frames it holds. Only once producer and consumers are done. NULL ok. */
void vg_mailbox_free(vg_mailbox_t *mb);

/* Posts `frame`, taking ownership of the caller's reference. Replaces an untaken frame
 * (which then counts as dropped) and releases the previous newest frame's decoded
 * picture. Never blocks on consumers. Returns true when a frame was dropped. */
bool vg_mailbox_post(vg_mailbox_t *mb, vg_frame_t *frame);
/* Takes the newest untaken frame: the caller owns one reference. NULL when empty. */
vg_frame_t *vg_mailbox_take(vg_mailbox_t *mb);
/* The newest posted frame, taken or not, with a new reference (caller unrefs); NULL if
 * nothing was posted since creation or the last clear. For snapshots. */
vg_frame_t *vg_mailbox_latest(vg_mailbox_t *mb);
/* Drops the untaken and newest frames without counting drops (stream stopped). */
void vg_mailbox_clear(vg_mailbox_t *mb);

/* Sets the post notification (fn NULL: none). A post already running may still call the
 * previous callback once; change it only while the producer is stopped. */
void vg_mailbox_set_notify(vg_mailbox_t *mb, vg_mailbox_notify_fn fn, void *arg);

uint64_t vg_mailbox_posted(const vg_mailbox_t *mb);  /* frames posted in total */
uint64_t vg_mailbox_dropped(const vg_mailbox_t *mb); /* frames replaced before taken */

#endif
