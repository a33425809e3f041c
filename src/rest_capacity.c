/* rest_capacity.c — what each stream costs and what is left, for an orchestrator that
 * places rooms: GET /api/v1/capacity, and the "capacity" part of telemetry.
 *
 * A loop timer samples every SAMPLE_S seconds the thread CPU time of each stream (the
 * vigil_stream_cpu_seconds_total series: capture thread + each worker's runs on the
 * executors), the process CPU time and the machine's busy time (/proc/stat), and keeps
 * RING samples; rates are taken over that window (up to 15 s). Estimates:
 *   usable cores = cores x (1 - RESERVE); headroom = usable - machine busy cores
 *   more_streams = floor(headroom / average stream cost) (streams with a rate only)
 *   max_fps of a stream = fps x (cost + headroom) / cost, at most VG_CAPTURE_FPS_MAX
 *     (cost taken as proportional to fps: an upper bound of what the fps costs, since
 *     packet reads and still-room decoding do not grow with it)
 * Loop thread only; owned by the gateway (register/stop). */
#include "gateway_internal.h"
#include "vigil/common.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_S 5
#define RING 4       /* samples: rates over the last 15 s */
#define RESERVE 0.10 /* of the cores, kept free */
#define MAX_STAGES 9 /* capture + up to 8 workers */

typedef struct {
    double t, v;
} pt_t;

typedef struct {
    pt_t p[RING];
    int n, pos;
} ring_t;

typedef struct {
    char *id;
    ring_t cpu; /* sum over stages */
    bool seen;  /* in the last sample */
} track_t;

struct vg_capacity {
    vg_gateway_t *gw;
    struct event *timer;
    track_t *tr;
    size_t n_tr;
    ring_t proc, busy, total; /* process CPU s; machine busy and total jiffies */
};

static void ring_push(ring_t *r, double t, double v)
{
    r->p[r->pos] = (pt_t){t, v};
    r->pos = (r->pos + 1) % RING;
    r->n += r->n < RING;
}

/* Rate per second over the window, and the window's length; -1 when under 2 samples. */
static double ring_rate(const ring_t *r, double *window)
{
    if (r->n < 2) return -1;
    const pt_t *newest = &r->p[(r->pos - 1 + RING) % RING];
    const pt_t *oldest = &r->p[(r->pos - r->n + RING) % RING];
    double dt = newest->t - oldest->t;
    if (window) *window = dt;
    return dt > 0 ? fmax(0, (newest->v - oldest->v) / dt) : -1;
}

static int n_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Machine busy and total jiffies from the first line of /proc/stat. */
static bool machine_jiffies(double *busy, double *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) return false;
    double sum = 0;
    for (int i = 0; i < 8; i++)
        sum += (double)v[i];
    *total = sum;
    *busy = sum - (double)v[3] - (double)v[4]; /* minus idle and iowait */
    return true;
}

/* The stage names of a stream: "capture", then "worker:<id>" per worker. */
static size_t stages_of(vg_stream_t *s, char names[MAX_STAGES][96])
{
    const vg_stream_cfg_t *sc = vg_stream_cfg(s);
    size_t n = 0;
    snprintf(names[n++], sizeof(names[0]), "capture");
    for (size_t i = 0; i < sc->n_workers && n < MAX_STAGES; i++)
        snprintf(names[n++], sizeof(names[0]), "worker:%s", sc->workers[i].worker_id);
    return n;
}

static double stage_cpu(const char *stream_id, const char *stage)
{
    return vg_series_value(vg_metric_series(vg_metrics_stream_cpu(), stream_id, stage));
}

static double stream_cpu(vg_stream_t *s)
{
    char names[MAX_STAGES][96];
    size_t n = stages_of(s, names);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += stage_cpu(vg_stream_id(s), names[i]);
    return sum;
}

static track_t *track_of(struct vg_capacity *cp, const char *id)
{
    for (size_t i = 0; i < cp->n_tr; i++)
        if (strcmp(cp->tr[i].id, id) == 0) return &cp->tr[i];
    cp->tr = vg_xrealloc(cp->tr, (cp->n_tr + 1) * sizeof(*cp->tr));
    track_t *t = &cp->tr[cp->n_tr++];
    memset(t, 0, sizeof(*t));
    t->id = vg_xstrdup(id);
    return t;
}

