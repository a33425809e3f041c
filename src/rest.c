/* rest.c — the REST API: every MQTT command has a route here that goes through the same
 * control module, plus reads (streams, detections, models, info) and JPEG snapshots.
 * Handlers run on the loop thread; a command that finishes later (a model load) defers
 * its reply; snapshots are VG_JOB_SNAPSHOT jobs ("jobs:snapshot") replied from the loop.
 * A snapshot job holds a frame reference and names its stream by id + generation, never
 * by a pointer: the stream may be removed (and its mailbox freed) while it encodes.
 * Privacy masks are blacked out in every image that leaves the process. */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/detector.h"
#include "vigil/jobs.h"
#include "vigil/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_MAX_WIDTH 640

typedef struct {
    vg_http_req_t *req; /* deferred; only `done` (loop thread) answers it */
    char *stream_id;    /* with gen: to retry with the stream's newest frame */
    uint64_t gen;
    bool retried;
    vg_gw_snap_t snap;
} snap_job_t;

struct vg_rest {
    vg_gateway_t *gw;
};

/* ---- commands over HTTP ---------------------------------------------------------------------- */

typedef struct {
    vg_http_req_t *req;
    bool replied, deferred;
    int ok_status;
} rest_ack_t;

static int status_for(const json_t *ack, int ok_status)
{
    const char *st = json_string_value(json_object_get(ack, "status"));
    const char *code = json_string_value(json_object_get(json_object_get(ack, "error"), "code"));
    if (st && strcmp(st, "completed") == 0) return ok_status;
    if (st && strcmp(st, "failed") == 0) return 422;
    static const struct {
        const char *code;
        int status;
    } map[] = {{"unknown_stream", 404}, {"unknown_event", 404}, {"stream_exists", 409},
               {"busy", 409},           {"wrong_shard", 409},   {"payload_too_large", 413}};
    for (size_t i = 0; code && i < VG_ARRAY_LEN(map); i++)
        if (strcmp(code, map[i].code) == 0) return map[i].status;
    return 400;
}

static void on_rest_ack(void *arg, const json_t *ack, bool final)
{
    rest_ack_t *ra = arg;
    if (!final) return;
    vg_http_reply_json(ra->req, status_for(ack, ra->ok_status), json_deep_copy(ack));
    ra->replied = true;
    if (ra->deferred) free(ra);
}

/* Runs a command and replies with its final ack (now, or later when it completes). */
void vg_rest_run_command(vg_gateway_t *gw, vg_http_req_t *r, json_t *cmd, const char *stream_id,
                         int ok_status)
{
    rest_ack_t *ra = vg_xcalloc(1, sizeof(*ra));
    ra->req = r;
    ra->ok_status = ok_status;
    char who[96];
    snprintf(who, sizeof(who), "%s %s", vg_http_remote(r), vg_http_method(r));
    vg_origin_t o = {.source = "rest", .who = who, .stream_id = stream_id};
    vg_control_submit_json(gw->control, cmd, &o, on_rest_ack, ra);
    if (ra->replied) {
        free(ra);
        return;
    }
    ra->deferred = true;
    vg_http_defer(r);
}

static void h_commands(vg_http_req_t *r, void *arg)
{
    json_t *cmd = vg_http_body_json(r);
    if (!cmd) return;
    vg_rest_run_command(arg, r, cmd, NULL, 200);
    json_decref(cmd);
}

/* A body of params becomes the command `name`; a command_id in it moves up. */
static void body_command(vg_http_req_t *r, vg_gateway_t *gw, const char *name,
                         const char *stream_id, int ok_status)
{
    json_t *body = vg_http_body_json(r);
    if (!body) return;
    json_t *cmd = json_pack("{s:s, s:o}", "command", name, "params", body);
    json_t *id = json_object_get(body, "command_id");
    if (id) {
        json_object_set(cmd, "command_id", id);
        json_object_del(body, "command_id");
    }
    vg_rest_run_command(gw, r, cmd, stream_id, ok_status);
    json_decref(cmd);
}

static void h_add(vg_http_req_t *r, void *arg)
{
    body_command(r, arg, "add_stream", NULL, 201);
}

static void h_patch(vg_http_req_t *r, void *arg)
{
    body_command(r, arg, "reconfigure", vg_http_param(r, "id"), 200);
}

static void h_delete(vg_http_req_t *r, void *arg)
{
    json_t *cmd = json_pack("{s:s}", "command", "remove_stream");
    vg_rest_run_command(arg, r, cmd, vg_http_param(r, "id"), 200);
    json_decref(cmd);
}

