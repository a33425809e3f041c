/* config_query.c — questions other modules ask of a loaded configuration: look-ups
 * (models, streams, worker type names), id and URL rules, the views a stream's workers
 * need, and the limits of limits.h. Pure functions on borrowed configs; loop thread
 * (executor threads only copy model configs they were handed). */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vg_config_worker_types[] = {"person_detector", "motion_detector", "flow_analyzer",
                                              "pose_estimator", NULL};

bool vg_config_valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64) return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

const char *vg_worker_type_name(vg_worker_type_t type)
{
    return (unsigned)type < VG_ARRAY_LEN(vg_config_worker_types) - 1 ? vg_config_worker_types[type]
                                                                     : "unknown";
}

const vg_model_cfg_t *vg_config_find_model(const vg_config_t *cfg, const char *model_id)
{
    for (size_t i = 0; model_id && i < cfg->n_models; i++)
        if (cfg->models[i].model_id && strcmp(cfg->models[i].model_id, model_id) == 0)
            return &cfg->models[i];
    return NULL;
}

const vg_stream_cfg_t *vg_config_find_stream(const vg_config_t *cfg, const char *stream_id)
{
    for (size_t i = 0; stream_id && i < cfg->n_streams; i++)
        if (cfg->streams[i].stream_id && strcmp(cfg->streams[i].stream_id, stream_id) == 0)
            return &cfg->streams[i];
    return NULL;
}

void vg_model_cfg_copy(vg_model_cfg_t *dst, const vg_model_cfg_t *src)
{
    *dst = *src;
    dst->model_id = vg_xstrdup(src->model_id);
    dst->config = vg_xstrdup(src->config);
    dst->weights = vg_xstrdup(src->weights);
    dst->labels = vg_xstrdup(src->labels);
}

void vg_model_cfg_free_copy(vg_model_cfg_t *m)
{
    free(m->model_id);
    free(m->config);
    free(m->weights);
    free(m->labels);
}

/* ---- stream URLs ---- */

int vg_config_check_url(const char *url, bool allow_files, const char **why)
{
    static const char *const schemes[] = {"rtsp://", "rtsps://"};
    if (!url || !*url) {
        *why = "is empty";
        return VG_EINVAL;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "contains control characters";
            return VG_EINVAL;
        }
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(schemes); i++)
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0 && url[strlen(schemes[i])])
            return VG_OK;
    if (!allow_files) {
        *why = "must start with rtsp:// or rtsps:// (capture.allow_files is off)";
        return VG_EINVAL;
    }
    if (url[0] != '/' || strchr(url, ':')) {
        *why = "must start with rtsp:// or rtsps://, or be an absolute file path without ':'";
        return VG_EINVAL;
    }
    return VG_OK;
}

/* ---- views and limits ---- */

/* A detector reads its model's input (HOG wants the camera's aspect, a DNN its square
 * input); motion and flow a small frame. */
vg_view_cfg_t vg_config_worker_view(const vg_config_t *cfg, const vg_worker_cfg_t *w)
{
    vg_view_cfg_t v = {w->roi.x, w->roi.y, w->roi.w, w->roi.h, 320, 180};
    const vg_model_cfg_t *m = w->model_id ? vg_config_find_model(cfg, w->model_id) : NULL;
    if (m && m->format == VG_MODEL_BUILTIN) {
        v.out_w = 640;
        v.out_h = 360;
    } else if (m) {
        v.out_w = v.out_h = m->input_size;
    }
    return v;
}

size_t vg_config_stream_views(const vg_config_t *cfg, const vg_stream_cfg_t *s,
                              vg_view_cfg_t *views, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_workers; i++) {
        if (!s->workers[i].available) continue;
        vg_view_cfg_t v = vg_config_worker_view(cfg, &s->workers[i]);
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            vg_view_cfg_t u = vg_config_worker_view(cfg, &s->workers[j]);
            dup = s->workers[j].available && memcmp(&u, &v, sizeof(v)) == 0;
        }
        if (dup) continue;
        if (n < max) views[n] = v;
        n++;
    }
    return n;
}

int vg_config_check_limits(const vg_config_t *cfg, const vg_stream_cfg_t *s, const char **field,
                           char *msg, size_t len)
{
    if (s->n_workers > VG_LIMIT_WORKERS_PER_STREAM) {
        *field = "workers";
        snprintf(msg, len, "a stream runs at most %d workers, got %zu", VG_LIMIT_WORKERS_PER_STREAM,
                 s->n_workers);
        return VG_EINVAL;
    }
    size_t n_views = vg_config_stream_views(cfg, s, NULL, 0);
    if (n_views > VG_LIMIT_VIEWS_PER_STREAM) {
        *field = "workers";
        snprintf(msg, len,
                 "the workers need %zu distinct views (model input size and roi), at most %d "
                 "per stream",
                 n_views, VG_LIMIT_VIEWS_PER_STREAM);
        return VG_EINVAL;
    }
    if (s->n_privacy_masks > VG_LIMIT_MASKS_PER_STREAM) {
        *field = "privacy_masks";
        snprintf(msg, len, "a stream has at most %d privacy masks, got %zu",
                 VG_LIMIT_MASKS_PER_STREAM, s->n_privacy_masks);
        return VG_EINVAL;
    }
    return VG_OK;
}
