/* config.c — table-driven YAML loader. Schema tables below describe every key: its
 * type, where it lands in the structs, its default and range. One walker applies
 * them to the libyaml document tree, reporting every problem with file:line:col;
 * config_check.c then resolves references and validates across keys. Pure code: no
 * threads, no globals; runs on the loop thread. */
#include "config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define OFF(type, member) offsetof(type, member)
#define CNT(type, member) offsetof(type, member)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const deploy_modes[] = {"multi_stream", "single_stream", NULL};
static const char *const model_formats[] = {"darknet", "onnx", "builtin", NULL};
static const char *const model_tasks[] = {"detect", "pose", NULL};
static const char *const transports[] = {"tcp", "udp", NULL};
static const char *const privacy_modes[] = {"masks", "none", "skeleton", NULL};

/* ---- schema ---------------------------------------------------------------- */

static const field_t rect_fields[] = {
    {.name = "x",
     .kind = K_INT,
     .off = OFF(vg_rect_t, x),
     .def = NULL,
     .min = 0,
     .max = 100000,
     .flags = F_REQUIRED},
    {.name = "y",
     .kind = K_INT,
     .off = OFF(vg_rect_t, y),
     .def = NULL,
     .min = 0,
     .max = 100000,
     .flags = F_REQUIRED},
    {.name = "w",
     .kind = K_INT,
     .off = OFF(vg_rect_t, w),
     .def = NULL,
     .min = 1,
     .max = 100000,
     .flags = F_REQUIRED},
    {.name = "h",
     .kind = K_INT,
     .off = OFF(vg_rect_t, h),
     .def = NULL,
     .min = 1,
     .max = 100000,
     .flags = F_REQUIRED},
};
static const schema_t rect_schema = {.what = "rectangle",
                                     .fields = rect_fields,
                                     .n_fields = VG_ARRAY_LEN(rect_fields),
                                     .size = sizeof(vg_rect_t)};

/* Privacy masks are fractions of the frame, so they hold at any resolution. */
#define MASK_HINT                                                                                  \
    "privacy masks are fractions of the frame (0..1): divide pixels by the frame's width or "      \
    "height"
static const field_t mask_fields[] = {
    {.name = "x",
     .kind = K_DBL,
     .off = OFF(vg_mask_t, x),
     .def = NULL,
     .min = 0,
     .max = 1,
     .flags = F_REQUIRED,
     .hint = MASK_HINT},
    {.name = "y",
     .kind = K_DBL,
     .off = OFF(vg_mask_t, y),
     .def = NULL,
     .min = 0,
     .max = 1,
     .flags = F_REQUIRED,
     .hint = MASK_HINT},
    {.name = "w",
     .kind = K_DBL,
     .off = OFF(vg_mask_t, w),
     .def = NULL,
     .min = 0.0001,
     .max = 1,
     .flags = F_REQUIRED,
     .hint = MASK_HINT},
    {.name = "h",
     .kind = K_DBL,
     .off = OFF(vg_mask_t, h),
     .def = NULL,
     .min = 0.0001,
     .max = 1,
     .flags = F_REQUIRED,
     .hint = MASK_HINT},
};
static const schema_t mask_schema = {.what = "privacy mask",
                                     .fields = mask_fields,
                                     .n_fields = VG_ARRAY_LEN(mask_fields),
                                     .size = sizeof(vg_mask_t)};

static const field_t gate_fields[] = {
    {.name = "enabled", .kind = K_BOOL, .off = OFF(vg_motion_gate_cfg_t, enabled), .def = "true"},
    {.name = "min_change",
     .kind = K_DBL,
     .off = OFF(vg_motion_gate_cfg_t, min_change),
     .def = "0.003",
     .min = 0,
     .max = 1},
    {.name = "refresh_s",
     .kind = K_DBL,
     .off = OFF(vg_motion_gate_cfg_t, refresh_s),
     .def = "5",
     .min = 0.1,
     .max = 600},
};
static const schema_t gate_schema = {
    .what = "motion gate", .fields = gate_fields, .n_fields = VG_ARRAY_LEN(gate_fields), .size = 0};