static void h_restart(vg_http_req_t *r, void *arg)
{
    json_t *cmd = json_pack("{s:s}", "command", "restart");
    vg_rest_run_command(arg, r, cmd, vg_http_param(r, "id"), 200);
    json_decref(cmd);
}

/* ---- reads
 * ---------------------------------------------------------------------------------------- */

static json_t *stream_json(vg_stream_t *s)
{
    json_t *j = vg_stream_describe(s);
    double at = 0;
    json_t *latest = vg_stream_latest(s, &at);
    json_t *pc = json_null();
    size_t i;
    json_t *res;
    json_array_foreach(latest, i, res)
    {
        if (json_object_get(res, "person_count"))
            pc = json_incref(json_object_get(res, "person_count"));
        if (json_object_get(res, "latency_ms"))
            json_object_set(j, "latency_ms", json_object_get(res, "latency_ms"));
    }
    json_object_set_new(j, "person_count", pc);
    const vg_stream_cfg_t *sc = vg_stream_cfg(s);
    static const char *const privacy[] = {"masks", "none", "skeleton"};
    json_object_set_new(j, "room_id",
                        json_string(sc->room_id && *sc->room_id ? sc->room_id : sc->stream_id));
    json_object_set_new(j, "privacy", json_string(privacy[sc->privacy]));
    vg_zones_t none = {0};
    json_object_set_new(j, "zones", vg_zones_to_json(sc->zones ? sc->zones : &none));
    char ts[32];
    vg_format_time(at, ts, sizeof(ts));
    json_object_set_new(j, "latest_result_at", at > 0 ? json_string(ts) : json_null());
    return j;
}

static vg_stream_t *find_or_404(vg_gateway_t *gw, vg_http_req_t *r)
{
    const char *id = vg_http_param(r, "id");
    vg_stream_t *s = vg_streams_find(gw->streams, id);
    if (!s) {
        char msg[128];
        snprintf(msg, sizeof(msg), "no stream '%.64s'", id);
        vg_http_reply_error(r, 404, "unknown_stream", msg, "stream_id");
    }
    return s;
}

static void h_list(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    json_t *arr = json_array();
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++)
        json_array_append_new(arr, stream_json(vg_streams_at(gw->streams, i)));
    vg_http_reply_json(
        r, 200, json_pack("{s:s, s:o}", "instance_id", gw->cfg->instance_id, "streams", arr));
}

static void h_get(vg_http_req_t *r, void *arg)
{
    vg_stream_t *s = find_or_404(arg, r);
    if (s) vg_http_reply_json(r, 200, stream_json(s));
}

static void h_detections(vg_http_req_t *r, void *arg)
{
    vg_stream_t *s = find_or_404(arg, r);
    if (!s) return;
    double at = 0;
    json_t *latest = vg_stream_latest(s, &at);
    if (!latest) {
        vg_http_reply_error(r, 404, "no_result", "no inference result yet", NULL);
        return;
    }
    vg_http_reply_json(r, 200,
                       json_pack("{s:s, s:O}", "stream_id", vg_stream_id(s), "results", latest));
}

static void h_models(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    static const char *const formats[] = {"darknet", "onnx", "builtin"};
    json_t *arr = json_array();
    for (size_t i = 0; i < gw->cfg->n_models; i++) {
        const vg_model_cfg_t *m = &gw->cfg->models[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i}", "model_id", m->model_id,
                                             "format", formats[m->format], "task",
                                             m->task == VG_TASK_POSE ? "pose" : "detect",
                                             "input_size", m->input_size));
    }
    vg_http_reply_json(r, 200, json_pack("{s:o}", "models", arr));
}

static void h_info(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    char started[32];
    vg_format_time(gw->started_at, started, sizeof(started));
    vg_http_reply_json(r, 200,
                       json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:i, s:i}", "instance_id",
                                 gw->cfg->instance_id, "version", VG_VERSION, "build",
                                 __DATE__ " " __TIME__, "uptime_s",
                                 vg_now_mono() - gw->started_mono, "started_at", started, "status",
                                 gw->status, "streams", (int)vg_streams_count(gw->streams),
                                 "inference_threads", vg_infer_threads(gw->pool)));
}

/* ---- snapshots
 * ------------------------------------------------------------------------------------- */

