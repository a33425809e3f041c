/* camera.h — the simulated cameras: one shared RTSP mount per camera, fed from an
 * in-memory clip, plus the faults the control interface can inject.
 * The set and its cameras are created on the main thread and used only from the
 * GLib main loop thread (RTSP server, control socket). Media streaming threads read a
 * camera's state through an atomic. The set owns its cameras; clips
 * are refcounted and shared. */
#ifndef VIGIL_CAMSIM_CAMERA_H
#define VIGIL_CAMSIM_CAMERA_H

#include "clip.h"

#include <gst/rtsp-server/rtsp-server.h>
#include <stddef.h>

typedef enum { VG_CAM_LIVE = 0, VG_CAM_FROZEN, VG_CAM_OUTAGE } vg_cam_state_t;

typedef enum {
    VG_CAM_FAULT_FREEZE,     /* sessions stay, packets stop */
    VG_CAM_FAULT_RESUME,     /* back to live; streaming restarts at the next keyframe */
    VG_CAM_FAULT_DISCONNECT, /* close current sessions, state unchanged */
    VG_CAM_FAULT_OUTAGE,     /* close sessions and answer 503 until resumed */
} vg_cam_fault_t;

typedef struct vg_camset vg_camset_t;

/* `server` is borrowed (the set takes its own reference). */
vg_camset_t *vg_camset_new(GstRTSPServer *server);
void vg_camset_free(vg_camset_t *set);

/* Mounts camera `name` at /name, streaming `clip` (the camera takes its own reference)
 * from its first keyframe at or after `phase` (0..1) of the loop. Returns VG_EINVAL for
 * a bad name, VG_EEXIST for a duplicate. */
int vg_camset_add(vg_camset_t *set, const char *name, vg_clip_t *clip, double phase);

size_t vg_camset_len(const vg_camset_t *set);
/* Index of the camera called `name`, or VG_ENOTFOUND. */
int vg_camset_find(const vg_camset_t *set, const char *name);
const char *vg_camset_name(const vg_camset_t *set, size_t i);
vg_cam_state_t vg_camset_state(const vg_camset_t *set, size_t i);
const char *vg_cam_state_name(vg_cam_state_t state);
/* Number of RTSP sessions currently attached to camera i. */
int vg_camset_clients(const vg_camset_t *set, size_t i);

/* Applies `fault` to camera i. Returns the number of RTSP connections closed (>= 0). */
int vg_camset_fault(vg_camset_t *set, size_t i, vg_cam_fault_t fault);

#endif