static const field_t worker_spec_fields[] = {
    {.name = "model_id",
     .kind = K_STR,
     .off = OFF(vg_worker_cfg_t, model_id),
     .def = NULL,
     .flags = F_ID | F_MARK,
     .mark_off = OFF(vg_worker_cfg_t, model_mark)},
    {.name = "confidence_threshold",
     .kind = K_DBL,
     .off = OFF(vg_worker_cfg_t, confidence_threshold),
     .def = "0.5",
     .min = 0,
     .max = 1},
    {.name = "roi",
     .kind = K_OBJ,
     .off = OFF(vg_worker_cfg_t, roi),
     .def = NULL,
     .sub = &rect_schema,
     .flags = F_OPTIONAL_OBJ},
    {.name = "motion_gate",
     .kind = K_OBJ,
     .off = OFF(vg_worker_cfg_t, gate),
     .def = NULL,
     .sub = &gate_schema},
};
static const schema_t worker_spec_schema = {.what = "worker spec",
                                            .fields = worker_spec_fields,
                                            .n_fields = VG_ARRAY_LEN(worker_spec_fields),
                                            .size = 0};

static const field_t worker_fields[] = {
    {.name = "type",
     .kind = K_ENUM,
     .off = OFF(vg_worker_cfg_t, type),
     .def = NULL,
     .names = vg_config_worker_types,
     .flags = F_REQUIRED},
    {.name = "worker_id",
     .kind = K_STR,
     .off = OFF(vg_worker_cfg_t, worker_id),
     .def = NULL,
     .flags = F_ID},
    {.name = "spec", .kind = K_OBJ, .off = 0, .def = NULL, .sub = &worker_spec_schema},
};
static const schema_t worker_schema = {.what = "worker",
                                       .fields = worker_fields,
                                       .n_fields = VG_ARRAY_LEN(worker_fields),
                                       .size = sizeof(vg_worker_cfg_t),
                                       .has_mark = true,
                                       .mark_off = OFF(vg_worker_cfg_t, mark)};

static const field_t stream_fields[] = {
    {.name = "stream_id",
     .kind = K_STR,
     .off = OFF(vg_stream_cfg_t, stream_id),
     .def = NULL,
     .flags = F_REQUIRED | F_ID},
    {.name = "rtsp_url",
     .kind = K_STR,
     .off = OFF(vg_stream_cfg_t, rtsp_url_raw),
     .def = NULL,
     .flags = F_MARK,
     .mark_off = OFF(vg_stream_cfg_t, url_mark)},
    {.name = "url",
     .kind = K_STR,
     .off = OFF(vg_stream_cfg_t, url_raw),
     .def = NULL,
     .flags = F_MARK,
     .mark_off = OFF(vg_stream_cfg_t, url_mark)},
    {.name = "source_id",
     .kind = K_STR,
     .off = OFF(vg_stream_cfg_t, source_id),
     .def = NULL,
     .flags = F_MARK,
     .mark_off = OFF(vg_stream_cfg_t, source_mark)},
    {.name = "fps",
     .kind = K_DBL,
     .off = OFF(vg_stream_cfg_t, fps),
     .def = "5",
     .min = 0.01,
     .max = 30},
    {.name = "enabled", .kind = K_BOOL, .off = OFF(vg_stream_cfg_t, enabled), .def = "true"},
    {.name = "workers",
     .kind = K_LIST,
     .off = OFF(vg_stream_cfg_t, workers),
     .def = NULL,
     .sub = &worker_schema,
     .count_off = CNT(vg_stream_cfg_t, n_workers)},
    {.name = "privacy_masks",
     .kind = K_LIST,
     .off = OFF(vg_stream_cfg_t, privacy_masks),
     .def = NULL,
     .sub = &mask_schema,
     .count_off = CNT(vg_stream_cfg_t, n_privacy_masks)},
    {.name = "privacy",
     .kind = K_ENUM,
     .off = OFF(vg_stream_cfg_t, privacy),
     .def = "masks",
     .names = privacy_modes},
    {.name = "room_id",
     .kind = K_STR,
     .off = OFF(vg_stream_cfg_t, room_id),
     .def = NULL,
     .flags = F_ID},
    {.name = "zones",
     .kind = K_JSON,
     .off = OFF(vg_stream_cfg_t, zones),
     .parse = vg_cfg_parse_zones},
    {.name = "events",
     .kind = K_JSON,
     .off = OFF(vg_stream_cfg_t, events),
     .parse = vg_cfg_parse_events},
    {.name = "on_event",
     .kind = K_JSON,
     .off = OFF(vg_stream_cfg_t, on_event),
     .parse = vg_cfg_parse_on_event},
};
static const schema_t stream_schema = {.what = "stream",
                                       .fields = stream_fields,
                                       .n_fields = VG_ARRAY_LEN(stream_fields),
                                       .size = sizeof(vg_stream_cfg_t),
                                       .has_mark = true,
                                       .mark_off = OFF(vg_stream_cfg_t, mark)};

