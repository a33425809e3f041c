/* rest_events.c — the care events over REST: the list with its filters, one event, the
 * snapshot taken at its start, acknowledging (the ack_event command), and a stream's
 * zones (the set_zones command). Commands go through the control module like every
 * command; reads come from the engine's history (gateway_events.c). Loop thread. */
#include "gateway_internal.h"
#include "vigil/common.h"

#include <stdio.h>
#include <string.h>

static void h_events(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    static const char *const keys[] = {"stream_id", "room_id", "type", "active", "since", "limit"};
    vg_events_filter_t f;
    vg_events_filter_default(&f);
    for (size_t i = 0; i < VG_ARRAY_LEN(keys); i++) {
        const char *v = vg_http_query(r, keys[i]);
        vg_jerr_t err;
        if (v && vg_events_filter_set(&f, keys[i], v, &err) != 0) {
            vg_http_reply_error(r, 400, "invalid_param", err.message, err.field);
            return;
        }
    }
    vg_event_list_t l = {0};
    const vg_events_t *ev = vg_gw_events_engine(gw);
    if (ev) vg_events_query(ev, &f, &l);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, vg_event_to_json(&l.v[i], gw->cfg->instance_id, ""));
    vg_event_list_free(&l);
    vg_http_reply_json(r, 200,
                       json_pack("{s:s, s:o}", "instance_id", gw->cfg->instance_id, "events", arr));
}

/* The event named by the URL, or a 404 reply and false. */
static bool find_event(vg_gateway_t *gw, vg_http_req_t *r, vg_event_t *e)
{
    const char *id = vg_http_param(r, "id");
    const vg_events_t *ev = vg_gw_events_engine(gw);
    if (ev && vg_events_get(ev, id, e) == 0) return true;
    char msg[128];
    snprintf(msg, sizeof(msg), "no event '%.64s'", id);
    vg_http_reply_error(r, 404, "unknown_event", msg, "event_id");
    return false;
}

static void h_event(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    vg_event_t e;
    if (find_event(gw, r, &e))
        vg_http_reply_json(r, 200, vg_event_to_json(&e, gw->cfg->instance_id, ""));
}

static void h_event_snapshot(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    vg_event_t e;
    const uint8_t *jpeg;
    size_t len;
    if (!find_event(gw, r, &e)) return;
    if (vg_gw_events_snapshot(gw, e.event_id, &jpeg, &len) != 0) {
        vg_http_reply_error(r, 404, "no_snapshot", "no snapshot was kept for this event", NULL);
        return;
    }
    vg_http_add_header(r, "Cache-Control", "no-store");
    vg_http_reply(r, 200, "image/jpeg", jpeg, len);
}

/* POST /api/v1/events/{id}/ack {"by": "..."} -> ack_event {event_id, by}. */
static void h_ack(vg_http_req_t *r, void *arg)
{
    size_t len = 0;
    vg_http_body(r, &len);
    json_t *body = len ? vg_http_body_json(r) : json_object();
    if (!body) return;
    json_t *params = json_pack("{s:s}", "event_id", vg_http_param(r, "id"));
    json_t *cmd = json_pack("{s:s, s:o}", "command", "ack_event", "params", params);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        json_object_set(strcmp(key, "command_id") == 0 ? cmd : params, key, v);
    }
    vg_rest_run_command(arg, r, cmd, NULL, 200);
    json_decref(cmd);
    json_decref(body);
}

/* PUT /api/v1/streams/{id}/zones: a zones array, or {"zones": [...]} -> set_zones. */
static void h_zones(vg_http_req_t *r, void *arg)
{
    json_t *body = vg_http_body_json(r);
    if (!body) return;
    json_t *params = json_is_array(body) ? json_pack("{s:O}", "zones", body) : json_incref(body);
    json_t *cmd = json_pack("{s:s, s:O}", "command", "set_zones", "params", params);
    json_t *id = json_object_get(params, "command_id");
    if (id) {
        json_object_set(cmd, "command_id", id);
        json_object_del(json_object_get(cmd, "params"), "command_id");
    }
    vg_rest_run_command(arg, r, cmd, vg_http_param(r, "id"), 200);
    json_decref(cmd);
    json_decref(params);
    json_decref(body);
}

static const vg_http_route_t routes[] = {
    {"GET", "/api/v1/events", h_events, VG_ACCESS_READ},
    {"GET", "/api/v1/events/{id}", h_event, VG_ACCESS_READ},
    {"GET", "/api/v1/events/{id}/snapshot.jpg", h_event_snapshot, VG_ACCESS_READ},
    {"POST", "/api/v1/events/{id}/ack", h_ack, VG_ACCESS_MUTATE},
    {"PUT", "/api/v1/streams/{id}/zones", h_zones, VG_ACCESS_MUTATE},
};

void vg_rest_events_register(vg_gateway_t *gw)
{
    vg_http_add_routes(gw->http, routes, VG_ARRAY_LEN(routes), gw);
}