static void sample(struct vg_capacity *cp)
{
    double now = vg_now_mono();
    vg_streams_t *ss = cp->gw->streams;
    for (size_t i = 0; i < cp->n_tr; i++)
        cp->tr[i].seen = false;
    for (size_t i = 0; ss && i < vg_streams_count(ss); i++) {
        vg_stream_t *s = vg_streams_at(ss, i);
        track_t *t = track_of(cp, vg_stream_id(s));
        ring_push(&t->cpu, now, stream_cpu(s));
        t->seen = true;
    }
    for (size_t i = 0; i < cp->n_tr;) { /* forget removed streams */
        if (cp->tr[i].seen) {
            i++;
            continue;
        }
        free(cp->tr[i].id);
        cp->tr[i] = cp->tr[--cp->n_tr];
    }
    vg_proc_sample_t ps;
    if (vg_proc_sample(&ps) == 0) ring_push(&cp->proc, now, ps.cpu_seconds);
    double busy, total;
    if (machine_jiffies(&busy, &total)) {
        ring_push(&cp->busy, now, busy);
        ring_push(&cp->total, now, total);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sample(arg);
}

static json_t *stream_json(struct vg_capacity *cp, vg_stream_t *s, double headroom,
                           double *cost_out)
{
    const char *id = vg_stream_id(s);
    char names[MAX_STAGES][96];
    size_t n = stages_of(s, names);
    json_t *totals = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(totals, names[i], json_real(stage_cpu(id, names[i])));
    vg_capture_stats_t st;
    vg_stream_capture_stats(s, &st);
    track_t *t = track_of(cp, id);
    double cost = ring_rate(&t->cpu, NULL);
    *cost_out = cost;
    json_t *j =
        json_pack("{s:s, s:f, s:f, s:b, s:o}", "stream_id", id, "fps_target", vg_stream_cfg(s)->fps,
                  "fps_actual", st.fps, "still", st.still, "cpu_seconds_total", totals);
    if (cost < 0) {
        json_object_set_new(j, "cost_cores", json_null());
        json_object_set_new(j, "max_fps", json_null());
        return j;
    }
    double fps = vg_stream_cfg(s)->fps;
    double max_fps = cost > 0 ? fmin(VG_CAPTURE_FPS_MAX, fps * (cost + fmax(0, headroom)) / cost)
                              : VG_CAPTURE_FPS_MAX;
    json_object_set_new(j, "cost_cores", json_real(round(cost * 1e5) / 1e5));
    json_object_set_new(j, "cost_ms_per_frame",
                        json_real(st.fps > 0 ? round(cost / st.fps * 1e5) / 100 : 0));
    json_object_set_new(j, "max_fps", json_real(round(max_fps * 100) / 100));
    return j;
}

json_t *vg_capacity_json(vg_gateway_t *gw)
{
    struct vg_capacity *cp = gw->capacity;
    if (!cp) return json_null();
    int cores = n_cores();
    double window = 0, proc = ring_rate(&cp->proc, &window);
    double busy = ring_rate(&cp->busy, NULL), total = ring_rate(&cp->total, NULL);
    double machine = busy >= 0 && total > 0 ? cores * busy / total : proc;
    double headroom = cores * (1 - RESERVE) - fmax(0, machine);
    json_t *streams = json_array();
    double sum = 0;
    int measured = 0;
    for (size_t i = 0; gw->streams && i < vg_streams_count(gw->streams); i++) {
        double cost;
        json_array_append_new(streams,
                              stream_json(cp, vg_streams_at(gw->streams, i), headroom, &cost));
        if (cost >= 0) sum += cost, measured++;
    }
    double avg = measured ? sum / measured : -1;
    json_t *j =
        json_pack("{s:i, s:f, s:f, s:{s:f, s:f}, s:f}", "cores", cores, "window_s",
                  round(window * 100) / 100, "reserve_fraction", RESERVE, "cores_in_use", "vigild",
                  round(fmax(0, proc) * 1e4) / 1e4, "machine", round(fmax(0, machine) * 1e4) / 1e4,
                  "headroom_cores", round(headroom * 1e4) / 1e4);
    json_object_set_new(j, "average_stream_cores",
                        avg >= 0 ? json_real(round(avg * 1e5) / 1e5) : json_null());
    json_object_set_new(j, "more_streams",
                        avg > 0 ? json_integer((json_int_t)floor(fmax(0, headroom) / avg))
                                : json_null());
    json_object_set_new(j, "streams", streams);
    return j;
}

static void h_capacity(vg_http_req_t *r, void *arg)
{
    vg_http_reply_json(r, 200, vg_capacity_json(arg));
}

static const vg_http_route_t routes[] = {
    {"GET", "/api/v1/capacity", h_capacity, VG_ACCESS_READ},
};

void vg_capacity_register(vg_gateway_t *gw)
{
    struct vg_capacity *cp = vg_xcalloc(1, sizeof(*cp));
    cp->gw = gw;
    gw->capacity = cp;
    sample(cp);
    cp->timer = event_new(gw->base, -1, EV_PERSIST, on_timer, cp);
    VG_CHECK(cp->timer != NULL);
    struct timeval tv = {SAMPLE_S, 0};
    event_add(cp->timer, &tv);
    if (gw->http) vg_http_add_routes(gw->http, routes, VG_ARRAY_LEN(routes), gw);
}

void vg_capacity_stop(vg_gateway_t *gw)
{
    struct vg_capacity *cp = gw->capacity;
    if (!cp) return;
    event_free(cp->timer);
    for (size_t i = 0; i < cp->n_tr; i++)
        free(cp->tr[i].id);
    free(cp->tr);
    free(cp);
    gw->capacity = NULL;
}
