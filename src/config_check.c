/* config_check.c — validation across keys once the walker has filled the structs:
 * references (model_id), uniqueness (stream_id, worker_id), stream URL resolution,
 * file readability of models, limits (limits.h), privacy masks inside the frame, and
 * derived defaults (client_id, worker ids). Reports
 * every problem with the position of the offending key. Pure; loop thread. */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_model_file(ctx_t *c, const vg_model_cfg_t *m, const char *key, char **path,
                             const char *models_dir)
{
    if (!*path || !**path) {
        vg_cfg_report(c, false, m->mark, "model '%s': key '%s' is required for format %s",
                      m->model_id, key, m->format == VG_MODEL_ONNX ? "onnx" : "darknet");
        return;
    }
    char *full = vg_cfg_resolve_path(models_dir, *path);
    free(*path);
    *path = full;
    if (access(full, R_OK) != 0)
        vg_cfg_report(c, false, m->mark, "model '%s': key '%s': cannot read file '%s': %s",
                      m->model_id, key, full, strerror(errno));
}

static void check_models(ctx_t *c, vg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        vg_model_cfg_t *m = &cfg->models[i];
        if (!m->model_id) continue;
        for (size_t j = 0; j < i; j++)
            if (cfg->models[j].model_id && strcmp(cfg->models[j].model_id, m->model_id) == 0)
                vg_cfg_report(c, false, m->mark,
                              "key 'models[%zu].model_id': '%s' is defined twice", i, m->model_id);
        if (m->format == VG_MODEL_BUILTIN) {
            if (strcmp(m->model_id, "builtin-hog") != 0)
                vg_cfg_report(c, false, m->mark,
                              "key 'models[%zu].format': builtin models are: builtin-hog", i);
            continue;
        }
        if (m->format == VG_MODEL_DARKNET)
            check_model_file(c, m, "config", &m->config, cfg->models_dir);
        check_model_file(c, m, "weights", &m->weights, cfg->models_dir);
        if (m->labels && *m->labels) {
            char *full = vg_cfg_resolve_path(cfg->models_dir, m->labels);
            free(m->labels);
            m->labels = full;
            if (access(full, R_OK) != 0)
                vg_cfg_report(c, false, m->mark,
                              "model '%s': key 'labels': cannot read file '%s': %s", m->model_id,
                              full, strerror(errno));
        }
    }
    /* builtin-hog is always available, so a configuration without model files detects people */
    if (!vg_config_find_model(cfg, "builtin-hog")) {
        cfg->models = vg_xrealloc(cfg->models, (cfg->n_models + 1) * sizeof(*cfg->models));
        vg_model_cfg_t *m = &cfg->models[cfg->n_models++];
        memset(m, 0, sizeof(*m));
        m->model_id = vg_xstrdup("builtin-hog");
        m->format = VG_MODEL_BUILTIN;
        m->input_size = 320;
        m->task = VG_TASK_DETECT;
    }
}

static const vg_model_cfg_t *first_model(const vg_config_t *cfg, vg_model_task_t task)
{
    for (size_t i = 0; i < cfg->n_models; i++)
        if (cfg->models[i].task == task) return &cfg->models[i];
    return NULL;
}

/* "streams[0]" + "fps" -> "streams[0].fps"; "" + "fps" -> "fps" */
static const char *join(char *buf, size_t len, const char *key, const char *sub)
{
    snprintf(buf, len, "%s%s%s", key, *key ? "." : "", sub);
    return buf;
}

