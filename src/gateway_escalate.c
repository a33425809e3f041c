/* gateway_escalate.c — escalation on care events (`on_event` per stream and event type):
 * when an event starts, the stream that raised it gets the configured fps and/or model
 * for hold_s seconds, then the values it had come back. Both steps are `reconfigure`
 * commands through the control module like any MQTT or REST command (source "event",
 * command_id "event-<event_id>-raise" / "-restore"): validated, applied all or nothing,
 * acknowledged on {p}/control/{instance_id}/ack, logged, persisted in the state file; a
 * failed raise (say, the model does not load) leaves the stream as it was and cancels
 * the restore. A second event while a stream is escalated extends the hold and keeps
 * the values from before the first. Loop thread only; the holds and their timers are
 * the gateway's (gw->holds), freed with it. */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vg_gw_hold {
    vg_gateway_t *gw;
    char stream_id[VG_EVENTS_ID_MAX];
    char event_id[VG_EVENT_ID_MAX]; /* the event that raised it */
    char raise_id[96];              /* command_id of the latest raise */
    double prev_fps;
    char prev_model[65]; /* "" when the model was not changed */
    struct event *timer;
    struct vg_gw_hold *next;
};

typedef struct vg_gw_hold hold_t;

static hold_t *hold_find(vg_gateway_t *gw, const char *stream_id, const char *raise_id)
{
    for (hold_t *h = gw->holds; h; h = h->next)
        if ((stream_id && strcmp(h->stream_id, stream_id) == 0) ||
            (raise_id && strcmp(h->raise_id, raise_id) == 0))
            return h;
    return NULL;
}

static void hold_free(vg_gateway_t *gw, hold_t *h)
{
    for (hold_t **p = &gw->holds; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    event_free(h->timer);
    free(h);
}

/* Every step's ack goes to MQTT like any command's; a raise that did not complete has
 * changed nothing (all or nothing), so there is nothing to restore. */
static void on_step_ack(void *arg, const json_t *ack, bool final)
{
    vg_gateway_t *gw = arg;
    vg_gw_on_ack(gw, ack, final);
    if (!final) return;
    const char *status = json_string_value(json_object_get(ack, "status"));
    const char *id = json_string_value(json_object_get(ack, "command_id"));
    hold_t *h = id ? hold_find(gw, NULL, id) : NULL;
    if (h && status && strcmp(status, "completed") != 0) {
        VG_WARN("events", "escalation_failed", "{s:s, s:s, s:s}", "stream_id", h->stream_id,
                "event_id", h->event_id, "status", status);
        hold_free(gw, h);
    }
}

static void submit(vg_gateway_t *gw, const char *stream_id, const char *command_id,
                   const char *event_id, json_t *params)
{
    json_t *cmd = json_pack("{s:s, s:s, s:o}", "command", "reconfigure", "command_id", command_id,
                            "params", params);
    vg_origin_t o = {.source = "event", .who = event_id, .stream_id = stream_id};
    vg_control_submit_json(gw->control, cmd, &o, on_step_ack, gw);
    json_decref(cmd);
}

static void on_hold_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hold_t *h = arg;
    vg_gateway_t *gw = h->gw;
    json_t *params = json_pack("{s:f}", "fps", h->prev_fps);
    if (h->prev_model[0]) json_object_set_new(params, "model_id", json_string(h->prev_model));
    char id[96];
    snprintf(id, sizeof(id), "event-%s-restore", h->event_id);
    char stream_id[VG_EVENTS_ID_MAX], event_id[VG_EVENT_ID_MAX];
    snprintf(stream_id, sizeof(stream_id), "%s", h->stream_id);
    snprintf(event_id, sizeof(event_id), "%s", h->event_id);
    hold_free(gw, h); /* before the command: its ack must not find this hold */
    submit(gw, stream_id, id, event_id, params);
}

static const char *person_model(const vg_stream_cfg_t *sc)
{
    for (size_t i = 0; i < sc->n_workers; i++)
        if (sc->workers[i].type == VG_WORKER_PERSON && sc->workers[i].model_id)
            return sc->workers[i].model_id;
    return NULL;
}

void vg_gw_escalate(vg_gateway_t *gw, const vg_event_t *e)
{
    vg_stream_t *s = vg_streams_find(gw->streams, e->stream_id);
    const vg_stream_cfg_t *sc = s ? vg_stream_cfg(s) : NULL;
    const vg_escalation_t *esc = sc && sc->on_event ? &sc->on_event[e->type] : NULL;
    if (!esc || !esc->set) return;
    hold_t *h = hold_find(gw, e->stream_id, NULL);
    if (!h) { /* the values to come back to: those from before the first escalation */
        h = vg_xcalloc(1, sizeof(*h));
        h->gw = gw;
        snprintf(h->stream_id, sizeof(h->stream_id), "%s", e->stream_id);
        h->prev_fps = sc->fps;
        const char *m = person_model(sc);
        if (esc->model_id[0] && m) snprintf(h->prev_model, sizeof(h->prev_model), "%s", m);
        h->timer = evtimer_new(gw->base, on_hold_over, h);
        h->next = gw->holds;
        gw->holds = h;
    }
    snprintf(h->event_id, sizeof(h->event_id), "%s", e->event_id);
    snprintf(h->raise_id, sizeof(h->raise_id), "event-%s-raise", e->event_id);
    struct timeval tv = {(time_t)esc->hold_s,
                         (suseconds_t)((esc->hold_s - (time_t)esc->hold_s) * 1e6)};
    evtimer_add(h->timer, &tv);
    VG_INFO("events", "escalation", "{s:s, s:s, s:s, s:f, s:s, s:f}", "stream_id", e->stream_id,
            "event_id", e->event_id, "type", vg_event_type_name(e->type), "fps", esc->fps,
            "model_id", esc->model_id, "hold_s", esc->hold_s);
    json_t *params = json_object();
    if (esc->fps > 0) json_object_set_new(params, "fps", json_real(esc->fps));
    if (esc->model_id[0]) json_object_set_new(params, "model_id", json_string(esc->model_id));
    char raise_id[96];
    snprintf(raise_id, sizeof(raise_id), "%s", h->raise_id);
    submit(gw, e->stream_id, raise_id, e->event_id, params);
}

void vg_gw_escalate_free(vg_gateway_t *gw)
{
    while (gw->holds)
        hold_free(gw, gw->holds);
}
