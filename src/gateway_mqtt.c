/* gateway_mqtt.c — the gateway's MQTT face: the last will and retained instance status,
 * retained per-stream status, inference results, the control topics (commands in,
 * acks out) and periodic telemetry. The client itself (mqtt.c) owns connection,
 * backoff and the outbox. Loop thread only. */
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/mqtt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STOP_TIMEOUT_S 2.0

static void publish_json(vg_gateway_t *gw, const char *topic, json_t *j, bool retain,
                         vg_mqtt_class_t cls, int qos)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(j);
    vg_mqtt_publish(gw->mqtt, topic, text, strlen(text), qos, retain, cls);
    free(text);
}

static json_t *now_json(void)
{
    char ts[32];
    vg_format_time(vg_now_wall(), ts, sizeof(ts));
    return json_string(ts);
}

/* ---- status ---------------------------------------------------------------------------------- */

/* "running" becomes "degraded" while any stream is not running. */
static const char *effective_status(vg_gateway_t *gw)
{
    if (strcmp(gw->status, "running") != 0) return gw->status;
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++)
        if (strcmp(vg_stream_state(vg_streams_at(gw->streams, i)), "running") != 0)
            return "degraded";
    return "running";
}

static void publish_status_as(vg_gateway_t *gw, const char *status)
{
    if (!gw->mqtt) return;
    free(gw->published_status);
    gw->published_status = vg_xstrdup(status);
    char *topic = vg_xasprintf("%s/status/%s", gw->cfg->mqtt.topic_prefix, gw->cfg->instance_id);
    publish_json(gw, topic,
                 json_pack("{s:s, s:s, s:o, s:s, s:i, s:s}", "instance_id", gw->cfg->instance_id,
                           "status", status, "timestamp", now_json(), "client_id",
                           gw->cfg->mqtt.client_id, "streams", (int)vg_streams_count(gw->streams),
                           "version", VG_VERSION),
                 true, VG_MQTT_CONTROL, 1);
    free(topic);
}

void vg_gw_publish_status(vg_gateway_t *gw)
{
    const char *st = effective_status(gw);
    if (!gw->published_status || strcmp(gw->published_status, st) != 0) publish_status_as(gw, st);
}

void vg_gw_publish_stream_status(vg_gateway_t *gw, vg_stream_t *s, const char *removed_id)
{
    if (!gw->mqtt) return;
    const char *id = s ? vg_stream_id(s) : removed_id;
    char *topic =
        vg_xasprintf("%s/status/%s/%s", gw->cfg->mqtt.topic_prefix, gw->cfg->instance_id, id);
    if (!s) { /* removed: clear the retained message */
        vg_mqtt_publish(gw->mqtt, topic, "", 0, 1, true, VG_MQTT_CONTROL);
    } else {
        const vg_stream_cfg_t *sc = vg_stream_cfg(s);
        const char *model = NULL;
        for (size_t i = 0; i < sc->n_workers && !model; i++)
            model = sc->workers[i].model_id;
        const char *err = vg_stream_error(s);
        publish_json(gw, topic,
                     json_pack("{s:s, s:s, s:f, s:f, s:s?, s:s?, s:o}", "stream_id", id, "state",
                               vg_stream_state(s), "fps_target", sc->fps, "fps_measured",
                               vg_stream_fps_measured(s), "model_id", model, "last_error",
                               *err ? err : NULL, "timestamp", now_json()),
                     true, VG_MQTT_CONTROL, 1);
    }
    free(topic);
    vg_gw_publish_status(gw); /* degraded <-> running follows the streams */
}

void vg_gw_publish_inference(vg_gateway_t *gw, const char *stream_id, const char *payload)
{
    if (!gw->mqtt) return;
    char *topic = vg_xasprintf("%s/inferences/%s", gw->cfg->mqtt.topic_prefix, stream_id);
    vg_mqtt_publish(gw->mqtt, topic, payload, strlen(payload), gw->cfg->mqtt.qos, false,
                    VG_MQTT_INFERENCE);
    free(topic);
}

/* ---- control -----------------------------------------------------------------------------------
 */

