/* Unit tests for capture.c with real inputs: clips made at run time with ffmpeg from
 * $VIGIL_SHARED_DIR/fixtures/person.jpg (15 fps, 640x360), bad files, a refused port
 * and a TCP listener that never answers. Each capture test takes a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vigil/capture.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/mailbox.h"
#include "vigil/metrics.h"

static char dir[256];
static char clip_g30[300], clip_g15[300], clip_resize[300], clip_ts[300], text_file[300];

/* ---- fixtures ---- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* An H.264 clip of the fixture photo with a slow zoom, so pictures differ. */
static int make_clip(const char *out, int w, int h, int gop, double seconds, const char *extra)
{
    const char *shared = getenv("VIGIL_SHARED_DIR");
    char *cmd = vg_xasprintf(
        "ffmpeg -nostdin -loglevel error -y -loop 1 -framerate 15 -i '%s/fixtures/person.jpg' "
        "-vf \"scale=%d:%d,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
        ":d=1:s=%dx%d:fps=15\" -t %.1f -r 15 -c:v libx264 -preset veryfast -bf 0 -g %d "
        "-keyint_min %d -sc_threshold 0 -pix_fmt yuv420p %s '%s'",
        shared ? shared : "../shared", w * 2, h * 2, w, h, seconds, gop, gop, extra, out);
    int rc = run(cmd);
    free(cmd);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/vigil-capture-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return -1;
    snprintf(clip_g30, sizeof(clip_g30), "%s/g30.mp4", dir);
    snprintf(clip_g15, sizeof(clip_g15), "%s/g15.mp4", dir);
    snprintf(clip_resize, sizeof(clip_resize), "%s/resize.ts", dir);
    snprintf(text_file, sizeof(text_file), "%s/notes.txt", dir);
    snprintf(clip_ts, sizeof(clip_ts), "%s/live.ts", dir);
    char a[300], b[300];
    snprintf(a, sizeof(a), "%s/a.ts", dir);
    snprintf(b, sizeof(b), "%s/b.ts", dir);
    if (make_clip(clip_g30, 640, 360, 30, 4, "") || make_clip(clip_g15, 640, 360, 15, 4, "") ||
        make_clip(a, 640, 360, 15, 2, "-f mpegts") ||
        make_clip(b, 320, 240, 15, 2, "-output_ts_offset 2 -f mpegts") ||
        make_clip(clip_ts, 640, 360, 15, 2, "-f mpegts"))
        return -1;
    char *cmd = vg_xasprintf("cat '%s' '%s' > '%s' && echo 'not a video at all' > '%s'", a, b,
                             clip_resize, text_file);
    int rc = run(cmd);
    free(cmd);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = vg_xasprintf("rm -rf '%s'", dir);
    run(cmd);
    free(cmd);
    return 0;
}

/* ---- helpers ---- */

typedef struct {
    pthread_mutex_t mu;
    int n;
    vg_capture_state_t states[64];
    char error[256];
} recorder_t;

static void on_state(void *arg, const char *stream_id, vg_capture_state_t st, const char *error)
{
    recorder_t *r = arg;
    assert_non_null(stream_id);
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) r->states[r->n++] = st;
    if (error) snprintf(r->error, sizeof(r->error), "%s", error);
    pthread_mutex_unlock(&r->mu);
}

typedef struct {
    vg_mailbox_t *mb;
    vg_capture_t *cap;
    recorder_t rec;
} fixture_t;

static fixture_t *fixture_new(const char *id, const char *url, double fps, vg_capture_cfg_t *over)
{
    fixture_t *fx = vg_xcalloc(1, sizeof(*fx));
    pthread_mutex_init(&fx->rec.mu, NULL);
    fx->mb = vg_mailbox_new();
    vg_capture_cfg_t cfg = over ? *over : (vg_capture_cfg_t){0};
    cfg.stream_id = id;
    cfg.url = url;
    cfg.fps = fps;
    cfg.mailbox = fx->mb;
    cfg.on_state = on_state;
    cfg.on_state_arg = &fx->rec;
    assert_int_equal(vg_capture_new(&cfg, &fx->cap), 0);
    assert_int_equal(vg_capture_start(fx->cap), 0);
    return fx;
}

