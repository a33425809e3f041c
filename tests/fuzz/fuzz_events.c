/* libFuzzer target: the care-event parsers fed raw JSON as it arrives over REST and
 * MQTT (set_zones, a stream's `events:` settings) or from the journal (an event
 * payload). Each must accept or refuse with a field-named error and never crash; what
 * one accepts must serialise and parse back to the same value. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/events.h"
#include "vigil/zones.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void zones_roundtrip(const json_t *j)
{
    vg_zones_t *z = vg_xcalloc(2, sizeof(*z));
    vg_jerr_t err = {0};
    if (vg_zones_from_json(j, NULL, &z[0], &err) == 0) {
        json_t *back = vg_zones_to_json(&z[0]);
        VG_CHECK(vg_zones_from_json(back, NULL, &z[1], &err) == 0);
        VG_CHECK(z[0].n == z[1].n);
        for (size_t i = 0; i < z[0].n; i++)
            VG_CHECK(memcmp(&z[0].zones[i].points, &z[1].zones[i].points,
                            z[0].zones[i].n_points * sizeof(vg_point_t)) == 0);
        if (z[0].n) (void)vg_zones_locate(&z[0], z[0].zones[0].points[0].x, 0.5);
        json_decref(back);
    } else {
        VG_CHECK(err.field[0] && strncmp(err.message, err.field, strlen(err.field)) == 0);
    }
    free(z);
}

static void cfg_roundtrip(const json_t *j)
{
    vg_events_cfg_t a, b;
    vg_jerr_t err = {0};
    if (vg_events_cfg_from_json(j, NULL, &a, &err) == 0) {
        json_t *back = vg_events_cfg_to_json(&a);
        VG_CHECK(vg_events_cfg_from_json(back, NULL, &b, &err) == 0);
        json_t *again = vg_events_cfg_to_json(&b);
        VG_CHECK(json_equal(back, again));
        json_decref(again);
        json_decref(back);
    } else {
        VG_CHECK(err.field[0] != '\0');
    }
}

static void event_roundtrip(const json_t *j)
{
    vg_event_t e, f;
    if (vg_event_from_json(j, &e, NULL) == 0) {
        json_t *back = vg_event_to_json(&e, "fuzz", "");
        VG_CHECK(vg_event_from_json(back, &f, NULL) == 0);
        VG_CHECK(strcmp(e.event_id, f.event_id) == 0 && e.type == f.type);
        json_decref(back);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!j) return 0;
    zones_roundtrip(j);
    cfg_roundtrip(j);
    event_roundtrip(j);
    json_decref(j);
    return 0;
}
