/* control.h — the one code path for commands, shared by MQTT and REST: parse,
 * validate against the command table, acknowledge ("received", then exactly one of
 * "completed", "rejected", "failed"), apply through the stream registry, roll back on
 * failure, remember the last 1024 command_ids so a repeat is answered, not re-applied,
 * and write one audit log line per command. Loop thread only. */
#ifndef VIGIL_CONTROL_H
#define VIGIL_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#include "vigil/config.h"
#include "vigil/infer.h"
#include "vigil/loopq.h"
#include "vigil/limits.h"
#include "vigil/stream.h"

#define VG_COMMAND_MAX_BYTES VG_LIMIT_COMMAND_BYTES

typedef struct vg_control vg_control_t;

/* Where a command came from, for the audit log and the stream id of stream topics. */
typedef struct {
    const char *source;    /* "mqtt" | "rest" | "event" */
    const char *who;       /* MQTT client id and topic, or the REST remote address */
    const char *stream_id; /* from the topic or URL; NULL on the instance topic */
} vg_origin_t;

/* Receives each acknowledgement (borrowed JSON: {command_id, command, stream_id,
 * status, error, timestamp}); `final` is false only for "received". Loop thread. */
typedef void (*vg_ack_fn)(void *arg, const json_t *ack, bool final);

typedef struct {
    const vg_config_t *cfg; /* borrowed; vg_control_set_config after a reload */
    vg_streams_t *streams;
    vg_infer_t *pool;
    vg_loopq_t *q;
    /* instance status: "reconfiguring", "running" */
    void (*on_status)(void *arg, const char *status);
    /* a stream was added, removed or changed: persist, republish status */
    void (*on_changed)(void *arg, const char *stream_id, bool removed);
    /* ack_event: 0, or VG_ENOTFOUND when no open event has that id */
    int (*ack_event)(void *arg, const char *event_id, const char *by);
    /* whether this instance's shard runs the stream (add_stream); NULL: every stream */
    bool (*owns)(void *arg, const char *stream_id);
    void *arg;
} vg_control_opts_t;

vg_control_t *vg_control_new(const vg_control_opts_t *o);
void vg_control_free(vg_control_t *c);
void vg_control_set_config(vg_control_t *c, const vg_config_t *cfg);

/* Handles a raw payload (MQTT): everything is validated, never trusted. */
void vg_control_submit(vg_control_t *c, const char *payload, size_t len, const vg_origin_t *o,
                       vg_ack_fn fn, void *arg);
/* Handles a parsed command object (REST; borrowed). */
void vg_control_submit_json(vg_control_t *c, json_t *cmd, const vg_origin_t *o, vg_ack_fn fn,
                            void *arg);

/* Builds a stream configuration from a JSON object with the same rules as the YAML
 * file (add_stream, the state file). On error returns NULL and sets *field and *msg
 * (caller frees both). */
vg_stream_cfg_t *vg_control_stream_from_json(const vg_config_t *cfg, const json_t *obj,
                                             char **field, char **msg);
/* The JSON form of a stream configuration (for the state file and REST). */
json_t *vg_control_stream_to_json(const vg_stream_cfg_t *sc);

#endif