/* Stops (asserting it takes < 1 s) and frees. */
static void fixture_free(fixture_t *fx)
{
    double t0 = vg_now_mono();
    vg_capture_stop(fx->cap);
    double took = vg_now_mono() - t0;
    print_message("stop took %.3f s\n", took);
    assert_true(took < 1.0);
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    assert_int_equal(st.state, VG_CAPTURE_STOPPED);
    assert_int_equal(fx->rec.states[fx->rec.n - 1], VG_CAPTURE_STOPPED);
    vg_capture_free(fx->cap);
    vg_mailbox_free(fx->mb);
    pthread_mutex_destroy(&fx->rec.mu);
    free(fx);
}

static void sleep_s(double s)
{
    usleep((useconds_t)(s * 1e6));
}

static bool wait_state(fixture_t *fx, vg_capture_state_t want, double timeout)
{
    for (double end = vg_now_mono() + timeout; vg_now_mono() < end; sleep_s(0.01)) {
        vg_capture_stats_t st;
        vg_capture_stats(fx->cap, &st);
        if (st.state == want) return true;
    }
    return false;
}

static bool wait_keyframe_only(fixture_t *fx, bool want, double timeout)
{
    for (double end = vg_now_mono() + timeout; vg_now_mono() < end; sleep_s(0.01)) {
        vg_capture_stats_t st;
        vg_capture_stats(fx->cap, &st);
        if (st.keyframe_only == want) return true;
    }
    return false;
}

static double counter(const char *name, const char *id)
{
    return vg_series_value(vg_metric_series(vg_metric_counter(name, "", "stream_id"), id));
}

static double gauge(const char *name, const char *id)
{
    return vg_series_value(vg_metric_series(vg_metric_gauge(name, "", "stream_id"), id));
}

/* Mean and spread of a view's bytes: a real picture is neither flat nor black. */
static void check_view_content(const vg_frame_view_t *v)
{
    double sum = 0, sq = 0;
    size_t n = 0;
    for (int y = 0; y < v->height; y++) {
        for (int x = 0; x < 3 * v->width; x++) {
            double b = v->data[(size_t)y * (size_t)v->stride + (size_t)x];
            sum += b;
            sq += b * b;
            n++;
        }
    }
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    assert_true(mean > 20 && mean < 235);
    assert_true(sd > 10);
}

/* Takes frames for `seconds`, checking each; returns how many were taken. */
static int consume(fixture_t *fx, double seconds, const vg_capture_view_t *views, int n_views,
                   int *widths_seen)
{
    int taken = 0;
    uint64_t last_seq = 0;
    for (double end = vg_now_mono() + seconds; vg_now_mono() < end; sleep_s(0.01)) {
        vg_frame_t *f = vg_mailbox_take(fx->mb);
        if (!f) continue;
        taken++;
        assert_true(f->seq > last_seq);
        last_seq = f->seq;
        assert_true(fabs(f->captured_at - vg_now_wall()) < 2.0);
        assert_true(fabs(f->captured_mono - vg_now_mono()) < 2.0);
        assert_false(isnan(f->pts_s));
        assert_int_equal(f->n_views, n_views);
        for (int i = 0; i < n_views; i++) {
            assert_int_equal(f->views[i].width, views[i].out_w);
            assert_int_equal(f->views[i].height, views[i].out_h);
            assert_true(f->views[i].stride >= 3 * views[i].out_w);
            check_view_content(&f->views[i]);
        }
        if (widths_seen) widths_seen[f->src_width == 640 ? 0 : f->src_width == 320 ? 1 : 2]++;
        vg_frame_unref(f);
    }
    return taken;
}

/* ---- tests ---- */