void vg_cfg_check_worker(ctx_t *c, const vg_config_t *cfg, vg_worker_cfg_t *w, const char *key)
{
    char k[320];
    vg_model_task_t need = w->type == VG_WORKER_POSE ? VG_TASK_POSE : VG_TASK_DETECT;
    bool uses_model = w->type == VG_WORKER_PERSON || w->type == VG_WORKER_POSE;
    if (!w->worker_id) w->worker_id = vg_xstrdup(vg_worker_type_name(w->type));
    w->available = true;
    if (!uses_model) {
        if (w->model_id)
            vg_cfg_report(c, false, w->model_mark, "key '%s': %s uses no model",
                          join(k, sizeof(k), key, "spec.model_id"), vg_worker_type_name(w->type));
        return;
    }
    if (w->model_id) {
        const vg_model_cfg_t *m = vg_config_find_model(cfg, w->model_id);
        if (!m)
            vg_cfg_report(c, false, w->model_mark,
                          "key '%s': no model '%s' is defined under 'models'",
                          join(k, sizeof(k), key, "spec.model_id"), w->model_id);
        else if (m->task != need)
            vg_cfg_report(c, false, w->model_mark,
                          "key '%s': model '%s' has task %s, %s needs task %s",
                          join(k, sizeof(k), key, "spec.model_id"), w->model_id,
                          m->task == VG_TASK_POSE ? "pose" : "detect", vg_worker_type_name(w->type),
                          need == VG_TASK_POSE ? "pose" : "detect");
        return;
    }
    const vg_model_cfg_t *m = first_model(cfg, need);
    if (m) {
        w->model_id = vg_xstrdup(m->model_id);
        return;
    }
    w->available = false;
    w->unavailable_reason = vg_xstrdup("no model with task: pose is configured");
    vg_cfg_report(c, true, w->mark,
                  "key '%s': pose_estimator has no model with task: pose; it will be "
                  "unavailable and the stream's other workers will run",
                  key);
}

/* Masks are fractions of the frame and must lie inside it. */
static void check_masks(ctx_t *c, const vg_stream_cfg_t *s, const char *key)
{
    char k[320], idx[48];
    for (size_t i = 0; i < s->n_privacy_masks; i++) {
        const vg_mask_t *m = &s->privacy_masks[i];
        const char *over = m->x + m->w > 1 + 1e-6 ? "w" : m->y + m->h > 1 + 1e-6 ? "h" : NULL;
        if (!over) continue;
        snprintf(idx, sizeof(idx), "privacy_masks[%zu].%s", i, over);
        vg_cfg_report(c, false, s->mark, "key '%s': the mask reaches past the frame (%s + %s > 1)",
                      join(k, sizeof(k), key, idx), *over == 'w' ? "x" : "y", over);
    }
}

/* Limits of limits.h, reported at the stream's position. */
static void check_limits(ctx_t *c, const vg_config_t *cfg, const vg_stream_cfg_t *s,
                         const char *key)
{
    const char *field = NULL;
    char why[200], k[320];
    if (vg_config_check_limits(cfg, s, &field, why, sizeof(why)) != 0)
        vg_cfg_report(c, false, s->mark, "key '%s': %s", join(k, sizeof(k), key, field), why);
}

void vg_cfg_check_stream(ctx_t *c, const vg_config_t *cfg, vg_stream_cfg_t *s, const char *key)
{
    char k[320];
    int sources = !!s->rtsp_url_raw + !!s->url_raw + !!s->source_id;
    if (sources > 1)
        vg_cfg_report(c, false, s->url_mark.line ? s->url_mark : s->mark,
                      "stream '%s': give only one of 'rtsp_url', 'url' and 'source_id'",
                      s->stream_id ? s->stream_id : "?");
    else if (sources == 0)
        vg_cfg_report(c, false, s->mark,
                      "key '%s': one of 'rtsp_url', 'url' or 'source_id' is required", key);
    else if (s->source_id && !*cfg->stream_url_template)
        vg_cfg_report(c, false, s->source_mark,
                      "key '%s': needs 'stream_url_template' to build the URL",
                      join(k, sizeof(k), key, "source_id"));
    if (sources == 1) {
        free(s->url);
        if (s->source_id && *cfg->stream_url_template) {
            const char *tpl = cfg->stream_url_template, *ph = strstr(tpl, "{source_id}");
            s->url = ph ? vg_xasprintf("%.*s%s%s", (int)(ph - tpl), tpl, s->source_id,
                                       ph + strlen("{source_id}"))
                        : vg_xasprintf("%s%s", tpl, s->source_id);
        } else {
            s->url = vg_xstrdup(s->rtsp_url_raw ? s->rtsp_url_raw : s->url_raw);
        }
        const char *why = NULL;
        if (s->url && vg_config_check_url(s->url, cfg->capture.allow_files, &why) != 0) {
            char *red = vg_redact_url(s->url);
            const char *name = s->source_id ? "source_id" : s->rtsp_url_raw ? "rtsp_url" : "url";
            vg_cfg_report(c, false, s->source_id ? s->source_mark : s->url_mark,
                          "key '%s': URL '%s' %s", join(k, sizeof(k), key, name), red, why);
            free(red);
        }
    }
    check_masks(c, s, key);
    for (size_t j = 0; j < s->n_workers; j++) {
        char wkey[300], idx[32];
        snprintf(idx, sizeof(idx), "workers[%zu]", j);
        join(wkey, sizeof(wkey), key, idx);
        vg_cfg_check_worker(c, cfg, &s->workers[j], wkey);
        for (size_t prev = 0; prev < j; prev++)
            if (strcmp(s->workers[prev].worker_id, s->workers[j].worker_id) == 0)
                vg_cfg_report(c, false, s->workers[j].mark,
                              "key '%s': worker_id '%s' is used twice in the stream (set "
                              "'worker_id' to tell them apart)",
                              wkey, s->workers[j].worker_id);
    }
    check_limits(c, cfg, s, key);
}

