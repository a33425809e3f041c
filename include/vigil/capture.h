/* capture.h — one stream's FFmpeg ingest thread: open any FFmpeg input (rtsp, rtsps,
 * http(s), files, plain paths), read, decode, sample at a target fps, convert the kept
 * pictures to the configured BGR views and post them to a mailbox; reconnect with
 * backoff, detect stalls.
 *
 * Inputs: RTSP over TCP unless told "udp", video only. Live inputs are read as fast as
 * they come. Seekable non-RTSP inputs (files) are paced in real time by their timestamps
 * (like ffmpeg -re) and loop forever on one continuous timeline (frame pts_s keeps
 * growing across loops). Sampling keeps one picture per 1/fps of stream time (wall time
 * when timestamps are missing or go backwards); when fps is at or below the measured
 * keyframe rate, only keyframes are decoded.
 *
 * The owner (the stream module, on the loop thread) creates, starts, stops and frees a
 * capture; those calls and the setters never wait on the network: stop() sets a flag
 * that aborts any blocked FFmpeg call and joins within a fraction of a second. Counters
 * are atomics readable from any thread. From new() on, the capture updates the
 * vigil_stream_* metrics (label stream_id) through cached series; the owner calls
 * vg_metrics_remove_label("stream_id", id) after vg_capture_free(), and before creating
 * another capture for the same stream_id.
 * Independent of the config module: it takes its own cfg struct, copied at new(). */
#ifndef VIGIL_CAPTURE_H
#define VIGIL_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/mailbox.h"

#define VG_CAPTURE_MAX_VIEWS VG_FRAME_MAX_VIEWS
#define VG_CAPTURE_FPS_MIN 0.01
#define VG_CAPTURE_FPS_MAX 30.0
#define VG_CAPTURE_VIEW_MAX_SIZE 4096 /* largest out_w / out_h */

/* FAILED means the input answered but cannot work as it is: not a media file, no video
 * stream, no decoder, HTTP/RTSP 401/403/404, unknown protocol, or any error opening a
 * local file (missing, unreadable). It is not terminal: a camera may be replaced or a
 * file appear, so the thread keeps retrying every reconnect_max_s, and goes to RUNNING
 * when that works. Network trouble (refused, unreachable, timeouts, stalls, end of a
 * live stream) is RECONNECTING with exponential backoff instead. */
typedef enum {
    VG_CAPTURE_CONNECTING = 0, /* first attempt to open the input */
    VG_CAPTURE_RUNNING,        /* decoded the first picture of this connection */
    VG_CAPTURE_RECONNECTING,   /* lost the input or could not open it; retrying with backoff */
    VG_CAPTURE_STOPPED,        /* not started yet, or the thread finished (last callback) */
    VG_CAPTURE_FAILED,         /* see above; retrying every reconnect_max_s */
} vg_capture_state_t;

const char *vg_capture_state_name(vg_capture_state_t s); /* "connecting", ... static */

/* A view: the source region (x, y, w, h) in source pixels — w or h 0 means the whole
 * picture; clamped to the picture, origin rounded down to the chroma grid — scaled to
 * out_w x out_h BGR24 (1..VG_CAPTURE_VIEW_MAX_SIZE). */
typedef struct {
    int x, y, w, h;
    int out_w, out_h;
} vg_capture_view_t;

/* Runs on the capture thread, never on the owner's thread: forward it through your own
 * queue, and never call vg_capture_stop/free from it. stream_id and error are borrowed
 * for the call; error is NULL or a message with any credentials redacted. Called once
 * per state change (connecting first); after VG_CAPTURE_STOPPED no further call. */
typedef void (*vg_capture_state_fn)(void *arg, const char *stream_id, vg_capture_state_t state,
                                    const char *error);

