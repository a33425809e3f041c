/* capture.c — the capture module's face: a stream's ingest thread ("cap:<stream_id>"),
 * its lifecycle, reconnects with backoff, state, statistics and metrics. What one
 * connection does (open, read, decode, sample, convert, post) is in capture_session.c.
 *
 * The thread loops over connections. When one fails, stalls or ends (live inputs), it
 * reports the state, waits a backoff delay (interruptible by stop and restart) and
 * connects again; files loop inside a connection. Threads and ownership: see
 * capture_internal.h. */
#include "capture_internal.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <libavutil/log.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD VG_CAPTURE_LOG
#define STABLE_RUN_S 60.0 /* running this long resets the backoff */
#define FPS_WINDOW_S 10.0 /* measured fps: sliding window (longer at low fps) */

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
        if (*p && o + 1 < len) out[o++] = *p++;
    }
    out[o < len ? o : len - 1] = '\0';
}

static void av_log_to_vg(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_WARNING || !vg_log_enabled(VG_LOG_DEBUG)) return;
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

void vg_capture_enter_state(vg_capture_t *c, vg_capture_state_t st, const char *err)
{
    if (err) {
        pthread_mutex_lock(&c->stats_mu);
        snprintf(c->last_error, sizeof(c->last_error), "%s", err);
        pthread_mutex_unlock(&c->stats_mu);
    }
    int old = atomic_exchange(&c->state, (int)st);
    if (old == (int)st) return;
    vg_series_set(c->m.up, st == VG_CAPTURE_RUNNING ? 1 : 0);
    vg_log(st == VG_CAPTURE_FAILED ? VG_LOG_WARN : VG_LOG_INFO, MOD, "capture_state",
           "{s:s, s:s, s:s, s:s, s:s?}", "stream_id", c->cfg.stream_id, "url", c->cfg.url_redacted,
           "state", state_names[st], "from", state_names[old], "error", err);
    if (c->cfg.on_state) c->cfg.on_state(c->cfg.on_state_arg, c->cfg.stream_id, st, err);
}

bool vg_capture_sleep(vg_capture_t *c, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (seconds > 0 ? seconds : 0);
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&c->wake_mu);
    while (!vg_capture_aborting(c)) {
        if (pthread_cond_timedwait(&c->wake_cv, &c->wake_mu, &ts) != 0) break;
    }
    pthread_mutex_unlock(&c->wake_mu);
    return vg_capture_aborting(c);
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
        double t =
            c->sample_at[(c->sample_pos - 1 - i + VG_CAPTURE_FPS_RING) % VG_CAPTURE_FPS_RING];
        if (t <= now - window) break;
        n++;
        oldest = t;
        newest = fmax(newest, t);
    }
    if (n == 0) return 0;
    if (now - c->sampling_since >= window) return n / window;
    return n >= 2 && newest > oldest ? (n - 1) / (newest - oldest) : 0;
}

