/* gateway_reload.c — SIGHUP: load the file again and, key by key, either apply the new
 * value or keep the running one and report it as `config_needs_restart`; never neither.
 * The table below says which. Loop thread only.
 *
 * Restart-only keys keep their running values in the new configuration (their new
 * values go to the old one, freed at the end), so exactly one value of each is in
 * force. Streams are applied live, except a stream whose workers need a model the
 * running registry lacks (models change on restart only): that stream is held as it
 * runs (or not started) and reported with the model it waits for. */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/secret.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { F_STR, F_INT, F_BOOL, F_DBL, F_MODELS } field_t;

typedef struct {
    const char *key;
    field_t type;
    size_t off;                                    /* into vg_config_t */
    bool restart;                                  /* else applied live */
    void (*apply)(vg_gateway_t *gw, bool changed); /* after the swap; NULL: read on use */
} reload_key_t;

static void apply_log_level(vg_gateway_t *gw, bool changed)
{
    (void)changed;
    if (!gw->log_level_override) vg_log_set_level(gw->cfg->log_level);
}

/* The token file is read again on every reload: its content may change under the
 * same path. An unreadable file keeps the running token (logged by the reader). */
static void apply_http_auth(vg_gateway_t *gw, bool changed)
{
    (void)changed;
    const vg_http_cfg_t *h = &gw->cfg->http;
    char *token = NULL;
    if (*h->auth_token_file) token = vg_secret_read_file(h->auth_token_file, "http token");
    if (gw->http && (token || !*h->auth_token_file))
        vg_http_set_auth(gw->http, token, h->auth_reads);
    if (token) explicit_bzero(token, strlen(token));
    free(token);
}

static void apply_telemetry(vg_gateway_t *gw, bool changed)
{
    if (changed) vg_gw_mqtt_set_telemetry_interval(gw);
}

#define K(name, type, field, restart, apply)                                                       \
    {                                                                                              \
        name, type, offsetof(vg_config_t, field), restart, apply                                   \
    }

/* Every key of the file. Keys read where they are used (qos per publish, deployment
 * mode and URL template per command) need no apply hook. */
static const reload_key_t keys[] = {
    K("instance_id", F_STR, instance_id, true, NULL),
    K("deployment_mode", F_INT, deployment_mode, false, NULL),
    K("log.level", F_INT, log_level, false, apply_log_level),
    K("mqtt.enabled", F_BOOL, mqtt.enabled, true, NULL),
    K("mqtt.host", F_STR, mqtt.host, true, NULL),
    K("mqtt.port", F_INT, mqtt.port, true, NULL),
    K("mqtt.client_id", F_STR, mqtt.client_id, true, NULL),
    K("mqtt.username", F_STR, mqtt.username, true, NULL),
    K("mqtt.password_file", F_STR, mqtt.password_file, true, NULL),
    K("mqtt.tls.ca_file", F_STR, mqtt.tls.ca_file, true, NULL),
    K("mqtt.tls.cert_file", F_STR, mqtt.tls.cert_file, true, NULL),
    K("mqtt.tls.key_file", F_STR, mqtt.tls.key_file, true, NULL),
    K("mqtt.keepalive_s", F_INT, mqtt.keepalive_s, true, NULL),
    K("mqtt.topic_prefix", F_STR, mqtt.topic_prefix, true, NULL),
    K("mqtt.qos", F_INT, mqtt.qos, false, NULL),
    K("mqtt.outbox_limit", F_INT, mqtt.outbox_limit, true, NULL),
    K("http.listen", F_STR, http.listen, true, NULL),
    K("http.auth_token_file", F_STR, http.auth_token_file, false, apply_http_auth),
    K("http.auth_reads", F_BOOL, http.auth_reads, false, NULL), /* with the token */
    K("http.web_root", F_STR, http.web_root, true, NULL),
    K("http.max_connections", F_INT, http.max_connections, true, NULL),
    K("telemetry.interval_s", F_INT, telemetry_interval_s, false, apply_telemetry),
    K("state_file", F_STR, state_file, true, NULL),
    K("models", F_MODELS, models, true, NULL), /* with models_dir */
    K("inference.threads", F_INT, inference_threads, true, NULL),
    K("stream_url_template", F_STR, stream_url_template, false, NULL),
    K("capture.allow_files", F_BOOL, capture.allow_files, false, NULL), /* read per command */
    K("capture.still_interval_s", F_DBL, capture.still_interval_s, true, NULL),
    K("capture.still_after_s", F_DBL, capture.still_after_s, true, NULL),
    K("capture.rtsp_transport", F_STR, capture.rtsp_transport, true, NULL),
    K("capture.stall_timeout_s", F_DBL, capture.stall_timeout_s, true, NULL),
    K("capture.reconnect_initial_s", F_DBL, capture.reconnect_initial_s, true, NULL),
    K("capture.reconnect_max_s", F_DBL, capture.reconnect_max_s, true, NULL),
    K("shard.index", F_INT, shard_index, true, NULL),
    K("shard.count", F_INT, shard_count, true, NULL),
};

static bool str_diff(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") != 0;
}

static bool model_diff(const vg_model_cfg_t *a, const vg_model_cfg_t *b)
{
    return str_diff(a->model_id, b->model_id) || a->format != b->format ||
           str_diff(a->config, b->config) || str_diff(a->weights, b->weights) ||
           str_diff(a->labels, b->labels) || a->input_size != b->input_size || a->task != b->task;
}

