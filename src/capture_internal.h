/* capture_internal.h — private to the capture module (capture.c: lifecycle, thread,
 * reconnects, state, stats; capture_session.c: one connection's FFmpeg work). Not for
 * other modules: their face is include/vigil/capture.h.
 *
 * Ownership: the owner thread calls new/start/stop/free and the setters; the capture
 * thread owns the session (every FFmpeg object) and the `run` fields. The two share
 * only atomics, the views (views_mu) and the error and fps-window statistics
 * (stats_mu). */
#ifndef VIGIL_CAPTURE_INTERNAL_H
#define VIGIL_CAPTURE_INTERNAL_H

#include "vigil/capture.h"
#include "vigil/decode_policy.h"
#include "vigil/gate.h"
#include "vigil/metrics.h"
#include "vigil/sampler.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#define VG_CAPTURE_LOG "capture" /* log module */
#define VG_CAPTURE_FPS_RING 320
#define VG_CAPTURE_READ_AT_RING 64
#define VG_CAPTURE_HELD_MAX 512          /* packets of one GOP kept while still */
#define VG_CAPTURE_HELD_BYTES (8u << 20) /* ... and their bytes at most */
#define VG_CAPTURE_DELAY_RING 64         /* change-to-decode delays kept for p50/p95 */

/* How a connection ended. */
typedef enum {
    VG_CAPTURE_OUT_OPENED, /* internal: session_open succeeded */
    VG_CAPTURE_OUT_STOP,
    VG_CAPTURE_OUT_RESTART,
    VG_CAPTURE_OUT_STALL,
    VG_CAPTURE_OUT_ERROR,  /* transient: back off and retry */
    VG_CAPTURE_OUT_FAILED, /* the input cannot work as it is: retry slowly */
} vg_capture_outcome_t;

enum {
    VG_CAPTURE_DEADLINE_NONE,
    VG_CAPTURE_DEADLINE_OPEN,
    VG_CAPTURE_DEADLINE_READ,
    VG_CAPTURE_DEADLINE_STALL
};

typedef struct {
    vg_series_t *up, *decoded, *sampled, *dropped, *reconnects, *stalls, *target_fps, *fps,
        *decode_s, *info, *repeated, *still, *change_delay, *wake_size, *wake_view, *cpu;
} vg_capture_series_t;

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
    bool paced;                          /* non-live inputs: real-time pacing by dts */
    double pace_wall0, pace_ts0, pace_last;
    double loop_offset;       /* added to a file's timestamps after loops */
    double max_ts, frame_dur; /* latest stream time seen; picture duration */
    bool loop_pending;        /* looped; the offset is set at the next packet */
    bool keyframe_only, need_key;
    double need_key_until;
    vg_sampler_t sampler;
    struct {
        int64_t pts;
        double wall, mono;
    } read_at[VG_CAPTURE_READ_AT_RING]; /* when each packet was read, by pts */
    int read_at_pos;
    struct SwsContext *sws[VG_CAPTURE_MAX_VIEWS];
    bool convert_warned;
    /* decode policy (capture_policy.c) */
    vg_decode_policy_t policy;
    vg_gate_t *gate;                     /* the capture's own view-change thumbnail, on luma */
    AVPacket *held[VG_CAPTURE_HELD_MAX]; /* this GOP's packets not decoded while still */
    int n_held;
    size_t held_bytes;
    bool base;              /* every packet of this GOP so far was decoded or held */
    bool flushing;          /* decoding held packets: pictures are judged, not sampled */
    vg_frame_t *last_frame; /* newest built frame: what repeats show */
    AVFrame *last_pic;      /* its decoded picture, for the repeats' snapshots */
    bool awaiting_change;   /* still: the next changed picture measures the delay */
    double still_seen_mono; /* monotonic read time of the last picture seen unchanged while still */
} vg_capture_session_t;