double vg_capture_record_sample(vg_capture_t *c, double now)
{
    pthread_mutex_lock(&c->stats_mu);
    if (c->n_samples == 0) c->sampling_since = now;
    c->sample_at[c->sample_pos] = now;
    c->sample_pos = (c->sample_pos + 1) % VG_CAPTURE_FPS_RING;
    c->n_samples += c->n_samples < VG_CAPTURE_FPS_RING;
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

static const char *outcome_reason(vg_capture_outcome_t out)
{
    switch (out) {
    case VG_CAPTURE_OUT_RESTART:
        return "restart";
    case VG_CAPTURE_OUT_STALL:
        return "stall";
    case VG_CAPTURE_OUT_FAILED:
        return "failed";
    default:
        return "error";
    }
}

/* After a connection ended: counters, state, logs, and the delay before the next. */
static double after_session(vg_capture_t *c, vg_capture_outcome_t out, unsigned *attempt)
{
    double delay;
    if (out == VG_CAPTURE_OUT_STALL) {
        vg_capture_count(&c->stalls, c->m.stalls);
        snprintf(c->run.err, sizeof(c->run.err), "stalled: no decoded frame for %.1f s from %s",
                 c->cfg.stall_s, c->cfg.url_redacted);
        VG_WARN(MOD, "capture_stall", "{s:s, s:s, s:f}", "stream_id", c->cfg.stream_id, "url",
                c->cfg.url_redacted, "stall_timeout_s", c->cfg.stall_s);
    }
    if (out == VG_CAPTURE_OUT_RESTART) {
        *attempt = 0;
        delay = 0;
        vg_capture_enter_state(c, VG_CAPTURE_RECONNECTING, NULL);
    } else if (out == VG_CAPTURE_OUT_FAILED) {
        delay = c->cfg.backoff_max_s;
        vg_capture_enter_state(c, VG_CAPTURE_FAILED, c->run.err);
    } else {
        delay = backoff_delay(c, (*attempt)++);
        vg_capture_enter_state(c, VG_CAPTURE_RECONNECTING, c->run.err);
    }
    bool restart = out == VG_CAPTURE_OUT_RESTART;
    vg_log(restart ? VG_LOG_INFO : VG_LOG_WARN, MOD, "capture_reconnect",
           "{s:s, s:s, s:s, s:s?, s:f, s:i}", "stream_id", c->cfg.stream_id, "url",
           c->cfg.url_redacted, "reason", outcome_reason(out), "error", restart ? NULL : c->run.err,
           "delay_s", round(delay * 1000) / 1000, "attempt", (int)*attempt);
    return delay;
}

static void *capture_main(void *arg)
{
    vg_capture_t *c = arg;
    char name[16]; /* the kernel's limit, with the NUL */
    snprintf(name, sizeof(name), "cap:%s", c->cfg.stream_id);
    pthread_setname_np(pthread_self(), name);
    vg_capture_enter_state(c, VG_CAPTURE_CONNECTING, NULL);
    unsigned attempt = 0;
    for (;;) {
        atomic_store(&c->restart, false);
        vg_capture_session_t s;
        vg_capture_outcome_t out = vg_capture_session_run(c, &s);
        bool stable = s.running && vg_now_mono() - s.running_since >= STABLE_RUN_S;
        if (out == VG_CAPTURE_OUT_RESTART)
            atomic_store(&c->restart, false); /* let the close be polite */
        vg_capture_session_close(c, &s);
        vg_capture_account_cpu(c);
        atomic_store(&c->keyframe_only, false);
        reset_samples(c);
        vg_series_set(c->m.up, 0);
        if (out == VG_CAPTURE_OUT_STOP || atomic_load(&c->stop)) break;
        if (stable) attempt = 0;
        double delay = after_session(c, out, &attempt);
        if (vg_capture_sleep(c, delay) && atomic_load(&c->stop)) break;
        vg_capture_count(&c->reconnects, c->m.reconnects);
    }
    vg_capture_enter_state(c, VG_CAPTURE_STOPPED, NULL);
    return NULL;
}

/* ---- public API ---- */

static bool views_valid(const vg_capture_view_t *v, size_t n)
{
    if (n > VG_CAPTURE_MAX_VIEWS || (n && !v)) return false;
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
           cfg->decoder_threads >= 0 && cfg->decoder_threads <= 64 && cfg->still_interval_s >= 0 &&
           cfg->still_interval_s <= 3600 && cfg->still_after_s >= 0 && cfg->still_after_s <= 3600 &&
           views_valid(cfg->views, cfg->n_views);
}

static double or_default(double v, double def)
{
    return v > 0 ? v : def;
}

enum { COUNTER, GAUGE, HISTOGRAM };

/* The per-stream metric families (label stream_id), by series field. */
static const struct {
    int kind;
    const char *name, *help;
    size_t offset;
} metric_table[] = {
#define SERIES(f) offsetof(vg_capture_series_t, f)
    {GAUGE, "vigil_stream_up", "1 while the stream delivers decoded frames", SERIES(up)},
    {COUNTER, "vigil_stream_frames_decoded_total", "Pictures decoded", SERIES(decoded)},
    {COUNTER, "vigil_stream_frames_sampled_total", "Pictures kept by sampling", SERIES(sampled)},
    {COUNTER, "vigil_stream_frames_dropped_total", "Frames replaced in the mailbox before taken",
     SERIES(dropped)},
    {COUNTER, "vigil_stream_reconnects_total", "Connection attempts after the first",
     SERIES(reconnects)},
    {COUNTER, "vigil_stream_stalls_total", "Connections dropped for lack of decoded frames",
     SERIES(stalls)},
    {GAUGE, "vigil_stream_target_fps", "Configured sampling rate", SERIES(target_fps)},
    {GAUGE, "vigil_stream_fps", "Measured sampling rate", SERIES(fps)},
    {HISTOGRAM, "vigil_stream_decode_duration_seconds", "Time to decode one packet",
     SERIES(decode_s)},
    {GAUGE, "vigil_stream_still",
     "1 while the view is still: one keyframe per capture.still_interval_s is decoded",
     SERIES(still)},
    {COUNTER, "vigil_stream_frames_repeated_total",
     "Sampling slots filled with the previous picture while the view was still", SERIES(repeated)},
    {HISTOGRAM, "vigil_stream_change_decode_delay_seconds",
     "From the read of the last picture seen still to the decode of the first changed one",
     SERIES(change_delay)},
#undef SERIES
};

static void register_metrics(vg_capture_t *c)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(metric_table); i++) {
        const char *name = metric_table[i].name, *help = metric_table[i].help;
        vg_metric_t *m =
            metric_table[i].kind == COUNTER ? vg_metric_counter(name, help, "stream_id")
            : metric_table[i].kind == GAUGE
                ? vg_metric_gauge(name, help, "stream_id")
                : vg_metric_histogram(name, help, "stream_id", vg_metrics_latency_buckets,
                                      vg_metrics_latency_buckets_len);
        vg_series_t **slot = (vg_series_t **)((char *)&c->m + metric_table[i].offset);
        *slot = vg_metric_series(m, c->cfg.stream_id);
    }
    vg_metric_t *info = vg_metric_gauge(
        "vigil_stream_info", "A stream's source URL (credentials redacted)", "stream_id,url");
    c->m.info = vg_metric_series(info, c->cfg.stream_id, c->cfg.url_redacted);
    vg_metric_t *wake =
        vg_metric_counter("vigil_stream_activity_wakeups_total",
                          "Switches from still to active decoding, by trigger "
                          "(view: a decoded picture changed; size: a large P-frame)",
                          "stream_id,trigger");
    c->m.wake_view = vg_metric_series(wake, c->cfg.stream_id, "view");
    c->m.wake_size = vg_metric_series(wake, c->cfg.stream_id, "size");
    c->m.cpu = vg_metric_series(vg_metrics_stream_cpu(), c->cfg.stream_id, "capture");
    vg_series_add(c->m.cpu, 0);
    vg_series_set(c->m.info, 1);
    vg_series_set(c->m.up, 0);
    vg_series_set(c->m.target_fps, atomic_load(&c->fps));
}