static bool models_diff(const vg_config_t *a, const vg_config_t *b)
{
    if (a->n_models != b->n_models || str_diff(a->models_dir, b->models_dir)) return true;
    for (size_t i = 0; i < a->n_models; i++)
        if (model_diff(&a->models[i], &b->models[i])) return true;
    return false;
}

static bool key_diff(const reload_key_t *k, const vg_config_t *a, const vg_config_t *b)
{
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    switch (k->type) {
    case F_STR:
        return str_diff(*(char *const *)pa, *(char *const *)pb);
    case F_INT:
        return *(const int *)pa != *(const int *)pb;
    case F_BOOL:
        return *(const bool *)pa != *(const bool *)pb;
    case F_DBL:
        return *(const double *)pa != *(const double *)pb;
    case F_MODELS:
        return models_diff(a, b);
    }
    return false;
}

static void swap_bytes(void *a, void *b, size_t n)
{
    unsigned char tmp[sizeof(double) > sizeof(char *) ? sizeof(double) : sizeof(char *)];
    VG_CHECK(n <= sizeof(tmp));
    memcpy(tmp, a, n);
    memcpy(a, b, n);
    memcpy(b, tmp, n);
}

/* The running value goes back into next; old takes the file's value (and frees it). */
static void keep_running(const reload_key_t *k, vg_config_t *next, vg_config_t *old)
{
    static const size_t sizes[] = {[F_STR] = sizeof(char *),
                                   [F_INT] = sizeof(int),
                                   [F_BOOL] = sizeof(bool),
                                   [F_DBL] = sizeof(double)};
    if (k->type == F_MODELS) {
        swap_bytes(&next->models, &old->models, sizeof(next->models));
        swap_bytes(&next->n_models, &old->n_models, sizeof(next->n_models));
        swap_bytes(&next->models_dir, &old->models_dir, sizeof(next->models_dir));
        return;
    }
    swap_bytes((char *)next + k->off, (char *)old + k->off, sizes[k->type]);
}

/* NULL when every model the stream's workers name is loaded as the file defines it;
 * else the first model id that is missing (or changed its task). */
static const char *missing_model(const vg_config_t *running, const vg_config_t *file,
                                 const vg_stream_cfg_t *sc)
{
    for (size_t i = 0; i < sc->n_workers; i++) {
        const char *id = sc->workers[i].model_id;
        if (!id) continue;
        const vg_model_cfg_t *have = vg_config_find_model(running, id);
        const vg_model_cfg_t *want = vg_config_find_model(file, id);
        if (!have || !want || have->task != want->task) return id;
    }
    return NULL;
}

/* Streams of the file that cannot run on the loaded models: {stream_id: model_id}. */
static json_t *held_streams(const vg_config_t *running, const vg_config_t *next)
{
    json_t *held = json_object();
    for (size_t i = 0; i < next->n_streams; i++) {
        const char *id = missing_model(running, next, &next->streams[i]);
        if (id) json_object_set_new(held, next->streams[i].stream_id, json_string(id));
    }
    return held;
}

static void report(json_t *restart, json_t *held, json_t *applied, const char *path)
{
    const char *sid;
    json_t *model;
    json_object_foreach(held, sid, model)
    {
        char *key = vg_xasprintf("streams.%s", sid);
        json_array_append_new(restart, json_string(key));
        free(key);
    }
    if (json_array_size(restart))
        VG_WARN("gateway", "config_needs_restart", "{s:O, s:O, s:s}", "keys", restart,
                "streams_waiting_for_model", held, "action",
                "running values kept until vigild restarts");
    VG_INFO("gateway", "config_reloaded", "{s:s, s:O}", "path", path, "applied", applied);
}

void vg_gw_reload(vg_gateway_t *gw)
{
    vg_diag_t diag = {0};
    vg_config_t *next = NULL;
    if (vg_config_load(gw->cfg->path, &next, &diag) != 0) {
        json_t *errs = json_array();
        for (size_t i = 0; i < diag.n_errors; i++)
            json_array_append_new(errs, json_string(diag.errors[i]));
        VG_ERROR("gateway", "config_reload_failed", "{s:s, s:o, s:s}", "path", gw->cfg->path,
                 "errors", errs, "action", "keeping the running configuration");
        vg_series_inc(gw->reloads_failed);
        vg_diag_clear(&diag);
        return;
    }
    vg_diag_clear(&diag);
    vg_config_t *old = gw->cfg;
    json_t *restart = json_array(), *applied = json_array();
    json_t *held = held_streams(old, next);
    bool changed[VG_ARRAY_LEN(keys)];
    for (size_t i = 0; i < VG_ARRAY_LEN(keys); i++) {
        changed[i] = key_diff(&keys[i], old, next);
        if (changed[i])
            json_array_append_new(keys[i].restart ? restart : applied, json_string(keys[i].key));
        if (keys[i].restart) keep_running(&keys[i], next, old);
    }
    gw->cfg = next;
    vg_streams_set_config(gw->streams, next);
    vg_control_set_config(gw->control, next);
    for (size_t i = 0; i < VG_ARRAY_LEN(keys); i++)
        if (!keys[i].restart && keys[i].apply) keys[i].apply(gw, changed[i]);
    vg_gw_streams_reload(gw, next, held);
    vg_config_free(old);
    vg_series_inc(gw->reloads_ok);
    report(restart, held, applied, next->path);
    json_decref(restart);
    json_decref(applied);
    json_decref(held);
}