struct vg_capture {
    struct { /* immutable after new */
        char *stream_id, *url, *url_redacted, *transport;
        double stall_s, backoff_initial_s, backoff_max_s, open_s, read_s;
        double still_interval_s, still_after_s;
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

    pthread_t thread; /* owner thread only: thread, started, joined */
    bool started, joined;
    atomic_bool stop, restart;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;

    atomic_int state;
    atomic_uint_fast64_t decoded, sampled, dropped, reconnects, stalls, repeated, wakeups;
    atomic_bool keyframe_only, still;
    _Atomic double cpu_s; /* capture thread CPU time, all connections */
    _Atomic double key_interval, last_decode_s;
    atomic_int src_w, src_h;
    pthread_mutex_t stats_mu;
    char last_error[256];
    double sample_at[VG_CAPTURE_FPS_RING];
    int n_samples, sample_pos;
    double sampling_since;
    double delays[VG_CAPTURE_DELAY_RING]; /* change-to-decode delays (stats_mu) */
    int n_delays, delay_pos;
    vg_capture_series_t m;

    struct {               /* capture thread only */
        double deadline;   /* monotonic; the interrupt callback fires after it */
        int deadline_kind; /* what it guards: VG_CAPTURE_DEADLINE_* */
        int expired;       /* the kind of the first deadline that fired, or NONE */
        uint64_t seq, rng;
        double cpu_mark; /* thread CPU time already added to the cpu counter */
        char err[256];
    } run;
};

/* capture_session.c */
vg_capture_outcome_t vg_capture_session_run(vg_capture_t *c, vg_capture_session_t *s);
void vg_capture_session_close(vg_capture_t *c, vg_capture_session_t *s);
/* Sends one packet and hands each picture to vg_capture_on_picture. */
void vg_capture_decode_packet(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt);
/* The frame of a picture: one conversion per view. NULL when one failed. */
vg_frame_t *vg_capture_build_frame(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic,
                                   double ts);
/* Decoded-picture bookkeeping: counters, progress, RUNNING on the first. */
void vg_capture_note_picture(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic,
                             double now);
/* Wall time when the packet with this pts was read (now if unknown). */
void vg_capture_read_time(const vg_capture_session_t *s, int64_t pts, double *wall, double *mono);

/* capture_policy.c: what to decode, sampling, repeats, the view's activity */
void vg_capture_policy_begin(vg_capture_t *c, vg_capture_session_t *s);
/* One video packet, after pacing: decode it, hold it, or skip it. */
void vg_capture_packet(vg_capture_t *c, vg_capture_session_t *s, const AVPacket *pkt);
/* One decoded picture: judge the view, sample, post. */
void vg_capture_on_picture(vg_capture_t *c, vg_capture_session_t *s, const AVFrame *pic);
/* Forgets the held packets (a rewind). */
void vg_capture_release_held(vg_capture_session_t *s);
void vg_capture_policy_end(vg_capture_t *c, vg_capture_session_t *s);
/* Adds the thread's CPU time since the last call to the stream's capture counter. */
void vg_capture_account_cpu(vg_capture_t *c);

/* capture.c, for the session (capture thread) */
void vg_capture_enter_state(vg_capture_t *c, vg_capture_state_t st, const char *err);
bool vg_capture_sleep(vg_capture_t *c, double seconds);       /* true: woken by stop/restart */
double vg_capture_record_sample(vg_capture_t *c, double now); /* returns measured fps */

/* Stream time in seconds (NAN if none), continuous across the loops of a file. */
static inline double vg_capture_stream_time(const vg_capture_session_t *s, int64_t ts)
{
    return ts == AV_NOPTS_VALUE ? NAN : (double)ts * av_q2d(s->tb) + s->loop_offset;
}

static inline bool vg_capture_aborting(const vg_capture_t *c)
{
    return atomic_load(&c->stop) || atomic_load(&c->restart);
}

static inline void vg_capture_count(atomic_uint_fast64_t *counter, vg_series_t *series)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    vg_series_inc(series);
}

#endif