static const field_t model_fields[] = {
    {.name = "model_id",
     .kind = K_STR,
     .off = OFF(vg_model_cfg_t, model_id),
     .def = NULL,
     .flags = F_REQUIRED | F_ID},
    {.name = "format",
     .kind = K_ENUM,
     .off = OFF(vg_model_cfg_t, format),
     .def = "darknet",
     .names = model_formats},
    {.name = "config", .kind = K_STR, .off = OFF(vg_model_cfg_t, config), .def = NULL},
    {.name = "weights", .kind = K_STR, .off = OFF(vg_model_cfg_t, weights), .def = NULL},
    {.name = "labels", .kind = K_STR, .off = OFF(vg_model_cfg_t, labels), .def = NULL},
    {.name = "input_size",
     .kind = K_INT,
     .off = OFF(vg_model_cfg_t, input_size),
     .def = "320",
     .min = 32,
     .max = 2048},
    {.name = "task",
     .kind = K_ENUM,
     .off = OFF(vg_model_cfg_t, task),
     .def = "detect",
     .names = model_tasks},
};
static const schema_t model_schema = {.what = "model",
                                      .fields = model_fields,
                                      .n_fields = VG_ARRAY_LEN(model_fields),
                                      .size = sizeof(vg_model_cfg_t),
                                      .has_mark = true,
                                      .mark_off = OFF(vg_model_cfg_t, mark)};

static const field_t tls_fields[] = {
    {.name = "ca_file",
     .kind = K_PATH,
     .off = OFF(vg_tls_cfg_t, ca_file),
     .def = "",
     .flags = F_FILE},
    {.name = "cert_file",
     .kind = K_PATH,
     .off = OFF(vg_tls_cfg_t, cert_file),
     .def = "",
     .flags = F_FILE},
    {.name = "key_file",
     .kind = K_PATH,
     .off = OFF(vg_tls_cfg_t, key_file),
     .def = "",
     .flags = F_FILE},
};
static const schema_t tls_schema = {
    .what = "mqtt.tls", .fields = tls_fields, .n_fields = VG_ARRAY_LEN(tls_fields), .size = 0};

static const field_t mqtt_fields[] = {
    {.name = "enabled", .kind = K_BOOL, .off = OFF(vg_mqtt_cfg_t, enabled), .def = "true"},
    {.name = "host", .kind = K_STR, .off = OFF(vg_mqtt_cfg_t, host), .def = "127.0.0.1"},
    {.name = "port",
     .kind = K_INT,
     .off = OFF(vg_mqtt_cfg_t, port),
     .def = "1883",
     .min = 1,
     .max = 65535},
    {.name = "client_id", .kind = K_STR, .off = OFF(vg_mqtt_cfg_t, client_id), .def = ""},
    {.name = "username", .kind = K_STR, .off = OFF(vg_mqtt_cfg_t, username), .def = ""},
    {.name = "password_file",
     .kind = K_PATH,
     .off = OFF(vg_mqtt_cfg_t, password_file),
     .def = "",
     .flags = F_FILE},
    {.name = "tls", .kind = K_OBJ, .off = OFF(vg_mqtt_cfg_t, tls), .def = NULL, .sub = &tls_schema},
    {.name = "keepalive_s",
     .kind = K_INT,
     .off = OFF(vg_mqtt_cfg_t, keepalive_s),
     .def = "30",
     .min = 5,
     .max = 3600},
    {.name = "topic_prefix", .kind = K_STR, .off = OFF(vg_mqtt_cfg_t, topic_prefix), .def = "care"},
    {.name = "qos", .kind = K_INT, .off = OFF(vg_mqtt_cfg_t, qos), .def = "1", .min = 0, .max = 2},
    {.name = "outbox_limit",
     .kind = K_INT,
     .off = OFF(vg_mqtt_cfg_t, outbox_limit),
     .def = "10000",
     .min = 0,
     .max = 10000000},
};
static const schema_t mqtt_schema = {
    .what = "mqtt", .fields = mqtt_fields, .n_fields = VG_ARRAY_LEN(mqtt_fields), .size = 0};

