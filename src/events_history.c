/* events_history.c — the latest state of the engine's recent events, for REST
 * (GET /api/v1/events with its filters, GET /api/v1/events/{id}): a ring of the last
 * HISTORY_MAX events, updated in place at each transition, plus the open events however
 * old. Part of the engine; loop thread only. */
#include "events_internal.h"
#include "vigil/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slot of event_id in the ring, or -1. Newest first: recent events are asked for most. */
static long history_find(const vg_events_t *ev, const char *event_id)
{
    size_t n = ev->n_history < HISTORY_MAX ? ev->n_history : HISTORY_MAX;
    for (size_t k = 1; k <= n; k++) {
        size_t slot = (ev->n_history - k) % HISTORY_MAX;
        if (strcmp(ev->history[slot].event_id, event_id) == 0) return (long)slot;
    }
    return -1;
}

void vg_events_history_note(vg_events_t *ev, const vg_event_t *e)
{
    if (!ev->history) ev->history = vg_xcalloc(HISTORY_MAX, sizeof(*ev->history));
    long slot = history_find(ev, e->event_id);
    if (slot < 0) slot = (long)(ev->n_history++ % HISTORY_MAX);
    ev->history[slot] = *e;
}

void vg_events_filter_default(vg_events_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->type = -1;
    f->active = -1;
    f->limit = 100;
}

static int set_number(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) return VG_EINVAL;
    *out = d;
    return 0;
}

int vg_events_filter_set(vg_events_filter_t *f, const char *key, const char *value, vg_jerr_t *err)
{
    vg_event_type_t type;
    double d;
    if (strcmp(key, "stream_id") == 0 || strcmp(key, "room_id") == 0) {
        *(key[0] == 's' ? &f->stream_id : &f->room_id) = value;
        return 0;
    }
    if (strcmp(key, "type") == 0 && vg_event_type_parse(value, &type) == 0) {
        f->type = (int)type;
        return 0;
    }
    if (strcmp(key, "active") == 0 && (!strcmp(value, "true") || !strcmp(value, "false"))) {
        f->active = value[0] == 't';
        return 0;
    }
    if (strcmp(key, "since") == 0 &&
        ((d = vg_events_parse_time(value)) >= 0 || set_number(value, 0, 1e11, &d) == 0)) {
        f->since = d;
        return 0;
    }
    if (strcmp(key, "limit") == 0 && set_number(value, 1, 1000, &d) == 0 && d == (size_t)d) {
        f->limit = (size_t)d;
        return 0;
    }
    static const char *const known[] = {"stream_id", "room_id", "type", "active", "since", "limit"};
    for (size_t i = 0; i < VG_ARRAY_LEN(known); i++)
        if (strcmp(known[i], key) == 0) {
            vg_jerr_set(err, key,
                        "invalid value '%.64s' (type: an event type, active: true or "
                        "false, since: RFC 3339 or epoch seconds, limit: 1..1000)",
                        value);
            return VG_EINVAL;
        }
    vg_jerr_set(err, key,
                "unknown parameter (expected stream_id, room_id, type, active, "
                "since, limit)");
    return VG_EINVAL;
}

static bool matches(const vg_event_t *e, const vg_events_filter_t *f)
{
    bool open = e->ended_at <= 0;
    return (!f->stream_id || strcmp(f->stream_id, e->stream_id) == 0) &&
           (!f->room_id || strcmp(f->room_id, e->room_id) == 0) &&
           (f->type < 0 || f->type == (int)e->type) && (f->active < 0 || f->active == open) &&
           e->updated_at >= f->since;
}

void vg_events_query(const vg_events_t *ev, const vg_events_filter_t *f, vg_event_list_t *out)
{
    size_t limit = f->limit ? f->limit : 100, n = 0;
    size_t in_ring = ev->n_history < HISTORY_MAX ? ev->n_history : HISTORY_MAX;
    for (size_t k = 1; k <= in_ring && n < limit; k++) {
        const vg_event_t *e = &ev->history[(ev->n_history - k) % HISTORY_MAX];
        if (matches(e, f)) {
            vg_event_list_push(out, e);
            n++;
        }
    }
    /* open events older than the ring */
    for (size_t i = ev->n_open; i-- > 0 && n < limit;) {
        const vg_event_t *e = &ev->open[i]->ev;
        if (history_find(ev, e->event_id) < 0 && matches(e, f)) {
            vg_event_list_push(out, e);
            n++;
        }
    }
}

int vg_events_get(const vg_events_t *ev, const char *event_id, vg_event_t *out)
{
    for (size_t i = 0; event_id && i < ev->n_open; i++)
        if (strcmp(ev->open[i]->ev.event_id, event_id) == 0) {
            *out = ev->open[i]->ev;
            return 0;
        }
    long slot = event_id && ev->history ? history_find(ev, event_id) : -1;
    if (slot < 0) return VG_ENOTFOUND;
    *out = ev->history[slot];
    return 0;
}

json_t *vg_events_alarms_json(const vg_events_t *ev, const char *snapshot_base, double wall)
{
    json_t *alarms = json_array();
    for (size_t i = 0; i < ev->n_open; i++) {
        const vg_event_t *e = &ev->open[i]->ev;
        if (e->acked_at <= 0 && e->severity >= VG_SEV_WARNING)
            json_array_append_new(alarms, vg_event_to_json(e, ev->instance_id, snapshot_base));
    }
    char when[40];
    vg_format_time(wall, when, sizeof(when));
    return json_pack("{s:s, s:s, s:o}", "instance_id", ev->instance_id, "updated_at", when,
                     "alarms", alarms);
}