/* Privacy mode skeleton: a plain background and the zones (boxes are drawn next). */
static void draw_skeleton_view(const vg_gw_snap_t *sn, uint8_t *bgr, int w, int h, int stride)
{
    static const uint8_t colours[VG_ZONE_NKINDS][3] = {
        [VG_ZONE_BED] = {200, 120, 40},   [VG_ZONE_CHAIR] = {40, 160, 200},
        [VG_ZONE_DOOR] = {60, 200, 60},   [VG_ZONE_FLOOR] = {200, 200, 200},
        [VG_ZONE_EXCLUDE] = {30, 30, 30},
    };
    vg_privacy_blank(bgr, w, h, stride);
    for (size_t i = 0; i < sn->zones.n; i++) {
        const vg_zone_t *z = &sn->zones.zones[i];
        double xy[2 * VG_ZONE_MAX_POINTS];
        for (size_t k = 0; k < z->n_points; k++) {
            xy[2 * k] = z->points[k].x;
            xy[2 * k + 1] = z->points[k].y;
        }
        vg_privacy_draw_polygon(bgr, w, h, stride, xy, z->n_points, colours[z->kind]);
    }
}

/* "jobs:snapshot": converts the frame, blacks out the masks (or, in privacy mode
 * skeleton, paints the picture over), draws, encodes. */
int vg_gw_snapshot_encode(vg_gw_snap_t *sn)
{
    uint8_t *bgr = NULL;
    int w = 0, h = 0, stride = 0;
    int rc = vg_frame_snapshot_bgr(sn->frame, sn->width, &bgr, &w, &h, &stride);
    if (rc == 0) {
        if (sn->privacy == VG_PRIVACY_SKELETON) draw_skeleton_view(sn, bgr, w, h, stride);
        rc = vg_snapshot_jpeg(bgr, w, h, stride, sn->width, sn->boxes, sn->n_boxes, sn->masks,
                              sn->n_masks, 80, &sn->jpeg, &sn->len);
        if (rc != 0) snprintf(sn->error, sizeof(sn->error), "JPEG encoding failed");
    } else if (rc != VG_ENOTFOUND) {
        snprintf(sn->error, sizeof(sn->error), "frame conversion failed");
    }
    free(bgr);
    if (rc == VG_ENOTFOUND) snprintf(sn->error, sizeof(sn->error), "superseded");
    return rc;
}

void vg_gw_snap_clear(vg_gw_snap_t *sn)
{
    vg_frame_unref(sn->frame);
    free(sn->masks);
    free(sn->jpeg);
    memset(sn, 0, sizeof(*sn));
}

static void snap_run(void *job)
{
    snap_job_t *j = job;
    vg_gw_snapshot_encode(&j->snap);
}

static void snap_free(snap_job_t *j)
{
    vg_gw_snap_clear(&j->snap);
    free(j->stream_id);
    free(j);
}

static void snap_done(void *ctx, void *job, bool ran);

static void snap_submit(struct vg_rest *rs, snap_job_t *j)
{
    vg_job_ops_t ops = {snap_run, snap_done, rs};
    vg_jobs_submit(rs->gw->jobs, VG_JOB_SNAPSHOT, &ops, j);
}

/* A newer frame replaced the job's while it was queued: retry once with the newest
 * frame of the same stream (id and generation), if it still exists. */
static bool snap_retry(struct vg_rest *rs, snap_job_t *j)
{
    vg_stream_t *s = vg_streams_find_gen(rs->gw->streams, j->stream_id, j->gen);
    vg_frame_t *f = s ? vg_mailbox_latest(vg_stream_mailbox(s)) : NULL;
    if (!f) return false;
    vg_frame_unref(j->snap.frame);
    j->snap.frame = f;
    j->retried = true;
    j->snap.error[0] = '\0';
    snap_submit(rs, j);
    return true;
}

/* Loop thread: answers the request (the job did not run: jobs stopped). */
static void snap_done(void *ctx, void *job, bool ran)
{
    struct vg_rest *rs = ctx;
    snap_job_t *j = job;
    if (!ran) {
        vg_http_reply_error(j->req, 503, "shutting_down", "the gateway is stopping", NULL);
    } else if (j->snap.jpeg) {
        vg_http_add_header(j->req, "Cache-Control", "no-store");
        vg_http_reply(j->req, 200, "image/jpeg", j->snap.jpeg, j->snap.len);
    } else if (strcmp(j->snap.error, "superseded") == 0 && !j->retried) {
        if (snap_retry(rs, j)) return;
        vg_http_reply_error(j->req, 404, "no_frame", "the stream has no frame any more", NULL);
    } else {
        vg_http_reply_error(j->req, 503, "snapshot_failed", j->snap.error, NULL);
    }
    snap_free(j);
}