static const field_t http_fields[] = {
    {.name = "listen", .kind = K_STR, .off = OFF(vg_http_cfg_t, listen), .def = "127.0.0.1:8080"},
    {.name = "auth_token_file",
     .kind = K_PATH,
     .off = OFF(vg_http_cfg_t, auth_token_file),
     .def = "",
     .flags = F_FILE},
    {.name = "auth_reads", .kind = K_BOOL, .off = OFF(vg_http_cfg_t, auth_reads), .def = "false"},
    {.name = "web_root", .kind = K_PATH, .off = OFF(vg_http_cfg_t, web_root), .def = "web"},
    {.name = "max_connections",
     .kind = K_INT,
     .off = OFF(vg_http_cfg_t, max_connections),
     .def = "64",
     .min = 1,
     .max = 10000},
};
static const schema_t http_schema = {
    .what = "http", .fields = http_fields, .n_fields = VG_ARRAY_LEN(http_fields), .size = 0};

static const field_t capture_fields[] = {
    {.name = "rtsp_transport",
     .kind = K_ENUM_STR,
     .off = OFF(vg_capture_cfg_defaults_t, rtsp_transport),
     .def = "tcp",
     .names = transports},
    {.name = "stall_timeout_s",
     .kind = K_DBL,
     .off = OFF(vg_capture_cfg_defaults_t, stall_timeout_s),
     .def = "5",
     .min = 0.5,
     .max = 600},
    {.name = "reconnect_initial_s",
     .kind = K_DBL,
     .off = OFF(vg_capture_cfg_defaults_t, reconnect_initial_s),
     .def = "0.5",
     .min = 0.01,
     .max = 600},
    {.name = "reconnect_max_s",
     .kind = K_DBL,
     .off = OFF(vg_capture_cfg_defaults_t, reconnect_max_s),
     .def = "10",
     .min = 0.01,
     .max = 3600},
    {.name = "allow_files",
     .kind = K_BOOL,
     .off = OFF(vg_capture_cfg_defaults_t, allow_files),
     .def = "false"},
    {.name = "still_interval_s",
     .kind = K_DBL,
     .off = OFF(vg_capture_cfg_defaults_t, still_interval_s),
     .def = "2",
     .min = 0,
     .max = 3600},
    {.name = "still_after_s",
     .kind = K_DBL,
     .off = OFF(vg_capture_cfg_defaults_t, still_after_s),
     .def = "3",
     .min = 0.5,
     .max = 3600},
};
static const schema_t capture_schema = {.what = "capture",
                                        .fields = capture_fields,
                                        .n_fields = VG_ARRAY_LEN(capture_fields),
                                        .size = 0};

/* Nested objects whose keys land directly in vg_config_t use offset 0. */
static const field_t log_fields[] = {
    {.name = "level",
     .kind = K_ENUM,
     .off = OFF(vg_config_t, log_level),
     .def = "info",
     .names = log_levels},
};
static const schema_t log_schema = {
    .what = "log", .fields = log_fields, .n_fields = VG_ARRAY_LEN(log_fields), .size = 0};
static const field_t telemetry_fields[] = {
    {.name = "interval_s",
     .kind = K_INT,
     .off = OFF(vg_config_t, telemetry_interval_s),
     .def = "30",
     .min = 1,
     .max = 86400},
};
static const schema_t telemetry_schema = {.what = "telemetry",
                                          .fields = telemetry_fields,
                                          .n_fields = VG_ARRAY_LEN(telemetry_fields),
                                          .size = 0};
static const field_t inference_fields[] = {
    {.name = "threads",
     .kind = K_INT,
     .off = OFF(vg_config_t, inference_threads),
     .def = "0",
     .min = 0,
     .max = 256},
};
static const schema_t inference_schema = {.what = "inference",
                                          .fields = inference_fields,
                                          .n_fields = VG_ARRAY_LEN(inference_fields),
                                          .size = 0};
static const field_t shard_fields[] = {
    {.name = "index",
     .kind = K_INT,
     .off = OFF(vg_config_t, shard_index),
     .def = "0",
     .min = 0,
     .max = 65535,
     .flags = F_ENV},
    {.name = "count",
     .kind = K_INT,
     .off = OFF(vg_config_t, shard_count),
     .def = "1",
     .min = 1,
     .max = 65536},
};
static const schema_t shard_schema = {
    .what = "shard", .fields = shard_fields, .n_fields = VG_ARRAY_LEN(shard_fields), .size = 0};