static void test_invalid_cfg(void **state)
{
    (void)state;
    vg_mailbox_t *mb = vg_mailbox_new();
    vg_capture_t *c = NULL;
    vg_capture_cfg_t ok = {.stream_id = "x", .url = clip_g30, .fps = 5, .mailbox = mb};
    vg_capture_cfg_t bad;
    bad = ok, bad.fps = 0;
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.fps = 31;
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.rtsp_transport = "http";
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.mailbox = NULL;
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.url = "";
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.n_views = 1, bad.views[0] = (vg_capture_view_t){.out_w = 0, .out_h = 10};
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    bad = ok, bad.n_views = 5;
    assert_int_equal(vg_capture_new(&bad, &c), VG_EINVAL);
    assert_int_equal(vg_capture_new(&ok, &c), 0);
    assert_int_equal(vg_capture_set_fps(c, 0.001), VG_EINVAL);
    assert_int_equal(vg_capture_set_fps(c, 0.01), 0);
    vg_capture_view_t v = {.x = -1, .out_w = 8, .out_h = 8};
    assert_int_equal(vg_capture_set_views(c, &v, 1), VG_EINVAL);
    vg_capture_stats_t st;
    vg_capture_stats(c, &st);
    assert_int_equal(st.state, VG_CAPTURE_STOPPED); /* never started */
    vg_capture_stop(c);                             /* no-op */
    vg_capture_free(c);
    vg_capture_free(NULL);
    vg_mailbox_free(mb);
    assert_string_equal(vg_capture_state_name(VG_CAPTURE_RECONNECTING), "reconnecting");
}

