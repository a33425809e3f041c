/* gateway_streams.c — the gateway's side of streams: which streams start (the state
 * file over the config file, then this instance's shard), what happens to results and
 * state changes (MQTT, logs), the state file (rendered after each change, written by
 * the statefile writer thread), and applying a reloaded file's streams. Loop thread
 * only. */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- sharding: rendezvous hashing ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

bool vg_gw_in_shard(const vg_config_t *cfg, const char *stream_id)
{
    if (cfg->shard_count <= 1) return true;
    int best = 0;
    uint64_t best_score = 0;
    for (int i = 0; i < cfg->shard_count; i++) {
        uint64_t score = mix(fnv1a(stream_id, 14695981039346656037ULL) + (uint64_t)i * 0x9e37ULL);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best == cfg->shard_index;
}

bool vg_gw_owns_stream(void *arg, const char *stream_id)
{
    vg_gateway_t *gw = arg;
    return vg_gw_in_shard(gw->cfg, stream_id);
}

/* ---- state file
 * ---------------------------------------------------------------------------------- */

void vg_gw_save_state(vg_gateway_t *gw)
{
    if (!gw->statefile) return;
    json_t *streams = json_array();
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++)
        json_array_append_new(
            streams, vg_control_stream_to_json(vg_stream_cfg(vg_streams_at(gw->streams, i))));
    json_t *doc = json_pack("{s:i, s:s, s:o}", "version", 1, "instance_id", gw->cfg->instance_id,
                            "streams", streams);
    vg_statefile_put(gw->statefile, json_dumps(doc, JSON_INDENT(1)));
    json_decref(doc);
}

/* Streams from the state file, or NULL when there is none (or it is unusable). */
static json_t *load_state(const vg_config_t *cfg)
{
    if (!cfg->state_file || !*cfg->state_file || access(cfg->state_file, F_OK) != 0) return NULL;
    json_error_t jerr;
    json_t *doc = json_load_file(cfg->state_file, JSON_REJECT_DUPLICATES, &jerr);
    json_t *streams = doc ? json_object_get(doc, "streams") : NULL;
    if (!json_is_array(streams)) {
        VG_ERROR("gateway", "state_unreadable", "{s:s, s:s, s:s}", "path", cfg->state_file, "error",
                 doc ? "no 'streams' list" : jerr.text, "action",
                 "using the configuration file's streams");
        json_decref(doc);
        return NULL;
    }
    json_incref(streams);
    json_decref(doc);
    return streams;
}

static void start_one(vg_gateway_t *gw, const vg_stream_cfg_t *sc, bool from_file)
{
    if (!sc->enabled || !vg_gw_in_shard(gw->cfg, sc->stream_id)) return;
    vg_streams_add(gw->streams, sc, from_file);
}

/* vigil_stream_persons: registered by vg_gw_streams_start; its series go with their
 * stream (vg_metrics_remove_label), so none is cached here. */
static vg_metric_t *m_persons;

int vg_gw_streams_start(vg_gateway_t *gw)
{
    m_persons =
        vg_metric_gauge("vigil_stream_persons",
                        "Persons in the stream's latest person_detector result", "stream_id");
    json_t *state = load_state(gw->cfg);
    if (!state) {
        for (size_t i = 0; i < gw->cfg->n_streams; i++)
            start_one(gw, &gw->cfg->streams[i], true);
        return VG_OK;
    }
    size_t i;
    json_t *item;
    json_array_foreach(state, i, item)
    {
        char *field = NULL, *msg = NULL;
        vg_stream_cfg_t *sc = vg_control_stream_from_json(gw->cfg, item, &field, &msg);
        if (sc) {
            start_one(gw, sc, vg_config_find_stream(gw->cfg, sc->stream_id) != NULL);
            vg_stream_cfg_free(sc);
        } else {
            VG_ERROR("gateway", "state_stream_invalid", "{s:i, s:s?, s:s?}", "index", (int)i,
                     "field", field, "error", msg);
        }
        free(field);
        free(msg);
    }
    VG_INFO("gateway", "state_restored", "{s:s, s:i}", "path", gw->cfg->state_file, "streams",
            (int)vg_streams_count(gw->streams));
    json_decref(state);
    return VG_OK;
}

/* A reloaded file: streams it added start, streams it dropped stop, changed ones are
 * applied live. Streams added at run time (not from the file) are left alone, and so
 * are the `held` ones (they wait for a model that loads only on restart). */
void vg_gw_streams_reload(vg_gateway_t *gw, const vg_config_t *next, const json_t *held)
{
    for (size_t i = vg_streams_count(gw->streams); i-- > 0;) {
        vg_stream_t *s = vg_streams_at(gw->streams, i);
        const vg_stream_cfg_t *n = vg_config_find_stream(next, vg_stream_id(s));
        if (vg_stream_from_file(s) && (!n || !n->enabled || !vg_gw_in_shard(next, n->stream_id)))
            vg_streams_remove(gw->streams, vg_stream_id(s));
    }
    for (size_t i = 0; i < next->n_streams; i++) {
        const vg_stream_cfg_t *n = &next->streams[i];
        vg_stream_t *s = vg_streams_find(gw->streams, n->stream_id);
        if (!n->enabled || !vg_gw_in_shard(next, n->stream_id) ||
            json_object_get(held, n->stream_id))
            continue;
        if (!s)
            vg_streams_add(gw->streams, n, true);
        else if (vg_stream_from_file(s))
            vg_stream_apply(s, n);
    }
    vg_gw_events_sync(gw);
    vg_gw_save_state(gw);
}

/* ---- results, states, status
 * ------------------------------------------------------------------------ */

void vg_gw_on_result(void *arg, vg_stream_t *s, const vg_infer_result_t *r)
{
    vg_gateway_t *gw = arg;
    if (r->person_count >= 0)
        vg_series_set(vg_metric_series(m_persons, vg_stream_id(s)), r->person_count);
    size_t i;
    json_t *msg;
    json_array_foreach(r->results, i, msg)
    {
        char *text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(7));
        if (vg_log_enabled(VG_LOG_DEBUG))
            VG_DEBUG("infer", "inference", "{s:s, s:O}", "stream_id", vg_stream_id(s), "result",
                     msg);
        vg_gw_publish_inference(gw, vg_stream_id(s), text);
        free(text);
    }
}

void vg_gw_on_state(void *arg, vg_stream_t *s)
{
    vg_gateway_t *gw = arg; /* the capture module logs the change itself */
    vg_gw_publish_stream_status(gw, s, NULL);
}

void vg_gw_on_changed(void *arg, const char *stream_id, bool removed)
{
    vg_gateway_t *gw = arg;
    vg_gw_events_sync(gw);
    vg_gw_save_state(gw);
    vg_stream_t *s = removed ? NULL : vg_streams_find(gw->streams, stream_id);
    vg_gw_publish_stream_status(gw, s, removed ? stream_id : NULL);
}