static const field_t root_fields[] = {
    {.name = "instance_id",
     .kind = K_STR,
     .off = OFF(vg_config_t, instance_id),
     .def = NULL,
     .flags = F_REQUIRED | F_ID | F_ENV},
    {.name = "deployment_mode",
     .kind = K_ENUM,
     .off = OFF(vg_config_t, deployment_mode),
     .def = "multi_stream",
     .names = deploy_modes},
    {.name = "log", .kind = K_OBJ, .off = 0, .def = NULL, .sub = &log_schema},
    {.name = "mqtt",
     .kind = K_OBJ,
     .off = OFF(vg_config_t, mqtt),
     .def = NULL,
     .sub = &mqtt_schema},
    {.name = "http",
     .kind = K_OBJ,
     .off = OFF(vg_config_t, http),
     .def = NULL,
     .sub = &http_schema},
    {.name = "telemetry", .kind = K_OBJ, .off = 0, .def = NULL, .sub = &telemetry_schema},
    {.name = "state_file", .kind = K_PATH, .off = OFF(vg_config_t, state_file), .def = ""},
    {.name = "events_file", .kind = K_PATH, .off = OFF(vg_config_t, events_file), .def = ""},
    {.name = "events_file_max_mb",
     .kind = K_INT,
     .off = OFF(vg_config_t, events_file_max_mb),
     .def = "16",
     .min = 1,
     .max = 4096},
    {.name = "events_file_keep",
     .kind = K_INT,
     .off = OFF(vg_config_t, events_file_keep),
     .def = "3",
     .min = 1,
     .max = 99},
    {.name = "models_dir", .kind = K_PATH, .off = OFF(vg_config_t, models_dir), .def = "models"},
    {.name = "models",
     .kind = K_LIST,
     .off = OFF(vg_config_t, models),
     .def = NULL,
     .sub = &model_schema,
     .count_off = CNT(vg_config_t, n_models)},
    {.name = "inference", .kind = K_OBJ, .off = 0, .def = NULL, .sub = &inference_schema},
    {.name = "stream_url_template",
     .kind = K_STR,
     .off = OFF(vg_config_t, stream_url_template),
     .def = ""},
    {.name = "capture",
     .kind = K_OBJ,
     .off = OFF(vg_config_t, capture),
     .def = NULL,
     .sub = &capture_schema},
    {.name = "streams",
     .kind = K_LIST,
     .off = OFF(vg_config_t, streams),
     .def = NULL,
     .sub = &stream_schema,
     .count_off = CNT(vg_config_t, n_streams)},
    {.name = "shard", .kind = K_OBJ, .off = 0, .def = NULL, .sub = &shard_schema},
};
const schema_t vg_config_root_schema = {.what = "config",
                                        .fields = root_fields,
                                        .n_fields = VG_ARRAY_LEN(root_fields),
                                        .size = sizeof(vg_config_t)};
const schema_t *const vg_config_stream_schema = &stream_schema;
const schema_t *const vg_config_worker_schema = &worker_schema;

/* ---- diagnostics ------------------------------------------------------------ */

static void diag_push(char ***arr, size_t *n, char *msg)
{
    *arr = vg_xrealloc(*arr, (*n + 1) * sizeof(char *));
    (*arr)[(*n)++] = msg;
}

void vg_cfg_report(ctx_t *c, bool warning, vg_mark_t m, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    va_start(ap, fmt);
    VG_CHECK(vasprintf(&text, fmt, ap) >= 0);
    va_end(ap);
    char *msg =
        vg_xasprintf("%s:%d:%d: %s%s", c->name, m.line, m.col, warning ? "warning: " : "", text);
    free(text);
    if (warning)
        diag_push(&c->diag->warnings, &c->diag->n_warnings, msg);
    else
        diag_push(&c->diag->errors, &c->diag->n_errors, msg);
}

void vg_diag_clear(vg_diag_t *d)
{
    for (size_t i = 0; i < d->n_errors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof(*d));
}

