/* gateway_internal.h — the gateway's state, shared by gateway.c (start, stop,
 * signals), gateway_reload.c (SIGHUP), gateway_streams.c (streams, results, state file, sharding)
 * and rest.c (the REST API). Loop thread only. */
#ifndef VIGIL_GATEWAY_INTERNAL_H
#define VIGIL_GATEWAY_INTERNAL_H

#include "vigil/control.h"
#include "vigil/detector.h"
#include "vigil/events.h"
#include "vigil/gateway.h"
#include "vigil/http.h"
#include "vigil/infer.h"
#include "vigil/jobs.h"
#include "vigil/loopq.h"
#include "vigil/metrics.h"
#include "vigil/statefile.h"
#include "vigil/stream.h"

typedef enum { GW_STARTING = 0, GW_READY, GW_DRAINING } gw_phase_t;

struct vg_gateway {
    struct event_base *base;
    vg_config_t *cfg;
    char *log_level_override;
    vg_http_t *http;
    vg_loopq_t *q;
    vg_jobs_t *jobs; /* model loads, snapshots, state writes, reaps */
    vg_infer_t *pool;
    vg_streams_t *streams;
    vg_control_t *control;
    vg_statefile_t *statefile; /* NULL without a state_file */
    struct vg_mqtt *mqtt;      /* vg_mqtt_t */
    struct vg_rest *rest;
    struct vg_capacity *capacity; /* rest_capacity.c */
    struct vg_gw_events *events;  /* gateway_events.c */
    struct vg_gw_hold *holds;     /* gateway_escalate.c: escalations in force */
    struct event *sig_int, *sig_term, *sig_hup, *drain_timer, *telemetry_timer, *watchdog_timer;
    void (*mqtt_drained)(void *arg);
    void *mqtt_drained_arg;
    double tele_wall, tele_cpu;
    gw_phase_t phase;
    double started_at, started_mono; /* wall: the timestamp; monotonic: uptime */
    char *status;           /* instance status: running, reconfiguring, degraded, error, stopped */
    char *published_status; /* last one sent on MQTT */
    vg_series_t *reloads_ok, *reloads_failed;
};

/* gateway_streams.c */
int vg_gw_streams_start(vg_gateway_t *gw);
/* held: {stream_id: model_id} of file streams left as they run (or not started). */
void vg_gw_streams_reload(vg_gateway_t *gw, const vg_config_t *next, const json_t *held);
void vg_gw_save_state(vg_gateway_t *gw);
bool vg_gw_in_shard(const vg_config_t *cfg, const char *stream_id);
bool vg_gw_owns_stream(void *gw, const char *stream_id); /* vg_control_opts_t.owns */
void vg_gw_on_result(void *arg, vg_stream_t *s, const vg_infer_result_t *r);
void vg_gw_on_state(void *arg, vg_stream_t *s);
void vg_gw_on_status(void *arg, const char *status);
void vg_gw_on_changed(void *arg, const char *stream_id, bool removed);

/* gateway_mqtt.c: MQTT wiring (status, control topics, publishing) */
int vg_gw_mqtt_start(vg_gateway_t *gw);
/* Publishes "stopped", hands over what is queued, disconnects; then done(arg). */
void vg_gw_mqtt_drain(vg_gateway_t *gw, void (*done)(void *arg), void *arg);
void vg_gw_mqtt_free(vg_gateway_t *gw);
/* Re-arms the telemetry timer at gw->cfg->telemetry_interval_s (after a reload). */
void vg_gw_mqtt_set_telemetry_interval(vg_gateway_t *gw);
void vg_gw_publish_inference(vg_gateway_t *gw, const char *stream_id, const char *payload);
/* Retained stream status; s NULL and removed_id set clears the retained message. */
void vg_gw_publish_stream_status(vg_gateway_t *gw, vg_stream_t *s, const char *removed_id);
void vg_gw_publish_status(vg_gateway_t *gw);
/* A command's acknowledgement on {p}/control/{instance_id}/ack (a vg_ack_fn; arg: gw). */
void vg_gw_on_ack(void *arg, const json_t *ack, bool final);

/* gateway_escalate.c: on_event escalation through the command path (source "event") */
void vg_gw_escalate(vg_gateway_t *gw, const vg_event_t *e); /* an event started */
void vg_gw_escalate_free(vg_gateway_t *gw);

/* gateway_reload.c: SIGHUP */
void vg_gw_reload(vg_gateway_t *gw);

/* gateway_events.c: the care-event engine on the loop */
int vg_gw_events_start(vg_gateway_t *gw); /* after the streams started */
void vg_gw_events_stop(vg_gateway_t *gw); /* stops the timer (shutdown) */
void vg_gw_events_free(vg_gateway_t *gw); /* after the jobs stopped */
/* Streams added, changed or removed: settings, zones and rooms to the engine. */
void vg_gw_events_sync(vg_gateway_t *gw);
/* One sample of a stream (the tracker's output), in order; publishes what it causes. */
void vg_gw_events_observe(vg_gateway_t *gw, const char *stream_id, const vg_obs_t *obs);
/* 0 or VG_ENOTFOUND (no open event with that id). */
int vg_gw_events_ack(vg_gateway_t *gw, const char *event_id, const char *by);
const vg_events_t *vg_gw_events_engine(vg_gateway_t *gw); /* NULL before start */
/* The JPEG taken at the event's start (borrowed until the next loop turn); VG_ENOTFOUND. */
int vg_gw_events_snapshot(vg_gateway_t *gw, const char *event_id, const uint8_t **jpeg,
                          size_t *len);

/* rest.c: snapshots, shared with event snapshots. A snapshot holds a frame reference and
 * copies of what it draws; vg_gw_snapshot_encode runs on "jobs:snapshot". */
#define VG_GW_SNAP_BOXES 64
typedef struct {
    vg_frame_t *frame; /* a reference */
    int width;
    vg_detection_t boxes[VG_GW_SNAP_BOXES];
    size_t n_boxes;
    vg_mask_t *masks; /* the stream's privacy masks */
    size_t n_masks;
    int privacy;      /* vg_privacy_mode_t */
    vg_zones_t zones; /* drawn in privacy mode skeleton */
    uint8_t *jpeg;
    size_t len;
    char error[128]; /* "superseded" when the frame was replaced meanwhile */
} vg_gw_snap_t;
/* Takes the frame reference `f`; copies the stream's masks, privacy mode and (boxes, or
 * always in privacy mode skeleton) the latest detections. */
void vg_gw_snap_init(vg_gw_snap_t *sn, vg_stream_t *s, vg_frame_t *f, int width, bool boxes);
int vg_gw_snapshot_encode(vg_gw_snap_t *sn);
void vg_gw_snap_clear(vg_gw_snap_t *sn);

/* rest_events.c: the events routes */
void vg_rest_events_register(vg_gateway_t *gw);

/* rest.c */
void vg_rest_register(vg_gateway_t *gw);
/* Runs a command (borrowed) through the control module and replies with its final ack. */
void vg_rest_run_command(vg_gateway_t *gw, vg_http_req_t *r, json_t *cmd, const char *stream_id,
                         int ok_status);
void vg_rest_free(vg_gateway_t *gw); /* after jobs stopped and the queue drained */

/* rest_capacity.c: GET /api/v1/capacity and its sampling timer */
void vg_capacity_register(vg_gateway_t *gw);
void vg_capacity_stop(vg_gateway_t *gw);
json_t *vg_capacity_json(vg_gateway_t *gw); /* caller owns; null before register */

#endif
