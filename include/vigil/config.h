/* config.h — the instance configuration: YAML file -> immutable structs.
 *
 * vg_config_load() parses and validates a whole file and reports every problem as
 * "file:line:col: message" naming the key; it is pure (no threads, no globals) and
 * runs on the loop thread at start-up and on SIGHUP. A loaded config is never
 * modified: runtime changes build new per-stream snapshots elsewhere. */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/events.h"
#include "vigil/limits.h"
#include "vigil/log.h"
#include "vigil/privacy.h"

typedef struct {
    int line, col; /* 1-based; 0 when the value came from a default */
} vg_mark_t;

typedef struct {
    int x, y, w, h; /* pixels of the source frame; w == 0 means unset */
} vg_rect_t;

typedef enum { VG_DEPLOY_MULTI = 0, VG_DEPLOY_SINGLE } vg_deploy_mode_t;
typedef enum { VG_MODEL_DARKNET = 0, VG_MODEL_ONNX, VG_MODEL_BUILTIN } vg_model_format_t;
typedef enum { VG_TASK_DETECT = 0, VG_TASK_POSE } vg_model_task_t;
typedef enum {
    VG_WORKER_PERSON = 0,
    VG_WORKER_MOTION,
    VG_WORKER_FLOW,
    VG_WORKER_POSE,
} vg_worker_type_t;

typedef struct {
    char *model_id;
    vg_model_format_t format;
    char *config;  /* resolved path, NULL when unset */
    char *weights; /* resolved path */
    char *labels;  /* resolved path, NULL when unset */
    int input_size;
    vg_model_task_t task;
    vg_mark_t mark;
} vg_model_cfg_t;

/* A person or pose detector runs only when its view changed by at least min_change
 * (fraction of the view) since it last ran, or refresh_s seconds of stream time have
 * passed; between runs its last detections are published again (see gate.h). */
typedef struct {
    bool enabled;
    double min_change;
    double refresh_s;
} vg_motion_gate_cfg_t;

typedef struct {
    char *worker_id; /* unique within the stream; defaults to the type name */
    vg_worker_type_t type;
    char *model_id; /* resolved: never NULL for person_detector */
    double confidence_threshold;
    vg_rect_t roi;
    vg_motion_gate_cfg_t gate;
    bool available;           /* false: pose_estimator without a pose model */
    char *unavailable_reason; /* set when !available */
    vg_mark_t mark, model_mark;
} vg_worker_cfg_t;

/* Escalation on a care event of one type (`on_event: {fall: {fps, model_id, hold_s}}`):
 * the stream that raised it runs at fps and/or with model_id for hold_s, then the values
 * it had come back. Both go through the command path (source "event"). */
typedef struct {
    bool set;
    double fps;        /* 0: unchanged */
    char model_id[65]; /* "": unchanged */
    double hold_s;
} vg_escalation_t;

typedef struct {
    char *stream_id;
    char *url;       /* resolved from rtsp_url | url | source_id + stream_url_template */
    char *source_id; /* NULL unless given */
    double fps;
    bool enabled;
    vg_worker_cfg_t *workers;
    size_t n_workers;
    vg_mask_t *privacy_masks; /* fractions of the frame; at most VG_LIMIT_MASKS_PER_STREAM */
    size_t n_privacy_masks;
    int privacy;               /* vg_privacy_mode_t: masks (default), none, skeleton */
    char *room_id;             /* care events: NULL or "" means the stream id */
    vg_zones_t *zones;         /* care events: NULL when the stream has none */
    vg_events_cfg_t *events;   /* care events: NULL means the defaults */
    vg_escalation_t *on_event; /* NULL, or VG_EV_NTYPES entries by vg_event_type_t */
    vg_mark_t mark;
    /* raw keys, kept for validation only */
    char *rtsp_url_raw, *url_raw;
    vg_mark_t url_mark, source_mark;
} vg_stream_cfg_t;

typedef struct {
    char *ca_file, *cert_file, *key_file;
} vg_tls_cfg_t;

typedef struct {
    bool enabled;
    char *host;
    int port;
    char *client_id; /* resolved: vigil-<instance_id> when empty */
    char *username;
    char *password_file;
    vg_tls_cfg_t tls;
    int keepalive_s;
    char *topic_prefix;
    int qos;
    int outbox_limit;
} vg_mqtt_cfg_t;

typedef struct {
    char *listen; /* host:port */
    char *auth_token_file;
    bool auth_reads;
    char *web_root; /* resolved path */
    int max_connections;
} vg_http_cfg_t;