static vg_mark_t node_mark(const yaml_node_t *n)
{
    return (vg_mark_t){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* Edit distance, for "did you mean" on unknown keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const schema_t *s, const char *key)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < s->n_fields; i++) {
        size_t d = edit_distance(key, s->fields[i].name);
        if (d < best_d) {
            best_d = d;
            best = s->fields[i].name;
        }
    }
    return best;
}

/* ---- scalar parsing ---------------------------------------------------------- */

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < VG_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) return (*out = true);
        if (strcasecmp(s, no[i]) == 0) return !(*out = false);
    }
    return false;
}

static int enum_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

static char *join_names(const char *const *names)
{
    size_t len = 1;
    for (int i = 0; names[i]; i++)
        len += strlen(names[i]) + 3;
    char *out = vg_xcalloc(1, len);
    for (int i = 0; names[i]; i++) {
        if (i) strcat(out, " | ");
        strcat(out, names[i]);
    }
    return out;
}

char *vg_cfg_resolve_path(const char *dir, const char *p)
{
    if (!p || !*p || p[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0) return vg_xstrdup(p);
    return vg_xasprintf("%s/%s", dir, p);
}

/* Stores scalar text `s` into the field at `base`. Returns false with *why set. */
static bool store_scalar(ctx_t *c, const field_t *f, void *base, const char *s, char **why)
{
    void *dst = (char *)base + f->off;
    double d;
    bool b;
    int idx;
    switch (f->kind) {
    case K_STR:
        if (f->flags & F_ID && *s && !vg_config_valid_id(s)) {
            *why = vg_xstrdup("expected 1 to 64 characters of [A-Za-z0-9_.-]");
            return false;
        }
        free(*(char **)dst);
        *(char **)dst = vg_xstrdup(s);
        return true;
    case K_PATH:
        free(*(char **)dst);
        *(char **)dst = vg_cfg_resolve_path(c->dir, s);
        return true;
    case K_INT:
        if (!parse_double(s, &d) || d != floor(d)) {
            *why = vg_xasprintf("expected an integer, got '%s'", s);
            return false;
        }
        if (d < f->min || d > f->max) {
            *why = vg_xasprintf("expected an integer from %g to %g, got %s", f->min, f->max, s);
            return false;
        }
        *(int *)dst = (int)d;
        return true;
    case K_DBL:
        if (!parse_double(s, &d)) {
            *why = vg_xasprintf("expected a number, got '%s'", s);
            return false;
        }
        if (d < f->min || d > f->max) {
            *why = vg_xasprintf("expected a number from %g to %g, got %s%s%s", f->min, f->max, s,
                                f->hint ? "; " : "", f->hint ? f->hint : "");
            return false;
        }
        *(double *)dst = d;
        return true;
    case K_BOOL:
        if (!parse_bool(s, &b)) {
            *why = vg_xasprintf("expected true or false, got '%s'", s);
            return false;
        }
        *(bool *)dst = b;
        return true;
    case K_ENUM:
    case K_ENUM_STR:
        if ((idx = enum_index(f->names, s)) < 0) {
            char *all = join_names(f->names);
            *why = vg_xasprintf("expected one of %s, got '%s'", all, s);
            free(all);
            return false;
        }
        if (f->kind == K_ENUM) {
            *(int *)dst = idx;
        } else {
            free(*(char **)dst);
            *(char **)dst = vg_xstrdup(s);
        }
        return true;
    default:
        *why = vg_xstrdup("internal: not a scalar field");
        return false;
    }
}

/* ---- defaults and freeing ---------------------------------------------------- */

void vg_cfg_apply_defaults(ctx_t *c, const schema_t *s, void *base)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const field_t *f = &s->fields[i];
        char *why = NULL;
        if (f->kind == K_OBJ && !(f->flags & F_OPTIONAL_OBJ))
            vg_cfg_apply_defaults(c, f->sub, (char *)base + f->off);
        else if (f->def && !store_scalar(c, f, base, f->def, &why))
            VG_CHECK(!"bad default in schema");
        free(why);
    }
}

void vg_cfg_free_fields(const schema_t *s, void *base)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const field_t *f = &s->fields[i];
        void *dst = (char *)base + f->off;
        if (f->kind == K_STR || f->kind == K_PATH || f->kind == K_ENUM_STR || f->kind == K_JSON) {
            free(*(char **)dst);
            *(char **)dst = NULL;
        } else if (f->kind == K_OBJ) {
            vg_cfg_free_fields(f->sub, dst);
        } else if (f->kind == K_LIST) {
            char *arr = *(char **)dst;
            size_t *n = (size_t *)((char *)base + f->count_off);
            for (size_t j = 0; arr && j < *n; j++)
                vg_cfg_free_fields(f->sub, arr + j * f->sub->size);
            free(arr);
            *(char **)dst = NULL;
            *n = 0;
        }
    }
}

