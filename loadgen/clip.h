/* clip.h — an H.264 clip held in memory as access units, ready to be looped.
 * Loaded once on the main thread at startup (libavformat demux, no decoding); after
 * that it is immutable and any thread may read it. The AU payloads live in one GBytes
 * that buffers handed to GStreamer keep alive by reference. */
#ifndef VIGIL_CAMSIM_CLIP_H
#define VIGIL_CAMSIM_CLIP_H

#include <glib.h>
#include <gst/gst.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t offset, size; /* into the clip's data blob */
    GstClockTime pts;    /* relative to the clip start (first DTS), nanoseconds */
    GstClockTime dts;
    GstClockTime duration;
    bool key;
} vg_clip_au_t;

typedef struct {
    int refs; /* atomic; use vg_clip_ref / vg_clip_unref */
    char *path;
    GBytes *data;      /* all AU payloads back to back */
    vg_clip_au_t *aus; /* n_aus entries, decode order */
    size_t n_aus;
    GstClockTime period; /* one loop of the clip, nanoseconds */
    GstCaps *caps;       /* video/x-h264 avc or byte-stream, alignment=au */
    int width, height;
    double fps; /* frames per second actually used for pacing */
} vg_clip_t;

/* Loads the first H.264 video stream of `path`. `fps` > 0 rescales the timeline so the
 * clip plays at that frame rate; 0 keeps the clip's own timing. On error returns
 * VG_EINVAL/VG_EIO/VG_EUNSUPPORTED and logs why. *out: caller owns one reference. */
int vg_clip_load(const char *path, double fps, vg_clip_t **out);
vg_clip_t *vg_clip_ref(vg_clip_t *clip);
void vg_clip_unref(vg_clip_t *clip); /* NULL is fine */

/* A buffer for AU `i` played in loop `loop`: timestamps are shifted by loop * period - start
 * (start: the DTS of the AU a camera started at, so its timeline starts at 0).
 * Shares the clip memory (no copy). Caller owns the returned buffer. */
GstBuffer *vg_clip_buffer(const vg_clip_t *clip, size_t i, uint64_t loop, GstClockTime start);
/* Index of the first keyframe at or after `phase` (0..1) of the loop; 0 when none. */
size_t vg_clip_keyframe_at(const vg_clip_t *clip, double phase);

#endif
