/* events_json.c — an event transition as its JSON payload and back (for MQTT, REST and
 * the journal), event ids, and the transition list. Pure apart from the random bytes
 * of ids (getrandom); any thread. */
#include "events_internal.h"
#include "vigil/common.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void vg_event_list_clear(vg_event_list_t *l)
{
    l->n = 0;
}

void vg_event_list_free(vg_event_list_t *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

vg_event_t *vg_event_list_push(vg_event_list_t *l, const vg_event_t *e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = vg_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n] = *e;
    return &l->v[l->n++];
}

/* A UUIDv7 (RFC 9562): 48 bits of epoch milliseconds, then 74 random bits. Unique
 * across restarts without any state; ids sort by their start time. */
void vg_event_new_id(double wall, char *out, size_t len)
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        VG_CHECK(n > 0);
        got += (size_t)n;
    }
    uint64_t ms = wall > 0 ? (uint64_t)(wall * 1000.0) : 0;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ---- to JSON ------------------------------------------------------------------------------- */

static json_t *time_or_null(double t)
{
    if (t <= 0) return json_null();
    char buf[40];
    vg_format_time(t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *string_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *vg_event_to_json(const vg_event_t *e, const char *instance_id, const char *snapshot_base)
{
    char *snap = vg_xasprintf("%s/api/v1/events/%s/snapshot.jpg",
                              snapshot_base ? snapshot_base : "", e->event_id);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", e->event_id, "type",
                  vg_event_type_name(e->type), "phase", vg_event_phase_name(e->phase), "severity",
                  vg_severity_name(e->severity), "instance_id", instance_id ? instance_id : "",
                  "stream_id", e->stream_id, "room_id", e->room_id);
    json_object_set_new(j, "track_id",
                        e->track_id ? json_integer((json_int_t)e->track_id) : json_null());
    json_object_set_new(j, "zone_id", string_or_null(e->zone_id));
    json_object_set_new(j, "confidence", json_real(round(e->confidence * 1000.0) / 1000.0));
    json_object_set_new(j, "started_at", time_or_null(e->started_at));
    json_object_set_new(j, "updated_at", time_or_null(e->updated_at));
    json_object_set_new(j, "ended_at", time_or_null(e->ended_at));
    json_object_set_new(j, "acked_at", time_or_null(e->acked_at));
    json_object_set_new(j, "acked_by", string_or_null(e->acked_at > 0 ? e->acked_by : NULL));
    json_object_set_new(j, "snapshot", json_string(snap));
    json_object_set_new(j, "reason", string_or_null(e->reason));
    if (e->type == VG_EV_ROOM_ENTRY || e->type == VG_EV_ROOM_EXIT)
        json_object_set_new(j, "occupancy", json_integer(e->occupancy));
    free(snap);
    return j;
}

/* ---- from JSON ----------------------------------------------------------------------------- */

/* RFC 3339 UTC as vg_format_time writes it ("2026-12-03T09:26:06.123Z"); -1 if not. */
double vg_events_parse_time(const char *s)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) ms = ms * 10 + (*p - '0');
        while (digits > 0 && digits < 3)
            ms *= 10, digits++;
    }
    if (strcmp(p, "Z") != 0) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (double)t + ms / 1000.0;
}

static const char *const reasons[] = {"confirmed", "still_active", "acked",          "restored",
                                      "cleared",   "lost",         "stream_removed", "instant"};

/* The static reason string equal to s, or NULL. */
static const char *static_reason(const char *s)
{
    for (size_t i = 0; s && i < VG_ARRAY_LEN(reasons); i++)
        if (strcmp(reasons[i], s) == 0) return reasons[i];
    return NULL;
}

static int copy_str(const json_t *obj, const char *key, bool required, char *dst, size_t len,
                    vg_jerr_t *err)
{
    const json_t *v = json_object_get(obj, key);
    if ((!v || json_is_null(v)) && !required) {
        dst[0] = '\0';
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) >= len) {
        vg_jerr_set(err, key, "expected a string of 1 to %zu characters", len - 1);
        return VG_EINVAL;
    }
    snprintf(dst, len, "%s", s);
    return 0;
}

static int copy_time(const json_t *obj, const char *key, bool required, double *dst, vg_jerr_t *err)
{
    const json_t *v = json_object_get(obj, key);
    *dst = 0;
    if ((!v || json_is_null(v)) && !required) return 0;
    *dst = vg_events_parse_time(json_string_value(v));
    if (*dst < 0) {
        vg_jerr_set(err, key, "expected an RFC 3339 UTC time");
        return VG_EINVAL;
    }
    return 0;
}

static int copy_enums(const json_t *obj, vg_event_t *e, vg_jerr_t *err)
{
    static const char *const phases[] = {"start", "update", "end"};
    const char *phase = json_string_value(json_object_get(obj, "phase"));
    size_t p = 0;
    while (phase && p < VG_ARRAY_LEN(phases) && strcmp(phases[p], phase) != 0)
        p++;
    if (!phase || p == VG_ARRAY_LEN(phases)) {
        vg_jerr_set(err, "phase", "expected start, update or end");
        return VG_EINVAL;
    }
    e->phase = (vg_event_phase_t)p;
    if (vg_event_type_parse(json_string_value(json_object_get(obj, "type")), &e->type) != 0) {
        vg_jerr_set(err, "type", "not an event type");
        return VG_EINVAL;
    }
    if (vg_severity_parse(json_string_value(json_object_get(obj, "severity")), &e->severity)) {
        vg_jerr_set(err, "severity", "expected info, warning or critical");
        return VG_EINVAL;
    }
    return 0;
}

int vg_event_from_json(const json_t *obj, vg_event_t *out, vg_jerr_t *err)
{
    vg_event_t e;
    memset(&e, 0, sizeof(e));
    e.occupancy = -1;
    if (!json_is_object(obj)) {
        vg_jerr_set(err, "event", "expected an object");
        return VG_EINVAL;
    }
    if (copy_enums(obj, &e, err) != 0 ||
        copy_str(obj, "event_id", true, e.event_id, sizeof(e.event_id), err) != 0 ||
        copy_str(obj, "stream_id", true, e.stream_id, sizeof(e.stream_id), err) != 0 ||
        copy_str(obj, "room_id", true, e.room_id, sizeof(e.room_id), err) != 0 ||
        copy_str(obj, "zone_id", false, e.zone_id, sizeof(e.zone_id), err) != 0 ||
        copy_str(obj, "acked_by", false, e.acked_by, sizeof(e.acked_by), err) != 0 ||
        copy_time(obj, "started_at", true, &e.started_at, err) != 0 ||
        copy_time(obj, "updated_at", false, &e.updated_at, err) != 0 ||
        copy_time(obj, "ended_at", false, &e.ended_at, err) != 0 ||
        copy_time(obj, "acked_at", false, &e.acked_at, err) != 0)
        return VG_EINVAL;
    json_int_t track = json_integer_value(json_object_get(obj, "track_id"));
    e.track_id = track > 0 ? (uint64_t)track : 0;
    e.confidence = json_number_value(json_object_get(obj, "confidence"));
    e.reason = static_reason(json_string_value(json_object_get(obj, "reason")));
    const json_t *occ = json_object_get(obj, "occupancy");
    if (json_is_integer(occ)) e.occupancy = (int)json_integer_value(occ);
    *out = e;
    return 0;
}