typedef struct {
    const char *stream_id;      /* required; copied */
    const char *url;            /* required, any FFmpeg input URL or a file path; copied */
    double fps;                 /* target sampling rate, VG_CAPTURE_FPS_MIN..MAX */
    const char *rtsp_transport; /* "tcp" (default when NULL) or "udp"; copied */
    double stall_timeout_s;     /* connected, no decoded picture this long: stall; 0: 10 */
    double reconnect_initial_s; /* backoff floor (full jitter up to 2^n x this); 0: 1 */
    double reconnect_max_s;     /* backoff cap, and the retry period when failed; 0: 30 */
    double open_timeout_s;      /* deadline for open + stream probing; 0: 10 */
    double read_timeout_s;      /* deadline for one packet read (also the protocol's
                                   socket timeout: RTSP "timeout", others "rw_timeout"); 0: 10 */
    int decoder_threads;        /* 0: 1 */
    double still_interval_s;    /* while the view is still, decode one keyframe per this
                                   (decode_policy.h); 0: off, always decode for the fps */
    double still_after_s;       /* unchanged this long (stream time): still; 0: 3 */
    size_t n_views;             /* 0..VG_CAPTURE_MAX_VIEWS */
    vg_capture_view_t views[VG_CAPTURE_MAX_VIEWS];
    vg_mailbox_t *mailbox;        /* required; borrowed, must outlive the capture */
    vg_capture_state_fn on_state; /* optional */
    void *on_state_arg;
} vg_capture_cfg_t;

typedef struct {
    vg_capture_state_t state;
    uint64_t frames_decoded; /* pictures out of the decoder */
    uint64_t frames_sampled; /* pictures kept by sampling and posted */
    uint64_t frames_dropped; /* posted frames replaced in the mailbox before taken */
    uint64_t reconnects;     /* connection attempts after the first */
    uint64_t stalls;         /* connections dropped for lack of decoded pictures */
    bool keyframe_only;      /* non-key packets are skipped before decoding */
    double target_fps;
    double fps;                 /* sampled frames per second over the last ~10 s */
    double keyframe_interval_s; /* measured in stream time; 0 while unknown */
    double last_decode_s;       /* decoder time for the last packet (no conversion) */
    int src_width, src_height;  /* last decoded picture size; 0 before the first */
    bool still;                 /* the view is still: keyframes only, slots get repeats */
    uint64_t frames_repeated;   /* sampling slots filled with the previous picture */
    uint64_t wakeups;           /* still -> active switches */
    int change_delays;          /* change-to-decode delays behind the two figures below */
    double change_delay_p50_s, change_delay_p95_s; /* of the last 64; 0 when none */
    double cpu_s;                                  /* capture thread CPU time since new() */
    char last_error[256];                          /* redacted; "" when none */
} vg_capture_stats_t;

typedef struct vg_capture vg_capture_t;

/* Validates and copies cfg. Returns 0 and *out (free with vg_capture_free), or VG_EINVAL.
 * The first call also routes FFmpeg's own log lines into vg_log (module "ffmpeg", level
 * debug, URLs redacted) and initialises FFmpeg networking. */
int vg_capture_new(const vg_capture_cfg_t *cfg, vg_capture_t **out);
/* Starts the thread ("cap:<stream_id>"). Returns 0, VG_EBUSY when already started. */
int vg_capture_start(vg_capture_t *c);
/* Asks the thread to stop without waiting: aborts blocked I/O and backoff sleeps. */
void vg_capture_request_stop(vg_capture_t *c);
/* request_stop + join: returns within well under a second even if the camera hangs
 * (measured: a few ms). Idempotent; no-op if never started. Not restartable. */
void vg_capture_stop(vg_capture_t *c);
/* Stops if needed and frees. NULL ok. */
void vg_capture_free(vg_capture_t *c);

/* Live changes, any thread, effective from the next frame without reconnecting. */
int vg_capture_set_fps(vg_capture_t *c, double fps); /* 0 or VG_EINVAL */
int vg_capture_set_views(vg_capture_t *c, const vg_capture_view_t *views,
                         size_t n); /* 0 or VG_EINVAL; views copied */
/* Drops the current connection and reconnects at once (backoff reset). Any thread. */
void vg_capture_restart(vg_capture_t *c);

/* Copies the counters (each read atomically, not all at one instant). Any thread. */
void vg_capture_stats(const vg_capture_t *c, vg_capture_stats_t *out);

#endif