static void test_sample_5fps(void **state)
{
    (void)state;
    vg_capture_cfg_t cfg = {.n_views = 2};
    cfg.views[0] = (vg_capture_view_t){.out_w = 320, .out_h = 180};
    cfg.views[1] =
        (vg_capture_view_t){.x = 320, .y = 0, .w = 320, .h = 360, .out_w = 160, .out_h = 160};
    fixture_t *fx = fixture_new("cam5", clip_g30, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    sleep_s(0.5);
    vg_capture_stats_t s0, s1;
    vg_capture_stats(fx->cap, &s0);
    double t0 = vg_now_mono();
    int taken = consume(fx, 4.0, cfg.views, 2, NULL);
    vg_capture_stats(fx->cap, &s1);
    double rate = (double)(s1.frames_sampled - s0.frames_sampled) / (vg_now_mono() - t0);
    double decoded = (double)(s1.frames_decoded - s0.frames_decoded) / (vg_now_mono() - t0);
    print_message("5 fps: sampled %.2f/s decoded %.2f/s measured %.2f taken %d dropped %llu "
                  "decode %.4f s\n",
                  rate, decoded, s1.fps, taken, (unsigned long long)s1.frames_dropped,
                  s1.last_decode_s);
    assert_true(rate > 5 * 0.85 && rate < 5 * 1.15);
    assert_true(s1.fps > 5 * 0.85 && s1.fps < 5 * 1.15);
    assert_true(decoded > 12); /* 5 fps > keyframe rate 0.5: every picture decoded */
    assert_false(s1.keyframe_only);
    assert_true(fabs(s1.keyframe_interval_s - 2.0) < 0.01);
    assert_true(taken >= 15);
    assert_int_equal(s1.src_width, 640);
    assert_int_equal(s1.src_height, 360);
    assert_int_equal(s1.reconnects, 0); /* the file loops, it is not reopened */
    assert_string_equal(s1.last_error, "");
    assert_true(gauge("vigil_stream_up", "cam5") == 1);
    assert_true(gauge("vigil_stream_target_fps", "cam5") == 5);
    fixture_free(fx);
    assert_true(gauge("vigil_stream_up", "cam5") == 0);
}

static void test_keyframe_only_1fps(void **state)
{
    (void)state;
    vg_capture_cfg_t cfg = {.n_views = 1};
    cfg.views[0] = (vg_capture_view_t){.out_w = 96, .out_h = 96};
    fixture_t *fx = fixture_new("cam1", clip_g15, 1, &cfg);
    assert_true(wait_keyframe_only(fx, true, 4));
    vg_capture_stats_t s0, s1;
    vg_capture_stats(fx->cap, &s0);
    double t0 = vg_now_mono();
    consume(fx, 4.0, cfg.views, 1, NULL);
    vg_capture_stats(fx->cap, &s1);
    double dt = vg_now_mono() - t0;
    uint64_t sampled = s1.frames_sampled - s0.frames_sampled;
    uint64_t decoded = s1.frames_decoded - s0.frames_decoded;
    print_message("1 fps: sampled %llu decoded %llu in %.2f s, keyframe interval %.2f\n",
                  (unsigned long long)sampled, (unsigned long long)decoded, dt,
                  s1.keyframe_interval_s);
    assert_true(s1.keyframe_only);
    assert_true(decoded <= sampled + 1);
    assert_true(sampled >= 3 && sampled <= 5);
    assert_true(counter("vigil_stream_frames_decoded_total", "cam1") >= (double)decoded);
    fixture_free(fx);
}

static void test_full_decode_10fps(void **state)
{
    (void)state;
    fixture_t *fx = fixture_new("cam10", clip_g30, 10, NULL);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    sleep_s(2.5); /* two keyframes seen: the interval is known */
    vg_capture_stats_t s0, s1;
    vg_capture_stats(fx->cap, &s0);
    double t0 = vg_now_mono();
    consume(fx, 3.0, NULL, 0, NULL);
    vg_capture_stats(fx->cap, &s1);
    double dt = vg_now_mono() - t0;
    double sampled = (double)(s1.frames_sampled - s0.frames_sampled) / dt;
    double decoded = (double)(s1.frames_decoded - s0.frames_decoded) / dt;
    print_message("10 fps: sampled %.2f/s decoded %.2f/s\n", sampled, decoded);
    assert_false(s1.keyframe_only);
    assert_true(s1.keyframe_interval_s > 1.9);
    assert_true(sampled > 10 * 0.85 && sampled < 10 * 1.15);
    assert_true(decoded > 15 * 0.85);
    fixture_free(fx);
}

static void test_live_setters(void **state)
{
    (void)state;
    vg_capture_cfg_t cfg = {.n_views = 1};
    cfg.views[0] = (vg_capture_view_t){.out_w = 64, .out_h = 64};
    fixture_t *fx = fixture_new("camset", clip_g15, 10, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    sleep_s(2.2);
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    assert_false(st.keyframe_only);
    vg_capture_view_t v2[2] = {{.out_w = 32, .out_h = 16},
                               {.x = 10, .y = 10, .w = 100, .h = 100, .out_w = 50, .out_h = 50}};
    assert_int_equal(vg_capture_set_views(fx->cap, v2, 2), 0);
    assert_int_equal(vg_capture_set_fps(fx->cap, 1), 0);
    assert_true(wait_keyframe_only(fx, true, 1.5));
    sleep_s(0.2);
    vg_frame_t *old = vg_mailbox_take(fx->mb);
    vg_frame_unref(old);
    assert_true(consume(fx, 2.5, v2, 2, NULL) >= 1);
    vg_frame_t *f = vg_mailbox_latest(fx->mb);
    assert_non_null(f);
    assert_int_equal(f->views[1].x, 10);
    assert_int_equal(f->views[1].w, 100);
    uint8_t *bgr;
    int w, h, stride;
    assert_int_equal(vg_frame_snapshot_bgr(f, 320, &bgr, &w, &h, &stride), 0);
    assert_int_equal(w, 320);
    assert_int_equal(h, 180);
    free(bgr);
    vg_frame_unref(f);
    assert_int_equal(vg_capture_set_fps(fx->cap, 10), 0);
    assert_true(wait_keyframe_only(fx, false, 1.5));
    fixture_free(fx);
}

static void test_restart(void **state)
{
    (void)state;
    fixture_t *fx = fixture_new("camrs", clip_g30, 2, NULL);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    sleep_s(0.3);
    vg_capture_restart(fx->cap);
    sleep_s(0.1);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    pthread_mutex_lock(&fx->rec.mu);
    assert_true(fx->rec.n >= 4);
    assert_int_equal(fx->rec.states[fx->rec.n - 2], VG_CAPTURE_RECONNECTING);
    assert_int_equal(fx->rec.states[fx->rec.n - 1], VG_CAPTURE_RUNNING);
    pthread_mutex_unlock(&fx->rec.mu);
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    assert_int_equal(st.reconnects, 1);
    assert_true(counter("vigil_stream_reconnects_total", "camrs") == 1);
    fixture_free(fx);
}

static void test_resolution_change(void **state)
{
    (void)state;
    vg_capture_cfg_t cfg = {.n_views = 2};
    cfg.views[0] = (vg_capture_view_t){.out_w = 224, .out_h = 224};
    cfg.views[1] =
        (vg_capture_view_t){.x = 100, .y = 50, .w = 200, .h = 100, .out_w = 64, .out_h = 32};
    fixture_t *fx = fixture_new("camres", clip_resize, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    int widths[3] = {0};
    consume(fx, 5.0, cfg.views, 2, widths);
    print_message("resolution change: %d frames at 640, %d at 320, %d other\n", widths[0],
                  widths[1], widths[2]);
    assert_true(widths[0] >= 3);
    assert_true(widths[1] >= 3);
    assert_int_equal(widths[2], 0);
    fixture_free(fx);
}

static void expect_error(fixture_t *fx, const char *must_contain)
{
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    print_message("error: %s\n", st.last_error);
    assert_non_null(strstr(st.last_error, must_contain));
    pthread_mutex_lock(&fx->rec.mu);
    assert_non_null(strstr(fx->rec.error, must_contain));
    pthread_mutex_unlock(&fx->rec.mu);
}

static void test_not_a_video(void **state)
{
    (void)state;
    fixture_t *fx = fixture_new("camtxt", text_file, 5, NULL);
    assert_true(wait_state(fx, VG_CAPTURE_FAILED, 3));
    expect_error(fx, "Invalid data");
    expect_error(fx, "notes.txt");
    fixture_free(fx);

    fx = fixture_new("camnone", "/nonexistent/dir/clip.mp4", 5, NULL);
    assert_true(wait_state(fx, VG_CAPTURE_FAILED, 3));
    expect_error(fx, "No such file");
    fixture_free(fx);
}

static bool file_contains(const char *path, const char *needle)
{
    char *cmd = vg_xasprintf("grep -q -- '%s' '%s'", needle, path);
    bool found = system(cmd) == 0;
    free(cmd);
    return found;
}

static void test_refused_redacted(void **state)
{
    (void)state;
    char log_path[300];
    snprintf(log_path, sizeof(log_path), "%s/refused.log", dir);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    vg_log_set_fd(fd);
    vg_log_set_level(VG_LOG_DEBUG); /* FFmpeg's own lines too */
    vg_capture_cfg_t cfg = {.reconnect_initial_s = 0.1, .reconnect_max_s = 0.2};
    fixture_t *fx = fixture_new("camrtsp", "rtsp://user:secret@127.0.0.1:1/x", 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RECONNECTING, 3));
    sleep_s(0.5); /* a few attempts */
    expect_error(fx, "rtsp://user:***@127.0.0.1:1/x");
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    assert_null(strstr(st.last_error, "secret"));
    assert_true(st.reconnects >= 1);
    fixture_free(fx);
    vg_log_set_fd(2);
    vg_log_set_level(VG_LOG_INFO);
    close(fd);
    assert_true(file_contains(log_path, "capture_reconnect"));
    assert_true(file_contains(log_path, "user:\\*\\*\\*@"));
    assert_false(file_contains(log_path, "secret"));
    double info =
        vg_series_value(vg_metric_series(vg_metric_gauge("vigil_stream_info", "", "stream_id,url"),
                                         "camrtsp", "rtsp://user:***@127.0.0.1:1/x"));
    assert_true(info == 1);
}

/* A TCP server that accepts connections, sends each the bytes of `payload` (if any),
 * then never says another word: a camera that froze. */
typedef struct {
    int fd, port, conns[16], n;
    const char *payload;
    pthread_t thread;
} silent_t;

static void send_file(int conn, const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[16384];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (send(conn, buf, n, MSG_NOSIGNAL) != (ssize_t)n) break;
    }
    if (f) fclose(f);
}

static void *silent_accept(void *arg)
{
    silent_t *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) return NULL;
        if (s->payload) send_file(c, s->payload);
        if (s->n < 16)
            s->conns[s->n++] = c;
        else
            close(c);
    }
}

