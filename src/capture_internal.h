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
#include "vigil/metrics.h"
#include "vigil/sampler.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <pthread.h>
#include <stdatomic.h>

#define VG_CAPTURE_LOG "capture" /* log module */
#define VG_CAPTURE_FPS_RING 320
#define VG_CAPTURE_READ_AT_RING 64

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
        *decode_s, *info;
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
} vg_capture_session_t;

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

    pthread_t thread; /* owner thread only: thread, started, joined */
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
    double sample_at[VG_CAPTURE_FPS_RING];
    int n_samples, sample_pos;
    double sampling_since;
    vg_capture_series_t m;

    struct {               /* capture thread only */
        double deadline;   /* monotonic; the interrupt callback fires after it */
        int deadline_kind; /* what it guards: VG_CAPTURE_DEADLINE_* */
        int expired;       /* the kind of the first deadline that fired, or NONE */
        uint64_t seq, rng;
        char err[256];
    } run;
};

/* capture_session.c */
vg_capture_outcome_t vg_capture_session_run(vg_capture_t *c, vg_capture_session_t *s);
void vg_capture_session_close(vg_capture_t *c, vg_capture_session_t *s);

/* capture.c, for the session (capture thread) */
void vg_capture_enter_state(vg_capture_t *c, vg_capture_state_t st, const char *err);
bool vg_capture_sleep(vg_capture_t *c, double seconds);       /* true: woken by stop/restart */
double vg_capture_record_sample(vg_capture_t *c, double now); /* returns measured fps */

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