typedef struct {
    char *rtsp_transport; /* tcp | udp */
    double stall_timeout_s;
    double reconnect_initial_s;
    double reconnect_max_s;
    bool allow_files; /* streams may read local files (absolute paths): tests and demos only */
    double still_interval_s; /* still view: one keyframe decoded per this; 0 off */
    double still_after_s;    /* no change this long: the view counts as still */
} vg_capture_cfg_defaults_t;

typedef struct vg_config {
    char *path; /* as given */
    char *dir;  /* folder of the file: relative paths resolve against it */
    char *instance_id;
    vg_deploy_mode_t deployment_mode;
    vg_log_level_t log_level;
    vg_mqtt_cfg_t mqtt;
    vg_http_cfg_t http;
    int telemetry_interval_s;
    char *state_file;
    char *events_file;      /* the care events journal; "" none */
    int events_file_max_mb; /* rotate the journal at this size */
    int events_file_keep;   /* rotated journal files kept */
    char *models_dir;
    vg_model_cfg_t *models;
    size_t n_models;
    int inference_threads;
    char *stream_url_template;
    vg_capture_cfg_defaults_t capture;
    vg_stream_cfg_t *streams;
    size_t n_streams;
    int shard_index, shard_count;
} vg_config_t;

/* Problems found while loading; each message is "file:line:col: text". */
typedef struct {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
} vg_diag_t;

/* Loads and validates `path`. On success returns 0 and *out (caller frees with
 * vg_config_free); otherwise VG_EINVAL/VG_EIO with every problem in `diag`. Warnings
 * may be present either way. `diag` is caller-owned; release with vg_diag_clear(). */
int vg_config_load(const char *path, vg_config_t **out, vg_diag_t *diag);

/* Same from memory; `name` is used in messages, `dir` for relative paths. */
int vg_config_parse(const char *text, size_t len, const char *name, const char *dir,
                    vg_config_t **out, vg_diag_t *diag);

void vg_config_free(vg_config_t *cfg);
void vg_diag_clear(vg_diag_t *diag);

/* Parses one stream's configuration (JSON is YAML flow syntax, so commands and the
 * state file go through the same table and checks as the file). Errors read
 * "params:1:col: key 'fps': ...". */
int vg_config_parse_stream(const vg_config_t *cfg, const char *text, size_t len,
                           vg_stream_cfg_t **out, vg_diag_t *diag);

/* Deep copy of one stream's configuration (caller frees with vg_stream_cfg_free). */
vg_stream_cfg_t *vg_stream_cfg_dup(const vg_stream_cfg_t *s);
void vg_stream_cfg_free(vg_stream_cfg_t *s); /* NULL ok */

/* ---- queries (config_query.c) ---- */

const vg_model_cfg_t *vg_config_find_model(const vg_config_t *cfg, const char *model_id);
const vg_stream_cfg_t *vg_config_find_stream(const vg_config_t *cfg, const char *stream_id);
const char *vg_worker_type_name(vg_worker_type_t type);
/* Deep copy of a model's configuration into dst (release with vg_model_cfg_free_copy). */
void vg_model_cfg_copy(vg_model_cfg_t *dst, const vg_model_cfg_t *src);
void vg_model_cfg_free_copy(vg_model_cfg_t *m);

/* True for [A-Za-z0-9_.-]{1,64}: instance, stream, worker and model ids. */
bool vg_config_valid_id(const char *s);

/* Stream URLs from outside (file, REST, MQTT, state file) are camera streams only:
 * rtsp:// or rtsps://; with capture.allow_files also an absolute file path (no ':' in
 * it, so FFmpeg cannot read it as a protocol). 0, or VG_EINVAL with a reason in `why`
 * (static string). The capture's FFmpeg protocol_whitelist matches this. */
int vg_config_check_url(const char *url, bool allow_files, const char **why);

/* The picture a worker reads: a source region in pixels (w == 0: the whole frame)
 * scaled to out_w x out_h. Workers with equal views share one conversion. */
typedef struct {
    int x, y, w, h;
    int out_w, out_h;
} vg_view_cfg_t;

vg_view_cfg_t vg_config_worker_view(const vg_config_t *cfg, const vg_worker_cfg_t *w);
/* Distinct views of the stream's available workers, written to views (up to max) and
 * counted (the count may exceed max). */
size_t vg_config_stream_views(const vg_config_t *cfg, const vg_stream_cfg_t *s,
                              vg_view_cfg_t *views, size_t max);
/* 0 when the stream fits limits.h (workers, distinct views, masks); else VG_EINVAL with
 * the offending key in *field (static: "workers", "privacy_masks") and a message. */
int vg_config_check_limits(const vg_config_t *cfg, const vg_stream_cfg_t *s, const char **field,
                           char *msg, size_t len);

#endif