void vg_gw_on_ack(void *arg, const json_t *ack, bool final)
{
    (void) final;
    vg_gateway_t *gw = arg;
    if (!gw->mqtt) return;
    char *topic =
        vg_xasprintf("%s/control/%s/ack", gw->cfg->mqtt.topic_prefix, gw->cfg->instance_id);
    publish_json(gw, topic, json_deep_copy(ack), false, VG_MQTT_CONTROL, 1);
    free(topic);
}

static void on_message(void *arg, const char *topic, const void *payload, size_t len)
{
    vg_gateway_t *gw = arg;
    char *base = vg_xasprintf("%s/control/%s", gw->cfg->mqtt.topic_prefix, gw->cfg->instance_id);
    size_t bl = strlen(base);
    const char *stream_id = NULL;
    if (strncmp(topic, base, bl) != 0 || (topic[bl] && topic[bl] != '/')) {
        VG_WARN("mqtt", "unknown_topic", "{s:s}", "topic", topic);
        free(base);
        return;
    }
    if (topic[bl] == '/') {
        stream_id = topic + bl + 1;
        if (strcmp(stream_id, "ack") == 0) { /* our own acknowledgements */
            free(base);
            return;
        }
    }
    free(base);
    vg_origin_t o = {.source = "mqtt", .who = topic, .stream_id = stream_id};
    vg_control_submit(gw->control, payload, len, &o, vg_gw_on_ack, gw);
}

static void on_connect(void *arg)
{
    vg_gateway_t *gw = arg;
    publish_status_as(gw, effective_status(gw)); /* every connect: "running" again */
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++)
        vg_gw_publish_stream_status(gw, vg_streams_at(gw->streams, i), NULL);
}

static void on_stopped(void *arg)
{
    vg_gateway_t *gw = arg;
    if (gw->mqtt_drained) gw->mqtt_drained(gw->mqtt_drained_arg);
    gw->mqtt_drained = NULL;
}

/* ---- telemetry
 * ------------------------------------------------------------------------------------ */

static double mem_total_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : 0;
}

static json_t *stream_telemetry(vg_stream_t *s, double interval_s)
{
    const vg_stream_cfg_t *sc = vg_stream_cfg(s);
    json_t *workers = json_array();
    for (size_t i = 0; i < sc->n_workers; i++) {
        vg_worker_stats_t w;
        vg_stream_take_worker_stats(s, i, &w);
        double seen = (double)(w.results + w.dropped);
        json_array_append_new(
            workers,
            json_pack("{s:s, s:f, s:f, s:f, s:I, s:I}", "worker_id", sc->workers[i].worker_id,
                      "avg_inference_ms", w.runs ? w.inference_ms / (double)w.runs : 0.0,
                      "cpu_percent", interval_s > 0 ? w.inference_ms / 10.0 / interval_s : 0.0,
                      "drop_rate_percent", seen > 0 ? 100.0 * (double)w.dropped / seen : 0.0,
                      "results", (json_int_t)w.results, "runs", (json_int_t)w.runs));
    }
    vg_capture_stats_t cs;
    vg_stream_capture_stats(s, &cs);
    json_t *capture = json_pack("{s:b, s:I, s:I, s:I, s:i, s:f, s:f, s:f}", "still", cs.still,
                                "frames_decoded", (json_int_t)cs.frames_decoded, "frames_repeated",
                                (json_int_t)cs.frames_repeated, "wakeups", (json_int_t)cs.wakeups,
                                "change_delays", cs.change_delays, "change_delay_p50_ms",
                                round(cs.change_delay_p50_s * 1e4) / 10, "change_delay_p95_ms",
                                round(cs.change_delay_p95_s * 1e4) / 10, "cpu_seconds", cs.cpu_s);
    return json_pack("{s:s, s:s, s:f, s:f, s:o, s:o}", "stream_id", vg_stream_id(s), "state",
                     vg_stream_state(s), "fps_actual", vg_stream_fps_measured(s), "fps_target",
                     sc->fps, "workers", workers, "capture", capture);
}

