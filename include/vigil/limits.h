/* limits.h — every hard limit of vigild in one place. Fixed-size tables elsewhere are
 * sized from these constants, and the validators that admit outside input (the config
 * file, add_stream and the other commands over MQTT and REST, the state file) check
 * them with an error naming the field, so nothing is ever dropped silently because a
 * table was full. Header only; no module owns state here. */
#ifndef VIGIL_LIMITS_H
#define VIGIL_LIMITS_H

#define VG_STR_(x) #x
#define VG_STR(x) VG_STR_(x) /* a limit as a string literal, for messages */

/* Distinct capture views of one stream (a view: source region + output size; workers
 * with the same model input and roi share one). Sizes the frame's view table. */
#define VG_LIMIT_VIEWS_PER_STREAM 4
/* Workers of one stream (executor per-worker state, telemetry counters). */
#define VG_LIMIT_WORKERS_PER_STREAM 8
/* Privacy masks of one stream. */
#define VG_LIMIT_MASKS_PER_STREAM 64
/* Models one executor keeps loaded at a time (its cv::dnn::Net cache). */
#define VG_LIMIT_MODELS_PER_EXECUTOR 16
/* Streams with a command in progress (a model load) at one time. */
#define VG_LIMIT_BUSY_STREAMS 256
/* Command_ids remembered so a repeated command is answered, not re-applied. */
#define VG_LIMIT_SEEN_COMMANDS 1024
/* A REST request body, and a command payload (MQTT or REST). */
#define VG_LIMIT_HTTP_BODY_BYTES (64 * 1024)
#define VG_LIMIT_COMMAND_BYTES (64 * 1024)
/* A static file of the web UI. */
#define VG_LIMIT_STATIC_FILE_BYTES (4 * 1024 * 1024)

#endif