int vg_capture_new(const vg_capture_cfg_t *cfg, vg_capture_t **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!cfg || !out || !cfg_valid(cfg)) return VG_EINVAL;
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
    c->cfg.still_interval_s = cfg->still_interval_s;
    c->cfg.still_after_s = cfg->still_after_s;
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
    if (c->started) return VG_EBUSY;
    c->started = true;
    VG_INFO(MOD, "capture_start", "{s:s, s:s, s:f}", "stream_id", c->cfg.stream_id, "url",
            c->cfg.url_redacted, "fps", atomic_load(&c->fps));
    VG_CHECK(pthread_create(&c->thread, NULL, capture_main, c) == 0);
    return VG_OK;
}

void vg_capture_request_stop(vg_capture_t *c)
{
    wake(c, &c->stop);
}

void vg_capture_stop(vg_capture_t *c)
{
    if (!c->started || c->joined) return;
    vg_capture_request_stop(c);
    VG_CHECK(pthread_join(c->thread, NULL) == 0);
    c->joined = true;
}

void vg_capture_free(vg_capture_t *c)
{
    if (!c) return;
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
    if (!fps_valid(fps)) return VG_EINVAL;
    atomic_store(&c->fps, fps);
    vg_series_set(c->m.target_fps, fps);
    return VG_OK;
}

int vg_capture_set_views(vg_capture_t *c, const vg_capture_view_t *views, size_t n)
{
    if (!views_valid(views, n)) return VG_EINVAL;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void delay_quantiles_locked(const vg_capture_t *c, vg_capture_stats_t *out)
{
    double v[VG_CAPTURE_DELAY_RING];
    int n = c->n_delays;
    if (n == 0) return;
    memcpy(v, c->delays, (size_t)n * sizeof(v[0]));
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    out->change_delays = n;
    out->change_delay_p50_s = v[(n - 1) / 2];
    out->change_delay_p95_s = v[(int)ceil(0.95 * n) - 1];
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
    out->still = atomic_load(&c->still);
    out->frames_repeated = atomic_load(&c->repeated);
    out->wakeups = atomic_load(&c->wakeups);
    out->cpu_s = atomic_load(&c->cpu_s);
    pthread_mutex_lock(&mc->stats_mu);
    out->fps = fps_locked(c, vg_now_mono(), out->target_fps);
    delay_quantiles_locked(c, out);
    memcpy(out->last_error, c->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&mc->stats_mu);
}
