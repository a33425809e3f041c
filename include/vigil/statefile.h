/* statefile.h — the state file's writer thread. The loop thread renders the document
 * and hands the text over; the writer replaces the file atomically (a temporary file
 * beside it, fsync, rename, fsync of the folder) off the loop thread, so a slow disk
 * (an fsync on an SD card can take 100 ms and more) never stalls MQTT, REST or results.
 * Only the newest text matters: texts handed over while a write runs replace each other
 * and the writer then writes the last one, so a burst of changes costs one or two
 * writes. Failures are logged and counted (vigil_state_writes_total{result="error"});
 * the next change tries again. */
#ifndef VIGIL_STATEFILE_H
#define VIGIL_STATEFILE_H

typedef struct vg_statefile vg_statefile_t;

/* Starts the writer for `path` (copied). */
vg_statefile_t *vg_statefile_new(const char *path);
/* Any thread. Takes ownership of `text` (malloc'd); replaces a text not yet written. */
void vg_statefile_put(vg_statefile_t *sf, char *text);
/* Writes what is pending, stops and joins the writer. NULL ok. */
void vg_statefile_free(vg_statefile_t *sf);

#endif
