/* statefile.h — the state file's writer. The loop thread renders the document and hands
 * the text over; a job on the "jobs:state" thread replaces the file atomically (a
 * temporary file beside it, fsync, rename, fsync of the folder) off the loop, so a slow disk
 * (an fsync on an SD card can take 100 ms and more) never stalls MQTT, REST or results.
 * Only the newest text matters: texts handed over while a write runs replace each other
 * and the writer then writes the last one, so a burst of changes costs one or two
 * writes. Failures are logged and counted (vigil_state_writes_total{result="error"});
 * the next change tries again. */
#ifndef VIGIL_STATEFILE_H
#define VIGIL_STATEFILE_H

#include "vigil/jobs.h"

typedef struct vg_statefile vg_statefile_t;

/* The writer for `path` (copied); writes run as jobs of `jobs` (borrowed). */
vg_statefile_t *vg_statefile_new(const char *path, vg_jobs_t *jobs);
/* Any thread. Takes ownership of `text` (malloc'd); replaces a text not yet written. */
void vg_statefile_put(vg_statefile_t *sf, char *text);
/* Drops the caller's handle. A write still pending runs anyway: vg_jobs_stop runs
 * pending state writes (shutdown flushes the last change). NULL ok. */
void vg_statefile_free(vg_statefile_t *sf);

#endif
