/* control_json.c — a stream's configuration to and from JSON, for add_stream, the
 * REST API and the state file. Validation is the config module's (same rules as the
 * YAML file); errors become a field name and a message for acks. Loop thread. */
#include "vigil/common.h"
#include "vigil/control.h"
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

vg_stream_cfg_t *vg_control_stream_from_json(const vg_config_t *cfg, const json_t *obj,
                                             char **field, char **msg)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    VG_CHECK(text);
    vg_diag_t d = {0};
    vg_stream_cfg_t *sc = NULL;
    vg_config_parse_stream(cfg, text, strlen(text), &sc, &d);
    free(text);
    *field = *msg = NULL;
    if (!sc) {
        /* "params:1:9: key 'fps': expected ..." -> field "fps", message after the position */
        const char *e = d.n_errors ? d.errors[0] : "params:0:0: invalid stream";
        const char *m = strstr(e, ": ");
        *msg = vg_xstrdup(m ? m + 2 : e);
        const char *k = strstr(e, "key '");
        if (k) {
            k += 5;
            *field = strndup(k, strcspn(k, "'"));
        }
    }
    vg_diag_clear(&d);
    return sc;
}

json_t *vg_control_stream_to_json(const vg_stream_cfg_t *sc)
{
    json_t *workers = json_array();
    for (size_t i = 0; i < sc->n_workers; i++) {
        const vg_worker_cfg_t *w = &sc->workers[i];
        json_t *spec = json_pack("{s:f}", "confidence_threshold", w->confidence_threshold);
        if (w->model_id && (w->type == VG_WORKER_PERSON || w->type == VG_WORKER_POSE)) {
            json_object_set_new(spec, "model_id", json_string(w->model_id));
            json_object_set_new(spec, "motion_gate", vg_stream_gate_json(&w->gate));
        }
        if (w->roi.w)
            json_object_set_new(spec, "roi",
                                json_pack("{s:i, s:i, s:i, s:i}", "x", w->roi.x, "y", w->roi.y, "w",
                                          w->roi.w, "h", w->roi.h));
        json_array_append_new(workers,
                              json_pack("{s:s, s:s, s:o}", "type", vg_worker_type_name(w->type),
                                        "worker_id", w->worker_id, "spec", spec));
    }
    json_t *masks = json_array();
    for (size_t i = 0; i < sc->n_privacy_masks; i++) {
        const vg_mask_t *m = &sc->privacy_masks[i];
        json_array_append_new(
            masks, json_pack("{s:f, s:f, s:f, s:f}", "x", m->x, "y", m->y, "w", m->w, "h", m->h));
    }
    json_t *j = json_pack("{s:s, s:f, s:b, s:o, s:o}", "stream_id", sc->stream_id, "fps", sc->fps,
                          "enabled", sc->enabled, "workers", workers, "privacy_masks", masks);
    static const char *const privacy[] = {"masks", "none", "skeleton"};
    json_object_set_new(j, "privacy", json_string(privacy[sc->privacy]));
    if (sc->room_id && *sc->room_id) json_object_set_new(j, "room_id", json_string(sc->room_id));
    if (sc->zones) json_object_set_new(j, "zones", vg_zones_to_json(sc->zones));
    if (sc->events) json_object_set_new(j, "events", vg_events_cfg_to_json(sc->events));
    if (sc->on_event) json_object_set_new(j, "on_event", vg_cfg_on_event_to_json(sc->on_event));
    if (sc->source_id)
        json_object_set_new(j, "source_id", json_string(sc->source_id));
    else
        json_object_set_new(j, "url", json_string(sc->url));
    return j;
}