/* ---- the walker -------------------------------------------------------------- */

static void walk_mapping(ctx_t *c, const schema_t *s, void *base, yaml_node_t *map,
                         const char *path);

static void walk_field(ctx_t *c, const field_t *f, void *base, yaml_node_t *v, const char *key)
{
    if (f->flags & F_MARK) *(vg_mark_t *)((char *)base + f->mark_off) = node_mark(v);
    if (f->kind == K_OBJ) {
        if (v->type != YAML_MAPPING_NODE) {
            vg_cfg_report(c, false, node_mark(v), "key '%s': expected a mapping, got %s", key,
                          node_kind(v));
            return;
        }
        walk_mapping(c, f->sub, (char *)base + f->off, v, key);
        return;
    }
    if (f->kind == K_JSON) {
        vg_cfg_walk_json(c, f, base, v, key);
        return;
    }
    if (f->kind == K_LIST) {
        if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
            return; /* "streams:" with nothing after it: an empty list */
        if (v->type != YAML_SEQUENCE_NODE) {
            vg_cfg_report(c, false, node_mark(v), "key '%s': expected a list, got %s", key,
                          node_kind(v));
            return;
        }
        yaml_node_item_t *it = v->data.sequence.items.start;
        size_t n = (size_t)(v->data.sequence.items.top - it);
        char *arr = vg_xcalloc(n ? n : 1, f->sub->size);
        *(char **)((char *)base + f->off) = arr;
        *(size_t *)((char *)base + f->count_off) = n;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, it[i]);
            char *elem = arr + i * f->sub->size;
            char sub[300];
            snprintf(sub, sizeof(sub), "%.250s[%zu]", key, i);
            vg_cfg_apply_defaults(c, f->sub, elem);
            if (f->sub->has_mark) *(vg_mark_t *)(elem + f->sub->mark_off) = node_mark(item);
            if (item->type != YAML_MAPPING_NODE)
                vg_cfg_report(c, false, node_mark(item), "key '%s': expected a mapping, got %s",
                              sub, node_kind(item));
            else
                walk_mapping(c, f->sub, elem, item, sub);
        }
        return;
    }
    if (v->type != YAML_SCALAR_NODE) {
        vg_cfg_report(c, false, node_mark(v), "key '%s': expected a value, got %s", key,
                      node_kind(v));
        return;
    }
    const char *text = (const char *)v->data.scalar.value;
    if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (strcmp(text, "null") == 0 || strcmp(text, "~") == 0))
        text = ""; /* YAML (and JSON) null: an empty value, judged like one */
    char *expanded = NULL;
    if ((f->flags & F_ENV) && text[0] == '$') {
        const char *name = text[1] == '{' ? text + 2 : text + 1;
        size_t len = strcspn(name, "}");
        char var[128];
        snprintf(var, sizeof(var), "%.*s", (int)(len < 127 ? len : 127), name);
        const char *val = getenv(var);
        if (!val) {
            vg_cfg_report(c, false, node_mark(v), "key '%s': environment variable %s is not set",
                          key, var);
            return;
        }
        text = expanded = vg_xstrdup(val);
    }
    char *why = NULL;
    if (!store_scalar(c, f, base, text, &why))
        vg_cfg_report(c, false, node_mark(v), "key '%s': %s", key, why);
    else if ((f->flags & F_FILE) && **(char **)((char *)base + f->off) &&
             access(*(char **)((char *)base + f->off), R_OK) != 0)
        vg_cfg_report(c, false, node_mark(v), "key '%s': cannot read file '%s': %s", key,
                      *(char **)((char *)base + f->off), strerror(errno));
    free(why);
    free(expanded);
}