static void silent_start(silent_t *s, const char *payload)
{
    memset(s, 0, sizeof(*s));
    s->payload = payload;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t len = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, silent_accept, s), 0);
}

static void silent_stop(silent_t *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < s->n; i++)
        close(s->conns[i]);
}

/* A live input that delivers two seconds of video, then freezes with the connection
 * open: a stall, a reconnect, running again. */
static void test_stall(void **state)
{
    (void)state;
    silent_t srv;
    silent_start(&srv, clip_ts);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", srv.port);
    vg_capture_cfg_t cfg = {
        .stall_timeout_s = 1.0, .reconnect_initial_s = 0.1, .reconnect_max_s = 0.2};
    fixture_t *fx = fixture_new("camstall", url, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 3));
    double t0 = vg_now_mono();
    assert_true(wait_state(fx, VG_CAPTURE_RECONNECTING, 3));
    double stalled_after = vg_now_mono() - t0;
    expect_error(fx, "stalled");
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    print_message("stall detected %.2f s after running; sampled %llu\n", stalled_after,
                  (unsigned long long)st.frames_sampled);
    assert_int_equal(st.stalls, 1);
    assert_true(st.frames_sampled >= 5); /* live input: the burst is sampled by pts */
    assert_true(wait_state(fx, VG_CAPTURE_RUNNING, 2));
    sleep_s(0.5); /* frozen again, blocked in a read: stop is still immediate */
    vg_capture_stats(fx->cap, &st);
    assert_true(st.reconnects >= 1);
    assert_true(counter("vigil_stream_stalls_total", "camstall") >= 1);
    fixture_free(fx);
    silent_stop(&srv);
}