static void check_listen(ctx_t *c, const char *listen, vg_mark_t m)
{
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == listen || !end || *end || port < 1 || port > 65535)
        vg_cfg_report(c, false, m,
                      "key 'http.listen': expected HOST:PORT with a port from 1 to 65535, got '%s'",
                      listen);
}

/* stream_url_template builds camera URLs from source ids: it must give rtsp(s) URLs. */
static void check_template(ctx_t *c, const vg_config_t *cfg)
{
    const char *tpl = cfg->stream_url_template, *why = NULL;
    if (!*tpl) return;
    const char *ph = strstr(tpl, "{source_id}");
    char *url = ph ? vg_xasprintf("%.*sx%s", (int)(ph - tpl), tpl, ph + strlen("{source_id}"))
                   : vg_xasprintf("%sx", tpl);
    if (vg_config_check_url(url, cfg->capture.allow_files, &why) != 0)
        vg_cfg_report(c, false, vg_cfg_mark(c, "stream_url_template"),
                      "key 'stream_url_template': URLs it builds %s", why);
    free(url);
}

void vg_cfg_check(ctx_t *c, vg_config_t *cfg)
{
    if (cfg->instance_id && !*cfg->mqtt.client_id) {
        free(cfg->mqtt.client_id);
        cfg->mqtt.client_id = vg_xasprintf("vigil-%s", cfg->instance_id);
    }
    if (!*cfg->mqtt.topic_prefix || strpbrk(cfg->mqtt.topic_prefix, "+#"))
        vg_cfg_report(c, false, vg_cfg_mark(c, "mqtt.topic_prefix"),
                      "key 'mqtt.topic_prefix': must be non-empty without '+' or '#'");
    check_listen(c, cfg->http.listen, vg_cfg_mark(c, "http.listen"));
    if (cfg->capture.reconnect_initial_s > cfg->capture.reconnect_max_s)
        vg_cfg_report(c, false, vg_cfg_mark(c, "capture.reconnect_initial_s"),
                      "key 'capture.reconnect_initial_s': must not exceed reconnect_max_s (%g)",
                      cfg->capture.reconnect_max_s);
    if (cfg->shard_index >= cfg->shard_count)
        vg_cfg_report(c, false, vg_cfg_mark(c, "shard.index"),
                      "key 'shard.index': must be below shard.count (%d), got %d", cfg->shard_count,
                      cfg->shard_index);
    if (cfg->deployment_mode == VG_DEPLOY_SINGLE && cfg->n_streams > 1)
        vg_cfg_report(c, false, cfg->streams[1].mark,
                      "deployment_mode single_stream allows one stream, got %zu", cfg->n_streams);
    check_models(c, cfg);
    check_template(c, cfg);
    for (size_t i = 0; i < cfg->n_streams; i++) {
        vg_stream_cfg_t *s = &cfg->streams[i];
        char key[64];
        snprintf(key, sizeof(key), "streams[%zu]", i);
        vg_cfg_check_stream(c, cfg, s, key);
        for (size_t j = 0; s->stream_id && j < i; j++)
            if (cfg->streams[j].stream_id && strcmp(cfg->streams[j].stream_id, s->stream_id) == 0)
                vg_cfg_report(c, false, s->mark,
                              "key '%s.stream_id': '%s' is already used by streams[%zu]", key,
                              s->stream_id, j);
    }
}