static void on_telemetry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_gateway_t *gw = arg;
    vg_proc_sample_t ps;
    if (vg_proc_sample(&ps) != 0) memset(&ps, 0, sizeof(ps));
    double now = vg_now_mono();
    double dt = now - gw->tele_wall;
    double cpu = dt > 0 && gw->tele_wall > 0 ? 100.0 * (ps.cpu_seconds - gw->tele_cpu) / dt : 0;
    gw->tele_wall = now;
    gw->tele_cpu = ps.cpu_seconds;
    json_t *streams = json_array();
    for (size_t i = 0; i < vg_streams_count(gw->streams); i++)
        json_array_append_new(streams, stream_telemetry(vg_streams_at(gw->streams, i), dt));
    double total = mem_total_bytes();
    char *topic = vg_xasprintf("%s/telemetry/%s", gw->cfg->mqtt.topic_prefix, gw->cfg->instance_id);
    publish_json(gw, topic,
                 json_pack("{s:s, s:o, s:{s:f, s:f, s:f, s:i}, s:o, s:o}", "instance_id",
                           gw->cfg->instance_id, "timestamp", now_json(), "system", "cpu_percent",
                           cpu, "memory_mb", ps.resident_bytes / 1048576.0, "memory_percent",
                           total > 0 ? 100.0 * ps.resident_bytes / total : 0.0, "threads",
                           ps.threads, "streams", streams, "capacity", vg_capacity_json(gw)),
                 false, VG_MQTT_INFERENCE, gw->cfg->mqtt.qos);
    free(topic);
}

/* ---- lifecycle
 * ---------------------------------------------------------------------------------------- */

int vg_gw_mqtt_start(vg_gateway_t *gw)
{
    const vg_config_t *cfg = gw->cfg;
    if (!cfg->mqtt.enabled) return VG_OK;
    char *will_topic = vg_xasprintf("%s/status/%s", cfg->mqtt.topic_prefix, cfg->instance_id);
    char *will =
        vg_xasprintf("{\"instance_id\":\"%s\",\"status\":\"offline\",\"client_id\":\"%s\"}",
                     cfg->instance_id, cfg->mqtt.client_id);
    vg_mqtt_hooks_t hooks = {.on_connect = on_connect,
                             .on_message = on_message,
                             .on_stopped = on_stopped,
                             .will_topic = will_topic,
                             .will_payload = will,
                             .arg = gw};
    int rc = vg_mqtt_new(gw->base, &cfg->mqtt, &hooks, (vg_mqtt_t **)&gw->mqtt);
    free(will_topic);
    free(will);
    if (rc != 0) return rc;
    vg_mqtt_set_instance(gw->mqtt, cfg->mqtt.topic_prefix, cfg->instance_id); /* care events */
    char *sub = vg_xasprintf("%s/control/%s", cfg->mqtt.topic_prefix, cfg->instance_id);
    vg_mqtt_subscribe(gw->mqtt, sub, 1);
    free(sub);
    sub = vg_xasprintf("%s/control/%s/+", cfg->mqtt.topic_prefix, cfg->instance_id);
    vg_mqtt_subscribe(gw->mqtt, sub, 1);
    free(sub);
    gw->telemetry_timer = event_new(gw->base, -1, EV_PERSIST, on_telemetry, gw);
    struct timeval tv = {cfg->telemetry_interval_s, 0};
    event_add(gw->telemetry_timer, &tv);
    gw->tele_wall = vg_now_mono();
    vg_proc_sample_t ps;
    gw->tele_cpu = vg_proc_sample(&ps) == 0 ? ps.cpu_seconds : 0;
    return VG_OK;
}

void vg_gw_mqtt_drain(vg_gateway_t *gw, void (*done)(void *arg), void *arg)
{
    if (!gw->mqtt) {
        done(arg);
        return;
    }
    if (gw->telemetry_timer) event_del(gw->telemetry_timer);
    publish_status_as(gw, "stopped");
    gw->mqtt_drained = done;
    gw->mqtt_drained_arg = arg;
    vg_mqtt_stop(gw->mqtt, STOP_TIMEOUT_S);
}

void vg_gw_mqtt_set_telemetry_interval(vg_gateway_t *gw)
{
    if (!gw->telemetry_timer || gw->phase == GW_DRAINING) return;
    struct timeval tv = {gw->cfg->telemetry_interval_s, 0};
    event_add(gw->telemetry_timer, &tv); /* re-adding a pending timer reschedules it */
}

void vg_gw_mqtt_free(vg_gateway_t *gw)
{
    if (gw->telemetry_timer) event_free(gw->telemetry_timer);
    gw->telemetry_timer = NULL;
    vg_mqtt_free(gw->mqtt);
    gw->mqtt = NULL;
    free(gw->published_status);
    gw->published_status = NULL;
}