static void boxes_from_latest(vg_stream_t *s, vg_gw_snap_t *j)
{
    json_t *latest = vg_stream_latest(s, NULL);
    size_t i, k;
    json_t *res, *d;
    json_array_foreach(latest, i, res)
    {
        json_array_foreach(json_object_get(res, "detections"), k, d)
        {
            if (j->n_boxes == VG_GW_SNAP_BOXES) return;
            json_t *b = json_object_get(d, "box");
            vg_detection_t *o = &j->boxes[j->n_boxes++];
            memset(o, 0, sizeof(*o));
            const char *label = json_string_value(json_object_get(d, "label"));
            snprintf(o->label, sizeof(o->label), "%s", label ? label : "object");
            o->confidence = (float)json_number_value(json_object_get(d, "confidence"));
            o->x = (float)json_number_value(json_object_get(b, "x"));
            o->y = (float)json_number_value(json_object_get(b, "y"));
            o->w = (float)json_number_value(json_object_get(b, "w"));
            o->h = (float)json_number_value(json_object_get(b, "h"));
        }
    }
}

/* The stream's masks and privacy mode are copied into the job (it never reads the stream). */
void vg_gw_snap_init(vg_gw_snap_t *sn, vg_stream_t *s, vg_frame_t *f, int width, bool boxes)
{
    const vg_stream_cfg_t *sc = vg_stream_cfg(s);
    memset(sn, 0, sizeof(*sn));
    sn->frame = f;
    sn->width = width < f->src_width ? width : f->src_width;
    sn->privacy = sc->privacy;
    if (sc->privacy == VG_PRIVACY_SKELETON && sc->zones) sn->zones = *sc->zones;
    if (boxes || sc->privacy == VG_PRIVACY_SKELETON) boxes_from_latest(s, sn);
    sn->masks = vg_privacy_copy(sc->privacy_masks, sc->n_privacy_masks);
    sn->n_masks = sc->n_privacy_masks;
}

static void h_snapshot(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    vg_stream_t *s = find_or_404(gw, r);
    if (!s) return;
    int width = SNAPSHOT_MAX_WIDTH;
    const char *wq = vg_http_query(r, "width");
    if (wq) {
        char *end;
        long w = strtol(wq, &end, 10);
        if (*end || w < 16 || w > SNAPSHOT_MAX_WIDTH) {
            vg_http_reply_error(r, 400, "invalid_param", "width must be an integer from 16 to 640",
                                "width");
            return;
        }
        width = (int)w;
    }
    vg_frame_t *f = vg_mailbox_latest(vg_stream_mailbox(s));
    if (!f) {
        vg_http_reply_error(r, 404, "no_frame", "the stream has no frame yet", NULL);
        return;
    }
    snap_job_t *j = vg_xcalloc(1, sizeof(*j));
    j->req = r;
    j->stream_id = vg_xstrdup(vg_stream_id(s));
    j->gen = vg_stream_gen(s);
    const char *boxes = vg_http_query(r, "boxes");
    vg_gw_snap_init(&j->snap, s, f, width, boxes && strcmp(boxes, "0") != 0);
    vg_http_defer(r);
    snap_submit(gw->rest, j);
}

/* ---- registration
 * ------------------------------------------------------------------------------------ */

static const vg_http_route_t routes[] = {
    {"GET", "/streams", h_list, VG_ACCESS_READ},
    {"GET", "/api/v1/streams", h_list, VG_ACCESS_READ},
    {"POST", "/api/v1/streams", h_add, VG_ACCESS_MUTATE},
    {"GET", "/api/v1/streams/{id}", h_get, VG_ACCESS_READ},
    {"PATCH", "/api/v1/streams/{id}", h_patch, VG_ACCESS_MUTATE},
    {"DELETE", "/api/v1/streams/{id}", h_delete, VG_ACCESS_MUTATE},
    {"POST", "/api/v1/streams/{id}/restart", h_restart, VG_ACCESS_MUTATE},
    {"GET", "/api/v1/streams/{id}/detections", h_detections, VG_ACCESS_READ},
    {"GET", "/api/v1/streams/{id}/snapshot.jpg", h_snapshot, VG_ACCESS_READ},
    {"POST", "/api/v1/commands", h_commands, VG_ACCESS_MUTATE},
    {"GET", "/api/v1/models", h_models, VG_ACCESS_READ},
    {"GET", "/api/v1/info", h_info, VG_ACCESS_READ},
};

void vg_rest_register(vg_gateway_t *gw)
{
    struct vg_rest *rs = vg_xcalloc(1, sizeof(*rs));
    rs->gw = gw;
    gw->rest = rs;
    vg_http_add_routes(gw->http, routes, VG_ARRAY_LEN(routes), gw);
    vg_rest_events_register(gw);
}

void vg_rest_free(vg_gateway_t *gw)
{
    free(gw->rest); /* after jobs stopped and the loop queue drained: no snapshot is left */
    gw->rest = NULL;
}