static void walk_mapping(ctx_t *c, const schema_t *s, void *base, yaml_node_t *map,
                         const char *path)
{
    bool seen[64] = {false};
    VG_CHECK(s->n_fields <= VG_ARRAY_LEN(seen));
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            vg_cfg_report(c, false, node_mark(k), "in '%s': keys must be plain names", path);
            continue;
        }
        const char *name = (const char *)k->data.scalar.value;
        char key[256];
        snprintf(key, sizeof(key), "%s%s%s", *path ? path : "", *path ? "." : "", name);
        size_t i = 0;
        while (i < s->n_fields && strcmp(s->fields[i].name, name) != 0)
            i++;
        if (i == s->n_fields) {
            const char *hint = suggest(s, name);
            vg_cfg_report(c, false, node_mark(k), "unknown key '%s'%s%s%s", key,
                          hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
            continue;
        }
        if (seen[i]) {
            vg_cfg_report(c, false, node_mark(k), "key '%s' appears twice", key);
            continue;
        }
        seen[i] = true;
        c->keys = vg_xrealloc(c->keys, (c->n_keys + 1) * sizeof(*c->keys));
        c->marks = vg_xrealloc(c->marks, (c->n_keys + 1) * sizeof(*c->marks));
        c->keys[c->n_keys] = vg_xstrdup(key);
        c->marks[c->n_keys++] = node_mark(v);
        walk_field(c, &s->fields[i], base, v, key);
    }
    for (size_t i = 0; i < s->n_fields; i++)
        if ((s->fields[i].flags & F_REQUIRED) && !seen[i])
            vg_cfg_report(c, false, node_mark(map), "missing required key '%s%s%s'", path,
                          *path ? "." : "", s->fields[i].name);
}

/* ---- entry points ------------------------------------------------------------ */

vg_mark_t vg_cfg_mark(const ctx_t *c, const char *key)
{
    for (size_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i], key) == 0) return c->marks[i];
    return (vg_mark_t){0, 0};
}

void vg_cfg_ctx_free(ctx_t *c)
{
    for (size_t i = 0; i < c->n_keys; i++)
        free(c->keys[i]);
    free(c->keys);
    free(c->marks);
}

void vg_cfg_walk(ctx_t *c, const schema_t *s, void *base, yaml_node_t *map, const char *path)
{
    walk_mapping(c, s, base, map, path);
}

int vg_config_parse(const char *text, size_t len, const char *name, const char *dir,
                    vg_config_t **out, vg_diag_t *diag)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    vg_config_t *cfg = vg_xcalloc(1, sizeof(*cfg));
    ctx_t c = {.name = name, .dir = dir, .doc = &doc, .diag = diag};
    int rc = VG_EINVAL;
    *out = NULL;
    cfg->path = vg_xstrdup(name);
    cfg->dir = vg_xstrdup(dir && *dir ? dir : ".");
    vg_cfg_apply_defaults(&c, &vg_config_root_schema, cfg);

    VG_CHECK(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        vg_mark_t m = {(int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1};
        vg_cfg_report(&c, false, m, "YAML syntax error: %s%s%s",
                      parser.problem ? parser.problem : "unknown", parser.context ? " " : "",
                      parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        goto fail;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        vg_cfg_report(&c, false, root ? node_mark(root) : (vg_mark_t){1, 1},
                      "expected a mapping of configuration keys at the top level");
    } else {
        walk_mapping(&c, &vg_config_root_schema, cfg, root, "");
        vg_cfg_check(&c, cfg);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    vg_cfg_ctx_free(&c);
    if (diag->n_errors == 0) {
        *out = cfg;
        return VG_OK;
    }
fail:
    vg_config_free(cfg);
    return rc;
}

int vg_config_load(const char *path, vg_config_t **out, vg_diag_t *diag)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char *msg =
            vg_xasprintf("%s:0:0: cannot open configuration file: %s", path, strerror(errno));
        diag_push(&diag->errors, &diag->n_errors, msg);
        return VG_EIO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) buf = vg_xrealloc(buf, cap = cap * 2 + 8192);
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0 || len > 16 * 1024 * 1024) break;
    }
    fclose(f);
    char *dir = vg_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    else
        strcpy(dir, ".");
    int rc = vg_config_parse(buf, len, path, dir, out, diag);
    free(dir);
    free(buf);
    return rc;
}

void vg_config_free(vg_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n_streams; i++) {
        vg_stream_cfg_t *st = &cfg->streams[i];
        free(st->url);
        st->url = NULL;
        for (size_t j = 0; j < st->n_workers; j++)
            free(st->workers[j].unavailable_reason);
    }
    vg_cfg_free_fields(&vg_config_root_schema, cfg);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}
