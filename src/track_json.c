/* track_json.c — the tracker's JSON face (vigil/track.h): feeds one frame's inference
 * messages (person-detector "detections", pose "poses") to a stream's tracker and writes
 * each one's "track_id" back into them; a track as JSON for the API and events.
 * Runs on whichever thread owns the tracker (the loop); jansson values are borrowed. */
#include "vigil/track.h"

#include "vigil/common.h"

#include <jansson.h>
#include <math.h>

#define MAX_OBS (2 * VG_TRACK_MAX) /* what one update takes */

typedef struct {
    vg_track_obs_t obs[MAX_OBS];
    json_t *items[MAX_OBS]; /* borrowed: where each observation came from */
    size_t n;
} batch_t;

static const struct {
    const char *key;
    const char *score; /* the member holding the observation's score */
    vg_track_src_t source;
} sources[] = {
    {"detections", "confidence", VG_TRACK_SRC_DETECTOR},
    {"poses", "score", VG_TRACK_SRC_POSE},
};

static bool box_of(json_t *item, vg_box_t *b)
{
    json_t *box = json_object_get(item, "box");
    json_t *x = json_object_get(box, "x"), *y = json_object_get(box, "y");
    json_t *w = json_object_get(box, "w"), *h = json_object_get(box, "h");
    if (!json_is_number(x) || !json_is_number(y) || !json_is_number(w) || !json_is_number(h))
        return false;
    *b = (vg_box_t){(float)json_number_value(x), (float)json_number_value(y),
                    (float)json_number_value(w), (float)json_number_value(h)};
    return true;
}

static void add(batch_t *b, json_t *item, const char *score, vg_track_src_t source)
{
    vg_box_t box;
    if (b->n == MAX_OBS || !json_is_object(item) || !box_of(item, &box)) return;
    const char *posture = json_string_value(json_object_get(item, "posture"));
    b->obs[b->n] =
        (vg_track_obs_t){box, (float)json_number_value(json_object_get(item, score)), source,
                         posture ? vg_posture_parse(posture) : VG_POSTURE_UNKNOWN,
                         (float)json_number_value(json_object_get(item, "posture_confidence"))};
    b->items[b->n++] = item;
}

int vg_track_annotate(vg_tracker_t *t, double now, json_t *results)
{
    if (!t || !json_is_array(results)) return VG_EINVAL;
    batch_t b = {.n = 0};
    size_t i, j;
    json_t *msg, *item;
    json_array_foreach(results, i, msg)
    {
        for (size_t s = 0; s < VG_ARRAY_LEN(sources); s++)
            json_array_foreach(json_object_get(msg, sources[s].key), j, item)
                add(&b, item, sources[s].score, sources[s].source);
    }
    int64_t ids[MAX_OBS];
    int rc = vg_tracker_update(t, now, b.obs, b.n, ids);
    if (rc != VG_OK) return rc;
    for (size_t k = 0; k < b.n; k++)
        json_object_set_new(b.items[k], "track_id",
                            ids[k] > 0 ? json_integer(ids[k]) : json_null());
    return VG_OK;
}

static double round_to(double v, double unit)
{
    return round(v / unit) * unit;
}

json_t *vg_track_json(const vg_track_t *k)
{
    json_t *history = json_array();
    for (size_t i = 0; i < k->n_history; i++)
        json_array_append_new(history,
                              json_pack("{s:f, s:s}", "t", round_to(k->history[i].t, 1e-3),
                                        "posture", vg_posture_name(k->history[i].posture)));
    return json_pack("{s:I, s:f, s:f, s:{s:f, s:f, s:f, s:f}, s:f, s:s, s:f, s:o}", "track_id",
                     (json_int_t)k->id, "first_seen", round_to(k->first_seen, 1e-3), "last_seen",
                     round_to(k->last_seen, 1e-3), "box", "x", round_to(k->box.x, 1e-4), "y",
                     round_to(k->box.y, 1e-4), "w", round_to(k->box.w, 1e-4), "h",
                     round_to(k->box.h, 1e-4), "speed", round_to(k->speed, 1e-3), "posture",
                     vg_posture_name(k->posture), "posture_confidence",
                     round_to(k->posture_confidence, 1e-3), "history", history);
}