static void test_silent_server(void **state)
{
    (void)state;
    silent_t srv;
    silent_start(&srv, NULL);
    char url[64];
    snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/x", srv.port);

    /* Blocked in the RTSP handshake with a long open timeout: stop still returns at once. */
    vg_capture_cfg_t cfg = {.open_timeout_s = 30, .read_timeout_s = 30};
    fixture_t *fx = fixture_new("camsilent", url, 5, &cfg);
    sleep_s(0.5);
    vg_capture_stats_t st;
    vg_capture_stats(fx->cap, &st);
    assert_int_equal(st.state, VG_CAPTURE_CONNECTING);
    fixture_free(fx);

    /* A short open timeout: gives up and goes reconnecting. */
    cfg = (vg_capture_cfg_t){
        .open_timeout_s = 0.4, .reconnect_initial_s = 0.2, .reconnect_max_s = 0.4};
    fx = fixture_new("camsilent2", url, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_RECONNECTING, 2));
    expect_error(fx, "timed out");
    sleep_s(0.8);
    vg_capture_stats(fx->cap, &st);
    assert_true(st.reconnects >= 1);
    fixture_free(fx);
    silent_stop(&srv);
}

/* FFmpeg's protocol_whitelist: a URL that reached the capture without passing the
 * config rules (concat:, subfile, ...) opens nothing, though FFmpeg alone would play it;
 * the plain path of the same clip plays. */
static void test_protocol_whitelist(void **state)
{
    (void)state;
    char url[700];
    snprintf(url, sizeof(url), "concat:%s|%s", clip_g30, clip_g30);
    vg_capture_cfg_t cfg = {.reconnect_initial_s = 0.1, .reconnect_max_s = 0.2};
    fixture_t *fx = fixture_new("camconcat", url, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_FAILED, 3));
    expect_error(fx, "cannot open");
    fixture_free(fx);
    snprintf(url, sizeof(url), "subfile,,start,0,end,0,,:%s", clip_g30);
    fx = fixture_new("camsubfile", url, 5, &cfg);
    assert_true(wait_state(fx, VG_CAPTURE_FAILED, 3));
    fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_whitelist),
        cmocka_unit_test(test_invalid_cfg),
        cmocka_unit_test(test_sample_5fps),
        cmocka_unit_test(test_keyframe_only_1fps),
        cmocka_unit_test(test_full_decode_10fps),
        cmocka_unit_test(test_live_setters),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_resolution_change),
        cmocka_unit_test(test_not_a_video),
        cmocka_unit_test(test_refused_redacted),
        cmocka_unit_test(test_silent_server),
        cmocka_unit_test(test_stall),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
