/* control.h — the camsim control interface: a line protocol on a loopback TCP port.
 * Runs on the GLib main loop thread (GIO socket service); every command is applied
 * there, next to the RTSP server. The control object borrows the camera set, which
 * must outlive it.
 *
 *   freeze NAME|*      sessions stay open, no more packets       -> ok ...
 *   resume NAME|*      undo freeze/outage                        -> ok ...
 *   disconnect NAME|*  close current sessions, new ones allowed  -> ok ...
 *   outage NAME|*      close sessions, refuse new ones (503)     -> ok ...
 *   status [NAME|*]    "ok cameras=N", then N lines "NAME STATE CLIENTS"
 * Anything else answers one line "error <reason>". */
#ifndef VIGIL_CAMSIM_CONTROL_H
#define VIGIL_CAMSIM_CONTROL_H

#include "camera.h"

typedef struct vg_ctl vg_ctl_t;

/* Listens on addr:port (port 0 picks one; see vg_ctl_port). Returns VG_EIO if the
 * port cannot be bound. *out: caller frees with vg_ctl_free. */
int vg_ctl_start(vg_camset_t *set, const char *addr, int port, vg_ctl_t **out);
int vg_ctl_port(const vg_ctl_t *ctl);
/* Closes the listener and every connection. Call from the main loop thread. */
void vg_ctl_free(vg_ctl_t *ctl);

/* Executes one command line (without newline) and returns the whole answer, each line
 * ending in '\n'. Caller frees with g_free. */
char *vg_ctl_execute(vg_camset_t *set, const char *line);

#endif
